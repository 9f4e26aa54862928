"""What a simulated server needs to know, from the run's config and tasks (``serve.simulate``).

The engine's timing comes from the model (parameters, KV bytes per token, parallelism) and the
simulated device (``serve.simulate``: bandwidth, FLOPs, overheads); its KV cache from
``bench/serving/concurrency.py``'s estimate for the hardware preset (the same number ``bench plan`` and
the dispatcher's target use), unless set. Its answers need an answer key: every item of the
suite's tasks, rendered by lm-eval as the run will send it, with its target. Mean completion
lengths per task come from the suite's budget (``reasoning_tokens`` for a reasoning model,
``direct_tokens`` otherwise), and accuracies from the paper's reported pass@1 where the model
names its row (``reported_as``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.config import BenchConfig, ModelConfig, SourceKind
from bench.rundir import records
from bench.serving.concurrency import BYTES_PER_PARAM, kv_tokens_per_replica

DEFAULT_ACCURACY = 0.5
DEFAULT_TOKENS = 1000.0


def spec_path(run_dir: Path, model: ModelConfig) -> Path:
    """Where the harness writes a model's spec and ``SimulatedServer`` reads it."""
    return run_dir / "servers" / f"{model.name}.sim.json"


def timing(model: ModelConfig) -> dict[str, float]:
    """``bench.serving.simulate.Timing`` for one replica of ``model`` (its tensor x pipeline devices)."""
    sim, s = model.serve.simulate, model.serve
    if model.params_b is None:
        raise ValueError(
            f"model '{model.name}': serve.simulate needs params_b (the engine's step time "
            f"is a function of the model's size)"
        )
    devices = s.tensor_parallel_size * s.pipeline_parallel_size
    weights = (
        model.weights_gb if model.weights_gb is not None else model.params_b * BYTES_PER_PARAM.get(s.dtype, 2)
    ) * 1e9
    # Without kv_bytes_per_token (the tiny zoo), a step's KV-cache reads are left out.
    return {
        "weights_bytes": weights,
        "kv_bytes_per_token": float(model.kv_bytes_per_token or 0),
        "bandwidth_bytes_s": sim.memory_bandwidth_gb_s * 1e9 * sim.bandwidth_efficiency * devices,
        "flops": sim.peak_tflops * 1e12 * sim.flops_efficiency * devices,
        "params": model.params_b * 1e9,
        "step_overhead_s": sim.step_overhead_ms / 1000.0,
        "per_sequence_s": sim.per_sequence_us / 1e6,
    }


def answer_key(tm, cfg: BenchConfig) -> list[dict[str, Any]]:
    """Every evaluated item of the suite as lm-eval renders it: text, target and task; for an
    item whose target is an option letter, the text of that option too."""
    from bench.serving.simulate import OPTION

    entries = []
    for task in cfg.suite.tasks:
        obj = tm.load([task])["tasks"][task]
        docs = list(obj.eval_docs)
        for doc in docs[: cfg.suite.limit] if cfg.suite.limit else docs:
            text, target = obj.doc_to_text(doc), obj.doc_to_target(doc)
            if isinstance(target, list):
                target = target[0]
            entry = {"task": task, "text": str(text), "answer": str(target).strip().strip("()")}
            options = dict(OPTION.findall(entry["text"]))
            if entry["answer"] in options:
                entry["option"] = options[entry["answer"]]
            entries.append(entry)
    return entries


def reported_accuracy(model: ModelConfig, tasks: list[str]) -> dict[str, float]:
    """The paper's pass@1 for the model's row on each task's benchmark, as a fraction."""
    if not model.reported_as:
        return {}
    from bench.analysis import published

    ref = published.load()
    out = {}
    for task in tasks:
        bench_ = ref.tasks.loc[ref.tasks["task"] == task, "benchmark"]
        if bench_.empty:
            continue
        v = ref.values[
            (ref.values["model"] == model.reported_as)
            & (ref.values["benchmark"] == bench_.iloc[0])
            & (ref.values["metric"] == "pass@1")
        ]
        if not v.empty:
            out[task] = float(v["value"].iloc[0]) / 100.0
    return out


def build(model: ModelConfig, cfg: BenchConfig, tm) -> dict[str, Any]:
    """The spec ``bench.serving.simulate_http`` serves ``model`` from."""
    sim = model.serve.simulate
    kv = sim.kv_cache_tokens if sim.kv_cache_tokens is not None else kv_tokens_per_replica(model, cfg)
    if not kv:
        raise ValueError(
            f"model '{model.name}': no KV-cache size for the simulated engine: set "
            f"models.<key>.serve.simulate.kv_cache_tokens, or kv_bytes_per_token and params_b "
            f"with a hardware preset that has memory_gb"
        )
    reported = reported_accuracy(model, cfg.suite.tasks)
    tasks = {}
    for task in cfg.suite.tasks:
        budget = cfg.suite.budget.get(task)
        per = (budget.reasoning_tokens if model.reasoning else budget.direct_tokens) if budget else None
        mean = (
            sim.output_tokens
            if sim.output_tokens is not None
            else (per.low + per.high) / 2
            if per is not None
            else DEFAULT_TOKENS
        )
        accuracy = sim.accuracy if sim.accuracy is not None else reported.get(task, DEFAULT_ACCURACY)
        tasks[task] = {"mean_tokens": max(mean, 1.0), "accuracy": accuracy}
    return {
        "model": model.name,
        "source": model.source,
        "source_kind": model.source_kind.value,
        "revision": model.serve.revision,
        "max_model_len": model.serve.max_model_len,
        "think_end": model.think_end,
        "time_scale": sim.time_scale,
        "startup_s": sim.startup_s,
        "replicas": max(1, model.serve.data_parallel_size),
        "timing": timing(model),
        "kv_tokens": int(kv),
        "max_num_seqs": sim.max_num_seqs or cfg.hardware.max_in_flight_per_replica,
        "length_sigma": sim.length_sigma,
        "default_tokens": sim.output_tokens or DEFAULT_TOKENS,
        "default_accuracy": sim.accuracy if sim.accuracy is not None else DEFAULT_ACCURACY,
        "tasks": tasks,
        "faults": vars(sim.faults) if not isinstance(sim.faults, dict) else sim.faults,
        "seed": cfg.run.seed,
        "key": answer_key(tm, cfg),
    }


def write(run_dir: Path, model: ModelConfig, cfg: BenchConfig, tm) -> Path:
    path = spec_path(run_dir, model)
    path.parent.mkdir(parents=True, exist_ok=True)
    records.write_json(path, build(model, cfg, tm))
    return path


def simulated(model: ModelConfig) -> bool:
    """Served by the simulated engine (an API model never is: it is someone else's server)."""
    return model.source_kind != SourceKind.api and model.serve.simulate.enabled


def banner(cfg: dict[str, Any]) -> str | None:
    """The report's warning for a run (its resolved config) with simulated models, or None."""
    names = [
        m["name"]
        for m in cfg.get("models", {}).values()
        if m.get("source_kind") != "api" and ((m.get("serve") or {}).get("simulate") or {}).get("enabled")
    ]
    if not names:
        return None
    scales = sorted(
        {
            cfg["models"][k]["serve"]["simulate"]["time_scale"]
            for k in cfg["models"]
            if cfg["models"][k]["name"] in names
        }
    )
    return (
        f"SIMULATED: {', '.join(names)} answered from a simulated GPU engine (bench/serving/simulate.py), not a "
        f"model; times are compressed {' / '.join(f'{s:g}x' for s in scales)} and, like the answers, "
        f"accuracies and costs, are no measurement of anything"
    )
