"""The response cache: every answered request persists the moment it completes; reruns resume.

One append-only JSONL file per model identity under ``run.cache_dir`` (default
``results/cache``). A request's key holds everything that can change its answer and nothing
that cannot:

- the model's identity (:func:`model_key`): a content fingerprint of its weights folder, or
  its hub id, the revision asked for and the commit it resolves to (``bench.data.hub``: the
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

import fcntl
import json
import logging
import os
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.config import ModelConfig, SourceKind
from bench.data import hub, lifecycle
from bench.rundir import records
from bench.rundir.hashing import folder_fingerprint, json_sha256

log = logging.getLogger(__name__)


def model_identity(model: ModelConfig, server_seed: int) -> dict[str, Any]:
    """What decides a model's answers, as recorded in the manifest and hashed into the key."""
    s = model.serve
    if model.source_kind == SourceKind.local:
        weights: dict[str, Any] = {"folder_sha256": folder_fingerprint(Path(model.source))}
    elif model.source_kind == SourceKind.hub:
        resolved = hub.resolve(model.source, s.revision)
        weights = {"hub_id": model.source, "revision": resolved.requested, "commit": resolved.commit}
    else:
        # An alias's answers are keyed by the model it served and when (bench.data.lifecycle).
        return {
            "api": model.api.base_url,
            "model": model.source,
            "client": model.api.client,
            "mode": model.mode.value,
            **lifecycle.identity(model.lifecycle),
        }
    tokenizer = model.tokenizer
    if tokenizer and Path(tokenizer).is_dir():
        tokenizer = folder_fingerprint(Path(tokenizer))
    identity = {
        **weights,
        "kind": model.source_kind.value,
        "mode": model.mode.value,
        "dtype": s.dtype,
        "max_model_len": s.max_model_len,
        "tokenizer": tokenizer,
        "seed": server_seed,
        "generation_config": "vllm",
        "extra_args": list(s.extra_args),
    }
    if s.simulate.enabled:
        # A simulated engine's answers must never be taken for the model's own (faults aside,
        # everything in its settings changes its answers or their times).
        identity["simulated"] = {k: v for k, v in vars(s.simulate).items() if k != "faults"}
    return identity


def model_key(identity: dict[str, Any]) -> str:
    return json_sha256(identity)


@dataclass
class Skipped:
    """Cache lines that hold no answer: torn by a killed writer, or valid JSON of another shape
    (an edited or foreign file). Their requests are simply asked again."""

    torn: int = 0
    foreign: int = 0

    def __bool__(self) -> bool:
        return bool(self.torn or self.foreign)


def _parse(data: bytes, entries: dict[str, dict], skipped: Skipped) -> None:
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            e = json.loads(line)
        except ValueError:
            skipped.torn += 1
            continue
        if isinstance(e, dict) and isinstance(e.get("k"), str) and isinstance(e.get("body"), dict):
            entries[e["k"]] = e
        else:
            skipped.foreign += 1


def load_entries(path: Path) -> dict[str, dict]:
    """Key -> entry of a cache file; lines that hold no answer are skipped (see ``Skipped``)."""
    entries: dict[str, dict] = {}
    if path.exists():
        _parse(path.read_bytes(), entries, Skipped())
    return entries


class ResponseCache:
    """Answers of one model identity, loaded at open, appended (one line each) as they come.

    Lines that hold no answer (torn by a killed writer, or foreign JSON) are skipped and
    counted, with one warning per cache file. Two runs may share a file (started together,
    or a sweep's jobs on one model): each append happens under an exclusive ``flock`` on it,
    after reading what other writers appended since this one last looked, so an answer is
    stored once, a torn line is ended before anything follows it, and lines never interleave.

    Why a lock on the JSONL file and not SQLite in WAL mode: the file stays append-only text
    that survives a torn write and that existing caches already are; the lock is held for one
    append of a few KB, nothing next to a model's answer; and ``flock`` works wherever the
    results folder does (Linux maps it to a byte-range lock on NFS), while SQLite's WAL needs
    memory shared on one host and its documentation warns against network file systems.
    """

    def __init__(self, folder: Path, key: str, reuse: bool = True):
        self.path = Path(folder) / f"{key[:24]}.jsonl"
        self.key = key
        self.reuse = reuse
        self.entries: dict[str, dict] = {}
        self.skipped = Skipped()
        self._offset = 0
        """Bytes of the file already read into ``entries``."""
        self._occurrences: Counter[str] = Counter()
        self._count_lock = threading.Lock()
        self._lock = threading.Lock()
        """Held while writing to the file."""
        self._pending: list[tuple[str, dict, bytes]] = []
        self._pending_lock = threading.Lock()
        self._fd: int | None = None
        self._warned = False
        self._torn_at: int | None = None
        """Where an unended line starts that has been counted already."""
        if self.path.exists():
            with open(self.path, "rb") as f:
                fcntl.flock(f, fcntl.LOCK_SH)  # writers append under LOCK_EX: none is mid-line now
                self._read_new(f.fileno())
                self._count_torn_tail(os.fstat(f.fileno()).st_size)
        self._warn()

    def _read_new(self, fd: int) -> None:
        """Entries appended since the last read, up to the last complete line."""
        data = os.pread(fd, max(0, os.fstat(fd).st_size - self._offset), self._offset)
        end = data.rfind(b"\n") + 1
        _parse(data[:end], self.entries, self.skipped)
        self._offset += end

    def _warn(self) -> None:
        if self.skipped and not self._warned:
            self._warned = True
            log.warning(
                "%s: skipped %d line(s) that hold no answer (%d torn by a killed writer, %d not cache "
                "entries); their requests are asked again",
                self.path,
                self.skipped.torn + self.skipped.foreign,
                self.skipped.torn,
                self.skipped.foreign,
            )

    def new_pass(self) -> None:
        """Occurrence counts restart with each pass of a task (lm-eval builds its requests anew)."""
        self._occurrences.clear()

    def entry_key(self, kind: str, body: dict[str, Any], occurrences: Counter | None = None) -> str:
        """The key of the cache entry that holds the answer to a request: a hash of the model's
        identity, the request's kind and its body (the served name left out), and which
        occurrence of that body in the pass it is. Each call counts one occurrence, in
        ``occurrences`` (the cache's own counter unless a pass brings its own, as concurrent
        passes do)."""
        body = {k: v for k, v in body.items() if k not in ("model", "stream")}
        h = json_sha256([self.key, kind, body])
        counter = self._occurrences if occurrences is None else occurrences
        with self._count_lock:
            n = counter[h]
            counter[h] += 1
        return json_sha256([h, n])

    def get(self, key: str) -> dict | None:
        return self.entries.get(key) if self.reuse else None

    def put(self, key: str, entry: dict[str, Any]) -> None:
        """Store an answer, unless another writer of the file already has (then its entry is
        kept, and this one's is dropped: the two are answers to the same request).

        Group commit: the answer joins a queue, and whichever thread holds the write lock appends
        everything queued in one write under one ``flock``. Hundreds of request threads taking
        the lock in turn, each for a few system calls, spent their time handing the GIL back and
        forth (at 300 answers/s the lock, not the engine, set the pace)."""
        entry = {"k": key, **entry}
        line = (json.dumps(entry, separators=(",", ":")) + "\n").encode()
        with self._pending_lock:
            self._pending.append((key, entry, line))
        self._drain(block=False)
        self._warn()

    def _drain(self, block: bool) -> None:
        """Write what is queued. A thread that finds the lock taken leaves its answer to the
        holder, which looks at the queue again each time it lets the lock go."""
        while True:
            if not self._lock.acquire(blocking=block):
                return
            try:
                with self._pending_lock:
                    batch, self._pending = self._pending, []
                if batch:
                    self._write(batch)
            finally:
                self._lock.release()
            with self._pending_lock:
                if not self._pending:
                    return

    def _write(self, batch: list[tuple[str, dict, bytes]]) -> None:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            self._append(batch)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _count_torn_tail(self, size: int) -> bool:
        """Whether the file ends in an unended line (its writer was killed: writers hold the
        lock while they write); counted once."""
        torn = size > self._offset
        if torn and self._torn_at != self._offset:
            self._torn_at = self._offset
            self.skipped.torn += 1
        return torn

    def _append(self, batch: list[tuple[str, dict, bytes]]) -> None:
        """Under the file lock: catch up with other writers, end a torn line, append the batch's
        lines (with ``reuse``, not those whose key another writer has stored meanwhile)."""
        fd = self._fd
        assert fd is not None  # _write opened it
        size = os.fstat(fd).st_size
        if size > self._offset:
            self._read_new(fd)
        new: list[tuple[str, dict, bytes]] = []
        keys: set[str] = set()
        for key, entry, line in batch:
            if not (self.reuse and (key in self.entries or key in keys)):
                new.append((key, entry, line))
                keys.add(key)
        data = b"".join(line for _, _, line in new)
        if self._count_torn_tail(size):
            data = b"\n" + data
        if not data:
            return
        with records.no_space_names(self.path, len(data)):
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            except OSError:
                os.ftruncate(fd, size)  # no torn line of ours is left behind
                raise
        self._offset = size + len(data)
        for key, entry, _ in new:
            if not (self.reuse and key in self.entries):
                self.entries[key] = entry

    def close(self) -> None:
        self._drain(block=True)
        with self._lock:
            if self._fd is not None:
                os.fsync(self._fd)
                os.close(self._fd)
                self._fd = None

    def __len__(self) -> int:
        return len(self.entries)
