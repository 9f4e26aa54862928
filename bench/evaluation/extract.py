"""Answers read out of reasoning traces, and their scores (pure: text in, answer or verdict out).

Two extractors, each as lenient as the reference implementations and no more:

- **math** (AIME, MATH-500): Hugging Face's ``math-verify``, the scorer of open-r1 and
  lighteval. It finds the last ``\\boxed{...}`` (or, failing that, the last answer-like
  expression), parses it to SymPy, and compares it with the gold answer symbolically, so
  ``\\frac{1}{2}``, ``1/2``, ``0.5`` and ``\\dfrac12`` agree, and units or ``^\\circ`` do not
  count against an answer;
- **letter** (GPQA): the last option letter the response commits to, written as simple-evals
  asks (``Answer: C``) or as R1-distilled models write it (``**Answer:** C``,
  ``Answer: \\boxed{A}``, ``The answer is \\boxed{C}.``, ``**Final Answer**\\n\\boxed{D}``,
  ``The correct answer is C.``).

A trace that closes its reasoning (``</think>``) is read after it only: a letter or a box
inside the reasoning is a step, not the answer. A trace that never closes it is read whole.

``math-verify`` times its parsing out with ``signal.alarm``, which works only on the main
thread; the harness scores repeats on worker threads, so the timeouts are off here.
"""

from __future__ import annotations

import logging
import re

# math-verify warns once per process that its timeouts are off; that is deliberate here.
for _name in ("math_verify.parser", "math_verify.grader"):
    logging.getLogger(_name).setLevel(logging.ERROR)

THINK_END = "</think>"
NO_ANSWER = "[no answer]"


def final_part(text: str, think_end: str = THINK_END) -> str:
    """What follows the last closing reasoning delimiter, or the whole text without one."""
    cut = text.rfind(think_end)
    return text if cut < 0 else text[cut + len(think_end) :]


# --- math --------------------------------------------------------------------------------------


def _configs(anchored: bool) -> list:
    from math_verify import ExprExtractionConfig, LatexExtractionConfig

    # A box wins over any other expression (priority 0), as in open-r1's accuracy reward.
    # ``anchored``: only a box or an expression the text calls the answer ("the answer is",
    # "Answer:"), as open-r1 does; a bare last number does not count.
    return [
        LatexExtractionConfig(boxed_match_priority=0, try_extract_without_anchor=not anchored),
        ExprExtractionConfig(try_extract_without_anchor=not anchored),
    ]


def _parse(text: str, anchored: bool = False) -> list:
    from math_verify import parse

    return parse(
        text,
        extraction_config=_configs(anchored),
        fallback_mode="first_match",
        extraction_mode="any_match",
        parsing_timeout=None,
    )


_TRAILING = re.compile(r"(?:\\?%|[.,;:\s])+$")


def math_answer(response: str) -> str | None:
    """The answer a response gives, as the LaTeX that math-verify parsed (None: no answer).

    After a closed reasoning block any final expression counts; a text that never closes
    one (a trace cut at the token limit, or a model that writes no block) must box its
    answer or call it the answer, or the last number of an unfinished thought would count.
    The string is what the records keep and what cons@k votes on; :func:`math_correct`
    parses it again, so it must mean the same expression when boxed on its own."""
    found = _parse(final_part(response), anchored=THINK_END not in response)
    if found and isinstance(found[0], str):
        # A box math-verify found but could not parse: retry without what trips it (a
        # closing full stop, a percent sign), as a grader reading "25\\%" or "204." would.
        found = _parse(f"\\boxed{{{_TRAILING.sub('', found[0])}}}")
    if not found or isinstance(found[0], str):
        return None
    expr = found[0]
    text = found[1] if len(found) > 1 and isinstance(found[1], str) else None
    if text is None or not _same(_parse(f"\\boxed{{{text}}}"), expr):
        import sympy

        text = sympy.latex(expr)
    return text


def _same(parsed: list, expr) -> bool:
    from math_verify import verify

    return bool(parsed) and verify([expr], parsed, timeout_seconds=None)


def math_gold(answer: str) -> list:
    """The gold answer as math-verify parses it (a task's ``answer`` field, boxed)."""
    return _parse(f"\\boxed{{{answer}}}")


def math_correct(extracted: str | None, gold: str) -> bool:
    """Whether an extracted answer equals the gold one symbolically."""
    from math_verify import verify

    if extracted is None or extracted == NO_ANSWER:
        return False
    parsed = _parse(f"\\boxed{{{extracted}}}")
    return bool(parsed) and verify(math_gold(gold), parsed, timeout_seconds=None)


# --- option letters ----------------------------------------------------------------------------

_OPEN = r"(?:\*\*|\$|\\boxed\{|\\text(?:bf)?\{|\\mathrm\{|\(|\[|\s)*"
_LETTER = r"\(?(?P<letter>[A-D])\)?"
_CLOSE = r"(?=[\s}$*.,:;)\]]|$)"
LETTER_PATTERNS = (
    # "Answer: C", "**Answer:** C", "Answer: \boxed{A}", "Final Answer: (B)", "ANSWER: $D$"
    re.compile(r"(?i:answer)\s*(?:\*\*)?\s*[:：]\s*(?:\*\*)?" + _OPEN + _LETTER + _CLOSE),
    # "\boxed{C}", "\boxed{\text{C}}", "\boxed{(B)}"
    re.compile(r"\\boxed\{\s*(?:\\text(?:bf)?\{)?\s*" + _LETTER + r"\s*\}"),
    # "The answer is C.", "the correct answer is (B)", "The final answer is option D"
    re.compile(
        r"(?i:(?:answer|correct\s+option|correct\s+choice)\s+(?:is|would\s+be|must\s+be)(?:\s+option)?)[\s:]*"
        + _OPEN
        + _LETTER
        + _CLOSE
    ),
    # "Answer: C) 42 eV" is covered above; "**C)** ..." on its own line after "Final Answer"
    re.compile(r"(?i:final\s+answer)\**\s*\n+\s*" + _OPEN + _LETTER + _CLOSE),
)


def letter_answer(response: str) -> str | None:
    """The last option letter (A-D) the response gives as its answer; None if it gives none."""
    text = final_part(response)
    best = None
    for pattern in LETTER_PATTERNS:
        for m in pattern.finditer(text):
            if best is None or m.end("letter") > best.end("letter"):
                best = m
    return best.group("letter") if best else None
