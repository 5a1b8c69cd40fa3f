"""`course_utils.transfer`: the shipped base, feature extraction, fine-tuning, and lesson 04's claims.

The claims are checked with fixed seeds at the smoke profile's sizes (5 labelled images per
class, 32x32 pixels), the lesson's own setting. Nothing here downloads anything: the
ImageNet path is exercised with stand-in loaders, and the shipped base is never retrained
(``course pretrain`` runs once, on a tiny budget, in a subprocess).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from course_utils import fingers, labels, transfer
from course_utils.instructor import pretrain
from course_utils.runtime import profiles
from course_utils.runtime.tf_setup import import_keras
from course_utils.transfer import base as transfer_base
from course_utils.transfer import imagenet

SMOKE = profiles.get_profile("smoke")
HEAD_PARAMETERS = (1024 * 128 + 128) + (128 * 12 + 12)  # Dense 1024->128, Dense 128->12
TOP_CONV_PARAMETERS = 3 * 3 * 32 * 64 + 64                # block3_conv1: kernel and bias


@pytest.fixture(scope="module")
def keras():
    return import_keras()


def _images(n: int, size: int = 32, seed: int = 0) -> np.ndarray:
    return fingers.make_fingers(n, image_size=size, seed=seed)[0]


# --------------------------------------------------------------------------- the shipped base


def test_shipped_weights_are_small_and_match_their_recorded_sha256():
    path = transfer.base_weights_path()
    assert path.is_file(), f"{path} is missing from the package"
    assert path.stat().st_size < 1_000_000, f"{path} is {path.stat().st_size} bytes"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == transfer.BASE_SHA256
    assert transfer.check_sha256(path, transfer.BASE_SHA256) == path


def test_loading_weights_with_a_wrong_hash_fails_with_an_error_naming_the_file(tmp_path, monkeypatch):
    damaged = tmp_path / transfer.BASE_FILE
    data = bytearray(transfer.base_weights_path().read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=re.escape(str(damaged)) + r": SHA-256 is .*expected") as err:
        transfer.load_base_network(weights_path=damaged, sha256=transfer.BASE_SHA256)
    assert "corrupt" in str(err.value) and "course pretrain" in str(err.value)
    # The shipped file against another recorded digest: refused the same way, before any read.
    monkeypatch.setattr(transfer_base, "BASE_SHA256", "0" * 64)
    with pytest.raises(ValueError, match=re.escape(transfer.BASE_FILE) + r": SHA-256 is "):
        transfer.load_base_network()


def test_missing_or_unchecked_weights_files_are_refused_clearly(tmp_path):
    missing = tmp_path / "nowhere.weights.h5"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing)) + ": weights file not found"):
        transfer.load_base_network(weights_path=missing, sha256="0" * 64)
    shutil.copy(transfer.base_weights_path(), tmp_path / "copy.weights.h5")
    with pytest.raises(ValueError, match="sha256: give the SHA-256"):
        transfer.load_base_network(weights_path=tmp_path / "copy.weights.h5")
    with pytest.raises(ValueError, match="64 hex digits"):
        transfer.check_sha256(tmp_path / "copy.weights.h5", "abc")


def test_base_network_keeps_its_layers_and_weights_at_every_input_size():
    base32 = transfer.load_base_network((32, 32, 1))
    names = [layer.name for layer in base32.layers]
    assert names[-4:] == ["flatten", "fc1", "fc1_dropout", "predictions"]
    assert base32.output_shape == (None, transfer.SOURCE_CLASSES)
    base64 = transfer.load_base_network((64, 64, 1))
    assert base64.layers[1].name == "resize_to_base"
    assert [layer.name for layer in base64.layers[2:]] == names[1:]
    for name in ("block1_conv1", "block3_bn1", "predictions"):
        for a, b in zip(base32.get_layer(name).get_weights(), base64.get_layer(name).get_weights(),
                        strict=True):
            np.testing.assert_array_equal(a, b)
    # The source task was learned: the base counts the fingers of source-style images well.
    x, y = fingers.make_fingers(120, image_size=32, seed=5, style=fingers.ALT_STYLE)
    accuracy = np.mean(base32.predict(x[..., None] / 255.0, verbose=0).argmax(1)
                       == labels.to_count(y))
    assert accuracy > 0.9, f"the shipped base scores {accuracy:.0%} on its own source task"
    with pytest.raises(ValueError, match="input_shape"):
        transfer.load_base_network((32, 32, 3))


# --------------------------------------------------------------------------- feature extraction


def test_feature_extractor_is_the_base_cut_at_flatten(keras):
    base = transfer.load_base_network((48, 48, 1))
    extractor = transfer.build_feature_extractor(base)
    assert extractor.output_shape == (None, 1024)
    assert extractor.layers[-1].name == "flatten"
    assert "Dense" not in [type(layer).__name__ for layer in extractor.layers]
    images = _images(6, size=48)
    reference = keras.Model(base.input, base.get_layer("flatten").output)
    expected = reference.predict(images[..., None].astype("float32") / 255.0, verbose=0)
    features = transfer.extract_features(extractor, images)
    assert features.dtype == np.float32 and features.shape == (6, 1024)
    np.testing.assert_allclose(features, expected, atol=1e-5)
    with pytest.raises(ValueError, match="cut_at: the base has no layer 'fc9'"):
        transfer.build_feature_extractor(base, cut_at="fc9")
    np.testing.assert_array_equal(transfer.extract_features(extractor, images[..., None]),
                                  features)
    with pytest.raises(ValueError, match="images: expected uint8 pixels"):
        transfer.extract_features(extractor, images.astype("float32"))
    with pytest.raises(ValueError, match="batch_size: expected a whole number >= 1, got 0"):
        transfer.extract_features(extractor, images, batch_size=0)


def test_feature_classifier_is_a_logistic_regression_on_the_raw_features():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 12)
    features = rng.normal(size=(48, 10)) + y[:, None]
    classifier = transfer.fit_feature_classifier(features, y, C=0.5)
    reference = LogisticRegression(C=0.5, max_iter=1000).fit(features, y)
    np.testing.assert_allclose(classifier.predict_proba(features),
                               reference.predict_proba(features), atol=1e-6)
    with pytest.raises(ValueError, match="features: expected a 2-D array"):
        transfer.fit_feature_classifier(features[:, :, None], y)
    with pytest.raises(ValueError, match="C: expected a positive number"):
        transfer.fit_feature_classifier(features, y, C=0)


# --------------------------------------------------------------------------- fine-tuning


def _warmed_up(keras):
    extractor = transfer.build_feature_extractor(transfer.load_base_network())
    model = transfer.build_fine_tuning_model(extractor, learning_rate=1e-3, seed=0)
    rng = np.random.default_rng(0)
    x = rng.random((24, 32, 32, 1)).astype("float32")
    y = rng.integers(0, 12, size=24)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    return extractor, model, x, y


def test_fine_tuning_trains_the_head_then_the_top_convolution_with_batch_norm_frozen(keras):
    extractor, model, x, y = _warmed_up(keras)
    assert transfer.count_trainable_parameters(model) == HEAD_PARAMETERS
    watched = ("block1_conv1", "block2_bn1", "block3_conv1", "block3_bn1")
    before = {n: [w.numpy() for w in extractor.get_layer(n).weights] for n in watched}
    transfer.unfreeze_top_block(model, extractor, learning_rate=1e-4)
    assert transfer.count_trainable_parameters(model) == HEAD_PARAMETERS + TOP_CONV_PARAMETERS
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-4)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    moved = {n: max(float(np.abs(a - w.numpy()).max())
                    for a, w in zip(before[n], extractor.get_layer(n).weights, strict=True))
             for n in watched}
    assert moved["block3_conv1"] > 0
    assert moved["block1_conv1"] == moved["block2_bn1"] == 0
    assert moved["block3_bn1"] == 0, "batch norm must keep the source statistics (inference mode)"
    with pytest.raises(ValueError, match="block: no layer"):
        transfer.unfreeze_top_block(model, extractor, block="block9")


def test_changing_trainable_without_recompiling_trains_nothing_new(keras):
    """The pitfall the lesson shows, for real: Keras keeps training the old weight list."""
    extractor, model, x, y = _warmed_up(keras)
    kernel = extractor.get_layer("block3_conv1").kernel
    before = kernel.numpy()
    extractor.trainable = True
    for layer in extractor.layers:
        layer.trainable = layer.name == "block3_conv1"
    assert transfer.count_trainable_parameters(model) == HEAD_PARAMETERS + TOP_CONV_PARAMETERS
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert np.array_equal(kernel.numpy(), before), "trained although never recompiled"
    transfer.unfreeze_top_block(model, extractor, learning_rate=1e-4)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert not np.array_equal(kernel.numpy(), before), "recompiling must make it train"


# --------------------------------------------------------------------------- the claims


@pytest.mark.slow
def test_with_little_labelled_data_both_transfer_methods_beat_training_from_scratch():
    """Claims 1 and 2 at the lesson's smoke setting (5 images per class, 32x32, seed 42)."""
    seed = SMOKE.seed
    x, y = fingers.make_fingers(SMOKE.few_shot_per_class * labels.NUM_CLASSES,
                                image_size=SMOKE.image_size, seed=seed)
    x_test, y_test = fingers.make_fingers(SMOKE.test_size, image_size=SMOKE.image_size,
                                          seed=seed + 2)
    epochs = SMOKE.few_shot_epochs
    accuracy = transfer.compare_methods(
        x, y, x_test, y_test, batch_size=SMOKE.batch_size, head_epochs=epochs,
        fine_epochs=epochs, seed=seed,
    )
    print(accuracy)
    assert sorted(accuracy) == ["feature extraction", "fine-tuning", "from scratch",
                                "new head, base frozen"]
    scratch = accuracy["from scratch"]
    assert accuracy["feature extraction"] - scratch >= 0.15, accuracy
    assert accuracy["fine-tuning"] - scratch >= 0.15, accuracy


def test_the_source_task_counts_fingers_and_is_not_the_target_task():
    """The base is taught the count only (6 classes), on ALT_STYLE images with seeds of their own."""
    from course_utils.runtime.seeds import derive_seed

    config = pretrain.PretrainConfig(images=24, val_images=12)
    x, y, x_val, y_val = pretrain.source_task_data(config)
    assert sorted(set(y.tolist())) == list(range(transfer.SOURCE_CLASSES)) == list(range(6))
    expected, labels12 = fingers.make_fingers(24, image_size=32, style=fingers.ALT_STYLE,
                                              seed=derive_seed(0, pretrain.SEED_KEY, 0))
    assert np.array_equal(x, expected) and np.array_equal(y, labels.to_count(labels12))
    assert not np.array_equal(x_val, x[:12])


def test_compare_cuts_draws_the_same_images_for_every_cut_and_reads_as_runs():
    from course_utils import training

    x, y = fingers.make_fingers(48, image_size=32, seed=3)
    x_test, y_test = fingers.make_fingers(24, image_size=32, seed=4)
    base = transfer.load_base_network()
    runs = transfer.compare_cuts(base, x, y, x_test, y_test, cuts=["block2_pool", "flatten"],
                                 per_class=2, seeds=[0, 1], C=0.1)
    assert sorted(runs) == ["block2_pool", "flatten"] and sorted(runs["flatten"]) == [0, 1]
    again = transfer.compare_cuts(base, x, y, x_test, y_test, cuts=["flatten"], per_class=2,
                                  seeds=[1], C=0.1)
    assert again["flatten"][1] == runs["flatten"][1], "a seed draws the same images every time"
    final = training.final_over_seeds(runs, "test_accuracy")
    assert all(0 <= mean <= 1 for mean, _ in final.values())
    training.paired_change(runs["block2_pool"], runs["flatten"], "test_accuracy",
                           higher_is_better=True)
    with pytest.raises(ValueError, match="per_class: a class has only 4 images"):
        transfer.compare_cuts(base, x, y, x_test, y_test, cuts=["flatten"], per_class=5,
                              seeds=[0])


# --------------------------------------------------------------------------- which method


def test_choose_method_follows_the_decision_table():
    assert {transfer.choose_method(s, m) for s in ("small", "large")
            for m in ("similar", "different")} == set(transfer.METHODS)
    assert transfer.choose_method("small", "similar") == "feature extraction"
    assert transfer.choose_method("large", "similar") == "fine-tuning"
    assert transfer.choose_method("small", "different") == "feature extraction"
    assert transfer.choose_method("large", "different") == "train from scratch"
    with pytest.raises(ValueError, match="similarity: expected 'similar' or 'different'"):
        transfer.choose_method("small", "alike")


def test_figures_show_the_table_and_the_comparison():
    table = transfer.plot_decision_table()
    texts = [t.get_text() for t in table.axes[0].texts]
    assert sum(t in transfer.METHODS for t in texts) == 4
    bars = transfer.plot_accuracy_comparison({"from scratch": 0.2, "fine-tuning": 0.55}, chance=1 / 12)
    assert [p.get_height() for p in bars.axes[0].patches] == [0.2, 0.55]
    spread = transfer.plot_accuracy_comparison(
        {"scratch": (0.573, 0.054), "tuned": (0.707, 0.005), "same every seed": (0.642, 0.0),
         "one run": 0.5})
    assert [t.get_text() for t in spread.axes[0].texts] == [
        "57.3% ± 5.4", "70.7% ± 0.5", "64.2% ± 0.0", "50.0%"]
    with pytest.raises(ValueError, match="values in \\[0, 1\\]"):
        transfer.plot_accuracy_comparison({"x": 55.0})


def test_accuracy_by_data_size_trains_on_the_first_images_of_each_class():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(1)
    y = np.tile(np.arange(3), 8)
    features = rng.normal(size=(24, 5)) + 1.5 * y[:, None]
    y_test = np.repeat(np.arange(3), 20)
    features_test = rng.normal(size=(60, 5)) + 1.5 * y_test[:, None]
    fig = transfer.plot_accuracy_by_data_size(features, y, features_test, y_test,
                                              sizes=[2, 8], C=0.5)
    first_two = np.concatenate([np.flatnonzero(y == c)[:2] for c in range(3)])
    expected = LogisticRegression(C=0.5, max_iter=1000).fit(features[first_two], y[first_two])
    assert fig.accuracies[2] == pytest.approx(expected.score(features_test, y_test))
    assert len(fig.axes[0].lines) == 1
    with pytest.raises(ValueError, match="fewer than the largest size 9"):
        transfer.plot_accuracy_by_data_size(features, y, features_test, y_test, sizes=[9])


# --------------------------------------------------------------------------- Keras Applications


def test_offline_the_imagenet_path_falls_back_to_the_shipped_base_without_downloading(monkeypatch):
    monkeypatch.setattr(imagenet, "_mobilenet_cached", lambda: False)
    calls = []

    def loader(**kwargs):
        calls.append(kwargs)
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: None -- "
                        "[Errno -3] Temporary failure in name resolution")

    offline = transfer.load_pretrained_base("mobilenet_v2", (32, 32, 1), loader=loader,
                                            reachable=lambda: False)
    assert calls == [], "no download may be tried without a network"
    assert offline.source == "course" and offline.cut_at == "flatten"
    assert "not available (there is no network connection" in offline.message
    assert "falling back to the course's shipped base" in offline.message

    failed = transfer.load_pretrained_base("mobilenet_v2", (32, 32, 1), loader=loader,
                                           reachable=lambda: True)
    assert len(calls) == 1 and calls[0]["weights"] == "imagenet"
    assert failed.source == "course" and "the download failed" in failed.message
    assert "name resolution" in failed.message

    switched_off = transfer.load_pretrained_base("mobilenet_v2", allow_download=False,
                                                 loader=loader, reachable=lambda: True)
    assert len(calls) == 1 and "downloads are switched off" in switched_off.message
    extractor = transfer.build_feature_extractor(switched_off.model, cut_at=switched_off.cut_at)
    assert extractor.output_shape == (None, 1024)
    with pytest.raises(ValueError, match="name: expected 'mobilenet_v2' or 'course'"):
        transfer.load_pretrained_base("vgg16")


def test_offline_with_the_default_probe_and_an_empty_cache_nothing_is_downloaded(
        monkeypatch, tmp_path):
    # The real defaults: the Keras cache (KERAS_HOME) is looked at and the weights' host is
    # probed with a socket; a machine without network refuses the connection.
    import socket

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    probes = []

    def refused(address, *args, **kwargs):
        probes.append(address)
        raise OSError("[Errno 101] Network is unreachable")

    def loader(**kwargs):
        raise AssertionError("no download may be tried without a network")

    monkeypatch.setattr(socket, "create_connection", refused)
    offline = transfer.load_pretrained_base("mobilenet_v2", (32, 32, 1), loader=loader)
    assert len(probes) == 1, "the host is probed once"
    assert offline.source == "course"
    assert "there is no network connection to download them" in offline.message
    assert not (tmp_path / "keras").exists() or not any((tmp_path / "keras").rglob("*.h5"))

    # The same weights in the cache are used without probing the network.
    cached = tmp_path / "keras" / "models"
    cached.mkdir(parents=True)
    (cached / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5").touch()
    assert imagenet._mobilenet_cached()


def test_online_the_same_code_path_runs_on_a_keras_applications_network(keras, monkeypatch):
    monkeypatch.setattr(imagenet, "_mobilenet_cached", lambda: False)
    asked = {}

    def stand_in(*, input_shape, alpha, include_top, weights):
        """A tiny network shaped like MobileNetV2(include_top=False): no download."""
        asked.update(input_shape=input_shape, include_top=include_top, weights=weights)
        inputs = keras.Input(shape=input_shape)
        outputs = keras.layers.Conv2D(8, 3, strides=32, activation="relu", name="Conv_1")(inputs)
        return keras.Model(inputs, outputs, name="mobilenetv2_stand_in")

    online = transfer.load_pretrained_base("mobilenet_v2", (32, 32, 1), loader=stand_in,
                                           reachable=lambda: True)
    assert asked == {"input_shape": (96, 96, 3), "include_top": False, "weights": "imagenet"}
    assert online.source == "imagenet" and "ImageNet" in online.message
    extractor = transfer.build_feature_extractor(online.model, cut_at=online.cut_at)
    features = transfer.extract_features(extractor, _images(4))
    assert features.shape == (4, 8)
    model = transfer.build_fine_tuning_model(extractor, seed=0)
    transfer.unfreeze_top_block(model, extractor, block=online.top_block)
    assert transfer.count_trainable_parameters(model) > transfer.count_trainable_parameters(
        model.layers[-1])


def test_the_real_mobilenet_v2_architecture_fits_the_cut_and_the_top_block(keras, monkeypatch):
    """Keras Applications' own MobileNetV2, built offline without weights (weights=None):
    the cut point, the layer names of the top block and the feature size are the real ones."""
    monkeypatch.setattr(imagenet, "_mobilenet_cached", lambda: False)

    def architecture_only(**kwargs):
        assert kwargs["weights"] == "imagenet"
        return keras.applications.MobileNetV2(**{**kwargs, "weights": None})

    online = transfer.load_pretrained_base("mobilenet_v2", (32, 32, 1), loader=architecture_only,
                                           reachable=lambda: True)
    network = next(layer for layer in online.model.layers if isinstance(layer, keras.Model))
    names = [layer.name for layer in network.layers]
    for prefix in online.top_block:
        assert any(name.startswith(prefix) for name in names), f"no layer named {prefix}*"
    extractor = transfer.build_feature_extractor(online.model, cut_at=online.cut_at)
    assert transfer.extract_features(extractor, _images(2)).shape == (2, 1280)
    model = transfer.build_fine_tuning_model(extractor, seed=0)
    head_only = transfer.count_trainable_parameters(model)
    transfer.unfreeze_top_block(model, extractor, block=online.top_block)
    assert transfer.count_trainable_parameters(model) > head_only, "the top block stayed frozen"


# --------------------------------------------------------------------------- course pretrain


@pytest.mark.slow
def test_course_pretrain_trains_a_base_whose_printed_hash_loads(tmp_path):
    out = tmp_path / "tiny.weights.h5"
    env = {k: v for k, v in os.environ.items() if k != "COURSE_PROFILE"}
    done = subprocess.run(
        [sys.executable, "-m", "course_utils.instructor.cli", "pretrain", "--images", "48",
         "--val-images", "24", "--epochs", "1", "--out", str(out)],
        capture_output=True, text=True, env=env, timeout=180,
    )
    assert done.returncode == 0, done.stderr
    printed = re.search(r"SHA-256: ([0-9a-f]{64})", done.stdout)
    assert printed, done.stdout
    assert printed.group(1) == hashlib.sha256(out.read_bytes()).hexdigest()
    record = json.loads((tmp_path / "tiny.json").read_text())
    assert record["sha256"] == printed.group(1)
    assert record["config"]["images"] == 48 and record["config"]["seed"] == 0
    assert record["deterministic"] is True and record["versions"]["tensorflow"]
    assert out.stat().st_size < 1_000_000
    base = transfer.load_base_network(weights_path=out, sha256=printed.group(1))
    assert base.output_shape == (None, transfer.SOURCE_CLASSES)


def test_the_shipped_base_comes_with_the_record_of_the_recipe_that_made_it():
    from course_utils import datasets, models

    record = transfer.base_record()
    path = transfer.base_weights_path()
    assert record["file"] == path.name and record["bytes"] == path.stat().st_size
    assert record["sha256"] == transfer.BASE_SHA256 == hashlib.sha256(path.read_bytes()).hexdigest()
    # The defaults of `course pretrain` are the recipe that made it, on the source task ...
    config = pretrain.PretrainConfig()
    assert record["config"] == dataclasses.asdict(config)
    assert record["source_task"] == pretrain.SOURCE_TASK
    # ... and the accuracy it records is the shipped weights' own, on that recipe's images.
    _, _, x_val, y_val = pretrain.source_task_data(config)
    base = models.compile_classifier(transfer.load_base_network())
    measured = base.evaluate(datasets.make_dataset(x_val, y_val, batch_size=256, training=False),
                             verbose=0, return_dict=True)["accuracy"]
    assert abs(measured - record["val_accuracy"]) <= 1 / len(y_val), (measured, record)
    assert measured >= 0.95, "the base is good at its source task"


def test_course_pretrain_refuses_to_overwrite_the_shipped_weights(capsys):
    from course_utils.instructor import cli

    assert cli.main(["pretrain", "--out", str(transfer.base_weights_path())]) == 2
    assert "this is the shipped file" in capsys.readouterr().err
    with pytest.raises(ValueError, match="images: expected a positive integer"):
        pretrain.PretrainConfig(images=0)
    with pytest.raises(ValueError, match=r"out_path: expected a file name ending in \.weights\.h5"):
        pretrain.pretrain_base(Path("base.h5"))

