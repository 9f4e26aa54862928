"""Write a run's report: ``summary.csv``, ``report.md`` and ``cost_quality.png``.

    bench report results/latest          # rebuild from the records on disk, no server

Reads only the run folder (records, the resolved config and the hardware price saved there).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from bench import records
from bench.config import ROLE_ORDER
from bench.summarize import retained, summarize

ROLE_STYLE = {"teacher": ("tab:blue", "o"), "student": ("tab:orange", "s"),
              "control": ("tab:green", "^"), "baseline": ("tab:gray", "D")}


def load_run(run_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    samples = pd.DataFrame(records.read_jsonl(run_dir / records.SAMPLES))
    task_runs = pd.DataFrame(records.read_jsonl(run_dir / records.TASK_RUNS))
    resolved = json.loads((run_dir / "config.json").read_text())
    if samples.empty:
        raise SystemExit(f"{run_dir}: no per-sample records ({records.SAMPLES}); nothing to report")
    return samples, task_runs, resolved


def build(run_dir: Path) -> pd.DataFrame:
    """Recompute the summary from records and write every output of the run folder."""
    samples, task_runs, cfg = load_run(run_dir)
    hw = cfg["hardware"]
    summary = summarize(samples, task_runs, hw["count"], hw["usd_per_device_hour"])
    records.write_atomic(run_dir / "summary.csv", summary.to_csv(index=False))
    plot(summary, run_dir / "cost_quality.png")
    servers = pd.DataFrame(records.read_jsonl(run_dir / records.SERVERS))
    records.write_atomic(run_dir / "report.md", markdown(summary, servers, cfg, run_dir))
    return summary


def plot(summary: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import LogLocator, NullFormatter

    tasks = list(dict.fromkeys(summary["task"]))
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.8), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        rows = summary[summary["task"] == task]
        for _, r in rows.iterrows():
            color, marker = ROLE_STYLE.get(r["role"], ("black", "x"))
            ax.errorbar(r["usd_per_1k_samples"], r["accuracy"],
                        yerr=[[r["accuracy"] - r["ci95_low"]], [r["ci95_high"] - r["accuracy"]]],
                        fmt=marker, color=color, capsize=3, label=f"{r['model']} ({r['role']})")
            ax.annotate(r["model"], (r["usd_per_1k_samples"], r["accuracy"]), fontsize=7,
                        xytext=(4, 4), textcoords="offset points")
        chance = rows["chance"].iloc[0]
        if not math.isnan(chance):
            ax.axhline(chance, color="gray", ls=":", lw=1, label="chance")
        ax.set_xscale("log")
        # At least one decade on the axis, so there is a labelled major tick and no crowding.
        lo, hi = rows["usd_per_1k_samples"].min(), rows["usd_per_1k_samples"].max()
        centre = math.sqrt(lo * hi)
        span = max(math.sqrt(hi / lo) * 1.5, math.sqrt(10))
        ax.set_xlim(centre / span, centre * span)
        ax.xaxis.set_major_locator(LogLocator(base=10))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(task)
        ax.set_xlabel("$ per 1,000 samples (log)")
        ax.set_ylabel("accuracy (95% Wilson CI)")
        ax.grid(alpha=0.3, which="both")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=130)
    plt.close(fig)


def _fmt_usd(x: float) -> str:
    if math.isinf(x) or math.isnan(x):
        return "n/a"
    return f"${x:.2e}" if x < 0.01 else f"${x:,.4f}"


def markdown(summary: pd.DataFrame, servers: pd.DataFrame, cfg: dict, run_dir: Path) -> str:
    hw = cfg["hardware"]
    exp = cfg["experiment"]
    lines = [f"# {exp['name']}: teacher vs. distilled student", ""]
    if exp.get("description"):
        lines += [exp["description"], ""]
    lines += [f"Run folder: `{run_dir}`  ", f"Suite: `{cfg['suite']['name']}` "
              f"({', '.join(cfg['suite']['tasks'])}); items per task: {int(summary['n'].max())}  ",
              f"Hardware: {hw['device_kind']} x {hw['count']} at ${hw['usd_per_device_hour']}/device-hour "
              f"({hw['price_source']}, as of {hw['price_as_of']})", "", "## Models", "",
              "| model | role | source | description |", "|---|---|---|---|"]
    models = sorted(cfg["models"].items(), key=lambda kv: (ROLE_ORDER.get(kv[1]["role"], 9), kv[0]))
    for name, m in models:
        lines.append(f"| {name} | {m['role']} | `{m['source']}` | {m.get('description', '')} |")
    lines += ["", "## Quality and cost per task", "",
              "| task | model | role | accuracy | 95% CI | n | out tokens | reasoning tok/sample | wall s "
              "| out tok/s | $ | $ / 1k samples | $ / correct |",
              "|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for _, r in summary.iterrows():
        lines.append(
            f"| {r['task']} | {r['model']} | {r['role']} | {r['accuracy']:.3f} | "
            f"[{r['ci95_low']:.3f}, {r['ci95_high']:.3f}] | {r['n']} | {r['completion_tokens']} | "
            f"{r['reasoning_tokens_mean']:.1f} | {r['wall_s']:.1f} | {r['output_tokens_per_s']:.0f} | "
            f"{_fmt_usd(r['usd'])} | {_fmt_usd(r['usd_per_1k_samples'])} | {_fmt_usd(r['usd_per_correct'])} |")
    ret = retained(summary)
    if not ret.empty:
        lines += ["", "## Quality retained vs. the teacher", "",
                  "| model | role | task | accuracy | teacher | retained |", "|---|---|---|---:|---:|---:|"]
        for _, r in ret.iterrows():
            lines.append(f"| {r['model']} | {r['role']} | {r['task']} | {r['accuracy']:.3f} | "
                         f"{r['teacher_accuracy']:.3f} | {r['retained']:.1%} |")
    if not servers.empty:
        lines += ["", "## Servers", "", "| model | start-up s | held s |", "|---|---:|---:|"]
        for _, s in servers.iterrows():
            lines.append(f"| {s['model']} | {s['startup_s']:.1f} | {s['held_s']:.1f} |")
    lines += ["", "## Cost versus quality", "", "![cost versus quality](cost_quality.png)", "",
              "## How to read this", "",
              "- *accuracy* is the mean of `correct` over the per-sample records in `samples.jsonl`; "
              "the interval is a 95% Wilson score interval.",
              "- *$* is the task's measured wall time x devices x the hardware price above "
              "(server start-up excluded; see Servers). *$ / correct* divides it by the number of "
              "correct answers, the figure that matters when models think for different lengths.",
              "- *retained* is the model's accuracy divided by the teacher's on the same items.",
              "- Every number here is recomputed from the run folder by `bench report <run folder>`.", ""]
    return "\n".join(lines)
