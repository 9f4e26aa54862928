"""Run an experiment: serve each model with vLLM, evaluate the suite with lm-eval, report.

    bench run                                   # experiment=smoke on the tiny zoo (= make bench)
    bench run suite.limit=20 hardware=h100      # any Hydra override (also: python -m bench run ...)

Stages: validate (before any server starts) -> per model: start its server once, run every
task of the suite against it, append per-sample records -> summarize and report from the
records on disk. The run folder is Hydra's output dir: results/<experiment>/<time>_<suffix>/.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn, cast

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from bench.analysis import cost_bases
from bench.compose import to_config
from bench.config import CONF_DIR, BenchConfig, Mode, ModelConfig, as_plain, resolve_model_paths
from bench.evaluation.context import ModelRunContext
from bench.evaluation.logs import quiet_lm_eval
from bench.evaluation.schedule import Passes, ordered_models, run_model_passes
from bench.rundir import records, status
from bench.rundir.records import RequestRecord, SampleRecord
from bench.validate import ConfigError, resolve_paths, task_generation, validate
from bench.zoo import zoo_models

if TYPE_CHECKING:
    from lm_eval.tasks import TaskManager

log = logging.getLogger("bench")
_IMPORTED_AT = time.perf_counter()


def evaluate_model(model: ModelConfig, cfg: BenchConfig, run_dir: Path, tm: TaskManager, identity: dict) -> None:
    """Every pass of the suite against one model through one request pool, then, for the
    teacher, recognition. Answers come from the response cache where it has them; the server
    starts (on this, the main thread) at the first request it cannot answer."""
    from bench.evaluation import evaluate
    from bench.evaluation.cache import ResponseCache, model_key
    from bench.evaluation.client import make_lm
    from bench.serving.concurrency import target_for
    from bench.serving.dispatch import Dispatcher
    from bench.serving.endpoint import ModelEndpoint
    from bench.serving.energy import EnergyMeter
    from bench.serving.serve import counters_after, kv_cache_tokens, scrape_counters

    energy = EnergyMeter()
    cache = ResponseCache(Path(cfg.run.cache_dir), model_key(identity), reuse=cfg.run.reuse_cache)
    kinds = evaluate.request_kinds(tm, cfg.suite.tasks)
    target = target_for(model, cfg, {t: task_generation(tm, t) for t in cfg.suite.tasks})
    log.info("%s: %d requests in flight (%s)", model.name, target.total, target.rule)
    baseline: dict[str, float] = {}
    server_kv: dict[str, int | None] = {}
    try:
        with (
            ModelEndpoint(model, run_dir, cfg.run.host, cfg.run.seed, cfg.hardware.engine_nice) as ep,
            Dispatcher(
                target.total,
                cfg.run.request_timeout_s,
                cfg.run.max_retries,
                model.name,
                ep.alive,
                retry_window_s=cfg.run.retry_window_s,
                seed=cfg.run.seed,
                healthy=None if ep.is_api else ep.healthy,
            ) as dispatcher,
        ):
            ctx = ModelRunContext(cfg, model, run_dir, tm, cache, ep, dispatcher, target)

            def start() -> str:
                base = ep.base
                warm = make_lm(model, base, cfg.suite, target.total, cfg.run.request_timeout_s, dispatcher)
                ep.record_warm_up(warm.warm_up(kinds))
                baseline.update(scrape_counters(base))  # after the warm-up: only the tasks' requests count
                server_kv["tokens"] = kv_cache_tokens(base)
                return base

            joules0 = energy.joules()
            # A served model's serving time is timed again, whether it is billed (device_time) or
            # reported beside its bill (compute); a stand-in billed at list prices is not.
            replays = 0 if ep.is_api or cost_bases.for_model(model).vendor_priced else cfg.run.timing_replays
            capture: list | None = [] if replays else None
            done = run_model_passes(
                model, cfg, tm, dispatcher, cache, ep.base if ep.is_api else None, start, capture=capture
            )
            live = sum(not m.from_cache for r in done.results for m in r.meter)
            server = counters_after(ep.base, baseline, live) if ep.started and not ep.is_api else {}
            # joules() answers again once it has answered (the library stays loaded).
            joules = cast(float, energy.joules()) - joules0 if joules0 is not None and live else None
            timed = (
                time_tasks(ctx, capture, replays, lambda: ep.base if ep.started else start())
                if capture is not None
                else None
            )
            write_model_records(ctx, done, server, joules, server_kv_tokens=server_kv.get("tokens"), timed=timed)
            if model.role.value == "teacher" and cfg.teacher_recognition and not ep.is_api:
                recognize_generations(ctx, done.tokenizer)
    finally:
        cache.close()


def time_tasks(
    ctx: ModelRunContext, capture: list, replays: int, base: Callable[[], str]
) -> dict[str, tuple[float, int]]:
    """Timing replays of each task's requests (``bench.evaluation.timing``), written to timings.jsonl;
    returns each task's serving time (the median) and the number of replays behind it. ``base()``:
    the live server's base URL, starting it if need be."""
    import gc

    from bench.evaluation.timing import replay_task, task_times

    model, dispatcher = ctx.model, ctx.dispatcher
    t0 = time.perf_counter()
    out: dict[str, tuple[float, int]] = {}
    for task in ctx.cfg.suite.tasks:
        requests = [("timing", route, body) for t, route, bodies in capture if t == task for _, body in bodies]
        if not requests:
            continue
        # No garbage collection while a replay is timed: a full one walks the ~500k objects the
        # evaluation left (lm-eval's results, datasets) and stalls every request in flight.
        gc.collect()
        gc.freeze()
        gc.disable()
        try:
            rows = replay_task(
                model.name,
                task,
                requests,
                replays,
                ctx.cache,
                lambda url, body: dispatcher.submit(url, body, {}),
                base,
            )
        finally:
            gc.enable()
            gc.unfreeze()
        records.append_jsonl(ctx.run_dir / records.TIMINGS, rows)
        out[task] = (task_times(rows)[task], replays)
        log.info(
            "%s %s: %.2fs of serving time, the median of %d timing replays (%d requests each)",
            model.name,
            task,
            out[task][0],
            replays,
            len(requests),
        )
    log.info("%s: timing replays took %.1fs", model.name, time.perf_counter() - t0)
    return out


def write_model_records(
    ctx: ModelRunContext,
    done: Passes,
    server: dict[str, float],
    energy_j: float | None,
    server_kv_tokens: int | None = None,
    timed: dict[str, tuple[float, int]] | None = None,
) -> None:
    """samples, requests, one task record per task (its serving time: from ``timed``, the
    timing replays, where given, else its share of the pooled serving time) and the model's
    record, from the passes' lm-eval results and meters (and, from the model's dispatcher, how
    often the endpoint rate-limited). Tokens are counted with the passes' tokenizer."""
    from bench.evaluation.metering import Interval, serving_time, task_shares, utilisation
    from bench.evaluation.samples import to_records

    model, cfg, run_dir, results, target = ctx.model, ctx.cfg, ctx.run_dir, done.results, done.target
    throttled = ctx.dispatcher
    tok = done.tokenizer

    def count_tokens(text: str) -> int | None:
        # None without a tokenizer (an API model): reasoning is then counted from the API's figures.
        return len(tok.encode(text, add_special_tokens=False)) if tok is not None else None

    meters = [m for r in results for m in r.meter]
    intervals = [Interval(m.task, m.sent_at, m.answered_at, m.prompt_tokens + m.completion_tokens) for m in meters]
    shares = task_shares(intervals)
    live = [i for i, m in zip(intervals, meters) if not m.from_cache]
    for task in cfg.suite.tasks:
        rows: list[SampleRecord] = []
        requests: list[RequestRecord] = []
        mine = [r for r in results if r.task == task]
        meta: dict = {}
        for r in sorted(mine, key=lambda r: r.repeat):
            meta = r.result["configs"][task].get("metadata") or {}
            rows += to_records(
                model,
                task,
                r.result["samples"][task],
                r.meter,
                count_tokens,
                repeat=r.repeat,
                cluster_field=meta.get("cluster_field"),
                requests_out=requests,
            )
        task_meters = [m for r in mine for m in r.meter]
        n_live = sum(not m.from_cache for m in task_meters)
        records.append_jsonl(run_dir / records.SAMPLES, rows)
        records.append_jsonl(run_dir / records.REQUESTS, requests)
        pooled = shares.get(task, 0.0)
        serving, replays = (timed or {}).get(task, (pooled, 0))
        records.append_jsonl(
            run_dir / records.TASK_RUNS,
            [
                records.TaskRun(
                    model=model.name,
                    role=model.role.value,
                    task=task,
                    n_samples=len(rows),
                    serving_s=serving,
                    started_at=min((m.sent_at for m in task_meters), default=time.time()),
                    chance=meta.get("chance"),
                    requests_live=n_live,
                    requests_cached=len(task_meters) - n_live,
                    pooled_s=pooled if replays else None,
                    timing_replays=replays,
                )
            ],
        )
        records.write_json(
            run_dir / "lm_eval" / f"{model.name}__{task}.json",
            {k: v for k, v in mine[-1].result.items() if k != "samples"},
        )
        acc = sum(r.correct for r in rows) / len(rows)
        log.info(
            "%s %s: accuracy %.3f on %d samples; %.2fs of serving time (%d requests sent, %d from the cache)",
            model.name,
            task,
            acc,
            len(rows),
            serving,
            n_live,
            len(task_meters) - n_live,
        )
    records.append_jsonl(
        run_dir / records.MODEL_RUNS,
        [
            records.ModelRun(
                model=model.name,
                role=model.role.value,
                scheduler=cfg.run.scheduler.value,
                target_in_flight=target,
                target_rule=ctx.target.rule,
                server_kv_cache_tokens=server_kv_tokens,
                passes_at_once=done.workers,
                serving_s=serving_time(intervals),
                utilisation=utilisation(live, target) if live else None,
                harness_s=done.harness_s,
                server_prompt_tokens=server.get("prompt_tokens"),
                server_generation_tokens=server.get("generation_tokens"),
                server_requests=server.get("requests"),
                energy_j=energy_j,
                requests_live=len(live),
                requests_cached=len(meters) - len(live),
                rate_limited=throttled.rate_limited if throttled else 0,
                lowest_in_flight=throttled.limit.lowest if throttled and throttled.limit.cuts else None,
                simulated_time_scale=model.serve.simulate.time_scale if model.serve.simulate.enabled else None,
            )
        ],
    )
    if live:
        log.info(
            "%s: utilisation %.2f of %d in flight over %.1fs of serving time",
            model.name,
            utilisation(live, target),
            target,
            serving_time(live),
        )


def recognize_generations(ctx: ModelRunContext, tokenizer: Any) -> None:
    """Score every model's generations (its own included) under the teacher (``ctx.model``),
    on its endpoint: recognition.jsonl."""
    from bench.evaluation.recognize import score_generations

    teacher, cfg, run_dir = ctx.model, ctx.cfg, ctx.run_dir
    rows = [r for r in records.read_jsonl(run_dir / records.SAMPLES) if r["n_requests"] == 1]
    chat = {m.name for m in cfg.models.values() if m.mode == Mode.chat}
    t0 = time.perf_counter()
    scored, live = score_generations(
        ctx.endpoint, teacher.name, tokenizer, rows, ctx.target.total, cfg.run.request_timeout_s, ctx.cache, chat
    )
    records.append_jsonl(run_dir / records.RECOGNITION, scored)
    log.info(
        "%s: scored %d generations of %d models for teacher recognition in %.1fs (%d requests sent)",
        teacher.name,
        len(scored),
        len({r["model"] for r in rows}),
        time.perf_counter() - t0,
        live,
    )


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
    from bench import report
    from bench.analysis.cost import prices_used
    from bench.data import hub
    from bench.evaluation.cache import model_identity
    from bench.evaluation.evaluate import task_manager
    from bench.reporting.paper import software_versions
    from bench.rundir import manifest

    include_paths = resolve_paths(cfg.suite.include_paths)
    tm = task_manager(include_paths, cfg.suite.tasks)
    notes = leave_out_unavailable(cfg, tm)
    cfg = resolve_model_paths(cfg)  # absolute local model paths: what config.json and the servers get
    # Everything is checked before the zoo is built or any server starts.
    validate(cfg, tm, will_build=set(zoo_models(cfg)) if cfg.run.build_zoo else set())
    status.claim(run_dir)
    if notes:
        records.write_json(run_dir / records.NOTES, notes)
    ensure_zoo(cfg)
    write_simulation_specs(cfg, run_dir, tm)
    resolved = as_plain(OmegaConf.structured(cfg))
    identities = {m.name: model_identity(m, cfg.run.seed) for m in cfg.models.values()}
    versions, prices = software_versions(), prices_used(resolved)
    records.write_json(run_dir / "config.json", resolved)
    records.write_json(run_dir / records.PRICES, prices)
    records.write_json(run_dir / records.VERSIONS, versions)
    sources = hub.sources(cfg, tm)
    manifest.start(run_dir, resolved, identities, include_paths, versions, prices, manifest.hub_revisions(sources))
    startup = time.perf_counter() - _IMPORTED_AT
    log.info(
        "harness ready after %.1fs (imports, config, validation, zoo check, model hashes); "
        "servers start when a model needs one",
        startup,
    )
    status.start(run_dir, harness_startup_s=startup)
    for model in ordered_models(cfg):
        evaluate_model(model, cfg, run_dir, tm, identities[model.name])
    if sources:  # the snapshots the servers and data loaders actually read
        manifest.update(run_dir, hub=manifest.hub_revisions(sources, ask_hub=False))
    summary = report.build(run_dir)  # the report is part of the run: success once it is written
    status.finish(run_dir, "success", finished_at=time.time())
    link_latest(run_dir, Path(cfg.run.results_dir))
    log.info(
        "report: %s\n%s",
        run_dir / "report.md",
        summary[["task", "model", "role", "accuracy", "completion_tokens", "usd"]].to_string(index=False),
    )
    return run_dir


def leave_out_unavailable(cfg: BenchConfig, tm: TaskManager) -> list[str]:
    """``run.unavailable=skip``: drop the API models without keys and the gated tasks without
    access (``bench/serving/availability.py``); ``error``: stop on a gated task that cannot load."""
    from bench.config import Unavailable
    from bench.serving import availability

    if cfg.run.unavailable == Unavailable.skip:
        notes = availability.skip_missing(cfg, tm)
        for note in notes:
            log.warning("%s", note)
        if not cfg.models or not cfg.suite.tasks:
            raise ConfigError("nothing left to run on this machine:\n  - " + "\n  - ".join(notes))
        return notes
    errors = availability.gated_errors(cfg, tm)
    if errors:
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(errors))
    return []


def write_simulation_specs(cfg: BenchConfig, run_dir: Path, tm: TaskManager) -> None:
    """The spec of every model served by the simulated engine (``serve.simulate``)."""
    from bench.serving import simulate_spec

    for model in cfg.models.values():
        if simulate_spec.simulated(model):
            simulate_spec.write(run_dir, model, cfg, tm)
            log.warning(
                "%s: served by a SIMULATED GPU engine (serve.simulate): its answers and times are not measurements",
                model.name,
            )


def remove_if_unused(run_dir: Path, results_dir: Path) -> None:
    """A run refused before it started leaves no folder behind: its folder (holding only
    Hydra's config snapshot and the log) goes, and so do parents it leaves empty."""
    if not run_dir.is_dir() or any(p.name != ".hydra" and p.suffix != ".log" for p in run_dir.iterdir()):
        return
    shutil.rmtree(run_dir, ignore_errors=True)
    root = results_dir.resolve()
    for parent in run_dir.resolve().parents:
        if parent == root or not parent.is_relative_to(root):
            break
        try:
            parent.rmdir()
        except OSError:
            break


def link_latest(run_dir: Path, results_dir: Path) -> None:
    link = results_dir / "latest"
    tmp = results_dir / ".latest.tmp"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(os.path.relpath(run_dir.resolve(), results_dir.resolve()))
    os.replace(tmp, link)


def _sigterm(signum: int, frame: FrameType | None) -> NoReturn:
    raise KeyboardInterrupt(f"signal {signum}")


def _drop_unwritable_log_files() -> None:
    """A log file that can no longer be written (a full disk) is dropped with one line on
    stderr, instead of a ``--- Logging error ---`` traceback for every message after."""
    root = logging.getLogger()
    for handler in root.handlers:
        if isinstance(handler, logging.FileHandler):

            def failed(record: logging.LogRecord, handler: logging.FileHandler = handler) -> None:
                root.removeHandler(handler)
                print(
                    f"bench: stopped writing the log file {handler.baseFilename}: {sys.exc_info()[1]}", file=sys.stderr
                )

            handler.handleError = failed  # type: ignore[method-assign]  # this handler's own, on purpose


def failure_message(e: BaseException, cache_dir: str) -> str:
    if isinstance(e, records.NoSpace):
        return str(e)
    if records.is_no_space(e):
        return (
            f"no space left to write {getattr(e, 'filename', None) or 'a file of the run'} ({e}); free some "
            f"space and rerun the same command to resume"
        )
    return f"{e}; answers so far are in the response cache ({cache_dir}), rerun the same command to resume"


_started = False
"""Set once Hydra has composed a config and handed it over (see ``main``)."""


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def run_composed(dcfg: DictConfig) -> None:
    global _started
    _started = True
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    cfg = to_config(dcfg)  # its dataclass, narrowed to run.only
    signal.signal(signal.SIGTERM, _sigterm)
    _drop_unwritable_log_files()
    quiet_lm_eval()
    try:
        execute(cfg, run_dir)
    except ConfigError as e:
        log.error("%s", e)
        remove_if_unused(run_dir, Path(cfg.run.results_dir))
        status.end(run_dir, "error", error=str(e))
        sys.exit(2)
    except KeyboardInterrupt:
        log.error(
            "interrupted: servers stopped; answers so far are in the response cache (%s), "
            "rerun the same command to resume",
            cfg.run.cache_dir,
        )
        status.end(run_dir, "cancelled")
        sys.exit(130)
    except BaseException as e:
        log.error("run failed: %s", failure_message(e, cfg.run.cache_dir))
        status.end(run_dir, "error", error=repr(e))
        sys.exit(1)


def main() -> None:
    """``bench run``: Hydra composes the config and calls :func:`run_composed`. A config Hydra
    cannot compose (an unknown key or group option, a bad override or interpolation) exits 2,
    like one refused by validation; Hydra itself would exit 1, the code of a failed run."""
    try:
        run_composed()
    except SystemExit as e:
        if e.code == 1 and not _started:
            cause = e.__context__
            if cause is not None and records.is_no_space(cause):  # Hydra could not write the run folder's .hydra/
                raise SystemExit(f"bench run: {failure_message(cause, '')}") from None
            raise SystemExit(2) from None
        raise
    except Exception as e:  # noqa: BLE001 - one Hydra could not format (hydra.run.dir's resolvers)
        if _started:
            raise
        print(f"bench run: invalid configuration: {' '.join(str(e).split())}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
