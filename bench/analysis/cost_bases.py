"""Cost bases: how a model's $ is worked out, one class per basis, registered by name (pure, but
for ``Compute.price_entry`` and ``Compute.config_errors``, which read a checkpoint's headers).

A model's ``billing`` names its basis; without one, the basis whose ``default_for`` holds its
``source_kind`` applies. ``bench run`` writes each model's prices to ``prices.json`` with
``"basis": NAME``, and every later stage (summary, cost intervals, report, paper) looks that
name up here, as ``bench plan`` and the config checks do for a model config. Adding a basis is
one class here; ``bench.config.Billing`` is built from this registry, so the YAML can name it.

Nothing outside this file compares a basis name as a string: it asks the basis instead.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from bench.analysis import flops


class UnknownCostBasis(ValueError):
    """A basis name that no class here registers (a typo, or a run folder from a newer version)."""


@dataclass(frozen=True)
class Usage:
    """What one model x task consumed: token and request counts from the records, serving time
    from its task record (``bench plan`` passes its estimates; ``serving_s`` None when it has none)."""

    prompt_tokens: float
    cached_prompt_tokens: float
    completion_tokens: float
    serving_s: float | None
    requests: float = 0


@dataclass(frozen=True)
class Work:
    """A model's tasks of one kind (generation or log-likelihood scoring), summed."""

    tasks: int
    tokens: float
    """Generated tokens (generation) or processed, prompt + continuation, tokens (scoring)."""
    serving_s: float
    usd: float


def device_usd(seconds: float, devices: int, usd_per_device_hour: float) -> float:
    return seconds * devices * usd_per_device_hour / 3600.0


def api_usd(
    prompt_tokens: float, cached_prompt_tokens: float, completion_tokens: float, price: Mapping[str, Any]
) -> float:
    cached_price = price.get("cached_input")
    if cached_price is None:
        cached_price = price["input"]
    fresh = prompt_tokens - cached_prompt_tokens
    return (fresh * price["input"] + cached_prompt_tokens * cached_price + completion_tokens * price["output"]) / 1e6


class CostBasis(ABC):
    """One way of billing a model. ``price`` arguments are the model's ``prices.json`` entry;
    a subclass that leaves an abstract method out fails when it is registered."""

    name: ClassVar[str]
    default_for: ClassVar[tuple[str, ...]] = ()
    """Source kinds billed this way when a model names no ``billing``."""
    description: ClassVar[str]
    """How a task's $ is computed, as the report's reading notes say it."""
    billed_by_time: ClassVar[bool]
    """Whether $ scales with measured serving time (its cost interval then resamples throughput)."""
    vendor_priced: ClassVar[bool] = False
    """Billed at a vendor's list prices: such a baseline stands for the frontier API in the headline."""
    interval_method: ClassVar[str | None] = None
    """``cost_ci_method`` of a basis whose $ is exact in the records (None: time-billed)."""
    interval_note: ClassVar[str] = ""
    """The headline's note on that method."""

    @abstractmethod
    def price_entry(self, model: Mapping[str, Any], hardware: Mapping[str, Any]) -> dict[str, Any]:
        """The model's entry in ``prices.json`` (a resolved model config and hardware preset)."""
        raise NotImplementedError

    @abstractmethod
    def usd(self, price: Mapping[str, Any], usage: Usage) -> float:
        """$ of one model x task."""
        raise NotImplementedError

    def device_seconds(self, price: Mapping[str, Any], serving_s: float) -> float:
        """Device-seconds billed for ``serving_s`` seconds of serving (NaN where time is not billed)."""
        return math.nan

    @abstractmethod
    def steady_usd_per_1m(self, price: Mapping[str, Any], work: Work, generated: bool) -> float:
        """Steady-state $ per 1M generated (``generated``) or processed tokens over ``work``."""
        raise NotImplementedError

    def plan_usd(self, price: Mapping[str, Any], usage: Usage) -> float | None:
        """One end of ``bench plan``'s $ estimate; None when it needs a figure the plan lacks."""
        if self.billed_by_time and usage.serving_s is None:
            return None
        return self.usd(price, usage)

    @abstractmethod
    def priced_as(self, price: Mapping[str, Any]) -> str:
        """The report's "priced as" cell for one model."""
        raise NotImplementedError

    def hardware_line(self, prices: list[Mapping[str, Any]]) -> str | None:
        """The report header's line on the hardware these models were billed for (None: none)."""
        return None

    @abstractmethod
    def methods_clause(self, prices: Mapping[str, Mapping[str, Any]]) -> str:
        """The methods paragraph's clause on how the models named in ``prices`` were priced."""
        raise NotImplementedError

    def config_errors(self, key: str, model: Any, hardware: Any) -> list[str]:
        """What a model config billed this way lacks (a ``bench.config.ModelConfig`` served on a
        ``bench.config.HardwareConfig``)."""
        return []


_REGISTRY: dict[str, CostBasis] = {}


def register(cls: type[CostBasis]) -> type[CostBasis]:
    """Class decorator: make a basis available under its ``name``."""
    if cls.name in _REGISTRY:
        raise ValueError(f"cost basis {cls.name!r} is registered twice")
    _REGISTRY[cls.name] = cls()
    return cls


def names() -> tuple[str, ...]:
    """Registered basis names, in registration order."""
    return tuple(_REGISTRY)


def bases() -> tuple[CostBasis, ...]:
    return tuple(_REGISTRY.values())


def get(name: Any) -> CostBasis:
    """The basis called ``name`` (a string or a ``Billing`` member)."""
    name = getattr(name, "value", name)
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownCostBasis(f"unknown cost basis {name!r} (available: {', '.join(_REGISTRY)})") from None


def for_model(model: Any) -> CostBasis:
    """A model's basis: its ``billing``, else the default for its ``source_kind``. ``model`` is a
    resolved model config (dict) or a ``bench.config.ModelConfig``."""
    field = model.get if isinstance(model, Mapping) else lambda key: getattr(model, key, None)
    if field("billing"):
        return get(field("billing"))
    kind = getattr(field("source_kind"), "value", field("source_kind"))
    for basis in _REGISTRY.values():
        if kind in basis.default_for:
            return basis
    raise UnknownCostBasis(
        f"no cost basis is the default for source_kind {kind!r}: set billing (available: {', '.join(_REGISTRY)})"
    )


def _distinct(prices: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Entries with different content, first seen first (merged runs repeat their hardware)."""
    seen: dict[tuple, Mapping[str, Any]] = {}
    for p in prices:
        seen.setdefault(tuple(sorted((k, str(v)) for k, v in p.items() if k not in ("training",))), p)
    return list(seen.values())


@register
class DeviceTime(CostBasis):
    """Measured serving time x devices x $ per device-hour (the whole box is billed while serving)."""

    name = "device_time"
    default_for = ("local", "hub")
    description = "for a self-hosted model is the task's measured wall time x devices x the hardware price"
    billed_by_time = True

    def price_entry(self, model: Mapping[str, Any], hardware: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "basis": self.name,
            "device_kind": hardware["device_kind"],
            "devices": hardware["count"],
            "usd_per_device_hour": hardware["usd_per_device_hour"],
            "source": hardware["price_source"],
            "as_of": hardware["price_as_of"],
        }

    def usd(self, price: Mapping[str, Any], usage: Usage) -> float:
        assert usage.serving_s is not None, "a time-billed task's $ needs its serving time (plan_usd checks)"
        return device_usd(usage.serving_s, price["devices"], price["usd_per_device_hour"])

    def device_seconds(self, price: Mapping[str, Any], serving_s: float) -> float:
        return serving_s * price["devices"]

    def steady_usd_per_1m(self, price: Mapping[str, Any], work: Work, generated: bool) -> float:
        # The device's $ per second over the model's measured throughput on this kind of work.
        per_s = price["devices"] * price["usd_per_device_hour"] / 3600.0
        return per_s / (work.tokens / work.serving_s) * 1e6 if work.tokens > 0 and work.serving_s > 0 else math.nan

    def priced_as(self, price: Mapping[str, Any]) -> str:
        return f"{price['devices']} x {price['device_kind']} at ${price['usd_per_device_hour']}/h"

    def hardware_line(self, prices: list[Mapping[str, Any]]) -> str | None:
        if not prices:
            return None
        return "Self-hosted hardware: " + "; ".join(
            f"{p['device_kind']} x {p['devices']} at ${p['usd_per_device_hour']}/device-hour "
            f"({p['source']}, as of {p['as_of']})"
            for p in _distinct(prices)
        )

    def methods_clause(self, prices: Mapping[str, Mapping[str, Any]]) -> str:
        return "Serving cost is measured wall time on " + "; ".join(
            f"{p['devices']} x {p['device_kind']} at ${p['usd_per_device_hour']} per device-hour "
            f"({p['source']}, as of {p['as_of']})"
            for p in _distinct(list(prices.values()))
        )


@register
class ApiTokens(CostBasis):
    """Prompt, cached prompt and completion tokens (reasoning included) x the model's ``price``,
    all per 1M tokens. A self-hosted model billed this way stands in for an API model."""

    name = "api_tokens"
    default_for = ("api",)
    description = "for an API model, its tokens x its list prices (reasoning tokens billed as output)"
    billed_by_time = False
    vendor_priced = True
    interval_method = "exact tokens + items"
    interval_note = "cost is exact token counts x list prices"

    def price_entry(self, model: Mapping[str, Any], hardware: Mapping[str, Any]) -> dict[str, Any]:
        entry = {"basis": self.name, **model["price"]}
        if model.get("stands_in_for"):
            entry["stands_in_for"] = model["stands_in_for"]
        return entry

    def usd(self, price: Mapping[str, Any], usage: Usage) -> float:
        return api_usd(usage.prompt_tokens, usage.cached_prompt_tokens, usage.completion_tokens, price)

    def steady_usd_per_1m(self, price: Mapping[str, Any], work: Work, generated: bool) -> float:
        # Token prices have no overhead to amortise: generation costs the output list price;
        # scoring, its $ over the tokens it processed.
        if generated:
            return price["output"] if work.tasks else math.nan
        return work.usd / work.tokens * 1e6 if work.tokens else math.nan

    def priced_as(self, price: Mapping[str, Any]) -> str:
        return (
            f"API: ${price['input']}/${price.get('cached_input') or price['input']}/${price['output']} per 1M "
            f"input/cached/output ({price['source']}, {price['as_of']})"
        )

    def methods_clause(self, prices: Mapping[str, Mapping[str, Any]]) -> str:
        return (
            "API models are priced by tokens at list prices ("
            + "; ".join(
                f"{name}: ${p['input']}/${p['output']} per 1M input/output tokens ({p['source']}, {p['as_of']})"
                for name, p in prices.items()
            )
            + ")"
        )

    def config_errors(self, key: str, model: Any, hardware: Any) -> list[str]:
        if model.price.input is None or model.price.output is None:
            return [
                f"model '{key}' is billed by API tokens without token prices: set "
                f"models.{key}.price.input and price.output ($ per 1M tokens)"
            ]
        return []


@register
class Compute(CostBasis):
    """Forward FLOPs x the device's $ per FLOP at its peak rate: (prompt + completion tokens) x
    2N / (peak FLOP/s of a device) x $ per device-hour / 3600 (however many
    devices share the work, their time x their count is the same). N is counted from the
    served checkpoint (``bench/analysis/flops.py``), so the bill is exact in the token counts
    and the same on every run and every machine; it is the compute-bound floor of a device
    bill (100% of peak), not a measured time. Measured serving time is still recorded and
    reported beside it."""

    name = "compute"
    description = (
        "for a self-hosted model billed by compute, its forward FLOPs (2 x its matrix parameters per "
        "prompt or generated token) at the device's peak FLOP rate x the hardware price"
    )
    billed_by_time = False
    interval_method = "exact FLOPs + items"
    interval_note = "cost is exact token counts x FLOPs per token x the device's price per peak FLOP"

    def price_entry(self, model: Mapping[str, Any], hardware: Mapping[str, Any]) -> dict[str, Any]:
        # bench plan may price a model before its files exist (the zoo not yet built): no count
        # then, and usd() says what is missing. Files that exist are counted or refused.
        counted = flops.count(model["source"]) if Path(model["source"]).exists() else None
        return {
            "basis": self.name,
            "flops_per_token": None if counted is None else counted.per_token,
            "checkpoint": str(model["source"]),
            "device_kind": hardware["device_kind"],
            "usd_per_device_hour": hardware["usd_per_device_hour"],
            "peak_flops_per_device": hardware["peak_flops_per_device"],
            "peak_flops_source": hardware["peak_flops_source"],
            "source": hardware["price_source"],
            "as_of": hardware["price_as_of"],
        }

    @staticmethod
    def usd_per_token(price: Mapping[str, Any]) -> float:
        if price.get("flops_per_token") is None:
            raise ValueError(
                f"no FLOP count for {price['checkpoint']}: the compute basis reads config.json and "
                f"*.safetensors there (make zoo, or download the model, first)"
            )
        seconds = price["flops_per_token"] / price["peak_flops_per_device"]
        return seconds * price["usd_per_device_hour"] / 3600.0

    def usd(self, price: Mapping[str, Any], usage: Usage) -> float:
        # Every prompt token is charged, cached or not: prefix-cache hits depend on how requests
        # were scheduled, and the bill must not.
        return (usage.prompt_tokens + usage.completion_tokens) * self.usd_per_token(price)

    def plan_usd(self, price: Mapping[str, Any], usage: Usage) -> float | None:
        return None if price.get("flops_per_token") is None else self.usd(price, usage)

    def steady_usd_per_1m(self, price: Mapping[str, Any], work: Work, generated: bool) -> float:
        # No overhead to amortise: the model's $ over the tokens of this kind of work.
        return work.usd / work.tokens * 1e6 if work.tokens else math.nan

    def priced_as(self, price: Mapping[str, Any]) -> str:
        return (
            f"{price['flops_per_token'] / 1e6:.3g} MFLOP/token at {price['peak_flops_per_device'] / 1e9:.4g} "
            f"GFLOP/s peak, {price['device_kind']} at ${price['usd_per_device_hour']}/h"
        )

    def hardware_line(self, prices: list[Mapping[str, Any]]) -> str | None:
        if not prices:
            return None
        return "Billed by compute: " + "; ".join(
            f"{p['device_kind']} at ${p['usd_per_device_hour']}/device-hour ({p['source']}, as of {p['as_of']}), "
            f"peak {p['peak_flops_per_device'] / 1e9:.4g} GFLOP/s ({p['peak_flops_source']})"
            for p in _distinct(
                [{k: v for k, v in p.items() if k not in ("flops_per_token", "checkpoint")} for p in prices]
            )
        )

    def methods_clause(self, prices: Mapping[str, Mapping[str, Any]]) -> str:
        return (
            "Self-hosted models billed by compute are charged 2N FLOPs per prompt or generated token "
            "(N: the matrix parameters of the served checkpoint; Kaplan et al. 2020) at the device's peak "
            "FLOP rate and hourly price ("
            + "; ".join(
                f"{name}: {p['flops_per_token'] / 1e6:.3g} MFLOP/token on {p['device_kind']}, "
                f"{p['peak_flops_per_device'] / 1e9:.4g} GFLOP/s, ${p['usd_per_device_hour']}/h "
                f"({p['source']}, as of {p['as_of']})"
                for name, p in prices.items()
            )
            + ")"
        )

    def config_errors(self, key: str, model: Any, hardware: Any) -> list[str]:
        errors = []
        kind = getattr(model.source_kind, "value", model.source_kind)
        if kind != "local":
            errors.append(
                f"model '{key}' is billed by compute but its source_kind is {kind}: the FLOP count reads a "
                f"local checkpoint; set source_kind=local or billing=device_time"
            )
        elif Path(model.source).exists():  # a model still to be built (the zoo) is counted once built
            try:
                flops.count(model.source)
            except flops.NotCountable as e:
                errors.append(f"model '{key}' is billed by compute: {e}")
        if not hardware.peak_flops_per_device or not hardware.peak_flops_source:
            errors.append(
                f"model '{key}' is billed by compute but hardware '{hardware.name}' has no peak FLOP rate: set "
                f"hardware.peak_flops_per_device (dense FLOP/s at the serving dtype) and "
                f"hardware.peak_flops_source, or billing=device_time"
            )
        return errors


def by_basis(prices: Mapping[str, Any]) -> list[tuple[CostBasis, dict[str, Any]]]:
    """The models of a ``prices.json`` grouped by basis, in registry order: (basis, {model: entry})."""
    groups: dict[str, dict[str, Any]] = {}
    for name, p in prices["models"].items():
        groups.setdefault(get(p["basis"]).name, {})[name] = p
    return [(b, groups[b.name]) for b in bases() if b.name in groups]
