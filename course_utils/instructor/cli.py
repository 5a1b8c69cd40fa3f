"""The ``course`` command line.

Each subcommand lives in the module that does its work; that module exposes
``configure_parser(parser)`` and ``run_command(args) -> int``, and puts a few
examples in the parser's epilog. This file only registers them, so adding a command
is one line in ``COMMANDS``. Only the module of the command being run is imported,
so ``course train --data missing/`` fails in a fraction of a second and a command
never depends on another's imports.

Examples
--------
.. code-block:: console

    $ course doctor                 # device report
    $ course data --out data/fingers
    $ course train --profile cpu    # reference run; --resume continues a killed one
    $ course demo                   # what `make demo` runs
    $ course train --help           # every command's help ends with examples
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from course_utils import __version__

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "doctor": ("course_utils.runtime.doctor", "report accelerators, versions and the runtime profile"),
    "data": ("course_utils.fingers", "generate the synthetic fingers set in the public layout"),
    "train": ("course_utils.reference", "run the reference training end to end"),
    "release": ("course_utils.instructor.release", "generate the student notebooks from the masters"),
    "grade": ("course_utils.instructor.grading", "grade a class of submissions with nbgrader"),
    "demo": ("course_utils.instructor.demo", "device report, reference run and grading demo, with a summary"),
    "pretrain": ("course_utils.instructor.pretrain", "train the transfer-learning base on its source task"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The top-level parser with one sub-parser per command.

    ``only`` names the one command whose arguments are configured (its module is
    imported); the others are listed with their one-line help. ``None`` configures all.

    >>> build_parser(only="train").parse_args(["train", "--epochs", "3"]).epochs
    3
    """
    parser = argparse.ArgumentParser(
        prog="course", description="Deep-learning practice course: data, training, grading.",
        epilog="Run `course COMMAND --help` for a command's options and examples.",
    )
    parser.add_argument("--version", action="version", version=f"course-utils {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module_name, help_text) in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text,
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
        sub_parser.set_defaults(_module=module_name)
        if only is None or name == only:
            _module(module_name).configure_parser(sub_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``course`` script; returns the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(only=_command_named(args_list))
    args = parser.parse_args(args_list)
    try:
        return int(_module(args._module).run_command(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _command_named(argv: Sequence[str]) -> str:
    """The command ``argv`` runs ("" when none: top-level help, version or a typo).

    >>> _command_named(["--version"]), _command_named(["train", "--resume"])
    ('', 'train')
    """
    first = next((arg for arg in argv if not arg.startswith("-")), "")
    return first if first in COMMANDS else ""


def _module(name: str):
    return importlib.import_module(name)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
