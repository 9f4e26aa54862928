"""The model clients: lm-eval's API models, metered, cached and sent through a ``Dispatcher``.

lm-eval records neither token counts nor latency, so an endpoint is called through one of the
clients here (registered by kind, the ``api.client`` a config names; ``bench.evaluation.client_kinds``):
lm-eval's own API models with the request coroutine replaced by one that also keeps, per HTTP
request, the server's token counts, the finish reason and the latency (timed after the
concurrency limit admits the request, so time spent queueing in the client is not counted).

Adding a vendor (say Anthropic's native Messages API) is one class here, plus its name in
``bench.evaluation.client_kinds.KINDS`` (so configs may name it without importing lm-eval). The class:

- is decorated ``@client("kind")``;
- derives from ``_Metered`` first, then the lm-eval ``TemplateAPI`` model that builds the
  vendor's request body and reads its answer text (``_create_payload``, ``parse_generations``,
  ``parse_logprobs``), its ``_create_payload`` wrapped in ``payload_rules.ruled``;
- sets ``route``, the path after ``/v1`` it posts to (``"/messages"``);
- defines ``parse_answer(body, *, generate, sent_at, answered_at) -> list[Answer]``: one
  ``Answer`` per answer lm-eval parses from ``body``, in the same order (its token counts,
  finish reason, server timings and reasoning text; ``OpenAIShaped`` reads OpenAI's shape);
- overrides ``header`` where the vendor authenticates otherwise than ``Authorization: Bearer``.
"""

from __future__ import annotations

import copy
import json
import os
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from lm_eval.api.registry import register_model
from lm_eval.models.openai_completions import LocalChatCompletion, LocalCompletionsAPI, OpenAIChatCompletion

from bench.config import Mode, ModelConfig, SourceKind, SuiteConfig
from bench.evaluation import payload as payload_rules
from bench.evaluation.answer import Answer, RequestMeter
from bench.evaluation.cache import CachedReply, ResponseCache
from bench.evaluation.client_kinds import KINDS, client, client_class, registered
from bench.evaluation.usage import read_usage, reasoning_text
from bench.serving.dispatch import Dispatcher, Reply, RequestFailed

if TYPE_CHECKING:
    from bench.evaluation.payload import PayloadRules

WARMUP_TEXT = "warm up: {i}+{i}="
"""Lower-case letters, digits and signs: ordinary tokens for any tokenizer, the tiny zoo's too."""


class _Metered:
    """Mixin over lm-eval's TemplateAPI models: same payloads and parsing; metered, cached,
    sent through the endpoint's shared ``Dispatcher``, and able to have its server started at
    the first request the cache cannot answer."""

    kind: ClassVar[str]
    """The name it is registered under (``bench.evaluation.client_kinds.KINDS``; set by ``@client``)."""
    route: ClassVar[str]
    """The path after ``/v1`` its requests go to."""

    # Supplied by the lm-eval TemplateAPI class this is mixed into (lm-eval is untyped).
    model: str
    base_url: str
    timeout: int
    _concurrent: int
    _seed: int
    payload_rules: PayloadRules
    """Set by make_lm (``bench.evaluation.payload``); ``payload.ruled`` reads it."""
    if TYPE_CHECKING:

        def _create_payload(
            self,
            messages: Any,
            *,
            generate: bool = True,
            gen_kwargs: dict | None = None,
            seed: int = 1234,
            eos: str | None = None,
            **kwargs: Any,
        ) -> dict: ...

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
        self.dispatcher: Dispatcher | None = None
        self.start_server: Callable[[], str] | None = None
        """Called at the first request the cache cannot answer; returns the base URL ending in
        /v1 once the server is up (and warmed). None: ``base_url`` is already live."""
        self.task = ""
        self.occurrences: Counter = Counter()
        self.capture: list | None = None
        """When a list: every request's (URL, body) is appended (``make perf`` replays them)."""

    def parse_answer(self, body: dict, *, generate: bool, sent_at: float, answered_at: float) -> list[Answer]:
        """One ``Answer`` per answer in the vendor's response ``body``, in lm-eval's order."""
        raise NotImplementedError(
            f"{type(self).__name__} does not read its vendor's responses (define parse_answer; see bench/evaluation/client.py)"
        )

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
        with tqdm(
            total=len(requests), desc=self.progress_label, unit=unit, disable=False, mininterval=1.0, dynamic_ncols=True
        ) as self._bar:
            try:
                return method(requests, **kwargs)
            finally:
                self._bar = None

    def generate_until(self, requests, disable_tqdm: bool = False):
        # super(): the lm-eval class this is mixed into.
        return self._with_progress(super().generate_until, requests, "item", disable_tqdm=True)  # type: ignore[misc]

    def loglikelihood(self, requests, disable_tqdm: bool = False):
        return self._with_progress(super().loglikelihood, requests, "option", disable_tqdm=True)  # type: ignore[misc]

    def _ensure_server(self) -> None:
        if self.start_server is not None:
            # Blocks this pass (nothing can proceed without the server); the server itself is
            # started on the main thread, which its parent-death signal is tied to.
            base = self.start_server().rstrip("/")
            self.start_server = None
            self.base_url = base + self.route

    def warm_up(self, kinds: tuple[str, ...]) -> float:
        """A burst of ``num_concurrent`` requests of each kind in ``kinds`` (``generate``,
        ``loglikelihood``), built by the same payload code as the tasks' requests; returns the
        seconds taken (not cached, not metered, not billed). A burst, not one request: the first
        batches of each size pay for kernel set-up (oneDNN primitives, the first prompt-logprobs
        pass), which would otherwise land on whichever task comes first (make perf: up to 3x on
        a 1 s task)."""
        from concurrent.futures import ThreadPoolExecutor

        chat = KINDS[self.kind].chat
        width = max(1, self._concurrent)

        def payload(kind: str, i: int) -> dict:
            text = WARMUP_TEXT.format(i=i % 100)
            return self._create_payload(
                [{"role": "user", "content": text}] if chat else [text],
                generate=kind == "generate",
                seed=self._seed,
                gen_kwargs={"until": ["\n"], "max_gen_toks": 8, "temperature": 0} if kind == "generate" else None,
            )

        def send(kind: str, i: int) -> None:
            try:
                _post_json(self.base_url, payload(kind, i), self.header, self.timeout)
            except OSError as e:
                raise RequestFailed(
                    f"{self.model}: the warm-up {kind} request failed ({e!r}); the server "
                    f"log in the run folder's servers/ says why"
                ) from e

        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=width) as pool:
            for kind in kinds:
                list(pool.map(lambda i, k=kind: send(k, i), range(width)))
        return time.perf_counter() - t0

    async def get_batched_requests(
        self, requests: list, cache_keys: list, *, generate: bool = True, ctxlens: list | None = None, **kwargs
    ) -> list:
        """lm-eval's concurrent path, without its tenacity wrapper: one request per prompt,
        sent through the endpoint's dispatcher (which bounds what is in flight for the whole
        model and retries what is worth retrying)."""
        import asyncio

        ctxlens = ctxlens or [None] * len(requests)
        return await asyncio.gather(
            *(
                self.amodel_call(None, None, [message], cache_keys=[key], generate=generate, ctxlens=[ctxlen], **kwargs)
                for message, key, ctxlen in zip(requests, cache_keys, ctxlens)
            )
        )

    async def _send(self, payload: dict) -> Reply:
        import asyncio

        if self.dispatcher is None:
            raise RuntimeError(f"{self.model}: no dispatcher (make_lm sets one)")
        return await asyncio.wrap_future(self.dispatcher.submit(self.base_url, payload, self.header))

    async def amodel_call(
        self, session, sem, messages, *, generate=True, cache_keys=None, ctxlens=None, gen_kwargs=None, **kwargs
    ):
        payload = self._create_payload(
            self.create_message(messages),
            generate=generate,
            gen_kwargs=copy.deepcopy(gen_kwargs),
            seed=self._seed,
            **kwargs,
        )
        if self.capture is not None:
            self.capture.append((self.base_url, payload))
        key = (
            self.cache.entry_key("gen" if generate else "ll", payload, self.occurrences)
            if self.cache is not None
            else None
        )
        hit = self.cache.get(key) if self.cache is not None else None
        if hit is not None:
            outputs, sent_at, answered_at = hit.body, hit.sent_at, hit.answered_at
        else:
            self._ensure_server()
            reply = await self._send(payload)
            outputs, sent_at, answered_at = reply.body, reply.sent_at, reply.answered_at
        answers = self.parse_answer(outputs, generate=generate, sent_at=sent_at, answered_at=answered_at)
        if generate:
            # A reasoning model cut off at the token limit before it answered sends no answer
            # (content null): that is an empty answer, scored wrong, not a failed request.
            texts = [
                t if t is not None or a.finish_reason != "length" else ""
                for t, a in zip(self.parse_generations(outputs=outputs), answers)
            ]
        else:
            texts = self.parse_logprobs(outputs=outputs, tokens=messages, ctxlens=ctxlens)
        if any(t is None for t in texts):
            # Never let a missing answer be scored as a wrong one.
            raise RequestFailed(f"endpoint returned no content for {self.model}: {str(outputs)[:300]}")
        if hit is None and self.cache is not None:
            self.cache.put(key, CachedReply(outputs, sent_at, answered_at))
        ids = [lm_eval_request_id(generate, ck) for ck in (cache_keys or [None] * len(answers))]
        self.meter += [
            RequestMeter.of(a, request_id, self.task, from_cache=hit is not None) for request_id, a in zip(ids, answers)
        ]
        if self._bar is not None:
            self._bar.update(len(answers))
        return texts


class OpenAIShaped:
    """Reads OpenAI-shaped responses: ``choices`` (each with its ``index`` and
    ``finish_reason``), one ``usage`` for the request (``bench.evaluation.usage``), and vLLM's per-request
    ``metrics`` where the server sends them."""

    def parse_answer(self, body: dict, *, generate: bool, sent_at: float, answered_at: float) -> list[Answer]:
        """One ``Answer`` per choice, in index order (lm-eval's order of answers)."""
        choices = sorted(body["choices"], key=lambda c: c["index"])
        usage = read_usage(body)
        timing = body.get("metrics") or {}  # only for single-prompt requests
        share = 1.0 / max(len(choices), 1)  # batched requests: split the usage evenly
        return [
            Answer(
                prompt_tokens=round(usage.prompt_tokens * share),
                completion_tokens=round(usage.completion_tokens * share),
                finish_reason=choice.get("finish_reason"),
                sent_at=sent_at,
                answered_at=answered_at,
                cached_prompt_tokens=round(usage.cached_prompt_tokens * share),
                reasoning_tokens=None if usage.reasoning_tokens is None else round(usage.reasoning_tokens * share),
                ttft_s=_seconds(timing.get("time_to_first_token_ms")),
                tpot_s=_seconds(timing.get("mean_itl_ms")),
                queue_s=_seconds(timing.get("queue_time_ms")),
                reasoning_text=reasoning_text(choice) if generate else None,
            )
            for choice in choices
        ]


def _post_json(url: str, payload: dict, headers: dict[str, str], timeout: float) -> dict:
    import urllib.request

    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), method="POST", headers={"Content-Type": "application/json", **headers}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def _seconds(ms: float | None) -> float | None:
    return None if ms is None else ms / 1000.0


def lm_eval_request_id(generate: bool, cache_key: Any) -> tuple:
    """Identity of a request as lm-eval logs it in a sample's ``arguments``, from lm-eval's own
    ``cache_key`` of it: ``("gen", context)`` or ``("ll", context, continuation)``. A meter carries
    it (``RequestMeter.key``) so that ``bench.evaluation.samples`` can join meters to samples.
    (Not the response cache's key: that is ``ResponseCache.entry_key``.)"""
    if generate:
        return ("gen", cache_key[0])
    return ("ll", cache_key[0], cache_key[1])


# Bodies: lm-eval's, adapted by the model's payload rules (bench.evaluation.payload; set in make_lm). The
# lm-eval registry names ("metered-...") let lm-eval's own tools name these clients too.
@client("local-completions")
@register_model("metered-completions")
class MeteredCompletions(OpenAIShaped, _Metered, LocalCompletionsAPI):
    route = "/completions"
    _create_payload = payload_rules.ruled(LocalCompletionsAPI._create_payload)


@client("local-chat-completions")
@register_model("metered-chat-completions")
class MeteredChatCompletions(OpenAIShaped, _Metered, LocalChatCompletion):
    route = "/chat/completions"
    _create_payload = payload_rules.ruled(LocalChatCompletion._create_payload)


@client("openai-chat-completions")
@register_model("metered-openai-chat-completions")
class MeteredOpenAIChatCompletions(OpenAIShaped, _Metered, OpenAIChatCompletion):
    route = "/chat/completions"
    # Not OpenAIChatCompletion's body, which guesses from the model id whether it reasons.
    _create_payload = payload_rules.ruled(LocalChatCompletion._create_payload)


def _check_registry() -> None:
    """Every kind a config may name has its class: a name without one would pass validation and
    fail only when the run builds its client."""
    missing = sorted(set(KINDS) - set(registered()))
    if missing:
        raise ImportError(
            f"bench.evaluation.client: no class registered for {', '.join(missing)}; decorate the client class with @client(kind)"
        )


_check_registry()


def make_lm(
    model: ModelConfig,
    base_url: str | None,
    suite: SuiteConfig,
    num_concurrent: int,
    timeout_s: float,
    dispatcher: Dispatcher | None,
    cache: ResponseCache | None = None,
    start_server: Callable[[], str] | None = None,
) -> _Metered:
    """The lm-eval model object for one endpoint (``base_url`` ends in ``/v1``).

    Its requests go through ``dispatcher`` (shared by every client of the endpoint). With
    ``base_url`` None, ``start_server()`` is called at the first request that ``cache``
    cannot answer (a fully cached rerun starts no server).
    """
    chat = model.mode == Mode.chat
    api = model.source_kind == SourceKind.api
    cls = client_class(model.api.client or ("local-chat-completions" if chat else "local-completions"))
    # An API model is addressed by the vendor's model id; without a tokenizer of its own it
    # can only answer generation tasks (log-likelihoods need one to split the context).
    tokenizer = model.tokenizer if api else (model.tokenizer or model.source)
    lm = cls(
        model=model.source if api else model.name,
        base_url=(base_url or "http://server.not.started/v1").rstrip("/") + cls.route,
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
    lm.cache = cache
    lm.dispatcher = dispatcher
    if base_url is None:
        lm.start_server = start_server
    return lm
