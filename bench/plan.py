"""``bench plan``: what a run would do and what it would cost, without starting anything.

    python -m bench plan experiment=r1_distill            # takes every override `bench run` takes
    python -m bench plan experiment=r1_distill hardware=h200x8 model@models.teacher=deepseek_r1

It composes and validates the config (every check but those that need the run's own machine:
its GPUs and its API keys), then prints the models, their servers and GPUs, the tasks and their
sizes, and a low-high estimate of tokens, time and $. The estimate is ``bench/analysis/estimate.py``'s
(pure: typed records from the config); this module renders it as text.
"""

from __future__ import annotations

import os
import shlex
import sys
import textwrap
from collections.abc import Callable, Sequence
from typing import Any

from bench.analysis.estimate import ZERO, ModelPlan, RecognitionPlan, Span, plan, recognition_plan, total
from bench.compose import compose
from bench.config import BenchConfig, HardwareConfig, SourceKind, SuiteConfig, resolve_model_paths
from bench.reporting.formatting import duration, tokens, usd_sig
from bench.serving.serve import devices_needed


def span(s: Span | None, fmt: Callable[[float], str]) -> str:
    """A low-high figure written by ``fmt``; one figure when both ends read alike; ? when unknown."""
    if s is None:
        return "?"
    low, high = fmt(s.low), fmt(s.high)
    return low if low == high else f"{low} - {high}"


def table(rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  " + "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
        for r in rows
    ]


def served_by(p: ModelPlan, hw: HardwareConfig) -> tuple[str, str]:
    m, s = p.model, p.model.serve
    if m.source_kind == SourceKind.api:
        return f"API {m.source}", "-"
    if s.distributed_executor_backend == "ray":
        where = f"Ray, {devices_needed(s)} over {hw.nodes} nodes"
    else:
        where = ",".join(p.gpus) if p.gpus else ("cpu" if hw.device == "cpu" else "?")
    return f"vLLM {m.source}", where


def render(
    cfg: BenchConfig,
    plans: list[ModelPlan],
    task_gens: dict[str, dict[str, Any]],
    recognition: RecognitionPlan | None = None,
    gated: Sequence[str] = (),
) -> str:
    """The plan as text: suite, hardware, models with their estimate, servers, assumptions."""
    out = [
        f"Plan for experiment {cfg.experiment.name}: nothing is started, nothing is downloaded.",
        "Config composed and validated; the checks that need the run's own machine (its GPUs, its "
        "API keys) are left for `bench run`.",
        "",
    ]
    out += suite_section(cfg.suite, task_gens) + [""] + models_section(cfg, plans, recognition)
    out += ["", "Servers (exact command lines; PORT is a free port picked at start):"]
    out += [
        f"  {p.key}: " + (f"CUDA_VISIBLE_DEVICES={','.join(p.gpus)} " if p.gpus else "") + shlex.join(p.command)
        for p in plans
        if p.command
    ] or ["  none (API models only)"]
    out += ["", "Assumptions (all from the config; override any of them on the command line):"]
    out += assumptions(cfg, plans)
    out += ["", "Before running:"] + [f"  - {n}" for n in machine_needs(cfg, gated)]
    return "\n".join(wrap(line) for line in out)


def suite_section(suite: SuiteConfig, task_gens: dict[str, dict[str, Any]]) -> list[str]:
    decoding = ", ".join(
        f"{k} {v}"
        for k, v in (("temperature", suite.temperature), ("top-p", suite.top_p), ("max new tokens", suite.max_gen_toks))
        if v is not None
    )
    out = [
        f"Suite {suite.name}: {len(suite.tasks)} tasks, {suite.repeats} response(s) per item, seed "
        f"{suite.seed}" + (f", {decoding}" if decoding else "") + " (otherwise each task's own)"
    ]
    rows = [["task", "items", "evaluated", "samples", "max new tokens"]]
    for task in suite.tasks:
        b = suite.budget.get(task)
        evaluated = None if b is None else min(b.items, suite.limit) if suite.limit else b.items
        limit = suite.max_gen_toks or task_gens.get(task, {}).get("max_gen_toks")
        rows.append(
            [
                task,
                "?" if b is None else f"{b.items:,}",
                "?" if evaluated is None else f"{evaluated:,}",
                "?" if evaluated is None else f"{evaluated * suite.repeats:,}",
                "lm-eval default" if limit is None else f"{int(limit):,}",
            ]
        )
    return (
        out
        + table(rows, {1, 2, 3, 4})
        + ["  (a model's own generation.max_gen_toks, e.g. an API's output cap, applies where the suite sets none)"]
    )


def models_section(cfg: BenchConfig, plans: list[ModelPlan], recognition: RecognitionPlan | None = None) -> list[str]:
    hw = cfg.hardware
    out = [
        f"Hardware {hw.name}: {hw.count} x {hw.device_kind}"
        + (f" over {hw.nodes} nodes" if hw.nodes > 1 else "")
        + f", ${hw.usd_per_device_hour:g} per device-hour ({hw.price_source}; {hw.price_as_of}).",
        "Models are served one after another (the teacher last)"
        + (
            ", each server on the first GPUs of the box, so no two hold a GPU at once; the box is billed "
            "while each is served (API models are priced by tokens alone)."
            if hw.device == "cuda"
            else "."
        ),
        "",
    ]
    rows = [
        ["model", "role", "served by", "GPUs", "tp x pp x dp", "in flight", "max new", "output tokens", "time", "$"]
    ]
    for p in plans:
        by, where = served_by(p, hw)
        s = p.model.serve
        par = (
            "-"
            if p.model.source_kind == SourceKind.api
            else f"{s.tensor_parallel_size} x {s.pipeline_parallel_size} x {s.data_parallel_size}"
        )
        limits = {t.max_gen_toks for t in p.tasks}
        cap = f"{limits.pop():,}" if len(limits) == 1 and None not in limits else "per task"
        if p.model.api.max_tokens_excludes_reasoning:
            cap += " + reasoning"
        rows.append(
            [
                p.key,
                p.model.role.value,
                by,
                where,
                par,
                f"{p.target.total:,}",
                cap,
                span(p.output_tokens, tokens),
                span(p.seconds, duration),
                span(p.usd, usd_sig),
            ]
        )
    extra: list[tuple[Span | None, Span | None]] = []
    if recognition is not None and recognition.enabled:
        rows.append(
            [
                f"{recognition.teacher} scores",
                "recognition",
                "",
                "",
                "",
                "",
                "-",
                "-",
                span(recognition.seconds, duration),
                span(recognition.usd, usd_sig),
            ]
        )
        extra = [(recognition.seconds, recognition.usd)]
    rows.append(
        [
            "total",
            "",
            "",
            "",
            "",
            "",
            "",
            span(sum((p.output_tokens for p in plans), ZERO), tokens),
            span(total([p.seconds for p in plans] + [s for s, _ in extra]), duration),
            span(total([p.usd for p in plans] + [u for _, u in extra]), usd_sig),
        ]
    )
    out += table(rows, {5, 7, 8, 9})
    out.append(
        f"  (and {tokens(sum(p.prompt_tokens for p in plans))} prompt tokens; times add up because "
        f"models run one after another; a sweep with run.only=... runs them side by side)"
    )
    if cfg.run.timing_replays:
        out.append(
            f"  (timing replays, run.timing_replays={cfg.run.timing_replays}: each self-hosted task is served "
            f"{cfg.run.timing_replays} more times after the evaluation, its median its serving time (billed "
            f"where the model is billed by time); that serving is in neither the times nor the $ above)"
        )
    if recognition is not None:
        out += ["", recognition_line(cfg, recognition)]
    notes = [f"{p.key}: {n}" for p in plans for n in p.notes]
    notes += [
        f"task {t}: no budget (items, token lengths) in suite.budget; left out of the estimate"
        for t in cfg.suite.tasks
        if t not in cfg.suite.budget
    ]
    return out + (["", "Not estimated:"] + [f"  - {n}" for n in notes] if notes else [])


def recognition_line(cfg: BenchConfig, r: RecognitionPlan) -> str:
    where = (
        "run.teacher_recognition"
        if cfg.run.teacher_recognition is not None
        else f"suite.teacher_recognition of suite {cfg.suite.name}"
    )
    cost = (
        f"{r.requests:,} prompt-scoring requests to {r.teacher}'s server (every generation of every model, "
        f"prompt and response echoed with log-probabilities), {span(r.prompt_tokens, tokens)} prompt tokens, "
        f"{span(r.seconds, duration)}, {span(r.usd, usd_sig)}" + (f" ({r.note})" if r.note else "")
    )
    if r.enabled:
        return f"Teacher recognition is on ({where}): {cost}; included in the total above."
    return f"Teacher recognition is off ({where}): it would add {cost}. Turn it on with run.teacher_recognition=true."


def assumptions(cfg: BenchConfig, plans: list[ModelPlan]) -> list[str]:
    hw = cfg.hardware
    out = [f"  - suite.budget.{t}: {b.source}" for t, b in cfg.suite.budget.items() if t in cfg.suite.tasks]
    if any(p.command for p in plans):
        out.append(f"  - hardware.throughput ({hw.name}): {hw.throughput_source or 'no source given'}")
        out.append(
            f"  - teacher recognition: prompt tokens scored at {hw.prefill_per_output_token.low:g}-"
            f"{hw.prefill_per_output_token.high:g} x the output token rate (hardware.prefill_per_output_token,"
            f" an assumption)"
        )
        drain = (
            f"; the high figure adds the pool's drain: its longest allowed generation at "
            f"{hw.sequence_tokens_per_s.low:g} tokens/s for one sequence (hardware.sequence_tokens_per_s)"
            if hw.sequence_tokens_per_s is not None
            else ""
        )
        out.append(
            "  - a server's time: its start-up, then output tokens / (rate per GPU x GPUs it holds), "
            "with the requests in flight held at the model's target until the pool drains (a run "
            "of a few items is bounded by its longest generation instead)"
            + drain
            + "; prompt processing is left out (decoding dominates)"
        )
        out.append(
            f"  - requests in flight (bench/serving/concurrency.py): min(hardware.max_in_flight_per_replica="
            f"{hw.max_in_flight_per_replica}, KV-cache tokens of a replica / mean tokens per request) "
            f"x replicas, with {hw.reserve_gb:g} GB per GPU reserved beside weights and KV cache"
        )
        for p in plans:
            if p.command:
                out.append(f"  - {p.key}: {p.target.rule}")
    apis = [p for p in plans if p.model.source_kind == SourceKind.api]
    if apis:
        out.append(
            "  - an API's time: api.max_in_flight requests in flight ("
            + ", ".join(f"{p.key} {p.target.total}" for p in apis)
            + ") and no rate limit (a 429 is retried, so a low "
            "tier takes longer)"
        )
    for p in apis:
        m, rate = p.model, p.model.api.stream_tokens_per_s
        speed = f"{rate.low:g}-{rate.high:g} output tokens/s per request (assumption), " if rate else ""
        out.append(
            f"  - {p.key}: {speed}${m.price.input:g} / ${m.price.output:g} per 1M input / output "
            f"tokens, no prompt caching ({m.price.source}; {m.price.as_of})"
        )
    return out


def wrap(line: str, width: int = 100) -> str:
    """Prose and bullets wrapped; tables and command lines kept whole (they are copied)."""
    if len(line) <= width or line.startswith("  ") and not line.startswith("  - ") or line.startswith("  ("):
        return line if not line.startswith("  (") else textwrap.fill(line, width, subsequent_indent="   ")
    indent = "    " if line.startswith("  - ") else ""
    return textwrap.fill(line, width, subsequent_indent=indent, break_on_hyphens=False)


def machine_needs(cfg: BenchConfig, gated: Sequence[str] = ()) -> list[str]:
    """What the run's machine must have (the checks `bench plan` leaves to `bench run`);
    ``gated``: the suite's tasks whose data set is gated on the Hub."""
    hw = cfg.hardware
    needs = []
    hosted = [m for m in cfg.models.values() if m.source_kind != SourceKind.api and not m.serve.simulate.enabled]
    if hosted and hw.device == "cuda":
        most = max(devices_needed(m.serve) for m in hosted)
        needs.append(
            f"{most} CUDA GPUs visible to the harness ({hw.device_kind}; nvidia-smi, or "
            f"CUDA_VISIBLE_DEVICES), the `vllm` build (make picks it), and network for the hub"
        )
        if any(m.serve.distributed_executor_backend == "ray" for m in hosted):
            needs.append("a Ray cluster across the nodes, started before the run (README)")
    skip = cfg.run.unavailable.value == "skip"
    for env in sorted(
        {m.api.api_key_env for m in cfg.models.values() if m.api.api_key_env and m.source_kind == SourceKind.api}
    ):
        users = ", ".join(k for k, m in cfg.models.items() if m.api.api_key_env == env)
        needs.append(
            f"export {env} (set here: {'yes' if os.environ.get(env) else 'no'})"
            + (f"; without it {users} is left out (run.unavailable=skip) and the report says so" if skip else "")
        )
    for task in gated:
        needs.append(
            f"HF_TOKEN, with the terms of {task}'s data set accepted on the Hub (it is gated; set "
            f"here: {'yes' if os.environ.get('HF_TOKEN') else 'no'})"
            + ("; without it the task is skipped (run.unavailable=skip)" if skip else "")
        )
    return needs or ["nothing beyond this machine"]


def main(argv: list[str]) -> None:
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return
    if any(a in ("-m", "--multirun") for a in argv):
        raise SystemExit("bench plan plans one run: drop -m, and plan one job of a sweep with run.only=<model>")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from bench.evaluation.evaluate import request_kinds, task_manager
    from bench.evaluation.schedule import ordered_models
    from bench.validate import ConfigError, resolve_paths, task_generation, validate
    from bench.zoo import zoo_models

    try:
        cfg = compose(argv)
    except (HydraException, OmegaConfBaseException) as e:
        raise SystemExit(f"bench plan: {e}") from None
    cfg = resolve_model_paths(cfg)
    tm = task_manager(resolve_paths(cfg.suite.include_paths), cfg.suite.tasks)
    try:
        validate(cfg, tm, will_build=set(zoo_models(cfg)) if cfg.run.build_zoo else set(), machine=False)
    except ConfigError as e:
        print(e, file=sys.stderr)
        raise SystemExit(2) from None
    keys = {id(m): k for k, m in cfg.models.items()}
    order = [keys[id(m)] for m in ordered_models(cfg)]
    task_gens = {t: task_generation(tm, t) for t in cfg.suite.tasks}
    from bench.serving.availability import gated_dataset

    gated = [t for t in cfg.suite.tasks if gated_dataset(tm, t)]
    plans = plan(cfg, task_gens, order)
    generative = {t for t in cfg.suite.tasks if request_kinds(tm, [t]) == ("generate",)}
    print(render(cfg, plans, task_gens, recognition_plan(cfg, plans, generative), gated))
