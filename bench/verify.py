"""``bench verify RUN_DIR``: does the run folder still say what produced its numbers?

    python -m bench verify results/latest     # exit 0 when everything agrees, 1 with one line per mismatch

Checks, without any model or server:

- the config's hash, the record files' hashes and row counts, and the hash of every derived file
  (summary, tables, report, plots) match ``manifest.json``;
- every model x task has as many samples as its task record says, and no item twice;
- re-scoring: for the metrics whose rule is fixed (``acc``: the chosen option is the target;
  ``exact_match``: the extracted answer equals the target) each record's ``correct`` agrees;
- every derived file, rebuilt from the records in a scratch folder, equals the one on disk:
  tables cell by cell (numbers to a relative tolerance of ``RTOL`` and no absolute one, so a
  $ figure of 1e-8 is held to the same standard as an accuracy), the report, LaTeX table and
  plots byte for byte once the path the report names (its run folder, or the folder it was
  copied from) is put back in place of the scratch one.

Exit code 0 when all hold, 1 with one line per mismatch otherwise.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from bench.reporting import writers
from bench.reporting.writers import BINARY, TABLE, TEXT, Compare
from bench.rundir import manifest, records
from bench.rundir.status import read as read_status

COPIED = ("config.json", records.PRICES, records.VERSIONS, records.STATUS, "sources.json", *manifest.RECORD_FILES)
EVIDENCE_MD = "evidence.md"
"""Written by ``bench evidence``, not by a report writer: rebuilt and compared (as text) when present."""
RTOL = 1e-9
"""Relative tolerance for numbers rebuilt from the records (room for another platform's float
rounding, nothing more): a change of 1e-6 of any value is a mismatch."""
SHOWN = 5
"""Mismatching cells named per table (then a count)."""
KEYS = ("model", "task", "metric", "model_a", "model_b", "length_bucket")

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


def derived_files() -> dict[str, Compare]:
    """Every derived file and how it is compared: those the report's writers declare, and ``evidence.md``."""
    return {**writers.compared_as(), EVIDENCE_MD: TEXT}


def _read_table(path: Path) -> pd.DataFrame:
    """A table as its writer wrote it (read back in ``bench/reporting/writers.py``, next to the writer)."""
    return writers.read_table(path)


def _numeric(column: pd.Series) -> pd.Series | None:
    """The column as floats, or None when it holds something that is not a number."""
    if column.dtype == bool:
        return column.astype(float)
    values = pd.to_numeric(column.map(lambda v: v if v is not None else math.nan), errors="coerce")
    return None if (values.isna() & column.notna()).any() else values.astype(float)


def _cell(v) -> str:
    v = v.item() if isinstance(v, np.generic) else v
    return "empty" if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)) else repr(v)


def _names(columns: list[str], most: int = 8) -> str:
    return ", ".join(columns[:most]) + (f" and {len(columns) - most} more" if len(columns) > most else "") or "none"


def compare_tables(name: str, stored: pd.DataFrame, fresh: pd.DataFrame, rtol: float = RTOL) -> list[str]:
    """Cell-by-cell differences between a table on disk and the one rebuilt from the records."""
    rebuild = "rebuild the report with `python -m bench report RUN_DIR` if the code changed since"
    if list(stored.columns) != list(fresh.columns):
        missing = [c for c in fresh.columns if c not in stored.columns]
        extra = [c for c in stored.columns if c not in fresh.columns]
        return [
            f"{name} differs from the table rebuilt from the records in its columns (missing: {_names(missing)}; "
            f"not rebuilt: {_names(extra)}; else their order): {rebuild}"
        ]
    if len(stored) != len(fresh):
        return [f"{name} differs from the table rebuilt from the records: {len(stored)} rows, rebuilt {len(fresh)}"]
    bad: list[tuple[int, str]] = []
    for col in stored.columns:
        a, b = stored[col].reset_index(drop=True), fresh[col].reset_index(drop=True)
        x, y = _numeric(a), _numeric(b)
        if x is not None and y is not None:
            xs, ys = x.to_numpy(), y.to_numpy()
            same = np.isclose(xs, ys, rtol=rtol, atol=0.0, equal_nan=True) | (xs == ys)
        else:
            same = np.array([_cell(u) == _cell(v) for u, v in zip(a, b)], dtype=bool)
        bad += [(int(i), col) for i in np.flatnonzero(~same)]
    out = []
    for i, col in sorted(bad)[:SHOWN]:
        key = " / ".join(str(fresh.iloc[i][k]) for k in KEYS if k in fresh.columns)
        out.append(
            f"{name} differs from the records: row {i + 1}{f' ({key})' if key else ''}, {col}: on disk "
            f"{_cell(stored.iloc[i][col])}, rebuilt from the records {_cell(fresh.iloc[i][col])}"
        )
    if len(bad) > SHOWN:
        out.append(f"{name} differs from the records in {len(bad) - SHOWN} more cells")
    return out


def _first_difference(name: str, stored: str, fresh: str) -> str:
    a, b = stored.splitlines(), fresh.splitlines()
    line = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    show = lambda lines: repr(lines[line][:160]) if line < len(lines) else "the end of the file"  # noqa: E731
    return (
        f"{name}: differs from the one rebuilt from the records at line {line + 1}: on disk {show(a)}, "
        f"rebuilt {show(b)}"
    )


def _put_back_path(stored: str, rebuilt: str, scratch: str) -> str:
    """``rebuilt`` with the scratch folder's path replaced by the one ``stored`` names in its
    place (the folder the report was written in: the run folder, or the folder it was copied
    from), taken from the first line that differs only there; unchanged when none does."""
    if scratch not in rebuilt:
        return rebuilt
    for x, y in zip(stored.splitlines(), rebuilt.splitlines()):
        if scratch in y:
            match = re.fullmatch("(.+?)".join(re.escape(part) for part in y.split(scratch)), x)
            if match and len(set(match.groups())) == 1:
                return rebuilt.replace(scratch, match.group(1))
    return rebuilt


def compare_outputs(run_dir: Path, scratch: Path) -> list[str]:
    """Every derived file on disk against its rebuilt twin in ``scratch``; paths are the only
    difference allowed (the rebuilt text names the scratch folder where the original names the
    folder it was written in)."""
    problems = []
    for name, kind in derived_files().items():
        mine, fresh = run_dir / name, scratch / name
        if not fresh.exists():
            continue
        if not mine.exists():
            problems.append(f"{name}: missing (the records rebuild it: `python -m bench report RUN_DIR`)")
        elif kind is TABLE:
            problems += compare_tables(name, _read_table(mine), _read_table(fresh))
        elif kind is TEXT:
            stored, rebuilt = mine.read_text(encoding="utf-8"), fresh.read_text(encoding="utf-8")
            rebuilt = _put_back_path(stored, rebuilt, str(scratch))
            if stored != rebuilt:
                problems.append(_first_difference(name, stored, rebuilt))
        elif kind is BINARY and mine.read_bytes() != fresh.read_bytes():
            problems.append(f"{name}: differs from the plot rebuilt from the records")
    return problems


def rebuild(run_dir: Path, scratch: Path) -> None:
    """Every derived file of ``run_dir``, recomputed from its records alone, written into ``scratch``."""
    from bench import report

    for name in COPIED:
        if (run_dir / name).exists():
            shutil.copy2(run_dir / name, scratch / name)
    if (run_dir / "lm_eval").is_dir():
        shutil.copytree(run_dir / "lm_eval", scratch / "lm_eval")
    report.build(scratch)
    if (run_dir / EVIDENCE_MD).exists():  # written by `bench evidence`
        report.write_evidence(scratch)


def _hashes(run_dir: Path, man: dict) -> tuple[list[str], list[str]]:
    problems, checked = [], []
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
    outputs = man.get("outputs")
    if outputs is None:
        checked.append(
            "derived files: the manifest holds no hashes of them (written before it did; "
            "`bench report` records them): checked by rebuilding only"
        )
        return problems, checked
    for name, expected in outputs.items():
        path = run_dir / name
        if not path.exists():
            problems.append(f"{name}: listed in the manifest but missing")
        elif manifest.file_sha256(path) != expected:
            problems.append(
                f"{name}: content differs from the manifest's sha256 (modified after the report was written)"
            )
    checked.append(f"{len(outputs)} derived file hashes")
    return problems, checked


def _records(run_dir: Path) -> tuple[list[str], list[str]]:
    problems, checked = [], []
    samples = records.read_jsonl(run_dir / records.SAMPLES)
    task_runs = records.read_task_runs(run_dir / records.TASK_RUNS)
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
            problems.append(
                f"{mt[0]} / {mt[1]}: {counts.get(mt, 0)} sample records, the task record says {t['n_samples']}"
            )
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
            problems.append(
                f"{r['model']} / {r['task']} item {r['doc_id']}: recorded correct={r['correct']}, "
                f"but extracted {r['extracted']!r} vs target {r['target']!r} scores {expected}"
            )
    checked.append(f"{rescored} records re-scored")
    return problems, checked


def check(run_dir: Path) -> tuple[list[str], list[str]]:
    """(problems, what was checked)."""
    man_path = run_dir / manifest.MANIFEST
    if not man_path.is_file():
        return [f"{run_dir}: no {manifest.MANIFEST} (not a run folder, or written before manifests existed)"], []
    man = json.loads(man_path.read_text())
    problems, checked = [], []
    cfg = json.loads((run_dir / "config.json").read_text())
    if manifest.config_hash(cfg) != man.get("config_sha256"):
        problems.append("config.json does not hash to the manifest's config_sha256 (edited after the run?)")
    checked.append("config hash")
    status = read_status(run_dir)
    if status.get("status") != "success":
        problems.append(
            f"run status is {status.get('status')!r}, not 'success': its records may be incomplete"
            + (f" ({status['error']})" if status.get("stale") else "")
        )
    for part in (_hashes(run_dir, man), _records(run_dir)):
        problems += part[0]
        checked += part[1]
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        try:
            rebuild(run_dir, scratch)
        except SystemExit as e:  # records a report refuses (e.g. samples without their task record)
            return [*problems, f"the derived files cannot be rebuilt from the records: {e}"], checked
        problems += compare_outputs(run_dir, scratch)
        rebuilt = [n for n in derived_files() if (scratch / n).exists()]
    checked.append(f"{len(rebuilt)} derived files rebuilt from the records and compared: {', '.join(rebuilt)}")
    return problems, checked


def check_serving_times(run_dir: Path, task_runs: list[dict]) -> list[str]:
    """Each task's serving time and each model's serving time and utilisation, recomputed from
    ``requests.jsonl`` (``bench.evaluation.metering``); runs written before it existed are skipped."""
    from bench.evaluation.metering import Interval, serving_time, task_shares, utilisation
    from bench.evaluation.timing import replay_times

    if not (run_dir / records.REQUESTS).exists():
        return []
    problems = []
    requests = records.read_jsonl(run_dir / records.REQUESTS)
    timed = records.read_jsonl(run_dir / records.TIMINGS) if (run_dir / records.TIMINGS).exists() else []
    replays = {
        (m, task): times
        for m in dict.fromkeys(r["model"] for r in timed)
        for task, times in replay_times([r for r in timed if r["model"] == m]).items()
    }
    models = {r["model"]: r for r in records.read_jsonl(run_dir / records.MODEL_RUNS)}
    for model in dict.fromkeys(r["model"] for r in requests):
        mine = [r for r in requests if r["model"] == model]
        intervals = [
            Interval(r["task"], r["sent_at"], r["answered_at"], r["prompt_tokens"] + r["completion_tokens"])
            for r in mine
        ]
        shares = task_shares(intervals)
        for t in task_runs:
            if t["model"] == model:
                problems += _check_task_time(t, shares.get(t["task"], 0.0), replays.get((model, t["task"]), []))
        run = models.get(model)
        if run is None:
            problems.append(f"{model}: request records without a model record ({records.MODEL_RUNS})")
            continue
        if not math.isclose(run["serving_s"], serving_time(intervals), rel_tol=1e-9, abs_tol=1e-12):
            problems.append(
                f"{model}: serving_s {run['serving_s']!r} but the request intervals give {serving_time(intervals)!r}"
            )
        live = [i for i, r in zip(intervals, mine) if not r["from_cache"]]
        if live and not math.isclose(run["utilisation"], utilisation(live, run["target_in_flight"]), rel_tol=1e-9):
            problems.append(f"{model}: utilisation {run['utilisation']!r} does not follow from its live requests")
    return problems


def _check_task_time(t: dict, share: float, replays: list[float]) -> list[str]:
    """A task record's serving time against its request intervals: the median of its timing
    replays (``bench.evaluation.timing``) where it has them, else its share of the pooled serving time."""
    import statistics

    where = f"{t['model']} / {t['task']}"
    n = t.get("timing_replays") or 0
    if len(replays) != n:
        return [f"{where}: timing_replays {n} but {records.TIMINGS} holds {len(replays)} replays of it"]
    problems = []
    pooled = t["pooled_s"] if n else t["serving_s"]
    if not math.isclose(pooled, share, rel_tol=1e-9, abs_tol=1e-12):
        problems.append(
            f"{where}: {'pooled_s' if n else 'serving_s'} {pooled!r} but the request intervals give {share!r}"
        )
    if n and not math.isclose(t["serving_s"], statistics.median(replays), rel_tol=1e-9, abs_tol=1e-12):
        problems.append(
            f"{where}: serving_s {t['serving_s']!r} but the median of its timing replays is {statistics.median(replays)!r}"
        )
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
