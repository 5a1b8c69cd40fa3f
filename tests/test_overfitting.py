"""course_utils.overfitting: the learning-curve diagnosis and lesson 02's claims.

The claims are checked with the lesson's own smoke settings and seeds: one module-scoped
fixture trains the baseline, every remedy and the early-stopping run once.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from course_utils import fingers, overfitting, profiles
from course_utils.tf_setup import import_keras

SMOKE = profiles.get_profile("smoke")
EPOCHS = 10 * SMOKE.short_epochs
LEARNING_RATE = 3e-3
PATIENCE = 3
REMEDIES = ("simpler model", "augmentation", "L1 penalty", "L2 penalty", "batch norm", "dropout")


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


def test_validation_that_never_improves_or_is_far_easier_is_unrepresentative():
    never = _curve([2.5, 1.5, 0.8, 0.4], [2.5, 2.8, 3.5, 5.0])
    assert overfitting.diagnose_history(never).label == "unrepresentative validation"
    easier = _curve([2.4, 1.5, 1.0, 0.8, 0.7, 0.6], [1.5, 0.6, 0.4, 0.3, 0.25, 0.2])
    assert overfitting.diagnose_history(easier).label == "unrepresentative validation"


def test_a_validation_loss_that_jumps_around_is_noisy():
    jumpy = _curve([2.3, 1.6, 1.2, 0.9, 0.7, 0.55], [2.2, 1.5, 1.2, 1.9, 1.1, 1.6])
    d = overfitting.diagnose_history(jumpy)
    assert d.label == "noisy small batches" and "%" in d.explanation


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


def test_remedy_table_and_figures_show_every_run():
    runs = [overfitting.RunResult("baseline", {}, 0.95, 0.40),
            overfitting.RunResult("dropout", {}, 0.80, 0.45)]
    table = overfitting.make_remedy_table(runs)
    assert "baseline" in table and "-20.0" in table
    fig = overfitting.plot_remedies(runs)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["baseline", "dropout"]
    quiz = overfitting.plot_diagnoses(overfitting.MYSTERY_CURVES, show_diagnosis=False)
    assert [ax.get_title() for ax in quiz.axes if ax.get_visible()] == list("ABCDEF")
    with pytest.raises(ValueError, match="variant"):
        overfitting.build_variant_model("bigger", (16, 16, 1))


def test_batch_norm_variant_uses_the_faster_momentum():
    model = overfitting.build_variant_model("batch norm", (16, 16, 1), seed=0)
    keras = import_keras()
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and all(layer.momentum == overfitting.BN_MOMENTUM for layer in norms)
    assert all(layer.axis in (-1, 3) for layer in norms), "channels last: the last axis"


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


# --------------------------------------------------------------------------- claims


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The lesson's smoke runs: baseline, each remedy, the combination, early stopping."""
    keras = import_keras()
    size = min(SMOKE.image_size, 32)
    x_pool, y_pool = fingers.make_fingers(min(SMOKE.train_size, 480), image_size=size,
                                          seed=SMOKE.seed)
    x_val, y_val = fingers.make_fingers(min(SMOKE.val_size, 360), image_size=size,
                                        seed=SMOKE.seed + 1)
    xs, ys = overfitting.make_small_subset(x_pool, y_pool, SMOKE.few_shot_per_class,
                                           seed=SMOKE.seed)

    def train(variant, **kwargs):
        return overfitting.train_variant(variant, xs, ys, x_val, y_val, epochs=EPOCHS,
                                         batch_size=SMOKE.batch_size,
                                         learning_rate=LEARNING_RATE, seed=SMOKE.seed, **kwargs)

    results = {name: train(name) for name in ("baseline", *REMEDIES, "combination")}
    stopper = keras.callbacks.EarlyStopping(monitor="val_loss", patience=PATIENCE,
                                            restore_best_weights=True)
    folder = tmp_path_factory.mktemp("checkpoints")
    saver = keras.callbacks.ModelCheckpoint(str(folder / "epoch_{epoch:02d}.weights.h5"),
                                            save_weights_only=True)
    results["early stopping"] = train("baseline", callbacks=[stopper, saver],
                                      name="early stopping")
    return results, (x_val, y_val), folder


def test_baseline_on_the_small_subset_overfits_with_a_gap_of_at_least_15_points(runs):
    results, _, _ = runs
    baseline = results["baseline"]
    assert baseline.gap >= 0.15, baseline
    assert overfitting.diagnose_history(baseline.history).label == "overfit"


@pytest.mark.parametrize("remedy", ["simpler model", "augmentation", "L1 penalty", "L2 penalty",
                                    "dropout", "combination"])
def test_each_regularising_remedy_narrows_the_gap(runs, remedy):
    results, _, _ = runs
    assert results[remedy].gap < results["baseline"].gap, (results[remedy], results["baseline"])


def test_batch_norm_does_not_narrow_the_gap_here_but_fits_the_training_data_sooner(runs):
    # The honest figure at this size (stated in the lesson): batch norm speeds fitting up.
    results, _, _ = runs
    bn, base = results["batch norm"], results["baseline"]
    assert bn.gap >= base.gap
    first = [next(i for i, a in enumerate(r.history["accuracy"]) if a >= 0.8)
             for r in (bn, base)]
    assert first[0] < first[1], first


def test_the_combination_narrows_the_gap_more_than_any_penalty_or_batch_norm(runs):
    # Augmentation alone narrows it about as much: at this size it also fits the training
    # images worst (the lesson says so).
    results, _, _ = runs
    combination, baseline = results["combination"], results["baseline"]
    assert combination.gap <= min(results[name].gap for name in REMEDIES if name != "augmentation")
    # 60 images and 20 short epochs: the validation accuracies differ by a few of the 120
    # validation images, within noise; the claim on accuracy is checked at the cpu size below.
    assert abs(combination.val_accuracy - baseline.val_accuracy) <= 10 / 120


@pytest.mark.slow
def test_at_the_cpu_profiles_size_the_combination_beats_the_baseline_on_validation_accuracy():
    # The smallest size where the claim honestly holds: the lesson's cpu settings (15 images
    # per class, 60 epochs, 360 validation images at 32x32). Measured: 87 % against 64 %.
    cpu = profiles.get_profile("cpu")
    size = min(cpu.image_size, 32)
    x_pool, y_pool = fingers.make_fingers(min(cpu.train_size, 480), image_size=size, seed=cpu.seed)
    x_val, y_val = fingers.make_fingers(min(cpu.val_size, 360), image_size=size,
                                        seed=cpu.seed + 1)
    xs, ys = overfitting.make_small_subset(x_pool, y_pool, cpu.few_shot_per_class, seed=cpu.seed)
    baseline, combination = (
        overfitting.train_variant(name, xs, ys, x_val, y_val, epochs=10 * cpu.short_epochs,
                                  batch_size=cpu.batch_size, learning_rate=LEARNING_RATE,
                                  seed=cpu.seed)
        for name in ("baseline", "combination"))
    assert combination.val_accuracy >= baseline.val_accuracy + 0.10, (combination, baseline)
    assert combination.gap < baseline.gap, (combination, baseline)


def test_early_stopping_restores_the_weights_of_the_best_validation_epoch(runs):
    results, (x_val, y_val), folder = runs
    stopped = results["early stopping"]
    history = stopped.history
    assert len(history["val_loss"]) < EPOCHS, "the run should stop early"
    best = overfitting.find_best_epoch(history)
    assert best == len(history["val_loss"]) - PATIENCE
    x = (x_val.astype("float32") / 255.0)[..., None]
    restored = stopped.model.evaluate(x, y_val, verbose=0, return_dict=True)["loss"]
    assert restored == pytest.approx(min(history["val_loss"]), rel=1e-5)
    picked = overfitting.build_variant_model("baseline", x.shape[1:], seed=SMOKE.seed)
    picked.load_weights(folder / f"epoch_{best:02d}.weights.h5")
    assert picked.evaluate(x, y_val, verbose=0, return_dict=True)["loss"] == pytest.approx(
        restored, rel=1e-5)
