"""Where the course is installed from: one setting, and every ``pip`` command built from it.

``course-utils`` is not on the Python package index. It is installed from the course's
repository, whose address is one setting: ``Repository`` under ``[project.urls]`` in
``pyproject.toml``. A fork, or a course hosted elsewhere, changes that line and runs
``course release``; the set-up cell of every notebook, the Colab and GitHub links and
every "install it with ..." message follow from it.

The setting is read from the ``pyproject.toml`` of a source checkout (this package's
parent folder, or the repository of the course being released) and otherwise from the
installed package's metadata (``Project-URL: Repository``), so it is known on Colab and
after a plain ``pip install`` too.

A release is the git tag ``v`` + the package version; :func:`install_command` pins to it.

Examples
--------
>>> install_command("cpu", version="0.2.0", repo_url="https://example.org/course.git")
'pip install "course-utils[cpu] @ git+https://example.org/course.git@v0.2.0"'
>>> install_command(version="0.2.0", repo_url="https://example.org/course.git")
'pip install "course-utils @ git+https://example.org/course.git@v0.2.0"'
>>> release_tag("1.2.3")
'v1.2.3'
"""

from __future__ import annotations

import functools
import os
import re
import sys
from pathlib import Path
from typing import Any, Final

from course_utils import __version__

#: Name of the distribution that provides ``course_utils``.
DISTRIBUTION: Final = "course-utils"
#: The ``[project.urls]`` key that holds the repository address (the one setting).
URL_KEY: Final = "Repository"

_PACKAGE_ROOT: Final = Path(__file__).resolve().parents[1]


def release_tag(version: str | None = None) -> str:
    """Git tag of a release: ``v`` + the package version (default: this one).

    >>> release_tag("v2.0.1")
    'v2.0.1'
    """
    return f"v{__version__ if version is None else check_version(version)}"


def repository_url(project_dir: str | os.PathLike[str] | None = None) -> str:
    """The course repository's address: ``[project.urls] Repository`` in ``pyproject.toml``.

    Looks in ``project_dir/pyproject.toml`` when given (the repository whose course is
    being released), then in the source checkout this package runs from, then in the
    installed package's metadata. Raises ``LookupError`` saying where it looked when
    none of them names the repository.

    >>> repository_url().startswith("https://")
    True
    """
    places = []
    folders = [Path(project_dir)] if project_dir is not None else []
    for folder in [*folders, _PACKAGE_ROOT]:
        pyproject = folder / "pyproject.toml"
        places.append(str(pyproject))
        url = _url_from_pyproject(pyproject)
        if url is not None:
            return url
    places.append(f"the metadata of the installed {DISTRIBUTION}")
    url = _url_from_metadata()
    if url is not None:
        return url
    raise LookupError(
        f"repository: expected a '{URL_KEY} = \"https://...\"' line under [project.urls] in "
        f"pyproject.toml; looked in {', '.join(places)}"
    )


def install_source(version: str | None = None, *, repo_url: str | None = None) -> str:
    """The pip URL of a release: ``git+<repository>@v<version>``.

    >>> install_source("1.0.0", repo_url="https://github.com/a/b")
    'git+https://github.com/a/b@v1.0.0'
    """
    url = check_repo_url(repository_url() if repo_url is None else repo_url)
    return f"git+{url}@{release_tag(version)}"


def requirement(extra: str | None = None, *, version: str | None = None,
                repo_url: str | None = None) -> str:
    """A PEP 508 requirement for this release, with ``extra`` (``cpu``, ``gpu``, ...).

    >>> requirement("gpu", version="1.0.0", repo_url="https://github.com/a/b")
    'course-utils[gpu] @ git+https://github.com/a/b@v1.0.0'
    """
    name = DISTRIBUTION if extra is None else f"{DISTRIBUTION}[{_check_extra(extra)}]"
    return f"{name} @ {install_source(version, repo_url=repo_url)}"


def install_command(extra: str | None = None, *, version: str | None = None,
                    repo_url: str | None = None, quiet: bool = False) -> str:
    """The ``pip install`` command that installs this release (with ``extra``).

    It names the repository at the release tag, so it works wherever git and the
    repository can be reached (``course-utils`` is not on the package index).

    >>> install_command("cpu", version="1.0.0", repo_url="https://github.com/a/b", quiet=True)
    'pip install --quiet "course-utils[cpu] @ git+https://github.com/a/b@v1.0.0"'
    """
    flag = "--quiet " if quiet else ""
    return f'pip install {flag}"{requirement(extra, version=version, repo_url=repo_url)}"'


def install_hint(extra: str | None = None) -> str:
    """One sentence on how to install the course with ``extra``, for error messages.

    It names the command for a clone of the repository and the one for anywhere else.

    >>> print(install_hint("cpu"))  # doctest: +ELLIPSIS
    in a clone of the course repository run `pip install -e '.[cpu]'` (or `make lab`); anywhere else `pip install "course-utils[cpu] @ git+...@v..."`
    """
    local = f"pip install -e '.[{_check_extra(extra)}]'" if extra else "pip install -e ."
    try:
        remote = install_command(extra)
    except (LookupError, ValueError):  # no setting to read: the clone is the way
        return f"in a clone of the course repository run `{local}` (or `make lab`)"
    return f"in a clone of the course repository run `{local}` (or `make lab`); anywhere else `{remote}`"


def check_version(version: str) -> str:
    """``version`` without a leading ``v``; ``ValueError`` unless it looks like ``1.2.3``."""
    text = str(version).strip().removeprefix("v")
    if not text or any(ch.isspace() for ch in text):
        raise ValueError(f"version: expected a version like 1.2.3, got {version!r}")
    return text


def check_repo_url(url: str) -> str:
    """``url`` without a trailing slash; ``ValueError`` unless it is an https or file URL.

    >>> check_repo_url("https://github.com/a/b/")
    'https://github.com/a/b'
    """
    text = str(url).strip().rstrip("/")
    if not re.fullmatch(r"(https://|file://)[^\s\"'@]+", text):
        raise ValueError(
            f"repository: expected an https:// (or file://) address of a git repository, "
            f"got {url!r}"
        )
    return text


def _check_extra(extra: str) -> str:
    """An extra's name (``cpu``, ``gpu``, ``course``, ... as pyproject.toml declares them)."""
    if not isinstance(extra, str) or not re.fullmatch(r"[a-z0-9]+(?:[-_][a-z0-9]+)*", extra):
        raise ValueError(f"extra: expected the name of one of the course's extras, such as "
                         f"cpu or gpu, got {extra!r}")
    return extra


def _url_from_pyproject(path: Path) -> str | None:
    """``[project.urls] Repository`` of ``path`` when it is course-utils' pyproject.toml."""
    data = _read_toml(path)
    project = data.get("project", {}) if isinstance(data, dict) else {}
    if project.get("name") != DISTRIBUTION:
        return None
    url = project.get("urls", {}).get(URL_KEY)
    return check_repo_url(url) if url else None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return {}
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        try:
            import tomli as tomllib
        except ImportError:
            return {}
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML ({exc})") from exc


@functools.lru_cache(maxsize=1)
def _url_from_metadata() -> str | None:
    from importlib import metadata

    try:
        entries = metadata.metadata(DISTRIBUTION).get_all("Project-URL") or []
    except metadata.PackageNotFoundError:
        return None
    for entry in entries:
        label, _, url = entry.partition(",")
        if label.strip().lower() == URL_KEY.lower() and url.strip():
            return check_repo_url(url.strip())
    return None
