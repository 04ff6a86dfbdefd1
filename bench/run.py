"""Run the benchmark suite: ``make bench`` (quick) or ``make bench-full``.

Each benchmark compares the registry against a baseline measured in the same run and writes its
results (with the machine's description) to ``bench/results/``; the quick run only prints, so a
developer can try it without touching the recorded figures.
"""

from __future__ import annotations

import argparse

from bench import contract_render, import_rate, settlement_rate, takeup_rate

QUICK = (
    (import_rate.main, ["--rows", "2000", "--database", "sqlite", "--no-write"]),
    (
        takeup_rate.main,
        ["--takeups", "200", "--inline-takeups", "8", "--database", "sqlite", "--no-write"],
    ),
    (contract_render.main, ["--contracts", "3", "--cold-runs", "1", "--no-write"]),
    (settlement_rate.main, ["--payments", "5000", "--database", "sqlite", "--no-write"]),
)
FULL = (
    (import_rate.main, ["--rows", "10000", "--database", "both"]),
    (takeup_rate.main, ["--database", "both"]),
    (contract_render.main, ["--contracts", "20", "--cold-runs", "5"]),
    (settlement_rate.main, ["--payments", "10000", "100000", "--database", "both"]),
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="small runs on SQLite, print only")
    mode.add_argument("--full", action="store_true", help="full runs on both databases, recorded")
    args = parser.parse_args(argv)
    for benchmark, arguments in FULL if args.full else QUICK:
        benchmark(arguments)


if __name__ == "__main__":
    main()
