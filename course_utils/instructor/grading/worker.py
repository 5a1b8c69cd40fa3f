"""The worker: one submission graded by nbgrader in its own process and course folder.

Notebooks are graded in the ``grading`` runtime profile
(:data:`course_utils.runtime.profiles.GRADING`): the demonstrations that no cell that runs
needs are skipped (:mod:`~course_utils.instructor.grading.demonstrations`), the others run
as small as every cell allows, and the tests, which never read what the demonstrations
compute, check what they always check. In any other profile every cell runs.
``COURSE_GRADING_PROFILE`` names another profile (``smoke``, say, to see that a class gets
the same grades in it). The worker sets ``COURSE_PROFILE`` itself: one set for the
instructor's own runs never reaches a graded notebook, and the course's
``nbgrader_config.py``, which gives nbgrader's own runs a profile when none is set, does
not decide either.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from course_utils.instructor import release
from course_utils.instructor.grading.assignment import PreparedAssignment
from course_utils.instructor.grading.gradebook import sqlite_url
from course_utils.instructor.grading.submissions import Submission, notebook_to_grade
from course_utils.runtime import io, profiles

NOTEBOOK_TIMEOUT: Final = 900
#: Environment variable naming the profile notebooks are graded in (see the module
#: docstring); read where the jobs are laid out, so a cluster's workers follow it too.
PROFILE_VARIABLE: Final = "COURSE_GRADING_PROFILE"


@dataclasses.dataclass
class Outcome:
    """How a worker ended (``status``, ``message``), where its files are (``work``), and
    why the grader flags the submission for review (``flagged_for``; empty if not)."""

    submission: Submission
    status: str
    message: str
    seconds: float
    work: Path | None
    flagged_for: str = ""


def grade_one(sub: Submission, prepared: PreparedAssignment, work: Path, *,
              cell_timeout: int | None, notebook_timeout: float,
              sandbox: Mapping[str, Any] | None, released: Any) -> Outcome:
    """Grade one submission in its own course folder, in a worker process.

    :func:`make_job` lays the folder out, :func:`run_job` grades it; the folder then
    holds what the grader takes (the gradebook copy, the graded notebook, the
    feedback page, the worker's log).
    """
    make_job(sub, prepared, work, cell_timeout=cell_timeout, sandbox=sandbox,
             released=released)
    status, message, seconds = run_job(work, notebook_timeout=notebook_timeout)
    return Outcome(sub, status, message, seconds, work)


def make_job(sub: Submission, prepared: PreparedAssignment, work: Path, *,
             cell_timeout: int | None, sandbox: Mapping[str, Any] | None,
             released: Any) -> Path:
    """Lay out ``work`` to grade one submission; the folder is self-contained.

    It holds a copy of the generated course, a copy of its gradebook, the submission
    (repeated graded cells stripped, see
    :func:`~course_utils.instructor.grading.submissions.notebook_to_grade`: the integrity scan
    reads the same copy) and ``job.json``;
    ``sandbox`` is what the worker needs to start the kernel in the sandbox (``None``:
    unsandboxed), ``profile`` the runtime profile the notebook runs in
    (:func:`grading_profile`). Nothing in it names a path outside it, so it can be graded
    on another machine.
    """
    import nbformat

    assignment = prepared.assignment
    release.copy_course(prepared.course, work, [assignment])
    shutil.copyfile(prepared.course / "gradebook.db", work / "gradebook.db")
    folder = work / "submitted" / sub.student / assignment
    nb = notebook_to_grade(release.read_notebook(sub.notebook), released)
    io.write_text(folder / f"{assignment}.ipynb", nbformat.writes(nb))
    if sub.timestamp:
        io.write_text(folder / "timestamp.txt", sub.timestamp)
    io.write_json(work / "job.json", {
        "assignment": assignment, "student": sub.student, "cell_timeout": cell_timeout,
        "sandbox": dict(sandbox) if sandbox else None, "profile": grading_profile()})
    return work


def grading_profile(environ: Mapping[str, str] | None = None) -> str:
    """The runtime profile graded notebooks run in: ``COURSE_GRADING_PROFILE`` or ``grading``.

    ``environ`` defaults to ``os.environ``. Raises ``ValueError`` naming the variable and
    the profiles for an unknown name.

    >>> grading_profile({})
    'grading'
    >>> grading_profile({"COURSE_GRADING_PROFILE": " Smoke "})
    'smoke'
    """
    env = os.environ if environ is None else environ
    name = env.get(PROFILE_VARIABLE, "").strip().lower() or profiles.GRADING
    if name not in profiles.PROFILES:
        raise ValueError(f"{PROFILE_VARIABLE}: expected one of {', '.join(profiles.PROFILES)}, "
                         f"got {name!r}")
    return name


def run_job(work: Path, *, notebook_timeout: float) -> tuple[str, str, float]:
    """Grade the job laid out in ``work`` (:func:`make_job`): (status, message, seconds).

    The worker process runs nbgrader there, the notebook in the job's profile (the
    ``grading`` profile for a job laid out before jobs named one); past
    ``notebook_timeout`` it is killed with every process it started.
    """
    work = Path(work).resolve()
    spec = io.read_json(work / "job.json")
    env = release.nbgrader_environment(COURSE_PROFILE=spec.get("profile") or profiles.GRADING)
    start = time.perf_counter()
    finished = run_guarded(main, ([str(work / "job.json")],), cwd=work, env=env,
                           timeout=notebook_timeout, log_path=work / "worker.log")
    seconds = time.perf_counter() - start
    if not finished:
        return "timeout", (
            f"grading took longer than {notebook_timeout:g} s and was stopped; the notebook "
            "probably never finishes (an infinite loop the per-cell timeout cannot interrupt)"), seconds
    result_path = work / "result.json"
    if not result_path.is_file():
        return "failed", ("the grading process ended without a result "
                          f"(see reports/{spec['assignment']}/logs/{spec['student']}.log)"), seconds
    result = io.read_json(result_path)
    if result["autograde"]["success"]:
        return "graded", "", seconds
    return "failed", _explain_failure(result["autograde"]), seconds


#: What every worker imports, imported once by the process the workers are forked from
#: (:func:`run_guarded`) instead of by each worker: about 2 s a submission on two cores.
PRELOADED: Final = (
    "nbgrader.converters", "nbgrader.preprocessors", "nbconvert.exporters", "sqlalchemy",
    "psutil", "course_utils.instructor.grading.demonstrations",
    "course_utils.instructor.grading.feedback", "course_utils.instructor.grading.sandbox",
)


@functools.cache
def _forkserver() -> Any:
    """The multiprocessing context whose forkserver forks the workers, :data:`PRELOADED`."""
    import multiprocessing

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([*PRELOADED, __name__])
    return context


def run_guarded(target: Callable[..., object], args: tuple[Any, ...], *, cwd: Path,
                env: Mapping[str, str], timeout: float, log_path: Path) -> bool:
    """Run ``target(*args)`` in a worker process; past ``timeout`` kill it and every process
    it started. True if it ended.

    The worker runs in ``cwd`` with the environment ``env``, its output (stdout and
    stderr, a traceback included) in ``log_path``, in a session of its own like a process
    started with ``start_new_session``. It is forked from a server process that has
    imported :data:`PRELOADED` (Python's ``forkserver``), so it starts without importing
    them again; it shares nothing else with the process that calls this.
    """
    import psutil

    proc = _forkserver().Process(target=_in_worker, args=(target, args, str(cwd), dict(env),
                                                       str(log_path)))
    proc.start()
    proc.join(timeout)
    if proc.exitcode is not None:
        proc.close()
        return True
    try:
        family = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    for member in [*family, psutil.Process(proc.pid)]:
        try:
            member.kill()
        except psutil.NoSuchProcess:
            pass
    proc.join()
    proc.close()
    psutil.wait_procs(family, timeout=10)
    return False


def _in_worker(target: Callable[..., object], args: tuple[Any, ...], cwd: str,
               env: Mapping[str, str], log_path: str) -> None:
    """The worker's first step (:func:`run_guarded`): its session, folder, environment and
    log, then ``target(*args)``; an exception is written to the log and fails the process."""
    os.setsid()
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
        os.dup2(log, stream.fileno())
    os.close(log)
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    target(*args)


def _explain_failure(autograde: Mapping[str, Any]) -> str:
    text = f"{autograde.get('log', '')}\n{autograde.get('error', '')}"
    if "DeadKernelError" in text or "Kernel died" in text:
        return ("the kernel died while running the notebook (it called os._exit or exit at "
                "the process level, crashed, or ran out of memory)")
    errors = [ln for ln in text.splitlines() if ln.strip() and "ERROR" in ln]
    detail = errors[0].strip() if errors else text.strip().splitlines()[-1:] or ["unknown"]
    return f"nbgrader could not grade the notebook: {str(detail)[:300]}"


def main(argv: Sequence[str]) -> int:
    """Grade one submission in its course folder (run by :func:`grade_one`)."""
    spec = io.read_json(argv[0])
    root = Path(argv[0]).resolve().parent
    os.chdir(root)
    import sqlalchemy.exc

    warnings.simplefilter("ignore", category=sqlalchemy.exc.SAWarning)
    from nbgrader.converters import Autograde
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.utils import capture_log
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    overrides = Config()
    overrides.CourseDirectory.root = str(root)
    overrides.CourseDirectory.db_url = sqlite_url(root / "gradebook.db")
    if spec.get("cell_timeout"):
        overrides.Execute.timeout = int(spec["cell_timeout"])
    config.merge(overrides)
    config.merge(_execution_config(spec.get("sandbox")))
    profile = spec.get("profile") or profiles.GRADING
    config.merge(_planned(config, skip=profile == profiles.GRADING))
    coursedir = CourseDirectory(config=config)
    assignment, student = spec["assignment"], spec["student"]
    coursedir.assignment_id = assignment
    coursedir.student_id = student
    start = time.perf_counter()
    grader = Autograde(coursedir=coursedir, config=config)
    grader.force = True
    grader.create_student = True
    result: dict[str, Any] = {"autograde": capture_log(grader)}
    result["autograde_seconds"] = time.perf_counter() - start
    _print_log("autograde", result["autograde"])
    if result["autograde"]["success"]:
        try:
            _write_feedback(root, assignment, student, str(config.CourseDirectory.course_id))
            result["feedback"] = {"success": True}
        except Exception as exc:  # the grade stands; the instructor sees why there is no page
            result["feedback"] = {"success": False, "error": f"{type(exc).__name__}: {exc}"}
        _print_log("feedback", result["feedback"])
    result["seconds"] = time.perf_counter() - start
    io.write_json(root / "result.json", result)
    return 0


def _execution_config(sandbox: Mapping[str, Any] | None) -> Any:
    """How the notebook runs: its kernel in the sandbox, or, unsandboxed, outputs capped;
    either way the kernel is stopped at once when the last cell has run.

    A kernel asked to shut down politely runs Python's own shutdown first: 1.3 s for one
    that has imported TensorFlow, against 0.1 s to stop it (measured on a sandboxed
    kernel). Nothing a kernel does after its last cell counts for the grade.
    """
    from traitlets.config import Config

    from course_utils.instructor.grading import sandbox as sandboxing

    if sandbox:
        config = sandboxing.sandbox_config(sandboxing.Limits(**sandbox["limits"]))
    else:
        from nbgrader.converters import Autograde
        from nbgrader.preprocessors import IgnorePattern

        steps: list[type] = []
        for step in Autograde.class_traits()["autograde_preprocessors"].default():
            steps.append(step)
            if step is IgnorePattern:
                steps.append(sandboxing.LimitOutputBytes)
        config = Config()
        config.Autograde.autograde_preprocessors = steps
    config.Execute.shutdown_kernel = "immediate"
    return config


def _planned(config: Any, *, skip: bool) -> Any:
    """:class:`~course_utils.instructor.grading.demonstrations.PlanExecution` right before
    the step that runs the notebook: no cell skipped but those the grader picks (``skip``:
    the demonstrations no graded cell needs, in the grading profile)."""
    from traitlets.config import Config

    from course_utils.instructor.grading import demonstrations

    planned = Config()
    planned.Autograde.autograde_preprocessors = demonstrations.planned_steps(
        config.Autograde.autograde_preprocessors)
    planned.Execute.skip_cells_with_tag = demonstrations.SKIP_TAG
    planned.PlanExecution.skip_demonstrations = skip
    return planned


def _write_feedback(root: Path, assignment: str, student: str, course_id: str) -> None:
    """The student's feedback page: scores and messages, no hidden tests, no raw HTML."""
    from course_utils.instructor.grading import feedback

    graded = release.read_notebook(root / "autograded" / student / assignment
                                   / f"{assignment}.ipynb")
    master = release.read_notebook(root / "source" / assignment / f"{assignment}.ipynb")
    safe = feedback.feedback_notebook(graded, master)
    resources = feedback.feedback_resources(sqlite_url(root / "gradebook.db"), course_id,
                                            assignment, student, notebook=assignment)
    io.write_text(root / "feedback" / student / assignment / f"{assignment}.html",
                  feedback.render_feedback(safe, resources))


def _print_log(step: str, outcome: Mapping[str, Any]) -> None:
    """Echo a converter's captured log into the worker's log file (its stdout)."""
    print(f"==== nbgrader {step}: {'ok' if outcome.get('success') else 'FAILED'}")
    print(outcome.get("log", ""))
    if outcome.get("error"):
        print(outcome["error"])
    sys.stdout.flush()
