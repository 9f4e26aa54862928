"""The report as one document, rendered from a run's tables (pure: tables in, text out).

``markdown`` puts the sections of ``bench/reporting/sections.py`` in order (headline first, methods
last) for ``report.md``; ``html_page`` sets the same text as the self-contained ``report.html``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.reporting import html, paper, sections
from bench.reporting.tables import EvidenceTables, RunTables
from bench.serving.simulate_spec import banner


def status_line(t: RunTables) -> str | None:
    """The PARTIAL label's sentence, or None for a finished run."""
    if not t.partial:
        return None
    return f"PARTIAL REPORT: run status {t.run.status!r}; only the records written so far are included"


def intervals_used(summary: pd.DataFrame) -> str:
    """How the accuracy intervals of this summary were computed, for the methods paragraph."""
    methods = set(summary["se_method"])
    parts = []
    if "iid" in methods:
        parts.append("95% Wilson score intervals where each item has one response")
    if methods & {"item", "cluster"}:
        on = " and ".join(f for f, m in (("items", "item"), ("the tasks' cluster field", "cluster")) if m in methods)
        parts.append(
            "95% Wilson score intervals at the effective sample size implied by cluster-robust (CRV1) "
            f"standard errors clustered on {on}"
        )
    return "; ".join(parts)


def evidence_markdown(ev: EvidenceTables) -> str:
    """The distillation-evidence section alone (also ``evidence.md`` of ``bench evidence``)."""
    return "\n".join(sections.evidence_section(ev.samples, ev.pairs, ev.recognition, ev.seed)) + "\n"


def _body(t: RunTables, out: Path) -> list[str]:
    """The report up to its reading notes: the headline first, then the run, models, quality, ..."""
    cfg, status, summary = t.run.cfg, status_line(t), t.summary
    lines = sections.title(cfg, status) + sections.headline_section(list(t.headlines), summary, t.overall) + [""]
    lines += sections.header(summary, cfg, t.run.prices, out, status, list(t.notes)) + ["## Models", ""]
    lines += sections.models_section(cfg, t.run.prices)
    lines += sections.quality_section(summary, t.published)
    lines += sections.repeats_section(summary)
    lines += sections.paired_section(t.paired)
    lines += sections.cost_section(summary, t.overall)
    lines += sections.speed_section(summary, t.run.servers)
    lines += sections.accounting_section(summary, t.buckets)
    lines += sections.reported_section(summary, t.published, t.reproduction)
    return lines + sections.reading_notes()


def markdown(t: RunTables, out: Path) -> str:
    """``report.md``: every section, the evidence, then the methods; ``out`` is the folder it names."""
    run = t.run
    text = (
        "\n".join(_body(t, out))
        + evidence_markdown(t.evidence)
        + "\n## Methods (for a paper)\n\n"
        + paper.methods(run.cfg, run.prices, run.versions, run.generation, intervals_used(t.summary))
        + "\n\nThe table above as LaTeX (booktabs): `table.tex`.\n"
    )
    simulated = banner(run.cfg)
    return f"> **{simulated}.**\n\n" + text if simulated else text


def html_page(t: RunTables, out: Path, images: dict[str, bytes]) -> str:
    """``report.html``: the markdown as one page, ``images`` (file name -> bytes) embedded."""
    simulated, status = banner(t.run.cfg), status_line(t)
    title = (
        f"{'SIMULATED: ' if simulated else ''}{'PARTIAL: ' if t.partial else ''}"
        f"{t.run.cfg['experiment']['name']}: teacher vs. distilled student"
    )
    return html.render(markdown(t, out), images, title, "; ".join(filter(None, (simulated, status))) or None)
