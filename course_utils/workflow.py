"""Lesson 00, the workflow of a deep-learning project: its checks and experiments.

The nine steps themselves use the other modules (data from ``fingers`` and
``datasets``, the model from ``models``, ``callbacks``, ``metrics``, ``plots``);
this module holds what lesson 00 adds and later lessons reuse:

- :func:`check_architecture` enforces the three architecture rules (every
  computing layer has an activation; the feature maps are flattened once, right
  before the dense layers; the last dense layer has one softmax unit per class)
  and says which rule a model breaks and where;
- :func:`check_splits` checks test-set discipline of a train/validation/test
  split: the test set is returned untouched, nothing leaks between the splits,
  and the validation set keeps the class balance (it is stratified);
- :func:`shuffle_labels` and :func:`memorize_random_labels` show why the test
  set stays in the vault: a network reaches full training accuracy even on
  labels that carry no information at all.

Examples
--------
>>> import numpy as np
>>> shuffle_labels(np.array([0, 0, 1, 1, 2, 2]), seed=0).tolist()
[1, 1, 2, 2, 0, 0]
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from course_utils import labels
from course_utils.datasets import to_model_input
from course_utils.history import History
from course_utils.models import iter_layers
from course_utils.runtime.checks import check_scalar

__all__ = [
    "SPLIT_NAMES",
    "check_architecture",
    "check_splits",
    "find_architecture_problems",
    "find_split_problems",
    "memorize_random_labels",
    "shuffle_labels",
]

SPLIT_NAMES = ("train", "val", "test")

# Layers that compute a weighted sum and so need a non-linearity after them.
_WEIGHTED = (
    "Dense", "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose",
    "Conv3DTranspose", "SeparableConv1D", "SeparableConv2D", "DepthwiseConv1D",
    "DepthwiseConv2D",
)
# Layers that are nothing but an activation.
_ACTIVATIONS = ("Activation", "ReLU", "LeakyReLU", "ELU", "PReLU", "Softmax")
# Layers that turn feature maps into one vector per image.
_FLATTENING = (
    "Flatten", "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
    "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D",
)
_SPATIAL = tuple(n for n in _WEIGHTED if n != "Dense") + (
    "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D",
    "AveragePooling3D",
)


# --------------------------------------------------------------------------- architecture


def find_architecture_problems(model: Any, *, num_classes: int = labels.NUM_CLASSES) -> list[str]:
    """List every way ``model`` breaks the architecture rules; empty when it follows them.

    The rules (SYLLABUS 00, step 3):

    1. every layer that computes a weighted sum (``Dense``, convolutions) has an
       activation, either its own ``activation=`` or an activation layer after it;
    2. the feature maps are flattened once (``Flatten`` or a global pooling layer),
       after the last convolution or pooling and before the first ``Dense`` layer;
    3. the last ``Dense`` layer has ``num_classes`` units and a softmax, so the
       model outputs one probability per class.

    Nested models (an augmentation ``Sequential`` inside the model) are looked into.

    Examples
    --------
    >>> from course_utils import models                           # doctest: +SKIP
    >>> find_architecture_problems(models.build_fingers_cnn((32, 32, 1), 12))  # doctest: +SKIP
    []
    """
    num_classes = check_scalar(num_classes, "num_classes", int, min_val=2)
    layers = list(iter_layers(model))
    kinds = [type(layer).__name__ for layer in layers]
    problems: list[str] = []

    # Rule 1: an activation after every weighted layer.
    for index, (layer, kind) in enumerate(zip(layers, kinds, strict=True)):
        if kind in _WEIGHTED and not _is_activated(layers, index):
            problems.append(
                f"layer {layer.name!r} ({kind}) has no activation: give it activation='relu' "
                "(softmax for the output layer) or put an Activation layer right after it"
            )

    # Rule 2: flatten once, between the feature extractor and the dense layers.
    flat_at = [i for i, kind in enumerate(kinds) if kind in _FLATTENING]
    dense_at = [i for i, kind in enumerate(kinds) if kind == "Dense"]
    spatial_at = [i for i, kind in enumerate(kinds) if kind in _SPATIAL]
    if not flat_at:
        problems.append(
            "no Flatten layer: flatten the feature maps once, right before the first Dense layer "
            "(without it the Dense layers work on every pixel position separately)"
        )
    elif len(flat_at) > 1:
        names = ", ".join(repr(layers[i].name) for i in flat_at)
        problems.append(f"the model flattens {len(flat_at)} times ({names}): flatten exactly once")
    else:
        flat = flat_at[0]
        early = [layers[i].name for i in dense_at if i < flat]
        if early:
            problems.append(
                f"Dense layer(s) {early} come before the Flatten layer {layers[flat].name!r}: "
                "flatten first, then the dense layers"
            )
        late = [layers[i].name for i in spatial_at if i > flat]
        if late:
            problems.append(
                f"convolution/pooling layer(s) {late} come after the Flatten layer "
                f"{layers[flat].name!r}: the feature extractor goes before it"
            )

    # Rule 3: the output layer.
    if not dense_at:
        problems.append(f"no Dense layer: the model must end with Dense({num_classes}, softmax)")
    else:
        last = layers[dense_at[-1]]
        units = int(getattr(last, "units", -1))
        if units != num_classes:
            problems.append(
                f"the last Dense layer {last.name!r} has {units} units: it needs one per class "
                f"({num_classes})"
            )
        if _output_activation(layers, dense_at[-1]) != "softmax":
            problems.append(
                f"the last Dense layer {last.name!r} does not end in a softmax: use "
                "activation='softmax' so the outputs are class probabilities that sum to 1"
            )
        tail = [layers[i].name for i in range(dense_at[-1] + 1, len(layers))
                if kinds[i] not in _ACTIVATIONS + ("Dropout",)]
        if tail:
            problems.append(f"layer(s) {tail} come after the output layer {last.name!r}")
    output_shape = _output_shape(model)
    if output_shape is not None and tuple(output_shape[1:]) != (num_classes,):
        problems.append(
            f"the model's output shape is {tuple(output_shape)}: expected (None, {num_classes}), "
            "one score per class for every image"
        )
    return problems


def check_architecture(model: Any, *, num_classes: int = labels.NUM_CLASSES) -> None:
    """Raise ``ValueError`` listing every architecture rule ``model`` breaks.

    See :func:`find_architecture_problems` for the rules.

    Examples
    --------
    >>> from course_utils.runtime.tf_setup import import_keras                 # doctest: +SKIP
    >>> keras = import_keras()                                           # doctest: +SKIP
    >>> bad = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Dense(6)])  # doctest: +SKIP
    >>> check_architecture(bad)                                          # doctest: +SKIP
    Traceback (most recent call last):
    ValueError: model 'sequential' breaks the architecture rules:
    - layer 'dense' (Dense) has no activation: ...
    """
    problems = find_architecture_problems(model, num_classes=num_classes)
    if problems:
        name = getattr(model, "name", type(model).__name__)
        raise ValueError(
            f"model {name!r} breaks the architecture rules:\n"
            + "\n".join(f"- {p}" for p in problems)
        )


def _activation_name(layer: Any) -> str | None:
    activation = getattr(layer, "activation", None)
    if activation is None:
        return None
    name = getattr(activation, "__name__", None) or type(activation).__name__
    return str(name).lower()


def _is_activated(layers: Sequence[Any], index: int) -> bool:
    own = _activation_name(layers[index])
    if own not in (None, "linear"):
        return True
    for layer in layers[index + 1:]:  # an activation layer before the next weighted layer
        kind = type(layer).__name__
        if kind in _ACTIVATIONS:
            return _activation_name(layer) != "linear"
        if kind in _WEIGHTED or kind in _FLATTENING:
            return False
    return False


def _output_activation(layers: Sequence[Any], index: int) -> str | None:
    own = _activation_name(layers[index])
    if own not in (None, "linear"):
        return own
    for layer in layers[index + 1:]:
        kind = type(layer).__name__
        if kind == "Softmax":
            return "softmax"
        if kind in _ACTIVATIONS:
            return _activation_name(layer)
    return own


def _output_shape(model: Any) -> tuple[Any, ...] | None:
    try:
        shape = model.output_shape
    except (AttributeError, ValueError, RuntimeError):
        return None
    if isinstance(shape, list):  # several outputs
        return None
    return tuple(shape)


# --------------------------------------------------------------------------- splits


def find_split_problems(
    splits: Mapping[str, Sequence[np.ndarray]],
    x: np.ndarray,
    y: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    val_fraction: float,
) -> list[str]:
    """List every way ``splits`` breaks test-set discipline; empty when it is sound.

    ``splits`` maps ``"train"``, ``"val"`` and ``"test"`` to ``(images, labels)``;
    ``x, y`` is the data given for training, ``x_test, y_test`` the test set. Sound
    means: the test set comes back exactly as given; train and validation together
    are exactly the given training data (no image lost, none from the test set);
    the validation set holds ``val_fraction`` of it (within one image) and every
    class in the same proportion (within one image per class).

    Examples
    --------
    >>> x = np.arange(40, dtype=np.uint8).reshape(10, 2, 2); y = np.array([0, 1] * 5)
    >>> xt, yt = x[:2] + 100, y[:2]
    >>> ok = {"train": (x[2:], y[2:]), "val": (x[:2], y[:2]), "test": (xt, yt)}
    >>> find_split_problems(ok, x, y, xt, yt, val_fraction=0.2)
    []
    >>> leaky = {"train": (x, y), "val": (xt, yt), "test": (xt, yt)}
    >>> find_split_problems(leaky, x, y, xt, yt, val_fraction=0.2)[0]
    'train and validation must together be exactly the given training data: 2 of their images are test images (the test set must stay in the vault)'
    """
    check_scalar(val_fraction, "val_fraction", float, min_val=0, max_val=1,
                 include_boundaries="neither")
    x, y = _check_xy(x, y, "x, y")
    x_test, y_test = _check_xy(x_test, y_test, "x_test, y_test")
    if not isinstance(splits, Mapping):
        return [f"splits: expected a dict with keys {list(SPLIT_NAMES)}, got {type(splits).__name__}"]
    if sorted(splits) != sorted(SPLIT_NAMES):
        return [f"splits: expected exactly the keys {list(SPLIT_NAMES)}, got {sorted(splits)}"]
    parts: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    problems: list[str] = []
    for name in SPLIT_NAMES:
        value = splits[name]
        if not isinstance(value, (tuple, list)) or len(value) != 2:
            problems.append(
                f"splits[{name!r}]: expected a pair (images, labels), got {type(value).__name__}"
            )
            continue
        px, py = np.asarray(value[0]), np.asarray(value[1])
        if px.ndim < 1 or py.ndim != 1 or len(px) != len(py):
            problems.append(
                f"splits[{name!r}]: images and labels must have the same length, "
                f"got shapes {px.shape} and {py.shape}"
            )
            continue
        if px.shape[1:] != x.shape[1:]:
            problems.append(
                f"splits[{name!r}]: images have shape {px.shape[1:]}, expected {x.shape[1:]} "
                "like the given images (a split does not change the images)"
            )
            continue
        parts[name] = (px, py)
    if problems:
        return problems

    tx, ty = parts["test"]
    if not (np.array_equal(tx, x_test) and np.array_equal(ty, y_test)):
        problems.append(
            "the test set changed: return it exactly as given, same images, labels and order "
            "(it stays in the vault until the final evaluation)"
        )

    given = Counter(_fingerprints(x, y))
    test_prints = set(_fingerprints(x_test, y_test))
    trainval = Counter(_fingerprints(*parts["train"])) + Counter(_fingerprints(*parts["val"]))
    from_test = sum(n for key, n in (trainval - given).items() if key in test_prints)
    if from_test:
        problems.append(
            "train and validation must together be exactly the given training data: "
            f"{from_test} of their images are test images (the test set must stay in the vault)"
        )
    elif trainval != given:
        missing = sum((given - trainval).values())
        extra = sum((trainval - given).values())
        problems.append(
            "train and validation must together be exactly the given training data: "
            f"{missing} given images are missing and {extra} are extra or repeated"
        )

    vx, vy = parts["val"]
    expected = val_fraction * len(y)
    if abs(len(vy) - expected) >= 1:
        problems.append(
            f"the validation set has {len(vy)} images: expected val_fraction * {len(y)} = "
            f"{expected:g} (within one image)"
        )
    else:
        num_classes = int(max(y.max(initial=0), vy.max(initial=0))) + 1
        given_counts = np.bincount(y, minlength=num_classes)
        val_counts = np.bincount(vy, minlength=num_classes)
        off = [
            f"{c}: {int(val_counts[c])} instead of about {given_counts[c] * val_fraction:.1f}"
            for c in range(num_classes)
            if abs(val_counts[c] - given_counts[c] * val_fraction) > 1
        ]
        if off:
            problems.append(
                "the validation set is not stratified: every class must keep its share "
                "(stratify by the labels). Images per class in validation: " + "; ".join(off)
            )
    return problems


def check_splits(
    splits: Mapping[str, Sequence[np.ndarray]],
    x: np.ndarray,
    y: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    val_fraction: float,
) -> None:
    """Raise ``ValueError`` listing every problem :func:`find_split_problems` finds.

    Examples
    --------
    >>> x = np.arange(40, dtype=np.uint8).reshape(10, 2, 2); y = np.array([0, 1] * 5)
    >>> splits = {"train": (x[2:], y[2:]), "val": (x[:2], y[:2]), "test": (x[:1], y[:1])}
    >>> check_splits(splits, x, y, x[:1] + 100, y[:1], val_fraction=0.2)
    Traceback (most recent call last):
    ...
    ValueError: the splits break test-set discipline:
    - the test set changed: return it exactly as given, same images, labels and order (it stays in the vault until the final evaluation)
    """
    problems = find_split_problems(splits, x, y, x_test, y_test, val_fraction=val_fraction)
    if problems:
        raise ValueError(
            "the splits break test-set discipline:\n" + "\n".join(f"- {p}" for p in problems)
        )


def _check_xy(x: Any, y: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x), np.asarray(y)
    if y.ndim != 1 or len(x) != len(y) or len(y) == 0:
        raise ValueError(
            f"{name}: expected images (n, ...) and labels (n,) of the same non-zero length, "
            f"got shapes {x.shape} and {y.shape}"
        )
    return x, labels.check_labels(y, num_classes=int(y.max()) + 1, name=f"{name} labels")


def _fingerprints(x: np.ndarray, y: np.ndarray) -> list[tuple[bytes, int]]:
    x = np.ascontiguousarray(x)
    return [(hashlib.sha1(image.tobytes()).digest(), int(label)) for image, label in zip(x, y, strict=True)]


# --------------------------------------------------------------------------- random labels


def shuffle_labels(y: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """The labels in a random order: same classes and counts, no link to the images.

    Examples
    --------
    >>> y = np.array([0, 1, 2, 3] * 3)
    >>> shuffled = shuffle_labels(y, seed=1)
    >>> sorted(shuffled.tolist()) == sorted(y.tolist()), bool((shuffled != y).any())
    (True, True)
    """
    y = labels.check_labels(y, num_classes=int(np.max(y, initial=0)) + 1, name="y")
    return np.random.default_rng(seed).permutation(y)


def memorize_random_labels(
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    batch_size: int = 16,
    x_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    seed: int = 0,
    width: int = 16,
    learning_rate: float = 3e-3,
) -> History:
    """Train the fingers CNN on randomly shuffled labels and return its history.

    The labels of ``x`` are shuffled (:func:`shuffle_labels`), so there is nothing
    to learn that carries over to new images; the network still drives its
    training accuracy towards 100 % by memorising each image, while the
    validation accuracy (on ``x_val, y_val`` with their true labels) stays at
    chance, ``1 / num_classes``. This is why accuracy on data the model was
    selected with proves nothing, and why the test set stays in the vault.

    No augmentation, dropout or batch normalisation: they would only slow the
    memorising down. :func:`course_utils.training.fit_model` trains (Adam at
    ``learning_rate``, batches of ``batch_size`` reshuffled every epoch). Returns the
    :class:`~course_utils.history.History` (``loss``, ``accuracy`` and, with
    validation data, ``val_loss``, ``val_accuracy``).

    Examples
    --------
    >>> from course_utils import fingers                                  # doctest: +SKIP
    >>> x, y = fingers.make_fingers(48, image_size=32, seed=0)            # doctest: +SKIP
    >>> h = memorize_random_labels(x, y, epochs=40)                       # doctest: +SKIP
    >>> h["accuracy"][-1]                                                 # doctest: +SKIP
    1.0
    """
    from course_utils import models
    from course_utils.training import fit_model

    epochs = check_scalar(epochs, "epochs", int, min_val=1)
    x = np.asarray(x)
    if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1] != x.shape[2]:
        raise ValueError(
            f"x: expected uint8 square grayscale images (n, size, size), got {x.dtype} {x.shape}"
        )
    if (x_val is None) != (y_val is None):
        raise ValueError("give both x_val and y_val, or neither")
    if x_val is not None:
        x_val = np.asarray(x_val)
        if x_val.dtype != np.uint8 or x_val.shape[1:] != x.shape[1:]:
            raise ValueError(
                f"x_val: expected uint8 images of the size of x (n, {x.shape[1]}, {x.shape[2]}), "
                f"got {x_val.dtype} {x_val.shape}"
            )
    random_y = shuffle_labels(y, seed=seed)
    val = None
    if x_val is not None:
        val = (to_model_input(x_val), labels.check_labels(y_val, name="y_val"))

    def build() -> Any:
        return models.build_fingers_cnn(
            (x.shape[1], x.shape[2], 1), labels.NUM_CLASSES, depth=2, width=width,
            batch_norm=False, dropout=0.0, seed=seed, name="memorizer",
        )

    return fit_model(build, (to_model_input(x), random_y), val, epochs=epochs,
                     seed=seed, learning_rate=learning_rate, batch_size=batch_size)
