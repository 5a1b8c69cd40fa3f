"""Batch size: full-batch, stochastic and mini-batch gradient descent compared.

The batch size sets how many weight updates one pass over the data makes
(:func:`updates_per_epoch`) and how noisy each update's loss is
(:func:`measure_loss_noise`); :func:`plot_batch_losses` draws per-batch losses of
several batch sizes against the number of images seen.

Examples
--------
>>> updates_per_epoch(480, 32)
15
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from course_utils.runtime.checks import check_scalar

__all__ = ["measure_loss_noise", "plot_batch_losses", "updates_per_epoch"]


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
    num_samples = check_scalar(num_samples, "num_samples", int, min_val=1)
    batch_size = check_scalar(batch_size, "batch_size", int, min_val=1)
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
        batch_size = check_scalar(batch_size, f"batch size of {name!r}", int, min_val=1)
        values = np.asarray(losses, dtype=float).reshape(-1)
        seen = batch_size * np.arange(1, values.size + 1)
        ax.plot(seen, values, lw=0.8, marker="o" if values.size < 20 else None, label=name)
    ax.set(xlabel="training images seen", ylabel="loss of the batch",
           title="per-batch training loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return fig
