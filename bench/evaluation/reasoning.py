"""How long a response reasoned and whether it finished: the vendor's own report, else the span
between the model's reasoning delimiters (pure)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench.config import ModelConfig
from bench.evaluation.answer import RequestMeter
from bench.evaluation.usage import split_by_characters


@dataclass(frozen=True)
class Reasoning:
    """How long a response reasoned, whether it finished reasoning, and the reasoning text the
    vendor returned apart from the answer (None where it is part of the response)."""

    tokens: int
    closed: bool | None
    text: str | None = None


NO_REASONING = Reasoning(0, None)


def reasoning_of(
    model: ModelConfig, response: str, reqs: list[RequestMeter], count_tokens: Callable[[str], int | None]
) -> Reasoning:
    """An API reasoning model's reasoning as its vendor reports it (a count of reasoning tokens,
    or the reasoning text beside the answer), else the span inside the model's delimiters.

    ``count_tokens(text)`` is the model's tokenizer (None without one). A vendor's count is
    taken as is; reasoning text without a count is counted with the tokenizer, or, without
    one, given its share of the completion tokens by characters. A reply that reasoned and
    then ran out of tokens before answering counts as unclosed."""
    reported = sum(r.reasoning_tokens or 0 for r in reqs)
    text = next((r.reasoning_text for r in reqs if r.reasoning_text), None)
    if reported or text:
        if not reported and text:  # text is always set here; the test narrows its type
            counted = count_tokens(text)
            reported = (
                counted
                if counted is not None
                else split_by_characters(sum(r.completion_tokens for r in reqs), text, response)
            )
        cut = any(r.finish_reason == "length" for r in reqs) and not response.strip()
        return Reasoning(reported, not cut, text)
    thinking = reasoning_span(response, model.think_start, model.think_end)
    if not thinking:
        return NO_REASONING
    return Reasoning(count_tokens(thinking[0]) or 0, thinking[1])


def reasoning_span(text: str, start: str | None, end: str | None) -> tuple[str, bool] | None:
    """The reasoning part of a generation (delimiters included) and whether it was closed."""
    if not start or not end:
        return None
    if start not in text:
        # Chat templates of R1-style models open the reasoning inside the prompt, so the reply
        # holds only the closing delimiter: the reasoning runs from the reply's start to it.
        stop = text.find(end)
        return (text[: stop + len(end)], True) if stop >= 0 else None
    begin = text.index(start)
    stop = text.find(end, begin)
    if stop < 0:
        return text[begin:], False
    return text[begin : stop + len(end)], True
