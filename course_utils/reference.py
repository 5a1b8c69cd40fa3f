"""The reference run of SYLLABUS 00: the nine workflow steps end to end (``course train``).

:func:`train_reference` generates (or reads) the data, splits it, builds the reference CNN,
trains it with :func:`course_utils.training.fit_model` under step decay, evaluates it on
the sealed test set and writes a run folder; ``course train`` and ``make demo`` call it,
and lesson 00 walks through the same steps one cell at a time. A run folder holds
everything the run produced::

    runs/reference-cpu/
        config.json          profile, seed, data source, hyper-parameters
        history.json         per-epoch loss and accuracy (TrainingMonitor)
        curves.png           learning curves, rewritten every epoch
        checkpoints/         epoch_NNNN.keras (EpochCheckpoint), for --resume
        confusion_matrix.png
        metrics.json         test loss, rank-1 and rank-5 accuracy, timings

A run killed mid-training continues with ``--resume`` and ends where an uninterrupted
run would have.

Examples
--------
>>> summary = train_reference(TrainConfig(profile="smoke", run_dir="runs/x"))  # doctest: +SKIP
>>> summary.metrics["rank1_accuracy"]  # doctest: +SKIP
0.93
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from course_utils import labels
from course_utils.history import read_history
from course_utils.runtime import io, profiles
from course_utils.runtime.tf_setup import import_keras, set_seed
from course_utils.training import fit_model

__all__ = ["RunSummary", "TrainConfig", "default_run_dir", "train_reference"]

DEFAULT_RUNS_DIR = Path("runs")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """What a reference run needs; every field has a sensible default.

    ``epochs=None`` takes the profile's; ``data_dir`` switches from the
    synthetic set to a folder in the public layout; ``run_dir=None`` gives
    ``runs/reference-<profile>``. The learning rate follows step decay (lesson 01):
    ``learning_rate`` for the first ``decay_every`` epochs, then multiplied by
    ``decay_factor`` every ``decay_every`` epochs; ``decay_every=None`` halves it
    in thirds of the run (every ``epochs // 3`` epochs), ``decay_factor=1`` keeps
    it constant. It is a function of the epoch, so a resumed run continues on it.
    """

    profile: str | None = None
    data_dir: str | Path | None = None
    run_dir: str | Path | None = None
    epochs: int | None = None
    seed: int | None = None
    augment: bool = True
    learning_rate: float = 2e-3
    decay_every: int | None = None
    decay_factor: float = 0.5
    checkpoint_every: int = 1
    keep_checkpoints: int = 2
    resume: bool = False
    verbose: int | str = "auto"


@dataclasses.dataclass(frozen=True)
class RunSummary:
    """The outcome of a run: where it wrote and what it measured.

    ``metrics["train_seconds"]`` is the training time of every epoch in the history,
    over all the runs a resumed run continues; ``metrics["session_seconds"]`` is the
    part of it this call trained.
    """

    run_dir: Path
    profile: profiles.Profile
    epochs_done: int
    resumed_from: int
    metrics: dict[str, float]

    def describe(self) -> str:
        """A few plain lines for a newcomer."""
        m = self.metrics
        time_line = (f"Training time:     {m['train_seconds']:.1f} s "
                     f"({m['train_images_per_s']:.0f} images/s)")
        if self.resumed_from:
            time_line += (f", all {self.epochs_done} epochs; this run trained epochs "
                          f"{self.resumed_from + 1}-{self.epochs_done} in "
                          f"{m['session_seconds']:.1f} s")
        lines = [
            f"Run folder:        {self.run_dir}",
            f"Profile:           {self.profile.name} ({self.profile.image_size}x"
            f"{self.profile.image_size} images, {self.profile.train_size} for training)",
            f"Epochs:            {self.epochs_done}"
            + (f" (resumed after epoch {self.resumed_from})" if self.resumed_from else ""),
            time_line,
            f"Test rank-1 acc.:  {m['rank1_accuracy']:.2%}  (top prediction is the label)",
            f"Test rank-5 acc.:  {m['rank5_accuracy']:.2%}  (label among the five best scores)",
            f"Curves:            {self.run_dir / 'curves.png'}",
            f"Confusion matrix:  {self.run_dir / 'confusion_matrix.png'}",
        ]
        return "\n".join(lines)


def default_run_dir(profile: profiles.Profile) -> Path:
    """``runs/reference-<profile>``: where ``course train`` writes by default."""
    return DEFAULT_RUNS_DIR / f"reference-{profile.name}"


def train_reference(config: TrainConfig = TrainConfig(), *,
                    log: Callable[[str], None] | None = None) -> RunSummary:
    """Train the reference fingers CNN following the nine workflow steps.

    Arguments, the run folder and the data are checked before TensorFlow is imported,
    so a wrong path or a bad data folder fails at once, not after seconds of start-up.

    Every epoch is shuffled and augmented with its own seed, drawn from ``(seed, epoch)``
    (:func:`course_utils.datasets.make_epochs`), so what epoch ``e`` sees does not depend
    on how many epochs this process ran before it.

    With ``config.resume`` the run continues from the newest checkpoint in its
    run folder (model, optimizer state, the layers' random state and the epoch
    number): every resumed epoch sees the batches, augmentations and dropout masks an
    uninterrupted run sees, so the history matches one to floating-point precision.
    Checkpoints are written at the end of epochs: the part of an epoch done before an
    interruption is trained again. ``log`` (default: print) receives one line saying
    from where the run resumed.
    """
    from course_utils import fingers

    say = print if log is None else log
    # Arguments, the run folder and every data file are checked first: choosing the
    # profile for this machine imports TensorFlow (seconds), a wrong path fails at once.
    if config.epochs is not None and int(config.epochs) < 1:
        raise ValueError(f"epochs: expected at least 1, got {config.epochs}")
    if config.run_dir is not None:
        _check_run_dir(Path(config.run_dir))
    folder = fingers.read_data_folder(config.data_dir) if config.data_dir is not None else None

    # 1. Hyper-parameters, gathered in one place.
    profile = profiles.get_profile(config.profile)
    seed = profile.seed if config.seed is None else int(config.seed)
    epochs = profile.epochs if config.epochs is None else int(config.epochs)
    decay_every = max(epochs // 3, 1) if config.decay_every is None else config.decay_every
    run_dir = Path(config.run_dir) if config.run_dir is not None else default_run_dir(profile)
    _check_run_dir(run_dir)
    checkpoint_dir = run_dir / "checkpoints"

    # 2. Data: the test split stays in the vault until step 8.
    data = fingers.load_fingers(profile, data_dir=folder, seed=seed)

    from course_utils import callbacks, datasets, metrics, models, plots
    from course_utils.learning_rate import make_step_decay

    keras = import_keras()
    set_seed(seed)
    val_ds = datasets.make_dataset(
        data.x_val, data.y_val, batch_size=profile.batch_size, training=False
    )

    # 3-4. Model and compile, or the checkpoint of an interrupted run.
    initial_epoch = 0
    latest = callbacks.find_latest_checkpoint(checkpoint_dir) if config.resume else None
    if latest is not None:
        path, initial_epoch = latest
        model = callbacks.load_checkpoint(path)
        say(f"Resuming after epoch {initial_epoch} from {path}: the part of epoch "
            f"{initial_epoch + 1} done before the interruption (if any) is trained again, "
            f"with the same batches and random state, so the results match an "
            f"uninterrupted run.")
    else:
        if config.resume:
            say(f"No checkpoint in {checkpoint_dir}: starting a new run.")
        if not config.resume and checkpoint_dir.exists():
            _clear_previous_run(run_dir)
        model = models.build_fingers_cnn(profile.input_shape, labels.NUM_CLASSES, seed=seed)
        models.compile_classifier(model, learning_rate=config.learning_rate)
    run_config = {
        "profile": profile.as_dict(), "seed": seed, "epochs": epochs,
        "data": str(config.data_dir) if config.data_dir else "synthetic",
        "augment": config.augment, "learning_rate": config.learning_rate,
        "decay_every": decay_every, "decay_factor": config.decay_factor,
        "parameters": int(model.count_params()),
    }
    if latest is not None:
        changed = _changed_settings(run_dir / "config.json", run_config)
        if changed:
            say(f"Note: the interrupted run had other settings ({changed}): from epoch "
                f"{initial_epoch + 1} on the results differ from an uninterrupted run with "
                f"either settings.")
    io.write_json(run_dir / "config.json", run_config)

    # 5-6. Callbacks and training.
    schedule = make_step_decay(config.learning_rate, factor=config.decay_factor,
                               every=decay_every)
    fit_callbacks = [
        keras.callbacks.LearningRateScheduler(schedule),
        callbacks.TrainingMonitor(run_dir),
        callbacks.EpochCheckpoint(
            checkpoint_dir, every=config.checkpoint_every, keep=config.keep_checkpoints
        ),
    ]
    verbose = config.verbose
    if verbose == "auto":
        verbose = 1 if sys.stdout.isatty() else 2
    start = time.perf_counter()
    if initial_epoch < epochs:
        # One stream of the remaining epochs, epoch e shuffled and augmented with its own seed.
        train_ds = datasets.make_epochs(
            data.x_train, data.y_train, batch_size=profile.batch_size,
            epochs=range(initial_epoch, epochs), augment=config.augment, seed=seed,
        )
        fit_model(model, train_ds, val_ds, epochs=epochs, initial_epoch=initial_epoch,
                  steps_per_epoch=math.ceil(len(data.y_train) / profile.batch_size),
                  callbacks=fit_callbacks, verbose=verbose)  # seeded above, before the build
    session_seconds = time.perf_counter() - start
    # The whole run's history, the epochs trained before a resume included.
    history = read_history(run_dir / "history.json")
    epochs_done = len(history.epochs)
    train_seconds = _history_seconds(history, fallback=session_seconds)
    trained_images = epochs_done * len(data.y_train)

    # 7. Curves are on disk already (TrainingMonitor). 8. Evaluate on the test set.
    test_ds = datasets.make_dataset(
        data.x_test, data.y_test, batch_size=profile.batch_size, training=False
    )
    scores = model.predict(test_ds, verbose=0)
    test_loss = float(keras.losses.SparseCategoricalCrossentropy()(data.y_test, scores))
    predictions = scores.argmax(axis=1)
    cm = metrics.confusion_matrix(data.y_test, predictions, num_classes=labels.NUM_CLASSES)
    plots.save_figure(
        plots.plot_confusion_matrix(cm, labels.CLASS_NAMES), run_dir / "confusion_matrix.png"
    )
    results = {
        "test_loss": test_loss,
        "rank1_accuracy": metrics.rank_k_accuracy(data.y_test, scores, k=1),
        "rank5_accuracy": metrics.rank_k_accuracy(data.y_test, scores, k=5),
        "count_accuracy": float((labels.to_count(predictions) == labels.to_count(data.y_test)).mean()),
        "train_seconds": train_seconds,
        "session_seconds": session_seconds,
        "train_images_per_s": trained_images / train_seconds if train_seconds > 0 else 0.0,
        "most_confused": [list(t) for t in metrics.most_confused(cm, labels.CLASS_NAMES, top=3)],
    }
    io.write_json(run_dir / "metrics.json", results)
    return RunSummary(
        run_dir=run_dir, profile=profile, epochs_done=epochs_done,
        resumed_from=initial_epoch, metrics=results,
    )


def _changed_settings(path: Path, now: dict[str, Any]) -> str:
    """The settings in ``now`` that differ from the ``config.json`` at ``path``, as text.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "config.json"
    >>> _ = io.write_json(path, {"seed": 1, "epochs": 4})
    >>> _changed_settings(path, {"seed": 2, "epochs": 4})
    'seed 1 -> 2'
    """
    try:
        before = io.read_json(path)
    except (OSError, ValueError):
        return ""
    if not isinstance(before, dict):
        return ""
    return ", ".join(f"{key} {before[key]} -> {value}" for key, value in now.items()
                     if key in before and before[key] != value)


def _check_run_dir(run_dir: Path) -> None:
    """``ValueError`` when the run folder or its checkpoints/ exists as a file."""
    for folder in (run_dir, run_dir / "checkpoints"):
        if folder.exists() and not folder.is_dir():
            raise ValueError(f"run_dir: expected a folder to write the run to, {folder} is a file")


def _history_seconds(history: dict[str, Any], *, fallback: float) -> float:
    """The training time of the epochs in ``history``: the sum of their ``epoch_seconds``.

    >>> _history_seconds({"epoch_seconds": [1.5, 2.0]}, fallback=0.0)
    3.5
    >>> _history_seconds({"loss": [0.1]}, fallback=7.0)  # a history without the timing
    7.0
    """
    seconds = [s for s in history.get("epoch_seconds", []) if isinstance(s, int | float)]
    if not seconds or len(seconds) != len(history.get("epoch_seconds", [])):
        return fallback
    return float(sum(seconds))


def _clear_previous_run(run_dir: Path) -> None:
    """A fresh (non-resumed) run must not mix with an older one's files."""
    for name in ("history.json", "curves.png", "metrics.json", "confusion_matrix.png"):
        (run_dir / name).unlink(missing_ok=True)
    for ckpt in (run_dir / "checkpoints").glob("*.keras"):
        ckpt.unlink()


EXAMPLES = """\
examples:
  course train --profile smoke --epochs 2      a quick run, in runs/reference-smoke/
  course train --data data/fingers             train on a folder in the public layout
  course train --resume                        continue a run that was interrupted
"""


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``course train``.

    >>> p = argparse.ArgumentParser(); configure_parser(p)
    >>> p.parse_args(["--data", "d", "--resume"]).data_dir
    'd'
    """
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EXAMPLES
    parser.add_argument("--profile", choices=sorted(profiles.PROFILES),
                        help="runtime profile (default: chosen for this machine)")
    parser.add_argument("--data", dest="data_dir", metavar="DIR",
                        help="folder in the public fingers layout (train/ and test/); "
                             "default: the synthetic set")
    parser.add_argument("--run-dir", metavar="DIR",
                        help="where to write (default: runs/reference-PROFILE)")
    parser.add_argument("--epochs", type=int, help="override the profile's number of epochs")
    parser.add_argument("--seed", type=int, help="random seed (default: the profile's)")
    parser.add_argument("--no-augment", dest="augment", action="store_false",
                        help="train without data augmentation")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the newest checkpoint in the run folder; the "
                             "result matches an uninterrupted run's")


def run_command(args: argparse.Namespace) -> int:
    """``course train``: run, then print where everything is; 2 on a bad argument or folder."""
    config = TrainConfig(
        profile=args.profile, data_dir=args.data_dir, run_dir=args.run_dir, epochs=args.epochs,
        seed=args.seed, augment=args.augment, resume=args.resume,
    )
    try:
        summary = train_reference(config)
    except (ValueError, OSError) as exc:
        print(f"course train: error: {exc}", file=sys.stderr)
        return 2
    print(summary.describe())
    return 0


def summary_dict(summary: RunSummary) -> dict[str, Any]:
    """The summary as JSON-ready data (used by the demo and benchmarks)."""
    return {
        "run_dir": str(summary.run_dir), "profile": summary.profile.name,
        "epochs_done": summary.epochs_done, "resumed_from": summary.resumed_from,
        **summary.metrics,
    }
