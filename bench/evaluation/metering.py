"""Serving time from per-request intervals: how long a task held the engine (pure).

Every request of a model records when it went out and when its answer came back
(``requests.jsonl``; the response cache keeps both for answers reused in a later run). The
model held its server while any request was in flight: the union of the request intervals is
its **serving time**, and gaps with nothing in flight (server start-up, the harness building
requests, a resumed run's pause) are not in it.

When requests of several tasks are in flight together (the dispatcher pools every pass of every
task of a model), the shared time is split between the tasks by **processor sharing**: each
request is taken to process its tokens (prompt plus completion) at an even rate over its
interval, and each instant is divided among the tasks in proportion to the token rates of
their requests in flight at that instant. A task alone gets its whole interval; the shares of
all tasks add up to the model's serving time exactly.

**Utilisation** is the mean number of requests in flight over the serving time, divided by
the target the dispatcher held (``run.num_concurrent`` or the server-derived target).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Interval:
    """One request: its task, when it was in flight, and the tokens it processed."""

    task: str
    sent_at: float
    answered_at: float
    tokens: int


def serving_time(intervals: list[Interval]) -> float:
    """Length of the union of the intervals: the time anything was in flight."""
    total, current = 0.0, None
    for r in sorted(intervals, key=lambda r: r.sent_at):
        if current is None or r.sent_at > current[1]:
            total += current[1] - current[0] if current else 0.0
            current = [r.sent_at, r.answered_at]
        else:
            current[1] = max(current[1], r.answered_at)
    return total + (current[1] - current[0] if current else 0.0)


def task_shares(intervals: list[Interval]) -> dict[str, float]:
    """Each task's share of the serving time (processor sharing by token rate; see above)."""
    import numpy as np

    tasks = list(dict.fromkeys(r.task for r in intervals))
    if not tasks:
        return {}
    index = {t: i for i, t in enumerate(tasks)}
    sent = np.array([r.sent_at for r in intervals])
    done = np.maximum(np.array([r.answered_at for r in intervals]), sent)
    rate = np.array([max(r.tokens, 1) for r in intervals]) / np.maximum(done - sent, 1e-9)
    row = np.array([index[r.task] for r in intervals])
    times, where = np.unique(np.concatenate([sent, done]), return_inverse=True)
    # Rate of each task on each stretch [times[j], times[j+1]): +rate from its send, -rate from its answer.
    change = np.zeros((len(tasks), len(times)))
    np.add.at(change, (row, where[: len(sent)]), rate)
    np.add.at(change, (row, where[len(sent) :]), -rate)
    count = np.zeros((len(tasks), len(times)), dtype=np.int64)
    np.add.at(count, (row, where[: len(sent)]), 1)
    np.add.at(count, (row, where[len(sent) :]), -1)
    level = np.cumsum(change, axis=1)[:, :-1]
    # Float sums of +rate/-rate leave noise where a task has nothing in flight: the integer
    # count of its requests in flight decides, and the level cannot go below zero.
    level = np.where(np.cumsum(count, axis=1)[:, :-1] > 0, np.maximum(level, 0.0), 0.0)
    total = level.sum(axis=0)
    width = np.diff(times)
    busy = total > 0
    share = (level[:, busy] / total[busy] * width[busy]).sum(axis=1)
    return {t: float(share[i]) for t, i in index.items()}


def utilisation(intervals: list[Interval], target: int) -> float:
    """Mean requests in flight over the serving time, divided by ``target``."""
    span = serving_time(intervals)
    if span <= 0 or target <= 0:
        return float("nan")
    return sum(r.answered_at - r.sent_at for r in intervals) / span / target
