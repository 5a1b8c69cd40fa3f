"""Lesson 04's result figures: accuracy by method and by amount of labelled data.

Examples
--------
>>> fig = plot_accuracy_comparison({"feature extraction": 0.4})
>>> fig.axes[0].get_ylabel()
'test accuracy'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from course_utils import labels
from course_utils.transfer.reuse import fit_feature_classifier

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["plot_accuracy_by_data_size", "plot_accuracy_comparison"]


def plot_accuracy_comparison(
    accuracies: Mapping[str, float | tuple[float, float]], *, chance: float | None = None
) -> Figure:
    """Bar chart of test accuracies by method, values written on the bars.

    A value is an accuracy, or a pair ``(mean, spread)`` over seeds
    (:func:`course_utils.training.final_over_seeds`): the spread is drawn as an error
    bar of one standard deviation either way. Each bar is labelled with its accuracy in
    percent to one decimal, as the lessons print it, and a pair with its spread (``± 0.0``
    where every seed gave the same). ``chance`` (e.g. ``1 / 12``) draws the chance level as
    a dashed line.

    Examples
    --------
    >>> fig = plot_accuracy_comparison({"from scratch": 0.2, "fine-tuning": (0.5, 0.03)},
    ...                                chance=1 / 12)
    >>> [t.get_text() for t in fig.axes[0].get_xticklabels()]
    ['from scratch', 'fine-tuning']
    """
    from matplotlib.figure import Figure

    if not accuracies:
        raise ValueError("accuracies: expected at least one {method: accuracy} entry")
    names = list(accuracies)
    pairs = [v if isinstance(v, tuple) else (v, 0.0) for v in accuracies.values()]
    values = [float(mean) for mean, _ in pairs]
    spreads = [float(spread) for _, spread in pairs]
    if any(not 0 <= v <= 1 for v in values) or any(not s >= 0 for s in spreads):
        raise ValueError(f"accuracies: expected values in [0, 1] (and spreads >= 0), got "
                         f"{list(accuracies.values())}")
    fig = Figure(figsize=(1.8 + 1.6 * len(names), 3.4))
    ax = fig.add_subplot()
    bars = ax.bar(names, values, color="#4c72b0", yerr=spreads if any(spreads) else None,
                  capsize=4)
    over_seeds = [isinstance(v, tuple) for v in accuracies.values()]  # these have a spread
    for bar, value, spread, paired in zip(bars, values, spreads, over_seeds, strict=True):
        # one decimal, as the lesson prints them: a spread of 0.5 points is not "± 0"
        text = f"{100 * value:.1f}%" + (f" ± {100 * spread:.1f}" if paired else "")
        ax.text(bar.get_x() + bar.get_width() / 2, value + spread + 0.02, text, ha="center")
    if chance is not None:
        ax.axhline(chance, color="grey", linestyle="--", label="chance")
        ax.legend(loc="upper left")
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("test accuracy")
    return fig


def plot_accuracy_by_data_size(
    features: np.ndarray,
    y: np.ndarray,
    features_test: np.ndarray,
    y_test: np.ndarray,
    *,
    sizes: Sequence[int],
    C: float = 0.01,
) -> Figure:
    """Test accuracy of feature extraction against labelled images per class.

    For each ``k`` in ``sizes`` a logistic regression (:func:`fit_feature_classifier`
    with ``C``) is trained on the first ``k`` images of every class in
    ``(features, y)`` and scored on the test features. The accuracies are in the
    figure's ``accuracies`` attribute, ``{k: accuracy}``.

    Raises ``ValueError`` when a size is not a positive integer or some class has
    fewer than ``max(sizes)`` images.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat(np.arange(3), 6)
    >>> f = rng.normal(size=(18, 4)) + 2 * y[:, None]
    >>> fig = plot_accuracy_by_data_size(f, y, f, y, sizes=[1, 3, 6], C=1.0)
    >>> sorted(fig.accuracies)
    [1, 3, 6]
    """
    from matplotlib.figure import Figure

    y = labels.check_labels(y, name="y")
    f = np.asarray(features)
    sizes = sorted({int(k) for k in sizes}) if len(sizes) else []
    if not sizes or sizes[0] < 1:
        raise ValueError(f"sizes: expected positive numbers of images per class, got {sizes}")
    classes = np.unique(y)
    counts = np.bincount(y)[classes]
    if counts.min() < sizes[-1]:
        raise ValueError(
            f"sizes: a class has only {counts.min()} images, fewer than the largest size {sizes[-1]}"
        )
    order = np.argsort(y, kind="stable")
    first = {c: order[y[order] == c] for c in classes}
    accuracies = {}
    for k in sizes:
        keep = np.concatenate([first[c][:k] for c in classes])
        classifier = fit_feature_classifier(f[keep], y[keep], C=C)
        accuracies[k] = float(classifier.score(features_test, y_test))
    fig = Figure(figsize=(5.5, 3.4))
    ax = fig.add_subplot()
    ax.plot(list(accuracies), list(accuracies.values()), "o-")
    for k, value in accuracies.items():
        ax.annotate(f"{value:.0%}", (k, value), textcoords="offset points", xytext=(0, 7),
                    ha="center")
    ax.set_xlabel("labelled images per class")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1.05)
    ax.set_title(f"Feature extraction with more labels (C = {C:g})")
    fig.accuracies = accuracies
    return fig
