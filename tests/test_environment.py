"""environment.yml (conda) and pyproject.toml (pip) declare the same dependencies."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
# pip name -> conda-forge name, where they differ
PIP_TO_CONDA = {"tensorflow-cpu": "tensorflow", "build": "python-build", "ml-dtypes": "ml_dtypes"}
# extras that conda users get from environment.yml ('gpu' is pip-only: CUDA wheels)
CONDA_EXTRAS = ("cpu", "course", "dev", "postgres", "cluster")


def _pyproject_requirements() -> dict[str, SpecifierSet]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in CONDA_EXTRAS:
        reqs += project["optional-dependencies"][extra]
    out: dict[str, SpecifierSet] = {}
    for text in reqs:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate({"sys_platform": "linux",
                                                                "python_version": "3.11"}):
            continue  # the conda file describes one platform-neutral environment
        out[PIP_TO_CONDA.get(req.name, req.name)] = req.specifier
    return out


def _conda_requirements() -> dict[str, SpecifierSet]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    out: dict[str, SpecifierSet] = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict) or dep in ("pip",):
            continue
        req = Requirement(dep.replace(" ", ""))
        if req.name == "python":
            continue
        out[req.name] = req.specifier
    return out


def test_conda_environment_lists_every_pip_dependency_with_the_same_versions():
    pip_reqs, conda_reqs = _pyproject_requirements(), _conda_requirements()
    missing = sorted(set(pip_reqs) - set(conda_reqs))
    assert not missing, f"environment.yml lacks {missing} from pyproject.toml"
    extra = sorted(set(conda_reqs) - set(pip_reqs))
    assert not extra, f"environment.yml has {extra} that pyproject.toml does not declare"
    differ = {n: (str(pip_reqs[n]), str(conda_reqs[n])) for n in pip_reqs
              if pip_reqs[n] != conda_reqs[n]}
    assert not differ, f"version ranges differ (pyproject, environment.yml): {differ}"


def test_conda_environment_installs_the_package_itself_without_pulling_pip_deps():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = [d for d in env["dependencies"] if isinstance(d, dict)][0]["pip"]
    assert any("--editable ." in line and "--no-deps" in line for line in pip_section)
    assert "conda-forge" in env["channels"]


def test_python_floor_agrees():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda_python = next(d for d in env["dependencies"]
                        if isinstance(d, str) and Requirement(d).name == "python")
    assert project["requires-python"] == conda_python.removeprefix("python")
