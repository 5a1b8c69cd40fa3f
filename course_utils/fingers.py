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

import argparse
import dataclasses
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Final

import numpy as np

from course_utils import io, labels, profiles

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

#: Side of the images of the public set, in pixels (the profiles train on smaller ones).
PUBLIC_IMAGE_SIZE: Final = 128
# Pixels rendered per chunk: the working arrays of one chunk stay in the CPU cache.
_CHUNK_PIXELS: Final = 1 << 16
_MAX_WORKERS: Final = 4
_FINGERS: Final = ("thumb", "index", "middle", "ring", "little")


# ---------------------------------------------------------------------------
# Style
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FingersStyle:
    """How the synthetic hands are drawn: the ranges every image's look is drawn from.

    Lengths are fractions of half the image side (the image spans -1..1), so a
    style looks the same at every image size. A pair ``(low, high)`` is a range
    drawn uniformly per image; a single number ``a`` is the symmetric range
    ``-a..a`` (or a relative jitter ``1 - a .. 1 + a`` where noted).

    Attributes
    ----------
    background: background brightness (0 black, 1 white).
    hand: hand brightness.
    gradient: brightness change across the background (uneven lighting).
    shading: darkening of the hand towards its outline (0 flat, 1 black edge).
    noise: standard deviation of the Gaussian pixel noise.
    blur: width of the blurred outline, as a fraction of the half side.
    rotation: rotation of the hand, in degrees either way.
    scale: size of the hand (1 fills about two thirds of the image height).
    shift: displacement of the hand's centre, either way, in both directions.
    finger_length: relative jitter of each finger's length.
    finger_width: width multiplier of every finger (the hand's build).
    width_jitter: relative jitter of the finger width per image.
    spread: multiplier of the angles between the fingers.
    thumb_angle: angle of a raised thumb away from the index finger, degrees.
    random_gesture: share of images whose raised fingers are any set of the
        right size, rather than a common gesture (index and middle for 2...).

    Examples
    --------
    >>> FingersStyle().rotation
    15.0
    >>> FingersStyle(noise=(0.0, 0.0)).noise
    (0.0, 0.0)
    >>> FingersStyle(scale=(2.0, 1.0))
    Traceback (most recent call last):
    ...
    ValueError: FingersStyle.scale: expected (low, high) with 0 < low <= high, got (2.0, 1.0)
    """

    background: tuple[float, float] = (0.06, 0.30)
    hand: tuple[float, float] = (0.62, 0.95)
    gradient: float = 0.08
    shading: tuple[float, float] = (0.0, 0.30)
    noise: tuple[float, float] = (0.02, 0.06)
    blur: tuple[float, float] = (0.02, 0.05)
    rotation: float = 15.0
    scale: tuple[float, float] = (1.0, 1.25)
    shift: float = 0.07
    finger_length: float = 0.10
    finger_width: float = 1.0
    width_jitter: float = 0.15
    spread: tuple[float, float] = (0.9, 1.5)
    thumb_angle: tuple[float, float] = (35.0, 65.0)
    random_gesture: float = 0.1

    def __post_init__(self) -> None:
        for name in ("background", "hand", "shading"):
            _check_range(name, getattr(self, name), low=0.0, high=1.0)
        for name in ("noise", "blur", "thumb_angle"):
            _check_range(name, getattr(self, name), low=0.0)
        for name in ("scale", "spread"):
            _check_range(name, getattr(self, name), low=0.0, open_low=True)
        for name in ("gradient", "rotation", "shift", "width_jitter", "finger_length"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not value >= 0:
                raise ValueError(f"FingersStyle.{name}: expected a number >= 0, got {value!r}")
        for name in ("finger_length", "width_jitter"):
            if getattr(self, name) >= 1:
                raise ValueError(
                    f"FingersStyle.{name}: expected a relative jitter in [0, 1), "
                    f"got {getattr(self, name)!r}"
                )
        if not isinstance(self.finger_width, int | float) or not self.finger_width > 0:
            raise ValueError(
                f"FingersStyle.finger_width: expected a number > 0, got {self.finger_width!r}"
            )
        share = self.random_gesture
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
            raise ValueError(
                f"FingersStyle.random_gesture: expected a share in [0, 1], "
                f"got {self.random_gesture!r}"
            )


def _check_range(
    name: str, value: object, *, low: float, high: float = math.inf, open_low: bool = False
) -> None:
    ok = (
        isinstance(value, tuple)
        and len(value) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        and (low < value[0] if open_low else low <= value[0])
        and value[0] <= value[1] <= high
    )
    if not ok:
        bounds = f"{low:g} {'<' if open_low else '<='} low <= high"
        bounds += f" <= {high:g}" if high < math.inf else ""
        raise ValueError(f"FingersStyle.{name}: expected (low, high) with {bounds}, got {value!r}")


#: The course's rendering: light hand, dark noisy background (like the Kaggle set).
DEFAULT_STYLE: Final = FingersStyle()

#: A clearly different rendering (dark, thick-fingered hands on a light, smooth
#: background, more rotation): the *source* task of the transfer-learning lesson.
ALT_STYLE: Final = FingersStyle(
    background=(0.70, 0.95),
    hand=(0.15, 0.40),
    gradient=0.15,
    shading=(0.0, 0.1),
    noise=(0.0, 0.03),
    blur=(0.04, 0.08),
    rotation=40.0,
    scale=(0.75, 1.0),
    finger_width=1.35,
    spread=(0.9, 1.6),
)


# ---------------------------------------------------------------------------
# Generator
# ---------------------------------------------------------------------------

# Canonical right hand seen from the back, fingers up, thumb on the left (u < 0).
# Units: half the image side at scale 1. Order: thumb, index, middle, ring, little.
_PALM_HALF_WIDTH: Final = 0.27
_PALM_HALF_HEIGHT: Final = 0.24
_PALM_CENTRE_V: Final = -0.12
_PALM_ROUND: Final = 0.08
_FINGER_U: Final = np.array([0.0, -0.2, -0.068, 0.068, 0.2])
_FINGER_ANGLE: Final = np.array([0.0, -15.0, -4.0, 7.0, 19.0])  # degrees from vertical, + to u > 0
_FINGER_LENGTH: Final = np.array([0.34, 0.42, 0.47, 0.43, 0.33])
_FINGER_RADIUS: Final = np.array([0.075, 0.058, 0.062, 0.058, 0.05])
_FOLDED_LENGTH: Final = 0.03  # how far a folded finger's knuckle rises above the palm

# Common gestures per count, as raised-finger masks (bit i = finger i) with weights.
_GESTURES: Final = {
    0: {0b00000: 1.0},
    1: {0b00010: 0.7, 0b00100: 0.1, 0b00001: 0.1, 0b10000: 0.1},
    2: {0b00110: 0.6, 0b00011: 0.25, 0b10010: 0.15},
    3: {0b00111: 0.4, 0b01110: 0.5, 0b10011: 0.1},
    4: {0b11110: 0.8, 0b01111: 0.2},
    5: {0b11111: 1.0},
}


def _gesture_table(random_gesture: float) -> np.ndarray:
    """Cumulative probabilities (6, 32) of each raised-finger mask for each count."""
    masks = np.arange(32)
    popcount = np.array([bin(m).count("1") for m in masks])
    table = np.zeros((labels.NUM_COUNTS, 32))
    for count, gestures in _GESTURES.items():
        uniform = (popcount == count) / np.count_nonzero(popcount == count)
        common = np.zeros(32)
        for mask, weight in gestures.items():
            common[mask] = weight
        table[count] = (1 - random_gesture) * common / common.sum() + random_gesture * uniform
    cumulative = np.cumsum(table, axis=1)
    return cumulative / cumulative[:, -1:]  # exactly 1 at the end: no draw falls past it


def _balanced_labels(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` labels, ``n // 12`` of each class and the remainder on distinct classes, shuffled."""
    y = np.tile(np.arange(labels.NUM_CLASSES), n // labels.NUM_CLASSES + 1)[:n]
    extra = n % labels.NUM_CLASSES
    if extra:
        y[n - extra:] = rng.permutation(labels.NUM_CLASSES)[:extra]
    return rng.permutation(y).astype(np.int64)


@dataclasses.dataclass(frozen=True)
class _Scene:
    """Everything random about ``n`` images, in image coordinates (float32 arrays)."""

    seg_a: np.ndarray  # (n, 6, 2) capsule start points: 5 fingers and the wrist
    seg_b: np.ndarray  # (n, 6, 2) capsule end points
    seg_r: np.ndarray  # (n, 6) capsule radii
    palm_c: np.ndarray  # (n, 2) palm centre
    palm_rot: np.ndarray  # (n, 2) cos, sin of the rotation
    palm_half: np.ndarray  # (n, 2) half width, half height (before rounding)
    palm_round: np.ndarray  # (n,) corner radius
    background: np.ndarray  # (n,)
    grad: np.ndarray  # (n, 2) background gradient along x and y
    hand: np.ndarray  # (n,)
    shading: np.ndarray  # (n,)
    shade_depth: np.ndarray  # (n,)
    blur: np.ndarray  # (n,)
    noise: np.ndarray  # (n,)


def _draw_scene(y: np.ndarray, rng: np.random.Generator, style: FingersStyle) -> _Scene:
    """Draw the shapes and looks of ``len(y)`` hands (all NumPy, no loop over images)."""
    n = len(y)
    count, is_right = y // 2, (y % 2).astype(bool)

    def uniform(bounds: tuple[float, float], size: int | tuple[int, ...] = n) -> np.ndarray:
        return rng.uniform(bounds[0], bounds[1], size)

    # Which fingers are raised.
    cumulative = _gesture_table(style.random_gesture)[count]
    mask = (rng.random(n)[:, None] > cumulative).sum(axis=1)
    raised = ((mask[:, None] >> np.arange(5)) & 1).astype(bool)

    # Pose and proportions.
    theta = np.deg2rad(rng.uniform(-style.rotation, style.rotation, n))
    scale = uniform(style.scale)
    centre = rng.uniform(-style.shift, style.shift, (n, 2))
    palm_w = _PALM_HALF_WIDTH * rng.uniform(0.92, 1.08, n)
    palm_h = _PALM_HALF_HEIGHT * rng.uniform(0.92, 1.08, n)
    spread = uniform(style.spread)
    hand_length = rng.uniform(0.92, 1.08, n)

    length_jitter = rng.uniform(1 - style.finger_length, 1 + style.finger_length, (n, 5))
    length = _FINGER_LENGTH * hand_length[:, None] * length_jitter
    width = style.finger_width * rng.uniform(1 - style.width_jitter, 1 + style.width_jitter, n)
    radius = _FINGER_RADIUS * width[:, None] * rng.uniform(0.95, 1.05, (n, 5))
    angle = _FINGER_ANGLE * spread[:, None] + rng.uniform(-2.0, 2.0, (n, 5))

    # Finger bases sit on the palm's top edge, slightly inside it.
    top = _PALM_CENTRE_V + palm_h
    base_u = _FINGER_U * (palm_w / _PALM_HALF_WIDTH)[:, None] + rng.uniform(-0.01, 0.01, (n, 5))
    base_v = np.broadcast_to((top - 0.06)[:, None], (n, 5)).copy()
    reach = np.where(raised, length, _FOLDED_LENGTH + 0.06 + rng.uniform(-0.015, 0.015, (n, 5)))

    # The thumb starts low on the palm's left side; raised it points up-left,
    # folded it lies along the palm's side and makes a bump.
    base_u[:, 0] = -palm_w + 0.05
    base_v[:, 0] = _PALM_CENTRE_V - 0.45 * palm_h
    thumb_up = -uniform(style.thumb_angle)
    thumb_folded = rng.uniform(-8.0, 8.0, n)
    angle[:, 0] = np.where(raised[:, 0], thumb_up, thumb_folded)
    reach[:, 0] = np.where(raised[:, 0], length[:, 0] + 0.08, 0.2 * hand_length)
    base_u[:, 0] -= np.where(raised[:, 0], 0.0, 0.05)

    rad = np.deg2rad(angle)
    tip_u = base_u + reach * np.sin(rad)
    tip_v = base_v + reach * np.cos(rad)

    # Wrist: a wide capsule from inside the palm down and out of the image.
    wrist_r = palm_w * rng.uniform(0.7, 0.82, n)
    wrist_u0 = rng.uniform(0.0, 0.05, n)
    wrist_a = np.stack([wrist_u0, np.full(n, _PALM_CENTRE_V)], axis=1)
    wrist_b = np.stack([wrist_u0 + rng.uniform(-0.05, 0.1, n), np.full(n, -3.0)], axis=1)

    a_local = np.concatenate([np.stack([base_u, base_v], axis=2), wrist_a[:, None]], axis=1)
    b_local = np.concatenate([np.stack([tip_u, tip_v], axis=2), wrist_b[:, None]], axis=1)
    seg_r = np.concatenate([radius, wrist_r[:, None]], axis=1) * scale[:, None]

    # Local (u, v) -> image (x, y): mirror u for a left hand, rotate, scale, shift.
    mirror = np.where(is_right, 1.0, -1.0)
    cos, sin = np.cos(theta), np.sin(theta)

    def to_image(points: np.ndarray) -> np.ndarray:
        u = points[..., 0] * mirror[:, None]
        v = points[..., 1]
        x = centre[:, 0, None] + scale[:, None] * (cos[:, None] * u - sin[:, None] * v)
        yy = centre[:, 1, None] + scale[:, None] * (sin[:, None] * u + cos[:, None] * v)
        return np.stack([x, yy], axis=-1)

    palm_c = to_image(np.stack([np.zeros(n), np.full(n, _PALM_CENTRE_V)], axis=1)[:, None])[:, 0]
    rounding = _PALM_ROUND * scale
    palm_half = np.stack([palm_w, palm_h], axis=1) * scale[:, None] - rounding[:, None]
    f32 = np.float32
    return _Scene(
        seg_a=to_image(a_local).astype(f32),
        seg_b=to_image(b_local).astype(f32),
        seg_r=seg_r.astype(f32),
        palm_c=palm_c.astype(f32),
        palm_rot=np.stack([cos, sin], axis=1).astype(f32),
        palm_half=palm_half.astype(f32),
        palm_round=rounding.astype(f32),
        background=uniform(style.background).astype(f32),
        grad=rng.uniform(-style.gradient, style.gradient, (n, 2)).astype(f32),
        hand=uniform(style.hand).astype(f32),
        shading=uniform(style.shading).astype(f32),
        shade_depth=(0.12 * scale).astype(f32),
        blur=uniform(style.blur).astype(f32),
        noise=uniform(style.noise).astype(f32),
    )


def _render(scene: _Scene, lo: int, hi: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Render images ``lo:hi`` of ``scene`` as uint8 (hi - lo, size, size)."""
    f32 = np.float32
    b = hi - lo
    grid = ((np.arange(size, dtype=f32) + f32(0.5)) * f32(2.0 / size) - f32(1.0)).astype(f32)
    xs = grid[None, None, :]  # (1, 1, S): x grows to the right
    ys = -grid[None, :, None]  # (1, S, 1): y grows upwards

    def col(values: np.ndarray) -> np.ndarray:
        return values[lo:hi, None, None]

    # Palm: signed distance to a rounded rectangle, in rotated coordinates.
    dx = xs - col(scene.palm_c[:, 0])
    dy = ys - col(scene.palm_c[:, 1])
    cos, sin = col(scene.palm_rot[:, 0]), col(scene.palm_rot[:, 1])
    qu = np.abs(dx * cos + dy * sin)
    qu -= col(scene.palm_half[:, 0])
    qv = np.abs(dy * cos - dx * sin)
    qv -= col(scene.palm_half[:, 1])
    inside = np.minimum(np.maximum(qu, qv), 0.0)
    np.maximum(qu, 0.0, out=qu)
    np.maximum(qv, 0.0, out=qv)
    np.multiply(qu, qu, out=qu)
    np.multiply(qv, qv, out=qv)
    qu += qv
    dist = np.sqrt(qu, out=qu)
    dist += inside
    dist -= col(scene.palm_round)

    # Fingers and wrist: distance to each capsule, keeping the minimum.
    h = np.empty((b, size, size), f32)
    qx = np.empty_like(h)
    for k in range(scene.seg_a.shape[1]):
        ax, ay = col(scene.seg_a[:, k, 0]), col(scene.seg_a[:, k, 1])
        sx = col(scene.seg_b[:, k, 0]) - ax
        sy = col(scene.seg_b[:, k, 1]) - ay
        inv = f32(1.0) / (sx * sx + sy * sy)
        px, py = xs - ax, ys - ay  # (b, 1, S) and (b, S, 1)
        np.add(px * (sx * inv), py * (sy * inv), out=h)
        np.clip(h, 0.0, 1.0, out=h)
        np.multiply(h, sx, out=qx)
        np.subtract(px, qx, out=qx)
        np.multiply(qx, qx, out=qx)
        np.multiply(h, sy, out=h)
        np.subtract(py, h, out=h)
        np.multiply(h, h, out=h)
        h += qx
        np.sqrt(h, out=h)
        h -= col(scene.seg_r[:, k])
        np.minimum(dist, h, out=dist)

    # Brightness: the hand darkens towards its outline (shading) and is laid over a
    # lit background through a soft mask (blurred outline); then sensor noise.
    image = np.clip(dist * (f32(-1.0) / col(scene.shade_depth)), 0.0, 1.0)  # 1 deep inside
    image -= f32(1.0)
    image *= col(scene.shading * scene.hand)
    image += col(scene.hand)
    width = np.maximum(col(scene.blur), f32(2.0 / size))  # at least one pixel
    alpha = np.clip(f32(0.5) - dist / width, 0.0, 1.0, out=dist)
    background = col(scene.background) + xs * col(scene.grad[:, 0]) + ys * col(scene.grad[:, 1])
    image -= background
    image *= alpha
    image += background
    noise = rng.standard_normal((b, size, size), dtype=f32)
    noise *= col(scene.noise)
    image += noise
    image *= f32(255.0)
    image += f32(0.5)
    np.clip(image, 0.0, 255.0, out=image)
    return image.astype(np.uint8)


def make_fingers(
    n: int,
    *,
    image_size: int = 64,
    seed: int = 0,
    style: FingersStyle = DEFAULT_STYLE,
) -> tuple[np.ndarray, np.ndarray]:
    """Generate ``n`` synthetic hand images with their 12-class labels.

    Every class gets ``n // 12`` images and the remainder goes to distinct
    classes; the order is shuffled. The result depends only on
    ``(n, image_size, seed, style)``: the same arguments give the same bytes.

    Returns ``(images, labels)``: uint8 ``(n, image_size, image_size)`` in
    0-255 and int64 ``(n,)`` class indices (:mod:`course_utils.labels`).

    Raises ``ValueError`` naming the argument when ``n``, ``image_size`` or
    ``seed`` is not a valid integer or ``style`` is not a :class:`FingersStyle`.

    Examples
    --------
    >>> x, y = make_fingers(12, image_size=32, seed=1)
    >>> x.shape, sorted(y.tolist()) == list(range(12))
    ((12, 32, 32), True)
    >>> bool((make_fingers(12, image_size=32, seed=1)[0] == x).all())
    True
    """
    n = _check_int("n", n, minimum=0)
    image_size = _check_int("image_size", image_size, minimum=8)
    seed = _check_int("seed", seed, minimum=0)
    if not isinstance(style, FingersStyle):
        raise ValueError(f"style: expected a FingersStyle, got {type(style).__name__}")

    params = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 0])))
    y = _balanced_labels(n, params)
    scene = _draw_scene(y, params, style)
    x = np.empty((n, image_size, image_size), np.uint8)
    chunk = max(1, _CHUNK_PIXELS // (image_size * image_size))
    starts = range(0, n, chunk)

    def render(lo: int) -> None:
        hi = min(lo + chunk, n)
        noise_rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 1, lo])))
        x[lo:hi] = _render(scene, lo, hi, image_size, noise_rng)

    from course_utils.device import usable_cpu_count

    workers = min(_MAX_WORKERS, usable_cpu_count(), len(starts))
    if workers <= 1:
        for lo in starts:
            render(lo)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(render, starts))
    return x, y


def _check_int(name: str, value: object, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value}")
    return int(value)


# ---------------------------------------------------------------------------
# Splits
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FingersSplits:
    """Training, validation and test images with their labels.

    Images are uint8 ``(n, size, size)``, labels int64 class indices. The test
    split is the "vault": look at it once, at the very end.

    Examples
    --------
    >>> data = load_fingers("smoke")
    >>> data.image_size, data.x_train.shape
    (32, (480, 32, 32))
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def image_size(self) -> int:
        """Side of the square images, in pixels."""
        return int(self.x_train.shape[1])


def _split_seeds(seed: int) -> tuple[int, int, int]:
    """Independent seeds for the train, validation and test splits of one data set."""
    state = np.random.SeedSequence([seed, 42]).generate_state(3)
    return int(state[0]), int(state[1]), int(state[2])


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


def load_fingers(
    profile: str | profiles.Profile | None = None,
    *,
    data_dir: str | os.PathLike[str] | DataFolder | None = None,
    seed: int | None = None,
    style: FingersStyle = DEFAULT_STYLE,
) -> FingersSplits:
    """Training, validation and test splits sized by a runtime profile.

    Without ``data_dir`` the images are synthetic (:func:`make_fingers`), each
    split drawn with its own seed derived from ``seed`` (default: the
    profile's), so no image is shared between splits.

    With ``data_dir`` the images come from a folder in the public layout
    (``train/`` and ``test/``, e.g. the real Kaggle set; or a :class:`DataFolder`
    read from one already): they are resized to
    the profile's image size, ``train/`` is split into training and validation
    data (stratified, in the profile's proportions) and ``test/`` is the test
    split. A folder holding more images than the profile asks for is
    subsampled (stratified, seeded) to the profile's sizes, so a run costs the
    same with real and with synthetic data; a smaller folder is used whole. Any
    count works, from 2 training images and 1 test image up (with fewer validation
    images than classes, some classes are missing from validation).

    Raises ``ValueError`` for an unknown profile or fewer than 2 training images,
    and the errors of :func:`load_public_layout` (naming the file and what was
    expected) for a folder that does not follow the layout.

    Examples
    --------
    >>> data = load_fingers("smoke", seed=7)
    >>> data.x_val.shape, data.y_test.dtype
    ((120, 32, 32), dtype('int64'))
    """
    prof = profile if isinstance(profile, profiles.Profile) else profiles.get_profile(profile)
    seed = prof.seed if seed is None else _check_int("seed", seed, minimum=0)
    if data_dir is None:
        s_train, s_val, s_test = _split_seeds(seed)
        size = prof.image_size
        x_train, y_train = make_fingers(prof.train_size, image_size=size, seed=s_train, style=style)
        x_val, y_val = make_fingers(prof.val_size, image_size=size, seed=s_val, style=style)
        x_test, y_test = make_fingers(prof.test_size, image_size=size, seed=s_test, style=style)
        return FingersSplits(x_train, y_train, x_val, y_val, x_test, y_test)

    folder = data_dir if isinstance(data_dir, DataFolder) else read_data_folder(data_dir)
    budget = prof.train_size + prof.val_size
    rng = np.random.default_rng(seed)
    keep = _stratified_pick(folder.y_train, min(budget, len(folder.y_train)), rng)
    x_all, y_all = _resize_all(folder.x_train[keep], prof.image_size), folder.y_train[keep]
    keep = _stratified_pick(folder.y_test, min(prof.test_size, len(folder.y_test)), rng)
    x_test, y_test = _resize_all(folder.x_test[keep], prof.image_size), folder.y_test[keep]
    n_val = min(max(round(len(y_all) * prof.val_size / budget), 1), len(y_all) - 1)
    val = _stratified_pick(y_all, n_val, rng)
    train = np.setdiff1d(np.arange(len(y_all)), val)
    return FingersSplits(x_all[train], y_all[train], x_all[val], y_all[val], x_test, y_test)


def _stratified_pick(y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of ``n`` of the labels ``y``, drawn at random, stratified by class.

    Every class gets its share ``n * count / len(y)`` rounded down; the images left
    over go to the classes with the largest remainders (ties broken at random). Any
    ``0 <= n <= len(y)`` works, also fewer images than classes.

    >>> y = np.repeat(np.arange(3), [6, 3, 3])
    >>> np.bincount(y[_stratified_pick(y, 4, np.random.default_rng(0))]).tolist()
    [2, 1, 1]
    """
    if not 0 <= n <= len(y):
        raise ValueError(f"n: expected 0 <= n <= {len(y)} (the images there are), got {n}")
    classes, counts = np.unique(y, return_counts=True)
    quota = counts * n / max(len(y), 1)
    take = np.floor(quota).astype(int)
    remainder = quota - take
    tie_break = rng.random(len(classes))
    order = np.lexsort((tie_break, -remainder))  # largest remainder first
    take[order[: n - int(take.sum())]] += 1
    picked = [rng.choice(np.flatnonzero(y == c), size=k, replace=False)
              for c, k in zip(classes, take, strict=True)]
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, dtype=np.int64)


# ---------------------------------------------------------------------------
# Public on-disk layout
# ---------------------------------------------------------------------------

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
        image_size = _check_int("image_size", image_size, minimum=1)
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


def _resize_all(images: np.ndarray, size: int) -> np.ndarray:
    """``images`` ``(n, s, s)`` resized to ``(n, size, size)`` (as they are if ``s == size``)."""
    if images.shape[1] == size:
        return images
    return np.stack([_resize(image, size) for image in images]) if len(images) else (
        np.zeros((0, size, size), np.uint8))


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    resized = Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.uint8)


# ---------------------------------------------------------------------------
# Command line: course data
# ---------------------------------------------------------------------------

DEFAULT_OUT: Final = Path("data") / "fingers"


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``course data``.

    >>> p = argparse.ArgumentParser(); configure_parser(p)
    >>> p.parse_args(["--profile", "smoke"]).out
    'data/fingers'
    """
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    smoke = profiles.get_profile("smoke")
    n_smoke = smoke.train_size + smoke.val_size + smoke.test_size
    parser.epilog = (
        "examples:\n"
        f"  course data --profile smoke --out data/tiny   a small set ({n_smoke} images, "
        f"{smoke.image_size}x{smoke.image_size})\n"
        "  course data --overwrite                       replace data/fingers\n"
        "  course train --data data/fingers              then train on it\n"
    )
    parser.add_argument("--profile", choices=sorted(profiles.PROFILES),
                        help="runtime profile: image size and number of images "
                             "(default: chosen for this machine)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), metavar="DIR",
                        help=f"folder to write train/ and test/ to (default: {DEFAULT_OUT})")
    parser.add_argument("--seed", type=int, help="random seed (default: the profile's)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the folder if it is not empty")


def _check_can_write_beside(target: Path) -> None:
    """Raise ``OSError`` naming the folder when ``target`` could not be written there."""
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryDirectory(prefix=f".{target.name}.", dir=parent).cleanup()
    except OSError as exc:
        raise OSError(
            f"{parent}: cannot write the data set there ({exc.strerror or exc}); expected a "
            f"folder you can write to (choose one with --out)"
        ) from exc


def run_command(args: argparse.Namespace) -> int:
    """``course data``: export the synthetic set in the public layout and say where.

    Returns 0 on success; on a bad argument or folder prints the error (no
    traceback) to stderr and returns 2.
    """
    try:
        target = Path(args.out)
        if target.is_dir() and any(target.iterdir()) and not args.overwrite:
            raise FileExistsError(
                f"{target}: folder is not empty; pass --overwrite to replace it, "
                f"or choose another folder with --out"
            )
        _check_can_write_beside(target)  # before the profile (it may load TensorFlow) and
        profile = profiles.get_profile(args.profile)  # the images, which take a while
        data = load_fingers(profile, seed=args.seed)
        out = export_public_layout(target, data, overwrite=args.overwrite)
    except (ValueError, OSError) as exc:
        print(f"course data: error: {exc}", file=sys.stderr)
        return 2
    n_train = len(data.y_train) + len(data.y_val)
    n_test = len(data.y_test)
    size = profile.image_size
    print(f"Wrote {n_train + n_test} synthetic images ({size}x{size}, profile {profile.name}):")
    print(f"  {out / 'train'}  {n_train} files")
    print(f"  {out / 'test'}  {n_test} files")
    print(f"Files are named {labels.FILENAME_PATTERN}.")
    print(f"Train on them with: course train --data {out}")
    return 0
