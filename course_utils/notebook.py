"""What every lesson notebook does first: set up the session, report the device.

Each lesson's set-up cell (written by ``course release``, see
:mod:`course_utils.instructor.cells`) imports this module and calls
:func:`setup_notebook`, which quiets TensorFlow, prints the device report and
returns the runtime profile.

Examples
--------
>>> on_colab({})
False
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from course_utils.runtime import profiles


def on_colab(modules: Mapping[str, Any] | None = None) -> bool:
    """Whether this Python runs inside Google Colab (``google.colab`` is loaded).

    ``modules`` defaults to ``sys.modules``; tests pass their own.

    >>> on_colab({"google.colab": object()})
    True
    """
    return "google.colab" in (sys.modules if modules is None else modules)


def setup_notebook(profile: str | None = None, *, report: bool = True) -> profiles.Profile:
    """Prepare a notebook session and return its runtime profile.

    Quiets TensorFlow's start-up log (and AutoGraph, which in an interactive session
    echoes its warnings to the notebook), turns on GPU memory growth, switches
    TensorFlow's graph optimizer on or off as the profile says
    (:attr:`~course_utils.runtime.profiles.Profile.optimize_graphs`), makes Matplotlib
    figures returned by the course helpers display as PNG, and (``report=True``)
    prints the device report with :func:`print_setup_report`. ``profile`` forces a
    profile; by default :func:`course_utils.runtime.profiles.choose_profile` picks it from the
    environment (``grading`` while nbgrader validates or grades, ``cpu`` on a GPU too:
    the report then says how to opt in to the ``gpu`` sizes). This is where hardware (:mod:`course_utils.runtime.device`) and
    profiles meet, as in ``course doctor`` (:mod:`course_utils.runtime.doctor`); neither
    module imports the other.

    Examples
    --------
    >>> p = setup_notebook("smoke", report=False)    # doctest: +SKIP
    >>> p.name                                        # doctest: +SKIP
    'smoke'
    """
    from course_utils.runtime import device, tf_setup

    tf_setup.quiet_environment()
    tf = tf_setup.import_tensorflow()
    tf.autograph.set_verbosity(0)  # no "WARNING: AutoGraph could not transform ..." in outputs
    devices = device.detect_devices()
    device.configure_gpus(devices, tf=tf)
    if profile is None:
        profile = profiles.choose_profile()
    chosen = profiles.get_profile(profile)
    tf.config.optimizer.set_experimental_options(
        {"disable_meta_optimizer": not chosen.optimize_graphs})
    _display_figures_as_png()
    if report:
        print_setup_report(chosen, devices)
    return chosen


def print_setup_report(profile: profiles.Profile, report: Any) -> None:
    """Print the device report and one line on what the profile means.

    ``report`` is a :class:`course_utils.runtime.device.DeviceReport`.

    Examples
    --------
    >>> print_setup_report(profiles.get_profile("smoke"), None)
    Profile smoke: 32x32 images, 480 for training, 2 epochs per full run.
    """
    if report is not None:
        from course_utils.runtime import doctor

        doctor.print_device_report(report, profile=profile.name)
    print(
        f"Profile {profile.name}: {profile.image_size}x{profile.image_size} images, "
        f"{profile.train_size} for training, {profile.epochs} epochs per full run."
    )
    if getattr(report, "has_gpu", False) and profile.name == "cpu":
        print(profiles.GPU_NOTE)


def _display_figures_as_png() -> None:
    """In IPython, show a returned ``matplotlib.figure.Figure`` as a PNG image."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - plain Python
        return
    shell = get_ipython()
    if shell is None:
        return
    from matplotlib.figure import Figure

    formatter = shell.display_formatter.formatters["image/png"]
    formatter.for_type(Figure, _figure_png)


def _figure_png(fig: Any) -> bytes:
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()


