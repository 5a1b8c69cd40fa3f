"""Lesson 03, momentum and Nesterov: its content and the claims its real run prints.

What every lesson must be is checked in ``test_lessons.py``.
"""

from __future__ import annotations

import re

from conftest import COURSE

from course_utils import release

LESSON = "03_momentum"


def test_master_teaches_every_concept_of_syllabus_03():
    nb = release.read_notebook(release.master_path(LESSON, COURSE))
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown").lower()
    for concept in ("velocity", "keeps its sign", "flip", "oscillation", "ill-conditioned",
                    "condition number", "nesterov", "look-ahead position", "overshoot", "rosenbrock",
                    "momentum 0.9", "too-large momentum", "adam", "learning rate"):
        assert concept in text, f"the lesson never mentions {concept!r}"


def test_lesson_claims_hold_on_the_real_run(lesson_run):
    text = lesson_run(LESSON).stream()
    speedup = re.search(r"momentum reaches the tolerance in ([\d.]+)x fewer steps", text)
    assert speedup and float(speedup.group(1)) >= 3, text
    rows = {name: (int(steps), float(over)) for name, steps, over in re.findall(
        r"^(momentum|Nesterov)\s+steps to tolerance\s+(\d+)\s+overshoot ([\d.]+)", text, re.M)}
    # "Nesterov ... overshoots about a third as far and is the fastest of the three"
    assert rows["Nesterov"][1] < 0.5 * rows["momentum"][1], rows
    assert rows["Nesterov"][0] < rows["momentum"][0], rows
    loss = dict(re.findall(r"^(gradient descent|momentum|Nesterov)\s+training loss after \d+ "
                           r"epochs: ([\d.]+)", text, re.M))
    # "SGD with momentum has already cut the training loss, Nesterov a little more"
    assert float(loss["momentum"]) < float(loss["gradient descent"]) - 0.2, loss
    assert float(loss["Nesterov"]) < float(loss["momentum"]), loss
    diffs = [float(d) for d in re.findall(r"from keras.optimizers.SGD over 50 steps: ([\d.e+-]+)",
                                          text)]
    assert len(diffs) == 3 and max(diffs) < 1e-6
    forms = re.search(r"look-ahead points against Keras' form over 50 steps: largest difference "
                      r"([\d.e+-]+)", text)
    assert forms and float(forms.group(1)) < 1e-12, "the two Nesterov forms should agree"
