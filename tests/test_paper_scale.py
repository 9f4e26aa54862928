"""The GPU path at the paper's scale, on the simulated server in compressed time.

experiment=r1_distill's 1.5B student, served as on one H100, answers a MATH-500-sized task 64
times per item (32,000 requests, traces up to 32,768 tokens) through the harness's one pool.
The simulated engine (bench/serving/simulate.py) stands in for vLLM on the GPU and keeps its own
account of its batch; the run's records are wall-clock times compressed by ``SCALE``.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time

import pandas as pd
import pytest

from bench.analysis.cost import device_usd
from bench.rundir import records
from bench.serving.simulate import filled_at, occupancy
from hubfixture import hub_cache  # noqa: F401  (fixture)
from simrun import config, run, run_apart, simulated
from test_serve import vllm_children

STUDENT = "r1_distill_qwen_1p5b"
SCALE = 25.0
"""Simulated seconds per second: about 70 requests/s, which the harness keeps up with on a
2-core machine while it also scores the finished passes with math-verify (~2 ms of the GIL per
response). On the machine it was built on the batch held 0.95 of its target at 50x and 0.6 at
100x; a CI machine held 0.88 at 40x, so the scale leaves room for a machine ~1.5x slower than
that one. About 25 times the request rate a real H100 asks of the harness for this model (~3/s)."""
PAPER = ["experiment=r1_distill", f"run.only={STUDENT}", "hardware=h100", "suite.tasks=[r1_math500]"]
ITEMS, K = 500, 64


def frame(run_dir, name) -> pd.DataFrame:
    return pd.DataFrame(records.read_jsonl(run_dir / name))


@pytest.fixture(scope="module")
def paper(hub_cache, tmp_path_factory):
    results = tmp_path_factory.mktemp("paper")
    overrides = [*PAPER, f"run.results_dir={results}", *simulated(STUDENT, SCALE)]
    # In its own interpreter: inside the test session (after ~250 other tests) the harness kept
    # 0.89 of its target, alone 0.95. The report of a simulated run is tested in
    # test_hub_offline.py; here it would only add time.
    run_dir = run_apart(overrides, results / "run", report=False)
    model = records.read_jsonl(run_dir / records.MODEL_RUNS)[0]
    stats = json.loads((run_dir / "servers" / f"{STUDENT}.sim_stats.json").read_text())
    spec = json.loads((run_dir / "servers" / f"{STUDENT}.sim.json").read_text())
    return overrides, run_dir, model, stats, spec


def test_k64_on_500_items_every_sample_once_through_one_pool(paper):
    _, run_dir, model, stats, spec = paper
    samples = frame(run_dir, records.SAMPLES)
    assert len(samples) == ITEMS * K
    assert samples.groupby(["doc_id", "repeat"]).size().eq(1).all() and set(samples.repeat) == set(range(K))
    assert model["requests_live"] == ITEMS * K and model["server_requests"] == ITEMS * K
    assert model["server_generation_tokens"] == samples.completion_tokens.sum()
    assert model["passes_at_once"] > 1 and model["simulated_time_scale"] == SCALE
    # The dispatcher's target is the KV-cache rule's, and the server reports that cache.
    assert model["target_in_flight"] == spec["kv_tokens"] // 4360  # 110 prompt + 4,250 mean completion
    assert model["server_kv_cache_tokens"] == spec["kv_tokens"] // 16 * 16
    # Long traces: some hit the 32,768-token limit and are scored wrong (no answer).
    cut = samples[samples.finish_reason == "length"]
    assert len(cut) > 0 and cut.completion_tokens.eq(32768).all() and cut.correct.eq(0).all()
    # Answers right as often as the paper's pass@1 for this model (83.9), item by item.
    assert samples.correct.mean() == pytest.approx(0.839, abs=0.04)


def test_the_box_stays_busy_until_the_pool_drains(paper):
    _, run_dir, model, stats, _ = paper
    requests = frame(run_dir, records.REQUESTS)
    first, last = requests.sent_at.min(), requests.sent_at.max()
    target = model["target_in_flight"]
    # The batch fills within seconds of the first request (the passes' requests being built)...
    full = filled_at(stats, 0.9 * target)
    assert full is not None and full - first < 0.1 * (last - first)
    # ...and, by the engine's own account, stays full until the last request is sent.
    busy = occupancy(stats, full, last)
    assert busy["running"] >= 0.9 * target, busy
    assert busy["waiting"] <= 0.02 * target  # the target fits the KV cache: almost no queue
    # The dispatcher's account over the same span: its target in flight.
    held = (requests.answered_at.clip(upper=last) - requests.sent_at.clip(lower=full)).clip(lower=0).sum()
    assert held / (last - full) >= 0.95 * target
    # One drain per model, not one per pass: the tail after the last send is short.
    assert requests.answered_at.max() - last < 0.25 * (last - first)
    preempted = sum(e["preemptions"] for e in stats["engines"])
    assert preempted < 0.25 * ITEMS * K  # lengths as long-tailed as the rule assumes: some, not a storm
    print(
        f"\nbatch {busy['running']:.0f} of {target} ({busy['running'] / target:.3f}) from {full - first:.1f} s "
        f"after the first request to the last send; KV cache {busy['kv_share']:.2f} full; {preempted} "
        f"preemptions; dispatcher {held / (last - full) / target:.3f}"
    )


def test_plan_bounds_contain_the_simulated_run(paper):
    from bench.analysis.estimate import plan
    from bench.evaluation.evaluate import task_manager
    from bench.validate import resolve_paths, task_generation

    overrides, run_dir, model, stats, spec = paper
    cfg = config(overrides)
    tm = task_manager(resolve_paths(cfg.suite.include_paths), cfg.suite.tasks)
    (p,) = plan(cfg, {t: task_generation(tm, t) for t in cfg.suite.tasks}, [STUDENT])
    samples = frame(run_dir, records.SAMPLES)
    tokens = samples.completion_tokens.sum()
    assert p.output_tokens.low <= tokens <= p.output_tokens.high
    # Simulated seconds: the serving time at the time scale, plus the simulated start-up.
    seconds = model["serving_s"] * SCALE + spec["startup_s"]
    assert p.seconds.low <= seconds <= p.seconds.high, (p.seconds, seconds)
    hw = cfg.hardware
    usd = device_usd(seconds, hw.count, hw.usd_per_device_hour)
    assert p.usd.low <= usd <= p.usd.high
    rate = tokens / (model["serving_s"] * SCALE)  # the simulated H100's output tokens/s
    print(
        f"\nplan {p.seconds.low:.0f}-{p.seconds.high:.0f} s, ${p.usd.low:.2f}-${p.usd.high:.2f}; "
        f"simulated run {seconds:.0f} s, ${usd:.2f}, {rate:.0f} tokens/s"
    )


def cached_answers(results) -> int:
    return sum(len(records.read_jsonl(p)) for p in (results / "cache").glob("*.jsonl"))


def test_a_run_killed_mid_task_resends_only_what_was_missing(hub_cache, tmp_path):
    items = 16
    overrides = [*PAPER, f"suite.limit={items}", f"run.results_dir={tmp_path}", *simulated(STUDENT, SCALE)]
    # The first run in a forked child (this process's imports, none to redo), killed outright.
    first = multiprocessing.get_context("fork").Process(target=run, args=(overrides, tmp_path / "first"))
    first.start()
    deadline = time.time() + 300
    while cached_answers(tmp_path) < 300:
        assert first.is_alive(), f"the run ended (exit code {first.exitcode}) before 300 answers"
        assert time.time() < deadline, "no answers after 300 s"
        time.sleep(0.05)
    os.kill(first.pid, signal.SIGKILL)
    first.join()
    answered = cached_answers(tmp_path)
    assert 300 <= answered < items * K
    deadline = time.time() + 30
    while vllm_children(tmp_path) and time.time() < deadline:  # the server follows its parent
        time.sleep(0.2)
    assert not vllm_children(tmp_path)

    run_dir = run(overrides, tmp_path / "rerun")
    model = records.read_jsonl(run_dir / records.MODEL_RUNS)[0]
    assert model["requests_cached"] == answered
    assert model["requests_live"] == items * K - answered
    assert model["server_requests"] == items * K - answered  # counted by the server itself
    samples = frame(run_dir, records.SAMPLES)
    assert len(samples) == items * K and samples.groupby(["doc_id", "repeat"]).size().eq(1).all()
    assert samples.from_cache.sum() == answered
