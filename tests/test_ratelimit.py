"""Waits and in-flight limits for rate-limited endpoints (pure)."""

from __future__ import annotations

import email.utils
import random

import pytest

from bench.serving.ratelimit import AdaptiveLimit, backoff_s, retry_after_s, retry_wait_s

NOW = 1_800_000_000.0  # 2027-01-15, a whole second


@pytest.mark.parametrize(
    "header,seconds",
    [
        ("7", 7.0),
        (" 2 ", 2.0),
        ("0", 0.0),
        ("1.5", 1.5),
        (email.utils.formatdate(NOW + 30, usegmt=True), 30.0),  # an HTTP-date 30 s ahead
        (email.utils.formatdate(NOW - 30, usegmt=True), 0.0),  # already past: go now
        ("Fri, 15 Jan 2027 08:00:30 GMT", 30.0),
        (None, None),
        ("", None),
        ("soon", None),
    ],
)
def test_retry_after_in_both_forms(header, seconds):
    got = retry_after_s(header, NOW)
    assert got == (None if seconds is None else pytest.approx(seconds))


def test_backoff_doubles_with_jitter_up_to_its_cap():
    rng = random.Random(0)
    for attempt, step in enumerate([1, 2, 4, 8, 16, 30, 30]):
        waits = [backoff_s(attempt, 1.0, 30.0, rng) for _ in range(200)]
        assert step / 2 <= min(waits) and max(waits) <= step
        assert max(waits) - min(waits) > step / 4  # jittered, not one value


def test_a_servers_retry_after_is_a_floor():
    rng = random.Random(1)
    waits = [retry_wait_s(0, 5.0, 1.0, 30.0, rng) for _ in range(100)]
    assert all(5.0 <= w <= 6.0 for w in waits) and len(set(waits)) > 1


def test_429s_halve_the_limit_once_per_round_and_successes_bring_it_back_slowly():
    lim = AdaptiveLimit(16)
    assert lim.limit == 16
    assert lim.rate_limited(sent_at=10.0, now=11.0) and lim.limit == 8
    # Requests sent before that cut were sent under the old limit: their 429s change nothing.
    assert not lim.rate_limited(sent_at=10.5, now=11.2) and lim.limit == 8
    assert lim.rate_limited(sent_at=11.5, now=12.0) and lim.limit == 4
    for t in range(3):
        lim.rate_limited(sent_at=13.0 + t, now=13.5 + t)
    assert lim.limit == 1 and not lim.rate_limited(sent_at=20.0, now=21.0)  # never below one
    # Additive increase: one more after `limit` successes in a row, and not within hold_s
    # (10 s) of the last change.
    assert not lim.succeeded(22.0) and lim.limit == 1  # 1 success, but 1 s after the last cut
    rises = [lim.succeeded(30.0 + 10 * i) for i in range(1 + 2 + 3)]
    assert rises == [True, False, True, False, False, True] and lim.limit == 4
    lim.rate_limited(sent_at=90.0, now=90.5)
    assert lim.limit == 2 and lim.streak == 0 and lim.lowest == 1 and lim.cuts == 5
    for i in range(1000):
        lim.succeeded(100.0 + 10 * i)
    assert lim.limit == 16  # back to the target, never above it
