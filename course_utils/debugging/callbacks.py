"""The update-ratio monitor of lesson 05, a Keras callback.

This module imports Keras (and so TensorFlow) when it loads; ``course_utils.debugging``
loads it on first use of :class:`UpdateRatioMonitor`.

Examples
--------
>>> issubclass(UpdateRatioMonitor, keras.callbacks.Callback)
True
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from course_utils.models import iter_layers
from course_utils.runtime.tf_setup import import_keras

keras = import_keras()  # quietly: TensorFlow's start-up log stays hidden

__all__ = ["UpdateRatioMonitor"]


class UpdateRatioMonitor(keras.callbacks.Callback):
    """Record, per layer and per epoch, the size of the weight updates relative to the weights.

    For every layer with trainable weights (nested models are looked into),
    ``theta`` is all its trainable weights flattened together; each training
    step's ratio is ``||theta_after - theta_before|| / ||theta_before||``.
    ``ratios[layer name]`` gets the mean ratio over the steps of each epoch.
    Around ``1e-3`` is healthy; far above (``> 1e-1``) the learning rate is too
    high, far below (``< 1e-5``) too low.

    Examples
    --------
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
        return [layer for layer in iter_layers(self.model) if layer.trainable_weights]

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


def _flat_weights(layer: Any) -> np.ndarray:
    """All the trainable weights of ``layer``, flattened together, in float64."""
    return np.concatenate([np.ravel(np.asarray(w.numpy(), dtype=np.float64))
                           for w in layer.trainable_weights])
