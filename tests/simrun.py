"""Run the harness against simulated servers (tests/test_paper_scale.py,
tests/test_hub_offline.py): the real config, the real pipeline, no vLLM."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import run_config


def simulated(key: str, time_scale: float, **settings) -> list[str]:
    """Overrides that serve model ``key`` from the simulated engine."""
    out = [f"models.{key}.serve.simulate.enabled=true", f"models.{key}.serve.simulate.time_scale={time_scale}"]
    return out + [f"models.{key}.serve.simulate.{k}={v}" for k, v in settings.items()]


def config(overrides: list[str]):
    return run_config(overrides)


def run(overrides: list[str], run_dir: Path) -> Path:
    """``bench run OVERRIDES`` with ``run_dir`` as its folder, in this process."""
    from bench.evaluation.logs import quiet_lm_eval
    from bench.run import execute

    quiet_lm_eval()
    return execute(config(overrides), run_dir)


def run_apart(overrides: list[str], run_dir: Path, report: bool = True) -> Path:
    """``run`` in a fresh interpreter: nothing of the test session (its leftover threads, a heap
    for the garbage collector to walk) shares the process whose clock the run measures.
    ``report=False`` skips the report (a paper-scale run's would only add time)."""
    code = (
        "import json, sys; sys.path[:0] = json.loads(sys.argv[1]); import simrun; "
        "simrun._main(json.loads(sys.argv[2]), sys.argv[3], sys.argv[4] == '1')"
    )
    subprocess.run(
        [sys.executable, "-c", code, json.dumps(sys.path), json.dumps(overrides), str(run_dir), "1" if report else "0"],
        check=True,
        timeout=1800,
    )
    return run_dir


def _main(overrides: list[str], run_dir: str, report: bool) -> None:
    if not report:
        import pandas as pd

        import bench.report

        columns = ["task", "model", "role", "accuracy", "completion_tokens", "usd"]
        bench.report.build = lambda run_dir, partial=False: pd.DataFrame(columns=columns)
    run(overrides, Path(run_dir))
