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
import json
import logging
import os
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lm_eval.api.registry import register_model
from lm_eval.models.openai_completions import LocalChatCompletion, LocalCompletionsAPI, OpenAIChatCompletion

from bench import payload as payload_rules
from bench.cache import ResponseCache
from bench.config import Mode, ModelConfig, SourceKind, SuiteConfig
from bench.dispatch import Dispatcher, Reply, RequestFailed
from bench.records import RequestRecord, SampleRecord
from bench.repeat import evaluating
from bench.usage import read_usage, reasoning_text, split_by_characters

if TYPE_CHECKING:
    from bench.payload import PayloadRules

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RequestMeter:
    """What one HTTP request cost, as the server counted it, and when it was in flight."""

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
    from_cache: bool = False
    sent_at: float = 0.0
    """Wall-clock time (epoch seconds) the request went out (in this run, or in the earlier run
    whose answer the response cache holds)."""
    answered_at: float = 0.0
    task: str = ""
    reasoning_tokens: int | None = None
    """The vendor's count of reasoning tokens (``completion_tokens_details``); None without one."""
    reasoning_text: str | None = None
    """Reasoning returned apart from the answer (DeepSeek's ``reasoning_content``)."""


WARMUP_TEXT = "warm up: {i}+{i}="
"""Lower-case letters, digits and signs: ordinary tokens for any tokenizer, the tiny zoo's too."""


class _Metered:
    """Mixin over lm-eval's TemplateAPI models: same payloads and parsing; metered, cached,
    sent through the endpoint's shared ``Dispatcher``, and able to have its server started at
    the first request the cache cannot answer."""

    # Supplied by the lm-eval TemplateAPI class this is mixed into (lm-eval is untyped).
    model: str
    base_url: str
    timeout: int
    _concurrent: int
    _seed: int
    payload_rules: PayloadRules
    """Set by make_lm (``bench.payload``); ``payload.ruled`` reads it."""
    if TYPE_CHECKING:
        def _create_payload(self, messages: Any, *, generate: bool = True, gen_kwargs: dict | None = None,
                            seed: int = 1234, eos: str | None = None, **kwargs: Any) -> dict: ...

        def create_message(self, messages: Any, generate: bool = False) -> Any: ...

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.meter: list[RequestMeter] = []
        self.progress_label = str(self.model)
        self.progress = None
        """A shared progress bar (one per model); None: each lm-eval call gets its own."""
        self._bar = None
        self.api_key_env: str | None = None
        self.cache: ResponseCache | None = None
        self.route = "/completions"
        self.dispatcher: Dispatcher | None = None
        self.start_endpoint: Callable[[], str] | None = None
        """Called at the first request the cache cannot answer; returns the base URL ending in
        /v1 once the server is up (and warmed). None: ``base_url`` is already live."""
        self.task = ""
        self.occurrences: Counter = Counter()
        self.capture: list | None = None
        """When a list: every request's (URL, body) is appended (``make perf`` replays them)."""

    def new_pass(self, task: str = "") -> None:
        """Before each lm-eval call: a fresh meter and occurrence count, and the task it runs."""
        self.meter = []
        self.task = task
        self.occurrences = Counter()

    @property
    def api_key(self) -> str:
        """The key in the environment variable the model's config names, and no other: lm-eval's
        own fallback (``OPENAI_API_KEY``, for any endpoint) would send that key to servers it
        was never meant for, over plain HTTP too. No variable named: no key."""
        return os.environ.get(self.api_key_env, "") if self.api_key_env else ""

    @property
    def header(self) -> dict[str, str]:
        """An ``Authorization`` header only when there is a key to send."""
        key = self.api_key
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _with_progress(self, method, requests, unit: str, **kwargs):
        from tqdm import tqdm

        if self.progress is not None:
            self._bar = self.progress
            try:
                return method(requests, **kwargs)
            finally:
                self._bar = None
        # disable=False wins over TQDM_DISABLE, which the runner sets to mute lm-eval's own bars.
        with tqdm(total=len(requests), desc=self.progress_label, unit=unit, disable=False,
                  mininterval=1.0, dynamic_ncols=True) as self._bar:
            try:
                return method(requests, **kwargs)
            finally:
                self._bar = None

    def generate_until(self, requests, disable_tqdm: bool = False):
        # super(): the lm-eval class this is mixed into.
        return self._with_progress(super().generate_until, requests, "item", disable_tqdm=True)  # type: ignore[misc]

    def loglikelihood(self, requests, disable_tqdm: bool = False):
        return self._with_progress(super().loglikelihood, requests, "option", disable_tqdm=True)  # type: ignore[misc]

    def _ensure_endpoint(self) -> None:
        if self.start_endpoint is not None:
            # Blocks this pass (nothing can proceed without the server); the server itself is
            # started on the main thread, which its parent-death signal is tied to.
            base = self.start_endpoint().rstrip("/")
            self.start_endpoint = None
            self.base_url = base + self.route

    def warm_up(self, kinds: tuple[str, ...]) -> float:
        """A burst of ``num_concurrent`` requests of each kind in ``kinds`` (``generate``,
        ``loglikelihood``), built by the same payload code as the tasks' requests; returns the
        seconds taken (not cached, not metered, not billed). A burst, not one request: the first
        batches of each size pay for kernel set-up (oneDNN primitives, the first prompt-logprobs
        pass), which would otherwise land on whichever task comes first (make perf: up to 3x on
        a 1 s task)."""
        from concurrent.futures import ThreadPoolExecutor

        chat = self.route.endswith("chat/completions")
        width = max(1, self._concurrent)

        def payload(kind: str, i: int) -> dict:
            text = WARMUP_TEXT.format(i=i % 100)
            return self._create_payload([{"role": "user", "content": text}] if chat else [text],
                                        generate=kind == "generate", seed=self._seed,
                                        gen_kwargs={"until": ["\n"], "max_gen_toks": 8, "temperature": 0}
                                        if kind == "generate" else None)

        def send(kind: str, i: int) -> None:
            try:
                _post_json(self.base_url, payload(kind, i), self.header, self.timeout)
            except OSError as e:
                raise RequestFailed(f"{self.model}: the warm-up {kind} request failed ({e!r}); the server "
                                    f"log in the run folder's servers/ says why") from e

        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=width) as pool:
            for kind in kinds:
                list(pool.map(lambda i, k=kind: send(k, i), range(width)))
        return time.perf_counter() - t0

    async def get_batched_requests(self, requests: list, cache_keys: list, *, generate: bool = True,
                                   ctxlens: list | None = None, **kwargs) -> list:
        """lm-eval's concurrent path, without its tenacity wrapper: one request per prompt,
        sent through the endpoint's dispatcher (which bounds what is in flight for the whole
        model and retries what is worth retrying)."""
        import asyncio

        ctxlens = ctxlens or [None] * len(requests)
        return await asyncio.gather(*(
            self.amodel_call(None, None, [message], cache_keys=[key], generate=generate,
                             ctxlens=[ctxlen], **kwargs)
            for message, key, ctxlen in zip(requests, cache_keys, ctxlens)))

    async def _send(self, payload: dict) -> Reply:
        import asyncio

        if self.dispatcher is None:
            raise RuntimeError(f"{self.model}: no dispatcher (make_lm sets one)")
        return await asyncio.wrap_future(self.dispatcher.submit(self.base_url, payload, self.header))

    async def amodel_call(self, session, sem, messages, *, generate=True, cache_keys=None,
                          ctxlens=None, gen_kwargs=None, **kwargs):
        payload = self._create_payload(self.create_message(messages), generate=generate,
                                       gen_kwargs=copy.deepcopy(gen_kwargs), seed=self._seed, **kwargs)
        if self.capture is not None:
            self.capture.append((self.base_url, payload))
        key = (self.cache.request_key("gen" if generate else "ll", payload, self.occurrences)
               if self.cache is not None else None)
        hit = self.cache.get(key) if self.cache is not None else None
        if hit is not None:
            outputs = hit["body"]
            sent_at, answered_at = _cached_times(hit)
        else:
            self._ensure_endpoint()
            reply = await self._send(payload)
            outputs, sent_at, answered_at = reply.body, reply.sent_at, reply.answered_at
        choices = sorted(outputs["choices"], key=lambda c: c["index"])
        if generate:
            # A reasoning model cut off at the token limit before it answered sends no answer
            # (content null): that is an empty answer, scored wrong, not a failed request.
            answers = [a if a is not None or c.get("finish_reason") != "length" else ""
                       for a, c in zip(self.parse_generations(outputs=outputs), choices)]
        else:
            answers = self.parse_logprobs(outputs=outputs, tokens=messages, ctxlens=ctxlens)
        if any(a is None for a in answers):
            # Never let a missing answer be scored as a wrong one.
            raise RequestFailed(f"endpoint returned no content for {self.model}: {str(outputs)[:300]}")
        if hit is None and self.cache is not None:
            self.cache.put(key, {"body": outputs, "latency_s": answered_at - sent_at, "sent": sent_at,
                                 "done": answered_at})
        usage = read_usage(outputs)
        timing = outputs.get("metrics") or {}  # only for single-prompt requests
        keys = [request_key(generate, ck) for ck in (cache_keys or [None] * len(choices))]
        share = 1.0 / max(len(choices), 1)  # batched requests: split the usage evenly
        for rkey, choice in zip(keys, choices):
            self.meter.append(RequestMeter(
                key=rkey,
                prompt_tokens=round(usage.prompt_tokens * share),
                completion_tokens=round(usage.completion_tokens * share),
                finish_reason=choice.get("finish_reason"),
                latency_s=answered_at - sent_at,
                cached_prompt_tokens=round(usage.cached_prompt_tokens * share),
                ttft_s=_seconds(timing.get("time_to_first_token_ms")),
                tpot_s=_seconds(timing.get("mean_itl_ms")),
                queue_s=_seconds(timing.get("queue_time_ms")),
                from_cache=hit is not None,
                sent_at=sent_at,
                answered_at=answered_at,
                task=self.task,
                reasoning_tokens=None if usage.reasoning_tokens is None else round(usage.reasoning_tokens * share),
                reasoning_text=reasoning_text(choice) if generate else None,
            ))
        if self._bar is not None:
            self._bar.update(len(choices))
        return answers


def _cached_times(entry: dict) -> tuple[float, float]:
    """(sent, answered) wall-clock times of a cached answer; entries written before these were
    stored hold the pass's start ``s``, the offset ``t`` of the answer and its latency."""
    if "done" in entry:
        return entry["sent"], entry["done"]
    done = entry.get("s", 0.0) + entry.get("t", 0.0)
    return done - entry.get("latency_s", 0.0), done


def _post_json(url: str, payload: dict, headers: dict[str, str], timeout: float) -> dict:
    import urllib.request

    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json", **headers})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def _seconds(ms: float | None) -> float | None:
    return None if ms is None else ms / 1000.0


def request_key(generate: bool, cache_key: Any) -> tuple:
    """Identity of a request as lm-eval logs it in a sample's ``arguments``."""
    if generate:
        return ("gen", cache_key[0])
    return ("ll", cache_key[0], cache_key[1])


# Bodies: lm-eval's, adapted by the model's payload rules (bench.payload; set in make_lm).
@register_model("metered-completions")
class MeteredCompletions(_Metered, LocalCompletionsAPI):
    _create_payload = payload_rules.ruled(LocalCompletionsAPI._create_payload)


@register_model("metered-chat-completions")
class MeteredChatCompletions(_Metered, LocalChatCompletion):
    _create_payload = payload_rules.ruled(LocalChatCompletion._create_payload)


@register_model("metered-openai-chat-completions")
class MeteredOpenAIChatCompletions(_Metered, OpenAIChatCompletion):
    # Not OpenAIChatCompletion's body, which guesses from the model id whether it reasons.
    _create_payload = payload_rules.ruled(LocalChatCompletion._create_payload)


CLIENTS = {"local-completions": MeteredCompletions, "local-chat-completions": MeteredChatCompletions,
           "openai-chat-completions": MeteredOpenAIChatCompletions}


def make_lm(model: ModelConfig, base_url: str | None, suite: SuiteConfig, num_concurrent: int,
            timeout_s: float, dispatcher: Dispatcher | None, cache: ResponseCache | None = None,
            start_endpoint=None) -> _Metered:
    """The lm-eval model object for one endpoint (``base_url`` ends in ``/v1``).

    Its requests go through ``dispatcher`` (shared by every client of the endpoint). With
    ``base_url`` None, ``start_endpoint()`` is called at the first request that ``cache``
    cannot answer (a fully cached rerun starts no server).
    """
    chat = model.mode == Mode.chat
    api = model.source_kind == SourceKind.api
    cls = CLIENTS[model.api.client or ("local-chat-completions" if chat else "local-completions")]
    route = "/chat/completions" if chat else "/completions"
    # An API model is addressed by the vendor's model id; without a tokenizer of its own it
    # can only answer generation tasks (log-likelihoods need one to split the context).
    tokenizer = model.tokenizer if api else (model.tokenizer or model.source)
    lm = cls(
        model=model.source if api else model.name,
        base_url=(base_url or "http://server.not.started/v1").rstrip("/") + route,
        tokenizer=tokenizer,
        tokenizer_backend="huggingface" if tokenizer else None,
        tokenized_requests=False,
        num_concurrent=max(2, num_concurrent),  # the metered path is lm-eval's concurrent one
        max_retries=1,  # lm-eval retries every error; the dispatcher retries transient ones only
        max_length=model.serve.max_model_len,
        timeout=int(timeout_s),
        seed=suite.seed,
        # A hub model's tokenizer at the revision its server loads (vLLM's tokenizer revision
        # follows --revision).
        revision=(model.serve.revision or "main") if model.source_kind == SourceKind.hub else "main",
    )
    lm.api_key_env = model.api.api_key_env if api else None
    lm.payload_rules = payload_rules.rules_for(model)
    lm.route = route
    lm.cache = cache
    lm.dispatcher = dispatcher
    if base_url is None:
        lm.start_endpoint = start_endpoint
    return lm


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


def run_task(lm: _Metered, task: str, task_manager, suite: SuiteConfig, model: ModelConfig,
             repeat: int = 0) -> dict:
    """Evaluate one task once (one of the suite's ``repeats``); lm-eval's result dict with
    ``samples``. Repeat r samples with seed ``suite.seed + r``, so the k responses to an item
    differ and each is reproducible."""
    _lighten_lm_eval()
    lm.new_pass(task)
    lm._seed = suite.seed + repeat
    lm.progress_label = f"{model.name} | {task}" + (f" | repeat {repeat + 1}/{suite.repeats}" if suite.repeats > 1 else "")
    with evaluating(suite.seed, repeat):  # task loaders that vary by repeat read it (GPQA)
        return _simple_evaluate(lm, task, task_manager, suite, model, gen_overrides(model, suite))


def _simple_evaluate(lm, task, task_manager, suite, model, overrides) -> dict:
    import lm_eval

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
               count_tokens, repeat: int = 0, cluster_field: str | None = None,
               requests_out: list | None = None) -> list[SampleRecord]:
    """Join lm-eval's logged samples with the metered requests that produced them (and, into
    ``requests_out``, one ``RequestRecord`` per request)."""
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
        if requests_out is not None:
            requests_out += [RequestRecord(
                model=model.name, task=task, doc_id=int(s["doc_id"]), repeat=repeat, kind=r.key[0],
                sent_at=r.sent_at, answered_at=r.answered_at, prompt_tokens=r.prompt_tokens,
                completion_tokens=r.completion_tokens, from_cache=r.from_cache) for r in reqs]
        if generate:
            response = s["resps"][0][0]
            extracted = s["filtered_resps"][0]
        else:
            lls = [r[0][0] for r in s["resps"]]
            best = max(range(len(lls)), key=lls.__getitem__)
            response = s["arguments"][best][1]
            extracted = str(best)
        reasoning = reasoning_of(model, response, reqs, count_tokens) if generate else NO_REASONING
        metric = primary_metric(s)
        records.append(SampleRecord(
            model=model.name, role=model.role.value, task=task, doc_id=int(s["doc_id"]),
            prompt=prompt_text(s["arguments"][0][0]), response=response, extracted=str(extracted),
            target=str(s["target"]), metric=metric, correct=float(s[metric]),
            prompt_tokens=sum(r.prompt_tokens for r in reqs),
            cached_prompt_tokens=sum(r.cached_prompt_tokens for r in reqs),
            completion_tokens=sum(r.completion_tokens for r in reqs),
            reasoning_tokens=reasoning.tokens,
            reasoning_closed=reasoning.closed,
            reasoning=reasoning.text,
            finish_reason=",".join(sorted({r.finish_reason or "?" for r in reqs})),
            latency_s=max(r.latency_s for r in reqs) if generate else sum(r.latency_s for r in reqs),
            n_requests=len(reqs),
            ttft_s=_first(r.ttft_s for r in reqs),
            tpot_s=_first(r.tpot_s for r in reqs),
            queue_s=_first(r.queue_s for r in reqs),
            repeat=repeat,
            cluster=_cluster(s, cluster_field),
            from_cache=all(r.from_cache for r in reqs),
            **_wall_span(reqs),
        ))
    leftover = sum(len(q) for q in pending.values())
    if leftover:
        raise RuntimeError(f"{model.name}/{task}: {leftover} metered requests matched no sample")
    return records


@dataclass(frozen=True)
class Reasoning:
    """How long a response reasoned, whether it finished reasoning, and the reasoning text the
    vendor returned apart from the answer (None where it is part of the response)."""

    tokens: int
    closed: bool | None
    text: str | None = None


NO_REASONING = Reasoning(0, None)


def reasoning_of(model: ModelConfig, response: str, reqs: list[RequestMeter], count_tokens) -> Reasoning:
    """An API reasoning model's reasoning as its vendor reports it (a count of reasoning tokens,
    or the reasoning text beside the answer), else the span inside the model's delimiters.

    ``count_tokens(text)`` is the model's tokenizer (None without one). A vendor's count is
    taken as is; reasoning text without a count is counted with the tokenizer, or, without
    one, given its share of the completion tokens by characters. A reply that reasoned and
    then ran out of tokens before answering counts as unclosed."""
    reported = sum(r.reasoning_tokens or 0 for r in reqs)
    text = next((r.reasoning_text for r in reqs if r.reasoning_text), None)
    if reported or text:
        if not reported:
            assert text is not None  # reported or text
            counted = count_tokens(text)
            reported = counted if counted is not None else split_by_characters(
                sum(r.completion_tokens for r in reqs), text, response)
        cut = any(r.finish_reason == "length" for r in reqs) and not response.strip()
        return Reasoning(reported, not cut, text)
    thinking = reasoning_span(response, model.think_start, model.think_end)
    if not thinking:
        return NO_REASONING
    return Reasoning(count_tokens(thinking[0]) or 0, thinking[1])


def prompt_text(context: Any) -> str:
    """The prompt as lm-eval logged it: the text for completions; for chat, the JSON list of
    messages (lm-eval's ``JsonChatStr``, which can reach the samples as a bare 1-tuple)."""
    if hasattr(context, "prompt"):
        return str(context.prompt)
    if isinstance(context, (tuple, list)) and len(context) == 1 and isinstance(context[0], str):
        return context[0]
    return str(context)


def _cluster(sample: dict, field: str | None) -> str | None:
    if not field:
        return None
    doc = sample.get("doc") or {}
    if field not in doc:
        raise RuntimeError(f"task metadata names cluster field {field!r}, but item {sample['doc_id']} "
                           f"has no such field (fields: {', '.join(sorted(doc))})")
    return str(doc[field])


def _wall_span(reqs: list[RequestMeter]) -> dict[str, float | None]:
    """``sent_at``/``done_at`` of a sample: its first request sent and its last answer received
    (epoch seconds); None when a meter carries no times (0: not measured) or they do not form a
    forward span."""
    sent, done = [r.sent_at for r in reqs], [r.answered_at for r in reqs]
    if not reqs or min(sent) <= 0 or max(done) < min(sent):
        return {"sent_at": None, "done_at": None}
    return {"sent_at": float(min(sent)), "done_at": float(max(done))}


def _first(values) -> float | None:
    """The generation's own figure (a multiple-choice item's options are timed separately)."""
    return next((v for v in values if v is not None), None)


def reasoning_span(text: str, start: str | None, end: str | None) -> tuple[str, bool] | None:
    """The reasoning part of a generation (delimiters included) and whether it was closed."""
    if not start or not end:
        return None
    if start not in text:
        # Chat templates of R1-style models open the reasoning inside the prompt, so the reply
        # holds only the closing delimiter: the reasoning runs from the reply's start to it.
        stop = text.find(end)
        return (text[:stop + len(end)], True) if stop >= 0 else None
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

    from bench.hub import use_cached_snapshots

    paths = [str(p) for p in include_paths if p.is_dir()]
    tm = None
    if paths:
        local = TaskManager(include_path=paths, include_defaults=False)
        if set(tasks) <= set(local.all_tasks):
            tm = local
    tm = tm or TaskManager(include_path=paths or None)
    use_cached_snapshots(tm, tasks)  # offline: hub data sets from the Hub cache's snapshots
    return tm
