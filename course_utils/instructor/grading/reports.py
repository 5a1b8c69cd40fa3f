"""The class's reports: grades.csv, per-task statistics, the score histogram, the summary."""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from course_utils.instructor.grading.assignment import PreparedAssignment
from course_utils.instructor.grading.results import GradeResult, StudentGrade, TaskStats
from course_utils.runtime import io

FAILED_FEEDBACK_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{assignment}: {student}</title></head>
<body><h1>{assignment}: {student}</h1>
<p><strong>Your submission could not be graded automatically.</strong></p>
<p>{message}</p>
<p>Score: {score}. Your instructor has been notified and will look at it.</p>
</body></html>
"""


def write_reports(prepared: PreparedAssignment, out: Path, reports: Path, db_url: str,
                  students: tuple[StudentGrade, ...], jobs: int, wall_seconds: float, *,
                  sandboxed: bool, rerun: str,
                  rejected: tuple[tuple[str, str], ...] = ()) -> GradeResult:
    """Write the class's reports into ``reports`` and return the :class:`GradeResult`.

    ``students`` are every student of the assignment in the gradebook, so
    ``grades.csv`` (nbgrader's export of that gradebook, with the autograded and manual
    parts beside nbgrader's total) and ``grading_report.json`` hold the same students
    with the same scores.
    """
    plan = prepared.plan
    assignment = prepared.assignment
    grades_csv = reports / "grades.csv"
    export_grades(db_url, prepared.course_id, assignment, students, grades_csv)

    tasks = []
    for kind, cells in (("auto", plan.autograded), ("manual", plan.manual)):
        for task, points in cells.items():
            values = [g.scores.get(task) for g in students]
            given = [v for v in values if v is not None]
            tasks.append(TaskStats(
                task=task, kind=kind, points=points,
                mean=sum(given) / len(given) if given else 0.0,
                full_marks=sum(1 for v in given if v >= points),
                zero=sum(1 for v in given if v == 0),
                ungraded=len(values) - len(given),
            ))
    task_csv = reports / "task_stats.csv"
    with io.atomic_path(task_csv) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["task", "kind", "points", "mean", "full_marks", "zero", "ungraded",
                         "students"])
        for t in tasks:
            writer.writerow([t.task, t.kind, t.points, round(t.mean, 4), t.full_marks, t.zero,
                             t.ungraded, len(students)])
    histogram = plot_score_histogram([g.autograded_score for g in students],
                                     max_score=plan.max_autograded, title=assignment)
    histogram_png = reports / "score_histogram.png"
    with io.atomic_path(histogram_png) as tmp:
        histogram.savefig(tmp, format="png", dpi=100)
    report = reports / "grading_report.json"
    manual_max = float(sum(plan.manual.values()))
    io.write_json(report, {
        "assignment": assignment, "db_url": db_url, "jobs": jobs,
        "sandboxed": sandboxed, "rerun": rerun,
        "wall_seconds": round(wall_seconds, 2),
        "max_autograded": plan.max_autograded, "max_manual": manual_max,
        "max_score": plan.max_score,
        "students": [dataclasses.asdict(g) | {
            "total_score": g.total_score,
            "total": g.total_text(auto_max=plan.max_autograded, manual_max=manual_max)}
            for g in students],
        "rejected": [{"file": f, "problem": p} for f, p in rejected],
        "tasks": [dataclasses.asdict(t) for t in tasks],
    })
    return GradeResult(assignment, out, db_url, plan, students, tuple(tasks), jobs, wall_seconds,
                       grades_csv, task_csv, histogram_png, report, sandboxed=sandboxed,
                       rerun=rerun, rejected=rejected)


#: The columns ``grades.csv`` adds to nbgrader's export: the score split as the summary,
#: the report and the Formgrader give it (``manual_score`` empty until graded by hand).
SPLIT_COLUMNS = ("autograded_score", "manual_score")
#: nbgrader's own export columns (what an export of no student holds).
NBGRADER_COLUMNS = ("assignment", "duedate", "timestamp", "student_id", "last_name",
                    "first_name", "email", "raw_score", "late_submission_penalty", "score",
                    "max_score")


def export_grades(db_url: str, course_id: str, assignment: str,
                  students: Sequence[StudentGrade], path: Path) -> Path:
    """Write ``grades.csv``: nbgrader's own export, one row per given student, plus the split.

    nbgrader's ``export`` lists every student the gradebook knows, with a zero for an
    assignment they never handed in (they may belong to another lesson, or have been
    removed by a replacing run); here only ``students`` are exported, so the file holds
    exactly the students of the report. nbgrader's columns are kept as they are
    (``score`` is the total, autograded plus manual, an ungraded written answer counting
    0); :data:`SPLIT_COLUMNS` follow them: ``autograded_score`` and ``manual_score``
    (empty while a written answer awaits the Formgrader), from the same gradebook.
    """
    from nbgrader.plugins import CsvExportPlugin

    from course_utils.instructor.grading.gradebook import open_gradebook

    split = {g.student: (f"{g.autograded_score:g}",
                         "" if g.manual_score is None else f"{g.manual_score:g}")
             for g in students}
    with io.atomic_path(path) as tmp:
        rows: list[dict[str, str]] = []
        columns = list(NBGRADER_COLUMNS)
        if students:
            plugin = CsvExportPlugin(to=str(tmp), assignment=[assignment],
                                     student=list(split))
            with open_gradebook(db_url, course_id) as gb:
                plugin.export(gb)
            with open(tmp, newline="") as fh:
                reader = csv.DictReader(fh)
                columns = list(reader.fieldnames or columns)
                rows = list(reader)
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, [*columns, *SPLIT_COLUMNS], lineterminator="\n")
            writer.writeheader()
            for row in rows:
                auto, manual = split.get(row.get("student_id", ""), ("", ""))
                writer.writerow(row | dict(zip(SPLIT_COLUMNS, (auto, manual), strict=True)))
    return path


def plot_score_histogram(scores: Sequence[float], *, max_score: float, title: str = "") -> Any:
    """Histogram of the class's autograded scores, one bar per point (a ``Figure``).

    >>> fig = plot_score_histogram([0, 3, 3, 9], max_score=9, title="00_workflow")
    >>> fig.axes[0].get_xlabel()
    'autograded score (of 9)'
    """
    from matplotlib.figure import Figure

    if max_score <= 0:
        raise ValueError(f"max_score must be positive, got {max_score}")
    fig = Figure(figsize=(6, 3.5), layout="constrained")
    ax = fig.add_subplot()
    top = int(max_score) + 1
    ax.hist(list(scores), bins=[b - 0.5 for b in range(top + 1)], color="#4477aa",
            edgecolor="white")
    ax.set_xlim(-0.5, top - 0.5)
    ax.set_xlabel(f"autograded score (of {max_score:g})")
    ax.set_ylabel("students")
    ax.set_title(f"{title}: {len(scores)} submissions" if title else f"{len(scores)} submissions")
    ax.yaxis.get_major_locator().set_params(integer=True)
    return fig


def format_summary(result: GradeResult) -> str:
    """The class's results as two plain-text tables (students, then tasks).

    Scores are split as in ``grades.csv`` (``autograded_score``, ``manual_score``,
    ``score``) and the Formgrader: the autograded part, the manual part (``-`` until
    graded; an empty cell in ``grades.csv``) and the total.

    >>> from course_utils.instructor.grading import GradeResult, GradingPlan, StudentGrade
    >>> plan = GradingPlan({"t": 2.0}, {"essay": 3.0}, {})
    >>> g = StudentGrade("ada", "graded", "", 3.0, {"t": 2.0, "essay": None}, 2.0)
    >>> r = GradeResult("a", Path("."), "", plan, (g,), (), 1, 3.0, *[Path(".")] * 4)
    >>> print(format_summary(r).splitlines()[2])
    ada      graded    2/2     -/3     2/5        3.0
    """
    plan = result.plan
    manual_max = float(sum(plan.manual.values()))
    width = max([7] + [len(g.student) for g in result.students]) + 2
    lines = [f"{'student':<{width}}{'status':<10}{'auto':<8}{'manual':<8}{'total':<8}"
             f"{'seconds':>9}", "-" * (width + 43)]
    for g in result.students:
        manual = "-" if g.manual_score is None else f"{g.manual_score:g}"
        auto = (f"{g.autograded_score:g}/{plan.max_autograded:g}" if g.withheld_score is None
                else f"held/{plan.max_autograded:g}")
        line = (f"{g.student:<{width}}{g.status:<10}{auto:<8}{manual + '/' + f'{manual_max:g}':<8}"
                f"{f'{g.total_score:g}/{plan.max_score:g}':<8}"
                + (f"{g.seconds:>9.1f}" if g.graded_now else f"{'earlier':>9}"))
        lines.append(line + (f"  {g.message}" if g.message else ""))
    for _file, problem in result.rejected:
        lines.append(f"{'(rejected)':<{width}}{'invalid':<10}{'':<24}{'':>9}  {problem}")
    if result.tasks:
        tw = max(len(t.task) for t in result.tasks) + 2
        lines += ["", f"{'task':<{tw}}{'kind':<8}{'points':>6}{'mean':>7}{'full':>6}{'zero':>6}",
                  "-" * (tw + 33)]
        for t in result.tasks:
            lines.append(f"{t.task:<{tw}}{t.kind:<8}{t.points:>6g}{t.mean:>7.2f}"
                         f"{t.full_marks:>6}{t.zero:>6}")
    now = len(result.graded_now)
    kept = len(result.students) - now
    lines.append("")
    text = (f"{now} submission(s) graded in {result.wall_seconds:.0f} s with {result.jobs} "
            f"worker(s)")
    if result.rerun == "replace":
        text += "; earlier results of this assignment were replaced"
    elif kept:
        text += f"; merged with {kept} result(s) kept from earlier runs"
    lines.append(text + ".")
    ungraded = sum(1 for g in result.students if g.manual_score is None) if manual_max else 0
    if ungraded:
        lines.append(f"Manual tasks ({manual_max:g} points) await the Formgrader for {ungraded} "
                     "student(s).")
    if any(g.status == "flagged" for g in result.students):
        lines.append("Flagged submissions have their autograded points held until you review "
                     "them in the Formgrader.")
    if not result.sandboxed:
        lines.append("WARNING: graded WITHOUT the sandbox (--unsandboxed): student code could "
                     "read and change anything this user can.")
    return "\n".join(lines)
