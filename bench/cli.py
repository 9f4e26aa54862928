"""The ``bench`` command.

    bench run [HYDRA OVERRIDES ...]      # same as `make bench ARGS="..."`
    bench report RUN_DIR [RUN_DIR ...]   # rebuild summary.csv, report.md and the plots from records
    bench evidence RUN_DIR               # distillation evidence from the records (evidence.md)
    bench zoo [--force]                  # build the tiny teacher, student and control
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def report_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench report", description="Rebuild a run's report from its records.")
    parser.add_argument("run_dirs", nargs="+", type=Path)
    args = parser.parse_args(argv)
    from bench import report

    for run_dir in args.run_dirs:
        if not (run_dir / "config.json").is_file():
            raise SystemExit(f"{run_dir} is not a run folder (no config.json)")
        report.build(run_dir.resolve())
        print(f"{run_dir}: report rebuilt from its records ({run_dir / 'report.md'})")


def evidence_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench evidence",
                                     description="Distillation evidence from a run's records (no server).")
    parser.add_argument("run_dir", type=Path)
    args = parser.parse_args(argv)
    import json

    import pandas as pd

    from bench import records
    from bench.report import evidence_section

    run_dir = args.run_dir.resolve()
    samples = pd.DataFrame(records.read_jsonl(run_dir / records.SAMPLES))
    if samples.empty:
        raise SystemExit(f"{run_dir}: no per-sample records; nothing to compare")
    seed = json.loads((run_dir / "config.json").read_text())["run"]["seed"]
    text = evidence_section(run_dir, samples, seed)
    records.write_atomic(run_dir / "evidence.md", text)
    print(text)


def main() -> None:
    argv = sys.argv[1:]
    command = argv[0] if argv and not ("=" in argv[0] or argv[0].startswith("-")) else "run"
    rest = argv[1:] if argv and argv[0] == command else argv
    if command == "run":
        from bench import run

        sys.argv = [sys.argv[0], *rest]
        run.main()
    elif command == "report":
        report_main(rest)
    elif command == "evidence":
        evidence_main(rest)
    elif command == "zoo":
        from bench import zoo

        zoo.main(rest)
    else:
        raise SystemExit(f"unknown command {command!r} (available: run, report, evidence, zoo)")


if __name__ == "__main__":
    main()
