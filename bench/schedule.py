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
"""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

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


def run_passes(passes: list[Pass], run_one: Callable[[Any, Pass], PassResult], new_client: Callable[[], Any],
               workers: int, gate: ServerGate, on_abort: Callable[[], None]) -> list[PassResult]:
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
