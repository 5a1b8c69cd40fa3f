"""Lesson 04, transfer learning: its content and the claims of its real run.

What every lesson must be is checked in ``test_lessons.py``; this file checks what lesson 04
teaches (SYLLABUS 04) and the numbers its solved run prints in the smoke profile.
"""

from __future__ import annotations

import re

from conftest import COURSE

from course_utils import transfer
from course_utils.instructor import release

LESSON = "04_transfer_learning"


def _master():
    return release.read_notebook(release.master_path(LESSON, COURSE))


def _markdown() -> str:
    return "\n".join(c.source for c in _master().cells if c.cell_type == "markdown").lower()


def test_master_teaches_every_concept_of_syllabus_04():
    text = _markdown()
    for concept in (
        "from scratch", "little", "another task",                           # why
        "feature extraction", "before its fully connected layers", "logistic regression",
        "learns nothing new",                                                # feature extraction
        "fine-tuning", "network surgery", "randomly initialised", "freeze",
        "warm", "small learning rate", "unfreeze", "top block", "very small",
        "batch normalisation", "inference mode", "training=false", "recompile", "pitfall",
        "decision table", "small and similar", "large and similar", "small and different",
        "large and different", "train from scratch",                         # when to use which
        "sha-256", "mobilenetv2", 'weights="imagenet"', "include_top=false", "falls back",
    ):
        assert concept in text, f"the lesson never mentions {concept!r}"
    assert text.count("###") >= 4


def test_settings_cell_holds_the_budget_and_the_rates():
    code = [c for c in _master().cells if c.cell_type == "code"
            and not c.metadata.get("nbgrader", {}).get("grade_id")]
    settings = code[0].source
    for name in ("PER_CLASS", "HEAD_EPOCHS", "FINE_EPOCHS", "SCRATCH_EPOCHS", "WARMUP_LR",
                 "FINE_TUNE_LR", "BATCH_SIZE", "SEED", "TRY_IMAGENET"):
        assert re.search(rf"^{name} = ", settings, re.M), f"{name} is not set in the settings cell"
    assert "profile.few_shot_per_class" in settings
    rates = dict(re.findall(r"^(WARMUP_LR|FINE_TUNE_LR) = ([\d.e-]+)", settings, re.M))
    assert float(rates["FINE_TUNE_LR"]) < float(rates["WARMUP_LR"]), "fine-tune with a smaller rate"


def test_lesson_claims_hold_on_the_real_run(lesson_run):
    run = lesson_run(LESSON)
    text = run.stream()
    figures = sum("image/png" in o.get("data", {}) for c in run.nb.cells
                  for o in c.get("outputs", []))
    assert figures >= 4, "images, learning curves, comparison, decision table"
    # Claim 1: both transfer methods beat the same architecture from scratch by >= 15 points.
    gains = dict(re.findall(r"(feature extraction|fine-tuning) beats training from scratch by "
                            r"([\d.]+) points", text))
    assert set(gains) == {"feature extraction", "fine-tuning"}, text
    assert all(float(g) >= 15 for g in gains.values()), gains
    # Claim 2: fine-tuning reaches at least the accuracy of feature extraction.
    margin = re.search(r"fine-tuning minus feature extraction: ([+-][\d.]+) points", text)
    assert margin and float(margin.group(1)) >= 0, margin and margin.group(0)
    # Claim 3: a damaged weights file is refused with a message naming it.
    assert re.search(rf"Loading a damaged copy fails: \S+{transfer.BASE_FILE}: SHA-256 is ", text)
    # The pitfall: without recompiling the unfrozen block does not move; with it, it does.
    assert "without recompiling, block3_conv1 moved by 0.000000" in text
    moved = re.search(r"after recompiling, block3_conv1 moved by ([\d.]+)", text)
    assert moved and float(moved.group(1)) > 0
    assert "block3_bn1 moving mean changed by 0.000000" in text
    # Offline (and in the smoke profile) the ImageNet path says so and falls back.
    assert "ImageNet weights for MobileNetV2 are not available" in text
    assert "feature extraction with the course base: test accuracy" in text
