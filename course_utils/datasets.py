"""Input pipelines: splits, ``tf.data`` datasets and label-preserving augmentation.

The data layer (:mod:`course_utils.fingers`) gives uint8 images ``(n, size,
size)`` and int64 labels. A Keras model eats float32 ``(n, size, size, 1)`` in
``[0, 1]``: :func:`to_model_input` is the one place that scales pixels so, for
arrays and inside pipelines alike. :func:`make_dataset` turns images into batches::

    training:    from_tensor_slices -> cache -> shuffle -> batch -> scale to [0, 1]
                     -> augment -> prefetch
    evaluation:  from_tensor_slices -> batch -> scale to [0, 1] -> cache -> prefetch

The training images are decoded once, kept in memory (``cache``) and scaled a
batch at a time, after a fresh shuffle every epoch; evaluation data never
changes, so its scaled batches are what is kept. ``prefetch`` prepares the next
batch while the model works on this one, so the model never waits for data.

Augmentation must keep the label true. Small rotations, shifts, zooms and
contrast changes do (:func:`build_augmentation`); a horizontal flip does not:
it turns a left hand into a right one, so :func:`flip_hands` flips the image
*and* swaps the label (``3L`` becomes ``3R``).

Examples
--------
>>> import numpy as np
>>> from course_utils import datasets, fingers
>>> x, y = fingers.make_fingers(48, image_size=32)
>>> x_tr, y_tr, x_val, y_val = datasets.split_train_val(x, y, val_fraction=0.25)
>>> len(y_tr), len(y_val)
(36, 12)
>>> ds = datasets.make_dataset(x_tr, y_tr, batch_size=8, training=True)
>>> images, labels = next(iter(ds))
>>> tuple(images.shape), images.dtype.name, labels.dtype.name
((8, 32, 32, 1), 'float32', 'int64')
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from course_utils import labels as label_scheme
from course_utils.runtime import seeds
from course_utils.runtime.checks import check_scalar
from course_utils.runtime.tf_setup import import_keras, import_tensorflow

if TYPE_CHECKING:  # pragma: no cover
    import keras
    import tensorflow as tf

__all__ = [
    "build_augmentation",
    "flip_hands",
    "epoch_seed",
    "make_dataset",
    "make_epochs",
    "random_flip_hands",
    "split_train_val",
    "to_model_input",
]


def split_train_val(
    x: np.ndarray,
    y: np.ndarray,
    *,
    val_fraction: float = 0.2,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split off validation data, stratified by class (scikit-learn ``train_test_split``).

    Every class keeps the same share in both parts, so a small validation set
    still sees all twelve classes.

    Returns ``(x_train, y_train, x_val, y_val)``.

    Raises ``ValueError`` naming the argument when ``val_fraction`` is not in
    ``(0, 1)``, ``x`` and ``y`` differ in length, or a class has fewer than two
    images (it could not appear on both sides).

    Examples
    --------
    >>> x = np.arange(24).reshape(24, 1, 1)
    >>> y = np.repeat(np.arange(12), 2)
    >>> x_tr, y_tr, x_val, y_val = split_train_val(x, y, val_fraction=0.5, seed=0)
    >>> sorted(y_val.tolist()) == list(range(12))
    True
    """
    from sklearn.model_selection import train_test_split

    val_fraction = check_scalar(val_fraction, "val_fraction", float, min_val=0, max_val=1,
                                include_boundaries="neither")
    x = np.asarray(x)
    y = label_scheme.check_labels(y, name="y")
    if y.ndim != 1 or len(x) != len(y):
        raise ValueError(
            f"x and y: expected one label per image, got {len(x)} images and labels of shape "
            f"{y.shape}"
        )
    counts = np.bincount(y, minlength=label_scheme.NUM_CLASSES)
    present = counts[counts > 0]
    if present.size and present.min() < 2:
        rare = label_scheme.CLASS_NAMES[int(np.flatnonzero(counts == 1)[0])]
        raise ValueError(
            f"y: expected at least 2 images per class (a stratified split puts one on each "
            f"side), got 1 of class {rare}"
        )
    try:
        x_tr, x_val, y_tr, y_val = train_test_split(
            x, y, test_size=val_fraction, stratify=y, random_state=int(seed)
        )
    except ValueError as exc:  # e.g. fewer validation images than classes
        raise ValueError(
            f"val_fraction={val_fraction}: cannot split {len(y)} images of "
            f"{present.size} classes stratified ({exc})"
        ) from exc
    return x_tr, y_tr, x_val, y_val


def make_dataset(
    x: np.ndarray,
    y: np.ndarray,
    *,
    batch_size: int,
    training: bool,
    augment: bool = False,
    seed: int = 0,
    cache: bool = True,
) -> tf.data.Dataset:
    """A ``tf.data`` pipeline of batches ``(float32 (b, s, s, 1) in [0, 1], int64 (b,))``.

    ``training=True`` reshuffles the images every epoch (seeded by ``seed``);
    evaluation data keeps its order. ``augment=True`` (training data only)
    applies :func:`build_augmentation` and :func:`random_flip_hands` to each
    batch. ``cache`` keeps the images in memory after the first epoch (evaluation
    data as its scaled batches, 4 bytes a pixel, so that every later pass starts at once).

    ``x`` is uint8 ``(n, s, s)`` (or ``(n, s, s, 1)``) as :mod:`course_utils.fingers`
    gives it; ``y`` holds class indices 0..11.

    Raises ``ValueError`` naming the argument for bad shapes, dtypes, labels,
    a non-positive batch size, or augmentation asked for evaluation data.

    Examples
    --------
    >>> x = np.zeros((10, 16, 16), np.uint8); y = np.arange(10)
    >>> ds = make_dataset(x, y, batch_size=4, training=False)
    >>> [int(batch_labels.shape[0]) for _, batch_labels in ds]
    [4, 4, 2]
    """
    tf = import_tensorflow()
    x, y = _check_images(x, y)
    batch_size = check_scalar(batch_size, "batch_size", int, min_val=1)
    if augment and not training:
        raise ValueError(
            "augment=True needs training=True: augment training data only, never "
            "validation or test data"
        )

    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if training:
        if cache:
            ds = ds.cache()
        ds = ds.shuffle(len(x), seed=int(seed), reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    ds = ds.map(_to_float, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if cache and not training:
        # Evaluation batches are the same on every pass: keep them ready, scaled, so a
        # new pass (a validation after every epoch) does not set up the scaling again.
        ds = ds.cache()
    if augment:
        # One batch at a time: the random layers draw from stateful seed generators, and
        # parallel calls would draw in a different order on every run (prefetch still
        # overlaps the augmentation with training).
        ds = ds.map(_augmenter(seed))
    return ds.prefetch(tf.data.AUTOTUNE)


def make_epochs(
    x: np.ndarray,
    y: np.ndarray,
    *,
    batch_size: int,
    epochs: Sequence[int],
    augment: bool = False,
    seed: int = 0,
) -> tf.data.Dataset:
    """Training batches for ``epochs`` (epoch numbers from 0), one epoch after another.

    Like ``make_dataset(..., training=True)``, but epoch ``e`` is shuffled (and
    augmented) with its own seed, :func:`epoch_seed` ``(seed, e)``: what epoch ``e``
    sees depends on nothing that ran before it. A run resumed after ``k`` epochs builds
    ``epochs=range(k, n)`` and trains on exactly the batches an uninterrupted run with
    ``range(0, n)`` sees from epoch ``k`` on. Pass it to ``fit`` with
    ``steps_per_epoch=math.ceil(len(x) / batch_size)`` (and ``initial_epoch=k``): one
    iterator then runs through all the epochs.

    Raises ``ValueError`` naming the argument like :func:`make_dataset`, and for an
    empty ``epochs``.

    Examples
    --------
    >>> x = np.arange(10, dtype=np.uint8).repeat(4).reshape(10, 2, 2); y = np.arange(10)
    >>> whole = [b.numpy().tolist() for _, b in make_epochs(x, y, batch_size=5, epochs=range(3))]
    >>> later = [b.numpy().tolist() for _, b in make_epochs(x, y, batch_size=5, epochs=[2])]
    >>> len(whole), whole[4:] == later
    (6, True)
    """
    tf = import_tensorflow()
    x, y = _check_images(x, y)
    batch_size = check_scalar(batch_size, "batch_size", int, min_val=1)
    chosen = [int(e) for e in epochs]
    if not chosen or min(chosen) < 0:
        raise ValueError(f"epochs: expected epoch numbers >= 0, got {list(epochs)!r}")
    source = tf.data.Dataset.from_tensor_slices((x, y))
    ds = None
    for epoch in chosen:
        epoch_rng = epoch_seed(seed, epoch)
        one = source.shuffle(len(x), seed=epoch_rng, reshuffle_each_iteration=False)
        one = one.batch(batch_size)
        one = one.map(_to_float, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        if augment:
            one = one.map(_augmenter(epoch_rng))  # one batch at a time, as in make_dataset
        ds = one if ds is None else ds.concatenate(one)
    return ds.prefetch(tf.data.AUTOTUNE)


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of epoch ``epoch``'s shuffling and augmentation in :func:`make_epochs`.

    ``seeds.derive_seed(seed, epoch)`` (:mod:`course_utils.runtime.seeds`): a function
    of ``(seed, epoch)`` only, below ``2**30`` (room for the consecutive seeds of
    :func:`build_augmentation`'s layers).

    >>> epoch_seed(42, 3) == epoch_seed(42, 3) != epoch_seed(42, 4)
    True
    """
    return seeds.derive_seed(int(seed), int(epoch), bits=30)


def _augmenter(seed: int) -> Any:
    """The batch function of :func:`build_augmentation` and :func:`random_flip_hands`."""
    augmentation = build_augmentation(seed=seed)

    def _augment(images: Any, batch_labels: Any) -> tuple[Any, Any]:
        images = augmentation(images, training=True)
        return random_flip_hands(images, batch_labels, seed=seed)

    return _augment


def _check_images(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``x`` as uint8 ``(n, s, s)`` and ``y`` as labels, one per image, or ``ValueError``."""
    x = np.asarray(x)
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim != 3 or x.shape[1] != x.shape[2] or x.dtype != np.uint8:
        raise ValueError(
            f"x: expected uint8 images of shape (n, size, size), got {x.dtype} {x.shape}"
        )
    y = label_scheme.check_labels(y, name="y")
    if y.shape != (len(x),):
        raise ValueError(f"y: expected {len(x)} labels (one per image), got shape {y.shape}")
    return x, y


def to_model_input(images: Any) -> Any:
    """Pixels as the models take them: uint8 ``(n, s, s)`` -> float32 ``(n, s, s, 1)`` in [0, 1].

    The one place the course scales pixels (``pixel / 255``): :func:`make_dataset`'s
    batches, the lessons' arrays and the features of a pretrained network all go
    through it. ``images`` is uint8 ``(n, s, s)`` or ``(n, s, s, 1)``: a NumPy array
    (NumPy comes back) or a TensorFlow tensor, e.g. a batch inside a ``tf.data``
    pipeline (a tensor comes back).

    Raises ``ValueError`` for anything but uint8 images of those shapes (float
    images are probably scaled already: scaling them twice would darken them).

    Examples
    --------
    >>> x = to_model_input(np.array([[[0, 255]]], np.uint8))
    >>> x.shape, x.dtype, x.ravel().tolist()
    ((1, 1, 2, 1), dtype('float32'), [0.0, 1.0])
    """
    tf = sys.modules.get("tensorflow")
    if tf is not None and tf.is_tensor(images):
        dtype, shape = images.dtype.name, tuple(images.shape)
    else:
        images = np.asarray(images)
        dtype, shape = images.dtype.name, images.shape
    if dtype != "uint8" or not (len(shape) == 3 or (len(shape) == 4 and shape[-1] == 1)):
        raise ValueError(
            f"images: expected uint8 pixels of shape (n, size, size) or (n, size, size, 1), "
            f"got {dtype} {shape}"
        )
    if isinstance(images, np.ndarray):
        x = images.astype(np.float32)
        return (x if x.ndim == 4 else x[..., None]) / np.float32(255.0)
    x = tf.cast(images, tf.float32)
    return (x if len(shape) == 4 else x[..., None]) / 255.0


def _to_float(images: Any, batch_labels: Any) -> tuple[Any, Any]:
    """A batch of uint8 images and its labels -> :func:`to_model_input` and the labels."""
    return to_model_input(images), batch_labels


def build_augmentation(seed: int = 0) -> keras.Sequential:
    """Label-preserving augmentation layers for batches of images in ``[0, 1]``.

    Small rotation (up to 18 degrees either way), translation (8 % of the
    side), zoom (10 %) and contrast change (20 %): each changes how the hand
    looks, not how many fingers it raises nor which hand it is. There is no
    horizontal flip here: it would turn a left hand into a right one (see
    :func:`flip_hands`). The layers only act when called with
    ``training=True`` (``model.fit`` does); at inference they pass the images
    through.

    Examples
    --------
    >>> aug = build_augmentation(seed=0)
    >>> [layer.name for layer in aug.layers]
    ['random_rotation', 'random_translation', 'random_zoom', 'random_contrast']
    >>> aug(np.zeros((2, 16, 16, 1), "float32"), training=True).shape
    TensorShape([2, 16, 16, 1])
    """
    keras = import_keras()
    layers = keras.layers
    seed = int(seed)
    layer_seeds = [seeds.layer_seed(seed, k, spacing=1) for k in range(4)]  # seed, seed + 1, ...
    # Nearest-pixel sampling: bilinear sampling at sub-pixel offsets would smooth the
    # pixel noise, and augmented images would no longer look like the real ones.
    geometry = {"fill_mode": "reflect", "interpolation": "nearest"}
    return keras.Sequential(
        [
            layers.RandomRotation(0.05, seed=layer_seeds[0], name="random_rotation", **geometry),
            layers.RandomTranslation(
                0.08, 0.08, seed=layer_seeds[1], name="random_translation", **geometry
            ),
            layers.RandomZoom(0.1, seed=layer_seeds[2], name="random_zoom", **geometry),
            layers.RandomContrast(0.2, value_range=(0.0, 1.0), seed=layer_seeds[3],
                                  name="random_contrast"),
        ],
        name="augmentation",
    )


def flip_hands(images: Any, labels: Any) -> tuple[Any, Any]:
    """Mirror every image left-right and swap its hand: ``L`` <-> ``R`` (``labels ^ 1``).

    A mirrored left hand is a right hand with the same number of fingers, so
    the pair stays true. Works on a batch ``(b, s, s, c)`` with labels ``(b,)``
    or on one image ``(s, s, c)`` with a scalar label; flipping twice gives the
    input back.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(4, dtype="float32").reshape(1, 2, 2, 1)
    >>> flipped, y = flip_hands(x, np.array([6]))
    >>> flipped.numpy()[0, :, :, 0].tolist(), y.numpy().tolist()
    ([[1.0, 0.0], [3.0, 2.0]], [7])
    """
    tf = import_tensorflow()
    images = tf.convert_to_tensor(images)
    labels = tf.convert_to_tensor(labels)
    return tf.reverse(images, axis=[-2]), tf.bitwise.bitwise_xor(labels, tf.ones_like(labels))


def random_flip_hands(
    images: Any, labels: Any, *, rate: float = 0.5, seed: int | None = None
) -> tuple[Any, Any]:
    """Apply :func:`flip_hands` to a random share ``rate`` of a batch ``(b, s, s, c)``.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.zeros((4, 8, 8, 1), "float32"); y = np.array([0, 1, 2, 3])
    >>> _, y2 = random_flip_hands(x, y, rate=1.0)
    >>> y2.numpy().tolist()
    [1, 0, 3, 2]
    """
    tf = import_tensorflow()
    rate = check_scalar(rate, "rate", float, min_val=0, max_val=1)
    images = tf.convert_to_tensor(images)
    labels = tf.convert_to_tensor(labels)
    flipped_images, flipped_labels = flip_hands(images, labels)
    flip = tf.random.uniform(tf.shape(labels), seed=seed) < rate
    return (
        tf.where(flip[:, None, None, None], flipped_images, images),
        tf.where(flip, flipped_labels, labels),
    )
