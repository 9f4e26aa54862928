"""The response cache: every answered request persists the moment it completes; reruns resume.

One append-only JSONL file per model identity under ``run.cache_dir`` (default
``results/cache``). A request's key holds everything that can change its answer and nothing
that cannot:

- the model's identity (:func:`model_key`): a content fingerprint of its weights folder, or
  its hub id, the revision asked for and the commit it resolves to (``bench.hub``: the
  cached snapshot's, else the Hub's), or an API's endpoint and model id (with the model that id
  served and the dates it served it, from the preset's lifecycle); plus the server
  arguments that change outputs (dtype, context length, tokenizer, revision, seed,
  generation config, extra flags);
- the request body as sent (prompt or messages, sampling parameters, per-request seed,
  stop sequences, log-prob options), minus the served name;
- the occurrence index of an identical body within one pass of a task (two identical
  requests are two samples).

Port, host, concurrency, timeouts, retries, KV-cache size and parallelism are not in it.
lm-eval's own response cache is keyed without the model (lm-eval issue 2715) and is off.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from bench import hub, lifecycle
from bench.config import ModelConfig, SourceKind

# Files above this size are fingerprinted by size plus their first and last CHUNK bytes
# (a 70B checkpoint is 140 GB; hashing it all on every run is not affordable).
FULL_HASH_MAX = 256 * 2**20
CHUNK = 8 * 2**20


def _sha(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def file_fingerprint(path: Path) -> str:
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        if size <= FULL_HASH_MAX:
            for block in iter(lambda: f.read(2**20), b""):
                h.update(block)
        else:
            h.update(f.read(CHUNK))
            f.seek(size - CHUNK)
            h.update(f.read(CHUNK))
    return h.hexdigest()


def folder_fingerprint(folder: Path) -> str:
    """Content fingerprint of a model folder: every file's name and content (see FULL_HASH_MAX)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    return _sha([[str(p.relative_to(folder)), file_fingerprint(p)] for p in files])


def model_identity(model: ModelConfig, server_seed: int) -> dict[str, Any]:
    """What decides a model's answers, as recorded in the manifest and hashed into the key."""
    s = model.serve
    if model.source_kind == SourceKind.local:
        weights = {"folder_sha256": folder_fingerprint(Path(model.source))}
    elif model.source_kind == SourceKind.hub:
        resolved = hub.resolve(model.source, s.revision)
        weights = {"hub_id": model.source, "revision": resolved.requested, "commit": resolved.commit}
    else:
        # An alias's answers are keyed by the model it served and when (bench.lifecycle).
        return {"api": model.api.base_url, "model": model.source, "client": model.api.client,
                "mode": model.mode.value, **lifecycle.identity(model.lifecycle)}
    tokenizer = model.tokenizer
    if tokenizer and Path(tokenizer).is_dir():
        tokenizer = folder_fingerprint(Path(tokenizer))
    return {**weights, "kind": model.source_kind.value, "mode": model.mode.value, "dtype": s.dtype,
            "max_model_len": s.max_model_len, "tokenizer": tokenizer, "seed": server_seed,
            "generation_config": "vllm", "extra_args": list(s.extra_args)}


def model_key(identity: dict[str, Any]) -> str:
    return _sha(identity)


def load_entries(path: Path) -> dict[str, dict]:
    """Key -> entry; lines torn by a killed writer are skipped (their requests are redone)."""
    entries: dict[str, dict] = {}
    if not path.exists():
        return entries
    with open(path, "rb") as f:
        for line in f:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            entries[e["k"]] = e
    return entries


class ResponseCache:
    """Answers of one model identity, loaded at open, appended (one write per line) as they come.

    A torn last line (the harness was killed mid-write) is skipped on read. Appends are single
    ``os.write`` calls on an ``O_APPEND`` descriptor, so concurrent runs do not interleave lines.
    """

    def __init__(self, folder: Path, key: str, reuse: bool = True):
        self.path = Path(folder) / f"{key[:24]}.jsonl"
        self.key = key
        self.reuse = reuse
        self.entries: dict[str, dict] = {}
        if reuse:
            self.entries = load_entries(self.path)
        self._occurrences: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._fd: int | None = None

    def new_pass(self) -> None:
        """Occurrence counts restart with each pass of a task (lm-eval builds its requests anew)."""
        self._occurrences.clear()

    def request_key(self, kind: str, body: dict[str, Any], occurrences: Counter | None = None) -> str:
        """The key of a request; ``occurrences`` counts identical bodies within one pass (the
        cache's own counter unless a pass brings its own, as concurrent passes do)."""
        body = {k: v for k, v in body.items() if k not in ("model", "stream")}
        h = _sha([self.key, kind, body])
        counter = self._occurrences if occurrences is None else occurrences
        with self._lock:
            n = counter[h]
            counter[h] += 1
        return _sha([h, n])

    def get(self, key: str) -> dict | None:
        return self.entries.get(key) if self.reuse else None

    def put(self, key: str, entry: dict[str, Any]) -> None:
        entry = {"k": key, **entry}
        line = (json.dumps(entry, separators=(",", ":")) + "\n").encode()
        with self._lock:
            if self._fd is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
                size = os.fstat(self._fd).st_size
                if size and os.pread(self._fd, 1, size - 1) != b"\n":
                    os.write(self._fd, b"\n")  # end a line torn by a killed writer
            os.write(self._fd, line)
            self.entries[key] = entry

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.fsync(self._fd)
                os.close(self._fd)
                self._fd = None

    def __len__(self) -> int:
        return len(self.entries)
