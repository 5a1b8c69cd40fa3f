"""``course grade``: grade a whole class with nbgrader's autograder and gradebook.

Input is either nbgrader's ``submitted/<student>/<assignment>/`` tree (what
``nbgrader collect`` or the formgrader produce) or a flat folder of
``<student>.ipynb`` files and ``<student>.zip`` archives holding one notebook
each. The output folder is itself an nbgrader course root, so the formgrader
can take over for manual grading::

    OUT/
        gradebook.db          the gradebook (or the database given with --db)
        submitted/ autograded/ feedback/<student>/<assignment>/<assignment>.html
        grades.csv            nbgrader's export, one row per student
        task_stats.csv        per graded cell: points, mean, full and zero marks
        score_histogram.png   the class's autograded scores
        grading_report.json   per student: status, seconds, score of every task
        logs/<student>.log    what nbgrader printed for that student

How it runs, and why. nbgrader's gradebook is a database that its autograder
writes to at the start and the end of every submission; SQLite does not take
concurrent writers well, and a submission that hangs or kills its kernel must
not take other students' grades with it. So every submission is graded in its
own throw-away nbgrader course (the course files, a copy of the gradebook made
once by ``generate_assignment``, the one submission) by a separate Python
process that runs nbgrader's ``Autograde`` and ``GenerateFeedback`` converters.
Up to ``jobs`` of them run at once. The parent process alone writes to the
class gradebook: it copies each finished submission's grades and comments in,
one at a time, as they arrive. Every student therefore appears exactly once,
with the grades nbgrader computed, whatever the order the workers finish in.

Faults stay contained: nbgrader's per-cell timeout interrupts an infinite loop
and grading goes on; a wall-clock guard kills a worker (and its kernel) that
runs longer than ``notebook_timeout``; a file that is not a notebook, a kernel
that dies or any other failure gives that student zero, flags the submission
for review and says why. Notebooks run in the ``smoke`` profile.

Examples
--------
.. code-block:: console

    $ course grade submissions/ --assignment 00_workflow --jobs 2 --out runs/grading
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import copy
import csv
import dataclasses
import html
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from course_utils import io, release

#: Seconds a whole submission may take before its worker is killed (default).
NOTEBOOK_TIMEOUT: Final = 900
#: Student ids nbgrader can use as folder names.
STUDENT_ID_PATTERN: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$")
#: Statuses of a submission after grading.
STATUSES: Final = ("graded", "failed", "timeout", "invalid")
_SOLUTION_MARKERS = re.compile(r"^\s*(?:#{3}|={3})\s*(?:BEGIN|END) SOLUTION\s*(?:={3})?\s*$")
_FEEDBACK_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{assignment}: {student}</title></head>
<body><h1>{assignment}: {student}</h1>
<p><strong>Your submission could not be graded automatically.</strong></p>
<p>{message}</p>
<p>Score: 0. Your instructor has been notified and will look at it.</p>
</body></html>
"""


# --------------------------------------------------------------------------- data


@dataclasses.dataclass(frozen=True)
class Submission:
    """One student's submission found in the input.

    ``notebook`` is the file to grade; ``problem`` says why it cannot be graded
    (then ``notebook`` may be ``None``).
    """

    student: str
    notebook: Path | None
    source: Path
    timestamp: str | None = None
    problem: str | None = None


@dataclasses.dataclass(frozen=True)
class GradingPlan:
    """The graded cells of an assignment, read from its master.

    Attributes
    ----------
    autograded: test cell id -> points, in notebook order.
    manual: manually graded answer cell id -> points.
    tests_of: solution cell id -> ids of the test cells that check it (the
        test cells between it and the next solution cell).
    """

    autograded: Mapping[str, float]
    manual: Mapping[str, float]
    tests_of: Mapping[str, tuple[str, ...]]

    @property
    def max_autograded(self) -> float:
        """Points of all autograded tasks."""
        return float(sum(self.autograded.values()))

    @property
    def max_score(self) -> float:
        """Points of the whole assignment (autograded and manual)."""
        return self.max_autograded + float(sum(self.manual.values()))


@dataclasses.dataclass(frozen=True)
class PreparedAssignment:
    """An assignment generated once, ready to grade any number of submissions.

    ``course`` is an nbgrader course root holding ``source/``, ``release/`` and the
    ``gradebook.db`` every submission's private gradebook is copied from.
    """

    assignment: str
    course: Path
    plan: GradingPlan
    course_id: str

    @property
    def student_notebook(self) -> Path:
        """The generated student version of the assignment."""
        return self.course / "release" / self.assignment / f"{self.assignment}.ipynb"

    @property
    def master(self) -> Path:
        """The master (solutions and hidden tests) the course was generated from."""
        return self.course / "source" / self.assignment / f"{self.assignment}.ipynb"


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


# --------------------------------------------------------------------------- notebooks


def read_grading_plan(nb: Any) -> GradingPlan:
    """The graded cells of a master or student notebook (see :class:`GradingPlan`).

    >>> import nbformat
    >>> def cell(i, **kw):
    ...     meta = {"grade_id": i, "grade": False, "solution": False, **kw}
    ...     return nbformat.v4.new_code_cell("", metadata={"nbgrader": meta})
    >>> nb = nbformat.v4.new_notebook(cells=[cell("f", solution=True),
    ...     cell("f_works", grade=True, points=2)])
    >>> plan = read_grading_plan(nb)
    >>> dict(plan.autograded), dict(plan.tests_of)
    ({'f_works': 2.0}, {'f': ('f_works',)})
    """
    autograded: dict[str, float] = {}
    manual: dict[str, float] = {}
    tests_of: dict[str, list[str]] = {}
    current: str | None = None
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        grade_id = meta.get("grade_id")
        if not grade_id:
            continue
        if meta.get("solution") and cell.cell_type == "code":
            current = grade_id
            tests_of.setdefault(grade_id, [])
        if meta.get("grade"):
            points = float(meta.get("points", 0))
            if meta.get("solution") or cell.cell_type != "code":
                manual[grade_id] = points
            else:
                autograded[grade_id] = points
                if current is not None:
                    tests_of[current].append(grade_id)
    return GradingPlan(autograded, manual, {k: tuple(v) for k, v in tests_of.items()})


def solution_answers(master: Any) -> dict[str, str]:
    """The reference answer of every solution cell of a master, by cell id.

    The ``### BEGIN SOLUTION`` / ``### END SOLUTION`` lines are dropped, so the
    text is what a student who solved the task would have written.

    >>> import nbformat
    >>> src = "def f():\\n    ### BEGIN SOLUTION\\n    return 1\\n    ### END SOLUTION"
    >>> meta = {"nbgrader": {"grade_id": "f", "solution": True, "grade": False}}
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src, metadata=meta)])
    >>> solution_answers(nb)
    {'f': 'def f():\\n    return 1'}
    """
    answers = {}
    for cell in master.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution") and meta.get("grade_id"):
            lines = [ln for ln in cell.source.splitlines() if not _SOLUTION_MARKERS.match(ln)]
            answers[meta["grade_id"]] = "\n".join(lines).strip("\n")
    return answers


def make_submission(student_nb: Any, answers: Mapping[str, str]) -> Any:
    """A copy of the student version with some cells' sources replaced, by cell id.

    ``ValueError`` names an id the notebook does not have.

    >>> import nbformat
    >>> meta = {"nbgrader": {"grade_id": "f", "solution": True, "grade": False}}
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("raise", metadata=meta)])
    >>> make_submission(nb, {"f": "x = 1"}).cells[0].source
    'x = 1'
    """
    nb = copy.deepcopy(student_nb)
    by_id = {c.get("metadata", {}).get("nbgrader", {}).get("grade_id"): c for c in nb.cells}
    unknown = sorted(set(answers) - set(by_id))
    if unknown:
        known = sorted(k for k in by_id if k)
        raise ValueError(f"no cells with ids {unknown} in the notebook; its cell ids: {known}")
    for grade_id, source in answers.items():
        by_id[grade_id].source = source
    return nb


# --------------------------------------------------------------------------- input


def find_submissions(path: str | os.PathLike[str], assignment: str,
                     *, staging: str | os.PathLike[str]) -> list[Submission]:
    """The submissions in ``path``, one per student, sorted by student id.

    ``path`` is nbgrader's ``submitted/`` tree (``<student>/<assignment>/``) or a
    flat folder of ``<student>.ipynb`` and ``<student>.zip`` files; archives are
    unpacked into ``staging``. What cannot be graded (an archive without exactly
    one notebook, a bad student id, a file that is not a notebook) is returned
    with its ``problem`` set, never dropped.
    """
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: submissions folder not found")
    staging = Path(staging)
    tree = [d for d in sorted(root.iterdir()) if d.is_dir() and (d / assignment).is_dir()]
    found: list[Submission] = []
    if tree:
        for student_dir in tree:
            folder = student_dir / assignment
            notebook = folder / f"{assignment}.ipynb"
            stamp = folder / "timestamp.txt"
            timestamp = _read_timestamp(stamp)
            problem = None if notebook.is_file() else f"no {assignment}.ipynb in {folder}"
            found.append(Submission(student_dir.name, notebook if notebook.is_file() else None,
                                    folder, timestamp, problem))
    else:
        for file in sorted(root.iterdir()):
            if file.suffix.lower() == ".ipynb":
                found.append(Submission(file.stem, file, file))
            elif file.suffix.lower() == ".zip":
                found.append(_unpack(file, staging / file.stem))
    if not found:
        raise FileNotFoundError(
            f"{root}: no submissions; expected <student>/{assignment}/{assignment}.ipynb "
            "folders (nbgrader's submitted/ tree) or <student>.ipynb / <student>.zip files"
        )
    checked: list[Submission] = []
    seen: set[str] = set()
    for sub in found:
        problem = sub.problem
        if not STUDENT_ID_PATTERN.match(sub.student):
            problem = (f"{sub.source.name}: {sub.student!r} is not a usable student id "
                       "(letters, digits, and . _ @ - only)")
        elif sub.student in seen:
            problem = f"{sub.source.name}: a second submission from {sub.student!r}"
        elif problem is None and sub.notebook is not None:
            problem = _notebook_problem(sub.notebook)
        seen.add(sub.student)
        checked.append(dataclasses.replace(sub, problem=problem))
    return sorted(checked, key=lambda s: s.student)


def _read_timestamp(path: Path) -> str | None:
    """The submission time in ``timestamp.txt``; ``None`` when absent or unreadable."""
    from nbgrader.utils import parse_utc

    if not path.is_file():
        return None
    text = path.read_text(errors="replace").strip()
    try:
        parse_utc(text)
    except (ValueError, OverflowError):
        return None
    return text or None


def _unpack(archive: Path, dest: Path) -> Submission:
    try:
        with zipfile.ZipFile(archive) as zf:
            names = [n for n in zf.namelist()
                     if n.endswith(".ipynb") and "__MACOSX" not in n
                     and ".ipynb_checkpoints" not in n]
            if len(names) != 1:
                return Submission(archive.stem, None, archive, problem=(
                    f"{archive.name}: expected one .ipynb file in the archive, found {len(names)}"))
            dest.mkdir(parents=True, exist_ok=True)
            target = dest / f"{archive.stem}.ipynb"
            target.write_bytes(zf.read(names[0]))
    except zipfile.BadZipFile:
        return Submission(archive.stem, None, archive, problem=f"{archive.name}: not a zip archive")
    return Submission(archive.stem, target, archive)


def _notebook_problem(path: Path) -> str | None:
    import nbformat

    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
    except Exception as exc:  # nbformat raises JSON, schema and encoding errors
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return f"{path.name}: not a valid Jupyter notebook ({reason[:200]})"
    return None


# --------------------------------------------------------------------------- preparing


def prepare_assignment(
    assignment: str,
    work_dir: str | os.PathLike[str],
    *,
    course_root: str | os.PathLike[str] | None = None,
) -> PreparedAssignment:
    """Generate ``assignment`` once with nbgrader, in ``work_dir``, for grading.

    Runs the master in the ``smoke`` profile (nbgrader instantiates the autotests)
    and records its cells in a fresh gradebook. Reuse the result for several
    :func:`grade_submissions` calls to pay this only once.
    """
    root = release.find_course_root() if course_root is None else Path(course_root)
    master = release.read_notebook(release.master_path(assignment, root))
    course = release.generate_course(assignment, Path(work_dir) / "template", course_root=root)
    plan = read_grading_plan(master)
    if not plan.autograded and not plan.manual:
        raise ValueError(f"{release.master_path(assignment, root)}: no graded cells")
    return PreparedAssignment(assignment, course, plan, _course_id(course))


def _course_id(course: Path) -> str:
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    return str(config.CourseDirectory.get("course_id", "default_course") or "default_course")


def _sqlite_url(path: Path) -> str:
    return f"sqlite:///{path.resolve()}"


@contextlib.contextmanager
def _gradebook(db_url: str, course_id: str) -> Iterator[Any]:
    """nbgrader's ``Gradebook``, without the SQLAlchemy warnings its own code triggers."""
    import sqlalchemy.exc
    from nbgrader.api import Gradebook

    release.ensure_scripts_on_path()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=sqlalchemy.exc.SAWarning)
        with Gradebook(db_url, course_id) as gb:
            yield gb


def _copy_structure(template_url: str, db_url: str, assignment: str, course_id: str) -> None:
    """Create (or check) the assignment's notebooks and cells in the class gradebook."""
    from nbgrader.api import MissingEntry

    with _gradebook(template_url, course_id) as src, _gradebook(db_url, course_id) as dst:
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


# --------------------------------------------------------------------------- grading


@dataclasses.dataclass
class _Outcome:
    submission: Submission
    status: str
    message: str
    seconds: float
    work: Path | None


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
    db_url = db_url or _sqlite_url(out / "gradebook.db")
    template_url = _sqlite_url(prepared.course / "gradebook.db")
    _copy_structure(template_url, db_url, assignment, prepared.course_id)
    for sub in subs:
        _place_submission(sub, out / "submitted" / sub.student / assignment, assignment)

    total, done = len(subs), 0
    grades: dict[str, StudentGrade] = {}

    def finish(outcome: _Outcome) -> None:
        nonlocal done
        grade = _record(outcome, prepared, out, db_url)
        grades[grade.student] = grade
        done += 1
        if progress is not None:
            progress(grade, done, total)

    gradable = [s for s in subs if s.problem is None]
    for sub in subs:
        if sub.problem is not None:
            finish(_Outcome(sub, "invalid", sub.problem, 0.0, None))
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [
            pool.submit(_grade_one, sub, prepared, work_root / "students" / sub.student,
                        cell_timeout, notebook_timeout)
            for sub in gradable
        ]
        for future in concurrent.futures.as_completed(futures):
            finish(future.result())

    students = tuple(grades[s.student] for s in subs)
    result = _write_reports(prepared, out, db_url, students, jobs,
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


def _place_submission(sub: Submission, folder: Path, assignment: str) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    original = sub.notebook if sub.notebook is not None else sub.source
    if original.is_file():
        shutil.copyfile(original, folder / f"{assignment}.ipynb")
    if sub.timestamp:
        io.write_text(folder / "timestamp.txt", sub.timestamp)


def _grade_one(sub: Submission, prepared: PreparedAssignment, work: Path,
               cell_timeout: int | None, notebook_timeout: float) -> _Outcome:
    """Grade one submission in its own course folder, in a worker process."""
    assignment = prepared.assignment
    release.copy_course(prepared.course, work, [assignment])
    shutil.copyfile(prepared.course / "gradebook.db", work / "gradebook.db")
    _place_submission(sub, work / "submitted" / sub.student / assignment, assignment)
    spec = {"course": str(work), "assignment": assignment, "student": sub.student,
            "cell_timeout": cell_timeout}
    io.write_json(work / "job.json", spec)
    cmd = [sys.executable, "-m", "course_utils.grading", "--worker", str(work / "job.json")]
    env = release.nbgrader_environment(COURSE_PROFILE=None)
    start = time.perf_counter()
    finished = _run_guarded(cmd, cwd=work, env=env, timeout=notebook_timeout,
                            log_path=work / "worker.log")
    seconds = time.perf_counter() - start
    if not finished:
        return _Outcome(sub, "timeout", (
            f"grading took longer than {notebook_timeout:g} s and was stopped; the notebook "
            "probably never finishes (an infinite loop the per-cell timeout cannot interrupt)"),
            seconds, work)
    result_path = work / "result.json"
    if not result_path.is_file():
        return _Outcome(sub, "failed", "the grading process ended without a result "
                        f"(see logs/{sub.student}.log)", seconds, work)
    result = io.read_json(result_path)
    if result["autograde"]["success"]:
        return _Outcome(sub, "graded", "", seconds, work)
    return _Outcome(sub, "failed", _explain_failure(result["autograde"]), seconds, work)


def _run_guarded(cmd: Sequence[str], *, cwd: Path, env: Mapping[str, str], timeout: float,
                 log_path: Path) -> bool:
    """Run ``cmd``; past ``timeout`` kill it and every process it started. True if it ended."""
    import psutil

    with open(log_path, "wb") as log:
        proc = subprocess.Popen(list(cmd), cwd=cwd, env=dict(env), stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            proc.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            try:
                family = psutil.Process(proc.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                family = []
            for member in [*family, psutil.Process(proc.pid)]:
                try:
                    member.kill()
                except psutil.NoSuchProcess:
                    pass
            proc.wait()
            psutil.wait_procs(family, timeout=10)
            return False


def _explain_failure(autograde: Mapping[str, Any]) -> str:
    text = f"{autograde.get('log', '')}\n{autograde.get('error', '')}"
    if "DeadKernelError" in text or "Kernel died" in text:
        return ("the kernel died while running the notebook (it called os._exit or exit at "
                "the process level, crashed, or ran out of memory)")
    errors = [ln for ln in text.splitlines() if ln.strip() and "ERROR" in ln]
    detail = errors[0].strip() if errors else text.strip().splitlines()[-1:] or ["unknown"]
    return f"nbgrader could not grade the notebook: {str(detail)[:300]}"


def _record(outcome: _Outcome, prepared: PreparedAssignment, out: Path,
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
    with _gradebook(db_url, prepared.course_id) as gb:
        gb.update_or_create_student(student)
        if outcome.status == "graded":
            worker_url = _sqlite_url(outcome.work / "gradebook.db")
            with _gradebook(worker_url, prepared.course_id) as wgb:
                _merge_submission(wgb, gb, assignment, student)
            shutil.copytree(outcome.work / "autograded" / student / assignment, autograded_dir)
            made = outcome.work / "feedback" / student / assignment
            if made.is_dir():
                shutil.copytree(made, feedback_dir)
        else:
            _record_zero(gb, assignment, student, sub.timestamp)
            io.write_text(feedback_dir / f"{assignment}.html", _FEEDBACK_PAGE.format(
                assignment=html.escape(assignment), student=html.escape(student),
                message=html.escape(outcome.message)))
        scores = _scores(gb, assignment, student, prepared.plan)
    if outcome.work is not None:
        shutil.rmtree(outcome.work, ignore_errors=True)
    auto = float(sum(scores[k] or 0.0 for k in prepared.plan.autograded if k in scores))
    return StudentGrade(student, outcome.status, outcome.message, outcome.seconds, scores, auto)


def _merge_submission(src: Any, dst: Any, assignment: str, student: str) -> None:
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


def _record_zero(gb: Any, assignment: str, student: str, timestamp: str | None) -> None:
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


def _scores(gb: Any, assignment: str, student: str, plan: GradingPlan) -> dict[str, float | None]:
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


# --------------------------------------------------------------------------- reports


def _write_reports(prepared: PreparedAssignment, out: Path, db_url: str,
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


# --------------------------------------------------------------------------- demo


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


# --------------------------------------------------------------------------- CLI


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


# --------------------------------------------------------------------------- worker


def _worker_main(argv: Sequence[str]) -> int:
    """Grade one submission in its course folder (run by :func:`_grade_one`)."""
    spec = io.read_json(argv[0])
    root = Path(spec["course"]).resolve()
    os.chdir(root)
    import sqlalchemy.exc

    warnings.simplefilter("ignore", category=sqlalchemy.exc.SAWarning)
    from nbgrader.converters import Autograde, GenerateFeedback
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.utils import capture_log
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    overrides = Config()
    overrides.CourseDirectory.root = str(root)
    overrides.CourseDirectory.db_url = _sqlite_url(root / "gradebook.db")
    if spec.get("cell_timeout"):
        overrides.Execute.timeout = int(spec["cell_timeout"])
    config.merge(overrides)
    coursedir = CourseDirectory(config=config)
    coursedir.assignment_id = spec["assignment"]
    coursedir.student_id = spec["student"]
    start = time.perf_counter()
    grader = Autograde(coursedir=coursedir, config=config)
    grader.force = True
    grader.create_student = True
    result: dict[str, Any] = {"autograde": capture_log(grader)}
    result["autograde_seconds"] = time.perf_counter() - start
    _print_log("autograde", result["autograde"])
    if result["autograde"]["success"]:
        feedback_config = copy.deepcopy(config)
        feedback_config.HTMLExporter.template_name = "feedback"
        feedback = GenerateFeedback(coursedir=coursedir, config=feedback_config)
        feedback.force = True
        result["feedback"] = capture_log(feedback)
        _print_log("generate_feedback", result["feedback"])
    result["seconds"] = time.perf_counter() - start
    io.write_json(root / "result.json", result)
    return 0


def _print_log(step: str, outcome: Mapping[str, Any]) -> None:
    """Echo a converter's captured log into the worker's log file (its stdout)."""
    print(f"==== nbgrader {step}: {'ok' if outcome.get('success') else 'FAILED'}")
    print(outcome.get("log", ""))
    if outcome.get("error"):
        print(outcome["error"])
    sys.stdout.flush()

