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

Which cells: every code cell the student wrote or could edit. Cells that are locked
in the student version (matched by nbgrader ``grade_id``, as nbgrader's
``DeduplicateIds`` and ``OverwriteCells`` do) are put back from the gradebook before
anything runs, so they are the instructor's code whatever the submission holds; so is
a verbatim copy of any code cell of the student version (Jupyter's copy and paste, an
unlocked instructor cell left as it was). A cell that does not parse is not a finding:
it fails its own task.

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

Examples
--------
>>> [f.describe() for f in scan_source("import numpy as np\\nnp.allclose = lambda *a: True")]
['line 2: replaces numpy.allclose: monkeypatches a module the tests use']
>>> scan_source("base.trainable = False\\nmodel.fit(x, y, epochs=2)")
[]
"""

from __future__ import annotations

import ast
import builtins
import dataclasses
import functools
import importlib.util
import keyword
import re
import sys
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

# --------------------------------------------------------------------------- the rules

#: Builtin names a student's module-level code may not rebind (the tests call them).
PROTECTED_NAMES: Final = frozenset(
    {n for n in dir(builtins) if not n.startswith("_")} | {"get_ipython", "display"})
#: Line magics that cannot change how later cells run.
HARMLESS_LINE_MAGICS: Final = frozenset({
    "matplotlib", "time", "timeit", "prun", "pip", "conda", "mamba", "micromamba", "uv",
    "who", "whos", "who_ls", "pwd", "cd", "pushd", "popd", "dirs", "dhist", "bookmark",
    "ls", "ll", "lf", "lk", "ldir", "lx", "cat", "less", "more", "man", "clear", "mkdir",
    "cp", "mv", "rm", "rmdir", "env", "set_env", "system", "sx", "lsmagic", "magic",
    "quickref", "pinfo", "pinfo2", "pdoc", "pdef", "psearch", "psource", "pfile", "page",
    "pprint", "precision", "history", "hist",
})
#: Cell magics that cannot change how later cells run.
HARMLESS_CELL_MAGICS: Final = frozenset({
    "time", "timeit", "prun", "capture", "bash", "sh", "markdown", "latex"})
#: Magics whose argument or body is Python code, run by the kernel (it is scanned too).
CODE_MAGICS: Final = frozenset({"time", "timeit", "prun", "capture"})

_BUILTIN_REASONS: Final = {
    "exec": "runs code built at run time, which this scan cannot read",
    "eval": "runs code built at run time, which this scan cannot read",
    "compile": "builds code at run time, which this scan cannot read",
    "breakpoint": "starts a debugger inside the kernel",
    "setattr": "sets attributes by name (how modules and builtins get patched)",
    "delattr": "deletes attributes by name (how modules and builtins get patched)",
    "globals": "exposes a whole namespace to rewrite (builtins and test names included)",
    "vars": "exposes an object's namespace to rewrite (modules included)",
    "locals": "exposes a namespace to rewrite",
    "get_ipython": "reaches IPython's execution machinery (hooks, input and AST "
                   "transformers, traceback display)",
}
_HISTORY = re.compile(r"^(In|Out|_ih|_oh|_dh|_i|_ii|_iii|_i\d+|_\d+|__|___)$")
_DUNDER = re.compile(r"^__\w+__$")
#: Dunder names a student may read as plain names.
_NAME_DUNDERS_OK: Final = frozenset({"__name__", "__doc__", "__file__", "__debug__"})
#: Dunder attributes that reach nothing (reading a name, calling the usual protocols).
_ATTR_DUNDERS_OK: Final = frozenset({
    "__name__", "__doc__", "__qualname__", "__module__", "__version__", "__file__",
    "__init__", "__call__", "__repr__", "__str__", "__len__", "__iter__", "__next__",
    "__enter__", "__exit__", "__getitem__", "__contains__", "__new__", "__post_init__",
    "__format__", "__main__",
})
#: Special methods a class may define.
_CLASS_DUNDERS_OK: Final = frozenset({
    "__init__", "__call__", "__repr__", "__str__", "__doc__", "__slots__", "__module__",
    "__qualname__", "__match_args__", "__post_init__", "__new__", "__enter__", "__exit__",
    "__aenter__", "__aexit__", "__iter__", "__next__", "__aiter__", "__anext__", "__len__",
    "__getitem__", "__setitem__", "__delitem__", "__contains__", "__del__", "__format__",
    "__getstate__", "__setstate__", "__annotations__",
})
_COMPARISON = frozenset({"__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__",
                         "__hash__", "__bool__", "__cmp__"})
_CONVERSION = frozenset({"__float__", "__int__", "__index__", "__complex__", "__round__",
                         "__trunc__", "__floor__", "__ceil__", "__array__", "__array_ufunc__",
                         "__array_function__", "__array_interface__", "__array_struct__",
                         "__array_priority__", "__array_wrap__", "__array_finalize__",
                         "__array_prepare__", "__dlpack__", "__tf_tensor__"})
_ARITHMETIC = re.compile(r"^__[ri]?(add|sub|mul|matmul|truediv|floordiv|div|mod|divmod|pow|"
                         r"lshift|rshift|and|xor|or|neg|pos|abs|invert)__$")
_LOOKUP = frozenset({"__getattr__", "__getattribute__", "__setattr__", "__delattr__",
                     "__instancecheck__", "__subclasscheck__", "__class__", "__dir__",
                     "__class_getitem__", "__init_subclass__", "__set_name__", "__get__",
                     "__set__", "__delete__", "__mro_entries__", "__prepare__"})
#: Display hooks that put raw HTML or JavaScript in front of whoever opens the notebook.
_RAW_DISPLAY = frozenset({"_repr_html_", "_repr_javascript_", "_repr_mimebundle_",
                          "_repr_svg_", "_repr_markdown_", "_repr_latex_"})
#: Attributes that only IPython's shell or a running frame have.
_MACHINERY_ATTRS: Final = {
    **dict.fromkeys(
        ["_ip", "shell", "showtraceback", "_showtraceback", "showsyntaxerror", "error_in_exec",
         "error_before_exec", "events", "input_transformers_cleanup", "input_transformers_post",
         "input_transformer_manager", "ast_transformers", "run_cell", "run_cell_async",
         "run_ast_nodes", "run_code", "transform_cell", "transform_ast", "set_custom_exc",
         "custom_exceptions", "user_ns", "user_global_ns", "user_module", "prefilter_manager",
         "register_magic_function", "register_magics", "magics_manager", "InteractiveTB",
         "SyntaxTB", "display_pub", "ev", "ex", "get_ipython"],
        "reaches IPython's execution machinery (hooks, transformers, traceback display)"),
    **dict.fromkeys(
        ["f_globals", "f_locals", "f_back", "f_builtins", "f_code", "f_trace", "f_lasti",
         "tb_frame", "tb_next", "gi_frame", "cr_frame", "ag_frame", "gi_code", "cr_code",
         "co_code", "co_consts", "co_names", "cell_contents"],
        "reaches a running frame or compiled code (the tests' variables included)"),
}
#: Modules whose import (or use) is a lever in itself, with why.
_FORBIDDEN_MODULES: Final = {
    **dict.fromkeys(["builtins", "__builtin__"], "the builtins every test relies on"),
    "__main__": "the notebook's own namespace",
    **dict.fromkeys(["IPython", "ipykernel", "jupyter_client", "zmq", "comm", "ipywidgets",
                     "traitlets"], "IPython's execution machinery (hooks, transformers, "
                                   "traceback display)"),
    **dict.fromkeys(["importlib", "imp", "pkgutil", "pydoc", "runpy", "zipimport", "site",
                     "code", "codeop"], "imports or runs code by name, out of this scan's sight"),
    **dict.fromkeys(["gc", "ctypes", "_ctypes"],
                    "interpreter internals (frames, live objects, memory)"),
    "linecache": "the source of every cell run so far, the tests' included",
    **dict.fromkeys(["pickle", "_pickle", "cPickle", "marshal", "shelve", "dill", "cloudpickle",
                     "copyreg", "joblib"], "loads objects that can run hidden code"),
    **dict.fromkeys(["unittest.mock", "mock", "pytest", "_pytest", "wrapt", "forbiddenfruit",
                     "logging.config"], "patches or resolves objects by name"),
    **dict.fromkeys(["bdb", "pdb", "trace"], "installs tracing and debugger hooks"),
}
#: Names that reach the modules above when they appear inside an attribute chain.
_FORBIDDEN_COMPONENTS: Final = frozenset({
    "builtins", "__builtin__", "importlib", "gc", "ctypes", "inspect", "sys", "IPython",
    "ipykernel", "pickle", "marshal", "mock", "runpy", "pydoc", "pkgutil", "zmq",
    "traitlets", "ipywidgets", "wrapt", "dill", "cloudpickle", "codeop", "copyreg",
    "ctypeslib"})
#: What of ``sys`` stays free to use.
_SYS_OK: Final = frozenset({
    "stdout", "stderr", "stdin", "argv", "version", "version_info", "platform", "executable",
    "maxsize", "float_info", "int_info", "byteorder", "implementation", "exit", "getsizeof",
    "getrecursionlimit", "setrecursionlimit", "hexversion", "api_version",
    "getdefaultencoding", "getfilesystemencoding", "float_repr_style", "flags", "prefix",
    "base_prefix", "exec_prefix", "maxunicode", "stdlib_module_names"})
_TYPES_OK: Final = frozenset({"SimpleNamespace", "MappingProxyType", "GenericAlias",
                              "NoneType", "UnionType", "EllipsisType", "NotImplementedType"})
#: What of ``inspect`` reads code without reaching frames or live namespaces.
_INSPECT_OK: Final = frozenset({
    "signature", "Signature", "Parameter", "BoundArguments", "getsource", "getsourcelines",
    "getdoc", "cleandoc", "getfullargspec", "isclass", "isfunction", "ismethod", "ismodule",
    "isbuiltin", "isroutine", "iscoroutinefunction", "isgeneratorfunction", "isabstract"})
#: What of ``traceback`` reads the calling frames (the test's own lines) rather than an
#: exception's.
_TRACEBACK_STACK: Final = frozenset({"extract_stack", "format_stack", "print_stack",
                                     "walk_stack", "StackSummary"})
_THREADING_HOOKS: Final = frozenset({"settrace", "setprofile", "settrace_all_threads",
                                     "setprofile_all_threads", "excepthook"})
#: Module data a student may change in place (plot style, environment variables).
_MUTABLE_MODULE_DATA: Final = frozenset({"rcParams", "environ"})
_MUTATORS: Final = frozenset({"append", "extend", "insert", "clear", "pop", "popitem",
                              "setdefault", "update", "remove", "discard", "add", "sort",
                              "reverse"})
#: Packages a student may well import out of habit although grading lacks them (the
#: import then fails on its own): not worth a review.
_COMMON_PACKAGES: Final = frozenset({
    "google", "seaborn", "tqdm", "pandas", "plotly", "PIL", "cv2", "torch", "torchvision",
    "sklearn", "scipy", "skimage", "imageio", "h5py", "tensorflow_datasets", "tensorflow_hub",
    "keras_tuner", "wandb", "tensorboard", "statsmodels", "sympy", "numba", "jax", "rich"})
#: Names of modules a test cell may import that the scan does not see (hidden tests).
_COMMON_MODULES: Final = {"np": "numpy", "numpy": "numpy", "tf": "tensorflow",
                          "tensorflow": "tensorflow", "keras": "keras",
                          "plt": "matplotlib.pyplot", "mpl": "matplotlib",
                          "matplotlib": "matplotlib", "sklearn": "sklearn", "scipy": "scipy",
                          "pd": "pandas", "pandas": "pandas", "sys": "sys",
                          "builtins": "builtins", "course_utils": "course_utils"}


@dataclasses.dataclass(frozen=True)
class Finding:
    """One reason to look at a submission before trusting its score.

    Attributes
    ----------
    cell: index of the cell in the submitted notebook (``None`` for :func:`scan_source`).
    grade_id: the cell's nbgrader id, ``None`` for a cell the student added.
    line: line of the cell's source (1-based).
    reason: what the code does, in words an instructor understands.

    >>> Finding(3, "make_splits", 2, "rebinds the builtin all").describe()
    'cell 3 (make_splits), line 2: rebinds the builtin all'
    """

    cell: int | None
    grade_id: str | None
    line: int
    reason: str

    def describe(self) -> str:
        """``cell C (grade_id), line L: reason``, for reports and logs."""
        where = "" if self.cell is None else f"cell {self.cell}"
        if self.grade_id:
            where += f" ({self.grade_id})"
        return f"{where}, line {self.line}: {self.reason}" if where else \
            f"line {self.line}: {self.reason}"


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
    context = _Context.build([source], own=[source])
    return _scan_cell(source, context, None, None)


def scan_notebook(nb: Any, released: Any) -> list[Finding]:
    """The findings in every cell of ``nb`` the student wrote or could edit.

    ``nb`` is the submitted notebook and ``released`` the student version it was made
    from (both ``NotebookNode`` or plain dicts of the notebook's JSON). Cells locked in
    ``released`` are put back by nbgrader before anything runs and are not scanned (a
    locked cell whose source differs counts as put back, not as the student's); nor is
    a verbatim copy of any code cell of ``released`` (the instructor's code).

    >>> import nbformat
    >>> meta = {"nbgrader": {"grade_id": "f", "solution": True, "grade": False}}
    >>> released = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("", metadata=meta)])
    >>> nb = nbformat.v4.new_notebook(cells=[
    ...     nbformat.v4.new_code_cell("def f(x):\\n    return x", metadata=meta),
    ...     nbformat.v4.new_code_cell("all = lambda *args: True")])
    >>> [f.describe() for f in scan_notebook(nb, released)]
    ['cell 1, line 1: rebinds the builtin all, which the tests rely on']
    """
    cells = _cells(nb, "nb")
    released_cells = _cells(released, "released")
    locked = _locked_cells(released_cells)
    copies = {_normalise(_source(c)) for c in released_cells if _cell_type(c) == "code"}
    kept = _surviving_ids(cells)
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
    context = _Context.build([src for _, src, _, _ in runs],
                             own=[src for _, src, _, role in runs if role != "test"])
    findings: list[Finding] = []
    for index, source, grade_id, role in runs:
        if role == "student":
            findings += _scan_cell(source, context, index, grade_id)
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


def _marked(meta: Mapping[str, Any]) -> bool:
    """nbgrader's ``is_grade or is_solution or is_locked`` (what ``DeduplicateIds`` reads)."""
    return bool(meta.get("grade") or meta.get("solution") or meta.get("locked"))


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


def _surviving_ids(cells: list[Any]) -> set[int]:
    """Indices of cells that keep their grade_id through nbgrader's ``DeduplicateIds``.

    It walks the notebook backwards and strips the nbgrader metadata of every earlier
    marked cell that repeats an id; unmarked cells keep theirs.
    """
    seen: set[str] = set()
    kept = set()
    for index in range(len(cells) - 1, -1, -1):
        meta = _nbgrader_meta(cells[index])
        grade_id = meta.get("grade_id")
        if not isinstance(grade_id, str):
            continue
        if not _marked(meta):
            kept.add(index)
        elif grade_id not in seen:
            seen.add(grade_id)
            kept.add(index)
    return kept


def _normalise(source: str) -> str:
    return "\n".join(line.rstrip() for line in source.strip().splitlines())


# --------------------------------------------------------------------------- IPython syntax


@functools.lru_cache(maxsize=1024)
def _transform(source: str) -> str | None:
    """The cell as IPython runs it (magics and ``!`` turned into calls); None if it cannot."""
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        return TransformerManager().transform_cell(source)
    except Exception:  # IPython reports these as errors of the cell: it never runs
        return None


@functools.lru_cache(maxsize=1)
def _line_magic_names() -> frozenset[str]:
    """Every line magic IPython and ipykernel define, aliases included (for automagic)."""
    names = set(HARMLESS_LINE_MAGICS) | {"config", "load_ext", "run", "reset", "autocall",
                                         "automagic", "xmode", "pdb", "debug", "alias",
                                         "macro", "store", "load", "edit", "code_wrap"}
    try:
        from IPython.core.alias import default_aliases
        from IPython.core.magics import BUILTIN_LAZY_MAGICS

        names |= set(BUILTIN_LAZY_MAGICS.get("line", {}))
        names |= {name for name, _ in default_aliases()}
        from ipykernel.zmqshell import KernelMagics

        names |= set(KernelMagics.magics.get("line", {}))
    except Exception:  # an IPython that moved things: the fallback list above
        pass
    return frozenset(names)


def _automagic(line: str, shadowed: set[str]) -> tuple[str, str] | None:
    """The magic a one-line cell runs without ``%`` (IPython's automagic), if any."""
    from IPython.core.splitinput import LineInfo

    info = LineInfo(line)
    if info.esc or not info.ifun or info.ifun not in _line_magic_names():
        return None
    if info.the_rest and info.the_rest[0] in "=,":
        return None
    head = info.ifun.split(".", 1)[0]
    if keyword.iskeyword(head) or head in PROTECTED_NAMES or head in shadowed:
        return None
    return info.ifun.lstrip("%"), info.the_rest


def _expansions(text: str) -> list[str]:
    """The Python expressions IPython evaluates in ``{...}`` and ``$name`` of a command."""
    from IPython.utils.text import DollarFormatter

    fields = []
    try:
        for _, field, spec, _ in DollarFormatter().parse(text):
            if field:
                fields.append(f"{field}:{spec}" if spec else field)
    except Exception:  # IPython stops expanding at the same point
        pass
    return fields


# --------------------------------------------------------------------------- context


@functools.lru_cache(maxsize=4096)
def _is_submodule(dotted: str) -> bool:
    """Whether ``dotted`` names a module or package on disk (found without importing it)."""
    top, _, rest = dotted.partition(".")
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return False
    if spec is None:
        return False
    folders = [Path(f) for f in spec.submodule_search_locations or []]
    parts = rest.split(".") if rest else []
    for i, part in enumerate(parts):
        packages = [f / part for f in folders if (f / part).is_dir()]
        if i == len(parts) - 1 and not packages:
            return any((f / f"{part}.py").is_file() or any(f.glob(f"{part}.*.so"))
                       for f in folders)
        folders = packages
    return bool(folders) or not parts


@functools.lru_cache(maxsize=1024)
def _installed(top: str) -> bool:
    """Whether a top-level module is part of Python or installed where grading runs."""
    if top in sys.stdlib_module_names or top in sys.builtin_module_names:
        return True
    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        return False


@functools.lru_cache(maxsize=1)
def _known_modules() -> dict[str, tuple[str, bool]]:
    """Names a notebook's cells usually give modules: name -> (module, surely a module).

    ``np`` is NumPy wherever it is not bound otherwise, and so are the ``_``-prefixed
    aliases test cells use (``_workflow``); ``labels`` or ``callbacks`` may just as well
    be a student's variable, so they only count where an attribute is written.
    """
    known = {name: (path, True) for name, path in _COMMON_MODULES.items()}
    spec = importlib.util.find_spec("course_utils")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        for path in Path(folder).iterdir():
            if path.suffix == ".py" and not path.stem.startswith("_") or \
                    path.is_dir() and (path / "__init__.py").is_file():
                known.setdefault(path.stem, (f"course_utils.{path.stem}", False))
    known |= {f"_{name}": (path, True) for name, (path, _) in list(known.items())
              if not name.startswith("_")}
    return known


def _is_module_name(dotted: str, attr: str) -> bool:
    """Whether attribute ``attr`` of module ``dotted`` is itself a module.

    In the course's own packages a submodule may share its name with a function the
    package exports (``debugging.preflight``): there the package, which is safe and
    cheap to import, says what the name is.
    """
    if attr in _COMMON_MODULES:
        return True
    if dotted == "course_utils" or dotted.startswith("course_utils."):
        try:
            value = getattr(importlib.import_module(dotted), attr)
        except (ImportError, AttributeError):
            return _is_submodule(f"{dotted}.{attr}")
        return isinstance(value, types.ModuleType)
    return _is_submodule(f"{dotted}.{attr}")


@dataclasses.dataclass
class _Names:
    """What the names of one scope are bound to: kinds (module, derived, other), paths."""

    kinds: dict[str, set[str]] = dataclasses.field(default_factory=dict)
    paths: dict[str, set[str]] = dataclasses.field(default_factory=dict)

    def bind(self, name: str, kind: str, path: str | None = None) -> bool:
        kinds = self.kinds.setdefault(name, set())
        paths = self.paths.setdefault(name, set())
        changed = kind not in kinds or (path is not None and path not in paths)
        kinds.add(kind)
        if path is not None:
            paths.add(path)
        return changed


@dataclasses.dataclass
class _Context:
    """Module-level facts of the whole notebook that the scan of one cell needs."""

    names: _Names
    own: set[str]       # module-level names bound by cells other than tests
    shadowed: set[str]  # names bound anywhere at module level (they hide automagic)

    @classmethod
    def build(cls, sources: Iterable[str], own: Iterable[str]) -> _Context:
        trees = [t for t in (_parse(s) for s in sources) if t is not None]
        names = _Names()
        bindings = [b for tree in trees for b in _bindings(tree.body, module=True)]
        _resolve(bindings, names, lambda n: _module_lookup(names, n))
        own_names = {b.name for tree in (_parse(s) for s in own) if tree is not None
                     for b in _bindings(tree.body, module=True)}
        return cls(names, own_names, set(names.kinds))


def _module_lookup(names: _Names, name: str) -> tuple[set[str], set[str]]:
    if name in names.kinds:
        return names.kinds[name], names.paths[name]
    if name not in _known_modules():
        return set(), set()
    path, sure = _known_modules()[name]
    return {"module" if sure else "known"}, {path}


@functools.lru_cache(maxsize=1024)
def _parse(source: str) -> ast.Module | None:
    code = _transform(source)
    if code is None:
        return None
    try:
        return ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


_Lookup = Callable[[str], tuple[set[str], set[str]]]


@dataclasses.dataclass
class _Binding:
    name: str
    how: str                  # "module", "object" (imported), "value", "other"
    node: ast.AST | None      # the assigned value ("value") or the import's dotted path
    path: str | None = None


def _bindings(body: list[ast.stmt], *, module: bool) -> list[_Binding]:
    """Names one scope binds (not those of nested functions and classes, except ``global``)."""
    found: list[_Binding] = []
    declared_global: set[str] = set()

    def targets(target: ast.AST, value: ast.AST | None) -> None:
        if isinstance(target, ast.Name):
            found.append(_Binding(target.id, "value" if value is not None else "other", value))
        elif isinstance(target, (ast.Tuple, ast.List)):
            for elt in target.elts:
                targets(elt, None)
        elif isinstance(target, ast.Starred):
            targets(target.value, None)

    def walk(node: ast.AST) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found.append(_Binding(node.name, "other", None))
            if module and not isinstance(node, ast.ClassDef):
                _function_globals(node, found)
            return
        if isinstance(node, ast.Lambda):
            return
        if isinstance(node, ast.Global):
            declared_global.update(node.names)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                found.extend(_import_bindings(node, alias))
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                targets(target, node.value)
        elif isinstance(node, (ast.AnnAssign, ast.NamedExpr)) and node.value is not None:
            targets(node.target, node.value)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.For, ast.AsyncFor)):
            targets(node.target, None)
        elif isinstance(node, ast.withitem) and node.optional_vars is not None:
            targets(node.optional_vars, None)
        elif isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)) and node.name:
            found.append(_Binding(node.name, "other", None))
        elif isinstance(node, ast.MatchMapping) and node.rest:
            found.append(_Binding(node.rest, "other", None))
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.comprehension):
                # its targets are its own; a walrus inside binds in this scope
                for sub in ast.walk(child):
                    if isinstance(sub, ast.NamedExpr):
                        targets(sub.target, sub.value)
            else:
                walk(child)

    for stmt in body:
        walk(stmt)
    if not module:
        found = [b for b in found if b.name not in declared_global]
    return found


def _function_globals(node: ast.FunctionDef | ast.AsyncFunctionDef,
                      found: list[_Binding]) -> None:
    """Module-level names a function rebinds through ``global``."""
    declared = {n for sub in ast.walk(node) if isinstance(sub, ast.Global) for n in sub.names}
    for sub in ast.walk(node):
        if isinstance(sub, (ast.Assign, ast.NamedExpr)):
            for target in getattr(sub, "targets", [getattr(sub, "target", None)]):
                if isinstance(target, ast.Name) and target.id in declared:
                    found.append(_Binding(target.id, "value", sub.value))
        if isinstance(sub, ast.Name) and isinstance(sub.ctx, (ast.Store, ast.Del)) \
                and sub.id in declared:
            found.append(_Binding(sub.id, "other", None))


def _import_bindings(node: ast.Import | ast.ImportFrom, alias: ast.alias) -> list[_Binding]:
    if isinstance(node, ast.Import):
        if alias.asname:
            return [_Binding(alias.asname, "module", None, alias.name)]
        top = alias.name.split(".")[0]
        return [_Binding(top, "module", None, top)]
    if alias.name == "*" or node.level or not node.module:
        return [] if alias.name == "*" else [_Binding(alias.asname or alias.name, "other", None)]
    path = f"{node.module}.{alias.name}"
    kind = "module" if _is_module_name(node.module, alias.name) else "object"
    return [_Binding(alias.asname or alias.name, kind, None, path)]


def _resolve(bindings: list[_Binding], names: _Names, lookup: _Lookup) -> None:
    """Fill ``names`` with the bindings' kinds; assignments of module aliases to fixpoint."""
    for b in bindings:
        if b.how == "module":
            names.bind(b.name, "module", b.path)
        elif b.how == "object":
            names.bind(b.name, "derived", b.path)
        elif b.how == "other":
            names.bind(b.name, "other")
    values = [b for b in bindings if b.how == "value"]
    for _ in range(8):
        changed = False
        for b in values:
            kind, path = _value_kind(b.node, lookup)
            changed |= names.bind(b.name, kind, path)
        if not changed:
            break


def _value_kind(node: ast.AST | None, lookup: _Lookup) -> tuple[str, str | None]:
    """("module", path) for a module, ("derived", path) for something of one, else other."""
    path = _module_expr(node, lookup)
    if path is not None:
        return "module", path
    root = _chain_path(node, lookup)
    if root is not None:
        return "derived", root
    return "other", None


def _call_name(node: ast.Call) -> str | None:
    func = node.func
    return func.id if isinstance(func, ast.Name) else \
        func.attr if isinstance(func, ast.Attribute) else None


def _module_expr(node: ast.AST | None, lookup: _Lookup) -> str | None:
    """The dotted name of the module ``node`` evaluates to, if it surely is one."""
    if isinstance(node, ast.Name):
        kinds, paths = lookup(node.id)
        return sorted(paths)[0] if kinds in ({"module"}, {"known"}) and paths else None
    if isinstance(node, ast.Attribute):
        base = _module_expr(node.value, lookup) or _chain_path(node.value, lookup)
        if base is not None and _is_module_name(base, node.attr):
            return f"{base}.{node.attr}"
        return None
    if isinstance(node, ast.Call):
        name = _call_name(node)
        if name == "__import__" and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            return node.args[0].value.split(".")[0]
        if name and name.startswith("import_") and len(name) > 7:
            return name[len("import_"):]
    return None


def _chain_path(node: ast.AST | None, lookup: _Lookup) -> str | None:
    """Dotted path of an attribute chain rooted at a module, or at something imported."""
    attrs = []
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.NamedExpr)):
        if isinstance(node, ast.Attribute):
            attrs.append(node.attr)
        node = node.value
    base = None
    if isinstance(node, ast.Name):
        kinds, paths = lookup(node.id)
        if kinds & {"module", "derived", "known"}:
            base = sorted(paths)[0] if paths else node.id
    elif isinstance(node, ast.Call):
        base = _module_expr(node, lookup)
    if base is None:
        return None
    return ".".join([base, *reversed(attrs)])


# --------------------------------------------------------------------------- the scan


def _scan_cell(source: str, context: _Context, cell: int | None,
               grade_id: str | None, depth: int = 0) -> list[Finding]:
    """Findings of one cell, run as IPython runs it (automagic on one-line cells too)."""
    findings: list[Finding] = []

    def add(line: int, reason: str) -> None:
        findings.append(Finding(cell, grade_id, line, reason))

    if depth > 8:
        add(1, "magics nested too deeply to scan")
        return findings
    code = _transform(source)
    if code is None:
        return findings
    lines = source.splitlines()
    offset = next((i for i, text in enumerate(lines) if text.strip()), 0)  # IPython drops them
    tree: ast.Module | None = None
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, MemoryError):
        pass
    except RecursionError:
        add(1 + offset, "code nested too deeply to scan")
        return findings
    if len(code.splitlines()) == 1:
        # A name the notebook binds hides a magic of that name, but only where the line
        # is Python: a binding the scan sees may never run.
        magic = _automagic(code.strip("\n"), context.shadowed if tree is not None else set())
        if magic is not None:
            for f in _scan_magic("line", magic[0], magic[1], None, context, depth):
                add(1 + offset, f.reason)
    if tree is None:
        return findings
    scanner = _Scanner(context, depth)
    try:
        scanner.run(tree)
    except RecursionError:
        add(1, "code nested too deeply to scan")
    for line, reason in scanner.found:
        add(line + offset, reason)
    unique = {(f.line, f.reason): f for f in findings}
    return sorted(unique.values(), key=lambda f: f.line)


def _scan_magic(kind: str, name: str, line: str, body: str | None, context: _Context,
                depth: int) -> list[Finding]:
    """Findings of one magic call: the magic itself, its ``{...}`` expansions, its code."""
    found: list[Finding] = []
    allowed = HARMLESS_CELL_MAGICS if kind == "cell" else HARMLESS_LINE_MAGICS
    shown = ("%%" if kind == "cell" else "%") + name
    if name not in allowed:
        why = {"config": "can change how later cells run",
               "load_ext": "loads an extension into the kernel",
               "run": "runs code from a file this scan cannot see",
               "writefile": "writes a file that later code can import unseen",
               "javascript": "runs JavaScript in the browser of whoever opens the notebook",
               "js": "runs JavaScript in the browser of whoever opens the notebook",
               "html": "puts raw HTML (scripts included) in front of whoever opens it"}
        found.append(Finding(None, None, 1, f"{shown} runs an IPython magic that "
                                            f"{why.get(name, 'can change how later cells run')}"))
    for expression in _expansions(line):
        found += _scan_expression(expression, context, depth, f"{shown} {{...}}")
    if name in CODE_MAGICS:
        starts = [m.start() for m in re.finditer(r"\S+", line)]
        for start in starts:
            found += _scan_cell(line[start:], context, None, None, depth + 1)
        if body is not None:
            found += [dataclasses.replace(f, line=f.line + 1)
                      for f in _scan_cell(body, context, None, None, depth + 1)]
    return found


def _scan_expression(expression: str, context: _Context, depth: int,
                     where: str) -> list[Finding]:
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    scanner = _Scanner(context, depth)
    try:
        scanner.run(tree)
    except RecursionError:
        return [Finding(None, None, 1, f"code in {where} nested too deeply to scan")]
    return [Finding(None, None, 1, reason) for _, reason in scanner.found]


@dataclasses.dataclass
class _Scope:
    kind: str  # "module", "function", "class", "comprehension"
    names: _Names
    declared_global: set[str]


class _Scanner(ast.NodeVisitor):
    """One walk over a cell's tree, collecting (line, reason) pairs."""

    def __init__(self, context: _Context, depth: int) -> None:
        self.context = context
        self.depth = depth
        self.found: list[tuple[int, str]] = []
        self.scopes: list[_Scope] = [_Scope("module", context.names, set())]
        self.parents: dict[int, ast.AST] = {}

    # ---- infrastructure

    def run(self, tree: ast.AST) -> None:
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                self.parents[id(child)] = node
        self.visit(tree)

    def flag(self, node: ast.AST, reason: str, offset: int = 0) -> None:
        self.found.append((getattr(node, "lineno", 1) + offset, reason))

    def parent(self, node: ast.AST) -> ast.AST | None:
        return self.parents.get(id(node))

    def local_scope(self, name: str) -> _Scope | None:
        """The function, class or comprehension scope ``name`` belongs to here, if any."""
        for depth, scope in enumerate(reversed(self.scopes)):
            if scope.kind == "module" or name in scope.declared_global:
                return None
            if scope.kind == "class" and depth > 0:
                continue  # class bodies are not visible from the methods inside them
            if name in scope.names.kinds:
                return scope
        return None

    def lookup(self, name: str) -> tuple[set[str], set[str]]:
        """Kinds and paths of ``name`` where it is read from."""
        scope = self.local_scope(name)
        if scope is not None:
            return scope.names.kinds[name], scope.names.paths[name]
        return _module_lookup(self.context.names, name)

    def module_level(self, name: str) -> bool:
        """Whether binding ``name`` here binds it in the notebook's namespace."""
        return self.scopes[-1].kind == "module" or name in self.scopes[-1].declared_global

    def enter(self, kind: str, body: list[ast.stmt], params: Iterable[str] = ()) -> None:
        names = _Names()
        for param in params:
            names.bind(param, "other")
        bindings = _bindings(body, module=False)
        declared = {n for stmt in body for sub in ast.walk(stmt)
                    if isinstance(sub, ast.Global) for n in sub.names}
        self.scopes.append(_Scope(kind, names, declared))
        _resolve(bindings, names, self.lookup)

    # ---- names

    def visit_Name(self, node: ast.Name) -> None:
        name, parent = node.id, self.parent(node)
        if isinstance(node.ctx, ast.Load):
            self.check_load(node, name, parent)
        else:
            self.check_binding(node, name)

    def check_load(self, node: ast.Name, name: str, parent: ast.AST | None) -> None:
        kinds, paths = self.lookup(name)
        if kinds == {"module"} and not self.alias_use(node, parent):
            self.flag(node, f"passes the module {sorted(paths)[0]} around, where it can be "
                            "patched under another name")
        if self.local_scope(name) is None:
            self.check_global_load(node, name, parent)

    def check_global_load(self, node: ast.Name, name: str, parent: ast.AST | None) -> None:
        called = isinstance(parent, ast.Call) and parent.func is node
        own = name in self.context.own
        if name in _BUILTIN_REASONS:
            self.flag(node, f"{name} {_BUILTIN_REASONS[name]}")
        elif _DUNDER.match(name) and name not in _NAME_DUNDERS_OK:
            if name == "__import__" and called and self.constant_import(parent):
                return
            self.flag(node, f"{name} reaches interpreter internals (the builtins, imports, "
                            "the module itself)")
        elif _HISTORY.match(name) and not (own and name in ("_i", "_ii", "_iii", "__", "___")):
            self.flag(node, f"{name} reads IPython's input/output history (the test cells' "
                            "code and results)")
        elif name == "type":
            if not (called and len(parent.args) == 1 and not parent.keywords):
                self.flag(node, "type(...) used to build a class or as a metaclass: it can "
                                "hide special methods")
        elif name == "getattr":
            if not (called and self.static_name(parent)):
                self.flag(node, "getattr with a computed name can reach anything "
                                "(internals, patched modules)")
        elif name in ("exit", "quit"):
            if not called:
                self.flag(node, f"{name} is IPython's exit object, which holds the shell")
        elif name.startswith("_") and name != "_" and not own and not _DUNDER.match(name):
            self.flag(node, f"reads {name}, a variable the test cells set (where expected "
                            "answers live)")

    def alias_use(self, node: ast.expr, parent: ast.AST | None) -> bool:
        """Uses of a module that cannot hand it to other code."""
        if isinstance(parent, ast.Attribute) and parent.value is node:
            return True
        if self.scopes[-1].kind == "class":
            return isinstance(parent, ast.Attribute) and parent.value is node
        if isinstance(parent, ast.Assign) and parent.value is node \
                and all(isinstance(t, ast.Name) for t in parent.targets):
            return True
        if isinstance(parent, ast.AnnAssign) and parent.value is node \
                and isinstance(parent.target, ast.Name):
            return True
        if isinstance(parent, ast.NamedExpr) and parent.value is node \
                and isinstance(self.parent(parent), ast.Expr):
            return True
        if isinstance(parent, ast.Call) and node in parent.args \
                and isinstance(parent.func, ast.Name) \
                and parent.func.id in ("print", "repr", "str", "dir", "help", "id", "isinstance"):
            return True
        return isinstance(parent, ast.Compare)

    def check_binding(self, node: ast.AST, name: str) -> None:
        if _DUNDER.match(name) and self.scopes[-1].kind != "class":
            self.flag(node, f"binds {name}, a name of the interpreter's own")
        elif name in PROTECTED_NAMES and self.module_level(name):
            self.flag(node, f"rebinds the builtin {name}, which the tests rely on")

    def visit_Global(self, node: ast.Global) -> None:
        for name in node.names:
            if name in PROTECTED_NAMES or _DUNDER.match(name):
                self.flag(node, f"declares global {name}, to rebind a builtin the tests "
                                "rely on")

    def constant_import(self, call: ast.Call) -> bool:
        if len(call.args) != 1 or call.keywords:
            return False
        arg = call.args[0]
        if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
            return False
        self.check_module(call, arg.value)
        return True

    @staticmethod
    def static_name(call: ast.Call) -> bool:
        """``getattr(obj, "name"[, default])`` with a constant, harmless attribute name."""
        if call.keywords or not 2 <= len(call.args) <= 3 or \
                any(isinstance(a, ast.Starred) for a in call.args):
            return False
        name = call.args[1]
        return isinstance(name, ast.Constant) and isinstance(name.value, str) \
            and (not _DUNDER.match(name.value) or name.value in _ATTR_DUNDERS_OK) \
            and name.value not in _MACHINERY_ATTRS

    # ---- imports

    def check_module(self, node: ast.AST, module: str) -> None:
        for prefix in _prefixes(module):
            if prefix in _FORBIDDEN_MODULES:
                self.flag(node, f"imports {module}: {_FORBIDDEN_MODULES[prefix]}")
                return
        top = module.split(".")[0]
        if not _installed(top) and top not in _COMMON_PACKAGES:
            self.flag(node, f"imports {module}, which is not installed for grading: code "
                            "this scan cannot see")

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.check_module(node, alias.name)
            bound = alias.asname or alias.name.split(".")[0]
            self.check_binding(node, bound)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level or not node.module:
            self.flag(node, "a relative import loads code this scan cannot see")
            return
        self.check_module(node, node.module)
        for alias in node.names:
            if alias.name == "*":
                self.flag(node, f"from {node.module} import * can shadow builtins the tests "
                                "rely on (all, abs, round, ...)")
                continue
            self.check_path(node, f"{node.module}.{alias.name}", write=False)
            if _DUNDER.match(alias.name) and alias.name not in _ATTR_DUNDERS_OK:
                self.flag(node, f"imports {alias.name}, an interpreter internal")
            self.check_binding(node, alias.asname or alias.name)

    # ---- attributes

    def visit_Attribute(self, node: ast.Attribute) -> None:
        attr = node.attr
        if _DUNDER.match(attr) and attr not in _ATTR_DUNDERS_OK:
            self.flag(node, f"{attr} reaches interpreter internals")
        elif attr in _MACHINERY_ATTRS:
            self.flag(node, f".{attr} {_MACHINERY_ATTRS[attr]}")
        if isinstance(node.ctx, ast.Load):
            module = _module_expr(node, self.lookup)
            if module is not None and not self.alias_use(node, self.parent(node)):
                self.flag(node, f"passes the module {module} around, where it can be patched "
                                "under another name")
        path = _chain_path(node, self.lookup)
        write = isinstance(node.ctx, (ast.Store, ast.Del))
        if path is not None:
            self.check_path(node, path, write=write)
            if write:
                verb = "deletes" if isinstance(node.ctx, ast.Del) else "replaces"
                self.flag(node, f"{verb} {path}: monkeypatches a module the tests use")
        elif write and self.rooted_at_type_call(node):
            self.flag(node, "patches the class of an object (type(...).x = ...)")
        self.generic_visit(node)

    def check_path(self, node: ast.AST, path: str, *, write: bool) -> None:
        parts = path.split(".")
        if parts[0] == "sys" and len(parts) > 1:
            if parts[1] == "modules" and self.membership_test(node):
                pass
            elif parts[1] not in _SYS_OK:
                self.flag(node, f"{'.'.join(parts[:2])} reaches the interpreter's hooks and "
                                "internals (and through them IPython's)")
        elif parts[0] == "types" and len(parts) > 1 and parts[1] not in _TYPES_OK:
            self.flag(node, f"{'.'.join(parts[:2])} builds functions, classes or modules by "
                            "hand")
        elif parts[0] == "inspect" and len(parts) > 1 and parts[1] not in _INSPECT_OK:
            self.flag(node, f"{'.'.join(parts[:2])} reaches frames or live namespaces")
        elif parts[0] == "traceback" and len(parts) > 1 and parts[1] in _TRACEBACK_STACK:
            self.flag(node, f"{'.'.join(parts[:2])} reads the code of the caller (the test's "
                            "lines and expected values)")
        elif parts[0] == "threading" and len(parts) > 1 and parts[1] in _THREADING_HOOKS:
            self.flag(node, f"{'.'.join(parts[:2])} installs an interpreter hook")
        elif parts[0] == "operator" and len(parts) > 1 \
                and parts[1] in ("methodcaller", "attrgetter"):
            call = self.parent(node)
            if not (isinstance(call, ast.Call) and call.func is node and call.args
                    and all(isinstance(a, ast.Constant) and isinstance(a.value, str)
                            and not _DUNDER.match(a.value) for a in call.args[:1])):
                self.flag(node, f"{'.'.join(parts[:2])} with a computed name reaches "
                                "attributes by name")
        for prefix in _prefixes(path):
            if prefix in _FORBIDDEN_MODULES and prefix not in (parts[0], path):
                self.flag(node, f"{path} reaches {prefix}: {_FORBIDDEN_MODULES[prefix]}")
                break
        middle = parts[1:]
        for part in middle:
            if part in _FORBIDDEN_COMPONENTS:
                self.flag(node, f"{path} reaches the module {part} through another module")
                break
            if part.startswith("_") and not _DUNDER.match(part):
                self.flag(node, f"{path} uses a private internal of a module")
                break

    def membership_test(self, node: ast.AST) -> bool:
        parent = self.parent(node)
        return isinstance(parent, ast.Compare) and node in parent.comparators \
            and all(isinstance(op, (ast.In, ast.NotIn)) for op in parent.ops)

    @staticmethod
    def rooted_at_type_call(node: ast.AST) -> bool:
        while isinstance(node, (ast.Attribute, ast.Subscript)):
            node = node.value
        return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
            and node.func.id == "type"

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            path = _chain_path(node.value, self.lookup)
            if path is not None and not set(path.split(".")) & _MUTABLE_MODULE_DATA:
                self.flag(node, f"changes {path}[...] in place: module data the tests use")
        self.generic_visit(node)

    # ---- calls

    def visit_Call(self, node: ast.Call) -> None:
        magic = _magic_call(node)
        if magic is not None:
            kind, name, line, body = magic
            for f in _scan_magic(kind, name, line, body, self.context, self.depth):
                self.flag(node, f.reason, offset=f.line - 1)
            return
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in _MUTATORS \
                and isinstance(func.value, ast.Attribute) and _is_constant_name(func.value.attr):
            path = _chain_path(func.value, self.lookup)
            if path is not None and not set(path.split(".")) & _MUTABLE_MODULE_DATA:
                self.flag(node, f"changes {path} in place ({func.attr}): module data the "
                                "tests use")
        for keyword_ in node.keywords:
            value = keyword_.value
            if keyword_.arg == "allow_pickle" and not _is_false(value):
                self.flag(node, "allow_pickle loads pickled objects, which can run hidden code")
            elif keyword_.arg == "safe_mode" and _is_false(value):
                self.flag(node, "safe_mode=False loads Keras objects that can run hidden code")
        self.generic_visit(node)

    # ---- definitions

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        if self.scopes[-1].kind != "class":
            self.check_binding(node, node.name)
        for decorator in node.decorator_list:
            self.visit(decorator)
        self.visit(node.args)
        if node.returns is not None:
            self.visit(node.returns)
        self.enter("function", node.body, _params(node.args))
        for stmt in node.body:
            self.visit(stmt)
        self.scopes.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self.visit(node.args)
        self.enter("function", [], _params(node.args))
        self.visit(node.body)
        self.scopes.pop()

    def visit_arguments(self, node: ast.arguments) -> None:
        for default in [*node.defaults, *node.kw_defaults]:
            if default is not None:
                self.visit(default)
        for arg in [*node.posonlyargs, *node.args, *node.kwonlyargs, node.vararg, node.kwarg]:
            if arg is not None and arg.annotation is not None:
                self.visit(arg.annotation)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.check_binding(node, node.name)
        for child in [*node.decorator_list, *node.bases]:
            self.visit(child)
        for kw in node.keywords:
            if kw.arg == "metaclass" and not (
                    isinstance(kw.value, (ast.Name, ast.Attribute))
                    and (getattr(kw.value, "id", None) or getattr(kw.value, "attr", None))
                    == "ABCMeta"):
                self.flag(node, f"class {node.name} has a metaclass, which can rewrite the "
                                "class it builds")
            self.visit(kw.value)
        for stmt in node.body:
            for name in _class_attribute_names(stmt):
                reason = _special_method_reason(node.name, name)
                if reason:
                    self.flag(stmt, reason)
        self.enter("class", node.body)
        for stmt in node.body:
            self.visit(stmt)
        self.scopes.pop()

    def visit_comprehension_scope(self, node: ast.AST) -> None:
        generators = node.generators
        self.visit(generators[0].iter)
        names = _Names()
        for gen in generators:
            for sub in ast.walk(gen.target):
                if isinstance(sub, ast.Name):
                    names.bind(sub.id, "other")
        self.scopes.append(_Scope("comprehension", names, set()))
        for i, gen in enumerate(generators):
            self.visit(gen.target)
            if i:
                self.visit(gen.iter)
            for cond in gen.ifs:
                self.visit(cond)
        for field in ("elt", "key", "value"):
            if getattr(node, field, None) is not None:
                self.visit(getattr(node, field))
        self.scopes.pop()

    visit_ListComp = visit_SetComp = visit_GeneratorExp = visit_DictComp = \
        visit_comprehension_scope

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        # the target binds in the enclosing function or module, never the comprehension
        saved = self.scopes
        while len(self.scopes) > 1 and self.scopes[-1].kind == "comprehension":
            self.scopes = self.scopes[:-1]
        self.visit(node.target)
        self.scopes = saved
        self.visit(node.value)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name:
            self.check_binding(node, node.name)
        self.generic_visit(node)

    def visit_MatchAs(self, node: ast.MatchAs) -> None:
        if node.name:
            self.check_binding(node, node.name)
        self.generic_visit(node)

    def visit_MatchStar(self, node: ast.MatchStar) -> None:
        if node.name:
            self.check_binding(node, node.name)

    def visit_MatchMapping(self, node: ast.MatchMapping) -> None:
        if node.rest:
            self.check_binding(node, node.rest)
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        value = node.value
        if isinstance(value, str) and _DUNDER.match(value) and value not in _ATTR_DUNDERS_OK:
            self.flag(node, f"the string {value!r} names an interpreter internal (a way to "
                            "reach it by name)")


def _prefixes(dotted: str) -> Iterator[str]:
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        yield ".".join(parts[:i])


def _params(args: ast.arguments) -> list[str]:
    every = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
    return [a.arg for a in every if a is not None]


def _is_constant_name(name: str) -> bool:
    """``CLASS_NAMES``, ``PROFILES``: module data by Python's naming convention."""
    return any(c.isalpha() for c in name) and name == name.upper()


def _is_false(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value in (False, None, 0)


def _class_attribute_names(stmt: ast.stmt) -> list[str]:
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [stmt.name]
    targets: list[ast.AST] = []
    if isinstance(stmt, ast.Assign):
        targets = list(stmt.targets)
    elif isinstance(stmt, (ast.AnnAssign, ast.AugAssign)):
        targets = [stmt.target]
    return [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]


def _special_method_reason(cls: str, name: str) -> str | None:
    if name in _RAW_DISPLAY:
        return (f"class {cls} defines {name}: raw HTML or JavaScript output, run in the "
                "browser of whoever opens the notebook")
    if not _DUNDER.match(name) or name in _CLASS_DUNDERS_OK:
        return None
    if name in _COMPARISON:
        what = "its objects can compare equal to (or be true for) anything"
    elif name in _CONVERSION:
        what = "its objects can pass for any number or array"
    elif _ARITHMETIC.match(name):
        what = "arithmetic on its objects can return anything (|got - expected| < tol)"
    elif name in _LOOKUP:
        what = "it changes attribute lookup or isinstance checks"
    else:
        what = "a special method that changes how Python treats its objects"
    return f"class {cls} defines {name}: {what}"


def _magic_call(node: ast.Call) -> tuple[str, str, str, str | None] | None:
    """``get_ipython().run_line_magic(...)`` and friends, as IPython's transformer writes them.

    Returns (kind, magic name, line, cell body) for a magic, ``("line", "system", cmd,
    None)`` for ``!cmd``; ``None`` for anything else.
    """
    func = node.func
    if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Call)
            and isinstance(func.value.func, ast.Name) and func.value.func.id == "get_ipython"
            and not func.value.args and not func.value.keywords and not node.keywords):
        return None
    args = node.args
    if not all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in args):
        return None
    values = [a.value for a in args]
    if func.attr == "run_line_magic" and len(values) == 2:
        return "line", values[0], values[1], None
    if func.attr == "run_cell_magic" and len(values) == 3:
        return "cell", values[0], values[1], values[2]
    if func.attr in ("system", "getoutput") and len(values) == 1:
        return "line", "system", values[0], None
    return None
