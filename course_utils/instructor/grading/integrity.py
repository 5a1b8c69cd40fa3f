"""A static scan of a submission for code that reaches into the grading machinery.

nbgrader grades a test cell by whether it raised. A student cell that runs before the
tests can make them pass without solving anything: an IPython hook that clears the
error, an input or AST transformer that wraps later cells in ``try/except``, an object
equal to everything, a shadowed builtin, a patched ``numpy.allclose`` or
``workflow.check_splits``. Each of those needs one of a small set of levers, and this
module looks for the levers, in the grader's own process, on the notebook's JSON,
before the kernel ever runs (the student's code cannot intercept it):

- IPython's machinery: ``get_ipython``, ``IPython``/``ipykernel`` imports, magics other
  than harmless ones (``%matplotlib``, ``%time``, ``%timeit``, ``%pip``, ``!ls`` ...),
  magics typed without ``%`` (IPython's automagic), ``In``/``Out`` history;
- interpreter hooks and internals: ``sys.settrace``/``setprofile``/``excepthook``/
  ``displayhook``/``modules``, ``gc``, ``ctypes``, ``inspect``'s frames, the call stack
  (``traceback.extract_stack``, ``linecache``: the test's own lines), frame and code
  attributes, dunder attributes other than ``__name__``/``__doc__`` and friends;
- code the scan cannot read: ``exec``, ``eval``, ``compile``, ``__import__`` of a
  computed name, ``importlib``, pickles, modules that are not installed;
- names and namespaces: ``getattr`` with a computed name, ``setattr``, ``delattr``,
  ``globals()``, ``vars()``, ``locals()``, ``import builtins``, rebinding a builtin at
  module level (``all = ...``, ``def isinstance``, ``global float``), reading the test
  cells' private variables (``_expected``);
- monkeypatching: assigning, deleting or augmenting an attribute of a module or of an
  alias of one (``np.allclose = ...``, ``t = np.testing; t.assert_allclose = ...``),
  while attributes of ordinary objects stay free (``layer.trainable = False``);
- classes with comparison, conversion, arithmetic or lookup special methods
  (``__eq__``, ``__bool__``, ``__float__``, ``__array__``, ``__sub__``,
  ``__getattr__`` ...); ``__init__``, ``__call__``, ``__repr__``, ``__str__`` are fine.

Which cells: every code cell the student wrote or could edit, in the notebook the
worker runs (:func:`~course_utils.instructor.grading.submissions.notebook_to_grade`: a
``grade_id`` repeated in the submission is kept on one copy and stripped from the
others, which then run as the student's code). Cells that still carry the ``grade_id``
of a cell locked in the student version are put back from the gradebook by nbgrader's
``OverwriteCells`` before anything runs, so they are the instructor's code whatever the
submission holds; so is a verbatim copy of any code cell of the student version
(Jupyter's copy and paste, an unlocked instructor cell left as it was). A cell that does
not parse is not a finding: it fails its own task. A notebook with more code than the
scan reads (:data:`~course_utils.instructor.grading.parsing.MAX_SOURCE_CHARS`, six times
a solved lesson's) is one finding, read by no parser: parsing it would cost the grader
gigabytes of memory (see :mod:`~course_utils.instructor.grading.parsing`).

Limits, on purpose: a static scan cannot prove code harmless, only that it uses none
of these levers, and it reads names flow-insensitively (a name bound to a module
anywhere counts as one everywhere). Not seen: values that game a particular assert
without special methods (``float('nan')``), objects of installed libraries that compare
oddly (``np.ma.masked``), answers that call the course's reference implementations,
levers reached through library functions that resolve objects from strings (Keras
deserialisation, ``logging.config`` is flagged but not every such function), a module
handed around under a name the student also binds to something else, and the test
cells' variables read under a name the student binds too. File and process tricks are
the sandbox's job. A flag means "a person should look", never "cheated".

The rules live in :mod:`~course_utils.instructor.grading.integrity_rules`, what names are bound to
in :mod:`~course_utils.instructor.grading.integrity_names` and the walk over a cell's code in
:mod:`~course_utils.instructor.grading.integrity_scanner`; this module picks the cells to scan.

Examples
--------
>>> [f.describe() for f in scan_source("import numpy as np\\nnp.allclose = lambda *a: True")]
['line 2: replaces numpy.allclose: monkeypatches a module the tests use']
>>> scan_source("base.trainable = False\\nmodel.fit(x, y, epochs=2)")
[]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from course_utils.instructor.grading.integrity_names import Context
from course_utils.instructor.grading.integrity_rules import (
    CODE_MAGICS,
    HARMLESS_CELL_MAGICS,
    HARMLESS_LINE_MAGICS,
    PROTECTED_NAMES,
    Finding,
)
from course_utils.instructor.grading.integrity_scanner import scan_cell
from course_utils.instructor.grading.parsing import MAX_SOURCE_CHARS
from course_utils.instructor.grading.submissions import notebook_to_grade

__all__ = [
    "CODE_MAGICS", "HARMLESS_CELL_MAGICS", "HARMLESS_LINE_MAGICS", "PROTECTED_NAMES", "Finding",
    "scan_notebook", "scan_source",
]


# --------------------------------------------------------------------------- public API


def scan_source(source: str) -> list[Finding]:
    """The findings in one cell's source (IPython syntax allowed), in line order.

    ``cell`` and ``grade_id`` of the findings are ``None``. Names the source does not
    bind are taken to be what a lesson's set-up gives (``np`` is NumPy).

    >>> [f.reason for f in scan_source("%config InteractiveShell.ast_node_interactivity = 'all'")]
    ['%config runs an IPython magic that can change how later cells run']
    >>> scan_source("%matplotlib inline\\n!ls {RUN_DIR}\\nx = !pwd")
    []
    """
    if not isinstance(source, str):
        raise TypeError(f"source: expected str, got {type(source).__name__}")
    context = Context.build([source], own=[source])
    return scan_cell(source, context, None, None)


def scan_notebook(nb: Any, released: Any) -> list[Finding]:
    """The findings in every cell of ``nb`` the student wrote or could edit.

    ``nb`` is the submitted notebook and ``released`` the student version it was made
    from (both ``NotebookNode`` or plain dicts of the notebook's JSON). The scan reads the
    notebook the worker runs, a repeated ``grade_id`` kept on one copy only
    (:func:`~course_utils.instructor.grading.submissions.notebook_to_grade`). Cells that
    keep the id of a cell locked in ``released`` are put back by nbgrader before anything
    runs and are not scanned (a locked cell whose source differs counts as put back, not
    as the student's); a copy that lost its id is the student's code. Nor is a verbatim
    copy of any code cell of ``released`` scanned (the instructor's code).

    >>> import nbformat
    >>> meta = {"nbgrader": {"grade_id": "f", "solution": True, "grade": False}}
    >>> released = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("", metadata=meta)])
    >>> nb = nbformat.v4.new_notebook(cells=[
    ...     nbformat.v4.new_code_cell("def f(x):\\n    return x", metadata=meta),
    ...     nbformat.v4.new_code_cell("all = lambda *args: True")])
    >>> [f.describe() for f in scan_notebook(nb, released)]
    ['cell 1, line 1: rebinds the builtin all, which the tests rely on']
    """
    _cells(nb, "nb")
    released_cells = _cells(released, "released")
    # What the worker runs, repeated ids stripped: nbgrader's own DeduplicateIds then has
    # nothing left to strip, so every cell still carrying a grade_id keeps it.
    cells = _cells(notebook_to_grade(nb, released), "nb")
    locked = _locked_cells(released_cells)
    copies = {_normalise(_source(c)) for c in released_cells if _cell_type(c) == "code"}
    kept = {i for i, cell in enumerate(cells)
            if isinstance(_nbgrader_meta(cell).get("grade_id"), str)}
    runs: list[tuple[int, str, str | None, str]] = []  # index, source, grade_id, role
    for index, cell in enumerate(cells):
        meta = _nbgrader_meta(cell)
        grade_id = meta.get("grade_id") if isinstance(meta.get("grade_id"), str) else None
        if grade_id in locked and index in kept:
            role_type, source, is_test = locked[grade_id]
            if role_type == "code":
                runs.append((index, source, grade_id, "test" if is_test else "setup"))
            continue
        if _cell_type(cell) != "code":
            continue
        source = _source(cell)
        if _normalise(source) in copies:
            runs.append((index, source, grade_id, "copy"))
        else:
            runs.append((index, source, grade_id if index in kept else None, "student"))
    size = sum(len(src) for _, src, _, _ in runs)
    if size > MAX_SOURCE_CHARS:
        return [Finding(None, None, 1, f"{size:,} characters of code, more than the "
                        f"{MAX_SOURCE_CHARS:,} the scan reads: too large to scan")]
    context = Context.build([src for _, src, _, _ in runs],
                             own=[src for _, src, _, role in runs if role != "test"])
    findings: list[Finding] = []
    for index, source, grade_id, role in runs:
        if role == "student":
            findings += scan_cell(source, context, index, grade_id)
    return findings


# --------------------------------------------------------------------------- notebooks


def _cells(nb: Any, name: str) -> list[Any]:
    cells = nb.get("cells") if isinstance(nb, Mapping) else getattr(nb, "cells", None)
    if not isinstance(cells, list):
        raise TypeError(f"{name}: expected a notebook (a mapping with a 'cells' list), "
                        f"got {type(nb).__name__}")
    return [c if isinstance(c, Mapping) else {} for c in cells]


def _source(cell: Mapping[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _cell_type(cell: Mapping[str, Any]) -> str:
    return str(cell.get("cell_type", ""))


def _nbgrader_meta(cell: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = cell.get("metadata")
    meta = meta.get("nbgrader") if isinstance(meta, Mapping) else None
    return meta if isinstance(meta, Mapping) else {}


def _locked_cells(cells: list[Any]) -> dict[str, tuple[str, str, bool]]:
    """grade_id -> (cell type, source, is a test) of the cells nbgrader puts back."""
    locked = {}
    for cell in cells:
        meta = _nbgrader_meta(cell)
        grade_id = meta.get("grade_id")
        if isinstance(grade_id, str) and not meta.get("solution") \
                and (meta.get("grade") or meta.get("locked")):
            locked[grade_id] = (_cell_type(cell), _source(cell), bool(meta.get("grade")))
    return locked


def _normalise(source: str) -> str:
    return "\n".join(line.rstrip() for line in source.strip().splitlines())
