"""Requests in flight per model: one rule for `bench run` and `bench plan` (bench/serving/concurrency.py)."""

from __future__ import annotations

import math

import pytest

from bench.analysis.estimate import plan
from bench.compose import compose
from bench.serving.concurrency import kv_tokens_per_replica, server_kv_tokens, target_for, tokens_per_request


def test_override_applies_to_every_model():
    cfg = compose(["experiment=r1_distill", "run.num_concurrent=7"])
    assert {target_for(m, cfg).total for m in cfg.models.values()} == {7}


def test_api_models_take_their_own_limit():
    cfg = compose(["+model@models.api=local_api", "models.api.api.max_in_flight=12"])
    t = target_for(cfg.models["api"], cfg)
    assert t.total == 12 and "api.max_in_flight" in t.rule


def test_kv_rule_by_hand_for_a_7b_student_on_eight_h100s():
    cfg = compose(["experiment=r1_distill", "hardware=h100x8", "run.only=r1_distill_qwen_7b"])
    m, hw = cfg.models["r1_distill_qwen_7b"], cfg.hardware
    # 80 GB x 0.9, less 4 GB reserved, less 7.6B x 2 bytes of weights, over 57,344 bytes per token.
    kv = int((80 * 0.9 - 4 - 7.6 * 2) * 1e9 // 57344)
    assert kv_tokens_per_replica(m, cfg) == kv
    per_request = tokens_per_request(m, cfg.suite, {t: 32768 for t in cfg.suite.tasks})
    budgets = [cfg.suite.budget[t] for t in cfg.suite.tasks]
    samples = [b.items * cfg.suite.repeats for b in budgets]
    mean = sum(
        n * (b.prompt_tokens + (b.reasoning_tokens.low + b.reasoning_tokens.high) / 2) for n, b in zip(samples, budgets)
    ) / sum(samples)
    assert per_request == pytest.approx(mean)
    t = target_for(m, cfg, {t: {} for t in cfg.suite.tasks})
    assert m.serve.data_parallel_size == 8
    assert t.per_replica == min(hw.max_in_flight_per_replica, math.floor(kv / per_request))
    assert t.total == 8 * t.per_replica and "the KV cache" in t.rule


def test_cap_binds_when_the_cache_holds_more():
    cfg = compose(
        [
            "experiment=r1_distill",
            "hardware=h200",
            "suite.limit=1",
            "models.r1_distill_qwen_1p5b.serve.data_parallel_size=1",
            "suite.max_gen_toks=64",
            "suite.budget.r1_math500.reasoning_tokens.low=10",
            "suite.budget.r1_math500.reasoning_tokens.high=20",
        ]
    )
    t = target_for(cfg.models["r1_distill_qwen_1p5b"], cfg, {x: {} for x in cfg.suite.tasks})
    assert t.per_replica == cfg.hardware.max_in_flight_per_replica == 1024 and "hardware cap" in t.rule


def test_without_a_kv_figure_the_hardware_cap_applies():
    cfg = compose([])  # the smoke default on the CPU preset: the tiny zoo has no kv_bytes_per_token
    for m in cfg.models.values():
        t = target_for(m, cfg)
        assert t.total == cfg.hardware.max_in_flight_per_replica == 64, t


def test_plan_uses_the_run_s_number():
    cfg = compose(["experiment=r1_distill"])
    gens = {t: {} for t in cfg.suite.tasks}
    for p in plan(cfg, gens, list(cfg.models)):
        assert p.target == target_for(p.model, cfg, gens)


def test_server_kv_tokens_from_metrics_in_vllm_shape():
    text = (
        "# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig\n"
        "# TYPE vllm:cache_config_info gauge\n"
        'vllm:cache_config_info{block_size="16",cache_dtype="auto",engine="0",num_gpu_blocks="7280"} 1.0\n'
        'vllm:cache_config_info{block_size="16",cache_dtype="auto",engine="1",num_gpu_blocks="7000"} 1.0\n'
    )
    assert server_kv_tokens(text) == 16 * (7280 + 7000)
    assert server_kv_tokens("# nothing here\n") is None
