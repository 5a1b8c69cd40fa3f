"""The custom layer of lesson 05, with a hand-written derivative and bugs to plant in it.

:class:`SwishDense` is an ordinary Keras layer: registered as
``course_utils>SwishDense``, with a ``get_config``, so ``keras.saving.load_model``
restores a model that holds one once this module is loaded (``course_utils.debugging``
loads it on first use of :class:`SwishDense`; in a new process, touch
``debugging.SwishDense`` or import this module before loading). This module imports
Keras (and so TensorFlow) when it loads.

Examples
--------
>>> keras.saving.get_registered_name(SwishDense)
'course_utils>SwishDense'
"""

from __future__ import annotations

from typing import Any

from course_utils.runtime.checks import check_scalar
from course_utils.runtime.tf_setup import import_keras, import_tensorflow

keras = import_keras()  # quietly: TensorFlow's start-up log stays hidden

__all__ = ["SwishDense"]


@keras.saving.register_keras_serializable(package="course_utils")
class SwishDense(keras.layers.Layer):
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
    >>> import numpy as np
    >>> layer = SwishDense(3, seed=0)
    >>> layer(np.zeros((2, 4), "float32")).shape
    TensorShape([2, 3])
    """

    def __init__(self, units: int, *, planted_bug: bool = False, l2: float = 0.0,
                 penalty_bug: bool = False, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = check_scalar(units, "units", int, min_val=1)
        self.planted_bug = bool(planted_bug)
        self.l2 = check_scalar(l2, "l2", float, min_val=0)
        self.penalty_bug = bool(penalty_bug)
        if self.penalty_bug and not self.l2 > 0:
            raise ValueError(f"l2: expected a penalty > 0 with penalty_bug=True, got {l2!r}")
        self.seed = seed

    def build(self, input_shape: Any) -> None:
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
            return keras.regularizers.L2(self.l2)
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
