"""`course grade` against students who cheat, snoop, sabotage and hog: real runs, real sandbox.

One class of lesson 00 is graded once (two workers, the sandbox on, into a course folder
of its own, as an instructor would) with a submission per kind of attack, next to two
honest students. What each attack must end as:

- ``hooks`` (IPython execution hooks: a ``post_run_cell`` hook that clears the error, a
  replaced ``showtraceback``, an input transformer and an AST transformer that wrap later
  cells in ``try/except BaseException``) and ``fakes`` (objects equal to everything,
  shadowed builtins, NumPy's comparisons and ``course_utils``' checks monkeypatched),
  each on an unsolved notebook, and ``setup_copy`` (the hooks in a pasted copy of the
  locked set-up cell, below the original, metadata kept: nbgrader would restore that
  copy, the worker strips its id and runs it): flagged for review, no autograded points
  in the gradebook;
- ``skip_tags`` tags every graded cell of an unsolved notebook ``skip-execution``, the tag
  nbclient does not run (a test that never runs raises nothing): the tests run anyway and
  it gets no autograded points;
- ``snoop`` reads the master, other submissions, the gradebook and ``/proc`` of the
  grader: nothing of them reaches its graded notebook or feedback;
- ``saboteur`` writes over the gradebook, grades.csv, another student's feedback, the
  course's ``source/`` and ``course_utils`` on disk, leaves a detached process behind to
  give itself marks later, and kills every process it can see: all of it fails, the run
  finishes, and the honest students get full marks;
- ``hog`` allocates 6 GiB, fills the disk, prints a 50 MB line and leaves a ``setsid``
  child: the limits stop each, the child is gone, nothing but the notebook and the
  feedback reach the output;
- ``honest`` pasted a copy of a test cell above the answer it tests and a copy of the
  set-up cell below it (Jupyter's copy and paste keeps the cell's metadata) and still
  gets full marks, unflagged;
- the input: ``alice.ipynb`` next to ``alice.zip`` (graded once, reported once), a
  student id ``..`` and one ending in a newline (rejected, never used as a folder name),
  and a small zip that would expand to 200 MB (refused, not unpacked).

Then a run of ``course grade`` is killed mid-way and resumed, and a re-run is checked to
say what it does with earlier results while ``grades.csv`` agrees with its report.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
import zipfile
from pathlib import Path

import nbformat
import psutil
import pytest
from _attacks import FAKES, HOOKS, paste_setup_copy
from nbformat.v4 import new_code_cell

import course_utils
from course_utils.instructor import grading, release

ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "assignments"
LESSON = "00_workflow"
PACKAGE = Path(course_utils.__file__).resolve().parent
#: A line only the master's hidden tests hold (never in the student version).
HIDDEN_LINE = "another seed must give another split"
MARKER = "sandbox-escape-marker"



def _snoop(course: Path, out: Path) -> str:
    return f'''
import os
def _show(path):
    try:
        if os.path.isdir(path):
            print("LIST", path, sorted(os.listdir(path))[:20])
        else:
            with open(path, "rb") as fh:
                print("READ", path, fh.read(4000))
    except Exception as exc:
        print("DENIED", path, type(exc).__name__)
for _path in ["../../../source", {str(course / "source" / LESSON / (LESSON + ".ipynb"))!r},
              {str(course / "source")!r}, {str(out)!r}, {str(out / "gradebook.db")!r},
              {str(out / "submitted")!r}, {str(out / "submitted" / "honest" / LESSON)!r},
              {str(ROOT)!r}, "/root", "/tmp"]:
    _show(_path)
for _pid in os.listdir("/proc"):
    if _pid.isdigit():
        try:
            print("PROC", _pid, open(f"/proc/{{_pid}}/cmdline", "rb").read()[:300])
            print("ENV", open(f"/proc/{{_pid}}/environ", "rb").read()[:300])
        except Exception as exc:
            print("DENIED /proc", _pid, type(exc).__name__)
import socket
try:
    socket.create_connection(("127.0.0.1", 22), timeout=2)
    print("NETWORK open")
except OSError as exc:
    print("NETWORK closed", exc)
'''


def _saboteur(course: Path, out: Path) -> str:
    return f'''
import os, signal, subprocess
def _try(what, action):
    try:
        action()
        print("DONE", what)
    except Exception as exc:
        print("FAILED", what, type(exc).__name__)
def _overwrite(path, data=b"0" * 4096):
    with open(path, "r+b") as fh:
        fh.write(data)
_try("gradebook", lambda: _overwrite({str(out / "gradebook.db")!r}))
_try("grades.csv", lambda: open({str(out / "reports" / LESSON / "grades.csv")!r}, "w").write("honest,0"))
_try("feedback", lambda: open({str(out / "feedback" / "honest" / LESSON / (LESSON + ".html"))!r}, "a").write("<p>0 points</p>"))
_try("source", lambda: open({str(course / "source" / LESSON / "injected.py")!r}, "w").write("x"))
_try("package", lambda: open({str(PACKAGE / "workflow.py")!r}, "a").write("\\nraise SystemExit"))
_try("later", lambda: subprocess.Popen(["sh", "-c", "sleep 8; echo {MARKER} > {out / "hacked.txt"}"],
                                      start_new_session=True))
for _pid in os.listdir("/proc"):
    if _pid.isdigit() and int(_pid) != os.getpid():
        _try("kill " + _pid, lambda: os.kill(int(_pid), signal.SIGKILL))
'''


HOG = f'''
import subprocess
try:
    _block = bytearray(6 * 2**30)
    print("ALLOCATED 6 GiB")
except MemoryError:
    print("MemoryError: 6 GiB refused")
try:
    with open("filler.bin", "wb") as _fh:
        for _ in range(1024):
            _fh.write(b"0" * 2**20)
    print("WROTE 1 GiB")
except OSError as exc:
    print("disk full:", exc)
# Room again for the graded cells that write files (checkpoints): the hog is graded on its
# answers, and the 10 MB it keeps must still not reach the output.
import os
os.truncate("filler.bin", 10 * 2**20)
_child = subprocess.Popen(["sh", "-c", "sleep 600", "{MARKER}"], start_new_session=True)
print("x" * 50_000_000)
'''


def _printed(nb, marker: str) -> str:
    """What the cell whose source holds ``marker`` printed (outputs only, not its source)."""
    (cell,) = [c for c in nb.cells if marker in c.source]
    return json.dumps(cell.get("outputs", []))


def _build_class(prepared, folder: Path, course: Path, out: Path) -> None:
    folder.mkdir(parents=True)
    master = release.read_notebook(prepared.master)
    student = release.read_notebook(prepared.student_notebook)
    answers = grading.solution_answers(master)

    def write(name, nb):
        (folder / f"{name}.ipynb").write_text(nbformat.writes(nb))

    def with_cell(nb, code, before=None):
        nb = nbformat.from_dict(json.loads(nbformat.writes(nb)))
        index = 2 if before is None else before
        nb.cells.insert(index, new_code_cell(code))
        return nb

    solved = grading.make_submission(student, answers)
    write("solution", solved)
    # A copy of a visible test cell (metadata and all) pasted above the answer it tests.
    honest = nbformat.from_dict(json.loads(nbformat.writes(solved)))
    plan = prepared.plan
    sid = next(s for s, tests in plan.tests_of.items() if tests)
    test_index = next(i for i, c in enumerate(honest.cells)
                      if c.metadata.get("nbgrader", {}).get("grade_id") == plan.tests_of[sid][0])
    answer_index = next(i for i, c in enumerate(honest.cells)
                        if c.metadata.get("nbgrader", {}).get("grade_id") == sid)
    pasted = nbformat.from_dict(json.loads(json.dumps(honest.cells[test_index])))
    pasted["id"] = uuid.uuid4().hex[:8]  # Jupyter gives a pasted cell an id of its own
    honest.cells.insert(answer_index, pasted)
    write("honest", paste_setup_copy(honest, source=None))
    write("hooks", with_cell(student, HOOKS))
    write("setup_copy", paste_setup_copy(student, HOOKS))
    write("fakes", with_cell(student, FAKES))
    # The hooks below more code than the scan reads (400 KB of comments): parsed, a cell
    # that size costs the grader gigabytes; unread, it is flagged, not waved through.
    write("padded", with_cell(student, "# padding to hide what follows\n" * 13_000 + HOOKS))
    # No code at all: every graded cell tagged the way nbclient skips a cell (JupyterLab's
    # property inspector adds the tag); a test cell that never runs raises nothing.
    skipper = nbformat.from_dict(json.loads(nbformat.writes(student)))
    for cell in skipper.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") and cell.cell_type == "code":
            cell.metadata["tags"] = [*cell.metadata.get("tags", []), "skip-execution"]
    write("skip_tags", skipper)
    write("snoop", with_cell(solved, _snoop(course, out)))
    write("saboteur", with_cell(solved, _saboteur(course, out), before=len(solved.cells)))
    write("hog", with_cell(solved, HOG))
    # Input problems.
    write("alice", student)  # an old attempt, then the finished one zipped
    os.utime(folder / "alice.ipynb", (time.time() - 3600, time.time() - 3600))
    with zipfile.ZipFile(folder / "alice.zip", "w") as zf:
        zf.writestr(f"{LESSON}.ipynb", nbformat.writes(solved))
    (folder / "...ipynb").write_text(nbformat.writes(solved))
    (folder / "newline\n.ipynb").write_text(nbformat.writes(solved))
    with zipfile.ZipFile(folder / "bomb.zip", "w", compression=zipfile.ZIP_DEFLATED) as zf:
        with zf.open(f"{LESSON}.ipynb", "w", force_zip64=True) as member:
            block = b" " * 2**20
            for _ in range(200):
                member.write(block)
    assert (folder / "bomb.zip").stat().st_size < 2 * 2**20


@pytest.fixture(scope="module")
def attacked(prepared_lesson, tmp_path_factory):
    prepared = prepared_lesson(LESSON)
    work = tmp_path_factory.mktemp("attacks")
    course = work / "course"
    release.copy_course(COURSE, course, release.list_lessons(COURSE))
    out = course
    _build_class(prepared, work / "class", course, out)
    package_before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                      for p in PACKAGE.glob("*.py")}
    start = time.perf_counter()
    result = grading.grade_submissions(work / "class", LESSON, course_root=course, jobs=2,
                                       prepared=prepared, cell_timeout=40,
                                       notebook_timeout=900)
    seconds = time.perf_counter() - start
    print(f"\nattack class graded in {seconds:.0f} s\n" + grading.format_summary(result))
    time.sleep(10)  # the saboteur's detached process would have written by now
    return result, prepared, course, package_before


@pytest.mark.slow
def test_hooks_fakes_a_hooked_setup_copy_and_padded_hooks_are_flagged_and_get_no_points(
        attacked):
    result, prepared, _, _ = attacked
    from nbgrader.api import Gradebook

    for name in ("hooks", "fakes", "setup_copy", "padded"):
        grade = result.student(name)
        assert grade.status == "flagged", (name, grade.status, grade.message)
        assert grade.autograded_score == 0, (name, grade.scores)
        assert "withheld" in grade.message
    assert "too large to scan" in result.student("padded").message
    with Gradebook(result.db_url, prepared.course_id) as gb:
        for name in ("hooks", "fakes", "setup_copy", "padded"):
            (nb,) = gb.find_submission(LESSON, name).notebooks
            assert nb.flagged and nb.score == 0
            if result.student(name).withheld_score is not None:  # its run ended: review it
                assert all(g.needs_manual_grade for g in nb.grades
                           if g.name in prepared.plan.autograded)


@pytest.mark.slow
def test_tests_tagged_to_be_skipped_run_all_the_same(attacked):
    result, prepared, _, _ = attacked
    grade = result.student("skip_tags")
    assert grade.status == "graded", (grade.status, grade.message)
    assert grade.autograded_score == 0, grade.scores
    assert set(grade.scores) >= set(prepared.plan.autograded)


@pytest.mark.slow
def test_honest_students_get_full_marks_unflagged(attacked):
    result, prepared, _, _ = attacked
    for name in ("solution", "honest", "alice", "snoop", "saboteur", "hog"):
        grade = result.student(name)
        assert grade.status == "graded", (name, grade.status, grade.message)
        assert grade.autograded_score == prepared.plan.max_autograded, (name, grade.scores)


@pytest.mark.slow
def test_a_snooping_kernel_sees_nothing_of_the_course_the_class_or_the_grader(attacked):
    result, _, course, _ = attacked
    nb = release.read_notebook(result.out_dir / "autograded" / "snoop" / LESSON / f"{LESSON}.ipynb")
    text = _printed(nb, "def _show(path)")
    assert "DENIED" in text and "LIST" in text, "the snooping cell ran"
    assert HIDDEN_LINE not in text, "the master's hidden tests leaked into the kernel"
    assert "SQLite format" not in text, "the gradebook was readable"
    processes = [line for line in text.split("\\n") if line.startswith("PROC")]
    assert processes and not [p for p in processes if "grading" in p or "pytest" in p], (
        "/proc shows the grader")
    assert "NETWORK closed" in text
    assert "'honest'" not in text, "another student's submission was listed"
    feedback = result.feedback("snoop").read_text()
    assert HIDDEN_LINE not in feedback


@pytest.mark.slow
def test_sabotage_changes_nothing_outside_the_kernel(attacked):
    result, prepared, course, package_before = attacked
    nb = release.read_notebook(result.out_dir / "autograded" / "saboteur" / LESSON
                               / f"{LESSON}.ipynb")
    text = _printed(nb, "def _overwrite(path")
    for target in ("gradebook", "grades.csv", "feedback", "source", "package"):
        assert f"FAILED {target}" in text, f"the saboteur could write the {target}"
    assert not (course / "source" / LESSON / "injected.py").exists()
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in PACKAGE.glob("*.py")}
    assert after == package_before, "course_utils changed on disk"
    assert not (result.out_dir / "hacked.txt").exists(), "a detached process outlived grading"
    assert "0 points" not in result.feedback("honest").read_text()
    for proc in psutil.process_iter(["cmdline"]):
        assert MARKER not in " ".join(proc.info["cmdline"] or []), "a child outlived grading"


@pytest.mark.slow
def test_a_hog_is_stopped_by_the_limits_and_only_notebook_and_feedback_reach_the_output(attacked):
    result, _, _, _ = attacked
    folder = result.out_dir / "autograded" / "hog" / LESSON
    assert sorted(p.name for p in folder.iterdir()) == [f"{LESSON}.ipynb"]
    nb = release.read_notebook(folder / f"{LESSON}.ipynb")
    text = _printed(nb, "bytearray(6 * 2**30)")
    assert "MemoryError: 6 GiB refused" in text
    assert "WROTE 1 GiB" not in text
    assert (folder / f"{LESSON}.ipynb").stat().st_size < 5 * 2**20, "the 50 MB line was kept"
    assert not list(result.out_dir.rglob("filler.bin"))


@pytest.mark.slow
def test_input_problems_are_reported_once_and_never_used_as_paths(attacked):
    result, _, course, _ = attacked
    names = [g.student for g in result.students]
    assert names.count("alice") == 1
    assert "also handed in alice.ipynb" in result.student("alice").message
    rejected = dict(result.rejected)
    assert "...ipynb" in rejected and "newline\n.ipynb" in rejected
    assert not [p for p in (course / "submitted").iterdir() if p.name in {".", "..", "newline\n"}]
    assert not (course.parent / LESSON).exists(), "an id was used as a path outside submitted/"
    bomb = result.student("bomb")
    assert bomb.status == "invalid" and "MiB" in bomb.message
    with open(result.grades_csv) as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(r["student_id"] for r in rows) == sorted(names)
    report = json.loads(result.report_json.read_text())
    assert sorted(s["student"] for s in report["students"]) == sorted(names)
    assert report["sandboxed"] is True


def test_bad_input_is_refused_before_the_output_folder_is_touched(tmp_path, capsys):
    from course_utils.instructor.cli import main as course

    empty, other = tmp_path / "empty", tmp_path / "other"
    empty.mkdir()
    other.mkdir()
    (other / "notes.txt").write_text("no notebooks here")
    new, used = tmp_path / "new-out", tmp_path / "used-out"
    used.mkdir()
    for folder, reason in ((empty, "no submissions"), (other, "no submissions"),
                           (tmp_path / "missing", "submissions folder not found")):
        for out in (new, used):
            with pytest.raises(FileNotFoundError, match=reason):
                grading.grade_submissions(folder, LESSON, course_root=COURSE, out_dir=out,
                                          sandbox=False)
        status = course(["grade", str(folder), "--assignment", LESSON, "--course", str(COURSE),
                         "--out", str(new)])
        assert status == 2 and reason in capsys.readouterr().err
        assert not new.exists(), f"{folder.name}: the output folder was created"
        assert list(used.iterdir()) == [], f"{folder.name}: {list(used.iterdir())} was created"


@pytest.mark.slow
def test_one_run_per_output_folder(attacked, tmp_path):
    result, prepared, course, _ = attacked
    from course_utils.instructor.grading.grader import _locked

    (tmp_path / "ada.ipynb").write_text(nbformat.writes(nbformat.v4.new_notebook()))
    with _locked(result.out_dir):
        with pytest.raises(RuntimeError, match="another course grade run is using"):
            grading.grade_submissions(tmp_path, LESSON, course_root=course, prepared=prepared)


@pytest.mark.slow
def test_a_killed_run_resumes_with_only_the_students_left(prepared_lesson, tmp_path):
    prepared = prepared_lesson(LESSON)
    course = tmp_path / "course"
    release.copy_course(COURSE, course, [LESSON])
    folder = tmp_path / "class"
    folder.mkdir()
    student = release.read_notebook(prepared.student_notebook)
    answers = grading.solution_answers(release.read_notebook(prepared.master))
    for name in ("ann", "ben", "cat"):
        (folder / f"{name}.ipynb").write_text(nbformat.writes(
            grading.make_submission(student, answers)))
    cmd = [sys.executable, "-m", "course_utils.instructor.cli", "grade", str(folder), "--assignment", LESSON,
           "--course", str(course), "--jobs", "1", "--timeout", "90"]
    records = course / "reports" / LESSON / "students"
    temporary = tmp_path / "tmp"  # the system's temporary folder, as the runs see it
    temporary.mkdir()
    env = os.environ | {"TMPDIR": str(temporary)}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True, env=env)
    deadline = time.time() + 600
    while time.time() < deadline and not (records.is_dir() and list(records.glob("*.json"))):
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    first = sorted(p.stem for p in records.glob("*.json"))
    assert 1 <= len(first) < 3, first
    left = [p.name for p in temporary.iterdir()]
    assert any(n.startswith(grading.grader.STAGING_PREFIX) for n in left), left
    done = subprocess.run(cmd + ["--rerun", "resume"], capture_output=True, text=True,
                          timeout=900, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    # The killed run's unpacked input is gone too, and so is the resumed run's.
    left = [p.name for p in temporary.iterdir()]
    assert not [n for n in left if n.startswith(grading.grader.STAGING_PREFIX)], left
    report = json.loads((course / "reports" / LESSON / "grading_report.json").read_text())
    students = {s["student"]: s for s in report["students"]}
    assert sorted(students) == ["ann", "ben", "cat"]
    assert {n for n, s in students.items() if s["graded_now"]} == {"ann", "ben", "cat"} - set(first)
    assert all(s["autograded_score"] == prepared.plan.max_autograded for s in students.values())
    assert f"merged with {len(first)} result(s) kept from earlier runs" in done.stdout
    with open(course / "reports" / LESSON / "grades.csv") as fh:
        assert sorted(r["student_id"] for r in csv.DictReader(fh)) == ["ann", "ben", "cat"]
    # A replacing re-run says so and leaves only what it graded.
    (folder / "ben.ipynb").unlink()
    (folder / "cat.ipynb").unlink()
    again = subprocess.run(cmd + ["--rerun", "replace"], capture_output=True, text=True,
                           timeout=900, env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "earlier results of this assignment were replaced" in again.stdout
    with open(course / "reports" / LESSON / "grades.csv") as fh:
        assert [r["student_id"] for r in csv.DictReader(fh)] == ["ann"]
