"""Every config option composes into the structured schema; bad keys and types fail early."""

from __future__ import annotations

import shutil

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from bench.config import BenchConfig, Role
from conftest import CONF, compose


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def test_default_is_smoke_on_cpu():
    cfg = OmegaConf.to_object(compose())
    assert isinstance(cfg, BenchConfig)
    assert cfg.experiment.name == "smoke"
    assert cfg.hardware.device == "cpu"
    roles = sorted(m.role for m in cfg.models.values())
    assert roles == sorted([Role.teacher, Role.student, Role.control])
    assert cfg.suite.tasks == ["smoke_arith", "smoke_think", "smoke_choice"]


@pytest.mark.parametrize("hardware", options("hardware"))
def test_every_hardware_composes(hardware):
    cfg = OmegaConf.to_object(compose([f"hardware={hardware}"]))
    assert cfg.hardware.name == hardware
    assert cfg.hardware.usd_per_device_hour > 0 and cfg.hardware.price_source and cfg.hardware.price_as_of


@pytest.mark.parametrize("suite", options("suite"))
def test_every_suite_composes(suite):
    cfg = OmegaConf.to_object(compose([f"suite={suite}"]))
    assert cfg.suite.tasks


@pytest.mark.parametrize("experiment", options("experiment"))
def test_every_experiment_composes(experiment):
    cfg = OmegaConf.to_object(compose([f"experiment={experiment}"]))
    assert sum(m.role == Role.teacher for m in cfg.models.values()) <= 1


@pytest.mark.parametrize("model", options("model"))
def test_every_model_composes_as_an_extra_model(model):
    cfg = OmegaConf.to_object(compose([f"+model@models.extra={model}"]))
    assert cfg.models["extra"].name
    assert cfg.models["extra"].serve.max_model_len > 0


def test_command_line_overrides_reach_the_config():
    cfg = OmegaConf.to_object(compose(["suite.limit=5", "hardware=h100", "models.tiny_student.serve.max_model_len=64"]))
    assert cfg.suite.limit == 5
    assert cfg.hardware.device_kind == "H100-SXM"
    assert cfg.models["tiny_student"].serve.max_model_len == 64


def test_misspelled_override_fails_at_composition():
    with pytest.raises(ConfigCompositionException, match="temprature"):
        compose(["suite.temprature=0.6"])
    with pytest.raises(ConfigCompositionException, match="tensor_paralel"):
        compose(["models.tiny_teacher.serve.tensor_paralel=2"])


def test_unknown_key_in_a_yaml_file_fails_at_composition(tmp_path):
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    path = conf / "model" / "tiny_student.yaml"
    path.write_text(path.read_text().replace("max_model_len: 128", "max_model_len: 128\n  max_modle_len: 64"))
    with pytest.raises(ConfigCompositionException, match="max_modle_len"):
        compose(config_dir=conf)


def test_wrong_type_fails_at_composition():
    with pytest.raises(ConfigCompositionException, match="limit"):
        compose(["suite.limit=many"])
    with pytest.raises(ConfigCompositionException, match="professor"):
        compose(["models.tiny_teacher.role=professor"])


def test_zoo_models_point_into_the_zoo_dir():
    cfg = OmegaConf.to_object(compose(["zoo_dir=/somewhere/else"]))
    assert cfg.models["tiny_teacher"].source == "/somewhere/else/tiny_teacher"
