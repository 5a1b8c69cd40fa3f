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
from typing import Final

import numpy as np

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
    if not 0 <= int(count) <= MAX_COUNT:
        raise ValueError(f"count must be between 0 and {MAX_COUNT}, got {count!r}")
    if hand not in HANDS:
        raise ValueError(f"hand must be 'L' or 'R', got {hand!r}")
    return 2 * int(count) + HANDS.index(hand)


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
    """
    arr = np.asarray(labels)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.equal(np.mod(arr, 1), 0)):
            raise ValueError(f"{name} must be integer class indices, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    bad = (arr < 0) | (arr >= num_classes)
    if np.any(bad):
        first = arr[bad].flat[0]
        raise ValueError(
            f"{name} out of range: found {first}, expected integers in 0..{num_classes - 1}"
        )
    return arr


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
        raise ValueError(f"{name}: file name does not follow {FILENAME_PATTERN}")
    count, hand = int(match["count"]), match["hand"].upper()
    if hand not in HANDS:
        raise ValueError(f"{name}: hand must be L or R, got {match['hand']!r} ({FILENAME_PATTERN})")
    if count > MAX_COUNT:
        raise ValueError(f"{name}: label out of range, count {count} is not in 0..{MAX_COUNT}")
    return count, hand


def format_filename(image_id: str, label: int) -> str:
    """File name of an image in the public layout.

    >>> format_filename("00042", 7)
    '00042_3R.png'
    """
    count, hand = decode(label)
    return f"{image_id}_{count}{hand}.png"
