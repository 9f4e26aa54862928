"""Models and data sets on the Hugging Face Hub: their resolved commits, a model's own
config.json, and downloading them ahead of a run (``bench fetch``).

The local Hub cache (``HF_HUB_CACHE``, default ``~/.cache/huggingface/hub``) is read as
huggingface_hub lays it out: ``<kind>s--<owner>--<name>/refs/<revision>`` holds the commit a
branch or tag pointed at when it was downloaded, ``snapshots/<commit>/`` its files. What a run
uses is what that cache holds (vLLM and ``datasets`` read it), so that is the commit recorded.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

COMMIT = re.compile(r"^[0-9a-f]{40}$")
REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
# What vLLM reads from a model repository: weights as safetensors, configs, tokenizer and chat
# template files, custom code. Not the original checkpoints (*.pth, *.bin) many repos also carry.
MODEL_FILES = ["*.json", "*.safetensors", "*.model", "*.txt", "*.tiktoken", "*.py", "*.jinja"]


@dataclass(frozen=True)
class Resolved:
    """Which commit of a Hub repository a run uses, and how that was found."""

    repo_id: str
    repo_type: str
    """``model`` or ``dataset``."""
    requested: str
    """The revision asked for: a preset's pin, or ``main``."""
    commit: str | None
    """None: not in the cache and the Hub could not be asked."""
    found_in: str
    """``pinned`` (a commit was asked for), ``cache`` (the local snapshot), ``hub`` (asked the
    Hub: not downloaded yet), or ``unresolved``."""


def network_errors() -> tuple[type[BaseException], ...]:
    """What asking the Hub raises when it cannot answer: OSError (offline mode, a file not in
    the cache) and the errors of the HTTP client huggingface_hub is built on, which its own
    ``HfHubHTTPError`` derives from (requests in older versions, an httpx in newer ones)."""
    from huggingface_hub.errors import HfHubHTTPError

    return (OSError, *HfHubHTTPError.__bases__)


def cache_dir() -> Path:
    """The Hub cache, read from the environment at call time (tests point it elsewhere)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "hub"
    return Path.home() / ".cache" / "huggingface" / "hub"


def offline(datasets: bool = False) -> bool:
    """Hub offline mode (``HF_HUB_OFFLINE``); for data sets, ``HF_DATASETS_OFFLINE`` too."""
    names = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE") if datasets else ("HF_HUB_OFFLINE",)
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on") for v in names)


def repo_folder(repo_id: str, repo_type: str) -> Path:
    from huggingface_hub.file_download import repo_folder_name

    return cache_dir() / repo_folder_name(repo_id=repo_id, repo_type=repo_type)


def cached_commit(repo_id: str, revision: str | None = None, repo_type: str = "model") -> str | None:
    """The commit of the cached snapshot for ``revision`` (default ``main``), or None."""
    folder = repo_folder(repo_id, repo_type)
    revision = revision or "main"
    if COMMIT.match(revision):
        return revision if (folder / "snapshots" / revision).is_dir() else None
    ref = folder / "refs" / revision
    if not ref.is_file():
        return None
    commit = ref.read_text().strip()
    return commit if (folder / "snapshots" / commit).is_dir() else None


def resolve(repo_id: str, revision: str | None = None, repo_type: str = "model", ask_hub: bool = True) -> Resolved:
    """The commit a run uses: a pinned commit as is; else the cached snapshot's; else, when the
    Hub may be asked, what the revision points at there now (it is downloaded at first use)."""
    requested = revision or "main"
    if COMMIT.match(requested):
        return Resolved(repo_id, repo_type, requested, requested, "pinned")
    commit = cached_commit(repo_id, requested, repo_type)
    if commit is not None:
        return Resolved(repo_id, repo_type, requested, commit, "cache")
    if ask_hub and not offline():
        from huggingface_hub import HfApi

        try:
            sha = HfApi().repo_info(repo_id, revision=requested, repo_type=repo_type).sha
        except network_errors():  # no network, gated without a token, no such repo: recorded as unresolved
            sha = None
        if sha:
            return Resolved(repo_id, repo_type, requested, sha, "hub")
    return Resolved(repo_id, repo_type, requested, None, "unresolved")


def model_config(repo_id: str, revision: str | None = None) -> dict[str, Any] | None:
    """A hub model's config.json alone (from the cache, else downloaded unless offline), or None
    when neither is possible."""
    import json

    from huggingface_hub import hf_hub_download

    try:
        # The cache and offline mode as the environment says now (huggingface_hub reads both once, at import).
        path = hf_hub_download(
            repo_id, "config.json", revision=revision, cache_dir=cache_dir(), local_files_only=offline()
        )
    except network_errors():
        return None
    return json.loads(Path(path).read_text())


def context_of(config: dict[str, Any]) -> int | None:
    """The context a model was built for, as its config.json states it."""
    for key in ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length"):
        if isinstance(config.get(key), int):
            return config[key]
    return None


def task_dataset(task_cfg: dict[str, Any]) -> tuple[str, str | None, str | None] | None:
    """(repository, configuration, revision) of a task's Hub data set, or None for local data.
    A task with its own loader names the repository in ``dataset_kwargs.path``."""
    redirected = (task_cfg.get("metadata") or {}).get("hub_snapshot")
    if redirected:  # read offline from its snapshot (use_cached_snapshots): the repository it came from
        return redirected["repo"], redirected["name"], redirected["revision"]
    kwargs = dict(task_cfg.get("dataset_kwargs") or {})
    repo = kwargs.get("path") if task_cfg.get("custom_dataset") else task_cfg.get("dataset_path")
    if not repo or not REPO_ID.match(str(repo)) or "data_files" in kwargs:
        return None
    return str(repo), task_cfg.get("dataset_name") or kwargs.get("name"), kwargs.get("revision")


@dataclass(frozen=True)
class Source:
    """One Hub repository a run reads: a model's weights or a task's data set."""

    repo_id: str
    repo_type: str
    revision: str | None
    """The pin (a preset's ``serve.revision``, a task's ``dataset_kwargs.revision``), or None: main."""
    used_by: tuple[str, ...]
    """Model keys or task names."""


def sources(cfg, task_manager) -> list[Source]:
    """Every Hub model and data set a run of ``cfg`` reads (local folders and APIs need none)."""
    from bench.config import SourceKind

    found: dict[tuple, list[str]] = {}
    for key, m in cfg.models.items():
        if m.source_kind == SourceKind.hub:
            found.setdefault((m.source, "model", m.serve.revision), []).append(key)
    for task in cfg.suite.tasks:
        entry = task_manager.task_index.get(task)
        spec = task_dataset(entry.cfg or {}) if entry is not None and entry.cfg else None
        if spec is not None:
            repo, name, revision = spec
            found.setdefault((repo, "dataset", revision), []).append(task)
    return [Source(repo, kind, rev, tuple(users)) for (repo, kind, rev), users in found.items()]


def snapshot_bytes(repo_id: str, commit: str, repo_type: str = "model") -> int:
    """Bytes on disk of a cached snapshot (its files are links to shared blobs)."""
    folder = repo_folder(repo_id, repo_type) / "snapshots" / commit
    blobs = {p.resolve() for p in folder.rglob("*") if p.is_file()}
    return sum(b.stat().st_size for b in blobs)


def matches(name: str, patterns: list[str] | None) -> bool:
    from fnmatch import fnmatch

    return patterns is None or any(fnmatch(name, p) for p in patterns)


def bytes_missing(files: list[tuple[str, int]], patterns: list[str] | None, cached: set[str]) -> int:
    """Bytes still to download: files of a repository revision (name, size) that ``patterns``
    select and the cached snapshot lacks."""
    return sum(size for name, size in files if matches(name, patterns) and name not in cached)


def use_cached_snapshots(task_manager, tasks: list[str]) -> dict[str, Path]:
    """Offline, point each task whose Hub data set is in the cache at its snapshot folder (in
    ``task_manager``'s index); returns task -> snapshot. Online, changes nothing.

    Online, ``datasets`` downloads a data set into the Hub cache and prepares it into its own
    Arrow cache (``HF_DATASETS_CACHE``). Offline, it reads only that Arrow cache: files that are in
    the Hub cache alone (fetched by ``bench fetch``, copied from another machine, laid out by the
    tests) fail to load with an error about reaching the Hub. Reading the snapshot folder instead
    gives the same files to the same ``datasets`` builders, with the same configurations (a
    dataset card's ``configs``, e.g. GPQA's ``gpqa_diamond``). Models need nothing of the kind:
    transformers, vLLM and the simulated engine read the Hub cache offline themselves."""
    if not offline(datasets=True):
        return {}
    from lm_eval.tasks._yaml_loader import load_yaml  # how lm-eval itself reads a task's YAML

    found = {}
    for task in tasks:
        entry = task_manager.task_index.get(task)
        if entry is None or entry.yaml_path is None:
            continue
        cfg = load_yaml(entry.yaml_path, resolve_func=True)
        spec = task_dataset(cfg)
        if spec is None:
            continue
        repo, name, revision = spec
        commit = cached_commit(repo, revision, "dataset")
        if commit is None:
            continue
        folder = repo_folder(repo, "dataset") / "snapshots" / commit
        kwargs = {k: v for k, v in (cfg.get("dataset_kwargs") or {}).items() if k != "revision"}
        if cfg.get("custom_dataset"):  # a task's own loader is handed its repository in dataset_kwargs.path
            kwargs["path"] = str(folder)
        metadata = {
            **(cfg.get("metadata") or {}),
            "hub_snapshot": {"repo": repo, "name": name, "revision": revision, "commit": commit},
        }
        task_manager.task_index[task] = dataclasses.replace(
            entry,
            yaml_path=None,
            cfg={**cfg, "dataset_path": str(folder), "dataset_kwargs": kwargs or None, "metadata": metadata},
        )
        found[task] = folder
        logging.getLogger("bench").info("%s: offline; data set %s read from the Hub cache (%s)", task, repo, folder)
    return found
