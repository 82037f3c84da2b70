"""What the late-label join costs in memory and time: streaming the look-back's labels against holding them all.

    .venv/bin/python bench/late_labels_memory.py [--per-day 20000 100000] [--days 38] [--ways before after]
        [--workdir /tmp/late-labels-bench]

For each ``--per-day`` size, generates ``--days`` days of that many requests (36-character ids) with a 30-day label
delay - the records files the earlier runs wrote and their labels (80 % labelled, arriving uniformly over the delay,
one parquet file per day of arrival, split into the label window's and the older ones): what a scheduled run finds on
disk after its downloads (``tests/support/late_labels_world.py``). Then joins them in a fresh process each way:
``before`` (every older label read into memory with its id and joined: ``tests/support/late_labels_reference.py``, the
join as it was) and ``after`` (:func:`pipeline_code.monitoring.late_labels.join_earlier` with
:class:`~pipeline_code.monitoring.late_labels.LookbackLabels`: id hashes of the records, the older labels read a chunk
at a time, only the due days' kept). Both read the label window's labels whole (as the monitor does: one week).
Reported per way: the child's peak resident memory (``VmHWM`` of ``/proc/self/status``, which starts afresh at exec;
``ru_maxrss`` would not: a child's starts at the high-water mark of the process that forked it) and that peak above its
resident memory once the modules are imported, seconds, and the judged rows (which must be equal). The worlds are
generated in a process of their own too, so that the parent stays small. Linux only (``/proc``).

-> bench/results/late_labels_memory.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _status_mb(field: str) -> float:
    """``field`` (``VmHWM``: the peak, ``VmRSS``: now) of this process's resident memory, in MiB. ``VmHWM`` is reset at
    exec, so a fresh child measures itself only (its ``ru_maxrss`` starts at its parent's peak)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"no {field} in /proc/self/status (Linux only)")


def child(way: str, world_file: str) -> None:
    """One join in this (fresh) process; prints its measurements as JSON."""
    import datetime as dt

    from pipeline_code.monitoring import late_labels, quality
    from tests.support import late_labels_reference as reference
    from tests.support.late_labels_world import VERSION

    world = json.loads(Path(world_file).read_text())
    base = _status_mb("VmRSS")
    started = time.perf_counter()
    recent = quality.read_labels(world["labels_dir"])
    common = dict(matched_today=world["matched_today"], version=VERSION, label_delay_days=world["delay"],
                  label_window_hours=world["window_hours"], now=dt.datetime.fromisoformat(world["now"]))
    if way == "before":
        older, problem = reference.read_older_labels(world["late_labels_dir"], "binary_classification", [])
        assert problem is None, problem
        earlier = reference.join_earlier(world["records_dir"], recent, older_labels=older, **common)
    else:
        older = late_labels.LookbackLabels(world["late_labels_dir"], "binary_classification", [])
        earlier = late_labels.join_earlier(world["records_dir"], recent, older_labels=older, **common)
    seconds = time.perf_counter() - started
    peak = _status_mb("VmHWM")
    print(json.dumps({"peak_rss_mb": round(peak, 1), "peak_above_imports_mb": round(peak - base, 1),
                      "seconds": round(seconds, 2), "labelled_rows": earlier.summary["labelled_rows"],
                      "due_days": len(earlier.summary["due_days"]), "records_rows": earlier.summary["records_rows"]}))


def generate(root: Path, *, days: int, per_day: int) -> None:
    """Write one world and its ``world.json`` (run as a child: generating it takes far more memory than joining)."""
    from tests.support.late_labels_world import write_lookback

    world = write_lookback(root, days=days, per_day=per_day, seed=1)
    (root / "world.json").write_text(json.dumps({**world, "now": world["now"].isoformat()}))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-day", type=int, nargs="+", default=[20000, 100000])
    parser.add_argument("--days", type=int, default=38, help="days of records: label_delay_days 30 + the 8 of the look-back")
    parser.add_argument("--workdir", default="/tmp/late-labels-bench")
    parser.add_argument("--ways", nargs="+", default=["before", "after"], choices=["before", "after"])
    parser.add_argument("--child", nargs=2, metavar=("WAY", "WORLD"), help=argparse.SUPPRESS)
    parser.add_argument("--generate", nargs=3, metavar=("ROOT", "DAYS", "PER_DAY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return 0
    if args.generate:
        generate(Path(args.generate[0]), days=int(args.generate[1]), per_day=int(args.generate[2]))
        return 0

    target = REPO / "bench" / "results" / "late_labels_memory.json"
    results = json.loads(target.read_text())["results"] if target.exists() else {}
    results = {k: v for k, v in results.items() if "peak_rss_source" in v}  # only what this harness measured
    for per_day in args.per_day:
        root = Path(args.workdir) / f"per-day-{per_day}"
        world_file = root / "world.json"
        if not world_file.exists():  # in a process of its own: the parent stays small
            subprocess.run([sys.executable, __file__, "--generate", str(root), str(args.days), str(per_day)], check=True,
                           cwd=REPO)
        world = json.loads(world_file.read_text())
        older = sorted(Path(world["late_labels_dir"]).glob("*"))
        size = {"days": args.days, "requests_per_day": per_day, "records": args.days * per_day,
                "older_label_files": len(older), "older_label_bytes": sum(p.stat().st_size for p in older)}
        runs = {}
        for way in args.ways:
            out = subprocess.run([sys.executable, __file__, "--child", way, str(world_file)], check=True,
                                 capture_output=True, text=True, cwd=REPO, env={**os.environ, "PYTHONHASHSEED": "0"})
            runs[way] = json.loads(out.stdout.strip().splitlines()[-1])
            print(per_day, way, runs[way], flush=True)
        if len(runs) == 2:
            assert runs["before"]["labelled_rows"] == runs["after"]["labelled_rows"]
        results[f"per_day_{per_day}"] = {**size, **runs, "peak_rss_source": "VmHWM of the child (/proc/self/status)"}
    out = {"command": "bench/late_labels_memory.py", "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
           "label_delay_days": 30, "label_window_hours": 168, "results": results}
    target.write_text(json.dumps(out, indent=2) + "\n")
    print(f"-> {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
