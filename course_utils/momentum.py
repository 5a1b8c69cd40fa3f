"""Lesson 03: momentum and Nesterov acceleration, in NumPy and on the fingers CNN.

The NumPy optimizers here follow Keras' ``keras.optimizers.SGD`` update rules
exactly, so a trajectory drawn on a contour plot is the one Keras would take:

* plain gradient descent: ``w <- w - lr * g``;
* momentum: ``v <- momentum * v - lr * g`` then ``w <- w + v`` (``v`` is the
  velocity, zero at the start);
* Nesterov: the same velocity update, then ``w <- w + momentum * v - lr * g``:
  the step is taken from where the velocity is about to carry the weights.

Where the gradient keeps its sign, momentum's steps grow to ``lr / (1 - momentum)``
times the gradient, its *effective step*. The lesson therefore compares four runs
(:data:`OPTIMIZERS`): plain gradient descent at the lesson's rate, momentum and
Nesterov at that rate, and plain gradient descent at the effective step
(:data:`EFFECTIVE_STEP`), so that what momentum adds beyond a larger rate shows.

Two ill-conditioned surfaces show why momentum helps: an elongated quadratic
(:func:`make_quadratic`, curvatures ``L / condition`` and ``L``) and the
Rosenbrock valley (:func:`make_rosenbrock`). Both are defined, with lesson 01's
bowls, in :mod:`course_utils.surfaces`; they are importable from here too. On the
CNN every run is repeated over seeds (:func:`train_cnn_over_seeds`) and summed up
by its mean and spread (:func:`course_utils.training.final_over_seeds`), and
compared seed by seed (:func:`course_utils.training.paired_change`).

Examples
--------
>>> surface = make_quadratic(condition=100)
>>> gd = optimize(surface, surface.start, learning_rate=1.0, steps=1000)
>>> heavy = optimize(surface, surface.start, learning_rate=1.0, momentum=0.9, steps=1000)
>>> steps_to_tolerance(surface, gd, 1e-6) > 3 * steps_to_tolerance(surface, heavy, 1e-6)
True
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from course_utils import widgets
from course_utils.history import History
from course_utils.runtime.checks import check_choice, check_scalar
from course_utils.surfaces import Surface, make_quadratic, make_rosenbrock

__all__ = [
    "EFFECTIVE_STEP",
    "OPTIMIZERS",
    "Surface",
    "UpdateRule",
    "ZigZag",
    "compare_on_surface",
    "explore_momentum",
    "keras_trajectory",
    "make_quadratic",
    "make_rosenbrock",
    "optimize",
    "overshoot",
    "plot_loss_curves",
    "plot_trajectories",
    "sgd_step",
    "steps_to_tolerance",
    "train_cnn_over_seeds",
    "train_cnn_with",
    "zigzag",
]


class UpdateRule(NamedTuple):
    """How one run of the lesson updates the weights.

    ``momentum`` and ``nesterov`` are Keras' ``SGD`` arguments; the run's learning
    rate is the lesson's rate times ``rate_factor``.
    """

    momentum: float
    nesterov: bool
    rate_factor: float = 1.0


#: The name of plain gradient descent at momentum's effective step ``lr / (1 - 0.9)``.
EFFECTIVE_STEP = "gradient descent at η/(1-β)"

#: The four runs of the lesson, by name. The first three share the learning rate; the
#: last is plain gradient descent with a rate ``1 / (1 - 0.9)`` times larger, the size
#: momentum's steps grow to where the gradient keeps its sign.
OPTIMIZERS: dict[str, UpdateRule] = {
    "gradient descent": UpdateRule(0.0, False),
    "momentum": UpdateRule(0.9, False),
    "Nesterov": UpdateRule(0.9, True),
    EFFECTIVE_STEP: UpdateRule(0.0, False, 1 / (1 - 0.9)),
}

#: One colour per run name in every figure of the lesson (others take the next free one).
COLORS = {name: f"C{i}" for i, name in enumerate(OPTIMIZERS)}


def sgd_step(weights: np.ndarray, velocity: np.ndarray, gradient: np.ndarray, *,
             learning_rate: float, momentum: float = 0.0,
             nesterov: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """One update of Keras' SGD; returns ``(new weights, new velocity)``.

    >>> w, v = sgd_step(np.array([1.0]), np.zeros(1), np.array([2.0]),
    ...                 learning_rate=0.1, momentum=0.9)
    >>> w.tolist(), v.tolist()
    ([0.8], [-0.2])
    >>> w, v = sgd_step(np.array([1.0]), np.zeros(1), np.array([2.0]), learning_rate=0.1,
    ...                 momentum=0.9, nesterov=True)
    >>> np.round(w, 12).tolist(), v.tolist()   # 1 + 0.9 * (-0.2) - 0.1 * 2
    ([0.62], [-0.2])
    """
    _check_rates(learning_rate, momentum)
    weights = np.asarray(weights, dtype=float)
    gradient = np.asarray(gradient, dtype=float)
    if momentum == 0.0:
        return weights - learning_rate * gradient, np.zeros_like(weights)
    velocity = momentum * np.asarray(velocity, dtype=float) - learning_rate * gradient
    if nesterov:
        return weights + momentum * velocity - learning_rate * gradient, velocity
    return weights + velocity, velocity


def optimize(surface: Surface, start: Sequence[float], *, learning_rate: float,
             momentum: float = 0.0, nesterov: bool = False, steps: int = 100) -> np.ndarray:
    """The trajectory of ``steps`` SGD updates from ``start``: shape ``(steps + 1, 2)``.

    Row 0 is the starting point. A trajectory that overflows stops growing:
    the remaining rows repeat the last finite point's ``inf``/``nan``.

    >>> optimize(make_quadratic(), (1.0, 1.0), learning_rate=1.0, steps=2).shape
    (3, 2)
    """
    steps = check_scalar(steps, "steps", int, min_val=0)
    _check_rates(learning_rate, momentum)
    w = np.asarray(start, dtype=float).copy()
    v = np.zeros_like(w)
    path = np.empty((steps + 1, w.size))
    path[0] = w
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(1, steps + 1):
            w, v = sgd_step(w, v, surface.gradient(w), learning_rate=learning_rate,
                            momentum=momentum, nesterov=nesterov)
            path[t] = w
    return path


def keras_trajectory(surface: Surface, start: Sequence[float], *, learning_rate: float,
                     momentum: float = 0.0, nesterov: bool = False,
                     steps: int = 50) -> np.ndarray:
    """The same trajectory taken by ``keras.optimizers.SGD`` (float64), for comparison.

    >>> q = make_quadratic()
    >>> a = keras_trajectory(q, q.start, learning_rate=0.5, momentum=0.9, steps=5)
    >>> b = optimize(q, q.start, learning_rate=0.5, momentum=0.9, steps=5)
    >>> bool(np.allclose(a, b))
    True
    """
    from course_utils.runtime.tf_setup import import_keras, import_tensorflow

    tf = import_tensorflow()
    keras = import_keras()
    w = keras.Variable(np.asarray(start, dtype="float64"), dtype="float64")
    opt = keras.optimizers.SGD(learning_rate=learning_rate, momentum=momentum,
                               nesterov=nesterov)
    path = [w.numpy().copy()]
    for _ in range(steps):
        grad = tf.constant(surface.gradient(w.numpy()), dtype=tf.float64)
        opt.apply_gradients([(grad, w)])
        path.append(w.numpy().copy())
    return np.array(path)


def steps_to_tolerance(surface: Surface, trajectory: np.ndarray, tolerance: float) -> int | None:
    """First step at which ``loss - min loss <= tolerance`` (0 = the start), or None.

    >>> q = make_quadratic()
    >>> steps_to_tolerance(q, np.array([[1.0, 1.0], [0.0, 0.0]]), 1e-6)
    1
    """
    tolerance = check_scalar(tolerance, "tolerance", float, min_val=0,
                             include_boundaries="neither", finite=True)
    with np.errstate(over="ignore", invalid="ignore"):
        gaps = surface.loss_gap(trajectory)
    hits = np.flatnonzero(gaps <= tolerance)
    return int(hits[0]) if hits.size else None


def overshoot(surface: Surface, trajectory: np.ndarray) -> float:
    """How far the trajectory runs past the minimum, along the line from the start.

    The distance of each point beyond the minimum, measured on the unit vector
    pointing from the start to the minimum; the largest such distance (0 when the
    trajectory never crosses, ``inf`` when it diverged).

    >>> q = make_quadratic()
    >>> overshoot(q, np.array([[1.0, 1.0], [-0.5, -0.5], [0.0, 0.0]]))
    0.7071
    """
    trajectory = np.asarray(trajectory, dtype=float)
    direction = surface.minimum - trajectory[0]
    norm = np.linalg.norm(direction)
    if norm == 0:
        raise ValueError("trajectory: expected a start away from the minimum, got a start at "
                         "the minimum (nothing to overshoot)")
    if not np.all(np.isfinite(trajectory)):
        return float("inf")
    past = (trajectory - surface.minimum) @ (direction / norm)
    return round(float(max(past.max(), 0.0)), 4)


class ZigZag(NamedTuple):
    """How much a trajectory swings across a valley (see :func:`zigzag`)."""

    crossings: int      # times it crossed the valley floor
    travelled: float    # distance moved across the valley / the distance straight down


def zigzag(surface: Surface, trajectory: np.ndarray, *, axis: int = 1) -> ZigZag:
    """How much ``trajectory`` zig-zags along coordinate ``axis``, the steep one.

    ``crossings`` counts the steps after which the coordinate is on the other side
    of the minimum's; ``travelled`` adds up how far it moved along that coordinate,
    in units of its starting distance from the minimum: 1 for a path that goes
    straight down to the valley floor and stays there, more for one that swings
    back and forth. On :func:`make_quadratic`'s bowl the steep coordinate is
    ``w1`` (``axis=1``). A diverged trajectory gives ``inf``.

    >>> q = make_quadratic()
    >>> zigzag(q, np.array([[1.0, 1.0], [0.9, -0.5], [0.8, 0.25], [0.7, 0.0]]))
    ZigZag(crossings=2, travelled=2.5)
    """
    axis = check_choice(axis, "axis", (0, 1))
    trajectory = np.asarray(trajectory, dtype=float)
    offset = trajectory[:, axis] - surface.minimum[axis]
    if offset[0] == 0:
        raise ValueError(f"trajectory: expected a start away from the minimum along axis {axis}, "
                         f"got {trajectory[0].tolist()}")
    if not np.all(np.isfinite(offset)):
        return ZigZag(int(np.sum(np.diff(np.sign(offset[np.isfinite(offset)])) != 0)),
                      float("inf"))
    signs = np.sign(offset)
    crossings = int(np.sum(signs[1:] * signs[:-1] < 0))
    travelled = float(np.abs(np.diff(offset)).sum() / abs(offset[0]))
    return ZigZag(crossings, round(travelled, 4))


def compare_on_surface(surface: Surface, *, learning_rate: float, steps: int,
                       tolerance: float = 1e-6,
                       optimizers: Mapping[str, UpdateRule] = OPTIMIZERS,
                       ) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
    """Run every optimizer from ``surface.start``; return trajectories and a table.

    Each run uses ``learning_rate`` times its rule's ``rate_factor``. Each table row:
    ``optimizer``, ``learning rate``, ``steps to tolerance`` (None: not reached),
    ``overshoot``, ``final loss gap`` and ``diverged`` (the loss ended above where it
    started, or overflowed).

    >>> paths, rows = compare_on_surface(make_quadratic(), learning_rate=1.0, steps=600)
    >>> [(r["optimizer"], r["steps to tolerance"], r["diverged"]) for r in rows]
    ... # doctest: +NORMALIZE_WHITESPACE
    [('gradient descent', 424, False), ('momentum', 100, False), ('Nesterov', 24, False),
     ('gradient descent at η/(1-β)', None, True)]
    """
    if not optimizers:
        raise ValueError("optimizers: expected at least one {name: UpdateRule}, got none")
    paths, rows = {}, []
    for name, rule in optimizers.items():
        beta, nesterov, factor = UpdateRule(*rule)
        rate = learning_rate * factor
        path = optimize(surface, surface.start, learning_rate=rate, momentum=beta,
                        nesterov=nesterov, steps=steps)
        paths[name] = path
        with np.errstate(over="ignore", invalid="ignore"):
            gaps = surface.loss_gap(path[[0, -1]])
        rows.append({"optimizer": name,
                     "learning rate": rate,
                     "steps to tolerance": steps_to_tolerance(surface, path, tolerance),
                     "overshoot": overshoot(surface, path),
                     "final loss gap": float(gaps[1]),
                     "diverged": bool(not np.isfinite(gaps[1]) or gaps[1] > gaps[0])})
    return paths, rows


# --------------------------------------------------------------------------- figures


def plot_trajectories(surface: Surface, trajectories: Mapping[str, np.ndarray], *,
                      title: str = "", separate: bool = False,
                      xlim: tuple[float, float] | None = None,
                      ylim: tuple[float, float] | None = None) -> Any:
    """Contour plot of ``surface`` with each trajectory drawn on it; returns the Figure.

    ``separate=True`` gives each trajectory its own panel, side by side, with the same
    axes. ``xlim`` and ``ylim`` zoom in (default: the surface's region). A trajectory
    that diverges is drawn until it runs off the edge.

    >>> q = make_quadratic()
    >>> paths, _ = compare_on_surface(q, learning_rate=1.0, steps=20)
    >>> [len(ax.lines) for ax in plot_trajectories(q, paths, separate=True).axes]
    [2, 2, 2, 2]
    """
    from matplotlib.figure import Figure

    if not trajectories:
        raise ValueError("trajectories: expected at least one {name: path}, got none")
    xlim, ylim = xlim or surface.xlim, ylim or surface.ylim
    xs = np.linspace(*xlim, 200)
    ys = np.linspace(*ylim, 200)
    grid = np.array([[surface.loss(np.array([x, y])) for x in xs] for y in ys])
    grid = grid - surface.loss(surface.minimum)
    levels = np.geomspace(max(grid.min(), 1e-4) + 1e-4, grid.max(), 14)
    from course_utils.plots import colors_for

    colors = colors_for(trajectories, COLORS)
    groups = [{name: path} for name, path in trajectories.items()] if separate else [
        dict(trajectories)]
    fig = Figure(figsize=(3.3 * len(groups), 3.5) if separate else (6.4, 4.8),
                 layout="constrained")
    axes = fig.subplots(1, len(groups), sharex=True, sharey=True, squeeze=False)[0]
    for ax, group in zip(axes, groups, strict=True):
        ax.contour(xs, ys, grid, levels=levels, colors="0.75", linewidths=0.8)
        for name, path in group.items():
            shown = _until_it_leaves(np.asarray(path, dtype=float), xlim, ylim)
            ax.plot(shown[:, 0], shown[:, 1], "-o", color=colors[name], markersize=2.5,
                    linewidth=1.2, label=name)
        ax.plot(*surface.minimum, "k*", markersize=12, label="minimum")
        ax.set(xlim=xlim, ylim=ylim, xlabel="$w_0$")
        if separate:
            ax.set_title(next(iter(group)), color=colors[next(iter(group))], fontsize="medium")
    axes[0].set_ylabel("$w_1$")
    if separate:
        fig.suptitle(title or surface.name)
    else:
        axes[0].set_title(title or surface.name)
        axes[0].legend(loc="upper right", fontsize="small")
    return fig


def _until_it_leaves(path: np.ndarray, xlim: tuple[float, float],
                     ylim: tuple[float, float]) -> np.ndarray:
    """The points of ``path`` to draw: all of them, unless it ends far outside the region
    or overflows (it diverged); then those up to its first point outside the region."""
    (x0, x1), (y0, y1) = xlim, ylim
    mx, my = x1 - x0, y1 - y0
    with np.errstate(invalid="ignore"):
        outside = ~((x0 <= path[:, 0]) & (path[:, 0] <= x1)
                    & (y0 <= path[:, 1]) & (path[:, 1] <= y1))
        end = path[-1]
        stays = bool(np.all(np.isfinite(end)) and x0 - mx <= end[0] <= x1 + mx
                     and y0 - my <= end[1] <= y1 + my)
    if stays or not outside.any():
        return path
    return path[:int(np.flatnonzero(outside)[0]) + 1]


def plot_loss_curves(surface: Surface, trajectories: Mapping[str, np.ndarray], *,
                     tolerance: float | None = None, title: str = "") -> Any:
    """``loss - min loss`` against the step, log scale, one line per trajectory.

    The axis runs from ``1e-16`` (about the rounding error of a loss of 1) to ten
    times the highest starting loss: a run that gets closer leaves through the bottom,
    one that diverges through the top; a loss exactly at the minimum is not drawn.
    """
    from matplotlib.figure import Figure

    if not trajectories:
        raise ValueError("trajectories: expected at least one {name: path}, got none")
    fig = Figure(figsize=(6.4, 3.6), layout="constrained")
    ax = fig.add_subplot()
    from course_utils.plots import colors_for

    colors = colors_for(trajectories, COLORS)
    curves = {}
    for name, path in trajectories.items():
        with np.errstate(over="ignore", invalid="ignore"):
            curves[name] = surface.loss_gap(path)
    top = 10 * max(float(gaps[0]) for gaps in curves.values())
    for name, gaps in curves.items():  # far outside the axis is left out: it only leaves
        drawn = np.where((gaps > 1e-20) & (gaps < 1e6 * top), gaps, np.nan)
        ax.semilogy(np.arange(len(gaps)), drawn, color=colors[name], label=name)
    if tolerance is not None:
        ax.axhline(tolerance, color="k", linestyle=":", linewidth=1, label="tolerance")
    ax.set_ylim(1e-16, top)
    ax.set(xlabel="step", ylabel="loss - minimum (log scale)", title=title or surface.name)
    ax.legend(fontsize="small")
    return fig


def explore_momentum(surface: Surface, *, steps: int = 60, display: bool = True,
                     ) -> widgets.Explorer:
    """Sliders for the learning rate and the momentum over the lesson's four runs.

    The momentum slider sets every momentum run's ``momentum`` and the effective step
    ``learning rate / (1 - momentum)`` of :data:`EFFECTIVE_STEP`'s run.
    """
    safe = 1.0 / surface.max_curvature

    def draw(learning_rate: float, momentum: float) -> Any:
        rules = {name: UpdateRule(momentum if rule.momentum else 0.0, rule.nesterov,
                                  1 / (1 - momentum) if name == EFFECTIVE_STEP else 1.0)
                 for name, rule in OPTIMIZERS.items()}
        paths, _ = compare_on_surface(surface, learning_rate=learning_rate, steps=steps,
                                      optimizers=rules)
        return plot_trajectories(surface, paths, title=(
            f"{surface.name}: lr {learning_rate:.3g}, momentum {momentum:.2f}, {steps} steps"))

    return widgets.explore(draw, {
        "learning_rate": widgets.Slider(safe / 20, 1.9 * safe, safe / 20, safe,
                                        description="learning rate"),
        "momentum": widgets.Slider(0.0, 0.99, 0.01, 0.9, description="momentum"),
    }, display=display)


# --------------------------------------------------------------------------- the CNN


def train_cnn_with(splits: Any, *, momentum: float, nesterov: bool, learning_rate: float,
                   epochs: int, batch_size: int, seed: int = 0, width: int = 16) -> History:
    """Train the fingers CNN with ``keras.optimizers.SGD``; return its history.

    ``splits`` holds uint8 images and labels as ``x_train, y_train, x_val, y_val``
    (what :func:`course_utils.fingers.load_fingers` returns). The same seed gives the
    same initial weights and the same batches whatever the optimizer, so runs differ
    only by the update rule (:func:`course_utils.training.fit_model` trains).
    ``width`` is the filters of the first convolution block: 16 is the reference CNN,
    smaller is a faster CNN of the same shape (:func:`course_utils.models.build_fingers_cnn`).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> from course_utils import fingers
    >>> x, y = fingers.make_fingers(24, image_size=16, seed=0)
    >>> splits = SimpleNamespace(x_train=x, y_train=y, x_val=x, y_val=y)
    >>> history = train_cnn_with(splits, momentum=0.9, nesterov=True, learning_rate=0.01,
    ...                          epochs=2, batch_size=8)
    >>> history.epochs, len(history["val_loss"])
    ([1, 2], 2)
    """
    from course_utils import datasets, labels, models
    from course_utils.runtime.tf_setup import import_keras
    from course_utils.training import fit_model

    _check_rates(learning_rate, momentum)
    keras = import_keras()
    shape = splits.x_train.shape[1:] + (1,)
    val = datasets.make_dataset(splits.x_val, splits.y_val, batch_size=batch_size,
                                training=False)
    return fit_model(
        lambda: models.build_fingers_cnn(shape, labels.NUM_CLASSES, width=width, seed=seed),
        lambda: datasets.make_dataset(splits.x_train, splits.y_train, batch_size=batch_size,
                                      training=True, seed=seed),  # shuffled: made once seeded
        val, epochs=epochs, seed=seed, optimizer=keras.optimizers.SGD(
            learning_rate=learning_rate, momentum=momentum, nesterov=nesterov))


def train_cnn_over_seeds(splits: Any, *, learning_rate: float, epochs: int, batch_size: int,
                         seeds: Iterable[int], width: int = 16,
                         optimizers: Mapping[str, UpdateRule] = OPTIMIZERS,
                         ) -> dict[str, dict[int, History]]:
    """Every optimizer trained once per seed: ``{name: {seed: history}}``.

    Each run is :func:`train_cnn_with` at ``learning_rate`` times its rule's
    ``rate_factor``. For one seed every optimizer starts from the same weights and
    sees the same batches, so runs of one seed differ only by the update rule, and
    the seeds show how much a result moves by chance
    (:func:`course_utils.training.repeat_over_seeds` repeats).

    >>> from types import SimpleNamespace
    >>> from course_utils import fingers
    >>> x, y = fingers.make_fingers(24, image_size=16, seed=0)
    >>> splits = SimpleNamespace(x_train=x, y_train=y, x_val=x, y_val=y)
    >>> runs = train_cnn_over_seeds(splits, learning_rate=0.01, epochs=1, batch_size=8,
    ...                             seeds=[0, 1], width=4,
    ...                             optimizers={"momentum": OPTIMIZERS["momentum"]})
    >>> {name: sorted(by_seed) for name, by_seed in runs.items()}
    {'momentum': [0, 1]}
    """
    from course_utils.training import repeat_over_seeds

    seeds = list(seeds)
    if not optimizers:
        raise ValueError("optimizers: expected at least one {name: UpdateRule}, got none")
    runs = {}
    for name, rule in optimizers.items():
        beta, nesterov, factor = UpdateRule(*rule)
        runs[name] = repeat_over_seeds(
            lambda seed, beta=beta, nesterov=nesterov, factor=factor: train_cnn_with(
                splits, momentum=beta, nesterov=nesterov, learning_rate=learning_rate * factor,
                epochs=epochs, batch_size=batch_size, seed=seed, width=width),
            seeds)
    return runs


def _check_rates(learning_rate: float, momentum: float) -> None:
    check_scalar(learning_rate, "learning_rate", float, min_val=0,
                 include_boundaries="right", finite=True)
    check_scalar(momentum, "momentum", float, min_val=0, max_val=1, include_boundaries="left")
