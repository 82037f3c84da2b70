"""Benchmark: cold synth of the whole app as a ratio to a trivial one-stack app, and test-suite wall time.

Each synth runs in a fresh process (cold jsii runtime, cold imports), alternating app and floor so
machine noise hits both alike; medians are reported. Usage (after scripts/bootstrap.sh):

    python bench/synth_bench.py [--repeats 3] [--with-tests]

Writes bench/results/synth.json and prints a table. Targets are not asserted here or in tests: they
are tracked over time from these numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--with-tests", action="store_true", help="also time the whole test suite once")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")

    app_times, floor_times = [], []
    for _ in range(args.repeats):
        for target, sink in (("app.py", app_times), ("bench/trivial_app.py", floor_times)):
            with tempfile.TemporaryDirectory() as outdir:
                env = {**os.environ, "CDK_OUTDIR": outdir}
                sink.append(timed([sys.executable, target], env))
    result = {
        "repeats": args.repeats,
        "app_synth_s": round(statistics.median(app_times), 2),
        "floor_synth_s": round(statistics.median(floor_times), 2),
    }
    result["ratio_to_floor"] = round(result["app_synth_s"] / result["floor_synth_s"], 2)
    if args.with_tests:
        result["test_suite_s"] = round(timed([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], dict(os.environ)), 1)

    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "synth.json").write_text(json.dumps(result, indent=2))
    print(f"cold synth, whole app (3 environments, nag on): {result['app_synth_s']:.2f} s (median of {args.repeats})")
    print(f"cold synth, trivial one-stack app (jsii floor):  {result['floor_synth_s']:.2f} s")
    print(f"ratio app / floor:                               {result['ratio_to_floor']:.2f}x")
    if "test_suite_s" in result:
        print(f"test suite wall time:                            {result['test_suite_s']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
