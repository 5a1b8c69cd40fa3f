"""Lesson 02's reading of learning curves: :func:`diagnose_history`, and picking an epoch.

:func:`diagnose_history` reads the learning curves of one run like a clinician and
names what it sees, one of :data:`DIAGNOSES`, with a one-line explanation built from
the numbers. :func:`find_best_epoch` picks the best epoch of a run, and
:func:`replay_early_stopping` says which epoch Keras' ``EarlyStopping`` keeps. The
validation data that make a run look *unrepresentative* come from
:func:`make_easy_validation`.

Examples
--------
>>> diagnose_history({"loss": [2.3, 1.2, 0.6, 0.3, 0.1, 0.05],
...                   "val_loss": [2.3, 1.5, 1.2, 1.3, 1.6, 1.9]}).label
'overfit'
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Final

import numpy as np

from course_utils import labels
from course_utils.fingers.style import FingersStyle
from course_utils.history import read_history
from course_utils.runtime.checks import check_choice, check_scalar

__all__ = [
    "DIAGNOSES",
    "EASY_GESTURES",
    "STUDIO_STYLE",
    "Diagnosis",
    "EarlyStop",
    "apply_early_stopping",
    "diagnose_history",
    "find_best_epoch",
    "make_easy_validation",
    "replay_early_stopping",
]

#: Everything :func:`diagnose_history` can say, in the order it checks them.
DIAGNOSES: Final = (
    "learning rate too high",
    "underfit",
    "unrepresentative validation",
    "noisy small batches",
    "overfit",
    "ideal",
)

# Thresholds of the diagnosis. Losses are compared with the chance loss ln(C), the
# cross-entropy of a model that gives every one of C classes the same probability.
_EXPLODED = 1.5        # a training loss above 1.5 ln(C): the steps overshoot
_GUESSING = 0.9       # ... and it ends above 0.9 ln(C): no better than guessing
_JUMP = 0.25           # training loss rising 0.25 ln(C) above its best so far
_UNFIT = 0.6           # final training loss above 0.6 ln(C): training data not fit
_EASIER = 0.5          # validation loss below half the training loss: validation is easier
_SPIKE = 0.2           # validation loss up and back down by 20 % of its best so far
_ZIGZAG = 3.0          # a curve travelling 3 times its range goes up and down a lot
_TURNED_UP = 0.10      # final validation loss 10 % above its best: it turned worse
_ACC_GAP = 0.15        # training accuracy 15 points above validation accuracy
_LOSS_GAP = 0.25       # final validation loss 0.25 ln(C) above the training loss


@dataclasses.dataclass(frozen=True)
class Diagnosis:
    """What a pair of learning curves shows: a label and a one-line explanation.

    ``label`` is one of :data:`DIAGNOSES`; ``explanation`` says which numbers of
    the curves led to it and what to try; ``best_epoch`` is the epoch (from 1)
    with the lowest validation loss.

    Examples
    --------
    >>> print(Diagnosis("ideal", "both losses fell together.", 5))
    ideal: both losses fell together.
    """

    label: str
    explanation: str
    best_epoch: int

    def __str__(self) -> str:
        return f"{self.label}: {self.explanation}"


def diagnose_history(history: Any, *, num_classes: int = labels.NUM_CLASSES) -> Diagnosis:
    """Read the learning curves of one run and say what they show.

    ``history`` is anything :func:`~course_utils.history.read_history` reads: what
    ``model.fit`` or :func:`~course_utils.training.fit_model` returns, a
    ``history.json``, or a dict ``{"loss": [...], "val_loss": [...]}`` with
    one value per epoch (``accuracy`` and ``val_accuracy`` are used when
    present). The checks run in the order of :data:`DIAGNOSES`; the first that
    fits wins, ``ideal`` when none does:

    1. **learning rate too high**: a loss is NaN or infinite; the training loss
       of an epoch exceeds 1.5 ln(C) (far worse than guessing, C =
       ``num_classes``) and either twice the validation loss of that epoch (it
       blew up within the epoch) or the run ends no better than guessing (above
       0.9 ln(C)); or the training loss rises 0.25 ln(C) above its best so far;
    2. **underfit**: the final training loss is above 0.6 ln(C): the model does
       not even fit its training data (more capacity, more epochs);
    3. **unrepresentative validation**: over the second half of the run the
       validation loss stays below half the training loss: the validation data
       are far easier than the training data, so they say little about the model
       (dropout and augmentation also raise the training loss above the
       validation loss, by less);
    4. **noisy small batches**: the validation loss spikes, up in one epoch and
       back down in the next, both by more than 20 % of its best so far, or a
       loss curve goes up and down so much that it travels more than 3 times its
       range (small batches, a high learning rate, or a tiny validation set);
    5. **overfit**: the validation loss ends 10 % above its best while the
       training loss kept falling, the training accuracy ends 15 points above the
       validation accuracy, or the validation loss ends 0.25 ln(C) above the
       training loss;
    6. **ideal**: both losses fell and end close together.

    Raises ``ValueError`` when ``loss`` or ``val_loss`` is missing, when fewer
    than 3 epochs were recorded, or for ``num_classes`` below 2, and
    ``TypeError`` for something that is not a history.

    Examples
    --------
    >>> d = diagnose_history({"loss": [2.5, 2.49, 2.48, 2.48], "val_loss": [2.5, 2.49, 2.49, 2.48]})
    >>> d.label
    'underfit'
    >>> diagnose_history({"loss": [40.0, 3.0, 2.5], "val_loss": [9.0, 2.6, 2.5]}).label
    'learning rate too high'
    >>> diagnose_history({"loss": [2.0, 1.0, 0.5, 0.3], "val_loss": [2.0, 1.1, 0.6, 0.4]}).label
    'ideal'
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int | np.integer):
        raise ValueError(f"num_classes: expected an integer >= 2, got {num_classes!r}")
    if num_classes < 2:
        raise ValueError(f"num_classes: expected an integer >= 2, got {num_classes}")
    curves = {key: np.asarray(values, dtype=np.float64)
              for key, values in read_history(history, name="history").items()}
    missing = [key for key in ("loss", "val_loss") if key not in curves]
    if missing:
        available = sorted(k for k in curves if k != "epoch")
        raise ValueError(
            f"history: no {' or '.join(map(repr, missing))} recorded (keys: "
            f"{', '.join(available) or 'none'}); train with validation_data=... so that "
            f"Keras records the validation loss"
        )
    t, v = curves["loss"], curves["val_loss"]
    n = len(t)
    if n < 3:
        raise ValueError(f"history: {n} epoch(s) recorded; expected at least 3 to read a trend")
    chance = math.log(num_classes)
    finite_v = v[np.isfinite(v)]
    best = int(np.argmin(finite_v if finite_v.size == n else np.where(np.isfinite(v), v, np.inf)))
    best_epoch = best + 1

    def verdict(label: str, explanation: str) -> Diagnosis:
        return Diagnosis(label, explanation, best_epoch)

    # 1. Learning rate too high.
    if not (np.isfinite(t).all() and np.isfinite(v).all()):
        bad = int(np.flatnonzero(~(np.isfinite(t) & np.isfinite(v)))[0]) + 1
        return verdict(DIAGNOSES[0], f"the loss is not a number from epoch {bad} on: the steps "
                                     f"overshoot; lower the learning rate (10x)")
    exploded = (t > _EXPLODED * chance) & ((t > 2 * v) | (t[-1] > _GUESSING * chance))
    if exploded.any():
        worst = int(np.argmax(np.where(exploded, t, -np.inf)))
        return verdict(DIAGNOSES[0], f"the training loss reached {t[worst]:.3g} in epoch "
                                     f"{worst + 1}, far above the {chance:.2f} of guessing: the "
                                     f"steps overshoot; lower the learning rate")
    rise = t[1:] - np.minimum.accumulate(t[:-1])
    if rise.max() > _JUMP * chance:
        at = int(np.argmax(rise)) + 1
        return verdict(DIAGNOSES[0], f"the training loss rose to {t[at]:.2f} in epoch {at + 1}, "
                                     f"{rise[at - 1]:.2f} above its best so far: the steps "
                                     f"overshoot; lower the learning rate")

    # 2. Underfit.
    if t[-1] > _UNFIT * chance:
        return verdict(DIAGNOSES[1], f"the training loss is still {t[-1]:.2f} after {n} epochs "
                                     f"(guessing scores {chance:.2f}): the model does not fit even "
                                     f"its training data; add capacity or train longer")

    # 3. Unrepresentative validation data.
    half = slice(n // 2, None)
    if v[half].mean() < _EASIER * t[half].mean():
        return verdict(DIAGNOSES[2], f"the validation loss ({v[-1]:.2f}) stays far below the "
                                     f"training loss ({t[-1]:.2f}): the validation images are "
                                     f"much easier than the training images; draw them from "
                                     f"the same source")

    # 4. Noisy curves: a spike, up in one epoch and back down in the next (a steady rise
    # is no spike).
    best_so_far = np.minimum.accumulate(v)[:-2]
    spikes = np.minimum(v[1:-1] - v[:-2], v[1:-1] - v[2:]) / best_so_far
    if spikes.max() > _SPIKE:
        at = int(np.argmax(spikes)) + 1  # index of the spike in v
        return verdict(DIAGNOSES[3], f"the validation loss jumped to {v[at]:.2f} in epoch "
                                     f"{at + 1} and fell back to {v[at + 1]:.2f} in the next, a "
                                     f"spike of {100 * spikes[at - 1]:.0f} % of its best so "
                                     f"far: the steps are noisy; use larger batches or a lower "
                                     f"learning rate")
    for name, curve in (("validation", v), ("training", t)):
        travel = _zigzag(curve)
        if travel > _ZIGZAG:
            return verdict(DIAGNOSES[3], f"the {name} loss goes up and down from epoch to epoch "
                                         f"(it travels {travel:.1f} times its range): the steps "
                                         f"are noisy; use larger batches or a lower learning rate")

    # 5. Overfit.
    acc_gap = None
    if "accuracy" in curves and "val_accuracy" in curves:
        acc_gap = float(curves["accuracy"][-1] - curves["val_accuracy"][-1])
    if best < n - 1 and v[-1] > (1 + _TURNED_UP) * v[best] and t[-1] < t[best]:
        return verdict(DIAGNOSES[4], f"the validation loss was best in epoch {best_epoch} "
                                     f"({v[best]:.2f}) and rose to {v[-1]:.2f} while the training "
                                     f"loss kept falling: regularise, or stop at epoch "
                                     f"{best_epoch}")
    if acc_gap is not None and acc_gap >= _ACC_GAP:
        return verdict(DIAGNOSES[4], f"training accuracy ends {100 * acc_gap:.0f} points above "
                                     f"validation accuracy: the model learns its training images "
                                     f"by heart; regularise or get more data")
    if v[-1] - t[-1] > _LOSS_GAP * chance:
        return verdict(DIAGNOSES[4], f"the validation loss ends at {v[-1]:.2f}, far above the "
                                     f"training loss of {t[-1]:.2f}: the curves diverged; "
                                     f"regularise or get more data")

    # 6. Ideal.
    return verdict(DIAGNOSES[5], f"both losses fell and end close together (training "
                                 f"{t[-1]:.2f}, validation {v[-1]:.2f})")


def _zigzag(curve: np.ndarray) -> float:
    """Total variation over range: 1 for a monotone curve, about 2 for down-then-up."""
    span = float(curve.max() - curve.min())
    if span <= 0:
        return 1.0
    return float(np.abs(np.diff(curve)).sum()) / span


def find_best_epoch(history: Any, *, monitor: str = "val_loss", mode: str = "min") -> int:
    """The epoch (counted from 1) with the best value of ``monitor``.

    It is the epoch to load from the checkpoints saved during a run (Keras'
    ``ModelCheckpoint(".../epoch_{epoch:02d}...")`` numbers them the same way),
    and the epoch ``EarlyStopping(restore_best_weights=True)`` restores. Ties go
    to the earliest epoch.

    ``history`` is anything :func:`~course_utils.history.read_history` reads (a
    Keras ``History``, a dict of lists, a ``history.json``); ``mode`` is ``"min"`` for
    losses, ``"max"`` for accuracies (:meth:`~course_utils.history.History.best_epoch`).

    Examples
    --------
    >>> find_best_epoch({"val_loss": [1.2, 0.8, 0.9]})
    2
    >>> find_best_epoch({"val_accuracy": [0.3, 0.5, 0.4]}, monitor="val_accuracy", mode="max")
    2
    """
    check_choice(mode, "mode", ("min", "max"))
    curves = read_history(history, name="history")
    if monitor not in curves.metrics:
        raise ValueError(f"monitor: {monitor!r} is not in the history (keys: "
                         f"{', '.join(sorted(curves.metrics))})")
    return curves.best_epoch(monitor, mode=mode)


@dataclasses.dataclass(frozen=True)
class EarlyStop:
    """What ``EarlyStopping(restore_best_weights=True)`` does with a run's curves.

    ``epochs_run`` is the number of epochs trained, ``kept_epoch`` the epoch (from 1)
    whose weights it keeps, ``stopped`` whether it stopped before the end of the run.
    """

    epochs_run: int
    kept_epoch: int
    stopped: bool


def replay_early_stopping(
    history: Any, *, patience: int, monitor: str = "val_loss", mode: str = "min"
) -> EarlyStop:
    """Which epoch ``keras.callbacks.EarlyStopping`` would keep, read from a finished run.

    The rule of ``EarlyStopping(monitor, patience=patience, restore_best_weights=True)``
    (``min_delta=0``): an epoch improves when its ``monitor`` is strictly better than
    the best so far; training stops at the end of the ``patience``-th epoch in a row
    without improvement, and the weights of the best epoch are put back (also when the
    run ends without stopping). So the stopped run's model scores exactly what the
    full run recorded for that epoch, and the rule can be tried on a run after the fact.

    ``history`` is anything :func:`~course_utils.history.read_history` reads.

    Examples
    --------
    >>> replay_early_stopping({"val_loss": [1.0, 0.8, 0.9, 0.85, 0.7, 0.9]}, patience=2)
    EarlyStop(epochs_run=4, kept_epoch=2, stopped=True)
    >>> replay_early_stopping({"val_loss": [1.0, 0.8, 0.9, 0.85, 0.7, 0.9]}, patience=3)
    EarlyStop(epochs_run=6, kept_epoch=5, stopped=False)
    """
    patience = check_scalar(patience, "patience", int, min_val=1)
    check_choice(mode, "mode", ("min", "max"))
    curves = read_history(history, name="history")
    if monitor not in curves.metrics:
        raise ValueError(f"monitor: {monitor!r} is not in the history (keys: "
                         f"{', '.join(sorted(curves.metrics))})")
    values = np.asarray(curves[monitor], dtype=np.float64)
    if mode == "max":
        values = -values
    best, kept, wait = math.inf, 1, 0
    for index, value in enumerate(values):
        wait += 1
        if value < best:
            best, kept, wait = value, index + 1, 0
            continue
        if wait >= patience and index > 0:
            return EarlyStop(index + 1, kept, stopped=True)
    return EarlyStop(len(values), kept, stopped=False)


def apply_early_stopping(run: Any, *, patience: int, name: str = "early stopping") -> Any:
    """What ``EarlyStopping(patience=patience, restore_best_weights=True)`` would have made
    of a finished run, as a :class:`~course_utils.overfitting.RunResult`.

    The callback stops where :func:`replay_early_stopping` says and puts back the weights
    of the kept epoch, which score exactly what the run recorded for that epoch; so the
    result holds the history up to the stop and, as its scores, the validation loss
    (cross-entropy, ``val_crossentropy`` when recorded) and accuracy of the kept epoch.
    The training accuracy on clean images was not measured for that epoch: it is NaN.
    No model: the run's network has gone on training.

    Examples
    --------
    >>> from course_utils.overfitting import RunResult
    >>> run = RunResult("baseline", {"val_loss": [1.0, 0.8, 0.9, 0.95],
    ...                              "val_accuracy": [0.3, 0.5, 0.55, 0.6]}, 1.0, 0.6, 0.95)
    >>> stopped = apply_early_stopping(run, patience=2)
    >>> stopped.val_loss, stopped.val_accuracy, len(stopped.history["val_loss"])
    (0.8, 0.5, 4)
    """
    from course_utils.overfitting.remedies import RunResult

    curves = read_history(run, name="run")
    stop = replay_early_stopping(curves, patience=patience)
    loss_key = "val_crossentropy" if "val_crossentropy" in curves.metrics else "val_loss"
    if "val_accuracy" not in curves.metrics:
        raise ValueError(f"run: no 'val_accuracy' recorded (keys: "
                         f"{', '.join(sorted(curves.metrics))})")
    kept = stop.kept_epoch - 1
    history = {key: list(values[:stop.epochs_run]) for key, values in curves.items()}
    return RunResult(name, history, math.nan, float(curves["val_accuracy"][kept]),
                     float(curves[loss_key][kept]))


#: Hands photographed in a studio: upright, centred, all the same size and build,
#: evenly lit on a clean dark background, each count shown with its usual gesture.
#: An easy rendering next to :data:`course_utils.fingers.DEFAULT_STYLE`.
STUDIO_STYLE: Final = FingersStyle(
    background=(0.10, 0.10), hand=(0.95, 0.95), gradient=0.0, shading=(0.0, 0.0),
    noise=(0.0, 0.0), blur=(0.03, 0.03), rotation=0.0, scale=(1.25, 1.25), shift=0.0,
    finger_length=0.0, width_jitter=0.0, spread=(1.5, 1.5), thumb_angle=(60.0, 60.0),
    random_gesture=0.0,
)

#: The finger counts in :func:`make_easy_validation`: fists and open hands.
EASY_GESTURES: Final = (0, labels.MAX_COUNT)


def make_easy_validation(
    n: int, *, image_size: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Unrepresentative validation data: studio photos of fists and open hands only.

    ``n`` images are drawn in :data:`STUDIO_STYLE` and only those showing a count in
    :data:`EASY_GESTURES` are kept (about a third of them): a validation set much
    easier than the training images, as when validation photos are taken separately,
    under better conditions, of the gestures easiest to pose.

    Examples
    --------
    >>> x, y = make_easy_validation(48, image_size=16, seed=0)
    >>> x.shape[1:], sorted({labels.decode(int(label))[0] for label in y})
    ((16, 16), [0, 5])
    """
    from course_utils import fingers

    n = check_scalar(n, "n", int, min_val=1)
    x, y = fingers.make_fingers(n, image_size=image_size, seed=seed, style=STUDIO_STYLE)
    keep = np.isin(y // len(labels.HANDS), EASY_GESTURES)
    return x[keep], y[keep]
