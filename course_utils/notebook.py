"""What every lesson notebook does first: buttons, set-up cell, device report.

Each student notebook opens with two cells that ``course release`` writes from
this module, so they are identical in every lesson and carry one version pin:

1. a header: the lesson title with "Open in Colab" and "View on GitHub" buttons
   pointing at this release (:func:`header_cell_source`);
2. the set-up cell (:func:`setup_cell_source`): on Colab it installs
   ``course_utils`` from the repository at this release's tag, elsewhere it
   installs nothing; then it calls :func:`setup_notebook`, which quiets
   TensorFlow, prints the device report and returns the runtime profile.

The repository address is :data:`REPO_URL`, defined here and nowhere else.

Examples
--------
>>> install_command("0.1.0")
'pip install --quiet "course-utils @ git+https://github.com/deep-learning-practice/course@v0.1.0"'
>>> colab_url("notebooks/00_workflow.ipynb", version="0.1.0")
'https://colab.research.google.com/github/deep-learning-practice/course/blob/v0.1.0/notebooks/00_workflow.ipynb'
>>> on_colab({})
False
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any, Final

from course_utils import __version__, profiles

#: The course repository. The only place its address is written.
REPO_URL: Final = "https://github.com/deep-learning-practice/course"
#: Name of the distribution that provides ``course_utils``.
DISTRIBUTION: Final = "course-utils"
#: Cell tags that mark the two cells ``course release`` writes into every master.
HEADER_TAG: Final = "course-header"
SETUP_TAG: Final = "course-setup"
#: Notebook metadata that makes Colab open a lesson on a GPU runtime (the lessons train
#: networks; on a CPU-only runtime they still run, in the ``cpu`` profile).
COLAB_METADATA: Final = {"accelerator": "GPU", "colab": {"gpuType": "T4", "provenance": []}}

_COLAB_BADGE: Final = "https://colab.research.google.com/assets/colab-badge.svg"
_GITHUB_BADGE: Final = "https://img.shields.io/badge/View%20on-GitHub-181717?logo=github"


def release_tag(version: str | None = None) -> str:
    """Git tag of a release: ``v`` + the package version (default: this one).

    >>> release_tag("1.2.3")
    'v1.2.3'
    """
    return f"v{__version__ if version is None else _check_version(version)}"


def on_colab(modules: Mapping[str, Any] | None = None) -> bool:
    """Whether this Python runs inside Google Colab (``google.colab`` is loaded).

    ``modules`` defaults to ``sys.modules``; tests pass their own.

    >>> on_colab({"google.colab": object()})
    True
    """
    return "google.colab" in (sys.modules if modules is None else modules)


def install_command(version: str | None = None, *, repo_url: str = REPO_URL) -> str:
    """The ``pip`` command that installs ``course_utils`` pinned to a release tag.

    TensorFlow is not pulled in: Colab ships its own build.

    >>> install_command("0.2.0", repo_url="https://example.org/course")
    'pip install --quiet "course-utils @ git+https://example.org/course@v0.2.0"'
    """
    return f'pip install --quiet "{DISTRIBUTION} @ git+{repo_url}@{release_tag(version)}"'


def github_url(path: str, *, version: str | None = None, repo_url: str = REPO_URL) -> str:
    """Address of a repository file at a release tag on GitHub.

    >>> github_url("notebooks/00_workflow.ipynb", version="0.1.0")
    'https://github.com/deep-learning-practice/course/blob/v0.1.0/notebooks/00_workflow.ipynb'
    """
    return f"{repo_url}/blob/{release_tag(version)}/{_check_path(path)}"


def colab_url(path: str, *, version: str | None = None, repo_url: str = REPO_URL) -> str:
    """Address that opens a repository notebook at a release tag in Colab.

    >>> colab_url("notebooks/x.ipynb", version="1.0.0", repo_url="https://github.com/a/b")
    'https://colab.research.google.com/github/a/b/blob/v1.0.0/notebooks/x.ipynb'
    """
    prefix = "https://github.com/"
    if not repo_url.startswith(prefix):
        raise ValueError(f"repo_url must be a GitHub address ({prefix}...), got {repo_url!r}")
    repo = repo_url.removeprefix(prefix).rstrip("/")
    return (
        f"https://colab.research.google.com/github/{repo}/blob/{release_tag(version)}/"
        f"{_check_path(path)}"
    )


def header_cell_source(title: str, path: str, *, version: str | None = None) -> str:
    """Markdown of a lesson's first cell: its title and the Colab / GitHub buttons.

    ``path`` is the student notebook's path in the repository.

    >>> print(header_cell_source("00 Workflow", "notebooks/00_workflow.ipynb", version="0.1.0"))
    ... # doctest: +NORMALIZE_WHITESPACE +ELLIPSIS
    # 00 Workflow
    <BLANKLINE>
    [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab...)
    [![View on GitHub](...)](https://github.com/deep-learning-practice/course/blob/v0.1.0/...)
    """
    title = title.strip()
    if not title or "\n" in title:
        raise ValueError(f"title must be one non-empty line, got {title!r}")
    return (
        f"# {title}\n\n"
        f"[![Open In Colab]({_COLAB_BADGE})]({colab_url(path, version=version)})\n"
        f"[![View on GitHub]({_GITHUB_BADGE})]({github_url(path, version=version)})"
    )


def setup_cell_source(version: str | None = None) -> str:
    """Python source of every lesson's set-up cell.

    On Colab (and only there) a missing ``course_utils`` is installed with
    :func:`install_command`; anywhere else a missing package is an error that
    says how to install it. Then :func:`setup_notebook` runs.

    >>> "%pip install" in setup_cell_source("0.1.0")
    True
    """
    return (
        "# Set-up: on Colab, install the course helpers pinned to this release;\n"
        "# anywhere else they are installed already and this installs nothing.\n"
        "try:\n"
        "    from course_utils import notebook\n"
        "except ImportError:\n"
        "    import sys\n"
        "\n"
        '    if "google.colab" not in sys.modules:\n'
        "        raise\n"
        f"    %{install_command(version)}\n"
        "    from course_utils import notebook\n"
        "\n"
        "profile = notebook.setup_notebook()"
    )


def setup_notebook(profile: str | None = None, *, report: bool = True) -> profiles.Profile:
    """Prepare a notebook session and return its runtime profile.

    Quiets TensorFlow's start-up log (and AutoGraph, which in an interactive session
    echoes its warnings to the notebook), turns on GPU memory growth, makes Matplotlib
    figures returned by the course helpers display as PNG, and (``report=True``)
    prints the device report with :func:`print_setup_report`. ``profile`` forces a
    profile; by default :func:`course_utils.profiles.get_profile` picks it (``smoke``
    while nbgrader validates or grades).

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
    chosen = profiles.get_profile(profile if profile is not None else devices.profile)
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

        device.print_device_report(report)
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


def _check_version(version: str) -> str:
    text = str(version).strip().removeprefix("v")
    if not text or any(ch.isspace() for ch in text):
        raise ValueError(f"version must look like 1.2.3, got {version!r}")
    return text


def _check_path(path: str) -> str:
    text = os.fspath(path).replace("\\", "/").lstrip("/")
    if not text or ".." in text.split("/"):
        raise ValueError(f"path must be a file path inside the repository, got {path!r}")
    return text
