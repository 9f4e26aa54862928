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
    cfg.update(dataset_path="json", dataset_kwargs={"data_files": {split: str(data)}})
    task = ConfigurableTask(config=cfg)
    return task, list(task.eval_docs)


def score(task, doc: dict, response: str) -> float:
    """What lm-eval scores for one response: the task's filter chain, then its metric."""
    [ensemble] = task._filters  # one filter only: each response is scored once
    resps = [[response]]
    for make in ensemble.filters:
        resps = list(make().apply(resps, [doc]))
    return task.process_results(doc, [resps[0]])["exact_match"]


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
    task, [doc] = build("aime24.yaml", "train", [{"ID": "2024-I-1", "Problem": "Find $x$.", "Answer": 204}],
                        tmp_path)
    assert task.doc_to_text(doc) == "Find $x$.\n" + INSTRUCTION  # no "Question:", no system prompt
    assert task.doc_to_target(doc) == "204"
    trace = "<think>\nTry \\boxed{12}? No.\n</think>\nSo the answer is $\\boxed{204}$."
    assert score(task, doc, trace) == 1
    assert score(task, doc, "<think>\nIt is \\boxed{204}... wait, \\boxed{12}.\n</think>\n\\boxed{12}") == 0


def test_math500_compares_boxed_answers_after_normalisation(tmp_path):
    task, [doc] = build("math500.yaml", "test", [{"problem": "Halve 1.", "answer": "\\frac{1}{2}",
                                                  "solution": "", "subject": "Algebra", "level": 1}], tmp_path)
    assert task.doc_to_text(doc) == "Halve 1.\n" + INSTRUCTION
    assert score(task, doc, "<think>\nhalf\n</think>\nThe answer is $\\boxed{\\dfrac12}$.") == 1
    assert score(task, doc, "<think>\nhalf\n</think>\n$\\boxed{2}$") == 0


def test_gpqa_reads_the_last_answer_line_after_the_reasoning(tmp_path):
    item = {"Question": "Which one?", "Correct Answer": "right", "Incorrect Answer 1": "w1",
            "Incorrect Answer 2": "w2", "Incorrect Answer 3": "w3"}
    task, [doc] = build("gpqa_diamond.yaml", "train", [item], tmp_path)
    prompt = task.doc_to_text(doc)
    assert prompt.startswith("Answer the following multiple choice question.") and "Which one?" in prompt
    letter = task.doc_to_target(doc)
    assert f"{letter}) right" in prompt  # the options are shuffled; the target follows them
    wrong = next(c for c in "ABCD" if c != letter)
    assert score(task, doc, f"<think>\nAnswer: {wrong} looks tempting.\n</think>\n**Answer:** {letter}") == 1
    assert score(task, doc, f"<think>\nAnswer: {letter}?\n</think>\nAnswer: ({wrong})") == 0
    assert score(task, doc, "<think>\nno idea\n</think>") == 0
