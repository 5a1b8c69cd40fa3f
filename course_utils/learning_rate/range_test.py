"""The learning-rate range test, and the per-batch losses it reads from Keras' logs.

Keras 3 logs the running mean of the loss over an epoch; :func:`recover_batch_losses`
and the callback :class:`BatchLossHistory` turn it back into the loss of every batch
(``(i + 1) * mean_i - i * mean_{i-1}``). The range test raises the rate a little every
batch, watches that loss, stops when it diverges and restores the weights:
:func:`find_learning_rate` runs it (the callback :class:`LearningRateRangeTest`),
:func:`suggest_learning_rate` reads a starting rate from it and
:func:`plot_range_test` draws it.

The two callbacks are Keras callbacks, in :mod:`course_utils.learning_rate.callbacks`
(which imports Keras); this module does not import TensorFlow.

Examples
--------
>>> recover_batch_losses([3.0, 2.5, 2.0]).tolist()
[3.0, 2.0, 1.0]
>>> suggest_learning_rate([1e-3, 1e-2, 1e-1], [2.0, 1.5, float("nan")])
0.001
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from course_utils.runtime.tf_setup import import_keras, import_tensorflow

if TYPE_CHECKING:  # pragma: no cover
    import keras
    import tensorflow as tf

__all__ = [
    "RangeTestResult",
    "check_rate_not_scheduled",
    "find_learning_rate",
    "plot_range_test",
    "recover_batch_losses",
    "suggest_learning_rate",
]


def recover_batch_losses(running_means: ArrayLike) -> np.ndarray:
    """Per-batch losses from the running means Keras 3 logs during one epoch.

    ``logs["loss"]`` after batch ``i`` (0-based) is the mean of the losses of
    batches ``0..i`` (batches of equal size), so the loss of batch ``i`` is
    ``(i + 1) * mean_i - i * mean_{i-1}`` (``mean_0`` for the first).

    Examples
    --------
    >>> recover_batch_losses([3.0, 2.5, 2.0]).tolist()
    [3.0, 2.0, 1.0]
    """
    means = np.asarray(running_means, dtype=float).reshape(-1)
    if means.size == 0:
        raise ValueError("running_means: expected at least one value")
    i = np.arange(means.size)
    previous = np.r_[0.0, means[:-1]]
    return (i + 1) * means - i * previous


# --------------------------------------------------------------------------- range test


@dataclasses.dataclass(frozen=True)
class RangeTestResult:
    """What a learning-rate range test measured.

    Attributes
    ----------
    rates: the learning rate of every batch (growing geometrically).
    losses: the loss of every batch, recovered from Keras' running mean.
    smoothed: the losses smoothed by a bias-corrected exponential moving average.
    suggested_rate: :func:`suggest_learning_rate` of ``rates`` and ``smoothed``.
    diverged: True when the test stopped because the loss blew up.

    Examples
    --------
    >>> r = RangeTestResult(np.array([1e-3, 1e-2]), np.array([2.4, 2.0]),
    ...                     np.array([2.4, 2.2]), 1e-3, False)
    >>> r.suggested_rate, r.diverged
    (0.001, False)
    """

    rates: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    suggested_rate: float
    diverged: bool


def check_rate_not_scheduled(optimizer: Any) -> None:
    """Raise ``ValueError`` when ``optimizer`` takes its rate from a ``LearningRateSchedule``.

    A range test (or any callback) sets ``optimizer.learning_rate`` between
    batches; an optimizer built on a schedule object computes its rate from the
    step count instead and cannot be given one.

    Examples
    --------
    >>> keras = import_keras()                                         # doctest: +SKIP
    >>> check_rate_not_scheduled(keras.optimizers.SGD(0.01))           # doctest: +SKIP
    """
    keras = import_keras()
    if not isinstance(optimizer, keras.optimizers.Optimizer):
        raise ValueError(
            f"optimizer: expected a compiled model's keras.optimizers.Optimizer, "
            f"got {type(optimizer).__name__} (compile the model first)"
        )
    rate = getattr(optimizer, "_learning_rate", None)
    if isinstance(rate, keras.optimizers.schedules.LearningRateSchedule):
        raise ValueError(
            f"optimizer {optimizer.name!r} takes its learning rate from a schedule "
            f"({type(rate).__name__}); the range test sets the rate itself, batch by batch. "
            "Compile the model with a plain float learning rate for the test, e.g. "
            f"{type(optimizer).__name__}(learning_rate=1e-3), and add the schedule afterwards."
        )


def find_learning_rate(
    model: keras.Model,
    dataset: tf.data.Dataset,
    *,
    min_rate: float = 1e-6,
    max_rate: float = 1.0,
    steps: int = 100,
    divergence: float = 4.0,
    smoothing: float = 0.9,
) -> RangeTestResult:
    """Run the learning-rate range test on a compiled model; its weights are left unchanged.

    The model trains on ``dataset`` (a ``tf.data.Dataset`` of ``(images, labels)``
    batches, e.g. from :func:`course_utils.datasets.make_dataset`) for at most
    ``steps`` batches while the rate grows geometrically from ``min_rate`` to
    ``max_rate``. The batches are re-cut to the size of the first one (the last
    partial batch is dropped, so every running mean is over equal batches) and the
    data repeats if ``steps`` is more than one pass. See
    :class:`LearningRateRangeTest` for the stopping rule; the weights, the
    optimizer's state and its rate are restored at the end.

    Raises ``ValueError`` when the model is not compiled, or its optimizer's rate
    is a ``LearningRateSchedule`` (the message says what to do instead).

    Examples
    --------
    >>> result = find_learning_rate(model, train_ds, steps=60)   # doctest: +SKIP
    >>> plot_range_test(result)                                   # doctest: +SKIP
    """
    keras = import_keras()
    tf = import_tensorflow()
    if not isinstance(model, keras.Model):
        raise ValueError(f"model: expected a keras.Model, got {type(model).__name__}")
    if getattr(model, "optimizer", None) is None:
        raise ValueError("model: compile the model (loss and optimizer) before the range test")
    check_rate_not_scheduled(model.optimizer)
    if not isinstance(dataset, tf.data.Dataset):
        raise ValueError(
            f"dataset: expected a tf.data.Dataset of (images, labels) batches, "
            f"got {type(dataset).__name__}"
        )
    from course_utils.learning_rate.callbacks import LearningRateRangeTest  # imports Keras

    test = LearningRateRangeTest(min_rate, max_rate, steps, divergence=divergence,
                                 smoothing=smoothing)
    first_images, _ = next(iter(dataset))
    batch_size = int(first_images.shape[0])
    equal = dataset.unbatch().batch(batch_size, drop_remainder=True).repeat()
    model.fit(equal, epochs=1, steps_per_epoch=test.steps, callbacks=[test], shuffle=False,
              verbose=0)  # a dataset shuffles itself
    assert test.result is not None
    return test.result


def suggest_learning_rate(rates: ArrayLike, losses: ArrayLike) -> float:
    """A starting rate from a range test: a tenth of the rate where the loss is lowest.

    At the rate of the lowest loss the training is already on the edge of
    diverging; ten times less still learns fast and is safely stable. NaN and
    infinite losses (after divergence) are ignored.

    Examples
    --------
    >>> suggest_learning_rate([1e-4, 1e-3, 1e-2, 1e-1], [2.5, 2.0, 1.5, float("nan")])
    0.001
    """
    rates = np.asarray(rates, dtype=float).reshape(-1)
    losses = np.asarray(losses, dtype=float).reshape(-1)
    if rates.shape != losses.shape or rates.size == 0:
        raise ValueError(
            f"rates and losses: expected two sequences of the same non-zero length, got "
            f"{rates.size} and {losses.size}"
        )
    finite = np.isfinite(losses)
    if not finite.any():
        raise ValueError("losses: every loss is NaN or infinite; start the test at a lower rate")
    best = int(np.argmin(np.where(finite, losses, np.inf)))
    return float(rates[best] / 10)


def plot_range_test(result: RangeTestResult) -> Figure:
    """Loss against learning rate (log axis), raw and smoothed, with the suggested rate.

    Examples
    --------
    >>> r = RangeTestResult(np.geomspace(1e-4, 1, 5), np.array([2.5, 2.4, 1.8, 2.0, 9.0]),
    ...                     np.array([2.5, 2.45, 2.2, 2.1, 4.0]), 0.01, True)
    >>> plot_range_test(r).axes[0].get_xscale()
    'log'
    """
    if not isinstance(result, RangeTestResult):
        raise ValueError(f"result: expected a RangeTestResult, got {type(result).__name__}")
    fig = Figure(figsize=(6.5, 3.8), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(result.rates, result.losses, color="0.7", lw=1, label="loss of each batch")
    ax.plot(result.rates, result.smoothed, color="C0", label="smoothed")
    ax.axvline(result.suggested_rate, color="C2", linestyle="--",
               label=f"suggested rate {result.suggested_rate:.2g}")
    finite = result.smoothed[np.isfinite(result.smoothed)]
    if finite.size:
        ax.set_ylim(0.9 * finite.min(), max(1.5 * finite[0], finite.min() * 1.5))
    ax.set_xscale("log")
    end = "diverged" if result.diverged else "reached the last rate"
    ax.set(xlabel="learning rate (log scale)", ylabel="training loss",
           title=f"learning-rate range test ({len(result.rates)} batches, {end})")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small")
    return fig
