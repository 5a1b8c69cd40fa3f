"""Synthetic fingers-count images and the public on-disk layout.

The course's running example is a CNN that counts raised fingers. Its images
follow the public Kaggle "fingers" set: one grayscale hand, light on a noisy
dark background, roughly centred, fingers up, with part of the wrist leaving
the image at the bottom. The real set is 128x128; the profiles use smaller
sizes for speed. Labels are the 12 classes of :mod:`course_utils.labels`
(0-5 raised fingers times left/right hand).

The generator draws each hand from a handful of shapes, so it is fast (a whole
chunk of images is rendered at once with NumPy) and needs no download:

* the palm is a rounded rectangle, the wrist and the five fingers are
  capsules (line segments with a radius); a pixel belongs to the hand when
  its distance to the nearest shape is negative (a signed distance field);
* a raised finger is a long capsule, a folded one only shows its knuckle
  above the palm; a raised thumb sticks out sideways, a folded one makes a
  bump at the lower side of the palm;
* which fingers are raised for a given count varies (index and middle for
  "2", but also thumb and index...), as do rotation, scale, position,
  finger length, width and spread, brightness, edge blur and noise.

Left and right hands are mirror images of each other: every hand is drawn as
a right hand seen from the back (thumb on the image's left when the fingers
point up) and mirrored for a left hand. Hands also differ by finger length
(the little finger is the shortest) and by the thumb bump of a fist, so the
hand is visible in every class, and a horizontally flipped left hand is
exactly a right hand the generator could have drawn (see
:func:`course_utils.datasets.flip_hands`).

The public layout is two flat folders, ``train/`` and ``test/``, of PNG files
named ``<id>_<count><L|R>.png`` (:func:`course_utils.labels.format_filename`).
:func:`export_public_layout` writes it, :func:`load_public_layout` reads one
folder of it, and ``load_fingers(data_dir=...)`` reads the real set the same
way as the synthetic one.

Every name is importable from ``course_utils.fingers``; the modules hold:

- :mod:`~course_utils.fingers.style`: :class:`FingersStyle`, ``DEFAULT_STYLE``, ``ALT_STYLE``;
- :mod:`~course_utils.fingers.generator`: :func:`make_fingers`, the drawing;
- :mod:`~course_utils.fingers.splits`: :class:`FingersSplits` and the stratified
  pick that draws splits (NumPy only);
- :mod:`~course_utils.fingers.layout`: the public on-disk layout (export, load, check);
- :mod:`~course_utils.fingers.loading`: :func:`load_fingers`, a profile's three splits;
- :mod:`~course_utils.fingers.cli`: ``course data``.

Examples
--------
>>> from course_utils import fingers
>>> x, y = fingers.make_fingers(24, image_size=32, seed=0)
>>> x.shape, x.dtype, y.dtype
((24, 32, 32), dtype('uint8'), dtype('int64'))
>>> sorted(set(y.tolist())) == list(range(12))
True
>>> data = fingers.load_fingers("smoke")
>>> data.image_size, len(data.y_train), len(data.y_val), len(data.y_test)
(32, 480, 120, 120)
"""

from __future__ import annotations

from course_utils.fingers.cli import configure_parser, run_command
from course_utils.fingers.generator import make_fingers
from course_utils.fingers.layout import (
    PUBLIC_IMAGE_SIZE,
    DataFolder,
    export_public_layout,
    load_public_layout,
    read_data_folder,
)
from course_utils.fingers.loading import load_fingers
from course_utils.fingers.splits import FingersSplits
from course_utils.fingers.style import ALT_STYLE, DEFAULT_STYLE, FingersStyle

__all__ = [
    "ALT_STYLE",
    "DEFAULT_STYLE",
    "DataFolder",
    "FingersSplits",
    "FingersStyle",
    "PUBLIC_IMAGE_SIZE",
    "configure_parser",
    "export_public_layout",
    "load_fingers",
    "load_public_layout",
    "make_fingers",
    "read_data_folder",
    "run_command",
]
