"""``make perf``: what the harness costs over vLLM itself, on the smoke suite's generation tasks.

    python -m bench.perf                       # tiny_teacher, smoke_arith + smoke_think, 5 rounds
    python -m bench.perf --rounds 5 --model tiny_student --limit 100

One vLLM server (its start-up time is reported, not counted). Each round, in alternating order:

- **harness**: the tasks through the real evaluation path (lm-eval, the metered client, the
  records), response cache off. Its generation phase runs from each task's first request to
  its last answer (what the reported throughput figures use); end to end adds lm-eval's
  request building and scoring and the records;
- **raw**: the very same request bodies the harness sent, replayed straight to the server
  with a bare asyncio HTTP client at the same concurrency and nothing else.

Prints the median over rounds of harness time / raw time (generation phase, and end to end), requests/s and output tokens/s for
both, and writes them to ``results/perf/<timestamp>.json``. A benchmark that prints figures,
not a test: nothing here asserts a target.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from omegaconf import OmegaConf

from bench.validate import PROJECT_ROOT, resolve_paths

GENERATION_TASKS = ["smoke_arith", "smoke_think"]


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose, initialize_config_dir

    import bench.config  # noqa: F401  (registers the schemas)

    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
        return OmegaConf.to_object(hydra_compose(config_name="config", overrides=overrides))


def harness_pass(lm, tasks, tm, cfg, model) -> dict:
    """One pass over the tasks through the harness: end-to-end and generation-phase seconds,
    the request bodies sent (per task), requests and output tokens."""
    from bench import evaluate

    out = {"seconds": 0.0, "generation_s": 0.0, "requests": 0, "output_tokens": 0, "bodies": []}
    for task in tasks:
        lm.capture = []
        t0 = time.perf_counter()
        result = evaluate.run_task(lm, task, tm, cfg.suite, model)
        rows = evaluate.to_records(model, task, result["samples"][task], lm.meter, lambda _: 0)
        out["seconds"] += time.perf_counter() - t0
        out["generation_s"] += evaluate.serving_seconds(lm.meter)
        out["requests"] += sum(r.n_requests for r in rows)
        out["output_tokens"] += sum(r.completion_tokens for r in rows)
        out["bodies"].append(lm.capture)
    return out


async def _replay(bodies: list[tuple[str, dict]], concurrency: int, timeout_s: float) -> int:
    import aiohttp

    sem = asyncio.Semaphore(concurrency)
    tokens = 0

    async def one(session, url, body):
        nonlocal tokens
        async with sem:
            async with session.post(url, json=body) as r:
                r.raise_for_status()
                out = await r.json()
        tokens += (out.get("usage") or {}).get("completion_tokens", 0)

    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=timeout_s)) as session:
        await asyncio.gather(*(one(session, url, body) for url, body in bodies))
    return tokens


def raw_pass(per_task: list[list[tuple[str, dict]]], concurrency: int, timeout_s: float) -> dict:
    """The same bodies, task after task as the harness sends them, and nothing else."""
    t0 = time.perf_counter()
    tokens = sum(asyncio.run(_replay(bodies, concurrency, timeout_s)) for bodies in per_task)
    secs = time.perf_counter() - t0
    return {"seconds": secs, "generation_s": secs, "requests": sum(map(len, per_task)), "output_tokens": tokens}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="bench perf", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny_teacher")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--limit", type=int, default=None, help="items per task (default: all)")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "results" / "perf")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. run.num_concurrent=32")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

    from bench import evaluate
    from bench.endpoint import ModelEndpoint
    from bench.run import quiet_lm_eval

    quiet_lm_eval()
    overrides = list(args.overrides) + ([f"suite.limit={args.limit}"] if args.limit else [])
    cfg = compose(overrides)
    model = next(m for m in cfg.models.values() if m.name == args.model)
    tm = evaluate.task_manager(resolve_paths(cfg.suite.include_paths), GENERATION_TASKS)
    concurrency = max(2, cfg.run.num_concurrent)
    rounds: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp, ModelEndpoint(model, Path(tmp), cfg.run.host, cfg.run.seed,
                                                                   cfg.hardware.engine_nice) as ep:
        t0 = time.perf_counter()
        base = ep.base
        start_s = time.perf_counter() - t0
        lm = evaluate.make_lm(model, base, cfg.suite, cfg.run.num_concurrent, cfg.run.max_retries,
                              cfg.run.request_timeout_s)
        # Warm-up (not counted): first requests pay for lazy initialisation on both sides.
        bodies = harness_pass(lm, GENERATION_TASKS, tm, cfg, model)["bodies"]
        raw_pass(bodies, concurrency, cfg.run.request_timeout_s)
        for i in range(args.rounds):
            order = ("harness", "raw") if i % 2 == 0 else ("raw", "harness")
            got: dict = {}
            for which in order:
                if which == "harness":
                    r = harness_pass(lm, GENERATION_TASKS, tm, cfg, model)
                    assert [len(b) for b in r.pop("bodies")] == [len(b) for b in bodies]
                else:
                    r = raw_pass(bodies, concurrency, cfg.run.request_timeout_s)
                r["requests_per_s"] = r["requests"] / r["generation_s"]
                r["output_tokens_per_s"] = r["output_tokens"] / r["generation_s"]
                got[which] = r
            got["ratio"] = got["harness"]["generation_s"] / got["raw"]["generation_s"]
            got["ratio_end_to_end"] = got["harness"]["seconds"] / got["raw"]["seconds"]
            rounds.append(got)
            print(f"round {i + 1}: harness {got['harness']['generation_s']:.2f}s generating "
                  f"({got['harness']['seconds']:.2f}s with request building and scoring), "
                  f"raw {got['raw']['seconds']:.2f}s; ratio {got['ratio']:.3f}", flush=True)

    def med(which: str, key: str) -> float:
        return statistics.median(r[which][key] for r in rounds)

    n_requests = sum(map(len, bodies))
    keys = ("seconds", "generation_s", "requests_per_s", "output_tokens_per_s")
    result = {
        "model": model.name, "tasks": GENERATION_TASKS, "limit": cfg.suite.limit, "rounds": args.rounds,
        "concurrency": concurrency, "requests_per_round": n_requests, "server_start_s": start_s,
        "ratio_median": statistics.median(r["ratio"] for r in rounds),
        "ratio_end_to_end_median": statistics.median(r["ratio_end_to_end"] for r in rounds),
        "harness": {k: med("harness", k) for k in keys},
        "raw": {k: med("raw", k) for k in keys},
        "per_round": rounds,
    }
    h, raw = result["harness"], result["raw"]
    print(f"\n{model.name} on {', '.join(GENERATION_TASKS)}: {n_requests} generation requests per round, "
          f"{concurrency} in flight, median of {args.rounds} rounds")
    print(f"  server start (not counted)          {start_s:8.1f} s")
    print(f"  {'':35s} {'seconds':>8s} {'req/s':>8s} {'out tok/s':>10s}")
    print(f"  {'raw replay straight to vLLM':35s} {raw['generation_s']:8.2f} {raw['requests_per_s']:8.1f} "
          f"{raw['output_tokens_per_s']:10.1f}")
    print(f"  {'harness, generation phase':35s} {h['generation_s']:8.2f} {h['requests_per_s']:8.1f} "
          f"{h['output_tokens_per_s']:10.1f}")
    print(f"  {'harness, with building and scoring':35s} {h['seconds']:8.2f}")
    print(f"  harness / raw, generation phase     {result['ratio_median']:8.3f}   (target <= 1.15)")
    print(f"  harness / raw, end to end           {result['ratio_end_to_end_median']:8.3f}")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / time.strftime("%Y-%m-%d_%H-%M-%S.json")
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"  written to {path}")
    return result


if __name__ == "__main__":
    main()
