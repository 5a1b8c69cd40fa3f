"""The grading sandbox: a student's kernel sees nothing of the course, reaches no network,
leaves no process behind and stays within its limits.

Real bubblewrap and real kernels, driven the way nbgrader drives them
(:class:`SandboxedExecute` is nbgrader's ``Execute``, an nbclient ``NotebookClient``). One
notebook holds every hostile cell; each cell prints what it could do, as JSON, and the
tests read those lines.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import functools
import json
import os
import socket
import sys
import time
import uuid
from pathlib import Path

import nbformat
import psutil
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from course_utils.instructor.cli import main as course
from course_utils.instructor.grading.cli import configure_parser, limits_from_args
from course_utils.instructor.grading.sandbox import (
    SANDBOX_HOME,
    GiB,
    LimitOutputBytes,
    Limits,
    MiB,
    SandboxedExecute,
    SandboxedKernelManager,
    SandboxError,
    check_sandbox,
    sandbox_config,
    sandbox_problem,
)

ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "assignments"
LESSON = "00_workflow"
PROBLEM = sandbox_problem()


def needs_sandbox(test):
    """The test needs bubblewrap: it fails (never skips) where the sandbox cannot run."""

    @functools.wraps(test)
    def checked(*args, **kwargs):
        assert PROBLEM is None, (f"the grading sandbox cannot run here: {PROBLEM} "
                                 "(`make test` installs Debian's bubblewrap)")
        return test(*args, **kwargs)

    return checked

#: Small enough to hit quickly; memory and output keep their defaults.
LIMITS = Limits(processes=64, disk_bytes=64 * MiB)
CELL_TIMEOUT = 3
#: Output the notebook may send before SandboxedExecute drops more (the 50 MB line fits).
RECEIVED_CAP = 80 * 10**6

PROBE = '''
import json, os, signal, socket, subprocess, sys, time
def probe(name, action):
    try:
        print(json.dumps({name: ["ok", action()]}, default=repr))
    except BaseException as exc:
        print(json.dumps({name: ["failed", type(exc).__name__]}))
'''


def _run(cells: list[str], work: Path, limits: Limits,
         **execute: object) -> tuple[nbformat.NotebookNode, nbformat.NotebookNode]:
    """Run ``cells`` as nbgrader would (cwd: ``work``); the notebook as run, and as cut."""
    nb = new_notebook(cells=[new_code_cell(c) for c in cells],
                      metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                               "language": "python"}})
    config = sandbox_config(limits)
    config.Execute.timeout = CELL_TIMEOUT
    for key, value in execute.items():
        setattr(config.SandboxedExecute, key, value)
    ran, _ = SandboxedExecute(config=config).preprocess(nb, {"metadata": {"path": str(work)}})
    cut, _ = LimitOutputBytes(config=config).preprocess(copy.deepcopy(ran), {})
    return ran, cut


def _results(nb: nbformat.NotebookNode) -> dict[str, list[str]]:
    """The ``{name: [ok|failed, detail]}`` lines the cells printed."""
    found: dict[str, list[str]] = {}
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.output_type == "stream" and out.name == "stdout":
                for line in out.text.splitlines():
                    if line.startswith("{"):
                        found.update(json.loads(line))
    return found


def _processes_with(marker: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if marker in " ".join(proc.info["cmdline"] or []):
            found.append(proc)
    return found


def _gone(marker: str, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while _processes_with(marker):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """One graded notebook that tries everything a sandbox must stop, and what it saw."""
    course = tmp_path_factory.mktemp("course")
    (course / "gradebook.db").write_text("SECRET GRADES")
    bob = course / "submitted" / "bob" / "lesson"
    bob.mkdir(parents=True)
    (bob / "lesson.ipynb").write_text("BOB'S ANSWERS")
    work = course / "autograded" / "alice" / "lesson"
    work.mkdir(parents=True)
    (work / "lesson.ipynb").write_text("{}")
    server = socket.create_server(("127.0.0.1", 0))
    server.setblocking(False)
    port = server.getsockname()[1]
    marker = f"sandbox-test-child-{uuid.uuid4().hex}"
    package = ROOT / "course_utils"
    cells = [
        PROBE,
        "probe('cwd', os.getcwd); probe('uid', os.getuid)",
        f"probe('gradebook', lambda: open({str(course / 'gradebook.db')!r}).read())",
        f"probe('bob', lambda: open({str(bob / 'lesson.ipynb')!r}).read())",
        f"probe('master', lambda: open({str(ROOT / 'assignments' / 'source')!r}"
        " + '/00_workflow/00_workflow.ipynb').read())",
        f"probe('own_folder', lambda: os.listdir({str(work)!r}))",
        f"probe('course', lambda: os.listdir({str(course)!r}))",
        f"probe('repository', lambda: sorted(os.listdir({str(ROOT)!r})))",
        "probe('shadow', lambda: open('/etc/shadow').read())",
        f"probe('write_package', lambda: open({str(package / 'injected.py')!r}, 'w'))",
        "probe('processes', lambda: [open(f'/proc/{p}/cmdline', 'rb').read().decode()"
        " for p in os.listdir('/proc') if p.isdigit()])",
        f"probe('kill_grader', lambda: os.kill({os.getpid()}, signal.SIGTERM))",
        f"probe('network', lambda: socket.create_connection(('127.0.0.1', {port}), timeout=2))",
        f"child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)', "
        f"{marker!r}], start_new_session=True)\nprobe('setsid_child', child.poll)",
        "import numpy as np\nprobe('allocate_6_gib', lambda: np.empty(6 * 2**30, np.uint8).nbytes)",
        "def fill():\n"
        "    with open('big.bin', 'wb') as f:\n"
        "        for _ in range(1024):\n"
        "            f.write(bytes(2**20))\n"
        "probe('write_1_gib', fill)\n"
        "probe('written', lambda: os.path.getsize('big.bin'))\n"
        "os.remove('big.bin')",
        "def fork_bomb():\n"
        "    children = []\n"
        "    try:\n"
        "        while len(children) < 10_000:\n"
        "            pid = os.fork()\n"
        "            if pid == 0:\n"
        "                time.sleep(60)\n"
        "                os._exit(0)\n"
        "            children.append(pid)\n"
        "    finally:\n"
        "        print(json.dumps({'forked': ['ok', len(children)]}))\n"
        "        for pid in children:\n"
        "            os.kill(pid, signal.SIGKILL)\n"
        "            os.waitpid(pid, 0)\n"
        "probe('fork_bomb', fork_bomb)",
        "import resource\nprint(json.dumps({'rlimits': ['ok', {n: resource.getrlimit(getattr("
        "resource, n))[0] for n in ('RLIMIT_DATA', 'RLIMIT_NPROC', 'RLIMIT_CPU')}]}))",
        "while True:\n    pass",
        "print(json.dumps({'after_the_loop': ['ok', 'ran']}))",
        "print('x' * 50_000_000)",
        "for _ in range(40):\n    print('y' * 1_000_000, flush=True)",
    ]
    started = time.perf_counter()
    try:
        ran, nb = _run(cells, work, LIMITS, max_received_bytes=RECEIVED_CAP)
    finally:
        server_accepted = _accepted(server)
        server.close()
    return {"nb": nb, "ran": ran, "seen": _results(ran), "marker": marker, "accepted": server_accepted,
            "seconds": time.perf_counter() - started, "package": package}


def _accepted(server: socket.socket) -> bool:
    try:
        server.accept()[0].close()
        return True
    except BlockingIOError:
        return False


def _cell(nb, start: str):
    return next(c for c in nb.cells if c.source.startswith(start))


@needs_sandbox
def test_the_kernel_starts_in_its_private_scratch_as_an_unprivileged_user(hostile):
    seen = hostile["seen"]
    assert seen["cwd"] == ["ok", SANDBOX_HOME], "the kernel did not start in its scratch"
    if os.geteuid() == 0:
        assert seen["uid"][1] >= 60000, f"the kernel ran as uid {seen['uid'][1]}"


@needs_sandbox
def test_the_kernel_cannot_read_the_course_or_other_submissions(hostile):
    seen = hostile["seen"]
    for name in ("gradebook", "bob", "master", "own_folder", "course", "shadow"):
        assert seen[name][0] == "failed", f"the kernel could read {name}: {seen[name]}"
    listing = seen["repository"][1]
    assert set(listing) <= {".venv", "course_utils"}, f"the kernel sees the repository: {listing}"


@needs_sandbox
def test_the_kernel_cannot_change_the_course_utils_package(hostile):
    assert hostile["seen"]["write_package"] == ["failed", "OSError"]
    assert not (hostile["package"] / "injected.py").exists()


@needs_sandbox
def test_the_kernel_sees_only_its_own_processes_and_cannot_signal_the_grader(hostile):
    seen = hostile["seen"]
    cmdlines = seen["processes"][1]
    assert not [c for c in cmdlines if "pytest" in c], f"the kernel sees the grader: {cmdlines}"
    assert len(cmdlines) < 10, f"the kernel sees {len(cmdlines)} processes"
    assert seen["kill_grader"][0] == "failed"


@needs_sandbox
def test_the_kernel_has_no_network(hostile):
    assert hostile["seen"]["network"][0] == "failed"
    assert not hostile["accepted"], "a connection from the kernel reached the host's server"


@needs_sandbox
def test_a_detached_child_does_not_outlive_grading(hostile):
    assert hostile["seen"]["setsid_child"] == ["ok", None], "the child did not even start"
    assert _gone(hostile["marker"]), "a setsid child of the kernel outlived the notebook"


@needs_sandbox
def test_memory_disk_and_processes_are_capped(hostile):
    seen = hostile["seen"]
    assert seen["allocate_6_gib"] == ["failed", "MemoryError"]
    assert seen["write_1_gib"] == ["failed", "OSError"]
    assert seen["written"][1] <= LIMITS.disk_bytes
    assert seen["fork_bomb"] == ["failed", "BlockingIOError"]
    assert seen["forked"][1] < LIMITS.processes
    assert seen["rlimits"][1] == {"RLIMIT_DATA": LIMITS.memory_bytes,
                                  "RLIMIT_NPROC": LIMITS.processes,
                                  "RLIMIT_CPU": LIMITS.cpu_seconds}


@needs_sandbox
def test_huge_output_is_cut_and_says_so(hostile):
    nb = hostile["nb"]
    line = _cell(nb, "print('x'").outputs
    assert len(line) == 1 and len(line[0].text.encode()) < 1.1 * MiB
    assert "[output cut: it was 50,000,0" in line[0].text
    # what the grader kept as it arrived: past RECEIVED_CAP, a note instead of the rest
    flood = "".join(o.text for o in _cell(hostile["ran"], "for _ in range(40)").outputs)
    assert flood.endswith("[output dropped: this notebook sent more than 80,000,000 bytes of "
                          "output] ...\n")
    assert len(flood) < RECEIVED_CAP - 50_000_000 + 2_000_000
    total = sum(len(json.dumps(o)) for c in nb.cells for o in c.get("outputs", []))
    assert total < Limits().output_bytes + 64 * 1024, f"{total} bytes of output kept"


@needs_sandbox
def test_an_infinite_loop_is_interrupted_and_the_next_cell_runs(hostile):
    loop = _cell(hostile["nb"], "while True")
    assert [o.get("ename") for o in loop.outputs] == ["KeyboardInterrupt", "CellTimeoutError"]
    assert hostile["seen"]["after_the_loop"] == ["ok", "ran"]


@needs_sandbox
def test_killing_the_kernel_ends_everything_it_started(tmp_path):
    marker = f"sandbox-test-orphan-{uuid.uuid4().hex}"

    async def scenario() -> tuple[list[str], bool]:
        km = SandboxedKernelManager(kernel_name="python3", config=sandbox_config(LIMITS))
        await km.start_kernel(cwd=str(tmp_path))
        kc = km.client()
        kc.start_channels()
        try:
            await kc.wait_for_ready(timeout=60)
            await kc.execute_interactive(
                f"import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', "
                f"'import time; time.sleep(600)', {marker!r}], start_new_session=True)",
                timeout=30)
            deadline = time.monotonic() + 10
            while not _processes_with(marker) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            started = bool(_processes_with(marker))
            in_cgroups = [str(g) for g in km.cgroups if not any(
                g.name in Path(f"/proc/{p.pid}/cgroup").read_text()
                for p in _processes_with(marker))]
        finally:
            kc.stop_channels()
            await km.shutdown_kernel(now=True)  # SIGKILL, no goodbye
        assert started, "the child never started"
        return in_cgroups, km.runtime_dir is None

    missing_from, cleaned = asyncio.run(scenario())
    assert _gone(marker), "a process of the killed kernel is still running"
    assert not missing_from, f"the kernel's child was not in cgroups {missing_from}"
    assert cleaned


@needs_sandbox
@pytest.mark.slow
def test_tensorflow_trains_within_the_default_limits(tmp_path):
    _, nb = _run([
        "import numpy as np, tensorflow as tf, keras\n"
        "x = np.random.rand(64, 8, 8, 1).astype('float32'); y = np.arange(64) % 3\n"
        "model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3),"
        " keras.layers.Flatten(), keras.layers.Dense(3)])\n"
        "model.compile('adam', keras.losses.SparseCategoricalCrossentropy(from_logits=True))\n"
        "history = model.fit(x, y, epochs=2, batch_size=16, verbose=0)\n"
        "print('trained', len(history.history['loss']))",
    ], tmp_path, Limits(), timeout=120)
    outputs = nb.cells[0].outputs
    assert not [o for o in outputs if o.output_type == "error"], outputs
    assert "trained 2" in "".join(o.get("text", "") for o in outputs)


def test_the_sandbox_says_why_it_cannot_run_without_bubblewrap(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    problem = sandbox_problem()
    assert problem is not None and problem.startswith("bubblewrap (bwrap) is not installed")
    with pytest.raises(SandboxError, match="cannot be run in a sandbox.*apt-get install bubblewrap"):
        check_sandbox()


def _class_of_one(folder: Path) -> Path:
    """A class whose one submission is not a notebook: graded as ``invalid``, no kernel."""
    folder.mkdir()
    (folder / "ada.ipynb").write_text("not a notebook")
    return folder


def test_course_grade_refuses_without_a_sandbox_naming_the_flag(tmp_path, monkeypatch, capsys):
    folder = _class_of_one(tmp_path / "class")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))  # no bwrap on it
    out = tmp_path / "out"
    status = course(["grade", str(folder), "--assignment", LESSON, "--course", str(COURSE),
                     "--out", str(out)])
    err = capsys.readouterr().err
    assert status == 2, err
    assert "bubblewrap (bwrap) is not installed" in err, err
    assert "pass --unsandboxed to course grade" in err, err
    assert not out.exists(), "the refusal touched the output folder"


def test_an_unsandboxed_run_says_so_in_its_report_and_summary(tmp_path, capsys, prepared_lesson):
    prepared_lesson(LESSON)  # generated once per session; course grade finds it cached
    folder = _class_of_one(tmp_path / "class")
    out = tmp_path / "out"
    status = course(["grade", str(folder), "--assignment", LESSON, "--course", str(COURSE),
                     "--out", str(out), "--unsandboxed", "--jobs", "1"])
    printed = capsys.readouterr()
    assert status == 0, printed.err
    assert "WARNING: graded WITHOUT the sandbox (--unsandboxed)" in printed.out, printed.out
    report = json.loads((out / "reports" / LESSON / "grading_report.json").read_text())
    assert report["sandboxed"] is False
    assert [(s["student"], s["status"]) for s in report["students"]] == [("ada", "invalid")]


def _grade_args(*options: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    configure_parser(parser)
    return parser.parse_args(["class", "--assignment", LESSON, *options])


def test_every_limit_has_an_option_checked_at_the_door(capsys):
    limits = limits_from_args(_grade_args("--memory", "2", "--processes", "50",
                                          "--cpu-seconds", "120", "--disk", "16",
                                          "--output", "0.5"))
    assert limits == Limits(memory_bytes=2 * GiB, processes=50, cpu_seconds=120,
                            disk_bytes=16 * MiB, output_bytes=MiB // 2)
    assert limits_from_args(_grade_args()) is None
    assert limits_from_args(_grade_args("--processes", "64")) == Limits(processes=64)
    for option, value, expected in (("--memory", "0", "a positive number"),
                                    ("--processes", "1.5", "a positive whole number"),
                                    ("--cpu-seconds", "-3", "a positive whole number"),
                                    ("--disk", "nan", "a positive number"),
                                    ("--output", "lots", "a positive number")):
        with pytest.raises(SystemExit):
            _grade_args(option, value)
        err = capsys.readouterr().err
        assert f"argument {option}: expected {expected}, got {value!r}" in err, err
    with pytest.raises(ValueError, match="--memory, --disk: limits need the sandbox, which "
                                         "--unsandboxed turns off"):
        limits_from_args(_grade_args("--unsandboxed", "--memory", "2", "--disk", "64"))


def test_course_grade_refuses_limits_with_unsandboxed_before_touching_anything(tmp_path, capsys):
    out = tmp_path / "out"
    status = course(["grade", str(_class_of_one(tmp_path / "class")), "--assignment", LESSON,
                     "--course", str(COURSE), "--out", str(out), "--unsandboxed",
                     "--processes", "64"])
    assert status == 2
    assert "--processes: limits need the sandbox" in capsys.readouterr().err
    assert not out.exists()


@needs_sandbox
def test_limits_given_on_the_command_line_bind_the_kernel(tmp_path):
    limits = limits_from_args(_grade_args("--processes", "50", "--cpu-seconds", "120",
                                          "--disk", "16"))
    _, nb = _run([PROBE,
                  "import resource\nprint(json.dumps({'rlimits': ['ok', {n: resource.getrlimit("
                  "getattr(resource, n))[0] for n in ('RLIMIT_NPROC', 'RLIMIT_CPU')}]}))",
                  "def fill():\n    with open('big.bin', 'wb') as f:\n"
                  "        for _ in range(32):\n            f.write(bytes(2**20))\n"
                  "probe('write_32_mib', fill)"], tmp_path, limits)
    seen = _results(nb)
    assert seen["rlimits"][1] == {"RLIMIT_NPROC": 50, "RLIMIT_CPU": 120}, seen
    assert seen["write_32_mib"] == ["failed", "OSError"], seen


def test_limits_are_validated():
    with pytest.raises(ValueError, match=r"Limits.processes: expected a positive whole number, "
                                         r"got -1"):
        Limits(processes=-1)
    with pytest.raises(ValueError, match="Limits.memory_bytes: .*got True"):
        Limits(memory_bytes=True)
    defaults = Limits()
    # two kernels at their limits fit a 24 GiB machine with room for the graders
    assert 2 * (defaults.memory_bytes + defaults.disk_bytes) <= 16 * GiB


def test_cutting_output_keeps_what_decides_the_grade():
    cells = [new_code_cell("print(huge)", outputs=[
                 new_output("stream", name="stdout", text="x" * 5000)]),
             new_code_cell("noisy()", outputs=[
                 new_output("stream", name="stderr", text="e" * 5000),
                 new_output("stream", name="stderr", text="more"),
                 new_output("error", ename="AssertionError", evalue="v" * 5000,
                            traceback=["line"] * 1000)]),
             new_code_cell("partial()", outputs=[
                 new_output("execute_result", data={"text/plain": "0.5"}, execution_count=1)]),
             new_code_cell("plot()", outputs=[
                 new_output("display_data", data={"image/png": "A" * 9000,
                                                  "text/plain": "<Figure>"})])]
    nb, _ = LimitOutputBytes(max_bytes=2000, max_output_bytes=1000).preprocess(
        new_notebook(cells=cells), {})
    printed, noisy, partial, plot = (c.outputs for c in nb.cells)
    assert len(printed) == 1 and "[output cut: it was" in printed[0].text
    assert len(printed[0].text) < 1200
    assert [(o.output_type, o.get("name")) for o in noisy] == [
        ("stream", "stderr"), ("error", None)], "stderr and the error must stay (both score 0)"
    assert noisy[1].ename == "AssertionError" and len(noisy[1].evalue) <= 1024
    assert partial[0].data == {"text/plain": "0.5"}, "a small result (partial credit) was cut"
    assert plot[0].output_type == "stream" and "output cut" in plot[0].text
    assert sum(len(json.dumps(o)) for c in nb.cells for o in c.outputs) < 2000 + 2 * 1024 + 600


def test_the_config_makes_nbgrader_run_kernels_in_the_sandbox():
    config = sandbox_config()
    steps = [s.__name__ for s in config.Autograde.autograde_preprocessors]
    assert steps[0] == "SandboxedExecute" and "Execute" not in steps
    assert steps.index("LimitOutputBytes") == steps.index("IgnorePattern") + 1
    execute = SandboxedExecute(config=config)
    assert execute.kernel_manager_class is SandboxedKernelManager
    km = SandboxedKernelManager(kernel_name="python3", config=config)
    assert km.transport == "ipc" and km.kernel_spec.interrupt_mode == "message"
    assert km.limits == Limits()


def test_the_kernel_gets_only_the_environment_it_needs():
    km = SandboxedKernelManager(kernel_name="python3")
    env = km._kernel_env({"COURSE_PROFILE": "smoke", "NBGRADER_EXECUTION": "autograde",
                          "AWS_SECRET_ACCESS_KEY": "k", "PGPASSWORD": "p",
                          "PATH": "/secret/bin"})
    assert env["COURSE_PROFILE"] == "smoke" and env["NBGRADER_EXECUTION"] == "autograde"
    assert "AWS_SECRET_ACCESS_KEY" not in env and "PGPASSWORD" not in env
    assert env["HOME"] == SANDBOX_HOME and "/secret/bin" not in env["PATH"]
    assert sys.executable.rsplit("/", 1)[0] in env["PATH"]


@pytest.mark.parametrize("channel", ["stock", "prompt"])
def test_a_heartbeat_nobody_answered_does_not_hold_the_client_when_it_stops(channel):
    """A sandboxed kernel is often slower than a second to answer its first heartbeat; the
    ping left unanswered must not keep the client's end open after grading (it once added
    a second to every such submission). jupyter_client's own channel shows the hold."""
    import threading

    import zmq
    from jupyter_client.channels import HBChannel

    from course_utils.instructor.grading.bubblewrap import PromptHeartbeat

    with socket.socket() as probe:  # a port nothing listens on: no ping is ever answered
        probe.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{probe.getsockname()[1]}"
    context = zmq.Context()
    heartbeat = (HBChannel if channel == "stock" else PromptHeartbeat)(context, address=address)
    heartbeat.time_to_dead = 0.05
    replaced = threading.Event()
    create = heartbeat._create_socket

    def counting() -> None:
        if heartbeat.socket is not None:
            replaced.set()
        create()

    heartbeat._create_socket = counting
    heartbeat.start()
    assert replaced.wait(10), "the heartbeat never gave up on its first ping"
    heartbeat.stop()
    ended = threading.Thread(target=context.term, daemon=True)
    ended.start()
    ended.join(0.5)
    # jupyter_client's channel closes a replaced socket with a linger of one second.
    assert ended.is_alive() == (channel == "stock"), "the client's end is held open"
    ended.join(5)
