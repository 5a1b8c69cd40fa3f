"""A training budget: reach a target loss within a given number of steps.

:class:`BudgetProblem` is a small, real and deterministic training problem: a linear
model fitted by mini-batch SGD with momentum 0.9 (Keras' update, ``v <- 0.9 v - rate *
gradient; w <- w + v``) to a regression whose 20 features have very different scales,
so its loss is a long, narrow valley (lesson 01's 2-D valley in 20 dimensions) and every
mini-batch gradient is noisy. The best loss it can reach, :attr:`BudgetProblem.best_loss`,
is the least-squares fit's. Within a budget of a few hundred steps no constant rate gets
close to it: a low rate is too slow along the flat directions, a high one bounces on the
gradient noise. A schedule can.

A schedule is a Keras ``LearningRateSchedule`` (``CosineDecay``, ``PiecewiseConstantDecay``
...) or any function of the step (counted from 0) that returns the rate; a number is a
constant rate. :meth:`BudgetProblem.run` trains with it and returns the loss after every
step; :func:`check_budget_schedule` says what a function ``make_schedule(steps)`` misses
over several budgets and seeds.

Examples
--------
>>> problem = BudgetProblem()
>>> run = problem.run(0.05, steps=400, seed=0)
>>> len(run.losses), float(run.rates[0])
(400, 0.05)
>>> bool(run.final > problem.target)      # a constant rate does not get there ...
True
>>> def cosine(steps):                   # ... a rate that falls to zero does
...     return lambda step: 0.15 * (1 + math.cos(math.pi * step / steps))
>>> check_budget_schedule(cosine, problem)
[]
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from course_utils.learning_rate.schedules import _is_keras_schedule, _keras_rates
from course_utils.runtime.checks import check_scalar

__all__ = ["BudgetProblem", "BudgetRun", "check_budget_schedule", "plot_budget_runs",
           "schedule_per_step"]


@dataclasses.dataclass(frozen=True)
class BudgetRun:
    """One run: the ``rates`` used and the training ``losses`` after every step."""

    rates: np.ndarray
    losses: np.ndarray

    @property
    def final(self) -> float:
        """The loss after the last step (``inf`` when it overflowed)."""
        value = float(self.losses[-1])
        return value if math.isfinite(value) else math.inf


@dataclasses.dataclass(frozen=True)
class BudgetProblem:
    """A linear regression trained by mini-batch SGD with momentum; see the module.

    ``features`` have scales from 1 down to ``1 / sqrt(condition)`` (the curvature of the
    loss along them spans a factor ``condition``); ``noise`` is the standard deviation of
    the targets around the true line; ``tolerance`` sets :attr:`target`.
    """

    samples: int = 512
    features: int = 20
    condition: float = 100.0
    noise: float = 0.5
    batch_size: int = 16
    momentum: float = 0.9
    tolerance: float = 0.02
    data_seed: int = 0
    budget: int = 400
    budgets: tuple[int, ...] = (300, 400, 500)
    seeds: tuple[int, ...] = (0, 1, 2)

    @functools.cached_property
    def data(self) -> tuple[np.ndarray, np.ndarray]:
        """The inputs ``(samples, features)`` and targets ``(samples,)``, always the same."""
        rng = np.random.default_rng(self.data_seed)
        scales = np.geomspace(1.0, 1.0 / math.sqrt(self.condition), self.features)
        x = rng.normal(size=(self.samples, self.features)) * scales
        y = x @ (3.0 * rng.normal(size=self.features)) + self.noise * rng.normal(size=self.samples)
        return x, y

    @functools.cached_property
    def best_loss(self) -> float:
        """The lowest loss any weights reach: the least-squares fit's (half the mean square)."""
        x, y = self.data
        w = np.linalg.lstsq(x, y, rcond=None)[0]
        return float(0.5 * np.mean((x @ w - y) ** 2))

    @property
    def initial_loss(self) -> float:
        """The loss of the starting weights (all zero)."""
        return float(0.5 * np.mean(self.data[1] ** 2))

    @property
    def target(self) -> float:
        """The loss to reach: ``tolerance`` above :attr:`best_loss` (2 % by default)."""
        return (1 + self.tolerance) * self.best_loss

    def run(self, schedule: Any, steps: int | None = None, seed: int = 0) -> BudgetRun:
        """Train from zero weights for ``steps`` steps (default :attr:`budget`).

        ``seed`` orders the mini-batches (reshuffled every epoch). The loss is the mean of
        half the squared error over all samples after each step; once it overflows, the
        run stops and the remaining losses are ``inf``.
        """
        steps = self.budget if steps is None else check_scalar(steps, "steps", int, min_val=1)
        seed = check_scalar(seed, "seed", int, min_val=0)
        rates = schedule_per_step(schedule, steps)
        x, y = self.data
        rng = np.random.default_rng(seed)
        w = np.zeros(self.features)
        velocity = np.zeros(self.features)
        losses = np.full(steps, np.inf)
        order = np.empty(0, dtype=int)
        with np.errstate(over="ignore", invalid="ignore"):
            for step in range(steps):
                if order.size < self.batch_size:
                    order = np.concatenate([order, rng.permutation(self.samples)])
                batch, order = order[:self.batch_size], order[self.batch_size:]
                gradient = x[batch].T @ (x[batch] @ w - y[batch]) / self.batch_size
                velocity = self.momentum * velocity - rates[step] * gradient
                w = w + velocity
                loss = 0.5 * np.mean((x @ w - y) ** 2)
                if not np.isfinite(loss) or loss > 1e12:
                    break
                losses[step] = loss
        return BudgetRun(rates, losses)


def schedule_per_step(schedule: Any, steps: int) -> np.ndarray:
    """The rate of ``schedule`` at steps ``0 .. steps - 1`` as a float array.

    ``schedule`` is a number (a constant rate), a function of the step or a Keras
    ``LearningRateSchedule``. A ``ValueError`` says what is wrong with it.

    Examples
    --------
    >>> schedule_per_step(0.1, 3).tolist()
    [0.1, 0.1, 0.1]
    >>> schedule_per_step(lambda step: 0.1 / (1 + step), 3).round(3).tolist()
    [0.1, 0.05, 0.033]
    """
    steps = check_scalar(steps, "steps", int, min_val=1)
    if isinstance(schedule, (int, float)) and not isinstance(schedule, bool):
        values = [float(schedule)] * steps
    elif _is_keras_schedule(schedule):
        values = _keras_rates(schedule, steps)
    elif callable(schedule):
        try:
            values = [float(np.asarray(schedule(step))) for step in range(steps)]
        except (TypeError, ValueError) as error:
            raise ValueError(f"schedule: expected a function of the step that returns a rate "
                             f"(a number), but calling it with a step failed: {error}") from None
    else:
        raise ValueError(f"schedule: expected a number, a function of the step or a Keras "
                         f"LearningRateSchedule, got {type(schedule).__name__}")
    rates = np.asarray(values, dtype=float)
    bad = np.flatnonzero(~np.isfinite(rates) | (rates < 0))
    if bad.size:
        raise ValueError(f"schedule: expected a rate of 0 or more at every step, got "
                         f"{rates[bad[0]]} at step {bad[0]}")
    return rates


def check_budget_schedule(make_schedule: Callable[[int], Any],
                          problem: BudgetProblem | None = None, *,
                          budgets: Sequence[int] | None = None,
                          seeds: Sequence[int] | None = None) -> list[str]:
    """What ``make_schedule(steps)`` misses: one sentence per budget and seed that fails.

    For every budget (default ``problem.budgets``), ``make_schedule(budget)`` makes the
    schedule, and a run of that many steps from every seed (default ``problem.seeds``)
    must end at or below ``problem.target``. An empty list means every run got there.
    """
    problem = BudgetProblem() if problem is None else problem
    failures = []
    for steps in problem.budgets if budgets is None else budgets:
        try:
            schedule = make_schedule(steps)
            rates = schedule_per_step(schedule, steps)
        except Exception as error:  # noqa: BLE001 - a student's function may fail anyhow
            failures.append(f"make_schedule({steps}) should return a rate or a schedule of "
                            f"the step, but it failed: {error}")
            continue
        for seed in problem.seeds if seeds is None else seeds:
            final = problem.run(lambda step, rates=rates: rates[step], steps, seed).final
            if final > problem.target:
                how = ("the loss overflowed (the rate was too high)" if math.isinf(final)
                       else f"it ended at {final:.4f}, "
                            f"{final / problem.best_loss - 1:.1%} above the best loss")
                failures.append(f"budget {steps} steps, seed {seed}: expected a loss of at "
                                f"most {problem.target:.4f}, but {how}")
    return failures


def plot_budget_runs(runs: Mapping[str, BudgetRun], problem: BudgetProblem) -> Figure:
    """How far above the best loss each run is after every step, with the target marked.

    The loss is drawn as its excess over ``problem.best_loss``, a share on a log scale,
    so the last few per cent, where the target lies, are as readable as the first steps.
    The axis stops ten times above the highest start: a run that climbs past it says in
    its label from which step, and a run that overflowed ends where its loss was last
    finite.

    Examples
    --------
    >>> problem = BudgetProblem()
    >>> fig = plot_budget_runs({"constant 0.05": problem.run(0.05, steps=50)}, problem)
    >>> fig.axes[0].get_yscale(), fig.axes[0].get_xlabel()
    ('log', 'step')
    """
    if not isinstance(runs, Mapping) or not runs:
        raise ValueError(f"runs: expected a non-empty {{name: run}} mapping, got {runs!r}")
    fig = Figure(figsize=(6.5, 3.8), layout="constrained")
    ax = fig.add_subplot()
    excesses = {name: np.asarray(run.losses, dtype=float) / problem.best_loss - 1
                for name, run in runs.items()}
    starts = [e[0] for e in excesses.values() if e.size and np.isfinite(e[0])]
    top = 10 * max(starts) if starts else None
    for name, excess in excesses.items():
        measured = np.isfinite(excess)
        off = ~measured | (excess > top) if top is not None else np.zeros_like(measured)
        label = f"{name} (off the top from step {int(np.argmax(off)) + 1})" if off.any() else name
        ax.plot(np.arange(1, excess.size + 1)[measured], excess[measured], lw=1.2, label=label)
    ax.axhline(problem.tolerance, color="k", linestyle="--", lw=1,
               label=f"target: {problem.tolerance:.0%} above the best")
    ax.set_yscale("log")
    if top is not None:
        ax.set_ylim(top=top)
    ax.set(xlabel="step", ylabel="loss above the best loss, as a share (log scale)",
           title="a budget of steps")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small")
    return fig
