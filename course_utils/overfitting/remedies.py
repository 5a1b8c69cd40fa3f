"""Lesson 02's remedies against overfitting: variants of one CNN, trained on a small subset.

The remedies are :class:`Variant` s of one baseline CNN (:data:`VARIANTS`: a simpler
model, label-preserving augmentation, L1 and L2 penalties, batch normalisation,
dropout, and a combination), trained with :func:`train_variant` on the same small
subset (:func:`make_small_subset`), once per seed, and compared with the baseline by
:func:`course_utils.overfitting.compare_with_baseline`.

Examples
--------
>>> [name for name, v in VARIANTS.items() if v.augment]
['augmentation', 'combination']
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from course_utils import labels
from course_utils.runtime.checks import check_scalar
from course_utils.runtime.tf_setup import import_keras
from course_utils.training import fit_model, repeat_over_seeds, reuse_compiled_model

if TYPE_CHECKING:  # pragma: no cover
    import keras

__all__ = [
    "BN_MOMENTUM",
    "EVAL_BATCH_SIZE",
    "MIRRORS",
    "VARIANTS",
    "RunResult",
    "Variant",
    "build_variant_model",
    "make_small_subset",
    "train_over_seeds",
    "train_variant",
]

#: Batch size of every evaluation in :func:`train_variant` (validation after each
#: epoch, the final accuracies); training batches keep the size asked for.
EVAL_BATCH_SIZE: Final = 256


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
    per_class = check_scalar(per_class, "per_class", int, min_val=1)
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


#: Momentum of the batch-normalisation layers of :func:`build_variant_model`. Keras'
#: default, 0.99, needs hundreds of steps before the moving mean and variance used at
#: inference forget their starting values; the small-subset runs take a few dozen.
BN_MOMENTUM: Final = 0.9


@dataclasses.dataclass(frozen=True)
class Variant:
    """One configuration of the fingers CNN (:func:`course_utils.models.build_fingers_cnn`).

    The fields are the builder's knobs plus ``augment`` (train on
    label-preserving augmented batches, :func:`course_utils.datasets.make_dataset`),
    ``mirror`` (what the augmentation's mirror does to the label: ``"swap hand"``, the
    true label of a mirrored hand, or ``"keep label"``, the mistake of flipping
    without fixing the label; the images are augmented the same way) and ``what``, one line on
    what the variant changes.

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
    mirror: str = "swap hand"

    def __post_init__(self) -> None:
        if self.mirror not in MIRRORS:
            raise ValueError(f"mirror: expected one of {', '.join(map(repr, MIRRORS))}, "
                             f"got {self.mirror!r}")


#: What a :class:`Variant`'s augmentation does to the label of a mirrored image.
MIRRORS: Final = ("swap hand", "keep label")

_BASELINE = Variant("baseline", "2 conv blocks (16, 32 filters), dense 128, no regularisation")

#: The baseline, the five remedies applied one at a time, and a combination (read-only:
#: the baseline every remedy is judged against cannot be changed by mistake).
VARIANTS: Final[Mapping[str, Variant]] = MappingProxyType({
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
})


def build_variant_model(
    variant: Variant | str,
    input_shape: Sequence[int],
    *,
    learning_rate: float = 3e-3,
    seed: int = 0,
) -> keras.Model:
    """The compiled fingers CNN of a :class:`Variant` (or of its name in :data:`VARIANTS`).

    Batch-normalisation layers get ``momentum=BN_MOMENTUM`` (see there). The model is
    compiled with Adam at ``learning_rate``, the cross-entropy loss and two metrics:
    ``accuracy`` and ``crossentropy``. The loss Keras reports (``loss``, ``val_loss``)
    includes the L1/L2 penalty of a regularised variant, so it does not compare across
    variants; ``crossentropy`` (``val_crossentropy``) is the data loss alone, the same
    measure for every variant.

    Examples
    --------
    >>> model = build_variant_model("batch norm", (32, 32, 1), seed=0)   # doctest: +SKIP
    >>> model.get_layer("block1_bn1").momentum                            # doctest: +SKIP
    0.9
    """
    variant = _check_variant(variant)
    model = _build_network(variant, input_shape, seed)
    keras = import_keras()
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy", keras.metrics.SparseCategoricalCrossentropy(name="crossentropy")],
    )
    # Built now rather than on the first step, so that weights saved during training
    # (optimizer state included) load back into a new model without a warning.
    model.optimizer.build(model.trainable_variables)
    return model


@dataclasses.dataclass
class RunResult:
    """One trained variant: its curves (a :class:`~course_utils.history.History`), how
    it scores after training, and the model.

    ``train_accuracy`` is measured after training on the (clean, not augmented)
    training images in inference mode (no dropout), like ``val_accuracy`` on the
    validation images, so the two compare fairly; ``gap`` is their difference.
    ``val_loss`` is the cross-entropy on the validation images after training,
    without the L1/L2 penalty (the same measure for every variant; NaN when unknown).
    After early stopping with ``restore_best_weights=True`` all three describe the
    restored weights.
    """

    name: str
    history: Mapping[str, list[float]]
    train_accuracy: float
    val_accuracy: float
    val_loss: float = math.nan
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

    :func:`course_utils.training.fit_model` seeds everything with ``seed`` first, so
    a run is reproducible and every variant starts from the same draw. Training
    batches come from :func:`course_utils.datasets.make_dataset` (augmented when the
    variant says so); ``callbacks`` go to ``model.fit``. ``name`` overrides the name
    in the result (default: the variant's).

    Runs whose networks have the same layers and settings (the baseline and
    augmentation, say, or one variant over seeds and rates) train one network, set back
    to exactly the state a new network gets from ``seed`` (weights, batch-norm
    statistics, dropout seeds; the optimizer at zero and at ``learning_rate``): the same
    run, but Keras sets up (traces) its training step once, not once a run, which saves
    about a second a run (:func:`course_utils.training.reuse_compiled_model`). The
    network stays with the latest run that trained it: an earlier result's ``model``
    becomes ``None`` when a later run takes its network.

    Examples
    --------
    >>> from course_utils import fingers                                     # doctest: +SKIP
    >>> x, y = fingers.make_fingers(48, image_size=16, seed=0)               # doctest: +SKIP
    >>> run = train_variant("baseline", x, y, x, y, epochs=2, batch_size=16) # doctest: +SKIP
    >>> len(run.history["val_loss"])                                         # doctest: +SKIP
    2
    >>> again = train_variant("augmentation", x, y, x, y, epochs=2,
    ...                       batch_size=16)                                 # doctest: +SKIP
    >>> again.model is not None, run.model                                   # doctest: +SKIP
    (True, None)
    """
    variant = _check_variant(variant)
    return _train(variant, x_train, y_train, x_val, y_val, epochs=epochs,
                  batch_size=batch_size, learning_rate=learning_rate, seed=seed,
                  callbacks=callbacks, name=name)


def train_over_seeds(
    variant: Variant | str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    seeds: Iterable[int],
    epochs: int,
    batch_size: int,
    learning_rate: float = 3e-3,
    callbacks: Sequence[Any] | Callable[[int], Sequence[Any]] = (),
    name: str | None = None,
) -> dict[int, RunResult]:
    """Train a variant once per seed: ``{seed: RunResult}``.

    The result is what :func:`course_utils.training.repeat_over_seeds` gives with
    :func:`train_variant`: every seed's run has the initial weights, batches,
    augmentations and dropout masks of ``train_variant(..., seed=seed)``, and so the
    same history; every seed trains the same network, started afresh (see
    :func:`train_variant`), so only the last seed's result keeps it; the others have
    ``model=None``.

    ``callbacks`` is a list given to every run, or a function of the seed that returns
    one (a checkpoint folder per seed, say).

    Examples
    --------
    >>> from course_utils import fingers                                     # doctest: +SKIP
    >>> x, y = fingers.make_fingers(48, image_size=16, seed=0)               # doctest: +SKIP
    >>> runs = train_over_seeds("dropout", x, y, x, y, seeds=[0, 1, 2], epochs=2,
    ...                         batch_size=16)                               # doctest: +SKIP
    >>> sorted(runs), runs[2].model is not None, runs[0].model               # doctest: +SKIP
    ([0, 1, 2], True, None)
    """
    variant = _check_variant(variant)
    if not (callable(callbacks) or isinstance(callbacks, Sequence)):
        raise ValueError(f"callbacks: expected a list of Keras callbacks or a function of the "
                         f"seed that returns one, got {type(callbacks).__name__}")
    return repeat_over_seeds(
        lambda seed: train_variant(
            variant, x_train, y_train, x_val, y_val, epochs=epochs, batch_size=batch_size,
            learning_rate=learning_rate, seed=seed, name=name,
            callbacks=callbacks(seed) if callable(callbacks) else callbacks),
        seeds)


def _train(
    variant: Variant,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    callbacks: Sequence[Any],
    name: str | None,
) -> RunResult:
    """:func:`train_variant`, once its variant is checked."""
    from course_utils import datasets

    epochs = check_scalar(epochs, "epochs", int, min_val=1)
    batch_size = check_scalar(batch_size, "batch_size", int, min_val=1)
    x_train = np.asarray(x_train)
    if x_train.ndim != 3 or x_train.shape[1] != x_train.shape[2]:
        raise ValueError(f"x_train: expected images (n, size, size), got shape {x_train.shape}")
    # Evaluation batches only change how fast the accuracy is measured, not its value, so
    # they are large even when the training batches are small (a batch-of-1 run would
    # otherwise also validate one image at a time).
    eval_batch = max(batch_size, EVAL_BATCH_SIZE)
    clean_ds = datasets.make_dataset(x_train, y_train, batch_size=eval_batch, training=False)
    val_ds = datasets.make_dataset(x_val, y_val, batch_size=eval_batch, training=False)
    size = x_train.shape[1]

    def build() -> Any:  # called by fit_model once seeded
        model = _shared_variant_model(variant, (size, size, 1), learning_rate=learning_rate,
                                      seed=seed)
        earlier = _LATEST_RUN.pop(id(model), None)
        if earlier is not None:  # a later run takes the network of an earlier one
            earlier.model = None
        return model

    def make_train() -> Any:  # called by fit_model once seeded: the shuffle depends on it
        # One endless stream of epochs (each a fresh shuffle) read by a single iterator,
        # instead of a new iterator every epoch: the same kind of batches, less overhead.
        if variant.augment and variant.mirror == "keep label":
            plain = datasets.make_dataset(x_train, y_train, batch_size=batch_size,
                                          training=True, seed=seed)
            return plain.map(_label_blind_augmenter(seed)).repeat()
        return datasets.make_dataset(x_train, y_train, batch_size=batch_size, training=True,
                                     augment=variant.augment, seed=seed).repeat()

    history = fit_model(build, make_train, val_ds, epochs=epochs, seed=seed,
                        callbacks=callbacks, steps_per_epoch=math.ceil(len(x_train) / batch_size))
    trained = history.model
    train_scores = trained.evaluate(clean_ds, verbose=0, return_dict=True)
    val_scores = trained.evaluate(val_ds, verbose=0, return_dict=True)
    result = RunResult(name or variant.name, history, float(train_scores["accuracy"]),
                       float(val_scores["accuracy"]), float(val_scores["crossentropy"]), trained)
    _LATEST_RUN[id(trained)] = result
    return result


#: The compiled networks every run of this module trains, one per set-up (architecture,
#: image size, optimizer), each started afresh for a run: see :func:`train_variant`.
_shared_variant_model = reuse_compiled_model(build_variant_model)
#: The latest run that trained each shared network, by ``id``: the one that keeps it.
_LATEST_RUN: dict[int, RunResult] = {}


def _label_blind_augmenter(seed: int) -> Callable[[Any, Any], tuple[Any, Any]]:
    """The augmentation of :func:`course_utils.datasets.make_dataset`, its mirror keeping the label.

    The same layers, drawn from the same seed, so the images are augmented as in the
    right augmentation; only the label of a mirrored image stays that of the
    unmirrored one (a left hand's label on a right hand).
    """
    from course_utils import datasets

    augmentation = datasets.build_augmentation(seed=seed)

    def augment(images: Any, batch_labels: Any) -> tuple[Any, Any]:
        images = augmentation(images, training=True)
        mirrored, _ = datasets.random_flip_hands(images, batch_labels, seed=seed)
        return mirrored, batch_labels

    return augment


def _build_network(variant: Variant, input_shape: Sequence[int], seed: int) -> Any:
    """The uncompiled network of ``variant``, its batch-norm layers at ``BN_MOMENTUM``."""
    from course_utils import models

    model = models.build_fingers_cnn(
        input_shape, labels.NUM_CLASSES, depth=variant.depth, width=variant.width,
        batch_norm=variant.batch_norm, dropout=variant.dropout, l2=variant.l2, l1=variant.l1,
        dense_units=variant.dense_units, seed=seed, name=_model_name(variant.name),
    )
    keras = import_keras()
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = BN_MOMENTUM
    return model


def _check_variant(variant: Variant | str) -> Variant:
    if isinstance(variant, Variant):
        return variant
    if isinstance(variant, str) and variant in VARIANTS:
        return VARIANTS[variant]
    raise ValueError(f"variant: expected a Variant or one of {', '.join(map(repr, VARIANTS))}, "
                     f"got {variant!r}")


def _model_name(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name.lower())
