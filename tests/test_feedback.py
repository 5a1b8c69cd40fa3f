"""Feedback pages: each test's result, message and score, never a hidden test's source,
never a student's script.

A small autograded notebook is built by hand next to a real nbgrader gradebook (sqlite in
``tmp_path``): a test cell with visible and hidden tests (the hidden part holds a unique
marker and an expanded ``### HASHED AUTOTEST``), a failing hidden assert with a helpful
message, a written answer with ``<script>`` and ``<img onerror>``, and student outputs
in HTML, JavaScript, SVG and a widget. Then every lesson's master is put through as if
it had been autograded, with outputs quoting its tests, and nothing nbgrader itself
hides from students may come out. Beside the feedback, the class's ``grades.csv`` (the
same gradebook's export) splits each total the way the page and the summary do. No
notebook runs.
"""

from __future__ import annotations

import copy
import csv
import re
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from course_utils.instructor import release
from course_utils.instructor.grading import GradeResult, GradingPlan, StudentGrade, format_summary
from course_utils.instructor.grading.feedback import (
    HIDDEN_NOTE,
    feedback_notebook,
    feedback_resources,
    render_feedback,
    sanitize_html,
)
from course_utils.instructor.grading.gradebook import open_gradebook
from course_utils.instructor.grading.reports import NBGRADER_COLUMNS, export_grades

ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "assignments"
LESSONS = release.list_lessons(COURSE)
COURSE_ID = "dl-practice"
LESSON = "lesson"
MARKER = "hidden-marker-7f3a"
HINT = "f(2) should be 4: add one, do not double"
SCRIPT = '<script>alert("student-script")</script>'
IMAGE = "<img src=x onerror=alert(1)>"
PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5"
       "ErkJggg==")


def _meta(grade_id, *, grade=False, solution=False, points=None, locked=None):
    meta = {"grade_id": grade_id, "grade": grade, "solution": solution,
            "locked": (not solution) if locked is None else locked, "schema_version": 3}
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


TEST_SOURCE = f'''assert f(1) == 2, "f(1) should be 2"
### BEGIN HIDDEN TESTS
_secret = "{MARKER}"
assert f(2) == 4, "{HINT}"
### HASHED AUTOTEST f(3)
### END HIDDEN TESTS
print("f works")'''

#: What nbgrader's InstantiateTests writes for the HASHED AUTOTEST line.
EXPANDED = ('assert __import__("hashlib").sha256(str(f(3)).encode("utf-8") + b"a1b2")'
            '.hexdigest() == "0f0e", "f(3) has the wrong value"')


def _master():
    return new_notebook(cells=[
        new_markdown_cell("# Lesson\nWrite `f`."),
        new_code_cell("def f(x):\n    ### BEGIN SOLUTION\n    return x + 1\n    ### END SOLUTION",
                      metadata=_meta("answer", solution=True)),
        new_code_cell(TEST_SOURCE, metadata=_meta("f_works", grade=True, points=2)),
        new_markdown_cell("Why does `f` work?", metadata=_meta("explain_prompt", locked=True)),
        new_markdown_cell("YOUR ANSWER HERE",
                          metadata=_meta("explain", grade=True, solution=True, points=1)),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                "language": "python"}})


def _traceback(source: str) -> list[str]:
    """What IPython prints for a failing cell: ANSI colours and the cell's lines."""
    return ["\x1b[0;31m---------------------------------------------------------------\x1b[0m",
            "\x1b[0;31mAssertionError\x1b[0m                 Traceback (most recent call last)",
            *[f"\x1b[0;32m----> {i}\x1b[0m {line}" for i, line in
              enumerate(source.splitlines(), 1)],
            f"\x1b[0;31mAssertionError\x1b[0m: {HINT}"]


def _autograded(master):
    """The master as nbgrader's Autograde leaves it for a student who got f wrong."""
    nb = copy.deepcopy(master)
    nb.cells[1].source = "def f(x):\n    return 2 * x if x > 1 else x + 1"
    test = nb.cells[2]
    test.source = TEST_SOURCE.replace("### HASHED AUTOTEST f(3)", EXPANDED)
    test.execution_count = 3
    test.outputs = [new_output("error", ename="AssertionError", evalue=HINT,
                               traceback=_traceback(test.source))]
    nb.cells[4].source = (f"It adds one. {SCRIPT}\n\n{IMAGE}\n\n"
                          "[a link](javascript:alert(2)) and **bold** and $x + 1$")
    nb.cells.insert(2, new_code_cell("show_off()", execution_count=2, outputs=[
        new_output("display_data", data={"text/html": f"<b>hi</b>{SCRIPT}{IMAGE}",
                                         "text/plain": "<IPython.core.display.HTML object>"}),
        new_output("display_data", data={"application/javascript": "alert('student-js')"}),
        new_output("display_data", data={"image/svg+xml": f"<svg>{SCRIPT}</svg>",
                                         "text/plain": "<Figure>"}),
        new_output("display_data", data={
            "application/vnd.jupyter.widget-view+json": {"model_id": "abc"},
            "text/plain": "IntSlider(value=0)"}),
        new_output("display_data", data={"image/png": PNG, "text/plain": "<Figure>"},
                   metadata={"image/png": {"width": 20, "height": "1 onerror=alert(3)"}}),
        new_output("display_data", data={"image/png": 'x" onerror="alert(4)'}),
        new_output("stream", name="stdout", text=f'_secret = "{MARKER}"\nstill shown\n'),
    ]))
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    return nb


@pytest.fixture(scope="module")
def gradebook(tmp_path_factory):
    """A gradebook holding the lesson and ada's graded submission (f_works failed)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('feedback') / 'gradebook.db'}"
    with open_gradebook(url, COURSE_ID) as gb:
        gb.update_or_create_assignment(LESSON)
        gb.update_or_create_notebook(LESSON, LESSON)
        gb.update_or_create_solution_cell("answer", LESSON, LESSON)
        gb.update_or_create_grade_cell("f_works", LESSON, LESSON, max_score=2, cell_type="code")
        gb.update_or_create_grade_cell("explain", LESSON, LESSON, max_score=1,
                                       cell_type="markdown")
        gb.update_or_create_solution_cell("explain", LESSON, LESSON)
        gb.update_or_create_student("ada")
        gb.update_or_create_submission(LESSON, "ada")
        gb.find_grade("f_works", LESSON, LESSON, "ada").auto_score = 0
        gb.find_grade("explain", LESSON, LESSON, "ada").manual_score = 1
        comment = gb.find_comment("explain", LESSON, LESSON, "ada")
        comment.manual_comment = "**Good** answer <script>alert('grader')</script>"
        gb.db.commit()
    return url


@pytest.fixture(scope="module")
def page(gradebook):
    master = _master()
    safe = feedback_notebook(_autograded(master), master)
    return render_feedback(safe, feedback_resources(gradebook, COURSE_ID, LESSON, "ada"))


def _scripts(html: str) -> list[str]:
    return re.findall(r"<script\b[^>]*>.*?</script>", html, flags=re.S | re.I)


def test_the_page_never_shows_hidden_test_source(page):
    assert MARKER not in page
    assert "hashlib" not in page and "f(3) has the wrong value" not in page
    assert "assert f(2) == 4" not in page
    assert HIDDEN_NOTE.lstrip("# ") in page
    assert "f(1) should be 2" in page  # the visible test stays


def test_the_page_shows_the_failing_assertion_message_and_the_scores(page):
    assert f"AssertionError: {HINT}" in page
    assert "(Score: 1.0 / 3.0)" in page  # total: 0 of 2 for the test, 1 of 1 written
    assert "Score: 0.0 / 2.0" in page and "Score: 1.0 / 1.0" in page
    assert "<strong>Good</strong> answer" in page  # the grader's comment, as Markdown


def test_no_student_script_or_event_handler_reaches_the_page(page):
    for script in _scripts(page):  # the template's own: MathJax, from its CDN
        assert "alert" not in script and "student" not in script, script
    assert "onerror" not in page
    assert not re.search(r"""(href|src)\s*=\s*["']?\s*javascript:""", page, flags=re.I)
    assert "student-js" not in page
    assert "<bold>" not in page and "<b>hi</b>" not in page  # raw HTML output dropped
    assert "&lt;script&gt;" in page  # the written answer's script is shown as text
    assert "<strong>bold</strong>" in page  # ... and its Markdown still renders


def test_the_notebook_keeps_plain_text_and_checked_images_only(page):
    master = _master()
    safe = feedback_notebook(_autograded(master), master)
    outputs = safe.cells[2].outputs
    assert [sorted(o.get("data", {})) for o in outputs] == [
        ["text/plain"], ["text/plain"], ["text/plain"], ["text/plain"],
        ["image/png", "text/plain"], ["text/plain"], []]
    assert outputs[1].data["text/plain"] == \
        "[application/javascript output, not shown in the feedback]"
    assert outputs[4].metadata == {"image/png": {"width": 20}}
    assert outputs[6].text == "[a line quoting a hidden test was removed]\nstill shown\n"
    test_error = safe.cells[3].outputs[0]
    assert test_error.traceback == [f"AssertionError: {HINT}"]
    assert "widgets" not in safe.metadata
    assert "data:image/png;base64," + PNG in page


def test_inputs_are_left_unchanged(gradebook):
    master = _master()
    autograded = _autograded(master)
    before = (nbformat.writes(autograded), nbformat.writes(master))
    safe = feedback_notebook(autograded, master)
    resources = feedback_resources(gradebook, COURSE_ID, LESSON, "ada")
    render_feedback(safe, resources)
    assert (nbformat.writes(autograded), nbformat.writes(master)) == before
    assert set(resources["nbgrader"]) == {"db_url", "course_id", "assignment", "student",
                                          "notebook"}


def test_a_test_cell_without_its_hidden_markers_shows_the_masters_visible_part():
    master = _master()
    autograded = _autograded(master)
    autograded.cells[3].source = TEST_SOURCE.replace("### BEGIN HIDDEN TESTS\n", "")
    shown = feedback_notebook(autograded, master).cells[3].source
    assert MARKER not in shown and shown.startswith('assert f(1) == 2')


def test_nbgrader_metadata_of_cells_the_master_lacks_is_dropped():
    master = _master()
    autograded = _autograded(master)
    autograded.cells[2].metadata = {"nbgrader": {"grade_id": '"><script>x()</script>',
                                                 "grade": True, "points": 99},
                                    "tags": ["x"]}
    assert feedback_notebook(autograded, master).cells[2].metadata == {}


def test_bad_arguments_say_what_was_expected(gradebook):
    with pytest.raises(TypeError, match="autograded_nb: expected a notebook"):
        feedback_notebook("nb.ipynb", _master())
    with pytest.raises(TypeError, match="master_nb: expected a notebook"):
        feedback_notebook(_master(), None)
    with pytest.raises(ValueError, match="student: expected a non-empty str"):
        feedback_resources(gradebook, COURSE_ID, LESSON, "")
    with pytest.raises(ValueError, match="missing nbgrader db_url, course_id"):
        render_feedback(_master(), {"nbgrader": {"assignment": LESSON}})


def test_nbgraders_template_alone_would_let_markdown_scripts_through():
    """Why we sanitise Markdown ourselves: sanitize_html does not reach it in this template."""
    import nbgrader
    from nbconvert.exporters import HTMLExporter
    from traitlets.config import Config

    templates = Path(nbgrader.__file__).parent / "server_extensions" / "formgrader" / "templates"
    config = Config()
    config.HTMLExporter.template_name = "feedback"
    config.HTMLExporter.extra_template_basedirs = [str(templates)]
    config.HTMLExporter.extra_template_paths = [
        str(templates.parent / "static" / "node_modules" / "bootstrap" / "dist" / "css")]
    config.HTMLExporter.sanitize_html = True
    nb = new_notebook(cells=[new_markdown_cell(SCRIPT)])
    resources = {"nbgrader": {"notebook": LESSON, "score": 0, "max_score": 1,
                              "late_penalty": 0}}
    html, _ = HTMLExporter(config=config).from_notebook_node(nb, resources=resources)
    assert any("student-script" in s for s in _scripts(html))
    assert "student-script" not in "".join(_scripts(sanitize_html(SCRIPT)))


# --------------------------------------------------------------------------- the masters


def _hidden_only_lines(master) -> set[str]:
    """Lines nbgrader's own ClearHiddenTests removes, and no visible part holds, whole or
    within a longer line (``verbose=0)`` closing a hidden call is in visible code too)."""
    from nbgrader.preprocessors import ClearHiddenTests

    cleared, _ = ClearHiddenTests().preprocess(copy.deepcopy(master), {})
    visible = {line.strip() for cell in cleared.cells for line in cell.source.splitlines()}
    hidden = set()
    for before, after in zip(master.cells, cleared.cells, strict=True):
        kept = set(after.source.splitlines())
        hidden |= {line.strip() for line in before.source.splitlines() if line not in kept}
    visible_text = "\n".join(visible)
    return {line for line in hidden - visible
            if line and "HIDDEN TESTS" not in line and len(line) >= 8
            and line not in visible_text}


def _as_if_autograded(master):
    """The master with every test cell failing loudly and printing its own source."""
    nb = copy.deepcopy(master)
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade"):
            cell.outputs = [
                new_output("stream", name="stdout", text=cell.source),
                new_output("error", ename="AssertionError", evalue="a hidden test failed",
                           traceback=_traceback(cell.source)),
            ]
    return nb


@pytest.mark.parametrize("lesson", LESSONS)
def test_a_lessons_feedback_holds_none_of_its_hidden_test_lines(lesson):
    master = release.read_notebook(release.master_path(lesson, COURSE))
    hidden = _hidden_only_lines(master)
    assert hidden, f"{lesson}: the master has no hidden tests to check"
    safe = feedback_notebook(_as_if_autograded(master), master)
    text = "\n".join([c.source for c in safe.cells] + [
        str(o.get("text", "")) + str(o.get("evalue", "")) + "\n".join(o.get("traceback", []))
        + str(o.get("data", {}).get("text/plain", ""))
        for c in safe.cells for o in c.get("outputs", [])])
    leaked = sorted(line for line in hidden if line in text)
    assert not leaked, f"{lesson}: hidden lines in the feedback:\n" + "\n".join(leaked)
    graded = [c for c in safe.cells if c.metadata.get("nbgrader", {}).get("grade")
              and c.cell_type == "code"]
    assert any(HIDDEN_NOTE in c.source for c in graded)


# --------------------------------------------------------------------------- grades.csv


def test_grades_csv_splits_each_total_into_autograded_and_manual_like_the_summary(tmp_path):
    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    with open_gradebook(url, COURSE_ID) as gb:
        gb.update_or_create_assignment(LESSON)
        gb.update_or_create_notebook(LESSON, LESSON)
        gb.update_or_create_grade_cell("f_works", LESSON, LESSON, max_score=2, cell_type="code")
        gb.update_or_create_grade_cell("explain", LESSON, LESSON, max_score=1,
                                       cell_type="markdown")
        gb.update_or_create_solution_cell("explain", LESSON, LESSON)
        for student, auto, manual in (("ada", 2, 1), ("ben", 1, None)):
            gb.update_or_create_student(student)
            gb.update_or_create_submission(LESSON, student)
            gb.find_grade("f_works", LESSON, LESSON, student).auto_score = auto
            gb.find_grade("explain", LESSON, LESSON, student).manual_score = manual
        gb.db.commit()
    students = (StudentGrade("ada", "graded", "", 1.0, {"f_works": 2.0, "explain": 1.0}, 2.0,
                             manual_score=1.0),
                StudentGrade("ben", "graded", "", 1.0, {"f_works": 1.0, "explain": None}, 1.0))
    path = export_grades(url, COURSE_ID, LESSON, students, tmp_path / "grades.csv")
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        columns = reader.fieldnames
        rows = {row["student_id"]: row for row in reader}
    assert columns == [*NBGRADER_COLUMNS, "autograded_score", "manual_score"], columns
    assert {s: (r["autograded_score"], r["manual_score"], r["score"], r["max_score"])
            for s, r in rows.items()} == {"ada": ("2", "1", "3.0", "3.0"),
                                          "ben": ("1", "", "1.0", "3.0")}
    plan = GradingPlan({"f_works": 2.0}, {"explain": 1.0}, {})
    summary = format_summary(GradeResult(LESSON, tmp_path, url, plan, students, (), 1, 1.0,
                                         *[tmp_path] * 4)).splitlines()
    assert summary[2].split()[:5] == ["ada", "graded", "2/2", "1/1", "3/3"], summary
    assert summary[3].split()[:5] == ["ben", "graded", "1/2", "-/1", "1/3"], summary


def test_grades_csv_of_no_student_has_the_same_columns(tmp_path):
    path = export_grades("sqlite://", COURSE_ID, LESSON, (), tmp_path / "grades.csv")
    assert path.read_text() == ",".join([*NBGRADER_COLUMNS, "autograded_score",
                                         "manual_score"]) + "\n"
