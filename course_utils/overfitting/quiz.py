"""Lesson 02's quiz: six learning curves recorded from real runs, to diagnose by eye.

:data:`MYSTERY_CURVES` holds the losses per epoch of six runs that the lesson does not
show otherwise; :func:`record_mystery_curves` trains them again. The runs are small
(32x32 images, at most a few hundred of them, a few dozen epochs), so recording them takes
well under a minute on a laptop. Their seeds differ from the lesson's, and every run has
its own, so no two curves share a training run. What each run is:

======  ==============================================================================
``A``   the baseline CNN on 10 images per class, 36 epochs (it overfits)
``B``   the same at a learning rate of 0.05, 12 epochs (too high)
``C``   the baseline on 600 images, 10 epochs (close to ideal)
``D``   the same kind of run, validated on :func:`~course_utils.overfitting.make_easy_validation`
        images (unrepresentative validation)
``E``   a tiny CNN (2 filters, 4 hidden units) on 10 images per class, 12 epochs
        (underfit)
``F``   the baseline on 10 images per class in batches of 1, 12 epochs (noisy)
======  ==============================================================================

The stored numbers are rounded to 3 decimals; a test records the runs again and checks
that they still show the shapes of the answer key.

Examples
--------
>>> sorted(MYSTERY_CURVES)
['A', 'B', 'C', 'D', 'E', 'F']
>>> len(MYSTERY_CURVES["A"]["loss"])
36
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Final

__all__ = ["MYSTERY_CURVES", "QUIZ_SEED", "record_mystery_curves"]

#: The seed of the quiz's runs (the data draws and run ``A``; every other run adds its
#: position in ``ABCDEF``).
QUIZ_SEED: Final = 7

_IMAGE_SIZE = 32
_PER_CLASS = 10
_LEARNING_RATE = 3e-3
_BATCH_SIZE = 32


def record_mystery_curves(*, seed: int = QUIZ_SEED) -> dict[str, dict[str, tuple[float, ...]]]:
    """Train the six runs of the quiz and return their losses: ``{letter: {"loss", "val_loss"}}``.

    The values are rounded to 3 decimals, like :data:`MYSTERY_CURVES`, which holds
    what this function returned with the default ``seed`` (on a CPU; another machine
    may differ in the last digits, and the shapes stay).

    Examples
    --------
    >>> curves = record_mystery_curves()                      # doctest: +SKIP
    >>> diagnose_history(curves["E"]).label                   # doctest: +SKIP
    'underfit'
    """
    from course_utils import datasets, fingers
    from course_utils.overfitting import ExtraValidation
    from course_utils.overfitting.diagnosis import make_easy_validation
    from course_utils.overfitting.remedies import VARIANTS, make_small_subset, train_variant

    x_pool, y_pool = fingers.make_fingers(600, image_size=_IMAGE_SIZE, seed=seed)
    x_val, y_val = fingers.make_fingers(240, image_size=_IMAGE_SIZE, seed=seed + 1)
    x_small, y_small = make_small_subset(x_pool, y_pool, _PER_CLASS, seed=seed)
    x_easy, y_easy = make_easy_validation(360, image_size=_IMAGE_SIZE, seed=seed + 2)
    easy = datasets.make_dataset(x_easy, y_easy, batch_size=len(y_easy), training=False)
    tiny = dataclasses.replace(VARIANTS["baseline"], name="tiny", depth=1, width=2,
                               dense_units=4)
    recipes = {  # letter: (variant, training data, epochs, batch size, learning rate)
        "A": ("baseline", (x_small, y_small), 36, _BATCH_SIZE, _LEARNING_RATE),
        "B": ("baseline", (x_small, y_small), 12, _BATCH_SIZE, 0.05),
        "C": ("baseline", (x_pool, y_pool), 10, _BATCH_SIZE, _LEARNING_RATE),
        "D": ("baseline", (x_pool, y_pool), 10, _BATCH_SIZE, _LEARNING_RATE),
        "E": (tiny, (x_small, y_small), 12, _BATCH_SIZE, _LEARNING_RATE),
        "F": ("baseline", (x_small, y_small), 12, 1, _LEARNING_RATE),
    }
    curves = {}
    for offset, (letter, (variant, (x, y), epochs, batch_size, rate)) in enumerate(
            recipes.items()):
        callbacks = [ExtraValidation(easy, prefix="easy")] if letter == "D" else []
        run = train_variant(variant, x, y, x_val, y_val, epochs=epochs, batch_size=batch_size,
                            learning_rate=rate, seed=seed + offset, callbacks=callbacks)
        validation = "easy_loss" if letter == "D" else "val_loss"
        curves[letter] = {"loss": _rounded(run.history["loss"]),
                          "val_loss": _rounded(run.history[validation])}
    return curves


def _rounded(values: list[float]) -> tuple[float, ...]:
    return tuple(round(float(v), 3) for v in values)


#: Six learning curves (losses per epoch) to diagnose by eye in lesson 02's quiz:
#: what :func:`record_mystery_curves` returned.
MYSTERY_CURVES: Final[Mapping[str, Mapping[str, tuple[float, ...]]]] = {
    "A": {
        "loss": (
            2.535, 2.468, 2.432, 2.367, 2.227, 2.012, 1.686, 1.536, 1.221, 1.06, 0.917,
            0.839, 0.787, 0.723, 0.674, 0.697, 0.677, 0.55, 0.514, 0.467, 0.419, 0.345,
            0.349, 0.294, 0.241, 0.223, 0.187, 0.189, 0.153, 0.118, 0.093, 0.094, 0.086,
            0.085, 0.075, 0.064,
        ),
        "val_loss": (
            2.481, 2.465, 2.425, 2.332, 2.156, 1.937, 1.833, 1.525, 1.481, 1.364, 1.371,
            1.376, 1.391, 1.313, 1.402, 1.368, 1.238, 1.346, 1.344, 1.386, 1.383, 1.376,
            1.314, 1.407, 1.413, 1.477, 1.529, 1.368, 1.55, 1.523, 1.513, 1.593, 1.645,
            1.606, 1.622, 1.698,
        ),
    },
    "B": {
        "loss": (
            18.632, 2.516, 2.491, 2.488, 2.487, 2.486, 2.475, 2.451, 2.403, 2.358, 2.276,
            2.183,
        ),
        "val_loss": (
            2.486, 2.481, 2.489, 2.49, 2.489, 2.489, 2.488, 2.51, 2.556, 2.622, 2.676,
            2.702,
        ),
    },
    "C": {
        "loss": (
            2.425, 1.706, 1.15, 0.916, 0.656, 0.533, 0.418, 0.353, 0.26, 0.202,
        ),
        "val_loss": (
            2.138, 1.296, 1.041, 0.794, 0.543, 0.492, 0.502, 0.412, 0.416, 0.351,
        ),
    },
    "D": {
        "loss": (
            2.455, 1.776, 1.207, 0.891, 0.681, 0.572, 0.423, 0.365, 0.283, 0.212,
        ),
        "val_loss": (
            1.884, 0.657, 0.171, 0.098, 0.014, 0.169, 0.007, 0.052, 0.002, 0.001,
        ),
    },
    "E": {
        "loss": (
            2.486, 2.484, 2.483, 2.48, 2.475, 2.466, 2.453, 2.435, 2.412, 2.382, 2.343,
            2.299,
        ),
        "val_loss": (
            2.485, 2.484, 2.483, 2.48, 2.474, 2.466, 2.455, 2.439, 2.418, 2.388, 2.353,
            2.311,
        ),
    },
    "F": {
        "loss": (
            2.534, 2.465, 1.932, 1.328, 1.146, 0.771, 0.762, 0.476, 0.425, 0.221, 0.371,
            0.149,
        ),
        "val_loss": (
            2.479, 2.337, 1.612, 1.574, 1.194, 1.49, 1.048, 1.11, 1.178, 1.469, 1.371,
            1.442,
        ),
    },
}
