"""Gradient checking: analytic gradients against central differences.

:func:`numerical_gradient` and :func:`relative_error` are the NumPy pieces, small
enough to read as the formulas they are; :func:`gradient_error_vs_step` shows how
the step ``h`` and the precision set the error; :func:`check_gradients` checks any
Keras model's backward pass (``tf.GradientTape``) against central differences, in
float64, on a few data points and a sample of the parameters, with dropout and
augmentation off.

Examples
--------
>>> x = np.array([1.0, -2.0, 0.5])
>>> grad = numerical_gradient(lambda v: float(np.sum(v ** 3)), x)
>>> relative_error(grad, 3 * x ** 2) < 1e-9
True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from course_utils.debugging._common import (
    as_sample_array,
    clone_with_weights,
    compiled_loss,
    loss_function,
    require_model,
)
from course_utils.debugging.results import CheckResult
from course_utils.runtime import seeds
from course_utils.runtime.checks import check_choice, check_scalar
from course_utils.runtime.tf_setup import import_keras, import_tensorflow

__all__ = ["check_gradients", "gradient_error_vs_step", "numerical_gradient", "relative_error"]


def numerical_gradient(
    f: Callable[[np.ndarray], float],
    x: np.ndarray,
    *,
    h: float = 1e-5,
    indices: Sequence[tuple[int, ...]] | None = None,
) -> np.ndarray:
    """Central-difference gradient of the scalar function ``f`` at ``x``.

    Entry ``i`` is ``(f(x + h e_i) - f(x - h e_i)) / (2 h)``: its error shrinks
    like ``h**2`` (the one-sided difference only like ``h``) until rounding,
    about ``machine epsilon * |f| / h``, takes over for very small ``h``.
    ``x`` keeps its dtype (use float64) and is restored after each step. With
    ``indices`` only those entries are computed (the others stay 0): a gradient
    check looks at a sample of the parameters, not all of them.

    Examples
    --------
    >>> x = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> numerical_gradient(lambda v: float((v ** 2).sum()), x).round(6).tolist()
    [[2.0, 4.0], [6.0, 8.0]]
    >>> numerical_gradient(lambda v: float((v ** 2).sum()), x, indices=[(1, 0)]).round(6).tolist()
    [[0.0, 0.0], [6.0, 0.0]]
    """
    if not callable(f):
        raise ValueError(f"f: expected a function of one array, got {type(f).__name__}")
    x = np.asarray(x)
    if x.dtype.kind != "f":
        raise ValueError(f"x: expected a float array (float64 for a gradient check), got {x.dtype}")
    check_scalar(h, "h", float, min_val=0, include_boundaries="neither", finite=True)  # e.g. 1e-5
    work = x.copy()
    grad = np.zeros_like(work)
    where = np.ndindex(*work.shape) if indices is None else (tuple(i) for i in indices)
    step = work.dtype.type(h)
    for index in where:
        original = work[index]
        work[index] = original + step
        plus = f(work)
        work[index] = original - step
        minus = f(work)
        work[index] = original
        grad[index] = (plus - minus) / (2 * step)
    return grad


def relative_error(analytic: Any, numerical: Any, *, eps: float = 1e-8) -> float:
    """The largest entry of ``|a - n| / max(|a| + |n|, eps)``; 0.0 when both are zero.

    Relative, so it means the same for large and small gradients (an absolute
    difference of 1e-4 is tiny for a gradient of 10 and huge for 1e-5). ``eps``
    keeps it finite where both are zero. Rules of thumb in float64: below 1e-7
    correct; 1e-7 to 1e-4 suspicious unless the function has kinks (ReLU, max
    pooling); above 1e-2 the gradient is wrong.

    Examples
    --------
    >>> relative_error([1.0, 0.0], [1.0, 0.0])
    0.0
    >>> relative_error(1e-3, 2e-3)   # |1e-3 - 2e-3| / 3e-3
    0.3333333333333333
    """
    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numerical, dtype=np.float64)
    if a.shape != n.shape:
        raise ValueError(f"numerical: expected the shape of analytic {a.shape}, got {n.shape}")
    check_scalar(eps, "eps", float, min_val=0, include_boundaries="neither")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - n) / np.maximum(np.abs(a) + np.abs(n), eps)))


def gradient_error_vs_step(
    f: Callable[[np.ndarray], float],
    grad: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    steps: Sequence[float],
    *,
    dtype: str = "float64",
) -> np.ndarray:
    """:func:`relative_error` of :func:`numerical_gradient` against ``grad(x)``, per step h.

    ``x`` is cast to ``dtype`` before differencing, so ``f`` computes in that
    precision; the analytic gradient is taken in float64. Plotted against h on
    log-log axes the error falls like ``h**2``, then rises again like ``1/h``
    once rounding dominates: the sweet spot is near ``1e-5`` in float64 and
    near ``1e-2`` in float32.

    Examples
    --------
    >>> x = np.linspace(-1, 1, 5)
    >>> errors = gradient_error_vs_step(lambda v: float(np.sum(np.sin(v))), np.cos, x,
    ...                                 [1e-1, 1e-5, 1e-13])
    >>> bool(errors[1] < 1e-9 < errors[0]), bool(errors[2] > errors[1])
    (True, True)
    """
    steps = [float(h) for h in steps]
    if not steps:
        raise ValueError("steps: expected at least one step size h, got none")
    x64 = np.asarray(x, dtype=np.float64)
    reference = np.asarray(grad(x64), dtype=np.float64)
    xd = x64.astype(np.dtype(dtype))
    return np.array([relative_error(reference, numerical_gradient(f, xd, h=h)) for h in steps])


def check_gradients(
    model: Any,
    x: Any,
    y: Any,
    *,
    loss: Any = None,
    num_params: int = 20,
    h: float = 1e-5,
    dtype: str = "float64",
    regularization: bool = True,
    training: bool = False,
    tolerance: float = 1e-4,
    warmup_steps: int = 0,
    skip_kinks: bool = True,
    seed: int = 0,
) -> CheckResult:
    """Check ``model``'s gradients on ``(x, y)`` against central differences.

    The model is cloned in ``dtype`` (float64: rounding errors of 1e-16 instead
    of 1e-7), its weights copied. The loss is ``loss`` (default: the compiled
    loss, else sparse categorical cross-entropy) on the few samples given (few
    points cross few ReLU kinks), plus the regularisation penalties when
    ``regularization``. ``training=False`` turns dropout and augmentation off:
    with them on, each evaluation draws new random masks and the differences
    mean nothing. The analytic gradient comes from ``tf.GradientTape``; the
    numerical one perturbs ``num_params`` parameters drawn at random (every
    weight tensor in turn) by ``+-h``. ``warmup_steps`` first trains the copy
    that many steps (Adam, on the same samples): at initialisation zero biases
    put many ReLUs exactly on their kink at 0, where the two gradients differ
    for no fault of the code; after a short training they no longer do.
    With ``skip_kinks`` (float64 only) a parameter whose difference quotients
    for ``h`` and ``h / 10`` disagree sits next to a kink (a ReLU at 0, a tie in
    max pooling) and is left out of the verdict; ``details["kinks"]`` says which.

    Passes when the largest :func:`relative_error` is below ``tolerance``:
    a wrong derivative gives 1e-2 or more, while rounding alone reaches 1e-5
    for parameters whose gradient is as small as 1e-6.
    ``details``: ``errors``, ``analytic``, ``numerical`` (per sampled parameter)
    and ``parameters`` (``"weight[index]"``).

    Examples
    --------
    >>> keras = import_keras()
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, "softmax")])
    >>> result = check_gradients(model, np.ones((2, 3)), np.array([0, 1]))
    >>> result.passed, bool(result.details["errors"].max() < 1e-7)
    (True, True)
    """
    tf = import_tensorflow()
    require_model(model)
    num_params = check_scalar(num_params, "num_params", int, min_val=1)
    check_scalar(h, "h", float, min_val=0, include_boundaries="neither", finite=True)  # e.g. 1e-5
    check_choice(dtype, "dtype", ("float64", "float32"))
    x = as_sample_array(x, "x", dtype=dtype)
    y = np.asarray(y)
    if len(y) != len(x):
        raise ValueError(f"y: expected {len(x)} labels (one per sample), got {len(y)}")
    clone = clone_with_weights(model, dtype=dtype)
    loss_fn = loss_function(loss if loss is not None else compiled_loss(model), dtype)
    variables = list(clone.trainable_variables)
    if not variables:
        return CheckResult("gradient check", False, "no trainable weights", f"< {tolerance:.0e}",
                           "the model has no trainable weights: nothing can learn (a frozen "
                           "model?)")
    x_t = tf.constant(x)

    @tf.function  # traced once: the many forward passes below then cost far less each
    def total_loss() -> Any:
        value = tf.cast(loss_fn(y, clone(x_t, training=training)), dtype)
        if regularization and clone.losses:
            value = value + tf.add_n([tf.cast(p, dtype) for p in clone.losses])
        return value

    if warmup_steps:
        warmup = import_keras().optimizers.Adam(1e-3)
        for _ in range(check_scalar(warmup_steps, "warmup_steps", int, min_val=1)):
            with tf.GradientTape() as tape:
                value = total_loss()
            warmup.apply_gradients(zip(tape.gradient(value, variables), variables, strict=True))

    with tf.GradientTape() as tape:
        value = total_loss()
    grads = tape.gradient(value, variables)

    def central(var: Any, original: np.ndarray, index: tuple[int, ...], step: float) -> float:
        values = []
        for sign in (1, -1):
            changed = original.copy()
            changed[index] = changed[index] + sign * np.asarray(step, dtype=dtype)
            var.assign(changed)
            values.append(float(total_loss()))
        var.assign(original)
        return (values[0] - values[1]) / (2 * step)

    rng = seeds.make_rng(seed)
    analytic, numerical, names, kinks = [], [], [], []
    order = rng.permutation(len(variables))
    for k in range(num_params):
        var_index = int(order[k % len(variables)])
        var = variables[var_index]
        index = tuple(int(rng.integers(s)) for s in tuple(var.shape))
        original = var.numpy()
        grad = grads[var_index]
        analytic.append(0.0 if grad is None else float(np.asarray(grad)[index]))
        numerical.append(central(var, original, index, h))
        names.append(f"{_short_name(var)}{list(index)}")
        if dtype == "float64" and skip_kinks:
            # Smooth there: the difference quotients for h and h/10 agree to ~1e-8.
            finer = central(var, original, index, h / 10)
            kinks.append(relative_error(numerical[-1], finer) > 1e-5)
        else:
            kinks.append(False)
    analytic_a, numerical_a = np.array(analytic), np.array(numerical)
    kinks_a = np.array(kinks)
    errors = np.abs(analytic_a - numerical_a) / np.maximum(
        np.abs(analytic_a) + np.abs(numerical_a), 1e-8)
    details = {"errors": errors, "analytic": analytic_a, "numerical": numerical_a,
               "parameters": names, "kinks": kinks_a}
    expected = f"< {tolerance:.0e} ({dtype}, {num_params} params)"
    if kinks_a.all():
        return CheckResult("gradient check", False, "no smooth parameter", expected,
                           "the difference quotients for h and h/10 disagree for every sampled "
                           "parameter: a random layer (dropout, augmentation) is on, or every "
                           "point sits on a kink (check fewer points, after a short training)",
                           details)
    checked = np.where(kinks_a, -1.0, errors)
    worst = int(np.argmax(checked))
    passed = bool(errors[worst] < tolerance)
    skipped = f", {int(kinks_a.sum())} next to a kink skipped" if kinks_a.any() else ""
    where = f"{names[worst]}: analytic {analytic_a[worst]:.6g}, numerical {numerical_a[worst]:.6g}"
    message = (f"max relative error {errors[worst]:.1e} at {where}{skipped}" if passed else
               f"analytic and numerical gradients disagree (relative error {errors[worst]:.1e} "
               f"at {where}): a wrong backward pass, or a random layer (dropout) left on")
    return CheckResult("gradient check", passed, f"max rel. error {errors[worst]:.1e}",
                       expected, message, details)


def _short_name(variable: Any) -> str:
    """``layer/weight``: the last two parts of a variable's path."""
    path = str(getattr(variable, "path", variable.name))
    return "/".join(path.split("/")[-2:])
