"""One cost model for self-hosted and API models, and the cost-quality Pareto frontier (pure).

- Self-hosted: measured device time x $ per device-hour (devices = the hardware's count).
- API: prompt tokens x input price + cached prompt tokens x cached-input price + completion
  tokens (reasoning included) x output price, all per 1M tokens.

The prices a run used are saved in its folder as ``prices.json``; every $ figure is computed
from that file and the records, never from constants.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from bench.accuracy import Z95

DEVICE_TIME = "device_time"
API_TOKENS = "api_tokens"
OVERALL_CI = "normal, from the per-task standard errors: mean +- 1.96 sqrt(sum SE_t^2) / T"


def basis_of(model: dict[str, Any]) -> str:
    """A resolved model config's cost basis: its ``billing``, else by where it is served."""
    return model.get("billing") or (API_TOKENS if model["source_kind"] == "api" else DEVICE_TIME)


def prices_used(cfg: dict[str, Any]) -> dict[str, Any]:
    """The price of every model of a resolved config, with sources and dates (for prices.json)."""
    hw = cfg["hardware"]
    models: dict[str, Any] = {}
    for m in cfg["models"].values():
        if basis_of(m) == API_TOKENS:
            models[m["name"]] = {"basis": API_TOKENS, **m["price"]}
            if m.get("stands_in_for"):
                models[m["name"]]["stands_in_for"] = m["stands_in_for"]
        else:
            models[m["name"]] = {
                "basis": DEVICE_TIME, "device_kind": hw["device_kind"], "devices": hw["count"],
                "usd_per_device_hour": hw["usd_per_device_hour"], "source": hw["price_source"],
                "as_of": hw["price_as_of"],
            }
        training = {k: v for k, v in m.get("training", {}).items() if v not in (None, "")}
        if training:
            models[m["name"]]["training"] = training
    return {"models": models}


def device_usd(seconds: float, devices: int, usd_per_device_hour: float) -> float:
    return seconds * devices * usd_per_device_hour / 3600.0


def api_usd(prompt_tokens: int, cached_prompt_tokens: int, completion_tokens: int, price: dict) -> float:
    cached_price = price.get("cached_input")
    if cached_price is None:
        cached_price = price["input"]
    fresh = prompt_tokens - cached_prompt_tokens
    return (fresh * price["input"] + cached_prompt_tokens * cached_price
            + completion_tokens * price["output"]) / 1e6


def pareto_optimal(cost: pd.Series, quality: pd.Series) -> pd.Series:
    """True where no other point is at least as cheap and as good, and strictly better in one."""
    flags = []
    for i in cost.index:
        dominated = any(
            cost[j] <= cost[i] and quality[j] >= quality[i] and (cost[j] < cost[i] or quality[j] > quality[i])
            for j in cost.index if j != i and not (math.isnan(cost[j]) or math.isnan(quality[j])))
        flags.append(not dominated and not math.isnan(cost[i]))
    return pd.Series(flags, index=cost.index, dtype=bool)


def overall_by_model(summary: pd.DataFrame, cost_intervals: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per model over all tasks: macro accuracy with its 95% interval, total $, $ per
    correct answer (with its interval when ``cost_intervals`` gives one) and per 1k samples.

    The mean over T tasks has standard error sqrt(sum of the tasks' squared SEs) / T (tasks
    are independent samples); its interval is the normal one, mean +- 1.96 SE, clipped to [0, 1].
    """
    g = summary.groupby(["model", "role"], sort=False)
    out = g.agg(accuracy=("accuracy", "mean"), n=("n", "sum"), usd=("usd", "sum"),
                correct=("n_correct", "sum"), n_tasks=("task", "size")).reset_index()
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
