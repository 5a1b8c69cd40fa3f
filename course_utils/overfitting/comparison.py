"""Lesson 02's comparison of the remedies with the baseline, seed by seed.

One training run of a remedy and one of the baseline differ by chance as well as by the
remedy: the initial weights, the order of the batches, the augmentations and the dropout
masks all come from the seed. So every variant is trained with the same few seeds, and
each seed gives a *paired* difference, the remedy's score minus the baseline's. The
verdict (:func:`course_utils.training.judge_change`, the
rule every lesson's comparison of runs follows) counts a change only when it points the same way in every
seed and its mean is larger than its spread (the standard deviation over the seeds);
anything else is called *within noise*.

:func:`compare_with_baseline` turns ``{variant: {seed: RunResult}}`` into one
:class:`RemedyEffect` per variant; :func:`make_remedy_table` prints them side by side and
:func:`describe_verdicts` says in words which remedies beat the baseline.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from course_utils.training import Change

__all__ = [
    "RemedyEffect",
    "compare_with_baseline",
    "describe_verdicts",
    "make_remedy_table",
]

@dataclasses.dataclass(frozen=True)
class RemedyEffect:
    """One variant's scores over the seeds, and its changes from the baseline.

    ``val_loss``, ``val_accuracy`` and ``train_accuracy`` hold one value per seed (in
    the order of ``seeds``), as :class:`~course_utils.overfitting.RunResult` measured
    them after training (a training accuracy may be NaN, not measured: the table says
    so). ``loss_change`` and ``accuracy_change`` are ``None`` for the baseline itself.
    """

    name: str
    seeds: tuple[int, ...]
    val_loss: tuple[float, ...]
    val_accuracy: tuple[float, ...]
    train_accuracy: tuple[float, ...]
    loss_change: Change | None = None
    accuracy_change: Change | None = None


def compare_with_baseline(
    runs: Mapping[str, Mapping[int, Any]], *, baseline: str = "baseline"
) -> list[RemedyEffect]:
    """Every variant's scores over the seeds and its paired changes from the baseline.

    ``runs`` maps a variant's name to ``{seed: RunResult}`` (what
    :func:`course_utils.training.repeat_over_seeds` returns for it); every variant must
    have been trained with the baseline's seeds, so that each seed pairs a remedy run
    with a baseline run. A run needs ``val_loss``, ``val_accuracy`` and
    ``train_accuracy`` attributes. The result keeps the order of ``runs``.

    Raises ``ValueError`` when the baseline is missing, has fewer than two seeds, or a
    variant's seeds differ from it.

    Examples
    --------
    >>> from course_utils.overfitting import RunResult
    >>> runs = {"baseline": {0: RunResult("baseline", {}, 1.0, 0.60, 1.4),
    ...                      1: RunResult("baseline", {}, 1.0, 0.64, 1.3)},
    ...         "dropout": {0: RunResult("dropout", {}, 0.9, 0.66, 0.9),
    ...                     1: RunResult("dropout", {}, 0.9, 0.71, 0.8)}}
    >>> base, dropout = compare_with_baseline(runs)
    >>> dropout.loss_change.verdict, dropout.accuracy_change.verdict
    ('better', 'better')
    """
    if not isinstance(runs, Mapping) or baseline not in runs:
        raise ValueError(f"runs: expected {{variant: {{seed: RunResult}}}} with the baseline "
                         f"{baseline!r}, got "
                         f"{sorted(runs) if isinstance(runs, Mapping) else type(runs).__name__}")
    seeds = tuple(runs[baseline])
    if len(seeds) < 2:
        raise ValueError(f"runs: expected at least 2 seeds of {baseline!r} to measure a "
                         f"spread, got {len(seeds)}")
    base = _scores(baseline, runs[baseline], seeds)
    effects = []
    for name, by_seed in runs.items():
        if sorted(by_seed) != sorted(seeds):
            raise ValueError(f"runs: {name!r} was trained with seeds {sorted(by_seed)}; "
                             f"expected the baseline's {sorted(seeds)} to pair them")
        scores = _scores(name, by_seed, seeds)
        if name == baseline:
            effects.append(RemedyEffect(name, seeds, *scores))
            continue
        loss = Change(tuple(np.subtract(scores[0], base[0]).tolist()), higher_is_better=False)
        accuracy = Change(tuple(np.subtract(scores[1], base[1]).tolist()), higher_is_better=True)
        effects.append(RemedyEffect(name, seeds, *scores, loss_change=loss,
                                    accuracy_change=accuracy))
    return effects


def make_remedy_table(effects: Sequence[RemedyEffect]) -> str:
    """The comparison as a table: each measure's mean ± spread and change, with its verdict.

    Losses are the validation cross-entropy (the L1/L2 penalty left out); accuracies
    are in %, their changes in percentage points. "±" is the standard deviation over
    the seeds (``ddof=1``).

    Examples
    --------
    >>> base = RemedyEffect("baseline", (0, 1), (1.4, 1.3), (0.60, 0.64), (1.0, 1.0))
    >>> drop = RemedyEffect("dropout", (0, 1), (0.9, 0.8), (0.66, 0.71), (0.9, 0.9),
    ...                     Change((-0.5, -0.5), False), Change((0.06, 0.07), True))
    >>> print(make_remedy_table([base, drop]))
    2 seeds, mean ± standard deviation; change = run - baseline, seed by seed
    run       validation loss  change                      validation accuracy  change                      training accuracy
    baseline  1.35 ± 0.07                                  62.0 ± 2.8 %                                     100.0 ± 0.0 %
    dropout   0.85 ± 0.07      -0.50 ± 0.00 better         68.5 ± 3.5 %         +6.5 ± 0.7 better           90.0 ± 0.0 %
    """
    if not effects:
        raise ValueError("effects: expected at least one RemedyEffect (the baseline first)")
    width = max(len("run"), *(len(e.name) for e in effects))
    n = len(effects[0].seeds)
    lines = [f"{n} seeds, mean ± standard deviation; change = run - baseline, seed by seed",
             f"{'run':<{width}}  {'validation loss':<15}  {'change':<26}  "
             f"{'validation accuracy':<19}  {'change':<26}  training accuracy"]
    for e in effects:
        loss = f"{_mean_sd(e.val_loss, '.2f')}"
        accuracy = f"{_mean_sd(np.multiply(e.val_accuracy, 100), '.1f')} %"
        train = _mean_sd(np.multiply(e.train_accuracy, 100), '.1f')
        train += "" if train == "not measured" else " %"
        loss_change = accuracy_change = ""
        if e.loss_change is not None:
            loss_change = (f"{e.loss_change.mean:+.2f} ± {e.loss_change.spread:.2f} "
                           f"{e.loss_change.verdict}")
        if e.accuracy_change is not None:
            c = e.accuracy_change
            accuracy_change = f"{100 * c.mean:+.1f} ± {100 * c.spread:.1f} {c.verdict}"
        lines.append(f"{e.name:<{width}}  {loss:<15}  {loss_change:<26}  {accuracy:<19}  "
                     f"{accuracy_change:<26}  {train}".rstrip())
    return "\n".join(lines)


def describe_verdicts(effects: Sequence[RemedyEffect]) -> str:
    """In words: which variants beat the baseline by more than the spread, per measure.

    One line per measure and verdict, ``none`` where no variant got it.

    Examples
    --------
    >>> base = RemedyEffect("baseline", (0, 1), (1.4, 1.3), (0.60, 0.64), (1.0, 1.0))
    >>> drop = RemedyEffect("dropout", (0, 1), (0.9, 0.8), (0.66, 0.71), (0.9, 0.9),
    ...                     Change((-0.5, -0.5), False), Change((0.06, -0.01), True))
    >>> print(describe_verdicts([base, drop]))
    validation loss, better than the baseline by more than the spread: dropout
    validation loss, within noise of the baseline: none
    validation loss, worse than the baseline by more than the spread: none
    validation accuracy, better than the baseline by more than the spread: none
    validation accuracy, within noise of the baseline: dropout
    validation accuracy, worse than the baseline by more than the spread: none
    """
    lines = []
    for measure, attribute in (("validation loss", "loss_change"),
                               ("validation accuracy", "accuracy_change")):
        for verdict in ("better", "within noise", "worse"):
            names = [e.name for e in effects
                     if getattr(e, attribute) is not None
                     and getattr(e, attribute).verdict == verdict]
            said = ("within noise of the baseline" if verdict == "within noise"
                    else f"{verdict} than the baseline by more than the spread")
            lines.append(f"{measure}, {said}: {', '.join(names) or 'none'}")
    return "\n".join(lines)


def _scores(name: str, by_seed: Mapping[int, Any],
            seeds: Sequence[int]) -> tuple[tuple[float, ...], ...]:
    values = []
    for attribute in ("val_loss", "val_accuracy", "train_accuracy"):
        column = []
        for seed in seeds:
            value = getattr(by_seed[seed], attribute, None)
            # the training accuracy may be unmeasured (NaN); the judged measures may not
            unmeasured = attribute == "train_accuracy" and value is not None and math.isnan(value)
            if value is None or not (math.isfinite(value) or unmeasured):
                raise ValueError(f"runs: {name!r}, seed {seed}: expected a finite {attribute}, "
                                 f"got {value!r}")
            column.append(float(value))
        values.append(tuple(column))
    return tuple(values)


def _mean_sd(values: Sequence[float], fmt: str) -> str:
    if np.isnan(values).any():
        return "not measured"
    return f"{np.mean(values):{fmt}} ± {np.std(values, ddof=1):{fmt}}"
