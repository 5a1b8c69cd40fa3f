"""Training set-ups with planted bugs, for the find-the-bug exercise of lesson 05.

:func:`make_setup` builds a :class:`TrainingSetup`: a compiled classifier, the data it
would train on and the input pipeline of its full run. Every set-up looks alike from the
outside (the same layers, names and kinds of objects); only the checks of the lesson tell
which is sound and which hides one of the :data:`BUGS`:

- ``"initialisation"``: a last layer whose weights are hundreds of times too large, so
  the untrained model is confidently wrong (the initial-loss check);
- ``"learning rate"``: a learning rate far too high (the update-ratio check);
- ``"dead units"``: a hidden ReLU layer whose biases are so negative that it never fires
  (the dead-unit check; nothing learns through it, so the update ratios are tiny and the
  tiny subset cannot be fitted either);
- ``"pipeline"``: an input pipeline that shuffles images and labels separately (the
  tiny-subset check run through the pipeline; everything else is sound).

Examples
--------
>>> import numpy as np
>>> x, y = np.random.default_rng(0).normal(size=(40, 6)), np.arange(40) % 4
>>> setup = make_setup("none", x, y, seed=0)
>>> setup.model.output_shape, len(setup.x)
((None, 4), 40)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Final

import numpy as np

from course_utils.debugging._common import as_sample_array
from course_utils.runtime import seeds
from course_utils.runtime.checks import check_choice, check_scalar
from course_utils.runtime.tf_setup import import_keras, import_tensorflow

__all__ = ["BUGS", "TrainingSetup", "make_setup"]

#: What can be wrong with a set-up of :func:`make_setup` (``"none"``: nothing).
BUGS: Final = ("none", "initialisation", "learning rate", "dead units", "pipeline")


@dataclasses.dataclass(frozen=True)
class TrainingSetup:
    """A classifier ready to train: the compiled ``model`` (its optimizer holds the
    learning rate, its loss is sparse categorical cross-entropy), the training data
    ``x, y`` and ``pipeline``, the function ``(x, y) -> tf.data.Dataset`` of batches
    that its full run would train on (pass it to the tiny-subset check to test it)."""

    model: Any
    x: np.ndarray
    y: np.ndarray
    pipeline: Callable[[np.ndarray, np.ndarray], Any]


def make_setup(bug: str, x: Any, y: Any, *, seed: int = 0, units: int = 32,
               batch_size: int = 32) -> TrainingSetup:
    """A :class:`TrainingSetup` on ``(x, y)`` with the planted ``bug`` (one of :data:`BUGS`).

    The model is ``Flatten``, two ``Dense(units, relu)`` layers and a softmax layer
    with one unit per class of ``y`` (``max(y) + 1``), initialised from ``seed``
    (small softmax weights), compiled with Adam at 1e-3. The pipeline shuffles the
    pairs ``(x, y)`` (seeded) and batches them by ``batch_size``. Each bug changes
    one of these, as the module docstring says; the set-up does not say which.

    Examples
    --------
    >>> x, y = np.random.default_rng(0).normal(size=(40, 6)), np.arange(40) % 4
    >>> setup = make_setup("dead units", x, y, seed=1)
    >>> float(np.max(setup.model.predict(x, verbose=0)) - 0.25) < 1e-6
    True
    """
    keras = import_keras()
    check_choice(bug, "bug", BUGS)
    units = check_scalar(units, "units", int, min_val=1)
    batch_size = check_scalar(batch_size, "batch_size", int, min_val=1)
    x = as_sample_array(x, "x")
    y = np.asarray(y).reshape(-1).astype("int64")
    if len(y) != len(x) or len(y) == 0:
        raise ValueError(f"y: expected one label per sample ({len(x)}), got {len(y)}")
    num_classes = int(y.max()) + 1
    rng = seeds.make_rng(seed)

    def dense(n: int, index: int, **kwargs: Any) -> Any:
        return keras.layers.Dense(n, kernel_initializer=keras.initializers.HeNormal(
            seed=seeds.layer_seed(seed, index)), **kwargs)

    model = keras.Sequential([
        keras.Input(x.shape[1:]),
        keras.layers.Flatten(name="flatten"),
        dense(units, 1, activation="relu", name="hidden_1"),
        dense(units, 2, activation="relu", name="hidden_2"),
        keras.layers.Dense(num_classes, activation="softmax", name="predictions",
                           kernel_initializer=keras.initializers.RandomNormal(
                               stddev=0.01, seed=seeds.layer_seed(seed, 3))),
    ], name="classifier")
    rate = 1e-3
    if bug == "initialisation":  # a last layer of standard deviation 3 instead of 0.01
        kernel = model.get_layer("predictions").kernel
        kernel.assign(kernel * float(rng.uniform(200.0, 500.0)))
    elif bug == "learning rate":
        rate = float(rng.choice([0.5, 1.0, 3.0]))
    elif bug == "dead units":  # biases far below anything the weighted sums reach
        layer = model.get_layer(str(rng.choice(["hidden_1", "hidden_2"])))
        layer.bias.assign(np.full(units, -1e3, dtype="float32"))
    model.compile(optimizer=keras.optimizers.Adam(rate),
                  loss=keras.losses.SparseCategoricalCrossentropy())
    pipeline_seed = int(rng.integers(2**31))
    pipeline = (_shuffled_apart if bug == "pipeline" else _shuffled_together)(
        batch_size, pipeline_seed)
    return TrainingSetup(model, x, y, pipeline)


def _shuffled_together(batch_size: int, seed: int) -> Callable[[Any, Any], Any]:
    def pipeline(x: Any, y: Any) -> Any:
        tf = import_tensorflow()
        pairs = tf.data.Dataset.from_tensor_slices((x, y))
        return pairs.shuffle(len(x), seed=seed).batch(batch_size)

    return pipeline


def _shuffled_apart(batch_size: int, seed: int) -> Callable[[Any, Any], Any]:
    def pipeline(x: Any, y: Any) -> Any:
        tf = import_tensorflow()
        images = tf.data.Dataset.from_tensor_slices(x).shuffle(len(x), seed=seed)
        labels = tf.data.Dataset.from_tensor_slices(y).shuffle(len(y), seed=seed + 1)
        return tf.data.Dataset.zip((images, labels)).batch(batch_size)

    return pipeline
