"""Lesson 01, the learning rate: what it does, its symptoms, decay schedules, the range test.

The learning rate is how large a step each update takes against the gradient. This
package holds what lesson 01 shows and later lessons reuse, one module per part of the
lesson; every name is importable from ``course_utils.learning_rate`` itself:

- :mod:`~course_utils.learning_rate.descent`: :func:`gradient_descent` and
  :func:`plot_descent`, plain gradient descent on a 1-D or 2-D bowl
  (:class:`~course_utils.surfaces.QuadraticLoss`, shared with lesson 03 in
  :mod:`course_utils.surfaces`), where the effect of the rate is exact (a step of
  ``lr`` on ``c / 2 * w**2`` multiplies ``w`` by ``1 - lr * c``);
- :mod:`~course_utils.learning_rate.symptoms`: :func:`diagnose_loss_curve` and
  :func:`plot_symptoms`, the loss-curve symptoms of a rate that is too high, too low
  or good;
- :mod:`~course_utils.learning_rate.schedules`: decay schedules as functions of the
  epoch, for ``keras.callbacks.LearningRateScheduler``, one class per formula
  (:class:`EpochStepDecay`, :class:`EpochExponentialDecay`,
  :class:`EpochInverseTimeDecay`) built by :func:`make_step_decay`,
  :func:`make_exponential_decay` and :func:`make_inverse_time_decay`;
  :func:`schedule_rates` evaluates them (and Keras' ``LearningRateSchedule``
  objects) and :func:`plot_schedules` draws them;
- :mod:`~course_utils.learning_rate.range_test`: :func:`recover_batch_losses` and
  the callback :class:`BatchLossHistory` (Keras 3 logs the running mean of the loss
  over an epoch; the loss of batch ``i`` is ``(i + 1) * mean_i - i * mean_{i-1}``),
  and the learning-rate range test (raise the rate a little every batch, watch the
  loss, stop when it diverges, restore the weights): :func:`find_learning_rate`, the
  callback :class:`LearningRateRangeTest`, :func:`suggest_learning_rate` and
  :func:`plot_range_test`;
- :mod:`~course_utils.learning_rate.batch_size`: :func:`updates_per_epoch`,
  :func:`measure_loss_noise` and :func:`plot_batch_losses`, full-batch, stochastic
  and mini-batch gradient descent compared;
- :mod:`~course_utils.learning_rate.budget`: :class:`BudgetProblem`, a small real
  training problem with a budget of steps that no constant rate meets and a schedule
  (warm-up, cosine decay, step decay) does; :func:`check_budget_schedule`,
  :func:`schedule_per_step` and :func:`plot_budget_runs`;
- :mod:`~course_utils.learning_rate.curves`: :func:`load_loss_curves`, training-loss
  curves of real runs of the lesson's CNN at known rates (recorded by
  :func:`record_loss_curves`, kept where :func:`is_clear`), to diagnose;

The two callbacks are Keras callbacks, defined in
:mod:`~course_utils.learning_rate.callbacks`; that module is loaded on first access to
either, so ``import course_utils.learning_rate`` does not import TensorFlow.

Examples
--------
>>> from course_utils import learning_rate as lr
>>> schedule = lr.make_step_decay(0.1, factor=0.5, every=2)
>>> [schedule(epoch) for epoch in range(5)]
[0.1, 0.1, 0.05, 0.05, 0.025]
>>> lr.diagnose_loss_curve([2.5, 2.0, 1.0])
'good'
>>> lr.updates_per_epoch(480, 32)
15
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from course_utils.learning_rate.batch_size import (
    measure_loss_noise,
    plot_batch_losses,
    updates_per_epoch,
)
from course_utils.learning_rate.budget import (
    BudgetProblem,
    BudgetRun,
    check_budget_schedule,
    plot_budget_runs,
    schedule_per_step,
)
from course_utils.learning_rate.curves import (
    LossCurve,
    is_clear,
    load_loss_curves,
    record_loss_curves,
)
from course_utils.learning_rate.descent import gradient_descent, plot_descent
from course_utils.learning_rate.range_test import (
    RangeTestResult,
    check_rate_not_scheduled,
    find_learning_rate,
    plot_range_test,
    recover_batch_losses,
    suggest_learning_rate,
)
from course_utils.learning_rate.schedules import (
    EpochExponentialDecay,
    EpochInverseTimeDecay,
    EpochSchedule,
    EpochStepDecay,
    make_exponential_decay,
    make_inverse_time_decay,
    make_step_decay,
    plot_schedules,
    schedule_rates,
)
from course_utils.learning_rate.symptoms import (
    GOOD,
    TOO_HIGH,
    TOO_LOW,
    diagnose_loss_curve,
    plot_symptoms,
)
from course_utils.surfaces import QuadraticLoss

if TYPE_CHECKING:  # pragma: no cover
    from course_utils.learning_rate.callbacks import BatchLossHistory, LearningRateRangeTest

__all__ = [
    "GOOD",
    "TOO_HIGH",
    "TOO_LOW",
    "BatchLossHistory",
    "BudgetProblem",
    "BudgetRun",
    "EpochExponentialDecay",
    "EpochInverseTimeDecay",
    "EpochSchedule",
    "EpochStepDecay",
    "LearningRateRangeTest",
    "LossCurve",
    "QuadraticLoss",
    "RangeTestResult",
    "check_budget_schedule",
    "check_rate_not_scheduled",
    "diagnose_loss_curve",
    "find_learning_rate",
    "gradient_descent",
    "is_clear",
    "load_loss_curves",
    "make_exponential_decay",
    "make_inverse_time_decay",
    "make_step_decay",
    "measure_loss_noise",
    "plot_batch_losses",
    "plot_budget_runs",
    "plot_descent",
    "plot_range_test",
    "plot_schedules",
    "plot_symptoms",
    "record_loss_curves",
    "recover_batch_losses",
    "schedule_per_step",
    "schedule_rates",
    "suggest_learning_rate",
    "updates_per_epoch",
]

#: The Keras callbacks, loaded from :mod:`~course_utils.learning_rate.callbacks` on first
#: access (that module imports TensorFlow).
_CALLBACKS = ("BatchLossHistory", "LearningRateRangeTest")


def __getattr__(name: str) -> Any:
    if name in _CALLBACKS:
        from course_utils.learning_rate import callbacks

        globals()[name] = value = getattr(callbacks, name)
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_CALLBACKS))
