"""How long to wait before asking a rate-limited endpoint again, and how many requests to keep in
flight meanwhile (pure: headers, times and counts in, seconds and limits out).

- **Retry-After** is honoured in both forms HTTP allows (RFC 9110, section 10.2.3): a number of
  seconds, or an HTTP-date. OpenAI documents it as "the minimum number of seconds to wait
  before retrying" and Anthropic sends it with every rate-limit 429; DeepSeek documents none.
- Without it, the wait grows exponentially with the attempt, with "equal jitter" (half the
  step fixed, half drawn at random; AWS Architecture Blog, "Exponential Backoff And Jitter",
  2015), so requests that failed together do not come back together.
- :class:`AdaptiveLimit` lowers the number of requests in flight for an endpoint while 429s
  keep coming and raises it again slowly once requests succeed: additive increase,
  multiplicative decrease, as TCP's congestion control does with its window.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import random
from dataclasses import dataclass, field


def retry_after_s(value: str | None, now: float) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (0 for a date already past), measured from
    ``now`` (epoch seconds); None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # HTTP-dates are GMT (RFC 9110, section 5.6.7)
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, when.timestamp() - now)


def backoff_s(attempt: int, base_s: float, cap_s: float, rng: random.Random) -> float:
    """The wait before retry ``attempt + 1`` (attempt 0 is the first failure): half of
    ``min(cap, base * 2**attempt)`` plus a random share of the other half."""
    step = min(cap_s, base_s * 2**attempt)
    return step / 2 + rng.uniform(0, step / 2)


def retry_wait_s(attempt: int, retry_after: float | None, base_s: float, cap_s: float, rng: random.Random) -> float:
    """What a request waits before its next attempt: at least what the server asked for, plus
    a little jitter so that the requests it turned away do not return in one burst."""
    if retry_after is None:
        return backoff_s(attempt, base_s, cap_s, rng)
    return retry_after + rng.uniform(0, base_s)


@dataclass
class AdaptiveLimit:
    """Requests allowed in flight to one endpoint, between 1 and ``target``.

    A 429 halves the limit, once per round: a 429 to a request sent before the last cut was
    sent under the old limit and says nothing new, so a burst of them counts as one. Every
    ``limit`` successes in a row without a 429 raise the limit by one, back up to ``target``,
    but never sooner than ``hold_s`` after the last change: vendors count requests and tokens
    per minute, and probing upwards at once would only find the same limit again.
    """

    target: int
    limit: int = 0
    """0: start at ``target``."""
    hold_s: float = 10.0
    cut_at: float = float("-inf")
    """When the limit was last cut (the clock of the ``sent_at`` values passed in)."""
    changed_at: float = float("-inf")
    streak: int = 0
    cuts: int = 0
    lowest: int = 0
    history: list[tuple[float, int]] = field(default_factory=list)
    """(time, new limit) at every change, for the records and the tests."""

    def __post_init__(self) -> None:
        self.target = max(1, int(self.target))
        self.limit = self.limit or self.target
        self.lowest = self.limit

    def rate_limited(self, sent_at: float, now: float) -> bool:
        """A request sent at ``sent_at`` was answered 429 at ``now``; True if the limit fell."""
        self.streak = 0
        if sent_at < self.cut_at:
            return False
        self.cut_at = now
        new = max(1, self.limit // 2)
        if new == self.limit:
            return False
        self._set(new, now)
        self.cuts += 1
        return True

    def succeeded(self, now: float) -> bool:
        """A request was answered; True if the limit rose."""
        if self.limit >= self.target:
            return False
        self.streak += 1
        if self.streak < self.limit or now - self.changed_at < self.hold_s:
            return False
        self.streak = 0
        self._set(self.limit + 1, now)
        return True

    def _set(self, limit: int, now: float) -> None:
        self.limit = limit
        self.changed_at = now
        self.lowest = min(self.lowest, limit)
        self.history.append((now, limit))
