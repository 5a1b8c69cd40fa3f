"""The synthetic fingers generator, the public on-disk layout and `course data`."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from course_utils import fingers, labels
from course_utils.instructor import cli
from course_utils.runtime import profiles

SIZE = 32  # the smoke profile's image size


def _write_png(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    image = Image.fromarray(array)
    if mode is not None:
        image = image.convert(mode)
    image.save(path, format="PNG")
    return path


def _gray(size: int = SIZE, value: int = 100) -> np.ndarray:
    return np.full((size, size), value, np.uint8)


# --- generator -------------------------------------------------------------


def test_same_seed_gives_the_same_bytes_and_another_seed_other_images():
    x1, y1 = fingers.make_fingers(50, image_size=SIZE, seed=3)
    x2, y2 = fingers.make_fingers(50, image_size=SIZE, seed=3)
    x3, y3 = fingers.make_fingers(50, image_size=SIZE, seed=4)
    assert x1.tobytes() == x2.tobytes() and y1.tobytes() == y2.tobytes()
    assert x1.tobytes() != x3.tobytes()
    assert not np.array_equal(y1, y3), "another seed should also shuffle the labels differently"


def test_output_does_not_depend_on_the_chunk_rendering_order(monkeypatch):
    """Chunks render in threads; one worker must give the very same images."""
    parallel, _ = fingers.make_fingers(200, image_size=SIZE, seed=5)
    monkeypatch.setattr(fingers.generator, "_MAX_WORKERS", 1)
    serial, _ = fingers.make_fingers(200, image_size=SIZE, seed=5)
    assert parallel.tobytes() == serial.tobytes()


def test_images_are_uint8_squares_using_the_grey_range_and_labels_are_int64_classes():
    x, y = fingers.make_fingers(36, image_size=48, seed=0)
    assert x.shape == (36, 48, 48) and x.dtype == np.uint8
    assert y.shape == (36,) and y.dtype == np.int64
    assert set(y.tolist()) == set(range(labels.NUM_CLASSES))
    assert x.min() < 40 and x.max() > 200, "dark background and light hand expected"
    # A light hand on a dark background: the image centre is brighter than its corners.
    centre = x[:, 16:32, 16:32].mean()
    corners = np.concatenate([x[:, :6, :6], x[:, :6, -6:]]).mean()
    assert centre > corners + 60


@pytest.mark.parametrize("n", [0, 11, 12, 30, 100])
def test_classes_are_balanced_with_the_remainder_on_distinct_classes(n):
    _, y = fingers.make_fingers(n, image_size=16, seed=1)
    counts = np.bincount(y, minlength=labels.NUM_CLASSES)
    assert counts.sum() == n
    assert counts.min() == n // 12 and counts.max() <= n // 12 + 1
    assert np.count_nonzero(counts == n // 12 + 1) == n % 12


def test_labels_are_shuffled_not_grouped_by_class():
    _, y = fingers.make_fingers(120, image_size=16, seed=2)
    assert np.count_nonzero(np.diff(y) == 0) < 30
    assert not np.array_equal(y, np.sort(y))


def test_alt_style_draws_dark_hands_on_a_light_background():
    default, _ = fingers.make_fingers(24, image_size=SIZE, seed=0)
    alt, _ = fingers.make_fingers(24, image_size=SIZE, seed=0, style=fingers.ALT_STYLE)
    assert default.mean() < 110 < alt.mean()
    centre = alt[:, 10:22, 10:22].mean()
    corners = np.concatenate([alt[:, :4, :4], alt[:, :4, -4:]]).mean()
    assert centre < corners - 60


def test_the_hand_of_every_count_is_visible_in_the_class_means():
    """A mirrored left hand looks like a right hand with the same count, not like a left one.

    Class-mean images of many hands: flipping the mean left hand of a count
    lands much closer to the mean right hand of that count than to itself.
    """
    x, y = fingers.make_fingers(2400, image_size=SIZE, seed=11)
    x = x.astype(np.float32)
    for count in range(labels.NUM_COUNTS):
        left = x[y == labels.encode(count, "L")].mean(axis=0)
        right = x[y == labels.encode(count, "R")].mean(axis=0)
        mirrored = left[:, ::-1]
        to_right = np.linalg.norm(mirrored - right)
        to_left = np.linalg.norm(mirrored - left)
        assert to_right < 0.7 * to_left, f"count {count}: {to_right:.0f} vs {to_left:.0f}"


def test_most_mirrored_left_hands_are_closer_to_the_right_class_mean():
    x, y = fingers.make_fingers(2400, image_size=SIZE, seed=12)
    means = np.stack([x[y == c].mean(axis=0) for c in range(labels.NUM_CLASSES)])
    x_new, y_new = fingers.make_fingers(240, image_size=SIZE, seed=13)
    is_left = y_new % 2 == 0
    mirrored = x_new[is_left][:, :, ::-1].astype(np.float32)
    y_left = y_new[is_left]
    to_right = ((mirrored - means[labels.mirror(y_left)]) ** 2).sum(axis=(1, 2))
    to_left = ((mirrored - means[y_left]) ** 2).sum(axis=(1, 2))
    assert (to_right < to_left).mean() > 0.6


def test_finger_count_changes_the_amount_of_hand():
    """More raised fingers, more light pixels (same look otherwise on average)."""
    x, y = fingers.make_fingers(1200, image_size=SIZE, seed=21, style=dataclasses.replace(
        fingers.DEFAULT_STYLE, noise=(0.0, 0.0), background=(0.1, 0.1), hand=(0.9, 0.9),
        gradient=0.0, shading=(0.0, 0.0),
    ))
    bright = (x > 128).mean(axis=(1, 2))
    by_count = [bright[labels.to_count(y) == c].mean() for c in range(labels.NUM_COUNTS)]
    assert all(a < b for a, b in zip(by_count, by_count[1:], strict=False)), by_count


@pytest.mark.parametrize(
    "kwargs, message",
    [({"n": -1}, "n"), ({"n": 2.5}, "n"), ({"n": 4, "image_size": 4}, "image_size"),
     ({"n": 4, "seed": -3}, "seed"), ({"n": 4, "style": "dark"}, "style")],
)
def test_make_fingers_rejects_bad_arguments_by_name(kwargs, message):
    with pytest.raises(ValueError, match=rf"^{message}: expected "):
        fingers.make_fingers(**kwargs)


@pytest.mark.parametrize(
    "field, value", [("noise", (0.1, 0.0)), ("hand", (0.5, 1.5)), ("scale", (0.0, 1.0)),
                     ("random_gesture", 2.0), ("finger_length", 1.0), ("rotation", -5.0)],
)
def test_style_rejects_bad_ranges_naming_the_field(field, value):
    with pytest.raises(ValueError, match=rf"^FingersStyle\.{field}: expected "):
        fingers.FingersStyle(**{field: value})


# --- splits ----------------------------------------------------------------


def test_load_fingers_sizes_splits_by_profile_and_keeps_them_disjoint():
    smoke = profiles.get_profile("smoke")
    data = fingers.load_fingers("smoke")
    assert data.image_size == smoke.image_size
    assert data.x_train.shape == (smoke.train_size, SIZE, SIZE)
    assert (len(data.y_val), len(data.y_test)) == (smoke.val_size, smoke.test_size)
    train = {image.tobytes() for image in data.x_train}
    assert not any(image.tobytes() in train for image in data.x_test)
    assert not any(image.tobytes() in train for image in data.x_val)
    again = fingers.load_fingers(smoke)
    assert again.x_test.tobytes() == data.x_test.tobytes()
    other = fingers.load_fingers("smoke", seed=smoke.seed + 1)
    assert other.x_train.tobytes() != data.x_train.tobytes()


# --- public layout ---------------------------------------------------------


def test_export_then_load_gives_back_the_same_arrays_in_order(tmp_path):
    data = fingers.load_fingers("smoke")
    out = fingers.export_public_layout(tmp_path / "fingers", data)
    x_train, y_train = fingers.load_public_layout(out / "train")
    x_test, y_test = fingers.load_public_layout(out / "test")
    np.testing.assert_array_equal(x_train, np.concatenate([data.x_train, data.x_val]))
    np.testing.assert_array_equal(y_train, np.concatenate([data.y_train, data.y_val]))
    np.testing.assert_array_equal(x_test, data.x_test)
    np.testing.assert_array_equal(y_test, data.y_test)
    names = sorted(p.name for p in (out / "test").iterdir())
    assert names[0] == f"00000_{labels.CLASS_NAMES[data.y_test[0]]}.png"
    assert all(labels.parse_filename(name) for name in names)
    assert [p.name for p in tmp_path.iterdir()] == ["fingers"], "temporary folders left behind"


def test_load_fingers_reads_an_exported_folder_like_the_real_set(tmp_path):
    x, y = fingers.make_fingers(96, image_size=48, seed=1)
    x_test, y_test = fingers.make_fingers(24, image_size=48, seed=2)
    folder = fingers.export_public_layout(
        tmp_path / "real", {"train": (x, y), "test": (x_test, y_test)}
    )
    tiny = profiles.Profile(name="tiny", image_size=16, train_size=36, val_size=12, test_size=100,
                            batch_size=8, epochs=1, short_epochs=1, few_shot_per_class=2,
                            few_shot_epochs=2, seed=3)
    data = fingers.load_fingers(tiny, data_dir=folder)
    assert data.image_size == 16
    # 96 training images are more than 36 + 12: a stratified subsample of 48, split 36 / 12.
    assert (len(data.y_train), len(data.y_val)) == (36, 12)
    assert np.bincount(data.y_val).tolist() == [1] * 12
    assert np.bincount(np.concatenate([data.y_train, data.y_val])).tolist() == [4] * 12
    # 24 test images are fewer than 100: all are used.
    assert np.array_equal(data.y_test, y_test)


def test_export_refuses_a_non_empty_folder_unless_overwrite(tmp_path):
    x, y = fingers.make_fingers(12, image_size=16)
    target = tmp_path / "out"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not empty") as info:
        fingers.export_public_layout(target, {"train": (x, y), "test": (x, y)})
    assert str(target) in str(info.value)
    assert (target / "notes.txt").read_text() == "keep me"
    fingers.export_public_layout(target, {"train": (x, y), "test": (x[:3], y[:3])}, overwrite=True)
    assert sorted(p.name for p in target.iterdir()) == ["test", "train"]
    assert len(list((target / "test").iterdir())) == 3
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_an_export_that_fails_midway_leaves_no_folder_behind(tmp_path, monkeypatch):
    x, y = fingers.make_fingers(24, image_size=16)
    calls = {"n": 0}
    real = labels.format_filename

    def failing(image_id, label):
        calls["n"] += 1
        if calls["n"] == 10:
            raise OSError("disk full")
        return real(image_id, label)

    monkeypatch.setattr(labels, "format_filename", failing)
    with pytest.raises(OSError, match="disk full"):
        fingers.export_public_layout(tmp_path / "fingers", {"train": (x, y), "test": (x, y)})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "data, message",
    [({"train": (np.zeros((2, 8, 8), np.uint8), np.array([0, 1]))}, "keys 'train' and 'test'"),
     ({"train": (np.zeros((2, 8, 8)), np.array([0, 1])),
       "test": (np.zeros((2, 8, 8), np.uint8), np.array([0, 1]))}, "uint8"),
     ({"train": (np.zeros((2, 8, 8), np.uint8), np.array([0, 12])),
       "test": (np.zeros((2, 8, 8), np.uint8), np.array([0, 1]))}, r"expected class indices in 0\.\.11, got 12"),
     ({"train": (np.zeros((2, 8, 8), np.uint8), np.array([0])),
       "test": (np.zeros((2, 8, 8), np.uint8), np.array([0, 1]))}, "one label per image")],
)
def test_export_validates_what_it_writes(tmp_path, data, message):
    with pytest.raises(ValueError, match=message):
        fingers.export_public_layout(tmp_path / "out", data)
    assert not (tmp_path / "out").exists()


def test_loading_a_missing_folder_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="folder not found") as info:
        fingers.load_public_layout(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(info.value)


def test_loading_a_folder_without_png_files_says_so(tmp_path):
    (tmp_path / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    with pytest.raises(ValueError, match="no PNG files") as info:
        fingers.load_public_layout(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_loading_the_parent_folder_points_to_its_sub_folders(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "test").mkdir()
    with pytest.raises(ValueError, match="sub-folders test, train"):
        fingers.load_public_layout(tmp_path)


def test_non_png_and_hidden_files_are_ignored(tmp_path):
    _write_png(tmp_path / "a_1L.png", _gray(value=10))
    _write_png(tmp_path / "b_2R.PNG", _gray(value=20))
    (tmp_path / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (tmp_path / "._a_1L.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    (tmp_path / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")
    (tmp_path / "sub").mkdir()
    x, y = fingers.load_public_layout(tmp_path)
    assert y.tolist() == [labels.encode(1, "L"), labels.encode(2, "R")]
    assert x[:, 0, 0].tolist() == [10, 20]


@pytest.mark.parametrize("name", ["hand.png", "abc_3.png", "abc_3X.png", "abc-3L.png"])
def test_a_file_name_that_breaks_the_scheme_is_named_with_the_expected_pattern(tmp_path, name):
    _write_png(tmp_path / "ok_1L.png", _gray())
    _write_png(tmp_path / name, _gray())
    with pytest.raises(ValueError, match=r"<count><L\|R>|L or R") as info:
        fingers.load_public_layout(tmp_path)
    assert name in str(info.value)


def test_a_label_out_of_range_is_named(tmp_path):
    _write_png(tmp_path / "ok_1L.png", _gray())
    _write_png(tmp_path / "abc_7L.png", _gray())
    with pytest.raises(ValueError, match="expected a count in 0..5, got 7") as info:
        fingers.load_public_layout(tmp_path)
    assert "abc_7L.png" in str(info.value) and "0..5" in str(info.value)


def test_a_truncated_png_is_named(tmp_path):
    _write_png(tmp_path / "ok_1L.png", _gray())
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (SIZE, SIZE), np.uint8)).save(
        buffer, format="PNG"
    )
    (tmp_path / "cut_2R.png").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(ValueError, match="not a readable PNG") as info:
        fingers.load_public_layout(tmp_path)
    assert "cut_2R.png" in str(info.value)


def test_a_jpeg_named_png_is_rejected(tmp_path):
    Image.fromarray(_gray()).save(tmp_path / "fake_1L.png", format="JPEG")
    with pytest.raises(ValueError, match="JPEG image") as info:
        fingers.load_public_layout(tmp_path)
    assert "fake_1L.png" in str(info.value)


def test_an_image_of_another_size_is_named_with_the_expected_size(tmp_path):
    _write_png(tmp_path / "a_1L.png", _gray(32))
    _write_png(tmp_path / "b_1R.png", _gray(40))
    with pytest.raises(ValueError, match="40x40 pixels; expected 32x32") as info:
        fingers.load_public_layout(tmp_path, image_size=16)
    assert "b_1R.png" in str(info.value)


def test_a_non_square_image_is_named(tmp_path):
    _write_png(tmp_path / "a_1L.png", np.zeros((32, 48), np.uint8))
    with pytest.raises(ValueError, match="48x32 pixels; expected a square") as info:
        fingers.load_public_layout(tmp_path)
    assert "a_1L.png" in str(info.value)


def test_colour_and_16_bit_pngs_are_read_as_grayscale(tmp_path):
    gray = np.random.default_rng(1).integers(0, 256, (SIZE, SIZE), np.uint8)
    _write_png(tmp_path / "a_0L.png", gray, mode="RGB")
    _write_png(tmp_path / "b_0R.png", gray, mode="RGBA")
    Image.fromarray(gray.astype(np.uint16) * 257).save(tmp_path / "c_1L.png", format="PNG")
    x, y = fingers.load_public_layout(tmp_path)
    assert x.dtype == np.uint8 and x.shape == (3, SIZE, SIZE)
    for image in x:
        np.testing.assert_array_equal(image, gray)
    assert y.tolist() == [0, 1, 2]


def test_loading_resizes_to_the_requested_size(tmp_path):
    _write_png(tmp_path / "a_1L.png", _gray(64, value=200))
    x, _ = fingers.load_public_layout(tmp_path, image_size=32)
    assert x.shape == (1, 32, 32) and (x == 200).all()


# --- command line ----------------------------------------------------------


def test_course_data_exports_the_profile_and_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "data"
    assert cli.main(["data", "--profile", "smoke", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    smoke = profiles.get_profile("smoke")
    n_train, n_test = smoke.train_size + smoke.val_size, smoke.test_size
    assert f"{n_train} files" in printed and f"{n_test} files" in printed and str(out) in printed
    assert len(list((out / "train").glob("*.png"))) == n_train
    assert len(list((out / "test").glob("*.png"))) == n_test

    assert cli.main(["data", "--profile", "smoke", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--overwrite" in err and str(out) in err and "Traceback" not in err

    assert cli.main(["data", "--profile", "smoke", "--out", str(out), "--overwrite",
                     "--seed", "5"]) == 0
    x, _ = fingers.load_public_layout(out / "test")
    reference = fingers.load_fingers("smoke", seed=5)
    np.testing.assert_array_equal(x, reference.x_test)


def test_course_data_reports_a_bad_seed_without_a_traceback(tmp_path, capsys):
    assert cli.main(["data", "--profile", "smoke", "--out", str(tmp_path / "d"),
                     "--seed", "-1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("course data: error: seed") and "Traceback" not in err


def test_load_fingers_names_a_missing_data_folder_or_split(tmp_path):
    with pytest.raises(FileNotFoundError, match="train/ and test/") as info:
        fingers.load_fingers("smoke", data_dir=tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(info.value)
    x, y = fingers.make_fingers(24, image_size=16)
    fingers.export_public_layout(tmp_path / "set", {"train": (x, y), "test": (x, y)})
    for child in (tmp_path / "set" / "test").iterdir():
        child.unlink()
    (tmp_path / "set" / "test").rmdir()
    with pytest.raises(FileNotFoundError) as info:
        fingers.load_fingers("smoke", data_dir=tmp_path / "set")
    assert str(tmp_path / "set" / "test") in str(info.value)


@pytest.mark.parametrize("extra", [1, 5, 11, 12])
def test_a_folder_with_a_few_more_images_than_the_profile_uses_is_subsampled(tmp_path, extra):
    # 1 to 11 images more than the smoke profile uses (fewer than the 12 classes) once
    # failed inside scikit-learn ("test_size = 1 should be greater or equal to ...").
    smoke = profiles.get_profile("smoke")
    x, y = fingers.make_fingers(smoke.train_size + smoke.val_size + extra, image_size=16, seed=1)
    x_test, y_test = fingers.make_fingers(smoke.test_size + extra, image_size=16, seed=2)
    folder = fingers.export_public_layout(tmp_path / "set", {"train": (x, y),
                                                             "test": (x_test, y_test)})
    data = fingers.load_fingers(smoke, data_dir=folder)
    assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (
        smoke.train_size, smoke.val_size, smoke.test_size)
    assert np.bincount(data.y_val, minlength=12).min() >= smoke.val_size // 12 - 1


@pytest.mark.parametrize(("n_train", "n_test"), [(2, 1), (7, 3), (30, 200)])
def test_any_folder_that_can_be_split_is_used_whole(tmp_path, n_train, n_test):
    x, y = fingers.make_fingers(n_train, image_size=16, seed=1)
    x_test, y_test = fingers.make_fingers(n_test, image_size=16, seed=2)
    folder = fingers.export_public_layout(tmp_path / "set", {"train": (x, y),
                                                             "test": (x_test, y_test)})
    data = fingers.load_fingers("smoke", data_dir=folder)
    assert len(data.y_train) + len(data.y_val) == n_train and len(data.y_val) >= 1
    assert len(data.y_train) >= 1 and len(data.y_test) == min(n_test, 120)


def test_a_folder_that_cannot_be_split_names_it_and_what_was_expected(tmp_path):
    x, y = fingers.make_fingers(1, image_size=16, seed=1)
    folder = fingers.export_public_layout(tmp_path / "set", {"train": (x, y), "test": (x, y)})
    with pytest.raises(ValueError, match="expected at least 2") as info:
        fingers.load_fingers("smoke", data_dir=folder)
    assert str(folder / "train") in str(info.value)


def test_the_exported_folder_gets_the_permissions_the_umask_allows(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        x, y = fingers.make_fingers(12, image_size=16)
        out = fingers.export_public_layout(tmp_path / "set", {"train": (x, y), "test": (x, y)})
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o755, oct(out.stat().st_mode)
