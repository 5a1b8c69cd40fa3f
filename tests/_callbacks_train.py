"""Train a tiny model with TrainingMonitor and EpochCheckpoint; the fault tests run it.

Usage: python _callbacks_train.py RUN_DIR --epochs N [--sleep S] [--resume] [--die-in-save N]

``--sleep`` makes each epoch last at least S seconds, so a test can kill the
process mid-training. ``--resume`` continues from the newest checkpoint.
``--die-in-save N`` kills the process with SIGKILL inside the N-th checkpoint
save, after the temporary file is written and before it is renamed: the worst
moment for a checkpoint writer. The last line printed is a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import time
from pathlib import Path

import numpy as np

from course_utils import callbacks, models
from course_utils.runtime.tf_setup import import_keras, set_seed

STEPS_PER_EPOCH = 4
BATCH_SIZE = 16


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--die-in-save", type=int, default=0)
    args = parser.parse_args()
    keras = import_keras()
    set_seed(0)
    rng = np.random.default_rng(0)
    x = rng.random((STEPS_PER_EPOCH * BATCH_SIZE, 16, 16, 1), dtype=np.float32)
    y = np.arange(len(x)) % 12
    checkpoint_dir = args.run_dir / "checkpoints"

    initial_epoch = 0
    latest = callbacks.find_latest_checkpoint(checkpoint_dir) if args.resume else None
    if latest is not None:
        path, initial_epoch = latest
        model = callbacks.load_checkpoint(path)
    else:
        model = models.build_fingers_cnn((16, 16, 1), 12, depth=1, width=4, dense_units=8, seed=0)
        models.compile_classifier(model)
    if args.die_in_save:
        _die_inside_save(model, args.die_in_save)

    class SlowEpochs(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            time.sleep(args.sleep)

    model.fit(
        x, y, batch_size=BATCH_SIZE, validation_data=(x[:16], y[:16]), epochs=args.epochs,
        initial_epoch=initial_epoch, verbose=0,
        callbacks=[
            callbacks.TrainingMonitor(args.run_dir),
            callbacks.EpochCheckpoint(checkpoint_dir, every=1, keep=2),
            SlowEpochs(),
        ],
    )
    print(json.dumps({"initial_epoch": initial_epoch,
                      "iterations": int(model.optimizer.iterations)}), flush=True)


def _die_inside_save(model, nth: int) -> None:
    """Make the ``nth`` ``model.save`` write its file completely, then SIGKILL the process."""
    original_save = model.save
    calls = []

    def save_then_die(filepath, *args, **kwargs):
        original_save(filepath, *args, **kwargs)
        calls.append(filepath)
        if len(calls) == nth:
            os.kill(os.getpid(), signal.SIGKILL)

    model.save = save_then_die


if __name__ == "__main__":
    main()
