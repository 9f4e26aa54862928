"""The simulated engine's model of a GPU (bench/serving/simulate.py): step time, KV cache, queueing,
preemption, output lengths and answers, without a clock or a socket."""

from __future__ import annotations

import math
import statistics

import pytest

from bench.serving.simulate import Engine, Sequence, Timing, draw_length, is_correct, response_text, stable_rng

H100 = dict(bandwidth_bytes_s=3.35e12 * 0.7, flops=989e12 * 0.5, step_overhead_s=0.004, per_sequence_s=10e-6)


def timing(params_b: float, kv_bytes: int) -> Timing:
    return Timing(weights_bytes=params_b * 2e9, kv_bytes_per_token=kv_bytes, params=params_b * 1e9, **H100)


SMALL, LARGE = timing(1.8, 28672), timing(32.8, 262144)  # R1-Distill-Qwen-1.5B and -32B presets


def test_step_time_grows_with_the_batch_and_with_the_model():
    assert SMALL.step_s(1, 1000) < SMALL.step_s(64, 64_000) < SMALL.step_s(512, 512_000)
    assert SMALL.step_s(64, 64_000) < LARGE.step_s(64, 64_000)
    # Decode is memory-bound: a 1.5B model's full batch streams its 64 GB KV cache each step.
    full = SMALL.step_s(515, 2.246e6)
    assert 0.02 < full < 0.05
    assert 8_000 < 515 / full < 20_000  # tokens/s of one H100, inside the h100 preset's band
    # A prefill costs FLOPs on top of the step.
    assert SMALL.step_s(1, 1000, prefill_tokens=4000) > SMALL.step_s(1, 1000)


def run_all(engine: Engine, seqs: list[Sequence], until: float = 1e6) -> list[Sequence]:
    for s in seqs:
        engine.add(s)
    done = []
    t = 0.0
    while len(done) < len(seqs) and t < until:
        t += 1.0
        done += engine.advance_to(t)
    return done


def test_the_kv_cache_caps_the_batch_and_queues_the_rest_in_arrival_order():
    engine = Engine(SMALL, kv_tokens=1_000, max_num_seqs=256)
    seqs = [Sequence(i, prompt_tokens=100, target_tokens=20, arrived_s=0.0) for i in range(30)]
    for s in seqs:
        engine.add(s)
    assert len(engine.running) == 9 and len(engine.waiting) == 21  # 9 x (100 + 1) fit, not 10
    done = []
    t = 0.0
    while engine.load:
        t += 0.05
        done += engine.advance_to(t)
        assert engine.kv_used <= engine.kv_tokens
    assert sorted(s.rid for s in done) == list(range(30))
    assert all(s.generated == 20 for s in done)
    admitted = sorted(done, key=lambda s: s.admitted_s)
    assert [s.rid for s in admitted] == list(range(30))  # first come, first served
    assert admitted[-1].admitted_s - admitted[-1].arrived_s > 0  # the last ones queued


def test_max_num_seqs_caps_the_batch():
    engine = Engine(SMALL, kv_tokens=10**7, max_num_seqs=4)
    for i in range(10):
        engine.add(Sequence(i, 10, 5, 0.0))
    assert len(engine.running) == 4 and len(engine.waiting) == 6


def test_a_full_cache_preempts_the_newest_and_loses_no_token():
    engine = Engine(SMALL, kv_tokens=3_000, max_num_seqs=256)
    seqs = [Sequence(i, prompt_tokens=50, target_tokens=900, arrived_s=0.0) for i in range(8)]
    done = run_all(engine, seqs)
    assert len(done) == 8 and engine.preemptions > 0
    assert all(s.generated == 900 for s in done)
    assert max(s.preemptions for s in done) >= 1


def test_a_sequence_alone_decodes_at_the_step_rate():
    engine = Engine(SMALL, kv_tokens=10**6, max_num_seqs=256)
    seq = Sequence(0, prompt_tokens=100, target_tokens=2_000, arrived_s=0.0)
    done = run_all(engine, [seq])
    assert done == [seq]
    expected = sum(SMALL.step_s(1, 100 + k) for k in range(2_000))
    assert seq.finished_s == pytest.approx(expected, rel=0.01)
    assert seq.first_token_s == pytest.approx(SMALL.step_s(1, 100, prefill_tokens=100), rel=0.01)


def test_the_batch_speeds_up_the_box_and_slows_each_sequence():
    def finish(n: int) -> float:
        engine = Engine(SMALL, kv_tokens=10**7, max_num_seqs=1024)
        done = run_all(engine, [Sequence(i, 100, 1_000, 0.0) for i in range(n)])
        return max(s.finished_s for s in done)

    one, many = finish(1), finish(256)
    assert many > one  # each sequence is slower in a big batch...
    assert 256 * 1_000 / many > 50 * (1_000 / one)  # ...and the box far faster


def test_lengths_are_long_tailed_seeded_by_prompt_and_sample():
    prompt = "Compute $12 \\times 34$."
    assert draw_length(4_000, 0.83, prompt, 7, 0.6) == draw_length(4_000, 0.83, prompt, 7, 0.6)
    assert len({draw_length(4_000, 0.83, prompt, s, 0.6) for s in range(20)}) > 15
    assert len({draw_length(4_000, 0.83, prompt, s, 0.0) for s in range(20)}) == 1  # greedy: no sample part
    draws = [draw_length(4_000, 0.83, f"item {i}", i, 0.6) for i in range(20_000)]
    assert statistics.mean(draws) == pytest.approx(4_000, rel=0.05)
    assert statistics.pstdev(draws) / statistics.mean(draws) == pytest.approx(1.0, abs=0.15)
    assert max(draws) > 8 * 4_000  # traces of 32K tokens occur at a 4K mean
    # AIME-length traces (mean 13,500) run into the 32,768-token limit a few percent of the time.
    aime = [draw_length(13_500, 0.83, f"aime {i}", i, 0.6) for i in range(5_000)]
    assert 0.01 < sum(d > 32_768 for d in aime) / len(aime) < 0.15


def test_accuracy_is_per_item_around_the_model_accuracy():
    items = [f"q{i}" for i in range(400)]
    right = [[is_correct(0.7, q, s, 0.6) for s in range(16)] for q in items]
    overall = sum(map(sum, right)) / (400 * 16)
    assert overall == pytest.approx(0.7, abs=0.05)
    # Samples of one item agree more than chance: items are easy or hard.
    per_item = [sum(r) / 16 for r in right]
    assert statistics.pvariance(per_item) > 3 * 0.7 * 0.3 / 16


def test_a_response_carries_the_answer_both_ways_unless_cut_short():
    rng = stable_rng("x")
    text = response_text("42", True, rng, 3_000, True, "</think>")
    assert "</think>" in text and text.endswith("\\boxed{42}$.\n\nAnswer: 42")
    wrong = response_text("B", False, rng, 10, True, None)
    assert "Answer: B" not in wrong and wrong.rstrip()[-1] in "ACD"
    assert "boxed" not in response_text("42", True, rng, 32_768, False, "</think>")
    assert math.isfinite(float(response_text("7", False, rng, 5, True, None).split("Answer: ")[1]))


def test_the_engine_accounts_for_every_second_of_every_sequence():
    engine = Engine(SMALL, kv_tokens=10**6, max_num_seqs=64)
    seqs = [Sequence(i, 100, 200 + 37 * i, 0.0) for i in range(100)]
    done, t = [], 0.0
    for s in seqs:
        engine.add(s)
    while engine.load:
        t += 0.0137  # calls that fall between steps, as a clock does
        done += engine.advance_to(t)
    running = sum(s.finished_s - s.admitted_s for s in done)
    assert engine.preemptions == 0
    assert engine.stats.running_s == pytest.approx(running, rel=0.01)
    assert engine.stats.busy_s == pytest.approx(max(s.finished_s for s in done), rel=0.01)
