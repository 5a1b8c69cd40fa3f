"""What the learning rate does: plain gradient descent on a quadratic bowl, and its figure.

On the bowl ``c / 2 * w**2`` (:class:`course_utils.surfaces.QuadraticLoss`) the
effect of the rate is exact: a step of ``lr`` multiplies ``w`` by ``1 - lr * c``.

Examples
--------
>>> from course_utils.surfaces import QuadraticLoss
>>> gradient_descent(QuadraticLoss((1.0,)), [4.0], 0.5, 3)[:, 0].tolist()
[4.0, 2.0, 1.0, 0.5]
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from course_utils.runtime.checks import check_scalar
from course_utils.surfaces import QuadraticLoss

__all__ = ["gradient_descent", "plot_descent"]


def gradient_descent(
    loss: QuadraticLoss,
    start: ArrayLike,
    learning_rate: float | Callable[[int], float],
    steps: int,
) -> np.ndarray:
    """The points visited by ``steps`` steps ``w <- w - learning_rate * gradient(w)``.

    ``learning_rate`` is a number, or a function of the step (0, 1, ...) such as
    an :class:`~course_utils.learning_rate.EpochSchedule` (one step per epoch).
    Returns an array of shape ``(steps + 1, loss.dim)``, the start included.

    Examples
    --------
    >>> from course_utils.learning_rate import make_step_decay
    >>> from course_utils.surfaces import QuadraticLoss
    >>> gradient_descent(QuadraticLoss((1.0,)), [4.0], 0.5, 3)[:, 0].tolist()
    [4.0, 2.0, 1.0, 0.5]
    >>> gradient_descent(QuadraticLoss((1.0,)), [4.0], 2.5, 2)[:, 0].tolist()  # diverges
    [4.0, -6.0, 9.0]
    >>> gradient_descent(QuadraticLoss((1.0,)), [4.0], make_step_decay(0.5, every=1), 2)[:, 0]
    array([4. , 2. , 1.5])
    """
    rate_at = learning_rate if callable(learning_rate) else None
    if rate_at is None:
        learning_rate = check_scalar(learning_rate, "learning_rate", float, min_val=0,
                                     include_boundaries="neither", finite=True)
    steps = check_scalar(steps, "steps", int, min_val=0)
    w = np.asarray(start, dtype=float).reshape(-1)
    if w.shape != (loss.dim,):
        raise ValueError(f"start: expected a point with {loss.dim} coordinate(s), got {start!r}")
    path = [w.copy()]
    for step in range(steps):
        rate = rate_at(step) if rate_at is not None else learning_rate
        w = w - rate * loss.gradient(w)
        path.append(w.copy())
    return np.array(path)


def plot_descent(
    loss: QuadraticLoss,
    learning_rate: float | Callable[[int], float],
    *,
    start: ArrayLike | None = None,
    steps: int = 15,
) -> Figure:
    """Gradient descent drawn on the loss surface (left) and the loss per step (right).

    1-D: the parabola with the steps as numbered points; 2-D: the contour lines
    of the valley with the path. The title says whether the rate converges,
    oscillates or diverges on this bowl; ``learning_rate`` may also be a schedule
    (a function of the step, see :func:`gradient_descent`).

    Examples
    --------
    >>> from course_utils.surfaces import QuadraticLoss
    >>> fig = plot_descent(QuadraticLoss((1.0, 10.0)), 0.15)
    >>> len(fig.axes), fig.axes[1].get_xlabel()
    (2, 'step')
    """
    if start is None:
        start = [3.0] if loss.dim == 1 else [-4.0, 1.5]
    path = gradient_descent(loss, start, learning_rate, steps)
    values = loss.loss(path)
    shown = np.clip(path, -1e3, 1e3)
    fig = Figure(figsize=(10.0, 3.8), layout="constrained")
    surface, curve = fig.subplots(1, 2, width_ratios=(1.4, 1.0))
    reach = max(float(np.max(np.abs(path[0]))) * 1.3, 1.0)
    if loss.dim == 1:
        grid = np.linspace(-reach, reach, 200)
        surface.plot(grid, loss.loss(grid), color="0.5")
        surface.plot(shown[:, 0], loss.loss(shown), "o-", color="C3", markersize=4, lw=1)
        surface.set(xlim=(-reach, reach), ylim=(-0.05 * loss.loss(reach), 1.1 * loss.loss(reach)),
                    xlabel="weight w", ylabel="loss")
    else:
        xs, ys = np.meshgrid(np.linspace(-reach, reach, 120), np.linspace(-reach / 2, reach / 2, 80))
        surface.contour(xs, ys, loss.loss(np.stack([xs, ys], axis=-1)), levels=15, colors="0.6",
                        linewidths=0.7)
        surface.plot(shown[:, 0], shown[:, 1], "o-", color="C3", markersize=3, lw=1)
        surface.plot([0], [0], "k*", markersize=10)
        surface.set(xlim=(-reach, reach), ylim=(-reach / 2, reach / 2), xlabel="w1", ylabel="w2")
    curve.semilogy(np.arange(len(values)), np.maximum(values, 1e-12), "o-", markersize=3)
    curve.set(xlabel="step", ylabel="loss (log scale)")
    curve.grid(alpha=0.3)
    if callable(learning_rate):
        title = f"schedule: the loss ends at {values[-1]:.3g} after {steps} steps"
    else:
        title = f"learning rate {learning_rate:g}: {_descent_regime(loss, learning_rate)}"
    surface.set_title(title)
    return fig


def _descent_regime(loss: QuadraticLoss, learning_rate: float) -> str:
    factors = [abs(1 - learning_rate * c) for c in loss.curvatures]
    if max(factors) > 1:
        return "diverges"
    if max(factors) == 1:
        return "bounces for ever"
    if any(learning_rate * c > 1 for c in loss.curvatures):
        return "oscillates, then converges"
    return "converges"
