"""Which cells run while grading: the skip tag is the grader's, demonstrations are skipped
only where no cell that runs needs them (course_utils.instructor.grading.demonstrations).

The real grading runs are in ``test_grading.py`` (every kept submission gets the same
scores with every cell run in ``smoke`` and with the demonstrations skipped in
``grading``) and ``test_grading_attacks.py`` (tests tagged to be skipped still run).
"""

from __future__ import annotations

import pytest
from conftest import COURSE
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course_utils.instructor import release
from course_utils.instructor.grading.demonstrations import (
    DEMONSTRATION_TAG,
    SKIP_TAG,
    PlanExecution,
    skippable_cells,
)

DEMO = {"tags": [DEMONSTRATION_TAG]}


def _solution(code: str, grade_id: str = "answer"):
    return new_code_cell(code, metadata={"nbgrader": {"solution": True, "grade_id": grade_id}})


def _test(code: str, grade_id: str = "answer_test"):
    return new_code_cell(code, metadata={"nbgrader": {"grade": True, "grade_id": grade_id,
                                                      "points": 1}})


def _notebook(*cells):
    return new_notebook(cells=[new_code_cell("import numpy as np\nSEED = 3"), *cells])


def test_a_demonstration_nothing_reads_is_skipped_and_one_whose_names_are_read_runs():
    nb = _notebook(
        new_code_cell("curve = np.cumsum(np.ones(SEED))\nprint(curve)", metadata=DEMO),  # 1
        new_code_cell("data = np.arange(SEED)", metadata=DEMO),                         # 2
        new_markdown_cell("What to notice: ..."),
        _solution("def total():\n    return data.sum()"),                                # 4
        _test("assert total() == 3"),
        new_code_cell("for name in ('a', 'b'):\n    print(name)", metadata=DEMO),          # 6
    )
    assert skippable_cells(nb) == [1, 6]


def test_a_demonstration_that_may_change_an_object_a_later_cell_reads_runs():
    nb = _notebook(
        new_code_cell("model = [0]"),                                       # 1: the student's
        new_code_cell("model.append(SEED)\nhistory = len(model)", metadata=DEMO),  # 2: trains it
        new_code_cell("plot = sorted(x for x in range(SEED))", metadata=DEMO),     # 3
        _solution("def trained():\n    return model[-1]"),
    )
    assert skippable_cells(nb) == [3]


def test_what_runs_decides_not_the_tag_alone():
    chain = _notebook(
        new_code_cell("base = np.ones(2)", metadata=DEMO),               # 1: needed by 2
        new_code_cell("scaled = base * SEED", metadata=DEMO),            # 2: needed by 3
        new_code_cell("print(scaled)\nlater = scaled.sum()"),            # 3: the student's own
    )
    assert skippable_cells(chain) == []
    graded_and_broken = _notebook(
        new_code_cell("x = 1", metadata={**DEMO, "nbgrader": {"grade": True, "grade_id": "t",
                                                               "points": 1}}),
        new_code_cell("def broken(:\n    pass", metadata=DEMO),           # does not parse
        new_code_cell("%matplotlib inline\n!ls\nshown = np.zeros(1)", metadata=DEMO),
    )
    assert skippable_cells(graded_and_broken) == [3]
    too_deep = "x = " + "-" * 100_000 + "1"  # more than the parser or a walk can nest
    assert skippable_cells(_notebook(new_code_cell(too_deep, metadata=DEMO))) == []
    too_long = "x = 1\n" * 50_000  # more than the grader parses: it runs, unread
    assert skippable_cells(_notebook(new_code_cell(too_long, metadata=DEMO))) == []
    assert skippable_cells(_notebook(new_code_cell("x = 1\n" * 40_000, metadata=DEMO))) == [1]
    methods = _notebook(
        new_code_cell("steps = 4\ncheck = lambda: steps", metadata=DEMO),   # 1
        new_code_cell("class Monitor:\n    def ratio(self):\n        steps = 2\n"
                      "        return steps\n    limit = SEED", metadata=DEMO),  # 2
        _solution("class Mine(Monitor):\n    def go(self):\n        return check()"),
    )
    assert skippable_cells(methods) == []  # Mine reads Monitor and, when called, check
    assert skippable_cells(_notebook(
        new_code_cell("steps = 4", metadata=DEMO),
        _solution("class Mine:\n    def go(self, steps=1):\n        w = steps\n"
                  "        return w"))) == [1]


@pytest.mark.parametrize("skip", [False, True])
def test_the_skip_tag_is_taken_off_every_cell_and_put_only_where_the_grader_decides(skip):
    tagged = {"tags": [SKIP_TAG, "mine"]}
    nb = _notebook(
        new_code_cell("shown = np.zeros(1)", metadata={"tags": [DEMONSTRATION_TAG, SKIP_TAG]}),
        _solution("def answer():\n    return 1", ),
        new_code_cell("assert answer() == 2", metadata={
            **tagged, "nbgrader": {"grade": True, "grade_id": "t", "points": 1}}),
        new_code_cell("print('my own cell')", metadata=dict(tagged)),
        new_code_cell("assert answer() == 3", metadata={
            "nbgrader": {"grade": True, "grade_id": "u", "points": 1}}),
    )
    nb.cells[5].metadata["tags"] = f"{SKIP_TAG} mine"  # one string: nbclient's `in` finds it
    step = PlanExecution(skip_demonstrations=skip)
    planned, _ = step.preprocess(nb, {})
    skipped = [i for i, cell in enumerate(planned.cells)
               if SKIP_TAG in cell.metadata.get("tags", [])]
    assert skipped == ([1] if skip else [])
    assert planned.cells[3].metadata["tags"] == ["mine"]  # the test cell runs
    assert planned.cells[4].metadata["tags"] == ["mine"]
    assert planned.cells[5].metadata["tags"] == []


@pytest.mark.parametrize("lesson", release.list_lessons(COURSE))
def test_every_demonstration_of_a_master_is_skippable_and_the_settings_are_not_tagged(lesson):
    master = release.read_notebook(release.master_path(lesson, COURSE))
    code = [i for i, c in enumerate(master.cells) if c.cell_type == "code"]
    tagged = [i for i in code if DEMONSTRATION_TAG in master.cells[i].metadata.get("tags", [])]
    assert tagged, f"{lesson}: no cell is tagged {DEMONSTRATION_TAG!r}"
    assert code[0] not in tagged and code[1] not in tagged, "set-up and settings always run"
    assert skippable_cells(master) == tagged, (
        f"{lesson}: a cell tagged {DEMONSTRATION_TAG!r} is needed by a graded cell")
    student = release.read_notebook(COURSE.parent / "notebooks" / f"{lesson}.ipynb")
    assert skippable_cells(student) == [
        i for i, c in enumerate(student.cells)
        if DEMONSTRATION_TAG in c.metadata.get("tags", [])], "the student version keeps the tags"


def test_the_course_config_takes_the_skip_tag_off_before_nbgrader_runs_a_notebook():
    # what `nbgrader autograde` and the Formgrader read in the course folder
    from nbgrader.preprocessors import Execute
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(COURSE)).load_config()
    steps = list(config.Autograde.autograde_preprocessors)
    assert steps.index(PlanExecution) == steps.index(Execute) - 1
