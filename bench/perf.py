"""``make perf``: what the harness costs over vLLM itself and over plain lm-eval.

    python -m bench.perf                          # tiny_teacher, all three workloads
    python -m bench.perf --rounds 3 --workloads single,long_tail
    python -m bench.perf --model tiny_student --limit 100

One vLLM server (its start-up and warm-up are reported, not counted), the smoke suite's
generation tasks (``smoke_arith``, ``smoke_think``), the model's target in flight
(``bench/serving/concurrency.py``; ``run.num_concurrent=N`` overrides it).
Three workloads, each measured side by side in the same round, in alternating order:

- **single** (repeats = 1, the tasks' own greedy decoding) and **long_tail** (repeats = 8 at
  temperature 0.8: every item sampled 8 times, 4,800 requests on the full suite). Each compares
  - *harness*: the real evaluation path (every pass of every task through one request pool,
    lm-eval's request building and scoring, per-sample metering, the records), response
    cache off. *generation phase*: the model's serving time (union of request intervals);
    *end to end*: from the first pass starting to the records built;
  - *raw*: the very same request bodies the harness sent, replayed straight to the server as
    one pool at the same concurrency by a bare asyncio HTTP client;
  and prints the harness's utilisation (mean requests in flight / target).
- **peer**: the harness against plain lm-eval (``simple_evaluate(model="local-completions")``,
  the way a user runs it without us) on the same server, tasks and concurrency, with repeats =
  1 and with repeats = 8 (eight calls with seeds seed..seed+7, as a user would loop them). The
  peer runs in a child process that has imported lm-eval before its clock starts.

Prints the median over rounds of each ratio and writes everything to
``results/perf/<timestamp>.json``. A benchmark that prints figures, not a test: nothing here
asserts a target.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.compose import compose
from bench.config import PROJECT_ROOT
from bench.validate import resolve_paths

GENERATION_TASKS = ["smoke_arith", "smoke_think"]
LONG_TAIL = {"repeats": 8, "temperature": 0.8}
WORKLOADS = ("single", "long_tail", "peer")
TARGETS = {"single": 1.05, "long_tail": 1.10, "peer_k1": 1.0, "peer_k8": 1.0}


def harness_pass(model, cfg, tm, dispatcher, base: str) -> dict:
    """Every pass of the suite through the harness's pooled path, cache off; the bodies sent."""
    from bench.evaluation.metering import Interval, serving_time, utilisation
    from bench.evaluation.samples import to_records
    from bench.evaluation.schedule import run_model_passes

    capture: list = []
    t0 = time.perf_counter()
    done = run_model_passes(model, cfg, tm, dispatcher, None, base, lambda: base, capture=capture)
    rows: list = []
    requests: list = []
    for r in done.results:
        rows += to_records(
            model, r.task, r.result["samples"][r.task], r.meter, lambda _: 0, repeat=r.repeat, requests_out=requests
        )
    seconds = time.perf_counter() - t0
    meters = [m for r in done.results for m in r.meter]
    intervals = [Interval(m.task, m.sent_at, m.answered_at, 0) for m in meters]
    return {
        "seconds": seconds,
        "generation_s": serving_time(intervals),
        "requests": len(meters),
        "output_tokens": sum(m.completion_tokens for m in meters),
        "utilisation": utilisation(intervals, done.target),
        "samples": len(rows),
        "bodies": [b for _, _, per_pass in capture for b in per_pass],
    }


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


def raw_pass(bodies: list[tuple[str, dict]], concurrency: int, timeout_s: float) -> dict:
    """The same bodies as one pool at the same concurrency, and nothing else."""
    t0 = time.perf_counter()
    tokens = asyncio.run(_replay(bodies, concurrency, timeout_s))
    secs = time.perf_counter() - t0
    return {"seconds": secs, "generation_s": secs, "requests": len(bodies), "output_tokens": tokens}


def peer_pass(model, cfg, base: str, repeats: int, gen_kwargs: dict, target: int) -> dict:
    """Plain lm-eval on the same server, in a child process (timed after its imports)."""
    spec = {
        "tasks": GENERATION_TASKS,
        "include": [str(p) for p in resolve_paths(cfg.suite.include_paths)],
        "model_args": {
            "model": model.name,
            "base_url": base.rstrip("/") + "/completions",
            "tokenizer": model.tokenizer or model.source,
            "tokenizer_backend": "huggingface",
            "tokenized_requests": False,
            "num_concurrent": target,
            "max_length": model.serve.max_model_len,
            "timeout": int(cfg.run.request_timeout_s),
        },
        "seeds": [cfg.suite.seed + r for r in range(repeats)],
        "limit": cfg.suite.limit,
        "gen_kwargs": gen_kwargs,
    }
    out = subprocess.run(
        [sys.executable, "-m", "bench.perf", "--peer-worker", json.dumps(spec)],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"plain lm-eval failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def peer_worker(spec: dict) -> None:
    """What a user without this harness runs: lm-eval's own local-completions client, one
    ``simple_evaluate`` per seed. Prints {"seconds": ..., "samples": ...} as its last line."""
    import logging

    import lm_eval
    from lm_eval.tasks import TaskManager

    logging.disable(logging.WARNING)
    tm = TaskManager(include_path=spec["include"])
    args = ",".join(f"{k}={v}" for k, v in spec["model_args"].items())
    gen = ",".join(f"{k}={v}" for k, v in spec["gen_kwargs"].items()) or None
    samples = 0
    t0 = time.perf_counter()
    for seed in spec["seeds"]:
        result = lm_eval.simple_evaluate(
            model="local-completions",
            model_args=f"{args},seed={seed}",
            tasks=spec["tasks"],
            task_manager=tm,
            limit=spec["limit"],
            log_samples=True,
            gen_kwargs=gen,
            random_seed=seed,
            numpy_random_seed=seed,
            torch_random_seed=seed,
            fewshot_random_seed=seed,
            bootstrap_iters=0,
        )
        samples += sum(len(v) for v in result["samples"].values())
    print(json.dumps({"seconds": time.perf_counter() - t0, "samples": samples}), flush=True)


def _rates(r: dict) -> dict:
    if r.get("requests"):
        r["requests_per_s"] = r["requests"] / r["generation_s"]
        r["output_tokens_per_s"] = r["output_tokens"] / r["generation_s"]
    return r


def measure_round(i: int, which: str, model, cfgs: dict, tm, dispatcher, base: str) -> dict:
    """One round of one workload: its sides in alternating order; the ratios."""
    from bench.evaluation.evaluate import gen_overrides

    if which in ("single", "long_tail"):
        cfg = cfgs[which]
        sides = ("harness", "raw") if i % 2 == 0 else ("raw", "harness")
        got: dict = {}
        bodies = None
        for side in sides:
            if side == "harness":
                got[side] = _rates(harness_pass(model, cfg, tm, dispatcher, base))
                bodies = got[side].pop("bodies")
            else:
                if bodies is None:  # raw first: replay what the harness sends (the same every round)
                    bodies = cfgs["bodies"][which]
                got[side] = _rates(raw_pass(bodies, dispatcher.target, cfg.run.request_timeout_s))
        got["ratio_generation"] = got["harness"]["generation_s"] / got["raw"]["seconds"]
        got["ratio_end_to_end"] = got["harness"]["seconds"] / got["raw"]["seconds"]
        print(
            f"  {which} round {i + 1}: harness {got['harness']['generation_s']:.2f}s generating, "
            f"{got['harness']['seconds']:.2f}s end to end, utilisation {got['harness']['utilisation']:.2f}; "
            f"raw {got['raw']['seconds']:.2f}s; ratio {got['ratio_end_to_end']:.3f}",
            flush=True,
        )
        return got
    out: dict = {}
    for label, cfg in (("k1", cfgs["single"]), ("k8", cfgs["long_tail"])):
        sides = ("harness", "plain") if i % 2 == 0 else ("plain", "harness")
        got = {}
        for side in sides:
            if side == "harness":
                h = harness_pass(model, cfg, tm, dispatcher, base)
                h.pop("bodies")
                got[side] = h
            else:
                got[side] = peer_pass(
                    model, cfg, base, cfg.suite.repeats, gen_overrides(model, cfg.suite), dispatcher.target
                )
        if got["harness"]["samples"] != got["plain"]["samples"]:
            raise RuntimeError(
                f"peer {label}: the harness scored {got['harness']['samples']} samples, plain "
                f"lm-eval {got['plain']['samples']}: not the same work"
            )
        got["ratio"] = got["harness"]["seconds"] / got["plain"]["seconds"]
        print(
            f"  peer {label} round {i + 1}: harness {got['harness']['seconds']:.2f}s, plain lm-eval "
            f"{got['plain']['seconds']:.2f}s; ratio {got['ratio']:.3f}",
            flush=True,
        )
        out[label] = got
    return out


def simulation_ready(folder: Path, model, cfg, tm) -> Path:
    """``folder``, holding the simulated engine's spec when ``serve.simulate`` is on (the harness
    against a server that costs nothing: its own overhead alone)."""
    if model.serve.simulate.enabled:
        from bench.serving.simulate_spec import write

        write(folder, model, cfg, tm)
    return folder


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="bench perf", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny_teacher")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None, help="items per task (default: all)")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help=f"comma-separated, of {WORKLOADS}")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "results" / "perf")
    parser.add_argument("--peer-worker", help=argparse.SUPPRESS)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. run.num_concurrent=32")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    if args.peer_worker:
        peer_worker(json.loads(args.peer_worker))
        return {}
    workloads = [w for w in args.workloads.split(",") if w]
    unknown = set(workloads) - set(WORKLOADS)
    if unknown:
        parser.error(f"unknown workload(s) {sorted(unknown)}; choose from {', '.join(WORKLOADS)}")

    from bench.evaluation import evaluate
    from bench.evaluation.client import make_lm
    from bench.evaluation.logs import quiet_lm_eval
    from bench.serving.concurrency import target_for
    from bench.serving.dispatch import Dispatcher
    from bench.serving.endpoint import ModelEndpoint

    quiet_lm_eval()
    common = list(args.overrides) + [f"suite.tasks=[{','.join(GENERATION_TASKS)}]", "suite.repeats=1"]
    common += [f"suite.limit={args.limit}"] if args.limit else []
    cfgs: dict = {
        "single": compose(common),
        "long_tail": compose(
            common + [f"suite.repeats={LONG_TAIL['repeats']}", f"suite.temperature={LONG_TAIL['temperature']}"]
        ),
        "bodies": {},
    }
    cfg = cfgs["single"]
    model = next((m for m in cfg.models.values() if m.name == args.model), None)
    if model is None:
        parser.error(f"no model {args.model!r} in the experiment; have {[m.name for m in cfg.models.values()]}")
    tm = evaluate.task_manager(resolve_paths(cfg.suite.include_paths), GENERATION_TASKS)
    target = target_for(model, cfg).total
    per: dict = {w: [] for w in workloads}
    with (
        tempfile.TemporaryDirectory() as tmp,
        ModelEndpoint(
            model, simulation_ready(Path(tmp), model, cfg, tm), cfg.run.host, cfg.run.seed, cfg.hardware.engine_nice
        ) as ep,
        Dispatcher(
            target,
            cfg.run.request_timeout_s,
            cfg.run.max_retries,
            model.name,
            ep.alive,
            retry_window_s=cfg.run.retry_window_s,
            seed=cfg.run.seed,
        ) as dispatcher,
    ):
        t0 = time.perf_counter()
        base = ep.base
        start_s = time.perf_counter() - t0
        warm = make_lm(model, base, cfg.suite, target, cfg.run.request_timeout_s, dispatcher)
        warm_s = warm.warm_up(("generate",))
        # Not counted: one harness pass per workload (the bodies a raw-first round replays).
        for w in ("single", "long_tail"):
            if w in workloads or "peer" in workloads:
                cfgs["bodies"][w] = harness_pass(model, cfgs[w], tm, dispatcher, base)["bodies"]
        print(
            f"{model.name}: server up in {start_s:.1f}s, warm-up {warm_s:.1f}s; {target} in flight; "
            f"{len(cfgs['bodies'].get('single', []))} requests (single), "
            f"{len(cfgs['bodies'].get('long_tail', []))} (long tail)",
            flush=True,
        )
        for i in range(args.rounds):
            for w in workloads:
                per[w].append(measure_round(i, w, model, cfgs, tm, dispatcher, base))

    med = statistics.median
    result: dict = {
        "model": model.name,
        "tasks": GENERATION_TASKS,
        "limit": cfg.suite.limit,
        "rounds": args.rounds,
        "concurrency": target,
        "server_start_s": start_s,
        "warm_up_s": warm_s,
        "targets": TARGETS,
        "workloads": {},
    }
    rows = []
    for w in workloads:
        rounds = per[w]
        if w == "peer":
            for label in ("k1", "k8"):
                s = {side: med(r[label][side]["seconds"] for r in rounds) for side in ("harness", "plain")}
                ratio = med(r[label]["ratio"] for r in rounds)
                result["workloads"][f"peer_{label}"] = {
                    "harness_s": s["harness"],
                    "plain_lm_eval_s": s["plain"],
                    "ratio": ratio,
                    "per_round": [r[label] for r in rounds],
                }
                rows.append(
                    (
                        f"peer, repeats={1 if label == 'k1' else LONG_TAIL['repeats']}",
                        "plain lm-eval",
                        s["plain"],
                        None,
                        s["harness"],
                        ratio,
                        None,
                        TARGETS[f"peer_{label}"],
                    )
                )
            continue
        n = len(cfgs["bodies"][w])
        summary = {
            "requests": n,
            "raw_s": med(r["raw"]["seconds"] for r in rounds),
            "harness_generation_s": med(r["harness"]["generation_s"] for r in rounds),
            "harness_end_to_end_s": med(r["harness"]["seconds"] for r in rounds),
            "ratio_generation": med(r["ratio_generation"] for r in rounds),
            "ratio_end_to_end": med(r["ratio_end_to_end"] for r in rounds),
            "utilisation": med(r["harness"]["utilisation"] for r in rounds),
            "raw_output_tokens_per_s": med(r["raw"]["output_tokens_per_s"] for r in rounds),
            "harness_output_tokens_per_s": med(r["harness"]["output_tokens_per_s"] for r in rounds),
            "per_round": rounds,
        }
        result["workloads"][w] = summary
        label = "single, repeats=1" if w == "single" else f"long tail, repeats={LONG_TAIL['repeats']} T=0.8"
        rows.append(
            (
                f"{label} ({n} req)",
                "raw replay",
                summary["raw_s"],
                summary["harness_generation_s"],
                summary["harness_end_to_end_s"],
                summary["ratio_end_to_end"],
                summary["utilisation"],
                TARGETS[w],
            )
        )

    print(f"\n{model.name} on {', '.join(GENERATION_TASKS)}, {target} in flight, median of {args.rounds} rounds")
    print(
        f"  {'workload':34s} {'against':14s} {'other s':>8s} {'gen s':>7s} {'harness s':>9s} {'ratio':>6s} "
        f"{'target':>6s} {'util':>5s}"
    )
    for name, other, other_s, gen_s, h_s, ratio, util, tgt in rows:
        print(
            f"  {name:34s} {other:14s} {other_s:8.2f} {'' if gen_s is None else f'{gen_s:7.2f}':>7s} {h_s:9.2f} "
            f"{ratio:6.3f} {'<=' + format(tgt, '.2f'):>6s} {'' if util is None else f'{util:.2f}':>5s}"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / time.strftime("%Y-%m-%d_%H-%M-%S.json")
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"  written to {path}")
    return result


if __name__ == "__main__":
    main()
