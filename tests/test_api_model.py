"""An API baseline end to end: lm-eval against an OpenAI-compatible endpoint the harness does
not start (a real vLLM server, started here), priced by tokens."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from bench.rundir import records
from bench.serving.serve import VllmServer
from conftest import ROOT, run_config

pytestmark = pytest.mark.e2e


def test_api_model_is_evaluated_and_priced_by_tokens(tmp_path, zoo_dir):
    teacher = run_config().models["tiny_teacher"]
    teacher.source = str(zoo_dir / "tiny_teacher")
    run_dir = tmp_path / "run"
    with VllmServer(teacher, tmp_path / "vendor" / "server.log") as endpoint:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench",
                "run",
                "~models.tiny_teacher",
                "~models.tiny_student",
                "~models.tiny_control",
                "~models.frontier_api",
                "+model@models.api=local_api",
                f"models.api.api.base_url={endpoint.base}",
                "suite.limit=15",
                f"run.results_dir={tmp_path}",
                f"hydra.run.dir={run_dir}",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert not (run_dir / "servers").exists(), "the harness must not start a server for an API model"

    samples = pd.DataFrame(records.read_jsonl(run_dir / "samples.jsonl"))
    summary = pd.read_csv(run_dir / "summary.csv")
    price = json.loads((run_dir / "prices.json").read_text())["models"]["local_api"]
    assert price["basis"] == "api_tokens" and price["output"] == 2.19
    assert set(summary.task) == {"smoke_arith", "smoke_think", "smoke_choice"}
    for row in summary.itertuples():
        g = samples[samples.task == row.task]
        assert len(g) == 15 and (g.prompt_tokens > 0).all()
        fresh = g.prompt_tokens.sum() - g.cached_prompt_tokens.sum()
        expected = (
            fresh * price["input"]
            + g.cached_prompt_tokens.sum() * price["cached_input"]
            + g.completion_tokens.sum() * price["output"]
        ) / 1e6
        assert row.cost_basis == "api_tokens"
        assert row.usd == pytest.approx(expected, rel=1e-12)
        if row.task == "smoke_choice":  # log-likelihood scoring: per processed (prompt + continuation) token
            tokens = g.prompt_tokens.sum() + g.completion_tokens.sum()
            assert row.usd_per_1m_processed_tokens == pytest.approx(expected / tokens * 1e6)
        else:
            assert row.usd_per_1m_generated_tokens == pytest.approx(expected / g.completion_tokens.sum() * 1e6)
    # It is the teacher behind the endpoint: it reasons, and it answers the reasoning task.
    think = samples[samples.task == "smoke_think"]
    assert (think.reasoning_tokens > 0).all()
    assert summary.set_index("task").accuracy["smoke_think"] > 0.6  # the teacher: 0.783 on all 300, 0.667 on these 15
