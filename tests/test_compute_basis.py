"""The compute cost basis (bench/analysis/cost_bases.py: Compute) and its FLOP count (bench/analysis/flops.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import save_file

from bench.analysis import cost_bases, flops
from bench.analysis.cost import prices_used
from bench.config import Billing, ModelConfig, Role, SourceKind
from bench.validate import check_billing
from conftest import run_config

HARDWARE = {
    "device_kind": "cpu-2vcpu",
    "usd_per_device_hour": 0.0816,
    "peak_flops_per_device": 1.664e11,
    "peak_flops_source": "spec",
    "price_source": "AWS",
    "price_as_of": "2026-06",
}


def checkpoint(folder, hidden=8, inter=12, layers=2, vocab=10, tied=True, extra=None, **config):
    """A Llama-shaped checkpoint: q/k/v/o, gate/up/down per layer, norms, embeddings."""
    folder.mkdir(parents=True, exist_ok=True)
    t = {
        "model.embed_tokens.weight": np.zeros((vocab, hidden), np.float32),
        "model.norm.weight": np.zeros(hidden, np.float32),
    }
    for i in range(layers):
        p = f"model.layers.{i}."
        for n in ("q", "k", "v", "o"):
            t[p + f"self_attn.{n}_proj.weight"] = np.zeros((hidden, hidden), np.float32)
        t[p + "mlp.gate_proj.weight"] = np.zeros((inter, hidden), np.float32)
        t[p + "mlp.up_proj.weight"] = np.zeros((inter, hidden), np.float32)
        t[p + "mlp.down_proj.weight"] = np.zeros((hidden, inter), np.float32)
        t[p + "input_layernorm.weight"] = np.zeros(hidden, np.float32)
    if not tied:
        t["lm_head.weight"] = np.zeros((vocab, hidden), np.float32)
    t.update(extra or {})
    save_file(t, str(folder / "model.safetensors"))
    cfg = {"hidden_size": hidden, "vocab_size": vocab, "tie_word_embeddings": tied, **config}
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder


def test_flops_per_token_are_twice_the_matrix_parameters_with_the_head_but_not_the_lookup(tmp_path):
    per_layer = 4 * 8 * 8 + 3 * 12 * 8
    tied = flops.count(checkpoint(tmp_path / "tied"))
    assert tied.matmul_params == 2 * per_layer + 10 * 8 and tied.tied_head_params == 10 * 8
    assert tied.per_token == 2 * (2 * per_layer + 10 * 8)
    untied = flops.count(checkpoint(tmp_path / "untied", tied=False))
    assert untied.matmul_params == 2 * per_layer + 10 * 8 and untied.tied_head_params == 0
    # Four times the width: 16 times the matrices.
    wide = flops.count(checkpoint(tmp_path / "wide", hidden=32, inter=48))
    assert wide.matmul_params - 10 * 32 == 16 * 2 * per_layer


def test_an_index_names_the_weight_files_and_an_absent_head_means_a_tied_one(tmp_path):
    folder = checkpoint(tmp_path / "sharded", tied=False)
    expected = flops.count(folder)
    # A consolidated copy beside the shards (as some repositories ship) is not counted twice.
    (folder / "consolidated.safetensors").write_bytes((folder / "model.safetensors").read_bytes())
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"lm_head.weight": "model.safetensors", "model.norm.weight": "model.safetensors"}})
    )
    assert flops.count(folder) == expected
    # No lm_head tensor and no tie_word_embeddings key: the head is the embedding table.
    untagged = checkpoint(tmp_path / "untagged")
    (untagged / "config.json").write_text(json.dumps({"hidden_size": 8}))
    assert flops.count(untagged).tied_head_params == 10 * 8


def test_what_cannot_be_counted_is_refused_with_the_fix(tmp_path):
    with pytest.raises(flops.NotCountable, match="no readable config.json"):
        flops.count(tmp_path / "absent")
    with pytest.raises(flops.NotCountable, match="mixture of experts .*bill it by device_time"):
        flops.count(checkpoint(tmp_path / "moe", num_local_experts=8))
    with pytest.raises(flops.NotCountable, match=r"ffn_config.moe_num_experts=4"):
        flops.count(checkpoint(tmp_path / "nested_moe", ffn_config={"moe_num_experts": 4}))
    with pytest.raises(flops.NotCountable, match="is quantized"):
        flops.count(checkpoint(tmp_path / "gptq", quantization_config={"quant_method": "gptq"}))
    truncated = checkpoint(tmp_path / "lfs")
    (truncated / "model.safetensors").write_text("version https://git-lfs.github.com/spec/v1\n")
    with pytest.raises(flops.NotCountable, match="Git LFS pointer"):
        flops.count(truncated)
    fused = {"model.layers.0.mlp.experts.weight": np.zeros((4, 8, 8), np.float32)}
    with pytest.raises(flops.NotCountable, match=r"shape \[4, 8, 8\]"):
        flops.count(checkpoint(tmp_path / "fused", extra=fused))


def test_the_default_bills_the_zoo_by_compute_and_the_stand_in_by_its_list_prices():
    cfg = run_config([])
    assert {k: m.billing for k, m in cfg.models.items()} == {
        "tiny_teacher": Billing.compute,
        "tiny_student": Billing.compute,
        "tiny_control": Billing.compute,
        "frontier_api": Billing.api_tokens,
    }


def test_a_task_costs_its_tokens_times_flops_at_the_peak_rate(tmp_path):
    folder = checkpoint(tmp_path / "m")
    price = cost_bases.get("compute").price_entry({"source": str(folder)}, HARDWARE)
    per_token = flops.count(folder).per_token
    assert price["flops_per_token"] == per_token and price["basis"] == "compute"
    usage = cost_bases.Usage(prompt_tokens=1000, cached_prompt_tokens=100, completion_tokens=500, serving_s=3.0)
    usd = cost_bases.get("compute").usd(price, usage)
    # Every prompt token is charged, cached or not: prefix-cache hits depend on scheduling.
    assert usd == pytest.approx((1000 + 500) * per_token / 1.664e11 * 0.0816 / 3600, rel=1e-12)
    # The measured serving time plays no part: the bill is the same on a slow run.
    slower = cost_bases.Usage(1000, 100, 500, serving_s=30.0)
    assert cost_bases.get("compute").usd(price, slower) == usd


def test_a_missing_checkpoint_leaves_the_plan_without_a_figure_and_the_bill_with_the_fix(tmp_path):
    basis = cost_bases.get("compute")
    price = basis.price_entry({"source": str(tmp_path / "not_built")}, HARDWARE)
    assert price["flops_per_token"] is None
    assert basis.plan_usd(price, cost_bases.Usage(10, 0, 10, None)) is None
    with pytest.raises(ValueError, match="make zoo, or download the model, first"):
        basis.usd(price, cost_bases.Usage(10, 0, 10, None))


def test_validation_names_what_a_compute_billed_model_lacks():
    hw = run_config([]).hardware
    hub = ModelConfig(name="m", role=Role.student, source="org/m", source_kind=SourceKind.hub, billing=Billing.compute)
    assert "set source_kind=local or billing=device_time" in check_billing("m", hub, hw)[0]
    local = ModelConfig(name="m", role=Role.student, source="x", source_kind=SourceKind.local, billing=Billing.compute)
    assert check_billing("m", local, hw) == []  # not built yet: counted once it is
    no_peak = run_config(["hardware.peak_flops_per_device=null"]).hardware
    (err,) = check_billing("m", local, no_peak)
    assert "has no peak FLOP rate: set hardware.peak_flops_per_device" in err


def test_the_default_run_prices_the_zoo_by_compute_and_the_stand_in_by_tokens(tmp_path):
    from bench.zoo import build

    cfg = run_config([f"zoo_dir={tmp_path / 'zoo'}"])
    build(tmp_path / "zoo")
    from omegaconf import OmegaConf

    from bench.config import as_plain, resolve_model_paths

    prices = prices_used(as_plain(OmegaConf.structured(resolve_model_paths(cfg))))["models"]
    assert prices["frontier_api"]["basis"] == "api_tokens"
    student, teacher = prices["tiny_student"], prices["tiny_teacher"]
    assert student["basis"] == teacher["basis"] == "compute"
    assert student["flops_per_token"] == flops.count(tmp_path / "zoo" / "tiny_student").per_token
    # Served 4x wider, the teacher's token costs about 41x the student's (16x the MLP, wider attention).
    assert 35 < teacher["flops_per_token"] / student["flops_per_token"] < 45


def test_an_interval_over_exact_bases_is_not_called_timed():
    from bench.analysis.cost_intervals import EXACT, ITEMS_ONLY, TIMED, TOKENS, combined_method

    flops_method = cost_bases.get("compute").interval_method
    assert combined_method([TOKENS, flops_method]) == EXACT
    assert combined_method([flops_method, flops_method]) == flops_method
    assert combined_method([TOKENS, TIMED]) == TIMED
    assert combined_method([TOKENS, ITEMS_ONLY]) == ITEMS_ONLY


def test_a_checkpoint_that_cannot_be_counted_fails_validation_before_any_server(tmp_path):
    hw = run_config([]).hardware
    moe = checkpoint(tmp_path / "moe", num_local_experts=8)
    m = ModelConfig(name="m", role=Role.student, source=str(moe), source_kind=SourceKind.local, billing=Billing.compute)
    (err,) = check_billing("m", m, hw)
    assert err.startswith("model 'm' is billed by compute:") and "bill it by device_time" in err
