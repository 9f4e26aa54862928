"""Request bodies adapted to what an API accepts, decided by the model's config, not its name.

lm-eval's ``openai-chat-completions`` client decides whether a model reasons from its id
(``"o1"``, ``"o3"``, ``"o4"`` or any ``"5"`` in it; lm-eval 0.4.13,
``lm_eval/models/openai_completions.py``), so ``gpt-4o-2024-05-13`` was sampled at
temperature 1 with no top-p. Here the preset says it (``reasoning: true``) and
:func:`rules_for` turns that into rules:

- a **reasoning API model** samples at settings its vendor fixes: OpenAI's reasoning models
  reject ``temperature``/``top_p`` other than the default and any ``stop``; Anthropic's from
  Claude Opus 4.7 on answer a non-default ``temperature``/``top_p`` with HTTP 400; DeepSeek's
  thinking mode ignores them. The body carries none of them;
- **OpenAI's own API** takes ``max_completion_tokens`` (``max_tokens`` "is not compatible with
  o-series models"; OpenAPI spec) and at most four stop sequences;
- an empty stop list is left out of an API's body rather than sent as ``[]``.

Self-hosted models (vLLM) get the body lm-eval built, unchanged. The metered clients in
``bench.evaluation.client`` build their bodies through :func:`ruled`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.config import ModelConfig, SourceKind

OPENAI_CLIENT = "openai-chat-completions"
SAMPLING = ("temperature", "top_p")


@dataclass(frozen=True)
class PayloadRules:
    """How a generation request's body is adapted for one endpoint."""

    fixed_sampling: bool = False
    """The vendor fixes sampling (a reasoning API model): no temperature, top_p or stop."""
    completion_tokens_field: bool = False
    """The limit goes in ``max_completion_tokens`` (OpenAI's API) instead of ``max_tokens``."""
    drop_empty_stop: bool = False
    """An API: no ``stop`` key rather than an empty list."""
    max_stop: int | None = None
    """Most stop sequences the endpoint takes (OpenAI: 4)."""

    def apply(self, body: dict[str, Any]) -> dict[str, Any]:
        """The body to send, from the one lm-eval built (a new dict)."""
        rename = {"max_tokens": "max_completion_tokens"} if self.completion_tokens_field else {}
        out = {rename.get(k, k): v for k, v in body.items()}
        if self.fixed_sampling:
            for key in (*SAMPLING, "stop"):
                out.pop(key, None)
        if "stop" in out:
            if self.max_stop is not None:
                out["stop"] = list(out["stop"])[: self.max_stop]
            if self.drop_empty_stop and not out["stop"]:
                del out["stop"]
        return out


SELF_HOSTED = PayloadRules()


def rules_for(model: ModelConfig) -> PayloadRules:
    """The rules for a model's endpoint, from its config alone."""
    if model.source_kind != SourceKind.api:
        return SELF_HOSTED
    openai = model.api.client == OPENAI_CLIENT
    return PayloadRules(
        fixed_sampling=model.reasoning,
        completion_tokens_field=openai,
        drop_empty_stop=True,
        max_stop=4 if openai else None,
    )


def ruled(build: Callable[..., dict]) -> Callable[..., dict]:
    """``_create_payload`` for a client class: lm-eval's ``build``, then the client's
    ``payload_rules`` (set by ``make_lm``) on generation requests. Log-likelihood bodies
    (``generate=False``) are sent as lm-eval built them."""

    def _create_payload(self, *args: Any, **kwargs: Any) -> dict:
        body = build(self, *args, **kwargs)
        generate = kwargs.get("generate", args[1] if len(args) > 1 else False)
        return getattr(self, "payload_rules", SELF_HOSTED).apply(body) if generate else body

    return _create_payload
