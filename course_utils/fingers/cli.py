"""``course data``: write the synthetic set in the public layout.

Examples
--------
.. code-block:: console

    $ course data --profile smoke --out data/tiny
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Final

from course_utils import labels
from course_utils.fingers.layout import export_public_layout
from course_utils.fingers.loading import load_fingers
from course_utils.runtime import profiles

__all__ = ["DEFAULT_OUT", "configure_parser", "run_command"]

DEFAULT_OUT: Final = Path("data") / "fingers"


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``course data``.

    >>> p = argparse.ArgumentParser(); configure_parser(p)
    >>> p.parse_args(["--profile", "smoke"]).out
    'data/fingers'
    """
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    smoke = profiles.get_profile("smoke")
    n_smoke = smoke.train_size + smoke.val_size + smoke.test_size
    parser.epilog = (
        "examples:\n"
        f"  course data --profile smoke --out data/tiny   a small set ({n_smoke} images, "
        f"{smoke.image_size}x{smoke.image_size})\n"
        "  course data --overwrite                       replace data/fingers\n"
        "  course train --data data/fingers              then train on it\n"
    )
    parser.add_argument("--profile", choices=sorted(profiles.PROFILES),
                        help="runtime profile: image size and number of images "
                             "(default: chosen for this machine)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), metavar="DIR",
                        help=f"folder to write train/ and test/ to (default: {DEFAULT_OUT})")
    parser.add_argument("--seed", type=int, help="random seed (default: the profile's)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the folder if it is not empty")


def _check_can_write_beside(target: Path) -> None:
    """Raise ``OSError`` naming the folder when ``target`` could not be written there."""
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryDirectory(prefix=f".{target.name}.", dir=parent).cleanup()
    except OSError as exc:
        raise OSError(
            f"{parent}: cannot write the data set there ({exc.strerror or exc}); expected a "
            f"folder you can write to (choose one with --out)"
        ) from exc


def run_command(args: argparse.Namespace) -> int:
    """``course data``: export the synthetic set in the public layout and say where.

    Returns 0 on success; on a bad argument or folder prints the error (no
    traceback) to stderr and returns 2.
    """
    try:
        target = Path(args.out)
        if target.is_dir() and any(target.iterdir()) and not args.overwrite:
            raise FileExistsError(
                f"{target}: folder is not empty; pass --overwrite to replace it, "
                f"or choose another folder with --out"
            )
        _check_can_write_beside(target)  # before the profile (it may load TensorFlow) and
        profile = profiles.get_profile(args.profile)  # the images, which take a while
        data = load_fingers(profile, seed=args.seed)
        out = export_public_layout(target, data, overwrite=args.overwrite)
    except (ValueError, OSError) as exc:
        print(f"course data: error: {exc}", file=sys.stderr)
        return 2
    n_train = len(data.y_train) + len(data.y_val)
    n_test = len(data.y_test)
    size = profile.image_size
    print(f"Wrote {n_train + n_test} synthetic images ({size}x{size}, profile {profile.name}):")
    print(f"  {out / 'train'}  {n_train} files")
    print(f"  {out / 'test'}  {n_test} files")
    print(f"Files are named {labels.FILENAME_PATTERN}.")
    print(f"Train on them with: course train --data {out}")
    return 0
