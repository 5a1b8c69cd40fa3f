"""JupyterLab on localhost and Debian's Chromium driven by Playwright, for the tests.

:func:`start_lab` serves a scratch copy of the course (the nbgrader course root with the
masters in ``source/``, solved student notebooks in ``notebooks/``, an untouched one in
``blank/``); :func:`run_in_lab` opens one notebook in it, runs all cells from the Run
menu, waits until every code cell has run and the kernel is idle, saves it, and returns
the notebook model JupyterLab saved together with what the page showed (widgets).

:func:`start_make_lab` starts JupyterLab as `make lab` does, from the root of a scratch
copy of the repository (:func:`copy_repository_layout`), for the Formgrader's tests.

Playwright is started and stopped around each use (:func:`chromium`), so no event loop
is left running between tests (nbclient and nbgrader run their own).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "course-browser-tests"
# Generous: a shared 2-core CI machine runs the slowest lesson in minutes, not seconds;
# running time is measured by benchmarks/bench_lessons.py, not asserted here.
RUN_TIMEOUT_MS = 900_000
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
_LAB_SETTINGS = {
    # every cell in the page, so the test sees them all; no news or update checks
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": '{"windowingMode": "none"}',
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
        '{"fetchNews": "false", "checkForUpdates": false}',
}
CURRENT = ".jp-NotebookPanel:not(.lm-mod-hidden)"
_ALL_RAN = """(count) => {
  const prompts = [...document.querySelectorAll(
      '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt')];
  return prompts.length === count && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
}"""


@dataclasses.dataclass(frozen=True)
class Lab:
    """A running JupyterLab: its base URL and the folder it serves."""

    base: str
    root: Path

    @property
    def exchange(self) -> Path:
        return self.root.parent / "exchange"


@dataclasses.dataclass(frozen=True)
class LabRun:
    """One notebook run from JupyterLab's Run menu, as saved by JupyterLab."""

    nb: nbformat.NotebookNode
    seconds: float
    widget_outputs: int       # widget views in the saved outputs
    widgets_rendered: int     # widget views the page shows
    widget_errors: int        # "Error displaying widget" in the page


def artifacts_dir() -> Path:
    folder = Path(os.environ.get("COURSE_TEST_ARTIFACTS", ROOT / "runs" / "browser"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def chromium_path() -> str:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if not path:
        pytest.fail("Chromium not found: `make test` installs Debian's `chromium` package; "
                    "elsewhere set CHROMIUM=/path/to/chromium")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def start_lab(scratch: Path, course: Path, blank: Path) -> Iterator[Lab]:
    """Serve a scratch copy of ``course`` with JupyterLab until the block ends."""
    root = scratch / "course"
    shutil.copytree(course, root, ignore=shutil.ignore_patterns(
        "release", "submitted", "autograded", "feedback", "gradebook.db", "runs",
        ".ipynb_checkpoints"))
    (root / "notebooks").mkdir()  # solved student notebooks, written by the tests that open them
    (root / "blank").mkdir()
    shutil.copy(blank, root / "blank")
    settings = _lab_settings(scratch)
    # As on a JupyterHub: a shared exchange folder, set in the Jupyter config path.
    (scratch / "config").mkdir()
    (scratch / "exchange").mkdir()
    (scratch / "config" / "nbgrader_config.py").write_text(
        f"c = get_config()\nc.Exchange.root = {str(scratch / 'exchange')!r}\n"
        f"c.Exchange.cache = {str(scratch / 'nbgrader_cache')!r}\n")
    port = _free_port()
    # The venv's scripts on PATH, as `make lab` does: nbgrader runs `alembic` from there.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = dict(os.environ, PATH=path, COURSE_PROFILE="smoke",
               JUPYTERLAB_SETTINGS_DIR=str(settings),
               JUPYTER_CONFIG_DIR=str(scratch / "config"),
               JUPYTER_RUNTIME_DIR=str(scratch / "runtime"))
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}",
           "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={TOKEN}",
           f"--ServerApp.root_dir={root}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    with _serve(cmd, root, env, port, scratch / "server.log") as base:
        yield Lab(base, root)


def _lab_settings(scratch: Path) -> Path:
    """JupyterLab user settings for the tests (no news, every cell in the page)."""
    settings = scratch / "lab-settings"
    for name, text in _LAB_SETTINGS.items():
        (settings / name).parent.mkdir(parents=True, exist_ok=True)
        (settings / name).write_text(text)
    return settings


@contextlib.contextmanager
def _serve(cmd: list[str], cwd: Path, env: dict[str, str], port: int,
           log_path: Path) -> Iterator[str]:
    """Run the JupyterLab command until the block ends; its base URL once it answers."""
    log = log_path.open("w")
    server = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=5)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("JupyterLab did not start:\n"
                                       + log_path.read_text()) from None
                time.sleep(0.5)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def make_lab_args() -> list[str]:
    """The arguments `make lab` gives `jupyter lab` (the Makefile's LAB_ARGS)."""
    done = subprocess.run(["make", "-s", "--no-print-directory", "-C", str(ROOT), "lab-args"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and done.stdout.strip(), (
        f"`make lab-args` failed ({done.returncode}): {done.stdout}{done.stderr}")
    return shlex.split(done.stdout)


def copy_repository_layout(dest: Path) -> Path:
    """A scratch copy of what `make lab` serves: the repository-root nbgrader_config.py,
    the course (assignments/, without generated folders) and the student notebooks."""
    dest.mkdir(parents=True)
    shutil.copy(ROOT / "nbgrader_config.py", dest)
    shutil.copytree(ROOT / "assignments", dest / "assignments", ignore=shutil.ignore_patterns(
        "release", "submitted", "autograded", "feedback", "gradebook.db", ".nbgrader.log",
        "runs", ".ipynb_checkpoints"))
    shutil.copytree(ROOT / "notebooks", dest / "notebooks",
                    ignore=shutil.ignore_patterns("runs", ".ipynb_checkpoints"))
    return dest


@contextlib.contextmanager
def start_make_lab(repo: Path, scratch: Path) -> Iterator[Lab]:
    """JupyterLab started in ``repo`` exactly as `make lab` starts it in the repository.

    The same program (this venv's ``jupyter lab``, the venv first on ``PATH``) with the
    Makefile's arguments, in ``repo`` (a :func:`copy_repository_layout`); only what a
    test needs is added: a port, a token, no browser, and Jupyter's config, runtime and
    settings folders in ``scratch`` (so the user's own do not leak in).
    """
    port = _free_port()
    (scratch / "config").mkdir(parents=True, exist_ok=True)
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = dict(os.environ, PATH=path, JUPYTERLAB_SETTINGS_DIR=str(_lab_settings(scratch)),
               JUPYTER_CONFIG_DIR=str(scratch / "config"),
               JUPYTER_RUNTIME_DIR=str(scratch / "runtime"))
    env.pop("COURSE_EXCHANGE", None)  # the default, local exchange
    cmd = [str(Path(sys.executable).parent / "jupyter"), "lab", *make_lab_args(),
           "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
           f"--IdentityProvider.token={TOKEN}"]
    with _serve(cmd, repo, env, port, scratch / "server.log") as base:
        yield Lab(base, repo)


@contextlib.contextmanager
def chromium() -> Iterator[object]:
    """A fresh page in Debian's Chromium, closed (with Playwright) when the block ends."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            yield browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        finally:
            browser.close()


def open_notebook(page, lab: Lab, path: str) -> None:
    page.goto(f"{lab.base}/lab/tree/{path}?reset&token={TOKEN}")  # no restored tabs
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=120_000)
    wait_kernel_ready(lab, path)
    wait_idle(page)


def wait_kernel_ready(lab: Lab, path: str, timeout: float = 180) -> None:
    """Wait until the notebook's kernel has started, is idle and the page is connected.

    Cells run before that are dropped by JupyterLab without a word (on a cold machine
    the kernel takes a while to start), so a test must not click "Run All" earlier.
    """
    deadline = time.monotonic() + timeout
    while True:
        with urllib.request.urlopen(f"{lab.base}/api/sessions?token={TOKEN}", timeout=30) as r:
            sessions = json.load(r)
        kernel = next((s["kernel"] for s in sessions if s.get("path") == path), None)
        if kernel and kernel.get("execution_state") == "idle" and kernel.get("connections", 0):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path}: kernel not ready after {timeout} s: {sessions}")
        time.sleep(1)


def wait_idle(page) -> None:
    page.wait_for_selector(f"{CURRENT} .jp-Notebook-ExecutionIndicator[data-status='idle']",
                           timeout=RUN_TIMEOUT_MS)


def menu(page, top: str, item: str) -> None:
    page.click(f".lm-MenuBar-itemLabel:text-is('{top}')")
    page.click(f".lm-Menu-itemLabel:text-is('{item}')")


def shut_down_kernels(lab: Lab) -> None:
    """Stop every kernel of the server (each holds TensorFlow in memory)."""
    url = f"{lab.base}/api/kernels?token={TOKEN}"
    with urllib.request.urlopen(url, timeout=30) as response:
        kernels = json.load(response)
    for kernel in kernels:
        request = urllib.request.Request(
            f"{lab.base}/api/kernels/{kernel['id']}?token={TOKEN}", method="DELETE")
        urllib.request.urlopen(request, timeout=60).close()


_STARTED = """() => {
  const first = document.querySelector(
      '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt');
  return first !== null && /\\[(\\*|\\d+)\\]/.test(first.textContent);
}"""


def run_in_lab(lab: Lab, rel: str, screenshot: str) -> LabRun:
    """Open ``rel`` (relative to the lab root), run all cells, save; return the saved model."""
    code_cells = sum(c.cell_type == "code"
                     for c in nbformat.read(lab.root / rel, as_version=4).cells)
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    with chromium() as page:
        open_notebook(page, lab, rel)
        start = time.perf_counter()
        menu(page, "Run", "Run All Cells")
        try:  # the first cell starts (queued "[*]" or done) soon, or the click was lost
            page.wait_for_function(_STARTED, timeout=60_000, polling=500)
        except PlaywrightTimeout:
            menu(page, "Run", "Run All Cells")  # nothing ran yet: running all again is safe
        try:
            page.wait_for_function(_ALL_RAN, arg=code_cells, timeout=RUN_TIMEOUT_MS,
                                   polling=500)
        except PlaywrightTimeout:
            page.screenshot(path=str(artifacts_dir() / f"timeout-{screenshot}"))
            prompts = page.locator(f"{CURRENT} .jp-CodeCell .jp-InputPrompt").all_inner_texts()
            raise AssertionError(f"{rel}: not every cell ran in {RUN_TIMEOUT_MS / 1000:.0f} s; "
                                 f"input prompts: {prompts}") from None
        wait_idle(page)
        seconds = time.perf_counter() - start
        page.keyboard.press("Control+s")
        page.wait_for_function(
            "() => !document.querySelector('.lm-TabBar-tab.jp-mod-current.jp-mod-dirty')",
            timeout=60_000)
        page.screenshot(path=str(artifacts_dir() / screenshot))
        rendered = page.locator(f"{CURRENT} .jp-OutputArea .jupyter-widgets").count()
        errors = page.locator("text=Error displaying widget").count()
    shut_down_kernels(lab)
    saved = nbformat.read(lab.root / rel, as_version=4)  # the model JupyterLab saved
    widgets = sum("application/vnd.jupyter.widget-view+json" in o.get("data", {})
                  for c in saved.cells if c.cell_type == "code" for o in c.outputs)
    return LabRun(saved, seconds, widgets, rendered, errors)
