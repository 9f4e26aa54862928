"""One request pool per endpoint: every pass of every task of a model sends through it.

lm-eval hands a client one task's requests for one pass at a time and waits for all of them,
so passes run one after another leave the engine idle while each pass drains its longest
request. Here each pass runs in its own thread and submits its requests to the endpoint's
``Dispatcher``: one event loop, one HTTP session, one limit of ``target`` requests in flight
for the whole model. Requests wait in submission order; while any pass has requests left,
the engine has ``target`` in flight.

Retries live here too (``bench.serving.ratelimit`` decides the waits): connection errors, payload
errors, timeouts and HTTP 5xx are retried ``retries`` times with exponential backoff and
jitter; HTTP 429 is retried for as long as ``retry_window_s`` allows, waiting at least what
its ``Retry-After`` asks, and while 429s keep coming the endpoint gets fewer requests in
flight (``AdaptiveLimit``; new requests also hold back until a ``Retry-After`` has passed).
Any other status, or a server that has exited, fails the request at once. A self-hosted
server whose requests fail again after a retry and whose ``/health`` fails too (its engine
died; the API process may linger a while) stops the dispatcher: every request still queued
fails at once, and each kind of retry warning is logged once, not once per request.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from bench.serving.ratelimit import AdaptiveLimit, retry_after_s, retry_wait_s

log = logging.getLogger(__name__)

# Worth retrying: the server is restarting, overloaded or briefly unreachable. A 4xx other
# than 429 means the request itself is wrong; repeating it cannot help.
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
BACKOFF_S = 1.0
BACKOFF_MAX_S = 30.0


class RequestFailed(RuntimeError):
    """A request that cannot be answered (after retries where retrying makes sense)."""


class _Transient(Exception):
    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


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
    """``submit(url, payload)`` from any thread; at most ``target`` requests in flight (fewer
    while the endpoint rate-limits: ``limit``)."""

    def __init__(
        self,
        target: int,
        timeout_s: float,
        retries: int,
        label: str,
        alive: Callable[[], bool] = lambda: True,
        verify_ssl: bool = True,
        retry_window_s: float = 900.0,
        seed: int = 0,
        healthy: Callable[[], bool] | None = None,
    ):
        self.target = max(1, int(target))
        self.timeout_s = timeout_s
        self.retries = retries
        self.retry_window_s = retry_window_s
        self.label = label
        self.alive = alive
        self.verify_ssl = verify_ssl
        self.healthy = healthy
        """Asked (off the event loop) when a retried request fails again; None: never (an API)."""
        self.gone: str | None = None
        """Why the server is taken for gone; then every request fails at once."""
        self._warned: set[tuple] = set()
        self.unlogged_retries = 0
        self._probe: asyncio.Future | None = None
        self._probed_at = 0.0
        self.limit = AdaptiveLimit(self.target)
        self.rate_limited = 0
        """429 answers received."""
        self._rng = random.Random(seed)  # jitter only: no answer depends on it
        self._paused_until = 0.0
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=f"dispatch-{label}", daemon=True)
        self._ready = threading.Event()
        self._session = None
        self._waiting: deque[asyncio.Future] = deque()
        """Requests waiting for a slot, first come first served (woken one at a time: a condition
        variable woke all of several hundred waiters at every answer, most of the loop's time)."""
        self.in_flight = 0
        self.aborted = False
        self._thread.start()
        self._ready.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self._ready.set()
        self.loop.run_forever()

    async def _acquire(self) -> None:
        """Wait for a free slot under the current limit, and for any Retry-After pause to end."""
        while True:
            pause = self._paused_until - time.time()
            if pause > 0:
                await asyncio.sleep(pause)
                continue
            if self._waiting or self.in_flight >= self.limit.limit:
                slot = self.loop.create_future()
                self._waiting.append(slot)
                try:
                    await slot  # set by _wake, which has taken the slot for this request
                except asyncio.CancelledError:
                    if slot.done() and not slot.cancelled():
                        self._release()
                    else:
                        self._waiting.remove(slot)
                    raise
            else:
                self.in_flight += 1
            if self._paused_until <= time.time():
                return
            self._release()  # a 429 asked for a pause meanwhile

    def _wake(self) -> None:
        """Hand free slots to the longest-waiting requests."""
        while self._waiting and self.in_flight < self.limit.limit:
            slot = self._waiting.popleft()
            if not slot.done():
                self.in_flight += 1
                slot.set_result(None)

    def _release(self) -> None:
        self.in_flight -= 1
        self._wake()

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
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=self.timeout_s)
            )
        return self._session

    async def _post(self, url: str, payload: dict, headers: dict[str, str]) -> Reply:
        import aiohttp

        session = await self._client()
        deadline = time.time() + self.retry_window_s
        attempt = failures = 0  # failures other than 429: bounded by ``retries``
        while True:
            if self.gone:
                raise RequestFailed(self.gone)
            await self._acquire()
            sent = time.time()
            try:
                async with session.post(url, json=payload, headers=headers) as response:
                    if not response.ok:
                        text = (await response.text())[:500]
                        if response.status not in RETRY_STATUS:
                            raise RequestFailed(f"{self.label}: HTTP {response.status} (not retried): {text}")
                        raise _Transient(
                            f"HTTP {response.status}: {text}",
                            response.status,
                            retry_after_s(response.headers.get("Retry-After"), time.time()),
                        )
                    body = await response.json()
                self._succeeded()
                return Reply(body, sent, time.time())
            except (TimeoutError, aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, _Transient) as e:
                if self.gone:
                    raise RequestFailed(self.gone) from e
                wait = self._retry_wait(e, sent, attempt, failures, deadline)
                if (
                    failures
                    and getattr(e, "status", None) != 429
                    and self.healthy is not None
                    and not await self._still_healthy()
                ):
                    self.gone = self.gone or (
                        f"{self.label}: the server stopped answering ({e!r}) and its /health fails: its engine "
                        f"has likely died (the server log in the run folder's servers/ says why); finished "
                        f"answers are kept in the response cache, rerun to complete"
                    )
                    raise RequestFailed(self.gone) from e
                failures += getattr(e, "status", None) != 429
            finally:
                self._release()
            attempt += 1
            await asyncio.sleep(wait)

    def _succeeded(self) -> None:
        if self.limit.succeeded(time.time()):
            log.debug("%s: requests in flight back up to %d", self.label, self.limit.limit)

    def _retry_wait(self, e: Exception, sent: float, attempt: int, failures: int, deadline: float) -> float:
        """Seconds to wait before retrying after ``e``, or RequestFailed when it is not worth it."""
        if not self.alive():
            raise RequestFailed(
                f"{self.label}: the server has exited ({e!r}); finished answers "
                f"are kept in the response cache, rerun to complete"
            ) from e
        status, retry_after = getattr(e, "status", None), getattr(e, "retry_after", None)
        if status != 429 and failures >= self.retries:
            raise RequestFailed(
                f"{self.label}: {e!r} after {self.retries} retries (raise run.max_retries or run.request_timeout_s)"
            ) from e
        now = time.time()
        wait = retry_wait_s(attempt, retry_after, BACKOFF_S, BACKOFF_MAX_S, self._rng)
        if now + wait > deadline:
            raise RequestFailed(
                f"{self.label}: {e!r}; gave up, as the next retry (in {wait:.0f}s) would "
                f"pass run.retry_window_s={self.retry_window_s:g}s since the first attempt: "
                f"raise it, or send fewer requests at once (the model's api.max_in_flight, "
                f"or run.num_concurrent) than the endpoint's rate limit allows"
            ) from e
        if status == 429:
            self.rate_limited += 1
            if retry_after is not None:
                self._paused_until = max(self._paused_until, now + retry_after)
            if self.limit.rate_limited(sent, now):
                log.warning(
                    "%s: rate-limited (HTTP 429); requests in flight lowered to %d of %d",
                    self.label,
                    self.limit.limit,
                    self.target,
                )
        else:
            self._warn_once(
                e,
                f"{self.label}: {e!r}; retry {failures + 1}/{self.retries} in {wait:.0f}s "
                f"(further retries for the same reason are not logged)",
            )
        return wait

    async def _still_healthy(self) -> bool:
        """One health probe at a time; a probe answers every request that failed meanwhile."""
        assert self.healthy is not None  # only called when there is a probe to run
        if self._probe is None or self._probe.done() and self.loop.time() - self._probed_at > 1.0:
            self._probed_at = self.loop.time()
            self._probe = asyncio.ensure_future(asyncio.to_thread(self.healthy))
        return await asyncio.shield(self._probe)

    def _warn_once(self, e: BaseException, message: str) -> None:
        kind = (type(e).__name__, str(e).split(":")[0] if isinstance(e, _Transient) else "")
        if kind in self._warned:
            self.unlogged_retries += 1
            return
        self._warned.add(kind)
        log.warning("%s", message)

    def close(self) -> None:
        if self.unlogged_retries:
            log.info("%s: %d more retries for reasons already logged", self.label, self.unlogged_retries)

        async def shutdown():
            if self._session is not None:
                await self._session.close()

        if self.loop.is_running():
            asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(timeout=30)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=30)
        self.loop.close()

    def __enter__(self) -> Dispatcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
