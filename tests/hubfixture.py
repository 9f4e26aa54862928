"""A local Hugging Face Hub cache for offline tests: the R1 suite's data sets, in the real
repositories' file layout and schema but with made-up items, and hub model ids whose snapshots
hold a tiny zoo model.

Layout as huggingface_hub writes it (``HF_HUB_CACHE``; ``hubcache.fake_repo``). What each
repository holds, as published (the test only relies on what lm-eval and the tasks read):

- ``HuggingFaceH4/MATH-500``: ``test.jsonl``, fields problem, solution, answer, subject, level,
  unique_id (its first commit has no dataset card; the files alone define the ``test`` split).
- ``Maxwell-Jia/AIME_2024``: ``aime_2024_problems.parquet``, columns ID, Problem, Solution,
  Answer (an integer); one ``train`` split.
- ``Idavidrein/gpqa`` (gated): a dataset card whose ``configs`` map ``gpqa_diamond`` to
  ``gpqa_diamond.csv`` (and main, extended, experts to theirs); columns include Question,
  Correct Answer, Incorrect Answer 1-3, Explanation, Record ID, Subdomain, High-level domain.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import socket
from pathlib import Path

import pytest

from hubcache import fake_repo

GPQA_CARD = """---
license: cc-by-4.0
viewer: true
extra_gated_prompt: >-
  You agree to NOT reveal examples from this dataset in plain text or images
  online, to reduce the risk of leakage into foundation model training corpora.
configs:
- config_name: gpqa_extended
  data_files: gpqa_extended.csv
- config_name: gpqa_main
  data_files: gpqa_main.csv
- config_name: gpqa_diamond
  data_files: gpqa_diamond.csv
- config_name: gpqa_experts
  data_files: gpqa_experts.csv
---
# GPQA (test fixture: made-up items in the published layout)
"""
GPQA_COLUMNS = [
    "Pre-Revision Question",
    "Pre-Revision Correct Answer",
    "Pre-Revision Incorrect Answer 1",
    "Pre-Revision Incorrect Answer 2",
    "Pre-Revision Incorrect Answer 3",
    "Pre-Revision Explanation",
    "Question",
    "Correct Answer",
    "Incorrect Answer 1",
    "Incorrect Answer 2",
    "Incorrect Answer 3",
    "Explanation",
    "Record ID",
    "Subdomain",
    "High-level domain",
]


def math500(n: int, seed: int = 500) -> bytes:
    rng = random.Random(seed)
    subjects = ["Algebra", "Prealgebra", "Number Theory", "Counting & Probability", "Geometry"]
    lines = []
    for i in range(n):
        a, b = rng.randint(11, 99), rng.randint(11, 99)
        subject = subjects[i % len(subjects)]
        lines.append(
            json.dumps(
                {
                    "problem": f"Compute ${a} \\times {b}$. (item {i})",
                    "solution": f"${a} \\times {b} = \\boxed{{{a * b}}}$.",
                    "answer": str(a * b),
                    "subject": subject,
                    "level": 1 + i % 5,
                    "unique_id": f"test/{subject.lower().replace(' ', '_')}/{i}.json",
                }
            )
        )
    return ("\n".join(lines) + "\n").encode()


def aime2024(n: int = 30, seed: int = 2024) -> bytes:
    import pandas as pd

    rng = random.Random(seed)
    rows = []
    for i in range(n):
        a, b = rng.randint(100, 999), rng.randint(2, 9)
        rows.append(
            {
                "ID": f"2024-{'I' if i < 15 else 'II'}-{i % 15 + 1}",
                "Problem": f"Find the remainder when ${a}^{b}$ is divided by $1000$.",
                "Solution": "By repeated squaring.",
                "Answer": pow(a, b, 1000),
            }
        )
    buf = io.BytesIO()
    pd.DataFrame(rows).to_parquet(buf, index=False)
    return buf.getvalue()


def gpqa_diamond(n: int = 198, seed: int = 198) -> bytes:
    rng = random.Random(seed)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=GPQA_COLUMNS)
    writer.writeheader()
    for i in range(n):
        z = rng.randint(3, 40)
        right, wrong = f"{z} protons", [f"{z + d} protons" for d in (1, 2, 3)]
        row = dict.fromkeys(GPQA_COLUMNS, "")
        row.update(
            {
                "Question": f"How many protons does the nucleus of element {z} have? (item {i})",
                "Correct Answer": right,
                "Incorrect Answer 1": wrong[0],
                "Incorrect Answer 2": wrong[1],
                "Incorrect Answer 3": wrong[2],
                "Explanation": "By definition of the atomic number.",
                "Record ID": f"rec{i:05d}",
                "Subdomain": "Physics (general)",
                "High-level domain": "Physics",
            }
        )
        writer.writerow(row)
    return out.getvalue().encode()


def model_files(zoo_model: Path, context: int) -> dict[str, bytes | Path]:
    """A zoo model's files, with the context of the model it stands in for."""
    files: dict[str, bytes | Path] = {p.name: p for p in zoo_model.iterdir() if p.is_file()}
    config = json.loads((zoo_model / "config.json").read_text())
    config["max_position_embeddings"] = context
    files["config.json"] = json.dumps(config, indent=2).encode()
    tok = json.loads((zoo_model / "tokenizer_config.json").read_text())
    tok["model_max_length"] = context
    files["tokenizer_config.json"] = json.dumps(tok, indent=2).encode()
    return files


def make_hub_cache(
    cache: Path, zoo_dir: Path, math_items: int = 500, aime_items: int = 30, gpqa_items: int = 198
) -> Path:
    """The fixture cache at ``cache`` (use it as ``HF_HUB_CACHE``)."""
    fake_repo(cache, "HuggingFaceH4/MATH-500", {"test.jsonl": math500(math_items)}, repo_type="dataset")
    fake_repo(cache, "Maxwell-Jia/AIME_2024", {"aime_2024_problems.parquet": aime2024(aime_items)}, repo_type="dataset")
    # The card names four CSV files; datasets resolves all of them whichever config is loaded.
    fake_repo(
        cache,
        "Idavidrein/gpqa",
        {
            "README.md": GPQA_CARD,
            "gpqa_diamond.csv": gpqa_diamond(gpqa_items),
            **{f"gpqa_{name}.csv": gpqa_diamond(3, seed=i) for i, name in enumerate(("main", "extended", "experts"))},
        },
        repo_type="dataset",
    )
    # The R1 student's published config allows 131,072 positions; its base model 4,096.
    fake_repo(cache, "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", model_files(zoo_dir / "tiny_student", 131072))
    fake_repo(cache, "Qwen/Qwen2.5-Math-1.5B", model_files(zoo_dir / "tiny_control", 4096))
    return cache


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory, zoo_dir):
    """The fixture cache as this process's and its children's Hugging Face cache, offline.

    huggingface_hub and datasets read their cache folders from module constants (set from the
    environment at import) at call time, so both are patched; children get the environment."""
    import datasets.config
    import huggingface_hub.constants

    root = tmp_path_factory.mktemp("hf")
    cache = make_hub_cache(root / "hub", zoo_dir)
    with pytest.MonkeyPatch.context() as mp:
        for var, value in (
            ("HF_HUB_CACHE", cache),
            ("HF_DATASETS_CACHE", root / "datasets"),
            ("HF_HUB_OFFLINE", "1"),
            ("HF_DATASETS_OFFLINE", "1"),
        ):
            mp.setenv(var, str(value))
        mp.delenv("HF_TOKEN", raising=False)
        mp.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
        mp.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(root / "no_token"))
        mp.setattr(datasets.config, "HF_DATASETS_CACHE", root / "datasets")
        yield cache


@pytest.fixture
def no_network(monkeypatch):
    """Any connection from this process to anything but this machine fails the test."""
    real = socket.socket.connect

    def connect(sock, address):
        host = address[0] if isinstance(address, tuple) else address
        if sock.family in (socket.AF_INET, socket.AF_INET6) and host not in ("127.0.0.1", "::1", "localhost"):
            raise AssertionError(f"network access to {address} during an offline test")
        return real(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
