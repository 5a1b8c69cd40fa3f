"""Lesson 02, underfitting, overfitting and their remedies: its content and its claims.

What every lesson must be is checked in ``test_lessons.py``; this file checks what lesson 02
teaches, and every sentence of its text that says what a run shows, against what the run
printed. Unmarked claims hold in every profile the lesson runs in (``make test`` runs it in
``smoke``, ``make claims`` in ``cpu``); those marked ``claims`` need the longer cpu runs.
"""

from __future__ import annotations

import math
import re

import pytest
from conftest import COURSE, LESSON_PROFILE

from course_utils import overfitting
from course_utils.instructor import release

LESSON = "02_overfitting"
NUMBER = r"([-+]?[\d.]+)"
REMEDIES = ("simpler model", "augmentation", "L2 penalty", "batch norm", "dropout",
            "early stopping")
CHANCE = math.log(12)


def _master():
    return release.read_notebook(release.master_path(LESSON, COURSE))


def _text(lesson_run) -> str:
    return lesson_run(LESSON).stream()


def _seeds(text: str) -> list[int]:
    m = re.search(r"seeds \[([\d, ]+)\]", text)
    assert m, "the settings line naming the seeds is missing"
    return [int(s) for s in m.group(1).split(",")]


TABLE_HEADER = "seeds, mean ± standard deviation; change = run - baseline, seed by seed"


def _section(text: str, number: int) -> str:
    """The text from the ``number``-th comparison table (0: the remedies, 1: the mirrors) to the
    next one."""
    parts = re.split(r"^\d+ " + re.escape(TABLE_HEADER) + "$", text, flags=re.M)
    assert len(parts) == 3, f"expected two comparison tables, found {len(parts) - 1}"
    return parts[number + 1]


def _table(text: str, number: int = 0) -> dict[str, dict[str, float | str]]:
    """A comparison table: per run, the means, spreads, changes and verdicts."""
    text = _section(text, number)
    rows = {}
    pattern = re.compile(
        r"^(?P<name>[A-Za-z0-9 ]+?)\s{2,}(?P<loss>[\d.]+) ± (?P<loss_sd>[\d.]+)\s+"
        r"(?:(?P<dloss>[-+][\d.]+) ± (?P<dloss_sd>[\d.]+) "
        r"(?P<vloss>better|worse|within noise)\s+)?"
        r"(?P<acc>[\d.]+) ± (?P<acc_sd>[\d.]+) %\s+"
        r"(?:(?P<dacc>[-+][\d.]+) ± (?P<dacc_sd>[\d.]+) "
        r"(?P<vacc>better|worse|within noise)\s+)?"
        r"(?P<train>[\d.]+ ± [\d.]+ %|not measured)$", re.M)
    for m in pattern.finditer(text):
        row = {k: (float(v) if k not in ("name", "vloss", "vacc", "train") and v else v)
               for k, v in m.groupdict().items()}
        rows[m["name"]] = row
    return rows


def _verdicts(text: str, number: int = 0) -> dict[tuple[str, str], list[str]]:
    text = _section(text, number)
    said = {}
    for measure, verdict, names in re.findall(
            r"^(validation loss|validation accuracy), (better|within noise|worse)[^:]*: (.+)$",
            text, re.M):
        said[(measure, verdict)] = [] if names == "none" else names.split(", ")
    return said


def test_master_teaches_every_concept_of_syllabus_02():
    text = "\n".join(c.source for c in _master().cells if c.cell_type == "markdown").lower()
    for concept in ("underfit", "overfit", "more data", "capacity", "regularis",
                    "learning curves", "ideal", "unrepresentative validation",
                    "learning rate too high", "noisy", "small batches", "saving intermediate",
                    "early stopping", "simpler architecture", "augmentation",
                    "keep the label true", "l1", "l2", "penalty", "batch normalisation",
                    "per channel", "axis=-1", "axis=1", "channels first", "channels last",
                    "[rows][cols][channels]", "number of epochs", "dropout",
                    "during training", "restore_best_weights", "seed", "spread",
                    "within noise", "validation loss", "validation accuracy"):
        assert concept in text, f"the lesson never mentions {concept!r}"


def test_the_text_types_no_number_that_a_run_measures():
    # Numbers in prose come from the run: no percentages, no losses, no epoch numbers
    # (code and formulas, settings rather than results, are left out).
    prose = "\n".join(c.source for c in _master().cells if c.cell_type == "markdown"
                      and "nbgrader" not in c.get("metadata", {}))
    prose = re.sub(r"`[^`]*`|\$[^$]*\$", "", prose)
    typed = re.findall(r"\b\d+(?:\.\d+)? ?%|\bepoch \d+\b|\b\d\.\d\d\b", prose)
    assert typed == [], f"numbers typed into the text: {typed}"


# Smoke's runs last few_shot_epochs = 6 epochs: too short for every shape to show (the run in
# batches of 1 has 3): a claim of the cpu run.
@pytest.mark.claims
def test_every_diagnosis_is_shown_from_a_real_run(lesson_run):
    text = _text(lesson_run)
    seen = re.findall(r"^([^:\n]+): (" + "|".join(overfitting.DIAGNOSES) + r"):", text, re.M)
    labels = {label for _, label in seen}
    assert labels >= set(overfitting.DIAGNOSES), f"real runs showed only {sorted(labels)}"
    # and each run shows the shape the lesson says it does, panel by panel
    said = dict(seen)
    expected = {"larger training set": "ideal", "tiny model": "underfit",
                "baseline, small subset": "overfit",
                "easy validation set": "unrepresentative validation",
                "batches of 1": "noisy small batches"}
    assert {name: said.get(name) for name in expected} == expected, said
    assert any(name.startswith("learning rate ") and label == "learning rate too high"
               for name, label in seen), said


def test_the_tiny_model_ends_close_to_the_loss_of_guessing(lesson_run):
    m = re.search(r"^tiny model: underfit: the training loss is still " + NUMBER,
                  _text(lesson_run), re.M)
    assert m, "the tiny model's diagnosis line is missing"
    assert float(m.group(1)) > 0.75 * CHANCE, f"tiny model ends at {m.group(1)}"


def test_a_learning_rate_too_high_explodes_then_ends_up_guessing(lesson_run):
    m = re.search(r"training loss " + NUMBER + r" in epoch 1, " + NUMBER + r" in epoch \d+ "
                  r"\(guessing: ln 12 = 2.48\)", _text(lesson_run))
    assert m, "the learning-rate line is missing"
    first, last = float(m.group(1)), float(m.group(2))
    assert first > 5 * CHANCE, "the first epoch's loss is many times the loss of guessing"
    assert abs(last - CHANCE) < 0.1 * CHANCE, "the run ends at the loss of guessing"


def test_the_easy_validation_loss_stays_far_below_the_training_loss(lesson_run):
    m = re.search(r"^easy validation set: unrepresentative validation: the validation loss "
                  r"\(" + NUMBER + r"\) stays far below the training loss \(" + NUMBER + r"\)",
                  _text(lesson_run), re.M)
    assert m, "the easy validation set's diagnosis line is missing"
    assert float(m.group(1)) < 0.5 * float(m.group(2))
    assert re.search(r"^easy validation set: \d+ studio images of fists and open hands$",
                     _text(lesson_run), re.M)


# In smoke's 6 epochs the baseline has not fitted its training images yet: a claim of the
# cpu run.
@pytest.mark.claims
def test_the_baseline_clearly_overfits_in_every_seed(lesson_run):
    text = _text(lesson_run)
    lines = re.findall(r"^baseline, seed (\d+): training accuracy " + NUMBER + r"%; validation "
                       r"loss lowest in epoch (\d+) \(" + NUMBER + r"\), " + NUMBER +
                       r" after epoch (\d+)$", text, re.M)
    assert [int(seed) for seed, *_ in lines] == _seeds(text)
    for seed, train, best_epoch, lowest, final, last in lines:
        assert float(train) >= 90, f"seed {seed}: training accuracy {train} %"
        assert int(best_epoch) < int(last), f"seed {seed}: the loss was lowest at the end"
        assert float(final) > 1.05 * float(lowest), (
            f"seed {seed}: validation loss {lowest} at its lowest, {final} at the end")


def test_the_remedy_table_judges_every_remedy_on_both_measures_over_the_seeds(lesson_run):
    text = _text(lesson_run)
    n = len(_seeds(text))
    assert n == (3 if LESSON_PROFILE in ("cpu", "gpu") else 2)
    assert f"{n} seeds, mean ± standard deviation; change = run - baseline, seed by seed" in text
    table = _table(text)
    assert list(table) == ["baseline", *REMEDIES], table
    assert table["baseline"]["vloss"] is None and table["early stopping"]["train"] == \
        "not measured"
    verdicts = _verdicts(text)
    for measure, key in (("validation loss", "vloss"), ("validation accuracy", "vacc")):
        for remedy in REMEDIES:
            verdict = table[remedy][key]
            assert remedy in verdicts[(measure, verdict)], (measure, remedy, verdicts)
            # the verdict follows the rule the text states: a mean larger than the spread
            change, spread = table[remedy]["d" + key[1:]], table[remedy]["d" + key[1:] + "_sd"]
            if verdict != "within noise":
                assert abs(change) > spread, (remedy, measure, change, spread)
                better = change < 0 if key == "vloss" else change > 0
                assert better == (verdict == "better"), (remedy, measure, change, verdict)
    figures = sum("image/png" in o.get("data", {}) for c in lesson_run(LESSON).nb.cells
                  for o in c.get("outputs", []))
    assert figures >= 5, "subset, diagnoses, quiz, remedies, curves over seeds"


def test_some_remedy_cuts_the_validation_loss_without_more_right_answers(lesson_run):
    # "Loss and accuracy need not agree": the table shows a remedy that does one, not both.
    table = _table(_text(lesson_run))
    split = [name for name in REMEDIES
             if table[name]["vloss"] == "better" and table[name]["vacc"] != "better"]
    assert split, table


# The order of the training losses needs more than smoke's 6 epochs: a claim of the cpu run.
@pytest.mark.claims
def test_batch_norm_fits_fastest_and_augmentation_keeps_the_training_loss_highest(lesson_run):
    text = _text(lesson_run)
    found = re.findall(r"^training loss after epoch (\d+), mean over the seeds: (.+)$", text,
                       re.M)
    assert len(found) == 2, found
    early, late = ({name: float(v) for name, v in re.findall(r"([A-Za-z ]+?) ([\d.]+)(?:, |$)",
                                                             values)}
                   for _, values in found)
    assert set(early) == {"baseline", "augmentation", "batch norm", "dropout"}, early
    assert min(early, key=early.get) == "batch norm", early
    assert max(late, key=late.get) == "augmentation", late
    # "it does not lower the validation loss by more than the spread"
    assert _table(text)["batch norm"]["vloss"] != "better"


# In smoke's 6 epochs the validation loss is still falling: a claim of the cpu run.
@pytest.mark.claims
def test_stopping_on_the_loss_keeps_an_epoch_another_epoch_beats_on_accuracy(lesson_run):
    text = _text(lesson_run)
    lines = re.findall(r"^seed (\d+): stopping on the validation loss keeps epoch (\d+) "
                       r"\(validation loss [\d.]+, accuracy " + NUMBER + r"%\); the highest "
                       r"validation accuracy was " + NUMBER + r"%, in epoch (\d+)$", text, re.M)
    assert [int(seed) for seed, *_ in lines] == _seeds(text)
    worse = [seed for seed, _, kept, top, _ in lines if float(top) > float(kept)]
    m = re.search(r"lower validation accuracy than another epoch in (\d+) of (\d+) seeds", text)
    assert m and int(m.group(1)) == len(worse) and int(m.group(2)) == len(lines)
    assert 2 * len(worse) >= len(lines), "the text says it happens here, in most seeds"


def test_early_stopping_and_the_picked_checkpoint_give_the_best_epoch(lesson_run):
    text = _text(lesson_run)
    m = re.search(r"the best validation loss was ([\d.]+) in epoch (\d+)", text)
    assert m, "the early-stopping line is missing"
    best, epoch = m.group(1), m.group(2)
    assert f"validation loss of the restored model: {best}" in text
    assert f"validation loss of the checkpoint of epoch {epoch}: {best}" in text


def test_the_given_run_of_the_remedy_task_overfits(lesson_run):
    # its sizes are fixed by the course, so it overfits in every profile
    assert re.search(r"^the given run: overfit: ", _text(lesson_run), re.M), \
        "the given run's diagnosis line is missing or does not say overfit"


def test_the_mirror_comparison_pairs_both_mirrors_over_the_seeds(lesson_run):
    text = _text(lesson_run)
    table = _table(text, 1)
    assert list(table) == ["augmentation", "mirror keeps the label"], table
    verdict = table["mirror keeps the label"]["vacc"]
    assert "mirror keeps the label" in _verdicts(text, 1)[("validation accuracy", verdict)]


# --------------------------------------------------------------------------- cpu size


@pytest.mark.claims
def test_at_cpu_size_a_mirror_that_keeps_the_label_costs_validation_accuracy(lesson_run):
    row = _table(_text(lesson_run), 1)["mirror keeps the label"]
    assert row["vacc"] == "worse", row


@pytest.mark.claims
def test_at_cpu_size_augmentation_helps_most_on_both_measures(lesson_run):
    table = _table(_text(lesson_run))
    trained = [name for name in REMEDIES if name != "early stopping"]
    assert table["augmentation"]["vloss"] == table["augmentation"]["vacc"] == "better", table
    assert min(trained, key=lambda n: table[n]["loss"]) == "augmentation"
    assert max(trained, key=lambda n: table[n]["acc"]) == "augmentation"
