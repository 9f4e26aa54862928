"""Write a run's report from the records on disk: tables, plots, ``report.md`` and ``report.html``.

    python -m bench report results/latest                   # rebuild in place, no model, no server
    python -m bench report RUN_A RUN_B --out results/merged/x   # several runs as one comparison

Reads only run folders (``samples.jsonl``, ``task_runs.jsonl``, ``servers.jsonl``,
``recognition.jsonl``, ``config.json``, ``prices.json``, ``versions.json``, ``lm_eval/``) and the
reported figures in ``bench/reference/``. Never imports vLLM, torch or lm-eval. The tables are
computed in ``bench/reporting/tables.py``, rendered in ``bench/reporting/document.py`` and written by the format
writers of ``bench/reporting/writers.py``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from bench.analysis import published
from bench.reporting import document, tables, writers
from bench.rundir import manifest, records, run_folders


def build(run_dir: Path, partial: bool = False) -> pd.DataFrame:
    """Recompute everything from a run folder's records and write every output into it.

    ``partial`` labels the report PARTIAL (records of an unfinished run); the caller decides.
    """
    return write_report(run_folders.load(run_dir), run_dir, partial=partial)


def rebuild(run_dirs: list[Path], out_dir: Path | None, partial: bool) -> Path:
    """``bench report``: one run folder rebuilt in place, or several merged into ``out_dir``.

    Refuses runs whose status is not ``success`` unless ``partial``; then labels the report.
    """
    loaded = [run_folders.load(d.resolve()) for d in run_dirs]
    unfinished = [f"{r.folders[0]} (status: {r.status})" for r in loaded if r.status != "success"]
    if unfinished and not partial:
        raise SystemExit(
            "not finished: " + "; ".join(unfinished) + ". Its records may be incomplete: "
            "rerun it to completion, or pass --partial to report what is there (labelled PARTIAL)"
        )
    if len(loaded) == 1 and out_dir is None:
        write_report(loaded[0], loaded[0].folders[0], partial=bool(unfinished))
        return loaded[0].folders[0]
    try:
        merged = run_folders.merge(loaded)
    except run_folders.MergeError as e:
        raise SystemExit(f"cannot merge these runs: {e}") from None
    assert out_dir is not None, "several runs are merged into out_dir (bench report names one)"
    out_dir = out_dir.resolve()
    if out_dir in {r.folders[0] for r in loaded}:
        raise SystemExit(f"--out {out_dir} is one of the runs being merged; name a new folder")
    write_report(run_folders.write_records(merged, out_dir), out_dir, partial=bool(unfinished))
    return out_dir


def write_report(
    run: run_folders.Run, out: Path, partial: bool = False, formats: Iterable[str] | None = None
) -> pd.DataFrame:
    """Compute every table of ``run``, write them into ``out`` in ``formats`` (None: all
    registered writers) and hash the outputs into the manifest; returns the summary."""
    formats = writers.select(formats)  # an unknown format fails before anything is computed
    t = tables.compute(run, published.load(), partial)
    writers.write(t, out, formats)
    manifest.record_outputs(out)
    return t.summary


def write_evidence(run_dir: Path) -> str:
    """``bench evidence``: the distillation evidence of a run folder, written as ``evidence.csv``,
    ``recognition.csv`` and ``evidence.md``; returns the markdown."""
    samples = pd.DataFrame(records.read_jsonl(run_dir / records.SAMPLES))
    if samples.empty:
        raise SystemExit(f"{run_dir}: no per-sample records; nothing to compare")
    seed = json.loads((run_dir / "config.json").read_text())["run"]["seed"]
    ev = tables.evidence_tables(samples, seed, pd.DataFrame(records.read_jsonl(run_dir / records.RECOGNITION)))
    writers.write_csv(writers.evidence_csv(ev), run_dir)
    text = document.evidence_markdown(ev)
    records.write_atomic(run_dir / "evidence.md", text)
    return text
