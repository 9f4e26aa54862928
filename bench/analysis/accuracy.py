"""Accuracy of one model on one task when items are answered k times or come in groups (pure).

Every function takes arrays or one model x task's sample rows and returns numbers; no I/O.

- **pass@1** is the mean correctness over all samples (DeepSeek-R1's protocol: k samples per
  item, pass@1 = mean correctness over them). With one sample per item it is the accuracy.
- **pass@k** is Chen et al. (2021)'s unbiased estimator, ``1 - C(n-c, k) / C(n, k)`` for an item
  with ``n`` samples of which ``c`` are correct, averaged over items.
- **cons@k** is majority voting: per item, the ``extracted`` answer given most often wins and
  the item scores that answer's ``correct`` flag. Every extracted string votes, the task's
  fallback (e.g. ``[no answer]``) included. Ties go to the tied answer given first (lowest
  ``repeat``), so the result does not depend on row order.
- **Variance decomposition** (one-way random-effects ANOVA, method of moments): correctness
  varies between items (some are harder) and within an item (sampling noise). Within-item
  variance is the pooled within-item mean square; between-item variance is
  (between mean square - within mean square) / n0, clipped at 0. With one sample per item the
  within part cannot be estimated (NaN) and all observed variance is reported as between.
- **Standard error**: iid (sample standard deviation / sqrt(n), as lm-eval reports it) when
  samples are independent; otherwise the cluster-robust CRV1 sandwich estimator of the mean,
  clustered on the task's cluster field or, when items repeat, on the item.
- **95% interval**: the Wilson score interval, which stays inside [0, 1] and does not collapse
  at 0% or 100% for small n. With clusters it is computed at the effective sample size
  n / design effect (design effect = clustered variance / iid variance), bounded to
  [number of clusters, n]; when both variances are 0 (all right or all wrong) the bound
  n_effective = number of clusters is used.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pandas as pd

Z95 = NormalDist().inv_cdf(0.975)


def wilson(successes: float, n: float, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion; ``n`` may be an effective (non-integer) size."""
    if n <= 0:
        return math.nan, math.nan
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # At 0% (100%) the bound is exactly 0 (1); rounding must not leave it a hair away.
    return (0.0 if p <= 0 else max(0.0, centre - half)), (1.0 if p >= 1 else min(1.0, centre + half))


def cluster_se(values: np.ndarray, clusters: np.ndarray) -> float:
    """CRV1 cluster-robust standard error of the mean of ``values``.

    The sandwich estimator for a regression on a constant: sqrt(G/(G-1) * sum_g (sum of the
    residuals in cluster g)^2) / n, the small-sample factor (n-1)/(n-K) being 1 for K = 1.
    """
    x = np.asarray(values, dtype=float)
    n = len(x)
    codes, uniques = pd.factorize(pd.Series(clusters), use_na_sentinel=False)
    g = len(uniques)
    if n < 2 or g < 2:
        return math.nan
    sums = np.bincount(codes, weights=x - x.mean(), minlength=g)
    return math.sqrt(g / (g - 1) * float(np.sum(sums * sums))) / n


def pass_at_k(n: np.ndarray, c: np.ndarray, k: int) -> np.ndarray:
    """Unbiased pass@k per item: 1 - C(n-c, k)/C(n, k) (NaN where n < k).

    Computed as 1 - prod_{i=n-c+1}^{n} (1 - k/i), which avoids huge binomials.
    """
    n, c = np.asarray(n, dtype=int), np.asarray(c, dtype=int)
    out = np.full(n.shape, math.nan)
    for i, (ni, ci) in enumerate(zip(n.ravel(), c.ravel())):
        if ni < k or k < 1:
            continue
        if ni - ci < k:
            out.flat[i] = 1.0
        else:
            out.flat[i] = 1.0 - float(np.prod(1.0 - k / np.arange(ni - ci + 1, ni + 1)))
    return out


def majority_correct(items: pd.DataFrame) -> pd.Series:
    """cons@k per item (index: doc_id) from rows with doc_id, repeat, extracted, correct."""
    votes = (
        items.groupby(["doc_id", "extracted"], sort=False, dropna=False)
        .agg(votes=("correct", "size"), first=("repeat", "min"))
        .reset_index()
    )
    winners = votes.sort_values(
        ["doc_id", "votes", "first"], ascending=[True, False, True], kind="stable"
    ).drop_duplicates("doc_id")
    # The winning answer scores the correct flag of its first occurrence.
    flags = items.drop_duplicates(["doc_id", "repeat"]).set_index(["doc_id", "repeat"])["correct"]
    return pd.Series(
        flags.loc[list(zip(winners["doc_id"], winners["first"]))].to_numpy(dtype=float),
        index=winners["doc_id"].to_numpy(),
        name="cons",
    )


def variance_components(values: np.ndarray, items: np.ndarray) -> tuple[float, float]:
    """(between-item, within-item) variance of correctness, one-way random-effects ANOVA."""
    x = pd.Series(np.asarray(values, dtype=float))
    grouped = x.groupby(pd.Series(items).to_numpy(), sort=False)
    n_i, mean_i = grouped.size().to_numpy(), grouped.mean().to_numpy()
    n, g = int(n_i.sum()), len(n_i)
    if g < 2:
        return math.nan, math.nan
    ms_between = float(np.sum(n_i * (mean_i - x.mean()) ** 2)) / (g - 1)
    df_within = n - g
    if df_within == 0:
        return ms_between, math.nan
    ms_within = float(((x - grouped.transform("mean")) ** 2).sum()) / df_within
    n0 = (n - float(np.sum(n_i**2)) / n) / (g - 1)
    return max(0.0, (ms_between - ms_within) / n0), ms_within


def accuracy_stats(g: pd.DataFrame) -> dict:
    """Quality columns for one model x task from its sample rows (``repeat``, ``cluster``
    optional): accuracy = pass@1, its standard error and 95% interval, pass@k, cons@k, and
    the between/within-item variance of correctness."""
    g = g.assign(repeat=g["repeat"].fillna(0).astype(int) if "repeat" in g else 0)
    x = g["correct"].to_numpy(dtype=float)
    n = len(x)
    per_item = g.groupby("doc_id", sort=False)["correct"]
    n_i = per_item.size()
    k = int(n_i.min())
    passed = g.assign(ok=g["correct"] >= 1).groupby("doc_id", sort=False)["ok"].sum()
    has_cluster = "cluster" in g and g["cluster"].notna().any()
    iid_se = float(np.std(x, ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    if has_cluster or n_i.max() > 1:
        # An item without a cluster value is a cluster of its own.
        clusters = (
            g["cluster"].astype(object).where(g["cluster"].notna(), "item " + g["doc_id"].astype(str))
            if has_cluster
            else g["doc_id"]
        ).to_numpy()
        n_clusters = len(pd.unique(clusters))
        se = cluster_se(x, clusters)
        n_eff = _effective_n(n, n_clusters, iid_se, se)
        low, high = wilson(float(x.mean()) * n_eff, n_eff)
        method = "cluster" if has_cluster else "item"
    else:
        n_clusters, se, n_eff, method = n, iid_se, float(n), "iid"
        low, high = wilson(round(float(x.sum())), n)
    between, within = variance_components(x, g["doc_id"].to_numpy())
    return {
        "accuracy": float(x.mean()),
        "stderr": iid_se,
        "se": se,
        "se_method": method,
        "n_items": len(n_i),
        "n_clusters": n_clusters,
        "n_effective": n_eff,
        "ci95_low": low,
        "ci95_high": high,
        "repeats": k,
        "pass_at_k": float(np.mean(pass_at_k(n_i.to_numpy(), passed.loc[n_i.index].to_numpy(), k))),
        "cons_at_k": float(majority_correct(g).mean()),
        "var_between_items": between,
        "var_within_items": within,
    }


def _effective_n(n: int, n_clusters: int, iid_se: float, cluster_se_: float) -> float:
    if not (iid_se > 0 and cluster_se_ > 0):
        # All right or all wrong (or every cluster at the mean): no variance to scale by.
        return float(n_clusters) if not iid_se > 0 else float(n)
    return float(min(n, max(n_clusters, n * iid_se**2 / cluster_se_**2)))
