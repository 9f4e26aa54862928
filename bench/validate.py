"""Checks that run after composition and before any server starts; each names its fix.

Most checks read only the config and lm-eval's task index, so ``bench plan`` runs them on a
laptop; the few that need the machine the run happens on (its GPUs, its API keys) are in
:func:`check_machine`.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any, cast

from bench.analysis import cost_bases
from bench.config import (
    PROJECT_ROOT,
    BenchConfig,
    HardwareConfig,
    Mode,
    ModelConfig,
    Role,
    SourceKind,
    SuiteConfig,
    name_problem,
)
from bench.data import hub, lifecycle
from bench.evaluation.client_kinds import KINDS as CLIENTS
from bench.serving.serve import devices_needed, gpu_count, visible_gpus

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class ConfigError(ValueError):
    """A configuration that cannot run; the message says how to fix it."""


def resolve_paths(paths: list[str]) -> list[Path]:
    """Relative task folders are relative to the project root, wherever the command runs."""
    return [p if p.is_absolute() else PROJECT_ROOT / p for p in map(Path, paths)]


def task_generation(task_manager, task: str) -> dict[str, Any]:
    """A task's own ``generation_kwargs`` as its YAML states them ({} when unknown)."""
    entry = task_manager.task_index.get(task)
    cfg = (entry.cfg if entry is not None else None) or {}
    return dict(cfg.get("generation_kwargs") or {})


def max_gen_toks(model: ModelConfig, suite: SuiteConfig, task_gen: dict[str, Any]) -> int | None:
    """The generation limit a model gets on a task: the suite's, else the model's (an API's
    output cap), else the task's own (the same precedence as the run's overrides)."""
    for value in (suite.max_gen_toks, model.generation.max_gen_toks, task_gen.get("max_gen_toks")):
        if value is not None:
            return int(value)
    return None


def check_models(cfg: BenchConfig, will_build: AbstractSet[str], today: dt.date) -> list[str]:
    errors = []
    if cfg.run.only is not None and cfg.run.only not in cfg.models:
        errors.append(
            f"run.only={cfg.run.only} is not a model of experiment {cfg.experiment.name} "
            f"(available: {', '.join(cfg.models)})"
        )
    if not cfg.models:
        errors.append("the experiment names no models: add some with +model@models.NAME=NAME")
    names = [m.name for m in cfg.models.values()]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        errors.append(f"two models are served as '{dup}': give each a distinct models.<key>.name")
    teachers = [m.name for m in cfg.models.values() if m.role == Role.teacher]
    if len(teachers) > 1:
        errors.append(f"more than one teacher ({', '.join(teachers)}): set role=student or baseline on all but one")
    for key, m in cfg.models.items():
        errors += [p for p in [name_problem(m.name, f"models.{key}.name")] if p]  # names files in the run folder
        errors += check_source(key, m, will_build)
        errors += check_billing(key, m, cfg.hardware)
        errors += check_lifecycle(key, m, today)
        errors += check_context(key, m)
        if m.serve.max_model_len < 16:
            errors.append(f"model '{key}': serve.max_model_len={m.serve.max_model_len} is too small")
    return errors


def check_source(key: str, m: ModelConfig, will_build: AbstractSet[str]) -> list[str]:
    """Where the weights or the endpoint come from; offline (a hub id is checked by form only)."""
    errors = []
    if m.source_kind == SourceKind.local and m.name not in will_build:
        folder = Path(m.source)
        if not (folder / "config.json").is_file():
            errors.append(
                f"model '{key}': no model folder at {folder} (no config.json); "
                f"run `make zoo` for the tiny zoo, or point models.{key}.source at a "
                f"Hugging Face model folder"
            )
    if m.source_kind == SourceKind.hub and not HUB_ID.match(m.source):
        errors.append(
            f"model '{key}': source {m.source!r} is not a hub id (owner/name); for a "
            f"model folder set models.{key}.source_kind=local"
        )
    if m.source_kind != SourceKind.api:
        return errors
    if not m.api.base_url:
        errors.append(
            f"model '{key}' has source_kind=api but no endpoint: set "
            f"models.{key}.api.base_url (ending in /v1) and api.api_key_env"
        )
    if m.api.client is not None and m.api.client not in CLIENTS:
        errors.append(f"model '{key}': api.client={m.api.client!r} is not one of {', '.join(CLIENTS)}")
    elif m.api.client and CLIENTS[m.api.client].chat != (m.mode == Mode.chat):
        errors.append(f"model '{key}': api.client={m.api.client} does not match mode={m.mode.value}")
    return errors


def check_billing(key: str, m: ModelConfig, hardware: HardwareConfig) -> list[str]:
    """The model's cost basis exists and has the prices it bills with (the basis says which)."""
    try:
        basis = cost_bases.for_model(m)
    except cost_bases.UnknownCostBasis as e:
        return [f"model '{key}': {e}"]
    return basis.config_errors(key, m, hardware)


def check_lifecycle(key: str, m: ModelConfig, today: dt.date) -> list[str]:
    """An API model whose id is retired, or no longer serves the model the preset measures, is
    refused before anything starts (a 404 is not retried, so the run would end in error)."""
    if m.source_kind != SourceKind.api:
        return []  # a stand-in served here (frontier_api) only borrows an API's prices
    bad = lifecycle.date_errors(m.lifecycle)
    if bad:
        return [f"model '{key}': lifecycle.{', lifecycle.'.join(bad)} must be a date written YYYY-MM-DD"]
    v = lifecycle.verdict(m, today)
    if v.usable:
        return []
    stand_in = (
        f"the report shows the paper's reported row '{m.reported_as}' for it"
        if m.reported_as
        else "it has no reported row to stand in for it"
    )
    current = ", ".join(lifecycle_presets(today)) or "none"
    return [
        f"model '{key}': {v.reason}; {stand_in}. Drop it from the run (~model@models.{key}), "
        f"or use a current API preset (available: {current})"
    ]


def lifecycle_presets(today: dt.date) -> list[str]:
    """Vendor API presets in conf/model that can be called today (for error messages)."""
    from omegaconf import OmegaConf

    from bench.config import CONF_DIR, Lifecycle

    names = []
    for path in sorted((CONF_DIR / "model").glob("*.yaml")):
        node = cast(dict, OmegaConf.to_container(OmegaConf.load(path)))  # a model preset: a mapping
        lc = node.get("lifecycle") or {}
        if node.get("source_kind") != "api" or not lc.get("serves"):
            continue
        m = ModelConfig(
            name=path.stem,
            role=Role.baseline,
            source_kind=SourceKind.api,
            source=node["source"],
            lifecycle=Lifecycle(**lc),
        )
        if lifecycle.verdict(m, today).usable:
            names.append(path.stem)
    return names


def check_suite(cfg: BenchConfig, task_manager) -> list[str]:
    suite = cfg.suite
    errors = []
    if not suite.tasks:
        errors.append(f"suite '{suite.name}' has no tasks: set suite.tasks=[...]")
    known = set(task_manager.all_tasks)
    errors += unreadable_task_files(resolve_paths(suite.include_paths))
    for task in suite.tasks:
        if problem := name_problem(task, "suite.tasks"):
            errors.append(problem)
        if task not in known:
            local = sorted(
                n
                for n, e in task_manager.task_index.items()
                if e.yaml_path and any(str(e.yaml_path).startswith(str(p)) for p in resolve_paths(suite.include_paths))
            )
            errors.append(
                f"unknown task '{task}' in suite '{suite.name}' (tasks in its include paths: "
                f"{', '.join(local) or 'none'}; or any lm-eval task, see `lm-eval ls tasks`)"
            )
    for p in resolve_paths(suite.include_paths):
        if not p.is_dir():
            errors.append(f"suite '{suite.name}': include path {p} is not a folder")
    if suite.limit is not None and suite.limit < 1:
        errors.append(f"suite.limit={suite.limit}: must be at least 1 (or null for every item)")
    if suite.repeats < 1:
        errors.append(f"suite.repeats={suite.repeats}: must be at least 1 (responses per item)")
    for key, m in cfg.models.items():
        why = (
            "is a chat model, and chat endpoints return no prompt log-likelihoods: use mode=completions"
            if m.mode == Mode.chat
            else f"is an API model without a tokenizer: set models.{key}.tokenizer"
            if m.source_kind == SourceKind.api and not m.tokenizer
            else None
        )
        for task in suite.tasks if why else []:
            entry = task_manager.task_index.get(task)
            if entry and entry.cfg and entry.cfg.get("output_type") in ("multiple_choice", "loglikelihood"):
                errors.append(f"task '{task}' is scored by log-likelihood but model '{key}' {why}, or drop the task")
        errors += check_generation_fits(key, m, cfg, task_manager)
    return errors


def unreadable_task_files(folders: list[Path]) -> list[str]:
    """Task YAMLs that do not parse, with the parser's reason, file and line: lm-eval's index
    skips such a file without a word, and its task then looks unknown."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))
    errors = []
    for path in sorted(p for folder in folders if folder.is_dir() for p in folder.rglob("*.yaml")):
        try:
            with open(path, encoding="utf-8") as f:
                yaml.load(f, Loader=Loader)  # noqa: S506 - a SafeLoader that also reads !function
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark else str(path)
            why = " ".join(filter(None, (getattr(e, "context", None), getattr(e, "problem", None)))) or str(e)
            errors.append(f"task file {where}: YAML syntax error ({why}); lm-eval skips the file until it parses")
    return errors


def check_generation_fits(key: str, m: ModelConfig, cfg: BenchConfig, task_manager) -> list[str]:
    """A self-hosted model's context must hold the generation limit plus a prompt."""
    if m.source_kind == SourceKind.api:
        return []
    for task in cfg.suite.tasks:
        limit = max_gen_toks(m, cfg.suite, task_generation(task_manager, task))
        if limit is not None and limit >= m.serve.max_model_len:
            where = (
                "suite.max_gen_toks"
                if cfg.suite.max_gen_toks is not None
                else f"models.{key}.generation.max_gen_toks"
                if m.generation.max_gen_toks is not None
                else f"task {task}'s max_gen_toks"
            )
            return [
                f"{where}={limit} leaves no room for the prompt in model '{key}' "
                f"(serve.max_model_len={m.serve.max_model_len}): raise serve.max_model_len or "
                f"set models.{key}.generation.max_gen_toks lower"
            ]
    return []


def check_hardware(cfg: BenchConfig) -> list[str]:
    """The hardware preset against the models' parallelism (config only, no GPU needed)."""
    hw = cfg.hardware
    errors = []
    if hw.device not in ("cpu", "cuda"):
        errors.append(f"hardware.device={hw.device!r}: use cpu or cuda")
    if hw.usd_per_device_hour < 0 or hw.count < 1 or hw.nodes < 1 or hw.count % hw.nodes:
        errors.append(
            "hardware.usd_per_device_hour must be >= 0, hardware.count >= 1, and "
            "hardware.count a multiple of hardware.nodes"
        )
    if cfg.run.num_concurrent is not None and cfg.run.num_concurrent < 1:
        errors.append("run.num_concurrent must be at least 1")
    if cfg.run.timing_replays < 0:
        errors.append(
            f"run.timing_replays is {cfg.run.timing_replays}: set it to 0 (bill the pooled evaluation's "
            "time) or more (that many timing replays per task)"
        )
    per_node = hw.count // max(hw.nodes, 1)
    for key, m in cfg.models.items():
        if m.source_kind == SourceKind.api or hw.device != "cuda":
            continue
        s, need = m.serve, devices_needed(m.serve)
        if need > hw.count:
            errors.append(
                f"model '{key}' needs {need} GPUs (tensor {s.tensor_parallel_size} x pipeline "
                f"{s.pipeline_parallel_size} x data {s.data_parallel_size}) but hardware={hw.name} "
                f"has {hw.count}: pick a larger hardware preset or lower models.{key}.serve's "
                f"parallelism"
            )
        elif need > per_node and s.distributed_executor_backend != "ray":
            errors.append(
                f"model '{key}' needs {need} GPUs but a node of hardware={hw.name} has "
                f"{per_node}: set models.{key}.serve.distributed_executor_backend=ray and "
                f"start a Ray cluster across the nodes (README)"
            )
        errors += check_weights_fit(key, m, hw)
    return errors


def check_weights_fit(key: str, m: ModelConfig, hw: HardwareConfig) -> list[str]:
    """One copy's weights, split over tensor x pipeline parallel GPUs, must leave room for a KV cache."""
    weights = m.weights_gb if m.weights_gb is not None else 2 * m.params_b if m.params_b is not None else None
    if weights is None or hw.memory_gb is None:
        return []
    split = m.serve.tensor_parallel_size * m.serve.pipeline_parallel_size
    usable = hw.memory_gb * m.serve.gpu_memory_utilization
    if weights / split < usable:
        return []
    return [
        f"model '{key}': {weights:g} GB of weights over {split} GPU(s) is {weights / split:.0f} GB each, "
        f"but a {hw.device_kind} offers {usable:.0f} GB (memory_gb {hw.memory_gb:g} x "
        f"gpu_memory_utilization {m.serve.gpu_memory_utilization:g}): raise models.{key}.serve."
        f"tensor_parallel_size or pipeline_parallel_size, or pick a hardware preset with larger GPUs"
    ]


def check_machine(cfg: BenchConfig) -> list[str]:
    """What only the machine that runs can tell: its GPUs and the API keys in its environment."""
    hw = cfg.hardware
    errors = []
    hosted = {k: m for k, m in cfg.models.items() if m.source_kind != SourceKind.api}
    on_gpus = {k: m for k, m in hosted.items() if not m.serve.simulate.enabled}  # a simulated engine needs none
    if hw.device == "cuda" and on_gpus:
        found = len(visible_gpus(os.environ))
        if found == 0:
            why = "nvidia-smi finds none" if gpu_count() == 0 else "CUDA_VISIBLE_DEVICES hides them all"
            errors.append(f"hardware={hw.name} asks for CUDA GPUs but {why}: use hardware=cpu on this machine")
        for key, m in on_gpus.items():
            need = devices_needed(m.serve)
            # With Ray the devices may sit on other nodes of the cluster.
            if found and need > found and m.serve.distributed_executor_backend != "ray":
                errors.append(
                    f"model '{key}' needs {need} GPUs (tensor x pipeline x data parallel) but {found} are present"
                )
    for key, m in hosted.items():
        if m.serve.port is not None and not port_free(cfg.run.host, m.serve.port):
            errors.append(
                f"model '{key}': port {m.serve.port} on {cfg.run.host} is in use: stop what holds "
                f"it, or unset models.{key}.serve.port (a free port is then picked)"
            )
        errors += check_hub_context(key, m)
    for key, m in cfg.models.items():
        if m.source_kind == SourceKind.api and m.api.api_key_env and not os.environ.get(m.api.api_key_env):
            errors.append(
                f"model '{key}': environment variable {m.api.api_key_env} (its API key) "
                f"is not set; export it before running"
            )
    return errors


def port_free(host: str, port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def check_context(key: str, m: ModelConfig) -> list[str]:
    """serve.max_model_len within the context the model was built for, offline: a local folder's
    config.json, or a hub preset's ``context_length`` (``check_hub_context`` reads the hub's)."""
    if m.source_kind == SourceKind.local:
        config = Path(m.source) / "config.json"
        if not config.is_file():
            return []
        import json

        return context_errors(
            key, m, hub.context_of(json.loads(config.read_text())), f"max_position_embeddings in {config}"
        )
    if m.source_kind == SourceKind.hub:
        return context_errors(key, m, m.context_length, f"models.{key}.context_length, from its config.json")
    return []


def check_hub_context(key: str, m: ModelConfig) -> list[str]:
    """The same against the hub's own config.json, fetched alone (or read from the cache) when
    the run's machine can; without it, the preset's ``context_length`` was already checked."""
    if m.source_kind != SourceKind.hub:
        return []
    config = hub.model_config(m.source, m.serve.revision)
    trained = hub.context_of(config) if config else None
    if trained is None:
        return []
    errors = context_errors(key, m, trained, f"max_position_embeddings in {m.source}'s config.json")
    if m.context_length is not None and m.context_length != trained:
        errors.append(
            f"model '{key}': context_length={m.context_length} but {m.source}'s config.json says "
            f"{trained}: set context_length: {trained} in its preset"
        )
    return errors


def context_errors(key: str, m: ModelConfig, trained: int | None, where: str) -> list[str]:
    if trained is None or m.serve.max_model_len <= trained:
        return []
    return [
        f"model '{key}': serve.max_model_len={m.serve.max_model_len} is beyond its context of {trained} "
        f"tokens ({where}); vLLM refuses to start it unless VLLM_ALLOW_LONG_MAX_MODEL_LEN=1, and "
        f"positions past {trained} were never trained: set models.{key}.serve.max_model_len to at most "
        f"{trained}, and its generation.max_gen_toks below that"
    ]


def check_items(cfg: BenchConfig, task_manager) -> tuple[list[str], dict[str, Any]]:
    """Every task has items to evaluate (loads each task's data, as the run would); returns the
    errors and the loaded lm-eval task objects."""
    errors, tasks = [], {}
    for task in cfg.suite.tasks:
        try:
            loaded = task_manager.load_task_or_group([task])
        except Exception as e:  # noqa: BLE001 - reported as a config error with lm-eval's reason
            if "for size 0" in str(e):  # lm-eval inspects the first item while building the task
                errors.append(
                    f"task '{task}' of suite '{cfg.suite.name}' has no items (its data is empty): "
                    f"fix its data files or drop it from suite.tasks"
                )
                continue
            bad = bad_json_line(task_manager, task)
            errors.append(
                f"task '{task}' cannot be loaded ({bad or f'{type(e).__name__}: {str(e)[:500]}'}): "
                f"check its YAML and data files"
            )
            continue
        for name, obj in loaded.items():
            docs = getattr(obj, "eval_docs", None)
            if docs is not None and len(docs) == 0:
                errors.append(
                    f"task '{name}' of suite '{cfg.suite.name}' has no items (its evaluation split "
                    f"is empty): fix its data files or drop it from suite.tasks"
                )
            elif docs is not None:
                tasks[name] = obj
    return errors, tasks


def bad_json_line(task_manager, task: str) -> str | None:
    """The first line that is not JSON in a task's ``dataset_kwargs.data_files`` (for
    ``dataset_path: json``, whose loader reports a row number and no file)."""
    import json

    entry = task_manager.task_index.get(task)
    files = ((entry.cfg if entry is not None else None) or {}).get("dataset_kwargs", {}).get("data_files")
    spread = list(files.values()) if isinstance(files, dict) else [files]
    for path in [Path(f) for v in spread for f in (v if isinstance(v, list) else [v]) if isinstance(f, str)]:
        if not path.is_file():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            try:
                line.strip() and json.loads(line)
            except ValueError as e:
                return f"{path}, line {number}: not valid JSON ({e})"
    return None


def check_prompt_lengths(cfg: BenchConfig, tasks: dict[str, Any]) -> list[str]:
    """Each generation task's longest prompts, counted by each self-hosted model's own (local)
    tokenizer, must leave room in serve.max_model_len for a generated token: the server would
    refuse them only once it has started."""
    errors, prompts = [], {}
    for key, m in cfg.models.items():
        folder = Path(m.tokenizer or m.source)
        if m.source_kind == SourceKind.api or not folder.is_dir():
            continue  # a hub tokenizer would need the network; an API's context is not ours to set
        count = prompt_counter(folder, m.mode == Mode.chat)
        for name, task in tasks.items():
            if name not in prompts:
                prompts[name] = longest_prompts(task, cfg.suite)
            if not prompts[name]:
                continue
            tokens = count([p for p, _ in prompts[name]])
            worst = max(range(len(tokens)), key=tokens.__getitem__)
            if tokens[worst] >= m.serve.max_model_len:
                errors.append(
                    f"task '{name}': a prompt of {tokens[worst]} tokens (item {prompts[name][worst][1]}) "
                    f"does not fit model '{key}' (serve.max_model_len={m.serve.max_model_len}, and "
                    f"the answer needs room too): raise models.{key}.serve.max_model_len, lower "
                    f"suite.num_fewshot, or drop the task"
                )
    return errors


def longest_prompts(task, suite: SuiteConfig, n: int = 32) -> list[tuple[str, Any]]:
    """(prompt, item) of the ``n`` longest generation prompts by characters that the run will
    send (few-shot examples included); tokenizing only these keeps a large task cheap."""
    if task.get_config("output_type") != "generate_until":
        return []  # log-likelihood requests are cut to the context by lm-eval itself
    if suite.num_fewshot is not None:
        task.set_config(key="num_fewshot", value=suite.num_fewshot)
    task.set_fewshot_seed(seed=suite.seed)
    task.build_all_requests(limit=suite.limit, rank=0, world_size=1)
    items = {inst.args[0]: inst.doc_id for inst in task.instances}
    return sorted(items.items(), key=lambda item: -len(item[0]))[:n]


def prompt_counter(folder: Path, chat: bool):
    """Prompt lengths in tokens with a model folder's tokenizer (its chat template applied for
    a chat model, as the server will)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder))
    tok.model_max_length = 2**62  # lengths are compared with serve.max_model_len here, not its config
    if chat and getattr(tok, "chat_template", None):
        return lambda texts: [
            len(tok.apply_chat_template([{"role": "user", "content": t}], tokenize=True, add_generation_prompt=True))
            for t in texts
        ]
    return lambda texts: [len(ids) for ids in tok(list(texts), add_special_tokens=True)["input_ids"]]


def validate(
    cfg: BenchConfig,
    task_manager,
    will_build: AbstractSet[str] = frozenset(),
    machine: bool = True,
    today: dt.date | None = None,
) -> None:
    """Raise one ConfigError listing every problem found; ``cfg`` is only read (a run resolves
    local model paths first, with :func:`bench.config.resolve_model_paths`).

    ``will_build`` names local models the harness builds itself (the tiny zoo), whose folders
    may not exist yet. ``machine=False`` skips :func:`check_machine` (for planning elsewhere).
    ``today`` (default: today's UTC date) is the day API models' lifecycles are checked on.
    """
    today = today or dt.datetime.now(dt.UTC).date()
    errors = check_models(cfg, will_build, today) + check_suite(cfg, task_manager) + check_hardware(cfg)
    if machine:
        errors += check_machine(cfg)
        if not errors:  # loading every task's data is worth it only for a config that can run
            errors, tasks = check_items(cfg, task_manager)
            errors += check_prompt_lengths(cfg, tasks)
    if errors:
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(errors))
