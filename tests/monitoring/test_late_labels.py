"""Labels that arrive days or weeks after their request (``--label-delay-days``), against moto: each scheduled run
records its window's scored requests with its report, and a later run joins the labels that arrived to them.

The scheduled job's output directory is what SageMaker uploads to ``monitor/<model>/<run>/`` when the job ends
(``S3UploadMode: EndOfJob``); :func:`finish` does that upload, and ages the objects in moto's backend (``Aws.age``)
to stand for a run days ago. Traffic is generated on the run's own day, so each run's requests have their own dates.
A request day is judged once its labels are due: the day ended ``label_delay_days`` ago (:func:`late_labels.day_state`),
so the traffic these tests judge is ``delay + 1`` days old.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os

import numpy as np
import pandas as pd
import pytest

from mlops_cli.local import replay
from pipeline_code.core.contract import records_lookback_hours
from pipeline_code.monitoring import late_labels, monitor, quality, remote, report as report_mod
from pipeline_code.training.train import predict
from tests.support import late_labels_world
from tests.support.late_label_runs import (
    DELAY, decayed_day_with_labels as _decayed_day_with_labels, finish, labels_arrive, leave_window, now as _now,
    scheduled_run, traffic,
)
from tests.support.monitoring import check
from tests.support.remote_world import (
    CAPTURE_URI, HISTORY_URI, LABELS_URI, STACK, TEMPLATE, published, register,
)

@pytest.mark.parametrize("delay", [3, 30])
def test_labels_arriving_days_or_weeks_late_are_judged_against_the_predictions_their_requests_got(aws, spec, reference,
                                                                                                  tmp_path, delay):
    """GIVEN a day of traffic whose model has decayed (concept drift) and whose inputs drifted, judged by the run of
    that day, and its labels trickling in over the ``delay`` days after (churn's label is "cancelled within 30 days"):
    a third written well before the last week, a third a few days ago, a third now
    WHEN today's run judges today's (undrifted, unlabelled) traffic, the old day's labels being due
    THEN model quality is judged on all the old requests' labels (those of before the label window too): AucDrop is
    published and the quality retrain alarm fires; drift still judges only today's 24 h (its records, no drifted
    feature)."""
    aws.serving_stack(churn_arn=register(aws, reference, "run-1"))
    late = delay + 1
    then = _now() - dt.timedelta(days=late)
    old = traffic(aws, spec, reference["model"], name="old", day=then, rows=1500, seed=400, drift=0.8, concept_drift=1.0)
    first = scheduled_run(aws, spec, tmp_path / "run-1", delay=delay)
    assert first["summary"]["records"] == 1500 and first["sections"]["model_quality"]["prediction_records_written"]["rows"] == 1500
    finish(aws, tmp_path / "run-1", "run-1", days_ago=late)
    leave_window(aws, "old", late)
    for i, written in enumerate((late - 1, 2, 0)):
        labels_arrive(aws, spec, old.iloc[i::3], f"old-{i}", days_ago=written)
    traffic(aws, spec, reference["model"], name="today", day=_now(), rows=1500, seed=500)

    report = scheduled_run(aws, spec, tmp_path / "run-2", delay=delay)

    mq = report["sections"]["model_quality"]
    assert report["healthy"] and report["status"] == "alert", report["errors"]
    assert mq["late_labels"]["labelled_rows"] == 1500 and mq["late_labels"]["records_files"] == 1
    assert list(mq["late_labels"]["request_days"]) == [then.strftime("%Y-%m-%d")]
    assert mq["late_labels"]["due_days"] == {then.strftime("%Y-%m-%d"): {"rows": 1500, "labelled": 1500}}
    assert mq["late_labels"]["unmatched_labels"]["rows"] == 0
    assert report["sections"]["remote"]["late_labels"]["downloaded_objects"] == (0 if delay < 7 else 1)
    assert report["summary"]["auc_drop"] == pytest.approx(0.187, abs=0.03)
    assert check(report, "auc_drop")["status"] == "fail" and "quality" in report_mod.retrain_alarms(report)
    assert published(aws)["AucDrop"] == pytest.approx(report["summary"]["auc_drop"])
    # drift: today's 24 h only - the old drifted requests were not read as traffic
    assert report["summary"]["records"] == 1500 and report["sections"]["remote"]["capture"]["in_window_objects"] == 1
    assert report["sections"]["data_drift"]["drifted_features"] == [] and first["sections"]["data_drift"]["drifted_features"]


def test_when_the_look_backs_labels_cannot_be_read_no_due_day_is_judged_on_what_is_left(aws, spec, reference, tmp_path):
    """GIVEN a due day whose labels are partly older than the label window, and an unreadable label file among the
    older ones WHEN today's run judges THEN no due day is judged (on the last week's labels alone it would be the
    skewed subset: churn-like labels come positives first), a warning says why, and no AucDrop is published from it
    (review finding: a healthy model failed and retrained for as long as the bad file stayed in the look-back)."""
    _decayed_day_with_labels(aws, spec, reference, tmp_path)
    aws.put(f"{LABELS_URI}broken.csv", b"")  # an empty export: pandas cannot read it
    aws.age(f"{LABELS_URI}broken.csv", _now() - dt.timedelta(days=20))
    traffic(aws, spec, reference["model"], name="today", day=_now(), rows=1500, seed=500)

    report = scheduled_run(aws, spec, tmp_path / "run-2")

    mq = report["sections"]["model_quality"]
    assert "late_labels" not in mq and check(report, "auc_drop")["status"] != "fail"
    skipped = check(report, "late_labels_not_judged")
    assert skipped["status"] == "warn" and skipped["detail"].startswith("no due day is judged this run: the look-back's labels under")
    assert "AucDrop" not in published(aws) and report["healthy"]


def test_a_request_with_an_old_inference_time_does_not_hide_the_earlier_records(aws, spec, reference, tmp_path):
    """GIVEN a due day recorded by an earlier run, and in today's window one request carrying an inference_time 40
    days old (a backfill) WHEN today's run judges THEN the due day is judged: today's window starts no earlier than
    --window-hours before its end (review finding: it started at that request, hiding every earlier record)."""
    then = _decayed_day_with_labels(aws, spec, reference, tmp_path)
    today = traffic(aws, spec, reference["model"], name="today", day=_now(), rows=1500, seed=500)
    backfill = replay.traffic(spec, 1, seed=501, start=(_now() - dt.timedelta(days=40)).strftime("%Y-%m-%d"), days=1)
    lines = replay.capture_lines(spec, backfill, predict(reference["model"], backfill))
    aws.put(f"{CAPTURE_URI}mlops-loop-dev-churn/AllTraffic/backfill.jsonl", ("\n".join(lines) + "\n").encode())
    assert len(today) == 1500

    report = scheduled_run(aws, spec, tmp_path / "run-2")

    late = report["sections"]["model_quality"]["late_labels"]
    assert late["due_days"] == {then.strftime("%Y-%m-%d"): {"rows": 1500, "labelled": 1500}}
    assert late["unmatched_labels"]["rows"] == 0


def test_a_day_whose_labels_are_not_all_due_is_not_judged_on_the_labels_that_came_first(aws, spec, reference, tmp_path):
    """GIVEN a decayed day of traffic 10 days ago (a 30-day delay) and the labels of a third of its requests
    WHEN today's run joins them THEN the day is not judged (its early labels would be a biased slice): no AucDrop, no
    quality alarm; the labels are counted as pending for that day, not unmatched."""
    aws.serving_stack(churn_arn=register(aws, reference, "run-1"))
    then = _now() - dt.timedelta(days=10)
    old = traffic(aws, spec, reference["model"], name="old", day=then, rows=1500, seed=400, concept_drift=1.0)
    scheduled_run(aws, spec, tmp_path / "run-1")
    finish(aws, tmp_path / "run-1", "run-1", days_ago=10)
    leave_window(aws, "old", 10)
    labels_arrive(aws, spec, old.iloc[::3], "old")
    traffic(aws, spec, reference["model"], name="today", day=_now(), rows=1500, seed=500)

    report = scheduled_run(aws, spec, tmp_path / "run-2")

    late = report["sections"]["model_quality"]["late_labels"]
    assert late["labelled_rows"] == 0 and late["due_days"] == {}
    assert late["pending_days"] == {then.strftime("%Y-%m-%d"): 500} and late["unmatched_labels"]["rows"] == 0
    assert report["summary"]["auc_drop"] is None and "quality" not in report_mod.retrain_alarms(report)
    assert "AucDrop" not in published(aws)


def test_a_label_whose_request_is_older_than_the_look_back_is_counted_unmatched_and_named(aws, spec, reference, tmp_path):
    """GIVEN the records of a run 31 days ago and of one 40 days ago (past the 30-day delay's look-back) and the labels
    of both runs' requests arriving now WHEN today's run joins them THEN the 31-day-old requests are judged, and the
    40-day-old requests' labels are counted as unmatched and named with the fix, a warning (the run stays healthy)."""
    aws.serving_stack(churn_arn=register(aws, reference, "run-1"))
    frames = {}
    for run, days_ago, seed in (("run-old", 40, 410), ("run-recent", 31, 420)):
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
    # The report is kept for ever: the first five ids (sorted) by their pseudonyms, never the ids themselves.
    old_ids = sorted(set(frames["run-old"]["inference_id"].astype(str)))
    assert all(i.startswith("410-") for i in old_ids)
    pseudonyms = [hashlib.sha256(i.encode("utf-8")).hexdigest()[:12] for i in old_ids[:5]]
    assert late["unmatched_labels"] == {"rows": 300, "example_pseudonyms": pseudonyms}
    unmatched = check(report, "unmatched_labels")
    assert unmatched["status"] == "warn" and unmatched["value"] == 300
    assert f"e.g. the ids whose sha256 starts {', '.join(pseudonyms)}; " in unmatched["detail"]
    assert "410-" not in json.dumps(report)
    assert "raise models.<model>.label_delay_days (now 30)" in unmatched["detail"]
    assert report["sections"]["remote"]["prediction_records"]["listed_objects"] == 2


def test_corrupt_or_unreadable_records_are_reported_and_the_run_stays_healthy(aws, spec, reference, tmp_path):
    """GIVEN an earlier run's records that are not parquet, and one of the serving version without the prediction
    column, with labels arriving for requests nobody can find WHEN today's run reads them THEN it does not crash: each
    file is a warning naming it, the labels are unmatched, and the window is judged and healthy."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arn = register(aws, reference, "run-1")
    aws.serving_stack(churn_arn=arn)
    aws.put(f"{HISTORY_URI}run-a/{late_labels.RECORDS_FILE}", b"not parquet at all")
    aws.age(f"{HISTORY_URI}run-a/{late_labels.RECORDS_FILE}", _now() - dt.timedelta(days=3))
    scratch = tmp_path / "bad.parquet"
    table = pa.table({"inference_id": ["x-1"], "inference_time": ["2026-01-01T00:00:00Z"]})
    version = json.dumps(late_labels.RecordsVersion(arn).as_dict()).encode()
    pq.write_table(table.replace_schema_metadata({late_labels.VERSION_KEY: version}), scratch)
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


VERSION = late_labels.RecordsVersion("arn:aws:sagemaker:eu-west-1:123456789012:model-package/m/2", 2, "d2")


def write_records(root, run: str, frame: pd.DataFrame, *, written: dt.datetime,
                  version: late_labels.RecordsVersion = VERSION) -> None:
    """An earlier run's records file as RecordWriter writes it (``frame``: inference_id, inference_time, score
    [, proba:<class> ...]), its modification time when that run wrote it."""
    path = os.path.join(str(root), run, late_labels.RECORDS_FILE)
    writer = late_labels.RecordWriter(path, version)
    writer(frame)
    assert "error" not in writer.close()
    os.utime(path, (written.timestamp(), written.timestamp()))


def test_an_earlier_runs_records_of_todays_window_are_not_counted_twice(tmp_path):
    """GIVEN a 0-day delay (yesterday is due) and a run started by hand that recorded requests of today's window
    WHEN the scheduled run joins the earlier records THEN those requests are left to today's window (its rows per day
    already count them), and only the earlier requests of the due day count."""
    now = dt.datetime(2026, 11, 30, 9, tzinfo=dt.timezone.utc)
    write_records(tmp_path, "by-hand", pd.DataFrame({
        "inference_id": ["early", "w-1", "w-2"], "score": [0.1, 0.2, 0.3],
        "inference_time": ["2026-11-29T08:00:00Z", "2026-11-29T10:00:00Z", "2026-11-29T11:00:00Z"]}),
        written=now - dt.timedelta(hours=1))
    earlier = late_labels.join_earlier(str(tmp_path), pd.DataFrame({"inference_id": ["early"], "label": [1.0]}),
                                       matched_today=[], version=VERSION, label_delay_days=0, label_window_hours=168,
                                       now=now, today_start=dt.datetime(2026, 11, 29, 9, tzinfo=dt.timezone.utc))
    assert earlier.rows_per_day == {"2026-11-29": 1} and earlier.summary["labelled_rows"] == 1


def test_a_due_days_request_two_runs_recorded_counts_once(tmp_path):
    """GIVEN a due day's requests recorded by its scheduled run and again by a run started by hand over the same
    traffic WHEN they are joined THEN each request counts once in its day (coverage is not halved)."""
    now = dt.datetime(2026, 11, 30, 9, tzinfo=dt.timezone.utc)
    frame = pd.DataFrame({"inference_id": ["a", "b"], "inference_time": ["2026-10-29T10:00:00Z"] * 2, "score": [0.1, 0.9]})
    for run, hours in (("scheduled", 0), ("by-hand", 2)):
        write_records(tmp_path, run, frame, written=dt.datetime(2026, 10, 30, 1, tzinfo=dt.timezone.utc) + dt.timedelta(hours=hours))
    earlier = late_labels.join_earlier(str(tmp_path), pd.DataFrame({"inference_id": ["a", "b"], "label": [0.0, 1.0]}),
                                       matched_today=[], version=VERSION, label_delay_days=30, label_window_hours=168,
                                       now=now)
    assert earlier.rows_per_day == {"2026-10-29": 2} and earlier.summary["labelled_rows"] == 2


def _today_window(now: dt.datetime, n: int, *, seed: int = 0) -> pd.DataFrame:
    """Today's window as every real run has it: ``n`` labelled requests of the last 24 h (labels that came quickly)
    from a healthy model."""
    rng = np.random.default_rng(seed)
    score = rng.random(n)
    return pd.DataFrame({"inference_id": [f"t{now:%j}-{i}" for i in range(n)],
                         "inference_time": [(now - dt.timedelta(hours=5)).isoformat()] * n,
                         "score": score, "label": (rng.random(n) < score).astype(float)})


def test_labels_due_but_none_matching_say_so_with_the_fix(tmp_path):
    """GIVEN the records of a day that ended 31 days ago (a 30-day delay: its labels were due) and no label
    WHEN the earlier requests are joined THEN labels_overdue warns, naming the day, its requests and labels, until when
    it can still be judged and what to check - whatever today's window holds - and the day is carried, not judged."""
    now = _now()
    day = (now - dt.timedelta(days=32)).strftime("%Y-%m-%d")
    write_records(tmp_path, "run-1", pd.DataFrame({"inference_id": ["a", "b"], "inference_time": [f"{day}T10:00:00Z"] * 2,
                                                   "score": [0.2, 0.9]}), written=now - dt.timedelta(days=31))
    labels = pd.DataFrame({"inference_id": pd.Series([], dtype=object), "label": pd.Series([], dtype=float)})
    earlier = late_labels.join_earlier(str(tmp_path), labels, matched_today=[], version=VERSION, label_delay_days=30,
                                       label_window_hours=168, labels_source="s3://b/labels/churn/", now=now)
    records, rows = earlier.combined(_today_window(now, 400), {(now - dt.timedelta(hours=5)).strftime("%Y-%m-%d"): 400})
    section = earlier.annotate(quality.model_quality(records, {"auc": 0.75}, rows_per_day=rows, min_labeled_rows=200))
    assert section["status"] == "pass"  # today's window alone judges
    (overdue,) = [c for c in section["checks"] if c["check"] == "labels_overdue"]
    until = (dt.datetime.strptime(day, "%Y-%m-%d") + dt.timedelta(days=38)).strftime("%Y-%m-%dT00:00:00+00:00")
    assert overdue["status"] == "warn" and overdue["detail"] == (
        f"1 due day has too few labels to be judged, below min_label_coverage 0.5: {day} (0 of 2 requests labelled); "
        "their labels should have come by now (each day ended more than label_delay_days 30 ago), so they are not "
        f"counted as judged and the next runs judge them again while they are due ({day} until {until}, then never): "
        "check that the label feed under s3://b/labels/churn/ is on time and writes inference_id,label,label_time with "
        "the ids the traffic carries, or raise models.<model>.label_delay_days (now 30) if labels come later than that")
    assert earlier.rows_per_day == {day: 2}  # a due day's unlabelled requests count: its coverage is 0
    late = section["late_labels"]
    assert late["judged_days"] == [] and late["carried_days"] == [day] and late["carried_why"] == {day: "too_few_labels"}


def test_a_record_writer_that_fails_removes_its_part_file_and_says_so(tmp_path):
    writer = late_labels.RecordWriter(str(tmp_path / "out" / late_labels.RECORDS_FILE), VERSION)
    writer(pd.DataFrame({"inference_id": ["a", None], "inference_time": ["2026-01-01T00:00:00Z"] * 2, "score": [0.1, 0.2]}))
    writer(pd.DataFrame({"inference_id": ["b"]}))  # no score column: the writing stops
    written = writer.close()
    assert written["rows"] == 0 and "KeyError" in written["error"] and not (tmp_path / "out" / late_labels.RECORDS_FILE).exists()
    assert late_labels.writer_check(written)["check"] == "prediction_records_not_written"


# --- which version made the records ----------------------------------------------------------------------------


def put_traffic(aws, spec, frame: pd.DataFrame, scores, name: str) -> None:
    lines = replay.capture_lines(spec, frame, scores)
    aws.put(f"{CAPTURE_URI}mlops-loop-dev-churn/AllTraffic/{name}.jsonl", ("\n".join(lines) + "\n").encode())


def serve(aws, arn: str) -> None:
    aws.cloudformation.update_stack(StackName=STACK, TemplateBody=json.dumps(TEMPLATE), Parameters=[
        {"ParameterKey": "ChurnModelPackageArn", "ParameterValue": arn},
        {"ParameterKey": "CreditRiskModelPackageArn", "ParameterValue": ""}])


def test_after_a_rollback_the_previous_versions_late_labels_are_counted_apart_not_judged_as_the_new_ones(
        aws, spec, reference, tmp_path):
    """GIVEN version 1 answering badly (its answers inverted) on a day 31 days ago, recorded by that day's run, then a
    rollback to version 2, and that day's labels arriving
    WHEN today's run judges version 2 THEN version 1's requests are not judged as version 2's quality: no AucDrop, no
    quality alarm; the labels are counted under version 1 (other_versions), not unmatched
    AND WHEN version 1 serves again THEN its own records are judged: the drop is found."""
    v1 = register(aws, reference, "run-1")
    aws.serving_stack(churn_arn=v1)
    then = _now() - dt.timedelta(days=31)
    old = replay.traffic(spec, 1500, seed=400, start=then.strftime("%Y-%m-%d"), days=1)
    put_traffic(aws, spec, old, 1 - predict(reference["model"], old), "old")
    first = scheduled_run(aws, spec, tmp_path / "run-1")
    assert first["sections"]["model_quality"]["prediction_records_written"]["version"] == v1
    finish(aws, tmp_path / "run-1", "run-1", days_ago=31)
    leave_window(aws, "old", 31)
    v2 = register(aws, reference, "run-2")  # the same artefact registered again: still another version
    serve(aws, v2)
    labels_arrive(aws, spec, old, "old")
    today = replay.traffic(spec, 1500, seed=500, start=_now().strftime("%Y-%m-%d"), days=1)
    put_traffic(aws, spec, today, predict(reference["model"], today), "today")

    report = scheduled_run(aws, spec, tmp_path / "run-2")

    late = report["sections"]["model_quality"]["late_labels"]
    assert report["sections"]["remote"]["serving"]["arn"] == v2 and late["version"] == v2
    assert late["labelled_rows"] == 0 and late["due_days"] == {}
    assert late["other_versions"] == {v1: {"labels": 1500, "records": 1500, "files": 1}}
    assert late["unmatched_labels"]["rows"] == 0 and f"1500 of {v1}" in check(report, "late_labels")["detail"]
    assert report["summary"]["auc_drop"] is None and "quality" not in report_mod.retrain_alarms(report)
    assert "AucDrop" not in published(aws)

    serve(aws, v1)
    again = scheduled_run(aws, spec, tmp_path / "run-3")

    late = again["sections"]["model_quality"]["late_labels"]
    assert late["version"] == v1 and late["labelled_rows"] == 1500 and late["other_versions"] == {}
    assert check(again, "auc_drop")["status"] == "fail" and "quality" in report_mod.retrain_alarms(again)


@pytest.mark.parametrize("classes", [("bronze", "silver", "gold", "platinum"), ("gold", "silver", "bronze")])
def test_records_of_another_class_list_are_another_versions_not_misread_nor_unreadable(tmp_path, classes):
    """GIVEN a multiclass version's records (classes bronze, silver, gold) of a due day and their labels
    WHEN a version with another class list (a class added, or the same classes reordered: its codes mean other
    classes) judges them THEN they are another version's: counted apart, never read as its probabilities (no
    unreadable file, no mis-mapped class codes); the version with that class list reads them."""
    now = _now()
    day = (now - dt.timedelta(days=32)).strftime("%Y-%m-%d")
    old = late_labels.RecordsVersion("arn:aws:sagemaker:eu-west-1:1:model-package/m/1", 1, "d1", ("bronze", "silver", "gold"))
    write_records(tmp_path, "run-1", pd.DataFrame({
        "inference_id": ["a", "b"], "inference_time": [f"{day}T10:00:00Z"] * 2, "score": [0.0, 2.0],
        "proba:bronze": [0.7, 0.1], "proba:silver": [0.2, 0.1], "proba:gold": [0.1, 0.8]}),
        written=now - dt.timedelta(days=31), version=old)
    labels = pd.DataFrame({"inference_id": ["a", "b"], "label": [0.0, 2.0]})

    def join(version):
        return late_labels.join_earlier(str(tmp_path), labels, matched_today=[], version=version, label_delay_days=30,
                                        label_window_hours=168, now=now)

    other = join(late_labels.RecordsVersion(old.model_package_arn, 1, "d1", classes))
    assert other.summary["other_versions"] == {old.model_package_arn: {"labels": 2, "records": 2, "files": 1}}
    assert other.labelled is None and "unreadable" not in other.summary and other.summary["unmatched_labels"]["rows"] == 0
    same = join(old)
    assert same.summary["labelled_rows"] == 2 and same.labelled["proba:gold"].tolist() == [0.1, 0.8]


def test_records_that_name_no_version_are_not_judged_as_the_version_serving(tmp_path):
    """GIVEN a due day's records written before records named their version (no key-value metadata) and their
    labels WHEN a version joins them THEN they are counted apart as '(version not recorded)'."""
    now = _now()
    day = (now - dt.timedelta(days=32)).strftime("%Y-%m-%d")
    path = tmp_path / "run-1" / late_labels.RECORDS_FILE
    path.parent.mkdir()
    pd.DataFrame({"inference_id": ["a"], "inference_time": pd.to_datetime([f"{day}T10:00:00Z"], utc=True),
                  "score": [0.2]}).to_parquet(path)
    earlier = late_labels.join_earlier(str(tmp_path), pd.DataFrame({"inference_id": ["a"], "label": [1.0]}),
                                       matched_today=[], version=VERSION, label_delay_days=30, label_window_hours=168,
                                       now=now)
    assert earlier.summary["other_versions"] == {late_labels.UNRECORDED: {"labels": 1, "records": 1, "files": 1}}
    assert earlier.summary["labelled_rows"] == 0


# --- when a request day is judged: labels trickling in over the delay -----------------------------------------------

RUN_HOUR = dt.timedelta(hours=1)


def _simulate(tmp_path, arrival_days: np.ndarray, y: np.ndarray, served: np.ndarray, true_auc: float, *,
              delay: int = 30, window_hours: float = 168.0, failed: tuple = (), min_labeled_rows: int = 200):
    """Daily runs D+1 .. D+40 over one day D of 4,000 requests (recorded by the run of D+1) whose labels arrive
    ``arrival_days`` after D noon: each run joins every label that arrived by then (the label window's as labels, the
    rest of the look-back's as older labels) and judges quality against a baseline AUC ``true_auc`` (the healthy
    model's), told the days the earlier runs' reports say they judged, as the monitor tells it (``failed``: the runs
    that published no report). Returns {run day: model-quality section, or None when no day was judged}."""
    noon = dt.datetime(2026, 10, 1, 12, tzinfo=dt.timezone.utc)
    ids = np.array([f"r{i}" for i in range(len(y))])
    write_records(tmp_path, "run-d", pd.DataFrame({"inference_id": ids, "inference_time": [noon.isoformat()] * len(y),
                                                   "score": served}), written=noon + dt.timedelta(days=1))
    arrived = noon + pd.to_timedelta(arrival_days, unit="D")
    out = {}
    reports = []
    for run_day in range(1, 41):
        now = noon + dt.timedelta(days=run_day) + RUN_HOUR
        came = np.asarray(arrived <= now)
        recent = came & np.asarray(arrived > now - dt.timedelta(hours=window_hours))
        earlier = late_labels.join_earlier(
            str(tmp_path), pd.DataFrame({"inference_id": ids[recent], "label": y[recent]}),
            older_labels=pd.DataFrame({"inference_id": ids[came & ~recent], "label": y[came & ~recent]}),
            matched_today=[], version=VERSION, label_delay_days=delay, label_window_hours=window_hours, now=now,
            judged_before=late_labels.judged_days(reports, VERSION))
        records, rows = earlier.combined(None, {})
        assert earlier.summary["labelled_rows"] + sum(earlier.summary["pending_days"].values()) \
            + sum(earlier.summary["incomplete_days"].values()) \
            + earlier.summary["past_due_labels"] + sum(d["labels"] for d in earlier.summary["judged_before"].values()) \
            == int(came.sum())  # every label that came is accounted for
        out[run_day] = quality.model_quality(records, {"auc": true_auc}, rows_per_day=rows,
                                             min_labeled_rows=min_labeled_rows) if rows else None
        if out[run_day] is not None:
            earlier.annotate(out[run_day])
        if run_day not in failed:
            reports.append({"generated_at": now.isoformat(), "trusted": True,
                            "sections": {"model_quality": {"late_labels": earlier.summary}}})
    return out


@pytest.fixture(scope="module")
def day_of_churn():
    """4,000 requests of one day: labels drawn from the healthy model's probabilities (its AUC the baseline's), and a
    decayed version's answers (a weaker signal) for the same requests."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=4000)
    p = 1 / (1 + np.exp(-(2.2 * x - 2.6)))
    y = (rng.random(4000) < p).astype(float)
    decayed = 1 / (1 + np.exp(-(0.6 * x + rng.normal(0, 1.2, 4000) - 2.6)))
    true_auc = quality.metrics.headline(y, p, 0.5)["auc"]
    timings = {"uniform over 1..30 days": rng.uniform(1, 30, 4000),
               # churn: a positive when the customer cancels (riskier ones earlier), a negative at the delay
               "churn: positives early, negatives at day 30": np.where(
                   y == 1, np.clip(30 * (1 - p) + rng.normal(0, 3, 4000), 1, 30), 30.0)}
    return {"p": p, "y": y, "decayed": decayed, "auc": true_auc, "timings": timings}


@pytest.mark.parametrize("timing", ["uniform over 1..30 days", "churn: positives early, negatives at day 30"])
def test_a_day_is_judged_once_its_labels_are_due_with_every_label_that_came(tmp_path, day_of_churn, timing):
    """GIVEN one day of requests whose labels trickle in over the 30-day delay (uniformly; or churn-like: positives
    first, negatives at day 30) and a healthy model WHEN the daily runs of the next 40 days join them THEN no run
    judges the day before its labels are due (no false fail on the early, biased slice); the first run after (D+31)
    judges it on every label (coverage 1), at the healthy AUC: pass; the later runs, told so by its report, do not
    judge it again (one bad day puts the quality alarm into ALARM once, and is not diluted by other days).
    AND with a decayed model's answers THEN that run fails it (a real drop is found), and only that run."""
    d = day_of_churn
    healthy = _simulate(tmp_path / "healthy", d["timings"][timing], d["y"], d["p"], d["auc"])
    judged = [day for day, mq in healthy.items() if mq is not None]
    assert judged == [31]
    mq = healthy[31]
    assert mq["windows"][0]["coverage"] == 1.0 and mq["scored_rows"] == 4000
    assert mq["status"] == "pass" and mq["metrics"]["auc"] == pytest.approx(d["auc"])
    decayed = _simulate(tmp_path / "decayed", d["timings"][timing], d["y"], d["decayed"], d["auc"])
    assert [day for day, mq in decayed.items() if mq is not None and mq["status"] == "fail"] == [31]
    assert decayed[31]["auc_drop"] > 0.1


def test_a_due_day_whose_judging_runs_failed_is_judged_by_the_next_run_within_its_window(tmp_path, day_of_churn):
    """GIVEN the runs of D+31 and D+32 failing (no report published: their judging never reached the alarm)
    WHEN the daily runs go on THEN D+33 judges the day (still within its week), and no later run does."""
    d = day_of_churn
    runs = _simulate(tmp_path, d["timings"]["uniform over 1..30 days"], d["y"], d["decayed"], d["auc"], failed=(31, 32))
    assert [day for day, mq in runs.items() if mq is not None] == [31, 32, 33]  # 31 and 32's reports never came
    assert runs[33]["status"] == "fail" and runs[33]["scored_rows"] == 4000


def test_a_small_models_due_days_too_few_to_judge_alone_are_carried_and_judged_once_pooled(tmp_path):
    """GIVEN a model with little traffic: 60 requests a day over ten days, every label arriving 5 days after its request
    (a 5-day delay), and quality judged on 200 labelled rows at least WHEN the daily runs go on THEN a run whose due
    days are too few to judge does not count them as judged (``carried_days``, said in a check): the next run pools
    them with the day that comes due then, so the first four days are judged together once (D+9), the next four once
    (D+13), and no day is judged twice; the last two, 120 rows together when they leave the week, are never judged."""
    noon = dt.datetime(2026, 10, 1, 12, tzinfo=dt.timezone.utc)
    rng = np.random.default_rng(7)
    ids, times, labels = [], [], []
    for k in range(10):
        day_ids = [f"d{k}-{i}" for i in range(60)]
        score = rng.random(60)
        write_records(tmp_path, f"run-{k}", pd.DataFrame({
            "inference_id": day_ids, "inference_time": [(noon + dt.timedelta(days=k)).isoformat()] * 60, "score": score}),
            written=noon + dt.timedelta(days=k + 1))
        ids += day_ids
        times += [noon + dt.timedelta(days=k)] * 60
        labels += list((rng.random(60) < score).astype(float))
    ids, arrived, y = np.array(ids), pd.DatetimeIndex(times) + pd.Timedelta(days=5), np.array(labels)
    reports, judged, carried_at = [], {}, {}
    for run_day in range(1, 22):
        now = noon + dt.timedelta(days=run_day) + RUN_HOUR
        came = np.asarray(arrived <= now)
        earlier = late_labels.join_earlier(
            str(tmp_path), pd.DataFrame({"inference_id": ids[came], "label": y[came]}), matched_today=[], version=VERSION,
            label_delay_days=5, label_window_hours=168, now=now, judged_before=late_labels.judged_days(reports, VERSION))
        records, rows = earlier.combined(None, {})
        if rows:
            section = earlier.annotate(quality.model_quality(records, {"auc": 0.7}, rows_per_day=rows, min_labeled_rows=200))
            for day in section["late_labels"]["judged_days"]:
                assert day not in judged, f"{day} judged twice"
                judged[day] = (run_day, section["scored_rows"])
            if section["late_labels"].get("carried_days"):
                carried_at[run_day] = section["late_labels"]["carried_days"]
                note = next(c for c in section["checks"] if c["check"] == "late_labels_carried")
                first, last = carried_at[run_day][0], carried_at[run_day][-1]
                assert note["status"] == "pass" and note["detail"] == (
                    f"the quality checks were skipped ({section['detail']}), so the due days {first} to {last} are not "
                    "counted as judged: the next run judges them again with the days that come due then, while they are due")
        reports.append({"generated_at": now.isoformat(), "trusted": True,
                        "sections": {"model_quality": {"late_labels": earlier.summary}}})
    day = [(noon + dt.timedelta(days=k)).strftime("%Y-%m-%d") for k in range(10)]
    assert judged == {**{d: (9, 240) for d in day[:4]}, **{d: (13, 240) for d in day[4:8]}}
    assert carried_at[6] == day[:1] and carried_at[8] == day[:3] and carried_at[12] == day[4:7]
    assert carried_at[20] == day[8:10] and carried_at[21] == day[9:10]  # D+8 left the week: never judged

def test_the_published_quality_pools_the_due_days_of_the_label_window(tmp_path):
    """GIVEN eleven days of records (28 to 38 days ago, one file each) with all their labels, a 30-day delay WHEN a
    run that knows of no earlier judging (the first, or one whose history cannot be read) joins them THEN it judges
    together the seven days whose labels came due in the last week (31 to 37 days ago), none of the three days not due
    yet (their labels count as pending) nor the one due before the week."""
    now = dt.datetime(2026, 11, 30, 9, tzinfo=dt.timezone.utc)
    labels = []
    for ago in range(28, 39):
        day = (now - dt.timedelta(days=ago)).strftime("%Y-%m-%d")
        ids = [f"{ago}-{i}" for i in range(50)]
        write_records(tmp_path, f"run-{ago}", pd.DataFrame({"inference_id": ids, "inference_time": [f"{day}T10:00:00Z"] * 50,
                                                            "score": np.linspace(0, 1, 50)}),
                      written=now - dt.timedelta(days=ago - 1))
        labels.append(pd.DataFrame({"inference_id": ids, "label": [0.0, 1.0] * 25}))
    earlier = late_labels.join_earlier(str(tmp_path), pd.concat(labels), matched_today=[], version=VERSION,
                                       label_delay_days=30, label_window_hours=168, now=now)
    due = [(now - dt.timedelta(days=ago)).strftime("%Y-%m-%d") for ago in range(37, 30, -1)]
    assert list(earlier.summary["due_days"]) == due and sorted(earlier.rows_per_day) == due
    assert all(v == {"rows": 50, "labelled": 50} for v in earlier.summary["due_days"].values())
    assert sum(earlier.summary["pending_days"].values()) == 150 and earlier.summary["past_due_labels"] == 50
    records, rows = earlier.combined(None, {})
    section = quality.model_quality(records, {"auc": 0.5}, rows_per_day=rows, min_labeled_rows=300)
    assert [w["day"] for w in section["windows"] if w["scored"]] == due and section["scored_rows"] == 350


# --- the records look-back past --max-window-bytes -------------------------------------------------------------------


def test_records_past_the_byte_cap_keep_the_due_files_oldest_first_and_name_what_was_left_out(aws, tmp_path):
    """GIVEN 38 daily records files of 100 bytes over a 30-day delay's look-back and a cap of 500 bytes
    WHEN they are downloaded THEN the files holding due labels come first, the oldest first; the report names what
    was left out and how many of those hold due labels."""
    now = _now()
    for ago in range(1, 39):
        uri = f"{HISTORY_URI}run-{ago:02d}/{late_labels.RECORDS_FILE}"
        aws.put(uri, b"x" * 100)
        aws.age(uri, now - dt.timedelta(days=ago, hours=-0.5))
    due_before = now - dt.timedelta(days=DELAY) + dt.timedelta(hours=24)
    summary = remote.download_records(s3=aws.s3, history_s3_uri=HISTORY_URI, dest_dir=str(tmp_path / "r"),
                                      lookback_hours=records_lookback_hours(DELAY), max_bytes=500, now=now,
                                      due_before=due_before)
    assert sorted(os.listdir(tmp_path / "r")) == [f"run-{ago}" for ago in (34, 35, 36, 37, 38)]
    assert summary["skipped_objects"] == 33 and summary["skipped_due_objects"] == 4  # 30 .. 33 days ago
    assert summary["truncated"] and summary["skipped"][0]["due"] and summary["skipped"][0]["key"].endswith("run-33/predictions.parquet")
    (warning,) = [c for c in remote.records_checks(summary) if c["check"] == "prediction_records_truncated"]
    assert warning["status"] == "warn" and "33 of the 38 earlier runs' records files" in warning["detail"]
    assert "4 of them hold requests whose labels are due" in warning["detail"]


# --- the look-back's labels streamed: the same judgement as holding them all ------------------------------------------


def _both_ways(world, *, chunk_rows: int = 7, judged_before=None, **kwargs):
    """The streaming join (the older labels read ``chunk_rows`` at a time) and the in-memory reference (every label
    held with its id: the join as it was) over one generated look-back."""
    from tests.support import late_labels_reference as reference

    recent = quality.read_labels(world["labels_dir"])
    common = dict(matched_today=world["matched_today"], version=late_labels_world.VERSION,
                  label_delay_days=world["delay"], label_window_hours=world["window_hours"], now=world["now"], **kwargs)
    older, problem = reference.read_older_labels(world["late_labels_dir"], "binary_classification", [])
    assert problem is None
    expected = reference.join_earlier(world["records_dir"], recent, older_labels=older, **common)
    streamed = late_labels.join_earlier(
        world["records_dir"], recent, judged_before=judged_before, **common,
        older_labels=late_labels.LookbackLabels(world["late_labels_dir"], "binary_classification", [], chunk_rows=chunk_rows))
    return expected, streamed


def _same_judgement(expected, streamed) -> None:
    def rows(frame):
        return frame.sort_values("inference_id").reset_index(drop=True).astype({"label": float})

    assert (expected.labelled is None) == (streamed.labelled is None)
    if expected.labelled is not None:
        pd.testing.assert_frame_equal(rows(expected.labelled), rows(streamed.labelled), check_like=True)
    assert streamed.rows_per_day == expected.rows_per_day
    new_keys = {"judged_days", "judged_version", "judged_before", "incomplete_days"}
    assert {k: v for k, v in streamed.summary.items() if k not in new_keys} == expected.summary
    assert streamed.summary["incomplete_days"] == {}  # these worlds' unreadable file holds no due day
    # labels_overdue is annotate's now (it needs the days the section scored): the reference still raises its own.
    assert streamed.checks == [c for c in expected.checks if c["check"] != "labels_overdue"]
    for earlier in (expected, streamed):
        records, rows_per_day = earlier.combined(None, {})
        if records is not None:
            earlier.quality = quality.model_quality(records, {"auc": 0.7}, rows_per_day=rows_per_day, min_labeled_rows=20)
    assert getattr(streamed, "quality", None) == getattr(expected, "quality", None)


@pytest.fixture(scope="module")
def messy_lookback(tmp_path_factory):
    """The generated 40-day look-back both today_start cases join: written once, as the joins only read it (records
    and labels are read, never written, moved or touched - the test checks each run leaves the files as they were)."""
    return late_labels_world.write_lookback(tmp_path_factory.mktemp("lookback"), days=40, per_day=60, mess=True)


def _files(world) -> dict:
    """Every file of a generated look-back with its size and modification time (what a join must leave as it was)."""
    out = {}
    for key in ("records_dir", "labels_dir", "late_labels_dir"):
        for root, _, names in os.walk(world[key]):
            for name in names:
                stat = os.stat(os.path.join(root, name))
                out[os.path.join(root, name)] = (stat.st_size, stat.st_mtime_ns)
    return out


@pytest.mark.parametrize("today_start", [None, late_labels_world.NOW - dt.timedelta(days=12, hours=6)])
def test_streaming_the_look_backs_labels_judges_exactly_what_holding_them_all_did(messy_lookback, today_start):
    """GIVEN a generated look-back of 40 days with what real ones hold: a day recorded twice, another version's
    records, an unreadable records file, labels in parquet, CSV and JSON Lines (one feed without label_time),
    relabelled ids whose later file carries a later or an earlier label_time, duplicate rows, blank and unusable labels,
    unmatched labels and ids today's window took
    WHEN the join streams the older labels a few rows at a time THEN the judged rows, rows per day, summary, checks and
    the model-quality section are those of the in-memory join it replaces."""
    world = messy_lookback
    before = _files(world)
    expected, streamed = _both_ways(world, today_start=today_start)
    assert _files(world) == before  # the shared look-back is read, not changed
    _same_judgement(expected, streamed)
    assert streamed.summary["labelled_rows"] > 100 and streamed.summary["other_versions"]
    assert streamed.summary["pending_days"] and streamed.summary["past_due_labels"] and streamed.summary["unreadable"]
    assert streamed.summary["unmatched_labels"]["rows"] >= 5  # the 5 of no request, and today_start's


def test_streaming_judges_a_larger_look_back_exactly_as_before(tmp_path):
    """GIVEN 40 days of 3,000 requests (120,000 records, ~96,000 labels) WHEN streamed in chunks of 5,000 labels
    THEN the same judgement as the in-memory join."""
    world = late_labels_world.write_lookback(tmp_path, days=40, per_day=3000, mess=True, seed=7)
    expected, streamed = _both_ways(world, chunk_rows=5000)
    _same_judgement(expected, streamed)
    assert streamed.summary["labelled_rows"] > 10_000


def test_the_id_hashes_are_pandas_hashes_of_the_ids_as_text():
    """GIVEN ids as a records file or a label feed gives them (text, numbers, repeats, blanks, non-ASCII) WHEN hashed
    THEN each is pandas' 64-bit hash of the id as text (hash_pandas_object's, what the join used before), one per id."""
    ids = pd.Series(["a", "a", "", "é-1", 42, 3.5, "3f2c1b0e-aaaa-4bbb-8ccc-1234567890ab", "b"], dtype=object)
    expected = pd.util.hash_pandas_object(ids.astype(str), index=False).to_numpy(dtype=np.uint64)
    hashes = late_labels._hashed(ids)
    assert hashes.dtype == np.uint64 and hashes.tolist() == expected.tolist()
    assert hashes[0] == hashes[1] and len(set(hashes.tolist())) == 7
    assert late_labels._hashed(pd.Series([], dtype=object)).tolist() == []


def test_a_hash_collision_never_attaches_another_requests_label(tmp_path, monkeypatch):
    """GIVEN every id hashing alike (the worst collision a 64-bit hash could have) WHEN a due day is joined THEN each
    request gets its own label or none: the hash only pre-selects, the id decides."""
    now = dt.datetime(2026, 11, 30, 9, tzinfo=dt.timezone.utc)
    write_records(tmp_path, "run-1", pd.DataFrame({"inference_id": ["a", "b", "c"], "inference_time": ["2026-10-29T10:00:00Z"] * 3,
                                                   "score": [0.1, 0.5, 0.9]}), written=now - dt.timedelta(days=31))
    monkeypatch.setattr(late_labels, "_hashed", lambda ids: np.zeros(len(ids), dtype=np.uint64))
    earlier = late_labels.join_earlier(str(tmp_path), pd.DataFrame({"inference_id": ["a"], "label": [1.0]}),
                                       older_labels=pd.DataFrame({"inference_id": ["c"], "label": [0.0]}),
                                       matched_today=[], version=VERSION, label_delay_days=30, label_window_hours=168, now=now)
    assert dict(zip(earlier.labelled["inference_id"], earlier.labelled["label"])) == {"a": 1.0, "c": 0.0}


@pytest.mark.parametrize("content, problem", [
    (b"", "No columns to parse from file"),
    (b"inference_id,label,label_time\nx,maybe,2026-11-01T00:00:00Z\n", "none of the 1 label rows under"),
    (b"inference_id,verdict\nx,1\n", "lack columns ['label']"),
])
def test_unreadable_older_labels_give_the_reason_the_in_memory_read_gave(tmp_path, content, problem):
    """GIVEN an older label file that cannot be read, whose rows carry no label this model takes, or that lacks the
    label column WHEN the look-back's labels are streamed THEN UnreadableLabels says what the whole read said (the
    monitor then judges no due day: late_labels_not_judged)."""
    from tests.support import late_labels_reference as reference

    (tmp_path / "late").mkdir()
    if not content:  # a good file besides the bad one changes nothing
        pd.DataFrame({"inference_id": ["y"], "label": [1]}).to_parquet(tmp_path / "late" / "a.parquet")
    (tmp_path / "late" / "b.csv").write_bytes(content)
    _, expected = reference.read_older_labels(str(tmp_path / "late"), "binary_classification", [])
    stream = late_labels.LookbackLabels(str(tmp_path / "late"), "binary_classification", [], chunk_rows=1)
    with pytest.raises(late_labels.UnreadableLabels) as raised:
        list(stream.chunks())
    assert str(raised.value) == expected and problem in expected


# --- each due day judged once: what the earlier reports say they judged ------------------------------------------------


def _judging_report(days, *, version=VERSION, generated_at="2026-11-29T09:00:00+00:00", **extra):
    return {"generated_at": generated_at, "trusted": True, "window": {"start": "2026-11-28T09:00:00+00:00",
                                                                       "end": "2026-11-29T08:59:00+00:00"},
            "sections": {"model_quality": {"late_labels": {"judged_days": days, "judged_version": version.as_dict()}}},
            **extra}


def test_the_days_earlier_runs_judged_are_read_from_their_reports_of_the_same_version():
    """GIVEN earlier reports WHEN the days they judged are read THEN a day counts as judged, with when, from a report
    whose numbers stood and were published, of the version judged now; not from an untrusted report (its quality was
    withheld), one whose metrics failed to publish, another version's, nor one over exactly this run's traffic window
    (a local run repeated over the same capture)."""
    window = {"start": "2026-11-29T09:00:00+00:00", "end": "2026-11-30T08:59:00+00:00"}
    reports = [
        _judging_report(["2026-10-20"], generated_at="2026-11-21T09:00:00+00:00"),
        _judging_report(["2026-10-21"], trusted=False),
        _judging_report(["2026-10-22"], errors=[{"kind": "publish_failed", "message": "throttled"}]),
        _judging_report(["2026-10-23"], version=late_labels.RecordsVersion("arn:aws:sagemaker:eu-west-1:1:model-package/m/9", 9)),
        {**_judging_report(["2026-10-24"]), "window": dict(window)},
        {"generated_at": "2026-11-25T09:00:00+00:00", "trusted": True, "sections": {"model_quality": {"status": "error"}}},
        _judging_report(["2026-10-20", "2026-10-25"], generated_at="2026-11-26T09:00:00+00:00"),
    ]
    assert late_labels.judged_days(reports, VERSION, window=window) == {
        "2026-10-20": "2026-11-21T09:00:00+00:00", "2026-10-25": "2026-11-26T09:00:00+00:00"}


def test_a_due_day_an_earlier_run_judged_is_not_judged_again_and_the_report_says_which_days_were(tmp_path):
    """GIVEN two due days of records with their labels, one of which an earlier run of this version judged
    WHEN a run joins them THEN only the other is judged (its requests and labels, judged_days); the one judged before
    is named with when and its labels, neither pending nor unmatched."""
    now = dt.datetime(2026, 11, 30, 9, tzinfo=dt.timezone.utc)
    for day in ("2026-10-27", "2026-10-28"):
        write_records(tmp_path, f"run-{day}", pd.DataFrame({"inference_id": [f"{day}-a", f"{day}-b"],
                                                            "inference_time": [f"{day}T10:00:00Z"] * 2, "score": [0.2, 0.8]}),
                      written=dt.datetime.fromisoformat(f"{day}T23:30:00+00:00"))
    labels = pd.DataFrame({"inference_id": ["2026-10-27-a", "2026-10-27-b", "2026-10-28-a"], "label": [0.0, 1.0, 1.0]})
    earlier = late_labels.join_earlier(str(tmp_path), labels, matched_today=[], version=VERSION, label_delay_days=30,
                                       label_window_hours=168, now=now,
                                       judged_before={"2026-10-27": "2026-11-28T09:00:00+00:00"})
    summary = earlier.summary
    assert summary["judged_days"] == ["2026-10-28"] and earlier.rows_per_day == {"2026-10-28": 2}
    assert summary["due_days"] == {"2026-10-28": {"rows": 2, "labelled": 1}}
    assert summary["judged_before"] == {"2026-10-27": {"judged_at": "2026-11-28T09:00:00+00:00", "labels": 2}}
    assert summary["judged_version"] == VERSION.as_dict()
    assert summary["pending_days"] == {} and summary["past_due_labels"] == 0 and summary["unmatched_labels"]["rows"] == 0


def test_the_next_scheduled_run_does_not_judge_a_due_day_again_unless_the_history_cannot_be_read(aws, spec, reference,
                                                                                                  tmp_path):
    """GIVEN a decayed model's due day judged (and failed) by yesterday's scheduled run, whose report is in the job's
    history WHEN today's run judges its own new traffic THEN the day is not judged again: no second quality failure,
    the day named in judged_before
    AND WHEN an earlier report in the history cannot be read THEN the run cannot tell what was judged: it judges every
    due day as before, and a warning says so (never a silent skip)."""
    then = _decayed_day_with_labels(aws, spec, reference, tmp_path)
    traffic(aws, spec, reference["model"], name="yesterday", day=_now(), rows=1500, seed=500)
    first = scheduled_run(aws, spec, tmp_path / "run-2")
    day = then.strftime("%Y-%m-%d")
    assert first["sections"]["model_quality"]["late_labels"]["judged_days"] == [day]
    assert check(first, "auc_drop")["status"] == "fail"
    finish(aws, tmp_path / "run-2", "run-2", days_ago=1)
    leave_window(aws, "yesterday", 1.5)
    traffic(aws, spec, reference["model"], name="today", day=_now(), rows=1500, seed=510)

    report = scheduled_run(aws, spec, tmp_path / "run-3")

    late = report["sections"]["model_quality"]["late_labels"]
    assert late["judged_days"] == [] and late["labelled_rows"] == 0 and late["due_days"] == {}
    assert list(late["judged_before"]) == [day] and late["judged_before"][day]["labels"] == 1500
    assert check(report, "auc_drop")["status"] != "fail" and "quality" not in report_mod.retrain_alarms(report)
    assert not [c for c in report["checks"] if c["check"] == "late_labels_history_unknown"]

    aws.put(f"{HISTORY_URI}run-x/report.json", b"{not json")
    again = scheduled_run(aws, spec, tmp_path / "run-4")

    assert again["sections"]["model_quality"]["late_labels"]["judged_days"] == [day]
    unknown = check(again, "late_labels_history_unknown")
    assert unknown["status"] == "warn" and unknown["detail"] == (
        "every due day of the label window is judged this run, those earlier runs judged too: 1 of the earlier runs' "
        "reports could not be read (e.g. run-x/report.json: not a readable JSON report (JSONDecodeError: Expecting "
        "property name enclosed in double quotes: line 1 column 2 (char 1))); the quality alarm may see a day again")


def test_a_run_that_cannot_download_the_history_judges_every_due_day_and_says_why(tmp_path):
    """GIVEN the earlier reports' download failed (or no --history-dir) WHEN the judged days are asked for THEN none
    are known and the reason is given (the run then judges every due day, warning late_labels_history_unknown)."""
    from pipeline_code.monitoring import history as history_mod

    failed = [{"kind": "history_download_failed", "message": "s3://b/monitor/churn/: AccessDenied", "section": "cumulative_drift"}]
    assert monitor._judged_before(history_mod.History(), failed, VERSION, {}, history_dir=str(tmp_path)) == (
        {}, "the earlier runs' reports were not downloaded (s3://b/monitor/churn/: AccessDenied)")
    assert monitor._judged_before(history_mod.History(), [], VERSION, {}, history_dir=None) == (
        {}, "no --history-dir (the earlier runs' reports) was given")
    assert late_labels.history_check("why")["detail"] == (
        "every due day of the label window is judged this run, those earlier runs judged too: why; the quality alarm "
        "may see a day again")


# --- a due day counts as judged only when the section scored it, on all its requests -----------------------------------


def _judge(records_dir, labels, *, now, reports, today=None, **kwargs):
    """One run's late-label pass as the monitor makes it: today's window (``today``, labelled) with the due days,
    the quality section, then annotate; its report appended to ``reports`` (the next runs read which days it judged)."""
    earlier = late_labels.join_earlier(str(records_dir), labels, matched_today=late_labels.matched_ids(today),
                                       version=VERSION, label_delay_days=DELAY, label_window_hours=168, now=now,
                                       judged_before=late_labels.judged_days(reports, VERSION), **kwargs)
    records, rows = earlier.combined(today, quality.day_counts(today) if today is not None else {})
    section = (quality.model_quality(records, {"auc": 0.75}, rows_per_day=rows, min_labeled_rows=200,
                                     min_label_coverage=0.5) if rows else {"status": "none", "checks": []})
    earlier.annotate(section)
    reports.append({"generated_at": now.isoformat(), "trusted": True,
                    "sections": {"model_quality": {"late_labels": earlier.summary}}})
    return section


@pytest.mark.parametrize("labels_at_first", [0, 300])
def test_a_due_day_whose_labels_are_late_is_carried_not_locked_though_todays_window_judges(tmp_path, labels_at_first):
    """GIVEN a day D of 1,000 requests whose labels are due at a run, and today's window with 400 labelled requests (as
    every real run has) WHEN the label feed is a day late (none of D's labels yet), or only 30 % of them came (below
    min_label_coverage 0.5) THEN that run's section passes on today's window, but D is not counted as judged: it is
    carried (too_few_labels) with a labels_overdue warning naming it; the next run, with every label of D, judges it
    on all 1,000 requests, and the run after that does not judge it again."""
    D = dt.datetime(2026, 10, 1, tzinfo=dt.timezone.utc)
    rng = np.random.default_rng(1)
    ids = np.array([f"d-{i}" for i in range(1000)])
    score = rng.random(1000)
    y = (rng.random(1000) < score).astype(float)
    write_records(tmp_path, "run-d", pd.DataFrame({"inference_id": ids, "score": score,
                                                   "inference_time": [(D + dt.timedelta(hours=12)).isoformat()] * 1000}),
                  written=D + dt.timedelta(days=1, hours=3))
    first = D + dt.timedelta(days=1 + DELAY, hours=3)
    reports = []

    section = _judge(tmp_path, pd.DataFrame({"inference_id": ids[:labels_at_first], "label": y[:labels_at_first]}),
                     now=first, reports=reports, today=_today_window(first, 400, seed=1))

    late = section["late_labels"]
    assert section["status"] == "pass" and late["judged_days"] == []
    assert late["carried_days"] == ["2026-10-01"] and late["carried_why"] == {"2026-10-01": "too_few_labels"}
    (overdue,) = [c for c in section["checks"] if c["check"] == "labels_overdue"]
    assert overdue["status"] == "warn" and overdue["detail"].startswith(
        "1 due day has too few labels to be judged, below min_label_coverage 0.5: "
        f"2026-10-01 ({labels_at_first} of 1000 requests labelled); ")
    assert "(2026-10-01 until 2026-11-08T00:00:00+00:00, then never)" in overdue["detail"]

    every_label = pd.DataFrame({"inference_id": ids, "label": y})
    then = first + dt.timedelta(days=1)
    section = _judge(tmp_path, every_label, now=then, reports=reports, today=_today_window(then, 400, seed=2))
    assert section["late_labels"]["judged_days"] == ["2026-10-01"] and "carried_days" not in section["late_labels"]
    assert {w["day"]: (w["labeled"], w["scored"]) for w in section["windows"]}["2026-10-01"] == (1000, True)
    assert not [c for c in section["checks"] if c["check"] == "labels_overdue"]

    after = then + dt.timedelta(days=1)
    section = _judge(tmp_path, every_label, now=after, reports=reports, today=_today_window(after, 400, seed=3))
    assert section["late_labels"]["judged_days"] == [] and list(section["late_labels"]["judged_before"]) == ["2026-10-01"]


def _split_day(tmp_path):
    """A day D of 2,400 labelled requests split over two records files, as a daily 03:00 schedule writes it: D's first
    three hours in the run of D 03:00's file, the rest in the run of D+1 03:00's."""
    D = dt.datetime(2026, 10, 1, tzinfo=dt.timezone.utc)
    rng = np.random.default_rng(2)
    times = D + pd.to_timedelta(rng.uniform(0, 86_399, 2400), unit="s")
    score = rng.random(2400)
    frame = pd.DataFrame({"inference_id": [f"d-{i}" for i in range(2400)], "score": score,
                          "inference_time": times.strftime("%Y-%m-%dT%H:%M:%SZ")})
    early = np.asarray(times.hour < 3)
    files = {"run-d": (frame[early], D + dt.timedelta(hours=3, minutes=20)),
             "run-d1": (frame[~early], D + dt.timedelta(days=1, hours=3, minutes=20))}
    labels = pd.DataFrame({"inference_id": frame["inference_id"], "label": (rng.random(2400) < score).astype(float)})
    return D, files, labels


def test_a_due_day_split_over_a_records_file_left_out_past_the_cap_is_carried_and_judged_whole_next_run(aws, tmp_path):
    """GIVEN a day split over two records files (a daily 03:00 schedule) and a download cap that leaves the newer one
    out (the due files are kept oldest first) WHEN the run joins what it read THEN the day is not judged on the part
    that is there: it is carried (records_not_read), late_labels_records_missing names it, until when it can still be
    judged and the fix (the byte cap), and the truncation warning says so; the next run, with both files, judges it on
    all its 2,400 requests."""
    now = _now().replace(hour=3, minute=30, second=0, microsecond=0)
    D, files, labels = _split_day(tmp_path)
    shift = now - (D + dt.timedelta(days=1 + DELAY, hours=3, minutes=30))  # D's first due run is now
    D += shift
    sizes = {}
    for run, (part, written) in files.items():
        write_records(tmp_path / "made", run, part.assign(inference_time=(pd.to_datetime(part["inference_time"]) + shift)
                                                          .dt.strftime("%Y-%m-%dT%H:%M:%SZ")), written=written + shift)
        body = (tmp_path / "made" / run / late_labels.RECORDS_FILE).read_bytes()
        sizes[run] = len(body)
        aws.put(f"{HISTORY_URI}{run}/{late_labels.RECORDS_FILE}", body)
        aws.age(f"{HISTORY_URI}{run}/{late_labels.RECORDS_FILE}", written + shift)
    day = D.strftime("%Y-%m-%d")

    def download(dest, cap):
        return remote.download_records(s3=aws.s3, history_s3_uri=HISTORY_URI, dest_dir=str(dest), max_bytes=cap,
                                       lookback_hours=records_lookback_hours(DELAY), now=now,
                                       due_before=now - dt.timedelta(days=DELAY) + dt.timedelta(hours=24))

    reports = []
    cut = download(tmp_path / "first", sizes["run-d"])
    assert cut["not_read"] == [{"key": f"monitor/churn/run-d1/{late_labels.RECORDS_FILE}",
                                "written": (files["run-d1"][1] + shift).isoformat(), "why": "left out"}]
    (truncated,) = [c for c in remote.records_checks(cut) if c["check"] == "prediction_records_truncated"]
    assert ("the due days a file left out may hold are not judged this run but carried to the next while they are "
            "due, late_labels_records_missing names them") in truncated["detail"]

    section = _judge(tmp_path / "first", labels, now=now, reports=reports, records_not_read=cut["not_read"])

    late = section["late_labels"]
    assert late["judged_days"] == [] and late["due_days"] == {} and late["labelled_rows"] == 0
    assert late["carried_why"] == {day: "records_not_read"} and late["incomplete_days"] == {day: len(files["run-d"][0])}
    (missing,) = [c for c in section["checks"] if c["check"] == "late_labels_records_missing"]
    until = (D + dt.timedelta(days=38)).replace(hour=0, minute=0).isoformat()
    assert missing["status"] == "warn" and missing["detail"] == (
        f"1 due day is not judged this run ({day}): records files of the look-back that may hold their requests were "
        f"not read (e.g. monitor/churn/run-d1/{late_labels.RECORDS_FILE} (left out)), and a day is judged once, on all "
        f"its requests; the next runs judge them while they are due ({day} until {until}, then never). 1 left out past "
        "the download cap: raise models.<model>.monitor_max_window_gib (the job's --max-window-bytes)")

    whole = download(tmp_path / "next", 10**9)
    assert whole["not_read"] == []
    section = _judge(tmp_path / "next", labels, now=now + dt.timedelta(days=1), reports=reports,
                     records_not_read=whole["not_read"])
    assert section["late_labels"]["judged_days"] == [day] and section["scored_rows"] == 2400


def test_a_due_day_part_of_whose_records_are_unreadable_is_not_judged_on_the_rest(tmp_path):
    """GIVEN a day split over two records files, the newer one unreadable WHEN the run joins them THEN the day is not
    judged on the older file's requests (carried, named with the file); the days the unreadable file cannot hold
    are judged as before."""
    D, files, labels = _split_day(tmp_path)
    now = D + dt.timedelta(days=1 + DELAY, hours=3)
    write_records(tmp_path, "run-d", files["run-d"][0], written=files["run-d"][1])
    (tmp_path / "run-d1").mkdir()
    (tmp_path / "run-d1" / late_labels.RECORDS_FILE).write_bytes(b"not parquet")
    os.utime(tmp_path / "run-d1" / late_labels.RECORDS_FILE, (files["run-d1"][1].timestamp(),) * 2)
    older = D - dt.timedelta(days=3)  # a due day no missing file can hold
    write_records(tmp_path, "run-older", pd.DataFrame({"inference_id": ["o-1", "o-2"], "score": [0.2, 0.8],
                                                       "inference_time": [(older + dt.timedelta(hours=9)).isoformat()] * 2}),
                  written=older + dt.timedelta(days=1, hours=3))
    labels = pd.concat([labels, pd.DataFrame({"inference_id": ["o-1", "o-2"], "label": [0.0, 1.0]})])

    section = _judge(tmp_path, labels, now=now, reports=[])

    late = section["late_labels"]
    assert late["due_days"] == {older.strftime("%Y-%m-%d"): {"rows": 2, "labelled": 2}}
    assert late["carried_why"] == {"2026-10-01": "records_not_read", older.strftime("%Y-%m-%d"): "quality_skipped"}
    (missing,) = [c for c in section["checks"] if c["check"] == "late_labels_records_missing"]
    assert "(e.g. run-d1/predictions.parquet (unreadable))" in missing["detail"]
    assert missing["detail"].endswith("1 unreadable: see prediction_records_unreadable")


def test_the_days_a_records_file_may_hold_are_those_its_run_covered():
    """GIVEN a records file written at some time WHEN the days it may hold are asked THEN they are those of the window
    of traffic before its run started - at most the job's run time before the file was written, less the capture's
    lag - and never a later day."""
    written = dt.datetime(2026, 10, 2, 2, 20, tzinfo=dt.timezone.utc)  # 24 h + 2 h run + 1 h lag before: 09-30 23:20
    assert late_labels.records_span_days(written) == ["2026-09-30", "2026-10-01", "2026-10-02"]
    assert late_labels.records_span_days(written.replace(hour=3)) == ["2026-10-01", "2026-10-02"]
    assert late_labels.records_span_days(dt.datetime(2026, 10, 2, 23, 50, tzinfo=dt.timezone.utc),
                                         window_hours=6) == ["2026-10-02"]


def test_older_labels_with_no_records_to_join_them_to_leave_the_quality_section_standing(aws, spec, reference, tmp_path):
    """GIVEN labels written 10 days ago (in the look-back, before the label window) and no earlier run's records (the
    first run after label_delay_days is set on a model whose label feed already runs) WHEN today's run judges THEN its
    model-quality section stands: the older labels match no request, nothing is judged, nothing fails."""
    aws.serving_stack(churn_arn=register(aws, reference, "run-1"))
    frame = traffic(aws, spec, reference["model"], name="today", day=_now(), rows=300, seed=470)
    labels_arrive(aws, spec, frame.iloc[:50], "older", days_ago=10)

    report = scheduled_run(aws, spec, tmp_path / "run")

    assert report["healthy"], report["errors"]
    assert report["sections"]["model_quality"]["late_labels"]["labelled_rows"] == 0
