"""What a run would cost, before anything starts: tokens, time and $ per model, low and high.

Pure: the composed config and the tasks' generation settings in, typed records out
(``ModelPlan``, ``TaskPlan``, ``RecognitionPlan``); ``bench plan`` (``bench/plan.py``) renders
them as text. The estimate multiplies the suite's token budgets (``suite.budget``) by the
hardware preset's assumed throughput (``hardware.throughput``) or an API's assumed speed per
request (``api.stream_tokens_per_s``) and by the dated prices: every figure comes from the
config, none from this file.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from bench.analysis import cost_bases
from bench.config import BenchConfig, HardwareConfig, ModelConfig, Range, Role, SourceKind, SuiteConfig, ThroughputBand
from bench.serving.concurrency import Target, target_for
from bench.serving.serve import assign_gpus, devices_needed, server_command
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
    """Requests in flight, as ``bench run`` sets them (``bench/serving/concurrency.py``)."""
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
    return TaskPlan(
        task, budget.items, samples, limit, float(samples * budget.prompt_tokens), Span(samples * low, samples * high)
    )


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
    return Span(
        band.startup_s.low + tokens.low / (rate.high * devices),
        band.startup_s.high + tokens.high / (rate.low * devices) + drain_s,
    )


def drain_seconds(hw: HardwareConfig, tasks: list[TaskPlan]) -> float:
    """The longest generation the suite allows, at the slowest per-sequence decode speed."""
    longest = max((t.max_gen_toks or 0 for t in tasks if t.samples), default=0)
    return longest / hw.sequence_tokens_per_s.low if hw.sequence_tokens_per_s is not None and longest else 0.0


def request_count(tasks: list[TaskPlan]) -> int:
    """Requests the tasks send, counting one per sample (a multiple-choice item sends one per
    option, so this is a low figure for log-likelihood tasks)."""
    return sum(t.samples for t in tasks)


def estimate_usd(
    m: ModelConfig,
    hw: HardwareConfig,
    prompt_tokens: Span,
    output_tokens: Span,
    seconds: Span | None,
    requests: int = 0,
) -> Span | None:
    """$ of the estimated work as the model's cost basis bills it (``bench/analysis/cost_bases.py``; whole
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
        tasks = [
            replace(t, seconds=api_seconds(t.output_tokens, m.api.stream_tokens_per_s, t.samples, target.total))
            for t in tasks
        ]
        seconds = total([t.seconds for t in tasks])  # all known: each was just estimated
    prompt = sum(t.prompt_tokens for t in tasks)
    usd = estimate_usd(
        m,
        cfg.hardware,
        Span(prompt, prompt),
        sum((t.output_tokens for t in tasks), ZERO),
        seconds,
        request_count(tasks),
    )
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
        notes.append(
            f"no time{' or $' if usd is None else ''} estimate: {what} and no throughput band of "
            f"hardware={hw.name} for it (set models.{key}.params_b, or add a band to "
            f"conf/hardware/{hw.name}.yaml)"
        )
    return ModelPlan(
        key, m, tuple(tasks), tuple(gpus) if gpus else None, tuple(command), seconds, usd, target, tuple(notes)
    )


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
    tokens = Span(
        sum(t.prompt_tokens + t.output_tokens.low for t in tasks),
        sum(t.prompt_tokens + t.output_tokens.high for t in tasks),
    )
    hw, m = cfg.hardware, teacher.model
    band = throughput_band(hw, m.params_b)
    if band is None:
        return RecognitionPlan(
            teacher.key,
            cfg.teacher_recognition,
            sum(t.samples for t in tasks),
            tokens,
            None,
            None,
            f"no time or $ estimate: no throughput band of hardware={hw.name} for it",
        )
    devices, speedup = devices_needed(m.serve), hw.prefill_per_output_token
    seconds = Span(
        tokens.low / (band.tokens_per_s.high * speedup.high * devices),
        tokens.high / (band.tokens_per_s.low * speedup.low * devices),
    )
    # Billed like the teacher's own serving; the echoed prompts are its only tokens.
    usd_span = estimate_usd(m, hw, tokens, ZERO, seconds, request_count(tasks))
    return RecognitionPlan(
        teacher.key, cfg.teacher_recognition, sum(t.samples for t in tasks), tokens, seconds, usd_span
    )


def total(spans: list[Span | None]) -> Span | None:
    """The sum, or None when any part is unknown (a partial total would mislead)."""
    known = [s for s in spans if s is not None]
    return None if len(known) < len(spans) else sum(known, ZERO)
