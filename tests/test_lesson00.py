"""Lesson 00, the workflow of a deep-learning project: a sound, fast, gradable lesson.

The static tests read the master; the slow ones run the student version with every task
solved (what a student runs, on Colab without nbgrader), time it in the smoke profile and
check the lesson's claims on its outputs, and run `nbgrader validate` on it.
"""

from __future__ import annotations

import ast
import builtins
import json
import re
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from course_utils import grading, notebook, profiles, release

ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "assignments"
LESSON = "00_workflow"
MASTER = release.master_path(LESSON, COURSE)
STUDENT = ROOT / "notebooks" / f"{LESSON}.ipynb"
SMOKE_BUDGET_S = 30


def _master():
    return release.read_notebook(MASTER)


def _meta(cell):
    return cell.get("metadata", {}).get("nbgrader", {})


def _lecture_code(nb):
    return [c for c in nb.cells if c.cell_type == "code" and not _meta(c).get("grade_id")]


# --------------------------------------------------------------------------- the master


def test_master_is_stored_clean_with_the_standard_opening():
    nb = _master()
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
    assert nb.metadata.kernelspec.name == "python3"
    assert nb.cells[1].source == notebook.setup_cell_source()
    assert all(re.fullmatch(r"[a-z0-9-]+", cell.id) for cell in nb.cells)


def test_master_teaches_every_concept_of_syllabus_00():
    text = "\n".join(c.source for c in _master().cells if c.cell_type == "markdown").lower()
    for step in range(1, 10):
        assert f"## step {step}:" in text, f"step {step} has no section"
    for concept in ("hyper-parameter", "validation", "augment", "activation", "flatten",
                    "one unit per class", "loss", "optimizer", "training monitor",
                    "checkpoint", "resume", "learning curves", "test set", "confusion matrix",
                    "real images", "vault", "random", "memoris", "rank-1", "rank-5", "tune"):
        assert concept in text, f"the lesson never mentions {concept!r}"


def test_graded_tasks_have_visible_tests_hidden_tests_and_autotests():
    nb = _master()
    plan = grading.read_grading_plan(nb)
    tasks = {sid: tests for sid, tests in plan.tests_of.items() if tests}
    assert len(tasks) >= 4 and sum(plan.manual.values()) > 0
    for sid, tests in tasks.items():
        sources = [nb.cells[i].source for i, c in enumerate(nb.cells) if _meta(c).get(
            "grade_id") in tests]
        visible = [s.split("### BEGIN HIDDEN TESTS")[0] for s in sources]
        assert any("assert" in v or "check_" in v for v in visible), f"{sid}: no visible test"
        assert any("### BEGIN HIDDEN TESTS" in s for s in sources), f"{sid}: no hidden test"
        assert any("AUTOTEST" in s for s in sources), f"{sid}: no autotest line"
    for grade_id in [*plan.autograded, *plan.manual, *plan.tests_of]:
        assert re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)+", grade_id), grade_id
        assert not re.search(r"cell|task\d|test\d", grade_id), f"{grade_id} says nothing"


def test_test_cells_only_use_names_they_import_or_the_answers_they_test():
    nb = _master()
    plan = grading.read_grading_plan(nb)
    answers = grading.solution_answers(nb)
    answer_names = set()
    for sid in plan.tests_of:  # the code answers
        for node in ast.walk(ast.parse(answers[sid])):
            if isinstance(node, ast.FunctionDef):
                answer_names.add(node.name)
    for cell in nb.cells:
        if _meta(cell).get("grade_id") not in plan.autograded:
            continue
        lines = []
        for ln in cell.source.splitlines():
            if "AUTOTEST" in ln:  # the autotested expressions run in the cell too
                lines += [s.strip() for s in ln.split("AUTOTEST", 1)[1].split(";") if s.strip()]
            else:
                lines.append(ln)
        code = "\n".join(lines)
        tree = ast.parse(code)
        loaded = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)
                  and isinstance(n.ctx, ast.Load)}
        defined = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)
                   and isinstance(n.ctx, ast.Store)}
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                defined |= {(a.asname or a.name).split(".")[0] for a in node.names}
        borrowed = loaded - defined - answer_names - set(dir(builtins))
        assert not borrowed, f"{_meta(cell)['grade_id']} relies on notebook state: {borrowed}"


def test_lecture_code_takes_sizes_and_epochs_from_the_profile():
    nb = _master()
    code = _lecture_code(nb)
    hyper = code[0].source  # the first cell after the (read-only) set-up cell
    for name in ("IMAGE_SIZE", "BATCH_SIZE", "EPOCHS", "LEARNING_RATE", "SEED", "VAL_FRACTION"):
        assert re.search(rf"^{name} = ", hyper, re.M), f"{name} is not a global of step 1"
    assert "profile." in hyper
    literal = re.compile(r"\b(epochs|batch_size|image_size|initial_epoch)\s*=\s*\d|"
                         r"make_fingers\(\s*\d|split_train_val\([^)]*val_fraction=\d")
    for cell in code[1:]:
        assert not literal.search(cell.source), f"literal size or epochs in:\n{cell.source}"


# --------------------------------------------------------------------------- a real run


@pytest.fixture(scope="module")
def solved(tmp_path_factory):
    """The student version with every task solved, as a student would hand it in."""
    student = release.read_notebook(STUDENT)
    nb = grading.make_submission(student, grading.solution_answers(_master()))
    folder = tmp_path_factory.mktemp("lesson00")
    path = folder / f"{LESSON}.ipynb"
    path.write_text(nbformat.writes(nb))
    return path


@pytest.fixture(scope="module")
def executed(solved, monkeypatch_module):
    monkeypatch_module.setenv("COURSE_PROFILE", "smoke")
    nb = release.read_notebook(solved)
    start = time.perf_counter()
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(solved.parent)}}).execute()
    return nb, time.perf_counter() - start, solved.parent


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def _stream(cell, name="stdout"):
    return "".join(o.get("text", "") for o in cell.get("outputs", [])
                   if o.output_type == "stream" and o.name == name)


@pytest.mark.slow
def test_solved_lesson_runs_top_to_bottom_in_the_smoke_profile_within_budget(executed):
    nb, seconds, _ = executed
    print(f"\nlesson 00, smoke profile: {seconds:.1f} s top to bottom")
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, errors[0]
    assert seconds <= SMOKE_BUDGET_S, f"{seconds:.1f} s in the smoke profile"
    figures = sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
    assert figures >= 6, "images, augmentation, curves, predictions, confusion, random labels"


_TF_NOISE = re.compile(r"AutoGraph|absl::|oneDNN|cpu_feature_guard|^[IWE]\d{4} \d\d:", re.M)


@pytest.mark.slow
def test_outputs_carry_no_tensorflow_log_noise(executed):
    nb, _, _ = executed
    stderr = [(i, _stream(c, "stderr")) for i, c in enumerate(nb.cells) if _stream(c, "stderr")]
    assert not stderr, f"stderr output in cells: {stderr}"
    noisy = [(i, _TF_NOISE.search(_stream(c)).group(0)) for i, c in enumerate(nb.cells)
             if _TF_NOISE.search(_stream(c))]
    assert not noisy, f"TensorFlow log lines in the output of cells: {noisy}"


@pytest.mark.slow
def test_visible_tests_pass_without_nbgrader(executed):
    nb, _, _ = executed
    graded = [c for c in nb.cells if _meta(c).get("grade") and c.cell_type == "code"]
    visible = [c for c in graded if "### BEGIN HIDDEN TESTS" not in c.source and "assert" in c.source]
    assert len(visible) >= 4
    for cell in visible:
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert not errors and _stream(cell), f"{_meta(cell)['grade_id']}: {errors}"


@pytest.mark.slow
def test_lesson_claims_hold_on_the_real_run(executed):
    nb, _, folder = executed
    text = "".join(_stream(c) for c in nb.cells)
    smoke = profiles.get_profile("smoke")
    # Random labels are memorised (training accuracy ~100 %), validation stays at chance.
    m = re.search(r"training accuracy (\d+)%, validation accuracy (\d+)%", text)
    assert m and int(m.group(1)) >= 95 and int(m.group(2)) <= 25, m and m.group(0)
    # Rank-k accuracy never falls as k grows.
    ranks = [float(v) for v in re.findall(r"rank-\d accuracy on the test set: ([\d.]+)%", text)]
    assert len(ranks) == 3 and ranks == sorted(ranks)
    # The monitor wrote the curves every epoch and continued them after the resume.
    run_dir = folder / "runs" / f"00_workflow-{smoke.name}"
    history = json.loads((run_dir / "history.json").read_text())
    assert len(history["loss"]) == smoke.epochs + 1
    assert (run_dir / "curves.png").is_file()
    assert "resuming from epoch_0002.keras (after epoch 2)" in text.replace(
        f"epoch_{smoke.epochs:04d}", "epoch_0002").replace(f"after epoch {smoke.epochs}",
                                                            "after epoch 2")


@pytest.mark.slow
def test_solved_student_version_passes_nbgrader_validate(solved):
    done = release.run_nbgrader(["validate", str(solved)], course_root=solved.parent,
                                timeout=300)
    assert "Success! Your notebook passes all the tests." in done.stdout, done.stdout + done.stderr
