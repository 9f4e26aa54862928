"""lm-eval hooks of the R1-protocol tasks: answer extraction and scoring (``bench.evaluation.extract``),
and GPQA's items with their options shuffled per item and repeat.

The YAMLs in this folder name these functions with ``!function hooks.NAME``.
"""

from __future__ import annotations

import random

from bench.evaluation import extract, repeat

LETTERS = "ABCD"


def math_answers(resps: list[list[str]], docs: list[dict]) -> list[list[str]]:
    """Filter: each response's answer as math-verify reads it (``[no answer]`` without one)."""
    return [[extract.math_answer(r) or extract.NO_ANSWER for r in rs] for rs in resps]


def math_score(doc: dict, results: list[str]) -> dict[str, float]:
    """The extracted answer against the item's ``answer`` (AIME: ``Answer``), symbolically."""
    gold = next(v for k, v in doc.items() if k.lower() == "answer")
    return {"math_verify": float(extract.math_correct(results[0], str(gold)))}


def chosen_options(resps: list[list[str]], docs: list[dict]) -> list[list[str]]:
    """Filter: the text of the option each response's last answer letter points at, so an
    answer means the same across repeats whose option orders differ (cons@k votes on it)."""
    out = []
    for rs, doc in zip(resps, docs):
        letters = [extract.letter_answer(r) for r in rs]
        out.append([doc["choices"][LETTERS.index(x)] if x else extract.NO_ANSWER for x in letters])
    return out


def _clean(text: str | None) -> str:
    """lm-eval's GPQA text clean-up (``lm_eval.tasks.gpqa``'s ``preprocess``)."""
    if text is None:
        return " "
    return text.strip().replace(" [title]", ". ").replace("  ", " ")


def option_order(seed: int, item: str, index: int) -> list[int]:
    """The order the four options are shown in: a seeded permutation of (correct, three
    incorrect), drawn from the item and the repeat, so every repeat sees its own order and
    every model sees the same one."""
    return random.Random(f"gpqa:{seed}:{item}:{index}").sample(range(4), 4)


def gpqa_item(doc: dict, seed: int, index: int) -> dict:
    options = [_clean(doc["Correct Answer"]), *(_clean(doc[f"Incorrect Answer {i}"]) for i in (1, 2, 3))]
    order = option_order(seed, str(doc["Record ID"]), index)
    choices = [options[i] for i in order]
    return {
        "Question": _clean(doc["Question"]),
        "Record ID": doc["Record ID"],
        "choices": choices,
        **{f"choice{i + 1}": c for i, c in enumerate(choices)},
        "answer": options[0],
        "letter": LETTERS[order.index(0)],
        "repeat": index,
    }


def gpqa(path: str, name: str | None = None, revision: str | None = None, data_files=None, **_: object):
    """Custom loader (lm-eval passes the task's dataset_kwargs and metadata): GPQA with the
    options of each item in the order of the repeat being evaluated (``bench.evaluation.repeat``)."""
    import datasets

    now = repeat.current()
    kwargs = {k: v for k, v in (("revision", revision), ("data_files", data_files)) if v is not None}
    data = datasets.load_dataset(path, name, **kwargs)
    return datasets.DatasetDict(
        {
            split: rows.map(lambda d: gpqa_item(d, now.seed, now.index), remove_columns=rows.column_names)
            for split, rows in data.items()
        }
    )
