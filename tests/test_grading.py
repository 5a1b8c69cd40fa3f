"""`course grade`: a real nbgrader cycle per lesson, with wrong and adversarial submissions.

For every lesson with a master, one class is built from the master generated once per
session (``conftest.prepared_lesson``), autograded in parallel (two workers) in the
``grading`` profile, as ``course grade`` does, and exported, and every submission's score
is checked task by task. Each submission costs a notebook run, so the class is as small as
what it proves allows:

- the reference solution (handed in as a zip file) gets full marks, the untouched
  student version zero;
- the wrong answers kept in ``tests/submissions/<lesson>/wrong_answers.yml`` get exactly
  the points listed there (several wrong answers per submission, one per task);
- the first of those is handed in by an adversarial student, ``tampered``, who also
  deletes a test cell and edits another to print success, floods the output, writes
  noise on stderr and rebinds every name the tests read: the grade stays that of the
  wrong answers;
- in the first lesson's class (the grading set-up is the same for every lesson) also an
  infinite loop together with a syntax error, a kernel that dies, and a file that is
  not a notebook.

The same class, less the faults, is graded once more in the ``smoke`` profile, unsandboxed
(the first run grades in the sandbox) to keep it short: every submission must get there
the points it gets in the ``grading`` profile, task by task, so the smaller budget changes
how long grading takes and never a grade.

The exchange cycle (release, fetch, submit, collect) runs once through a local exchange
folder, and its collected ``submitted/`` tree is graded. The remaining tests need no
notebook run.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import contextlib
import copy
import csv
import dataclasses
import json
import os
import shutil
import time
import zipfile
from pathlib import Path

import nbformat
import psutil
import pytest
import yaml
from _attacks import NOISE
from conftest import CLAIMS_PROFILE, expand_autotests
from nbformat.v4 import new_code_cell

from course_utils.instructor import grading, release

ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "assignments"
FIXTURES = Path(__file__).resolve().parent / "submissions"
LESSONS = release.list_lessons(COURSE)
#: The lesson whose class also gets the faults that do not depend on a lesson's tests
#: (an infinite loop, a dying kernel, a syntax error, a file that is not a notebook): the
#: grading configuration is the same for every lesson, so once is enough for CI's budget.
FAULTS_LESSON = LESSONS[0]
#: The students of FAULTS_LESSON's class who hand in those faults.
FAULTS = ("infinite_loop", "kernel_dies", "not_a_notebook")
#: Seconds per cell while grading here: generous for the training cells on a busy 2-core
#: machine (two workers). The faults lesson's cells are short (the longest takes 4 s in
#: the grading profile), and its infinite loop waits this long.
CELL_TIMEOUT = {FAULTS_LESSON: 45}
DEFAULT_CELL_TIMEOUT = 300
NOTEBOOK_TIMEOUT = 1800  # seconds per submission


# --------------------------------------------------------------------------- the class


@dataclasses.dataclass
class Expected:
    status: str
    scores: dict[str, float]


@dataclasses.dataclass
class Run:
    lesson: str
    prepared: grading.PreparedAssignment
    expected: dict[str, Expected]
    result: grading.GradeResult
    seconds: float
    submissions: Path  # the class, as handed in


def _fixture_file(lesson: str) -> dict:
    path = FIXTURES / lesson / "wrong_answers.yml"
    assert path.is_file(), f"{path}: every lesson needs its wrong answers (see ../README.md)"
    return yaml.safe_load(path.read_text())


def _fixture(lesson: str) -> dict:
    return _fixture_file(lesson)["submissions"]


def _write(nb, path: Path) -> None:
    path.write_text(nbformat.writes(nb))


def _cell_index(nb, grade_id: str) -> int:
    for i, cell in enumerate(nb.cells):
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id:
            return i
    raise KeyError(grade_id)


def _defined_names(source: str) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def _names_tests_use(master, plan, answers) -> dict[str, set[str]]:
    """Per test cell: the names it reads or binds that a student could have rebound."""
    answer_names = set().union(*(_defined_names(answers[sid]) for sid in plan.tests_of))
    out = {}
    for grade_id in plan.autograded:
        code = expand_autotests(master.cells[_cell_index(master, grade_id)].source)
        used = {n.id for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Name)}
        out[grade_id] = (used | _defined_names(code)) - answer_names - set(dir(builtins))
    return out




def adversarial(prepared, folder, expected, student, master, answers, fixture):
    """The submission that depends on a lesson's own tests; graded for every lesson.

    The first wrong-answer submission of the fixture, handed in by a student who also
    tampers and makes noise: the first test cell deleted (it is put back and graded), the
    last task's tests edited to print success (the originals are put back), huge output,
    stderr noise from every answer, and every name the tests read rebound right before
    each test cell. None of it may change the wrong answers' grade.
    """
    plan = prepared.plan
    tasks = [sid for sid, tests in plan.tests_of.items() if tests]
    first, last = tasks[0], tasks[-1]
    spec = next(iter(fixture.values()))
    chosen = dict(answers) | {k: v["source"] for k, v in spec["answers"].items()}
    want = {k: float(v) for k, v in spec["expect"].items()}
    if last not in spec["answers"]:  # the edited tests must hide a wrong answer
        other = next(s for s in fixture.values() if last in s["answers"])
        chosen[last] = other["answers"][last]["source"]
        want |= {t: float(other["expect"][t]) for t in plan.tests_of[last]}
    chosen[first] += "\n\nfor _line in range(20_000):\n    print('debug', _line)\n"
    nb = grading.make_submission(student, chosen | {
        test: "print('all tests passed')" for test in plan.tests_of[last]})
    del nb.cells[_cell_index(nb, plan.tests_of[first][0])]
    rebound = _names_tests_use(master, plan, answers)
    for grade_id in reversed(list(plan.autograded)):
        names = sorted(rebound[grade_id])
        if names and grade_id != plan.tests_of[first][0]:
            cell = new_code_cell(" = ".join(names) + " = None  # the student reuses these names")
            nb.cells.insert(_cell_index(nb, grade_id), cell)
    for sid in reversed(tasks):
        functions = [n.name for n in ast.parse(chosen[sid]).body if isinstance(n, ast.FunctionDef)]
        wrap = "\n".join(f"{f} = _noisy({f})" for f in functions)
        nb.cells.insert(_cell_index(nb, sid) + 1, new_code_cell(NOISE + "\n\n" + wrap))
    _write(nb, folder / "tampered.ipynb")
    expected["tampered"] = Expected("graded", want)


def build_class(prepared: grading.PreparedAssignment, folder: Path) -> dict[str, Expected]:
    """Write the lesson's test class into ``folder``; return what each student must get."""
    folder.mkdir(parents=True)
    lesson, plan = prepared.assignment, prepared.plan
    master = release.read_notebook(prepared.master)
    student = release.read_notebook(prepared.student_notebook)
    answers = grading.solution_answers(master)
    full = dict(plan.autograded)
    tasks = [sid for sid, tests in plan.tests_of.items() if tests]
    first = tasks[0]
    second = tasks[1] if len(tasks) > 1 else first

    def scores(zero=()):
        zero = set(zero)
        return {k: (0.0 if k in zero else v) for k, v in full.items()}

    def submit(name, nb, expected):
        _write(nb, folder / f"{name}.ipynb")
        return expected

    expected: dict[str, Expected] = {}
    # The reference solution, handed in as a zip archive.
    _write(grading.make_submission(student, answers), folder / "solution.ipynb")
    with zipfile.ZipFile(folder / "solution.zip", "w") as zf:
        zf.write(folder / "solution.ipynb", f"{lesson}/{lesson}.ipynb")
    (folder / "solution.ipynb").unlink()
    expected["solution"] = Expected("graded", scores())
    fixture = _fixture(lesson)
    adversarial(prepared, folder, expected, student, master, answers, fixture)
    for name, spec in list(fixture.items())[1:]:  # the first one is handed in by `tampered`
        chosen = dict(answers) | {k: v["source"] for k, v in spec["answers"].items()}
        expected[name] = submit(name, grading.make_submission(student, chosen),
                                Expected("graded", {k: float(v) for k, v in spec["expect"].items()}))
    # The untouched student version gets nothing.
    expected["untouched"] = submit("untouched", student, Expected("graded", scores(full)))
    if lesson != FAULTS_LESSON:
        return expected
    # An infinite loop at the top of the first task (the cell times out, grading goes on)
    # and a syntax error in the second task's cell: each costs its own task only.
    looping = dict(answers) | {
        first: "while True:\n    pass\n\n" + answers[first],
        second: answers[second] + "\n\ndef unfinished(:\n    pass\n"}
    expected["infinite_loop"] = submit(
        "infinite_loop", grading.make_submission(student, looping),
        Expected("graded", scores([*plan.tests_of[first], *plan.tests_of[second]])))
    # A kernel that dies: nothing can be graded, the submission is flagged for review
    # (``os._exit`` reaches past Python's own shutdown: the scan flags it as well).
    dying = dict(answers) | {first: "import os\n\nos._exit(1)\n" + answers[first]}
    expected["kernel_dies"] = submit("kernel_dies", grading.make_submission(student, dying),
                                     Expected("flagged", scores(full)))
    # Not a notebook at all.
    (folder / "not_a_notebook.ipynb").write_text("My answers are in the email I sent you.\n")
    expected["not_a_notebook"] = Expected("invalid", scores(full))
    return expected


def _grade(submissions: Path, lesson: str, out: Path, *, profile: str | None, **kwargs):
    """``course grade`` with two workers, notebooks in ``profile`` (None: its default)."""
    with pytest.MonkeyPatch.context() as mp:
        if profile is None:
            mp.delenv(grading.worker.PROFILE_VARIABLE, raising=False)
        else:
            mp.setenv(grading.worker.PROFILE_VARIABLE, profile)
        return grading.grade_submissions(submissions, lesson, out_dir=out, jobs=2,
                                         notebook_timeout=NOTEBOOK_TIMEOUT, **kwargs)


def _points_differ(result: grading.GradeResult, expected: dict[str, Expected]) -> list[str]:
    """What in ``result`` differs from ``expected``, one line per status or task."""
    wrong = []
    for name, want in expected.items():
        got = result.student(name)
        if got.status != want.status:
            wrong.append(f"{name}: status {got.status} ({got.message}), expected {want.status}")
        for task, points in want.scores.items():
            if got.scores.get(task) != points:
                wrong.append(f"{name}: {task} got {got.scores.get(task)}, expected {points}")
    return wrong


@pytest.fixture(scope="module", params=LESSONS)
def run(request, prepared_lesson, tmp_path_factory) -> Run:
    """The lesson's class graded as ``course grade`` grades it (sandboxed, grading profile)."""
    lesson = request.param
    prepared = prepared_lesson(lesson)
    work = tmp_path_factory.mktemp(f"grade-{lesson}")
    expected = build_class(prepared, work / "class")
    start = time.perf_counter()
    result = _grade(work / "class", lesson, work / "out", profile=None, prepared=prepared,
                    cell_timeout=CELL_TIMEOUT.get(lesson, DEFAULT_CELL_TIMEOUT))
    seconds = time.perf_counter() - start
    print(f"\n{lesson}: graded {len(expected)} submissions in {seconds:.0f} s\n"
          + grading.format_summary(result))
    return Run(lesson, prepared, expected, result, seconds, work / "class")


def covering_students(expected: dict[str, Expected]) -> list[str]:
    """The fewest students whose scores show every hidden test both passing and failing.

    The solution and the untouched notebook, then, greedily, the wrong answers that lose
    points on tests no chosen student has lost points on yet, and the tampered notebook
    (every lesson's test-dependent attacks). ``make test`` compares the two profiles on
    these; ``make claims`` (``COURSE_CLAIMS_PROFILE`` set) on every student.
    """
    chosen = [name for name in ("solution", "untouched", "tampered") if name in expected]
    full = expected["solution"].scores
    lost = {task for name in chosen[1:] for task, points in expected[name].scores.items()
            if points < full[task] and name != "untouched"}
    for name, want in expected.items():
        if name in chosen or name in FAULTS or want.status != "graded":
            continue
        new = {task for task, points in want.scores.items() if points < full[task]} - lost
        if new:
            chosen.append(name)
            lost |= new
    return chosen


@pytest.fixture(scope="module")
def smoke_run(run, tmp_path_factory) -> Run:
    """The same class graded unsandboxed in the smoke profile: the students that cover every
    hidden test (:func:`covering_students`), or all but the faults under ``make claims``."""
    work = tmp_path_factory.mktemp(f"grade-smoke-{run.lesson}")
    names = ([n for n in run.expected if n not in FAULTS] if CLAIMS_PROFILE
             else covering_students(run.expected))
    (work / "class").mkdir()
    for path in run.submissions.iterdir():
        if path.stem in names:
            shutil.copy2(path, work / "class" / path.name)
    expected = {name: run.expected[name] for name in names}
    start = time.perf_counter()
    result = _grade(work / "class", run.lesson, work / "out", profile="smoke",
                    prepared=run.prepared, sandbox=False, cell_timeout=DEFAULT_CELL_TIMEOUT)
    seconds = time.perf_counter() - start
    print(f"\n{run.lesson}: graded {len(expected)} submissions in the smoke profile in "
          f"{seconds:.0f} s (in the grading profile, sandboxed: {len(run.expected)} in "
          f"{run.seconds:.0f} s)")
    return Run(run.lesson, run.prepared, expected, result, seconds, work / "class")


# --------------------------------------------------------------------------- the cycle


def test_the_covering_students_show_every_hidden_test_failing_with_few_notebooks():
    full = {"a": 1.0, "b": 2.0, "c": 1.0}
    expected = {"solution": Expected("graded", full),
                "tampered": Expected("graded", {"a": 0.0, "b": 2.0, "c": 1.0}),
                "w1": Expected("graded", {"a": 0.0, "b": 2.0, "c": 1.0}),   # nothing new
                "w2": Expected("graded", {"a": 1.0, "b": 0.0, "c": 1.0}),
                "w3": Expected("graded", {"a": 1.0, "b": 0.0, "c": 0.0}),
                "untouched": Expected("graded", {"a": 0.0, "b": 0.0, "c": 0.0}),
                "kernel_dies": Expected("flagged", {"a": 0.0, "b": 0.0, "c": 0.0})}
    assert covering_students(expected) == ["solution", "untouched", "tampered", "w2", "w3"]


@pytest.mark.slow
def test_every_submission_gets_exactly_the_expected_points_on_every_task(run):
    assert sorted(g.student for g in run.result.students) == sorted(run.expected)
    wrong = _points_differ(run.result, run.expected)
    assert not wrong, "\n".join(wrong)


@pytest.mark.slow
def test_the_grading_profile_gives_every_submission_the_points_of_the_smoke_profile(run,
                                                                                    smoke_run):
    """The grading profile shrinks or skips the demonstrations, never a grade: the smoke
    run (every cell run) gives the expected scores, and so does the grading run (the test
    above), where the demonstrations no running cell needs were skipped.
    ``make test`` grades in smoke the students that show every hidden test passing and
    failing; ``make claims`` grades every student of ``tests/submissions`` in smoke."""
    if not CLAIMS_PROFILE:
        lost = {task for name, want in smoke_run.expected.items() if name != "untouched"
                for task, points in want.scores.items()
                if points < smoke_run.expected["solution"].scores[task]}
        assert lost == set(smoke_run.expected["solution"].scores), "a hidden test never fails"
    assert sorted(g.student for g in smoke_run.result.students) == sorted(smoke_run.expected)
    wrong = _points_differ(smoke_run.result, smoke_run.expected)
    assert not wrong, "in the smoke profile:\n" + "\n".join(wrong)
    for name in smoke_run.expected:
        smoke, graded = smoke_run.result.student(name), run.result.student(name)
        assert (smoke.status, smoke.scores) == (graded.status, graded.scores), name
    assert "Profile smoke" in _setup_output(smoke_run, "solution")
    assert not _failed_cells(smoke_run, "solution")


@pytest.mark.slow
def test_the_class_gradebook_holds_every_student_once_with_the_reported_scores(run):
    from nbgrader.api import Gradebook

    result = run.result
    with Gradebook(result.db_url, run.prepared.course_id) as gb:
        submissions = gb.find_assignment(run.lesson).submissions
        assert sorted(s.student.id for s in submissions) == sorted(run.expected)
        for sub in submissions:
            grade = result.student(sub.student.id)
            (nb,) = sub.notebooks
            assert nb.flagged == (grade.status != "graded"), sub.student.id
            for g in nb.grades:
                if grade.scores[g.name] is None:  # a written answer awaiting the formgrader
                    assert g.needs_manual_grade and g.manual_score is None
                else:
                    assert g.score == grade.scores[g.name], (sub.student.id, g.name)
    with open(result.grades_csv) as fh:
        rows = {row["student_id"]: row for row in csv.DictReader(fh)}
    assert sorted(rows) == sorted(run.expected)
    for name, row in rows.items():
        assert float(row["raw_score"]) == pytest.approx(result.student(name).autograded_score)
        assert float(row["max_score"]) == run.prepared.plan.max_score


@pytest.mark.slow
def test_reports_feedback_and_statistics_are_written(run):
    result, plan = run.result, run.prepared.plan
    with open(result.task_stats_csv) as fh:
        stats = {row["task"]: row for row in csv.DictReader(fh)}
    assert list(stats) == [*plan.autograded, *plan.manual]
    for task in plan.autograded:
        values = [g.scores[task] for g in result.students]
        assert float(stats[task]["mean"]) == pytest.approx(sum(values) / len(values), abs=1e-4)
        assert int(stats[task]["full_marks"]) == sum(v == plan.autograded[task] for v in values)
    assert result.histogram_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads(result.report_json.read_text())
    assert {s["student"] for s in report["students"]} == set(run.expected)
    for name in run.expected:
        page = result.feedback(name).read_text()
        assert run.lesson in page
        assert (result.report_json.parent / "logs" / f"{name}.log").is_file()
    solution_page = result.feedback("solution").read_text()
    assert all(task in solution_page for task in plan.autograded)
    if run.lesson == FAULTS_LESSON:
        text = result.feedback("not_a_notebook").read_text()
        assert "could not be graded automatically" in text
    assert "all tests passed" not in result.feedback("tampered").read_text()
    summary = grading.format_summary(result)
    assert all(name in summary for name in run.expected)


@pytest.mark.slow
def test_faults_are_contained_and_explained(run):
    if run.lesson != FAULTS_LESSON:  # graded in FAULTS_LESSON's class only (see its comment)
        assert not {"infinite_loop", "kernel_dies", "not_a_notebook"} & set(run.expected)
        return
    result = run.result
    loop = result.student("infinite_loop")
    assert loop.seconds >= CELL_TIMEOUT[FAULTS_LESSON]
    log = (result.report_json.parent / "logs" / "infinite_loop.log").read_text()
    assert "Timeout waiting for execute reply" in log
    assert "kernel died" in result.student("kernel_dies").message
    assert "not a valid Jupyter notebook" in result.student("not_a_notebook").message


@pytest.mark.slow
def test_tampered_tests_are_restored_and_huge_output_cut_down_to_size(run):
    result = run.result
    path = result.out_dir / "autograded" / "tampered" / run.lesson / f"{run.lesson}.ipynb"
    tampered = release.read_notebook(path)
    first = next(sid for sid, tests in run.prepared.plan.tests_of.items() if tests)
    flood = json.dumps(tampered.cells[_cell_index(tampered, first)].outputs)
    assert "Output truncated" in flood
    assert len(flood) < 200_000, "20,000 printed lines (230 kB) must be cut down to size"
    restored = [c for c in tampered.cells if "was missing from the submission" in c.source]
    assert len(restored) == 1
    master = release.read_notebook(run.prepared.master)
    last_tests = run.prepared.plan.tests_of[[s for s, t in run.prepared.plan.tests_of.items()
                                              if t][-1]]
    for test in last_tests:
        assert "all tests passed" not in tampered.cells[_cell_index(tampered, test)].source
        assert _cell_index(master, test) >= 0


def _graded_notebook(graded: Run, student: str):
    return release.read_notebook(graded.result.out_dir / "autograded" / student / graded.lesson
                                 / f"{graded.lesson}.ipynb")


def _setup_output(graded: Run, student: str) -> str:
    """What the set-up cell of ``student``'s graded notebook printed."""
    setup = next(c for c in _graded_notebook(graded, student).cells
                 if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "course_setup")
    return "".join(o.get("text", "") for o in setup.outputs)


def _failed_cells(graded: Run, student: str) -> list[str]:
    """The cells of ``student``'s graded notebook that raised, with the error's last line."""
    return [f"cell {i}: {o.get('ename')}: {o.get('evalue', '')[:200]}"
            for i, cell in enumerate(_graded_notebook(graded, student).cells)
            for o in cell.get("outputs", []) if o.get("output_type") == "error"]


@pytest.mark.slow
def test_notebooks_run_in_the_grading_profile_while_grading(run):
    """The solved lesson runs in it without the demonstrations, and no cell that runs
    raises: nbgrader goes on past a cell that raises, so a cell the grading profile makes
    too small would only show here."""
    assert "Profile grading" in _setup_output(run, "solution")
    assert "Profile grading" in _setup_output(run, "untouched")
    failed = _failed_cells(run, "solution")
    assert not failed, "in the grading profile:\n" + "\n".join(failed)
    code = [c for c in _graded_notebook(run, "solution").cells if c.cell_type == "code"]
    shown = [c for c in code if "demonstration" in c.metadata.get("tags", [])]
    assert shown and all(c.execution_count is None and not c.outputs for c in shown)
    assert all(c.execution_count for c in code if c not in shown)


@pytest.mark.slow
def test_exchange_cycle_release_fetch_submit_collect_then_grade(prepared_lesson, tmp_path):
    lesson = LESSONS[0]
    prepared = prepared_lesson(lesson)
    instructor = tmp_path / "instructor"
    shutil.copytree(prepared.course, instructor)
    exchange = tmp_path / "exchange"
    exchange.mkdir(mode=0o777)
    common = [f"--Exchange.root={exchange}", f"--Exchange.cache={tmp_path / 'nbgrader_cache'}",
              f"--CourseDirectory.course_id={prepared.course_id}"]

    def nbgrader(*args, cwd):
        done = release.run_nbgrader([*args, *common], course_root=cwd, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    nbgrader("release_assignment", lesson, cwd=instructor)
    master = release.read_notebook(prepared.master)
    answers = grading.solution_answers(master)
    wrong = _fixture(lesson)["wrong_a"]
    for name, chosen in (("alice", answers),
                         ("bob", answers | {k: v["source"] for k, v in wrong["answers"].items()})):
        home = tmp_path / "students" / name
        home.mkdir(parents=True)
        nbgrader("fetch_assignment", lesson, cwd=home)
        fetched = home / lesson / f"{lesson}.ipynb"
        _write(grading.make_submission(release.read_notebook(fetched), chosen), fetched)
        nbgrader("submit", lesson, f"--student={name}", cwd=home)
    nbgrader("collect", lesson, "--CollectApp.check_owner=False", cwd=instructor)
    submitted = instructor / "submitted"
    assert sorted(p.name for p in submitted.iterdir()) == ["alice", "bob"]
    assert (submitted / "alice" / lesson / "timestamp.txt").is_file()

    # Graded where nbgrader collected them, `course grade OUT/submitted --out OUT`: the
    # submissions are read in place, never removed or rewritten.
    handed_in = {p: p.read_bytes() for p in submitted.rglob("*") if p.is_file()}
    result = grading.grade_submissions(submitted, lesson, out_dir=instructor, jobs=2,
                                       prepared=prepared, cell_timeout=CELL_TIMEOUT[lesson],
                                       notebook_timeout=NOTEBOOK_TIMEOUT)
    assert {p: p.read_bytes() for p in submitted.rglob("*") if p.is_file()} == handed_in
    plan = prepared.plan
    assert result.student("alice").scores == {**plan.autograded, **{
        k: None for k in plan.manual}}
    assert {k: result.student("bob").scores[k] for k in plan.autograded} == {
        k: float(v) for k, v in wrong["expect"].items()}
    with open(result.grades_csv) as fh:
        rows = {row["student_id"]: row for row in csv.DictReader(fh)}
    assert rows["alice"]["timestamp"], "the submission time from the exchange is kept"


# --------------------------------------------------------------------------- fixtures


def _hidden_test_cells(master) -> set[str]:
    """The autograded test cells of ``master`` that hold hidden tests."""
    return {cell.metadata["nbgrader"]["grade_id"] for cell in master.cells
            if cell.get("metadata", {}).get("nbgrader", {}).get("grade")
            and "BEGIN HIDDEN TESTS" in cell.source}


@pytest.mark.parametrize("lesson", LESSONS)
def test_every_task_keeps_two_wrong_answers_each_hidden_cell_catches_and_a_right_one(lesson):
    """The kept answers of every task, as the grading cycle above grades them.

    Every answer is either a plausible ``mistake`` or a correct answer written another way
    (``right``). Every task keeps at least two mistakes, each of which gets zero on every
    hidden-test cell of its task on its own (the visible tests alone never decide), and
    at least one right answer that gets full marks on every test cell of its task.
    """
    master = release.read_notebook(release.master_path(lesson, COURSE))
    plan = grading.read_grading_plan(master)
    hidden = _hidden_test_cells(master)
    fixture = _fixture(lesson)
    for name, spec in fixture.items():
        assert sorted(spec["expect"]) == sorted(plan.autograded), f"{name}: list every test cell"
        assert set(spec["answers"]) <= set(plan.tests_of), f"{name}: unknown solution cell"
        for sid, answer in spec["answers"].items():
            kinds = [k for k in ("mistake", "right") if answer.get(k)]
            assert len(kinds) == 1, f"{name}/{sid}: say either its mistake or how it is right"
            tests = plan.tests_of[sid]
            if kinds == ["right"]:
                short = [t for t in tests if spec["expect"][t] != plan.autograded[t]]
                assert not short, f"{name}/{sid}: a right answer must get full marks on {short}"
            else:
                kept = [t for t in tests if t in hidden and spec["expect"][t] != 0]
                assert not kept, f"{name}/{sid}: the hidden tests {kept} let a mistake through"
    tasks = [sid for sid, tests in plan.tests_of.items() if tests]
    assert len(tasks) >= 4 and plan.manual, "a lesson has >= 4 autograded tasks and a written one"
    for sid in tasks:
        assert any(t in hidden for t in plan.tests_of[sid]), f"{lesson}/{sid}: no hidden tests"
        wrong = [name for name, spec in fixture.items()
                 if spec["answers"].get(sid, {}).get("mistake")]
        right = [name for name, spec in fixture.items()
                 if spec["answers"].get(sid, {}).get("right")]
        assert len(wrong) >= 2, f"{lesson}/{sid}: only {wrong} keep a mistake"
        assert right, f"{lesson}/{sid}: no correct answer written another way"


@pytest.mark.parametrize("lesson", LESSONS)
def test_at_least_half_of_the_autograded_points_test_judgement(lesson):
    """The tasks listed under ``judgement`` (what the student decides that the text has not
    decided) carry at least half of the lesson's autograded points."""
    master = release.read_notebook(release.master_path(lesson, COURSE))
    plan = grading.read_grading_plan(master)
    judgement = _fixture_file(lesson).get("judgement") or {}
    assert set(judgement) <= set(plan.tests_of), f"unknown tasks in judgement: {set(judgement)}"
    assert all(isinstance(why, str) and why.strip() for why in judgement.values()), \
        "say for every judgement task what the student decides"
    points = sum(plan.autograded[t] for sid in judgement for t in plan.tests_of[sid])
    total = sum(plan.autograded.values())
    assert points >= total / 2, f"{lesson}: {points} of {total} autograded points test judgement"


# --------------------------------------------------------------------------- no notebook runs


def test_find_submissions_reads_a_flat_folder_of_notebooks_and_zip_files(tmp_path):
    good = nbformat.v4.new_notebook()
    (tmp_path / "in").mkdir()
    _write(good, tmp_path / "in" / "ada.ipynb")
    with zipfile.ZipFile(tmp_path / "in" / "bob.zip", "w") as zf:
        zf.writestr("folder/whatever.ipynb", nbformat.writes(good))
    with zipfile.ZipFile(tmp_path / "in" / "cy.zip", "w") as zf:
        zf.writestr("a.ipynb", "{}")
        zf.writestr("b.ipynb", "{}")
    (tmp_path / "in" / "dee.zip").write_text("not a zip")
    (tmp_path / "in" / "eve.ipynb").write_text('{"cells": "nope"}')
    (tmp_path / "in" / "bad id.ipynb").write_text(nbformat.writes(good))
    (tmp_path / "in" / "notes.txt").write_text("ignored")
    found = {s.student: s for s in grading.find_submissions(tmp_path / "in", "00_x",
                                                            staging=tmp_path / "stage")}
    assert sorted(found) == ["ada", "bad id", "bob", "cy", "dee", "eve"]
    assert found["ada"].problem is None and found["bob"].problem is None
    assert found["bob"].notebook.read_text() == nbformat.writes(good)
    assert "expected one .ipynb file in the archive, found 2" in found["cy"].problem
    assert "not a readable zip archive" in found["dee"].problem
    assert "not a valid Jupyter notebook" in found["eve"].problem
    assert "not a usable student id" in found["bad id"].problem


def test_find_submissions_reads_nbgraders_submitted_tree_with_timestamps(tmp_path):
    nb = nbformat.v4.new_notebook()
    for name, stamp in (("ada", "2025-01-31 12:00:00.000000 UTC"), ("bob", "garbage")):
        folder = tmp_path / "submitted" / name / "00_x"
        folder.mkdir(parents=True)
        _write(nb, folder / "00_x.ipynb")
        (folder / "timestamp.txt").write_text(stamp)
    (tmp_path / "submitted" / "cy" / "00_x").mkdir(parents=True)
    found = {s.student: s for s in grading.find_submissions(tmp_path / "submitted", "00_x",
                                                            staging=tmp_path / "stage")}
    assert found["ada"].timestamp == "2025-01-31 12:00:00.000000 UTC"
    assert found["bob"].timestamp is None and found["bob"].problem is None
    assert "no 00_x.ipynb" in found["cy"].problem
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no submissions"):
        grading.find_submissions(tmp_path / "empty", "00_x", staging=tmp_path / "stage")


def test_grading_plan_and_reference_answers_come_from_the_master():
    for lesson in LESSONS:
        master = release.read_notebook(release.master_path(lesson, COURSE))
        plan = grading.read_grading_plan(master)
        answers = grading.solution_answers(master)
        assert set(plan.tests_of) <= set(answers)
        assert all("BEGIN SOLUTION" not in src for src in answers.values())
        assert plan.max_score == plan.max_autograded + sum(plan.manual.values())
        with pytest.raises(ValueError, match="no cells with ids"):
            grading.make_submission(master, {"no_such_cell": ""})


def test_a_generated_assignment_is_reused_until_what_it_depends_on_changes(prepared_lesson,
                                                                          tmp_path):
    from course_utils.instructor.grading.assignment import assignment_key, prepared_cache_dir

    lesson = LESSONS[0]
    first = prepared_lesson(lesson)
    assert prepared_cache_dir() in first.course.parents, "kept in the cache"
    again = grading.prepare_assignment(lesson, tmp_path / "again", course_root=COURSE)
    assert again.course == first.course
    assert not (tmp_path / "again").exists(), "nothing generated the second time"
    copy = tmp_path / "course"
    release.copy_course(COURSE, copy, [lesson])
    assert assignment_key(lesson, copy) == assignment_key(lesson, COURSE)
    master = copy / "source" / lesson / f"{lesson}.ipynb"
    nb = release.read_notebook(master)
    nb.cells[0].source += "\n\nA new sentence."
    release.write_notebook(nb, master)
    assert assignment_key(lesson, copy) != assignment_key(lesson, COURSE), "a new master"


def test_a_new_class_gradebook_is_a_copy_of_the_template_without_running_alembic(
        prepared_lesson, tmp_path, monkeypatch):
    import sqlite3

    import nbgrader.api

    from course_utils.instructor.grading.gradebook import copy_structure, open_gradebook, sqlite_url

    def alembic():
        raise AssertionError("nbgrader ran the alembic command to stamp a new gradebook")

    monkeypatch.setattr(nbgrader.api, "get_alembic_version", alembic)
    prepared = prepared_lesson(LESSONS[0])
    template = prepared.course / "gradebook.db"
    target = tmp_path / "class" / "gradebook.db"
    copy_structure(sqlite_url(template), sqlite_url(target), prepared.assignment,
                   prepared.course_id)
    assert sorted(p.name for p in target.parent.iterdir()) == ["gradebook.db"]
    with contextlib.closing(sqlite3.connect(target)) as db:
        assert db.execute("SELECT id FROM course").fetchall() == [(prepared.course_id,)]
        stamped = db.execute("SELECT version_num FROM alembic_version").fetchall()
    with contextlib.closing(sqlite3.connect(template)) as db:
        assert stamped == db.execute("SELECT version_num FROM alembic_version").fetchall()
    with open_gradebook(sqlite_url(target), prepared.course_id) as gb:
        made = gb.find_assignment(prepared.assignment)
        assert [nb.name for nb in made.notebooks] == [prepared.assignment]
        assert not made.submissions
    # an existing gradebook is opened as it is, never replaced
    with open_gradebook(sqlite_url(target), prepared.course_id) as gb:
        gb.add_student("ada")
    copy_structure(sqlite_url(template), sqlite_url(target), prepared.assignment,
                   prepared.course_id)
    with open_gradebook(sqlite_url(target), prepared.course_id) as gb:
        assert [s.id for s in gb.students] == ["ada"]


def test_the_wall_clock_guard_kills_a_worker_and_every_process_it_started(tmp_path):
    script = ("import subprocess, sys, time\n"
              "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'],"
              " start_new_session=True)\n"
              "print(child.pid, flush=True)\n"
              "time.sleep(60)\n")
    start = time.perf_counter()
    finished = grading.worker.run_guarded(exec, (script,), cwd=tmp_path, env=dict(os.environ),
                                          timeout=3, log_path=tmp_path / "log")
    assert finished is False and time.perf_counter() - start < 20
    child = int((tmp_path / "log").read_text().split()[0])
    assert not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE
    # a worker that ends: in its folder, with its environment only, in a session of its own,
    # nbgrader already imported (by the server it is forked from)
    script = ("import os, sys; print(os.getcwd(), sorted(os.environ), os.getsid(0) == os.getpid(),"
              " 'nbgrader.converters' in sys.modules)")
    assert grading.worker.run_guarded(exec, (script,), cwd=tmp_path, env={"SEEN": "1"},
                                      timeout=30, log_path=tmp_path / "ok")
    assert (tmp_path / "ok").read_text().strip() == f"{tmp_path} ['SEEN'] True True"
    # a worker that fails: its traceback is in its log, for the instructor to read
    assert grading.worker.run_guarded(exec, ("raise ValueError('broken job')",), cwd=tmp_path,
                                      env={}, timeout=30, log_path=tmp_path / "failed")
    assert "ValueError: broken job" in (tmp_path / "failed").read_text()


@pytest.mark.parametrize("sandboxed", [True, False], ids=["sandboxed", "unsandboxed"])
def test_the_kernel_is_stopped_at_once_after_the_last_cell_not_shut_down_politely(
        sandboxed, tmp_path, capfd):
    """Python's own shutdown in a graded kernel (1.3 s once TensorFlow is imported) is
    skipped: a handler it would run at exit never runs. Asked to shut down politely, as
    nbclient does by default, the same kernel runs it."""
    from nbformat.v4 import new_notebook
    from nbgrader.preprocessors import Execute

    from course_utils.instructor.grading.sandbox import SandboxedExecute

    settings = grading.grader._sandbox_settings(True, None) if sandboxed else None
    step = SandboxedExecute if sandboxed else Execute
    cell = new_code_cell("import atexit, os\n"
                         "atexit.register(os.write, 2, b'the kernel ran its exit handlers')")
    seen = {}
    for shutdown in ("graded", "graceful"):
        config = grading.worker._execution_config(settings)
        if shutdown == "graceful":
            config.Execute.shutdown_kernel = "graceful"
        nb = new_notebook(cells=[copy.deepcopy(cell)],
                          metadata={"kernelspec": {"name": "python3", "language": "python",
                                                   "display_name": "Python 3"}})
        step(config=config).preprocess(nb, {"metadata": {"path": str(tmp_path)}})
        time.sleep(0.5)  # what the kernel wrote reaches the capture
        seen[shutdown] = "exit handlers" in capfd.readouterr().err
    assert seen == {"graded": False, "graceful": True}


def test_notebooks_are_graded_in_the_grading_profile_unless_a_variable_names_another(
        monkeypatch):
    variable = grading.worker.PROFILE_VARIABLE
    monkeypatch.delenv(variable, raising=False)
    assert grading.worker.grading_profile() == "grading"
    monkeypatch.setenv(variable, "smoke")
    assert grading.worker.grading_profile() == "smoke"
    with pytest.raises(ValueError, match=f"{variable}: expected one of smoke, cpu, gpu, grading, "
                                         "got 'tiny'"):
        grading.worker.grading_profile({variable: "tiny"})


def test_the_worker_runs_the_notebook_in_its_jobs_profile_never_the_instructors(tmp_path,
                                                                                monkeypatch):
    environments = []

    def record(target, args, *, cwd, env, timeout, log_path):
        environments.append(env)
        return True

    monkeypatch.setattr(grading.worker, "run_guarded", record)
    monkeypatch.setenv("COURSE_PROFILE", "cpu")  # set for the instructor's own runs
    job = {"assignment": "00_workflow", "student": "ada", "cell_timeout": None, "sandbox": None}
    for profile in ("smoke", None):  # None: a job laid out before jobs named their profile
        (tmp_path / "job.json").write_text(json.dumps(job | ({"profile": profile} if profile else {})))
        status, _, _ = grading.worker.run_job(tmp_path, notebook_timeout=10)
        assert status == "failed"  # no result: nothing ran
    assert [env["COURSE_PROFILE"] for env in environments] == ["smoke", "grading"]


def test_grade_submissions_checks_its_arguments_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="jobs"):
        grading.grade_submissions(tmp_path, "00_workflow", out_dir=tmp_path / "o", jobs=0)
    with pytest.raises(ValueError, match="notebook_timeout"):
        grading.grade_submissions(tmp_path, "00_workflow", out_dir=tmp_path / "o",
                                  notebook_timeout=0)
    with pytest.raises(FileNotFoundError, match="submissions folder not found"):
        grading.grade_submissions(tmp_path / "missing", "00_workflow", out_dir=tmp_path / "o")


def test_score_histogram_and_summary():
    fig = grading.plot_score_histogram([0, 4, 4, 11], max_score=11, title="00_workflow")
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert len(heights) == 12 and heights[0] == 1 and heights[4] == 2 and sum(heights) == 4
    with pytest.raises(ValueError, match="max_score"):
        grading.plot_score_histogram([1], max_score=0)


def test_grade_cli_parses_and_reports_errors(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    grading.configure_parser(parser)
    args = parser.parse_args([str(tmp_path / "missing"), "--assignment", "00_workflow",
                              "--jobs", "2", "--db", "sqlite:///x.db", "--out", str(tmp_path)])
    assert (args.jobs, args.db) == (2, "sqlite:///x.db")
    assert grading.run_command(args) == 2
    assert "submissions folder not found" in capsys.readouterr().err


@pytest.mark.slow
def test_feedback_page_renders_in_chromium_with_every_task(run):
    """The page a student gets back, as a browser shows it (screenshot kept as an artifact)."""
    from _lab import artifacts_dir, chromium

    # the fixture's submission with the most partial credit (a page with something on it)
    name = max(list(_fixture(run.lesson))[1:],
               key=lambda n: run.result.student(n).autograded_score)
    page_path = run.result.feedback(name)
    with chromium() as page:
        page.set_viewport_size({"width": 1200, "height": 900})
        page.goto(page_path.resolve().as_uri())
        text = page.inner_text("body")
        page.screenshot(path=str(artifacts_dir() / f"feedback-{run.lesson}.png"))
    assert run.lesson in text
    for task in run.prepared.plan.autograded:
        assert task in text, f"{task} missing from the feedback page"
