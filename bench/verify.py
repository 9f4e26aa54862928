"""``bench verify RUN_DIR``: does the run folder still say what produced its numbers?

Checks, without any model or server:

- the config's hash and the record files' hashes and row counts match ``manifest.json``;
- every model x task has as many samples as its task record says, and no item twice;
- re-scoring: for the metrics whose rule is fixed (``acc``: the chosen option is the target;
  ``exact_match``: the extracted answer equals the target) each record's ``correct`` agrees;
- the summary recomputed from the records (in a scratch folder) equals ``summary.csv``.

Exit code 0 when all hold, 1 with one line per mismatch otherwise.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import tempfile
from pathlib import Path

from bench import manifest, records

COPIED = ("config.json", records.PRICES, records.VERSIONS, records.STATUS, *manifest.RECORD_FILES)


PLAIN_METRIC_KEYS = {"metric", "aggregation", "higher_is_better"}


def plain_metrics(run_dir: Path, model: str, task: str) -> set[str]:
    """Metrics the task scores with lm-eval's defaults (no ignore_case, regexes, ...)."""
    path = run_dir / "lm_eval" / f"{model}__{task}.json"
    if not path.is_file():
        return set()
    config = json.loads(path.read_text()).get("configs", {}).get(task, {})
    return {m["metric"] for m in config.get("metric_list", []) if set(m) <= PLAIN_METRIC_KEYS}


def rescore(row: dict, plain: set[str]) -> float | None:
    """The score a record's own fields imply, where the metric's rule is fixed; else None.

    ``acc`` (multiple choice): the chosen option's index is the target's. ``exact_match``
    with lm-eval's defaults: the extracted answer is the target, character for character.
    """
    if row["metric"] not in plain or row["metric"] not in ("acc", "exact_match"):
        return None
    return float(row["extracted"] == row["target"])


def check(run_dir: Path) -> tuple[list[str], list[str]]:
    """(problems, what was checked)."""
    import pandas as pd

    problems, checked = [], []
    man_path = run_dir / manifest.MANIFEST
    if not man_path.is_file():
        return [f"{run_dir}: no {manifest.MANIFEST} (not a run folder, or written before manifests existed)"], []
    man = json.loads(man_path.read_text())
    cfg = json.loads((run_dir / "config.json").read_text())
    if manifest.config_hash(cfg) != man.get("config_sha256"):
        problems.append("config.json does not hash to the manifest's config_sha256 (edited after the run?)")
    checked.append("config hash")
    status = json.loads((run_dir / records.STATUS).read_text()).get("status") if (run_dir / records.STATUS).exists() else None
    if status != "success":
        problems.append(f"run status is {status!r}, not 'success': its records may be incomplete")
    for name, expected in (man.get("records") or {}).items():
        path = run_dir / name
        if not path.exists():
            problems.append(f"{name}: listed in the manifest but missing")
            continue
        if manifest.file_sha256(path) != expected["sha256"]:
            problems.append(f"{name}: content differs from the manifest's sha256 (modified after the run)")
        rows = len(records.read_jsonl(path))
        if rows != expected["rows"]:
            problems.append(f"{name}: {rows} rows, the manifest says {expected['rows']}")
    if not man.get("records"):
        problems.append("the manifest has no record hashes (the run never finished)")
    checked.append("record file hashes and row counts")

    samples = records.read_jsonl(run_dir / records.SAMPLES)
    task_runs = records.read_jsonl(run_dir / records.TASK_RUNS)
    counts: dict[tuple, int] = {}
    seen: set[tuple] = set()
    for r in samples:
        mt = (r["model"], r["task"])
        counts[mt] = counts.get(mt, 0) + 1
        item = (*mt, r["doc_id"], r.get("repeat", 0))
        if item in seen:
            problems.append(f"{mt[0]} / {mt[1]}: item {r['doc_id']} (repeat {r.get('repeat', 0)}) recorded twice")
        seen.add(item)
    for t in task_runs:
        mt = (t["model"], t["task"])
        if counts.get(mt, 0) != t["n_samples"]:
            problems.append(f"{mt[0]} / {mt[1]}: {counts.get(mt, 0)} sample records, the task record says {t['n_samples']}")
    missing = set(counts) - {(t["model"], t["task"]) for t in task_runs}
    for m, t in sorted(missing):
        problems.append(f"{m} / {t}: sample records without a task record")
    checked.append(f"{len(samples)} sample records against {len(task_runs)} task records")

    problems += check_serving_times(run_dir, task_runs)
    checked.append("serving times re-derived from the request intervals")

    rescored, plain = 0, {}
    for r in samples:
        mt = (r["model"], r["task"])
        if mt not in plain:
            plain[mt] = plain_metrics(run_dir, *mt)
        expected = rescore(r, plain[mt])
        if expected is None:
            continue
        rescored += 1
        if expected != float(r["correct"]):
            problems.append(f"{r['model']} / {r['task']} item {r['doc_id']}: recorded correct={r['correct']}, "
                            f"but extracted {r['extracted']!r} vs target {r['target']!r} scores {expected}")
    checked.append(f"{rescored} records re-scored")

    summary_path = run_dir / "summary.csv"
    if not summary_path.is_file():
        problems.append("no summary.csv")
    else:
        from bench import report

        with tempfile.TemporaryDirectory() as tmp:
            scratch = Path(tmp)
            for name in COPIED:
                if (run_dir / name).exists():
                    shutil.copy2(run_dir / name, scratch / name)
            if (run_dir / "lm_eval").is_dir():
                shutil.copytree(run_dir / "lm_eval", scratch / "lm_eval")
            report.build(scratch)
            fresh = pd.read_csv(scratch / "summary.csv")
        stored = pd.read_csv(summary_path)
        try:
            pd.testing.assert_frame_equal(stored, fresh, check_exact=False, rtol=1e-9, check_dtype=False)
        except AssertionError as e:
            problems.append("summary.csv differs from the summary recomputed from the records: "
                            + " ".join(str(e).split())[:400])
        checked.append("summary.csv recomputed from the records")
    return problems, checked


def check_serving_times(run_dir: Path, task_runs: list[dict]) -> list[str]:
    """Each task's serving time and each model's serving time and utilisation, recomputed from
    ``requests.jsonl`` (``bench.metering``); runs written before it existed are skipped."""
    from bench.metering import Interval, serving_time, task_shares, utilisation

    if not (run_dir / records.REQUESTS).exists():
        return []
    problems = []
    requests = records.read_jsonl(run_dir / records.REQUESTS)
    models = {r["model"]: r for r in records.read_jsonl(run_dir / records.MODEL_RUNS)}
    for model in dict.fromkeys(r["model"] for r in requests):
        mine = [r for r in requests if r["model"] == model]
        intervals = [Interval(r["task"], r["sent_at"], r["answered_at"], r["prompt_tokens"] + r["completion_tokens"])
                     for r in mine]
        shares = task_shares(intervals)
        for t in task_runs:
            if t["model"] == model and not math.isclose(t["wall_s"], shares.get(t["task"], 0.0), rel_tol=1e-9,
                                                        abs_tol=1e-12):
                problems.append(f"{model} / {t['task']}: wall_s {t['wall_s']!r} but the request intervals give "
                                f"{shares.get(t['task'], 0.0)!r}")
        run = models.get(model)
        if run is None:
            problems.append(f"{model}: request records without a model record ({records.MODEL_RUNS})")
            continue
        if not math.isclose(run["serving_s"], serving_time(intervals), rel_tol=1e-9, abs_tol=1e-12):
            problems.append(f"{model}: serving_s {run['serving_s']!r} but the request intervals give "
                            f"{serving_time(intervals)!r}")
        live = [i for i, r in zip(intervals, mine) if not r["from_cache"]]
        if live and not math.isclose(run["utilisation"], utilisation(live, run["target_in_flight"]), rel_tol=1e-9):
            problems.append(f"{model}: utilisation {run['utilisation']!r} does not follow from its live requests")
    return problems


def main(argv: list[str]) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="bench verify", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    args = parser.parse_args(argv)
    run_dir = args.run_dir.resolve()
    problems, checked = check(run_dir)
    for line in checked:
        print(f"checked: {line}")
    for line in problems:
        print(f"MISMATCH: {line}")
    print(f"{run_dir}: " + ("verified" if not problems else f"{len(problems)} problem(s)"))
    sys.exit(1 if problems else 0)
