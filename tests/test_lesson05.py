"""Lesson 05, debugging practices: its content and the claims its real run prints.

What every lesson must be (opening, graded tasks, smoke budget, no log noise, nbgrader
validate) is checked in ``test_lessons.py``; the checks themselves, with fixed seeds, in
``test_debugging.py``. This file checks what lesson 05 teaches and what its run shows.
"""

from __future__ import annotations

import math
import re

import pytest
from conftest import COURSE

from course_utils.instructor import release

LESSON = "05_debugging"
SMALL_BATCH = 2  # the settings cell's SMALL_BATCH


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
    # The best step: near 1e-5 and far below 1e-7 in float64; in float32 even the best step
    # stays above the 1e-4 at which check_gradients fails (the text says both).
    best64 = _number(r"float64: smallest relative error ([\d.e+-]+)", text)
    best64_h = _number(r"float64: smallest relative error [\d.e+-]+, at h = ([\d.e+-]+)", text)
    best32 = _number(r"float32: smallest relative error ([\d.e+-]+)", text)
    best32_h = _number(r"float32: smallest relative error [\d.e+-]+, at h = ([\d.e+-]+)", text)
    assert best64 < 1e-8 and 1e-7 <= best64_h <= 1e-4, (best64, best64_h)
    assert best32 > 1e-4 and 1e-3 <= best32_h <= 1e-1, (best32, best32_h)

    # The custom layer: the correct one passes far below 1e-7, the planted bug is caught
    # many percent off, and every FAILED line is followed by its reason.
    tolerance = r"\(< 1e-04 \(float64, \d+ params\)\)"
    assert re.search(rf"planted bug False: passed {tolerance}, max rel\. error "
                     r"[\d.]+e-(0[89]|1\d)", text)
    assert _number(rf"planted bug True: FAILED {tolerance}, max rel\. error ([\d.e+-]+)",
                   text) > 1e-2
    failed = re.findall(r"(?m)^(.*): FAILED .*\n(.*)$", text)
    assert failed and all(why.startswith("    why: ") for _, why in failed), failed
    assert "after 20 steps, no regularisation: passed" in text
    assert "after 20 steps, L2 penalty on: passed" in text
    # first without regularisation, then with it: only the second check sees a penalty's bug
    assert "penalty with a planted bug, regularisation off: passed" in text
    assert "penalty with a planted bug, regularisation on: FAILED" in text
    assert re.search(r"dropout left on \(training=True\): FAILED .*no smooth parameter\n"
                     r"    why: the difference quotients for h and h/10 disagree", text)
    # A pass above 1e-7 has its largest error where the gradient is tiny (rounding).
    passes = re.findall(r"passed \(< 1e-04[^)]*\)\), max rel\. error ([\d.e+-]+)\n"
                        r"    largest error where the gradient is ([\d.e+-]+)", text)
    assert len(passes) == 3, passes
    for error, gradient in passes:
        assert float(error) < 1e-7 or float(gradient) < 1e-4, (error, gradient)

    # The initial loss is ln 12 (within a hundredth) for every seed; a huge last layer is
    # flagged with a loss many times larger.
    losses = re.search(r"untrained loss over seeds \([\d, ]+\): ([\d., ]+);", text)
    assert losses, "the initial losses were not printed"
    values = [float(v) for v in losses.group(1).split(", ")]
    assert len(values) == 3 and all(abs(v - math.log(12)) < 0.01 for v in values), values
    assert _number(r"huge last-layer scale: untrained loss ([\d.]+), FLAGGED",
                   text) > 3 * math.log(12)

    # The tiny subset: the healthy network fits it, each planted bug stops it far from zero,
    # though its loss fell a little from where it started.
    assert re.search(r"healthy: loss 0\.0\d+ after \d+ steps, from [\d.]+ at step 1 "
                     r"\(fitted\)", text)
    for bug in ("labels shuffled apart", "frozen network", "wrong loss"):
        found = re.search(rf"{bug}: loss ([\d.]+) after \d+ steps, from ([\d.]+) at step 1 "
                          r"\(NOT fitted\)", text)
        assert found, bug
        end, start = float(found.group(1)), float(found.group(2))
        assert 0.3 < end < start, (bug, start, end)

    # Monitoring: vanishing and exploding gradients, update ratios, dead and saturated units.
    layer1 = {name: _number(rf"{re.escape(name)}: gradient norm ([\d.e+-]+) in layer 1", text)
              for name in ("healthy", "exploding (3 x He)", "vanishing (sigmoid)")}
    layer6 = _number(r"vanishing \(sigmoid\): gradient norm [\d.e+-]+ in layer 1, "
                     r"([\d.e+-]+) in layer 6", text)
    spread = _number(r"healthy: gradient norm .* largest / smallest over the six (\d+)", text)
    assert spread <= 15, f"He: the six norms stay within about an order of magnitude ({spread})"
    assert layer1["exploding (3 x He)"] > 100 * layer1["healthy"], layer1
    assert layer1["vanishing (sigmoid)"] < 1e-2 * layer6, (layer1, layer6)
    assert layer1["vanishing (sigmoid)"] < 1e-4
    healthy_ratio = _number(r"Adam at 1e-3: median update ratio ([\d.e+-]+) \(healthy\)", text)
    assert 1e-4 < healthy_ratio < 1e-2
    # The bad learning rates move the ratio by roughly the factor they are off (1e3, 1e-4).
    high = _number(r"Adam at 1: median update ratio ([\d.e+-]+) \(FLAGGED\)", text)
    low = _number(r"Adam at 1e-7: median update ratio ([\d.e+-]+) \(FLAGGED\)", text)
    assert 1e2 < high / healthy_ratio < 1e4, high / healthy_ratio
    assert 1e-5 < low / healthy_ratio < 1e-3, low / healthy_ratio
    assert re.search(r"Adam at 1e-3: dead units per layer: .* \(passed\)", text)
    assert re.search(r"Adam at 0\.1: dead units per layer: .* \(FLAGGED\)", text)
    # Saturation: the same tanh network saturates on unscaled pixels only.
    assert re.search(r"tanh network, pixels in \[0, 1\]: worst \d+% saturated .*\(passed\)", text)
    assert _number(r"tanh network, raw pixels 0-255: worst (\d+)% saturated .*\(FLAGGED\)",
                   text) > 50

    # The preflight: all five checks pass on the reference CNN (its planted bugs are tested
    # in test_debugging.py).
    assert "preflight of 'fingers_cnn': 5 of 5 checks passed" in text


def _curve(name: str, text: str) -> dict[str, float]:
    """What the loss-curve cell printed for one setup."""
    match = re.search(
        rf"(?m)^{re.escape(name)}: (\d+) steps, loss ([\d.]+) at step 1, highest ([\d.e+-]+) "
        r"\(step (\d+)\), ([\d.]+) over the last quarter, step-to-step change ([\d.]+)$", text)
    assert match, f"the loss curve of {name!r} was not printed"
    keys = ("steps", "first", "highest", "highest_at", "last", "change")
    return dict(zip(keys, map(float, match.groups()), strict=True))


@pytest.mark.claims
def test_the_five_loss_curves_show_what_the_text_says(lesson_run):
    text = lesson_run(LESSON).stream()
    healthy, exploding = _curve("healthy", text), _curve("exploding (3 x He)", text)
    vanishing, too_high = _curve("vanishing (sigmoid)", text), _curve("learning rate 0.1", text)
    small = _curve(f"batches of {SMALL_BATCH}", text)
    guess = math.log(12)
    assert healthy["last"] < healthy["first"] - 0.3, f"healthy: the loss falls {healthy}"
    # exploding: starts several times higher than ln 12 and lurches before it comes down
    assert exploding["first"] > 3 * guess and exploding["highest_at"] > 1, exploding
    assert exploding["last"] < exploding["first"] / 3, exploding
    # vanishing: flat
    assert abs(vanishing["last"] - vanishing["first"]) < 0.05, vanishing
    # learning rate 0.1: one jump by orders of magnitude, then stuck at the loss of guessing
    assert too_high["highest"] > 100 * too_high["first"], too_high
    assert abs(too_high["last"] - guess) < 0.15, too_high
    # batches of 2, as many images: noise around a slower descent
    assert small["steps"] > healthy["steps"]
    assert small["change"] > 3 * healthy["change"], (small, healthy)
    assert healthy["last"] < small["last"] < small["first"], (small, healthy)


def test_first_layer_weights_go_from_noise_to_smooth_templates_on_the_real_run(lesson_run):
    text = lesson_run(LESSON).stream()
    untrained = _number(r"(?m)^untrained: template roughness ([\d.]+)", text)
    trained = _number(r"(?m)^trained: template roughness ([\d.]+)", text)
    decayed = _number(r"(?m)^trained with L2 [\d.e-]+: template roughness ([\d.]+)", text)
    assert untrained > 0.8, f"untrained weights are noise (roughness about 1), got {untrained}"
    assert trained < 0.8 * untrained, f"training gives structure: {trained} vs {untrained}"
    assert decayed < trained, f"weight decay smooths further: {decayed} vs {trained}"
    # 3x3 filters are too small to look smooth, even after training
    assert _number(r"3x3 filters after \d+ epochs: roughness ([\d.]+)", text) > 0.8


def test_the_recipe_checks_flag_their_bugs_on_the_real_run(lesson_run):
    """Karpathy's and cs231n's three checks: each passes on the sound set-up and flags its bug."""
    text = lesson_run(LESSON).stream()
    # The input-independent baseline: on zeros the loss stays near ln 12 (label frequencies
    # only), the scaled images bring it near zero, pixels // 255 leave it far above, every seed.
    assert _number(r"pixels // 255 leaves ([\d.]+)% of the pixels above zero", text) < 1
    runs = re.findall(r"(?m)^seed \d+: pixels / 255 loss ([\d.]+), on zeros ([\d.]+) \((\w+)\); "
                      r"pixels // 255 loss ([\d.]+), on zeros ([\d.]+) \((\w+)\)$", text)
    assert len(runs) >= 2, "the baseline is run for each of the profile's seeds"
    for good, zeros, verdict, bad, zeros_again, bad_verdict in runs:
        assert verdict == "passed" and float(good) < 0.1, (good, verdict)
        assert abs(float(zeros) - math.log(12)) < 0.15 and zeros == zeros_again, zeros
        assert bad_verdict == "FLAGGED" and float(bad) > max(1.0, 10 * float(good)), bad
    # Batch independence: none in inference mode, every other sample in training mode
    # (batch normalisation), and the reshape bug mixes samples in inference mode.
    assert re.search(r"reference CNN, inference mode: no other sample gets gradient \(passed;",
                     text)
    mixed = re.search(r"reference CNN, training mode: (\d+) other samples get gradient "
                      r"\(FLAGGED; (\d+) samples in the batch\)", text)
    assert mixed and int(mixed.group(1)) == int(mixed.group(2)) - 1, "every other sample"
    assert re.search(r"reshape for a transpose: \d+ other samples get gradient \(FLAGGED;", text)
    # A stronger penalty raises the loss, unless the loss forgets model.losses.
    raised = re.search(r"data loss \+ model\.losses: loss ([\d., ]+) for L2 .* \(passed\)", text)
    flat = re.search(r"data loss only: loss ([\d., ]+) for L2 .* \(FLAGGED\)", text)
    assert raised and flat, "the regularisation check was not printed"
    rising = [float(v) for v in raised.group(1).split(", ")]
    assert all(b > a for a, b in zip(rising, rising[1:], strict=False)), rising
    assert len(set(flat.group(1).split(", "))) == 1, flat.group(1)
