"""nbgrader configuration of the course (nbgrader 0.9).

This folder is the nbgrader course root: lesson masters live in
``source/<NN_topic>/<NN_topic>.ipynb``; ``release/``, ``submitted/``,
``autograded/``, ``feedback/`` and ``gradebook.db`` are generated and not
committed. ``course release`` and ``course grade`` read this file; so do
``nbgrader`` commands run here and the formgrader in JupyterLab.
"""

import os

c = get_config()  # noqa: F821 (provided by traitlets when it loads this file)

HERE = os.path.dirname(os.path.abspath(__file__))

# --- the course --------------------------------------------------------------------------
c.CourseDirectory.course_id = "dl-practice"
# Lessons write their runs (history.json, curves.png, checkpoints) to runs/: never copy them.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "runs"]

# Every step that runs a lesson (generate: autotests; validate; autograde) runs it in the
# small `smoke` profile unless a profile was asked for explicitly. While autograding or
# validating nbgrader also sets NBGRADER_EXECUTION, which course_utils reads as `smoke`.
os.environ.setdefault("COURSE_PROFILE", "smoke")

# --- generating the student version -------------------------------------------------------
# Our templates for `### AUTOTEST` / `### HASHED AUTOTEST` lines. nbgrader looks for
# autotests.yml in the assignment folder, then in the working directory; an absolute path
# makes it find ours wherever it is run from.
c.InstantiateTests.autotest_filename = os.path.join(HERE, "autotests.yml")

# --- autograding ----------------------------------------------------------------------------
# Every notebook runs in the `python3` kernel, whatever kernel the submission names.
c.Execute.kernel_name = "python3"
# Per-cell limit. A smoke-profile training cell takes a few seconds; 300 s leaves a slow
# grading machine ample room and still stops an infinite loop (the kernel is interrupted
# and grading goes on with the next cell). `course grade` adds a whole-notebook guard.
c.Execute.timeout = 300
c.Execute.interrupt_on_timeout = True
# nbclient does not run a cell tagged `skip-execution`, and a test cell that never runs
# raises nothing, so it would get full marks: the course's step before Execute takes that
# tag off every cell (`course grade` then skips the demonstrations no graded cell needs).
from nbgrader.converters import Autograde  # noqa: E402 (a config file, read top to bottom)

from course_utils.instructor.grading.demonstrations import planned_steps  # noqa: E402

c.Autograde.autograde_preprocessors = planned_steps(
    Autograde.class_traits()["autograde_preprocessors"].default())
# A deleted test cell is put back from the gradebook and graded.
c.OverwriteCells.add_missing_cells = True
# Huge outputs are cut so autograded notebooks and feedback stay small.
c.LimitOutput.max_lines = 1000
c.LimitOutput.max_traceback = 100

# nbgrader gives zero to a test cell with *any* stderr output. TensorFlow, Keras, Python
# warnings and progress bars write there while correct code runs, so such output is
# dropped before grading. Errors (tracebacks) are not stderr streams: they still count.
STDERR_NOISE = (
    r"^\s*[IWEF]\d{4} \d\d:\d\d:\d\d",  # absl / TensorFlow C++ log lines (I0000 00:00:...)
    r"All log messages before absl::InitializeLog",
    r"oneDNN custom operations|cpu_feature_guard|rebuild TensorFlow|TF-TRT",
    r"\b(?:tensorflow|keras|absl|XLA|CUDA|cuDNN|cuBLAS|cuFFT)\b",
    r"\b[A-Za-z]*Warning\b",  # UserWarning, DeprecationWarning, ... and `warnings.warn`
    r"\d+%\|",  # tqdm progress bars
    r"\d+(?:\.\d+)?\s*(?:it/s|s/it)\b",
    r"\u2501|Epoch \d+/\d+",  # Keras progress bar
)
c.IgnorePattern.enabled = True
c.IgnorePattern.pattern = "(?im)" + "|".join(f"(?:{p})" for p in STDERR_NOISE)
