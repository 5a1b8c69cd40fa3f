"""Runtime profile selection and budgets."""

import pytest

from course_utils.runtime import profiles


def test_profiles_grow_from_grading_to_gpu():
    grading, smoke, cpu, gpu = (profiles.PROFILES[n] for n in ("grading", "smoke", "cpu", "gpu"))
    for field in ("image_size", "train_size", "val_size", "test_size", "epochs", "short_epochs",
                  "few_shot_per_class", "few_shot_epochs"):
        values = [getattr(p, field) for p in (grading, smoke, cpu, gpu)]
        assert values == sorted(values), f"{field}: {values}"
    assert smoke.input_shape == (smoke.image_size, smoke.image_size, 1)


def test_the_grading_profile_keeps_what_the_lessons_need():
    """Bounds the lesson code puts on the grading budget (see ``profiles.PROFILES``)."""
    grading, smoke = profiles.PROFILES["grading"], profiles.PROFILES["smoke"]
    assert grading.name == profiles.GRADING == "grading"
    assert (grading.image_size, grading.seed) == (smoke.image_size, smoke.seed), (
        "answers that read a lesson's globals see the shapes and seeds they see in smoke")
    assert grading.few_shot_epochs > 3, "lesson 02's early stopping waits 3 epochs for progress"
    assert min(grading.val_size, grading.test_size) >= 12, "every class in validation and test"
    assert grading.train_size >= 10 and grading.train_size // grading.batch_size >= 2
    assert grading.few_shot_per_class >= 1
    assert grading.train_size < smoke.train_size and grading.few_shot_per_class < smoke.few_shot_per_class


@pytest.mark.parametrize(
    "environ, expected",
    [
        ({"COURSE_PROFILE": "gpu", "CI": "true"}, "gpu"),  # explicit choice wins
        ({"COURSE_PROFILE": " CPU "}, "cpu"),
        ({"CI": "true"}, "smoke"),
        ({"NBGRADER_EXECUTION": "autograde"}, "grading"),
        ({"NBGRADER_EXECUTION": "validate", "CI": "true"}, "grading"),  # nbgrader beats CI
        ({"COURSE_PROFILE": "smoke", "NBGRADER_EXECUTION": "autograde"}, "smoke"),
        ({"COURSE_PROFILE": "grading"}, "grading"),
        ({"CI": "false"}, "cpu"),
        ({}, "cpu"),
    ],
)
def test_selection_rules(environ, expected):
    assert profiles.choose_profile(environ) == expected


def test_a_profile_no_run_has_verified_is_never_the_default(monkeypatch):
    """A Colab GPU runs the verified cpu sizes; the gpu sizes are chosen by name only."""
    assert profiles.OPT_IN == {"gpu"}
    for name in profiles.OPT_IN:
        assert name in profiles.PROFILES and name in profiles.GPU_NOTE
    for environ in ({}, {"CI": "0"}, {"COLAB_RELEASE_TAG": "release-colab_2026"}):
        assert profiles.choose_profile(environ) not in profiles.OPT_IN
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    assert profiles.get_profile().name == "cpu"
    assert f"{profiles.ENV_VAR}=gpu" in profiles.GPU_NOTE


def test_unknown_profile_names_the_source_and_the_choices():
    with pytest.raises(ValueError, match="COURSE_PROFILE.*'fast'.*smoke, cpu, gpu, grading"):
        profiles.choose_profile({"COURSE_PROFILE": "fast"})
    with pytest.raises(ValueError, match="unknown profile 'tiny'"):
        profiles.get_profile("tiny")


def test_get_profile_uses_the_environment(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "cpu")
    assert profiles.get_profile().name == "cpu"
    assert profiles.get_profile("smoke").as_dict()["name"] == "smoke"


def test_profile_from_environment_says_none_when_the_hardware_decides():
    assert profiles.profile_from_environment({"CI": "no"}) is None
    assert profiles.profile_from_environment({"CI": "yes"}) == "smoke"
    assert profiles.profile_from_environment({"NBGRADER_EXECUTION": ""}) is None


@pytest.mark.parametrize("execution", ["autograde", "validate"])
def test_nbgrader_runs_notebooks_in_the_grading_profile(execution):
    """Autograding and the student's Validate button run a notebook the same way."""
    assert profiles.choose_profile({"NBGRADER_EXECUTION": execution}) == "grading"


def test_profiles_module_imports_nothing_of_course_utils_at_module_level():
    import ast
    from pathlib import Path

    tree = ast.parse(Path(profiles.__file__).read_text(encoding="utf-8"))
    imported = [node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
    names = [ast.unparse(node) for node in imported if "course_utils" in ast.unparse(node)]
    assert names == [], f"profiles should be a pure rule, but imports {names}"


def test_setup_notebook_switches_graph_optimization_as_the_profile_says():
    """Only the tiny profiles turn Grappler off; a later set-up for another profile turns it
    back on (a fresh interpreter: the setting is global to TensorFlow)."""
    import subprocess
    import sys

    assert [p.name for p in profiles.PROFILES.values() if not p.optimize_graphs] == [
        "smoke", "grading"]
    script = (
        "from course_utils import notebook\n"
        "import tensorflow as tf\n"
        "for name in ('smoke', 'cpu', 'grading', 'gpu'):\n"
        "    notebook.setup_notebook(name, report=False)\n"
        "    options = tf.config.optimizer.get_experimental_options()\n"
        "    print(name, options.get('disable_meta_optimizer', False))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["smoke", "True", "cpu", "False", "grading", "True",
                                   "gpu", "False"], done.stdout
