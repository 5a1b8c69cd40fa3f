"""Which hardware runs the course, and how to use it.

One call, :func:`detect_devices`, describes the machine: the platform (Colab,
Kaggle or a local computer), Python, TensorFlow and Keras versions, CPU cores,
every GPU TensorFlow sees (name, memory, compute capability) and a TPU runtime.
Everything else reads that :class:`DeviceReport`:

- :func:`configure_gpus` turns on memory growth (before any model is built);
- :func:`recommend_mixed_precision` says whether ``mixed_float16`` pays off;
- :func:`get_strategy` returns the ``tf.distribute`` strategy for the hardware;
- :func:`usable_cpu_count` is the one place that counts the cores a process may use.

This module states hardware facts only; it does not choose a runtime profile. The
layers above it combine the two: the notebook set-up
(:func:`course_utils.notebook.setup_notebook`) and ``course doctor``
(:mod:`course_utils.runtime.doctor`, which also formats the report as a table). Nothing
here fails on a machine without a GPU, and importing the module does not import
TensorFlow.

Examples
--------
>>> report = DeviceReport(platform="local", python_version="3.12.0")
>>> report.accelerator, select_strategy_name(report), recommend_mixed_precision(report)
('CPU', 'default', False)
>>> report = detect_devices()              # doctest: +SKIP
>>> configure_gpus(report)                 # doctest: +SKIP
[]
>>> strategy = get_strategy(report)        # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import platform as _platform
import subprocess
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, Literal

#: Compute capability from which NVIDIA GPUs have Tensor Cores (Volta and newer),
#: the hardware that makes float16 matrix products faster than float32.
MIXED_PRECISION_MIN_CC: Final = (7, 0)

StrategyName = Literal["tpu", "mirrored", "default"]

_NVIDIA_SMI_QUERY: Final = (
    "nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader,nounits",
)
_MIB: Final = 1024**2
_GIB: Final = 1024**3


@dataclasses.dataclass(frozen=True)
class GpuInfo:
    """One GPU as TensorFlow sees it.

    Attributes
    ----------
    index: position in ``tf.config.list_physical_devices("GPU")``.
    name: the model, e.g. ``"Tesla T4"`` (the device path when TensorFlow does not say).
    device: TensorFlow's physical device name, e.g. ``"/physical_device:GPU:0"``.
    memory_bytes: total memory, or ``None`` when unknown. TensorFlow does not report
        it before the GPU is in use, so it comes from ``nvidia-smi`` when available.
    compute_capability: ``(major, minor)``, e.g. ``(7, 5)``, or ``None`` when unknown.

    Examples
    --------
    >>> GpuInfo(0, "Tesla T4", "/physical_device:GPU:0", 15 * 1024**3, (7, 5)).describe()
    'Tesla T4, 15.0 GiB, compute capability 7.5'
    """

    index: int
    name: str
    device: str
    memory_bytes: int | None = None
    compute_capability: tuple[int, int] | None = None

    def describe(self) -> str:
        """One line: name, memory and compute capability (``unknown`` where missing)."""
        memory = "memory unknown" if self.memory_bytes is None else _gib(self.memory_bytes)
        cc = (
            "unknown" if self.compute_capability is None
            else "{}.{}".format(*self.compute_capability)
        )
        return f"{self.name}, {memory}, compute capability {cc}"


@dataclasses.dataclass(frozen=True)
class DeviceReport:
    """What :func:`detect_devices` found; every other function here reads it.

    Attributes
    ----------
    platform: ``"colab"``, ``"kaggle"`` or ``"local"``.
    python_version: e.g. ``"3.12.3"``.
    tensorflow_version, keras_version, keras_backend: ``None`` when unknown.
    cpu_count: logical CPU cores of the machine (``os.cpu_count()``).
    usable_cpu_count: cores this process may run on (its CPU affinity); can be
        fewer than ``cpu_count`` in containers and batch jobs.
    gpus: the GPUs TensorFlow sees, in its order.
    tpu: whether this is a TPU runtime (environment variable or TPU devices).
    tpu_address: the ``tpu`` argument for ``TPUClusterResolver``: ``TPU_NAME``,
        ``grpc://`` + ``COLAB_TPU_ADDR``, or ``"local"`` on a TPU VM.
    tpu_cores: TPU devices TensorFlow lists (0 until connected on some runtimes).
    driver_gpus: GPU names ``nvidia-smi`` lists; GPUs here but not in ``gpus``
        mean TensorFlow was installed without CUDA support.

    Examples
    --------
    >>> report = DeviceReport(platform="local", python_version="3.12.0", cpu_count=4,
    ...                       usable_cpu_count=4)
    >>> report.has_gpu, report.accelerator
    (False, 'CPU')
    """

    platform: str
    python_version: str
    tensorflow_version: str | None = None
    keras_version: str | None = None
    keras_backend: str | None = None
    cpu_count: int | None = None
    usable_cpu_count: int | None = None
    gpus: tuple[GpuInfo, ...] = ()
    tpu: bool = False
    tpu_address: str | None = None
    tpu_cores: int = 0
    driver_gpus: tuple[str, ...] = ()

    @property
    def has_gpu(self) -> bool:
        """Whether TensorFlow sees at least one GPU."""
        return bool(self.gpus)

    @property
    def num_gpus(self) -> int:
        """Number of GPUs TensorFlow sees."""
        return len(self.gpus)

    @property
    def accelerator(self) -> str:
        """``"TPU"``, ``"GPU"`` or ``"CPU"``: what training will run on."""
        return "TPU" if self.tpu else "GPU" if self.gpus else "CPU"

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready built-in types (``course doctor --json``)."""
        out = dataclasses.asdict(self)
        out["accelerator"] = self.accelerator
        out["strategy"] = select_strategy_name(self)
        out["mixed_precision"] = recommend_mixed_precision(self)
        return out


# --------------------------------------------------------------------------- detection


def detect_devices(
    *,
    tf: Any = None,
    keras: Any = None,
    environ: Mapping[str, str] | None = None,
    nvidia_smi: Callable[[], str | None] | None = None,
) -> DeviceReport:
    """Describe this machine: platform, versions, CPU cores, GPUs and TPU.

    Does not initialise the GPUs (so :func:`configure_gpus` may still run after it)
    and does not raise on a machine without GPU.

    Parameters
    ----------
    tf: the TensorFlow module; tests pass a stand-in with ``__version__``,
        ``config.list_physical_devices`` and ``config.experimental.get_device_details``.
        Default: the real one, imported quietly.
    keras: the Keras module (``__version__``, ``backend.backend()``). Default: the
        real one when ``tf`` is not given, else unknown versions.
    environ: environment variables for platform and TPU detection.
        Default ``os.environ`` (then an importable ``google.colab`` also means Colab).
    nvidia_smi: returns ``nvidia-smi``'s CSV (``name, memory MiB`` per line) or
        ``None``; used for GPU memory. Default: run it when ``tf`` is not given.

    Examples
    --------
    >>> report = detect_devices()                    # doctest: +SKIP
    >>> report.platform, report.num_gpus             # doctest: +SKIP
    ('local', 0)
    """
    real_environment = environ is None
    env = os.environ if environ is None else environ
    if tf is None:
        from course_utils.runtime.tf_setup import import_keras, import_tensorflow

        tf = import_tensorflow()
        keras = import_keras() if keras is None else keras
        nvidia_smi = query_nvidia_smi if nvidia_smi is None else nvidia_smi
    smi_rows = _parse_nvidia_smi(nvidia_smi() if nvidia_smi is not None else None)

    gpus = tuple(
        _gpu_info(tf, index, device, _memory_by_name(smi_rows))
        for index, device in enumerate(_list_devices(tf, "GPU"))
    )
    tpu_devices = _list_devices(tf, "TPU")
    tpu_address = _tpu_address(env, has_tpu_devices=bool(tpu_devices))
    cpu_count, usable = cpu_cores()
    return DeviceReport(
        platform=detect_platform(env, check_import=real_environment),
        python_version=_platform.python_version(),
        tensorflow_version=getattr(tf, "__version__", None),
        keras_version=getattr(keras, "__version__", None) if keras is not None else None,
        keras_backend=_keras_backend(keras),
        cpu_count=cpu_count,
        usable_cpu_count=usable,
        gpus=gpus,
        tpu=tpu_address is not None,
        tpu_address=tpu_address,
        tpu_cores=len(tpu_devices),
        driver_gpus=tuple(name for name, _ in smi_rows),
    )


def detect_platform(
    environ: Mapping[str, str] | None = None, *, check_import: bool | None = None
) -> str:
    """``"colab"``, ``"kaggle"`` or ``"local"``, from the environment.

    Colab sets ``COLAB_RELEASE_TAG``; Kaggle sets ``KAGGLE_KERNEL_RUN_TYPE``. With
    ``check_import`` (default: when ``environ`` is the real environment) an
    importable ``google.colab`` also means Colab.

    Examples
    --------
    >>> detect_platform({"COLAB_RELEASE_TAG": "release-colab_20240101-060000"})
    'colab'
    >>> detect_platform({"KAGGLE_KERNEL_RUN_TYPE": "Interactive"})
    'kaggle'
    >>> detect_platform({})
    'local'
    """
    if check_import is None:
        check_import = environ is None
    env = os.environ if environ is None else environ
    if env.get("COLAB_RELEASE_TAG") or (check_import and _module_exists("google.colab")):
        return "colab"
    if env.get("KAGGLE_KERNEL_RUN_TYPE"):
        return "kaggle"
    return "local"


def cpu_cores() -> tuple[int | None, int | None]:
    """``(cores of the machine, cores this process may use)``; ``None`` when unknown.

    The second number is the CPU affinity (``os.sched_getaffinity``) where the
    system has it, else the first.

    Examples
    --------
    >>> total, usable = cpu_cores()
    >>> usable <= total
    True
    """
    total = os.cpu_count()
    try:
        usable: int | None = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS and Windows have no affinity call
        usable = total
    return total, usable


def usable_cpu_count() -> int:
    """Cores this process may run on (at least 1): the size of a worker pool.

    The second number of :func:`cpu_cores`, with 1 when the system cannot tell.

    Examples
    --------
    >>> usable_cpu_count() >= 1
    True
    """
    return max(1, cpu_cores()[1] or 1)


def query_nvidia_smi(timeout: float = 10.0) -> str | None:
    """``nvidia-smi``'s ``name, memory.total`` CSV, or ``None`` when it cannot run.

    Examples
    --------
    >>> query_nvidia_smi()            # doctest: +SKIP
    'Tesla T4, 15360\\n'
    """
    try:
        done = subprocess.run(
            _NVIDIA_SMI_QUERY, capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.SubprocessError):  # not installed, no driver, hung
        return None
    return done.stdout if done.returncode == 0 else None


def has_gpu(*, tf: Any = None) -> bool:
    """Whether TensorFlow sees a GPU; ``False`` (never an exception) when it cannot tell.

    Examples
    --------
    >>> has_gpu()                     # doctest: +SKIP
    False
    """
    try:
        if tf is None:
            from course_utils.runtime.tf_setup import import_tensorflow

            tf = import_tensorflow()
        return bool(tf.config.list_physical_devices("GPU"))
    except Exception:  # a yes/no question must not crash a notebook
        return False


# --------------------------------------------------------------------------- configuration


def configure_gpus(report: DeviceReport | None = None, *, tf: Any = None) -> list[str]:
    """Turn on memory growth on every GPU; return one message per GPU.

    With memory growth TensorFlow takes GPU memory as it needs it instead of all
    of it at start-up, so two notebooks can share a GPU. It can only be set before
    the GPUs are initialised (before the first model or tensor); later, the
    message says so and nothing is raised. No GPU: an empty list.

    Examples
    --------
    >>> configure_gpus()              # doctest: +SKIP
    ['GPU 0 (Tesla T4): memory growth on']
    """
    if report is not None and not report.has_gpu:
        return []
    if tf is None:
        from course_utils.runtime.tf_setup import import_tensorflow

        tf = import_tensorflow()
    names = {gpu.device: gpu.name for gpu in report.gpus} if report is not None else {}
    messages = []
    for index, device in enumerate(_list_devices(tf, "GPU")):
        label = f"GPU {index} ({names.get(device.name, device.name)})"
        try:
            tf.config.experimental.set_memory_growth(device, True)
        except (RuntimeError, ValueError) as exc:
            messages.append(
                f"{label}: memory growth not set, the GPUs are already initialised "
                f"(call configure_gpus() before building any model): {exc}"
            )
        else:
            messages.append(f"{label}: memory growth on")
    return messages


def recommend_mixed_precision(report: DeviceReport) -> bool:
    """Whether ``mixed_float16`` will speed training up here.

    True only when there are GPUs and every one has compute capability >= 7.0
    (Tensor Cores). On a CPU, or an older GPU, float16 is slower than float32.

    Examples
    --------
    >>> t4 = GpuInfo(0, "Tesla T4", "/physical_device:GPU:0", None, (7, 5))
    >>> recommend_mixed_precision(DeviceReport("colab", "3.11.0", gpus=(t4,)))
    True
    >>> recommend_mixed_precision(DeviceReport("local", "3.11.0"))
    False
    """
    return bool(report.gpus) and all(
        gpu.compute_capability is not None
        and tuple(gpu.compute_capability) >= MIXED_PRECISION_MIN_CC
        for gpu in report.gpus
    )


def mixed_precision_advice(report: DeviceReport) -> str:
    """One line: whether to use mixed precision here, and why.

    Examples
    --------
    >>> mixed_precision_advice(DeviceReport("local", "3.11.0"))
    'no: no GPU (float16 is slower than float32 on a CPU)'
    """
    if recommend_mixed_precision(report):
        return (
            "yes: every GPU has Tensor Cores (compute capability >= 7.0); "
            'keras.mixed_precision.set_global_policy("mixed_float16")'
        )
    if report.tpu and not report.gpus:
        return 'no float16 on a TPU; its mixed policy is "mixed_bfloat16"'
    if not report.gpus:
        return "no: no GPU (float16 is slower than float32 on a CPU)"
    unknown = [gpu.name for gpu in report.gpus if gpu.compute_capability is None]
    if unknown:
        return f"no: compute capability unknown for {', '.join(unknown)}"
    old = next(g for g in report.gpus if tuple(g.compute_capability) < MIXED_PRECISION_MIN_CC)
    return (
        f"no: {old.name} has compute capability {'{}.{}'.format(*old.compute_capability)} "
        "(< 7.0, no Tensor Cores), float16 would not be faster"
    )


# --------------------------------------------------------------------------- strategy


def select_strategy_name(report: DeviceReport) -> StrategyName:
    """Which strategy :func:`get_strategy` builds: ``tpu``, ``mirrored`` or ``default``.

    Examples
    --------
    >>> gpu = GpuInfo(0, "A100", "/physical_device:GPU:0")
    >>> select_strategy_name(DeviceReport("local", "3.11.0", gpus=(gpu, gpu)))
    'mirrored'
    >>> select_strategy_name(DeviceReport("local", "3.11.0", gpus=(gpu,)))
    'default'
    """
    if report.tpu:
        return "tpu"
    return "mirrored" if report.num_gpus > 1 else "default"


def get_strategy(
    report: DeviceReport | None = None,
    *,
    tf: Any = None,
    devices: Sequence[str] | None = None,
) -> Any:
    """The ``tf.distribute`` strategy that fits the hardware.

    - a TPU runtime: ``TPUStrategy`` (connects and initialises the TPU); when that
      fails, a ``RuntimeWarning`` says why and the GPU/CPU rule below applies;
    - several GPUs: ``MirroredStrategy`` over all of them;
    - otherwise the default strategy (one device, no change to plain Keras code).

    ``devices`` forces a ``MirroredStrategy`` over exactly those devices, e.g.
    ``["/cpu:0", "/cpu:1"]`` after splitting the CPU into two logical devices.
    Build and compile models inside ``with strategy.scope():``.

    Examples
    --------
    >>> strategy = get_strategy()               # doctest: +SKIP
    >>> strategy.num_replicas_in_sync           # doctest: +SKIP
    1
    """
    if tf is None:
        from course_utils.runtime.tf_setup import import_tensorflow

        tf = import_tensorflow()
    if devices is not None:
        if isinstance(devices, str) or not devices or not all(
            isinstance(d, str) and d for d in devices
        ):
            raise ValueError(
                f"devices: expected a non-empty list of device names such as "
                f'["/cpu:0", "/cpu:1"], got {devices!r}'
            )
        return tf.distribute.MirroredStrategy(devices=list(devices))
    if report is None:
        report = detect_devices(tf=tf)
    if select_strategy_name(report) == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver.connect(
                tpu=report.tpu_address
            )
            return tf.distribute.TPUStrategy(resolver)
        except Exception as exc:  # TPU set-up fails in many ways
            fallback = "MirroredStrategy" if report.num_gpus > 1 else "the default strategy"
            warnings.warn(
                f"TPU runtime detected (tpu={report.tpu_address!r}) but connecting to it "
                f"failed: {type(exc).__name__}: {exc}. Falling back to {fallback}; "
                "on Colab or Kaggle, restart the runtime with a TPU accelerator.",
                RuntimeWarning,
                stacklevel=2,
            )
    if report.num_gpus > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


# --------------------------------------------------------------------------- internals


def _list_devices(tf: Any, device_type: str) -> list[Any]:
    try:
        return list(tf.config.list_physical_devices(device_type))
    except (RuntimeError, ValueError):  # unknown device type in this build
        return []


def _gpu_info(tf: Any, index: int, device: Any, memory_by_name: Mapping[str, int]) -> GpuInfo:
    try:
        details = dict(tf.config.experimental.get_device_details(device) or {})
    except (RuntimeError, ValueError, AttributeError):
        details = {}
    name = str(details.get("device_name") or device.name)
    cc = details.get("compute_capability")
    return GpuInfo(
        index=index,
        name=name,
        device=str(device.name),
        memory_bytes=memory_by_name.get(name),
        compute_capability=(int(cc[0]), int(cc[1])) if cc else None,
    )


def _parse_nvidia_smi(text: str | None) -> list[tuple[str, int]]:
    """``[(name, total bytes)]`` from ``name, MiB`` lines; malformed lines are skipped."""
    rows = []
    for line in (text or "").splitlines():
        name, _, mib = line.rpartition(",")
        try:
            rows.append((name.strip(), int(float(mib)) * _MIB))
        except ValueError:
            continue
    return [(name, size) for name, size in rows if name]


def _memory_by_name(rows: Sequence[tuple[str, int]]) -> dict[str, int]:
    """Memory per GPU model, kept only where every GPU of that model agrees.

    nvidia-smi and TensorFlow may number GPUs differently (``CUDA_VISIBLE_DEVICES``,
    ``CUDA_DEVICE_ORDER``), so GPUs are matched by name, never by index.
    """
    sizes: dict[str, set[int]] = {}
    for name, size in rows:
        sizes.setdefault(name, set()).add(size)
    return {name: next(iter(s)) for name, s in sizes.items() if len(s) == 1}


def _tpu_address(env: Mapping[str, str], *, has_tpu_devices: bool) -> str | None:
    if env.get("TPU_NAME"):
        return env["TPU_NAME"]
    if env.get("COLAB_TPU_ADDR"):
        return f"grpc://{env['COLAB_TPU_ADDR']}"
    return "local" if has_tpu_devices else None


def _keras_backend(keras: Any) -> str | None:
    if keras is None:
        return None
    try:
        return str(keras.backend.backend())
    except AttributeError:
        return None


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # parent package missing
        return False


def _gib(n_bytes: int) -> str:
    return f"{n_bytes / _GIB:.1f} GiB"
