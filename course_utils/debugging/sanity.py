"""Three sanity checks from Karpathy's "recipe for training neural networks" and cs231n.

- :func:`check_input_dependence`: an input-independent baseline. The same network
  trained on inputs set to zero must do worse than on the real inputs; when it does
  not, the network (or the data it is fed) ignores what it is shown.
- :func:`check_batch_independence`: the gradient of one sample's output reaches that
  sample's input only. A layer that mixes samples (a reshape where a transpose was
  meant, a softmax over the batch axis) shows as gradient on the other samples.
- :func:`check_regularization_raises_loss`: at initialisation a stronger weight
  penalty gives a higher loss; when the loss does not move, the penalty never reaches
  the loss that training minimises.

Each returns a :class:`~course_utils.debugging.results.CheckResult` and never changes
the model it is given.

Examples
--------
>>> keras = import_keras()
>>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, "softmax")])
>>> check_batch_independence(model, np.ones((4, 3))).passed
True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from course_utils.debugging._common import (
    as_sample_array,
    compiled_copy,
    compiled_loss,
    loss_function,
    require_model,
    training_step,
)
from course_utils.debugging.results import CheckResult
from course_utils.runtime import seeds
from course_utils.runtime.checks import check_scalar
from course_utils.runtime.tf_setup import import_keras, import_tensorflow, set_seed

__all__ = ["check_batch_independence", "check_input_dependence",
           "check_regularization_raises_loss"]


def check_input_dependence(
    model: Any,
    x: Any,
    y: Any,
    *,
    samples: int = 32,
    steps: int = 30,
    learning_rate: float = 3e-3,
    fraction: float = 0.5,
    seed: int = 0,
) -> CheckResult:
    """Train the model on its inputs and on zeros: the real inputs must give a lower loss.

    Two copies of ``model`` with the same weights train with Adam at
    ``learning_rate`` for ``steps`` full-batch steps on the first ``samples``
    samples, one on ``x`` and one on ``x`` set to zero (the input-independent
    baseline, which can learn at best how often each label occurs). Passes when the
    training loss on the real inputs ends below ``fraction`` of the baseline's. A model
    that does not clearly beat the baseline learns little from its input: inputs that
    are (nearly) all zero or constant (a wrong scaling: integer division of uint8 pixels
    by 255 keeps only the pixels at 255), a layer that is not connected.
    ``details``: ``loss`` and ``baseline`` (the loss per step of each copy).

    Examples
    --------
    >>> keras = import_keras()
    >>> model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3, "softmax")])
    >>> x = np.random.default_rng(0).normal(size=(32, 6))
    >>> y = np.argmax(x[:, :3], axis=1)
    >>> check_input_dependence(model, x, y, learning_rate=0.1).passed
    True
    >>> check_input_dependence(model, 0 * x, y, learning_rate=0.1).message
    'trained on the inputs, the loss ends at ..., not below 0.5 of the loss on zeros (...): the model learns little from its inputs; look at the inputs it is fed (all zero or constant?) and at how the first layer is connected'
    """
    tf = import_tensorflow()
    keras = import_keras()
    require_model(model)
    samples = check_scalar(samples, "samples", int, min_val=1)
    steps = check_scalar(steps, "steps", int, min_val=1)
    check_scalar(fraction, "fraction", float, min_val=0, max_val=1, include_boundaries="right")
    x = as_sample_array(x, "x")[:samples]
    y = np.asarray(y)[:samples]
    if len(y) != len(x):
        raise ValueError(f"y: expected one label per sample ({len(x)}), got {len(y)}")
    # One compiled copy (shared by the checks of this network: its step is traced once)
    # trains on the inputs, is put back to its start, and trains on zeros: the same two
    # runs as with two fresh copies.
    set_seed(seed)
    copy = compiled_copy(model, keras.optimizers.Adam(learning_rate), compiled_loss(model))
    step = _INPUT_STEPS.get(id(copy))
    if step is None:
        step = _INPUT_STEPS[id(copy)] = training_step(
            copy, copy.optimizer, loss_function(copy.loss, "float32"))
    start = [(v, v.numpy()) for v in (*copy.variables, *copy.optimizer.variables)]

    def train(inputs: np.ndarray) -> list[float]:
        set_seed(seed)
        for variable, value in start:  # weights, dropout seeds, optimizer step and moments
            variable.assign(value)
        xt, yt = tf.constant(inputs), tf.constant(y)
        return [float(step(xt, yt)) for _ in range(steps)]

    real = train(x)
    baseline = train(np.zeros_like(x))
    passed = bool(real[-1] < fraction * baseline[-1])
    measured = f"loss {real[-1]:.3f}, on zeros {baseline[-1]:.3f}"
    message = (
        f"trained on the inputs, the loss ends far below the baseline on zeros ({measured})"
        if passed else
        f"trained on the inputs, the loss ends at {real[-1]:.3f}, not below {fraction:g} of the "
        f"loss on zeros ({baseline[-1]:.3f}): the model learns little from its inputs; look at "
        f"the inputs it is fed (all zero or constant?) and at how the first layer is connected")
    return CheckResult("input dependence", passed, measured,
                       f"< {fraction:g} x the loss on zeros", message,
                       {"loss": real, "baseline": baseline})


#: The traced step of each shared copy that :func:`check_input_dependence` trains.
_INPUT_STEPS: dict[int, Callable[[Any, Any], Any]] = {}


def check_batch_independence(model: Any, x: Any, *, index: int = 0,
                             training: bool = False) -> CheckResult:
    """Check that one sample's output depends on that sample's input only.

    Takes the gradient of a fixed random combination of sample ``index``'s outputs
    with respect to the whole batch ``x`` (with ``training`` as given: batch
    normalisation mixes the samples of a batch in training mode, by design). It
    must be zero for every other sample. Passes when the largest gradient on another
    sample is at most ``1e-6`` of the largest on sample ``index``. A layer that mixes
    samples, a reshape where a transpose was meant, a softmax or a normalisation
    over the batch axis, fails it. ``details``: ``gradient`` (the largest absolute
    gradient per sample).

    Examples
    --------
    >>> keras = import_keras()
    >>> mixing = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2),
    ...                            keras.layers.Softmax(axis=0)])
    >>> result = check_batch_independence(mixing, np.ones((4, 3)), index=1)
    >>> result.passed, result.measured
    (False, '3 other samples get gradient')
    """
    tf = import_tensorflow()
    require_model(model)
    x = as_sample_array(x, "x")
    if len(x) < 2:
        raise ValueError(f"x: expected a batch of at least 2 samples, got {len(x)}")
    index = check_scalar(index, "index", int, min_val=-len(x), max_val=len(x) - 1)
    index %= len(x)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        out = model(xt, training=training)
        weights = seeds.make_rng(0).normal(size=tuple(out.shape[1:])).astype("float32")
        value = tf.reduce_sum(out[index] * weights)
    grad = tape.gradient(value, xt)
    per_sample = (np.zeros(len(x)) if grad is None else
                  np.max(np.abs(np.asarray(grad)).reshape(len(x), -1), axis=1))
    own = float(per_sample[index])
    others = np.delete(per_sample, index)
    leaking = int(np.sum(others > 1e-6 * max(own, 1e-30)))
    passed = own > 0 and leaking == 0
    measured = (f"{leaking} other samples get gradient" if leaking else
                "no other sample gets gradient" if own > 0 else "no gradient at all")
    if passed:
        message = f"the output of sample {index} depends on its own input only"
    elif own == 0 and not leaking:
        message = (f"the output of sample {index} does not depend on any input: the model "
                   f"ignores what it is shown")
    else:
        message = (f"the output of sample {index} changes with the inputs of {leaking} other "
                   f"samples (largest gradient {float(others.max()):.1e} against {own:.1e} on its "
                   f"own): a layer mixes the samples of a batch (a reshape where a transpose was "
                   f"meant, a softmax or normalisation over the batch axis)")
    return CheckResult("batch independence", passed, measured, "no other sample gets gradient",
                       message, {"gradient": per_sample})


def check_regularization_raises_loss(
    build: Callable[[float], Any],
    x: Any,
    y: Any,
    *,
    strengths: Sequence[float] = (0.0, 1e-3, 1e-2, 1e-1),
    loss: Callable[[Any, Any, Any], Any] | None = None,
) -> CheckResult:
    """Check that a stronger weight penalty gives a higher loss at initialisation.

    ``build(strength)`` returns a new model with a penalty of that strength (the same
    initial weights for every strength); ``loss(model, x, y)`` is the loss your training
    minimises (default: the compiled or sparse categorical cross-entropy plus the
    penalties in ``model.losses``, as ``fit`` adds them). Passes when the loss grows with
    every larger strength in ``strengths``. A loss that stays the same means the penalty
    never reaches the loss training minimises: a hand-written training step that
    forgets ``model.losses``, a regulariser given to a layer that does not use it.
    ``details``: ``losses`` (one per strength).

    Examples
    --------
    >>> keras = import_keras()
    >>> def build(l2):
    ...     return keras.Sequential([keras.Input((3,)), keras.layers.Dense(
    ...         2, "softmax", kernel_regularizer=keras.regularizers.L2(l2),
    ...         kernel_initializer=keras.initializers.GlorotNormal(seed=0))])
    >>> x, y = np.ones((4, 3)), np.array([0, 1, 0, 1])
    >>> check_regularization_raises_loss(build, x, y).passed
    True
    """
    tf = import_tensorflow()
    strengths = [float(s) for s in strengths]
    if len(strengths) < 2 or np.any(np.diff(strengths) <= 0) or \
            not all(math.isfinite(s) and s >= 0 for s in strengths):
        raise ValueError(f"strengths: expected at least two increasing penalties >= 0, got "
                         f"{strengths}")
    x = as_sample_array(x, "x")
    y = np.asarray(y)

    def default_loss(model: Any, xb: Any, yb: Any) -> Any:
        value = loss_function(compiled_loss(model), "float32")(yb, model(xb, training=False))
        return value + tf.add_n(model.losses) if model.losses else value

    measure = loss if loss is not None else default_loss
    losses = []
    for strength in strengths:
        model = build(strength)
        require_model(model)
        losses.append(float(measure(model, tf.constant(x), tf.constant(y))))
    steps = np.diff(losses)
    passed = bool(np.all(steps > 0))
    shown = ", ".join(f"{v:.4f}" for v in losses)
    if passed:
        message = f"the loss grows with the penalty: {shown}"
    else:
        flat = int(np.argmin(steps))
        message = (f"the loss does not grow with the penalty ({shown} for strengths "
                   f"{', '.join(f'{s:g}' for s in strengths)}; from {strengths[flat]:g} to "
                   f"{strengths[flat + 1]:g} it changes by {steps[flat]:+.1e}): the penalty "
                   f"never reaches the loss that training minimises (add model.losses to it)")
    return CheckResult("regularisation raises the loss", passed, shown,
                       "grows with the strength", message, {"losses": np.array(losses)})
