"""Every example in every docstring of ``course_utils`` runs and prints what it shows.

The docstrings are the package's first documentation (STYLE.md: examples a student can
paste), so a stale example is a bug. One parametrised test covers every registered
submodule, the lesson modules included.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import course_utils


def _modules() -> list[str]:
    """Every registered submodule, and every module inside those that are packages."""
    names = []
    for name in sorted(course_utils._SUBMODULES):
        names.append(name)
        module = importlib.import_module(f"course_utils.{name}")
        if hasattr(module, "__path__"):
            names += [info.name.removeprefix("course_utils.")
                      for info in pkgutil.walk_packages(module.__path__, f"{module.__name__}.")
                      if not info.name.endswith(".__main__")]
    return names


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples_run(name):
    module = importlib.import_module(f"course_utils.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"course_utils.{name}: {result.failed} docstring example(s) fail"
    assert result.attempted > 0, f"course_utils.{name}: a public module needs an example"
