"""The worker: one submission graded by nbgrader in its own process and course folder."""

from __future__ import annotations

import copy
import dataclasses
import os
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from course_utils import io, release
from course_utils.grading.assignment import PreparedAssignment
from course_utils.grading.gradebook import sqlite_url
from course_utils.grading.submissions import Submission, place_submission

NOTEBOOK_TIMEOUT: Final = 900


@dataclasses.dataclass
class Outcome:
    submission: Submission
    status: str
    message: str
    seconds: float
    work: Path | None


def grade_one(sub: Submission, prepared: PreparedAssignment, work: Path,
               cell_timeout: int | None, notebook_timeout: float) -> Outcome:
    """Grade one submission in its own course folder, in a worker process."""
    assignment = prepared.assignment
    release.copy_course(prepared.course, work, [assignment])
    shutil.copyfile(prepared.course / "gradebook.db", work / "gradebook.db")
    place_submission(sub, work / "submitted" / sub.student / assignment, assignment)
    spec = {"course": str(work), "assignment": assignment, "student": sub.student,
            "cell_timeout": cell_timeout}
    io.write_json(work / "job.json", spec)
    cmd = [sys.executable, "-m", "course_utils.grading", "--worker", str(work / "job.json")]
    env = release.nbgrader_environment(COURSE_PROFILE=None)
    start = time.perf_counter()
    finished = run_guarded(cmd, cwd=work, env=env, timeout=notebook_timeout,
                            log_path=work / "worker.log")
    seconds = time.perf_counter() - start
    if not finished:
        return Outcome(sub, "timeout", (
            f"grading took longer than {notebook_timeout:g} s and was stopped; the notebook "
            "probably never finishes (an infinite loop the per-cell timeout cannot interrupt)"),
            seconds, work)
    result_path = work / "result.json"
    if not result_path.is_file():
        return Outcome(sub, "failed", "the grading process ended without a result "
                        f"(see logs/{sub.student}.log)", seconds, work)
    result = io.read_json(result_path)
    if result["autograde"]["success"]:
        return Outcome(sub, "graded", "", seconds, work)
    return Outcome(sub, "failed", _explain_failure(result["autograde"]), seconds, work)


def run_guarded(cmd: Sequence[str], *, cwd: Path, env: Mapping[str, str], timeout: float,
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


def main(argv: Sequence[str]) -> int:
    """Grade one submission in its course folder (run by :func:`grade_one`)."""
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
    overrides.CourseDirectory.db_url = sqlite_url(root / "gradebook.db")
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
