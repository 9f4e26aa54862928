"""Per-sample and per-task records on disk: append-only JSONL, atomic JSON.

Every figure in a report is computed from these files, so a run folder can be re-summarized
without a model, a server or a GPU.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

SAMPLES = "samples.jsonl"
TASK_RUNS = "task_runs.jsonl"
SERVERS = "servers.jsonl"
STATUS = "status.json"
PRICES = "prices.json"
RECOGNITION = "recognition.jsonl"
REQUESTS = "requests.jsonl"
TIMINGS = "timings.jsonl"
"""Timing replays of self-hosted models' tasks (``bench/evaluation/timing.py``), when ``run.timing_replays`` > 0."""
MODEL_RUNS = "model_runs.jsonl"
VERSIONS = "versions.json"
NOTES = "notes.json"
"""What the run left out and why (``bench/serving/availability.py``), for the report's header."""


@dataclass(frozen=True)
class SampleRecord:
    """One model's answer to one item, scored, with what it cost to produce."""

    model: str
    role: str
    task: str
    doc_id: int
    prompt: str
    response: str
    """Raw generation; for multiple choice, the option with the highest log-likelihood."""
    extracted: str
    """What the task's filters extracted and scored (option index for multiple choice)."""
    target: str
    metric: str
    correct: float
    prompt_tokens: int
    cached_prompt_tokens: int
    """Prompt tokens the server reports as served from its prefix cache (billed lower by APIs)."""
    completion_tokens: int
    reasoning_tokens: int
    """Reasoning tokens: the API's own count where it reports one (OpenAI's
    ``completion_tokens_details.reasoning_tokens``), or the reasoning text it returned apart
    from the answer, counted; else the tokens inside the model's reasoning delimiters
    (delimiters included); 0 if none. Billed as output: they are part of ``completion_tokens``."""
    reasoning_closed: bool | None
    finish_reason: str
    latency_s: float
    """Client-measured, from sending a request to its full response, summed over the sample's
    requests: one for a generation; one per option for multiple choice, whose requests run
    concurrently, so the sum is not a wall time (``sent_at``/``done_at`` give that)."""
    n_requests: int
    ttft_s: float | None = None
    """Server-measured time to first token (None where the server does not report it)."""
    tpot_s: float | None = None
    """Server-measured mean time per output token after the first."""
    queue_s: float | None = None
    repeat: int = 0
    """Which of the suite's k samples per item this is (0..k-1; sampled with seed + repeat)."""
    cluster: str | None = None
    """The item's group (the task's metadata names the field) for clustered standard errors."""
    from_cache: bool = False
    """True when every request behind it was answered from the response cache (resume)."""
    sent_at: float | None = None
    """Wall clock (epoch seconds) when the sample's first request was sent (None: not measured)."""
    done_at: float | None = None
    """Wall clock (epoch seconds) when the sample's last answer arrived (None: not measured)."""
    reasoning: str | None = None
    """Reasoning the vendor returned apart from ``response`` (DeepSeek's ``reasoning_content``);
    None where the reasoning is part of the response, or hidden (OpenAI's reasoning models
    report only its length, in ``reasoning_tokens``)."""


@dataclass(frozen=True)
class TaskRun:
    """One model evaluated on one task: its share of the model's serving time."""

    model: str
    role: str
    task: str
    n_samples: int
    serving_s: float
    """Serving time, the one billed: with timing replays (``bench.evaluation.timing``), the median over
    them of the time the task's requests were in flight, alone on the server; without, the
    task's share of the time the model had requests in flight (``bench.evaluation.metering``: the whole
    interval when it ran alone)."""
    started_at: float
    chance: float | None
    """Accuracy of guessing, from the task's metadata (None when the task does not say)."""
    server_prompt_tokens: float | None = None
    server_generation_tokens: float | None = None
    server_requests: float | None = None
    """The server's own Prometheus counters over this task (None for API models, and when the
    model's tasks shared one request pool: then ``ModelRun`` holds them for the model)."""
    energy_j: float | None = None
    """GPU energy over the task from NVML (None where NVML is unavailable, or in ``ModelRun``)."""
    requests_live: int = 0
    """Requests this run sent to the endpoint for the task."""
    requests_cached: int = 0
    """Requests answered from the response cache (an earlier, interrupted or finished run)."""
    harness_s: float | None = None
    """Whole lm-eval call(s) in this run (runs before pooled scheduling; see ``ModelRun``)."""
    pooled_s: float | None = None
    """With timing replays: the task's share of the evaluation's pooled serving time (what
    ``serving_s`` would have been without them), for comparison; None without replays."""
    timing_replays: int = 0
    """How many timing replays ``serving_s`` is the median of (0: it is ``pooled_s``'s measure)."""


@dataclass(frozen=True)
class RequestRecord:
    """One HTTP request: which sample it answered and when it was in flight (``bench.evaluation.metering``
    computes serving time, task shares and utilisation from these)."""

    model: str
    task: str
    doc_id: int
    repeat: int
    kind: str
    """``gen`` or ``ll``."""
    sent_at: float
    answered_at: float
    prompt_tokens: int
    completion_tokens: int
    from_cache: bool


@dataclass(frozen=True)
class ModelRun:
    """One model's passes in a run: how they were scheduled, the time they held the engine,
    how full they kept it, and the server's own counters over the requests sent."""

    model: str
    role: str
    scheduler: str
    target_in_flight: int
    passes_at_once: int
    serving_s: float
    """Union of every request interval of the model (cached answers included)."""
    utilisation: float | None
    """Mean requests in flight over the serving time of this run's live requests / the target."""
    harness_s: float
    server_prompt_tokens: float | None = None
    server_generation_tokens: float | None = None
    server_requests: float | None = None
    energy_j: float | None = None
    requests_live: int = 0
    requests_cached: int = 0
    target_rule: str = ""
    """How ``target_in_flight`` was reached (``bench/serving/concurrency.py``)."""
    server_kv_cache_tokens: int | None = None
    """KV-cache tokens the server reported allocating (all replicas), to check the rule against."""
    simulated_time_scale: float | None = None
    """Set when a simulated engine (``serve.simulate``) answered: every time of this model in the
    run's records is wall-clock time compressed by this factor, and nothing is a measurement."""
    rate_limited: int = 0
    """HTTP 429 answers the endpoint gave (each retried; ``bench.serving.dispatch``)."""
    lowest_in_flight: int | None = None
    """The fewest requests in flight the dispatcher allowed while 429s came (None: never lowered)."""


@dataclass(frozen=True)
class ServerRun:
    """One model's server: how long it took to become ready and how long it was held."""

    model: str
    role: str
    command: list[str]
    startup_s: float
    held_s: float
    warmup_s: float = 0.0
    """One request of each kind its tasks send, before metering (counted in held_s)."""


class NoSpace(OSError):
    """A write that found its file system full (or over quota): says which file and how much
    space it needed, so the user knows what to free."""

    def __init__(self, path: Path, needed: int):
        self.path, self.needed = Path(path), needed
        free = _free_bytes(self.path)
        super().__init__(
            errno.ENOSPC,
            f"no space left to write {self.path}: it needs {needed:,} bytes and "
            f"{free:,} are free there; free some space (or point run.results_dir "
            f"elsewhere) and rerun the same command to resume",
        )

    def __str__(self) -> str:
        return cast(str, self.strerror)  # always set: __init__ passes the message


def _free_bytes(path: Path) -> int:
    for folder in (path.parent, *path.parents):
        if folder.exists():
            return shutil.disk_usage(folder).free
    return 0


def is_no_space(e: BaseException) -> bool:
    return isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT)


@contextmanager
def no_space_names(path: Path, needed: int):
    """Turn a full-disk ``OSError`` raised inside into a :class:`NoSpace` naming ``path``."""
    try:
        yield
    except NoSpace:
        raise
    except OSError as e:
        if is_no_space(e):
            raise NoSpace(path, needed) from e
        raise


def append_jsonl(path: Path, rows: Iterable[Any]) -> None:
    """Append rows and flush them to disk before returning. On a full disk the file is cut
    back to where it was (no torn line) and :class:`NoSpace` is raised."""
    data = "".join(
        json.dumps(
            dataclasses.asdict(row) if dataclasses.is_dataclass(row) and not isinstance(row, type) else row,
            sort_keys=True,
        )
        + "\n"
        for row in rows
    ).encode()
    with no_space_names(path, len(data)):
        append_bytes(path, data)


def append_bytes(path: Path, data: bytes) -> None:
    """Append ``data`` to a file one writer owns, fsynced; if it cannot all be written, the
    file is cut back to its old size and the error raised."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        size = os.fstat(fd).st_size
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except OSError:
            os.ftruncate(fd, size)
            raise
    finally:
        os.close(fd)


def read_jsonl(path: Path) -> list[dict]:
    """All complete rows; a torn last line (a crash mid-write) is ignored."""
    if not path.exists():
        return []
    rows = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break
            raise
    return rows


RENAMED_TASK_RUN_KEYS = {"wall_s": "serving_s"}
"""Keys ``TaskRun`` rows were written under before a rename (old name: new name)."""


def read_task_runs(path: Path) -> list[dict]:
    """The ``TaskRun`` rows of a ``task_runs.jsonl``, under today's field names: rows written before
    a rename (``wall_s``, now ``serving_s``) are read as if written today. Every reader of the
    file goes through here."""
    return [{RENAMED_TASK_RUN_KEYS.get(k, k): v for k, v in row.items()} for row in read_jsonl(path)]


def _umask() -> int:
    """The process's umask, read without changing it where Linux tells (``os.umask`` sets it,
    and another thread could create a file in between)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(path: Path, text: str | bytes) -> None:
    """Temp file in the same folder, fsync, rename: readers never see half a file. The file
    gets the mode a plain ``open`` would give it (0666 less the umask), not the temp file's 0600,
    so a shared results folder stays readable. ``text`` is written as UTF-8; bytes as they are."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    with no_space_names(path, len(data)):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            os.fchmod(fd, 0o666 & ~_umask())
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def write_json(path: Path, obj: Any) -> None:
    write_atomic(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
