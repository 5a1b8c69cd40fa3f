"""The training helper (one way to train, seeds and repeats), and the reference run end to
end through the `course` CLI, including a real SIGKILL."""

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

from course_utils import models
from course_utils.history import History
from course_utils.instructor import cli
from course_utils.training import fit_model, mean_over_seeds, repeat_over_seeds

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


# --------------------------------------------------------------------------- the helper


def _tiny_data(n=32):
    rng = np.random.default_rng(0)
    return rng.random((n, 8, 8, 1), dtype=np.float32), np.arange(n) % 12


def _build_tiny():
    return models.build_fingers_cnn((8, 8, 1), 12, depth=1, width=4, dense_units=8, seed=0)


def test_the_same_seed_gives_the_same_history_and_another_seed_another():
    x, y = _tiny_data()
    def run(seed):
        return fit_model(_build_tiny, (x, y), (x[:8], y[:8]), epochs=2, batch_size=8, seed=seed)
    first, again, other = run(1), run(1), run(2)
    assert isinstance(first, History) and first.epochs == [1, 2]
    assert first == again, "same seed, same batches and dropout masks: the same history"
    assert first["loss"] != other["loss"], "another seed shuffles the batches otherwise"
    assert first.model is not again.model, "every run builds its own model"


def test_repeat_over_seeds_gives_one_history_per_seed_and_their_mean_and_spread():
    x, y = _tiny_data()
    runs = repeat_over_seeds(
        lambda seed: fit_model(_build_tiny, (x, y), epochs=3, batch_size=8, seed=seed),
        seeds=[3, 0, 7])
    assert list(runs) == [3, 0, 7], "one run per seed, in the order given"
    assert all(isinstance(h, History) and h.epochs == [1, 2, 3] for h in runs.values())
    assert runs[0] == fit_model(_build_tiny, (x, y), epochs=3, batch_size=8, seed=0)
    mean, spread = mean_over_seeds(runs)
    losses = np.array([h["loss"] for h in runs.values()])
    np.testing.assert_allclose(mean["loss"], losses.mean(axis=0))
    np.testing.assert_allclose(spread["loss"], losses.std(axis=0, ddof=1))
    assert mean.epochs == [1, 2, 3] and set(mean.metrics) == set(runs[0].metrics)


def test_a_dataset_made_by_a_function_is_made_after_seeding_and_an_endless_one_is_cut():
    from course_utils import fingers
    from course_utils.datasets import make_dataset
    from course_utils.runtime.tf_setup import set_seed

    x, y = fingers.make_fingers(24, image_size=16, seed=0)
    def build():
        return models.build_fingers_cnn((16, 16, 1), 12, depth=1, width=4, seed=0)
    def make_train():
        return make_dataset(x, y, batch_size=8, training=True, seed=0).repeat()
    def run(earlier_seed):
        set_seed(earlier_seed)  # whatever ran before must not change the batches
        return fit_model(build, make_train, epochs=2, steps_per_epoch=2, seed=0)
    first = run(1)
    assert first == run(2)
    assert int(first.model.optimizer.iterations) == 4, "2 epochs of 2 steps from the stream"


def test_a_second_phase_goes_on_with_the_same_model_and_counts_on_its_epochs():
    x, y = _tiny_data()
    warm_up = fit_model(_build_tiny, (x, y), epochs=2, batch_size=8, seed=0)
    fine = fit_model(warm_up.model, (x, y), epochs=5, initial_epoch=2, batch_size=8)
    assert fine.epochs == [3, 4, 5] and fine.model is warm_up.model
    assert int(fine.model.optimizer.iterations) == 5 * 4


def test_an_uncompiled_model_is_compiled_with_the_optimizer_asked_for():
    x, y = _tiny_data()
    history = fit_model(_build_tiny(), (x, y), epochs=1, batch_size=8, optimizer="sgd",
                        learning_rate=0.05, seed=0)
    optimizer = history.model.optimizer
    assert type(optimizer).__name__ == "SGD"
    assert float(optimizer.learning_rate) == pytest.approx(0.05)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"epochs": 0}, r"epochs: expected a whole number >= 1, got 0"),
    ({"epochs": 2, "initial_epoch": 2}, r"initial_epoch: expected a whole number >= 0 and <= 1"),
    ({"epochs": 1, "seed": -1}, r"seed: expected a whole number >= 0, got -1"),
    ({"epochs": 1, "batch_size": None}, r"batch_size: expected a whole number >= 1 to feed"),
    ({"epochs": 1, "steps_per_epoch": 0}, r"steps_per_epoch: expected a whole number >= 1"),
])
def test_fit_model_refuses_bad_arguments_by_name_before_building(kwargs, message):
    built = []
    def build():
        built.append(1)
        return _build_tiny()
    with pytest.raises(ValueError, match=message):
        fit_model(build, _tiny_data(), **{"batch_size": 8, **kwargs})
    assert not built, "checked before the model is built"


def test_fit_model_says_what_a_model_and_the_data_must_be():
    x, y = _tiny_data()
    with pytest.raises(ValueError, match=r"model: expected a keras.Model or a function that "
                                         r"builds one, got str"):
        fit_model("cnn", (x, y), epochs=1, batch_size=8)
    with pytest.raises(ValueError, match=r"model: expected the builder to return a "
                                         r"keras.Model, got NoneType"):
        fit_model(lambda: None, (x, y), epochs=1, batch_size=8)
    with pytest.raises(ValueError, match=r"train: expected a dataset or a pair \(x, y\) of "
                                         r"arrays, got a tuple of 3"):
        fit_model(_build_tiny, (x, y, y), epochs=1, batch_size=8)
    with pytest.raises(ValueError, match=r"batch_size: expected None for a dataset"):
        from course_utils.datasets import make_dataset

        fit_model(_build_tiny, make_dataset((x[..., 0] * 255).astype("uint8"), y, batch_size=8,
                                            training=False), epochs=1, batch_size=8)
    compiled = models.compile_classifier(_build_tiny())
    with pytest.raises(ValueError, match=r"optimizer: expected None for a model that is "
                                         r"compiled already"):
        fit_model(compiled, (x, y), epochs=1, batch_size=8, learning_rate=0.1)


def test_repeat_and_mean_over_seeds_refuse_what_they_cannot_use():
    with pytest.raises(ValueError, match=r"seeds: expected a list of seeds such as range\(3\), "
                                         r"got 3"):
        repeat_over_seeds(lambda seed: seed, seeds=3)
    with pytest.raises(ValueError, match=r"seeds: expected different seeds, got \[1\]"):
        repeat_over_seeds(lambda seed: seed, seeds=[1, 2, 1])
    with pytest.raises(ValueError, match=r"seeds: expected at least one seed"):
        repeat_over_seeds(lambda seed: seed, seeds=[])
    with pytest.raises(ValueError, match=r"seeds: expected a whole number >= 0, got -1"):
        repeat_over_seeds(lambda seed: seed, seeds=[-1])
    with pytest.raises(ValueError, match=r"runs: expected at least 2 runs to measure a spread"):
        mean_over_seeds({0: {"loss": [1.0]}})
    with pytest.raises(ValueError, match=r"seed 1 has epochs \[1\].*did a run stop early"):
        mean_over_seeds({0: {"loss": [1.0, 0.5]}, 1: {"loss": [1.0]}})
