"""Write a run's report from the records on disk: tables, plots and ``report.md``.

    python -m bench report results/latest      # rebuild, no model and no server

Reads only the run folder: ``samples.jsonl``, ``task_runs.jsonl``, ``servers.jsonl``,
``config.json`` and ``prices.json``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from bench import paper, plots, records
from bench.config import ROLE_ORDER
from bench.cost import overall_by_model
from bench import evidence
from bench.stats import paired_vs_teacher
from bench.summarize import length_buckets, summarize


def load_run(run_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict, dict]:
    samples = pd.DataFrame(records.read_jsonl(run_dir / records.SAMPLES))
    task_runs = pd.DataFrame(records.read_jsonl(run_dir / records.TASK_RUNS))
    if samples.empty:
        raise SystemExit(f"{run_dir}: no per-sample records ({records.SAMPLES}); nothing to report")
    cfg = json.loads((run_dir / "config.json").read_text())
    prices = json.loads((run_dir / records.PRICES).read_text())
    return samples, task_runs, cfg, prices


def build(run_dir: Path) -> pd.DataFrame:
    """Recompute the summary from records and write every output of the run folder."""
    samples, task_runs, cfg, prices = load_run(run_dir)
    summary = summarize(samples, task_runs, prices)
    overall = overall_by_model(summary)
    generations = samples[samples["n_requests"] == 1]
    buckets = length_buckets(generations) if not generations.empty else pd.DataFrame()
    records.write_atomic(run_dir / "summary.csv", summary.to_csv(index=False))
    summary.to_parquet(run_dir / "summary.parquet", index=False)
    records.write_atomic(run_dir / "table.tex", paper.table_tex(summary))
    records.write_atomic(run_dir / "length_buckets.csv", buckets.to_csv(index=False))
    paired = pd.DataFrame([vars(c) for c in paired_vs_teacher(samples, seed=cfg["run"]["seed"])])
    records.write_atomic(run_dir / "paired.csv", paired.to_csv(index=False))
    plots.cost_quality(summary, run_dir / "cost_quality.png")
    plots.pareto(summary, overall, run_dir / "pareto.png")
    servers = pd.DataFrame(records.read_jsonl(run_dir / records.SERVERS))
    evidence_lines = evidence_section(run_dir, samples, cfg["run"]["seed"])
    versions = json.loads((run_dir / records.VERSIONS).read_text()) if (run_dir / records.VERSIONS).exists() else {}
    methods = paper.methods(cfg, prices, versions, generation_settings(run_dir))
    records.write_atomic(run_dir / "report.md",
                         markdown(summary, overall, buckets, paired, servers, cfg, prices, run_dir) + evidence_lines
                         + "\n## Methods (for a paper)\n\n" + methods + "\n\nThe table above as LaTeX "
                         "(booktabs): `table.tex`.\n")
    return summary


def generation_settings(run_dir: Path) -> dict[str, dict]:
    """The generation settings lm-eval actually used, per generation task (from its saved configs)."""
    out: dict[str, dict] = {}
    for path in sorted((run_dir / "lm_eval").glob("*.json")):
        for task, config in json.loads(path.read_text()).get("configs", {}).items():
            if config.get("output_type") == "generate_until" and task not in out:
                out[task] = config.get("generation_kwargs", {})
    return out


def evidence_section(run_dir: Path, samples: pd.DataFrame, seed: int) -> str:
    """Compute the distillation evidence from the records, write its tables, return its markdown."""
    pairs = evidence.all_pairs(samples, evidence.choices_per_task(samples), seed)
    scored = pd.DataFrame(records.read_jsonl(run_dir / records.RECOGNITION))
    recognition = evidence.recognition_summary(scored, seed) if not scored.empty else pd.DataFrame()
    records.write_atomic(run_dir / "evidence.csv", pairs.to_csv(index=False))
    records.write_atomic(run_dir / "recognition.csv", recognition.to_csv(index=False))
    lines = ["", "## Distillation evidence", "",
             "Does a model imitate another beyond shared correctness? Two good models agree on right "
             "answers because both are right; a distilled student also agrees with its teacher on the "
             "wrong ones. 95% intervals from a seeded item bootstrap; definitions in `bench/evidence.py`.", "",
             "### Reading", ""]
    lines += evidence.reading(samples, pairs, recognition, seed)
    if not pairs.empty:
        lines += ["", "### Error consistency matrix (kappa; 1 on the diagonal)", ""]
        for task in dict.fromkeys(pairs["task"]):
            m = evidence.kappa_matrix(pairs, task)
            lines += [f"{task}:", ""] + _table(["", *m.columns], [[a, *(_f(v, ".2f") for v in m.loc[a])] for a in m.index],
                                               "---|" + "---:|" * (len(m.columns) - 1) + "---:") + [""]
        lines += ["### All pairs", ""]
        lines += _table(["task", "pair", "metric", "value [95% CI]", "chance", "n"],
                        [[p.task, f"{p.model_a} / {p.model_b}", p.metric, evidence._ci(p.value, p.low, p.high),
                          _f(p.chance, ".2f"), str(p.n)] for p in pairs.itertuples()], "---|---|---|---|---:|---:")
    return "\n".join(lines) + "\n"


def _usd(x: float) -> str:
    if x is None or math.isnan(x) or math.isinf(x):
        return "n/a"
    return f"${x:.2e}" if x < 0.01 else f"${x:,.4f}"


def _f(x: float, fmt: str = ".3f") -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def _table(header: list[str], rows: list[list[str]], align: str | None = None) -> list[str]:
    align = align or "|".join("---" for _ in header)
    return ["| " + " | ".join(header) + " |", "|" + align + "|"] + ["| " + " | ".join(r) + " |" for r in rows]


def _models_section(cfg: dict, prices: dict) -> list[str]:
    rows = []
    for name, m in sorted(cfg["models"].items(), key=lambda kv: (ROLE_ORDER.get(kv[1]["role"], 9), kv[0])):
        p = prices["models"][m["name"]]
        if p["basis"] == "api_tokens":
            price = (f"API: ${p['input']}/${p.get('cached_input') or p['input']}/${p['output']} per 1M "
                     f"input/cached/output ({p['source']}, {p['as_of']})")
        else:
            price = f"{p['devices']} x {p['device_kind']} at ${p['usd_per_device_hour']}/h"
        t = p.get("training", {})
        trained = "; ".join(part for part in (
            f"{t['gpu_hours']:,.0f} {t.get('gpu') or ''} GPU-h".replace("  ", " ") if t.get("gpu_hours") else "",
            f"${t['usd']:,.0f}" if t.get("usd") else "", t.get("source", "")) if part)
        rows.append([m["name"], m["role"], f"`{m['source']}`", price, trained, m.get("description", "")])
    return _table(["model", "role", "source", "priced as", "reported training cost", "description"], rows)


def _paired_section(paired: pd.DataFrame) -> list[str]:
    if paired.empty:
        return []
    lines = ["", "## Paired comparison with the teacher", "",
             "Each model against the teacher on the items both answered: difference in accuracy "
             "(model - teacher, points) with a 95% paired bootstrap interval (items resampled, 10,000 "
             "times), McNemar's exact test on the items only one of them got right, the smallest "
             "difference these items could detect (80% power, alpha 0.05), and quality retained "
             "(model / teacher) with its bootstrap interval.", ""]
    lines += _table(["task", "model", "n", "difference (pts)", "95% CI", "only teacher right", "only model right",
                     "McNemar p", "detectable (pts)", "retained", "retained 95% CI"],
                    [[c.task, c.model, str(c.n), f"{100 * c.diff:+.1f}",
                      f"[{100 * c.diff_low:+.1f}, {100 * c.diff_high:+.1f}]", str(c.only_teacher_right),
                      str(c.only_model_right), f"{c.mcnemar_p:.2g}", _f(100 * c.mdd80, ".1f"), _f(c.retained, ".1%"),
                      f"[{_f(c.retained_low, '.1%')}, {_f(c.retained_high, '.1%')}]"] for c in paired.itertuples()],
                    "---|---|---:|---:|---|---:|---:|---:|---:|---:|---")
    lines += [""]
    for c in paired[paired["task"] == "all tasks"].itertuples():
        verdict = ("a significant difference" if c.mcnemar_p < 0.05 else
                   "no difference these items can resolve")
        lines.append(f"- Over all tasks, {c.model} scores {abs(100 * c.diff):.1f} points "
                     f"{'below' if c.diff < 0 else 'above'} the teacher (95% paired CI "
                     f"[{100 * c.diff_low:+.1f}, {100 * c.diff_high:+.1f}], McNemar exact p = {c.mcnemar_p:.2g}): "
                     f"{verdict}; it keeps {c.retained:.1%} of the teacher's accuracy "
                     f"([{c.retained_low:.1%}, {c.retained_high:.1%}]).")
    return lines


def markdown(summary: pd.DataFrame, overall: pd.DataFrame, buckets: pd.DataFrame, paired: pd.DataFrame,
             servers: pd.DataFrame, cfg: dict, prices: dict, run_dir: Path) -> str:
    hw, exp = cfg["hardware"], cfg["experiment"]
    lines = [f"# {exp['name']}: teacher vs. distilled student", ""]
    if exp.get("description"):
        lines += [exp["description"], ""]
    lines += [f"Run folder: `{run_dir}`  ", f"Suite: `{cfg['suite']['name']}` "
              f"({', '.join(cfg['suite']['tasks'])}); items per task: {int(summary['n'].max())}  ",
              f"Self-hosted hardware: {hw['device_kind']} x {hw['count']} at ${hw['usd_per_device_hour']}"
              f"/device-hour ({hw['price_source']}, as of {hw['price_as_of']})", "", "## Models", ""]
    lines += _models_section(cfg, prices)

    lines += ["", "## Quality", ""]
    lines += _table(["task", "model", "role", "accuracy", "95% CI", "n", "retained vs teacher", "Pareto-optimal"],
                    [[r.task, r.model, r.role, _f(r.accuracy), f"[{_f(r.ci95_low)}, {_f(r.ci95_high)}]", str(r.n),
                      _f(r.quality_retained_vs_teacher, ".1%"), "yes" if r.pareto_optimal else "no"]
                     for r in summary.itertuples()], "---|---|---|---:|---|---:|---:|---")
    lines += _paired_section(paired)
    lines += ["", "## Cost", ""]
    lines += _table(["task", "model", "basis", "$", "$ / sample", "$ / 1k samples", "$ / correct",
                     "$ / 1M out tok", "steady $ / 1M out tok", "cost vs teacher"],
                    [[r.task, r.model, r.cost_basis, _usd(r.usd), _usd(r.usd_per_sample), _usd(r.usd_per_1k_samples),
                      _usd(r.usd_per_correct), _usd(r.usd_per_1m_output_tokens),
                      _usd(r.steady_usd_per_1m_output_tokens), _f(r.cost_ratio_vs_teacher, ".2f") + "x"]
                     for r in summary.itertuples()], "---|---|---|" + "---:|" * 6 + "---:")
    lines += ["", "Over all tasks:", ""]
    lines += _table(["model", "role", "mean accuracy", "$", "$ / correct", "$ / 1k samples", "Pareto-optimal"],
                    [[r.model, r.role, _f(r.accuracy), _usd(r.usd), _usd(r.usd_per_correct),
                      _usd(r.usd_per_1k_samples), "yes" if r.pareto_optimal else "no"]
                     for r in overall.itertuples()], "---|---|---:|---:|---:|---:|---")
    lines += ["", "![Pareto frontier](pareto.png)", "", "![cost versus quality per task](cost_quality.png)"]

    lines += ["", "## Speed", ""]
    lines += _table(["task", "model", "wall s", "device s", "out tok/s", "req/s", "TTFT p50/p90/p99 ms",
                     "TPOT p50/p90/p99 ms"],
                    [[r.task, r.model, _f(r.wall_s, ".1f"), _f(r.device_s, ".1f"), _f(r.output_tokens_per_s, ".0f"),
                      _f(r.requests_per_s, ".1f"),
                      "/".join(_f(getattr(r, f"ttft_p{q}_s") * 1000, ".1f") for q in (50, 90, 99)),
                      "/".join(_f(getattr(r, f"tpot_p{q}_s") * 1000, ".1f") for q in (50, 90, 99))]
                     for r in summary.itertuples()], "---|---|" + "---:|" * 5 + "---:")
    if not servers.empty:
        lines += ["", "Server start-up (not included in the task costs above):", ""]
        lines += _table(["model", "start-up s", "held s"],
                        [[s.model, _f(s.startup_s, ".1f"), _f(s.held_s, ".1f")] for s in servers.itertuples()],
                        "---|---:|---:")
    energy = summary["energy_j_per_output_token"].dropna()
    lines += ["", "Energy: not measured (NVML is not available where this ran)." if energy.empty else
              "Energy (NVML, all visible GPUs): " + ", ".join(
                  f"{r.model}/{r.task} {r.energy_j_per_output_token:.3g} J per output token"
                  for r in summary.itertuples() if not math.isnan(r.energy_j_per_output_token))]

    lines += ["", "## Token accounting check", "",
              "Per-sample token sums (prompt + completion) against vLLM's own Prometheus counters "
              "(`vllm:prompt_tokens_total`, `vllm:generation_tokens_total`) over the same task:", ""]
    lines += _table(["task", "model", "ours", "server", "difference"],
                    [[r.task, r.model, str(r.prompt_tokens + r.completion_tokens), _f(r.server_tokens, ".0f"),
                      _f(r.token_diff_vs_server, "+.2%")] for r in summary.itertuples()], "---|---|---:|---:|---:")
    diffs = summary["token_diff_vs_server"].abs().dropna()
    if len(diffs):
        lines += ["", f"Largest difference: {diffs.max():.2%} (API models have no server counters here)."]

    lines += ["", "## Budget diagnostics", ""]
    lines += _table(["task", "model", "hit token limit", "unclosed reasoning", "mean reasoning tokens"],
                    [[r.task, r.model, _f(r.finish_length_share, ".1%"), _f(r.unclosed_reasoning_share, ".1%"),
                      _f(r.reasoning_tokens_mean, ".1f")] for r in summary.itertuples()
                     if r.metric != "acc"], "---|---|---:|---:|---:")
    if not buckets.empty:
        lines += ["", "Accuracy by output length (completion tokens):", ""]
        lines += _table(["task", "model", "length", "n", "accuracy"],
                        [[b.task, b.model, str(b.length_bucket), str(b.n), _f(b.accuracy)]
                         for b in buckets.itertuples()], "---|---|---|---:|---:")

    lines += ["", "## How to read this", "",
              "- *accuracy* is the mean of `correct` over this model x task in `samples.jsonl`; the interval "
              "is a 95% Wilson score interval.",
              "- *$* for a self-hosted model is the task's measured wall time x devices x the hardware price; "
              "for an API model, its tokens x its list prices (reasoning tokens billed as output). Prices with "
              "their sources and dates are in `prices.json`. *$ / correct* is the figure that matters when "
              "models think for different lengths.",
              "- *steady $ / 1M out tok* prices output tokens at the model's measured throughput over all its tasks.",
              "- *Pareto-optimal*: no other model is both cheaper per correct answer and at least as accurate.",
              "- Every number here is recomputed from the run folder by `python -m bench report <run folder>`.", ""]
    return "\n".join(lines)
