"""The `course` command: each subcommand's help ends with examples and says what its
defaults mean, and running one command loads only its own module."""

from __future__ import annotations

import subprocess
import sys

import pytest

from course_utils.instructor import cli


def _help(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as info:
        cli.main([*argv, "--help"])
    assert info.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_every_subcommand_help_ends_with_a_short_example(capsys, command):
    text = _help(capsys, command)
    assert "examples:" in text, f"`course {command} --help` has no example"
    examples = text.split("examples:", 1)[1]
    assert f"course {command}" in examples
    assert len(examples.strip().splitlines()) <= 12, "examples should stay short"


def test_top_level_help_lists_every_command_and_points_at_their_help(capsys):
    text = _help(capsys)
    assert all(name in text for name in cli.COMMANDS)
    assert "course COMMAND --help" in text


def test_pretrain_help_shows_its_default_path_once(capsys):
    text = " ".join(_help(capsys, "pretrain").split())
    assert "runs/pretrain/runs/pretrain" not in text
    assert "default: runs/pretrain/fingers_base_alt_32px.weights.h5" in text


@pytest.mark.parametrize("command", ["release", "grade"])
def test_the_course_option_says_how_the_course_root_is_found(capsys, command):
    # After a pip install "assignments/ of this repository" means nothing: say where it looks.
    text = " ".join(_help(capsys, command).split())
    course_help = text.rsplit("--course DIR", 1)[1].split(" --", 1)[0]
    assert "of this repository" not in course_help
    assert "nbgrader_config.py" in course_help and "working folder" in course_help


def test_a_command_imports_only_its_own_module():
    code = ("import sys; from course_utils.instructor import cli\n"
            "try:\n    cli.main(['train', '--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith('course_utils.')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    loaded = done.stdout.strip().splitlines()[-1]
    assert "course_utils.reference" in loaded
    for other in ("instructor.grading", "instructor.release", "transfer", "instructor.demo"):
        assert f"course_utils.{other}'" not in loaded, f"`course train` imported {other}"
    assert "tensorflow" not in done.stdout
