"""What to watch while a network trains, and a plain deep network that shows what goes wrong.

- :func:`record_step_losses`: the raw loss of every mini-batch step (``fit`` only
  logs running means per epoch);
- :func:`gradient_norms`: the size of the gradient per layer, input to output, where
  vanishing and exploding gradients show;
- :func:`weight_roughness`: whether first-layer weights drawn as images look like
  noise or like smooth filters;
- :func:`build_plain_mlp`: a deep stack of dense layers with no batch normalisation,
  whose initial scale and activation make gradients explode or vanish.

The update-to-weight ratio per layer is measured by
:class:`~course_utils.debugging.callbacks.UpdateRatioMonitor`, a Keras callback.

Examples
--------
>>> model = build_plain_mlp(4, 3, depth=3, units=8, seed=0)
>>> norms = gradient_norms(model, np.ones((2, 4)), np.array([0, 1]))
>>> all(value > 0 for value in norms.values())
True
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from course_utils.debugging._common import (
    as_sample_array,
    compiled_loss,
    conv_kernel,
    loss_function,
    require_model,
    training_step,
)
from course_utils.models import iter_layers
from course_utils.runtime import seeds
from course_utils.runtime.checks import check_scalar
from course_utils.runtime.tf_setup import import_keras, import_tensorflow

if TYPE_CHECKING:  # pragma: no cover
    import keras

__all__ = ["build_plain_mlp", "gradient_norms", "record_step_losses", "weight_roughness"]


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
    require_model(model)
    x = as_sample_array(x, "x")
    loss_fn = loss_function(loss if loss is not None else compiled_loss(model), "float32")
    layers = [layer for layer in iter_layers(model) if layer.trainable_weights]
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
    require_model(model)
    batch_size = check_scalar(batch_size, "batch_size", int, min_val=1)
    steps = check_scalar(steps, "steps", int, min_val=1)
    x = as_sample_array(x, "x")
    y = np.asarray(y)
    loss_fn = loss_function(loss if loss is not None else compiled_loss(model), "float32")
    rng = seeds.make_rng(seed)
    if not optimizer.built:  # now, not inside the first trace (which would run twice)
        optimizer.build(model.trainable_variables)
    step = training_step(model, optimizer, loss_fn)
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
    input_dim = check_scalar(input_dim, "input_dim", int, min_val=1)
    num_classes = check_scalar(num_classes, "num_classes", int, min_val=1)
    depth = check_scalar(depth, "depth", int, min_val=1)
    units = check_scalar(units, "units", int, min_val=1)
    check_scalar(init_scale, "init_scale", float, min_val=0, include_boundaries="neither",
                 finite=True)
    layers = [keras.Input((input_dim,))]
    fan_in = input_dim
    for i in range(1, depth + 1):
        init = keras.initializers.RandomNormal(stddev=init_scale / math.sqrt(fan_in),
                                               seed=seeds.layer_seed(seed, i))
        layers.append(keras.layers.Dense(units, activation=activation, kernel_initializer=init,
                                         name=f"dense_{i}"))
        fan_in = units
    layers.append(keras.layers.Dense(
        num_classes, activation="softmax", name="output",
        kernel_initializer=keras.initializers.RandomNormal(stddev=0.01,
                                                           seed=seeds.layer_seed(seed, 0))))
    return keras.Sequential(layers, name=f"mlp_{activation}_{depth}")


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
        w = conv_kernel(model_or_kernel, layer)[0].astype(float)
    else:
        w = np.asarray(model_or_kernel, dtype=float)
    if w.ndim < 2 or w.shape[0] < 2 or w.shape[1] < 2:
        raise ValueError(f"weights: expected images of at least 2x2 along the first two axes, "
                         f"got shape {w.shape}")
    w = w.reshape(w.shape[0], w.shape[1], -1)
    variance = w.var(axis=(0, 1))
    if np.any(variance == 0):
        raise ValueError("weights: expected images that vary, got a constant one (its roughness is "
                         "undefined)")
    across_rows = np.mean(np.diff(w, axis=0) ** 2, axis=(0, 1))
    across_cols = np.mean(np.diff(w, axis=1) ** 2, axis=(0, 1))
    return float(np.median((across_rows + across_cols) / 2 / (2 * variance)))
