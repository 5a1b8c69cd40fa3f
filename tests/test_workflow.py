"""course_utils.workflow: the architecture rules, test-set discipline, random labels."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from course_utils import fingers, models, workflow
from course_utils.runtime.tf_setup import import_keras

keras = import_keras()
L = keras.layers


def _model(*layers, shape=(16, 16, 1)):
    return keras.Sequential([keras.Input(shape), *layers])


def _problems(model, num_classes=12):
    return workflow.find_architecture_problems(model, num_classes=num_classes)


# --------------------------------------------------------------------------- architecture


def test_reference_cnn_follows_the_architecture_rules_with_and_without_batch_norm():
    for batch_norm in (True, False):
        model = models.build_fingers_cnn((32, 32, 1), 12, depth=2, width=4, batch_norm=batch_norm)
        assert _problems(model) == []
        workflow.check_architecture(model)  # does not raise


def test_activation_may_come_from_a_separate_layer_after_batch_norm():
    model = _model(L.Conv2D(4, 3), L.BatchNormalization(), L.Activation("relu"), L.Flatten(),
                   L.Dense(8), L.ReLU(), L.Dense(12), L.Softmax())
    assert _problems(model) == []


def test_a_convolution_without_activation_is_named_in_the_message():
    model = _model(L.Conv2D(4, 3, name="conv_a"), L.MaxPooling2D(), L.Flatten(),
                   L.Dense(12, activation="softmax"))
    problems = _problems(model)
    assert len(problems) == 1 and "'conv_a' (Conv2D) has no activation" in problems[0]


def test_a_model_without_flatten_is_told_to_flatten_once_and_its_output_shape_is_wrong():
    model = _model(L.Conv2D(4, 3, activation="relu"), L.Dense(12, activation="softmax"))
    text = "\n".join(_problems(model))
    assert "no Flatten layer" in text
    assert "output shape is (None, 14, 14, 12)" in text


def test_flattening_twice_and_dense_before_flatten_are_both_reported():
    twice = _model(L.Flatten(), L.Dense(8, activation="relu"), L.Flatten(),
                   L.Dense(12, activation="softmax"))
    assert any("flattens 2 times" in p for p in _problems(twice))
    early = _model(L.Dense(8, activation="relu"), L.Flatten(), L.Dense(12, activation="softmax"))
    assert any("come before the Flatten layer" in p for p in _problems(early))


def test_convolution_after_flatten_is_reported():
    model = keras.Sequential([keras.Input((64,)), L.Reshape((8, 8, 1)), L.Flatten(),
                              L.Reshape((8, 8, 1)), L.Conv2D(2, 3, activation="relu"),
                              L.Dense(12, activation="softmax")])
    text = "\n".join(_problems(model))
    assert "come after the Flatten layer" in text


@pytest.mark.parametrize("units, activation, expected", [
    (6, "softmax", "has 6 units: it needs one per class (12)"),
    (12, "relu", "does not end in a softmax"),
    (12, None, "does not end in a softmax"),
])
def test_the_output_layer_needs_one_softmax_unit_per_class(units, activation, expected):
    model = _model(L.Conv2D(4, 3, activation="relu"), L.Flatten(),
                   L.Dense(units, activation=activation, name="out"))
    problems = _problems(model)
    assert any(expected in p for p in problems), problems


def test_global_pooling_counts_as_the_flatten_step_and_nested_models_are_inspected():
    augment = keras.Sequential([L.RandomFlip("horizontal")], name="augment")
    model = _model(augment, L.Conv2D(4, 3, activation="relu"), L.GlobalAveragePooling2D(),
                   L.Dense(12, activation="softmax"))
    assert _problems(model) == []
    inner = keras.Sequential([L.Conv2D(4, 3)], name="features")  # no activation, nested
    nested = _model(inner, L.Flatten(), L.Dense(12, activation="softmax"))
    assert any("has no activation" in p for p in _problems(nested))


def test_check_architecture_raises_with_every_problem_listed():
    model = _model(L.Dense(6))
    with pytest.raises(ValueError) as info:
        workflow.check_architecture(model)
    message = str(info.value)
    assert message.count("\n- ") == len(_problems(model)) >= 3


def test_architecture_checks_validate_their_arguments():
    with pytest.raises(ValueError, match="model: expected a Keras model"):
        workflow.check_architecture("not a model")
    with pytest.raises(ValueError, match="num_classes: expected a whole number >= 2, got 1"):
        workflow.check_architecture(_model(L.Flatten()), num_classes=1)


# --------------------------------------------------------------------------- splits


@pytest.fixture(scope="module")
def data():
    x, y = fingers.make_fingers(240, image_size=16, seed=3)
    x_test, y_test = fingers.make_fingers(48, image_size=16, seed=4)
    return x, y, x_test, y_test


def _stratified(x, y, x_test, y_test, fraction=0.25, seed=0):
    x_tr, x_val, y_tr, y_val = train_test_split(x, y, test_size=fraction, stratify=y,
                                                random_state=seed)
    return {"train": (x_tr, y_tr), "val": (x_val, y_val), "test": (x_test, y_test)}


def test_a_stratified_split_that_returns_the_test_set_untouched_is_sound(data):
    splits = _stratified(*data)
    assert workflow.find_split_problems(splits, *data, val_fraction=0.25) == []
    workflow.check_splits(splits, *data, val_fraction=0.25)


def test_a_random_unstratified_split_is_caught(data):
    x, y, x_test, y_test = data
    order = np.random.default_rng(0).permutation(len(y))
    val, train = order[:60], order[60:]
    splits = {"train": (x[train], y[train]), "val": (x[val], y[val]), "test": (x_test, y_test)}
    problems = workflow.find_split_problems(splits, *data, val_fraction=0.25)
    assert len(problems) == 1 and "not stratified" in problems[0]


def test_pooling_the_test_set_into_the_split_is_caught_as_a_leak(data):
    x, y, x_test, y_test = data
    all_x, all_y = np.concatenate([x, x_test]), np.concatenate([y, y_test])
    x_tr, x_rest, y_tr, y_rest = train_test_split(all_x, all_y, test_size=108, stratify=all_y,
                                                  random_state=0)
    splits = {"train": (x_tr, y_tr), "val": (x_rest[:60], y_rest[:60]),
              "test": (x_rest[60:], y_rest[60:])}
    text = "\n".join(workflow.find_split_problems(splits, *data, val_fraction=0.25))
    assert "the test set changed" in text
    assert "are test images" in text


def test_validation_taken_from_the_test_set_is_caught(data):
    x, y, x_test, y_test = data
    splits = {"train": (x, y), "val": (x_test, y_test), "test": (x_test, y_test)}
    text = "\n".join(workflow.find_split_problems(splits, *data, val_fraction=0.25))
    assert "48 of their images are test images" in text


def test_wrong_validation_size_and_lost_images_are_caught(data):
    x, y, x_test, y_test = data
    too_small = _stratified(*data, fraction=0.1)
    problems = workflow.find_split_problems(too_small, *data, val_fraction=0.25)
    assert any("validation set has 24 images: expected" in p for p in problems)
    lost = _stratified(*data)
    lost["train"] = (lost["train"][0][5:], lost["train"][1][5:])
    problems = workflow.find_split_problems(lost, *data, val_fraction=0.25)
    assert any("5 given images are missing" in p for p in problems)


def test_malformed_splits_get_a_message_not_a_crash(data):
    x, y, x_test, y_test = data
    assert "splits: expected a dict" in workflow.find_split_problems(
        [(x, y)], *data, val_fraction=0.25)[0]
    assert "splits: expected exactly the keys" in workflow.find_split_problems(
        {"train": (x, y)}, *data, val_fraction=0.25)[0]
    assert "splits['train']: expected a pair (images, labels), got ndarray" in (
        workflow.find_split_problems({"train": x, "val": (x, y), "test": (x_test, y_test)},
                                     *data, val_fraction=0.25)[0])
    assert "same length" in workflow.find_split_problems(
        {"train": (x, y[:3]), "val": (x, y), "test": (x_test, y_test)}, *data,
        val_fraction=0.25)[0]
    with pytest.raises(ValueError, match=r"val_fraction: expected a number > 0 and < 1, got 1.5"):
        workflow.find_split_problems({}, *data, val_fraction=1.5)


# --------------------------------------------------------------------------- random labels


def test_shuffled_labels_keep_the_class_counts_and_depend_only_on_the_seed():
    y = np.repeat(np.arange(12), 5)
    a, b = workflow.shuffle_labels(y, seed=7), workflow.shuffle_labels(y, seed=7)
    assert np.array_equal(a, b)
    assert np.array_equal(np.bincount(a, minlength=12), np.bincount(y, minlength=12))
    assert (a != y).mean() > 0.5
    assert not np.array_equal(workflow.shuffle_labels(y, seed=8), a)


def test_a_cnn_memorises_random_labels_while_validation_stays_at_chance():
    # The claim behind test-set discipline: fitting the training data proves nothing.
    x, y = fingers.make_fingers(60, image_size=32, seed=0)
    x_val, y_val = fingers.make_fingers(120, image_size=32, seed=1)
    history = workflow.memorize_random_labels(x, y, epochs=30, x_val=x_val, y_val=y_val, seed=0)
    assert history["accuracy"][-1] >= 0.95, history["accuracy"]
    assert history["val_accuracy"][-1] <= 0.25, history["val_accuracy"]  # chance is 1/12
    assert len(history["loss"]) == 30


def test_memorize_random_labels_validates_its_arguments():
    x, y = fingers.make_fingers(12, image_size=16, seed=0)
    with pytest.raises(ValueError, match="epochs: expected a whole number >= 1, got 0"):
        workflow.memorize_random_labels(x, y, epochs=0)
    with pytest.raises(ValueError, match="both x_val and y_val"):
        workflow.memorize_random_labels(x, y, epochs=1, x_val=x)
    with pytest.raises(ValueError, match=r"x: expected uint8 square grayscale images"):
        workflow.memorize_random_labels(x[..., None], y, epochs=1)
    with pytest.raises(ValueError, match="x: expected uint8"):  # scaled already
        workflow.memorize_random_labels(x / 255.0, y, epochs=1)
    with pytest.raises(ValueError, match=r"x_val: expected uint8 images of the size of x"):
        workflow.memorize_random_labels(x, y, epochs=1, x_val=x[:, :8, :8], y_val=y)


def test_labels_split_apart_from_their_images_are_named_as_such(data):
    x, y, x_test, y_test = data
    splits = _stratified(*data)
    x_tr, y_tr = splits["train"]
    splits["train"] = (x_tr, np.roll(y_tr, 1))  # every image kept, labels moved
    problems = workflow.find_split_problems(splits, *data, val_fraction=0.25)
    assert any("the labels no longer belong to their images" in p for p in problems), problems
    assert not any("missing" in p for p in problems), problems


# --------------------------------------------------------------------------- checkpoints


class _Checkpoint(keras.callbacks.Callback):
    def __init__(self, folder, every):
        super().__init__()
        self.folder, self.every = folder, every

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every == 0:
            self.folder.mkdir(parents=True, exist_ok=True)
            self.model.save(self.folder / f"epoch_{epoch + 1:04d}.keras")


def _resume(folder):
    found = sorted(folder.glob("epoch_*.keras"))
    return (keras.saving.load_model(found[-1]), int(found[-1].stem[6:])) if found else None


def test_a_sound_checkpoint_resumes_like_an_uninterrupted_run():
    assert workflow.find_checkpoint_problems(_Checkpoint, _resume, every=3, stop=5, epochs=7) == []


def test_a_checkpoint_that_loses_the_optimizer_state_or_counts_from_zero_is_caught():
    def recompiled(folder):
        restored = _resume(folder)
        if restored is None:
            return None
        model, done = restored
        model.compile(optimizer=keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy")
        return model, done

    problems = workflow.find_checkpoint_problems(_Checkpoint, recompiled, every=1, stop=1,
                                                 epochs=2)
    assert len(problems) == 1 and "weights up to" in problems[0], problems

    class FromZero(_Checkpoint):
        def on_epoch_end(self, epoch, logs=None):
            if epoch % self.every == 0:
                self.folder.mkdir(parents=True, exist_ok=True)
                self.model.save(self.folder / f"epoch_{epoch + 1:04d}.keras")

    text = "\n".join(workflow.find_checkpoint_problems(FromZero, _resume, every=2, stop=3,
                                                       epochs=4))
    assert "should hold the checkpoints after epochs [2]" in text
    assert "it holds epoch_0001.keras, epoch_0003.keras" in text
    with pytest.raises(ValueError, match="epochs: expected a whole number >= 4, got 3"):
        workflow.check_checkpoint(_Checkpoint, _resume, every=1, stop=3, epochs=3)


# --------------------------------------------------------------------------- the vault


def test_the_vault_hands_out_copies_and_counts_every_opening():
    x, y = np.arange(6.0).reshape(3, 2), np.array([0, 1, 0])
    vault = workflow.Vault(x, y)
    x[0, 0] = 99.0  # the vault holds its own copy
    first, labels = vault.open()
    first[1, 1] = -1.0
    again, _ = vault.open()
    assert again[0, 0] == 0.0 and again[1, 1] == 3.0 and labels.tolist() == [0, 1, 0]
    assert vault.openings == 2 and len(vault) == 3
    assert repr(vault) == "Vault(3 test samples, opened 2 times)"
    with pytest.raises(ValueError, match="same non-zero length"):
        workflow.Vault(x, y[:2])


def _accuracy(model, x, y):
    return float(np.mean(model.predict(x, verbose=0).argmax(axis=1) == y))


def test_a_choice_on_validation_with_the_vault_opened_once_is_sound():
    def choose(candidates, data, vault):
        best = max(candidates, key=lambda n: _accuracy(candidates[n], *data["val"]))
        return best, _accuracy(candidates[best], *vault.open())

    for scenario in ("plain", "misleading", "tie"):
        assert workflow.find_choice_problems(choose, scenario=scenario, seed=4) == [], scenario


def test_choices_by_training_or_test_accuracy_and_a_vault_opened_twice_are_caught():
    def by_test(candidates, data, vault):
        x, y = vault.open()
        best = max(candidates, key=lambda n: _accuracy(candidates[n], x, y))
        return best, _accuracy(candidates[best], x, y)

    def by_train(candidates, data, vault):
        best = max(candidates, key=lambda n: _accuracy(candidates[n], *data["train"]))
        return best, _accuracy(candidates[best], *vault.open())

    def peeks(candidates, data, vault):
        vault.open()
        best = max(candidates, key=lambda n: _accuracy(candidates[n], *data["val"]))
        return best, _accuracy(candidates[best], *vault.open())

    chosen_by_test = workflow.find_choice_problems(by_test)
    assert "met the test set too" in chosen_by_test[0] and "chose 'lr=0.03'" in chosen_by_test[1]
    assert "chose 'lr=0.1' (training accuracy 100%" in workflow.find_choice_problems(by_train)[0]
    assert workflow.find_choice_problems(peeks)[0].startswith("the vault was opened 2 times")

    def opens_first(candidates, data, vault):  # chooses on validation with the test set at hand
        x, y = vault.open()
        best = max(candidates, key=lambda n: _accuracy(candidates[n], *data["val"]))
        return best, _accuracy(candidates[best], x, y)

    assert workflow.find_choice_problems(opens_first) == [
        "the vault was opened before the candidates ['lr=0.1', 'lr=0.03', 'lr=0.01', "
        "'lr=0.003'] were measured on the validation data: choose first, then open the vault "
        "to measure the chosen model (a test set at hand while choosing can sway the choice)"]

    def stops_early(candidates, data, vault):  # sound: stops at the first perfect candidate
        for name, model in candidates.items():
            if _accuracy(model, *data["val"]) == 1.0:
                return name, _accuracy(model, *vault.open())
        return None

    assert workflow.find_choice_problems(stops_early, scenario="tie", seed=2) == []

    def checks_again(candidates, data, vault):  # sound: the chosen one measured again after
        best = max(candidates, key=lambda n: _accuracy(candidates[n], *data["val"]))
        test = _accuracy(candidates[best], *vault.open())
        _accuracy(candidates[best], *data["val"])
        return best, test

    assert workflow.find_choice_problems(checks_again, scenario="misleading", seed=1) == []

    def measures_all(candidates, data, vault):
        x, y = vault.open()
        test = {n: _accuracy(m, x, y) for n, m in candidates.items()}
        best = max(candidates, key=lambda n: _accuracy(candidates[n], *data["val"]))
        return best, test[best]

    assert workflow.find_choice_problems(measures_all, scenario="tie")[1:] == [
        "the candidates ['no dropout', 'dropout 0.5'] met the test set too: only the model "
        "chosen to ship meets it, once, at the end (measuring the others there is choosing "
        "with it)"]
    with pytest.raises(ValueError, match="expected a pair"):
        workflow.check_choice(lambda c, d, v: "lr=0.003")



def test_a_choice_cannot_hide_what_it_did_by_editing_the_vault_or_the_candidates():
    def reads_the_vault(candidates, data, vault):  # the test set without an opening
        arrays = [v for v in vars(vault).values() if isinstance(v, np.ndarray)]
        return "lr=0.003", _accuracy(candidates["lr=0.003"], *arrays)

    with pytest.raises(TypeError):  # the vault holds no arrays: an opening is the only way
        workflow.find_choice_problems(reads_the_vault)

    def forges_the_record(candidates, data, vault):  # opens first, then claims a late opening
        import time
        x, y = vault.open()
        vault._record = lambda: (time.perf_counter_ns() + 10**12,)
        best = max(candidates, key=lambda n: _accuracy(candidates[n], *data["val"]))
        return best, _accuracy(candidates[best], x, y)

    assert workflow.find_choice_problems(forges_the_record)[0].startswith(
        "the vault was opened before the candidates")

    def blinds_the_witnesses(candidates, data, vault):  # measures every candidate unseen
        for model in candidates.values():
            model.get_layer("witness").call = lambda inputs: inputs
        x, y = vault.open()
        best = max(candidates, key=lambda n: _accuracy(candidates[n], x, y))
        return best, _accuracy(candidates[best], x, y)

    assert "the candidates or the data changed" in workflow.find_choice_problems(
        blinds_the_witnesses)[0]

    def wipes_the_witnesses(candidates, data, vault):  # chooses on the test set, then wipes
        x, y = vault.open()
        test = {n: _accuracy(m, x, y) for n, m in candidates.items()}
        for model in candidates.values():
            getattr(model.get_layer("witness"), "seen", {}).clear()
        best = max(test, key=test.get)
        return best, test[best]

    assert "met the test set too" in workflow.find_choice_problems(wipes_the_witnesses)[0]

# --------------------------------------------------------------------------- tuning


def test_search_trials_panels_share_their_axes_and_count_the_learning_rates():
    fig = workflow.plot_search_trials({"grid": [(1e-3, 16), (1e-3, 64), (1e-2, 16)],
                                       "random": [(2e-3, 32), (5e-2, 128)]})
    left, right = fig.axes
    assert left.get_title() == "grid: 3 runs, 2 learning rates"
    assert left.get_shared_x_axes().joined(left, right)
    assert left.get_xscale() == "log" and left.get_yscale() == "log"
    with pytest.raises(ValueError, match="learning rate > 0"):
        workflow.plot_search_trials({"grid": [(0.0, 16)]})
