"""The course in JupyterLab, in a real browser: Debian's Chromium driven by Playwright.

One JupyterLab server runs on localhost for the module, on a scratch copy of the course:
the nbgrader course root (``nbgrader_config.py``, ``source/`` with the masters), the
student notebooks with every task solved (``notebooks/``, what a student hands in after
the work) and one untouched student notebook (``blank/``). Announcements are off and
notebook windowing is off, so every cell is in the page.

For every student notebook and every master the test opens it, runs all cells from the
Run menu, waits until every code cell has run and the kernel is idle, saves it and then
reads the saved notebook model (not the page): every code cell ran and no output is an
error. Every widget output rendered ("Error displaying widget" never appears). A
screenshot of each lands in ``runs/browser/`` (or ``$COURSE_TEST_ARTIFACTS``).

The nbgrader extension is checked too: the Formgrader and the Assignment List open from
its menu, and its Validate button reports failures on a blank copy and success on a
solved one.

Chromium comes from Debian's package (``make test`` installs it); set ``CHROMIUM`` to
use another binary. A missing browser is a failure, not a skip.
"""

from __future__ import annotations

import os
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
from conftest import COURSE, LESSONS, ROOT, solve_lesson

from course_utils import release

pytestmark = pytest.mark.slow

TOKEN = "course-browser-tests"
RUN_TIMEOUT_MS = 240_000
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


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """A running JupyterLab on a scratch copy of the course: (base URL, root folder)."""
    scratch = tmp_path_factory.mktemp("lab")
    root = scratch / "course"
    shutil.copytree(COURSE, root, ignore=shutil.ignore_patterns(
        "release", "submitted", "autograded", "feedback", "gradebook.db", "runs",
        ".ipynb_checkpoints"))
    (root / "notebooks").mkdir()  # solved student notebooks, written by the tests that open them
    (root / "blank").mkdir()
    shutil.copy(ROOT / "notebooks" / f"{LESSONS[0]}.ipynb", root / "blank")
    settings = scratch / "lab-settings"
    for name, text in _LAB_SETTINGS.items():
        (settings / name).parent.mkdir(parents=True, exist_ok=True)
        (settings / name).write_text(text)
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
    log = (scratch / "server.log").open("w")
    server = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=5)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("JupyterLab did not start:\n"
                                       + (scratch / "server.log").read_text()) from None
                time.sleep(0.5)
        yield base, root
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    yield page
    context.close()


def open_notebook(page, base: str, path: str) -> None:
    page.goto(f"{base}/lab/tree/{path}?reset&token={TOKEN}")  # no restored tabs
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=90_000)
    wait_idle(page)


CURRENT = ".jp-NotebookPanel:not(.lm-mod-hidden)"


def wait_idle(page) -> None:
    page.wait_for_selector(f"{CURRENT} .jp-Notebook-ExecutionIndicator[data-status='idle']",
                           timeout=RUN_TIMEOUT_MS)


def menu(page, top: str, item: str) -> None:
    page.click(f".lm-MenuBar-itemLabel:text-is('{top}')")
    page.click(f".lm-Menu-itemLabel:text-is('{item}')")


_ALL_RAN = """(count) => {
  const prompts = [...document.querySelectorAll(
      '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt')];
  return prompts.length === count && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
}"""


def run_all_and_save(page, code_cells: int) -> None:
    menu(page, "Run", "Run All Cells")
    page.wait_for_function(_ALL_RAN, arg=code_cells, timeout=RUN_TIMEOUT_MS, polling=500)
    wait_idle(page)
    page.keyboard.press("Control+s")
    page.wait_for_function(
        "() => !document.querySelector('.lm-TabBar-tab.jp-mod-current.jp-mod-dirty')",
        timeout=30_000)


NOTEBOOKS = [pytest.param("notebooks", lesson, id=f"student-{lesson}") for lesson in LESSONS]
NOTEBOOKS += [pytest.param("source", lesson, id=f"master-{lesson}") for lesson in LESSONS]


@pytest.mark.parametrize(("kind", "lesson"), NOTEBOOKS)
def test_notebook_runs_all_cells_in_jupyterlab_without_errors(lab, page, kind, lesson):
    base, root = lab
    if kind == "notebooks":
        rel = solve_lesson(lesson, root / "notebooks").relative_to(root).as_posix()
    else:
        rel = f"source/{lesson}/{lesson}.ipynb"
    before = nbformat.read(root / rel, as_version=4)
    code_cells = sum(c.cell_type == "code" for c in before.cells)
    open_notebook(page, base, rel)
    start = time.perf_counter()
    run_all_and_save(page, code_cells)
    seconds = time.perf_counter() - start
    page.screenshot(path=str(artifacts_dir() / f"{kind}-{lesson}.png"))
    print(f"\n{rel}: ran in JupyterLab in {seconds:.1f} s")

    saved = nbformat.read(root / rel, as_version=4)  # the model JupyterLab saved
    code = [c for c in saved.cells if c.cell_type == "code"]
    assert len(code) == code_cells
    assert all(c.execution_count for c in code), "a code cell did not run"
    errors = [(i, o.get("ename"), o.get("evalue")) for i, c in enumerate(code)
              for o in c.outputs if o.output_type == "error"]
    assert not errors, f"error outputs in {rel}: {errors}"
    widgets = sum("application/vnd.jupyter.widget-view+json" in o.get("data", {})
                  for c in code for o in c.outputs)
    assert page.locator("text=Error displaying widget").count() == 0
    if widgets:
        assert page.locator(".jp-OutputArea .jupyter-widgets").count() >= widgets, (
            f"{widgets} widget outputs in {rel}, not all rendered")


def test_nbgrader_formgrader_and_assignment_list_open_from_the_menu(lab, page):
    base, root = lab
    lesson = LESSONS[0]
    for step in ("generate_assignment", "release_assignment"):  # the instructor releases
        done = release.run_nbgrader([step, lesson, f"--Exchange.root={root.parent / 'exchange'}"],
                                    course_root=root, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
    page.goto(f"{base}/lab?reset&token={TOKEN}")
    page.wait_for_selector(".lm-MenuBar-itemLabel:text-is('Nbgrader')", timeout=90_000)
    menu(page, "Nbgrader", "Formgrader")
    frame = page.frame_locator("iframe").first
    for listed in LESSONS:  # the formgrader lists every master of the course
        frame.locator(f"text={listed}").first.wait_for(timeout=60_000)
    menu(page, "Nbgrader", "Assignment List")
    page.locator(".lm-TabBar-tab.jp-mod-current:has-text('Assignments')").wait_for(
        timeout=30_000)
    released = page.locator("#released_assignments_list")  # what students can fetch
    released.get_by_text(lesson).wait_for(timeout=60_000)
    page.screenshot(path=str(artifacts_dir() / "nbgrader-assignment-list.png"))


@pytest.mark.parametrize(("folder", "expected"), [
    ("blank", "The following cell failed"),
    ("notebooks", "Success! Your notebook passes all the tests."),
])
def test_nbgrader_validate_button_reports_as_expected(lab, page, folder, expected):
    base, root = lab
    if folder == "notebooks":
        solve_lesson(LESSONS[0], root / "notebooks")
    open_notebook(page, base, f"{folder}/{LESSONS[0]}.ipynb")
    page.click(f"{CURRENT} .jp-Toolbar-item :text-is('Validate')")
    dialog = page.locator(".jp-Dialog")
    dialog.wait_for(timeout=RUN_TIMEOUT_MS)
    dialog.locator(".jp-Dialog-header").filter(has_not_text="Validating").first.wait_for(
        timeout=RUN_TIMEOUT_MS)
    text = dialog.inner_text()
    page.screenshot(path=str(artifacts_dir() / f"validate-{folder}.png"))
    assert expected.lower() in text.lower(), text
