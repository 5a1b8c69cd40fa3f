"""Lesson 03: momentum and Nesterov acceleration, in NumPy and on the fingers CNN.

The NumPy optimizers here follow Keras' ``keras.optimizers.SGD`` update rules
exactly, so a trajectory drawn on a contour plot is the one Keras would take:

* plain gradient descent: ``w <- w - lr * g``;
* momentum: ``v <- momentum * v - lr * g`` then ``w <- w + v`` (``v`` is the
  velocity, zero at the start);
* Nesterov: the same velocity update, then ``w <- w + momentum * v - lr * g``:
  the step is taken from where the velocity is about to carry the weights.

Two ill-conditioned surfaces show why momentum helps: an elongated quadratic
(:func:`make_quadratic`, curvatures ``L / condition`` and ``L``) and the
Rosenbrock valley (:func:`make_rosenbrock`). Both are defined, with lesson 01's
bowls, in :mod:`course_utils.surfaces`; they are importable from here too.

Examples
--------
>>> surface = make_quadratic(condition=100)
>>> gd = optimize(surface, surface.start, learning_rate=1.0, steps=1000)
>>> heavy = optimize(surface, surface.start, learning_rate=1.0, momentum=0.9, steps=1000)
>>> steps_to_tolerance(surface, gd, 1e-6) > 3 * steps_to_tolerance(surface, heavy, 1e-6)
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from course_utils import widgets
from course_utils.surfaces import Surface, make_quadratic, make_rosenbrock

__all__ = [
    "OPTIMIZERS",
    "Surface",
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
    "train_cnn_with",
]

#: The three optimizers of the lesson: name -> (momentum, nesterov).
OPTIMIZERS: dict[str, tuple[float, bool]] = {
    "gradient descent": (0.0, False),
    "momentum": (0.9, False),
    "Nesterov": (0.9, True),
}


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
    if steps < 0:
        raise ValueError(f"steps: expected an integer >= 0, got {steps!r}")
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
    from course_utils.tf_setup import import_keras, import_tensorflow

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
    if tolerance <= 0:
        raise ValueError(f"tolerance: expected a positive number, got {tolerance!r}")
    gaps = surface.loss_gap(trajectory)
    hits = np.flatnonzero(gaps <= tolerance)
    return int(hits[0]) if hits.size else None


def overshoot(surface: Surface, trajectory: np.ndarray) -> float:
    """How far the trajectory runs past the minimum, along the line from the start.

    The distance of each point beyond the minimum, measured on the unit vector
    pointing from the start to the minimum; the largest such distance (0 when the
    trajectory never crosses).

    >>> q = make_quadratic()
    >>> overshoot(q, np.array([[1.0, 1.0], [-0.5, -0.5], [0.0, 0.0]]))
    0.7071
    """
    trajectory = np.asarray(trajectory, dtype=float)
    direction = surface.minimum - trajectory[0]
    norm = np.linalg.norm(direction)
    if norm == 0:
        raise ValueError("the trajectory starts at the minimum: nothing to overshoot")
    past = (trajectory - surface.minimum) @ (direction / norm)
    return round(float(max(past.max(), 0.0)), 4)


def compare_on_surface(surface: Surface, *, learning_rate: float, steps: int,
                       tolerance: float = 1e-6,
                       optimizers: Mapping[str, tuple[float, bool]] = OPTIMIZERS,
                       ) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
    """Run every optimizer from ``surface.start``; return trajectories and a table.

    Each table row: ``optimizer``, ``steps to tolerance`` (None: not reached),
    ``overshoot`` and ``final loss gap``.
    """
    paths, rows = {}, []
    for name, (beta, nesterov) in optimizers.items():
        path = optimize(surface, surface.start, learning_rate=learning_rate, momentum=beta,
                        nesterov=nesterov, steps=steps)
        paths[name] = path
        rows.append({"optimizer": name,
                     "steps to tolerance": steps_to_tolerance(surface, path, tolerance),
                     "overshoot": overshoot(surface, path),
                     "final loss gap": float(surface.loss_gap(path[-1:])[0])})
    return paths, rows


# --------------------------------------------------------------------------- figures


def plot_trajectories(surface: Surface, trajectories: Mapping[str, np.ndarray], *,
                      title: str = "") -> Any:
    """Contour plot of ``surface`` with each trajectory drawn on it; returns the Figure."""
    from matplotlib.figure import Figure

    if not trajectories:
        raise ValueError("trajectories: expected at least one {name: path}, got none")
    xs = np.linspace(*surface.xlim, 200)
    ys = np.linspace(*surface.ylim, 200)
    grid = np.array([[surface.loss(np.array([x, y])) for x in xs] for y in ys])
    grid = grid - surface.loss(surface.minimum)
    fig = Figure(figsize=(6.4, 4.8), layout="constrained")
    ax = fig.add_subplot()
    levels = np.geomspace(max(grid.min(), 1e-4) + 1e-4, grid.max(), 14)
    ax.contour(xs, ys, grid, levels=levels, colors="0.75", linewidths=0.8)
    for i, (name, path) in enumerate(trajectories.items()):
        finite = np.asarray(path)[np.all(np.isfinite(path), axis=1)]
        ax.plot(finite[:, 0], finite[:, 1], "-o", color=f"C{i}", markersize=2.5,
                linewidth=1.2, label=name)
    ax.plot(*surface.minimum, "k*", markersize=12, label="minimum")
    ax.set(xlim=surface.xlim, ylim=surface.ylim, xlabel="$w_0$", ylabel="$w_1$",
           title=title or surface.name)
    ax.legend(loc="upper right", fontsize="small")
    return fig


def plot_loss_curves(surface: Surface, trajectories: Mapping[str, np.ndarray], *,
                     tolerance: float | None = None) -> Any:
    """``loss - min loss`` against the step, log scale, one line per trajectory."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 3.6), layout="constrained")
    ax = fig.add_subplot()
    for i, (name, path) in enumerate(trajectories.items()):
        gaps = surface.loss_gap(path)
        ax.semilogy(np.arange(len(gaps)), np.maximum(gaps, 1e-16), color=f"C{i}", label=name)
    if tolerance is not None:
        ax.axhline(tolerance, color="k", linestyle=":", linewidth=1, label="tolerance")
    ax.set(xlabel="step", ylabel="loss - minimum", title=surface.name)
    ax.legend(fontsize="small")
    return fig


def explore_momentum(surface: Surface, *, steps: int = 60, display: bool = True,
                     ) -> widgets.Explorer:
    """Sliders for the learning rate and the momentum over the three trajectories."""
    safe = 1.0 / surface.max_curvature

    def draw(learning_rate: float, momentum: float) -> Any:
        paths = {name: optimize(surface, surface.start, learning_rate=learning_rate,
                                momentum=momentum if beta else 0.0, nesterov=nesterov,
                                steps=steps)
                 for name, (beta, nesterov) in OPTIMIZERS.items()}
        return plot_trajectories(surface, paths, title=(
            f"{surface.name}: lr {learning_rate:.3g}, momentum {momentum:.2f}, {steps} steps"))

    return widgets.explore(draw, {
        "learning_rate": widgets.Slider(safe / 20, 1.9 * safe, safe / 20, safe,
                                        description="learning rate"),
        "momentum": widgets.Slider(0.0, 0.99, 0.01, 0.9, description="momentum"),
    }, display=display)


# --------------------------------------------------------------------------- the CNN


def train_cnn_with(splits: Any, *, momentum: float, nesterov: bool, learning_rate: float,
                   epochs: int, batch_size: int, seed: int = 0) -> dict[str, list[float]]:
    """Train the reference CNN with ``keras.optimizers.SGD``; return its history dict.

    The same seed gives the same initial weights and the same batches whatever
    the optimizer, so runs differ only by the update rule.
    """
    from course_utils import datasets, labels, models
    from course_utils.tf_setup import import_keras, set_seed

    keras = import_keras()
    set_seed(seed)
    model = models.build_fingers_cnn(splits.x_train.shape[1:] + (1,), labels.NUM_CLASSES,
                                     seed=seed)
    models.compile_classifier(model, optimizer=keras.optimizers.SGD(
        learning_rate=learning_rate, momentum=momentum, nesterov=nesterov))
    train = datasets.make_dataset(splits.x_train, splits.y_train, batch_size=batch_size,
                                  training=True, seed=seed)
    val = datasets.make_dataset(splits.x_val, splits.y_val, batch_size=batch_size,
                                training=False)
    history = model.fit(train, validation_data=val, epochs=epochs, shuffle=False, verbose=0)
    return {k: [float(v) for v in vals] for k, vals in history.history.items()}


def _check_rates(learning_rate: float, momentum: float) -> None:
    if not learning_rate > 0:
        raise ValueError(f"learning_rate: expected a positive number, got {learning_rate!r}")
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum: expected a number in [0, 1), got {momentum!r}")
