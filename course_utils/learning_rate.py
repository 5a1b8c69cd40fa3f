"""Lesson 01, the learning rate: loss surfaces, decay schedules and the range test.

The learning rate is how large a step each update takes against the gradient. This
module holds what lesson 01 shows and later lessons reuse:

- :class:`QuadraticLoss`, :func:`gradient_descent` and :func:`plot_descent`: plain
  gradient descent on a 1-D or 2-D bowl, where the effect of the rate is exact
  (a step of ``lr`` on ``c / 2 * w**2`` multiplies ``w`` by ``1 - lr * c``);
- :func:`diagnose_loss_curve` and :func:`plot_symptoms`: the three loss-curve
  symptoms of a rate that is too high, too low or good;
- :func:`make_step_decay`, :func:`make_exponential_decay` and
  :func:`make_inverse_time_decay`: decay schedules as functions of the epoch, for
  ``keras.callbacks.LearningRateScheduler``; :func:`schedule_rates` evaluates them
  (and Keras' ``LearningRateSchedule`` objects) and :func:`plot_schedules` draws them;
- :func:`recover_batch_losses` and the callback :class:`BatchLossHistory`: Keras 3
  logs the running mean of the loss over an epoch; the loss of batch ``i`` is
  ``(i + 1) * mean_i - i * mean_{i-1}``;
- :func:`find_learning_rate` and the callback :class:`LearningRateRangeTest`: the
  learning-rate range test (raise the rate a little every batch, watch the loss,
  stop when it diverges, restore the weights), :func:`suggest_learning_rate` and
  :func:`plot_range_test`;
- :func:`updates_per_epoch`, :func:`measure_loss_noise` and
  :func:`plot_batch_losses`: full-batch, stochastic and mini-batch gradient
  descent compared.

The two callbacks subclass ``keras.callbacks.Callback``; they are created on first
access, so ``import course_utils.learning_rate`` does not import TensorFlow.

Examples
--------
>>> schedule = make_step_decay(0.1, factor=0.5, every=2)
>>> [schedule(epoch) for epoch in range(5)]
[0.1, 0.1, 0.05, 0.05, 0.025]
>>> diagnose_loss_curve([2.5, 2.0, 1.0])
'good'
>>> updates_per_epoch(480, 32)
15
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from course_utils.tf_setup import import_keras, import_tensorflow, lazy_keras_class

if TYPE_CHECKING:  # pragma: no cover
    import keras
    import tensorflow as tf

__all__ = [
    "GOOD",
    "TOO_HIGH",
    "TOO_LOW",
    "BatchLossHistory",
    "EpochSchedule",
    "LearningRateRangeTest",
    "QuadraticLoss",
    "RangeTestResult",
    "check_rate_not_scheduled",
    "diagnose_loss_curve",
    "find_learning_rate",
    "gradient_descent",
    "make_exponential_decay",
    "make_inverse_time_decay",
    "make_step_decay",
    "measure_loss_noise",
    "plot_batch_losses",
    "plot_descent",
    "plot_range_test",
    "plot_schedules",
    "plot_symptoms",
    "recover_batch_losses",
    "schedule_rates",
    "suggest_learning_rate",
    "updates_per_epoch",
]

TOO_HIGH = "too high"
TOO_LOW = "too low"
GOOD = "good"


# --------------------------------------------------------------------------- loss surfaces


@dataclasses.dataclass(frozen=True)
class QuadraticLoss:
    """The bowl ``L(w) = sum_j curvatures[j] / 2 * w_j**2``, minimum 0 at ``w = 0``.

    One curvature gives a 1-D parabola, two give a 2-D valley (narrow where the
    curvature is high). A gradient step of rate ``lr`` multiplies coordinate ``j``
    by ``1 - lr * curvatures[j]``: it converges smoothly for ``lr < 1 / c``,
    oscillates around the minimum for ``1 / c < lr < 2 / c`` and diverges for
    ``lr > 2 / c``. The steepest direction sets the largest usable rate.

    Examples
    --------
    >>> bowl = QuadraticLoss((1.0, 10.0))
    >>> float(bowl.loss([1.0, 1.0])), bowl.gradient([1.0, 1.0]).tolist()
    (5.5, [1.0, 10.0])
    >>> bowl.largest_stable_rate
    0.2
    """

    curvatures: tuple[float, ...]

    def __post_init__(self) -> None:
        values = tuple(float(c) for c in self.curvatures)
        if len(values) not in (1, 2) or not all(math.isfinite(c) and c > 0 for c in values):
            raise ValueError(
                f"curvatures: expected one or two positive numbers, got {self.curvatures!r}"
            )
        object.__setattr__(self, "curvatures", values)

    @property
    def dim(self) -> int:
        """Number of weights: 1 or 2."""
        return len(self.curvatures)

    @property
    def largest_stable_rate(self) -> float:
        """``2 / max(curvatures)``: any larger rate makes gradient descent diverge."""
        return 2.0 / max(self.curvatures)

    def loss(self, w: ArrayLike) -> np.ndarray:
        """Loss at ``w`` (shape ``(..., dim)``; a scalar is fine in 1-D)."""
        w = self._points(w)
        return 0.5 * np.sum(np.asarray(self.curvatures) * w**2, axis=-1)

    def gradient(self, w: ArrayLike) -> np.ndarray:
        """Gradient at ``w``: ``curvatures * w``, same shape as ``w``."""
        return np.asarray(self.curvatures) * self._points(w)

    def _points(self, w: ArrayLike) -> np.ndarray:
        w = np.asarray(w, dtype=float)
        if self.dim == 1 and (w.ndim == 0 or w.shape[-1] != 1):
            w = w[..., None]
        if w.shape[-1] != self.dim:
            raise ValueError(f"w: expected points with {self.dim} coordinates, got shape {w.shape}")
        return w


def gradient_descent(
    loss: QuadraticLoss,
    start: ArrayLike,
    learning_rate: float | Callable[[int], float],
    steps: int,
) -> np.ndarray:
    """The points visited by ``steps`` steps ``w <- w - learning_rate * gradient(w)``.

    ``learning_rate`` is a number, or a function of the step (0, 1, ...) such as
    an :class:`EpochSchedule` (one step per epoch). Returns an array of shape
    ``(steps + 1, loss.dim)``, the start included.

    Examples
    --------
    >>> gradient_descent(QuadraticLoss((1.0,)), [4.0], 0.5, 3)[:, 0].tolist()
    [4.0, 2.0, 1.0, 0.5]
    >>> gradient_descent(QuadraticLoss((1.0,)), [4.0], 2.5, 2)[:, 0].tolist()  # diverges
    [4.0, -6.0, 9.0]
    >>> gradient_descent(QuadraticLoss((1.0,)), [4.0], make_step_decay(0.5, every=1), 2)[:, 0]
    array([4. , 2. , 1.5])
    """
    rate_at = learning_rate if callable(learning_rate) else None
    if rate_at is None:
        learning_rate = _check_positive("learning_rate", learning_rate)
    steps = _check_count("steps", steps, minimum=0)
    w = loss._points(start).reshape(-1)
    path = [w.copy()]
    for step in range(steps):
        rate = rate_at(step) if rate_at is not None else learning_rate
        w = w - rate * loss.gradient(w)
        path.append(w.copy())
    return np.array(path)


def plot_descent(
    loss: QuadraticLoss,
    learning_rate: float | Callable[[int], float],
    *,
    start: ArrayLike | None = None,
    steps: int = 15,
) -> Figure:
    """Gradient descent drawn on the loss surface (left) and the loss per step (right).

    1-D: the parabola with the steps as numbered points; 2-D: the contour lines
    of the valley with the path. The title says whether the rate converges,
    oscillates or diverges on this bowl; ``learning_rate`` may also be a schedule
    (a function of the step, see :func:`gradient_descent`).

    Examples
    --------
    >>> fig = plot_descent(QuadraticLoss((1.0, 10.0)), 0.15)
    >>> len(fig.axes), fig.axes[1].get_xlabel()
    (2, 'step')
    """
    if start is None:
        start = [3.0] if loss.dim == 1 else [-4.0, 1.5]
    path = gradient_descent(loss, start, learning_rate, steps)
    values = loss.loss(path)
    shown = np.clip(path, -1e3, 1e3)
    fig = Figure(figsize=(10.0, 3.8), layout="constrained")
    surface, curve = fig.subplots(1, 2, width_ratios=(1.4, 1.0))
    reach = max(float(np.max(np.abs(path[0]))) * 1.3, 1.0)
    if loss.dim == 1:
        grid = np.linspace(-reach, reach, 200)
        surface.plot(grid, loss.loss(grid), color="0.5")
        surface.plot(shown[:, 0], loss.loss(shown), "o-", color="C3", markersize=4, lw=1)
        surface.set(xlim=(-reach, reach), ylim=(-0.05 * loss.loss(reach), 1.1 * loss.loss(reach)),
                    xlabel="weight w", ylabel="loss")
    else:
        xs, ys = np.meshgrid(np.linspace(-reach, reach, 120), np.linspace(-reach / 2, reach / 2, 80))
        surface.contour(xs, ys, loss.loss(np.stack([xs, ys], axis=-1)), levels=15, colors="0.6",
                        linewidths=0.7)
        surface.plot(shown[:, 0], shown[:, 1], "o-", color="C3", markersize=3, lw=1)
        surface.plot([0], [0], "k*", markersize=10)
        surface.set(xlim=(-reach, reach), ylim=(-reach / 2, reach / 2), xlabel="w1", ylabel="w2")
    curve.semilogy(np.arange(len(values)), np.maximum(values, 1e-12), "o-", markersize=3)
    curve.set(xlabel="step", ylabel="loss (log scale)")
    curve.grid(alpha=0.3)
    if callable(learning_rate):
        title = f"schedule: the loss ends at {values[-1]:.3g} after {steps} steps"
    else:
        title = f"learning rate {learning_rate:g}: {_descent_regime(loss, learning_rate)}"
    surface.set_title(title)
    return fig


def _descent_regime(loss: QuadraticLoss, learning_rate: float) -> str:
    factors = [abs(1 - learning_rate * c) for c in loss.curvatures]
    if max(factors) > 1:
        return "diverges"
    if max(factors) == 1:
        return "bounces for ever"
    if any(learning_rate * c > 1 for c in loss.curvatures):
        return "oscillates, then converges"
    return "converges"


# --------------------------------------------------------------------------- symptoms


def diagnose_loss_curve(losses: ArrayLike, *, tolerance: float = 0.1) -> str:
    """Say whether a training-loss curve shows a rate that is too high, too low or good.

    ``losses`` starts with the loss before training (or after the first epoch);
    ``tolerance`` is a share of that first loss:

    - ``"too high"``: a value is NaN or infinite (divergence), the loss jumps up
      between two points by more than ``tolerance`` (oscillation), or the last
      loss is more than ``tolerance`` above the first;
    - ``"too low"``: the last loss is still within ``tolerance`` of the first
      (a flat curve, a little above or below its start);
    - ``"good"``: otherwise, a steady decrease of more than ``tolerance``.

    Examples
    --------
    >>> diagnose_loss_curve([2.5, float("nan")])
    'too high'
    >>> diagnose_loss_curve([2.5, 2.48, 2.52])
    'too low'
    >>> diagnose_loss_curve([2.5, 1.2, 2.1, 1.0])
    'too high'
    """
    values = np.asarray(losses, dtype=float).reshape(-1)
    if values.size < 2:
        raise ValueError(f"losses: expected at least two values, got {values.size}")
    tolerance = _check_positive("tolerance", tolerance)
    band = tolerance * abs(values[0])
    if not np.all(np.isfinite(values)) or np.max(np.diff(values)) > band:
        return TOO_HIGH
    if values[-1] > values[0] + band:
        return TOO_HIGH
    if values[-1] >= values[0] - band:
        return TOO_LOW
    return GOOD


def plot_symptoms(runs: Mapping[str, Any], *, initial_loss: float | None = None) -> Figure:
    """Loss curves of several runs side by side, one axis each, titled with the diagnosis.

    ``runs`` maps a name (e.g. ``"lr 1e-05"``) to a ``keras.callbacks.History`` or
    a dict with ``"loss"`` (and optionally ``"val_loss"``) per epoch. With
    ``initial_loss`` (the loss before training) each curve starts from it at epoch
    0 and a dotted line marks it. Non-finite values (NaN) are marked with a cross.

    Examples
    --------
    >>> fig = plot_symptoms({"a": {"loss": [2.0, 1.0]}, "b": {"loss": [2.4, 2.4]}},
    ...                     initial_loss=2.5)
    >>> [ax.get_title() for ax in fig.axes]
    ['a: good', 'b: too low']
    """
    if not isinstance(runs, Mapping) or not runs:
        raise ValueError("runs: expected a non-empty {name: history} mapping")
    fig = Figure(figsize=(3.6 * len(runs), 3.4), layout="constrained")
    axes = fig.subplots(1, len(runs), squeeze=False)[0]
    for ax, (name, run) in zip(axes, runs.items(), strict=True):
        history = getattr(run, "history", run)
        if "loss" not in history:
            raise ValueError(f"run {name!r}: expected a history with 'loss', got {sorted(history)}")
        for key, style, label in (("loss", "-", "train"), ("val_loss", "--", "validation")):
            if key not in history:
                continue
            values = np.asarray(history[key], dtype=float)
            epochs = np.arange(1, len(values) + 1)
            if initial_loss is not None:
                values, epochs = np.r_[initial_loss, values], np.r_[0, epochs]
            shown = np.where(np.isfinite(values), values, np.nan)
            ax.plot(epochs, shown, style, marker=".", label=label)
            bad = epochs[~np.isfinite(values)]
            if bad.size:
                ax.plot(bad, np.full(bad.size, np.nanmax(np.r_[shown, 0.0]) or 1.0), "rx",
                        label="NaN" if key == "loss" else None)
        if initial_loss is not None:
            ax.axhline(initial_loss, color="0.5", linestyle=":", lw=1, label="initial loss")
        train = np.asarray(history["loss"], dtype=float)
        if initial_loss is not None:
            train = np.r_[initial_loss, train]
        ax.set(title=f"{name}: {diagnose_loss_curve(train)}", xlabel="epoch", ylabel="loss")
        if np.nanmax(np.where(np.isfinite(train), train, np.nan)) > 10 * np.nanmin(train):
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    return fig


# --------------------------------------------------------------------------- schedules


@dataclasses.dataclass(frozen=True)
class EpochSchedule:
    """A learning rate as a function of the epoch, for ``keras.callbacks.LearningRateScheduler``.

    Keras calls ``schedule(epoch, current_rate)`` at the start of every epoch
    (counted from 0); the current rate is ignored. Built by the ``make_*_decay``
    functions; ``kind`` is ``"step"``, ``"exponential"`` or ``"inverse_time"``.

    Examples
    --------
    >>> schedule = EpochSchedule("inverse_time", 0.1, k=1.0)
    >>> schedule(1), schedule(1, 0.5)   # Keras passes the current rate too
    (0.05, 0.05)
    """

    kind: str
    initial_rate: float
    k: float = 0.0
    factor: float = 1.0
    every: int = 1

    def __post_init__(self) -> None:
        if self.kind not in ("step", "exponential", "inverse_time"):
            raise ValueError(
                f"kind: expected 'step', 'exponential' or 'inverse_time', got {self.kind!r}"
            )

    def __call__(self, epoch: int, learning_rate: float | None = None) -> float:
        t = _check_count("epoch", epoch, minimum=0)
        if self.kind == "step":
            return float(self.initial_rate * self.factor ** (t // self.every))
        if self.kind == "exponential":
            return float(self.initial_rate * math.exp(-self.k * t))
        return float(self.initial_rate / (1.0 + self.k * t))


def make_step_decay(initial_rate: float, *, factor: float = 0.5, every: int = 10) -> EpochSchedule:
    """Step decay: ``eta_t = initial_rate * factor ** floor(t / every)``.

    The rate stays put for ``every`` epochs, then is multiplied by ``factor``. Keras
    computes the same with ``ExponentialDecay(initial_rate, every, factor,
    staircase=True)`` or ``PiecewiseConstantDecay`` (per optimizer step there, per
    epoch here).

    Examples
    --------
    >>> [make_step_decay(1.0, factor=0.1, every=3)(t) for t in (0, 2, 3, 6)]
    [1.0, 1.0, 0.1, 0.010000000000000002]
    """
    every = _check_count("every", every, minimum=1)
    factor = _check_positive("factor", factor)
    if factor > 1:
        raise ValueError(f"factor: expected a number in (0, 1] (a decay), got {factor}")
    return EpochSchedule("step", _check_positive("initial_rate", initial_rate),
                         factor=factor, every=every)


def make_exponential_decay(initial_rate: float, *, k: float) -> EpochSchedule:
    """Exponential decay: ``eta_t = initial_rate * exp(-k * t)``.

    Keras: ``ExponentialDecay(initial_rate, decay_steps=1, decay_rate=exp(-k))``.

    Examples
    --------
    >>> round(make_exponential_decay(0.1, k=0.5)(2), 6)
    0.036788
    """
    return EpochSchedule("exponential", _check_positive("initial_rate", initial_rate),
                         k=_check_non_negative("k", k))


def make_inverse_time_decay(initial_rate: float, *, k: float) -> EpochSchedule:
    """1/t (inverse time) decay: ``eta_t = initial_rate / (1 + k * t)``.

    Keras: ``InverseTimeDecay(initial_rate, decay_steps=1, decay_rate=k)``.

    Examples
    --------
    >>> make_inverse_time_decay(0.1, k=1.0)(4)
    0.02
    """
    return EpochSchedule("inverse_time", _check_positive("initial_rate", initial_rate),
                         k=_check_non_negative("k", k))


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
    epochs = _check_count("epochs", epochs, minimum=1)
    if not callable(schedule):
        raise ValueError(f"schedule: expected a function of the epoch, got {schedule!r}")
    if _is_keras_schedule(schedule):
        return np.array([float(schedule(t)) for t in range(epochs)])
    rates = []
    for t in range(epochs):
        try:
            rates.append(float(schedule(t, None)))
        except TypeError:
            rates.append(float(schedule(t)))
    return np.array(rates)


def plot_schedules(schedules: Mapping[str, Any], epochs: int, *, log: bool = True) -> Figure:
    """Learning rate against epoch for each named schedule (see :func:`schedule_rates`).

    A value may also be a sequence of rates already computed (e.g. the
    ``learning_rate`` a Keras history recorded).

    Examples
    --------
    >>> fig = plot_schedules({"step": make_step_decay(0.1, every=5)}, 20)
    >>> fig.axes[0].get_yscale()
    'log'
    """
    if not isinstance(schedules, Mapping) or not schedules:
        raise ValueError("schedules: expected a non-empty {name: schedule} mapping")
    fig = Figure(figsize=(6.5, 3.8), layout="constrained")
    ax = fig.add_subplot()
    for name, schedule in schedules.items():
        if callable(schedule):
            rates = schedule_rates(schedule, epochs)
        else:
            rates = np.asarray(schedule, dtype=float)[:epochs]
        ax.plot(np.arange(len(rates)), rates, marker="." if len(rates) <= 30 else None,
                drawstyle="steps-post" if "step" in str(name).lower() else "default", label=name)
    if log:
        ax.set_yscale("log")
    ax.set(xlabel="epoch", ylabel="learning rate", title="learning-rate schedules")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small")
    return fig


def _is_keras_schedule(obj: Any) -> bool:
    # Only ask Keras when TensorFlow is there already: plain functions need no import.
    if not hasattr(obj, "get_config"):
        return False
    return isinstance(obj, import_keras().optimizers.schedules.LearningRateSchedule)


# --------------------------------------------------------------------------- per-batch losses


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
        self.min_rate = _check_positive("min_rate", min_rate)
        self.max_rate = _check_positive("max_rate", max_rate)
        if self.max_rate <= self.min_rate:
            raise ValueError(f"max_rate ({max_rate}) must be larger than min_rate ({min_rate})")
        self.steps = _check_count("steps", steps, minimum=2)
        self.divergence = _check_positive("divergence", divergence)
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


# --------------------------------------------------------------------------- batch size


def updates_per_epoch(num_samples: int, batch_size: int) -> int:
    """Weight updates in one pass over ``num_samples`` with batches of ``batch_size``.

    Full-batch gradient descent (``batch_size == num_samples``) makes one update
    per epoch, stochastic gradient descent (``batch_size == 1``) one per sample,
    mini-batch in between; the last batch may be smaller.

    Examples
    --------
    >>> [updates_per_epoch(480, b) for b in (480, 32, 1)]
    [1, 15, 480]
    """
    num_samples = _check_count("num_samples", num_samples, minimum=1)
    batch_size = _check_count("batch_size", batch_size, minimum=1)
    return math.ceil(num_samples / min(batch_size, num_samples))


def measure_loss_noise(losses: ArrayLike) -> float:
    """How noisy a per-batch loss curve is: the standard deviation of its steps.

    ``std(losses[i + 1] - losses[i])``: the trend of a training curve changes
    little from one batch to the next, so what is left is the batch-to-batch
    noise of the loss estimate, which shrinks as batches grow.

    Examples
    --------
    >>> round(measure_loss_noise([2.0, 1.9, 1.8, 1.7]), 12)
    0.0
    >>> round(measure_loss_noise([2.0, 1.0, 2.0, 1.0]), 3)
    0.943
    """
    values = np.asarray(losses, dtype=float).reshape(-1)
    if values.size < 3 or not np.all(np.isfinite(values)):
        raise ValueError(f"losses: expected at least 3 finite values, got {values.size}")
    return float(np.std(np.diff(values)))


def plot_batch_losses(runs: Mapping[str, tuple[int, ArrayLike]]) -> Figure:
    """Per-batch training loss against the number of images seen, one line per run.

    ``runs`` maps a name to ``(batch_size, losses)``; batch ``i`` ends after
    ``(i + 1) * batch_size`` images, so runs with different batch sizes share
    the x axis. Small batches draw a noisy curve with many points, large
    batches a smooth one with few.

    Examples
    --------
    >>> fig = plot_batch_losses({"batch 4": (4, [2.5, 2.0, 2.2]), "batch 12": (12, [2.4])})
    >>> [len(line.get_xdata()) for line in fig.axes[0].lines]
    [3, 1]
    """
    if not isinstance(runs, Mapping) or not runs:
        raise ValueError("runs: expected a non-empty {name: (batch_size, losses)} mapping")
    fig = Figure(figsize=(7.0, 3.8), layout="constrained")
    ax = fig.add_subplot()
    for name, (batch_size, losses) in runs.items():
        batch_size = _check_count(f"batch size of {name!r}", batch_size, minimum=1)
        values = np.asarray(losses, dtype=float).reshape(-1)
        seen = batch_size * np.arange(1, values.size + 1)
        ax.plot(seen, values, lw=0.8, marker="o" if values.size < 20 else None, label=name)
    ax.set(xlabel="training images seen", ylabel="loss of the batch",
           title="per-batch training loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return fig


# --------------------------------------------------------------------------- helpers


def _to_numpy(value: Any) -> np.ndarray:
    return np.asarray(import_keras().ops.convert_to_numpy(value))


def _to_float(value: Any) -> float:
    return float(_to_numpy(value))


def _check_positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{name}: expected a positive number, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name}: expected a positive number, got {value!r}")
    return float(value)


def _check_non_negative(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{name}: expected a number >= 0, got {value!r}")
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name}: expected a number >= 0, got {value!r}")
    return float(value)


def _check_count(name: str, value: Any, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


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
