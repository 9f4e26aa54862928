"""A simulated GPU engine: vLLM-style continuous batching on a roofline model of a GPU (pure).

The simulated OpenAI-compatible server (``bench/serving/simulate_http.py``) drives one ``Engine`` per
data-parallel replica on a simulated clock that runs ``time_scale`` times faster than the
wall clock, so an hour of a GPU box passes in seconds. Nothing here reads a clock or touches
the network: the engine is told what time it is (``advance_to``) and answers what finished.

The model of one replica, and where each part comes from:

- **Decode step time** grows with the batch and with the model (``Timing``): every step
  reads the weights once and the KV cache of every running sequence once, at the device's
  memory bandwidth times an efficiency (decoding is memory-bound), plus a fixed cost per step
  (scheduling, sampling, kernel launches) and a cost per sequence in the batch. A step that
  admits new requests also prefills their prompts at the device's FLOPs times an efficiency.
  One step gives every running sequence one token (vLLM V1 prefills and samples the first
  token in the same step).
- **KV cache**: a fixed number of tokens per replica. A waiting request is admitted (first
  come, first served) while its prompt fits beside what is running and the batch is under
  ``max_num_seqs``, as vLLM's scheduler admits by free blocks; running sequences grow by one
  token a step, and when the cache is full the most recently admitted one is preempted back to
  the head of the queue and recomputed when readmitted (vLLM's recompute preemption).
- **Output lengths** are log-normal, drawn from the prompt (the item's own difficulty) and the
  request's seed (the sample), capped at ``max_tokens`` (finish reason ``length``).
- **Answers**: correct with a probability per item drawn around the model's accuracy for the
  task, so samples of one item agree more than samples of different items; the item and its
  right answer are found in an answer key (``AnswerKey``) by the prompt's text.

``occupancy`` and ``filled_at`` read the server's own account (``/sim/stats``) back.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import random
import re
from collections import deque
from dataclasses import dataclass, field

OPTION = re.compile(r"^([A-D])\) (.*)$", re.MULTILINE)
"""An option line of a multiple-choice prompt (GPQA's ``A) text``)."""


@dataclass(frozen=True)
class Timing:
    """Step time of one replica (all of its tensor-parallel devices together)."""

    weights_bytes: float
    kv_bytes_per_token: float
    bandwidth_bytes_s: float
    """Effective memory bandwidth: peak x efficiency x devices."""
    flops: float
    """Effective FLOP/s for prefill: peak x efficiency x devices."""
    params: float
    step_overhead_s: float
    per_sequence_s: float

    def step_s(self, batch: int, context_tokens: float, prefill_tokens: int = 0) -> float:
        """Seconds of one engine step with ``batch`` sequences holding ``context_tokens`` of KV
        cache, ``prefill_tokens`` of which are new prompts computed in this step."""
        read = self.weights_bytes + context_tokens * self.kv_bytes_per_token
        compute = 2.0 * self.params * prefill_tokens / self.flops
        return self.step_overhead_s + batch * self.per_sequence_s + read / self.bandwidth_bytes_s + compute


@dataclass
class Sequence:
    """One request inside an engine."""

    rid: int
    prompt_tokens: int
    target_tokens: int
    """Tokens it will generate (its drawn length, already capped at ``max_tokens``)."""
    arrived_s: float
    generated: int = 0
    """Tokens generated before its current admission (kept across a preemption)."""
    start_step: int = 0
    admitted_s: float | None = None
    """First admission (queue time ends here)."""
    first_token_s: float | None = None
    finished_s: float | None = None
    preemptions: int = 0
    admit_order: int = 0

    def context(self, step: int) -> int:
        return self.prompt_tokens + self.generated + (step - self.start_step)


@dataclass
class Occupancy:
    """Time-weighted occupancy of one engine, integrated as the engine runs."""

    busy_s: float = 0.0
    """Simulated time with at least one sequence running."""
    running_s: float = 0.0
    """Integral of the running batch size over time (sequence-seconds)."""
    kv_token_s: float = 0.0
    """Integral of KV-cache tokens in use over time."""
    queued_s: float = 0.0
    """Simulated time with requests waiting for admission."""
    waiting_s: float = 0.0
    """Integral of the number of requests waiting for admission over time."""
    first_arrival: tuple[float, float, float, float] | None = None
    """(time, running_s, kv_token_s, waiting_s) when the first request arrived."""
    last_arrival: tuple[float, float, float, float] | None = None
    """The same when the latest request arrived: between the two, the client was still
    sending (its pool had not drained)."""


@dataclass
class Engine:
    """Continuous batching in one replica. ``add`` a request, ``advance_to`` a time; finished
    sequences come back from ``advance_to``."""

    timing: Timing
    kv_tokens: int
    max_num_seqs: int
    now: float = 0.0
    step: int = 0
    waiting: deque = field(default_factory=deque)
    running: dict = field(default_factory=dict)
    _finish: list = field(default_factory=list)
    """Heap of (finish step, admission order, rid); entries of preempted sequences go stale."""
    _kv_base: int = 0
    """Sum over running sequences of (prompt + generated - start_step): KV in use is
    ``_kv_base + len(running) * step``, kept without touching every sequence each step."""
    _admissions: int = 0
    _carry: float = 0.0
    """Simulated time elapsed towards the next step (a step is never cut short)."""
    _prefill: int = 0
    _fresh: list = field(default_factory=list)
    """Sequences admitted for the first time since the last step (their first token is due)."""
    preemptions: int = 0
    stats: Occupancy = field(default_factory=Occupancy)

    @property
    def kv_used(self) -> int:
        return self._kv_base + len(self.running) * self.step

    @property
    def load(self) -> int:
        return len(self.running) + len(self.waiting)

    def add(self, seq: Sequence) -> None:
        """A request arrives now (call ``advance_to`` its arrival time first)."""
        seq.arrived_s = self.now
        mark = (self.now, self.stats.running_s, self.stats.kv_token_s, self.stats.waiting_s)
        self.stats.first_arrival = self.stats.first_arrival or mark
        self.stats.last_arrival = mark
        self.waiting.append(seq)
        self._admit()

    def _admit(self) -> None:
        while self.waiting and len(self.running) < self.max_num_seqs:
            seq = self.waiting[0]
            need = seq.prompt_tokens + seq.generated + 1
            if self.kv_used + need > self.kv_tokens and self.running:
                return
            self.waiting.popleft()
            seq.start_step = self.step
            self._admissions += 1
            seq.admit_order = self._admissions
            if seq.admitted_s is None:
                seq.admitted_s = self.now
                self._fresh.append(seq)
            self.running[seq.rid] = seq
            self._kv_base += seq.prompt_tokens + seq.generated - self.step
            # Prefill: the prompt, plus what a preempted sequence had generated (recomputed).
            self._prefill += seq.prompt_tokens + seq.generated
            heapq.heappush(self._finish, (self.step + seq.target_tokens - seq.generated, seq.admit_order, seq.rid))

    def _preempt_newest(self) -> None:
        seq = max(self.running.values(), key=lambda s: s.admit_order)
        del self.running[seq.rid]
        self._kv_base -= seq.prompt_tokens + seq.generated - seq.start_step
        seq.generated += self.step - seq.start_step
        seq.preemptions += 1
        self.preemptions += 1
        self.waiting.appendleft(seq)

    def _next_finish(self) -> int:
        """Steps until the first running sequence finishes (stale heap entries dropped)."""
        while self._finish:
            finish, order, rid = self._finish[0]
            seq = self.running.get(rid)
            if seq is not None and seq.admit_order == order:
                return finish - self.step
            heapq.heappop(self._finish)
        raise AssertionError("no running sequence")

    def abort(self, seq: Sequence) -> None:
        """Drop a request (its client went away), as vLLM aborts it."""
        if seq in self.waiting:
            self.waiting.remove(seq)
        elif self.running.get(seq.rid) is seq:
            del self.running[seq.rid]
            self._kv_base -= seq.prompt_tokens + seq.generated - seq.start_step

    def next_event_s(self) -> float | None:
        """Simulated seconds until the next running sequence finishes (None: nothing runs)."""
        if not self.running:
            return None
        return self.step_s() * max(1, self._next_finish()) - self._carry

    def step_s(self) -> float:
        return self.timing.step_s(len(self.running), self.kv_used, self._prefill)

    def advance_to(self, t: float) -> list[Sequence]:
        """Run the engine up to simulated time ``t``; the sequences that finished meanwhile."""
        done: list[Sequence] = []
        while True:
            if not self.running:
                self._account(t - self.now)
                self.now, self._carry = max(self.now, t), 0.0
                return done
            step_s = self.step_s()
            budget = t - self.now + self._carry
            if budget < step_s:
                self._carry, self.now = budget, t
                return done
            batch = len(self.running)
            free = self.kv_tokens - self.kv_used
            room = max(1, free // batch) if free >= batch else 1
            n = min(self._next_finish(), room, int(budget // step_s))
            # A prefill is paid by one step; else at most 256 steps at one step time (the KV
            # cache, and with it the step time, grows).
            n = 1 if self._prefill else max(1, min(n, 256))
            self._account(n * step_s)  # the steps began ``_carry`` before ``now``
            self.now += n * step_s - self._carry
            self._carry = 0.0
            self.step += n
            self._prefill = 0
            for seq in self._fresh:
                seq.first_token_s = self.now - (n - 1) * step_s
            self._fresh.clear()
            done += self._collect_finished()
            while self.running and self.kv_used > self.kv_tokens:
                self._preempt_newest()
            self._admit()

    def _collect_finished(self) -> list[Sequence]:
        done = []
        while self.running and self._next_finish() <= 0:
            _, _, rid = heapq.heappop(self._finish)
            seq = self.running.pop(rid)
            self._kv_base -= seq.prompt_tokens + seq.generated - seq.start_step
            seq.generated += self.step - seq.start_step
            seq.finished_s = self.now
            done.append(seq)
        return done

    def _account(self, dt: float) -> None:
        if dt <= 0:
            return
        if self.running:
            self.stats.busy_s += dt
            self.stats.running_s += dt * len(self.running)
            self.stats.kv_token_s += dt * self.kv_used
        if self.waiting:
            self.stats.queued_s += dt
            self.stats.waiting_s += dt * len(self.waiting)


def stable_rng(*parts: object) -> random.Random:
    """A generator seeded by the parts' text (stable across processes, unlike ``hash``)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def draw_length(mean: float, sigma: float, prompt: str, seed: object, temperature: float) -> int:
    """A completion length: log-normal with this mean, half its log-variance from the item
    (the prompt) and half from the sample (the seed; none at temperature 0)."""
    mu = math.log(max(mean, 1.0)) - sigma * sigma / 2
    half = sigma / math.sqrt(2)
    item = stable_rng("length", prompt).gauss(0.0, half)
    sample = stable_rng("length", prompt, seed).gauss(0.0, half) if temperature > 0 else 0.0
    return max(1, int(round(math.exp(mu + item + sample))))


def item_accuracy(accuracy: float, prompt: str, concentration: float = 2.0) -> float:
    """The probability that a sample of this item is right: Beta-distributed around the
    model's accuracy (low concentration: items are mostly easy or mostly hard)."""
    a = max(min(accuracy, 0.999), 0.001) * concentration
    return stable_rng("difficulty", prompt).betavariate(a, concentration - a)


def is_correct(accuracy: float, prompt: str, seed: object, temperature: float) -> bool:
    p = item_accuracy(accuracy, prompt)
    return stable_rng("correct", prompt, seed if temperature > 0 else "greedy").random() < p


def wrong_answer(answer: str, rng: random.Random) -> str:
    """A plausible wrong answer: another letter, a nearby number, or a mangled expression."""
    if len(answer) == 1 and answer in "ABCD":
        return rng.choice([c for c in "ABCD" if c != answer])
    try:
        value = int(answer)
    except ValueError:
        return answer + "+1"
    return str(value + rng.choice([-3, -2, -1, 1, 2, 3, 10]))


def response_text(
    answer: str | None, correct: bool, rng: random.Random, tokens: int, finished: bool, think_end: str | None
) -> str:
    """What the simulated model writes: a placeholder for its trace (the token counts are in
    ``usage``; the text is not ``tokens`` long), then, if it finished, the answer both as the
    math tasks read it (the last ``\\boxed{}``) and as GPQA reads it (the last ``Answer: X``)."""
    trace = f"[simulated reasoning: {tokens} tokens]"
    if not finished:
        return trace
    said = "?" if answer is None else answer if correct else wrong_answer(answer, rng)
    close = f"\n{think_end}\n\n" if think_end else "\n\n"
    return f"{trace}{close}The final answer is $\\boxed{{{said}}}$.\n\nAnswer: {said}"


def prompt_tokens(body: dict, chat: bool) -> tuple[str, int]:
    """The prompt's text and its length in tokens, at about 4 characters a token (English BPE
    vocabularies: GPT-2's through Qwen's), plus a few tokens per chat message for the template."""
    if chat:
        messages = body.get("messages") or []
        text = "\n".join(str(m.get("content") or "") for m in messages)
        return (messages[-1].get("content") or "") if messages else "", math.ceil(len(text) / 4) + 6 * len(messages) + 2
    prompt = body.get("prompt", "")
    if isinstance(prompt, list):
        prompt = prompt[0] if prompt else ""
    if isinstance(prompt, list):  # token ids
        return " ".join(map(str, prompt)), len(prompt)
    return str(prompt), max(1, math.ceil(len(str(prompt)) / 4))


class AnswerKey:
    """Prompt text -> (task, answer), from the spec's key; multiple-choice items also match on
    their stem, their answer then being the letter of the correct option's text in the prompt
    actually sent (robust to options shuffled differently)."""

    def __init__(self, entries: list[dict]):
        self.exact = {e["text"]: e for e in entries}
        self.by_stem = {self.stem(e["text"]): e for e in entries if e.get("option")}
        self._memo: dict[str, tuple[str | None, str | None]] = {}

    @staticmethod
    def stem(text: str) -> str:
        m = OPTION.search(text)
        return text[: m.start()] if m else text

    def lookup(self, text: str) -> tuple[str | None, str | None]:
        if text in self._memo:
            return self._memo[text]
        e = self.exact.get(text)
        found: tuple[str | None, str | None] = (None, None)
        if e is not None:
            found = (e["task"], e["answer"])
        else:
            e = self.by_stem.get(self.stem(text))
            if e is not None:
                letters = {body.strip(): letter for letter, body in OPTION.findall(text)}
                found = (e["task"], letters.get(e["option"].strip()))
        self._memo[text] = found
        return found


def filled_at(stats: dict, running: float) -> float | None:
    """The wall-clock time (epoch seconds) the engines first ran ``running`` sequences or more."""
    t = next((p[0] for p in stats["timeline"] if p[1] >= running), None)
    return None if t is None else stats["started_at"] + t / stats["time_scale"]


def occupancy(stats: dict, start: float, end: float) -> dict[str, float]:
    """Mean running and waiting sequences and KV-cache share in use between two wall-clock
    times (epoch seconds), from a server's ``/sim/stats`` (timeline points nearest inside)."""
    to_sim = lambda t: (t - stats["started_at"]) * stats["time_scale"]  # noqa: E731
    lo, hi = to_sim(start), to_sim(end)
    points = [p for p in stats["timeline"] if lo <= p[0] <= hi]
    if len(points) < 2:
        raise ValueError(f"fewer than two timeline points between {lo:.0f}s and {hi:.0f}s (simulated)")
    a, b = points[0], points[-1]
    span = b[0] - a[0]
    return {
        "running": (b[4] - a[4]) / span,
        "waiting": (b[5] - a[5]) / span,
        "kv_share": (b[6] - a[6]) / span / stats["kv_tokens"],
        "simulated_s": span,
    }
