"""The summary is a pure function of the records: accuracy, intervals, tokens and cost."""

from __future__ import annotations

import math
import random

import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint

from bench.summarize import retained, summarize, wilson


def fake_records(model: str, role: str, task: str, correct: list[int], rng: random.Random) -> list[dict]:
    return [{"model": model, "role": role, "task": task, "doc_id": i, "metric": "acc", "correct": float(c),
             "prompt_tokens": rng.randint(5, 9), "completion_tokens": rng.randint(1, 30),
             "reasoning_tokens": rng.randint(0, 10), "finish_reason": rng.choice(["stop", "length"]),
             "latency_s": rng.random()} for i, c in enumerate(correct)]


@pytest.fixture
def run():
    rng = random.Random(0)
    samples, runs = [], []
    for model, role, p in (("t", "teacher", 0.9), ("s", "student", 0.6), ("c", "control", 0.5)):
        for task, n in (("a", 50), ("b", 7)):
            correct = [int(rng.random() < p) for _ in range(n)]
            samples += fake_records(model, role, task, correct, rng)
            runs.append({"model": model, "role": role, "task": task, "n_samples": n,
                         "wall_s": rng.uniform(1, 100), "started_at": 0.0, "chance": 0.25 if task == "a" else None})
    return pd.DataFrame(samples), pd.DataFrame(runs)


def test_accuracy_and_tokens_come_from_the_records(run):
    samples, runs = run
    summary = summarize(samples, runs, device_count=2, usd_per_device_hour=3.0)
    assert len(summary) == 6
    for _, row in summary.iterrows():
        g = samples[(samples.model == row.model) & (samples.task == row.task)]
        assert row.accuracy == pytest.approx(g.correct.mean())
        assert row.n == len(g)
        assert row.completion_tokens == g.completion_tokens.sum()
        assert row.prompt_tokens == g.prompt_tokens.sum()
        assert row.finish_length_share == pytest.approx((g.finish_reason == "length").mean())
        assert row.stderr == pytest.approx(g.correct.std(ddof=1) / math.sqrt(len(g)))


def test_cost_is_wall_time_times_devices_times_price(run):
    samples, runs = run
    summary = summarize(samples, runs, device_count=2, usd_per_device_hour=3.0)
    for _, row in summary.iterrows():
        wall = runs[(runs.model == row.model) & (runs.task == row.task)].wall_s.item()
        assert row.usd == pytest.approx(wall * 2 * 3.0 / 3600)
        assert row.usd_per_1k_samples == pytest.approx(row.usd / row.n * 1000)
        k = round(row.accuracy * row.n)
        assert row.usd_per_correct == (pytest.approx(row.usd / k) if k else math.inf)
        assert row.output_tokens_per_s == pytest.approx(row.completion_tokens / wall)


def test_chance_comes_from_the_task_runs(run):
    samples, runs = run
    summary = summarize(samples, runs, 1, 1.0)
    assert set(summary[summary.task == "a"].chance) == {0.25}
    assert summary[summary.task == "b"].chance.isna().all()


@pytest.mark.parametrize("k,n", [(0, 1), (1, 1), (0, 30), (30, 30), (17, 30), (250, 300)])
def test_wilson_matches_statsmodels(k, n):
    low, high = wilson(k, n)
    ref_low, ref_high = proportion_confint(k, n, alpha=0.05, method="wilson")
    assert low == pytest.approx(ref_low, abs=1e-9)
    assert high == pytest.approx(ref_high, abs=1e-9)


def test_retained_is_student_over_teacher(run):
    samples, runs = run
    summary = summarize(samples, runs, 1, 1.0)
    ret = retained(summary)
    acc = summary.set_index(["model", "task"]).accuracy
    row = ret[(ret.model == "s") & (ret.task == "a")].iloc[0]
    assert row.retained == pytest.approx(acc[("s", "a")] / acc[("t", "a")])
    macro = ret[(ret.model == "s") & (ret.task == "mean over tasks")].iloc[0]
    assert macro.accuracy == pytest.approx((acc[("s", "a")] + acc[("s", "b")]) / 2)
    assert "t" not in set(ret.model)


def test_a_run_without_students_or_without_a_teacher_has_no_retained_rows(run):
    samples, runs = run
    summary = summarize(samples, runs, 1, 1.0)
    assert retained(summary[summary.role == "teacher"]).empty
    assert retained(summary[summary.role != "teacher"]).empty
