"""Grading on a Dask cluster: one task per submission, the gradebook still written here.

``course grade --scheduler ADDRESS`` (``grade_submissions(..., scheduler=...)``) grades
on a Dask distributed cluster: what JupyterHub deployments offer through Dask Gateway,
Kubernetes, or Slurm through dask-jobqueue. Without it grading stays on this machine.

How a submission travels (:func:`run_jobs`):

1. the grader lays its job folder out here (:func:`~course_utils.instructor.grading.worker.make_job`:
   the lesson's course files, a gradebook copy, the submission, ``job.json``) and sends it
   as one task, the folder packed into a gzipped tar in memory (:func:`pack_folder`);
2. on whichever Dask worker runs the task, :func:`grade_packed_job` unpacks it into the
   worker's scratch folder and hands it to the worker's supervisor, which grades it with
   :func:`~course_utils.instructor.grading.worker.run_job` (the sandboxed kernel, the
   wall-clock guard). The supervisor is one long-lived process per Dask worker thread
   (:class:`_Supervisor`): Dask starts its workers as daemonic processes, which may not
   start Python's forkserver, so the supervisor keeps the forkserver that has the
   grading modules imported, and every job after the first starts without importing
   them. It dies with the Dask worker (``PR_SET_PDEATHSIG``) and takes the grading
   process and its kernel with it, so no orphan grading run lingers on a machine whose
   worker died;
3. only the files the grader records (:func:`result_files`) come back, as bytes, to the
   one process that writes the gradebook: it unpacks them into the local job folder and
   records them exactly as for a local run.

A Dask worker that dies mid-submission (a machine lost, memory exhausted) costs that
submission one attempt: it is graded again on another worker, and after
:data:`MAX_ATTEMPTS` starts it is reported ``failed``, saying machines died grading it:
never lost, never recorded twice. The attempts are counted here, not by the scheduler's
``allowed-failures`` setting (whatever a deployment sets it to): each start of a task
adds one to the run's count in a Dask ``Variable`` (under a Dask ``Lock``), a start past
the limit refuses to grade, and a task the scheduler gives up on (``KilledWorker``) is
submitted again once if it has started fewer than :data:`MAX_ATTEMPTS` times.

The Dask workers need course-utils (with its ``course`` extra) and bubblewrap installed,
like the machine that grades locally; Dask itself comes with the ``cluster`` extra
(:func:`course_utils.runtime.install.install_hint`).

Examples
--------
>>> import tempfile
>>> with tempfile.TemporaryDirectory() as tmp:
...     job = Path(tmp) / "job"
...     _ = io.write_text(job / "job.json", "{}")
...     _ = io.write_text(job / "submitted" / "ada" / "00.ipynb", "{}")
...     unpack(pack_folder(job), Path(tmp) / "copy")
['job.json', 'submitted/ada/00.ipynb']
>>> result_files({"student": "ada", "assignment": "00_workflow"})[-1]
'feedback/ada/00_workflow/00_workflow.html'
>>> check_scheduler(8786)
Traceback (most recent call last):
ValueError: scheduler: expected a Dask scheduler address such as tcp://host:8786, or a Dask cluster object, got 8786
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import io as bytes_io
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import uuid
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any, Final

from course_utils.runtime import io

#: Starts of one submission on Dask workers before it is reported ``failed``: the first
#: and one retry on another worker.
MAX_ATTEMPTS: Final = 2
#: Seconds to reach the scheduler before ``course grade`` gives up, before any grading.
CONNECT_TIMEOUT: Final = 10.0
#: What a worker's log brings back at most (the end of it), as the grader keeps.
LOG_BYTES: Final = 2_000_000
#: What a packed job or result may hold at most once unpacked (bytes).
MAX_UNPACKED_BYTES: Final = 512 * 2**20

PR_SET_PDEATHSIG: Final = 1


def check_scheduler(scheduler: Any, *, timeout: float = CONNECT_TIMEOUT) -> int:
    """Connect to ``scheduler`` and return how many Dask workers it has now.

    ``scheduler`` is an address (``tcp://host:8786``, what a cluster's
    ``scheduler_address`` says) or a Dask cluster object (e.g. Dask Gateway's, which
    carries its TLS credentials). ``RuntimeError`` naming the address if it cannot be
    reached within ``timeout`` seconds (or Dask's ``distributed`` is not installed);
    ``ValueError`` if it is neither. A cluster without workers yet is fine (an adaptive
    one starts them when tasks arrive).
    """
    address = _address_of(scheduler)
    distributed = _import_distributed()
    _probe(address, timeout)
    try:
        with distributed.Client(scheduler, timeout=timeout, set_as_default=False) as client:
            return len(client.nthreads())
    except (OSError, TimeoutError, ValueError) as exc:
        raise RuntimeError(f"scheduler: could not connect to the Dask scheduler at {address} "
                           f"within {timeout:g} s ({exc}); is it running, and is this the "
                           "address its cluster reports as scheduler_address?") from None


def run_jobs(scheduler: Any, folders: Iterable[str | os.PathLike[str]], *,
             notebook_timeout: float) -> Iterator[tuple[Path, str, str, float]]:
    """Grade job folders on the Dask cluster; yield ``(folder, status, message, seconds)``.

    Each folder (laid out by :func:`~course_utils.instructor.grading.worker.make_job`) becomes one
    task; ``folders`` is read, packed and emptied as it is submitted, and each result is
    yielded as it arrives, its files (:func:`result_files`) unpacked into its folder: what
    :func:`~course_utils.instructor.grading.worker.run_job` leaves after a local run. Every folder is
    yielded exactly once, ``failed`` if the cluster could not grade it (see the module's
    notes on retries). ``scheduler`` as for :func:`check_scheduler`.
    """
    folders = iter(folders)
    first = next(folders, None)
    if first is None:
        return
    distributed = _import_distributed()
    address = _address_of(scheduler)
    run = uuid.uuid4().hex[:12]
    counter = f"course-grade-{run}"
    try:
        client = distributed.Client(scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise RuntimeError(f"scheduler: lost the Dask scheduler at {address} ({exc})") from None
    starts = distributed.Variable(counter, client=client)
    pending = distributed.as_completed(loop=client.loop)
    jobs: dict[str, tuple[Path, bytes, Mapping[str, Any], int]] = {}

    def submit(folder: Path, payload: bytes, spec: Mapping[str, Any], tries: int) -> None:
        future = client.submit(grade_packed_job, payload, notebook_timeout=notebook_timeout,
                               counter=counter, label=folder.name,
                               key=f"course-grade-{folder.name}-{run}-{tries}",
                               pure=False, retries=0)
        jobs[future.key] = (folder, payload, spec, tries)
        pending.add(future)

    try:
        starts.set({})
        for folder in itertools.chain([first], folders):
            folder = Path(folder)
            spec = io.read_json(folder / "job.json")
            payload = pack_folder(folder)
            shutil.rmtree(folder)  # the results come back into it; the job lives in payload
            folder.mkdir()
            submit(folder, payload, spec, 1)
        for future in pending:
            folder, payload, spec, tries = jobs.pop(future.key)
            try:
                answer = future.result()
            except distributed.KilledWorker:
                started = int(starts.get(timeout=CONNECT_TIMEOUT).get(folder.name, 0))
                if tries < MAX_ATTEMPTS and started < MAX_ATTEMPTS:
                    submit(folder, payload, spec, tries + 1)
                    continue
                yield folder, "failed", _died_message(max(started, tries)), 0.0
                continue
            except Exception as exc:  # cancelled, the scheduler lost: flagged, never dropped
                yield folder, "failed", ("not graded: the Dask cluster could not run it "
                                         f"({type(exc).__name__}: {exc})"), 0.0
                continue
            finally:
                future.release()
            try:
                unpack(answer["results"], folder, allowed=result_files(spec))
            except (ValueError, tarfile.TarError) as exc:
                yield folder, "failed", f"not graded: its results came back unreadable ({exc})", 0.0
                continue
            yield folder, answer["status"], answer["message"], float(answer["seconds"])
    finally:
        for future in list(pending.futures):
            future.cancel()
        with contextlib.suppress(Exception):
            starts.delete()
        with contextlib.suppress(Exception):
            client.sync(client.scheduler.semaphore_close, name=f"{counter}-lock")
        client.close()


def grade_packed_job(job: bytes, *, notebook_timeout: float, counter: str,
                     label: str) -> dict[str, Any]:
    """The Dask task: grade a packed job folder on this worker; the result files as bytes.

    Returns ``{"status", "message", "seconds", "results", "worker"}``; ``results`` is
    :func:`pack_folder` of :func:`result_files`. Run by :func:`run_jobs` on a Dask worker;
    ``counter`` names the run's attempt count, ``label`` the job in it.
    """
    import distributed

    worker = distributed.get_worker()
    started = _count_start(counter, label)
    if started > MAX_ATTEMPTS:  # the scheduler retried past our limit: refuse, report once
        return _answer("failed", _died_message(started - 1), 0.0, b"", worker.address)
    scratch = Path(tempfile.mkdtemp(prefix="course-grade-", dir=worker.local_directory))
    try:
        folder = scratch / "job"
        unpack(job, folder)
        spec = io.read_json(folder / "job.json")
        problem = _sandbox_problem() if spec.get("sandbox") else None
        if problem is not None:
            return _answer("failed", (
                f"not graded: the Dask worker at {worker.address} cannot sandbox the kernel "
                f"({problem}); install bubblewrap on every worker"), 0.0, b"", worker.address)
        status, message, seconds = _supervisor(Path(worker.local_directory)).grade(
            folder, scratch / "outcome.json", notebook_timeout)
        log = folder / "worker.log"
        if log.is_file() and log.stat().st_size > LOG_BYTES:
            io.write_bytes(log, log.read_bytes()[-LOG_BYTES:])
        return _answer(status, message, seconds, pack_folder(folder, result_files(spec)),
                       worker.address)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def result_files(spec: Mapping[str, Any]) -> tuple[str, ...]:
    """The files of a graded job folder that the grader records (relative paths).

    ``spec`` is the job's ``job.json`` (its ``student`` and ``assignment``).
    """
    student, assignment = spec["student"], spec["assignment"]
    return ("gradebook.db", "worker.log", "result.json",
            f"autograded/{student}/{assignment}/{assignment}.ipynb",
            f"feedback/{student}/{assignment}/{assignment}.html")


def pack_folder(folder: str | os.PathLike[str], names: Iterable[str] | None = None) -> bytes:
    """The regular files of ``folder`` (or those of ``names`` that exist) as a gzipped tar."""
    folder = Path(folder)
    if names is None:
        chosen = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                        if p.is_file() and not p.is_symlink())
    else:
        chosen = [n for n in names if (folder / n).is_file() and not (folder / n).is_symlink()]
    buffer = bytes_io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, compresslevel=6) as packed, \
            tarfile.open(fileobj=packed, mode="w") as tar:
        for name in chosen:
            data = (folder / name).read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, bytes_io.BytesIO(data))
    return buffer.getvalue()


def unpack(data: bytes, folder: str | os.PathLike[str], *,
           allowed: Collection[str] | None = None) -> list[str]:
    """Write the files of a :func:`pack_folder` tar under ``folder``; their relative names.

    Only regular files with relative names inside ``folder`` (and, with ``allowed``, only
    those names) are accepted; anything else is a ``ValueError`` naming the entry.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written, total = [], 0
    with tarfile.open(fileobj=bytes_io.BytesIO(data), mode="r:gz") as tar:
        for member in tar:
            name = member.name
            parts = PurePosixPath(name).parts
            if (not member.isfile() or not parts or PurePosixPath(name).is_absolute()
                    or any(p in ("..", "") for p in parts)
                    or (allowed is not None and name not in allowed)):
                raise ValueError(f"packed files: expected regular files named inside the job "
                                 f"folder, got {name!r}")
            total += member.size
            if total > MAX_UNPACKED_BYTES:
                raise ValueError(f"packed files: expected at most {MAX_UNPACKED_BYTES} bytes, "
                                 "got more")
            source = tar.extractfile(member)
            assert source is not None  # a regular file
            target = folder.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read())
            written.append(name)
    return written


class _Supervisor:
    """The long-lived process that grades one Dask worker thread's jobs, one after another.

    ``python -m course_utils.instructor.grading.cluster --serve PARENT`` (:func:`_serve`)
    reads one job a line on its standard input and answers a line when the job's outcome
    is written; it dies with the worker process ``PARENT``. A supervisor that ends, or
    that does not answer within the job's time plus a margin, is stopped with everything
    it started, and the job fails with the end of its error log; the next job starts
    another (:func:`_supervisor`).
    """

    #: Seconds past a job's ``notebook_timeout`` before the supervisor counts as hung:
    #: :func:`~course_utils.instructor.grading.worker.run_job` has its own guard.
    MARGIN: Final = 300.0

    def __init__(self, folder: Path) -> None:
        self.errors = folder / f"course-grade-supervisor-{uuid.uuid4().hex[:8]}.err"
        with open(self.errors, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "course_utils.instructor.grading.cluster", "--serve",
                 str(os.getpid())], cwd=folder, stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=err, start_new_session=True)

    def alive(self) -> bool:
        """Whether the process still runs (and may take another job)."""
        return self.proc.poll() is None

    def grade(self, folder: Path, outcome: Path, notebook_timeout: float,
              ) -> tuple[str, str, float]:
        """Grade the job in ``folder``: ``(status, message, seconds)`` as ``run_job`` gives."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        start = time.perf_counter()
        logged = self.errors.stat().st_size  # what earlier jobs left in the error log
        job = {"folder": str(folder), "outcome": str(outcome), "timeout": float(notebook_timeout)}
        hung = threading.Timer(notebook_timeout + self.MARGIN, self.proc.terminate)
        hung.start()
        try:
            self.proc.stdin.write(json.dumps(job).encode() + b"\n")
            self.proc.stdin.flush()
            answered = self.proc.stdout.readline()
        except OSError:  # it ended before it read the job
            answered = b""
        finally:
            hung.cancel()
        if not answered:
            self.stop()
        if not outcome.is_file():
            with open(self.errors, "rb") as log:  # this job's lines only
                log.seek(logged)
                tail = (log.read().decode(errors="replace").strip().splitlines()[-1:]
                        or ["no output"])
            return "failed", (f"the grading process on the Dask worker ended without a result "
                              f"({tail[0][:300]})"), time.perf_counter() - start
        found = io.read_json(outcome)
        return found["status"], found["message"], float(found["seconds"])

    def stop(self) -> None:
        """End the process (its SIGTERM handler ends everything it started) and wait."""
        if self.alive():
            self.proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=30)
        if self.alive():
            self.proc.kill()
            self.proc.wait()


_SUPERVISORS = threading.local()


def _supervisor(folder: Path) -> _Supervisor:
    """This thread's :class:`_Supervisor`, started in ``folder`` (the Dask worker's local
    directory) if it has none running."""
    current = getattr(_SUPERVISORS, "current", None)
    if current is None or not current.alive():
        current = _SUPERVISORS.current = _Supervisor(folder)
    return current


def _count_start(counter: str, name: str) -> int:
    """Count one more start of ``name``'s task in the run's Dask Variable; the new count."""
    from distributed import Lock, Variable

    lock = Lock(f"{counter}-lock")
    if not lock.acquire(timeout=60):
        raise RuntimeError(f"{counter}: could not take the attempt counter's lock in 60 s")
    try:
        starts = Variable(counter)
        counts = dict(starts.get(timeout=CONNECT_TIMEOUT))
        counts[name] = int(counts.get(name, 0)) + 1
        starts.set(counts)
    finally:
        lock.release()
    return counts[name]


def _died_message(times: int) -> str:
    return (f"not graded: the machine grading it died {times} times (the Dask worker was lost "
            "while it ran, e.g. out of memory or shut down); grade it again once the cluster "
            "is healthy")


def _answer(status: str, message: str, seconds: float, results: bytes,
            worker: str) -> dict[str, Any]:
    if not results:
        results = pack_folder(".", ())
    return {"status": status, "message": message, "seconds": seconds, "results": results,
            "worker": worker}


@functools.lru_cache(maxsize=1)
def _sandbox_problem() -> str | None:
    from course_utils.instructor.grading import sandbox as sandboxing

    return sandboxing.sandbox_problem()


def _address_of(scheduler: Any) -> str:
    if isinstance(scheduler, str) and scheduler.strip():
        return scheduler.strip()
    address = getattr(scheduler, "scheduler_address", None)
    if isinstance(address, str) and address:
        return address
    raise ValueError("scheduler: expected a Dask scheduler address such as tcp://host:8786, "
                     f"or a Dask cluster object, got {scheduler!r}")


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        from course_utils.runtime import install

        raise RuntimeError("scheduler: grading on a Dask cluster needs Dask's distributed "
                           "package, which is not installed; install the course's `cluster` "
                           f"extra: {install.install_hint('cluster')}") from None
    return distributed


def _probe(address: str, timeout: float) -> None:
    """Fail at once, naming ``address``, when nothing listens at a tcp/tls address."""
    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        scheme, location = parse_address(address)
    except ValueError as exc:
        raise ValueError(f"scheduler: expected a Dask scheduler address such as "
                         f"tcp://host:8786, got {address!r} ({exc})") from None
    if scheme not in ("tcp", "tls"):
        return
    try:
        host, port = parse_host_port(location)
        socket.create_connection((host, port), timeout=timeout).close()
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise RuntimeError(f"scheduler: cannot reach the Dask scheduler at {address} "
                           f"({reason}); is it running, and is this the address its cluster "
                           "reports as scheduler_address?") from None


def _die_with(parent: int) -> None:
    """End this process and every process it started when ``parent`` (the worker) dies."""
    signal.signal(signal.SIGTERM, _end_family)
    watched = False
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        watched = libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) == 0
    if not watched:  # elsewhere: watch for the parent to go
        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(1.0)
            os.kill(os.getpid(), signal.SIGTERM)

        threading.Thread(target=watch, daemon=True).start()
    if os.getppid() != parent:  # it died before the signal was armed
        _end_family(signal.SIGTERM, None)


def _end_family(signum: int, frame: Any) -> None:
    """Kill every process this one started (the grader, its kernel), then exit."""
    import psutil

    family = psutil.Process().children(recursive=True)
    own = os.getpgrp()
    for member in family:
        with contextlib.suppress(OSError, psutil.Error):
            group = os.getpgid(member.pid)
            if group != own:
                os.killpg(group, signal.SIGKILL)
    for member in family:
        with contextlib.suppress(psutil.Error):
            member.kill()
    os._exit(128 + signum)


def _serve(parent: int) -> int:
    """The supervisor's loop (:class:`_Supervisor`): grade each job read on standard input.

    A job is a line of JSON, ``{"folder", "outcome", "timeout"}``; its ``(status, message,
    seconds)`` go to the file ``outcome``, then a line to standard output says it is done.
    Ends when its input ends, or with the worker process ``parent``.
    """
    from course_utils.instructor.grading.worker import run_job

    _die_with(parent)
    answers = os.fdopen(os.dup(1), "w")  # the one channel back; anything printed goes to
    os.dup2(2, 1)                        # the error log instead
    for line in sys.stdin:
        job = json.loads(line)
        status, message, seconds = run_job(Path(job["folder"]),
                                           notebook_timeout=float(job["timeout"]))
        io.write_json(Path(job["outcome"]), {"status": status, "message": message,
                                             "seconds": seconds})
        answers.write("done\n")
        answers.flush()
    return 0


def main(argv: Sequence[str]) -> int:
    """``python -m course_utils.instructor.grading.cluster --serve PARENT``: :func:`serve`."""
    if len(argv) != 2 or argv[0] != "--serve" or not argv[1].isdigit():
        print("usage: python -m course_utils.instructor.grading.cluster --serve PARENT "
              "(started by course grade on a Dask worker)", file=sys.stderr)
        return 2
    return _serve(int(argv[1]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
