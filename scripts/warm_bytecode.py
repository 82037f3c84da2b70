"""Byte-compile what the test session imports, once, split over the cores.

    python scripts/warm_bytecode.py [--tests DIR] [--cores N]

Run by scripts/bootstrap.sh right after it installs the full lock. uv installs without .pyc files
(compiling the whole venv up front takes ~32 s on 2 cores, more than it saves), so the first import
of each module compiles it. Left to the test run, every pytest-xdist worker collects the whole suite
at the same moment and compiles the same modules side by side: on a fresh venv on 2 cores, collection
took 30 s instead of 9. Collecting one part of the suite per core first (15 s, each part compiling
its own imports) lets the workers collect from .pyc (10 s): 25 s instead of 30. With one core there
is nothing to split: it does nothing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Far longer than collecting a part of the suite takes on a fresh venv (~15 s).
TIMEOUT_SECONDS = 300


def parts(tests: Path, count: int) -> list[list[Path]]:
    """The test directories and top-level test files of ``tests`` in at most ``count`` groups of about equal
    source size (largest first, each into the smallest group so far); helpers (``support``) are imported by
    the tests that use them."""
    entries = [
        path for path in tests.iterdir()
        if (path.is_dir() and path.name not in ("__pycache__", "support")) or (path.suffix == ".py" and path.name.startswith("test_"))
    ]

    def size(entry: Path) -> int:
        files = entry.rglob("*.py") if entry.is_dir() else [entry]
        return sum(file.stat().st_size for file in files)

    groups: list[list[Path]] = [[] for _ in range(count)]
    totals = [0] * count
    for entry in sorted(entries, key=lambda e: (-size(e), e.name)):
        smallest = totals.index(min(totals))
        groups[smallest].append(entry)
        totals[smallest] += size(entry)
    return [group for group in groups if group]


def _usable_cores() -> int:
    """The cores this process may run on, as pytest-xdist's ``-n auto`` counts them (affinity, else all)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=Path, default=ROOT / "tests", help="the test directory (default: this repository's)")
    parser.add_argument("--cores", type=int, default=_usable_cores(), help="processes to split over (default: every core it may use)")
    args = parser.parse_args(argv)
    if args.cores < 2:
        return 0
    # Collection imports every test module and what it imports; its findings are the test run's to report.
    collections = [
        subprocess.Popen(
            [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "-n", "0", *map(str, group)],
            cwd=args.tests.parent,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for group in parts(args.tests, args.cores)
    ]
    for collection in collections:
        try:
            collection.wait(timeout=TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:  # a warm-up only: the test run compiles what is left
            collection.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
