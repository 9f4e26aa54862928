"""Shared fixtures: the real config, the real zoo, the real task files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "conf"
ZOO = Path(os.environ.get("BENCH_ZOO_DIR", ROOT / "zoo"))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def compose(overrides: list[str] | None = None, config_dir: Path = CONF):
    """Compose the real Hydra config as `make bench ARGS=...` would."""
    from hydra import compose as hydra_compose, initialize_config_dir

    import bench.config  # noqa: F401  (registers the schemas)

    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        return hydra_compose(config_name="config", overrides=overrides or [])


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
    from bench.serve import visible_gpus

    if visible_gpus(os.environ):
        return
    skip = pytest.mark.skip(reason="needs an NVIDIA GPU and the CUDA build of vLLM (nvidia-smi finds none)")
    for item in items:
        if item.get_closest_marker("gpu"):
            item.add_marker(skip)
