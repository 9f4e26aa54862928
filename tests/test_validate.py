"""Bad input fails before any server starts, with one message that names the fix."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.validate import ConfigError, validate
from conftest import ROOT, run_config


def run_bench(tmp_path: Path, *overrides: str) -> tuple[subprocess.CompletedProcess, Path, float]:
    run_dir = tmp_path / "run"
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "run", f"hydra.run.dir={run_dir}", f"run.results_dir={tmp_path}", *overrides],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return proc, run_dir, time.perf_counter() - t0


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["models.tiny_student.source=/no/such/folder"], "no model folder at /no/such/folder"),
        (["suite.tasks=[smoke_arith,smoke_algebra]"], "unknown task 'smoke_algebra'"),
        (["hardware=h100"], "nvidia-smi finds none: use hardware=cpu"),
        (["suite.repeats=0"], "suite.repeats=0: must be at least 1"),
        (["run.only=tiny_tutor"], "run.only=tiny_tutor is not a model of experiment smoke (available: tiny_teacher"),
        (["suite.limit=0"], "suite.limit=0: must be at least 1"),
        (
            [
                "models.tiny_teacher.role=student",
                "models.tiny_student.role=teacher",
                "models.tiny_control.role=teacher",
            ],
            "more than one teacher",
        ),
        (["models.tiny_teacher.mode=chat"], "is scored by log-likelihood but model 'tiny_teacher' is a chat model"),
        (
            [
                "models.tiny_teacher.api.base_url=http://127.0.0.1:9/v1",
                "models.tiny_teacher.api.api_key_env=BENCH_NO_SUCH_KEY",
                "models.tiny_teacher.source_kind=api",
            ],
            "BENCH_NO_SUCH_KEY (its API key) is not set",
        ),
        (["models.tiny_teacher.source_kind=api"], "set models.tiny_teacher.api.base_url"),
        (
            ["+model@models.o1=o1_api", "models.o1.mode=completions", "suite.tasks=[smoke_arith]"],
            "api.client=openai-chat-completions does not match mode=completions",
        ),
        (
            ["models.tiny_teacher.source_kind=api", "models.tiny_teacher.billing=null"],
            "without token prices: set models.tiny_teacher.price.input",
        ),
        (["models.tiny_teacher.source_kind=api"], "is billed by compute but its source_kind is api"),
        (["hardware.peak_flops_per_device=null"], "has no peak FLOP rate: set hardware.peak_flops_per_device"),
    ],
)
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
    from bench.config import resolve_model_paths
    from bench.evaluation.evaluate import task_manager
    from bench.validate import resolve_paths

    cfg = resolve_model_paths(run_config(list(overrides)))
    validate(
        cfg,
        task_manager(resolve_paths(cfg.suite.include_paths), cfg.suite.tasks),
        will_build={"tiny_teacher", "tiny_student", "tiny_control"},
        machine=machine,
    )


@pytest.mark.parametrize(
    "overrides,message",
    [
        (
            ["model@models.teacher=deepseek_r1", "run.only=teacher", "hardware=h100x8"],
            "690 GB of weights over 8 GPU(s) is 86 GB each, but a H100-SXM offers 72 GB",
        ),
        (
            ["hardware=h100", "run.only=r1_distill_qwen_32b"],
            "model 'r1_distill_qwen_32b' needs 2 GPUs (tensor 2 x pipeline 1 x data 1) but hardware=h100 has 1",
        ),
        (
            [
                "hardware=h100x16",
                "model@models.teacher=deepseek_r1_2node",
                "run.only=teacher",
                "models.teacher.serve.distributed_executor_backend=null",
            ],
            "set models.teacher.serve.distributed_executor_backend=ray",
        ),
        (["models.r1_distill_qwen_7b.source=DeepSeek R1 7B"], "source 'DeepSeek R1 7B' is not a hub id"),
        (
            ["+model@models.base=qwen25_math_1p5b", "models.base.generation.max_gen_toks=null"],
            "task r1_aime24's max_gen_toks=32768 leaves no room for the prompt in model 'base' (serve.max_model_len=4096)",
        ),
        (["suite.max_gen_toks=40000", "run.only=r1_distill_qwen_7b"], "suite.max_gen_toks=40000 leaves no room"),
        (
            ["models.qwq_32b_preview.serve.max_model_len=36864", "run.only=qwq_32b_preview"],
            "model 'qwq_32b_preview': serve.max_model_len=36864 is beyond its context of 32768 tokens "
            "(models.qwq_32b_preview.context_length, from its config.json); vLLM refuses to start it unless "
            "VLLM_ALLOW_LONG_MAX_MODEL_LEN=1",
        ),
    ],
)
def test_gpu_configs_are_checked_without_a_gpu(overrides, message):
    with pytest.raises(ConfigError) as err:
        check_offline("experiment=r1_distill", *overrides)
    assert message in str(err.value)


def test_the_hubs_own_config_is_checked_where_the_machine_can_read_it(tmp_path, monkeypatch):
    import json

    from bench.validate import check_hub_context
    from hubcache import fake_repo

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = run_config(["experiment=r1_distill"])
    qwq = cfg.models["qwq_32b_preview"]
    assert check_hub_context("qwq_32b_preview", qwq) == []  # not cached, offline: the preset's figure stands
    fake_repo(tmp_path, "Qwen/QwQ-32B-Preview", {"config.json": json.dumps({"max_position_embeddings": 16384})})
    [wrong, stale] = check_hub_context("qwq_32b_preview", qwq)
    assert (
        "serve.max_model_len=32768 is beyond its context of 16384 tokens (max_position_embeddings in "
        "Qwen/QwQ-32B-Preview's config.json)" in wrong
    )
    assert "context_length=32768 but Qwen/QwQ-32B-Preview's config.json says 16384" in stale


def test_the_r1_comparison_passes_every_check_that_needs_no_machine():
    check_offline("experiment=r1_distill")
    check_offline("experiment=r1_distill", *(f"+model@models.{m}={m}" for m in CURRENT_APIS))
    check_offline("experiment=r1_distill", "model@models.teacher=deepseek_r1", "hardware=h200x8")
    check_offline(
        "experiment=r1_distill", "model@models.teacher=deepseek_r1_2node", "hardware=h100x16", "run.only=teacher"
    )


CURRENT_APIS = ("claude_opus_5_api", "gpt62_sol_api", "deepseek_flash_api")


def check_on(day: str, *overrides: str) -> None:
    """Validate offline as if today were ``day``."""
    import datetime as dt

    from bench.config import resolve_model_paths
    from bench.evaluation.evaluate import task_manager
    from bench.validate import resolve_paths

    cfg = resolve_model_paths(run_config(list(overrides)))
    validate(
        cfg,
        task_manager(resolve_paths(cfg.suite.include_paths), cfg.suite.tasks),
        will_build={"tiny_teacher", "tiny_student", "tiny_control"},
        machine=False,
        today=dt.date.fromisoformat(day),
    )


def test_a_retired_api_model_is_refused_and_its_reported_row_named():
    with pytest.raises(ConfigError) as err:
        check_offline("experiment=r1_distill", "+model@models.o1_mini_api=o1_mini_api")
    message = str(err.value)
    print(message)
    assert "model 'o1_mini_api': 'o1-mini' (o1-mini) was retired on 2025-10-27" in message
    assert "OpenAI deprecations page" in message and "as of 2026-08-20" in message
    assert "the report shows the paper's reported row 'o1-mini' for it" in message
    assert "Drop it from the run (~model@models.o1_mini_api)" in message
    assert "current API preset (available: claude_opus_5_api, deepseek_flash_api" in message


def test_an_alias_that_moved_on_to_another_model_is_refused():
    # Before its retirement, deepseek-reasoner already answered with another model than R1.
    with pytest.raises(ConfigError) as err:
        check_on("2026-01-15", "experiment=r1_distill", "model@models.teacher=deepseek_r1_api")
    assert (
        "'deepseek-reasoner' has served another model than DeepSeek-R1 (January 2025 release) since 2025-05-28"
    ) in str(err.value)
    assert "reported row 'DeepSeek-R1'" in str(err.value)
    with pytest.raises(ConfigError, match="was retired on 2026-07-24, and from 2025-05-28 it no longer served"):
        check_offline("experiment=r1_distill", "model@models.teacher=deepseek_r1_api")
    check_on("2025-03-01", "experiment=r1_distill", "model@models.teacher=deepseek_r1_api")  # R1 then


def test_retirement_is_checked_against_the_day_of_the_run():
    check_on("2026-10-22", "experiment=r1_distill", "+model@models.o1=o1_api")  # its last day
    with pytest.raises(ConfigError, match="was retired on 2026-10-23"):
        check_on("2026-10-23", "experiment=r1_distill", "+model@models.o1=o1_api")
    with pytest.raises(ConfigError, match="is available only from 2026-07-24"):
        check_on("2026-07-01", "experiment=r1_distill", "+model@models.opus=claude_opus_5_api")


def test_the_offline_stand_in_billed_at_a_retired_price_is_not_refused(zoo_dir):
    """frontier_api is tiny_teacher served here, billed at o1's list price: only models called
    through an API are refused when their id is retired."""
    check_offline("experiment=smoke", f"zoo_dir={zoo_dir}")


def test_a_lifecycle_date_must_be_a_date():
    with pytest.raises(ConfigError, match="lifecycle.retired_on must be a date written YYYY-MM-DD"):
        check_offline(
            "experiment=r1_distill", "+model@models.g=gpt62_sol_api", "models.g.lifecycle.retired_on=next year"
        )


def test_machine_checks_find_no_gpu_and_no_keys_here(monkeypatch):
    from bench.serving.serve import visible_gpus

    if visible_gpus(os.environ):
        pytest.skip("this machine has a GPU")
    for env in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "DEEPSEEK_API_KEY"):
        monkeypatch.delenv(env, raising=False)
    with pytest.raises(ConfigError) as err:
        check_offline("experiment=r1_distill", "+model@models.gpt=gpt62_sol_api", machine=True)
    assert "hardware=h200x8 asks for CUDA GPUs but" in str(err.value)
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
    (tasks / "empty.yaml").write_text(
        text.replace("task: smoke_arith", "task: empty_arith")
        .replace("arith.jsonl", "empty.jsonl")
        .replace("tag: smoke\n", "")
    )
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
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "run", f"run.results_dir={results}", f"experiment.name={name}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
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
    proc, run_dir, seconds = run_bench(
        tmp_path, "run.only=tiny_student", "suite.tasks=[smoke_arith]", "suite.num_fewshot=20", "suite.limit=3"
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "does not fit model 'tiny_student' (serve.max_model_len=128" in out
    assert "starting its vLLM server" not in out and not run_dir.exists()


PRESETS = sorted(p.stem for p in (ROOT / "conf" / "model").glob("*.yaml"))


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_is_refused_past_its_context_or_from_its_retirement(preset, zoo_dir):
    """Self-hosted presets: a max_model_len one past the model's context (the preset's
    context_length, or the local folder's config.json) is refused with its message, the
    context itself is not. API presets: refused from the day they are retired (or serve
    another model), not the day before."""
    import datetime as dt
    import json
    from pathlib import Path

    from bench.config import SourceKind
    from bench.validate import check_context, check_lifecycle

    m = run_config([f"zoo_dir={zoo_dir}", f"+model@models.x={preset}"]).models["x"]
    if m.source_kind != SourceKind.api:
        context = (
            m.context_length
            if m.source_kind == SourceKind.hub
            else json.loads((Path(m.source) / "config.json").read_text())["max_position_embeddings"]
        )
        assert context and m.serve.max_model_len <= context, preset
        m.serve.max_model_len = context
        assert check_context("x", m) == []
        m.serve.max_model_len = context + 1
        [message] = check_context("x", m)
        assert message.startswith(
            f"model 'x': serve.max_model_len={context + 1} is beyond its context of {context} tokens ("
        )
        assert "unless VLLM_ALLOW_LONG_MAX_MODEL_LEN=1" in message
        assert f"set models.x.serve.max_model_len to at most {context}" in message
        return
    lc = m.lifecycle
    ends = [dt.date.fromisoformat(d) for d in (lc.changed_on, lc.retired_on) if d]
    if not ends:  # current: usable on the day this was written, and later (no end date known)
        assert check_lifecycle("x", m, dt.date(2026, 11, 29)) == [], preset
        return
    end = min(ends)
    assert check_lifecycle("x", m, end - dt.timedelta(days=1)) == [], preset
    [message] = check_lifecycle("x", m, end)
    said = (
        f"was retired on {lc.retired_on}"
        if end == dt.date.fromisoformat(lc.retired_on or "9999-12-31")
        else f"has served another model than {lc.serves} since {lc.changed_on}"
    )
    assert message.startswith(f"model 'x': {m.source!r}") and said in message, message
    assert "~model@models.x" in message


def test_validation_leaves_the_config_it_checks_as_it_was():
    """validate() only reads: resolving a local model's relative path is resolve_model_paths'
    job, which returns a new config."""
    from omegaconf import OmegaConf

    from bench.config import as_plain, resolve_model_paths
    from bench.evaluation.evaluate import task_manager
    from bench.validate import resolve_paths
    from bench.zoo import zoo_models

    cfg = run_config(["zoo_dir=zoo"])  # the zoo's models under a relative path
    assert not Path(cfg.models["tiny_teacher"].source).is_absolute()
    before = as_plain(OmegaConf.structured(cfg))
    tm = task_manager(resolve_paths(cfg.suite.include_paths), cfg.suite.tasks)
    validate(cfg, tm, will_build=set(zoo_models(cfg)), machine=False)
    assert as_plain(OmegaConf.structured(cfg)) == before

    resolved = resolve_model_paths(cfg)
    assert as_plain(OmegaConf.structured(cfg)) == before
    assert resolved.models["tiny_teacher"].source == str(Path("zoo", "tiny_teacher").resolve())
