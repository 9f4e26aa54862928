"""Provenance of a run, ``manifest.json``: what produced its numbers, written atomically.

Written when the run starts (code, software, machine, config and its hash, dataset and model
hashes, the commits of the Hub models and data sets, seeds, prices), completed when it ends
(server command lines, status, the Hub commits again as the cache then holds them, and the
hashes and counts of the record files), and given the hash of every derived file (summary,
tables, report, plots) each time the report is written. ``bench verify`` checks them all.
"""

from __future__ import annotations

import json
import platform
import socket
import subprocess
from pathlib import Path
from typing import Any

from bench.config import PROJECT_ROOT
from bench.rundir import records
from bench.rundir.hashing import file_sha256, json_sha256

MANIFEST = "manifest.json"
RECORD_FILES = (
    records.SAMPLES,
    records.TASK_RUNS,
    records.RECOGNITION,
    records.SERVERS,
    records.MODEL_RUNS,
    records.REQUESTS,
    records.TIMINGS,
)


def output_files() -> tuple[str, ...]:
    """What ``bench report`` derives from the records, all hashed in the manifest's ``outputs``:
    the files its writers declare (``bench/reporting/writers.py``)."""
    # Imported here, not at the top: the writers pull in pandas and the report's tables, which
    # a run's start (``start``) has no use for.
    from bench.reporting import writers

    return writers.output_files()


def __getattr__(name: str) -> tuple[str, ...]:
    """``OUTPUT_FILES``, read from the writers' registry when first asked for (see ``output_files``)."""
    if name == "OUTPUT_FILES":
        return output_files()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def config_hash(resolved: dict[str, Any]) -> str:
    """sha256 of the resolved config as canonical JSON (``manifest.json``'s ``config_sha256``)."""
    return json_sha256(resolved)


def git_state(root: Path = PROJECT_ROOT) -> dict[str, Any]:
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def devices() -> dict[str, Any]:
    """GPU model, count and driver from nvidia-smi; otherwise the CPU model and core count."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        )
        gpus = [line.split(", ") for line in out.stdout.splitlines() if line.strip()] if out.returncode == 0 else []
    except (OSError, subprocess.TimeoutExpired):
        gpus = []
    if gpus:
        return {
            "kind": "cuda",
            "count": len(gpus),
            "model": gpus[0][0],
            "driver": gpus[0][1],
            "memory": gpus[0][2] if len(gpus[0]) > 2 else None,
        }
    import os

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"kind": "cpu", "count": os.cpu_count(), "model": cpu, "driver": None}


def dataset_hashes(include_paths: list[Path]) -> dict[str, str]:
    """sha256 of every file of the suite's own task folders (lm-eval registry tasks are
    identified by their dataset path and revision in lm_eval/<model>__<task>.json)."""
    out = {}
    for folder in include_paths:
        if folder.is_dir():
            for p in sorted(folder.rglob("*")):
                if p.is_file() and p.suffix in (".jsonl", ".json", ".yaml", ".yml", ".py", ".csv"):
                    try:
                        name = str(p.relative_to(PROJECT_ROOT))
                    except ValueError:
                        name = str(p)
                    out[name] = file_sha256(p)
    return out


def hub_revisions(sources: list, ask_hub: bool = True) -> list[dict[str, Any]]:
    """The commit each Hub repository of the run resolves to (``bench.data.hub.resolve``), with the
    models or tasks that read it. Before the run, a repository not yet downloaded is asked of
    the Hub; after it, the cache holds the snapshot that was actually used."""
    from dataclasses import asdict

    from bench.data import hub

    return [
        {**asdict(hub.resolve(s.repo_id, s.revision, s.repo_type, ask_hub=ask_hub)), "used_by": list(s.used_by)}
        for s in sources
    ]


def start(
    run_dir: Path,
    resolved: dict[str, Any],
    identities: dict[str, dict],
    include_paths: list[Path],
    versions: dict[str, str],
    prices: dict[str, Any],
    hub: list[dict] | None = None,
) -> dict[str, Any]:
    manifest: dict[str, Any] = {
        "git": git_state(),
        "software": versions,
        "device": devices(),
        "hostname": socket.gethostname(),
        "config_sha256": config_hash(resolved),
        "config": resolved,
        "datasets": dataset_hashes(include_paths),
        "models": identities,
        "hub": hub or [],
        "seeds": {
            "run": resolved["run"]["seed"],
            "suite": resolved["suite"]["seed"],
            "per_repeat": "suite seed + repeat index",
        },
        "prices": prices,
        "status": "running",
    }
    from bench.serving.simulate_spec import banner

    if banner(resolved):
        manifest["simulated"] = banner(resolved)
    records.write_json(run_dir / MANIFEST, manifest)
    return manifest


def record_hashes(run_dir: Path) -> dict[str, dict[str, Any]]:
    out = {}
    for name in RECORD_FILES:
        path = run_dir / name
        if path.exists():
            out[name] = {"sha256": file_sha256(path), "rows": len(records.read_jsonl(path))}
    return out


def update(run_dir: Path, **fields: Any) -> None:
    """Set top-level fields of the manifest (atomically)."""
    path = run_dir / MANIFEST
    if path.exists():
        records.write_json(path, {**json.loads(path.read_text()), **fields})


def finish(run_dir: Path, status: str) -> None:
    """Add the server command lines, the record files' hashes and the final status."""
    path = run_dir / MANIFEST
    if not path.exists():
        return
    manifest = json.loads(path.read_text())
    manifest["servers"] = {s["model"]: s["command"] for s in records.read_jsonl(run_dir / records.SERVERS)}
    manifest["records"] = record_hashes(run_dir)
    manifest["status"] = status
    records.write_json(path, manifest)


def record_outputs(run_dir: Path) -> None:
    """Hash every derived file into the manifest (``outputs``), after the report is written; a
    folder without a manifest (a merged report) is left without one."""
    path = run_dir / MANIFEST
    if not path.exists():
        return
    manifest = json.loads(path.read_text())
    manifest["outputs"] = {name: file_sha256(run_dir / name) for name in output_files() if (run_dir / name).exists()}
    records.write_json(path, manifest)
