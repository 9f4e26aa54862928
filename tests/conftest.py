"""Shared fixtures: the real config, the real zoo, the real task files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.config import CONF_DIR as CONF, PROJECT_ROOT as ROOT

ZOO = Path(os.environ.get("BENCH_ZOO_DIR", ROOT / "zoo"))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def compose(overrides: list[str] | None = None, config_dir: Path = CONF):
    """Compose the real Hydra config as `make bench ARGS=...` would (a DictConfig)."""
    from bench.compose import compose_dict

    return compose_dict(overrides or [], config_dir)


def run_config(overrides: list[str] | None = None, config_dir: Path = CONF):
    """The ``BenchConfig`` a run gets from the same overrides: its dataclass, narrowed to
    ``run.only`` (``bench.compose.to_config``)."""
    from bench.compose import to_config

    return to_config(compose(overrides, config_dir))


@pytest.fixture(scope="session")
def zoo_dir() -> Path:
    from bench import zoo

    if not zoo.is_built(ZOO):
        pytest.fail(f"the tiny zoo is not built in {ZOO}: run `make zoo` (make test does it first)")
    return ZOO


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` are skipped, with the reason, where no NVIDIA GPU is visible."""
    if not any(item.get_closest_marker("gpu") for item in items):
        return
    from bench.serving.serve import visible_gpus

    if visible_gpus(os.environ):
        return
    skip = pytest.mark.skip(reason="needs an NVIDIA GPU and the CUDA build of vLLM (nvidia-smi finds none)")
    for item in items:
        if item.get_closest_marker("gpu"):
            item.add_marker(skip)
