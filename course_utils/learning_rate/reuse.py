"""Many short runs of one set-up without paying for Keras' tracing every time.

Lesson 01 trains the same small CNN dozens of times (four rates, schedules, three seeds
each). A fresh Keras model traces its training step into a TensorFlow graph on its first
batch, and at smoke size that costs about as much as the six epochs themselves.
:func:`reuse_compiled_model` wraps a builder so that runs of the same set-up share one
compiled model: every call still builds a fresh model (with the seed in force, so the
same seed gives the same initial weights), then copies its variables (weights, batch
statistics, dropout seed state) and its optimizer's variables (step count, rate,
momentum) into the model kept from the first call, whose traced step is reused. The
result is the same run, number for number, as training the fresh model.

Anything that changes the set-up (another architecture, optimizer, momentum, loss, or a
model compiled again since) is noticed: the fresh model is returned and kept instead.

Examples
--------
>>> from course_utils import models
>>> from course_utils.runtime.tf_setup import import_keras
>>> keras = import_keras()
>>> def build(rate):
...     model = models.build_fingers_cnn((8, 8, 1), 12, depth=1, width=4)
...     model.compile(optimizer=keras.optimizers.SGD(rate, momentum=0.9),
...                   loss="sparse_categorical_crossentropy")
...     return model
>>> build_model = reuse_compiled_model(build)
>>> first, second = build_model(0.1), build_model(0.01)
>>> first is second, round(float(second.optimizer.learning_rate), 6)
(True, 0.01)
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

__all__ = ["reuse_compiled_model"]


def reuse_compiled_model(build: Callable[..., Any]) -> Callable[..., Any]:
    """A builder like ``build`` (returns a compiled ``keras.Model``) that reuses compiled models.

    Every call ``reused(*args, **kwargs)`` calls ``build(*args, **kwargs)``. When a model
    kept from an earlier call has the same architecture (``get_config``) and the same
    compile settings (``get_compile_config``; the optimizer's learning rate left out, it
    is copied), the fresh model's variables and its optimizer's variables are copied into
    the kept model, which is returned; otherwise the fresh model is returned and kept. One
    model is kept per set-up (e.g. one for SGD, one for Adam). Raises ``ValueError`` when
    ``build`` returns a model that is not compiled.
    """
    if not callable(build):
        raise ValueError(f"build: expected a function that builds a compiled model, got "
                         f"{type(build).__name__}")
    kept: dict[tuple[Any, ...], Any] = {}

    @functools.wraps(build)
    def reused(*args: Any, **kwargs: Any) -> Any:
        fresh = build(*args, **kwargs)
        if not getattr(fresh, "compiled", False) or getattr(fresh, "optimizer", None) is None:
            raise ValueError("build: expected a compiled keras.Model (call model.compile in the "
                             f"builder), got {type(fresh).__name__} not compiled")
        fresh.optimizer.build(fresh.trainable_variables)
        setup = _setup(fresh)
        model = kept.get(setup)
        if model is None or _setup(model) != setup:  # new, or compiled again since
            kept[setup] = fresh
            return fresh
        for target, source in ((model.variables, fresh.variables),
                               (model.optimizer.variables, fresh.optimizer.variables)):
            for old, new in zip(target, source, strict=True):
                old.assign(new)
        return model

    return reused


def _setup(model: Any) -> tuple[Any, ...]:
    """What must be equal for two models to share a traced training step."""
    compile_config = dict(model.get_compile_config() or {})
    optimizer = dict(compile_config.pop("optimizer", {}) or {})
    if isinstance(optimizer.get("config"), dict):
        optimizer["config"] = {k: v for k, v in optimizer["config"].items()
                               if k not in ("learning_rate", "name")}
    shapes = tuple(tuple(v.shape) for v in model.optimizer.variables)
    return repr(model.get_config()), repr(compile_config), repr(optimizer), shapes
