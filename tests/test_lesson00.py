"""Lesson 00, the workflow of a deep-learning project: its content and its claims.

What every lesson must be (opening, graded tasks, smoke budget, no log noise, nbgrader
validate) is checked in ``test_lessons.py``; this file checks what lesson 00 teaches and
the claims its real run makes.
"""

from __future__ import annotations

import json
import re

from conftest import COURSE, LESSON_PROFILE

from course_utils.instructor import release
from course_utils.runtime import profiles

LESSON = "00_workflow"


def _master():
    return release.read_notebook(release.master_path(LESSON, COURSE))


def test_master_teaches_every_concept_of_syllabus_00():
    text = "\n".join(c.source for c in _master().cells if c.cell_type == "markdown").lower()
    for step in range(1, 10):
        assert f"## step {step}:" in text, f"step {step} has no section"
    for concept in ("hyper-parameter", "validation", "augment", "activation", "flatten",
                    "one unit per class", "loss", "optimizer", "training monitor",
                    "checkpoint", "resume", "learning curves", "test set", "confusion matrix",
                    "real images", "vault", "random", "memoris", "rank-1", "rank-5", "tune"):
        assert concept in text, f"the lesson never mentions {concept!r}"


def test_step_one_holds_every_hyper_parameter():
    code = [c for c in _master().cells if c.cell_type == "code"
            and not c.metadata.get("nbgrader", {}).get("grade_id")]
    for name in ("IMAGE_SIZE", "BATCH_SIZE", "EPOCHS", "LEARNING_RATE", "SEED", "VAL_FRACTION"):
        assert re.search(rf"^{name} = ", code[0].source, re.M), f"{name} is not set in step 1"
    literal = re.compile(r"split_train_val\([^)]*val_fraction=\d")
    assert not any(literal.search(c.source) for c in code[1:])


def test_lesson_claims_hold_on_the_real_run(lesson_run):
    run = lesson_run(LESSON)
    text = run.stream()
    profile = profiles.get_profile(LESSON_PROFILE)
    figures = sum("image/png" in o.get("data", {}) for c in run.nb.cells
                  for o in c.get("outputs", []))
    assert figures >= 6, "images, augmentation, curves, predictions, confusion, random labels"
    # Random labels are memorised (training accuracy ~100 %), validation stays at chance.
    m = re.search(r"training accuracy (\d+)%, validation accuracy (\d+)%", text)
    assert m and int(m.group(1)) >= 95 and int(m.group(2)) <= 25, m and m.group(0)
    counts = re.search(r"training: (\d+) of (\d+) random labels fitted; validation: (\d+) of "
                       r"(\d+) true labels right, where guessing gets about (\d+)", text)
    assert counts, "the counts of the random-label run were not printed"
    fitted, size, right, val_size, chance = map(int, counts.groups())
    assert size == profile.few_shot_per_class * 12 and fitted >= 0.95 * size, counts.group(0)
    assert right <= 2 * chance and chance == round(val_size / 12), counts.group(0)
    # Rank-k accuracy never falls as k grows.
    ranks = [float(v) for v in re.findall(r"rank-\d accuracy on the test set: ([\d.]+)%", text)]
    assert len(ranks) == 3 and ranks == sorted(ranks)
    # The monitor wrote the curves every epoch and continued them after the resume.
    run_dir = run.folder / "runs" / f"00_workflow-{profile.name}"
    history = json.loads((run_dir / "history.json").read_text())
    assert len(history["loss"]) == profile.epochs + 1
    assert (run_dir / "curves.png").is_file()
    last = f"epoch_{profile.epochs:04d}.keras (after epoch {profile.epochs})"
    assert f"resuming from {last}" in text
