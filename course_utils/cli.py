"""The ``course`` command line.

Each subcommand lives in the module that does its work; that module exposes
``configure_parser(parser)`` and ``run_command(args) -> int``. This file only
registers them, so adding a command is one line in ``COMMANDS``.

Examples
--------
.. code-block:: console

    $ course doctor                 # device report
    $ course data --out data/fingers
    $ course train --profile cpu    # reference run; --resume continues a killed one
    $ course demo                   # what `make demo` runs
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from course_utils import __version__

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "doctor": ("course_utils.device", "report accelerators, versions and the runtime profile"),
    "data": ("course_utils.fingers", "generate the synthetic fingers set in the public layout"),
    "train": ("course_utils.training", "run the reference training end to end"),
    "release": ("course_utils.release", "generate the student notebooks from the masters"),
    "grade": ("course_utils.grading", "grade a class of submissions with nbgrader"),
    "demo": ("course_utils.demo", "device report, reference run and grading demo, with a summary"),
    "pretrain": ("course_utils.transfer", "train the transfer-learning base on its source task"),
}


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one sub-parser per command."""
    parser = argparse.ArgumentParser(
        prog="course", description="Deep-learning practice course: data, training, grading."
    )
    parser.add_argument("--version", action="version", version=f"course-utils {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module_name, help_text) in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        sub_parser.set_defaults(_module=module_name)
        _module(module_name).configure_parser(sub_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``course`` script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(_module(args._module).run_command(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _module(name: str):
    return importlib.import_module(name)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
