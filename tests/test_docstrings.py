"""Every example in every docstring of ``course_utils`` runs and prints what it shows.

The docstrings are the package's first documentation (STYLE.md: examples a student can
paste), so a stale example is a bug. One parametrised test covers every registered
submodule, the lesson modules included.
"""

from __future__ import annotations

import doctest
import importlib

import pytest

import course_utils

#: Modules whose docstrings hold no example: the command line and its demo, which
#: ``tests/test_demo.py`` and the CLI tests run for real.
WITHOUT_EXAMPLES = {"cli", "demo"}


@pytest.mark.parametrize("name", sorted(course_utils._SUBMODULES))
def test_docstring_examples_run(name):
    module = importlib.import_module(f"course_utils.{name}")
    for lazy in getattr(module, "_LAZY_CLASSES", {}):
        getattr(module, lazy)  # assemble the Keras subclasses, so their examples see them
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"course_utils.{name}: {result.failed} docstring example(s) fail"
    if name not in WITHOUT_EXAMPLES:
        assert result.attempted > 0, f"course_utils.{name}: a public module needs an example"
