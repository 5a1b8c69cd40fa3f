"""The device report and ``course doctor``: where hardware facts and the profile meet.

:mod:`course_utils.runtime.device` states what the machine has; :mod:`course_utils.runtime.profiles`
is the rule that picks a runtime profile. This module is the layer above both: it
formats a :class:`~course_utils.runtime.device.DeviceReport` as a table
(:func:`format_report`, :func:`print_device_report`, which the notebook set-up calls
with the profile it chose) and runs ``course doctor`` (:func:`run_command`), which
shows the report and the profile :func:`~course_utils.runtime.profiles.choose_profile`
picks for this environment (with the ``gpu`` opt-in when there is a GPU).

Examples
--------
>>> print(format_report(DeviceReport("local", "3.11.0", "2.21.0")).splitlines()[2])
accelerator      CPU
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping

from course_utils.runtime import install
from course_utils.runtime.device import (
    DeviceReport,
    detect_devices,
    mixed_precision_advice,
    select_strategy_name,
)

__all__ = ["configure_parser", "format_report", "print_device_report", "run_command"]


def format_report(report: DeviceReport, *, profile: str | None = None) -> str:
    """The report as an aligned two-column table, one fact per line.

    ``profile`` is the runtime profile chosen for this machine (or why none could
    be); the layer that chose it passes it, and a ``profile`` row shows it.

    Examples
    --------
    >>> from course_utils.runtime.device import GpuInfo
    >>> t4 = GpuInfo(0, "Tesla T4", "/physical_device:GPU:0", 15 * 1024**3, (7, 5))
    >>> text = format_report(DeviceReport("colab", "3.11.0", "2.21.0", gpus=(t4,)),
    ...                      profile="gpu")
    >>> print(text.splitlines()[7])
    GPU 0            Tesla T4, 15.0 GiB, compute capability 7.5
    >>> print(text.splitlines()[-1])
    profile          gpu
    """
    cores = "unknown" if report.cpu_count is None else str(report.cpu_count)
    if report.usable_cpu_count is not None and report.usable_cpu_count != report.cpu_count:
        cores += f" ({report.usable_cpu_count} usable by this process)"
    keras = report.keras_version or "unknown"
    if report.keras_backend:
        keras += f" (backend {report.keras_backend})"
    rows: list[tuple[str, str]] = [
        ("platform", report.platform),
        ("accelerator", report.accelerator),
        ("python", report.python_version),
        ("tensorflow", report.tensorflow_version or "unknown"),
        ("keras", keras),
        ("CPU cores", cores),
    ]
    if report.gpus:
        rows += [(f"GPU {gpu.index}", gpu.describe()) for gpu in report.gpus]
    else:
        rows.append(("GPU", "none"))
    tpu = "no"
    if report.tpu:
        tpu = f"yes (tpu={report.tpu_address!r}"
        tpu += f", {report.tpu_cores} cores)" if report.tpu_cores else ")"
    rows += [
        ("TPU", tpu),
        ("strategy", _strategy_label(report)),
        ("mixed precision", mixed_precision_advice(report)),
    ]
    if profile is not None:
        rows.append(("profile", profile))
    rows += [("hint", hint) for hint in _hints(report)]
    width = max(len(key) for key, _ in rows) + 2
    return "\n".join(["Device report"] + [f"{key:<{width}}{value}" for key, value in rows])


def print_device_report(
    report: DeviceReport | None = None, *, profile: str | None = None
) -> None:
    """Print :func:`format_report` of ``report`` (default: this machine) and ``profile``.

    The notebooks' set-up cell calls it, so it returns nothing (no echo in Jupyter).

    Examples
    --------
    >>> print_device_report()         # doctest: +SKIP
    Device report
    platform         local
    ...
    """
    print(format_report(detect_devices() if report is None else report, profile=profile))


# --------------------------------------------------------------------------- CLI


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``course doctor``.

    Examples
    --------
    >>> p = argparse.ArgumentParser()
    >>> configure_parser(p)
    >>> p.parse_args(["--json"]).json
    True
    """
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        "examples:\n"
        "  course doctor                 what this machine has and the profile it gets\n"
        "  COURSE_PROFILE=smoke course doctor --json   the report as JSON, profile forced\n"
    )
    parser.add_argument(
        "--json", action="store_true", help="print the report as JSON instead of a table"
    )


def run_command(args: argparse.Namespace) -> int:
    """Run ``course doctor``: print the device report and the profile; exit status 0.

    The command is the layer above hardware and profiles, so it is where the two
    meet: the profile is :func:`course_utils.runtime.profiles.choose_profile` for this
    environment (or why none could be chosen), with a note on the ``gpu`` opt-in when
    the report found a GPU.
    """
    report = detect_devices()
    profile = _doctor_profile(os.environ)
    if args.json:
        print(json.dumps({**report.as_dict(), "profile": profile}, indent=2))
    else:
        print(format_report(report, profile=profile))
        if report.has_gpu and profile == "cpu":
            from course_utils.runtime.profiles import GPU_NOTE

            print(GPU_NOTE)
    return 0


def _doctor_profile(environ: Mapping[str, str]) -> str:
    from course_utils.runtime import profiles  # the layer above both: see the module docstring

    try:
        return profiles.choose_profile(environ)
    except ValueError as exc:  # a wrong COURSE_PROFILE is exactly what the doctor reports
        return f"none: {exc}"


# --------------------------------------------------------------------------- internals


def _strategy_label(report: DeviceReport) -> str:
    name = select_strategy_name(report)
    if name == "tpu":
        return "TPUStrategy"
    if name == "mirrored":
        return f"MirroredStrategy over {report.num_gpus} GPUs"
    return "default (one device)"


def _hints(report: DeviceReport) -> list[str]:
    hints = []
    if report.driver_gpus and not report.gpus:
        hints.append(
            f"nvidia-smi sees {len(report.driver_gpus)} GPU(s) ({', '.join(report.driver_gpus)}) "
            f"but TensorFlow sees none: install the CUDA build: {install.install_hint('gpu')}"
        )
    if report.accelerator == "CPU" and report.platform == "colab":
        hints.append("for a GPU: Runtime > Change runtime type > T4 GPU, then rerun the notebook")
    if report.accelerator == "CPU" and report.platform == "kaggle":
        hints.append("for a GPU: Settings > Accelerator > GPU, then rerun the notebook")
    return hints
