"""Every table of a run's report, computed from its records (pure: no files, no clocks).

``bench/report.py`` loads a run folder, calls ``compute`` and hands the result to the writers
(``bench/reporting/writers.py``); the markdown is rendered from the same object (``bench/reporting/document.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from bench.analysis import cost_intervals, evidence, headline, published
from bench.analysis.cost import overall_by_model
from bench.analysis.stats import paired_vs_teacher
from bench.analysis.summarize import length_buckets, summarize
from bench.rundir import run_folders


@dataclass(frozen=True)
class EvidenceTables:
    """The distillation evidence of a run: pairwise metrics and teacher recognition."""

    pairs: pd.DataFrame
    """Every metric for every pair of models on every task (``evidence.csv``)."""
    recognition: pd.DataFrame
    """Teacher log-probability per token of each model's generations (``recognition.csv``)."""
    samples: pd.DataFrame
    """The samples they were computed from (the reading compares them item by item)."""
    seed: int
    """Seed of the item bootstraps (the reading draws its paired intervals from it too)."""


@dataclass(frozen=True)
class RunTables:
    """Every table of one run's report, and the records' context the prose needs."""

    run: run_folders.Run
    """The run the tables come from: config, prices, servers, versions, status."""
    samples: pd.DataFrame
    """The samples reported: those whose model x task has its task record."""
    summary: pd.DataFrame
    """One row per model x task, with cost intervals and reproduction columns (``summary.csv``)."""
    overall: pd.DataFrame
    """One row per model over all tasks."""
    paired: pd.DataFrame
    """Each model against the teacher (``paired.csv``)."""
    buckets: pd.DataFrame
    """Accuracy by output length, generation tasks only (``length_buckets.csv``)."""
    reproduction: pd.DataFrame
    """Measured minus reported, per counterpart (``reproduction.csv``)."""
    published: pd.DataFrame
    """Published figures for the benchmarks the run's tasks measure."""
    counterparts: pd.DataFrame
    """The published rows of the models' reported counterparts only (the paper table's)."""
    evidence: EvidenceTables
    headlines: tuple[headline.Headline, ...]
    notes: tuple[str, ...]
    """Notes for the reader: merged runs, dropped samples, unknown reported names."""
    partial: bool
    """Labelled PARTIAL: the records of an unfinished run."""


def evidence_tables(samples: pd.DataFrame, seed: int, scored: pd.DataFrame) -> EvidenceTables:
    """The distillation evidence from the samples and the teacher-recognition records ``scored``."""
    pairs = evidence.all_pairs(samples, evidence.choices_per_task(samples), seed)
    recognition = evidence.recognition_summary(scored, seed) if not scored.empty else pd.DataFrame()
    return EvidenceTables(pairs, recognition, samples, seed)


def complete_pairs(run: run_folders.Run, partial: bool) -> tuple[pd.DataFrame, list[str]]:
    """Samples whose model x task has its task record (timing, prices); a run interrupted
    between the two writes leaves some without, which only a partial report may drop."""
    have = set(zip(run.task_runs.get("model", []), run.task_runs.get("task", [])))
    keep = [(m, t) in have for m, t in zip(run.samples["model"], run.samples["task"])]
    dropped = sorted(set(zip(run.samples["model"], run.samples["task"])) - have)
    if dropped and not partial:
        raise SystemExit(
            f"{run.folders[0]}: samples without a task record for {dropped}; "
            f"the run did not finish them: rerun it, or report with --partial"
        )
    return run.samples[keep], [f"{m} / {t}: samples without a task record (unfinished), left out" for m, t in dropped]


def compute(run: run_folders.Run, ref: published.Reference, partial: bool = False) -> RunTables:
    """Every table of ``run``'s report; ``ref``: the published figures (``published.load()``)."""
    samples, dropped = complete_pairs(run, partial)
    seed = run.cfg["run"]["seed"]
    reported_as = {m["name"]: m.get("reported_as") for m in run.cfg["models"].values() if m.get("reported_as")}
    summary = summarize(samples, run.task_runs, run.prices, run.model_runs, run.requests)
    boot = cost_intervals.bootstrap(samples, summary, seed)
    summary = cost_intervals.attach(summary, boot)
    repro = published.reproduction(summary, ref, reported_as)
    summary = published.attach(summary, repro, reported_as)
    published_rows = published.reported_rows(list(dict.fromkeys(summary["task"])), ref)
    overall = overall_by_model(summary, cost_intervals.overall(boot, summary))
    generations = samples[samples["n_requests"] == 1]
    buckets = length_buckets(generations) if not generations.empty else pd.DataFrame()
    paired = pd.DataFrame([vars(c) for c in paired_vs_teacher(samples, seed=seed)])
    return RunTables(
        run=run,
        samples=samples,
        summary=summary,
        overall=overall,
        paired=paired,
        buckets=buckets,
        reproduction=repro,
        published=published_rows,
        counterparts=published_rows[published_rows["model"].isin(set(reported_as.values()))],
        evidence=evidence_tables(samples, seed, run.recognition),
        headlines=tuple(headline.compute(summary, paired, boot, run.prices)),
        notes=(*run.notes, *dropped, *published.unknown_names(reported_as, ref)),
        partial=partial,
    )
