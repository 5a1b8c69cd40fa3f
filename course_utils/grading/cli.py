"""``course grade``: its arguments, progress bar and summary."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from course_utils.grading.grader import grade_submissions
from course_utils.grading.reports import format_summary
from course_utils.grading.results import StudentGrade
from course_utils.grading.worker import NOTEBOOK_TIMEOUT


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``course grade``.

    >>> p = argparse.ArgumentParser(); configure_parser(p)
    >>> a = p.parse_args(["subs", "--assignment", "00_workflow", "--jobs", "2"])
    >>> a.submissions, a.jobs, a.out
    ('subs', 2, None)
    """
    parser.add_argument("submissions", metavar="SUBMISSIONS",
                        help="nbgrader's submitted/ tree, or a folder of <student>.ipynb and "
                             "<student>.zip files")
    parser.add_argument("--assignment", required=True, metavar="LESSON",
                        help="the lesson to grade, e.g. 00_workflow")
    parser.add_argument("--jobs", type=int, metavar="N",
                        help="submissions graded at once (default: the number of cores)")
    parser.add_argument("--db", metavar="URL",
                        help="gradebook database URL, e.g. postgresql://user@host/course "
                             "(default: sqlite in the output folder)")
    parser.add_argument("--out", metavar="DIR",
                        help="output folder, an nbgrader course root "
                             "(default: runs/grading/LESSON)")
    parser.add_argument("--course", metavar="DIR",
                        help="nbgrader course root (default: assignments/ of this repository)")
    parser.add_argument("--timeout", type=int, metavar="S",
                        help="seconds per cell (default: Execute.timeout of nbgrader_config.py)")
    parser.add_argument("--notebook-timeout", type=float, default=NOTEBOOK_TIMEOUT, metavar="S",
                        help=f"seconds per submission before it is stopped "
                             f"(default: {NOTEBOOK_TIMEOUT})")


def run_command(args: argparse.Namespace) -> int:
    """``course grade``: grade with a progress bar, then print the summary tables."""
    out = Path(args.out) if args.out else Path("runs") / "grading" / args.assignment
    bar = _ProgressBar(args.assignment)
    try:
        result = grade_submissions(
            args.submissions, args.assignment, out_dir=out, jobs=args.jobs, db_url=args.db,
            course_root=args.course, cell_timeout=args.timeout,
            notebook_timeout=args.notebook_timeout, progress=bar.update,
        )
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"course grade: error: {exc}", file=sys.stderr)
        return 2
    bar.close()
    print(format_summary(result))
    print(f"\nGrades: {result.grades_csv}\nPer task: {result.task_stats_csv}\n"
          f"Histogram: {result.histogram_png}\nFeedback: {result.out_dir / 'feedback'}")
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
