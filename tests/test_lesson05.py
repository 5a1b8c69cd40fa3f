"""Lesson 05, debugging practices: its content and the claims its real run prints.

What every lesson must be (opening, graded tasks, smoke budget, no log noise, nbgrader
validate) is checked in ``test_lessons.py``; the checks themselves, with fixed seeds, in
``test_debugging.py``. This file checks what lesson 05 teaches and what its run shows.
"""

from __future__ import annotations

import math
import re

from conftest import COURSE

from course_utils import release

LESSON = "05_debugging"


def _master():
    return release.read_notebook(release.master_path(LESSON, COURSE))


def _number(pattern: str, text: str) -> float:
    match = re.search(pattern, text)
    assert match, f"the run never printed {pattern!r}"
    return float(match.group(1))


def test_master_teaches_every_concept_of_syllabus_05():
    text = "\n".join(c.source for c in _master().cells if c.cell_type == "markdown").lower()
    for concept in (
        # gradient checking
        "gradient check", "central differences", "relative error", "double precision",
        "float64", "step $h$", "few data points", "after a short training",
        "first without regularisation, then with it", "dropout", "augmentation", "kinks",
        # initialisation
        "initial loss", "-\\ln(1/c)", "regularisation off", "several",
        # tiny subset
        "tiny subset", "5 to 20", "near zero", "too small",
        # loss curves
        "exploding", "vanishing", "learning rate far too high", "mini-batches far too small",
        "validation", "overfitting", "underfitting",
        # weights and activations
        "10^{-3}", "first-layer filters", "smooth", "noise", "saturate", "dead",
        # the preflight
        "preflight",
    ):
        assert concept in text, f"the lesson never mentions {concept!r}"


def test_settings_cell_holds_the_check_sizes():
    code = [c for c in _master().cells if c.cell_type == "code"
            and not c.metadata.get("nbgrader", {}).get("grade_id")]
    for name in ("IMAGE_SIZE", "BATCH_SIZE", "EPOCHS", "SEED", "GRAD_POINTS", "SEEDS", "TINY",
                 "TINY_STEPS", "CURVE_STEPS", "SMALL_BATCH"):
        assert re.search(rf"^{name} = ", code[0].source, re.M), f"{name} is not a setting"
    assert re.search(r"^TINY = (\d+)", code[0].source, re.M)
    tiny = int(re.search(r"^TINY = (\d+)", code[0].source, re.M).group(1))
    assert 5 <= tiny <= 20, "the tiny subset holds 5 to 20 samples"


def test_lesson_claims_hold_on_the_real_run(lesson_run):
    run = lesson_run(LESSON)
    text = run.stream()
    figures = sum("image/png" in o.get("data", {}) for c in run.nb.cells
                  for o in c.get("outputs", []))
    assert figures >= 8, "error vs h, widget fallback, tiny subset, curves, norms, ratios, filters"

    # The numerical gradient: below 1e-7 in float64, visibly worse in float32 or with a poor h.
    good = _number(r"float64 with h = 1e-05: relative error ([\d.e+-]+)", text)
    single = _number(r"float32 with h = 1e-05: relative error ([\d.e+-]+)", text)
    coarse = _number(r"float64 with h = 1e-01: relative error ([\d.e+-]+)", text)
    tiny_h = _number(r"float64 with h = 1e-12: relative error ([\d.e+-]+)", text)
    assert good < 1e-7 and min(single, coarse, tiny_h) > 1e3 * good

    # The custom layer: the correct one passes, the planted bug is caught.
    assert re.search(r"planted bug False: passed, max rel\. error [\d.]+e-(0[89]|1\d)", text)
    assert "planted bug True: FAILED" in text
    assert "after 20 steps, no regularisation: passed" in text
    assert "after 20 steps, L2 penalty on: passed" in text
    # first without regularisation, then with it: only the second check sees a penalty's bug
    assert "penalty with a planted bug, regularisation off: passed" in text
    assert "penalty with a planted bug, regularisation on: FAILED" in text
    assert "dropout left on (training=True): FAILED" in text

    # The initial loss is ln 12 for every seed; a huge last layer is flagged.
    losses = re.search(r"untrained loss over seeds \([\d, ]+\): ([\d., ]+);", text)
    assert losses, "the initial losses were not printed"
    values = [float(v) for v in losses.group(1).split(", ")]
    assert len(values) == 3 and all(abs(v - math.log(12)) < 0.05 for v in values), values
    assert _number(r"huge last-layer scale: untrained loss ([\d.]+), FLAGGED", text) > 5

    # The tiny subset: the healthy network fits it, each planted bug stops it.
    assert re.search(r"healthy: loss 0\.0\d+ after \d+ steps \(fitted\)", text)
    for bug in ("labels shuffled apart", "frozen network", "wrong loss"):
        assert re.search(rf"{bug}: loss [\d.]+ after \d+ steps \(NOT fitted\)", text), bug
        assert float(re.search(rf"{bug}: loss ([\d.]+)", text).group(1)) > 0.3, bug

    # Monitoring: vanishing and exploding gradients, update ratios, dead and saturated units.
    assert _number(r"vanishing \(sigmoid\): gradient norm ([\d.e+-]+) in layer 1", text) < 1e-4
    assert _number(r"exploding \(3 x He\): gradient norm ([\d.e+-]+) in layer 1", text) > 10
    healthy_ratio = _number(r"Adam at 1e-3: median update ratio ([\d.e+-]+) \(healthy\)", text)
    assert 1e-4 < healthy_ratio < 1e-2
    assert re.search(r"Adam at 1: median update ratio [\d.e+-]+ \(FLAGGED\)", text)
    assert re.search(r"Adam at 1e-7: median update ratio [\d.e+-]+ \(FLAGGED\)", text)
    assert re.search(r"Adam at 1e-3: dead units per layer: .* \(passed\)", text)
    assert re.search(r"Adam at 0\.1: dead units per layer: .* \(FLAGGED\)", text)
    # Saturation: the same tanh network saturates on unscaled pixels only.
    assert re.search(r"tanh network, pixels in \[0, 1\]: worst \d+% saturated .*\(passed\)", text)
    assert _number(r"tanh network, raw pixels 0-255: worst (\d+)% saturated .*\(FLAGGED\)",
                   text) > 50

    # The preflight: all five checks pass on the reference CNN (its planted bugs are tested
    # in test_debugging.py).
    assert "preflight of 'fingers_cnn': 5 of 5 checks passed" in text


def test_first_layer_weights_go_from_noise_to_smooth_templates_on_the_real_run(lesson_run):
    text = lesson_run(LESSON).stream()
    untrained = _number(r"(?m)^untrained: template roughness ([\d.]+)", text)
    trained = _number(r"(?m)^trained: template roughness ([\d.]+)", text)
    decayed = _number(r"(?m)^trained with L2 [\d.e-]+: template roughness ([\d.]+)", text)
    assert untrained > 0.8, f"untrained weights are noise (roughness about 1), got {untrained}"
    assert trained < 0.8 * untrained, f"training gives structure: {trained} vs {untrained}"
    assert decayed < trained, f"weight decay smooths further: {decayed} vs {trained}"
