"""The grader: every submission of a class graded in parallel, the gradebook written by this process alone.

A run takes the output folder's lock (one run per folder at a time), checks its whole
input before it touches anything, and grades each submission in a worker process of
its own (:mod:`course_utils.instructor.grading.worker`) whose kernel runs in the sandbox. As each
submission finishes, this process alone writes its grades into the gradebook, its
graded notebook and feedback page into the output folder, and a result record; the
reports are written at the end from those records. A run that was killed therefore
leaves every finished student recorded, and ``rerun="resume"`` grades only the rest.

Examples
--------
>>> check_rerun("resume")
'resume'
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import fcntl
import html
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

from course_utils.instructor import release
from course_utils.instructor.grading import integrity
from course_utils.instructor.grading.assignment import (
    GradingPlan,
    PreparedAssignment,
    make_submission,
    prepare_assignment,
    solution_answers,
)
from course_utils.instructor.grading.gradebook import (
    check_db_url,
    copy_structure,
    course_db_url,
    merge_submission,
    open_gradebook,
    record_zero,
    remove_submissions,
    scores_of,
    sqlite_url,
    withhold_autograded,
)
from course_utils.instructor.grading.reports import (
    FAILED_FEEDBACK_PAGE,
    format_summary,
    write_reports,
)
from course_utils.instructor.grading.results import GradeResult, StudentGrade
from course_utils.instructor.grading.submissions import (
    Submission,
    find_submissions,
    valid_student_id,
)
from course_utils.instructor.grading.worker import NOTEBOOK_TIMEOUT, Outcome, grade_one, make_job
from course_utils.runtime import io

#: How a run treats results already in the output folder and gradebook:
#: ``merge`` grades the given submissions and keeps other students' earlier results;
#: ``replace`` first removes every earlier result of the assignment;
#: ``resume`` is ``merge`` that skips students whose same notebook already has a result.
RERUN_MODES: Final = ("merge", "replace", "resume")
#: Folders of the output folder that the grader writes (never an input).
MANAGED_FOLDERS: Final = ("autograded", "feedback", "reports", ".work")
LOCK_NAME: Final = ".course-grade.lock"


def check_rerun(rerun: str) -> str:
    """``rerun`` if it is one of :data:`RERUN_MODES`; ``ValueError`` otherwise."""
    if rerun not in RERUN_MODES:
        raise ValueError(f"rerun: expected one of {', '.join(RERUN_MODES)}, got {rerun!r}")
    return rerun


def grade_submissions(
    submissions: str | os.PathLike[str],
    assignment: str,
    *,
    out_dir: str | os.PathLike[str] | None = None,
    jobs: int | None = None,
    db_url: str | None = None,
    course_root: str | os.PathLike[str] | None = None,
    prepared: PreparedAssignment | None = None,
    cell_timeout: int | None = None,
    notebook_timeout: float = NOTEBOOK_TIMEOUT,
    sandbox: bool = True,
    limits: object | None = None,
    rerun: str = "merge",
    progress: Callable[[StudentGrade, int, int], None] | None = None,
    scheduler: object | None = None,
) -> GradeResult:
    """Grade every submission in ``submissions`` and write the class's results.

    Parameters
    ----------
    submissions: nbgrader's ``submitted/`` tree or a flat folder of
        ``<student>.ipynb`` / ``<student>.zip`` files (:func:`find_submissions`).
    assignment: the lesson, e.g. ``"00_workflow"``.
    out_dir: the output folder, an nbgrader course root: ``submitted/``,
        ``autograded/`` and ``feedback/`` per student, ``reports/<assignment>/``
        (grades.csv, task_stats.csv, score_histogram.png, grading_report.json,
        logs/). Default: the course root itself, where the Formgrader looks.
    jobs: submissions graded at once (default: the number of usable cores); with
        ``scheduler``, the cluster's workers decide.
    db_url: the class gradebook (SQLAlchemy URL, e.g. ``postgresql://...``);
        default: the output folder's ``CourseDirectory.db_url`` (its
        ``gradebook.db``), so the Formgrader and ``nbgrader export`` see the
        same grades.
    course_root: the nbgrader course (default: :func:`release.find_course_root`).
    prepared: the result of :func:`prepare_assignment`, to skip generating again.
    cell_timeout: seconds per cell (default: ``Execute.timeout`` of the course config).
    notebook_timeout: seconds per submission before its worker is killed.
    sandbox: run each kernel in the sandbox (:mod:`course_utils.instructor.grading.sandbox`);
        ``False`` only where none can run, and the report says so.
    limits: the sandbox's per-submission :class:`~course_utils.instructor.grading.sandbox.Limits`
        (``ValueError`` with ``sandbox=False``: nothing would enforce them).
    rerun: ``"merge"``, ``"replace"`` or ``"resume"`` (see :data:`RERUN_MODES`).
    progress: called as ``progress(grade, done, total)`` after each submission.
    scheduler: grade on a Dask cluster (:mod:`course_utils.instructor.grading.cluster`): its
        scheduler's address (``tcp://host:8786``) or a Dask cluster object (e.g. Dask
        Gateway's, with its credentials). Each submission is then one task graded by
        the sandboxed worker on whichever machine runs it, retried once elsewhere if
        that machine dies; this process still writes the gradebook. ``None``: here.

    Returns the :class:`GradeResult`; a broken submission never stops the others.
    Every argument and the whole input are checked before anything is written.

    Run here, the workers are started with Python's ``multiprocessing`` (a ``forkserver``,
    :func:`~course_utils.instructor.grading.worker.run_guarded`), which imports the main
    module of a script again in each worker: in a script of your own, call this under
    ``if __name__ == "__main__":``, as ``multiprocessing`` asks (a notebook needs nothing).
    """
    started = time.perf_counter()
    jobs = _check_jobs(jobs)
    check_rerun(rerun)
    if notebook_timeout <= 0:
        raise ValueError(f"notebook_timeout: expected a positive number of seconds, "
                         f"got {notebook_timeout}")
    if cell_timeout is not None and (isinstance(cell_timeout, bool) or int(cell_timeout) < 1):
        raise ValueError(f"cell_timeout: expected a positive number of seconds, got {cell_timeout}")
    root = release.find_course_root() if course_root is None else Path(course_root).resolve()
    release.master_path(assignment, root)  # FileNotFoundError naming the lessons there
    if prepared is not None and prepared.assignment != assignment:
        raise ValueError(f"prepared: expected the assignment {assignment!r}, "
                         f"got {prepared.assignment!r}")
    out = (Path(out_dir) if out_dir is not None else root).resolve()
    source = Path(submissions).resolve()
    if not source.is_dir():
        raise FileNotFoundError(f"{submissions}: submissions folder not found")
    for name in MANAGED_FOLDERS:
        managed = out / name
        if source == managed or managed in source.parents:
            raise ValueError(f"{submissions}: the submissions may not be inside {managed}, "
                             "which course grade writes; copy them elsewhere first")
    db_url = check_db_url(db_url) if db_url else course_db_url(out)
    sandbox_settings = _sandbox_settings(sandbox, limits)
    if scheduler is not None:  # an unreachable scheduler: say so before any grading
        from course_utils.instructor.grading import cluster

        cluster.check_scheduler(scheduler)

    # The input is read (archives unpacked into a folder of this run's own) before the
    # output folder is touched: an empty or unreadable input creates nothing there.
    with _staging_folder() as staging:
        subs = find_submissions(source, assignment, staging=staging)
        with _locked(out):
            work_root = out / ".work"
            if work_root.exists():  # left by a run that was killed (the lock says none runs now)
                shutil.rmtree(work_root)
            work_root.mkdir(parents=True)
            try:
                return _grade_locked(
                    subs, assignment, out=out, work_root=work_root, root=root, jobs=jobs,
                    db_url=db_url, prepared=prepared, cell_timeout=cell_timeout,
                    notebook_timeout=notebook_timeout, sandbox_settings=sandbox_settings,
                    rerun=rerun, progress=progress, started=started, scheduler=scheduler)
            finally:
                shutil.rmtree(work_root, ignore_errors=True)


#: Where a run unpacks its input: ``<prefix><pid>-<random>`` in the system's temporary folder.
STAGING_PREFIX: Final = "course-grade-input-"


def _staging_folder() -> tempfile.TemporaryDirectory:
    """This run's folder for its unpacked input, once the folders of killed runs are gone.

    A run removes its own when it ends; one that was killed (SIGKILL, a lost machine) leaves
    it behind, so each run first removes those whose process no longer exists.
    """
    for old in Path(tempfile.gettempdir()).glob(STAGING_PREFIX + "*"):
        pid = old.name[len(STAGING_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not _process_exists(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    return tempfile.TemporaryDirectory(prefix=f"{STAGING_PREFIX}{os.getpid()}-")


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _grade_locked(subs: list[Submission], assignment: str, *, out: Path, work_root: Path,
                  root: Path, jobs: int, db_url: str, prepared: PreparedAssignment | None,
                  cell_timeout: int | None, notebook_timeout: float,
                  sandbox_settings: dict | None, rerun: str,
                  progress: Callable[[StudentGrade, int, int], None] | None,
                  started: float, scheduler: object | None = None) -> GradeResult:
    if prepared is None:
        prepared = prepare_assignment(assignment, work_root, course_root=root)
    if out != root:
        release.copy_course(prepared.course, out, [assignment])
    copy_structure(sqlite_url(prepared.course / "gradebook.db"), db_url, assignment,
                   prepared.course_id)
    reports = out / "reports" / assignment
    records = reports / "students"
    if rerun == "replace":
        removed = remove_submissions(db_url, prepared.course_id, assignment)
        for folder in ("autograded", "feedback"):
            for student in removed:
                shutil.rmtree(out / folder / student / assignment, ignore_errors=True)
        shutil.rmtree(records, ignore_errors=True)

    rejected = tuple((s.source.name, s.problem or "") for s in subs if not valid_student_id(s.student))
    usable = [s for s in subs if valid_student_id(s.student)]
    earlier = _read_records(records)
    if rerun == "resume":
        usable = [s for s in usable if not (s.student in earlier and s.digest is not None
                                            and earlier[s.student].digest == s.digest)]
    for sub in usable:
        _place(sub, out / "submitted" / sub.student / assignment, assignment)

    released = release.read_notebook(prepared.student_notebook)
    total, done = len(usable), 0
    grades: dict[str, StudentGrade] = {}

    def finish(outcome: Outcome) -> None:
        nonlocal done
        grade = _record(outcome, prepared, out, db_url)
        io.write_json(records / f"{grade.student}.json", dataclasses.asdict(grade))
        grades[grade.student] = grade
        done += 1
        if progress is not None:
            progress(grade, done, total)

    gradable = [s for s in usable if s.problem is None]
    for sub in usable:
        if sub.problem is not None:
            finish(Outcome(sub, "invalid", sub.problem, 0.0, None))
    def review(outcome: Outcome) -> Outcome:
        sub = outcome.submission
        findings = integrity.scan_notebook(release.read_notebook(sub.notebook), released)
        if findings:
            reasons = ("flagged for review, autograded points withheld: "
                       + "; ".join(f.describe() for f in findings[:5])
                       + (f" (and {len(findings) - 5} more)" if len(findings) > 5 else ""))
            outcome = dataclasses.replace(outcome, flagged_for=reasons)
        return outcome

    def work(sub: Submission) -> Outcome:
        return review(grade_one(sub, prepared, work_root / "students" / sub.student,
                                cell_timeout=cell_timeout, notebook_timeout=notebook_timeout,
                                sandbox=sandbox_settings, released=released))

    if scheduler is None:
        with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(work, sub) for sub in gradable]
            for future in concurrent.futures.as_completed(futures):
                finish(future.result())
    else:  # one Dask task per job folder; the results come back into the folder
        from course_utils.instructor.grading import cluster

        of_folder = {work_root / "students" / sub.student: sub for sub in gradable}
        laid_out = (make_job(sub, prepared, folder, cell_timeout=cell_timeout,
                             sandbox=sandbox_settings, released=released)
                    for folder, sub in of_folder.items())
        for folder, status, message, seconds in cluster.run_jobs(
                scheduler, laid_out, notebook_timeout=notebook_timeout):
            sub = of_folder[folder]
            finish(review(Outcome(sub, status, message, seconds, folder)))

    students = _whole_class(db_url, prepared, grades, earlier)
    return write_reports(prepared, out, reports, db_url, students, jobs,
                         time.perf_counter() - started, sandboxed=sandbox_settings is not None,
                         rerun=rerun, rejected=rejected)


def _whole_class(db_url: str, prepared: PreparedAssignment, now: dict[str, StudentGrade],
                 earlier: dict[str, StudentGrade]) -> tuple[StudentGrade, ...]:
    """Every student of the assignment in the gradebook, scores as the gradebook has them.

    This run's students come with what this run found; students graded before keep
    their status but take their scores from the gradebook (an instructor may have
    graded by hand since); students the gradebook got elsewhere (``nbgrader
    autograde``, the Formgrader) are listed as graded there. So the report always
    agrees with ``grades.csv``, the gradebook's export.
    """
    from nbgrader.api import MissingEntry

    plan = prepared.plan
    students = []
    with open_gradebook(db_url, prepared.course_id) as gb:
        try:
            ids = sorted(s.student.id for s in gb.find_assignment(prepared.assignment).submissions)
        except MissingEntry:
            ids = []
        for student in ids:
            scores = scores_of(gb, prepared.assignment, student, plan)
            base = now.get(student) or earlier.get(student)
            if base is None:
                base = StudentGrade(student, "graded", "graded outside course grade", 0.0, {},
                                    0.0, graded_now=False)
            elif student not in now:
                base = dataclasses.replace(base, graded_now=False)
            auto, manual = _totals(scores, plan)
            students.append(dataclasses.replace(base, scores=scores, autograded_score=auto,
                                                manual_score=manual))
    return tuple(students)


def _totals(scores: dict[str, float | None], plan: GradingPlan) -> tuple[float, float | None]:
    """Autograded points, and manual points (``None`` while a written answer is ungraded)."""
    auto = float(sum(scores.get(k) or 0.0 for k in plan.autograded))
    manual = [scores.get(k) for k in plan.manual]
    return auto, (None if any(v is None for v in manual) else float(sum(manual)))


def _read_records(folder: Path) -> dict[str, StudentGrade]:
    """The result records of earlier runs, by student (unreadable ones are ignored)."""
    found = {}
    if folder.is_dir():
        for path in sorted(folder.glob("*.json")):
            try:
                data = io.read_json(path)
                found[data["student"]] = StudentGrade(**data)
            except (ValueError, KeyError, TypeError):
                continue
    return found


def _sandbox_settings(sandbox: bool, limits: object | None) -> dict | None:
    """What the workers need to sandbox their kernels; checks the sandbox can run."""
    if not sandbox:
        if limits is not None:
            raise ValueError("limits: limits need the sandbox, which sandbox=False turns off; "
                             "drop the limits or grade in the sandbox")
        return None
    from course_utils.instructor.grading import sandbox as sandboxing

    sandboxing.check_sandbox()
    chosen = limits if limits is not None else sandboxing.Limits()
    return {"limits": dataclasses.asdict(chosen)}


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    """Hold the output folder's lock; ``RuntimeError`` naming the holder if it is taken."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / LOCK_NAME
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise RuntimeError(
                f"{out}: another course grade run is using this output folder ({holder}); "
                "wait for it to finish, or grade into another --out folder") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        fh.flush()
        try:
            yield
        finally:
            fh.seek(0)
            fh.truncate()
            fcntl.flock(fh, fcntl.LOCK_UN)


def _check_jobs(jobs: int | None) -> int:
    if jobs is None:
        from course_utils.runtime.device import usable_cpu_count

        return usable_cpu_count()
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs: expected a positive int, got {jobs!r}")
    return jobs


def _place(sub: Submission, folder: Path, assignment: str) -> None:
    """Keep a copy of what was graded in ``OUT/submitted/`` (never over its own source)."""
    target = folder / f"{assignment}.ipynb"
    original = sub.notebook if sub.notebook is not None else sub.source
    if original.resolve() == target.resolve() or folder.resolve() == sub.source.resolve():
        return
    folder.mkdir(parents=True, exist_ok=True)
    if original.is_file():
        io.write_bytes(target, original.read_bytes())
    if sub.timestamp:
        io.write_text(folder / "timestamp.txt", sub.timestamp)


def _record(outcome: Outcome, prepared: PreparedAssignment, out: Path,
            db_url: str) -> StudentGrade:
    """Copy one finished submission into the class gradebook and output folder.

    Only the graded notebook and the feedback page are taken from the worker's
    folder; nothing else the submission produced reaches the output.
    """
    sub, assignment = outcome.submission, prepared.assignment
    student = sub.student
    logs = out / "reports" / assignment / "logs"
    log = outcome.work / "worker.log" if outcome.work is not None else None
    if log is not None and log.is_file():
        io.write_bytes(logs / f"{student}.log", log.read_bytes()[-2_000_000:])
    else:
        io.write_text(logs / f"{student}.log", outcome.message + "\n")
    feedback_dir = out / "feedback" / student / assignment
    autograded_dir = out / "autograded" / student / assignment
    for folder in (feedback_dir, autograded_dir):
        if folder.exists():
            shutil.rmtree(folder)
    withheld = None
    status, message = outcome.status, outcome.message
    if outcome.flagged_for:
        status = "flagged"
        message = "; ".join(m for m in (outcome.flagged_for, outcome.message) if m)
    with open_gradebook(db_url, prepared.course_id) as gb:
        gb.update_or_create_student(student)
        if outcome.status == "graded":
            worker_url = sqlite_url(outcome.work / "gradebook.db")
            with open_gradebook(worker_url, prepared.course_id) as wgb:
                merge_submission(wgb, gb, assignment, student)
            if outcome.flagged_for:
                withheld = withhold_autograded(gb, assignment, student, prepared.plan)
            made = outcome.work / "autograded" / student / assignment / f"{assignment}.ipynb"
            io.write_bytes(autograded_dir / f"{assignment}.ipynb", made.read_bytes())
            page = outcome.work / "feedback" / student / assignment / f"{assignment}.html"
            if outcome.flagged_for:
                _failed_page(feedback_dir, assignment, student, (
                    "Your submission was set aside for your instructor to review before it "
                    "is scored."), score="withheld until reviewed")
            elif page.is_file():
                io.write_bytes(feedback_dir / f"{assignment}.html", page.read_bytes())
        else:
            record_zero(gb, assignment, student, sub.timestamp)
            _failed_page(feedback_dir, assignment, student, outcome.message, score="0")
        scores = scores_of(gb, assignment, student, prepared.plan)
    if outcome.work is not None:
        shutil.rmtree(outcome.work, ignore_errors=True)
    auto, manual = _totals(scores, prepared.plan)
    message = "; ".join(m for m in (message, *sub.notes) if m)
    return StudentGrade(student, status, message, outcome.seconds, scores, auto,
                        manual_score=manual, withheld_score=withheld, digest=sub.digest)


def _failed_page(folder: Path, assignment: str, student: str, message: str, *,
                 score: str) -> None:
    io.write_text(folder / f"{assignment}.html", FAILED_FEEDBACK_PAGE.format(
        assignment=html.escape(assignment), student=html.escape(student),
        message=html.escape(message), score=html.escape(score)))


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
    """Grade the example class of :func:`make_example_class`; return the summary table.

    The examples are the course's own notebooks, so where no sandbox can run (a laptop
    without bubblewrap) they are graded without one, and the summary says so.
    """
    from course_utils.instructor.grading.sandbox import sandbox_problem

    out = Path(out)
    with tempfile.TemporaryDirectory(prefix="course-demo-") as scratch:
        prepared = prepare_assignment(assignment, Path(scratch) / "prepare")
        folder = make_example_class(prepared, Path(scratch) / "class")
        result = grade_submissions(folder, assignment, out_dir=out, prepared=prepared,
                                   rerun="replace", sandbox=sandbox_problem() is None)
    return format_summary(result)
