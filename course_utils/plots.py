"""Figures of the course: learning curves, confusion matrix, image grids.

Every function builds a :class:`matplotlib.figure.Figure` (never ``pyplot``),
so no figure is left open behind the student's back and everything works
without a display. In a notebook the returned figure shows as the cell's
result; :func:`save_figure` writes it as a PNG, atomically.

* :func:`plot_history`: compare training runs, in the style of
  ``tensorflow_docs.plots.HistoryPlotter``: one axis per metric, one colour per
  run, training solid and validation (``val_*``) dashed.
* :func:`plot_confusion_matrix`: the counts of :func:`course_utils.metrics.confusion_matrix`.
* :func:`plot_images`: a grid of images titled with their class names, wrong
  predictions in red.

Examples
--------
>>> import numpy as np
>>> fig = plot_history({"small": {"loss": [1.0, 0.6], "val_loss": [1.1, 0.8],
...                               "accuracy": [0.4, 0.7], "val_accuracy": [0.3, 0.6]}})
>>> [ax.get_title() for ax in fig.axes]
['loss', 'accuracy']
>>> fig = plot_confusion_matrix(np.eye(12, dtype=int))
>>> len(fig.axes)      # the matrix and its colour bar
2
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from numpy.typing import ArrayLike

from course_utils import metrics
from course_utils.history import METRIC_NAMES, read_history
from course_utils.labels import CLASS_NAMES, NUM_CLASSES, check_class_names, check_label_vector
from course_utils.runtime import io
from course_utils.runtime.checks import check_scalar

__all__ = [
    "colors_for",
    "plot_over_seeds",
    "MAX_IMAGES",
    "plot_confusion_matrix",
    "plot_history",
    "plot_images",
    "save_figure",
]

#: Most images :func:`plot_images` draws in one figure (a bigger grid is unreadable and slow).
MAX_IMAGES = 200

def plot_history(
    runs: Mapping[str, Any], *, metrics: Sequence[str] = ("loss", "accuracy")
) -> Figure:
    """Learning curves of one or more runs: one axis per metric.

    Each run keeps one colour in every axis (the first run matplotlib's ``C0``,
    the second ``C1``, ...); its training curve (``metric``) is solid and its
    validation curve (``val_metric``) dashed, the legend says which is which.
    A run needs at least one of the two for every metric asked for. Axes of
    accuracy metrics run from 0 to 1 so runs and lessons compare at a glance.

    Parameters
    ----------
    runs
        ``{run name: history}``; a history is a ``keras.callbacks.History``, a
        dict of per-epoch lists, or the path of a ``history.json`` (see
        :func:`course_utils.history.read_history`).
    metrics
        Metric names without the ``val_`` prefix, one axis each.

    Raises
    ------
    ValueError
        When ``runs`` or ``metrics`` is empty, or a run has neither ``metric``
        nor ``val_metric`` (the message names the run and lists its keys).
    TypeError
        When ``runs`` is not a mapping from run names to histories.

    Examples
    --------
    >>> small = {"loss": [1.0, 0.7, 0.5], "val_loss": [1.1, 0.9, 0.8]}
    >>> big = {"loss": [0.9, 0.4, 0.2], "val_loss": [1.0, 0.8, 0.9]}
    >>> fig = plot_history({"small": small, "big": big}, metrics=["loss"])
    >>> [(line.get_label(), line.get_linestyle()) for line in fig.axes[0].lines]
    [('small train', '-'), ('small validation', '--'), ('big train', '-'), ('big validation', '--')]
    """
    if not isinstance(runs, Mapping) or any(_looks_like_values(v) for v in runs.values()):
        raise TypeError(
            "runs: expected a mapping from a run name to its history, e.g. {'baseline': history}; "
            f"got {type(runs).__name__}" + (
                " of lists (one history? wrap it: {'my run': history})"
                if isinstance(runs, Mapping) else ""
            )
        )
    if not runs:
        raise ValueError("runs: expected at least one {'name': history}, got an empty mapping")
    if isinstance(metrics, str):
        metrics = (metrics,)
    metrics = tuple(metrics)
    if not metrics:
        raise ValueError("metrics: expected at least one metric name, e.g. ('loss',), got none")

    histories = {str(name): read_history(run, name=str(name)) for name, run in runs.items()}
    for name, history in histories.items():
        for metric in metrics:
            if metric not in history and f"val_{metric}" not in history:
                available = sorted(k for k in history if k != "epoch")
                raise ValueError(
                    f"run {name!r} has no {metric!r} (nor 'val_{metric}'); "
                    f"available: {', '.join(available) or 'nothing'}"
                )

    fig = Figure(figsize=(5.0 * len(metrics), 3.8), layout="constrained")
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    for ax, metric in zip(axes, metrics, strict=True):
        for index, (name, history) in enumerate(histories.items()):
            color = f"C{index % 10}"
            for key, style, part in ((metric, "-", "train"), (f"val_{metric}", "--", "validation")):
                if key in history:
                    ax.plot(history["epoch"], history[key], color=color, linestyle=style,
                            marker="." if len(history[key]) < 30 else None, label=f"{name} {part}")
        ax.set(title=metric, xlabel="epoch", ylabel=metric)
        if metric.endswith("accuracy"):
            ax.set_ylim(0.0, 1.02)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    return fig


def plot_confusion_matrix(
    cm: ArrayLike, class_names: Sequence[str] = CLASS_NAMES, *, normalize: bool = False
) -> Figure:
    """Draw a confusion matrix with the value of every cell written in it.

    True classes are rows, predicted classes columns, as
    :func:`course_utils.metrics.confusion_matrix` returns them. With
    ``normalize=True`` each row is divided by its total, so a cell is the share
    of that true class predicted as the column's class (an empty row stays 0).

    Parameters
    ----------
    cm
        Square matrix of counts, ``(num_classes, num_classes)``.
    class_names
        One name per class, in matrix order (the 12 fingers classes by default).
    normalize
        Show row fractions instead of counts.

    Raises
    ------
    ValueError
        When ``cm`` is not a square matrix of non-negative numbers, or
        ``class_names`` does not have one name per row.

    Examples
    --------
    >>> import numpy as np
    >>> fig = plot_confusion_matrix(np.array([[3, 1], [0, 2]]), ["left", "right"])
    >>> [t.get_text() for t in fig.axes[0].texts]
    ['3', '1', '0', '2']
    """
    matrix = metrics.check_confusion_matrix(cm).astype(np.float64)
    names = check_class_names(class_names, len(matrix))
    if normalize:
        totals = matrix.sum(axis=1, keepdims=True)
        matrix = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
    n = len(matrix)
    side = max(4.0, 0.5 * n + 2.0)
    fig = Figure(figsize=(side + 1.0, side), layout="constrained")
    ax = fig.add_subplot()
    vmax = 1.0 if normalize else max(float(matrix.max()), 1.0)
    image = ax.imshow(matrix, cmap="Blues", vmin=0.0, vmax=vmax, interpolation="nearest")
    fig.colorbar(image, ax=ax, label="share of the true class" if normalize else "images")
    fontsize = 9 if n <= 12 else 7
    for i in range(n):
        for j in range(n):
            value = matrix[i, j]
            text = f"{value:.2f}" if normalize else f"{value:.0f}"
            color = "white" if value > 0.6 * vmax else "black"
            ax.text(j, i, text, ha="center", va="center", color=color, fontsize=fontsize)
    ax.set_xticks(range(n), labels=names)
    ax.set_yticks(range(n), labels=names)
    ax.set(xlabel="predicted class", ylabel="true class",
           title="Confusion matrix" + (" (rows normalised)" if normalize else ""))
    return fig


def plot_images(
    images: ArrayLike,
    labels: ArrayLike | None = None,
    *,
    predictions: ArrayLike | None = None,
    ncols: int = 8,
) -> Figure:
    """Show images in a grid, each titled with its class name.

    A title is the true class (``labels``), or the predicted class when
    ``predictions`` are given; a wrong prediction is titled
    ``"<predicted> (true <label>)"`` in red with a red frame.

    Parameters
    ----------
    images
        ``uint8`` images ``(n, size, size)`` in 0..255, or float images
        ``(n, size, size)`` / ``(n, size, size, 1)`` in [0, 1] (what the
        ``tf.data`` pipeline yields). At most :data:`MAX_IMAGES`.
    labels, predictions
        Optional class indices ``0..11``, one per image.
    ncols
        Images per row.

    Raises
    ------
    ValueError
        When the images do not have one of those shapes or value ranges, there
        are none or too many, or labels/predictions do not match them.

    Examples
    --------
    >>> import numpy as np
    >>> images = np.zeros((3, 8, 8), dtype=np.uint8)
    >>> fig = plot_images(images, [0, 3, 7], predictions=[0, 3, 6])
    >>> [ax.get_title() for ax in fig.axes]
    ['0L', '1R', '3L (true 3R)']
    """
    arr = _check_images(images)
    n = len(arr)
    true = _optional_labels(labels, n, name="labels")
    pred = _optional_labels(predictions, n, name="predictions")
    ncols = check_scalar(ncols, "ncols", int, min_val=1)
    cols = min(n, ncols)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(1.6 * cols, 1.8 * rows), layout="constrained")
    vmax = 255 if arr.dtype == np.uint8 else 1.0
    for i in range(n):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.imshow(arr[i], cmap="gray", vmin=0, vmax=vmax, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        wrong = true is not None and pred is not None and pred[i] != true[i]
        if pred is not None:
            title = CLASS_NAMES[pred[i]] + (f" (true {CLASS_NAMES[true[i]]})" if wrong else "")
        elif true is not None:
            title = CLASS_NAMES[true[i]]
        else:
            title = ""
        ax.set_title(title, fontsize=9, color="red" if wrong else "black")
        for spine in ax.spines.values():
            spine.set_visible(wrong)
            spine.set_color("red")
            spine.set_linewidth(2.5)
    return fig


def plot_over_seeds(runs: Mapping[str, Mapping[int, Any]], *,
                    metrics: Sequence[str] = ("loss", "val_loss"),
                    colors: Mapping[str, str] | None = None) -> Figure:
    """One panel per metric (shared log-scale y axis) against the epoch, for runs over seeds.

    ``runs`` is ``{name: {seed: history}}``, one
    :func:`course_utils.training.repeat_over_seeds` result per set-up. Each set-up's
    seeds are thin lines and their mean a thick line with dots, in the set-up's colour
    (``colors[name]`` where given, else the next free Matplotlib colour).

    Examples
    --------
    >>> runs = {"slow": {0: {"loss": [2.0, 1.0]}, 1: {"loss": [2.1, 1.2]}},
    ...         "fast": {0: {"loss": [1.5, 0.5]}, 1: {"loss": [1.4, 0.6]}}}
    >>> fig = plot_over_seeds(runs, metrics=["loss"], colors={"fast": "C3"})
    >>> [line.get_label() for line in fig.axes[0].lines if not line.get_label().startswith("_")]
    ['slow (mean of 2 seeds)', 'fast (mean of 2 seeds)']
    """
    from matplotlib.ticker import FuncFormatter

    if not runs:
        raise ValueError("runs: expected at least one {name: {seed: history}}, got none")
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    fig = Figure(figsize=(5.0 * len(metrics), 4.3), layout="constrained")
    axes = fig.subplots(1, len(metrics), sharey=True, squeeze=False)[0]
    colors = colors_for(runs, colors or {})
    for ax, metric in zip(axes, metrics, strict=True):
        for name, by_seed in runs.items():
            histories = [read_history(h, name=f"{name}, seed {s}") for s, h in by_seed.items()]
            for h in histories:
                ax.plot(h.epochs, h[metric], color=colors[name], linewidth=0.8, alpha=0.35)
            mean = np.mean([h[metric] for h in histories], axis=0)
            ax.plot(histories[0].epochs, mean, "-o", color=colors[name], linewidth=2,
                    markersize=4, label=f"{name} (mean of {len(histories)} seeds)")
        ax.set(yscale="log", xlabel="epoch", title=METRIC_NAMES.get(metric, metric))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    low, high = axes[0].get_ylim()
    axes[0].set_yticks(_log_ticks(low, high), minor=False)
    axes[0].set_yticks([], minor=True)
    axes[0].yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axes[0].set_ylim(low, high)
    axes[0].set_ylabel("loss (log scale)" if all("loss" in m for m in metrics) else "value")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center",
               ncols=min(len(runs), 2), fontsize="small")
    return fig


def save_figure(fig: Figure, path: str | os.PathLike[str], *, dpi: int = 100) -> Path:
    """Write ``fig`` to ``path`` as a PNG, atomically, and return the path.

    The image is drawn into a temporary file next to ``path`` and renamed over
    it, so a reader never sees half an image. Parent folders are created.

    Raises
    ------
    TypeError
        When ``fig`` is not a matplotlib ``Figure``.
    ValueError
        When ``path`` does not end with ``.png``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "curves.png"
    >>> fig = plot_history({"run": {"loss": [1.0, 0.5]}}, metrics=["loss"])
    >>> save_figure(fig, out).read_bytes()[:4]
    b'\\x89PNG'
    """
    if not isinstance(fig, Figure):
        raise TypeError(f"fig: expected a matplotlib Figure, got {type(fig).__name__}")
    target = Path(path)
    if target.suffix.lower() != ".png":
        raise ValueError(f"{target}: expected a path ending with .png (save_figure writes PNG files)")
    with io.atomic_path(target) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return target


def colors_for(names: Sequence[str] | Mapping[str, Any], given: Mapping[str, str],
               ) -> dict[str, str]:
    """Each name's colour: ``given[name]``, else the next Matplotlib colour not given.

    >>> colors_for(["a", "b", "c"], {"b": "C0"})
    {'a': 'C1', 'b': 'C0', 'c': 'C2'}
    """
    names = list(names)
    taken = {given[n] for n in names if n in given}
    free = (f"C{i}" for i in range(10) if f"C{i}" not in taken)
    return {n: given[n] if n in given else next(free, "0.4") for n in names}


def _log_ticks(low: float, high: float) -> list[float]:
    """Round tick values (1, 2, 5 per decade, finer for a short range) from low to high."""
    decades = range(int(np.floor(np.log10(low))), int(np.ceil(np.log10(high))) + 1)
    for mantissas in ((1, 2, 5), (1, 1.5, 2, 3, 5, 7), (1, 1.2, 1.4, 1.6, 1.8, 2, 2.5, 3, 4,
                                                         5, 6, 7, 8, 9)):
        ticks = [round(m * 10.0**d, 12) for d in decades for m in mantissas
                 if low <= m * 10.0**d <= high]
        if len(ticks) >= 3:
            return ticks
    return ticks


def _looks_like_values(value: Any) -> bool:
    """A list or array of numbers: a metric's values, not a run's history."""
    return isinstance(value, list | tuple | np.ndarray)


def _check_images(images: ArrayLike) -> np.ndarray:
    arr = np.asarray(images)
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim != 3:
        raise ValueError(
            f"images: expected shape (n, size, size) or (n, size, size, 1), got {arr.shape}"
        )
    if len(arr) == 0:
        raise ValueError("images: expected at least one image, got none")
    if len(arr) > MAX_IMAGES:
        raise ValueError(
            f"images: expected at most {MAX_IMAGES} images (what fits in one figure), got "
            f"{len(arr)}: pass a slice such as images[:32]"
        )
    if arr.dtype == np.uint8:
        return arr
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"images: expected uint8 (0..255) or float (0..1) pixels, got dtype {arr.dtype}")
    low, high = float(np.min(arr)), float(np.max(arr))
    if not (np.isfinite(low) and np.isfinite(high)) or low < -1e-3 or high > 1.0 + 1e-3:
        raise ValueError(
            f"images: expected float pixels in [0, 1], got values from {low:g} to {high:g} "
            "(pass uint8 images, or datasets.to_model_input of them)"
        )
    return arr


def _optional_labels(values: ArrayLike | None, n: int, *, name: str) -> np.ndarray | None:
    if values is None:
        return None
    arr = check_label_vector(values, num_classes=NUM_CLASSES, name=name)
    if len(arr) != n:
        raise ValueError(f"{name}: expected one class index per image ({n}), got {len(arr)}")
    return arr
