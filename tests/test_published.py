"""Published figures as data: loading both table layouts, the task mapping, reproduction deltas."""

from __future__ import annotations

import importlib.util
import math
import re
from pathlib import Path

import pandas as pd
import pytest

import runfolder
from bench.analysis import published
from bench.report import build


@pytest.fixture(scope="module")
def ref() -> published.Reference:
    return published.load()


def value(ref, model, benchmark, metric) -> list[float]:
    v = ref.values
    return sorted(v[(v.model == model) & (v.benchmark == benchmark) & (v.metric == metric)].value)


def test_both_layouts_are_read_with_their_sources(ref):
    assert value(ref, "DeepSeek-R1-Distill-Qwen-7B", "aime2024", "pass@1") == [55.5]
    assert value(ref, "DeepSeek-R1-Distill-Qwen-7B", "aime2024", "cons@64") == [83.3]
    assert value(ref, "DeepSeek-R1", "math500", "pass@1") == [97.3]  # main table: benchmarks as rows
    assert math.isnan(
        pd.read_csv(published.REFERENCE_DIR / "deepseek_r1_main_table.csv")
        .set_index("benchmark")
        .loc["MMLU-Pro", "o1-1217"]
    )
    assert value(ref, "o1-1217", "mmlu_pro", "exact_match") == []  # the empty cell is no figure
    # The two tables disagree on LiveCodeBench for GPT-4o: both kept, each with its file.
    assert value(ref, "GPT-4o-0513", "livecodebench", "pass@1") == [32.9, 34.2]
    same = ref.values[
        (ref.values.model == "GPT-4o-0513") & (ref.values.benchmark == "aime2024") & (ref.values.metric == "pass@1")
    ]
    assert len(same) == 1 and same.source.item() == "deepseek_r1_distill_table.csv + deepseek_r1_main_table.csv"


def test_every_source_cell_is_accounted_for(ref):
    distill = pd.read_csv(published.REFERENCE_DIR / "deepseek_r1_distill_table.csv")
    main = pd.read_csv(published.REFERENCE_DIR / "deepseek_r1_main_table.csv")
    cells = (
        distill.drop(columns=["model", "role"]).notna().sum().sum() + main.drop(columns="benchmark").notna().sum().sum()
    )
    merged = ref.values.source.str.count(r"\+") + 1
    assert merged.sum() == cells


def test_an_unknown_column_is_an_error_that_names_the_fix():
    tables = {"t.csv": pd.DataFrame({"model": ["m"], "role": ["x"], "new_bench_pass1": [1.0]})}
    with pytest.raises(ValueError, match="no entry in columns.csv for \\['new_bench_pass1'\\]"):
        published.tidy(tables, pd.DataFrame(columns=["file", "label", "benchmark", "metric", "unit", "note"]))


def test_mapped_task_names_exist_and_benchmarks_are_in_the_tables(ref):
    """Every mapped task is defined by lm-eval or by this repository's task folders."""
    lm_eval_tasks = Path(importlib.util.find_spec("lm_eval").submodule_search_locations[0]) / "tasks"
    ours = Path(published.__file__).parent.parent / "tasks"
    defined = {
        m
        for folder in (lm_eval_tasks, ours)
        for p in folder.rglob("*.yaml")
        for m in re.findall(r"^task:\s*(\S+)\s*$", p.read_text(errors="replace"), flags=re.M)
    }
    assert set(ref.tasks.task) <= defined, set(ref.tasks.task) - defined
    assert set(ref.tasks.benchmark) <= set(ref.values.benchmark)


def summary_row(model: str, task: str, accuracy: float, low: float, high: float, repeats: int = 1, cons=math.nan):
    return {
        "model": model,
        "task": task,
        "accuracy": accuracy,
        "ci95_low": low,
        "ci95_high": high,
        "repeats": repeats,
        "cons_at_k": cons,
    }


def test_reproduction_delta_and_whether_the_reported_value_is_inside(ref):
    summary = pd.DataFrame(
        [
            summary_row("s", "aime24", 0.50, 0.40, 0.60, repeats=64, cons=0.8),
            summary_row("t", "gpqa_diamond_zeroshot", 0.80, 0.75, 0.85),
            summary_row("x", "smoke_arith", 0.5, 0.4, 0.6),
        ]
    )
    names = {"s": "DeepSeek-R1-Distill-Qwen-7B", "t": "DeepSeek-R1", "x": "DeepSeek-R1"}
    repro = published.reproduction(summary, ref, names).set_index(["model", "metric"])
    assert repro.loc[("s", "pass@1")].delta_pts == pytest.approx(50 - 55.5)
    assert repro.loc[("s", "pass@1")].inside_ci95 is True or repro.loc[("s", "pass@1")].inside_ci95 == True  # noqa: E712
    assert repro.loc[("s", "cons@64")].delta_pts == pytest.approx(80 - 83.3)  # k = 64 matches cons@64
    assert repro.loc[("t", "pass@1")].delta_pts == pytest.approx(80 - 71.5)
    assert not repro.loc[("t", "pass@1")].inside_ci95
    assert "x" not in repro.index.get_level_values("model")  # smoke_arith maps to no benchmark
    attached = published.attach(summary, repro.reset_index(), names).set_index("model")
    assert attached.loc["s"].reported_accuracy == pytest.approx(0.555)
    assert attached.loc["t"].reproduction_delta_pts == pytest.approx(8.5)
    assert math.isnan(attached.loc["x"].reproduction_delta_pts) and pd.isna(attached.loc["x"].reported_source)


def test_unknown_reported_as_is_named(ref):
    msgs = published.unknown_names({"s": "DeepSeek-R1-Distil-Qwen-7B", "t": "DeepSeek-R1"}, ref)
    assert len(msgs) == 1 and "s: reported_as 'DeepSeek-R1-Distil-Qwen-7B' is not in bench/reference" in msgs[0]


def test_a_run_whose_model_and_task_map_to_a_reported_row(tmp_path):
    """Synthetic records through the real build: reported rows and the delta in every output."""
    spec = runfolder.Spec(
        models=[
            runfolder.Model("r1", "teacher", 0.85, reported_as="DeepSeek-R1"),
            runfolder.Model("qwen7b", "student", 0.6, reported_as="DeepSeek-R1-Distill-Qwen-7B"),
            runfolder.Model("ctrl", "control", 0.4),
        ],
        tasks=[runfolder.Task("aime24", 30), runfolder.Task("smoke_arith", 20)],
        repeats=4,
    )
    run = runfolder.write(tmp_path / "run", spec)
    summary = build(run).set_index(["model", "task"])
    row = summary.loc[("qwen7b", "aime24")]
    assert row.reported_as == "DeepSeek-R1-Distill-Qwen-7B" and row.reported_accuracy == pytest.approx(0.555)
    assert row.reproduction_delta_pts == pytest.approx(100 * (row.accuracy - 0.555))
    assert row.reported_in_ci95 == (row.ci95_low <= 0.555 <= row.ci95_high)
    assert math.isnan(summary.loc[("ctrl", "aime24")].reproduction_delta_pts)
    csv = pd.read_csv(run / "summary.csv")
    assert {"reported_as", "reported_accuracy", "reproduction_delta_pts", "reported_in_ci95"} <= set(csv.columns)
    md = (run / "report.md").read_text()
    assert "| aime24 | *DeepSeek-R1-Distill-Qwen-7B* | reported | 0.555 |" in md
    assert f"| aime24 | qwen7b | DeepSeek-R1-Distill-Qwen-7B | pass@1 | {100 * row.accuracy:.1f}" in md
    assert f"{row.reproduction_delta_pts:+.1f}" in md
    html = (run / "report.html").read_text()
    assert "DeepSeek-R1-Distill-Qwen-7B" in html and "<td>reported</td>" in html
    tex = (run / "table.tex").read_text()
    assert r"aime24 & DeepSeek-R1-Distill-Qwen-7B & reported & 0.555 & -- &" in tex
    assert "GPT-4o" not in tex  # the paper table carries only the counterparts
    assert len(pd.read_csv(run / "reproduction.csv")) == 2  # r1 and qwen7b on aime24, pass@1
