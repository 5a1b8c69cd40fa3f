"""Lesson 04's two ways to reuse the base: feature extraction and fine-tuning.

* feature extraction: :func:`build_feature_extractor` cuts the base at its
  ``flatten`` layer, :func:`extract_features` turns images into feature vectors and
  :func:`fit_feature_classifier` trains a logistic regression (scikit-learn) on them;
* fine-tuning ("network surgery"): :func:`build_fine_tuning_model` puts a new dense
  head on the frozen cut base; after the head has warmed up,
  :func:`unfreeze_top_block` unfreezes the top convolution block and recompiles
  with a very small learning rate.

:func:`compare_methods` runs the lesson's recipe against training from scratch and
against a new head on the frozen base (to tell the head's effect from the
unfreezing's); :func:`compare_cuts` compares feature extraction at several cuts.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> y = np.repeat(np.arange(3), 10)
>>> clf = fit_feature_classifier(rng.normal(size=(30, 4)) + y[:, None], y, C=1.0)
>>> clf.classes_.tolist()
[0, 1, 2]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from course_utils import labels
from course_utils.datasets import to_model_input
from course_utils.runtime.checks import check_scalar
from course_utils.runtime.tf_setup import import_keras
from course_utils.transfer.base import (
    CUT_LAYER,
    TOP_BLOCK,
    build_base_architecture,
    load_base_network,
)

if TYPE_CHECKING:  # pragma: no cover
    import keras
    from sklearn.linear_model import LogisticRegression

__all__ = [
    "build_feature_extractor",
    "build_fine_tuning_model",
    "CUT_SEED_KEY",
    "compare_cuts",
    "compare_methods",
    "count_trainable_parameters",
    "extract_features",
    "fit_feature_classifier",
    "unfreeze_top_block",
]


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
    keras = import_keras()
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
    batch_size = check_scalar(batch_size, "batch_size", int, min_val=1)
    scaled = to_model_input(images)  # refuses anything but uint8 (n, s, s) or (n, s, s, 1)
    features = extractor.predict(scaled, batch_size=batch_size, verbose=0)
    return np.asarray(features, dtype=np.float32).reshape(len(scaled), -1)


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

    keras = import_keras()
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
    leaves = list(models.iter_layers(extractor))
    keras = import_keras()
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
    """Test accuracy of the lesson's ways to use little labelled data, for one seed.

    Four set-ups, so that each effect can be told apart (repeat the call over seeds
    with :func:`course_utils.training.repeat_over_seeds` and compare them seed by seed
    with :func:`course_utils.training.paired_change`):

    * ``"from scratch"``: :func:`build_base_architecture` trained from a random
      initialisation (drawn from ``seed``) for ``head_epochs + fine_epochs`` epochs at ``warmup_lr``;
    * ``"feature extraction"``: the shipped base cut at ``flatten``, a logistic
      regression (``C``) on the features (no randomness: the same for every seed);
    * ``"new head, base frozen"``: a new head on the frozen base, warmed up for
      ``head_epochs`` at ``warmup_lr``, then ``fine_epochs`` more at ``fine_tune_lr``
      with the base still frozen: the head's effect alone;
    * ``"fine-tuning"``: the same warm-up (the same weights), then the top block
      unfrozen for the same ``fine_epochs`` at the same ``fine_tune_lr`` and the same
      batches: it differs from the previous one only in the unfreezing.

    Images are uint8 ``(n, s, s)``; the networks train without augmentation, on
    batches reshuffled every epoch; ``seed`` sets the initial weights, the batches and
    the dropout masks (:func:`course_utils.training.fit_model`). ``head_epochs`` and
    ``fine_epochs`` are at least 1.

    Examples
    --------
    >>> from course_utils import fingers                                 # doctest: +SKIP
    >>> x, y = fingers.make_fingers(60, image_size=32, seed=42)          # doctest: +SKIP
    >>> xt, yt = fingers.make_fingers(120, image_size=32, seed=44)       # doctest: +SKIP
    >>> sorted(compare_methods(x, y, xt, yt, batch_size=32, head_epochs=20,
    ...                        fine_epochs=20, seed=42))                 # doctest: +SKIP
    ['feature extraction', 'fine-tuning', 'from scratch', 'new head, base frozen']
    """
    from course_utils import datasets, models
    from course_utils.training import fit_model

    head_epochs = check_scalar(head_epochs, "head_epochs", int, min_val=1)
    fine_epochs = check_scalar(fine_epochs, "fine_epochs", int, min_val=1)
    total = head_epochs + fine_epochs
    x_train = np.asarray(x_train)
    shape = (int(x_train.shape[1]), int(x_train.shape[-2]), 1)

    def train_ds() -> Any:  # made after fit_model has seeded: the seed fixes its batches
        return datasets.make_dataset(x_train, y_train, batch_size=batch_size, training=True,
                                     seed=seed)

    test_ds = datasets.make_dataset(x_test, y_test, batch_size=256, training=False)
    results: dict[str, float] = {}

    scratch = fit_model(lambda: build_base_architecture(shape, seed=seed), train_ds,
                        epochs=total, learning_rate=warmup_lr, seed=seed)
    results["from scratch"] = _accuracy(scratch.model, test_ds)

    extractor = build_feature_extractor(load_base_network(shape))
    classifier = fit_feature_classifier(extract_features(extractor, x_train), y_train, C=C)
    results["feature extraction"] = float(classifier.score(extract_features(extractor, x_test), y_test))

    model = fit_model(lambda: build_fine_tuning_model(extractor, learning_rate=warmup_lr,
                                                      seed=seed),
                      train_ds, epochs=head_epochs, seed=seed).model
    warm = model.get_weights()
    # The control: the same second phase (rate, epochs, batches), the base still frozen.
    models.compile_classifier(model, learning_rate=fine_tune_lr)
    fit_model(model, train_ds, epochs=total, initial_epoch=head_epochs, seed=seed)
    results["new head, base frozen"] = _accuracy(model, test_ds)
    model.set_weights(warm)
    unfreeze_top_block(model, extractor, learning_rate=fine_tune_lr)
    fit_model(model, train_ds, epochs=total, initial_epoch=head_epochs, seed=seed)
    results["fine-tuning"] = _accuracy(model, test_ds)
    return results


def compare_cuts(
    base: keras.Model,
    x_pool: np.ndarray,
    y_pool: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    cuts: Sequence[str],
    per_class: int,
    seeds: Sequence[int],
    C: float = 0.01,
) -> dict[str, dict[int, dict[str, list[float]]]]:
    """Feature extraction cut at each layer of ``cuts``, over several draws of labels.

    For every seed, ``per_class`` images of every class are drawn from the pool
    ``(x_pool, y_pool)`` (with :func:`course_utils.runtime.seeds.make_rng`
    ``(seed, CUT_SEED_KEY)``: the same images for every cut); the base cut at each
    layer turns them into features and a logistic regression (``C``) trained on them
    is scored on the test images. Returns ``{cut: {seed: {"test_accuracy": [a]}}}``,
    what :func:`course_utils.training.final_over_seeds` and
    :func:`course_utils.training.paired_change` read.

    Raises ``ValueError`` for an unknown cut or a class with fewer than ``per_class``
    images in the pool.

    Examples
    --------
    >>> runs = compare_cuts(load_base_network(), x_pool, y_pool, x_test, y_test,
    ...                     cuts=["block2_pool", "flatten"], per_class=5,
    ...                     seeds=[0, 1, 2])                              # doctest: +SKIP
    >>> sorted(runs), sorted(runs["flatten"])                          # doctest: +SKIP
    (['block2_pool', 'flatten'], [0, 1, 2])
    """
    from course_utils.runtime.seeds import make_rng

    per_class = check_scalar(per_class, "per_class", int, min_val=1)
    y_pool = labels.check_labels(y_pool, name="y_pool")
    classes = np.unique(y_pool)
    if np.bincount(y_pool)[classes].min() < per_class:
        raise ValueError(f"per_class: a class has only {np.bincount(y_pool)[classes].min()} "
                         f"images in the pool, fewer than {per_class}")
    draws = {}
    for seed in seeds:
        rng = make_rng(seed, CUT_SEED_KEY)
        draws[seed] = np.concatenate([rng.choice(np.flatnonzero(y_pool == c), per_class,
                                                 replace=False) for c in classes])
    runs: dict[str, dict[int, dict[str, list[float]]]] = {}
    for cut in cuts:
        extractor = build_feature_extractor(base, cut_at=cut)
        pool, test = extract_features(extractor, x_pool), extract_features(extractor, x_test)
        runs[cut] = {}
        for seed, keep in draws.items():
            classifier = fit_feature_classifier(pool[keep], y_pool[keep], C=C)
            runs[cut][seed] = {"test_accuracy": [float(classifier.score(test, y_test))]}
    return runs


#: The key of :func:`compare_cuts`' draws of labelled images (the course's seed scheme).
CUT_SEED_KEY = 4001


def _accuracy(model: keras.Model, dataset: Any) -> float:
    """Accuracy of ``model`` on the ``(images, labels)`` batches of ``dataset``, in inference mode.

    A plain forward pass per batch: unlike ``evaluate``, it traces no new function for every
    model (what dominates the cost of a comparison's small runs).
    """
    correct = total = 0
    for images, batch_labels in dataset:
        predicted = np.argmax(np.asarray(model(images, training=False)), axis=-1)
        correct += int(np.sum(predicted == np.asarray(batch_labels)))
        total += len(predicted)
    return correct / total


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
