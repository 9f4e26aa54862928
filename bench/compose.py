"""The config ``bench run`` gets, composed outside Hydra's app: for ``bench plan``, ``make perf``,
``bench fetch`` and the tests (the same config folder, schemas and overrides)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import cast

from omegaconf import DictConfig, OmegaConf

from bench.config import CONF_DIR, BenchConfig, narrow_to_only


def compose_dict(overrides: Sequence[str] = (), config_dir: Path = CONF_DIR) -> DictConfig:
    """The composed config as Hydra hands it to ``bench run`` (a DictConfig, checked against
    the registered schemas)."""
    from hydra import compose as hydra_compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        return hydra_compose(config_name="config", overrides=list(overrides))


def to_config(dcfg: DictConfig) -> BenchConfig:
    """A composed config as the ``BenchConfig`` a run gets: its dataclass, narrowed to
    ``run.only`` (:func:`bench.config.narrow_to_only`)."""
    return narrow_to_only(cast(BenchConfig, OmegaConf.to_object(dcfg)))  # a structured config: its dataclass


def compose(overrides: Sequence[str] = (), config_dir: Path = CONF_DIR) -> BenchConfig:
    """The config ``bench run`` would get from the same overrides, as a ``BenchConfig``."""
    return to_config(compose_dict(overrides, config_dir))
