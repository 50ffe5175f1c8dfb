"""How long `rollbot --help` takes, start of the process to its exit: the median of many runs.

    .venv/bin/python bench/bench_cli_startup.py [--runs 20]

Prints the median and the fastest next to the goal; writes bench/results/cli_startup.json. Goal: < 0.3 s.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchlib import report

GOAL_S = 0.3


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    rollbot = shutil.which("rollbot", path=str(Path(sys.executable).parent)) or "rollbot"
    subprocess.run([rollbot, "--help"], capture_output=True, check=True)  # warm the file cache
    times = []
    for _ in range(args.runs):
        started = time.perf_counter()
        subprocess.run([rollbot, "--help"], capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    median = statistics.median(times)
    summary = {"command": "rollbot --help", "runs": args.runs, "median_s": round(median, 3),
               "min_s": round(min(times), 3), "goal_s": GOAL_S, "goal_met": median < GOAL_S}
    report("cli_startup", summary, [
        f"rollbot --help: median {median:.3f} s over {args.runs} runs (goal < {GOAL_S} s) -> "
        f"{'met' if summary['goal_met'] else 'NOT met'}"], args.out)


if __name__ == "__main__":
    main()
