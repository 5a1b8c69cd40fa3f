"""Training: the one helper every lesson trains with, and the reference run of SYLLABUS 00.

* :func:`fit_model` builds (from a builder function), compiles, feeds and fits a model
  and returns its :class:`~course_utils.history.History`; every training run of the
  package goes through it, so a seed means the same thing everywhere.
* :func:`repeat_over_seeds` repeats a run over several seeds, and
  :func:`mean_over_seeds` gives the mean and the spread of their curves, epoch by epoch.
* :func:`train_reference` is the reference run: the nine workflow steps of SYLLABUS
  00, end to end. ``course train`` and ``make demo`` call it; lesson 00 walks through
  the same steps one cell at a time. A run folder holds everything the run produced::

    runs/reference-cpu/
        config.json          profile, seed, data source, hyper-parameters
        history.json         per-epoch loss and accuracy (TrainingMonitor)
        curves.png           learning curves, rewritten every epoch
        checkpoints/         epoch_NNNN.keras (EpochCheckpoint), for --resume
        confusion_matrix.png
        metrics.json         test loss, rank-1 and rank-5 accuracy, timings

Examples
--------
>>> import numpy as np
>>> from course_utils import models
>>> x, y = np.random.default_rng(0).random((32, 8, 8, 1), "float32"), np.arange(32) % 12
>>> def build():
...     return models.build_fingers_cnn((8, 8, 1), 12, depth=1, width=4, seed=0)
>>> runs = repeat_over_seeds(
...     lambda seed: fit_model(build, (x, y), epochs=2, batch_size=8, seed=seed), seeds=[0, 1])
>>> mean, spread = mean_over_seeds(runs)
>>> mean.epochs, len(spread["loss"])
([1, 2], 2)
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
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from course_utils import labels
from course_utils.history import History, read_history
from course_utils.runtime import io, profiles
from course_utils.runtime.checks import check_scalar
from course_utils.runtime.tf_setup import import_keras, set_seed

__all__ = [
    "RunSummary",
    "TrainConfig",
    "fit_model",
    "mean_over_seeds",
    "repeat_over_seeds",
    "train_reference",
]

DEFAULT_RUNS_DIR = Path("runs")

T = TypeVar("T")


# --------------------------------------------------------------------------- the helper


def fit_model(
    model: Any,
    train: Any,
    val: Any = None,
    *,
    epochs: int,
    seed: int | None = None,
    optimizer: str | Any | None = None,
    learning_rate: float | Any | None = None,
    batch_size: int | None = None,
    steps_per_epoch: int | None = None,
    initial_epoch: int = 0,
    callbacks: Sequence[Any] = (),
    verbose: int | str = 0,
) -> History:
    """Build, compile, feed and fit a model; return its :class:`~course_utils.history.History`.

    1. **Seed**: with ``seed``, :func:`~course_utils.runtime.tf_setup.set_seed` first,
       before the model is built, so the same seed gives the same initial weights,
       batches and dropout masks: the same history. ``seed=None`` leaves the random
       state as it is (the second phase of a fine-tuning, a resumed run).
    2. **Build**: ``model`` is a ``keras.Model`` or a function without arguments that
       builds one (``lambda: models.build_fingers_cnn(shape, seed=seed)``).
    3. **Compile**: a model that is not compiled yet is compiled by
       :func:`course_utils.models.compile_classifier` with ``optimizer`` (default
       ``"adam"``, or an optimizer instance) and ``learning_rate`` (default ``1e-3``); a
       compiled model is used as it is.
    4. **Feed**: ``train`` is a ``tf.data.Dataset`` of ``(images, labels)`` batches (it
       shuffles itself, see :func:`course_utils.datasets.make_dataset`; an endless one,
       ``dataset.repeat()``, needs ``steps_per_epoch``), a pair ``(x, y)`` of arrays,
       fed in batches of ``batch_size`` and reshuffled every epoch by Keras, or a
       function without arguments that makes the dataset. ``val`` (optional) is one of
       the same, evaluated after every epoch.
    5. **Fit** epochs ``initial_epoch + 1`` to ``epochs`` with ``callbacks``.

    A shuffled dataset takes its seeds from the global seed in force when it is *made*:
    one made before the call keeps the seed of whatever ran before it. Pass the function
    that makes it (``lambda: datasets.make_dataset(x, y, ..., training=True)``), and
    ``seed`` fixes the order of its batches too; the functions are called after seeding,
    the data before the model.

    The returned history's ``model`` is the trained model. Arguments are checked before
    anything is built; a ``ValueError`` names the one that is wrong.

    Examples
    --------
    >>> import numpy as np
    >>> from course_utils import models
    >>> x, y = np.random.default_rng(0).random((32, 8, 8, 1), "float32"), np.arange(32) % 12
    >>> def build():
    ...     return models.build_fingers_cnn((8, 8, 1), 12, depth=1, width=4, seed=0)
    >>> history = fit_model(build, (x, y), (x, y), epochs=3, batch_size=8, seed=0)
    >>> history.metrics
    ['accuracy', 'loss', 'rank5_accuracy', 'val_accuracy', 'val_loss', 'val_rank5_accuracy']
    >>> history == fit_model(build, (x, y), (x, y), epochs=3, batch_size=8, seed=0)
    True
    >>> more = fit_model(history.model, (x, y), epochs=5, initial_epoch=3, batch_size=8)
    >>> more.epochs
    [4, 5]
    """
    epochs = check_scalar(epochs, "epochs", int, min_val=1)
    initial_epoch = check_scalar(initial_epoch, "initial_epoch", int, min_val=0,
                                 max_val=epochs - 1)
    if steps_per_epoch is not None:
        steps_per_epoch = check_scalar(steps_per_epoch, "steps_per_epoch", int, min_val=1)
    if seed is not None:
        seed = check_scalar(seed, "seed", int, min_val=0)
    if batch_size is not None:
        batch_size = check_scalar(batch_size, "batch_size", int, min_val=1)
    keras = import_keras()
    if seed is not None:
        set_seed(seed)
    train, val = (data() if callable(data) else data for data in (train, val))
    arrays = isinstance(train, tuple)
    if arrays and len(train) != 2:
        raise ValueError(f"train: expected a dataset or a pair (x, y) of arrays, got a tuple "
                         f"of {len(train)}")
    if arrays and batch_size is None:
        raise ValueError("batch_size: expected a whole number >= 1 to feed the arrays (x, y) in "
                         "batches, got None")
    if not arrays and batch_size is not None:
        raise ValueError(f"batch_size: expected None for a dataset (it comes in batches "
                         f"already), got {batch_size!r}")
    if not isinstance(model, keras.Model):
        if not callable(model):
            raise ValueError(f"model: expected a keras.Model or a function that builds one, "
                             f"got {type(model).__name__}")
        built = model()
        if not isinstance(built, keras.Model):
            raise ValueError(f"model: expected the builder to return a keras.Model, got "
                             f"{type(built).__name__}")
        model = built
    if not model.compiled:
        from course_utils import models

        models.compile_classifier(model, optimizer="adam" if optimizer is None else optimizer,
                                  learning_rate=1e-3 if learning_rate is None else learning_rate)
    elif optimizer is not None or learning_rate is not None:
        raise ValueError("optimizer: expected None for a model that is compiled already (pass "
                         "an uncompiled model, or compile it with the optimizer you want)")
    options = {"epochs": epochs, "initial_epoch": initial_epoch,
               "steps_per_epoch": steps_per_epoch, "validation_data": val,
               "callbacks": list(callbacks), "verbose": verbose}
    if arrays:
        fitted = model.fit(*train, batch_size=batch_size, shuffle=True, **options)
    else:
        fitted = model.fit(train, shuffle=False, **options)  # the dataset shuffles itself
    return read_history(fitted, name=model.name)


def repeat_over_seeds(run: Callable[[int], T], seeds: Iterable[int]) -> dict[int, T]:
    """Call ``run(seed)`` for every seed: ``{seed: what that run returned}``.

    A run that depends on chance (initial weights, batches, dropout) gives a different
    result for every seed; repeating it over a few seeds shows how much, and
    :func:`mean_over_seeds` sums the histories up. ``run`` usually calls
    :func:`fit_model` (or a lesson's training function) with ``seed=seed``.

    Examples
    --------
    >>> repeat_over_seeds(lambda seed: seed * 10, seeds=range(3))
    {0: 0, 1: 10, 2: 20}
    >>> repeat_over_seeds(lambda seed: seed, seeds=3)
    Traceback (most recent call last):
    ...
    ValueError: seeds: expected a list of seeds such as range(3), got 3
    """
    if not callable(run):
        raise ValueError(f"run: expected a function of the seed, got {type(run).__name__}")
    if isinstance(seeds, str) or not isinstance(seeds, Iterable):
        raise ValueError(f"seeds: expected a list of seeds such as range(3), got {seeds!r}")
    chosen = [check_scalar(seed, "seeds", int, min_val=0) for seed in seeds]
    if not chosen:
        raise ValueError("seeds: expected at least one seed, got none")
    repeated = sorted({seed for seed in chosen if chosen.count(seed) > 1})
    if repeated:
        raise ValueError(f"seeds: expected different seeds, got {repeated} more than once")
    return {seed: run(seed) for seed in chosen}


def mean_over_seeds(runs: Mapping[int, Any] | Sequence[Any]) -> tuple[History, History]:
    """The mean and the spread of several runs' curves, epoch by epoch: ``(mean, spread)``.

    ``runs`` is what :func:`repeat_over_seeds` returns, ``{seed: run}``, or a list of
    runs; a run is anything :func:`~course_utils.history.read_history` reads (a
    :class:`~course_utils.history.History`, a Keras ``History``, a
    :class:`~course_utils.overfitting.RunResult`, a ``history.json``). Every run must
    have recorded the same epochs and metrics. ``mean`` holds the mean of every metric
    over the runs, ``spread`` their standard deviation (``ddof=1``, the sample's), both
    as histories: ``mean.final("val_accuracy")``, ``plots.plot_history({"mean": mean})``.

    Examples
    --------
    >>> mean, spread = mean_over_seeds({0: {"loss": [1.0, 0.4]}, 1: {"loss": [1.2, 0.6]}})
    >>> mean["loss"], [round(s, 4) for s in spread["loss"]]
    ([1.1, 0.5], [0.1414, 0.1414])
    """
    if isinstance(runs, Mapping):
        named = {f"seed {seed}": run for seed, run in runs.items()}
    elif isinstance(runs, Sequence) and not isinstance(runs, str):
        named = {f"run {index}": run for index, run in enumerate(runs)}
    else:
        raise ValueError(f"runs: expected {{seed: run}} or a list of runs, got {type(runs).__name__}")
    if len(named) < 2:
        raise ValueError(f"runs: expected at least 2 runs to measure a spread, got {len(named)}")
    histories = {name: read_history(run, name=name) for name, run in named.items()}
    (first_name, first), *others = histories.items()
    for name, history in others:
        if history.epochs != first.epochs or sorted(history.metrics) != sorted(first.metrics):
            raise ValueError(
                f"runs: expected the same epochs and metrics in every run; {first_name} has "
                f"epochs {first.epochs} and {sorted(first.metrics)}, {name} has epochs "
                f"{history.epochs} and {sorted(history.metrics)} (did a run stop early?)")
    stacked = {m: np.array([h[m] for h in histories.values()]) for m in first.metrics}
    mean = History({"epoch": first.epochs, **{m: v.mean(axis=0) for m, v in stacked.items()}})
    spread = History({"epoch": first.epochs,
                      **{m: v.std(axis=0, ddof=1) for m, v in stacked.items()}})
    return mean, spread


# --------------------------------------------------------------------------- the reference run


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
