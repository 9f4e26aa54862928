"""One model's evaluation within a run, as one typed object: what the per-model and per-task
steps of ``bench run`` (``bench/run.py``: the timing replays, the records, teacher recognition)
read, built once per model when its endpoint and request pool are open."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bench.config import BenchConfig, ModelConfig

if TYPE_CHECKING:
    from lm_eval.tasks import TaskManager

    from bench.evaluation.cache import ResponseCache
    from bench.serving.concurrency import Target
    from bench.serving.dispatch import Dispatcher
    from bench.serving.endpoint import ModelEndpoint


@dataclass(frozen=True)
class ModelRunContext:
    """The run's config and folder, and one model's task index, response cache, endpoint,
    request pool and in-flight target."""

    cfg: BenchConfig
    model: ModelConfig
    run_dir: Path
    """The run folder the records are appended to."""
    tm: TaskManager
    """lm-eval's task index of the suite."""
    cache: ResponseCache
    """The model's response cache (its answers from earlier runs, and this run's)."""
    endpoint: ModelEndpoint
    """The model's server (started at the first request the cache cannot answer) or its API."""
    dispatcher: Dispatcher
    """The model's request pool: every request of the model goes through it."""
    target: Target
    """Requests in flight for the model, and the rule behind the number."""
