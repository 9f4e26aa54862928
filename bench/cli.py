"""The ``bench`` command.

bench run [HYDRA OVERRIDES ...]      # same as `make bench ARGS="..."`
bench plan [HYDRA OVERRIDES ...]     # what a run would serve, on which GPUs, and its tokens, time and $
bench fetch [HYDRA OVERRIDES ...]    # download its Hub models and data sets ahead (HF_HUB_OFFLINE=1: check)
bench report RUN_DIR [RUN_DIR ...]   # rebuild summary.csv, report.md/.html and the plots from records
                                     # (several runs: merged into --out, default results/merged/<time>)
bench evidence RUN_DIR               # distillation evidence from the records (evidence.md)
bench verify RUN_DIR                 # re-score and check records, manifest hashes and summary agree
bench zoo [--force]                  # build the tiny teacher, student and control
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def report_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="bench report",
        description="Rebuild a run's report from its records; several runs are merged "
        "into one comparison written to a new folder.",
    )
    parser.add_argument("run_dirs", nargs="+", type=Path)
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for a merged report (default with several runs: results/merged/<timestamp>)",
    )
    parser.add_argument(
        "--partial",
        action="store_true",
        help="report runs that did not finish (status not 'success'), labelled PARTIAL",
    )
    args = parser.parse_args(argv)
    from bench import report

    out = args.out
    if out is None and len(args.run_dirs) > 1:
        import time

        out = Path("results") / "merged" / time.strftime("%Y-%m-%d_%H-%M-%S")
    folder = report.rebuild(args.run_dirs, out, args.partial)
    print(
        f"report rebuilt from the records of {len(args.run_dirs)} run(s): {folder / 'report.md'}, "
        f"{folder / 'report.html'}"
    )


def evidence_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="bench evidence", description="Distillation evidence from a run's records (no server)."
    )
    parser.add_argument("run_dir", type=Path)
    args = parser.parse_args(argv)
    from bench.report import write_evidence

    print(write_evidence(args.run_dir.resolve()))


def main() -> None:
    argv = sys.argv[1:]
    command = argv[0] if argv and not ("=" in argv[0] or argv[0].startswith("-")) else "run"
    rest = argv[1:] if argv and argv[0] == command else argv
    if command == "run":
        from bench import run

        sys.argv = [sys.argv[0], *rest]
        run.main()
    elif command == "plan":
        from bench import plan

        plan.main(rest)
    elif command == "fetch":
        from bench import fetch

        fetch.main(rest)
    elif command == "report":
        report_main(rest)
    elif command == "evidence":
        evidence_main(rest)
    elif command == "verify":
        from bench import verify

        verify.main(rest)
    elif command == "zoo":
        from bench import zoo

        zoo.main(rest)
    else:
        raise SystemExit(f"unknown command {command!r} (available: run, plan, fetch, report, verify, evidence, zoo)")


if __name__ == "__main__":
    main()
