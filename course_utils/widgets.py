"""Interactive explorers for the lessons, with a static fallback.

:func:`explore` shows sliders that redraw a figure, as one output that carries
two representations: the widget, and a PNG of the figure drawn at the default
slider values. A front end picks the richest one it can show: JupyterLab and
Notebook with ipywidgets show the sliders and their figure (once, not the PNG
beside it), while GitHub, nbconvert without widget state, a front end without
ipywidgets and graders show the PNG. A notebook therefore shows something useful
everywhere, and the sliders are a bonus.

While nbgrader runs a notebook (``NBGRADER_EXECUTION`` is set when it
autogrades or validates) nobody can move a slider, so only the static figure
is shown. This also keeps widget messages out of graded runs: with them,
nbclient occasionally missed the reply of the explorer's cell and sat out the
whole cell timeout before going on (3 of 46 headless runs of lesson 03 here,
none of 24 without the widget; jupyter/nbclient#312 reports the same).

Examples
--------
>>> from matplotlib.figure import Figure

from course_utils.runtime.checks import check_scalar
>>> def draw(lr):
...     fig = Figure()
...     fig.add_subplot().plot([0, 1], [0, lr])
...     return fig
>>> view = explore(draw, {"lr": Slider(0.01, 1.0, 0.01, 0.1)}, display=False)
>>> type(view.static).__name__
'Figure'
"""

from __future__ import annotations

import base64
import dataclasses
import io
import math
import os
from collections.abc import Callable, Mapping
from typing import Any

from matplotlib.figure import Figure

from course_utils.runtime.checks import check_scalar


@dataclasses.dataclass(frozen=True)
class Slider:
    """A numeric control: range, step and starting value; ``log=True`` for rates.

    Raises ``ValueError`` naming the field for a value outside ``[min, max]``, a step
    that is not positive, or a log slider whose minimum is not positive.

    >>> Slider(0.001, 1.0, 0.1, 0.3, log=True).value
    0.3
    >>> Slider(0.0, 1.0, 0.1, 2.0)
    Traceback (most recent call last):
    ...
    ValueError: Slider.value: expected a number >= 0 and <= 1, got 2.0
    """

    min: float
    max: float
    step: float
    value: float
    log: bool = False
    description: str = ""

    def __post_init__(self) -> None:
        low = check_scalar(self.min, "Slider.min", float, min_val=0 if self.log else None,
                           include_boundaries="neither", finite=True)
        check_scalar(self.max, "Slider.max", float, min_val=low, finite=True)
        check_scalar(self.value, "Slider.value", float, min_val=low, max_val=self.max)
        check_scalar(self.step, "Slider.step", float, min_val=0, include_boundaries="neither",
                     finite=True)


@dataclasses.dataclass
class Explorer:
    """What :func:`explore` built: the static figure and the widget (or None)."""

    static: Figure
    widget: Any | None


def explore(
    draw: Callable[..., Figure],
    controls: Mapping[str, Slider],
    *,
    display: bool = True,
) -> Explorer:
    """Show sliders that redraw ``draw(**values)``, with ``draw(**defaults)`` as fallback.

    ``draw`` takes one keyword argument per control and returns a Figure. The
    display is one output holding the widget and a PNG of the static figure: where
    widgets render the front end shows only the widget, elsewhere only the PNG.
    Without ipywidgets or under nbgrader only the static figure is shown, and with
    ``display=False`` nothing (no widget is made), so the call never fails where
    widgets cannot render.
    """
    if not controls:
        raise ValueError("controls: expected at least one {name: Slider}, got none")
    defaults = {name: slider.value for name, slider in controls.items()}
    static = draw(**defaults)
    if not isinstance(static, Figure):
        raise TypeError(f"draw: expected a function that returns a matplotlib Figure, got one "
                        f"that returns {type(static).__name__}")
    widget = None
    if display:
        from IPython.display import display as show

        if not os.environ.get("NBGRADER_EXECUTION"):
            widget = _build_widget(draw, controls)
        if widget is None:
            show(static)
        else:
            show(with_fallback(widget, static), raw=True)
    return Explorer(static=static, widget=widget)


def with_fallback(widget: Any, figure: Figure) -> dict[str, Any]:
    """The display data of ``widget`` with a PNG of ``figure`` as its fallback.

    Front ends show the richest representation they can: the widget view where
    ipywidgets render, the PNG elsewhere. Display it with
    ``IPython.display.display(data, raw=True)``.

    >>> import ipywidgets
    >>> data = with_fallback(ipywidgets.IntSlider(), Figure())
    >>> sorted(data)
    ['application/vnd.jupyter.widget-view+json', 'image/png', 'text/plain']
    """
    data = dict(widget._repr_mimebundle_())
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    data["image/png"] = base64.b64encode(buffer.getvalue()).decode("ascii")
    return data


def _build_widget(draw: Callable[..., Figure], controls: Mapping[str, Slider]) -> Any | None:
    try:
        import ipywidgets as w
    except ImportError:  # pragma: no cover - ipywidgets is a dependency
        return None
    sliders = {}
    for name, s in controls.items():
        label = s.description or name
        if s.log:
            sliders[name] = w.FloatLogSlider(
                value=s.value, base=10, min=math.log10(s.min), max=math.log10(s.max),
                step=s.step, description=label, continuous_update=False,
            )
        else:
            sliders[name] = w.FloatSlider(
                value=s.value, min=s.min, max=s.max, step=s.step, description=label,
                continuous_update=False,
            )

    def redraw(**values: float) -> None:
        from IPython.display import display as show

        show(draw(**values))

    return w.VBox([w.HBox(list(sliders.values())), w.interactive_output(redraw, sliders)])
