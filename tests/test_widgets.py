"""Explorers show a static figure everywhere and sliders where widgets render."""

import pytest
from matplotlib.figure import Figure

from course_utils.widgets import Slider, explore


def _draw(lr: float, momentum: float = 0.0) -> Figure:
    fig = Figure()
    fig.add_subplot().plot([0, 1], [lr, momentum])
    return fig


def test_static_figure_is_drawn_at_the_default_values():
    view = explore(_draw, {"lr": Slider(0.001, 1.0, 0.1, 0.3, log=True)}, display=False)
    line = view.static.axes[0].lines[0]
    assert line.get_ydata()[0] == pytest.approx(0.3)
    assert view.widget is None


def test_widget_has_one_slider_per_control_and_redraws(monkeypatch):
    shown = []
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    view = explore(
        _draw,
        {"lr": Slider(0.001, 1.0, 0.1, 0.3, log=True), "momentum": Slider(0.0, 0.99, 0.01, 0.9)},
    )
    assert shown[0] is view.static  # the fallback comes first
    sliders = view.widget.children[0].children
    assert [type(s).__name__ for s in sliders] == ["FloatLogSlider", "FloatSlider"]
    assert sliders[1].value == pytest.approx(0.9)


@pytest.mark.parametrize("execution", ["autograde", "validate"])
def test_under_nbgrader_only_the_static_figure_is_shown(monkeypatch, execution):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    monkeypatch.setenv("NBGRADER_EXECUTION", execution)
    view = explore(_draw, {"lr": Slider(0.001, 1.0, 0.1, 0.3, log=True)})
    assert shown == [view.static], "nobody can move a slider while nbgrader runs the notebook"
    assert view.widget is None


@pytest.mark.parametrize(
    "kwargs, message",
    [({"min": 0, "max": 1, "step": 0.1, "value": 2}, "outside"),
     ({"min": 0, "max": 1, "step": 0, "value": 0.5}, "step"),
     ({"min": 0, "max": 1, "step": 0.1, "value": 0.5, "log": True}, "positive minimum")],
)
def test_bad_slider_is_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Slider(**kwargs)


def test_draw_must_return_a_figure():
    with pytest.raises(TypeError, match="Figure"):
        explore(lambda lr: None, {"lr": Slider(0, 1, 0.1, 0.5)}, display=False)
