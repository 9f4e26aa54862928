"""The R1-protocol tasks (bench/tasks/r1): prompts, stop sequences and answer extraction, run by
lm-eval itself on a few made-up items (the real data sets are downloaded on a GPU box)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import ROOT

TASKS = ROOT / "bench" / "tasks" / "r1"
INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."


def build(yaml_name: str, split: str, docs: list[dict], tmp_path: Path):
    """lm-eval's task from our YAML, reading ``docs`` from a local file instead of the Hub."""
    from lm_eval.api.task import ConfigurableTask
    from lm_eval.tasks._yaml_loader import load_yaml

    data = tmp_path / "docs.jsonl"
    data.write_text("".join(json.dumps(d) + "\n" for d in docs))
    cfg = load_yaml(TASKS / yaml_name)
    cfg.pop("dataset_name", None)
    files = {"data_files": {split: str(data)}}
    if "custom_dataset" in cfg:  # our own loader: it gets the dataset_kwargs
        cfg.update(dataset_kwargs={"path": "json", **files})
    else:
        cfg.update(dataset_path="json", dataset_kwargs=files)
    task = ConfigurableTask(config=cfg)
    return task, list(task.eval_docs)


def extracted(task, doc: dict, response: str) -> str:
    """What lm-eval's filter chain makes of one response (what the records keep)."""
    [ensemble] = task._filters  # one filter only: each response is scored once
    resps = [[response]]
    for make in ensemble.filters:
        resps = list(make().apply(resps, [doc]))
    return resps[0]


def score(task, doc: dict, response: str) -> float:
    """What lm-eval scores for one response: the task's filter chain, then its metric."""
    [result] = task.process_results(doc, [extracted(task, doc, response)]).values()
    return result


@pytest.mark.parametrize("yaml_name", ["aime24.yaml", "math500.yaml", "gpqa_diamond.yaml"])
def test_the_protocol_samples_long_and_never_stops_early(yaml_name):
    from lm_eval.tasks._yaml_loader import load_yaml

    gen = load_yaml(TASKS / yaml_name)["generation_kwargs"]
    # No stop sequence but end of sequence (lm-eval adds the tokenizer's EOS to an empty list):
    # "Question:" or a blank line can occur inside a reasoning trace.
    assert gen["until"] == []
    assert (gen["temperature"], gen["max_gen_toks"], gen["do_sample"]) == (0.6, 32768, True)
    assert "top_p" not in gen  # from the suite, so a job for o1 (which refuses it) can drop it


def test_aime_prompt_is_the_papers_instruction_and_the_last_boxed_answer_counts(tmp_path):
    task, [doc] = build("aime24.yaml", "train", [{"ID": "2024-I-1", "Problem": "Find $x$.", "Answer": 204}], tmp_path)
    assert task.doc_to_text(doc) == "Find $x$.\n" + INSTRUCTION  # no "Question:", no system prompt
    assert task.doc_to_target(doc) == "204"
    trace = "<think>\nTry \\boxed{12}? No.\n</think>\nSo the answer is $\\boxed{204}$."
    assert score(task, doc, trace) == 1
    assert score(task, doc, "<think>\nIt is \\boxed{204}... wait, \\boxed{12}.\n</think>\n\\boxed{12}") == 0


def test_math500_compares_answers_symbolically(tmp_path):
    task, [doc] = build(
        "math500.yaml",
        "test",
        [{"problem": "Halve 1.", "answer": "\\frac{1}{2}", "solution": "", "subject": "Algebra", "level": 1}],
        tmp_path,
    )
    assert task.doc_to_text(doc) == "Halve 1.\n" + INSTRUCTION
    assert score(task, doc, "<think>\nhalf\n</think>\nThe answer is $\\boxed{\\dfrac12}$.") == 1
    assert score(task, doc, "<think>\nhalf\n</think>\n$\\boxed{1/2}$") == 1
    assert score(task, doc, "<think>\nhalf\n</think>\nSo it is $\\boxed{0.5}$.") == 1
    assert score(task, doc, "<think>\nhalf\n</think>\n$\\boxed{2}$") == 0
    # The record keeps the answer, not the whole trace (cons@k votes on it).
    assert extracted(task, doc, "<think>\nhalf\n</think>\n$\\boxed{\\dfrac12}$") == "\\frac{1}{2}"
    assert extracted(task, doc, "<think>\nhalf of one is") == "[no answer]"


GPQA_ITEMS = [
    {
        "Record ID": f"rec{i}",
        "Question": f"Which one, {i}?",
        "Correct Answer": f"right{i}",
        "Incorrect Answer 1": f"w1-{i}",
        "Incorrect Answer 2": f"w2-{i}",
        "Incorrect Answer 3": f"w3-{i}",
    }
    for i in range(6)
]


def gpqa_docs(tmp_path: Path, repeat: int, seed: int = 1234):
    from bench.evaluation.repeat import evaluating

    with evaluating(seed, repeat):
        return build("gpqa_diamond.yaml", "train", GPQA_ITEMS, tmp_path)


def test_gpqa_reads_the_last_answer_letter_after_the_reasoning(tmp_path):
    task, docs = gpqa_docs(tmp_path, 0)
    doc = docs[0]
    prompt = task.doc_to_text(doc)
    assert prompt.startswith("Answer the following multiple choice question.") and "Which one, 0?" in prompt
    letter = doc["letter"]
    assert f"{letter}) right0" in prompt and task.doc_to_target(doc) == "right0"
    wrong = next(c for c in "ABCD" if c != letter)
    assert score(task, doc, f"<think>\nAnswer: {wrong} looks tempting.\n</think>\n**Answer:** {letter}") == 1
    assert score(task, doc, f"<think>\nAnswer: {letter}?\n</think>\nAnswer: ({wrong})") == 0
    assert score(task, doc, f"</think>\n\nThe answer is \\boxed{{{letter}}}.") == 1
    assert score(task, doc, "<think>\nno idea\n</think>") == 0
    # The record keeps the chosen option's text: the same answer under any option order.
    assert extracted(task, doc, f"Answer: {wrong}") == doc["choices"]["ABCD".index(wrong)]
    assert extracted(task, doc, "no letter here") == "[no answer]"


def test_gpqa_options_are_shuffled_per_item_and_repeat_reproducibly(tmp_path):
    orders = {r: [tuple(d["choices"]) for d in gpqa_docs(tmp_path, r)[1]] for r in range(4)}
    assert orders[0] == [tuple(d["choices"]) for d in gpqa_docs(tmp_path, 0)[1]]  # reproducible
    for item in range(6):
        seen = {orders[r][item] for r in range(4)}
        assert len(seen) > 1, f"item {item}: every repeat saw one option order"
        assert all(sorted(o) == sorted(orders[0][item]) for o in seen)
    # Another seed, other orders; the letter of the right option follows the order.
    other = gpqa_docs(tmp_path, 0, seed=99)[1]
    assert [tuple(d["choices"]) for d in other] != orders[0]
    assert all(d["choices"]["ABCD".index(d["letter"])] == d["answer"] for d in other)
