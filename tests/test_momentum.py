"""course_utils.momentum: Keras' SGD rules in NumPy, the figures, the seed summaries and the
surface claims of lesson 03.

The surfaces the lesson draws on (``momentum.make_quadratic``, ``momentum.make_rosenbrock``)
are defined in course_utils.surfaces and tested in ``test_surfaces.py``.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from course_utils import fingers, momentum

# --------------------------------------------------------------------------- update rules


# Keras keeps the rate and the momentum in float32: on the Rosenbrock valley a momentum
# of 0.99 amplifies that rounding past 1e-6 within 50 steps, so it is checked on the bowl.
@pytest.mark.parametrize(("make", "beta", "nesterov"), [
    *[(make, beta, nesterov) for make in (momentum.make_quadratic, momentum.make_rosenbrock)
      for beta, nesterov in ((0.0, False), (0.9, False), (0.9, True), (0.5, True))],
    (momentum.make_quadratic, 0.99, False), (momentum.make_quadratic, 0.99, True),
])
def test_numpy_trajectories_match_keras_sgd_over_50_steps(make, beta, nesterov):
    surface = make()
    rate = 0.5 / surface.max_curvature
    ours = momentum.optimize(surface, surface.start, learning_rate=rate, momentum=beta,
                             nesterov=nesterov, steps=50)
    keras = momentum.keras_trajectory(surface, surface.start, learning_rate=rate,
                                      momentum=beta, nesterov=nesterov, steps=50)
    assert ours.shape == keras.shape == (51, 2)
    np.testing.assert_allclose(ours, keras, rtol=0, atol=1e-6)


def test_one_step_by_hand():
    w, v = momentum.sgd_step(np.array([1.0]), np.array([-0.1]), np.array([2.0]),
                             learning_rate=0.1, momentum=0.9)
    assert v.tolist() == pytest.approx([-0.29]) and w.tolist() == pytest.approx([0.71])
    w, v = momentum.sgd_step(np.array([1.0]), np.array([-0.1]), np.array([2.0]),
                             learning_rate=0.1, momentum=0.9, nesterov=True)
    assert w.tolist() == pytest.approx([1.0 + 0.9 * -0.29 - 0.2])
    w, v = momentum.sgd_step(np.array([1.0]), np.array([5.0]), np.array([2.0]),
                             learning_rate=0.1)
    assert w.tolist() == pytest.approx([0.8]) and v.tolist() == [0.0]


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"learning_rate": 0.0}, "learning_rate: expected a finite number > 0, got 0.0"),
    ({"learning_rate": -1.0}, "learning_rate: expected a finite number > 0, got -1.0"),
    ({"learning_rate": 0.1, "momentum": 1.0}, r"momentum: expected a number >= 0 and < 1, got 1.0"),
    ({"learning_rate": 0.1, "momentum": -0.1}, r"momentum: expected a number >= 0 and < 1"),
])
def test_bad_rates_are_refused_by_name(kwargs, match):
    with pytest.raises(ValueError, match=match):
        momentum.sgd_step(np.zeros(2), np.zeros(2), np.ones(2), **kwargs)


def test_steps_to_tolerance_and_overshoot_on_hand_made_paths():
    q = momentum.make_quadratic(1)
    path = np.array([[1.0, 1.0], [0.01, 0.0], [0.5, 0.5], [0.0, 0.0]])
    assert momentum.steps_to_tolerance(q, path, 1e-3) == 1  # first, not last, crossing
    assert momentum.steps_to_tolerance(q, path[[0, 2]], 1e-3) is None
    assert momentum.overshoot(q, np.array([[1.0, 0.0], [-0.3, 0.0], [0.1, 0.0]])) == 0.3
    assert momentum.overshoot(q, np.array([[1.0, 0.0], [0.5, 0.0]])) == 0.0
    with pytest.raises(ValueError, match="tolerance: expected a finite number > 0, got 0"):
        momentum.steps_to_tolerance(q, path, 0)
    with pytest.raises(ValueError, match="steps: expected a whole number >= 0, got -1"):
        momentum.optimize(q, q.start, learning_rate=0.1, steps=-1)
    with pytest.raises(ValueError, match="start away from the minimum"):
        momentum.overshoot(q, np.zeros((2, 2)))


def test_figures_and_the_explorer_draw_every_trajectory():
    q = momentum.make_quadratic()
    paths, rows = momentum.compare_on_surface(q, learning_rate=1.0, steps=50)
    fig = momentum.plot_trajectories(q, paths)
    assert len(fig.axes[0].lines) == len(momentum.OPTIMIZERS) + 1  # + the minimum
    lines = momentum.plot_loss_curves(q, paths, tolerance=1e-6).axes[0].lines
    assert len(lines) == len(momentum.OPTIMIZERS) + 1                # + the tolerance
    view = momentum.explore_momentum(q, steps=20, display=False)
    assert view.widget is None and len(view.static.axes[0].lines) == len(momentum.OPTIMIZERS) + 1
    assert [r["optimizer"] for r in rows] == list(momentum.OPTIMIZERS)
    with pytest.raises(ValueError, match="at least one"):
        momentum.plot_trajectories(q, {})
    with pytest.raises(ValueError, match="at least one"):
        momentum.plot_loss_curves(q, {})


def test_a_run_keeps_its_colour_and_name_in_every_figure():
    q = momentum.make_quadratic()
    paths, _ = momentum.compare_on_surface(q, learning_rate=1.0, steps=20)
    reordered = dict(reversed(list(paths.items())))
    for fig in (momentum.plot_trajectories(q, reordered),
                momentum.plot_loss_curves(q, reordered)):
        colours = {line.get_label(): line.get_color() for line in fig.axes[0].lines}
        assert all(colours[name] == momentum.COLORS[name] for name in paths), colours
    panels = momentum.plot_trajectories(q, paths, separate=True, xlim=(-0.1, 1.1))
    assert [ax.get_title() for ax in panels.axes] == list(paths)
    assert all(ax.get_xlim() == (-0.1, 1.1) for ax in panels.axes)   # shared, zoomed
    other = momentum.plot_trajectories(q, {"mine": paths["momentum"]})
    assert other.axes[0].lines[0].get_color() == "C0"   # a new name takes a free colour


def test_a_diverging_trajectory_is_drawn_until_it_leaves_and_not_beyond():
    q = momentum.make_quadratic()
    paths, rows = momentum.compare_on_surface(q, learning_rate=1.0, steps=600)
    effective = paths[momentum.EFFECTIVE_STEP]
    assert not np.all(np.isfinite(effective))  # it overflowed
    line = momentum.plot_trajectories(q, paths).axes[0].lines[-2]  # the last run's line
    assert line.get_label() == momentum.EFFECTIVE_STEP and len(line.get_xdata()) == 2
    curve = momentum.plot_loss_curves(q, paths).axes[0].lines[-1]
    assert np.isnan(curve.get_ydata()[10:]).all()  # far above the axis: not drawn
    assert momentum.overshoot(q, effective) == float("inf")
    assert momentum.zigzag(q, effective).travelled == float("inf")


def test_the_effective_step_run_is_plain_descent_at_lr_over_one_minus_beta():
    rule = momentum.OPTIMIZERS[momentum.EFFECTIVE_STEP]
    beta = momentum.OPTIMIZERS["momentum"].momentum
    assert rule.momentum == 0 and rule.rate_factor == pytest.approx(1 / (1 - beta))
    q = momentum.make_quadratic()
    paths, rows = momentum.compare_on_surface(q, learning_rate=0.05, steps=30)
    plain = momentum.optimize(q, q.start, learning_rate=0.05 / (1 - beta), steps=30)
    np.testing.assert_array_equal(paths[momentum.EFFECTIVE_STEP], plain)
    assert rows[-1]["learning rate"] == pytest.approx(0.5) and not rows[-1]["diverged"]
    with pytest.raises(ValueError, match="optimizers"):
        momentum.compare_on_surface(q, learning_rate=0.1, steps=3, optimizers={})


def test_zigzag_counts_crossings_and_distance_across_the_valley():
    q = momentum.make_quadratic()
    straight = np.array([[1.0, 1.0], [0.9, 0.5], [0.8, 0.0], [0.7, 0.0]])
    assert momentum.zigzag(q, straight) == (0, 1.0)
    bouncing = np.array([[1.0, 1.0], [0.9, -0.8], [0.8, 0.6], [0.7, -0.1]])
    assert momentum.zigzag(q, bouncing) == (3, 3.9)
    assert momentum.zigzag(q, bouncing, axis=0) == (0, 0.3)
    # gradient descent at 1.9 / L flips the steep coordinate every step: w1 <- -0.9 * w1
    path = momentum.optimize(q, q.start, learning_rate=1.9, steps=40)
    assert momentum.zigzag(q, path) == (40, pytest.approx(1.9 * (1 - 0.9**40) / 0.1, abs=1e-3))
    with pytest.raises(ValueError, match="axis: expected one of 0, 1, got 2"):
        momentum.zigzag(q, straight, axis=2)
    with pytest.raises(ValueError, match="start away from the minimum"):
        momentum.zigzag(q, np.zeros((3, 2)))


# --------------------------------------------------------------------------- the claims


def test_claim_momentum_reaches_the_tolerance_at_least_3x_sooner_on_condition_100():
    bowl = momentum.make_quadratic(condition=100)
    rate = 1 / bowl.max_curvature
    _, rows = momentum.compare_on_surface(bowl, learning_rate=rate, steps=2000, tolerance=1e-6)
    steps = {r["optimizer"]: r["steps to tolerance"] for r in rows}
    print(f"\nsteps to 1e-6 at lr 1/L: {steps}")
    assert steps["gradient descent"] >= 3 * steps["momentum"]      # 424 vs 100 measured


def test_claim_nesterov_overshoots_less_than_classical_momentum():
    bowl = momentum.make_quadratic(condition=100)
    _, rows = momentum.compare_on_surface(bowl, learning_rate=1.0, steps=600)
    over = {r["optimizer"]: r["overshoot"] for r in rows}
    print(f"\novershoot past the minimum: {over}")
    assert 0 < over["Nesterov"] < over["momentum"]                  # 0.085 vs 0.246 measured
    assert over["gradient descent"] == 0.0


def test_claim_on_rosenbrock_momentum_arrives_where_gradient_descent_crawls():
    valley = momentum.make_rosenbrock()
    _, rows = momentum.compare_on_surface(valley, learning_rate=1 / valley.max_curvature,
                                          steps=3000, tolerance=1e-4)
    steps = {r["optimizer"]: r["steps to tolerance"] for r in rows}
    assert steps["gradient descent"] is None
    assert steps["momentum"] is not None and steps["Nesterov"] is not None


@pytest.mark.slow
def test_cnn_runs_over_seeds_differ_only_by_the_rule_and_its_rate():
    x, y = fingers.make_fingers(32, image_size=16, seed=0)
    splits = SimpleNamespace(x_train=x, y_train=y, x_val=x[:12], y_val=y[:12])
    rules = {name: momentum.OPTIMIZERS[name] for name in ("momentum", momentum.EFFECTIVE_STEP)}
    runs = momentum.train_cnn_over_seeds(splits, learning_rate=0.01, epochs=1, batch_size=8,
                                         seeds=[3, 4], width=4, optimizers=rules)
    assert {name: sorted(by_seed) for name, by_seed in runs.items()} == {
        name: [3, 4] for name in rules}
    alone = momentum.train_cnn_with(splits, momentum=0.0, nesterov=False, learning_rate=0.1,
                                    epochs=1, batch_size=8, seed=4, width=4)
    assert alone == runs[momentum.EFFECTIVE_STEP][4]   # same seed, ten times the rate
    assert runs["momentum"][3] != runs["momentum"][4]  # the seeds differ
    with pytest.raises(ValueError, match="learning_rate: expected a finite number > 0, got 0"):
        momentum.train_cnn_with(splits, momentum=0.9, nesterov=False, learning_rate=0,
                                epochs=1, batch_size=8)
