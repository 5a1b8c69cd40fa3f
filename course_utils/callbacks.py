"""Training monitor and epoch checkpoint: Keras callbacks for step 5 of the workflow.

Both are ``keras.callbacks.Callback`` subclasses; pass them to
``model.fit(..., callbacks=[...])``. Everything they write goes through
:mod:`course_utils.runtime.io` (a temporary file, then one rename), so a run killed at
any moment leaves only complete files behind, and the next run removes the
temporaries a killed one could not.

* :class:`TrainingMonitor` writes ``history.json`` and ``curves.png`` after
  every epoch, so the curves can be watched while a run trains.
* :class:`EpochCheckpoint` saves the whole model (weights, optimizer state and the
  random state of its layers, such as dropout's) as ``epoch_NNNN.keras`` every
  ``every`` epochs and keeps the last ``keep``.
* :func:`find_latest_checkpoint` and :func:`load_checkpoint` resume a run::

      latest = find_latest_checkpoint(run_dir / "checkpoints")
      if latest is not None:
          path, initial_epoch = latest
          model = load_checkpoint(path)
      model.fit(..., epochs=12, initial_epoch=initial_epoch, callbacks=[...])

Epochs are counted from 1 in file names and in ``history["epoch"]``:
``epoch_0003.keras`` holds the model after three epochs, so ``initial_epoch=3``
continues with the fourth.

Why not ``keras.callbacks.ModelCheckpoint`` and ``CSVLogger``? Neither writes
atomically, ``ModelCheckpoint`` can neither save every N epochs nor prune old
files, and ``CSVLogger`` draws no curves. And why not ``BackupAndRestore``, which can
save mid-epoch? It restarts the interrupted epoch from its first batch with the
weights of mid-epoch, so some batches are trained twice and the resumed run no longer
matches an uninterrupted one; neither it nor ``model.save`` keeps the dropout layers'
random state, which :class:`EpochCheckpoint` does.

This module imports Keras (and so TensorFlow) when it loads: its classes are ordinary
Keras subclasses. ``import course_utils`` stays light because it loads this module
only on first use of ``course_utils.callbacks``.

Examples
--------
>>> import tempfile, pathlib
>>> from course_utils.callbacks import EpochCheckpoint, TrainingMonitor
>>> run_dir = pathlib.Path(tempfile.mkdtemp())
>>> monitor = TrainingMonitor(run_dir)
>>> checkpoint = EpochCheckpoint(run_dir / "checkpoints", every=2, keep=3)
>>> isinstance(monitor, keras.callbacks.Callback)
True
>>> find_latest_checkpoint(run_dir / "checkpoints") is None
True
"""

from __future__ import annotations

import json
import math
import os
import re
import time
import warnings
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from course_utils.history import History, read_history
from course_utils.models import current_learning_rate
from course_utils.runtime import io
from course_utils.runtime.tf_setup import import_keras

keras = import_keras()  # quietly: TensorFlow's start-up log stays hidden

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = [
    "CHECKPOINT_PATTERN",
    "CURVES_FILE",
    "HISTORY_FILE",
    "STATE_MEMBER",
    "EpochCheckpoint",
    "TrainingMonitor",
    "find_latest_checkpoint",
    "load_checkpoint",
    "read_checkpoint_state",
]

HISTORY_FILE = "history.json"
CURVES_FILE = "curves.png"
#: Names of complete checkpoints; temporaries (``.epoch_0003.<random>.tmp.keras``) never match.
CHECKPOINT_PATTERN = re.compile(r"^epoch_(?P<epoch>\d+)\.keras$")
#: The member a checkpoint (a zip file) carries beside Keras' own: the random state.
STATE_MEMBER = "course_training_state.json"


class TrainingMonitor(keras.callbacks.Callback):
    """Write the training history and the learning curves after every epoch.

    After each epoch the callback atomically rewrites

    * ``run_dir/history.json``: ``{"epoch": [1, 2, ...], "loss": [...],
      "accuracy": [...], "val_loss": [...], ...}``, one value per epoch for every
      metric Keras logs, plus ``learning_rate`` (the optimizer's current rate) and
      ``epoch_seconds`` (wall time since the previous epoch ended, or since ``fit``
      began: validation and set-up included; their sum is the run's training time,
      over every resume);
    * ``run_dir/curves.png`` (when ``plot``): loss and accuracy per epoch,
      training solid and validation dashed.

    Every list has one entry per recorded epoch; a metric missing in some epoch
    is ``NaN`` there (as is a diverged loss; Python's ``json`` reads both back).

    When ``fit`` starts with ``initial_epoch=k > 0`` (a resumed run), the
    existing ``history.json`` is loaded and cut to its first ``k`` epochs, so
    the history goes on where the checkpoint left off; epochs the killed run
    recorded after its last checkpoint are dropped and trained again. A run
    starting at epoch 0 starts a new history.

    The history is also available as the ``history`` attribute, a
    :class:`~course_utils.history.History`; :func:`~course_utils.history.read_history`
    reads the file back.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> from course_utils import models
    >>> from course_utils.callbacks import TrainingMonitor
    >>> run_dir = pathlib.Path(tempfile.mkdtemp())
    >>> model = models.compile_classifier(
    ...     models.build_fingers_cnn((16, 16, 1), 12, depth=1, width=4, seed=0))
    >>> x, y = np.zeros((8, 16, 16, 1), "float32"), np.arange(8)
    >>> _ = model.fit(x, y, epochs=2, verbose=0, callbacks=[TrainingMonitor(run_dir)])
    >>> io.read_json(run_dir / "history.json")["epoch"]
    [1, 2]
    >>> sorted(p.name for p in run_dir.iterdir())
    ['curves.png', 'history.json']
    """

    def __init__(self, run_dir: str | os.PathLike[str], *, plot: bool = True) -> None:
        super().__init__()
        self.run_dir = Path(run_dir)
        if self.run_dir.exists() and not self.run_dir.is_dir():
            raise ValueError(f"run_dir: {self.run_dir} exists and is not a folder")
        self.plot = bool(plot)
        self.history = History()
        self._started = False
        self._epoch_start: float | None = None

    @property
    def history_path(self) -> Path:
        """Where the history is written: ``run_dir/history.json``."""
        return self.run_dir / HISTORY_FILE

    @property
    def curves_path(self) -> Path:
        """Where the curves are drawn: ``run_dir/curves.png``."""
        return self.run_dir / CURVES_FILE

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._epoch_start = time.perf_counter()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for name in (HISTORY_FILE, CURVES_FILE):
            _remove_stale_temporaries(self.run_dir, name)
        self._started = False

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._begin(epoch)

    def _begin(self, epoch: int) -> None:
        if not self._started:  # the first epoch of this fit() is its initial_epoch
            self._started = True
            self.history = self._previous_history(epoch) if epoch > 0 else History()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._begin(epoch)
        record = {key: _to_float(value) for key, value in (logs or {}).items()}
        if self._epoch_start is not None:
            record.setdefault("epoch_seconds", time.perf_counter() - self._epoch_start)
        if "learning_rate" not in record:
            learning_rate = current_learning_rate(getattr(self.model, "optimizer", None))
            if learning_rate is not None:
                record["learning_rate"] = learning_rate
        _append_epoch(self.history, epoch + 1, record)
        io.write_json(self.history_path, self.history)
        if self.plot:
            from course_utils import plots

            plots.save_figure(_plot_curves(self.history), self.curves_path)
        self._epoch_start = time.perf_counter()  # the next epoch's time starts here

    def _previous_history(self, initial_epoch: int) -> History:
        """The saved history cut to epochs ``1..initial_epoch``."""
        if not self.history_path.exists():
            warnings.warn(
                f"{self.history_path} not found: the history of this resumed run starts at "
                f"epoch {initial_epoch + 1}", RuntimeWarning, stacklevel=2,
            )
            return History()
        saved = read_history(self.history_path, name=str(self.run_dir))
        keep = [i for i, done in enumerate(saved["epoch"]) if done <= initial_epoch]
        history = History({key: [values[i] for i in keep] for key, values in saved.items()})
        if history["epoch"] != list(range(1, initial_epoch + 1)):
            warnings.warn(
                f"{self.history_path} holds epochs {history['epoch']}, not all of 1..{initial_epoch}: "
                f"the missing ones stay missing", RuntimeWarning, stacklevel=2,
            )
        return history


class EpochCheckpoint(keras.callbacks.Callback):
    """Save the model every ``every`` epochs as ``epoch_NNNN.keras``; keep the last ``keep``.

    A checkpoint is the whole model as ``model.save`` writes it: architecture,
    weights and optimizer state (its ``iterations`` and slot variables such as
    Adam's moments), plus what ``model.save`` leaves out: the state of the
    layers' random seed generators (the next dropout masks), in a member
    :data:`STATE_MEMBER` of the same file. So :func:`load_checkpoint` resumes
    training exactly where it stopped: the resumed epochs draw the dropout masks an
    uninterrupted run would. ``NNNN`` is the number of epochs done (1-based), the
    ``initial_epoch`` to resume with.

    Each file is written to a hidden temporary next to it and renamed into
    place, so ``epoch_*.keras`` files are always complete. Older checkpoints
    beyond the last ``keep`` are deleted (``keep=None`` keeps all).

    A ``fit`` that starts at ``initial_epoch=k`` takes the folder over: the
    checkpoints after epoch ``k`` (left by an older or abandoned run; for
    ``k=0``, all of them) are removed first, as are temporaries a killed run
    left behind.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> from course_utils import models
    >>> from course_utils.callbacks import EpochCheckpoint
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> model = models.compile_classifier(
    ...     models.build_fingers_cnn((16, 16, 1), 12, depth=1, width=4, seed=0))
    >>> x, y = np.zeros((8, 16, 16, 1), "float32"), np.arange(8)
    >>> _ = model.fit(x, y, epochs=5, verbose=0,
    ...               callbacks=[EpochCheckpoint(folder, every=2, keep=1)])
    >>> sorted(p.name for p in folder.iterdir())
    ['epoch_0004.keras']
    """

    def __init__(
        self, checkpoint_dir: str | os.PathLike[str], *, every: int = 1, keep: int | None = 3
    ) -> None:
        super().__init__()
        self.checkpoint_dir = Path(checkpoint_dir)
        if self.checkpoint_dir.exists() and not self.checkpoint_dir.is_dir():
            raise ValueError(f"checkpoint_dir: {self.checkpoint_dir} exists and is not a folder")
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every: expected an integer >= 1 (save every N epochs), got {every!r}")
        if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 1):
            raise ValueError(f"keep: expected an integer >= 1 or None (keep all), got {keep!r}")
        self.every = every
        self.keep = keep
        self.last_saved: Path | None = None
        self._started = False

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        for tmp in self.checkpoint_dir.glob(".epoch_*.tmp.keras"):
            tmp.unlink(missing_ok=True)
        self._started = False

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if not self._started:  # the first epoch of this fit() is its initial_epoch
            self._started = True
            for path, done in _list_checkpoints(self.checkpoint_dir):
                if done > epoch:
                    path.unlink(missing_ok=True)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.on_epoch_begin(epoch)
        done = epoch + 1
        if done % self.every:
            return
        target = self.checkpoint_dir / f"epoch_{done:04d}.keras"
        with io.atomic_path(target) as tmp:
            self.model.save(tmp)
            state = {"epoch": done, "random_state": [
                _to_int_list(v) for v in _random_state_variables(self.model)]}
            with zipfile.ZipFile(tmp, "a") as zf:
                zf.writestr(STATE_MEMBER, json.dumps(state))
            with open(tmp, "rb") as fh:  # the bytes are on disk before the rename
                os.fsync(fh.fileno())
        self.last_saved = target
        if self.keep is not None:
            for path, _ in _list_checkpoints(self.checkpoint_dir)[: -self.keep]:
                path.unlink(missing_ok=True)


def find_latest_checkpoint(checkpoint_dir: str | os.PathLike[str]) -> tuple[Path, int] | None:
    """The newest ``epoch_NNNN.keras`` in ``checkpoint_dir`` and its epoch ``NNNN``.

    Returns ``None`` when the folder does not exist or holds no checkpoint
    (a fresh run). Temporaries of a killed save never count.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> find_latest_checkpoint(folder) is None
    True
    >>> for name in ("epoch_0002.keras", "epoch_0010.keras", ".epoch_0011.x1.tmp.keras"):
    ...     _ = (folder / name).write_bytes(b"")
    >>> path, epoch = find_latest_checkpoint(folder)
    >>> path.name, epoch
    ('epoch_0010.keras', 10)
    """
    folder = Path(checkpoint_dir)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"checkpoint_dir: {folder} is not a folder")
    checkpoints = _list_checkpoints(folder)
    return checkpoints[-1] if checkpoints else None


def load_checkpoint(path: str | os.PathLike[str]) -> keras.Model:
    """Load a checkpoint: the compiled model with its weights, optimizer and random state.

    The random state (the layers' seed generators, see :class:`EpochCheckpoint`) is
    set back too; a checkpoint without it (written by ``model.save`` or an older
    course-utils) loads with a ``RuntimeWarning`` that says the resumed epochs will
    draw other dropout masks than an uninterrupted run.

    Resume with ``model.fit(..., initial_epoch=epoch)``, ``epoch`` being the
    number in the file name (see :func:`find_latest_checkpoint`). Raises
    ``FileNotFoundError`` for a missing file and ``ValueError`` naming the file
    when it is not a readable ``.keras`` model.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> from course_utils import models
    >>> from course_utils.callbacks import EpochCheckpoint
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> model = models.compile_classifier(
    ...     models.build_fingers_cnn((16, 16, 1), 12, depth=1, width=4, seed=0))
    >>> x, y = np.zeros((8, 16, 16, 1), "float32"), np.arange(8)
    >>> _ = model.fit(x, y, epochs=2, batch_size=4, verbose=0, callbacks=[EpochCheckpoint(folder)])
    >>> path, epoch = find_latest_checkpoint(folder)
    >>> restored = load_checkpoint(path)
    >>> epoch, int(restored.optimizer.iterations)
    (2, 4)
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"checkpoint {p} does not exist")
    if p.is_dir() or p.suffix != ".keras":
        raise ValueError(f"checkpoint {p}: expected a .keras file written by EpochCheckpoint")
    try:
        model = keras.saving.load_model(p)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise ValueError(f"checkpoint {p}: not a readable Keras model file ({exc})") from exc
    saved = read_checkpoint_state(p).get("random_state")
    variables = _random_state_variables(model)
    if saved is None or len(saved) != len(variables):
        if variables:
            warnings.warn(
                f"checkpoint {p} holds no random state for this model's {len(variables)} seed "
                f"generator(s): the resumed epochs draw other dropout masks than an "
                f"uninterrupted run, so their results differ from its", RuntimeWarning,
                stacklevel=2,
            )
        return model
    for variable, value in zip(variables, saved, strict=True):
        variable.assign(value)
    return model


def read_checkpoint_state(path: str | os.PathLike[str]) -> dict[str, Any]:
    """What :class:`EpochCheckpoint` stored beside the model: ``{"epoch", "random_state"}``.

    An empty dict for a checkpoint without it (one written by ``model.save`` alone).

    >>> import tempfile, pathlib, zipfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "epoch_0001.keras"
    >>> with zipfile.ZipFile(path, "w") as zf:
    ...     zf.writestr(STATE_MEMBER, '{"epoch": 1, "random_state": [[3, 8]]}')
    >>> read_checkpoint_state(path)
    {'epoch': 1, 'random_state': [[3, 8]]}
    """
    p = Path(path)
    try:
        with zipfile.ZipFile(p) as zf:
            if STATE_MEMBER not in zf.namelist():
                return {}
            state = json.loads(zf.read(STATE_MEMBER))
    except (OSError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        raise ValueError(f"checkpoint {p}: its training state cannot be read ({exc})") from exc
    if not isinstance(state, dict):
        raise ValueError(f"checkpoint {p}: {STATE_MEMBER} must hold a JSON object")
    return state


def _random_state_variables(model: Any) -> list[Any]:
    """The model's seed-generator states, in layer order: its variables that are no weights."""
    weights = {id(v) for v in model.weights}
    return [v for v in model.variables if id(v) not in weights]


def _to_int_list(variable: Any) -> list[int]:
    return [int(x) for x in variable.numpy().ravel()]


def _list_checkpoints(folder: Path) -> list[tuple[Path, int]]:
    """Complete checkpoints in ``folder``, oldest first."""
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = CHECKPOINT_PATTERN.match(path.name)
        if match and path.is_file():
            found.append((path, int(match["epoch"])))
    return sorted(found, key=lambda item: item[1])


def _remove_stale_temporaries(folder: Path, target_name: str) -> None:
    """Delete what :func:`io.atomic_path` left for ``target_name`` when a run was killed."""
    stem, suffix = os.path.splitext(target_name)
    for tmp in folder.glob(f".{stem}.*.tmp{suffix}"):
        tmp.unlink(missing_ok=True)


def _to_float(value: Any) -> float:
    if hasattr(value, "numpy"):
        value = value.numpy()
    return float(value)


def _append_epoch(history: dict[str, list[Any]], epoch: int, record: dict[str, float]) -> None:
    """Append one epoch, keeping every list as long as ``history["epoch"]``."""
    recorded = len(history["epoch"])
    for key in record:
        if key not in history:
            history[key] = [math.nan] * recorded
    history["epoch"].append(epoch)
    for key, values in history.items():
        if key != "epoch":
            values.append(record.get(key, math.nan))


def _plot_curves(history: dict[str, list[Any]]) -> Figure:
    """Loss and accuracy per epoch: training solid, validation dashed."""
    from course_utils import plots

    metrics = [m for m in ("loss", "accuracy") if m in history or f"val_{m}" in history]
    return plots.plot_history({"run": history}, metrics=metrics or ("loss",))
