"""course_utils.momentum: Keras' SGD rules in NumPy, and lesson 03's claims.

The surfaces the lesson draws on (``momentum.make_quadratic``, ``momentum.make_rosenbrock``)
are defined in course_utils.surfaces and tested in ``test_surfaces.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

from course_utils import fingers, momentum, profiles

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
    ({"learning_rate": 0.0}, "learning_rate"), ({"learning_rate": -1.0}, "learning_rate"),
    ({"learning_rate": 0.1, "momentum": 1.0}, "momentum"),
    ({"learning_rate": 0.1, "momentum": -0.1}, "momentum"),
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
    with pytest.raises(ValueError, match="tolerance"):
        momentum.steps_to_tolerance(q, path, 0)
    with pytest.raises(ValueError, match="starts at the minimum"):
        momentum.overshoot(q, np.zeros((2, 2)))


def test_figures_and_the_explorer_draw_every_trajectory():
    q = momentum.make_quadratic()
    paths, rows = momentum.compare_on_surface(q, learning_rate=1.0, steps=50)
    fig = momentum.plot_trajectories(q, paths)
    assert len(fig.axes[0].lines) == len(momentum.OPTIMIZERS) + 1  # + the minimum
    assert len(momentum.plot_loss_curves(q, paths, tolerance=1e-6).axes[0].lines) == 4
    view = momentum.explore_momentum(q, steps=20, display=False)
    assert view.widget is None and len(view.static.axes[0].lines) == 4
    assert [r["optimizer"] for r in rows] == list(momentum.OPTIMIZERS)
    with pytest.raises(ValueError, match="at least one"):
        momentum.plot_trajectories(q, {})


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
def test_claim_on_the_cnn_momentum_reaches_a_lower_training_loss_in_the_smoke_budget():
    smoke = profiles.get_profile("smoke")
    splits = fingers.load_fingers(smoke)
    final = {}
    for name, (beta, nesterov) in momentum.OPTIMIZERS.items():
        history = momentum.train_cnn_with(splits, momentum=beta, nesterov=nesterov,
                                          learning_rate=0.01, epochs=smoke.short_epochs,
                                          batch_size=smoke.batch_size, seed=smoke.seed)
        final[name] = history["loss"][-1]
    print(f"\ntraining loss after {smoke.short_epochs} smoke epochs at lr 0.01: {final}")
    assert final["momentum"] < final["gradient descent"] - 0.2     # 1.56 vs 2.32 measured
    assert final["Nesterov"] < final["gradient descent"] - 0.2
