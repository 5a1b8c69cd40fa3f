"""The training helper: one way to train, runs repeated over seeds, and the one rule that
judges a difference between set-ups against the noise of the seeds."""

from __future__ import annotations

import math

import numpy as np
import pytest

from course_utils import models
from course_utils.history import History
from course_utils.runtime.tf_setup import import_keras
from course_utils.training import (
    final_over_seeds,
    fit_model,
    judge_change,
    mean_over_seeds,
    paired_change,
    repeat_over_seeds,
    reuse_compiled_model,
)

keras = import_keras()

# --------------------------------------------------------------------------- the helper


def _tiny_data(n=32):
    rng = np.random.default_rng(0)
    return rng.random((n, 8, 8, 1), dtype=np.float32), np.arange(n) % 12


def _build_tiny():
    return models.build_fingers_cnn((8, 8, 1), 12, depth=1, width=4, dense_units=8, seed=0)


def test_the_same_seed_gives_the_same_history_and_another_seed_another():
    x, y = _tiny_data()
    def run(seed):
        return fit_model(_build_tiny, (x, y), (x[:8], y[:8]), epochs=2, batch_size=8, seed=seed)
    first, again, other = run(1), run(1), run(2)
    assert isinstance(first, History) and first.epochs == [1, 2]
    assert first == again, "same seed, same batches and dropout masks: the same history"
    assert first["loss"] != other["loss"], "another seed shuffles the batches otherwise"
    assert first.model is not again.model, "every run builds its own model"


def test_repeat_over_seeds_gives_one_history_per_seed_and_their_mean_and_spread():
    x, y = _tiny_data()
    runs = repeat_over_seeds(
        lambda seed: fit_model(_build_tiny, (x, y), epochs=3, batch_size=8, seed=seed),
        seeds=[3, 0, 7])
    assert list(runs) == [3, 0, 7], "one run per seed, in the order given"
    assert all(isinstance(h, History) and h.epochs == [1, 2, 3] for h in runs.values())
    assert runs[0] == fit_model(_build_tiny, (x, y), epochs=3, batch_size=8, seed=0)
    mean, spread = mean_over_seeds(runs)
    losses = np.array([h["loss"] for h in runs.values()])
    np.testing.assert_allclose(mean["loss"], losses.mean(axis=0))
    np.testing.assert_allclose(spread["loss"], losses.std(axis=0, ddof=1))
    assert mean.epochs == [1, 2, 3] and set(mean.metrics) == set(runs[0].metrics)


def test_a_dataset_made_by_a_function_is_made_after_seeding_and_an_endless_one_is_cut():
    from course_utils import fingers
    from course_utils.datasets import make_dataset
    from course_utils.runtime.tf_setup import set_seed

    x, y = fingers.make_fingers(24, image_size=16, seed=0)
    def build():
        return models.build_fingers_cnn((16, 16, 1), 12, depth=1, width=4, seed=0)
    def make_train():
        return make_dataset(x, y, batch_size=8, training=True, seed=0).repeat()
    def run(earlier_seed):
        set_seed(earlier_seed)  # whatever ran before must not change the batches
        return fit_model(build, make_train, epochs=2, steps_per_epoch=2, seed=0)
    first = run(1)
    assert first == run(2)
    assert int(first.model.optimizer.iterations) == 4, "2 epochs of 2 steps from the stream"


def test_a_second_phase_goes_on_with_the_same_model_and_counts_on_its_epochs():
    x, y = _tiny_data()
    warm_up = fit_model(_build_tiny, (x, y), epochs=2, batch_size=8, seed=0)
    fine = fit_model(warm_up.model, (x, y), epochs=5, initial_epoch=2, batch_size=8)
    assert fine.epochs == [3, 4, 5] and fine.model is warm_up.model
    assert int(fine.model.optimizer.iterations) == 5 * 4


def test_an_uncompiled_model_is_compiled_with_the_optimizer_asked_for():
    x, y = _tiny_data()
    history = fit_model(_build_tiny(), (x, y), epochs=1, batch_size=8, optimizer="sgd",
                        learning_rate=0.05, seed=0)
    optimizer = history.model.optimizer
    assert type(optimizer).__name__ == "SGD"
    assert float(optimizer.learning_rate) == pytest.approx(0.05)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"epochs": 0}, r"epochs: expected a whole number >= 1, got 0"),
    ({"epochs": 2, "initial_epoch": 2}, r"initial_epoch: expected a whole number >= 0 and <= 1"),
    ({"epochs": 1, "seed": -1}, r"seed: expected a whole number >= 0, got -1"),
    ({"epochs": 1, "batch_size": None}, r"batch_size: expected a whole number >= 1 to feed"),
    ({"epochs": 1, "steps_per_epoch": 0}, r"steps_per_epoch: expected a whole number >= 1"),
])
def test_fit_model_refuses_bad_arguments_by_name_before_building(kwargs, message):
    built = []
    def build():
        built.append(1)
        return _build_tiny()
    with pytest.raises(ValueError, match=message):
        fit_model(build, _tiny_data(), **{"batch_size": 8, **kwargs})
    assert not built, "checked before the model is built"


def test_fit_model_says_what_a_model_and_the_data_must_be():
    x, y = _tiny_data()
    with pytest.raises(ValueError, match=r"model: expected a keras.Model or a function that "
                                         r"builds one, got str"):
        fit_model("cnn", (x, y), epochs=1, batch_size=8)
    with pytest.raises(ValueError, match=r"model: expected the builder to return a "
                                         r"keras.Model, got NoneType"):
        fit_model(lambda: None, (x, y), epochs=1, batch_size=8)
    with pytest.raises(ValueError, match=r"train: expected a dataset or a pair \(x, y\) of "
                                         r"arrays, got a tuple of 3"):
        fit_model(_build_tiny, (x, y, y), epochs=1, batch_size=8)
    with pytest.raises(ValueError, match=r"batch_size: expected None for a dataset"):
        from course_utils.datasets import make_dataset

        fit_model(_build_tiny, make_dataset((x[..., 0] * 255).astype("uint8"), y, batch_size=8,
                                            training=False), epochs=1, batch_size=8)
    compiled = models.compile_classifier(_build_tiny())
    with pytest.raises(ValueError, match=r"optimizer: expected None for a model that is "
                                         r"compiled already"):
        fit_model(compiled, (x, y), epochs=1, batch_size=8, learning_rate=0.1)


def test_repeat_and_mean_over_seeds_refuse_what_they_cannot_use():
    with pytest.raises(ValueError, match=r"seeds: expected a list of seeds such as range\(3\), "
                                         r"got 3"):
        repeat_over_seeds(lambda seed: seed, seeds=3)
    with pytest.raises(ValueError, match=r"seeds: expected different seeds, got \[1\]"):
        repeat_over_seeds(lambda seed: seed, seeds=[1, 2, 1])
    with pytest.raises(ValueError, match=r"seeds: expected at least one seed"):
        repeat_over_seeds(lambda seed: seed, seeds=[])
    with pytest.raises(ValueError, match=r"seeds: expected a whole number >= 0, got -1"):
        repeat_over_seeds(lambda seed: seed, seeds=[-1])
    with pytest.raises(ValueError, match=r"runs: expected at least 2 runs to measure a spread"):
        mean_over_seeds({0: {"loss": [1.0]}})
    with pytest.raises(ValueError, match=r"seed 1 has epochs \[1\].*did a run stop early"):
        mean_over_seeds({0: {"loss": [1.0, 0.5]}, 1: {"loss": [1.0]}})


def test_a_change_counts_only_when_every_seed_agrees_and_the_mean_beats_the_spread():
    assert judge_change([0.05, 0.07, 0.06], higher_is_better=True) == "better"
    assert judge_change([0.05, 0.07, 0.06], higher_is_better=False) == "worse"
    assert judge_change([-0.3, -0.4, -0.5], higher_is_better=False) == "better"
    # one seed disagrees: noise, however large the mean
    assert judge_change([0.2, 0.3, -0.01], higher_is_better=True) == "within noise"
    # every seed agrees, but the spread is larger than the mean
    assert judge_change([0.01, 0.02, 0.30], higher_is_better=True) == "within noise"
    assert judge_change([0.0, 0.0, 0.0], higher_is_better=True) == "within noise"
    for bad in ([0.1], [0.1, math.nan], "abc"):
        with pytest.raises(ValueError, match="differences"):
            judge_change(bad, higher_is_better=True)


def test_final_over_seeds_gives_each_set_up_its_mean_and_spread():
    runs = {"slow": {0: {"loss": [2.0, 1.0]}, 1: {"loss": [2.0, 1.2]}, 2: {"loss": [2.0, 1.4]}},
            "fast": {0: {"loss": [1.5, 0.5]}, 1: {"loss": [1.5, 0.5]}, 2: {"loss": [1.5, 0.8]}}}
    summary = final_over_seeds(runs)
    assert summary["slow"] == pytest.approx((1.2, 0.2))
    assert summary["fast"] == pytest.approx((0.6, 0.173205), abs=1e-6)
    with pytest.raises(ValueError, match="metric: expected one of loss, got 'val_loss'"):
        final_over_seeds(runs, "val_loss")
    with pytest.raises(ValueError, match="at least 2 runs"):
        final_over_seeds({"one": {0: {"loss": [1.0]}}})


def test_paired_change_pairs_the_runs_seed_by_seed():
    slow = {0: {"loss": [2.0, 1.0]}, 1: {"loss": [2.0, 1.2]}, 2: {"loss": [2.0, 1.4]}}
    # each seed 0.3 lower than slow: one mean (0.7 < 1.2) inside the other's spread would
    # not count unpaired, but every seed agrees and the differences do not scatter
    steady = {seed: {"loss": [2.0, run["loss"][-1] - 0.3]} for seed, run in slow.items()}
    change = paired_change(steady, slow, "loss", higher_is_better=False)
    assert change.per_seed == pytest.approx((-0.3, -0.3, -0.3))
    assert change.verdict == "better"
    assert paired_change(slow, steady, "loss", higher_is_better=False).verdict == "worse"
    mixed = {0: {"loss": [2.0, 0.9]}, 1: {"loss": [2.0, 1.3]}, 2: {"loss": [2.0, 1.3]}}
    assert paired_change(mixed, slow, "loss", higher_is_better=False).verdict == "within noise"
    # the order of the seeds in the mappings does not matter, the seed does
    reordered = dict(reversed(list(steady.items())))
    assert paired_change(reordered, slow, "loss", higher_is_better=False).per_seed == \
        change.per_seed
    with pytest.raises(ValueError, match=r"seeds \[0, 1\]; expected the baseline's \[0, 1, 2\]"):
        paired_change({0: slow[0], 1: slow[1]}, slow, "loss", higher_is_better=False)
    with pytest.raises(ValueError, match="metric: expected one of loss, got 'val_loss'"):
        paired_change(steady, slow, "val_loss", higher_is_better=False)


# --------------------------------------------------------------------------- reused models


def _tiny(rate=0.05, momentum=0.9, optimizer="sgd"):
    model = models.build_fingers_cnn((8, 8, 1), 12, depth=1, width=4)
    update = (keras.optimizers.SGD(rate, momentum=momentum) if optimizer == "sgd"
              else keras.optimizers.Adam(rate))
    model.compile(optimizer=update, loss="sparse_categorical_crossentropy")
    return model


def _fit(build, **kwargs):
    x = np.random.default_rng(0).random((32, 8, 8, 1), "float32")
    y = np.arange(32) % 12
    history = fit_model(lambda: build(**kwargs), (x, y), epochs=3, batch_size=8, seed=3)
    return history, history.model


def test_a_reused_compiled_model_gives_the_same_run_number_for_number():
    build = reuse_compiled_model(_tiny)
    fresh, _ = _fit(_tiny)
    first, first_model = _fit(build)
    again, again_model = _fit(build)
    other_rate, other_model = _fit(build, rate=0.01)
    assert again_model is first_model is other_model, "the same set-up reuses one model"
    assert first == fresh and again == fresh, (fresh, first, again)
    assert other_rate == _fit(_tiny, rate=0.01)[0], "the rate is copied from the fresh model"


def test_a_reused_compiled_model_is_not_shared_by_another_set_up():
    build = reuse_compiled_model(_tiny)
    _, sgd = _fit(build)
    _, slower = _fit(build, momentum=0.5)
    _, adam = _fit(build, optimizer="adam")
    assert len({id(sgd), id(slower), id(adam)}) == 3, "momentum and optimizer change the set-up"
    assert _fit(build, momentum=0.5)[1] is slower and _fit(build, optimizer="adam")[1] is adam
    sgd.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    assert _fit(build)[1] is not sgd, "a model compiled again since is not reused"
    with pytest.raises(ValueError, match="compiled"):
        reuse_compiled_model(lambda: models.build_fingers_cnn((8, 8, 1), 12, depth=1))()


def _variant(seed=0, name="a", dropout=0.5, l2=0.0, rate=3e-3):
    """A network like lesson 02's: its seed, name and initializers in its config."""
    model = models.build_fingers_cnn((8, 8, 1), 12, depth=1, width=4, batch_norm=True,
                                     dropout=dropout, l2=l2, seed=seed, name=name)
    model.compile(optimizer=keras.optimizers.Adam(rate), loss="sparse_categorical_crossentropy")
    return model


def test_a_reused_model_ignores_what_only_sets_initial_values():
    """Another seed or model name is the same set-up (the initial values are copied);
    another penalty or dropout rate is another graph, so another model."""
    build = reuse_compiled_model(_variant)
    fresh = {seed: _fit(_variant, seed=seed)[0] for seed in (0, 1)}
    first, model = _fit(build, seed=0, name="baseline")
    second, again = _fit(build, seed=1, name="augmentation", rate=0.05)
    assert again is model, "a seed, a name and a rate do not change the set-up"
    assert first == fresh[0] and second != fresh[1]
    assert _fit(build, seed=1)[0] == fresh[1], "the run is the fresh model's, seed for seed"
    assert _fit(build, l2=1e-3)[1] is not model and _fit(build, dropout=0.2)[1] is not model


def test_a_loss_function_defined_again_under_its_name_is_another_set_up():
    """Keras saves a loss function by its name: a student who fixes ``my_loss`` and runs
    the cell again must train with the new one, not with the traced old one."""
    def compiled(loss):
        model = models.build_fingers_cnn((8, 8, 1), 12, depth=1, width=4)
        model.compile(optimizer=keras.optimizers.SGD(0.05), loss=loss)
        return model

    build = reuse_compiled_model(compiled)

    def my_loss(y_true, y_pred):
        return keras.losses.sparse_categorical_crossentropy(y_true, y_pred) * 0.0

    broken = _fit(build, loss=my_loss)[1]
    assert _fit(build, loss=my_loss)[1] is broken, "the same function: the same set-up"

    def my_loss(y_true, y_pred):  # noqa: F811 - the fix, under the same name
        return keras.losses.sparse_categorical_crossentropy(y_true, y_pred)

    fixed, model = _fit(build, loss=my_loss)
    assert model is not broken and fixed["loss"][-1] > 0.1

    class MyLoss(keras.losses.Loss):
        def call(self, y_true, y_pred):
            return keras.losses.sparse_categorical_crossentropy(y_true, y_pred) * 0.0

    broken = _fit(build, loss=MyLoss(name="mine"))[1]
    assert _fit(build, loss=MyLoss(name="mine"))[1] is broken, "the same class: the same set-up"

    class MyLoss(keras.losses.Loss):  # noqa: F811 - the fix, under the same name
        def call(self, y_true, y_pred):
            return keras.losses.sparse_categorical_crossentropy(y_true, y_pred)

    fixed, model = _fit(build, loss=MyLoss(name="mine"))
    assert model is not broken and fixed["loss"][-1] > 0.1
    own = keras.losses.SparseCategoricalCrossentropy
    assert _fit(build, loss=own())[1] is _fit(build, loss=own())[1], "Keras' own: by name"


def test_a_metric_defined_again_under_its_name_is_another_set_up():
    """Metrics too: Keras saves a metric function or class of one's own by its name, so
    the fixed one under the old name must report with its own traced step."""
    def compiled(metric):
        model = models.build_fingers_cnn((8, 8, 1), 12, depth=1, width=4)
        model.compile(optimizer=keras.optimizers.SGD(0.05),
                      loss="sparse_categorical_crossentropy", metrics=[metric])
        return model

    build = reuse_compiled_model(compiled)

    def hits(y_true, y_pred):
        return keras.ops.zeros_like(keras.ops.max(y_pred, axis=-1))

    broken = _fit(build, metric=hits)[1]
    assert _fit(build, metric=hits)[1] is broken, "the same function: the same set-up"

    def hits(y_true, y_pred):  # noqa: F811 - the fix, under the same name
        return keras.ops.ones_like(keras.ops.max(y_pred, axis=-1))

    fixed, model = _fit(build, metric=hits)
    assert model is not broken and fixed["hits"] == [1.0, 1.0, 1.0], fixed

    class Count(keras.metrics.Sum):
        def update_state(self, y_true, y_pred, sample_weight=None):
            return super().update_state(keras.ops.zeros_like(y_pred[:, 0]))

    broken = _fit(build, metric=Count(name="count"))[1]
    assert _fit(build, metric=Count(name="count"))[1] is broken, "the same class: the same set-up"

    class Count(keras.metrics.Sum):  # noqa: F811 - the fix, under the same name
        def update_state(self, y_true, y_pred, sample_weight=None):
            return super().update_state(keras.ops.ones_like(y_pred[:, 0]))

    fixed, model = _fit(build, metric=Count(name="count"))
    assert model is not broken and fixed["count"][-1] == 32.0, fixed
    own = keras.metrics.SparseCategoricalAccuracy
    assert _fit(build, metric=own())[1] is _fit(build, metric=own())[1], "Keras' own: by name"

