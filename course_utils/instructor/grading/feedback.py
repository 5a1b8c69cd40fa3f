"""Feedback pages that show each test's result and message, and nothing to exploit.

nbgrader's ``GenerateFeedback`` renders the autograded notebook as it is: every test
cell's whole source, hidden tests included (nbgrader issue 917), and every output raw,
so a student's ``<script>`` or ``onerror`` runs in whoever opens the page. This module
does the same job in two steps the grading worker calls after ``Autograde``:

1. :func:`feedback_notebook` makes a copy safe to show. In every cell whose master has
   ``### BEGIN HIDDEN TESTS`` ... ``### END HIDDEN TESTS``, each such region (and the
   ``### AUTOTEST`` / ``### HASHED AUTOTEST`` checks nbgrader expanded into it) becomes
   one line saying hidden tests ran; the visible part stays. Errors of test cells keep
   ``ename: evalue`` (the assertion message a student can act on) but lose the
   traceback frames, which quote the test's source. Any output line quoting a hidden
   test line is removed. Output data other than plain text, PNG and JPEG (HTML,
   JavaScript, SVG, widgets, Markdown, LaTeX ...) is replaced by its ``text/plain`` or a
   note, in every cell; metadata that templates put in HTML is dropped.
2. :func:`render_feedback` renders it with nbgrader's own ``feedback`` template (the
   scores per cell and in total read from the gradebook, as nbgrader's ``GetGrades``
   does) and ``HTMLExporter.sanitize_html``. nbgrader's template renders Markdown
   without nbconvert's ``clean_html`` (it overrides that block), so Markdown, from
   cells and from the graders' comments, is sanitised here with ``bleach``: a short
   list of tags and attributes, links to ``http(s)``/``mailto`` only, the rest escaped.
   MathJax is loaded with its ``Safe`` extension by nbconvert's template.

In the worker, after ``Autograde`` (``db_url`` the worker's gradebook)::

    from course_utils.instructor.grading import feedback

    safe = feedback.feedback_notebook(read_notebook(autograded_path), read_notebook(master))
    page = feedback.render_feedback(safe, feedback.feedback_resources(
        db_url, course_id, assignment, student, notebook=assignment))
    write_text(feedback_dir / f"{assignment}.html", page)

Examples
--------
>>> import nbformat
>>> meta = {"nbgrader": {"grade_id": "t", "grade": True, "solution": False, "points": 1}}
>>> src = "assert f(1) == 1\\n### BEGIN HIDDEN TESTS\\nassert f(2) == 4, 'f(2)'\\n### END HIDDEN TESTS"
>>> master = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src, metadata=meta)])
>>> print(feedback_notebook(master, master).cells[0].source)
assert f(1) == 1
# Hidden tests ran here; their code is not part of the feedback.
"""

from __future__ import annotations

import base64
import binascii
import copy
import re
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

#: What replaces each hidden-test region in the feedback.
HIDDEN_NOTE: Final = "# Hidden tests ran here; their code is not part of the feedback."
#: Output data kept as it is: text is escaped by the template, images are checked base64.
SAFE_MIMETYPES: Final = ("text/plain", "image/png", "image/jpeg")
_BEGIN_HIDDEN = "BEGIN HIDDEN TESTS"
_END_HIDDEN = "END HIDDEN TESTS"
_REMOVED_LINE = "[a line quoting a hidden test was removed]"
_NBGRADER_KEYS = ("grade_id", "grade", "solution", "locked", "task", "points",
                  "schema_version", "cell_type", "checksum")
_CELL_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_BASE64 = re.compile(r"^[A-Za-z0-9+/=\s]*$")
_ATTACHMENT_TYPES = ("image/png", "image/jpeg", "image/gif")
#: Shortest hidden line that is looked for in outputs (shorter ones are too common).
_MIN_QUOTED = 8

# Markdown, rendered to HTML, keeps only these (everything else is shown escaped).
_TAGS = frozenset({
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "details", "div", "dl", "dt",
    "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "ol", "p",
    "pre", "q", "s", "small", "span", "strike", "strong", "sub", "summary", "sup", "table",
    "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul"})
_ATTRIBUTES: Final = {
    "a": ("href", "title"), "abbr": ("title",), "img": ("src", "alt", "title", "width", "height"),
    "td": ("align", "colspan", "rowspan"), "th": ("align", "colspan", "rowspan"),
    **{f"h{i}": ("id",) for i in range(1, 7)},
}
_LINK = re.compile(r"^(https?:|mailto:|#)", re.IGNORECASE)
_IMAGE_SOURCE = re.compile(r"^(https?:|data:image/(png|jpeg|gif);base64,|attachment:)",
                           re.IGNORECASE)


# --------------------------------------------------------------------------- the notebook


def feedback_notebook(autograded_nb: Any, master_nb: Any) -> Any:
    """A copy of the autograded notebook that is safe to show the student.

    ``autograded_nb`` is what nbgrader's ``Autograde`` wrote (test cells put back from
    the gradebook, hidden tests included, outputs from the run); ``master_nb`` the
    lesson's master, which says where the hidden tests are. Neither is changed.

    >>> import nbformat
    >>> out = nbformat.v4.new_output("display_data", data={
    ...     "text/html": "<script>alert(1)</script>", "text/plain": "<HTML object>"})
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x", outputs=[out])])
    >>> dict(feedback_notebook(nb, nbformat.v4.new_notebook()).cells[0].outputs[0].data)
    {'text/plain': '<HTML object>'}
    """
    import nbformat

    nb = nbformat.from_dict(copy.deepcopy(_as_dict(autograded_nb, "autograded_nb")))
    master = _as_dict(master_nb, "master_nb")
    master_ids, hidden_ids, quoted = _hidden_tests(master)
    quoted |= _hidden_lines_of(nb, hidden_ids)
    for cell in nb.cells:
        meta = _clean_cell_metadata(cell, master_ids)
        hidden = meta.get("grade_id") in hidden_ids
        is_test = hidden or bool(meta.get("grade") and not meta.get("solution"))
        if hidden:
            cell.source = _hide(_text(cell.get("source", "")), master_ids[meta["grade_id"]])
        if cell.get("cell_type") == "markdown":
            _clean_attachments(cell)
        else:
            cell.pop("attachments", None)
        if not isinstance(cell.get("id"), str) or not _CELL_ID.match(cell["id"]):
            cell["id"] = uuid.uuid4().hex[:8]
        if cell.get("cell_type") == "code":
            count = cell.get("execution_count")
            cell.execution_count = count if isinstance(count, int) else None
            cleaned = (_clean_output(out, is_test, quoted) for out in cell.get("outputs", []))
            cell.outputs = [out for out in cleaned if out is not None]
    nb.metadata = _clean_notebook_metadata(nb.get("metadata", {}))
    return nb


def _as_dict(nb: Any, name: str) -> Mapping[str, Any]:
    if not isinstance(nb, Mapping) or not isinstance(nb.get("cells"), list):
        raise TypeError(f"{name}: expected a notebook (a mapping with a 'cells' list), "
                        f"got {type(nb).__name__}")
    return nb


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _hidden_tests(master: Mapping[str, Any]) -> tuple[dict[str, str], set[str], set[str]]:
    """Master cell sources by grade_id, ids of cells with hidden tests, lines only they hold."""
    sources: dict[str, str] = {}
    hidden_ids: set[str] = set()
    hidden: set[str] = set()
    visible: set[str] = set()
    for cell in master.get("cells", []):
        source = _text(cell.get("source", ""))
        meta = (cell.get("metadata") or {}).get("nbgrader") or {}
        grade_id = meta.get("grade_id") if isinstance(meta, Mapping) else None
        inside, shown = _split_hidden(source)
        hidden |= {line.strip() for line in inside}
        visible |= {line.strip() for line in shown}
        if isinstance(grade_id, str):
            sources[grade_id] = source
            if inside or _BEGIN_HIDDEN in source:
                hidden_ids.add(grade_id)
    return sources, hidden_ids, {h for h in hidden - visible if len(h) >= _MIN_QUOTED}


def _hidden_lines_of(nb: Any, hidden_ids: set[str]) -> set[str]:
    """Lines of the hidden regions nbgrader put back (autotest checks expanded)."""
    lines: set[str] = set()
    for cell in nb.cells:
        meta = (cell.get("metadata") or {}).get("nbgrader") or {}
        if isinstance(meta, Mapping) and meta.get("grade_id") in hidden_ids:
            inside, shown = _split_hidden(_text(cell.get("source", "")))
            visible = {line.strip() for line in shown}
            lines |= {s for line in inside if len(s := line.strip()) >= _MIN_QUOTED
                      and s not in visible}
    return lines


def _split_hidden(source: str) -> tuple[list[str], list[str]]:
    """(lines inside hidden regions, lines outside), as nbgrader's ClearHiddenTests reads
    them; a region left open runs to the end of the cell."""
    inside, outside = [], []
    hiding = False
    for line in source.split("\n"):
        if _BEGIN_HIDDEN in line:
            hiding = True
        elif _END_HIDDEN in line:
            hiding = False
        elif hiding:
            inside.append(line)
        else:
            outside.append(line)
    return inside, outside


def _hide(source: str, master_source: str) -> str:
    """``source`` with each hidden region replaced by :data:`HIDDEN_NOTE`.

    The source is nbgrader's copy of the master's cell; if it has no hidden region
    where the master has one, the master's visible part is shown instead.
    """
    if _BEGIN_HIDDEN not in source:
        source = master_source
    lines: list[str] = []
    hiding = False
    for line in source.split("\n"):
        if _BEGIN_HIDDEN in line:
            hiding = True
            indent = line[: len(line) - len(line.lstrip())]
            lines.append(indent + HIDDEN_NOTE)
        elif _END_HIDDEN in line:
            hiding = False
        elif not hiding:
            lines.append(line)
    return "\n".join(lines)


def _clean_cell_metadata(cell: Any, master_ids: Mapping[str, str]) -> dict[str, Any]:
    """Keep only nbgrader's own fields, and only for cells the master has."""
    meta = cell.get("metadata") or {}
    nbgrader = meta.get("nbgrader") if isinstance(meta, Mapping) else None
    cell.metadata = {}
    if not isinstance(nbgrader, Mapping) or nbgrader.get("grade_id") not in master_ids:
        return {}
    kept = {k: nbgrader[k] for k in _NBGRADER_KEYS if k in nbgrader}
    if "points" in kept and not isinstance(kept["points"], (int, float)):
        kept.pop("points")
    cell.metadata = {"nbgrader": kept}
    return kept


def _clean_attachments(cell: Any) -> None:
    attachments = cell.get("attachments")
    if not isinstance(attachments, Mapping):
        cell.pop("attachments", None)
        return
    kept = {}
    for name, bundle in attachments.items():
        if not isinstance(bundle, Mapping) or not re.match(r"^[\w.-]{1,100}$", str(name)):
            continue
        images = {k: v for k, v in bundle.items() if k in _ATTACHMENT_TYPES and _is_base64(v)}
        if images:
            kept[name] = images
    cell["attachments"] = kept


def _clean_notebook_metadata(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The kernel's name and language only (widget state and the rest are dropped)."""
    kept: dict[str, Any] = {}
    spec = meta.get("kernelspec")
    if isinstance(spec, Mapping):
        kept["kernelspec"] = {k: str(spec[k]) for k in ("display_name", "language", "name")
                              if k in spec}
    info = meta.get("language_info")
    if isinstance(info, Mapping) and "name" in info:
        kept["language_info"] = {"name": str(info["name"])}
    return kept


def _is_base64(value: Any) -> bool:
    text = _text(value)
    if not _BASE64.match(text):
        return False
    try:
        base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _scrub(text: str, quoted: set[str]) -> str:
    """``text`` without the lines that quote a hidden test line."""
    if not quoted or not text:
        return text
    lines = text.split("\n")
    return "\n".join(_REMOVED_LINE if any(q in line for q in quoted) else line
                     for line in lines)


def _clean_output(output: Any, in_test: bool, quoted: set[str]) -> Any:
    """The output with only safe data; ``None`` for an output type nbformat does not know."""
    import nbformat

    kind = output.get("output_type")
    if kind == "stream":
        name = output.get("name") if output.get("name") in ("stdout", "stderr") else "stdout"
        return nbformat.v4.new_output("stream", name=name,
                                      text=_scrub(_text(output.get("text", "")), quoted))
    if kind == "error":
        ename = _scrub(str(output.get("ename", "Error")), quoted)
        evalue = _scrub(str(output.get("evalue", "")), quoted)
        traceback = [f"{ename}: {evalue}"] if in_test else \
            [_scrub(_text(line), quoted) for line in output.get("traceback", [])]
        return nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=traceback)
    if kind not in ("display_data", "execute_result"):
        return None
    data = output.get("data") if isinstance(output.get("data"), Mapping) else {}
    kept: dict[str, Any] = {}
    for mime in SAFE_MIMETYPES:
        if mime not in data:
            continue
        value = data[mime]
        if mime == "text/plain":
            kept[mime] = _scrub(_text(value), quoted)
        elif _is_base64(value):
            kept[mime] = "".join(_text(value).split())
    dropped = sorted(set(data) - set(kept))
    if "text/plain" not in kept:
        shown = ", ".join(dropped) or "empty"
        kept["text/plain"] = f"[{shown} output, not shown in the feedback]"
    metadata = {}
    for mime in ("image/png", "image/jpeg"):
        size = (output.get("metadata") or {}).get(mime)
        if mime in kept and isinstance(size, Mapping):
            dims = {k: int(v) for k, v in size.items()
                    if k in ("width", "height") and isinstance(v, (int, float))
                    and not isinstance(v, bool) and 0 < v < 100_000}
            if dims:
                metadata[mime] = dims
    if kind == "execute_result":
        count = output.get("execution_count")
        return nbformat.v4.new_output("execute_result", data=kept, metadata=metadata,
                                      execution_count=count if isinstance(count, int) else None)
    return nbformat.v4.new_output("display_data", data=kept, metadata=metadata)


# --------------------------------------------------------------------------- the page


def feedback_resources(db_url: str, course_id: str, assignment: str, student: str,
                       notebook: str | None = None) -> dict[str, Any]:
    """What :func:`render_feedback` needs: where the scores are and whose they are.

    ``db_url`` is the gradebook Autograde wrote (SQLAlchemy URL), ``course_id`` the
    course's ``CourseDirectory.course_id``, ``notebook`` the notebook's name without
    ``.ipynb`` (default: the assignment's name, one notebook per lesson here).

    >>> feedback_resources("sqlite:///gradebook.db", "dl-practice", "00_workflow", "ada")
    ... # doctest: +NORMALIZE_WHITESPACE
    {'nbgrader': {'db_url': 'sqlite:///gradebook.db', 'course_id': 'dl-practice',
                  'assignment': '00_workflow', 'student': 'ada', 'notebook': '00_workflow'}}
    """
    values = {"db_url": db_url, "course_id": course_id, "assignment": assignment,
              "student": student, "notebook": assignment if notebook is None else notebook}
    for name, value in values.items():
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name}: expected a non-empty str, got {value!r}")
    return {"nbgrader": values}


def render_feedback(nb: Any, resources: Mapping[str, Any]) -> str:
    """The feedback page of ``nb`` (from :func:`feedback_notebook`), as HTML.

    ``resources`` is :func:`feedback_resources`'s dict (extra keys are passed on to
    nbconvert). The score of every graded cell, the graders' comments and the total
    come from the gradebook, as nbgrader's ``GenerateFeedback`` gets them; the page is
    nbgrader's ``feedback`` template with HTML sanitised.
    """
    import nbformat
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor

    info = resources.get("nbgrader") if isinstance(resources, Mapping) else None
    missing = [k for k in ("db_url", "course_id", "assignment", "student", "notebook")
               if not isinstance(info, Mapping) or not info.get(k)]
    if missing:
        raise ValueError(f"resources: expected feedback_resources(...)'s dict, missing "
                         f"nbgrader {', '.join(missing)}")
    from jupyter_core.paths import jupyter_config_dir

    nb = nbformat.from_dict(copy.deepcopy(_as_dict(nb, "nb")))
    resources = copy.deepcopy(dict(resources))
    resources.setdefault("config_dir", jupyter_config_dir())  # where nbconvert looks for CSS
    exporter = _exporter()
    nb, resources = _grades_preprocessor()(enabled=True).preprocess(nb, resources)
    nb, resources = CSSHTMLHeaderPreprocessor(enabled=True).preprocess(nb, resources)
    html, _ = exporter.from_notebook_node(nb, resources=resources)
    return html


def _template_dirs() -> tuple[Path, Path]:
    import nbgrader

    formgrader = Path(nbgrader.__file__).resolve().parent / "server_extensions" / "formgrader"
    return (formgrader / "templates",
            formgrader / "static" / "node_modules" / "bootstrap" / "dist" / "css")


def _exporter() -> Any:
    """nbconvert's HTMLExporter with nbgrader's feedback template and safe Markdown."""
    from nbconvert.exporters import HTMLExporter
    from traitlets.config import Config

    try:
        from jinja2 import pass_context
    except ImportError:  # pragma: no cover - jinja2 < 3
        from jinja2 import contextfilter as pass_context

    class FeedbackExporter(HTMLExporter):
        @pass_context
        def markdown2html(self, context: Any, source: str) -> str:
            return sanitize_html(super().markdown2html(context, source))

    templates, css = _template_dirs()
    config = Config()
    config.HTMLExporter.template_name = "feedback"
    config.HTMLExporter.extra_template_basedirs = [str(templates)]
    config.HTMLExporter.extra_template_paths = [str(css)]
    config.HTMLExporter.sanitize_html = True
    return FeedbackExporter(config=config)


def _grades_preprocessor() -> Any:
    """nbgrader's ``GetGrades``, reading the gradebook of the given course."""
    from nbgrader.preprocessors import GetGrades

    from course_utils.instructor.grading.gradebook import open_gradebook

    class CourseGrades(GetGrades):
        def preprocess(self, nb: Any, resources: Any) -> Any:
            info = resources["nbgrader"]
            self.notebook_id, self.assignment_id = info["notebook"], info["assignment"]
            self.student_id = info["student"]
            with open_gradebook(info["db_url"], info["course_id"]) as gb:
                self.gradebook = gb
                # per cell: scores and comments (GetGrades.preprocess_cell)
                nb, resources = super(GetGrades, self).preprocess(nb, resources)
                submitted = gb.find_submission_notebook(
                    self.notebook_id, self.assignment_id, self.student_id)
                penalty = submitted.late_submission_penalty or 0
                info["score"] = submitted.score - penalty
                info["max_score"] = submitted.max_score
                info["late_penalty"] = penalty
            return nb, resources

    return CourseGrades


def sanitize_html(html: str) -> str:
    """HTML with only harmless tags and attributes; the rest escaped, so it shows as text.

    >>> sanitize_html('<p onclick="x()">Hi <script>alert(1)</script></p>')
    '<p>Hi &lt;script&gt;alert(1)&lt;/script&gt;</p>'
    >>> sanitize_html('<a href="javascript:alert(1)">x</a><img src=x onerror=alert(1)>')
    '<a>x</a><img>'
    """
    import bleach

    def allowed(tag: str, name: str, value: str) -> bool:
        if name not in _ATTRIBUTES.get(tag, ()):
            return False
        if tag == "a" and name == "href":
            return bool(_LINK.match(value.strip()))
        if tag == "img" and name == "src":
            return bool(_IMAGE_SOURCE.match(value.strip()))
        return True

    return bleach.clean(html, tags=_TAGS, attributes=allowed,
                        protocols=["http", "https", "mailto", "data", "attachment"],
                        strip=False, strip_comments=True)
