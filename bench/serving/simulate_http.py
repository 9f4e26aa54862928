"""The simulated GPU server: an OpenAI-compatible endpoint shaped like vLLM's, in compressed time.

    python -m bench.serving.simulate_http --spec servers/MODEL.sim.json --port 8000   # what the harness starts

Serves ``/v1/completions`` and ``/v1/chat/completions`` (``usage``, finish reasons, and vLLM's
per-request ``metrics``: queue time, time to first token, mean inter-token latency, in the
wall-clock milliseconds of this compressed run), ``/health``, ``/v1/models`` and ``/metrics``
with vLLM's Prometheus names (``vllm:prompt_tokens``, ``vllm:generation_tokens``,
``vllm:request_success``, ``vllm:num_requests_running``/``waiting``, ``vllm:kv_cache_usage_perc``,
``vllm:num_preemptions``, ``vllm:cache_config_info``). Behind them, one ``bench.serving.simulate.Engine``
per data-parallel replica runs on a clock ``time_scale`` times faster than the wall clock.

Faults on cue: a rate limit in requests per simulated second (HTTP 429 with ``Retry-After``),
a share of requests answered 429 or dropped mid-generation, and ``POST /sim/cue`` (``{"http_429":
n, "disconnect": n}``: the next n requests). ``GET /sim/stats`` returns the engines' occupancy.

It is started by ``SimulatedServer`` (in place of ``serve.VllmServer``) for a model whose
``serve.simulate`` is set; the spec it reads is written by ``bench/serving/simulate_spec.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from bench.serving.serve import GRACE_S, VllmServer
from bench.serving.simulate import (
    AnswerKey,
    Engine,
    Sequence,
    Timing,
    draw_length,
    is_correct,
    prompt_tokens,
    response_text,
    stable_rng,
)

TIMELINE_S = 10.0
"""Simulated seconds between two points of ``/sim/stats``'s timeline."""


class Simulator:
    """The server's state: engines on a simulated clock, counters, faults."""

    def __init__(self, spec: dict[str, Any]):
        self.spec = spec
        self.scale = float(spec["time_scale"])
        t = spec["timing"]
        self.engines = [
            Engine(Timing(**t), int(spec["kv_tokens"]), int(spec["max_num_seqs"])) for _ in range(int(spec["replicas"]))
        ]
        self.key = AnswerKey(spec.get("key", []))
        self.tasks = spec.get("tasks", {})
        self.t0 = time.monotonic()
        self.ready_at = self.t0 + float(spec.get("startup_s", 0.0)) / self.scale
        self.ids = itertools.count()
        self.futures: dict[int, tuple[asyncio.Future, Engine]] = {}
        self.wake = asyncio.Event()
        self.cues = {"http_429": 0, "disconnect": 0}
        faults = spec.get("faults", {})
        self.rate = faults.get("rate_limit_per_s")
        self.bucket, self.bucket_at = float(faults.get("rate_limit_burst") or 1.0), 0.0
        self.share_429 = float(faults.get("http_429_share") or 0.0)
        self.share_drop = float(faults.get("disconnect_share") or 0.0)
        self.fault_rng = stable_rng("faults", spec.get("seed", 0))
        self.counts = {
            "prompt_tokens": 0,
            "generation_tokens": 0,
            "stop": 0,
            "length": 0,
            "http_429": 0,
            "disconnects": 0,
        }
        self.metrics = Metrics(spec["model"], len(self.engines), spec)
        self.timeline: list[tuple] = []
        self.lags: list[float] = []
        """Wall-clock seconds between a request's simulated finish and its answer being built:
        the server's own delay (it should be small beside the client's)."""
        self.started_at = time.time() - (time.monotonic() - self.t0)
        self.sampled_at = -TIMELINE_S

    def now(self) -> float:
        """Simulated seconds since start."""
        return (time.monotonic() - self.t0) * self.scale

    def advance(self) -> None:
        t = self.now()
        for engine in self.engines:
            for seq in engine.advance_to(t):
                fut, _ = self.futures.pop(seq.rid, (None, None))
                if fut is not None and not fut.done():
                    fut.set_result(seq)

    async def drive(self) -> None:
        """Keep the engines in step with the clock; sleep until the next finish or arrival."""
        while True:
            self.advance()
            self.sample()
            waits = [w for w in (e.next_event_s() for e in self.engines) if w is not None]
            timeout = max(min(waits) / self.scale, 0.0005) if waits else None
            self.wake.clear()
            try:
                await asyncio.wait_for(self.wake.wait(), timeout)
            except TimeoutError:
                pass

    def sample(self) -> None:
        """The timeline of ``/sim/stats``, about every ``TIMELINE_S`` simulated seconds, summed over
        the engines: (time, running, waiting, KV tokens in use, and the integrals over time of
        those three since the start)."""
        t = self.now()
        if t - self.sampled_at >= TIMELINE_S:
            self.sampled_at = t
            engines = self.engines
            self.timeline.append(
                (
                    t,
                    sum(len(e.running) for e in engines),
                    sum(len(e.waiting) for e in engines),
                    sum(e.kv_used for e in engines),
                    sum(e.stats.running_s for e in engines),
                    sum(e.stats.waiting_s for e in engines),
                    sum(e.stats.kv_token_s for e in engines),
                )
            )

    def admit_fault(self) -> str | None:
        """``429``, ``drop`` or None for an arriving request (cues first, then the limits)."""
        for kind in ("http_429", "disconnect"):
            if self.cues[kind] > 0:
                self.cues[kind] -= 1
                return "429" if kind == "http_429" else "drop"
        if self.rate:
            t = self.now()
            burst = float(self.spec["faults"].get("rate_limit_burst") or 1.0)
            self.bucket = min(burst, self.bucket + (t - self.bucket_at) * self.rate)
            self.bucket_at = t
            if self.bucket < 1.0:
                return "429"
            self.bucket -= 1.0
        if self.share_429 and self.fault_rng.random() < self.share_429:
            return "429"
        if self.share_drop and self.fault_rng.random() < self.share_drop:
            return "drop"
        return None

    def submit(self, body: dict, chat: bool) -> tuple[Sequence, asyncio.Future, dict]:
        text, n_prompt = prompt_tokens(body, chat)
        max_tokens = int(body.get("max_tokens") or body.get("max_completion_tokens") or 16)
        temperature = float(body.get("temperature") or 0.0)
        task, answer = self.key.lookup(text)
        per = self.tasks.get(task, {}) if task else {}
        mean = per.get("mean_tokens", self.spec["default_tokens"])
        seed = body.get("seed")
        length = draw_length(mean, float(self.spec["length_sigma"]), text, seed, temperature)
        accuracy = per.get("accuracy", self.spec["default_accuracy"])
        correct = is_correct(accuracy, text, seed, temperature)
        seq = Sequence(next(self.ids), n_prompt, min(length, max_tokens), 0.0)
        self.advance()
        engine = min(self.engines, key=lambda e: e.load)
        engine.add(seq)
        fut = asyncio.get_running_loop().create_future()
        self.futures[seq.rid] = (fut, engine)
        self.wake.set()
        reply = {
            "answer": answer,
            "correct": correct,
            "finished": length <= max_tokens,
            "rng": stable_rng("wrong", text, seed),
            "engine": self.engines.index(engine),
        }
        return seq, fut, reply

    def abort(self, seq: Sequence) -> None:
        """The client went away: drop the request from its engine, as vLLM aborts it."""
        _, engine = self.futures.pop(seq.rid, (None, None))
        if engine is not None:
            self.advance()
            engine.abort(seq)

    def finish(self, seq: Sequence, reply: dict, body: dict, chat: bool) -> dict:
        # A finished sequence was admitted, gave its first token and finished.
        assert seq.admitted_s is not None and seq.first_token_s is not None and seq.finished_s is not None
        self.lags.append(max(0.0, (self.now() - seq.finished_s) / self.scale))
        finished = reply["finished"]
        reason = "stop" if finished else "length"
        text = response_text(
            reply["answer"], reply["correct"], reply["rng"], seq.generated, finished, self.spec.get("think_end")
        )
        self.counts["prompt_tokens"] += seq.prompt_tokens
        self.counts["generation_tokens"] += seq.generated
        self.counts[reason] += 1
        self.metrics.finished(seq, reason, reply["engine"])
        ms = 1000.0 / self.scale  # simulated seconds -> wall-clock milliseconds of this run
        metrics = {
            "queue_time_ms": (seq.admitted_s - seq.arrived_s) * ms,
            "time_to_first_token_ms": (seq.first_token_s - seq.admitted_s) * ms,
            "generation_time_ms": (seq.finished_s - seq.first_token_s) * ms,
            "mean_itl_ms": (seq.finished_s - seq.first_token_s) * ms / (seq.generated - 1)
            if seq.generated > 1
            else None,
            "tokens_per_second": seq.generated / max((seq.finished_s - seq.admitted_s) / self.scale, 1e-9),
        }
        usage = {
            "prompt_tokens": seq.prompt_tokens,
            "completion_tokens": seq.generated,
            "total_tokens": seq.prompt_tokens + seq.generated,
            "prompt_tokens_details": None,
        }
        common = {
            "id": f"{'chatcmpl' if chat else 'cmpl'}-sim{seq.rid}",
            "created": int(time.time()),
            "model": self.spec["model"],
            "usage": usage,
            "metrics": metrics,
        }
        if chat:
            choice = {
                "index": 0,
                "message": {"role": "assistant", "content": text, "reasoning": None},
                "logprobs": None,
                "finish_reason": reason,
                "stop_reason": None,
            }
            return {"object": "chat.completion", "choices": [choice], **common}
        choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": reason, "stop_reason": None}
        return {"object": "text_completion", "choices": [choice], **common}

    def stats(self) -> dict:
        self.sample()
        lags = sorted(self.lags) or [0.0]
        return {
            "time_scale": self.scale,
            "now_s": self.now(),
            "started_at": self.started_at,
            "answer_lag_s": {"mean": sum(lags) / len(lags), "p90": lags[int(0.9 * (len(lags) - 1))], "max": lags[-1]},
            "counts": self.counts,
            "kv_tokens": sum(e.kv_tokens for e in self.engines),
            "engines": [
                {
                    "busy_s": e.stats.busy_s,
                    "running_s": e.stats.running_s,
                    "kv_token_s": e.stats.kv_token_s,
                    "queued_s": e.stats.queued_s,
                    "waiting_s": e.stats.waiting_s,
                    "first_arrival": e.stats.first_arrival,
                    "last_arrival": e.stats.last_arrival,
                    "preemptions": e.preemptions,
                    "kv_tokens": e.kv_tokens,
                    "max_num_seqs": e.max_num_seqs,
                    "running": len(e.running),
                    "waiting": len(e.waiting),
                }
                for e in self.engines
            ],
            "timeline": self.timeline,
        }


class Metrics:
    """vLLM's Prometheus metrics for the simulated engines (the names the harness scrapes)."""

    def __init__(self, model: str, engines: int, spec: dict):
        from prometheus_client import CollectorRegistry, Counter, Gauge

        self.registry = CollectorRegistry()
        labels = ["model_name", "engine"]
        self.model = model
        self.prompt = Counter(
            "vllm:prompt_tokens", "Number of prefill tokens processed.", labels, registry=self.registry
        )
        self.generation = Counter(
            "vllm:generation_tokens", "Number of generation tokens processed.", labels, registry=self.registry
        )
        self.success = Counter(
            "vllm:request_success",
            "Count of successfully processed requests.",
            labels + ["finished_reason"],
            registry=self.registry,
        )
        self.preemptions = Counter(
            "vllm:num_preemptions", "Cumulative number of preemption from the engine.", labels, registry=self.registry
        )
        self.running = Gauge(
            "vllm:num_requests_running",
            "Number of requests in model execution batches.",
            labels,
            registry=self.registry,
        )
        self.waiting = Gauge(
            "vllm:num_requests_waiting", "Number of requests waiting to be processed.", labels, registry=self.registry
        )
        self.kv = Gauge(
            "vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", labels, registry=self.registry
        )
        info = Gauge(
            "vllm:cache_config_info",
            "Information of the LLMEngine CacheConfig",
            ["block_size", "num_gpu_blocks", "engine"],
            registry=self.registry,
        )
        block = 16
        for i in range(engines):
            info.labels(block_size=str(block), num_gpu_blocks=str(int(spec["kv_tokens"]) // block), engine=str(i)).set(
                1
            )
            for reason in ("stop", "length"):
                self.success.labels(model, str(i), reason)

    def finished(self, seq: Sequence, reason: str, engine: int) -> None:
        self.prompt.labels(self.model, str(engine)).inc(seq.prompt_tokens)
        self.generation.labels(self.model, str(engine)).inc(seq.generated)
        self.success.labels(self.model, str(engine), reason).inc()

    def render(self, sim: Simulator) -> bytes:
        from prometheus_client import generate_latest

        for i, e in enumerate(sim.engines):
            engine = str(i)
            self.running.labels(self.model, engine).set(len(e.running))
            self.waiting.labels(self.model, engine).set(len(e.waiting))
            self.kv.labels(self.model, engine).set(e.kv_used / max(e.kv_tokens, 1))
            counter = self.preemptions.labels(self.model, engine)
            counter.inc(e.preemptions - counter._value.get())
        return generate_latest(self.registry)


def error(status: int, message: str, kind: str = "BadRequestError"):
    from aiohttp import web

    return web.json_response(
        {"object": "error", "message": message, "type": kind, "param": None, "code": status}, status=status
    )


def make_app(spec: dict[str, Any]):
    """The aiohttp application (its simulator is created on the running loop)."""
    from aiohttp import web

    state: dict[str, Any] = {}

    async def start(app) -> None:
        state["sim"] = Simulator(spec)
        state["driver"] = asyncio.create_task(state["sim"].drive())

    async def stop(app) -> None:
        state["driver"].cancel()

    def ready() -> bool:
        return time.monotonic() >= state["sim"].ready_at

    async def health(request):
        return web.Response(status=200 if ready() else 503)

    async def models(request):
        return web.json_response(
            {
                "object": "list",
                "data": [
                    {
                        "id": spec["model"],
                        "object": "model",
                        "owned_by": "vllm",
                        "root": spec.get("source"),
                        "max_model_len": spec["max_model_len"],
                    }
                ],
            }
        )

    async def metrics(request):
        sim = state["sim"]
        sim.advance()
        return web.Response(body=sim.metrics.render(sim), content_type="text/plain", charset="utf-8")

    async def stats(request):
        state["sim"].advance()
        return web.json_response(state["sim"].stats())

    async def cue(request):
        body = await request.json()
        for kind in ("http_429", "disconnect"):
            state["sim"].cues[kind] += int(body.get(kind, 0))
        return web.json_response(state["sim"].cues)

    async def generate(request, chat: bool):
        sim = state["sim"]
        if not ready():
            return error(503, "the engine is starting", "ServiceUnavailableError")
        body = await request.json()
        if body.get("model") not in (spec["model"], None):
            return error(404, f"The model `{body.get('model')}` does not exist.", "NotFoundError")
        if body.get("echo") or body.get("prompt_logprobs"):
            return error(
                400,
                "the simulated engine does not compute prompt log-probabilities (echo); "
                "serve log-likelihood tasks with vLLM",
            )
        _, n_prompt = prompt_tokens(body, chat)
        max_tokens = int(body.get("max_tokens") or body.get("max_completion_tokens") or 16)
        if n_prompt + max_tokens > spec["max_model_len"]:
            return error(
                400,
                f"This model's maximum context length is {spec['max_model_len']} tokens. However, "
                f"you requested {n_prompt + max_tokens} tokens ({n_prompt} in the messages, "
                f"{max_tokens} in the completion). Please reduce the length of the messages or "
                f"completion.",
            )
        fault = sim.admit_fault()
        if fault == "429":
            sim.counts["http_429"] += 1
            retry = max(1, math.ceil(1.0 / sim.rate / sim.scale)) if sim.rate else 1
            response = error(429, "Rate limit reached for requests (simulated)", "RateLimitError")
            response.headers["Retry-After"] = str(retry)
            return response
        seq, fut, reply = sim.submit(body, chat)
        try:
            if fault == "drop":
                # Dropped mid-generation: after a while, the connection closes without an answer.
                await asyncio.wait([fut], timeout=0.05)
                sim.counts["disconnects"] += 1
                sim.abort(seq)
                request.transport.close()
                raise web.HTTPServiceUnavailable()
            await fut
        except asyncio.CancelledError:
            sim.abort(seq)
            raise
        return web.json_response(sim.finish(seq, reply, body, chat))

    app = web.Application(client_max_size=64 * 2**20)
    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    app.router.add_get("/health", health)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/sim/stats", stats)
    app.router.add_post("/sim/cue", cue)

    async def completions(request):
        return await generate(request, chat=False)

    async def chat_completions(request):
        return await generate(request, chat=True)

    app.router.add_post("/v1/completions", completions)
    app.router.add_post("/v1/chat/completions", chat_completions)
    return app


def load_model_config(spec: dict[str, Any]) -> dict[str, Any] | None:
    """The model's config.json, found as vLLM finds it: a folder, or a hub id in the Hugging Face
    cache (downloaded first unless offline). Its context bounds ``max_model_len`` as in vLLM."""
    if spec.get("source_kind") == "local":
        path = Path(spec["source"]) / "config.json"
    elif spec.get("source_kind") == "hub":
        from huggingface_hub import hf_hub_download

        path = Path(hf_hub_download(spec["source"], "config.json", revision=spec.get("revision")))
    else:
        return None
    return json.loads(path.read_text())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench.serving.simulate_http", description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    from aiohttp import web

    spec = json.loads(args.spec.read_text())
    config = load_model_config(spec)
    if config is not None:
        context = config.get("max_position_embeddings")
        if context is not None and spec["max_model_len"] > context:
            raise SystemExit(
                f"max_model_len {spec['max_model_len']} is beyond the model's context of {context} "
                f"tokens (max_position_embeddings in {spec['source']}'s config.json)"
            )
        print(
            f"simulated engine for {spec['model']}: {spec['source']} ({config.get('architectures')}), "
            f"{spec['replicas']} replica(s), {spec['kv_tokens']:,} KV tokens each, time x{spec['time_scale']:g}",
            flush=True,
        )
    web.run_app(make_app(spec), host=args.host, port=args.port, print=None, access_log=None, handle_signals=True)


class SimulatedServer(VllmServer):
    """``VllmServer`` with the simulated engine in place of vLLM: the same start-up checks,
    log, process group and teardown; the command runs this module on ``spec_path``."""

    def __init__(self, *args, spec_path: Path, **kwargs):
        super().__init__(*args, **kwargs)
        self.spec_path = spec_path
        self.engine_nice = None
        self.port: int | None = None

    def build_command(self, port: int) -> list[str]:
        self.port = port
        if not self.spec_path.is_file():
            raise FileNotFoundError(
                f"no simulation spec at {self.spec_path} (bench.serving.simulate_spec.write makes it)"
            )
        return [
            sys.executable,
            "-m",
            "bench.serving.simulate_http",
            "--spec",
            str(self.spec_path),
            "--host",
            self.host,
            "--port",
            str(port),
        ]

    def devices(self) -> list[str] | None:
        return None

    def stats_path(self) -> Path:
        return self.spec_path.with_name(self.spec_path.name.replace(".sim.json", ".sim_stats.json"))

    def stop(self, grace_s: float = GRACE_S) -> None:
        """Keep the engine's own account (``/sim/stats``) beside its log, then stop it."""
        from bench.rundir.records import write_json
        from bench.serving.serve import _get

        if self.proc is not None and self.proc.poll() is None and self.port is not None:
            status, body = _get(f"http://{self.host}:{self.port}/sim/stats", timeout=10.0)
            if status == 200:
                write_json(self.stats_path(), json.loads(body))
        super().stop(grace_s)


if __name__ == "__main__":
    main()
