"""Build the tiny model zoo: a teacher, a student distilled from it, and a control.

    python -m bench.zoo                 # build into ./zoo (skipped when already built)
    python -m bench.zoo --force         # rebuild

- ``tiny_teacher`` is trained on the ground truth of the smoke tasks' training pairs.
- ``tiny_student`` (smaller) never sees ground truth: it is trained on the teacher's greedy
  generations for the same prompts (sequence-level distillation).
- ``tiny_control`` has the student's size and recipe but learns from ground truth, so it
  separates what the student got from the teacher from what any model of its size learns.

Everything is seeded and runs on the CPU with a fixed thread count, so two builds give the
same bytes. Each model is an ordinary Hugging Face folder (config, safetensors, tokenizer)
that vLLM loads.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import taskdata

ZOO_DIR = Path(os.environ.get("BENCH_ZOO_DIR", Path(__file__).resolve().parent.parent / "zoo"))
RECIPE_VERSION = 1
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
class Recipe:
    """Everything that determines the zoo's bytes; its hash names a build."""

    teacher: Arch = Arch(hidden=128, layers=3, heads=4, intermediate=384)
    small: Arch = Arch(hidden=64, layers=2, heads=2, intermediate=192)
    teacher_steps: int = 1000
    small_steps: int = 800
    batch_size: int = 128
    lr: float = 3e-3
    warmup: int = 100
    seed: int = 1234
    threads: int = 2
    max_positions: int = 128
    distill_gen_tokens: int = 48
    version: int = RECIPE_VERSION

    def digest(self) -> str:
        blob = json.dumps(dataclasses.asdict(self), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


@dataclass
class ZooBuild:
    """Where each model landed and what it took."""

    root: Path
    seconds: dict[str, float] = field(default_factory=dict)


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
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                   pad_token="<pad>", unk_token="<unk>", model_max_length=128)
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


def ground_truth(pairs: list[tuple[int, int]]) -> list[taskdata.Example]:
    return [ex for a, b in pairs for ex in (taskdata.direct(a, b), taskdata.think(a, b))]


def make_model(arch: Arch, recipe: Recipe, seed: int):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    ids = vocab()
    config = LlamaConfig(
        vocab_size=len(ids), hidden_size=arch.hidden, intermediate_size=arch.intermediate,
        num_hidden_layers=arch.layers, num_attention_heads=arch.heads,
        num_key_value_heads=arch.heads, max_position_embeddings=recipe.max_positions,
        bos_token_id=ids["<s>"], eos_token_id=ids["</s>"], pad_token_id=ids["<pad>"],
        tie_word_embeddings=True, torch_dtype="float32",
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config)


def batches(examples: list[taskdata.Example], recipe: Recipe, steps: int, seed: int):
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
        if len(queues[key]) < recipe.batch_size:
            fresh = list(groups[key])
            rng.shuffle(fresh)
            queues[key] += fresh
        chosen, queues[key] = queues[key][:recipe.batch_size], queues[key][recipe.batch_size:]
        width = max(len(encoded[i][0]) + len(encoded[i][1]) for i in chosen)
        ids = torch.full((len(chosen), width), pad)
        mask = torch.zeros((len(chosen), width), dtype=torch.long)
        labels = torch.full((len(chosen), width), -100)
        for row, i in enumerate(chosen):
            p, c = encoded[i]
            ids[row, :len(p) + len(c)] = torch.tensor(p + c)
            mask[row, :len(p) + len(c)] = 1
            labels[row, len(p):len(p) + len(c)] = torch.tensor(c)
        yield ids, mask, labels


def train(model, examples: list[taskdata.Example], recipe: Recipe, steps: int, seed: int, label: str):
    import torch
    from tqdm import tqdm

    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / recipe.warmup) * 0.5 * (1 + math.cos(math.pi * s / steps)))
    model.train()
    bar = tqdm(batches(examples, recipe, steps, seed), total=steps, desc=f"zoo: train {label}",
               unit="step", mininterval=2.0, disable=False)
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
    out: list[str] = []
    by_len: dict[int, list[int]] = {}
    for i, p in enumerate(prompts):
        by_len.setdefault(len(p), []).append(i)
    texts: dict[int, str] = {}
    with torch.no_grad():
        for idxs in by_len.values():
            for start in range(0, len(idxs), batch):
                chunk = idxs[start:start + batch]
                x = torch.tensor([encode(prompts[i]) for i in chunk])
                y = model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=max_new,
                                   do_sample=False, eos_token_id=ids["</s>"], pad_token_id=ids["<pad>"])
                for i, row in zip(chunk, y[:, x.shape[1]:].tolist()):
                    toks = []
                    for t in row:
                        if t in (ids["</s>"], ids["<pad>"]):
                            break
                        toks.append(inv[t])
                    texts[i] = "".join(toks)
    out = [texts[i] for i in range(len(prompts))]
    return out


def save(model, tokenizer_dir: Path, out_dir: Path, meta: dict) -> None:
    from transformers import GenerationConfig

    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    GenerationConfig(eos_token_id=model.config.eos_token_id, pad_token_id=model.config.pad_token_id,
                     do_sample=False).save_pretrained(tmp)
    for f in tokenizer_dir.iterdir():
        shutil.copy(f, tmp / f.name)
    (tmp / "zoo.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(tmp, out_dir)


def is_built(root: Path, recipe: Recipe) -> bool:
    stamp = root / "MANIFEST.json"
    if not stamp.exists():
        return False
    return json.loads(stamp.read_text()).get("recipe_digest") == recipe.digest()


def build(root: Path = ZOO_DIR, recipe: Recipe = Recipe(), force: bool = False) -> ZooBuild:
    """Build the three models into ``root`` unless a build of this recipe is already there."""
    result = ZooBuild(root=root)
    if not force and is_built(root, recipe):
        return result
    import torch

    torch.set_num_threads(recipe.threads)
    torch.use_deterministic_algorithms(True)
    root.mkdir(parents=True, exist_ok=True)
    tok_dir = root / ".tokenizer"
    build_tokenizer(tok_dir)
    pairs = taskdata.training_pairs()
    truth = ground_truth(pairs)
    common = {"recipe": dataclasses.asdict(recipe), "recipe_digest": recipe.digest(),
              "train_pairs": len(pairs)}

    t0 = time.perf_counter()
    teacher = train(make_model(recipe.teacher, recipe, recipe.seed), truth, recipe,
                    recipe.teacher_steps, recipe.seed, "tiny_teacher")
    save(teacher, tok_dir, root / "tiny_teacher", {**common, "trained_on": "ground truth"})
    result.seconds["tiny_teacher"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    prompts = [ex.prompt for ex in truth]
    outputs = generate(teacher, prompts, recipe.distill_gen_tokens)
    distilled = [taskdata.Example(p, o) for p, o in zip(prompts, outputs)]
    agree = sum(o == ex.completion for o, ex in zip(outputs, truth)) / len(truth)
    (root / "distill_data.jsonl").write_text(
        "".join(json.dumps({"prompt": e.prompt, "completion": e.completion}) + "\n" for e in distilled))
    result.seconds["teacher_generations"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    student = train(make_model(recipe.small, recipe, recipe.seed + 1), distilled, recipe,
                    recipe.small_steps, recipe.seed + 1, "tiny_student")
    save(student, tok_dir, root / "tiny_student",
         {**common, "trained_on": "tiny_teacher greedy generations only",
          "teacher_train_agreement": agree})
    result.seconds["tiny_student"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    control = train(make_model(recipe.small, recipe, recipe.seed + 1), truth, recipe,
                    recipe.small_steps, recipe.seed + 1, "tiny_control")
    save(control, tok_dir, root / "tiny_control", {**common, "trained_on": "ground truth"})
    result.seconds["tiny_control"] = time.perf_counter() - t0

    manifest = {**common, "seconds": result.seconds, "teacher_train_agreement": agree,
                "models": {m: sha256_dir(root / m) for m in ("tiny_teacher", "tiny_student", "tiny_control")}}
    (root / "MANIFEST.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return result


def sha256_dir(path: Path) -> str:
    """Content hash of a model folder (file names and bytes), independent of timestamps."""
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(f.relative_to(path).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ZOO_DIR)
    parser.add_argument("--force", action="store_true", help="rebuild even if this recipe is built")
    args = parser.parse_args(argv)
    recipe = Recipe()
    if not args.force and is_built(args.out, recipe):
        print(f"zoo: up to date in {args.out} (recipe {recipe.digest()})")
        return
    t0 = time.perf_counter()
    built = build(args.out, recipe, force=True)
    print(f"zoo: built in {time.perf_counter() - t0:.0f}s -> {args.out} "
          + ", ".join(f"{k} {v:.0f}s" for k, v in built.seconds.items()))


if __name__ == "__main__":
    main()
