"""``course grade``: its arguments, progress bar and summary."""

from __future__ import annotations

import argparse
import sys

from course_utils.instructor.grading.gradebook import check_db_url
from course_utils.instructor.grading.grader import RERUN_MODES, grade_submissions
from course_utils.instructor.grading.reports import format_summary
from course_utils.instructor.grading.results import StudentGrade
from course_utils.instructor.grading.worker import NOTEBOOK_TIMEOUT

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
    parser.add_argument("--memory", type=float, metavar="GIB",
                        help="memory per submission in GiB (default: the sandbox's)")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="grade on a Dask cluster: its scheduler's address, e.g. "
                             "tcp://10.0.0.5:8786 (in a clone: pip install -e '.[cluster]'; the "
                             "workers need course-utils and bubblewrap); each submission is one "
                             "task, retried once if its machine dies (default: grade here)")
    parser.add_argument("--unsandboxed", action="store_true",
                        help="grade without the sandbox where none can run (macOS, a locked-"
                             "down host): student code then runs with your rights; the report "
                             "records it")


def run_command(args: argparse.Namespace) -> int:
    """``course grade``: grade with a progress bar, then print the summary tables."""
    bar = _ProgressBar(args.assignment)
    try:
        if args.db is not None:  # a bad URL or a missing driver: say so before any work
            args.db = check_db_url(args.db)
        limits = None
        if args.memory is not None and not args.unsandboxed:
            from course_utils.instructor.grading.sandbox import Limits

            limits = Limits(memory_bytes=int(args.memory * 2**30))
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
