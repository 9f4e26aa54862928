"""``bench plan``: what a run would do and what it would cost, without starting anything.

    python -m bench plan experiment=r1_distill            # takes every override `bench run` takes
    python -m bench plan experiment=r1_distill hardware=h200x8 model@models.teacher=deepseek_r1

It composes and validates the config (every check but those that need the run's own machine:
its GPUs and its API keys), then prints the models, their servers and GPUs, the tasks and their
sizes, and a low-high estimate of tokens, time and $. The estimate multiplies the suite's token
budgets (``suite.budget``) by the hardware preset's assumed throughput (``hardware.throughput``)
or an API's assumed speed per request (``api.stream_tokens_per_s``) and by the dated prices:
every figure comes from the config, none from this file.
"""

from __future__ import annotations

import os
import shlex
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, cast

from bench import cost_bases
from bench.concurrency import Target, target_for
from bench.config import (
    CONF_DIR,
    BenchConfig,
    HardwareConfig,
    ModelConfig,
    Range,
    Role,
    SourceKind,
    SuiteConfig,
    ThroughputBand,
)
from bench.serve import assign_gpus, devices_needed, server_command
from bench.validate import max_gen_toks


@dataclass(frozen=True)
class Span:
    """A low and a high figure."""

    low: float
    high: float

    def __add__(self, other: Span) -> Span:
        return Span(self.low + other.low, self.high + other.high)


ZERO = Span(0.0, 0.0)


@dataclass(frozen=True)
class TaskPlan:
    task: str
    items: int | None
    """Items in the full task; None without a budget for it."""
    samples: int
    """Responses asked for: evaluated items x repeats."""
    max_gen_toks: int | None
    prompt_tokens: float
    output_tokens: Span
    seconds: Span | None = None
    """API models only: time to answer this task (a server's time is the model's)."""


@dataclass(frozen=True)
class ModelPlan:
    key: str
    model: ModelConfig
    tasks: tuple[TaskPlan, ...]
    gpus: tuple[str, ...] | None
    """GPU ids the server gets; None for an API, the CPU build, or Ray."""
    command: tuple[str, ...] | None
    seconds: Span | None
    usd: Span | None
    target: Target
    """Requests in flight, as ``bench run`` sets them (``bench/concurrency.py``)."""
    notes: tuple[str, ...] = ()

    @property
    def prompt_tokens(self) -> float:
        return sum(t.prompt_tokens for t in self.tasks)

    @property
    def output_tokens(self) -> Span:
        return sum((t.output_tokens for t in self.tasks), ZERO)


def task_plan(model: ModelConfig, suite: SuiteConfig, task: str, task_gen: dict[str, Any]) -> TaskPlan:
    """Tokens one model spends on one task: samples x (prompt, and a completion length from the
    suite's budget, cut at the model's generation limit)."""
    limit = max_gen_toks(model, suite, task_gen)
    budget = suite.budget.get(task)
    if budget is None:
        return TaskPlan(task, None, 0, limit, 0.0, ZERO)
    evaluated = min(budget.items, suite.limit) if suite.limit is not None else budget.items
    samples = evaluated * suite.repeats
    per = budget.reasoning_tokens if model.reasoning else budget.direct_tokens
    cap = None if model.api.max_tokens_excludes_reasoning else limit
    low, high = (min(x, cap) if cap is not None else x for x in (per.low, per.high))
    return TaskPlan(task, budget.items, samples, limit, float(samples * budget.prompt_tokens),
                    Span(samples * low, samples * high))


def throughput_band(hardware: HardwareConfig, params_b: float | None) -> ThroughputBand | None:
    """The first band (smallest models first) that a model of ``params_b`` fits in."""
    if params_b is None:
        return None
    fits = [b for b in hardware.throughput if params_b <= b.up_to_params_b]
    return min(fits, key=lambda b: b.up_to_params_b) if fits else None


def hosted_seconds(tokens: Span, band: ThroughputBand, devices: int, drain_s: float = 0.0) -> Span:
    """Server start-up plus decoding at the band's per-device rate on every device it holds;
    the high figure adds ``drain_s``, the pool's last request decoding at one sequence's speed
    after everything else is done (once per model: the scheduler keeps the target in flight
    until the pool drains)."""
    rate = band.tokens_per_s
    return Span(band.startup_s.low + tokens.low / (rate.high * devices),
                band.startup_s.high + tokens.high / (rate.low * devices) + drain_s)


def drain_seconds(hw: HardwareConfig, tasks: list[TaskPlan]) -> float:
    """The longest generation the suite allows, at the slowest per-sequence decode speed."""
    longest = max((t.max_gen_toks or 0 for t in tasks if t.samples), default=0)
    return longest / hw.sequence_tokens_per_s.low if hw.sequence_tokens_per_s is not None and longest else 0.0


def request_count(tasks: list[TaskPlan]) -> int:
    """Requests the tasks send, counting one per sample (a multiple-choice item sends one per
    option, so this is a low figure for log-likelihood tasks)."""
    return sum(t.samples for t in tasks)


def estimate_usd(m: ModelConfig, hw: HardwareConfig, prompt_tokens: Span, output_tokens: Span,
                 seconds: Span | None, requests: int = 0) -> Span | None:
    """$ of the estimated work as the model's cost basis bills it (``bench/cost_bases.py``; whole
    tokens, no prompt caching assumed); None when the basis needs a figure the plan lacks (a
    serving time, without a throughput band)."""
    basis = cost_bases.for_model(m)
    price = basis.price_entry(asdict(m), asdict(hw))

    def end(prompt: float, out: float, s: float | None) -> float | None:
        return basis.plan_usd(price, cost_bases.Usage(int(prompt), 0, int(out), s, requests))

    low = end(prompt_tokens.low, output_tokens.low, None if seconds is None else seconds.low)
    high = end(prompt_tokens.high, output_tokens.high, None if seconds is None else seconds.high)
    return None if low is None or high is None else Span(low, high)


def api_seconds(tokens: Span, per_request: Range, samples: int, concurrency: int) -> Span:
    streams = max(1, min(concurrency, samples))
    return Span(tokens.low / (per_request.high * streams), tokens.high / (per_request.low * streams))


def plan_api(key: str, m: ModelConfig, cfg: BenchConfig, tasks: list[TaskPlan], target: Target) -> ModelPlan:
    notes = []
    seconds = None
    if m.api.stream_tokens_per_s is None:
        notes.append(f"no time estimate: set models.{key}.api.stream_tokens_per_s (output tokens/s of one request)")
    else:
        tasks = [replace(t, seconds=api_seconds(t.output_tokens, m.api.stream_tokens_per_s, t.samples,
                                                target.total)) for t in tasks]
        seconds = total([t.seconds for t in tasks])  # all known: each was just estimated
    prompt = sum(t.prompt_tokens for t in tasks)
    usd = estimate_usd(m, cfg.hardware, Span(prompt, prompt), sum((t.output_tokens for t in tasks), ZERO), seconds,
                       request_count(tasks))
    return ModelPlan(key, m, tuple(tasks), None, None, seconds, usd, target, tuple(notes))


def plan_hosted(key: str, m: ModelConfig, cfg: BenchConfig, tasks: list[TaskPlan], target: Target) -> ModelPlan:
    hw = cfg.hardware
    visible = [str(i) for i in range(hw.count // hw.nodes)] if hw.device == "cuda" else []
    gpus = assign_gpus(m.serve, visible)
    command = server_command(m, cfg.run.host, "PORT", cfg.run.seed)
    band = throughput_band(hw, m.params_b)
    out = sum((t.output_tokens for t in tasks), ZERO)
    seconds = None if band is None else hosted_seconds(out, band, devices_needed(m.serve), drain_seconds(hw, tasks))
    prompt = sum(t.prompt_tokens for t in tasks)
    usd = estimate_usd(m, hw, Span(prompt, prompt), out, seconds, request_count(tasks))
    notes = []
    if band is None:
        what = "no params_b" if m.params_b is None else f"{m.params_b:g}B parameters"
        notes.append(f"no time{' or $' if usd is None else ''} estimate: {what} and no throughput band of "
                     f"hardware={hw.name} for it (set models.{key}.params_b, or add a band to "
                     f"conf/hardware/{hw.name}.yaml)")
    return ModelPlan(key, m, tuple(tasks), tuple(gpus) if gpus else None, tuple(command), seconds, usd,
                     target, tuple(notes))


def plan(cfg: BenchConfig, task_gens: dict[str, dict[str, Any]], order: list[str]) -> list[ModelPlan]:
    """One plan per model, in ``order`` (model keys, as the run serves them). Pure."""
    plans = []
    for key in order:
        m = cfg.models[key]
        tasks = [task_plan(m, cfg.suite, t, task_gens.get(t, {})) for t in cfg.suite.tasks]
        build = plan_api if m.source_kind == SourceKind.api else plan_hosted
        plans.append(build(key, m, cfg, tasks, target_for(m, cfg, task_gens)))
    return plans


@dataclass(frozen=True)
class RecognitionPlan:
    """The teacher scoring every generation of every model, its own included: one request per
    generation, prompt and response as the prompt, log-probabilities echoed, nothing generated."""

    teacher: str
    enabled: bool
    requests: int
    prompt_tokens: Span
    seconds: Span | None
    usd: Span | None
    note: str = ""


def recognition_plan(cfg: BenchConfig, plans: list[ModelPlan], generative: set[str]) -> RecognitionPlan | None:
    """What teacher recognition costs (None without a self-hosted teacher): the teacher's
    throughput band, sped up by ``hardware.prefill_per_output_token`` (prompts are scored,
    not generated), on the devices its server holds, billed like its own serving. Pure."""
    teacher = next((p for p in plans if p.model.role == Role.teacher), None)
    if teacher is None or teacher.model.source_kind == SourceKind.api:
        return None
    tasks = [t for p in plans for t in p.tasks if t.task in generative]
    tokens = Span(sum(t.prompt_tokens + t.output_tokens.low for t in tasks),
                  sum(t.prompt_tokens + t.output_tokens.high for t in tasks))
    hw, m = cfg.hardware, teacher.model
    band = throughput_band(hw, m.params_b)
    if band is None:
        return RecognitionPlan(teacher.key, cfg.teacher_recognition, sum(t.samples for t in tasks), tokens, None,
                               None, f"no time or $ estimate: no throughput band of hardware={hw.name} for it")
    devices, speedup = devices_needed(m.serve), hw.prefill_per_output_token
    seconds = Span(tokens.low / (band.tokens_per_s.high * speedup.high * devices),
                   tokens.high / (band.tokens_per_s.low * speedup.low * devices))
    # Billed like the teacher's own serving; the echoed prompts are its only tokens.
    usd_span = estimate_usd(m, hw, tokens, ZERO, seconds, request_count(tasks))
    return RecognitionPlan(teacher.key, cfg.teacher_recognition, sum(t.samples for t in tasks), tokens, seconds,
                           usd_span)


def total(spans: list[Span | None]) -> Span | None:
    """The sum, or None when any part is unknown (a partial total would mislead)."""
    known = [s for s in spans if s is not None]
    return None if len(known) < len(spans) else sum(known, ZERO)


def sig(x: float) -> str:
    """Two significant figures, with thousands separators."""
    if x == 0:
        return "0"
    digits = 1 - int(f"{abs(x):e}".split("e")[1])
    return f"{round(x, digits):,.{max(digits, 0)}f}"


def tokens(x: float) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= size:
            return sig(x / size) + unit
    return sig(x)


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{sig(seconds)} s"
    if seconds < 7200:
        return f"{sig(seconds / 60)} min"
    return f"{sig(seconds / 3600)} h"


def usd(x: float) -> str:
    return "$" + sig(x)


def span(s: Span | None, fmt) -> str:
    if s is None:
        return "?"
    low, high = fmt(s.low), fmt(s.high)
    return low if low == high else f"{low} - {high}"


def table(rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(c.rjust(w) if i in right else c.ljust(w)
                             for i, (c, w) in enumerate(zip(r, widths))).rstrip() for r in rows]


def served_by(p: ModelPlan, hw: HardwareConfig) -> tuple[str, str]:
    m, s = p.model, p.model.serve
    if m.source_kind == SourceKind.api:
        return f"API {m.source}", "-"
    if s.distributed_executor_backend == "ray":
        where = f"Ray, {devices_needed(s)} over {hw.nodes} nodes"
    else:
        where = ",".join(p.gpus) if p.gpus else ("cpu" if hw.device == "cpu" else "?")
    return f"vLLM {m.source}", where


def render(cfg: BenchConfig, plans: list[ModelPlan], task_gens: dict[str, dict[str, Any]],
           recognition: RecognitionPlan | None = None, gated: Sequence[str] = ()) -> str:
    """The plan as text: suite, hardware, models with their estimate, servers, assumptions."""
    out = [f"Plan for experiment {cfg.experiment.name}: nothing is started, nothing is downloaded.",
           "Config composed and validated; the checks that need the run's own machine (its GPUs, its "
           "API keys) are left for `bench run`.", ""]
    out += suite_section(cfg.suite, task_gens) + [""] + models_section(cfg, plans, recognition)
    out += ["", "Servers (exact command lines; PORT is a free port picked at start):"]
    out += [f"  {p.key}: " + (f"CUDA_VISIBLE_DEVICES={','.join(p.gpus)} " if p.gpus else "") + shlex.join(p.command)
            for p in plans if p.command] or ["  none (API models only)"]
    out += ["", "Assumptions (all from the config; override any of them on the command line):"]
    out += assumptions(cfg, plans)
    out += ["", "Before running:"] + [f"  - {n}" for n in machine_needs(cfg, gated)]
    return "\n".join(wrap(line) for line in out)


def suite_section(suite: SuiteConfig, task_gens: dict[str, dict[str, Any]]) -> list[str]:
    decoding = ", ".join(f"{k} {v}" for k, v in (("temperature", suite.temperature), ("top-p", suite.top_p),
                                                 ("max new tokens", suite.max_gen_toks)) if v is not None)
    out = [f"Suite {suite.name}: {len(suite.tasks)} tasks, {suite.repeats} response(s) per item, seed "
           f"{suite.seed}" + (f", {decoding}" if decoding else "") + " (otherwise each task's own)"]
    rows = [["task", "items", "evaluated", "samples", "max new tokens"]]
    for task in suite.tasks:
        b = suite.budget.get(task)
        evaluated = None if b is None else min(b.items, suite.limit) if suite.limit else b.items
        limit = suite.max_gen_toks or task_gens.get(task, {}).get("max_gen_toks")
        rows.append([task, "?" if b is None else f"{b.items:,}", "?" if evaluated is None else f"{evaluated:,}",
                     "?" if evaluated is None else f"{evaluated * suite.repeats:,}",
                     "lm-eval default" if limit is None else f"{int(limit):,}"])
    return out + table(rows, {1, 2, 3, 4}) + [
        "  (a model's own generation.max_gen_toks, e.g. an API's output cap, applies where the suite sets none)"]


def models_section(cfg: BenchConfig, plans: list[ModelPlan], recognition: RecognitionPlan | None = None) -> list[str]:
    hw = cfg.hardware
    out = [f"Hardware {hw.name}: {hw.count} x {hw.device_kind}" + (f" over {hw.nodes} nodes" if hw.nodes > 1 else "")
           + f", ${hw.usd_per_device_hour:g} per device-hour ({hw.price_source}; {hw.price_as_of}).",
           "Models are served one after another (the teacher last)" + (
               ", each server on the first GPUs of the box, so no two hold a GPU at once; the box is billed "
               "while each is served (API models are priced by tokens alone)." if hw.device == "cuda" else "."),
           ""]
    rows = [["model", "role", "served by", "GPUs", "tp x pp x dp", "in flight", "max new", "output tokens", "time",
             "$"]]
    for p in plans:
        by, where = served_by(p, hw)
        s = p.model.serve
        par = "-" if p.model.source_kind == SourceKind.api else \
            f"{s.tensor_parallel_size} x {s.pipeline_parallel_size} x {s.data_parallel_size}"
        limits = {t.max_gen_toks for t in p.tasks}
        cap = f"{limits.pop():,}" if len(limits) == 1 and None not in limits else "per task"
        if p.model.api.max_tokens_excludes_reasoning:
            cap += " + reasoning"
        rows.append([p.key, p.model.role.value, by, where, par, f"{p.target.total:,}", cap,
                     span(p.output_tokens, tokens), span(p.seconds, duration), span(p.usd, usd)])
    extra: list[tuple[Span | None, Span | None]] = []
    if recognition is not None and recognition.enabled:
        rows.append([f"{recognition.teacher} scores", "recognition", "", "", "", "", "-", "-",
                     span(recognition.seconds, duration), span(recognition.usd, usd)])
        extra = [(recognition.seconds, recognition.usd)]
    rows.append(["total", "", "", "", "", "", "", span(sum((p.output_tokens for p in plans), ZERO), tokens),
                 span(total([p.seconds for p in plans] + [s for s, _ in extra]), duration),
                 span(total([p.usd for p in plans] + [u for _, u in extra]), usd)])
    out += table(rows, {5, 7, 8, 9})
    out.append(f"  (and {tokens(sum(p.prompt_tokens for p in plans))} prompt tokens; times add up because "
               f"models run one after another; a sweep with run.only=... runs them side by side)")
    if recognition is not None:
        out += ["", recognition_line(cfg, recognition)]
    notes = [f"{p.key}: {n}" for p in plans for n in p.notes]
    notes += [f"task {t}: no budget (items, token lengths) in suite.budget; left out of the estimate"
              for t in cfg.suite.tasks if t not in cfg.suite.budget]
    return out + (["", "Not estimated:"] + [f"  - {n}" for n in notes] if notes else [])


def recognition_line(cfg: BenchConfig, r: RecognitionPlan) -> str:
    where = ("run.teacher_recognition" if cfg.run.teacher_recognition is not None
             else f"suite.teacher_recognition of suite {cfg.suite.name}")
    cost = (f"{r.requests:,} prompt-scoring requests to {r.teacher}'s server (every generation of every model, "
            f"prompt and response echoed with log-probabilities), {span(r.prompt_tokens, tokens)} prompt tokens, "
            f"{span(r.seconds, duration)}, {span(r.usd, usd)}" + (f" ({r.note})" if r.note else ""))
    if r.enabled:
        return f"Teacher recognition is on ({where}): {cost}; included in the total above."
    return (f"Teacher recognition is off ({where}): it would add {cost}. Turn it on with "
            f"run.teacher_recognition=true.")


def assumptions(cfg: BenchConfig, plans: list[ModelPlan]) -> list[str]:
    hw = cfg.hardware
    out = [f"  - suite.budget.{t}: {b.source}" for t, b in cfg.suite.budget.items() if t in cfg.suite.tasks]
    if any(p.command for p in plans):
        out.append(f"  - hardware.throughput ({hw.name}): {hw.throughput_source or 'no source given'}")
        out.append(f"  - teacher recognition: prompt tokens scored at {hw.prefill_per_output_token.low:g}-"
                   f"{hw.prefill_per_output_token.high:g} x the output token rate (hardware.prefill_per_output_token,"
                   f" an assumption)")
        drain = (f"; the high figure adds the pool's drain: its longest allowed generation at "
                 f"{hw.sequence_tokens_per_s.low:g} tokens/s for one sequence (hardware.sequence_tokens_per_s)"
                 if hw.sequence_tokens_per_s is not None else "")
        out.append("  - a server's time: its start-up, then output tokens / (rate per GPU x GPUs it holds), "
                   "with the requests in flight held at the model's target until the pool drains (a run "
                   "of a few items is bounded by its longest generation instead)" + drain
                   + "; prompt processing is left out (decoding dominates)")
        out.append(f"  - requests in flight (bench/concurrency.py): min(hardware.max_in_flight_per_replica="
                   f"{hw.max_in_flight_per_replica}, KV-cache tokens of a replica / mean tokens per request) "
                   f"x replicas, with {hw.reserve_gb:g} GB per GPU reserved beside weights and KV cache")
        for p in plans:
            if p.command:
                out.append(f"  - {p.key}: {p.target.rule}")
    apis = [p for p in plans if p.model.source_kind == SourceKind.api]
    if apis:
        out.append("  - an API's time: api.max_in_flight requests in flight (" + ", ".join(
            f"{p.key} {p.target.total}" for p in apis) + ") and no rate limit (a 429 is retried, so a low "
            "tier takes longer)")
    for p in apis:
        m, rate = p.model, p.model.api.stream_tokens_per_s
        speed = f"{rate.low:g}-{rate.high:g} output tokens/s per request (assumption), " if rate else ""
        out.append(f"  - {p.key}: {speed}${m.price.input:g} / ${m.price.output:g} per 1M input / output "
                   f"tokens, no prompt caching ({m.price.source}; {m.price.as_of})")
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
        needs.append(f"{most} CUDA GPUs visible to the harness ({hw.device_kind}; nvidia-smi, or "
                     f"CUDA_VISIBLE_DEVICES), the `vllm` build (make picks it), and network for the hub")
        if any(m.serve.distributed_executor_backend == "ray" for m in hosted):
            needs.append("a Ray cluster across the nodes, started before the run (README)")
    skip = cfg.run.unavailable.value == "skip"
    for env in sorted({m.api.api_key_env for m in cfg.models.values() if m.api.api_key_env
                       and m.source_kind == SourceKind.api}):
        users = ", ".join(k for k, m in cfg.models.items() if m.api.api_key_env == env)
        needs.append(f"export {env} (set here: {'yes' if os.environ.get(env) else 'no'})"
                     + (f"; without it {users} is left out (run.unavailable=skip) and the report says so"
                        if skip else ""))
    for task in gated:
        needs.append(f"HF_TOKEN, with the terms of {task}'s data set accepted on the Hub (it is gated; set "
                     f"here: {'yes' if os.environ.get('HF_TOKEN') else 'no'})"
                     + ("; without it the task is skipped (run.unavailable=skip)" if skip else ""))
    return needs or ["nothing beyond this machine"]


def compose(overrides: list[str]) -> BenchConfig:
    """The config `bench run` would get from the same overrides."""
    from hydra import compose as hydra_compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return cast(BenchConfig, OmegaConf.to_object(hydra_compose(config_name="config", overrides=overrides)))


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

    from bench.evaluate import request_kinds, task_manager
    from bench.run import ordered_models, zoo_models
    from bench.validate import ConfigError, resolve_paths, task_generation, validate

    try:
        cfg = compose(argv)
    except (HydraException, OmegaConfBaseException) as e:
        raise SystemExit(f"bench plan: {e}") from None
    tm = task_manager(resolve_paths(cfg.suite.include_paths), cfg.suite.tasks)
    try:
        validate(cfg, tm, will_build=set(zoo_models(cfg)) if cfg.run.build_zoo else set(), machine=False)
    except ConfigError as e:
        print(e, file=sys.stderr)
        raise SystemExit(2) from None
    keys = {id(m): k for k, m in cfg.models.items()}
    order = [keys[id(m)] for m in ordered_models(cfg)]
    task_gens = {t: task_generation(tm, t) for t in cfg.suite.tasks}
    from bench.availability import gated_dataset

    gated = [t for t in cfg.suite.tasks if gated_dataset(tm, t)]
    plans = plan(cfg, task_gens, order)
    generative = {t for t in cfg.suite.tasks if request_kinds(tm, [t]) == ("generate",)}
    print(render(cfg, plans, task_gens, recognition_plan(cfg, plans, generative), gated))
