"""A local stand-in for a vendor's chat-completions API: it answers sums the way a reasoning model
would, in OpenAI's or DeepSeek's response shape, and rate-limits on cue.

The shapes follow the vendors' documentation (see bench/evaluation/usage.py): OpenAI reports the hidden
reasoning's length in ``usage.completion_tokens_details.reasoning_tokens``; DeepSeek's thinking
mode returns the reasoning text in ``message.reasoning_content`` and (optionally here) the same
count, with its cache counts in ``prompt_cache_hit_tokens`` / ``prompt_cache_miss_tokens``.
Tokens are characters here, as in the tiny zoo.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SUM = re.compile(r"(\d+)\+(\d+)=")


@dataclass(frozen=True)
class Hit:
    """One request as the endpoint saw it."""

    prompt: str
    at: float
    status: int
    in_flight: int
    """Requests in flight at the endpoint when this one arrived (itself included)."""
    body: dict
    headers: dict


def reasoning_length(prompt: str) -> int:
    """How many reasoning tokens the stand-in spends on a prompt (differs from item to item)."""
    a, b = map(int, SUM.search(prompt).groups())
    return 20 + (a * 7 + b) % 50


def answer(prompt: str) -> str:
    a, b = map(int, SUM.search(prompt).groups())
    return str(a + b)


@dataclass
class Vendor:
    """The endpoint's behaviour; ``hits`` records every request."""

    shape: str = "openai"
    """``openai`` or ``deepseek``."""
    report_reasoning_count: bool = True
    """DeepSeek shape only: whether ``usage`` carries the reasoning token count too."""
    capacity: int | None = None
    """Requests allowed in flight at once; more are answered 429 (None: no limit)."""
    retry_after: str | None = "1"
    """The 429's Retry-After header (None: none sent)."""
    rate_limit_first: int = 0
    """Answer the first N requests 429 whatever the load."""
    delay_s: float = 0.02
    hits: list[Hit] = field(default_factory=list)
    in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def respond(self, body: dict) -> dict:
        prompt = body["messages"][-1]["content"]
        reasoning_n, text = reasoning_length(prompt), answer(prompt)
        prompt_n = sum(len(m["content"]) for m in body["messages"])
        usage = {
            "prompt_tokens": prompt_n,
            "completion_tokens": reasoning_n + len(text),
            "total_tokens": prompt_n + reasoning_n + len(text),
        }
        message = {"role": "assistant", "content": text}
        if self.shape == "openai":
            usage |= {
                "prompt_tokens_details": {"cached_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": reasoning_n},
            }
        else:
            message["reasoning_content"] = "x" * reasoning_n  # one character, one token
            usage |= {"prompt_cache_hit_tokens": 2, "prompt_cache_miss_tokens": prompt_n - 2}
            if self.report_reasoning_count:
                usage["completion_tokens_details"] = {"reasoning_tokens": reasoning_n}
        return {
            "id": "chatcmpl-local",
            "object": "chat.completion",
            "model": body["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": usage,
        }


class Endpoint:
    """``with Endpoint(Vendor(...)) as base:`` a base URL ending in /v1, served from a thread."""

    def __init__(self, vendor: Vendor):
        self.vendor = vendor
        self.server: ThreadingHTTPServer | None = None

    def __enter__(self) -> str:
        vendor = self.vendor

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with vendor.lock:
                    vendor.in_flight += 1
                    now = vendor.in_flight
                    n = len(vendor.hits)
                    limited = n < vendor.rate_limit_first or (vendor.capacity is not None and now > vendor.capacity)
                    status = 429 if limited else 200
                    vendor.hits.append(
                        Hit(body["messages"][-1]["content"], time.time(), status, now, body, dict(self.headers))
                    )
                try:
                    if limited:
                        self.send(
                            429,
                            {"error": {"type": "rate_limit_error", "message": "slow down"}},
                            {"Retry-After": vendor.retry_after} if vendor.retry_after else {},
                        )
                    else:
                        time.sleep(vendor.delay_s)
                        self.send(200, vendor.respond(body), {})
                finally:
                    with vendor.lock:
                        vendor.in_flight -= 1

            def send(self, status: int, payload: dict, headers: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def run_against(base: str, preset: str, tmp_path, *overrides: str):
    """A whole run (validation, passes, records, report) of one API preset against ``base`` on
    the smoke sums, in this process; returns the run folder."""
    from bench.run import execute
    from conftest import ZOO, run_config

    run_dir = tmp_path / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg = run_config(
        [
            f"+model@models.api={preset}",
            "run.only=api",
            f"models.api.api.base_url={base}",
            "suite.tasks=[smoke_arith]",
            "suite.limit=12",
            f"run.results_dir={tmp_path}",
            f"zoo_dir={ZOO}",
            *overrides,
        ]
    )
    return execute(cfg, run_dir)
