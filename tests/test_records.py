"""Record files: append-only JSONL that survives a torn last line, atomic whole-file writes."""

from __future__ import annotations

import json

import pytest

from bench import records


def test_append_then_read_round_trips(tmp_path):
    path = tmp_path / "x.jsonl"
    run = records.TaskRun(model="m", role="teacher", task="t", n_samples=3, wall_s=1.5, started_at=0.0, chance=None)
    records.append_jsonl(path, [run])
    records.append_jsonl(path, [{"model": "n"}])
    rows = records.read_jsonl(path)
    assert rows[0]["wall_s"] == 1.5 and rows[0]["chance"] is None
    assert rows[1] == {"model": "n"}


def test_a_torn_last_line_is_ignored_but_a_torn_middle_line_is_an_error(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}\n{"a": ')
    assert records.read_jsonl(path) == [{"a": 1}, {"a": 2}]
    path.write_text('{"a": 1}\n{"a": \n{"a": 3}\n')
    with pytest.raises(json.JSONDecodeError):
        records.read_jsonl(path)


def test_missing_file_reads_as_empty(tmp_path):
    assert records.read_jsonl(tmp_path / "nope.jsonl") == []


def test_atomic_write_replaces_whole_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "status.json"
    records.write_json(path, {"status": "running"})
    records.write_json(path, {"status": "success"})
    assert json.loads(path.read_text()) == {"status": "success"}
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]
