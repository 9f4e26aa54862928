"""Timing replays (bench/evaluation/timing.py): each task timed alone k times, billed the median, kept in
the cache so a rerun starts no server for them, and re-derived by `bench verify`."""

from __future__ import annotations

import statistics
from concurrent.futures import Future
from pathlib import Path

import pytest

import runfolder
from bench import verify
from bench.evaluation.cache import ResponseCache
from bench.evaluation.timing import replay_task, replay_times, task_times
from bench.rundir import records
from bench.serving.dispatch import Reply

REQUESTS = [("timing", "/completions", {"prompt": f"{i}+{i}=", "max_tokens": 4}) for i in range(3)] + [
    ("timing", "/completions", {"prompt": "0+0=", "max_tokens": 4})
]  # the same body twice


class Server:
    """Answers at once; replay r's requests take ``r`` seconds each (the 2nd a hiccup of 10 s).
    The first batch sent is the untimed warm-up pass (replay 0 here)."""

    def __init__(self):
        self.sent: list[tuple[str, dict]] = []
        self.started = 0
        self.clock = 0.0

    def base(self) -> str:
        self.started += 1
        return "http://127.0.0.1:1/v1"

    def submit(self, url: str, payload: dict) -> Future:
        self.sent.append((url, payload))
        replay = (len(self.sent) - 1) // len(REQUESTS)
        took = 10.0 if replay == 2 else float(max(replay, 1))
        f: Future = Future()
        f.set_result(
            Reply(
                {"usage": {"prompt_tokens": 3, "completion_tokens": 2}, "choices": [{"text": "x"}]},
                self.clock,
                self.clock + took,
            )
        )
        if len(self.sent) % len(REQUESTS) == 0:
            self.clock += 100.0
        return f


def test_each_replay_sends_every_request_and_the_median_drops_a_hiccup(tmp_path):
    server = Server()
    rows = replay_task("m", "t", REQUESTS, 3, ResponseCache(tmp_path, "k" * 64), server.submit, server.base)
    # One untimed pass first (new batch shapes pay for kernel set-up), then three timed ones.
    assert len(server.sent) == 4 * len(REQUESTS) and server.sent[0][0] == "http://127.0.0.1:1/v1/completions"
    assert [r.replay for r in rows] == [1] * 4 + [2] * 4 + [3] * 4
    assert all(r.tokens == 5 and not r.from_cache for r in rows)
    assert replay_times(rows) == {"t": [1.0, 10.0, 3.0]}
    assert task_times(rows) == {"t": 3.0}  # not the mean, 4.67: one hiccup does not move it


def test_a_rerun_takes_the_replays_from_the_cache_and_starts_no_server(tmp_path):
    first = Server()
    cache = ResponseCache(tmp_path, "k" * 64)
    rows = replay_task("m", "t", REQUESTS, 3, cache, first.submit, first.base)
    cache.close()
    again = Server()
    reread = replay_task("m", "t", REQUESTS, 3, ResponseCache(tmp_path, "k" * 64), again.submit, again.base)
    assert again.sent == [] and again.started == 0
    assert all(r.from_cache for r in reread)
    assert [(r.sent_at, r.answered_at, r.tokens) for r in reread] == [
        (r.sent_at, r.answered_at, r.tokens) for r in rows
    ]
    # A fourth replay is not in the cache: only it is sent.
    more = Server()
    replay_task("m", "t", REQUESTS, 4, ResponseCache(tmp_path, "k" * 64), more.submit, more.base)
    assert len(more.sent) == 2 * len(REQUESTS) and more.started == 1  # its untimed pass, then it


def test_replays_do_not_answer_the_evaluation_from_the_cache(tmp_path):
    """Their cache keys are their own: an evaluation request never finds a timing entry."""
    cache = ResponseCache(tmp_path, "k" * 64)
    server = Server()
    replay_task("m", "t", REQUESTS, 1, cache, server.submit, server.base)
    for kind in ("gen", "ll"):
        assert all(cache.get(cache.entry_key(kind, body)) is None for _, _, body in REQUESTS)


@pytest.fixture()
def timed_run(tmp_path) -> Path:
    """A run folder whose tiny_student / smoke_arith was billed by 3 timing replays."""
    folder = runfolder.write(tmp_path / "run")
    runs = records.read_jsonl(folder / records.TASK_RUNS)
    rows = [
        {
            "model": "tiny_student",
            "task": "smoke_arith",
            "replay": r,
            "sent_at": 10.0 * r,
            "answered_at": 10.0 * r + took + 0.1 * i,
            "tokens": 7,
            "from_cache": False,
        }
        for r, took in ((1, 1.0), (2, 4.0), (3, 2.0))
        for i in range(2)
    ]
    records.append_jsonl(folder / records.TIMINGS, rows)
    for t in runs:
        if (t["model"], t["task"]) == ("tiny_student", "smoke_arith"):
            t.update(pooled_s=t["serving_s"], serving_s=2.1, timing_replays=3)
    (folder / records.TASK_RUNS).unlink()
    records.append_jsonl(folder / records.TASK_RUNS, runs)
    return folder


def test_verify_recomputes_the_median_and_the_pooled_share(timed_run):
    runs = records.read_jsonl(timed_run / records.TASK_RUNS)
    assert verify.check_serving_times(timed_run, runs) == []
    timed = next(t for t in runs if t["timing_replays"])
    assert timed["serving_s"] == statistics.median([1.1, 4.1, 2.1])

    timed["serving_s"] = 2.1 * (1 + 1e-6)
    assert any("median of its timing replays" in p for p in verify.check_serving_times(timed_run, runs))
    timed["serving_s"], timed["pooled_s"] = 2.1, timed["pooled_s"] * 1.01
    assert any("pooled_s" in p for p in verify.check_serving_times(timed_run, runs))
    timed["pooled_s"] /= 1.01
    timed["timing_replays"] = 4
    assert any("holds 3 replays" in p for p in verify.check_serving_times(timed_run, runs))
