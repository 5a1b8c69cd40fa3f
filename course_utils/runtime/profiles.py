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
4. ``cpu`` otherwise, on a GPU too.

Why a GPU gets ``cpu`` by default: every lesson's claims and times are verified at the
``cpu`` sizes (``make claims``), and the ``gpu`` profile's larger sizes have not yet been
run on a GPU by this course. A GPU (Colab's, say) runs the verified sizes faster; the
``gpu`` sizes are an explicit opt-in (``COURSE_PROFILE=gpu``, :data:`OPT_IN`), and the
set-up cell and ``course doctor`` say so when they find a GPU (:data:`GPU_NOTE`).

Why ``grading`` exists: a graded run pays for the lesson's demonstrations (its
training runs), and no hidden test reads what they compute: a test cell uses only
the names it imports and the answers it tests (``tests/test_lessons.py`` checks
every master for that), so its verdict does not depend on the profile. The
``grading`` profile is therefore as small as every cell of every lesson allows (it
must still run); see :data:`PROFILES` for what bounds each number. Validating
(nbgrader's Validate button) gets it too, on purpose: Validate is the student's
preview of the autograder, so it runs the notebook exactly as grading will (an
answer that fails only at grading size fails there first), and as quickly.

This module knows the rule and no hardware: it never imports
:mod:`course_utils.runtime.device`.

Examples
--------
>>> p = get_profile("smoke")
>>> p.name, p.image_size, p.epochs
('smoke', 32, 2)
>>> p.input_shape
(32, 32, 1)
>>> choose_profile({"NBGRADER_EXECUTION": "autograde", "CI": "true"})
'grading'
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
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
    few_shot_epochs: epochs of every run on those few images (lessons 02 and 04), where an
        epoch is a batch or two and a run's cost is the number of epochs, not the data.
    repeats: how many seeds a comparison of training runs repeats every run over
        (:attr:`comparison_seeds`); a spread needs two, the lessons' claims are made at
        three (``cpu`` and ``gpu``).
    seed: the course's default random seed.
    optimize_graphs: whether TensorFlow's graph optimizer (Grappler) rewrites every traced
        function before its first call. The rewrites pay off over many training steps; the
        tiny profiles (``smoke``, ``grading``) build and trace a new function for almost every
        check and train it for a few dozen steps, so there they are switched off: lesson 05,
        which traces the most, then runs 5 to 10 % faster (``benchmarks/bench_lessons.py``).
        The operations are the same, so results differ at most in floating-point rounding.
        :func:`course_utils.notebook.setup_notebook` applies it.
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
    few_shot_epochs: int
    repeats: int = 3
    seed: int = 42
    optimize_graphs: bool = True

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """Shape of one image as the models expect it: ``(size, size, 1)``."""
        return (self.image_size, self.image_size, 1)

    @property
    def comparison_seeds(self) -> tuple[int, ...]:
        """The seeds a comparison of training runs uses: ``repeats`` seeds from ``seed``.

        >>> get_profile("cpu").comparison_seeds, get_profile("smoke").comparison_seeds
        ((42, 43, 44), (42, 43))
        """
        return tuple(range(self.seed, self.seed + self.repeats))

    def as_dict(self) -> dict[str, int | str | bool]:
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
#: - ``epochs`` and ``short_epochs`` stay 2, ``few_shot_epochs`` 6, the ``smoke`` values: a
#:   second epoch costs milliseconds, and a run on a dozen images is as long as its epochs;
#: - ``train_size`` 48 (four images per class; lesson 05's tiny-subset check takes 10),
#:   ``val_size`` and ``test_size`` 24 (two per class: lesson 00's stratified split and its
#:   test-set figures need every class), ``batch_size`` 16 (three batches an epoch);
#: - ``few_shot_per_class`` 1: twelve images in lessons 00, 02 and 04's small-data runs;
#: - ``repeats`` 2: the fewest seeds that give a spread;
#: - ``optimize_graphs`` off, as in ``smoke``: runs this short never earn the graph rewrites back.
#:
#: Lesson 04 asks for ImageNet weights in every profile but ``smoke``; a graded kernel has
#: no network (the sandbox), so it falls back to the course's base at once.
PROFILES: Final[Mapping[str, Profile]] = {
    "smoke": Profile(
        name="smoke", image_size=32, train_size=480, val_size=120, test_size=120,
        batch_size=32, epochs=2, short_epochs=2, few_shot_per_class=5, few_shot_epochs=6,
        repeats=2, optimize_graphs=False,
    ),
    "cpu": Profile(
        name="cpu", image_size=64, train_size=6000, val_size=1200, test_size=1200,
        batch_size=64, epochs=6, short_epochs=6, few_shot_per_class=15, few_shot_epochs=60,
    ),
    "gpu": Profile(
        name="gpu", image_size=128, train_size=18000, val_size=3600, test_size=3600,
        batch_size=128, epochs=20, short_epochs=10, few_shot_per_class=20, few_shot_epochs=100,
    ),
    GRADING: Profile(
        name=GRADING, image_size=32, train_size=48, val_size=24, test_size=24,
        batch_size=16, epochs=2, short_epochs=2, few_shot_per_class=1, few_shot_epochs=6,
        repeats=2, optimize_graphs=False,
    ),
}


def profile_from_environment(environ: Mapping[str, str]) -> str | None:
    """The profile the environment decides (rules 1 to 3), or ``None`` when it does not
    (then :func:`choose_profile` takes ``cpu``).

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


#: Profiles chosen only when asked for by name (``COURSE_PROFILE`` or an argument): no run
#: has verified their claims and times yet.
OPT_IN: Final = frozenset({"gpu"})

#: What the set-up cell and ``course doctor`` add when they find a GPU.
GPU_NOTE: Final = (
    f"A GPU is available: the lessons run the verified cpu sizes on it, only faster. "
    f"{ENV_VAR}=gpu asks for the larger gpu sizes (128x128 images, 18,000 for training), "
    f"whose times and claims have not been checked on a GPU yet."
)


def choose_profile(environ: Mapping[str, str] | None = None) -> str:
    """Name of the profile for this environment (``os.environ`` by default): the whole rule.

    Raises ``ValueError`` naming the variable and the valid profiles for an unknown
    ``COURSE_PROFILE``.

    >>> choose_profile({"COURSE_PROFILE": "smoke"}), choose_profile({})
    ('smoke', 'cpu')
    >>> choose_profile({"COURSE_PROFILE": "gpu"})  # the opt-in
    'gpu'
    """
    return profile_from_environment(os.environ if environ is None else environ) or "cpu"


def get_profile(name: str | None = None) -> Profile:
    """Return the named profile, or the one selected for this machine.

    Raises ``ValueError`` naming the valid profiles for an unknown name.

    >>> get_profile("cpu").batch_size
    64
    """
    if name is None:
        name = choose_profile()
    key = str(name).strip().lower()
    _check_name(key, source="profile")
    return PROFILES[key]


def _check_name(name: str, *, source: str) -> None:
    if name not in PROFILES:
        raise ValueError(f"{source}: unknown profile {name!r}; expected one of {', '.join(PROFILES)}")


def _truthy(value: str) -> bool:
    return value.strip().lower() not in ("", "0", "false", "no")
