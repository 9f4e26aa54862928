"""lm-eval's logged samples joined with the metered requests that answered them (pure): one
``SampleRecord`` per sample and one ``RequestRecord`` per request."""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from typing import Any

from bench.config import ModelConfig
from bench.evaluation.answer import RequestMeter
from bench.evaluation.reasoning import NO_REASONING, reasoning_of
from bench.rundir.records import RequestRecord, SampleRecord


def primary_metric(sample: dict) -> str:
    """The metric a sample is scored by: its task's first."""
    return sample["metrics"][0]


def to_records(
    model: ModelConfig,
    task: str,
    samples: list[dict],
    meter: list[RequestMeter],
    count_tokens: Callable[[str], int | None],
    repeat: int = 0,
    cluster_field: str | None = None,
    requests_out: list[RequestRecord] | None = None,
) -> list[SampleRecord]:
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
            requests_out += [
                RequestRecord(
                    model=model.name,
                    task=task,
                    doc_id=int(s["doc_id"]),
                    repeat=repeat,
                    kind=r.key[0],
                    sent_at=r.sent_at,
                    answered_at=r.answered_at,
                    prompt_tokens=r.prompt_tokens,
                    completion_tokens=r.completion_tokens,
                    from_cache=r.from_cache,
                )
                for r in reqs
            ]
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
        records.append(
            SampleRecord(
                model=model.name,
                role=model.role.value,
                task=task,
                doc_id=int(s["doc_id"]),
                prompt=prompt_text(s["arguments"][0][0]),
                response=response,
                extracted=str(extracted),
                target=str(s["target"]),
                metric=metric,
                correct=float(s[metric]),
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
            )
        )
    leftover = sum(len(q) for q in pending.values())
    if leftover:
        raise RuntimeError(f"{model.name}/{task}: {leftover} metered requests matched no sample")
    return records


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
        raise RuntimeError(
            f"task metadata names cluster field {field!r}, but item {sample['doc_id']} "
            f"has no such field (fields: {', '.join(sorted(doc))})"
        )
    return str(doc[field])


def _wall_span(reqs: list[RequestMeter]) -> dict[str, float | None]:
    """``sent_at``/``done_at`` of a sample: its first request sent and its last answer received
    (epoch seconds); None when a meter carries no times (0: not measured) or they do not form a
    forward span."""
    sent, done = [r.sent_at for r in reqs], [r.answered_at for r in reqs]
    if not reqs or min(sent) <= 0 or max(done) < min(sent):
        return {"sent_at": None, "done_at": None}
    return {"sent_at": float(min(sent)), "done_at": float(max(done))}


def _first(values: Iterable[float | None]) -> float | None:
    """The generation's own figure (a multiple-choice item's options are timed separately)."""
    return next((v for v in values if v is not None), None)
