"""The public on-disk layout: two flat folders, ``train/`` and ``test/``, of PNG files.

Files are named ``<id>_<count><L|R>.png`` (:func:`course_utils.labels.format_filename`).
:func:`export_public_layout` writes the layout, :func:`load_public_layout` reads one
folder of it and :func:`read_data_folder` a whole data set (both folders, checked).

Examples
--------
>>> import tempfile, pathlib
>>> from course_utils.fingers import make_fingers
>>> x, y = make_fingers(12, image_size=32)
>>> out = export_public_layout(pathlib.Path(tempfile.mkdtemp()) / "set",
...                            {"train": (x, y), "test": (x[:3], y[:3])})
>>> sorted(p.name for p in out.iterdir())
['test', 'train']
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Final

import numpy as np

from course_utils import labels
from course_utils.fingers.splits import FingersSplits
from course_utils.runtime import io
from course_utils.runtime.checks import check_scalar

__all__ = [
    "PUBLIC_IMAGE_SIZE",
    "DataFolder",
    "export_public_layout",
    "load_public_layout",
    "read_data_folder",
    "resize_images",
]

#: Side of the images of the public set, in pixels (the profiles train on smaller ones).
PUBLIC_IMAGE_SIZE: Final = 128
_LAYOUT_SPLITS: Final = ("train", "test")


def export_public_layout(
    out_dir: str | os.PathLike[str],
    data: FingersSplits | Mapping[str, tuple[np.ndarray, np.ndarray]],
    *,
    overwrite: bool = False,
) -> Path:
    """Write images in the public layout: ``out_dir/train/`` and ``out_dir/test/``.

    ``data`` is a :class:`FingersSplits` (``train/`` gets the training and the
    validation images, ``test/`` the test images, like the public set) or a
    mapping ``{"train": (x, y), "test": (x, y)}`` of uint8 images
    ``(n, size, size)`` and class labels. Files are grayscale PNGs named
    ``<id>_<count><L|R>.png`` with zero-padded ids in array order, so
    :func:`load_public_layout` gives the arrays back exactly, in order.

    The folder is built beside ``out_dir`` under a temporary name and renamed
    into place when complete: an interrupted export leaves nothing that looks
    like a data set. An ``out_dir`` that exists and is not empty is refused
    (``FileExistsError``) unless ``overwrite=True``, which replaces it.

    Returns the path of ``out_dir``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "fingers"
    >>> from course_utils.fingers import make_fingers
    >>> x, y = make_fingers(12, image_size=32)
    >>> export_public_layout(out, {"train": (x, y), "test": (x[:2], y[:2])}).name
    'fingers'
    >>> len(list((out / "train").glob("*.png"))), len(list((out / "test").glob("*.png")))
    (12, 2)
    """
    target = Path(out_dir)
    splits = _layout_arrays(data)
    if target.exists() and not target.is_dir():
        raise FileExistsError(f"{target}: exists and is not a folder; expected a folder to write to")
    if target.is_dir() and any(target.iterdir()) and not overwrite:
        raise FileExistsError(
            f"{target}: folder is not empty; pass overwrite=True (course data --overwrite) "
            f"to replace it, or choose another folder"
        )
    from PIL import Image

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        staging.chmod(0o777 & ~io.current_umask())  # a folder like mkdir's, not mkdtemp's 0o700
        for split, (x, y) in splits.items():
            folder = staging / split
            folder.mkdir()
            digits = max(5, len(str(len(y) - 1)))
            for i, (image, label) in enumerate(zip(x, y, strict=True)):
                name = labels.format_filename(f"{i:0{digits}d}", int(label))
                Image.fromarray(image).save(folder / name, format="PNG")
        _replace_folder(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _layout_arrays(
    data: FingersSplits | Mapping[str, tuple[np.ndarray, np.ndarray]],
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Validate what :func:`export_public_layout` writes: ``{"train": (x, y), "test": (x, y)}``."""
    if isinstance(data, FingersSplits):
        data = {
            "train": (
                np.concatenate([data.x_train, data.x_val]),
                np.concatenate([data.y_train, data.y_val]),
            ),
            "test": (data.x_test, data.y_test),
        }
    if not isinstance(data, Mapping) or set(data) != set(_LAYOUT_SPLITS):
        keys = sorted(data) if isinstance(data, Mapping) else type(data).__name__
        raise ValueError(
            f"data: expected FingersSplits or a mapping with keys 'train' and 'test' of "
            f"(images, labels), got {keys}"
        )
    checked = {}
    for split in _LAYOUT_SPLITS:
        try:
            x, y = data[split]
        except (TypeError, ValueError):
            raise ValueError(f"data[{split!r}]: expected a pair (images, labels)") from None
        x = np.asarray(x)
        if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1] != x.shape[2]:
            raise ValueError(
                f"data[{split!r}] images: expected uint8 (n, size, size), "
                f"got {x.dtype} {x.shape}"
            )
        y = labels.check_labels(y, name=f"data[{split!r}] labels")
        if y.shape != (len(x),):
            raise ValueError(
                f"data[{split!r}]: {len(x)} images but labels of shape {y.shape}; "
                f"expected one label per image"
            )
        checked[split] = (x, y)
    return checked


def _replace_folder(staging: Path, target: Path) -> None:
    """Move the finished ``staging`` folder to ``target`` (replacing an old one)."""
    if target.is_dir() and not any(target.iterdir()):
        target.rmdir()
    if not target.exists():
        os.replace(staging, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
    old.rmdir()
    os.replace(target, old)
    try:
        os.replace(staging, target)
    except OSError:
        os.replace(old, target)  # put the previous data back
        raise
    shutil.rmtree(old, ignore_errors=True)


def load_public_layout(
    folder: str | os.PathLike[str],
    *,
    image_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Read one flat folder of the public layout (``train/`` or ``test/``).

    Every ``*.png`` file (any letter case) is an image named
    ``<id>_<count><L|R>.png``; files are read in name order. Colour and
    16-bit PNGs are converted to 8-bit grayscale. All images must be square and
    of the same size; with ``image_size`` they are resized to it (bilinear,
    antialiased), else kept as they are. Other files (``.DS_Store``,
    ``Thumbs.db``, notes) and hidden files (names starting with ``.``, such as
    macOS ``._*`` copies) are ignored; sub-folders too.

    Returns ``(images, labels)``: uint8 ``(n, size, size)`` and int64 ``(n,)``.

    Raises ``FileNotFoundError`` for a missing folder and ``ValueError`` naming
    the file and what was expected for: a folder with no PNG file, a file name
    that breaks the scheme, a label out of range, a PNG that cannot be decoded,
    an image that is not square or whose size differs from the first image's.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "fingers"
    >>> from course_utils.fingers import make_fingers
    >>> x, y = make_fingers(12, image_size=32)
    >>> _ = export_public_layout(out, {"train": (x, y), "test": (x, y)})
    >>> x2, y2 = load_public_layout(out / "train")
    >>> bool((x2 == x).all()), bool((y2 == y).all())
    (True, True)
    >>> load_public_layout(out / "train", image_size=16)[0].shape
    (12, 16, 16)
    """
    path = Path(folder)
    if image_size is not None:
        image_size = check_scalar(image_size, "image_size", int, min_val=1)
    if not path.is_dir():
        what = "is not a folder" if path.exists() else "folder not found"
        raise FileNotFoundError(
            f"{path}: {what}; expected a folder of PNG files named {labels.FILENAME_PATTERN}"
        )
    files = sorted(
        p for p in path.iterdir()
        if p.suffix.lower() == ".png" and not p.name.startswith(".") and p.is_file()
    )
    if not files:
        subfolders = sorted(p.name for p in path.iterdir() if p.is_dir())
        hint = f"; it has sub-folders {', '.join(subfolders)}: pass one of them" if subfolders else ""
        raise ValueError(
            f"{path}: no PNG files found; expected files named {labels.FILENAME_PATTERN}{hint}"
        )
    y = np.array([labels.encode(*labels.parse_filename(str(p))) for p in files], dtype=np.int64)
    first: tuple[int, int] | None = None
    images = []
    for p in files:
        image = _read_gray_png(p)
        if image.shape[0] != image.shape[1]:
            raise ValueError(
                f"{p}: image is {image.shape[1]}x{image.shape[0]} pixels; expected a square image"
            )
        if first is None:
            first = image.shape
        elif image.shape != first:
            raise ValueError(
                f"{p}: image is {image.shape[1]}x{image.shape[0]} pixels; expected "
                f"{first[1]}x{first[0]} like {files[0].name}, the first image of the folder"
            )
        if image_size is not None and image.shape[0] != image_size:
            image = _resize(image, image_size)
        images.append(image)
    return np.stack(images), y


def _read_gray_png(path: Path) -> np.ndarray:
    """Decode a PNG file to a uint8 grayscale array; ValueError naming the file if it cannot."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            kind, mode = img.format, img.mode
            if mode.startswith("I"):  # 16-bit grayscale
                array = np.asarray(img, dtype=np.float64) / 257.0
                array = np.round(array).clip(0, 255).astype(np.uint8)
            else:
                array = np.asarray(img.convert("L"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable PNG image ({exc}); expected a valid PNG file") from exc
    if kind != "PNG":
        raise ValueError(f"{path}: is a {kind} image despite its name; expected a PNG file")
    return array


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 ``images`` ``(n, s, s)`` resized to ``(n, size, size)`` (as they are if ``s == size``).

    Bilinear and antialiased, like :func:`load_public_layout` with ``image_size``.

    >>> resize_images(np.zeros((2, 32, 32), np.uint8), 16).shape
    (2, 16, 16)
    """
    if images.shape[1] == size:
        return images
    return np.stack([_resize(image, size) for image in images]) if len(images) else (
        np.zeros((0, size, size), np.uint8))


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    """One uint8 image resized to ``size x size`` (bilinear, antialiased)."""
    from PIL import Image

    resized = Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.uint8)



@dataclasses.dataclass(frozen=True)
class DataFolder:
    """A folder in the public layout, read and checked: its images at their own size.

    What :func:`read_data_folder` returns and :func:`load_fingers` accepts as
    ``data_dir``: reading it needs no profile, so every file of a folder can be checked
    before the profile is chosen (which may import TensorFlow to look for a GPU).
    """

    root: Path
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def read_data_folder(data_dir: str | os.PathLike[str]) -> DataFolder:
    """Read and check a folder in the public layout (``train/`` and ``test/``).

    Raises ``FileNotFoundError`` for a missing folder or split, and ``ValueError``
    naming the file or folder and what was expected (see :func:`load_public_layout`),
    also for a ``train/`` with fewer than 2 images (it is split into training and
    validation data).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from course_utils.fingers import make_fingers
    >>> x, y = make_fingers(12, image_size=32)
    >>> out = export_public_layout(pathlib.Path(tempfile.mkdtemp()) / "set",
    ...                            {"train": (x, y), "test": (x[:3], y[:3])})
    >>> folder = read_data_folder(out)
    >>> folder.x_train.shape, len(folder.y_test)
    ((12, 32, 32), 3)
    """
    root = Path(data_dir)
    if not root.is_dir():
        raise FileNotFoundError(
            f"{root}: data folder not found; expected a folder with train/ and test/ "
            f"sub-folders of PNG files named {labels.FILENAME_PATTERN}"
        )
    x_train, y_train = load_public_layout(root / "train")
    x_test, y_test = load_public_layout(root / "test")
    if len(y_train) < 2:
        raise ValueError(
            f"{root / 'train'}: {len(y_train)} image; expected at least 2 (the training images "
            f"are split into training and validation data)"
        )
    return DataFolder(root, x_train, y_train, x_test, y_test)

