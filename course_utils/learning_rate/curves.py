"""Real loss curves of lesson 01's CNN at known learning rates, recorded once and shipped.

Lesson 01 asks the student to diagnose a learning rate from its training-loss curve
without giving thresholds: the grader checks the diagnosis on curves of real runs. Those
runs take minutes, so they are recorded once, in the ``cpu`` profile (the one laptops
get) with the lesson's own set-up, by :func:`record_loss_curves`, and shipped in
``course_utils/assets/lesson01_loss_curves.json``; :func:`load_loss_curves` reads them.

Only curves whose diagnosis is clear are shipped (:func:`is_clear`; the asset's ``about``
names the runs left out). Each curve is a list of training losses: the untrained model's loss (``ln 12``, every
class alike), then the loss of every epoch; a run whose loss turned NaN stops there (its
last value is ``nan``). Its label is what the rate is, known from the lesson's runs at
every seed: ``"too low"`` (flat), ``"good"`` (a steady fall) or ``"too high"``
(oscillating back up, or diverging).

Examples
--------
>>> curves = load_loss_curves()
>>> sorted({curve.label for curve in curves})
['good', 'too high', 'too low']
>>> curve = curves[0]
>>> round(curve.losses[0], 3), curve.profile
(2.485, 'cpu')
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable, Mapping
from importlib import resources
from typing import Any

import numpy as np

__all__ = ["LossCurve", "load_loss_curves", "load_record", "record_loss_curves", "is_clear",
           "CURVE_LABELS"]

#: The label of each shipped rate: what its curves show in the cpu profile (a run whose curve
#: does not show it clearly, :func:`is_clear`, is left out).
CURVE_LABELS: Mapping[float, str] = {
    1e-5: "too low", 3e-5: "too low", 1e-4: "too low",
    0.003: "good", 0.01: "good", 0.03: "good",
    0.1: "too high", 0.3: "too high", 1.0: "too high", 3.0: "too high",
}
#: The asset the curves are shipped in.
ASSET = "lesson01_loss_curves.json"


@dataclasses.dataclass(frozen=True)
class LossCurve:
    """One recorded run: its ``rate``, ``seed``, ``label`` and ``losses`` (first: before)."""

    rate: float
    seed: int
    label: str
    losses: tuple[float, ...]
    profile: str


def load_loss_curves() -> list[LossCurve]:
    """The shipped curves, in the order recorded (rate, then seed)."""
    record = load_record()
    return [LossCurve(rate=c["rate"], seed=c["seed"], label=c["label"],
                      losses=tuple(math.nan if v is None else float(v) for v in c["losses"]),
                      profile=record["profile"]) for c in record["curves"]]


def load_record() -> dict[str, Any]:
    """The shipped asset as :func:`record_loss_curves` wrote it (``curves``, ``left_out``,
    ``recorded_with``, the set-up), to compare with a new recording."""
    return json.loads(resources.files("course_utils").joinpath("assets", ASSET).read_text())


def is_clear(losses: Iterable[float | None], label: str) -> bool:
    """True if the curve ``losses`` (first: before training) shows ``label`` beyond doubt.

    Clear means well away from every border a reasonable diagnosis could draw, all
    relative to the first loss: ``"too low"`` ends at 90 % of it or more and never rises
    by 5 %; ``"good"`` ends at half of it or less, never rises by 5 % and ends within 2 %
    of its lowest; ``"too high"`` turns NaN or infinite, rises by 20 % in one epoch or
    ends 10 % above its lowest (a climb back).

    >>> is_clear([2.48, 2.11, 1.37, 1.05, 0.88, 1.33, 2.0], "too high")
    True
    >>> is_clear([2.48, 2.25, 1.69, 1.47, 1.44, 1.38, 1.45], "too high")  # a climb of 3 %
    False
    """
    if label not in set(CURVE_LABELS.values()):
        raise ValueError(f"label: expected one of {sorted(set(CURVE_LABELS.values()))}, "
                         f"got {label!r}")
    values = np.asarray([math.nan if v is None else v for v in losses], dtype=float)
    if values.ndim != 1 or not len(values) or not np.isfinite(values[0]):
        raise ValueError("losses: expected a list of losses, the first one (before training) "
                         f"finite, got {list(values)}")
    finite = values[np.isfinite(values)]
    first = float(values[0])
    rise = float(np.max(np.diff(finite), initial=0.0)) / first
    climb = float(finite[-1] - finite.min()) / first
    end = float(finite[-1]) / first
    if label == "too high":
        return len(finite) < len(values) or rise >= 0.2 or climb >= 0.1
    if len(finite) < len(values) or rise >= 0.05:
        return False
    if label == "too low":
        return end >= 0.9
    return end <= 0.5 and climb <= 0.02  # good


def record_loss_curves(profile: Any = "cpu", rates: Mapping[float, str] = CURVE_LABELS,
                       seeds: Iterable[int] | None = None) -> dict[str, Any]:
    """Train lesson 01's CNN once per rate and seed: the record :func:`load_loss_curves` reads.

    The set-up is the lesson's: a CNN of 2 blocks of 8 and 16 filters, SGD with momentum
    0.9, the lesson's epochs and images (:func:`_run_budget`), stopped when the loss turns
    NaN. Only the runs whose curve shows its rate's label clearly (:func:`is_clear`) are
    kept; ``left_out`` names the others, ``recorded_with`` the versions of the libraries
    that trained them. Writing the result as JSON to the asset ships it
    (``io.write_json(path, record_loss_curves())``): a new TensorFlow or Keras can change a
    run at a rate that is too high, and then the curves are recorded again.
    """
    import keras
    import tensorflow as tf

    from course_utils import datasets, fingers, labels, models, training
    from course_utils.runtime import profiles

    profile = profiles.get_profile(profile) if isinstance(profile, str) else profile
    seeds = list(profile.comparison_seeds if seeds is None else seeds)
    epochs, size = _run_budget(profile)
    data = fingers.load_fingers(profile, seed=profile.seed)
    x, y = data.x_train[:size], data.y_train[:size]
    initial = math.log(labels.NUM_CLASSES)

    @training.reuse_compiled_model
    def build(rate: float) -> Any:
        model = models.build_fingers_cnn(profile.input_shape, labels.NUM_CLASSES, width=8,
                                         depth=2)
        model.compile(optimizer=keras.optimizers.SGD(rate, momentum=0.9),
                      loss="sparse_categorical_crossentropy")
        return model

    curves, left_out = [], []
    for rate, label in rates.items():
        for seed in seeds:
            history = training.fit_model(
                lambda rate=rate: build(rate),
                lambda seed=seed: datasets.make_dataset(x, y, batch_size=profile.batch_size,
                                                        training=True, seed=seed),
                epochs=epochs, seed=seed, callbacks=[keras.callbacks.TerminateOnNaN()])
            losses = [initial, *(float(v) for v in history["loss"])]
            losses = [round(v, 6) if np.isfinite(v) else None for v in losses]
            if is_clear(losses, label):
                curves.append({"rate": rate, "seed": seed, "label": label, "losses": losses})
            else:
                left_out.append({"rate": rate, "seed": seed, "label": label})
    return {"profile": profile.name, "epochs": epochs, "train_size": size,
            "batch_size": profile.batch_size, "image_size": profile.image_size,
            "recorded_with": {"tensorflow": tf.__version__, "keras": keras.__version__,
                              "numpy": np.__version__},
            "about": "training losses of lesson 01's CNN (SGD, momentum 0.9) at each rate "
                     "and seed; the first loss is the untrained model's, ln 12; null is NaN "
                     "or infinite (the run stopped there). Only runs whose curve shows its "
                     "rate's label clearly are kept (is_clear); left_out names the others. "
                     "Written by course_utils.learning_rate.curves.record_loss_curves",
            "curves": curves, "left_out": left_out}


def _run_budget(profile: Any) -> tuple[int, int]:
    """Epochs and training images of a run of lesson 01 in ``profile``: the rule of its
    settings cell (``RUN_EPOCHS``, ``RUN_SIZE``), which ``tests/test_lesson01.py`` checks
    against this one in every profile."""
    return (max(profile.short_epochs, 3),
            min(profile.train_size // 3, 25 * profile.batch_size))
