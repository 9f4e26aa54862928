"""What the default run claims, checked on a run folder (``make repro`` and the e2e test).

    python -m bench.claims results/latest

The embedded default exists to show, on models built for it, the things a distillation study
looks for. Each claim is computed from the run's own files (summary.csv, evidence.csv,
recognition.csv, samples.jsonl) and returned with the figure behind it:

1. the teacher is imperfect: accuracy within [0.60, 0.95] on every generation task;
2. the student keeps most of the teacher's quality (mean accuracy over tasks, more than half)
   and beats the control on that mean;
3. on at least two tasks the 95% interval of kappa(student, teacher) - kappa(control, teacher)
   (error consistency, joint item bootstrap) excludes 0;
4. where both models and the teacher are wrong, the student gives the teacher's exact wrong
   answer at least twice as often as the control does, on every task where that is defined;
5. teacher recognition ranks the student's generations above the control's on every
   generation task (the student's interval lies above the control's).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pandas as pd

from bench.rundir import records

TEACHER_RANGE = (0.60, 0.95)


def _models(summary: pd.DataFrame) -> tuple[str, str, str]:
    by_role = {
        r: sorted(summary.loc[summary["role"] == r, "model"].unique()) for r in ("teacher", "student", "control")
    }
    missing = [r for r, m in by_role.items() if not m]
    if missing:
        raise ValueError(f"the claims need a teacher, a student and a control; this run has no {', '.join(missing)}")
    return by_role["teacher"][0], by_role["student"][0], by_role["control"][0]


def check_claims(run_dir: Path, seed: int | None = None) -> list[dict]:
    """Every claim as {claim, holds, value} (value: the figures, as text)."""
    from bench.analysis.evidence import paired_difference

    run_dir = Path(run_dir)
    summary = pd.read_csv(run_dir / "summary.csv")
    teacher, student, control = _models(summary)
    samples = pd.DataFrame(records.read_jsonl(run_dir / records.SAMPLES))
    if seed is None:
        seed = json.loads((run_dir / "config.json").read_text())["run"]["seed"]
    acc = summary.pivot_table(index="task", columns="model", values="accuracy", sort=False)
    generation = [t for t in acc.index if (samples.loc[samples["task"] == t, "n_requests"] == 1).all()]
    out = []

    low, high = TEACHER_RANGE
    values = {t: acc.loc[t, teacher] for t in generation}
    out.append(
        {
            "claim": f"teacher accuracy within [{low:.2f}, {high:.2f}] on every generation task",
            "holds": all(low <= v <= high for v in values.values()),
            "value": ", ".join(f"{t} {v:.3f}" for t, v in values.items()),
        }
    )

    means = acc.mean()
    retained = means[student] / means[teacher] if means[teacher] > 0 else math.nan
    out.append(
        {
            "claim": "student keeps most of the teacher's mean accuracy and beats the control's",
            "holds": bool(retained > 0.5 and means[student] > means[control]),
            "value": f"student {means[student]:.3f} ({100 * retained:.0f}% of teacher {means[teacher]:.3f}), "
            f"control {means[control]:.3f}",
        }
    )

    kappas = {t: paired_difference(samples, teacher, student, control, t, seed) for t in acc.index}
    excluding = [t for t, (_, lo, hi) in kappas.items() if lo > 0 or hi < 0]
    out.append(
        {
            "claim": "kappa(student, teacher) - kappa(control, teacher): 95% interval excludes 0 on >= 2 tasks",
            "holds": len(excluding) >= 2,
            "value": ", ".join(f"{t} {d:.2f} [{lo:.2f}, {hi:.2f}]" for t, (d, lo, hi) in kappas.items()),
        }
    )

    evidence = pd.read_csv(run_dir / "evidence.csv")
    same = evidence[evidence["metric"] == "same_wrong_answer"]

    def share(model: str, task: str) -> float:
        row = same[(same["task"] == task) & (same[["model_a", "model_b"]].isin([model, teacher]).all(axis=1))]
        return float(row["value"].iloc[0]) if len(row) else math.nan

    shares = {t: (share(student, t), share(control, t)) for t in acc.index}
    defined = {t: v for t, v in shares.items() if not any(math.isnan(x) for x in v)}
    out.append(
        {
            "claim": "student gives the teacher's exact wrong answer at least twice as often as the control",
            "holds": bool(defined) and all(s >= 2 * c and s > 0 for s, c in defined.values()),
            "value": ", ".join(f"{t} {s:.2f} vs {c:.2f}" for t, (s, c) in shares.items()),
        }
    )

    recognition = pd.read_csv(run_dir / "recognition.csv").set_index(["task", "model"])
    ranked = {}
    for t in generation:
        if (t, student) in recognition.index and (t, control) in recognition.index:
            s, c = recognition.loc[(t, student)], recognition.loc[(t, control)]
            ranked[t] = (s["teacher_logprob_per_token"], c["teacher_logprob_per_token"], s["low"] > c["high"])
    out.append(
        {
            "claim": "teacher recognition ranks the student's generations above the control's",
            "holds": bool(ranked) and all(r[2] for r in ranked.values()),
            "value": ", ".join(f"{t} {s:.2f} vs {c:.2f}" for t, (s, c, _) in ranked.items()),
        }
    )
    for c in out:
        c["holds"] = bool(c["holds"])
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        raise SystemExit("usage: python -m bench.claims RUN_DIR")
    claims = check_claims(Path(argv[0]))
    for c in claims:
        print(f"{'holds' if c['holds'] else 'FAILS'}  {c['claim']}: {c['value']}")
    return 0 if all(c["holds"] for c in claims) else 1


if __name__ == "__main__":
    sys.exit(main())
