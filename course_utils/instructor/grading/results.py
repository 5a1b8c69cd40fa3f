"""What grading produced: one record per student and per task, and the whole result."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from course_utils.instructor.grading.assignment import GradingPlan

#: Statuses of a submission after grading: ``graded`` counts; ``flagged`` was graded
#: but its autograded points are withheld until the instructor reviews it; the others
#: score zero and are flagged too.
STATUSES: Final = ("graded", "flagged", "failed", "timeout", "invalid")


@dataclasses.dataclass(frozen=True)
class StudentGrade:
    """How one submission was graded.

    Attributes
    ----------
    student: the student id.
    status: ``graded``; ``flagged`` (graded, but the code reaches into the grading
        machinery: the autograded points are withheld, zero in the gradebook,
        until the instructor reviews it); ``failed`` (nbgrader could not finish,
        e.g. the kernel died), ``timeout`` (killed by the wall-clock guard) or
        ``invalid`` (not a gradable notebook), which score zero and are flagged.
    message: what went wrong or why it was flagged, for the instructor; empty
        when graded.
    seconds: wall-clock time of the worker.
    scores: grade cell id -> points given (manual cells: ``None`` until graded
        in the Formgrader).
    autograded_score: points from the autograded cells (what the gradebook holds).
    manual_score: points from the manually graded cells, ``None`` while any is
        still ungraded.
    withheld_score: for a flagged submission, the autograded points its run
        earned, held back for review; ``None`` otherwise.
    digest: SHA-256 of the graded notebook (a resumed run skips a student whose
        notebook has not changed).
    graded_now: whether this run graded it (``False``: kept from an earlier run).

    >>> g = StudentGrade("ada", "graded", "", 3.0, {"t": 2.0, "essay": None}, 2.0)
    >>> g.total_text(auto_max=2, manual_max=3)
    'auto 2/2, manual -/3, total 2/5'
    """

    student: str
    status: str
    message: str
    seconds: float
    scores: Mapping[str, float | None]
    autograded_score: float
    manual_score: float | None = None
    withheld_score: float | None = None
    digest: str | None = None
    graded_now: bool = True

    @property
    def total_score(self) -> float:
        """Autograded plus manual points (the manual ones counted as 0 until graded)."""
        return self.autograded_score + (self.manual_score or 0.0)

    def total_text(self, *, auto_max: float, manual_max: float) -> str:
        """Both parts and the total, the same way everywhere: ``auto a/A, manual m/M, total t/T``."""
        manual = "-" if self.manual_score is None else f"{self.manual_score:g}"
        text = f"auto {self.autograded_score:g}/{auto_max:g}"
        if manual_max:
            text += f", manual {manual}/{manual_max:g}"
        return text + f", total {self.total_score:g}/{auto_max + manual_max:g}"


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
    """Everything :func:`grade_submissions` produced.

    ``students`` holds every student of the assignment in the gradebook, the ones
    graded by this run and, when it merged, those kept from earlier runs: the same
    rows as ``grades_csv``. ``rejected`` lists (file, reason) of input that could
    not even be given a student id (never used as a folder name).
    """

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
    sandboxed: bool = True
    rerun: str = "merge"
    rejected: tuple[tuple[str, str], ...] = ()

    def student(self, student_id: str) -> StudentGrade:
        """The grade of one student; ``KeyError`` naming the known ids otherwise."""
        for grade in self.students:
            if grade.student == student_id:
                return grade
        raise KeyError(f"no submission from {student_id!r}; graded: "
                       f"{', '.join(g.student for g in self.students)}")

    @property
    def graded_now(self) -> tuple[StudentGrade, ...]:
        """The students this run graded (a merge keeps earlier ones in ``students``)."""
        return tuple(g for g in self.students if g.graded_now)

    def feedback(self, student_id: str) -> Path:
        """Path of a student's feedback page."""
        self.student(student_id)
        return self.out_dir / "feedback" / student_id / self.assignment / f"{self.assignment}.html"
