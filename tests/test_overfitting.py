"""course_utils.overfitting: the learning-curve diagnosis, the comparison over seeds, the quiz.

Lesson 02's claims are checked on what its real run printed (``test_lesson02.py``); this file
checks the helpers the lesson calls, on small inputs and a few short real trainings.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from course_utils import fingers, labels, overfitting, training
from course_utils.runtime.tf_setup import import_keras

# --------------------------------------------------------------------------- diagnosis


def _curve(loss, val_loss, **extra):
    return {"loss": list(loss), "val_loss": list(val_loss), **extra}


EXPECTED_MYSTERY = {"A": "overfit", "B": "learning rate too high", "C": "ideal",
                    "D": "unrepresentative validation", "E": "underfit",
                    "F": "noisy small batches"}


def test_the_mystery_curves_of_the_quiz_get_the_answers_of_the_key():
    got = {k: overfitting.diagnose_history(v).label for k, v in overfitting.MYSTERY_CURVES.items()}
    assert got == EXPECTED_MYSTERY
    assert sorted(set(got.values())) == sorted(overfitting.DIAGNOSES), "every shape appears once"


@pytest.mark.slow
def test_the_mystery_curves_are_what_their_real_runs_record():
    recorded = overfitting.record_mystery_curves()
    assert {k: overfitting.diagnose_history(v).label for k, v in recorded.items()} == \
        EXPECTED_MYSTERY, "a run of the quiz no longer shows the shape of the answer key"
    for letter, curves in overfitting.MYSTERY_CURVES.items():
        for key in ("loss", "val_loss"):
            assert len(recorded[letter][key]) == len(curves[key])
            # the same machine records the same digits; another one may differ slightly
            assert np.allclose(recorded[letter][key], curves[key], rtol=0.05, atol=0.05), (
                f"curve {letter} {key}: stored {curves[key]}, recorded {recorded[letter][key]}")


def test_an_exploding_or_nan_loss_means_the_learning_rate_is_too_high():
    blown = overfitting.diagnose_history(_curve([48.7, 5.9, 2.5, 2.5], [8.3, 2.5, 2.5, 2.5]))
    assert blown.label == "learning rate too high" and "48.7" in blown.explanation
    nan = overfitting.diagnose_history(_curve([2.0, 1.5, math.nan], [2.0, 1.6, math.nan]))
    assert nan.label == "learning rate too high" and "epoch 3" in nan.explanation


def test_a_high_loss_from_an_l2_penalty_is_not_mistaken_for_a_learning_rate_problem():
    # Keras adds the penalty to the training and the validation loss alike.
    loss = np.linspace(5.8, 0.9, 12)
    diagnosis = overfitting.diagnose_history(_curve(loss, loss + 0.1))
    assert diagnosis.label == "ideal", diagnosis


def test_underfit_overfit_and_ideal_are_told_apart():
    flat = _curve([2.48, 2.47, 2.46, 2.46], [2.48, 2.47, 2.47, 2.46])
    assert overfitting.diagnose_history(flat).label == "underfit"
    diverging = _curve([2.3, 1.2, 0.6, 0.3, 0.1], [2.3, 1.5, 1.3, 1.5, 1.9])
    d = overfitting.diagnose_history(diverging)
    assert d.label == "overfit" and d.best_epoch == 3 and "epoch 3" in d.explanation
    # An accuracy gap alone is enough, when accuracies are recorded.
    gap = _curve([2.0, 1.0, 0.8], [2.0, 1.1, 0.9], accuracy=[0.3, 0.8, 0.95],
                 val_accuracy=[0.3, 0.6, 0.7])
    assert overfitting.diagnose_history(gap).label == "overfit"
    together = _curve([2.0, 1.0, 0.5, 0.3], [2.0, 1.1, 0.6, 0.4])
    assert overfitting.diagnose_history(together).label == "ideal"


def test_unrepresentative_validation_is_a_validation_loss_far_below_the_training_loss():
    easier = _curve([2.4, 1.5, 1.0, 0.8, 0.7, 0.6], [1.5, 0.6, 0.4, 0.3, 0.25, 0.2])
    assert overfitting.diagnose_history(easier).label == "unrepresentative validation"
    # One definition: a validation loss that only goes up while training improves looks
    # like overfitting, and is called that.
    never = _curve([2.5, 1.5, 0.8, 0.4], [2.5, 2.8, 3.5, 5.0])
    assert overfitting.diagnose_history(never).label != "unrepresentative validation"
    # Validation somewhat below training (what dropout and augmentation give) is not it.
    regularised = _curve([2.4, 1.6, 1.2, 1.0, 0.9, 0.85], [2.2, 1.3, 0.9, 0.75, 0.68, 0.64])
    assert overfitting.diagnose_history(regularised).label == "ideal"


def test_a_validation_loss_that_jumps_around_is_noisy():
    jumpy = _curve([2.3, 1.6, 1.2, 0.9, 0.7, 0.55], [2.2, 1.5, 1.2, 1.9, 1.1, 1.6])
    d = overfitting.diagnose_history(jumpy)
    assert d.label == "noisy small batches" and "%" in d.explanation
    # a spike of a tenth of the best value so far is not enough, nor is a steady rise
    mild = _curve([2.3, 1.6, 1.2, 0.9, 0.7, 0.55], [2.2, 1.5, 1.2, 1.32, 1.2, 1.1])
    assert overfitting.diagnose_history(mild).label != "noisy small batches"
    rising = _curve([2.3, 1.6, 1.2, 0.9, 0.7, 0.55], [2.2, 1.5, 1.2, 1.5, 1.9, 2.4])
    assert overfitting.diagnose_history(rising).label == "overfit"


def test_diagnosis_reads_a_keras_history_and_explains_in_one_line():
    class FakeHistory:  # what model.fit returns: .history and .epoch
        history = {"loss": [2.3, 1.2, 0.6, 0.3, 0.1], "val_loss": [2.3, 1.5, 1.3, 1.5, 1.9]}
        epoch = [0, 1, 2, 3, 4]

    d = overfitting.diagnose_history(FakeHistory())
    assert d.label == "overfit"
    assert "\n" not in str(d) and str(d).startswith("overfit: ")


def test_diagnosis_rejects_what_it_cannot_read():
    with pytest.raises(ValueError, match="val_loss"):
        overfitting.diagnose_history({"loss": [1.0, 0.5, 0.2]})
    with pytest.raises(ValueError, match="at least 3"):
        overfitting.diagnose_history(_curve([1.0, 0.5], [1.0, 0.6]))
    with pytest.raises(ValueError, match="num_classes"):
        overfitting.diagnose_history(_curve([1, 0.5, 0.2], [1, 0.6, 0.3]), num_classes=1)
    with pytest.raises(TypeError):
        overfitting.diagnose_history([1.0, 0.5, 0.2])


def test_find_best_epoch_counts_from_one_and_validates():
    assert overfitting.find_best_epoch({"val_loss": [1.0, 0.7, 0.7, 0.9]}) == 2
    assert overfitting.find_best_epoch({"val_accuracy": [0.1, 0.4, 0.3]},
                                       monitor="val_accuracy", mode="max") == 2
    with pytest.raises(ValueError, match="monitor"):
        overfitting.find_best_epoch({"loss": [1.0]})
    with pytest.raises(ValueError, match="mode"):
        overfitting.find_best_epoch({"val_loss": [1.0]}, mode="lowest")


def test_replaying_early_stopping_follows_the_rule_of_keras():
    history = {"val_loss": [1.0, 0.8, 0.9, 0.8, 0.85, 0.7, 0.9, 0.95, 0.99]}
    # 0.8 again is no improvement (strictly better only); three epochs without one stop it
    assert overfitting.replay_early_stopping(history, patience=3) == \
        overfitting.EarlyStop(epochs_run=5, kept_epoch=2, stopped=True)
    assert overfitting.replay_early_stopping(history, patience=4) == \
        overfitting.EarlyStop(epochs_run=9, kept_epoch=6, stopped=False)
    accuracy = {"val_accuracy": [0.2, 0.5, 0.4, 0.3]}
    assert overfitting.replay_early_stopping(accuracy, patience=2, monitor="val_accuracy",
                                             mode="max").kept_epoch == 2
    with pytest.raises(ValueError, match="patience"):
        overfitting.replay_early_stopping(history, patience=0)
    with pytest.raises(ValueError, match="monitor"):
        overfitting.replay_early_stopping(history, patience=2, monitor="val_accuracy")


def test_replayed_early_stopping_matches_a_real_keras_run(small_data):
    keras = import_keras()
    x, y, x_val, y_val = small_data
    full = overfitting.train_variant("baseline", x, y, x_val, y_val, epochs=12, batch_size=16,
                                     seed=3)
    stopper = keras.callbacks.EarlyStopping(monitor="val_loss", patience=2,
                                            restore_best_weights=True)
    stopped = overfitting.train_variant("baseline", x, y, x_val, y_val, epochs=12,
                                        batch_size=16, seed=3, callbacks=[stopper])
    replay = overfitting.replay_early_stopping(full.history, patience=2)
    assert len(stopped.history["val_loss"]) == replay.epochs_run
    assert stopper.best_epoch + 1 == replay.kept_epoch
    # the restored weights score what the full run recorded for the kept epoch
    assert stopped.val_loss == pytest.approx(full.history["val_loss"][replay.kept_epoch - 1],
                                             rel=1e-4)


def test_easy_validation_holds_studio_fists_and_open_hands_only():
    x, y = overfitting.make_easy_validation(120, image_size=16, seed=1)
    counts = {labels.decode(int(label))[0] for label in y}
    assert counts == set(overfitting.EASY_GESTURES) == {0, labels.MAX_COUNT}
    assert 0 < len(y) < 120 and x.shape == (len(y), 16, 16) and x.dtype == np.uint8
    assert set(np.unique(y).tolist()) == {0, 1, 10, 11}, "both hands of both gestures"
    with pytest.raises(ValueError, match="n: expected"):
        overfitting.make_easy_validation(0, image_size=16)


# --------------------------------------------------------------------------- the comparison


def _result(name, val_loss, val_accuracy, train_accuracy=1.0):
    return overfitting.RunResult(name, {}, train_accuracy, val_accuracy, val_loss)


def test_remedies_are_compared_with_the_baseline_seed_by_seed():
    runs = {
        "baseline": {0: _result("baseline", 1.4, 0.60), 1: _result("baseline", 1.2, 0.70),
                     2: _result("baseline", 1.3, 0.65)},
        # a lower loss in every seed, but the accuracy moves with the baseline's, up and down
        "dropout": {0: _result("dropout", 0.9, 0.62), 1: _result("dropout", 0.8, 0.69),
                    2: _result("dropout", 0.85, 0.66)},
    }
    base, dropout = overfitting.compare_with_baseline(runs)
    assert base.loss_change is None and base.seeds == (0, 1, 2)
    assert dropout.loss_change.per_seed == pytest.approx((-0.5, -0.4, -0.45))
    assert dropout.loss_change.verdict == "better"
    assert dropout.accuracy_change.mean == pytest.approx(0.02 / 3)
    assert dropout.accuracy_change.verdict == "within noise"
    table = overfitting.make_remedy_table([base, dropout])
    assert "3 seeds" in table and "-0.45 ± 0.05 better" in table
    assert "+0.7 ± 1.5 within noise" in table and "100.0 ± 0.0 %" in table
    verdicts = overfitting.describe_verdicts([base, dropout]).splitlines()
    assert "validation loss, better than the baseline by more than the spread: dropout" in verdicts
    assert "validation accuracy, within noise of the baseline: dropout" in verdicts
    assert "validation accuracy, worse than the baseline by more than the spread: none" in verdicts


def test_the_comparison_refuses_unpaired_or_incomplete_runs():
    base = {0: _result("baseline", 1.4, 0.6), 1: _result("baseline", 1.2, 0.7)}
    with pytest.raises(ValueError, match="baseline"):
        overfitting.compare_with_baseline({"dropout": base})
    with pytest.raises(ValueError, match="at least 2 seeds"):
        overfitting.compare_with_baseline({"baseline": {0: base[0]}})
    with pytest.raises(ValueError, match=r"'dropout' was trained with seeds \[0, 5\]"):
        overfitting.compare_with_baseline({"baseline": base, "dropout": {0: base[0], 5: base[1]}})
    with pytest.raises(ValueError, match="finite val_loss"):
        overfitting.compare_with_baseline(
            {"baseline": {0: overfitting.RunResult("b", {}, 1.0, 0.5), 1: base[1]}})


# --------------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def small_data():
    x, y = fingers.make_fingers(96, image_size=16, seed=0)
    xs, ys = overfitting.make_small_subset(x, y, 3, seed=0)
    x_val, y_val = fingers.make_fingers(48, image_size=16, seed=1)
    return xs, ys, x_val, y_val


def test_small_subset_is_balanced_reproducible_and_checked():
    x, y = fingers.make_fingers(96, image_size=8, seed=0)
    xs, ys = overfitting.make_small_subset(x, y, 3, seed=1)
    assert np.bincount(ys, minlength=12).tolist() == [3] * 12
    xs2, ys2 = overfitting.make_small_subset(x, y, 3, seed=1)
    assert np.array_equal(xs, xs2) and np.array_equal(ys, ys2)
    with pytest.raises(ValueError, match="per_class"):
        overfitting.make_small_subset(x, y, 0)
    with pytest.raises(ValueError, match="expected at least per_class=50"):
        overfitting.make_small_subset(x, y, 50)


def test_the_validation_loss_of_a_run_leaves_the_weight_penalty_out(small_data):
    x, y, x_val, y_val = small_data
    run = overfitting.train_variant("L2 penalty", x, y, x_val, y_val, epochs=2, batch_size=16,
                                    seed=0)
    scores = run.model.evaluate((x_val / 255.0)[..., None], y_val, verbose=0, return_dict=True)
    penalty = float(sum(float(p) for p in run.model.losses))
    assert penalty > 0.1
    assert run.val_loss == pytest.approx(scores["crossentropy"], rel=1e-5)
    assert scores["loss"] == pytest.approx(scores["crossentropy"] + penalty, rel=1e-4)
    assert run.history["val_loss"][-1] > run.history["val_crossentropy"][-1] + 0.1


def _fresh_networks(monkeypatch):
    """From now on, every variant's next run starts on a network built for it."""
    from course_utils.overfitting import remedies

    monkeypatch.setattr(remedies, "_shared_variant_model",
                        training.reuse_compiled_model(overfitting.build_variant_model))


def test_training_over_seeds_gives_the_runs_of_fresh_networks(small_data, monkeypatch):
    x, y, x_val, y_val = small_data
    seen = []

    def callbacks(seed):
        seen.append(seed)
        return []

    runs = overfitting.train_over_seeds("dropout", x, y, x_val, y_val, seeds=[5, 6], epochs=3,
                                        batch_size=16, callbacks=callbacks, name="drop")
    assert sorted(runs) == [5, 6] and seen == [5, 6] and runs[5].name == "drop"
    for seed in (5, 6):
        _fresh_networks(monkeypatch)
        fresh = overfitting.train_variant("dropout", x, y, x_val, y_val, epochs=3,
                                          batch_size=16, seed=seed)
        assert runs[seed].history == fresh.history, f"seed {seed} differs from a fresh network"
        assert runs[seed].val_accuracy == fresh.val_accuracy
        assert runs[seed].val_loss == pytest.approx(fresh.val_loss, rel=1e-6)
    assert runs[5].model is None, "a later run took its network"
    with pytest.raises(ValueError, match="callbacks"):
        overfitting.train_over_seeds("dropout", x, y, x_val, y_val, seeds=[0], epochs=1,
                                     batch_size=16, callbacks=3)
    with pytest.raises(ValueError, match="seeds"):
        overfitting.train_over_seeds("dropout", x, y, x_val, y_val, seeds=[0, 0], epochs=1,
                                     batch_size=16)


def test_variants_with_the_same_network_share_it_and_run_as_on_a_fresh_one(small_data,
                                                                            monkeypatch):
    """Augmentation changes the data, not the network: its run trains the baseline's
    network, set back to a new network's state, at its own learning rate and seed."""
    x, y, x_val, y_val = small_data
    _fresh_networks(monkeypatch)
    baseline = overfitting.train_variant("baseline", x, y, x_val, y_val, epochs=3,
                                         batch_size=16, seed=5, learning_rate=0.01)
    network = baseline.model
    augmented = overfitting.train_variant("augmentation", x, y, x_val, y_val, epochs=3,
                                          batch_size=16, seed=6)
    assert augmented.model is network and baseline.model is None
    penalised = overfitting.train_variant("L2 penalty", x, y, x_val, y_val, epochs=1,
                                          batch_size=16, seed=6)
    assert penalised.model is not network and augmented.model is network, "another network"
    _fresh_networks(monkeypatch)
    fresh = overfitting.train_variant("augmentation", x, y, x_val, y_val, epochs=3,
                                      batch_size=16, seed=6)
    assert fresh.model is not network
    assert augmented.history == fresh.history and augmented.val_loss == fresh.val_loss


def test_batch_norm_variant_uses_the_faster_momentum():
    model = overfitting.build_variant_model("batch norm", (16, 16, 1), seed=0)
    keras = import_keras()
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and all(layer.momentum == overfitting.BN_MOMENTUM for layer in norms)
    assert all(layer.axis in (-1, 3) for layer in norms), "channels last: the last axis"
    with pytest.raises(ValueError, match="variant"):
        overfitting.build_variant_model("bigger", (16, 16, 1))


def test_extra_validation_logs_a_second_validation_curve():
    from course_utils import models

    model = models.compile_classifier(
        models.build_fingers_cnn((16, 16, 1), 12, depth=1, width=4, seed=0))
    x, y = np.zeros((8, 16, 16, 1), "float32"), np.arange(8)
    history = model.fit(x, y, validation_data=(x, y), epochs=2, verbose=0,
                        callbacks=[overfitting.ExtraValidation((x, y), prefix="other")])
    assert len(history.history["other_loss"]) == 2
    assert np.allclose(history.history["other_loss"], history.history["val_loss"], rtol=1e-5)
    with pytest.raises(ValueError, match="prefix"):
        overfitting.ExtraValidation((x, y), prefix="val")


# --------------------------------------------------------------------------- figures


def test_diagnosis_panels_share_one_loss_axis_with_the_loss_of_guessing():
    fig = overfitting.plot_diagnoses(overfitting.MYSTERY_CURVES, show_diagnosis=False)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == list("ABCDEF")
    assert all(ax.get_yscale() == "linear" for ax in axes)
    assert len({ax.get_ylim() for ax in axes}) == 1, "comparable panels share the loss axis"
    low, high = axes[0].get_ylim()
    assert low == 0 and high == pytest.approx(1.3 * math.log(12))
    assert all(ax.get_xlabel() == "epoch" for ax in axes[3:])
    guess = [line for line in axes[0].lines if line.get_linestyle() == ":"]
    assert guess and guess[0].get_ydata()[0] == pytest.approx(math.log(12))
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend[:2] == ["training loss", "validation loss"]
    # under a single panel the legend takes two entries a row, not wider than the panel
    one = overfitting.plot_diagnoses({"one run": overfitting.MYSTERY_CURVES["A"]})
    assert one.legends[0]._ncols == 2 and fig.legends[0]._ncols == len(legend)
    # a flat curve takes a sliver of the shared axis, not its whole height
    flat = np.ptp(overfitting.MYSTERY_CURVES["E"]["loss"])
    assert flat < 0.1 * high
    # the exploding loss of curve B leaves the axis: its value is written at the top
    notes = [t.get_text() for t in axes[1].texts]
    assert notes == [f"↑ {max(overfitting.MYSTERY_CURVES['B']['loss']):.3g} in epoch 1"]


def test_remedy_figures_show_every_seed_and_keep_colours_by_name():
    effects = [overfitting.RemedyEffect("baseline", (0, 1, 2), (1.4, 1.2, 1.3),
                                        (0.60, 0.70, 0.65), (1.0, 1.0, 1.0)),
               overfitting.RemedyEffect("dropout", (0, 1, 2), (0.9, 0.8, 0.85),
                                        (0.62, 0.69, 0.66), (0.9, 0.9, 0.9))]
    fig = overfitting.plot_remedies(effects)
    loss_ax, accuracy_ax = fig.axes
    assert [t.get_text() for t in loss_ax.get_xticklabels()] == ["baseline", "dropout"]
    dots = [line for line in accuracy_ax.lines if line.get_marker() == "o"]
    assert [sorted(line.get_ydata()) for line in dots] == [[60, 65, 70], [62, 66, 69]]
    assert accuracy_ax.get_ylim() == (0, 100)
    history = {"crossentropy": [2.0, 1.0], "val_crossentropy": [2.1, 1.5],
               "val_accuracy": [0.2, 0.5]}
    curves = overfitting.plot_remedy_curves({"dropout": [history, history],
                                             "baseline": [history, history]})
    train_ax, val_ax, _ = curves.axes
    assert train_ax.get_ylim() == val_ax.get_ylim(), "the two loss panels share their axis"
    assert all(ax.get_xlabel() == "epoch" for ax in curves.axes)
    colours = {line.get_label(): line.get_color() for line in train_ax.lines}
    assert colours["dropout"] == overfitting.figures.RUN_COLOURS["dropout"] != colours["baseline"]


# --------------------------------------------------------------------------- the graded remedy


def test_a_remedy_check_follows_its_rule_seed_by_seed():
    check = overfitting.RemedyCheck
    assert check("ok", (0, 1), (2.0, 1.8), (1.6, 1.62), (0.5, 0.5), (0.46, 0.46)).passed
    # 10 % lower in one seed is not enough when the other is 9 % lower
    short = check("short", (0, 1), (2.0, 1.8), (1.6, 1.638), (0.5, 0.5), (0.5, 0.5))
    assert not short.passed and short.failures == [
        "seed 1: the validation loss is 1.638, only a little below the baseline's 1.800; "
        "expected at most 1.620 (10 % lower)"]
    # a cure that only hedges: loss down, accuracy down by more than five points
    hedged = check("hedged", (0,), (2.0,), (1.2,), (0.5,), (0.44,))
    assert hedged.failures == ["the mean validation accuracy is 44.0 %, the baseline's 50.0 %; "
                               "expected at most 5 percentage points lower"]
    assert not check("nan", (0,), (2.0,), (math.nan,), (0.5,), (0.5,)).passed
    text = str(hedged)
    assert "hedged does not help this run enough" in text and "seed 0: baseline 2.000" in text
    assert "(40 % lower)" in text


def test_check_remedy_refuses_what_it_cannot_train_in_seconds():
    import dataclasses

    base = overfitting.VARIANTS["baseline"]
    with pytest.raises(ValueError, match="expected a Variant .* got 'best'"):
        overfitting.check_remedy("best")
    with pytest.raises(ValueError, match="expected width between 1 and 64 .* got 1000"):
        overfitting.check_remedy(dataclasses.replace(base, width=1000))
    with pytest.raises(ValueError, match="expected depth between 1 and 3"):
        overfitting.check_remedy(dataclasses.replace(base, depth=0))
    with pytest.raises(ValueError, match="seeds: expected at least one seed"):
        overfitting.check_remedy(base, seeds=[])


def test_the_remedy_data_are_fixed_and_the_variants_read_only():
    first, again = overfitting.make_remedy_data(), overfitting.make_remedy_data()
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert first[0] is not again[0], "fresh arrays every call"
    with pytest.raises(TypeError):
        overfitting.VARIANTS["baseline"] = overfitting.VARIANTS["dropout"]
    with pytest.raises(ValueError, match="mirror: expected one of 'swap hand', 'keep label'"):
        overfitting.Variant("x", "y", mirror="upside down")


def test_the_label_blind_mirror_augments_the_same_images_and_keeps_every_label(small_data):
    from course_utils import datasets
    from course_utils.overfitting.remedies import _label_blind_augmenter
    from course_utils.runtime.tf_setup import set_seed

    x, y, _, _ = small_data
    set_seed(3)
    right = next(iter(datasets.make_dataset(x, y, batch_size=36, training=True, augment=True,
                                            seed=3)))
    set_seed(3)
    plain = datasets.make_dataset(x, y, batch_size=36, training=True, seed=3)
    blind = next(iter(plain.map(_label_blind_augmenter(3))))
    _, plain_labels = next(iter(datasets.make_dataset(x, y, batch_size=36, training=True,
                                                      seed=3)))
    assert np.allclose(right[0].numpy(), blind[0].numpy()), "the images are augmented alike"
    swapped = right[1].numpy() != blind[1].numpy()
    assert 0 < swapped.sum() < len(swapped), "some images, not all, are mirrored"
    assert np.array_equal(blind[1].numpy(), plain_labels.numpy()), "every label kept"
    assert np.array_equal(right[1].numpy()[swapped], labels.mirror(blind[1].numpy()[swapped]))
