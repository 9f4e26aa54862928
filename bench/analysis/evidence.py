"""Distillation evidence: does a model imitate another beyond shared correctness? (pure)

    python -m bench evidence results/latest

Two good models agree on right answers because both are right. A model distilled from another
also agrees with it on the *wrong* answers and in the surface of its text. Per pair of models,
over the items both answered (each with a seeded item-bootstrap 95% interval):

- error consistency kappa (Cohen's kappa on right/wrong): observed agreement on right/wrong
  against the agreement p1*p2 + (1-p1)*(1-p2) that the two accuracies alone imply. Undefined
  (NaN, shown as "undefined") when either model is always right or always wrong: its
  agreement with the other is then fixed by the accuracies (the formula gives 0 or 0/0), so
  against a teacher that made no errors there is nothing to measure.
- same wrong answer: among items both got wrong, the share where they gave the same answer.
  Undefined (NaN) when no item is wrong for both. Chance rate for k-way multiple choice
  1/(k-1); for free-form answers there is no chance model, so read it against a control pair.
- kappa_p (multiple choice): CAPA's kappa_p (Goel et al., 2025, "Great Models Think Alike and
  this Undermines AI Oversight", arXiv:2502.04313) on the chosen option (one-hot predictions):
  agreement on the chosen option against p1*p2 + (1-p1)*(1-p2)/(k-1), the agreement the
  accuracies imply when errors spread evenly over the k-1 wrong options. Undefined when either
  model is always right (the agreement is then its accuracy, whatever the errors).
- cohen_kappa_choice (multiple choice): Cohen's kappa on the chosen option, chance agreement
  from the two models' own option frequencies (sum over options of q1_j * q2_j), which does not
  assume errors spread evenly. Undefined when both always choose the same single option.
- surface similarity (generation tasks): mean character n-gram (n = 1..3) Dice overlap of the
  two raw generations; 1 for identical texts.
- teacher recognition: the teacher's mean log-probability per token of another model's
  generations (scored by the teacher's server, ``recognition.jsonl``).

With k responses per item (``repeat`` 0..k-1), the pairwise metrics compare the first
response of each (repeat 0): answers, not rates, are compared item by item.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.analysis.stats import resample_indices
from bench.reporting.formatting import with_interval as _ci

N_BOOT = 2_000


def _kappa(observed: np.ndarray, expected: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(expected >= 1.0, np.nan, (observed - expected) / (1 - expected))


def _error_consistency_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """error_consistency along the last axis (one value per bootstrap resample)."""
    pa, pb = a.mean(axis=-1), b.mean(axis=-1)
    fixed = (pa * (1 - pa) == 0) | (pb * (1 - pb) == 0)  # a model always right or always wrong
    return np.where(fixed, np.nan, _kappa((a == b).mean(axis=-1), pa * pb + (1 - pa) * (1 - pb)))


def error_consistency(a: np.ndarray, b: np.ndarray) -> float:
    """Cohen's kappa on right/wrong between two 0/1 arrays (see the module docstring)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) == 0:
        return math.nan
    return float(_error_consistency_rows(a, b))


def _same_wrong_rows(both_wrong: np.ndarray, same: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(both_wrong.any(axis=-1), (both_wrong & same).sum(axis=-1) / both_wrong.sum(axis=-1), np.nan)


def same_wrong_rate(a_ok: np.ndarray, b_ok: np.ndarray, a_ans: np.ndarray, b_ans: np.ndarray) -> float:
    both_wrong = (np.asarray(a_ok) == 0) & (np.asarray(b_ok) == 0)
    return float(_same_wrong_rows(both_wrong, np.asarray(a_ans) == np.asarray(b_ans)))


def _kappa_p_rows(a_ok: np.ndarray, b_ok: np.ndarray, same: np.ndarray, k: int) -> np.ndarray:
    pa, pb = a_ok.mean(axis=-1), b_ok.mean(axis=-1)
    always_right = (pa == 1) | (pb == 1)
    return np.where(always_right, np.nan, _kappa(same.mean(axis=-1), pa * pb + (1 - pa) * (1 - pb) / (k - 1)))


def kappa_p(a_ok: np.ndarray, b_ok: np.ndarray, a_choice: np.ndarray, b_choice: np.ndarray, k: int) -> float:
    """kappa_p (Goel et al., 2025) on the chosen option: agreement corrected for what the
    accuracies imply when errors spread evenly over the k-1 wrong options."""
    if len(a_ok) == 0 or k < 2:
        return math.nan
    same = np.asarray(a_choice) == np.asarray(b_choice)
    return float(_kappa_p_rows(np.asarray(a_ok, float), np.asarray(b_ok, float), same, k))


def _cohen_rows(a_choice: np.ndarray, b_choice: np.ndarray, k: int) -> np.ndarray:
    """Cohen's kappa on option indices 0..k-1 along the last axis."""
    options = np.arange(k)
    qa = (a_choice[..., None] == options).mean(axis=-2)
    qb = (b_choice[..., None] == options).mean(axis=-2)
    return _kappa((a_choice == b_choice).mean(axis=-1), (qa * qb).sum(axis=-1))


def cohen_kappa_choice(a_choice: np.ndarray, b_choice: np.ndarray, k: int) -> float:
    """Cohen's kappa on the chosen options (0..k-1), chance from each model's own option frequencies."""
    if len(a_choice) == 0:
        return math.nan
    return float(_cohen_rows(np.asarray(a_choice, dtype=int), np.asarray(b_choice, dtype=int), k))


def _ngrams(text: str, n: int) -> Counter:
    return Counter(text[i : i + n] for i in range(len(text) - n + 1))


def surface_similarity(x: str, y: str, max_n: int = 3) -> float:
    """Mean over n = 1..max_n of the Dice overlap of character n-gram multisets."""
    if x == y:
        return 1.0
    scores = []
    for n in range(1, max_n + 1):
        gx, gy = _ngrams(x, n), _ngrams(y, n)
        total = sum(gx.values()) + sum(gy.values())
        if total:
            scores.append(2 * sum((gx & gy).values()) / total)
    return float(np.mean(scores)) if scores else 0.0


@dataclass(frozen=True)
class PairMetric:
    """One statistic for one pair of models on one task, with its bootstrap interval."""

    task: str
    model_a: str
    model_b: str
    metric: str
    value: float
    low: float
    high: float
    n: int
    chance: float
    note: str = ""
    """Why the value is undefined (NaN), or has no interval; empty otherwise."""


def _undefined(metric: str, a: str, b: str, ok_a: np.ndarray, ok_b: np.ndarray) -> str:
    """Why ``metric`` is undefined for this pair (see the module docstring)."""
    if not len(ok_a):
        return "undefined: no shared items"
    if metric == "cohen_kappa_choice":
        return "undefined: both always chose the same option"
    for name, ok in ((a, ok_a), (b, ok_b)):
        if ok.all():
            return f"undefined: {name} made no errors"
        if not ok.any() and metric == "error_consistency":
            return f"undefined: {name} was never right"
    return "undefined: no item both got wrong" if metric == "same_wrong_answer" else "undefined"


def _interval(stat, n: int, rng: np.random.Generator, n_boot: int) -> tuple[float, float]:
    """Percentile interval of ``stat`` over item resamples; ``stat`` maps an index array of
    shape (resamples, n) to one value per resample (vectorised: no Python loop per resample;
    resamples drawn in chunks, ``stats.resample_indices``)."""
    values = np.concatenate([np.asarray(stat(idx), dtype=float) for idx in resample_indices(rng, n_boot, n)])
    values = values[~np.isnan(values)]
    if len(values) < n_boot / 2:  # mostly undefined resamples: no honest interval
        return math.nan, math.nan
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))


def pair_metrics(
    wide: pd.DataFrame, a: str, b: str, task: str, k: int | None, rng: np.random.Generator, n_boot: int = N_BOOT
) -> list[PairMetric]:
    """Metrics for one pair on one task; ``wide`` has columns (field, model) per shared item."""
    ok_a, ok_b = wide["correct"][a].to_numpy(dtype=float), wide["correct"][b].to_numpy(dtype=float)
    same = wide["extracted"][a].to_numpy() == wide["extracted"][b].to_numpy()
    both_wrong = (ok_a == 0) & (ok_b == 0)
    n = len(ok_a)
    stats = {
        "error_consistency": (lambda i: _error_consistency_rows(ok_a[i], ok_b[i]), math.nan),
        "same_wrong_answer": (lambda i: _same_wrong_rows(both_wrong[i], same[i]), 1 / (k - 1) if k else math.nan),
    }
    if k:
        stats["kappa_p"] = (lambda i: _kappa_p_rows(ok_a[i], ok_b[i], same[i], k), math.nan)
        ch_a = pd.to_numeric(wide["extracted"][a], errors="coerce").fillna(-1).to_numpy(dtype=int)
        ch_b = pd.to_numeric(wide["extracted"][b], errors="coerce").fillna(-1).to_numpy(dtype=int)
        stats["cohen_kappa_choice"] = (lambda i: _cohen_rows(ch_a[i], ch_b[i], k), math.nan)
    else:
        sim = np.array([surface_similarity(x, y) for x, y in zip(wide["response"][a], wide["response"][b])])
        stats["surface_similarity"] = (lambda i: sim[i].mean(axis=-1), math.nan)
    out = []
    everything = np.arange(n)
    for name, (stat, chance) in stats.items():
        low, high = _interval(stat, n, rng, n_boot)
        value = float(stat(everything)) if n else math.nan
        note = (
            _undefined(name, a, b, ok_a == 1, ok_b == 1)
            if math.isnan(value)
            else "no interval: most resamples undefined"
            if math.isnan(low)
            else ""
        )
        out.append(PairMetric(task, a, b, name, value, low, high, n, chance, note))
    return out


def first_responses(samples: pd.DataFrame) -> pd.DataFrame:
    """One response per model x item: repeat 0 when items were answered k times."""
    return samples[samples["repeat"].fillna(0) == 0] if "repeat" in samples else samples


def all_pairs(samples: pd.DataFrame, choices: dict[str, int], seed: int, n_boot: int = N_BOOT) -> pd.DataFrame:
    """Every metric for every pair of models on every task (``choices``: task -> options, MC only)."""
    samples = first_responses(samples)
    rng = np.random.default_rng(seed)
    models = list(dict.fromkeys(samples["model"]))
    rows: list[PairMetric] = []
    for task in dict.fromkeys(samples["task"]):
        wide = samples[samples["task"] == task].pivot(
            index="doc_id", columns="model", values=["correct", "extracted", "response"]
        )
        for i, a in enumerate(models):
            for b in models[i + 1 :]:
                if a in wide["correct"] and b in wide["correct"]:
                    both = wide[wide["correct"][a].notna() & wide["correct"][b].notna()]
                    rows += pair_metrics(both, a, b, task, choices.get(task), rng, n_boot)
    return pd.DataFrame([vars(r) for r in rows])


def paired_difference(
    samples: pd.DataFrame, reference: str, x: str, y: str, task: str, seed: int, n_boot: int = N_BOOT
) -> tuple[float, float, float]:
    """kappa(x, reference) - kappa(y, reference) on the same items, with a joint bootstrap CI."""
    samples = first_responses(samples)
    wide = samples[samples["task"] == task].pivot(index="doc_id", columns="model", values="correct")
    wide = wide[[reference, x, y]].dropna()
    r, a, b = (wide[c].to_numpy() for c in (reference, x, y))

    def stat(i):
        return _error_consistency_rows(a[i], r[i]) - _error_consistency_rows(b[i], r[i])

    low, high = _interval(stat, len(r), np.random.default_rng(seed), n_boot)
    return float(stat(np.arange(len(r)))), low, high


def recognition_summary(scored: pd.DataFrame, seed: int, n_boot: int = N_BOOT) -> pd.DataFrame:
    """Teacher log-probability per token of each model's generations, per task, with intervals."""
    rng = np.random.default_rng(seed)
    rows = []
    for (task, model), g in scored.groupby(["task", "model"], sort=False):
        per_token = (g["logprob_sum"] / g["tokens"].clip(lower=1)).to_numpy()
        # _interval calls the statistic before this iteration ends: per_token is the current one.
        low, high = _interval(lambda i: per_token[i].mean(axis=-1), len(per_token), rng, n_boot)  # noqa: B023
        rows.append(
            {
                "task": task,
                "model": model,
                "n": len(g),
                "teacher_logprob_per_token": float(per_token.mean()),
                "low": low,
                "high": high,
            }
        )
    return pd.DataFrame(rows)


def choices_per_task(samples: pd.DataFrame) -> dict[str, int]:
    """Options per item for multiple-choice tasks (one log-likelihood request per option)."""
    out = {}
    for task, g in samples.groupby("task", sort=False):
        if (g["n_requests"] > 1).all():
            out[task] = int(g["n_requests"].median())
    return out


def reading(samples: pd.DataFrame, pairs: pd.DataFrame, recognition: pd.DataFrame, seed: int) -> list[str]:
    """Plain-words findings, each no stronger than its interval: every student against every
    control, both measured against the teacher."""
    samples = first_responses(samples)
    roles = samples.drop_duplicates("model").set_index("model")["role"]
    teachers = list(roles[roles == "teacher"].index)
    students = list(roles[roles == "student"].index)
    controls = list(roles[roles.isin(["control", "baseline"])].index)
    if len(teachers) != 1 or not students or not controls:
        return ["Needs a teacher, a student and a control (or baseline) to compare; nothing to read."]
    t = teachers[0]
    lines = []

    def metric(task: str, m: str, name: str) -> pd.Series | None:
        rows = pairs[
            (pairs.task == task)
            & (pairs.metric == name)
            & (((pairs.model_a == m) & (pairs.model_b == t)) | ((pairs.model_a == t) & (pairs.model_b == m)))
        ]
        return rows.iloc[0] if len(rows) else None

    for s in students:
        for c in controls:
            for task in dict.fromkeys(samples["task"]):
                ks, kc = metric(task, s, "error_consistency"), metric(task, c, "error_consistency")
                if ks is None or kc is None:
                    continue
                teacher_errors = int((samples[(samples.task == task) & (samples.model == t)].correct == 0).sum())
                if teacher_errors == 0:
                    lines.append(
                        f"- **{task}**: {t} made no errors here, so shared errors cannot be measured "
                        "(error consistency is undefined)."
                    )
                    continue
                if math.isnan(ks.value) or math.isnan(kc.value):
                    why = "; ".join(dict.fromkeys(n for n in (ks.note, kc.note) if n))
                    lines.append(
                        f"- **{task}**: error consistency with {t} is {why or 'undefined'}, so shared "
                        "errors cannot be compared."
                    )
                    continue
                d, lo, hi = paired_difference(samples, t, s, c, task, seed)
                sw, cw = metric(task, s, "same_wrong_answer"), metric(task, c, "same_wrong_answer")
                if lo > 0:
                    verdict = (
                        f"{s} shares {t}'s errors more than their accuracies explain, and more than {c} "
                        f"does: the difference in kappa, {_ci(d, lo, hi)}, excludes zero"
                    )
                elif hi < 0:
                    verdict = (
                        f"{c} shares {t}'s errors more than {s} does (difference {_ci(d, lo, hi)}): "
                        f"no sign that {s} imitates {t} beyond shared skill"
                    )
                else:
                    verdict = (
                        f"these items cannot tell {s} and {c} apart in how they share {t}'s errors "
                        f"(difference in kappa {_ci(d, lo, hi)})"
                    )
                line = (
                    f"- **{task}**: error consistency with {t}: {s} {_ci(ks.value, ks.low, ks.high)}, "
                    f"{c} {_ci(kc.value, kc.low, kc.high)}; {verdict}."
                )
                ss, cs = metric(task, s, "surface_similarity"), metric(task, c, "surface_similarity")
                if ss is not None and cs is not None:
                    closer = s if ss.low > cs.high else c if cs.low > ss.high else None
                    line += (
                        f" Surface similarity to {t}'s text: {s} {_ci(ss.value, ss.low, ss.high)}, {c} "
                        f"{_ci(cs.value, cs.low, cs.high)}"
                        + (f" ({closer} writes more like {t})." if closer else " (not separable).")
                    )
                if sw is not None and cw is not None and not (math.isnan(sw.value) or math.isnan(cw.value)):
                    chance = "" if math.isnan(sw.chance) else f" (chance {sw.chance:.0%})"
                    line += (
                        f" When both are wrong, {s} gives {t}'s exact wrong answer in "
                        f"{_ci(sw.value, sw.low, sw.high, '.0%')} of items, {c} in "
                        f"{_ci(cw.value, cw.low, cw.high, '.0%')}{chance}."
                    )
                lines.append(line)
            if not recognition.empty:
                for task, g in recognition.groupby("task", sort=False):
                    r = g.set_index("model")
                    if s not in r.index or c not in r.index:
                        continue
                    rs, rc = r.loc[s], r.loc[c]
                    own = f"; its own: {r.loc[t].teacher_logprob_per_token:.3f}" if t in r.index else ""
                    if rs.low > rc.high:
                        verdict = f"{t} finds {s}'s text more likely than {c}'s"
                    elif rc.low > rs.high:
                        verdict = f"{t} finds {c}'s text more likely than {s}'s"
                    else:
                        verdict = f"{t} does not find one more likely than the other, within these intervals"
                    lines.append(
                        f"- **{task}**, teacher recognition (mean log-probability per token under {t}): "
                        f"{s} {_ci(rs.teacher_logprob_per_token, rs.low, rs.high, '.3f')}, "
                        f"{c} {_ci(rc.teacher_logprob_per_token, rc.low, rc.high, '.3f')}{own}: {verdict}."
                    )
    return lines


def kappa_matrix(pairs: pd.DataFrame, task: str) -> pd.DataFrame:
    """Error consistency between every two models on one task, as a symmetric matrix: 1 on the
    diagonal, except for a model always right or always wrong, whose kappa is undefined (NaN)."""
    rows = pairs[(pairs.task == task) & (pairs.metric == "error_consistency")]
    models = list(dict.fromkeys([*rows.model_a, *rows.model_b]))
    m = pd.DataFrame(np.nan, index=models, columns=models)
    for r in rows.itertuples():
        m.loc[r.model_a, r.model_b] = m.loc[r.model_b, r.model_a] = r.value
    notes = set(rows["note"].fillna("")) if "note" in rows else set()
    for x in models:
        degenerate = {f"undefined: {x} made no errors", f"undefined: {x} was never right"} & notes
        m.loc[x, x] = math.nan if degenerate else 1.0
    return m


METRIC_LABELS = {
    "error_consistency": "error consistency (Cohen's κ, right/wrong)",
    "same_wrong_answer": "same wrong answer",
    "kappa_p": "κp, chosen option (CAPA; Goel et al., 2025)",
    "cohen_kappa_choice": "Cohen's κ, chosen option",
    "surface_similarity": "surface similarity",
}
"""How the report names each metric of ``evidence.csv``."""


def value_text(p) -> str:
    """One evidence.csv row's value for a table: the value with its interval, or why it has none."""
    if math.isnan(p.value):
        return p.note if isinstance(p.note, str) and p.note else "undefined"
    return _ci(p.value, p.low, p.high)
