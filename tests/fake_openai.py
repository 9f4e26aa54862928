"""A stand-in OpenAI-compatible endpoint for tests that need one without a model: it answers
every completion with the same text (or, on cue, with an error status), and records each
request's path, headers and body."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Seen:
    """What the endpoint was sent."""

    requests: list[tuple[str, dict[str, str], dict]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    """The statuses to answer with, in order (then 200 forever)."""

    @property
    def calls(self) -> int:
        return len(self.requests)

    def headers(self, name: str) -> list[str | None]:
        """The value of header ``name`` in each request (None where it was absent)."""
        return [h.get(name.lower()) for _, h, _ in self.requests]


@contextmanager
def fake_endpoint(text: str = "42") -> Iterator[tuple[str, Seen]]:
    """``with fake_endpoint() as (base_url, seen):`` base_url ends in /v1."""
    seen = Seen()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's naming)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with lock:
                seen.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                status = seen.statuses.pop(0) if seen.statuses else 200
            prompts = body.get("prompt") if isinstance(body.get("prompt"), list) else [body.get("prompt")]
            reply = json.dumps(
                {
                    "id": "x",
                    "object": "text_completion",
                    "model": body.get("model"),
                    "choices": [{"index": i, "text": text, "finish_reason": "stop"} for i in range(len(prompts))],
                    "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
                }
                if status == 200
                else {"error": f"status {status}"}
            ).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", seen
    finally:
        server.shutdown()
        server.server_close()


def api_only_run(base_url: str, *extra: str) -> list[str]:
    """`bench run` overrides for the smoke experiment reduced to one API model at ``base_url``,
    on three items of the generation task (no server is started by the harness)."""
    return [
        "~models.tiny_teacher",
        "~models.tiny_student",
        "~models.tiny_control",
        "~models.frontier_api",
        "+model@models.api=local_api",
        f"models.api.api.base_url={base_url}",
        "suite.tasks=[smoke_arith]",
        "suite.limit=3",
        *extra,
    ]
