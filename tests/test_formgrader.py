"""The Formgrader where the README sends instructors: `make lab`, after `course grade`.

JupyterLab is started exactly as `make lab` starts it (the Makefile's ``LAB_ARGS``, from
the repository root, see ``_lab.start_make_lab``) in a scratch copy of the repository
(the root ``nbgrader_config.py``, ``assignments/``, ``notebooks/``) into whose course
lesson 00's example class was graded (``conftest.graded_class``). In Debian's Chromium:
the Formgrader lists every lesson of the course and releases one to the local exchange,
where the students' Assignment List finds it; a written answer graded by hand in the
Formgrader lands in the course's gradebook (read back with nbgrader's ``Gradebook``), and
the totals the Formgrader shows are what `course grade` reported plus the manual points.
A student opening ``notebooks/`` in the same JupyterLab still validates their notebook.
Screenshots land in ``runs/browser/`` (or ``$COURSE_TEST_ARTIFACTS``).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator

import _lab
import pytest
from _lab import CURRENT, RUN_TIMEOUT_MS, TOKEN, artifacts_dir, chromium, menu, open_notebook
from conftest import LESSONS
from traitlets.config.loader import PyFileConfigLoader

WRITTEN = "confusion_matrix_explained"  # lesson 00's written answer, graded by hand
MANUAL_POINTS = 2.0
GRADED_BY_HAND = "ada"


@pytest.fixture(scope="module")
def make_lab(graded_class, tmp_path_factory) -> Iterator[_lab.Lab]:
    with _lab.start_make_lab(graded_class.repo, tmp_path_factory.mktemp("make-lab")) as lab:
        yield lab


def open_formgrader(page, lab: _lab.Lab):
    """JupyterLab's page with the Formgrader open from the Nbgrader menu; its frame."""
    page.goto(f"{lab.base}/lab?reset&token={TOKEN}")
    page.wait_for_selector(".lm-MenuBar-itemLabel:text-is('Nbgrader')", timeout=120_000)
    menu(page, "Nbgrader", "Formgrader")
    return page.frame_locator("iframe").first


def shown_scores(rows) -> dict[str, tuple[float, float]]:
    """``{student: (score, max)}`` from table rows: ``key`` cell text and ``x / y``."""
    scores = {}
    for key, text in rows:
        score, _, max_score = text.partition("/")
        scores[key.strip()] = (float(score), float(max_score))
    return scores


def test_root_config_points_nbgrader_at_the_course_and_a_local_exchange(tmp_path, monkeypatch):
    repo = _lab.copy_repository_layout(tmp_path / "repo")
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    monkeypatch.delenv("COURSE_EXCHANGE", raising=False)
    config = PyFileConfigLoader("nbgrader_config.py", path=str(repo)).load_config()
    assert config.CourseDirectory.root == str(repo / "assignments")
    assert config.CourseDirectory.course_id == "dl-practice"  # the course's own settings
    assert config.Execute.timeout == 300
    assert config.Exchange.root == str(repo / "runs" / "exchange")
    assert (repo / "runs" / "exchange").is_dir()
    assert "COURSE_PROFILE" not in os.environ, (
        "loading the config in JupyterLab's server set COURSE_PROFILE for students' kernels")
    monkeypatch.setenv("COURSE_EXCHANGE", "/srv/nbgrader/exchange")  # a shared JupyterHub
    config = PyFileConfigLoader("nbgrader_config.py", path=str(repo)).load_config()
    assert config.Exchange.root == "/srv/nbgrader/exchange"


def test_make_lab_runs_as_the_user_it_is_started_by():
    args = _lab.make_lab_args()
    assert "--notebook-dir=." in args
    assert ("--allow-root" in args) == (os.geteuid() == 0)


@pytest.mark.slow
def test_formgrader_in_make_lab_lists_every_lesson_and_releases_to_the_local_exchange(
        make_lab, graded_class):
    lesson = LESSONS[0]
    course = graded_class.course
    shutil.copytree(graded_class.prepared.course / "release" / lesson,
                    course / "release" / lesson, dirs_exist_ok=True)
    with chromium() as page:
        frame = open_formgrader(page, make_lab)
        for listed in LESSONS:  # Manage Assignments: every master of assignments/source/
            frame.locator(f"td a:text-is('{listed}')").first.wait_for(timeout=60_000)
        assert frame.locator("text=No data available").count() == 0
        page.screenshot(path=str(artifacts_dir() / "formgrader-make-lab-assignments.png"))
        frame.locator(f"tr:has(a:text-is('{lesson}')) td.release a").click()
        frame.locator("text=Successfully released").wait_for(timeout=120_000)
        released = make_lab.root / "runs" / "exchange" / "dl-practice" / "outbound" / lesson
        assert (released / f"{lesson}.ipynb").is_file(), "not released to runs/exchange"
        frame.locator("button:text-is('OK')").click()

        menu(page, "Nbgrader", "Assignment List")  # what a student sees
        page.locator(".lm-TabBar-tab.jp-mod-current:has-text('Assignments')").wait_for(
            timeout=30_000)
        page.locator("#released_assignments_list").get_by_text(lesson).wait_for(
            timeout=60_000)
        page.screenshot(path=str(artifacts_dir() / "formgrader-make-lab-assignment-list.png"))
        assert page.get_by_text("Error fetching courses").count() == 0


@pytest.mark.slow
def test_a_manual_grade_saved_in_the_formgrader_is_in_the_gradebook_and_the_totals(
        make_lab, graded_class):
    from nbgrader.api import Gradebook

    lesson, result = LESSONS[0], graded_class.result
    plan = graded_class.prepared.plan
    assert plan.manual.get(WRITTEN) == 3, f"{lesson}: {WRITTEN} should be a 3-point answer"
    with chromium() as page:
        frame = open_formgrader(page, make_lab)
        frame.locator("a:text-is('Manual Grading')").first.click()
        frame.locator(f"td a:text-is('{lesson}')").first.click()  # the assignment
        frame.locator(f"td a:text-is('{lesson}')").first.click()  # its notebook
        student = frame.locator(f"td.name a.name-shown:text-is('{GRADED_BY_HAND}')")
        student.wait_for(state="attached", timeout=60_000)  # the rows have loaded
        frame.locator("#toggle_names").click()  # "Show All Names"
        student.click()
        # rendered from the gradebook once the page has loaded (typing earlier is overwritten)
        score = frame.locator(f"input#{WRITTEN}.needs_manual_grade")
        score.wait_for(timeout=120_000)
        score.fill(f"{MANUAL_POINTS:g}")
        score.press("Tab")  # leaving the field saves it, as an instructor does

        deadline = time.monotonic() + 60
        while True:  # the save reaches the gradebook a moment later
            with Gradebook(result.db_url, graded_class.prepared.course_id) as gb:
                grade = gb.find_grade(WRITTEN, lesson, lesson, GRADED_BY_HAND)
                stored = (grade.manual_score, grade.needs_manual_grade)
            if stored[0] is not None or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        page.screenshot(path=str(artifacts_dir() / "formgrader-make-lab-manual-grade.png"))
        assert stored == (MANUAL_POINTS, False), f"{WRITTEN} of {GRADED_BY_HAND}: {stored}"

        frame.locator(f"a[href$='/formgrader/gradebook/{lesson}/{lesson}']").first.click()
        frame.locator("td.name a.name-shown").first.wait_for(state="attached", timeout=60_000)
        frame.locator("#toggle_names").click()
        rows = frame.locator("tbody tr")
        per_notebook = shown_scores(
            (row.locator("td.name a.name-shown").text_content(),
             row.locator("td.score").inner_text()) for row in rows.all())
        written = {row.locator("td.name a.name-shown").text_content().strip():
                   row.locator("td.written-score").inner_text() for row in rows.all()}
        page.screenshot(path=str(artifacts_dir() / "formgrader-make-lab-submissions.png"))

        frame.locator("a:text-is('Manage Students')").first.click()
        frame.locator("td.id").first.wait_for(timeout=60_000)
        per_student = shown_scores(
            (row.locator("td.id").inner_text(), row.locator("td.score").inner_text())
            for row in frame.locator("tbody tr").all())

    # what `course grade` reported, plus the points given by hand (rounded as the page does)
    expected = {g.student: (round(g.autograded_score
                                  + (MANUAL_POINTS if g.student == GRADED_BY_HAND else 0.0), 2),
                            round(plan.max_score, 2)) for g in result.students}
    assert per_notebook == expected, "Manual Grading > notebook: total / max per student"
    assert per_student == expected, "Manage Students: total / max per student"
    assert written[GRADED_BY_HAND].replace(" ", "") == f"{MANUAL_POINTS:g}/3"


@pytest.mark.slow
def test_students_validate_a_notebook_of_notebooks_in_the_same_lab(make_lab):
    rel = f"notebooks/{LESSONS[0]}.ipynb"  # untouched: its tests fail
    with chromium() as page:
        open_notebook(page, make_lab, rel)
        page.click(f"{CURRENT} .jp-Toolbar-item :text-is('Validate')")
        dialog = page.locator(".jp-Dialog")
        dialog.wait_for(timeout=RUN_TIMEOUT_MS)
        dialog.locator(".jp-Dialog-header").filter(has_not_text="Validating").first.wait_for(
            timeout=RUN_TIMEOUT_MS)
        text = dialog.inner_text()
        page.screenshot(path=str(artifacts_dir() / "formgrader-make-lab-validate.png"))
    _lab.shut_down_kernels(make_lab)
    assert "the following cell failed" in text.lower(), text
