"""What the integrity scan flags and why: the rule tables and :class:`Finding`.

:mod:`course_utils.instructor.grading.integrity` explains the levers a student's code may pull to
make nbgrader's tests pass without solving anything; this module holds the lists the
scan checks names, modules, attributes and special methods against, and the reason an
instructor reads for each.

Examples
--------
>>> "all" in PROTECTED_NAMES, "matplotlib" in HARMLESS_LINE_MAGICS
(True, True)
>>> FORBIDDEN_MODULES["gc"]
'interpreter internals (frames, live objects, memory)'
>>> special_method_reason("Anything", "__eq__")
'class Anything defines __eq__: its objects can compare equal to (or be true for) anything'
"""

from __future__ import annotations

import builtins
import dataclasses
import re
from typing import Final

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

BUILTIN_REASONS: Final = {
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
HISTORY = re.compile(r"^(In|Out|_ih|_oh|_dh|_i|_ii|_iii|_i\d+|_\d+|__|___)$")
DUNDER = re.compile(r"^__\w+__$")
#: Dunder names a student may read as plain names.
NAME_DUNDERS_OK: Final = frozenset({"__name__", "__doc__", "__file__", "__debug__"})
#: Dunder attributes that reach nothing (reading a name, calling the usual protocols).
ATTR_DUNDERS_OK: Final = frozenset({
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
MACHINERY_ATTRS: Final = {
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
FORBIDDEN_MODULES: Final = {
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
FORBIDDEN_COMPONENTS: Final = frozenset({
    "builtins", "__builtin__", "importlib", "gc", "ctypes", "inspect", "sys", "IPython",
    "ipykernel", "pickle", "marshal", "mock", "runpy", "pydoc", "pkgutil", "zmq",
    "traitlets", "ipywidgets", "wrapt", "dill", "cloudpickle", "codeop", "copyreg",
    "ctypeslib"})
#: What of ``sys`` stays free to use.
SYS_OK: Final = frozenset({
    "stdout", "stderr", "stdin", "argv", "version", "version_info", "platform", "executable",
    "maxsize", "float_info", "int_info", "byteorder", "implementation", "exit", "getsizeof",
    "getrecursionlimit", "setrecursionlimit", "hexversion", "api_version",
    "getdefaultencoding", "getfilesystemencoding", "float_repr_style", "flags", "prefix",
    "base_prefix", "exec_prefix", "maxunicode", "stdlib_module_names"})
TYPES_OK: Final = frozenset({"SimpleNamespace", "MappingProxyType", "GenericAlias",
                              "NoneType", "UnionType", "EllipsisType", "NotImplementedType"})
#: What of ``inspect`` reads code without reaching frames or live namespaces.
INSPECT_OK: Final = frozenset({
    "signature", "Signature", "Parameter", "BoundArguments", "getsource", "getsourcelines",
    "getdoc", "cleandoc", "getfullargspec", "isclass", "isfunction", "ismethod", "ismodule",
    "isbuiltin", "isroutine", "iscoroutinefunction", "isgeneratorfunction", "isabstract"})
#: What of ``traceback`` reads the calling frames (the test's own lines) rather than an
#: exception's.
TRACEBACK_STACK: Final = frozenset({"extract_stack", "format_stack", "print_stack",
                                     "walk_stack", "StackSummary"})
THREADING_HOOKS: Final = frozenset({"settrace", "setprofile", "settrace_all_threads",
                                     "setprofile_all_threads", "excepthook"})
#: Module data a student may change in place (plot style, environment variables).
MUTABLE_MODULE_DATA: Final = frozenset({"rcParams", "environ"})
MUTATORS: Final = frozenset({"append", "extend", "insert", "clear", "pop", "popitem",
                              "setdefault", "update", "remove", "discard", "add", "sort",
                              "reverse"})
#: Packages a student may well import out of habit although grading lacks them (the
#: import then fails on its own): not worth a review.
COMMON_PACKAGES: Final = frozenset({
    "google", "seaborn", "tqdm", "pandas", "plotly", "PIL", "cv2", "torch", "torchvision",
    "sklearn", "scipy", "skimage", "imageio", "h5py", "tensorflow_datasets", "tensorflow_hub",
    "keras_tuner", "wandb", "tensorboard", "statsmodels", "sympy", "numba", "jax", "rich"})
#: Names of modules a test cell may import that the scan does not see (hidden tests).
COMMON_MODULES: Final = {"np": "numpy", "numpy": "numpy", "tf": "tensorflow",
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



def special_method_reason(cls: str, name: str) -> str | None:
    """Why class ``cls`` defining special method ``name`` is flagged, or ``None``."""
    if name in _RAW_DISPLAY:
        return (f"class {cls} defines {name}: raw HTML or JavaScript output, run in the "
                "browser of whoever opens the notebook")
    if not DUNDER.match(name) or name in _CLASS_DUNDERS_OK:
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

