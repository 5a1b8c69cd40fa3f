"""The class gradebook: nbgrader's database, written by the grader's own process only."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from course_utils import release
from course_utils.grading.assignment import GradingPlan


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path.resolve()}"


@contextlib.contextmanager
def open_gradebook(db_url: str, course_id: str) -> Iterator[Any]:
    """nbgrader's ``Gradebook``, without the SQLAlchemy warnings its own code triggers."""
    import sqlalchemy.exc
    from nbgrader.api import Gradebook

    release.ensure_scripts_on_path()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=sqlalchemy.exc.SAWarning)
        with Gradebook(db_url, course_id) as gb:
            yield gb


def copy_structure(template_url: str, db_url: str, assignment: str, course_id: str) -> None:
    """Create (or check) the assignment's notebooks and cells in the class gradebook."""
    from nbgrader.api import MissingEntry

    with open_gradebook(template_url, course_id) as src, open_gradebook(db_url, course_id) as dst:
        source = src.find_assignment(assignment)
        try:
            existing = dst.find_assignment(assignment)
        except MissingEntry:
            existing = None
        if existing is not None and existing.submissions:
            old = {(nb.name, c.name) for nb in existing.notebooks for c in nb.source_cells}
            new = {(nb.name, c.name) for nb in source.notebooks for c in nb.source_cells}
            if old != new:
                raise ValueError(
                    f"the gradebook {db_url} already holds submissions of {assignment} graded "
                    "against a different version of it; grade into a new --out folder or --db"
                )
        dst.update_or_create_assignment(assignment, duedate=source.duedate)
        for nb in source.notebooks:
            dst.update_or_create_notebook(nb.name, assignment, kernelspec=nb.kernelspec)
            for cell in nb.grade_cells:
                dst.update_or_create_grade_cell(cell.name, nb.name, assignment,
                                                max_score=cell.max_score, cell_type=cell.cell_type)
            for cell in nb.solution_cells:
                dst.update_or_create_solution_cell(cell.name, nb.name, assignment)
            for cell in nb.task_cells:
                dst.update_or_create_task_cell(cell.name, nb.name, assignment,
                                               max_score=cell.max_score, cell_type=cell.cell_type)
            for cell in nb.source_cells:
                dst.update_or_create_source_cell(
                    cell.name, nb.name, assignment, cell_type=cell.cell_type, locked=cell.locked,
                    source=cell.source, checksum=cell.checksum,
                )


def merge_submission(src: Any, dst: Any, assignment: str, student: str) -> None:
    source = src.find_submission(assignment, student)
    kwargs = {"timestamp": source.timestamp} if source.timestamp else {}
    target = dst.update_or_create_submission(assignment, student, **kwargs)
    by_name = {nb.name: nb for nb in target.notebooks}
    for nb in source.notebooks:
        twin = by_name[nb.name]
        twin.flagged = nb.flagged
        twin.late_submission_penalty = nb.late_submission_penalty
        grades = {g.name: g for g in twin.grades}
        for grade in nb.grades:
            copy_to = grades[grade.name]
            copy_to.auto_score = grade.auto_score
            copy_to.manual_score = grade.manual_score
            copy_to.extra_credit = grade.extra_credit
            copy_to.needs_manual_grade = grade.needs_manual_grade
        comments = {c.name: c for c in twin.comments}
        for comment in nb.comments:
            comments[comment.name].auto_comment = comment.auto_comment
            comments[comment.name].manual_comment = comment.manual_comment
    dst.db.commit()


def record_zero(gb: Any, assignment: str, student: str, timestamp: str | None) -> None:
    from nbgrader.utils import parse_utc

    kwargs = {"timestamp": parse_utc(timestamp)} if timestamp else {}
    submission = gb.update_or_create_submission(assignment, student, **kwargs)
    for nb in submission.notebooks:
        nb.flagged = True
        for grade in nb.grades:
            grade.auto_score = 0.0
            grade.manual_score = None
            grade.extra_credit = None
            grade.needs_manual_grade = False
    gb.db.commit()


def scores_of(gb: Any, assignment: str, student: str, plan: GradingPlan) -> dict[str, float | None]:
    submission = gb.find_submission(assignment, student)
    scores: dict[str, float | None] = {}
    for nb in submission.notebooks:
        for grade in nb.grades:
            if grade.manual_score is not None:
                scores[grade.name] = float(grade.manual_score) + float(grade.extra_credit or 0)
            elif grade.auto_score is not None:
                scores[grade.name] = float(grade.auto_score) + float(grade.extra_credit or 0)
            else:
                scores[grade.name] = None
    order = [*plan.autograded, *plan.manual]
    return {k: scores.get(k) for k in order} | {k: v for k, v in scores.items() if k not in order}
