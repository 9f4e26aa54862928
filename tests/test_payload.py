"""The exact request body of every API preset, and the rules that make it (bench/evaluation/payload.py).

Each body is built by the metered client the run would use (``make_lm``), from the R1 suite's
decoding (or, for the local test endpoint, the smoke suite's), exactly as lm-eval hands it the
task's generation settings. A change in a preset, in the rules or in lm-eval shows up here.
"""

from __future__ import annotations

import json

import pytest
from omegaconf import OmegaConf

from bench.evaluation import evaluate
from bench.evaluation.client import make_lm
from bench.evaluation.payload import PayloadRules, rules_for
from conftest import CONF, ROOT, ZOO, run_config

MESSAGES = [{"role": "user", "content": "PROMPT"}]
PINNED = {
    # Not reasoning models: the R1 protocol's sampling (suite r1), the preset's output cap.
    "gpt4o_0513_api": {
        "messages": MESSAGES,
        "model": "gpt-4o-2024-05-13",
        "max_completion_tokens": 4096,
        "temperature": 0.6,
        "seed": 1234,
        "top_p": 0.95,
    },
    "gpt4o_api": {
        "messages": MESSAGES,
        "model": "gpt-4o-2024-08-06",
        "max_completion_tokens": 16384,
        "temperature": 0.6,
        "seed": 1234,
        "top_p": 0.95,
    },
    "claude35_sonnet_api": {
        "messages": MESSAGES,
        "model": "claude-3-5-sonnet-20241022",
        "max_tokens": 8192,
        "temperature": 0.6,
        "seed": 1234,
        "top_p": 0.95,
    },
    "deepseek_v3_api": {
        "messages": MESSAGES,
        "model": "deepseek-chat",
        "max_tokens": 8192,
        "temperature": 0.6,
        "seed": 1234,
        "top_p": 0.95,
    },
    # Reasoning models: the vendor fixes sampling; no temperature, top_p or stop.
    "o1_api": {"messages": MESSAGES, "model": "o1-2024-12-17", "max_completion_tokens": 32768, "seed": 1234},
    "o1_mini_api": {"messages": MESSAGES, "model": "o1-mini", "max_completion_tokens": 32768, "seed": 1234},
    "o3_mini_api": {"messages": MESSAGES, "model": "o3-mini", "max_completion_tokens": 32768, "seed": 1234},
    "gpt62_sol_api": {"messages": MESSAGES, "model": "gpt-6.2-sol", "max_completion_tokens": 32768, "seed": 1234},
    "claude_opus_5_api": {"messages": MESSAGES, "model": "claude-opus-5", "max_tokens": 32768, "seed": 1234},
    "deepseek_r1_api": {"messages": MESSAGES, "model": "deepseek-reasoner", "max_tokens": 8192, "seed": 1234},
    "deepseek_flash_api": {"messages": MESSAGES, "model": "deepseek-flash", "max_tokens": 32768, "seed": 1234},
    # The local test endpoint (completions, smoke_arith): as lm-eval builds it.
    "local_api": {
        "prompt": "PROMPT",
        "model": "tiny_teacher",
        "max_tokens": 8,
        "temperature": 0.0,
        "stop": ["\n"],
        "seed": 1234,
    },
}


def api_presets() -> list[str]:
    return sorted(p.stem for p in (CONF / "model").glob("*.yaml") if OmegaConf.load(p).get("source_kind") == "api")


def body_of(preset: str) -> dict:
    """The body the run's client sends for the first request of r1_aime24 (smoke_arith for
    local_api), built offline: nothing is sent."""
    from lm_eval.tasks._yaml_loader import load_yaml

    if preset == "local_api":
        overrides = ["experiment=smoke", f"zoo_dir={ZOO}", "models.x.api.base_url=http://127.0.0.1:9/v1"]
        task = ROOT / "bench" / "tasks" / "smoke" / "arith.yaml"
    else:
        overrides, task = ["experiment=r1_distill"], ROOT / "bench" / "tasks" / "r1" / "aime24.yaml"
    cfg = run_config([f"+model@models.x={preset}", "run.only=x", *overrides])
    m = cfg.models["x"]
    lm = make_lm(m, m.api.base_url, cfg.suite, num_concurrent=8, timeout_s=60, dispatcher=None)
    # What lm-eval passes: the task's generation_kwargs updated with the run's overrides.
    gen = {**load_yaml(task, resolve_func=False)["generation_kwargs"], **evaluate.gen_overrides(m, cfg.suite)}
    prompt = MESSAGES if m.mode.value == "chat" else "PROMPT"
    return lm._create_payload(prompt, generate=True, gen_kwargs=gen, seed=cfg.suite.seed)


def test_every_api_preset_has_a_pinned_body():
    assert sorted(PINNED) == api_presets()


@pytest.mark.parametrize("preset", sorted(PINNED))
def test_the_exact_body_of_each_api_preset(preset, zoo_dir):
    body = body_of(preset)
    assert json.dumps(body) == json.dumps(PINNED[preset]), body  # same keys, values and order


def test_a_model_id_with_a_5_in_it_is_not_taken_for_a_reasoning_model():
    """lm-eval 0.4.13 treats any id containing "5" as a reasoning model and sends temperature 1
    without top_p; the preset decides here (gpt4o_0513_api: reasoning false)."""
    body = body_of("gpt4o_0513_api")
    assert (body["temperature"], body["top_p"]) == (0.6, 0.95) and "stop" not in body


def test_self_hosted_bodies_are_lm_evals_own():
    cfg = run_config(["experiment=r1_distill"])
    assert all(rules_for(m) == PayloadRules() for m in cfg.models.values())
    body = {"messages": MESSAGES, "model": "x", "max_tokens": 10, "temperature": 0.6, "top_p": 0.95, "stop": []}
    assert PayloadRules().apply(body) == body


def test_log_likelihood_bodies_are_never_adapted():
    from bench.evaluation.payload import ruled

    class Client:
        payload_rules = PayloadRules(fixed_sampling=True, completion_tokens_field=True, drop_empty_stop=True)

        def build(self, messages, generate=False, gen_kwargs=None, seed=1234):
            return {"prompt": messages, "max_tokens": 1, "temperature": 0, "echo": True, "stop": []}

    make = ruled(Client.build)
    scored = make(Client(), "text", generate=False)
    assert scored == {"prompt": "text", "max_tokens": 1, "temperature": 0, "echo": True, "stop": []}
    assert make(Client(), "text", generate=True) == {"prompt": "text", "max_completion_tokens": 1, "echo": True}
