"""Paired comparisons of each model against the teacher on the items both answered (pure).

Both models answered the same items, so the comparison is paired: the difference in accuracy
gets a paired (item-resampling) bootstrap interval, the test is McNemar's exact test on the
discordant items (statsmodels), and the minimum detectable difference says what this many
items could have detected at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import norm
from statsmodels.stats.contingency_tables import mcnemar

N_BOOT = 10_000


@dataclass(frozen=True)
class PairedComparison:
    """One model against the teacher on their shared items (``diff`` = model - teacher)."""

    model: str
    task: str
    n: int
    teacher_accuracy: float
    accuracy: float
    diff: float
    diff_low: float
    diff_high: float
    only_teacher_right: int
    only_model_right: int
    mcnemar_p: float
    mdd80: float
    """Smallest |difference| detectable with 80% power at alpha 0.05 with these items."""
    retained: float
    retained_low: float
    retained_high: float


def mdd_paired(n: int, discordant_share: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """Minimum detectable paired difference: (z_{1-a/2} + z_power) * sqrt(discordant share / n).

    The normal approximation to McNemar's test: under the null the paired difference has
    variance (share of discordant items) / n. With no discordant items it is undefined (NaN).
    """
    if n == 0 or discordant_share <= 0:
        return math.nan
    return (norm.ppf(1 - alpha / 2) + norm.ppf(power)) * math.sqrt(discordant_share / n)


def compare(teacher: np.ndarray, other: np.ndarray, seed: int, n_boot: int = N_BOOT) -> dict:
    """Paired statistics of ``other`` against ``teacher`` (0/1 arrays over the same items)."""
    teacher, other = np.asarray(teacher, float), np.asarray(other, float)
    n = len(teacher)
    b = int(((teacher == 1) & (other == 0)).sum())
    c = int(((teacher == 0) & (other == 1)).sum())
    table = [[int(((teacher == 1) & (other == 1)).sum()), b], [c, int(((teacher == 0) & (other == 0)).sum())]]
    p = 1.0 if b + c == 0 else float(mcnemar(table, exact=True).pvalue)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    t_means, o_means = teacher[idx].mean(axis=1), other[idx].mean(axis=1)
    diffs = o_means - t_means
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(t_means > 0, o_means / t_means, np.nan)
    t_acc, o_acc = float(teacher.mean()), float(other.mean())
    return {
        "n": n, "teacher_accuracy": t_acc, "accuracy": o_acc, "diff": o_acc - t_acc,
        "diff_low": float(np.percentile(diffs, 2.5)), "diff_high": float(np.percentile(diffs, 97.5)),
        "only_teacher_right": b, "only_model_right": c, "mcnemar_p": p,
        "mdd80": mdd_paired(n, (b + c) / n if n else 0.0),
        "retained": o_acc / t_acc if t_acc > 0 else math.nan,
        "retained_low": float(np.nanpercentile(ratios, 2.5)) if np.isfinite(ratios).any() else math.nan,
        "retained_high": float(np.nanpercentile(ratios, 97.5)) if np.isfinite(ratios).any() else math.nan,
    }


def paired_vs_teacher(samples: pd.DataFrame, seed: int) -> list[PairedComparison]:
    """Every non-teacher model against the teacher, per task and pooled over all tasks."""
    teacher_names = samples.loc[samples["role"] == "teacher", "model"].unique()
    if len(teacher_names) != 1:
        return []
    wide = samples.pivot_table(index=["task", "doc_id"], columns="model", values="correct", aggfunc="mean")
    t = teacher_names[0]
    out = []
    for model in [m for m in dict.fromkeys(samples["model"]) if m != t]:
        both = wide[[t, model]].dropna()
        tasks = [task for task in dict.fromkeys(samples["task"]) if task in both.index.get_level_values("task")]
        groups = [(task, both.xs(task, level="task")) for task in tasks] + [("all tasks", both)]
        for task, g in groups:
            stats = compare(g[t].to_numpy(), g[model].to_numpy(), seed)
            out.append(PairedComparison(model=model, task=task, **stats))
    return out
