"""The fingers-count label scheme: the one place that defines it.

An image shows one hand (left ``L`` or right ``R``) with 0 to 5 raised fingers.
The 12 classes are ordered count-major, hand-minor::

    index = 2 * count + hand        # hand: 0 for L, 1 for R

so ``index // 2`` is the finger count (the 6-class view) and ``index ^ 1``
is the same count on the mirrored hand (what a horizontal flip produces).

Examples
--------
>>> from course_utils import labels
>>> labels.encode(3, "R")
7
>>> labels.decode(7)
(3, 'R')
>>> labels.CLASS_NAMES[:4]
('0L', '0R', '1L', '1R')
>>> labels.parse_filename("0a1b_4L.png")
(4, 'L')
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

import numpy as np
from numpy.typing import ArrayLike

from course_utils.runtime.checks import check_choice, check_scalar

HANDS: Final = ("L", "R")
MAX_COUNT: Final = 5
NUM_COUNTS: Final = MAX_COUNT + 1
NUM_CLASSES: Final = NUM_COUNTS * len(HANDS)
CLASS_NAMES: Final = tuple(f"{c}{h}" for c in range(NUM_COUNTS) for h in HANDS)
COUNT_NAMES: Final = tuple(str(c) for c in range(NUM_COUNTS))

# Public "fingers" layout: ``<id>_<count><L|R>.png``, e.g. ``000e7aa6-..._5L.png``.
_FILENAME = re.compile(r"^(?P<id>.+)_(?P<count>\d+)(?P<hand>[A-Za-z])\.png$", re.IGNORECASE)
FILENAME_PATTERN: Final = "<id>_<count><L|R>.png with count 0-5, e.g. 3f2a_4L.png"


def encode(count: int, hand: str) -> int:
    """Return the class index of ``count`` raised fingers on ``hand`` ("L" or "R").

    >>> encode(0, "L"), encode(5, "R")
    (0, 11)
    """
    count = check_scalar(count, "count", int, min_val=0, max_val=MAX_COUNT)
    check_choice(hand, "hand", HANDS)
    return 2 * count + HANDS.index(hand)


def decode(index: int) -> tuple[int, str]:
    """Return ``(count, hand)`` for a class index in ``0..11``.

    >>> decode(4)
    (2, 'L')
    """
    check_labels(np.asarray([index]), name="index")
    return int(index) // 2, HANDS[int(index) % 2]


def check_labels(labels: np.ndarray, *, num_classes: int = NUM_CLASSES, name: str = "labels") -> np.ndarray:
    """Validate integer class labels and return them as ``int64``.

    Raises ``ValueError`` naming ``name`` when a label is not an integer in
    ``0 .. num_classes - 1``.

    >>> check_labels(np.array([0, 11])).dtype
    dtype('int64')
    >>> check_labels([0, 12], name="y")
    Traceback (most recent call last):
    ...
    ValueError: y: expected class indices in 0..11, got 12
    """
    arr = np.asarray(labels)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        try:
            whole = bool(np.all(np.equal(np.mod(arr, 1), 0)))
        except TypeError:  # strings, objects
            whole = False
        if not whole:
            raise ValueError(f"{name}: expected integer class indices, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    bad = (arr < 0) | (arr >= num_classes)
    if np.any(bad):
        first = arr[bad].flat[0]
        raise ValueError(f"{name}: expected class indices in 0..{num_classes - 1}, got {first}")
    return arr


def check_label_vector(values: ArrayLike, *, num_classes: int = NUM_CLASSES,
                       name: str = "labels") -> np.ndarray:
    """Class labels of shape ``(n,)`` or ``(n, 1)`` (as Keras passes them) as an int64 vector.

    Raises ``ValueError`` naming ``name`` for another shape, or labels that
    :func:`check_labels` refuses.

    >>> check_label_vector([[3], [1]]).tolist()
    [3, 1]
    >>> check_label_vector(np.zeros((2, 2), int), name="y_true")
    Traceback (most recent call last):
    ...
    ValueError: y_true: expected a 1-D array of class indices (or shape (n, 1)), got shape (2, 2)
    """
    arr = np.asarray(values)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(
            f"{name}: expected a 1-D array of class indices (or shape (n, 1)), got shape {arr.shape}"
        )
    return check_labels(arr, num_classes=num_classes, name=name)


def check_class_names(class_names: Sequence[str], num_classes: int = NUM_CLASSES) -> tuple[str, ...]:
    """One name per class, as a tuple of strings (``CLASS_NAMES`` is one such sequence).

    Raises ``ValueError`` for a single string or a number of names other than ``num_classes``.

    >>> check_class_names(["left", "right"], 2)
    ('left', 'right')
    >>> check_class_names("ab", 2)
    Traceback (most recent call last):
    ...
    ValueError: class_names: expected a sequence of names, one per class, got the string 'ab'
    """
    if isinstance(class_names, str):
        raise ValueError(f"class_names: expected a sequence of names, one per class, "
                         f"got the string {class_names!r}")
    names = tuple(str(n) for n in class_names)
    if len(names) != num_classes:
        raise ValueError(
            f"class_names: expected one name per class ({num_classes}), got {len(names)} names"
        )
    return names


def to_count(labels: np.ndarray) -> np.ndarray:
    """Map 12-class labels to the 6-class finger-count view.

    >>> to_count(np.array([0, 1, 7, 11])).tolist()
    [0, 0, 3, 5]
    """
    return check_labels(labels) // 2


def mirror(labels: np.ndarray) -> np.ndarray:
    """Label of the horizontally flipped image: same count, other hand.

    >>> mirror(np.array([0, 7])).tolist()
    [1, 6]
    """
    return check_labels(labels) ^ 1


def parse_filename(name: str) -> tuple[int, str]:
    """Read ``(count, hand)`` from a public-layout file name.

    Raises ``ValueError`` naming the file and the expected pattern.

    >>> parse_filename("a-b-c_0R.png")
    (0, 'R')
    """
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    match = _FILENAME.match(base)
    if match is None:
        raise ValueError(f"{name}: expected a file name {FILENAME_PATTERN}")
    count, hand = int(match["count"]), match["hand"].upper()
    if hand not in HANDS:
        raise ValueError(f"{name}: expected the hand L or R, got {match['hand']!r} "
                         f"({FILENAME_PATTERN})")
    if count > MAX_COUNT:
        raise ValueError(f"{name}: expected a count in 0..{MAX_COUNT}, got {count} "
                         f"({FILENAME_PATTERN})")
    return count, hand


def format_filename(image_id: str, label: int) -> str:
    """File name of an image in the public layout.

    >>> format_filename("00042", 7)
    '00042_3R.png'
    """
    count, hand = decode(label)
    return f"{image_id}_{count}{hand}.png"
