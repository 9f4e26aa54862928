"""The report's first sentence: which baseline it names, how it words the numbers, and that its
numbers are the summary's."""

from __future__ import annotations

import math
import re

import pandas as pd
import pytest

import runfolder
from bench.analysis import cost_intervals, headline
from bench.analysis.headline import Estimate, Headline, frontier_baseline, sentence
from bench.analysis.stats import paired_vs_teacher
from bench.analysis.summarize import summarize
from bench.rundir import run_folders


def test_the_frontier_baseline_is_billed_by_tokens_a_stand_in_first_then_the_most_accurate():
    summary = pd.DataFrame(
        {"model": ["hosted", "api_a", "api_b", "stand_in"], "role": ["baseline"] * 4, "accuracy": [0.99, 0.9, 0.8, 0.5]}
    )
    api = {"basis": "api_tokens"}
    prices = {
        "models": {
            "hosted": {"basis": "device_time"},
            "api_a": api,
            "api_b": api,
            "stand_in": {**api, "stands_in_for": "o1"},
        }
    }
    assert frontier_baseline(summary, prices) == "stand_in"
    del prices["models"]["stand_in"]["stands_in_for"]
    assert frontier_baseline(summary, prices) == "api_a"
    assert frontier_baseline(summary[summary.model == "hosted"], prices) is None


def one(points: float, cheaper: float, stands_in_for: str | None = "o1-2024-12-17") -> Headline:
    return Headline(
        student="s",
        teacher="t",
        retained=Estimate(0.85, 0.81, 0.88),
        cost_share=Estimate(0.4, 0.3, 0.55),
        cost_method=cost_intervals.TIMED,
        n_tasks=3,
        baseline="api",
        stands_in_for=stands_in_for,
        cheaper=Estimate(cheaper, cheaper * 0.9, cheaper * 1.1),
        points=Estimate(points, points - 2, points + 2),
    )


def test_sentence_words_the_direction_of_each_difference():
    text = sentence(one(14.6, 5400.0))
    assert text.startswith(
        "The distilled student s keeps 85.0% [81.0%, 88.0%] of t's accuracy at "
        "40.0% [30.0%, 55.0%] of its cost per correct answer; against api, a stand-in billed at "
        "o1-2024-12-17's API list prices (not o1-2024-12-17 itself), it is 5,400× [4,860×, 5,940×] "
        "cheaper per correct answer at 14.6 [12.6, 16.6] points lower accuracy."
    )
    text = sentence(one(-3.0, 0.5, stands_in_for=None))
    assert "against api it is 2× [1.82×, 2.22×] dearer per correct answer" in text
    assert "at 3.0 [1.0, 5.0] points higher accuracy." in text and "stand-in" not in text


def test_headline_numbers_are_the_summarys(tmp_path):
    spec = runfolder.Spec(models=[*runfolder.Spec().models, runfolder.FRONTIER])
    run = run_folders.load(runfolder.write(tmp_path / "run", spec))
    summary = summarize(run.samples, run.task_runs, run.prices)
    reps = cost_intervals.bootstrap(run.samples, summary, 0)
    paired = pd.DataFrame([vars(c) for c in paired_vs_teacher(run.samples, seed=0)])
    (h,) = headline.compute(summary, paired, reps, run.prices)
    total = summary.groupby("model")[["usd", "n_correct", "n"]].sum()
    per_correct = total.usd / total.n_correct
    accuracy = total.n_correct / total.n
    assert (h.student, h.teacher, h.baseline, h.stands_in_for) == (
        "tiny_student",
        "tiny_teacher",
        "frontier_api",
        "o1-2024-12-17",
    )
    assert h.retained.value == pytest.approx(accuracy["tiny_student"] / accuracy["tiny_teacher"])
    assert h.cost_share.value == pytest.approx(per_correct["tiny_student"] / per_correct["tiny_teacher"])
    assert h.cheaper.value == pytest.approx(per_correct["frontier_api"] / per_correct["tiny_student"])
    assert h.points.value == pytest.approx(100 * (accuracy["frontier_api"] - accuracy["tiny_student"]))
    for e in (h.retained, h.cost_share, h.cheaper, h.points):
        assert e.low <= e.value <= e.high and math.isfinite(e.high)
    assert re.search(r"keeps \d+\.\d% \[\d+\.\d%, \d+\.\d%\] of tiny_teacher's accuracy", sentence(h))
