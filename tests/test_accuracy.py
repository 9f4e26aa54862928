"""Accuracy under repeats and clusters against scipy/statsmodels references and brute force,
including small n and all-correct cases."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy.special import comb
from statsmodels.formula.api import ols
from statsmodels.stats.anova import anova_lm
from statsmodels.stats.proportion import proportion_confint

from bench.analysis.accuracy import accuracy_stats, cluster_se, majority_correct, pass_at_k, variance_components, wilson


@pytest.mark.parametrize("k,n", [(0, 1), (1, 1), (0, 30), (30, 30), (17, 30), (2.5, 7.25), (99.9, 100.0)])
def test_wilson_matches_statsmodels_also_at_an_effective_size(k, n):
    low, high = wilson(k, n)
    ref_low, ref_high = proportion_confint(k, n, alpha=0.05, method="wilson")
    assert low == pytest.approx(ref_low, abs=1e-12) and high == pytest.approx(ref_high, abs=1e-12)
    assert 0.0 <= low <= k / n <= high <= 1.0


def test_wilson_never_collapses_at_zero_or_all():
    assert wilson(0, 5) == (0.0, pytest.approx(proportion_confint(0, 5, method="wilson")[1]))
    low, high = wilson(5, 5)
    assert high == 1.0 and low < 0.6  # five right answers out of five prove little


def ols_cluster_se(y: np.ndarray, groups: np.ndarray) -> float:
    codes = pd.factorize(pd.Series(groups))[0]
    fit = sm.OLS(y, np.ones((len(y), 1))).fit(cov_type="cluster", cov_kwds={"groups": codes})
    return float(fit.bse[0])


@pytest.mark.parametrize("n,g,seed", [(12, 4, 0), (50, 7, 1), (300, 30, 2), (9, 2, 3)])
def test_cluster_se_matches_statsmodels_ols_with_clustered_covariance(n, g, seed):
    rng = np.random.default_rng(seed)
    groups = np.sort(rng.integers(0, g, n)).astype(str)  # unequal cluster sizes
    groups[:g] = np.arange(g).astype(str)  # every cluster present
    y = (rng.random(n) < 0.6).astype(float)
    assert cluster_se(y, groups) == pytest.approx(ols_cluster_se(y, groups), rel=1e-10)


def test_cluster_se_edge_cases():
    y = np.array([1.0, 0, 1, 1, 0, 1])
    # Every sample its own cluster: the iid sample standard error.
    assert cluster_se(y, np.arange(6)) == pytest.approx(np.std(y, ddof=1) / math.sqrt(6))
    assert cluster_se(np.ones(8), np.repeat([0, 1, 2, 3], 2)) == 0.0  # all correct
    assert math.isnan(cluster_se(y, np.zeros(6)))  # one cluster: no variance estimate
    assert math.isnan(cluster_se(np.array([1.0]), np.array([0])))


def brute_pass_at_k(n: int, c: int, k: int) -> float:
    """Share of all k-subsets of the n samples that contain a correct one."""
    samples = [1] * c + [0] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(samples[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize(
    "n,c,k",
    [(1, 0, 1), (1, 1, 1), (5, 0, 2), (5, 5, 2), (5, 2, 1), (6, 2, 3), (8, 1, 4), (10, 3, 10), (10, 0, 10), (7, 6, 2)],
)
def test_pass_at_k_is_the_unbiased_estimator(n, c, k):
    got = pass_at_k(np.array([n]), np.array([c]), k)[0]
    assert got == pytest.approx(brute_pass_at_k(n, c, k), abs=1e-12)
    assert got == pytest.approx(1 - comb(n - c, k, exact=True) / comb(n, k, exact=True), abs=1e-12)


def test_pass_at_k_large_n_and_undefined_when_too_few_samples():
    n, c = np.array([64, 64, 64]), np.array([0, 3, 64])
    got = pass_at_k(n, c, 16)
    expected = [1 - comb(64 - ci, 16, exact=True) / comb(64, 16, exact=True) for ci in c]
    assert got == pytest.approx(expected, rel=1e-12)
    assert pass_at_k(np.array([2]), np.array([1]), 1)[0] == 0.5  # pass@1 = c/n
    assert math.isnan(pass_at_k(np.array([3]), np.array([1]), 4)[0])


def votes(rows: list[tuple[int, int, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["doc_id", "repeat", "extracted", "correct"])


def test_majority_vote_scores_the_winning_answer_and_breaks_ties_by_first_answer():
    df = votes(
        [
            (0, 0, "7", 0),
            (0, 1, "8", 1),
            (0, 2, "8", 1),  # majority right
            (1, 0, "3", 1),
            (1, 1, "4", 0),
            (1, 2, "4", 0),  # majority wrong
            (2, 0, "5", 1),
            (2, 1, "6", 0),  # tie: "5" came first
            (3, 0, "9", 0),
            (3, 1, "1", 1),
            (3, 2, "1", 1),
            (3, 3, "9", 0),
        ]
    )  # tie: "9" first
    got = majority_correct(df)
    assert got.to_dict() == {0: 1.0, 1: 0.0, 2: 1.0, 3: 0.0}
    shuffled = df.sample(frac=1.0, random_state=3)
    assert majority_correct(shuffled).sort_index().to_dict() == got.to_dict()  # row order does not matter


def anova_reference(y: np.ndarray, items: np.ndarray) -> tuple[float, float]:
    table = anova_lm(ols("y ~ C(item)", data=pd.DataFrame({"y": y, "item": items})).fit())
    ms_between, ms_within = table["mean_sq"].iloc[0], table["mean_sq"].iloc[1]
    n_i = pd.Series(items).value_counts().to_numpy()
    n, g = n_i.sum(), len(n_i)
    n0 = (n - (n_i**2).sum() / n) / (g - 1)
    return max(0.0, (ms_between - ms_within) / n0), ms_within


@pytest.mark.parametrize("sizes", [[4] * 10, [2, 3, 5, 4, 2, 6, 3], [8] * 3])
def test_variance_components_match_a_one_way_anova(sizes):
    rng = np.random.default_rng(len(sizes))
    items = np.repeat(np.arange(len(sizes)), sizes)
    p = rng.uniform(0.1, 0.9, len(sizes))[items]
    y = (rng.random(len(items)) < p).astype(float)
    between, within = variance_components(y, items)
    ref_between, ref_within = anova_reference(y, items)
    assert within == pytest.approx(ref_within, rel=1e-10)
    assert between == pytest.approx(ref_between, rel=1e-10, abs=1e-12)


def test_variance_components_recover_the_truth_on_a_large_simulation():
    rng = np.random.default_rng(0)
    p_item = rng.beta(2, 2, 4000)  # true between-item variance: var(Beta(2, 2)) = 0.05
    y = (rng.random((4000, 8)) < p_item[:, None]).astype(float).ravel()
    between, within = variance_components(y, np.repeat(np.arange(4000), 8))
    assert between == pytest.approx(0.05, abs=0.005)
    assert within == pytest.approx(np.mean(p_item * (1 - p_item)), abs=0.005)


def test_variance_components_with_one_sample_per_item_or_no_spread():
    y = np.array([1.0, 0, 1, 1, 0])
    between, within = variance_components(y, np.arange(5))
    assert between == pytest.approx(np.var(y, ddof=1)) and math.isnan(within)
    assert variance_components(np.ones(6), np.repeat([0, 1, 2], 2)) == (0.0, 0.0)


def frame(correct, doc_id, repeat=None, cluster=None, extracted=None) -> pd.DataFrame:
    n = len(correct)
    return pd.DataFrame(
        {
            "correct": np.asarray(correct, float),
            "doc_id": doc_id,
            "repeat": repeat if repeat is not None else [0] * n,
            "cluster": cluster if cluster is not None else [None] * n,
            "extracted": extracted if extracted is not None else ["a" if c else "b" for c in correct],
        }
    )


def test_one_sample_per_item_reduces_to_todays_numbers():
    y = [1, 0, 1, 1, 0, 1, 1]
    s = accuracy_stats(frame(y, list(range(7))))
    assert s["accuracy"] == pytest.approx(5 / 7) == s["pass_at_k"] == s["cons_at_k"]
    assert s["se"] == s["stderr"] == pytest.approx(np.std(y, ddof=1) / math.sqrt(7))
    assert (s["ci95_low"], s["ci95_high"]) == pytest.approx(proportion_confint(5, 7, method="wilson"))
    assert s["se_method"] == "iid" and s["repeats"] == 1 and s["n_items"] == 7 and math.isnan(s["var_within_items"])


def test_repeats_cluster_on_the_item():
    rng = np.random.default_rng(4)
    items, k = 12, 5
    y = (rng.random(items * k) < np.repeat(rng.uniform(0, 1, items), k)).astype(float)
    doc = np.repeat(np.arange(items), k)
    s = accuracy_stats(frame(y, doc, repeat=np.tile(np.arange(k), items)))
    assert s["accuracy"] == pytest.approx(y.mean())  # pass@1: mean over all samples
    assert s["se"] == pytest.approx(ols_cluster_se(y, doc))
    assert s["se_method"] == "item" and s["n_clusters"] == items and s["repeats"] == k
    assert items <= s["n_effective"] <= items * k
    assert s["ci95_low"] < s["accuracy"] < s["ci95_high"]
    per_item = y.reshape(items, k).sum(axis=1)
    assert s["pass_at_k"] == pytest.approx((per_item > 0).mean())  # k = n: any correct


def test_cluster_field_is_used_when_present():
    rng = np.random.default_rng(5)
    y = (rng.random(40) < 0.5).astype(float)
    cluster = np.repeat(["a", "b", "c", "d", "e"], 8)
    s = accuracy_stats(frame(y, list(range(40)), cluster=list(cluster)))
    assert s["se_method"] == "cluster" and s["n_clusters"] == 5
    assert s["se"] == pytest.approx(ols_cluster_se(y, cluster))


def test_all_correct_with_repeats_keeps_an_honest_interval():
    s = accuracy_stats(frame([1.0] * 12, np.repeat([0, 1, 2], 4), repeat=np.tile(np.arange(4), 3)))
    assert s["accuracy"] == 1.0 and s["se"] == 0.0
    assert s["n_effective"] == 3  # three items, not twelve samples
    assert (s["ci95_low"], s["ci95_high"]) == pytest.approx(proportion_confint(3, 3, method="wilson"))
