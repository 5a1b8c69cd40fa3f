"""The reference fingers CNN and a dense head for transfer learning.

One builder serves every lesson: its arguments (depth, width, batch norm,
dropout, L2) are the knobs lesson 02 turns to show under- and overfitting
remedies on the same model, and lesson 04 cuts the trained network at its
``flatten`` layer to reuse it on a new task.

The architecture follows the workflow rules of lesson 00:

* every layer that computes has an activation (ReLU inside, softmax last);
* the image is flattened once, right before the dense (fully connected) layers;
* the last dense layer has one unit per class.

Layer names are stable, so notebooks and tests can address them::

    block1_conv1 -> block1_bn1 -> block1_pool      (width filters)
    block2_conv1 -> block2_bn1 -> block2_pool      (2 x width filters)
    ...                                            (width doubles per block)
    flatten -> fc1 -> fc1_dropout -> predictions   (softmax, num_classes units)

Batch normalisation sits after each ReLU (``axis=-1``: channels last); it is
left out with ``batch_norm=False``. ``dropout`` is the rate of ``fc1_dropout``.

The defaults (3 blocks of 16, 32 and 64 filters, ``fc1`` of 128 units) train a
full run of the ``cpu`` profile (its image size and ``epochs``, see
:mod:`course_utils.runtime.profiles`) in about a minute on two cores; ``width=32`` doubles
the filters for about twice the time. Most parameters sit in ``fc1``, so their
number grows with the image area. Without ``input_shape`` the model takes the
active profile's (:func:`course_utils.runtime.profiles.get_profile`).
The softmax layer starts with small weights, so an untrained model scores every
class alike and its loss is ``ln(num_classes)`` (lesson 05's initialisation check).

Examples
--------
>>> from course_utils import models
>>> model = models.compile_classifier(models.build_fingers_cnn((32, 32, 1), 12, seed=0))
>>> model.output_shape
(None, 12)
>>> model.loss.name
'sparse_categorical_crossentropy'
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from course_utils.runtime import profiles, seeds
from course_utils.runtime.checks import check_scalar
from course_utils.runtime.tf_setup import import_keras

if TYPE_CHECKING:  # pragma: no cover
    import keras

__all__ = [
    "build_dense_head",
    "build_fingers_cnn",
    "build_optimizer",
    "compile_classifier",
    "current_learning_rate",
    "iter_layers",
]


def build_fingers_cnn(
    input_shape: Sequence[int] | None = None,
    num_classes: int = 12,
    *,
    depth: int = 3,
    width: int = 16,
    batch_norm: bool = True,
    dropout: float = 0.25,
    l2: float = 0.0,
    l1: float = 0.0,
    dense_units: int = 128,
    seed: int | None = None,
    name: str = "fingers_cnn",
) -> keras.Model:
    """Build the reference fingers-count CNN (uncompiled).

    Block ``i`` (1-based) is ``Conv2D(width * 2**(i-1), 3x3, ReLU)``, then
    ``BatchNormalization`` when ``batch_norm``, then ``MaxPooling2D(2)``. The
    head is ``Flatten``, ``Dense(dense_units, ReLU)``, ``Dropout(dropout)`` and
    ``Dense(num_classes, softmax)``.

    Parameters
    ----------
    input_shape: ``(rows, cols, channels)`` of one image; default: the active
        profile's ``input_shape`` (:func:`course_utils.runtime.profiles.get_profile`).
    num_classes: units of the softmax layer (12 for the fingers labels).
    depth: number of convolution blocks; each halves the image side.
    width: filters of the first block; doubled in every following block.
    batch_norm: add a batch-normalisation layer after every convolution.
    dropout: dropout rate before the softmax layer, in ``[0, 1)``; 0 keeps the
        layer as a no-op so layer names do not depend on it.
    l2: L2 penalty factor on every kernel (0 for none); the penalties appear in
        ``model.losses`` and are added to the training loss.
    l1: L1 penalty factor on every kernel (0 for none), alone or beside ``l2``
        (one ``L1L2`` regulariser per kernel then).
    dense_units: units of the hidden dense layer ``fc1``.
    seed: makes the initial weights (and the dropout masks) reproducible;
        ``None`` draws fresh ones (pass ``profile.seed`` for the course's seed).
    name: the model's name.

    Raises ``ValueError`` naming the argument when a value is out of range.

    Examples
    --------
    >>> model = build_fingers_cnn((32, 32, 1), 12, depth=2, width=8, seed=0)
    >>> [layer.name for layer in model.layers][1:4]
    ['block1_conv1', 'block1_bn1', 'block1_pool']
    >>> model.get_layer("flatten").output.shape
    (None, 1024)
    >>> model.output_shape
    (None, 12)
    """
    if input_shape is None:
        input_shape = profiles.get_profile().input_shape
    shape = _check_input_shape(input_shape)
    num_classes = check_scalar(num_classes, "num_classes", int, min_val=2)
    depth = check_scalar(depth, "depth", int, min_val=1)
    width = check_scalar(width, "width", int, min_val=1)
    dense_units = check_scalar(dense_units, "dense_units", int, min_val=1)
    dropout = check_scalar(dropout, "dropout", float, min_val=0, max_val=1,
                           include_boundaries="left")
    l2 = check_scalar(l2, "l2", float, min_val=0)
    l1 = check_scalar(l1, "l1", float, min_val=0)
    smallest = min(shape[0], shape[1])
    if smallest // 2**depth < 1:
        raise ValueError(
            f"depth={depth} halves the image {depth} times, but input_shape {shape} has a side of "
            f"{smallest}; expected depth <= {max(smallest.bit_length() - 1, 0)} for this size"
        )
    if seed is not None:
        seed = check_scalar(seed, "seed", int, min_val=0)

    keras = import_keras()
    layers = keras.layers
    layer_seeds = _layer_seeds(seed)

    def regularizer() -> Any:
        if l1 > 0:
            return keras.regularizers.L1L2(l1=l1, l2=l2)
        return keras.regularizers.L2(l2) if l2 > 0 else None

    inputs = keras.Input(shape=shape, name="image")
    x = inputs
    for block in range(1, depth + 1):
        filters = width * 2 ** (block - 1)
        x = layers.Conv2D(
            filters, 3, padding="same", activation="relu",
            kernel_initializer=keras.initializers.HeNormal(seed=next(layer_seeds)),
            kernel_regularizer=regularizer(), name=f"block{block}_conv1",
        )(x)
        if batch_norm:
            x = layers.BatchNormalization(axis=-1, name=f"block{block}_bn1")(x)
        x = layers.MaxPooling2D(2, name=f"block{block}_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(
        dense_units, activation="relu",
        kernel_initializer=keras.initializers.HeNormal(seed=next(layer_seeds)),
        kernel_regularizer=regularizer(), name="fc1",
    )(x)
    x = layers.Dropout(dropout, seed=next(layer_seeds), name="fc1_dropout")(x)
    outputs = layers.Dense(
        num_classes, activation="softmax",
        kernel_initializer=_small_initializer(keras, next(layer_seeds)),
        kernel_regularizer=regularizer(), name="predictions",
    )(x)
    return keras.Model(inputs, outputs, name=name)


def build_dense_head(
    num_classes: int,
    *,
    units: int = 128,
    dropout: float = 0.5,
    name: str = "head",
    seed: int | None = None,
) -> keras.Sequential:
    """A new, randomly initialised classifier head to put on a cut base network.

    ``Flatten -> Dense(units, ReLU) -> Dropout(dropout) -> Dense(num_classes,
    softmax)``; the layers are named ``{name}_flatten``, ``{name}_fc1``,
    ``{name}_dropout`` and ``{name}_predictions`` so they never clash with the
    base's. The head builds itself on first call, whatever the base's output.

    Examples
    --------
    >>> head = build_dense_head(12, units=16, seed=0)
    >>> [layer.name for layer in head.layers]
    ['head_flatten', 'head_fc1', 'head_dropout', 'head_predictions']
    >>> head(np.zeros((2, 4, 4, 8), "float32")).shape
    TensorShape([2, 12])
    """
    num_classes = check_scalar(num_classes, "num_classes", int, min_val=2)
    units = check_scalar(units, "units", int, min_val=1)
    dropout = check_scalar(dropout, "dropout", float, min_val=0, max_val=1,
                           include_boundaries="left")
    if seed is not None:
        seed = check_scalar(seed, "seed", int, min_val=0)
    keras = import_keras()
    layers = keras.layers
    layer_seeds = _layer_seeds(seed)
    return keras.Sequential(
        [
            layers.Flatten(name=f"{name}_flatten"),
            layers.Dense(
                units, activation="relu",
                kernel_initializer=keras.initializers.HeNormal(seed=next(layer_seeds)),
                name=f"{name}_fc1",
            ),
            layers.Dropout(dropout, seed=next(layer_seeds), name=f"{name}_dropout"),
            layers.Dense(
                num_classes, activation="softmax",
                kernel_initializer=_small_initializer(keras, next(layer_seeds)),
                name=f"{name}_predictions",
            ),
        ],
        name=name,
    )


def compile_classifier(
    model: keras.Model,
    *,
    optimizer: str | Any = "adam",
    learning_rate: float | Any = 1e-3,
) -> keras.Model:
    """Compile ``model`` for integer labels and return it.

    Loss: sparse categorical cross-entropy (the model outputs probabilities).
    Metrics: ``accuracy`` (rank-1) and ``rank5_accuracy`` (the label is among
    the five highest scores, ``SparseTopKCategoricalAccuracy(k=5)``).

    ``optimizer`` is a Keras optimizer name (``"adam"``, ``"sgd"``,
    ``"rmsprop"``...), built with ``learning_rate`` (a float or a
    ``keras.optimizers.schedules.LearningRateSchedule``), or a ready optimizer
    instance, used as it is (``learning_rate`` is then ignored).

    Examples
    --------
    >>> model = compile_classifier(build_fingers_cnn((16, 16, 1), 12, depth=1, width=4))
    >>> type(model.optimizer).__name__, round(float(model.optimizer.learning_rate), 6)
    ('Adam', 0.001)
    >>> x, y = np.zeros((2, 16, 16, 1), "float32"), np.array([0, 1])
    >>> sorted(model.evaluate(x, y, verbose=0, return_dict=True))
    ['accuracy', 'loss', 'rank5_accuracy']
    """
    keras = import_keras()
    if not isinstance(model, keras.Model):
        raise ValueError(f"model: expected a keras.Model, got {type(model).__name__}")
    if isinstance(optimizer, str):
        if not isinstance(learning_rate, keras.optimizers.schedules.LearningRateSchedule):
            if isinstance(learning_rate, bool) or not isinstance(learning_rate, int | float):
                raise ValueError(
                    f"learning_rate: expected a number > 0 or a LearningRateSchedule, "
                    f"got {learning_rate!r}"
                )
            learning_rate = check_scalar(learning_rate, "learning_rate", float, min_val=0,
                                         include_boundaries="neither")
        try:
            optimizer = keras.optimizers.get(
                {"class_name": optimizer, "config": {"learning_rate": learning_rate}}
            )
        except ValueError as exc:
            raise ValueError(
                f"optimizer: unknown Keras optimizer {optimizer!r}; expected a name such as "
                f"'adam', 'sgd' or 'rmsprop', or an optimizer instance"
            ) from exc
    elif not isinstance(optimizer, keras.optimizers.Optimizer):
        raise ValueError(
            f"optimizer: expected an optimizer name or a keras.optimizers.Optimizer, "
            f"got {type(optimizer).__name__}"
        )
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=[
            keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
            keras.metrics.SparseTopKCategoricalAccuracy(k=5, name="rank5_accuracy"),
        ],
    )
    return build_optimizer(model)


def build_optimizer(model: keras.Model) -> keras.Model:
    """Create a compiled model's optimizer state (its slots) now, and return ``model``.

    Keras otherwise creates the optimizer's variables inside the first training
    step, and TensorFlow then traces that step twice: once while creating them,
    once without. Creating them beforehand halves what the first ``fit`` spends
    on tracing (about 0.35 s per model on two CPU cores, for every run of a
    lesson). The same holds for metrics named by a string (``"accuracy"``),
    which Keras resolves in that first step: compile with metric objects, as
    :func:`compile_classifier` does. Compile again after changing which layers
    train (Keras asks for that anyway). A model that is not built yet, or whose
    optimizer already is, is returned unchanged.

    Examples
    --------
    >>> keras = import_keras()
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    >>> model.compile(optimizer="adam", loss="mse")
    >>> build_optimizer(model).optimizer.built
    True
    """
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and model.built and not optimizer.built:
        optimizer.build(model.trainable_variables)
    return model


def iter_layers(model: keras.Model) -> Iterator[keras.layers.Layer]:
    """The layers of ``model`` that compute, in order: nested models looked into.

    A model used as a layer (a ``Sequential`` head, a pretrained base inside a
    fine-tuning model) is replaced by its own layers, recursively; input layers
    are left out. This is the one walk over a model's layers the course uses
    (checks, monitors, freezing a block).

    Raises ``ValueError`` when ``model`` has no ``layers``.

    Examples
    --------
    >>> keras = import_keras()
    >>> head = keras.Sequential([keras.layers.Dense(3, name="fc")], name="head")
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5, name="d"), head])
    >>> [layer.name for layer in iter_layers(model)]
    ['d', 'fc']
    """
    if not hasattr(model, "layers"):
        raise ValueError(f"model: expected a Keras model (with layers), got {type(model).__name__}")
    keras = import_keras()
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, keras.Model):
            yield from iter_layers(layer)
        else:
            yield layer


def current_learning_rate(optimizer: Any) -> float | None:
    """The learning rate ``optimizer`` applies at its next step, as a float.

    Works for a plain rate and for a ``LearningRateSchedule`` (Keras evaluates it at
    the optimizer's step count). ``None`` when there is no rate to read (no
    optimizer, or one without a readable ``learning_rate``). The one reader of the
    current rate the course uses (training monitor, range test, lesson 05 checks).

    Examples
    --------
    >>> keras = import_keras()
    >>> round(current_learning_rate(keras.optimizers.SGD(0.05)), 6)
    0.05
    >>> current_learning_rate(None) is None
    True
    """
    try:
        rate = optimizer.learning_rate
        if hasattr(rate, "numpy"):
            rate = rate.numpy()
        return float(np.asarray(rate))
    except (AttributeError, TypeError, ValueError):  # no optimizer, or nothing readable
        return None


def _small_initializer(keras: Any, seed: int | None) -> Any:
    """Small softmax weights: an untrained model scores all classes alike (loss ln C)."""
    return keras.initializers.RandomNormal(stddev=0.01, seed=seed)


def _layer_seeds(seed: int | None) -> Iterator[int | None]:
    """The seeds of a model's random layers, in order: ``seeds.layer_seed(seed, 1)``, ``2``..."""
    return (seeds.layer_seed(seed, index) for index in itertools.count(1))


def _check_input_shape(input_shape: Any) -> tuple[int, int, int]:
    expected = "expected 3 positive integers (rows, cols, channels), e.g. profile.input_shape"
    try:
        shape = tuple(input_shape)
    except TypeError:
        raise ValueError(f"input_shape: {expected}, got {input_shape!r}") from None
    if len(shape) != 3 or any(
        isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1 for v in shape
    ):
        raise ValueError(f"input_shape: {expected}, got {input_shape!r}")
    return (int(shape[0]), int(shape[1]), int(shape[2]))
