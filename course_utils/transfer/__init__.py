"""Lesson 04, transfer learning: a shipped base network, feature extraction, fine-tuning.

No ImageNet weights can be downloaded in CI or on a grader, so the course ships its
own pretrained base: the reference CNN (:func:`course_utils.models.build_fingers_cnn`,
32x32 inputs) trained on a *source* task that differs from the lesson's target.

* **Source task**: *counting* the raised fingers (:data:`SOURCE_CLASSES` classes, 0 to
  5; which hand it is never asked) of hands drawn in :data:`course_utils.fingers.ALT_STYLE`
  (dark, thick-fingered hands on a light, smooth background, turned up to 40 degrees),
  with plenty of data (12 000 images). ``course pretrain`` trains it, seeded, in a few
  minutes on two CPU cores; its weights (:data:`BASE_FILE`, 0.67 MB) live in
  ``course_utils/assets/`` and are checked against :data:`BASE_SHA256` on load. The
  record beside them (:func:`base_record`) says how they were made.
* **Target task**: another task on other-looking images: count *and* hand, the 12
  classes, in the course's usual look (:data:`course_utils.fingers.DEFAULT_STYLE`),
  with little labelled data, the profile's ``few_shot_per_class`` images per class.

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

The package's modules, one per part of the lesson (everything is re-exported here):

* :mod:`~course_utils.transfer.base`: the shipped base, its weights and record;
* :mod:`~course_utils.transfer.reuse`: feature extraction, fine-tuning, the comparison;
* :mod:`~course_utils.transfer.decision`: which method, the table and its figure;
* :mod:`~course_utils.transfer.figures`: accuracy by method and by labelled data;
* :mod:`~course_utils.transfer.imagenet`: the same code path on MobileNetV2 (ImageNet);

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

from course_utils.transfer.base import (
    BASE_FILE,
    BASE_IMAGE_SIZE,
    BASE_SHA256,
    CUT_LAYER,
    SOURCE_CLASSES,
    TOP_BLOCK,
    base_record,
    base_weights_path,
    build_base_architecture,
    check_sha256,
    load_base_network,
)
from course_utils.transfer.decision import (
    DECISION_TABLE,
    METHODS,
    choose_method,
    plot_decision_table,
)
from course_utils.transfer.figures import plot_accuracy_by_data_size, plot_accuracy_comparison
from course_utils.transfer.imagenet import PretrainedBase, load_pretrained_base
from course_utils.transfer.reuse import (
    CUT_SEED_KEY,
    build_feature_extractor,
    build_fine_tuning_model,
    compare_cuts,
    compare_methods,
    count_trainable_parameters,
    extract_features,
    fit_feature_classifier,
    unfreeze_top_block,
)

__all__ = [
    "BASE_FILE",
    "BASE_IMAGE_SIZE",
    "BASE_SHA256",
    "CUT_LAYER",
    "CUT_SEED_KEY",
    "DECISION_TABLE",
    "METHODS",
    "PretrainedBase",
    "SOURCE_CLASSES",
    "TOP_BLOCK",
    "base_record",
    "base_weights_path",
    "build_base_architecture",
    "build_feature_extractor",
    "build_fine_tuning_model",
    "check_sha256",
    "compare_cuts",
    "compare_methods",
    "choose_method",
    "count_trainable_parameters",
    "extract_features",
    "fit_feature_classifier",
    "load_base_network",
    "load_pretrained_base",
    "plot_accuracy_by_data_size",
    "plot_accuracy_comparison",
    "plot_decision_table",
    "unfreeze_top_block",
]
