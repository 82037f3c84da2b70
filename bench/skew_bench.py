"""The drift monitor's skew check on 1M served by-id rows: wall time and peak RSS.

    .venv/bin/python bench/skew_bench.py [--rows 1000000]

Writes, for the churn model of the sample config, feature snapshots of ``--rows`` customers (one snapshot
each) and ``--rows`` data-capture lines of by-id requests (one record each, as the score-by-id front sends
them, features equal to the snapshot's except a 1 % serving-side bug on ``tenure_months``), then runs
:func:`pipeline_code.monitoring.skew.skew_section` in a spawned child (its default sample: 10,000 requests)
and reports the child's wall time and peak resident memory (``VmHWM``), and what the check found.

-> bench/results/skew.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
WORK = Path(tempfile.gettempdir()) / "skew-bench"


def peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _spec():
    from mlops_loop.config import load_config
    from pipeline_code.training.spec import parse_model_spec

    return parse_model_spec(load_config(str(REPO / "config" / "mlops-loop.yaml")).models["churn"].job_spec())


def write_inputs(rows: int) -> dict:
    from pipeline_code.serving.self_capture import capture_record
    import datetime as dt

    spec = _spec()
    ds = spec.catalog_dataset
    rng = np.random.default_rng(7)
    frame = {ds.record_identifier: [f"c-{i}" for i in range(rows)],
             ds.event_time: pd.Timestamp("2026-05-31T00:00:00Z")}
    for name in spec.frame_features:
        if spec.is_categorical(name):
            column = ds.column(str(ds.feature(name).expr.args[0])) if ds.feature(name).expr.op == "col" else None
            levels = list(column.allowed) if column is not None and column.allowed else ["a", "b", "c"]
            frame[name] = rng.choice(levels, rows)
        else:
            frame[name] = np.round(rng.gamma(2.0, 20.0, rows), 3)
    snapshot = pd.DataFrame(frame)
    (WORK / "snapshots").mkdir(parents=True, exist_ok=True)
    snapshot.to_parquet(WORK / "snapshots" / "part-0.parquet", index=False)
    bug = rng.random(rows) < 0.01
    served = snapshot.copy()
    served.loc[bug, "tenure_months"] = served.loc[bug, "tenure_months"] * 30
    when = dt.datetime(2026, 6, 1, 12, tzinfo=dt.timezone.utc)
    capture = WORK / "capture" / "churn" / "AllTraffic" / "2026" / "06" / "01" / "12"
    capture.mkdir(parents=True, exist_ok=True)
    features = list(spec.features)
    with open(capture / "capture.jsonl", "w", encoding="utf-8") as handle:
        for record in served[[ds.record_identifier, *features]].itertuples(index=False):
            entity, values = record[0], record[1:]
            body = {"instances": [{**dict(zip(features, (v.item() if hasattr(v, "item") else v for v in values))),
                                   "entity_id": entity, "feature_source": "online_store",
                                   "feature_event_time": "2026-05-31T00:00:00Z", "inference_id": entity}]}
            line = capture_record(request_body=json.dumps(body), request_type="application/json",
                                  response_body='{"predictions": [{"score": 0.5, "label": 1}]}',
                                  response_type="application/json", event_id=entity, when=when)
            handle.write(json.dumps(line) + "\n")
    return {"rows": rows, "bug_rows": int(bug.sum()), "capture_bytes": os.path.getsize(capture / "capture.jsonl")}


def run_check(queue) -> None:
    from pipeline_code.monitoring import skew

    spec = _spec()
    started = time.perf_counter()
    section = skew.skew_section(spec, str(WORK / "capture"), str(WORK / "snapshots"), max_rate=0.005)
    queue.put({"wall_s": round(time.perf_counter() - started, 2), "peak_rss_mb": round(peak_mb(), 1),
               "requests_seen": section["requests"], "sampled": section["sampled"], "compared": section["compared"],
               "status": section["status"],
               "tenure_months_rate": section["features"]["tenure_months"]["rate"],
               "other_features_mismatching": sorted(n for n, f in section["features"].items()
                                                    if f["mismatches"] and n != "tenure_months")})


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    started = time.perf_counter()
    inputs = write_inputs(args.rows)
    written = round(time.perf_counter() - started, 1)
    context = mp.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=run_check, args=(queue,))
    child.start()
    result = queue.get()
    child.join()
    out = {"command": "bench/skew_bench.py", "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
           "inputs": inputs, "inputs_write_s": written, "skew_check": result,
           "note": "the check scans every capture line once as text, parses only a reservoir sample of 10,000 "
                   "requests, and reads the snapshots' model columns for the point-in-time join"}
    (REPO / "bench" / "results" / "skew.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
