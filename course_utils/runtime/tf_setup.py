"""Import TensorFlow and Keras quietly, on first use only.

``import course_utils`` never imports TensorFlow (it takes seconds); every
module that needs it calls :func:`import_tensorflow` or :func:`import_keras`
inside the function that uses it (a module that defines Keras classes calls it
when it loads, and its package loads that module on first use). The first call
silences TensorFlow's C++ start-up log and its INFO lines, so notebook outputs
stay clean. Python warnings stay visible: a warning from Keras or TensorFlow
is usually about the student's code, and lesson 05 shows some on purpose.

Examples
--------
>>> keras = import_keras()       # doctest: +SKIP
>>> keras.__version__.startswith("3.")  # doctest: +SKIP
True
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping
from types import ModuleType
from typing import Any

_QUIET_ENV = {
    "TF_CPP_MIN_LOG_LEVEL": "2",  # hide INFO and WARNING lines from the C++ runtime
}

# Lines the C++ runtime prints to file descriptor 2 while TensorFlow loads,
# whatever TF_CPP_MIN_LOG_LEVEL says. They carry no information for a student.
_STARTUP_NOISE = re.compile(
    r"absl::InitializeLog|oneDNN custom operations|Unable to register cu(DNN|FFT|BLAS)"
    r"|computation placer already registered|TF-TRT Warning|This TensorFlow binary is optimized"
    r"|rebuild TensorFlow with the appropriate compiler flags|cuda_(dnn|fft|blas)\.cc"
    r"|Could not find cuda drivers|successful NUMA node read|^\s*$"
)


def quiet_environment() -> None:
    """Set the environment variables that keep TensorFlow's start-up silent.

    Safe to call many times; values already set by the user win.
    """
    for key, value in _QUIET_ENV.items():
        os.environ.setdefault(key, value)


def import_tensorflow() -> ModuleType:
    """Return the ``tensorflow`` module, importing it quietly the first time.

    Raises ``ImportError`` with install instructions when TensorFlow is missing, and
    one that names the real cause when TensorFlow is installed but fails to import (a
    broken ``google.protobuf``, say); the original error is chained to it.
    """
    quiet_environment()
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    try:
        with _filtered_stderr():
            import tensorflow as tf
    except ImportError as exc:
        raise ImportError(_import_failure(exc)) from exc
    tf.get_logger().setLevel(logging.ERROR)
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:  # pragma: no cover
        pass
    _ignore_dataset_shuffle_warning()
    return tf


def _ignore_dataset_shuffle_warning() -> None:
    """Filter the one Keras warning every ``fit`` on a ``tf.data.Dataset`` prints.

    ``Model.fit`` defaults to ``shuffle=True``, and Keras 3 warns that it ignores it
    when ``x`` is a dataset (a dataset shuffles itself: the course's do, every epoch).
    Every lesson fits on datasets, so the warning would follow each ``fit`` and teach
    nothing. Only this message, from Keras, is filtered; every other
    warning stays visible.
    """
    warnings.filterwarnings(
        "ignore",
        message=r"`shuffle=True` was passed, but will be ignored since the data `x` was "
                r"provided as a tf\.data\.Dataset",
        category=UserWarning,
        module=r"keras\.",
    )


def _import_failure(exc: ImportError) -> str:
    """What to tell a user whose ``import tensorflow`` raised ``exc``.

    >>> print(_import_failure(ModuleNotFoundError("No module named 'tensorflow'", name="tensorflow")))
    ... # doctest: +ELLIPSIS
    TensorFlow is not installed for ...: install the course with its CPU build: in a clone ...
    >>> print(_import_failure(ImportError("cannot import name 'runtime_version' from "
    ...                                   "'google.protobuf'", name="google.protobuf")))
    ... # doctest: +ELLIPSIS
    TensorFlow is installed but importing it failed in google.protobuf: cannot import name ...
    """
    from course_utils.runtime import install

    if isinstance(exc, ModuleNotFoundError) and exc.name == "tensorflow":
        return (
            f"TensorFlow is not installed for {sys.executable}: install the course with its "
            f"CPU build: {install.install_hint('cpu')} (the CUDA build: [gpu] instead of "
            f"[cpu]); on Colab TensorFlow is already there."
        )
    where = f" in {exc.name}" if exc.name else ""
    return (
        f"TensorFlow is installed but importing it failed{where}: {exc}. "
        f"`{sys.executable} -m pip check` lists the installed packages that do not fit "
        f"together; reinstalling the course's TensorFlow build mends most cases: "
        f"{install.install_hint('cpu')}."
    )


def import_keras() -> ModuleType:
    """Return the ``keras`` (3.x) module after a quiet TensorFlow import."""
    import_tensorflow()
    import keras

    return keras


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow (``keras.utils.set_random_seed``)."""
    import_keras().utils.set_random_seed(int(seed))


def load_on_first_use(package: str, where: Mapping[str, str],
                      ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's ``__getattr__`` and ``__dir__`` that import its Keras classes on demand.

    ``where`` maps each class name to the submodule of ``package`` that defines it; a
    module that defines Keras classes imports Keras when it loads, so the package
    loads it only when one of its classes is first used (PEP 562) and importing the
    package stays free of TensorFlow. Use it as the last lines of an ``__init__.py``::

        __getattr__, __dir__ = load_on_first_use(__name__, {"ExtraValidation": "callbacks"})

    Examples
    --------
    >>> getattr_, dir_ = load_on_first_use("json", {"JSONDecoder": "decoder"})
    >>> getattr_("JSONDecoder").__name__, "JSONDecoder" in dir_()
    ('JSONDecoder', True)
    >>> getattr_("nothing")
    Traceback (most recent call last):
    ...
    AttributeError: module 'json' has no attribute 'nothing'
    """
    import importlib

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{where[name]}"), name)
        setattr(sys.modules[package], name, value)  # later lookups skip this hook
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(where))

    return __getattr__, __dir__


@contextlib.contextmanager
def _filtered_stderr() -> Iterator[None]:
    """Send file descriptor 2 to a temporary file, then replay what is not noise."""
    try:
        fd = sys.__stderr__.fileno() if sys.__stderr__ else 2
        saved = os.dup(fd)
    except (OSError, ValueError):  # no real stderr (embedded interpreters)
        yield
        return
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), fd)
        try:
            yield
        finally:
            os.dup2(saved, fd)
            os.close(saved)
            sink.seek(0)
            text = sink.read().decode("utf-8", "replace")
    kept = [line for line in text.splitlines() if not _STARTUP_NOISE.search(line)]
    if kept:
        print("\n".join(kept), file=sys.stderr)
