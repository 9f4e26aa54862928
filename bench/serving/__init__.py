"""Serving stage: starting and reaching the model servers a run measures.

vLLM servers and their endpoints (``serve``, ``endpoint``), the simulated servers the tests and the
smoke run use in their place (``simulate``, ``simulate_http``, ``simulate_spec``), how requests are
sent to them (``concurrency``, ``dispatch``, ``ratelimit``), and what serving costs and whether it is
possible at all (``energy``, ``availability``).
"""
