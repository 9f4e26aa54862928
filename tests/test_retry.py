"""Failure handling of the metered client against a real HTTP endpoint that misbehaves on cue:
transient failures are retried with backoff, a bad request is not, a dead server stops the run,
and no failure ever becomes an empty answer."""

from __future__ import annotations

import asyncio

import pytest

from bench.evaluation import client
from bench.evaluation.cache import ResponseCache
from bench.serving import dispatch
from bench.serving.dispatch import Dispatcher
from conftest import run_config
from fake_openai import fake_endpoint


@pytest.fixture
def endpoint():
    """(base URL, what it saw); ``seen.statuses`` scripts its failures."""
    with fake_endpoint() as served:
        yield served


@pytest.fixture
def student(zoo_dir):
    return run_config().models["tiny_student"]


def ask(lm) -> list[str]:
    async def go():
        return await lm.get_batched_requests(
            ["1+1="],
            cache_keys=[("1+1=", {"until": ["\n"]})],
            generate=True,
            gen_kwargs={"until": ["\n"], "max_gen_toks": 4},
        )

    return asyncio.run(go())


DISPATCHERS: list[Dispatcher] = []


def make(student, base, cache=None, alive=None, retries=3):
    suite = run_config().suite
    dispatcher = Dispatcher(2, 30, retries, student.name, alive or (lambda: True))
    DISPATCHERS.append(dispatcher)
    return client.make_lm(student, base, suite, 2, 30, dispatcher, cache=cache)


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch):
    monkeypatch.setattr(dispatch, "BACKOFF_S", 0.01)
    yield
    while DISPATCHERS:
        DISPATCHERS.pop().close()


def test_5xx_and_429_are_retried_then_answered(endpoint, student):
    base, seen = endpoint
    seen.statuses = [503, 500, 429]
    lm = make(student, base)
    assert ask(lm) == [["42"]]
    assert seen.calls == 4 and len(lm.meter) == 1


def test_retries_are_bounded(endpoint, student):
    base, seen = endpoint
    seen.statuses = [503] * 10
    lm = make(student, base, retries=2)
    with pytest.raises(dispatch.RequestFailed, match="after 2 retries"):
        ask(lm)
    assert seen.calls == 3 and lm.meter == []


def test_a_bad_request_is_not_retried_and_never_becomes_an_answer(endpoint, student):
    base, seen = endpoint
    seen.statuses = [400]
    lm = make(student, base)
    with pytest.raises(dispatch.RequestFailed, match="HTTP 400 \\(not retried\\)"):
        ask(lm)
    assert seen.calls == 1 and lm.meter == []


def test_connection_refused_with_a_dead_server_stops_at_once(student, tmp_path):
    lm = make(student, "http://127.0.0.1:9/v1", alive=lambda: False)  # port 9: nothing listens
    with pytest.raises(dispatch.RequestFailed, match="server has exited"):
        ask(lm)


def test_answers_go_to_the_cache_and_come_back_without_a_request(endpoint, student, tmp_path):
    base, seen = endpoint
    cache = ResponseCache(tmp_path, "c" * 64)
    lm = make(student, base, cache=cache)
    lm.new_pass()
    assert ask(lm) == [["42"]] and seen.calls == 1
    lm.new_pass()
    assert ask(lm) == [["42"]] and seen.calls == 1
    assert lm.meter[0].from_cache and lm.meter[0].completion_tokens == 2


def test_failed_requests_are_not_cached(endpoint, student, tmp_path):
    base, seen = endpoint
    seen.statuses = [400]
    cache = ResponseCache(tmp_path, "d" * 64)
    lm = make(student, base, cache=cache)
    with pytest.raises(dispatch.RequestFailed):
        ask(lm)
    assert len(cache) == 0


def test_a_server_whose_engine_died_is_retried_once_then_every_request_stops(endpoint, caplog):
    """A vLLM API server outlives its dead engine for a while, answering 500 to everything."""
    base, seen = endpoint
    seen.statuses = [500] * 1000
    probes = []

    def healthy() -> bool:
        probes.append(1)
        return False

    dispatcher = Dispatcher(8, 30, 5, "tiny_student", lambda: True, healthy=healthy)
    DISPATCHERS.append(dispatcher)
    with caplog.at_level("WARNING", logger="bench.serving.dispatch"):
        futures = [dispatcher.submit(base + "/completions", {"prompt": str(i)}, {}) for i in range(40)]
        errors = [f.exception(timeout=60) for f in futures]
    assert all(isinstance(e, dispatch.RequestFailed) and "/health fails" in str(e) for e in errors)
    assert seen.calls <= 2 * 40  # each request tried at most twice, not 6 times
    assert len(probes) <= 3
    assert len([r for r in caplog.records if r.levelname == "WARNING"]) == 1


def test_an_api_without_health_keeps_its_retries(endpoint):
    base, seen = endpoint
    seen.statuses = [429, 429]
    dispatcher = Dispatcher(2, 30, 3, "api", lambda: True, healthy=None)
    DISPATCHERS.append(dispatcher)
    assert dispatcher.submit(base + "/completions", {"prompt": "x"}, {}).result(timeout=30).body["choices"]
    assert seen.calls == 3
