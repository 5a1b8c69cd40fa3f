"""Real loss curves of lesson 01's CNN at known learning rates, recorded once and shipped.

Lesson 01 asks the student to diagnose a learning rate from its training-loss curve
without giving thresholds: the grader checks the diagnosis on curves of real runs. Those
runs take minutes, so they are recorded once, in the ``cpu`` profile (the one laptops
get) with the lesson's own set-up, by :func:`record_loss_curves`, and shipped in
``course_utils/assets/lesson01_loss_curves.json``; :func:`load_loss_curves` reads them.

Only curves whose diagnosis is clear are shipped (the asset's ``about`` says which were left
out and why). Each curve is a list of training losses: the untrained model's loss (``ln 12``, every
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

__all__ = ["LossCurve", "load_loss_curves", "record_loss_curves", "CURVE_LABELS"]

#: The label of each shipped rate: what its curves show in the cpu profile (at 0.1 only seed
#: 42's curve is shipped: its climb back is clear there, within noise in the other seeds).
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
    text = resources.files("course_utils").joinpath("assets", ASSET).read_text()
    record = json.loads(text)
    return [LossCurve(rate=c["rate"], seed=c["seed"], label=c["label"],
                      losses=tuple(math.nan if v is None else float(v) for v in c["losses"]),
                      profile=record["profile"]) for c in record["curves"]]


def record_loss_curves(profile: Any = "cpu", rates: Mapping[float, str] = CURVE_LABELS,
                       seeds: Iterable[int] | None = None) -> dict[str, Any]:
    """Train lesson 01's CNN once per rate and seed: the record :func:`load_loss_curves` reads.

    The set-up is the lesson's: a CNN of 2 blocks of 8 and 16 filters, SGD with momentum
    0.9, ``max(profile.short_epochs, 6)`` epochs of at most 25 batches, stopped when the
    loss turns NaN. Writing the result as JSON to the asset ships it.
    """
    import keras
    import numpy as np

    from course_utils import datasets, fingers, labels, models, training
    from course_utils.learning_rate.reuse import reuse_compiled_model
    from course_utils.runtime import profiles

    profile = profiles.get_profile(profile) if isinstance(profile, str) else profile
    seeds = list(profile.comparison_seeds if seeds is None else seeds)
    epochs = max(profile.short_epochs, 6)
    size = min(profile.train_size, 25 * profile.batch_size)
    data = fingers.load_fingers(profile, seed=profile.seed)
    x, y = data.x_train[:size], data.y_train[:size]
    initial = math.log(labels.NUM_CLASSES)

    @reuse_compiled_model
    def build(rate: float) -> Any:
        model = models.build_fingers_cnn(profile.input_shape, labels.NUM_CLASSES, width=8,
                                         depth=2)
        model.compile(optimizer=keras.optimizers.SGD(rate, momentum=0.9),
                      loss="sparse_categorical_crossentropy")
        return model

    curves = []
    for rate, label in rates.items():
        for seed in seeds:
            history = training.fit_model(
                lambda rate=rate: build(rate),
                lambda seed=seed: datasets.make_dataset(x, y, batch_size=profile.batch_size,
                                                        training=True, seed=seed),
                epochs=epochs, seed=seed, callbacks=[keras.callbacks.TerminateOnNaN()])
            losses = [initial, *(float(v) for v in history["loss"])]
            curves.append({"rate": rate, "seed": seed, "label": label,
                           "losses": [round(v, 6) if np.isfinite(v) else None
                                      for v in losses]})
    return {"profile": profile.name, "epochs": epochs, "train_size": size,
            "batch_size": profile.batch_size, "image_size": profile.image_size,
            "about": "lesson 01's CNN (SGD, momentum 0.9) at each rate and seed; the first "
                     "loss is the untrained model's, ln 12; null is NaN or infinite "
                     "(the run stopped there); written by "
                     "course_utils.learning_rate.curves.record_loss_curves",
            "curves": curves}


