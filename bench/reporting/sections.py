"""The report's markdown, section by section, from its tables (pure: strings in, strings out).

``bench/reporting/tables.py`` computes the tables; ``bench/reporting/document.py`` puts these sections in order and
``bench/reporting/html.py`` turns the same markdown into the self-contained ``report.html``.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from bench.analysis import cost_bases
from bench.analysis.stats import MCNEMAR
from bench.config import ROLE_ORDER


def usd(x: float) -> str:
    if x is None or math.isnan(x) or math.isinf(x):
        return "n/a"
    return f"${x:.2e}" if x < 0.01 else f"${x:,.4f}"


def f(x: float, fmt: str = ".3f") -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def table(header: list[str], rows: list[list[str]], align: str | None = None) -> list[str]:
    align = align or "|".join("---" for _ in header)
    return ["| " + " | ".join(header) + " |", "|" + align + "|"] + ["| " + " | ".join(r) + " |" for r in rows]


def title(cfg: dict, status: str | None) -> list[str]:
    lines = [f"# {'PARTIAL: ' if status else ''}{cfg['experiment']['name']}: teacher vs. distilled student", ""]
    if status:
        lines += [
            f"> **{status}.** Models or tasks that had not finished are missing, and a model that "
            "stopped mid-task is left out of that task.",
            "",
        ]
    return lines


def header(
    summary: pd.DataFrame, cfg: dict, prices: dict, run_dir: Path, status: str | None, notes: list[str]
) -> list[str]:
    """The run's description, folder, suite and hardware, and any notes (after the headline).

    The hardware and its price come from ``prices``, what the $ figures were computed with: a
    merged run's models may have been served on different hardware, and ``cfg`` is the first run's."""
    exp = cfg["experiment"]
    lines = ["## The run", ""]
    if exp.get("description"):
        lines += [exp["description"], ""]
    k = int(summary["repeats"].max()) if "repeats" in summary else 1
    items = f"items per task: {int(summary['n_items'].max())}" + (f", {k} responses each" if k > 1 else "")
    lines += [
        f"Run folder: `{run_dir}`  ",
        f"Suite: `{cfg['suite']['name']}` ({', '.join(cfg['suite']['tasks'])}); {items}  ",
    ]
    for basis, priced in cost_bases.by_basis(prices):
        line = basis.hardware_line(list(priced.values()))
        lines += [line] if line else []
    lines += [""]
    if notes:
        lines += ["Notes:", ""] + [f"- {n}" for n in notes] + [""]
    return lines


def _bound(x: float, show) -> str:
    """An interval's end: infinite when a resample had no correct answer (or no throughput)."""
    return "∞" if x == math.inf else show(x)


def _with_ci(value: float, low: float, high: float, fmt: str = ".3f") -> str:
    show = lambda x: f(x, fmt)  # noqa: E731
    return show(value) + ("" if low != low or high != high else f" [{_bound(low, show)}, {_bound(high, show)}]")


def headline_section(headlines: list, summary: pd.DataFrame, overall: pd.DataFrame) -> list[str]:
    """The answer first: one sentence per student, the Pareto plot, then accuracy per model x task."""
    from bench.analysis.headline import method_note, sentence

    lines = ["## Headline", ""]
    if headlines:
        for h in headlines:
            lines += [f"**{sentence(h)}**", "", method_note(h), ""]
    else:
        lines += ["No teacher and student to compare in this run; the tables below give each model's figures.", ""]
    lines += [
        "![Pareto frontier](pareto.png)",
        "",
        "*Accuracy (95% interval) against $ per correct answer (log scale; horizontal bars: its 95% "
        "interval, see Cost); dashed: the Pareto frontier; hollow: dominated. All tasks: mean accuracy "
        "over the tasks, with a normal interval from the per-task standard errors.*",
        "",
    ]
    tasks = list(dict.fromkeys(summary["task"]))
    rows = []
    for o in overall.itertuples():
        mine = summary[summary["model"] == o.model].set_index("task")
        rows.append(
            [o.model, o.role]
            + [
                _with_ci(mine.loc[t, "accuracy"], mine.loc[t, "ci95_low"], mine.loc[t, "ci95_high"])
                if t in mine.index
                else ""
                for t in tasks
            ]
            + [_with_ci(o.accuracy, o.ci95_low, o.ci95_high)]
        )
    lines += ["Accuracy [95% interval]:", ""]
    return lines + table(
        ["model", "role", *tasks, "all tasks (mean)"], rows, "---|---|" + "---:|" * len(tasks) + "---:"
    )


def models_section(cfg: dict, prices: dict) -> list[str]:
    rows = []
    for _name, m in sorted(cfg["models"].items(), key=lambda kv: (ROLE_ORDER.get(kv[1]["role"], 9), kv[0])):
        p = prices["models"].get(m["name"])
        if p is None:  # in the config, but no records (an unfinished run)
            continue
        price = cost_bases.get(p["basis"]).priced_as(p)
        t = p.get("training", {})
        trained = "; ".join(
            part
            for part in (
                f"{t['gpu_hours']:,.0f} {t.get('gpu') or ''} GPU-h".replace("  ", " ") if t.get("gpu_hours") else "",
                f"${t['usd']:,.0f}" if t.get("usd") else "",
                t.get("source", ""),
            )
            if part
        )
        rows.append([m["name"], m["role"], f"`{m['source']}`", price, trained, m.get("description", "")])
    return table(["model", "role", "source", "priced as", "reported training cost", "description"], rows)


def _n(r) -> str:
    return str(r.n) if r.repeats == 1 else f"{r.n_items} x {r.repeats}"


def quality_section(summary: pd.DataFrame, published: pd.DataFrame) -> list[str]:
    """Measured rows per task, then the paper's pass@1 on the same benchmark ("reported")."""
    rows = []
    for task in dict.fromkeys(summary["task"]):
        for r in summary[summary["task"] == task].itertuples():
            rows.append(
                [
                    r.task,
                    r.model,
                    r.role,
                    f(r.accuracy),
                    f"[{f(r.ci95_low)}, {f(r.ci95_high)}]",
                    f(r.se) + ("" if r.se_method == "iid" else f" ({r.se_method}, {r.n_clusters})"),
                    _n(r),
                    f(r.quality_retained_vs_teacher, ".1%"),
                    "yes" if r.pareto_optimal else "no",
                ]
            )
        for p in published[(published["task"] == task) & (published["metric"] == "pass@1")].itertuples():
            rows.append([task, f"*{p.model}*", "reported", f(p.value), "", "", "", "", ""])
    lines = ["", "## Quality", ""]
    lines += table(
        ["task", "model", "role", "accuracy", "95% CI", "SE", "n", "retained vs teacher", "Pareto-optimal"],
        rows,
        "---|---|---|---:|:---:|---:|---:|---:|---",
    )
    if not published.empty:
        lines += [
            "",
            "*reported*: pass@1 published for the same benchmark (`bench/reference/`, source per "
            "row in the Reported section); not measured here, no interval.",
        ]
    return lines


def repeats_section(summary: pd.DataFrame) -> list[str]:
    """pass@k, cons@k and where the variance comes from, when items were answered k times."""
    if not ((summary["repeats"] > 1).any() or (summary["se_method"] == "cluster").any()):
        return []
    lines = [
        "",
        "## Repeats and variance",
        "",
        "pass@1 is the mean correctness over all responses; pass@k (unbiased estimator of Chen et "
        "al., 2021) is the chance that at least one of k responses is right; cons@k scores the "
        "majority answer (ties: the answer given first). Variance of correctness between items "
        "(how much items differ in difficulty) and within an item (sampling noise), one-way "
        "random-effects ANOVA; within is not estimable with one response per item.",
        "",
    ]
    lines += table(
        ["task", "model", "k", "pass@1", "pass@k", "cons@k", "between-item var", "within-item var", "SE", "clusters"],
        [
            [
                r.task,
                r.model,
                str(r.repeats),
                f(r.accuracy),
                f(r.pass_at_k),
                f(r.cons_at_k),
                f(r.var_between_items, ".4f"),
                f(r.var_within_items, ".4f"),
                f(r.se, ".4f"),
                f"{r.n_clusters} ({r.se_method})",
            ]
            for r in summary.itertuples()
        ],
        "---|---|---:|---:|---:|---:|---:|---:|---:|---",
    )
    return lines


def reported_section(summary: pd.DataFrame, published: pd.DataFrame, repro: pd.DataFrame) -> list[str]:
    lines = ["", "## Reported figures and reproduction", ""]
    if published.empty:
        return lines + [
            "No task of this run measures a benchmark with published figures in `bench/reference/` "
            "(task mapping: `bench/reference/tasks.csv`)."
        ]
    lines += [
        "Published figures for the benchmarks this run's tasks measure (DeepSeek-R1 paper; sources and "
        "settings in `bench/reference/README.md`: 64 samples per item at temperature 0.6, top-p 0.95, "
        "up to 32,768 tokens).",
        "",
    ]
    lines += table(
        ["task", "benchmark", "model", "metric", "reported", "source"],
        [[p.task, p.benchmark, p.model, p.metric, f(100 * p.value, ".1f"), p.source] for p in published.itertuples()],
        "---|---|---|---|---:|---",
    )
    if repro.empty:
        return lines + [
            "",
            "No measured model names a reported counterpart (`reported_as` in its model config), "
            "so there is no reproduction delta.",
        ]
    lines += [
        "",
        "Reproduction: measured minus reported, in points; *inside* says whether the reported value "
        "lies inside the measured 95% interval.",
        "",
    ]
    lines += table(
        ["task", "model", "reported as", "metric", "measured [95% CI]", "reported", "delta (pts)", "inside"],
        [
            [
                r.task,
                r.model,
                r.reported_as,
                r.metric,
                f(100 * r.measured, ".1f")
                + ("" if math.isnan(r.ci95_low) else f" [{f(100 * r.ci95_low, '.1f')}, {f(100 * r.ci95_high, '.1f')}]"),
                f(100 * r.reported, ".1f"),
                f(r.delta_pts, "+.1f"),
                "n/a"
                if r.inside_ci95 is None or r.inside_ci95 != r.inside_ci95
                else ("yes" if r.inside_ci95 else "no"),
            ]
            for r in repro.itertuples()
        ],
        "---|---|---|---|:---:|---:|---:|---",
    )
    return lines


def paired_section(paired: pd.DataFrame) -> list[str]:
    if paired.empty:
        return []
    lines = [
        "",
        "## Paired comparison with the teacher",
        "",
        "Each model against the teacher on the items both answered (with k responses per item, each "
        "item counts once, with its mean correctness): difference in accuracy (model - teacher, points) "
        "with a 95% paired bootstrap interval (items resampled, 10,000 times), an exact paired test "
        "(McNemar's on the items only one of them got right; with k responses, the exact sign-flip "
        "test on the per-item differences, which reduces to it), the smallest difference these items "
        "could detect (80% power, alpha 0.05) at the discordance observed here (the share of items on "
        "which the two differ, or the mean squared per-item difference; formula in the README), and "
        "quality retained (model / teacher) with its bootstrap interval. Over all tasks, items are "
        "resampled within each task (stratified).",
        "",
    ]
    lines += table(
        [
            "task",
            "model",
            "n items",
            "difference (pts)",
            "95% CI",
            "teacher better",
            "model better",
            "p (test)",
            "detectable at observed discordance (pts)",
            "retained",
            "retained 95% CI",
        ],
        [
            [
                c.task,
                c.model,
                str(c.n),
                f"{100 * c.diff:+.1f}",
                f"[{100 * c.diff_low:+.1f}, {100 * c.diff_high:+.1f}]",
                str(c.only_teacher_right),
                str(c.only_model_right),
                f"{c.p_value:.2g} ({c.test})",
                f(100 * c.mdd80, ".1f"),
                f(c.retained, ".1%"),
                f"[{f(c.retained_low, '.1%')}, {f(c.retained_high, '.1%')}]",
            ]
            for c in paired.itertuples()
        ],
        "---|---|---:|---:|:---:|---:|---:|---|---:|---:|:---:",
    )
    lines += [""]
    for c in paired[paired["task"] == "all tasks"].itertuples():
        verdict = "a significant difference" if c.p_value < 0.05 else "no difference these items can resolve"
        test = "McNemar exact p" if c.test == MCNEMAR else f"{c.test}: p"
        lines.append(
            f"- Over all tasks, {c.model} scores {abs(100 * c.diff):.1f} points "
            f"{'below' if c.diff < 0 else 'above'} the teacher (95% paired CI "
            f"[{100 * c.diff_low:+.1f}, {100 * c.diff_high:+.1f}], {test} = {c.p_value:.2g}): "
            f"{verdict}; it keeps {f(c.retained, '.1%')} of the teacher's accuracy "
            f"([{f(c.retained_low, '.1%')}, {f(c.retained_high, '.1%')}])."
        )
    return lines


def _usd_ci(value: float, low: float, high: float) -> str:
    return usd(value) + ("" if low != low or high != high else f" [{_bound(low, usd)}, {_bound(high, usd)}]")


def cost_section(summary: pd.DataFrame, overall: pd.DataFrame) -> list[str]:
    lines = [
        "",
        "## Cost",
        "",
        "95% intervals from the run itself (`bench/analysis/cost_intervals.py`): a block bootstrap of each model x "
        "task's throughput over time for self-hosted serving time, the items resampled for $ per correct "
        "answer; API models' token counts are exact. *Interval covers*: throughput + items (both "
        "measured), exact tokens + items (API billing), exact FLOPs + items (compute billing: token "
        "counts x FLOPs per token), items only (no request times in the records: "
        "serving time measured once). Generation is priced per 1M generated tokens, log-likelihood "
        "scoring per 1M processed (prompt + continuation) tokens; each column is n/a for the other kind "
        "of task.",
        "",
    ]
    lines += table(
        [
            "task",
            "model",
            "basis",
            "$ [95% CI]",
            "$ / 1k samples",
            "$ / correct [95% CI]",
            "$ / 1M generated tok",
            "$ / 1M processed tok",
            "steady $ / 1M generated tok",
            "steady $ / 1M processed tok",
            "cost vs teacher [95% CI]",
            "interval covers",
        ],
        [
            [
                r.task,
                r.model,
                r.cost_basis,
                _usd_ci(r.usd, r.usd_ci95_low, r.usd_ci95_high),
                usd(r.usd_per_1k_samples),
                _usd_ci(r.usd_per_correct, r.usd_per_correct_ci95_low, r.usd_per_correct_ci95_high),
                usd(r.usd_per_1m_generated_tokens),
                usd(r.usd_per_1m_processed_tokens),
                usd(r.steady_usd_per_1m_generated_tokens),
                usd(r.steady_usd_per_1m_processed_tokens),
                _with_ci(
                    r.cost_ratio_vs_teacher, r.cost_ratio_vs_teacher_ci95_low, r.cost_ratio_vs_teacher_ci95_high, ".2f"
                ),
                r.cost_ci_method,
            ]
            for r in summary.itertuples()
        ],
        "---|---|---|" + "---:|" * 8 + "---",
    )
    lines += ["", "Over all tasks (mean accuracy: normal interval from the per-task standard errors):", ""]
    lines += table(
        ["model", "role", "mean accuracy [95% CI]", "$", "$ / correct [95% CI]", "$ / 1k samples", "Pareto-optimal"],
        [
            [
                r.model,
                r.role,
                _with_ci(r.accuracy, r.ci95_low, r.ci95_high),
                usd(r.usd),
                _usd_ci(
                    r.usd_per_correct,
                    getattr(r, "usd_per_correct_ci95_low", math.nan),
                    getattr(r, "usd_per_correct_ci95_high", math.nan),
                ),
                usd(r.usd_per_1k_samples),
                "yes" if r.pareto_optimal else "no",
            ]
            for r in overall.itertuples()
        ],
        "---|---|---:|---:|---:|---:|---",
    )
    stalled = summary[summary["latency_stall"].astype(bool)]
    lines += [
        "",
        "Stalls (request latency p99 over 10x its median): "
        + (
            "none."
            if stalled.empty
            else "; ".join(
                f"**{r.model} / {r.task}** (p50 {r.request_latency_p50_s * 1000:.0f} ms, p99 "
                f"{r.request_latency_p99_s * 1000:.0f} ms)"
                for r in stalled.itertuples()
            )
            + ": their serving time (and, where it is billed, their $) may be inflated; rerun them before "
            "relying on it."
        ),
    ]
    return lines + [
        "",
        "The Pareto plot is at the top of this report.",
        "",
        "![cost versus quality per task](cost_quality.png)",
    ]


def speed_section(summary: pd.DataFrame, servers: pd.DataFrame) -> list[str]:
    lines = ["", "## Speed", ""]
    lines += [
        "*request p50/p99*: client-measured latency of each HTTP request, send to full response "
        "(`requests.jsonl`; for runs without it, a multiple-choice item's mean over its option requests). "
        "*item p50*: an item's first request sent to its last answer received; a multiple-choice item's "
        "option requests overlap (or wait apart in a full request pool), so this is neither their sum nor "
        "one request's time (n/a: no request times recorded). "
        "*(stall)*: request p99 over 10x its p50.",
        "",
    ]
    lines += table(
        [
            "task",
            "model",
            "serving s",
            "device s",
            "out tok/s",
            "req/s",
            "request p50/p99 ms",
            "item p50 ms",
            "TTFT p50/p90/p99 ms",
            "TPOT p50/p90/p99 ms",
        ],
        [
            [
                r.task,
                r.model,
                f(r.serving_s, ".1f"),
                f(r.device_s, ".1f"),
                f(r.output_tokens_per_s, ".0f"),
                f(r.requests_per_s, ".1f"),
                f"{f(r.request_latency_p50_s * 1000, '.1f')}/{f(r.request_latency_p99_s * 1000, '.1f')}"
                + (" (stall)" if r.latency_stall else ""),
                f(r.item_latency_p50_s * 1000, ".1f"),
                "/".join(f(getattr(r, f"ttft_p{q}_s") * 1000, ".1f") for q in (50, 90, 99)),
                "/".join(f(getattr(r, f"tpot_p{q}_s") * 1000, ".1f") for q in (50, 90, 99)),
            ]
            for r in summary.itertuples()
        ],
        "---|---|" + "---:|" * 7 + "---:",
    )
    cached = int(summary["requests_from_cache"].sum()) if "requests_from_cache" in summary else 0
    if cached:
        lines += [
            "",
            f"{cached:,} of {int(summary['requests'].sum()):,} requests were answered from the response "
            "cache (an earlier run of the same models and settings); their times, tokens and costs are "
            "those measured when they were answered.",
        ]
    if servers.empty and cached:
        lines += ["", "No server was started: every answer came from the response cache."]
    if not servers.empty:
        lines += [
            "",
            "Server start-up and warm-up (one request of each kind the tasks send, before "
            "metering), neither included in the task costs above:",
            "",
        ]
        lines += table(
            ["model", "start-up s", "warm-up s", "held s"],
            [
                [s.model, f(s.startup_s, ".1f"), f(getattr(s, "warmup_s", math.nan), ".1f"), f(s.held_s, ".1f")]
                for s in servers.itertuples()
            ],
            "---|---:|---:|---:",
        )
    energy = summary["energy_j_per_output_token"].dropna()
    return lines + [
        "",
        "Energy: not measured (NVML is not available where this ran)."
        if energy.empty
        else "Energy (NVML, all visible GPUs): "
        + ", ".join(
            f"{r.model}/{r.task} {r.energy_j_per_output_token:.3g} J per output token"
            for r in summary.itertuples()
            if not math.isnan(r.energy_j_per_output_token)
        ),
    ]


def accounting_section(summary: pd.DataFrame, buckets: pd.DataFrame) -> list[str]:
    lines = [
        "",
        "## Token accounting check",
        "",
        "Per-sample token sums (prompt + completion) against vLLM's own Prometheus counters "
        "(`vllm:prompt_tokens_total`, `vllm:generation_tokens_total`) over the same task:",
        "",
    ]
    lines += table(
        ["task", "model", "ours", "server", "difference"],
        [
            [
                r.task,
                r.model,
                str(r.prompt_tokens + r.completion_tokens),
                f(r.server_tokens, ".0f"),
                f(r.token_diff_vs_server, "+.2%"),
            ]
            for r in summary.itertuples()
        ],
        "---|---|---:|---:|---:",
    )
    diffs = summary["token_diff_vs_server"].abs().dropna()
    if len(diffs):
        lines += ["", f"Largest difference: {diffs.max():.2%} (API models have no server counters here)."]
    lines += ["", "## Budget diagnostics", ""]
    lines += table(
        ["task", "model", "hit token limit", "unclosed reasoning", "mean reasoning tokens"],
        [
            [
                r.task,
                r.model,
                f(r.finish_length_share, ".1%"),
                f(r.unclosed_reasoning_share, ".1%"),
                f(r.reasoning_tokens_mean, ".1f"),
            ]
            for r in summary.itertuples()
            if r.metric != "acc"
        ],
        "---|---|---:|---:|---:",
    )
    if not buckets.empty:
        lines += ["", "Accuracy by output length (completion tokens):", ""]
        lines += table(
            ["task", "model", "length", "n", "accuracy"],
            [[b.task, b.model, str(b.length_bucket), str(b.n), f(b.accuracy)] for b in buckets.itertuples()],
            "---|---|---|---:|---:",
        )
    return lines


def reading_notes() -> list[str]:
    return [
        "",
        "## How to read this",
        "",
        "- *accuracy* is the mean of `correct` over this model x task in `samples.jsonl` (with k responses "
        "per item, over all of them: pass@1). The interval is a 95% Wilson score interval; when items "
        "were answered k times or come in groups (the task's cluster field), it is computed at the "
        "effective sample size given by the cluster-robust (CRV1) standard error, *SE* (method and number "
        "of clusters in brackets).",
        "- *$* " + "; ".join(b.description for b in cost_bases.bases()) + ". Prices with "
        "their sources and dates are in `prices.json`. *$ / correct* is the figure that matters when "
        "models think for different lengths.",
        "- *$ / 1M generated tok* (generation tasks) and *$ / 1M processed tok* (log-likelihood tasks: "
        "prompt and continuation tokens, nothing generated) never mix the two kinds of work; *steady* prices "
        "them at the model's measured throughput over all its tasks of that kind.",
        "- *Pareto-optimal*: no other model is both cheaper per correct answer and at least as accurate.",
        "- Every number here is recomputed from the run folder by `python -m bench report <run folder>`.",
        "",
    ]


def evidence_section(samples: pd.DataFrame, pairs: pd.DataFrame, recognition: pd.DataFrame, seed: int) -> list[str]:
    """Distillation evidence: how it is measured, the reading, the κ matrices and every pair."""
    from bench.analysis import evidence

    repeated = "repeat" in samples and (samples["repeat"].fillna(0) > 0).any()
    lines = [
        "",
        "## Distillation evidence",
        "",
        "Does a model imitate another beyond shared correctness? Two good models agree on right "
        "answers because both are right; a distilled student also agrees with its teacher on the "
        "wrong ones. 95% intervals from a seeded item bootstrap; definitions in `bench/analysis/evidence.py`. "
        "Error consistency is Cohen's κ on right/wrong, undefined when either model is always right or "
        "always wrong. On multiple choice, κp (`kappa_p` in `evidence.csv`) is CAPA's κp (Goel et al., 2025, "
        '"Great Models Think Alike and this Undermines AI Oversight", arXiv:2502.04313) on the chosen '
        "option: chance agreement from the accuracies with errors spread evenly over the wrong options; "
        "Cohen's κ on the chosen option (`cohen_kappa_choice`), beside it, takes chance from each model's "
        "own option frequencies instead."
        + (
            " Items were answered several times: each pair is compared on the first response (repeat 0)."
            if repeated
            else ""
        ),
        "",
        "### Reading",
        "",
    ]
    lines += evidence.reading(samples, pairs, recognition, seed)
    if pairs.empty:
        return lines
    lines += [
        "",
        "### Error consistency matrix (Cohen's κ on right/wrong; 1 on the diagonal; undefined where a "
        "model is always right or always wrong)",
        "",
    ]
    for task in dict.fromkeys(pairs["task"]):
        m = evidence.kappa_matrix(pairs, task)
        cell = lambda v: "undefined" if v != v else f"{v:.2f}"  # noqa: E731
        lines += (
            [f"{task}:", ""]
            + table(
                ["", *m.columns],
                [[a, *(cell(v) for v in m.loc[a])] for a in m.index],
                "---|" + "---:|" * (len(m.columns) - 1) + "---:",
            )
            + [""]
        )
    lines += ["### All pairs", ""]
    return lines + table(
        ["task", "pair", "metric", "value [95% CI]", "chance", "n"],
        [
            [
                p.task,
                f"{p.model_a} / {p.model_b}",
                evidence.METRIC_LABELS.get(p.metric, p.metric),
                evidence.value_text(p),
                f(p.chance, ".2f"),
                str(p.n),
            ]
            for p in pairs.itertuples()
        ],
        "---|---|---|---|---:|---:",
    )
