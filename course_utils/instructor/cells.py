"""The two cells ``course release`` writes at the top of every lesson.

1. a header: the lesson title with "Open in Colab" and "View on GitHub" links
   pointing at this release (:func:`header_cell_source`); each link is text beside
   a small logo, so it reads the same offline, where the logos cannot load;
2. the set-up cell (:func:`setup_cell_source`): on Colab it installs
   ``course_utils`` from the repository at this release's tag, elsewhere it
   installs nothing; where ``course_utils`` cannot be imported it stops with a
   sentence that says what to do. Then it calls
   :func:`course_utils.notebook.setup_notebook`.

Both carry one version pin. The repository address is one setting,
``[project.urls] Repository`` in ``pyproject.toml`` (see
:mod:`course_utils.runtime.install`); ``repo_url`` arguments default to it.

Examples
--------
>>> colab_url("notebooks/00_workflow.ipynb", version="0.1.0", repo_url="https://github.com/a/b")
'https://colab.research.google.com/github/a/b/blob/v0.1.0/notebooks/00_workflow.ipynb'
"""

from __future__ import annotations

import os
from typing import Final

from course_utils.runtime import install

#: Cell tags that mark the two cells ``course release`` writes into every master.
HEADER_TAG: Final = "course-header"
SETUP_TAG: Final = "course-setup"
#: Notebook metadata that makes Colab open a lesson on a GPU runtime (the lessons train
#: networks; on a CPU-only runtime they still run, in the ``cpu`` profile).
COLAB_METADATA: Final = {"accelerator": "GPU", "colab": {"gpuType": "T4", "provenance": []}}

_COLAB_LOGO: Final = "https://colab.research.google.com/img/colab_favicon_256px.png"
_GITHUB_LOGO: Final = "https://github.githubassets.com/images/modules/logos_page/GitHub-Mark.png"
_GITHUB: Final = "https://github.com/"


def release_tag(version: str | None = None) -> str:
    """Git tag of a release: ``v`` + the package version (default: this one).

    >>> release_tag("1.2.3")
    'v1.2.3'
    """
    return install.release_tag(version)


def install_command(version: str | None = None, *, repo_url: str | None = None) -> str:
    """The ``pip`` command the set-up cell runs on Colab: this release, no TensorFlow.

    TensorFlow is not pulled in: Colab ships its own build.

    >>> install_command("0.2.0", repo_url="https://example.org/course")
    'pip install --quiet "course-utils @ git+https://example.org/course@v0.2.0"'
    """
    return install.install_command(version=version, repo_url=repo_url, quiet=True)


def on_github(repo_url: str | None = None) -> bool:
    """Whether the repository is on GitHub (Colab opens notebooks only from there).

    >>> on_github("https://github.com/a/b"), on_github("https://gitlab.com/a/b")
    (True, False)
    """
    url = install.repository_url() if repo_url is None else install.check_repo_url(repo_url)
    return url.startswith(_GITHUB)


def github_url(path: str, *, version: str | None = None, repo_url: str | None = None) -> str:
    """Address of a repository file at a release tag on GitHub.

    >>> github_url("notebooks/00_workflow.ipynb", version="0.1.0", repo_url="https://github.com/a/b")
    'https://github.com/a/b/blob/v0.1.0/notebooks/00_workflow.ipynb'
    """
    url = install.repository_url() if repo_url is None else install.check_repo_url(repo_url)
    return f"{url}/blob/{release_tag(version)}/{_check_path(path)}"


def colab_url(path: str, *, version: str | None = None, repo_url: str | None = None) -> str:
    """Address that opens a repository notebook at a release tag in Colab.

    >>> colab_url("notebooks/x.ipynb", version="1.0.0", repo_url="https://github.com/a/b")
    'https://colab.research.google.com/github/a/b/blob/v1.0.0/notebooks/x.ipynb'
    """
    url = install.repository_url() if repo_url is None else install.check_repo_url(repo_url)
    if not url.startswith(_GITHUB):
        raise ValueError(
            f"repo_url: expected a GitHub address ({_GITHUB}...), Colab opens notebooks only "
            f"from GitHub; got {url!r}"
        )
    return (
        f"https://colab.research.google.com/github/{url.removeprefix(_GITHUB)}/blob/"
        f"{release_tag(version)}/{_check_path(path)}"
    )


def header_cell_source(title: str, path: str, *, version: str | None = None,
                       repo_url: str | None = None) -> str:
    """Markdown of a lesson's first cell: its title and the Colab / GitHub links.

    ``path`` is the student notebook's path in the repository. Each link is text with
    a small logo beside it (no alternative text, so nothing shows where the logo cannot
    load): offline the links read and work the same. A repository outside GitHub gets
    one link to it instead (Colab opens notebooks from GitHub only).

    >>> print(header_cell_source("00 Workflow", "notebooks/00_workflow.ipynb", version="0.1.0",
    ...                          repo_url="https://github.com/a/b"))
    ... # doctest: +NORMALIZE_WHITESPACE +ELLIPSIS
    # 00 Workflow
    <BLANKLINE>
    <a href="https://colab.research.google.com/github/a/b/blob/v0.1.0/notebooks/00_workflow.ipynb">...Open in Colab</a>
    &nbsp;
    <a href="https://github.com/a/b/blob/v0.1.0/notebooks/00_workflow.ipynb">...View on GitHub</a>
    """
    title = title.strip()
    if not title or "\n" in title:
        raise ValueError(f"title: expected one non-empty line, got {title!r}")
    url = install.repository_url() if repo_url is None else install.check_repo_url(repo_url)
    if not url.startswith(_GITHUB):
        return f"# {title}\n\nSource: <{url}> (release {release_tag(version)}, {_check_path(path)})"
    colab = colab_url(path, version=version, repo_url=url)
    github = github_url(path, version=version, repo_url=url)
    return (
        f"# {title}\n\n"
        f'<a href="{colab}"><img src="{_COLAB_LOGO}" height="20" alt=""> Open in Colab</a>\n'
        f"&nbsp;\n"
        f'<a href="{github}"><img src="{_GITHUB_LOGO}" height="20" alt=""> View on GitHub</a>'
    )


def setup_cell_source(version: str | None = None, *, repo_url: str | None = None) -> str:
    """Python source of every lesson's set-up cell.

    On Colab (and only there) a missing ``course_utils`` is installed with
    :func:`install_command`. Where it still cannot be imported (outside Colab, or the
    install failed) the cell stops with one sentence that says what to do, naming
    the command that installs this release. A ``course_utils`` that is installed but
    fails to import (a broken dependency) shows that error itself. Then
    :func:`course_utils.notebook.setup_notebook` runs.

    >>> source = setup_cell_source("0.1.0", repo_url="https://github.com/a/b")
    >>> "%pip install" in source and "git+https://github.com/a/b@v0.1.0" in source
    True
    """
    colab = install_command(version, repo_url=repo_url)
    local = install.install_command("cpu", version=version, repo_url=repo_url)
    return (
        "# Set-up: on Colab, install the course helpers pinned to this release; anywhere\n"
        "# else they must be installed already, and this cell says how when they are not.\n"
        "try:\n"
        "    from course_utils import notebook\n"
        "except ModuleNotFoundError as missing:\n"
        "    import sys\n"
        "\n"
        '    if missing.name != "course_utils":  # installed, but a dependency is missing\n'
        "        raise\n"
        '    on_colab = "google.colab" in sys.modules\n'
        "    if on_colab:\n"
        f"        %{colab}\n"
        "    try:\n"
        "        from course_utils import notebook\n"
        "    except ModuleNotFoundError:\n"
        "        if on_colab:\n"
        '            why = ("Installing the course helpers failed (pip says why above): check "\n'
        '                   "that this runtime reaches the internet, then run this cell again.")\n'
        "        else:\n"
        '            why = ("The course helpers (course_utils) are not installed for "\n'
        '                   f"{sys.executable}: in a clone of the course run `make lab`, or run "\n'
        f"                   '%{local}'\n"
        '                   " in this notebook, then restart the kernel and run this cell again.")\n'
        "        raise ModuleNotFoundError(why) from None\n"
        "\n"
        "profile = notebook.setup_notebook()"
    )


def _check_path(path: str) -> str:
    text = os.fspath(path).replace("\\", "/").lstrip("/")
    if not text or ".." in text.split("/"):
        raise ValueError(f"path: expected a file path inside the repository, got {path!r}")
    return text
