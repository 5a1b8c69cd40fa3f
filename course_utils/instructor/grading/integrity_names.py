"""What the names of a notebook are bound to, read statically, and IPython's syntax.

The integrity scan (:mod:`course_utils.instructor.grading.integrity_scanner`) needs to know which
names are modules (``np``, ``t = np.testing``), which are things taken from a module,
and which are the student's own values, across all the cells of a notebook; and how
IPython turns a cell's magics and ``!`` commands into Python before it runs it. Both
are read from the source alone: nothing of the student's is imported or run.

Examples
--------
>>> context = Context.build(["import numpy as np\\nt = np.testing"], own=[])
>>> sorted(context.names.paths["t"])
['numpy.testing']
>>> transform("%time x = 1")
"get_ipython().run_line_magic('time', 'x = 1')\\n"
>>> expansions("ls {folder} $name")
['folder', 'name']
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import importlib.util
import keyword
import sys
import types
from collections.abc import Callable, Iterable
from pathlib import Path

from course_utils.instructor.grading.integrity_rules import (
    COMMON_MODULES,
    HARMLESS_LINE_MAGICS,
    PROTECTED_NAMES,
)
from course_utils.instructor.grading.parsing import parse

# --------------------------------------------------------------------------- IPython syntax


@functools.lru_cache(maxsize=1024)
def transform(source: str) -> str | None:
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


def automagic(line: str, shadowed: set[str]) -> tuple[str, str] | None:
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


def expansions(text: str) -> list[str]:
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


def magic_call(node: ast.Call) -> tuple[str, str, str, str | None] | None:
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
def installed(top: str) -> bool:
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
    known = {name: (path, True) for name, path in COMMON_MODULES.items()}
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
    cheap to import, says what the name is. A name the package loads on first use
    (``course_utils.callbacks``, which imports Keras) is looked up without loading it.
    """
    if attr in COMMON_MODULES:
        return True
    if dotted == "course_utils" or dotted.startswith("course_utils."):
        try:
            bound = vars(importlib.import_module(dotted))
        except ImportError:
            return _is_submodule(f"{dotted}.{attr}")
        if attr in bound:
            return isinstance(bound[attr], types.ModuleType)
    return _is_submodule(f"{dotted}.{attr}")


@dataclasses.dataclass
class Names:
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
class Context:
    """Module-level facts of the whole notebook that the scan of one cell needs."""

    names: Names
    own: set[str]       # module-level names bound by cells other than tests
    shadowed: set[str]  # names bound anywhere at module level (they hide automagic)

    @classmethod
    def build(cls, sources: Iterable[str], own: Iterable[str]) -> Context:
        trees = [t for t in (_parse(s) for s in sources) if t is not None]
        names = Names()
        bindings = [b for tree in trees for b in scope_bindings(tree.body, module=True)]
        resolve(bindings, names, lambda n: module_lookup(names, n))
        own_names = {b.name for tree in (_parse(s) for s in own) if tree is not None
                     for b in scope_bindings(tree.body, module=True)}
        return cls(names, own_names, set(names.kinds))


def module_lookup(names: Names, name: str) -> tuple[set[str], set[str]]:
    """(kinds, paths) of module-level ``name``: as bound, else as lessons usually bind it."""
    if name in names.kinds:
        return names.kinds[name], names.paths[name]
    if name not in _known_modules():
        return set(), set()
    path, sure = _known_modules()[name]
    return {"module" if sure else "known"}, {path}


@functools.lru_cache(maxsize=1024)
def _parse(source: str) -> ast.Module | None:
    code = transform(source)
    if code is None:
        return None
    try:
        return parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


_Lookup = Callable[[str], tuple[set[str], set[str]]]


@dataclasses.dataclass
class _Binding:
    name: str
    how: str                  # "module", "object" (imported), "value", "other"
    node: ast.AST | None      # the assigned value ("value") or the import's dotted path
    path: str | None = None


def scope_bindings(body: list[ast.stmt], *, module: bool) -> list[_Binding]:
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


def resolve(bindings: list[_Binding], names: Names, lookup: _Lookup) -> None:
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
    path = module_expr(node, lookup)
    if path is not None:
        return "module", path
    root = chain_path(node, lookup)
    if root is not None:
        return "derived", root
    return "other", None


def _call_name(node: ast.Call) -> str | None:
    func = node.func
    return func.id if isinstance(func, ast.Name) else \
        func.attr if isinstance(func, ast.Attribute) else None


def module_expr(node: ast.AST | None, lookup: _Lookup) -> str | None:
    """The dotted name of the module ``node`` evaluates to, if it surely is one."""
    if isinstance(node, ast.Name):
        kinds, paths = lookup(node.id)
        return sorted(paths)[0] if kinds in ({"module"}, {"known"}) and paths else None
    if isinstance(node, ast.Attribute):
        base = module_expr(node.value, lookup) or chain_path(node.value, lookup)
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


def chain_path(node: ast.AST | None, lookup: _Lookup) -> str | None:
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
        base = module_expr(node, lookup)
    if base is None:
        return None
    return ".".join([base, *reversed(attrs)])
