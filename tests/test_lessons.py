"""What every graded lesson must be, checked on each master in ``assignments/source/``.

The static tests read the master (see ``../shared/LESSON_CHECKLIST.md``); the slow ones
read the run of the student version with every task solved, as a student runs it in
JupyterLab without nbgrader, in the smoke profile (``conftest.lesson_run``). Its hidden
tests are checked by grading the same answers with nbgrader (``test_grading.py``), and
nbgrader's Validate button in ``test_browser.py``. Each lesson's own content and claims
are checked in ``test_lessonNN.py``.
"""

from __future__ import annotations

import ast
import builtins
import re

import pytest
from conftest import COURSE, LESSONS, expand_autotests, stream

from course_utils.instructor import cells, grading, release

pytestmark = pytest.mark.parametrize("lesson", LESSONS)


def _master(lesson):
    return release.read_notebook(release.master_path(lesson, COURSE))


def _meta(cell):
    return cell.get("metadata", {}).get("nbgrader", {})


def _lecture_code(nb):
    return [c for c in nb.cells if c.cell_type == "code" and not _meta(c).get("grade_id")]


# --------------------------------------------------------------------------- the master


def test_master_is_stored_clean_with_the_standard_opening(lesson):
    nb = _master(lesson)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.id
    assert nb.metadata.kernelspec.name == "python3"
    assert nb.cells[0].source.startswith(f"# {lesson[:2]} ")
    assert nb.cells[1].source == cells.setup_cell_source()
    assert all(re.fullmatch(r"[a-z0-9-]+", cell.id) for cell in nb.cells)


def test_graded_tasks_have_visible_tests_hidden_tests_and_autotests(lesson):
    nb = _master(lesson)
    plan = grading.read_grading_plan(nb)
    tasks = {sid: tests for sid, tests in plan.tests_of.items() if tests}
    assert len(tasks) >= 4, f"{len(tasks)} autograded tasks, the checklist asks for four"
    assert sum(plan.manual.values()) > 0, "no written answer graded by hand"
    for sid, tests in tasks.items():
        sources = [c.source for c in nb.cells if _meta(c).get("grade_id") in tests]
        visible = [s.split("### BEGIN HIDDEN TESTS")[0] for s in sources]
        assert any("assert" in v or "check_" in v for v in visible), f"{sid}: no visible test"
        assert any("### BEGIN HIDDEN TESTS" in s for s in sources), f"{sid}: no hidden test"
        assert any("AUTOTEST" in s for s in sources), f"{sid}: no autotest line"
    for grade_id in [*plan.autograded, *plan.manual, *plan.tests_of]:
        assert re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)+", grade_id), grade_id
        assert not re.search(r"cell|task\d|test\d", grade_id), f"{grade_id} says nothing"


def test_test_cells_only_use_names_they_import_or_the_answers_they_test(lesson):
    """A student who reuses a name the tests read must not change the grade."""
    nb = _master(lesson)
    plan = grading.read_grading_plan(nb)
    answers = grading.solution_answers(nb)
    answer_names = set()
    for sid in plan.tests_of:
        for node in ast.walk(ast.parse(answers[sid])):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                answer_names.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                answer_names.add(node.id)
    for cell in nb.cells:
        if _meta(cell).get("grade_id") not in plan.autograded:
            continue
        tree = ast.parse(expand_autotests(cell.source))
        loaded = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)
                  and isinstance(n.ctx, ast.Load)}
        defined = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)
                   and isinstance(n.ctx, ast.Store)}
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                defined |= {(a.asname or a.name).split(".")[0] for a in node.names}
            elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                defined.add(node.name)
                defined |= {a.arg for a in node.args.args} if hasattr(node, "args") else set()
            elif isinstance(node, ast.arg):
                defined.add(node.arg)
        borrowed = loaded - defined - answer_names - set(dir(builtins))
        assert not borrowed, f"{_meta(cell)['grade_id']} relies on notebook state: {borrowed}"


def test_lecture_code_takes_sizes_and_epochs_from_the_profile(lesson):
    code = _lecture_code(_master(lesson))
    settings = code[0].source  # the first cell after the (read-only) set-up cell
    assert "profile." in settings, "the first code cell should read the budget from `profile`"
    literal = re.compile(r"\b(epochs|batch_size|image_size|initial_epoch|train_size)\s*=\s*\d|"
                         r"make_fingers\(\s*\d|load_fingers\(\s*['\"](smoke|cpu|gpu)")
    for cell in code[1:]:
        assert not literal.search(cell.source), f"literal size or epochs in:\n{cell.source}"


def test_a_figure_drawn_by_the_last_line_of_a_cell_is_shown(lesson):
    # The course's plot_* functions return a Figure: Jupyter shows it only as the cell's
    # value, and a trailing ";" hides it (widgets display themselves and may keep theirs).
    hidden = []
    for cell in _lecture_code(_master(lesson)):
        body = ast.parse(cell.source).body
        last = body[-1] if body else None
        if isinstance(last, ast.Expr) and isinstance(last.value, ast.Call):
            func = last.value.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name.startswith("plot_") and cell.source.rstrip().endswith(";"):
                hidden.append(cell.id)
    assert not hidden, f"cells whose figure a trailing ';' hides: {hidden}"


# --------------------------------------------------------------------------- a real run


@pytest.mark.slow
def test_solved_lesson_runs_top_to_bottom_in_the_smoke_profile(lesson, lesson_run):
    # Its running time is a budget (30 s), measured by benchmarks/bench_lessons.py beside the
    # cpu profile's, not asserted here: a timed assertion fails on a slower machine.
    run = lesson_run(lesson)
    print(f"\n{lesson}, smoke profile: {run.seconds:.1f} s top to bottom")
    errors = [o for c in run.nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, errors[0]
    figures = sum("image/png" in o.get("data", {}) for c in run.nb.cells
                  for o in c.get("outputs", []))
    assert figures >= 3, f"only {figures} figures: show, do not only tell"


_TF_NOISE = re.compile(r"AutoGraph|absl::|oneDNN|cpu_feature_guard|^[IWE]\d{4} \d\d:", re.M)


@pytest.mark.slow
def test_outputs_carry_no_tensorflow_log_noise(lesson, lesson_run):
    nb = lesson_run(lesson).nb
    errs = [(i, stream(c, "stderr")) for i, c in enumerate(nb.cells) if stream(c, "stderr")]
    assert not errs, f"stderr output in cells: {errs}"
    noisy = [(i, _TF_NOISE.search(stream(c)).group(0)) for i, c in enumerate(nb.cells)
             if _TF_NOISE.search(stream(c))]
    assert not noisy, f"TensorFlow log lines in the output of cells: {noisy}"


@pytest.mark.slow
def test_visible_tests_pass_without_nbgrader(lesson, lesson_run):
    nb = lesson_run(lesson).nb
    graded = [c for c in nb.cells if _meta(c).get("grade") and c.cell_type == "code"]
    visible = [c for c in graded if "assert" in c.source.split("### BEGIN HIDDEN TESTS")[0]]
    assert len(visible) >= 4
    for cell in visible:
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert not errors and stream(cell), f"{_meta(cell)['grade_id']}: {errors}"
