"""The package as a user gets it: `python -m build`, the files it ships, and a lesson run
from the wheel in a fresh environment with only the student-side dependencies.

This is what Colab does with the set-up cell (install course-utils, no nbgrader, no
JupyterLab, then run a notebook), and what `make test` checks in CI: the sdist and the
wheel are built with `python -m build` (isolated, setuptools from the package index), their
contents are inspected, the wheel is installed with its `[cpu]` extra into a new virtual
environment (plus ipykernel, the Jupyter kernel every notebook front end brings), and a
solved lesson runs there headless with nbclient in the smoke profile. pip resolves with
the test environment's versions as constraints, so its cache serves every reinstall.
"""

from __future__ import annotations

import email
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import nbformat
import pytest
from conftest import solve_lesson
from nbclient import NotebookClient

from course_utils import __version__
from course_utils.runtime import install

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
#: The lesson run from the wheel: it loads the base network shipped in course_utils/assets.
LESSON = "04_transfer_learning"
#: What only instructors need (the `course` extra): never in a student's environment.
INSTRUCTOR_ONLY = ("nbgrader", "jupyterlab")


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> dict[str, Path]:
    """The sdist and the wheel, as `python -m build` makes them (the wheel from the sdist)."""
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--outdir", out, ROOT], timeout=600)
    sdists, wheels = sorted(out.glob("*.tar.gz")), sorted(out.glob("*.whl"))
    assert len(sdists) == 1 and len(wheels) == 1, sorted(p.name for p in out.iterdir())
    return {"sdist": sdists[0], "wheel": wheels[0]}


def _package_files() -> set[str]:
    """course_utils/ as it must ship: every module and asset, and py.typed."""
    files = {p.relative_to(ROOT).as_posix() for p in (ROOT / "course_utils").rglob("*")
             if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}
    assert "course_utils/py.typed" in files, "course_utils/py.typed is missing from the tree"
    assert any(f.startswith("course_utils/assets/") for f in files)
    return files


@pytest.mark.slow
def test_the_wheel_ships_the_package_its_typing_marker_assets_and_license(dist):
    with zipfile.ZipFile(dist["wheel"]) as whl:
        names = set(whl.namelist())
        info = f"course_utils-{__version__}.dist-info"
        metadata = email.message_from_bytes(whl.read(f"{info}/METADATA"))
        license_text = whl.read(f"{info}/licenses/LICENSE").decode()
    missing = _package_files() - names
    assert not missing, f"the wheel lacks {sorted(missing)}"
    assert "MIT License" in license_text and metadata["License-Expression"] == "MIT"
    urls = dict(u.split(", ", 1) for u in metadata.get_all("Project-URL"))
    assert urls["Repository"] == PYPROJECT["project"]["urls"]["Repository"]
    # The README is the package page: every link must work there, so none is relative.
    targets = re.findall(r"!?\[[^\]]*\]\(([^)\s]+)\)", metadata.get_payload())
    assert targets and all(re.match(r"https?://|#", t) for t in targets), targets


@pytest.mark.slow
def test_the_sdist_builds_the_same_package_and_ships_no_tests_without_their_fixtures(dist):
    with tarfile.open(dist["sdist"]) as sdist:
        top = f"course_utils-{__version__}/"
        names = {m.name.removeprefix(top) for m in sdist.getmembers() if m.isfile()}
    for needed in ("pyproject.toml", "README.md", "LICENSE", *_package_files()):
        assert needed in names, f"the sdist lacks {needed}"
    tests = sorted(n for n in names if n.startswith("tests/"))
    # Either a test suite that runs (its conftest and fixtures with it) or none: none,
    # since the tests need the whole repository (masters, notebooks, a browser).
    assert tests == [], f"the sdist ships tests it cannot run: {tests}"


@pytest.mark.slow
def test_a_lesson_runs_from_the_wheel_in_a_fresh_environment_with_student_dependencies(
        dist, tmp_path, monkeypatch):
    env = tmp_path / "env"
    _run([sys.executable, "-m", "venv", env], timeout=300)
    python = env / "bin" / "python"
    # The versions this test environment runs with: pip takes them from its cache.
    frozen = _run([sys.executable, "-m", "pip", "freeze", "--exclude-editable"]).stdout
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("\n".join(line for line in frozen.splitlines()
                                      if not line.lower().startswith("course-utils")) + "\n")
    _run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
          "--constraint", constraints, f"{dist['wheel']}[cpu]", "ipykernel"], timeout=1800)

    installed = _run([python, "-m", "pip", "list", "--format=freeze"]).stdout.lower()
    for name in INSTRUCTOR_ONLY:
        assert f"\n{name}==" not in f"\n{installed}", f"{name} came with the student install"
    found = _run([python, "-c", "from course_utils.runtime import install, tf_setup; "
                  "print(install.repository_url()); print(tf_setup.import_tensorflow().__name__)"],
                 cwd=tmp_path).stdout.split()
    assert found == [PYPROJECT["project"]["urls"]["Repository"], "tensorflow"]
    version = _run([env / "bin" / "course", "--version"], cwd=tmp_path).stdout
    assert version.strip() == f"course-utils {__version__}"

    # The kernel of the fresh environment, registered in a folder of its own.
    kernels = tmp_path / "jupyter"
    _run([python, "-m", "ipykernel", "install", "--prefix", kernels, "--name", "fresh-course"])
    monkeypatch.setenv("JUPYTER_PATH", str(kernels / "share" / "jupyter"))
    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    monkeypatch.delenv("PYTHONPATH", raising=False)
    work = tmp_path / "work"
    nb = nbformat.read(solve_lesson(LESSON, work), as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(
        "import course_utils, sys\nprint(course_utils.__file__)\nprint(sys.prefix)"))
    NotebookClient(nb, timeout=600, kernel_name="fresh-course",
                   resources={"metadata": {"path": str(work)}}).execute()
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, errors[:1]
    where = "".join(o.get("text", "") for o in nb.cells[-1].outputs).split()
    assert where[0].startswith(str(env)) and where[1] == str(env), (
        f"the lesson did not run on the installed wheel: {where}")
    setup_output = "".join(o.get("text", "") for o in nb.cells[1].outputs)
    assert "Profile smoke" in setup_output


def test_the_dev_extra_brings_the_build_tool_ci_runs():
    dev = PYPROJECT["project"]["optional-dependencies"]["dev"]
    assert any(re.match(r"build\b", req) for req in dev), dev
    assert install.DISTRIBUTION == PYPROJECT["project"]["name"]
