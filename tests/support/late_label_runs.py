"""The drift monitor's scheduled runs over days of traffic and late labels, in the moto world of
tests/support/remote_world.py (the ``aws`` fixture): what the late-label tests drive the job with."""

from __future__ import annotations

import datetime as dt
import os

import pandas as pd

from mlops_cli.local import replay
from pipeline_code.monitoring import monitor
from pipeline_code.training.train import predict
from tests.support.remote_world import CAPTURE_URI, HISTORY_URI, LABELS_URI, from_s3_args, read_report, register

DELAY = 30


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def traffic(aws, spec, model, *, name: str, day: dt.datetime, rows: int, seed: int, drift: float = 0.0,
            concept_drift: float = 0.0) -> pd.DataFrame:
    """A day of captured requests (their inference times on ``day``), as data capture writes them."""
    frame = replay.traffic(spec, rows, seed=seed, drift=drift, concept_drift=concept_drift, start=day.strftime("%Y-%m-%d"),
                           days=1)
    lines = replay.capture_lines(spec, frame, predict(model, frame))
    aws.put(f"{CAPTURE_URI}mlops-loop-dev-churn/AllTraffic/{name}.jsonl", ("\n".join(lines) + "\n").encode())
    return frame


def labels_arrive(aws, spec, frame: pd.DataFrame, name: str, *, days_ago: float = 0.0) -> None:
    """The ground truth of ``frame``'s requests, written ``days_ago`` (default now; however old the requests)."""
    scratch = aws.tmp / f"labels-{name}"
    replay.write_labels(spec, frame, str(scratch), coverage=1.0)
    aws.put(f"{LABELS_URI}{name}.parquet", (scratch / "labels.parquet").read_bytes())
    if days_ago:
        aws.age(f"{LABELS_URI}{name}.parquet", now() - dt.timedelta(days=days_ago))


def scheduled_run(aws, spec, root, *extra: str, delay: int = DELAY) -> dict:
    """The drift monitor's job as the schedule starts it (the construct's arguments that matter here)."""
    code = monitor.main(from_s3_args(spec, root, "--labels-s3-uri", LABELS_URI, "--history-s3-uri", HISTORY_URI,
                                     "--label-delay-days", str(delay), "--publish-metrics", *extra),
                        cloudwatch_client=aws.cloudwatch)
    assert code == 0
    return read_report(root)


def finish(aws, root, run: str, *, days_ago: float) -> None:
    """What SageMaker does when the job ends: upload its output directory to monitor/<model>/<run>/ (then aged)."""
    for name in os.listdir(root / "out"):
        uri = f"{HISTORY_URI}{run}/{name}"
        aws.put(uri, (root / "out" / name).read_bytes())
        aws.age(uri, now() - dt.timedelta(days=days_ago))


def leave_window(aws, name: str, days_ago: float) -> None:
    """The capture file ``name`` aged ``days_ago``: out of the run's 24-hour window."""
    aws.age(f"{CAPTURE_URI}mlops-loop-dev-churn/AllTraffic/{name}.jsonl", now() - dt.timedelta(days=days_ago))


def decayed_day_with_labels(aws, spec, reference, tmp_path) -> dt.datetime:
    """A decayed model's day of traffic 31 days ago, recorded by its run (uploaded as the job's end does, aged), its
    labels a third each written 30, 2 and 0 days ago; returns that day."""
    aws.serving_stack(churn_arn=register(aws, reference, "run-1"))
    then = now() - dt.timedelta(days=DELAY + 1)
    old = traffic(aws, spec, reference["model"], name="old", day=then, rows=1500, seed=400, drift=0.8, concept_drift=1.0)
    scheduled_run(aws, spec, tmp_path / "run-1")
    finish(aws, tmp_path / "run-1", "run-1", days_ago=DELAY + 1)
    leave_window(aws, "old", DELAY + 1)
    for i, written in enumerate((DELAY, 2, 0)):
        labels_arrive(aws, spec, old.iloc[i::3], f"old-{i}", days_ago=written)
    return then
