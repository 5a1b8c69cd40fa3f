"""The two Keras callbacks of lesson 01: per-batch losses and the learning-rate range test.

This module imports Keras (and so TensorFlow) when it loads;
``course_utils.learning_rate`` loads it on first use of :class:`BatchLossHistory` or
:class:`LearningRateRangeTest`. :func:`~course_utils.learning_rate.find_learning_rate`
runs the range test for you.

Examples
--------
>>> issubclass(LearningRateRangeTest, keras.callbacks.Callback)
True
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from course_utils.learning_rate.range_test import (
    RangeTestResult,
    check_rate_not_scheduled,
    suggest_learning_rate,
)
from course_utils.models import current_learning_rate
from course_utils.runtime.checks import check_scalar
from course_utils.runtime.tf_setup import import_keras

keras = import_keras()  # quietly: TensorFlow's start-up log stays hidden

__all__ = ["BatchLossHistory", "LearningRateRangeTest"]


class BatchLossHistory(keras.callbacks.Callback):
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
        self.rates.append(current_learning_rate(self.model.optimizer))
        self._previous_mean = mean


class LearningRateRangeTest(BatchLossHistory):
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
        self.min_rate = check_scalar(min_rate, "min_rate", float, min_val=0,
                                     include_boundaries="neither", finite=True)
        self.max_rate = check_scalar(max_rate, "max_rate", float, min_val=self.min_rate,
                                     include_boundaries="neither", finite=True)
        self.steps = check_scalar(steps, "steps", int, min_val=2)
        self.divergence = check_scalar(divergence, "divergence", float, min_val=0,
                                       include_boundaries="neither", finite=True)
        self.smoothing = check_scalar(smoothing, "smoothing", float, min_val=0, max_val=1,
                                      include_boundaries="left")
        self.schedule = np.geomspace(self.min_rate, self.max_rate, self.steps)
        self.result: RangeTestResult | None = None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        super().on_train_begin(logs)
        optimizer = self.model.optimizer
        check_rate_not_scheduled(optimizer)
        if not optimizer.built:
            optimizer.build(self.model.trainable_variables)
        self._weights = self.model.get_weights()
        self._optimizer_state = [keras.ops.convert_to_numpy(v) for v in optimizer.variables]
        self._rate = current_learning_rate(optimizer)
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
