"""The one style of argument check in the course: ``name: expected ..., got ...``.

Every public function checks its arguments before any work and raises an error
that names the argument, says what was expected and shows what it got, so a
student can act on it without reading the source. The signatures follow
scikit-learn's :func:`sklearn.utils.check_scalar` (value, name, type, bounds);
the messages follow the course's style, and NumPy scalars count as numbers while
``True`` and ``False`` do not.

Examples
--------
>>> check_scalar(3, "epochs", int, min_val=1)
3
>>> check_scalar(0.0, "learning_rate", float, min_val=0.0, include_boundaries="right")
Traceback (most recent call last):
...
ValueError: learning_rate: expected a number > 0, got 0.0
>>> check_choice("sgd", "optimizer", ("sgd", "adam"))
'sgd'
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Literal, TypeVar, overload

Bounds = Literal["both", "left", "right", "neither"]
T = TypeVar("T")


@overload
def check_scalar(value: object, name: str, target_type: type[int], *,
                 min_val: float | None = ..., max_val: float | None = ...,
                 include_boundaries: Bounds = ..., finite: bool = ...) -> int: ...
@overload
def check_scalar(value: object, name: str, target_type: type[float], *,
                 min_val: float | None = ..., max_val: float | None = ...,
                 include_boundaries: Bounds = ..., finite: bool = ...) -> float: ...
def check_scalar(value: object, name: str, target_type: type[int] | type[float], *,
                 min_val: float | None = None, max_val: float | None = None,
                 include_boundaries: Bounds = "both", finite: bool = False) -> int | float:
    """``value`` as a Python ``int`` or ``float`` within the bounds, or ``ValueError``.

    ``target_type`` is ``int`` (whole numbers only; ``3.0`` is refused) or ``float``
    (any real number, NaN refused). ``include_boundaries`` says which of ``min_val``
    and ``max_val`` are allowed, as in scikit-learn. ``finite=True`` also refuses
    ``inf`` and ``-inf`` (a rate or a tolerance that must be an actual number).

    >>> check_scalar(4, "batch_size", int, min_val=1)
    4
    >>> check_scalar(True, "epochs", int)
    Traceback (most recent call last):
    ...
    ValueError: epochs: expected a whole number, got True
    >>> check_scalar(1.5, "momentum", float, min_val=0, max_val=1, include_boundaries="left")
    Traceback (most recent call last):
    ...
    ValueError: momentum: expected a number >= 0 and < 1, got 1.5
    >>> check_scalar(float("inf"), "learning_rate", float, min_val=0, finite=True)
    Traceback (most recent call last):
    ...
    ValueError: learning_rate: expected a finite number >= 0, got inf
    """
    if include_boundaries not in ("both", "left", "right", "neither"):
        raise ValueError(f"include_boundaries: expected 'both', 'left', 'right' or 'neither', "
                         f"got {include_boundaries!r}")
    whole = target_type is int
    noun = "a whole number" if whole else "a finite number" if finite else "a number"
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or (
            whole and not isinstance(value, numbers.Integral)):
        raise ValueError(f"{name}: expected {noun}, got {value!r}")
    number: int | float = int(value) if whole else float(value)
    if number != number:  # NaN
        raise ValueError(f"{name}: expected {noun}, got {value!r}")
    low_ok = include_boundaries in ("both", "left")
    high_ok = include_boundaries in ("both", "right")
    below = min_val is not None and (number < min_val if low_ok else number <= min_val)
    above = max_val is not None and (number > max_val if high_ok else number >= max_val)
    if below or above or (finite and not math.isfinite(number)):
        raise ValueError(f"{name}: expected {noun}{_limits(min_val, max_val, include_boundaries)}, "
                         f"got {value!r}")
    return number


def _limits(min_val: float | None, max_val: float | None, include_boundaries: Bounds) -> str:
    """The bounds as words: `` >= 0 and < 1`` (empty without bounds)."""
    limits = []
    if min_val is not None:
        limits.append(f"{'>=' if include_boundaries in ('both', 'left') else '>'} {min_val:g}")
    if max_val is not None:
        limits.append(f"{'<=' if include_boundaries in ('both', 'right') else '<'} {max_val:g}")
    return f" {' and '.join(limits)}" if limits else ""


def check_choice(value: T, name: str, choices: Iterable[T]) -> T:
    """``value`` when it is one of ``choices``, else ``ValueError`` listing them.

    >>> check_choice("adamw", "optimizer", ("sgd", "adam"))
    Traceback (most recent call last):
    ...
    ValueError: optimizer: expected one of 'sgd', 'adam', got 'adamw'
    """
    options = tuple(choices)
    if value not in options:
        raise ValueError(f"{name}: expected one of {', '.join(map(repr, options))}, got {value!r}")
    return value
