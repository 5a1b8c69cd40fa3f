"""The generator: hands drawn from a few shapes, a whole chunk of images at once in NumPy.

See :mod:`course_utils.fingers` for what the images look like and why.

Examples
--------
>>> x, y = make_fingers(12, image_size=16, seed=0)
>>> x.shape, x.dtype
((12, 16, 16), dtype('uint8'))
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from typing import Final

import numpy as np

from course_utils import labels
from course_utils.fingers.style import DEFAULT_STYLE, FingersStyle
from course_utils.runtime import seeds
from course_utils.runtime.checks import check_scalar
from course_utils.runtime.device import usable_cpu_count

__all__ = ["make_fingers"]

# Pixels rendered per chunk: the working arrays of one chunk stay in the CPU cache.
_CHUNK_PIXELS: Final = 1 << 16
_MAX_WORKERS: Final = 4

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
    n = check_scalar(n, "n", int, min_val=0)
    image_size = check_scalar(image_size, "image_size", int, min_val=8)
    seed = check_scalar(seed, "seed", int, min_val=0)
    if not isinstance(style, FingersStyle):
        raise ValueError(f"style: expected a FingersStyle, got {type(style).__name__}")

    params = seeds.make_rng(seed, 0)
    y = _balanced_labels(n, params)
    scene = _draw_scene(y, params, style)
    x = np.empty((n, image_size, image_size), np.uint8)
    chunk = max(1, _CHUNK_PIXELS // (image_size * image_size))
    starts = range(0, n, chunk)

    def render(lo: int) -> None:
        hi = min(lo + chunk, n)
        noise_rng = seeds.make_rng(seed, 1, lo)
        x[lo:hi] = _render(scene, lo, hi, image_size, noise_rng)

    workers = min(_MAX_WORKERS, usable_cpu_count(), len(starts))
    if workers <= 1:
        for lo in starts:
            render(lo)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(render, starts))
    return x, y
