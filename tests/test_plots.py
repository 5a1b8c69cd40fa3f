"""Figures: learning curves, confusion matrix, image grid, atomic PNG saving."""

import subprocess
import sys

import numpy as np
import pytest
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

from course_utils import labels, plots
from course_utils.runtime import io

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def history(epochs=3, *, start=1.0, val=True, accuracy=True):
    h = {"loss": [start / (e + 1) for e in range(epochs)]}
    if accuracy:
        h["accuracy"] = [0.3 + 0.1 * e for e in range(epochs)]
    if val:
        h["val_loss"] = [v + 0.1 for v in h["loss"]]
        if accuracy:
            h["val_accuracy"] = [v - 0.05 for v in h["accuracy"]]
    return h


# ---------------------------------------------------------------- plot_history


def test_plot_history_draws_one_axis_per_metric_and_train_solid_validation_dashed():
    fig = plots.plot_history({"small": history(), "big": history(start=2.0)})
    assert isinstance(fig, Figure)
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy"]
    for ax, metric in zip(fig.axes, ["loss", "accuracy"], strict=True):
        assert [line.get_label() for line in ax.lines] == [
            "small train", "small validation", "big train", "big validation"
        ]
        assert [line.get_linestyle() for line in ax.lines] == ["-", "--", "-", "--"]
        legend = ax.get_legend()
        assert legend is not None
        assert [t.get_text() for t in legend.get_texts()] == [line.get_label() for line in ax.lines]
        np.testing.assert_allclose(ax.lines[2].get_ydata(), history(start=2.0)[metric])


def test_plot_history_keeps_one_colour_per_run_across_axes():
    fig = plots.plot_history({"a": history(), "b": history(), "c": history()})
    colours = [[to_rgba(line.get_color()) for line in ax.lines] for ax in fig.axes]
    for per_axis in colours:
        assert per_axis[0::2] == per_axis[1::2], "train and validation of a run share a colour"
        assert len(set(per_axis[0::2])) == 3, "each run has its own colour"
    assert colours[0] == colours[1], "a run has the same colour in every axis"
    assert colours[0][0] == to_rgba("C0") and colours[0][2] == to_rgba("C1")


def test_plot_history_reads_the_training_monitor_json_with_its_epochs(tmp_path):
    saved = {"epoch": [4, 5, 6], **history(), "lr": [1e-3, 1e-3, 5e-4]}
    saved["val_loss"][1] = float("nan")  # the monitor writes NaN for a missing value
    path = io.write_json(tmp_path / "run" / "history.json", saved)
    fig = plots.plot_history({"resumed": path}, metrics=["loss", "lr"])
    assert len(fig.axes) == 2
    loss_train, loss_val = fig.axes[0].lines
    np.testing.assert_array_equal(loss_train.get_xdata(), [4, 5, 6])
    assert np.isnan(loss_val.get_ydata()[1])
    assert [line.get_linestyle() for line in fig.axes[1].lines] == ["-"], "lr has no val_ curve"
    # A str path works as well as a Path.
    assert len(plots.plot_history({"r": str(path)}, metrics=["loss"]).axes[0].lines) == 2


def test_plot_history_takes_a_keras_history_counting_epochs_from_one():
    from course_utils.runtime.tf_setup import import_keras, set_seed

    keras = import_keras()
    set_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x = np.random.default_rng(0).random((16, 4), dtype=np.float32)
    y = np.arange(16) % 3
    fit = model.fit(x, y, validation_data=(x, y), epochs=3, initial_epoch=1, verbose=0)
    fig = plots.plot_history({"keras": fit})
    train, val = fig.axes[0].lines
    np.testing.assert_array_equal(train.get_xdata(), [2, 3])
    np.testing.assert_allclose(train.get_ydata(), fit.history["loss"])
    np.testing.assert_allclose(val.get_ydata(), fit.history["val_loss"])
    assert fig.axes[1].get_ylim() == (0.0, 1.02), "accuracy axes span 0 to 1"


def test_plot_history_names_the_run_and_its_keys_when_a_metric_is_missing():
    runs = {"ok": history(), "no_accuracy": history(accuracy=False)}
    with pytest.raises(ValueError) as info:
        plots.plot_history(runs)
    message = str(info.value)
    assert "'no_accuracy'" in message and "'accuracy'" in message
    assert "available: loss, val_loss" in message


def test_plot_history_explains_how_to_pass_a_single_history():
    with pytest.raises(TypeError, match=r"wrap it: \{'my run': history\}"):
        plots.plot_history(history())
    with pytest.raises(TypeError, match=r"run 'x': expected a keras History"):
        plots.plot_history({"x": 42})
    with pytest.raises(ValueError, match=r"runs: expected at least one"):
        plots.plot_history({})
    with pytest.raises(ValueError, match=r"metrics: expected at least one metric name"):
        plots.plot_history({"x": history()}, metrics=[])


def test_plot_history_reports_a_missing_or_malformed_history_file(tmp_path):
    missing = tmp_path / "nope" / "history.json"
    with pytest.raises(FileNotFoundError, match=r"nope/history.json: history file of run 'gone'"):
        plots.plot_history({"gone": missing})
    uneven = io.write_json(tmp_path / "uneven.json", {"loss": [1.0, 0.5], "val_loss": [1.0]})
    with pytest.raises(ValueError, match=r"uneven.json \(run 'u'\): expected one value per epoch in every list"):
        plots.plot_history({"u": uneven}, metrics=["loss"])
    words = io.write_json(tmp_path / "words.json", {"loss": ["low", "high"]})
    with pytest.raises(ValueError, match=r"'loss': expected a list of numbers, one per epoch"):
        plots.plot_history({"w": words}, metrics=["loss"])


# ------------------------------------------------------- plot_confusion_matrix


def test_plot_confusion_matrix_writes_every_count_in_its_cell():
    rng = np.random.default_rng(0)
    cm = rng.integers(0, 20, size=(12, 12))
    fig = plots.plot_confusion_matrix(cm)
    ax = fig.axes[0]
    assert len(fig.axes) == 2, "the matrix and its colour bar"
    texts = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts}
    assert len(texts) == 144
    assert all(texts[i, j] == str(cm[i, j]) for i in range(12) for j in range(12))
    assert [t.get_text() for t in ax.get_xticklabels()] == list(labels.CLASS_NAMES)
    assert [t.get_text() for t in ax.get_yticklabels()] == list(labels.CLASS_NAMES)
    assert ax.get_xlabel() == "predicted class" and ax.get_ylabel() == "true class"
    np.testing.assert_array_equal(ax.images[0].get_array(), cm)


def test_plot_confusion_matrix_normalises_rows_and_leaves_empty_rows_at_zero():
    cm = np.array([[3, 1], [0, 0]])
    fig = plots.plot_confusion_matrix(cm, ["left", "right"], normalize=True)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == ["0.75", "0.25", "0.00", "0.00"]
    np.testing.assert_allclose(ax.images[0].get_array(), [[0.75, 0.25], [0.0, 0.0]])
    assert "normalised" in ax.get_title()


def test_plot_confusion_matrix_rejects_names_that_do_not_match():
    with pytest.raises(ValueError, match=r"class_names: expected one name per class \(3\)"):
        plots.plot_confusion_matrix(np.eye(3, dtype=int))
    with pytest.raises(ValueError, match=r"cm: expected a square 2-D matrix"):
        plots.plot_confusion_matrix(np.ones((2, 3)), ["a", "b"])


# ------------------------------------------------------------------ plot_images


def test_plot_images_draws_uint8_images_titled_with_class_names():
    images = np.random.default_rng(0).integers(0, 256, size=(10, 16, 16), dtype=np.uint8)
    y = np.arange(10)
    fig = plots.plot_images(images, y, ncols=4)
    assert len(fig.axes) == 10
    assert [ax.get_title() for ax in fig.axes] == [labels.CLASS_NAMES[i] for i in y]
    assert fig.axes[0].get_subplotspec().get_gridspec().get_geometry() == (3, 4)
    np.testing.assert_array_equal(fig.axes[3].images[0].get_array(), images[3])
    assert fig.axes[0].images[0].get_clim() == (0, 255)


def test_plot_images_accepts_float_batches_from_the_pipeline():
    images = np.random.default_rng(1).random((3, 8, 8, 1), dtype=np.float32)
    fig = plots.plot_images(images)
    assert len(fig.axes) == 3
    assert [ax.get_title() for ax in fig.axes] == ["", "", ""]
    assert fig.axes[0].images[0].get_array().shape == (8, 8)
    assert fig.axes[0].images[0].get_clim() == (0, 1.0)


def test_plot_images_marks_wrong_predictions_in_red():
    images = np.zeros((3, 8, 8), dtype=np.uint8)
    fig = plots.plot_images(images, [0, 7, 11], predictions=[0, 6, 11])
    titles = [ax.title for ax in fig.axes]
    assert [t.get_text() for t in titles] == ["0L", "3L (true 3R)", "5R"]
    assert [to_rgba(t.get_color()) for t in titles] == [
        to_rgba("black"), to_rgba("red"), to_rgba("black")
    ]
    frames = [all(s.get_visible() for s in ax.spines.values()) for ax in fig.axes]
    assert frames == [False, True, False]


@pytest.mark.parametrize(
    ("images", "kwargs", "message"),
    [
        (np.zeros((2, 8, 8, 3), np.uint8), {}, r"images: expected shape \(n, size, size\)"),
        (np.zeros((0, 8, 8), np.uint8), {}, r"images: expected at least one image"),
        (np.full((2, 8, 8), 255.0), {}, r"images: expected float pixels in \[0, 1\], got values from 255"),
        (np.zeros((2, 8, 8), np.int32), {}, r"images: expected uint8 \(0..255\) or float"),
        (np.zeros((plots.MAX_IMAGES + 1, 2, 2), np.uint8), {}, r"pass a slice such as images\[:32\]"),
        (np.zeros((2, 8, 8), np.uint8), {"labels": [0]}, r"labels: expected one class index per image \(2\), got 1"),
        (np.zeros((2, 8, 8), np.uint8), {"labels": [0, 12]}, r"labels: expected class indices in 0..11, got 12"),
        (np.zeros((2, 8, 8), np.uint8), {"predictions": [0, 1, 2]}, r"predictions: expected one class index per image"),
        (np.zeros((2, 8, 8), np.uint8), {"ncols": 0}, r"ncols: expected a whole number >= 1, got 0"),
    ],
)
def test_plot_images_rejects_bad_input(images, kwargs, message):
    with pytest.raises(ValueError, match=message):
        plots.plot_images(images, **kwargs)


# ------------------------------------------------------------------ save_figure


def test_save_figure_writes_a_png_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "figures" / "curves.png"
    fig = plots.plot_history({"run": history()})
    assert plots.save_figure(fig, target) == target
    data = target.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 1000
    assert [p.name for p in target.parent.iterdir()] == ["curves.png"]
    from PIL import Image

    with Image.open(target) as image:
        image.verify()
        assert image.size == (1000, 380), "figsize (10, 3.8) at 100 dpi"


def test_save_figure_replaces_an_old_png_only_when_the_new_one_is_complete(tmp_path, monkeypatch):
    target = tmp_path / "cm.png"
    plots.save_figure(plots.plot_confusion_matrix(np.eye(12, dtype=int)), target)
    old = target.read_bytes()
    fig = plots.plot_confusion_matrix(np.ones((12, 12), dtype=int))

    def crash(path, **kwargs):
        path.write_bytes(PNG_SIGNATURE)  # half an image, then the process is interrupted
        raise KeyboardInterrupt

    monkeypatch.setattr(fig, "savefig", crash)
    with pytest.raises(KeyboardInterrupt):
        plots.save_figure(fig, target)
    assert target.read_bytes() == old
    assert [p.name for p in tmp_path.iterdir()] == ["cm.png"]


def test_save_figure_rejects_other_formats_and_non_figures(tmp_path):
    fig = plots.plot_history({"run": history()})
    with pytest.raises(ValueError, match=r"curves.jpg: expected a path ending with .png"):
        plots.save_figure(fig, tmp_path / "curves.jpg")
    with pytest.raises(TypeError, match=r"fig: expected a matplotlib Figure, got dict"):
        plots.save_figure({}, tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------- the module


def test_figures_are_built_without_pyplot_or_tensorflow(tmp_path):
    probe = f"""
import sys
import numpy as np
from course_utils import plots
plots.save_figure(plots.plot_history({{"r": {{"loss": [1.0, 0.5]}}}}, metrics=["loss"]),
                  {str(tmp_path / "h.png")!r})
plots.plot_confusion_matrix(np.eye(12, dtype=int))
plots.plot_images(np.zeros((2, 4, 4), np.uint8), [0, 1])
print([m for m in ("matplotlib.pyplot", "tensorflow", "keras") if m in sys.modules])
"""
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert (tmp_path / "h.png").read_bytes().startswith(PNG_SIGNATURE)


def test_plot_over_seeds_draws_every_seed_and_the_mean_on_shared_log_axes():
    runs = {name: {seed: {"loss": [2.0 - k - seed / 10, 1.0 - k / 2], "val_loss": [2.1, 1.5]}
                   for seed in range(3)}
            for k, name in enumerate(("gradient descent", "momentum"))}
    fig = plots.plot_over_seeds(runs, colors={"momentum": "C0"})
    left, right = fig.axes
    assert [ax.get_title() for ax in fig.axes] == ["training loss", "validation loss"]
    assert left.get_yscale() == right.get_yscale() == "log"
    assert left.get_shared_y_axes().joined(left, right)
    assert left.get_xlabel() == right.get_xlabel() == "epoch"
    assert len(left.lines) == 2 * (3 + 1)  # three seeds and the mean, per run
    means = [line for line in left.lines if line.get_label().endswith("(mean of 3 seeds)")]
    assert [line.get_color() for line in means] == ["C1", "C0"]  # given, then the next free
    np.testing.assert_allclose(means[0].get_ydata(), [1.9, 1.0])
    with pytest.raises(ValueError, match="runs"):
        plots.plot_over_seeds({})
