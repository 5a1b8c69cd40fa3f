"""Helpers, data and command line for the deep-learning practice course.

Importing the package is instant: no TensorFlow, no data, no downloads. Each
submodule is loaded on first attribute access, so ``course_utils.fingers`` works
after a plain ``import course_utils``.

What students import (``from course_utils import datasets, plots, learning_rate``)
---------------------------------------------------------------------------------
labels      the 12-class fingers label scheme (the one source of truth)
fingers     synthetic fingers-count images; the public on-disk layout
datasets    ``tf.data`` pipelines, splits and label-preserving augmentation
models      the reference fingers CNN and a dense head for transfer learning
training    the one training helper (seeds, repeats over seeds) and the reference run
history     one run's learning curves: the ``History`` type and its reader
callbacks   training monitor and epoch checkpoint (Keras callbacks)
metrics     rank-k accuracy and the confusion matrix
plots       learning curves and confusion-matrix figures
widgets     slider explorers with a static fallback figure
surfaces    loss surfaces of lessons 01 and 03: quadratic bowls, the Rosenbrock valley (NumPy)
notebook    what every lesson's set-up cell calls
workflow    lesson 00: architecture rules, split checks, random-label memorisation
learning_rate  lesson 01 (a package): gradient descent on a bowl, loss-curve symptoms, decay
               schedules, range test, batch size
overfitting    lesson 02 (a package): learning-curve diagnosis, regularisation remedies
momentum       lesson 03: NumPy optimizers following Keras' update rules
transfer       lesson 04 (a package): shipped base network, feature extraction, fine-tuning
debugging      lesson 05 (a package): gradient checks, monitors, planted bugs, the preflight report

Two subpackages hold the rest
-----------------------------
runtime     the platform under every lesson: device detection, runtime profiles, the quiet
            TensorFlow import, atomic file writes, install commands
instructor  the ``course`` command line and what only instructors run: release, grading,
            the demo, pretraining the lesson-04 base. Student code never imports it.

Examples
--------
>>> import course_utils
>>> course_utils.fingers.__name__
'course_utils.fingers'
>>> from course_utils.runtime import profiles
>>> profiles.get_profile("smoke").image_size
32
"""

from __future__ import annotations

import importlib
from types import ModuleType

__version__ = "0.1.0"

_SUBMODULES = frozenset(
    {
        # what students import
        "callbacks", "datasets", "fingers", "history", "labels", "metrics", "models", "notebook",
        "plots", "reference", "surfaces", "training", "widgets",
        # one module per lesson topic
        "workflow", "learning_rate", "overfitting", "momentum", "transfer", "debugging",
        # the platform and the instructor tooling
        "runtime", "instructor",
    }
)

__all__ = sorted(_SUBMODULES | {"__version__"})


def __getattr__(name: str) -> ModuleType:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
