"""A Hydra multirun serves one model per job; `bench report` merges the jobs into one comparison."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from conftest import ROOT

pytestmark = pytest.mark.e2e


def test_one_job_per_model_then_one_merged_report(tmp_path, zoo_dir):
    sweep = tmp_path / "sweep"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "run",
            "-m",
            "run.only=tiny_teacher,tiny_student",
            "suite.limit=10",
            "suite.tasks=[smoke_arith,smoke_choice]",
            f"run.results_dir={tmp_path}",
            f"hydra.sweep.dir={sweep}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and (p / "summary.csv").exists())
    assert len(jobs) == 2
    assert [set(pd.read_csv(j / "summary.csv").model) for j in jobs] == [{"tiny_teacher"}, {"tiny_student"}]
    assert all(json.loads((j / "status.json").read_text())["status"] == "success" for j in jobs)

    merged = tmp_path / "merged"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "report", *map(str, jobs), "--out", str(merged)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = pd.read_csv(merged / "summary.csv")
    assert set(summary.model) == {"tiny_teacher", "tiny_student"} and len(summary) == 4
    for job in jobs:  # every merged row is the job's own row
        own = pd.read_csv(job / "summary.csv")
        for row in own.itertuples():
            match = summary[(summary.model == row.model) & (summary.task == row.task)]
            assert match.accuracy.item() == row.accuracy and match.completion_tokens.item() == row.completion_tokens
    paired = pd.read_csv(merged / "paired.csv")
    assert "tiny_student" in set(paired.model)  # compared with the teacher from the other job
    assert (merged / "report.html").is_file() and (merged / "table.tex").is_file()
