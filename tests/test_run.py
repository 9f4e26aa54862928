"""`bench run` under real use: two runs at once, a full disk, a run whose process died, Ctrl-C
while a server starts. Most use a stand-in endpoint (no model); the e2e ones serve tiny_student."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.rundir import records, status
from conftest import ROOT
from fake_openai import api_only_run, fake_endpoint
from test_status import dead_pid

SAME_SECOND = "hydra.run.dir='${bench.run_folder:${run.results_dir},smoke,same-second}'"
"""The default run folder with the time fixed: two runs started in the same second."""


def bench(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "bench", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=interruptible,
        **kwargs,
    )


def interruptible() -> None:
    """Ctrl-C as a terminal's foreground job gets it: a shell that starts the test session in the
    background (`make test &`) leaves SIGINT ignored, and children inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def finish(proc: subprocess.Popen, timeout: float = 900) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


def run_folders(results: Path) -> list[Path]:
    return sorted(p.parent for p in results.glob("smoke/*/config.json"))


def verify(run_dir: Path) -> tuple[int, str]:
    return finish(bench("verify", str(run_dir)), timeout=300)


def cache_keys(results: Path) -> list[str]:
    return [json.loads(line)["k"] for f in (results / "cache").glob("*.jsonl") for line in f.read_text().splitlines()]


def test_two_runs_started_in_the_same_second_get_their_own_folders_and_share_the_cache(tmp_path):
    results = tmp_path / "results"
    with fake_endpoint() as (base, seen):
        procs = [bench("run", *api_only_run(base), f"run.results_dir={results}", SAME_SECOND) for _ in range(2)]
        done = [finish(p) for p in procs]
    for code, out in done:
        assert code == 0, out[-3000:]
    folders = run_folders(results)
    assert len(folders) == 2 and all(f.name.startswith("same-second_") for f in folders)
    for folder in folders:
        code, out = verify(folder)
        assert code == 0, out
        assert len(records.read_jsonl(folder / records.SAMPLES)) == 3
    keys = cache_keys(results)
    assert len(keys) == len(set(keys)) == 3  # each answer stored once, whoever asked first


@pytest.mark.e2e
def test_two_real_runs_at_once_both_succeed_and_verify(tmp_path, zoo_dir):
    results = tmp_path / "results"
    procs = [
        bench(
            "run",
            "run.only=tiny_student",
            "suite.limit=5",
            f"run.results_dir={results}",
            "run.teacher_recognition=false",
            SAME_SECOND,
        )
        for _ in range(2)
    ]
    for code, out in [finish(p, timeout=1800) for p in procs]:
        assert code == 0, out[-3000:]
    folders = run_folders(results)
    assert len(folders) == 2
    for folder in folders:
        code, out = verify(folder)
        assert code == 0, out
        assert len(records.read_jsonl(folder / records.SAMPLES)) == 15  # 3 tasks x 5 items, not mixed
    keys = cache_keys(results)
    # The choice task asks once per option; each answer and each of its 5 timing replays stored once.
    assert len(keys) == len(set(keys)) == (5 + 5 + 5 * 4) * (1 + 5)


def test_a_run_whose_process_died_reads_as_failed_in_report_and_verify(tmp_path):
    results = tmp_path / "results"
    with fake_endpoint() as (base, _):
        code, out = finish(bench("run", *api_only_run(base), f"run.results_dir={results}"))
    assert code == 0, out[-3000:]
    (run_dir,) = run_folders(results)
    running = {"status": "running", "started_at": time.time(), "pid": dead_pid(), "host": socket.gethostname()}
    records.write_json(run_dir / records.STATUS, running)
    code, out = verify(run_dir)
    assert code == 1 and "run status is 'error'" in out and "is gone" in out
    code, out = finish(bench("report", str(run_dir)), timeout=300)
    assert code != 0 and "status: error" in out


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB file system (tmpfs; needs root), unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if (
        os.geteuid() != 0
        or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True
        ).returncode
        != 0
    ):
        pytest.skip("mounting a small tmpfs needs root")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def fill(disk: Path, leave: int) -> None:
    st = os.statvfs(disk)
    (disk / "filler").write_bytes(b"\0" * (st.f_bavail * st.f_frsize - leave))


@pytest.mark.parametrize("free_kb", [40, 100, 200])
def test_a_full_disk_fails_with_one_message_naming_the_file(small_disk, free_kb):
    fill(small_disk, free_kb * 1024)
    results = small_disk / "results"
    with fake_endpoint() as (base, _):
        code, out = finish(bench("run", *api_only_run(base), f"run.results_dir={results}"))
    assert code == 1, out[-3000:]
    failed = [line for line in out.splitlines() if "run failed" in line]
    assert len(failed) == 1 and f"no space left to write {results}/" in failed[0], out[-3000:]
    assert "bytes and" in failed[0] and "are free there" in failed[0]
    assert "Logging error" not in out and "Traceback" not in out
    (run_dir,) = run_folders(results)
    assert status.read(run_dir).get("status") != "success"
    assert verify(run_dir)[0] == 1
    for path in (results / "cache").glob("*.jsonl"):  # no torn line left behind
        assert all(json.loads(line) for line in path.read_text().splitlines())


@pytest.mark.e2e
def test_ctrl_c_while_a_server_starts_stops_it_at_once_and_cleanly(tmp_path, zoo_dir):
    from test_serve import vllm_children

    results = tmp_path / "results"
    proc = bench(
        "run",
        "run.only=tiny_student",
        "suite.limit=3",
        f"run.results_dir={results}",
        "run.reuse_cache=false",
        start_new_session=True,
    )
    seen = ""
    while "starting its vLLM server" not in seen:
        line = proc.stdout.readline()
        assert line, "the run ended before its server started"
        seen += line
    time.sleep(25)  # well into start-up: vLLM answers SIGTERM only once its engine is up
    assert vllm_children(results), "no server is starting"
    t0 = time.perf_counter()
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C sends to the terminal's foreground group
    code, out = finish(proc, timeout=120)
    seconds = time.perf_counter() - t0
    assert code == 130, out
    assert seconds < 12, f"took {seconds:.0f}s to stop"
    assert "Traceback" not in out and "exception was never retrieved" not in out, out
    assert not vllm_children(results)
    (run_dir,) = run_folders(results)
    assert status.read(run_dir)["status"] == "cancelled"
