"""Atomic writes: the target is either the old or the complete new content."""

import json

import pytest

from course_utils import io


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
