"""Lesson 04, transfer learning: a shipped base network, feature extraction, fine-tuning.

No ImageNet weights can be downloaded in CI or on a grader, so the course ships its
own pretrained base: the reference CNN (:func:`course_utils.models.build_fingers_cnn`,
32x32 inputs) trained on a *source* task that differs from the lesson's target.

* **Source task**: the 12 fingers classes drawn in :data:`course_utils.fingers.ALT_STYLE`
  (dark, thick-fingered hands on a light, smooth background, turned up to 40 degrees),
  with plenty of data (12 000 images). ``course pretrain`` trains it, seeded, in about
  a minute and a half on two CPU cores; its weights (:data:`BASE_FILE`, 0.67 MB) live
  in ``course_utils/assets/`` and are checked against :data:`BASE_SHA256` on load.
  The record beside them (:func:`base_record`) says how they were made.
* **Target task**: the same 12 classes in the course's usual look
  (:data:`course_utils.fingers.DEFAULT_STYLE`) with little labelled data, the
  profile's ``few_shot_per_class`` images per class.

The two ways to reuse the base (SYLLABUS 04):

* feature extraction: :func:`build_feature_extractor` cuts the base at its
  ``flatten`` layer, :func:`extract_features` turns images into feature vectors and
  :func:`fit_feature_classifier` trains a logistic regression (scikit-learn) on them;
* fine-tuning ("network surgery"): :func:`build_fine_tuning_model` puts a new dense
  head (:func:`course_utils.models.build_dense_head`) on the frozen cut base, called
  with ``training=False``; after the head has warmed up, :func:`unfreeze_top_block`
  unfreezes the top convolution block (its batch normalisation stays frozen, so in
  inference mode) and recompiles with a very small learning rate.

:func:`choose_method` and :data:`DECISION_TABLE` hold the rule of thumb (dataset size
by similarity to the source data). :func:`load_pretrained_base` gives the same code
path with Keras Applications' MobileNetV2 (``weights="imagenet"``,
``include_top=False``) where it can be downloaded, e.g. on Colab, and falls back to
the shipped base, saying so, where it cannot.

The base is trained at 32x32 pixels. Larger inputs (the ``cpu`` and ``gpu``
profiles) are resized down to 32x32 by a ``Resizing`` layer at the front of the
network, as Keras Applications networks expect their own input size.

Examples
--------
>>> from course_utils import transfer
>>> transfer.choose_method("small", "similar")
'feature extraction'
>>> base = transfer.load_base_network((32, 32, 1))          # doctest: +SKIP
>>> transfer.build_feature_extractor(base).output_shape    # doctest: +SKIP
(None, 1024)
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from course_utils import install, io, labels

if TYPE_CHECKING:  # pragma: no cover
    import keras
    from matplotlib.figure import Figure
    from sklearn.linear_model import LogisticRegression

__all__ = [
    "BASE_FILE",
    "BASE_IMAGE_SIZE",
    "BASE_SHA256",
    "DECISION_TABLE",
    "METHODS",
    "PretrainConfig",
    "PretrainedBase",
    "base_record",
    "base_weights_path",
    "build_base_architecture",
    "build_feature_extractor",
    "build_fine_tuning_model",
    "check_sha256",
    "compare_methods",
    "choose_method",
    "configure_parser",
    "count_trainable_parameters",
    "extract_features",
    "fit_feature_classifier",
    "load_base_network",
    "load_pretrained_base",
    "plot_accuracy_by_data_size",
    "plot_accuracy_comparison",
    "plot_decision_table",
    "pretrain_base",
    "run_command",
    "source_task_data",
    "unfreeze_top_block",
]

#: Side of the images the shipped base was trained on.
BASE_IMAGE_SIZE: Final = 32
#: The shipped weights, in ``course_utils/assets/`` (Keras ``.weights.h5`` format).
BASE_FILE: Final = "fingers_base_alt_32px.weights.h5"
#: SHA-256 of :data:`BASE_FILE`; :func:`load_base_network` refuses any other file.
BASE_SHA256: Final = "8db4b50d23a246f9d2e412ae0596b429dac65dab419d0ceb79a2aa2a22c54362"
#: The layer the base is cut at: everything below it is the feature extractor.
CUT_LAYER: Final = "flatten"
#: Prefix of the layers of the base's top convolution block (unfrozen for fine-tuning).
TOP_BLOCK: Final = "block3"

#: The three ways to get a classifier for a new task.
METHODS: Final = ("feature extraction", "fine-tuning", "train from scratch")

#: The decision table: (dataset size, similarity to the source data) -> (method, why).
DECISION_TABLE: Final[Mapping[tuple[str, str], tuple[str, str]]] = {
    ("small", "similar"): (
        "feature extraction",
        "the base's features already describe such images, and too few labels would let "
        "fine-tuning overfit: train only a simple classifier on them",
    ),
    ("large", "similar"): (
        "fine-tuning",
        "enough labels to adapt the upper layers without overfitting; starting from the "
        "pretrained weights converges faster and better than from scratch",
    ),
    ("small", "different"): (
        "feature extraction",
        "too few labels to train or adapt many weights; the generic lower-level features "
        "(edges, strokes, blobs) still transfer, so cut lower in the network if needed",
    ),
    ("large", "different"): (
        "train from scratch",
        "the source features fit the new data poorly and there is enough data to learn "
        "its own (the pretrained weights remain a reasonable starting point)",
    ),
}
_SIZES: Final = ("small", "large")
_SIMILARITIES: Final = ("similar", "different")

_ASSETS: Final = Path(__file__).resolve().parent / "assets"
_IMAGENET_HOST: Final = ("storage.googleapis.com", 443)
_MOBILENET_SIZE: Final = 96


# --------------------------------------------------------------------------- the shipped base


def base_weights_path() -> Path:
    """Path of the shipped base weights inside the installed package.

    Examples
    --------
    >>> base_weights_path().name
    'fingers_base_alt_32px.weights.h5'
    """
    return _ASSETS / BASE_FILE


def base_record() -> dict[str, Any]:
    """How the shipped base was made: the record beside its weights in ``assets/``.

    The same fields as the record :func:`pretrain_base` writes (the recipe in
    ``config``, ``val_accuracy`` on the source task, ``sha256``...), plus a
    ``note`` on what the record could not say.

    Examples
    --------
    >>> record = base_record()
    >>> record["sha256"] == BASE_SHA256, record["config"]["images"]
    (True, 12000)
    """
    return io.read_json(_record_path(base_weights_path()))


def _record_path(weights: Path) -> Path:
    """``name.weights.h5`` -> ``name.json``, where a weights file's record lives."""
    return weights.with_name(weights.name.removesuffix(".weights.h5") + ".json")


def check_sha256(path: str | os.PathLike[str], expected: str) -> Path:
    """Return ``path`` when its SHA-256 digest is ``expected``; raise otherwise.

    Raises ``FileNotFoundError`` naming the file when it is missing and
    ``ValueError`` naming the file and both digests when they differ (a corrupt,
    truncated or replaced file).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "w.bin"
    >>> _ = p.write_bytes(b"abc")
    >>> check_sha256(p, hashlib.sha256(b"abc").hexdigest()).name
    'w.bin'
    >>> check_sha256(p, "0" * 64)
    Traceback (most recent call last):
    ...
    ValueError: ...w.bin: SHA-256 is ba7816bf..., expected 00000000...; ...
    """
    file = Path(path)
    expected = str(expected).strip().lower()
    if len(expected) != 64 or any(c not in "0123456789abcdef" for c in expected):
        raise ValueError(f"expected: a SHA-256 digest of 64 hex digits, got {expected!r}")
    if not file.is_file():
        raise FileNotFoundError(
            f"{file}: weights file not found; reinstall the course ({install.install_hint()}), "
            f"or train the base again with `course pretrain` and pass its file"
        )
    digest = _sha256(file)
    if digest != expected:
        raise ValueError(
            f"{file}: SHA-256 is {digest[:8]}..., expected {expected[:8]}...; the file is "
            f"corrupt or not the one this version of course-utils ships. Reinstall the "
            f"course ({install.install_hint()}), or pass the file `course pretrain` wrote "
            f"together with the SHA-256 it printed"
        )
    return file


def build_base_architecture(input_shape: Sequence[int] | None = None) -> keras.Model:
    """The base network's architecture, untrained: the reference CNN named ``base``.

    Three convolution blocks (16, 32, 64 filters, each with batch normalisation and
    2x2 max pooling), ``flatten``, ``fc1`` (128 units), dropout and a 12-way softmax:
    :func:`course_utils.models.build_fingers_cnn` at 32x32 with its defaults and
    ``seed=0``. An ``input_shape`` (default ``(32, 32, 1)``) of another side puts a
    ``Resizing`` layer named ``resize_to_base`` (bilinear, antialiased) in front, so
    the layers, their names and their weights stay the same at every image size.
    Lesson 04 trains it from scratch as the baseline transfer learning must beat.

    Raises ``ValueError`` for an ``input_shape`` that is not ``(rows, cols, 1)``.

    Examples
    --------
    >>> build_base_architecture().count_params()                  # doctest: +SKIP
    157260
    >>> build_base_architecture((64, 64, 1)).layers[1].name      # doctest: +SKIP
    'resize_to_base'
    """
    from course_utils import models

    shape = _check_gray_shape(input_shape)
    base = models.build_fingers_cnn(
        (BASE_IMAGE_SIZE, BASE_IMAGE_SIZE, 1), labels.NUM_CLASSES, seed=0, name="base"
    )
    return _at_input_shape(base, shape)


def _at_input_shape(base: keras.Model, shape: tuple[int, int, int]) -> keras.Model:
    """``base`` itself at 32x32; else a copy of its layers (and weights) behind a ``Resizing``.

    The layers are copied, not shared: a shared layer's ``.output`` is its first
    use's, so ``get_layer("flatten").output`` would not belong to the new graph.
    """
    if shape[:2] == (BASE_IMAGE_SIZE, BASE_IMAGE_SIZE):
        return base
    keras = _keras()
    inputs = keras.Input(shape=shape, name="image")
    x = keras.layers.Resizing(
        BASE_IMAGE_SIZE, BASE_IMAGE_SIZE, antialias=True, name="resize_to_base"
    )(inputs)
    for layer in base.layers[1:]:
        copy = type(layer).from_config(layer.get_config())
        x = copy(x)
        copy.set_weights(layer.get_weights())
    return keras.Model(inputs, x, name="base")


def load_base_network(
    input_shape: Sequence[int] | None = None,
    *,
    weights_path: str | os.PathLike[str] | None = None,
    sha256: str | None = None,
) -> keras.Model:
    """The pretrained base network, with the source task's head still on.

    The weights come from ``weights_path`` (default: the shipped
    :data:`BASE_FILE`), checked against ``sha256`` (default: :data:`BASE_SHA256`)
    before they are read. ``input_shape`` (default ``(32, 32, 1)``) is the shape of
    the images the network will get; another side than 32 puts a ``Resizing`` layer
    named ``resize_to_base`` in front (bilinear, antialiased), so the layers and
    their names stay the same. Every call returns a new, independent network.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` for a file
    whose SHA-256 differs or an ``input_shape`` that is not ``(rows, cols, 1)``.

    Examples
    --------
    >>> base = load_base_network((32, 32, 1))                     # doctest: +SKIP
    >>> [layer.name for layer in base.layers][-4:]                 # doctest: +SKIP
    ['flatten', 'fc1', 'fc1_dropout', 'predictions']
    """
    if weights_path is None:
        path = base_weights_path()
        expected = BASE_SHA256 if sha256 is None else sha256
    else:
        path = Path(weights_path)
        if sha256 is None:
            raise ValueError(
                f"sha256: give the SHA-256 of {path} (the one `course pretrain` printed); "
                f"weights are never loaded unchecked"
            )
        expected = sha256
    check_sha256(path, expected)
    shape = _check_gray_shape(input_shape)
    trained = build_base_architecture()
    try:
        trained.load_weights(path)
    except (ValueError, OSError, KeyError) as exc:
        raise ValueError(f"{path}: cannot load it into the base network ({exc})") from exc
    return _at_input_shape(trained, shape)


# --------------------------------------------------------------------------- feature extraction


def build_feature_extractor(base: keras.Model, *, cut_at: str = CUT_LAYER) -> keras.Model:
    """The base cut at layer ``cut_at``: images in, one feature vector per image out.

    The layers above the cut (the source task's dense head) are left out; the
    layers below are the base's own (shared, not copied). The model is named
    ``feature_extractor``.

    Raises ``ValueError`` naming the layer when ``base`` has no layer ``cut_at``.

    Examples
    --------
    >>> extractor = build_feature_extractor(load_base_network())   # doctest: +SKIP
    >>> extractor.output_shape, extractor.layers[-1].name           # doctest: +SKIP
    ((None, 1024), 'flatten')
    """
    keras = _keras()
    if not isinstance(base, keras.Model):
        raise ValueError(f"base: expected a keras.Model, got {type(base).__name__}")
    names = [layer.name for layer in base.layers]
    if cut_at not in names:
        raise ValueError(f"cut_at: the base has no layer {cut_at!r}; its layers are {names}")
    return keras.Model(base.inputs, base.get_layer(cut_at).output, name="feature_extractor")


def extract_features(extractor: keras.Model, images: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
    """Feature vectors ``(n, d)`` (float32) of uint8 images ``(n, s, s)``.

    The images are scaled to ``[0, 1]`` and given a channel axis, as in training;
    the extractor runs in inference mode (``predict``).

    Raises ``ValueError`` naming the argument for images that are not uint8
    ``(n, s, s)`` or ``(n, s, s, 1)``.

    Examples
    --------
    >>> f = extract_features(build_feature_extractor(load_base_network()),
    ...                      np.zeros((3, 32, 32), np.uint8))    # doctest: +SKIP
    >>> f.shape, f.dtype                                         # doctest: +SKIP
    ((3, 1024), dtype('float32'))
    """
    x = np.asarray(images)
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim != 3 or x.dtype != np.uint8:
        raise ValueError(f"images: expected uint8 images (n, size, size), got {x.dtype} {x.shape}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer) or batch_size < 1:
        raise ValueError(f"batch_size: expected a positive integer, got {batch_size!r}")
    scaled = x[..., None].astype("float32") / 255.0
    features = extractor.predict(scaled, batch_size=int(batch_size), verbose=0)
    return np.asarray(features, dtype=np.float32).reshape(len(x), -1)


def fit_feature_classifier(
    features: np.ndarray, y: np.ndarray, *, C: float = 0.01, max_iter: int = 1000
) -> LogisticRegression:
    """A logistic regression trained on extracted features (scikit-learn).

    ``LogisticRegression(C=C, max_iter=max_iter)`` on the features as they are
    (batch-normalised activations, already on comparable scales; standardising them
    would blow up the many features that are almost always zero). ``C`` is the
    inverse regularisation strength: small, because there are few labelled images
    and many features. ``.score(features, y)`` gives the accuracy.

    Raises ``ValueError`` naming the argument for features that are not a 2-D
    array with one row per label, labels out of range, or a ``C`` that is not positive.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat(np.arange(3), 10)
    >>> f = rng.normal(size=(30, 4)) + y[:, None]
    >>> clf = fit_feature_classifier(f, y, C=1.0)
    >>> round(clf.score(f, y), 2)
    0.83
    """
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    f = np.asarray(features)
    y = labels.check_labels(y, name="y")
    if f.ndim != 2 or len(f) != len(y):
        raise ValueError(
            f"features: expected a 2-D array with one row per label ({len(y)}), got shape {f.shape}"
        )
    if isinstance(C, bool) or not isinstance(C, int | float) or not C > 0:
        raise ValueError(f"C: expected a positive number, got {C!r}")
    classifier = LogisticRegression(C=float(C), max_iter=int(max_iter))
    # A small problem: one BLAS thread is fastest, and does not fight TensorFlow's threads.
    with threadpool_limits(limits=1, user_api="blas"):
        return classifier.fit(f, y)


# --------------------------------------------------------------------------- fine-tuning


def build_fine_tuning_model(
    extractor: keras.Model,
    num_classes: int = labels.NUM_CLASSES,
    *,
    learning_rate: float = 1e-3,
    units: int = 128,
    dropout: float = 0.5,
    seed: int | None = None,
) -> keras.Model:
    """A new dense head on the frozen feature extractor, compiled for the warm-up.

    ``extractor.trainable = False`` freezes every layer of the base (a frozen
    batch-normalisation layer runs in inference mode: it keeps the source data's
    statistics). The extractor is called with ``training=False``, as the Keras
    transfer-learning guide does; note that in Keras 3 ``fit`` overrides that argument
    inside a functional model (keras-team/keras#20285), which is why
    :func:`unfreeze_top_block` keeps the batch-normalisation layers frozen. The head
    is :func:`course_utils.models.build_dense_head`; only its weights are trainable.
    Compiled with Adam at ``learning_rate``.

    Examples
    --------
    >>> model = build_fine_tuning_model(
    ...     build_feature_extractor(load_base_network()), seed=0)   # doctest: +SKIP
    >>> count_trainable_parameters(model)                            # doctest: +SKIP
    132748
    """
    from course_utils import models

    keras = _keras()
    if not isinstance(extractor, keras.Model):
        raise ValueError(f"extractor: expected a keras.Model, got {type(extractor).__name__}")
    extractor.trainable = False
    inputs = keras.Input(shape=tuple(extractor.input_shape[1:]), name="image")
    features = extractor(inputs, training=False)  # the guide's recipe; see the docstring
    head = models.build_dense_head(num_classes, units=units, dropout=dropout, seed=seed)
    model = keras.Model(inputs, head(features), name="fine_tuning")
    return models.compile_classifier(model, learning_rate=learning_rate)


def unfreeze_top_block(
    model: keras.Model,
    extractor: keras.Model,
    *,
    learning_rate: float = 1e-4,
    block: str | Sequence[str] = TOP_BLOCK,
) -> keras.Model:
    """Unfreeze the extractor's top block and recompile ``model`` with a small rate.

    Every layer of ``extractor`` (nested models included) named ``block`` or whose
    name starts with ``block + "_"`` becomes trainable, except batch-normalisation layers: they stay
    frozen, and a frozen batch-normalisation layer runs in inference mode (it keeps
    the source data's statistics instead of those of each small batch). All other
    layers stay frozen. ``block`` may be a sequence of prefixes. Recompiling is what
    makes Keras see the change: a model trained before keeps training the old set
    of weights until it is compiled again.

    Raises ``ValueError`` when no layer of ``extractor`` matches ``block``.

    Examples
    --------
    >>> extractor = build_feature_extractor(load_base_network())   # doctest: +SKIP
    >>> model = build_fine_tuning_model(extractor, seed=0)         # doctest: +SKIP
    >>> count_trainable_parameters(unfreeze_top_block(model, extractor))  # doctest: +SKIP
    151244
    """
    from course_utils import models

    prefixes = (block,) if isinstance(block, str) else tuple(block)
    leaves = list(_leaf_layers(extractor))
    keras = _keras()
    chosen = [
        layer for layer in leaves
        if any(layer.name == p or layer.name.startswith(f"{p}_") for p in prefixes)
        and not isinstance(layer, keras.layers.BatchNormalization)
    ]
    if not chosen:
        raise ValueError(
            f"block: no layer of {extractor.name!r} starts with {prefixes}; its layers are "
            f"{[layer.name for layer in leaves]}"
        )
    extractor.trainable = True
    for layer in leaves:
        layer.trainable = layer in chosen
    return models.compile_classifier(model, learning_rate=learning_rate)


def compare_methods(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    batch_size: int,
    head_epochs: int,
    fine_epochs: int,
    warmup_lr: float = 1e-3,
    fine_tune_lr: float = 1e-4,
    C: float = 0.01,
    seed: int = 0,
) -> dict[str, float]:
    """Test accuracy of the lesson's three ways to use little labelled data.

    The lesson's recipe, in one call (``tests/test_transfer.py`` checks its claims):

    * ``"from scratch"``: :func:`build_base_architecture` trained from its random
      initialisation for ``head_epochs + fine_epochs`` epochs at ``warmup_lr``;
    * ``"feature extraction"``: the shipped base cut at ``flatten``, a logistic
      regression (``C``) on the features;
    * ``"head warm-up"``: a new head on the frozen base, ``head_epochs`` at ``warmup_lr``;
    * ``"fine-tuning"``: then the top block unfrozen, ``fine_epochs`` at ``fine_tune_lr``.

    Images are uint8 ``(n, s, s)``; every network sees the same batches (no
    augmentation; the dataset reshuffles itself every epoch), seeded by ``seed``.

    Examples
    --------
    >>> from course_utils import fingers                                 # doctest: +SKIP
    >>> x, y = fingers.make_fingers(60, image_size=32, seed=42)          # doctest: +SKIP
    >>> xt, yt = fingers.make_fingers(120, image_size=32, seed=44)       # doctest: +SKIP
    >>> compare_methods(x, y, xt, yt, batch_size=32, head_epochs=20,
    ...                 fine_epochs=20, seed=42)                         # doctest: +SKIP
    {'from scratch': 0.18, 'feature extraction': 0.41, 'head warm-up': 0.5, 'fine-tuning': 0.52}
    """
    from course_utils import datasets, models
    from course_utils.tf_setup import set_seed

    x_train = np.asarray(x_train)
    shape = (int(x_train.shape[1]), int(x_train.shape[-2]), 1)
    train_ds = datasets.make_dataset(x_train, y_train, batch_size=batch_size, training=True,
                                     seed=seed)
    test_ds = datasets.make_dataset(x_test, y_test, batch_size=256, training=False)
    results: dict[str, float] = {}

    set_seed(seed)
    scratch = models.compile_classifier(build_base_architecture(shape), learning_rate=warmup_lr)
    scratch.fit(train_ds, epochs=head_epochs + fine_epochs, verbose=0, shuffle=False)
    results["from scratch"] = _accuracy(scratch, test_ds)

    extractor = build_feature_extractor(load_base_network(shape))
    classifier = fit_feature_classifier(extract_features(extractor, x_train), y_train, C=C)
    results["feature extraction"] = float(classifier.score(extract_features(extractor, x_test), y_test))

    set_seed(seed)
    model = build_fine_tuning_model(extractor, learning_rate=warmup_lr, seed=seed)
    model.fit(train_ds, epochs=head_epochs, verbose=0, shuffle=False)
    results["head warm-up"] = _accuracy(model, test_ds)
    unfreeze_top_block(model, extractor, learning_rate=fine_tune_lr)
    model.fit(train_ds, epochs=fine_epochs, verbose=0, shuffle=False)
    results["fine-tuning"] = _accuracy(model, test_ds)
    return results


def _accuracy(model: keras.Model, dataset: Any) -> float:
    return float(model.evaluate(dataset, verbose=0, return_dict=True)["accuracy"])


def count_trainable_parameters(model: Any) -> int:
    """Number of scalars in ``model``'s trainable weights (what training changes).

    Examples
    --------
    >>> from course_utils import models                               # doctest: +SKIP
    >>> head = models.build_dense_head(12, units=4); head.build((None, 8))  # doctest: +SKIP
    >>> count_trainable_parameters(head)                               # doctest: +SKIP
    96
    """
    return int(sum(int(np.prod(w.shape)) for w in model.trainable_weights))


def _leaf_layers(model: Any) -> Any:
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            yield from _leaf_layers(layer)
        else:
            yield layer


# --------------------------------------------------------------------------- which method


def choose_method(dataset_size: str, similarity: str) -> str:
    """The method the decision table recommends (one of :data:`METHODS`).

    ``dataset_size`` is ``"small"`` or ``"large"`` (labelled data of the new task);
    ``similarity`` is ``"similar"`` or ``"different"`` (the new images compared to
    the data the base was trained on).

    Examples
    --------
    >>> choose_method("large", "similar")
    'fine-tuning'
    >>> choose_method("large", "different")
    'train from scratch'
    >>> choose_method("tiny", "similar")
    Traceback (most recent call last):
    ...
    ValueError: dataset_size: expected 'small' or 'large', got 'tiny'
    """
    if dataset_size not in _SIZES:
        raise ValueError(f"dataset_size: expected 'small' or 'large', got {dataset_size!r}")
    if similarity not in _SIMILARITIES:
        raise ValueError(f"similarity: expected 'similar' or 'different', got {similarity!r}")
    return DECISION_TABLE[(dataset_size, similarity)][0]


def plot_decision_table() -> Figure:
    """The decision table as a figure: size (rows) by similarity (columns), with reasons.

    Examples
    --------
    >>> fig = plot_decision_table()
    >>> fig.axes[0].get_title()
    'Which method? (labelled data of the new task x similarity to the source data)'
    """
    import textwrap

    from matplotlib.figure import Figure

    colours = {"feature extraction": "#cfe8cf", "fine-tuning": "#cfdcf0",
               "train from scratch": "#f3d9c4"}
    fig = Figure(figsize=(10, 4.6))
    ax = fig.add_subplot()
    ax.set_xlim(0, 2)
    ax.set_ylim(0, 2)
    ax.invert_yaxis()
    for row, size in enumerate(_SIZES):
        for col, similarity in enumerate(_SIMILARITIES):
            method, why = DECISION_TABLE[(size, similarity)]
            ax.add_patch(_rectangle((col, row), colours[method]))
            ax.text(col + 0.5, row + 0.2, method, ha="center", va="center", fontsize=12,
                    weight="bold")
            ax.text(col + 0.5, row + 0.6, textwrap.fill(why, 52), ha="center", va="center",
                    fontsize=8)
    ax.set_xticks([0.5, 1.5], [f"{s} data" for s in _SIMILARITIES])
    ax.set_yticks([0.5, 1.5], [f"{s} data set" for s in _SIZES])
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    ax.set_title("Which method? (labelled data of the new task x similarity to the source data)",
                 pad=28)
    return fig


def _rectangle(corner: tuple[float, float], colour: str) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle(corner, 1, 1, facecolor=colour, edgecolor="white", linewidth=3)


def plot_accuracy_comparison(accuracies: Mapping[str, float], *, chance: float | None = None) -> Figure:
    """Bar chart of test accuracies by method, values written on the bars.

    ``chance`` (e.g. ``1 / 12``) draws the chance level as a dashed line.

    Examples
    --------
    >>> fig = plot_accuracy_comparison({"from scratch": 0.2, "fine-tuning": 0.5}, chance=1 / 12)
    >>> [t.get_text() for t in fig.axes[0].get_xticklabels()]
    ['from scratch', 'fine-tuning']
    """
    from matplotlib.figure import Figure

    if not accuracies:
        raise ValueError("accuracies: expected at least one {method: accuracy} entry")
    names = list(accuracies)
    values = [float(accuracies[n]) for n in names]
    if any(not 0 <= v <= 1 for v in values):
        raise ValueError(f"accuracies: expected values in [0, 1], got {values}")
    fig = Figure(figsize=(1.8 + 1.6 * len(names), 3.4))
    ax = fig.add_subplot()
    bars = ax.bar(names, values, color="#4c72b0")
    for bar, value in zip(bars, values, strict=True):
        ax.text(bar.get_x() + bar.get_width() / 2, value + 0.02, f"{value:.0%}", ha="center")
    if chance is not None:
        ax.axhline(chance, color="grey", linestyle="--", label="chance")
        ax.legend(loc="upper left")
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("test accuracy")
    return fig


def plot_accuracy_by_data_size(
    features: np.ndarray,
    y: np.ndarray,
    features_test: np.ndarray,
    y_test: np.ndarray,
    *,
    sizes: Sequence[int],
    C: float = 0.01,
) -> Figure:
    """Test accuracy of feature extraction against labelled images per class.

    For each ``k`` in ``sizes`` a logistic regression (:func:`fit_feature_classifier`
    with ``C``) is trained on the first ``k`` images of every class in
    ``(features, y)`` and scored on the test features. The accuracies are in the
    figure's ``accuracies`` attribute, ``{k: accuracy}``.

    Raises ``ValueError`` when a size is not a positive integer or some class has
    fewer than ``max(sizes)`` images.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat(np.arange(3), 6)
    >>> f = rng.normal(size=(18, 4)) + 2 * y[:, None]
    >>> fig = plot_accuracy_by_data_size(f, y, f, y, sizes=[1, 3, 6], C=1.0)
    >>> sorted(fig.accuracies)
    [1, 3, 6]
    """
    from matplotlib.figure import Figure

    y = labels.check_labels(y, name="y")
    f = np.asarray(features)
    sizes = sorted({int(k) for k in sizes}) if len(sizes) else []
    if not sizes or sizes[0] < 1:
        raise ValueError(f"sizes: expected positive numbers of images per class, got {sizes}")
    classes = np.unique(y)
    counts = np.bincount(y)[classes]
    if counts.min() < sizes[-1]:
        raise ValueError(
            f"sizes: a class has only {counts.min()} images, fewer than the largest size {sizes[-1]}"
        )
    order = np.argsort(y, kind="stable")
    first = {c: order[y[order] == c] for c in classes}
    accuracies = {}
    for k in sizes:
        keep = np.concatenate([first[c][:k] for c in classes])
        classifier = fit_feature_classifier(f[keep], y[keep], C=C)
        accuracies[k] = float(classifier.score(features_test, y_test))
    fig = Figure(figsize=(5.5, 3.4))
    ax = fig.add_subplot()
    ax.plot(list(accuracies), list(accuracies.values()), "o-")
    for k, value in accuracies.items():
        ax.annotate(f"{value:.0%}", (k, value), textcoords="offset points", xytext=(0, 7),
                    ha="center")
    ax.set_xlabel("labelled images per class")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1.05)
    ax.set_title(f"Feature extraction with more labels (C = {C:g})")
    fig.accuracies = accuracies
    return fig


# --------------------------------------------------------------------------- Keras Applications


@dataclasses.dataclass(frozen=True)
class PretrainedBase:
    """A base network ready for the lesson's code path, and where it came from.

    Attributes
    ----------
    model: the network, taking the lesson's grayscale images ``(s, s, 1)`` in ``[0, 1]``.
    cut_at: the layer to cut at for feature extraction.
    top_block: prefix(es) of the layers :func:`unfreeze_top_block` unfreezes.
    source: ``"imagenet"`` (MobileNetV2) or ``"course"`` (the shipped base).
    message: one sentence saying which base this is and why.
    """

    model: keras.Model
    cut_at: str
    top_block: tuple[str, ...]
    source: str
    message: str


def load_pretrained_base(
    name: str = "mobilenet_v2",
    input_shape: Sequence[int] = (BASE_IMAGE_SIZE, BASE_IMAGE_SIZE, 1),
    *,
    allow_download: bool = True,
    loader: Callable[..., keras.Model] | None = None,
    reachable: Callable[[], bool] | None = None,
) -> PretrainedBase:
    """A pretrained base for the lesson's code path: MobileNetV2 (ImageNet) or the course's.

    ``name="mobilenet_v2"`` asks for Keras Applications' MobileNetV2 with
    ``weights="imagenet"`` and ``include_top=False`` (width 0.35, 96x96 inputs).
    The grayscale images are resized to 96x96, copied to three channels and scaled
    to ``[-1, 1]`` as MobileNetV2 expects; a global average pooling layer named
    ``global_pool`` is the cut point. When the weights cannot be had (downloads
    not allowed, no network, the download fails) the result is the shipped course
    base instead, and ``message`` says so and why. ``name="course"`` asks for the
    shipped base directly.

    ``loader`` (default ``keras.applications.MobileNetV2``) and ``reachable``
    (default: a 3-second connection test to the weights' host) are there for tests,
    so nothing is ever downloaded by them.

    Raises ``ValueError`` for an unknown ``name``.

    Examples
    --------
    >>> offline = load_pretrained_base(reachable=lambda: False)    # doctest: +SKIP
    >>> offline.source                                             # doctest: +SKIP
    'course'
    """
    shape = _check_gray_shape(input_shape)
    if name not in ("mobilenet_v2", "course"):
        raise ValueError(f"name: expected 'mobilenet_v2' or 'course', got {name!r}")
    if name == "mobilenet_v2":
        keras = _keras()
        loader = keras.applications.MobileNetV2 if loader is None else loader
        reachable = _imagenet_reachable if reachable is None else reachable
        reason = None
        if not allow_download and not _mobilenet_cached():
            reason = "downloads are switched off here"
        elif not _mobilenet_cached() and not reachable():
            reason = "there is no network connection to download them"
        else:
            try:
                network = loader(
                    input_shape=(_MOBILENET_SIZE, _MOBILENET_SIZE, 3), alpha=0.35,
                    include_top=False, weights="imagenet",
                )
            except Exception as exc:  # noqa: BLE001 - any failure means: fall back
                reason = f"the download failed: {type(exc).__name__}: {exc}".strip()
        if reason is None:
            return PretrainedBase(
                model=_wrap_mobilenet(network, shape), cut_at="global_pool",
                top_block=("block_16", "Conv_1"), source="imagenet",
                message="Using MobileNetV2 pretrained on ImageNet (weights='imagenet', "
                        "include_top=False).",
            )
        message = (
            f"ImageNet weights for MobileNetV2 are not available ({reason}): falling back to "
            f"the course's shipped base, pretrained on ALT_STYLE fingers images."
        )
    else:
        message = "Using the course's shipped base, pretrained on ALT_STYLE fingers images."
    return PretrainedBase(
        model=load_base_network(shape), cut_at=CUT_LAYER, top_block=(TOP_BLOCK,),
        source="course", message=message,
    )


def _wrap_mobilenet(network: keras.Model, shape: tuple[int, int, int]) -> keras.Model:
    keras = _keras()
    layers = keras.layers
    inputs = keras.Input(shape=shape, name="image")
    x = layers.Resizing(_MOBILENET_SIZE, _MOBILENET_SIZE, name="resize_to_base")(inputs)
    x = layers.Concatenate(name="gray_to_rgb")([x, x, x])
    x = layers.Rescaling(2.0, offset=-1.0, name="to_mobilenet_range")(x)  # [0, 1] -> [-1, 1]
    x = network(x)
    x = layers.GlobalAveragePooling2D(name="global_pool")(x)
    return keras.Model(inputs, x, name="imagenet_base")


def _mobilenet_cached() -> bool:
    cache = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"
    return any(cache.glob("mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5"))


def _imagenet_reachable(timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection(_IMAGENET_HOST, timeout=timeout):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------- course pretrain


@dataclasses.dataclass(frozen=True)
class PretrainConfig:
    """How the shipped base was trained; the defaults are the shipped run's recipe.

    The source data is :data:`course_utils.fingers.ALT_STYLE` at 32x32 pixels,
    ``images`` for training and ``val_images`` for validation, drawn with seeds
    derived from ``seed`` (never the target task's).
    """

    images: int = 12_000
    val_images: int = 1_200
    epochs: int = 20
    batch_size: int = 64
    learning_rate: float = 1e-3
    augment: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("images", "val_images", "epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive integer, got {value!r}")
        if self.images < labels.NUM_CLASSES:
            raise ValueError(f"images: expected at least {labels.NUM_CLASSES} (one per class)")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate: expected a positive number, got {self.learning_rate!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed: expected an integer >= 0, got {self.seed!r}")


def source_task_data(
    config: PretrainConfig = PretrainConfig(),
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The source task's images ``(x, y, x_val, y_val)`` of a pretraining recipe.

    ALT_STYLE fingers at :data:`BASE_IMAGE_SIZE` pixels, ``config.images`` for
    training and ``config.val_images`` for validation, drawn with seeds derived
    from ``config.seed`` (never those of the target task).

    Examples
    --------
    >>> x, y, x_val, y_val = source_task_data(PretrainConfig(images=24, val_images=12))
    >>> x.shape, x_val.shape
    ((24, 32, 32), (12, 32, 32))
    """
    from course_utils import fingers

    if not isinstance(config, PretrainConfig):
        raise ValueError(f"config: expected a PretrainConfig, got {type(config).__name__}")
    size = BASE_IMAGE_SIZE
    x, y = fingers.make_fingers(config.images, image_size=size, seed=10_000 + config.seed,
                                style=fingers.ALT_STYLE)
    x_val, y_val = fingers.make_fingers(config.val_images, image_size=size,
                                        seed=20_000 + config.seed, style=fingers.ALT_STYLE)
    return x, y, x_val, y_val


def pretrain_base(
    out_path: str | os.PathLike[str],
    config: PretrainConfig = PretrainConfig(),
    *,
    verbose: int | str = 0,
    deterministic: bool = False,
) -> dict[str, Any]:
    """Train the base on the source task and write its weights to ``out_path``.

    Trains :func:`build_base_architecture` on ALT_STYLE images (augmented when
    ``config.augment``), seeded with ``keras.utils.set_random_seed``; writes the
    weights (without optimizer state) atomically to ``out_path`` (a name ending in
    ``.weights.h5``) and a record ``<out_path stem>.json`` beside it. Returns that
    record: the config, validation accuracy, seconds, size and SHA-256.

    ``deterministic=True`` turns on TensorFlow's op determinism for the rest of the
    process (``course pretrain`` does): the same config on the same machine and
    versions then writes the same bytes. It slows some operations down and cannot be
    turned off again, so library callers leave it off.

    Examples
    --------
    >>> record = pretrain_base("runs/pretrain/base.weights.h5",
    ...                        PretrainConfig(images=120, epochs=1))   # doctest: +SKIP
    >>> sorted(record)                                                 # doctest: +SKIP
    ['bytes', 'config', 'deterministic', 'file', 'seconds', 'sha256', 'val_accuracy', 'versions']
    """
    from course_utils import datasets, models
    from course_utils.tf_setup import set_seed

    out = Path(out_path)
    if not out.name.endswith(".weights.h5"):
        raise ValueError(f"out_path: expected a file name ending in .weights.h5, got {out.name!r}")
    if not isinstance(config, PretrainConfig):
        raise ValueError(f"config: expected a PretrainConfig, got {type(config).__name__}")
    if deterministic:
        from course_utils.tf_setup import import_tensorflow

        import_tensorflow().config.experimental.enable_op_determinism()
    set_seed(config.seed)
    x, y, x_val, y_val = source_task_data(config)
    train_ds = datasets.make_dataset(x, y, batch_size=config.batch_size, training=True,
                                     augment=config.augment, seed=config.seed)
    val_ds = datasets.make_dataset(x_val, y_val, batch_size=256, training=False)
    model = models.compile_classifier(build_base_architecture(), learning_rate=config.learning_rate)
    start = time.perf_counter()
    history = model.fit(train_ds, validation_data=val_ds, epochs=config.epochs, verbose=verbose,
                        shuffle=False)  # the dataset reshuffles itself every epoch
    seconds = time.perf_counter() - start
    # A fresh, uncompiled copy holds the weights only (no optimizer state): a smaller file.
    shipped = build_base_architecture()
    shipped.set_weights(model.get_weights())
    with tempfile.TemporaryDirectory() as scratch:  # Keras insists on the .weights.h5 suffix
        staged = Path(scratch) / BASE_FILE
        shipped.save_weights(staged)
        io.write_bytes(out, staged.read_bytes())
    record = {
        "file": str(out),
        "sha256": _sha256(out),
        "bytes": out.stat().st_size,
        "val_accuracy": float(history.history["val_accuracy"][-1]),
        "seconds": round(seconds, 1),
        "config": dataclasses.asdict(config),
        "deterministic": bool(deterministic),
        "versions": _versions(),
    }
    io.write_json(_record_path(out), record)
    return record


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``course pretrain``.

    >>> p = argparse.ArgumentParser(); configure_parser(p)
    >>> p.parse_args([]).out == str(Path("runs") / "pretrain" / BASE_FILE)
    True
    """
    defaults = PretrainConfig()
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        "examples:\n"
        f"  course pretrain                         write runs/pretrain/{BASE_FILE}\n"
        "  course pretrain --epochs 2 --out /tmp/base.weights.h5   a quick try elsewhere\n"
    )
    parser.add_argument("--out", default=str(Path("runs") / "pretrain" / BASE_FILE), metavar="FILE",
                        help="weights file to write (default: %(default)s); the shipped file "
                             "is never overwritten")
    parser.add_argument("--images", type=int, default=defaults.images,
                        help="source images for training (default: %(default)s)")
    parser.add_argument("--val-images", type=int, default=defaults.val_images,
                        help="source images for validation (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=defaults.epochs,
                        help="epochs (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=defaults.seed,
                        help="random seed (default: %(default)s)")


def run_command(args: argparse.Namespace) -> int:
    """``course pretrain``: train the base on the source task, print its SHA-256."""
    try:
        out = Path(args.out)
        if out.resolve() == base_weights_path().resolve():
            raise ValueError(
                f"{out}: this is the shipped file; write elsewhere, then copy it into "
                f"course_utils/assets/ together with its new BASE_SHA256"
            )
        config = PretrainConfig(images=args.images, val_images=args.val_images,
                                epochs=args.epochs, seed=args.seed)
        record = pretrain_base(out, config, verbose=2 if not sys.stdout.isatty() else 1,
                               deterministic=True)
    except (ValueError, OSError) as exc:
        print(f"course pretrain: error: {exc}", file=sys.stderr)
        return 2
    print(f"Base pretrained on {config.images} ALT_STYLE images in {record['seconds']} s: "
          f"validation accuracy {record['val_accuracy']:.1%}.")
    print(f"Weights: {record['file']} ({record['bytes'] / 1e6:.2f} MB)")
    print(f"SHA-256: {record['sha256']}")
    print("To ship it, copy it to course_utils/assets/ and set transfer.BASE_SHA256 to that value.")
    return 0


# --------------------------------------------------------------------------- helpers


def _versions() -> dict[str, str]:
    """The versions that decide the bytes of a pretrained file (same versions, same bytes)."""
    import platform

    from course_utils.tf_setup import import_keras, import_tensorflow

    return {"python": platform.python_version(), "tensorflow": import_tensorflow().__version__,
            "keras": import_keras().__version__, "numpy": np.__version__,
            "machine": platform.machine()}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_gray_shape(input_shape: Sequence[int] | None) -> tuple[int, int, int]:
    if input_shape is None:
        return (BASE_IMAGE_SIZE, BASE_IMAGE_SIZE, 1)
    try:
        shape = tuple(int(v) for v in input_shape)
    except (TypeError, ValueError):
        raise ValueError(f"input_shape: expected (rows, cols, 1), got {input_shape!r}") from None
    if len(shape) != 3 or shape[2] != 1 or min(shape) < 1:
        raise ValueError(f"input_shape: expected grayscale (rows, cols, 1), got {input_shape!r}")
    return shape  # type: ignore[return-value]


def _keras() -> Any:
    from course_utils.tf_setup import import_keras

    return import_keras()
