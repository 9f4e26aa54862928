"""The prices a run uses, overall cost per model, and the cost-quality Pareto frontier (pure).

How each model is billed is its cost basis, one class per basis in ``bench/analysis/cost_bases.py``
(by default measured device time for self-hosted models, tokens x list prices for API models).

The prices a run used are saved in its folder as ``prices.json``; every $ figure is computed
from that file and the records, never from constants.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from bench.analysis import cost_bases
from bench.analysis.accuracy import Z95
from bench.analysis.cost_bases import api_usd, device_usd  # noqa: F401  (re-exported: the $ of one task)

OVERALL_CI = "normal, from the per-task standard errors: mean +- 1.96 sqrt(sum SE_t^2) / T"


def prices_used(cfg: dict[str, Any]) -> dict[str, Any]:
    """The price of every model of a resolved config, with sources and dates (for prices.json);
    each entry is written by the model's cost basis (``bench/analysis/cost_bases.py``)."""
    models: dict[str, Any] = {}
    for m in cfg["models"].values():
        models[m["name"]] = cost_bases.for_model(m).price_entry(m, cfg["hardware"])
        training = {k: v for k, v in m.get("training", {}).items() if v not in (None, "")}
        if training:
            models[m["name"]]["training"] = training
    return {"models": models}


def pareto_optimal(cost: pd.Series, quality: pd.Series) -> pd.Series:
    """True where no other point is at least as cheap and as good, and strictly better in one."""
    flags = []
    for i in cost.index:
        dominated = any(
            cost[j] <= cost[i] and quality[j] >= quality[i] and (cost[j] < cost[i] or quality[j] > quality[i])
            for j in cost.index
            if j != i and not (math.isnan(cost[j]) or math.isnan(quality[j]))
        )
        flags.append(not dominated and not math.isnan(cost[i]))
    return pd.Series(flags, index=cost.index, dtype=bool)


def overall_by_model(summary: pd.DataFrame, cost_intervals: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per model over all tasks: macro accuracy with its 95% interval, total $, $ per
    correct answer (with its interval when ``cost_intervals`` gives one) and per 1k samples.

    The mean over T tasks has standard error sqrt(sum of the tasks' squared SEs) / T (tasks
    are independent samples); its interval is the normal one, mean +- 1.96 SE, clipped to [0, 1].
    """
    g = summary.groupby(["model", "role"], sort=False)
    out = g.agg(
        accuracy=("accuracy", "mean"),
        n=("n", "sum"),
        usd=("usd", "sum"),
        correct=("n_correct", "sum"),
        n_tasks=("task", "size"),
    ).reset_index()
    squares = (summary["se"] ** 2).groupby([summary["model"], summary["role"]], sort=False).sum()
    out["se"] = np.sqrt(squares.to_numpy()) / out["n_tasks"]
    out["ci95_low"] = (out["accuracy"] - Z95 * out["se"]).clip(lower=0.0)
    out["ci95_high"] = (out["accuracy"] + Z95 * out["se"]).clip(upper=1.0)
    out["ci95_method"] = OVERALL_CI
    out["usd_per_correct"] = [u / c if c else math.inf for u, c in zip(out["usd"], out["correct"])]
    out["usd_per_1k_samples"] = out["usd"] / out["n"] * 1000
    out["task"] = "all tasks"
    out["pareto_optimal"] = pareto_optimal(out["usd_per_correct"], out["accuracy"])
    if cost_intervals is not None and not cost_intervals.empty:
        out = out.merge(cost_intervals, on="model", how="left")
    return out
