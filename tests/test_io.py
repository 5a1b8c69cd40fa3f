"""Atomic writes: the target is either the old or the complete new content."""

import json

import pytest

from course_utils.runtime import io


def test_write_json_round_trip_and_numpy_values(tmp_path):
    import numpy as np

    path = io.write_json(tmp_path / "sub" / "m.json", {"a": np.float32(0.5), "b": np.arange(3)})
    assert io.read_json(path) == {"a": 0.5, "b": [0, 1, 2]}
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["m.json"]


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "history.json"
    target.write_text('{"old": true}')
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as tmp:
            tmp.write_text('{"half": ')
            raise RuntimeError("killed mid-write")
    assert json.loads(target.read_text()) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["history.json"]


def test_temporary_keeps_the_suffix_for_format_sniffing_writers(tmp_path):
    with io.atomic_path(tmp_path / "model.keras") as tmp:
        assert tmp.suffix == ".keras" and tmp.parent == tmp_path
        tmp.write_bytes(b"x")
    assert (tmp_path / "model.keras").read_bytes() == b"x"


def test_read_json_error_names_the_file(tmp_path):
    bad = tmp_path / "broken.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="broken.json: not valid JSON"):
        io.read_json(bad)


@pytest.fixture
def umask():
    """Set the process umask for one test, then put the old one back."""
    import os

    old = os.umask(0o022)
    os.umask(old)
    yield lambda mask: os.umask(mask)
    os.umask(old)


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_new_files_get_the_permissions_the_umask_allows(tmp_path, umask, mask, mode):
    # As `open(path, "w")` would: a report written by `course grade` or `course train`
    # is readable by the group and others under the usual umask 022, not owner-only.
    umask(mask)
    for path in (io.write_text(tmp_path / "task_stats.csv", "task,points\n"),
                 io.write_json(tmp_path / "grading_report.json", {"ok": True})):
        assert path.stat().st_mode & 0o777 == mode, f"{path.name}: {oct(path.stat().st_mode)}"
    with io.atomic_path(tmp_path / "histogram.png") as tmp:  # what savefig-style writers get
        tmp.write_bytes(b"\x89PNG")
    assert (tmp_path / "histogram.png").stat().st_mode & 0o777 == mode


def test_a_replaced_file_keeps_its_permissions(tmp_path, umask):
    umask(0o022)
    target = tmp_path / "shared.json"
    target.write_text("{}")
    target.chmod(0o640)
    io.write_json(target, {"new": 1})
    assert target.stat().st_mode & 0o777 == 0o640
