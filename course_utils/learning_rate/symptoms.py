"""Loss-curve symptoms: is the learning rate too high, too low or good?

A rate that is too high makes the training loss jump up, oscillate or become NaN; one
that is too low leaves it flat near its start; a good one makes it fall steadily.
:func:`diagnose_loss_curve` names the symptom, :func:`plot_symptoms` draws runs side by
side titled with it.

Examples
--------
>>> diagnose_loss_curve([2.5, 2.0, 1.0])
'good'
>>> diagnose_loss_curve([2.5, 2.5, 2.49]) == TOO_LOW
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from course_utils.runtime.checks import check_scalar

__all__ = ["GOOD", "TOO_HIGH", "TOO_LOW", "diagnose_loss_curve", "plot_symptoms"]

TOO_HIGH = "too high"
TOO_LOW = "too low"
GOOD = "good"


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
    tolerance = check_scalar(tolerance, "tolerance", float, min_val=0, include_boundaries="neither",
                             finite=True)
    band = tolerance * abs(values[0])
    if not np.all(np.isfinite(values)) or np.max(np.diff(values)) > band:
        return TOO_HIGH
    if values[-1] > values[0] + band:
        return TOO_HIGH
    if values[-1] >= values[0] - band:
        return TOO_LOW
    return GOOD


def plot_symptoms(runs: Mapping[str, Any], *, initial_loss: float | None = None) -> Figure:
    """Training-loss curves of several runs side by side, titled with the diagnosis.

    ``runs`` maps a name (e.g. ``"lr 1e-05"``) to a ``keras.callbacks.History``, a
    :class:`~course_utils.history.History` or a dict with ``"loss"`` (and optionally
    ``"val_loss"``) per epoch. The panels share one logarithmic loss axis, so a flat
    curve looks flat next to one that blows up. Only measured values are drawn: a run
    whose loss turned NaN or infinite stops where it was last finite, and a note in
    its panel says from which epoch. With ``initial_loss`` (the loss before training)
    a dotted line marks it and the diagnosis starts from it.

    Examples
    --------
    >>> fig = plot_symptoms({"a": {"loss": [2.0, 1.0]}, "b": {"loss": [2.4, float("nan")]}},
    ...                     initial_loss=2.5)
    >>> [ax.get_title() for ax in fig.axes]
    ['a: good', 'b: too high']
    >>> fig.axes[0].get_yscale(), fig.axes[0].get_shared_y_axes().joined(*fig.axes)
    ('log', True)
    >>> fig.axes[1].lines[0].get_ydata().tolist()     # the NaN is not drawn
    [2.4]
    """
    if not isinstance(runs, Mapping) or not runs:
        raise ValueError(f"runs: expected a non-empty {{name: history}} mapping, got {runs!r}")
    fig = Figure(figsize=(3.3 * len(runs), 3.4), layout="constrained")
    axes = fig.subplots(1, len(runs), squeeze=False, sharex=True,
                        sharey=True)[0]
    for ax, (name, run) in zip(axes, runs.items(), strict=True):
        history = getattr(run, "history", run)
        if "loss" not in history:
            raise ValueError(f"run {name!r}: expected a history with 'loss', got {sorted(history)}")
        for key, style, label in (("loss", "-", "train"), ("val_loss", "--", "validation")):
            if key not in history:
                continue
            values = np.asarray(history[key], dtype=float).reshape(-1)
            bad = np.flatnonzero(~np.isfinite(values))
            measured = values[: bad[0]] if bad.size else values
            ax.plot(np.arange(1, measured.size + 1), measured, style, marker=".", label=label)
            if bad.size and key == "loss":
                ax.text(0.5, 0.5, f"loss NaN from epoch {bad[0] + 1}:\nthe run diverged",
                        transform=ax.transAxes, fontsize="small", color="C3", ha="center")
        if initial_loss is not None:
            ax.axhline(initial_loss, color="0.5", linestyle=":", lw=1, label="before training")
        train = np.asarray(history["loss"], dtype=float).reshape(-1)
        if initial_loss is not None:
            train = np.r_[initial_loss, train]
        ax.set(title=f"{name}: {diagnose_loss_curve(train)}", xlabel="epoch")
        ax.set_yscale("log")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize="small", loc="lower left")
    axes[0].set_ylabel("training loss (log scale)")
    return fig
