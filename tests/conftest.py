"""Shared fixtures: every lesson is run once per session (solved, in JupyterLab) and
generated once per session with nbgrader.

`make claims` sets ``COURSE_CLAIMS_PROFILE=cpu``: the lesson runs then use that profile
(executed headless, as a student's laptop runs them, without the browser) and the tests
marked ``claims`` run too: the claims of the lesson text that hold in the profiles
students get. `make test` runs the lessons in ``smoke`` and leaves those tests out.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import _lab
import _postgres
import nbformat
import pytest

from course_utils.instructor import grading, release

ROOT = Path(__file__).resolve().parents[1]
#: The profile of the lesson runs: ``smoke`` for `make test`, ``cpu`` for `make claims`.
CLAIMS_PROFILE = os.environ.get("COURSE_CLAIMS_PROFILE", "").strip().lower() or None
LESSON_PROFILE = CLAIMS_PROFILE or "smoke"
COURSE = ROOT / "assignments"
LESSONS = release.list_lessons(COURSE)


@dataclasses.dataclass(frozen=True)
class LessonRun:
    """A lesson's student version with every task solved, run top to bottom in JupyterLab."""

    lesson: str
    path: Path          # where the solved notebook was handed to JupyterLab
    lab: _lab.LabRun    # the notebook JupyterLab saved, and what its page showed

    @property
    def nb(self) -> nbformat.NotebookNode:
        """The executed notebook, as JupyterLab saved it."""
        return self.lab.nb

    @property
    def seconds(self) -> float:
        return self.lab.seconds

    @property
    def folder(self) -> Path:
        """The notebook's working directory while it ran (files it wrote are here)."""
        return self.path.parent

    def stream(self, name: str = "stdout") -> str:
        """All the text the cells printed on ``name``."""
        return "".join(stream(c, name) for c in self.nb.cells)


def stream(cell, name: str = "stdout") -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", [])
                   if o.output_type == "stream" and o.name == name)


def find_printed(pattern: str, text: str) -> re.Match:
    """The first line of ``text`` (a lesson's printed output) matching ``pattern``; a test
    fails naming the pattern and showing the output when there is none."""
    found = re.search(pattern, text, re.M)
    assert found, f"the lesson printed no line matching {pattern!r}:\n{text}"
    return found


def expand_autotests(source: str) -> str:
    """A test cell's code with its autotest lines turned into the expressions they test."""
    lines = []
    for line in source.splitlines():
        if "AUTOTEST" in line:
            lines += [s.strip() for s in line.split("AUTOTEST", 1)[1].split(";") if s.strip()]
        else:
            lines.append(line)
    return "\n".join(lines)


def solve_lesson(lesson: str, folder: Path) -> Path:
    """Write the student version of ``lesson`` with the master's answers filled in."""
    student = release.read_notebook(ROOT / "notebooks" / f"{lesson}.ipynb")
    master = release.read_notebook(release.master_path(lesson, COURSE))
    nb = grading.make_submission(student, grading.solution_answers(master))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{lesson}.ipynb"
    path.write_text(nbformat.writes(nb))
    return path


@pytest.fixture(scope="session")
def lab(tmp_path_factory) -> Iterator[_lab.Lab]:
    """One JupyterLab for the session, on a scratch copy of the course (see ``_lab``)."""
    with _lab.start_lab(tmp_path_factory.mktemp("lab"), COURSE,
                        blank=ROOT / "notebooks" / f"{LESSONS[0]}.ipynb") as server:
        yield server


@pytest.fixture(scope="session")
def lesson_run(request, tmp_path_factory):
    """``lesson_run(lesson) -> LessonRun``: each lesson solved and run once per session.

    The run is a student's: the solved student version opened in JupyterLab (in a real
    browser, without nbgrader), all cells run from the Run menu, in the smoke profile.
    The claims tests read what it printed; ``test_browser.py`` checks the page. Under
    `make claims` it runs headless in that profile instead.
    """
    cache: dict[str, LessonRun] = {}

    def get(lesson: str) -> LessonRun:
        if lesson not in cache:
            if CLAIMS_PROFILE:
                path = solve_lesson(lesson, tmp_path_factory.mktemp(f"claims-{lesson}"))
                cache[lesson] = LessonRun(lesson, path, _run_headless(path, CLAIMS_PROFILE))
            else:
                lab = request.getfixturevalue("lab")
                path = solve_lesson(lesson, lab.root / "notebooks")
                rel = path.relative_to(lab.root).as_posix()
                cache[lesson] = LessonRun(lesson, path,
                                          _lab.run_in_lab(lab, rel, f"student-{lesson}.png"))
        return cache[lesson]

    return get


def _run_headless(path: Path, profile: str) -> _lab.LabRun:
    """Run a notebook top to bottom in ``profile`` with nbclient; save it beside itself."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    saved = os.environ.get("COURSE_PROFILE")
    os.environ["COURSE_PROFILE"] = profile  # the kernel inherits it
    start = time.perf_counter()
    try:
        NotebookClient(nb, timeout=1800, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        if saved is None:
            os.environ.pop("COURSE_PROFILE", None)
        else:
            os.environ["COURSE_PROFILE"] = saved
    seconds = time.perf_counter() - start
    path.write_text(nbformat.writes(nb))
    print(f"{path.stem} ran in the {profile} profile in {seconds:.0f} s")
    return _lab.LabRun(nb=nb, seconds=seconds, widget_outputs=0, widgets_rendered=0,
                       widget_errors=0)


def pytest_collection_modifyitems(config, items):
    """Tests marked ``claims`` hold in the cpu profile: `make claims` runs them."""
    if CLAIMS_PROFILE:
        return
    left_out = [item for item in items if item.get_closest_marker("claims")]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = [item for item in items if not item.get_closest_marker("claims")]


@pytest.fixture(scope="session", autouse=True)
def private_assignment_cache(tmp_path_factory) -> Iterator[Path]:
    """Generated assignments and matplotlib's font list are kept in folders of this session
    (never the user's caches); ``course grade`` commands and JupyterLab kernels the tests
    start inherit them."""
    import os

    from course_utils.instructor.grading.assignment import CACHE_VARIABLE

    folder = tmp_path_factory.mktemp("prepared-cache")
    # Matplotlib's font list too: a shared one may name fonts of a clone since deleted,
    # and every figure of the lessons then logs "findfont: ... not found" on stderr.
    fonts = tmp_path_factory.mktemp("matplotlib")
    saved = {k: os.environ.get(k) for k in (CACHE_VARIABLE, "MPLCONFIGDIR")}
    os.environ[CACHE_VARIABLE] = str(folder)
    os.environ["MPLCONFIGDIR"] = str(fonts)
    yield folder
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def prepared_lesson(tmp_path_factory):
    """``prepared_lesson(lesson) -> PreparedAssignment``: nbgrader generates each once.

    Generating runs the master (nbgrader instantiates the autotests), so the tests that
    need a generated lesson share this: the staleness check of ``notebooks/``, grading,
    the formgrader, the demo.
    """
    cache: dict[str, grading.PreparedAssignment] = {}

    def get(lesson: str) -> grading.PreparedAssignment:
        if lesson not in cache:
            work = tmp_path_factory.mktemp(f"prepare-{lesson}")
            cache[lesson] = grading.prepare_assignment(lesson, work, course_root=COURSE)
        return cache[lesson]

    return get


@dataclasses.dataclass(frozen=True)
class GradedClass:
    """Lesson 00's example class graded into the course of a scratch copy of the repository."""

    repo: Path                   # what `make lab` serves: nbgrader_config.py, assignments/, ...
    prepared: grading.PreparedAssignment
    submissions: Path            # ada.ipynb (all solved), grace.ipynb (half), alan.ipynb (blank)
    result: grading.GradeResult  # what `course grade` reported

    @property
    def course(self) -> Path:
        return self.repo / "assignments"


@pytest.fixture(scope="session")
def graded_class(prepared_lesson, tmp_path_factory) -> GradedClass:
    """Lesson 00's example class (``grading.make_example_class``) graded once per session.

    Graded as `course grade` does (two workers) into the scratch course's own SQLite
    gradebook, ``assignments/gradebook.db``: the one the Formgrader opens. The Formgrader's
    tests grade by hand in it; the PostgreSQL tests compare their gradebook with ``result``.
    """
    lesson = LESSONS[0]
    prepared = prepared_lesson(lesson)
    work = tmp_path_factory.mktemp("graded-class")
    repo = _lab.copy_repository_layout(work / "repo")
    submissions = grading.make_example_class(prepared, work / "class")
    result = grading.grade_submissions(submissions, lesson, out_dir=repo / "assignments",
                                       course_root=repo / "assignments", jobs=2,
                                       prepared=prepared)
    print(f"\n{lesson}: example class graded into {repo / 'assignments'}\n"
          + grading.format_summary(result))
    return GradedClass(repo, prepared, submissions, result)


@pytest.fixture(scope="session")
def postgres() -> Iterator[_postgres.Postgres]:
    """A PostgreSQL server for the session (Debian's binaries, see ``_postgres``)."""
    with _postgres.start_postgres() as server:
        yield server
