"""Parsing Python source from several grading threads at once.

``course grade --jobs N`` reviews submissions in N threads, and the integrity scan and
the demonstration check parse every code cell with :func:`ast.parse`. On CPython 3.11
that is not thread-safe: the check that guards building the syntax tree keeps its depth
in state the whole interpreter shares, so a thread that parses while another thread's
parse is paused (a garbage collection that runs Python code is enough) makes the paused
one fail with ``SystemError: AST constructor recursion depth mismatch``. That happened
in a real run of the grading tests, so every parse in the grading package goes through
:func:`parse`, which lets one thread parse at a time.

It also reads at most :data:`MAX_SOURCE_CHARS` characters. The syntax tree of a cell
takes hundreds of times its size in memory: a 17 MiB cell (a notebook may have 20 MiB)
took 11 GiB and three minutes to parse, in the grader's own process and under the lock,
while the other grading threads waited. A real lesson notebook, solved, holds at most
about 40,000 characters of code.

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
from typing import Final, Literal, overload

_LOCK = threading.Lock()

#: The longest code :func:`parse` reads, in characters (six times a solved lesson's code).
MAX_SOURCE_CHARS: Final = 256 * 1024


class SourceTooLarge(ValueError):
    """Code longer than :data:`MAX_SOURCE_CHARS`: :func:`parse` does not read it."""


@overload
def parse(code: str, mode: Literal["exec"] = "exec") -> ast.Module: ...
@overload
def parse(code: str, mode: Literal["eval"]) -> ast.Expression: ...
def parse(code: str, mode: str = "exec") -> ast.AST:
    """:func:`ast.parse` of ``code`` (``mode`` ``"exec"`` or ``"eval"``), one thread at a time.

    It raises what :func:`ast.parse` raises (``SyntaxError``, ``ValueError``,
    ``RecursionError``, ``MemoryError``), and :class:`SourceTooLarge` (a ``ValueError``)
    for code longer than :data:`MAX_SOURCE_CHARS`, before taking the lock.

    >>> parse("def f(:")
    Traceback (most recent call last):
    ...
    SyntaxError: invalid syntax
    >>> parse("x = 1; " * 50_000)
    Traceback (most recent call last):
    ...
    course_utils.instructor.grading.parsing.SourceTooLarge: code: 350,000 characters; at most 262,144 are parsed
    """
    if len(code) > MAX_SOURCE_CHARS:
        raise SourceTooLarge(f"code: {len(code):,} characters; at most {MAX_SOURCE_CHARS:,} "
                             "are parsed")
    with _LOCK:
        return ast.parse(code, mode=mode)
