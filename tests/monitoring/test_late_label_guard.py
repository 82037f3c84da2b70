"""The late-label pass guarded (:mod:`pipeline_code.monitoring.late_label_guard`): a pass the memory left cannot hold is
skipped so that the drift report stands, and runs that judge no due day several times in a row page people.

The scheduled runs are the monitor's job against moto (``tests/support/remote_world``), as in ``test_late_labels.py``:
a day of a decayed model's traffic 31 days ago recorded by its run, its labels a third each written 30, 2 and 0 days ago,
today's undrifted traffic in the window.
"""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd

from pipeline_code.monitoring import late_label_guard, late_labels
from tests.support import late_labels_world
from tests.support.late_label_runs import (
    decayed_day_with_labels as _decayed_day_with_labels, labels_arrive, now as _now, scheduled_run, traffic,
)
from tests.support.monitoring import check
from tests.support.remote_world import HISTORY_URI, LABELS_URI, published, read_report, register



GIB = 1024**3


# --- how many runs in a row judged no due day -------------------------------------------------------------------------


def _report(at: str, *, skipped: bool = False, judged: bool = False) -> dict:
    """An earlier report: its pass judged no due day (``skipped``), ran (``judged``), or never got to it (neither)."""
    quality = {"late_labels": {"judged_days": []}} if judged else ({"checks": []} if skipped else None)
    return {"generated_at": at, "checks": [{"check": late_label_guard.NOT_JUDGED, "status": "warn"}] if skipped else [],
            "sections": {"model_quality": quality} if quality is not None else {}}


def test_runs_that_judged_no_due_day_are_counted_back_to_the_last_that_judged_passing_over_days_without_a_pass():
    """GIVEN earlier reports, oldest first: one that judged, two that judged none with a quiet day (no quality section)
    between them WHEN counted THEN two in a row judged none; a report that judged ends the count."""
    reports = [_report("1", skipped=True), _report("2", judged=True), _report("3", skipped=True), _report("4"),
               _report("5", skipped=True)]
    assert late_label_guard.runs_not_judged(reports) == 2
    assert late_label_guard.runs_not_judged([*reports, _report("6", judged=True)]) == 0
    assert late_label_guard.runs_not_judged([]) == 0


def test_the_third_run_in_a_row_that_judges_no_due_day_is_an_error_of_its_own_section_naming_the_cause():
    """GIVEN one, then two earlier runs that judged no due day WHEN this run judges none either THEN the second in a row
    only warns (its days are still due for the week), the third is an error confined to the late_labels section: the
    report is unhealthy (it pages) while the window's other numbers stand."""
    assert late_label_guard.ESCALATE_AFTER_RUNS == 3
    assert late_label_guard.persistent_error([_report("1", skipped=True)], "cut") is None
    error = late_label_guard.persistent_error([_report("1", skipped=True), _report("2", skipped=True)], "the cause")
    assert error == {"kind": "late_labels_not_judged_persistently", "section": "late_labels", "message": (
        "no due day of the late labels has been judged for 3 runs in a row (this one: the cause): AucDrop, QualityDrop "
        "and LabelCoverage of the due days are not published, so model-quality retraining is blind, and a due day no run "
        "judges within the week after it came due is never judged; fix the cause named in late_labels_not_judged of "
        "these reports")}


# --- the memory the pass needs ----------------------------------------------------------------------------------------


def _records(tmp_path, days: int, per_day: int) -> list[str]:
    paths = []
    for day in range(days):
        path = tmp_path / f"run-{day}" / late_labels.RECORDS_FILE
        path.parent.mkdir(parents=True)
        frame = pd.DataFrame({"inference_id": [f"{day}-{i}" for i in range(per_day)],
                              "inference_time": pd.Timestamp("2026-11-01T00:00:00Z") + pd.Timedelta(days=day),
                              "score": 0.5})
        late_labels_world.write_records(path, frame, written=dt.datetime(2026, 11, 2, tzinfo=dt.timezone.utc) + dt.timedelta(days=day))
        paths.append(str(path))
    return paths


def test_the_pass_is_estimated_from_the_records_footers_and_refused_only_when_the_memory_left_cannot_hold_it(tmp_path):
    """GIVEN 3 records files of 1,000 requests WHEN the memory left is below the estimate (144 MiB + 170 bytes a request),
    above it, or unknown THEN only the first is a problem, naming the estimate, the memory left and the fix."""
    paths = _records(tmp_path, 3, 1000)
    assert late_label_guard.lookback_requests(paths) == 3000
    needed = late_label_guard.BASE_BYTES + late_label_guard.BYTES_PER_REQUEST * 3000
    problem = late_label_guard.memory_problem(paths, available=lambda: needed - 1)
    assert problem == (
        "the late-label pass would need about 0.1 GiB (3,000 requests of the look-back at ~170 bytes each, in 3 records "
        "files) and the instance has 0.1 GiB left: skipped, so that the drift report stands; give the monitor more memory "
        "(environments.<env>.training.processing_instance_type, e.g. one size up), or lower "
        "models.<model>.label_delay_days if its labels come sooner")
    assert late_label_guard.memory_problem(paths, available=lambda: needed) is None
    assert late_label_guard.memory_problem(paths, available=lambda: None) is None


def test_an_unreadable_records_footer_counts_no_requests(tmp_path):
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet")
    assert late_label_guard.lookback_requests([str(bad), *_records(tmp_path, 1, 10)]) == 10


def test_the_memory_left_is_read_from_this_machine():
    left = late_label_guard.available_memory()
    assert left is not None and 0 < left < 1024 * GIB


# --- the scheduled runs -----------------------------------------------------------------------------------------------
# (as tests/monitoring/test_late_labels.py drives them)


def test_a_pass_the_memory_left_cannot_hold_is_skipped_and_the_drift_report_and_its_metrics_stand(aws, spec, reference,
                                                                                                   tmp_path, monkeypatch):
    """GIVEN a due day whose labels came, and an instance with 1 MiB of memory left at the pass WHEN today's run judges
    THEN the pass is skipped (an out-of-memory kill would lose the whole report): the report is written and healthy, its
    drift is judged and published, and late_labels_not_judged names the estimate and the fix; no AucDrop comes from the
    due day."""
    _decayed_day_with_labels(aws, spec, reference, tmp_path)
    traffic(aws, spec, reference["model"], name="today", day=_now(), rows=1500, seed=500)
    monkeypatch.setattr(late_label_guard, "available_memory", lambda: 1024**2)

    report = scheduled_run(aws, spec, tmp_path / "run-2")

    assert report["healthy"] and report["summary"]["records"] == 1500, report["errors"]
    assert "late_labels" not in report["sections"]["model_quality"]
    skipped = check(report, late_label_guard.NOT_JUDGED)
    assert skipped["status"] == "warn" and "the late-label pass would need about 0.1 GiB (1,500 requests" in skipped["detail"]
    assert report["sections"]["data_drift"]["features"] and "DataDriftScore" in published(aws)
    assert "AucDrop" not in published(aws)


def _history_report(aws, root, run: str, *, later_by: float) -> None:
    """``root``'s report as the report of an earlier run ``run``, generated ``later_by`` seconds after it (the runs'
    order is their reports' generated_at)."""
    report = read_report(root)
    report["generated_at"] = (dt.datetime.fromisoformat(report["generated_at"]) + dt.timedelta(seconds=later_by)).isoformat()
    aws.put(f"{HISTORY_URI}{run}/report.json", json.dumps(report).encode())


def test_the_third_run_in_a_row_that_cannot_judge_its_due_days_makes_the_report_unhealthy_and_its_window_stands(
        aws, spec, reference, tmp_path):
    """GIVEN a due day whose older labels cannot be read (an empty export in the look-back), and two earlier runs that
    judged no due day for it WHEN today's run cannot either THEN it pages: the report is unhealthy (MonitorHealthy 0)
    with an error of the late_labels section naming the runs and the cause, and its window stays trusted - drift and
    today's quality are published as before."""
    _decayed_day_with_labels(aws, spec, reference, tmp_path)
    aws.put(f"{LABELS_URI}broken.csv", b"")
    aws.age(f"{LABELS_URI}broken.csv", _now() - dt.timedelta(days=20))
    traffic(aws, spec, reference["model"], name="today", day=_now(), rows=1500, seed=500)
    first = scheduled_run(aws, spec, tmp_path / "run-2")
    assert first["healthy"] and check(first, late_label_guard.NOT_JUDGED)["status"] == "warn"
    _history_report(aws, tmp_path / "run-2", "run-2", later_by=0)
    _history_report(aws, tmp_path / "run-2", "run-3", later_by=1)

    report = scheduled_run(aws, spec, tmp_path / "run-4")

    assert not report["healthy"] and report["trusted"] and report["status"] == "unhealthy"
    (error,) = [e for e in report["errors"] if e["kind"] == "late_labels_not_judged_persistently"]
    assert error["section"] == "late_labels"
    assert error["message"].startswith("no due day of the late labels has been judged for 3 runs in a row (this one: "
                                       "the look-back's labels under")
    # MonitorHealthy 0 pages; the published maximum of a minute mixes the runs, MonitoringErrors' is this run's 1.
    assert report["summary"]["monitor_healthy"] == 0 and published(aws)["MonitoringErrors"] == 1
    assert "DataDriftScore" in published(aws)
    assert report["summary"]["records"] == 1500 and check(report, late_label_guard.NOT_JUDGED)["status"] == "warn"


# --- a label feed that stopped -----------------------------------------------------------------------------------------


def _with_labels(at: str, read: int, last: str | None = None) -> dict:
    """An earlier report whose run read ``read`` labels in its label window (``last``: the run it said last read some)."""
    quality = {"labels_read": read, **({"labels_last_read": last} if last else {})}
    return {"generated_at": at, "checks": [], "sections": {"model_quality": quality}}


def test_the_last_run_that_read_labels_is_carried_by_the_runs_that_read_none_and_days_without_a_quality_section():
    quiet = {"generated_at": "2026-11-05T03:00:00+00:00", "checks": [], "sections": {}}
    assert late_label_guard.labels_last_read([]) is None
    assert late_label_guard.labels_last_read([_with_labels("2026-11-01T03:00:00+00:00", 0)]) is None  # never came
    fed = _with_labels("2026-11-02T03:00:00+00:00", 40)
    monthly = {**_with_labels("2026-11-03T03:00:00+00:00", 0), "sections": {"model_quality": {
        "labels_read": 0, "older_label_files": 2}}}
    assert late_label_guard.labels_last_read([fed, monthly, quiet]) == "2026-11-03T03:00:00+00:00"
    assert late_label_guard.labels_last_read([fed, quiet]) == "2026-11-02T03:00:00+00:00"
    # Past the 30 reports the history holds, the runs that read none still say when the feed was last seen.
    stopped = _with_labels("2026-12-20T03:00:00+00:00", 0, last="2026-11-02T03:00:00+00:00")
    assert late_label_guard.labels_last_read([stopped, quiet]) == "2026-11-02T03:00:00+00:00"


def test_a_run_that_could_not_tell_whether_the_feed_stopped_does_not_make_the_later_runs_forget_it():
    """GIVEN a run that read labels, then runs that read none and carried nothing forward (the look-back's labels were
    not all downloaded, or the earlier reports could not be read: they cannot tell, so they neither page nor say when
    labels were last read) WHEN a later run asks THEN it still gets the run that read labels, so a feed that stopped
    pages again after one failed download instead of never."""
    fed = _with_labels("2026-11-02T03:00:00+00:00", 40)
    unsure = _with_labels("2026-11-03T03:00:00+00:00", 0)
    quiet = {"generated_at": "2026-11-04T03:00:00+00:00", "checks": [], "sections": {}}
    assert late_label_guard.labels_last_read([fed, unsure, quiet]) == "2026-11-02T03:00:00+00:00"
    assert late_label_guard.labels_last_read([fed, unsure, unsure]) == "2026-11-02T03:00:00+00:00"
    assert late_label_guard.labels_last_read([unsure, unsure]) is None  # the feed never came


def test_a_label_feed_that_stops_pages_until_labels_arrive_again_and_one_that_never_came_does_not(aws, spec, reference,
                                                                                                   tmp_path):
    """GIVEN a run that read labels, then a look-back (label_delay_days + 8 days) in which no label was written WHEN
    today's run judges THEN it pages (a feed that wrote its labels 20 days ago, a monthly batch, does not):
    the report is unhealthy (MonitorHealthy 0) with a labels_stopped error of the model-quality section naming the
    label feed, the label window and the last run that read labels, its window trusted (drift published); a model
    whose labels never came is not paged for it; the first run after labels arrive again is healthy (the alarm clears)."""
    aws.serving_stack(churn_arn=register(aws, reference, "run-1"))
    first = traffic(aws, spec, reference["model"], name="day-1", day=_now(), rows=300, seed=610)
    never = scheduled_run(aws, spec, tmp_path / "never")
    assert never["healthy"] and never["sections"]["model_quality"]["labels_read"] == 0, never["errors"]
    labels_arrive(aws, spec, first, "day-1")
    fed = scheduled_run(aws, spec, tmp_path / "run-1")
    assert fed["healthy"] and fed["sections"]["model_quality"]["labels_read"] == 300, fed["errors"]
    _history_report(aws, tmp_path / "run-1", "run-1", later_by=0)
    # A feed that writes a month's labels at once: none in the last week, but the look-back holds them - not stopped.
    aws.age(f"{LABELS_URI}day-1.parquet", _now() - dt.timedelta(days=20))
    monthly = scheduled_run(aws, spec, tmp_path / "monthly")
    assert monthly["healthy"] and monthly["sections"]["model_quality"]["labels_read"] == 0, monthly["errors"]
    assert monthly["sections"]["model_quality"]["older_label_files"] == 1
    # The feed stopped: nothing in the last week, nor in the look-back (label_delay_days + 8 days) before it.
    aws.age(f"{LABELS_URI}day-1.parquet", _now() - dt.timedelta(days=60))

    report = scheduled_run(aws, spec, tmp_path / "run-2")

    assert not report["healthy"] and report["trusted"] and report["status"] == "unhealthy"
    (error,) = [e for e in report["errors"] if e["kind"] == late_label_guard.STOPPED]
    assert error["section"] == "model_quality"
    assert error["message"] == (
        f"no ground-truth label was written under {LABELS_URI} in the last 168 hours (the label window, nor in the "
        "late-label look-back before it; the last run that read labels: "
        f"{read_report(tmp_path / 'run-1')['generated_at']}): model quality is not judged and its "
        "retrain alarm cannot fire; check the label feed (inference_id,label,label_time with the ids the traffic "
        "carries). The first run whose label window holds a label clears this.")
    assert report["summary"]["monitor_healthy"] == 0 and "DataDriftScore" in published(aws)
    _history_report(aws, tmp_path / "run-2", "run-2", later_by=1)

    labels_arrive(aws, spec, first, "again")
    again = scheduled_run(aws, spec, tmp_path / "run-3")
    assert again["healthy"] and not [e for e in again["errors"] if e["kind"] == late_label_guard.STOPPED]


def test_a_report_from_before_labels_read_whose_window_had_labelled_requests_says_the_feed_was_read():
    """GIVEN the last report a monitor from before ``labels_read`` wrote (19be382: its model-quality section counts the
    window's labelled requests, ``labeled_rows``), then a run after the upgrade that read no label WHEN it asks when
    labels were last read THEN that report's run: a feed that stopped across the upgrade pages, as one that stops after
    it does. A report of that version whose window had no labelled request says nothing (the feed may never have
    come)."""
    def before_upgrade(at: str, labeled: int) -> dict:
        quality = {"label_coverage": labeled / 3000, "labeled_rows": labeled, "scored_rows": 3000, "status": "pass"}
        return {"generated_at": at, "checks": [], "sections": {"model_quality": quality}}

    fed = before_upgrade("2026-12-06T03:00:00+00:00", 3000)
    assert late_label_guard.labels_last_read([fed]) == "2026-12-06T03:00:00+00:00"
    assert late_label_guard.labels_last_read([fed, before_upgrade("2026-12-07T03:00:00+00:00", 0)]) == \
        "2026-12-06T03:00:00+00:00"
    assert late_label_guard.labels_last_read([before_upgrade("2026-12-06T03:00:00+00:00", 0)]) is None
    # A report of this version still decides by labels_read (it counts the labels read, labelled requests or not).
    assert late_label_guard.labels_last_read([fed, _with_labels("2026-12-08T03:00:00+00:00", 0)]) == \
        "2026-12-06T03:00:00+00:00"
