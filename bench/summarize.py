"""Per model x task summary, computed only from the records of a run folder (no I/O here).

Cost of self-hosted serving = the task's measured wall time x devices x $ per device-hour.
"""

from __future__ import annotations

import math

import pandas as pd
from scipy.stats import binomtest

from bench.config import ROLE_ORDER

COLUMNS = [
    "model", "role", "task", "metric", "n", "accuracy", "stderr", "ci95_low", "ci95_high",
    "chance", "prompt_tokens", "completion_tokens", "reasoning_tokens_mean", "finish_length_share",
    "latency_p50_s", "wall_s", "output_tokens_per_s", "device_count", "usd_per_device_hour",
    "usd", "usd_per_1k_samples", "usd_per_correct",
]


def wilson(correct: int, n: int) -> tuple[float, float]:
    if n == 0:
        return math.nan, math.nan
    ci = binomtest(correct, n).proportion_ci(confidence_level=0.95, method="wilson")
    return float(ci.low), float(ci.high)


def _chance(run: pd.Series) -> float:
    value = run.get("chance")
    return math.nan if value is None or pd.isna(value) else float(value)


def summarize(samples: pd.DataFrame, task_runs: pd.DataFrame, device_count: int,
              usd_per_device_hour: float) -> pd.DataFrame:
    """One tidy row per model x task; every number is a function of the records passed in."""
    runs = task_runs.set_index(["model", "task"])
    rows = []
    for (model, task), g in samples.groupby(["model", "task"], sort=False):
        n = len(g)
        acc = float(g["correct"].mean())
        k = int(round(g["correct"].sum()))
        low, high = wilson(k, n)
        wall = float(runs.loc[(model, task), "wall_s"])
        usd = wall * device_count * usd_per_device_hour / 3600.0
        out_tokens = int(g["completion_tokens"].sum())
        rows.append({
            "model": model, "role": g["role"].iloc[0], "task": task, "metric": g["metric"].iloc[0],
            "n": n, "accuracy": acc,
            # Sample standard error, as lm-eval reports it.
            "stderr": float(g["correct"].std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan,
            "ci95_low": low, "ci95_high": high, "chance": _chance(runs.loc[(model, task)]),
            "prompt_tokens": int(g["prompt_tokens"].sum()), "completion_tokens": out_tokens,
            "reasoning_tokens_mean": float(g["reasoning_tokens"].mean()),
            "finish_length_share": float(g["finish_reason"].str.contains("length").mean()),
            "latency_p50_s": float(g["latency_s"].median()),
            "wall_s": wall, "output_tokens_per_s": out_tokens / wall if wall > 0 else math.nan,
            "device_count": device_count, "usd_per_device_hour": usd_per_device_hour,
            "usd": usd, "usd_per_1k_samples": usd / n * 1000.0,
            "usd_per_correct": usd / k if k else math.inf,
        })
    df = pd.DataFrame(rows, columns=COLUMNS)
    df["_r"] = df["role"].map(ROLE_ORDER)
    # Tasks keep the suite's order (first appearance in the records); models go by role.
    df["_t"] = df["task"].map({t: i for i, t in enumerate(dict.fromkeys(samples["task"]))})
    return df.sort_values(["_t", "_r", "model"], kind="stable").drop(columns=["_r", "_t"]).reset_index(drop=True)


def retained(summary: pd.DataFrame) -> pd.DataFrame:
    """Each non-teacher model's accuracy as a share of the teacher's, per task and overall."""
    teacher = summary[summary["role"] == "teacher"]
    others = summary[summary["role"] != "teacher"][["model", "role", "task", "accuracy"]].copy()
    if teacher.empty or others.empty:
        return pd.DataFrame(columns=["model", "role", "task", "accuracy", "teacher_accuracy", "retained"])
    t = teacher.set_index("task")["accuracy"]
    others["teacher_accuracy"] = others["task"].map(t)
    macro = others.groupby(["model", "role"], sort=False)[["accuracy", "teacher_accuracy"]].mean().reset_index()
    macro["task"] = "mean over tasks"
    out = pd.concat([others, macro[others.columns]], ignore_index=True)
    out["retained"] = out["accuracy"] / out["teacher_accuracy"]
    return out
