"""The shipped base network of lesson 04 and its record.

The course's pretrained base is the reference CNN trained on the source task, counting
the raised fingers (:data:`SOURCE_CLASSES` classes, the hand not asked) of ALT_STYLE
hands (``course pretrain``, :mod:`course_utils.instructor.pretrain`). Its weights,
:data:`BASE_FILE`, ship in ``course_utils/assets/`` and are checked against
:data:`BASE_SHA256` before they are read; the record beside them
(:func:`base_record`) says how they were made.

Examples
--------
>>> from course_utils.transfer import base
>>> base.base_weights_path().parent.name
'assets'
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from course_utils import labels
from course_utils.runtime import install, io
from course_utils.runtime.tf_setup import import_keras

if TYPE_CHECKING:  # pragma: no cover
    import keras

__all__ = [
    "BASE_FILE",
    "BASE_IMAGE_SIZE",
    "BASE_SHA256",
    "CUT_LAYER",
    "SOURCE_CLASSES",
    "TOP_BLOCK",
    "base_record",
    "base_weights_path",
    "build_base_architecture",
    "check_sha256",
    "load_base_network",
]

#: Side of the images the shipped base was trained on.
BASE_IMAGE_SIZE: Final = 32
#: The shipped weights, in ``course_utils/assets/`` (Keras ``.weights.h5`` format).
BASE_FILE: Final = "fingers_base_alt_32px.weights.h5"
#: SHA-256 of :data:`BASE_FILE`; :func:`load_base_network` refuses any other file.
BASE_SHA256: Final = "5ac77392ef85fbb39370f7c21d2f92fd465e0d9910b55c39c80c4695443a7b52"
#: Classes of the source task: how many fingers are raised, 0 to 5 (the hand is not asked).
SOURCE_CLASSES: Final = labels.NUM_COUNTS
#: The layer the base is cut at: everything below it is the feature extractor.
CUT_LAYER: Final = "flatten"
#: Prefix of the layers of the base's top convolution block (unfrozen for fine-tuning).
TOP_BLOCK: Final = "block3"

#: ``course_utils/assets/``: package data, beside this package.
_ASSETS: Final = Path(__file__).resolve().parent.parent / "assets"


def base_weights_path() -> Path:
    """Path of the shipped base weights inside the installed package.

    Examples
    --------
    >>> base_weights_path().name
    'fingers_base_alt_32px.weights.h5'
    """
    return _ASSETS / BASE_FILE


def base_record() -> dict[str, Any]:
    """How the shipped base was made: the record beside its weights in ``assets/``.

    The same fields as the record :func:`pretrain_base` writes (the recipe in
    ``config``, ``val_accuracy`` on the source task, ``sha256``...), plus a
    ``note`` on what the record could not say.

    Examples
    --------
    >>> record = base_record()
    >>> record["sha256"] == BASE_SHA256, record["config"]["images"]
    (True, 12000)
    """
    return io.read_json(record_path(base_weights_path()))


def record_path(weights: Path) -> Path:
    """``name.weights.h5`` -> ``name.json``, where a weights file's record lives."""
    return weights.with_name(weights.name.removesuffix(".weights.h5") + ".json")


def check_sha256(path: str | os.PathLike[str], expected: str) -> Path:
    """Return ``path`` when its SHA-256 digest is ``expected``; raise otherwise.

    Raises ``FileNotFoundError`` naming the file when it is missing and
    ``ValueError`` naming the file and both digests when they differ (a corrupt,
    truncated or replaced file).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "w.bin"
    >>> _ = p.write_bytes(b"abc")
    >>> check_sha256(p, hashlib.sha256(b"abc").hexdigest()).name
    'w.bin'
    >>> check_sha256(p, "0" * 64)
    Traceback (most recent call last):
    ...
    ValueError: ...w.bin: SHA-256 is ba7816bf..., expected 00000000...; ...
    """
    file = Path(path)
    expected = str(expected).strip().lower()
    if len(expected) != 64 or any(c not in "0123456789abcdef" for c in expected):
        raise ValueError(f"expected: a SHA-256 digest of 64 hex digits, got {expected!r}")
    if not file.is_file():
        raise FileNotFoundError(
            f"{file}: weights file not found; reinstall the course ({install.install_hint()}), "
            f"or train the base again with `course pretrain` and pass its file"
        )
    digest = file_sha256(file)
    if digest != expected:
        raise ValueError(
            f"{file}: SHA-256 is {digest[:8]}..., expected {expected[:8]}...; the file is "
            f"corrupt or not the one this version of course-utils ships. Reinstall the "
            f"course ({install.install_hint()}), or pass the file `course pretrain` wrote "
            f"together with the SHA-256 it printed"
        )
    return file


def build_base_architecture(
    input_shape: Sequence[int] | None = None, num_classes: int = labels.NUM_CLASSES, *,
    seed: int = 0,
) -> keras.Model:
    """The base network's architecture, untrained: the reference CNN named ``base``.

    Three convolution blocks (16, 32, 64 filters, each with batch normalisation and
    2x2 max pooling), ``flatten``, ``fc1`` (128 units), dropout and a softmax of
    ``num_classes`` (12, the target task's, by default; the shipped base has
    :data:`SOURCE_CLASSES`): :func:`course_utils.models.build_fingers_cnn` at 32x32
    with its defaults and ``seed`` (its initial weights; 0 for the shipped base). An ``input_shape`` (default ``(32, 32, 1)``) of another side puts a
    ``Resizing`` layer named ``resize_to_base`` (bilinear, antialiased) in front, so
    the layers, their names and their weights stay the same at every image size.
    Lesson 04 trains it from scratch as the baseline transfer learning must beat.

    Raises ``ValueError`` for an ``input_shape`` that is not ``(rows, cols, 1)``.

    Examples
    --------
    >>> build_base_architecture().count_params()                  # doctest: +SKIP
    157260
    >>> build_base_architecture((64, 64, 1)).layers[1].name      # doctest: +SKIP
    'resize_to_base'
    """
    from course_utils import models

    shape = check_gray_shape(input_shape)
    base = models.build_fingers_cnn(
        (BASE_IMAGE_SIZE, BASE_IMAGE_SIZE, 1), num_classes, seed=seed, name="base"
    )
    return _at_input_shape(base, shape)


def _at_input_shape(base: keras.Model, shape: tuple[int, int, int]) -> keras.Model:
    """``base`` itself at 32x32; else a copy of its layers (and weights) behind a ``Resizing``.

    The layers are copied, not shared: a shared layer's ``.output`` is its first
    use's, so ``get_layer("flatten").output`` would not belong to the new graph.
    """
    if shape[:2] == (BASE_IMAGE_SIZE, BASE_IMAGE_SIZE):
        return base
    keras = import_keras()
    inputs = keras.Input(shape=shape, name="image")
    x = keras.layers.Resizing(
        BASE_IMAGE_SIZE, BASE_IMAGE_SIZE, antialias=True, name="resize_to_base"
    )(inputs)
    for layer in base.layers[1:]:
        copy = type(layer).from_config(layer.get_config())
        x = copy(x)
        copy.set_weights(layer.get_weights())
    return keras.Model(inputs, x, name="base")


def load_base_network(
    input_shape: Sequence[int] | None = None,
    *,
    weights_path: str | os.PathLike[str] | None = None,
    sha256: str | None = None,
) -> keras.Model:
    """The pretrained base network, with the source task's head still on.

    Its ``predictions`` layer has :data:`SOURCE_CLASSES` units, one per finger count.

    The weights come from ``weights_path`` (default: the shipped
    :data:`BASE_FILE`), checked against ``sha256`` (default: :data:`BASE_SHA256`)
    before they are read. ``input_shape`` (default ``(32, 32, 1)``) is the shape of
    the images the network will get; another side than 32 puts a ``Resizing`` layer
    named ``resize_to_base`` in front (bilinear, antialiased), so the layers and
    their names stay the same. Every call returns a new, independent network.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` for a file
    whose SHA-256 differs or an ``input_shape`` that is not ``(rows, cols, 1)``.

    Examples
    --------
    >>> base = load_base_network((32, 32, 1))                     # doctest: +SKIP
    >>> [layer.name for layer in base.layers][-4:]                 # doctest: +SKIP
    ['flatten', 'fc1', 'fc1_dropout', 'predictions']
    """
    if weights_path is None:
        path = base_weights_path()
        expected = BASE_SHA256 if sha256 is None else sha256
    else:
        path = Path(weights_path)
        if sha256 is None:
            raise ValueError(
                f"sha256: give the SHA-256 of {path} (the one `course pretrain` printed); "
                f"weights are never loaded unchecked"
            )
        expected = sha256
    check_sha256(path, expected)
    shape = check_gray_shape(input_shape)
    trained = build_base_architecture(num_classes=SOURCE_CLASSES)
    try:
        trained.load_weights(path)
    except (ValueError, OSError, KeyError) as exc:
        raise ValueError(f"{path}: cannot load it into the base network ({exc})") from exc
    return _at_input_shape(trained, shape)


# --------------------------------------------------------------------------- helpers


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_gray_shape(input_shape: Sequence[int] | None) -> tuple[int, int, int]:
    """``input_shape`` as ``(rows, cols, 1)`` (the base's ``(32, 32, 1)`` for ``None``).

    Raises ``ValueError`` for a shape that is not three positive sizes ending in 1.

    >>> check_gray_shape(None), check_gray_shape([64, 64, 1])
    ((32, 32, 1), (64, 64, 1))
    >>> check_gray_shape((32, 32, 3))
    Traceback (most recent call last):
    ...
    ValueError: input_shape: expected grayscale (rows, cols, 1), got (32, 32, 3)
    """
    if input_shape is None:
        return (BASE_IMAGE_SIZE, BASE_IMAGE_SIZE, 1)
    try:
        shape = tuple(int(v) for v in input_shape)
    except (TypeError, ValueError):
        raise ValueError(f"input_shape: expected (rows, cols, 1), got {input_shape!r}") from None
    if len(shape) != 3 or shape[2] != 1 or min(shape) < 1:
        raise ValueError(f"input_shape: expected grayscale (rows, cols, 1), got {input_shape!r}")
    return shape  # type: ignore[return-value]
