"""The report's first lines: one sentence with the answer, from the numbers and their intervals (pure).

    The distilled student keeps X% [CI] of the teacher's accuracy at Y% [CI] of its cost per
    correct answer; against <frontier baseline> it is Z× [CI] cheaper per correct answer at
    W [CI] points lower accuracy.

X and its interval are the pooled "all tasks" row of the paired comparison (``bench/analysis/stats.py``).
Y, Z and W are over all tasks too (total $ over total correct answers; accuracy pooled over
items) with intervals from ``bench/analysis/cost_intervals.py``: the items resampled per task with the
same draw for every model, and each model x task's serving time by a block bootstrap of its
throughput (where the records carry request times). The frontier baseline is a ``baseline``
model billed by API tokens; one that stands in for a named API model is preferred (the
sentence says it is a stand-in); among several, the most accurate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from bench.analysis import cost_bases, cost_intervals
from bench.analysis.stats import POOLED
from bench.reporting.formatting import percent, times

LEAD = "The distilled student"
"""How the headline sentence begins (``bench/reporting/html.py`` sets it apart by it)."""


@dataclass(frozen=True)
class Estimate:
    """A figure and its 95% interval."""

    value: float
    low: float
    high: float


@dataclass(frozen=True)
class Headline:
    """What the first sentence of the report says about one student."""

    student: str
    teacher: str
    retained: Estimate
    """Student accuracy / teacher accuracy, items pooled over tasks (paired bootstrap)."""
    cost_share: Estimate
    """Student $ per correct answer / the teacher's."""
    cost_method: str
    """What the cost intervals cover (``cost_intervals.combined_method``)."""
    n_tasks: int
    baseline: str | None = None
    stands_in_for: str | None = None
    cheaper: Estimate | None = None
    """Baseline $ per correct answer / the student's (above 1: the student is cheaper)."""
    points: Estimate | None = None
    """Baseline accuracy - student accuracy, in points, items pooled (paired)."""
    stalled: tuple[str, ...] = ()
    """Model / task pairs behind these figures whose request latencies show a stall."""


def frontier_baseline(summary: pd.DataFrame, prices: dict) -> str | None:
    """The baseline to compare against: billed at a vendor's list prices (its cost basis says
    so), a stand-in for a named API model preferred, then the most accurate over all tasks;
    None when the run has no such model."""
    models = prices["models"]
    accuracy = summary.groupby("model", sort=False)["accuracy"].mean()
    candidates = [
        m
        for m in dict.fromkeys(summary.loc[summary["role"] == "baseline", "model"])
        if m in models and cost_bases.get(models[m]["basis"]).vendor_priced
    ]
    if not candidates:
        return None
    return max(candidates, key=lambda m: (bool(models[m].get("stands_in_for")), accuracy[m]))


def _pooled(summary: pd.DataFrame, model: str) -> tuple[float, float]:
    """(accuracy with items pooled over tasks, $ per correct answer) over all tasks."""
    g = summary[summary["model"] == model]
    correct, usd = float(g["n_correct"].sum()), float(g["usd"].sum())
    return correct / float(g["n"].sum()), usd / correct if correct else math.inf


def compute(
    summary: pd.DataFrame, paired: pd.DataFrame, reps: cost_intervals.Replicates, prices: dict
) -> list[Headline]:
    """One headline per student (none without a teacher or a student)."""
    teachers = list(dict.fromkeys(summary.loc[summary["role"] == "teacher", "model"]))
    students = list(dict.fromkeys(summary.loc[summary["role"] == "student", "model"]))
    if len(teachers) != 1 or paired.empty:
        return []
    teacher, baseline = teachers[0], frontier_baseline(summary, prices)
    tasks = list(dict.fromkeys(summary["task"]))
    out = []
    for student in students:
        row = paired[(paired["model"] == student) & (paired["task"] == POOLED)]
        if row.empty:
            continue
        row = row.iloc[0]
        (_, cost_s), (_, cost_t) = _pooled(summary, student), _pooled(summary, teacher)
        involved = [teacher, student] + ([baseline] if baseline else [])
        extra = {}
        if baseline:
            (acc_b, cost_b), (acc_s, _) = _pooled(summary, baseline), _pooled(summary, student)
            low, high = cost_intervals.per_correct_ratio(reps, baseline, student, tasks)
            d_low, d_high = cost_intervals.accuracy_difference(reps, baseline, student, tasks)
            extra = {
                "baseline": baseline,
                "stands_in_for": prices["models"][baseline].get("stands_in_for"),
                "cheaper": Estimate(cost_b / cost_s if cost_s else math.nan, low, high),
                "points": Estimate(100 * (acc_b - acc_s), 100 * d_low, 100 * d_high),
            }
        low, high = cost_intervals.per_correct_ratio(reps, student, teacher, tasks)
        stalled = summary[summary["model"].isin(involved) & summary["latency_stall"].astype(bool)]
        out.append(
            Headline(
                student=student,
                teacher=teacher,
                n_tasks=len(tasks),
                retained=Estimate(float(row["retained"]), float(row["retained_low"]), float(row["retained_high"])),
                cost_share=Estimate(cost_s / cost_t if cost_t else math.nan, low, high),
                cost_method=cost_intervals.combined_method(
                    [reps.method[(m, t)] for m in involved for t in tasks if (m, t) in reps.method]
                ),
                stalled=tuple(f"{r.model} / {r.task}" for r in stalled.itertuples()),
                **extra,
            )
        )
    return out


def _inverse(x: float) -> float:
    return math.inf if x == 0 else 1 / x


def _interval(e: Estimate, fmt) -> str:
    return f"{fmt(e.value)} [{fmt(e.low)}, {fmt(e.high)}]"


def sentence(h: Headline) -> str:
    """The headline as one sentence, every figure with its 95% interval."""
    text = (
        f"{LEAD} {h.student} keeps {_interval(h.retained, percent)} of {h.teacher}'s accuracy "
        f"at {_interval(h.cost_share, percent)} of its cost per correct answer"
    )
    if h.baseline and h.cheaper and h.points:
        who = (
            f"{h.baseline}, a stand-in billed at {h.stands_in_for}'s API list prices (not {h.stands_in_for} itself),"
            if h.stands_in_for
            else h.baseline
        )
        c = h.cheaper
        if c.value >= 1:
            cost = f"{_interval(c, times)} cheaper per correct answer"
        else:
            inverse = Estimate(_inverse(c.value), _inverse(c.high), _inverse(c.low))
            cost = f"{_interval(inverse, times)} dearer per correct answer"
        p = h.points
        if p.value >= 0:
            gap = f"{p.value:.1f} [{p.low:.1f}, {p.high:.1f}] points lower accuracy"
        else:
            gap = f"{-p.value:.1f} [{-p.high:.1f}, {-p.low:.1f}] points higher accuracy"
        text += f"; against {who} it is {cost} at {gap}"
    return text + "."


def method_note(h: Headline) -> str:
    """Where the sentence's numbers and intervals come from, in one line."""
    cost = {
        cost_intervals.TIMED: "for cost, each model x task's serving time by a block bootstrap of its "
        "throughput over time (within this run only)",
        cost_intervals.ITEMS_ONLY: "the records carry no request times, so serving time was measured once "
        "and the cost intervals cover the item sampling only",
        cost_intervals.EXACT: "cost is exact in the records (token counts x list prices or x FLOPs per token)",
        # bases whose $ is exact in the records name their own method (api_tokens: exact tokens)
        **{b.interval_method: b.interval_note for b in cost_bases.bases() if b.interval_method},
    }[h.cost_method]
    stalls = (
        f" Stalled (request latency p99 over {cost_intervals.STALL_RATIO:.0f}x its median): "
        f"{', '.join(h.stalled)}; their serving time (and, where it is billed, their cost) may be inflated."
        if h.stalled
        else ""
    )
    return (
        f"Over all {h.n_tasks} tasks: accuracy pooled over items, cost as total $ over total correct "
        f"answers. 95% intervals: items resampled within each task, the same draw for every model; "
        f"{cost}.{stalls}"
    )
