"""The figures of lesson 05; each function returns a matplotlib ``Figure``.

- :func:`plot_error_vs_step`: a gradient check's error against the step ``h``, log-log;
- :func:`plot_step_losses`: the loss of every training step, one panel per run;
- :func:`plot_gradient_norms`: the gradient norm per layer, one line per run;
- :func:`plot_update_ratios`: the update-to-weight ratio per layer, the healthy band shaded;
- :func:`plot_filters`: first-layer filters as small images.

Examples
--------
>>> fig = plot_gradient_norms({"deep sigmoid": {"dense_1": 1e-6, "dense_2": 1e-3}})
>>> fig.axes[0].get_xlabel()
'layer (1 = next to the input)'
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from course_utils.debugging._common import conv_kernel
from course_utils.debugging.checks import UPDATE_RATIO_BAND
from course_utils.debugging.gradient_check import check_gradients
from course_utils.runtime.checks import check_scalar

# matplotlib takes about a second to load: each function imports it when called.
if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

#: The relative error above which :func:`check_gradients` (and so the preflight) fails.
_CHECK_TOLERANCE: float = check_gradients.__kwdefaults__["tolerance"]

__all__ = [
    "plot_error_vs_step",
    "plot_filters",
    "plot_gradient_norms",
    "plot_step_losses",
    "plot_update_ratios",
]


def plot_error_vs_step(steps: Sequence[float], errors: Mapping[str, Sequence[float]]) -> Figure:
    """Relative error of the numerical gradient against the step h, log-log, one line per run.

    Two dotted lines mark the rules of thumb: below 1e-7 a float64 check is as good
    as rounding allows; above ``check_gradients``' tolerance (1e-4) it fails.

    Examples
    --------
    >>> fig = plot_error_vs_step([1e-1, 1e-3], {"float64": [1e-3, 1e-7]})
    >>> fig.axes[0].get_xscale(), fig.axes[0].get_yscale()
    ('log', 'log')
    """
    from matplotlib.figure import Figure

    steps_a = np.asarray(steps, dtype=float)
    if not errors:
        raise ValueError("errors: expected {label: one error per step}")
    fig = Figure(figsize=(5.5, 3.8), layout="constrained")
    ax = fig.add_subplot()
    for label, values in errors.items():
        values_a = np.asarray(values, dtype=float)
        if values_a.shape != steps_a.shape:
            raise ValueError(f"errors[{label!r}]: expected {len(steps_a)} values, one per step")
        ax.loglog(steps_a, np.maximum(values_a, 1e-17), marker="o", label=label)
    ax.axhline(1e-7, color="gray", linestyle=":", label="1e-7: right in float64")
    ax.axhline(_CHECK_TOLERANCE, color="firebrick", linestyle=":",
               label=f"{_CHECK_TOLERANCE:.0e}: check_gradients fails above")
    ax.set(xlabel="step h", ylabel="relative error", title="numerical vs analytic gradient")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small", loc="lower right")  # the float64 minimum lies further left
    return fig


def plot_step_losses(
    runs: Mapping[str, Sequence[float]], *, log: bool = True, columns: int = 3
) -> Figure:
    """The loss of every training step, one panel per run, all panels on one y-axis.

    ``runs`` maps a run name to its losses, one per step (as
    :func:`~course_utils.debugging.monitors.record_step_losses` returns them).
    Each run gets its own panel, so one run's spike cannot flatten the others;
    the panels share the loss axis, so their heights compare at a glance, and each
    keeps its own step axis (runs may take different numbers of steps). ``log``
    (the default) draws the loss on a log scale, where a loss near zero and one
    in the thousands both stay readable. Steps without a usable loss (nan, inf,
    or not above 0 on a log scale) leave a gap in the line and are counted in the
    panel's title: nothing is drawn where nothing was measured.

    Examples
    --------
    >>> fig = plot_step_losses({"healthy": [2.5, 1.9, 1.2], "diverged": [2.5, 900.0, 1e4]})
    >>> [ax.get_title() for ax in fig.axes], fig.axes[0].get_xlabel(), fig.axes[0].get_yscale()
    (['healthy', 'diverged'], 'training step', 'log')
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    if not runs:
        raise ValueError("runs: expected {run name: one loss per step}, got an empty mapping")
    columns = min(check_scalar(columns, "columns", int, min_val=1), len(runs))
    rows = math.ceil(len(runs) / columns)
    fig = Figure(figsize=(3.4 * columns, 2.6 * rows + 0.2), layout="constrained")
    axes = fig.subplots(rows, columns, sharey=True, squeeze=False).ravel()
    for index, (ax, (label, losses)) in enumerate(zip(axes, runs.items(), strict=False)):
        values = np.asarray(losses, dtype=float)
        if values.ndim != 1 or values.size == 0:
            raise ValueError(f"runs[{label!r}]: expected a list of losses, one per step, "
                             f"got shape {values.shape}")
        steps = np.arange(1, values.size + 1)
        finite = np.isfinite(values) & (values > 0 if log else True)
        # A gap where a step has no usable loss: nothing is drawn at a value not measured.
        ax.plot(steps, np.where(finite, values, np.nan), color=f"C{index % 10}", linewidth=1.2,
                marker="." if values.size < 30 else None)
        missing = int(values.size - finite.sum())
        ax.set_title(label + (f" ({missing} not finite)" if missing else ""), fontsize=10)
        ax.grid(alpha=0.3, which="both")
        if index % columns == 0:
            ax.set_ylabel("loss (log scale)" if log else "loss")
        ax.set_xlabel("training step")
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
    if log:
        axes[0].set_yscale("log")
    for ax in axes[len(runs):]:
        ax.set_visible(False)
    return fig


def plot_gradient_norms(runs: Mapping[str, Mapping[str, float]]) -> Figure:
    """Gradient norm per layer (input to output), log scale, one line per run.

    Examples
    --------
    >>> fig = plot_gradient_norms({"a": {"dense_1": 1e-6, "dense_2": 1e-3, "output": 1.0}})
    >>> fig.axes[0].get_yscale()
    'log'
    """
    from matplotlib.figure import Figure

    if not runs:
        raise ValueError("runs: expected {run name: {layer name: gradient norm}}")
    fig = Figure(figsize=(6.0, 3.8), layout="constrained")
    ax = fig.add_subplot()
    for label, norms in runs.items():
        values = np.maximum(np.array(list(norms.values()), dtype=float), 1e-30)
        ax.semilogy(np.arange(1, len(values) + 1), values, marker="o", label=label)
    ax.set(xlabel="layer (1 = next to the input)", ylabel="gradient norm",
           title="gradient size per layer")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small")
    return fig


def plot_update_ratios(
    runs: Mapping[str, Mapping[str, Sequence[float] | float]],
    *,
    band: tuple[float, float] = UPDATE_RATIO_BAND,
) -> Figure:
    """Update-to-weight ratio per layer, log scale, one line per run; the healthy band shaded.

    A run maps layer names to a ratio, or to a list of ratios per epoch (the
    last epoch is drawn), as :class:`UpdateRatioMonitor` records them.

    Examples
    --------
    >>> fig = plot_update_ratios({"lr 1e-3": {"conv": [2e-3], "fc": [1e-3]}})
    >>> [t.get_text() for t in fig.axes[0].get_xticklabels()]
    ['conv', 'fc']
    """
    from matplotlib.figure import Figure

    if not runs:
        raise ValueError("runs: expected {run name: {layer name: ratio(s)}}")
    fig = Figure(figsize=(8.2, 3.8), layout="constrained")
    ax = fig.add_subplot()
    names: list[str] = []
    for label, ratios in runs.items():
        names = names or list(ratios)
        values = [float(np.ravel(v)[-1]) for v in ratios.values()]
        ax.semilogy(range(len(values)), np.maximum(values, 1e-30), marker="o", label=label)
    ax.axhspan(*band, color="green", alpha=0.08, label=f"healthy band {band[0]:.0e}..{band[1]:.0e}")
    ax.axhline(1e-3, color="green", linestyle=":")
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set(ylabel="||update|| / ||weights||", title="update-to-weight ratio per layer")
    ax.grid(alpha=0.3, which="both")
    fig.legend(loc="outside right upper", fontsize="small")  # beside the lines, never on them
    return fig


def plot_filters(model_or_kernel: Any, *, layer: str | None = None, max_filters: int = 16) -> Figure:
    """The first convolution's filters as small gray images.

    ``model_or_kernel`` is a Keras model (its first ``Conv2D``, or ``layer``)
    or a kernel array ``(rows, cols, in_channels, filters)``; the first input
    channel of each of the first ``max_filters`` filters is drawn, each scaled
    to its own range. Trained filters look smooth and regular (edges, blobs);
    noisy ones mean too little training, too high a learning rate or missing
    weight decay.

    Examples
    --------
    >>> fig = plot_filters(np.random.default_rng(0).normal(size=(5, 5, 1, 6)))
    >>> len(fig.axes)
    6
    """
    from matplotlib.figure import Figure

    if hasattr(model_or_kernel, "layers"):
        kernel, title = conv_kernel(model_or_kernel, layer)
    else:
        kernel = np.asarray(model_or_kernel, dtype=float)
        title = "filters"
    if kernel.ndim != 4:
        raise ValueError(f"kernel: expected (rows, cols, in_channels, filters), got {kernel.shape}")
    count = min(kernel.shape[-1], check_scalar(max_filters, "max_filters", int, min_val=1))
    cols = min(count, 8)
    rows = math.ceil(count / cols)
    fig = Figure(figsize=(1.1 * cols, 1.2 * rows + 0.3), layout="constrained")
    fig.suptitle(f"{title}: {count} filters", fontsize=9)
    for i in range(count):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.imshow(kernel[:, :, 0, i], cmap="gray", interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
    return fig
