"""The real pipeline: vLLM servers on the tiny zoo, lm-eval, records, summary, report.

Runs `python -m bench.run` exactly as `make bench` does, on a subset of each task.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from bench import records
from conftest import ROOT
from test_serve import vllm_children

pytestmark = pytest.mark.e2e
LIMIT = 40


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, zoo_dir) -> Path:
    results = tmp_path_factory.mktemp("results")
    run_dir = results / "smoke" / "run"
    proc = subprocess.run([sys.executable, "-m", "bench.run", f"suite.limit={LIMIT}",
                           f"run.results_dir={results}", f"hydra.run.dir={run_dir}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return run_dir


def test_run_folder_has_every_output(smoke_run):
    for name in ("summary.csv", "report.md", "cost_quality.png", "samples.jsonl", "task_runs.jsonl",
                 "servers.jsonl", "config.json", ".hydra/config.yaml"):
        assert (smoke_run / name).is_file(), name
    assert json.loads((smoke_run / "status.json").read_text())["status"] == "success"
    assert (smoke_run.parent.parent / "latest").resolve() == smoke_run.resolve()
    assert (smoke_run / "cost_quality.png").stat().st_size > 10_000


def test_no_vllm_process_survives_the_run(smoke_run):
    assert (smoke_run / "servers" / "tiny_teacher.log").is_file()
    assert not vllm_children(smoke_run)


def test_summary_accuracy_is_the_mean_of_the_records(smoke_run):
    summary = pd.read_csv(smoke_run / "summary.csv")
    samples = pd.DataFrame(records.read_jsonl(smoke_run / "samples.jsonl"))
    assert len(summary) == 9  # 3 models x 3 tasks
    assert set(summary.role) == {"teacher", "student", "control"}
    for _, row in summary.iterrows():
        g = samples[(samples.model == row.model) & (samples.task == row.task)]
        assert len(g) == row.n == LIMIT
        assert row.accuracy == pytest.approx(g.correct.mean(), abs=1e-12)
        assert row.completion_tokens == g.completion_tokens.sum()
        assert g.doc_id.tolist() == list(range(LIMIT))


def test_our_accuracy_agrees_with_lm_eval(smoke_run):
    summary = pd.read_csv(smoke_run / "summary.csv")
    for _, row in summary.iterrows():
        result = json.loads((smoke_run / "lm_eval" / f"{row.model}__{row.task}.json").read_text())
        metrics = result["results"][row.task]
        value = next(v for k, v in metrics.items() if k.startswith(row.metric + ","))
        assert row.accuracy == pytest.approx(value, abs=1e-12)


def test_per_sample_metering_is_filled_in(smoke_run):
    samples = pd.DataFrame(records.read_jsonl(smoke_run / "samples.jsonl"))
    assert (samples.prompt_tokens > 0).all()
    assert (samples.latency_s > 0).all()
    gen = samples[samples.task != "smoke_choice"]
    assert (gen.completion_tokens > 0).all()
    assert set(gen.finish_reason) <= {"stop", "length"}
    think = samples[(samples.task == "smoke_think") & (samples.role == "teacher")]
    assert (think.reasoning_tokens > 0).mean() > 0.9
    # "think:47+85=" is 12 characters; the tokenizer is character-level.
    assert (think.prompt_tokens == 12).all()
    choice = samples[samples.task == "smoke_choice"]
    assert (choice.n_requests == 4).all()


def test_cost_follows_from_wall_time_and_price(smoke_run):
    summary = pd.read_csv(smoke_run / "summary.csv")
    runs = pd.DataFrame(records.read_jsonl(smoke_run / "task_runs.jsonl"))
    cfg = json.loads((smoke_run / "config.json").read_text())
    price = cfg["hardware"]["usd_per_device_hour"] * cfg["hardware"]["count"]
    for _, row in summary.iterrows():
        wall = runs[(runs.model == row.model) & (runs.task == row.task)].wall_s.item()
        assert row.usd == pytest.approx(wall * price / 3600)


def test_teacher_beats_student_beats_chance_on_the_subset(smoke_run):
    summary = pd.read_csv(smoke_run / "summary.csv")
    mean = summary.groupby("role").accuracy.mean()
    assert mean["teacher"] > mean["student"]
    choice = summary[summary.task == "smoke_choice"].set_index("role")
    assert choice.accuracy["student"] > choice.chance["student"]


def test_report_rebuilds_from_records_without_a_server(smoke_run, tmp_path):
    before = (smoke_run / "summary.csv").read_text()
    (smoke_run / "summary.csv").unlink()
    env = {**os.environ, "PATH": os.environ.get("PATH", "")}
    proc = subprocess.run([sys.executable, "-m", "bench", "report", str(smoke_run)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    assert (smoke_run / "summary.csv").read_text() == before
    assert not vllm_children(smoke_run)


def test_interrupted_run_stops_its_server_and_exits_nonzero(tmp_path, zoo_dir):
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "bench.run", "suite.limit=5", f"run.results_dir={tmp_path}",
                             f"hydra.run.dir={run_dir}"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = run_dir / "servers" / "tiny_teacher.log"
    deadline = time.time() + 300
    while time.time() < deadline and not (log.exists() and "Starting vLLM" in log.read_text(errors="replace")):
        time.sleep(1)
    assert log.exists(), "the teacher's server never started"
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=120) != 0
    assert json.loads((run_dir / "status.json").read_text())["status"] == "cancelled"
    assert not vllm_children(run_dir)


def test_killed_harness_takes_its_server_down(tmp_path, zoo_dir):
    """SIGKILL cannot be caught; the server must still go (the kernel's parent-death signal)."""
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "bench.run", "suite.limit=5", f"run.results_dir={tmp_path}",
                             f"hydra.run.dir={run_dir}"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = run_dir / "servers" / "tiny_teacher.log"
    deadline = time.time() + 300
    while time.time() < deadline and not (log.exists() and "Starting vLLM" in log.read_text(errors="replace")):
        time.sleep(1)
    assert vllm_children(run_dir), "the teacher's server never started"
    proc.kill()
    proc.wait(timeout=30)
    deadline = time.time() + 60
    while vllm_children(run_dir) and time.time() < deadline:
        time.sleep(1)
    assert not vllm_children(run_dir)
