"""Rank-k accuracy and the confusion matrix, in NumPy.

These are the numbers step 8 of the workflow reports about a trained classifier:

* :func:`rank_k_accuracy`: the share of samples whose true label is among the
  ``k`` highest scores. ``k=1`` is the usual accuracy. It gives the same number
  as Keras' ``keras.metrics.SparseTopKCategoricalAccuracy(k)``, ties included.
* :func:`confusion_matrix`: ``cm[i, j]`` counts the samples of true class ``i``
  predicted as class ``j`` (scikit-learn, with every class in a fixed order).
* :func:`most_confused`: the largest mistakes, read off the confusion matrix.
* :func:`per_class_accuracy`: each class's share of correctly predicted samples.

Nothing here imports TensorFlow: a student can read the formula, and the tests
compare it with the Keras metric.

Examples
--------
>>> import numpy as np
>>> scores = np.array([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3], [0.2, 0.3, 0.5]])
>>> y_true = np.array([2, 0, 1])
>>> rank_k_accuracy(y_true, scores, k=1), rank_k_accuracy(y_true, scores, k=2)
(0.3333333333333333, 1.0)
>>> cm = confusion_matrix(y_true, scores.argmax(axis=1), num_classes=3)
>>> cm.tolist()
[[1, 0, 0], [0, 0, 1], [0, 1, 0]]
>>> most_confused(cm, ["a", "b", "c"], top=2)
[('b', 'c', 1), ('c', 'b', 1)]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from course_utils import labels
from course_utils.runtime.checks import check_scalar

__all__ = [
    "check_confusion_matrix",
    "confusion_matrix",
    "most_confused",
    "per_class_accuracy",
    "rank_k_accuracy",
]


def rank_k_accuracy(y_true: ArrayLike, scores: ArrayLike, k: int = 1) -> float:
    """Share of samples whose true label is among their ``k`` highest scores.

    For sample ``i`` with true label ``t``, count the classes that score
    *strictly* higher than the true class::

        hit_i = #{j : scores[i, j] > scores[i, t]} < k

    and return the mean of ``hit_i``. This is the rule of TensorFlow's
    ``tf.math.in_top_k``, which Keras' ``SparseTopKCategoricalAccuracy`` uses:
    classes tied with the true class at the ``k``-th place all count as in the
    top ``k`` (so with scores ``[0.3, 0.3, 0.3, 0.1]`` every one of the first
    three labels is a rank-1 hit). Like that kernel, a row holding a ``NaN`` or
    an infinite score counts as a miss, and scores are compared as ``float32``,
    the only type the kernel accepts. Without ties, ``k=1`` is the plain
    accuracy of ``scores.argmax(axis=1)``.

    Parameters
    ----------
    y_true
        Integer class labels, shape ``(n,)`` or ``(n, 1)`` as Keras passes them.
    scores
        Class scores (probabilities or logits), shape ``(n, num_classes)``.
    k
        How many of the best-scored classes count, ``1 <= k <= num_classes``.

    Returns
    -------
    float
        Rank-k accuracy in ``[0, 1]``.

    Raises
    ------
    ValueError
        When the shapes disagree, a label is outside ``0 .. num_classes - 1``,
        there are no samples, or ``k`` is not an integer in ``1 .. num_classes``.

    Examples
    --------
    >>> import numpy as np
    >>> scores = np.array([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3], [0.7, 0.2, 0.1]])
    >>> rank_k_accuracy([2, 0, 2], scores, k=1)
    0.3333333333333333
    >>> rank_k_accuracy([2, 0, 2], scores, k=2)
    0.6666666666666666
    >>> rank_k_accuracy([2], [[0.4, 0.2, 0.4]], k=1)   # a tie at the top is a hit
    1.0
    """
    scores_arr = np.asarray(scores)
    if scores_arr.ndim != 2:
        raise ValueError(
            f"scores: expected a 2-D array of shape (n_samples, num_classes), "
            f"got shape {scores_arr.shape}"
        )
    if not (np.issubdtype(scores_arr.dtype, np.floating) or np.issubdtype(scores_arr.dtype, np.integer)):
        raise ValueError(f"scores: expected real numbers, got dtype {scores_arr.dtype}")
    n, num_classes = scores_arr.shape
    if n == 0 or num_classes == 0:
        raise ValueError(
            f"scores: expected at least one sample and one class, got shape {scores_arr.shape}"
        )
    y = _label_vector(y_true, num_classes=num_classes, name="y_true")
    if len(y) != n:
        raise ValueError(
            f"y_true: expected one label per row of scores ({n}), got {len(y)} labels"
        )
    k = check_scalar(k, "k", int, min_val=1)
    if k > num_classes:
        raise ValueError(f"k: expected at most the number of classes ({num_classes}), got {k}")

    s = scores_arr.astype(np.float32)
    true_score = s[np.arange(n), y]
    higher = np.sum(s > true_score[:, None], axis=1)
    hits = (higher < k) & np.all(np.isfinite(s), axis=1)
    return float(np.mean(hits))


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, num_classes: int = labels.NUM_CLASSES) -> np.ndarray:
    """Count the samples of each true class (rows) predicted as each class (columns).

    ``cm[i, j]`` is the number of samples with true label ``i`` and predicted
    label ``j``; the diagonal holds the correct predictions. Every class
    ``0 .. num_classes - 1`` has its row and column, even when absent from both
    arrays (scikit-learn's ``confusion_matrix`` with a fixed ``labels`` order).

    Parameters
    ----------
    y_true, y_pred
        Integer class labels of the same length, shape ``(n,)`` or ``(n, 1)``.
    num_classes
        Number of classes (12 for the fingers labels).

    Returns
    -------
    numpy.ndarray
        ``int64`` array of shape ``(num_classes, num_classes)``.

    Raises
    ------
    ValueError
        When the lengths differ or a label is outside ``0 .. num_classes - 1``.

    Examples
    --------
    >>> confusion_matrix([0, 0, 1, 2], [0, 1, 1, 1], num_classes=3).tolist()
    [[1, 1, 0], [0, 1, 0], [0, 1, 0]]
    """
    from sklearn.metrics import confusion_matrix as sk_confusion_matrix  # import on use: slow

    num_classes = check_scalar(num_classes, "num_classes", int, min_val=1)
    t = _label_vector(y_true, num_classes=num_classes, name="y_true")
    p = _label_vector(y_pred, num_classes=num_classes, name="y_pred")
    if len(t) != len(p):
        raise ValueError(
            f"y_pred: expected one prediction per label of y_true ({len(t)}), got {len(p)}"
        )
    return sk_confusion_matrix(t, p, labels=np.arange(num_classes)).astype(np.int64)


def most_confused(cm: ArrayLike, class_names: Sequence[str], top: int = 3) -> list[tuple[str, str, int]]:
    """The ``top`` largest off-diagonal cells of a confusion matrix.

    Each mistake is ``(true_name, predicted_name, count)``, largest count first;
    equal counts keep the row-major order of the matrix (true class, then
    predicted class). Only cells with at least one sample are listed, so fewer
    than ``top`` come back when the model makes fewer kinds of mistakes.

    Parameters
    ----------
    cm
        Square confusion matrix, true classes in rows (see :func:`confusion_matrix`).
    class_names
        One name per class, e.g. ``labels.CLASS_NAMES``.
    top
        How many mistakes to return at most.

    Raises
    ------
    ValueError
        When ``cm`` is not a square matrix of non-negative counts, or
        ``class_names`` does not have one name per row.

    Examples
    --------
    >>> import numpy as np
    >>> cm = np.array([[5, 2, 0], [0, 4, 3], [1, 0, 6]])
    >>> most_confused(cm, ["0L", "0R", "1L"], top=2)
    [('0R', '1L', 3), ('0L', '0R', 2)]
    """
    matrix = check_confusion_matrix(cm)
    names = labels.check_class_names(class_names, len(matrix))
    top = check_scalar(top, "top", int, min_val=1)
    off_diagonal = matrix.astype(np.int64)
    np.fill_diagonal(off_diagonal, 0)
    flat = off_diagonal.ravel()
    order = np.argsort(-flat, kind="stable")[:top]
    rows, cols = np.unravel_index(order, off_diagonal.shape)
    return [
        (names[i], names[j], int(off_diagonal[i, j]))
        for i, j in zip(rows.tolist(), cols.tolist(), strict=True)
        if off_diagonal[i, j] > 0
    ]


def per_class_accuracy(cm: ArrayLike) -> np.ndarray:
    """Each class's share of correctly predicted samples (its recall).

    ``cm[i, i] / cm[i].sum()`` for every row; ``NaN`` for a class without
    samples, whose accuracy is undefined.

    Examples
    --------
    >>> import numpy as np
    >>> per_class_accuracy(np.array([[3, 1], [0, 2]])).tolist()
    [0.75, 1.0]
    """
    matrix = check_confusion_matrix(cm).astype(np.float64)
    totals = matrix.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(matrix) / totals, np.nan)


def check_confusion_matrix(cm: ArrayLike, *, name: str = "cm") -> np.ndarray:
    """Validate a confusion matrix: square, 2-D, finite, non-negative counts.

    Returns it as a NumPy array; raises ``ValueError`` naming ``name`` otherwise.
    Row-normalised matrices (fractions) are accepted.

    Examples
    --------
    >>> check_confusion_matrix([[1, 0], [2, 3]]).shape
    (2, 2)
    """
    matrix = np.asarray(cm)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
        raise ValueError(
            f"{name}: expected a square 2-D matrix (num_classes, num_classes), "
            f"got shape {matrix.shape}"
        )
    if not (np.issubdtype(matrix.dtype, np.integer) or np.issubdtype(matrix.dtype, np.floating)):
        raise ValueError(f"{name}: expected numbers, got dtype {matrix.dtype}")
    if not np.all(np.isfinite(matrix)) or np.any(matrix < 0):
        raise ValueError(f"{name}: expected finite, non-negative counts, got values from "
                         f"{np.min(matrix):g} to {np.max(matrix):g}")
    return matrix


def _label_vector(values: ArrayLike, *, num_classes: int, name: str) -> np.ndarray:
    """Labels of shape ``(n,)`` or ``(n, 1)`` as an ``int64`` vector, checked in range."""
    arr = np.asarray(values)
    if arr.size and not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"{name}: expected integer class indices, got dtype {arr.dtype}")
    return labels.check_label_vector(arr, num_classes=num_classes, name=name)
