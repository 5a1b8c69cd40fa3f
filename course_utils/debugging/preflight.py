"""The preflight: the five checks of lesson 05 on one classifier, in one report.

:func:`preflight` runs :func:`~course_utils.debugging.gradient_check.check_gradients`
and the four checks of :mod:`course_utils.debugging.checks` on any Keras classifier
and returns a :class:`~course_utils.debugging.results.PreflightReport` that prints as
a table.

Examples
--------
>>> print(", ".join(CHECK_NAMES))
gradient check, initial loss, tiny-subset overfit, update ratios, dead units
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from course_utils.debugging._common import (
    ModelOrBuilder,
    as_sample_array,
    compiled_loss,
    require_model,
)
from course_utils.debugging.checks import (
    check_dead_units,
    check_initial_loss,
    check_tiny_subset_overfit,
    check_update_ratios,
)
from course_utils.debugging.gradient_check import check_gradients
from course_utils.debugging.results import CheckResult, PreflightReport
from course_utils.runtime.tf_setup import import_keras

__all__ = ["CHECK_NAMES", "preflight"]

#: The checks :func:`preflight` runs, in order.
CHECK_NAMES = ("gradient check", "initial loss", "tiny-subset overfit", "update ratios",
               "dead units")


def preflight(
    model: ModelOrBuilder,
    data: Any,
    *,
    loss: Any = None,
    optimizer: Any = None,
    pipeline: Callable[[np.ndarray, np.ndarray], Any] | None = None,
    samples: int = 10,
    gradient_points: int = 4,
    num_params: int = 12,
    seeds: Sequence[int] = (0, 1, 2),
    batch_size: int = 32,
    seed: int = 0,
) -> PreflightReport:
    """Run the five checks of lesson 05 on a classifier before training it for real.

    ``model``: an untrained Keras classifier (softmax outputs), or a function
    ``seed -> new model`` (then the initial loss is checked for every seed in
    ``seeds`` and the other checks use ``model(seed)``). ``data``: ``(x, y)``
    arrays, ready for the model, or a ``tf.data.Dataset`` of ``(x, y)`` batches
    or samples (the first few hundred samples are used). ``loss`` and
    ``optimizer`` default to the compiled ones (else sparse categorical
    cross-entropy and Adam at 1e-3); ``pipeline`` is your input pipeline for
    the tiny-subset check (see :func:`check_tiny_subset_overfit`).

    The checks: :func:`check_gradients` (``gradient_points`` samples,
    ``num_params`` parameters, float64, regularisation on, dropout off),
    :func:`check_initial_loss`, :func:`check_tiny_subset_overfit` (``samples``
    samples), :func:`check_update_ratios` and :func:`check_dead_units`. The
    model itself is never changed: every check that trains works on a copy. A
    check that raises an error fails with that error as its message.

    Examples
    --------
    >>> from course_utils import models                                   # doctest: +SKIP
    >>> report = preflight(models.build_fingers_cnn((32, 32, 1), 12, seed=0), (x, y))  # doctest: +SKIP
    >>> print(report)                                                     # doctest: +SKIP
    preflight of 'fingers_cnn': 5 of 5 checks passed
    ...
    """
    keras = import_keras()
    initial: Any = model
    if isinstance(model, keras.Model):
        net = model
    elif callable(model):
        net = model(int(seed))
    else:
        raise ValueError(f"model: expected a keras.Model or a function seed -> model, got "
                         f"{type(model).__name__}")
    require_model(net)
    x, y = _read_data(data, limit=max(batch_size * 8, samples, gradient_points, 256))
    loss = loss if loss is not None else compiled_loss(net)
    runs: list[tuple[str, Callable[[], CheckResult]]] = [
        ("gradient check", lambda: check_gradients(
            net, x[:gradient_points], y[:gradient_points], loss=loss, num_params=num_params,
            warmup_steps=5, seed=seed)),
        ("initial loss", lambda: check_initial_loss(initial, x, y, seeds=seeds)),
        ("tiny-subset overfit", lambda: check_tiny_subset_overfit(
            net, x, y, samples=samples, loss=loss, pipeline=pipeline, seed=seed)),
        ("update ratios", lambda: check_update_ratios(
            net, x, y, optimizer=optimizer, loss=loss, batch_size=batch_size)),
        ("dead units", lambda: check_dead_units(net, x)),
    ]
    results = []
    for name, run in runs:
        try:
            results.append(run())
        except Exception as exc:  # noqa: BLE001 - a crashing check is a failed check
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            results.append(CheckResult(name, False, f"error: {type(exc).__name__}", "no error",
                                       f"the check raised {type(exc).__name__}: {text[:300]}"))
    return PreflightReport(str(getattr(net, "name", "model")), tuple(results))


def _read_data(data: Any, *, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` arrays from arrays or a ``tf.data.Dataset``, at most ``limit`` samples."""
    if isinstance(data, tuple | list) and len(data) == 2:
        x, y = np.asarray(data[0]), np.asarray(data[1])
    elif hasattr(data, "element_spec") and hasattr(data, "as_numpy_iterator"):
        xs, ys, count = [], [], 0
        batched = None
        for bx, by in data.as_numpy_iterator():
            bx, by = np.asarray(bx), np.asarray(by)
            if batched is None:
                batched = by.ndim >= 1 and len(by) == len(bx) and bx.ndim > by.ndim
            if not batched:
                bx, by = bx[None], by[None]
            xs.append(bx)
            ys.append(by)
            count += len(bx)
            if count >= limit:
                break
        if not xs:
            raise ValueError("data: expected at least one batch, got an empty dataset")
        x, y = np.concatenate(xs), np.concatenate(ys)
    else:
        raise ValueError(f"data: expected (x, y) arrays or a tf.data.Dataset of (x, y), got "
                         f"{type(data).__name__}")
    if len(x) != len(y):
        raise ValueError(f"data: expected one label per sample ({len(x)}), got {len(y)} labels")
    if len(x) == 0:
        raise ValueError("data: expected at least one sample, got none")
    return as_sample_array(x[:limit], "data x"), y[:limit]


