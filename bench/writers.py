"""The report's output formats: one writer per format, registered by name.

A writer takes a run's tables (``bench/tables.py``) and the output folder and writes its files
there (atomic writes). Adding a format is one function under ``@writer("name")``; ``write`` runs
the chosen ones in the order they are registered, which is the order the files depend on
(``html`` embeds the figures ``plots`` wrote).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd

from bench import document, paper, plots, records
from bench.tables import EvidenceTables, RunTables

Writer = Callable[[RunTables, Path], None]

WRITERS: dict[str, Writer] = {}
"""Every output format, by name, in the order ``write`` runs them."""


def writer(name: str) -> Callable[[Writer], Writer]:
    """Register a writer as the format ``name``."""
    def register(fn: Writer) -> Writer:
        WRITERS[name] = fn
        return fn
    return register


def select(formats: Iterable[str] | None = None) -> list[str]:
    """The formats to write, in registry order (None: all); an unknown name is an error."""
    wanted = list(WRITERS) if formats is None else list(formats)
    unknown = [f for f in wanted if f not in WRITERS]
    if unknown:
        raise ValueError(f"unknown report format {', '.join(map(repr, unknown))} "
                         f"(available: {', '.join(WRITERS)})")
    return [f for f in WRITERS if f in wanted]


def write(t: RunTables, out: Path, formats: Iterable[str] | None = None) -> None:
    """Write ``t`` into ``out`` in each of ``formats`` (None: every registered format)."""
    for name in select(formats):
        WRITERS[name](t, out)


def evidence_csv(ev: EvidenceTables) -> dict[str, pd.DataFrame]:
    """The evidence tables by file name (also written alone by ``bench evidence``)."""
    return {"evidence.csv": ev.pairs, "recognition.csv": ev.recognition}


def write_csv(frames: dict[str, pd.DataFrame], out: Path) -> None:
    """Each table as ``out / name``, without the index."""
    for name, frame in frames.items():
        records.write_atomic(out / name, frame.to_csv(index=False))


@writer("csv")
def csv_tables(t: RunTables, out: Path) -> None:
    """Every table a reader may load: summary, length buckets, paired, reproduction, evidence."""
    write_csv({"summary.csv": t.summary, "length_buckets.csv": t.buckets, "paired.csv": t.paired,
               "reproduction.csv": t.reproduction, **evidence_csv(t.evidence)}, out)


@writer("parquet")
def parquet_summary(t: RunTables, out: Path) -> None:
    """The summary with its column types kept."""
    records.write_atomic(out / "summary.parquet", t.summary.to_parquet(index=False))


@writer("tex")
def tex_table(t: RunTables, out: Path) -> None:
    """The paper table (booktabs), with the counterparts' published rows only."""
    records.write_atomic(out / "table.tex", paper.table_tex(t.summary, t.counterparts))


@writer("plots")
def plot_figures(t: RunTables, out: Path) -> None:
    """The cost-quality and Pareto figures, each as PNG and SVG."""
    plots.cost_quality(t.summary, out / "cost_quality.png")
    plots.pareto(t.summary, t.overall, out / "pareto.png")


@writer("md")
def md_report(t: RunTables, out: Path) -> None:
    """``report.md``."""
    records.write_atomic(out / "report.md", document.markdown(t, out))


@writer("html")
def html_report(t: RunTables, out: Path) -> None:
    """``report.html``, embedding every figure in ``out`` (those ``plots`` wrote)."""
    images = {p.name: p.read_bytes() for p in out.glob("*") if p.suffix in (".png", ".svg")}
    records.write_atomic(out / "report.html", document.html_page(t, out, images))
