"""The assignment being graded: its graded cells, reference answers and generated version."""

from __future__ import annotations

import copy
import dataclasses
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from course_utils import release

_SOLUTION_MARKERS = re.compile(r"^\s*(?:#{3}|={3})\s*(?:BEGIN|END) SOLUTION\s*(?:={3})?\s*$")


@dataclasses.dataclass(frozen=True)
class GradingPlan:
    """The graded cells of an assignment, read from its master.

    Attributes
    ----------
    autograded: test cell id -> points, in notebook order.
    manual: manually graded answer cell id -> points.
    tests_of: solution cell id -> ids of the test cells that check it (the
        test cells between it and the next solution cell).
    """

    autograded: Mapping[str, float]
    manual: Mapping[str, float]
    tests_of: Mapping[str, tuple[str, ...]]

    @property
    def max_autograded(self) -> float:
        """Points of all autograded tasks."""
        return float(sum(self.autograded.values()))

    @property
    def max_score(self) -> float:
        """Points of the whole assignment (autograded and manual)."""
        return self.max_autograded + float(sum(self.manual.values()))


@dataclasses.dataclass(frozen=True)
class PreparedAssignment:
    """An assignment generated once, ready to grade any number of submissions.

    ``course`` is an nbgrader course root holding ``source/``, ``release/`` and the
    ``gradebook.db`` every submission's private gradebook is copied from.
    """

    assignment: str
    course: Path
    plan: GradingPlan
    course_id: str

    @property
    def student_notebook(self) -> Path:
        """The generated student version of the assignment."""
        return self.course / "release" / self.assignment / f"{self.assignment}.ipynb"

    @property
    def master(self) -> Path:
        """The master (solutions and hidden tests) the course was generated from."""
        return self.course / "source" / self.assignment / f"{self.assignment}.ipynb"


def read_grading_plan(nb: Any) -> GradingPlan:
    """The graded cells of a master or student notebook (see :class:`GradingPlan`).

    >>> import nbformat
    >>> def cell(i, **kw):
    ...     meta = {"grade_id": i, "grade": False, "solution": False, **kw}
    ...     return nbformat.v4.new_code_cell("", metadata={"nbgrader": meta})
    >>> nb = nbformat.v4.new_notebook(cells=[cell("f", solution=True),
    ...     cell("f_works", grade=True, points=2)])
    >>> plan = read_grading_plan(nb)
    >>> dict(plan.autograded), dict(plan.tests_of)
    ({'f_works': 2.0}, {'f': ('f_works',)})
    """
    autograded: dict[str, float] = {}
    manual: dict[str, float] = {}
    tests_of: dict[str, list[str]] = {}
    current: str | None = None
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        grade_id = meta.get("grade_id")
        if not grade_id:
            continue
        if meta.get("solution") and cell.cell_type == "code":
            current = grade_id
            tests_of.setdefault(grade_id, [])
        if meta.get("grade"):
            points = float(meta.get("points", 0))
            if meta.get("solution") or cell.cell_type != "code":
                manual[grade_id] = points
            else:
                autograded[grade_id] = points
                if current is not None:
                    tests_of[current].append(grade_id)
    return GradingPlan(autograded, manual, {k: tuple(v) for k, v in tests_of.items()})


def solution_answers(master: Any) -> dict[str, str]:
    """The reference answer of every solution cell of a master, by cell id.

    The ``### BEGIN SOLUTION`` / ``### END SOLUTION`` lines are dropped, so the
    text is what a student who solved the task would have written.

    >>> import nbformat
    >>> src = "def f():\\n    ### BEGIN SOLUTION\\n    return 1\\n    ### END SOLUTION"
    >>> meta = {"nbgrader": {"grade_id": "f", "solution": True, "grade": False}}
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src, metadata=meta)])
    >>> solution_answers(nb)
    {'f': 'def f():\\n    return 1'}
    """
    answers = {}
    for cell in master.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution") and meta.get("grade_id"):
            lines = [ln for ln in cell.source.splitlines() if not _SOLUTION_MARKERS.match(ln)]
            answers[meta["grade_id"]] = "\n".join(lines).strip("\n")
    return answers


def make_submission(student_nb: Any, answers: Mapping[str, str]) -> Any:
    """A copy of the student version with some cells' sources replaced, by cell id.

    ``ValueError`` names an id the notebook does not have.

    >>> import nbformat
    >>> meta = {"nbgrader": {"grade_id": "f", "solution": True, "grade": False}}
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("raise", metadata=meta)])
    >>> make_submission(nb, {"f": "x = 1"}).cells[0].source
    'x = 1'
    """
    nb = copy.deepcopy(student_nb)
    by_id = {c.get("metadata", {}).get("nbgrader", {}).get("grade_id"): c for c in nb.cells}
    unknown = sorted(set(answers) - set(by_id))
    if unknown:
        known = sorted(k for k in by_id if k)
        raise ValueError(f"no cells with ids {unknown} in the notebook; its cell ids: {known}")
    for grade_id, source in answers.items():
        by_id[grade_id].source = source
    return nb


def prepare_assignment(
    assignment: str,
    work_dir: str | os.PathLike[str],
    *,
    course_root: str | os.PathLike[str] | None = None,
) -> PreparedAssignment:
    """Generate ``assignment`` once with nbgrader, in ``work_dir``, for grading.

    Runs the master in the ``smoke`` profile (nbgrader instantiates the autotests)
    and records its cells in a fresh gradebook. Reuse the result for several
    :func:`grade_submissions` calls to pay this only once.
    """
    root = release.find_course_root() if course_root is None else Path(course_root)
    master = release.read_notebook(release.master_path(assignment, root))
    course = release.generate_course(assignment, Path(work_dir) / "template", course_root=root)
    plan = read_grading_plan(master)
    if not plan.autograded and not plan.manual:
        raise ValueError(f"{release.master_path(assignment, root)}: no graded cells")
    return PreparedAssignment(assignment, course, plan, course_id_of(course))


def course_id_of(course: Path) -> str:
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    return str(config.CourseDirectory.get("course_id", "default_course") or "default_course")
