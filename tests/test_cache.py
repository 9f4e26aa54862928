"""The response cache's key: everything that changes an answer, nothing that does not."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

from bench.config import BenchConfig
from bench.evaluation.cache import ResponseCache, folder_fingerprint, load_entries, model_identity, model_key
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
    caches["tiny_student"].put(request["tiny_student"], {"body": {"x": 1}})
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
        c.put(k, {"body": {"i": i}})
    # Another process reads the file while this one is still open: both answers are there.
    assert set(load_entries(c.path)) == set(keys[:2])
    with open(c.path, "a") as f:
        f.write('{"k": "torn", "bo')  # a writer killed mid-line
    c.close()
    later = ResponseCache(tmp_path, "a" * 64)
    later.put(keys[2], {"body": {"i": 2}})
    later.close()
    entries = load_entries(c.path)
    assert set(entries) == set(keys) and entries[keys[2]]["body"] == {"i": 2}
    assert all(json.loads(line) for line in c.path.read_text().splitlines() if not line.startswith('{"k": "torn"'))


def test_reuse_false_asks_again_but_still_records(tmp_path):
    c = ResponseCache(tmp_path, "b" * 64)
    k = c.entry_key("gen", BODY)
    c.put(k, {"body": {}})
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
    c.put(good, {"body": {"i": 1}})
    c.close()
    with open(c.path, "a") as f:
        f.write('{"foo": 1}\n[1, 2]\n"text"\n{"k": "x", "body": "not a dict"}\n{"k": "torn", "bo')
    with caplog.at_level("WARNING", logger="bench.evaluation.cache"):
        again = ResponseCache(tmp_path, "f" * 64)
        again.put(again.entry_key("gen", {**BODY, "prompt": "other"}), {"body": {"i": 2}})
        again.close()
    assert again.get(good)["body"] == {"i": 1}
    assert (again.skipped.foreign, again.skipped.torn) == (4, 1)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and str(c.path) in warnings[0] and "1 torn" in warnings[0] and "4 not" in warnings[0]
    # The torn line was ended before the new answer: the next reader loses nothing.
    assert len(load_entries(c.path)) == 2


WRITER = """
import sys
from bench.evaluation.cache import ResponseCache
cache = ResponseCache(sys.argv[1], "w" * 64)
print("ready", flush=True)
sys.stdin.readline()
for i in range(300):
    cache.put(cache.entry_key("gen", {"prompt": str(i)}), {"body": {"i": i, "by": sys.argv[2]}, "pad": "x" * 5000})
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
            cache.put(f"{i}-{j}", {"body": {"text": "x" * (i + j)}})

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(cache) == 32 * 200  # in memory as soon as the last put returned
    cache.put("0-0", {"body": {"text": "again"}})  # already stored: dropped
    cache.close()
    lines = cache.path.read_bytes().splitlines()
    assert len(lines) == 32 * 200 and len({json.loads(x)["k"] for x in lines}) == 32 * 200
    assert load_entries(cache.path)["5-7"]["body"]["text"] == "x" * 12
