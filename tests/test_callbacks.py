"""TrainingMonitor and EpochCheckpoint: complete files every epoch, resumable runs, real SIGKILLs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from course_utils import callbacks, models
from course_utils.callbacks import EpochCheckpoint, TrainingMonitor
from course_utils.runtime.tf_setup import import_keras, set_seed

HELPER = Path(__file__).with_name("_callbacks_train.py")
STEPS_PER_EPOCH = 3  # 48 images in batches of 16


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.random((48, 16, 16, 1), dtype=np.float32)
    return x, np.arange(len(x)) % 12


def _tiny_model(*, dropout: float = 0.25):
    set_seed(0)
    model = models.build_fingers_cnn(
        (16, 16, 1), 12, depth=1, width=4, dense_units=8, dropout=dropout, seed=0
    )
    return models.compile_classifier(model)


def _fit(model, data, *, epochs, initial_epoch=0, callbacks_=(), shuffle=True):
    x, y = data
    return model.fit(
        x, y, batch_size=16, validation_data=(x[:16], y[:16]), epochs=epochs,
        initial_epoch=initial_epoch, callbacks=list(callbacks_), verbose=0, shuffle=shuffle,
    )


def _temporaries(*folders: Path) -> list[str]:
    return [p.name for folder in folders for p in folder.iterdir()
            if p.name.startswith(".") or ".tmp" in p.name]


# --- TrainingMonitor ---------------------------------------------------------------------------


def test_monitor_writes_valid_json_and_a_png_after_every_epoch(tmp_path, data):
    keras = import_keras()
    seen = []

    class ReadBack(keras.callbacks.Callback):  # runs right after the monitor, every epoch
        def on_epoch_end(self, epoch, logs=None):
            history = json.loads((tmp_path / "history.json").read_text())
            with Image.open(tmp_path / "curves.png") as png:
                png.verify()
                fmt = png.format
            seen.append((history["epoch"], fmt))

    fit = _fit(_tiny_model(), data, epochs=3, callbacks_=[TrainingMonitor(tmp_path), ReadBack()])

    assert seen == [([1], "PNG"), ([1, 2], "PNG"), ([1, 2, 3], "PNG")]
    history = json.loads((tmp_path / "history.json").read_text())
    for metric, values in fit.history.items():
        np.testing.assert_allclose(history[metric], values, rtol=1e-6, err_msg=metric)
    assert {"loss", "accuracy", "rank5_accuracy", "val_loss", "val_accuracy"} <= set(history)
    assert history["learning_rate"] == pytest.approx([1e-3] * 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.png", "history.json"]


def test_monitor_with_plot_false_writes_only_the_history(tmp_path, data):
    _fit(_tiny_model(), data, epochs=1, callbacks_=[TrainingMonitor(tmp_path, plot=False)])
    assert [p.name for p in tmp_path.iterdir()] == ["history.json"]


def test_monitor_continues_the_history_of_a_resumed_run(tmp_path, data):
    model = _tiny_model()
    first = _fit(model, data, epochs=4, callbacks_=[TrainingMonitor(tmp_path)])
    # resume after epoch 2 (the last checkpoint, say): epochs 3-4 of the first run are redone
    second = _fit(model, data, epochs=5, initial_epoch=2, callbacks_=[TrainingMonitor(tmp_path)])

    history = json.loads((tmp_path / "history.json").read_text())
    assert history["epoch"] == [1, 2, 3, 4, 5]
    expected = first.history["loss"][:2] + second.history["loss"]
    np.testing.assert_allclose(history["loss"], expected, rtol=1e-6)
    assert all(len(values) == 5 for values in history.values())


def test_monitor_starting_at_epoch_zero_replaces_an_older_history(tmp_path, data):
    _fit(_tiny_model(), data, epochs=3, callbacks_=[TrainingMonitor(tmp_path)])
    _fit(_tiny_model(), data, epochs=1, callbacks_=[TrainingMonitor(tmp_path)])
    assert json.loads((tmp_path / "history.json").read_text())["epoch"] == [1]


def test_monitor_resuming_without_a_history_warns_and_records_the_new_epochs(tmp_path, data):
    with pytest.warns(RuntimeWarning, match="history.json not found"):
        _fit(_tiny_model(), data, epochs=3, initial_epoch=2, callbacks_=[TrainingMonitor(tmp_path)])
    assert json.loads((tmp_path / "history.json").read_text())["epoch"] == [3]


def test_monitor_removes_temporaries_left_by_a_killed_run(tmp_path, data):
    stale = [tmp_path / ".history.abc123.tmp.json", tmp_path / ".curves.x9.tmp.png"]
    for path in stale:
        path.write_bytes(b"half")
    _fit(_tiny_model(), data, epochs=1, callbacks_=[TrainingMonitor(tmp_path)])
    assert _temporaries(tmp_path) == []


def test_monitor_refuses_a_run_dir_that_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match="run_dir: .*f exists and is not a folder"):
        TrainingMonitor(tmp_path / "f")


# --- EpochCheckpoint ---------------------------------------------------------------------------


def test_checkpoint_saves_every_n_epochs_and_keeps_the_last_k(tmp_path, data):
    saved = []
    keras = import_keras()

    class Watch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            saved.append(sorted(p.name for p in tmp_path.iterdir()))

    _fit(_tiny_model(), data, epochs=7, callbacks_=[EpochCheckpoint(tmp_path, every=2, keep=2), Watch()])

    assert saved[1] == ["epoch_0002.keras"]
    assert saved[3] == ["epoch_0002.keras", "epoch_0004.keras"]
    assert saved[-1] == ["epoch_0004.keras", "epoch_0006.keras"]
    assert callbacks.find_latest_checkpoint(tmp_path) == (tmp_path / "epoch_0006.keras", 6)


def test_checkpoint_restores_weights_optimizer_state_and_epoch(tmp_path, data):
    model = _tiny_model()
    _fit(model, data, epochs=3, callbacks_=[EpochCheckpoint(tmp_path)])

    path, epoch = callbacks.find_latest_checkpoint(tmp_path)
    restored = callbacks.load_checkpoint(path)

    assert epoch == 3
    assert int(restored.optimizer.iterations) == 3 * STEPS_PER_EPOCH
    for ours, theirs in zip(model.weights, restored.weights, strict=True):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy(), err_msg=ours.path)
    slots = [v for v in model.optimizer.variables if "iteration" not in v.path]
    restored_slots = [v for v in restored.optimizer.variables if "iteration" not in v.path]
    assert len(slots) == len(restored_slots) > 2  # Adam: two moments per trained variable
    for ours, theirs in zip(slots, restored_slots, strict=True):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy(), err_msg=ours.path)


def test_resumed_training_ends_where_an_uninterrupted_run_ends(tmp_path, data):
    """Interrupting after epoch 2 and resuming from its checkpoint changes nothing."""
    straight = _tiny_model(dropout=0.0)
    _fit(straight, data, epochs=4, shuffle=False)

    interrupted = _tiny_model(dropout=0.0)
    _fit(interrupted, data, epochs=2, shuffle=False, callbacks_=[EpochCheckpoint(tmp_path)])
    path, epoch = callbacks.find_latest_checkpoint(tmp_path)
    resumed = callbacks.load_checkpoint(path)
    _fit(resumed, data, epochs=4, initial_epoch=epoch, shuffle=False)

    assert int(resumed.optimizer.iterations) == int(straight.optimizer.iterations)
    for ours, theirs in zip(straight.weights, resumed.weights, strict=True):
        np.testing.assert_allclose(theirs.numpy(), ours.numpy(), rtol=1e-4, atol=1e-6,
                                   err_msg=ours.path)


def test_checkpoint_resumed_from_an_earlier_epoch_drops_the_newer_checkpoints(tmp_path, data):
    model = _tiny_model()
    _fit(model, data, epochs=4, callbacks_=[EpochCheckpoint(tmp_path, keep=None)])
    restored = callbacks.load_checkpoint(tmp_path / "epoch_0002.keras")
    _fit(restored, data, epochs=3, initial_epoch=2, callbacks_=[EpochCheckpoint(tmp_path, keep=None)])
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "epoch_0001.keras", "epoch_0002.keras", "epoch_0003.keras"
    ]


def test_find_latest_checkpoint_ignores_temporaries_and_other_files(tmp_path):
    assert callbacks.find_latest_checkpoint(tmp_path / "missing") is None
    assert callbacks.find_latest_checkpoint(tmp_path) is None
    for name in ("epoch_0009.keras", "epoch_0011.keras", ".epoch_0012.ab.tmp.keras",
                 "epoch_0013.keras.bak", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert callbacks.find_latest_checkpoint(tmp_path) == (tmp_path / "epoch_0011.keras", 11)


def test_load_checkpoint_names_a_missing_or_truncated_file(tmp_path, data):
    with pytest.raises(FileNotFoundError, match="epoch_0001.keras does not exist"):
        callbacks.load_checkpoint(tmp_path / "epoch_0001.keras")
    _fit(_tiny_model(), data, epochs=1, callbacks_=[EpochCheckpoint(tmp_path)])
    complete = (tmp_path / "epoch_0001.keras").read_bytes()
    half = tmp_path / "half.keras"
    half.write_bytes(complete[: len(complete) // 2])  # what a non-atomic writer could leave
    with pytest.raises(ValueError, match="half.keras: not a readable Keras model file"):
        callbacks.load_checkpoint(half)
    with pytest.raises(ValueError, match="expected a .keras file"):
        callbacks.load_checkpoint(tmp_path)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"every": 0}, "every: expected an integer >= 1"), ({"keep": 0}, "keep: expected"),
     ({"every": 1.5}, "every:"), ({"keep": True}, "keep:")],
)
def test_checkpoint_rejects_bad_arguments(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        EpochCheckpoint(tmp_path, **kwargs)


def test_the_callbacks_are_ordinary_keras_callbacks_and_models_still_imports_without_keras():
    keras = import_keras()
    assert issubclass(TrainingMonitor, keras.callbacks.Callback)
    assert issubclass(EpochCheckpoint, keras.callbacks.Callback)
    assert TrainingMonitor.__module__ == EpochCheckpoint.__module__ == "course_utils.callbacks"
    probe = ("import sys, course_utils.models;"
             "print([m for m in ('tensorflow', 'keras', 'matplotlib') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- Real faults: SIGKILL a training process, resume in a new one ------------------------------


def _start(run_dir: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen(
        [sys.executable, str(HELPER), str(run_dir), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )


def _check_visible_checkpoints_are_complete(folder: Path) -> int:
    """Every ``epoch_*.keras`` a reader can see is a whole zip archive; returns how many."""
    checked = 0
    for path in folder.glob("epoch_*.keras"):
        try:
            with zipfile.ZipFile(path) as archive:
                assert archive.testzip() is None, f"{path.name} is corrupt"
                assert "model.weights.h5" in archive.namelist(), f"{path.name} lacks weights"
        except FileNotFoundError:  # pruned between listing and opening
            continue
        checked += 1
    return checked


def _finish(run_dir: Path, epochs: int) -> dict:
    resumed = _start(run_dir, "--epochs", str(epochs), "--resume")
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def _assert_complete_run(run_dir: Path, epochs: int, summary: dict) -> None:
    history = json.loads((run_dir / "history.json").read_text())
    assert history["epoch"] == list(range(1, epochs + 1)), "epochs missing or repeated"
    assert all(len(values) == epochs for values in history.values())
    checkpoints = run_dir / "checkpoints"
    assert _temporaries(run_dir, checkpoints) == [], "temporary files left behind"
    assert sorted(p.name for p in checkpoints.iterdir()) == [
        f"epoch_{epochs - 1:04d}.keras", f"epoch_{epochs:04d}.keras"
    ]
    last = callbacks.load_checkpoint(checkpoints / f"epoch_{epochs:04d}.keras")
    assert int(last.optimizer.iterations) == summary["iterations"] == epochs * 4


@pytest.mark.slow
def test_a_run_killed_mid_training_resumes_with_every_epoch_exactly_once(tmp_path):
    epochs, run_dir = 6, tmp_path / "run"
    checkpoints = run_dir / "checkpoints"
    first = _start(run_dir, "--epochs", str(epochs), "--sleep", "0.4")
    deadline, checked = time.monotonic() + 90, 0
    # Once a checkpoint exists, kill as soon as the next save is under way (or done).
    while True:
        assert first.poll() is None, f"run ended before it was killed: {first.communicate()}"
        assert time.monotonic() < deadline, "no checkpoint within 90 s"
        if checkpoints.exists():
            checked += _check_visible_checkpoints_are_complete(checkpoints)
            saving = any(checkpoints.glob(".epoch_*.tmp.keras"))
            if (checkpoints / "epoch_0001.keras").exists() and (
                saving or (checkpoints / "epoch_0002.keras").exists()
            ):
                break
        time.sleep(0.005)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    assert first.returncode == -signal.SIGKILL
    _check_visible_checkpoints_are_complete(checkpoints)
    killed_history = json.loads((run_dir / "history.json").read_text())
    latest = callbacks.find_latest_checkpoint(checkpoints)
    assert latest is not None and 1 <= latest[1] < epochs
    assert checked > 0, "the reader never saw a checkpoint while the run was alive"

    summary = _finish(run_dir, epochs)

    assert summary["initial_epoch"] == latest[1]
    _assert_complete_run(run_dir, epochs, summary)
    history = json.loads((run_dir / "history.json").read_text())
    kept = latest[1]
    assert history["loss"][:kept] == killed_history["loss"][:kept], "history before the resume changed"


@pytest.mark.slow
def test_a_run_killed_inside_a_checkpoint_save_leaves_no_visible_partial_file(tmp_path):
    epochs, run_dir = 5, tmp_path / "run"
    checkpoints = run_dir / "checkpoints"
    first = _start(run_dir, "--epochs", str(epochs), "--die-in-save", "3")
    first.communicate(timeout=120)

    assert first.returncode == -signal.SIGKILL
    assert sorted(p.name for p in checkpoints.glob("epoch_*.keras")) == [
        "epoch_0001.keras", "epoch_0002.keras"
    ], "the interrupted epoch-3 save must not be visible"
    assert len(list(checkpoints.glob(".epoch_0003.*.tmp.keras"))) == 1  # the fault really hit
    assert callbacks.find_latest_checkpoint(checkpoints) == (checkpoints / "epoch_0002.keras", 2)
    assert _check_visible_checkpoints_are_complete(checkpoints) == 2
    assert json.loads((run_dir / "history.json").read_text())["epoch"] == [1, 2, 3]

    summary = _finish(run_dir, epochs)

    assert summary["initial_epoch"] == 2
    _assert_complete_run(run_dir, epochs, summary)


# --- random state and training time ------------------------------------------------------------


def _seed_states(model) -> list[list[int]]:
    weights = {id(v) for v in model.weights}
    return [v.numpy().tolist() for v in model.variables if id(v) not in weights]


def test_checkpoint_keeps_the_dropout_random_state_that_model_save_drops(tmp_path, data):
    # model.save writes weights and optimizer, not the dropout layer's seed generator:
    # without it a resumed run would draw the first epoch's dropout masks again.
    model = _tiny_model()
    _fit(model, data, epochs=2, callbacks_=[EpochCheckpoint(tmp_path, keep=None)], shuffle=False)
    trained = _seed_states(model)
    assert trained and trained != _seed_states(_tiny_model()), "training moves the seed state"
    path, epoch = callbacks.find_latest_checkpoint(tmp_path)
    assert callbacks.read_checkpoint_state(path)["epoch"] == epoch == 2
    assert _seed_states(callbacks.load_checkpoint(path)) == trained
    assert _seed_states(import_keras().saving.load_model(path)) != trained


def test_a_checkpoint_without_random_state_loads_with_a_warning_that_says_why(tmp_path, data):
    model = _tiny_model()
    _fit(model, data, epochs=1)
    model.save(tmp_path / "epoch_0001.keras")  # plain Keras, no random state
    with pytest.warns(RuntimeWarning, match="other dropout masks than an uninterrupted run"):
        callbacks.load_checkpoint(tmp_path / "epoch_0001.keras")


def test_monitor_records_each_epochs_seconds_for_the_total_training_time(tmp_path, data):
    _fit(_tiny_model(), data, epochs=2, callbacks_=[TrainingMonitor(tmp_path, plot=False)])
    seconds = json.loads((tmp_path / "history.json").read_text())["epoch_seconds"]
    assert len(seconds) == 2 and all(s > 0 for s in seconds)
