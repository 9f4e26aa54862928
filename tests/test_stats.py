"""Paired statistics against independent scipy references, including degenerate cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest, bootstrap, norm

from bench.stats import compare, mdd_paired, paired_vs_teacher


def pair(n: int, p_teacher: float, p_other: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.random(n) < p_teacher).astype(float), (rng.random(n) < p_other).astype(float)


@pytest.mark.parametrize("n,pt,po", [(300, 0.8, 0.65), (30, 0.5, 0.4), (12, 0.9, 0.9)])
def test_mcnemar_exact_equals_a_binomial_test_on_discordant_items(n, pt, po):
    t, o = pair(n, pt, po)
    s = compare(t, o, seed=1)
    b, c = s["only_teacher_right"], s["only_model_right"]
    assert b == int(((t == 1) & (o == 0)).sum()) and c == int(((t == 0) & (o == 1)).sum())
    expected = binomtest(b, b + c, 0.5).pvalue if b + c else 1.0
    assert s["mcnemar_p"] == pytest.approx(expected, rel=1e-9)


def test_paired_bootstrap_interval_matches_scipy():
    t, o = pair(300, 0.8, 0.65, seed=3)
    s = compare(t, o, seed=7, n_boot=20_000)
    ref = bootstrap((o - t,), np.mean, n_resamples=20_000, method="percentile", random_state=11).confidence_interval
    assert s["diff"] == pytest.approx((o - t).mean())
    assert s["diff_low"] == pytest.approx(ref.low, abs=0.006)
    assert s["diff_high"] == pytest.approx(ref.high, abs=0.006)
    assert s["diff_low"] < s["diff"] < s["diff_high"]


def test_paired_interval_is_tighter_than_independent_intervals_for_correlated_models():
    rng = np.random.default_rng(5)
    t = (rng.random(300) < 0.8).astype(float)
    o = t.copy()
    flip = rng.choice(300, 30, replace=False)
    o[flip] = 1 - o[flip]
    s = compare(t, o, seed=1)
    independent_halfwidth = 1.96 * math.sqrt(t.var(ddof=1) / 300 + o.var(ddof=1) / 300)
    assert (s["diff_high"] - s["diff_low"]) / 2 < independent_halfwidth


def test_identical_models_have_no_difference_and_p_one():
    t, _ = pair(50, 0.7, 0.7)
    s = compare(t, t.copy(), seed=0)
    assert s["diff"] == 0 and s["diff_low"] == 0 and s["diff_high"] == 0
    assert s["mcnemar_p"] == 1.0
    assert math.isnan(s["mdd80"])  # no discordant items: undefined, not zero
    assert s["retained"] == 1.0 and s["retained_low"] == 1.0 and s["retained_high"] == 1.0


def test_all_correct_and_small_n():
    ones = np.ones(5)
    s = compare(ones, ones, seed=0)
    assert s["accuracy"] == s["teacher_accuracy"] == 1.0 and s["mcnemar_p"] == 1.0
    s = compare(np.array([1.0]), np.array([0.0]), seed=0)
    assert s["diff"] == -1.0 and s["mcnemar_p"] == 1.0  # one discordant item proves nothing


def test_teacher_never_right_leaves_retained_undefined():
    s = compare(np.zeros(10), np.ones(10), seed=0)
    assert math.isnan(s["retained"]) and s["diff"] == 1.0
    assert s["mcnemar_p"] == pytest.approx(binomtest(0, 10, 0.5).pvalue)


def test_mdd_formula():
    assert mdd_paired(400, 0.25) == pytest.approx((norm.ppf(0.975) + norm.ppf(0.8)) * math.sqrt(0.25 / 400))
    assert mdd_paired(30, 0.2) > mdd_paired(300, 0.2)


def test_paired_vs_teacher_aligns_items_by_doc_id_per_task_and_pools():
    rows = []
    for task, n in (("a", 20), ("b", 10)):
        t, s = pair(n, 0.8, 0.5, seed=len(task) + n)
        for i in range(n):
            rows.append({"model": "T", "role": "teacher", "task": task, "doc_id": i, "correct": t[i]})
            # the student's rows come in reverse order: alignment must be by doc_id, not position
            rows.append({"model": "S", "role": "student", "task": task, "doc_id": n - 1 - i, "correct": s[n - 1 - i]})
    df = pd.DataFrame(rows)
    out = {c.task: c for c in paired_vs_teacher(df, seed=0)}
    assert set(out) == {"a", "b", "all tasks"}
    for task in ("a", "b"):
        g = df[df.task == task].pivot(index="doc_id", columns="model", values="correct")
        assert out[task].diff == pytest.approx(g["S"].mean() - g["T"].mean())
        assert out[task].only_teacher_right == int(((g["T"] == 1) & (g["S"] == 0)).sum())
    assert out["all tasks"].n == 30
