"""Training: the one helper every lesson trains with, and runs repeated over seeds.

* :func:`fit_model` builds (from a builder function), compiles, feeds and fits a model
  and returns its :class:`~course_utils.history.History`; every training run of the
  package goes through it, so a seed means the same thing everywhere.
* :func:`reuse_compiled_model` wraps a builder so that many short runs of one set-up
  share one compiled model (Keras traces its training step once, not once a run);
* :func:`repeat_over_seeds` repeats a run over several seeds;
  :func:`mean_over_seeds` gives the mean and the spread of their curves, epoch by epoch,
  and :func:`final_over_seeds` of their last values.
* :func:`paired_change` compares two set-ups trained with the same seeds, seed by seed,
  and :func:`judge_change` says whether the difference is larger than the noise of the
  seeds: the one rule every lesson's comparison of runs follows;
  :func:`describe_over_seeds` prints it as a table, and
  :func:`course_utils.plots.plot_over_seeds` draws the runs.

The reference run of SYLLABUS 00 (``course train``) is :mod:`course_utils.reference`.

Examples
--------
>>> import numpy as np
>>> from course_utils import models
>>> x, y = np.random.default_rng(0).random((32, 8, 8, 1), "float32"), np.arange(32) % 12
>>> def build():
...     return models.build_fingers_cnn((8, 8, 1), 12, depth=1, width=4, seed=0)
>>> runs = repeat_over_seeds(
...     lambda seed: fit_model(build, (x, y), epochs=2, batch_size=8, seed=seed), seeds=[0, 1])
>>> mean, spread = mean_over_seeds(runs)
>>> mean.epochs, len(spread["loss"])
([1, 2], 2)
"""

from __future__ import annotations

import dataclasses
import functools
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, TypeVar

import numpy as np

from course_utils.history import METRIC_NAMES, History, read_history
from course_utils.runtime.checks import check_scalar
from course_utils.runtime.tf_setup import import_keras, set_seed

__all__ = [
    "VERDICTS",
    "Change",
    "describe_over_seeds",
    "final_over_seeds",
    "fit_model",
    "judge_change",
    "mean_over_seeds",
    "paired_change",
    "repeat_over_seeds",
    "reuse_compiled_model",
]

T = TypeVar("T")


# --------------------------------------------------------------------------- the helper


def fit_model(
    model: Any,
    train: Any,
    val: Any = None,
    *,
    epochs: int,
    seed: int | None = None,
    optimizer: str | Any | None = None,
    learning_rate: float | Any | None = None,
    batch_size: int | None = None,
    steps_per_epoch: int | None = None,
    initial_epoch: int = 0,
    callbacks: Sequence[Any] = (),
    verbose: int | str = 0,
) -> History:
    """Build, compile, feed and fit a model; return its :class:`~course_utils.history.History`.

    1. **Seed**: with ``seed``, :func:`~course_utils.runtime.tf_setup.set_seed` first,
       before the model is built, so the same seed gives the same initial weights,
       batches and dropout masks: the same history. ``seed=None`` leaves the random
       state as it is (the second phase of a fine-tuning, a resumed run).
    2. **Build**: ``model`` is a ``keras.Model`` or a function without arguments that
       builds one (``lambda: models.build_fingers_cnn(shape, seed=seed)``).
    3. **Compile**: a model that is not compiled yet is compiled by
       :func:`course_utils.models.compile_classifier` with ``optimizer`` (default
       ``"adam"``, or an optimizer instance) and ``learning_rate`` (default ``1e-3``); a
       compiled model is used as it is.
    4. **Feed**: ``train`` is a ``tf.data.Dataset`` of ``(images, labels)`` batches (it
       shuffles itself, see :func:`course_utils.datasets.make_dataset`; an endless one,
       ``dataset.repeat()``, needs ``steps_per_epoch``), a pair ``(x, y)`` of arrays,
       fed in batches of ``batch_size`` and reshuffled every epoch by Keras, or a
       function without arguments that makes the dataset. ``val`` (optional) is one of
       the same, evaluated after every epoch.
    5. **Fit** epochs ``initial_epoch + 1`` to ``epochs`` with ``callbacks``.

    A shuffled dataset takes its seeds from the global seed in force when it is *made*:
    one made before the call keeps the seed of whatever ran before it. Pass the function
    that makes it (``lambda: datasets.make_dataset(x, y, ..., training=True)``), and
    ``seed`` fixes the order of its batches too; the functions are called after seeding,
    the data before the model.

    The returned history's ``model`` is the trained model. Arguments are checked before
    anything is built; a ``ValueError`` names the one that is wrong.

    Examples
    --------
    >>> import numpy as np
    >>> from course_utils import models
    >>> x, y = np.random.default_rng(0).random((32, 8, 8, 1), "float32"), np.arange(32) % 12
    >>> def build():
    ...     return models.build_fingers_cnn((8, 8, 1), 12, depth=1, width=4, seed=0)
    >>> history = fit_model(build, (x, y), (x, y), epochs=3, batch_size=8, seed=0)
    >>> history.metrics
    ['accuracy', 'loss', 'rank5_accuracy', 'val_accuracy', 'val_loss', 'val_rank5_accuracy']
    >>> history == fit_model(build, (x, y), (x, y), epochs=3, batch_size=8, seed=0)
    True
    >>> more = fit_model(history.model, (x, y), epochs=5, initial_epoch=3, batch_size=8)
    >>> more.epochs
    [4, 5]
    """
    epochs = check_scalar(epochs, "epochs", int, min_val=1)
    initial_epoch = check_scalar(initial_epoch, "initial_epoch", int, min_val=0,
                                 max_val=epochs - 1)
    if steps_per_epoch is not None:
        steps_per_epoch = check_scalar(steps_per_epoch, "steps_per_epoch", int, min_val=1)
    if seed is not None:
        seed = check_scalar(seed, "seed", int, min_val=0)
    if batch_size is not None:
        batch_size = check_scalar(batch_size, "batch_size", int, min_val=1)
    keras = import_keras()
    if seed is not None:
        set_seed(seed)
    train, val = (data() if callable(data) else data for data in (train, val))
    arrays = isinstance(train, tuple)
    if arrays and len(train) != 2:
        raise ValueError(f"train: expected a dataset or a pair (x, y) of arrays, got a tuple "
                         f"of {len(train)}")
    if arrays and batch_size is None:
        raise ValueError("batch_size: expected a whole number >= 1 to feed the arrays (x, y) in "
                         "batches, got None")
    if not arrays and batch_size is not None:
        raise ValueError(f"batch_size: expected None for a dataset (it comes in batches "
                         f"already), got {batch_size!r}")
    if not isinstance(model, keras.Model):
        if not callable(model):
            raise ValueError(f"model: expected a keras.Model or a function that builds one, "
                             f"got {type(model).__name__}")
        built = model()
        if not isinstance(built, keras.Model):
            raise ValueError(f"model: expected the builder to return a keras.Model, got "
                             f"{type(built).__name__}")
        model = built
    if not model.compiled:
        from course_utils import models

        models.compile_classifier(model, optimizer="adam" if optimizer is None else optimizer,
                                  learning_rate=1e-3 if learning_rate is None else learning_rate)
    elif optimizer is not None or learning_rate is not None:
        raise ValueError("optimizer: expected None for a model that is compiled already (pass "
                         "an uncompiled model, or compile it with the optimizer you want)")
    options = {"epochs": epochs, "initial_epoch": initial_epoch,
               "steps_per_epoch": steps_per_epoch, "validation_data": val,
               "callbacks": list(callbacks), "verbose": verbose}
    if arrays:
        fitted = model.fit(*train, batch_size=batch_size, shuffle=True, **options)
    else:
        fitted = model.fit(train, shuffle=False, **options)  # the dataset shuffles itself
    return read_history(fitted, name=model.name)


def reuse_compiled_model(build: Callable[..., Any]) -> Callable[..., Any]:
    """A builder like ``build`` (returns a compiled ``keras.Model``) that reuses compiled models.

    A fresh Keras model traces its training step into a TensorFlow graph on its first
    batch: about a second on a laptop, as long as a short run itself. Runs of one
    set-up (rates, seeds, schedules, a remedy that only changes the data) can share the
    traced step. Every call ``reused(*args, **kwargs)`` calls ``build(*args, **kwargs)``
    (so the seed in force gives the fresh model its initial weights, as always); when a
    model kept from an earlier call has the same set-up, the fresh model's variables
    (weights, batch statistics, dropout seed states) and its optimizer's (step count,
    rate, moments) are copied into the kept model, which is returned: the same run,
    number for number, as training the fresh model. Otherwise the fresh model is
    returned and kept, one per set-up.

    The set-up is the architecture (``get_config``, without the model's name, seeds and
    initializers, whose only effect is the initial values copied) and the compile
    settings (``get_compile_config``, without the learning rate, which is copied; a
    loss or metric written as a function or a class of one's own counts as that very
    function or class, since Keras records only its name). A kept model compiled again
    since is not reused. The model a call returns is trained
    again by the next call of the same set-up: keep its history, not the model. Raises
    ``ValueError`` when ``build`` returns a model that is not compiled.

    Examples
    --------
    >>> keras = import_keras()
    >>> from course_utils import models
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
    if not callable(build):
        raise ValueError(f"build: expected a function that builds a compiled model, got "
                         f"{type(build).__name__}")
    kept: dict[tuple[str, ...], Any] = {}

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


def _setup(model: Any) -> tuple[str, ...]:
    """What must be equal for two compiled models to share a traced training step."""
    compile_config = dict(model.get_compile_config() or {})
    optimizer = dict(compile_config.pop("optimizer", {}) or {})
    if isinstance(optimizer.get("config"), dict):
        optimizer["config"] = {k: v for k, v in optimizer["config"].items()
                               if k not in ("learning_rate", "name")}
    architecture = {k: v for k, v in model.get_config().items() if k != "name"}
    shapes = [tuple(v.shape) for v in model.optimizer.variables]
    return (repr(_without_initial_values(architecture)), repr(compile_config), repr(optimizer),
            repr(shapes), repr(_own_code(_compiled_with(model))))


def _compiled_with(model: Any) -> list[Any]:
    """The losses and metrics ``model.compile`` was given, as given (the objects)."""
    given = getattr(getattr(model, "_compile_config", None), "config", None)
    if not isinstance(given, dict):  # a Keras without it: the loss, which is public
        return [model.loss]
    return [given.get(key) for key in ("loss", "metrics", "weighted_metrics")]


def _own_code(given: Any) -> list[str]:
    """The identities of the functions and classes of one's own in ``given`` (losses and
    metrics, nested in lists and dicts): Keras saves those by their name alone, and one
    defined again under the same name is another loss or metric. Keras' own, and names,
    are left out: their configuration says all."""
    if isinstance(given, dict):
        return [found for key in sorted(given, key=str) for found in _own_code(given[key])]
    if isinstance(given, list | tuple):
        return [found for item in given for found in _own_code(item)]
    if isinstance(given, types.FunctionType):
        return [f"function {id(given):x}"]
    if given is None or isinstance(given, str) or type(given).__module__.startswith("keras."):
        return []
    return [f"class {id(type(given)):x}"]


def _without_initial_values(config: Any) -> Any:
    """``config`` without what only sets initial values: seeds and initializers."""
    if isinstance(config, dict):
        return {k: _without_initial_values(v) for k, v in config.items()
                if k != "seed" and not k.endswith("_initializer")}
    if isinstance(config, list | tuple):
        return [_without_initial_values(v) for v in config]
    return config


def repeat_over_seeds(run: Callable[[int], T], seeds: Iterable[int]) -> dict[int, T]:
    """Call ``run(seed)`` for every seed: ``{seed: what that run returned}``.

    A run that depends on chance (initial weights, batches, dropout) gives a different
    result for every seed; repeating it over a few seeds shows how much, and
    :func:`mean_over_seeds` sums the histories up. ``run`` usually calls
    :func:`fit_model` (or a lesson's training function) with ``seed=seed``.

    Examples
    --------
    >>> repeat_over_seeds(lambda seed: seed * 10, seeds=range(3))
    {0: 0, 1: 10, 2: 20}
    >>> repeat_over_seeds(lambda seed: seed, seeds=3)
    Traceback (most recent call last):
    ...
    ValueError: seeds: expected a list of seeds such as range(3), got 3
    """
    if not callable(run):
        raise ValueError(f"run: expected a function of the seed, got {type(run).__name__}")
    if isinstance(seeds, str) or not isinstance(seeds, Iterable):
        raise ValueError(f"seeds: expected a list of seeds such as range(3), got {seeds!r}")
    chosen = [check_scalar(seed, "seeds", int, min_val=0) for seed in seeds]
    if not chosen:
        raise ValueError("seeds: expected at least one seed, got none")
    repeated = sorted({seed for seed in chosen if chosen.count(seed) > 1})
    if repeated:
        raise ValueError(f"seeds: expected different seeds, got {repeated} more than once")
    return {seed: run(seed) for seed in chosen}


def mean_over_seeds(runs: Mapping[int, Any] | Sequence[Any]) -> tuple[History, History]:
    """The mean and the spread of several runs' curves, epoch by epoch: ``(mean, spread)``.

    ``runs`` is what :func:`repeat_over_seeds` returns, ``{seed: run}``, or a list of
    runs; a run is anything :func:`~course_utils.history.read_history` reads (a
    :class:`~course_utils.history.History`, a Keras ``History``, a
    :class:`~course_utils.overfitting.RunResult`, a ``history.json``). Every run must
    have recorded the same epochs and metrics. ``mean`` holds the mean of every metric
    over the runs, ``spread`` their standard deviation (``ddof=1``, the sample's), both
    as histories: ``mean.final("val_accuracy")``, ``plots.plot_history({"mean": mean})``.

    Examples
    --------
    >>> mean, spread = mean_over_seeds({0: {"loss": [1.0, 0.4]}, 1: {"loss": [1.2, 0.6]}})
    >>> mean["loss"], [round(s, 4) for s in spread["loss"]]
    ([1.1, 0.5], [0.1414, 0.1414])
    """
    if isinstance(runs, Mapping):
        named = {f"seed {seed}": run for seed, run in runs.items()}
    elif isinstance(runs, Sequence) and not isinstance(runs, str):
        named = {f"run {index}": run for index, run in enumerate(runs)}
    else:
        raise ValueError(f"runs: expected {{seed: run}} or a list of runs, got {type(runs).__name__}")
    if len(named) < 2:
        raise ValueError(f"runs: expected at least 2 runs to measure a spread, got {len(named)}")
    histories = {name: read_history(run, name=name) for name, run in named.items()}
    (first_name, first), *others = histories.items()
    for name, history in others:
        if history.epochs != first.epochs or sorted(history.metrics) != sorted(first.metrics):
            raise ValueError(
                f"runs: expected the same epochs and metrics in every run; {first_name} has "
                f"epochs {first.epochs} and {sorted(first.metrics)}, {name} has epochs "
                f"{history.epochs} and {sorted(history.metrics)} (did a run stop early?)")
    stacked = {m: np.array([h[m] for h in histories.values()]) for m in first.metrics}
    mean = History({"epoch": first.epochs, **{m: v.mean(axis=0) for m, v in stacked.items()}})
    spread = History({"epoch": first.epochs,
                      **{m: v.std(axis=0, ddof=1) for m, v in stacked.items()}})
    return mean, spread


def final_over_seeds(runs: Mapping[str, Mapping[int, Any]], metric: str = "loss",
                     ) -> dict[str, tuple[float, float]]:
    """``{name: (mean, spread)}`` of each set-up's last ``metric`` over its seeds.

    ``runs`` is ``{name: {seed: run}}``, one :func:`repeat_over_seeds` result per
    set-up. The spread is the standard deviation over the seeds (``ddof=1``, as in
    :func:`mean_over_seeds`); it needs at least two seeds.

    Examples
    --------
    >>> final_over_seeds({"a": {0: {"loss": [2.0, 1.0]}, 1: {"loss": [2.0, 1.2]},
    ...                         2: {"loss": [2.0, 1.4]}}})
    {'a': (1.2, 0.2)}
    """
    summary = {}
    for name, by_seed in runs.items():
        mean, spread = mean_over_seeds(by_seed)
        if metric not in mean:
            raise ValueError(f"metric: expected one of {', '.join(mean.metrics)}, got {metric!r}")
        summary[name] = (round(mean.final(metric), 6), round(spread.final(metric), 6))
    return summary


#: What :func:`judge_change` can say about a change in one measure.
VERDICTS: Final = ("better", "within noise", "worse")


def judge_change(differences: Sequence[float], *, higher_is_better: bool) -> str:
    """``"better"``, ``"worse"`` or ``"within noise"``: the verdict on paired differences.

    ``differences`` holds, for every seed, a remedy's score minus the baseline's
    score with the same seed. The change counts (``"better"`` or ``"worse"``) only
    when it goes the same way in every seed and the mean difference is larger than
    the spread, the standard deviation of the differences (``ddof=1``). Otherwise it
    is ``"within noise"``: that many seeds cannot tell it from chance.

    Raises ``ValueError`` for fewer than two differences (no spread) or a value that
    is not a finite number.

    Examples
    --------
    >>> judge_change([-0.4, -0.3, -0.5], higher_is_better=False)     # a lower loss
    'better'
    >>> judge_change([-0.04, -0.01, -0.06], higher_is_better=True)   # accuracy points
    'worse'
    >>> judge_change([0.02, 0.03, -0.01], higher_is_better=True)
    'within noise'
    """
    d = _check_differences(differences)
    mean, spread = float(d.mean()), float(d.std(ddof=1))
    if abs(mean) <= spread:
        return "within noise"
    gains = d > 0 if higher_is_better else d < 0
    losses = d < 0 if higher_is_better else d > 0
    if gains.all():
        return "better"
    if losses.all():
        return "worse"
    return "within noise"


@dataclasses.dataclass(frozen=True)
class Change:
    """Paired differences between two set-ups in one measure, one per seed (:func:`paired_change`).

    Examples
    --------
    >>> change = Change((0.05, 0.07, 0.06), higher_is_better=True)
    >>> round(change.mean, 3), round(change.spread, 3), change.verdict
    (0.06, 0.01, 'better')
    """

    per_seed: tuple[float, ...]
    higher_is_better: bool

    @property
    def mean(self) -> float:
        """The mean difference over the seeds."""
        return float(np.mean(self.per_seed))

    @property
    def spread(self) -> float:
        """The standard deviation of the differences over the seeds (``ddof=1``)."""
        return float(np.std(self.per_seed, ddof=1))

    @property
    def verdict(self) -> str:
        """One of :data:`VERDICTS` (:func:`judge_change`)."""
        return judge_change(self.per_seed, higher_is_better=self.higher_is_better)


def paired_change(runs: Mapping[int, Any], baseline: Mapping[int, Any], metric: str, *,
                  higher_is_better: bool) -> Change:
    """How a set-up's last ``metric`` differs from a baseline's, seed by seed.

    ``runs`` and ``baseline`` are ``{seed: run}`` (:func:`repeat_over_seeds`) with the
    same seeds, so that each seed pairs two runs that shared their chance (initial
    weights, batches); the differences ``run - baseline`` are judged by
    :func:`judge_change` (``change.verdict``).

    Examples
    --------
    >>> fast = {0: {"loss": [2.0, 0.5]}, 1: {"loss": [2.1, 0.7]}, 2: {"loss": [1.9, 0.6]}}
    >>> slow = {0: {"loss": [2.0, 0.9]}, 1: {"loss": [2.1, 1.0]}, 2: {"loss": [1.9, 1.1]}}
    >>> change = paired_change(fast, slow, "loss", higher_is_better=False)
    >>> round(change.mean, 3), change.verdict
    (-0.4, 'better')
    """
    if sorted(runs) != sorted(baseline):
        raise ValueError(f"runs: trained with seeds {sorted(runs)}; expected the baseline's "
                         f"{sorted(baseline)} to pair them")
    finals = []
    for name, by_seed in (("runs", runs), ("baseline", baseline)):
        histories = {seed: read_history(run, name=f"{name}, seed {seed}")
                     for seed, run in by_seed.items()}
        for seed, history in histories.items():
            if metric not in history:
                raise ValueError(f"metric: expected one of {', '.join(history.metrics)}, "
                                 f"got {metric!r} (seed {seed})")
        finals.append([histories[seed].final(metric) for seed in sorted(runs)])
    differences = tuple(float(a - b) for a, b in zip(*finals, strict=True))
    _check_differences(differences)
    return Change(differences, higher_is_better=higher_is_better)


def describe_over_seeds(runs: Mapping[str, Mapping[int, Any]], *, baseline: str,
                        metrics: Sequence[str] = ("loss", "val_loss")) -> str:
    """Mean ± spread of each set-up's last ``metrics``, and each one's change from ``baseline``.

    ``runs`` is ``{name: {seed: history}}`` with the same seeds for every name.
    The first lines are a table, one row per set-up: the mean and the spread
    (standard deviation, ``ddof=1``) of the last epoch's value over the seeds. Then
    one line per other set-up: the paired differences ``set-up - baseline``, mean ±
    spread, and the verdict (``better``, ``within noise`` or ``worse``; losses are
    better lower, accuracies higher). Metrics are separated by `` | ``.

    Raises ``ValueError`` when ``baseline`` is not one of the runs, or when the runs
    do not share their seeds (the messages of :func:`~course_utils.training.paired_change`).

    Examples
    --------
    >>> runs = {"a": {0: {"loss": [2.0, 1.0]}, 1: {"loss": [2.0, 1.2]}, 2: {"loss": [2.0, 1.1]}},
    ...         "b": {0: {"loss": [2.0, 1.1]}, 1: {"loss": [2.0, 1.0]}, 2: {"loss": [2.0, 1.3]}}}
    >>> print(describe_over_seeds(runs, baseline="a", metrics=["loss"]).splitlines()[-1])
    b - a, seed by seed: training loss +0.033 ± 0.208 within noise
    """
    if not isinstance(runs, Mapping) or len(runs) < 2:
        raise ValueError(f"runs: expected {{name: {{seed: history}}}} with at least two set-ups, "
                         f"got {runs!r}")
    if baseline not in runs:
        raise ValueError(f"baseline: expected one of {', '.join(map(repr, runs))}, got {baseline!r}")
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    if not metrics:
        raise ValueError("metrics: expected at least one metric such as 'loss', got none")
    seeds = sorted(runs[baseline])
    finals = {metric: final_over_seeds(runs, metric) for metric in metrics}
    width = max(len(name) for name in runs)
    lines = [f"last epoch, mean ± spread over seeds {seeds}: "
             + " | ".join(METRIC_NAMES.get(m, m) for m in metrics)]
    for name in runs:
        cells = [f"{finals[m][name][0]:.3f} ± {finals[m][name][1]:.3f}" for m in metrics]
        lines.append(f"  {name:<{width}}  " + " | ".join(cells))
    for name, by_seed in runs.items():
        if name == baseline:
            continue
        cells = []
        for metric in metrics:
            change = paired_change(by_seed, runs[baseline], metric,
                                   higher_is_better="accuracy" in metric)
            cells.append(f"{METRIC_NAMES.get(metric, metric)} {change.mean:+.3f} ± {change.spread:.3f} "
                         f"{change.verdict}")
        lines.append(f"{name} - {baseline}, seed by seed: " + " | ".join(cells))
    return "\n".join(lines)


def _check_differences(differences: Sequence[float]) -> np.ndarray:
    try:
        d = np.asarray(differences, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"differences: expected a list of numbers, one per seed, got "
                         f"{differences!r}") from None
    if d.ndim != 1 or len(d) < 2:
        raise ValueError(f"differences: expected at least 2 numbers (one per seed) to measure "
                         f"a spread, got {differences!r}")
    if not np.isfinite(d).all():
        raise ValueError(f"differences: expected finite numbers, got {differences!r}")
    return d
