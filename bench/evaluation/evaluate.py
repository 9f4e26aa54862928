"""Run one lm-eval task against one endpoint's client (``bench.evaluation.client``) and return lm-eval's
result, its samples logged; ``bench.evaluation.samples`` joins them with the client's metered requests.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.config import Mode, ModelConfig, SuiteConfig
from bench.evaluation.repeat import evaluating

if TYPE_CHECKING:
    from bench.evaluation.client import _Metered


def request_kinds(task_manager, tasks: list[str]) -> tuple[str, ...]:
    """The kinds of request a suite's tasks send: ``generate`` and/or ``loglikelihood``."""
    kinds = set()
    for task in tasks:
        entry = task_manager.task_index.get(task)
        output = (entry.cfg or {}).get("output_type", "generate_until") if entry else "generate_until"
        kinds.add("generate" if output == "generate_until" else "loglikelihood")
    return tuple(sorted(kinds))


def gen_overrides(model: ModelConfig, suite: SuiteConfig) -> dict[str, Any]:
    """Decoding settings that override the tasks' own: the suite's first, then the model's."""
    out: dict[str, Any] = {}
    for key in ("temperature", "top_p", "max_gen_toks"):
        value = getattr(suite, key)
        if value is None:
            value = getattr(model.generation, key)
        if value is not None:
            out[key] = value
    if out.get("temperature", 0) > 0:
        out["do_sample"] = True
    return out


def _lighten_lm_eval() -> None:
    """Take two costs off lm-eval's per-call path (measured by ``make perf``):

    - ``simple_evaluate`` collects torch's environment report (pip and nvidia-smi
      subprocesses, ~0.5 s) for every call; the run's manifest already records the
      environment once;
    - every document renders its prompt and target through a Jinja template compiled anew
      each time (~1 ms each, thousands per task); compiled templates are cached instead
      (same source string, same template: rendering is unchanged).
    """
    import functools

    import lm_eval.evaluator
    import lm_eval.utils

    if getattr(lm_eval.utils.env, "_bench_cached", False):
        return
    lm_eval.evaluator.add_env_info = lambda results: None
    lm_eval.utils.env.from_string = functools.lru_cache(maxsize=4096)(lm_eval.utils.env.from_string)
    lm_eval.utils.env._bench_cached = True


def run_task(lm: _Metered, task: str, task_manager, suite: SuiteConfig, model: ModelConfig, repeat: int = 0) -> dict:
    """Evaluate one task once (one of the suite's ``repeats``); lm-eval's result dict with
    ``samples``. Repeat r samples with seed ``suite.seed + r``, so the k responses to an item
    differ and each is reproducible."""
    _lighten_lm_eval()
    lm.new_pass(task)
    lm._seed = suite.seed + repeat
    lm.progress_label = f"{model.name} | {task}" + (
        f" | repeat {repeat + 1}/{suite.repeats}" if suite.repeats > 1 else ""
    )
    with evaluating(suite.seed, repeat):  # task loaders that vary by repeat read it (GPQA)
        return _simple_evaluate(lm, task, task_manager, suite, model, gen_overrides(model, suite))


def _simple_evaluate(lm, task, task_manager, suite, model, overrides) -> dict:
    import lm_eval

    return lm_eval.simple_evaluate(
        model=lm,
        tasks=[task],
        task_manager=task_manager,
        num_fewshot=suite.num_fewshot,
        limit=suite.limit,
        log_samples=True,
        use_cache=None,
        cache_requests=False,
        gen_kwargs=overrides or None,
        apply_chat_template=model.mode == Mode.chat,
        random_seed=suite.seed,
        numpy_random_seed=suite.seed,
        torch_random_seed=suite.seed,
        fewshot_random_seed=suite.seed,
        bootstrap_iters=0,
    )


def task_manager(include_paths: list[Path], tasks: list[str]):
    """lm-eval's task index: the suite's own folders, plus lm-eval's registry only when needed.

    Indexing the whole registry (~15k names) costs ~8 s; a suite of bundled tasks skips it.
    """
    from lm_eval.tasks import TaskManager

    from bench.data.hub import use_cached_snapshots

    paths = [str(p) for p in include_paths if p.is_dir()]
    tm = None
    if paths:
        local = TaskManager(include_path=paths, include_defaults=False)
        if set(tasks) <= set(local.all_tasks):
            tm = local
    tm = tm or TaskManager(include_path=paths or None)
    use_cached_snapshots(tm, tasks)  # offline: hub data sets from the Hub cache's snapshots
    return tm
