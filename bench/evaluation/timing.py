"""Timing replays: a self-hosted model's serving time per task, measured apart from its evaluation.

The evaluation pools every pass of every task of a model in one request pool (fast), so a
task's serving time there is a share of shared time (``bench.evaluation.metering``), and on a small task
(a second or less on the tiny zoo) one scheduler hiccup or a neighbour task's burst moves it by
tens of percent from run to run. With ``run.timing_replays = k`` > 0, once a model's passes are
done its server, warm and otherwise idle, is sent each task's exact requests again, one task
at a time, every request of the task submitted at once under the same in-flight limit, ``k``
times over. The task's serving time is the **median** over the ``k`` replays of the time
anything of the replay was in flight. Alone on the server, no time is shared, so nothing has
to be attributed; the median drops the replays a hiccup hit.

A task's first live replay is preceded by one untimed pass of its requests (see
``replay_task``). The answers of a replay are discarded (the evaluation's are scored). Their send and answer
times go to ``timings.jsonl`` (one row per request, with its replay number), from which
``bench verify`` recomputes the median; the response cache keeps them too, under keys of their
own, so a rerun that finds them reuses them and starts no server for them.

API models are not replayed (billed by tokens; a replay would be paid for).
"""

from __future__ import annotations

import statistics
from collections import Counter
from concurrent.futures import Future
from dataclasses import asdict, dataclass
from typing import cast

from bench.evaluation.cache import ReplayTiming
from bench.evaluation.metering import Interval, serving_time


@dataclass(frozen=True)
class TimedRequest:
    """One request of one timing replay: when it was in flight."""

    model: str
    task: str
    replay: int
    """1..k."""
    sent_at: float
    answered_at: float
    tokens: int
    """Prompt plus completion tokens, as the server counted them."""
    from_cache: bool


def replay_key(cache, replay: int, kind: str, payload: dict, occurrences: Counter) -> str:
    """The response-cache key of a request's ``replay``-th timing, apart from its answer's key."""
    return cache.entry_key(f"timing{replay}:{kind}", payload, occurrences)


def replay_task(
    model: str, task: str, requests: list[tuple[str, str, dict]], replays: int, cache, submit, base
) -> list[TimedRequest]:
    """``replays`` timings of one task's ``requests`` (kind, route, payload). ``submit(url,
    payload)`` returns a future of a ``Reply``; ``base()`` returns the live server's base URL
    (starting it if need be). Answers the cache holds are not asked again.

    Before the first replay the server has to answer, the task's requests are sent once
    untimed: handed over all at once they form batches the evaluation never made, and the
    engine's first batches of a new shape pay for kernel set-up (the first of five replays ran
    up to 1.6x the last ones on the tiny zoo without this)."""
    out: list[TimedRequest] = []
    warmed = False
    for replay in range(1, replays + 1):
        occurrences: Counter = Counter()
        keys = [
            replay_key(cache, replay, kind, payload, occurrences) if cache is not None else None
            for kind, _, payload in requests
        ]
        hits: list[ReplayTiming | None] = [cache.get(k, ReplayTiming) if k is not None else None for k in keys]
        live = [False] * len(hits)
        pending: list[tuple[int, Future]] = []
        if any(h is None for h in hits):
            url = base().rstrip("/")
            if not warmed:
                for future in [submit(url + route, payload) for _, route, payload in requests]:
                    future.result()
                warmed = True
            # Everything of the replay is handed to the dispatcher at once: it holds the
            # in-flight limit, as it did in the evaluation.
            pending = [
                (i, submit(url + route, payload))
                for i, ((_, route, payload), h) in enumerate(zip(requests, hits))
                if h is None
            ]
        for i, future in pending:
            reply = future.result()
            # Only the usage of the answer is kept: its text is the evaluation's business.
            hit = ReplayTiming(reply.body.get("usage") or {}, reply.sent_at, reply.answered_at)
            if cache is not None:
                cache.put(keys[i], hit)
            hits[i], live[i] = hit, True
        answered = cast("list[ReplayTiming]", hits)  # every miss was filled in just above
        out += [
            TimedRequest(model, task, replay, h.sent_at, h.answered_at, _tokens(h.usage), not fresh)
            for h, fresh in zip(answered, live)
        ]
    return out


def _tokens(usage: dict) -> int:
    return int(usage.get("prompt_tokens") or 0) + int(usage.get("completion_tokens") or 0)


def replay_times(rows: list[TimedRequest] | list[dict]) -> dict[str, list[float]]:
    """Serving time of each replay, per task, in replay order."""
    by: dict[tuple[str, int], list[Interval]] = {}
    for r in rows:
        d = asdict(r) if isinstance(r, TimedRequest) else r
        by.setdefault((d["task"], d["replay"]), []).append(
            Interval(d["task"], d["sent_at"], d["answered_at"], d["tokens"])
        )
    out: dict[str, list[float]] = {}
    for (task, _), intervals in sorted(by.items(), key=lambda kv: kv[0][1]):
        out.setdefault(task, []).append(serving_time(intervals))
    return out


def task_times(rows: list[TimedRequest] | list[dict]) -> dict[str, float]:
    """Each task's serving time: the median over its replays."""
    return {task: statistics.median(times) for task, times in replay_times(rows).items()}
