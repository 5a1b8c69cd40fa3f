"""Lesson 02's figures: learning curves with their diagnosis, and the remedies over seeds.

Every run keeps one colour in every figure (:data:`RUN_COLOURS`, by name); training
curves are solid and validation curves dashed; axes count epochs.

Examples
--------
>>> fig = plot_diagnoses({"a run": {"loss": [2.0, 1.0, 0.5], "val_loss": [2.0, 1.1, 0.6]}})
>>> [float(y) for y in fig.axes[0].get_ylim()]     # up to the highest loss, 2.0, and a bit
[0.0, 2.1]
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from course_utils import labels
from course_utils.history import read_history
from course_utils.overfitting.comparison import RemedyEffect
from course_utils.overfitting.diagnosis import diagnose_history
from course_utils.overfitting.remedies import VARIANTS

__all__ = ["RUN_COLOURS", "plot_diagnoses", "plot_remedies", "plot_remedy_curves"]

#: The colour of every run of the remedies, by name, in every figure.
RUN_COLOURS: Final[Mapping[str, str]] = {
    name: f"C{index}" for index, name in enumerate((*VARIANTS, "early stopping"))
}


def plot_diagnoses(
    runs: Mapping[str, Any],
    *,
    show_diagnosis: bool = True,
    num_classes: int = labels.NUM_CLASSES,
) -> Figure:
    """One small loss plot per run, titled with the run's name and its diagnosis.

    Training loss solid, validation loss dashed, the loss of guessing (ln C, C =
    ``num_classes``) dotted. All panels share one linear loss axis, from 0 to 1.3 ln C
    (or to the highest loss, when that is lower), so that a flat curve looks flat and
    a gap looks as wide in every panel. A loss above the axis (an exploding run) leaves
    the panel at the top; its highest value is written in the top right corner, with its
    epoch, in the colour of its curve.
    ``runs`` maps a name to a history (see :func:`~course_utils.overfitting.diagnose_history`).
    With ``show_diagnosis=False`` the titles only name the runs and the best epoch is not
    marked (a quiz).

    Examples
    --------
    >>> fig = plot_diagnoses({"a run": {"loss": [2.0, 1.0, 0.5], "val_loss": [2.0, 1.1, 0.6]}})
    >>> fig.axes[0].get_title()
    'a run\\n→ ideal'
    """
    if not isinstance(runs, Mapping) or not runs:
        raise ValueError("runs: expected a non-empty dict {name: history}")
    columns = min(3, len(runs))
    rows = math.ceil(len(runs) / columns)
    fig = Figure(figsize=(4.0 * columns, 2.9 * rows + 0.5), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False, sharey=True).ravel()
    chance = math.log(num_classes)
    histories = {name: {key: np.asarray(values, dtype=np.float64)
                        for key, values in read_history(run, name=str(name)).items()}
                 for name, run in runs.items()}
    highest = max(float(np.nanmax(np.where(np.isfinite(h[k]), h[k], np.nan)))
                  for h in histories.values() for k in ("loss", "val_loss"))
    top = min(1.3 * chance, 1.05 * highest)
    for index, (ax, (name, curves)) in enumerate(zip(axes, histories.items(), strict=False)):
        diagnosis = diagnose_history(curves, num_classes=num_classes)
        epochs = curves["epoch"]
        off_axis = 0
        for key, style, colour in (("loss", "-", "C0"), ("val_loss", "--", "C1")):
            ax.plot(epochs, curves[key], color=colour, linestyle=style)
            values = np.where(np.isfinite(curves[key]), curves[key], -np.inf)
            if values.max() > top:  # off the axis: say how high it went, top right
                at = int(np.argmax(values))
                ax.text(0.98, 0.97 - 0.09 * off_axis,
                        f"↑ {values[at]:.3g} in epoch {int(epochs[at])}",
                        transform=ax.transAxes, ha="right", va="top", fontsize="small",
                        color=colour)
                off_axis += 1
        ax.axhline(chance, color="0.4", linestyle=":", linewidth=1)
        title = str(name)
        if show_diagnosis:
            ax.axvline(diagnosis.best_epoch, color="0.6", linewidth=0.8)
            title += f"\n→ {diagnosis.label}"
        ax.set_ylim(0.0, float(top))
        ax.set_title(title)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if index >= len(runs) - columns:
            ax.set_xlabel("epoch")
        if index % columns == 0:
            ax.set_ylabel("loss (cross-entropy)")
        ax.grid(alpha=0.3)
    for ax in axes[len(runs):]:
        ax.set_visible(False)
    handles = [Line2D([], [], color="C0", label="training loss"),
               Line2D([], [], color="C1", linestyle="--", label="validation loss"),
               Line2D([], [], color="0.4", linestyle=":",
                      label=f"guessing: ln {num_classes} = {chance:.2f}")]
    if show_diagnosis:
        handles.append(Line2D([], [], color="0.6", linewidth=0.8,
                              label="lowest validation loss"))
    # two entries a row under a single panel: a row of four is wider than the panel
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 2 * columns),
               fontsize="small", frameon=False)
    return fig


def plot_remedies(effects: Sequence[RemedyEffect]) -> Figure:
    """Every run's validation loss and accuracy after training, seed by seed.

    One panel per measure; each dot is one seed's run, the bar across the dots its mean
    and the vertical line the mean ± one standard deviation; the dashed line carries the
    baseline's mean (the first effect) across the panel.

    Examples
    --------
    >>> base = RemedyEffect("baseline", (0, 1), (1.4, 1.3), (0.60, 0.64), (1.0, 1.0))
    >>> fig = plot_remedies([base])
    >>> [ax.get_ylabel() for ax in fig.axes]
    ['validation loss (cross-entropy)', 'validation accuracy (%)']
    """
    if not effects:
        raise ValueError("effects: expected at least one RemedyEffect (the baseline first)")
    fig = Figure(figsize=(max(6.0, 0.75 * len(effects) + 3.0) * 2, 3.9), layout="constrained")
    axes = fig.subplots(1, 2)
    positions = np.arange(len(effects))
    for ax, (measure, scale, label) in zip(axes, (
            ("val_loss", 1.0, "validation loss (cross-entropy)"),
            ("val_accuracy", 100.0, "validation accuracy (%)")), strict=True):
        for x, effect in zip(positions, effects, strict=True):
            values = np.multiply(getattr(effect, measure), scale)
            colour = RUN_COLOURS.get(effect.name, "0.3")
            mean, sd = float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0
            ax.plot([x - 0.25, x + 0.25], [mean, mean], color=colour, linewidth=2.5)
            ax.plot([x, x], [mean - sd, mean + sd], color=colour, linewidth=1)
            spread = np.linspace(-0.12, 0.12, len(values)) if len(values) > 1 else [0.0]
            ax.plot(x + np.asarray(spread), values, "o", color=colour, markersize=4,
                    markerfacecolor="white")
        base = float(np.mean(getattr(effects[0], measure))) * scale
        ax.axhline(base, color="0.5", linestyle="--", linewidth=0.8)
        ax.set_xticks(positions, [e.name for e in effects], rotation=25, ha="right")
        ax.set_ylabel(label)
        ax.set_ylim(0, 100 if measure == "val_accuracy" else None)
        if measure == "val_loss":
            ax.set_ylim(bottom=0)
        ax.grid(axis="y", alpha=0.3)
    n = len(effects[0].seeds)
    fig.suptitle(f"after training, {n} seeds: a dot per seed, the bar at the mean, the line "
                 f"± one standard deviation; dashed: the {effects[0].name}'s mean",
                 fontsize="medium")
    return fig


def plot_remedy_curves(
    runs: Mapping[str, Any],
    *,
    metrics: Sequence[str] = ("crossentropy", "val_crossentropy", "val_accuracy"),
) -> Figure:
    """Learning curves averaged over seeds: one panel per metric, one line per run.

    ``runs`` maps a run's name to ``{seed: RunResult}`` (or to a list of runs); every
    run of a name must have recorded the same epochs (no early stopping). The line is
    the mean over the seeds (:func:`course_utils.training.mean_over_seeds`), the band
    the mean ± one standard deviation. Loss panels share their y-axis, so do accuracy
    panels; ``crossentropy`` is the loss without the L1/L2 penalty.

    Examples
    --------
    >>> runs = {"baseline": [{"crossentropy": [2.0, 1.0], "val_crossentropy": [2.1, 1.5],
    ...                       "val_accuracy": [0.2, 0.5]},
    ...                      {"crossentropy": [2.2, 0.8], "val_crossentropy": [2.0, 1.3],
    ...                       "val_accuracy": [0.3, 0.6]}]}
    >>> [ax.get_title() for ax in plot_remedy_curves(runs).axes]
    ['training loss', 'validation loss', 'validation accuracy']
    """
    from course_utils.training import mean_over_seeds

    if not isinstance(runs, Mapping) or not runs:
        raise ValueError("runs: expected a non-empty dict {name: {seed: RunResult}}")
    metrics = tuple(metrics)
    if not metrics:
        raise ValueError("metrics: expected at least one metric name, got none")
    summaries = {}
    for name, by_seed in runs.items():
        values = list(by_seed.values()) if isinstance(by_seed, Mapping) else list(by_seed)
        summaries[name] = mean_over_seeds(values)
    fig = Figure(figsize=(4.6 * len(metrics), 3.8), layout="constrained")
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    losses = [ax for ax, m in zip(axes, metrics, strict=True) if "accuracy" not in m]
    for ax in losses[1:]:
        ax.sharey(losses[0])
    for ax, metric in zip(axes, metrics, strict=True):
        for name, (mean, spread) in summaries.items():
            if metric not in mean:
                raise ValueError(f"runs: {name!r} has no {metric!r} (keys: "
                                 f"{', '.join(sorted(mean.metrics))})")
            epochs = np.asarray(mean.epochs)
            mu, sd = np.asarray(mean[metric]), np.asarray(spread[metric])
            colour = RUN_COLOURS.get(name, None)
            style = "--" if metric.startswith("val_") else "-"
            ax.plot(epochs, mu, color=colour, linestyle=style, label=name)
            ax.fill_between(epochs, mu - sd, mu + sd, color=ax.lines[-1].get_color(),
                            alpha=0.15, linewidth=0)
        ax.set_title(_title(metric))
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy" if "accuracy" in metric else "cross-entropy")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if "accuracy" in metric:
            ax.set_ylim(0.0, 1.0)
        else:
            ax.set_ylim(bottom=0.0)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize="small")
    n = len(next(iter(runs.values())))
    fig.suptitle(f"mean over {n} seeds, band ± one standard deviation; training solid, "
                 f"validation dashed", fontsize="medium")
    return fig


def _title(metric: str) -> str:
    part = "validation" if metric.startswith("val_") else "training"
    measure = metric.removeprefix("val_")
    return f"{part} {'loss' if measure in ('crossentropy', 'loss') else measure}"
