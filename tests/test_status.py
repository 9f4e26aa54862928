"""A run's status: a ``running`` run whose process died reads as ``error``, where the run
folder is read back (``bench report`` and ``bench verify``: tests/test_run.py)."""

from __future__ import annotations

import json
import subprocess
import sys

from bench.rundir import records, status


def dead_pid() -> int:
    return int(
        subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout
    )


def test_a_running_status_whose_process_is_gone_reads_as_error(tmp_path):
    status.start(tmp_path)
    assert status.read(tmp_path)["status"] == "running"  # this process: alive
    written = json.loads((tmp_path / records.STATUS).read_text())
    records.write_json(tmp_path / records.STATUS, {**written, "pid": dead_pid()})
    stale = status.read(tmp_path)
    assert stale["status"] == "error" and stale["stale"] and "is gone" in stale["error"]


def test_a_reused_pid_does_not_pass_for_the_run(tmp_path):
    status.start(tmp_path)
    written = json.loads((tmp_path / records.STATUS).read_text())
    records.write_json(tmp_path / records.STATUS, {**written, "pid_started": written["pid_started"] - 1})
    assert status.read(tmp_path)["status"] == "error"


def test_a_folder_this_process_did_not_claim_gets_no_status(tmp_path):
    status.end(tmp_path, "error", error="refused")
    assert status.read(tmp_path) == {}
