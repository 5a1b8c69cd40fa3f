"""Which method? Lesson 04's rule of thumb, as a table, a function and a figure.

Examples
--------
>>> choose_method("small", "different")
'feature extraction'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["DECISION_TABLE", "METHODS", "choose_method", "plot_decision_table"]


#: The three ways to get a classifier for a new task.
METHODS: Final = ("feature extraction", "fine-tuning", "train from scratch")

#: The decision table: (dataset size, similarity to the source data) -> (method, why).
DECISION_TABLE: Final[Mapping[tuple[str, str], tuple[str, str]]] = {
    ("small", "similar"): (
        "feature extraction",
        "the base's features already describe such images, and too few labels would let "
        "fine-tuning overfit: train only a simple classifier on them",
    ),
    ("large", "similar"): (
        "fine-tuning",
        "enough labels to adapt the upper layers without overfitting; starting from the "
        "pretrained weights converges faster and better than from scratch",
    ),
    ("small", "different"): (
        "feature extraction",
        "too few labels to train or adapt many weights; the generic lower-level features "
        "(edges, strokes, blobs) still transfer, so cut lower in the network if needed",
    ),
    ("large", "different"): (
        "train from scratch",
        "the source features fit the new data poorly and there is enough data to learn "
        "its own (the pretrained weights remain a reasonable starting point)",
    ),
}
_SIZES: Final = ("small", "large")
_SIMILARITIES: Final = ("similar", "different")


def choose_method(dataset_size: str, similarity: str) -> str:
    """The method the decision table recommends (one of :data:`METHODS`).

    ``dataset_size`` is ``"small"`` or ``"large"`` (labelled data of the new task);
    ``similarity`` is ``"similar"`` or ``"different"`` (the new images compared to
    the data the base was trained on).

    Examples
    --------
    >>> choose_method("large", "similar")
    'fine-tuning'
    >>> choose_method("large", "different")
    'train from scratch'
    >>> choose_method("tiny", "similar")
    Traceback (most recent call last):
    ...
    ValueError: dataset_size: expected 'small' or 'large', got 'tiny'
    """
    if dataset_size not in _SIZES:
        raise ValueError(f"dataset_size: expected 'small' or 'large', got {dataset_size!r}")
    if similarity not in _SIMILARITIES:
        raise ValueError(f"similarity: expected 'similar' or 'different', got {similarity!r}")
    return DECISION_TABLE[(dataset_size, similarity)][0]


def plot_decision_table() -> Figure:
    """The decision table as a figure: size (rows) by similarity (columns), with reasons.

    Examples
    --------
    >>> fig = plot_decision_table()
    >>> fig.axes[0].get_title()
    'Which method? (labelled data of the new task x similarity to the source data)'
    """
    import textwrap

    from matplotlib.figure import Figure

    colours = {"feature extraction": "#cfe8cf", "fine-tuning": "#cfdcf0",
               "train from scratch": "#f3d9c4"}
    fig = Figure(figsize=(10, 4.6))
    ax = fig.add_subplot()
    ax.set_xlim(0, 2)
    ax.set_ylim(0, 2)
    ax.invert_yaxis()
    for row, size in enumerate(_SIZES):
        for col, similarity in enumerate(_SIMILARITIES):
            method, why = DECISION_TABLE[(size, similarity)]
            ax.add_patch(_rectangle((col, row), colours[method]))
            ax.text(col + 0.5, row + 0.2, method, ha="center", va="center", fontsize=12,
                    weight="bold")
            ax.text(col + 0.5, row + 0.6, textwrap.fill(why, 52), ha="center", va="center",
                    fontsize=8)
    ax.set_xticks([0.5, 1.5], [f"{s} data" for s in _SIMILARITIES])
    ax.set_yticks([0.5, 1.5], [f"{s} data set" for s in _SIZES])
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    ax.set_title("Which method? (labelled data of the new task x similarity to the source data)",
                 pad=28)
    return fig


def _rectangle(corner: tuple[float, float], colour: str) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle(corner, 1, 1, facecolor=colour, edgecolor="white", linewidth=3)
