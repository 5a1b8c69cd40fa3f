"""Finding the submissions to grade: nbgrader's submitted/ tree or a folder of notebooks and zips."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import zipfile
from pathlib import Path
from typing import Final

from course_utils import io

STUDENT_ID_PATTERN: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$")


@dataclasses.dataclass(frozen=True)
class Submission:
    """One student's submission found in the input.

    ``notebook`` is the file to grade; ``problem`` says why it cannot be graded
    (then ``notebook`` may be ``None``).
    """

    student: str
    notebook: Path | None
    source: Path
    timestamp: str | None = None
    problem: str | None = None


def find_submissions(path: str | os.PathLike[str], assignment: str,
                     *, staging: str | os.PathLike[str]) -> list[Submission]:
    """The submissions in ``path``, one per student, sorted by student id.

    ``path`` is nbgrader's ``submitted/`` tree (``<student>/<assignment>/``) or a
    flat folder of ``<student>.ipynb`` and ``<student>.zip`` files; archives are
    unpacked into ``staging``. What cannot be graded (an archive without exactly
    one notebook, a bad student id, a file that is not a notebook) is returned
    with its ``problem`` set, never dropped.
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
            stamp = folder / "timestamp.txt"
            timestamp = _read_timestamp(stamp)
            problem = None if notebook.is_file() else f"no {assignment}.ipynb in {folder}"
            found.append(Submission(student_dir.name, notebook if notebook.is_file() else None,
                                    folder, timestamp, problem))
    else:
        for file in sorted(root.iterdir()):
            if file.suffix.lower() == ".ipynb":
                found.append(Submission(file.stem, file, file))
            elif file.suffix.lower() == ".zip":
                found.append(_unpack(file, staging / file.stem))
    if not found:
        raise FileNotFoundError(
            f"{root}: no submissions; expected <student>/{assignment}/{assignment}.ipynb "
            "folders (nbgrader's submitted/ tree) or <student>.ipynb / <student>.zip files"
        )
    checked: list[Submission] = []
    seen: set[str] = set()
    for sub in found:
        problem = sub.problem
        if not STUDENT_ID_PATTERN.match(sub.student):
            problem = (f"{sub.source.name}: {sub.student!r} is not a usable student id "
                       "(letters, digits, and . _ @ - only)")
        elif sub.student in seen:
            problem = f"{sub.source.name}: a second submission from {sub.student!r}"
        elif problem is None and sub.notebook is not None:
            problem = _notebook_problem(sub.notebook)
        seen.add(sub.student)
        checked.append(dataclasses.replace(sub, problem=problem))
    return sorted(checked, key=lambda s: s.student)


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


def _unpack(archive: Path, dest: Path) -> Submission:
    try:
        with zipfile.ZipFile(archive) as zf:
            names = [n for n in zf.namelist()
                     if n.endswith(".ipynb") and "__MACOSX" not in n
                     and ".ipynb_checkpoints" not in n]
            if len(names) != 1:
                return Submission(archive.stem, None, archive, problem=(
                    f"{archive.name}: expected one .ipynb file in the archive, found {len(names)}"))
            dest.mkdir(parents=True, exist_ok=True)
            target = dest / f"{archive.stem}.ipynb"
            target.write_bytes(zf.read(names[0]))
    except zipfile.BadZipFile:
        return Submission(archive.stem, None, archive, problem=f"{archive.name}: not a zip archive")
    return Submission(archive.stem, target, archive)


def _notebook_problem(path: Path) -> str | None:
    import nbformat

    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
    except Exception as exc:  # nbformat raises JSON, schema and encoding errors
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return f"{path.name}: not a valid Jupyter notebook ({reason[:200]})"
    return None


def place_submission(sub: Submission, folder: Path, assignment: str) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    original = sub.notebook if sub.notebook is not None else sub.source
    if original.is_file():
        shutil.copyfile(original, folder / f"{assignment}.ipynb")
    if sub.timestamp:
        io.write_text(folder / "timestamp.txt", sub.timestamp)
