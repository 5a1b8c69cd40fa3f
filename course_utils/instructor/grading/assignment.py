"""The assignment being graded: its graded cells, reference answers and generated version."""

from __future__ import annotations

import copy
import dataclasses
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from course_utils.instructor import release

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


#: Environment variable naming the folder where generated assignments are kept; ``off``
#: turns the cache off. Default: ``$XDG_CACHE_HOME/course-utils/prepared`` (``~/.cache``).
CACHE_VARIABLE = "COURSE_UTILS_CACHE"
_COMPLETE = "prepared.json"


def prepare_assignment(
    assignment: str,
    work_dir: str | os.PathLike[str],
    *,
    course_root: str | os.PathLike[str] | None = None,
    cache: bool = True,
) -> PreparedAssignment:
    """Generate ``assignment`` with nbgrader for grading, once per version of it.

    Runs the master in the ``smoke`` profile (nbgrader instantiates the autotests)
    and records its cells in a fresh gradebook, in ``work_dir``. An autotest reads only
    its own test cell's values, so what it records holds in every profile, the
    ``grading`` profile submissions are graded in included. The result is kept
    in the cache (:func:`prepared_cache_dir`) under a key made of everything it
    depends on (:func:`assignment_key`: the master's folder, the course's
    configuration, ``course_utils`` itself, the versions), so the next run of the
    same version reuses it and a changed master is generated afresh.
    """
    root = release.find_course_root() if course_root is None else Path(course_root)
    master_path = release.master_path(assignment, root)
    master = release.read_notebook(master_path)
    plan = read_grading_plan(master)
    if not plan.autograded and not plan.manual:
        raise ValueError(f"{master_path}: no graded cells")
    store = prepared_cache_dir() if cache else None
    if store is None:
        course = release.generate_course(assignment, Path(work_dir) / "template",
                                         course_root=root)
        return PreparedAssignment(assignment, course, plan, course_id_of(course))
    key = assignment_key(assignment, root)
    kept = store / f"{assignment}-{key[:20]}"
    if not (kept / _COMPLETE).is_file():
        course = release.generate_course(assignment, Path(work_dir) / "template",
                                         course_root=root)
        _keep(course, kept, {"assignment": assignment, "key": key,
                             "master": str(master_path)})
    return PreparedAssignment(assignment, kept, plan, course_id_of(kept))


def prepared_cache_dir() -> Path | None:
    """The folder of generated assignments (``None``: the cache is off).

    >>> import os
    >>> saved = dict(os.environ)
    >>> os.environ["COURSE_UTILS_CACHE"] = "off"
    >>> prepared_cache_dir() is None
    True
    >>> os.environ.clear(); os.environ.update(saved)
    """
    chosen = os.environ.get(CACHE_VARIABLE, "")
    if chosen.lower() in ("off", "0", "no", "false"):
        return None
    if chosen:
        return Path(chosen).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "course-utils" / "prepared"


def assignment_key(assignment: str, course_root: str | os.PathLike[str]) -> str:
    """SHA-256 of everything a generated assignment depends on.

    The files of the master's folder, the course's ``nbgrader_config.py`` and
    ``autotests.yml``, every file of the installed ``course_utils`` (the master runs
    it, and the autotests record its results), and the Python and nbgrader versions.

    >>> len(assignment_key("00_workflow", release.find_course_root()))  # doctest: +SKIP
    64
    """
    import hashlib
    import sys

    import nbgrader

    import course_utils

    root = Path(course_root)
    package = Path(course_utils.__file__).resolve().parent
    folders = [(root / "source" / assignment, "source"), (package, "course_utils")]
    digest = hashlib.sha256(f"{sys.version_info[:2]} nbgrader {nbgrader.__version__}".encode())
    files = [(root / name, name) for name in release.COURSE_FILES]
    for folder, label in folders:
        files += [(p, f"{label}/{p.relative_to(folder).as_posix()}")
                  for p in sorted(folder.rglob("*"))
                  if p.is_file() and "__pycache__" not in p.parts
                  and ".ipynb_checkpoints" not in p.parts]
    for path, name in files:
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _keep(course: Path, target: Path, record: Mapping[str, str]) -> None:
    """Copy a generated course into the cache in one step (another run may race us)."""
    import json
    import shutil
    import tempfile

    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():  # an entry left half-made by a run that was killed
        shutil.rmtree(target, ignore_errors=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        shutil.copytree(course, scratch, dirs_exist_ok=True)
        (scratch / _COMPLETE).write_text(json.dumps(dict(record), indent=2) + "\n")
        try:
            os.rename(scratch, target)
        except OSError:  # another run kept the same version first: theirs is as good
            pass
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def course_id_of(course: Path) -> str:
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    return str(config.CourseDirectory.get("course_id", "default_course") or "default_course")
