"""Lesson 05, debugging practices: gradient checks, sanity checks and the preflight report.

Before a long training run, a few cheap checks catch most bugs:

- **gradient check** (:func:`numerical_gradient`, :func:`relative_error`,
  :func:`check_gradients`): analytic gradients (``tf.GradientTape``) against
  central differences ``(f(x + h) - f(x - h)) / 2h``, in float64, on a few data
  points and a sample of the parameters, with dropout and augmentation off;
- **initial loss** (:func:`expected_initial_loss`, :func:`check_initial_loss`):
  an untrained classifier guesses, so its cross-entropy is ``-ln(1/C) = ln C``;
- **tiny-subset overfit** (:func:`check_tiny_subset_overfit`): with
  regularisation off, a network must fit 5 to 20 samples to a loss near zero;
- **update ratios** (:class:`UpdateRatioMonitor`, :func:`check_update_ratios`):
  the size of a weight update relative to the weights, per layer, is near 1e-3
  when the learning rate is sound;
- **dead units** (:func:`find_dead_units`, :func:`find_saturated_units`,
  :func:`check_dead_units`): ReLUs that never fire, sigmoids stuck at 0 or 1;
- **Karpathy's recipe** (:func:`check_input_dependence`, :func:`check_batch_independence`,
  :func:`check_regularization_raises_loss`): an input-independent baseline, samples that
  do not mix, a penalty that raises the loss;
- **find the bug** (:func:`make_setup`, :data:`BUGS`): training set-ups with a planted
  bug, told apart only by the checks above.

:func:`preflight` runs all five on any Keras classifier and returns a
:class:`PreflightReport` that prints as a table. The remaining helpers serve
the lesson's figures: :func:`gradient_error_vs_step`, :func:`gradient_norms`,
:func:`build_plain_mlp`, ``plot_*`` functions and :class:`SwishDense`, a custom
layer with a hand-written derivative (and an optional planted bug).

Every name is used from here (``debugging.check_gradients``); the code lives in
one module per part of the lesson:

==================  ==========================================================
``results``         :class:`CheckResult`, :class:`PreflightReport`
``gradient_check``  the numerical gradient, the relative error, the gradient check
``checks``          initial loss, tiny-subset overfit, update ratios, dead units
``monitors``        loss per step, gradient norms, weight roughness, a plain deep net
``figures``         the ``plot_*`` functions
``preflight``       :func:`preflight`: the five checks in one report
``sanity``          input dependence, batch independence, regularisation raises the loss
``setups``          :func:`make_setup`: training set-ups with planted bugs
``callbacks``       :class:`UpdateRatioMonitor` (a Keras callback)
``layers``          :class:`SwishDense` (a Keras layer with planted bugs)
==================  ==========================================================

``import course_utils.debugging`` does not import TensorFlow. ``callbacks`` and
``layers`` hold Keras subclasses, so they import Keras; they are loaded on first
use of :class:`UpdateRatioMonitor` or :class:`SwishDense`.

Examples
--------
>>> import numpy as np
>>> x = np.array([1.0, -2.0, 0.5])
>>> grad = numerical_gradient(lambda v: float(np.sum(v ** 3)), x)
>>> relative_error(grad, 3 * x ** 2) < 1e-9
True
>>> round(expected_initial_loss(12), 4)
2.4849
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from course_utils.debugging.checks import (
    UPDATE_RATIO_BAND,
    check_dead_units,
    check_initial_loss,
    check_tiny_subset_overfit,
    check_update_ratios,
    expected_initial_loss,
    find_dead_units,
    find_saturated_units,
)
from course_utils.debugging.figures import (
    plot_error_vs_step,
    plot_filters,
    plot_gradient_norms,
    plot_step_losses,
    plot_update_ratios,
)
from course_utils.debugging.gradient_check import (
    check_gradients,
    gradient_error_vs_step,
    numerical_gradient,
    relative_error,
)
from course_utils.debugging.monitors import (
    build_plain_mlp,
    gradient_norms,
    record_step_losses,
    weight_roughness,
)
from course_utils.debugging.preflight import CHECK_NAMES, preflight
from course_utils.debugging.results import CheckResult, PreflightReport
from course_utils.debugging.sanity import (
    check_batch_independence,
    check_input_dependence,
    check_regularization_raises_loss,
)
from course_utils.debugging.setups import BUGS, TrainingSetup, make_setup
from course_utils.runtime.tf_setup import load_on_first_use

if TYPE_CHECKING:  # pragma: no cover
    from course_utils.debugging.callbacks import UpdateRatioMonitor
    from course_utils.debugging.layers import SwishDense

__all__ = [
    "BUGS",
    "CHECK_NAMES",
    "UPDATE_RATIO_BAND",
    "CheckResult",
    "PreflightReport",
    "SwishDense",
    "TrainingSetup",
    "UpdateRatioMonitor",
    "build_plain_mlp",
    "check_batch_independence",
    "check_dead_units",
    "check_gradients",
    "check_initial_loss",
    "check_input_dependence",
    "check_regularization_raises_loss",
    "check_tiny_subset_overfit",
    "check_update_ratios",
    "expected_initial_loss",
    "find_dead_units",
    "find_saturated_units",
    "gradient_error_vs_step",
    "gradient_norms",
    "make_setup",
    "numerical_gradient",
    "plot_error_vs_step",
    "plot_filters",
    "plot_gradient_norms",
    "plot_step_losses",
    "plot_update_ratios",
    "preflight",
    "record_step_losses",
    "relative_error",
    "weight_roughness",
]

# The Keras classes, imported from the submodule that defines each on first use.
__getattr__, __dir__ = load_on_first_use(
    __name__, {"UpdateRatioMonitor": "callbacks", "SwishDense": "layers"})
