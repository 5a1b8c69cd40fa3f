"""course_utils.surfaces: the loss surfaces lessons 01 and 03 share, each defined once."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from course_utils import learning_rate, momentum, surfaces

POINTS = [np.array([0.3, -0.7]), np.array([-1.1, 1.4]), np.array([2.0, 0.5])]


def _central_gradient(loss, point, h=1e-6):
    return np.array([(float(loss(point + e)) - float(loss(point - e))) / (2 * h)
                     for e in np.eye(len(point)) * h])


def _central_hessian(gradient, point, h=1e-5):
    return np.array([(gradient(point + e) - gradient(point - e)) / (2 * h)
                     for e in np.eye(len(point)) * h])


def test_importing_the_module_loads_neither_tensorflow_nor_matplotlib():
    code = ("import sys, course_utils.surfaces as s; s.make_rosenbrock().gradient([0.0, 0.0]); "
            "heavy = [m for m in ('tensorflow', 'keras', 'matplotlib') if m in sys.modules]; "
            "assert not heavy, heavy")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_both_lessons_use_the_one_definition_of_each_surface():
    assert learning_rate.QuadraticLoss is surfaces.QuadraticLoss
    assert momentum.Surface is surfaces.Surface
    assert momentum.make_quadratic is surfaces.make_quadratic
    assert momentum.make_rosenbrock is surfaces.make_rosenbrock


# --------------------------------------------------------------------------- quadratic bowl


def test_quadratic_loss_is_half_the_curvature_weighted_squares():
    bowl = surfaces.QuadraticLoss((2.0, 8.0))
    assert float(bowl.loss([1.0, -0.5])) == pytest.approx(0.5 * (2.0 * 1.0 + 8.0 * 0.25))
    assert float(bowl.loss([0.0, 0.0])) == 0.0
    for point in POINTS:
        np.testing.assert_allclose(bowl.gradient(point), _central_gradient(bowl.loss, point),
                                   rtol=1e-6, atol=1e-8)
    assert bowl.dim == 2 and bowl.largest_stable_rate == pytest.approx(0.25)


def test_quadratic_loss_takes_many_points_at_once():
    valley = surfaces.QuadraticLoss((1.0, 10.0))
    grid = np.stack(np.meshgrid(np.linspace(-2, 2, 5), np.linspace(-1, 1, 3)), axis=-1)
    assert valley.loss(grid).shape == (3, 5) and valley.gradient(grid).shape == (3, 5, 2)
    np.testing.assert_array_equal(valley.loss(grid)[1, 2], valley.loss(grid[1, 2]))
    parabola = surfaces.QuadraticLoss((2.0,))
    assert parabola.loss([0.0, 1.0, 3.0]).tolist() == [0.0, 1.0, 9.0]
    assert float(parabola.loss(3.0)) == 9.0


@pytest.mark.parametrize("curvatures", [(1.0, -2.0), (0.0,), (), (1.0, 2.0, 3.0),
                                        (float("inf"),), ("steep",)])
def test_quadratic_loss_refuses_curvatures_that_are_not_one_or_two_positive_numbers(curvatures):
    with pytest.raises(ValueError, match="curvatures: expected one or two positive numbers"):
        surfaces.QuadraticLoss(curvatures)


def test_quadratic_loss_names_the_coordinates_it_expects():
    with pytest.raises(ValueError, match="2 coordinates"):
        surfaces.QuadraticLoss((1.0, 2.0)).loss([1.0, 2.0, 3.0])


# --------------------------------------------------------------------------- Rosenbrock


def test_rosenbrock_loss_follows_its_formula_and_is_zero_at_its_minimum():
    valley = surfaces.RosenbrockLoss(a=0.5, b=10.0)
    x, y = -1.1, 1.4
    assert float(valley.loss([x, y])) == pytest.approx((0.5 - x) ** 2 + 10.0 * (y - x**2) ** 2)
    assert valley.minimum.tolist() == [0.5, 0.25]
    assert float(valley.loss(valley.minimum)) == 0.0
    np.testing.assert_array_equal(valley.gradient(valley.minimum), [0.0, 0.0])


@pytest.mark.parametrize(("a", "b"), [(1.0, 100.0), (0.5, 10.0), (-2.0, 3.0)])
def test_rosenbrock_gradient_and_hessian_agree_with_central_differences(a, b):
    valley = surfaces.RosenbrockLoss(a, b)
    for point in POINTS:
        np.testing.assert_allclose(valley.gradient(point), _central_gradient(valley.loss, point),
                                   rtol=1e-5, atol=1e-5)
    hessian = _central_hessian(valley.gradient, valley.minimum)
    np.testing.assert_allclose(valley.hessian_at_minimum, hessian, rtol=1e-6, atol=1e-4)
    assert valley.max_curvature == pytest.approx(np.linalg.eigvalsh(hessian).max())


def test_rosenbrock_takes_many_points_at_once_with_the_same_values():
    valley = surfaces.RosenbrockLoss()
    points = np.array(POINTS)
    np.testing.assert_allclose(valley.loss(points), [valley.loss(p) for p in POINTS], rtol=1e-14)
    np.testing.assert_allclose(valley.gradient(points), [valley.gradient(p) for p in POINTS],
                               rtol=1e-14)


def test_rosenbrock_checks_its_arguments():
    with pytest.raises(ValueError, match="b: expected a finite number > 0, got 0.0"):
        surfaces.RosenbrockLoss(b=0.0)
    with pytest.raises(ValueError, match="a: expected a finite number"):
        surfaces.RosenbrockLoss(a=float("nan"))
    with pytest.raises(ValueError, match="2 coordinates"):
        surfaces.RosenbrockLoss().loss([1.0, 2.0, 3.0])


# --------------------------------------------------------------------------- lesson 03's Surfaces


def test_make_quadratic_is_the_bowl_of_curvatures_l_over_condition_and_l():
    surface = surfaces.make_quadratic(condition=50, max_curvature=2.0, start=(0.5, -1.0))
    bowl = surfaces.QuadraticLoss((2.0 / 50, 2.0))
    for point in POINTS:
        assert surface.loss(point) == float(bowl.loss(point))
        np.testing.assert_array_equal(surface.gradient(point), bowl.gradient(point))
    assert isinstance(surface.loss(POINTS[0]), float)
    assert surface.max_curvature == 2.0 and surface.minimum.tolist() == [0.0, 0.0]
    assert surface.start.tolist() == [0.5, -1.0]
    assert surface.name == "quadratic, condition number 50"


def test_make_rosenbrock_wraps_the_valley_with_a_start_and_a_region_to_draw():
    surface = surfaces.make_rosenbrock()
    valley = surfaces.RosenbrockLoss()
    assert surface.loss(POINTS[1]) == float(valley.loss(POINTS[1]))
    assert surface.max_curvature == pytest.approx(1001.6, abs=0.1)
    assert surface.start.tolist() == [-1.2, 1.0]
    assert surface.xlim[0] < surface.start[0] < surface.xlim[1]
    assert surface.ylim[0] < surface.minimum[1] < surface.ylim[1]


def test_loss_gap_is_measured_from_the_minimum():
    surface = surfaces.make_rosenbrock(a=0.5, b=10.0)
    gaps = surface.loss_gap(np.array([surface.minimum, POINTS[0]]))
    assert gaps[0] == 0.0 and gaps[1] == pytest.approx(surface.loss(POINTS[0]))


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"condition": 0.5}, "condition: expected a finite number >= 1, got 0.5"),
    ({"condition": float("inf")}, "condition: expected a finite number >= 1, got inf"),
    ({"max_curvature": 0.0}, "max_curvature: expected a finite number > 0"),
    ({"start": (1.0, 2.0, 3.0)}, "start: expected a finite point"),
])
def test_make_quadratic_checks_its_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        surfaces.make_quadratic(**kwargs)
