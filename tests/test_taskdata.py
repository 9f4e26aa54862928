"""The shipped smoke suite: regenerable, disjoint from training data, valid lm-eval tasks."""

from __future__ import annotations

import json

import pytest

from bench.data import taskdata
from bench.validate import resolve_paths

TASKS = ["smoke_arith", "smoke_think", "smoke_choice"]


def shipped(task: str) -> list[dict]:
    path = taskdata.TASK_DIR / f"{task.removeprefix('smoke_')}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_shipped_files_equal_a_fresh_generation():
    fresh = taskdata.test_docs()
    for task in TASKS:
        assert shipped(task) == json.loads(json.dumps(fresh[task])), f"{task}: rerun python -m bench.data.taskdata"


def test_test_items_are_disjoint_from_training_and_each_other():
    split = taskdata.split()
    train = set(split.direct_train) | set(split.think_train)
    assert len(split.think_train) == taskdata.TRAIN_THREE_DIGIT_PAIRS
    seen: set[tuple[int, int]] = set()
    for task in TASKS:
        pairs = {(d["a"], d["b"]) for d in shipped(task)}
        assert len(pairs) == taskdata.ITEMS_PER_TASK
        assert not pairs & train
        assert not pairs & seen
        seen |= pairs


def test_answers_are_right():
    for d in shipped("smoke_arith") + shipped("smoke_think"):
        assert int(d["answer"]) == d["a"] + d["b"]
    for d in shipped("smoke_choice"):
        assert int(d["choices"][d["label"]]) == d["a"] + d["b"]
        assert len(set(d["choices"])) == 4
        assert str(d["a"] + d["b"] - 10) in d["choices"]  # the dropped carry is always offered
    assert all(99 < d["a"] < 1000 and 99 < d["b"] < 1000 for d in shipped("smoke_think"))


def test_reasoning_trace_is_column_addition():
    ex = taskdata.think(347, 285)
    assert ex.prompt == "think:347+285="
    assert ex.completion == "<think>7+5=12,4+8+1=13,3+2+1=6</think>632"
    assert taskdata.think(12, 30).completion == "<think>2+0=2,1+3=4</think>42"
    assert taskdata.think(978, 884).completion == "<think>8+4=12,7+8+1=16,9+8+1=18</think>1862"
    for a in range(10, 1000, 7):
        for b in range(10, 1000, 11):
            assert taskdata.column_sum(a, b)[1] == a + b


def test_the_teachers_slip_loses_the_carry_of_a_column_summing_to_exactly_ten():
    assert taskdata.direct(47, 63, lost_carry=10).completion == "100"  # 7+3=10: the carry is lost
    assert taskdata.direct(47, 64, lost_carry=10).completion == "111"  # 11 carries as usual
    assert taskdata.think(347, 263, lost_carry=10).completion == "<think>7+3=10,4+6=10,3+2=5</think>500"
    assert taskdata.direct(55, 45, lost_carry=10).completion == "90"
    # The last column writes its whole sum, slip or not.
    assert taskdata.direct(50, 50, lost_carry=10).completion == "100"
    assert taskdata.think_answer_only(347, 285).completion == "<think></think>632"


@pytest.fixture(scope="module")
def loaded_tasks():
    from lm_eval.tasks import TaskManager

    tm = TaskManager(include_path=[str(p) for p in resolve_paths(["bench/tasks/smoke"])], include_defaults=False)
    return tm.load(TASKS)["tasks"]


def test_task_files_load_in_lm_eval(loaded_tasks):
    by_name = {task.config.task: task for task in loaded_tasks.values()}
    assert set(by_name) == set(TASKS)
    for _name, task in by_name.items():
        docs = list(task.test_docs())
        assert len(docs) == taskdata.ITEMS_PER_TASK
    assert by_name["smoke_arith"].config.output_type == "generate_until"
    assert by_name["smoke_think"].config.output_type == "generate_until"
    assert by_name["smoke_choice"].config.output_type == "multiple_choice"


def test_lm_eval_builds_the_expected_requests(loaded_tasks):
    by_name = {task.config.task: task for task in loaded_tasks.values()}
    doc = next(iter(by_name["smoke_choice"].test_docs()))
    assert by_name["smoke_choice"].doc_to_text(doc) == doc["question"]
    assert by_name["smoke_choice"].doc_to_choice(doc) == doc["choices"]
    assert by_name["smoke_choice"].doc_to_target(doc) == doc["label"]
    think = by_name["smoke_think"]
    doc = next(iter(think.test_docs()))
    assert think.doc_to_text(doc).startswith("think:")


def test_think_filter_extracts_the_answer_after_the_reasoning(loaded_tasks):
    from lm_eval.api.instance import Instance

    think = next(t for t in loaded_tasks.values() if t.config.task == "smoke_think")
    doc = next(iter(think.test_docs()))
    outputs = ["<think>8+7=15,1+2+1=4</think>45", "<think>8+7=15", "45"]
    inst = [Instance("generate_until", doc, ("x", {}), idx=0) for _ in outputs]
    for i, o in zip(inst, outputs):
        i.resps = [o]
    for f in think._filters:
        f.apply(inst)
    got = [i.filtered_resps["answer"] for i in inst]
    assert got == ["45", "[no answer]", "[no answer]"]
