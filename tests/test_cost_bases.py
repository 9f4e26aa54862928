"""Cost bases are one registry: every stage asks the basis a price names, and a new basis is one class."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from hydra.errors import ConfigCompositionException

from bench.analysis import cost_bases, cost_intervals
from bench.analysis.summarize import summarize
from bench.config import Billing, ModelConfig, Role, SourceKind
from bench.reporting import sections
from bench.reporting.paper import methods
from bench.validate import check_billing
from conftest import compose, run_config


def test_an_unknown_basis_names_the_registered_ones():
    with pytest.raises(
        cost_bases.UnknownCostBasis,
        match=r"unknown cost basis 'per_call' \(available: "
        r"device_time, api_tokens, compute\)",
    ):
        cost_bases.get("per_call")


def test_a_model_is_billed_by_its_billing_else_by_where_it_is_served():
    assert cost_bases.for_model({"source_kind": "api", "billing": None}).name == "api_tokens"
    assert cost_bases.for_model({"source_kind": "hub"}).name == "device_time"
    assert cost_bases.for_model({"source_kind": "local", "billing": "api_tokens"}).name == "api_tokens"
    m = ModelConfig(name="m", role=Role.student, source="x", source_kind=SourceKind.local, billing=Billing.api_tokens)
    assert cost_bases.for_model(m).name == "api_tokens"


def test_the_config_accepts_exactly_the_registered_bases():
    assert [b.value for b in Billing] == list(cost_bases.names())
    with pytest.raises(ConfigCompositionException, match="billing=per_call") as err:
        compose(["models.tiny_teacher.billing=per_call"])
    assert "expected one of [device_time, api_tokens, compute]" in str(err.value.__cause__)


def test_validation_asks_the_basis():
    hw = run_config([]).hardware
    unknown = ModelConfig(name="m", role=Role.student, source="x", billing="per_call")
    assert check_billing("m", unknown, hw) == [
        "model 'm': unknown cost basis 'per_call' (available: device_time, api_tokens, compute)"
    ]
    # A self-hosted stand-in billed by tokens needs the token prices as much as an API model does.
    stand_in = ModelConfig(name="m", role=Role.baseline, source="x", billing=Billing.api_tokens)
    assert (
        "is billed by API tokens without token prices: set models.m.price.input" in check_billing("m", stand_in, hw)[0]
    )
    assert check_billing("m", ModelConfig(name="m", role=Role.student, source="x"), hw) == []


class PerRequest(cost_bases.CostBasis):
    """A flat fee per HTTP request: the kind of basis a new vendor might need."""

    name = "per_request"
    description = "for a per-request model, its requests x its fee"
    billed_by_time = False
    interval_method = "exact requests + items"

    def price_entry(self, model, hardware):
        return {"basis": self.name, "usd_per_request": model["price"]["input"]}

    def usd(self, price, usage):
        return usage.requests * price["usd_per_request"]

    def steady_usd_per_1m(self, price, work, generated):
        return work.usd / work.tokens * 1e6 if work.tokens else math.nan

    def priced_as(self, price):
        return f"${price['usd_per_request']} per request"

    def methods_clause(self, prices):
        return (
            "Per-request models cost a flat fee ("
            + "; ".join(f"{name}: ${p['usd_per_request']}" for name, p in prices.items())
            + ")"
        )


def test_a_new_basis_is_one_class_that_every_stage_asks(monkeypatch):
    monkeypatch.setitem(cost_bases._REGISTRY, PerRequest.name, PerRequest())
    samples = pd.DataFrame(
        {
            "model": "m",
            "role": "student",
            "task": "t",
            "doc_id": [0, 1, 2],
            "metric": "exact_match",
            "correct": [1.0, 0.0, 1.0],
            "prompt_tokens": 10,
            "completion_tokens": 5,
            "reasoning_tokens": 0,
            "reasoning_closed": None,
            "finish_reason": "stop",
            "latency_s": 0.5,
            "n_requests": [1, 1, 2],
        }
    )
    task_runs = pd.DataFrame({"model": ["m"], "task": ["t"], "serving_s": [10.0]})
    prices = {"models": {"m": PerRequest().price_entry({"price": {"input": 0.01}}, {})}}
    row = summarize(samples, task_runs, prices).iloc[0]
    assert row.cost_basis == "per_request" and row.usd == pytest.approx(4 * 0.01)
    assert math.isnan(row.device_s)
    assert row.steady_usd_per_1m_generated_tokens == pytest.approx(0.04 / 15 * 1e6)
    reps = cost_intervals.bootstrap(samples, pd.DataFrame([row]), seed=0, n_boot=20)
    assert reps.method[("m", "t")] == "exact requests + items"
    cfg = {
        "models": {"m": {"name": "m", "role": "student", "source": "x"}},
        "suite": {"name": "s", "tasks": ["t"], "limit": None, "repeats": 1},
    }
    assert "$0.01 per request" in "\n".join(sections.models_section(cfg, prices))
    assert "Per-request models cost a flat fee (m: $0.01)." in methods(cfg, prices, {}, {})
    assert "its requests x its fee" in "\n".join(sections.reading_notes())
