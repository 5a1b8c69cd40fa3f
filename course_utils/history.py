"""One run's learning curves, whatever produced them: :class:`History` and :func:`read_history`.

A training run leaves its curves in one of three forms: the ``keras.callbacks.History``
that ``model.fit`` returns, the ``history.json`` that
:class:`course_utils.callbacks.TrainingMonitor` writes, or a plain dict
``{metric: [one value per epoch]}``. :func:`read_history` reads each of them into a
:class:`History`, the course's one history type: a dict
``{"epoch": [1, 2, ...], metric: [one float per epoch]}`` (the layout of
``history.json``), with :meth:`History.final` and :meth:`History.best` to read it.
:func:`course_utils.training.fit_model` returns one.

Examples
--------
>>> history = read_history({"loss": [2.1, 1.2, 0.9], "val_loss": [2.2, 1.4, 1.5]})
>>> history["epoch"], history.final("val_loss"), history.best_epoch("val_loss")
([1, 2, 3], 1.5, 2)
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from course_utils.runtime import io
from course_utils.runtime.checks import check_choice

__all__ = ["METRIC_NAMES", "History", "read_history"]

#: The metrics Keras records, in words (table headers, panel titles).
METRIC_NAMES = {"loss": "training loss", "val_loss": "validation loss",
                "accuracy": "training accuracy", "val_accuracy": "validation accuracy"}

#: The ``mode`` values of :meth:`History.best`: ``"auto"`` maximises accuracies, minimises
#: the rest (Keras' ``EarlyStopping`` rule).
MODES = ("auto", "min", "max")


class History(dict):
    """One run's curves: ``{"epoch": [1, 2, ...], metric: [one float per epoch]}``.

    A dict, so it indexes, prints, compares and saves as JSON like the dicts it
    replaces; every list has one entry per epoch (NaN where a value is missing or
    diverged) and ``"epoch"`` counts from 1 (a resumed run's from where it resumed).
    ``model`` is the trained model when the history comes from
    :func:`course_utils.training.fit_model` or from a Keras ``History`` (``None``
    otherwise); it is no part of the dict.

    ``History(curves)`` checks ``curves`` as :func:`read_history` does (read a
    Keras ``History`` or a file with :func:`read_history`).

    Examples
    --------
    >>> h = History({"loss": [1.0, 0.6, 0.7], "val_accuracy": [0.3, 0.5, 0.4]})
    >>> h
    History({'epoch': [1, 2, 3], 'loss': [1.0, 0.6, 0.7], 'val_accuracy': [0.3, 0.5, 0.4]})
    >>> h.metrics, h.final("loss"), h.best("loss"), h.best("val_accuracy")
    (['loss', 'val_accuracy'], 0.7, 0.6, 0.5)
    """

    model: Any = None

    def __init__(self, curves: Mapping[str, Sequence[float]] | None = None) -> None:
        super().__init__(_check_curves({} if curves is None else curves, source="history"))

    @classmethod
    def _checked(cls, data: Any, *, source: str, epochs: Sequence[int] | None = None,
                 model: Any = None) -> History:
        history = cls.__new__(cls)
        dict.update(history, _check_curves(data, source=source, epochs=epochs))
        history.model = model
        return history

    def __repr__(self) -> str:
        return f"History({dict.__repr__(self)})"

    @property
    def epochs(self) -> list[int]:
        """The epoch numbers, from 1 (the ``"epoch"`` list)."""
        return list(self["epoch"])

    @property
    def metrics(self) -> list[str]:
        """Every recorded name but ``"epoch"``, in the order Keras logged them."""
        return [key for key in self if key != "epoch"]

    def final(self, metric: str) -> float:
        """The value of ``metric`` after the last epoch.

        >>> History({"loss": [0.9, 0.5]}).final("loss")
        0.5
        """
        values = self._values(metric)
        if not values:
            raise ValueError(f"history: {metric!r} has no value (no epoch recorded)")
        return values[-1]

    def best(self, metric: str, *, mode: str = "auto") -> float:
        """The best value of ``metric`` over the epochs (NaN ignored).

        ``mode`` is ``"min"``, ``"max"``, or ``"auto"``: ``"max"`` for a name
        containing ``acc`` (accuracies), ``"min"`` for the rest (losses), as in
        ``keras.callbacks.EarlyStopping``.

        >>> History({"val_loss": [1.2, 0.8, 0.9]}).best("val_loss")
        0.8
        """
        return self._values(metric)[self._best_index(metric, mode)]

    def best_epoch(self, metric: str, *, mode: str = "auto") -> int:
        """The epoch (counted from 1) with the best value of ``metric``; ties go to the earliest.

        >>> History({"val_accuracy": [0.3, 0.5, 0.5]}).best_epoch("val_accuracy")
        2
        """
        return int(self["epoch"][self._best_index(metric, mode)])

    def _values(self, metric: str) -> list[float]:
        if metric not in self or metric == "epoch":
            raise ValueError(f"metric: expected one of {', '.join(map(repr, self.metrics))}, "
                             f"got {metric!r}")
        return self[metric]

    def _best_index(self, metric: str, mode: str) -> int:
        check_choice(mode, "mode", MODES)
        values = np.asarray(self._values(metric), dtype=np.float64)
        finite = np.where(np.isfinite(values), values, np.nan)
        if np.isnan(finite).all():
            raise ValueError(f"history: {metric!r} has no finite value")
        if mode == "auto":
            mode = "max" if "acc" in metric else "min"
        return int(np.nanargmin(finite) if mode == "min" else np.nanargmax(finite))


def read_history(source: Any, *, name: str = "run") -> History:
    """Read one run's curves into a :class:`History`.

    ``source`` is a ``keras.callbacks.History`` (what ``model.fit`` returns; its
    ``epoch`` numbers are kept, from 1), anything else with a ``history`` dict
    (:class:`course_utils.overfitting.RunResult`), a dict ``{metric: [one value per
    epoch]}`` (with or without an ``"epoch"`` list; a :class:`History` is one), or the
    path of a ``history.json`` written by :class:`course_utils.callbacks.TrainingMonitor`.
    Without an ``"epoch"`` list the epochs are ``1..n``. ``name`` names the run in
    error messages.

    Raises ``FileNotFoundError`` for a missing file, ``TypeError`` for something that is
    not a history, and ``ValueError`` naming the source when a value is not a list of
    numbers or the lists differ in length.

    Examples
    --------
    >>> read_history({"loss": [0.9, 0.5]})
    History({'epoch': [1, 2], 'loss': [0.9, 0.5]})
    >>> import tempfile, pathlib
    >>> path = io.write_json(pathlib.Path(tempfile.mkdtemp()) / "history.json",
    ...                      {"epoch": [3, 4], "loss": [0.4, 0.3]})   # a resumed run
    >>> read_history(path).epochs
    [3, 4]
    >>> read_history([0.9, 0.5])
    Traceback (most recent call last):
    ...
    TypeError: run 'run': expected a keras History, a dict {metric: values} or the path of a history.json, got list
    """
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: history file of run {name!r} not found")
        return History._checked(io.read_json(path), source=f"{path} (run {name!r})")
    if hasattr(source, "history") and isinstance(source.history, Mapping):  # keras History
        epochs = getattr(source, "epoch", None)
        return History._checked(
            source.history, source=name, model=getattr(source, "model", None),
            epochs=[int(e) + 1 for e in epochs] if epochs else None,  # History.epoch counts from 0
        )
    if isinstance(source, Mapping):
        return History._checked(source, source=name, model=getattr(source, "model", None))
    raise TypeError(
        f"run {name!r}: expected a keras History, a dict {{metric: values}} or the path of "
        f"a history.json, got {type(source).__name__}"
    )


def _check_curves(data: Any, *, source: str,
                  epochs: Sequence[int] | None = None) -> dict[str, list[Any]]:
    """``data`` as ``{"epoch": [ints], metric: [floats]}``, the epochs first; or ``ValueError``."""
    if not isinstance(data, Mapping):
        raise ValueError(f"{source}: expected a history {{metric: [values per epoch]}}")
    curves: dict[str, list[Any]] = {}
    for key, values in data.items():
        try:
            array = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{source}: {key!r}: expected a list of numbers, one per epoch, "
                             f"got {values!r:.80}") from None
        if array.ndim != 1:
            raise ValueError(f"{source}: {key!r}: expected a list of numbers, one per epoch, "
                             f"got shape {array.shape}")
        curves[str(key)] = array.tolist()
    lengths = {key: len(values) for key, values in curves.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"{source}: expected one value per epoch in every list, got lengths "
                         f"{lengths}")
    length = next(iter(lengths.values()), 0)
    if "epoch" in curves:
        numbers = curves.pop("epoch")
        if not all(math.isfinite(e) and e == int(e) for e in numbers):
            raise ValueError(f"{source}: 'epoch': expected whole epoch numbers, got {numbers}")
        epoch_list = [int(e) for e in numbers]
    elif epochs is not None and len(epochs) == length:
        epoch_list = [int(e) for e in epochs]
    else:
        epoch_list = list(range(1, length + 1))
    return {"epoch": epoch_list, **curves}
