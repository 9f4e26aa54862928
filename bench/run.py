"""Run an experiment: serve each model with vLLM, evaluate the suite with lm-eval, report.

    python -m bench.run                                   # experiment=smoke on the tiny zoo
    python -m bench.run suite.limit=20 hardware=h100      # any Hydra override

Stages: validate (before any server starts) -> per model: start its server once, run every
task of the suite against it, append per-sample records -> summarize and report from the
records on disk. The run folder is Hydra's output dir: results/<experiment>/<timestamp>/.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from bench import records
from bench.config import CONF_DIR, ROLE_ORDER, BenchConfig, ModelConfig, SourceKind, as_plain
from bench.validate import ConfigError, resolve_paths, validate

log = logging.getLogger("bench")
_IMPORTED_AT = time.perf_counter()


def ordered_models(cfg: BenchConfig) -> list[ModelConfig]:
    """Serving order. The teacher goes last, so its server can score the others' generations
    (recognition). A model that serves the same weights as another (a stand-in billed another
    way) follows them: the response cache answers it, and no second server starts."""
    by_role = sorted(cfg.models.values(), key=lambda m: (m.role.value == "teacher", ROLE_ORDER[m.role.value], m.name))
    primary: dict[tuple, ModelConfig] = {}
    for m in by_role:
        key = same_answers_key(m)
        if key not in primary or m.role.value == "teacher":
            primary[key] = m
    first = [m for m in by_role if primary[same_answers_key(m)] is m]
    return first + [m for m in by_role if primary[same_answers_key(m)] is not m]


def same_answers_key(m: ModelConfig) -> tuple:
    """Models equal here give the same answers (their response-cache keys are equal)."""
    if m.source_kind == SourceKind.api:
        return ("api", m.api.base_url, m.source, m.api.client, m.mode.value, m.name)
    s = m.serve
    return (m.source_kind.value, str(Path(m.source).resolve()) if m.source_kind == SourceKind.local else m.source,
            m.tokenizer, s.revision, s.dtype, s.max_model_len, tuple(s.extra_args), m.mode.value)


def evaluate_model(model: ModelConfig, cfg: BenchConfig, run_dir: Path, tm, identity: dict) -> None:
    """Every task of the suite (``repeats`` passes each) against one model, then, for the
    teacher, recognition. Answers come from the response cache where it has them; the server
    starts at the first request it cannot answer."""
    from bench import evaluate
    from bench.cache import ResponseCache, model_key
    from bench.endpoint import ModelEndpoint
    from bench.energy import EnergyMeter
    from bench.serve import counters_after, scrape_counters

    energy = EnergyMeter()
    cache = ResponseCache(Path(cfg.run.cache_dir), model_key(identity), reuse=cfg.run.reuse_cache)
    kinds = evaluate.request_kinds(tm, cfg.suite.tasks)
    with ModelEndpoint(model, run_dir, cfg.run.host, cfg.run.seed, cfg.hardware.engine_nice) as ep:
        def client(base: str | None):
            return evaluate.make_lm(model, base, cfg.suite, cfg.run.num_concurrent, cfg.run.max_retries,
                                    cfg.run.request_timeout_s, cache=cache, start_endpoint=lambda: ep.base,
                                    alive=ep.alive, warmup_kinds=kinds, on_warm_up=ep.record_warm_up)

        lm = client(ep.base if ep.is_api else None)
        tok = lm.tokenizer

        def count_tokens(text: str) -> int:
            # Without a tokenizer (an API model), reasoning length is not counted here.
            return len(tok.encode(text, add_special_tokens=False)) if tok is not None else 0

        try:
            for i, task in enumerate(cfg.suite.tasks, 1):
                log.info("%s [%s] task %d/%d: %s", model.name, model.role.value, i, len(cfg.suite.tasks), task)
                evaluate_task(model, task, cfg, run_dir, tm, lm, ep, energy, count_tokens,
                              scrape_counters, counters_after, lambda: client(ep.base))
            if model.role.value == "teacher" and cfg.run.teacher_recognition and not ep.is_api:
                recognize_generations(ep, model, tok, cfg, run_dir, cache)
        finally:
            cache.close()


def run_passes(model, task, cfg, tm, lm, ep, new_client) -> list[tuple[int, dict, list]]:
    """The suite's ``repeats`` passes over a task: (repeat, lm-eval result, meter) each.

    Pass 0 runs first (it may start the server). When it needed the server, the other passes
    run several at a time, each on its own client, as many as keep about ``run.num_concurrent``
    requests in flight in all (30 AIME items x 64 repeats one pass at a time would leave a GPU
    box nearly idle); answers and records are the same either way.
    """
    from concurrent.futures import ThreadPoolExecutor
    from queue import SimpleQueue

    from bench import evaluate

    def one(client, repeat: int) -> tuple[int, dict, list]:
        result = evaluate.run_task(client, task, tm, cfg.suite, model, repeat)
        return repeat, result, client.meter

    done = [one(lm, 0)]
    rest = list(range(1, cfg.suite.repeats))
    per_pass = max(1, len(done[0][2]))
    width = min(len(rest), max(1, cfg.run.num_concurrent // per_pass))
    asked = any(not m.from_cache for m in done[0][2])
    if width <= 1 or not asked or not (ep.started or ep.is_api):
        return done + [one(lm, r) for r in rest]
    log.info("%s %s: passes 2-%d, %d at a time", model.name, task, cfg.suite.repeats, width)
    idle: SimpleQueue = SimpleQueue()
    for _ in range(width):
        idle.put(new_client())

    def work(repeat: int) -> tuple[int, dict, list]:
        client = idle.get()
        try:
            return one(client, repeat)
        finally:
            idle.put(client)

    with ThreadPoolExecutor(max_workers=width) as pool:
        return done + list(pool.map(work, rest))


def evaluate_task(model, task, cfg, run_dir, tm, lm, ep, energy, count_tokens, scrape_counters,
                  counters_after, new_client) -> None:
    from bench import evaluate

    served_here = not ep.is_api
    before = scrape_counters(ep.base) if served_here and ep.started else None
    joules0 = energy.joules()
    started, t0 = time.time(), time.perf_counter()
    rows, meters, result = [], [], None
    for repeat, result, meter in run_passes(model, task, cfg, tm, lm, ep, new_client):
        meta = result["configs"][task].get("metadata") or {}
        rows += evaluate.to_records(model, task, result["samples"][task], meter, count_tokens,
                                    repeat=repeat, cluster_field=meta.get("cluster_field"))
        meters += meter
    harness = time.perf_counter() - t0
    live = sum(not m.from_cache for m in meters)
    server: dict = {}
    if served_here and ep.started:
        zero = dict.fromkeys(("prompt_tokens", "generation_tokens", "requests"), 0.0)
        server = counters_after(ep.base, before or zero, live)
    joules = energy.joules() - joules0 if joules0 is not None and live else None
    records.append_jsonl(run_dir / records.SAMPLES, rows)
    records.append_jsonl(run_dir / records.TASK_RUNS, [records.TaskRun(
        model=model.name, role=model.role.value, task=task, n_samples=len(rows),
        wall_s=evaluate.serving_seconds(meters), started_at=started, chance=meta.get("chance"),
        server_prompt_tokens=server.get("prompt_tokens"),
        server_generation_tokens=server.get("generation_tokens"),
        server_requests=server.get("requests"), energy_j=joules,
        requests_live=live, requests_cached=len(meters) - live, harness_s=harness)])
    records.write_json(run_dir / "lm_eval" / f"{model.name}__{task}.json",
                       {k: v for k, v in result.items() if k != "samples"})
    acc = sum(r.correct for r in rows) / len(rows)
    log.info("%s %s: accuracy %.3f on %d samples in %.1fs (%d requests sent, %d from the cache)",
             model.name, task, acc, len(rows), harness, live, len(meters) - live)


def recognize_generations(ep, teacher: ModelConfig, tokenizer, cfg: BenchConfig, run_dir: Path, cache) -> None:
    """Score every model's generations (its own included) under the teacher: recognition.jsonl."""
    from bench.recognize import score_generations

    rows = [r for r in records.read_jsonl(run_dir / records.SAMPLES) if r["n_requests"] == 1]
    t0 = time.perf_counter()
    scored, live = score_generations(ep, teacher.name, tokenizer, rows, cfg.run.num_concurrent,
                                     cfg.run.request_timeout_s, cache)
    records.append_jsonl(run_dir / records.RECOGNITION, scored)
    log.info("%s: scored %d generations of %d models for teacher recognition in %.1fs (%d requests sent)",
             teacher.name, len(scored), len({r["model"] for r in rows}), time.perf_counter() - t0, live)


def zoo_models(cfg: BenchConfig) -> list[str]:
    """Local models that live in the zoo folder (and so can be built by the harness)."""
    root = Path(cfg.zoo_dir).resolve()
    return [m.name for m in cfg.models.values()
            if m.source_kind == SourceKind.local and Path(m.source).resolve().is_relative_to(root)]


def ensure_zoo(cfg: BenchConfig) -> None:
    """Materialize the shipped tiny zoo once if a model of the experiment lives in it and it is
    missing or stale (seconds: the weights ship with the code)."""
    from bench import zoo

    root = Path(cfg.zoo_dir).resolve()
    in_zoo = zoo_models(cfg)
    if in_zoo and cfg.run.build_zoo and not zoo.is_built(root):
        log.info("materializing the shipped tiny zoo into %s for %s", root, ", ".join(in_zoo))
        zoo.build(root)


def execute(cfg: BenchConfig, run_dir: Path) -> Path:
    """Everything after composition; returns the run folder. Raises on any failure."""
    from bench import manifest, report
    from bench.cache import model_identity
    from bench.cost import prices_used
    from bench.evaluate import task_manager
    from bench.paper import software_versions

    include_paths = resolve_paths(cfg.suite.include_paths)
    tm = task_manager(include_paths, cfg.suite.tasks)
    # Everything is checked before the zoo is built or any server starts.
    validate(cfg, tm, will_build=set(zoo_models(cfg)) if cfg.run.build_zoo else set())
    ensure_zoo(cfg)
    resolved = as_plain(OmegaConf.structured(cfg))
    identities = {m.name: model_identity(m, cfg.run.seed) for m in cfg.models.values()}
    versions, prices = software_versions(), prices_used(resolved)
    records.write_json(run_dir / "config.json", resolved)
    records.write_json(run_dir / records.PRICES, prices)
    records.write_json(run_dir / records.VERSIONS, versions)
    manifest.start(run_dir, resolved, identities, include_paths, versions, prices)
    startup = time.perf_counter() - _IMPORTED_AT
    log.info("harness ready after %.1fs (imports, config, validation, zoo check, model hashes); "
             "servers start when a model needs one", startup)
    set_status(run_dir, "running", started_at=time.time(), harness_startup_s=startup)
    for model in ordered_models(cfg):
        evaluate_model(model, cfg, run_dir, tm, identities[model.name])
    set_status(run_dir, "success", finished_at=time.time())
    summary = report.build(run_dir)
    link_latest(run_dir, Path(cfg.run.results_dir))
    log.info("report: %s\n%s", run_dir / "report.md",
             summary[["task", "model", "role", "accuracy", "completion_tokens", "usd"]].to_string(index=False))
    return run_dir


def set_status(run_dir: Path, status: str, **extra) -> None:
    """status.json (written last, atomically) and the manifest's closing fields."""
    from bench import manifest

    if status != "running":
        manifest.finish(run_dir, status)
    records.write_json(run_dir / records.STATUS, {"status": status, **extra})


def link_latest(run_dir: Path, results_dir: Path) -> None:
    link = results_dir / "latest"
    tmp = results_dir / ".latest.tmp"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(os.path.relpath(run_dir.resolve(), results_dir.resolve()))
    os.replace(tmp, link)


class _DropDatasetHint(logging.Filter):
    """lm-eval repeats a hint about --metadata for every task with a custom_dataset loader."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Custom kwargs can be passed" not in record.getMessage()


def quiet_lm_eval() -> None:
    """Mute lm-eval's unlabelled progress bars and INFO chatter; ours name model and task."""
    os.environ.setdefault("TQDM_DISABLE", "1")
    logging.getLogger("lm_eval").setLevel(logging.WARNING)
    logging.getLogger("lm_eval.api.task").addFilter(_DropDatasetHint())


def _sigterm(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def main(dcfg: DictConfig) -> None:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    cfg: BenchConfig = OmegaConf.to_object(dcfg)
    signal.signal(signal.SIGTERM, _sigterm)
    quiet_lm_eval()
    try:
        execute(cfg, run_dir)
    except ConfigError as e:
        log.error("%s", e)
        set_status(run_dir, "error", error=str(e))
        sys.exit(2)
    except KeyboardInterrupt:
        log.error("interrupted: servers stopped; answers so far are in the response cache (%s), "
                  "rerun the same command to resume", cfg.run.cache_dir)
        set_status(run_dir, "cancelled")
        sys.exit(130)
    except BaseException as e:
        log.error("run failed: %s; answers so far are in the response cache (%s), rerun the same "
                  "command to resume", e, cfg.run.cache_dir)
        set_status(run_dir, "error", error=repr(e))
        sys.exit(1)


if __name__ == "__main__":
    main()
