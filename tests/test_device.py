"""Device detection, GPU configuration, mixed-precision advice and distribution strategy.

GPU, multi-GPU and TPU machines are described to the code through a stand-in
``tf`` module (``FakeTF``) that records what the code asks of it; the CPU paths,
and MirroredStrategy over two logical CPU devices, run on the real TensorFlow.
"""

from __future__ import annotations

import argparse
import ast
import importlib.machinery
import json
import re
import subprocess
import sys
import textwrap
import types
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import course_utils
from course_utils.runtime import device, doctor
from course_utils.runtime.device import DeviceReport, GpuInfo

# --------------------------------------------------------------------------- stand-ins


@dataclass(frozen=True)
class FakePhysicalDevice:
    name: str
    device_type: str


class FakeTPUClusterResolver:
    """``TPUClusterResolver.connect`` that succeeds or raises ``error``."""

    error: Exception | None = None
    connected: list[str | None] = []

    def __init__(self, tpu: str | None) -> None:
        self.tpu = tpu

    @classmethod
    def connect(cls, tpu: str | None = None) -> FakeTPUClusterResolver:
        cls.connected.append(tpu)
        if cls.error is not None:
            raise cls.error
        return cls(tpu)


@dataclass
class FakeStrategy:
    kind: str
    devices: list[str] | None = None
    resolver: Any = None


@dataclass
class FakeTF:
    """The slice of the ``tensorflow`` module that course_utils.runtime.device uses."""

    gpus: list[dict] = field(default_factory=list)  # device details per GPU
    tpu_cores: int = 0
    growth_error: Exception | None = None
    __version__: str = "2.99.0"
    calls: list[tuple] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.devices = {
            "CPU": [FakePhysicalDevice("/physical_device:CPU:0", "CPU")],
            "GPU": [FakePhysicalDevice(f"/physical_device:GPU:{i}", "GPU")
                    for i in range(len(self.gpus))],
            "TPU": [FakePhysicalDevice(f"/physical_device:TPU:{i}", "TPU")
                    for i in range(self.tpu_cores)],
        }
        resolver = type("Resolver", (FakeTPUClusterResolver,), {"error": None, "connected": []})
        self.resolver_class = resolver
        self.config = SimpleNamespace(
            list_physical_devices=lambda kind=None: list(self.devices.get(kind, [])),
            experimental=SimpleNamespace(
                get_device_details=self._details, set_memory_growth=self._set_memory_growth
            ),
        )
        self.distribute = SimpleNamespace(
            MirroredStrategy=lambda devices=None: self._record("mirrored", devices=devices),
            TPUStrategy=lambda resolver: self._record("tpu", resolver=resolver),
            get_strategy=lambda: self._record("default"),
            cluster_resolver=SimpleNamespace(TPUClusterResolver=resolver),
        )

    def _details(self, dev: FakePhysicalDevice) -> dict:
        return self.gpus[int(dev.name.rsplit(":", 1)[1])] if dev.device_type == "GPU" else {}

    def _set_memory_growth(self, dev: FakePhysicalDevice, enable: bool) -> None:
        self.calls.append(("set_memory_growth", dev.name, enable))
        if self.growth_error is not None:
            raise self.growth_error

    def _record(self, kind: str, **kwargs: Any) -> FakeStrategy:
        self.calls.append(("strategy", kind, kwargs))
        return FakeStrategy(kind, **kwargs)


FAKE_KERAS = SimpleNamespace(__version__="3.99.0", backend=SimpleNamespace(backend=lambda: "jax"))
P100 = {"device_name": "Tesla P100-PCIE-16GB", "compute_capability": (6, 0)}
GTX1080 = {"device_name": "NVIDIA GeForce GTX 1080", "compute_capability": (6, 1)}
A100 = {"device_name": "NVIDIA A100-SXM4-40GB", "compute_capability": (8, 0)}
A100_SMI = "NVIDIA A100-SXM4-40GB, 40960\nNVIDIA A100-SXM4-40GB, 40960\n"


def detect(fake: FakeTF, environ: dict | None = None, nvidia_smi: str | None = None):
    return device.detect_devices(
        tf=fake, keras=FAKE_KERAS, environ=environ or {}, nvidia_smi=lambda: nvidia_smi
    )


# --------------------------------------------------------------------------- CPU only


def test_machine_without_gpu_is_reported_as_cpu_with_default_strategy():
    fake = FakeTF()
    report = detect(fake)
    assert (report.gpus, report.has_gpu, report.tpu, report.accelerator) == ((), False, False, "CPU")
    assert (report.tensorflow_version, report.keras_version, report.keras_backend) == (
        "2.99.0", "3.99.0", "jax")
    assert not device.recommend_mixed_precision(report)
    assert device.mixed_precision_advice(report).startswith("no: no GPU")
    assert device.configure_gpus(report, tf=fake) == []
    strategy = device.get_strategy(report, tf=fake)
    assert strategy.kind == "default"
    assert ("set_memory_growth" not in {c[0] for c in fake.calls})


def test_real_detection_on_this_cpu_machine_finds_no_gpu_and_does_not_raise():
    report = device.detect_devices()
    assert report.gpus == () and not report.tpu
    assert report.tensorflow_version.startswith("2.")
    assert report.keras_version.startswith("3.") and report.keras_backend == "tensorflow"
    assert report.cpu_count >= 1 and 1 <= report.usable_cpu_count <= report.cpu_count
    assert device.has_gpu() is False
    assert device.configure_gpus() == []
    strategy = device.get_strategy(report)
    assert strategy.num_replicas_in_sync == 1
    assert "MirroredStrategy" not in type(strategy).__name__


def test_has_gpu_answers_false_instead_of_raising_when_tensorflow_fails():
    broken = SimpleNamespace(config=SimpleNamespace(list_physical_devices=_raise_runtime_error))
    assert device.has_gpu(tf=broken) is False
    assert device.has_gpu(tf=FakeTF(gpus=[A100])) is True


def _raise_runtime_error(*_args: Any) -> None:
    raise RuntimeError("CUDA driver version is insufficient")


# --------------------------------------------------------------------------- GPUs


def test_one_pascal_gpu_is_detected_but_mixed_precision_is_not_advised():
    fake = FakeTF(gpus=[GTX1080])
    report = detect(fake, nvidia_smi="NVIDIA GeForce GTX 1080, 8192\n")
    (gpu,) = report.gpus
    assert gpu == GpuInfo(0, "NVIDIA GeForce GTX 1080", "/physical_device:GPU:0", 8 * 1024**3, (6, 1))
    assert device.recommend_mixed_precision(report) is False
    advice = device.mixed_precision_advice(report)
    assert "GTX 1080" in advice and "6.1" in advice and advice.startswith("no")
    assert device.get_strategy(report, tf=fake).kind == "default"


def test_two_ampere_gpus_get_mirrored_strategy_and_mixed_precision():
    fake = FakeTF(gpus=[A100, A100])
    report = detect(fake, nvidia_smi=A100_SMI)
    assert report.num_gpus == 2
    assert [g.memory_bytes for g in report.gpus] == [40 * 1024**3] * 2
    assert [g.compute_capability for g in report.gpus] == [(8, 0), (8, 0)]
    assert device.select_strategy_name(report) == "mirrored"
    assert device.recommend_mixed_precision(report) is True
    assert "mixed_float16" in device.mixed_precision_advice(report)
    strategy = device.get_strategy(report, tf=fake)
    assert strategy.kind == "mirrored" and strategy.devices is None  # all visible GPUs


def test_one_old_gpu_among_new_ones_vetoes_mixed_precision():
    report = detect(FakeTF(gpus=[A100, P100]))
    assert device.recommend_mixed_precision(report) is False
    assert "Tesla P100" in device.mixed_precision_advice(report)


def test_gpu_without_details_keeps_its_device_name_and_unknown_capability():
    report = detect(FakeTF(gpus=[{}]))
    (gpu,) = report.gpus
    assert (gpu.name, gpu.memory_bytes, gpu.compute_capability) == (
        "/physical_device:GPU:0", None, None)
    assert "memory unknown" in gpu.describe() and "compute capability unknown" in gpu.describe()
    assert device.recommend_mixed_precision(report) is False
    assert "unknown" in device.mixed_precision_advice(report)


def test_gpu_memory_is_matched_by_name_and_left_unknown_when_ambiguous():
    # nvidia-smi lists the GPUs in its own order: names, not positions, decide.
    smi = "NVIDIA A100-SXM4-40GB, 40960\nNVIDIA GeForce GTX 1080, 8192\nbroken line\n"
    report = detect(FakeTF(gpus=[GTX1080, A100]), nvidia_smi=smi)
    assert [g.memory_bytes for g in report.gpus] == [8 * 1024**3, 40 * 1024**3]
    two_sizes = "NVIDIA A100-SXM4-40GB, 40960\nNVIDIA A100-SXM4-40GB, 81920\n"
    report = detect(FakeTF(gpus=[A100, A100]), nvidia_smi=two_sizes)
    assert [g.memory_bytes for g in report.gpus] == [None, None]


def test_configure_gpus_sets_memory_growth_on_every_gpu():
    fake = FakeTF(gpus=[A100, A100])
    messages = device.configure_gpus(detect(fake), tf=fake)
    assert fake.calls == [
        ("set_memory_growth", "/physical_device:GPU:0", True),
        ("set_memory_growth", "/physical_device:GPU:1", True),
    ]
    assert messages == [
        "GPU 0 (NVIDIA A100-SXM4-40GB): memory growth on",
        "GPU 1 (NVIDIA A100-SXM4-40GB): memory growth on",
    ]


def test_configure_gpus_reports_instead_of_raising_when_gpus_are_initialised():
    fake = FakeTF(gpus=[A100], growth_error=RuntimeError(
        "Physical devices cannot be modified after being initialized"))
    (message,) = device.configure_gpus(tf=fake)
    assert "memory growth not set" in message and "already initialised" in message
    assert "cannot be modified" in message


# --------------------------------------------------------------------------- TPU


@pytest.mark.parametrize(
    ("environ", "tpu_cores", "address"),
    [
        ({"COLAB_TPU_ADDR": "10.0.0.2:8470"}, 0, "grpc://10.0.0.2:8470"),
        ({"TPU_NAME": "my-tpu"}, 0, "my-tpu"),
        ({}, 8, "local"),  # TPU VM: devices are attached, no variable needed
    ],
)
def test_tpu_runtime_connects_and_returns_tpu_strategy(environ, tpu_cores, address):
    fake = FakeTF(tpu_cores=tpu_cores)
    report = detect(fake, environ)
    assert (report.tpu, report.tpu_address, report.tpu_cores) == (True, address, tpu_cores)
    assert report.accelerator == "TPU"
    strategy = device.get_strategy(report, tf=fake)
    assert strategy.kind == "tpu" and strategy.resolver.tpu == address
    assert fake.resolver_class.connected == [address]
    assert "bfloat16" in device.mixed_precision_advice(report)


def test_tpu_failure_warns_and_falls_back_to_default_strategy():
    fake = FakeTF()
    fake.resolver_class.error = ValueError("Could not lookup TPU metadata")
    report = detect(fake, {"COLAB_TPU_ADDR": "10.0.0.2:8470"})
    with pytest.warns(RuntimeWarning, match="TPU.*Could not lookup TPU metadata.*default"):
        strategy = device.get_strategy(report, tf=fake)
    assert strategy.kind == "default"


def test_tpu_failure_with_several_gpus_falls_back_to_mirrored_strategy():
    fake = FakeTF(gpus=[A100, A100])
    fake.resolver_class.error = RuntimeError("TPUs not found in the cluster")
    report = detect(fake, {"TPU_NAME": "gone"})
    with pytest.warns(RuntimeWarning, match="MirroredStrategy"):
        strategy = device.get_strategy(report, tf=fake)
    assert strategy.kind == "mirrored"


# --------------------------------------------------------------------------- platform


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"COLAB_RELEASE_TAG": "release-colab_20250101-060000_RC00"}, "colab"),
        ({"KAGGLE_KERNEL_RUN_TYPE": "Interactive"}, "kaggle"),
        ({"HOME": "/home/student"}, "local"),
    ],
)
def test_platform_is_read_from_the_environment(environ, expected):
    assert device.detect_platform(environ) == expected
    assert detect(FakeTF(), environ).platform == expected


def test_an_importable_google_colab_means_colab_unless_the_environment_is_injected(monkeypatch):
    colab = types.ModuleType("google.colab")
    colab.__spec__ = importlib.machinery.ModuleSpec("google.colab", loader=None)
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    assert device.detect_platform({}, check_import=True) == "colab"
    assert device.detect_platform({}) == "local"  # an injected environment decides alone


def test_the_device_report_states_hardware_facts_and_chooses_no_profile():
    report = detect(FakeTF(gpus=[A100]), {"CI": "true"})
    assert not hasattr(report, "profile")
    assert "profile" not in report.as_dict()
    assert "profile" not in doctor.format_report(report)


def test_doctor_profile_follows_the_course_rules():
    assert doctor._doctor_profile({"CI": "true"}) == "smoke"
    assert doctor._doctor_profile({"COURSE_PROFILE": "gpu"}) == "gpu"
    assert doctor._doctor_profile({}) == "cpu"
    wrong = doctor._doctor_profile({"COURSE_PROFILE": "huge"})
    assert wrong.startswith("none:") and "COURSE_PROFILE" in wrong and "huge" in wrong


def test_usable_cpu_count_is_the_affinity_of_this_process_and_at_least_one():
    total, usable = device.cpu_cores()
    assert device.usable_cpu_count() == usable >= 1
    assert usable <= total


# --------------------------------------------------------------------------- strategy input


@pytest.mark.parametrize("devices", [[], "/cpu:0", ["/cpu:0", ""], [0, 1]])
def test_get_strategy_rejects_a_bad_device_list(devices):
    with pytest.raises(ValueError, match="devices: expected a non-empty list"):
        device.get_strategy(tf=FakeTF(), devices=devices)


def test_get_strategy_with_explicit_devices_mirrors_over_them():
    fake = FakeTF()
    strategy = device.get_strategy(tf=fake, devices=("/cpu:0", "/cpu:1"))
    assert (strategy.kind, strategy.devices) == ("mirrored", ["/cpu:0", "/cpu:1"])


MIRRORED_ON_TWO_CPUS = textwrap.dedent(
    """
    import json
    import numpy as np
    from course_utils.runtime.device import get_strategy
    from course_utils.runtime.tf_setup import import_keras, import_tensorflow, set_seed

    tf, keras = import_tensorflow(), import_keras()
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    set_seed(0)
    strategy = get_strategy(devices=["/cpu:0", "/cpu:1"])
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    with strategy.scope():
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
        model.compile(optimizer=keras.optimizers.SGD(0.5), loss="sparse_categorical_crossentropy")
    history = model.fit(x, y, batch_size=16, epochs=3, verbose=0)
    print(json.dumps({
        "strategy": type(strategy).__name__,
        "replicas": strategy.num_replicas_in_sync,
        "variable": type(model.weights[0].value).__name__,
        "loss": history.history["loss"],
    }))
    """
)


@pytest.mark.slow
def test_mirrored_strategy_trains_a_keras_model_on_two_logical_cpus():
    # A fresh process: logical devices must be configured before TensorFlow runs anything.
    done = subprocess.run(
        [sys.executable, "-c", MIRRORED_ON_TWO_CPUS], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["strategy"] == "MirroredStrategy"
    assert result["replicas"] == 2
    assert result["variable"] == "MirroredVariable"  # the model was built under the scope
    assert result["loss"][-1] < result["loss"][0]


# --------------------------------------------------------------------------- report and CLI


def test_format_report_aligns_one_fact_per_line_and_names_every_gpu():
    fake = FakeTF(gpus=[A100, GTX1080])
    report = detect(fake, {"KAGGLE_KERNEL_RUN_TYPE": "Batch"}, nvidia_smi=A100_SMI)
    text = doctor.format_report(report, profile="gpu")
    lines = text.splitlines()
    assert lines[0] == "Device report"
    value_columns = {re.match(r"\S.*?\s{2,}(\S)", line).start(1) for line in lines[1:]}
    assert len(value_columns) == 1, f"values not aligned:\n{text}"
    assert "GPU 0            NVIDIA A100-SXM4-40GB, 40.0 GiB, compute capability 8.0" in lines
    assert "GPU 1            NVIDIA GeForce GTX 1080, memory unknown, compute capability 6.1" in lines
    for expected in ("platform         kaggle", "tensorflow       2.99.0",
                     "keras            3.99.0 (backend jax)", "profile          gpu",
                     "strategy         MirroredStrategy over 2 GPUs", "TPU              no"):
        assert expected in lines
    assert f"mixed precision  {device.mixed_precision_advice(report)}" in lines


def test_format_report_hints_at_a_tensorflow_without_cuda():
    report = detect(FakeTF(), nvidia_smi="Tesla T4, 15360\n")
    assert report.driver_gpus == ("Tesla T4",) and not report.has_gpu
    assert "TensorFlow sees none" in doctor.format_report(report)
    colab = doctor.format_report(detect(FakeTF(), {"COLAB_RELEASE_TAG": "x"}))
    assert "Change runtime type" in colab


def test_print_device_report_prints_the_formatted_report(capsys):
    report = DeviceReport("local", "3.11.0", "2.21.0", cpu_count=8, usable_cpu_count=2)
    assert doctor.print_device_report(report) is None
    out = capsys.readouterr().out
    assert out == doctor.format_report(report) + "\n"
    assert "8 (2 usable by this process)" in out


def test_doctor_command_prints_the_report_and_the_profile_as_json(capsys, monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    parser = argparse.ArgumentParser()
    doctor.configure_parser(parser)
    assert doctor.run_command(parser.parse_args(["--json"])) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["gpus"] == [] and data["accelerator"] == "CPU"
    assert data["strategy"] == "default" and data["mixed_precision"] is False
    assert data["profile"] == "smoke"
    assert doctor.run_command(parser.parse_args([])) == 0
    out = capsys.readouterr().out
    assert out.startswith("Device report\n")
    assert "profile          smoke" in out.splitlines()


def test_a_gpu_gets_the_verified_cpu_sizes_and_is_told_how_to_opt_in(capsys, monkeypatch):
    """Colab's GPU runs the sizes the claims were checked at; the gpu sizes are asked for."""
    from course_utils import notebook
    from course_utils.runtime import profiles

    for name in ("COURSE_PROFILE", "CI", "NBGRADER_EXECUTION"):
        monkeypatch.delenv(name, raising=False)
    gpu = detect(FakeTF(gpus=[A100]), nvidia_smi=A100_SMI.splitlines()[0])
    monkeypatch.setattr(doctor, "detect_devices", lambda: gpu)
    parser = argparse.ArgumentParser()
    doctor.configure_parser(parser)
    assert doctor.run_command(parser.parse_args([])) == 0
    out = capsys.readouterr().out
    assert "profile          cpu" in out.splitlines() and profiles.GPU_NOTE in out
    notebook.print_setup_report(profiles.get_profile(), gpu)
    out = capsys.readouterr().out
    assert "Profile cpu: 64x64 images" in out and "COURSE_PROFILE=gpu" in out
    notebook.print_setup_report(profiles.get_profile("gpu"), gpu)  # opted in: no note
    assert "COURSE_PROFILE=gpu" not in capsys.readouterr().out
    no_gpu = DeviceReport("local", "3.11.0", "2.21.0")
    notebook.print_setup_report(profiles.get_profile("cpu"), no_gpu)
    assert "GPU is available" not in capsys.readouterr().out


def test_report_round_trips_through_json():
    report = detect(FakeTF(gpus=[A100, A100]), nvidia_smi=A100_SMI)
    data = json.loads(json.dumps(report.as_dict()))
    assert data["gpus"][1]["compute_capability"] == [8, 0]
    assert data["gpus"][0]["memory_bytes"] == 40 * 1024**3
    assert (data["strategy"], data["mixed_precision"]) == ("mirrored", True)


def test_importing_device_module_does_not_import_tensorflow():
    probe = "import sys, course_utils.runtime.device; print('tensorflow' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


# --------------------------------------------------------------------------- layering


def _module_level_imports(path: Path, module: str) -> set[str]:
    """``course_utils`` modules that ``path`` imports at module level (not in functions)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            return  # runs when called, not when the module is imported
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return  # for type checkers only
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "course_utils")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*parts, base] if base else parts)
            if base.split(".")[0] == "course_utils":
                found.update({base, *(f"{base}.{a.name}" for a in node.names)})
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def _course_utils_modules() -> dict[str, Path]:
    root = Path(course_utils.__file__).resolve().parent
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def test_every_course_utils_module_imports_in_a_fresh_interpreter():
    names = sorted(n for n in _course_utils_modules() if not n.endswith("__main__"))
    probe = "import importlib, sys\nfor name in sys.argv[1:]: importlib.import_module(name)"
    done = subprocess.run([sys.executable, "-c", probe, *names],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"a course_utils module fails to import:\n{done.stderr[-2000:]}"


def test_course_utils_module_level_imports_form_no_circle():
    modules = _course_utils_modules()
    graph = {
        name: sorted(t for t in _module_level_imports(path, name) if t in modules and t != name)
        for name, path in modules.items()
    }
    for name in graph:  # a package's __init__ is imported by its modules anyway
        graph[name] = [t for t in graph[name] if not name.startswith(t + ".")]
    state: dict[str, str] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for target in graph[name]:
            if state.get(target) == "open":
                circle = trail[trail.index(target):] + [target] if target in trail else [name, target]
                raise AssertionError("module-level import circle: " + " -> ".join(circle))
            if target not in state:
                visit(target, [*trail, target])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert "course_utils.runtime.profiles" not in graph["course_utils.runtime.device"]
    assert "course_utils.runtime.device" not in graph["course_utils.runtime.profiles"]
    assert "course_utils.runtime.doctor" not in graph["course_utils.runtime.device"]
