"""Every config option composes into the structured schema; bad keys and types fail early."""

from __future__ import annotations

import shutil

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from bench.config import BenchConfig, Role
from conftest import CONF, compose, run_config


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def test_default_is_smoke_on_cpu():
    cfg = run_config()
    assert isinstance(cfg, BenchConfig)
    assert cfg.experiment.name == "smoke"
    assert cfg.hardware.device == "cpu"
    roles = sorted(m.role for m in cfg.models.values())
    assert roles == sorted([Role.teacher, Role.student, Role.control, Role.baseline])
    assert cfg.suite.tasks == ["smoke_arith", "smoke_think", "smoke_choice"]


def test_the_frontier_stand_in_is_the_teacher_billed_at_the_presets_prices():
    cfg = run_config()
    standin, teacher = cfg.models["frontier_api"], cfg.models["tiny_teacher"]
    o1 = run_config(["+model@models.extra=o1_api"]).models["extra"]
    assert standin.source == teacher.source and standin.serve == teacher.serve
    assert standin.billing.value == "api_tokens" and standin.stands_in_for == o1.source
    assert standin.price == o1.price and standin.price.source and standin.price.as_of


@pytest.mark.parametrize("hardware", options("hardware"))
def test_every_hardware_composes(hardware):
    cfg = run_config([f"hardware={hardware}"])
    assert cfg.hardware.name == hardware
    assert cfg.hardware.usd_per_device_hour > 0 and cfg.hardware.price_source and cfg.hardware.price_as_of


@pytest.mark.parametrize("suite", options("suite"))
def test_every_suite_composes(suite):
    cfg = run_config([f"suite={suite}"])
    assert cfg.suite.tasks


@pytest.mark.parametrize("experiment", options("experiment"))
def test_every_experiment_composes(experiment):
    cfg = run_config([f"experiment={experiment}"])
    assert sum(m.role == Role.teacher for m in cfg.models.values()) <= 1


@pytest.mark.parametrize("model", options("model"))
def test_every_model_composes_as_an_extra_model(model):
    cfg = run_config([f"+model@models.extra={model}"])
    assert cfg.models["extra"].name
    assert cfg.models["extra"].serve.max_model_len > 0


def test_command_line_overrides_reach_the_config():
    cfg = run_config(["suite.limit=5", "hardware=h100", "models.tiny_student.serve.max_model_len=64"])
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
    cfg = run_config(["zoo_dir=/somewhere/else"])
    assert cfg.models["tiny_teacher"].source == "/somewhere/else/tiny_teacher"


def validate_offline(cfg: BenchConfig) -> None:
    """Every check that needs neither a GPU nor the network (what `bench plan` runs)."""
    from bench.config import resolve_model_paths
    from bench.evaluation.evaluate import task_manager
    from bench.validate import resolve_paths, validate
    from bench.zoo import zoo_models

    cfg = resolve_model_paths(cfg)
    tm = task_manager(resolve_paths(cfg.suite.include_paths), cfg.suite.tasks)
    validate(cfg, tm, will_build=set(zoo_models(cfg)), machine=False)


@pytest.mark.parametrize("experiment", options("experiment"))
def test_every_experiment_validates_offline(experiment):
    validate_offline(run_config([f"experiment={experiment}"]))


@pytest.mark.parametrize("hardware", options("hardware"))
def test_every_hardware_validates_offline(hardware):
    validate_offline(run_config([f"hardware={hardware}"]))
    if hardware.endswith(("x8", "x16")):
        # R1's 690 GB need 8 x 141 GB (the default) or two nodes through Ray; 8 x 80 GB serve the rest.
        teacher = R1_ON.get(hardware, ["~model@models.teacher"])
        validate_offline(run_config(["experiment=r1_distill", f"hardware={hardware}", *teacher]))


R1_ON = {"h200x8": [], "h100x16": ["model@models.teacher=deepseek_r1_2node"]}


# Where a model needs more than the default context to run: its hardware, or the suite it fits.
MODEL_CONTEXT = {
    "deepseek_r1": ["hardware=h200x8"],
    "deepseek_r1_2node": ["hardware=h100x16"],
    "local_api": ["experiment=smoke", "models.extra.api.base_url=http://127.0.0.1:9/v1"],
    "tiny_teacher": ["experiment=smoke"],
    "tiny_student": ["experiment=smoke"],
    "tiny_control": ["experiment=smoke"],
    "frontier_api": ["experiment=smoke"],
}


# API presets whose id no longer serves what the preset measures: validation refuses them
# (bench/data/lifecycle.py), and says what stands in for them. Kept as the record of those baselines.
RETIRED = {
    "claude35_sonnet_api": "retired on 2025-10-28",
    "gpt4o_0513_api": "retired on 2026-10-23",
    "o1_api": "retired on 2026-10-23",
    "o1_mini_api": "retired on 2025-10-27",
    "o3_mini_api": "retired on 2026-10-23",
    "deepseek_r1_api": "retired on 2026-07-24, and from 2025-05-28 it no longer served DeepSeek-R1",
    "deepseek_v3_api": "retired on 2026-07-24, and from 2025-03-24 it no longer served DeepSeek-V3",
}


@pytest.mark.parametrize("model", options("model"))
def test_every_model_validates_offline(model):
    """Each preset alone (run.only) in the R1 suite on an 8-GPU box, or where it belongs; a
    retired API preset is refused with the reason and what stands in for it."""
    from bench.validate import ConfigError

    overrides = MODEL_CONTEXT.get(model, [])
    base = [] if "experiment=smoke" in overrides else ["experiment=r1_distill"]
    cfg = run_config([*base, f"+model@models.extra={model}", "run.only=extra", *overrides])
    assert list(cfg.models) == ["extra"]
    if model not in RETIRED:
        validate_offline(cfg)
        return
    with pytest.raises(ConfigError) as err:
        validate_offline(cfg)
    assert RETIRED[model] in str(err.value) and "~model@models.extra" in str(err.value)
    m = cfg.models["extra"]
    assert (f"reported row '{m.reported_as}'" if m.reported_as else "no reported row") in str(err.value)


def test_every_vendor_api_preset_carries_its_lifecycle_with_a_source():
    import datetime as dt

    from bench.config import SourceKind

    for model in options("model"):
        m = run_config([f"+model@models.extra={model}"]).models["extra"]
        if m.source_kind != SourceKind.api or not m.api.base_url:
            continue  # local_api: an endpoint the tests start, not a vendor's
        lc = m.lifecycle
        assert lc.serves and lc.source and lc.as_of, model
        assert m.price.source and m.price.as_of, model
        for day in (lc.available_from, lc.changed_on, lc.retired_on):
            assert day is None or dt.date.fromisoformat(day), model


def test_every_hub_preset_states_its_context_and_fits_in_it():
    """vLLM refuses a max_model_len beyond the model's own context; checked on every preset
    offline from the preset (and at run time against the hub's config.json)."""
    from bench.config import SourceKind

    for model in options("model"):
        m = run_config([f"+model@models.extra={model}"]).models["extra"]
        if m.source_kind == SourceKind.hub:
            assert m.context_length, model
            assert m.serve.max_model_len <= m.context_length, (model, m.serve.max_model_len, m.context_length)
            limit = m.generation.max_gen_toks or 32768  # the R1 tasks' own limit
            assert limit < m.serve.max_model_len, model


def test_gpu_presets_fill_the_billed_devices_with_replicas():
    r1 = run_config(["experiment=r1_distill"]).models
    assert [
        r1[k].serve.data_parallel_size for k in ("r1_distill_qwen_1p5b", "r1_distill_qwen_32b", "r1_distill_llama_70b")
    ] == [8, 4, 2]
    one = run_config(["experiment=r1_distill", "hardware=h200"]).models
    assert one["r1_distill_qwen_7b"].serve.data_parallel_size == 1
    fixed = run_config(["experiment=r1_distill", "models.r1_distill_qwen_7b.serve.data_parallel_size=2"]).models
    assert fixed["r1_distill_qwen_7b"].serve.data_parallel_size == 2


def test_r1_suite_is_the_papers_protocol():
    cfg = run_config(["experiment=r1_distill"])
    s = cfg.suite
    assert (s.temperature, s.top_p, s.repeats) == (0.6, 0.95, 64)
    assert s.max_gen_toks is None  # 32,768 in the tasks, so an API's own output cap applies
    assert set(s.budget) == set(s.tasks)
    reported = {m.reported_as for m in cfg.models.values()}
    assert {
        "DeepSeek-R1-Distill-Qwen-1.5B",
        "DeepSeek-R1-Distill-Llama-70B",
        "QwQ-32B-Preview",
        "DeepSeek-R1",
    } <= reported
    # R1 is served here: its API no longer serves it.
    assert cfg.models["teacher"].source == "deepseek-ai/DeepSeek-R1" and cfg.hardware.name == "h200x8"


def test_the_r1_report_shows_the_retired_api_baselines_as_reported_rows():
    """GPT-4o-0513, Claude 3.5 Sonnet and o1-mini are retired, so the R1 comparison measures none
    of them; its report shows the paper's figures for them on every benchmark it measures."""
    from bench.analysis import published
    from bench.config import SourceKind

    cfg = run_config(["experiment=r1_distill"])
    assert not any(m.source_kind == SourceKind.api for m in cfg.models.values())
    rows = published.reported_rows(cfg.suite.tasks, published.load())
    for name in ("GPT-4o-0513", "Claude-3.5-Sonnet-1022", "o1-mini"):
        assert set(rows[rows["model"] == name]["task"]) == set(cfg.suite.tasks), name


def test_reported_names_are_rows_of_the_papers_tables():
    """`reported_as` must be spelled as ../shared/reference writes the model."""
    import csv

    from conftest import ROOT

    ref = ROOT.parent / "shared" / "reference"
    if not ref.is_dir():
        pytest.skip(f"{ref} is not present")
    names = {r["model"] for r in csv.DictReader((ref / "deepseek_r1_distill_table.csv").open())}
    names |= set(next(csv.reader((ref / "deepseek_r1_main_table.csv").open()))[1:])
    for model in options("model"):
        m = run_config([f"+model@models.extra={model}"]).models["extra"]
        assert m.reported_as is None or m.reported_as in names, (model, m.reported_as)


def test_run_only_keeps_one_model_and_a_sweep_over_it_makes_one_job_per_model():
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    # What `-m` does with the command line: the sweeper splits it into one override list per job.
    sweep = ["experiment=r1_distill", "run.only=teacher,r1_distill_qwen_1p5b,r1_distill_llama_70b"]
    [jobs] = BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(sweep), max_batch_size=None)
    assert len(jobs) == 3
    kept = [list(run_config(list(job)).models) for job in jobs]
    assert kept == [["teacher"], ["r1_distill_qwen_1p5b"], ["r1_distill_llama_70b"]]


def test_run_only_narrows_a_new_config_and_leaves_an_unknown_key_for_validation():
    from bench.config import narrow_to_only

    whole = OmegaConf.to_object(compose(["experiment=r1_distill", "run.only=teacher"]))
    assert len(whole.models) > 1  # the dataclass alone is not narrowed
    narrowed = narrow_to_only(whole)
    assert list(narrowed.models) == ["teacher"] and len(whole.models) > 1
    unknown = OmegaConf.to_object(compose(["run.only=tiny_tutor"]))
    assert narrow_to_only(unknown).models == unknown.models


def test_slurm_launcher_preset_composes():
    from hydra import compose as hydra_compose, initialize_config_dir
    from hydra.utils import get_class

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = hydra_compose(
            config_name="config",
            return_hydra_config=True,
            overrides=[
                "experiment=r1_distill",
                "hydra/launcher=slurm",
                "hydra.launcher.partition=gpu",
                "run.only=r1_distill_qwen_7b",
            ],
        )
    launcher = cfg.hydra.launcher
    assert get_class(launcher._target_).__name__ == "SlurmLauncher"
    assert launcher.partition == "gpu" and launcher.nodes == 1
    assert launcher.gpus_per_node == cfg.hardware.count == 8  # the hardware preset's GPUs, one node
    assert launcher.timeout_min >= 60


def test_every_suite_is_validated_through_an_experiment():
    """A suite is checked with the models it is meant for (the R1 suite's 32,768 new tokens do
    not fit the tiny zoo): each one must be some experiment's, and that experiment validates."""
    used = {run_config([f"experiment={e}"]).suite.name for e in options("experiment")}
    assert set(options("suite")) <= used
