"""Teacher recognition: what the teacher scores (a chat model's messages through the teacher's
chat template), against a local endpoint that answers prompt log-probabilities."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench.evaluation.cache import ResponseCache
from bench.evaluation.recognize import score_generations, scored_prompt

TEMPLATE = (
    "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}[assistant] {% endif %}"
)
MESSAGES = json.dumps([{"role": "user", "content": "12+34="}])


@pytest.fixture
def tokenizer(zoo_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(zoo_dir / "tiny_teacher")
    tok.chat_template = TEMPLATE
    return tok


def test_a_chat_models_prompt_is_scored_through_the_teachers_chat_template(tokenizer):
    assert scored_prompt("12+34=", tokenizer, chat=False) == "12+34="
    assert scored_prompt(MESSAGES, tokenizer, chat=True) == "[user] 12+34=\n[assistant] "
    tokenizer.chat_template = None  # a base teacher reads the messages' text
    assert scored_prompt(MESSAGES, tokenizer, chat=True) == "12+34=\n\n"


class StubModelEndpoint:
    """Stands in for ``bench.serving.endpoint.ModelEndpoint``: a base URL, set by the test."""

    base = ""


def test_recognition_scores_the_response_after_the_templated_prompt(tokenizer, tmp_path):
    prompts = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            prompts.append(body["prompt"])
            n = len(tokenizer(body["prompt"])["input_ids"])
            data = json.dumps({"choices": [{"logprobs": {"token_logprobs": [None] + [-0.5] * n}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = StubModelEndpoint()
    endpoint.base = f"http://127.0.0.1:{server.server_address[1]}/v1"
    rows = [
        {"model": "chatty", "task": "t", "doc_id": 0, "prompt": MESSAGES, "response": "46"},
        {"model": "plain", "task": "t", "doc_id": 0, "prompt": "12+34=", "response": "46"},
    ]
    cache = ResponseCache(tmp_path, "c" * 64)
    try:
        scored, sent = score_generations(endpoint, "teacher", tokenizer, rows, 2, 30, cache, {"chatty"})
    finally:
        server.shutdown()
        cache.close()
    assert sent == 2 and sorted(prompts) == sorted(["[user] 12+34=\n[assistant] 46", "12+34=46"])
    response_tokens = len(tokenizer("12+34=46")["input_ids"]) - len(tokenizer("12+34=")["input_ids"])
    assert [(s.model, s.tokens) for s in scored] == [("chatty", response_tokens), ("plain", response_tokens)]
    assert all(s.logprob_sum == pytest.approx(-0.5 * s.tokens) for s in scored)
