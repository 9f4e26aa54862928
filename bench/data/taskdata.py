"""The smoke suite's items and the zoo's training prompts, made from one seeded generator.

    python -m bench.data.taskdata       # rewrite bench/tasks/smoke/*.jsonl (deterministic)

Three tasks on addition, each a different lm-eval output type:

- ``smoke_arith``: ``47+85=`` -> ``132`` (two-digit operands), generated, exact match.
- ``smoke_think``: ``think:347+285=`` -> ``<think>7+5=12,4+8+1=13,3+2+1=6</think>632``
  (three-digit operands): column addition written out, least significant column first, then
  the answer, which a regex filter extracts after the closing delimiter. Three-digit sums are
  what makes this a reasoning task: a model this small does not learn them answer-first
  (PLATFORM.md: 2% after 4 minutes), but learns them one column at a time.
- ``smoke_choice``: ``47+85=`` with four candidate sums, scored by log-likelihood. One wrong
  option is always the sum with the units carry dropped (``total - 10``), the commonest slip of
  column addition; the other two are drawn from the other near misses.

Test items are disjoint from every training pair, so the zoo never sees a test problem.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from bench.config import PACKAGE_DIR

TASK_DIR = PACKAGE_DIR / "tasks" / "smoke"
THINK_START, THINK_END = "<think>", "</think>"
TWO_DIGIT = range(10, 100)
THREE_DIGIT = range(100, 1000)
ITEMS_PER_TASK = 300
TRAIN_THREE_DIGIT_PAIRS = 7500
"""Three-digit training prompts (the two-digit ones are every pair not used for testing)."""
SUITE_SEED = 20250120  # the day DeepSeek-R1 was released
TASKS = ("smoke_arith", "smoke_think", "smoke_choice")


@dataclass(frozen=True)
class Example:
    """One training or test sequence: the model reads ``prompt`` and should write ``completion``."""

    prompt: str
    completion: str


@dataclass(frozen=True)
class Split:
    """Test pairs per task and the training pairs of each prompt form."""

    test: dict[str, list[tuple[int, int]]]
    direct_train: list[tuple[int, int]]
    think_train: list[tuple[int, int]]


def column_sum(a: int, b: int, lost_carry: int | None = None) -> tuple[str, int]:
    """Column addition of ``a + b``, least significant column first: (trace, answer).

    Each column is written ``x+y=s`` (``x+y+1=s`` with a carry in). A column whose sum reaches
    10 carries 1 into the next; the last column writes its whole sum. ``lost_carry`` models a
    systematic slip: a column summing to exactly that value carries nothing (None: no slip,
    true arithmetic).
    """
    da, db = _digits(a), _digits(b)
    width = max(len(da), len(db))
    da += [0] * (width - len(da))
    db += [0] * (width - len(db))
    steps, written, carry = [], [], 0
    for i in range(width):
        s = da[i] + db[i] + carry
        steps.append(f"{da[i]}+{db[i]}" + (f"+{carry}" if carry else "") + f"={s}")
        if i == width - 1:
            written.append(str(s))
        else:
            written.append(str(s % 10))
            carry = 1 if s >= 10 and s != lost_carry else 0
    return ",".join(steps), int("".join(reversed(written)))


def _digits(n: int) -> list[int]:
    return [int(c) for c in reversed(str(n))]


def direct(a: int, b: int, lost_carry: int | None = None) -> Example:
    return Example(f"{a}+{b}=", str(column_sum(a, b, lost_carry)[1]))


def think(a: int, b: int, lost_carry: int | None = None) -> Example:
    trace, answer = column_sum(a, b, lost_carry)
    return Example(f"think:{a}+{b}=", f"{THINK_START}{trace}{THINK_END}{answer}")


def think_answer_only(a: int, b: int) -> Example:
    """The reasoning prompt answered without reasoning: the correct sum after an empty block."""
    return Example(f"think:{a}+{b}=", f"{THINK_START}{THINK_END}{a + b}")


def distractors(total: int, rng: random.Random) -> list[int]:
    """The dropped units carry (``total - 10``) and two other near misses."""
    others = [c for c in (total + 10, total - 1, total + 1, total - 11, total + 11) if c > 0]
    return [total - 10, *rng.sample(others, 2)]


def split(seed: int = SUITE_SEED) -> Split:
    rng = random.Random(seed)
    two = [(a, b) for a in TWO_DIGIT for b in TWO_DIGIT]
    rng.shuffle(two)
    three: set[tuple[int, int]] = set()
    while len(three) < ITEMS_PER_TASK + TRAIN_THREE_DIGIT_PAIRS:
        three.add((rng.choice(THREE_DIGIT), rng.choice(THREE_DIGIT)))
    drawn = sorted(three)
    rng.shuffle(drawn)
    n = ITEMS_PER_TASK
    test = {"smoke_arith": two[:n], "smoke_choice": two[n : 2 * n], "smoke_think": drawn[:n]}
    return Split(test=test, direct_train=two[2 * n :], think_train=drawn[n:])


def test_docs(seed: int = SUITE_SEED) -> dict[str, list[dict]]:
    """The shipped JSONL rows of each task."""
    test = split(seed).test
    rng = random.Random(seed + 1)
    docs: dict[str, list[dict]] = {}
    docs["smoke_arith"] = [
        {"id": i, "a": a, "b": b, "question": direct(a, b).prompt, "answer": str(a + b)}
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
        rows.append(
            {
                "id": i,
                "a": a,
                "b": b,
                "question": direct(a, b).prompt,
                "choices": [str(c) for c in choices],
                "label": choices.index(a + b),
            }
        )
    docs["smoke_choice"] = rows
    return {t: docs[t] for t in TASKS}


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
