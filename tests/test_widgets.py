"""Explorers show a static figure everywhere and sliders where widgets render."""

import base64

import pytest
from matplotlib.figure import Figure
from nbclient import NotebookClient
from nbconvert import HTMLExporter
from nbformat.v4 import new_code_cell, new_notebook

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


def _record_display(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display",
                        lambda obj, **kwargs: shown.append((obj, kwargs)))
    return shown


def test_widget_has_one_slider_per_control_and_redraws(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    _record_display(monkeypatch)
    view = explore(
        _draw,
        {"lr": Slider(0.001, 1.0, 0.1, 0.3, log=True), "momentum": Slider(0.0, 0.99, 0.01, 0.9)},
    )
    sliders = view.widget.children[0].children
    assert [type(s).__name__ for s in sliders] == ["FloatLogSlider", "FloatSlider"]
    assert sliders[1].value == pytest.approx(0.9)


def test_where_widgets_render_the_figure_is_shown_once_with_the_png_as_fallback(monkeypatch):
    # One output with two representations: a front end that renders widgets shows the
    # sliders and their figure, any other shows the static PNG; never both at once.
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    shown = _record_display(monkeypatch)
    view = explore(_draw, {"lr": Slider(0.001, 1.0, 0.1, 0.3, log=True)})
    # (the widget's own first drawing goes into its Output widget, recorded here as well)
    assert all(obj is not view.static for obj, _ in shown), "static figure shown beside it"
    bundles = [(obj, kwargs) for obj, kwargs in shown if kwargs.get("raw")]
    assert len(bundles) == 1, shown
    data, kwargs = bundles[0]
    assert data["application/vnd.jupyter.widget-view+json"]["model_id"] == view.widget.model_id
    assert base64.b64decode(data["image/png"]).startswith(b"\x89PNG")


def test_in_a_kernel_the_explorer_is_one_output_and_nbconvert_shows_its_png(tmp_path):
    nb = new_notebook(cells=[new_code_cell(
        "from matplotlib.figure import Figure\n"
        "from course_utils.widgets import Slider, explore\n"
        "def draw(lr):\n"
        "    fig = Figure()\n"
        "    fig.add_subplot().plot([0, 1], [0, lr])\n"
        "    return fig\n"
        "explore(draw, {'lr': Slider(0.1, 1.0, 0.1, 0.5)});")],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}})
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = nb.cells[0].outputs
    assert [o.output_type for o in outputs] == ["display_data"], outputs
    assert {"application/vnd.jupyter.widget-view+json", "image/png"} <= set(outputs[0].data)
    # Without widget state (GitHub, nbconvert, a notebook reopened elsewhere) the PNG shows.
    nb.metadata.pop("widgets", None)
    html, _ = HTMLExporter().from_notebook_node(nb)
    assert html.count('src="data:image/png;base64,') == 1


@pytest.mark.parametrize("execution", ["autograde", "validate"])
def test_under_nbgrader_only_the_static_figure_is_shown(monkeypatch, execution):
    shown = _record_display(monkeypatch)
    monkeypatch.setenv("NBGRADER_EXECUTION", execution)
    view = explore(_draw, {"lr": Slider(0.001, 1.0, 0.1, 0.3, log=True)})
    assert shown == [(view.static, {})], "nobody can move a slider while nbgrader runs it"
    assert view.widget is None


@pytest.mark.parametrize(
    "kwargs, message",
    [({"min": 0, "max": 1, "step": 0.1, "value": 2}, r"^Slider.value: expected a number >= 0 and <= 1"),
     ({"min": 0, "max": 1, "step": 0, "value": 0.5}, r"^Slider.step: expected a finite number > 0"),
     ({"min": 0, "max": 1, "step": 0.1, "value": 0.5, "log": True},
      r"^Slider.min: expected a finite number > 0, got 0"),
     ({"min": 1, "max": 0, "step": 0.1, "value": 0.5}, r"^Slider.max: expected a finite number >= 1")],
)
def test_bad_slider_is_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Slider(**kwargs)


def test_draw_must_return_a_figure():
    with pytest.raises(TypeError, match="Figure"):
        explore(lambda lr: None, {"lr": Slider(0, 1, 0.1, 0.5)}, display=False)
