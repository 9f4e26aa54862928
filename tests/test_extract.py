"""Answer extraction against a fixture of hand-made reasoning-trace endings.

``fixtures/answer_endings.jsonl`` holds 56 endings written by hand the way R1-distilled and
frontier models end their answers (boxed, unboxed, LaTeX fractions, ``\\frac`` against ``/``,
units, "Final Answer" headers, two boxes, answers inside the reasoning, traces cut at the
token limit, no answer at all), each with what a careful grader reads from it: for the math
items whether the response's answer equals the gold one, for the GPQA items the letter it
commits to (null: none). Every extractor, old and new, is scored against it; the agreement
figures are pinned, so a change in an extractor or in math-verify shows up here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest

from bench.evaluation import extract
from conftest import ROOT

FIXTURE = ROOT / "tests" / "fixtures" / "answer_endings.jsonl"
ROWS = [json.loads(line) for line in FIXTURE.read_text().splitlines() if line.strip()]
MATH = [r for r in ROWS if r["extractor"] == "math"]
LETTER = [r for r in ROWS if r["extractor"] == "letter"]


def lm_eval_aime(response: str, gold: str) -> bool:
    """lm-eval 0.4.13's aime24 scorer (the last box, hendrycks-math string normalisation),
    which both R1 math tasks used before."""
    from lm_eval.tasks.aime.utils import process_results

    return bool(process_results({"answer": gold}, [response])["exact_match"])


def math_verify_pipeline(response: str, gold: str) -> bool:
    """What r1_aime24 and r1_math500 score now: the filter's answer, then the comparison."""
    return extract.math_correct(extract.math_answer(response), gold)


OLD_GPQA = re.compile(r"(?i)Answer[ \t]*:[ \t]*\**[ \t]*\$?\(?([A-D])\b")  # r1_gpqa_diamond before
SIMPLE_EVALS = re.compile(r"(?i)Answer[ \t]*:[ \t]*\$?([A-D])\$?")  # simple-evals' ANSWER_PATTERN_MULTICHOICE


def old_gpqa(response: str) -> str | None:
    found = OLD_GPQA.findall(response)
    return found[-1].upper() if found else None


def simple_evals(response: str) -> str | None:
    found = SIMPLE_EVALS.search(response)
    return found.group(1).upper() if found else None


def agreement(rows: list[dict], judge: Callable[[dict], object], key: str) -> tuple[float, list[str]]:
    """Share of fixture items where the extractor reads what the grader read, and the misses."""
    misses = [r["id"] for r in rows if judge(r) != r[key]]
    return 1 - len(misses) / len(rows), misses


MATH_EXTRACTORS = {
    "bench.evaluation.extract (math-verify)": lambda r: math_verify_pipeline(r["response"], r["gold"]),
    "lm-eval aime24 (last box, string normalisation)": lambda r: lm_eval_aime(r["response"], r["gold"]),
}
LETTER_EXTRACTORS = {
    "bench.evaluation.extract.letter_answer": lambda r: extract.letter_answer(r["response"]),
    "previous r1_gpqa_diamond regex (last 'Answer: X')": lambda r: old_gpqa(r["response"]),
    "simple-evals ANSWER_PATTERN_MULTICHOICE (first)": lambda r: simple_evals(r["response"]),
}
# Agreement pinned: (agreeing items, items); the misses are listed in the report below.
EXPECTED = {
    "bench.evaluation.extract (math-verify)": (35, 36),
    "lm-eval aime24 (last box, string normalisation)": (26, 36),
    "bench.evaluation.extract.letter_answer": (20, 20),
    "previous r1_gpqa_diamond regex (last 'Answer: X')": (10, 20),
    "simple-evals ANSWER_PATTERN_MULTICHOICE (first)": (6, 20),
}


def test_the_fixture_is_large_and_covers_the_forms_models_write():
    assert len(ROWS) >= 40 and len({r["id"] for r in ROWS}) == len(ROWS)
    notes = " ".join(r["note"] for r in ROWS)
    for form in ("boxed", "Final Answer", "\\frac", "unit", "two boxes", "no answer", "token limit"):
        assert form in notes, form
    assert any(r["correct"] is False for r in MATH) and any(r["letter"] is None for r in LETTER)


def test_agreement_of_every_extractor_with_the_fixture(capsys):
    lines = []
    for name, judge in MATH_EXTRACTORS.items():
        share, misses = agreement(MATH, judge, "correct")
        lines.append((name, round(share * len(MATH)), len(MATH), misses))
    for name, judge in LETTER_EXTRACTORS.items():
        share, misses = agreement(LETTER, judge, "letter")
        lines.append((name, round(share * len(LETTER)), len(LETTER), misses))
    with capsys.disabled():
        print("\nagreement with tests/fixtures/answer_endings.jsonl:")
        for name, hits, n, misses in lines:
            print(f"  {name}: {hits}/{n} = {hits / n:.1%}" + (f"  (misses: {', '.join(misses)})" if misses else ""))
    assert {name: (hits, n) for name, hits, n, _ in lines} == EXPECTED


def test_the_new_extractors_miss_only_the_documented_case():
    # m26 gives its answer with neither a box, nor a closed reasoning block, nor the word
    # "answer"; reading it would mean reading the last number of any unfinished trace (m12).
    assert agreement(MATH, MATH_EXTRACTORS["bench.evaluation.extract (math-verify)"], "correct")[1] == ["m26"]
    assert agreement(LETTER, LETTER_EXTRACTORS["bench.evaluation.extract.letter_answer"], "letter")[1] == []


@pytest.mark.parametrize(
    "response,answer",
    [
        ("</think>\n\n$\\boxed{\\dfrac{3}{4}}$", "\\frac{3}{4}"),
        ("<think>\n\\boxed{9}\n</think>\n\nThe answer is $\\boxed{7}$.", "7"),
        ("</think>\n\nThe price fell by $\\boxed{25\\%}$.", "25"),
        ("Still working: 2+2 is 4, then", None),  # no closed reasoning, no box, no "answer"
    ],
)
def test_math_answer_is_what_the_records_keep(response, answer):
    assert extract.math_answer(response) == answer


def test_math_answers_round_trip_through_the_record():
    """The scorer parses the recorded answer again: it must still be the same expression."""
    for r in MATH:
        answer = extract.math_answer(r["response"])
        if answer is not None:
            assert extract.math_correct(answer, answer), (r["id"], answer)


def test_letters_inside_the_reasoning_do_not_count():
    assert extract.letter_answer("<think>\nAnswer: A\n</think>\n\nI cannot tell.") is None
    assert extract.letter_answer("<think>\nAnswer: A\n</think>\n\nAnswer: B") == "B"
    assert extract.letter_answer("Answer: a photon is emitted") is None  # an article, not option A
