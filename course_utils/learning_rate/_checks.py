"""Argument checks shared by the modules of :mod:`course_utils.learning_rate`.

Each returns the value as a plain Python number or raises ``ValueError`` with the
message ``"name: expected ..., got ..."``.

Examples
--------
>>> check_positive("learning_rate", 0.1), check_count("steps", 3, minimum=0)
(0.1, 3)
>>> check_non_negative("k", -1.0)
Traceback (most recent call last):
    ...
ValueError: k: expected a number >= 0, got -1.0
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def check_positive(name: str, value: Any) -> float:
    """``value`` as a float when it is a finite number > 0."""
    if not _is_number(value) or not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name}: expected a positive number, got {value!r}")
    return float(value)


def check_non_negative(name: str, value: Any) -> float:
    """``value`` as a float when it is a finite number >= 0."""
    if not _is_number(value) or not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name}: expected a number >= 0, got {value!r}")
    return float(value)


def check_count(name: str, value: Any, *, minimum: int) -> int:
    """``value`` as an int when it is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float | np.integer | np.floating)
