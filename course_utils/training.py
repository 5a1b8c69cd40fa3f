"""The reference training run: the nine workflow steps of SYLLABUS 00, end to end.

``course train`` and ``make demo`` call :func:`train_reference`; lesson 00
walks through the same steps one cell at a time. A run folder holds
everything the run produced::

    runs/reference-cpu/
        config.json          profile, seed, data source, hyper-parameters
        history.json         per-epoch loss and accuracy (TrainingMonitor)
        curves.png           learning curves, rewritten every epoch
        checkpoints/         epoch_NNNN.keras (EpochCheckpoint), for --resume
        confusion_matrix.png
        metrics.json         test loss, rank-1 and rank-5 accuracy, timings

Examples
--------
>>> from course_utils.training import TrainConfig, train_reference
>>> summary = train_reference(TrainConfig(profile="smoke", run_dir="runs/x"))  # doctest: +SKIP
>>> summary.metrics["rank1_accuracy"]  # doctest: +SKIP
0.93
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

from course_utils import io, labels, profiles
from course_utils.tf_setup import import_keras, set_seed

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
    """The outcome of a run: where it wrote and what it measured."""

    run_dir: Path
    profile: profiles.Profile
    epochs_done: int
    resumed_from: int
    metrics: dict[str, float]

    def describe(self) -> str:
        """A few plain lines for a newcomer."""
        m = self.metrics
        lines = [
            f"Run folder:        {self.run_dir}",
            f"Profile:           {self.profile.name} ({self.profile.image_size}x"
            f"{self.profile.image_size} images, {self.profile.train_size} for training)",
            f"Epochs:            {self.epochs_done}"
            + (f" (resumed after epoch {self.resumed_from})" if self.resumed_from else ""),
            f"Training time:     {m['train_seconds']:.1f} s ({m['train_images_per_s']:.0f} images/s)",
            f"Test rank-1 acc.:  {m['rank1_accuracy']:.2%}  (top prediction is the label)",
            f"Test rank-5 acc.:  {m['rank5_accuracy']:.2%}  (label among the five best scores)",
            f"Curves:            {self.run_dir / 'curves.png'}",
            f"Confusion matrix:  {self.run_dir / 'confusion_matrix.png'}",
        ]
        return "\n".join(lines)


def default_run_dir(profile: profiles.Profile) -> Path:
    """``runs/reference-<profile>``: where ``course train`` writes by default."""
    return DEFAULT_RUNS_DIR / f"reference-{profile.name}"


def train_reference(config: TrainConfig = TrainConfig()) -> RunSummary:
    """Train the reference fingers CNN following the nine workflow steps.

    With ``config.resume`` the run continues from the newest checkpoint in its
    run folder (model, optimizer state and epoch number); the history goes on
    where it stopped, so a run killed mid-epoch ends with the same number of
    epochs as one that was never interrupted.
    """
    from course_utils import callbacks, datasets, fingers, metrics, models, plots
    from course_utils.learning_rate import make_step_decay

    keras = import_keras()
    # 1. Hyper-parameters, gathered in one place.
    profile = profiles.get_profile(config.profile)
    seed = profile.seed if config.seed is None else int(config.seed)
    epochs = profile.epochs if config.epochs is None else int(config.epochs)
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    decay_every = max(epochs // 3, 1) if config.decay_every is None else config.decay_every
    run_dir = Path(config.run_dir) if config.run_dir is not None else default_run_dir(profile)
    checkpoint_dir = run_dir / "checkpoints"
    set_seed(seed)

    # 2. Data: the test split stays in the vault until step 8.
    data = fingers.load_fingers(profile, data_dir=config.data_dir, seed=seed)
    train_ds = datasets.make_dataset(
        data.x_train, data.y_train, batch_size=profile.batch_size, training=True,
        augment=config.augment, seed=seed,
    )
    val_ds = datasets.make_dataset(
        data.x_val, data.y_val, batch_size=profile.batch_size, training=False
    )

    # 3-4. Model and compile, or the checkpoint of an interrupted run.
    initial_epoch = 0
    latest = callbacks.find_latest_checkpoint(checkpoint_dir) if config.resume else None
    if latest is not None:
        path, initial_epoch = latest
        model = callbacks.load_checkpoint(path)
    else:
        if not config.resume and checkpoint_dir.exists():
            _clear_previous_run(run_dir)
        model = models.build_fingers_cnn(profile.input_shape, labels.NUM_CLASSES, seed=seed)
        models.compile_classifier(model, learning_rate=config.learning_rate)
    io.write_json(run_dir / "config.json", {
        "profile": profile.as_dict(), "seed": seed, "epochs": epochs,
        "data": str(config.data_dir) if config.data_dir else "synthetic",
        "augment": config.augment, "learning_rate": config.learning_rate,
        "decay_every": decay_every, "decay_factor": config.decay_factor,
        "parameters": int(model.count_params()),
    })

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
        model.fit(
            train_ds, validation_data=val_ds, epochs=epochs, initial_epoch=initial_epoch,
            shuffle=False,  # the dataset reshuffles itself every epoch
            callbacks=fit_callbacks, verbose=verbose,
        )
    train_seconds = time.perf_counter() - start
    trained_images = (epochs - initial_epoch) * len(data.y_train)

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
        "train_images_per_s": trained_images / train_seconds if trained_images else 0.0,
        "most_confused": [list(t) for t in metrics.most_confused(cm, labels.CLASS_NAMES, top=3)],
    }
    io.write_json(run_dir / "metrics.json", results)
    history = io.read_json(run_dir / "history.json")
    return RunSummary(
        run_dir=run_dir, profile=profile, epochs_done=len(history.get("loss", [])),
        resumed_from=initial_epoch, metrics=results,
    )


def _clear_previous_run(run_dir: Path) -> None:
    """A fresh (non-resumed) run must not mix with an older one's files."""
    for name in ("history.json", "curves.png", "metrics.json", "confusion_matrix.png"):
        (run_dir / name).unlink(missing_ok=True)
    for ckpt in (run_dir / "checkpoints").glob("*.keras"):
        ckpt.unlink()


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``course train``."""
    parser.add_argument("--profile", choices=sorted(profiles.PROFILES),
                        help="runtime profile (default: chosen for this machine)")
    parser.add_argument("--data", dest="data_dir", metavar="DIR",
                        help="folder in the public fingers layout (train/ and test/); "
                             "default: the synthetic set")
    parser.add_argument("--run-dir", metavar="DIR", help="where to write (default runs/reference-PROFILE)")
    parser.add_argument("--epochs", type=int, help="override the profile's number of epochs")
    parser.add_argument("--seed", type=int, help="random seed (default: the profile's)")
    parser.add_argument("--no-augment", dest="augment", action="store_false",
                        help="train without data augmentation")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the newest checkpoint in the run folder")


def run_command(args: argparse.Namespace) -> int:
    """``course train``: run, then print where everything is."""
    config = TrainConfig(
        profile=args.profile, data_dir=args.data_dir, run_dir=args.run_dir, epochs=args.epochs,
        seed=args.seed, augment=args.augment, resume=args.resume,
    )
    try:
        summary = train_reference(config)
    except (ValueError, FileNotFoundError) as exc:
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
