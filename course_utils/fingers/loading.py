"""The data of a lesson: training, validation and test splits sized by a runtime profile.

Examples
--------
>>> data = load_fingers("smoke")
>>> data.image_size, len(data.y_train), len(data.y_val), len(data.y_test)
(32, 480, 120, 120)
"""

from __future__ import annotations

import os

import numpy as np

from course_utils.fingers.generator import make_fingers
from course_utils.fingers.layout import DataFolder, read_data_folder, resize_images
from course_utils.fingers.splits import FingersSplits, stratified_pick
from course_utils.fingers.style import DEFAULT_STYLE, FingersStyle
from course_utils.runtime import profiles, seeds
from course_utils.runtime.checks import check_scalar

__all__ = ["load_fingers"]


def load_fingers(
    profile: str | profiles.Profile | None = None,
    *,
    data_dir: str | os.PathLike[str] | DataFolder | None = None,
    seed: int | None = None,
    style: FingersStyle = DEFAULT_STYLE,
) -> FingersSplits:
    """Training, validation and test splits sized by a runtime profile.

    Without ``data_dir`` the images are synthetic (:func:`make_fingers`), each
    split drawn with its own seed derived from ``seed`` (default: the
    profile's), so no image is shared between splits.

    With ``data_dir`` the images come from a folder in the public layout
    (``train/`` and ``test/``, e.g. the real Kaggle set; or a :class:`DataFolder`
    read from one already): they are resized to
    the profile's image size, ``train/`` is split into training and validation
    data (stratified, in the profile's proportions) and ``test/`` is the test
    split. A folder holding more images than the profile asks for is
    subsampled (stratified, seeded) to the profile's sizes, so a run costs the
    same with real and with synthetic data; a smaller folder is used whole. Any
    count works, from 2 training images and 1 test image up (with fewer validation
    images than classes, some classes are missing from validation).

    Raises ``ValueError`` for an unknown profile or fewer than 2 training images,
    and the errors of :func:`load_public_layout` (naming the file and what was
    expected) for a folder that does not follow the layout.

    Examples
    --------
    >>> data = load_fingers("smoke", seed=7)
    >>> data.x_val.shape, data.y_test.dtype
    ((120, 32, 32), dtype('int64'))
    """
    prof = profile if isinstance(profile, profiles.Profile) else profiles.get_profile(profile)
    seed = prof.seed if seed is None else check_scalar(seed, "seed", int, min_val=0)
    if data_dir is None:
        s_train, s_val, s_test = seeds.derive_seeds(seed, 42, count=3)  # one seed per split
        size = prof.image_size
        x_train, y_train = make_fingers(prof.train_size, image_size=size, seed=s_train, style=style)
        x_val, y_val = make_fingers(prof.val_size, image_size=size, seed=s_val, style=style)
        x_test, y_test = make_fingers(prof.test_size, image_size=size, seed=s_test, style=style)
        return FingersSplits(x_train, y_train, x_val, y_val, x_test, y_test)

    folder = data_dir if isinstance(data_dir, DataFolder) else read_data_folder(data_dir)
    budget = prof.train_size + prof.val_size
    rng = seeds.make_rng(seed)
    keep = stratified_pick(folder.y_train, min(budget, len(folder.y_train)), rng)
    x_all, y_all = resize_images(folder.x_train[keep], prof.image_size), folder.y_train[keep]
    keep = stratified_pick(folder.y_test, min(prof.test_size, len(folder.y_test)), rng)
    x_test, y_test = resize_images(folder.x_test[keep], prof.image_size), folder.y_test[keep]
    n_val = min(max(round(len(y_all) * prof.val_size / budget), 1), len(y_all) - 1)
    val = stratified_pick(y_all, n_val, rng)
    train = np.setdiff1d(np.arange(len(y_all)), val)
    return FingersSplits(x_all[train], y_all[train], x_all[val], y_all[val], x_test, y_test)
