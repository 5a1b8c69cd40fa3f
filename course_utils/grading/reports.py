"""The class's reports: grades.csv, per-task statistics, the score histogram, the summary."""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from course_utils import io, release
from course_utils.grading.assignment import PreparedAssignment
from course_utils.grading.results import GradeResult, StudentGrade, TaskStats

FAILED_FEEDBACK_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{assignment}: {student}</title></head>
<body><h1>{assignment}: {student}</h1>
<p><strong>Your submission could not be graded automatically.</strong></p>
<p>{message}</p>
<p>Score: 0. Your instructor has been notified and will look at it.</p>
</body></html>
"""


def write_reports(prepared: PreparedAssignment, out: Path, db_url: str,
                   students: tuple[StudentGrade, ...], jobs: int,
                   wall_seconds: float) -> GradeResult:
    plan = prepared.plan
    assignment = prepared.assignment
    grades_csv = out / "grades.csv"
    done = release.run_nbgrader(
        ["export", "--to", str(grades_csv), "--assignment", assignment,
         f"--CourseDirectory.db_url={db_url}"],
        course_root=out, timeout=300,
    )
    if done.returncode != 0 or not grades_csv.is_file():
        raise RuntimeError(f"nbgrader export failed for {out}:\n{done.stdout}{done.stderr}")

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
    task_csv = out / "task_stats.csv"
    with io.atomic_path(task_csv) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["task", "kind", "points", "mean", "full_marks", "zero", "ungraded",
                         "students"])
        for t in tasks:
            writer.writerow([t.task, t.kind, t.points, round(t.mean, 4), t.full_marks, t.zero,
                             t.ungraded, len(students)])
    histogram = plot_score_histogram([g.autograded_score for g in students],
                                     max_score=plan.max_autograded, title=assignment)
    histogram_png = out / "score_histogram.png"
    with io.atomic_path(histogram_png) as tmp:
        histogram.savefig(tmp, format="png", dpi=100)
    report = out / "grading_report.json"
    io.write_json(report, {
        "assignment": assignment, "db_url": db_url, "jobs": jobs,
        "wall_seconds": round(wall_seconds, 2),
        "max_autograded": plan.max_autograded, "max_score": plan.max_score,
        "students": [dataclasses.asdict(g) for g in students],
        "tasks": [dataclasses.asdict(t) for t in tasks],
    })
    return GradeResult(assignment, out, db_url, plan, students, tuple(tasks), jobs, wall_seconds,
                       grades_csv, task_csv, histogram_png, report)


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

    >>> from course_utils.grading import GradeResult, GradingPlan, StudentGrade
    >>> plan = GradingPlan({"t": 2.0}, {}, {})
    >>> g = StudentGrade("ada", "graded", "", 3.0, {"t": 2.0}, 2.0)
    >>> r = GradeResult("a", Path("."), "", plan, (g,), (), 1, 3.0, *[Path(".")] * 4)
    >>> print(format_summary(r).splitlines()[2])
    ada      graded    2/2        3.0
    """
    width = max([7] + [len(g.student) for g in result.students]) + 2
    lines = [f"{'student':<{width}}{'status':<10}{'score':<11}{'seconds':>7}",
             "-" * (width + 28)]
    for g in result.students:
        score = f"{g.autograded_score:g}/{result.plan.max_autograded:g}"
        line = f"{g.student:<{width}}{g.status:<10}{score:<11}{g.seconds:>7.1f}"
        lines.append(line + (f"  {g.message}" if g.message else ""))
    if result.tasks:
        tw = max(len(t.task) for t in result.tasks) + 2
        lines += ["", f"{'task':<{tw}}{'kind':<8}{'points':>6}{'mean':>7}{'full':>6}{'zero':>6}",
                  "-" * (tw + 33)]
        for t in result.tasks:
            lines.append(f"{t.task:<{tw}}{t.kind:<8}{t.points:>6g}{t.mean:>7.2f}"
                         f"{t.full_marks:>6}{t.zero:>6}")
    manual = sum(t.points for t in result.tasks if t.kind == "manual")
    lines.append("")
    lines.append(f"{len(result.students)} submissions graded in {result.wall_seconds:.0f} s with "
                 f"{result.jobs} worker(s); manual tasks ({manual:g} points) await the formgrader.")
    return "\n".join(lines)
