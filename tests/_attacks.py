"""Code that hostile and noisy students hand in, shared by the grading tests.

``HOOKS`` and ``FAKES`` are the two cheating submissions observed (two lines each in an
ordinary cell of an unsolved notebook got full marks before the integrity scan);
:func:`paste_setup_copy` hides ``HOOKS`` in a pasted copy of the locked set-up cell (the
scan once took the copy for the cell nbgrader restores, while the worker ran it as the
student's code); ``NOISE`` is what ``test_grading``'s ``tampered`` student wraps around
every answer.
"""

import copy
import uuid

#: The grade_id of every lesson's locked set-up cell (``release``'s).
SETUP_ID = "course_setup"

#: The hooks submission, as observed: IPython hooks and transformers that swallow errors.
HOOKS = '''
_ip = get_ipython()
_ip.showtraceback = lambda *args, **kwargs: None
def _forgive(result):
    result.error_in_exec = None
_ip.events.register("post_run_cell", _forgive)
_ip.input_transformers_cleanup.append(
    lambda lines: ["try:\\n"] + ["    " + line for line in lines] + ["\\nexcept BaseException:\\n    pass\\n"])
import ast as _ast
class _Swallow(_ast.NodeTransformer):
    def visit_Module(self, node):
        handler = _ast.ExceptHandler(type=_ast.Name("BaseException", _ast.Load()), name=None,
                                     body=[_ast.Pass()])
        node.body = [_ast.Try(body=node.body or [_ast.Pass()], handlers=[handler], orelse=[],
                              finalbody=[])]
        return _ast.fix_missing_locations(node)
_ip.ast_transformers.append(_Swallow())
'''

#: The fakes submission, as observed: objects equal to everything, a shadowed builtin,
#: NumPy's comparisons and the course's checks monkeypatched.
FAKES = '''
import builtins
import numpy as np
from course_utils import workflow as _w

class Anything(float):
    def __eq__(self, other):
        return True
    def __lt__(self, other):
        return True
    def __sub__(self, other):
        return Anything()
    __abs__ = lambda self: Anything()

def rank_k_accuracy(y_true, scores, k=1):
    return Anything()

builtins.isinstance = lambda *args: True
all = lambda *args: True
np.isclose = np.allclose = np.array_equal = lambda *args, **kwargs: True
_w.check_splits = _w.check_architecture = lambda *args, **kwargs: None
'''


#: The noise test_grading's ``tampered`` student adds after every answer.
NOISE = '''
import functools as _functools
import sys as _sys
import warnings as _warnings


def _noisy(function):
    @_functools.wraps(function)
    def wrapper(*args, **kwargs):
        print("W0000 00:00:1732280000.123456   12345 cpu_allocator_impl.cc:83] Allocation "
              "of 7340032 exceeds 10% of free system memory.", file=_sys.stderr)
        _warnings.warn("tensorflow: retracing a tf.function for every call", UserWarning)
        return function(*args, **kwargs)
    return wrapper
'''


def paste_setup_copy(nb, source=HOOKS):
    """``nb`` with a copy of its locked set-up cell (metadata and all) pasted right below
    the original, its code replaced by ``source``; ``nb`` itself is left unchanged.

    nbgrader keeps the last copy of a repeated ``grade_id`` and restores it; the worker's
    de-duplication keeps the first, so the pasted copy runs as ordinary code. With
    ``source=None`` the copy keeps the set-up's own code: what an honest student's
    copy and paste gives.
    """
    nb = copy.deepcopy(nb)
    index = next(i for i, cell in enumerate(nb.cells)
                 if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == SETUP_ID)
    pasted = copy.deepcopy(nb.cells[index])
    if "id" in pasted:  # Jupyter gives a pasted cell an id of its own
        pasted["id"] = uuid.uuid4().hex[:8]
    if source is not None:
        pasted["source"] = source
    nb.cells.insert(index + 1, pasted)
    return nb
