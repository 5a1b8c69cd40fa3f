"""The learning-rate range test, and the per-batch losses it reads from Keras' logs.

Keras 3 logs the running mean of the loss over an epoch; :func:`recover_batch_losses`
and the callback :class:`BatchLossHistory` turn it back into the loss of every batch
(``(i + 1) * mean_i - i * mean_{i-1}``). The range test raises the rate a little every
batch, watches that loss, stops when it diverges and restores the weights:
:func:`find_learning_rate` runs it (the callback :class:`LearningRateRangeTest`),
:func:`suggest_learning_rate` reads a starting rate from it and
:func:`plot_range_test` draws it.

The two callbacks subclass ``keras.callbacks.Callback``; they are created on first
access, so importing this module does not import TensorFlow.

Examples
--------
>>> recover_batch_losses([3.0, 2.5, 2.0]).tolist()
[3.0, 2.0, 1.0]
>>> suggest_learning_rate([1e-3, 1e-2, 1e-1], [2.0, 1.5, float("nan")])
0.001
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from course_utils.learning_rate._checks import check_count, check_positive
from course_utils.tf_setup import import_keras, import_tensorflow, lazy_keras_class

if TYPE_CHECKING:  # pragma: no cover
    import keras
    import tensorflow as tf

__all__ = [
    "BatchLossHistory",
    "LearningRateRangeTest",
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


class _BatchLossHistory:
    """Record the loss and the learning rate of every training batch (Keras callback).

    Keras 3 logs the running mean of the loss over the epoch; the callback turns
    it back into the loss of each batch (see :func:`recover_batch_losses`; the
    batches must have equal size, as in a data set whose size is a multiple of
    the batch size). After ``model.fit`` the attributes ``losses`` and ``rates``
    hold one value per batch, all epochs in a row.

    Examples
    --------
    >>> recorder = BatchLossHistory()                         # doctest: +SKIP
    >>> model.fit(train_ds, epochs=2, callbacks=[recorder])  # doctest: +SKIP
    >>> len(recorder.losses) == 2 * len(train_ds)            # doctest: +SKIP
    True
    """

    def __init__(self) -> None:
        super().__init__()
        self.losses: list[float] = []
        self.rates: list[float] = []
        self._previous_mean = 0.0

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.losses, self.rates = [], []

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        mean = float((logs or {}).get("loss", math.nan))
        if batch == 0:
            self._previous_mean = 0.0
        self.losses.append((batch + 1) * mean - batch * self._previous_mean)
        self.rates.append(_to_float(self.model.optimizer.learning_rate))
        self._previous_mean = mean


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


class _LearningRateRangeTest(_BatchLossHistory):
    """The learning-rate range test as a Keras callback.

    Before every batch it sets ``model.optimizer.learning_rate`` to the next rate
    of a geometric sequence from ``min_rate`` to ``max_rate`` in ``steps`` steps;
    after it, it records the batch's loss (recovered from Keras' running mean). It
    stops training when the smoothed loss exceeds ``divergence`` times its lowest
    value (or is NaN), or after ``steps`` batches, and then restores the weights,
    the optimizer's state and its learning rate as they were before. The result is
    in ``result`` (a :class:`RangeTestResult`).

    The optimizer must have a plain (float) learning rate: with a
    ``LearningRateSchedule`` the rate cannot be set per batch, and
    ``on_train_begin`` raises ``ValueError``. :func:`find_learning_rate` wraps it.

    Examples
    --------
    >>> test = LearningRateRangeTest(1e-5, 10.0, steps=60)                 # doctest: +SKIP
    >>> model.fit(train_ds, epochs=4, callbacks=[test], verbose=0)        # doctest: +SKIP
    >>> test.result.suggested_rate                                        # doctest: +SKIP
    0.0187
    """

    def __init__(
        self,
        min_rate: float = 1e-6,
        max_rate: float = 1.0,
        steps: int = 100,
        *,
        divergence: float = 4.0,
        smoothing: float = 0.9,
    ) -> None:
        super().__init__()
        self.min_rate = check_positive("min_rate", min_rate)
        self.max_rate = check_positive("max_rate", max_rate)
        if self.max_rate <= self.min_rate:
            raise ValueError(
                f"max_rate: expected a number larger than min_rate ({min_rate}), got {max_rate!r}"
            )
        self.steps = check_count("steps", steps, minimum=2)
        self.divergence = check_positive("divergence", divergence)
        if not 0 <= smoothing < 1:
            raise ValueError(f"smoothing: expected a number in [0, 1), got {smoothing}")
        self.smoothing = float(smoothing)
        self.schedule = np.geomspace(self.min_rate, self.max_rate, self.steps)
        self.result: RangeTestResult | None = None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        super().on_train_begin(logs)
        optimizer = self.model.optimizer
        check_rate_not_scheduled(optimizer)
        if not optimizer.built:
            optimizer.build(self.model.trainable_variables)
        self._weights = self.model.get_weights()
        self._optimizer_state = [_to_numpy(v) for v in optimizer.variables]
        self._rate = _to_float(optimizer.learning_rate)
        self._smoothed: list[float] = []
        self._average = 0.0
        self._diverged = False

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.model.optimizer.learning_rate = float(self.schedule[len(self.losses)])

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        super().on_train_batch_end(batch, logs)
        loss = self.losses[-1]
        step = len(self.losses)
        self._average = self.smoothing * self._average + (1 - self.smoothing) * loss
        smoothed = self._average / (1 - self.smoothing**step)
        self._smoothed.append(smoothed)
        if not math.isfinite(smoothed) or smoothed > self.divergence * min(self._smoothed):
            self._diverged = True
            self.model.stop_training = True
        elif step >= self.steps:
            self.model.stop_training = True

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self.model.set_weights(self._weights)
        optimizer = self.model.optimizer
        for variable, value in zip(optimizer.variables, self._optimizer_state, strict=True):
            variable.assign(value)
        optimizer.learning_rate = self._rate
        rates = np.asarray(self.rates, dtype=float)
        smoothed = np.asarray(self._smoothed, dtype=float)
        self.result = RangeTestResult(
            rates=rates,
            losses=np.asarray(self.losses, dtype=float),
            smoothed=smoothed,
            suggested_rate=suggest_learning_rate(rates, smoothed) if len(rates) else math.nan,
            diverged=self._diverged,
        )


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
    test = _callback_class("LearningRateRangeTest")(
        min_rate, max_rate, steps, divergence=divergence, smoothing=smoothing
    )
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


# --------------------------------------------------------------------------- helpers


def _to_numpy(value: Any) -> np.ndarray:
    return np.asarray(import_keras().ops.convert_to_numpy(value))


def _to_float(value: Any) -> float:
    return float(_to_numpy(value))


# The callbacks subclass keras.callbacks.Callback, which imports TensorFlow; they are
# assembled on first access (PEP 562) to keep this module's import light.
_LAZY_CLASSES = {
    "BatchLossHistory": (_BatchLossHistory, "callbacks.Callback"),
    "LearningRateRangeTest": (_LearningRateRangeTest, "callbacks.Callback"),
}

if TYPE_CHECKING:  # pragma: no cover

    class BatchLossHistory(_BatchLossHistory, keras.callbacks.Callback): ...

    class LearningRateRangeTest(_LearningRateRangeTest, keras.callbacks.Callback): ...


def __getattr__(name: str) -> Any:
    return lazy_keras_class(globals(), _LAZY_CLASSES, name)


def _callback_class(name: str) -> type:
    return globals().get(name) or lazy_keras_class(globals(), _LAZY_CLASSES, name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_CLASSES))
