"""Joining lm-eval's logged samples with metered requests; reasoning spans; decoding overrides."""

from __future__ import annotations

import json

import pytest

from bench.evaluation.answer import RequestMeter
from bench.evaluation.evaluate import gen_overrides
from bench.evaluation.reasoning import reasoning_span
from bench.evaluation.samples import to_records
from conftest import run_config


def teacher(overrides: list[str] | None = None):
    cfg = run_config(overrides)
    return cfg.models["tiny_teacher"], cfg.suite


def gen_sample(doc_id: int, prompt: str, response: str, target: str, correct: float) -> dict:
    return {
        "doc_id": doc_id,
        "arguments": [(prompt, {"until": ["\n"]})],
        "resps": [[response]],
        "filtered_resps": [response.split("</think>")[-1]],
        "target": target,
        "metrics": ["exact_match"],
        "exact_match": correct,
    }


def test_generation_samples_get_their_own_request_meters():
    model, _ = teacher()
    samples = [
        gen_sample(0, "think:1+2=", "<think>1+2=3</think>3", "3", 1.0),
        gen_sample(1, "think:2+2=", "<think>2+2=5</think>5", "4", 0.0),
    ]
    meter = [
        RequestMeter(("gen", "think:2+2="), 10, 14, "stop", 0.2),
        RequestMeter(("gen", "think:1+2="), 10, 13, "stop", 0.1),
    ]
    rows = to_records(model, "smoke_think", samples, meter, count_tokens=len)
    assert [r.completion_tokens for r in rows] == [13, 14]
    assert [r.latency_s for r in rows] == [0.1, 0.2]
    assert rows[1].correct == 0.0 and rows[1].extracted == "5" and rows[1].target == "4"
    assert rows[0].reasoning_tokens == len("<think>1+2=3</think>") and rows[0].reasoning_closed is True


def test_multiple_choice_sums_its_requests_and_reports_the_chosen_option():
    model, _ = teacher()
    args = [("1+2=", c) for c in ("3", "4", "13", "2")]
    sample = {
        "doc_id": 0,
        "arguments": args,
        "resps": [[(-0.1, True)], [(-3.0, False)], [(-5.0, False)], [(-2.0, False)]],
        "filtered_resps": [],
        "target": 0,
        "metrics": ["acc"],
        "acc": 1.0,
    }
    meter = [RequestMeter(("ll", p, c), 5, 1, "length", 0.05) for p, c in reversed(args)]
    (row,) = to_records(model, "smoke_choice", [sample], meter, count_tokens=len)
    assert row.n_requests == 4 and row.prompt_tokens == 20 and row.completion_tokens == 4
    assert row.response == "3" and row.extracted == "0" and row.correct == 1.0
    assert row.latency_s == pytest.approx(0.2)


def test_item_span_is_first_send_to_last_answer_and_each_request_keeps_its_own():
    model, _ = teacher()
    args = [("1+2=", c) for c in ("3", "4", "13", "2")]
    sample = {
        "doc_id": 0,
        "arguments": args,
        "resps": [[(-0.1, True)], [(-3.0, False)], [(-5.0, False)], [(-2.0, False)]],
        "filtered_resps": [],
        "target": 0,
        "metrics": ["acc"],
        "acc": 1.0,
    }
    sent, done = (100.3, 100.0, 100.2, 100.1), (100.5, 100.9, 100.4, 100.6)
    meter = [
        RequestMeter(("ll", p, c), 5, 1, "length", d - s, sent_at=s, answered_at=d, task="smoke_choice")
        for (p, c), s, d in zip(args, sent, done)
    ]
    requests: list = []
    (row,) = to_records(model, "smoke_choice", [sample], meter, count_tokens=len, requests_out=requests)
    assert (row.sent_at, row.done_at) == (100.0, 100.9)  # the options run concurrently: 0.9 s, not their sum
    assert row.latency_s == pytest.approx(sum(d - s for s, d in zip(sent, done)))
    assert [(r.sent_at, r.answered_at, r.kind) for r in requests] == [(s, d, "ll") for s, d in zip(sent, done)]
    # Meters without times (0: not measured), or not a forward span: no item span.
    (row,) = to_records(
        model,
        "smoke_choice",
        [sample],
        [RequestMeter(("ll", p, c), 5, 1, "length", 0.05) for p, c in args],
        count_tokens=len,
    )
    assert row.sent_at is None and row.done_at is None
    gen = [RequestMeter(("gen", "1+1="), 4, 1, "stop", 0.2, sent_at=60.0, answered_at=50.0)]
    (row,) = to_records(model, "t", [gen_sample(0, "1+1=", "2", "2", 1.0)], gen, count_tokens=len)
    assert row.sent_at is None and row.done_at is None


def test_a_sample_without_its_request_is_an_error_not_a_silent_zero():
    model, _ = teacher()
    with pytest.raises(RuntimeError, match="no metered request"):
        to_records(model, "t", [gen_sample(0, "1+1=", "2", "2", 1.0)], [], count_tokens=len)
    with pytest.raises(RuntimeError, match="matched no sample"):
        to_records(
            model,
            "t",
            [gen_sample(0, "1+1=", "2", "2", 1.0)],
            [RequestMeter(("gen", "1+1="), 1, 1, "stop", 0.1), RequestMeter(("gen", "9+9="), 1, 1, "stop", 0.1)],
            count_tokens=len,
        )


@pytest.mark.parametrize(
    "text,expected",
    [
        ("<think>a</think>1", ("<think>a</think>", True)),
        ("x<think>abc", ("<think>abc", False)),
        ("no reasoning", None),
        # R1-style chat templates open <think> in the prompt: the reply only closes it.
        ("step 1, step 2</think>The answer is 3", ("step 1, step 2</think>", True)),
    ],
)
def test_reasoning_span(text, expected):
    assert reasoning_span(text, "<think>", "</think>") == expected


def test_reasoning_span_without_delimiters_configured():
    assert reasoning_span("<think>a</think>1", None, None) is None


def test_decoding_overrides_suite_before_model_and_none_by_default():
    model, suite = teacher()
    assert gen_overrides(model, suite) == {}
    model, suite = teacher(
        [
            "suite.temperature=0.6",
            "suite.top_p=0.95",
            "models.tiny_teacher.generation.top_p=0.5",
            "models.tiny_teacher.generation.max_gen_toks=99",
        ]
    )
    assert gen_overrides(model, suite) == {"temperature": 0.6, "top_p": 0.95, "max_gen_toks": 99, "do_sample": True}


def test_openai_presets_use_lm_evals_openai_client_metered(monkeypatch):
    from bench.evaluation.client import MeteredOpenAIChatCompletions, make_lm

    cfg = run_config(["+model@models.o1=o1_api", "+model@models.claude=claude35_sonnet_api"])
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key")
    lm = make_lm(cfg.models["o1"], cfg.models["o1"].api.base_url, cfg.suite, 8, 60, None)
    assert isinstance(lm, MeteredOpenAIChatCompletions)
    assert lm.base_url == "https://api.openai.com/v1/chat/completions" and lm.model == "o1-2024-12-17"
    assert lm.api_key == "sk-test-key"
    payload = lm._create_payload(
        [{"role": "user", "content": "1+1="}],
        generate=True,
        gen_kwargs={"until": ["\\n"], "max_gen_toks": 64, "temperature": 0},
    )
    # o1 reasons (its preset says so): its vendor fixes sampling, so none is sent (bench/evaluation/payload.py).
    assert payload["max_completion_tokens"] == 64 and "stop" not in payload and "temperature" not in payload
    claude = make_lm(cfg.models["claude"], cfg.models["claude"].api.base_url, cfg.suite, 8, 60, None)
    assert type(claude).__name__ == "MeteredChatCompletions"
    assert claude.base_url == "https://api.anthropic.com/v1/chat/completions"


def test_payloads_follow_the_preset_not_the_model_id():
    """lm-eval guesses from the id ("o1", any "5") whether a model reasons; the preset decides
    here (every preset's exact body: tests/test_payload.py)."""
    from bench.evaluation.client import MeteredOpenAIChatCompletions
    from bench.evaluation.payload import PayloadRules

    def payload(model: str, reasoning: bool) -> dict:
        lm = MeteredOpenAIChatCompletions.__new__(MeteredOpenAIChatCompletions)
        lm.model, lm._max_gen_toks = model, 256
        lm.payload_rules = PayloadRules(
            fixed_sampling=reasoning, completion_tokens_field=True, drop_empty_stop=True, max_stop=4
        )
        return lm._create_payload(
            [{"role": "user", "content": "hi"}],
            generate=True,
            gen_kwargs={"until": ["\n\n"], "temperature": 0.6, "top_p": 0.95},
        )

    assert "top_p" not in payload("o1-mini", True) and "stop" not in payload("o1-mini", True)
    gpt = payload("gpt-4o-2024-05-13", False)
    assert (gpt["temperature"], gpt["top_p"], gpt["stop"]) == (0.6, 0.95, ["\n\n"])


def test_cached_answers_keep_the_times_they_were_answered_at():
    from bench.evaluation.cache import _cached_times

    assert _cached_times({"sent": 10.0, "done": 12.5, "latency_s": 2.5}) == (10.0, 12.5)
    # Entries from before: the pass's start, the answer's offset in it, and its latency.
    assert _cached_times({"s": 100.0, "t": 4.0, "latency_s": 1.5}) == (102.5, 104.0)


def bench_run(tmp_path, *overrides: str, env: dict[str, str]):
    import os
    import subprocess
    import sys

    from conftest import ROOT

    return subprocess.run(
        [sys.executable, "-m", "bench", "run", f"run.results_dir={tmp_path}", *overrides],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **env},
    )


def test_an_endpoint_gets_only_the_key_its_config_names(tmp_path, zoo_dir):
    from fake_openai import api_only_run, fake_endpoint

    secret = {"OPENAI_API_KEY": "sk-test-SECRET-123", "BENCH_TEST_KEY": "key-for-this-endpoint"}
    with fake_endpoint() as (base, seen):
        unnamed = bench_run(tmp_path / "a", *api_only_run(base), env=secret)  # local_api: api_key_env null
        assert unnamed.returncode == 0, unnamed.stderr[-3000:]
        assert len(seen.requests) >= 3 and seen.headers("Authorization") == [None] * len(seen.requests)
        seen.requests.clear()
        named = bench_run(tmp_path / "b", *api_only_run(base, "models.api.api.api_key_env=BENCH_TEST_KEY"), env=secret)
        assert named.returncode == 0, named.stderr[-3000:]
        assert len(seen.requests) >= 3
        assert seen.headers("Authorization") == ["Bearer key-for-this-endpoint"] * len(seen.requests)
    assert all("SECRET" not in json.dumps(h) for _, h, _ in seen.requests)


def test_the_harness_sends_its_own_servers_no_key(monkeypatch, zoo_dir):
    from bench.evaluation.client import make_lm
    from bench.serving.dispatch import Dispatcher
    from fake_openai import fake_endpoint

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-SECRET-123")
    model, suite = teacher()
    with fake_endpoint() as (base, seen), Dispatcher(2, 30, 0, model.name) as dispatcher:
        lm = make_lm(model, base, suite, 2, 30, dispatcher)
        lm.warm_up(("generate",))
        lm.generate_until([_instance("1+2=")])
    assert len(seen.requests) >= 3 and seen.headers("Authorization") == [None] * len(seen.requests)


def _instance(prompt: str):
    from lm_eval.api.instance import Instance

    return Instance("generate_until", {}, (prompt, {"until": ["\n"], "max_gen_toks": 4}), 0)


# --- reasoning tokens from API models, against a local endpoint in each vendor's shape ---------


@pytest.mark.parametrize(
    "preset,vendor_kwargs",
    [
        ("gpt62_sol_api", {"shape": "openai"}),  # a count, no text
        ("deepseek_flash_api", {"shape": "deepseek"}),  # text and a count
        ("deepseek_flash_api", {"shape": "deepseek", "report_reasoning_count": False}),  # text alone
    ],
)
def test_reasoning_tokens_of_api_models_are_recorded_billed_and_diagnosed(preset, vendor_kwargs, tmp_path, monkeypatch):
    import json

    import pandas as pd

    from bench.rundir import records
    from vendor import Endpoint, Vendor, reasoning_length, run_against

    monkeypatch.setenv("OPENAI_API_KEY", "sk-local")
    monkeypatch.setenv("DEEPSEEK_API_KEY", "sk-local")
    vendor = Vendor(**vendor_kwargs)
    with Endpoint(vendor) as base:
        run_dir = run_against(base, preset, tmp_path)
    samples = pd.DataFrame(records.read_jsonl(run_dir / records.SAMPLES))
    expected = samples.prompt.map(lambda p: reasoning_length(json.loads(p)[-1]["content"]))
    assert (expected > 0).all() and samples.correct.mean() == 1.0
    if vendor_kwargs.get("report_reasoning_count", True):
        assert samples.reasoning_tokens.tolist() == expected.tolist()
    else:  # no count and no tokenizer: the completion tokens split by characters
        assert (samples.reasoning_tokens - expected).abs().max() <= 1
    assert (samples.reasoning_closed == True).all()  # noqa: E712
    if vendor_kwargs["shape"] == "deepseek":
        assert samples.reasoning.tolist() == ["x" * n for n in expected]
    else:
        assert samples.reasoning.isna().all()  # OpenAI hides the reasoning itself
    # Billed as output: the completion tokens the bill counts hold the reasoning and the answer.
    assert (samples.completion_tokens == expected + samples.response.str.len()).all()
    summary = pd.read_csv(run_dir / "summary.csv").iloc[0]
    price = json.loads((run_dir / "prices.json").read_text())["models"][preset]
    cached = samples.cached_prompt_tokens.sum()
    assert cached == (2 * len(samples) if vendor_kwargs["shape"] == "deepseek" else 0)
    usd = (
        (samples.prompt_tokens.sum() - cached) * price["input"]
        + cached * price["cached_input"]
        + samples.completion_tokens.sum() * price["output"]
    ) / 1e6
    assert summary.usd == pytest.approx(usd, rel=1e-12) and summary.completion_tokens > expected.sum()
    # Budget diagnostics: the mean reasoning length is the vendor's, not 0.
    assert summary.reasoning_tokens_mean == pytest.approx(samples.reasoning_tokens.mean())
    diagnostics = (run_dir / "report.md").read_text().split("## Budget diagnostics")[1]
    assert f"| {samples.reasoning_tokens.mean():.1f} |" in diagnostics
    sent = vendor.hits[0]
    assert sent.headers["Authorization"] == "Bearer sk-local" and "temperature" not in sent.body


def test_a_reasoning_model_cut_off_before_answering_is_an_empty_unclosed_answer():
    from bench.evaluation.reasoning import reasoning_of

    model, _ = teacher()
    cut = RequestMeter(("gen", "q"), 10, 4096, "length", 1.0, reasoning_tokens=4096)
    r = reasoning_of(model, "", [cut], count_tokens=lambda text: None)
    assert (r.tokens, r.closed, r.text) == (4096, False, None)
    done = RequestMeter(("gen", "q"), 10, 300, "stop", 1.0, reasoning_text="abc" * 10)
    assert reasoning_of(model, "42", [done], count_tokens=len) == type(r)(30, True, "abc" * 10)
