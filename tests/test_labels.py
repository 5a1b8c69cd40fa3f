"""The 12-class label scheme and the public file-name format."""

import numpy as np
import pytest

from course_utils import labels


def test_encode_decode_round_trip_covers_all_twelve_classes():
    seen = [labels.encode(c, h) for c in range(6) for h in "LR"]
    assert seen == list(range(12))
    assert [labels.decode(i) for i in seen] == [(c, h) for c in range(6) for h in "LR"]
    assert labels.CLASS_NAMES[labels.encode(4, "R")] == "4R"


def test_count_view_and_mirror():
    y = np.arange(12)
    assert labels.to_count(y).tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert labels.mirror(labels.mirror(y)).tolist() == y.tolist()
    assert [labels.decode(i)[1] for i in labels.mirror(y)] == ["R", "L"] * 6


@pytest.mark.parametrize("bad", [[-1], [12], [0.5]])
def test_check_labels_rejects_out_of_range_and_fractional(bad):
    with pytest.raises(ValueError, match=r"^labels: expected (integer )?class indices"):
        labels.check_labels(np.array(bad))


def test_parse_filename_reads_the_public_layout():
    assert labels.parse_filename("000e7aa6-100b-4c6b-9ff0-e7a8e53e4465_5L.png") == (5, "L")
    assert labels.parse_filename("some/dir/abc_def_0R.png") == (0, "R")
    assert labels.format_filename("x1", labels.encode(3, "L")) == "x1_3L.png"


@pytest.mark.parametrize(
    "name, message",
    [("abc_7L.png", "expected a count in 0..5, got 7"), ("abc_3X.png", "expected the hand L or R"),
     ("abc3L.png", "expected a file name <id>_"), ("abc_3L.jpg", "expected a file name <id>_")],
)
def test_parse_filename_errors_name_the_file_and_the_expectation(name, message):
    with pytest.raises(ValueError, match=message) as info:
        labels.parse_filename(name)
    assert name in str(info.value)


def test_encode_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"^count: expected a whole number >= 0 and <= 5, got 6"):
        labels.encode(6, "L")
    with pytest.raises(ValueError, match=r"^hand: expected one of 'L', 'R', got 'left'"):
        labels.encode(1, "left")
