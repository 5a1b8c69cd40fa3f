"""Shared fixtures: every lesson is run once per test session, solved as a student would."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from course_utils import grading, release

ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "assignments"
LESSONS = release.list_lessons(COURSE)


@dataclasses.dataclass(frozen=True)
class LessonRun:
    """A lesson's student version with every task solved, run top to bottom (smoke)."""

    lesson: str
    path: Path          # the solved notebook as handed in (not executed)
    nb: nbformat.NotebookNode  # the executed notebook
    seconds: float

    @property
    def folder(self) -> Path:
        return self.path.parent

    def stream(self, name: str = "stdout") -> str:
        """All the text the cells printed on ``name``."""
        return "".join(stream(c, name) for c in self.nb.cells)


def stream(cell, name: str = "stdout") -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", [])
                   if o.output_type == "stream" and o.name == name)


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
    path = folder / f"{lesson}.ipynb"
    path.write_text(nbformat.writes(nb))
    return path


@pytest.fixture(scope="session")
def lesson_run(tmp_path_factory):
    """``lesson_run(lesson) -> LessonRun``: runs each lesson at most once per session."""
    cache: dict[str, LessonRun] = {}

    def get(lesson: str) -> LessonRun:
        if lesson not in cache:
            path = solve_lesson(lesson, tmp_path_factory.mktemp(f"run-{lesson}"))
            nb = release.read_notebook(path)
            saved = os.environ.get("COURSE_PROFILE")
            os.environ["COURSE_PROFILE"] = "smoke"
            try:
                start = time.perf_counter()
                NotebookClient(nb, timeout=300, kernel_name="python3",
                               resources={"metadata": {"path": str(path.parent)}}).execute()
                seconds = time.perf_counter() - start
            finally:
                if saved is None:
                    os.environ.pop("COURSE_PROFILE", None)
                else:
                    os.environ["COURSE_PROFILE"] = saved
            cache[lesson] = LessonRun(lesson, path, nb, seconds)
        return cache[lesson]

    return get
