"""Lesson 01, the learning rate: its content and the claims its real run makes.

What every lesson must be (opening, graded tasks, smoke budget, no log noise, nbgrader
validate) is checked in ``test_lessons.py``; this file checks what lesson 01 teaches and
the claims as the solved notebook prints them in the smoke profile. The same claims are
checked on the module directly, with fixed seeds, in ``test_learning_rate.py``.
"""

from __future__ import annotations

import itertools
import math
import re

from conftest import COURSE

from course_utils.instructor import release

LESSON = "01_learning_rate"
NUMBER = r"(nan|[\d.]+(?:e[-+]?\d+)?)"


def _master():
    return release.read_notebook(release.master_path(LESSON, COURSE))


def _markdown() -> str:
    return "\n".join(c.source for c in _master().cells if c.cell_type == "markdown").lower()


def test_master_teaches_every_concept_of_syllabus_01():
    text = _markdown()
    for concept in (
        # what the rate is
        "hyper-parameter", "between 0 and 1", "does not learn", "step",
        # symptoms
        "oscillat", "diverge", "nan", "flat", "steady decrease",
        # by hand versus a scheduler
        "by hand", "scheduler", "learningratescheduler", "function of the epoch",
        # decay strategies
        "step decay", "reduce on plateau", "exponential decay", "1/t (inverse time) decay",
        "most common", "cools too fast", "exponentialdecay", "inversetimedecay",
        "piecewiseconstantdecay", "reducelronplateau",
        # range test
        "range test", "running mean",
        # optimizer choice
        "full-batch", "memory", "few updates", "stochastic gradient descent", "one sample",
        "noisy", "mini-batch", "frequent but stable updates", "local minima",
        "batch size controls the gradient noise", "larger batch", "momentum", "adam",
        "adaptive", "second-order", "do not scale",
    ):
        assert concept in text, f"the lesson never mentions {concept!r}"


def test_settings_cell_holds_the_budget_and_the_rates():
    code = [c for c in _master().cells if c.cell_type == "code"
            and not c.metadata.get("nbgrader", {}).get("grade_id")]
    settings = code[0].source
    for name in ("BATCH_SIZE", "RUN_EPOCHS", "MOMENTUM", "RATES", "RANGE_STEPS", "SEED"):
        assert re.search(rf"^{name} = ", settings, re.M), f"{name} is not set in the settings"
    later = "\n".join(c.source for c in code[1:])
    assert "widgets.explore(" in later, "the learning-rate explorer is missing"
    assert "LearningRateScheduler(" in later and "ReduceLROnPlateau(" in later


def test_lesson_claims_hold_on_the_real_run(lesson_run):
    run = lesson_run(LESSON)
    text = run.stream()
    figures = sum("image/png" in o.get("data", {}) for c in run.nb.cells
                  for o in c.get("outputs", []))
    assert figures >= 8, f"{figures} figures: surfaces, symptoms, schedules, range test, noise"

    runs = {m.group(1): (float(m.group(2)), float(m.group(3)), m.group(4), float(m.group(5)),
                         m.group(6)) for m in re.finditer(
        rf"rate \S+ \((too low|good|too high)\): training loss {NUMBER} -> {NUMBER} "
        r"\(\S+ of the initial loss\), diagnosis: (too low|good|too high); "
        rf"largest rise between epochs {NUMBER}, (finite at every epoch|NaN from epoch \d+)",
        text)}
    assert sorted(runs) == ["good", "too high", "too low"], text
    initial, final, verdict, _, _ = runs["too high"]
    assert (math.isnan(final) or final > initial) and verdict == "too high"
    initial, final, verdict, _, _ = runs["too low"]
    assert abs(final - initial) <= 0.1 * initial and verdict == "too low"
    initial, final, verdict, _, _ = runs["good"]
    assert final < 0.5 * initial and verdict == "good"
    assert runs["too high"][4].startswith("NaN") or runs["too high"][1] > runs["too high"][0]
    assert runs["good"][4] == runs["too low"][4] == "finite at every epoch", runs

    m = re.search(r"^step decay, rate per epoch: (.+)$", text, re.M)
    assert m, text
    step_rates = [float(r) for r in m.group(1).split(", ")]
    held = [len(list(group)) for _, group in itertools.groupby(step_rates)]
    assert len(held) >= 2 and min(held[:-1]) >= 2, f"step decay must hold the rate: {step_rates}"
    assert all(b == a / 2 for a, b in itertools.pairwise(sorted(set(step_rates), reverse=True)))

    ends = {m.group(1): (float(m.group(2)), float(m.group(3))) for m in re.finditer(
        rf"^(constant|step decay|too fast cooling): training loss {NUMBER}, validation loss "
        rf"after \d+ epochs {NUMBER}$", text, re.M)}
    assert sorted(ends) == ["constant", "step decay", "too fast cooling"], text
    assert ends["step decay"][1] < ends["constant"][1], ends
    fast, step = ends["too fast cooling"], ends["step decay"]
    assert fast[0] > step[0] and fast[1] > step[1], ends  # cooled too fast: it ends above

    m = re.search(rf"suggested rate {NUMBER}: training loss {NUMBER} -> {NUMBER}", text)
    assert m, text
    suggested, initial, final = map(float, m.groups())
    assert 1e-4 < suggested < 1.0 and final < 0.5 * initial, m.group(0)
    assert re.search(r"stopped when the loss diverged; suggested rate", text)
    assert "refused: optimizer" in text and "plain float learning rate" in text

    gaps = [float(g) for g in re.findall(r"largest difference ([\d.e+-]+)", text)]
    assert len(gaps) == 4 and max(gaps) < 1e-6, gaps  # PiecewiseConstantDecay among them

    noise = [float(v) for v in re.findall(r"batch size \d+: loss noise ([\d.]+)", text)]
    assert len(noise) == 3 and noise == sorted(noise, reverse=True), noise
    m = re.search(r"reduce on plateau from \S+: rate per epoch ([^;]+); "
                  r"validation loss per epoch (.+)$", text, re.M)
    assert m, text
    rates = [float(r) for r in m.group(1).split(", ")]
    val = [float(v) for v in m.group(2).split(", ")]
    drops = [e for e in range(len(rates) - 1) if rates[e + 1] < rates[e]]
    # patience 0: the rate falls only after an epoch that did not improve the validation loss
    assert all(val[e] >= min(val[:e], default=math.inf) for e in drops), m.group(0)
