"""What this machine cannot run, found before anything starts, and what to do about it.

Two things can be missing where the config is fine: an API model's key (its ``api.api_key_env``
is not set) and a gated data set (a task whose YAML says ``metadata.gated: true``, such as GPQA:
accept its terms on the Hub and set ``HF_TOKEN``, unless the Hub cache already holds it).
With ``run.unavailable=error`` (the default) the run stops and names the fix (validation does,
for keys); with ``skip`` those models and tasks are left out, and the run's notes (``notes.json``,
shown at the top of the report) say which and why. Reported figures for the paper's models stay
in the report either way (``bench/analysis/published.py``), so a skipped API teacher still has its row.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from bench.config import BenchConfig, SourceKind


@dataclass(frozen=True)
class Missing:
    """One model or task this machine cannot run, and how to get it."""

    kind: str
    """``model`` (a key under ``models``) or ``task``."""
    name: str
    why: str


def hub_token() -> str | None:
    """A Hugging Face token: ``HF_TOKEN`` or the one ``hf auth login`` saved."""
    from huggingface_hub import get_token

    return get_token()


def gated_dataset(task_manager, task: str) -> str | None:
    """The hub data set of a task marked ``metadata.gated: true``, or None."""
    entry = task_manager.task_index.get(task)
    cfg = (entry.cfg if entry is not None else None) or {}
    if not (cfg.get("metadata") or {}).get("gated"):
        return None
    from bench.data.hub import task_dataset

    if "hub_snapshot" in cfg["metadata"]:
        return None  # read from its copy in the Hub cache (hub.use_cached_snapshots)
    spec = task_dataset(cfg)
    return spec[0] if spec else None


def missing(cfg: BenchConfig, task_manager) -> list[Missing]:
    """Every API model without its key and every gated task without a token or a cached copy."""
    from bench.data import hub

    out = []
    for key, m in cfg.models.items():
        env = m.api.api_key_env
        if m.source_kind == SourceKind.api and env and not os.environ.get(env):
            out.append(Missing("model", key, f"its API key is not in the environment (export {env})"))
    token = None
    for task in cfg.suite.tasks:
        dataset = gated_dataset(task_manager, task)
        if dataset is None:
            continue  # not gated, or already pointed at its copy in the Hub cache
        token = token or hub_token()
        if token is None and hub.cached_commit(dataset, None, "dataset") is None:
            out.append(
                Missing(
                    "task",
                    task,
                    f"its data set {dataset} is gated on the Hugging Face Hub: accept "
                    f"its terms there and export HF_TOKEN",
                )
            )
    return out


def skip_missing(cfg: BenchConfig, task_manager) -> list[str]:
    """Leave out what is missing (``run.unavailable=skip``); the notes that say so."""
    notes = []
    for item in missing(cfg, task_manager):
        if item.kind == "model":
            name = cfg.models.pop(item.name).name
            notes.append(
                f"{name} was not run: {item.why}; where the paper reports it, its published row is shown instead"
            )
        else:
            cfg.suite.tasks = [t for t in cfg.suite.tasks if t != item.name]
            notes.append(f"task {item.name} was skipped: {item.why}")
    return notes


def gated_errors(cfg: BenchConfig, task_manager) -> list[str]:
    """``run.unavailable=error``: the gated tasks that cannot load, each with its fix."""
    return [
        f"task '{m.name}': {m.why}; or drop it from suite.tasks, or set run.unavailable=skip"
        for m in missing(cfg, task_manager)
        if m.kind == "task"
    ]
