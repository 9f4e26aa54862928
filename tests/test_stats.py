"""Paired statistics against independent scipy references, including degenerate cases."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest, bootstrap, norm

from bench.analysis.stats import compare, mdd_paired, paired_vs_teacher


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


@pytest.mark.parametrize("n,pt,po,seed", [(300, 0.8, 0.65, 0), (40, 0.5, 0.45, 1), (12, 0.9, 0.9, 2), (3, 1.0, 0.0, 3)])
def test_sign_flip_on_zero_one_answers_is_mcnemars_exact_test(n, pt, po, seed):
    from statsmodels.stats.contingency_tables import mcnemar

    from bench.analysis.stats import sign_flip_p

    t, o = pair(n, pt, po, seed)
    table = [
        [int(((t == 1) & (o == 1)).sum()), int(((t == 1) & (o == 0)).sum())],
        [int(((t == 0) & (o == 1)).sum()), int(((t == 0) & (o == 0)).sum())],
    ]
    p, exact = sign_flip_p(o - t)
    assert exact
    assert p == pytest.approx(mcnemar(table, exact=True).pvalue, rel=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sign_flip_is_exact_for_per_item_means(seed):
    """Against brute force: all 2^n sign assignments of the per-item differences (k = 3)."""
    from bench.analysis.stats import sign_flip_p

    rng = np.random.default_rng(seed)
    t, o = rng.integers(0, 4, 10) / 3, rng.integers(0, 4, 10) / 3
    d = o - t
    observed = abs(d.sum())
    signs = np.array(list(itertools.product([-1, 1], repeat=len(d))))
    expected = float(np.mean(np.abs(signs @ np.abs(d)) >= observed - 1e-9))
    p, exact = sign_flip_p(d)
    assert exact and p == pytest.approx(expected, rel=1e-12)


def test_sign_flip_without_differences_and_for_non_grid_values():
    from bench.analysis.stats import sign_flip_p

    assert sign_flip_p(np.zeros(5)) == (1.0, True)
    p, exact = sign_flip_p(np.array([0.1234567891, -0.3, 0.55, 0.41]))
    assert not exact and 0 < p <= 1  # not means of a few answers: normal approximation


def test_compare_with_fractional_per_item_means():
    t, o = np.array([1, 0.5, 0.25, 1, 0]), np.array([0.75, 0.5, 0.5, 0.25, 0])
    s = compare(t, o, seed=0, n_boot=2000)
    d = o - t
    assert s["diff"] == pytest.approx(d.mean())
    assert s["only_teacher_right"] == 2 and s["only_model_right"] == 1  # items where one mean is higher
    assert s["test"] == "exact sign-flip, per-item means" and math.isnan(s["mcnemar_p"])
    assert s["mdd80"] == pytest.approx((norm.ppf(0.975) + norm.ppf(0.8)) * math.sqrt(np.mean(d**2) / 5))


def with_repeats(rows: list[tuple[str, str, str, int, list[int]]]) -> pd.DataFrame:
    """(model, role, task, doc_id, correct per repeat) -> one row per sample."""
    return pd.DataFrame(
        [
            {"model": m, "role": r, "task": task, "doc_id": i, "repeat": k, "correct": float(c)}
            for m, r, task, i, cs in rows
            for k, c in enumerate(cs)
        ]
    )


def test_paired_vs_teacher_pairs_items_not_samples_when_items_repeat():
    rng = np.random.default_rng(9)
    rows = []
    for i in range(25):
        rows.append(("T", "teacher", "a", i, list((rng.random(4) < 0.8).astype(int))))
        rows.append(("S", "student", "a", i, list((rng.random(4) < 0.5).astype(int))))
    df = with_repeats(rows)
    out = {c.task: c for c in paired_vs_teacher(df, seed=0)}["a"]
    means = df.groupby(["model", "doc_id"]).correct.mean().unstack(0)
    assert out.n == 25  # items, not 100 samples
    assert out.diff == pytest.approx((means["S"] - means["T"]).mean())
    assert out.test == "exact sign-flip, per-item means" and math.isnan(out.mcnemar_p)
    # The bootstrap resamples items: its interval is wider than one that treats samples as items.
    naive = compare(df[df.model == "T"].correct.to_numpy(), df[df.model == "S"].correct.to_numpy(), seed=0)
    assert out.diff_high - out.diff_low > naive["diff_high"] - naive["diff_low"]


def test_repeats_that_always_agree_still_are_not_mcnemar_pairs_but_give_its_p():
    rows = [("T", "teacher", "a", i, [c] * 3) for i, c in enumerate([1, 1, 1, 0, 1, 1, 0, 1])]
    rows += [("S", "student", "a", i, [c] * 3) for i, c in enumerate([0, 1, 0, 0, 1, 0, 1, 0])]
    out = {c.task: c for c in paired_vs_teacher(with_repeats(rows), seed=0)}["a"]
    assert out.test.startswith("exact sign-flip") and math.isnan(out.mcnemar_p)
    assert out.p_value == pytest.approx(binomtest(1, 5, 0.5).pvalue)  # 4 teacher-only, 1 student-only


def test_one_answer_per_item_is_labelled_mcnemar():
    t, s = pair(40, 0.8, 0.5, seed=2)
    df = pd.DataFrame(
        [
            {"model": m, "role": r, "task": "a", "doc_id": i, "repeat": 0, "correct": v[i]}
            for m, r, v in (("T", "teacher", t), ("S", "student", s))
            for i in range(40)
        ]
    )
    out = paired_vs_teacher(df, seed=0)[0]
    assert out.test == "McNemar exact" and out.mcnemar_p == out.p_value


def test_pooled_bootstrap_resamples_within_each_task():
    """Task a: both always right; task b: the teacher always wrong, the student always right.
    Stratified, every resample keeps 50 items of each task, so the pooled difference is exactly
    +0.5 in all of them; resampling the pooled items freely would let it wander."""
    rows = [
        {"model": m, "role": r, "task": task, "doc_id": i, "correct": float(m == "S" or task == "a")}
        for m, r in (("T", "teacher"), ("S", "student"))
        for task in ("a", "b")
        for i in range(50)
    ]
    pooled = {c.task: c for c in paired_vs_teacher(pd.DataFrame(rows), seed=0)}["all tasks"]
    assert (pooled.diff, pooled.diff_low, pooled.diff_high) == pytest.approx((0.5, 0.5, 0.5))
    assert (pooled.retained_low, pooled.retained_high) == pytest.approx((2.0, 2.0))
    free = compare(np.repeat([1.0, 0.0], 50), np.ones(100), seed=0)
    assert free["diff_high"] - free["diff_low"] > 0.1
