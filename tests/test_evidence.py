"""Distillation-evidence metrics on hand-computed cases, including the degenerate ones whose
behaviour bench/analysis/evidence.py documents."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from bench.analysis.evidence import (
    all_pairs,
    choices_per_task,
    cohen_kappa_choice,
    error_consistency,
    kappa_p,
    paired_difference,
    reading,
    recognition_summary,
    same_wrong_rate,
    surface_similarity,
)


def test_error_consistency_hand_computed():
    a = np.array([1, 1, 0, 0, 1, 0, 1, 1])
    b = np.array([1, 0, 0, 1, 1, 0, 1, 0])
    # p_a = 5/8, p_b = 4/8; observed agreement 5/8; expected 5/8*4/8 + 3/8*4/8 = 1/2.
    assert error_consistency(a, b) == pytest.approx((5 / 8 - 1 / 2) / (1 - 1 / 2))


def test_error_consistency_degenerate_cases():
    a = np.array([1, 0, 1, 0, 1])
    assert error_consistency(a, a) == pytest.approx(1.0)  # identical models
    assert error_consistency(a, 1 - a) == pytest.approx((0 - 0.48) / (1 - 0.48))  # always disagree
    # One model always right (or always wrong): the formula gives 0 whatever the other does, so
    # kappa is undefined, not 0.
    assert math.isnan(error_consistency(np.ones(5), a)) and math.isnan(error_consistency(a, np.zeros(5)))
    assert math.isnan(error_consistency(np.ones(5), np.ones(5)))  # all answers right: undefined
    assert math.isnan(error_consistency(np.zeros(3), np.zeros(3)))  # all wrong: undefined
    assert math.isnan(error_consistency(np.array([]), np.array([])))


def test_same_wrong_answer_rate():
    ok_a, ok_b = np.array([0, 0, 0, 1]), np.array([0, 0, 1, 0])
    ans_a, ans_b = np.array(["12", "7", "3", "4"]), np.array(["12", "8", "3", "5"])
    assert same_wrong_rate(ok_a, ok_b, ans_a, ans_b) == 0.5  # items 0 and 1 are wrong for both
    assert math.isnan(same_wrong_rate(np.ones(3), np.zeros(3), ans_a[:3], ans_b[:3]))  # no shared errors


def test_kappa_p():
    ok_a, ok_b = np.array([1, 1, 0, 0]), np.array([1, 0, 0, 0])
    ch_a, ch_b = np.array([0, 2, 1, 3]), np.array([0, 1, 1, 2])
    # p_a = .5, p_b = .25; expected .5*.25 + .5*.75/3 = .25; observed 2/4.
    assert kappa_p(ok_a, ok_b, ch_a, ch_b, k=4) == pytest.approx((0.5 - 0.25) / 0.75)
    assert kappa_p(ok_a, ok_a, ch_a, ch_a, k=4) == pytest.approx(1.0)
    assert math.isnan(kappa_p(np.ones(3), np.ones(3), np.zeros(3), np.zeros(3), k=4))
    # Against a model that is always right, agreement is the other's accuracy: undefined.
    assert math.isnan(kappa_p(np.ones(4), ok_b, np.zeros(4), ch_b, k=4))
    # A model always wrong still chooses among wrong options: its kappa_p stays defined.
    assert not math.isnan(kappa_p(np.zeros(4), ok_b, np.array([1, 2, 3, 1]), ch_b, k=4))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cohen_kappa_on_chosen_options_matches_statsmodels(seed):
    from statsmodels.stats.inter_rater import cohens_kappa

    rng = np.random.default_rng(seed)
    a = rng.integers(0, 4, 80)
    b = np.where(rng.random(80) < 0.6, a, rng.integers(0, 4, 80))
    table = np.zeros((4, 4))
    np.add.at(table, (a, b), 1)
    assert cohen_kappa_choice(a, b, k=4) == pytest.approx(cohens_kappa(table).kappa, rel=1e-12)
    assert math.isnan(cohen_kappa_choice(np.zeros(5, int), np.zeros(5, int), k=4))  # one option only


def test_a_teacher_without_errors_leaves_kappa_undefined_in_the_csv_and_the_tables():
    """Not 0.00 [0.00, 0.00]: undefined, with the reason, in evidence.csv, the matrix and the tables."""
    from bench.analysis.evidence import kappa_matrix, value_text

    rng = np.random.default_rng(3)
    n = 40
    choice_t = rng.integers(0, 4, n)
    target = choice_t.copy()  # the teacher is always right
    choice_s = np.where(rng.random(n) < 0.7, target, (target + 1) % 4)
    rows = [
        {
            "model": m,
            "role": r,
            "task": "mc",
            "doc_id": i,
            "correct": float(c[i] == target[i]),
            "extracted": str(c[i]),
            "response": str(c[i]),
            "n_requests": 4,
        }
        for m, r, c in (("T", "teacher", choice_t), ("S", "student", choice_s))
        for i in range(n)
    ]
    pairs = all_pairs(pd.DataFrame(rows), {"mc": 4}, seed=0, n_boot=200).set_index("metric")
    for metric in ("error_consistency", "kappa_p", "same_wrong_answer"):
        assert math.isnan(pairs.loc[metric, "value"]), metric
        assert pairs.loc[metric, "note"] == "undefined: T made no errors"
        assert value_text(pairs.loc[metric]) == "undefined: T made no errors"
    assert not math.isnan(pairs.loc["cohen_kappa_choice", "value"])  # defined: options still vary
    m = kappa_matrix(pairs.reset_index(), "mc")
    assert math.isnan(m.loc["T", "S"]) and math.isnan(m.loc["T", "T"]) and m.loc["S", "S"] == 1.0
    csv = pairs.reset_index().to_csv(index=False)
    assert "0.0,0.0,0.0" not in csv and "undefined: T made no errors" in csv


def test_surface_similarity():
    assert surface_similarity("abc", "abc") == 1.0
    assert surface_similarity("abc", "xyz") == 0.0
    # unigrams {a,b} vs {a,c}: 2*1/4; bigrams {ab} vs {ac}: 0  -> mean over n=1,2 (no trigrams)
    assert surface_similarity("ab", "ac") == pytest.approx(0.25)


def frame(models: dict[str, tuple[list[int], list[str]]], task: str = "t", role=None) -> pd.DataFrame:
    rows = []
    for m, (ok, ans) in models.items():
        for i, (c, a) in enumerate(zip(ok, ans)):
            rows.append(
                {
                    "model": m,
                    "role": (role or {}).get(m, "student"),
                    "task": task,
                    "doc_id": i,
                    "correct": float(c),
                    "extracted": a,
                    "response": a,
                    "n_requests": 1,
                }
            )
    return pd.DataFrame(rows)


def test_all_pairs_covers_every_pair_and_matches_the_functions():
    ok_t, ok_s, ok_c = [1, 0, 0, 1, 0, 1], [1, 0, 0, 0, 0, 1], [0, 1, 0, 1, 1, 1]
    ans = {
        "T": ["1", "x", "y", "4", "z", "6"],
        "S": ["1", "x", "y", "q", "z", "6"],
        "C": ["0", "2", "w", "4", "5", "6"],
    }
    df = frame({"T": (ok_t, ans["T"]), "S": (ok_s, ans["S"]), "C": (ok_c, ans["C"])})
    pairs = all_pairs(df, {}, seed=0, n_boot=200)
    assert set(zip(pairs.model_a, pairs.model_b)) == {("T", "S"), ("T", "C"), ("S", "C")}
    kappa = pairs[(pairs.model_a == "T") & (pairs.model_b == "S") & (pairs.metric == "error_consistency")].value.item()
    assert kappa == pytest.approx(error_consistency(np.array(ok_t), np.array(ok_s)))
    same = pairs[(pairs.model_a == "T") & (pairs.model_b == "S") & (pairs.metric == "same_wrong_answer")].value.item()
    assert same == 1.0  # S copies every one of T's wrong answers


def test_choices_are_read_from_the_requests_per_item():
    df = pd.DataFrame({"task": ["mc", "mc", "gen"], "n_requests": [4, 4, 1]})
    assert choices_per_task(df) == {"mc": 4}


def test_reading_says_so_when_a_student_copies_errors_and_never_more_than_the_numbers():
    rng = np.random.default_rng(0)
    n = 200
    t = (rng.random(n) < 0.6).astype(int)
    s = t.copy()
    s[rng.choice(n, 20, replace=False)] ^= 1  # the student mostly repeats the teacher
    c = (rng.random(n) < 0.6).astype(int)  # the control is independent

    def ans(ok, tag):
        return [str(i) if k else f"{tag}{i}" for i, k in enumerate(ok)]

    df = frame(
        {"T": (t, ans(t, "w")), "S": (s, ans(s, "w")), "C": (c, ans(c, "v"))},
        role={"T": "teacher", "S": "student", "C": "control"},
    )
    pairs = all_pairs(df, {}, seed=0, n_boot=300)
    text = "\n".join(reading(df, pairs, pd.DataFrame(), seed=0))
    assert "S shares T's errors more than their accuracies explain, and more than C does" in text
    # Same data, but the "student" is just another independent model: no claim of imitation.
    s2 = (rng.random(n) < 0.6).astype(int)
    df2 = frame(
        {"T": (t, ans(t, "w")), "S": (s2, ans(s2, "u")), "C": (c, ans(c, "v"))},
        role={"T": "teacher", "S": "student", "C": "control"},
    )
    text2 = "\n".join(reading(df2, all_pairs(df2, {}, seed=0, n_boot=300), pd.DataFrame(), seed=0))
    assert "more than C does" not in text2
    assert "cannot tell S and C apart" in text2


def test_reading_when_the_teacher_makes_no_errors():
    df = frame(
        {"T": ([1, 1, 1], ["1", "2", "3"]), "S": ([1, 0, 1], ["1", "x", "3"]), "C": ([0, 1, 1], ["y", "2", "3"])},
        role={"T": "teacher", "S": "student", "C": "control"},
    )
    text = "\n".join(reading(df, all_pairs(df, {}, seed=0, n_boot=50), pd.DataFrame(), seed=0))
    assert "T made no errors here, so shared errors cannot be measured" in text


def test_paired_difference_of_kappas():
    t = np.array([1, 0, 1, 0, 1, 0, 1, 0] * 10)
    df = frame(
        {"T": (t, ["a"] * 80), "S": (t, ["a"] * 80), "C": (np.roll(t, 1), ["a"] * 80)},
        role={"T": "teacher", "S": "student", "C": "control"},
    )
    d, lo, hi = paired_difference(df, "T", "S", "C", "t", seed=0, n_boot=200)
    assert d == pytest.approx(1.0 - error_consistency(np.roll(t, 1), t))
    assert lo <= d <= hi


def test_recognition_summary_is_mean_logprob_per_token():
    scored = pd.DataFrame(
        {
            "model": ["S", "S", "C"],
            "task": ["t"] * 3,
            "doc_id": [0, 1, 0],
            "tokens": [2, 4, 5],
            "logprob_sum": [-1.0, -4.0, -10.0],
        }
    )
    out = recognition_summary(scored, seed=0, n_boot=100).set_index("model")
    assert out.loc["S"].teacher_logprob_per_token == pytest.approx((-0.5 + -1.0) / 2)
    assert out.loc["C"].teacher_logprob_per_token == pytest.approx(-2.0)


def test_kappa_matrix_is_symmetric_with_ones_on_the_diagonal():
    from bench.analysis.evidence import kappa_matrix

    pairs = pd.DataFrame(
        [
            {"task": "t", "model_a": "A", "model_b": "B", "metric": "error_consistency", "value": 0.3},
            {"task": "t", "model_a": "A", "model_b": "C", "metric": "error_consistency", "value": -0.1},
            {"task": "t", "model_a": "B", "model_b": "C", "metric": "same_wrong_answer", "value": 0.9},
        ]
    )
    m = kappa_matrix(pairs, "t")
    assert m.loc["A", "B"] == m.loc["B", "A"] == 0.3 and m.loc["C", "A"] == -0.1
    assert (np.diag(m.to_numpy()) == 1.0).all() and math.isnan(m.loc["B", "C"])
