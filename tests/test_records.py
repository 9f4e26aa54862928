"""Record files: append-only JSONL that survives a torn last line, atomic whole-file writes."""

from __future__ import annotations

import json

import pytest

from bench.rundir import records


def test_append_then_read_round_trips(tmp_path):
    path = tmp_path / "x.jsonl"
    run = records.TaskRun(model="m", role="teacher", task="t", n_samples=3, serving_s=1.5, started_at=0.0, chance=None)
    records.append_jsonl(path, [run])
    records.append_jsonl(path, [{"model": "n"}])
    rows = records.read_jsonl(path)
    assert rows[0]["serving_s"] == 1.5 and rows[0]["chance"] is None
    assert rows[1] == {"model": "n"}


def test_task_runs_written_before_the_rename_read_wall_s_as_serving_s(tmp_path):
    """Run folders from before ``TaskRun.wall_s`` became ``serving_s`` still load and verify."""
    path = tmp_path / records.TASK_RUNS
    old = {
        "model": "m",
        "role": "teacher",
        "task": "t",
        "n_samples": 3,
        "wall_s": 1.5,
        "started_at": 0.0,
        "chance": None,
    }
    new = records.TaskRun(model="m", role="teacher", task="u", n_samples=2, serving_s=2.5, started_at=0.0, chance=0.25)
    path.write_text(json.dumps(old) + "\n")
    records.append_jsonl(path, [new])
    rows = records.read_task_runs(path)
    assert [r["serving_s"] for r in rows] == [1.5, 2.5] and all("wall_s" not in r for r in rows)
    assert rows[0] == {**{k: v for k, v in old.items() if k != "wall_s"}, "serving_s": 1.5}
    assert records.TaskRun(**rows[0]).serving_s == 1.5


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


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_atomic_write_gives_the_mode_the_umask_allows(tmp_path, umask, mode):
    import os

    old = os.umask(umask)
    try:
        records.write_json(tmp_path / "status.json", {"status": "success"})
    finally:
        os.umask(old)
    assert (tmp_path / "status.json").stat().st_mode & 0o777 == mode


def no_space(*args, **kwargs):
    import errno

    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_names_the_file_and_the_space_it_needs(tmp_path, monkeypatch):
    path = tmp_path / "summary.csv"
    path.write_text("old\n")
    monkeypatch.setattr(records.os, "fsync", no_space)
    with pytest.raises(records.NoSpace) as err:
        records.write_atomic(path, "x" * 1000)
    assert str(path) in str(err.value) and "1,000 bytes" in str(err.value)
    assert path.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["summary.csv"]


def test_a_full_disk_leaves_no_torn_record_line(tmp_path, monkeypatch):
    path = tmp_path / "samples.jsonl"
    records.append_jsonl(path, [{"a": 1}])
    monkeypatch.setattr(records.os, "fsync", no_space)
    with pytest.raises(records.NoSpace, match="samples.jsonl"):
        records.append_jsonl(path, [{"a": 2}, {"a": 3}])
    assert path.read_text() == '{"a": 1}\n'
