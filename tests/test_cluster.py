"""``course grade --scheduler``: a class graded on a real Dask cluster, workers killed mid-way.

The cluster is Dask's own: ``dask scheduler`` and ``dask worker`` (one process, one thread
each, on loopback, random ports) started from this file and stopped at its end. Nothing is
mocked: the submissions travel to the workers as packed job folders, each is graded by the
sandboxed worker there, and the results come back to this process, which writes the
gradebook. A ``dask worker`` (its nanny and worker processes) is killed with SIGKILL while it grades,
as a machine that dies would be.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from course_utils.instructor import grading, release
from course_utils.instructor.grading import cluster

ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "assignments"
LESSON = release.list_lessons(COURSE)[0]
DASK = Path(sys.executable).parent / "dask"


@dataclasses.dataclass
class DaskCluster:
    """A scheduler and its ``dask worker`` processes (each a nanny that restarts its worker)."""

    address: str
    workers: list[subprocess.Popen]
    folder: Path  # the scheduler's and workers' logs and local directories


@contextlib.contextmanager
def dask_cluster(folder: Path, workers: int, *,
                 allowed_failures: int | None = None) -> Iterator[DaskCluster]:
    """Start ``dask scheduler`` and ``workers`` × ``dask worker``; stop them all at the end."""
    env = dict(os.environ)
    if allowed_failures is not None:
        env["DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES"] = str(allowed_failures)
    folder.mkdir(parents=True, exist_ok=True)
    started: list[subprocess.Popen] = []

    def start(name: str, *args: str) -> subprocess.Popen:
        with open(folder / f"{name}.log", "wb") as log:
            proc = subprocess.Popen([str(DASK), *args], stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=env, cwd=folder)
        started.append(proc)
        return proc

    try:
        scheduler_file = folder / "scheduler.json"
        start("scheduler", "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
              "--scheduler-file", str(scheduler_file))
        deadline = time.monotonic() + 60
        while not scheduler_file.is_file():
            assert time.monotonic() < deadline, (folder / "scheduler.log").read_text()
            time.sleep(0.2)
        time.sleep(0.2)  # the file is written whole, but give it a moment
        address = json.loads(scheduler_file.read_text())["address"]
        nannies = [start(f"worker{i}", "worker", address, "--nworkers", "1", "--nthreads", "1",
                         "--host", "127.0.0.1", "--no-dashboard", "--death-timeout", "60",
                         "--local-directory", str(folder / f"worker{i}"))
                   for i in range(workers)]
        import distributed

        with distributed.Client(address, set_as_default=False, timeout=30) as client:
            client.wait_for_workers(workers, timeout=120)
        yield DaskCluster(address, nannies, folder)
    finally:
        for proc in reversed(started):
            _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    """End a process this file started and everything it started (by their ids)."""
    try:
        family = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    for member in family:
        with contextlib.suppress(psutil.Error):
            member.kill()
    psutil.wait_procs(family, timeout=10)


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@dataclasses.dataclass
class Kill:
    student: str           # whose submission the killed worker was grading
    family: list[psutil.Process]  # what that worker had started (supervisor, grader, kernel)
    lingering: list[str]   # members still running 15 s after the kill (must be none)


class WorkerKiller(threading.Thread):
    """SIGKILL the ``dask worker`` that grades a submission, ``times`` times.

    It waits until the grading process of a submission (the one the worker's supervisor
    started in the submission's job folder) has run ``after`` seconds, so the worker dies
    mid-submission, kills the nanny and its worker process (no restart: the machine is
    gone), then checks that what the worker had started dies with it.
    """

    def __init__(self, nannies: list[subprocess.Popen], times: int, after: float) -> None:
        super().__init__(daemon=True)
        self.nannies, self.times, self.after = nannies, times, after
        self.kills: list[Kill] = []
        self.done = threading.Event()

    def run(self) -> None:
        while len(self.kills) < self.times and not self.done.is_set():
            for nanny in self.nannies:
                if len(self.kills) >= self.times:  # two workers may qualify in one pass
                    break
                with contextlib.suppress(psutil.Error):
                    for worker in psutil.Process(nanny.pid).children():
                        self._maybe_kill(nanny, worker)
            time.sleep(0.2)

    def _maybe_kill(self, nanny: subprocess.Popen, worker: psutil.Process) -> None:
        family = worker.children(recursive=True)
        for proc in family:
            with contextlib.suppress(psutil.Error):
                folder = Path(proc.cwd())
                if ((folder / "job.json").is_file()
                        and time.time() - proc.create_time() >= self.after):
                    student = json.loads((folder / "job.json").read_text())["student"]
                    nanny.kill()  # SIGKILL: the machine is gone
                    worker.kill()
                    deadline = time.monotonic() + 15
                    while any(_alive(p) for p in family) and time.monotonic() < deadline:
                        time.sleep(0.2)
                    lingering = [" ".join(p.cmdline())[:120] for p in family if _alive(p)]
                    self.kills.append(Kill(student, family, lingering))
                    return


def _expected_scores(prepared: grading.PreparedAssignment) -> dict[str, dict[str, float]]:
    """What a local grading gives the example class: ada full, grace her half, alan zero."""
    plan = prepared.plan
    code = list(plan.tests_of)
    solved = {t for k in code[: max(1, len(code) // 2)] for t in plan.tests_of[k]}
    return {"ada": dict(plan.autograded),
            "grace": {t: (p if t in solved else 0.0) for t, p in plan.autograded.items()},
            "alan": {t: 0.0 for t in plan.autograded}}


def _grade(prepared, submissions: Path, out: Path, address: str) -> tuple[grading.GradeResult,
                                                                            list[tuple]]:
    calls: list[tuple] = []
    result = grading.grade_submissions(
        submissions, LESSON, out_dir=out, course_root=COURSE, prepared=prepared,
        scheduler=address, progress=lambda g, done, total: calls.append((g.student, done, total)))
    return result, calls


def _check_recorded_once(result: grading.GradeResult, prepared, students: list[str]) -> None:
    """Every student once in the gradebook, grades.csv and the report, as the result says."""
    from nbgrader.api import Gradebook

    with Gradebook(result.db_url, prepared.course_id) as gb:
        ids = [s.student.id for s in gb.find_assignment(LESSON).submissions]
    assert sorted(ids) == sorted(students)
    with open(result.grades_csv) as fh:
        rows = [row["student_id"] for row in csv.DictReader(fh)]
    assert sorted(rows) == sorted(students)
    report = json.loads(result.report_json.read_text())
    assert sorted(s["student"] for s in report["students"]) == sorted(students)


def _check_scores(result: grading.GradeResult, expected: dict[str, dict[str, float]]) -> None:
    wrong = []
    for name, scores in expected.items():
        got = result.student(name)
        if got.status != "graded":
            wrong.append(f"{name}: {got.status} ({got.message})")
        wrong += [f"{name}: {task} got {got.scores.get(task)}, expected {points}"
                  for task, points in scores.items() if got.scores.get(task) != points]
        if not result.feedback(name).is_file():
            wrong.append(f"{name}: no feedback page")
    assert not wrong, "\n".join(wrong)


# --- without a cluster ---------------------------------------------------------------


def test_an_unreachable_scheduler_fails_at_once_naming_it_before_any_grading(tmp_path, capsys):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "ada.ipynb").write_text("{}")
    out = tmp_path / "out"
    start = time.perf_counter()
    with pytest.raises(RuntimeError, match=f"Dask scheduler at {address}"):
        grading.grade_submissions(subs, LESSON, out_dir=out, course_root=COURSE,
                                  scheduler=address, sandbox=False)
    assert time.perf_counter() - start < 5
    assert not out.exists(), "nothing may be written before the scheduler is reached"

    import argparse

    parser = argparse.ArgumentParser()
    grading.configure_parser(parser)
    args = parser.parse_args([str(subs), "--assignment", LESSON, "--course", str(COURSE),
                              "--out", str(out), "--scheduler", address, "--unsandboxed"])
    assert grading.run_command(args) == 2
    assert address in capsys.readouterr().err
    with pytest.raises(ValueError, match="scheduler: expected a Dask scheduler address"):
        grading.grade_submissions(subs, LESSON, out_dir=out, course_root=COURSE,
                                  scheduler=8786, sandbox=False)


def test_results_come_back_only_as_the_files_the_grader_records(tmp_path):
    spec = {"student": "ada", "assignment": LESSON}
    job = tmp_path / "job"
    for name in (*cluster.result_files(spec), "source/notes.txt", "scratch/big.bin"):
        (job / name).parent.mkdir(parents=True, exist_ok=True)
        (job / name).write_text(name)
    packed = cluster.pack_folder(job, cluster.result_files(spec))
    got = cluster.unpack(packed, tmp_path / "back", allowed=cluster.result_files(spec))
    assert got == list(cluster.result_files(spec))
    with pytest.raises(ValueError, match="scratch/big.bin"):
        cluster.unpack(cluster.pack_folder(job), tmp_path / "all",
                       allowed=cluster.result_files(spec))
    for evil in ("../outside.txt", "/etc/passwd-copy"):
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            info = tarfile.TarInfo(evil)
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))
        with pytest.raises(ValueError, match="expected regular files named inside"):
            cluster.unpack(buffer.getvalue(), tmp_path / "evil")
    assert not (tmp_path / "outside.txt").exists()


# --- on a cluster: a scheduler and two workers for the module --------------------------


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory) -> Iterator[DaskCluster]:
    with dask_cluster(tmp_path_factory.mktemp("dask"), workers=2) as running:
        yield running


@pytest.fixture(scope="module")
def example_class(prepared_lesson, tmp_path_factory):
    prepared = prepared_lesson(LESSON)
    return prepared, grading.make_example_class(prepared, tmp_path_factory.mktemp("class"))


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_class_graded_on_the_cluster_gets_the_scores_of_a_local_grading(
        two_workers, example_class, tmp_path):
    prepared, submissions = example_class
    result, calls = _grade(prepared, submissions, tmp_path / "out", two_workers.address)
    _check_scores(result, _expected_scores(prepared))
    _check_recorded_once(result, prepared, ["ada", "alan", "grace"])
    assert sorted(s for s, _, _ in calls) == ["ada", "alan", "grace"]
    assert [(done, total) for _, done, total in calls] == [(1, 3), (2, 3), (3, 3)]
    assert not (tmp_path / "out" / ".work").exists()
    # Each worker thread starts one supervisor and grades all its jobs with it: three
    # submissions on two one-thread workers, at most two supervisors, all still running.
    supervisors = sorted(two_workers.folder.rglob("course-grade-supervisor-*.err"))
    assert 1 <= len(supervisors) <= 2, [p.name for p in supervisors]
    started = [p.cmdline() for nanny in two_workers.workers
               for p in psutil.Process(nanny.pid).children(recursive=True)]
    running = [cmd for cmd in started
               if "course_utils.instructor.grading.cluster" in cmd and "--serve" in cmd]
    assert len(running) == len(supervisors), started


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_worker_killed_mid_submission_is_graded_again_and_recorded_once(
        example_class, tmp_path):
    prepared, submissions = example_class
    with dask_cluster(tmp_path / "dask", workers=2) as dask:
        killer = WorkerKiller(dask.workers, times=1, after=3.0)
        killer.start()
        try:
            result, calls = _grade(prepared, submissions, tmp_path / "out", dask.address)
        finally:
            killer.done.set()
            killer.join()
    assert len(killer.kills) == 1, "no worker was killed while grading"
    kill = killer.kills[0]
    assert kill.lingering == [], f"the killed worker's grading outlived it: {kill.lingering}"
    _check_scores(result, _expected_scores(prepared))
    _check_recorded_once(result, prepared, ["ada", "alan", "grace"])
    assert sorted(s for s, _, _ in calls) == ["ada", "alan", "grace"]


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("allowed_failures", [3, 0])
def test_a_submission_whose_workers_die_twice_is_reported_failed_once(
        allowed_failures, example_class, tmp_path):
    """Whatever the scheduler's allowed-failures, two deaths end the submission's tries."""
    prepared, submissions = example_class
    one = tmp_path / "one"
    one.mkdir()
    shutil.copy(submissions / "ada.ipynb", one / "ada.ipynb")
    with dask_cluster(tmp_path / "dask", workers=3, allowed_failures=allowed_failures) as dask:
        killer = WorkerKiller(dask.workers, times=2, after=1.0)
        killer.start()
        try:
            result, calls = _grade(prepared, one, tmp_path / "out", dask.address)
        finally:
            killer.done.set()
            killer.join()
    assert [k.student for k in killer.kills] == ["ada", "ada"]
    assert all(k.lingering == [] for k in killer.kills), [k.lingering for k in killer.kills]
    ada = result.student("ada")
    assert ada.status == "failed" and "died 2 times" in ada.message, ada
    assert ada.autograded_score == 0
    assert calls == [("ada", 1, 1)]
    _check_recorded_once(result, prepared, ["ada"])
