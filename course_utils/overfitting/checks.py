"""Lesson 02's graded remedy: does a change of the student's choosing help a given overfitting run?

:data:`REMEDY_PROBLEM` fixes one small training run that overfits: the baseline CNN on
a few images per class, trained long enough to learn them by heart. The sizes are fixed
here, not taken from a runtime profile, so the verdict is the same in every profile
(the lesson, grading, a student's laptop). :func:`check_remedy` trains the baseline and
a remedy (a :class:`~course_utils.overfitting.Variant`) on it with the same seeds and
says whether the remedy helped, by the rule :data:`REMEDY_RULE` states:

- the validation loss (the cross-entropy, the L1/L2 penalty left out) after the last
  epoch is at least :data:`LOSS_CUT` (10 %) below the baseline's, in every seed;
- the validation accuracy, averaged over the seeds, is at most :data:`ACCURACY_DROP`
  (5 percentage points) below the baseline's: a model that only hedges its answers is
  no cure.

The baseline's runs are kept for the rest of the session (they are the same every
time), so checking several remedies trains it once per seed.

Examples
--------
>>> REMEDY_PROBLEM.per_class * 12, REMEDY_PROBLEM.epochs
(60, 30)
>>> check = check_remedy("dropout", seeds=[0])                   # doctest: +SKIP
>>> check.passed                                                  # doctest: +SKIP
True
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any, Final

import numpy as np

from course_utils import labels
from course_utils.overfitting.remedies import (
    VARIANTS,
    RunResult,
    Variant,
    make_small_subset,
    train_variant,
)

__all__ = [
    "ACCURACY_DROP",
    "LOSS_CUT",
    "REMEDY_PROBLEM",
    "REMEDY_RULE",
    "RemedyCheck",
    "RemedyProblem",
    "check_remedy",
    "make_remedy_data",
    "train_given_run",
]

#: The least a remedy must lower the validation loss, in every seed, relative to the
#: baseline's loss with the same seed.
LOSS_CUT: Final = 0.10
#: The most a remedy may lower the mean validation accuracy (a fraction: 0.05 is five
#: percentage points).
ACCURACY_DROP: Final = 0.05
#: The rule of :func:`check_remedy`, in words.
REMEDY_RULE: Final = (
    f"the validation loss after the last epoch at least {100 * LOSS_CUT:.0f} % below the baseline's "
    f"in every seed, and the mean validation accuracy at most {100 * ACCURACY_DROP:.0f} "
    "percentage points below the baseline's")

#: Limits on a remedy's network, so that a check stays a matter of seconds.
_MAX_DEPTH, _MAX_WIDTH, _MAX_DENSE = 3, 64, 512


@dataclasses.dataclass(frozen=True)
class RemedyProblem:
    """One small training run that overfits: the data, its sizes and the training settings.

    ``per_class`` training images of each class, drawn from ``3 * per_class`` per class
    generated with ``data_seed``; ``val_size`` validation images from ``data_seed + 1``;
    every run trains ``epochs`` epochs in batches of ``batch_size`` with Adam at
    ``learning_rate``.
    """

    image_size: int = 32
    per_class: int = 5
    val_size: int = 240
    epochs: int = 30
    batch_size: int = 32
    learning_rate: float = 3e-3
    data_seed: int = 11


#: The overfitting run of lesson 02's graded remedy.
REMEDY_PROBLEM: Final = RemedyProblem()


def make_remedy_data(
    problem: RemedyProblem = REMEDY_PROBLEM,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The training and validation images of ``problem``: ``x_train, y_train, x_val, y_val``.

    Fresh arrays on every call, the same values every time.

    Examples
    --------
    >>> x_train, y_train, x_val, y_val = make_remedy_data()
    >>> x_train.shape, np.bincount(y_train).tolist() == [5] * 12, len(y_val)
    ((60, 32, 32), True, 240)
    """
    from course_utils import fingers

    pool = 3 * problem.per_class * labels.NUM_CLASSES
    x_pool, y_pool = fingers.make_fingers(pool, image_size=problem.image_size,
                                          seed=problem.data_seed)
    x_val, y_val = fingers.make_fingers(problem.val_size, image_size=problem.image_size,
                                        seed=problem.data_seed + 1)
    x_train, y_train = make_small_subset(x_pool, y_pool, problem.per_class,
                                         seed=problem.data_seed)
    return x_train, y_train, x_val, y_val


@dataclasses.dataclass(frozen=True)
class RemedyCheck:
    """What :func:`check_remedy` measured: per seed, the baseline's and the remedy's scores.

    ``str(check)`` says in sentences what was measured and, when the remedy did not
    help, which part of :data:`REMEDY_RULE` it missed.

    Examples
    --------
    >>> check = RemedyCheck("dropout", (0, 1), (1.8, 1.9), (1.4, 1.5), (0.5, 0.5), (0.52, 0.5))
    >>> check.passed
    True
    >>> print(check)
    dropout against the baseline, seeds 0, 1 (validation loss after 30 epochs; accuracy):
      seed 0: baseline 1.800, 50.0 %; dropout 1.400 (22 % lower), 52.0 %
      seed 1: baseline 1.900, 50.0 %; dropout 1.500 (21 % lower), 50.0 %
    dropout helps this run: the validation loss after the last epoch at least 10 % below the baseline's in every seed, and the mean validation accuracy at most 5 percentage points below the baseline's.
    >>> RemedyCheck("wide", (0,), (1.8,), (2.1,), (0.5,), (0.5,)).failures
    ["seed 0: the validation loss is 2.100, above the baseline's 1.800; expected at most 1.620 (10 % lower)"]
    """

    name: str
    seeds: tuple[int, ...]
    baseline_loss: tuple[float, ...]
    remedy_loss: tuple[float, ...]
    baseline_accuracy: tuple[float, ...]
    remedy_accuracy: tuple[float, ...]
    epochs: int = REMEDY_PROBLEM.epochs
    runs: Mapping[str, Mapping[int, RunResult]] = dataclasses.field(
        default_factory=dict, repr=False, compare=False)

    @property
    def failures(self) -> list[str]:
        """Each part of :data:`REMEDY_RULE` the remedy missed, as a sentence (empty: it helped)."""
        out = []
        for seed, base, mine in zip(self.seeds, self.baseline_loss, self.remedy_loss,
                                    strict=True):
            limit = (1 - LOSS_CUT) * base
            if not mine <= limit:  # NaN fails too
                where = "above" if mine > base else "only a little below"
                out.append(f"seed {seed}: the validation loss is {mine:.3f}, {where} the "
                           f"baseline's {base:.3f}; expected at most {limit:.3f} "
                           f"({100 * LOSS_CUT:.0f} % lower)")
        base_acc, my_acc = np.mean(self.baseline_accuracy), np.mean(self.remedy_accuracy)
        if not my_acc >= base_acc - ACCURACY_DROP:
            out.append(f"the mean validation accuracy is {100 * my_acc:.1f} %, the "
                       f"baseline's {100 * base_acc:.1f} %; expected at most {100 * ACCURACY_DROP:.0f} "
                       f"percentage points lower")
        return out

    @property
    def passed(self) -> bool:
        """True when the remedy helped by :data:`REMEDY_RULE`."""
        return not self.failures

    def __str__(self) -> str:
        seeds = ("seed " if len(self.seeds) == 1 else "seeds ") + ", ".join(map(str, self.seeds))
        lines = [f"{self.name} against the baseline, {seeds} (validation loss after "
                 f"{self.epochs} epochs; accuracy):"]
        for seed, base, mine, base_acc, my_acc in zip(
                self.seeds, self.baseline_loss, self.remedy_loss, self.baseline_accuracy,
                self.remedy_accuracy, strict=True):
            change = (base - mine) / base
            said = f"{100 * change:.0f} % lower" if change >= 0 else f"{-100 * change:.0f} % higher"
            lines.append(f"  seed {seed}: baseline {base:.3f}, {100 * base_acc:.1f} %; {self.name} "
                         f"{mine:.3f} ({said}), {100 * my_acc:.1f} %")
        if self.passed:
            lines.append(f"{self.name} helps this run: {REMEDY_RULE}.")
        else:
            lines.append(f"{self.name} does not help this run enough; expected {REMEDY_RULE}:")
            lines += [f"  {failure}" for failure in self.failures]
        return "\n".join(lines)


_BASELINE_RUNS: dict[tuple[RemedyProblem, int], RunResult] = {}


def train_given_run(seed: int = 0, *, problem: RemedyProblem = REMEDY_PROBLEM) -> RunResult:
    """The baseline's run on ``problem`` with ``seed``: the overfitting run a remedy must cure.

    Trained once per session and seed, then kept (its network left out: ``model`` is
    ``None``); :func:`check_remedy` compares remedies with these runs.

    Examples
    --------
    >>> run = train_given_run(0)                                          # doctest: +SKIP
    >>> diagnose_history(run.history).label                               # doctest: +SKIP
    'overfit'
    """
    key = (problem, int(seed))
    if key not in _BASELINE_RUNS:
        run = train_variant(VARIANTS["baseline"], *make_remedy_data(problem), seed=int(seed),
                            epochs=problem.epochs, batch_size=problem.batch_size,
                            learning_rate=problem.learning_rate)
        run.model = None
        _BASELINE_RUNS[key] = run
    return _BASELINE_RUNS[key]


def check_remedy(
    remedy: Variant | str,
    *,
    seeds: Iterable[int] = (0,),
    problem: RemedyProblem = REMEDY_PROBLEM,
) -> RemedyCheck:
    """Train the baseline and ``remedy`` on ``problem`` with each of ``seeds``; compare them.

    ``remedy`` is a :class:`~course_utils.overfitting.Variant` (the baseline with
    something changed, ``dataclasses.replace(VARIANTS["baseline"], ...)``) or the name of
    one in :data:`~course_utils.overfitting.VARIANTS`. Each seed trains one run of each
    (:func:`~course_utils.overfitting.train_variant`: same initial draw, same batches);
    the result says whether the remedy helped by :data:`REMEDY_RULE` (``passed``) and
    why not (``str(check)``). The runs are in ``check.runs``, their networks left out.

    Raises ``ValueError`` with a sentence on what was expected for anything but a
    variant or a variant's name, a network too large to check in seconds (more than
    3 convolution blocks, 64 filters or 512 dense units), or no seeds.

    Examples
    --------
    >>> import dataclasses
    >>> wide = dataclasses.replace(VARIANTS["baseline"], name="wide", width=32)
    >>> check_remedy(wide, seeds=[0]).passed                          # doctest: +SKIP
    False
    >>> check_remedy("the best one")
    Traceback (most recent call last):
    ...
    ValueError: remedy: expected a Variant (dataclasses.replace(overfitting.VARIANTS["baseline"], ...)) or the name of one in overfitting.VARIANTS, got 'the best one'
    """
    remedy = _check_remedy_variant(remedy)
    chosen = [int(s) for s in seeds]
    if not chosen:
        raise ValueError("seeds: expected at least one seed, got none")
    data = make_remedy_data(problem)
    settings = {"epochs": problem.epochs, "batch_size": problem.batch_size,
                "learning_rate": problem.learning_rate}
    baseline = {seed: train_given_run(seed, problem=problem) for seed in chosen}
    mine = {seed: train_variant(remedy, *data, seed=seed, **settings) for seed in chosen}
    for run in mine.values():
        run.model = None
    return RemedyCheck(
        remedy.name, tuple(chosen),
        tuple(baseline[s].val_loss for s in chosen), tuple(mine[s].val_loss for s in chosen),
        tuple(baseline[s].val_accuracy for s in chosen),
        tuple(mine[s].val_accuracy for s in chosen),
        epochs=problem.epochs, runs={"baseline": baseline, remedy.name: mine})


def _check_remedy_variant(remedy: Any) -> Variant:
    if isinstance(remedy, str) and remedy in VARIANTS:
        remedy = VARIANTS[remedy]
    if not isinstance(remedy, Variant):
        raise ValueError('remedy: expected a Variant (dataclasses.replace(overfitting.VARIANTS'
                         '["baseline"], ...)) or the name of one in overfitting.VARIANTS, got '
                         f"{remedy!r}")
    limits = (("depth", remedy.depth, 1, _MAX_DEPTH), ("width", remedy.width, 1, _MAX_WIDTH),
              ("dense_units", remedy.dense_units, 1, _MAX_DENSE))
    for field, value, low, high in limits:
        if not (isinstance(value, int) and low <= value <= high):
            raise ValueError(f"remedy: expected {field} between {low} and {high} (a network "
                             f"that trains in seconds), got {value!r}")
    return remedy
