"""course_utils.learning_rate: loss surfaces, schedules, per-batch losses, range test; claims.

The claims of lesson 01 are checked at the end on the fingers CNN with fixed seeds, on the
smoke profile's data. The smoke profile's own budget (2 epochs of 15 batches, 30 updates) is
too short for any rate to halve the loss, so the claims use the smallest budget where they
honestly hold: 6 epochs (90 updates of SGD with momentum 0.9; at 4, step decay against the
constant rate is a coin toss over seeds), and the lesson's small CNN
(``build_fingers_cnn(width=8, depth=2)``). The notebook uses the same configuration.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys

import numpy as np
import pytest
from matplotlib.figure import Figure

from course_utils import datasets, fingers, models, training
from course_utils import learning_rate as lr
from course_utils.learning_rate.curves import CURVE_LABELS
from course_utils.runtime import profiles
from course_utils.runtime.tf_setup import import_keras, set_seed

keras = import_keras()
schedules = keras.optimizers.schedules

# The lesson's configuration (notebook settings cell: the CNN, the rates, and RUN_EPOCHS as
# in the cpu profile), on the smoke profile's 480 training images.
CLAIM_EPOCHS = 6
TOO_LOW, GOOD, TOO_HIGH = 1e-5, 0.01, 1.0
HIGH_SIDE = 0.07  # three times the range test's suggestion on these images: where schedules start
STEP_EVERY = 2    # step decay holds the rate for 2 epochs, then halves it
SEED = 42
INITIAL = math.log(12)   # the untrained CNN scores every class alike


# --------------------------------------------------------------------------- import


def test_importing_the_module_does_not_import_tensorflow():
    code = ("import sys, course_utils.learning_rate as m; s = m.make_step_decay(0.1); "
            "m.schedule_rates(s, 3); m.plot_descent(m.QuadraticLoss((1.0,)), s); "
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_every_public_name_is_importable_from_the_lesson_module():
    missing = [name for name in lr.__all__ if not hasattr(lr, name)]
    assert not missing, f"course_utils.learning_rate lacks {missing}"
    assert set(lr.__all__) <= set(dir(lr))
    assert lr.BatchLossHistory is lr.callbacks.BatchLossHistory


# --------------------------------------------------------------------------- loss surfaces


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9, 1.5, 1.9, 2.1])
def test_gradient_descent_on_a_parabola_follows_the_closed_form(rate):
    path = lr.gradient_descent(lr.QuadraticLoss((2.0,)), [3.0], rate / 2.0, 10)
    np.testing.assert_allclose(path[:, 0], 3.0 * (1 - rate) ** np.arange(11))


def test_the_rate_decides_between_smooth_oscillating_and_diverging_descent():
    bowl = lr.QuadraticLoss((1.0,))
    smooth = lr.gradient_descent(bowl, [3.0], 0.5, 20)[:, 0]
    oscillating = lr.gradient_descent(bowl, [3.0], 1.5, 20)[:, 0]
    diverging = lr.gradient_descent(bowl, [3.0], 2.5, 20)[:, 0]
    assert np.all(smooth > 0) and np.all(np.diff(smooth) < 0)
    assert np.all(np.sign(oscillating[1:]) != np.sign(oscillating[:-1]))
    assert abs(oscillating[-1]) < 1e-5
    assert abs(diverging[-1]) > 1e3 * abs(diverging[0])


def test_the_steep_direction_of_a_valley_limits_the_rate():
    valley = lr.QuadraticLoss((1.0, 10.0))
    assert valley.largest_stable_rate == pytest.approx(0.2)
    stable = lr.gradient_descent(valley, [-4.0, 1.5], 0.19, 200)
    unstable = lr.gradient_descent(valley, [-4.0, 1.5], 0.21, 200)
    assert valley.loss(stable[-1]) < 1e-6
    assert valley.loss(unstable[-1]) > valley.loss(unstable[0])


def test_a_schedule_that_cools_too_fast_stalls_before_the_minimum():
    valley = lr.QuadraticLoss((1.0, 10.0))
    constant = lr.gradient_descent(valley, [-4.0, 1.5], 0.15, 30)
    fast = lr.gradient_descent(valley, [-4.0, 1.5], lr.make_exponential_decay(0.15, k=0.5), 30)
    assert valley.loss(fast[-1]) > 100 * valley.loss(constant[-1])


def test_gradient_descent_checks_its_arguments():
    with pytest.raises(ValueError, match="learning_rate: expected a finite number > 0, got 0.0"):
        lr.gradient_descent(lr.QuadraticLoss((1.0,)), [1.0], 0.0, 3)
    with pytest.raises(ValueError, match="steps: expected a whole number >= 0, got -1"):
        lr.gradient_descent(lr.QuadraticLoss((1.0,)), [1.0], 0.1, -1)
    with pytest.raises(ValueError, match="start: expected a point with 2 coordinate"):
        lr.gradient_descent(lr.QuadraticLoss((1.0, 2.0)), [1.0, 2.0, 3.0], 0.1, 3)


@pytest.mark.parametrize("curvatures", [(1.0,), (1.0, 10.0)])
def test_plot_descent_draws_the_surface_and_the_loss_per_step(curvatures):
    fig = lr.plot_descent(lr.QuadraticLoss(curvatures), 0.15, steps=10)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert fig.axes[1].get_yscale() == "log"
    assert "learning rate 0.15" in fig.axes[0].get_title()


# --------------------------------------------------------------------------- symptoms


@pytest.mark.parametrize(("losses", "expected"), [
    ([2.48, math.nan, math.nan], lr.TOO_HIGH),       # diverged
    ([2.48, 2.9, 2.7], lr.TOO_HIGH),                 # ends above the start
    ([2.48, 1.2, 2.2, 1.1], lr.TOO_HIGH),            # jumps up: oscillation
    ([2.48, 2.47, 2.46, 2.45], lr.TOO_LOW),          # within 10 % of the start
    ([2.48, 2.5, 2.52], lr.TOO_LOW),                 # flat, a little above the start
    ([2.48, 2.6, 2.8], lr.TOO_HIGH),                 # creeps up by more than 10 %
    ([2.48, 2.0, 1.5, 1.1], lr.GOOD),
    ([2.48, 2.3, 2.35, 2.0], lr.GOOD),               # a small bump is noise
])
def test_diagnose_loss_curve(losses, expected):
    assert lr.diagnose_loss_curve(losses) == expected


def test_diagnose_loss_curve_needs_two_values():
    with pytest.raises(ValueError, match="at least two"):
        lr.diagnose_loss_curve([2.0])


def test_plot_symptoms_titles_each_run_with_its_diagnosis():
    fig = lr.plot_symptoms({"a": {"loss": [math.nan, math.nan]}, "b": {"loss": [1.0, 0.5]}},
                           initial_loss=2.5)
    assert [ax.get_title() for ax in fig.axes] == ["a: too high", "b: good"]
    with pytest.raises(ValueError, match="'loss'"):
        lr.plot_symptoms({"a": {"accuracy": [0.5]}})


def test_plot_symptoms_panels_share_one_log_loss_axis_counted_in_epochs():
    fig = lr.plot_symptoms({"flat": {"loss": [2.48, 2.47]}, "wild": {"loss": [2.0, 900.0]}})
    flat, wild = fig.axes
    assert flat.get_shared_y_axes().joined(flat, wild)
    assert flat.get_ylim() == wild.get_ylim()
    assert {ax.get_yscale() for ax in fig.axes} == {"log"}
    assert {ax.get_xlabel() for ax in fig.axes} == {"epoch"}
    assert "log scale" in flat.get_ylabel()


def test_plot_symptoms_ends_a_diverged_curve_at_its_last_finite_loss_and_says_so():
    fig = lr.plot_symptoms({"diverged": {"loss": [2.0, 5.0, math.nan, math.nan]}},
                           initial_loss=2.5)
    (ax,) = fig.axes
    drawn = [line for line in ax.lines if line.get_label() == "train"]
    assert len(drawn) == 1 and drawn[0].get_ydata().tolist() == [2.0, 5.0]
    assert drawn[0].get_xdata().tolist() == [1, 2]          # measured epochs only
    assert all(np.all(np.isfinite(line.get_ydata())) for line in ax.lines)
    assert [t.get_text() for t in ax.texts] == ["loss NaN from epoch 3:\nthe run diverged"]


# --------------------------------------------------------------------------- schedules


@pytest.mark.parametrize(("schedule", "formula"), [
    (lr.make_step_decay(0.03, factor=0.1, every=4), lambda t: 0.03 * 0.1 ** (t // 4)),
    (lr.make_step_decay(1, factor=0.8, every=1), lambda t: 1.0 * 0.8 ** (t // 1)),
    (lr.make_exponential_decay(0.2, k=0.3), lambda t: 0.2 * math.exp(-0.3 * t)),
    (lr.make_inverse_time_decay(0.2, k=0.3), lambda t: 0.2 / (1.0 + 0.3 * t)),
])
def test_each_schedule_computes_its_formula_in_python_floats_exactly(schedule, formula):
    rates = [schedule(t) for t in range(60)]
    assert all(type(r) is float for r in rates)
    assert rates == [float(formula(t)) for t in range(60)]   # bit for bit: graded tasks compare


def test_one_class_per_formula_and_each_survives_get_config_and_from_config():
    made = [lr.make_step_decay(0.1, factor=0.5, every=3), lr.make_exponential_decay(0.1, k=0.2),
            lr.make_inverse_time_decay(0.1, k=0.2)]
    assert [type(s) for s in made] == [lr.EpochStepDecay, lr.EpochExponentialDecay,
                                       lr.EpochInverseTimeDecay]
    assert made[0].get_config() == {"initial_rate": 0.1, "factor": 0.5, "every": 3}
    assert made[1].get_config() == {"initial_rate": 0.1, "k": 0.2}
    for schedule in made:
        assert isinstance(schedule, lr.EpochSchedule)
        again = type(schedule).from_config(schedule.get_config())
        assert again == schedule and lr.schedule_rates(again, 12).tolist() == \
            lr.schedule_rates(schedule, 12).tolist()


def test_schedule_classes_check_their_arguments_at_the_door():
    with pytest.raises(ValueError, match="factor: expected a number > 0 and <= 1, got 1.5"):
        lr.EpochStepDecay(0.1, factor=1.5)
    with pytest.raises(ValueError, match="every: expected a whole number, got 2.5"):
        lr.EpochStepDecay(0.1, every=2.5)
    with pytest.raises(ValueError, match="k: expected a finite number, got nan"):
        lr.EpochExponentialDecay(0.1, k=float("nan"))
    with pytest.raises(ValueError, match="initial_rate: expected a finite number > 0, got 0.0"):
        lr.EpochInverseTimeDecay(0.0, k=1.0)


def test_step_decay_matches_keras_staircase_and_piecewise_constant():
    step = lr.make_step_decay(0.1, factor=0.5, every=3)
    staircase = schedules.ExponentialDecay(0.1, decay_steps=3, decay_rate=0.5, staircase=True)
    # PiecewiseConstantDecay keeps values[i] up to and including boundaries[i]: 2, 5, 8...
    piecewise = schedules.PiecewiseConstantDecay([2, 5, 8, 11],
                                                 [0.1 * 0.5**i for i in range(5)])
    ours = lr.schedule_rates(step, 15)
    np.testing.assert_allclose(ours, lr.schedule_rates(staircase, 15), atol=1e-6)
    np.testing.assert_allclose(ours, lr.schedule_rates(piecewise, 15), atol=1e-6)


def test_exponential_and_inverse_time_decay_match_keras():
    exp = lr.make_exponential_decay(0.2, k=0.3)
    inv = lr.make_inverse_time_decay(0.2, k=0.3)
    keras_exp = schedules.ExponentialDecay(0.2, decay_steps=1, decay_rate=math.exp(-0.3))
    keras_inv = schedules.InverseTimeDecay(0.2, decay_steps=1, decay_rate=0.3)
    np.testing.assert_allclose(lr.schedule_rates(exp, 30), lr.schedule_rates(keras_exp, 30),
                               atol=1e-6)
    np.testing.assert_allclose(lr.schedule_rates(inv, 30), lr.schedule_rates(keras_inv, 30),
                               atol=1e-6)


def test_schedules_drive_keras_learning_rate_scheduler():
    set_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    step = lr.make_step_decay(0.1, factor=0.5, every=2)
    history = model.fit(np.ones((8, 3)), np.ones(8), epochs=5, verbose=0,
                        callbacks=[keras.callbacks.LearningRateScheduler(step)])
    np.testing.assert_allclose(history.history["learning_rate"],
                               [0.1, 0.1, 0.05, 0.05, 0.025], rtol=1e-6)


def test_schedules_check_their_arguments():
    with pytest.raises(ValueError, match="factor"):
        lr.make_step_decay(0.1, factor=2.0)
    with pytest.raises(ValueError, match="every"):
        lr.make_step_decay(0.1, every=0)
    with pytest.raises(ValueError, match="initial_rate"):
        lr.make_exponential_decay(-1.0, k=0.1)
    with pytest.raises(ValueError, match="k"):
        lr.make_inverse_time_decay(0.1, k=-1.0)
    with pytest.raises(ValueError, match="epoch"):
        lr.make_step_decay(0.1)(-1)


def test_plot_schedules_takes_functions_keras_schedules_and_recorded_rates():
    fig = lr.plot_schedules({"step": lr.make_step_decay(0.1, every=2),
                             "keras": schedules.InverseTimeDecay(0.1, 1, 0.5),
                             "recorded": [0.1, 0.1, 0.05]}, 6)
    lengths = [len(line.get_xdata()) for line in fig.axes[0].lines]
    assert lengths == [6, 6, 3] and fig.axes[0].get_yscale() == "log"


# --------------------------------------------------------------------------- per-batch losses


def test_plot_schedules_counts_steps_when_told():
    fig = lr.plot_schedules({"warm-up + cosine": schedules.CosineDecay(
        0.0, 90, warmup_target=1.0, warmup_steps=10)}, 100, log=False, unit="step")
    line = fig.axes[0].lines[0]
    assert fig.axes[0].get_xlabel() == "step" and len(line.get_xdata()) == 100
    assert max(line.get_ydata()) == pytest.approx(1.0) and line.get_ydata()[0] == 0.0


# --------------------------------------------------------------------------- a budget of steps


def test_the_budget_problem_is_deterministic_and_its_best_loss_is_the_least_squares_fit():
    problem = lr.BudgetProblem()
    x, y = problem.data
    assert x.shape == (problem.samples, problem.features)
    first, again = problem.run(0.05, steps=50, seed=1), lr.BudgetProblem().run(0.05, 50, 1)
    assert np.array_equal(first.losses, again.losses)
    assert not np.array_equal(first.losses, problem.run(0.05, steps=50, seed=2).losses)
    assert problem.target == pytest.approx(1.02 * problem.best_loss)
    assert problem.best_loss < problem.run(0.1, steps=2000, seed=0).final


def test_no_constant_rate_meets_the_budget_and_a_schedule_that_follows_it_does():
    problem = lr.BudgetProblem()
    for rate in np.geomspace(0.005, 0.5, 12):
        assert lr.check_budget_schedule(lambda steps, rate=rate: float(rate), problem), rate

    def warm_cosine(steps):
        return schedules.CosineDecay(0.0, steps - steps // 10, warmup_target=0.2,
                                     warmup_steps=steps // 10)

    assert lr.check_budget_schedule(warm_cosine, problem) == []
    assert lr.check_budget_schedule(lambda steps: lambda step: 0.3 * 0.5 ** (step // (steps // 6)),
                                    problem) == []
    fixed = lr.check_budget_schedule(lambda steps: warm_cosine(400), problem, budgets=[300])
    assert fixed and all(line.startswith("budget 300 steps, seed") for line in fixed)


def test_a_rate_that_overflows_is_reported_as_such():
    problem = lr.BudgetProblem()
    run = problem.run(5.0, steps=100)
    assert math.isinf(run.final) and np.isfinite(run.losses[0])
    [line, *_] = lr.check_budget_schedule(lambda steps: 5.0, problem, budgets=[100], seeds=[0])
    assert "overflowed" in line and "too high" in line


def test_schedule_per_step_reads_numbers_functions_and_keras_schedules():
    cosine = schedules.CosineDecay(0.1, 10)
    assert lr.schedule_per_step(cosine, 10) == pytest.approx([float(cosine(t)) for t in range(10)],
                                                           rel=1e-5)  # float32, traced or not
    assert lr.schedule_per_step(0.1, 2).tolist() == [0.1, 0.1]
    with pytest.raises(ValueError, match="expected a number, a function of the step"):
        lr.schedule_per_step("fast", 3)
    with pytest.raises(ValueError, match="a rate of 0 or more at every step, got -0.1 at step 0"):
        lr.schedule_per_step(lambda step: -0.1, 3)
    with pytest.raises(ValueError, match="calling it with a step failed"):
        lr.schedule_per_step(lambda: 0.1, 3)
    assert "failed" in lr.check_budget_schedule(lambda steps: "fast", budgets=[300])[0]


def test_plot_budget_runs_draws_the_excess_over_the_best_loss_and_the_target():
    problem = lr.BudgetProblem()
    fig = lr.plot_budget_runs({"a": problem.run(0.05, 30), "b": problem.run(5.0, 30)}, problem)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "step"
    assert np.isfinite(ax.lines[1].get_ydata()).all()   # the overflow is not drawn
    # the axis stops ten times above the highest start; the run that leaves it says when
    starts = [line.get_ydata()[0] for line in ax.lines[:2]]
    assert ax.get_ylim()[1] == pytest.approx(10 * max(starts))
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0] == "a" and re.fullmatch(r"b \(off the top from step \d+\)", labels[1])
    with pytest.raises(ValueError, match="non-empty"):
        lr.plot_budget_runs({}, problem)


# --------------------------------------------------------------------------- real loss curves


def test_the_shipped_loss_curves_are_real_runs_with_clear_labels():
    curves = lr.load_loss_curves()
    assert {c.label for c in curves} == {lr.TOO_HIGH, lr.TOO_LOW, lr.GOOD}
    for curve in curves:
        assert curve.profile == "cpu" and curve.losses[0] == pytest.approx(INITIAL, abs=1e-5)
        assert CURVE_LABELS[curve.rate] == curve.label
        assert lr.is_clear(curve.losses, curve.label), curve
        losses = np.asarray(curve.losses)
        if curve.label != lr.TOO_HIGH:
            assert np.isfinite(losses).all(), curve
    # a slow climb back is among them, and the printed rule misses it
    climbs = [c for c in curves if c.label == lr.TOO_HIGH and np.isfinite(c.losses).all()
              and lr.diagnose_loss_curve(c.losses) == lr.GOOD]
    assert climbs, "the curves should hold a climb back the 10 % rule calls good"


@pytest.mark.parametrize(("losses", "label", "clear"), [
    ([2.48, 2.47, 2.46, 2.45], lr.TOO_LOW, True),
    ([2.48, 2.30, 2.20, 2.10], lr.TOO_LOW, False),        # ends at 85 %: on the border
    ([2.48, 2.65, 2.50, 2.47], lr.TOO_LOW, False),        # a rise of 7 %
    ([2.48, 1.50, 1.00, 0.80], lr.GOOD, True),
    ([2.48, 1.80, 1.40, 1.30], lr.GOOD, False),           # ends above half the start
    ([2.48, 1.50, 0.80, 0.84], lr.GOOD, True),            # climbs back 1.6 %: noise
    ([2.48, 1.50, 0.80, 0.90], lr.GOOD, False),           # climbs back 4 %
    ([2.48, 2.20, 1.00, 1.50], lr.TOO_HIGH, True),        # climbs back 20 %
    ([2.48, 3.10, 2.49, 2.49], lr.TOO_HIGH, True),        # a jump of 25 %, then flat
    ([2.48, 2.85, 2.49, 2.49], lr.TOO_HIGH, False),       # a jump of 15 % only
    ([2.48, 1.50, 1.40, 1.47], lr.TOO_HIGH, False),       # a climb of 3 %
    ([2.48, 26.5, None], lr.TOO_HIGH, True),              # diverged
    ([2.48, 1.50, float("nan")], lr.TOO_HIGH, True),
    ([2.48, 1.50, None], lr.GOOD, False),
])
def test_is_clear_keeps_only_curves_far_from_every_border(losses, label, clear):
    assert lr.is_clear(losses, label) is clear


def test_is_clear_says_what_it_expected():
    with pytest.raises(ValueError, match="label: expected one of.*'too high'.*got 'fast'"):
        lr.is_clear([2.48, 1.0], "fast")
    for losses in ([], [None, 1.0], [[2.48, 1.0]]):
        with pytest.raises(ValueError, match="losses: expected a list of losses, the first"):
            lr.is_clear(losses, lr.GOOD)


def test_recover_batch_losses_inverts_the_running_mean():
    losses = np.random.default_rng(0).random(50) * 3
    means = np.cumsum(losses) / np.arange(1, 51)
    np.testing.assert_allclose(lr.recover_batch_losses(means), losses, atol=1e-9)


def test_batch_loss_history_recovers_the_loss_of_every_batch_from_keras_logs():
    set_seed(0)
    x = np.random.default_rng(1).normal(size=(40, 3)).astype("float32")
    y = x @ np.array([1.0, -2.0, 0.5], dtype="float32")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")  # weights stay put
    recorder = lr.BatchLossHistory()
    model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0, callbacks=[recorder])
    direct = [model.evaluate(x[i:i + 8], y[i:i + 8], verbose=0) for i in range(0, 40, 8)]
    assert len(recorder.losses) == 10 and recorder.rates == [0.0] * 10
    np.testing.assert_allclose(recorder.losses, direct * 2, rtol=1e-4)
    assert isinstance(recorder, keras.callbacks.Callback)


# --------------------------------------------------------------------------- range test


def _tiny_regression():
    set_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = (x @ rng.normal(size=4)).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="mse")
    tf = __import__("tensorflow")
    return model, tf.data.Dataset.from_tensor_slices((x, y)).batch(16)


def test_range_test_stops_on_divergence_and_restores_weights_state_and_rate():
    model, data = _tiny_regression()
    model.fit(data, epochs=1, shuffle=False, verbose=0)       # momentum state is not zero
    weights = [w.copy() for w in model.get_weights()]
    state = [keras.ops.convert_to_numpy(v) for v in model.optimizer.variables]
    result = lr.find_learning_rate(model, data, min_rate=1e-4, max_rate=100.0, steps=80)
    assert result.diverged and len(result.rates) < 80
    assert np.all(np.diff(result.rates) > 0)
    np.testing.assert_allclose(result.rates, np.geomspace(1e-4, 100.0, 80)[:len(result.rates)],
                               rtol=1e-5)
    assert all(np.array_equal(a, b) for a, b in zip(weights, model.get_weights(), strict=True))
    assert all(np.array_equal(a, keras.ops.convert_to_numpy(b))
               for a, b in zip(state, model.optimizer.variables, strict=True))
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(0.01)
    finite = np.where(np.isfinite(result.smoothed), result.smoothed, np.inf)
    assert result.suggested_rate == pytest.approx(result.rates[np.argmin(finite)] / 10)


def test_range_test_runs_all_steps_when_the_loss_never_blows_up():
    model, data = _tiny_regression()
    result = lr.find_learning_rate(model, data, min_rate=1e-6, max_rate=1e-4, steps=12)
    assert not result.diverged and len(result.losses) == 12   # 3 passes over 4 batches


def test_range_test_refuses_an_optimizer_built_on_a_schedule():
    model, data = _tiny_regression()
    model.compile(optimizer=keras.optimizers.SGD(schedules.ExponentialDecay(0.1, 10, 0.5)),
                  loss="mse")
    with pytest.raises(ValueError, match="ExponentialDecay.*plain float learning rate"):
        lr.find_learning_rate(model, data)
    callback = lr.LearningRateRangeTest(steps=5)
    with pytest.raises(ValueError, match="takes its learning rate from a schedule"):
        model.fit(data, epochs=1, shuffle=False, verbose=0, callbacks=[callback])


def test_range_test_checks_its_arguments():
    with pytest.raises(ValueError, match="max_rate"):
        lr.LearningRateRangeTest(min_rate=1.0, max_rate=0.1)
    model, data = _tiny_regression()
    with pytest.raises(ValueError, match="dataset"):
        lr.find_learning_rate(model, np.zeros((4, 4)))
    with pytest.raises(ValueError, match="compile"):
        lr.find_learning_rate(keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)]), data)


def test_suggest_learning_rate_ignores_diverged_losses():
    rates = [1e-4, 1e-3, 1e-2, 1e-1, 1.0]
    assert lr.suggest_learning_rate(rates, [2.5, 2.0, 1.2, math.nan, math.inf]) == pytest.approx(
        1e-3)
    with pytest.raises(ValueError, match="NaN"):
        lr.suggest_learning_rate([1e-3], [math.nan])
    with pytest.raises(ValueError, match="same non-zero length"):
        lr.suggest_learning_rate([1e-3, 1e-2], [1.0])


def test_plot_range_test_marks_the_suggested_rate():
    model, data = _tiny_regression()
    result = lr.find_learning_rate(model, data, min_rate=1e-4, max_rate=100.0, steps=40)
    fig = lr.plot_range_test(result)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert any(f"{result.suggested_rate:.2g}" in t.get_text() for t in ax.get_legend().texts)


# --------------------------------------------------------------------------- batch size


def test_updates_per_epoch_for_full_batch_mini_batch_and_stochastic():
    assert [lr.updates_per_epoch(480, b) for b in (480, 1000, 32, 100, 1)] == [1, 1, 15, 5, 480]
    with pytest.raises(ValueError, match="batch_size"):
        lr.updates_per_epoch(480, 0)


def test_loss_noise_grows_with_the_noise_of_the_curve():
    rng = np.random.default_rng(0)
    trend = np.linspace(2.5, 1.0, 200)
    small, large = (lr.measure_loss_noise(trend + s * rng.normal(size=200)) for s in (0.01, 0.3))
    assert small < 0.05 < 0.3 < large
    with pytest.raises(ValueError, match="finite"):
        lr.measure_loss_noise([1.0, math.nan, 2.0])


# --------------------------------------------------------------------------- runs over seeds


def _over_seeds(finals):
    return {seed: {"loss": [2.5, value], "val_loss": [2.5, value + 0.5]}
            for seed, value in zip((0, 1, 2), finals, strict=True)}


def test_describe_over_seeds_gives_mean_spread_and_the_paired_verdict():
    runs = {"base": _over_seeds([1.0, 1.2, 1.1]), "lower": _over_seeds([0.5, 0.6, 0.55]),
            "same": _over_seeds([1.1, 1.1, 1.1])}
    lines = training.describe_over_seeds(runs, baseline="base").splitlines()
    assert lines[0] == ("last epoch, mean ± spread over seeds [0, 1, 2]: training loss | "
                        "validation loss")
    assert lines[1] == "  base   1.100 ± 0.100 | 1.600 ± 0.100"
    assert lines[4] == ("lower - base, seed by seed: training loss -0.550 ± 0.050 better | "
                        "validation loss -0.550 ± 0.050 better")
    assert lines[5].endswith("within noise | validation loss +0.000 ± 0.100 within noise")


def test_describe_over_seeds_checks_its_arguments():
    runs = {"a": _over_seeds([1.0, 1.1, 1.2]), "b": _over_seeds([1.0, 1.1, 1.2])}
    with pytest.raises(ValueError, match="baseline: expected one of 'a', 'b', got 'c'"):
        training.describe_over_seeds(runs, baseline="c")
    with pytest.raises(ValueError, match="at least two set-ups"):
        training.describe_over_seeds({"a": runs["a"]}, baseline="a")
    with pytest.raises(ValueError, match="seeds"):
        training.describe_over_seeds({"a": runs["a"], "b": {0: runs["b"][0], 1: runs["b"][1]}},
                               baseline="a")


# --------------------------------------------------------------------------- claims (CNN)


@pytest.fixture(scope="module")
def fingers_data():
    return fingers.load_fingers(profiles.get_profile("smoke"))


def _model(rate):
    """The lesson's CNN: small fingers CNN, SGD with momentum 0.9."""
    set_seed(SEED)
    model = models.build_fingers_cnn(profiles.get_profile("smoke").input_shape, 12, width=8,
                                     depth=2, seed=SEED)
    model.compile(optimizer=keras.optimizers.SGD(rate, momentum=0.9),
                  loss="sparse_categorical_crossentropy")
    return model


def _train(data, rate, *, callbacks=()):
    """The lesson's run: CLAIM_EPOCHS epochs of the smoke profile's data; (history, data)."""
    smoke = profiles.get_profile("smoke")
    train = datasets.make_dataset(data.x_train, data.y_train, batch_size=smoke.batch_size,
                                  training=True, seed=SEED)
    val = datasets.make_dataset(data.x_val, data.y_val, batch_size=smoke.batch_size,
                                training=False)
    history = _model(rate).fit(train, validation_data=val, epochs=CLAIM_EPOCHS, shuffle=False,
                               verbose=0, callbacks=list(callbacks))
    return history.history, train


def test_the_untrained_cnn_starts_at_the_loss_ln_12(fingers_data):
    smoke = profiles.get_profile("smoke")
    train = datasets.make_dataset(fingers_data.x_train, fingers_data.y_train,
                                  batch_size=smoke.batch_size, training=False)
    assert _model(GOOD).evaluate(train, verbose=0) == pytest.approx(INITIAL, abs=0.01)


def test_claim_a_too_high_rate_diverges_or_ends_above_the_initial_loss(fingers_data):
    history, _ = _train(fingers_data, TOO_HIGH)
    final = history["loss"][-1]
    assert not math.isfinite(final) or final > INITIAL, history["loss"]
    assert lr.diagnose_loss_curve([INITIAL, *history["loss"]]) == lr.TOO_HIGH


def test_claim_a_too_low_rate_stays_within_ten_percent_of_the_initial_loss(fingers_data):
    history, _ = _train(fingers_data, TOO_LOW)
    assert abs(history["loss"][-1] - INITIAL) <= 0.1 * INITIAL, history["loss"]
    assert lr.diagnose_loss_curve([INITIAL, *history["loss"]]) == lr.TOO_LOW


def test_claim_a_good_rate_falls_below_half_the_initial_loss(fingers_data):
    history, _ = _train(fingers_data, GOOD)
    assert history["loss"][-1] < 0.5 * INITIAL, history["loss"]
    assert lr.diagnose_loss_curve([INITIAL, *history["loss"]]) == lr.GOOD


def test_claim_step_decay_ends_with_a_lower_training_loss_than_the_constant_rate(fingers_data):
    # The lesson's claim is on the training loss (its validation loss is within noise over
    # seeds, see test_lesson01.py); here one fixed seed on the smoke data.
    step = lr.make_step_decay(HIGH_SIDE, factor=0.5, every=STEP_EVERY)
    constant, _ = _train(fingers_data, HIGH_SIDE)
    decayed, _ = _train(fingers_data, HIGH_SIDE,
                        callbacks=[keras.callbacks.LearningRateScheduler(step)])
    assert decayed["learning_rate"][-1] == pytest.approx(
        HIGH_SIDE / 2 ** ((CLAIM_EPOCHS - 1) // STEP_EVERY))
    assert decayed["loss"][-1] < constant["loss"][-1], (decayed, constant)


def test_claim_the_range_test_suggests_a_rate_in_the_good_band(fingers_data):
    smoke = profiles.get_profile("smoke")
    train = datasets.make_dataset(fingers_data.x_train, fingers_data.y_train,
                                  batch_size=smoke.batch_size, training=True, seed=SEED)
    result = lr.find_learning_rate(_model(GOOD), train, min_rate=1e-5, max_rate=10.0, steps=60)
    assert result.diverged
    assert TOO_LOW < result.suggested_rate < TOO_HIGH
    history, _ = _train(fingers_data, result.suggested_rate)
    assert history["loss"][-1] < 0.5 * INITIAL, (result.suggested_rate, history["loss"])
