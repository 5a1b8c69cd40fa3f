"""Runtime profiles: how big and how long every run in the course is.

Four profiles fix the image size, the sample counts, the batch size and the
number of epochs. Notebooks and the ``course`` CLI read their budget from here
and never from literals of their own, so one switch makes a lesson fast enough
for CI (``smoke``), for nbgrader (``grading``), a laptop (``cpu``) or a GPU (``gpu``).

Selection (:func:`choose_profile`, the pure rule), first match wins:

1. ``COURSE_PROFILE`` environment variable (``smoke``, ``cpu``, ``gpu`` or ``grading``);
2. ``grading`` under nbgrader (``NBGRADER_EXECUTION`` set while autograding or
   validating);
3. ``smoke`` when running in CI (``CI`` set);
4. ``gpu`` when there is a GPU, else ``cpu``.

Why ``grading`` exists: a graded run pays for the lesson's demonstrations (its
training runs), and no hidden test reads what they compute: a test cell uses only
the names it imports and the answers it tests (``tests/test_lessons.py`` checks
every master for that), so its verdict does not depend on the profile. The
``grading`` profile is therefore as small as every cell of every lesson allows (it
must still run); see :data:`PROFILES` for what bounds each number. Validating
(nbgrader's Validate button) gets it too, on purpose: Validate is the student's
preview of the autograder, so it runs the notebook exactly as grading will (an
answer that fails only at grading size fails there first), and as quickly.

This module knows the rule, not the hardware: whether there is a GPU is an
argument. The layers above it ask :mod:`course_utils.runtime.device` and pass the answer
(the notebook set-up, ``course doctor``); :func:`get_profile` with no name asks
:func:`course_utils.runtime.device.has_gpu` itself, only when the environment does not decide.

Examples
--------
>>> p = get_profile("smoke")
>>> p.name, p.image_size, p.epochs
('smoke', 32, 2)
>>> p.input_shape
(32, 32, 1)
>>> choose_profile({"NBGRADER_EXECUTION": "autograde", "CI": "true"}, gpu_available=False)
'grading'
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
    name: ``smoke``, ``cpu``, ``gpu`` or ``grading``.
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


#: The profile nbgrader runs notebooks in (rule 2 of the module docstring).
GRADING: Final = "grading"

#: Every profile by name. ``grading`` is as small as every cell of every lesson master
#: allows (each number is bounded by the lesson code that reads it):
#:
#: - ``image_size`` stays 32, the ``smoke`` size: at these sample counts a smaller image
#:   saves no measurable time (a run's cost is building and tracing its models), and an
#:   answer that reads a lesson's globals (``INPUT_SHAPE``, its base network) sees the
#:   shapes it sees in ``smoke``;
#: - ``epochs`` and ``short_epochs`` stay 2: lesson 02 reads a trend from
#:   ``10 * short_epochs // 4`` epochs and needs three; a second epoch costs milliseconds;
#: - ``train_size`` 48 (four images per class; lesson 05's tiny-subset check takes 10),
#:   ``val_size`` and ``test_size`` 24 (two per class: lesson 00's stratified split and its
#:   test-set figures need every class), ``batch_size`` 16 (three batches an epoch);
#: - ``few_shot_per_class`` 1: twelve images in lessons 00, 02 and 04's small-data runs.
#:
#: Lesson 04 asks for ImageNet weights in every profile but ``smoke``; a graded kernel has
#: no network (the sandbox), so it falls back to the course's base at once.
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
    GRADING: Profile(
        name=GRADING, image_size=32, train_size=48, val_size=24, test_size=24,
        batch_size=16, epochs=2, short_epochs=2, few_shot_per_class=1,
    ),
}


def profile_from_environment(environ: Mapping[str, str]) -> str | None:
    """The profile the environment decides (rules 1 to 3), or ``None`` when it does not.

    Raises ``ValueError`` naming the variable and the valid profiles for an unknown
    ``COURSE_PROFILE``.

    >>> profile_from_environment({"NBGRADER_EXECUTION": "autograde"})
    'grading'
    >>> profile_from_environment({"CI": "true"}), profile_from_environment({}) is None
    ('smoke', True)
    """
    requested = environ.get(ENV_VAR, "").strip().lower()
    if requested:
        _check_name(requested, source=f"environment variable {ENV_VAR}")
        return requested
    if environ.get("NBGRADER_EXECUTION"):
        return GRADING
    if _truthy(environ.get("CI", "")):
        return "smoke"
    return None


def choose_profile(environ: Mapping[str, str], gpu_available: bool) -> str:
    """Name of the profile for this environment and hardware: the whole rule, pure.

    >>> choose_profile({"COURSE_PROFILE": "smoke"}, gpu_available=True)
    'smoke'
    >>> choose_profile({}, gpu_available=True), choose_profile({}, gpu_available=False)
    ('gpu', 'cpu')
    """
    return profile_from_environment(environ) or ("gpu" if gpu_available else "cpu")


def select_profile_name(
    environ: Mapping[str, str] | None = None,
    has_gpu: Callable[[], bool] | None = None,
) -> str:
    """:func:`choose_profile`, asking whether there is a GPU only when it matters.

    ``environ`` defaults to ``os.environ``. ``has_gpu`` is only called when the
    environment does not decide; by default it is :func:`course_utils.runtime.device.has_gpu`,
    which imports TensorFlow. Tests inject both arguments.

    >>> select_profile_name({"CI": "true"})
    'smoke'
    >>> select_profile_name({}, has_gpu=lambda: False)
    'cpu'
    """
    env = os.environ if environ is None else environ
    decided = profile_from_environment(env)
    if decided is not None:
        return decided
    if has_gpu is None:
        from course_utils.runtime.device import has_gpu  # the hardware question, asked lazily
    return choose_profile(env, gpu_available=has_gpu())


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
