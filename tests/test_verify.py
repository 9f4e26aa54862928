"""`bench verify` misses nothing: every number of every derived file is rebuilt from the records
and compared to a relative tolerance only, and the manifest hashes every file it covers. One
tampering per file, each caught."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import runfolder
from bench import verify
from bench.report import build
from bench.rundir import manifest
from conftest import ROOT


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """The default run's shape, plus a benchmark with published figures (so reproduction.csv has rows)."""
    spec = runfolder.Spec(
        models=[
            runfolder.Model("tiny_teacher", "teacher", 0.8, reported_as="DeepSeek-R1"),
            *runfolder.Spec().models[1:],
            runfolder.FRONTIER,
        ],
        tasks=[*runfolder.Spec().tasks, runfolder.Task("aime24", 30)],
    )
    folder = runfolder.write(tmp_path_factory.mktemp("verify") / "run", spec)
    build(folder)
    return folder


@pytest.fixture(scope="module")
def scratch(run, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("scratch")
    verify.rebuild(run, folder)
    return folder


def test_a_run_folder_as_written_verifies(run):
    problems, checked = verify.check(run)
    assert problems == []
    assert any(line.startswith(f"{len(TAMPERINGS)} derived file hashes") for line in checked)
    rebuilt = next(line for line in checked if "rebuilt from the records and compared" in line)
    for name in manifest.OUTPUT_FILES:
        assert name in rebuilt, name


def reread(frame: pd.DataFrame, tmp_path: Path) -> pd.DataFrame:
    """Through a CSV file, as verify reads it."""
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    return verify._read_table(path)


def test_one_part_in_a_million_of_any_number_in_the_summary_is_a_mismatch(run, tmp_path):
    stored = verify._read_table(run / "summary.csv")
    fresh = verify._read_table(run / "summary.csv")
    assert verify.compare_tables("summary.csv", reread(stored, tmp_path), fresh) == []
    numeric = [c for c in stored.columns if pd.api.types.is_numeric_dtype(stored[c]) and stored[c].dtype != bool]
    assert len(numeric) > 60 and {"usd", "usd_per_correct", "usd_per_sample", "usd_per_correct_ci95_low"} <= set(
        numeric
    )
    missed = []
    for column in numeric:
        values = stored[column]
        row = next((i for i, v in values.items() if v == v and v not in (0, float("inf"), float("-inf"))), None)
        if row is None:
            continue  # no finite non-zero value to nudge
        tampered = stored.astype({column: float})
        tampered.loc[row, column] = values[row] * (1 + 1e-6)
        problems = verify.compare_tables("summary.csv", reread(tampered, tmp_path), fresh)
        if not any(f", {column}: on disk" in p for p in problems):
            missed.append(column)
    assert missed == []


def test_dollar_figures_of_1e_8_are_held_to_the_same_standard(run, tmp_path):
    """The issue's cases: $ per correct +15% with $ per sample +17%, and $ moved by 1.2e-6 of itself."""
    fresh = verify._read_table(run / "summary.csv")
    assert fresh.usd_per_sample.min() < 1e-4  # dollar figures far below pandas' default atol of 1e-8 relative reach
    tampered = fresh.copy()
    teacher = (tampered.model == "tiny_teacher") & (tampered.task == "smoke_arith")
    student = (tampered.model == "tiny_student") & (tampered.task == "smoke_arith")
    tampered.loc[teacher, "usd_per_correct"] *= 1.15
    tampered.loc[student, "usd_per_sample"] *= 1.17
    problems = verify.compare_tables("summary.csv", reread(tampered, tmp_path), fresh)
    assert any("usd_per_correct: on disk" in p and "tiny_teacher / smoke_arith" in p for p in problems)
    assert any("usd_per_sample: on disk" in p and "tiny_student / smoke_arith" in p for p in problems)
    tampered = fresh.copy()
    tampered.loc[teacher, "usd"] *= 1 + 1.2e-6
    assert verify.compare_tables("summary.csv", reread(tampered, tmp_path), fresh)


def _csv(name: str, column: str, change):
    def tamper(path: Path) -> None:
        frame = pd.read_csv(path)
        row = frame[column].first_valid_index()
        frame.loc[row, column] = change(frame.loc[row, column])
        frame.to_csv(path, index=False)

    return name, tamper


def _text(name: str, pattern: str, replace):
    def tamper(path: Path) -> None:
        text = path.read_text()
        new = re.sub(pattern, replace, text, count=1)
        assert new != text, f"{pattern!r} not found in {name}"
        path.write_text(new)

    return name, tamper


def _parquet(path: Path) -> None:
    frame = pd.read_parquet(path)
    frame.loc[0, "accuracy"] += 0.01
    frame.to_parquet(path, index=False)


def _json(path: Path) -> None:
    rows = json.loads(path.read_text())
    rows[0]["accuracy"] += 0.01
    path.write_text(json.dumps(rows, indent=2))


TAMPERINGS = [
    _csv("summary.csv", "usd_per_correct", lambda v: v * 1.15),
    ("summary.parquet", _parquet),
    ("summary.json", _json),
    _csv("paired.csv", "p_value", lambda v: 0.017),
    _csv("evidence.csv", "value", lambda v: v + 0.01),
    _csv("recognition.csv", "teacher_logprob_per_token", lambda v: v * 0.9),
    _csv("reproduction.csv", "delta_pts", lambda v: v + 1.0),
    _csv("length_buckets.csv", "accuracy", lambda v: min(1.0, v + 0.1)),
    _text("table.tex", r"& (0\.\d)(\d\d) &", lambda m: f"& {float(m.group(1)) + 0.1:.1f}{m.group(2)} &"),
    _text("report.md", r"keeps (\d)", lambda m: f"keeps {(int(m.group(1)) + 1) % 10}"),
    _text("report.html", r"keeps (\d)", lambda m: f"keeps {(int(m.group(1)) + 1) % 10}"),
    _text("pareto.svg", r"tiny_student", lambda m: "tiny_studeNt"),
    _text("cost_quality.svg", r"tiny_teacher", lambda m: "tiny_teacheR"),
    ("pareto.png", lambda path: path.write_bytes(path.read_bytes() + b"\0")),
    ("cost_quality.png", lambda path: path.write_bytes(path.read_bytes()[:-16])),
]


def test_every_derived_file_has_a_tampering_test():
    assert sorted(name for name, _ in TAMPERINGS) == sorted(manifest.OUTPUT_FILES)


@pytest.mark.parametrize("name,tamper", TAMPERINGS, ids=[name for name, _ in TAMPERINGS])
def test_one_tampering_per_file_is_caught_by_rebuilding_and_by_the_manifest(run, scratch, name, tamper):
    path = run / name
    original = path.read_bytes()
    try:
        tamper(path)
        rebuilt = verify.compare_outputs(run, scratch)
        hashed, _ = verify._hashes(run, verify.json.loads((run / manifest.MANIFEST).read_text()))
    finally:
        path.write_bytes(original)
    assert [p for p in rebuilt if p.startswith(name)] and all(p.startswith(name) for p in rebuilt), rebuilt
    assert hashed == [f"{name}: content differs from the manifest's sha256 (modified after the report was written)"]
    assert verify.compare_outputs(run, scratch) == []  # restored: nothing left over


def test_bench_verify_exit_codes(run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run, copy)

    def bench_verify() -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "bench", "verify", str(copy)], cwd=ROOT, capture_output=True, text=True, timeout=300
        )

    # The copy's report names the original folder: a path, the one difference allowed.
    assert str(run) in (copy / "report.md").read_text()
    ok = bench_verify()
    assert ok.returncode == 0 and ok.stdout.rstrip().endswith("verified"), ok.stdout + ok.stderr
    paired = pd.read_csv(copy / "paired.csv")
    paired.loc[paired.task == "all tasks", "p_value"] = 0.017
    paired.to_csv(copy / "paired.csv", index=False)
    bad = bench_verify()
    assert bad.returncode == 1
    assert "MISMATCH: paired.csv differs from the records: row" in bad.stdout and "p_value: on disk 0.017" in bad.stdout
    assert "MISMATCH: paired.csv: content differs from the manifest's sha256" in bad.stdout


def test_the_path_is_the_only_difference_allowed():
    stored = "# r\nRun folder: `/data/run`  \naccuracy 0.803\n"
    rebuilt = "# r\nRun folder: `/tmp/x1`  \naccuracy 0.803\n"
    assert verify._put_back_path(stored, rebuilt, "/tmp/x1") == stored
    tampered = stored.replace("0.803", "0.903")
    assert verify._put_back_path(tampered, rebuilt, "/tmp/x1") != tampered
    # A number changed on the path's own line is no path.
    assert (
        verify._put_back_path("Run folder: `/data/run` 0.9\n", "Run folder: `/tmp/x1` 0.8\n", "/tmp/x1")
        == "Run folder: `/tmp/x1` 0.8\n"
    )
