"""How far the cost figures could move, estimated from the run itself; latency stalls (pure).

A self-hosted model's $ is its serving time x the device price, and the serving time is
measured once per task. Within that one measurement the rate at which answers came back varied
(bursts, stalls). The task's span, first request sent to last answer received, is cut into
equal time bins; bins with no request in flight are dropped (an idle gap between two passes is
not serving time); the answers completed per bin form a throughput series, resampled with a
circular block bootstrap (blocks of consecutive bins, so a stall stays one event). A
replicate's mean rate r* against the measured r gives a serving time, and a $, of r / r* times
the measured one. This covers variation within the run only, not run-to-run or
machine-to-machine differences. When a model's tasks share one request pool (``bench.serving.dispatch``),
a task's throughput also rises and falls with the other tasks' load over its span; the interval
includes that variation, so it errs wide rather than narrow.

$ per correct answer also depends on how many answers were right: items are resampled too,
per task (stratified) and with the same draw for every model (paired), and a replicate's
$ per correct answer is its $ over its number of correct answers.

API models (basis ``api_tokens``) are billed by token counts, and models billed by compute by
token counts x FLOPs per token, both exact in the records: their $ has no time component.
Records without send and answer times (written before they existed) leave the time component
unmeasured: $ intervals are NaN, and $ per correct answer intervals cover the item sampling
only. ``cost_ci_method`` says which applies to each row.

A model x task is flagged as stalled when the 99th percentile of its request latencies is more
than ``STALL_RATIO`` times their median: some requests waited far longer than typical, which
inflates its serving time and so its $ (one such stall moved a smoke run's cost 4x).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

import numpy as np
import pandas as pd

from bench.analysis import cost_bases
from bench.analysis.cost_bases import ApiTokens

N_BOOT = 2_000
STALL_RATIO = 10.0
TIMED = "throughput + items"
"""Serving time by the block bootstrap of throughput, correct answers by resampling items."""
TOKENS = ApiTokens.interval_method
"""API billing: token counts are exact; correct answers by resampling items (each basis whose $
is exact in the records names its own method, ``CostBasis.interval_method``)."""
ITEMS_ONLY = "items only"
"""No request times in the records: serving time measured once, only the items resampled."""
EXACT = "exact counts + items"
"""Several bases whose $ is exact in the records (e.g. API tokens and compute), none timed."""
SCALES_WITH_USD = (
    "usd",
    "usd_per_sample",
    "usd_per_1k_samples",
    "usd_per_1m_generated_tokens",
    "usd_per_1m_processed_tokens",
)
"""Columns that are the task's $ divided by a count fixed by the records: same relative interval."""
STEADY = {"generate": "steady_usd_per_1m_generated_tokens", "loglikelihood": "steady_usd_per_1m_processed_tokens"}


def latency_stall(p50: float, p99: float) -> bool:
    """True when the 99th percentile latency is more than ``STALL_RATIO`` x the median."""
    return bool(p50 > 0 and p99 > STALL_RATIO * p50)


def completions_per_bin(sent: np.ndarray, done: np.ndarray, n_bins: int) -> np.ndarray:
    """Answers completed in each of ``n_bins`` equal time bins from the first send to the last
    answer, keeping only the bins during which at least one request was in flight."""
    sent, done = np.asarray(sent, dtype=float), np.asarray(done, dtype=float)
    t0, t1 = float(sent.min()), float(done.max())
    if not t1 > t0:
        return np.array([float(len(done))])

    def bin_of(t: np.ndarray) -> np.ndarray:
        return np.clip(((t - t0) / (t1 - t0) * n_bins).astype(int), 0, n_bins - 1)

    first, last = bin_of(sent), bin_of(done)
    counts = np.bincount(last, minlength=n_bins).astype(float)
    in_flight = np.zeros(n_bins + 1, dtype=int)  # +1 where a request starts, -1 after it ends
    np.add.at(in_flight, first, 1)
    np.add.at(in_flight, np.maximum(last, first) + 1, -1)
    return counts[np.cumsum(in_flight)[:-1] > 0]


def time_factors(sent: np.ndarray, done: np.ndarray, rng: np.random.Generator, n_boot: int = N_BOOT) -> np.ndarray:
    """Replicates of (serving time at a resampled throughput) / (serving time measured).

    Bins: a quarter of the number of answers, between 8 and 64; circular blocks of
    ceil(bins^(1/3)) consecutive bins. A replicate with no answer at all is infinite."""
    counts = completions_per_bin(sent, done, int(np.clip(len(done) // 4, 8, 64)))
    m = len(counts)
    block = max(1, math.ceil(m ** (1 / 3)))
    starts = rng.integers(0, m, size=(n_boot, math.ceil(m / block)))
    index = ((starts[..., None] + np.arange(block)) % m).reshape(n_boot, -1)[:, :m]
    means = counts[index].mean(axis=1)
    with np.errstate(divide="ignore"):
        return np.where(means > 0, counts.mean() / means, math.inf)


def percentile_interval(values: np.ndarray) -> tuple[float, float]:
    """2.5th and 97.5th percentiles (nearest rank, so infinite replicates stay infinite)."""
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if not len(values):
        return math.nan, math.nan
    low, high = np.percentile(values, [2.5, 97.5], method="nearest")
    return float(low), float(high)


@dataclass(frozen=True)
class Replicates:
    """Bootstrap replicates per (model, task), from one seeded draw: the items of each task are
    resampled once for all models; each model x task's serving time is resampled on its own."""

    usd: dict[tuple[str, str], np.ndarray]
    correct: dict[tuple[str, str], np.ndarray]
    samples: dict[tuple[str, str], np.ndarray]
    method: dict[tuple[str, str], str]
    """TIMED, ITEMS_ONLY, or the ``interval_method`` of a basis whose $ is exact (TOKENS, compute's)."""


def _time_part(g: pd.DataFrame, basis: str, rng: np.random.Generator, n_boot: int) -> tuple[np.ndarray, str]:
    billing = cost_bases.get(basis)
    if not billing.billed_by_time:
        assert billing.interval_method is not None, f"cost basis {basis!r} names no interval_method"
        return np.ones(n_boot), billing.interval_method
    if "sent_at" in g and "done_at" in g:
        timed = g[["sent_at", "done_at"]].astype(float).dropna()
        if len(timed):
            return time_factors(timed["sent_at"].to_numpy(), timed["done_at"].to_numpy(), rng, n_boot), TIMED
    return np.ones(n_boot), ITEMS_ONLY


def bootstrap(samples: pd.DataFrame, summary: pd.DataFrame, seed: int, n_boot: int = N_BOOT) -> Replicates:
    """Replicates of every summary row's $, correct answers and samples (see the module docstring)."""
    rng = np.random.default_rng(seed)
    usd, correct, count, method = {}, {}, {}, {}
    for task in dict.fromkeys(summary["task"]):
        rows = samples[samples["task"] == task]
        items = pd.Index(sorted(rows["doc_id"].unique()))
        draw = rng.integers(0, len(items), size=(n_boot, len(items)))
        for r in summary[summary["task"] == task].itertuples():
            g = rows[rows["model"] == r.model]
            per_item = g.groupby("doc_id")["correct"].agg(["sum", "size"]).reindex(items, fill_value=0)
            key = (r.model, task)
            correct[key] = per_item["sum"].to_numpy(dtype=float)[draw].sum(axis=1)
            count[key] = per_item["size"].to_numpy(dtype=float)[draw].sum(axis=1)
            factors, method[key] = _time_part(g, r.cost_basis, rng, n_boot)
            usd[key] = r.usd * factors
    return Replicates(usd, correct, count, method)


def _total(parts: Iterable[np.ndarray]) -> np.ndarray:
    """Element-wise sum of replicate arrays (``sum``: the int 0 for none, which numpy treats alike)."""
    return cast(np.ndarray, sum(parts))


def _per_correct(usd: np.ndarray, correct: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(correct > 0, usd / correct, math.inf)


def _relative(reps: Replicates, keys: list[tuple[str, str]], usd: float) -> tuple[float, float]:
    """Interval of the summed $ of ``keys`` relative to its measured value (NaN if unmeasured)."""
    if not keys or usd <= 0 or any(reps.method[k] == ITEMS_ONLY for k in keys):
        return math.nan, math.nan
    low, high = percentile_interval(_total(reps.usd[k] for k in keys))
    return low / usd, high / usd


def combined_method(methods: list[str]) -> str:
    """What an interval over several model x tasks covers: the weakest of their methods."""
    kinds = set(methods)
    if ITEMS_ONLY in kinds:
        return ITEMS_ONLY
    if len(kinds) == 1:
        return kinds.pop()
    return TIMED if TIMED in kinds else EXACT


def attach(summary: pd.DataFrame, reps: Replicates) -> pd.DataFrame:
    """The summary with a 95% interval beside every cost figure, and ``cost_ci_method``."""
    out: dict[str, list[float]] = {
        f"{c}_ci95_{end}": []
        for c in (*SCALES_WITH_USD, *STEADY.values(), "usd_per_correct", "cost_ratio_vs_teacher")
        for end in ("low", "high")
    }
    teacher = dict(
        zip(summary.loc[summary["role"] == "teacher", "task"], summary.loc[summary["role"] == "teacher", "model"])
    )
    for r in summary.itertuples():
        key = (r.model, r.task)
        low, high = _relative(reps, [key], r.usd)
        for c in SCALES_WITH_USD:
            out[f"{c}_ci95_low"].append(getattr(r, c) * low)
            out[f"{c}_ci95_high"].append(getattr(r, c) * high)
        mine = summary[(summary["model"] == r.model) & (summary["request_kind"] == r.request_kind)]
        low, high = _relative(reps, list(zip(mine["model"], mine["task"])), float(mine["usd"].sum()))
        for kind, c in STEADY.items():
            value = getattr(r, c)
            out[f"{c}_ci95_low"].append(value * low if kind == r.request_kind else math.nan)
            out[f"{c}_ci95_high"].append(value * high if kind == r.request_kind else math.nan)
        low, high = percentile_interval(_per_correct(reps.usd[key], reps.correct[key]))
        out["usd_per_correct_ci95_low"].append(low)
        out["usd_per_correct_ci95_high"].append(high)
        tkey = (teacher.get(r.task), r.task)
        low = high = math.nan
        if tkey in reps.usd and ITEMS_ONLY not in (reps.method[key], reps.method[tkey]):
            with np.errstate(divide="ignore", invalid="ignore"):
                low, high = percentile_interval(reps.usd[key] / reps.usd[tkey])
        out["cost_ratio_vs_teacher_ci95_low"].append(low)
        out["cost_ratio_vs_teacher_ci95_high"].append(high)
    return summary.assign(**out, cost_ci_method=[reps.method[(r.model, r.task)] for r in summary.itertuples()])


def over_tasks(reps: Replicates, model: str, tasks: list[str]) -> dict[str, np.ndarray]:
    """Replicates of a model's $, correct answers and samples summed over ``tasks``."""
    keys = [(model, t) for t in tasks if (model, t) in reps.usd]
    return {
        "usd": _total(reps.usd[k] for k in keys),
        "correct": _total(reps.correct[k] for k in keys),
        "samples": _total(reps.samples[k] for k in keys),
    }


def overall(reps: Replicates, summary: pd.DataFrame) -> pd.DataFrame:
    """Per model, the 95% interval of $ per correct answer over all its tasks."""
    rows = []
    for model, g in summary.groupby("model", sort=False):
        tasks = list(g["task"])
        both = over_tasks(reps, model, tasks)
        low, high = percentile_interval(_per_correct(both["usd"], both["correct"]))
        rows.append(
            {
                "model": model,
                "usd_per_correct_ci95_low": low,
                "usd_per_correct_ci95_high": high,
                "cost_ci_method": combined_method([reps.method[(model, t)] for t in tasks]),
            }
        )
    return pd.DataFrame(rows)


def per_correct_ratio(reps: Replicates, a: str, b: str, tasks: list[str]) -> tuple[float, float]:
    """95% interval of ($ per correct of ``a``) / ($ per correct of ``b``) over ``tasks``."""
    x, y = over_tasks(reps, a, tasks), over_tasks(reps, b, tasks)
    with np.errstate(divide="ignore", invalid="ignore"):
        return percentile_interval(_per_correct(x["usd"], x["correct"]) / _per_correct(y["usd"], y["correct"]))


def accuracy_difference(reps: Replicates, a: str, b: str, tasks: list[str]) -> tuple[float, float]:
    """95% interval of the pooled accuracy of ``a`` minus that of ``b`` (paired items)."""
    x, y = over_tasks(reps, a, tasks), over_tasks(reps, b, tasks)
    return percentile_interval(x["correct"] / x["samples"] - y["correct"] / y["samples"])
