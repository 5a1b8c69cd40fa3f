"""The reference fingers CNN, the transfer-learning head and the compile step."""

from __future__ import annotations

import math

import numpy as np
import pytest

from course_utils import labels, models
from course_utils.runtime import profiles
from course_utils.runtime.tf_setup import import_keras

SMOKE = profiles.get_profile("smoke")


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    x = rng.random((24, *SMOKE.input_shape), dtype=np.float32)
    return x, np.arange(len(x)) % labels.NUM_CLASSES


def _conv_params(k: int, c_in: int, c_out: int) -> int:
    return k * k * c_in * c_out + c_out


def test_model_maps_a_batch_of_images_to_class_probabilities(images):
    x, _ = images
    model = models.build_fingers_cnn(SMOKE.input_shape, labels.NUM_CLASSES, seed=0)
    probabilities = model.predict(x, verbose=0)
    assert model.output_shape == (None, labels.NUM_CLASSES)
    assert probabilities.shape == (len(x), labels.NUM_CLASSES)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_input_shape_defaults_to_the_active_profile(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    model = models.build_fingers_cnn(num_classes=12, depth=1, width=4)
    assert model.input_shape == (None, *SMOKE.input_shape)


def test_layer_names_follow_the_block_scheme():
    model = models.build_fingers_cnn(SMOKE.input_shape, 12, depth=3)
    names = [layer.name for layer in model.layers[1:]]  # after the Input
    blocks = [f"block{i}_{part}" for i in (1, 2, 3) for part in ("conv1", "bn1", "pool")]
    assert names == [*blocks, "flatten", "fc1", "fc1_dropout", "predictions"]


def test_every_computing_layer_has_an_activation_and_flatten_comes_once_before_the_dense_layers():
    keras = import_keras()
    model = models.build_fingers_cnn((64, 64, 1), 12, depth=4, batch_norm=False, dropout=0.0)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds.count("Flatten") == 1
    flatten_at = kinds.index("Flatten")
    assert all(kind != "Dense" for kind in kinds[:flatten_at])
    assert all(kind not in ("Conv2D", "MaxPooling2D") for kind in kinds[flatten_at:])
    for layer in model.layers:
        if hasattr(layer, "activation"):
            assert layer.activation.__name__ in ("relu", "softmax"), f"{layer.name} is linear"
    last = model.layers[-1]
    assert isinstance(last, keras.layers.Dense) and last.units == 12
    assert last.activation.__name__ == "softmax"


def test_width_doubles_in_every_block_and_sets_the_parameter_count():
    depth, width, dense, size = 3, 8, 32, 32
    model = models.build_fingers_cnn((size, size, 1), 12, depth=depth, width=width,
                                     batch_norm=False, dense_units=dense)
    filters = [model.get_layer(f"block{i}_conv1").filters for i in range(1, depth + 1)]
    assert filters == [8, 16, 32]
    channels = [1, *filters]
    expected = sum(_conv_params(3, channels[i], channels[i + 1]) for i in range(depth))
    flat = (size // 2**depth) ** 2 * filters[-1]
    expected += flat * dense + dense + dense * 12 + 12
    assert model.count_params() == expected


def test_width_depth_and_dense_units_change_the_parameter_count():
    def counts(**kwargs):
        model = models.build_fingers_cnn((64, 64, 1), 12, **kwargs)
        conv = sum(layer.count_params() for layer in model.layers if "conv" in layer.name)
        return conv, model.count_params()

    assert counts(width=8)[1] < counts(width=16)[1] < counts(width=32)[1]
    assert counts(dense_units=64)[1] < counts(dense_units=128)[1]
    # each block adds filters, but also halves the map that fc1 sees: the dense weights shrink
    (conv2, total2), (conv3, total3), (conv4, total4) = (counts(depth=d) for d in (2, 3, 4))
    assert conv2 < conv3 < conv4
    assert total2 > total3 > total4


def test_l2_adds_one_penalty_per_kernel_to_the_losses(images):
    plain = models.build_fingers_cnn(SMOKE.input_shape, 12, depth=2, l2=0.0, seed=0)
    assert plain.losses == []
    factor = 1e-3
    model = models.build_fingers_cnn(SMOKE.input_shape, 12, depth=2, l2=factor, seed=0)
    model(images[0][:2])
    kernels = [layer.kernel for layer in model.layers if hasattr(layer, "kernel")]
    assert len(model.losses) == len(kernels) == 2 + 2  # two convolutions, fc1, predictions
    expected = sum(factor * float(np.sum(np.square(k.numpy()))) for k in kernels)
    assert float(sum(loss.numpy() for loss in model.losses)) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("l1, l2", [(1e-3, 0.0), (1e-3, 1e-2)])
def test_l1_adds_the_sum_of_absolute_weights_alone_or_beside_l2(images, l1, l2):
    model = models.build_fingers_cnn(SMOKE.input_shape, 12, depth=2, l1=l1, l2=l2, seed=0)
    model(images[0][:2])
    kernels = [layer.kernel.numpy() for layer in model.layers if hasattr(layer, "kernel")]
    assert len(model.losses) == len(kernels), "one penalty per kernel"
    expected = sum(l1 * np.abs(k).sum() + l2 * np.square(k).sum() for k in kernels)
    assert float(sum(loss.numpy() for loss in model.losses)) == pytest.approx(expected, rel=1e-5)


def test_batch_norm_can_be_switched_off():
    with_bn = models.build_fingers_cnn(SMOKE.input_shape, 12, depth=2, batch_norm=True)
    without = models.build_fingers_cnn(SMOKE.input_shape, 12, depth=2, batch_norm=False)
    kinds = [type(layer).__name__ for layer in with_bn.layers]
    assert kinds.count("BatchNormalization") == 2
    assert with_bn.get_layer("block1_bn1").axis in (-1, [3])  # channels last
    assert "BatchNormalization" not in [type(layer).__name__ for layer in without.layers]


def test_dropout_acts_in_training_only_and_zero_disables_it(images):
    x = images[0][:4]
    dropped = models.build_fingers_cnn(SMOKE.input_shape, 12, batch_norm=False, dropout=0.5, seed=1)
    assert dropped.get_layer("fc1_dropout").rate == 0.5
    np.testing.assert_allclose(dropped(x, training=False), dropped(x, training=False))
    assert not np.allclose(dropped(x, training=True), dropped(x, training=False))
    kept = models.build_fingers_cnn(SMOKE.input_shape, 12, batch_norm=False, dropout=0.0, seed=1)
    np.testing.assert_allclose(kept(x, training=True), kept(x, training=False), rtol=1e-6)


def test_the_seed_makes_the_initial_weights_reproducible():
    def weights(seed):
        model = models.build_fingers_cnn(SMOKE.input_shape, 12, seed=seed)
        return [w.numpy() for w in model.weights]

    first, again, other = weights(7), weights(7), weights(8)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_an_untrained_model_scores_like_random_guessing(images):
    """Lesson 05's initialisation check: the loss starts at ln(C)."""
    x, y = images
    for seed in (0, 1):
        model = models.compile_classifier(models.build_fingers_cnn(SMOKE.input_shape, 12, seed=seed))
        loss = model.evaluate(x, y, verbose=0, return_dict=True)["loss"]
        assert loss == pytest.approx(math.log(12), abs=0.05)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"depth": 0}, "depth: expected a whole number >= 1"),
        ({"depth": 2.0}, "depth: expected a whole number"),
        ({"width": 0}, "width: expected a whole number >= 1"),
        ({"dense_units": 0}, "dense_units:"),
        ({"dropout": 1.0}, r"dropout: expected a number >= 0 and < 1, got 1.0"),
        ({"dropout": -0.1}, "dropout:"),
        ({"l2": -1e-4}, "l2: expected a number >= 0"),
        ({"l2": float("nan")}, "l2:"),
        ({"l1": -1e-4}, "l1: expected a number >= 0"),
        ({"input_shape": (32, 32)}, "input_shape: expected 3 positive integers"),
        ({"input_shape": (32, 32, 0)}, "input_shape:"),
        ({"input_shape": (8, 8, 1), "depth": 4}, "depth=4 halves the image 4 times"),
        ({"num_classes": 1}, "num_classes: expected a whole number >= 2"),
    ],
)
def test_bad_arguments_raise_errors_that_name_them(kwargs, message):
    kwargs = {"input_shape": SMOKE.input_shape, **kwargs}
    with pytest.raises(ValueError, match=message):
        models.build_fingers_cnn(**kwargs)


def test_dense_head_sits_on_a_base_cut_at_flatten(images):
    keras = import_keras()
    trained = models.build_fingers_cnn(SMOKE.input_shape, 12, seed=0)
    base = keras.Model(trained.input, trained.get_layer("flatten").output, name="base")
    base.trainable = False
    head = models.build_dense_head(6, units=16, dropout=0.5, seed=0)
    model = keras.Sequential([base, head])
    out = model(images[0][:3])
    assert tuple(out.shape) == (3, 6)
    assert [layer.name for layer in head.layers] == [
        "head_flatten", "head_fc1", "head_dropout", "head_predictions"
    ]
    assert head.layers[-1].activation.__name__ == "softmax"
    assert [w.name for w in model.trainable_weights] == ["kernel", "bias", "kernel", "bias"]
    with pytest.raises(ValueError, match="dropout:"):
        models.build_dense_head(6, dropout=1.5)


def test_compile_uses_sparse_cross_entropy_and_reports_rank1_and_rank5(images):
    keras = import_keras()
    x, y = images
    model = models.compile_classifier(models.build_fingers_cnn(SMOKE.input_shape, 12, seed=0))
    assert isinstance(model.loss, keras.losses.SparseCategoricalCrossentropy)
    results = model.evaluate(x, y, verbose=0, return_dict=True)
    assert set(results) == {"loss", "accuracy", "rank5_accuracy"}
    scores = model.predict(x, verbose=0)
    top5 = np.argsort(-scores, axis=1)[:, :5]
    assert results["accuracy"] == pytest.approx(np.mean(scores.argmax(axis=1) == y))
    assert results["rank5_accuracy"] == pytest.approx((top5 == y[:, None]).any(axis=1).mean())


def test_compile_builds_the_named_optimizer_or_takes_an_instance():
    keras = import_keras()
    model = models.build_fingers_cnn(SMOKE.input_shape, 12, depth=1, width=4)
    models.compile_classifier(model, optimizer="sgd", learning_rate=0.05)
    assert isinstance(model.optimizer, keras.optimizers.SGD)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.05)
    nesterov = keras.optimizers.SGD(learning_rate=0.01, momentum=0.9, nesterov=True)
    assert models.compile_classifier(model, optimizer=nesterov).optimizer is nesterov
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    models.compile_classifier(model, learning_rate=schedule)
    assert model.optimizer.get_config()["learning_rate"]["class_name"] == "ExponentialDecay"
    with pytest.raises(ValueError, match="optimizer: unknown Keras optimizer 'adamm'"):
        models.compile_classifier(model, optimizer="adamm")
    with pytest.raises(ValueError, match="learning_rate: expected a number > 0"):
        models.compile_classifier(model, learning_rate=0)


# --------------------------------------------------------------------------- walking, reading


def test_iter_layers_looks_into_nested_models_and_skips_inputs():
    keras = import_keras()
    base = models.build_fingers_cnn((16, 16, 1), 12, depth=1, width=4, seed=0, name="base")
    head = models.build_dense_head(3, units=4, seed=0)
    model = keras.Sequential([keras.Input((16, 16, 1)), base, head])
    names = [layer.name for layer in models.iter_layers(model)]
    assert names[0] == "block1_conv1" and names[-1] == "head_predictions"
    assert "base" not in names and "head" not in names
    assert not any(isinstance(layer, keras.layers.InputLayer) for layer in models.iter_layers(model))
    with pytest.raises(ValueError, match="model: expected a Keras model"):
        list(models.iter_layers("not a model"))


def test_current_learning_rate_reads_plain_rates_and_schedules():
    keras = import_keras()
    assert models.current_learning_rate(keras.optimizers.SGD(0.05)) == pytest.approx(0.05)
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=1, decay_rate=0.5)
    optimizer = keras.optimizers.SGD(schedule)
    optimizer.iterations.assign(2)
    assert models.current_learning_rate(optimizer) == pytest.approx(0.025)
    assert models.current_learning_rate(None) is None


def test_a_seeded_model_keeps_the_initial_weights_it_had_before_the_seed_module():
    """Layer seeds are seed * 1000 + 1, 2, ...: the numbers of earlier runs stay the same."""
    keras = import_keras()
    model = models.build_fingers_cnn((16, 16, 1), 12, depth=1, width=4, seed=3)
    expected = keras.initializers.HeNormal(seed=3001)((3, 3, 1, 4))
    np.testing.assert_array_equal(model.get_layer("block1_conv1").kernel.numpy(), expected)
