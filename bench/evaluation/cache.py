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

Entries are typed: ``CachedReply`` (an evaluation request's answer, generation or log-likelihood),
``ReplayTiming`` (a timing replay: its times and usage only) and ``TeacherScore`` (the teacher's
log-probabilities of a generation). One codec, ``to_json`` / ``from_json``, turns them into a
file's lines and back; no other code knows what a line holds.

On disk, lines keep the shape they had before entries were typed, byte for byte: short keys
(``k``, ``body``, ``sent``, ``done``, ``latency_s``), mapped to the fields in the codec alone.
Chosen over descriptive keys because (1) every existing cache is read as it is, with no second
reader to keep and no file to convert; (2) a file may be shared by runs of different checkouts
(a sweep's jobs, a run started before an update): what this code appends, older code still
reads, and the other way round; (3) paper-scale caches hold 32,000+ lines, each written under
the file lock. Request keys are unchanged too: they address the answers already stored.
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
from typing import Any, TypeVar, cast, overload

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


@dataclass(frozen=True)
class CachedReply:
    """An endpoint's answer to an evaluation request (generation or log-likelihood). The body
    is kept as the vendor sent it: on a hit the client reads its texts (lm-eval's parsers) and
    its ``Answer``s (``parse_answer(body, sent_at=..., answered_at=...)``) from it again, exactly
    as from a live reply."""

    body: dict[str, Any]
    """The response body, as the endpoint sent it (JSON)."""
    sent_at: float
    """Wall-clock time (epoch seconds) the request went out."""
    answered_at: float
    """Wall-clock time its answer came."""


@dataclass(frozen=True)
class ReplayTiming:
    """One timing replay of a request (``bench.evaluation.timing``): when it was in flight and
    what the server counted; its text is the evaluation's business and is not kept."""

    usage: dict[str, Any]
    """The response's ``usage`` (``{}`` where it had none)."""
    sent_at: float
    answered_at: float


@dataclass(frozen=True)
class TeacherScore:
    """The teacher's log-probabilities of an echoed prompt and response (``bench.evaluation.recognize``)."""

    token_logprobs: list[float | None]
    """One per token of the echoed text (the first None), then the one generated token's."""
    latency_s: float


Entry = CachedReply | ReplayTiming | TeacherScore
E = TypeVar("E", CachedReply, ReplayTiming, TeacherScore)


# The codec: the one place that knows what a line of a cache file holds.
#
#   k          the request's key (``ResponseCache.entry_key``)
#   body       CachedReply: the response body; ReplayTiming: {"usage": usage};
#              TeacherScore: {"token_logprobs": token_logprobs}
#   sent       sent_at (epoch seconds)                 CachedReply, ReplayTiming
#   done       answered_at (epoch seconds)             CachedReply, ReplayTiming
#   latency_s  CachedReply: answered_at - sent_at (derived, kept for older readers);
#              TeacherScore: its latency
#
# Lines written before ``sent``/``done`` (commits a556a85 to 6d9efc7) hold instead ``s``, the
# pass's start (epoch seconds; absent in the first ones), ``t``, the answer's offset in the pass,
# and ``a``, the attempt; a CachedReply is read from them as answered at s + t, sent latency_s before.
# TeacherScore lines still carry that shape's ``t`` (0.0) and ``a`` ("") so that what is written
# stays what was written before, byte for byte.
#
# Which entry a line holds is not written down: whoever reads it knows, since the kind of
# request ("gen", "ll", "timing1:...", "recognize") is hashed into its key.


def key_of(line: Any) -> str | None:
    """The request key of a parsed line; None if it holds no entry (foreign JSON)."""
    if isinstance(line, dict) and isinstance(line.get("k"), str) and isinstance(line.get("body"), dict):
        return line["k"]
    return None


def to_json(key: str, entry: Entry) -> dict[str, Any]:
    """The line (parsed) that stores ``entry`` under ``key``."""
    if isinstance(entry, CachedReply):
        return {
            "k": key,
            "body": entry.body,
            "latency_s": entry.answered_at - entry.sent_at,
            "sent": entry.sent_at,
            "done": entry.answered_at,
        }
    if isinstance(entry, ReplayTiming):
        return {"k": key, "body": {"usage": entry.usage}, "sent": entry.sent_at, "done": entry.answered_at}
    return {"k": key, "body": {"token_logprobs": entry.token_logprobs}, "latency_s": entry.latency_s, "t": 0.0, "a": ""}


def from_json(line: dict[str, Any], kind: type[E]) -> E:
    """The entry of kind ``kind`` that ``line`` (one with a key: ``key_of``) stores."""
    body = line["body"]
    entry: Entry
    if kind is CachedReply:
        entry = CachedReply(body, *_cached_times(line))
    elif kind is ReplayTiming:
        entry = ReplayTiming(body.get("usage") or {}, line["sent"], line["done"])
    else:
        entry = TeacherScore(body["token_logprobs"], line.get("latency_s", 0.0))
    return cast(E, entry)


def _cached_times(line: dict[str, Any]) -> tuple[float, float]:
    """(sent, answered) wall-clock times of a CachedReply's line (older lines: see the codec's notes)."""
    if "done" in line:
        return line["sent"], line["done"]
    done = line.get("s", 0.0) + line.get("t", 0.0)
    return done - line.get("latency_s", 0.0), done


@dataclass
class Skipped:
    """Cache lines that hold no answer: torn by a killed writer, or valid JSON of another shape
    (an edited or foreign file). Their requests are simply asked again."""

    torn: int = 0
    foreign: int = 0

    def __bool__(self) -> bool:
        return bool(self.torn or self.foreign)


def _parse(data: bytes, lines: dict[str, dict[str, Any]], skipped: Skipped) -> None:
    for text in data.splitlines():
        if not text.strip():
            continue
        try:
            line = json.loads(text)
        except ValueError:
            skipped.torn += 1
            continue
        key = key_of(line)
        if key is not None:
            lines[key] = line
        else:
            skipped.foreign += 1


@overload
def load_entries(path: Path) -> dict[str, CachedReply]: ...
@overload
def load_entries(path: Path, kind: type[E]) -> dict[str, E]: ...
def load_entries(path: Path, kind: Any = CachedReply) -> dict[str, Any]:
    """Key -> entry of a cache file, every line read as ``kind`` (a ``CachedReply`` unless
    told); lines that hold no answer are skipped (see ``Skipped``)."""
    lines: dict[str, dict[str, Any]] = {}
    if path.exists():
        _parse(path.read_bytes(), lines, Skipped())
    return {key: from_json(line, kind) for key, line in lines.items()}


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
        self._lines: dict[str, dict[str, Any]] = {}
        """Key -> its line, parsed (``from_json`` reads the entry from it)."""
        self.skipped = Skipped()
        self._offset = 0
        """Bytes of the file already read into ``_lines``."""
        self._occurrences: Counter[str] = Counter()
        self._count_lock = threading.Lock()
        self._lock = threading.Lock()
        """Held while writing to the file."""
        self._pending: list[tuple[str, dict[str, Any], bytes]] = []
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
        _parse(data[:end], self._lines, self.skipped)
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

    @overload
    def get(self, key: str) -> CachedReply | None: ...
    @overload
    def get(self, key: str, kind: type[E]) -> E | None: ...
    def get(self, key: str, kind: Any = CachedReply) -> Any:
        """The entry stored under ``key``, read as ``kind`` (the kind of request the key was made
        for: a ``CachedReply`` unless told); None without one, or when this run does not reuse answers."""
        return self.stored(key, kind) if self.reuse else None

    def stored(self, key: str, kind: type[E]) -> E | None:
        """The entry stored under ``key`` as ``kind``, ``reuse`` or not (so also what this run
        has just stored)."""
        line = self._lines.get(key)
        return None if line is None else from_json(line, kind)

    def put(self, key: str, entry: Entry) -> None:
        """Store an answer, unless another writer of the file already has (then its entry is
        kept, and this one's is dropped: the two are answers to the same request).

        Group commit: the answer joins a queue, and whichever thread holds the write lock appends
        everything queued in one write under one ``flock``. Hundreds of request threads taking
        the lock in turn, each for a few system calls, spent their time handing the GIL back and
        forth (at 300 answers/s the lock, not the engine, set the pace)."""
        line = to_json(key, entry)
        text = (json.dumps(line, separators=(",", ":")) + "\n").encode()
        with self._pending_lock:
            self._pending.append((key, line, text))
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

    def _write(self, batch: list[tuple[str, dict[str, Any], bytes]]) -> None:
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

    def _append(self, batch: list[tuple[str, dict[str, Any], bytes]]) -> None:
        """Under the file lock: catch up with other writers, end a torn line, append the batch's
        lines (with ``reuse``, not those whose key another writer has stored meanwhile)."""
        fd = self._fd
        assert fd is not None  # _write opened it
        size = os.fstat(fd).st_size
        if size > self._offset:
            self._read_new(fd)
        new: list[tuple[str, dict[str, Any], bytes]] = []
        keys: set[str] = set()
        for key, line, text in batch:
            if not (self.reuse and (key in self._lines or key in keys)):
                new.append((key, line, text))
                keys.add(key)
        data = b"".join(text for _, _, text in new)
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
        for key, line, _ in new:
            if not (self.reuse and key in self._lines):
                self._lines[key] = line

    def close(self) -> None:
        self._drain(block=True)
        with self._lock:
            if self._fd is not None:
                os.fsync(self._fd)
                os.close(self._fd)
                self._fd = None

    def __len__(self) -> int:
        return len(self._lines)
