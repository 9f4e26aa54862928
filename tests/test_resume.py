"""Reliability with real processes: a killed harness or a killed server loses no finished
answer, a rerun asks the server only for what is missing, and the result equals an
uninterrupted run's."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from bench.rundir import records
from conftest import ROOT
from test_serve import vllm_children

pytestmark = pytest.mark.e2e
LIMIT = 40
# One model (the student) keeps each run to a single server start.
STUDENT_ONLY = [
    "~model@models.tiny_teacher",
    "~model@models.tiny_control",
    "~model@models.frontier_api",
    f"suite.limit={LIMIT}",
]
# Columns that depend only on the answers (not on timing) must match exactly.
ANSWER_COLUMNS = [
    "model",
    "task",
    "n",
    "n_correct",
    "accuracy",
    "prompt_tokens",
    "completion_tokens",
    "reasoning_tokens_mean",
    "finish_length_share",
    "requests",
]


def bench_run(results: Path, run_dir: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench",
            "run",
            *STUDENT_ONLY,
            f"run.results_dir={results}",
            f"hydra.run.dir={run_dir}",
            *extra,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def cached_answers(results: Path) -> int:
    return sum(len(records.read_jsonl(p)) for p in (results / "cache").glob("*.jsonl"))


def wait_for_answers(proc: subprocess.Popen, results: Path, at_least: int, timeout: float = 400) -> int:
    deadline = time.time() + timeout
    while time.time() < deadline:
        n = cached_answers(results)
        if n >= at_least:
            return n
        assert proc.poll() is None, f"the run ended before {at_least} answers: {proc.stdout.read()[-3000:]}"
        time.sleep(0.05)
    raise AssertionError(f"fewer than {at_least} answers after {timeout}s")


@pytest.fixture(scope="module")
def whole(tmp_path_factory, zoo_dir) -> Path:
    """An uninterrupted run (its results folder, cache included)."""
    results = tmp_path_factory.mktemp("whole")
    proc = bench_run(results, results / "first")
    out, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, out[-3000:]
    return results


@pytest.fixture(scope="module")
def uninterrupted(whole) -> pd.DataFrame:
    return pd.read_csv(whole / "first" / "summary.csv")


def finish_and_compare(results: Path, interrupted_at: int, uninterrupted: pd.DataFrame) -> None:
    """Rerun the same command: only the missing answers are requested, counted at the server."""
    proc = bench_run(results, results / "rerun")
    out, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, out[-3000:]
    runs = pd.DataFrame(records.read_jsonl(results / "rerun" / records.TASK_RUNS))
    total = int(runs.requests_live.sum() + runs.requests_cached.sum())
    assert total == LIMIT * (1 + 1 + 4)  # arith, think, and four options per choice item
    assert runs.requests_cached.sum() == interrupted_at
    assert runs.requests_live.sum() == total - interrupted_at
    # The server's own request counter saw exactly the requests this run sent.
    model_runs = pd.DataFrame(records.read_jsonl(results / "rerun" / records.MODEL_RUNS))
    assert model_runs.server_requests.fillna(0).sum() == runs.requests_live.sum()
    summary = pd.read_csv(results / "rerun" / "summary.csv")
    pd.testing.assert_frame_equal(
        summary[ANSWER_COLUMNS].reset_index(drop=True), uninterrupted[ANSWER_COLUMNS].reset_index(drop=True)
    )
    assert not vllm_children(results)


def test_sigkilled_harness_resumes_with_only_the_missing_requests(tmp_path, uninterrupted):
    # One request in flight at a time, so the kill lands in the middle of a task.
    proc = bench_run(tmp_path, tmp_path / "run", "run.num_concurrent=1")
    wait_for_answers(proc, tmp_path, LIMIT + 10)  # arith done, smoke_think under way
    proc.kill()
    proc.wait(timeout=30)
    deadline = time.time() + 60
    while vllm_children(tmp_path) and time.time() < deadline:
        time.sleep(0.5)
    assert not vllm_children(tmp_path), "the server outlived the SIGKILLed harness"
    interrupted_at = cached_answers(tmp_path)
    assert LIMIT + 10 <= interrupted_at < LIMIT * 6
    finish_and_compare(tmp_path, interrupted_at, uninterrupted)


def test_killed_server_fails_the_run_keeps_answers_and_a_rerun_completes(tmp_path, uninterrupted):
    proc = bench_run(tmp_path, tmp_path / "run", "run.num_concurrent=1", "run.max_retries=2")
    wait_for_answers(proc, tmp_path, LIMIT + 10)
    servers = vllm_children(tmp_path)
    assert servers
    for p in servers:
        try:
            os.kill(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode != 0
    status = json.loads((tmp_path / "run" / "status.json").read_text())
    assert status["status"] == "error" and "server has exited" in status["error"], status
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["status"] == "error"
    interrupted_at = cached_answers(tmp_path)
    assert interrupted_at >= LIMIT + 10  # nothing answered was lost
    assert not vllm_children(tmp_path)
    finish_and_compare(tmp_path, interrupted_at, uninterrupted)


def test_a_finished_rerun_makes_no_request_and_starts_no_server(whole):
    """Issue 8: repeating a finished run is answered from the cache alone."""
    results = whole
    proc = bench_run(results, results / "again")
    out, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, out[-3000:]
    runs = pd.DataFrame(records.read_jsonl(results / "again" / records.TASK_RUNS))
    assert runs.requests_live.sum() == 0 and runs.requests_cached.sum() == LIMIT * 6
    assert not (results / "again" / records.SERVERS).exists()
    first, again = (pd.read_csv(results / name / "summary.csv") for name in ("first", "again"))
    # Identical apart from the server's counters (no server ran) and the count of cached answers.
    server_columns = ["server_tokens", "token_diff_vs_server", "requests_from_cache"]
    pd.testing.assert_frame_equal(first.drop(columns=server_columns), again.drop(columns=server_columns))
    assert first.requests_from_cache.sum() == 0 and again.requests_from_cache.sum() == LIMIT * 6


def test_repeats_sample_with_their_own_seeds_run_side_by_side_and_resume(tmp_path, zoo_dir):
    """suite.repeats=3 at temperature 0.8: three seeded samples per item, every pass in one pool."""
    args = ["suite.limit=10", "suite.repeats=3", "suite.temperature=0.8"]
    proc = bench_run(tmp_path, tmp_path / "first", *args)
    out, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, out[-3000:]
    samples = pd.DataFrame(records.read_jsonl(tmp_path / "first" / records.SAMPLES))
    assert len(samples) == 3 * 10 * 3
    assert (samples.groupby(["task", "doc_id"]).repeat.apply(sorted) == pd.Series([[0, 1, 2]] * 30).values).all()
    think = samples[samples.task == "smoke_think"].pivot(index="doc_id", columns="repeat", values="response")
    assert (think[0] != think[1]).any() or (think[1] != think[2]).any(), "every repeat gave the same text"
    summary = pd.read_csv(tmp_path / "first" / "summary.csv")
    assert (summary.repeats == 3).all() and (summary.n == 30).all() and (summary.n_items == 10).all()
    assert (summary.pass_at_k >= summary.accuracy - 1e-12).all()
    runs = pd.DataFrame(records.read_jsonl(tmp_path / "first" / records.TASK_RUNS))
    (model_run,) = records.read_jsonl(tmp_path / "first" / records.MODEL_RUNS)
    assert model_run["scheduler"] == "pooled" and model_run["passes_at_once"] >= 2
    assert model_run["server_requests"] == runs.requests_live.sum() == model_run["requests_live"]
    # Seeded per repeat: a rerun is answered from the cache alone, with the same summary.
    proc = bench_run(tmp_path, tmp_path / "again", *args)
    out, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, out[-3000:]
    again = pd.DataFrame(records.read_jsonl(tmp_path / "again" / records.TASK_RUNS))
    assert again.requests_live.sum() == 0
    server_columns = ["server_tokens", "token_diff_vs_server", "requests_from_cache"]
    pd.testing.assert_frame_equal(
        summary.drop(columns=server_columns),
        pd.read_csv(tmp_path / "again" / "summary.csv").drop(columns=server_columns),
    )
