"""Helpers, data and command line for the deep-learning practice course.

Importing the package is instant: no TensorFlow, no data, no downloads. Each
submodule is loaded on first attribute access, so ``course_utils.fingers`` works
after a plain ``import course_utils``.

Modules
-------
labels      the 12-class fingers label scheme (the one source of truth)
profiles    runtime profiles ``smoke`` / ``cpu`` / ``gpu``
device      accelerator detection, distribution strategy, device report
fingers     synthetic fingers-count images; the public on-disk layout
datasets    ``tf.data`` pipelines, splits and label-preserving augmentation
models      the reference fingers CNN and a dense head for transfer learning
callbacks   training monitor and epoch checkpoint (Keras callbacks)
metrics     rank-k accuracy and the confusion matrix
plots       learning curves and confusion-matrix figures
io          atomic file writes

Examples
--------
>>> import course_utils
>>> course_utils.profiles.get_profile("smoke").image_size
32
"""

from __future__ import annotations

import importlib
from types import ModuleType

__version__ = "0.1.0"

_SUBMODULES = frozenset(
    {
        "callbacks", "cli", "datasets", "device", "fingers", "io", "labels", "metrics",
        "models", "notebook", "plots", "profiles", "tf_setup", "training", "widgets",
    }
)

__all__ = sorted(_SUBMODULES | {"__version__"})


def __getattr__(name: str) -> ModuleType:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
