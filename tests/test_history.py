"""The one history type and its one reader: every form a run's curves come in reads the same."""

from __future__ import annotations

import json
import math

import pytest

from course_utils.history import History, read_history
from course_utils.runtime import io

CURVES = {"loss": [2.0, 1.0, 1.5], "val_accuracy": [0.2, 0.6, 0.6]}


class FakeKerasHistory:  # what model.fit returns: .history, .epoch (from 0) and .model
    def __init__(self, history, epoch, model=None):
        self.history, self.epoch, self.model = history, epoch, model


def test_a_dict_a_keras_history_a_saved_file_and_a_history_all_read_the_same(tmp_path):
    expected = {"epoch": [1, 2, 3], **CURVES}
    path = io.write_json(tmp_path / "history.json", expected)
    forms = {
        "dict": CURVES,
        "keras History": FakeKerasHistory(CURVES, [0, 1, 2]),
        "path": path,
        "path as text": str(path),
        "History": History(CURVES),
    }
    for form, source in forms.items():
        history = read_history(source)
        assert isinstance(history, History), form
        assert history == expected, form
        assert list(history) == ["epoch", "loss", "val_accuracy"], f"{form}: epoch comes first"


def test_epochs_count_from_one_and_a_resumed_run_keeps_its_own():
    resumed = read_history(FakeKerasHistory({"loss": [0.5, 0.4]}, [3, 4], model="the model"))
    assert resumed.epochs == [4, 5]
    assert resumed.model == "the model", "the trained model travels with the history"
    saved = read_history({"epoch": [3.0, 4.0], "loss": [0.5, 0.4]})
    assert saved.epochs == [3, 4] and all(isinstance(e, int) for e in saved.epochs)
    assert read_history({"loss": [0.5, 0.4]}).model is None


def test_a_history_round_trips_through_json_with_its_nans(tmp_path):
    history = History({"loss": [1.0, math.nan], "val_loss": [1.2, 1.1]})
    path = io.write_json(tmp_path / "h.json", history)
    back = read_history(path)
    assert back.epochs == [1, 2] and math.isnan(back["loss"][1])
    assert json.loads(json.dumps(back, allow_nan=True))["val_loss"] == [1.2, 1.1]


def test_final_best_and_best_epoch_read_the_curves():
    history = History(CURVES)
    assert history.metrics == ["loss", "val_accuracy"]
    assert history.final("loss") == 1.5
    assert history.best("loss") == 1.0, "auto: a loss is minimised"
    assert history.best("val_accuracy") == 0.6, "auto: an accuracy is maximised"
    assert history.best("loss", mode="max") == 2.0
    assert history.best_epoch("val_accuracy") == 2, "ties go to the earliest epoch"
    assert History({"val_loss": [math.nan, 0.9, 0.8]}).best_epoch("val_loss") == 3


def test_reading_a_metric_that_is_not_there_names_what_is():
    history = History(CURVES)
    with pytest.raises(ValueError, match=r"metric: expected one of 'loss', 'val_accuracy', "
                                         r"got 'val_loss'"):
        history.final("val_loss")
    with pytest.raises(ValueError, match=r"mode: expected one of 'auto', 'min', 'max'"):
        history.best("loss", mode="lowest")
    with pytest.raises(ValueError, match="'loss' has no finite value"):
        History({"loss": [math.nan]}).best("loss")


def test_what_is_not_a_history_is_refused_with_a_message_that_says_why(tmp_path):
    with pytest.raises(TypeError, match=r"run 'mine': expected a keras History, a dict "
                                        r"\{metric: values\} or the path of a history.json, "
                                        r"got list"):
        read_history([0.9, 0.5], name="mine")
    missing = tmp_path / "nope" / "history.json"
    with pytest.raises(FileNotFoundError, match=r"nope/history.json: history file of run 'run'"):
        read_history(missing)
    uneven = io.write_json(tmp_path / "uneven.json", {"loss": [1.0, 0.5], "val_loss": [1.0]})
    with pytest.raises(ValueError, match=r"uneven.json \(run 'u'\): expected one value per epoch "
                                         r"in every list, got lengths"):
        read_history(uneven, name="u")
    with pytest.raises(ValueError, match=r"'loss': expected a list of numbers, one per epoch, "
                                         r"got \['low', 'high'\]"):
        read_history({"loss": ["low", "high"]})
    with pytest.raises(ValueError, match=r"'loss': expected a list of numbers.*shape \(2, 2\)"):
        read_history({"loss": [[1, 2], [3, 4]]})
    with pytest.raises(ValueError, match=r"'epoch': expected whole epoch numbers"):
        read_history({"epoch": [1.5, 2.5], "loss": [1.0, 0.5]})
    not_a_dict = io.write_json(tmp_path / "list.json", [1, 2])
    with pytest.raises(ValueError, match=r"list.json \(run 'run'\): expected a history"):
        read_history(not_a_dict)
