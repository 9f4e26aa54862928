"""Offline, hub data sets are read from their snapshot in the local Hugging Face cache.

With network, ``datasets`` downloads a task's data set (``dataset_path: owner/name``) into the
Hub cache (``HF_HUB_CACHE``: ``datasets--owner--name/refs/main`` names a commit,
``snapshots/<commit>/`` holds its files) and prepares it into its own Arrow cache
(``HF_DATASETS_CACHE``). Offline (``HF_HUB_OFFLINE`` or ``HF_DATASETS_OFFLINE``), ``datasets`` 5
reads only that Arrow cache: files that are in the Hub cache alone (fetched with
``huggingface_hub``, copied from another machine, or laid out by the tests) fail to load, with
an error about reaching the Hub. So, offline, a task whose data set has a snapshot in the Hub
cache reads that snapshot folder instead: the same files, read by the same ``datasets`` builders,
with the same configurations (a dataset card's ``configs``, e.g. GPQA's ``gpqa_diamond``).
Models need nothing of the kind: transformers, vLLM and the simulated engine read the Hub cache
offline themselves.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from pathlib import Path

log = logging.getLogger("bench")
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def offline() -> bool:
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
               for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def snapshot(repo_id: str, repo_type: str = "dataset", revision: str | None = None) -> Path | None:
    """The cached snapshot folder of a Hub repository at ``revision`` (default ``main``), or None."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, repo_type=repo_type, revision=revision, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError, ValueError):
        return None


def use_cached_snapshots(task_manager, tasks: list[str]) -> dict[str, Path]:
    """Offline: point each task whose hub data set is in the Hub cache at its snapshot folder
    (in ``task_manager``'s index); returns task -> snapshot. Online: changes nothing."""
    if not offline():
        return {}
    from lm_eval.tasks._yaml_loader import load_yaml  # how lm-eval itself reads a task's YAML

    found = {}
    for task in tasks:
        entry = task_manager.task_index.get(task)
        if entry is None or entry.yaml_path is None:
            continue
        cfg = load_yaml(entry.yaml_path, resolve_func=True)
        path, kwargs = cfg.get("dataset_path"), dict(cfg.get("dataset_kwargs") or {})
        if cfg.get("custom_dataset") or not isinstance(path, str) or not HUB_ID.match(path) or "data_files" in kwargs:
            continue
        folder = snapshot(path, revision=kwargs.get("revision"))
        if folder is None:
            continue
        kwargs.pop("revision", None)
        task_manager.task_index[task] = dataclasses.replace(
            entry, yaml_path=None, cfg={**cfg, "dataset_path": str(folder), "dataset_kwargs": kwargs or None})
        found[task] = folder
        log.info("%s: offline; data set %s read from the Hub cache (%s)", task, path, folder)
    return found
