"""`course demo` (what `make demo` runs) end to end, in the smoke profile."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest

from course_utils.instructor import cli, release


@pytest.mark.slow
def test_demo_runs_every_step_and_ends_with_a_summary_a_newcomer_can_read(
        tmp_path, monkeypatch, capsys, prepared_lesson):
    real_release = release.release_lessons
    prepared_lesson("00_workflow")  # generated now, before generate_course is replaced below

    def generated_once(lesson, dest, *, course_root=None, master=None, **_):
        # nbgrader's generate step is tested on every lesson elsewhere (and run once per
        # session, conftest.prepared_lesson): the demo reuses that course, unchanged.
        if master is not None:
            on_disk = release.read_notebook(release.master_path(lesson, course_root))
            assert nbformat.writes(master) == nbformat.writes(on_disk)
        shutil.copytree(prepared_lesson(lesson).course, dest)
        return Path(dest)

    def release_one_lesson_elsewhere():  # the same code, one lesson, not into notebooks/
        return real_release(["00_workflow"], notebooks_dir=tmp_path / "notebooks")

    monkeypatch.setattr(release, "release_lessons", release_one_lesson_elsewhere)
    monkeypatch.setattr(release, "generate_course", generated_once)
    status = cli.main(["demo", "--profile", "smoke", "--out", str(tmp_path / "demo")])
    out = capsys.readouterr().out
    assert status == 0
    for heading in ("1/4  Your machine", "2/4  Reference training run (smoke profile)",
                    "3/4  Releasing the lessons", "4/4  Grading a class", "Summary"):
        assert heading in out
    assert (tmp_path / "notebooks" / "00_workflow.ipynb").is_file()
    assert "1 lesson released to notebooks/" in out
    assert (tmp_path / "demo" / "reference" / "metrics.json").is_file()
    assert (tmp_path / "demo" / "grading" / "reports" / "00_workflow" / "grades.csv").is_file()
    summary = out.split("Summary", 1)[1]
    for student in ("ada", "grace", "alan"):
        assert student in summary, f"{student} missing from the grade table"
    assert "make lab" in summary and "rank-1" in summary.lower()
