"""Bad input fails before any server starts, with one message that names the fix."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.validate import ConfigError, validate
from conftest import ROOT, compose


def run_bench(tmp_path: Path, *overrides: str) -> tuple[subprocess.CompletedProcess, Path, float]:
    run_dir = tmp_path / "run"
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "bench", "run", f"hydra.run.dir={run_dir}",
                           f"run.results_dir={tmp_path}", *overrides],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    return proc, run_dir, time.perf_counter() - t0


@pytest.mark.parametrize("overrides,message", [
    (["models.tiny_student.source=/no/such/folder"], "no model folder at /no/such/folder"),
    (["suite.tasks=[smoke_arith,smoke_algebra]"], "unknown task 'smoke_algebra'"),
    (["hardware=h100"], "nvidia-smi finds none: use hardware=cpu"),
    (["suite.repeats=0"], "suite.repeats=0: must be at least 1"),
    (["run.only=tiny_tutor"], "run.only=tiny_tutor is not a model of experiment smoke (available: tiny_teacher"),
    (["suite.limit=0"], "suite.limit=0: must be at least 1"),
    (["models.tiny_teacher.role=student", "models.tiny_student.role=teacher", "models.tiny_control.role=teacher"],
     "more than one teacher"),
    (["models.tiny_teacher.mode=chat"], "is scored by log-likelihood but model 'tiny_teacher' is a chat model"),
    (["models.tiny_teacher.api.base_url=http://127.0.0.1:9/v1", "models.tiny_teacher.api.api_key_env=BENCH_NO_SUCH_KEY",
      "models.tiny_teacher.source_kind=api"], "BENCH_NO_SUCH_KEY (its API key) is not set"),
    (["models.tiny_teacher.source_kind=api"], "set models.tiny_teacher.api.base_url"),
    (["+model@models.o1=o1_api", "models.o1.mode=completions", "suite.tasks=[smoke_arith]"],
     "api.client=openai-chat-completions does not match mode=completions"),
    (["models.tiny_teacher.source_kind=api"], "without token prices: set models.tiny_teacher.price.input"),
])
def test_bad_input_fails_before_any_server(tmp_path, zoo_dir, overrides, message):
    proc, run_dir, seconds = run_bench(tmp_path, *overrides)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert message in out
    assert not run_dir.exists(), "a refused run leaves no folder behind"


def test_unknown_config_option_lists_the_available_ones(tmp_path):
    proc, _, _ = run_bench(tmp_path, "+model@models.x=llama9")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out  # a config Hydra cannot compose is a config error too
    assert "llama9" in out and "tiny_teacher" in out and "tiny_student" in out


def check_offline(*overrides: str, machine: bool = False) -> None:
    """Validate in-process, as `bench plan` does (machine=False: no GPU or API key checks)."""
    from omegaconf import OmegaConf

    from bench.evaluate import task_manager
    from bench.validate import resolve_paths

    cfg = OmegaConf.to_object(compose(list(overrides)))
    validate(cfg, task_manager(resolve_paths(cfg.suite.include_paths), cfg.suite.tasks),
             will_build={"tiny_teacher", "tiny_student", "tiny_control"}, machine=machine)


@pytest.mark.parametrize("overrides,message", [
    (["model@models.teacher=deepseek_r1", "run.only=teacher"],
     "690 GB of weights over 8 GPU(s) is 86 GB each, but a H100-SXM offers 72 GB"),
    (["hardware=h100", "run.only=r1_distill_qwen_32b"],
     "model 'r1_distill_qwen_32b' needs 2 GPUs (tensor 2 x pipeline 1 x data 1) but hardware=h100 has 1"),
    (["hardware=h100x16", "model@models.teacher=deepseek_r1_2node", "run.only=teacher",
      "models.teacher.serve.distributed_executor_backend=null"],
     "set models.teacher.serve.distributed_executor_backend=ray"),
    (["models.r1_distill_qwen_7b.source=DeepSeek R1 7B"], "source 'DeepSeek R1 7B' is not a hub id"),
    (["+model@models.base=qwen25_math_1p5b", "models.base.generation.max_gen_toks=null"],
     "task r1_aime24's max_gen_toks=32768 leaves no room for the prompt in model 'base' (serve.max_model_len=4096)"),
    (["suite.max_gen_toks=40000", "run.only=r1_distill_qwen_7b"], "suite.max_gen_toks=40000 leaves no room"),
])
def test_gpu_configs_are_checked_without_a_gpu(overrides, message):
    with pytest.raises(ConfigError) as err:
        check_offline("experiment=r1_distill", *overrides)
    assert message in str(err.value)


def test_the_r1_comparison_passes_every_check_that_needs_no_machine():
    check_offline("experiment=r1_distill")
    check_offline("experiment=r1_distill", "model@models.teacher=deepseek_r1", "hardware=h200x8")
    check_offline("experiment=r1_distill", "model@models.teacher=deepseek_r1_2node", "hardware=h100x16",
                  "run.only=teacher")


def test_machine_checks_find_no_gpu_and_no_keys_here(monkeypatch):
    from bench.serve import visible_gpus

    if visible_gpus(os.environ):
        pytest.skip("this machine has a GPU")
    for env in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "DEEPSEEK_API_KEY"):
        monkeypatch.delenv(env, raising=False)
    with pytest.raises(ConfigError) as err:
        check_offline("experiment=r1_distill", machine=True)
    assert "hardware=h100x8 asks for CUDA GPUs but" in str(err.value)
    assert "OPENAI_API_KEY (its API key) is not set" in str(err.value)


def test_port_in_use_fails_before_any_server(tmp_path, zoo_dir):
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        proc, run_dir, _ = run_bench(tmp_path, f"models.tiny_student.serve.port={port}")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert f"port {port} on 127.0.0.1 is in use" in out and "unset models.tiny_student.serve.port" in out
    assert not (run_dir / "servers").exists()


def test_context_beyond_the_models_own_fails_before_any_server(tmp_path, zoo_dir):
    import json

    trained = json.loads((zoo_dir / "tiny_student" / "config.json").read_text())["max_position_embeddings"]
    proc, run_dir, _ = run_bench(tmp_path, f"models.tiny_student.serve.max_model_len={trained * 2}")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert f"is beyond its context of {trained} tokens" in out
    assert not (run_dir / "servers").exists()


def test_a_task_without_items_fails_before_any_server(tmp_path, zoo_dir):
    import shutil

    tasks = tmp_path / "tasks"
    tasks.mkdir()
    shutil.copy(ROOT / "bench" / "tasks" / "smoke" / "data.py", tasks / "data.py")
    text = (ROOT / "bench" / "tasks" / "smoke" / "arith.yaml").read_text()
    (tasks / "empty.yaml").write_text(text.replace("task: smoke_arith", "task: empty_arith")
                                      .replace("arith.jsonl", "empty.jsonl").replace("tag: smoke\n", ""))
    (tasks / "empty.jsonl").write_text("")
    proc, run_dir, _ = run_bench(tmp_path, f"suite.include_paths=[{tasks}]", "suite.tasks=[empty_arith]")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "task 'empty_arith' of suite 'smoke' has no items" in out
    assert not (run_dir / "servers").exists()


def test_unknown_suite_lists_the_available_ones(tmp_path):
    proc, run_dir, _ = run_bench(tmp_path, "suite=smoek")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "smoek" in out and "smoke" in out and "r1" in out
    assert not (run_dir / "servers").exists()


def test_an_unknown_key_exits_2(tmp_path):
    proc, run_dir, _ = run_bench(tmp_path, "run.num_concurent=8")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "num_concurent" in out and not run_dir.exists()


@pytest.mark.parametrize("name", ["../../escaped", "/tmp/escaped", "a/../../escaped"])
def test_an_experiment_name_that_leaves_the_results_folder_is_refused(tmp_path, name):
    results = tmp_path / "results"
    proc = subprocess.run([sys.executable, "-m", "bench", "run", f"run.results_dir={results}",
                           f"experiment.name={name}"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "would name a path outside run.results_dir" in out
    assert not (tmp_path / "escaped").exists() and not any(results.rglob("*"))


def test_a_model_name_that_is_not_a_plain_file_name_is_refused(tmp_path, zoo_dir):
    proc, run_dir, _ = run_bench(tmp_path, "models.tiny_student.name=../../student")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "models.tiny_student.name='../../student' would name a path outside" in out
    assert not run_dir.exists() and not (tmp_path.parent / "student.log").exists()


def test_a_misspelt_folder_in_the_zoo_is_caught_before_any_server(tmp_path, zoo_dir):
    proc, run_dir, _ = run_bench(tmp_path, "models.tiny_student.source=${zoo_dir}/tiny_studnet")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "no model folder at" in out and "tiny_studnet" in out
    assert "Repo id" not in out and not run_dir.exists()


def own_task(tmp_path: Path, name: str = "my_arith") -> Path:
    """A copy of the smoke arithmetic task under another name, in a folder of its own."""
    import shutil

    tasks = tmp_path / "tasks"
    tasks.mkdir()
    for f in ("data.py", "arith.jsonl"):
        shutil.copy(ROOT / "bench" / "tasks" / "smoke" / f, tasks / f)
    text = (ROOT / "bench" / "tasks" / "smoke" / "arith.yaml").read_text()
    (tasks / "arith.yaml").write_text(text.replace("task: smoke_arith", f"task: {name}").replace("tag: smoke\n", ""))
    return tasks


def test_a_task_yaml_syntax_error_shows_the_parser_error_with_file_and_line(tmp_path, zoo_dir):
    tasks = own_task(tmp_path)
    yaml = tasks / "arith.yaml"
    lines = yaml.read_text().splitlines()
    bad = next(i for i, line in enumerate(lines) if line.startswith("doc_to_text:"))
    lines[bad] = 'doc_to_text: "{{question}}'  # an unclosed quote
    yaml.write_text("\n".join(lines) + "\n")
    proc, run_dir, _ = run_bench(tmp_path, f"suite.include_paths=[{tasks}]", "suite.tasks=[my_arith]")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert f"task file {yaml}, line " in out and "YAML syntax error" in out
    assert not run_dir.exists()


def test_a_bad_jsonl_line_is_named_with_its_file_and_line(tmp_path, zoo_dir):
    tasks = own_task(tmp_path)
    data = tasks / "arith.jsonl"
    lines = data.read_text().splitlines()
    lines[6] = lines[6][:-1]  # a line cut short
    data.write_text("\n".join(lines) + "\n")
    proc, run_dir, _ = run_bench(tmp_path, f"suite.include_paths=[{tasks}]", "suite.tasks=[my_arith]")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert f"{data}, line 7: not valid JSON" in out
    assert not run_dir.exists()


def test_a_prompt_longer_than_the_context_fails_before_any_server(tmp_path, zoo_dir):
    # Twenty worked examples in front of each question: about 240 characters, and the tiny
    # models' tokenizer has one token per character, against serve.max_model_len=128.
    proc, run_dir, seconds = run_bench(tmp_path, "run.only=tiny_student", "suite.tasks=[smoke_arith]",
                                       "suite.num_fewshot=20", "suite.limit=3")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "does not fit model 'tiny_student' (serve.max_model_len=128" in out
    assert "starting its vLLM server" not in out and not run_dir.exists()
