"""Runtime profiles: how big and how long every run in the course is.

Three profiles fix the image size, the sample counts, the batch size and the
number of epochs. Notebooks and the ``course`` CLI read their budget from here
and never from literals of their own, so one switch makes a lesson fast enough
for CI and grading (``smoke``), a laptop (``cpu``) or a GPU (``gpu``).

Selection (:func:`get_profile` with no name), first match wins:

1. ``COURSE_PROFILE`` environment variable (``smoke``, ``cpu`` or ``gpu``);
2. ``smoke`` when running in CI (``CI`` set) or under nbgrader
   (``NBGRADER_EXECUTION`` set while autograding or validating);
3. ``gpu`` when TensorFlow sees a GPU, else ``cpu``.

Examples
--------
>>> p = get_profile("smoke")
>>> p.name, p.image_size, p.epochs
('smoke', 32, 2)
>>> p.input_shape
(32, 32, 1)
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from typing import Final

ENV_VAR: Final = "COURSE_PROFILE"


@dataclasses.dataclass(frozen=True)
class Profile:
    """The compute budget of one runtime profile.

    Attributes
    ----------
    name: ``smoke``, ``cpu`` or ``gpu``.
    image_size: side of the square grayscale images, in pixels.
    train_size, val_size, test_size: number of images in each split.
    batch_size: mini-batch size for training.
    epochs: epochs of a full training run (the reference CNN).
    short_epochs: epochs of each run in a lesson that compares several runs.
    few_shot_per_class: labelled images per class in the small-data lessons
        (overfitting, transfer learning).
    seed: the course's default random seed.
    """

    name: str
    image_size: int
    train_size: int
    val_size: int
    test_size: int
    batch_size: int
    epochs: int
    short_epochs: int
    few_shot_per_class: int
    seed: int = 42

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """Shape of one image as the models expect it: ``(size, size, 1)``."""
        return (self.image_size, self.image_size, 1)

    def as_dict(self) -> dict[str, int | str]:
        """The profile as a plain dictionary (for JSON run records)."""
        return dataclasses.asdict(self)


PROFILES: Final[Mapping[str, Profile]] = {
    "smoke": Profile(
        name="smoke", image_size=32, train_size=480, val_size=120, test_size=120,
        batch_size=32, epochs=2, short_epochs=2, few_shot_per_class=5,
    ),
    "cpu": Profile(
        name="cpu", image_size=64, train_size=6000, val_size=1200, test_size=1200,
        batch_size=64, epochs=6, short_epochs=6, few_shot_per_class=15,
    ),
    "gpu": Profile(
        name="gpu", image_size=128, train_size=18000, val_size=3600, test_size=3600,
        batch_size=128, epochs=20, short_epochs=10, few_shot_per_class=20,
    ),
}


def select_profile_name(
    environ: Mapping[str, str] | None = None,
    has_gpu: Callable[[], bool] | None = None,
) -> str:
    """Name of the profile to use here, following the rules in the module docstring.

    ``has_gpu`` is only called when no environment variable decides (it imports
    TensorFlow); tests inject both arguments.

    >>> select_profile_name({"CI": "true"})
    'smoke'
    >>> select_profile_name({}, has_gpu=lambda: False)
    'cpu'
    """
    env = os.environ if environ is None else environ
    requested = env.get(ENV_VAR, "").strip().lower()
    if requested:
        _check_name(requested, source=f"environment variable {ENV_VAR}")
        return requested
    if env.get("NBGRADER_EXECUTION") or _truthy(env.get("CI", "")):
        return "smoke"
    if has_gpu is None:
        from course_utils.device import has_gpu as has_gpu  # imports TensorFlow
    return "gpu" if has_gpu() else "cpu"


def get_profile(name: str | None = None) -> Profile:
    """Return the named profile, or the one selected for this machine.

    Raises ``ValueError`` naming the valid profiles for an unknown name.

    >>> get_profile("cpu").batch_size
    64
    """
    if name is None:
        name = select_profile_name()
    key = str(name).strip().lower()
    _check_name(key, source="profile")
    return PROFILES[key]


def _check_name(name: str, *, source: str) -> None:
    if name not in PROFILES:
        raise ValueError(f"{source}: unknown profile {name!r}; expected one of {', '.join(PROFILES)}")


def _truthy(value: str) -> bool:
    return value.strip().lower() not in ("", "0", "false", "no")
