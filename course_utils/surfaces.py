"""Loss surfaces of lessons 01 and 03: quadratic bowls and the Rosenbrock valley, in NumPy.

Each surface is defined once, here, with its value, its gradient and the curvature
that limits the learning rate; the lessons draw optimizers on them:

- :class:`QuadraticLoss`: the bowl ``sum_j c_j / 2 * w_j**2`` in one or two
  dimensions. Lesson 01 (:mod:`course_utils.learning_rate`) runs gradient descent on
  it, where the effect of the rate is exact; two unequal curvatures make an
  ill-conditioned valley.
- :class:`RosenbrockLoss`: the curved valley ``(a - x)**2 + b * (y - x**2)**2``.
- :class:`Surface`: a 2-D surface ready for lesson 03 (:mod:`course_utils.momentum`):
  its value and gradient, minimum, starting point, largest curvature and the region
  to draw. :func:`make_quadratic` (an elongated bowl of a given condition number)
  and :func:`make_rosenbrock` build one.

Nothing here imports TensorFlow.

Examples
--------
>>> valley = QuadraticLoss((1.0, 10.0))
>>> valley.gradient([1.0, 1.0]).tolist(), valley.largest_stable_rate
([1.0, 10.0], 0.2)
>>> surface = make_quadratic(condition=10)
>>> surface.max_curvature, surface.loss(surface.start)
(1.0, 0.55)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import ArrayLike

from course_utils.runtime.checks import check_scalar

__all__ = [
    "QuadraticLoss",
    "RosenbrockLoss",
    "Surface",
    "make_quadratic",
    "make_rosenbrock",
]


@dataclasses.dataclass(frozen=True)
class QuadraticLoss:
    """The bowl ``L(w) = sum_j curvatures[j] / 2 * w_j**2``, minimum 0 at ``w = 0``.

    Its gradient is ``curvatures * w`` and its Hessian the diagonal matrix of the
    curvatures. One curvature gives a 1-D parabola, two give a 2-D valley (narrow
    where the curvature is high; ``max / min`` of the curvatures is its condition
    number). A gradient step of rate ``lr`` multiplies coordinate ``j`` by
    ``1 - lr * curvatures[j]``: it converges smoothly for ``lr < 1 / c``,
    oscillates around the minimum for ``1 / c < lr < 2 / c`` and diverges for
    ``lr > 2 / c``. The steepest direction sets the largest usable rate.

    Examples
    --------
    >>> bowl = QuadraticLoss((1.0, 10.0))
    >>> float(bowl.loss([1.0, 1.0])), bowl.gradient([1.0, 1.0]).tolist()
    (5.5, [1.0, 10.0])
    >>> bowl.largest_stable_rate
    0.2
    >>> QuadraticLoss((2.0,)).loss([0.0, 1.0, 3.0]).tolist()   # 1-D: one loss per point
    [0.0, 1.0, 9.0]
    """

    curvatures: tuple[float, ...]

    def __post_init__(self) -> None:
        try:
            values = tuple(float(c) for c in self.curvatures)
        except (TypeError, ValueError):
            values = ()
        if len(values) not in (1, 2) or not all(math.isfinite(c) and c > 0 for c in values):
            raise ValueError(
                f"curvatures: expected one or two positive numbers, got {self.curvatures!r}"
            )
        object.__setattr__(self, "curvatures", values)

    @property
    def dim(self) -> int:
        """Number of weights: 1 or 2."""
        return len(self.curvatures)

    @property
    def largest_stable_rate(self) -> float:
        """``2 / max(curvatures)``: any larger rate makes gradient descent diverge."""
        return 2.0 / max(self.curvatures)

    def loss(self, w: ArrayLike) -> np.ndarray:
        """Loss at ``w`` (shape ``(..., dim)``; in 1-D a number or any array of weights)."""
        w = self._points(w)
        return 0.5 * np.sum(np.asarray(self.curvatures) * w**2, axis=-1)

    def gradient(self, w: ArrayLike) -> np.ndarray:
        """Gradient at ``w``: ``curvatures * w``, same shape as the points."""
        return np.asarray(self.curvatures) * self._points(w)

    def _points(self, w: ArrayLike) -> np.ndarray:
        w = np.asarray(w, dtype=float)
        if self.dim == 1 and (w.ndim == 0 or w.shape[-1] != 1):
            w = w[..., None]
        if w.shape[-1] != self.dim:
            raise ValueError(f"w: expected points with {self.dim} coordinates, got shape {w.shape}")
        return w


@dataclasses.dataclass(frozen=True)
class RosenbrockLoss:
    """The Rosenbrock valley ``L(x, y) = (a - x)**2 + b * (y - x**2)**2``.

    Minimum 0 at ``(a, a**2)``, at the bottom of a narrow curved valley along
    ``y = x**2``. Gradient::

        dL/dx = -2 (a - x) - 4 b x (y - x**2)
        dL/dy =  2 b (y - x**2)

    The Hessian at the minimum is ``[[2 + 8 b a**2, -4 b a], [-4 b a, 2 b]]``; its
    largest eigenvalue (:attr:`max_curvature`) limits the learning rate, its ratio
    to the smallest makes the valley ill-conditioned (about 2500 for ``b = 100``).

    Examples
    --------
    >>> valley = RosenbrockLoss()
    >>> float(valley.loss([1.0, 1.0])), valley.gradient([0.0, 0.0]).tolist()
    (0.0, [-2.0, 0.0])
    >>> valley.minimum.tolist(), round(valley.max_curvature, 1)
    ([1.0, 1.0], 1001.6)
    """

    a: float = 1.0
    b: float = 100.0

    def __post_init__(self) -> None:
        check_scalar(self.a, "a", float, finite=True)
        check_scalar(self.b, "b", float, min_val=0, include_boundaries="neither", finite=True)

    @property
    def minimum(self) -> np.ndarray:
        """``(a, a**2)``, where the loss is 0."""
        return np.array([self.a, self.a * self.a], dtype=float)

    @property
    def hessian_at_minimum(self) -> np.ndarray:
        """``[[2 + 8 b a**2, -4 b a], [-4 b a, 2 b]]``."""
        a, b = self.a, self.b
        return np.array([[2 + 8 * b * a * a, -4 * b * a], [-4 * b * a, 2 * b]])

    @property
    def max_curvature(self) -> float:
        """The largest eigenvalue of the Hessian at the minimum."""
        return float(np.linalg.eigvalsh(self.hessian_at_minimum).max())

    def loss(self, w: ArrayLike) -> np.ndarray:
        """Loss at ``w`` (shape ``(..., 2)``): one value per point."""
        x, y = _coordinates(w)
        return (self.a - x) ** 2 + self.b * (y - x * x) ** 2

    def gradient(self, w: ArrayLike) -> np.ndarray:
        """Gradient at ``w``, same shape as ``w``."""
        a, b = self.a, self.b
        x, y = _coordinates(w)
        return np.stack([-2 * (a - x) - 4 * b * x * (y - x * x), 2 * b * (y - x * x)], axis=-1)


@dataclasses.dataclass(frozen=True)
class Surface:
    """A 2-D loss surface: value, gradient, its minimum and a region to draw.

    ``loss`` maps one point (shape ``(2,)``) to a float, ``gradient`` to an array
    of shape ``(2,)``. ``max_curvature`` is the largest eigenvalue of the Hessian
    at the minimum (``L``); ``1 / L`` is the classic safe learning rate for
    gradient descent. Built by :func:`make_quadratic` and :func:`make_rosenbrock`.

    Examples
    --------
    >>> bowl = make_quadratic(condition=4)
    >>> bowl.loss_gap([[1.0, 1.0], [0.0, 0.0]]).tolist()
    [0.625, 0.0]
    """

    name: str
    loss: Callable[[np.ndarray], float]
    gradient: Callable[[np.ndarray], np.ndarray]
    minimum: np.ndarray
    start: np.ndarray
    max_curvature: float
    xlim: tuple[float, float]
    ylim: tuple[float, float]

    def loss_gap(self, points: ArrayLike) -> np.ndarray:
        """``loss(w) - loss(minimum)`` for every row of ``points`` (shape (n, 2))."""
        points = np.atleast_2d(np.asarray(points, dtype=float))
        best = self.loss(self.minimum)
        return np.array([self.loss(p) - best for p in points])


def make_quadratic(condition: float = 100.0, *, max_curvature: float = 1.0,
                   start: Sequence[float] = (1.0, 1.0)) -> Surface:
    """The elongated bowl ``f(w) = (L / condition * w0**2 + L * w1**2) / 2`` as a :class:`Surface`.

    The :class:`QuadraticLoss` with curvatures ``L / condition`` (the flat
    direction, w0) and ``L = max_curvature`` (the steep one, w1): its Hessian has
    these eigenvalues, so ``condition`` is the condition number.

    Examples
    --------
    >>> q = make_quadratic(100)
    >>> q.loss(np.array([1.0, 1.0]))
    0.505
    >>> q.gradient(np.array([1.0, 1.0])).tolist()
    [0.01, 1.0]
    """
    check_scalar(condition, "condition", float, min_val=1, finite=True)
    check_scalar(max_curvature, "max_curvature", float, min_val=0, include_boundaries="neither",
                 finite=True)
    bowl = QuadraticLoss((max_curvature / condition, max_curvature))
    return Surface(
        name=f"quadratic, condition number {condition:g}",
        loss=lambda w: float(bowl.loss(w)),
        gradient=bowl.gradient,
        minimum=np.zeros(2),
        start=_start_point(start),
        max_curvature=float(max_curvature),
        xlim=(-1.5, 1.5),
        ylim=(-1.5, 1.5),
    )


def make_rosenbrock(a: float = 1.0, b: float = 100.0, *,
                    start: Sequence[float] = (-1.2, 1.0)) -> Surface:
    """The Rosenbrock valley ``(a - x)**2 + b * (y - x**2)**2`` as a :class:`Surface`.

    See :class:`RosenbrockLoss`; the minimum is at ``(a, a**2)``.

    Examples
    --------
    >>> make_rosenbrock().loss(np.array([1.0, 1.0]))
    0.0
    >>> make_rosenbrock().start.tolist()
    [-1.2, 1.0]
    """
    valley = RosenbrockLoss(a, b)
    return Surface(
        name="Rosenbrock valley",
        loss=lambda w: float(valley.loss(w)),
        gradient=valley.gradient,
        minimum=valley.minimum,
        start=_start_point(start),
        max_curvature=valley.max_curvature,
        xlim=(-2.0, 2.0),
        ylim=(-1.0, 3.0),
    )


def _coordinates(w: ArrayLike) -> np.ndarray:
    w = np.asarray(w, dtype=float)
    if w.ndim == 0 or w.shape[-1] != 2:
        raise ValueError(f"w: expected points with 2 coordinates, got shape {w.shape}")
    return np.moveaxis(w, -1, 0)


def _start_point(start: Sequence[float]) -> np.ndarray:
    point = np.asarray(start, dtype=float)
    if point.shape != (2,) or not np.all(np.isfinite(point)):
        raise ValueError(f"start: expected a finite point (w0, w1), got {start!r}")
    return point

