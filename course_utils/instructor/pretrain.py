"""``course pretrain``: train the base network on lesson 04's source task.

The source task differs from lesson 04's target task in what it asks and in how the
images look: it is *counting the raised fingers* (6 classes, 0 to 5; which hand is
never asked) of hands drawn in :data:`course_utils.fingers.ALT_STYLE` at 32x32
pixels, while the target asks count *and* hand (12 classes) in the usual style.
:class:`PretrainConfig`'s defaults are the recipe of the shipped base,
:func:`source_task_data` draws its images and :func:`pretrain_base` trains it and
writes weights and record.

The images' seeds come from the course's one seed scheme:
``derive_seed(config.seed, SEED_KEY, 0)`` for training and ``(..., 1)`` for validation
(:data:`SEED_KEY`, listed in :mod:`course_utils.runtime.seeds`).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Final

import numpy as np

from course_utils import labels
from course_utils.runtime import io
from course_utils.runtime.seeds import derive_seed
from course_utils.transfer.base import (
    BASE_FILE,
    BASE_IMAGE_SIZE,
    SOURCE_CLASSES,
    base_weights_path,
    build_base_architecture,
    file_sha256,
    record_path,
)

__all__ = [
    "SEED_KEY",
    "SOURCE_TASK",
    "PretrainConfig",
    "configure_parser",
    "pretrain_base",
    "run_command",
    "source_task_data",
]


#: The key of the source task's images in the course's seed scheme (``derive_seed``).
SEED_KEY: Final = 4000
#: The source task in words, written into every record.
SOURCE_TASK: Final = (f"count the raised fingers ({SOURCE_CLASSES} classes, 0 to 5; the hand is "
                      f"not asked) of fingers.ALT_STYLE hands at {BASE_IMAGE_SIZE}x{BASE_IMAGE_SIZE} "
                      f"pixels")


@dataclasses.dataclass(frozen=True)
class PretrainConfig:
    """How the shipped base was trained; the defaults are the shipped run's recipe.

    The source data is :data:`course_utils.fingers.ALT_STYLE` at 32x32 pixels,
    ``images`` for training and ``val_images`` for validation, labelled by finger
    count only (:data:`SOURCE_TASK`), drawn with seeds derived from ``seed`` and
    :data:`SEED_KEY` (never the target task's).
    """

    images: int = 12_000
    val_images: int = 1_200
    epochs: int = 20
    batch_size: int = 64
    learning_rate: float = 1e-3
    augment: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("images", "val_images", "epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive integer, got {value!r}")
        if self.images < labels.NUM_CLASSES:
            raise ValueError(f"images: expected at least {labels.NUM_CLASSES} (one per class)")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate: expected a positive number, got {self.learning_rate!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed: expected an integer >= 0, got {self.seed!r}")


def source_task_data(
    config: PretrainConfig = PretrainConfig(),
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The source task's images and labels ``(x, y, x_val, y_val)`` of a pretraining recipe.

    ALT_STYLE fingers at :data:`BASE_IMAGE_SIZE` pixels, ``config.images`` for
    training and ``config.val_images`` for validation; the labels are finger counts
    0 to 5 (:data:`SOURCE_TASK`). The seeds are ``derive_seed(config.seed, SEED_KEY, 0)``
    and ``(..., 1)``: never those of the target task.

    Examples
    --------
    >>> x, y, x_val, y_val = source_task_data(PretrainConfig(images=24, val_images=12))
    >>> x.shape, x_val.shape, sorted(set(y.tolist()))
    ((24, 32, 32), (12, 32, 32), [0, 1, 2, 3, 4, 5])
    """
    x, y, x_val, y_val = _source_images(config)
    return x, labels.to_count(y), x_val, labels.to_count(y_val)


def _source_images(config: PretrainConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The source images with their 12-class labels (a flip swaps the hand, so the
    augmentation needs them; the count is read off afterwards)."""
    from course_utils import fingers

    if not isinstance(config, PretrainConfig):
        raise ValueError(f"config: expected a PretrainConfig, got {type(config).__name__}")
    size = BASE_IMAGE_SIZE
    x, y = fingers.make_fingers(config.images, image_size=size,
                                seed=derive_seed(config.seed, SEED_KEY, 0), style=fingers.ALT_STYLE)
    x_val, y_val = fingers.make_fingers(config.val_images, image_size=size,
                                        seed=derive_seed(config.seed, SEED_KEY, 1),
                                        style=fingers.ALT_STYLE)
    return x, y, x_val, y_val


def pretrain_base(
    out_path: str | os.PathLike[str],
    config: PretrainConfig = PretrainConfig(),
    *,
    verbose: int | str = 0,
    deterministic: bool = False,
) -> dict[str, Any]:
    """Train the base on the source task and write its weights to ``out_path``.

    Trains :func:`build_base_architecture` with :data:`SOURCE_CLASSES` outputs to
    count the fingers of ALT_STYLE images (augmented when ``config.augment``) with :func:`course_utils.training.fit_model`, seeded with
    ``config.seed``; writes the
    weights (without optimizer state) atomically to ``out_path`` (a name ending in
    ``.weights.h5``) and a record ``<out_path stem>.json`` beside it. Returns that
    record: the config, validation accuracy, seconds, size and SHA-256.

    ``deterministic=True`` turns on TensorFlow's op determinism for the rest of the
    process (``course pretrain`` does): the same config on the same machine and
    versions then writes the same bytes. It slows some operations down and cannot be
    turned off again, so library callers leave it off.

    Examples
    --------
    >>> record = pretrain_base("runs/pretrain/base.weights.h5",
    ...                        PretrainConfig(images=120, epochs=1))   # doctest: +SKIP
    >>> sorted(record)                                                 # doctest: +SKIP
    ['bytes', 'config', 'deterministic', 'file', 'seconds', 'sha256', 'source_task', 'val_accuracy', 'versions']
    """
    from course_utils import datasets
    from course_utils.training import fit_model

    out = Path(out_path)
    if not out.name.endswith(".weights.h5"):
        raise ValueError(f"out_path: expected a file name ending in .weights.h5, got {out.name!r}")
    if not isinstance(config, PretrainConfig):
        raise ValueError(f"config: expected a PretrainConfig, got {type(config).__name__}")
    if deterministic:
        from course_utils.runtime.tf_setup import import_tensorflow

        import_tensorflow().config.experimental.enable_op_determinism()
    x, y, x_val, y_val = _source_images(config)

    def counts(images: Any, classes: Any) -> tuple[Any, Any]:
        return images, classes // 2  # labels.to_count, on a batch: the hand is dropped

    def train_ds() -> Any:  # made once seeded; augmented with 12-class labels, then counted
        return datasets.make_dataset(x, y, batch_size=config.batch_size, training=True,
                                     augment=config.augment, seed=config.seed).map(counts)

    val_ds = datasets.make_dataset(x_val, labels.to_count(y_val), batch_size=256, training=False)
    start = time.perf_counter()
    history = fit_model(
        lambda: build_base_architecture(num_classes=SOURCE_CLASSES), train_ds, val_ds,
        epochs=config.epochs, learning_rate=config.learning_rate, seed=config.seed,
        verbose=verbose)
    seconds = time.perf_counter() - start
    model = history.model
    # A fresh, uncompiled copy holds the weights only (no optimizer state): a smaller file.
    shipped = build_base_architecture(num_classes=SOURCE_CLASSES)
    shipped.set_weights(model.get_weights())
    with tempfile.TemporaryDirectory() as scratch:  # Keras insists on the .weights.h5 suffix
        staged = Path(scratch) / BASE_FILE
        shipped.save_weights(staged)
        io.write_bytes(out, staged.read_bytes())
    record = {
        "file": str(out),
        "sha256": file_sha256(out),
        "bytes": out.stat().st_size,
        "val_accuracy": history.final("val_accuracy"),
        "seconds": round(seconds, 1),
        "source_task": SOURCE_TASK,
        "config": dataclasses.asdict(config),
        "deterministic": bool(deterministic),
        "versions": _versions(),
    }
    io.write_json(record_path(out), record)
    return record


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``course pretrain``.

    >>> p = argparse.ArgumentParser(); configure_parser(p)
    >>> p.parse_args([]).out == str(Path("runs") / "pretrain" / BASE_FILE)
    True
    """
    defaults = PretrainConfig()
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        "examples:\n"
        f"  course pretrain                         write runs/pretrain/{BASE_FILE}\n"
        "  course pretrain --epochs 2 --out /tmp/base.weights.h5   a quick try elsewhere\n"
    )
    parser.add_argument("--out", default=str(Path("runs") / "pretrain" / BASE_FILE), metavar="FILE",
                        help="weights file to write (default: %(default)s); the shipped file "
                             "is never overwritten")
    parser.add_argument("--images", type=int, default=defaults.images,
                        help="source images for training (default: %(default)s)")
    parser.add_argument("--val-images", type=int, default=defaults.val_images,
                        help="source images for validation (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=defaults.epochs,
                        help="epochs (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=defaults.seed,
                        help="random seed (default: %(default)s)")


def run_command(args: argparse.Namespace) -> int:
    """``course pretrain``: train the base on the source task (counting fingers), print its SHA-256."""
    try:
        out = Path(args.out)
        if out.resolve() == base_weights_path().resolve():
            raise ValueError(
                f"{out}: this is the shipped file; write elsewhere, then copy it into "
                f"course_utils/assets/ together with its new BASE_SHA256"
            )
        config = PretrainConfig(images=args.images, val_images=args.val_images,
                                epochs=args.epochs, seed=args.seed)
        record = pretrain_base(out, config, verbose=2 if not sys.stdout.isatty() else 1,
                               deterministic=True)
    except (ValueError, OSError) as exc:
        print(f"course pretrain: error: {exc}", file=sys.stderr)
        return 2
    print(f"Base pretrained to count the fingers of {config.images} ALT_STYLE images in "
          f"{record['seconds']} s: validation accuracy {record['val_accuracy']:.1%}.")
    print(f"Weights: {record['file']} ({record['bytes'] / 1e6:.2f} MB)")
    print(f"SHA-256: {record['sha256']}")
    print("To ship it, copy it to course_utils/assets/ and set BASE_SHA256 in "
          "course_utils/transfer/base.py to that value.")
    return 0


# --------------------------------------------------------------------------- helpers


def _versions() -> dict[str, str]:
    """The versions that decide the bytes of a pretrained file (same versions, same bytes)."""
    import platform

    from course_utils.runtime.tf_setup import import_keras, import_tensorflow

    return {"python": platform.python_version(), "tensorflow": import_tensorflow().__version__,
            "keras": import_keras().__version__, "numpy": np.__version__,
            "machine": platform.machine()}
