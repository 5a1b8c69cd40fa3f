"""Which cells of a submission run while it is graded: the grader decides, never the notebook.

nbclient, which nbgrader's ``Execute`` runs on, does not run a cell tagged
``skip-execution`` (:data:`SKIP_TAG`). A test cell that does not run raises nothing, and
nbgrader gives it full marks, so a student who tags the test cells in JupyterLab's
property inspector gets every point without solving anything. :class:`PlanExecution`
runs just before ``Execute`` and takes that tag off every cell of the submission; then,
in the ``grading`` profile only, it puts it back on the demonstrations that no graded
cell needs (:func:`skippable_cells`), so a submission is graded without paying for the
lesson's training runs and figures.

A demonstration is a code cell the lesson author tagged :data:`DEMONSTRATION_TAG`: a
cell that only shows something (a training run, a figure) and whose side effects (files
it writes, the random state, objects it trains) no graded cell relies on. The tag is the
author's promise about side effects; the names are checked here, on the code the
submission holds, so a student's own cells count too. A tagged cell is still run when

- it is a graded cell (nbgrader's ``solution`` or ``grade``): those always run;
- a cell that runs after it reads a name it binds, as a free name (read before the cell
  that reads it binds it itself; a name read inside a function counts);
- a cell that runs after it reads a name that it reads too, from an earlier cell: it
  may change the object (train a model, fill a list). Names bound by ``import``,
  constants (``UPPER_CASE``), builtins and ``profile`` do not count;
- its code cannot be read (it does not parse, or nests too deep to walk).

A student who adds the tag to a cell of their own can only lose by it: a skipped cell
that their answers need leaves them a ``NameError``. ``tests/test_grading.py`` grades the
kept submissions (`make claims`: all of them) in ``smoke`` with every cell run and in
``grading`` with the demonstrations skipped, and the scores must agree.

Examples
--------
>>> import nbformat
>>> from nbformat.v4 import new_code_cell, new_notebook
>>> demo = {"tags": [DEMONSTRATION_TAG]}
>>> nb = new_notebook(cells=[
...     new_code_cell("import numpy as np\\nSEED = 0"),
...     new_code_cell("curve = np.cumsum(np.ones(3))\\nprint(curve)", metadata=demo),
...     new_code_cell("x = np.arange(3)", metadata=demo),
...     new_code_cell("def f():\\n    return x + SEED",
...                   metadata={"nbgrader": {"solution": True, "grade_id": "f"}})])
>>> skippable_cells(nb)
[1]
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Iterable
from typing import Any, Final

from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Bool

from course_utils.instructor.grading.parsing import parse

#: The tag nbclient does not execute (``NotebookClient.skip_cells_with_tag``'s default;
#: the worker sets ``Execute.skip_cells_with_tag`` to it).
SKIP_TAG: Final = "skip-execution"
#: The tag a lesson author puts on a demonstration cell that grading may skip.
DEMONSTRATION_TAG: Final = "demonstration"
#: Names that hold nothing a demonstration could change, besides modules and constants.
_UNCHANGING: Final = frozenset(dir(builtins)) | {"profile"}

__all__ = ["DEMONSTRATION_TAG", "SKIP_TAG", "PlanExecution", "planned_steps", "skippable_cells"]


class PlanExecution(NbGraderPreprocessor):
    """Takes :data:`SKIP_TAG` off every cell; with ``skip_demonstrations``, puts it on the
    cells of :func:`skippable_cells`. Goes right before ``Execute`` in nbgrader's
    ``Autograde.autograde_preprocessors``."""

    skip_demonstrations = Bool(
        False, help="skip the demonstrations no graded cell needs (the grading profile)"
    ).tag(config=True)

    def preprocess(self, nb: Any, resources: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        for cell in nb.cells:
            if "tags" not in cell.get("metadata", {}):
                continue
            tags = cell.metadata["tags"]
            # nbclient tests `SKIP_TAG in tags`: a string holding it would count too
            cell.metadata["tags"] = ([t for t in tags if t != SKIP_TAG]
                                     if isinstance(tags, list) else [])
        if self.skip_demonstrations:
            skipped = skippable_cells(nb)
            for index in skipped:
                cell = nb.cells[index]
                cell.metadata["tags"] = [*_tags(cell), SKIP_TAG]
            self.log.info("Skipping %d demonstration cell(s) no graded cell needs", len(skipped))
        return nb, resources


def planned_steps(steps: Iterable[type]) -> list[type]:
    """nbgrader's autograde steps with :class:`PlanExecution` right before the one that runs
    the notebook (``Execute`` or a subclass); unchanged if it is there already. Raises
    ``ValueError`` naming the steps when none runs the notebook.

    >>> from nbgrader.converters import Autograde
    >>> steps = planned_steps(Autograde.class_traits()["autograde_preprocessors"].default())
    >>> names = [s.__name__ for s in steps]
    >>> names[names.index("PlanExecution") + 1], planned_steps(steps) == steps
    ('Execute', True)
    >>> from nbgrader.preprocessors import ClearOutput
    >>> planned_steps([PlanExecution, ClearOutput])
    Traceback (most recent call last):
    ...
    ValueError: steps: expected nbgrader's Execute (or a subclass) among the autograde steps, got ClearOutput
    """
    from nbgrader.preprocessors import Execute

    steps = [step for step in steps if step is not PlanExecution]
    at = next((i for i, step in enumerate(steps) if issubclass(step, Execute)), None)
    if at is None:
        named = ", ".join(step.__name__ for step in steps)
        raise ValueError(f"steps: expected nbgrader's Execute (or a subclass) among the "
                         f"autograde steps, got {named or 'none'}")
    return [*steps[:at], PlanExecution, *steps[at:]]


def skippable_cells(nb: Any) -> list[int]:
    """Indices of the demonstrations in ``nb`` that grading need not run (module docstring).

    ``nb`` is a ``NotebookNode`` or the notebook's JSON as a dict; it is not changed.
    """
    cells = nb["cells"] if isinstance(nb, dict) else nb.cells
    code = [(i, c) for i, c in enumerate(cells) if c.get("cell_type") == "code"]
    flows = [_flow(_source(c)) for _, c in code]
    modules = set().union(*(f.modules for f in flows if f is not None))
    candidate = [DEMONSTRATION_TAG in _tags(c) and not _graded(c) and f is not None
                 for (_, c), f in zip(code, flows, strict=True)]
    runs = [not c for c in candidate]
    changed = True
    while changed:  # a demonstration kept for a later cell may need an earlier one
        changed = False
        for k, flow in enumerate(flows):
            if runs[k]:
                continue
            shared = {n for n in flow.free if n not in modules and not n.isupper()}
            for later in range(k + 1, len(flows)):
                reader = flows[later]
                if not runs[later] or reader is None:
                    continue
                if reader.free & (flow.bound | shared):
                    runs[k] = changed = True
                    break
    return [i for (i, _), run in zip(code, runs, strict=True) if not run]


def _tags(cell: Any) -> list[Any]:
    tags = cell.get("metadata", {}).get("tags", [])
    return list(tags) if isinstance(tags, list) else []


def _graded(cell: Any) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return isinstance(meta, dict) and bool(meta.get("solution") or meta.get("grade"))


def _source(cell: Any) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


class _Flow(ast.NodeVisitor):
    """The names a cell binds and those it reads free (before it binds them, or in a
    function body without binding them there), and the names ``import`` binds."""

    def __init__(self) -> None:
        self.bound: set[str] = set()
        self.free: set[str] = set()
        self.modules: set[str] = set()
        self._deferred: set[str] = set()

    def finish(self) -> _Flow:
        self.free |= self._deferred - self.bound
        self.free -= _UNCHANGING
        return self

    def _load(self, name: str) -> None:
        if name not in self.bound:
            self.free.add(name)

    def _store(self, name: str) -> None:
        self.bound.add(name)

    def _visit_all(self, nodes: Iterable[ast.AST | None]) -> None:
        for node in nodes:
            if node is not None:
                self.visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        (self._load if isinstance(node.ctx, ast.Load) else self._store)(node.id)

    def visit_Assign(self, node: ast.Assign) -> None:
        self._visit_all([node.value, *node.targets])

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._visit_all([node.value, node.target])

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self.visit(node.value)
        if isinstance(node.target, ast.Name):
            self._load(node.target.id)
        self.visit(node.target)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self._visit_all([node.value, node.target])

    def visit_For(self, node: ast.For) -> None:
        self._visit_all([node.iter, node.target, *node.body, *node.orelse])

    def _comprehension(self, node: Any, parts: list[ast.AST]) -> None:
        for generator in node.generators:
            self._visit_all([generator.iter, generator.target, *generator.ifs])
        self._visit_all(parts)

    def visit_ListComp(self, node: ast.ListComp) -> None:
        self._comprehension(node, [node.elt])

    visit_SetComp = visit_GeneratorExp = visit_ListComp  # type: ignore[assignment]

    def visit_DictComp(self, node: ast.DictComp) -> None:
        self._comprehension(node, [node.key, node.value])

    def _function(self, node: Any, *, bind: bool = True) -> None:
        """Decorators and defaults are read now, the body when called; a method (``bind``
        false) binds no name of the cell."""
        arguments = node.args
        self._visit_all([*getattr(node, "decorator_list", []), *arguments.defaults,
                         *arguments.kw_defaults])
        self._deferred |= _globals_read(node)
        if bind and hasattr(node, "name"):
            self._store(node.name)

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function  # type: ignore[assignment]

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._visit_all([*node.decorator_list, *node.bases, *node.keywords])
        for part in node.body:  # methods read globals when called; the rest reads them now
            if isinstance(part, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self._function(part, bind=False)
            else:
                self._deferred |= {n.id for n in ast.walk(part)
                                   if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        self._store(node.name)

    def visit_Import(self, node: ast.Import | ast.ImportFrom) -> None:
        for alias in node.names:
            name = (alias.asname or alias.name).split(".")[0]
            self._store(name)
            self.modules.add(name)  # a library's object, not one the notebook made

    visit_ImportFrom = visit_Import  # type: ignore[assignment]

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        self._visit_all([node.type])
        if node.name:
            self._store(node.name)
        self._visit_all(node.body)

    def visit_With(self, node: ast.With) -> None:
        for item in node.items:
            self._visit_all([item.context_expr, item.optional_vars])
        self._visit_all(node.body)

    def visit_Global(self, node: ast.Global) -> None:
        self.free.update(node.names)


def _globals_read(function: Any) -> set[str]:
    """The names a function (or lambda) reads that are not its own: globals when called.

    Approximate on purpose: a name bound anywhere inside it counts as its own."""
    local = {a.arg for a in ast.walk(function) if isinstance(a, ast.arg)}
    body = function.body if isinstance(function.body, list) else [function.body]
    nodes = [inner for part in body for inner in ast.walk(part)]
    for inner in nodes:
        if isinstance(inner, ast.Name) and not isinstance(inner.ctx, ast.Load):
            local.add(inner.id)
        elif isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            local.add(inner.name)
        elif isinstance(inner, (ast.Import, ast.ImportFrom)):
            local.update((a.asname or a.name).split(".")[0] for a in inner.names)
    return {inner.id for inner in nodes if isinstance(inner, ast.Name)
            and isinstance(inner.ctx, ast.Load) and inner.id not in local}


def _flow(source: str) -> _Flow | None:
    """The names of one cell's code (IPython's ``%``/``!`` lines read as ``pass``), or
    ``None`` when it cannot be read (it does not parse, or nests too deep to walk)."""
    lines = []
    for line in source.splitlines():
        stripped = line.lstrip()
        lines.append(line[: len(line) - len(stripped)] + "pass"
                     if stripped.startswith(("%", "!")) else line)
    flow = _Flow()
    try:  # a cell nested deep enough to exhaust the parser runs; it is not skipped
        flow.visit(parse("\n".join(lines)))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    return flow.finish()
