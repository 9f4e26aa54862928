"""Published numbers beside measured ones: "reported" rows and the reproduction delta.

The figures are data in ``bench/reference/`` (see its README for sources): the DeepSeek-R1
paper's tables, how to read each of their columns (``columns.csv``), and which lm-eval task
measures which of the paper's benchmarks (``tasks.csv``). ``load`` reads them; everything
else here is a pure function of tables.

A measured model names its counterpart through ``reported_as`` (the paper's model name) in
its model config. Where the counterpart and the benchmark both exist, the reproduction delta
is measured - reported, in points, and the report says whether the reported value lies inside
the measured 95% interval.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bench.config import PACKAGE_DIR

REFERENCE_DIR = PACKAGE_DIR / "reference"
# Reported metrics a measured accuracy (mean correctness over all samples) is compared with.
ACCURACY_METRICS = ("pass@1", "exact_match")


@dataclass(frozen=True)
class Reference:
    """The reported figures in long form, and the task -> benchmark mapping."""

    values: pd.DataFrame
    """model, benchmark, metric, unit, value (as published: percent or rating), source."""
    tasks: pd.DataFrame
    """task, benchmark, note."""


def load(folder: Path = REFERENCE_DIR) -> Reference:
    """Read the reference folder (the only I/O here)."""
    columns = pd.read_csv(folder / "columns.csv", keep_default_na=False)
    tables = {name: pd.read_csv(folder / name) for name in dict.fromkeys(columns["file"])}
    return Reference(tidy(tables, columns), pd.read_csv(folder / "tasks.csv"))


def tidy(tables: dict[str, pd.DataFrame], columns: pd.DataFrame) -> pd.DataFrame:
    """Both table layouts in one long table; identical values from several files kept once."""
    parts = []
    for name, table in tables.items():
        spec = columns[columns["file"] == name]
        if "model" in table:  # one row per model, one column per benchmark x metric
            long = table.melt(id_vars=[c for c in ("model", "role") if c in table], var_name="label")
        else:  # one row per benchmark, one column per model
            long = table.melt(id_vars=["benchmark"], var_name="model").rename(columns={"benchmark": "label"})
        unknown = sorted(set(long["label"]) - set(spec["label"]))
        if unknown:
            raise ValueError(f"{name}: no entry in columns.csv for {unknown}; add one (benchmark, metric, unit)")
        parts.append(long.merge(spec, on="label").assign(source=name))
    values = pd.concat(parts, ignore_index=True).dropna(subset=["value"])
    keys = ["model", "benchmark", "metric", "unit", "value"]
    return (
        values.groupby(keys, sort=False, as_index=False)
        .agg(source=("source", " + ".join), note=("note", "first"))
        .reset_index(drop=True)
    )


def benchmark_of(tasks: pd.DataFrame) -> dict[str, str]:
    return dict(zip(tasks["task"], tasks["benchmark"]))


def reported_rows(run_tasks: list[str], ref: Reference) -> pd.DataFrame:
    """Every reported percentage on the benchmarks this run's tasks measure, per task."""
    bench = benchmark_of(ref.tasks)
    v = ref.values[ref.values["unit"] == "percent"]
    rows = [v[v["benchmark"] == bench[t]].assign(task=t) for t in run_tasks if t in bench]
    if not rows:
        return pd.DataFrame(columns=["task", *v.columns])
    out = pd.concat(rows, ignore_index=True)
    return out[["task", *v.columns]].assign(value=out["value"] / 100)


def _measured(row, metric: str) -> tuple[float, float, float] | None:
    """The measured value comparable with a reported metric, with its interval (NaN if none)."""
    if metric in ACCURACY_METRICS:
        return row["accuracy"], row["ci95_low"], row["ci95_high"]
    m = re.fullmatch(r"cons@(\d+)", metric)
    if m and int(m.group(1)) == row.get("repeats"):
        return row["cons_at_k"], math.nan, math.nan
    return None


def reproduction(summary: pd.DataFrame, ref: Reference, reported_as: dict[str, str]) -> pd.DataFrame:
    """One row per measured model x task x reported value of its counterpart: the delta."""
    bench = benchmark_of(ref.tasks)
    v = ref.values[ref.values["unit"] == "percent"]
    rows = []
    for _, r in summary.iterrows():
        name, benchmark = reported_as.get(r["model"]), bench.get(r["task"])
        if not name or not benchmark:
            continue
        for _, rep in v[(v["model"] == name) & (v["benchmark"] == benchmark)].iterrows():
            measured = _measured(r, rep["metric"])
            if measured is None:
                continue
            value, low, high = measured
            reported = rep["value"] / 100
            rows.append(
                {
                    "task": r["task"],
                    "model": r["model"],
                    "reported_as": name,
                    "benchmark": benchmark,
                    "metric": rep["metric"],
                    "measured": value,
                    "ci95_low": low,
                    "ci95_high": high,
                    "reported": reported,
                    "delta_pts": 100 * (value - reported),
                    "inside_ci95": (low <= reported <= high) if not math.isnan(low) else None,
                    "source": rep["source"],
                }
            )
    columns = [
        "task",
        "model",
        "reported_as",
        "benchmark",
        "metric",
        "measured",
        "ci95_low",
        "ci95_high",
        "reported",
        "delta_pts",
        "inside_ci95",
        "source",
    ]
    return pd.DataFrame(rows, columns=columns)


def attach(summary: pd.DataFrame, repro: pd.DataFrame, reported_as: dict[str, str]) -> pd.DataFrame:
    """summary.csv's reproduction columns: the first reported accuracy of each row's counterpart
    (file order of ``columns.csv``), measured - reported in points, and whether the reported
    value lies inside the measured 95% interval. Missing (None or NaN) where there is no counterpart."""
    acc = repro[repro["metric"].isin(ACCURACY_METRICS)].drop_duplicates(["model", "task"]).set_index(["model", "task"])
    keys = list(zip(summary["model"], summary["task"]))

    def col(name: str, default):
        return [acc.at[k, name] if k in acc.index else default for k in keys]

    return summary.assign(
        reported_as=[reported_as.get(m) or None for m in summary["model"]],
        reported_accuracy=col("reported", math.nan),
        reproduction_delta_pts=col("delta_pts", math.nan),
        reported_in_ci95=col("inside_ci95", None),
        reported_source=col("source", None),
    )


def unknown_names(reported_as: dict[str, str], ref: Reference) -> list[str]:
    """``reported_as`` values that name no model of the reference tables (typos), as messages."""
    known = sorted(set(ref.values["model"]))
    return [
        f"{model}: reported_as {name!r} is not in bench/reference (known: {', '.join(known)})"
        for model, name in reported_as.items()
        if name and name not in known
    ]
