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
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from bench import records
from bench.config import ROLE_ORDER, BenchConfig, ModelConfig, SourceKind, as_plain
from bench.validate import ConfigError, resolve_paths, validate

log = logging.getLogger("bench")


def ordered_models(cfg: BenchConfig) -> list[ModelConfig]:
    """The teacher goes last, so its server can score the others' generations (recognition)."""
    return sorted(cfg.models.values(), key=lambda m: (m.role.value == "teacher", ROLE_ORDER[m.role.value], m.name))


@contextmanager
def endpoint(model: ModelConfig, cfg: BenchConfig, run_dir: Path) -> Iterator[str]:
    """Yield the base URL (ending in /v1); starts a vLLM server unless the model is an API."""
    from bench.serve import VllmServer

    if model.source_kind == SourceKind.api:
        yield model.api.base_url.rstrip("/")
        return
    server = VllmServer(model, run_dir / "servers" / f"{model.name}.log", host=cfg.run.host, seed=cfg.run.seed)
    held = time.perf_counter()
    with server as ep:
        log.info("%s: server ready on port %d after %.1fs", model.name, ep.port, ep.startup_s)
        try:
            yield ep.base
        finally:
            records.append_jsonl(run_dir / records.SERVERS, [records.ServerRun(
                model=model.name, role=model.role.value, command=server.command,
                startup_s=ep.startup_s, held_s=time.perf_counter() - held)])


def evaluate_model(model: ModelConfig, cfg: BenchConfig, run_dir: Path, tm) -> None:
    from bench import evaluate
    from bench.energy import EnergyMeter
    from bench.serve import counters_after, scrape_counters

    energy = EnergyMeter()

    served_here = model.source_kind != SourceKind.api

    with endpoint(model, cfg, run_dir) as base:
        lm = evaluate.make_lm(model, base, cfg.suite, cfg.run.num_concurrent, cfg.run.max_retries,
                              cfg.run.request_timeout_s)
        tok = lm.tokenizer

        def count_tokens(text: str) -> int:
            # Without a tokenizer (an API model), reasoning length is not counted here.
            return len(tok.encode(text, add_special_tokens=False)) if tok is not None else 0

        for i, task in enumerate(cfg.suite.tasks, 1):
            log.info("%s [%s] task %d/%d: %s", model.name, model.role.value, i, len(cfg.suite.tasks), task)
            before = scrape_counters(base) if served_here else None
            joules0 = energy.joules() if served_here else None
            t0, started = time.perf_counter(), time.time()
            result = evaluate.run_task(lm, task, tm, cfg.suite, model)
            wall = time.perf_counter() - t0
            rows = evaluate.to_records(model, task, result["samples"][task], lm.meter, count_tokens)
            joules = energy.joules() - joules0 if joules0 is not None else None
            server = counters_after(base, before, len(lm.meter)) if served_here else {}
            meta = result["configs"][task].get("metadata") or {}
            records.append_jsonl(run_dir / records.SAMPLES, rows)
            records.append_jsonl(run_dir / records.TASK_RUNS, [records.TaskRun(
                model=model.name, role=model.role.value, task=task, n_samples=len(rows),
                wall_s=wall, started_at=started, chance=meta.get("chance"),
                server_prompt_tokens=server.get("prompt_tokens"),
                server_generation_tokens=server.get("generation_tokens"),
                server_requests=server.get("requests"), energy_j=joules)])
            records.write_json(run_dir / "lm_eval" / f"{model.name}__{task}.json",
                               {k: v for k, v in result.items() if k != "samples"})
            acc = sum(r.correct for r in rows) / len(rows)
            log.info("%s %s: accuracy %.3f on %d items in %.1fs (%.1f items/s)",
                     model.name, task, acc, len(rows), wall, len(rows) / wall)
        if served_here and model.role.value == "teacher" and cfg.run.teacher_recognition:
            recognize_generations(base, model, tok, cfg, run_dir)


def recognize_generations(base: str, teacher: ModelConfig, tokenizer, cfg: BenchConfig, run_dir: Path) -> None:
    """Score every model's generations (its own included) under the teacher: recognition.jsonl."""
    from bench.recognize import score_generations

    rows = [r for r in records.read_jsonl(run_dir / records.SAMPLES) if r["n_requests"] == 1]
    t0 = time.perf_counter()
    scored = score_generations(base, teacher.name, tokenizer, rows, cfg.run.num_concurrent,
                               cfg.run.request_timeout_s)
    records.append_jsonl(run_dir / records.RECOGNITION, scored)
    log.info("%s: scored %d generations of %d models for teacher recognition in %.1fs", teacher.name,
             len(scored), len({r["model"] for r in rows}), time.perf_counter() - t0)


def zoo_models(cfg: BenchConfig) -> list[str]:
    """Local models that live in the zoo folder (and so can be built by the harness)."""
    root = Path(cfg.zoo_dir).resolve()
    return [m.name for m in cfg.models.values()
            if m.source_kind == SourceKind.local and Path(m.source).resolve().is_relative_to(root)]


def ensure_zoo(cfg: BenchConfig) -> None:
    """Build the tiny zoo once if a model of the experiment lives in it and it is missing."""
    from bench import zoo

    root = Path(cfg.zoo_dir).resolve()
    in_zoo = zoo_models(cfg)
    if in_zoo and cfg.run.build_zoo and not zoo.is_built(root, zoo.Recipe()):
        log.info("building the tiny zoo into %s for %s (once; cached afterwards)", root, ", ".join(in_zoo))
        zoo.build(root)


def execute(cfg: BenchConfig, run_dir: Path) -> Path:
    """Everything after composition; returns the run folder. Raises on any failure."""
    from bench import report
    from bench.cost import prices_used
    from bench.evaluate import task_manager
    from bench.paper import software_versions

    tm = task_manager(resolve_paths(cfg.suite.include_paths), cfg.suite.tasks)
    # Everything is checked before the zoo is built or any server starts.
    validate(cfg, tm, will_build=set(zoo_models(cfg)) if cfg.run.build_zoo else set())
    ensure_zoo(cfg)
    resolved = as_plain(OmegaConf.structured(cfg))
    records.write_json(run_dir / "config.json", resolved)
    records.write_json(run_dir / records.PRICES, prices_used(resolved))
    records.write_json(run_dir / records.VERSIONS, software_versions())
    records.write_json(run_dir / records.STATUS, {"status": "running", "started_at": time.time()})
    for model in ordered_models(cfg):
        evaluate_model(model, cfg, run_dir, tm)
    summary = report.build(run_dir)
    records.write_json(run_dir / records.STATUS, {"status": "success", "finished_at": time.time()})
    link_latest(run_dir, Path(cfg.run.results_dir))
    log.info("report: %s\n%s", run_dir / "report.md",
             summary[["task", "model", "role", "accuracy", "completion_tokens", "usd"]].to_string(index=False))
    return run_dir


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


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(dcfg: DictConfig) -> None:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    cfg: BenchConfig = OmegaConf.to_object(dcfg)
    signal.signal(signal.SIGTERM, _sigterm)
    quiet_lm_eval()
    try:
        execute(cfg, run_dir)
    except ConfigError as e:
        log.error("%s", e)
        records.write_json(run_dir / records.STATUS, {"status": "error", "error": str(e)})
        sys.exit(2)
    except KeyboardInterrupt:
        log.error("interrupted: servers stopped, finished records kept in %s", run_dir)
        records.write_json(run_dir / records.STATUS, {"status": "cancelled"})
        sys.exit(130)
    except BaseException as e:
        records.write_json(run_dir / records.STATUS, {"status": "error", "error": repr(e)})
        raise


if __name__ == "__main__":
    main()
