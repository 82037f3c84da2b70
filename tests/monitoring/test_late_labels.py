"""Labels that arrive days or weeks after their request (``--label-delay-days``), against moto: each scheduled run
records its window's scored requests with its report, and a later run joins the labels that arrived to them.

The scheduled job's output directory is what SageMaker uploads to ``monitor/<model>/<run>/`` when the job ends
(``S3UploadMode: EndOfJob``); :func:`finish` does that upload, and ages the objects in moto's backend (``Aws.age``)
to stand for a run days ago. Traffic is generated on the run's own day, so each run's requests have their own dates.
"""

from __future__ import annotations

import datetime as dt
import os

import pandas as pd
import pytest

from mlops_cli.local import replay
from pipeline_code.core.contract import records_lookback_hours
from pipeline_code.monitoring import late_labels, monitor, remote, report as report_mod
from pipeline_code.training.train import predict
from tests.support.monitoring import check
from tests.support.remote_world import (
    CAPTURE_URI, HISTORY_URI, LABELS_URI, from_s3_args, published, read_report, register,
)

DELAY = 30


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def traffic(aws, spec, model, *, name: str, day: dt.datetime, rows: int, seed: int, drift: float = 0.0,
            concept_drift: float = 0.0) -> pd.DataFrame:
    """A day of captured requests (their inference times on ``day``), as data capture writes them."""
    frame = replay.traffic(spec, rows, seed=seed, drift=drift, concept_drift=concept_drift, start=day.strftime("%Y-%m-%d"),
                           days=1)
    lines = replay.capture_lines(spec, frame, predict(model, frame))
    aws.put(f"{CAPTURE_URI}mlops-loop-dev-churn/AllTraffic/{name}.jsonl", ("\n".join(lines) + "\n").encode())
    return frame


def labels_arrive(aws, spec, frame: pd.DataFrame, name: str) -> None:
    """The ground truth of ``frame``'s requests, written now (however old the requests)."""
    scratch = aws.tmp / f"labels-{name}"
    replay.write_labels(spec, frame, str(scratch), coverage=1.0)
    aws.put(f"{LABELS_URI}{name}.parquet", (scratch / "labels.parquet").read_bytes())


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
        aws.age(uri, _now() - dt.timedelta(days=days_ago))


def leave_window(aws, name: str, days_ago: float) -> None:
    aws.age(f"{CAPTURE_URI}mlops-loop-dev-churn/AllTraffic/{name}.jsonl", _now() - dt.timedelta(days=days_ago))


@pytest.mark.parametrize("late", [3, 30])
def test_labels_arriving_days_or_weeks_late_are_judged_against_the_predictions_their_requests_got(aws, spec, reference,
                                                                                                  tmp_path, late):
    """GIVEN a day of traffic whose model has decayed (concept drift) and whose inputs drifted, judged by the run of
    that day, and its labels arriving ``late`` days after (churn's label is "cancelled within 30 days")
    WHEN today's run judges today's (undrifted, unlabelled) traffic
    THEN model quality is judged on the old requests' labels: AucDrop is published and the quality retrain alarm fires;
    drift still judges only today's 24 h (its records, no drifted feature)."""
    aws.serving_stack(churn_arn=register(aws, reference, "run-1"))
    then = _now() - dt.timedelta(days=late)
    old = traffic(aws, spec, reference["model"], name="old", day=then, rows=1500, seed=400, drift=0.8, concept_drift=1.0)
    first = scheduled_run(aws, spec, tmp_path / "run-1")
    assert first["summary"]["records"] == 1500 and first["sections"]["model_quality"]["prediction_records_written"]["rows"] == 1500
    finish(aws, tmp_path / "run-1", "run-1", days_ago=late)
    leave_window(aws, "old", late)
    labels_arrive(aws, spec, old, "old")
    traffic(aws, spec, reference["model"], name="today", day=_now(), rows=1500, seed=500)

    report = scheduled_run(aws, spec, tmp_path / "run-2")

    mq = report["sections"]["model_quality"]
    assert report["healthy"] and report["status"] == "alert", report["errors"]
    assert mq["late_labels"]["labelled_rows"] == 1500 and mq["late_labels"]["records_files"] == 1
    assert list(mq["late_labels"]["request_days"]) == [then.strftime("%Y-%m-%d")]
    assert mq["late_labels"]["unmatched_labels"]["rows"] == 0
    assert report["summary"]["auc_drop"] == pytest.approx(0.187, abs=0.03)
    assert check(report, "auc_drop")["status"] == "fail" and "quality" in report_mod.retrain_alarms(report)
    assert published(aws)["AucDrop"] == pytest.approx(report["summary"]["auc_drop"])
    # drift: today's 24 h only - the old drifted requests were not read as traffic
    assert report["summary"]["records"] == 1500 and report["sections"]["remote"]["capture"]["in_window_objects"] == 1
    assert report["sections"]["data_drift"]["drifted_features"] == [] and first["sections"]["data_drift"]["drifted_features"]


def test_a_label_whose_request_is_older_than_the_look_back_is_counted_unmatched_and_named(aws, spec, reference, tmp_path):
    """GIVEN the records of a run 3 days ago and of one 40 days ago (past the 30-day delay's look-back) and the labels
    of both runs' requests arriving now WHEN today's run joins them THEN the 3-day-old requests are judged, and the
    40-day-old requests' labels are counted as unmatched and named with the fix, a warning (the run stays healthy)."""
    aws.serving_stack(churn_arn=register(aws, reference, "run-1"))
    frames = {}
    for run, days_ago, seed in (("run-old", 40, 410), ("run-recent", 3, 420)):
        frames[run] = traffic(aws, spec, reference["model"], name=run, day=_now() - dt.timedelta(days=days_ago), rows=300,
                              seed=seed)
        scheduled_run(aws, spec, tmp_path / run)
        finish(aws, tmp_path / run, run, days_ago=days_ago)
        leave_window(aws, run, days_ago)
    assert records_lookback_hours(DELAY) / 24 < 40
    for run, frame in frames.items():
        labels_arrive(aws, spec, frame, run)
    traffic(aws, spec, reference["model"], name="today", day=_now(), rows=300, seed=430)

    report = scheduled_run(aws, spec, tmp_path / "today")

    late = report["sections"]["model_quality"]["late_labels"]
    assert report["healthy"], report["errors"]
    assert late["labelled_rows"] == 300 and late["records_files"] == 1
    assert late["unmatched_labels"]["rows"] == 300
    assert all(i.startswith("410-") for i in late["unmatched_labels"]["examples"]) and late["unmatched_labels"]["examples"]
    unmatched = check(report, "unmatched_labels")
    assert unmatched["status"] == "warn" and unmatched["value"] == 300
    assert repr(late["unmatched_labels"]["examples"][0]) in unmatched["detail"]
    assert "raise models.<model>.label_delay_days (now 30)" in unmatched["detail"]
    assert report["sections"]["remote"]["prediction_records"]["listed_objects"] == 2


def test_corrupt_or_unreadable_records_are_reported_and_the_run_stays_healthy(aws, spec, reference, tmp_path):
    """GIVEN an earlier run's records that are not parquet, and one without the prediction column, with labels
    arriving for requests nobody can find WHEN today's run reads them THEN it does not crash: each file is a warning
    naming it, the labels are unmatched, and the window is judged and healthy."""
    aws.serving_stack(churn_arn=register(aws, reference, "run-1"))
    aws.put(f"{HISTORY_URI}run-a/{late_labels.RECORDS_FILE}", b"not parquet at all")
    aws.age(f"{HISTORY_URI}run-a/{late_labels.RECORDS_FILE}", _now() - dt.timedelta(days=3))
    scratch = tmp_path / "bad.parquet"
    pd.DataFrame({"inference_id": ["x-1"], "inference_time": ["2026-01-01T00:00:00Z"]}).to_parquet(scratch)
    aws.put(f"{HISTORY_URI}run-b/{late_labels.RECORDS_FILE}", scratch.read_bytes())
    aws.age(f"{HISTORY_URI}run-b/{late_labels.RECORDS_FILE}", _now() - dt.timedelta(days=4))
    aws.put(f"{LABELS_URI}late.csv", b"inference_id,label\nx-1,1\nx-2,0\n")
    traffic(aws, spec, reference["model"], name="today", day=_now(), rows=300, seed=440)

    report = scheduled_run(aws, spec, tmp_path / "today")

    assert report["healthy"] and report["errors"] == [] and report["summary"]["records"] == 300
    unreadable = check(report, "prediction_records_unreadable")
    assert unreadable["status"] == "warn" and unreadable["value"] == 2
    assert "run-a/predictions.parquet" in unreadable["detail"] and "run-b/predictions.parquet" in unreadable["detail"]
    assert check(report, "unmatched_labels")["value"] == 2
    assert "data_drift" in report["sections"] and report["sections"]["model_quality"]["prediction_records_written"]["rows"] == 300


def test_a_request_of_todays_window_that_an_earlier_run_also_recorded_is_judged_once(aws, spec, reference, tmp_path):
    """GIVEN a run started by hand an hour ago over the same traffic (its records hold today's requests) and their
    labels WHEN the scheduled run judges the window THEN each labelled request counts once (today's window's)."""
    aws.serving_stack(churn_arn=register(aws, reference, "run-1"))
    frame = traffic(aws, spec, reference["model"], name="today", day=_now(), rows=300, seed=450)
    scheduled_run(aws, spec, tmp_path / "by-hand")
    finish(aws, tmp_path / "by-hand", "by-hand", days_ago=1 / 24)
    labels_arrive(aws, spec, frame, "today")

    report = scheduled_run(aws, spec, tmp_path / "scheduled")

    mq = report["sections"]["model_quality"]
    assert mq["labeled_rows"] == 300 and mq["late_labels"]["labelled_rows"] == 0 and mq["late_labels"]["records_files"] == 1
    assert report["summary"]["label_coverage"] == pytest.approx(1.0)


def test_a_records_file_that_fails_to_download_is_named_and_the_others_are_read(aws, tmp_path):
    """GIVEN two records files in the look-back, one of which cannot be read from S3 WHEN they are downloaded THEN the
    other lands (its modification time is when its run wrote it) and the failure is listed, not raised."""
    now = _now()
    for run, days_ago in (("run-1", 2), ("run-2", 5), ("run-3", 60)):
        aws.put(f"{HISTORY_URI}{run}/{late_labels.RECORDS_FILE}", b"PAR1")
        aws.put(f"{HISTORY_URI}{run}/report.json", b"{}")
        aws.age(f"{HISTORY_URI}{run}/{late_labels.RECORDS_FILE}", now - dt.timedelta(days=days_ago))

    class Flaky:
        def __getattr__(self, name):
            return getattr(aws.s3, name)

        def download_file(self, bucket, key, path):
            if "run-2/" in key:
                raise OSError("connection reset")
            return aws.s3.download_file(bucket, key, path)

    summary = remote.download_records(s3=Flaky(), history_s3_uri=HISTORY_URI, dest_dir=str(tmp_path / "r"),
                                      lookback_hours=records_lookback_hours(DELAY), now=now)
    assert summary["listed_objects"] == 3 and summary["in_window_objects"] == 2 and summary["downloaded_objects"] == 1
    assert [f["key"] for f in summary["failed"]] == [f"monitor/churn/run-2/{late_labels.RECORDS_FILE}"]
    assert "connection reset" in summary["failed"][0]["error"]
    assert late_labels.records_files(str(tmp_path / "r")) == [str(tmp_path / "r" / "run-1" / late_labels.RECORDS_FILE)]
    written = os.path.getmtime(tmp_path / "r" / "run-1" / late_labels.RECORDS_FILE)
    assert abs(written - (now - dt.timedelta(days=2)).timestamp()) < 2


def test_labels_due_but_none_matching_say_so_with_the_fix(tmp_path):
    """GIVEN records written 32 days ago (a 30-day delay: their labels were due within the label window) and no label
    WHEN the earlier requests are joined THEN labels_overdue warns, naming the delay and what to check."""
    path = tmp_path / "run-1" / late_labels.RECORDS_FILE
    path.parent.mkdir()
    pd.DataFrame({"inference_id": ["a", "b"], "inference_time": pd.to_datetime(["2026-01-01", "2026-01-01"], utc=True),
                  "score": [0.2, 0.9]}).to_parquet(path)
    stamp = (_now() - dt.timedelta(days=32)).timestamp()
    os.utime(path, (stamp, stamp))
    labels = pd.DataFrame({"inference_id": pd.Series([], dtype=object), "label": pd.Series([], dtype=float)})
    earlier = late_labels.join_earlier(str(tmp_path), labels, matched_today=[], label_delay_days=30, label_window_hours=168,
                                       labels_source="s3://b/labels/churn/")
    section = earlier.annotate({"checks": []}, labelled_today=0)
    overdue = [c for c in section["checks"] if c["check"] == "labels_overdue"]
    assert len(overdue) == 1 and overdue[0]["status"] == "warn"
    assert overdue[0]["detail"].startswith("2 requests recorded 30 to 37 days ago should have their labels by now "
                                           "(label_delay_days 30), but no label under s3://b/labels/churn/ matches any request")
    # once any label joins (today's window), the warning is left out
    assert not [c for c in earlier.annotate({"checks": []}, labelled_today=5)["checks"] if c["check"] == "labels_overdue"]


def test_a_record_writer_that_fails_removes_its_part_file_and_says_so(tmp_path):
    writer = late_labels.RecordWriter(str(tmp_path / "out" / late_labels.RECORDS_FILE))
    writer(pd.DataFrame({"inference_id": ["a", None], "inference_time": ["2026-01-01T00:00:00Z"] * 2, "score": [0.1, 0.2]}))
    writer(pd.DataFrame({"inference_id": ["b"]}))  # no score column: the writing stops
    written = writer.close()
    assert written["rows"] == 0 and "KeyError" in written["error"] and not (tmp_path / "out" / late_labels.RECORDS_FILE).exists()
    assert late_labels.writer_check(written)["check"] == "prediction_records_not_written"
