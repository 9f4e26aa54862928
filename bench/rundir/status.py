"""A run folder's ``status.json``: claimed, ``running`` (with the process that runs it), then
``success``, ``error`` or ``cancelled``. A ``running`` status whose process is gone from this
host reads as ``error``: the run was killed, or its disk filled before it could say so."""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from pathlib import Path
from typing import Any

from bench.rundir import records

log = logging.getLogger("bench")
_claimed: set[Path] = set()
"""Run folders this process has claimed (only their status is this process's to write)."""


def claim(run_dir: Path) -> None:
    """Make the run folder this run's, or refuse with a ConfigError: a folder that already holds
    a run (one ``hydra.run.dir`` given twice) would mix two runs' records."""
    from bench.validate import ConfigError

    taken = [n for n in ("config.json", records.STATUS, records.SAMPLES) if (run_dir / n).exists()]
    if taken:
        raise ConfigError(
            f"run folder {run_dir} already holds a run ({', '.join(taken)}): give this run "
            f"another hydra.run.dir, or leave it unset (every run then gets a folder of its own)"
        )
    _claimed.add(run_dir)


def start(run_dir: Path, **extra: Any) -> None:
    """``running``, with this process's pid, host and start time (see :func:`read`)."""
    records.write_json(
        run_dir / records.STATUS,
        {
            "status": "running",
            "started_at": time.time(),
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "pid_started": _process_start(os.getpid()),
            **extra,
        },
    )


def finish(run_dir: Path, status: str, **extra: Any) -> None:
    """The final status (written last, atomically) and the manifest's closing fields."""
    from bench.rundir import manifest

    manifest.finish(run_dir, status)
    records.write_json(run_dir / records.STATUS, {"status": status, **extra})


def end(run_dir: Path, status: str, **extra: Any) -> None:
    """The final status of a failed or stopped run, where it can still be written; where it
    cannot (a full disk), the ``running`` left behind reads as ``error`` once this process is
    gone. Nothing for a folder this process never claimed (a run refused before it started)."""
    if run_dir not in _claimed:
        return
    try:
        finish(run_dir, status, **extra)
    except OSError as e:
        log.error(
            "could not record status %r in %s (%s); `bench report` and `bench verify` read the run as failed",
            status,
            run_dir / records.STATUS,
            e,
        )


def read(run_dir: Path) -> dict[str, Any]:
    """A run folder's status; a ``running`` run whose process is gone from this host reads as
    ``error`` (``stale``: true). {} where no status was written."""
    path = Path(run_dir) / records.STATUS
    if not path.is_file():
        return {}
    status = json.loads(path.read_text())
    if status.get("status") == "running" and status.get("host") == socket.gethostname() and "pid" in status:
        started = _process_start(status["pid"])
        if started is None or (status.get("pid_started") is not None and started != status["pid_started"]):
            return {
                **status,
                "status": "error",
                "stale": True,
                "error": f"the run's process (pid {status['pid']}) is gone without recording an end: it was "
                f"killed, or its disk filled up; rerun the same command to resume",
            }
    return status


def _process_start(pid: int) -> int | None:
    """When a live process started (clock ticks since boot: tells a reused pid apart); None if
    it is gone. Without /proc, 0 for any live process."""
    if Path("/proc/self/stat").is_file():
        try:
            return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
        except FileNotFoundError:
            return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return 0
