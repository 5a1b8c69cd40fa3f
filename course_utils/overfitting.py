"""Lesson 02, underfitting and overfitting: reading learning curves, and the remedies.

Two things a student takes away from lesson 02 and uses on every later run:

* :func:`diagnose_history` reads the learning curves of one run (a Keras
  ``History`` or its ``history`` dict) like a clinician and names what it sees,
  one of :data:`DIAGNOSES`, with a one-line explanation built from the numbers:

  - ``learning rate too high``: the training loss blows up, turns NaN or jumps;
  - ``underfit``: the training loss itself stays high;
  - ``unrepresentative validation``: validation does not behave like training data;
  - ``noisy small batches``: the validation loss jumps from epoch to epoch;
  - ``overfit``: validation turns worse while training improves;
  - ``ideal``: both fall and end close together.

* The remedies against overfitting as :class:`Variant` s of one baseline CNN
  (:data:`VARIANTS`: a simpler model, label-preserving augmentation, L2,
  batch normalisation, dropout, and a combination), trained with
  :func:`train_variant` on the same small subset (:func:`make_small_subset`)
  and compared with :func:`make_remedy_table` and :func:`plot_remedies`.

:func:`find_best_epoch` picks the epoch with the best validation loss, the one
to load from the checkpoints saved during a run (and the one
``keras.callbacks.EarlyStopping(restore_best_weights=True)`` restores).
:class:`ExtraValidation` evaluates a run on a second validation set, so one
training shows how much the verdict depends on the validation data.

Examples
--------
>>> diagnosis = diagnose_history({"loss": [2.3, 1.2, 0.6, 0.3, 0.1, 0.05],
...                               "val_loss": [2.3, 1.5, 1.2, 1.3, 1.6, 1.9]})
>>> diagnosis.label
'overfit'
>>> find_best_epoch({"val_loss": [2.3, 1.5, 1.2, 1.3, 1.6, 1.9]})
3
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import numpy as np
from matplotlib.figure import Figure

from course_utils import labels
from course_utils.tf_setup import import_keras, lazy_keras_class

if TYPE_CHECKING:  # pragma: no cover
    import keras

__all__ = [
    "BN_MOMENTUM",
    "DIAGNOSES",
    "EVAL_BATCH_SIZE",
    "MYSTERY_CURVES",
    "VARIANTS",
    "Diagnosis",
    "ExtraValidation",
    "RunResult",
    "Variant",
    "build_variant_model",
    "diagnose_history",
    "find_best_epoch",
    "make_remedy_table",
    "make_small_subset",
    "plot_diagnoses",
    "plot_remedies",
    "train_variant",
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
_STUCK = 0.9           # best validation loss above 0.9 x its first value: never improved
_LEARNED = 0.5         # ... while the training loss fell below half its first value
_EASIER = 0.5          # validation loss below half the training loss: validation is easier
_SPIKE = 0.4          # validation loss rising 40 % of its best so far in one epoch
_ZIGZAG = 3.0          # a curve travelling 3 times its range goes up and down a lot
_TURNED_UP = 0.10      # final validation loss 10 % above its best: it turned worse
_ACC_GAP = 0.15        # training accuracy 15 points above validation accuracy
_LOSS_GAP = 0.25       # final validation loss 0.25 ln(C) above the training loss

#: Batch size of every evaluation in :func:`train_variant` (validation after each
#: epoch, the final accuracies); training batches keep the size asked for.
EVAL_BATCH_SIZE: Final = 256


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

    ``history`` is what ``model.fit`` returns (a ``keras.callbacks.History``),
    its ``history`` dict, or a dict ``{"loss": [...], "val_loss": [...]}`` with
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
    3. **unrepresentative validation**: the validation loss never gets 10 %
       below its first value while the training loss halves, or it stays below
       half the training loss (the validation data is unlike the training data);
    4. **noisy small batches**: the validation loss jumps up by more than 40 %
       of its best so far from one epoch to the next, or a loss curve goes up and
       down so much that it travels more than 3 times its range (small batches,
       a high learning rate, or a tiny validation set);
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
    from course_utils.plots import load_history

    if isinstance(num_classes, bool) or not isinstance(num_classes, int | np.integer):
        raise ValueError(f"num_classes: expected an integer >= 2, got {num_classes!r}")
    if num_classes < 2:
        raise ValueError(f"num_classes: expected an integer >= 2, got {num_classes}")
    curves = load_history(history, name="history")
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
    if v.min() > _STUCK * v[0] and t[-1] < _LEARNED * t[0]:
        return verdict(DIAGNOSES[2], f"the training loss fell from {t[0]:.2f} to {t[-1]:.2f} but "
                                     f"the validation loss never improved on its first "
                                     f"{v[0]:.2f}: the validation data does not look like the "
                                     f"training data")
    half = slice(n // 2, None)
    if v[half].mean() < _EASIER * t[half].mean():
        return verdict(DIAGNOSES[2], f"the validation loss ({v[-1]:.2f}) stays far below the "
                                     f"training loss ({t[-1]:.2f}): the validation set is easier "
                                     f"than the training set (or too small)")

    # 4. Noisy curves.
    jumps = (v[1:] - v[:-1]) / np.minimum.accumulate(v[:-1])
    if jumps.max() > _SPIKE:
        at = int(np.argmax(jumps)) + 1
        return verdict(DIAGNOSES[3], f"the validation loss jumped by {100 * jumps[at - 1]:.0f} % "
                                     f"of its best so far in epoch {at + 1}: the steps are noisy; "
                                     f"use larger batches or a lower learning rate")
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


#: Six learning curves (losses per epoch) to diagnose by eye in lesson 02's quiz.
MYSTERY_CURVES: Final[Mapping[str, Mapping[str, tuple[float, ...]]]] = {
    "A": {"loss": (2.3, 1.6, 1.1, 0.8, 0.55, 0.38, 0.26, 0.18, 0.12, 0.08, 0.06, 0.04),
          "val_loss": (2.3, 1.8, 1.45, 1.25, 1.15, 1.12, 1.16, 1.24, 1.35, 1.47, 1.58, 1.7)},
    "B": {"loss": (2.2, 1.7, 1.5, 2.9, 1.9, 1.6, 3.4, 2.2, 1.8, 2.6, 2.0, 2.4),
          "val_loss": (2.1, 1.8, 1.7, 3.1, 2.0, 1.9, 3.6, 2.3, 2.0, 2.8, 2.1, 2.5)},
    "C": {"loss": (2.3, 1.5, 1.0, 0.7, 0.5, 0.38, 0.3, 0.25, 0.21, 0.19, 0.17, 0.16),
          "val_loss": (2.2, 1.5, 1.05, 0.78, 0.58, 0.46, 0.38, 0.33, 0.3, 0.28, 0.27, 0.26)},
    "D": {"loss": (2.4, 1.9, 1.5, 1.25, 1.05, 0.92, 0.82, 0.75, 0.7, 0.66, 0.63, 0.61),
          "val_loss": (1.6, 0.9, 0.55, 0.4, 0.32, 0.28, 0.25, 0.23, 0.22, 0.21, 0.2, 0.2)},
    "E": {"loss": (2.48, 2.4, 2.3, 2.22, 2.16, 2.11, 2.07, 2.04, 2.02, 2.0, 1.99, 1.98),
          "val_loss": (2.47, 2.4, 2.31, 2.24, 2.18, 2.14, 2.1, 2.08, 2.06, 2.05, 2.04, 2.03)},
    "F": {"loss": (2.3, 1.7, 1.3, 1.05, 0.85, 0.72, 0.6, 0.52, 0.45, 0.4, 0.36, 0.33),
          "val_loss": (2.2, 1.6, 1.9, 1.1, 1.5, 0.9, 1.4, 0.8, 1.3, 0.75, 1.2, 0.7)},
}


def find_best_epoch(history: Any, *, monitor: str = "val_loss", mode: str = "min") -> int:
    """The epoch (counted from 1) with the best value of ``monitor``.

    It is the epoch to load from the checkpoints saved during a run (Keras'
    ``ModelCheckpoint(".../epoch_{epoch:02d}...")`` numbers them the same way),
    and the epoch ``EarlyStopping(restore_best_weights=True)`` restores. Ties go
    to the earliest epoch.

    ``history`` is a Keras ``History``, its ``history`` dict or a dict of lists;
    ``mode`` is ``"min"`` for losses, ``"max"`` for accuracies.

    Examples
    --------
    >>> find_best_epoch({"val_loss": [1.2, 0.8, 0.9]})
    2
    >>> find_best_epoch({"val_accuracy": [0.3, 0.5, 0.4]}, monitor="val_accuracy", mode="max")
    2
    """
    from course_utils.plots import load_history

    if mode not in ("min", "max"):
        raise ValueError(f"mode: expected 'min' or 'max', got {mode!r}")
    curves = load_history(history, name="history")
    if monitor not in curves:
        available = sorted(k for k in curves if k != "epoch")
        raise ValueError(f"monitor: {monitor!r} is not in the history (keys: {', '.join(available)})")
    values = np.where(np.isfinite(curves[monitor]), curves[monitor], np.nan)
    if len(values) == 0 or np.isnan(values).all():
        raise ValueError(f"history: {monitor!r} has no finite value")
    index = np.nanargmin(values) if mode == "min" else np.nanargmax(values)
    return int(curves["epoch"][index])


# --------------------------------------------------------------------------- data


def make_small_subset(
    x: np.ndarray, y: np.ndarray, per_class: int, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A deliberately small, balanced training set: ``per_class`` images of every class.

    The images are drawn at random (reproducibly from ``seed``) and returned
    shuffled. A small training set makes overfitting quick to show and cheap to
    remedy.

    Raises ``ValueError`` naming the argument when ``per_class`` is not a
    positive integer, ``x`` and ``y`` differ in length, or a class has fewer
    than ``per_class`` images.

    Examples
    --------
    >>> x = np.arange(48).reshape(48, 1, 1); y = np.repeat(np.arange(12), 4)
    >>> xs, ys = make_small_subset(x, y, 2, seed=0)
    >>> len(ys), np.bincount(ys).tolist() == [2] * 12
    (24, True)
    """
    if isinstance(per_class, bool) or not isinstance(per_class, int | np.integer) or per_class < 1:
        raise ValueError(f"per_class: expected a positive integer, got {per_class!r}")
    x = np.asarray(x)
    y = labels.check_labels(y, name="y")
    if y.ndim != 1 or len(x) != len(y):
        raise ValueError(f"x and y: expected one label per image, got {len(x)} images and "
                         f"labels of shape {y.shape}")
    rng = np.random.default_rng(seed)
    chosen = []
    for label in range(labels.NUM_CLASSES):
        members = np.flatnonzero(y == label)
        if len(members) < per_class:
            raise ValueError(
                f"y: class {labels.CLASS_NAMES[label]} has {len(members)} images; expected at "
                f"least per_class={per_class}"
            )
        chosen.append(rng.choice(members, size=per_class, replace=False))
    order = rng.permutation(np.concatenate(chosen))
    return x[order], y[order]


# --------------------------------------------------------------------------- remedies

#: Momentum of the batch-normalisation layers of :func:`build_variant_model`. Keras'
#: default, 0.99, needs hundreds of steps before the moving mean and variance used at
#: inference forget their starting values; the small-subset runs take a few dozen.
BN_MOMENTUM: Final = 0.9


@dataclasses.dataclass(frozen=True)
class Variant:
    """One configuration of the fingers CNN (:func:`course_utils.models.build_fingers_cnn`).

    The fields are the builder's knobs plus ``augment`` (train on
    label-preserving augmented batches, :func:`course_utils.datasets.make_dataset`)
    and ``what``, one line on what the variant changes.

    Examples
    --------
    >>> VARIANTS["dropout"].dropout
    0.5
    >>> dataclasses.replace(VARIANTS["baseline"], name="wide", width=32).width
    32
    """

    name: str
    what: str
    depth: int = 2
    width: int = 16
    dense_units: int = 128
    batch_norm: bool = False
    dropout: float = 0.0
    l2: float = 0.0
    l1: float = 0.0
    augment: bool = False


_BASELINE = Variant("baseline", "2 conv blocks (16, 32 filters), dense 128, no regularisation")

#: The baseline, the five remedies applied one at a time, and a combination.
VARIANTS: Final[Mapping[str, Variant]] = {
    v.name: v
    for v in (
        _BASELINE,
        dataclasses.replace(_BASELINE, name="simpler model", dense_units=16,
                            what="dense layer of 16 units instead of 128"),
        dataclasses.replace(_BASELINE, name="augmentation", augment=True,
                            what="rotated, shifted, zoomed, contrast-changed, mirrored hands"),
        dataclasses.replace(_BASELINE, name="L1 penalty", l1=1e-3,
                            what="L1 penalty 0.001 x sum(|w|) on every kernel"),
        dataclasses.replace(_BASELINE, name="L2 penalty", l2=1e-2,
                            what="L2 penalty 0.01 x sum(w**2) on every kernel"),
        dataclasses.replace(_BASELINE, name="batch norm", batch_norm=True,
                            what="batch normalisation after every convolution (axis=-1)"),
        dataclasses.replace(_BASELINE, name="dropout", dropout=0.5,
                            what="dropout 0.5 before the softmax layer"),
        dataclasses.replace(_BASELINE, name="combination", batch_norm=True, augment=True,
                            l2=1e-2, what="augmentation, L2 penalty and batch norm together"),
    )
}


def build_variant_model(
    variant: Variant | str,
    input_shape: Sequence[int],
    *,
    learning_rate: float = 3e-3,
    seed: int = 0,
) -> keras.Model:
    """The compiled fingers CNN of a :class:`Variant` (or of its name in :data:`VARIANTS`).

    Batch-normalisation layers get ``momentum=BN_MOMENTUM`` (see there); the
    model is compiled by :func:`course_utils.models.compile_classifier` with
    Adam at ``learning_rate``.

    Examples
    --------
    >>> model = build_variant_model("batch norm", (32, 32, 1), seed=0)   # doctest: +SKIP
    >>> model.get_layer("block1_bn1").momentum                            # doctest: +SKIP
    0.9
    """
    from course_utils import models

    variant = _check_variant(variant)
    model = models.build_fingers_cnn(
        input_shape, labels.NUM_CLASSES, depth=variant.depth, width=variant.width,
        batch_norm=variant.batch_norm, dropout=variant.dropout, l2=variant.l2, l1=variant.l1,
        dense_units=variant.dense_units, seed=seed, name=_model_name(variant.name),
    )
    keras = import_keras()
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = BN_MOMENTUM
    return models.compile_classifier(model, learning_rate=learning_rate)


@dataclasses.dataclass
class RunResult:
    """One trained variant: its curves, its final accuracies and the model.

    ``train_accuracy`` is measured after training on the (clean, not augmented)
    training images in inference mode (no dropout), like ``val_accuracy`` on the
    validation images, so the two compare fairly; ``gap`` is their difference.
    """

    name: str
    history: dict[str, list[float]]
    train_accuracy: float
    val_accuracy: float
    model: Any = dataclasses.field(repr=False, default=None)

    @property
    def gap(self) -> float:
        """Training minus validation accuracy (positive: better on the training data)."""
        return self.train_accuracy - self.val_accuracy


def train_variant(
    variant: Variant | str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float = 3e-3,
    seed: int = 0,
    callbacks: Sequence[Any] = (),
    name: str | None = None,
) -> RunResult:
    """Train a variant from scratch on uint8 images and measure it.

    Seeds everything with ``seed`` first, so a run is reproducible and every
    variant starts from the same draw. Training batches come from
    :func:`course_utils.datasets.make_dataset` (augmented when the variant
    says so); ``callbacks`` go to ``model.fit``. ``name`` overrides the name in
    the result (default: the variant's).

    Examples
    --------
    >>> from course_utils import fingers                                     # doctest: +SKIP
    >>> x, y = fingers.make_fingers(48, image_size=16, seed=0)               # doctest: +SKIP
    >>> run = train_variant("baseline", x, y, x, y, epochs=2, batch_size=16) # doctest: +SKIP
    >>> len(run.history["val_loss"])                                         # doctest: +SKIP
    2
    """
    from course_utils import datasets
    from course_utils.tf_setup import set_seed

    variant = _check_variant(variant)
    if isinstance(epochs, bool) or not isinstance(epochs, int | np.integer) or epochs < 1:
        raise ValueError(f"epochs: expected a positive integer, got {epochs!r}")
    x_train = np.asarray(x_train)
    if x_train.ndim != 3 or x_train.shape[1] != x_train.shape[2]:
        raise ValueError(f"x_train: expected images (n, size, size), got shape {x_train.shape}")
    set_seed(seed)
    train_ds = datasets.make_dataset(x_train, y_train, batch_size=batch_size, training=True,
                                     augment=variant.augment, seed=seed)
    # Evaluation batches only change how fast the accuracy is measured, not its value, so
    # they are large even when the training batches are small (a batch-of-1 run would
    # otherwise also validate one image at a time).
    eval_batch = max(int(batch_size), EVAL_BATCH_SIZE)
    clean_ds = datasets.make_dataset(x_train, y_train, batch_size=eval_batch, training=False)
    val_ds = datasets.make_dataset(x_val, y_val, batch_size=eval_batch, training=False)
    size = x_train.shape[1]
    model = build_variant_model(variant, (size, size, 1), learning_rate=learning_rate, seed=seed)
    # One endless stream of epochs (each a fresh shuffle) read by a single iterator,
    # instead of a new iterator every epoch: the same kind of batches, less overhead.
    fitted = model.fit(train_ds.repeat(), steps_per_epoch=math.ceil(len(x_train) / batch_size),
                       validation_data=val_ds, epochs=int(epochs), callbacks=list(callbacks),
                       shuffle=False, verbose=0)  # the dataset shuffles itself
    history = {key: [float(value) for value in values] for key, values in fitted.history.items()}
    train_acc = model.evaluate(clean_ds, verbose=0, return_dict=True)["accuracy"]
    val_acc = model.evaluate(val_ds, verbose=0, return_dict=True)["accuracy"]
    return RunResult(name or variant.name, history, float(train_acc), float(val_acc), model)


def make_remedy_table(results: Sequence[RunResult]) -> str:
    """The remedies side by side: training and validation accuracy and their gap.

    The first result is the reference (the baseline); the last column says how
    much each run narrowed (``-``) or widened (``+``) its gap.

    Examples
    --------
    >>> base = RunResult("baseline", {}, 0.95, 0.40)
    >>> print(make_remedy_table([base, RunResult("dropout", {}, 0.80, 0.45)]))
    run            train acc  val acc    gap  vs baseline
    baseline           95.0%    40.0%   55.0
    dropout            80.0%    45.0%   35.0        -20.0
    """
    if not results:
        raise ValueError("results: expected at least one RunResult (the baseline first)")
    reference = results[0]
    width = max(14, *(len(r.name) for r in results))
    lines = [f"{'run':<{width}} train acc  val acc    gap  vs {reference.name}"]
    for index, r in enumerate(results):
        line = (f"{r.name:<{width}} {100 * r.train_accuracy:8.1f}% {100 * r.val_accuracy:7.1f}% "
                f"{100 * r.gap:6.1f}")
        if index:
            line += f"  {100 * (r.gap - reference.gap):+11.1f}"
        lines.append(line)
    return "\n".join(lines)


def plot_remedies(results: Sequence[RunResult]) -> Figure:
    """Bars of training and validation accuracy per run, the gap written above them.

    Examples
    --------
    >>> fig = plot_remedies([RunResult("baseline", {}, 0.95, 0.40),
    ...                      RunResult("dropout", {}, 0.80, 0.45)])
    >>> fig.axes[0].get_ylabel()
    'accuracy'
    """
    if not results:
        raise ValueError("results: expected at least one RunResult")
    fig = Figure(figsize=(1.3 * len(results) + 2.5, 3.8), layout="constrained")
    ax = fig.add_subplot()
    positions = np.arange(len(results))
    train = [r.train_accuracy for r in results]
    val = [r.val_accuracy for r in results]
    ax.bar(positions - 0.2, train, 0.4, label="training accuracy", color="C0")
    ax.bar(positions + 0.2, val, 0.4, label="validation accuracy", color="C1")
    for x, r in zip(positions, results, strict=True):
        ax.annotate(f"gap {100 * r.gap:+.0f}", (x, max(r.train_accuracy, r.val_accuracy)),
                    xytext=(0, 3), textcoords="offset points", ha="center", fontsize="small")
    ax.set_xticks(positions, [r.name for r in results], rotation=20, ha="right")
    ax.set(ylabel="accuracy", ylim=(0.0, 1.12), title="remedies against overfitting")
    ax.legend(fontsize="small", loc="upper right")
    ax.grid(axis="y", alpha=0.3)
    return fig


def plot_diagnoses(
    runs: Mapping[str, Any],
    *,
    show_diagnosis: bool = True,
    num_classes: int = labels.NUM_CLASSES,
) -> Figure:
    """One small loss plot per run, titled with the run's name and its diagnosis.

    Training loss solid, validation loss dashed; ``runs`` maps a name to a
    history (see :func:`diagnose_history`). With ``show_diagnosis=False`` the
    titles only name the runs and the best epoch is not marked (a quiz).

    Examples
    --------
    >>> fig = plot_diagnoses({"a run": {"loss": [2.0, 1.0, 0.5], "val_loss": [2.0, 1.1, 0.6]}})
    >>> fig.axes[0].get_title()
    'a run\\n→ ideal'
    """
    from course_utils.plots import load_history

    if not isinstance(runs, Mapping) or not runs:
        raise ValueError("runs: expected a non-empty dict {name: history}")
    columns = min(3, len(runs))
    rows = math.ceil(len(runs) / columns)
    fig = Figure(figsize=(4.2 * columns, 3.1 * rows), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax, (name, run) in zip(axes, runs.items(), strict=False):
        curves = load_history(run, name=str(name))
        diagnosis = diagnose_history(curves, num_classes=num_classes)
        epochs = curves["epoch"]
        ax.plot(epochs, curves["loss"], color="C0", label="training")
        ax.plot(epochs, curves["val_loss"], color="C1", linestyle="--", label="validation")
        title = str(name)
        if show_diagnosis:
            ax.axvline(diagnosis.best_epoch, color="0.6", linewidth=0.8)
            title += f"\n→ {diagnosis.label}"
        top = np.nanmax(np.where(np.isfinite(curves["val_loss"]), curves["val_loss"], np.nan))
        if np.isfinite(curves["loss"]).all() and curves["loss"].max() > 3 * max(top, 1e-9):
            ax.set_yscale("log")  # an exploding loss would flatten everything else
        ax.set(title=title, xlabel="epoch", ylabel="loss")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    for ax in axes[len(runs):]:
        ax.set_visible(False)
    return fig


def _check_variant(variant: Variant | str) -> Variant:
    if isinstance(variant, Variant):
        return variant
    if isinstance(variant, str) and variant in VARIANTS:
        return VARIANTS[variant]
    raise ValueError(f"variant: expected a Variant or one of {', '.join(map(repr, VARIANTS))}, "
                     f"got {variant!r}")


def _model_name(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name.lower())


# --------------------------------------------------------------------------- callback


class _ExtraValidation:
    """Evaluate the model on a second validation set after every epoch.

    The results are added to the epoch's logs as ``{prefix}_loss``,
    ``{prefix}_accuracy``..., so they land in the ``History`` next to
    ``val_loss``. One training run thus shows two validation curves, and how
    much a verdict on the curves depends on the validation data.

    ``data`` is what ``model.evaluate`` takes: a ``tf.data.Dataset`` of
    ``(images, labels)`` batches or a tuple ``(images, labels)``.

    Examples
    --------
    >>> import numpy as np
    >>> from course_utils import models
    >>> model = models.compile_classifier(
    ...     models.build_fingers_cnn((16, 16, 1), 12, depth=1, width=4, seed=0))
    >>> x, y = np.zeros((8, 16, 16, 1), "float32"), np.arange(8)
    >>> h = model.fit(x, y, epochs=2, verbose=0, callbacks=[ExtraValidation((x, y), prefix="other")])
    >>> len(h.history["other_loss"])
    2
    """

    def __init__(self, data: Any, *, prefix: str = "other_val") -> None:
        super().__init__()
        if not isinstance(prefix, str) or not prefix.isidentifier():
            raise ValueError(f"prefix: expected a name such as 'other_val', got {prefix!r}")
        if prefix == "val":
            raise ValueError("prefix: 'val' would overwrite Keras' own validation results")
        self.data = data
        self.prefix = prefix

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is None:
            return
        if isinstance(self.data, tuple):
            results = self.model.evaluate(*self.data, verbose=0, return_dict=True)
        else:
            results = self.model.evaluate(self.data, verbose=0, return_dict=True)
        for key, value in results.items():
            logs[f"{self.prefix}_{key}"] = float(value)


# Subclasses keras.callbacks.Callback: assembled on first access (PEP 562).
_LAZY_CLASSES = {"ExtraValidation": (_ExtraValidation, "callbacks.Callback")}

if TYPE_CHECKING:  # pragma: no cover

    class ExtraValidation(_ExtraValidation, keras.callbacks.Callback): ...


def __getattr__(name: str) -> Any:
    return lazy_keras_class(globals(), _LAZY_CLASSES, name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_CLASSES))
