"""course_utils.debugging: each check passes on a healthy model and flags its planted bug.

The claims of lesson 05 (issue 8), with fixed seeds at smoke size:

- each check (gradient check, initial loss, tiny-subset overfit, update ratios, dead units)
  passes on a healthy model and flags its planted bug, one test per check and bug;
- the numerical gradient's relative error against the analytic one is below 1e-7 in
  float64 and visibly worse in float32 or with a poor step h;
- the custom layer is an ordinary Keras layer: a model that holds it saves and loads,
  planted bugs included.
"""

from __future__ import annotations

import itertools
import math
import re
import subprocess
import sys

import numpy as np
import pytest

from course_utils import datasets, debugging, fingers, models
from course_utils.runtime.tf_setup import import_keras, import_tensorflow

keras = import_keras()
tf = import_tensorflow()
SIZE = 32  # the smoke profile's image size
SHAPE = (SIZE, SIZE, 1)


@pytest.fixture(scope="module")
def data():
    x, y = fingers.make_fingers(256, image_size=SIZE, seed=0)
    return datasets.to_model_input(x), y


def _cnn(seed=0):
    return models.build_fingers_cnn(SHAPE, 12, seed=seed)


def _small_cnn(seed=0):  # for the runs that must fail: 100 steps of a smaller network
    return models.build_fingers_cnn(SHAPE, 12, depth=2, width=8, seed=seed)


def _dense(seed=0):
    return keras.Sequential([keras.Input(SHAPE), models.build_dense_head(12, units=128, seed=seed)],
                            name="dense_classifier")


def _swish_model(planted_bug=False, l2=0.0, penalty_bug=False):
    return keras.Sequential([
        keras.Input((16,)),
        debugging.SwishDense(8, planted_bug=planted_bug, l2=l2, penalty_bug=penalty_bug, seed=0,
                             name="swish"),
        keras.layers.Dense(3, activation="softmax", name="out",
                           kernel_initializer=keras.initializers.GlorotNormal(seed=1)),
    ])


def _swish_data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(4, 16)), np.array([0, 1, 2, 1])


# --------------------------------------------------------------------------- pure NumPy


def test_import_does_not_load_tensorflow():
    probe = ("import sys, course_utils.debugging\n"
             "print(','.join(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_every_public_name_is_there_and_the_classes_are_plain_keras_subclasses():
    missing = [name for name in debugging.__all__ if not hasattr(debugging, name)]
    assert not missing, f"course_utils.debugging no longer has {missing}"
    assert issubclass(debugging.SwishDense, keras.layers.Layer)
    assert issubclass(debugging.UpdateRatioMonitor, keras.callbacks.Callback)


def test_numerical_gradient_matches_closed_forms_and_leaves_x_unchanged():
    x = np.random.default_rng(1).normal(size=(3, 4))
    before = x.copy()
    grad = debugging.numerical_gradient(lambda v: float(np.sum(np.sin(v) * v ** 2)), x)
    assert np.array_equal(x, before)
    assert debugging.relative_error(grad, np.cos(x) * x ** 2 + 2 * x * np.sin(x)) < 1e-7
    only = debugging.numerical_gradient(lambda v: float(np.sum(v ** 2)), x, indices=[(0, 1)])
    assert np.count_nonzero(only) == 1 and np.isclose(only[0, 1], 2 * x[0, 1])


def test_numerical_gradient_rejects_integer_arrays_and_bad_steps():
    with pytest.raises(ValueError, match="float array"):
        debugging.numerical_gradient(np.sum, np.arange(3))
    with pytest.raises(ValueError, match="h: expected a finite number > 0, got 0"):
        debugging.numerical_gradient(np.sum, np.ones(3), h=0)


def test_relative_error_is_relative_and_safe_at_zero():
    assert debugging.relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert debugging.relative_error(1e-12, 0.0) <= 1e-4  # noise at zero does not blow up
    # The same absolute difference means little for a large gradient, a lot for a small one.
    assert debugging.relative_error(10.0, 10.0 + 1e-4) < 1e-5
    assert debugging.relative_error(1e-5, 1e-5 + 1e-4) > 0.5
    assert math.isclose(debugging.relative_error([1.0, 2.0], [1.0, 3.0]), 0.2)
    with pytest.raises(ValueError, match=r"numerical: expected the shape of analytic \(2,\), got \(3,\)"):
        debugging.relative_error(np.ones(2), np.ones(3))


def test_claim_float64_error_is_below_1e_7_and_float32_or_a_poor_step_is_visibly_worse():
    x = np.random.default_rng(2).normal(size=8)

    def f(v):
        return np.sum(np.tanh(v) * v ** 2)

    def grad(v):
        return (1 - np.tanh(v) ** 2) * v ** 2 + 2 * v * np.tanh(v)

    good64, poor_large, poor_small = debugging.gradient_error_vs_step(f, grad, x,
                                                                      [1e-5, 1e-1, 1e-13])
    (good32,) = debugging.gradient_error_vs_step(f, grad, x, [1e-5], dtype="float32")
    (best32,) = debugging.gradient_error_vs_step(f, grad, x, [1e-2], dtype="float32")
    print(f"\nfloat64 h=1e-5: {good64:.1e}; h=1e-1: {poor_large:.1e}; h=1e-13: {poor_small:.1e}; "
          f"float32 h=1e-5: {good32:.1e}, h=1e-2: {best32:.1e}")
    assert good64 < 1e-7
    assert poor_large > 1e3 * good64 and poor_small > 1e3 * good64
    assert good32 > 1e3 * good64 and best32 > 1e3 * good64


def test_expected_initial_loss_is_ln_c():
    assert math.isclose(debugging.expected_initial_loss(12), math.log(12))
    assert math.isclose(debugging.expected_initial_loss(2), math.log(2))
    for bad in (1, 0, 2.5, True):
        with pytest.raises(ValueError, match="num_classes"):
            debugging.expected_initial_loss(bad)


def test_dead_and_saturated_units_are_found_per_unit_and_channel():
    dense = np.array([[0.0, 0.5, 0.0], [0.0, 0.0, 0.0]])
    assert debugging.find_dead_units(dense).tolist() == [True, False, True]
    maps = np.zeros((2, 4, 4, 3))
    maps[1, 3, 3, 1] = 0.1  # one positive value at one position keeps a channel alive
    assert debugging.find_dead_units(maps).tolist() == [True, False, True]
    sig = np.array([[0.999, 0.5, 0.001], [0.995, 0.6, 0.002]])
    assert debugging.find_saturated_units(sig).tolist() == [True, False, True]
    tanh = np.array([[-0.999, 0.2], [0.998, -0.3]])
    assert debugging.find_saturated_units(tanh, low=-1.0).tolist() == [True, False]
    with pytest.raises(ValueError, match="batch"):
        debugging.find_dead_units(np.ones(3))


# --------------------------------------------------------------------------- gradient check


def test_gradient_check_passes_on_the_correct_custom_layer_below_1e_7_in_float64():
    x, y = _swish_data()
    result = debugging.check_gradients(_swish_model(), x, y, num_params=30)
    print(f"\ncustom layer, float64: {result.measured}")
    assert result.passed and result.details["errors"].max() < 1e-7


def test_gradient_check_catches_the_planted_bug_in_the_custom_layer():
    x, y = _swish_data()
    result = debugging.check_gradients(_swish_model(planted_bug=True), x, y, num_params=30)
    assert not result.passed
    assert result.details["errors"].max() > 1e-2
    assert "swish" in result.message  # names a parameter of the faulty layer


def test_gradient_check_in_float32_or_with_a_poor_step_is_visibly_worse():
    x, y = _swish_data()
    model = _swish_model()
    good = debugging.check_gradients(model, x, y).details["errors"].max()
    single = debugging.check_gradients(model, x, y, dtype="float32").details["errors"].max()
    coarse = debugging.check_gradients(model, x, y, h=1.0).details["errors"].max()
    print(f"\ncustom layer: float64 {good:.1e}, float32 {single:.1e}, h=1 {coarse:.1e}")
    assert single > 1e3 * good and coarse > 1e3 * good


def test_gradient_check_counts_the_l2_penalty_and_needs_dropout_off():
    x, y = _swish_data()
    regularised = _swish_model(l2=0.1)
    on = debugging.check_gradients(regularised, x, y, regularization=True)
    off = debugging.check_gradients(regularised, x, y, regularization=False)
    assert on.passed and off.passed
    # the penalty's own gradient, 2 * l2 * w, is in the checked gradient only when it is on
    kernel = regularised.get_layer("swish").kernel.numpy()
    penalty = {name: 2 * 0.1 * kernel[index] for name, index in _kernel_entries(on)}
    assert penalty, "the check should sample some kernel entries"
    for name, grad in penalty.items():
        i = on.details["parameters"].index(name)
        assert on.details["analytic"][i] - off.details["analytic"][i] == pytest.approx(
            grad, rel=1e-6, abs=1e-12), name
    noisy = keras.Sequential([keras.Input((16,)), keras.layers.Dense(8, activation="tanh"),
                              keras.layers.Dropout(0.5, seed=0),
                              keras.layers.Dense(3, activation="softmax")])
    assert debugging.check_gradients(noisy, x, y, training=False).passed
    assert not debugging.check_gradients(noisy, x, y, training=True).passed


def _kernel_entries(result):
    """(parameter name, index into the swish kernel) of the sampled kernel entries."""
    for name in result.details["parameters"]:
        m = re.fullmatch(r"swish/kernel\[(\d+), (\d+)\]", name)
        if m:
            yield name, (int(m.group(1)), int(m.group(2)))


def test_a_bug_in_the_penalty_hides_with_regularisation_off_and_is_caught_with_it_on():
    x, y = _swish_data()
    buggy = _swish_model(l2=0.1, penalty_bug=True)
    assert debugging.check_gradients(buggy, x, y, regularization=False).passed
    caught = debugging.check_gradients(buggy, x, y, regularization=True)
    assert not caught.passed, caught
    assert caught.details["errors"].max() > 1e-2, caught.measured
    with pytest.raises(ValueError, match="penalty_bug"):
        debugging.SwishDense(3, penalty_bug=True)


def test_a_model_with_the_custom_layer_saves_and_loads_with_its_planted_bugs(tmp_path):
    x, y = _swish_data()
    model = _swish_model(planted_bug=True, l2=0.1, penalty_bug=True)
    model.save(tmp_path / "swish.keras")
    loaded = keras.saving.load_model(tmp_path / "swish.keras")  # no custom_objects needed
    layer = loaded.get_layer("swish")
    assert type(layer) is debugging.SwishDense
    assert layer.get_config() == model.get_layer("swish").get_config()
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-6)
    assert float(keras.ops.sum(loaded.losses)) == pytest.approx(float(keras.ops.sum(model.losses)))
    caught = debugging.check_gradients(loaded, x, y, num_params=30)
    assert not caught.passed, "the loaded layer lost its planted bug in the derivative"


def test_gradient_check_does_not_change_the_model():
    x, y = _swish_data()
    model = _swish_model()
    before = [w.copy() for w in model.get_weights()]
    debugging.check_gradients(model, x, y, warmup_steps=3)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))


# --------------------------------------------------------------------------- initial loss


def test_initial_loss_matches_ln_12_over_several_seeds(data):
    x, y = data
    result = debugging.check_initial_loss(_cnn, x, y, seeds=(0, 1, 2))
    assert result.passed, result.message
    assert len(result.details["losses"]) == 3
    assert np.all(np.abs(result.details["losses"] - math.log(12)) < 0.05)


def test_initial_loss_flags_a_huge_last_layer_scale(data):
    x, y = data
    model = _cnn()
    kernel = model.get_layer("predictions").kernel
    kernel.assign(kernel * 1000.0)  # std 10 instead of 0.01
    result = debugging.check_initial_loss(model, x, y)
    assert not result.passed
    assert result.details["losses"][0] > math.log(12) + 1
    assert "last layer" in result.message


def test_initial_loss_is_the_inference_mode_cross_entropy_and_names_data_that_do_not_match():
    rng = np.random.default_rng(8)
    x = rng.random((300, 6)).astype("float32")
    y = rng.integers(0, 4, size=300)
    model = keras.Sequential([
        keras.Input((6,)),
        keras.layers.Dense(8, activation="relu",
                           kernel_initializer=keras.initializers.GlorotUniform(seed=1)),
        keras.layers.Dropout(0.9, seed=2),  # would change every loss in training mode
        keras.layers.Dense(4, activation="softmax",
                           kernel_initializer=keras.initializers.GlorotUniform(seed=3)),
    ])
    scores = model.predict(x, verbose=0).astype(np.float64)
    expected = float(-np.mean(np.log(scores[np.arange(300), y])))
    result = debugging.check_initial_loss(model, x, y)
    assert abs(result.details["losses"][0] - expected) < 1e-6
    with pytest.raises(ValueError, match=r"y: expected 300 labels \(one per sample\), got 299"):
        debugging.check_initial_loss(model, x, y[:-1])
    with pytest.raises(ValueError, match=r"x: expected at least one sample, got none \(shape \(0, 6\)\)"):
        debugging.check_initial_loss(model, x[:0], y[:0])


def test_every_check_names_an_x_without_samples():
    # the checks read their samples through one helper, so none of them takes an empty x
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3, activation="softmax")])
    x, y = np.zeros((0, 6), "float32"), np.zeros(0, int)
    with pytest.raises(ValueError, match=r"x: expected at least one sample, got none"):
        debugging.record_step_losses(model, x, y, optimizer=keras.optimizers.SGD(0.1),
                                     batch_size=4, steps=2)
    with pytest.raises(ValueError, match=r"x: expected at least one sample, got none"):
        debugging.check_dead_units(model, x)
    with pytest.raises(ValueError, match=r"x: expected at least one sample, got none"):
        debugging.check_input_dependence(model, x, y)


# --------------------------------------------------------------------------- tiny subset


def test_tiny_subset_is_fitted_to_near_zero_loss(data):
    x, y = data
    result = debugging.check_tiny_subset_overfit(_cnn(), x, y, samples=10)
    assert result.passed, result.message
    assert result.details["loss"][-1] <= 0.05 and result.details["accuracy"][-1] == 1.0


def test_tiny_subset_fails_when_a_pipeline_shuffles_labels_apart_from_images(data):
    x, y = data

    def buggy_pipeline(images, labels):  # images and labels shuffled separately, every epoch
        images = tf.data.Dataset.from_tensor_slices(images).shuffle(len(images))
        labels = tf.data.Dataset.from_tensor_slices(labels).shuffle(len(labels))
        return tf.data.Dataset.zip((images, labels)).batch(32)

    def sound_pipeline(images, labels):
        return tf.data.Dataset.from_tensor_slices((images, labels)).shuffle(len(images)).batch(32)

    assert debugging.check_tiny_subset_overfit(_small_cnn(), x, y, pipeline=sound_pipeline).passed
    result = debugging.check_tiny_subset_overfit(_small_cnn(), x, y, pipeline=buggy_pipeline)
    assert not result.passed and result.details["loss"][-1] > 0.5
    assert "labels belong to their images" in result.message


def test_tiny_subset_reads_a_pipeline_epoch_by_epoch_whatever_its_batches():
    """The check reads a pipeline of known length through one repeated iterator: every
    epoch it must still see each sample once, a new order when the pipeline reshuffles,
    and a pipeline of unknown length must be read whole every epoch."""
    from course_utils.debugging.checks import _epochs

    samples = tf.data.Dataset.range(10)
    shuffled = samples.shuffle(10, seed=3).batch(4)  # 3 batches: 4, 4 and 2 samples
    epochs = [np.concatenate([b.numpy() for b in batches])
              for batches in itertools.islice(_epochs(shuffled), 4)]
    assert all(sorted(e.tolist()) == list(range(10)) for e in epochs), epochs
    assert len({tuple(e) for e in epochs}) > 1, "the pipeline reshuffles every epoch"
    unknown = samples.filter(lambda v: v % 2 == 0).batch(4)  # cardinality unknown
    read = [[b.numpy().tolist() for b in batches] for batches in itertools.islice(_epochs(unknown), 2)]
    assert read == [[[0, 2, 4, 6], [8]]] * 2, read


def test_tiny_subset_fails_when_the_network_is_frozen_but_its_head(data):
    x, y = data
    model = _small_cnn()
    for layer in model.layers[:-1]:
        layer.trainable = False  # a forgotten `trainable = False` on an untrained base
    result = debugging.check_tiny_subset_overfit(model, x, y)
    assert not result.passed and result.details["loss"][-1] > 0.5


def test_tiny_subset_fails_with_a_wrong_loss(data):
    x, y = data
    ops = keras.ops

    def wrong_cross_entropy(y_true, y_pred):  # take() instead of take_along_axis()
        picked = ops.take(y_pred, ops.cast(ops.reshape(y_true, (-1,)), "int32"), axis=1)
        return -ops.mean(ops.log(picked + 1e-7))

    result = debugging.check_tiny_subset_overfit(_small_cnn(), x, y, loss=wrong_cross_entropy)
    assert not result.passed and result.details["loss"][-1] > 0.5


# --------------------------------------------------------------------------- update ratios


def test_update_ratio_monitor_measures_one_sgd_step_exactly():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 5)).astype("float32"), rng.integers(0, 3, size=8)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4, activation="tanh",
                              name="hidden", bias_initializer="ones"),
                              keras.layers.Dense(3, activation="softmax", name="out")])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    loss_fn = keras.losses.SparseCategoricalCrossentropy()
    with tf.GradientTape() as tape:
        loss = loss_fn(y, model(x))
    layers = [model.get_layer("hidden"), model.get_layer("out")]
    grads = tape.gradient(loss, [layer.trainable_weights for layer in layers])
    expected = {
        layer.name: 0.1 * np.sqrt(sum(np.sum(np.square(g)) for g in gs))
        / np.sqrt(sum(np.sum(np.square(w.numpy())) for w in layer.trainable_weights))
        for layer, gs in zip(layers, grads, strict=True)
    }
    monitor = debugging.UpdateRatioMonitor()
    model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0, callbacks=[monitor])
    assert sorted(monitor.ratios) == ["hidden", "out"]
    assert all(len(v) == 2 for v in monitor.ratios.values())  # one value per epoch
    for name, value in expected.items():
        assert math.isclose(monitor.ratios[name][0], value, rel_tol=1e-4), name


def test_update_ratios_are_healthy_near_1e_3_with_adam_at_1e_3(data):
    x, y = data
    result = debugging.check_update_ratios(_cnn(), x, y,
                                           optimizer=keras.optimizers.Adam(1e-3))
    median = np.median(list(result.details["ratios"].values()))
    print(f"\nAdam 1e-3: median update ratio {median:.1e}")
    assert result.passed and 3e-4 < median < 3e-2


@pytest.mark.parametrize("learning_rate, verdict", [(1.0, "far too high"), (1e-7, "far too low")])
def test_update_ratios_flag_a_learning_rate_far_too_high_or_low(data, learning_rate, verdict):
    x, y = data
    result = debugging.check_update_ratios(_cnn(), x, y,
                                           optimizer=keras.optimizers.Adam(learning_rate))
    assert not result.passed
    assert verdict in result.message


# --------------------------------------------------------------------------- dead units


def test_dead_units_pass_at_initialisation(data):
    x, _ = data
    result = debugging.check_dead_units(_cnn(), x)
    assert result.passed, result.message
    assert max(result.details["fractions"].values()) <= 0.5


def test_dead_units_flag_a_layer_killed_by_its_bias(data):
    x, _ = data
    model = _cnn()
    bias = model.get_layer("fc1").bias
    bias.assign(bias - 100.0)  # every fc1 pre-activation negative: the ReLUs never fire
    result = debugging.check_dead_units(model, x)
    assert not result.passed
    assert result.details["fractions"]["fc1"] == 1.0 and "'fc1'" in result.message
    assert "dead ReLUs" in result.message and "scaled" not in result.message


def test_saturated_sigmoids_are_flagged():
    x = np.random.default_rng(0).normal(size=(64, 16)).astype("float32")
    calm = debugging.build_plain_mlp(16, 12, depth=3, activation="sigmoid", init_scale=1.0)
    wild = debugging.build_plain_mlp(16, 12, depth=3, activation="sigmoid", init_scale=500.0)
    assert debugging.check_dead_units(calm, x).passed
    result = debugging.check_dead_units(wild, x)
    assert not result.passed and "saturated" in result.message


def test_unscaled_pixels_saturate_a_tanh_network_and_the_hint_says_to_scale_them():
    images, _ = fingers.make_fingers(64, image_size=16, seed=0)
    pixels = images.reshape(len(images), -1).astype("float32")  # 0..255, never scaled
    net = debugging.build_plain_mlp(pixels.shape[1], 12, depth=3, activation="tanh", seed=0)
    assert debugging.check_dead_units(net, pixels / 255.0).passed
    result = debugging.check_dead_units(net, pixels)
    assert not result.passed and result.details["fractions"]["dense_1"] > 0.5, result.details
    assert "saturated" in result.message and "inputs are scaled" in result.message
    assert "dead ReLUs" not in result.message


# --------------------------------------------------------------------------- monitoring


def test_gradients_vanish_towards_the_input_in_a_deep_sigmoid_network():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 16)).astype("float32"), rng.integers(0, 12, size=32)
    norms = debugging.gradient_norms(
        debugging.build_plain_mlp(16, 12, depth=10, activation="sigmoid"), x, y)
    values = list(norms.values())
    assert list(norms)[0] == "dense_1" and values[0] < 1e-3 * values[-2]
    exploding = debugging.gradient_norms(
        debugging.build_plain_mlp(16, 12, depth=10, init_scale=3.0), x, y)
    healthy = debugging.gradient_norms(
        debugging.build_plain_mlp(16, 12, depth=10, init_scale=math.sqrt(2)), x, y)
    assert exploding["dense_1"] > 100 * healthy["dense_1"]


def test_weight_roughness_tells_noise_from_smooth_images_and_names_bad_input():
    rng = np.random.default_rng(1)
    noise = rng.normal(size=(28, 28, 10))
    assert 0.9 < debugging.weight_roughness(noise) < 1.1
    blurred = sum(np.roll(np.roll(noise, i, axis=0), j, axis=1)
                  for i in range(-2, 3) for j in range(-2, 3))
    assert debugging.weight_roughness(blurred) < 0.3 * debugging.weight_roughness(noise)
    assert debugging.weight_roughness(3 * noise + 7) == pytest.approx(
        debugging.weight_roughness(noise)), "scale and offset do not matter"
    cnn = models.build_fingers_cnn((16, 16, 1), 12, depth=1, width=4, seed=0)
    kernel = next(layer for layer in cnn.layers if type(layer).__name__ == "Conv2D").kernel
    assert debugging.weight_roughness(cnn) == debugging.weight_roughness(kernel.numpy())
    with pytest.raises(ValueError, match="at least 2x2"):
        debugging.weight_roughness(np.ones((1, 5, 3)))
    with pytest.raises(ValueError, match="constant"):
        debugging.weight_roughness(np.ones((4, 4, 2)))


def test_figures_are_figures_with_log_axes():
    fig = debugging.plot_error_vs_step([1e-1, 1e-5], {"float64": [1e-3, 1e-10]})
    assert fig.axes[0].get_xscale() == "log"
    fig = debugging.plot_update_ratios({"a": {"conv": [1e-3], "fc": [2e-3]}})
    assert fig.axes[0].get_yscale() == "log"
    assert len(debugging.plot_filters(_cnn()).axes) == 16
    with pytest.raises(ValueError, match="Conv2D"):
        debugging.plot_filters(_dense())


def test_update_ratio_legend_sits_beside_the_lines_not_on_them():
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = debugging.plot_update_ratios({"Adam at 1e-3": {"conv": [1e-3], "fc": [2e-3]},
                                        "Adam at 1": {"conv": [1.0], "fc": [25.0]}})
    canvas = FigureCanvasAgg(fig)
    canvas.draw()  # lays the figure out
    renderer = canvas.get_renderer()
    (legend,) = fig.legends
    assert legend.get_window_extent(renderer).x0 >= fig.axes[0].get_window_extent(renderer).x1
    assert [t.get_text() for t in legend.get_texts()][:2] == ["Adam at 1e-3", "Adam at 1"]


def test_error_vs_step_marks_both_thresholds_of_the_text():
    fig = debugging.plot_error_vs_step([1e-1, 1e-5], {"float64": [1e-3, 1e-10]})
    levels = sorted(line.get_ydata()[0] for line in fig.axes[0].lines if line.get_linestyle() == ":")
    assert levels == [1e-7, 1e-4], "the 'right in float64' line and check_gradients' tolerance"


def test_step_losses_get_one_panel_each_on_one_shared_log_axis():
    from course_utils.debugging.figures import plot_step_losses

    runs = {"healthy": [2.5, 2.0, 1.3], "spike": [2.5, 1700.0, 2.4, 2.5],
            "diverged": [2.5, 40.0, float("nan"), float("inf")]}
    fig = plot_step_losses(runs)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ["healthy", "spike", "diverged (2 not finite)"]
    assert all(ax.get_yscale() == "log" and ax.get_xlabel() == "training step" for ax in panels)
    assert panels[0].get_ylim() == panels[1].get_ylim() == panels[2].get_ylim(), "shared y-axis"
    # steps are counted from 1, and nothing is drawn where the loss was not finite
    x, y = panels[2].lines[0].get_data()
    assert list(x) == [1, 2, 3, 4] and np.isnan(y[2:]).all()
    assert plot_step_losses(runs, log=False).axes[0].get_yscale() == "linear"
    with pytest.raises(ValueError, match="empty mapping"):
        plot_step_losses({})
    with pytest.raises(ValueError, match=r"runs\['flat'\]: expected a list of losses"):
        plot_step_losses({"flat": []})


# --------------------------------------------------------------------------- preflight


def test_preflight_passes_on_the_healthy_fingers_cnn_and_leaves_it_untouched(data):
    x, y = data
    model = _cnn()
    before = [w.copy() for w in model.get_weights()]
    report = debugging.preflight(_cnn, (x, y))
    print("\n" + report.format())
    assert report.passed, report.format()
    assert [c.name for c in report.checks] == list(debugging.CHECK_NAMES)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))
    text = report.format()
    assert "5 of 5 checks passed" in text and text.count("pass") >= 5


def test_preflight_passes_on_a_small_dense_model_given_a_dataset(data):
    x, y = data
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
    report = debugging.preflight(_dense(), dataset)
    assert report.passed, report.format()


def test_preflight_reports_the_planted_bugs_and_a_crashing_loss(data):
    x, y = data
    model = _cnn()
    kernel = model.get_layer("predictions").kernel
    kernel.assign(kernel * 1000.0)
    report = debugging.preflight(model, (x, y), optimizer=keras.optimizers.Adam(1.0))
    failed = {c.name for c in report.failed}
    assert {"initial loss", "update ratios"} <= failed
    assert "FAIL" in report.format() and "- initial loss:" in report.format()
    crashing = debugging.preflight(_dense(), (x, y), loss="categorical_crossentropy")
    assert crashing["tiny-subset overfit"].measured.startswith("error:")
    with pytest.raises(KeyError, match="no check named"):
        crashing["speed"]


def _head(model):
    return model.layers[0]  # the nested dense head of _dense()


def _with_bug(bug):
    """(model, preflight keyword arguments) with one planted bug."""
    ops = keras.ops
    if bug == "custom layer with a wrong derivative":
        model = keras.Sequential([keras.Input(SHAPE), keras.layers.Flatten(),
                                  debugging.SwishDense(32, planted_bug=True, seed=0),
                                  keras.layers.Dense(12, activation="softmax")])
        return model, {}
    model = _dense()
    if bug == "huge last-layer scale":
        kernel = _head(model).get_layer("head_predictions").kernel
        kernel.assign(kernel * 1000.0)
        return model, {}
    if bug == "labels shuffled apart from images":
        def pipeline(images, labels):
            images = tf.data.Dataset.from_tensor_slices(images).shuffle(len(images))
            labels = tf.data.Dataset.from_tensor_slices(labels).shuffle(len(labels))
            return tf.data.Dataset.zip((images, labels)).batch(32)
        return model, {"pipeline": pipeline}
    if bug == "frozen network":
        _head(model).get_layer("head_fc1").trainable = False
        return model, {}
    if bug == "wrong loss":
        def loss(y_true, y_pred):
            picked = ops.take(y_pred, ops.cast(ops.reshape(y_true, (-1,)), "int32"), axis=1)
            return -ops.mean(ops.log(picked + 1e-7))
        return model, {"loss": loss}
    if bug == "learning rate far too high":
        return model, {"optimizer": keras.optimizers.Adam(1.0)}
    if bug == "learning rate far too low":
        return model, {"optimizer": keras.optimizers.Adam(1e-7)}
    if bug == "dead ReLUs":
        bias = _head(model).get_layer("head_fc1").bias
        bias.assign(bias - 100.0)
        return model, {}
    raise AssertionError(bug)


@pytest.mark.parametrize("bug, check", [
    ("custom layer with a wrong derivative", "gradient check"),
    ("huge last-layer scale", "initial loss"),
    ("labels shuffled apart from images", "tiny-subset overfit"),
    ("frozen network", "tiny-subset overfit"),
    ("wrong loss", "tiny-subset overfit"),
    ("learning rate far too high", "update ratios"),
    ("learning rate far too low", "update ratios"),
    ("dead ReLUs", "dead units"),
])
def test_preflight_flags_each_planted_bug_with_the_check_it_concerns(data, bug, check):
    x, y = data
    model, kwargs = _with_bug(bug)
    report = debugging.preflight(model, (x, y), **kwargs)
    assert not report[check].passed, report.format()
    assert f"- {check}: " in report.format()


def test_preflight_and_checks_validate_their_arguments(data):
    x, y = data
    with pytest.raises(ValueError, match="model"):
        debugging.preflight("not a model", (x, y))
    with pytest.raises(ValueError, match="data"):
        debugging.preflight(_dense(), x)
    with pytest.raises(ValueError, match="samples"):
        debugging.check_tiny_subset_overfit(_dense(), x[:5], y[:5], samples=10)
    with pytest.raises(ValueError, match="dtype"):
        debugging.check_gradients(_dense(), x[:2], y[:2], dtype="float16")


# --------------------------------------------------------------------------- the recipe checks


def test_the_tiny_subset_with_regularisation_on_keeps_dropout_and_penalties(data):
    x, y = data
    heavy = models.build_fingers_cnn(SHAPE, 12, depth=2, width=8, dropout=0.5, l2=1e-2, seed=0)
    stripped = debugging.check_tiny_subset_overfit(heavy, x, y, max_steps=60)
    kept = debugging.check_tiny_subset_overfit(heavy, x, y, max_steps=60, regularization=True)
    assert stripped.passed, stripped.message
    assert not kept.passed and kept.details["loss"][-1] > 0.2, kept.message


def test_input_independent_baseline_flags_pixels_divided_as_integers(data):
    x, y = data
    raw, labels = fingers.make_fingers(64, image_size=SIZE, seed=0)
    healthy = debugging.check_input_dependence(_small_cnn(), x, y)
    divided = debugging.check_input_dependence(_small_cnn(), (raw // 255)[..., None], labels)
    assert healthy.passed, healthy.message
    assert abs(healthy.details["baseline"][-1] - math.log(12)) < 0.2, healthy.details["baseline"]
    assert not divided.passed and "learns little from its inputs" in divided.message


def test_the_input_dependence_runs_both_start_from_the_models_own_state(data):
    """The check trains one copy twice, put back to its start in between: its run on
    zeros must be the run a fresh check on zeros makes (same weights, dropout seeds,
    optimizer step and moments), and the model itself must not move."""
    from course_utils.debugging import sanity

    x, y = data
    steps_known = len(sanity._INPUT_STEPS)
    model = models.build_fingers_cnn(SHAPE, 12, depth=2, width=8, dropout=0.5, seed=1)
    before = [w.copy() for w in model.get_weights()]
    real = debugging.check_input_dependence(model, x, y, steps=8, seed=5)
    on_zeros = debugging.check_input_dependence(model, np.zeros_like(x), y, steps=8, seed=5)
    assert real.details["baseline"] == on_zeros.details["loss"]
    assert real.details["loss"] != real.details["baseline"]
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))
    other = models.build_fingers_cnn(SHAPE, 12, depth=2, width=8, dropout=0.5, seed=2)
    debugging.check_input_dependence(other, x, y, steps=8, seed=5)
    assert len(sanity._INPUT_STEPS) <= steps_known + 1, "one shared copy for one network"
    traced = [s.experimental_get_tracing_count() for s in sanity._INPUT_STEPS.values()]
    assert max(traced) == 1, "the checks of one network trace their step once"


def test_update_ratio_checks_of_one_network_share_a_copy_and_measure_as_a_fresh_one(
        data, monkeypatch):
    """Checks of the same network train one compiled copy (traced once), given the
    model's weights and a new optimizer each time: the ratios are a fresh copy's."""
    from course_utils.debugging import _common
    from course_utils.training import reuse_compiled_model

    x, y = data
    model = _small_cnn(seed=2)
    low = debugging.check_update_ratios(model, x, y, optimizer=keras.optimizers.SGD(1e-6))
    high = debugging.check_update_ratios(model, x, y, optimizer=keras.optimizers.SGD(0.5))
    again = debugging.check_update_ratios(model, x, y, optimizer=keras.optimizers.SGD(1e-6))
    assert again.details["ratios"] == low.details["ratios"] != high.details["ratios"]
    monkeypatch.setattr(_common, "_shared_copy", reuse_compiled_model(_common._compile_copy))
    fresh = debugging.check_update_ratios(model, x, y, optimizer=keras.optimizers.SGD(0.5))
    assert fresh.details["ratios"] == high.details["ratios"]
    assert not low.passed and not high.passed


def test_batch_independence_holds_in_inference_mode_and_fails_where_samples_mix(data):
    x, _ = data
    batch = x[:8]
    assert debugging.check_batch_independence(_cnn(), batch).passed
    in_training = debugging.check_batch_independence(_cnn(), batch, training=True)
    assert not in_training.passed and in_training.measured == "7 other samples get gradient"
    mixing = keras.Sequential([keras.Input(SHAPE), keras.layers.Flatten(),
                               keras.layers.Dense(12), keras.layers.Softmax(axis=0)])
    result = debugging.check_batch_independence(mixing, batch, index=-1)
    assert not result.passed and "mixes the samples" in result.message
    blind = keras.Sequential([keras.Input(SHAPE), keras.layers.Lambda(lambda t: 0.0 * t),
                              keras.layers.Flatten(), keras.layers.Dense(3, "softmax")])
    assert "does not depend on any input" in debugging.check_batch_independence(blind, batch).message
    with pytest.raises(ValueError, match="index"):
        debugging.check_batch_independence(_cnn(), batch, index=8)
    with pytest.raises(ValueError, match="at least 2 samples"):
        debugging.check_batch_independence(_cnn(), batch[:1])


def test_a_stronger_penalty_raises_the_loss_unless_the_loss_forgets_model_losses(data):
    x, y = data

    def build(l2):
        return models.build_fingers_cnn(SHAPE, 12, l2=l2, seed=0)

    def data_only(model, xb, yb):
        return keras.losses.SparseCategoricalCrossentropy()(yb, model(xb, training=False))

    healthy = debugging.check_regularization_raises_loss(build, x[:16], y[:16])
    assert healthy.passed and np.all(np.diff(healthy.details["losses"]) > 0), healthy.message
    forgotten = debugging.check_regularization_raises_loss(build, x[:16], y[:16], loss=data_only)
    assert not forgotten.passed and "model.losses" in forgotten.message
    with pytest.raises(ValueError, match="strengths"):
        debugging.check_regularization_raises_loss(build, x[:16], y[:16], strengths=(1e-2, 1e-3))


def test_each_planted_bug_of_a_setup_fails_the_checks_the_lesson_expects(data):
    """What `diagnose` relies on: which checks each kind of set-up fails (one seed)."""
    x, y = data
    expected = {  # bug: the checks that fail (initial loss, dead units, update ratios, tiny)
        "none": (False, False, False, False),  # None: either (a huge last layer may or may
        "initialisation": (True, False, False, None),  # not be fitted in 100 steps)
        "learning rate": (False, False, True, False),
        "dead units": (False, True, True, True),
        "pipeline": (False, False, False, True),
    }
    assert set(expected) == set(debugging.BUGS)
    for bug, fails in expected.items():
        setup = debugging.make_setup(bug, x[:48], y[:48], seed=3)
        before = [w.copy() for w in setup.model.get_weights()]
        failed = (
            not debugging.check_initial_loss(setup.model, setup.x, setup.y).passed,
            not debugging.check_dead_units(setup.model, setup.x).passed,
            not debugging.check_update_ratios(setup.model, setup.x, setup.y).passed,
            not debugging.check_tiny_subset_overfit(setup.model, setup.x, setup.y,
                                                    pipeline=setup.pipeline).passed,
        )
        assert all(f == e for f, e in zip(failed, fails, strict=True) if e is not None), (bug, failed)
        assert all(np.array_equal(a, b) for a, b in zip(before, setup.model.get_weights(),
                                                        strict=True)), bug
    with pytest.raises(ValueError, match="bug"):
        debugging.make_setup("gremlins", x, y)
