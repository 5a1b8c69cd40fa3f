"""The reference run end to end through the `course` CLI, including a real SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from course_utils import cli

EPOCHS = 5


def _course(*args: str, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("COURSE_PROFILE", None)
    return subprocess.Popen(
        [sys.executable, "-m", "course_utils.cli", *args], cwd=cwd, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


@pytest.mark.slow
def test_a_run_killed_mid_training_resumes_and_ends_with_every_epoch_once(tmp_path):
    run_dir = tmp_path / "run"
    args = ["train", "--profile", "smoke", "--epochs", str(EPOCHS), "--run-dir", str(run_dir)]
    first = _course(*args, cwd=tmp_path)
    checkpoints = run_dir / "checkpoints"
    deadline = time.monotonic() + 120
    while not list(checkpoints.glob("epoch_*.keras")):
        assert first.poll() is None, f"run ended before its first checkpoint: {first.communicate()}"
        assert time.monotonic() < deadline, "no checkpoint appeared within 120 s"
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    assert first.returncode == -signal.SIGKILL
    history = json.loads((run_dir / "history.json").read_text())
    killed_after = len(history["loss"])
    assert 1 <= killed_after < EPOCHS, "the kill should land before the run finished"
    assert not (run_dir / "metrics.json").exists()

    second = _course(*args, "--resume", cwd=tmp_path)
    out, err = second.communicate(timeout=300)
    assert second.returncode == 0, err
    assert "resumed after epoch" in out
    history = json.loads((run_dir / "history.json").read_text())
    assert len(history["loss"]) == EPOCHS and len(history["val_loss"]) == EPOCHS
    assert history["epoch"] == list(range(1, EPOCHS + 1))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert 0.0 <= metrics["rank1_accuracy"] <= metrics["rank5_accuracy"] <= 1.0
    leftovers = [p.name for p in run_dir.rglob("*") if ".tmp" in p.name]
    assert leftovers == [], f"temporary files left behind: {leftovers}"
    for name in ("config.json", "curves.png", "confusion_matrix.png"):
        assert (run_dir / name).stat().st_size > 0, name


@pytest.mark.slow
def test_train_writes_a_complete_run_folder_and_prints_where(tmp_path, capsys):
    run_dir = tmp_path / "r"
    status = cli.main(["train", "--profile", "smoke", "--epochs", "1", "--run-dir", str(run_dir)])
    out = capsys.readouterr().out
    assert status == 0
    assert str(run_dir) in out and "rank-5" in out
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics) >= {"rank1_accuracy", "rank5_accuracy", "test_loss", "train_seconds"}
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["epoch_0001.keras"]


def test_train_on_a_missing_folder_names_it_and_exits_2(tmp_path, capsys):
    missing = tmp_path / "no_such_fingers"
    status = cli.main(["train", "--profile", "smoke", "--data", str(missing),
                       "--run-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert status == 2
    assert str(missing) in err
    assert not (tmp_path / "r" / "metrics.json").exists()


def test_unknown_profile_is_rejected_by_the_parser(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["train", "--profile", "turbo"])
    assert info.value.code == 2
    assert "turbo" in capsys.readouterr().err
