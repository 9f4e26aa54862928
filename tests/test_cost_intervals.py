"""Cost intervals from the run itself: throughput bins, the block bootstrap, the joint item and
time replicates, and what is left when the records carry no request times."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

import runfolder
from bench.analysis import cost_intervals as ci
from bench.analysis.summarize import summarize
from bench.rundir import run_folders


def test_bins_keep_stalls_but_drop_idle_gaps():
    # Two bursts of 10 answers, 10 s apart with nothing in flight; then a request held 5 s.
    sent = np.r_[np.zeros(10), np.full(10, 20.0), 30.0]
    done = np.r_[np.linspace(0.1, 1, 10), np.linspace(20.1, 21, 10), 35.0]
    counts = ci.completions_per_bin(sent, done, n_bins=35)
    assert counts.sum() == 21
    assert len(counts) < 35  # the idle stretches between 1 s and 20 s, and 21 s and 30 s, are gone
    assert (counts == 0).sum() >= 4  # the 5 s wait for the last answer is kept: it is serving time


def test_steady_throughput_gives_a_narrow_interval_and_a_stall_a_wide_one():
    rng = np.random.default_rng(0)
    sent = np.linspace(0, 10, 400)
    steady = ci.time_factors(sent, sent + 0.05, rng)
    low, high = ci.percentile_interval(steady)
    assert low < 1 < high and high - low < 0.3
    stalled = sent.copy()
    stalled[200:] += 10.0  # the server stops answering for 10 s halfway through
    wide = ci.percentile_interval(ci.time_factors(stalled, stalled + 0.05, np.random.default_rng(0)))
    assert wide[1] - wide[0] > 3 * (high - low)


def summary_and_reps(spec: runfolder.Spec, tmp_path, seed: int = 0):
    run = run_folders.load(runfolder.write(tmp_path / "run", spec))
    summary = summarize(run.samples, run.task_runs, run.prices)
    reps = ci.bootstrap(run.samples, summary, seed)
    return run, ci.attach(summary, reps), reps


def test_every_cost_figure_gets_an_interval_around_it(tmp_path):
    spec = runfolder.Spec(models=[*runfolder.Spec().models, runfolder.FRONTIER])
    _, summary, _ = summary_and_reps(spec, tmp_path)
    hosted, api = summary[summary.cost_basis == "device_time"], summary[summary.cost_basis == "api_tokens"]
    assert (hosted.cost_ci_method == ci.TIMED).all() and (api.cost_ci_method == ci.TOKENS).all()
    for column in (
        *ci.SCALES_WITH_USD,
        "usd_per_correct",
        "steady_usd_per_1m_generated_tokens",
        "steady_usd_per_1m_processed_tokens",
    ):
        rows = summary[summary[column].notna()]
        assert len(rows), column
        assert (rows[f"{column}_ci95_low"] <= rows[column] * (1 + 1e-12)).all(), column
        assert (rows[column] <= rows[f"{column}_ci95_high"] * (1 + 1e-12)).all(), column
    assert (hosted.usd_ci95_high > hosted.usd_ci95_low).all()
    assert (api.usd_ci95_low == api.usd).all() and (api.usd_ci95_high == api.usd).all()  # counted, not timed
    assert (api.usd_per_correct_ci95_high > api.usd_per_correct_ci95_low).all()  # the items still vary


def test_a_stall_widens_that_model_and_tasks_interval(tmp_path):
    key = ("tiny_student", "smoke_think")
    _, calm, _ = summary_and_reps(runfolder.Spec(), tmp_path / "calm")
    _, stalled, _ = summary_and_reps(runfolder.Spec(stalls={key: 3.0}), tmp_path / "stalled")

    def width(summary: pd.DataFrame) -> float:
        row = summary.set_index(["model", "task"]).loc[key]
        return (row.usd_ci95_high - row.usd_ci95_low) / row.usd

    assert width(stalled) > 2 * width(calm)
    assert stalled.set_index(["model", "task"]).loc[key].latency_stall
    assert not calm.latency_stall.any()


def test_without_request_times_the_time_part_is_not_measured(tmp_path):
    _, summary, _ = summary_and_reps(runfolder.Spec(timed=False), tmp_path)
    assert (summary.cost_ci_method == ci.ITEMS_ONLY).all()
    assert summary.usd_ci95_low.isna().all() and summary.cost_ratio_vs_teacher_ci95_low.isna().all()
    assert summary.usd_per_correct_ci95_low.notna().all()  # the item sampling is still there
    assert summary.item_latency_p50_s.isna().all()


def test_items_are_drawn_once_for_all_models(tmp_path):
    """The same items in every replicate: a model against itself differs by exactly 0."""
    run, summary, reps = summary_and_reps(runfolder.Spec(), tmp_path)
    tasks = list(dict.fromkeys(summary.task))
    assert ci.accuracy_difference(reps, "tiny_student", "tiny_student", tasks) == (0.0, 0.0)
    low, high = ci.accuracy_difference(reps, "tiny_teacher", "tiny_student", tasks)
    acc = run.samples.groupby("model").correct.mean()
    assert low < acc["tiny_teacher"] - acc["tiny_student"] < high
    assert math.isfinite(ci.per_correct_ratio(reps, "tiny_student", "tiny_teacher", tasks)[1])


def test_same_seed_same_intervals(tmp_path):
    _, a, _ = summary_and_reps(runfolder.Spec(), tmp_path / "a", seed=5)
    _, b, _ = summary_and_reps(runfolder.Spec(), tmp_path / "b", seed=5)
    pd.testing.assert_frame_equal(a, b)
