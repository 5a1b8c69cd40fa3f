"""Lesson 02, underfitting, overfitting and their remedies: its content and its claims.

What every lesson must be is checked in ``test_lessons.py``; this file checks what lesson 02
teaches and the claims its real (smoke) run prints.
"""

from __future__ import annotations

import re

from conftest import COURSE

from course_utils import overfitting, release

LESSON = "02_overfitting"


def _master():
    return release.read_notebook(release.master_path(LESSON, COURSE))


def test_master_teaches_every_concept_of_syllabus_02():
    text = "\n".join(c.source for c in _master().cells if c.cell_type == "markdown").lower()
    for concept in ("underfit", "overfit", "more data", "capacity", "regularis",
                    "learning curves", "ideal", "unrepresentative validation",
                    "learning rate too high", "noisy", "small batches", "saving intermediate",
                    "early stopping", "simpler architecture", "augmentation",
                    "keep the label true", "l1", "l2", "penalty", "batch normalisation",
                    "per channel", "axis=-1", "axis=1", "channels first", "channels last",
                    "[rows][cols][channels]", "number of epochs", "dropout",
                    "during training", "restore_best_weights"):
        assert concept in text, f"the lesson never mentions {concept!r}"


def test_every_diagnosis_is_shown_from_a_real_run(lesson_run):
    text = lesson_run(LESSON).stream()
    seen = re.findall(r"^([^:\n]+): (" + "|".join(overfitting.DIAGNOSES) + r"):", text, re.M)
    labels = {label for _, label in seen}
    assert labels >= set(overfitting.DIAGNOSES), f"real runs showed only {sorted(labels)}"
    # and each run shows the shape the lesson says it does, panel by panel
    said = dict(seen)
    expected = {"larger training set": "ideal", "tiny model": "underfit",
                "baseline, small subset": "overfit",
                "validation from elsewhere": "unrepresentative validation",
                "batches of 1": "noisy small batches"}
    assert {name: said.get(name) for name in expected} == expected, said
    assert any(name.startswith("learning rate ") and label == "learning rate too high"
               for name, label in seen), said


def test_remedy_claims_hold_on_the_real_run(lesson_run):
    text = lesson_run(LESSON).stream()
    m = re.search(r"baseline: training accuracy ([\d.]+)%, validation accuracy ([\d.]+)%, "
                  r"gap ([\d.]+) points", text)
    assert m, "the baseline's claim line is missing"
    base_val, base_gap = float(m.group(2)), float(m.group(3))
    assert base_gap >= 15, f"baseline gap {base_gap} points"
    pattern = (r"^(.+?) (?:narrows|does not narrow) the gap: ([-\d.]+) points "
               r"\(validation accuracy ([\d.]+)%\)")
    lines = {name: (float(gap), float(val)) for name, gap, val in re.findall(pattern, text, re.M)}
    for remedy in ("simpler model", "augmentation", "L1 penalty", "L2 penalty", "dropout",
                   "combination", "early stopping"):
        assert lines[remedy][0] < base_gap, f"{remedy}: gap {lines[remedy][0]} vs {base_gap}"
    assert lines["batch norm"][0] >= base_gap, "the lesson says batch norm does not narrow it"
    # Smoke size: the combination stays within noise of the baseline (see test_overfitting).
    assert abs(lines["combination"][1] - base_val) <= 100 * 10 / 120
    figures = sum("image/png" in o.get("data", {}) for c in lesson_run(LESSON).nb.cells
                  for o in c.get("outputs", []))
    assert figures >= 5, "subset, diagnoses, quiz, remedies, curves"


def test_early_stopping_and_the_picked_checkpoint_give_the_best_epoch(lesson_run):
    text = lesson_run(LESSON).stream()
    m = re.search(r"the best validation loss was ([\d.]+) in epoch (\d+)", text)
    assert m, "the early-stopping line is missing"
    best, epoch = m.group(1), m.group(2)
    assert f"validation loss of the restored model: {best}" in text
    assert f"validation loss of the checkpoint of epoch {epoch}: {best}" in text
