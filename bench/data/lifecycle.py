"""What an API model id serves, and when (pure: a preset's ``lifecycle`` and a date in, a verdict out).

Vendors retire model ids (a request then fails with 404, which is not retried) and move
aliases onto other models (``deepseek-reasoner`` served DeepSeek-R1 until 2025-08-21, then
DeepSeek-V3.1 and V3.2 in thinking mode, under the same name). Each API preset therefore
carries its lifecycle as data, with the source and date of that knowledge
(``ModelConfig.lifecycle``); validation refuses a model that no longer serves what the preset
says, and the response cache keys answers by the model an id served and the dates it served it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from bench.config import Lifecycle, ModelConfig, SourceKind

DATE_FIELDS = ("available_from", "changed_on", "retired_on")


@dataclass(frozen=True)
class Verdict:
    """Whether a model id can be asked on a given day, and why not."""

    usable: bool
    reason: str = ""
    """Empty when usable; otherwise what happened to the id, with its date and source."""


def parse_date(value: str | None) -> dt.date | None:
    return None if value in (None, "") else dt.date.fromisoformat(str(value))


def date_errors(lc: Lifecycle) -> list[str]:
    """The lifecycle's dates that are not ISO dates (YYYY-MM-DD), as field names."""
    bad = []
    for name in DATE_FIELDS:
        try:
            parse_date(getattr(lc, name))
        except ValueError:
            bad.append(name)
    return bad


def verdict(model: ModelConfig, today: dt.date) -> Verdict:
    """Can the model's id be asked today, and does it still serve what the preset measures?"""
    lc = model.lifecycle
    if model.source_kind != SourceKind.api or date_errors(lc):
        return Verdict(True)
    serves = lc.serves or model.source
    known = f"{lc.source or 'no source given'}, as of {lc.as_of or '?'}"
    retired, changed, available = (parse_date(lc.retired_on), parse_date(lc.changed_on), parse_date(lc.available_from))
    if retired is not None and retired <= today:
        moved = (
            f", and from {changed} it no longer served {serves}" if changed is not None and changed < retired else ""
        )
        return Verdict(False, f"{model.source!r} ({serves}) was retired on {retired}{moved} ({known})")
    if changed is not None and changed <= today:
        return Verdict(
            False,
            f"{model.source!r} has served another model than {serves} since {changed} "
            f"({known}): its answers would be another model's under this one's name",
        )
    if available is not None and available > today:
        return Verdict(False, f"{model.source!r} ({serves}) is available only from {available} ({known})")
    return Verdict(True)


def identity(lc: Lifecycle) -> dict[str, object]:
    """What the response cache keys an API model's answers by, beyond its endpoint and id:
    the model the id serves and the dates it serves it (an alias that moves on to another
    model gets a new key once its preset records the change). Empty without ``serves``."""
    if not lc.serves:
        return {}
    return {"serves": lc.serves, "served_from": lc.available_from, "served_until": lc.changed_on or lc.retired_on}
