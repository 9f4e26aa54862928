"""Run one lm-eval task against one OpenAI-compatible endpoint and return per-sample records.

lm-eval records neither token counts nor latency, so the endpoint is called through
``metered-completions``, ``metered-chat-completions`` or ``metered-openai-chat-completions``
(see ``CLIENTS``): lm-eval's own API models with
the request coroutine replaced by one that also keeps, per HTTP request, the server's
``usage`` counts, the finish reason and the latency (timed after the concurrency limit
admits the request, so time spent queueing in the client is not counted).
"""

from __future__ import annotations

import copy
import logging
import os
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lm_eval.api.registry import register_model
from lm_eval.models.openai_completions import LocalChatCompletion, LocalCompletionsAPI, OpenAIChatCompletion

from bench.config import Mode, ModelConfig, SourceKind, SuiteConfig
from bench.records import SampleRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RequestMeter:
    """What one HTTP request cost, as the server counted it."""

    key: tuple
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None
    latency_s: float
    cached_prompt_tokens: int = 0
    ttft_s: float | None = None
    """Server-measured: scheduled to first output token (vLLM --enable-per-request-metrics)."""
    tpot_s: float | None = None
    """Server-measured mean time between output tokens (None with fewer than two tokens)."""
    queue_s: float | None = None


class _Metered:
    """Mixin over lm-eval's TemplateAPI models: same payloads, parsing and retries."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.meter: list[RequestMeter] = []
        self.progress_label = str(self.model)
        self._bar = None
        self.api_key_env: str | None = None

    @property
    def api_key(self) -> str:
        """The key from the environment variable the model's config names (never from config)."""
        return os.environ.get(self.api_key_env, "") if self.api_key_env else super().api_key

    def _with_progress(self, method, requests, unit: str, **kwargs):
        from tqdm import tqdm

        # disable=False wins over TQDM_DISABLE, which the runner sets to mute lm-eval's own bars.
        with tqdm(total=len(requests), desc=self.progress_label, unit=unit, disable=False,
                  mininterval=1.0, dynamic_ncols=True) as self._bar:
            try:
                return method(requests, **kwargs)
            finally:
                self._bar = None

    def generate_until(self, requests, disable_tqdm: bool = False):
        return self._with_progress(super().generate_until, requests, "item", disable_tqdm=True)

    def loglikelihood(self, requests, disable_tqdm: bool = False):
        return self._with_progress(super().loglikelihood, requests, "option", disable_tqdm=True)

    async def amodel_call(self, session, sem, messages, *, generate=True, cache_keys=None,
                          ctxlens=None, gen_kwargs=None, **kwargs):
        payload = self._create_payload(self.create_message(messages), generate=generate,
                                       gen_kwargs=copy.deepcopy(gen_kwargs), seed=self._seed, **kwargs)
        async with sem:
            t0 = time.perf_counter()
            async with session.post(self.base_url, json=payload, headers=self.header) as response:
                if not response.ok:
                    log.warning("request failed (%s): %s", response.status, (await response.text())[:500])
                response.raise_for_status()
                outputs = await response.json()
            latency = time.perf_counter() - t0
        if generate:
            answers = self.parse_generations(outputs=outputs)
        else:
            answers = self.parse_logprobs(outputs=outputs, tokens=messages, ctxlens=ctxlens)
        if any(a is None for a in answers):
            # Never let a missing answer be scored as a wrong one.
            raise RuntimeError(f"endpoint returned no content for {self.model}: {str(outputs)[:300]}")
        usage = outputs.get("usage") or {}
        cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
        timing = outputs.get("metrics") or {}  # only for single-prompt requests
        choices = sorted(outputs["choices"], key=lambda c: c["index"])
        keys = [request_key(generate, ck) for ck in (cache_keys or [None] * len(choices))]
        share = 1.0 / max(len(choices), 1)  # batched requests: split the usage evenly
        for key, choice in zip(keys, choices):
            self.meter.append(RequestMeter(
                key=key,
                prompt_tokens=round(usage.get("prompt_tokens", 0) * share),
                completion_tokens=round(usage.get("completion_tokens", 0) * share),
                finish_reason=choice.get("finish_reason"),
                latency_s=latency,
                cached_prompt_tokens=round(cached * share),
                ttft_s=_seconds(timing.get("time_to_first_token_ms")),
                tpot_s=_seconds(timing.get("mean_itl_ms")),
                queue_s=_seconds(timing.get("queue_time_ms")),
            ))
        if self._bar is not None:
            self._bar.update(len(choices))
        return answers


def _seconds(ms: float | None) -> float | None:
    return None if ms is None else ms / 1000.0


def request_key(generate: bool, cache_key: Any) -> tuple:
    """Identity of a request as lm-eval logs it in a sample's ``arguments``."""
    if generate:
        return ("gen", cache_key[0])
    return ("ll", cache_key[0], cache_key[1])


@register_model("metered-completions")
class MeteredCompletions(_Metered, LocalCompletionsAPI):
    pass


@register_model("metered-chat-completions")
class MeteredChatCompletions(_Metered, LocalChatCompletion):
    pass


@register_model("metered-openai-chat-completions")
class MeteredOpenAIChatCompletions(_Metered, OpenAIChatCompletion):
    pass


CLIENTS = {"local-completions": MeteredCompletions, "local-chat-completions": MeteredChatCompletions,
           "openai-chat-completions": MeteredOpenAIChatCompletions}


def make_lm(model: ModelConfig, base_url: str, suite: SuiteConfig, num_concurrent: int,
            max_retries: int, timeout_s: float) -> _Metered:
    """The lm-eval model object for one endpoint (``base_url`` ends in ``/v1``)."""
    chat = model.mode == Mode.chat
    api = model.source_kind == SourceKind.api
    cls = CLIENTS[model.api.client or ("local-chat-completions" if chat else "local-completions")]
    route = "/chat/completions" if chat else "/completions"
    # An API model is addressed by the vendor's model id; without a tokenizer of its own it
    # can only answer generation tasks (log-likelihoods need one to split the context).
    tokenizer = model.tokenizer if api else (model.tokenizer or model.source)
    lm = cls(
        model=model.source if api else model.name,
        base_url=base_url.rstrip("/") + route,
        tokenizer=tokenizer,
        tokenizer_backend="huggingface" if tokenizer else None,
        tokenized_requests=False,
        num_concurrent=max(2, num_concurrent),  # the metered path is lm-eval's concurrent one
        max_retries=max_retries,
        max_length=model.serve.max_model_len,
        timeout=int(timeout_s),
        seed=suite.seed,
    )
    lm.api_key_env = model.api.api_key_env if api else None
    return lm


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


def run_task(lm: _Metered, task: str, task_manager, suite: SuiteConfig, model: ModelConfig) -> dict:
    """Evaluate one task; returns lm-eval's result dict (with ``samples``)."""
    import lm_eval

    lm.meter.clear()
    lm.progress_label = f"{model.name} | {task}"
    overrides = gen_overrides(model, suite)
    return lm_eval.simple_evaluate(
        model=lm, tasks=[task], task_manager=task_manager, num_fewshot=suite.num_fewshot,
        limit=suite.limit, log_samples=True, use_cache=None, cache_requests=False,
        gen_kwargs=overrides or None, apply_chat_template=model.mode == Mode.chat,
        random_seed=suite.seed, numpy_random_seed=suite.seed, torch_random_seed=suite.seed,
        fewshot_random_seed=suite.seed, bootstrap_iters=0,
    )


def primary_metric(sample: dict) -> str:
    return sample["metrics"][0]


def to_records(model: ModelConfig, task: str, samples: list[dict], meter: list[RequestMeter],
               count_tokens) -> list[SampleRecord]:
    """Join lm-eval's logged samples with the metered requests that produced them."""
    pending: dict[tuple, deque[RequestMeter]] = defaultdict(deque)
    for m in meter:
        pending[m.key].append(m)
    records = []
    for s in samples:
        generate = isinstance(s["arguments"][0][1], dict)
        reqs = []
        for arg in s["arguments"]:
            key = ("gen", arg[0]) if generate else ("ll", arg[0], arg[1])
            if not pending[key]:
                raise RuntimeError(f"{model.name}/{task} doc {s['doc_id']}: no metered request for {key!r}")
            reqs.append(pending[key].popleft())
        if generate:
            response = s["resps"][0][0]
            extracted = s["filtered_resps"][0]
        else:
            lls = [r[0][0] for r in s["resps"]]
            best = max(range(len(lls)), key=lls.__getitem__)
            response = s["arguments"][best][1]
            extracted = str(best)
        thinking = reasoning_span(response, model.think_start, model.think_end) if generate else None
        metric = primary_metric(s)
        records.append(SampleRecord(
            model=model.name, role=model.role.value, task=task, doc_id=int(s["doc_id"]),
            prompt=str(getattr(s["arguments"][0][0], "prompt", s["arguments"][0][0])), response=response, extracted=str(extracted),
            target=str(s["target"]), metric=metric, correct=float(s[metric]),
            prompt_tokens=sum(r.prompt_tokens for r in reqs),
            cached_prompt_tokens=sum(r.cached_prompt_tokens for r in reqs),
            completion_tokens=sum(r.completion_tokens for r in reqs),
            reasoning_tokens=count_tokens(thinking[0]) if thinking else 0,
            reasoning_closed=thinking[1] if thinking else None,
            finish_reason=",".join(sorted({r.finish_reason or "?" for r in reqs})),
            latency_s=max(r.latency_s for r in reqs) if generate else sum(r.latency_s for r in reqs),
            n_requests=len(reqs),
            ttft_s=_first(r.ttft_s for r in reqs),
            tpot_s=_first(r.tpot_s for r in reqs),
            queue_s=_first(r.queue_s for r in reqs),
        ))
    leftover = sum(len(q) for q in pending.values())
    if leftover:
        raise RuntimeError(f"{model.name}/{task}: {leftover} metered requests matched no sample")
    return records


def _first(values) -> float | None:
    """The generation's own figure (a multiple-choice item's options are timed separately)."""
    return next((v for v in values if v is not None), None)


def reasoning_span(text: str, start: str | None, end: str | None) -> tuple[str, bool] | None:
    """The reasoning part of a generation (delimiters included) and whether it was closed."""
    if not start or not end or start not in text:
        return None
    begin = text.index(start)
    stop = text.find(end, begin)
    if stop < 0:
        return text[begin:], False
    return text[begin:stop + len(end)], True


def task_manager(include_paths: list[Path], tasks: list[str]):
    """lm-eval's task index: the suite's own folders, plus lm-eval's registry only when needed.

    Indexing the whole registry (~15k names) costs ~8 s; a suite of bundled tasks skips it.
    """
    from lm_eval.tasks import TaskManager

    paths = [str(p) for p in include_paths if p.is_dir()]
    if paths:
        local = TaskManager(include_path=paths, include_defaults=False)
        if set(tasks) <= set(local.all_tasks):
            return local
    return TaskManager(include_path=paths or None)
