"""Parsing Python source from several grading threads at once.

``course grade --jobs N`` reviews submissions in N threads, and the integrity scan and
the demonstration check parse every code cell with :func:`ast.parse`. On CPython 3.11
that is not thread-safe: the check that guards building the syntax tree keeps its depth
in state the whole interpreter shares, so a thread that parses while another thread's
parse is paused (a garbage collection that runs Python code is enough) makes the paused
one fail with ``SystemError: AST constructor recursion depth mismatch``. That happened
in a real run of the grading tests, so every parse in the grading package goes through
:func:`parse`, which lets one thread parse at a time.

Examples
--------
>>> parse("x = 1").body[0].targets[0].id
'x'
>>> type(parse("1 + 1", mode="eval").body).__name__
'BinOp'
"""

from __future__ import annotations

import ast
import threading
from typing import Literal, overload

_LOCK = threading.Lock()


@overload
def parse(code: str, mode: Literal["exec"] = "exec") -> ast.Module: ...
@overload
def parse(code: str, mode: Literal["eval"]) -> ast.Expression: ...
def parse(code: str, mode: str = "exec") -> ast.AST:
    """:func:`ast.parse` of ``code`` (``mode`` ``"exec"`` or ``"eval"``), one thread at a time.

    It raises what :func:`ast.parse` raises (``SyntaxError``, ``ValueError``,
    ``RecursionError``, ``MemoryError``).

    >>> parse("def f(:")
    Traceback (most recent call last):
    ...
    SyntaxError: invalid syntax
    """
    with _LOCK:
        return ast.parse(code, mode=mode)
