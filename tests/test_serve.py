"""The vLLM server wrapper: exact command lines, and a real failing start that cleans up."""

from __future__ import annotations

import json
import time
from pathlib import Path

import psutil
import pytest
from omegaconf import OmegaConf

from bench.serve import TAG_ENV, ServerError, VllmServer, server_command
from conftest import compose


def model(overrides: list[str] | None = None, key: str = "tiny_teacher"):
    return OmegaConf.to_object(compose(overrides)).models[key]


def test_command_line_carries_the_serving_config():
    m = model(["models.tiny_teacher.serve.tensor_parallel_size=8", "models.tiny_teacher.serve.data_parallel_size=2",
               "models.tiny_teacher.serve.revision=abc123", "models.tiny_teacher.serve.dtype=bfloat16",
               "models.tiny_teacher.serve.extra_args=[--max-num-seqs,64]"])
    cmd = server_command(m, "127.0.0.1", 8123, seed=7)
    assert cmd[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
    pairs = dict(zip(cmd, cmd[1:]))
    assert pairs["--model"] == m.source and pairs["--served-model-name"] == "tiny_teacher"
    assert pairs["--port"] == "8123" and pairs["--host"] == "127.0.0.1"
    assert pairs["--tensor-parallel-size"] == "8" and pairs["--data-parallel-size"] == "2"
    assert pairs["--revision"] == "abc123" and pairs["--dtype"] == "bfloat16"
    assert pairs["--max-model-len"] == "128" and pairs["--seed"] == "7"
    assert pairs["--generation-config"] == "vllm"
    assert "--enforce-eager" in cmd
    assert cmd[-2:] == ["--max-num-seqs", "64"]


def test_single_device_command_has_no_data_parallel_flag():
    cmd = server_command(model(), "127.0.0.1", 1, seed=0)
    assert "--data-parallel-size" not in cmd


def vllm_children(under: Path) -> list[psutil.Process]:
    """Live processes (API server, engine, workers) of servers whose log lies under ``under``."""
    prefix = str(under.resolve())
    found = []
    for p in psutil.process_iter():
        try:
            if p.environ().get(TAG_ENV, "").startswith(prefix) and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def test_a_server_that_dies_at_start_raises_with_its_log_and_leaves_nothing(tmp_path):
    broken = tmp_path / "broken_model"
    broken.mkdir()
    (broken / "config.json").write_text(json.dumps({"model_type": "no_such_architecture"}))
    m = model([f"models.tiny_teacher.source={broken}", "models.tiny_teacher.serve.startup_timeout_s=240"])
    log = tmp_path / "server.log"
    t0 = time.perf_counter()
    with pytest.raises(ServerError) as err:
        with VllmServer(m, log):
            pytest.fail("a broken model folder must not become ready")
    assert "exited with code" in str(err.value)
    assert "last lines of" in str(err.value) and str(log) in str(err.value)
    assert time.perf_counter() - t0 < 240  # it failed fast, not by time-out
    assert log.read_text().startswith("$ ")  # the exact command is at the top of the log
    assert not vllm_children(tmp_path)
