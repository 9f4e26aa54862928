"""Paired comparisons of each model against the teacher on the items both answered (pure).

Both models answered the same items, so the comparison is paired, over items: with k
responses per item, each item contributes its mean correctness (never its k samples as if
they were independent items). The difference in accuracy gets a paired (item-resampling)
bootstrap interval; pooled over tasks, items are resampled within each task (stratified), so
every replicate keeps the tasks' sizes. The test is the exact sign-flip test on the per-item
differences, which with one 0/1 response per item is McNemar's exact test on the discordant
items. The minimum detectable difference says what this many items could have detected at
all, at the discordance observed (see ``mdd_paired``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from statistics import NormalDist

import numpy as np
import pandas as pd

N_BOOT = 10_000
POOLED = "all tasks"
MCNEMAR = "McNemar exact"
SIGN_FLIP = "exact sign-flip, per-item means"
# Work bound (items x support of the sum) for the exact sign-flip distribution; beyond it the
# two-sided p comes from the normal approximation to the same distribution (large n only).
EXACT_LIMIT = 300_000_000


@dataclass(frozen=True)
class PairedComparison:
    """One model against the teacher on their shared items (``diff`` = model - teacher)."""

    model: str
    task: str
    n: int
    """Shared items (not samples)."""
    teacher_accuracy: float
    accuracy: float
    diff: float
    diff_low: float
    diff_high: float
    only_teacher_right: int
    """Items where the teacher's mean correctness is higher (with 0/1 answers: only it is right)."""
    only_model_right: int
    p_value: float
    test: str
    """McNemar exact with one 0/1 response per item; the exact sign-flip test otherwise."""
    mcnemar_p: float
    """McNemar's exact p with one 0/1 response per item (equal to ``p_value``); NaN otherwise."""
    mdd80: float
    """Smallest |difference| detectable with 80% power at alpha 0.05 with these items, at the
    observed discordance (mean squared per-item difference)."""
    retained: float
    retained_low: float
    retained_high: float


def mdd_paired(n: int, mean_square_diff: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """Minimum detectable paired difference: (z_{1-a/2} + z_power) * sqrt(mean(d^2) / n),
    at the discordance observed (mean(d^2) is measured on these items, not assumed).

    The normal approximation to the sign-flip (McNemar) test: under the null the mean of the
    per-item differences d has variance mean(d^2) / n; with 0/1 answers mean(d^2) is the share
    of discordant items. With no item differing it is undefined (NaN).
    """
    if n == 0 or mean_square_diff <= 0:
        return math.nan
    z = NormalDist()
    return (z.inv_cdf(1 - alpha / 2) + z.inv_cdf(power)) * math.sqrt(mean_square_diff / n)


def _grid(d: np.ndarray) -> tuple[np.ndarray, int] | None:
    """|d| as integers on the smallest common grid 1/L (per-item means of k answers are
    multiples of 1/k), and L; None when the values are not such fractions."""
    magnitudes = np.abs(d)
    fractions = [Fraction(float(v)).limit_denominator(1000) for v in magnitudes]
    if any(abs(float(f) - v) > 1e-9 for f, v in zip(fractions, magnitudes)):
        return None
    scale = math.lcm(*(f.denominator for f in fractions)) if fractions else 1
    return np.array([int(f * scale) for f in fractions], dtype=np.int64), scale


def sign_flip_p(d: np.ndarray) -> tuple[float, bool]:
    """Two-sided p of the paired sign-flip test, and whether it is exact.

    p = P(|sum of +-|d_i|| >= |sum of d_i|) when each sign is a fair coin (the null: the two
    models are exchangeable on every item). Exact, by building the distribution of the sum
    on the grid of the per-item means, unless that is too large (then the normal approximation).
    """
    d = np.asarray(d, dtype=float)
    grid = _grid(d)
    if grid is None or np.count_nonzero(grid[0]) * (2 * int(grid[0].sum()) + 1) > EXACT_LIMIT:
        var = float(np.sum(d * d))
        if var == 0:
            return 1.0, False
        return min(1.0, 2 * (1 - NormalDist().cdf(abs(float(d.sum())) / math.sqrt(var)))), False
    units = grid[0]
    observed = abs(int(np.sum(np.sign(d) * units)))
    total = int(units.sum())
    # Distribution of the sum of +-m_i over items, one item at a time (index = sum + total);
    # partial sums never exceed the total, so np.roll never wraps.
    dist = np.zeros(2 * total + 1)
    dist[total] = 1.0
    for m in units[units > 0]:
        dist = 0.5 * (np.roll(dist, int(m)) + np.roll(dist, -int(m)))
    sums = np.arange(-total, total + 1)
    return float(min(1.0, dist[np.abs(sums) >= observed].sum())), True


RESAMPLE_CHUNK = 2_000_000
"""Bootstrap resamples are drawn in chunks of about this many item indices (memory stays
bounded for large n)."""


def resample_indices(
    rng: np.random.Generator, n_boot: int, n: int, groups: list[np.ndarray] | None = None
) -> Iterator[np.ndarray]:
    """``n_boot`` bootstrap resamples of ``n`` item indices, in chunks of shape (resamples, n):
    drawn with replacement from all items, or within each of ``groups`` (index arrays, one per
    stratum; a resample's columns are the groups' draws side by side). The draws depend on the
    chunk size: a changed RESAMPLE_CHUNK changes every seeded interval."""
    chunk = max(1, RESAMPLE_CHUNK // max(n, 1))
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        if groups is None:
            yield rng.integers(0, n, size=(size, n))
        else:
            yield np.concatenate([g[rng.integers(0, len(g), size=(size, len(g)))] for g in groups], axis=1)


def _bootstrap_means(
    teacher: np.ndarray, other: np.ndarray, seed: int, n_boot: int, strata: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Means of both arrays over the same item resamples (within each stratum when given)."""
    n = len(teacher)
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(strata == s) for s in pd.unique(strata)] if strata is not None else [np.arange(n)]
    t_means, o_means = [], []
    for idx in resample_indices(rng, n_boot, n, groups):
        t_means.append(teacher[idx].mean(axis=1))
        o_means.append(other[idx].mean(axis=1))
    return np.concatenate(t_means), np.concatenate(o_means)


def compare(
    teacher: np.ndarray, other: np.ndarray, seed: int, n_boot: int = N_BOOT, strata: np.ndarray | None = None
) -> dict:
    """Paired statistics of ``other`` against ``teacher``: per-item mean correctness (0/1 with
    one answer per item) over the same items; ``strata`` (e.g. each item's task) makes the
    bootstrap resample within each stratum."""
    teacher, other = np.asarray(teacher, float), np.asarray(other, float)
    n = len(teacher)
    d = other - teacher
    binary = bool(np.isin(teacher, (0.0, 1.0)).all() and np.isin(other, (0.0, 1.0)).all())
    p, exact = sign_flip_p(d) if n else (1.0, True)
    t_means, o_means = _bootstrap_means(teacher, other, seed, n_boot, None if strata is None else np.asarray(strata))
    diffs = o_means - t_means
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(t_means > 0, o_means / t_means, np.nan)
    t_acc, o_acc = float(teacher.mean()), float(other.mean())
    return {
        "n": n,
        "teacher_accuracy": t_acc,
        "accuracy": o_acc,
        "diff": o_acc - t_acc,
        "diff_low": float(np.percentile(diffs, 2.5)),
        "diff_high": float(np.percentile(diffs, 97.5)),
        "only_teacher_right": int((d < 0).sum()),
        "only_model_right": int((d > 0).sum()),
        "p_value": p,
        "test": (MCNEMAR if binary else SIGN_FLIP) + ("" if exact else " (normal approximation)"),
        "mcnemar_p": p if binary else math.nan,
        "mdd80": mdd_paired(n, float(np.mean(d * d)) if n else 0.0),
        "retained": o_acc / t_acc if t_acc > 0 else math.nan,
        "retained_low": float(np.nanpercentile(ratios, 2.5)) if np.isfinite(ratios).any() else math.nan,
        "retained_high": float(np.nanpercentile(ratios, 97.5)) if np.isfinite(ratios).any() else math.nan,
    }


def paired_vs_teacher(samples: pd.DataFrame, seed: int) -> list[PairedComparison]:
    """Every non-teacher model against the teacher, per task and pooled over all tasks, paired
    over items (k responses to an item count as that item's mean correctness)."""
    teacher_names = samples.loc[samples["role"] == "teacher", "model"].unique()
    if len(teacher_names) != 1:
        return []
    wide = samples.pivot_table(index=["task", "doc_id"], columns="model", values="correct", aggfunc="mean")
    counts = samples.pivot_table(index=["task", "doc_id"], columns="model", values="correct", aggfunc="size")
    t = teacher_names[0]
    out = []
    for model in [m for m in dict.fromkeys(samples["model"]) if m != t]:
        both = wide[[t, model]].dropna()
        single = bool((counts.loc[both.index, [t, model]] == 1).all().all())
        tasks = [task for task in dict.fromkeys(samples["task"]) if task in both.index.get_level_values("task")]
        groups = [(task, both.xs(task, level="task")) for task in tasks] + [(POOLED, both)]
        for task, g in groups:
            strata = g.index.get_level_values("task").to_numpy() if task == POOLED else None
            stats = compare(g[t].to_numpy(), g[model].to_numpy(), seed, strata=strata)
            if not single and stats["test"].startswith(MCNEMAR):
                # k answers per item that happen to agree are still not McNemar's 0/1 pairs.
                stats.update(test=stats["test"].replace(MCNEMAR, SIGN_FLIP), mcnemar_p=math.nan)
            out.append(PairedComparison(model=model, task=task, **stats))
    return out
