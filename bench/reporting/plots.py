"""Cost-versus-quality figures, drawn from a summary table only: each as PNG (for the markdown
report) and SVG (vector, for papers and the self-contained HTML report)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

ROLE_STYLE = {
    "teacher": ("tab:blue", "o"),
    "student": ("tab:orange", "s"),
    "control": ("tab:green", "^"),
    "baseline": ("tab:gray", "D"),
}


FORMATS = ("png", "svg")
# Text stays text in the SVG; fixed ids make the file reproducible.
SVG_RC: dict[RcKeyType, Any] = {"svg.fonttype": "none", "svg.hashsalt": "distill-bench"}


COLUMNS = 2
"""Panels per row: the figure stays about 10 inches wide, so at a report's page width (about
1,200 px) its text is drawn near its nominal size instead of shrunk with a long row of panels."""


def _figure(width: float, height: float, panels: int):
    """A figure outside pyplot (no global state, no GUI backend): panels in rows of ``COLUMNS``;
    returns the figure and its used axes, in order (unused grid cells removed)."""
    from matplotlib.figure import Figure

    cols = min(COLUMNS, panels)
    rows = -(-panels // cols)
    fig = Figure(figsize=(width * cols, height * rows + 0.6))
    axes = list(fig.subplots(rows, cols, squeeze=False).ravel())
    for ax in axes[panels:]:
        ax.remove()
    return fig, axes[:panels]


def _save(fig, path: Path) -> None:
    """``path`` (a .png name) and the same name in every other format (atomic writes: a full
    disk is reported with the file's name)."""
    import io

    import matplotlib

    from bench.rundir.records import write_atomic

    with matplotlib.rc_context(SVG_RC):
        for fmt in FORMATS:
            image = io.BytesIO()
            fig.savefig(image, format=fmt, dpi=130, metadata={"Date": None} if fmt == "svg" else None)
            write_atomic(path.with_suffix(f".{fmt}"), image.getvalue())


def _log_axis(ax, rows: pd.DataFrame, column: str, label: str) -> None:
    """A log cost axis spanning the column's values and their intervals, and at least one
    decade, so a labelled tick always shows."""
    from matplotlib.ticker import LogLocator, NullFormatter

    values = pd.concat([rows[c] for c in (column, f"{column}_ci95_low", f"{column}_ci95_high") if c in rows])
    values = values.astype(float)
    finite = values[(values > 0) & values.map(math.isfinite)]
    ax.set_xscale("log")
    if len(finite):
        lo, hi = finite.min(), finite.max()
        centre, span = math.sqrt(lo * hi), max(math.sqrt(hi / lo) * 1.5, math.sqrt(10))
        ax.set_xlim(centre / span, centre * span)
    ax.xaxis.set_major_locator(LogLocator(base=10))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(label)


def _cost_bar(r, cost_col: str, cost: float) -> list[list[float]] | None:
    """Horizontal error bar from the cost column's 95% interval, where there is a finite one."""
    low, high = getattr(r, f"{cost_col}_ci95_low", math.nan), getattr(r, f"{cost_col}_ci95_high", math.nan)
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return None
    return [[max(0.0, cost - low)], [max(0.0, high - cost)]]


def _points(ax, rows: pd.DataFrame, cost_col: str, hollow_dominated: bool) -> None:
    for r in rows.itertuples():
        color, marker = ROLE_STYLE.get(r.role, ("black", "x"))
        cost = getattr(r, cost_col)
        if not math.isfinite(cost):
            continue
        low, high = max(0.0, r.accuracy - r.ci95_low), max(0.0, r.ci95_high - r.accuracy)
        face = "white" if hollow_dominated and not r.pareto_optimal else color
        ax.errorbar(
            cost,
            r.accuracy,
            yerr=[[low], [high]],
            xerr=_cost_bar(r, cost_col, cost),
            fmt=marker,
            color=color,
            mfc=face,
            ms=7,
            capsize=3,
            label=f"{r.model} ({r.role})",
        )
        ax.annotate(r.model, (cost, r.accuracy), fontsize=9, xytext=(5, 5), textcoords="offset points")


def _finish(fig, axes) -> None:
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(4, max(1, len(labels))), fontsize=10, frameon=False)
    fig.tight_layout(rect=(0, 0.6 / fig.get_figheight(), 1, 1))


def cost_quality(summary: pd.DataFrame, path: Path) -> None:
    """Accuracy (95% CI) against $ per 1,000 samples, one panel per task, chance drawn."""
    tasks = list(dict.fromkeys(summary["task"]))
    fig, axes = _figure(5.0, 3.9, len(tasks))
    for ax, task in zip(axes, tasks):
        rows = summary[summary["task"] == task]
        _points(ax, rows, "usd_per_1k_samples", hollow_dominated=False)
        chance = rows["chance"].iloc[0]
        if not math.isnan(chance):
            ax.axhline(chance, color="gray", ls=":", lw=1, label="chance")
        _log_axis(ax, rows, "usd_per_1k_samples", "$ per 1,000 samples (log)")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(task, fontsize=11)
        ax.set_ylabel("accuracy (95% CI)")
        ax.grid(alpha=0.3, which="both")
    _finish(fig, axes)
    _save(fig, path)


def pareto(summary: pd.DataFrame, overall: pd.DataFrame, path: Path) -> None:
    """Quality against $ per correct answer: over all tasks first (the headline's figure), then
    per task; frontier drawn, dominated models hollow, 95% intervals on both axes where known."""
    panels = [("all tasks (mean accuracy)", overall)]
    panels += [(t, summary[summary["task"] == t]) for t in dict.fromkeys(summary["task"])]
    fig, axes = _figure(5.0, 4.0, len(panels))
    for ax, (title, rows) in zip(axes, panels):
        _points(ax, rows, "usd_per_correct", hollow_dominated=True)
        _log_axis(ax, rows, "usd_per_correct", "$ per correct answer (log)")
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
        ax.set_title(title, fontsize=11)
        ax.set_ylabel("accuracy (95% CI)")
        ax.grid(alpha=0.3, which="both")
    fig.suptitle("Cost-quality Pareto frontier (hollow = dominated)", fontsize=12)
    _finish(fig, axes)
    _save(fig, path)
