"""Finding the submissions to grade: nbgrader's submitted/ tree or a folder of notebooks and zips.

Everything here only reads the input (archives are unpacked into a staging folder of
the grader's own); nothing found is dropped: a submission that cannot be graded comes
back with its ``problem`` set, and a student id that could not be used as a folder name
is never used in a path.

Examples
--------
>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "ada.ipynb").write_text('{"cells": [], "metadata": {}, '
...                                       '"nbformat": 4, "nbformat_minor": 5}')
>>> _ = (folder / "..ipynb").write_text("{}")
>>> [(s.student, s.problem is None) for s in find_submissions(folder, "00_workflow",
...                                                            staging=folder / "staging")]
[('.', False), ('ada', True)]
>>> valid_student_id("alan\\n"), valid_student_id("grace.hopper")
(False, True)
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from course_utils.runtime import io

#: Student ids nbgrader can use as folder names, matched in full (no trailing newline).
STUDENT_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}")
#: The most a notebook may weigh, in an archive or on its own (bytes).
MAX_NOTEBOOK_BYTES: Final = 20 * 2**20


@dataclasses.dataclass(frozen=True)
class Submission:
    """One student's submission found in the input.

    ``notebook`` is the file to grade; ``problem`` says why it cannot be graded
    (then ``notebook`` may be ``None``); ``notes`` say what else was found (a second
    file from the same student, ignored). ``student`` is only used in paths when
    :func:`valid_student_id` accepts it.
    """

    student: str
    notebook: Path | None
    source: Path
    timestamp: str | None = None
    problem: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def digest(self) -> str | None:
        """SHA-256 of the notebook's bytes (what a resumed run compares), if there is one."""
        if self.notebook is None or not self.notebook.is_file():
            return None
        return hashlib.sha256(self.notebook.read_bytes()).hexdigest()


def valid_student_id(student: str) -> bool:
    """Whether ``student`` can name a folder: letters, digits and ``. _ @ -``, in full."""
    return STUDENT_ID_PATTERN.fullmatch(student) is not None and student not in {".", ".."}


def find_submissions(path: str | os.PathLike[str], assignment: str,
                     *, staging: str | os.PathLike[str]) -> list[Submission]:
    """The submissions in ``path``, one per student, sorted by student id.

    ``path`` is nbgrader's ``submitted/`` tree (``<student>/<assignment>/``) or a
    flat folder of ``<student>.ipynb`` and ``<student>.zip`` files; archives are
    unpacked into ``staging`` (at most :data:`MAX_NOTEBOOK_BYTES` per notebook).
    What cannot be graded (an archive without exactly one notebook, a bad student
    id, a file that is not a notebook) is returned with its ``problem`` set, never
    dropped. A student who handed in several files is graded once, on the newest
    (a notebook before an archive when equally new); the others are named in
    ``notes``.
    """
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: submissions folder not found")
    staging = Path(staging)
    tree = [d for d in sorted(root.iterdir()) if d.is_dir() and (d / assignment).is_dir()]
    found: list[Submission] = []
    if tree:
        for student_dir in tree:
            folder = student_dir / assignment
            notebook = folder / f"{assignment}.ipynb"
            timestamp = _read_timestamp(folder / "timestamp.txt")
            problem = None if notebook.is_file() else f"no {assignment}.ipynb in {folder}"
            found.append(Submission(student_dir.name, notebook if notebook.is_file() else None,
                                    folder, timestamp, problem))
    else:
        for file in sorted(root.iterdir()):
            if file.suffix.lower() in (".ipynb", ".zip") and file.is_file():
                found.append(Submission(file.name[: -len(file.suffix)], None, file))
    if not found:
        raise FileNotFoundError(
            f"{root}: no submissions; expected <student>/{assignment}/{assignment}.ipynb "
            "folders (nbgrader's submitted/ tree) or <student>.ipynb / <student>.zip files"
        )
    checked = []
    for student, candidates in _by_student(found).items():
        chosen, others = candidates[0], candidates[1:]
        notes = tuple(f"also handed in {o.source.name}, not graded: {chosen.source.name} is "
                      "newer" for o in others)
        if not valid_student_id(student):
            checked.append(dataclasses.replace(chosen, notes=notes, problem=(
                f"{chosen.source.name}: {student!r} is not a usable student id (letters, "
                "digits, and . _ @ - only, starting with a letter or digit)")))
            continue
        if chosen.problem is None and chosen.notebook is None:
            chosen = _open_flat(chosen, staging / student)
        if chosen.problem is None and chosen.notebook is not None:
            chosen = dataclasses.replace(chosen, problem=_notebook_problem(chosen.notebook))
        checked.append(dataclasses.replace(chosen, notes=notes))
    return sorted(checked, key=lambda s: s.student)


def _by_student(found: Sequence[Submission]) -> dict[str, list[Submission]]:
    """Candidates per student id, the one to grade first (newest; .ipynb before .zip)."""
    groups: dict[str, list[Submission]] = {}
    for sub in found:
        groups.setdefault(sub.student, []).append(sub)

    def rank(sub: Submission) -> tuple[float, int]:
        mtime = sub.source.stat().st_mtime if sub.source.exists() else 0.0
        return (-mtime, 0 if sub.source.suffix.lower() != ".zip" else 1)

    return {k: sorted(v, key=rank) for k, v in groups.items()}


def _open_flat(sub: Submission, dest: Path) -> Submission:
    """A flat-folder file made gradable: a notebook as it is, an archive unpacked."""
    if sub.source.suffix.lower() == ".ipynb":
        size = sub.source.stat().st_size
        if size > MAX_NOTEBOOK_BYTES:
            return dataclasses.replace(sub, problem=_too_big(sub.source.name, size))
        return dataclasses.replace(sub, notebook=sub.source)
    return _unpack(sub, dest)


def _too_big(name: str, size: int) -> str:
    return (f"{name}: {size / 2**20:.1f} MiB; a notebook may have at most "
            f"{MAX_NOTEBOOK_BYTES / 2**20:.0f} MiB (clear large outputs before handing in)")


def _read_timestamp(path: Path) -> str | None:
    """The submission time in ``timestamp.txt``; ``None`` when absent or unreadable."""
    from nbgrader.utils import parse_utc

    if not path.is_file():
        return None
    text = path.read_text(errors="replace").strip()
    try:
        parse_utc(text)
    except (ValueError, OverflowError):
        return None
    return text or None


def _unpack(sub: Submission, dest: Path) -> Submission:
    """The one notebook of a zip archive, read with a size cap into ``dest``."""
    archive = sub.source
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = [i for i in zf.infolist()
                     if i.filename.endswith(".ipynb") and "__MACOSX" not in i.filename
                     and ".ipynb_checkpoints" not in i.filename and not i.is_dir()]
            if len(infos) != 1:
                return dataclasses.replace(sub, problem=(
                    f"{archive.name}: expected one .ipynb file in the archive, found {len(infos)}"))
            # The header's size can lie: read at most one byte past the cap.
            with zf.open(infos[0]) as member:
                data = member.read(MAX_NOTEBOOK_BYTES + 1)
            if len(data) > MAX_NOTEBOOK_BYTES or infos[0].file_size > MAX_NOTEBOOK_BYTES:
                return dataclasses.replace(sub, problem=_too_big(
                    f"{archive.name}: {infos[0].filename}", max(len(data), infos[0].file_size)))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, OSError) as exc:
        return dataclasses.replace(sub, problem=f"{archive.name}: not a readable zip archive "
                                   f"({str(exc)[:120] or type(exc).__name__})")
    target = io.write_bytes(dest / f"{sub.student}.ipynb", data)
    return dataclasses.replace(sub, notebook=target)


def _notebook_problem(path: Path) -> str | None:
    import nbformat

    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
    except Exception as exc:  # nbformat raises JSON, schema and encoding errors
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return f"{path.name}: not a valid Jupyter notebook ({reason[:200]})"
    return None


def notebook_to_grade(nb: Any, released: Any) -> Any:
    """A copy of ``nb`` as the worker hands it to nbgrader: repeated grade ids stripped.

    This is the one rule for a ``grade_id`` that appears more than once
    (:func:`deduplicate_grade_ids`, in the order of ``released``, the student version).
    The worker grades this copy and the integrity scan reads it, so a cell counts as
    restored by nbgrader only if it still carries nbgrader metadata here. ``nb`` and
    ``released`` are ``NotebookNode`` or plain dicts of the notebook's JSON; neither is
    changed.

    >>> import nbformat
    >>> setup = nbformat.v4.new_code_cell("import numpy as np", metadata={
    ...     "nbgrader": {"grade_id": "course_setup", "locked": True}})
    >>> released = nbformat.v4.new_notebook(cells=[setup])
    >>> pasted = nbformat.v4.new_code_cell("get_ipython()", metadata=setup.metadata)
    >>> nb = nbformat.v4.new_notebook(cells=[setup, pasted])
    >>> [_grade_id(c) for c in notebook_to_grade(nb, released).cells]
    ['course_setup', None]
    """
    import copy

    import nbformat

    graded = nbformat.from_dict(copy.deepcopy(nb))
    order = [grade_id for cell in _cells_of(released)
             if (grade_id := _grade_id(cell)) is not None]
    deduplicate_grade_ids(graded, order)
    return graded


def deduplicate_grade_ids(nb: Any, order: Sequence[str]) -> list[int]:
    """Strip nbgrader metadata from repeated graded cells, in place; their indices.

    Jupyter's copy and paste keeps a cell's metadata, so a student who pasted a
    test cell hands in two cells with one ``grade_id``. nbgrader keeps the last
    copy, which may sit above the answer it tests. Here, for each id in ``order``
    (the released notebook's), the first copy after the previously kept graded
    cell keeps the metadata, so the kept cells follow the released order; the
    other copies become ordinary cells (and run as the student's code: the
    integrity scan reads them so, see :func:`notebook_to_grade`).

    >>> import nbformat
    >>> def cell(i):
    ...     return nbformat.v4.new_code_cell(i, metadata={"nbgrader": {"grade_id": i}})
    >>> nb = nbformat.v4.new_notebook(cells=[cell("test"), cell("answer"), cell("test")])
    >>> deduplicate_grade_ids(nb, ["answer", "test"])
    [0]
    >>> [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]
    [None, 'answer', 'test']
    """
    where: dict[str, list[int]] = {}
    for i, cell in enumerate(_cells_of(nb)):
        grade_id = _grade_id(cell)
        if grade_id is not None:
            where.setdefault(grade_id, []).append(i)
    keep: set[int] = set()
    last = -1
    for grade_id in order:
        places = where.get(grade_id, [])
        after = [i for i in places if i > last]
        if after:
            keep.add(after[0])
            last = after[0]
        elif places:
            keep.add(places[-1])
    stripped = []
    for grade_id, places in where.items():
        if grade_id not in order:
            keep.add(places[-1])  # an id the release does not know: nbgrader's rule
        for i in places:
            if i not in keep:
                del nb.cells[i].metadata["nbgrader"]
                stripped.append(i)
    return sorted(stripped)


def _cells_of(nb: Any) -> list[Any]:
    cells = nb.get("cells") if isinstance(nb, Mapping) else getattr(nb, "cells", None)
    return cells if isinstance(cells, list) else []


def _grade_id(cell: Any) -> str | None:
    """A cell's nbgrader ``grade_id``; ``None`` when it has none (or metadata is malformed)."""
    meta = cell.get("metadata") if isinstance(cell, Mapping) else None
    meta = meta.get("nbgrader") if isinstance(meta, Mapping) else None
    grade_id = meta.get("grade_id") if isinstance(meta, Mapping) else None
    return grade_id if isinstance(grade_id, str) and grade_id else None
