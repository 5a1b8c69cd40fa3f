"""The integrity scan: every lever of cheating we know of is flagged, no honest code is.

Each attack was tried for real on an unsolved lesson-00 notebook (two lines in an
ordinary cell gave full marks), or is an obfuscated variant of one; each must come back
with a reason an instructor understands. The honest side is every piece of code this
repository holds that a student could hand in: the masters' solutions, the wrong but
honest answers of ``tests/submissions``, the student versions as released, the masters'
own cells and what ``tests/test_grading.py``'s noisy student adds. Pure AST: no notebook
runs, the whole file takes about two seconds.
"""

from __future__ import annotations

import ast
import builtins
import copy
import gc
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest
import yaml
from _attacks import FAKES, HOOKS, NOISE, paste_setup_copy
from conftest import expand_autotests
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_raw_cell

from course_utils.instructor import release
from course_utils.instructor.grading import make_submission, solution_answers
from course_utils.instructor.grading.integrity import Finding, scan_notebook, scan_source
from course_utils.instructor.grading.parsing import parse
from course_utils.instructor.grading.submissions import notebook_to_grade

ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "assignments"
LESSONS = release.list_lessons(COURSE)
FIXTURES = Path(__file__).resolve().parent / "submissions"

# --------------------------------------------------------------------------- the attacks


#: One lever per entry: source, and a fragment of the reason it must be flagged with.
ATTACKS = {
    # IPython's execution machinery
    "get_ipython": ("ip = get_ipython()", "IPython's execution machinery"),
    "hook in a function default": ("def f(ip=get_ipython()):\n    pass", "get_ipython"),
    "hook in a lambda": ("(lambda: get_ipython())().events", "get_ipython"),
    "IPython import": ("from IPython import get_ipython as g", "imports IPython"),
    "IPython module": ("import IPython\nIPython.get_ipython()", "imports IPython"),
    "ipykernel": ("import ipykernel.kernelapp as k", "imports ipykernel"),
    "constant __import__ of IPython": ("__import__('IPython').get_ipython()", "imports IPython"),
    "exit holds the shell": ("exit._ip.events.register('post_run_cell', print)", "_ip"),
    "display's globals": ("display.__globals__['get_ipython']()", "__globals__"),
    "%config": ("%config InteractiveShell.ast_node_interactivity = 'all'", "%config"),
    "%load_ext": ("%load_ext cheat_extension", "%load_ext"),
    "%run": ("%run helper.py", "%run"),
    "%%writefile": ("%%writefile helper.py\nimport builtins\n", "%%writefile"),
    "%%javascript": ("%%javascript\nalert(1)\n", "JavaScript"),
    "automagic": ("config InteractiveShell.ast_node_interactivity = 'all'", "%config"),
    "automagic without arguments": ("autocall", "%autocall"),
    "magic called by hand": ("get_ipython().run_line_magic('config', 'X.y = 1')", "%config"),
    "magic inside %%capture": ("%%capture out\n%config X.y = 1\n", "%config"),
    "hook inside %%time": ("%%time\nget_ipython().events\n", "IPython's execution"),
    "hook inside %timeit": ("%timeit -n1 -r1 get_ipython().events", "IPython's execution"),
    "shell expansion": ("!echo {get_ipython().events.register('post_run_cell', print)}",
                        "IPython's execution"),
    "magic expansion": ("%matplotlib {__import__('builtins').abs}", "imports builtins"),
    "input history": ("In[-1]", "history"),
    "output history": ("def f():\n    return Out", "history"),
    "history variables": ("_ih", "history"),
    # interpreter hooks and internals
    "sys.settrace": ("import sys\nsys.settrace(lambda *a: None)", "sys.settrace"),
    "sys.setprofile": ("import sys\nsys.setprofile(None)", "sys.setprofile"),
    "sys.excepthook": ("import sys\nsys.excepthook = print", "sys.excepthook"),
    "sys.displayhook": ("import sys as s\ns.displayhook = print", "sys.displayhook"),
    "sys.modules write": ("import sys\nsys.modules['numpy'] = object()", "sys.modules"),
    "sys.modules read": ("import sys\nsys.modules['IPython'].get_ipython()", "sys.modules"),
    "sys._getframe": ("import sys\nsys._getframe(1).f_globals", "sys._getframe"),
    "sys through a course module": ("fingers.sys.settrace(print)", "reaches the module sys"),
    "from sys import": ("from sys import settrace", "sys.settrace"),
    "threading hook": ("import threading\nthreading.settrace(print)", "threading.settrace"),
    "gc": ("import gc\ngc.get_referrers(all)", "imports gc"),
    "ctypes": ("import ctypes", "imports ctypes"),
    "inspect frames": ("import inspect\ninspect.currentframe().f_back", "inspect.currentframe"),
    "calling test's lines": ("import traceback\ndef rank_k_accuracy(y, s, k=1):\n"
                             "    return traceback.extract_stack()[-2].line",
                             "traceback.extract_stack"),
    "cells' source": ("import linecache\nlinecache.cache", "imports linecache"),
    "generator frame": ("g = (i for i in [1])\ng.gi_frame.f_back.f_globals", "frame"),
    "traceback frame": ("try:\n    1 / 0\nexcept Exception as e:\n    e.__traceback__.tb_frame",
                        "__traceback__"),
    "code object": ("f.__code__ = (lambda *a: True).__code__", "__code__"),
    "subclasses walk": ("().__class__.__base__.__subclasses__()", "__class__"),
    "builtins dunder": ("__builtins__.isinstance = lambda *a: True", "__builtins__"),
    "builtins via print": ("print.__self__.all = lambda *a: True", "__self__"),
    "module dict": ("np.__dict__['allclose'] = lambda *a, **k: True", "__dict__"),
    # code the scan cannot read
    "exec": ("exec('all = lambda *a: True')", "exec"),
    "eval": ("eval('get_' + 'ipython()')", "eval"),
    "compile": ("code = compile('x = 1', 'cell', 'exec')", "compile"),
    "eval aliased": ("run = eval", "eval"),
    "computed __import__": ("__import__('bui' + 'ltins')", "__import__"),
    "importlib": ("import importlib\nimportlib.import_module('builtins')", "imports importlib"),
    "runpy": ("import runpy", "imports runpy"),
    "pickle": ("import pickle\npickle.loads(b'')", "imports pickle"),
    "pickled arrays": ("np.load('fake.npy', allow_pickle=True)", "allow_pickle"),
    "unittest.mock": ("from unittest.mock import ANY", "unittest.mock"),
    "mock by attribute": ("import unittest\nunittest.mock.ANY", "unittest.mock"),
    "module not installed": ("import my_helpers_written_at_run_time", "not installed"),
    "relative import": ("from . import helpers", "relative import"),
    # names and namespaces
    "getattr computed": ("getattr(f, '__glo' + 'bals__')", "getattr"),
    "getattr dunder": ("getattr(f, '__globals__')", "getattr"),
    "getattr aliased": ("get = getattr", "getattr"),
    "setattr": ("setattr(np, 'allclose', lambda *a, **k: True)", "setattr"),
    "delattr": ("delattr(np, 'allclose')", "delattr"),
    "globals write": ("globals()['all'] = lambda *a: True", "globals"),
    "vars write": ("vars(np)['allclose'] = lambda *a, **k: True", "vars"),
    "locals": ("locals()['x'] = 1", "locals"),
    "import builtins": ("import builtins", "imports builtins"),
    "import builtins renamed": ("import builtins as b\nb.isinstance = lambda *a: True",
                                "imports builtins"),
    "from builtins": ("from builtins import isinstance", "imports builtins"),
    "builtin rebound": ("all = lambda *args: True", "rebinds the builtin all"),
    "builtin by def": ("def isinstance(*args):\n    return True", "rebinds the builtin isinstance"),
    "builtin by class": ("class float(float):\n    pass", "rebinds the builtin float"),
    "builtin by import": ("import numpy as len", "rebinds the builtin len"),
    "builtin by from import": ("from numpy import all", "rebinds the builtin all"),
    "builtin by global": ("def f():\n    global float\n    float = int", "global float"),
    "builtin by for": ("for round in [lambda *a: 0]:\n    pass", "rebinds the builtin round"),
    "builtin by with": ("with open('x') as abs:\n    pass", "rebinds the builtin abs"),
    "builtin by except": ("try:\n    pass\nexcept Exception as sum:\n    pass",
                          "rebinds the builtin sum"),
    "builtin by walrus": ("[(len := f) for f in [print]]", "rebinds the builtin len"),
    "builtin by match": ("match print:\n    case isinstance:\n        pass",
                         "rebinds the builtin isinstance"),
    "builtin by tuple": ("x, tuple = 1, list", "rebinds the builtin tuple"),
    "star import": ("from numpy import *", "import *"),
    "test variable read": ("def rank_k_accuracy(y_true, scores, k=1):\n    return _expected",
                           "_expected"),
    # monkeypatching modules
    "numpy function": ("np.allclose = lambda *a, **k: True", "replaces numpy.allclose"),
    "numpy by full name": ("import numpy\nnumpy.isclose = max", "replaces numpy.isclose"),
    "numpy submodule alias": ("import numpy.testing as t\nt.assert_allclose = print",
                              "replaces numpy.testing.assert_allclose"),
    "module alias": ("x = np\nx.isclose = max", "replaces numpy.isclose"),
    "submodule alias": ("t = np.testing\nt.assert_allclose = print",
                        "replaces numpy.testing.assert_allclose"),
    "walrus alias": ("(x := np).isclose = max", "replaces numpy.isclose"),
    "module deleted": ("del np.isclose", "deletes numpy.isclose"),
    "module augmented": ("np.pi += 1", "replaces numpy.pi"),
    "course check": ("from course_utils import workflow as w\nw.check_splits = print",
                     "replaces course_utils.workflow.check_splits"),
    "course check by package": ("import course_utils.workflow\n"
                                "course_utils.workflow.check_splits = print",
                                "replaces course_utils.workflow.check_splits"),
    "course check through setup name": ("workflow.check_splits = print",
                                         "replaces course_utils.workflow.check_splits"),
    "numpy through a course module": ("metrics.np.isclose = max", "replaces course_utils.metrics"),
    "imported function": ("from numpy import isclose\nisclose.x = 1", "replaces numpy.isclose"),
    "keras class": ("keras.metrics.SparseTopKCategoricalAccuracy = object",
                    "replaces keras.metrics"),
    "__import__ alias": ("m = __import__('numpy')\nm.allclose = max", "replaces numpy.allclose"),
    "module as argument": ("def patch(m):\n    m.isclose = max\npatch(np)",
                           "passes the module numpy"),
    "module as default": ("def patch(m=np):\n    m.isclose = max", "passes the module numpy"),
    "module in a list": ("for m in [np]:\n    m.isclose = max", "passes the module numpy"),
    "submodule as argument": ("patch(np.testing)", "passes the module numpy.testing"),
    "walrus as argument": ("patch(m := np)", "passes the module numpy"),
    "alias made global": ("def f():\n    global a\n    a = np\nf()\na.isclose = max",
                          "replaces numpy.isclose"),
    "alias in a class": ("class A:\n    m = np\nA.m.isclose = max", "passes the module numpy"),
    "alias through a course module": ("x = workflow.np\nx.allclose = max",
                                      "replaces course_utils.workflow.np.allclose"),
    "NumPy's raw memory bridge": ("np.ctypeslib.as_array(p, (1,))", "ctypeslib"),
    "module data in place": ("labels.CLASS_NAMES.clear()", "course_utils.labels.CLASS_NAMES"),
    "module data item": ("workflow.SETTINGS['tolerance'] = 1e9", "in place"),
    "class of an object": ("type(x).__eq__ = lambda *a: True", "__eq__"),
    # special methods
    "equal to everything": ("class A:\n    def __eq__(self, other):\n        return True",
                            "defines __eq__"),
    "truthy": ("class A:\n    def __bool__(self):\n        return True", "defines __bool__"),
    "any number": ("class A:\n    def __float__(self):\n        return 0.25", "defines __float__"),
    "any array": ("class A:\n    def __array__(self, dtype=None):\n        return 0",
                  "defines __array__"),
    "arithmetic": ("class A(float):\n    def __rsub__(self, other):\n        return 0.0",
                   "defines __rsub__"),
    "lookup": ("class A:\n    def __getattr__(self, name):\n        return self",
               "defines __getattr__"),
    "isinstance": ("class M(type):\n    def __instancecheck__(cls, x):\n        return True",
                   "type(...)"),
    "hash": ("class A:\n    __hash__ = None", "defines __hash__"),
    "class property": ("class A:\n    @property\n    def __class__(self):\n        return float",
                       "defines __class__"),
    "type() class": ("A = type('A', (float,), {'__eq__': lambda s, o: True})", "type(...)"),
    "dunder by name": ("import operator\noperator.methodcaller('__setattr__', 'x', 1)(np)",
                       "'__setattr__'"),
    "metaclass": ("class A(metaclass=Meta):\n    pass", "metaclass"),
    "raw HTML display": ("class A:\n    def _repr_html_(self):\n        return '<script>'",
                         "_repr_html_"),
}


@pytest.mark.parametrize("name", ATTACKS)
def test_each_lever_is_flagged_with_a_reason(name):
    source, fragment = ATTACKS[name]
    findings = scan_source(source)
    assert findings, f"{name}: not flagged:\n{source}"
    reasons = [f.reason for f in findings]
    assert any(fragment in r for r in reasons), f"{name}: no reason mentions {fragment!r}: {reasons}"
    assert all(1 <= f.line <= source.count("\n") + 1 for f in findings), findings


def test_the_observed_hooks_submission_is_flagged_on_every_lever():
    lines = {f.line for f in scan_source(HOOKS)}
    # get_ipython, showtraceback, error_in_exec, the post_run_cell hook, the input
    # transformer and the AST transformer: each on its own line of the cell
    assert {2, 3, 5, 6, 7, 17} <= lines, sorted(lines)


def test_the_observed_fakes_submission_is_flagged_on_every_lever():
    reasons = "\n".join(f.describe() for f in scan_source(FAKES))
    for expected in ("imports builtins", "defines __eq__", "defines __lt__", "defines __sub__",
                     "defines __abs__", "replaces builtins.isinstance", "rebinds the builtin all",
                     "replaces numpy.isclose", "replaces numpy.allclose",
                     "replaces numpy.array_equal", "replaces course_utils.workflow.check_splits",
                     "replaces course_utils.workflow.check_architecture"):
        assert expected in reasons, f"{expected!r} missing from:\n{reasons}"


# --------------------------------------------------------------------------- which cells


def _meta(grade_id, *, grade=False, solution=False, locked=False, points=None):
    meta = {"grade_id": grade_id, "grade": grade, "solution": solution, "locked": locked,
            "schema_version": 3}
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


def _released():
    setup = new_code_cell("import numpy as np\nfrom course_utils import workflow",
                          metadata=_meta("setup", locked=True))
    answer = new_code_cell("def f(x):\n    raise NotImplementedError()",
                           metadata=_meta("f", solution=True))
    test = new_code_cell("import numpy as np\nassert np.isclose(f(2), 4)",
                         metadata=_meta("f_works", grade=True, locked=True, points=1))
    return new_notebook(cells=[setup, new_markdown_cell("Write f."), answer, test])


def test_locked_cells_are_put_back_by_nbgrader_so_their_submitted_source_is_not_scanned():
    released = _released()
    nb = copy.deepcopy(released)
    nb.cells[3].source = "import builtins\nbuiltins.isinstance = print"  # a locked test, edited
    nb.cells[0].source = "all = max"  # the locked set-up cell, edited
    assert scan_notebook(nb, released) == []


def test_solution_cells_and_added_cells_are_scanned_and_say_where():
    released = _released()
    nb = copy.deepcopy(released)
    nb.cells[2].source = "def f(x):\n    return x * x\n\nnp.isclose = max"
    nb.cells.insert(3, new_code_cell("workflow.check_splits = print"))
    found = scan_notebook(nb, released)
    assert found == [
        Finding(2, "f", 4, "replaces numpy.isclose: monkeypatches a module the tests use"),
        Finding(3, None, 1, "replaces course_utils.workflow.check_splits: monkeypatches a "
                            "module the tests use"),
    ]
    assert found[0].describe().startswith("cell 2 (f), line 4: replaces numpy.isclose")


def test_names_come_from_the_whole_notebook():
    released = _released()
    released.cells[0].source = "import numpy as numeric\nkeras = import_keras()"
    nb = copy.deepcopy(released)
    nb.cells[2].source = "numeric.allclose = max\nkeras.ops.isclose = max\n"
    reasons = [f.reason for f in scan_notebook(nb, released)]
    assert any("replaces numpy.allclose" in r for r in reasons), reasons
    assert any("replaces keras.ops.isclose" in r for r in reasons), reasons


def test_a_course_module_loaded_on_first_use_is_known_as_a_module_without_loading_it():
    """``from course_utils import callbacks`` binds a module: a patch of it is flagged, and
    the grader finds that out without importing Keras (seconds, once per grading run)."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from nbformat.v4 import new_code_cell, new_notebook\n"
        "from course_utils.instructor.grading.integrity import scan_notebook\n"
        "released = new_notebook(cells=[new_code_cell('from course_utils import callbacks')])\n"
        "nb = new_notebook(cells=[*released.cells,\n"
        "                         new_code_cell('callbacks.EpochCheckpoint = object')])\n"
        "print([f.reason for f in scan_notebook(nb, released)])\n"
        "print(sorted({'tensorflow', 'keras'} & set(sys.modules)))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert "replaces course_utils.callbacks.EpochCheckpoint" in out[0], out
    assert out[1] == "[]", out


def test_a_pasted_copy_of_a_visible_test_is_the_instructors_code():
    released = _released()
    released.cells[3].source += "\nassert str(__import__('numpy').round(f(2), 4)) == '4'"
    nb = copy.deepcopy(released)
    nb.cells.insert(2, copy.deepcopy(released.cells[3]))  # metadata and all, above the answer
    assert scan_notebook(nb, released) == []
    nb.cells[2].source += "\nall = max"  # once edited, it is the student's
    assert [f.reason for f in scan_notebook(nb, released)] == [
        "rebinds the builtin all, which the tests rely on"]


def _ids(nb):
    return [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]


def test_a_repeated_locked_id_stays_on_one_copy_and_the_others_are_scanned_as_the_worker_runs_them():
    released = _released()
    claim = _meta("f_works", grade=True, locked=True, points=1)
    # An earlier cell claiming the test's id: the worker strips its metadata and runs it.
    nb = copy.deepcopy(released)
    nb.cells.insert(1, new_code_cell("all = max", metadata=copy.deepcopy(claim)))
    assert [(f.cell, f.grade_id) for f in scan_notebook(nb, released)] == [(1, None)]
    assert _ids(notebook_to_grade(nb, released)) == ["setup", None, None, "f", "f_works"]
    # A later one too: the original, in its released place, keeps the id and is put back
    # (nbgrader alone would keep the last copy; the worker de-duplicates first).
    nb = copy.deepcopy(released)
    nb.cells.append(new_code_cell("all = max", metadata=copy.deepcopy(claim)))
    assert [(f.cell, f.grade_id) for f in scan_notebook(nb, released)] == [(4, None)]
    assert _ids(notebook_to_grade(nb, released)) == ["setup", None, "f", "f_works", None]
    # A copy above the original keeps the id and is put back; the original below runs
    # as it was released.
    nb = copy.deepcopy(released)
    nb.cells.insert(0, new_code_cell("all = max", metadata=copy.deepcopy(nb.cells[0].metadata)))
    assert scan_notebook(nb, released) == []
    assert _ids(notebook_to_grade(nb, released)) == ["setup", None, None, "f", "f_works"]


def test_hooks_in_a_pasted_copy_of_the_locked_setup_cell_are_flagged():
    student = release.read_notebook(ROOT / "notebooks" / f"{LESSONS[0]}.ipynb")
    nb = paste_setup_copy(student)  # the copy below the original, metadata kept
    pasted = next(i for i, c in enumerate(nb.cells) if c.source == HOOKS)
    graded = notebook_to_grade(nb, student)
    assert "nbgrader" not in graded.cells[pasted].metadata, "the worker runs the copy as code"
    findings = scan_notebook(nb, student)
    assert findings, "hooks pasted into a copy of the set-up cell went unseen"
    assert {(f.cell, f.grade_id) for f in findings} == {(pasted, None)}
    assert {2, 3, 5, 6, 7, 17} <= {f.line for f in findings}


def test_an_honest_pasted_copy_of_the_setup_cell_is_not_flagged():
    student = release.read_notebook(ROOT / "notebooks" / f"{LESSONS[0]}.ipynb")
    master = release.read_notebook(release.master_path(LESSONS[0], COURSE))
    solved = make_submission(student, solution_answers(master))
    assert scan_notebook(paste_setup_copy(solved, source=None), student) == []
    assert scan_notebook(paste_setup_copy(student, source=None), student) == []


def test_a_binding_hides_a_magic_typed_without_percent_only_where_the_line_is_python():
    released = _released()
    nb = copy.deepcopy(released)
    nb.cells += [new_code_cell("if False:\n    config = 1"),  # never runs
                 new_code_cell("config InteractiveShell.ast_node_interactivity = 'all'"),
                 new_code_cell("history = [0.5, 0.25]"), new_code_cell("history")]
    assert [(f.cell, f.reason) for f in scan_notebook(nb, released)] == [
        (5, "%config runs an IPython magic that can change how later cells run")]


def test_markdown_raw_and_unparsable_cells_are_not_findings():
    released = _released()
    nb = copy.deepcopy(released)
    nb.cells += [new_markdown_cell("```python\nimport builtins\n```"),
                 new_raw_cell("get_ipython()"),
                 new_code_cell("def f(:\n    get_ipython()"),
                 new_code_cell("%%time\ndef g(:\n    pass")]
    assert scan_notebook(nb, released) == []


def test_more_code_than_the_scan_reads_is_one_finding_and_is_never_parsed(monkeypatch):
    """Hooks hidden below padding: the scan neither parses the notebook (a 17 MiB cell
    once cost the grader 11 GiB) nor lets it through."""
    from course_utils.instructor.grading import integrity_names, integrity_scanner
    from course_utils.instructor.grading.parsing import MAX_SOURCE_CHARS, SourceTooLarge

    released = _released()
    padded = "# padding\n" * (MAX_SOURCE_CHARS // 10) + HOOKS
    nb = copy.deepcopy(released)
    nb.cells.insert(3, new_code_cell(padded))

    def no_parse(*args, **kwargs):
        raise AssertionError("a notebook over the limit was parsed")

    with monkeypatch.context() as patched:
        patched.setattr(integrity_names, "parse", no_parse)
        patched.setattr(integrity_scanner, "parse", no_parse)
        (found,) = scan_notebook(nb, released)
    assert found.cell is None and found.reason.endswith("too large to scan"), found
    assert f"more than the {MAX_SOURCE_CHARS:,}" in found.describe()
    # Under the limit, the same padding hides nothing: the hooks' findings, lines shifted.
    bare, just_under = copy.deepcopy(released), copy.deepcopy(released)
    bare.cells.insert(3, new_code_cell(HOOKS))
    just_under.cells.insert(3, new_code_cell("# padding\n" * 1000 + HOOKS))
    expected = scan_notebook(bare, released)
    assert expected and [(f.line - 1000, f.reason) for f in scan_notebook(just_under, released)] \
        == [(f.line, f.reason) for f in expected]
    # One cell alone (scan_source, or a cell some other caller hands the scanner).
    assert [f.reason for f in scan_source(padded)] == ["code too large to scan"]
    with pytest.raises(SourceTooLarge, match="at most 262,144 are parsed"):
        parse(padded)
    assert isinstance(SourceTooLarge("x"), ValueError), "callers that skip what does not parse"


def test_a_markdown_cell_turned_into_a_locked_code_cell_is_put_back():
    released = _released()
    nb = copy.deepcopy(released)
    nb.cells[0] = new_markdown_cell("all = max", metadata=nb.cells[0].metadata)
    assert scan_notebook(nb, released) == []


def test_plain_json_notebooks_are_read_too():
    released = _released()
    nb = copy.deepcopy(released)
    nb.cells[2].source = ["def f(x):\n", "    return x\n", "all = max\n"]
    as_json = nbformat.from_dict(nb)
    assert [f.line for f in scan_notebook(dict(as_json), dict(released))] == [3]


def test_bad_arguments_say_what_was_expected():
    with pytest.raises(TypeError, match="source: expected str, got bytes"):
        scan_source(b"x = 1")
    with pytest.raises(TypeError, match="nb: expected a notebook"):
        scan_notebook(["x = 1"], _released())
    with pytest.raises(TypeError, match="released: expected a notebook"):
        scan_notebook(_released(), None)


# --------------------------------------------------------------------------- honest code


def _defined_names(source: str) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return names


def _test_names(master, answers) -> list[str]:
    """Names the master's tests read or bind that a student could rebind (test_grading)."""
    own = set().union(*(_defined_names(a) for a in answers.values()))
    used: set[str] = set()
    for cell in master.cells:
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade"):
            tree = ast.parse(expand_autotests(cell.source))
            used |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    return sorted(used - own - set(dir(builtins)))




@pytest.mark.parametrize("lesson", LESSONS)
def test_no_honest_code_of_a_lesson_is_flagged(lesson):
    master = release.read_notebook(release.master_path(lesson, COURSE))
    student = release.read_notebook(ROOT / "notebooks" / f"{lesson}.ipynb")
    answers = solution_answers(master)
    flagged: list[str] = []

    def check(what, findings):
        flagged.extend(f"{what}: {f.describe()}" for f in findings)

    for grade_id, answer in answers.items():
        check(f"solution {grade_id}", scan_source(answer))
    check("solved notebook", scan_notebook(make_submission(student, answers), student))
    check("student version", scan_notebook(student, student))
    for index, cell in enumerate(master.cells):
        if cell.cell_type == "code" and not cell.metadata.get("nbgrader", {}).get("grade"):
            check(f"master cell {index}", scan_source(cell.source))
    for index, cell in enumerate(student.cells):
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade"):
            check(f"visible test cell {index}", scan_source(cell.source))
    wrong = yaml.safe_load((FIXTURES / lesson / "wrong_answers.yml").read_text())["submissions"]
    for name, spec in wrong.items():
        chosen = dict(answers)
        for grade_id, answer in spec["answers"].items():
            check(f"{name} {grade_id}", scan_source(answer["source"]))
            chosen[grade_id] = answer["source"]
        check(f"{name} notebook", scan_notebook(make_submission(student, chosen), student))
    # test_grading's noisy student: stderr noise around every answer, the tests' names rebound
    code = {c.metadata["nbgrader"]["grade_id"] for c in master.cells
            if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution")}
    code_answers = {k: v for k, v in answers.items() if k in code}
    noisy = make_submission(student, answers)
    names = _test_names(master, code_answers)
    noisy.cells.insert(2, new_code_cell(" = ".join(names) + " = None") if names else
                       new_code_cell("pass"))
    for answer in code_answers.values():
        functions = [n.name for n in ast.parse(answer).body if isinstance(n, ast.FunctionDef)]
        wrap = "\n".join(f"{f} = _noisy({f})" for f in functions)
        noisy.cells.append(new_code_cell(NOISE + "\n\n" + wrap))
    check("noisy student", scan_notebook(noisy, student))
    assert not flagged, "\n".join(flagged)


#: What students write while solving a lesson; none of it reaches the grading machinery.
HONEST = [
    "import numpy as np\nfrom sklearn.model_selection import train_test_split",
    "import matplotlib.pyplot as plt\nplt.rcParams['figure.dpi'] = 100\nplt.plot([1, 2])",
    "import os\nos.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'",
    "base.trainable = False\nself.model.stop_training = True\n"
    "layer.kernel_initializer = keras.initializers.HeNormal(seed=0)",
    "for layer in model.layers[:-1]:\n    layer.trainable = False",
    "class Monitor(keras.callbacks.Callback):\n    def __init__(self):\n"
    "        super().__init__()\n        self.ratios = {}\n\n"
    "    def on_epoch_end(self, epoch, logs=None):\n        self.ratios[epoch] = logs\n\n"
    "    def __repr__(self):\n        return f'Monitor({len(self.ratios)})'",
    "class Seq(keras.utils.PyDataset):\n    def __len__(self):\n        return 3\n\n"
    "    def __getitem__(self, i):\n        return i",
    "import dataclasses\n\n@dataclasses.dataclass\nclass Settings:\n    lr: float = 1e-3",
    "%matplotlib inline\n%time history = model.fit(x, y, epochs=2)\n!ls {RUN_DIR}\nfiles = !ls",
    "%%timeit -n1 -r1\nrank_k_accuracy(y, scores, 2)",
    "%pip install --quiet tqdm\nnp.mean?",
    "history",
    "print(type(x).__name__, f.__name__, np.__version__)\nif __name__ == '__main__':\n    pass",
    "rng = np.random.default_rng(0)\nnp.random.seed(0)\ntf.random.set_seed(0)",
    "for _ in range(3):\n    pass\n_, ax = plt.subplots()\nfor _i in range(2):\n    print(_i)",
    "_cache = {}\n\ndef f(x):\n    return _cache.setdefault(x, x * x)",
    "value = getattr(layer, 'kernel', None)\nok = hasattr(model, 'layers')",
    "metrics = model.evaluate(x, y, return_dict=True)\nlabels = y_train\n"
    "plots.plot_images(x[:4], labels[:4])\nmodel.fit(x, y, callbacks=callbacks)",
    "x = np.asarray(x, dtype=np.float32)\nok = isinstance(x, np.ndarray)",
    "import inspect\nprint(inspect.getsource(models.build_fingers_cnn))",
    "import traceback\ntry:\n    run()\nexcept ValueError:\n    traceback.print_exc()",
    "try:\n    from google.colab import drive\nexcept ImportError:\n    drive = None",
    "import sys\nprint('debug', file=sys.stderr)\nok = 'google.colab' in sys.modules",
    "total = sum(len(b) for b in batches)\nbest = max(scores, key=abs)",
    "def f(x, *, sum=0):\n    len = 3\n    return x + sum + len",
    "keras = import_keras()\nmodel = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])",
    "w = model.get_layer('out').kernel\nw.assign(w * 2)\nmodel.optimizer.learning_rate = 1e-4",
    "import math\nlr = 0.1 * math.cos(math.pi * step / total)",
    "np.char.add(a, b)\ntf.math.add(a, b)\nkeras.ops.sort(x)",
]


@pytest.mark.parametrize("source", HONEST)
def test_ordinary_student_code_is_not_flagged(source):
    assert scan_source(source) == [], source


#: What ``tests/test_grading_attacks.py``'s snooping, sabotaging and hogging students do:
#: the sandbox stops it; it is no lever on the grade, and they must come out unflagged.
SANDBOX_ONLY = '''
import os, signal, socket, subprocess
def _show(path):
    try:
        print("LIST", path, sorted(os.listdir(path))[:20])
    except Exception as exc:
        print("DENIED", path, type(exc).__name__)
for _path in ["../../../source", "/root", "/tmp"]:
    _show(_path)
def _try(what, action):
    try:
        action()
    except Exception as exc:
        print("FAILED", what, type(exc).__name__)
_try("gradebook", lambda: open("gradebook.db", "r+b").write(b"0" * 4096))
_try("later", lambda: subprocess.Popen(["sh", "-c", "sleep 8"], start_new_session=True))
for _pid in os.listdir("/proc"):
    if _pid.isdigit() and int(_pid) != os.getpid():
        _try("kill " + _pid, lambda: os.kill(int(_pid), signal.SIGKILL))
try:
    socket.create_connection(("127.0.0.1", 22), timeout=2)
except OSError as exc:
    print("NETWORK closed", exc)
_block = bytearray(2**10)
with open("filler.bin", "wb") as _fh:
    _fh.write(b"0")
_child = subprocess.Popen(["sleep", "1"], start_new_session=True)
'''


def test_misbehaviour_the_sandbox_stops_is_not_this_scans_business():
    assert scan_source(SANDBOX_ONLY) == []


def test_parses_from_two_grading_threads_never_overlap():
    """``course grade --jobs 2`` scans in two threads. On CPython 3.11 a parse that runs
    while another thread's parse is paused breaks the paused one (a real CI run failed
    with ``SystemError: AST constructor recursion depth mismatch``). Here thread A's
    parse is paused in a garbage collection, which waits for thread B to parse: B must
    wait for A instead, and both must parse."""
    big = "\n".join(f"x{i} = [{i}, ({i}, {{'a': {i}}})]" for i in range(3000))
    paused, b_parsed = threading.Event(), threading.Event()
    order: list[str] = []
    errors: list[BaseException] = []

    def pause_a(phase, info):
        caller = sys._getframe(1).f_code  # pause inside ast.parse only, not on the way in
        if (phase == "start" and threading.current_thread().name == "A" and not paused.is_set()
                and caller.co_name == "parse" and caller.co_filename == ast.__file__):
            paused.set()
            b_parsed.wait(1.0)

    def thread_a():
        threshold = gc.get_threshold()
        gc.callbacks.append(pause_a)
        gc.set_threshold(10)
        try:
            tree = parse(big)
            order.append(f"A parsed {len(tree.body)}")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            gc.set_threshold(*threshold)
            gc.callbacks.remove(pause_a)

    def nested(depth):  # a different depth than A's, as a second grading thread has
        return nested(depth - 1) if depth else parse("y = 1")

    def thread_b():
        paused.wait(10)
        try:
            nested(30)
            order.append("B parsed")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        b_parsed.set()

    threads = [threading.Thread(target=thread_b, name="B"), threading.Thread(target=thread_a, name="A")]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert paused.is_set(), "thread A's parse was never paused by a garbage collection"
    assert errors == []
    assert order == ["A parsed 3000", "B parsed"], order
    assert time.perf_counter() - start < 10
