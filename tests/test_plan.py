"""`bench plan`: the composed, validated config and its cost estimate, offline and in seconds."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from bench.analysis.estimate import Span, api_seconds, hosted_seconds, plan, task_plan, throughput_band, total
from bench.config import Range, TaskBudget, ThroughputBand
from bench.plan import render, span
from bench.reporting.formatting import sig, usd_sig as usd
from conftest import ROOT, run_config

KEYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "DEEPSEEK_API_KEY")


def run_plan(*overrides: str) -> tuple[subprocess.CompletedProcess, float]:
    env = {k: v for k, v in os.environ.items() if k not in KEYS}
    # Any attempt to reach the network fails: the plan must not need it.
    env.update(
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        HTTP_PROXY="http://127.0.0.1:9",
        HTTPS_PROXY="http://127.0.0.1:9",
        CUDA_VISIBLE_DEVICES="",
    )
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "plan", *overrides],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return proc, time.perf_counter() - t0


def test_plan_of_the_paper_comparison_runs_offline_in_seconds():
    proc, seconds = run_plan("experiment=r1_distill")
    out = proc.stdout
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert seconds < 60
    for key in ("teacher", "r1_distill_qwen_1p5b", "r1_distill_llama_70b", "qwq_32b_preview"):
        assert f"\n  {key} " in out
    assert "r1_aime24           30         30    1,920          32,768" in out
    assert "--tensor-parallel-size 4 --seed 1234" in out and "--data-parallel-size 2" in out
    assert "r1_distill_qwen_1p5b: CUDA_VISIBLE_DEVICES=0,1,2,3,4,5,6,7 " in out
    total = next(line for line in out.splitlines() if line.startswith("  total"))
    assert total.count("$") == 2  # a low and a high $ figure
    assert "nothing is started" in out
    proc, _ = run_plan("experiment=r1_distill", "+model@models.gpt62_sol_api=gpt62_sol_api")
    assert proc.returncode == 0 and "export OPENAI_API_KEY (set here: no)" in proc.stdout


def test_plan_refuses_a_retired_api_model():
    proc, _ = run_plan("experiment=r1_distill", "+model@models.gpt4o_0513_api=gpt4o_0513_api")
    assert proc.returncode == 2
    assert "'gpt-4o-2024-05-13' (GPT-4o (2024-05-13 snapshot)) was retired on 2026-10-23" in proc.stderr


def test_plan_refuses_what_the_run_would_refuse():
    proc, _ = run_plan("experiment=r1_distill", "suite.tasks=[r1_aime24,r1_aime25]")
    assert proc.returncode == 2
    assert "unknown task 'r1_aime25'" in proc.stderr
    proc, _ = run_plan("experiment=r1_distill", "hardware=h1000")
    assert proc.returncode != 0 and "h1000" in proc.stdout + proc.stderr


def test_task_plan_counts_samples_and_cuts_lengths_at_the_limit():
    cfg = run_config(
        [
            "experiment=r1_distill",
            "suite.limit=10",
            "suite.repeats=4",
            "+model@models.gpt4o_0513_api=gpt4o_0513_api",
            "+model@models.r1_api=deepseek_r1_api",
        ]
    )
    suite = cfg.suite
    suite.budget["r1_aime24"] = TaskBudget(
        items=30, prompt_tokens=100, reasoning_tokens=Range(1000, 50000), direct_tokens=Range(10, 20)
    )
    student = cfg.models["r1_distill_qwen_7b"]
    t = task_plan(student, suite, "r1_aime24", {"max_gen_toks": 32768})
    assert (t.items, t.samples, t.max_gen_toks, t.prompt_tokens) == (30, 40, 32768, 4000)
    assert t.output_tokens == Span(40 * 1000, 40 * 32768)  # a trace cannot outgrow the limit
    gpt = task_plan(cfg.models["gpt4o_0513_api"], suite, "r1_aime24", {"max_gen_toks": 32768})
    assert gpt.max_gen_toks == 4096 and gpt.output_tokens == Span(400, 800)  # not a reasoning model
    r1 = task_plan(cfg.models["r1_api"], suite, "r1_aime24", {"max_gen_toks": 32768})
    assert r1.max_gen_toks == 8192 and r1.output_tokens.high == 40 * 50000  # its limit excludes reasoning
    assert task_plan(student, suite, "no_budget", {}).samples == 0


def test_time_and_cost_follow_the_config_figures():
    band = ThroughputBand(up_to_params_b=10, tokens_per_s=Range(100, 200), startup_s=Range(10, 20))
    assert hosted_seconds(Span(4000, 8000), band, devices=2) == Span(10 + 4000 / 400, 20 + 8000 / 200)
    assert api_seconds(Span(1000, 2000), Range(10, 20), samples=5, concurrency=64) == Span(10, 40)
    cfg = run_config(["experiment=r1_distill", "hardware=h100x8", "+model@models.gpt62_sol_api=gpt62_sol_api"])
    assert throughput_band(cfg.hardware, 1.8).up_to_params_b == 2
    assert throughput_band(cfg.hardware, 70.6).up_to_params_b == 75
    assert throughput_band(cfg.hardware, 5000) is None and throughput_band(cfg.hardware, None) is None
    gens = {t: {"max_gen_toks": 32768} for t in cfg.suite.tasks}
    plans = {p.key: p for p in plan(cfg, gens, list(cfg.models))}
    hosted = plans["r1_distill_qwen_1p5b"]
    assert hosted.gpus == tuple(str(i) for i in range(8))
    band = throughput_band(cfg.hardware, 1.8)
    # the high figure adds the pool's drain: 32,768 tokens at the slowest per-sequence speed
    drain = 32768 / cfg.hardware.sequence_tokens_per_s.low
    expected = hosted_seconds(hosted.output_tokens, band, devices=8, drain_s=drain)
    assert hosted.seconds == expected and expected.high > hosted_seconds(hosted.output_tokens, band, 8).high
    assert hosted.usd.high == pytest.approx(expected.high * 8 * cfg.hardware.usd_per_device_hour / 3600)
    api = plans["gpt62_sol_api"]
    price = cfg.models["gpt62_sol_api"].price
    assert api.usd.low == pytest.approx((api.prompt_tokens * price.input + api.output_tokens.low * price.output) / 1e6)
    assert api.gpus is None and api.command is None


def test_render_says_what_it_could_not_estimate():
    cfg = run_config(
        ["experiment=r1_distill", "run.only=r1_distill_qwen_7b", "models.r1_distill_qwen_7b.params_b=null"]
    )
    gens = {t: {"max_gen_toks": 32768} for t in cfg.suite.tasks}
    text = render(cfg, plan(cfg, gens, ["r1_distill_qwen_7b"]), gens)
    assert "no time or $ estimate: no params_b" in text
    assert "\n  total" in text and "?" in next(line for line in text.splitlines() if line.startswith("  total"))


def test_teacher_recognition_is_costed_and_the_suite_decides_whether_it_runs():
    from bench.analysis.estimate import recognition_plan

    cfg = run_config(["experiment=r1_distill", "+model@models.gpt62_sol_api=gpt62_sol_api"])
    assert cfg.teacher_recognition is False  # suite r1 turns it off: the estimate below dwarfs the rest
    gens = {t: {"max_gen_toks": 32768} for t in cfg.suite.tasks}
    plans = plan(cfg, gens, list(cfg.models))
    r = recognition_plan(cfg, plans, set(cfg.suite.tasks))
    per_model = sum(b.items for b in cfg.suite.budget.values()) * cfg.suite.repeats
    assert r.teacher == "teacher" and not r.enabled and r.requests == per_model * len(cfg.models)
    # Every generation of every model comes back as a prompt: prompts plus outputs, all models.
    assert r.prompt_tokens.low == pytest.approx(sum(p.prompt_tokens + p.output_tokens.low for p in plans))
    teacher = next(p for p in plans if p.key == "teacher")
    band, hw = throughput_band(cfg.hardware, teacher.model.params_b), cfg.hardware
    assert r.seconds.high == pytest.approx(
        r.prompt_tokens.high / (band.tokens_per_s.low * hw.prefill_per_output_token.low * 8)
    )
    assert r.usd.high == pytest.approx(r.seconds.high * hw.count * hw.usd_per_device_hour / 3600)
    off = " ".join(render(cfg, plans, gens, r).split())  # prose is wrapped
    assert f"Teacher recognition is off (suite.teacher_recognition of suite r1): it would add {r.requests:,} " in off
    assert "teacher scores" not in off
    on_cfg = run_config(["experiment=r1_distill", "run.teacher_recognition=true"])
    on_plans = plan(on_cfg, gens, list(on_cfg.models))
    on = recognition_plan(on_cfg, on_plans, set(on_cfg.suite.tasks))
    text = render(on_cfg, on_plans, gens, on)
    assert on.enabled and "Teacher recognition is on (run.teacher_recognition)" in " ".join(text.split())
    total_line = next(line for line in text.splitlines() if line.startswith("  total"))
    assert total_line.endswith(span(total([p.usd for p in on_plans] + [on.usd]), usd))
    assert not total_line.endswith(span(total([p.usd for p in on_plans]), usd))
    # Only generations are scored: a log-likelihood task (smoke_choice) sends none.
    smoke = run_config([])
    smoke_plans = plan(smoke, {}, list(smoke.models))
    assert recognition_plan(smoke, smoke_plans, {"smoke_arith", "smoke_think"}).requests == 2 * 300 * len(smoke.models)


def test_significant_figures():
    assert [sig(x) for x in (0, 0.012345, 1.26, 12.6, 1264, 3_048.7)] == ["0", "0.012", "1.3", "13", "1,300", "3,000"]
