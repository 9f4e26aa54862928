"""Per model x task summary, computed only from the records and prices of a run (no I/O here)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from bench.analysis import cost_bases
from bench.analysis.accuracy import accuracy_stats
from bench.analysis.cost import pareto_optimal
from bench.analysis.cost_intervals import latency_stall
from bench.config import ROLE_ORDER

QUANTILES = (50, 90, 99)
GENERATE = "generate"
LOGLIKELIHOOD = "loglikelihood"
LENGTH_EDGES = (0, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, math.inf)


def _nan(value) -> float:
    return math.nan if value is None or pd.isna(value) else float(value)


def _percentiles(values: pd.Series, prefix: str) -> dict[str, float]:
    v = values.dropna().astype(float)
    return {f"{prefix}_p{q}_s": float(np.percentile(v, q)) if len(v) else math.nan for q in QUANTILES}


def request_kind(g: pd.DataFrame) -> str:
    """``loglikelihood`` for a task scored by option log-likelihoods (one request per option),
    ``generate`` for one whose samples are one generation each."""
    return LOGLIKELIHOOD if (g["n_requests"] > 1).all() else GENERATE


def request_latencies(g: pd.DataFrame, requests: pd.DataFrame | None = None) -> pd.Series:
    """Client latency of each HTTP request of this model x task, send to full response: from
    ``requests.jsonl`` where the run has it; otherwise from the samples, where a multiple-choice
    sample's summed latency over its option requests is divided by their number (their mean:
    records written before ``requests.jsonl`` keep no single option's time)."""
    if requests is not None and not requests.empty:
        mine = requests[(requests["model"] == g["model"].iloc[0]) & (requests["task"] == g["task"].iloc[0])]
        if len(mine):
            return (mine["answered_at"].astype(float) - mine["sent_at"].astype(float)).reset_index(drop=True)
    return g["latency_s"].astype(float) / g["n_requests"].clip(lower=1)


def item_latencies(g: pd.DataFrame) -> pd.Series:
    """First request sent to last answer received, per sample, where the records carry both."""
    if "sent_at" not in g or "done_at" not in g:
        return pd.Series(dtype=float)
    return (g["done_at"].astype(float) - g["sent_at"].astype(float)).dropna()


def _live_tokens(g: pd.DataFrame) -> int:
    live = g[~g["from_cache"].fillna(False).astype(bool)] if "from_cache" in g else g
    return int(live["prompt_tokens"].sum() + live["completion_tokens"].sum())


def _row(g: pd.DataFrame, run: pd.Series, price: dict, requests: pd.DataFrame | None) -> dict:
    n = len(g)
    k = int(round(g["correct"].sum()))
    serving = float(run["serving_s"])
    prompt, cached, out = (int(g[c].sum()) for c in ("prompt_tokens", "cached_prompt_tokens", "completion_tokens"))
    basis = cost_bases.get(price["basis"])
    usage = cost_bases.Usage(prompt, cached, out, serving, int(g["n_requests"].sum()))
    usd, device_s = basis.usd(price, usage), basis.device_seconds(price, serving)
    server_tokens = _nan(run.get("server_prompt_tokens")) + _nan(run.get("server_generation_tokens"))
    closed = g["reasoning_closed"]
    kind = request_kind(g)
    per_request, per_item = request_latencies(g, requests), item_latencies(g)
    p50, p99 = float(per_request.median()), float(np.percentile(per_request, 99))
    return {
        "model": g["model"].iloc[0],
        "role": g["role"].iloc[0],
        "task": g["task"].iloc[0],
        "metric": g["metric"].iloc[0],
        "request_kind": kind,
        "n": n,
        "n_correct": k,
        # accuracy (= pass@1), stderr (iid, as lm-eval reports it), se and the 95% interval
        # (clustered when items repeat or come in groups), pass@k, cons@k, variance parts.
        **accuracy_stats(g),
        "chance": _nan(run.get("chance")),
        "prompt_tokens": prompt,
        "cached_prompt_tokens": cached,
        "completion_tokens": out,
        "reasoning_tokens_mean": float(g["reasoning_tokens"].mean()),
        "finish_length_share": float(g["finish_reason"].str.contains("length").mean()),
        "unclosed_reasoning_share": float((closed == False).sum() / n),  # noqa: E712 (None is not False)
        "requests": int(g["n_requests"].sum()),
        "requests_from_cache": int(np.nan_to_num(_nan(run.get("requests_cached")))),
        "serving_s": serving,
        "device_s": device_s,
        "output_tokens_per_s": out / serving if serving > 0 else math.nan,
        "requests_per_s": g["n_requests"].sum() / serving if serving > 0 else math.nan,
        "request_latency_p50_s": p50,
        "request_latency_p99_s": p99,
        "latency_stall": latency_stall(p50, p99),
        "item_latency_p50_s": float(per_item.median()) if len(per_item) else math.nan,
        **_percentiles(g["ttft_s"], "ttft"),
        **_percentiles(g["tpot_s"], "tpot"),
        "server_tokens": server_tokens,
        "energy_j_per_output_token": _nan(run.get("energy_j")) / out if out else math.nan,
        # Only what this run asked the server for: answers from the response cache are not counted there.
        "token_diff_vs_server": _live_tokens(g) / server_tokens - 1 if server_tokens else math.nan,
        "cost_basis": price["basis"],
        "usd": usd,
        "usd_per_sample": usd / n,
        "usd_per_1k_samples": usd / n * 1000.0,
        "usd_per_correct": usd / k if k else math.inf,
        # Generation is priced per generated token, log-likelihood scoring per processed token
        # (prompt + continuation; it generates nothing): each column is NaN for the other kind.
        "usd_per_1m_generated_tokens": usd / out * 1e6 if kind == GENERATE and out else math.nan,
        "usd_per_1m_processed_tokens": usd / (prompt + out) * 1e6
        if kind == LOGLIKELIHOOD and prompt + out
        else math.nan,
    }


def summarize(
    samples: pd.DataFrame,
    task_runs: pd.DataFrame,
    prices: dict,
    model_runs: pd.DataFrame | None = None,
    requests: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One tidy row per model x task; every number is a function of the records and prices passed in.

    ``requests``: one row per HTTP request (``requests.jsonl``) for per-request latencies; without
    it (older runs) they are taken from the samples (see ``request_latencies``).

    ``model_runs``: when a model's tasks shared one request pool, the server's counters and the
    energy were measured for the model as a whole: the token check is then per model (the same
    figure on each of its rows) and the energy is split in proportion to serving time."""
    for col, default in (
        ("cached_prompt_tokens", 0),
        ("ttft_s", None),
        ("tpot_s", None),
        ("repeat", 0),
        ("cluster", None),
        ("extracted", ""),
    ):
        if col not in samples:
            samples = samples.assign(**{col: default})
    runs = task_runs.set_index(["model", "task"])
    rows = [
        _row(g, runs.loc[(model, task)], prices["models"][model], requests)
        for (model, task), g in samples.groupby(["model", "task"], sort=False)
    ]
    df = pd.DataFrame(rows)
    if model_runs is not None and not model_runs.empty:
        df = _model_counters(df, samples, model_runs)
    df = _add_model_level(df, prices)
    df = _add_vs_teacher(df)
    df["pareto_optimal"] = False
    for _, idx in df.groupby("task", sort=False).groups.items():
        df.loc[idx, "pareto_optimal"] = pareto_optimal(df.loc[idx, "usd_per_correct"], df.loc[idx, "accuracy"])
    df["_r"] = df["role"].map(ROLE_ORDER)
    # Tasks keep the suite's order (first appearance in the records); models go by role.
    df["_t"] = df["task"].map({t: i for i, t in enumerate(dict.fromkeys(samples["task"]))})
    return df.sort_values(["_t", "_r", "model"], kind="stable").drop(columns=["_r", "_t"]).reset_index(drop=True)


def _model_counters(df: pd.DataFrame, samples: pd.DataFrame, model_runs: pd.DataFrame) -> pd.DataFrame:
    """Token check and energy from the models' records (see ``summarize``)."""
    df = df.copy()
    for run in model_runs.drop_duplicates("model", keep="last").itertuples():
        rows = df["model"] == run.model
        if not rows.any() or pd.isna(run.server_prompt_tokens):
            continue
        server = float(run.server_prompt_tokens) + float(run.server_generation_tokens)
        live = _live_tokens(samples[samples["model"] == run.model])
        df.loc[rows, "server_tokens"] = server
        df.loc[rows, "token_diff_vs_server"] = live / server - 1 if server else math.nan
        if not pd.isna(run.energy_j):
            share = df.loc[rows, "serving_s"] / df.loc[rows, "serving_s"].sum()
            df.loc[rows, "energy_j_per_output_token"] = (
                float(run.energy_j) * share / df.loc[rows, "completion_tokens"].replace(0, math.nan)
            )
    return df


def _work(rows: pd.DataFrame, tokens: pd.Series) -> cost_bases.Work:
    return cost_bases.Work(len(rows), float(tokens.sum()), float(rows["serving_s"].sum()), float(rows["usd"].sum()))


def _add_model_level(df: pd.DataFrame, prices: dict) -> pd.DataFrame:
    """Steady-state $ per 1M tokens, per model and kind of work, on that kind's rows only:
    generated tokens over the model's generation tasks, processed (prompt + generated) tokens
    over its log-likelihood tasks, each priced by the model's cost basis (``bench/analysis/cost_bases.py``:
    self-hosted, the device's $/s over the model's throughput across those tasks; API, the
    output list price for generated tokens and its $ over its processed tokens)."""
    generated, processed = {}, {}
    for model, g in df.groupby("model", sort=False):
        price = prices["models"][model]
        basis = cost_bases.get(price["basis"])
        gen, ll = g[g["request_kind"] == GENERATE], g[g["request_kind"] == LOGLIKELIHOOD]
        generated[model] = basis.steady_usd_per_1m(price, _work(gen, gen["completion_tokens"]), generated=True)
        processed[model] = basis.steady_usd_per_1m(
            price, _work(ll, ll["prompt_tokens"] + ll["completion_tokens"]), generated=False
        )
    gen_rows, ll_rows = df["request_kind"] == GENERATE, df["request_kind"] == LOGLIKELIHOOD
    return df.assign(
        steady_usd_per_1m_generated_tokens=df["model"].map(generated).where(gen_rows),
        steady_usd_per_1m_processed_tokens=df["model"].map(processed).where(ll_rows),
    )


def _add_vs_teacher(df: pd.DataFrame) -> pd.DataFrame:
    teacher = df[df["role"] == "teacher"].set_index("task")
    acc = df["task"].map(teacher["accuracy"]) if not teacher.empty else math.nan
    usd = df["task"].map(teacher["usd"]) if not teacher.empty else math.nan
    # Undefined (NaN, shown as n/a), not inf, where the teacher scores 0 or costs nothing.
    acc, usd = (x.where(x > 0) if isinstance(x, pd.Series) else x for x in (acc, usd))
    return df.assign(quality_retained_vs_teacher=df["accuracy"] / acc, cost_ratio_vs_teacher=df["usd"] / usd)


def length_buckets(samples: pd.DataFrame) -> pd.DataFrame:
    """Accuracy by output length (completion tokens in power-of-two buckets), per model x task."""
    edges = list(LENGTH_EDGES)
    labels = [f"{int(a) + 1}-{int(b)}" if b != math.inf else f">{int(a)}" for a, b in zip(edges, edges[1:])]
    bucket = pd.cut(samples["completion_tokens"], bins=edges, labels=labels, right=True)
    out = (
        samples.assign(length_bucket=bucket)
        .groupby(["model", "task", "length_bucket"], observed=True, sort=False)
        .agg(n=("correct", "size"), accuracy=("correct", "mean"))
        .reset_index()
    )
    return out
