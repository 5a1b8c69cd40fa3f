"""The course in JupyterLab, in a real browser: Debian's Chromium driven by Playwright.

One JupyterLab server runs on localhost for the session (``conftest.lab``, see ``_lab``),
on a scratch copy of the course: the nbgrader course root (``nbgrader_config.py``,
``source/`` with the masters), the student notebooks with every task solved
(``notebooks/``, what a student hands in after the work) and one untouched student
notebook (``blank/``). Announcements are off and notebook windowing is off, so every cell
is in the page.

For every student notebook (``conftest.lesson_run``: the same run the lessons' claims are
read from) and every master (what the instructor opens), a test opens it,
runs all cells from the Run menu, waits until every code cell has run and the kernel is
idle, saves it and then reads the saved notebook model (not the page): every code cell
ran and no output is an error. Every widget output rendered ("Error displaying widget"
never appears). A screenshot of each
lands in ``runs/browser/`` (or ``$COURSE_TEST_ARTIFACTS``).

The nbgrader extension is checked too: the Formgrader and the Assignment List open from
its menu, and its Validate button reports failures on a blank copy and success on a
solved one.

Chromium comes from Debian's package (``make test`` installs it); set ``CHROMIUM`` to
use another binary. A missing browser is a failure, not a skip.
"""

from __future__ import annotations

import shutil

import nbformat
import pytest
from _lab import (
    CURRENT,
    RUN_TIMEOUT_MS,
    TOKEN,
    artifacts_dir,
    chromium,
    menu,
    open_notebook,
    run_in_lab,
    wait_idle,
)
from conftest import LESSONS, solve_lesson

from course_utils.instructor import release

pytestmark = pytest.mark.slow


def check_lab_run(run, rel: str) -> None:
    code = [c for c in run.nb.cells if c.cell_type == "code"]
    assert code and all(c.execution_count for c in code), f"a code cell of {rel} did not run"
    errors = [(i, o.get("ename"), o.get("evalue")) for i, c in enumerate(code)
              for o in c.outputs if o.output_type == "error"]
    assert not errors, f"error outputs in {rel}: {errors}"
    assert run.widget_errors == 0, f"'Error displaying widget' in {rel}"
    assert run.widgets_rendered >= run.widget_outputs, (
        f"{run.widget_outputs} widget outputs in {rel}, {run.widgets_rendered} rendered")


@pytest.mark.parametrize("lesson", LESSONS)
def test_student_notebook_runs_all_cells_in_jupyterlab_without_errors(lesson_run, lesson):
    run = lesson_run(lesson)
    print(f"\n{lesson} (solved student version): ran in JupyterLab in {run.seconds:.1f} s")
    check_lab_run(run.lab, f"notebooks/{lesson}.ipynb")


# Every master too: the instructor's version, with its nbgrader metadata, solutions and
# hidden tests, runs from JupyterLab's menu as the student's does.
@pytest.mark.parametrize("lesson", LESSONS)
def test_master_runs_all_cells_in_jupyterlab_without_errors(lab, lesson):
    rel = f"source/{lesson}/{lesson}.ipynb"
    run = run_in_lab(lab, rel, f"master-{lesson}.png")
    print(f"\n{rel}: ran in JupyterLab in {run.seconds:.1f} s")
    check_lab_run(run, rel)


def test_nbgrader_formgrader_and_assignment_list_open_from_the_menu(lab, prepared_lesson):
    lesson = LESSONS[0]
    generated = prepared_lesson(lesson).course  # generated once per session (conftest)
    shutil.copytree(generated / "release" / lesson, lab.root / "release" / lesson)
    shutil.copy(generated / "gradebook.db", lab.root / "gradebook.db")
    done = release.run_nbgrader(["release_assignment", lesson, f"--Exchange.root={lab.exchange}"],
                                course_root=lab.root, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr  # the instructor releases
    with chromium() as page:
        page.goto(f"{lab.base}/lab?reset&token={TOKEN}")
        page.wait_for_selector(".lm-MenuBar-itemLabel:text-is('Nbgrader')", timeout=120_000)
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
    ("solved", "Success! Your notebook passes all the tests."),
])
def test_nbgrader_validate_button_reports_as_expected(lab, folder, expected):
    if folder == "solved":  # its own folder: the lesson's run in notebooks/ keeps its files
        solve_lesson(LESSONS[0], lab.root / "solved")
    with chromium() as page:
        open_notebook(page, lab, f"{folder}/{LESSONS[0]}.ipynb")
        page.click(f"{CURRENT} .jp-Toolbar-item :text-is('Validate')")
        dialog = page.locator(".jp-Dialog")
        dialog.wait_for(timeout=RUN_TIMEOUT_MS)
        dialog.locator(".jp-Dialog-header").filter(has_not_text="Validating").first.wait_for(
            timeout=RUN_TIMEOUT_MS)
        text = dialog.inner_text()
        page.screenshot(path=str(artifacts_dir() / f"validate-{folder}.png"))
    assert expected.lower() in text.lower(), text


_EXPLORER = """\
from matplotlib.figure import Figure
from course_utils import notebook
from course_utils.widgets import Slider, explore

notebook.setup_notebook("smoke", report=False)  # figures display as PNG, as in a lesson

def draw(lr):
    fig = Figure(figsize=(3, 2))
    fig.add_subplot().plot([0, 1], [0, lr])
    return fig

explore(draw, {"lr": Slider(0.1, 1.0, 0.1, 0.5)});
"""


def test_an_explorer_shows_its_figure_once_where_widgets_render(lab):
    # The explorer's output carries the widget and a PNG fallback: JupyterLab, which
    # renders widgets, shows the sliders and their figure, not the static copy beside it.
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(_EXPLORER)], metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nbformat.write(nb, lab.root / "notebooks" / "explorer.ipynb")
    with chromium() as page:
        open_notebook(page, lab, "notebooks/explorer.ipynb")
        menu(page, "Run", "Run All Cells")
        page.locator(f"{CURRENT} .jp-OutputArea .jupyter-widgets img").first.wait_for(
            timeout=RUN_TIMEOUT_MS)
        wait_idle(page)
        page.wait_for_timeout(1000)  # let a second figure show if there were one
        output = page.locator(f"{CURRENT} .jp-Cell .jp-OutputArea")
        images = output.locator("img").count()
        sliders = output.locator(".widget-slider").count()
        page.screenshot(path=str(artifacts_dir() / "explorer.png"))
    assert sliders == 1, f"{sliders} sliders"
    assert images == 1, f"the figure is drawn {images} times"
