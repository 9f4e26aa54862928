"""Teacher recognition: the teacher's log-probability of other models' generations.

A teacher finds text drawn from itself likely. With the teacher's vLLM server up, each
generation (prompt + response) is sent back with ``echo`` and ``logprobs`` and the
log-probabilities of the response's tokens are summed. Results go to ``recognition.jsonl``.
"""

from __future__ import annotations

import json
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass


@dataclass(frozen=True)
class Scored:
    """The teacher's log-probability of one model's response to one item."""

    model: str
    task: str
    doc_id: int
    tokens: int
    logprob_sum: float


def _score(base: str, served_name: str, tokenizer, prompt: str, text: str, timeout: float) -> tuple[int, float]:
    context = len(tokenizer(prompt)["input_ids"])
    total = len(tokenizer(prompt + text)["input_ids"])
    body = json.dumps({"model": served_name, "prompt": prompt + text, "max_tokens": 1, "temperature": 0,
                       "echo": True, "logprobs": 0}).encode()
    req = urllib.request.Request(base.rstrip("/") + "/completions", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        logprobs = json.loads(r.read())["choices"][0]["logprobs"]["token_logprobs"]
    # logprobs covers the echoed prompt + response, then the one generated token.
    return total - context, float(sum(logprobs[context:total]))


def score_generations(base: str, served_name: str, tokenizer, rows: list[dict], concurrency: int,
                      timeout: float = 120.0) -> list[Scored]:
    """Score each record's response under the teacher; ``rows`` are generation sample records."""
    rows = [r for r in rows if r["response"]]
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        results = list(pool.map(lambda r: _score(base, served_name, tokenizer, r["prompt"], r["response"], timeout),
                                rows))
    return [Scored(r["model"], r["task"], int(r["doc_id"]), tokens, lp) for r, (tokens, lp) in zip(rows, results)]
