"""`import course_utils` does no work: no TensorFlow, no data, no network."""

import subprocess
import sys

PROBE = """
import sys, course_utils
from course_utils import labels
from course_utils.instructor import cli
from course_utils.runtime import profiles, io
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


#: Registered modules that define Keras subclasses (``class X(keras.callbacks.Callback)``):
#: they import Keras when they load, which is why ``course_utils`` loads them lazily.
KERAS_MODULES = {"callbacks"}


def test_every_registered_submodule_exists_and_imports_without_tensorflow():
    import importlib.util

    import course_utils

    missing = [m for m in course_utils._SUBMODULES
               if importlib.util.find_spec(f"course_utils.{m}") is None]
    assert not missing, f"registered in course_utils but not present: {missing}"
    light = sorted(course_utils._SUBMODULES - KERAS_MODULES)
    probe = ("import sys, importlib\n"
             f"for m in {light!r}: importlib.import_module('course_utils.' + m)\n"
             "print(','.join(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"a submodule imports {out.stdout.strip()} at import time"


def test_modules_of_keras_subclasses_import_keras_quietly():
    probe = ("import sys, importlib\n"
             f"for m in {sorted(KERAS_MODULES)!r}: importlib.import_module('course_utils.' + m)\n"
             "print('keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
    assert out.stderr == "", f"TensorFlow's start-up log leaked: {out.stderr}"
