"""Bad input fails before any server starts, with one message that names the fix."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT


def run_bench(tmp_path: Path, *overrides: str) -> tuple[subprocess.CompletedProcess, Path, float]:
    run_dir = tmp_path / "run"
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "bench.run", f"hydra.run.dir={run_dir}",
                           f"run.results_dir={tmp_path}", *overrides],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    return proc, run_dir, time.perf_counter() - t0


@pytest.mark.parametrize("overrides,message", [
    (["models.tiny_student.source=/no/such/folder"], "no model folder at /no/such/folder"),
    (["suite.tasks=[smoke_arith,smoke_algebra]"], "unknown task 'smoke_algebra'"),
    (["hardware=h100"], "nvidia-smi finds none: use hardware=cpu"),
    (["suite.repeats=4"], "set suite.repeats=1"),
    (["suite.limit=0"], "suite.limit=0: must be at least 1"),
    (["models.tiny_teacher.role=student", "models.tiny_student.role=teacher", "models.tiny_control.role=teacher"],
     "more than one teacher"),
    (["models.tiny_teacher.mode=chat"], "is scored by log-likelihood but model 'tiny_teacher' is a chat model"),
    (["models.tiny_teacher.api.base_url=http://127.0.0.1:9/v1", "models.tiny_teacher.api.api_key_env=BENCH_NO_SUCH_KEY",
      "models.tiny_teacher.source_kind=api"], "BENCH_NO_SUCH_KEY (its API key) is not set"),
    (["models.tiny_teacher.source_kind=api"], "set models.tiny_teacher.api.base_url"),
    (["+model@models.o1=o1_api", "models.o1.mode=completions", "suite.tasks=[smoke_arith]"],
     "api.client=openai-chat-completions does not match mode=completions"),
    (["models.tiny_teacher.source_kind=api"], "without token prices: set models.tiny_teacher.price.input"),
])
def test_bad_input_fails_before_any_server(tmp_path, zoo_dir, overrides, message):
    proc, run_dir, seconds = run_bench(tmp_path, *overrides)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert message in out
    assert not (run_dir / "servers").exists(), "a server was started"
    assert not (run_dir / "samples.jsonl").exists()


def test_unknown_config_option_lists_the_available_ones(tmp_path):
    proc, _, _ = run_bench(tmp_path, "+model@models.x=llama9")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "llama9" in out and "tiny_teacher" in out and "tiny_student" in out
