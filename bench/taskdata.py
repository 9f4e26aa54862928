"""The smoke suite's items and the zoo's training data, made from one seeded generator.

    python -m bench.taskdata            # rewrite bench/tasks/smoke/*.jsonl (deterministic)

Three tasks on two-digit addition, each a different lm-eval output type:

- ``smoke_arith``: ``47+85=`` -> ``132``, generated and scored by exact match.
- ``smoke_think``: ``think:47+85=`` -> ``<think>7+5=12,4+8+1=13</think>132``; the answer
  follows a reasoning trace inside delimiters and is extracted by a regex filter.
- ``smoke_choice``: ``47+85=`` with four candidate sums, scored by log-likelihood.

Test items are disjoint from every training pair, so the zoo never sees a test problem.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

TASK_DIR = Path(__file__).parent / "tasks" / "smoke"
THINK_START, THINK_END = "<think>", "</think>"
OPERANDS = range(10, 100)
ITEMS_PER_TASK = 300
SUITE_SEED = 20250120  # the day DeepSeek-R1 was released


@dataclass(frozen=True)
class Example:
    """One training or test sequence: the model reads ``prompt`` and should write ``completion``."""

    prompt: str
    completion: str


def direct(a: int, b: int) -> Example:
    return Example(f"{a}+{b}=", str(a + b))


def trace(a: int, b: int) -> str:
    """Column addition written out, least significant digit first."""
    units = a % 10 + b % 10
    tens = a // 10 + b // 10 + units // 10
    carry = f"+{units // 10}" if units >= 10 else ""
    return f"{a % 10}+{b % 10}={units},{a // 10}+{b // 10}{carry}={tens}"


def think(a: int, b: int) -> Example:
    return Example(f"think:{a}+{b}=", f"{THINK_START}{trace(a, b)}{THINK_END}{a + b}")


def distractors(total: int, rng: random.Random) -> list[int]:
    """Three wrong sums of the kinds a column adder makes (dropped carry, off by one)."""
    pool = [total - 10, total + 10, total - 1, total + 1, total - 11, total + 11]
    pool = [c for c in pool if c >= 20 and c != total]
    return rng.sample(pool, 3)


def split_pairs(seed: int = SUITE_SEED) -> tuple[dict[str, list[tuple[int, int]]], list[tuple[int, int]]]:
    """Test pairs per task (disjoint) and the remaining pairs for training."""
    pairs = [(a, b) for a in OPERANDS for b in OPERANDS]
    random.Random(seed).shuffle(pairs)
    tasks = ["smoke_arith", "smoke_think", "smoke_choice"]
    test = {t: pairs[i * ITEMS_PER_TASK:(i + 1) * ITEMS_PER_TASK] for i, t in enumerate(tasks)}
    return test, pairs[len(tasks) * ITEMS_PER_TASK:]


def test_docs(seed: int = SUITE_SEED) -> dict[str, list[dict]]:
    """The shipped JSONL rows of each task."""
    test, _ = split_pairs(seed)
    rng = random.Random(seed + 1)
    docs: dict[str, list[dict]] = {}
    docs["smoke_arith"] = [
        {"id": i, "a": a, "b": b, "question": direct(a, b).prompt, "answer": direct(a, b).completion}
        for i, (a, b) in enumerate(test["smoke_arith"])
    ]
    docs["smoke_think"] = [
        {"id": i, "a": a, "b": b, "question": think(a, b).prompt, "answer": str(a + b)}
        for i, (a, b) in enumerate(test["smoke_think"])
    ]
    rows = []
    for i, (a, b) in enumerate(test["smoke_choice"]):
        choices = [a + b, *distractors(a + b, rng)]
        rng.shuffle(choices)
        rows.append({"id": i, "a": a, "b": b, "question": direct(a, b).prompt,
                     "choices": [str(c) for c in choices], "label": choices.index(a + b)})
    docs["smoke_choice"] = rows
    return docs


def training_pairs(seed: int = SUITE_SEED) -> list[tuple[int, int]]:
    return split_pairs(seed)[1]


def write_suite(out_dir: Path = TASK_DIR, seed: int = SUITE_SEED) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for task, rows in test_docs(seed).items():
        path = out_dir / f"{task.removeprefix('smoke_')}.jsonl"
        path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
        written.append(path)
    return written


if __name__ == "__main__":
    for p in write_suite():
        print(p)
