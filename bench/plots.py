"""Cost-versus-quality figures, drawn from a summary table only: each as PNG (for the markdown
report) and SVG (vector, for papers and the self-contained HTML report)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

ROLE_STYLE = {"teacher": ("tab:blue", "o"), "student": ("tab:orange", "s"),
              "control": ("tab:green", "^"), "baseline": ("tab:gray", "D")}


FORMATS = ("png", "svg")
# Text stays text in the SVG; fixed ids make the file reproducible.
SVG_RC = {"svg.fonttype": "none", "svg.hashsalt": "distill-bench"}


def _figure(width: float, height: float, panels: int):
    """A figure outside pyplot (no global state, no GUI backend)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * panels, height))
    return fig, fig.subplots(1, panels, squeeze=False)


def _save(fig, path: Path) -> None:
    """``path`` (a .png name) and the same name in every other format (atomic writes: a full
    disk is reported with the file's name)."""
    import io

    import matplotlib

    from bench.records import write_atomic

    with matplotlib.rc_context(SVG_RC):
        for fmt in FORMATS:
            image = io.BytesIO()
            fig.savefig(image, format=fmt, dpi=130, metadata={"Date": None} if fmt == "svg" else None)
            write_atomic(path.with_suffix(f".{fmt}"), image.getvalue())


def _log_axis(ax, values: pd.Series, label: str) -> None:
    """A log cost axis spanning at least one decade, so a labelled tick always shows."""
    from matplotlib.ticker import LogLocator, NullFormatter

    finite = values[(values > 0) & values.map(math.isfinite)]
    ax.set_xscale("log")
    if len(finite):
        lo, hi = finite.min(), finite.max()
        centre, span = math.sqrt(lo * hi), max(math.sqrt(hi / lo) * 1.5, math.sqrt(10))
        ax.set_xlim(centre / span, centre * span)
    ax.xaxis.set_major_locator(LogLocator(base=10))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(label)


def _points(ax, rows: pd.DataFrame, cost_col: str, hollow_dominated: bool) -> None:
    for r in rows.itertuples():
        color, marker = ROLE_STYLE.get(r.role, ("black", "x"))
        cost = getattr(r, cost_col)
        if not math.isfinite(cost):
            continue
        low, high = (max(0.0, r.accuracy - r.ci95_low), max(0.0, r.ci95_high - r.accuracy)) \
            if hasattr(r, "ci95_low") else (r.ci95_halfwidth, r.ci95_halfwidth)
        face = "white" if hollow_dominated and not r.pareto_optimal else color
        ax.errorbar(cost, r.accuracy, yerr=[[low], [high]], fmt=marker, color=color, mfc=face,
                    capsize=3, label=f"{r.model} ({r.role})")
        ax.annotate(r.model, (cost, r.accuracy), fontsize=7, xytext=(4, 4), textcoords="offset points")


def _finish(fig, axes) -> None:
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=max(1, len(labels)), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))


def cost_quality(summary: pd.DataFrame, path: Path) -> None:
    """Accuracy (95% CI) against $ per 1,000 samples, one panel per task, chance drawn."""
    tasks = list(dict.fromkeys(summary["task"]))
    fig, axes = _figure(4.2, 3.8, len(tasks))
    for ax, task in zip(axes[0], tasks):
        rows = summary[summary["task"] == task]
        _points(ax, rows, "usd_per_1k_samples", hollow_dominated=False)
        chance = rows["chance"].iloc[0]
        if not math.isnan(chance):
            ax.axhline(chance, color="gray", ls=":", lw=1, label="chance")
        _log_axis(ax, rows["usd_per_1k_samples"], "$ per 1,000 samples (log)")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(task)
        ax.set_ylabel("accuracy (95% CI)")
        ax.grid(alpha=0.3, which="both")
    _finish(fig, axes[0])
    _save(fig, path)


def pareto(summary: pd.DataFrame, overall: pd.DataFrame, path: Path) -> None:
    """Quality against $ per correct answer: per task and over all tasks, frontier drawn,
    dominated models hollow."""
    panels = [(t, summary[summary["task"] == t]) for t in dict.fromkeys(summary["task"])]
    panels.append(("all tasks (mean accuracy)", overall))
    fig, axes = _figure(4.2, 3.9, len(panels))
    for ax, (title, rows) in zip(axes[0], panels):
        _points(ax, rows, "usd_per_correct", hollow_dominated=True)
        _log_axis(ax, rows["usd_per_correct"], "$ per correct answer (log)")
        front = rows[rows["pareto_optimal"]].sort_values("usd_per_correct")
        if len(front):
            # The best accuracy attainable at each cost: a staircase through the optimal models,
            # carried to the right edge; everything below it is dominated (shaded).
            right = ax.get_xlim()[1]
            xs = [*front["usd_per_correct"], right]
            ys = [*front["accuracy"], front["accuracy"].iloc[-1]]
            ax.step(xs, ys, where="post", color="black", lw=1, ls="--", label="Pareto frontier")
            ax.fill_between(xs, ys, -0.1, step="post", color="gray", alpha=0.08, lw=0)
            ax.set_xlim(right=right)
        ax.set_ylim(-0.02, 1.08)
        ax.set_title(title)
        ax.set_ylabel("accuracy (95% CI)")
        ax.grid(alpha=0.3, which="both")
    fig.suptitle("Cost-quality Pareto frontier (hollow = dominated)", fontsize=10)
    _finish(fig, axes[0])
    _save(fig, path)
