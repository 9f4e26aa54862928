"""The summary is a pure function of the records and prices: accuracy, intervals, tokens, cost."""

from __future__ import annotations

import math
import random

import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint

from bench.analysis.accuracy import wilson
from bench.analysis.summarize import length_buckets, summarize

HW = {"basis": "device_time", "devices": 2, "usd_per_device_hour": 3.0, "device_kind": "X", "source": "s", "as_of": "d"}
API = {"basis": "api_tokens", "input": 1.5, "cached_input": 0.5, "output": 6.0, "source": "s", "as_of": "d"}


def fake_records(
    model: str, role: str, task: str, correct: list[int], rng: random.Random, options: int = 0
) -> list[dict]:
    """Generation samples; with ``options``, multiple choice scored by log-likelihood (one
    one-token request per option, sent side by side)."""
    rows = []
    for i, c in enumerate(correct):
        prompt = rng.randint(5, 9) * max(1, options)
        sent = 1000.0 + i * 0.5 + rng.random()
        rows.append(
            {
                "model": model,
                "role": role,
                "task": task,
                "doc_id": i,
                "metric": "acc" if options else "exact_match",
                "correct": float(c),
                "prompt_tokens": prompt,
                "cached_prompt_tokens": rng.randint(0, prompt),
                "completion_tokens": options or rng.randint(1, 30),
                "reasoning_tokens": rng.randint(0, 10),
                "reasoning_closed": rng.choice([True, False, None]),
                "finish_reason": rng.choice(["stop", "length"]),
                "latency_s": rng.random() * max(1, options),
                "n_requests": options or 1,
                "ttft_s": rng.random() / 10,
                "tpot_s": rng.random() / 100,
                "sent_at": sent,
                "done_at": sent + rng.random(),
            }
        )
    return rows


@pytest.fixture
def run():
    rng = random.Random(0)
    samples, runs = [], []
    for model, role, p in (
        ("t", "teacher", 0.9),
        ("s", "student", 0.6),
        ("c", "control", 0.5),
        ("api", "baseline", 0.7),
    ):
        for task, n, options in (("a", 50, 0), ("b", 7, 0), ("mc", 20, 4)):
            correct = [int(rng.random() < p) for _ in range(n)]
            samples += fake_records(model, role, task, correct, rng, options)
            runs.append(
                {
                    "model": model,
                    "role": role,
                    "task": task,
                    "n_samples": n,
                    "serving_s": rng.uniform(1, 100),
                    "started_at": 0.0,
                    "chance": 0.25 if task == "a" else None,
                }
            )
    prices = {"models": {"t": HW, "s": HW, "c": HW, "api": API}}
    return pd.DataFrame(samples), pd.DataFrame(runs), prices


def rows_of(samples, runs, row):
    g = samples[(samples.model == row.model) & (samples.task == row.task)]
    wall = runs[(runs.model == row.model) & (runs.task == row.task)].serving_s.item()
    return g, wall


def test_accuracy_and_tokens_come_from_the_records(run):
    samples, runs, prices = run
    summary = summarize(samples, runs, prices)
    assert len(summary) == 12
    for row in summary.itertuples():
        g, _ = rows_of(samples, runs, row)
        assert row.accuracy == pytest.approx(g.correct.mean())
        assert row.n == len(g)
        assert row.completion_tokens == g.completion_tokens.sum()
        assert row.prompt_tokens == g.prompt_tokens.sum()
        assert row.finish_length_share == pytest.approx((g.finish_reason == "length").mean())
        assert row.unclosed_reasoning_share == pytest.approx((g.reasoning_closed == False).mean())  # noqa: E712
        assert row.stderr == pytest.approx(g.correct.std(ddof=1) / math.sqrt(len(g)))
        assert row.ttft_p90_s == pytest.approx(g.ttft_s.quantile(0.9))


def test_self_hosted_cost_is_wall_time_times_devices_times_price(run):
    samples, runs, prices = run
    summary = summarize(samples, runs, prices)
    for row in summary[summary.cost_basis == "device_time"].itertuples():
        g, wall = rows_of(samples, runs, row)
        assert row.usd == pytest.approx(wall * 2 * 3.0 / 3600)
        assert row.device_s == pytest.approx(wall * 2)
        assert row.usd_per_1k_samples == pytest.approx(row.usd / row.n * 1000)
        k = round(row.accuracy * row.n)
        assert row.usd_per_correct == (pytest.approx(row.usd / k) if k else math.inf)
        assert row.output_tokens_per_s == pytest.approx(row.completion_tokens / wall)
    # Generated-token prices over generation tasks only; processed-token prices over scoring tasks only.
    teacher = summary[summary.model == "t"].set_index("task")
    gen, ll = teacher.loc[["a", "b"]], teacher.loc[["mc"]]
    steady = (2 * 3.0 / 3600) / (gen.completion_tokens.sum() / gen.serving_s.sum()) * 1e6
    assert gen.steady_usd_per_1m_generated_tokens.tolist() == pytest.approx([steady, steady])
    processed = ll.prompt_tokens.sum() + ll.completion_tokens.sum()
    assert ll.steady_usd_per_1m_processed_tokens.item() == pytest.approx(
        (2 * 3.0 / 3600) / (processed / ll.serving_s.sum()) * 1e6
    )
    assert gen.steady_usd_per_1m_processed_tokens.isna().all() and ll.steady_usd_per_1m_generated_tokens.isna().all()


def test_generation_is_priced_per_generated_token_and_scoring_per_processed_token(run):
    samples, runs, prices = run
    summary = summarize(samples, runs, prices)
    for row in summary.itertuples():
        g, _ = rows_of(samples, runs, row)
        if row.task == "mc":
            assert row.request_kind == "loglikelihood" and math.isnan(row.usd_per_1m_generated_tokens)
            tokens = g.prompt_tokens.sum() + g.completion_tokens.sum()
            assert row.usd_per_1m_processed_tokens == pytest.approx(row.usd / tokens * 1e6)
        else:
            assert row.request_kind == "generate" and math.isnan(row.usd_per_1m_processed_tokens)
            assert row.usd_per_1m_generated_tokens == pytest.approx(row.usd / g.completion_tokens.sum() * 1e6)


def test_latency_per_request_and_per_item(run):
    """Multiple choice: the options' latencies are summed in the record but run side by side, so
    the per-request figure is their mean and the per-item one is first send to last answer."""
    samples, runs, prices = run
    summary = summarize(samples, runs, prices)
    for row in summary.itertuples():
        g, _ = rows_of(samples, runs, row)
        per_request = g.latency_s / g.n_requests
        assert row.request_latency_p50_s == pytest.approx(per_request.median())
        assert row.request_latency_p99_s == pytest.approx(per_request.quantile(0.99))
        assert row.item_latency_p50_s == pytest.approx((g.done_at - g.sent_at).median())
        assert row.latency_stall == (row.request_latency_p99_s > 10 * row.request_latency_p50_s)
    untimed = samples.assign(sent_at=None, done_at=None)
    assert summarize(untimed, runs, prices).item_latency_p50_s.isna().all()  # not measured, not 0
    assert "item_latency_p50_s" in summarize(samples.drop(columns=["sent_at", "done_at"]), runs, prices)


def test_per_request_latency_comes_from_the_request_records_where_the_run_has_them(run):
    """One option of each multiple-choice item is slow: the requests' own times show it (p99
    over 10x p50: a stall), where the samples' mean over an item's options would hide it."""
    samples, runs, prices = run
    rng = random.Random(3)
    requests = []
    for s in samples[samples.task == "mc"].itertuples():
        times = [rng.uniform(0.1, 0.2) for _ in range(s.n_requests)]
        if s.doc_id < 2:
            times[0] = 5.0
        requests += [
            {
                "model": s.model,
                "task": s.task,
                "doc_id": s.doc_id,
                "repeat": 0,
                "kind": "ll",
                "sent_at": s.sent_at,
                "answered_at": s.sent_at + t,
                "prompt_tokens": 1,
                "completion_tokens": 1,
                "from_cache": False,
            }
            for t in times
        ]
    requests = pd.DataFrame(requests)
    summary = summarize(samples, runs, prices, requests=requests).set_index(["model", "task"])
    for (model, task), row in summary.iterrows():
        mine = requests[(requests.model == model) & (requests.task == task)]
        if task != "mc":  # no request records for it: from the samples, as for older runs
            g = samples[(samples.model == model) & (samples.task == task)]
            assert row.request_latency_p50_s == pytest.approx(g.latency_s.median())
            continue
        latency = mine.answered_at - mine.sent_at
        assert len(latency) == 80 and row.request_latency_p50_s == pytest.approx(latency.median())
        assert row.request_latency_p99_s == pytest.approx(latency.quantile(0.99)) and row.latency_stall


def test_a_stall_is_flagged():
    rng = random.Random(1)
    rows = fake_records("t", "teacher", "a", [1] * 200, rng)
    for r in rows[:5]:
        r["latency_s"] = 50.0  # 2.5% of requests waited 50 s
    runs = pd.DataFrame(
        [
            {
                "model": "t",
                "role": "teacher",
                "task": "a",
                "n_samples": 200,
                "serving_s": 60.0,
                "started_at": 0.0,
                "chance": None,
            }
        ]
    )
    row = summarize(pd.DataFrame(rows), runs, {"models": {"t": HW}}).iloc[0]
    assert row.latency_stall and row.request_latency_p99_s > 10 * row.request_latency_p50_s


def test_api_cost_is_tokens_times_prices(run):
    samples, runs, prices = run
    summary = summarize(samples, runs, prices)
    for row in summary[summary.model == "api"].itertuples():
        g, _ = rows_of(samples, runs, row)
        fresh = g.prompt_tokens.sum() - g.cached_prompt_tokens.sum()
        expected = (fresh * 1.5 + g.cached_prompt_tokens.sum() * 0.5 + g.completion_tokens.sum() * 6.0) / 1e6
        assert row.usd == pytest.approx(expected)
        assert row.cost_basis == "api_tokens"
        assert math.isnan(row.device_s)
        assert (
            row.steady_usd_per_1m_generated_tokens == 6.0
            if row.task != "mc"
            else math.isnan(row.steady_usd_per_1m_generated_tokens)
        )


def test_ratios_against_the_teacher(run):
    samples, runs, prices = run
    summary = summarize(samples, runs, prices).set_index(["model", "task"])
    s, t = summary.loc[("s", "a")], summary.loc[("t", "a")]
    assert s.quality_retained_vs_teacher == pytest.approx(s.accuracy / t.accuracy)
    assert s.cost_ratio_vs_teacher == pytest.approx(s.usd / t.usd)
    assert t.quality_retained_vs_teacher == pytest.approx(1.0)


def test_pareto_flags_match_a_brute_force_check(run):
    samples, runs, prices = run
    summary = summarize(samples, runs, prices)
    for task, g in summary.groupby("task"):
        for row in g.itertuples():
            beaten = any(
                o.usd_per_correct <= row.usd_per_correct
                and o.accuracy >= row.accuracy
                and (o.usd_per_correct < row.usd_per_correct or o.accuracy > row.accuracy)
                for o in g.itertuples()
                if o.model != row.model
            )
            assert row.pareto_optimal == (not beaten), (task, row.model)
        assert g.pareto_optimal.any()


def test_chance_comes_from_the_task_runs(run):
    samples, runs, prices = run
    summary = summarize(samples, runs, prices)
    assert set(summary[summary.task == "a"].chance) == {0.25}
    assert summary[summary.task == "b"].chance.isna().all()


@pytest.mark.parametrize("k,n", [(0, 1), (1, 1), (0, 30), (30, 30), (17, 30), (250, 300)])
def test_wilson_matches_statsmodels(k, n):
    low, high = wilson(k, n)
    ref_low, ref_high = proportion_confint(k, n, alpha=0.05, method="wilson")
    assert low == pytest.approx(ref_low, abs=1e-9)
    assert high == pytest.approx(ref_high, abs=1e-9)


def test_length_buckets_partition_the_samples(run):
    samples, _, _ = run
    buckets = length_buckets(samples)
    assert buckets.n.sum() == len(samples)
    for b in buckets.itertuples():
        lo, hi = str(b.length_bucket).split("-")
        g = samples[
            (samples.model == b.model) & (samples.task == b.task) & samples.completion_tokens.between(int(lo), int(hi))
        ]
        assert len(g) == b.n and g.correct.mean() == pytest.approx(b.accuracy)


def test_one_answer_per_item_reduces_every_repeat_column_to_the_accuracy(run):
    samples, runs, prices = run
    summary = summarize(samples, runs, prices)
    assert (summary.repeats == 1).all() and (summary.n_items == summary.n).all()
    assert (summary.pass_at_k == summary.accuracy).all() and (summary.cons_at_k == summary.accuracy).all()
    assert (summary.se_method == "iid").all() and (summary.se == summary.stderr).all()
    for row in summary.itertuples():
        assert (row.ci95_low, row.ci95_high) == pytest.approx(wilson(row.n_correct, row.n))


def test_repeats_are_summarized_over_items(run):
    samples, runs, prices = run
    doubled = pd.concat([samples.assign(repeat=0), samples.assign(repeat=1, correct=1.0)], ignore_index=True)
    summary = summarize(doubled, runs, prices)
    for row in summary.itertuples():
        g = doubled[(doubled.model == row.model) & (doubled.task == row.task)]
        assert row.accuracy == pytest.approx(g.correct.mean()) and row.n == len(g)
        assert row.repeats == 2 and row.n_items == len(g) // 2 and row.se_method == "item"
        assert row.pass_at_k == 1.0  # the second answer is always right
        assert row.ci95_low <= row.accuracy <= row.ci95_high


def test_quality_retained_is_undefined_not_infinite_when_the_teacher_scores_zero(run):
    from bench.reporting.sections import f

    samples, runs, prices = run
    samples = samples.copy()
    samples.loc[(samples.role == "teacher") & (samples.task == "b"), "correct"] = 0.0
    summary = summarize(samples, runs, prices).set_index(["model", "task"])
    retained = summary.loc[("s", "b")].quality_retained_vs_teacher
    assert summary.loc[("s", "b")].accuracy > 0 and math.isnan(retained)
    assert f(retained, ".1%") == "n/a"
    assert summary.loc[("s", "a")].quality_retained_vs_teacher > 0  # the other task keeps its ratio
