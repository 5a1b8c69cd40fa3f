"""The reference run (``course train``) end to end through the `course` CLI, including a
real SIGKILL and resume."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from course_utils.instructor import cli

EPOCHS = 5


def _course(*args: str, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("COURSE_PROFILE", None)
    return subprocess.Popen(
        [sys.executable, "-m", "course_utils.instructor.cli", *args], cwd=cwd, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _run_to_end(args: list[str], cwd: Path) -> str:
    done = _course(*args, cwd=cwd)
    out, err = done.communicate(timeout=600)
    assert done.returncode == 0, err
    return out


@pytest.mark.slow
def test_a_run_killed_mid_training_resumes_and_matches_an_uninterrupted_run(tmp_path):
    # The smallest run that shows it: the smoke profile, with augmentation and dropout
    # (every source of randomness), killed with SIGKILL after its first checkpoint.
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
    before_kill = sum(history["epoch_seconds"])

    out = _run_to_end([*args, "--resume"], cwd=tmp_path)
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

    # The training time covers every epoch, those trained before the kill included.
    assert metrics["train_seconds"] == pytest.approx(sum(history["epoch_seconds"]))
    assert metrics["train_seconds"] > metrics["session_seconds"] * 0.5
    assert metrics["train_seconds"] >= before_kill
    reported = float(re.search(r"Training time: +([\d.]+) s", out).group(1))
    assert reported == pytest.approx(metrics["train_seconds"], abs=0.06)

    # The same run, never interrupted: every epoch's metrics agree.
    whole_dir = tmp_path / "whole"
    _run_to_end(["train", "--profile", "smoke", "--epochs", str(EPOCHS), "--run-dir",
                 str(whole_dir)], cwd=tmp_path)
    whole = json.loads((whole_dir / "history.json").read_text())
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"):
        np.testing.assert_allclose(history[key], whole[key], rtol=1e-5, atol=1e-6, err_msg=(
            f"{key} of the resumed run (killed after epoch {killed_after}) differs from the "
            f"uninterrupted run's"))
    whole_metrics = json.loads((whole_dir / "metrics.json").read_text())
    assert metrics["test_loss"] == pytest.approx(whole_metrics["test_loss"], rel=1e-5)


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


@pytest.mark.slow
def test_resuming_with_other_settings_says_why_the_results_will_differ(tmp_path, capsys):
    run_dir = str(tmp_path / "r")
    assert cli.main(["train", "--profile", "smoke", "--epochs", "1", "--run-dir", run_dir]) == 0
    capsys.readouterr()
    assert cli.main(["train", "--profile", "smoke", "--epochs", "2", "--seed", "7",
                     "--run-dir", run_dir, "--resume"]) == 0
    out = capsys.readouterr().out
    assert "Resuming after epoch 1" in out
    assert "other settings (seed 42 -> 7, epochs 1 -> 2" in out
    assert "results differ from an uninterrupted run" in out


_CHECK_WITHOUT_TENSORFLOW = (
    "import sys, time\n"
    "start = time.perf_counter()\n"
    "from course_utils.instructor import cli\n"
    "status = cli.main(sys.argv[1:])\n"
    "print(f'seconds={time.perf_counter() - start:.3f} "
    "tensorflow={\"tensorflow\" in sys.modules}')\n"
    "sys.exit(status)\n"
)


def _broken_folders(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Data folders that break the layout, each with a piece of what the error must say."""
    from course_utils import fingers

    x, y = fingers.make_fingers(24, image_size=16, seed=0)
    no_test = fingers.export_public_layout(tmp_path / "no_test", {"train": (x, y), "test": (x, y)})
    for png in (no_test / "test").iterdir():
        png.unlink()
    (no_test / "test").rmdir()
    corrupt = fingers.export_public_layout(tmp_path / "corrupt", {"train": (x, y),
                                                                   "test": (x, y)})
    bad_png = sorted((corrupt / "train").iterdir())[3]
    bad_png.write_bytes(b"not a png")
    single = fingers.export_public_layout(tmp_path / "single", {"train": (x[:1], y[:1]),
                                                                "test": (x, y)})
    return {
        "missing": (tmp_path / "no_such_folder", "expected a folder with train/ and test/"),
        "no test split": (no_test / "test", "folder not found"),
        "corrupt image": (bad_png, "expected a valid PNG file"),
        "one image": (single / "train", "expected at least 2"),
    }


def test_path_and_data_errors_come_at_once_before_tensorflow_is_imported(tmp_path):
    for case, (named, expected) in _broken_folders(tmp_path).items():
        folder = named if case == "missing" else next(
            p for p in named.parents if p.parent == tmp_path)
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", _CHECK_WITHOUT_TENSORFLOW, "train",  # no --profile: the
             "--data", str(folder), "--run-dir", str(tmp_path / "run")],  # default imports TF
            capture_output=True, text=True, timeout=60, cwd=tmp_path,
            env={k: v for k, v in os.environ.items() if k not in ("COURSE_PROFILE", "CI")},
        )
        wall = time.perf_counter() - started
        assert done.returncode == 2, (case, done.stdout, done.stderr)
        assert done.stderr.startswith("course train: error: "), (case, done.stderr)
        assert str(named) in done.stderr and expected in done.stderr, (case, done.stderr)
        assert "Traceback" not in done.stderr
        assert "tensorflow=False" in done.stdout, f"{case}: TensorFlow was imported first"
        seconds = float(done.stdout.split("seconds=")[1].split()[0])
        assert seconds < 1.0, f"{case}: the error took {seconds:.2f} s in the command"
        print(f"{case}: error after {seconds:.2f} s in the command, {wall:.2f} s with Python")
    assert not (tmp_path / "run").exists()


def test_a_run_folder_that_is_a_file_is_refused_before_tensorflow_is_imported(tmp_path):
    (tmp_path / "run").write_text("not a folder")
    done = subprocess.run(
        [sys.executable, "-c", _CHECK_WITHOUT_TENSORFLOW, "train", "--run-dir",
         str(tmp_path / "run")],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k not in ("COURSE_PROFILE", "CI")},
    )
    assert done.returncode == 2 and "is a file" in done.stderr, done.stderr
    assert "tensorflow=False" in done.stdout


def test_unknown_profile_is_rejected_by_the_parser(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["train", "--profile", "turbo"])
    assert info.value.code == 2
    assert "turbo" in capsys.readouterr().err
