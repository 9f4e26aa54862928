"""Every pass of every task of a model, several at a time, feeding one request pool.

A pass is one lm-eval evaluation of one task with one repeat's seed. Passes run in worker
threads, each on its own client, and all of them send through the endpoint's ``Dispatcher``,
which holds the model's target number of requests in flight: while passes are left, a pass that
drains its last long request no longer leaves the engine idle, because the next passes' requests
are already queued. Results and records are those of running the passes one by one: the same
payloads (per-repeat seeds), the same cache keys, the same per-sample metering.

The main thread only waits and serves one request from the workers: starting the model's
server at the first answer the cache cannot give (its parent-death signal is tied to the
thread that starts it, and the main thread lives as long as the harness).

Models are served one after another, in the order ``ordered_models`` gives.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.config import ROLE_ORDER, BenchConfig, ModelConfig, SourceKind

if TYPE_CHECKING:
    from lm_eval.tasks import TaskManager

    from bench.evaluation.cache import ResponseCache
    from bench.serving.dispatch import Dispatcher

log = logging.getLogger("bench")  # the run's own lines keep the label `bench run` gives them

POOLED = "pooled"
SEQUENTIAL = "sequential"


@dataclass(frozen=True)
class Pass:
    """One task evaluated once, with repeat ``repeat``'s seed."""

    task: str
    repeat: int


@dataclass
class PassResult:
    task: str
    repeat: int
    result: dict
    """lm-eval's result dict, with ``samples``."""
    meter: list
    """The pass's RequestMeters."""


def passes_of(tasks: list[str], repeats: int, scheduler: str) -> list[Pass]:
    """Pooled: repeat-major, so every task's first repeat is answered early; sequential:
    task by task, repeats in order (the order of running them one at a time)."""
    if scheduler == SEQUENTIAL:
        return [Pass(t, r) for t in tasks for r in range(repeats)]
    return [Pass(t, r) for r in range(repeats) for t in tasks]


def workers_for(n_passes: int, target: int, scheduler: str) -> int:
    """Passes at once: enough that the pool stays at ``target`` while passes are left (each
    pass queues all its requests; 16 per slot covers a 30-item task at 2 x target), at least
    two so the next pass is queued while one drains, at most 32 threads."""
    if scheduler == SEQUENTIAL:
        return 1
    return max(1, min(n_passes, max(2, math.ceil(target / 16)), 32))


class ServerGate:
    """Workers ask for the server (``base``); the main thread starts it (``serve_requested``)."""

    def __init__(self, start: Callable[[], str]):
        self._start = start
        self._asked = threading.Event()
        self._ready = threading.Event()
        self._base: str | None = None
        self._error: BaseException | None = None

    def base(self) -> str:
        """From a worker: the server's base URL, once the main thread has started it."""
        self._asked.set()
        self._ready.wait()
        if self._error is not None:
            raise RuntimeError(f"the server could not be started: {self._error}") from self._error
        assert self._base is not None
        return self._base

    def serve_requested(self) -> None:
        """On the main thread: start the server if a worker asked and it is not started."""
        if self._asked.is_set() and not self._ready.is_set():
            try:
                self._base = self._start()
            except BaseException as e:
                self._error = e
                raise
            finally:
                self._ready.set()

    def release(self) -> None:
        """Unblock any worker still waiting (the run is ending)."""
        if not self._ready.is_set():
            self._error = self._error or RuntimeError("the run stopped before the server started")
            self._ready.set()


def run_passes(
    passes: list[Pass],
    run_one: Callable[[Any, Pass], PassResult],
    new_client: Callable[[], Any],
    workers: int,
    gate: ServerGate,
    on_abort: Callable[[], None],
) -> list[PassResult]:
    """Run ``run_one(client, pass)`` for every pass on ``workers`` threads (clients are reused
    across passes, one per thread at a time); results in the order of ``passes``.

    On any failure or Ctrl-C, ``on_abort`` (cancel what is in flight) runs, the passes not yet
    started are dropped, and the first error is raised.
    """
    idle: queue.SimpleQueue = queue.SimpleQueue()

    def work(p: Pass) -> PassResult:
        try:
            client = idle.get_nowait()
        except queue.Empty:
            client = new_client()
        try:
            return run_one(client, p)
        finally:
            idle.put(client)

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pass")
    futures: list[Future] = [pool.submit(work, p) for p in passes]
    try:
        while True:
            done, pending = wait(futures, timeout=0.2, return_when=FIRST_EXCEPTION)
            gate.serve_requested()
            failed = [e for f in done if (e := f.exception()) is not None]
            if failed:
                raise failed[0]
            if not pending:
                return [f.result() for f in futures]
    except BaseException:
        on_abort()
        gate.release()
        for f in futures:
            f.cancel()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@dataclass
class Passes:
    """A model's passes: lm-eval's results and meters, and how they were run."""

    results: list
    workers: int
    target: int
    harness_s: float
    tokenizer: Any
    """A Hugging Face tokenizer (None: the model has none, an API model)."""


def run_model_passes(
    model: ModelConfig,
    cfg: BenchConfig,
    tm: TaskManager,
    dispatcher: Dispatcher,
    cache: ResponseCache | None,
    base: str | None,
    start_server: Callable[[], str],
    capture: list | None = None,
) -> Passes:
    """Every pass (task x repeat) of the suite against one model through ``dispatcher``.

    ``base``: the endpoint's base URL when it is live (an API, or a server already up), else
    None and ``start_server()`` is called on this (the main) thread at the first request the
    cache cannot answer. ``capture``: a list that receives, per pass, its task, the client's
    route and every (URL, body) it sent (asked or answered from the cache).
    """
    import gc

    from tqdm import tqdm

    from bench.evaluation import evaluate
    from bench.evaluation.client import make_lm

    target = dispatcher.target
    passes = passes_of(cfg.suite.tasks, cfg.suite.repeats, cfg.run.scheduler.value)
    workers = workers_for(len(passes), target, cfg.run.scheduler.value)
    gate = ServerGate(start_server)

    def client():
        lm = make_lm(
            model, base, cfg.suite, target, cfg.run.request_timeout_s, dispatcher, cache=cache, start_server=gate.base
        )
        if capture is not None:
            lm.capture = []
        return lm

    spare = [client()]
    tokenizer = spare[0].tokenizer

    def new_client():
        lm = spare.pop() if spare else client()
        lm.progress = bar
        return lm

    def run_one(lm, p: Pass) -> PassResult:
        if lm.capture is not None:
            lm.capture = []
        result = evaluate.run_task(lm, p.task, tm, cfg.suite, model, p.repeat)
        if capture is not None:
            capture.append((p.task, lm.route, lm.capture))
        # The pass's results live until the records are written: out of the collector's sight
        # too, or each full collection walks every earlier pass (a 16,000-request simulated run
        # logged 0.3-1.6 s collections, every request in flight stalled, without this).
        gc.freeze()
        return PassResult(p.task, p.repeat, result, lm.meter)

    log.info(
        "%s [%s]: %d tasks x %d repeats, %d passes at a time, %d requests in flight",
        model.name,
        model.role.value,
        len(cfg.suite.tasks),
        cfg.suite.repeats,
        workers,
        target,
    )
    t0 = time.perf_counter()
    # The process holds ~500k long-lived objects (lm-eval, datasets, transformers); a full
    # garbage collection while requests are in flight stalls them all by 0.1-0.4 s (make
    # perf). Frozen, those objects are skipped by the collector; garbage made meanwhile is
    # still collected.
    gc.freeze()
    try:
        with tqdm(
            desc=f"{model.name} | {len(passes)} passes", unit="req", disable=False, mininterval=1.0, dynamic_ncols=True
        ) as bar:
            results = run_passes(passes, run_one, new_client, workers, gate, dispatcher.abort)
    finally:
        gc.unfreeze()
    return Passes(results, workers, target, time.perf_counter() - t0, tokenizer)


def ordered_models(cfg: BenchConfig) -> list[ModelConfig]:
    """Serving order. The teacher goes last, so its server can score the others' generations
    (recognition). A model that serves the same weights as another (a stand-in billed another
    way) follows them: the response cache answers it, and no second server starts."""
    by_role = sorted(cfg.models.values(), key=lambda m: (m.role.value == "teacher", ROLE_ORDER[m.role.value], m.name))
    primary: dict[tuple, ModelConfig] = {}
    for m in by_role:
        key = same_answers_key(m)
        if key not in primary or m.role.value == "teacher":
            primary[key] = m
    first = [m for m in by_role if primary[same_answers_key(m)] is m]
    return first + [m for m in by_role if primary[same_answers_key(m)] is not m]


def same_answers_key(m: ModelConfig) -> tuple:
    """Models equal here give the same answers (their response-cache keys are equal)."""
    if m.source_kind == SourceKind.api:
        return ("api", m.api.base_url, m.source, m.api.client, m.mode.value, m.name)
    s = m.serve
    return (
        m.source_kind.value,
        str(Path(m.source).resolve()) if m.source_kind == SourceKind.local else m.source,
        m.tokenizer,
        s.revision,
        s.dtype,
        s.max_model_len,
        tuple(s.extra_args),
        m.mode.value,
    )
