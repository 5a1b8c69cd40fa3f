"""Lesson 02, underfitting and overfitting: reading learning curves, and the remedies.

Two things a student takes away from lesson 02 and uses on every later run:

* :func:`diagnose_history` reads the learning curves of one run (a Keras
  ``History``, a :class:`~course_utils.history.History` or a dict) like a clinician
  and names what it sees, one of :data:`DIAGNOSES`, with a one-line explanation
  built from the numbers:

  - ``learning rate too high``: the training loss blows up, turns NaN or jumps;
  - ``underfit``: the training loss itself stays high;
  - ``unrepresentative validation``: the validation loss stays far below the
    training loss (validation data much easier than the training data);
  - ``noisy small batches``: the validation loss jumps from epoch to epoch;
  - ``overfit``: validation turns worse while training improves;
  - ``ideal``: both fall and end close together.

* The remedies against overfitting as :class:`Variant` s of one baseline CNN
  (:data:`VARIANTS`: a simpler model, label-preserving augmentation, L1 and L2
  penalties, batch normalisation, dropout, and a combination), trained with
  :func:`train_over_seeds` on the same small subset (:func:`make_small_subset`)
  once per seed, and judged against the baseline by :func:`compare_with_baseline`:
  a change counts only when it is larger than its spread over the seeds.
  :func:`check_remedy` says whether a remedy of your choosing helps one given
  overfitting run (:data:`REMEDY_PROBLEM`), by the rule :data:`REMEDY_RULE`.

:func:`find_best_epoch` picks the epoch with the best validation loss, the one to
load from the checkpoints saved during a run; :func:`replay_early_stopping` says
which epoch ``keras.callbacks.EarlyStopping(restore_best_weights=True)`` keeps.
:class:`ExtraValidation` evaluates a run on a second validation set, so one
training shows how much the verdict depends on the validation data
(:func:`make_easy_validation` makes an unrepresentative one).

The package's modules, one per part of the lesson (everything is re-exported here):

==============  ==============================================================
``diagnosis``   :func:`diagnose_history`, :func:`find_best_epoch`,
                :func:`replay_early_stopping`, :func:`apply_early_stopping`,
                :func:`make_easy_validation`
``quiz``        :data:`MYSTERY_CURVES`, recorded by :func:`record_mystery_curves`
``remedies``    the variants, the small subset, :func:`train_variant`,
                :func:`train_over_seeds`
``checks``      the graded remedy: :func:`check_remedy` on :data:`REMEDY_PROBLEM`
``comparison``  :func:`compare_with_baseline` (seed by seed, judged by
                :func:`course_utils.training.judge_change`), the table
``figures``     :func:`plot_diagnoses`, :func:`plot_remedies`,
                :func:`plot_remedy_curves`
``callbacks``   :class:`ExtraValidation` (a Keras callback)
==============  ==============================================================

``import course_utils.overfitting`` does not import TensorFlow; ``callbacks`` holds a
Keras subclass, so it imports Keras, and is loaded on first use of
:class:`ExtraValidation`.

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

from typing import TYPE_CHECKING

from course_utils.overfitting.checks import (
    ACCURACY_DROP,
    LOSS_CUT,
    REMEDY_PROBLEM,
    REMEDY_RULE,
    RemedyCheck,
    RemedyProblem,
    check_remedy,
    make_remedy_data,
    train_given_run,
)
from course_utils.overfitting.comparison import (
    RemedyEffect,
    compare_with_baseline,
    describe_verdicts,
    make_remedy_table,
)
from course_utils.overfitting.diagnosis import (
    DIAGNOSES,
    EASY_GESTURES,
    STUDIO_STYLE,
    Diagnosis,
    EarlyStop,
    apply_early_stopping,
    diagnose_history,
    find_best_epoch,
    make_easy_validation,
    replay_early_stopping,
)
from course_utils.overfitting.figures import plot_diagnoses, plot_remedies, plot_remedy_curves
from course_utils.overfitting.quiz import MYSTERY_CURVES, QUIZ_SEED, record_mystery_curves
from course_utils.overfitting.remedies import (
    BN_MOMENTUM,
    EVAL_BATCH_SIZE,
    MIRRORS,
    VARIANTS,
    RunResult,
    Variant,
    build_variant_model,
    make_small_subset,
    train_over_seeds,
    train_variant,
)
from course_utils.runtime.tf_setup import load_on_first_use

if TYPE_CHECKING:  # pragma: no cover
    from course_utils.overfitting.callbacks import ExtraValidation

__all__ = [
    "ACCURACY_DROP",
    "BN_MOMENTUM",
    "DIAGNOSES",
    "EASY_GESTURES",
    "EVAL_BATCH_SIZE",
    "LOSS_CUT",
    "MIRRORS",
    "MYSTERY_CURVES",
    "QUIZ_SEED",
    "REMEDY_PROBLEM",
    "REMEDY_RULE",
    "STUDIO_STYLE",
    "VARIANTS",
    "Diagnosis",
    "EarlyStop",
    "ExtraValidation",
    "RemedyCheck",
    "RemedyEffect",
    "RemedyProblem",
    "RunResult",
    "Variant",
    "apply_early_stopping",
    "build_variant_model",
    "check_remedy",
    "compare_with_baseline",
    "describe_verdicts",
    "diagnose_history",
    "find_best_epoch",
    "make_easy_validation",
    "make_remedy_data",
    "make_remedy_table",
    "make_small_subset",
    "plot_diagnoses",
    "plot_remedies",
    "plot_remedy_curves",
    "record_mystery_curves",
    "replay_early_stopping",
    "train_given_run",
    "train_over_seeds",
    "train_variant",
]

# The Keras classes, imported from the submodule that defines each on first use.
__getattr__, __dir__ = load_on_first_use(__name__, {"ExtraValidation": "callbacks"})
