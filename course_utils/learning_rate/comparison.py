"""Runs of lesson 01 compared over seeds: a table of mean ± spread and paired verdicts.

Every comparison of training runs in lesson 01 (the range test's suggestion against
three times lower and higher, the schedules against a constant rate, Adam against SGD
with momentum) is the same: each set-up is trained once per seed
(:func:`course_utils.training.repeat_over_seeds`), the last epoch's training and
validation loss are summed up as mean ± spread (:func:`course_utils.training.final_over_seeds`),
and each set-up is compared with a baseline seed by seed
(:func:`course_utils.training.paired_change`, judged by
:func:`course_utils.training.judge_change`: a difference counts only when it goes the same
way in every seed and its mean is larger than its spread). :func:`describe_over_seeds`
writes that as text for the lesson to print; the lesson's tests read the same lines.

Examples
--------
>>> runs = {"slow": {0: {"loss": [2.0, 1.0]}, 1: {"loss": [2.0, 1.2]}},
...         "fast": {0: {"loss": [2.0, 0.5]}, 1: {"loss": [2.0, 0.6]}}}
>>> print(describe_over_seeds(runs, baseline="slow", metrics=("loss",)))
last epoch, mean ± spread over seeds [0, 1]: training loss
  slow  1.100 ± 0.141
  fast  0.550 ± 0.071
fast - slow, seed by seed: training loss -0.550 ± 0.071 better
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from course_utils.training import final_over_seeds, paired_change

__all__ = ["describe_over_seeds"]

_NAMES = {"loss": "training loss", "val_loss": "validation loss",
          "accuracy": "training accuracy", "val_accuracy": "validation accuracy"}


def describe_over_seeds(runs: Mapping[str, Mapping[int, Any]], *, baseline: str,
                        metrics: Sequence[str] = ("loss", "val_loss")) -> str:
    """Mean ± spread of each set-up's last ``metrics``, and each one's change from ``baseline``.

    ``runs`` is ``{name: {seed: history}}`` with the same seeds for every name.
    The first lines are a table, one row per set-up: the mean and the spread
    (standard deviation, ``ddof=1``) of the last epoch's value over the seeds. Then
    one line per other set-up: the paired differences ``set-up - baseline``, mean ±
    spread, and the verdict (``better``, ``within noise`` or ``worse``; losses are
    better lower, accuracies higher). Metrics are separated by `` | ``.

    Raises ``ValueError`` when ``baseline`` is not one of the runs, or when the runs
    do not share their seeds (the messages of :func:`~course_utils.training.paired_change`).

    Examples
    --------
    >>> runs = {"a": {0: {"loss": [2.0, 1.0]}, 1: {"loss": [2.0, 1.2]}, 2: {"loss": [2.0, 1.1]}},
    ...         "b": {0: {"loss": [2.0, 1.1]}, 1: {"loss": [2.0, 1.0]}, 2: {"loss": [2.0, 1.3]}}}
    >>> print(describe_over_seeds(runs, baseline="a", metrics=["loss"]).splitlines()[-1])
    b - a, seed by seed: training loss +0.033 ± 0.208 within noise
    """
    if not isinstance(runs, Mapping) or len(runs) < 2:
        raise ValueError(f"runs: expected {{name: {{seed: history}}}} with at least two set-ups, "
                         f"got {runs!r}")
    if baseline not in runs:
        raise ValueError(f"baseline: expected one of {', '.join(map(repr, runs))}, got {baseline!r}")
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    if not metrics:
        raise ValueError("metrics: expected at least one metric such as 'loss', got none")
    seeds = sorted(runs[baseline])
    finals = {metric: final_over_seeds(runs, metric) for metric in metrics}
    width = max(len(name) for name in runs)
    lines = [f"last epoch, mean ± spread over seeds {seeds}: "
             + " | ".join(_NAMES.get(m, m) for m in metrics)]
    for name in runs:
        cells = [f"{finals[m][name][0]:.3f} ± {finals[m][name][1]:.3f}" for m in metrics]
        lines.append(f"  {name:<{width}}  " + " | ".join(cells))
    for name, by_seed in runs.items():
        if name == baseline:
            continue
        cells = []
        for metric in metrics:
            change = paired_change(by_seed, runs[baseline], metric,
                                   higher_is_better="accuracy" in metric)
            cells.append(f"{_NAMES.get(metric, metric)} {change.mean:+.3f} ± {change.spread:.3f} "
                         f"{change.verdict}")
        lines.append(f"{name} - {baseline}, seed by seed: " + " | ".join(cells))
    return "\n".join(lines)
