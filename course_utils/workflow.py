"""Lesson 00, the workflow of a deep-learning project: its checks and experiments.

The nine steps themselves use the other modules (data from ``fingers`` and
``datasets``, the model from ``models``, ``callbacks``, ``metrics``, ``plots``);
this module holds what lesson 00 adds and later lessons reuse:

- :func:`check_architecture` enforces the three architecture rules (every
  computing layer has an activation; the feature maps are flattened once, right
  before the dense layers; the last dense layer has one softmax unit per class)
  and says which rule a model breaks and where;
- :func:`check_splits` checks test-set discipline of a train/validation/test
  split: the test set is returned untouched, nothing leaks between the splits,
  and the validation set keeps the class balance (it is stratified);
- :func:`find_checkpoint_problems` runs an epoch-checkpoint callback and its
  ``resume`` function in a real (tiny) ``fit``, interrupted and resumed, and says
  how the files or the resumed weights differ from an uninterrupted run;
- :class:`Vault` holds the test set and records every opening;
  :func:`find_choice_problems` checks a model choice made with one (the choice is
  taken on validation data and the vault opened once, for the chosen model);
- :func:`plot_search_trials` shows the runs of a grid and of a random search side by side;
- :func:`shuffle_labels` and :func:`memorize_random_labels` show why the test
  set stays in the vault: a network reaches full training accuracy even on
  labels that carry no information at all.

Examples
--------
>>> import numpy as np
>>> shuffle_labels(np.array([0, 0, 1, 1, 2, 2]), seed=0).tolist()
[1, 1, 2, 2, 0, 0]
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from course_utils import labels
from course_utils.datasets import to_model_input
from course_utils.history import History
from course_utils.models import iter_layers
from course_utils.runtime.checks import check_scalar

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = [
    "SPLIT_NAMES",
    "Vault",
    "check_architecture",
    "check_checkpoint",
    "check_choice",
    "check_splits",
    "find_architecture_problems",
    "find_checkpoint_problems",
    "find_choice_problems",
    "find_split_problems",
    "memorize_random_labels",
    "plot_search_trials",
    "shuffle_labels",
]

SPLIT_NAMES = ("train", "val", "test")

# Layers that compute a weighted sum and so need a non-linearity after them.
_WEIGHTED = (
    "Dense", "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose",
    "Conv3DTranspose", "SeparableConv1D", "SeparableConv2D", "DepthwiseConv1D",
    "DepthwiseConv2D",
)
# Layers that are nothing but an activation.
_ACTIVATIONS = ("Activation", "ReLU", "LeakyReLU", "ELU", "PReLU", "Softmax")
# Layers that turn feature maps into one vector per image.
_FLATTENING = (
    "Flatten", "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
    "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D",
)
_SPATIAL = tuple(n for n in _WEIGHTED if n != "Dense") + (
    "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D",
    "AveragePooling3D",
)


# --------------------------------------------------------------------------- architecture


def find_architecture_problems(model: Any, *, num_classes: int = labels.NUM_CLASSES) -> list[str]:
    """List every way ``model`` breaks the architecture rules; empty when it follows them.

    The rules (SYLLABUS 00, step 3):

    1. every layer that computes a weighted sum (``Dense``, convolutions) has an
       activation, either its own ``activation=`` or an activation layer after it;
    2. the feature maps are flattened once (``Flatten`` or a global pooling layer),
       after the last convolution or pooling and before the first ``Dense`` layer;
    3. the last ``Dense`` layer has ``num_classes`` units and a softmax, so the
       model outputs one probability per class.

    Nested models (an augmentation ``Sequential`` inside the model) are looked into.

    Examples
    --------
    >>> from course_utils import models                           # doctest: +SKIP
    >>> find_architecture_problems(models.build_fingers_cnn((32, 32, 1), 12))  # doctest: +SKIP
    []
    """
    num_classes = check_scalar(num_classes, "num_classes", int, min_val=2)
    layers = list(iter_layers(model))
    kinds = [type(layer).__name__ for layer in layers]
    problems: list[str] = []

    # Rule 1: an activation after every weighted layer.
    for index, (layer, kind) in enumerate(zip(layers, kinds, strict=True)):
        if kind in _WEIGHTED and not _is_activated(layers, index):
            problems.append(
                f"layer {layer.name!r} ({kind}) has no activation: give it activation='relu' "
                "(softmax for the output layer) or put an Activation layer right after it"
            )

    # Rule 2: flatten once, between the feature extractor and the dense layers.
    flat_at = [i for i, kind in enumerate(kinds) if kind in _FLATTENING]
    dense_at = [i for i, kind in enumerate(kinds) if kind == "Dense"]
    spatial_at = [i for i, kind in enumerate(kinds) if kind in _SPATIAL]
    if not flat_at:
        problems.append(
            "no Flatten layer: flatten the feature maps once, right before the first Dense layer "
            "(without it the Dense layers work on every pixel position separately)"
        )
    elif len(flat_at) > 1:
        names = ", ".join(repr(layers[i].name) for i in flat_at)
        problems.append(f"the model flattens {len(flat_at)} times ({names}): flatten exactly once")
    else:
        flat = flat_at[0]
        early = [layers[i].name for i in dense_at if i < flat]
        if early:
            problems.append(
                f"Dense layer(s) {early} come before the Flatten layer {layers[flat].name!r}: "
                "flatten first, then the dense layers"
            )
        late = [layers[i].name for i in spatial_at if i > flat]
        if late:
            problems.append(
                f"convolution/pooling layer(s) {late} come after the Flatten layer "
                f"{layers[flat].name!r}: the feature extractor goes before it"
            )

    # Rule 3: the output layer.
    if not dense_at:
        problems.append(f"no Dense layer: the model must end with Dense({num_classes}, softmax)")
    else:
        last = layers[dense_at[-1]]
        units = int(getattr(last, "units", -1))
        if units != num_classes:
            problems.append(
                f"the last Dense layer {last.name!r} has {units} units: it needs one per class "
                f"({num_classes})"
            )
        if _output_activation(layers, dense_at[-1]) != "softmax":
            problems.append(
                f"the last Dense layer {last.name!r} does not end in a softmax: use "
                "activation='softmax' so the outputs are class probabilities that sum to 1"
            )
        tail = [layers[i].name for i in range(dense_at[-1] + 1, len(layers))
                if kinds[i] not in _ACTIVATIONS + ("Dropout",)]
        if tail:
            problems.append(f"layer(s) {tail} come after the output layer {last.name!r}")
    output_shape = _output_shape(model)
    if output_shape is not None and tuple(output_shape[1:]) != (num_classes,):
        problems.append(
            f"the model's output shape is {tuple(output_shape)}: expected (None, {num_classes}), "
            "one score per class for every image"
        )
    return problems


def check_architecture(model: Any, *, num_classes: int = labels.NUM_CLASSES) -> None:
    """Raise ``ValueError`` listing every architecture rule ``model`` breaks.

    See :func:`find_architecture_problems` for the rules.

    Examples
    --------
    >>> from course_utils.runtime.tf_setup import import_keras                 # doctest: +SKIP
    >>> keras = import_keras()                                           # doctest: +SKIP
    >>> bad = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Dense(6)])  # doctest: +SKIP
    >>> check_architecture(bad)                                          # doctest: +SKIP
    Traceback (most recent call last):
    ValueError: model 'sequential' breaks the architecture rules:
    - layer 'dense' (Dense) has no activation: ...
    """
    problems = find_architecture_problems(model, num_classes=num_classes)
    if problems:
        name = getattr(model, "name", type(model).__name__)
        raise ValueError(
            f"model {name!r} breaks the architecture rules:\n"
            + "\n".join(f"- {p}" for p in problems)
        )


def _activation_name(layer: Any) -> str | None:
    activation = getattr(layer, "activation", None)
    if activation is None:
        return None
    name = getattr(activation, "__name__", None) or type(activation).__name__
    return str(name).lower()


def _is_activated(layers: Sequence[Any], index: int) -> bool:
    own = _activation_name(layers[index])
    if own not in (None, "linear"):
        return True
    for layer in layers[index + 1:]:  # an activation layer before the next weighted layer
        kind = type(layer).__name__
        if kind in _ACTIVATIONS:
            return _activation_name(layer) != "linear"
        if kind in _WEIGHTED or kind in _FLATTENING:
            return False
    return False


def _output_activation(layers: Sequence[Any], index: int) -> str | None:
    own = _activation_name(layers[index])
    if own not in (None, "linear"):
        return own
    for layer in layers[index + 1:]:
        kind = type(layer).__name__
        if kind == "Softmax":
            return "softmax"
        if kind in _ACTIVATIONS:
            return _activation_name(layer)
    return own


def _output_shape(model: Any) -> tuple[Any, ...] | None:
    try:
        shape = model.output_shape
    except (AttributeError, ValueError, RuntimeError):
        return None
    if isinstance(shape, list):  # several outputs
        return None
    return tuple(shape)


# --------------------------------------------------------------------------- splits


def find_split_problems(
    splits: Mapping[str, Sequence[np.ndarray]],
    x: np.ndarray,
    y: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    val_fraction: float,
) -> list[str]:
    """List every way ``splits`` breaks test-set discipline; empty when it is sound.

    ``splits`` maps ``"train"``, ``"val"`` and ``"test"`` to ``(images, labels)``;
    ``x, y`` is the data given for training, ``x_test, y_test`` the test set. Sound
    means: the test set comes back exactly as given; train and validation together
    are exactly the given training data (no image lost, none from the test set);
    the validation set holds ``val_fraction`` of it (within one image) and every
    class in the same proportion (within one image per class).

    Examples
    --------
    >>> x = np.arange(40, dtype=np.uint8).reshape(10, 2, 2); y = np.array([0, 1] * 5)
    >>> xt, yt = x[:2] + 100, y[:2]
    >>> ok = {"train": (x[2:], y[2:]), "val": (x[:2], y[:2]), "test": (xt, yt)}
    >>> find_split_problems(ok, x, y, xt, yt, val_fraction=0.2)
    []
    >>> leaky = {"train": (x, y), "val": (xt, yt), "test": (xt, yt)}
    >>> find_split_problems(leaky, x, y, xt, yt, val_fraction=0.2)[0]
    'train and validation must together be exactly the given training data: 2 of their images are test images (the test set must stay in the vault)'
    """
    check_scalar(val_fraction, "val_fraction", float, min_val=0, max_val=1,
                 include_boundaries="neither")
    x, y = _check_xy(x, y, "x, y")
    x_test, y_test = _check_xy(x_test, y_test, "x_test, y_test")
    if not isinstance(splits, Mapping):
        return [f"splits: expected a dict with keys {list(SPLIT_NAMES)}, got {type(splits).__name__}"]
    if sorted(splits) != sorted(SPLIT_NAMES):
        return [f"splits: expected exactly the keys {list(SPLIT_NAMES)}, got {sorted(splits)}"]
    parts: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    problems: list[str] = []
    for name in SPLIT_NAMES:
        value = splits[name]
        if not isinstance(value, (tuple, list)) or len(value) != 2:
            problems.append(
                f"splits[{name!r}]: expected a pair (images, labels), got {type(value).__name__}"
            )
            continue
        px, py = np.asarray(value[0]), np.asarray(value[1])
        if px.ndim < 1 or py.ndim != 1 or len(px) != len(py):
            problems.append(
                f"splits[{name!r}]: images and labels must have the same length, "
                f"got shapes {px.shape} and {py.shape}"
            )
            continue
        if px.shape[1:] != x.shape[1:]:
            problems.append(
                f"splits[{name!r}]: images have shape {px.shape[1:]}, expected {x.shape[1:]} "
                "like the given images (a split does not change the images)"
            )
            continue
        parts[name] = (px, py)
    if problems:
        return problems

    tx, ty = parts["test"]
    if not (np.array_equal(tx, x_test) and np.array_equal(ty, y_test)):
        problems.append(
            "the test set changed: return it exactly as given, same images, labels and order "
            "(it stays in the vault until the final evaluation)"
        )

    given = Counter(_fingerprints(x, y))
    test_prints = set(_fingerprints(x_test, y_test))
    trainval = Counter(_fingerprints(*parts["train"])) + Counter(_fingerprints(*parts["val"]))
    from_test = sum(n for key, n in (trainval - given).items() if key in test_prints)
    if from_test:
        problems.append(
            "train and validation must together be exactly the given training data: "
            f"{from_test} of their images are test images (the test set must stay in the vault)"
        )
    elif trainval != given and _image_counts(x) == (
            _image_counts(parts["train"][0]) + _image_counts(parts["val"][0])):
        moved = sum((given - trainval).values())
        problems.append(
            "the labels no longer belong to their images: train and validation hold every "
            f"given image once, but {moved} of them come with another label than the one "
            "given (split the images and the labels together, in one call)"
        )
    elif trainval != given:
        missing = sum((given - trainval).values())
        extra = sum((trainval - given).values())
        problems.append(
            "train and validation must together be exactly the given training data: "
            f"{missing} given images are missing and {extra} are extra or repeated"
        )

    vx, vy = parts["val"]
    expected = val_fraction * len(y)
    if abs(len(vy) - expected) >= 1:
        problems.append(
            f"the validation set has {len(vy)} images: expected val_fraction * {len(y)} = "
            f"{expected:g} (within one image)"
        )
    else:
        num_classes = int(max(y.max(initial=0), vy.max(initial=0))) + 1
        given_counts = np.bincount(y, minlength=num_classes)
        val_counts = np.bincount(vy, minlength=num_classes)
        off = [
            f"{c}: {int(val_counts[c])} instead of about {given_counts[c] * val_fraction:.1f}"
            for c in range(num_classes)
            if abs(val_counts[c] - given_counts[c] * val_fraction) > 1
        ]
        if off:
            problems.append(
                "the validation set is not stratified: every class must keep its share "
                "(stratify by the labels). Images per class in validation: " + "; ".join(off)
            )
    return problems


def check_splits(
    splits: Mapping[str, Sequence[np.ndarray]],
    x: np.ndarray,
    y: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    val_fraction: float,
) -> None:
    """Raise ``ValueError`` listing every problem :func:`find_split_problems` finds.

    Examples
    --------
    >>> x = np.arange(40, dtype=np.uint8).reshape(10, 2, 2); y = np.array([0, 1] * 5)
    >>> splits = {"train": (x[2:], y[2:]), "val": (x[:2], y[:2]), "test": (x[:1], y[:1])}
    >>> check_splits(splits, x, y, x[:1] + 100, y[:1], val_fraction=0.2)
    Traceback (most recent call last):
    ...
    ValueError: the splits break test-set discipline:
    - the test set changed: return it exactly as given, same images, labels and order (it stays in the vault until the final evaluation)
    """
    problems = find_split_problems(splits, x, y, x_test, y_test, val_fraction=val_fraction)
    if problems:
        raise ValueError(
            "the splits break test-set discipline:\n" + "\n".join(f"- {p}" for p in problems)
        )


def _check_xy(x: Any, y: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x), np.asarray(y)
    if y.ndim != 1 or len(x) != len(y) or len(y) == 0:
        raise ValueError(
            f"{name}: expected images (n, ...) and labels (n,) of the same non-zero length, "
            f"got shapes {x.shape} and {y.shape}"
        )
    return x, labels.check_labels(y, num_classes=int(y.max()) + 1, name=f"{name} labels")


def _image_counts(x: np.ndarray) -> Counter[bytes]:
    x = np.ascontiguousarray(x)
    return Counter(hashlib.sha1(image.tobytes()).digest() for image in x)


def _fingerprints(x: np.ndarray, y: np.ndarray) -> list[tuple[bytes, int]]:
    x = np.ascontiguousarray(x)
    return [(hashlib.sha1(image.tobytes()).digest(), int(label)) for image, label in zip(x, y, strict=True)]


# --------------------------------------------------------------------------- checkpoints

#: How a checkpoint file is named: the number of epochs done, four digits.
CHECKPOINT_NAME = "epoch_{:04d}.keras"


def _tiny_problem(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(32, 8)).astype("float32"), rng.integers(0, 3, size=32)


def _tiny_model(seed: int) -> Any:
    """A two-layer classifier of 8 numbers into 3 classes, the same for the same seed."""
    from course_utils.runtime.tf_setup import import_keras

    keras = import_keras()
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(3, activation="softmax")], name="tiny")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.05),
                  loss="sparse_categorical_crossentropy")
    return model


def _saved_files(folder: Path) -> list[str]:
    """The names of the files in ``folder`` (hidden temporaries left out), sorted."""
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def find_checkpoint_problems(
    callback_class: Any, resume: Any, *, every: int, stop: int, epochs: int, seed: int = 0,
) -> list[str]:
    """Run an epoch checkpoint in a real ``fit``, interrupted and resumed; list what is wrong.

    ``callback_class(folder, every)`` must be a Keras callback that saves the whole model
    as ``folder/epoch_NNNN.keras`` (:data:`CHECKPOINT_NAME`, ``NNNN`` the number of epochs
    done) after every ``every``-th epoch, creating ``folder`` when it does not exist;
    ``resume(folder)`` must return ``(model, epochs_done)`` from the newest checkpoint,
    ready for ``fit(..., initial_epoch=epochs_done)``, or ``None`` when there is none.

    A tiny classifier (Adam, fixed batches) is trained for ``stop`` epochs with the
    callback (a run killed after epoch ``stop``), resumed with ``resume`` and trained on
    to ``epochs`` with a new callback. Sound means: the checkpoints are exactly those
    after epochs ``every, 2 * every, ...``, numbered as Keras numbers the epochs of the
    whole run (a resumed ``fit`` included); ``resume`` picks the newest; and the resumed
    run ends with the weights of a run that was never interrupted. Empty when sound.

    Examples
    --------
    >>> find_checkpoint_problems(None, None, every=2, stop=1, epochs=3)
    Traceback (most recent call last):
    ...
    ValueError: stop: expected a whole number >= 2, got 1
    """
    every = check_scalar(every, "every", int, min_val=1)
    stop = check_scalar(stop, "stop", int, min_val=every)
    epochs = check_scalar(epochs, "epochs", int, min_val=stop + 1)
    x, y = _tiny_problem(seed)
    fit = {"batch_size": 16, "shuffle": False, "verbose": 0}
    # One model trains uninterrupted, then, put back in its first state, is the run that
    # is killed: Keras traces its training step once for both (a grader runs this check).
    model = _tiny_model(seed)
    model.optimizer.build(model.trainable_variables)
    first = model.get_weights(), [v.numpy() for v in model.optimizer.variables]
    model.fit(x, y, epochs=epochs, **fit)
    reference = model.get_weights()
    model.set_weights(first[0])
    for variable, value in zip(model.optimizer.variables, first[1], strict=True):
        variable.assign(value)
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "checkpoints"
        if resume(folder) is not None:
            problems.append("resume_from(folder) must return None when the folder does not "
                            f"exist yet (a fresh run), got {_describe(resume(folder))}")
        model.fit(x, y, epochs=stop, callbacks=[callback_class(folder, every)], **fit)
        want = list(range(every, stop + 1, every))
        found = _saved_files(folder)
        if found != [CHECKPOINT_NAME.format(e) for e in want]:
            problems.append(
                f"after {stop} epochs with every={every} the folder should hold the checkpoints "
                f"after epochs {want} ({', '.join(CHECKPOINT_NAME.format(e) for e in want)}), "
                f"it holds {_describe_files(found)}")
        restored = resume(folder)
        if not (isinstance(restored, (tuple, list)) and len(restored) == 2
                and hasattr(restored[0], "fit")):
            problems.append("resume_from(folder) must return a pair (model, epochs done), got "
                            + _describe(restored))
            return problems
        resumed, done = restored
        if isinstance(done, bool) or not isinstance(done, (int, np.integer)):
            problems.append(f"resume_from(folder) must return the epochs done as an int, got "
                            f"{_describe(done)}")
            return problems
        if int(done) != want[-1]:
            problems.append(
                f"resume_from(folder) says {int(done)} epochs are done, but the newest "
                f"checkpoint is the one after epoch {want[-1]}")
            if not 0 <= int(done) < epochs:
                return problems
        resumed.fit(x, y, initial_epoch=int(done), epochs=epochs,
                    callbacks=[callback_class(folder, every)], **fit)
        found = _saved_files(folder)
        later = list(range(every, epochs + 1, every))
        if found != [CHECKPOINT_NAME.format(e) for e in later]:
            problems.append(
                f"after resuming at epoch {int(done)} and training on to epoch {epochs}, the "
                f"folder should hold the checkpoints after epochs {later}, it holds "
                f"{_describe_files(found)} (Keras numbers the epochs of a resumed fit from "
                "initial_epoch on)")
        gap = max(float(np.max(np.abs(a - b))) for a, b in
                  zip(reference, resumed.get_weights(), strict=True))
        if gap > 1e-5:
            problems.append(
                f"the resumed run ended with weights up to {gap:.3g} away from those of a run "
                "that was never interrupted: a checkpoint must hold everything training needs "
                "to go on exactly where it stopped, and resuming must use it as saved")
    return problems


def check_checkpoint(
    callback_class: Any, resume: Any, *, every: int, stop: int, epochs: int, seed: int = 0,
) -> None:
    """Raise ``ValueError`` listing what :func:`find_checkpoint_problems` finds.

    Examples
    --------
    >>> check_checkpoint(None, None, every=0, stop=1, epochs=2)
    Traceback (most recent call last):
    ...
    ValueError: every: expected a whole number >= 1, got 0
    """
    problems = find_checkpoint_problems(callback_class, resume, every=every, stop=stop,
                                        epochs=epochs, seed=seed)
    if problems:
        raise ValueError("the checkpoint does not resume like an uninterrupted run:\n"
                         + "\n".join(f"- {p}" for p in problems))


def _describe_files(found: Sequence[str]) -> str:
    return ", ".join(found) if found else "no file"


def _describe(value: Any) -> str:
    """A value as a student recognises it: no ``np.int64(...)`` wrapping."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (tuple, list)):
        inner = ", ".join(_describe(v) for v in value)
        return f"({inner})" if isinstance(value, tuple) else f"[{inner}]"
    if hasattr(value, "count_params"):
        return "a model"
    if isinstance(value, (bool, int, float, str)) or value is None:
        return repr(value)
    return f"a {type(value).__name__}"


# --------------------------------------------------------------------------- the vault


class Vault:
    """The test set, sealed: :meth:`open` hands it out and every opening is counted.

    A copy goes in and copies come out, so nothing done with what :meth:`open` returns
    changes the test set. :attr:`openings` says how often it was opened, and
    :attr:`opened_at` when: a test set opened before the final evaluation has helped take
    a decision, and its score no longer says how the model does on new data.

    Examples
    --------
    >>> vault = Vault(np.zeros((3, 2)), np.array([0, 1, 1]))
    >>> vault
    Vault(3 test samples, opened 0 times)
    >>> x_test, y_test = vault.open()
    >>> y_test.tolist(), vault.openings
    ([0, 1, 1], 1)
    """

    def __init__(self, x: Any, y: Any) -> None:
        x, y = np.array(x), np.array(y)
        if y.ndim != 1 or len(x) != len(y) or len(y) == 0:
            raise ValueError(
                "x, y: expected samples (n, ...) and labels (n,) of the same non-zero length, "
                f"got shapes {x.shape} and {y.shape}")
        x.flags.writeable = False
        y.flags.writeable = False
        opened_at: list[int] = []

        # The samples and the record of openings live in these two closures, not in
        # attributes: the only way to the test set is an opening, which is recorded, and a
        # checker that kept ``record`` reads the true openings even if the code it checks
        # rebinds the vault's attributes (see find_choice_problems).
        def open_() -> tuple[np.ndarray, np.ndarray]:
            opened_at.append(time.perf_counter_ns())
            return x.copy(), y.copy()

        def record() -> tuple[int, ...]:
            return tuple(opened_at)

        self._open, self._record, self._size = open_, record, len(y)

    @property
    def openings(self) -> int:
        """How many times the vault was opened."""
        return len(self._record())

    @property
    def opened_at(self) -> tuple[int, ...]:
        """When each opening happened (:func:`time.perf_counter_ns`), to put it in order
        with other events of the same process."""
        return self._record()

    def __len__(self) -> int:
        return self._size

    def open(self) -> tuple[np.ndarray, np.ndarray]:
        """The test samples and labels (copies); the opening is recorded."""
        return self._open()

    def __repr__(self) -> str:
        times = "time" if self.openings == 1 else "times"
        return f"Vault({len(self)} test samples, opened {self.openings} {times})"


#: Decision rules of the candidate models: class 1 when ``a * x0 + b * x1 > 0``.
_RULES = {"x0": (1.0, 0.0), "x1": (0.0, 1.0), "sum": (1.0, 1.0), "anti": (-1.0, 0.0)}
#: Choice scenarios: the rule that labels each split, the candidates (name: rule, in
#: order) and where validation points lie (``"all"`` or ``"agree"``: x0 and x1 of the
#: same sign, where several rules tie).
_SCENARIOS: dict[str, dict[str, Any]] = {
    "plain": {"train": "sum", "val": "x0", "test": "x0", "where": "all",
              "candidates": {"wide": "anti", "deep": "sum", "small": "x0", "tiny": "x1"}},
    "misleading": {"train": "sum", "val": "x0", "test": "x1", "where": "all",
                   "candidates": {"lr=0.1": "sum", "lr=0.03": "x1", "lr=0.01": "anti",
                                  "lr=0.003": "x0"}},
    "tie": {"train": "sum", "val": "x0", "test": "x1", "where": "agree",
            "candidates": {"no dropout": "anti", "dropout 0.2": "x1", "dropout 0.5": "x0"}},
}


def _points(rng: np.random.Generator, n: int, where: str) -> np.ndarray:
    x = rng.normal(size=(4 * n, 2))
    far = np.min(np.abs(np.stack([x[:, 0], x[:, 1], x.sum(axis=1)], axis=1)), axis=1) > 0.1
    x = x[far]
    if where == "agree":
        x = x[x[:, 0] * x[:, 1] > 0]
    return x[:n].astype("float32")


def _predict(rule: str, x: np.ndarray) -> np.ndarray:
    a, b = _RULES[rule]
    return (a * x[:, 0] + b * x[:, 1] > 0).astype("int64")


def _rule_model(rule: str, name: str) -> tuple[Any, dict[bytes, int]]:
    """A two-class linear classifier of points that follows ``rule``, and its record of inputs.

    The record maps every sample the model was asked about to when it first saw it; it is
    held by the caller alone, not by the model, so code handed the model cannot edit it.
    Compiled to run eagerly, so that its first layer sees every sample it is asked about
    (``predict``, ``evaluate`` or a call) and :func:`find_choice_problems` can tell which
    candidates met the test set, and which had met the validation data when the vault was
    opened.
    """
    from course_utils.runtime.tf_setup import import_keras

    keras = import_keras()

    seen: dict[bytes, int] = {}  # sample -> time.perf_counter_ns() of first sight

    class Witness(keras.layers.Layer):
        """Passes its input on and remembers every sample it saw, and when it first saw
        each (eager calls only), in a record that only :func:`_rule_model`'s caller reads."""

        def call(self, inputs: Any) -> Any:
            try:
                rows = np.asarray(inputs, dtype="float32")
            except (TypeError, ValueError, NotImplementedError):  # symbolic, while building
                return inputs
            now = time.perf_counter_ns()
            for row in rows.reshape(len(rows), -1):
                seen.setdefault(row.tobytes(), now)
            return inputs

    a, b = _RULES[rule]
    model = keras.Sequential([keras.Input((2,)), Witness(name="witness"),
                              keras.layers.Dense(2, activation="softmax")],
                             name="".join(c if c.isalnum() else "_" for c in name))
    model.set_weights([np.array([[-5 * a, 5 * a], [-5 * b, 5 * b]], "float32"),
                       np.zeros(2, "float32")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], run_eagerly=True)
    return model, seen


def _first_met(seen: Mapping[bytes, int], x: np.ndarray) -> int | None:
    """When a candidate first saw any sample of ``x`` (perf_counter_ns; ``seen`` is its
    record from :func:`_rule_model`), or ``None``."""
    keys = (row.tobytes() for row in x.astype("float32"))
    return min((seen[key] for key in keys if key in seen), default=None)


def find_choice_problems(choose: Any, *, scenario: str = "misleading", seed: int = 0) -> list[str]:
    """Call ``choose(candidates, data, vault)`` on real models; list what is wrong.

    ``candidates`` maps names to trained Keras classifiers (two classes of points in the
    plane), ``data`` is ``{"train": (x, y), "val": (x, y)}`` and ``vault`` a :class:`Vault`
    with the test set. ``choose`` must return ``(name, test_accuracy)``: the candidate to
    ship, chosen without the test set (it does best on the validation data; when several
    tie, any of them), and its accuracy on the test set, the vault opened exactly once,
    after the candidates were measured on the validation data (none is measured there for
    the first time after the opening), and no other candidate measured on the test set (each
    candidate remembers what it saw, and when).
    In the ``"misleading"`` scenario the best model on the training data, the best on
    validation and the best on the test set are three different ones; in ``"tie"``
    several tie on validation and differ on the test set; ``"plain"`` is the visible
    tests' example. The data and the candidates must come back unchanged.

    Examples
    --------
    >>> find_choice_problems(lambda c, d, v: ("x", 0.5), scenario="easy")
    Traceback (most recent call last):
    ...
    ValueError: scenario: expected one of 'plain', 'misleading', 'tie', got 'easy'
    """
    from course_utils.runtime.checks import check_choice as _check_choice

    spec = _SCENARIOS[_check_choice(scenario, "scenario", tuple(_SCENARIOS))]
    rng = np.random.default_rng(seed)
    splits = {}
    for split in ("train", "val", "test"):
        x = _points(rng, 60, spec["where"] if split == "val" else "all")
        splits[split] = (x, _predict(spec[split], x))
    score = {name: {split: float(np.mean(_predict(rule, x) == y))
                    for split, (x, y) in splits.items()}
             for name, rule in spec["candidates"].items()}
    built = {name: _rule_model(rule, name) for name, rule in spec["candidates"].items()}
    candidates = {name: model for name, (model, _) in built.items()}
    records = {name: seen for name, (_, seen) in built.items()}
    witnesses = {name: model.get_layer("witness") for name, model in candidates.items()}
    data = {split: splits[split] for split in ("train", "val")}
    copies = {split: (x.copy(), y.copy()) for split, (x, y) in data.items()}
    vault = Vault(*splits["test"])
    opened_at = vault._record  # kept here: rebinding the vault's attributes cannot hide an opening
    given = dict(candidates)
    result = choose(candidates, data, vault)

    problems: list[str] = []
    openings = len(opened_at())
    if openings != 1:
        problems.append(
            f"the vault was opened {openings} times: open it exactly once, at the end, "
            "to measure the chosen model"
            + (" (every look at the test set before the choice is made helps make it)"
               if openings > 1 else ""))
    # a witness removed or its call replaced would hide what a candidate was shown
    untouched = all(model.get_layer("witness") is witnesses[name]
                    and "call" not in vars(witnesses[name])
                    for name, model in given.items())
    if candidates != given or not untouched or any(
            not (np.array_equal(data[s][0], copies[s][0]) and np.array_equal(data[s][1], copies[s][1]))
            for s in copies if isinstance(data.get(s), tuple)) or sorted(data) != sorted(copies):
        problems.append("the candidates or the data changed: leave both as given")
    if not (isinstance(result, (tuple, list)) and len(result) == 2):
        problems.append(f"expected a pair (name, test accuracy), got {_describe(result)}")
        return problems
    name, accuracy = result
    if not isinstance(name, str) or name not in given:
        problems.append(f"the name must be one of {list(given)}, got {_describe(name)}")
        return problems
    opened = opened_at()[:1]
    # a candidate first measured on validation after the opening: chosen with the test set
    # at hand (one never measured there leaves no such trace)
    unmeasured = [n for n in given
                  if opened and (t := _first_met(records[n], splits["val"][0])) is not None
                  and t > opened[0]]
    if unmeasured:
        problems.append(
            f"the vault was opened before the candidates {unmeasured} were measured on the "
            "validation data: choose first, then open the vault to measure the chosen model "
            "(a test set at hand while choosing can sway the choice)")
    others = [n for n in given
              if n != name and _first_met(records[n], splits["test"][0]) is not None]
    if others:
        problems.append(
            f"the candidates {others} met the test set too: only the model chosen to ship meets "
            "it, once, at the end (measuring the others there is choosing with it)")
    best = max(s["val"] for s in score.values())
    ship = [n for n, s in score.items() if s["val"] == best]
    if name not in ship:
        problems.append(
            f"chose {name!r} (training accuracy {score[name]['train']:.0%}, validation "
            f"{score[name]['val']:.0%}); the candidates that do best on data they were neither "
            f"trained nor tested on are {ship} (validation {best:.0%})")
    if isinstance(accuracy, (bool, np.bool_)) or not isinstance(accuracy, (float, int, np.number)):
        problems.append(f"the test accuracy must be a number, got {_describe(accuracy)}")
    elif abs(float(accuracy) - score[name]["test"]) > 1e-6:
        which = [s for s in ("train", "val") if abs(float(accuracy) - score[name][s]) <= 1e-6]
        problems.append(
            f"returned a test accuracy of {float(accuracy):.4f}, but {name!r} gets "
            f"{score[name]['test']:.4f} on the test set"
            + (f" ({float(accuracy):.4f} is its accuracy on the "
               f"{ {'train': 'training', 'val': 'validation'}[which[0]]} data)"
               if which else ""))
    return problems


def check_choice(choose: Any, *, scenario: str = "misleading", seed: int = 0) -> None:
    """Raise ``ValueError`` listing what :func:`find_choice_problems` finds.

    Examples
    --------
    >>> check_choice(lambda candidates, data, vault: None)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: the choice breaks test-set discipline:
    - the vault was opened 0 times: open it exactly once, at the end, to measure the chosen model
    - expected a pair (name, test accuracy), got None
    """
    problems = find_choice_problems(choose, scenario=scenario, seed=seed)
    if problems:
        raise ValueError("the choice breaks test-set discipline:\n"
                         + "\n".join(f"- {p}" for p in problems))


# --------------------------------------------------------------------------- tuning


def plot_search_trials(searches: Mapping[str, Sequence[tuple[float, float]]]) -> Figure:
    """One panel per search: the (learning rate, batch size) of every run it tries.

    Both axes are logarithmic and shared, so the searches compare at a glance; the ticks
    under each panel's x-axis mark the distinct learning rates a search tries.

    Examples
    --------
    >>> fig = plot_search_trials({"grid": [(1e-3, 16), (1e-2, 16)], "random": [(3e-3, 32)]})
    >>> [ax.get_title() for ax in fig.axes]
    ['grid: 2 runs, 2 learning rates', 'random: 1 runs, 1 learning rates']
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    if not isinstance(searches, Mapping) or not searches:
        raise ValueError("searches: expected a dict {name: [(learning rate, batch size), ...]}, "
                         f"got {searches!r}")
    fig = Figure(figsize=(4.2 * len(searches), 3.6), layout="constrained")
    axes = fig.subplots(1, len(searches), sharex=True, sharey=True, squeeze=False)[0]
    for ax, (name, trials) in zip(axes, searches.items(), strict=True):
        points = np.asarray(trials, dtype=float).reshape(-1, 2)
        if len(points) == 0 or not np.all(points > 0):
            raise ValueError(f"searches[{name!r}]: expected runs (learning rate > 0, "
                             f"batch size > 0), got {trials!r}")
        ax.scatter(points[:, 0], points[:, 1], s=40)
        ax.plot(points[:, 0], np.zeros(len(points)), "|", color="black", markersize=12,
                transform=ax.get_xaxis_transform())
        ax.set_xscale("log")
        ax.set_yscale("log", base=2)
        distinct = len(np.unique(points[:, 0]))
        ax.set_title(f"{name}: {len(points)} runs, {distinct} learning rates")
        ax.set_xlabel("learning rate (log scale)")
    axes[0].yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axes[0].set_ylabel("batch size (log scale)")
    return fig


# --------------------------------------------------------------------------- random labels


def shuffle_labels(y: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """The labels in a random order: same classes and counts, no link to the images.

    Examples
    --------
    >>> y = np.array([0, 1, 2, 3] * 3)
    >>> shuffled = shuffle_labels(y, seed=1)
    >>> sorted(shuffled.tolist()) == sorted(y.tolist()), bool((shuffled != y).any())
    (True, True)
    """
    y = labels.check_labels(y, num_classes=int(np.max(y, initial=0)) + 1, name="y")
    return np.random.default_rng(seed).permutation(y)


def memorize_random_labels(
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    batch_size: int = 16,
    x_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    seed: int = 0,
    width: int = 16,
    learning_rate: float = 3e-3,
) -> History:
    """Train the fingers CNN on randomly shuffled labels and return its history.

    The labels of ``x`` are shuffled (:func:`shuffle_labels`), so there is nothing
    to learn that carries over to new images; the network still drives its
    training accuracy towards 100 % by memorising each image, while the
    validation accuracy (on ``x_val, y_val`` with their true labels) stays at
    chance, ``1 / num_classes``. This is why accuracy on data the model was
    selected with proves nothing, and why the test set stays in the vault.

    No augmentation, dropout or batch normalisation: they would only slow the
    memorising down. :func:`course_utils.training.fit_model` trains (Adam at
    ``learning_rate``, batches of ``batch_size`` reshuffled every epoch). Returns the
    :class:`~course_utils.history.History` (``loss``, ``accuracy`` and, with
    validation data, ``val_loss``, ``val_accuracy``).

    Examples
    --------
    >>> from course_utils import fingers                                  # doctest: +SKIP
    >>> x, y = fingers.make_fingers(48, image_size=32, seed=0)            # doctest: +SKIP
    >>> h = memorize_random_labels(x, y, epochs=40)                       # doctest: +SKIP
    >>> h["accuracy"][-1]                                                 # doctest: +SKIP
    1.0
    """
    from course_utils import models
    from course_utils.training import fit_model

    epochs = check_scalar(epochs, "epochs", int, min_val=1)
    x = np.asarray(x)
    if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1] != x.shape[2]:
        raise ValueError(
            f"x: expected uint8 square grayscale images (n, size, size), got {x.dtype} {x.shape}"
        )
    if (x_val is None) != (y_val is None):
        raise ValueError("give both x_val and y_val, or neither")
    if x_val is not None:
        x_val = np.asarray(x_val)
        if x_val.dtype != np.uint8 or x_val.shape[1:] != x.shape[1:]:
            raise ValueError(
                f"x_val: expected uint8 images of the size of x (n, {x.shape[1]}, {x.shape[2]}), "
                f"got {x_val.dtype} {x_val.shape}"
            )
    random_y = shuffle_labels(y, seed=seed)
    val = None
    if x_val is not None:
        val = (to_model_input(x_val), labels.check_labels(y_val, name="y_val"))

    def build() -> Any:
        return models.build_fingers_cnn(
            (x.shape[1], x.shape[2], 1), labels.NUM_CLASSES, depth=2, width=width,
            batch_norm=False, dropout=0.0, seed=seed, name="memorizer",
        )

    return fit_model(build, (to_model_input(x), random_y), val, epochs=epochs,
                     seed=seed, learning_rate=learning_rate, batch_size=batch_size)
