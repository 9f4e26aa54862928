"""Where a model answers: an API's URL, or a vLLM server started the first time it is needed.

A rerun whose answers are all in the response cache never starts a server; a resumed run
starts one only when the first unanswered request comes.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bench.config import ModelConfig, SourceKind
from bench.rundir import records

if TYPE_CHECKING:
    from bench.serving.serve import ServerAddress, VllmServer

log = logging.getLogger("bench")


class ModelEndpoint:
    """A model's endpoint: its API's URL, or the handle of the server it is served by, started
    lazily. ``base`` starts the server on first use (call it from the main thread: the server's
    parent-death signal is tied to the thread that starts it); ``close`` stops it and records
    its start-up time and command line in ``servers.jsonl``."""

    def __init__(self, model: ModelConfig, run_dir: Path, host: str, seed: int, engine_nice: int | None = None):
        self.model = model
        self.run_dir = run_dir
        self.host = host
        self.seed = seed
        self.engine_nice = engine_nice
        self.server: VllmServer | None = None
        self.address: ServerAddress | None = None
        """Where the started server answers; None until ``base`` starts it (and after ``close``)."""
        self._held_from = 0.0
        self.warmup_s = 0.0

    @property
    def is_api(self) -> bool:
        return self.model.source_kind == SourceKind.api

    @property
    def started(self) -> bool:
        return self.address is not None

    @property
    def base(self) -> str:
        """Base URL ending in /v1."""
        if self.is_api:
            assert self.model.api.base_url is not None  # validate requires it of an API model
            return self.model.api.base_url.rstrip("/")
        if self.address is None:
            log_path = self.run_dir / "servers" / f"{self.model.name}.log"
            if self.model.serve.simulate.enabled:
                from bench.serving.simulate_http import SimulatedServer
                from bench.serving.simulate_spec import spec_path

                self.server = SimulatedServer(
                    self.model, log_path, host=self.host, seed=self.seed, spec_path=spec_path(self.run_dir, self.model)
                )
                what = "SIMULATED server"
            else:
                from bench.serving.serve import VllmServer

                self.server = VllmServer(
                    self.model, log_path, host=self.host, seed=self.seed, engine_nice=self.engine_nice
                )
                what = "vLLM server"
            log.info("%s: starting its %s (the response cache cannot answer everything)", self.model.name, what)
            self.address = self.server.__enter__()
            self._held_from = time.perf_counter()
            log.info(
                "%s: server ready on port %d after %.1fs", self.model.name, self.address.port, self.address.startup_s
            )
        return self.address.base

    def record_warm_up(self, seconds: float) -> None:
        """The warm-up requests' time (after start-up, before any metered request)."""
        self.warmup_s += seconds
        log.info("%s: warmed up in %.1fs (not metered)", self.model.name, seconds)

    def alive(self) -> bool:
        """False once a server this harness started has exited."""
        proc = self.server.proc if self.server is not None else None
        return self.is_api or proc is None or proc.poll() is None

    def healthy(self) -> bool:
        """Whether the server this harness started still answers ``/health`` (it fails once the
        engine has died, while the API process may linger)."""
        from bench.serving.serve import health_ok

        return self.alive() and (self.address is None or health_ok(self.address.base))

    def close(self) -> None:
        if self.server is None:
            return
        server, self.server = self.server, None
        try:
            server.__exit__(None, None, None)
        finally:
            if self.address is not None:
                records.append_jsonl(
                    self.run_dir / records.SERVERS,
                    [
                        records.ServerRun(
                            model=self.model.name,
                            role=self.model.role.value,
                            command=server.command,
                            startup_s=self.address.startup_s,
                            held_s=time.perf_counter() - self._held_from,
                            warmup_s=self.warmup_s,
                        )
                    ],
                )
            self.address = None

    def __enter__(self) -> ModelEndpoint:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
