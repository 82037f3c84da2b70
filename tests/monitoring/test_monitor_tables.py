"""The drift monitor's tables: each scheduled run writes its prediction records and its results (long format) in the
layout the Glue tables read - ``predictions/<model>/date=<day>/run=<id>/`` and ``monitor-results/<model>/...``, away
from ``report.json``/``report.html``, which a Parquet table's location may not hold - and the next runs read the
records back from there (and, for one look-back, from ``monitor/``, where runs before the upgrade wrote them)."""

from __future__ import annotations

import datetime as dt
import os

import pyarrow.parquet as pq
import pytest

from pipeline_code.core.contract import MONITOR_RESULTS, PREDICTION_RECORDS, inference_prefix, records_lookback_hours
from pipeline_code.monitoring import late_labels, monitor, remote, results_table
from tests.support.late_label_runs import DELAY, now as _now, scheduled_run, traffic
from tests.support.remote_world import HISTORY_URI, INFERENCE, from_s3_args, register

RECORDS_URI = f"s3://{INFERENCE}/{inference_prefix('churn', PREDICTION_RECORDS)}"


def _days_around(run) -> set:
    """The UTC days the run may have taken as its own (it may straddle midnight)."""
    before = _now()
    result = run()
    return result, {before.strftime("%Y-%m-%d"), _now().strftime("%Y-%m-%d")}


def _one(root, what: str, name: str) -> str:
    found = [os.path.join(d, name) for d, _, names in os.walk(root / what) if name in names]
    assert len(found) == 1, found
    return found[0]


def test_a_scheduled_run_writes_records_and_results_in_the_tables_layout_and_the_next_run_reads_the_records(
        aws, spec, reference, tmp_path):
    """GIVEN an approved version serving a day of traffic
    WHEN the scheduled run writes its tables (--tables-dir, --run-id: the construct's arguments)
    THEN predictions.parquet and monitor_results.parquet land in predictions/ and monitor-results/, each
    date=<the run's UTC day>/run=<id>/, none beside the report; the results hold the run's numbers in the stable
    columns; and once uploaded as the job's end does, the next run reads those records back (late labels)."""
    aws.serving_stack(churn_arn=register(aws, reference, "run-1"))
    traffic(aws, spec, reference["model"], name="today", day=_now(), rows=300, seed=11)
    root = tmp_path / "run-1"
    tables = ["--tables-dir", str(root / "tables"), "--run-id", "exec-1", "--records-s3-uri", RECORDS_URI]

    report, days = _days_around(lambda: scheduled_run(aws, spec, root, *tables))

    records = _one(root / "tables", PREDICTION_RECORDS, late_labels.RECORDS_FILE)
    results = _one(root / "tables", MONITOR_RESULTS, results_table.RESULTS_FILE)
    for path, what in ((records, PREDICTION_RECORDS), (results, MONITOR_RESULTS)):
        relative = os.path.relpath(os.path.dirname(path), root / "tables" / what).split(os.sep)
        assert relative[0] in {f"date={d}" for d in days} and relative[1:] == ["run=exec-1"], relative
    assert sorted(os.listdir(root / "out")) == ["report.html", "report.json"]
    assert pq.read_table(records).num_rows == 300

    frame = pq.read_table(results).to_pandas()
    assert list(frame.columns) == [name for name, _ in results_table.COLUMNS]
    assert set(frame["run"]) == {"exec-1"} and set(frame["model"]) == {"churn"}
    assert set(frame["model_package_version"]) == {report["sections"]["remote"]["serving"]["version"]}
    healthy = frame[(frame["section"] == "summary") & (frame["metric"] == "monitor_healthy")]
    assert list(healthy["value"]) == [report["summary"]["monitor_healthy"]]
    psi = frame[(frame["section"] == "data_drift") & (frame["metric"] == "psi")]
    assert set(psi["feature"]) == {f for f, e in report["sections"]["data_drift"]["features"].items() if "psi" in e}

    # what SageMaker does at the job's end: DIR/predictions/ uploaded to predictions/<model>/
    aws.put(RECORDS_URI + os.path.relpath(records, root / "tables" / PREDICTION_RECORDS).replace(os.sep, "/"),
            open(records, "rb").read())
    second = scheduled_run(aws, spec, tmp_path / "run-2", "--tables-dir", str(tmp_path / "run-2" / "tables"),
                           "--run-id", "exec-2", "--records-s3-uri", RECORDS_URI)
    assert second["sections"]["remote"]["prediction_records"]["downloaded_objects"] == 1


def test_the_records_of_runs_before_and_after_the_upgrade_are_both_read(aws, tmp_path):
    """GIVEN records of the look-back in both places: monitor/<model>/<run>/ (runs before the upgrade) and
    predictions/<model>/date=<day>/run=<id>/, and an older one past the look-back
    WHEN the records are downloaded
    THEN both of the look-back are read, each at its own relative path; the older one is not."""
    now = _now()
    old = f"{HISTORY_URI}run-1/{late_labels.RECORDS_FILE}"
    new = f"{RECORDS_URI}date={(now - dt.timedelta(days=1)):%Y-%m-%d}/run=exec-2/{late_labels.RECORDS_FILE}"
    gone = f"{RECORDS_URI}date=2020-01-01/run=exec-0/{late_labels.RECORDS_FILE}"
    for uri, days in ((old, 3), (new, 1), (gone, DELAY + 30)):
        aws.put(uri, b"x" * 10)
        aws.age(uri, now - dt.timedelta(days=days))

    summary = remote.download_records(s3=aws.s3, history_s3_uri=HISTORY_URI, records_s3_uri=RECORDS_URI,
                                      dest_dir=str(tmp_path / "r"), lookback_hours=records_lookback_hours(DELAY), now=now)

    assert summary["listed_objects"] == 3 and summary["downloaded_objects"] == 2
    found = sorted(os.path.relpath(p, tmp_path / "r") for p in late_labels.records_files(str(tmp_path / "r")))
    assert found == sorted([os.path.join("run-1", late_labels.RECORDS_FILE),
                            os.path.join(f"date={(now - dt.timedelta(days=1)):%Y-%m-%d}", "run=exec-2",
                                         late_labels.RECORDS_FILE)])


def _report(features: dict, **summary) -> dict:
    return {"model": "churn", "status": "ok", "generated_at": "2026-03-02T10:00:00+00:00",
            "window": {"end": "2026-03-02T09:00:00+00:00"}, "summary": {"records": 10, "monitor_healthy": 1, **summary},
            "checks": [{"check": "psi", "category": "data_drift", "feature": f, "value": 0.01, "threshold": 0.2,
                        "op": ">", "status": "ok"} for f in features],
            "sections": {"data_drift": {"features": features}}}


def test_the_results_keep_one_schema_when_a_feature_or_a_summary_value_is_added(tmp_path):
    """GIVEN a run over features {tenure} and a later one over {tenure, plan} with one more summary value
    WHEN both write their results
    THEN the files' columns and types are the same (a table over both reads each), the new feature being rows."""
    first, second = tmp_path / "a.parquet", tmp_path / "b.parquet"
    results_table.write(_report({"tenure": {"psi": 0.01, "status": "ok"}}), str(first), run="r1", model_package_version=7)
    results_table.write(_report({"tenure": {"psi": 0.01, "status": "ok"}, "plan": {"psi": 0.3, "status": "fail"}},
                                quality_drop=0.1), str(second), run="r2", model_package_version=None)
    assert pq.read_schema(first).remove_metadata().equals(pq.read_schema(second).remove_metadata())
    rows = pq.read_table(second).to_pandas()
    assert set(rows[rows["metric"] == "psi"]["feature"]) == {"tenure", "plan"}
    assert rows["window_end"].iloc[0].isoformat() == "2026-03-02T09:00:00+00:00"


@pytest.mark.parametrize("argv, message", [
    (["--tables-dir", "t"], "--tables-dir needs --run-id"),
    (["--tables-dir", "t", "--run-id", "a/b"], "--run-id 'a/b' must be one folder name"),
])
def test_tables_arguments_are_checked(spec, tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        monitor.main(from_s3_args(spec, tmp_path, *argv))
    assert exit_.value.code == 2 and message in capsys.readouterr().err


ARROW_TO_ATHENA = {"string": "string", "double": "double", "int64": "bigint"}


def _athena_type(field) -> str:
    return "timestamp" if str(field.type).startswith("timestamp") else ARROW_TO_ATHENA[str(field.type)]


def test_the_files_columns_are_the_ones_the_glue_tables_declare(tmp_path):
    """GIVEN the records (a multiclass model's: with its proba:<class> columns) and the results as the monitor writes them
    WHEN their Parquet schemas are read
    THEN every column the Glue tables declare is there, in that type (a table reads its files by column name)."""
    import pandas as pd

    from pipeline_code.core.contract import MONITOR_RESULTS_COLUMNS, PREDICTION_TABLE_COLUMNS
    from pipeline_code.monitoring.capture import INFERENCE_ID, INFERENCE_TIME, SCORE

    path = tmp_path / late_labels.RECORDS_FILE
    writer = late_labels.RecordWriter(str(path), late_labels.RecordsVersion("arn:x/3", 3, "d3", classes=("a", "b")))
    writer(pd.DataFrame({INFERENCE_ID: ["i"], INFERENCE_TIME: ["2026-03-02T10:00:00Z"], SCORE: [1.0],
                         "proba:a": [0.2], "proba:b": [0.8]}))
    assert "error" not in writer.close()
    results = tmp_path / results_table.RESULTS_FILE
    results_table.write(_report({"tenure": {"psi": 0.01}}), str(results), run="r", model_package_version=3)
    for file, declared in ((path, PREDICTION_TABLE_COLUMNS), (results, MONITOR_RESULTS_COLUMNS)):
        schema = pq.read_schema(file)
        assert {name: _athena_type(schema.field(name)) for name, _ in declared} == dict(declared), file
        # at most microseconds: INT64 TIMESTAMP(NANOS), pyarrow's default for pandas times, is not read by every engine
        # an analyst may point at the files (Spark refuses it; Athena's support is not documented)
        for name, kind in declared:
            if kind == "timestamp":
                assert schema.field(name).type.unit in ("ms", "us"), (file, name, schema.field(name).type)
