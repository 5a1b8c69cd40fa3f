"""Atomic file writes: a reader never sees a half-written file.

Everything the course writes (history JSON, plots, checkpoints, exported images,
grade reports) goes through these helpers: write to a temporary file in the
same folder, then ``os.replace`` it over the target in one step.

Examples
--------
>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> write_json(d / "m.json", {"acc": 0.5})
PosixPath('...m.json')
>>> read_json(d / "m.json")
{'acc': 0.5}
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it over ``path`` on success.

    The temporary name keeps ``path``'s suffix, so writers that check it (Keras'
    ``model.save`` wants ``.keras``, matplotlib picks the format) still work.
    On an exception the temporary file is removed and ``path`` is untouched.

    The file gets the permissions a plain ``open(path, "w")`` would give it: those of
    the file it replaces, or for a new file ``0o666`` less the umask (``0o644`` with
    the usual umask ``022``), not the owner-only ``0o600`` of a bare temporary file.

    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("done")
    >>> target.read_text()
    'done'
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent)
    tmp = Path(tmp_name)
    os.close(fd)
    os.chmod(tmp, _mode_for(target))
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def current_umask() -> int:
    """The process's umask (read without changing it where the system allows).

    >>> 0 <= current_umask() <= 0o777
    True
    """
    try:  # Linux: read it, no race with other threads
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: the classic set-and-restore
    os.umask(mask)
    return mask


def _mode_for(target: Path) -> int:
    """Permission bits a new ``target`` gets: the replaced file's, else 0o666 less the umask."""
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except OSError:
        return 0o666 & ~current_umask()


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Atomically write ``data`` to ``path`` and return the path."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    return Path(path)


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Atomically write UTF-8 ``text`` to ``path`` and return the path."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Atomically write ``obj`` as indented JSON (NumPy scalars converted)."""
    return write_text(path, json.dumps(obj, indent=2, default=_to_builtin) + "\n")


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read JSON from ``path``; the error names the file when it is not valid JSON."""
    p = Path(path)
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{p}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc


def _to_builtin(obj: Any) -> Any:
    if hasattr(obj, "tolist"):  # NumPy arrays and scalars, tensors' .numpy() results
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")
