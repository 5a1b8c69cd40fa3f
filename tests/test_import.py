"""`import course_utils` does no work: no TensorFlow, no data, no network."""

import subprocess
import sys

PROBE = """
import sys, course_utils
from course_utils import labels, profiles, io, cli
mods = [m for m in ("tensorflow", "keras", "matplotlib.pyplot", "nbgrader") if m in sys.modules]
print(",".join(mods))
"""


def test_importing_the_package_and_cli_loads_no_heavy_library():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"imported at import time: {out.stdout.strip()}"
    assert out.stderr == ""


def test_submodules_load_lazily_on_attribute_access():
    import course_utils

    assert course_utils.labels.NUM_CLASSES == 12
    assert "labels" in dir(course_utils)
    try:
        course_utils.no_such_module  # noqa: B018
    except AttributeError as exc:
        assert "no_such_module" in str(exc)
    else:
        raise AssertionError("unknown attribute did not raise")


def test_every_registered_submodule_exists_and_imports_without_tensorflow():
    import importlib.util

    import course_utils

    missing = [m for m in course_utils._SUBMODULES
               if importlib.util.find_spec(f"course_utils.{m}") is None]
    assert not missing, f"registered in course_utils but not present: {missing}"
    probe = ("import sys, importlib, course_utils\n"
             "for m in sorted(course_utils._SUBMODULES): importlib.import_module('course_utils.' + m)\n"
             "print(','.join(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"a submodule imports {out.stdout.strip()} at import time"
