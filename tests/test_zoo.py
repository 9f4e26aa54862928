"""The zoo: deterministic, loadable as Hugging Face folders, and the tokenizer round-trips."""

from __future__ import annotations

import dataclasses
import json

from bench import taskdata, zoo

TINY = zoo.Recipe(teacher=zoo.Arch(32, 1, 1, 64), small=zoo.Arch(32, 1, 1, 64),
                  teacher_steps=6, small_steps=4, batch_size=16, warmup=2)


def test_tokenizer_matches_the_training_encoder(tmp_path):
    tok = zoo.build_tokenizer(tmp_path)
    for ex in (taskdata.think(47, 85), taskdata.direct(10, 99)):
        text = ex.prompt + ex.completion
        assert tok.encode(text, add_special_tokens=False) == zoo.encode(text)
        assert tok.decode(zoo.encode(text)) == text
    ids = zoo.encode("<think>1+2=3</think>3")
    assert ids[0] == zoo.vocab()["<think>"] and ids[-2] == zoo.vocab()["</think>"]


def test_build_is_deterministic(tmp_path):
    a = zoo.build(tmp_path / "a", TINY)
    b = zoo.build(tmp_path / "b", TINY)
    manifest_a = json.loads((a.root / "MANIFEST.json").read_text())
    manifest_b = json.loads((b.root / "MANIFEST.json").read_text())
    assert manifest_a["models"] == manifest_b["models"]
    assert len(set(manifest_a["models"].values())) == 3  # three different models
    assert (a.root / "distill_data.jsonl").read_bytes() == (b.root / "distill_data.jsonl").read_bytes()


def test_recipe_change_means_a_rebuild(tmp_path):
    zoo.build(tmp_path, TINY)
    assert zoo.is_built(tmp_path, TINY)
    assert not zoo.is_built(tmp_path, dataclasses.replace(TINY, seed=TINY.seed + 1))


def test_student_learns_only_from_teacher_outputs(zoo_dir):
    """The student's training data is the teacher's generations, not ground truth."""
    rows = [json.loads(line) for line in (zoo_dir / "distill_data.jsonl").read_text().splitlines()]
    truth = {ex.prompt: ex.completion for ex in zoo.ground_truth(taskdata.training_pairs())}
    assert len(rows) == len(truth)
    differ = sum(r["completion"] != truth[r["prompt"]] for r in rows)
    meta = json.loads((zoo_dir / "tiny_student" / "zoo.json").read_text())
    assert "teacher" in meta["trained_on"]
    # The teacher is imperfect, so its outputs are not the ground truth.
    assert differ > 0
    assert abs(meta["teacher_train_agreement"] - (1 - differ / len(rows))) < 1e-9


def test_zoo_folders_load_with_transformers(zoo_dir):
    from transformers import AutoConfig, AutoTokenizer

    sizes = {}
    for name in ("tiny_teacher", "tiny_student", "tiny_control"):
        folder = zoo_dir / name
        assert (folder / "model.safetensors").is_file()
        cfg = AutoConfig.from_pretrained(folder)
        tok = AutoTokenizer.from_pretrained(folder)
        assert tok.eos_token_id == cfg.eos_token_id
        sizes[name] = cfg.hidden_size * cfg.num_hidden_layers
    assert sizes["tiny_student"] < sizes["tiny_teacher"]
    assert sizes["tiny_student"] == sizes["tiny_control"]
