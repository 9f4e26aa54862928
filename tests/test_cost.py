"""Cost primitives and the Pareto frontier on hand-computed cases."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from bench.analysis.cost import api_usd, device_usd, pareto_optimal, prices_used


def test_device_cost():
    assert device_usd(3600, 8, 2.0) == pytest.approx(16.0)
    assert device_usd(0, 1, 5.0) == 0


def test_api_cost_bills_cached_input_at_its_own_price_and_reasoning_as_output():
    price = {"input": 0.55, "cached_input": 0.14, "output": 2.19}
    # 1M prompt tokens of which 400k cached, 2M completion tokens (reasoning included).
    assert api_usd(1_000_000, 400_000, 2_000_000, price) == pytest.approx(0.6 * 0.55 + 0.4 * 0.14 + 2 * 2.19)
    assert api_usd(10, 10, 0, {"input": 1.0, "cached_input": None, "output": 2.0}) == pytest.approx(10e-6)


@pytest.mark.parametrize(
    "costs,quality,expected",
    [
        ([1, 2, 3], [0.5, 0.6, 0.7], [True, True, True]),  # each dearer one is better
        ([1, 2, 3], [0.7, 0.6, 0.5], [True, False, False]),  # cheapest is best: dominates all
        ([1, 1, 2], [0.5, 0.5, 0.9], [True, True, True]),  # ties dominate nobody
        ([1, 2], [0.5, 0.5], [True, False]),  # same quality, dearer: dominated
        ([1, math.inf], [0.5, 0.0], [True, False]),  # no correct answer: infinite cost
    ],
)
def test_pareto_on_hand_cases(costs, quality, expected):
    assert pareto_optimal(pd.Series(costs, dtype=float), pd.Series(quality)).tolist() == expected


def test_prices_used_records_both_bases_with_sources():
    cfg = {
        "hardware": {
            "device_kind": "H100",
            "count": 8,
            "usd_per_device_hour": 2.49,
            "price_source": "src",
            "price_as_of": "2025-01",
        },
        "models": {
            "a": {
                "name": "a",
                "source_kind": "local",
                "training": {"gpu": "H800", "gpu_hours": 10.0, "usd": 20.0, "source": "paper"},
            },
            "b": {
                "name": "b",
                "source_kind": "api",
                "price": {"input": 1.0, "cached_input": None, "output": 4.0, "source": "list", "as_of": "2025"},
                "training": {"gpu": None, "gpu_hours": None, "usd": None, "source": ""},
            },
        },
    }
    used = prices_used(cfg)["models"]
    assert used["a"]["basis"] == "device_time" and used["a"]["devices"] == 8 and used["a"]["as_of"] == "2025-01"
    assert used["a"]["training"]["gpu_hours"] == 10.0
    assert used["b"] == {
        "basis": "api_tokens",
        "input": 1.0,
        "cached_input": None,
        "output": 4.0,
        "source": "list",
        "as_of": "2025",
    }


def test_price_overrides_from_the_command_line_reach_prices_json():
    from bench.config import as_plain
    from conftest import compose

    cfg = compose(
        [
            "hardware=h100",
            "hardware.usd_per_device_hour=1.80",
            "+model@models.r1=deepseek_r1_api",
            "models.r1.price.output=1.99",
        ]
    )
    used = prices_used(as_plain(cfg))["models"]
    assert used["tiny_teacher"]["usd_per_device_hour"] == 1.80 and used["tiny_teacher"]["device_kind"] == "H100-SXM"
    assert used["deepseek_r1_api"]["output"] == 1.99 and used["deepseek_r1_api"]["input"] == 0.55
    assert used["deepseek_r1_api"]["training"]["gpu_hours"] == 2935000


def test_models_table_shows_reported_training_cost():
    from bench.reporting.sections import models_section as _models_section

    cfg = {"models": {"r1": {"name": "r1", "role": "teacher", "source": "deepseek-reasoner", "description": ""}}}
    prices = {
        "models": {
            "r1": {
                "basis": "api_tokens",
                "input": 0.55,
                "cached_input": 0.14,
                "output": 2.19,
                "source": "docs",
                "as_of": "2025-01",
                "training": {"gpu": "H800", "gpu_hours": 2935000, "usd": 5870000, "source": "report"},
            }
        }
    }
    table = "\n".join(_models_section(cfg, prices))
    assert "2,935,000 H800 GPU-h; $5,870,000; report" in table
    prices["models"]["r1"]["training"] = {"usd": 10.0}
    assert "$10" in "\n".join(_models_section(cfg, prices))


def test_overall_interval_is_for_the_mean_over_tasks_not_the_mean_half_width():
    from bench.analysis.cost import overall_by_model

    summary = pd.DataFrame(
        [
            {
                "model": "m",
                "role": "student",
                "task": t,
                "accuracy": acc,
                "se": se,
                "n": 100,
                "n_correct": round(acc * 100),
                "usd": 1.0,
                "ci95_low": acc - 1.96 * se,
                "ci95_high": acc + 1.96 * se,
            }
            for t, acc, se in (("a", 0.6, 0.04), ("b", 0.8, 0.03))
        ]
    )
    row = overall_by_model(summary).iloc[0]
    se = math.sqrt(0.04**2 + 0.03**2) / 2
    assert row.accuracy == pytest.approx(0.7) and row.se == pytest.approx(se)
    assert (row.ci95_low, row.ci95_high) == pytest.approx((0.7 - 1.959964 * se, 0.7 + 1.959964 * se), abs=1e-6)
    # Narrower than the tasks' mean half-width (1.96 x 0.035), which is no interval for the mean.
    assert (row.ci95_high - row.ci95_low) / 2 < 1.96 * 0.035
    assert row.n_tasks == 2 and row.usd_per_correct == pytest.approx(2.0 / 140)
