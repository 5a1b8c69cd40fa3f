"""``course grade``: its arguments, progress bar and summary."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from course_utils.instructor.grading.gradebook import check_db_url
from course_utils.instructor.grading.grader import RERUN_MODES, grade_submissions
from course_utils.instructor.grading.reports import format_summary
from course_utils.instructor.grading.results import StudentGrade
from course_utils.instructor.grading.worker import NOTEBOOK_TIMEOUT

if TYPE_CHECKING:
    from course_utils.instructor.grading.bubblewrap import Limits

#: The limit options of ``course grade``: option -> (field of the sandbox's ``Limits``,
#: what one unit typed is in the field's unit, the type typed, metavar, help).
LIMIT_OPTIONS: Final = {
    "--memory": ("memory_bytes", 2**30, float, "GIB", "memory of each process of a "
                 "submission's kernel, in GiB; a larger allocation raises MemoryError"),
    "--processes": ("processes", 1, int, "N", "processes and threads of a submission's "
                    "kernel together"),
    "--cpu-seconds": ("cpu_seconds", 1, int, "S", "CPU seconds of each process of a "
                      "submission's kernel; past them the kernel is killed"),
    "--disk": ("disk_bytes", 2**20, float, "MIB", "size of a submission's private scratch "
               "folder, in MiB (it lives in memory)"),
    "--output": ("output_bytes", 2**20, float, "MIB", "output a graded notebook keeps, in "
                 "MiB; more is cut, saying so"),
}

EXAMPLES = """\
examples:
  course grade assignments/submitted --assignment 00_workflow
      grade what nbgrader collected, into the course's own gradebook (the Formgrader's)
  course grade ~/inbox/00 --assignment 00_workflow --jobs 4 --out runs/grading
      a folder of <student>.ipynb / <student>.zip files, into another course folder
  course grade assignments/submitted --assignment 00_workflow --rerun resume
      after a run was stopped: grade only the students without a result
  course grade subs/ --assignment 00_workflow --db postgresql://grader@db.example/course
      a shared gradebook (the postgres extra; in a clone: pip install -e '.[postgres]')
  course grade subs/ --assignment 03_momentum --memory 4 --processes 128 --cpu-seconds 900
      tighter limits per submission (each option keeps the sandbox's default if left out)
"""


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``course grade``.

    >>> p = argparse.ArgumentParser(); configure_parser(p)
    >>> a = p.parse_args(["subs", "--assignment", "00_workflow", "--jobs", "2"])
    >>> a.submissions, a.jobs, a.out, a.rerun, a.unsandboxed
    ('subs', 2, None, 'merge', False)
    """
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EXAMPLES
    parser.add_argument("submissions", metavar="SUBMISSIONS",
                        help="nbgrader's submitted/ tree, or a folder of <student>.ipynb and "
                             "<student>.zip files (only read, never changed)")
    parser.add_argument("--assignment", required=True, metavar="LESSON",
                        help="the lesson to grade, e.g. 00_workflow")
    parser.add_argument("--jobs", type=int, metavar="N",
                        help="submissions graded at once (default: the number of cores)")
    parser.add_argument("--course", metavar="DIR",
                        help="the nbgrader course root, the folder with nbgrader_config.py and "
                             "source/ (default: assignments/ found in the working folder or "
                             "one of its parents)")
    parser.add_argument("--out", metavar="DIR",
                        help="where graded notebooks, feedback and reports go, an nbgrader "
                             "course root (default: the course root, where the Formgrader "
                             "looks); reports in DIR/reports/LESSON/")
    parser.add_argument("--db", metavar="URL",
                        help="gradebook database URL, e.g. postgresql://user@host/course "
                             "(default: the gradebook of the --out folder, its gradebook.db)")
    parser.add_argument("--rerun", choices=RERUN_MODES, default="merge",
                        help="earlier results of this lesson: merge (default: regrade these "
                             "submissions, keep other students), replace (remove them all "
                             "first), resume (skip students whose notebook already has a "
                             "result, e.g. after a stopped run)")
    parser.add_argument("--timeout", type=int, metavar="S",
                        help="seconds per cell (default: Execute.timeout of nbgrader_config.py)")
    parser.add_argument("--notebook-timeout", type=float, default=NOTEBOOK_TIMEOUT, metavar="S",
                        help=f"seconds per submission before it is stopped "
                             f"(default: {NOTEBOOK_TIMEOUT})")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="grade on a Dask cluster: its scheduler's address, e.g. "
                             "tcp://10.0.0.5:8786 (in a clone: pip install -e '.[cluster]'; the "
                             "workers need course-utils and bubblewrap); each submission is one "
                             "task, retried once if its machine dies (default: grade here)")
    parser.add_argument("--unsandboxed", action="store_true",
                        help="grade without the sandbox where none can run (macOS, a locked-"
                             "down host): student code then runs with your rights; the report "
                             "records it (the limits below need the sandbox)")
    limits = parser.add_argument_group(
        "limits per submission (enforced by the sandbox; an error with --unsandboxed)")
    from course_utils.instructor.grading.bubblewrap import Limits

    defaults = Limits()
    for option, (field, unit, kind, metavar, text) in LIMIT_OPTIONS.items():
        limits.add_argument(option, type=_limit_type(option, unit, kind), metavar=metavar,
                            help=f"{text} (default: {getattr(defaults, field) / unit:g})")


def limits_from_args(args: argparse.Namespace) -> Limits | None:
    """The sandbox :class:`Limits` the limit options ask for; ``None`` when none was given.

    Options left out keep the sandbox's defaults. A limit given with ``--unsandboxed``
    raises ``ValueError`` naming the options: without the sandbox nothing enforces them.

    >>> p = argparse.ArgumentParser(); configure_parser(p)
    >>> limits = limits_from_args(p.parse_args(["subs", "--assignment", "a", "--processes", "64",
    ...                                         "--disk", "128"]))
    >>> limits.processes, limits.disk_bytes // 2**20, limits.memory_bytes // 2**30
    (64, 128, 6)
    >>> limits_from_args(p.parse_args(["subs", "--assignment", "a", "--unsandboxed",
    ...                                "--memory", "2"]))
    Traceback (most recent call last):
    ValueError: --memory: limits need the sandbox, which --unsandboxed turns off; drop the limit options or the --unsandboxed flag
    """
    given = {option: getattr(args, _dest(option), None) for option in LIMIT_OPTIONS}
    given = {option: value for option, value in given.items() if value is not None}
    if not given:
        return None
    if getattr(args, "unsandboxed", False):
        raise ValueError(f"{', '.join(given)}: limits need the sandbox, which --unsandboxed "
                         "turns off; drop the limit options or the --unsandboxed flag")
    from course_utils.instructor.grading.bubblewrap import Limits

    return Limits(**{LIMIT_OPTIONS[option][0]: value for option, value in given.items()})


def _dest(option: str) -> str:
    return option.lstrip("-").replace("-", "_")


def _limit_type(option: str, unit: int, kind: type) -> Callable[[str], int]:
    """argparse ``type`` of a limit option: its value in the Limits' unit (bytes, ...)."""
    what = "a positive whole number" if kind is int else "a positive number"

    def parse(text: str) -> int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not math.isfinite(value) or value <= 0 or int(value * unit) < 1:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return int(value * unit)

    parse.__name__ = option  # what argparse names in its messages
    return parse


def run_command(args: argparse.Namespace) -> int:
    """``course grade``: grade with a progress bar, then print the summary tables."""
    bar = _ProgressBar(args.assignment)
    try:
        if args.db is not None:  # a bad URL or a missing driver: say so before any work
            args.db = check_db_url(args.db)
        limits = limits_from_args(args)
        result = grade_submissions(
            args.submissions, args.assignment, out_dir=args.out, jobs=args.jobs, db_url=args.db,
            course_root=args.course, cell_timeout=args.timeout,
            notebook_timeout=args.notebook_timeout, progress=bar.update,
            sandbox=not args.unsandboxed, limits=limits, rerun=args.rerun,
            scheduler=args.scheduler,
        )
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        bar.close()
        print(f"course grade: error: {exc}", file=sys.stderr)
        return 2
    bar.close()
    print(format_summary(result))
    reports = result.report_json.parent
    print(f"\nGradebook: {result.db_url}\nReports: {reports} (grades.csv, task_stats.csv, "
          f"score_histogram.png, grading_report.json)\n"
          f"Feedback: {result.out_dir / 'feedback'}/<student>/{result.assignment}/")
    return 0


class _ProgressBar:
    """One line on stderr, redrawn in a terminal, one line per submission otherwise."""

    def __init__(self, label: str, width: int = 24) -> None:
        self.label, self.width = label, width
        self.tty = sys.stderr.isatty()

    def update(self, grade: StudentGrade, done: int, total: int) -> None:
        filled = int(self.width * done / max(total, 1))
        bar = "#" * filled + "." * (self.width - filled)
        text = (f"grading {self.label} [{bar}] {done}/{total}  {grade.student}: {grade.status} "
                f"{grade.autograded_score:g} ({grade.seconds:.1f} s)")
        print(("\r" + text.ljust(100)) if self.tty else text, end="" if self.tty else "\n",
              file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.tty:
            print(file=sys.stderr)
