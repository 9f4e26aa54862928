"""The response cache's key: everything that changes an answer, nothing that does not."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

from bench.config import BenchConfig
from bench.evaluation.cache import (
    CachedReply,
    ResponseCache,
    folder_fingerprint,
    load_entries,
    model_identity,
    model_key,
)
from conftest import run_config

BODY = {"model": "x", "prompt": "12+34=", "max_tokens": 8, "temperature": 0, "seed": 1234, "stop": ["\n"]}


def models(*overrides: str) -> dict:
    cfg: BenchConfig = run_config(list(overrides))
    return cfg.models


def key_of(model, seed: int = 1234) -> str:
    return model_key(model_identity(model, seed))


def test_two_models_with_identical_prompts_never_share_answers(zoo_dir, tmp_path):
    m = models()
    keys = {name: key_of(model) for name, model in m.items()}
    assert len(set(keys.values())) == 3
    caches = {name: ResponseCache(tmp_path, k) for name, k in keys.items()}
    assert len({c.path for c in caches.values()}) == 3
    request = {name: c.entry_key("gen", BODY) for name, c in caches.items()}
    assert len(set(request.values())) == 3
    caches["tiny_student"].put(request["tiny_student"], CachedReply({"x": 1}, 0.0, 0.0))
    again = ResponseCache(tmp_path, keys["tiny_control"])
    again.new_pass()
    assert again.get(again.entry_key("gen", BODY)) is None


def test_key_ignores_serving_knobs_but_not_output_settings(zoo_dir):
    student = models()["tiny_student"]
    base = key_of(student)
    same = [
        replace(
            student,
            serve=replace(
                student.serve,
                kv_cache_memory_bytes=2**30,
                enforce_eager=False,
                gpu_memory_utilization=0.5,
                tensor_parallel_size=2,
                startup_timeout_s=5.0,
            ),
        )
    ]
    assert all(key_of(m) == base for m in same)
    different = [
        replace(student, serve=replace(student.serve, dtype="bfloat16")),
        replace(student, serve=replace(student.serve, max_model_len=256)),
        replace(student, serve=replace(student.serve, extra_args=["--quantization", "fp8"])),
    ]
    assert all(key_of(m) != base for m in different)
    assert key_of(student, seed=1) != base


def test_entry_key_holds_body_and_occurrence_but_not_served_name(tmp_path):
    c = ResponseCache(tmp_path, "k" * 64)
    first, second = c.entry_key("gen", BODY), c.entry_key("gen", BODY)
    assert first != second  # the same prompt asked twice is two samples
    c.new_pass()
    assert c.entry_key("gen", {**BODY, "model": "renamed"}) == first
    for change in ({"seed": 1235}, {"temperature": 0.6}, {"prompt": "12+35="}, {"max_tokens": 9}):
        c.new_pass()
        assert c.entry_key("gen", {**BODY, **change}) != first, change
    c.new_pass()
    assert c.entry_key("ll", BODY) != first


def test_changed_weights_change_the_model_key(zoo_dir, tmp_path):
    copy = tmp_path / "student"
    shutil.copytree(zoo_dir / "tiny_student", copy)
    student = models()["tiny_student"]
    moved = replace(student, source=str(copy))
    assert key_of(moved) == key_of(student)  # content, not path
    weights = next(copy.glob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    assert key_of(moved) != key_of(student)
    assert folder_fingerprint(copy) != folder_fingerprint(zoo_dir / "tiny_student")


def test_answers_persist_per_line_and_a_torn_line_is_skipped(tmp_path):
    c = ResponseCache(tmp_path, "a" * 64)
    keys = [c.entry_key("gen", {**BODY, "prompt": str(i)}) for i in range(3)]
    for i, k in enumerate(keys[:2]):
        c.put(k, CachedReply({"i": i}, 0.0, 0.0))
    # Another process reads the file while this one is still open: both answers are there.
    assert set(load_entries(c.path)) == set(keys[:2])
    with open(c.path, "a") as f:
        f.write('{"k": "torn", "bo')  # a writer killed mid-line
    c.close()
    later = ResponseCache(tmp_path, "a" * 64)
    later.put(keys[2], CachedReply({"i": 2}, 0.0, 0.0))
    later.close()
    entries = load_entries(c.path)
    assert set(entries) == set(keys) and entries[keys[2]].body == {"i": 2}
    assert all(json.loads(line) for line in c.path.read_text().splitlines() if not line.startswith('{"k": "torn"'))


def test_reuse_false_asks_again_but_still_records(tmp_path):
    c = ResponseCache(tmp_path, "b" * 64)
    k = c.entry_key("gen", BODY)
    c.put(k, CachedReply({}, 0.0, 0.0))
    c.close()
    fresh = ResponseCache(tmp_path, "b" * 64, reuse=False)
    assert fresh.get(fresh.entry_key("gen", BODY)) is None
    assert ResponseCache(tmp_path, "b" * 64).get(k) is not None


def test_identity_of_hub_models_is_the_commit_their_revision_resolves_to(tmp_path, monkeypatch):
    from bench.config import SourceKind
    from hubcache import fake_repo

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    student = models()["tiny_student"]
    hub = replace(student, source_kind=SourceKind.hub, source="org/model", serve=replace(student.serve, revision="v1"))
    ident = model_identity(hub, 0)
    assert (ident["hub_id"], ident["revision"], ident["commit"]) == ("org/model", "v1", None)  # not cached, offline
    unpinned = replace(hub, serve=replace(hub.serve, revision=None))
    assert model_identity(unpinned, 0)["revision"] == "main"
    first = fake_repo(tmp_path, "org/model", {"config.json": "{}"}, refs=("main",))
    assert model_identity(unpinned, 0)["commit"] == first
    # The branch moved on and the cache holds the new snapshot: other weights, another key.
    second = fake_repo(tmp_path, "org/model", {"config.json": '{"x": 1}'}, refs=("main",), commit="f" * 40)
    assert model_identity(unpinned, 0)["commit"] == second != first
    pinned = replace(hub, serve=replace(hub.serve, revision=first))
    assert model_identity(pinned, 0)["commit"] == first  # a pinned commit is its own resolution


def test_an_aliases_answers_are_keyed_by_the_model_it_served_and_when():
    """deepseek-reasoner answered with R1, then R1-0528, V3.1, V3.2 and V4-Flash under one name:
    the key holds the model the preset says the id serves and the dates it served it."""
    r1 = models("+model@models.r1=deepseek_r1_api")["r1"]
    identity = model_identity(r1, 1234)
    assert (identity["serves"], identity["served_from"], identity["served_until"]) == (
        "DeepSeek-R1 (January 2025 release)",
        "2025-01-20",
        "2025-05-28",
    )
    later = replace(
        r1,
        lifecycle=replace(
            r1.lifecycle, serves="DeepSeek-V3.1 (thinking)", available_from="2025-08-21", changed_on="2025-09-22"
        ),
    )
    assert key_of(later) != key_of(r1)
    # Not the stand-in served here: its key is its weights' (the smoke run's keys are unchanged).
    assert "serves" not in model_identity(models()["tiny_teacher"], 1234)


def test_foreign_and_torn_lines_are_skipped_counted_and_warned_about_once(tmp_path, caplog):
    c = ResponseCache(tmp_path, "f" * 64)
    good = c.entry_key("gen", BODY)
    c.put(good, CachedReply({"i": 1}, 0.0, 0.0))
    c.close()
    with open(c.path, "a") as f:
        f.write('{"foo": 1}\n[1, 2]\n"text"\n{"k": "x", "body": "not a dict"}\n{"k": "torn", "bo')
    with caplog.at_level("WARNING", logger="bench.evaluation.cache"):
        again = ResponseCache(tmp_path, "f" * 64)
        again.put(again.entry_key("gen", {**BODY, "prompt": "other"}), CachedReply({"i": 2}, 0.0, 0.0))
        again.close()
    assert again.get(good).body == {"i": 1}
    assert (again.skipped.foreign, again.skipped.torn) == (4, 1)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and str(c.path) in warnings[0] and "1 torn" in warnings[0] and "4 not" in warnings[0]
    # The torn line was ended before the new answer: the next reader loses nothing.
    assert len(load_entries(c.path)) == 2


WRITER = """
import sys
from bench.evaluation.cache import CachedReply, ResponseCache
cache = ResponseCache(sys.argv[1], "w" * 64)
print("ready", flush=True)
sys.stdin.readline()
for i in range(300):
    cache.put(cache.entry_key("gen", {"prompt": str(i)}), CachedReply({"i": i, "by": sys.argv[2], "pad": "x" * 5000}, 0, 0))
    cache.new_pass()
cache.close()
"""


def test_two_processes_writing_one_cache_store_each_answer_once(tmp_path):
    import subprocess
    import sys

    from conftest import ROOT

    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path), name],
            cwd=ROOT,
            text=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        for name in "ab"
    ]
    for w in writers:
        assert w.stdout.readline().strip() == "ready"
    for w in writers:  # both start appending at once
        w.stdin.write("go\n")
        w.stdin.flush()
    for w in writers:
        assert w.wait(timeout=120) == 0
    lines = (tmp_path / f"{'w' * 24}.jsonl").read_text().splitlines()
    keys = [json.loads(line)["k"] for line in lines]  # every line whole
    assert len(keys) == len(set(keys)) == 300


def test_many_threads_putting_at_once_store_every_answer_once(tmp_path):
    """Group commit: a thread that finds the write lock taken leaves its answer to the holder,
    which writes it before it lets go for good; nothing queued is lost, nothing written twice."""
    import threading

    cache = ResponseCache(tmp_path, "t" * 64)
    start = threading.Barrier(32)

    def worker(i: int) -> None:
        start.wait()
        for j in range(200):
            cache.put(f"{i}-{j}", CachedReply({"text": "x" * (i + j)}, 0.0, 0.0))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(cache) == 32 * 200  # in memory as soon as the last put returned
    cache.put("0-0", CachedReply({"text": "again"}, 0.0, 0.0))  # already stored: dropped
    cache.close()
    lines = cache.path.read_bytes().splitlines()
    assert len(lines) == 32 * 200 and len({json.loads(x)["k"] for x in lines}) == 32 * 200
    assert load_entries(cache.path)["5-7"].body["text"] == "x" * 12


# Lines as the code before typed entries wrote them (copied from real cache files: a client's
# answer, a timing replay, a teacher's score), and one from before answers kept their times.
TODAY = {
    "reply": '{"k":"e5a69f43cb18fc702b2b54e464dc0c88bb5a65e784bcc4cf10f9cd8749ef75a3","body":{"id":"x","object":'
    '"text_completion","model":"tiny_student","choices":[{"index":0,"text":"42","finish_reason":"stop"}],"usage":'
    '{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}},"latency_s":0.010346651077270508,"sent":'
    '1796020698.199707,"done":1796020698.2100537}',
    "timing": '{"k":"c531acaaff396fb24a8ce0a9729e0a0f760cd1336e470ca9cacf1db890319c9a","body":{"usage":'
    '{"prompt_tokens":3,"completion_tokens":2}},"sent":100.0,"done":101.0}',
    "score": '{"k":"596c5248cb93046ed3d135d67e3d176f28802726f3c8cc11140ea786758a3887","body":{"token_logprobs":'
    '[null,-0.5,-0.5,-0.5,-0.5,-0.5,-0.5,-0.5,-0.5]},"latency_s":0.007303298996703234,"t":0.0,"a":""}',
}
BEFORE_TIMES = (
    '{"k":"0123","body":{"choices":[{"index":0,"text":"7","finish_reason":"stop"}],"usage":{"prompt_tokens":4,'
    '"completion_tokens":1}},"latency_s":1.5,"t":4.0,"a":"3f2a9c1d0b7e","s":100.0}'
)


def test_a_cache_written_before_entries_were_typed_still_answers_and_is_written_alike(tmp_path):
    from bench.evaluation.cache import ReplayTiming, TeacherScore
    from bench.evaluation.client import OpenAIShaped

    c = ResponseCache(tmp_path, "o" * 64)
    c.path.write_text("".join(line + "\n" for line in [*TODAY.values(), BEFORE_TIMES]))
    old = ResponseCache(tmp_path, "o" * 64)
    assert len(old) == 4 and not old.skipped
    key = {name: json.loads(line)["k"] for name, line in TODAY.items()}

    reply = old.get(key["reply"])
    assert (reply.sent_at, reply.answered_at) == (1796020698.199707, 1796020698.2100537)
    assert reply.body["choices"][0]["text"] == "42"
    # The client reads its answers from a cached body as from a live one.
    (answer,) = OpenAIShaped().parse_answer(
        reply.body, generate=True, sent_at=reply.sent_at, answered_at=reply.answered_at
    )
    assert (answer.prompt_tokens, answer.completion_tokens, answer.finish_reason) == (5, 2, "stop")
    assert answer.answered_at - answer.sent_at == 0.010346651077270508
    assert old.get(key["timing"], ReplayTiming) == ReplayTiming(
        {"prompt_tokens": 3, "completion_tokens": 2}, 100.0, 101.0
    )
    score = old.get(key["score"], TeacherScore)
    assert score.token_logprobs == [None] + [-0.5] * 8 and score.latency_s == 0.007303298996703234
    # From before times were kept: answered at the pass's start plus its offset, sent its latency earlier.
    assert (old.get("0123").sent_at, old.get("0123").answered_at) == (102.5, 104.0)

    # The same entries put again are written as they were, byte for byte.
    fresh = ResponseCache(tmp_path / "fresh", "o" * 64)
    fresh.put(key["reply"], reply)
    fresh.put(key["timing"], old.get(key["timing"], ReplayTiming))
    fresh.put(key["score"], score)
    fresh.close()
    assert fresh.path.read_text().splitlines() == list(TODAY.values())


def test_request_and_model_keys_are_pinned(tmp_path):
    """Existing caches are addressed by these: a change to how they are hashed loses every answer."""
    from collections import Counter

    from bench.evaluation.timing import replay_key

    c = ResponseCache(tmp_path, "k" * 64)
    assert c.entry_key("gen", BODY) == "ad38fc69ac40956a858c6c748ea74b220a7a8373c1596d6b8202a8ab589bf713"
    assert c.entry_key("gen", BODY) == "54ad6747015806455aa202d8d478dfd85113e808d59db9550c6a62308465a4e7"
    c.new_pass()
    assert c.entry_key("ll", BODY) == "76bd270190279060ca3e67db256aab30a37179b5f34929bddcb4ee94946d4d51"
    assert c.entry_key("recognize", BODY) == "eceb3efd054eb6349ecc6921d90c57cea3028300744fc232a3b7a38565f322c4"
    assert (
        replay_key(c, 1, "gen", BODY, Counter()) == "939f382e9e665dc2b6b89b285bb63796ba8d5e2faf4db713535702c45dc54582"
    )
    identity = {"hub_id": "org/model", "revision": "main", "commit": "f" * 40}
    assert model_key(identity) == "cae34dd4f04471300ba5e7d1e46b3319a13d4f999cb8463df3ff972d6d6738d2"
