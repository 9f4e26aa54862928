"""The output-format registry: formats chosen by name, unknown names refused with the list, and
a new format added as one registered function, written from the same tables as the others."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import runfolder
from bench import verify
from bench.analysis import published
from bench.report import write_report
from bench.reporting import tables, writers
from bench.rundir import manifest, records, run_folders


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
        write_report(run_folders.load(run), run, formats=["md", "pdf"])
    assert sorted(p.name for p in run.iterdir()) == before


def test_a_new_format_is_one_registered_function(run, monkeypatch):
    monkeypatch.setattr(writers, "WRITERS", dict(writers.WRITERS))

    @writers.writer("json")
    def summary_json(t: tables.RunTables, out: Path) -> None:
        records.write_atomic(out / "summary.json", t.summary.to_json(orient="records"))

    t = tables.compute(run_folders.load(run), published.load())
    writers.write(t, run, ["json", "csv"])
    rows = json.loads((run / "summary.json").read_text())
    assert len(rows) == len(t.summary) and (run / "summary.csv").is_file()
    assert not (run / "report.md").exists()


def test_summary_json_round_trips_to_the_summary_table(run, tmp_path):
    t = tables.compute(run_folders.load(run), published.load())
    writers.write(t, tmp_path, ["json"])
    text = (tmp_path / "summary.json").read_text()
    rows = json.loads(text)  # strict JSON: NaN and inf would make the standard parser fail
    assert "NaN" not in text and "Infinity" not in text
    assert all(list(row) == list(t.summary.columns) for row in rows)  # keys in the summary's column order
    back = writers.read_table(tmp_path / "summary.json")
    expected = t.summary.replace([float("inf"), float("-inf")], float("nan"))  # JSON has no infinity: null
    assert back.isna().equals(expected.isna())
    pd.testing.assert_frame_equal(back, expected, check_dtype=False, check_exact=True)
    writers.write(t, tmp_path, ["json"])
    assert (tmp_path / "summary.json").read_text() == text  # same tables, same bytes


def test_the_files_a_format_declares_are_hashed_and_verified(monkeypatch):
    monkeypatch.setattr(writers, "WRITERS", dict(writers.WRITERS))

    @writers.writer("txt", files={"extra.txt": writers.TEXT, "extra.csv": writers.TABLE})
    def extra(t: tables.RunTables, out: Path) -> None:
        records.write_atomic(out / "extra.txt", "x\n")

    assert manifest.OUTPUT_FILES[-2:] == ("extra.txt", "extra.csv")
    assert {"extra.txt": writers.TEXT, "extra.csv": writers.TABLE}.items() <= verify.derived_files().items()
    assert verify.derived_files()["evidence.md"] is writers.TEXT  # `bench evidence`'s, no writer's
    assert "evidence.md" not in manifest.OUTPUT_FILES
