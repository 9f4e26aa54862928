"""Checks that run after composition and before any server starts; each names its fix."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from bench.config import BenchConfig, Mode, Role, SourceKind

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(ValueError):
    """A configuration that cannot run; the message says how to fix it."""


def resolve_paths(paths: list[str]) -> list[Path]:
    """Relative task folders are relative to the project root, wherever the command runs."""
    return [p if p.is_absolute() else PROJECT_ROOT / p for p in map(Path, paths)]


def gpu_count() -> int:
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return sum(line.startswith("GPU ") for line in out.stdout.splitlines()) if out.returncode == 0 else 0


def check_models(cfg: BenchConfig, will_build: set[str]) -> list[str]:
    errors = []
    if not cfg.models:
        errors.append("the experiment names no models: add some with +model@models.NAME=NAME")
    names = [m.name for m in cfg.models.values()]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        errors.append(f"two models are served as '{dup}': give each a distinct models.<key>.name")
    teachers = [m.name for m in cfg.models.values() if m.role == Role.teacher]
    if len(teachers) > 1:
        errors.append(f"more than one teacher ({', '.join(teachers)}): set role=student or baseline on all but one")
    for key, m in cfg.models.items():
        if m.source_kind == SourceKind.local and m.name not in will_build:
            folder = Path(m.source)
            if not (folder / "config.json").is_file():
                errors.append(f"model '{key}': no model folder at {folder} (no config.json); "
                              f"run `make zoo` for the tiny zoo, or point models.{key}.source at a "
                              f"Hugging Face model folder")
        if m.source_kind == SourceKind.api:
            if not m.api.base_url:
                errors.append(f"model '{key}' has source_kind=api but no endpoint: set "
                              f"models.{key}.api.base_url (ending in /v1) and api.api_key_env")
            if m.price.input is None or m.price.output is None:
                errors.append(f"model '{key}' is an API model without token prices: set "
                              f"models.{key}.price.input and price.output ($ per 1M tokens)")
            clients = ("local-completions", "local-chat-completions", "openai-chat-completions")
            if m.api.client is not None and m.api.client not in clients:
                errors.append(f"model '{key}': api.client={m.api.client!r} is not one of {', '.join(clients)}")
            elif (m.api.client or "").endswith("chat-completions") != (m.mode == Mode.chat) and m.api.client:
                errors.append(f"model '{key}': api.client={m.api.client} does not match mode={m.mode.value}")
            if m.api.api_key_env and not os.environ.get(m.api.api_key_env):
                errors.append(f"model '{key}': environment variable {m.api.api_key_env} (its API key) "
                              f"is not set; export it before running")
        if m.serve.max_model_len < 16:
            errors.append(f"model '{key}': serve.max_model_len={m.serve.max_model_len} is too small")
    return errors


def check_suite(cfg: BenchConfig, task_manager) -> list[str]:
    suite = cfg.suite
    errors = []
    if not suite.tasks:
        errors.append(f"suite '{suite.name}' has no tasks: set suite.tasks=[...]")
    known = set(task_manager.all_tasks)
    for task in suite.tasks:
        if task not in known:
            local = sorted(n for n, e in task_manager.task_index.items()
                           if e.yaml_path and any(str(e.yaml_path).startswith(str(p))
                                                  for p in resolve_paths(suite.include_paths)))
            errors.append(f"unknown task '{task}' in suite '{suite.name}' (tasks in its include paths: "
                          f"{', '.join(local) or 'none'}; or any lm-eval task, see `lm-eval ls tasks`)")
    for p in resolve_paths(suite.include_paths):
        if not p.is_dir():
            errors.append(f"suite '{suite.name}': include path {p} is not a folder")
    if suite.limit is not None and suite.limit < 1:
        errors.append(f"suite.limit={suite.limit}: must be at least 1 (or null for every item)")
    if suite.repeats != 1:
        errors.append(f"suite.repeats={suite.repeats}: sampling several responses per item is not "
                      f"supported yet; set suite.repeats=1")
    for key, m in cfg.models.items():
        why = ("is a chat model, and chat endpoints return no prompt log-likelihoods: use "
               "mode=completions" if m.mode == Mode.chat else
               f"is an API model without a tokenizer: set models.{key}.tokenizer"
               if m.source_kind == SourceKind.api and not m.tokenizer else None)
        for task in suite.tasks if why else []:
            entry = task_manager.task_index.get(task)
            if entry and entry.cfg and entry.cfg.get("output_type") in ("multiple_choice", "loglikelihood"):
                errors.append(f"task '{task}' is scored by log-likelihood but model '{key}' {why}, "
                              f"or drop the task")
        if m.serve.max_model_len and suite.max_gen_toks and suite.max_gen_toks >= m.serve.max_model_len:
            errors.append(f"suite.max_gen_toks={suite.max_gen_toks} leaves no room for the prompt in "
                          f"model '{key}' (serve.max_model_len={m.serve.max_model_len})")
    return errors


def check_hardware(cfg: BenchConfig) -> list[str]:
    hw = cfg.hardware
    errors = []
    if hw.device not in ("cpu", "cuda"):
        errors.append(f"hardware.device={hw.device!r}: use cpu or cuda")
    if hw.device == "cuda" and any(m.source_kind != SourceKind.api for m in cfg.models.values()):
        found = gpu_count()
        if found == 0:
            errors.append(f"hardware={hw.name} asks for CUDA GPUs but nvidia-smi finds none: "
                          f"use hardware=cpu on this machine")
        for key, m in cfg.models.items():
            need = m.serve.tensor_parallel_size * m.serve.data_parallel_size
            if m.source_kind != SourceKind.api and found and need > found:
                errors.append(f"model '{key}' needs {need} GPUs (tensor x data parallel) but "
                              f"{found} are present")
    if hw.usd_per_device_hour < 0 or hw.count < 1:
        errors.append("hardware.usd_per_device_hour must be >= 0 and hardware.count >= 1")
    if cfg.run.num_concurrent < 1:
        errors.append("run.num_concurrent must be at least 1")
    return errors


def validate(cfg: BenchConfig, task_manager, will_build: set[str] = frozenset()) -> None:
    """Raise one ConfigError listing every problem found; makes local model paths absolute.

    ``will_build`` names local models the harness builds itself (the tiny zoo), whose folders
    may not exist yet.
    """
    for m in cfg.models.values():
        if m.source_kind == SourceKind.local:
            m.source = str(Path(m.source).resolve())
            if m.tokenizer and Path(m.tokenizer).exists():
                m.tokenizer = str(Path(m.tokenizer).resolve())
    errors = check_models(cfg, will_build) + check_suite(cfg, task_manager) + check_hardware(cfg)
    if errors:
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(errors))
