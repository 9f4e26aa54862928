"""The zoo: shipped weights that materialize to the same bytes everywhere, a deterministic
recipe, a widened teacher that computes the same function, and a tokenizer that round-trips."""

from __future__ import annotations

import dataclasses
import json

import pytest

from bench import zoo
from bench.data import taskdata
from bench.rundir.hashing import file_sha256

TINY = zoo.Recipe(
    teacher=zoo.Arch(32, 1, 1, 64),
    small=zoo.Arch(32, 1, 1, 64),
    teacher_schedule=zoo.Schedule(6, 3e-3, 2),
    small_schedule=zoo.Schedule(4, 3e-3, 2),
    batch_size=16,
)


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    """The tiny recipe trained twice, weights saved twice."""
    out = tmp_path_factory.mktemp("weights")
    manifests = []
    for name in ("a", "b"):
        trained = zoo.train_all(TINY)
        manifests.append(zoo.save_weights(trained, TINY, out / name))
    return out, manifests


def test_tokenizer_matches_the_training_encoder(tmp_path):
    tok = zoo.build_tokenizer(tmp_path)
    for ex in (taskdata.think(347, 285), taskdata.direct(10, 99), taskdata.think_answer_only(100, 999)):
        text = ex.prompt + ex.completion
        assert tok.encode(text, add_special_tokens=False) == zoo.encode(text)
        assert tok.decode(zoo.encode(text)) == text
    ids = zoo.encode("<think>1+2=3</think>3")
    assert ids[0] == zoo.vocab()["<think>"] and ids[-2] == zoo.vocab()["</think>"]


def test_training_is_deterministic_and_materializing_is_pure_copying(tiny_weights, tmp_path):
    out, (a, b) = tiny_weights
    assert a["weights_sha256"] == b["weights_sha256"]
    assert len(set(a["weights_sha256"].values())) == 3  # three different models
    assert a["distill_data_sha256"] == b["distill_data_sha256"]
    assert a["built_with"]["torch"] and a["built_with"]["threads"] == TINY.threads
    one = zoo.materialize(tmp_path / "one", out / "a", TINY)
    two = zoo.materialize(tmp_path / "two", out / "b", TINY)
    assert one["models"] == two["models"]
    assert zoo.is_built(tmp_path / "one", out / "a")


def test_weights_of_another_recipe_are_refused(tiny_weights, tmp_path):
    out, _ = tiny_weights
    other = dataclasses.replace(TINY, seed=TINY.seed + 1)
    with pytest.raises(RuntimeError, match="rebuild"):
        zoo.materialize(tmp_path / "z", out / "a", other)


def test_a_changed_weights_file_is_refused(tiny_weights, tmp_path):
    import shutil

    out, _ = tiny_weights
    copy = tmp_path / "w"
    shutil.copytree(out / "a", copy)
    path = copy / "tiny_student.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(RuntimeError, match="sha256 differs"):
        zoo.materialize(tmp_path / "z", copy, TINY)


def test_student_learns_only_from_teacher_outputs_and_control_sees_no_reasoning():
    split = taskdata.split()
    teacher = zoo.teacher_corpus(split, zoo.Recipe())
    control = zoo.control_corpus(split)
    assert [e.prompt for e in teacher] == [e.prompt for e in control]
    assert not any(e.completion.startswith("<think>") and "+" in e.completion for e in control)
    truth = {e.prompt: e.completion for e in control}
    slipped = [
        e
        for e in teacher
        if e.prompt in truth and not e.completion.startswith("<think>") and e.completion != truth[e.prompt]
    ]
    # The teacher's corpus carries its slip: about 9% of two-digit sums have units summing to 10.
    assert 0.05 < len(slipped) / len(split.direct_train) < 0.15
    assert all(int(truth[e.prompt]) - int(e.completion) == 10 for e in slipped)


def test_widening_keeps_the_function():
    import torch

    recipe = zoo.Recipe()
    narrow = zoo.make_model(recipe.teacher, recipe, 7)
    serving = zoo.Serving()
    wide = zoo.widen(narrow, serving.width, serving.mlp_width)
    assert zoo.n_params(wide) > 10 * zoo.n_params(narrow)
    x = torch.tensor([zoo.encode("think:347+285=<think>7+5=12,4")])
    with torch.no_grad():
        a, b = narrow(input_ids=x).logits, wide(input_ids=x).logits
    assert torch.allclose(a, b, atol=1e-5), (a - b).abs().max()


def test_shipped_weights_match_their_manifest():
    manifest = json.loads((zoo.SHIPPED / "MANIFEST.json").read_text())
    assert manifest["recipe_digest"] == zoo.Recipe().digest(), "rebuild with python -m bench.zoo --rebuild --ship"
    for name in zoo.MODELS:
        assert file_sha256(zoo.SHIPPED / f"{name}.safetensors") == manifest["weights_sha256"][name]
    built = manifest["built_with"]
    for key in ("cpu", "torch", "threads", "torch_cpu_capability", "built_at"):
        assert built[key], key
    acc = {m: b["accuracy"] for m, b in manifest["behaviour"].items()}
    # The recipe's design, as trained: an imperfect teacher and a student that reasons.
    assert 0.6 <= acc["tiny_teacher"]["smoke_think"] <= 0.95
    assert acc["tiny_student"]["smoke_think"] > acc["tiny_control"]["smoke_think"]


def test_zoo_folders_load_with_transformers(zoo_dir):
    from transformers import AutoConfig, AutoTokenizer

    sizes = {}
    for name in zoo.MODELS:
        folder = zoo_dir / name
        assert (folder / "model.safetensors").is_file()
        cfg = AutoConfig.from_pretrained(folder)
        tok = AutoTokenizer.from_pretrained(folder)
        assert tok.eos_token_id == cfg.eos_token_id
        sizes[name] = json.loads((folder / "zoo.json").read_text())["served_parameters"]
    assert sizes["tiny_student"] < sizes["tiny_teacher"] / 10
    assert sizes["tiny_student"] == sizes["tiny_control"]


def test_served_teacher_answers_as_the_trained_one(zoo_dir):
    """The widened teacher in the zoo gives the shipped (narrow) teacher's answers."""
    from transformers import AutoModelForCausalLM

    manifest = json.loads((zoo.SHIPPED / "MANIFEST.json").read_text())
    served = AutoModelForCausalLM.from_pretrained(zoo_dir / "tiny_teacher").eval()
    assert zoo.accuracy_of(zoo.answers(served)) == manifest["behaviour"]["tiny_teacher"]["accuracy"]
