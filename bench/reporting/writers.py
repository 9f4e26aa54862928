"""The report's output formats: one writer per format, registered by name with the files it writes.

A writer takes a run's tables (``bench/reporting/tables.py``) and the output folder and writes its files
there (atomic writes). Adding a format is one function under ``@writer("name", files={...})``;
``write`` runs the chosen ones in the order they are registered, which is the order the files
depend on (``html`` embeds the figures ``plots`` wrote).

Each file is declared with how ``bench verify`` compares it to its twin rebuilt from the records
(``TABLE``: cell by cell, numbers to a relative tolerance; ``TEXT``: line by line, the path of the
folder aside; ``BINARY``: byte for byte). The manifest hashes every declared file
(``manifest.OUTPUT_FILES``) and ``bench verify`` rebuilds and compares them, both read from here,
so a new format is registered in this file alone.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.reporting import document, paper, plots
from bench.reporting.tables import EvidenceTables, RunTables
from bench.rundir import records

Writer = Callable[[RunTables, Path], None]


class Compare(enum.Enum):
    """How ``bench verify`` compares a written file with the one rebuilt from the records."""

    TABLE = "table"
    TEXT = "text"
    BINARY = "binary"


TABLE, TEXT, BINARY = Compare.TABLE, Compare.TEXT, Compare.BINARY


@dataclass(frozen=True)
class Format:
    """A registered output format: its writer and the files it writes, each with its comparison."""

    write: Writer
    files: Mapping[str, Compare] = field(default_factory=dict)


WRITERS: dict[str, Format] = {}
"""Every output format, by name, in the order ``write`` runs them."""


def writer(name: str, files: Mapping[str, Compare] | None = None) -> Callable[[Writer], Writer]:
    """Register a writer as the format ``name``, writing ``files`` (name -> how verify compares it).

    Files left undeclared are neither hashed in the manifest nor checked by ``bench verify``.
    """

    def register(fn: Writer) -> Writer:
        WRITERS[name] = Format(fn, dict(files or {}))
        return fn

    return register


def compared_as() -> dict[str, Compare]:
    """Each declared file, in registry order, and how ``bench verify`` compares it."""
    # Read at call time, not frozen at import: a format registered later (a test's) counts too.
    return {name: kind for fmt in WRITERS.values() for name, kind in fmt.files.items()}


def output_files() -> tuple[str, ...]:
    """Every file the registered formats write, in registry order (``manifest.OUTPUT_FILES``)."""
    return tuple(compared_as())


def select(formats: Iterable[str] | None = None) -> list[str]:
    """The formats to write, in registry order (None: all); an unknown name is an error."""
    wanted = list(WRITERS) if formats is None else list(formats)
    unknown = [f for f in wanted if f not in WRITERS]
    if unknown:
        raise ValueError(f"unknown report format {', '.join(map(repr, unknown))} (available: {', '.join(WRITERS)})")
    return [f for f in WRITERS if f in wanted]


def write(t: RunTables, out: Path, formats: Iterable[str] | None = None) -> None:
    """Write ``t`` into ``out`` in each of ``formats`` (None: every registered format)."""
    for name in select(formats):
        WRITERS[name].write(t, out)


def read_table(path: Path) -> pd.DataFrame:
    """A ``TABLE`` file as written here, read back by its suffix (what ``bench verify`` compares)."""
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".json":
        # json, not pd.read_json: its parser rounds floats and guesses dates; json is exact.
        return pd.DataFrame(json.loads(path.read_text(encoding="utf-8")))
    try:
        return pd.read_csv(path)  # exact on pandas 3; pandas 2's parser may be an ulp off (verify's RTOL covers it)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def evidence_csv(ev: EvidenceTables) -> dict[str, pd.DataFrame]:
    """The evidence tables by file name (also written alone by ``bench evidence``)."""
    return {"evidence.csv": ev.pairs, "recognition.csv": ev.recognition}


def write_csv(frames: dict[str, pd.DataFrame], out: Path) -> None:
    """Each table as ``out / name``, without the index."""
    for name, frame in frames.items():
        records.write_atomic(out / name, frame.to_csv(index=False))


@writer(
    "csv",
    files={
        "summary.csv": TABLE,
        "length_buckets.csv": TABLE,
        "paired.csv": TABLE,
        "reproduction.csv": TABLE,
        "evidence.csv": TABLE,
        "recognition.csv": TABLE,
    },
)
def csv_tables(t: RunTables, out: Path) -> None:
    """Every table a reader may load: summary, length buckets, paired, reproduction, evidence."""
    write_csv(
        {
            "summary.csv": t.summary,
            "length_buckets.csv": t.buckets,
            "paired.csv": t.paired,
            "reproduction.csv": t.reproduction,
            **evidence_csv(t.evidence),
        },
        out,
    )


@writer("parquet", files={"summary.parquet": TABLE})
def parquet_summary(t: RunTables, out: Path) -> None:
    """The summary with its column types kept."""
    records.write_atomic(out / "summary.parquet", t.summary.to_parquet(index=False))


@writer("tex", files={"table.tex": TEXT})
def tex_table(t: RunTables, out: Path) -> None:
    """The paper table (booktabs), with the counterparts' published rows only."""
    records.write_atomic(out / "table.tex", paper.table_tex(t.summary, t.counterparts))


@writer("plots", files={"cost_quality.png": BINARY, "cost_quality.svg": TEXT, "pareto.png": BINARY, "pareto.svg": TEXT})
def plot_figures(t: RunTables, out: Path) -> None:
    """The cost-quality and Pareto figures, each as PNG and SVG."""
    plots.cost_quality(t.summary, out / "cost_quality.png")
    plots.pareto(t.summary, t.overall, out / "pareto.png")


@writer("md", files={"report.md": TEXT})
def md_report(t: RunTables, out: Path) -> None:
    """``report.md``."""
    records.write_atomic(out / "report.md", document.markdown(t, out))


@writer("html", files={"report.html": TEXT})
def html_report(t: RunTables, out: Path) -> None:
    """``report.html``, embedding every figure in ``out`` (those ``plots`` wrote)."""
    images = {p.name: p.read_bytes() for p in out.glob("*") if p.suffix in (".png", ".svg")}
    records.write_atomic(out / "report.html", document.html_page(t, out, images))


def _json_value(v: Any) -> Any:
    """A summary cell as JSON: numpy scalars as Python ones, missing and non-finite numbers as null
    (JSON has no NaN or infinity; a ``usd_per_correct`` of inf, no correct answer, is null here)."""
    v = v.item() if isinstance(v, np.generic) else v
    if v is None or v is pd.NA or (isinstance(v, float) and not math.isfinite(v)):
        return None
    return v


@writer("json", files={"summary.json": TABLE})
def json_summary(t: RunTables, out: Path) -> None:
    """``summary.json``: the summary as a list of records, keys in the summary's column order."""
    rows = [
        {col: _json_value(v) for col, v in zip(t.summary.columns, row)}
        for row in t.summary.itertuples(index=False, name=None)
    ]
    # Python's float repr round-trips exactly (to_json keeps 10 decimals: a $ figure of 1e-8 would not survive).
    records.write_atomic(out / "summary.json", json.dumps(rows, indent=2, allow_nan=False) + "\n")
