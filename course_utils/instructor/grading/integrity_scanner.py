"""The integrity scan of one cell: an AST visitor that finds the levers in its code.

:func:`scan_cell` parses a cell as IPython runs it and walks its tree once with
:class:`Scanner`, which tracks what each name is bound to in each scope and flags the
uses the rules of :mod:`course_utils.instructor.grading.integrity_rules` name (magics, whose
arguments and bodies are code too, are scanned the same way).
:mod:`course_utils.instructor.grading.integrity` decides which cells of a notebook are scanned.

Examples
--------
>>> context = Context.build(["import numpy as np"], own=["import numpy as np"])
>>> [f.describe() for f in scan_cell("np.allclose = None", context, 3, "check")]
['cell 3 (check), line 1: replaces numpy.allclose: monkeypatches a module the tests use']
>>> scan_cell("model.trainable = False", context, None, None)
[]
"""

from __future__ import annotations

import ast
import dataclasses
import re
from collections.abc import Iterable, Iterator

from course_utils.instructor.grading.integrity_names import (
    Context,
    Names,
    automagic,
    chain_path,
    expansions,
    installed,
    magic_call,
    module_expr,
    module_lookup,
    resolve,
    scope_bindings,
    transform,
)
from course_utils.instructor.grading.integrity_rules import (
    ATTR_DUNDERS_OK,
    BUILTIN_REASONS,
    CODE_MAGICS,
    COMMON_PACKAGES,
    DUNDER,
    FORBIDDEN_COMPONENTS,
    FORBIDDEN_MODULES,
    HARMLESS_CELL_MAGICS,
    HARMLESS_LINE_MAGICS,
    HISTORY,
    INSPECT_OK,
    MACHINERY_ATTRS,
    MUTABLE_MODULE_DATA,
    MUTATORS,
    NAME_DUNDERS_OK,
    PROTECTED_NAMES,
    SYS_OK,
    THREADING_HOOKS,
    TRACEBACK_STACK,
    TYPES_OK,
    Finding,
    special_method_reason,
)
from course_utils.instructor.grading.parsing import SourceTooLarge, parse


def scan_cell(source: str, context: Context, cell: int | None,
              grade_id: str | None, depth: int = 0) -> list[Finding]:
    """Findings of one cell, run as IPython runs it (automagic on one-line cells too)."""
    findings: list[Finding] = []

    def add(line: int, reason: str) -> None:
        findings.append(Finding(cell, grade_id, line, reason))

    if depth > 8:
        add(1, "magics nested too deeply to scan")
        return findings
    code = transform(source)
    if code is None:
        return findings
    lines = source.splitlines()
    offset = next((i for i, text in enumerate(lines) if text.strip()), 0)  # IPython drops them
    tree: ast.Module | None = None
    try:
        tree = parse(code)
    except SourceTooLarge:
        add(1 + offset, "code too large to scan")
        return findings
    except (SyntaxError, ValueError, MemoryError):
        pass
    except RecursionError:
        add(1 + offset, "code nested too deeply to scan")
        return findings
    if len(code.splitlines()) == 1:
        # A name the notebook binds hides a magic of that name, but only where the line
        # is Python: a binding the scan sees may never run.
        magic = automagic(code.strip("\n"), context.shadowed if tree is not None else set())
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


def _scan_magic(kind: str, name: str, line: str, body: str | None, context: Context,
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
    for expression in expansions(line):
        found += _scan_expression(expression, context, depth, f"{shown} {{...}}")
    if name in CODE_MAGICS:
        starts = [m.start() for m in re.finditer(r"\S+", line)]
        for start in starts:
            found += scan_cell(line[start:], context, None, None, depth + 1)
        if body is not None:
            found += [dataclasses.replace(f, line=f.line + 1)
                      for f in scan_cell(body, context, None, None, depth + 1)]
    return found


def _scan_expression(expression: str, context: Context, depth: int,
                     where: str) -> list[Finding]:
    try:
        tree = parse(expression.strip(), mode="eval")
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
    names: Names
    declared_global: set[str]


class _Scanner(ast.NodeVisitor):
    """One walk over a cell's tree, collecting (line, reason) pairs."""

    def __init__(self, context: Context, depth: int) -> None:
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
        return module_lookup(self.context.names, name)

    def module_level(self, name: str) -> bool:
        """Whether binding ``name`` here binds it in the notebook's namespace."""
        return self.scopes[-1].kind == "module" or name in self.scopes[-1].declared_global

    def enter(self, kind: str, body: list[ast.stmt], params: Iterable[str] = ()) -> None:
        names = Names()
        for param in params:
            names.bind(param, "other")
        bindings = scope_bindings(body, module=False)
        declared = {n for stmt in body for sub in ast.walk(stmt)
                    if isinstance(sub, ast.Global) for n in sub.names}
        self.scopes.append(_Scope(kind, names, declared))
        resolve(bindings, names, self.lookup)

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
        if name in BUILTIN_REASONS:
            self.flag(node, f"{name} {BUILTIN_REASONS[name]}")
        elif DUNDER.match(name) and name not in NAME_DUNDERS_OK:
            if name == "__import__" and called and self.constant_import(parent):
                return
            self.flag(node, f"{name} reaches interpreter internals (the builtins, imports, "
                            "the module itself)")
        elif HISTORY.match(name) and not (own and name in ("_i", "_ii", "_iii", "__", "___")):
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
        elif name.startswith("_") and name != "_" and not own and not DUNDER.match(name):
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
        if DUNDER.match(name) and self.scopes[-1].kind != "class":
            self.flag(node, f"binds {name}, a name of the interpreter's own")
        elif name in PROTECTED_NAMES and self.module_level(name):
            self.flag(node, f"rebinds the builtin {name}, which the tests rely on")

    def visit_Global(self, node: ast.Global) -> None:
        for name in node.names:
            if name in PROTECTED_NAMES or DUNDER.match(name):
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
            and (not DUNDER.match(name.value) or name.value in ATTR_DUNDERS_OK) \
            and name.value not in MACHINERY_ATTRS

    # ---- imports

    def check_module(self, node: ast.AST, module: str) -> None:
        for prefix in _prefixes(module):
            if prefix in FORBIDDEN_MODULES:
                self.flag(node, f"imports {module}: {FORBIDDEN_MODULES[prefix]}")
                return
        top = module.split(".")[0]
        if not installed(top) and top not in COMMON_PACKAGES:
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
            if DUNDER.match(alias.name) and alias.name not in ATTR_DUNDERS_OK:
                self.flag(node, f"imports {alias.name}, an interpreter internal")
            self.check_binding(node, alias.asname or alias.name)

    # ---- attributes

    def visit_Attribute(self, node: ast.Attribute) -> None:
        attr = node.attr
        if DUNDER.match(attr) and attr not in ATTR_DUNDERS_OK:
            self.flag(node, f"{attr} reaches interpreter internals")
        elif attr in MACHINERY_ATTRS:
            self.flag(node, f".{attr} {MACHINERY_ATTRS[attr]}")
        if isinstance(node.ctx, ast.Load):
            module = module_expr(node, self.lookup)
            if module is not None and not self.alias_use(node, self.parent(node)):
                self.flag(node, f"passes the module {module} around, where it can be patched "
                                "under another name")
        path = chain_path(node, self.lookup)
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
            elif parts[1] not in SYS_OK:
                self.flag(node, f"{'.'.join(parts[:2])} reaches the interpreter's hooks and "
                                "internals (and through them IPython's)")
        elif parts[0] == "types" and len(parts) > 1 and parts[1] not in TYPES_OK:
            self.flag(node, f"{'.'.join(parts[:2])} builds functions, classes or modules by "
                            "hand")
        elif parts[0] == "inspect" and len(parts) > 1 and parts[1] not in INSPECT_OK:
            self.flag(node, f"{'.'.join(parts[:2])} reaches frames or live namespaces")
        elif parts[0] == "traceback" and len(parts) > 1 and parts[1] in TRACEBACK_STACK:
            self.flag(node, f"{'.'.join(parts[:2])} reads the code of the caller (the test's "
                            "lines and expected values)")
        elif parts[0] == "threading" and len(parts) > 1 and parts[1] in THREADING_HOOKS:
            self.flag(node, f"{'.'.join(parts[:2])} installs an interpreter hook")
        elif parts[0] == "operator" and len(parts) > 1 \
                and parts[1] in ("methodcaller", "attrgetter"):
            call = self.parent(node)
            if not (isinstance(call, ast.Call) and call.func is node and call.args
                    and all(isinstance(a, ast.Constant) and isinstance(a.value, str)
                            and not DUNDER.match(a.value) for a in call.args[:1])):
                self.flag(node, f"{'.'.join(parts[:2])} with a computed name reaches "
                                "attributes by name")
        for prefix in _prefixes(path):
            if prefix in FORBIDDEN_MODULES and prefix not in (parts[0], path):
                self.flag(node, f"{path} reaches {prefix}: {FORBIDDEN_MODULES[prefix]}")
                break
        middle = parts[1:]
        for part in middle:
            if part in FORBIDDEN_COMPONENTS:
                self.flag(node, f"{path} reaches the module {part} through another module")
                break
            if part.startswith("_") and not DUNDER.match(part):
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
            path = chain_path(node.value, self.lookup)
            if path is not None and not set(path.split(".")) & MUTABLE_MODULE_DATA:
                self.flag(node, f"changes {path}[...] in place: module data the tests use")
        self.generic_visit(node)

    # ---- calls

    def visit_Call(self, node: ast.Call) -> None:
        magic = magic_call(node)
        if magic is not None:
            kind, name, line, body = magic
            for f in _scan_magic(kind, name, line, body, self.context, self.depth):
                self.flag(node, f.reason, offset=f.line - 1)
            return
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in MUTATORS \
                and isinstance(func.value, ast.Attribute) and _is_constant_name(func.value.attr):
            path = chain_path(func.value, self.lookup)
            if path is not None and not set(path.split(".")) & MUTABLE_MODULE_DATA:
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
                reason = special_method_reason(node.name, name)
                if reason:
                    self.flag(stmt, reason)
        self.enter("class", node.body)
        for stmt in node.body:
            self.visit(stmt)
        self.scopes.pop()

    def visit_comprehension_scope(self, node: ast.AST) -> None:
        generators = node.generators
        self.visit(generators[0].iter)
        names = Names()
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
        if isinstance(value, str) and DUNDER.match(value) and value not in ATTR_DUNDERS_OK:
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
