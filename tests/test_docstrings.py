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

#: Modules whose docstrings hold no example: the command lines and the demo, which
#: ``tests/test_demo.py`` and the CLI tests run for real, and the grading worker and
#: gradebook, which only a real grading run exercises (``tests/test_grading.py``).
WITHOUT_EXAMPLES = {"cli", "demo", "grading.cli", "grading.worker", "grading.gradebook"}


def _modules() -> list[str]:
    """Every registered submodule, and the modules of those that are packages."""
    names = []
    for name in sorted(course_utils._SUBMODULES):
        names.append(name)
        module = importlib.import_module(f"course_utils.{name}")
        if hasattr(module, "__path__"):
            names += [f"{name}.{info.name}" for info in pkgutil.iter_modules(module.__path__)
                      if info.name != "__main__"]
    return names


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples_run(name):
    module = importlib.import_module(f"course_utils.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"course_utils.{name}: {result.failed} docstring example(s) fail"
    if name not in WITHOUT_EXAMPLES:
        assert result.attempted > 0, f"course_utils.{name}: a public module needs an example"
