"""What one answer from an endpoint cost and when it came (pure records).

A client reads each vendor's response into ``Answer`` (``bench.evaluation.client``); the run keeps one
``RequestMeter`` per request: the answer plus the request it answered, its task and whether the
response cache supplied it. lm-eval's logged samples are joined to these (``bench.evaluation.samples``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Answer:
    """One choice of a response, as its vendor reported it (a batched request's usage is split
    evenly between its choices)."""

    prompt_tokens: int
    completion_tokens: int
    """Everything generated and billed as output, reasoning included."""
    finish_reason: str | None
    sent_at: float
    """Wall-clock time (epoch seconds) the request went out."""
    answered_at: float
    cached_prompt_tokens: int = 0
    reasoning_tokens: int | None = None
    """The vendor's count of reasoning tokens; None without one."""
    ttft_s: float | None = None
    """Server-measured: scheduled to first output token (vLLM --enable-per-request-metrics)."""
    tpot_s: float | None = None
    """Server-measured mean time between output tokens (None with fewer than two tokens)."""
    queue_s: float | None = None
    reasoning_text: str | None = None
    """Reasoning returned apart from the answer (DeepSeek's ``reasoning_content``)."""


@dataclass(frozen=True)
class RequestMeter:
    """What one HTTP request cost, as the server counted it, and when it was in flight."""

    key: tuple
    """lm-eval's identity of the request (``bench.evaluation.client.lm_eval_request_id``)."""
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

    @classmethod
    def of(cls, answer: Answer, key: tuple, task: str, from_cache: bool) -> RequestMeter:
        """The meter of the request ``key`` that ``answer`` answered."""
        return cls(
            key=key,
            prompt_tokens=answer.prompt_tokens,
            completion_tokens=answer.completion_tokens,
            finish_reason=answer.finish_reason,
            latency_s=answer.answered_at - answer.sent_at,
            cached_prompt_tokens=answer.cached_prompt_tokens,
            ttft_s=answer.ttft_s,
            tpot_s=answer.tpot_s,
            queue_s=answer.queue_s,
            from_cache=from_cache,
            sent_at=answer.sent_at,
            answered_at=answer.answered_at,
            task=task,
            reasoning_tokens=answer.reasoning_tokens,
            reasoning_text=answer.reasoning_text,
        )
