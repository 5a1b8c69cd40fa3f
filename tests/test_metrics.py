"""Rank-k accuracy equals Keras' metric (ties included); confusion-matrix helpers."""

import subprocess
import sys

import numpy as np
import pytest

from course_utils import labels, metrics

TOLERANCE = 1e-7


@pytest.fixture(scope="module")
def keras():
    from course_utils.runtime.tf_setup import import_keras

    return import_keras()


def keras_top_k(keras, y_true, scores, k):
    metric = keras.metrics.SparseTopKCategoricalAccuracy(k=k)
    metric.update_state(y_true, scores)
    return float(metric.result())


@pytest.mark.parametrize("k", [1, 2, 3, 5, 11, 12])
def test_rank_k_accuracy_equals_keras_on_random_scores(keras, k):
    rng = np.random.default_rng(k)
    scores = rng.random((300, 12), dtype=np.float32)
    y_true = rng.integers(0, 12, size=300)
    expected = keras_top_k(keras, y_true, scores, k)
    got = metrics.rank_k_accuracy(y_true, scores, k=k)
    assert isinstance(got, float)
    assert abs(got - expected) < TOLERANCE, f"k={k}: Keras {expected}, ours {got}"
    column = metrics.rank_k_accuracy(y_true[:, None], scores, k=k)
    assert abs(column - expected) < TOLERANCE, "labels of shape (n, 1) give another result"


@pytest.mark.parametrize("k", range(1, 13))
def test_rank_k_accuracy_equals_keras_when_scores_tie(keras, k):
    # Four distinct score values over 12 classes: nearly every row has ties at the k-th place.
    rng = np.random.default_rng(100 + k)
    scores = (rng.integers(0, 4, size=(400, 12)) / 4).astype(np.float32)
    y_true = rng.integers(0, 12, size=400)
    expected = keras_top_k(keras, y_true, scores, k)
    got = metrics.rank_k_accuracy(y_true, scores, k=k)
    assert abs(got - expected) < TOLERANCE, f"k={k} with ties: Keras {expected}, ours {got}"


def test_tied_classes_straddling_rank_k_all_count_as_hits(keras):
    scores = np.array([[0.3, 0.3, 0.3, 0.1]] * 4, dtype=np.float32)
    y_true = np.array([0, 1, 2, 3])
    # Classes 0, 1, 2 share the top score: each is a rank-1 hit; class 3 is behind three others.
    assert metrics.rank_k_accuracy(y_true, scores, k=1) == pytest.approx(0.75)
    assert metrics.rank_k_accuracy(y_true, scores, k=3) == pytest.approx(0.75)
    assert metrics.rank_k_accuracy(y_true, scores, k=4) == 1.0
    for k in (1, 3, 4):
        assert metrics.rank_k_accuracy(y_true, scores, k=k) == pytest.approx(
            keras_top_k(keras, y_true, scores, k), abs=TOLERANCE
        )
    # An argsort-based top-k (what tf.math.top_k does) picks one of the tied classes only.
    argsort_top1 = np.argsort(scores, axis=1)[:, -1:]
    assert np.mean(np.any(argsort_top1 == y_true[:, None], axis=1)) == pytest.approx(0.25)


def test_rows_with_nan_or_infinite_scores_are_misses_like_keras(keras):
    scores = np.array(
        [[0.9, 0.1, 0.0], [np.nan, 0.9, 0.1], [np.inf, 0.2, 0.1], [0.2, 0.7, -np.inf]],
        dtype=np.float32,
    )
    y_true = np.array([0, 1, 0, 1])
    for k in (1, 2, 3):
        expected = keras_top_k(keras, y_true, scores, k)
        assert metrics.rank_k_accuracy(y_true, scores, k=k) == pytest.approx(expected, abs=TOLERANCE)
    assert metrics.rank_k_accuracy(y_true, scores, k=3) == pytest.approx(0.25)


def test_rank_1_accuracy_is_argmax_accuracy_without_ties():
    rng = np.random.default_rng(7)
    scores = rng.normal(size=(500, 12))
    y_true = rng.integers(0, 12, size=500)
    expected = np.mean(scores.argmax(axis=1) == y_true)
    assert metrics.rank_k_accuracy(y_true, scores, k=1) == pytest.approx(expected, abs=1e-12)


def test_rank_k_accuracy_grows_with_k_and_reaches_one():
    rng = np.random.default_rng(3)
    scores = rng.random((200, 12))
    y_true = rng.integers(0, 12, size=200)
    values = [metrics.rank_k_accuracy(y_true, scores, k=k) for k in range(1, 13)]
    assert values == sorted(values)
    assert values[0] < values[4] < 1.0
    assert values[-1] == 1.0


@pytest.mark.parametrize(
    ("y_true", "scores", "k", "message"),
    [
        ([0, 1], np.zeros(12), 1, r"scores: expected a 2-D array"),
        ([0, 1], np.zeros((2, 3, 4)), 1, r"scores: expected a 2-D array"),
        ([[0, 1], [1, 0]], np.zeros((2, 3)), 1, r"y_true: expected a 1-D array"),
        ([0, 1, 2], np.zeros((2, 3)), 1, r"y_true: expected one label per row of scores \(2\), got 3 labels"),
        ([0, 3], np.zeros((2, 3)), 1, r"y_true: expected class indices in 0..2, got 3"),
        ([0, -1], np.zeros((2, 3)), 1, r"y_true: expected class indices in 0..2, got -1"),
        ([0.5, 1], np.zeros((2, 3)), 1, r"y_true: expected integer class indices"),
        ([0, 1], np.zeros((2, 3)), 0, r"k: expected a whole number >= 1, got 0"),
        ([0, 1], np.zeros((2, 3)), 4, r"k: expected at most the number of classes \(3\), got 4"),
        ([0, 1], np.zeros((2, 3)), 2.5, r"k: expected a whole number, got 2.5"),
        ([0, 1], np.zeros((2, 3)), True, r"k: expected a whole number, got True"),
        ([], np.zeros((0, 3)), 1, r"scores: expected at least one sample"),
        ([0, 1], np.array([["a", "b"], ["c", "d"]]), 1, r"scores: expected real numbers"),
    ],
)
def test_rank_k_accuracy_rejects_bad_input_naming_the_argument(y_true, scores, k, message):
    with pytest.raises(ValueError, match=message):
        metrics.rank_k_accuracy(y_true, scores, k=k)


def test_rank_k_accuracy_accepts_numpy_integer_k():
    scores = np.array([[0.2, 0.5, 0.3]])
    assert metrics.rank_k_accuracy([2], scores, k=np.int64(2)) == 1.0


def test_confusion_matrix_counts_true_rows_and_predicted_columns():
    y_true = [0, 0, 0, 1, 1, 2, 3, 3]
    y_pred = [0, 0, 1, 1, 2, 2, 3, 0]
    cm = metrics.confusion_matrix(y_true, y_pred, num_classes=5)
    expected = np.zeros((5, 5), dtype=np.int64)
    for t, p in zip(y_true, y_pred, strict=True):
        expected[t, p] += 1
    assert cm.dtype == np.int64 and cm.shape == (5, 5)
    np.testing.assert_array_equal(cm, expected)
    assert cm[0, 0] == 2 and cm[0, 1] == 1 and cm[3, 0] == 1
    assert cm[4].sum() == 0 and cm[:, 4].sum() == 0, "the absent class keeps its row and column"
    assert cm.sum() == len(y_true)


def test_confusion_matrix_defaults_to_the_twelve_fingers_classes():
    cm = metrics.confusion_matrix(np.array([[11], [0]]), np.array([10, 0]))
    assert cm.shape == (labels.NUM_CLASSES, labels.NUM_CLASSES)
    assert cm[11, 10] == 1 and cm[0, 0] == 1 and cm.sum() == 2


def test_confusion_matrix_refuses_labels_that_scikit_learn_would_drop():
    with pytest.raises(ValueError, match=r"y_pred: expected class indices in 0..11, got 12"):
        metrics.confusion_matrix([0, 1], [0, 12])
    with pytest.raises(ValueError, match=r"y_pred: expected one prediction per label of y_true \(2\), got 3"):
        metrics.confusion_matrix([0, 1], [0, 1, 1])
    with pytest.raises(ValueError, match=r"num_classes: expected a whole number >= 1, got 0"):
        metrics.confusion_matrix([0], [0], num_classes=0)


def test_most_confused_lists_largest_mistakes_first_then_matrix_order():
    cm = np.array(
        [
            [9, 1, 4, 0],
            [2, 9, 0, 4],
            [0, 7, 9, 0],
            [0, 0, 0, 50],
        ]
    )
    names = ["a", "b", "c", "d"]
    assert metrics.most_confused(cm, names, top=3) == [("c", "b", 7), ("a", "c", 4), ("b", "d", 4)]
    assert metrics.most_confused(cm, names, top=1) == [("c", "b", 7)]
    everything = metrics.most_confused(cm, names, top=100)
    assert [count for _, _, count in everything] == [7, 4, 4, 2, 1], "zero cells are not mistakes"
    assert all(t != p for t, p, _ in everything), "the diagonal is never a mistake"


def test_most_confused_returns_builtin_types_for_json():
    cm = metrics.confusion_matrix([0, 1, 1], [1, 0, 0], num_classes=12)
    result = metrics.most_confused(cm, labels.CLASS_NAMES)
    assert result == [("0R", "0L", 2), ("0L", "0R", 1)]
    assert all(type(count) is int for _, _, count in result)


def test_most_confused_of_a_perfect_model_is_empty():
    assert metrics.most_confused(np.diag([3, 4, 5]), ["x", "y", "z"]) == []


@pytest.mark.parametrize(
    ("cm", "names", "top", "message"),
    [
        (np.zeros((2, 3)), ["a", "b"], 3, r"cm: expected a square 2-D matrix"),
        (np.array([[1, -1], [0, 1]]), ["a", "b"], 3, r"cm: expected finite, non-negative counts"),
        (np.eye(3), ["a", "b"], 3, r"class_names: expected one name per class \(3\), got 2 names"),
        (np.eye(2), "ab", 3, r"class_names: expected a sequence of names"),
        (np.eye(2), ["a", "b"], 0, r"top: expected a whole number >= 1, got 0"),
    ],
)
def test_most_confused_rejects_bad_input(cm, names, top, message):
    with pytest.raises(ValueError, match=message):
        metrics.most_confused(cm, names, top=top)


def test_per_class_accuracy_is_the_diagonal_over_row_totals():
    cm = np.array([[3, 1, 0], [0, 0, 0], [1, 1, 2]])
    result = metrics.per_class_accuracy(cm)
    assert result[0] == pytest.approx(0.75) and result[2] == pytest.approx(0.5)
    assert np.isnan(result[1]), "a class without samples has no accuracy"


def test_importing_metrics_does_not_import_tensorflow():
    probe = "import sys, course_utils.metrics; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
