"""Lesson 02's Keras callback: :class:`ExtraValidation`, a second validation curve.

This module imports Keras (and so TensorFlow) when it loads; ``course_utils.overfitting``
loads it on first use of :class:`ExtraValidation`.

Examples
--------
>>> issubclass(ExtraValidation, keras.callbacks.Callback)
True
"""

from __future__ import annotations

from typing import Any

from course_utils.runtime.tf_setup import import_keras

keras = import_keras()  # quietly: TensorFlow's start-up log stays hidden

__all__ = ["ExtraValidation"]


class ExtraValidation(keras.callbacks.Callback):
    """Evaluate the model on a second validation set after every epoch.

    The results are added to the epoch's logs as ``{prefix}_loss``,
    ``{prefix}_accuracy``..., so they land in the ``History`` next to
    ``val_loss``. One training run thus shows two validation curves, and how
    much a verdict on the curves depends on the validation data.

    ``data`` is what ``model.evaluate`` takes: a ``tf.data.Dataset`` of
    ``(images, labels)`` batches or a tuple ``(images, labels)``.

    Examples
    --------
    >>> import numpy as np
    >>> from course_utils import models
    >>> model = models.compile_classifier(
    ...     models.build_fingers_cnn((16, 16, 1), 12, depth=1, width=4, seed=0))
    >>> x, y = np.zeros((8, 16, 16, 1), "float32"), np.arange(8)
    >>> h = model.fit(x, y, epochs=2, verbose=0, callbacks=[ExtraValidation((x, y), prefix="other")])
    >>> len(h.history["other_loss"])
    2
    """

    def __init__(self, data: Any, *, prefix: str = "other_val") -> None:
        super().__init__()
        if not isinstance(prefix, str) or not prefix.isidentifier():
            raise ValueError(f"prefix: expected a name such as 'other_val', got {prefix!r}")
        if prefix == "val":
            raise ValueError("prefix: 'val' would overwrite Keras' own validation results")
        self.data = data
        self.prefix = prefix

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is None:
            return
        if isinstance(self.data, tuple):
            results = self.model.evaluate(*self.data, verbose=0, return_dict=True)
        else:
            results = self.model.evaluate(self.data, verbose=0, return_dict=True)
        for key, value in results.items():
            logs[f"{self.prefix}_{key}"] = float(value)
