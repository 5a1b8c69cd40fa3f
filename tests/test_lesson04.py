"""Lesson 04, transfer learning: its content and the claims of its real run.

What every lesson must be is checked in ``test_lessons.py``; this file checks what lesson 04
teaches (SYLLABUS 04) and the claims of its text against what its solved run printed. The
comparisons of training runs are repeated over the profile's seeds; the claims that need the
cpu profile's size are marked ``claims`` (`make claims` runs them).
"""

from __future__ import annotations

import re

import pytest
from conftest import COURSE, LESSON_PROFILE, find_printed

from course_utils import training, transfer
from course_utils.instructor import pretrain, release
from course_utils.runtime import profiles

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


def _text(lesson_run) -> str:
    return lesson_run(LESSON).stream()


METHODS = r"from scratch|feature extraction|new head, base frozen|fine-tuning"


def _comparison(text: str) -> tuple[dict[str, tuple[float, float]], dict[str, tuple[float, float, str]]]:
    """The comparison over seeds: ``{method: (mean, spread)}`` and ``{name: (mean, spread, verdict)}``."""
    final = {m["method"]: (float(m["mean"]) / 100, float(m["spread"]) / 100) for m in re.finditer(
        rf"^(?P<method>{METHODS})\s+test accuracy (?P<mean>[\d.]+)% ± (?P<spread>[\d.]+) over "
        r"seeds \[(?P<seeds>[\d, ]+)\]$", text, re.M)}
    assert len(final) == 4, text
    changes = {m["name"]: (float(m["mean"]), float(m["spread"]), m["verdict"]) for m in re.finditer(
        r"^(?P<name>transfer: feature extraction|transfer: fine-tuning|the new head|unfreezing)"
        r".*?: (?P<mean>[+-][\d.]+) ± (?P<spread>[\d.]+) points \((?P<verdict>[a-z ]+)\)$",
        text, re.M)}
    assert len(changes) == 4, text
    return final, changes


def test_the_run_shows_the_base_the_pitfall_and_the_fallback(lesson_run):
    run = lesson_run(LESSON)
    text = run.stream()
    figures = sum("image/png" in o.get("data", {}) for c in run.nb.cells
                  for o in c.get("outputs", []))
    assert figures >= 4, "images, learning curves, comparison, decision table"
    # The source task is another task: the count only, six outputs.
    assert f"source task: {pretrain.SOURCE_TASK}" in text
    assert "predictions" in text and "(None, 6)" in text, "the base's head has one output per count"
    # A damaged weights file is refused with a message naming it.
    assert re.search(rf"Loading a damaged copy fails: \S+{transfer.BASE_FILE}: SHA-256 is ", text)
    # The pitfall: without recompiling the unfrozen block does not move; with it, it does.
    assert "without recompiling, block3_conv1 moved by 0.000000" in text
    moved = re.search(r"after recompiling, block3_conv1 moved by ([\d.]+)", text)
    assert moved and float(moved.group(1)) > 0
    assert "block3_bn1 moving mean changed by 0.000000" in text
    # Offline (and in the smoke profile) the ImageNet path says so and falls back.
    assert "ImageNet weights for MobileNetV2 are not available" in text
    assert "feature extraction with the course base: test accuracy" in text


def test_the_comparisons_report_mean_and_spread_over_the_profiles_seeds(lesson_run):
    text = _text(lesson_run)
    expected = profiles.get_profile(LESSON_PROFILE).comparison_seeds
    seeds = {tuple(int(s) for s in m.split(",")) for m in
             re.findall(r"test accuracy [\d.]+% ± [\d.]+ over seeds \[([\d, ]+)\]", text)}
    assert seeds == {expected}, seeds
    final, changes = _comparison(text)
    assert final["feature extraction"][1] == 0, "feature extraction has no randomness"
    for name, (mean, spread, verdict) in changes.items():
        assert verdict in training.VERDICTS, (name, verdict)
        if abs(mean) <= spread:
            assert verdict == "within noise", (name, mean, spread, verdict)
    cuts = dict(re.findall(r"^feature extraction cut at (block2_pool|flatten)\s*: test accuracy "
                           r"([\d.]+)% ± [\d.]+$", text, re.M))
    assert set(cuts) == {"block2_pool", "flatten"}, text
    find_printed(r"^cutting one block lower: [+-][\d.]+ ± [\d.]+ points \((better|within noise|worse)\)$",
          text)


@pytest.mark.claims
def test_claim_both_ways_of_transferring_beat_training_from_scratch_in_every_seed(lesson_run):
    final, changes = _comparison(_text(lesson_run))
    # "Both ways of transferring beat training from scratch in every seed, by more than the
    # spread ... Fine-tuning wins by more than ten points; feature extraction by less, and with
    # a wide spread, because training from scratch itself varies a lot from seed to seed"
    for name in ("transfer: feature extraction", "transfer: fine-tuning"):
        mean, spread, verdict = changes[name]
        assert verdict == "better" and mean > spread, (name, changes[name])
    assert changes["transfer: fine-tuning"][0] >= 10, changes
    assert changes["transfer: feature extraction"][0] < changes["transfer: fine-tuning"][0]
    assert final["from scratch"][1] > 3 * final["new head, base frozen"][1], final


@pytest.mark.claims
def test_claim_what_the_new_head_and_the_unfreezing_each_bring(lesson_run):
    _, changes = _comparison(_text(lesson_run))
    head, _, head_verdict = changes["the new head"]
    unfreezing, _, _ = changes["unfreezing"]
    # "the dense head on the frozen base beats the logistic regression by several points in
    # every seed"
    assert head_verdict == "better" and head >= 3, changes
    # "Unfreezing the top block adds little: about a point ... small next to the head's effect"
    assert abs(unfreezing) <= 2 and abs(unfreezing) < head / 2, changes


@pytest.mark.claims
def test_claim_cutting_lower_does_not_help_on_this_close_source_task(lesson_run):
    # "here cutting lower costs accuracy, in every draw of labelled images"
    found = find_printed(r"^cutting one block lower: ([+-][\d.]+) ± ([\d.]+) points \(([a-z ]+)\)$",
                  _text(lesson_run))
    assert found[3] == "worse" and float(found[1]) < 0, found[0]


@pytest.mark.claims
def test_claims_of_the_single_seed_demonstrations(lesson_run):
    text = _text(lesson_run)
    # "the network learns its few training images by heart (training accuracy near 100 %) but
    # does far worse on the test images"
    scratch = find_printed(r"^from scratch: training accuracy (\d+)%, test accuracy ([\d.]+)%", text)
    assert int(scratch[1]) >= 95 and float(scratch[2]) <= int(scratch[1]) - 30, scratch[0]
    # "a much better test accuracy than from scratch" (feature extraction, the same seed)
    gain = float(find_printed(r"^feature extraction: .* \(([+-][\d.]+) points over scratch\)", text)[1])
    assert gain >= 10, gain
    # "one labelled image per class already gives far more than chance, and the accuracy grows
    # with the labels"
    sizes = {int(k): int(v) for k, v in re.findall(r"'?(\d+)'?: '(\d+)%'", find_printed(
        r"^test accuracy by labelled images per class: \{.*\}$", text)[0])}
    ordered = [sizes[k] for k in sorted(sizes)]
    assert ordered[0] >= 3 * 100 / 12 and ordered[-1] > ordered[0], sizes
    assert ordered == sorted(ordered), sizes
    # "fine-tuning's validation accuracy ends much higher" than from scratch's
    last = dict(re.findall(r"'(from scratch|fine-tuning)': '(\d+)%'", find_printed(
        r"^last validation accuracy: .*$", text)[0]))
    assert int(last["fine-tuning"]) >= int(last["from scratch"]) + 15, last
