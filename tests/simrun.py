"""Run the harness in this process against simulated servers (tests/test_paper_scale.py,
tests/test_hubcache.py): the real config, the real pipeline, no vLLM."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from conftest import compose


def simulated(key: str, time_scale: float, **settings) -> list[str]:
    """Overrides that serve model ``key`` from the simulated engine."""
    out = [f"models.{key}.serve.simulate.enabled=true", f"models.{key}.serve.simulate.time_scale={time_scale}"]
    return out + [f"models.{key}.serve.simulate.{k}={v}" for k, v in settings.items()]


def config(overrides: list[str]):
    return OmegaConf.to_object(compose(overrides))


def run(overrides: list[str], run_dir: Path) -> Path:
    """``bench run OVERRIDES`` with ``run_dir`` as its folder, in this process."""
    from bench.run import execute, quiet_lm_eval

    quiet_lm_eval()
    return execute(config(overrides), run_dir)
