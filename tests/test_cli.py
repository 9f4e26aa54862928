"""The `bench` command as a user gets it: installed from a wheel, run from any folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from fake_openai import api_only_run, fake_endpoint


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The package built into a wheel from the working tree and installed into a folder of its
    own (no checkout beside it): returns that folder, with the `bench` script in bin/."""
    tmp = tmp_path_factory.mktemp("installed")
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    for name in files:
        if (ROOT / name).is_file():
            (tmp / "src" / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, tmp / "src" / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp / "wheel"), str(tmp / "src")],
        check=True,
        capture_output=True,
    )
    wheel = next((tmp / "wheel").glob("*.whl"))
    subprocess.run(
        [*pip, "install", "--no-deps", "--target", str(tmp / "site"), str(wheel)], check=True, capture_output=True
    )
    return tmp / "site"


def test_the_installed_bench_command_runs_from_any_folder(installed, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(installed), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    bench = [str(installed / "bin" / "bench")]

    def run(*args: str) -> str:
        proc = subprocess.run([*bench, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
        return proc.stdout + proc.stderr

    assert f"file://{installed}/bench/conf " in run("run", "--info", "searchpath")  # configs inside the package
    run("zoo")  # the shipped weights, materialized into ./zoo
    assert (tmp_path / "zoo" / "tiny_teacher" / "config.json").is_file()
    with fake_endpoint() as (base, seen):
        run("run", *api_only_run(base))  # conf/, the task files, ./zoo's tokenizer, ./results
    assert len(seen.requests) == 3
    assert "verified" in run("verify", "results/latest")
    assert not (installed / "results").exists() and not (installed / "zoo").exists()


def test_python_m_bench_run_is_bench_run(tmp_path):
    """`python -m bench run`, the `bench run` script and `make bench` (which calls the former)
    parse the same overrides into the same config."""
    make = (ROOT / "Makefile").read_text()
    assert "$(PY) -m bench run $(DEFAULT_EXPERIMENT) $(ARGS)" in make  # DEFAULT_EXPERIMENT: r1_quick with a GPU
    jobs = [
        subprocess.run(
            [*cmd, "run", "suite.limit=7", "--cfg", "job"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        for cmd in ([sys.executable, "-m", "bench"], [str(Path(sys.executable).parent / "bench")])
    ]
    assert jobs[0].returncode == 0, jobs[0].stderr[-2000:]
    assert jobs[0].stdout == jobs[1].stdout and "limit: 7" in jobs[0].stdout
