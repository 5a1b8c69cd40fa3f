"""The checks before training, besides the gradient check: each returns a :class:`CheckResult`.

- **initial loss** (:func:`expected_initial_loss`, :func:`check_initial_loss`): an
  untrained classifier guesses, so its cross-entropy is ``-ln(1/C) = ln C``;
- **tiny-subset overfit** (:func:`check_tiny_subset_overfit`): with regularisation
  off, a network must fit 5 to 20 samples to a loss near zero;
- **update ratios** (:func:`check_update_ratios`): the size of a weight update
  relative to the weights, per layer, is near 1e-3 when the learning rate is sound;
- **dead units** (:func:`find_dead_units`, :func:`find_saturated_units`,
  :func:`check_dead_units`): ReLUs that never fire, sigmoids stuck at 0 or 1.

Examples
--------
>>> round(expected_initial_loss(12), 4)
2.4849
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from course_utils import models
from course_utils.debugging._common import (
    ModelOrBuilder,
    as_sample_array,
    clone_with_weights,
    compiled_copy,
    compiled_loss,
    loss_function,
    require_model,
)
from course_utils.debugging.results import CheckResult
from course_utils.runtime.checks import check_scalar
from course_utils.runtime.tf_setup import import_keras, import_tensorflow, set_seed

__all__ = [
    "UPDATE_RATIO_BAND",
    "check_dead_units",
    "check_initial_loss",
    "check_tiny_subset_overfit",
    "check_update_ratios",
    "expected_initial_loss",
    "find_dead_units",
    "find_saturated_units",
]

#: Healthy band of the update-to-weight ratio (rule of thumb: about 1e-3).
UPDATE_RATIO_BAND = (1e-5, 1e-1)


# --------------------------------------------------------------------------- initial loss


def expected_initial_loss(num_classes: int) -> float:
    """Cross-entropy of a classifier that gives every class ``1/C``: ``-ln(1/C) = ln C``.

    Examples
    --------
    >>> round(expected_initial_loss(10), 4)
    2.3026
    """
    num_classes = check_scalar(num_classes, "num_classes", int, min_val=2)
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
    check_scalar(tolerance, "tolerance", float, min_val=0, include_boundaries="neither",
                 finite=True)  # in nats
    if isinstance(model, keras.Model):
        built = [model]
        labels = ["the model"]
    elif callable(model):
        seeds = [int(s) for s in seeds]
        if not seeds:
            raise ValueError("seeds: expected at least one seed, got none")
        built = [model(seed) for seed in seeds]
        labels = [f"seed {seed}" for seed in seeds]
    else:
        raise ValueError(f"model: expected a keras.Model or a function seed -> model, got "
                         f"{type(model).__name__}")
    x = as_sample_array(x, "x")
    y = np.asarray(y)
    losses = []
    num_classes = 0
    for net in built:
        require_model(net)
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
    regularization: bool = False,
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
    so bugs in the pipeline show too. ``regularization=True`` keeps the model as it is
    (dropout on, weight penalties added to the loss): whether a set-up can fit the
    subset as it stands.

    ``details``: ``loss`` and ``accuracy`` per step.

    Examples
    --------
    >>> from course_utils import models                                    # doctest: +SKIP
    >>> model = models.build_fingers_cnn((32, 32, 1), 12, seed=0)         # doctest: +SKIP
    >>> check_tiny_subset_overfit(model, x, y).passed                    # doctest: +SKIP
    True
    """
    keras = import_keras()
    require_model(model)
    samples = check_scalar(samples, "samples", int, min_val=1)
    max_steps = check_scalar(max_steps, "max_steps", int, min_val=1)
    x = as_sample_array(x, "x")
    y = np.asarray(y)
    if len(x) < samples or len(y) != len(x):
        raise ValueError(f"x, y: expected at least samples={samples} samples with one label "
                         f"each, got {len(x)} samples and {len(y)} labels")
    x_small, y_small = x[:samples], y[:samples]
    set_seed(seed)
    tf = import_tensorflow()
    clone = clone_with_weights(model, strip_regularization=not regularization)
    if not clone.trainable_weights:
        return CheckResult("tiny-subset overfit", False, "no trainable weights",
                           f"loss <= {target_loss:g}, 100% right",
                           "the model has no trainable weights: every layer is frozen")
    loss_fn = loss_function(loss if loss is not None else compiled_loss(model), "float32")
    optimizer = keras.optimizers.Adam(learning_rate)
    variables = clone.trainable_variables
    optimizer.build(variables)  # now, not inside the first trace (which would run twice)

    @tf.function
    def train_step(xb: Any, yb: Any) -> tuple[Any, Any]:
        with tf.GradientTape() as tape:
            scores = clone(xb, training=True)
            value = loss_fn(yb, scores)
            if clone.losses:  # weight penalties: none unless regularization
                value = value + tf.add_n(clone.losses)
        optimizer.apply_gradients(zip(tape.gradient(value, variables), variables, strict=True))
        guess = tf.argmax(scores, axis=-1)
        truth = tf.argmax(yb, axis=-1) if len(yb.shape) == 2 and yb.shape[-1] > 1 else \
            tf.reshape(tf.cast(yb, guess.dtype), [-1])
        return value, tf.reduce_sum(tf.cast(tf.equal(guess, truth), "float32"))

    losses: list[float] = []
    accuracy: list[float] = []
    epochs = _epochs([(x_small, y_small)] if pipeline is None else pipeline(x_small, y_small))
    for _ in range(max_steps):  # one epoch: one batch unless the pipeline makes several
        values, right, seen = [], 0.0, 0
        for xb, yb in next(epochs):
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
    from course_utils.debugging.callbacks import UpdateRatioMonitor  # a Keras class: loads Keras

    require_model(model)
    batch_size = check_scalar(batch_size, "batch_size", int, min_val=1)
    steps = check_scalar(steps, "steps", int, min_val=1)
    try:
        low, high = (float(v) for v in band)
    except (TypeError, ValueError):
        low = high = math.nan
    if not 0 < low < high:
        raise ValueError(f"band: expected (low, high) with 0 < low < high, got {band!r}")
    x = as_sample_array(x, "x")[: batch_size * steps]
    y = np.asarray(y)[: batch_size * steps]
    clone = compiled_copy(model, _fresh_optimizer(model, optimizer),
                          loss if loss is not None else compiled_loss(model))
    monitor = UpdateRatioMonitor()
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
    lr = models.current_learning_rate(clone.optimizer)
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
    >>> from course_utils.debugging import build_plain_mlp
    >>> model = build_plain_mlp(4, 3, depth=2, units=8, seed=0)
    >>> x = np.random.default_rng(0).normal(size=(32, 4))
    >>> check_dead_units(model, x).passed
    True
    >>> _ = model.get_layer("dense_2").bias.assign(-100.0 * np.ones(8))
    >>> check_dead_units(model, x).message
    "layer 'dense_2': 100% of its units are dead (dead ReLUs pass no gradient: ...)"
    """
    require_model(model)
    check_scalar(max_fraction, "max_fraction", float, min_val=0, max_val=1,
                 include_boundaries="right")
    x = as_sample_array(x, "x")[: check_scalar(batch_size, "batch_size", int, min_val=1)]
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


# --------------------------------------------------------------------------- helpers


def _epochs(batches: Any) -> Iterator[Any]:
    """Each epoch's batches of ``batches`` (a list, or a ``tf.data.Dataset``), without end.

    A dataset of known length is read through one iterator of ``batches.repeat()``, that
    many batches an epoch: a new iterator for every epoch (what ``for b in dataset`` makes)
    costs more than a training step of a small network: about 16 ms for a shuffling
    pipeline of ten samples. Each repetition reshuffles as a new iteration would. A dataset
    of unknown length is iterated afresh every epoch.

    >>> epochs = _epochs([(1, 2)])  # a list is every epoch's batches
    >>> next(epochs), next(epochs)
    ([(1, 2)], [(1, 2)])
    """
    length = int(batches.cardinality()) if hasattr(batches, "cardinality") else -1
    if length > 0:
        stream = iter(batches.repeat())
        while True:
            yield [next(stream) for _ in range(length)]
    while True:
        yield batches


def _cross_entropy(y: np.ndarray, scores: np.ndarray, *, from_logits: bool) -> float:
    """Mean cross-entropy of ``scores`` (probabilities or logits) against the labels ``y``."""
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


def _fresh_optimizer(model: Any, optimizer: Any) -> Any:
    """A new optimizer like ``optimizer`` (default: the compiled one, else Adam at 1e-3)."""
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
