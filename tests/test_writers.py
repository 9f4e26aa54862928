"""The output-format registry: formats chosen by name, unknown names refused with the list, and
a new format added as one registered function, written from the same tables as the others."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import runfolder
from bench import records, reported, runs, tables, writers
from bench.report import write_report


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return runfolder.write(tmp_path_factory.mktemp("runs") / "run")


def test_unknown_format_names_the_available_ones():
    with pytest.raises(ValueError) as e:
        writers.select(["csv", "jsonl"])
    assert "'jsonl'" in str(e.value) and "available: csv, parquet, tex, plots, md, html" in str(e.value)


def test_formats_run_in_registry_order():
    # html embeds the figures plots wrote, so the order asked for does not matter.
    assert writers.select(["html", "plots"]) == ["plots", "html"]
    assert writers.select() == list(writers.WRITERS)


def test_unknown_format_fails_before_anything_is_written(run):
    before = sorted(p.name for p in run.iterdir())
    with pytest.raises(ValueError, match="unknown report format"):
        write_report(runs.load(run), run, formats=["md", "pdf"])
    assert sorted(p.name for p in run.iterdir()) == before


def test_a_new_format_is_one_registered_function(run, monkeypatch):
    monkeypatch.setattr(writers, "WRITERS", dict(writers.WRITERS))

    @writers.writer("json")
    def summary_json(t: tables.RunTables, out: Path) -> None:
        records.write_atomic(out / "summary.json", t.summary.to_json(orient="records"))

    t = tables.compute(runs.load(run), reported.load())
    writers.write(t, run, ["json", "csv"])
    rows = json.loads((run / "summary.json").read_text())
    assert len(rows) == len(t.summary) and (run / "summary.csv").is_file()
    assert not (run / "report.md").exists()
