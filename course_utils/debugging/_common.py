"""What the checks share: argument validation and the Keras plumbing behind them.

Private to :mod:`course_utils.debugging`: its modules import these, nothing else
does. Every error names the argument and what was expected (scalar arguments are
checked with :func:`course_utils.runtime.checks.check_scalar`; layers are walked with
:func:`course_utils.models.iter_layers`).

Examples
--------
>>> as_sample_array([[0, 1], [2, 3]], "x").dtype
dtype('float32')
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from course_utils.models import build_optimizer, iter_layers
from course_utils.runtime.tf_setup import import_keras, import_tensorflow
from course_utils.training import reuse_compiled_model

ModelOrBuilder = Any  # a keras.Model, or a function seed -> new keras.Model

# Layers that are random in training mode; a copy without regularisation drops them.
_DROPOUTS = ("Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
             "GaussianDropout", "GaussianNoise", "AlphaDropout")


# --------------------------------------------------------------------------- validation


def require_model(model: Any) -> None:
    """Raise ``ValueError`` unless ``model`` is a ``keras.Model``."""
    keras = import_keras()
    if not isinstance(model, keras.Model):
        raise ValueError(f"model: expected a keras.Model, got {type(model).__name__}")


def as_sample_array(x: Any, name: str, *, dtype: str = "float32") -> np.ndarray:
    """``x`` as a numeric array ``(samples, ...)`` of ``dtype``, else ``ValueError``."""
    arr = np.asarray(x)
    if arr.ndim < 2 or arr.dtype.kind not in "fiu":
        raise ValueError(f"{name}: expected a numeric array (samples, ...), got "
                         f"{arr.dtype} {arr.shape}")
    if len(arr) == 0:  # Keras fails on no samples with errors that name nothing
        raise ValueError(f"{name}: expected at least one sample, got none (shape {arr.shape})")
    return arr.astype(dtype)


# --------------------------------------------------------------------------- layers


def conv_kernel(model: Any, layer: str | None) -> tuple[np.ndarray, str]:
    """The kernel of the model's first ``Conv2D`` (or the one named ``layer``), and its name."""
    convs = [lay for lay in iter_layers(model)
             if type(lay).__name__ == "Conv2D" and (layer is None or lay.name == layer)]
    if not convs:
        raise ValueError(f"model: expected a Conv2D layer{' named ' + repr(layer) if layer else ''}"
                         f", got none")
    return np.asarray(convs[0].kernel.numpy()), convs[0].name


def clone_with_weights(model: Any, *, dtype: str | None = None,
                       strip_regularization: bool = False) -> Any:
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


def compiled_copy(model: Any, optimizer: Any, loss: Any) -> Any:
    """A copy of ``model`` (its weights) compiled with ``optimizer`` (new, unused) and ``loss``.

    The checks that train copies of one network (several rates, the preflight) share
    one compiled copy per set-up (architecture, optimizer, loss), given the weights of
    each new copy, so that its training step is traced once
    (:func:`course_utils.training.reuse_compiled_model`): keep what a check measures,
    not the copy, which the next check of the same set-up trains again.
    """
    return _shared_copy(model, optimizer, loss)


def _compile_copy(model: Any, optimizer: Any, loss: Any) -> Any:
    clone = clone_with_weights(model)
    clone.compile(optimizer=optimizer, loss=loss)
    return build_optimizer(clone)


_shared_copy = reuse_compiled_model(_compile_copy)



def training_step(model: Any, optimizer: Any, loss_fn: Callable[[Any, Any], Any]
                  ) -> Callable[[Any, Any], Any]:
    """One traced step of plain gradient descent on ``model``'s trainable weights with
    ``optimizer`` (built for them): ``step(x, y)`` returns the batch's loss before the
    update. The checks that watch every step train with it instead of ``fit``."""
    tf = import_tensorflow()
    variables = model.trainable_variables

    @tf.function
    def step(xb: Any, yb: Any) -> Any:
        with tf.GradientTape() as tape:
            value = loss_fn(yb, model(xb, training=True))
        optimizer.apply_gradients(zip(tape.gradient(value, variables), variables, strict=True))
        return value

    return step

# --------------------------------------------------------------------------- losses


def compiled_loss(model: Any) -> Any:
    """The model's compiled loss, or sparse categorical cross-entropy when it has none."""
    keras = import_keras()
    loss = getattr(model, "loss", None)
    if loss is None or isinstance(loss, dict | list | tuple):
        return keras.losses.SparseCategoricalCrossentropy()
    return loss


def loss_function(loss: Any, dtype: str) -> Callable[[Any, Any], Any]:
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
