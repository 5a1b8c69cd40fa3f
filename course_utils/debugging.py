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
  :func:`check_dead_units`): ReLUs that never fire, sigmoids stuck at 0 or 1.

:func:`preflight` runs all five on any Keras classifier and returns a
:class:`PreflightReport` that prints as a table. The remaining helpers serve
the lesson's figures: :func:`gradient_error_vs_step`, :func:`gradient_norms`,
:func:`build_plain_mlp`, ``plot_*`` functions and :class:`SwishDense`, a custom
layer with a hand-written derivative (and an optional planted bug).

``import course_utils.debugging`` does not import TensorFlow; the Keras classes
:class:`UpdateRatioMonitor` and :class:`SwishDense` are made on first access.

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

import dataclasses
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure

from course_utils import models
from course_utils.tf_setup import import_keras, import_tensorflow, lazy_keras_class, set_seed

if TYPE_CHECKING:  # pragma: no cover
    import keras

__all__ = [
    "CHECK_NAMES",
    "UPDATE_RATIO_BAND",
    "CheckResult",
    "PreflightReport",
    "SwishDense",
    "UpdateRatioMonitor",
    "build_plain_mlp",
    "check_dead_units",
    "check_gradients",
    "check_initial_loss",
    "check_tiny_subset_overfit",
    "check_update_ratios",
    "expected_initial_loss",
    "find_dead_units",
    "find_saturated_units",
    "gradient_error_vs_step",
    "gradient_norms",
    "numerical_gradient",
    "plot_error_vs_step",
    "plot_filters",
    "plot_gradient_norms",
    "plot_update_ratios",
    "preflight",
    "record_step_losses",
    "relative_error",
    "weight_roughness",
]

#: The checks :func:`preflight` runs, in order.
CHECK_NAMES = ("gradient check", "initial loss", "tiny-subset overfit", "update ratios",
               "dead units")

#: Healthy band of the update-to-weight ratio (rule of thumb: about 1e-3).
UPDATE_RATIO_BAND = (1e-5, 1e-1)

ModelOrBuilder = Any  # a keras.Model, or a function seed -> new keras.Model


# --------------------------------------------------------------------------- results


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """The outcome of one check: passed or not, what was measured, what was expected.

    ``details`` holds the raw measurements (per parameter, per seed, per layer,
    per step) for plots and further questions. Checks return this; they do not
    raise when the model fails them.
    """

    name: str
    passed: bool
    measured: str
    expected: str
    message: str
    details: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class PreflightReport:
    """What :func:`preflight` found: one :class:`CheckResult` per check.

    ``print(report)`` (or :meth:`format`) shows it as a table, followed by
    the message of every failed check.

    Examples
    --------
    >>> ok = CheckResult("initial loss", True, "2.486", "2.485 +- 0.15", "as expected")
    >>> bad = CheckResult("dead units", False, "100% dead in 'fc1'", "< 50% per layer",
    ...                   "layer 'fc1': every unit is dead")
    >>> report = PreflightReport("demo", (ok, bad))
    >>> report.passed, [c.name for c in report.failed]
    (False, ['dead units'])
    >>> print(report.format())  # doctest: +NORMALIZE_WHITESPACE
    preflight of 'demo': 1 of 2 checks passed
    check         result  measured            expected
    ------------  ------  ------------------  ---------------
    initial loss  pass    2.486               2.485 +- 0.15
    dead units    FAIL    100% dead in 'fc1'  < 50% per layer
    <BLANKLINE>
    - dead units: layer 'fc1': every unit is dead
    """

    model_name: str
    checks: tuple[CheckResult, ...]

    @property
    def passed(self) -> bool:
        """True when every check passed."""
        return all(check.passed for check in self.checks)

    @property
    def failed(self) -> list[CheckResult]:
        """The checks that failed, in order."""
        return [check for check in self.checks if not check.passed]

    def __getitem__(self, name: str) -> CheckResult:
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(f"no check named {name!r}; the report has {[c.name for c in self.checks]}")

    def format(self) -> str:
        """The report as a plain-text table, then the message of each failed check."""
        rows = [("check", "result", "measured", "expected")]
        rows += [(c.name, "pass" if c.passed else "FAIL", c.measured, c.expected)
                 for c in self.checks]
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        lines = [f"preflight of {self.model_name!r}: "
                 f"{len(self.checks) - len(self.failed)} of {len(self.checks)} checks passed"]
        for index, row in enumerate(rows):
            lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
                         .rstrip())
            if index == 0:
                lines.append("  ".join("-" * w for w in widths))
        if self.failed:
            lines.append("")
            lines += [f"- {c.name}: {c.message}" for c in self.failed]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()


# --------------------------------------------------------------------------- gradient check


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
    if not (isinstance(h, int | float | np.floating) and h > 0):
        raise ValueError(f"h: expected a small positive step such as 1e-5, got {h!r}")
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
        raise ValueError(f"analytic and numerical must have the same shape, got {a.shape} "
                         f"and {n.shape}")
    if not eps > 0:
        raise ValueError(f"eps: expected a small positive number, got {eps!r}")
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
        raise ValueError("steps: give at least one step size h")
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
    _check_model(model)
    num_params = _check_positive_int(num_params, "num_params")
    if not (isinstance(h, int | float | np.floating) and h > 0):
        raise ValueError(f"h: expected a small positive step such as 1e-5, got {h!r}")
    if dtype not in ("float64", "float32"):
        raise ValueError(f"dtype: expected 'float64' or 'float32', got {dtype!r}")
    x = _as_array(x, "x", dtype=dtype)
    y = np.asarray(y)
    if len(y) != len(x):
        raise ValueError(f"y: expected {len(x)} labels (one per sample), got {len(y)}")
    clone = _clone(model, dtype=dtype)
    loss_fn = _loss_function(loss if loss is not None else _compiled_loss(model), dtype)
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
        for _ in range(_check_positive_int(warmup_steps, "warmup_steps")):
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

    rng = np.random.default_rng(seed)
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


# --------------------------------------------------------------------------- initial loss


def expected_initial_loss(num_classes: int) -> float:
    """Cross-entropy of a classifier that gives every class ``1/C``: ``-ln(1/C) = ln C``.

    Examples
    --------
    >>> round(expected_initial_loss(10), 4)
    2.3026
    """
    num_classes = _check_positive_int(num_classes, "num_classes")
    if num_classes < 2:
        raise ValueError(f"num_classes: expected an integer >= 2, got {num_classes}")
    return float(-math.log(1.0 / num_classes))


def check_initial_loss(
    model: ModelOrBuilder,
    x: Any,
    y: Any,
    *,
    seeds: Sequence[int] = (0, 1, 2),
    tolerance: float = 0.15,
    from_logits: bool = False,
) -> CheckResult:
    """Check that an untrained classifier's loss is ``ln C``, the loss of random guessing.

    ``model`` is a Keras model, or a function ``seed -> new model``: then one
    model is built per seed in ``seeds`` and every one must pass (one lucky
    initialisation proves little). The loss is the sparse categorical
    cross-entropy of the outputs on ``(x, y)``, without regularisation and with
    dropout off; ``C`` is the model's number of outputs. A loss far above
    ``ln C`` means confident wrong guesses from the start: last-layer weights
    too large, a missing softmax, badly scaled inputs.

    Passes when every ``|loss - ln C| <= tolerance``. ``details``: ``losses``
    (one per model), ``expected``.

    Examples
    --------
    >>> from course_utils import models                                   # doctest: +SKIP
    >>> build = lambda seed: models.build_fingers_cnn((32, 32, 1), 12, seed=seed)
    >>> check_initial_loss(build, x, y).passed                          # doctest: +SKIP
    True
    """
    keras = import_keras()
    if not (isinstance(tolerance, int | float) and tolerance > 0):
        raise ValueError(f"tolerance: expected a positive number of nats, got {tolerance!r}")
    if isinstance(model, keras.Model):
        built = [model]
        labels = ["the model"]
    elif callable(model):
        seeds = [int(s) for s in seeds]
        if not seeds:
            raise ValueError("seeds: give at least one seed")
        built = [model(seed) for seed in seeds]
        labels = [f"seed {seed}" for seed in seeds]
    else:
        raise ValueError(f"model: expected a keras.Model or a function seed -> model, got "
                         f"{type(model).__name__}")
    x = _as_array(x, "x")
    y = np.asarray(y)
    losses = []
    num_classes = 0
    for net in built:
        _check_model(net)
        scores = np.asarray(net.predict(x, verbose=0), dtype=np.float64)
        num_classes = scores.shape[-1]
        losses.append(_cross_entropy(y, scores, from_logits=from_logits))
    expected = expected_initial_loss(num_classes)
    losses_a = np.array(losses)
    off = np.abs(losses_a - expected)
    passed = bool(np.all(off <= tolerance))
    measured = ", ".join(f"{v:.3f}" for v in losses_a)
    worst = int(np.argmax(off))
    message = (
        f"untrained loss {measured} matches ln({num_classes}) = {expected:.3f}" if passed else
        f"untrained loss {losses_a[worst]:.3f} ({labels[worst]}) is far from ln({num_classes}) = "
        f"{expected:.3f}: the model starts out confidently wrong; scale the last layer's "
        f"initial weights down, check the softmax and the input scaling"
    )
    return CheckResult(
        "initial loss", passed, measured, f"ln({num_classes}) = {expected:.3f} +- {tolerance:g}",
        message, {"losses": losses_a, "expected": expected, "labels": labels},
    )


# --------------------------------------------------------------------------- tiny subset


def check_tiny_subset_overfit(
    model: Any,
    x: Any,
    y: Any,
    *,
    samples: int = 10,
    max_steps: int = 100,
    learning_rate: float = 3e-3,
    target_loss: float = 0.05,
    loss: Any = None,
    pipeline: Callable[[np.ndarray, np.ndarray], Any] | None = None,
    seed: int = 0,
) -> CheckResult:
    """Train a copy of ``model`` on ``samples`` samples: it must fit them to a loss near zero.

    Any sound network memorises 5 to 20 samples; when it cannot, suspect a bug
    (labels that do not belong to their images, a frozen network, a wrong loss)
    before a too small model. The copy has regularisation off (dropout and
    random augmentation layers become identities, weight penalties are
    removed) and trains with Adam at ``learning_rate`` on the first ``samples``
    of ``(x, y)`` for up to ``max_steps`` epochs of one full batch, stopping
    early once the loss is at most ``target_loss`` with every sample right (the
    loss and accuracy of an epoch are measured during its step, in training
    mode).
    ``loss`` defaults to the model's compiled loss, else sparse categorical
    cross-entropy. With ``pipeline`` (a function ``(x, y) -> tf.data.Dataset``,
    your own input pipeline) the copy trains on ``pipeline(x_small, y_small)``,
    so bugs in the pipeline show too.

    ``details``: ``loss`` and ``accuracy`` per step.

    Examples
    --------
    >>> from course_utils import models                                    # doctest: +SKIP
    >>> model = models.build_fingers_cnn((32, 32, 1), 12, seed=0)         # doctest: +SKIP
    >>> check_tiny_subset_overfit(model, x, y).passed                    # doctest: +SKIP
    True
    """
    keras = import_keras()
    _check_model(model)
    samples = _check_positive_int(samples, "samples")
    max_steps = _check_positive_int(max_steps, "max_steps")
    x = _as_array(x, "x")
    y = np.asarray(y)
    if len(x) < samples or len(y) != len(x):
        raise ValueError(f"x, y: expected at least samples={samples} samples with one label "
                         f"each, got {len(x)} samples and {len(y)} labels")
    x_small, y_small = x[:samples], y[:samples]
    set_seed(seed)
    tf = import_tensorflow()
    clone = _clone(model, strip_regularization=True)
    if not clone.trainable_weights:
        return CheckResult("tiny-subset overfit", False, "no trainable weights",
                           f"loss <= {target_loss:g}, 100% right",
                           "the model has no trainable weights: every layer is frozen")
    loss_fn = _loss_function(loss if loss is not None else _compiled_loss(model), "float32")
    optimizer = keras.optimizers.Adam(learning_rate)
    variables = clone.trainable_variables
    optimizer.build(variables)  # now, not inside the first trace (which would run twice)

    @tf.function
    def train_step(xb: Any, yb: Any) -> tuple[Any, Any]:
        with tf.GradientTape() as tape:
            scores = clone(xb, training=True)
            value = loss_fn(yb, scores)
        optimizer.apply_gradients(zip(tape.gradient(value, variables), variables, strict=True))
        guess = tf.argmax(scores, axis=-1)
        truth = tf.argmax(yb, axis=-1) if len(yb.shape) == 2 and yb.shape[-1] > 1 else \
            tf.reshape(tf.cast(yb, guess.dtype), [-1])
        return value, tf.reduce_sum(tf.cast(tf.equal(guess, truth), "float32"))

    losses: list[float] = []
    accuracy: list[float] = []
    batches = [(x_small, y_small)] if pipeline is None else pipeline(x_small, y_small)
    for _ in range(max_steps):  # one epoch: one batch unless the pipeline makes several
        values, right, seen = [], 0.0, 0
        for xb, yb in batches:
            value, correct = train_step(tf.constant(xb), tf.constant(yb))
            values.append(float(value))
            right += float(correct)
            seen += int(np.shape(xb)[0])
        losses.append(float(np.mean(values)))
        accuracy.append(right / max(seen, 1))
        if losses[-1] <= target_loss and accuracy[-1] >= 1.0:
            break
    passed = losses[-1] <= target_loss and accuracy[-1] >= 1.0
    measured = f"loss {losses[-1]:.3f} after {len(losses)} steps"
    message = (
        f"fitted {samples} samples to loss {losses[-1]:.3f} in {len(losses)} steps" if passed else
        f"could not fit {samples} samples in {max_steps} steps (loss {losses[-1]:.3f}, "
        f"{accuracy[-1]:.0%} right): suspect a bug before a too small model; check that the "
        f"labels belong to their images, that the layers are trainable and the loss is right"
    )
    return CheckResult("tiny-subset overfit", passed, measured,
                       f"loss <= {target_loss:g}, 100% right", message,
                       {"loss": losses, "accuracy": accuracy})


# --------------------------------------------------------------------------- update ratios


class _UpdateRatioMonitor:
    """Record, per layer and per epoch, the size of the weight updates relative to the weights.

    For every layer with trainable weights (nested models are looked into),
    ``theta`` is all its trainable weights flattened together; each training
    step's ratio is ``||theta_after - theta_before|| / ||theta_before||``.
    ``ratios[layer name]`` gets the mean ratio over the steps of each epoch.
    Around ``1e-3`` is healthy; far above (``> 1e-1``) the learning rate is too
    high, far below (``< 1e-5``) too low.

    Examples
    --------
    >>> keras = import_keras()
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="out")])
    >>> model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    >>> monitor = UpdateRatioMonitor()
    >>> _ = model.fit(np.ones((8, 4)), np.ones((8, 3)), epochs=2, verbose=0, callbacks=[monitor])
    >>> sorted(monitor.ratios), len(monitor.ratios["out"])
    (['out'], 2)
    """

    def __init__(self) -> None:
        super().__init__()
        self.ratios: dict[str, list[float]] = {}
        self._before: dict[str, np.ndarray] = {}
        self._steps: dict[str, list[float]] = {}

    def _layers(self) -> list[Any]:
        return [layer for layer in _iter_layers(self.model) if layer.trainable_weights]

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.ratios = {}

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._steps = {layer.name: [] for layer in self._layers()}

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._before = {layer.name: _flat_weights(layer) for layer in self._layers()}

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        for layer in self._layers():
            before = self._before[layer.name]
            change = np.linalg.norm(_flat_weights(layer) - before)
            size = np.linalg.norm(before)
            self._steps.setdefault(layer.name, []).append(
                float(change / size) if size > 0 else math.inf)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        for name, steps in self._steps.items():
            if steps:
                self.ratios.setdefault(name, []).append(float(np.mean(steps)))


def check_update_ratios(
    model: Any,
    x: Any,
    y: Any,
    *,
    optimizer: Any = None,
    loss: Any = None,
    batch_size: int = 32,
    steps: int = 8,
    band: tuple[float, float] = UPDATE_RATIO_BAND,
) -> CheckResult:
    """Train a copy of ``model`` for ``steps`` steps and check its update-to-weight ratios.

    The copy (same weights) trains with ``optimizer`` (default: a fresh copy of
    the compiled one, else Adam at 1e-3) on batches of ``x, y``; an
    :class:`UpdateRatioMonitor` measures each layer's ratio. Passes when the
    median ratio over the layers lies inside ``band`` (about 1e-3 is healthy):
    above it the learning rate is far too high, below it far too low.
    ``details``: ``ratios`` (per layer, the mean over the steps), ``flagged``
    (layers outside the band).

    Examples
    --------
    >>> keras = import_keras()
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, "softmax")])
    >>> x, y = np.random.default_rng(0).normal(size=(64, 4)), np.arange(64) % 3
    >>> check_update_ratios(model, x, y, optimizer=keras.optimizers.SGD(1e-7)).message
    'weight updates are only ... of the weights (learning rate 1e-07): the learning rate is far too low, raise it (about 1e-3 is healthy)'

    """
    _check_model(model)
    batch_size = _check_positive_int(batch_size, "batch_size")
    steps = _check_positive_int(steps, "steps")
    low, high = (float(v) for v in band)
    if not 0 < low < high:
        raise ValueError(f"band: expected (low, high) with 0 < low < high, got {band!r}")
    x = _as_array(x, "x")[: batch_size * steps]
    y = np.asarray(y)[: batch_size * steps]
    clone = _clone(model)
    clone.compile(optimizer=_fresh_optimizer(model, optimizer),
                  loss=loss if loss is not None else _compiled_loss(model))
    models.build_optimizer(clone)
    monitor = _lazy_class("UpdateRatioMonitor")()
    clone.fit(x, y, batch_size=batch_size, epochs=1, shuffle=False, verbose=0,
              callbacks=[monitor])
    ratios = {name: values[-1] for name, values in monitor.ratios.items()}
    if not ratios:
        return CheckResult("update ratios", False, "no trainable weights",
                           f"median in {low:.0e}..{high:.0e}",
                           "the model has no trainable weights: every layer is frozen")
    values = np.array(list(ratios.values()))
    median = float(np.median(values)) if np.all(np.isfinite(values)) else math.inf
    flagged = {name: r for name, r in ratios.items() if not low <= r <= high}
    passed = low <= median <= high
    lr = _learning_rate(clone.optimizer)
    at = f" (learning rate {lr:g})" if lr is not None else ""
    if passed:
        message = f"median update ratio {median:.1e}{at}"
    elif median > high:
        message = (f"weight updates are {median:.1e} of the weights{at}: the learning rate is "
                   f"far too high, lower it (about 1e-3 is healthy)")
    else:
        message = (f"weight updates are only {median:.1e} of the weights{at}: the learning "
                   f"rate is far too low, raise it (about 1e-3 is healthy)")
    return CheckResult("update ratios", passed, f"median {median:.1e}",
                       f"median in {low:.0e}..{high:.0e}", message,
                       {"ratios": ratios, "flagged": flagged})


# --------------------------------------------------------------------------- dead units


def find_dead_units(activations: Any, *, threshold: float = 0.0) -> np.ndarray:
    """Which units of a ReLU layer are dead on this batch: never above ``threshold``.

    ``activations`` has the batch first and the units (channels) last:
    ``(batch, units)`` for a dense layer, ``(batch, rows, cols, channels)`` for
    a convolution, where a channel is dead when it is zero at every position of
    every image. A dead ReLU passes no gradient, so it never recovers.

    Examples
    --------
    >>> a = np.array([[0.0, 1.2, 0.0], [0.0, 0.0, 0.3]])
    >>> find_dead_units(a).tolist()
    [True, False, False]
    """
    a = np.asarray(activations, dtype=np.float64)
    if a.ndim < 2:
        raise ValueError(f"activations: expected (batch, ..., units), got shape {a.shape}")
    return np.all(a.reshape(-1, a.shape[-1]) <= threshold, axis=0)


def find_saturated_units(
    activations: Any,
    *,
    low: float = 0.0,
    high: float = 1.0,
    margin: float = 0.01,
    share: float = 0.95,
) -> np.ndarray:
    """Which units of a sigmoid (or tanh: ``low=-1``) layer are saturated on this batch.

    A unit is saturated when at least ``share`` of its values lie within
    ``margin`` of ``low`` or ``high``: there its derivative is nearly zero and
    it learns almost nothing. Shapes as in :func:`find_dead_units`.

    Examples
    --------
    >>> a = np.array([[0.999, 0.5], [0.0001, 0.6], [0.998, 0.4]])
    >>> find_saturated_units(a).tolist()
    [True, False]
    """
    a = np.asarray(activations, dtype=np.float64)
    if a.ndim < 2:
        raise ValueError(f"activations: expected (batch, ..., units), got shape {a.shape}")
    flat = a.reshape(-1, a.shape[-1])
    near = (flat <= low + margin) | (flat >= high - margin)
    return np.mean(near, axis=0) >= share


def check_dead_units(
    model: Any, x: Any, *, max_fraction: float = 0.5, batch_size: int = 64
) -> CheckResult:
    """Check that no ReLU layer is mostly dead and no sigmoid/tanh layer mostly saturated.

    Runs the model (dropout off) on up to ``batch_size`` samples of ``x``,
    reads the output of every layer with a ReLU, sigmoid or tanh activation
    (nested ``Sequential`` models are looked into) and passes when each has at
    most ``max_fraction`` dead (:func:`find_dead_units`) or saturated
    (:func:`find_saturated_units`) units. The softmax output is not checked.
    ``details``: ``fractions`` per layer.

    Examples
    --------
    >>> model = build_plain_mlp(4, 3, depth=2, units=8, seed=0)
    >>> x = np.random.default_rng(0).normal(size=(32, 4))
    >>> check_dead_units(model, x).passed
    True
    >>> _ = model.get_layer("dense_2").bias.assign(-100.0 * np.ones(8))
    >>> check_dead_units(model, x).message
    "layer 'dense_2': 100% of its units are dead (dead ReLUs pass no gradient: ...)"
    """
    _check_model(model)
    if not 0 < max_fraction <= 1:
        raise ValueError(f"max_fraction: expected a share in (0, 1], got {max_fraction!r}")
    x = _as_array(x, "x")[: _check_positive_int(batch_size, "batch_size")]
    outputs = _activation_outputs(model, x)
    fractions: dict[str, float] = {}
    kinds: dict[str, str] = {}
    for name, (kind, values) in outputs.items():
        if kind == "relu":
            bad = find_dead_units(values)
        else:
            bad = find_saturated_units(values, low=-1.0 if kind == "tanh" else 0.0)
        fractions[name] = float(np.mean(bad))
        kinds[name] = "dead" if kind == "relu" else "saturated"
    if not fractions:
        return CheckResult("dead units", True, "no ReLU/sigmoid/tanh layer",
                           f"<= {max_fraction:.0%} per layer", "nothing to check",
                           {"fractions": {}})
    worst = max(fractions, key=lambda k: fractions[k])
    flagged = {k: v for k, v in fractions.items() if v > max_fraction}
    passed = not flagged
    measured = f"worst {fractions[worst]:.0%} {kinds[worst]} ({worst})"
    hints = []
    if any(kinds[k] == "dead" for k in flagged):
        hints.append("dead ReLUs pass no gradient: check the initialisation, the biases and "
                     "the learning rate")
    if any(kinds[k] == "saturated" for k in flagged):
        hints.append("saturated units pass almost no gradient: check that the inputs are "
                     "scaled (to [0, 1] or standardised) and the initialisation")
    message = (
        f"at most {fractions[worst]:.0%} of the units of a layer are dead or saturated" if passed
        else "; ".join(f"layer {k!r}: {v:.0%} of its units are {kinds[k]}" for k, v in
                       flagged.items())
        + f" ({'; '.join(hints)})"
    )
    return CheckResult("dead units", passed, measured, f"<= {max_fraction:.0%} per layer",
                       message, {"fractions": fractions, "kinds": kinds})


# --------------------------------------------------------------------------- preflight


def preflight(
    model: ModelOrBuilder,
    data: Any,
    *,
    loss: Any = None,
    optimizer: Any = None,
    pipeline: Callable[[np.ndarray, np.ndarray], Any] | None = None,
    samples: int = 10,
    gradient_points: int = 4,
    num_params: int = 12,
    seeds: Sequence[int] = (0, 1, 2),
    batch_size: int = 32,
    seed: int = 0,
) -> PreflightReport:
    """Run the five checks of lesson 05 on a classifier before training it for real.

    ``model``: an untrained Keras classifier (softmax outputs), or a function
    ``seed -> new model`` (then the initial loss is checked for every seed in
    ``seeds`` and the other checks use ``model(seed)``). ``data``: ``(x, y)``
    arrays, ready for the model, or a ``tf.data.Dataset`` of ``(x, y)`` batches
    or samples (the first few hundred samples are used). ``loss`` and
    ``optimizer`` default to the compiled ones (else sparse categorical
    cross-entropy and Adam at 1e-3); ``pipeline`` is your input pipeline for
    the tiny-subset check (see :func:`check_tiny_subset_overfit`).

    The checks: :func:`check_gradients` (``gradient_points`` samples,
    ``num_params`` parameters, float64, regularisation on, dropout off),
    :func:`check_initial_loss`, :func:`check_tiny_subset_overfit` (``samples``
    samples), :func:`check_update_ratios` and :func:`check_dead_units`. The
    model itself is never changed: every check that trains works on a copy. A
    check that raises an error fails with that error as its message.

    Examples
    --------
    >>> from course_utils import models                                   # doctest: +SKIP
    >>> report = preflight(models.build_fingers_cnn((32, 32, 1), 12, seed=0), (x, y))  # doctest: +SKIP
    >>> print(report)                                                     # doctest: +SKIP
    preflight of 'fingers_cnn': 5 of 5 checks passed
    ...
    """
    keras = import_keras()
    initial: Any = model
    if isinstance(model, keras.Model):
        net = model
    elif callable(model):
        net = model(int(seed))
    else:
        raise ValueError(f"model: expected a keras.Model or a function seed -> model, got "
                         f"{type(model).__name__}")
    _check_model(net)
    x, y = _read_data(data, limit=max(batch_size * 8, samples, gradient_points, 256))
    loss = loss if loss is not None else _compiled_loss(net)
    runs: list[tuple[str, Callable[[], CheckResult]]] = [
        ("gradient check", lambda: check_gradients(
            net, x[:gradient_points], y[:gradient_points], loss=loss, num_params=num_params,
            warmup_steps=5, seed=seed)),
        ("initial loss", lambda: check_initial_loss(initial, x, y, seeds=seeds)),
        ("tiny-subset overfit", lambda: check_tiny_subset_overfit(
            net, x, y, samples=samples, loss=loss, pipeline=pipeline, seed=seed)),
        ("update ratios", lambda: check_update_ratios(
            net, x, y, optimizer=optimizer, loss=loss, batch_size=batch_size)),
        ("dead units", lambda: check_dead_units(net, x)),
    ]
    results = []
    for name, run in runs:
        try:
            results.append(run())
        except Exception as exc:  # noqa: BLE001 - a crashing check is a failed check
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            results.append(CheckResult(name, False, f"error: {type(exc).__name__}", "no error",
                                       f"the check raised {type(exc).__name__}: {text[:300]}"))
    return PreflightReport(str(getattr(net, "name", "model")), tuple(results))


# --------------------------------------------------------------------------- monitoring


def gradient_norms(model: Any, x: Any, y: Any, *, loss: Any = None) -> dict[str, float]:
    """The norm of the loss gradient with respect to each layer's weights, input to output.

    One batch, dropout off. In a deep network with vanishing gradients the
    norms shrink layer by layer towards the input; with exploding gradients
    they grow. Keys are layer names (layers with trainable weights only).

    Examples
    --------
    >>> model = build_plain_mlp(4, 3, depth=3, units=8, seed=0)
    >>> list(gradient_norms(model, np.ones((2, 4)), np.array([0, 1])))
    ['dense_1', 'dense_2', 'dense_3', 'output']
    """
    tf = import_tensorflow()
    _check_model(model)
    x = _as_array(x, "x")
    loss_fn = _loss_function(loss if loss is not None else _compiled_loss(model), "float32")
    layers = [layer for layer in _iter_layers(model) if layer.trainable_weights]
    with tf.GradientTape() as tape:
        value = loss_fn(np.asarray(y), model(tf.constant(x), training=False))
    grads = tape.gradient(value, [layer.trainable_weights for layer in layers])
    return {
        layer.name: float(np.sqrt(sum(float(np.sum(np.square(g))) for g in layer_grads
                                      if g is not None)))
        for layer, layer_grads in zip(layers, grads, strict=True)
    }


def record_step_losses(
    model: Any,
    x: Any,
    y: Any,
    *,
    optimizer: Any,
    batch_size: int,
    steps: int,
    loss: Any = None,
    seed: int = 0,
) -> list[float]:
    """Train ``model`` for ``steps`` mini-batch steps and return the loss of every step.

    Keras' ``fit`` logs running means per epoch, which hide what a debugger
    wants to see: the raw loss of each step. Batches are drawn at random
    (seeded) from ``x, y``. A healthy curve falls; one that is flat from the
    start suggests vanishing gradients or a learning rate far too low; one that
    jumps up or turns to ``nan`` a learning rate far too high or exploding
    gradients; a very noisy one mini-batches that are too small.

    Examples
    --------
    >>> keras = import_keras()
    >>> model = build_plain_mlp(4, 3, depth=2, units=8)
    >>> x, y = np.random.default_rng(0).normal(size=(32, 4)), np.arange(32) % 3
    >>> losses = record_step_losses(model, x, y, optimizer=keras.optimizers.SGD(0.1),
    ...                             batch_size=8, steps=20)
    >>> len(losses), bool(losses[-1] < losses[0])
    (20, True)
    """
    tf = import_tensorflow()
    _check_model(model)
    batch_size = _check_positive_int(batch_size, "batch_size")
    steps = _check_positive_int(steps, "steps")
    x = _as_array(x, "x")
    y = np.asarray(y)
    loss_fn = _loss_function(loss if loss is not None else _compiled_loss(model), "float32")
    rng = np.random.default_rng(seed)
    variables = model.trainable_variables
    if not optimizer.built:
        optimizer.build(variables)  # now, not inside the first trace (which would run twice)

    @tf.function
    def step(xb: Any, yb: Any) -> Any:
        with tf.GradientTape() as tape:
            value = loss_fn(yb, model(xb, training=True))
        optimizer.apply_gradients(zip(tape.gradient(value, variables), variables, strict=True))
        return value

    losses = []
    for _ in range(steps):
        index = rng.choice(len(x), size=min(batch_size, len(x)), replace=False)
        losses.append(float(step(tf.constant(x[index]), tf.constant(y[index]))))
    return losses


def build_plain_mlp(
    input_dim: int,
    num_classes: int,
    *,
    depth: int = 8,
    units: int = 64,
    activation: str = "relu",
    init_scale: float = 1.0,
    seed: int = 0,
) -> keras.Model:
    """A plain deep network of ``depth`` dense layers, to show exploding and vanishing gradients.

    Every hidden layer is ``Dense(units, activation)`` with weights drawn from
    a normal distribution of standard deviation ``init_scale * sqrt(1 / fan_in)``
    (no batch normalisation, nothing that rescues a bad scale). With ReLU,
    ``init_scale = sqrt(2)`` keeps the signal's size (He initialisation);
    larger scales make activations and gradients explode, smaller ones (or
    sigmoids) make them vanish. The output is ``Dense(num_classes, softmax)``.
    Layers are named ``dense_1 .. dense_<depth>`` and ``output``.

    Examples
    --------
    >>> model = build_plain_mlp(16, 12, depth=3, units=8)
    >>> [layer.name for layer in model.layers]
    ['dense_1', 'dense_2', 'dense_3', 'output']
    """
    keras = import_keras()
    input_dim = _check_positive_int(input_dim, "input_dim")
    num_classes = _check_positive_int(num_classes, "num_classes")
    depth = _check_positive_int(depth, "depth")
    units = _check_positive_int(units, "units")
    if not init_scale > 0:
        raise ValueError(f"init_scale: expected a positive factor, got {init_scale!r}")
    layers = [keras.Input((input_dim,))]
    fan_in = input_dim
    for i in range(1, depth + 1):
        init = keras.initializers.RandomNormal(stddev=init_scale / math.sqrt(fan_in),
                                               seed=seed * 1000 + i)
        layers.append(keras.layers.Dense(units, activation=activation, kernel_initializer=init,
                                         name=f"dense_{i}"))
        fan_in = units
    layers.append(keras.layers.Dense(
        num_classes, activation="softmax", name="output",
        kernel_initializer=keras.initializers.RandomNormal(stddev=0.01, seed=seed * 1000)))
    return keras.Sequential(layers, name=f"mlp_{activation}_{depth}")


# --------------------------------------------------------------------------- figures


def plot_error_vs_step(steps: Sequence[float], errors: Mapping[str, Sequence[float]]) -> Figure:
    """Relative error of the numerical gradient against the step h, log-log, one line per run.

    Examples
    --------
    >>> fig = plot_error_vs_step([1e-1, 1e-3], {"float64": [1e-3, 1e-7]})
    >>> fig.axes[0].get_xscale(), fig.axes[0].get_yscale()
    ('log', 'log')
    """
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
    ax.axhline(1e-7, color="gray", linestyle=":", label="1e-7 (correct in float64)")
    ax.set(xlabel="step h", ylabel="relative error", title="numerical vs analytic gradient")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small")
    return fig


def plot_gradient_norms(runs: Mapping[str, Mapping[str, float]]) -> Figure:
    """Gradient norm per layer (input to output), log scale, one line per run.

    Examples
    --------
    >>> fig = plot_gradient_norms({"a": {"dense_1": 1e-6, "dense_2": 1e-3, "output": 1.0}})
    >>> fig.axes[0].get_yscale()
    'log'
    """
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
    if not runs:
        raise ValueError("runs: expected {run name: {layer name: ratio(s)}}")
    fig = Figure(figsize=(6.5, 3.8), layout="constrained")
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
    ax.legend(fontsize="small")
    return fig


def weight_roughness(model_or_kernel: Any, *, layer: str | None = None) -> float:
    """How much weights drawn as images look like noise: about 1 for noise, near 0 for smooth.

    ``model_or_kernel`` is a Keras model (its first ``Conv2D``, or ``layer``, as in
    :func:`plot_filters`) or an array holding images along its first two axes,
    ``(rows, cols, ...)``: a convolution kernel ``(rows, cols, in_channels, filters)``
    or a dense layer's kernel reshaped to ``(size, size, units)``. For each image, the mean
    squared difference between neighbouring weights (across rows and across columns)
    is divided by twice the image's variance: independent noise gives 1, a smooth
    image (neighbours alike) much less. The median over the images is returned.

    Raises ``ValueError`` for fewer than two rows or columns, or constant images.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> round(weight_roughness(rng.normal(size=(32, 32, 12))), 1)
    1.0
    >>> ramp = np.add.outer(np.arange(32.0), np.arange(32.0))[..., None]
    >>> weight_roughness(ramp) < 0.01
    True
    """
    if hasattr(model_or_kernel, "layers"):
        w = _conv_kernel(model_or_kernel, layer)[0].astype(float)
    else:
        w = np.asarray(model_or_kernel, dtype=float)
    if w.ndim < 2 or w.shape[0] < 2 or w.shape[1] < 2:
        raise ValueError(f"weights: expected images of at least 2x2 along the first two axes, "
                         f"got shape {w.shape}")
    w = w.reshape(w.shape[0], w.shape[1], -1)
    variance = w.var(axis=(0, 1))
    if np.any(variance == 0):
        raise ValueError("weights: an image is constant, its roughness is undefined")
    across_rows = np.mean(np.diff(w, axis=0) ** 2, axis=(0, 1))
    across_cols = np.mean(np.diff(w, axis=1) ** 2, axis=(0, 1))
    return float(np.median((across_rows + across_cols) / 2 / (2 * variance)))


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
    if hasattr(model_or_kernel, "layers"):
        kernel, title = _conv_kernel(model_or_kernel, layer)
    else:
        kernel = np.asarray(model_or_kernel, dtype=float)
        title = "filters"
    if kernel.ndim != 4:
        raise ValueError(f"kernel: expected (rows, cols, in_channels, filters), got {kernel.shape}")
    count = min(kernel.shape[-1], _check_positive_int(max_filters, "max_filters"))
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


# --------------------------------------------------------------------------- custom layer


class _SwishDense:
    """A dense layer with the swish activation ``z * sigmoid(z)`` and a hand-written derivative.

    The forward pass is ``swish(inputs @ kernel + bias)``; the backward pass does
    not come from automatic differentiation but from the formula
    ``swish'(z) = s + z s (1 - s)`` with ``s = sigmoid(z)``, written by hand
    (``tf.custom_gradient``), as in a custom operation. ``planted_bug=True``
    forgets the second term, ``swish'(z) = s``: the layer still trains, only
    worse, and a gradient check catches it. ``l2`` puts an L2 penalty on the
    kernel; ``penalty_bug=True`` gives that penalty a hand-written derivative
    that forgets its factor 2 (``l2 * w`` instead of ``2 * l2 * w``): a check with
    ``regularization=False`` cannot see it, one with the penalty on does.

    Examples
    --------
    >>> layer = SwishDense(3, seed=0)
    >>> layer(np.zeros((2, 4), "float32")).shape
    TensorShape([2, 3])
    """

    def __init__(self, units: int, *, planted_bug: bool = False, l2: float = 0.0,
                 penalty_bug: bool = False, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = _check_positive_int(units, "units")
        self.planted_bug = bool(planted_bug)
        self.l2 = float(l2)
        self.penalty_bug = bool(penalty_bug)
        if self.penalty_bug and not self.l2 > 0:
            raise ValueError("penalty_bug: needs a penalty, l2 > 0")
        self.seed = seed

    def build(self, input_shape: Any) -> None:
        keras = import_keras()
        self.kernel = self.add_weight(
            name="kernel", shape=(int(input_shape[-1]), self.units),
            initializer=keras.initializers.GlorotNormal(seed=self.seed),
            regularizer=self._penalty(),
        )
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")

    def call(self, inputs: Any) -> Any:
        tf = import_tensorflow()
        planted_bug = self.planted_bug

        @tf.custom_gradient
        def swish(z: Any) -> Any:
            s = tf.sigmoid(z)

            def backward(upstream: Any) -> Any:
                if planted_bug:
                    return upstream * s  # the bug: forgets the z * s * (1 - s) term
                return upstream * (s + z * s * (1 - s))

            return z * s, backward

        return swish(tf.matmul(inputs, self.kernel) + self.bias)

    def compute_output_shape(self, input_shape: Any) -> tuple[Any, ...]:
        return (*tuple(input_shape)[:-1], self.units)

    def _penalty(self) -> Any:
        if not self.l2 > 0:
            return None
        if not self.penalty_bug:
            return import_keras().regularizers.L2(self.l2)
        tf = import_tensorflow()
        factor = self.l2

        @tf.custom_gradient
        def l2_with_a_bug(kernel: Any) -> Any:
            def backward(upstream: Any) -> Any:
                return upstream * factor * kernel  # the bug: d(l2 w^2)/dw is 2 l2 w

            return factor * tf.reduce_sum(tf.square(kernel)), backward

        # The penalty sees the kernel's value (a tensor), so the gradient flows through
        # the hand-written derivative back to the variable.
        return lambda kernel: l2_with_a_bug(tf.convert_to_tensor(kernel))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units, "planted_bug": self.planted_bug,
                "l2": self.l2, "penalty_bug": self.penalty_bug, "seed": self.seed}


# --------------------------------------------------------------------------- helpers


def _conv_kernel(model: Any, layer: str | None) -> tuple[np.ndarray, str]:
    """The kernel of the model's first ``Conv2D`` (or the one named ``layer``), and its name."""
    convs = [lay for lay in _iter_layers(model)
             if type(lay).__name__ == "Conv2D" and (layer is None or lay.name == layer)]
    if not convs:
        raise ValueError(f"model has no Conv2D layer{' named ' + repr(layer) if layer else ''}")
    return np.asarray(convs[0].kernel.numpy()), convs[0].name


def _check_model(model: Any) -> None:
    keras = import_keras()
    if not isinstance(model, keras.Model):
        raise ValueError(f"model: expected a keras.Model, got {type(model).__name__}")


def _check_positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)


def _as_array(x: Any, name: str, *, dtype: str = "float32") -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim < 2 or arr.dtype.kind not in "fiu":
        raise ValueError(f"{name}: expected a numeric array (samples, ...), got "
                         f"{arr.dtype} {arr.shape}")
    return arr.astype(dtype)


def _iter_layers(model: Any) -> Iterator[Any]:
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        if hasattr(layer, "layers") and type(layer).__name__ in ("Sequential", "Functional",
                                                                  "Model"):
            yield from _iter_layers(layer)
        else:
            yield layer


def _flat_weights(layer: Any) -> np.ndarray:
    return np.concatenate([np.ravel(np.asarray(w.numpy(), dtype=np.float64))
                           for w in layer.trainable_weights])


def _short_name(variable: Any) -> str:
    path = str(getattr(variable, "path", variable.name))
    return "/".join(path.split("/")[-2:])


_DROPOUTS = ("Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
             "GaussianDropout", "GaussianNoise", "AlphaDropout")


def _clone(model: Any, *, dtype: str | None = None, strip_regularization: bool = False) -> Any:
    """A copy of ``model`` with the same weights, optionally in ``dtype`` or unregularised."""
    keras = import_keras()

    def clone_layer(layer: Any) -> Any:
        kind = type(layer).__name__
        if strip_regularization and (kind in _DROPOUTS or kind.startswith("Random")):
            return keras.layers.Identity(name=layer.name)
        config = layer.get_config()
        if dtype is not None:
            config["dtype"] = dtype
        if strip_regularization:
            for key in ("kernel_regularizer", "bias_regularizer", "activity_regularizer", "l2"):
                if key in config:
                    config[key] = 0.0 if key == "l2" else None
        return layer.__class__.from_config(config)

    kwargs: dict[str, Any] = {"clone_function": clone_layer, "recursive": True}
    if dtype is not None:
        kwargs["input_tensors"] = keras.Input(model.input_shape[1:], dtype=dtype)
    clone = keras.models.clone_model(model, **kwargs)
    weights = model.get_weights()
    clone.set_weights([np.asarray(w, dtype=dtype) if dtype else w for w in weights])
    return clone


def _compiled_loss(model: Any) -> Any:
    keras = import_keras()
    loss = getattr(model, "loss", None)
    if loss is None or isinstance(loss, dict | list | tuple):
        return keras.losses.SparseCategoricalCrossentropy()
    return loss


def _loss_function(loss: Any, dtype: str) -> Callable[[Any, Any], Any]:
    """``loss`` as a function ``(y, outputs) -> scalar`` that computes in ``dtype``."""
    keras = import_keras()
    ops = keras.ops
    if isinstance(loss, str):
        loss = keras.losses.get(loss)
    def labels(y: Any) -> Any:
        integer = "int" in keras.backend.standardize_dtype(y.dtype)
        return ops.cast(y, "int64") if integer else ops.cast(y, dtype)

    if isinstance(loss, keras.losses.Loss):
        config = {**loss.get_config(), "dtype": dtype}
        loss_object = loss.__class__.from_config(config)
        return lambda y, p: loss_object(labels(y), p)
    if callable(loss):
        function = loss
        return lambda y, p: ops.mean(function(labels(y), p))
    raise ValueError(f"loss: expected a Keras loss (name, function or Loss), got {loss!r}")


def _fresh_optimizer(model: Any, optimizer: Any) -> Any:
    keras = import_keras()
    if optimizer is None:
        compiled = getattr(model, "optimizer", None)
        if compiled is None:
            return keras.optimizers.Adam(1e-3)
        optimizer = compiled
    if isinstance(optimizer, str):
        return keras.optimizers.get(optimizer)
    if isinstance(optimizer, keras.optimizers.Optimizer):
        return optimizer.__class__.from_config(optimizer.get_config())
    raise ValueError(f"optimizer: expected a Keras optimizer or its name, got {optimizer!r}")


def _learning_rate(optimizer: Any) -> float | None:
    try:
        return float(np.asarray(optimizer.learning_rate))
    except (AttributeError, TypeError, ValueError):  # pragma: no cover - schedules
        return None


def _cross_entropy(y: np.ndarray, scores: np.ndarray, *, from_logits: bool) -> float:
    if from_logits:
        shifted = scores - scores.max(axis=-1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    else:
        log_p = np.log(np.clip(scores, 1e-12, None))
    if y.ndim == 2 and y.shape == scores.shape:  # one-hot labels
        return float(-np.mean(np.sum(y * log_p, axis=-1)))
    labels = y.reshape(-1).astype(int)
    if len(labels) != len(scores):
        raise ValueError(f"y: expected {len(scores)} labels (one per sample), got {len(labels)}")
    return float(-np.mean(log_p[np.arange(len(labels)), labels]))


def _activation_outputs(model: Any, x: np.ndarray) -> dict[str, tuple[str, np.ndarray]]:
    """``{layer name: (relu|sigmoid|tanh, its output on x)}`` for the activated layers."""
    tf = import_tensorflow()
    keras = import_keras()
    found: dict[str, tuple[str, np.ndarray]] = {}

    def kind_of(layer: Any) -> str | None:
        if type(layer).__name__ == "ReLU":
            return "relu"
        activation = getattr(layer, "activation", None)
        name = getattr(activation, "__name__", None) if activation is not None else None
        return name if name in ("relu", "sigmoid", "tanh") else None

    def run_sequential(seq: Any, h: Any) -> Any:
        for layer in seq.layers:
            if isinstance(layer, keras.Sequential):
                h = run_sequential(layer, h)
                continue
            h = layer(h, training=False)
            kind = kind_of(layer)
            if kind:
                found[layer.name] = (kind, np.asarray(h))
        return h

    if isinstance(model, keras.Sequential):
        run_sequential(model, tf.constant(x))
        return found
    layers = [layer for layer in model.layers if kind_of(layer)]
    if layers:
        probe = keras.Model(model.inputs, [layer.output for layer in layers])
        values = probe(tf.constant(x), training=False)
        for layer, value in zip(layers, values, strict=True):
            found[layer.name] = (kind_of(layer), np.asarray(value))
    return found


def _read_data(data: Any, *, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` arrays from arrays or a ``tf.data.Dataset``, at most ``limit`` samples."""
    if isinstance(data, tuple | list) and len(data) == 2:
        x, y = np.asarray(data[0]), np.asarray(data[1])
    elif hasattr(data, "element_spec") and hasattr(data, "as_numpy_iterator"):
        xs, ys, count = [], [], 0
        batched = None
        for bx, by in data.as_numpy_iterator():
            bx, by = np.asarray(bx), np.asarray(by)
            if batched is None:
                batched = by.ndim >= 1 and len(by) == len(bx) and bx.ndim > by.ndim
            if not batched:
                bx, by = bx[None], by[None]
            xs.append(bx)
            ys.append(by)
            count += len(bx)
            if count >= limit:
                break
        if not xs:
            raise ValueError("data: the dataset is empty")
        x, y = np.concatenate(xs), np.concatenate(ys)
    else:
        raise ValueError(f"data: expected (x, y) arrays or a tf.data.Dataset of (x, y), got "
                         f"{type(data).__name__}")
    if len(x) != len(y):
        raise ValueError(f"data: {len(x)} samples but {len(y)} labels")
    if len(x) == 0:
        raise ValueError("data: no samples")
    return _as_array(x[:limit], "data x"), y[:limit]


# The Keras classes are assembled on first access (PEP 562), so importing this module
# stays free of TensorFlow until one is used.
_LAZY_CLASSES = {"UpdateRatioMonitor": (_UpdateRatioMonitor, "callbacks.Callback"),
                 "SwishDense": (_SwishDense, "layers.Layer")}

if TYPE_CHECKING:  # pragma: no cover

    class UpdateRatioMonitor(_UpdateRatioMonitor, keras.callbacks.Callback): ...

    class SwishDense(_SwishDense, keras.layers.Layer): ...


def _lazy_class(name: str) -> Any:
    return globals().get(name) or __getattr__(name)


def __getattr__(name: str) -> Any:
    return lazy_keras_class(globals(), _LAZY_CLASSES, name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_CLASSES))
