"""What every lesson notebook does first: header, set-up cell, device report.

Each student notebook opens with two cells that ``course release`` writes from
this module, so they are identical in every lesson and carry one version pin:

1. a header: the lesson title with "Open in Colab" and "View on GitHub" links
   pointing at this release (:func:`header_cell_source`); each link is text beside
   a small logo, so it reads the same offline, where the logos cannot load;
2. the set-up cell (:func:`setup_cell_source`): on Colab it installs
   ``course_utils`` from the repository at this release's tag, elsewhere it
   installs nothing; where ``course_utils`` cannot be imported it stops with a
   sentence that says what to do. Then it calls :func:`setup_notebook`, which
   quiets TensorFlow, prints the device report and returns the runtime profile.

The repository address is one setting, ``[project.urls] Repository`` in
``pyproject.toml`` (see :mod:`course_utils.install`); ``repo_url`` arguments
default to it.

Examples
--------
>>> colab_url("notebooks/00_workflow.ipynb", version="0.1.0", repo_url="https://github.com/a/b")
'https://colab.research.google.com/github/a/b/blob/v0.1.0/notebooks/00_workflow.ipynb'
>>> on_colab({})
False
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any, Final

from course_utils import install, profiles

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


def on_colab(modules: Mapping[str, Any] | None = None) -> bool:
    """Whether this Python runs inside Google Colab (``google.colab`` is loaded).

    ``modules`` defaults to ``sys.modules``; tests pass their own.

    >>> on_colab({"google.colab": object()})
    True
    """
    return "google.colab" in (sys.modules if modules is None else modules)


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
    :func:`setup_notebook` runs.

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


def setup_notebook(profile: str | None = None, *, report: bool = True) -> profiles.Profile:
    """Prepare a notebook session and return its runtime profile.

    Quiets TensorFlow's start-up log (and AutoGraph, which in an interactive session
    echoes its warnings to the notebook), turns on GPU memory growth, makes Matplotlib
    figures returned by the course helpers display as PNG, and (``report=True``)
    prints the device report with :func:`print_setup_report`. ``profile`` forces a
    profile; by default :func:`course_utils.profiles.choose_profile` picks it from the
    environment and the GPUs the device report found (``smoke`` while nbgrader
    validates or grades). This is where hardware (:mod:`course_utils.device`) and
    profiles meet; neither module imports the other.

    Examples
    --------
    >>> p = setup_notebook("smoke", report=False)    # doctest: +SKIP
    >>> p.name                                        # doctest: +SKIP
    'smoke'
    """
    from course_utils import device, tf_setup

    tf_setup.quiet_environment()
    tf = tf_setup.import_tensorflow()
    tf.autograph.set_verbosity(0)  # no "WARNING: AutoGraph could not transform ..." in outputs
    devices = device.detect_devices()
    device.configure_gpus(devices, tf=tf)
    if profile is None:
        profile = profiles.choose_profile(os.environ, gpu_available=devices.has_gpu)
    chosen = profiles.get_profile(profile)
    _display_figures_as_png()
    if report:
        print_setup_report(chosen, devices)
    return chosen


def print_setup_report(profile: profiles.Profile, report: Any) -> None:
    """Print the device report and one line on what the profile means.

    ``report`` is a :class:`course_utils.device.DeviceReport`.

    Examples
    --------
    >>> print_setup_report(profiles.get_profile("smoke"), None)
    Profile smoke: 32x32 images, 480 for training, 2 epochs per full run.
    """
    if report is not None:
        from course_utils import device

        device.print_device_report(report, profile=profile.name)
    print(
        f"Profile {profile.name}: {profile.image_size}x{profile.image_size} images, "
        f"{profile.train_size} for training, {profile.epochs} epochs per full run."
    )


def _display_figures_as_png() -> None:
    """In IPython, show a returned ``matplotlib.figure.Figure`` as a PNG image."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - plain Python
        return
    shell = get_ipython()
    if shell is None:
        return
    from matplotlib.figure import Figure

    formatter = shell.display_formatter.formatters["image/png"]
    formatter.for_type(Figure, _figure_png)


def _figure_png(fig: Any) -> bytes:
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()


def _check_path(path: str) -> str:
    text = os.fspath(path).replace("\\", "/").lstrip("/")
    if not text or ".." in text.split("/"):
        raise ValueError(f"path must be a file path inside the repository, got {path!r}")
    return text
