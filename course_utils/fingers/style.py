"""How the synthetic hands look: :class:`FingersStyle` and the course's two renderings.

Examples
--------
>>> DEFAULT_STYLE.rotation, ALT_STYLE.rotation
(15.0, 40.0)
"""

from __future__ import annotations

import dataclasses
import math
from typing import Final

from course_utils.runtime.checks import check_scalar

__all__ = ["ALT_STYLE", "DEFAULT_STYLE", "FingersStyle"]


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
        for name in ("gradient", "rotation", "shift"):
            check_scalar(getattr(self, name), f"FingersStyle.{name}", float, min_val=0)
        for name in ("finger_length", "width_jitter"):  # relative jitters: 1 +- a
            check_scalar(getattr(self, name), f"FingersStyle.{name}", float, min_val=0, max_val=1,
                         include_boundaries="left")
        check_scalar(self.finger_width, "FingersStyle.finger_width", float, min_val=0,
                     include_boundaries="neither")
        check_scalar(self.random_gesture, "FingersStyle.random_gesture", float, min_val=0,
                     max_val=1)


def _check_range(
    name: str, value: object, *, low: float, high: float = math.inf, open_low: bool = False
) -> None:
    """``FingersStyle.name`` is a pair ``(low, high)`` within the bounds, or ``ValueError``."""
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

