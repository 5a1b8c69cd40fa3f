"""The grader: every submission of a class graded in parallel, the gradebook written by this process alone."""

from __future__ import annotations

import concurrent.futures
import html
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from course_utils import io, release
from course_utils.grading.assignment import (
    PreparedAssignment,
    make_submission,
    prepare_assignment,
    solution_answers,
)
from course_utils.grading.gradebook import (
    copy_structure,
    merge_submission,
    open_gradebook,
    record_zero,
    scores_of,
    sqlite_url,
)
from course_utils.grading.reports import FAILED_FEEDBACK_PAGE, format_summary, write_reports
from course_utils.grading.results import GradeResult, StudentGrade
from course_utils.grading.submissions import find_submissions, place_submission
from course_utils.grading.worker import NOTEBOOK_TIMEOUT, Outcome, grade_one


def grade_submissions(
    submissions: str | os.PathLike[str],
    assignment: str,
    *,
    out_dir: str | os.PathLike[str],
    jobs: int | None = None,
    db_url: str | None = None,
    course_root: str | os.PathLike[str] | None = None,
    prepared: PreparedAssignment | None = None,
    cell_timeout: int | None = None,
    notebook_timeout: float = NOTEBOOK_TIMEOUT,
    progress: Callable[[StudentGrade, int, int], None] | None = None,
) -> GradeResult:
    """Grade every submission in ``submissions`` and write the class's results.

    Parameters
    ----------
    submissions: nbgrader's ``submitted/`` tree or a flat folder of
        ``<student>.ipynb`` / ``<student>.zip`` files (:func:`find_submissions`).
    assignment: the lesson, e.g. ``"00_workflow"``.
    out_dir: the output folder, an nbgrader course root (see the module docstring).
    jobs: submissions graded at once (default: the number of usable cores).
    db_url: the class gradebook (SQLAlchemy URL, e.g. ``postgresql://...``);
        default ``sqlite:///OUT/gradebook.db``.
    course_root: the nbgrader course (default: ``assignments/`` of the repository).
    prepared: the result of :func:`prepare_assignment`, to skip generating again.
    cell_timeout: seconds per cell (default: ``Execute.timeout`` of the course config).
    notebook_timeout: seconds per submission before its worker is killed.
    progress: called as ``progress(grade, done, total)`` after each submission.

    Returns the :class:`GradeResult`; a broken submission never stops the others.
    """
    started = time.perf_counter()
    out = Path(out_dir).resolve()
    jobs = _check_jobs(jobs)
    if notebook_timeout <= 0:
        raise ValueError(f"notebook_timeout must be positive, got {notebook_timeout}")
    if cell_timeout is not None and (isinstance(cell_timeout, bool) or int(cell_timeout) < 1):
        raise ValueError(f"cell_timeout must be a positive number of seconds, got {cell_timeout}")
    work_root = out / ".work"
    if work_root.exists():
        shutil.rmtree(work_root)
    work_root.mkdir(parents=True)
    subs = find_submissions(submissions, assignment, staging=work_root / "unpacked")
    if prepared is None:
        prepared = prepare_assignment(assignment, work_root, course_root=course_root)
    elif prepared.assignment != assignment:
        raise ValueError(f"prepared is for {prepared.assignment!r}, not {assignment!r}")

    release.copy_course(prepared.course, out, [assignment])
    db_url = db_url or sqlite_url(out / "gradebook.db")
    template_url = sqlite_url(prepared.course / "gradebook.db")
    copy_structure(template_url, db_url, assignment, prepared.course_id)
    for sub in subs:
        place_submission(sub, out / "submitted" / sub.student / assignment, assignment)

    total, done = len(subs), 0
    grades: dict[str, StudentGrade] = {}

    def finish(outcome: Outcome) -> None:
        nonlocal done
        grade = _record(outcome, prepared, out, db_url)
        grades[grade.student] = grade
        done += 1
        if progress is not None:
            progress(grade, done, total)

    gradable = [s for s in subs if s.problem is None]
    for sub in subs:
        if sub.problem is not None:
            finish(Outcome(sub, "invalid", sub.problem, 0.0, None))
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [
            pool.submit(grade_one, sub, prepared, work_root / "students" / sub.student,
                        cell_timeout, notebook_timeout)
            for sub in gradable
        ]
        for future in concurrent.futures.as_completed(futures):
            finish(future.result())

    students = tuple(grades[s.student] for s in subs)
    result = write_reports(prepared, out, db_url, students, jobs,
                            time.perf_counter() - started)
    shutil.rmtree(work_root, ignore_errors=True)
    return result


def _check_jobs(jobs: int | None) -> int:
    if jobs is None:
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # pragma: no cover - not on Linux
            return max(1, os.cpu_count() or 1)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive int, got {jobs!r}")
    return jobs


def _record(outcome: Outcome, prepared: PreparedAssignment, out: Path,
            db_url: str) -> StudentGrade:
    """Copy one finished submission into the class gradebook and output folder."""
    sub, assignment = outcome.submission, prepared.assignment
    student = sub.student
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    if outcome.work is not None and (outcome.work / "worker.log").is_file():
        shutil.copyfile(outcome.work / "worker.log", logs / f"{student}.log")
    else:
        io.write_text(logs / f"{student}.log", outcome.message + "\n")
    feedback_dir = out / "feedback" / student / assignment
    autograded_dir = out / "autograded" / student / assignment
    for folder in (feedback_dir, autograded_dir):
        if folder.exists():
            shutil.rmtree(folder)
    with open_gradebook(db_url, prepared.course_id) as gb:
        gb.update_or_create_student(student)
        if outcome.status == "graded":
            worker_url = sqlite_url(outcome.work / "gradebook.db")
            with open_gradebook(worker_url, prepared.course_id) as wgb:
                merge_submission(wgb, gb, assignment, student)
            shutil.copytree(outcome.work / "autograded" / student / assignment, autograded_dir)
            made = outcome.work / "feedback" / student / assignment
            if made.is_dir():
                shutil.copytree(made, feedback_dir)
        else:
            record_zero(gb, assignment, student, sub.timestamp)
            io.write_text(feedback_dir / f"{assignment}.html", FAILED_FEEDBACK_PAGE.format(
                assignment=html.escape(assignment), student=html.escape(student),
                message=html.escape(outcome.message)))
        scores = scores_of(gb, assignment, student, prepared.plan)
    if outcome.work is not None:
        shutil.rmtree(outcome.work, ignore_errors=True)
    auto = float(sum(scores[k] or 0.0 for k in prepared.plan.autograded if k in scores))
    return StudentGrade(student, outcome.status, outcome.message, outcome.seconds, scores, auto)


def make_example_class(prepared: PreparedAssignment, folder: str | os.PathLike[str]) -> Path:
    """A small class of example submissions for a demo, as a flat folder.

    ``ada`` solved everything, ``grace`` the first half of the tasks, ``alan``
    handed in the untouched student version.
    """
    import nbformat

    master = release.read_notebook(prepared.master)
    student = release.read_notebook(prepared.student_notebook)
    answers = solution_answers(master)
    code_tasks = [k for k in prepared.plan.tests_of]
    half = {k: answers[k] for k in code_tasks[: max(1, len(code_tasks) // 2)]}
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, chosen in (("ada", answers), ("grace", half), ("alan", {})):
        io.write_text(folder / f"{name}.ipynb", nbformat.writes(make_submission(student, chosen)))
    return folder


def grade_examples(out: str | os.PathLike[str], assignment: str = "00_workflow") -> str:
    """Grade the example class of :func:`make_example_class`; return the summary table."""
    out = Path(out)
    with tempfile.TemporaryDirectory(prefix="course-demo-") as scratch:
        prepared = prepare_assignment(assignment, Path(scratch) / "prepare")
        folder = make_example_class(prepared, Path(scratch) / "class")
        result = grade_submissions(folder, assignment, out_dir=out, prepared=prepared)
    return format_summary(result)
