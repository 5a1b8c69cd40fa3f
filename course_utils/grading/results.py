"""What grading produced: one record per student and per task, and the whole result."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from course_utils.grading.assignment import GradingPlan

STATUSES: Final = ("graded", "failed", "timeout", "invalid")


@dataclasses.dataclass(frozen=True)
class StudentGrade:
    """How one submission was graded.

    Attributes
    ----------
    student: the student id.
    status: ``graded``, ``failed`` (nbgrader could not finish, e.g. the kernel
        died), ``timeout`` (killed by the wall-clock guard) or ``invalid`` (not a
        gradable notebook); all but ``graded`` score zero and are flagged.
    message: what went wrong, for the instructor; empty when graded.
    seconds: wall-clock time of the worker.
    scores: grade cell id -> points given (manual cells: ``None`` until graded).
    autograded_score: points from the autograded cells.
    """

    student: str
    status: str
    message: str
    seconds: float
    scores: Mapping[str, float | None]
    autograded_score: float


@dataclasses.dataclass(frozen=True)
class TaskStats:
    """How the class did on one graded cell."""

    task: str
    kind: str  # "auto" or "manual"
    points: float
    mean: float
    full_marks: int
    zero: int
    ungraded: int


@dataclasses.dataclass(frozen=True)
class GradeResult:
    """Everything :func:`grade_submissions` produced."""

    assignment: str
    out_dir: Path
    db_url: str
    plan: GradingPlan
    students: tuple[StudentGrade, ...]
    tasks: tuple[TaskStats, ...]
    jobs: int
    wall_seconds: float
    grades_csv: Path
    task_stats_csv: Path
    histogram_png: Path
    report_json: Path

    def student(self, student_id: str) -> StudentGrade:
        """The grade of one student; ``KeyError`` naming the known ids otherwise."""
        for grade in self.students:
            if grade.student == student_id:
                return grade
        raise KeyError(f"no submission from {student_id!r}; graded: "
                       f"{', '.join(g.student for g in self.students)}")

    def feedback(self, student_id: str) -> Path:
        """Path of a student's feedback page."""
        self.student(student_id)
        return self.out_dir / "feedback" / student_id / self.assignment / f"{self.assignment}.html"
