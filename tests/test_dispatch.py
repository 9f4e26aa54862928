"""The dispatcher against a local endpoint that rate-limits on cue: Retry-After is honoured in
both its forms, the requests in flight come down while 429s keep coming, retries stop at the
time bound, and a whole run against a rate-limited API completes."""

from __future__ import annotations

import email.utils
import json
import time
from collections import defaultdict
from concurrent.futures import wait

import pandas as pd
import pytest

from bench.rundir import records
from bench.serving import dispatch
from bench.serving.dispatch import Dispatcher, RequestFailed
from vendor import Endpoint, Vendor, run_against


def body(i: int) -> dict:
    return {"model": "m", "messages": [{"role": "user", "content": f"{i}+{i}="}]}


def send_all(base: str, n: int, dispatcher: Dispatcher) -> list[dict]:
    futures = [dispatcher.submit(base + "/chat/completions", body(i), {}) for i in range(n)]
    wait(futures, timeout=120)
    return [f.result().body for f in futures]


def retries_after_429(hits) -> list[float]:
    """For each request turned away with 429, seconds until the same request came back."""
    by_prompt = defaultdict(list)
    for h in hits:
        by_prompt[h.prompt].append(h)
    return [b.at - a.at for seq in by_prompt.values() for a, b in zip(seq, seq[1:]) if a.status == 429]


def test_an_endpoint_at_capacity_gets_fewer_requests_in_flight_and_every_answer(monkeypatch):
    vendor = Vendor(capacity=3, retry_after="1", delay_s=0.05)
    with Endpoint(vendor) as base, Dispatcher(16, 30, 3, "api", retry_window_s=60, seed=1) as d:
        answers = send_all(base, 60, d)
    assert [a["choices"][0]["message"]["content"] for a in answers] == [str(2 * i) for i in range(60)]
    assert d.rate_limited == sum(h.status == 429 for h in vendor.hits) > 0
    assert d.limit.lowest <= 3 < d.target  # came down to what the endpoint takes
    gaps = retries_after_429(vendor.hits)
    assert gaps and min(gaps) >= 1.0  # Retry-After: 1 honoured by every request it turned away
    # Once lowered, the limit holds (it rises again only after 10 s without a 429): the last
    # 30 requests went through without one.
    assert all(h.status == 200 for h in vendor.hits[-30:])


def test_retry_after_as_an_http_date_is_honoured():
    vendor = Vendor(rate_limit_first=1, retry_after=email.utils.formatdate(time.time() + 3, usegmt=True))
    with Endpoint(vendor) as base, Dispatcher(1, 30, 3, "api", retry_window_s=60) as d:
        send_all(base, 1, d)
    [gap] = retries_after_429(vendor.hits)
    assert gap >= 2.0  # the date is 3 s ahead, to the second: at least 2 s later
    assert [h.status for h in vendor.hits] == [429, 200]


def test_without_retry_after_backoff_grows_and_stops_at_the_time_bound(monkeypatch):
    monkeypatch.setattr(dispatch, "BACKOFF_S", 0.2)
    vendor = Vendor(rate_limit_first=1000, retry_after=None)
    t0 = time.time()
    with Endpoint(vendor) as base, Dispatcher(1, 30, 3, "api", retry_window_s=2.5) as d:
        with pytest.raises(RequestFailed, match="run.retry_window_s=2.5s"):
            d.submit(base + "/chat/completions", body(1), {}).result(timeout=30)
    assert time.time() - t0 < 4.0
    gaps = retries_after_429(vendor.hits)
    assert len(gaps) >= 3 and gaps[2] > gaps[0]  # 429s are retried beyond run.max_retries, waits grow


def test_a_whole_run_against_a_rate_limited_api_completes(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-local")
    vendor = Vendor(capacity=2, retry_after="1")
    with Endpoint(vendor) as base:
        run_dir = run_against(base, "gpt62_sol_api", tmp_path, "run.num_concurrent=8")
    assert json.loads((run_dir / "status.json").read_text())["status"] == "success"
    samples = pd.DataFrame(records.read_jsonl(run_dir / records.SAMPLES))
    assert len(samples) == 12 and samples.correct.mean() == 1.0
    [model_run] = records.read_jsonl(run_dir / records.MODEL_RUNS)
    assert model_run["rate_limited"] == sum(h.status == 429 for h in vendor.hits) > 0
    assert model_run["lowest_in_flight"] <= 2
