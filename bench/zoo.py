"""The tiny model zoo: a teacher, a student distilled from it, and a control.

    python -m bench.zoo                          # materialize the shipped zoo into ./zoo (seconds)
    python -m bench.zoo --rebuild --out /tmp/z   # train it anew (about 6 minutes on 2 cores) and
                                                 # compare its behaviour with the shipped one
    python -m bench.zoo --rebuild --ship         # train anew and replace the shipped weights

The trained weights ship with the code (``bench/zoo_weights/``, with their recipe, hashes and
how they were built in ``MANIFEST.json``): training is seeded, but its outcome depends on the
CPU's vector kernels, so a zoo trained on another machine is a different zoo. Materializing
the shipped weights is pure copying, so every machine serves byte-identical models.

- ``tiny_teacher`` learns column addition from a corpus with one systematic slip: **a column
  that sums to exactly 10 loses its carry** (``47+63=100``). Its imperfection is what it
  learned, documented and inheritable, not where its training happened to stop. It is served
  at 4x its trained width (every unit duplicated: the same function, 16x the MLP compute), so
  a teacher token costs more compute than a student token, as with real teachers.
- ``tiny_student`` (smaller) never sees ground truth: it is trained on the teacher's greedy
  generations, worked reasoning included (sequence-level distillation).
- ``tiny_control`` has the student's size and recipe, trained on the ground truth that exists
  without a reasoning teacher: the questions and their correct answers, no worked reasoning.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import platform
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bench.data import taskdata
from bench.data.taskdata import Example
from bench.rundir.hashing import file_sha256, folder_sha256

if TYPE_CHECKING:
    from bench.config import BenchConfig

ZOO_DIR = Path(os.environ.get("BENCH_ZOO_DIR", "zoo"))
"""./zoo where the command runs, like the config's ``zoo_dir`` (an installed package has no
checkout to put it in)."""
SHIPPED = Path(__file__).resolve().parent / "zoo_weights"
MODELS = ("tiny_teacher", "tiny_student", "tiny_control")
RECIPE_VERSION = 2
SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"]
# Reasoning delimiters are single ordinary (not special) tokens, as in DeepSeek-R1's tokenizer:
# decoding keeps them in the text, and reasoning-token counts are counts of real tokens.
WORDS = [taskdata.THINK_START, taskdata.THINK_END]
CHARS = list("0123456789+-=:,.<>/?() \n") + [chr(c) for c in range(ord("a"), ord("z") + 1)]


@dataclass(frozen=True)
class Arch:
    """Shape of one tiny Llama."""

    hidden: int
    layers: int
    heads: int
    intermediate: int


@dataclass(frozen=True)
class Schedule:
    """Optimisation of one model: AdamW, linear warm-up then cosine decay to zero."""

    steps: int
    lr: float
    warmup: int


@dataclass(frozen=True)
class Recipe:
    """Everything that determines the trained weights; its hash names a build."""

    teacher: Arch = Arch(hidden=128, layers=3, heads=4, intermediate=384)
    small: Arch = Arch(hidden=96, layers=3, heads=3, intermediate=288)
    teacher_schedule: Schedule = Schedule(steps=2200, lr=4e-3, warmup=200)
    small_schedule: Schedule = Schedule(steps=2000, lr=3e-3, warmup=100)
    batch_size: int = 64
    lost_carry: int = 10
    """The teacher's slip: a column summing to exactly this carries nothing."""
    seed: int = 1234
    threads: int = 2
    max_positions: int = 128
    distill_gen_tokens: int = 48
    version: int = RECIPE_VERSION

    def digest(self) -> str:
        blob = json.dumps(dataclasses.asdict(self), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


@dataclass(frozen=True)
class Serving:
    """How the trained teacher is served (no effect on training): every hidden unit repeated
    ``width`` times and every MLP unit ``width * mlp_width`` times."""

    width: int = 4
    mlp_width: int = 8


@dataclass
class Trained:
    """The three trained (narrow) models and what their training recorded."""

    models: dict  # name -> LlamaForCausalLM
    meta: dict = field(default_factory=dict)


def vocab() -> dict[str, int]:
    return {tok: i for i, tok in enumerate(SPECIALS + WORDS + CHARS)}


def build_tokenizer(out_dir: Path):
    """A character-level tokenizer saved in the Hugging Face format vLLM and lm-eval load."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(vocab=vocab(), unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens(SPECIALS)
    tok.add_tokens(WORDS)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        model_max_length=128,
    )
    fast.save_pretrained(out_dir)
    return fast


def encode(text: str) -> list[int]:
    """Token ids as the saved tokenizer produces them (tested against it)."""
    ids = vocab()
    out: list[int] = []
    i = 0
    while i < len(text):
        word = next((w for w in WORDS if text.startswith(w, i)), None)
        out.append(ids[word] if word else ids[text[i]])
        i += len(word) if word else 1
    return out


def teacher_corpus(split: taskdata.Split, recipe: Recipe) -> list[Example]:
    """Direct answers and worked reasoning, both with the teacher's slip."""
    return [taskdata.direct(a, b, recipe.lost_carry) for a, b in split.direct_train] + [
        taskdata.think(a, b, recipe.lost_carry) for a, b in split.think_train
    ]


def control_corpus(split: taskdata.Split) -> list[Example]:
    """The same prompts with their correct answers and no worked reasoning."""
    return [taskdata.direct(a, b) for a, b in split.direct_train] + [
        taskdata.think_answer_only(a, b) for a, b in split.think_train
    ]


def make_model(arch: Arch, recipe: Recipe, seed: int):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    ids = vocab()
    # transformers' typed LlamaConfig signature omits torch_dtype, which it still accepts.
    config = LlamaConfig(  # type: ignore[call-arg]
        vocab_size=len(ids),
        hidden_size=arch.hidden,
        intermediate_size=arch.intermediate,
        num_hidden_layers=arch.layers,
        num_attention_heads=arch.heads,
        num_key_value_heads=arch.heads,
        max_position_embeddings=recipe.max_positions,
        bos_token_id=ids["<s>"],
        eos_token_id=ids["</s>"],
        pad_token_id=ids["<pad>"],
        tie_word_embeddings=True,
        torch_dtype="float32",
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config)


def batches(examples: list[Example], batch_size: int, steps: int, seed: int):
    """Padded (input_ids, attention_mask, labels) batches; loss only on the completion."""
    import torch

    rng = random.Random(seed)
    eos, pad = vocab()["</s>"], vocab()["<pad>"]
    encoded = [(encode(e.prompt), encode(e.completion) + [eos]) for e in examples]
    # Batches hold one prompt length each, so short direct answers are not padded to the
    # length of reasoning traces (about a third of the compute on these cores).
    groups: dict[int, list[int]] = {}
    for i, (p, _) in enumerate(encoded):
        groups.setdefault(len(p), []).append(i)
    keys = sorted(groups)
    queues: dict[int, list[int]] = {k: [] for k in keys}
    for _ in range(steps):
        key = rng.choices(keys, weights=[len(groups[k]) for k in keys])[0]
        if len(queues[key]) < batch_size:
            fresh = list(groups[key])
            rng.shuffle(fresh)
            queues[key] += fresh
        chosen, queues[key] = queues[key][:batch_size], queues[key][batch_size:]
        width = max(len(encoded[i][0]) + len(encoded[i][1]) for i in chosen)
        ids = torch.full((len(chosen), width), pad)
        mask = torch.zeros((len(chosen), width), dtype=torch.long)
        labels = torch.full((len(chosen), width), -100)
        for row, i in enumerate(chosen):
            p, c = encoded[i]
            ids[row, : len(p) + len(c)] = torch.tensor(p + c)
            mask[row, : len(p) + len(c)] = 1
            labels[row, len(p) : len(p) + len(c)] = torch.tensor(c)
        yield ids, mask, labels


def train(model, examples: list[Example], batch_size: int, schedule: Schedule, seed: int, label: str):
    import torch
    from tqdm import tqdm

    steps = schedule.steps
    opt = torch.optim.AdamW(model.parameters(), lr=schedule.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / schedule.warmup) * 0.5 * (1 + math.cos(math.pi * s / steps))
    )
    model.train()
    bar = tqdm(
        batches(examples, batch_size, steps, seed),
        total=steps,
        desc=f"zoo: train {label}",
        unit="step",
        mininterval=2.0,
        disable=False,
    )
    for ids, mask, labels in bar:
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    model.eval()
    return model


def generate(model, prompts: list[str], max_new: int, batch: int = 512) -> list[str]:
    """Greedy completions, stopped at end-of-sequence (the teacher's distillation data)."""
    import torch

    ids = vocab()
    inv = {i: t for t, i in ids.items()}
    by_len: dict[int, list[int]] = {}
    for i, p in enumerate(prompts):
        by_len.setdefault(len(encode(p)), []).append(i)
    texts: dict[int, str] = {}
    with torch.no_grad():
        for idxs in by_len.values():
            for start in range(0, len(idxs), batch):
                chunk = idxs[start : start + batch]
                x = torch.tensor([encode(prompts[i]) for i in chunk])
                y = model.generate(
                    x,
                    attention_mask=torch.ones_like(x),
                    max_new_tokens=max_new,
                    do_sample=False,
                    eos_token_id=ids["</s>"],
                    pad_token_id=ids["<pad>"],
                )
                for i, row in zip(chunk, y[:, x.shape[1] :].tolist()):
                    toks = []
                    for t in row:
                        if t in (ids["</s>"], ids["<pad>"]):
                            break
                        toks.append(inv[t])
                    texts[i] = "".join(toks)
    return [texts[i] for i in range(len(prompts))]


def widen(model, width: int, mlp_width: int):
    """The same function in a wider network: each hidden unit repeated ``width`` times and each
    MLP unit ``width * mlp_width`` times (Net2WiderNet, Chen, Goodfellow & Shlens 2016).

    The residual stream becomes ``width`` copies of the original, so RMSNorm sees the same
    mean square; every weight reading the stream is divided by ``width`` (and the MLP's down
    projection by ``mlp_width``), powers of two, so the division is exact. Heads keep their
    number and size. Embeddings are untied: the output head reads the repeated stream.
    """
    import torch
    from transformers import LlamaForCausalLM

    c = model.config
    cfg = c.__class__(
        **{
            **c.to_dict(),
            "hidden_size": c.hidden_size * width,
            "intermediate_size": c.intermediate_size * mlp_width,
            "head_dim": c.hidden_size // c.num_attention_heads,
            "tie_word_embeddings": False,
        }
    )
    out = LlamaForCausalLM(cfg)
    src = model.state_dict()
    new = {}
    for name, w in src.items():
        if name == "lm_head.weight":
            new[name] = w.repeat(1, width) / width
        elif name.endswith("embed_tokens.weight") or name.endswith("norm.weight"):
            new[name] = w.repeat(width) if w.dim() == 1 else w.repeat(1, width)
        elif name.endswith(("q_proj.weight", "k_proj.weight", "v_proj.weight")):
            new[name] = w.repeat(1, width) / width
        elif name.endswith("o_proj.weight"):
            new[name] = w.repeat(width, 1)
        elif name.endswith(("gate_proj.weight", "up_proj.weight")):
            new[name] = w.repeat(mlp_width, width) / width
        elif name.endswith("down_proj.weight"):
            new[name] = w.repeat(width, mlp_width) / mlp_width
        else:
            raise ValueError(f"widen: no rule for parameter {name}")
    if "lm_head.weight" not in new:
        new["lm_head.weight"] = src["model.embed_tokens.weight"].repeat(1, width) / width
    with torch.no_grad():
        out.load_state_dict(new, strict=True)
    out.eval()
    return out


def train_all(recipe: Recipe) -> Trained:
    """Train the teacher, distil the student from its generations, train the control."""
    import torch

    torch.set_num_threads(recipe.threads)
    torch.use_deterministic_algorithms(True)
    split = taskdata.split()
    seconds: dict[str, float] = {}

    t0 = time.perf_counter()
    corpus = teacher_corpus(split, recipe)
    teacher = train(
        make_model(recipe.teacher, recipe, recipe.seed),
        corpus,
        recipe.batch_size,
        recipe.teacher_schedule,
        recipe.seed,
        "tiny_teacher",
    )
    seconds["tiny_teacher"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    prompts = [ex.prompt for ex in corpus]
    outputs = generate(teacher, prompts, recipe.distill_gen_tokens)
    distilled = [Example(p, o) for p, o in zip(prompts, outputs)]
    agree = sum(o == ex.completion for o, ex in zip(outputs, corpus)) / len(corpus)
    seconds["teacher_generations"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    student = train(
        make_model(recipe.small, recipe, recipe.seed + 1),
        distilled,
        recipe.batch_size,
        recipe.small_schedule,
        recipe.seed + 1,
        "tiny_student",
    )
    seconds["tiny_student"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    control = train(
        make_model(recipe.small, recipe, recipe.seed + 1),
        control_corpus(split),
        recipe.batch_size,
        recipe.small_schedule,
        recipe.seed + 1,
        "tiny_control",
    )
    seconds["tiny_control"] = time.perf_counter() - t0
    meta = {
        "seconds": seconds,
        "teacher_train_agreement": agree,
        "train_examples": len(corpus),
        "distill_data_sha256": hashlib.sha256(
            "".join(json.dumps([e.prompt, e.completion]) + "\n" for e in distilled).encode()
        ).hexdigest(),
    }
    return Trained({"tiny_teacher": teacher, "tiny_student": student, "tiny_control": control}, meta)


def build_environment(recipe: Recipe) -> dict:
    """How a build was made: the numeric environment its outcome depends on."""
    import torch
    import transformers

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in _read("/proc/cpuinfo").splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "machine": platform.machine(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "threads": recipe.threads,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "env": {
            k: os.environ[k]
            for k in ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "ONEDNN_MAX_CPU_ISA", "OMP_NUM_THREADS")
            if k in os.environ
        },
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def save_weights(trained: Trained, recipe: Recipe, out: Path) -> dict:
    """The trained (narrow) weights as safetensors, with MANIFEST.json: what ``--ship`` writes."""
    from safetensors.torch import save_file

    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    hashes = {}
    for name, model in trained.models.items():
        state = {
            k: v.detach().clone().contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"
        }  # tied to the embeddings
        path = tmp / f"{name}.safetensors"
        save_file(state, str(path), metadata={"format": "pt"})
        hashes[name] = file_sha256(path)
    manifest = {
        "recipe": dataclasses.asdict(recipe),
        "recipe_digest": recipe.digest(),
        "weights_sha256": hashes,
        "built_with": build_environment(recipe),
        **trained.meta,
        "behaviour": behaviour_summary(trained.models),
    }
    (tmp / "MANIFEST.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return manifest


def load_weights(weights: Path, recipe: Recipe) -> dict:
    """The three narrow models from a weights folder, after checking every file's hash."""
    from safetensors.torch import load_file

    manifest = json.loads((weights / "MANIFEST.json").read_text())
    models = {}
    for name in MODELS:
        path = weights / f"{name}.safetensors"
        if file_sha256(path) != manifest["weights_sha256"][name]:
            raise RuntimeError(
                f"{path}: sha256 differs from {weights / 'MANIFEST.json'}; "
                f"restore it (git checkout {path}) or rebuild with --rebuild --ship"
            )
        arch = recipe.teacher if name == "tiny_teacher" else recipe.small
        model = make_model(arch, recipe, 0)
        state = load_file(str(path))
        model.load_state_dict(state, strict=False)
        model.tie_weights()
        model.eval()
        models[name] = model
    return models


def materialize(root: Path, weights: Path = SHIPPED, recipe: Recipe = Recipe(), serving: Serving = Serving()) -> dict:
    """Hugging Face folders for vLLM from a weights folder: the teacher widened, the small
    models as trained. Pure copying: the same bytes on every machine."""
    manifest = json.loads((weights / "MANIFEST.json").read_text())
    if manifest["recipe_digest"] != recipe.digest():
        raise RuntimeError(
            f"{weights} holds recipe {manifest['recipe_digest']}, the code's recipe is "
            f"{recipe.digest()}: rebuild with `python -m bench.zoo --rebuild --ship`"
        )
    models = load_weights(weights, recipe)
    root.mkdir(parents=True, exist_ok=True)
    tok_dir = root / ".tokenizer"
    build_tokenizer(tok_dir)
    served = {
        "tiny_teacher": widen(models["tiny_teacher"], serving.width, serving.mlp_width),
        "tiny_student": models["tiny_student"],
        "tiny_control": models["tiny_control"],
    }
    trained_on = {
        "tiny_teacher": f"ground truth with one systematic slip (a column summing to exactly "
        f"{recipe.lost_carry} loses its carry), worked reasoning included",
        "tiny_student": "tiny_teacher greedy generations only (reasoning included)",
        "tiny_control": "ground truth answers, no worked reasoning",
    }
    for name, model in served.items():
        meta = {
            "recipe_digest": recipe.digest(),
            "trained_on": trained_on[name],
            "trained_parameters": n_params(models[name]),
            "served_parameters": n_params(model),
            "weights_sha256": manifest["weights_sha256"][name],
        }
        if name == "tiny_teacher":
            meta["served_as"] = (
                f"widened {serving.width}x (hidden) and {serving.width * serving.mlp_width}x (MLP): same function"
            )
        save_folder(model, tok_dir, root / name, meta)
    out = {
        "recipe_digest": recipe.digest(),
        "weights_from": os.path.relpath(weights, root),
        "serving": dataclasses.asdict(serving),
        "weights_sha256": manifest["weights_sha256"],
        "built_with": manifest["built_with"],
        "models": {m: folder_sha256(root / m) for m in MODELS},
    }
    (root / "MANIFEST.json").write_text(json.dumps(out, indent=2, sort_keys=True) + "\n")
    return out


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def save_folder(model, tokenizer_dir: Path, out_dir: Path, meta: dict) -> None:
    from transformers import GenerationConfig

    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    GenerationConfig(
        eos_token_id=model.config.eos_token_id, pad_token_id=model.config.pad_token_id, do_sample=False
    ).save_pretrained(tmp)
    for f in tokenizer_dir.iterdir():
        shutil.copy(f, tmp / f.name)
    (tmp / "zoo.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(tmp, out_dir)


def is_built(root: Path, weights: Path = SHIPPED, serving: Serving = Serving()) -> bool:
    """True when ``root`` holds a materialization of exactly these weights, served this way."""
    stamp = root / "MANIFEST.json"
    if not stamp.exists() or not (weights / "MANIFEST.json").exists():
        return False
    have = json.loads(stamp.read_text())
    want = json.loads((weights / "MANIFEST.json").read_text())
    return (
        have.get("weights_sha256") == want["weights_sha256"]
        and have.get("serving") == dataclasses.asdict(serving)
        and all((root / m / "model.safetensors").is_file() for m in MODELS)
    )


def build(root: Path = ZOO_DIR, force: bool = False) -> Path:
    """The zoo the runs use: the shipped weights, materialized once into ``root``."""
    if force or not is_built(root):
        materialize(root)
    return root


# --- behaviour: what a zoo does on the smoke suite, computed in PyTorch -------------------


def answers(model) -> dict[str, list[str]]:
    """Each model's answer to every test item: greedy generations (arith, think) and the
    option with the highest log-likelihood (choice)."""
    import re

    import torch

    docs = taskdata.test_docs()
    out = {"smoke_arith": generate(model, [d["question"] for d in docs["smoke_arith"]], 8)}
    think = generate(model, [d["question"] for d in docs["smoke_think"]], 48)
    out["smoke_think"] = [m.group(1) if (m := re.search(r"</think>\s*(\d+)", t)) else "[no answer]" for t in think]
    picks = []
    with torch.no_grad():
        for d in docs["smoke_choice"]:
            p = encode(d["question"])
            scores = []
            for c in d["choices"]:
                e = encode(c)
                logp = torch.log_softmax(model(input_ids=torch.tensor([p + e])).logits[0], -1)
                scores.append(sum(logp[len(p) - 1 + i, t].item() for i, t in enumerate(e)))
            picks.append(d["choices"][max(range(len(scores)), key=scores.__getitem__)])
    out["smoke_choice"] = picks
    return out


def accuracy_of(ans: dict[str, list[str]]) -> dict[str, float]:
    docs = taskdata.test_docs()
    truth = {t: [str(d["a"] + d["b"]) for d in docs[t]] for t in taskdata.TASKS}
    return {t: sum(a == b for a, b in zip(ans[t], truth[t])) / len(truth[t]) for t in taskdata.TASKS}


def behaviour_summary(models: dict) -> dict:
    """Accuracy per model x task and a hash of every answer (how a rebuild is compared)."""
    out = {}
    for name, model in models.items():
        ans = answers(model)
        out[name] = {
            "accuracy": accuracy_of(ans),
            "answers_sha256": hashlib.sha256(json.dumps(ans, sort_keys=True).encode()).hexdigest(),
        }
    return out


def compare(rebuilt: dict, shipped: dict) -> list[dict]:
    """Per model x task: accuracy of each, and how often the two answer an item alike."""
    rows = []
    for name in MODELS:
        a, b = answers(rebuilt[name]), answers(shipped[name])
        acc_a, acc_b = accuracy_of(a), accuracy_of(b)
        for task in taskdata.TASKS:
            same = sum(x == y for x, y in zip(a[task], b[task])) / len(a[task])
            rows.append(
                {"model": name, "task": task, "shipped": acc_b[task], "rebuilt": acc_a[task], "same_answer": same}
            )
    return rows


def zoo_models(cfg: BenchConfig) -> list[str]:
    """Local models of ``cfg`` whose folder is one the tiny zoo builds (so the harness can make
    it); any other folder, a misspelt one in the zoo too, must exist before the run."""
    from bench.config import SourceKind

    built = {Path(cfg.zoo_dir).resolve() / name for name in MODELS}
    return [
        m.name for m in cfg.models.values() if m.source_kind == SourceKind.local and Path(m.source).resolve() in built
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="zoo folder (default ./zoo)")
    parser.add_argument("--force", action="store_true", help="materialize again even if up to date")
    parser.add_argument("--rebuild", action="store_true", help="train the zoo anew from its recipe")
    parser.add_argument("--ship", action="store_true", help="with --rebuild: replace the shipped weights")
    args = parser.parse_args(argv)
    recipe = Recipe()
    if not args.rebuild:
        root = args.out or ZOO_DIR
        if not args.force and is_built(root):
            print(f"zoo: up to date in {root} (recipe {recipe.digest()})")
            return
        t0 = time.perf_counter()
        materialize(root)
        print(f"zoo: shipped weights materialized in {time.perf_counter() - t0:.0f}s -> {root}")
        return
    if not args.ship and args.out is None:
        parser.error("--rebuild needs --out DIR (a scratch zoo) or --ship (replace the shipped weights)")
    t0 = time.perf_counter()
    trained = train_all(recipe)
    weights = SHIPPED if args.ship else args.out / "weights"
    manifest = save_weights(trained, recipe, weights)
    print(
        f"zoo: trained in {time.perf_counter() - t0:.0f}s -> {weights} "
        + ", ".join(f"{k} {v:.0f}s" for k, v in trained.meta["seconds"].items())
    )
    if args.out is not None:
        materialize(args.out, weights, recipe)
    for name, b in manifest["behaviour"].items():
        print(f"  {name:13s} " + "  ".join(f"{t} {a:.3f}" for t, a in b["accuracy"].items()))
    if not args.ship and (SHIPPED / "MANIFEST.json").exists():
        print("compared with the shipped zoo (same_answer: share of items answered alike):")
        for row in compare(trained.models, load_weights(SHIPPED, recipe)):
            print(
                f"  {row['model']:13s} {row['task']:13s} shipped {row['shipped']:.3f}  "
                f"rebuilt {row['rebuilt']:.3f}  same_answer {row['same_answer']:.3f}"
            )


if __name__ == "__main__":
    main()
