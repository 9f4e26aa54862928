"""Which repeat of a task is being evaluated, for task hooks whose items differ by repeat.

lm-eval builds a task's items when the task is loaded, inside ``simple_evaluate``, and hands
its hooks nothing but the data. GPQA's option order must differ between the k responses to an
item (as in simple-evals) yet be reproducible, so each pass runs inside :func:`evaluating`
and the loader reads :func:`current`. A context variable, not a global: the passes of a
repeated task run side by side on worker threads, each in its own context.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class Repeat:
    """One pass over a task: the suite's seed and the repeat's index (0 for the first)."""

    seed: int
    index: int


_CURRENT: ContextVar[Repeat] = ContextVar("bench_repeat", default=Repeat(seed=0, index=0))


@contextmanager
def evaluating(seed: int, index: int) -> Iterator[Repeat]:
    """Within this block, task loaders see repeat ``index`` of a suite seeded with ``seed``."""
    token = _CURRENT.set(Repeat(seed, index))
    try:
        yield _CURRENT.get()
    finally:
        _CURRENT.reset(token)


def current() -> Repeat:
    return _CURRENT.get()
