"""The simulated server over HTTP (bench/serving/simulate_http.py): the response shape the harness
reads from vLLM, vLLM's /metrics names, start-up, errors, and faults on cue."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
import urllib.request

import pytest

from bench.serving import concurrency, serve
from bench.serving.simulate_http import SimulatedServer, make_app

MATH = "Compute $12 \\times 34$.\nPlease reason step by step, and put your final answer within \\boxed{}."
CHOICE = "Which is a noble gas?\n\nA) Iron\nB) Neon\nC) Tin\nD) Lead"
TIMING = {
    "weights_bytes": 3.6e9,
    "kv_bytes_per_token": 28672.0,
    "bandwidth_bytes_s": 2.345e12,
    "flops": 4.9e14,
    "params": 1.8e9,
    "step_overhead_s": 0.004,
    "per_sequence_s": 1e-5,
}


def spec(**over) -> dict:
    base = {
        "model": "sim",
        "source": "none",
        "source_kind": "api",
        "max_model_len": 36864,
        "think_end": "</think>",
        "time_scale": 20_000.0,
        "startup_s": 0.0,
        "replicas": 1,
        "timing": TIMING,
        "kv_tokens": 200_000,
        "max_num_seqs": 256,
        "length_sigma": 0.83,
        "default_tokens": 500.0,
        "default_accuracy": 0.0,
        "seed": 0,
        "faults": {},
        "tasks": {"math": {"mean_tokens": 2000.0, "accuracy": 1.0}, "gpqa": {"mean_tokens": 800.0, "accuracy": 1.0}},
        "key": [
            {"task": "math", "text": MATH, "answer": "408"},
            {"task": "gpqa", "text": CHOICE, "answer": "B", "option": "Neon"},
        ],
    }
    return {**base, **over}


class Running:
    """The app on a free port in a background thread (its own event loop)."""

    def __init__(self, s: dict):
        from aiohttp import web

        self.loop = asyncio.new_event_loop()
        self.port = serve.free_port("127.0.0.1")
        runner = web.AppRunner(make_app(s))
        ready = threading.Event()

        def run():
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(runner.setup())
            self.loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
            ready.set()
            self.loop.run_forever()
            self.loop.run_until_complete(runner.cleanup())

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        ready.wait(10)
        self.base = f"http://127.0.0.1:{self.port}"

    def close(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def sim():
    running = Running(spec())
    yield running
    running.close()


def post(base: str, path: str, body: dict) -> tuple[int, dict, dict]:
    req = urllib.request.Request(
        base + path, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read()), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}"), dict(e.headers)


def test_completions_and_chat_answer_in_vllms_shape(sim):
    status, out, _ = post(
        sim.base,
        "/v1/chat/completions",
        {
            "model": "sim",
            "messages": [{"role": "user", "content": MATH}],
            "max_tokens": 32768,
            "temperature": 0.6,
            "seed": 3,
        },
    )
    assert status == 200 and out["object"] == "chat.completion"
    choice = out["choices"][0]
    assert choice["finish_reason"] == "stop" and choice["message"]["content"].endswith("\\boxed{408}$.\n\nAnswer: 408")
    assert "</think>" in choice["message"]["content"]
    usage = out["usage"]
    assert (
        usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] and usage["completion_tokens"] > 1
    )
    m = out["metrics"]  # vLLM's PerRequestMetrics, as bench/evaluation/evaluate.py reads them
    assert {"time_to_first_token_ms", "queue_time_ms", "mean_itl_ms", "generation_time_ms"} <= set(m)
    assert m["mean_itl_ms"] > 0 and m["time_to_first_token_ms"] > 0 and m["queue_time_ms"] >= 0
    # A multiple-choice item whose options come in another order: the letter of the right text.
    shuffled = CHOICE.replace("A) Iron\nB) Neon", "A) Neon\nB) Iron")
    status, out, _ = post(
        sim.base,
        "/v1/completions",
        {"model": "sim", "prompt": shuffled, "max_tokens": 30000, "temperature": 0.6, "seed": 1},
    )
    assert status == 200 and out["object"] == "text_completion"
    assert out["choices"][0]["text"].endswith("Answer: A")


def test_a_length_limit_cuts_the_trace_and_the_answer():
    running = Running(spec(tasks={"math": {"mean_tokens": 50_000.0, "accuracy": 1.0}}))
    try:
        _, out, _ = post(
            running.base,
            "/v1/completions",
            {"model": "sim", "prompt": MATH, "max_tokens": 1000, "temperature": 0.6, "seed": 1},
        )
    finally:
        running.close()
    assert out["choices"][0]["finish_reason"] == "length" and out["usage"]["completion_tokens"] == 1000
    assert "boxed" not in out["choices"][0]["text"]


def test_metrics_carry_vllms_counters_and_cache_config(sim):
    sent = [
        post(
            sim.base,
            "/v1/completions",
            {"model": "sim", "prompt": f"q{i}", "max_tokens": 64, "seed": i, "temperature": 0.6},
        )[1]
        for i in range(5)
    ]
    totals = serve.scrape_counters(sim.base + "/v1")
    assert totals["requests"] == 5
    assert totals["prompt_tokens"] == sum(o["usage"]["prompt_tokens"] for o in sent)
    assert totals["generation_tokens"] == sum(o["usage"]["completion_tokens"] for o in sent)
    assert serve.kv_cache_tokens(sim.base + "/v1") == 200_000 // 16 * 16
    text = urllib.request.urlopen(sim.base + "/metrics").read().decode()
    for name in (
        "vllm:num_requests_running",
        "vllm:num_requests_waiting",
        "vllm:kv_cache_usage_perc",
        "vllm:num_preemptions_total",
        'vllm:request_success_total{engine="0",finished_reason="stop"',
    ):
        assert name in text
    assert concurrency.server_kv_tokens(text) == 200_000 // 16 * 16


def test_errors_as_vllm_gives_them(sim):
    status, out, _ = post(sim.base, "/v1/completions", {"model": "sim", "prompt": MATH, "max_tokens": 36860})
    assert status == 400 and "maximum context length is 36864 tokens" in out["message"]
    assert (
        post(
            sim.base, "/v1/completions", {"model": "sim", "prompt": "x", "max_tokens": 1, "echo": True, "logprobs": 1}
        )[0]
        == 400
    )
    assert post(sim.base, "/v1/completions", {"model": "other", "prompt": "x"})[0] == 404


def test_429_and_dropped_connections_on_cue(sim):
    post(sim.base, "/sim/cue", {"http_429": 2, "disconnect": 1})
    body = {"model": "sim", "prompt": "hello", "max_tokens": 8}
    for _ in range(2):
        status, out, headers = post(sim.base, "/v1/completions", body)
        assert status == 429 and out["type"] == "RateLimitError" and int(headers["Retry-After"]) >= 1
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        post(sim.base, "/v1/completions", body)
    assert post(sim.base, "/v1/completions", body)[0] == 200
    stats = json.loads(urllib.request.urlopen(sim.base + "/sim/stats").read())
    assert stats["counts"]["http_429"] == 2 and stats["counts"]["disconnects"] == 1
    assert stats["engines"][0]["running"] == 0  # the dropped request left the engine


def test_a_rate_limit_answers_429_beyond_its_rate():
    running = Running(spec(time_scale=1.0, faults={"rate_limit_per_s": 2.0, "rate_limit_burst": 3}))
    try:
        codes = [
            post(running.base, "/v1/completions", {"model": "sim", "prompt": "x", "max_tokens": 1})[0] for _ in range(6)
        ]
    finally:
        running.close()
    assert codes[:3] == [200, 200, 200] and 429 in codes[3:]


def test_the_server_is_not_healthy_until_its_simulated_start_up_ends(tmp_path):
    path = tmp_path / "servers" / "sim.sim.json"
    path.parent.mkdir()
    path.write_text(json.dumps(spec(startup_s=2_000.0, time_scale=1_000.0)))

    class Model:  # what VllmServer reads of a model config
        name = "sim"

        class serve:
            port = None
            startup_timeout_s = 60.0

    t0 = time.perf_counter()
    server = SimulatedServer(Model, tmp_path / "servers" / "sim.log", spec_path=path)
    with server as endpoint:
        assert time.perf_counter() - t0 >= 2.0  # 2,000 simulated seconds at 1,000x
        assert (
            post(
                endpoint.base.removesuffix("/v1"), "/v1/completions", {"model": "sim", "prompt": "x", "max_tokens": 4}
            )[0]
            == 200
        )
        proc = server.proc
    assert proc.poll() is not None  # stopped with its process group
    stats = json.loads(server.stats_path().read_text())
    assert stats["counts"]["stop"] + stats["counts"]["length"] == 1
