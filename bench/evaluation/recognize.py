"""Teacher recognition: the teacher's log-probability of other models' generations.

A teacher finds text drawn from itself likely. With the teacher's vLLM server up, each
generation (prompt + response) is sent back with ``echo`` and ``logprobs`` and the
log-probabilities of the response's tokens are summed. Results go to ``recognition.jsonl``.

A chat model's prompt is recorded as lm-eval logs it, a JSON list of messages; it is scored
as the teacher would have read it, through the teacher's chat template with the assistant's
turn opened (a teacher without one reads the messages' text, a blank line apart).
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Set as AbstractSet
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from bench.evaluation.cache import TeacherScore


@dataclass(frozen=True)
class Scored:
    """The teacher's log-probability of one model's response to one item."""

    model: str
    task: str
    doc_id: int
    tokens: int
    logprob_sum: float


def scored_prompt(prompt: str, tokenizer, chat: bool) -> str:
    """The text the teacher scores a response after (see the module's docstring)."""
    if not chat:
        return prompt
    messages = json.loads(prompt)
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return "\n\n".join(m["content"] for m in messages) + "\n\n"


def _body(served_name: str, prompt: str, text: str) -> dict:
    return {
        "model": served_name,
        "prompt": prompt + text,
        "max_tokens": 1,
        "temperature": 0,
        "echo": True,
        "logprobs": 0,
    }


def _post(base: str, body: dict, timeout: float) -> list[float | None]:
    req = urllib.request.Request(
        base.rstrip("/") + "/completions", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())["choices"][0]["logprobs"]["token_logprobs"]


def score_generations(
    endpoint,
    served_name: str,
    tokenizer,
    rows: list[dict],
    concurrency: int,
    timeout: float,
    cache,
    chat_models: AbstractSet[str] = frozenset(),
) -> tuple[list[Scored], int]:
    """Score each generation record's response under the teacher; returns the scores and the
    number of requests sent. Scores already in ``cache`` (a ResponseCache) are not asked for
    again; the teacher's server (``endpoint.base``) is started only if some are missing.
    ``chat_models``: the models whose prompts are chat messages."""
    rows = [r for r in rows if r["response"]]
    prompts = [scored_prompt(r["prompt"], tokenizer, r["model"] in chat_models) for r in rows]
    bodies = [_body(served_name, p, r["response"]) for p, r in zip(prompts, rows)]
    cache.new_pass()
    keys = [cache.entry_key("recognize", b) for b in bodies]
    todo = [i for i, k in enumerate(keys) if cache.get(k, TeacherScore) is None]
    if todo:
        base = endpoint.base  # started here, on the calling (main) thread

        def fetch(i: int) -> None:
            t0 = time.perf_counter()
            logprobs = _post(base, bodies[i], timeout)
            cache.put(keys[i], TeacherScore(logprobs, time.perf_counter() - t0))

        with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
            list(pool.map(fetch, todo))
    scored = []
    for r, k, prompt in zip(rows, keys, prompts):
        score = cache.stored(k, TeacherScore)
        assert score is not None  # stored above, if it was not already
        logprobs = score.token_logprobs
        context = len(tokenizer(prompt)["input_ids"])
        total = len(tokenizer(prompt + r["response"])["input_ids"])
        # logprobs covers the echoed prompt + response, then the one generated token.
        scored.append(
            Scored(r["model"], r["task"], int(r["doc_id"]), total - context, float(sum(logprobs[context:total])))
        )
    return scored, len(todo)
