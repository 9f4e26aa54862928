"""``bench fetch`` against a local folder laid out like the Hub cache (HF_HUB_CACHE), offline:
what a run reads from the Hub, the commits the cache holds, what is missing; and the resolved
commits in the manifest."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bench.data import hub
from conftest import ROOT
from hubcache import fake_repo

R1_SMALL = ["experiment=r1_distill", "run.only=r1_distill_qwen_1p5b"]
MODEL = "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"
DATASETS = {
    "Maxwell-Jia/AIME_2024": "r1_aime24",
    "HuggingFaceH4/MATH-500": "r1_math500",
    "Idavidrein/gpqa": "r1_gpqa_diamond",
}


def bench_fetch(cache, *overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "bench", "fetch", *overrides],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def fill(cache) -> dict[str, str]:
    """The model's files and the three data sets, as downloads leave them; their commits."""
    commits = {
        MODEL: fake_repo(
            cache,
            MODEL,
            {
                "config.json": json.dumps({"max_position_embeddings": 131072}),
                "model.safetensors": b"\0" * 3_000_000,
                "tokenizer.json": "{}",
            },
        )
    }
    for repo in DATASETS:
        commits[repo] = fake_repo(cache, repo, {"data/test.parquet": b"\1" * 1000}, repo_type="dataset")
    return commits


def test_offline_fetch_names_what_is_missing_then_what_the_cache_holds(tmp_path):
    empty = bench_fetch(tmp_path, *R1_SMALL)
    assert empty.returncode == 1, empty.stderr[-3000:]
    assert "4 not in the cache, and HF_HUB_OFFLINE is set" in empty.stdout
    assert f"model   {MODEL} @ main -> -  0.00 GB  missing  (for r1_distill_qwen_1p5b)" in empty.stdout

    commits = fill(tmp_path)
    done = bench_fetch(tmp_path, *R1_SMALL)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert f"Hub cache: {tmp_path}" in done.stdout
    assert f"model   {MODEL} @ main -> {commits[MODEL]}  0.00 GB  cached  (for r1_distill_qwen_1p5b)" in done.stdout
    for repo, task in DATASETS.items():
        assert f"dataset {repo} @ main -> {commits[repo]}  0.00 GB  cached  (for {task})" in done.stdout
    assert "not in the cache" not in done.stdout


def test_a_pinned_revision_is_fetched_and_reported_at_its_own_commit(tmp_path):
    fill(tmp_path)
    v2 = fake_repo(
        tmp_path, MODEL, {"config.json": "{}", "model.safetensors": b"\2" * 10}, refs=("v2",), commit="2" * 40
    )
    out = bench_fetch(tmp_path, *R1_SMALL, "models.r1_distill_qwen_1p5b.serve.revision=v2")
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    assert f"{MODEL} @ v2 -> {v2}" in out.stdout
    missing = bench_fetch(tmp_path, *R1_SMALL, "models.r1_distill_qwen_1p5b.serve.revision=v3")
    assert missing.returncode == 1 and f"{MODEL} @ v3 -> -" in missing.stdout


def test_a_run_without_hub_sources_has_nothing_to_fetch(tmp_path, zoo_dir):
    out = bench_fetch(tmp_path, f"zoo_dir={zoo_dir}")
    assert out.returncode == 0 and "nothing to fetch" in out.stdout


def test_the_manifest_records_the_commit_each_hub_source_resolves_to(tmp_path, monkeypatch):
    from bench.compose import compose
    from bench.evaluation.evaluate import task_manager
    from bench.rundir import manifest
    from bench.validate import resolve_paths

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    commits = fill(tmp_path)
    cfg = compose(R1_SMALL)
    sources = hub.sources(cfg, task_manager(resolve_paths(cfg.suite.include_paths), cfg.suite.tasks))
    rows = {r["repo_id"]: r for r in manifest.hub_revisions(sources, ask_hub=False)}
    assert set(rows) == {MODEL, *DATASETS}
    assert all(rows[repo]["commit"] == commits[repo] and rows[repo]["found_in"] == "cache" for repo in rows)
    assert rows[MODEL]["used_by"] == ["r1_distill_qwen_1p5b"] and rows[MODEL]["repo_type"] == "model"


def test_bytes_to_download_count_only_the_files_vllm_reads_and_the_cache_lacks():
    files = [
        ("model-00001.safetensors", 5_000),
        ("model-00002.safetensors", 7_000),
        ("config.json", 10),
        ("original/consolidated.pth", 99_000),
        ("README.md", 3),
    ]
    assert hub.bytes_missing(files, hub.MODEL_FILES, set()) == 12_010
    assert hub.bytes_missing(files, hub.MODEL_FILES, {"model-00001.safetensors", "config.json"}) == 7_000
    assert hub.bytes_missing(files, None, set()) == 111_013


def test_fetch_refuses_a_download_the_disk_cannot_hold(tmp_path, monkeypatch, capsys):
    from bench import fetch

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(fetch, "model_bytes_missing", lambda source: 690 * 10**9)
    monkeypatch.setattr(fetch, "free_bytes", lambda folder: 100 * 10**9)
    source = hub.Source("deepseek-ai/DeepSeek-R1", "model", None, ("teacher",))
    with pytest.raises(SystemExit, match="690.0 GB to download but 100.0 GB free in .*point HF_HUB_CACHE"):
        fetch.check_room([source])
