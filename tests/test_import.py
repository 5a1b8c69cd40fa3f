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
