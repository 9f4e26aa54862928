"""Failure handling of the metered client against a real HTTP endpoint that misbehaves on cue:
transient failures are retried with backoff, a bad request is not, a dead server stops the run,
and no failure ever becomes an empty answer."""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from omegaconf import OmegaConf

from bench import dispatch, evaluate
from bench.dispatch import Dispatcher
from bench.cache import ResponseCache
from conftest import compose

OK = {"id": "x", "object": "text_completion", "model": "m",
      "choices": [{"index": 0, "text": "42", "finish_reason": "stop"}],
      "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}


class Script:
    """The statuses the endpoint answers with, in order (then 200 forever)."""

    def __init__(self, statuses: list[int]):
        self.statuses = list(statuses)
        self.calls = 0


@pytest.fixture
def endpoint():
    script = Script([])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's naming)
            self.rfile.read(int(self.headers["Content-Length"]))
            script.calls += 1
            status = script.statuses.pop(0) if script.statuses else 200
            body = json.dumps(OK if status == 200 else {"error": f"status {status}"}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", script
    server.shutdown()


@pytest.fixture
def student(zoo_dir):
    return OmegaConf.to_object(compose()).models["tiny_student"]


def ask(lm) -> list[str]:
    async def go():
        return await lm.get_batched_requests(["1+1="], cache_keys=[("1+1=", {"until": ["\n"]})], generate=True,
                                             gen_kwargs={"until": ["\n"], "max_gen_toks": 4})
    return asyncio.run(go())


DISPATCHERS: list[Dispatcher] = []


def make(student, base, cache=None, alive=None, retries=3):
    suite = OmegaConf.to_object(compose()).suite
    dispatcher = Dispatcher(2, 30, retries, student.name, alive or (lambda: True))
    DISPATCHERS.append(dispatcher)
    return evaluate.make_lm(student, base, suite, 2, 30, dispatcher, cache=cache)


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch):
    monkeypatch.setattr(dispatch, "BACKOFF_S", 0.01)
    yield
    while DISPATCHERS:
        DISPATCHERS.pop().close()


def test_5xx_and_429_are_retried_then_answered(endpoint, student):
    base, script = endpoint
    script.statuses = [503, 500, 429]
    lm = make(student, base)
    assert ask(lm) == [["42"]]
    assert script.calls == 4 and len(lm.meter) == 1


def test_retries_are_bounded(endpoint, student):
    base, script = endpoint
    script.statuses = [503] * 10
    lm = make(student, base, retries=2)
    with pytest.raises(evaluate.RequestFailed, match="after 2 retries"):
        ask(lm)
    assert script.calls == 3 and lm.meter == []


def test_a_bad_request_is_not_retried_and_never_becomes_an_answer(endpoint, student):
    base, script = endpoint
    script.statuses = [400]
    lm = make(student, base)
    with pytest.raises(evaluate.RequestFailed, match="HTTP 400 \\(not retried\\)"):
        ask(lm)
    assert script.calls == 1 and lm.meter == []


def test_connection_refused_with_a_dead_server_stops_at_once(student, tmp_path):
    lm = make(student, "http://127.0.0.1:9/v1", alive=lambda: False)  # port 9: nothing listens
    with pytest.raises(evaluate.RequestFailed, match="server has exited"):
        ask(lm)


def test_answers_go_to_the_cache_and_come_back_without_a_request(endpoint, student, tmp_path):
    base, script = endpoint
    cache = ResponseCache(tmp_path, "c" * 64)
    lm = make(student, base, cache=cache)
    lm.new_pass()
    assert ask(lm) == [["42"]] and script.calls == 1
    lm.new_pass()
    assert ask(lm) == [["42"]] and script.calls == 1
    assert lm.meter[0].from_cache and lm.meter[0].completion_tokens == 2


def test_failed_requests_are_not_cached(endpoint, student, tmp_path):
    base, script = endpoint
    script.statuses = [400]
    cache = ResponseCache(tmp_path, "d" * 64)
    lm = make(student, base, cache=cache)
    with pytest.raises(evaluate.RequestFailed):
        ask(lm)
    assert len(cache) == 0
