"""Hub loading offline: the R1 tasks and hub model presets, end to end up to the engine (the
simulated one), from a local directory laid out as the Hugging Face cache, without network.

The data sets are read from their snapshots (bench.data.hub.use_cached_snapshots), the tokenizer by lm-eval and
the model's config.json by the engine from the same cache, as on a GPU box after a download."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from bench.data.hub import cached_commit, use_cached_snapshots
from bench.evaluation.evaluate import task_manager
from bench.rundir import records
from bench.validate import resolve_paths
from hubfixture import hub_cache, no_network  # noqa: F401  (fixtures)
from simrun import config, run, simulated

R1 = ["r1_aime24", "r1_math500", "r1_gpqa_diamond"]


def test_offline_the_r1_tasks_read_their_hub_data_sets_from_the_cache(hub_cache, no_network):
    tm = task_manager(resolve_paths(["bench/tasks/r1"]), R1)  # points them at the snapshots
    found = {t: Path(tm.task_index[t].cfg["dataset_path"]).relative_to(hub_cache).parts[0] for t in R1}
    assert found == {
        "r1_aime24": "datasets--Maxwell-Jia--AIME_2024",
        "r1_math500": "datasets--HuggingFaceH4--MATH-500",
        "r1_gpqa_diamond": "datasets--Idavidrein--gpqa",
    }
    loaded = tm.load(R1)["tasks"]
    math = list(loaded["r1_math500"].eval_docs)
    assert len(math) == 500 and {"problem", "answer", "unique_id"} <= set(math[0])
    aime = list(loaded["r1_aime24"].eval_docs)
    assert len(aime) == 30 and isinstance(aime[0]["Answer"], int)
    gpqa = list(loaded["r1_gpqa_diamond"].eval_docs)  # the card's gpqa_diamond config, options shuffled
    assert len(gpqa) == 198 and {"choice1", "choice4", "answer"} <= set(gpqa[0])
    assert "protons" in loaded["r1_gpqa_diamond"].doc_to_text(gpqa[0])


def test_online_nothing_is_redirected(hub_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "0")
    tm = task_manager(resolve_paths(["bench/tasks/r1"]), R1)
    assert use_cached_snapshots(tm, R1) == {}
    assert tm.task_index["r1_math500"].yaml_path is not None
    assert cached_commit("nobody/nothing", None, "dataset") is None


@pytest.fixture
def rate_limited_vendor(hub_cache, tmp_path):
    """DeepSeek's API as a simulated vendor that admits about 10 requests a second: the
    baseline's requests, sent 64 at a time, meet sustained HTTP 429s."""
    from bench.serving import simulate_spec
    from bench.serving.simulate_http import SimulatedServer

    cfg = config(["experiment=r1_quick", "suite.limit=4", *simulated("r1_distill_qwen_1p5b", 200)])
    student = cfg.models["r1_distill_qwen_1p5b"]
    tm = task_manager(resolve_paths(cfg.suite.include_paths), cfg.suite.tasks)
    spec = simulate_spec.build(student, cfg, tm)
    spec.update(
        model="deepseek-flash",
        max_model_len=65536,
        source_kind="api",
        faults={"rate_limit_per_s": 0.05, "rate_limit_burst": 2},
    )  # per simulated second
    path = tmp_path / "vendor" / "deepseek-flash.sim.json"
    path.parent.mkdir()
    path.write_text(json.dumps(spec))
    student.name = "deepseek-flash"
    with SimulatedServer(student, path.with_suffix(".log"), spec_path=path) as endpoint:
        yield endpoint.base


def test_r1_quick_end_to_end_from_the_hub_cache(hub_cache, no_network, rate_limited_vendor, tmp_path, monkeypatch):
    """What `make bench` runs on a GPU box, here with the simulated engine; DeepSeek's API
    behind a rate limit, the OpenAI baseline without its key."""
    from bench.serving import dispatch

    monkeypatch.setattr(dispatch, "BACKOFF_S", 0.05)
    monkeypatch.setattr(dispatch, "BACKOFF_MAX_S", 0.5)
    monkeypatch.setenv("DEEPSEEK_API_KEY", "sk-test")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    overrides = [
        "experiment=r1_quick",
        "suite.limit=4",
        "suite.repeats=2",
        f"run.results_dir={tmp_path}",
        "run.max_retries=60",
        f"models.deepseek_flash_api.api.base_url={rate_limited_vendor}",
        *simulated("r1_distill_qwen_1p5b", 2000),
        *simulated("qwen25_math_1p5b", 2000),
    ]
    run_dir = run(overrides, tmp_path / "run")

    samples = pd.DataFrame(records.read_jsonl(run_dir / records.SAMPLES))
    counts = samples.groupby(["model", "task"]).size()
    models = ("r1_distill_qwen_1p5b", "qwen25_math_1p5b", "deepseek_flash_api")
    assert set(counts.index) == {(m, t) for m in models for t in R1}
    assert (counts == 4 * 2).all()
    assert samples.completion_tokens.gt(0).all() and samples.correct.isin([0.0, 1.0]).all()
    # The base model (4,096-token context) is cut at its own limit; the student may run to 32K.
    assert samples[samples.model == "qwen25_math_1p5b"].completion_tokens.max() <= 3072
    # The engine found each model's config.json in the Hub cache, as vLLM would.
    for name in models[:2]:
        assert "['LlamaForCausalLM']" in (run_dir / "servers" / f"{name}.log").read_text()
    # No key for GPT-6.2 Sol: left out, and the report says so at the top; DeepSeek's model ran.
    notes = json.loads((run_dir / records.NOTES).read_text())
    assert len(notes) == 1 and "OPENAI_API_KEY" in notes[0]
    report = (run_dir / "report.md").read_text()
    assert report.startswith("> **SIMULATED:") and "was not run: its API key is not in the environment" in report
    assert json.loads((run_dir / "manifest.json").read_text())["simulated"].startswith("SIMULATED")
    # GPQA is gated but in the cache: it ran without HF_TOKEN.
    assert "r1_gpqa_diamond" in set(samples.task)
    # The report bills the simulated boxes' compressed time, and the API by its tokens.
    summary = pd.read_csv(run_dir / "summary.csv").set_index(["model", "task"])
    assert set(summary.loc["deepseek_flash_api"].cost_basis) == {"api_tokens"}
    assert set(summary.loc["r1_distill_qwen_1p5b"].cost_basis) == {"device_time"}
    # Recomputed apart from bench.analysis.summarize: serving time x devices x $ per device-hour.
    prices = json.loads((run_dir / "prices.json").read_text())["models"]["r1_distill_qwen_1p5b"]
    runs = pd.DataFrame(records.read_jsonl(run_dir / "task_runs.jsonl")).set_index(["model", "task"])
    for task, row in summary.loc["r1_distill_qwen_1p5b"].iterrows():
        serving = runs.loc[("r1_distill_qwen_1p5b", task)].serving_s
        assert row.usd == pytest.approx(serving * prices["devices"] * prices["usd_per_device_hour"] / 3600, rel=1e-12)
    # The API model met sustained 429s and still answered each sample exactly once; the
    # dispatcher lowered its limit (bench/serving/ratelimit.py), so it was refused far less often than
    # the 62 of the first 64 sends a fixed limit would meet at once, and the run says so.
    vendor = json.loads(urllib.request.urlopen(rate_limited_vendor.removesuffix("/v1") + "/sim/stats").read())
    api = samples[samples.model == "deepseek_flash_api"]
    assert 5 < vendor["counts"]["http_429"] < 62 + len(api)
    assert vendor["counts"]["stop"] + vendor["counts"]["length"] == len(api)
    runs = {r["model"]: r for r in records.read_jsonl(run_dir / records.MODEL_RUNS)}
    assert runs["deepseek_flash_api"]["rate_limited"] == vendor["counts"]["http_429"]
    assert runs["deepseek_flash_api"]["lowest_in_flight"] < 64


def test_a_gated_task_without_token_or_copy_is_skipped_or_refused(hub_cache, monkeypatch, tmp_path):
    from bench.data import hub
    from bench.serving import availability

    monkeypatch.setattr(hub, "cached_commit", lambda *a, **k: None)  # nothing in the cache
    cfg = config(["experiment=r1_quick"])
    tm = task_manager(resolve_paths(cfg.suite.include_paths), cfg.suite.tasks)
    missing = {(m.kind, m.name) for m in availability.missing(cfg, tm)}
    assert ("task", "r1_gpqa_diamond") in missing
    errors = availability.gated_errors(cfg, tm)
    assert len(errors) == 1 and "HF_TOKEN" in errors[0] and "run.unavailable=skip" in errors[0]
    notes = availability.skip_missing(cfg, tm)
    assert cfg.suite.tasks == ["r1_aime24", "r1_math500"] and any("gpqa" in n for n in notes)
    monkeypatch.setattr(availability, "hub_token", lambda: "hf_xxx")
    cfg = config(["experiment=r1_quick"])
    assert ("task", "r1_gpqa_diamond") not in {(m.kind, m.name) for m in availability.missing(cfg, tm)}
