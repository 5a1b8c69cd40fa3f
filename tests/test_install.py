"""Installing the course: one repository setting, and every message names a command that works.

`course-utils` is not on the package index. Every "install it with ..." message names
a command built from the one setting (`[project.urls] Repository` in pyproject.toml):
the repository at the release tag, or an editable install in a clone. A fork changes that
setting and `course release` writes it into every notebook. The wheel itself is built and
installed into a fresh environment in `test_packaging.py`.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest
from packaging.requirements import Requirement

from course_utils import __version__
from course_utils.instructor import cells, release
from course_utils.runtime import install, tf_setup

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SETTING = PYPROJECT["project"]["urls"]["Repository"]


# --------------------------------------------------------------------------- the setting


def test_the_repository_is_read_from_the_one_setting_in_pyproject():
    assert install.repository_url() == SETTING
    assert install.install_source() == f"git+{SETTING}@v{__version__}"


@pytest.mark.parametrize("extra", [None, "cpu", "gpu", "course", "postgres"])
def test_install_commands_are_pip_requirements_for_the_repository_at_the_release_tag(extra):
    command = install.install_command(extra)
    assert command.startswith('pip install "') and command.endswith('"')
    req = Requirement(command.removeprefix('pip install "').removesuffix('"'))
    assert req.name == PYPROJECT["project"]["name"] == install.DISTRIBUTION
    assert req.url == f"git+{SETTING}@v{__version__}"
    assert req.extras == ({extra} if extra else set())
    assert req.extras <= set(PYPROJECT["project"]["optional-dependencies"])


def test_the_setting_is_read_from_the_installed_metadata_without_a_source_checkout(
        tmp_path, monkeypatch):
    # After `pip install` of the wheel (Colab, a packager) there is no pyproject.toml:
    # the package's metadata carries the address (checked for real in test_packaging).
    monkeypatch.setattr(install, "_PACKAGE_ROOT", tmp_path)
    monkeypatch.setattr(install, "_url_from_metadata", lambda: "https://example.org/c.git")
    assert install.repository_url() == "https://example.org/c.git"
    monkeypatch.setattr(install, "_url_from_metadata", lambda: None)
    with pytest.raises(LookupError, match=r"expected a 'Repository = .*\[project.urls\]"):
        install.repository_url()


def test_bad_settings_and_arguments_are_refused_with_what_was_expected():
    with pytest.raises(ValueError, match="repository: expected an https://"):
        install.install_command(repo_url="git@github.com:a/b.git")
    with pytest.raises(ValueError, match="extra: expected the name of one of the course's"):
        install.install_command("cpu]; rm -rf")
    with pytest.raises(ValueError, match="version: expected a version like 1.2.3"):
        install.install_command(version="1.0 beta")


# --------------------------------------------------------------------------- the messages

# `pip install course-utils[...]` without " @ <url>": pip would look it up on the index.
_INDEX_LOOKUP = re.compile(r"pip install [^\n]*?course-utils(\[[a-z{},]+\])?(?![\[\w-])(?!\s*@)")


def _message_sources() -> list[Path]:
    files = sorted((ROOT / "course_utils").rglob("*.py"))
    return [p for p in files if p.name != "install.py"] + [ROOT / "README.md",
                                                          ROOT / "CONTRIBUTING.md"]


@pytest.mark.parametrize("path", _message_sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_message_tells_users_to_install_course_utils_from_the_package_index(path):
    hits = [line.strip() for line in path.read_text().splitlines() if _INDEX_LOOKUP.search(line)]
    assert not hits, (
        f"{path.relative_to(ROOT)}: `pip install course-utils[...]` cannot work, the package "
        f"is not on the index; build the command with course_utils.runtime.install "
        f"(install_hint / install_command): {hits}")


def test_readme_names_the_command_that_installs_this_release():
    assert install.install_command("cpu") in (ROOT / "README.md").read_text()


def test_missing_tensorflow_message_names_working_commands():
    missing = ModuleNotFoundError("No module named 'tensorflow'", name="tensorflow")
    message = tf_setup._import_failure(missing)
    assert message.startswith("TensorFlow is not installed")
    assert install.install_command("cpu") in message and "pip install -e '.[cpu]'" in message


# --------------------------------------------------------------------------- TensorFlow import


def _import_tensorflow_with(tmp_path: Path, tensorflow_init: str) -> str:
    """Import TensorFlow through the course with a fake ``tensorflow`` package first on the
    path; return the message of the ImportError the course raises."""
    fake = tmp_path / "fake" / "tensorflow"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(tensorflow_init)
    code = textwrap.dedent("""
        import sys
        from course_utils.runtime import tf_setup
        try:
            tf_setup.import_tensorflow()
        except ImportError as exc:
            print(exc)
            print("cause:", repr(exc.__cause__))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env={"PYTHONPATH": str(fake.parent), "PATH": ""},
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_broken_dependency_inside_tensorflow_is_reported_as_itself(tmp_path):
    # What a protobuf too old or too new for TensorFlow does, from inside TensorFlow.
    out = _import_tensorflow_with(
        tmp_path, "from google.protobuf import runtime_version_that_is_not_there\n")
    assert "TensorFlow is not installed" not in out
    assert "TensorFlow is installed but importing it failed in google.protobuf" in out
    assert "runtime_version_that_is_not_there" in out and "pip check" in out
    assert "cause: ImportError" in out  # the original error is chained


def test_a_missing_tensorflow_is_reported_as_not_installed(tmp_path):
    out = _import_tensorflow_with(
        tmp_path, "raise ModuleNotFoundError(\"No module named 'tensorflow'\", "
                  "name='tensorflow')\n")
    assert out.startswith("TensorFlow is not installed for ")
    assert install.install_command("cpu") in out


# --------------------------------------------------------------------------- a fork


def _fork(tmp_path: Path, url: str) -> Path:
    """A fork of the course: its pyproject.toml with another address, one toy lesson."""
    fork = tmp_path / "fork"
    (fork / "assignments" / "source" / "01_toy").mkdir(parents=True)
    text = (ROOT / "pyproject.toml").read_text().replace(SETTING, url)
    (fork / "pyproject.toml").write_text(text)
    for name in release.COURSE_FILES:
        (fork / "assignments" / name).write_bytes((ROOT / "assignments" / name).read_bytes())
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# 01 Toy lesson"),
        nbformat.v4.new_code_cell("x = 1"),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                "language": "python"}})
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"c{i}"
    nbformat.write(nb, fork / "assignments" / "source" / "01_toy" / "01_toy.ipynb")
    return fork


def test_a_fork_changes_one_setting_and_course_release_writes_it_into_the_notebooks(tmp_path):
    url = "https://github.com/someone-else/their-course"
    fork = _fork(tmp_path, url)
    report = release.release_lessons(course_root=fork / "assignments")
    assert report.ok and report.written == (fork / "notebooks" / "01_toy.ipynb",)
    for path in (fork / "notebooks" / "01_toy.ipynb",
                 fork / "assignments" / "source" / "01_toy" / "01_toy.ipynb"):
        text = path.read_text()
        assert SETTING not in text, f"{path.name} still names {SETTING}"
        header, setup = nbformat.reads(text, as_version=4).cells[:2]
        assert f"colab.research.google.com/github/someone-else/their-course/blob/v{__version__}/" \
               in header.source
        assert f"{url}/blob/v{__version__}/notebooks/01_toy.ipynb" in header.source
        assert f'%pip install --quiet "course-utils @ git+{url}@v{__version__}"' in setup.source
        assert f'course-utils[cpu] @ git+{url}@v{__version__}' in setup.source


def test_a_course_hosted_outside_github_gets_a_link_to_its_repository_instead_of_colab():
    url = "https://gitlab.example.org/course/dl.git"
    header = cells.header_cell_source("01 Toy", "notebooks/01_toy.ipynb", repo_url=url)
    assert "colab" not in header.lower() and url in header
    assert f"git+{url}@v{__version__}" in cells.setup_cell_source(repo_url=url)


# --------------------------------------------------------------------------- README


def test_readme_links_are_absolute_so_they_work_on_a_package_page():
    text = (ROOT / "README.md").read_text()
    targets = re.findall(r"!?\[[^\]]*\]\(([^)\s]+)\)", text)
    assert targets, "no links found in README.md"
    relative = [t for t in targets if not re.match(r"https?://|#", t)]
    assert not relative, f"relative links break on a package page: {relative}"
    tag = f"v{__version__}"
    for target in targets:
        into_repo = re.match(r"https://[^/]+/.+?/(?:-/)?(?:blob|raw)/[^/]+/(.+)", target)
        if not into_repo or not (ROOT / into_repo.group(1)).exists():
            continue  # a link elsewhere
        assert target.startswith((f"{SETTING}/blob/{tag}/", f"{SETTING}/raw/{tag}/")), (
            f"README links to {target}: a file of this repository is linked at "
            f"{SETTING}/blob/{tag}/... (or raw/ for an image), the repository setting and the "
            f"release tag")
