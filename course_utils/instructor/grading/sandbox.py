"""The sandbox that grading kernels run in: bubblewrap, resource limits and an output cap.

nbgrader's autograder runs a student's notebook in an IPython kernel. Here that kernel
(only the kernel: the nbgrader worker that starts it, and alone writes grades, stays
outside) runs inside `bubblewrap <https://github.com/containers/bubblewrap>`_:

- **Files.** The kernel sees the system (``/usr``, ``/etc``), the Python it runs
  (the base prefix and the virtual environment) and the ``course_utils`` package folder,
  all read-only, and a private scratch folder of its own (a size-limited ``tmpfs``, the
  ``HOME``, working directory and temporary folder). Nothing else: not the repository, the
  course's masters, the gradebook, the output folder or other students' submissions. The
  folder nbgrader asks the kernel to start in maps to that scratch.
- **Processes.** A pid namespace: the kernel sees only its own processes, not the grader,
  and when it stops or is killed, everything it started (``setsid`` children included)
  is gone. Run as root, bubblewrap switches to an unprivileged uid (one free uid from
  60000 up per kernel running at once) with no capabilities before the kernel starts;
  run as a user, it uses a user namespace and the user's own uid.
- **No network.** The kernel talks to the grader over Unix sockets (ZeroMQ's ``ipc``
  transport) in a folder bound into the sandbox; there is no other interface.
- **Limits** (:class:`Limits`): memory and address space, processes and threads, CPU
  time, scratch size (``setrlimit``, and a memory and pids cgroup where this machine
  lets us make one), and the bytes of output a notebook keeps (:class:`LimitOutputBytes`).
- **Interrupts** go as a message to the kernel (``interrupt_mode: message``), so
  nbgrader's per-cell timeout still stops an infinite loop and grading goes on.

The grading worker merges :func:`sandbox_config` into its nbgrader config; that is all
it takes. :func:`sandbox_problem` says why the sandbox cannot run on this machine (no
bubblewrap, not Linux, namespaces disabled), :func:`check_sandbox` raises it.
The kernel manager, its command line and the limits live in
:mod:`~course_utils.instructor.grading.bubblewrap`; this module holds the output caps and the config.

Examples
--------
>>> Limits().memory_bytes // GiB, Limits().disk_bytes // MiB
(6, 512)
>>> config = sandbox_config(Limits(memory_bytes=4 * GiB))
>>> config.SandboxedKernelManager.limits.memory_bytes // GiB
4
>>> sandbox_problem(path="/nowhere")
'bubblewrap (bwrap) is not installed: apt-get install bubblewrap (Debian, Ubuntu) or dnf install bubblewrap (Fedora)'
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from nbconvert.preprocessors import Preprocessor
from nbformat import NotebookNode
from nbgrader.preprocessors import Execute
from traitlets import Bool, Int
from traitlets.config import Config

from course_utils.instructor.grading.bubblewrap import (
    SANDBOX_HOME,
    GiB,
    Limits,
    MiB,
    SandboxedKernelManager,
    SandboxError,
    check_sandbox,
    sandbox_problem,
)

__all__ = [
    "GiB", "MiB", "SANDBOX_HOME", "LimitOutputBytes", "Limits", "SandboxError",
    "SandboxedExecute", "SandboxedKernelManager", "check_sandbox", "sandbox_config",
    "sandbox_problem",
]


class LimitOutputBytes(Preprocessor):
    """Cut each output to ``max_output_bytes`` and a notebook's outputs to ``max_bytes``.

    nbgrader's ``LimitOutput`` counts lines, so a single 50 MB line passes it. This one
    counts bytes (UTF-8 text, base64 images) and says, in the output, what it cut. Grades
    do not change: an error stays an error (name kept, message and traceback cut), a
    ``stderr`` stream stays one, and outputs of up to ``keep_bytes`` that decide a test's
    points (errors, a cell's result) are always kept whole, whatever came before.

    Examples
    --------
    >>> from nbformat.v4 import new_code_cell, new_notebook, new_output
    >>> nb = new_notebook(cells=[new_code_cell("print('x' * 5000)", outputs=[
    ...     new_output("stream", name="stdout", text="x" * 5000)])])
    >>> nb, _ = LimitOutputBytes(max_bytes=100).preprocess(nb, {})
    >>> out = nb.cells[0].outputs[0]
    >>> len(out.text) < 300, "output cut" in out.text
    (True, True)
    """

    enabled = Bool(True).tag(config=True)
    max_bytes = Int(Limits.output_bytes, help="bytes of output a notebook keeps").tag(config=True)
    max_output_bytes = Int(MiB, help="bytes one output keeps").tag(config=True)
    keep_bytes = Int(1024, help="errors and results up to this size are never cut").tag(
        config=True)

    def preprocess(self, nb: NotebookNode, resources: Any) -> tuple[NotebookNode, Any]:
        """Cut the outputs of ``nb`` in place; return ``nb, resources``."""
        left = self.max_bytes
        for cell in nb.cells:
            if cell.get("cell_type") != "code":
                continue
            kept: list[NotebookNode] = []
            for output in cell.get("outputs", []):
                size = _output_bytes(output)
                allowed = min(left, self.max_output_bytes)
                if output.get("output_type") in ("error", "execute_result"):
                    allowed = max(allowed, self.keep_bytes)
                if size > allowed:
                    output = _cut_output(output, allowed, size, self.max_bytes)
                    if _only_repeats_a_note(kept, output):
                        continue
                    size = _output_bytes(output)
                kept.append(output)
                left = max(0, left - size)
            cell.outputs = kept
        return nb, resources


def _output_bytes(output: Mapping[str, Any]) -> int:
    """Bytes an output takes in the notebook (its JSON)."""
    return len(json.dumps(output, ensure_ascii=False).encode())


def _cut_text(text: str | list[str], budget: int) -> str:
    """The first ``budget`` bytes of ``text`` (never half a character)."""
    if isinstance(text, list):
        text = "".join(text)
    return text.encode()[:max(0, budget)].decode("utf-8", errors="ignore")


def _cut_note(size: int, max_bytes: int) -> str:
    return (f"\n... [output cut: it was {size:,} bytes; a graded notebook keeps at most "
            f"{max_bytes:,} bytes of output] ...\n")


def _cut_output(output: NotebookNode, budget: int, size: int, max_bytes: int) -> NotebookNode:
    """``output`` cut to about ``budget`` bytes and a note saying so (same type and name)."""
    kind = output.get("output_type")
    note = _cut_note(size, max_bytes)
    if kind == "error":
        share = budget // 2
        output.evalue = _cut_text(output.get("evalue", ""), share)
        lines, used = [], 0
        for line in output.get("traceback", []):
            used += len(line.encode())
            if used > budget - share:
                break
            lines.append(line)
        output.traceback = [*lines, note.strip()]
        return output
    if kind == "execute_result" or (kind == "display_data" and budget > 0):
        # Only plain text survives a cut: half an image or half a page of HTML is noise.
        text = _cut_text(output.get("data", {}).get("text/plain", ""), budget)
        output.data = {"text/plain": text + note}
        output.metadata = {}
        return output
    name = output.get("name", "stdout") if kind == "stream" else "stdout"
    text = _cut_text(output.get("text", ""), budget) if kind == "stream" else ""
    return NotebookNode(output_type="stream", name=name, text=text + note)


def _only_repeats_a_note(kept: Sequence[NotebookNode], output: NotebookNode) -> bool:
    """Whether ``output`` is a bare cut note after a note on the same stream of the cell."""
    if output.get("output_type") != "stream" or not kept:
        return False
    last = kept[-1]
    return (output.text.startswith("\n... [output cut:")
            and last.get("output_type") == "stream" and last.get("name") == output.name
            and "... [output cut:" in last.get("text", ""))


class SandboxedExecute(Execute):
    """nbgrader's ``Execute`` with the kernel in the sandbox and a guard on its output.

    Past ``max_received_bytes`` of output in a notebook, further printed text and
    displays are dropped as they arrive (a note says so, once per cell and stream), so a
    cell that prints without end cannot fill the grader's memory before its timeout.
    Errors and results always arrive; :class:`LimitOutputBytes` then cuts precisely.
    nbgrader's ``Execute`` ignores ``Execute.kernel_manager_class`` set in a config; this
    one uses :class:`SandboxedKernelManager` unless told another class.

    Examples
    --------
    >>> SandboxedExecute().kernel_manager_class.__name__
    'SandboxedKernelManager'
    """

    max_received_bytes = Int(
        16 * Limits.output_bytes, help="output a notebook may send before more is dropped").tag(
            config=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("kernel_manager_class", SandboxedKernelManager)
        super().__init__(*args, **kwargs)
        self._received = 0

    def preprocess(self, nb: NotebookNode, resources: Any = None,
                   km: Any = None) -> tuple[NotebookNode, Any]:
        """Run ``nb`` in a sandboxed kernel (see nbconvert's ``ExecutePreprocessor``)."""
        self._received = 0
        return super().preprocess(nb, resources, km)

    def output(self, outs: list[NotebookNode], msg: dict[str, Any], display_id: str | None,
               cell_index: int) -> NotebookNode | None:
        """Record an output, or drop it past ``max_received_bytes`` (see the class)."""
        kind = msg.get("msg_type")
        self._received += len(json.dumps(msg.get("content", {})))
        if self._received <= self.max_received_bytes or kind not in (
                "stream", "display_data", "update_display_data"):
            return super().output(outs, msg, display_id, cell_index)
        name = msg["content"].get("name", "stdout") if kind == "stream" else "stdout"
        note = (f"... [output dropped: this notebook sent more than "
                f"{self.max_received_bytes:,} bytes of output] ...\n")
        if any(o.get("output_type") == "stream" and o.get("name") == name
               and o.get("text") == note for o in outs):
            return None
        out = NotebookNode(output_type="stream", name=name, text=note)
        outs.append(out)
        return out


def sandbox_config(limits: Limits | None = None, *, runtime_root: str | None = None,
                   read_only_paths: Sequence[str] = ()) -> Config:
    """The nbgrader config that runs autograded notebooks in the sandbox.

    Merge it into the config ``Autograde`` gets: ``config.merge(sandbox_config(limits))``.
    It replaces ``Execute`` in ``Autograde.autograde_preprocessors`` by
    :class:`SandboxedExecute`, adds :class:`LimitOutputBytes` after ``IgnorePattern``
    (nbgrader's default list otherwise), and sets the kernel manager's traits.

    Examples
    --------
    >>> config = sandbox_config(Limits(output_bytes=MiB))
    >>> [p.__name__ for p in config.Autograde.autograde_preprocessors][:3]
    ['SandboxedExecute', 'IgnorePattern', 'LimitOutputBytes']
    >>> config.LimitOutputBytes.max_bytes == MiB
    True
    """
    from nbgrader.converters import Autograde
    from nbgrader.preprocessors import IgnorePattern

    limits = Limits() if limits is None else limits
    if not isinstance(limits, Limits):
        raise TypeError(f"limits: expected a Limits, got {type(limits).__name__}")
    steps: list[type] = []
    for step in Autograde.class_traits()["autograde_preprocessors"].default():
        steps.append(SandboxedExecute if step is Execute else step)
        if step is IgnorePattern:
            steps.append(LimitOutputBytes)
    config = Config()
    config.Autograde.autograde_preprocessors = steps
    config.Execute.kernel_manager_class = SandboxedKernelManager
    config.SandboxedExecute.max_received_bytes = 16 * limits.output_bytes
    config.SandboxedKernelManager.limits = limits
    config.SandboxedKernelManager.read_only_paths = [str(p) for p in read_only_paths]
    if runtime_root is not None:
        config.SandboxedKernelManager.runtime_root = str(runtime_root)
    config.LimitOutputBytes.max_bytes = limits.output_bytes
    config.LimitOutputBytes.max_output_bytes = min(MiB, limits.output_bytes)
    return config
