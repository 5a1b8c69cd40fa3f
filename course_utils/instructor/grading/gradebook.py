"""The class gradebook: nbgrader's database, written by the grader's own process only."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from course_utils.instructor import release
from course_utils.instructor.grading.assignment import GradingPlan
from course_utils.runtime import install


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path.resolve()}"


@contextlib.contextmanager
def open_gradebook(db_url: str, course_id: str) -> Iterator[Any]:
    """nbgrader's ``Gradebook``, without the SQLAlchemy warnings its own code triggers."""
    import sqlalchemy.exc
    from nbgrader.api import Gradebook

    release.ensure_scripts_on_path()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=sqlalchemy.exc.SAWarning)
        with Gradebook(db_url, course_id) as gb:
            yield gb


def copy_structure(template_url: str, db_url: str, assignment: str, course_id: str) -> None:
    """Create (or check) the assignment's notebooks and cells in the class gradebook.

    A class gradebook that is a new SQLite file starts as a copy of the template's
    (:func:`_start_from_template`).
    """
    from nbgrader.api import MissingEntry

    _start_from_template(template_url, db_url, course_id)
    with open_gradebook(template_url, course_id) as src, open_gradebook(db_url, course_id) as dst:
        source = src.find_assignment(assignment)
        try:
            existing = dst.find_assignment(assignment)
        except MissingEntry:
            existing = None
        if existing is not None and existing.submissions:
            old = {(nb.name, c.name) for nb in existing.notebooks for c in nb.source_cells}
            new = {(nb.name, c.name) for nb in source.notebooks for c in nb.source_cells}
            if old != new:
                raise ValueError(
                    f"the gradebook {db_url} already holds submissions of {assignment} graded "
                    "against a different version of it; grade into a new --out folder or --db"
                )
        dst.update_or_create_assignment(assignment, duedate=source.duedate)
        for nb in source.notebooks:
            dst.update_or_create_notebook(nb.name, assignment, kernelspec=nb.kernelspec)
            for cell in nb.grade_cells:
                dst.update_or_create_grade_cell(cell.name, nb.name, assignment,
                                                max_score=cell.max_score, cell_type=cell.cell_type)
            for cell in nb.solution_cells:
                dst.update_or_create_solution_cell(cell.name, nb.name, assignment)
            for cell in nb.task_cells:
                dst.update_or_create_task_cell(cell.name, nb.name, assignment,
                                               max_score=cell.max_score, cell_type=cell.cell_type)
            for cell in nb.source_cells:
                dst.update_or_create_source_cell(
                    cell.name, nb.name, assignment, cell_type=cell.cell_type, locked=cell.locked,
                    source=cell.source, checksum=cell.checksum,
                )


def _start_from_template(template_url: str, db_url: str, course_id: str) -> None:
    """Make a new SQLite gradebook ``db_url`` a copy of ``template_url``'s, holding only
    ``course_id``'s rows; nothing if either is not SQLite or ``db_url`` exists.

    nbgrader stamps a database it creates with its schema version by running the
    ``alembic`` command (about 2.5 s, once per new gradebook); the template, a gradebook
    nbgrader made, is stamped already. The copy is written beside the target and renamed
    into place, so no half-made gradebook is left behind.
    """
    import sqlite3

    from sqlalchemy.engine import make_url

    template, target = make_url(template_url), make_url(db_url)
    if template.get_backend_name() != "sqlite" or target.get_backend_name() != "sqlite" \
            or not template.database or not target.database:
        return
    path = Path(target.database)
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(Path(template.database).read_bytes())
    try:
        with contextlib.closing(sqlite3.connect(partial)) as db, db:
            db.execute("DELETE FROM course WHERE id != ? AND id NOT IN "
                       "(SELECT course_id FROM assignment)", (course_id,))
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


def merge_submission(src: Any, dst: Any, assignment: str, student: str) -> None:
    source = src.find_submission(assignment, student)
    kwargs = {"timestamp": source.timestamp} if source.timestamp else {}
    target = dst.update_or_create_submission(assignment, student, **kwargs)
    by_name = {nb.name: nb for nb in target.notebooks}
    for nb in source.notebooks:
        twin = by_name[nb.name]
        twin.flagged = nb.flagged
        twin.late_submission_penalty = nb.late_submission_penalty
        grades = {g.name: g for g in twin.grades}
        for grade in nb.grades:
            copy_to = grades[grade.name]
            copy_to.auto_score = grade.auto_score
            copy_to.manual_score = grade.manual_score
            copy_to.extra_credit = grade.extra_credit
            copy_to.needs_manual_grade = grade.needs_manual_grade
        comments = {c.name: c for c in twin.comments}
        for comment in nb.comments:
            comments[comment.name].auto_comment = comment.auto_comment
            comments[comment.name].manual_comment = comment.manual_comment
    dst.db.commit()


def record_zero(gb: Any, assignment: str, student: str, timestamp: str | None) -> None:
    from nbgrader.utils import parse_utc

    kwargs = {"timestamp": parse_utc(timestamp)} if timestamp else {}
    submission = gb.update_or_create_submission(assignment, student, **kwargs)
    for nb in submission.notebooks:
        nb.flagged = True
        for grade in nb.grades:
            grade.auto_score = 0.0
            grade.manual_score = None
            grade.extra_credit = None
            grade.needs_manual_grade = False
    gb.db.commit()


def scores_of(gb: Any, assignment: str, student: str, plan: GradingPlan) -> dict[str, float | None]:
    submission = gb.find_submission(assignment, student)
    scores: dict[str, float | None] = {}
    for nb in submission.notebooks:
        for grade in nb.grades:
            if grade.manual_score is not None:
                scores[grade.name] = float(grade.manual_score) + float(grade.extra_credit or 0)
            elif grade.auto_score is not None:
                scores[grade.name] = float(grade.auto_score) + float(grade.extra_credit or 0)
            else:
                scores[grade.name] = None
    order = [*plan.autograded, *plan.manual]
    return {k: scores.get(k) for k in order} | {k: v for k, v in scores.items() if k not in order}


def course_db_url(course_root: Path) -> str:
    """The gradebook a course root names (``CourseDirectory.db_url``), else its gradebook.db.

    This is the gradebook the Formgrader and ``nbgrader export`` open in that folder.

    >>> import tempfile
    >>> course_db_url(Path(tempfile.mkdtemp())).endswith("/gradebook.db")
    True
    """
    from traitlets.config.loader import PyFileConfigLoader

    root = Path(course_root).resolve()
    url = ""
    if (root / "nbgrader_config.py").is_file():
        config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
        url = str(config.CourseDirectory.get("db_url", "") or "")
    return url or sqlite_url(root / "gradebook.db")


def remove_submissions(db_url: str, course_id: str, assignment: str) -> list[str]:
    """Remove every submission of ``assignment`` from the gradebook; the students' ids."""
    from nbgrader.api import MissingEntry

    with open_gradebook(db_url, course_id) as gb:
        try:
            found = gb.find_assignment(assignment)
        except MissingEntry:
            return []
        students = sorted(s.student.id for s in found.submissions)
        for student in students:
            gb.remove_submission(assignment, student)
    return students


def withhold_autograded(gb: Any, assignment: str, student: str, plan: GradingPlan) -> float:
    """Hold a flagged submission's autograded points back for review; the points held.

    The autograded cells get zero and are marked as needing a manual grade, and the
    notebook is flagged, so the Formgrader lists it for the instructor, who can give
    the points back by hand.
    """
    submission = gb.find_submission(assignment, student)
    held = 0.0
    for nb in submission.notebooks:
        nb.flagged = True
        for grade in nb.grades:
            if grade.name in plan.autograded:
                held += float(grade.auto_score or 0.0)
                grade.auto_score = 0.0
                grade.needs_manual_grade = True
    gb.db.commit()
    return held


#: What to install for each database the gradebook may live in (SQLite needs nothing).
_DRIVER_EXTRAS = {"postgresql": "postgres"}
_URL_EXAMPLES = ("postgresql://user:password@host:5432/gradebook or "
                 "sqlite:////absolute/path/gradebook.db")


def check_db_url(url: str) -> str:
    """Check a gradebook URL and its database driver before any work; return the URL to use.

    The URL is SQLAlchemy's, as nbgrader's ``CourseDirectory.db_url``. A PostgreSQL
    gradebook needs the ``postgres`` extra (psycopg 3): a plain ``postgresql://`` URL
    is returned naming that driver (``postgresql+psycopg://``) when SQLAlchemy's default
    driver for it is not installed. Raises ``ValueError`` saying what was expected
    (a malformed URL, an unknown database, an in-memory SQLite database, a missing
    folder) or what to install (a missing driver). Nothing is connected to.

    >>> check_db_url("sqlite:///gradebook.db")
    'sqlite:///gradebook.db'
    >>> check_db_url("gradebook.db")
    Traceback (most recent call last):
    ...
    ValueError: db_url: expected a database URL such as postgresql://user:password@host:5432/gradebook or sqlite:////absolute/path/gradebook.db, got 'gradebook.db'
    """
    import sqlalchemy.exc
    from sqlalchemy.engine import make_url

    if not isinstance(url, str) or not url.strip():
        raise ValueError(f"db_url: expected a database URL such as {_URL_EXAMPLES}, got {url!r}")
    try:
        parsed = make_url(url)
    except sqlalchemy.exc.ArgumentError:
        raise ValueError(
            f"db_url: expected a database URL such as {_URL_EXAMPLES}, got {url!r}") from None
    backend = parsed.get_backend_name()
    if backend == "postgresql" and "+" not in parsed.drivername and not _has_dbapi(parsed):
        # SQLAlchemy before 2.1 means psycopg2 by a plain postgresql://; ours is psycopg 3
        psycopg = parsed.set(drivername="postgresql+psycopg")
        if _has_dbapi(psycopg):
            parsed, url = psycopg, psycopg.render_as_string(hide_password=False)
    shown = parsed.render_as_string(hide_password=True)
    try:
        dialect = parsed.get_dialect()
    except sqlalchemy.exc.NoSuchModuleError:
        hint = "; PostgreSQL's begin with postgresql://" if backend.startswith("postgres") else ""
        raise ValueError(f"db_url: expected a PostgreSQL or SQLite database, got {shown!r} "
                         f"(a URL such as {_URL_EXAMPLES}{hint})") from None
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        extra = _DRIVER_EXTRAS.get(backend)
        how = (f"install the course's `{extra}` extra: {install.install_hint(extra)}" if extra else
               f"install the Python driver {dialect.driver!r} of {backend}")
        driver = exc.name or dialect.driver
        raise ValueError(f"db_url: {shown} needs the {backend} driver {driver!r}, which is not "
                         f"installed; {how}") from None
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise ValueError(f"db_url: expected a file for the SQLite gradebook, got {shown!r} "
                             "(an in-memory database is gone when grading ends)")
        folder = Path(parsed.database).resolve().parent
        if not folder.is_dir():
            raise ValueError(f"db_url: the folder of the SQLite gradebook {folder} does not exist")
    elif not parsed.database:
        raise ValueError(f"db_url: expected a database name at the end of the URL, got {shown!r} "
                         f"(e.g. {_URL_EXAMPLES.split(' or ')[0]})")
    return url


def _has_dbapi(url: Any) -> bool:
    """Whether the Python driver of ``url`` (a SQLAlchemy ``URL``) can be imported."""
    import sqlalchemy.exc

    try:
        url.get_dialect().import_dbapi()
    except (ImportError, sqlalchemy.exc.NoSuchModuleError):
        return False
    return True
