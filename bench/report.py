"""Write a run's report from the records on disk: tables, plots, ``report.md`` and ``report.html``.

    python -m bench report results/latest                   # rebuild in place, no model, no server
    python -m bench report RUN_A RUN_B --out results/merged/x   # several runs as one comparison

Reads only run folders (``samples.jsonl``, ``task_runs.jsonl``, ``servers.jsonl``,
``recognition.jsonl``, ``config.json``, ``prices.json``, ``versions.json``, ``lm_eval/``) and the
reported figures in ``bench/reference/``. Never imports vLLM, torch or lm-eval.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench import cost_intervals, evidence, headline, html, manifest, paper, plots, records, reported, runs, sections
from bench.cost import overall_by_model
from bench.sections import f as _f, table as _table
from bench.simulate_spec import banner
from bench.stats import paired_vs_teacher
from bench.summarize import length_buckets, summarize

generation_settings = runs.generation_settings  # where it used to live


def build(run_dir: Path, partial: bool = False) -> pd.DataFrame:
    """Recompute everything from a run folder's records and write every output into it.

    ``partial`` labels the report PARTIAL (records of an unfinished run); the caller decides.
    """
    return write_report(runs.load(run_dir), run_dir, partial=partial)


def rebuild(run_dirs: list[Path], out_dir: Path | None, partial: bool) -> Path:
    """``bench report``: one run folder rebuilt in place, or several merged into ``out_dir``.

    Refuses runs whose status is not ``success`` unless ``partial``; then labels the report.
    """
    loaded = [runs.load(d.resolve()) for d in run_dirs]
    unfinished = [f"{r.folders[0]} (status: {r.status})" for r in loaded if r.status != "success"]
    if unfinished and not partial:
        raise SystemExit("not finished: " + "; ".join(unfinished) + ". Its records may be incomplete: "
                         "rerun it to completion, or pass --partial to report what is there (labelled PARTIAL)")
    if len(loaded) == 1 and out_dir is None:
        write_report(loaded[0], loaded[0].folders[0], partial=bool(unfinished))
        return loaded[0].folders[0]
    try:
        merged = runs.merge(loaded)
    except runs.MergeError as e:
        raise SystemExit(f"cannot merge these runs: {e}") from None
    assert out_dir is not None, "several runs are merged into out_dir (bench report names one)"
    out_dir = out_dir.resolve()
    if out_dir in {r.folders[0] for r in loaded}:
        raise SystemExit(f"--out {out_dir} is one of the runs being merged; name a new folder")
    write_report(runs.write_records(merged, out_dir), out_dir, partial=bool(unfinished))
    return out_dir


def _complete_pairs(run: runs.Run, partial: bool) -> tuple[pd.DataFrame, list[str]]:
    """Samples whose model x task has its task record (timing, prices); a run interrupted
    between the two writes leaves some without, which only a partial report may drop."""
    have = set(zip(run.task_runs.get("model", []), run.task_runs.get("task", [])))
    keep = [(m, t) in have for m, t in zip(run.samples["model"], run.samples["task"])]
    dropped = sorted(set(zip(run.samples["model"], run.samples["task"])) - have)
    if dropped and not partial:
        raise SystemExit(f"{run.folders[0]}: samples without a task record for {dropped}; "
                         f"the run did not finish them: rerun it, or report with --partial")
    return run.samples[keep], [f"{m} / {t}: samples without a task record (unfinished), left out"
                               for m, t in dropped]


def write_report(run: runs.Run, out: Path, partial: bool = False) -> pd.DataFrame:
    """Every output of a run folder, computed from ``run`` and written into ``out``."""
    samples, dropped = _complete_pairs(run, partial)
    cfg, seed = run.cfg, run.cfg["run"]["seed"]
    ref = reported.load()
    reported_as = {m["name"]: m.get("reported_as") for m in cfg["models"].values() if m.get("reported_as")}
    summary = summarize(samples, run.task_runs, run.prices, run.model_runs, run.requests)
    boot = cost_intervals.bootstrap(samples, summary, seed)
    summary = cost_intervals.attach(summary, boot)
    repro = reported.reproduction(summary, ref, reported_as)
    summary = reported.attach(summary, repro, reported_as)
    published = reported.reported_rows(list(dict.fromkeys(summary["task"])), ref)
    overall = overall_by_model(summary, cost_intervals.overall(boot, summary))
    generations = samples[samples["n_requests"] == 1]
    buckets = length_buckets(generations) if not generations.empty else pd.DataFrame()
    paired = pd.DataFrame([vars(c) for c in paired_vs_teacher(samples, seed=seed)])
    headlines = headline.compute(summary, paired, boot, run.prices)
    records.write_atomic(out / "summary.csv", summary.to_csv(index=False))
    records.write_atomic(out / "summary.parquet", summary.to_parquet(index=False))
    # The paper table carries only the counterparts' published rows; report.md shows them all.
    counterparts = published[published["model"].isin(set(reported_as.values()))]
    records.write_atomic(out / "table.tex", paper.table_tex(summary, counterparts))
    records.write_atomic(out / "length_buckets.csv", buckets.to_csv(index=False))
    records.write_atomic(out / "paired.csv", paired.to_csv(index=False))
    records.write_atomic(out / "reproduction.csv", repro.to_csv(index=False))
    plots.cost_quality(summary, out / "cost_quality.png")
    plots.pareto(summary, overall, out / "pareto.png")
    notes = [*run.notes, *dropped, *reported.unknown_names(reported_as, ref)]
    status = f"PARTIAL REPORT: run status {run.status!r}; only the records written so far are included" \
        if partial else None
    simulated = banner(cfg)
    text = (markdown(summary, overall, buckets, paired, run.servers, cfg, run.prices, out, status, notes, published,
                     repro, headlines)
            + evidence_section(out, samples, seed, run.recognition)
            + "\n## Methods (for a paper)\n\n"
            + paper.methods(cfg, run.prices, run.versions, run.generation, intervals_used(summary))
            + "\n\nThe table above as LaTeX (booktabs): `table.tex`.\n")
    if simulated:
        text = f"> **{simulated}.**\n\n" + text
    records.write_atomic(out / "report.md", text)
    images = {p.name: p.read_bytes() for p in out.glob("*") if p.suffix in (".png", ".svg")}
    title = (f"{'SIMULATED: ' if simulated else ''}{'PARTIAL: ' if partial else ''}{cfg['experiment']['name']}: "
             f"teacher vs. distilled student")
    records.write_atomic(out / "report.html", html.render(text, images, title,
                                                          "; ".join(filter(None, (simulated, status))) or None))
    manifest.record_outputs(out)
    return summary


def intervals_used(summary: pd.DataFrame) -> str:
    """How the accuracy intervals of this summary were computed, for the methods paragraph."""
    methods = set(summary["se_method"])
    parts = []
    if "iid" in methods:
        parts.append("95% Wilson score intervals where each item has one response")
    if methods & {"item", "cluster"}:
        on = " and ".join(f for f, m in (("items", "item"), ("the tasks' cluster field", "cluster")) if m in methods)
        parts.append("95% Wilson score intervals at the effective sample size implied by cluster-robust (CRV1) "
                     f"standard errors clustered on {on}")
    return "; ".join(parts)


def evidence_section(run_dir: Path, samples: pd.DataFrame, seed: int, scored: pd.DataFrame | None = None) -> str:
    """Compute the distillation evidence from the records, write its tables, return its markdown.

    ``scored``: the teacher-recognition records (read from ``run_dir`` when not given)."""
    pairs = evidence.all_pairs(samples, evidence.choices_per_task(samples), seed)
    if scored is None:
        scored = pd.DataFrame(records.read_jsonl(run_dir / records.RECOGNITION))
    recognition = evidence.recognition_summary(scored, seed) if not scored.empty else pd.DataFrame()
    records.write_atomic(run_dir / "evidence.csv", pairs.to_csv(index=False))
    records.write_atomic(run_dir / "recognition.csv", recognition.to_csv(index=False))
    lines = ["", "## Distillation evidence", "",
             "Does a model imitate another beyond shared correctness? Two good models agree on right "
             "answers because both are right; a distilled student also agrees with its teacher on the "
             "wrong ones. 95% intervals from a seeded item bootstrap; definitions in `bench/evidence.py`. "
             "Error consistency is Cohen's κ on right/wrong, undefined when either model is always right or "
             "always wrong. On multiple choice, κp (`kappa_p` in `evidence.csv`) is CAPA's κp (Goel et al., 2025, "
             "\"Great Models Think Alike and this Undermines AI Oversight\", arXiv:2502.04313) on the chosen "
             "option: chance agreement from the accuracies with errors spread evenly over the wrong options; "
             "Cohen's κ on the chosen option (`cohen_kappa_choice`), beside it, takes chance from each model's "
             "own option frequencies instead."
             + (" Items were answered several times: each pair is compared on the first response (repeat 0)."
                if "repeat" in samples and (samples["repeat"].fillna(0) > 0).any() else ""), "",
             "### Reading", ""]
    lines += evidence.reading(samples, pairs, recognition, seed)
    if not pairs.empty:
        lines += ["", "### Error consistency matrix (Cohen's κ on right/wrong; 1 on the diagonal; undefined where a "
                  "model is always right or always wrong)", ""]
        for task in dict.fromkeys(pairs["task"]):
            m = evidence.kappa_matrix(pairs, task)
            cell = lambda v: "undefined" if v != v else f"{v:.2f}"  # noqa: E731
            lines += [f"{task}:", ""] + _table(["", *m.columns], [[a, *(cell(v) for v in m.loc[a])] for a in m.index],
                                               "---|" + "---:|" * (len(m.columns) - 1) + "---:") + [""]
        lines += ["### All pairs", ""]
        lines += _table(["task", "pair", "metric", "value [95% CI]", "chance", "n"],
                        [[p.task, f"{p.model_a} / {p.model_b}", evidence.METRIC_LABELS.get(p.metric, p.metric),
                          evidence.value_text(p), _f(p.chance, ".2f"), str(p.n)] for p in pairs.itertuples()],
                        "---|---|---|---|---:|---:")
    return "\n".join(lines) + "\n"


def markdown(summary: pd.DataFrame, overall: pd.DataFrame, buckets: pd.DataFrame, paired: pd.DataFrame,
             servers: pd.DataFrame, cfg: dict, prices: dict, run_dir: Path, status: str | None = None,
             notes: list[str] | None = None, published: pd.DataFrame | None = None,
             repro: pd.DataFrame | None = None, headlines: list[headline.Headline] | None = None) -> str:
    """The report up to its reading notes (the evidence and methods sections are appended):
    the headline first, then the run, models, quality, ... in that order."""
    if published is None or repro is None:
        ref = reported.load()
        published = reported.reported_rows(list(dict.fromkeys(summary["task"])), ref)
        repro = reported.reproduction(summary, ref, {})
    lines = sections.title(cfg, status) + sections.headline_section(headlines or [], summary, overall) + [""]
    lines += sections.header(summary, cfg, prices, run_dir, status, notes or []) + ["## Models", ""]
    lines += sections.models_section(cfg, prices)
    lines += sections.quality_section(summary, published)
    lines += sections.repeats_section(summary)
    lines += sections.paired_section(paired)
    lines += sections.cost_section(summary, overall)
    lines += sections.speed_section(summary, servers)
    lines += sections.accounting_section(summary, buckets)
    lines += sections.reported_section(summary, published, repro)
    lines += sections.reading_notes()
    return "\n".join(lines)
