"""One request pool per endpoint: every pass of every task of a model sends through it.

lm-eval hands a client one task's requests for one pass at a time and waits for all of them,
so passes run one after another leave the engine idle while each pass drains its longest
request. Here each pass runs in its own thread and submits its requests to the endpoint's
``Dispatcher``: one event loop, one HTTP session, one limit of ``target`` requests in flight
for the whole model. Requests wait in submission order; while any pass has requests left,
the engine has ``target`` in flight.

Retries live here too: connection errors, payload errors, timeouts, HTTP 429 and 5xx are
retried with exponential backoff; any other status, or a server that has exited, fails the
request at once.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

log = logging.getLogger(__name__)

# Worth retrying: the server is restarting, overloaded or briefly unreachable. A 4xx other
# than 429 means the request itself is wrong; repeating it cannot help.
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
BACKOFF_S = 1.0
BACKOFF_MAX_S = 30.0


class RequestFailed(RuntimeError):
    """A request that cannot be answered (after retries where retrying makes sense)."""


class _Transient(Exception):
    pass


@dataclass(frozen=True)
class Reply:
    """One answered HTTP request: the parsed JSON body and when it was in flight."""

    body: dict
    sent_at: float
    """Wall-clock time (epoch seconds) the request was sent, after the concurrency limit let it go."""
    answered_at: float

    @property
    def latency_s(self) -> float:
        return self.answered_at - self.sent_at


class Dispatcher:
    """``submit(url, payload)`` from any thread; at most ``target`` requests in flight."""

    def __init__(self, target: int, timeout_s: float, retries: int, label: str,
                 alive: Callable[[], bool] = lambda: True, verify_ssl: bool = True):
        self.target = max(1, int(target))
        self.timeout_s = timeout_s
        self.retries = retries
        self.label = label
        self.alive = alive
        self.verify_ssl = verify_ssl
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=f"dispatch-{label}", daemon=True)
        self._ready = threading.Event()
        self._session = None
        self._sem: asyncio.Semaphore | None = None
        self.in_flight = 0
        self.aborted = False
        self._thread.start()
        self._ready.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self._sem = asyncio.Semaphore(self.target)
        self._ready.set()
        self.loop.run_forever()

    def submit(self, url: str, payload: dict, headers: dict[str, str]) -> Future:
        """A future for the ``Reply`` (or the ``RequestFailed``) of one POST."""
        if self.aborted:
            failed: Future = Future()
            failed.set_exception(RequestFailed(f"{self.label}: the run is stopping"))
            return failed
        return asyncio.run_coroutine_threadsafe(self._post(url, payload, headers), self.loop)

    def abort(self) -> None:
        """Cancel every request queued or in flight, and refuse new ones (Ctrl-C, a failure)."""
        self.aborted = True

        def cancel_all() -> None:
            for task in asyncio.all_tasks(self.loop):
                task.cancel()

        if self.loop.is_running():
            self.loop.call_soon_threadsafe(cancel_all)

    async def _client(self):
        import aiohttp

        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self.target, ssl=None if self.verify_ssl else False)
            self._session = aiohttp.ClientSession(connector=connector,
                                                  timeout=aiohttp.ClientTimeout(total=self.timeout_s))
        return self._session

    async def _post(self, url: str, payload: dict, headers: dict[str, str]) -> Reply:
        import aiohttp

        session = await self._client()
        for attempt in range(self.retries + 1):
            try:
                async with self._sem:
                    self.in_flight += 1
                    try:
                        sent = time.time()
                        async with session.post(url, json=payload, headers=headers) as response:
                            if not response.ok:
                                text = (await response.text())[:500]
                                if response.status not in RETRY_STATUS:
                                    raise RequestFailed(f"{self.label}: HTTP {response.status} (not retried): {text}")
                                raise _Transient(f"HTTP {response.status}: {text}")
                            body = await response.json()
                        return Reply(body, sent, time.time())
                    finally:
                        self.in_flight -= 1
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, asyncio.TimeoutError, _Transient) as e:
                if not self.alive():
                    raise RequestFailed(f"{self.label}: the server has exited ({e!r}); finished answers "
                                        f"are kept in the response cache, rerun to complete") from e
                if attempt == self.retries:
                    raise RequestFailed(f"{self.label}: {e!r} after {self.retries} retries "
                                        f"(raise run.max_retries or run.request_timeout_s)") from e
                wait = min(BACKOFF_S * 2 ** attempt, BACKOFF_MAX_S)
                log.warning("%s: %r; retry %d/%d in %.0fs", self.label, e, attempt + 1, self.retries, wait)
                await asyncio.sleep(wait)
        raise AssertionError("unreachable")

    def close(self) -> None:
        async def shutdown():
            if self._session is not None:
                await self._session.close()

        if self.loop.is_running():
            asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(timeout=30)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=30)
        self.loop.close()

    def __enter__(self) -> "Dispatcher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
