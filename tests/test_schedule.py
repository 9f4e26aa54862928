"""Pooled scheduling: passes run side by side, the server starts on the main thread, failures
stop everything, and the records are those of running the passes one by one."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bench.evaluation import schedule
from bench.rundir import records
from conftest import ROOT


def test_pooled_order_is_repeat_major_and_sequential_task_major():
    assert [(p.task, p.repeat) for p in schedule.passes_of(["a", "b"], 2, schedule.POOLED)] == [
        ("a", 0),
        ("b", 0),
        ("a", 1),
        ("b", 1),
    ]
    assert [(p.task, p.repeat) for p in schedule.passes_of(["a", "b"], 2, schedule.SEQUENTIAL)] == [
        ("a", 0),
        ("a", 1),
        ("b", 0),
        ("b", 1),
    ]
    assert schedule.workers_for(192, 256, schedule.POOLED) == 16
    assert schedule.workers_for(3, 64, schedule.POOLED) == 3
    assert schedule.workers_for(50, 64, schedule.SEQUENTIAL) == 1


def test_passes_overlap_and_the_server_starts_once_on_the_main_thread():
    started_on, running, peak = [], [0], [0]
    lock = threading.Lock()

    def start() -> str:
        started_on.append(threading.current_thread() is threading.main_thread())
        time.sleep(0.1)
        return "http://server"

    gate = schedule.ServerGate(start)

    def run_one(client, p):
        assert gate.base() == "http://server"
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return schedule.PassResult(p.task, p.repeat, {}, [client])

    passes = schedule.passes_of(["a", "b", "c"], 4, schedule.POOLED)
    results = schedule.run_passes(passes, run_one, object, 4, gate, lambda: None)
    assert [(r.task, r.repeat) for r in results] == [(p.task, p.repeat) for p in passes]
    assert started_on == [True]
    assert peak[0] == 4
    assert len({id(r.meter[0]) for r in results}) <= 4  # clients are reused, one per thread


def test_a_failing_pass_aborts_the_rest_and_raises():
    aborted = []
    gate = schedule.ServerGate(lambda: "x")

    def run_one(client, p):
        if p.repeat == 1:
            raise RuntimeError("boom")
        time.sleep(0.05)
        return schedule.PassResult(p.task, p.repeat, {}, [])

    with pytest.raises(RuntimeError, match="boom"):
        schedule.run_passes(
            schedule.passes_of(["a"], 40, schedule.POOLED), run_one, object, 2, gate, lambda: aborted.append(True)
        )
    assert aborted == [True]


TIMING = {"latency_s", "ttft_s", "tpot_s", "queue_s", "from_cache", "sent_at", "done_at", "latency_item_s"}


@pytest.mark.e2e
def test_pooled_and_sequential_scheduling_give_the_same_records(tmp_path, zoo_dir):
    """Same seeds, k = 3 samples per item at temperature 0.8: identical answers and metering."""

    def run(scheduler: str) -> Path:
        out = tmp_path / scheduler
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench",
                "run",
                "run.only=tiny_student",
                "suite.limit=12",
                "suite.repeats=3",
                "suite.temperature=0.8",
                f"run.scheduler={scheduler}",
                "run.timing_replays=0",
                f"run.results_dir={out}",
                f"hydra.run.dir={out / 'run'}",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
        return out / "run"

    pooled, sequential = run("pooled"), run("sequential")

    def rows(run_dir: Path) -> list[dict]:
        out = [{k: v for k, v in r.items() if k not in TIMING} for r in records.read_jsonl(run_dir / records.SAMPLES)]
        return sorted(out, key=lambda r: (r["task"], r["repeat"], r["doc_id"]))

    a, b = rows(pooled), rows(sequential)
    assert len(a) == 3 * 3 * 12 and a == b
    assert len({r["response"] for r in a if r["task"] == "smoke_think"}) > 12  # the repeats differ
    model = records.read_jsonl(pooled / records.MODEL_RUNS)[0]
    assert model["scheduler"] == "pooled" and model["passes_at_once"] > 1 and 0 < model["utilisation"] <= 1
    assert records.read_jsonl(sequential / records.MODEL_RUNS)[0]["passes_at_once"] == 1
    tasks = records.read_jsonl(pooled / records.TASK_RUNS)
    assert sum(t["serving_s"] for t in tasks) == pytest.approx(model["serving_s"], rel=1e-9)
    verify = subprocess.run(
        [sys.executable, "-m", "bench", "verify", str(pooled)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    json.loads((pooled / "manifest.json").read_text())
