"""Decay schedules: the learning rate as a function of the epoch.

``keras.callbacks.LearningRateScheduler(schedule)`` calls ``schedule(epoch,
current_rate)`` at the start of every epoch (counted from 0) and sets the rate it
returns. The three decays of lesson 01 are one class each, with its formula, built
by :func:`make_step_decay`, :func:`make_exponential_decay` and
:func:`make_inverse_time_decay`:

- :class:`EpochStepDecay`: ``initial_rate * factor ** (t // every)`` (Keras:
  ``ExponentialDecay(initial_rate, every, factor, staircase=True)``);
- :class:`EpochExponentialDecay`: ``initial_rate * exp(-k * t)`` (Keras:
  ``ExponentialDecay(initial_rate, 1, exp(-k))``);
- :class:`EpochInverseTimeDecay`: ``initial_rate / (1 + k * t)`` (Keras:
  ``InverseTimeDecay(initial_rate, 1, k)``).

They compute in Python floats (the values lesson 01 compares with Keras'), import
no TensorFlow and, like ``keras.optimizers.schedules``, serialise with ``get_config``
/ ``from_config``. They are not ``keras.optimizers.schedules.LearningRateSchedule``
subclasses on purpose: those are given to the optimizer and count its steps
(batches, as a tensor), these are given to ``LearningRateScheduler`` and count
epochs. :func:`schedule_rates` evaluates both kinds, :func:`plot_schedules` draws
them.

Examples
--------
>>> schedule = make_step_decay(0.1, factor=0.5, every=2)
>>> [schedule(epoch) for epoch in range(5)]
[0.1, 0.1, 0.05, 0.05, 0.025]
>>> schedule.get_config()
{'initial_rate': 0.1, 'factor': 0.5, 'every': 2}
>>> EpochStepDecay.from_config(schedule.get_config()) == schedule
True
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Mapping
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from course_utils.runtime.checks import check_scalar

__all__ = [
    "EpochExponentialDecay",
    "EpochInverseTimeDecay",
    "EpochSchedule",
    "EpochStepDecay",
    "make_exponential_decay",
    "make_inverse_time_decay",
    "make_step_decay",
    "plot_schedules",
    "schedule_rates",
]


class EpochSchedule:
    """A learning rate as a function of the epoch, for ``keras.callbacks.LearningRateScheduler``.

    Keras calls ``schedule(epoch, current_rate)`` at the start of every epoch
    (counted from 0); the current rate is ignored and ``schedule(epoch)`` works
    too. A subclass computes one formula in :meth:`rate`; ``get_config`` returns
    its arguments and ``from_config`` rebuilds it from them.

    Examples
    --------
    >>> schedule = EpochInverseTimeDecay(0.1, k=1.0)
    >>> schedule(1), schedule(1, 0.5)   # Keras passes the current rate too
    (0.05, 0.05)
    >>> isinstance(schedule, EpochSchedule)
    True
    """

    def __call__(self, epoch: int, learning_rate: float | None = None) -> float:
        return self.rate(check_scalar(epoch, "epoch", int, min_val=0))

    def rate(self, epoch: int) -> float:
        """The learning rate of epoch ``epoch`` (0, 1, ...)."""
        raise NotImplementedError(f"{type(self).__name__} must define rate(epoch)")

    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments, for :meth:`from_config`."""
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> EpochSchedule:
        """The schedule that ``get_config`` described."""
        return cls(**config)


@dataclasses.dataclass(frozen=True)
class EpochStepDecay(EpochSchedule):
    """Step decay: ``eta_t = initial_rate * factor ** floor(t / every)``.

    The rate stays put for ``every`` epochs, then is multiplied by ``factor``
    (in ``(0, 1]``). Keras computes the same with ``ExponentialDecay(initial_rate,
    every, factor, staircase=True)`` or ``PiecewiseConstantDecay`` (per optimizer
    step there, per epoch here).

    Examples
    --------
    >>> [EpochStepDecay(1.0, factor=0.1, every=3)(t) for t in (0, 2, 3, 6)]
    [1.0, 1.0, 0.1, 0.010000000000000002]
    """

    initial_rate: float
    factor: float = 0.5
    every: int = 10

    def __post_init__(self) -> None:
        every = check_scalar(self.every, "every", int, min_val=1)
        factor = check_scalar(self.factor, "factor", float, min_val=0, max_val=1,  # a decay
                              include_boundaries="right")
        initial_rate = check_scalar(self.initial_rate, "initial_rate", float, min_val=0,
                                    include_boundaries="neither", finite=True)
        _set_fields(self, initial_rate=initial_rate, factor=factor, every=every)

    def rate(self, epoch: int) -> float:
        return float(self.initial_rate * self.factor ** (epoch // self.every))


@dataclasses.dataclass(frozen=True)
class EpochExponentialDecay(EpochSchedule):
    """Exponential decay: ``eta_t = initial_rate * exp(-k * t)``, ``k >= 0``.

    Keras: ``ExponentialDecay(initial_rate, decay_steps=1, decay_rate=exp(-k))``.

    Examples
    --------
    >>> round(EpochExponentialDecay(0.1, k=0.5)(2), 6)
    0.036788
    """

    initial_rate: float
    k: float

    def __post_init__(self) -> None:
        initial_rate = check_scalar(self.initial_rate, "initial_rate", float, min_val=0,
                                    include_boundaries="neither", finite=True)
        _set_fields(self, initial_rate=initial_rate,
                    k=check_scalar(self.k, "k", float, min_val=0, finite=True))

    def rate(self, epoch: int) -> float:
        return float(self.initial_rate * math.exp(-self.k * epoch))


@dataclasses.dataclass(frozen=True)
class EpochInverseTimeDecay(EpochSchedule):
    """1/t (inverse time) decay: ``eta_t = initial_rate / (1 + k * t)``, ``k >= 0``.

    Keras: ``InverseTimeDecay(initial_rate, decay_steps=1, decay_rate=k)``.

    Examples
    --------
    >>> EpochInverseTimeDecay(0.1, k=1.0)(4)
    0.02
    """

    initial_rate: float
    k: float

    def __post_init__(self) -> None:
        initial_rate = check_scalar(self.initial_rate, "initial_rate", float, min_val=0,
                                    include_boundaries="neither", finite=True)
        _set_fields(self, initial_rate=initial_rate,
                    k=check_scalar(self.k, "k", float, min_val=0, finite=True))

    def rate(self, epoch: int) -> float:
        return float(self.initial_rate / (1.0 + self.k * epoch))


def make_step_decay(initial_rate: float, *, factor: float = 0.5,
                    every: int = 10) -> EpochStepDecay:
    """Step decay: ``eta_t = initial_rate * factor ** floor(t / every)`` (:class:`EpochStepDecay`).

    Examples
    --------
    >>> [make_step_decay(1.0, factor=0.1, every=3)(t) for t in (0, 2, 3, 6)]
    [1.0, 1.0, 0.1, 0.010000000000000002]
    """
    return EpochStepDecay(initial_rate, factor=factor, every=every)


def make_exponential_decay(initial_rate: float, *, k: float) -> EpochExponentialDecay:
    """Exponential decay: ``eta_t = initial_rate * exp(-k * t)`` (:class:`EpochExponentialDecay`).

    Examples
    --------
    >>> round(make_exponential_decay(0.1, k=0.5)(2), 6)
    0.036788
    """
    return EpochExponentialDecay(initial_rate, k=k)


def make_inverse_time_decay(initial_rate: float, *, k: float) -> EpochInverseTimeDecay:
    """1/t decay: ``eta_t = initial_rate / (1 + k * t)`` (:class:`EpochInverseTimeDecay`).

    Examples
    --------
    >>> make_inverse_time_decay(0.1, k=1.0)(4)
    0.02
    """
    return EpochInverseTimeDecay(initial_rate, k=k)


def schedule_rates(schedule: Any, epochs: int) -> np.ndarray:
    """The rate of ``schedule`` at epochs ``0 .. epochs - 1`` as a float array.

    ``schedule`` is a function of the epoch (``f(epoch)`` or ``f(epoch, rate)``,
    as ``LearningRateScheduler`` takes it) or a Keras
    ``keras.optimizers.schedules.LearningRateSchedule`` (evaluated at step
    ``t``: one step per epoch).

    Examples
    --------
    >>> schedule_rates(make_inverse_time_decay(1.0, k=1.0), 4).tolist()
    [1.0, 0.5, 0.3333333333333333, 0.25]
    """
    epochs = check_scalar(epochs, "epochs", int, min_val=1)
    if not callable(schedule):
        raise ValueError(f"schedule: expected a function of the epoch, got {schedule!r}")
    if _is_keras_schedule(schedule):
        return np.array(_keras_rates(schedule, epochs))
    rates = []
    for t in range(epochs):
        try:
            rates.append(float(schedule(t, None)))
        except TypeError:
            rates.append(float(schedule(t)))
    return np.array(rates)


def plot_schedules(schedules: Mapping[str, Any], epochs: int, *, log: bool = True,
                   first_epoch: int = 0, unit: str = "epoch") -> Figure:
    """Learning rate against epoch for each named schedule (see :func:`schedule_rates`).

    A value may also be a sequence of rates already computed (e.g. the
    ``learning_rate`` a Keras history recorded, one per epoch). Such a rate held for
    the whole epoch, so it is drawn as a staircase, as step decay is; the epochs are
    numbered from ``first_epoch`` (0 as ``LearningRateScheduler`` counts them, 1 as a
    history's epochs are). ``unit`` names what is counted on the x-axis: ``"step"`` for
    schedules of the optimizer step (Keras' schedule objects, warm-up, one-cycle).

    Examples
    --------
    >>> fig = plot_schedules({"step": make_step_decay(0.1, every=5)}, 20)
    >>> fig.axes[0].get_yscale()
    'log'
    >>> line = plot_schedules({"recorded": [0.1, 0.1, 0.05]}, 3, first_epoch=1).axes[0].lines[0]
    >>> line.get_xdata().tolist(), line.get_drawstyle()
    ([1, 2, 3], 'steps-post')
    """
    if not isinstance(schedules, Mapping) or not schedules:
        raise ValueError("schedules: expected a non-empty {name: schedule} mapping")
    first_epoch = check_scalar(first_epoch, "first_epoch", int, min_val=0)
    fig = Figure(figsize=(6.5, 3.8), layout="constrained")
    ax = fig.add_subplot()
    for name, schedule in schedules.items():
        if callable(schedule):
            rates = schedule_rates(schedule, epochs)
        else:
            rates = np.asarray(schedule, dtype=float)[:epochs]
        staircase = not callable(schedule) or "step" in str(name).lower()
        ax.plot(first_epoch + np.arange(len(rates)), rates,
                marker="." if len(rates) <= 30 else None, lw=1.5,
                drawstyle="steps-post" if staircase else "default", label=name)
    if log:
        ax.set_yscale("log")
    ax.set(xlabel=unit, ylabel="learning rate" + (" (log scale)" if log else ""),
           title="learning-rate schedules")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small")
    return fig


def _is_keras_schedule(obj: Any) -> bool:
    # A Keras schedule object exists only once Keras is imported: never import it here.
    keras = sys.modules.get("keras")
    schedules = getattr(getattr(keras, "optimizers", None), "schedules", None)
    base = getattr(schedules, "LearningRateSchedule", None)
    return base is not None and isinstance(obj, base)


def _keras_rates(schedule: Any, steps: int) -> list[float]:
    """A Keras schedule at every step: in one traced TensorFlow call (one call per step
    takes milliseconds each), else step by step."""
    try:
        import tensorflow as tf

        def rate(step: Any) -> Any:
            return tf.cast(schedule(step), tf.float64)

        evaluate = tf.function(lambda s: tf.map_fn(rate, s, fn_output_signature=tf.float64))
        return [float(v) for v in evaluate(tf.range(steps, dtype=tf.int64)).numpy()]
    except Exception:  # noqa: BLE001 - another backend: the slow way gives the same rates
        return [float(np.asarray(schedule(step))) for step in range(steps)]


def _set_fields(schedule: EpochSchedule, **values: Any) -> None:
    for name, value in values.items():
        object.__setattr__(schedule, name, value)  # the dataclasses are frozen
