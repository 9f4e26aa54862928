"""Run folders read back into memory, and several merged into one comparison.

    python -m bench report results/multirun/smoke/2026-01-01_10-00-00/*  --out results/merged/x

``load`` reads one run folder (records, config, prices, versions, the generation settings lm-eval
used, status). ``merge`` joins several (a Hydra multirun with one model per job, or runs of the
same suite): models are identified by name; each model x task comes from the first run that has
it (later copies are named in the notes); a model name used by two runs with different configs
is an error unless its records are identical; the teacher comes from whichever run has it.
``write_records`` saves a merged run as an ordinary run folder, so it can be rebuilt alone.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from bench.rundir import records
from bench.rundir.status import read as read_status

SOURCES = "sources.json"


class MergeError(ValueError):
    """Runs that cannot be joined into one comparison (the message says why and what to do)."""


@dataclass(frozen=True)
class Run:
    """Everything a report is computed from, as read from one run folder (or merged)."""

    folders: tuple[Path, ...]
    samples: pd.DataFrame
    task_runs: pd.DataFrame
    servers: pd.DataFrame
    recognition: pd.DataFrame
    cfg: dict
    prices: dict
    versions: dict
    generation: dict[str, dict]
    """Per generation task, the generation settings lm-eval actually used."""
    status: str
    origin: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["model", "task", "run"]))
    """Which run folder each model x task came from."""
    notes: tuple[str, ...] = ()
    model_runs: pd.DataFrame = field(default_factory=pd.DataFrame)
    """One row per model: scheduling, serving time, utilisation, the server's counters."""
    requests: pd.DataFrame = field(default_factory=pd.DataFrame)
    timings: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Timing replays (``bench.evaluation.timing``); empty when the run had none."""
    """One row per HTTP request: when it was in flight and its tokens."""


def _frame(path: Path) -> pd.DataFrame:
    return pd.DataFrame(records.read_jsonl(path))


def _json(path: Path, default=None):
    return json.loads(path.read_text()) if path.exists() else default


def generation_settings(run_dir: Path) -> dict[str, dict]:
    """The generation settings lm-eval actually used, per generation task (from its saved configs)."""
    out: dict[str, dict] = {}
    for path in sorted((run_dir / "lm_eval").glob("*.json")):
        for task, config in json.loads(path.read_text()).get("configs", {}).items():
            if config.get("output_type") == "generate_until" and task not in out:
                out[task] = config.get("generation_kwargs", {})
    return out


def _versions(run_dir: Path) -> dict:
    """versions.json; for runs older than it, what lm-eval's own results recorded (no vLLM version)."""
    saved = _json(run_dir / records.VERSIONS)
    if saved:
        return saved
    for path in sorted((run_dir / "lm_eval").glob("*.json")):
        result = json.loads(path.read_text())
        env = result.get("pretty_env_info") or ""
        found = {
            name: re.search(pattern, env)
            for name, pattern in (("torch", r"PyTorch version: (\S+)"), ("python", r"Python version: (\S+)"))
        }
        return {
            k: v
            for k, v in (
                ("lm-eval", result.get("lm_eval_version")),
                ("transformers", result.get("transformers_version")),
                *((name, m.group(1) if m else None) for name, m in found.items()),
            )
            if v
        }
    return {}


def load(run_dir: Path) -> Run:
    """Read a run folder; SystemExit with the reason when it is not one or holds no records."""
    if not (run_dir / "config.json").is_file():
        raise SystemExit(f"{run_dir} is not a run folder (no config.json)")
    samples = _frame(run_dir / records.SAMPLES)
    if samples.empty:
        raise SystemExit(f"{run_dir}: no per-sample records ({records.SAMPLES}); nothing to report")
    status = read_status(run_dir).get("status", "unknown")  # a dead "running" reads as error
    sources = _json(run_dir / SOURCES, {})  # a merged folder remembers where its records came from
    pairs = samples[["model", "task"]].drop_duplicates().assign(run=str(run_dir))
    return Run(
        folders=(run_dir,),
        samples=samples,
        task_runs=pd.DataFrame(records.read_task_runs(run_dir / records.TASK_RUNS)),
        servers=_frame(run_dir / records.SERVERS),
        recognition=_frame(run_dir / records.RECOGNITION),
        cfg=json.loads((run_dir / "config.json").read_text()),
        prices=_json(run_dir / records.PRICES),
        versions=_versions(run_dir),
        generation=generation_settings(run_dir),
        status=status,
        origin=pd.DataFrame(sources["origin"]) if sources.get("origin") else pairs.reset_index(drop=True),
        notes=tuple(sources.get("notes", ())) + tuple(_json(run_dir / records.NOTES, [])),
        model_runs=_frame(run_dir / records.MODEL_RUNS),
        requests=_frame(run_dir / records.REQUESTS),
        timings=_frame(run_dir / records.TIMINGS),
    )


def _model_records(run: Run, name: str) -> pd.DataFrame:
    g = run.samples[run.samples["model"] == name]
    keys = [c for c in ("task", "doc_id", "repeat") if c in g]
    return g.sort_values(keys).reset_index(drop=True)[sorted(g.columns)]


def _differing_keys(a: dict, b: dict, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        if isinstance(x, dict) and isinstance(y, dict):
            out += _differing_keys(x, y, f"{prefix}{key}.")
        elif x != y:
            out.append(prefix + key)
    return out


def _check_models(runs: list[Run]) -> dict[str, dict]:
    """Model configs by name; MergeError for one name with two configs and different records."""
    seen: dict[str, tuple[Run, dict]] = {}
    for run in runs:
        for m in run.cfg["models"].values():
            name = m["name"]
            if name not in seen:
                seen[name] = (run, m)
                continue
            first, config = seen[name]
            if config != m and not _model_records(first, name).equals(_model_records(run, name)):
                raise MergeError(
                    f"model {name!r} is in {first.folders[0]} and {run.folders[0]} with different configs "
                    f"(differing: {', '.join(_differing_keys(config, m))}) and different records; give one of "
                    f"them another name (models.<key>.name=...) or report the runs separately"
                )
    return {name: m for name, (_, m) in seen.items()}


def _pick(runs: list[Run]) -> tuple[list[pd.DataFrame], list[str]]:
    """Per run, the model x task pairs it contributes (first run wins), and notes on the rest."""
    taken: dict[tuple[str, str], Path] = {}
    picks, notes = [], []
    for run in runs:
        pairs = run.samples[["model", "task"]].drop_duplicates()
        mine = [(m, t) not in taken for m, t in zip(pairs["model"], pairs["task"])]
        for (m, t), fresh in zip(zip(pairs["model"], pairs["task"]), mine):
            if fresh:
                taken[(m, t)] = run.folders[0]
            else:
                notes.append(f"{m} / {t}: taken from {taken[(m, t)]}; the copy in {run.folders[0]} is not used")
        picks.append(pairs[mine])
    return picks, notes


def _rows(frame: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    if frame.empty or pairs.empty:
        return frame.iloc[0:0]
    return frame.merge(pairs, on=["model", "task"], how="inner")


def merge(runs: list[Run]) -> Run:
    """One comparison from several runs (see the module docstring); one run comes back as is."""
    if len(runs) == 1:
        return runs[0]
    models = _check_models(runs)
    picks, notes = _pick(runs)
    samples = pd.concat([_rows(r.samples, p) for r, p in zip(runs, picks)], ignore_index=True)
    teachers = sorted(set(samples.loc[samples["role"] == "teacher", "model"]))
    if len(teachers) > 1:
        raise MergeError(
            f"the runs have different teachers ({', '.join(teachers)}); a comparison needs one: report them separately"
        )
    first = runs[0]
    cfg = {**first.cfg, "models": {name: m for name, m in models.items()}}
    tasks = list(dict.fromkeys(t for r in runs for t in r.cfg["suite"]["tasks"]))
    cfg["suite"] = {
        **first.cfg["suite"],
        "tasks": tasks,
        "name": " + ".join(dict.fromkeys(r.cfg["suite"]["name"] for r in runs)),
    }
    if len({json.dumps(r.cfg["hardware"], sort_keys=True) for r in runs}) > 1:
        notes.append(
            "the runs used different hardware ("
            + ", ".join(f"{r.cfg['hardware']['name']} in {r.folders[0]}" for r in runs)
            + "); each model is priced by its own run's prices.json, and the header and methods name each price"
        )
    for key in ("repeats", "limit", "temperature", "top_p", "max_gen_toks", "seed"):
        values = {json.dumps(r.cfg["suite"].get(key)) for r in runs}
        if len(values) > 1:
            notes.append(
                f"suite.{key} differs between the runs: "
                + ", ".join(f"{r.cfg['suite'].get(key)} in {r.folders[0]}" for r in runs)
            )
    if len({json.dumps(r.versions, sort_keys=True) for r in runs}) > 1:
        notes.append("software versions differ between the runs; the methods paragraph names the first run's")
    recognition = pd.concat([_rows(r.recognition, p) for r, p in zip(runs, picks)], ignore_index=True)
    servers = pd.concat([r.servers for r in runs], ignore_index=True)
    if not servers.empty:
        servers = servers[servers["model"].isin(set(samples["model"]))].drop_duplicates("model")
    generation: dict[str, dict] = {}
    for r in runs:
        for task, g in r.generation.items():
            generation.setdefault(task, g)
    statuses = {r.status for r in runs}
    model_runs = pd.concat([r.model_runs for r in runs], ignore_index=True)
    if not model_runs.empty:
        model_runs = model_runs[model_runs["model"].isin(set(samples["model"]))].drop_duplicates("model")
    return Run(
        folders=tuple(f for r in runs for f in r.folders),
        samples=samples,
        task_runs=pd.concat([_rows(r.task_runs, p) for r, p in zip(runs, picks)], ignore_index=True),
        servers=servers,
        recognition=recognition,
        cfg=cfg,
        prices={"models": {k: v for r in runs for k, v in r.prices["models"].items() if k in set(samples["model"])}},
        versions=first.versions,
        generation=generation,
        status=statuses.pop() if len(statuses) == 1 else "mixed: " + ", ".join(sorted(statuses)),
        origin=pd.concat([p.assign(run=str(r.folders[0])) for r, p in zip(runs, picks)], ignore_index=True),
        notes=tuple(notes),
        model_runs=model_runs,
        requests=pd.concat([_rows(r.requests, p) for r, p in zip(runs, picks)], ignore_index=True),
        timings=pd.concat([_rows(r.timings, p) for r, p in zip(runs, picks)], ignore_index=True),
    )


def write_records(run: Run, out_dir: Path) -> Run:
    """Save a (merged) run's inputs as an ordinary run folder; returns it pointing there."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, frame in (
        (records.SAMPLES, run.samples),
        (records.TASK_RUNS, run.task_runs),
        (records.SERVERS, run.servers),
        (records.RECOGNITION, run.recognition),
        (records.MODEL_RUNS, run.model_runs),
        (records.REQUESTS, run.requests),
        (records.TIMINGS, run.timings),
    ):
        if name == records.TIMINGS and frame.empty:
            continue
        records.write_atomic(
            out_dir / name,
            "".join(
                json.dumps({k: None if _missing(v) else v for k, v in row.items()}, sort_keys=True, default=str) + "\n"
                for row in frame.to_dict("records")
            ),
        )
    records.write_json(out_dir / "config.json", run.cfg)
    records.write_json(out_dir / records.PRICES, run.prices)
    records.write_json(out_dir / records.VERSIONS, run.versions)
    records.write_json(out_dir / records.STATUS, {"status": run.status})
    records.write_json(
        out_dir / SOURCES,
        {"runs": [str(f) for f in run.folders], "notes": list(run.notes), "origin": run.origin.to_dict("records")},
    )
    (out_dir / "lm_eval").mkdir(exist_ok=True)
    for o in run.origin.itertuples():  # lm-eval's own results of each model x task used
        path = Path(o.run) / "lm_eval" / f"{o.model}__{o.task}.json"
        if path.is_file() and path.parent != out_dir / "lm_eval":
            shutil.copyfile(path, out_dir / "lm_eval" / path.name)
    return replace(run, folders=(out_dir,))


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and v != v)
