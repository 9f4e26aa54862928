"""How many requests a model is given at once: the target the dispatcher holds in flight.

One rule, used by ``bench run`` (the dispatcher's limit) and ``bench plan`` (its time estimate):

- ``run.num_concurrent`` set: that number, for every model (the override).
- An API model: ``api.max_in_flight`` (the vendor's rate limits bound it, not a server).
- A self-hosted model: per data-parallel replica,

      per_replica = min(hardware.max_in_flight_per_replica, floor(KV tokens / tokens per request))

  times ``serve.data_parallel_size``. A replica can only batch the sequences whose KV cache
  fits: more in flight wait in vLLM's queue (harmless) or, worse, are admitted and then
  preempted and recomputed when the cache runs out; fewer leave decode slots empty.

  - *KV tokens* of a replica: its devices' memory x ``gpu_memory_utilization``, less
    ``hardware.reserve_gb`` per device (activations of vLLM's profiling pass, CUDA graphs,
    communication buffers) and less the weights, divided by ``kv_bytes_per_token`` (from the
    model's config.json: 2 x layers x KV heads x head dim x bytes per value; for MLA models,
    layers x (KV latent rank + RoPE dim) x bytes). ``serve.kv_cache_memory_bytes``, when set,
    is the KV cache itself.
  - *Tokens per request*: the suite's mean prompt plus mean completion (the middle of its
    budget, cut at the generation limit), averaged over its samples. With exponentially
    distributed lengths, the time-average context of the requests in flight equals the mean
    request length, which is why the mean (and not the maximum) sizes the batch.
  - Without a KV figure (no ``kv_bytes_per_token``, or no device memory), the replica gets the
    hardware's cap alone.

After a server starts, the KV-cache size it reports (``vllm:cache_config_info`` on /metrics)
is recorded beside the target in ``model_runs.jsonl``, so the rule's estimate can be checked
against what the server actually allocated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import cast

from bench.config import BenchConfig, ModelConfig, SourceKind, SuiteConfig

BYTES_PER_PARAM = {"float32": 4, "float": 4, "bfloat16": 2, "float16": 2, "half": 2, "auto": 2, "fp8": 1}


@dataclass(frozen=True)
class Target:
    """Requests in flight for one model, and where the number comes from."""

    total: int
    per_replica: int
    replicas: int
    rule: str
    """One line: how ``total`` was reached (printed by the plan, recorded with the run)."""
    kv_tokens: int | None = None
    """Estimated KV-cache capacity of one replica, tokens (None: not estimated)."""
    tokens_per_request: float | None = None


def tokens_per_request(model: ModelConfig, suite: SuiteConfig, gen_limits: dict[str, int | None]) -> float | None:
    """Mean prompt plus completion tokens per request over the suite's budgeted tasks."""
    total = weight = 0.0
    for task in suite.tasks:
        budget = suite.budget.get(task)
        if budget is None:
            continue
        per = budget.reasoning_tokens if model.reasoning else budget.direct_tokens
        mean_out = (per.low + per.high) / 2
        limit = gen_limits.get(task)
        if limit is not None and not model.api.max_tokens_excludes_reasoning:
            mean_out = min(mean_out, limit)
        samples = (min(budget.items, suite.limit) if suite.limit else budget.items) * suite.repeats
        total += samples * (budget.prompt_tokens + mean_out)
        weight += samples
    return total / weight if weight else None


def kv_tokens_per_replica(model: ModelConfig, cfg: BenchConfig) -> int | None:
    """KV-cache tokens one replica can hold (see the module docstring), or None."""
    s, hw = model.serve, cfg.hardware
    if model.kv_bytes_per_token is None:
        return None
    if s.kv_cache_memory_bytes is not None:
        return int(s.kv_cache_memory_bytes // model.kv_bytes_per_token)
    if hw.memory_gb is None or model.params_b is None and model.weights_gb is None:
        return None
    devices = s.tensor_parallel_size * s.pipeline_parallel_size
    weights = (
        model.weights_gb
        if model.weights_gb is not None
        else cast(float, model.params_b) * BYTES_PER_PARAM.get(s.dtype, 2)
    )
    free_gb = devices * (hw.memory_gb * s.gpu_memory_utilization - hw.reserve_gb) - weights
    return max(0, int(free_gb * 1e9 // model.kv_bytes_per_token))


def target_for(model: ModelConfig, cfg: BenchConfig, task_gens: dict[str, dict] | None = None) -> Target:
    """The model's target in flight (see the module docstring). ``task_gens``: each task's own
    generation settings (``validate.task_generation``), for its generation limit."""
    from bench.validate import max_gen_toks

    gen_limits = {t: max_gen_toks(model, cfg.suite, g) for t, g in (task_gens or {}).items()}
    if cfg.run.num_concurrent is not None:
        n = cfg.run.num_concurrent
        return Target(n, n, 1, f"run.num_concurrent={n}")
    if model.source_kind == SourceKind.api:
        n = model.api.max_in_flight
        return Target(n, n, 1, f"api.max_in_flight={n}")
    cap = cfg.hardware.max_in_flight_per_replica
    replicas = max(1, model.serve.data_parallel_size)
    kv = kv_tokens_per_replica(model, cfg)
    per_request = tokens_per_request(model, cfg.suite, gen_limits)
    if kv is None or per_request is None:
        why = (
            "no kv_bytes_per_token"
            if model.kv_bytes_per_token is None
            else "no KV estimate"
            if kv is None
            else "no token budget for the suite"
        )
        return Target(
            cap * replicas,
            cap,
            replicas,
            f"hardware.max_in_flight_per_replica={cap} x {replicas} replica(s) ({why})",
            kv,
            per_request,
        )
    fits = max(1, math.floor(kv / per_request))
    per = min(cap, fits)
    bound = "the hardware cap" if per == cap else "the KV cache"
    return Target(
        per * replicas,
        per,
        replicas,
        f"{per} per replica x {replicas} ({bound}: KV {kv:,} tokens / {per_request:,.0f} per request "
        f"= {fits:,}, cap {cap})",
        kv,
        per_request,
    )


def server_kv_tokens(metrics_text: str) -> int | None:
    """KV-cache tokens a vLLM server allocated (all engines), from its /metrics text:
    ``vllm:cache_config_info`` carries ``num_gpu_blocks`` and ``block_size`` as labels."""
    from prometheus_client.parser import text_string_to_metric_families

    total = 0
    for family in text_string_to_metric_families(metrics_text):
        if family.name == "vllm:cache_config_info":
            for sample in family.samples:
                blocks, size = sample.labels.get("num_gpu_blocks"), sample.labels.get("block_size")
                if blocks not in (None, "", "None") and size not in (None, "", "None"):
                    total += int(blocks) * int(size)
    return total or None
