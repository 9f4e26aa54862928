"""How figures are written in text: one named variant per way, each where its readers expect it.

The variants differ on purpose: the plan rounds to two significant figures (its numbers are
estimates), the headline writes shares and multiples, the evidence section keeps a fixed number
of decimals and says why an interval is missing. (The report's tables, ``sections.f`` and
``sections.usd``, and the LaTeX table's ``paper._num`` are the remaining variants outside
this module.)
"""

from __future__ import annotations

import math


def sig(x: float) -> str:
    """Two significant figures, with thousands separators."""
    if x == 0:
        return "0"
    digits = 1 - int(f"{abs(x):e}".split("e")[1])
    return f"{round(x, digits):,.{max(digits, 0)}f}"


def tokens(x: float) -> str:
    """A token count at two significant figures, in k, M or B."""
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= size:
            return sig(x / size) + unit
    return sig(x)


def duration(seconds: float) -> str:
    """Seconds at two significant figures, in s, min or h."""
    if seconds < 120:
        return f"{sig(seconds)} s"
    if seconds < 7200:
        return f"{sig(seconds / 60)} min"
    return f"{sig(seconds / 3600)} h"


def usd_sig(x: float) -> str:
    """Dollars at two significant figures."""
    return "$" + sig(x)


def percent(x: float) -> str:
    """A share as a percentage: one decimal from 10%, two significant digits below."""
    if x == math.inf:
        return "∞"
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{100 * x:.1f}%" if abs(x) >= 0.1 else f"{100 * x:.2g}%"


def times(x: float) -> str:
    """A ratio as a multiple: 3 significant digits, thousands separated."""
    if x == math.inf:
        return "∞"
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{x:,.0f}×" if x >= 100 else f"{x:.3g}×"


def with_interval(value: float, low: float, high: float, fmt: str = ".2f") -> str:
    """``value [low, high]`` at ``fmt``; "undefined" for a NaN value, "[no interval]" for a
    NaN bound."""
    if math.isnan(value):
        return "undefined"
    return f"{value:{fmt}} [{low:{fmt}}, {high:{fmt}}]" if not math.isnan(low) else f"{value:{fmt}} [no interval]"
