"""What scoring by id adds to a request: the front's handler + the online-store lookup, against scoring the features directly.

    .venv/bin/python bench/by_id_bench.py [--workdir .local-run/by-id-bench] [--requests 2000]

Runs the local loop for ``churn`` once if the workdir has no approved version (5,000 generated rows;
the feature job fills the SQLite twin of the online store), then times, per request of 1 and of 100
entities: ``direct`` (the serving code on the stored features, as a caller sending precomputed features
gets it: ``pipeline_code.serving.inference.invoke``) and ``by_id`` (the front's own handler,
``pipeline_code.handlers.score_by_id.handle``, with the SQLite store for ``BatchGetRecord`` and the same
serving code for ``InvokeEndpoint``). The difference is the front's work: parsing, the lookup, the
verdicts, building the records and the answer. The network hops to Feature Store and the endpoint are
not in it (no AWS here): in AWS add one ``BatchGetRecord`` round trip (single-digit milliseconds within
a region, per the Feature Store documentation) and the Lambda invocation itself.

-> bench/results/by_id.json
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import os
import platform
import sqlite3
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mlops_cli.local.online_store import STORE_FILE, LocalEndpoint, LocalOnlineStore, local_environ, score_by_id  # noqa: E402
from mlops_cli.local.registry import LocalRegistry  # noqa: E402
from pipeline_code.core.online_features import LookupSpec, StoredRecord, verdict  # noqa: E402
from pipeline_code.serving.inference import invoke  # noqa: E402

CONFIG = str(REPO / "config" / "mlops-loop.yaml")


def _percentiles(samples):
    ordered = sorted(samples)
    return {"p50_ms": round(statistics.median(ordered) * 1000, 3),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000, 3)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workdir", default=str(REPO / ".local-run" / "by-id-bench"))
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    registry = LocalRegistry(os.path.join(args.workdir, "registry"))
    if registry.latest_approved("churn") is None:
        from mlops_cli.local.run_loop import main as run_loop

        assert run_loop(["--workdir", args.workdir, "--rows", "5000", "--model", "churn"]) == 0
    version = registry.latest_approved("churn")
    environ = dict(local_environ(CONFIG, "dev", "churn"))
    spec = LookupSpec.decode(environ)
    db = sqlite3.connect(os.path.join(args.workdir, STORE_FILE))
    newest = db.execute("SELECT record_id, record_json, event_epoch FROM records ORDER BY event_epoch DESC LIMIT 100").fetchall()
    ids = [row[0] for row in newest]
    # Judge freshness just after the newest record, so every looked-up id is fresh (TTL and max age hold).
    now = dt.datetime.fromtimestamp(newest[0][2], tz=dt.timezone.utc) + dt.timedelta(hours=1)
    features = []
    for _, record_json, _ in newest:
        _, typed, _ = verdict(StoredRecord(json.loads(record_json)), spec, now)
        features.append(typed)
    store = LocalOnlineStore(os.path.join(args.workdir, STORE_FILE))
    endpoint = LocalEndpoint(version.model_dir, model="churn")
    results = {}
    for batch in (1, 100):
        direct, by_id = [], []
        body = json.dumps({"instances": features[:batch]})
        for i in range(args.requests if batch == 1 else args.requests // 10):
            started = time.perf_counter()
            invoke(endpoint.model, body, content_type="application/json", accept="application/json")
            direct.append(time.perf_counter() - started)
            started = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                answer = score_by_id({"ids": ids[:batch]}, environ=environ, store=store, endpoint=endpoint, now=now)
            by_id.append(time.perf_counter() - started)
            assert answer["status"] == 200 and answer["body"]["lookup"]["fresh"] == batch
        d, b = _percentiles(direct), _percentiles(by_id)
        results[f"batch_{batch}"] = {"requests": len(direct), "direct": d, "by_id": b,
                                     "added_p50_ms": round(b["p50_ms"] - d["p50_ms"], 3),
                                     "added_p99_ms": round(b["p99_ms"] - d["p99_ms"], 3)}
    out = {"command": "bench/by_id_bench.py", "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
           "store": "SQLite twin of the online store (mlops_cli.local.online_store)", "results": results}
    target = REPO / "bench" / "results" / "by_id.json"
    target.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
