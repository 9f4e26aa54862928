"""Serving time, task shares and utilisation from request intervals (bench.evaluation.metering)."""

from __future__ import annotations

import random

import pytest

from bench.evaluation.metering import Interval, serving_time, task_shares, utilisation


def test_serving_time_is_the_union_of_the_request_intervals():
    # Two stretches, 0-4 and 10-11; the gap between them is not serving time.
    iv = [Interval("a", 0, 1, 10), Interval("a", 0.5, 4, 10), Interval("b", 10, 11, 5)]
    assert serving_time(iv) == pytest.approx(5)
    assert serving_time([]) == 0


def test_a_task_alone_gets_its_whole_span_and_shared_time_goes_by_token_rate():
    iv = [Interval("a", 0, 1, 10), Interval("a", 2, 3, 10), Interval("b", 2.5, 4, 10), Interval("b", 10, 11, 5)]
    shares = task_shares(iv)
    # 2.5-3 is shared: a's request runs at 10 tokens/s, b's at 10/1.5; a gets 0.5 * 10 / (10 + 6.67).
    assert shares["a"] == pytest.approx(1 + 0.5 + 0.3)
    assert shares["b"] == pytest.approx(0.2 + 1 + 1)
    assert sum(shares.values()) == pytest.approx(serving_time(iv))


def test_shares_always_add_up_to_the_serving_time():
    rng = random.Random(3)
    iv = []
    for _ in range(500):
        start = rng.uniform(0, 100)
        iv.append(Interval(rng.choice("xyz"), start, start + rng.expovariate(1), rng.randint(1, 400)))
    shares = task_shares(iv)
    assert sum(shares.values()) == pytest.approx(serving_time(iv), rel=1e-9)
    assert all(v > 0 for v in shares.values())


def test_utilisation_is_mean_in_flight_over_the_target():
    # Two requests in flight the whole time, target four: half full.
    iv = [Interval("a", 0, 2, 1), Interval("a", 0, 2, 1)]
    assert utilisation(iv, 4) == pytest.approx(0.5)
    # Back to back, one at a time, target one: full.
    assert utilisation([Interval("a", 0, 1, 1), Interval("a", 1, 2, 1)], 1) == pytest.approx(1.0)
