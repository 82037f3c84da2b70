"""The Glue curate job entry point, run end-to-end locally on generated CSV lakes."""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from pipeline_code.etl import glue_curate_job
from pipeline_code.etl.curate import QUARANTINE_REASON_COLUMN, BatchCounts
from pipeline_code.sample_data.generate import generate, generate_batch, write_raw
from tests.support import datasets as samples
from tests.support.spark_jobs import spark_jobs

pytestmark = pytest.mark.spark


def job_argv(root: Path, raw_path: str, **overrides: str) -> list:
    """Command-line arguments of the job, outputs under ``root``; overrides replace or add."""
    args = {
        "dataset": samples.declaration_file(root, samples.CUSTOMER_CHURN),
        "raw_path": raw_path,
        "curated_path": str(root / "curated"),
        "quarantine_path": str(root / "quarantine"),
        "summary_path": str(root / "summary.json"),
        **overrides,
    }
    return [token for name, value in args.items() for token in (f"--{name}", value)]


def read_curated(path) -> pd.DataFrame:
    return pd.read_parquet(path)


@pytest.fixture(scope="module")
def curated_january(spark, tmp_path_factory):
    """GIVEN 200 January records over three dates, landed on 2026-01-04 (raw/customer_churn) and curated by the job
    (curated/, summary.json): run once for the module; each test continues on a copy (``january``)."""
    root = tmp_path_factory.mktemp("january")
    frame = generate(samples.CUSTOMER_CHURN, 200, seed=1, start="2026-01-01", days=3)
    write_raw(frame, str(root / "raw"), samples.CUSTOMER_CHURN, "2026-01-04")
    assert glue_curate_job.main(job_argv(root, str(root / "raw" / "customer_churn"))) == 0
    return root, frame


@pytest.fixture
def january(curated_january, tmp_path) -> pd.DataFrame:
    """The curated January lake copied under ``tmp_path`` (raw, curated data, summary); its raw records."""
    root, frame = curated_january
    shutil.copytree(root, tmp_path, dirs_exist_ok=True)
    return frame.copy()


# --------------------------------------------------------------------------------------
# The happy path (shared fixture: one job run on a lake with bad rows and duplicates)
# --------------------------------------------------------------------------------------
def test_given_a_generated_lake_when_the_job_runs_then_it_succeeds_with_a_complete_summary(curated_churn):
    assert curated_churn["exit_code"] == 0
    summary = json.loads(Path(curated_churn["summary_path"]).read_text())
    batch = curated_churn["batch"]
    assert summary["status"] == "succeeded"
    assert summary["dataset"] == "customer_churn"
    assert summary["run_id"] == "run-1"
    assert summary["input_rows"] == 1200
    assert summary["quarantined_rows"] == len(batch.corruptions) == 24
    assert summary["duplicate_rows"] == len(batch.duplicates) == 12
    assert summary["curated_rows"] == 1200 - 24 - 12
    assert sum(summary["quarantine_reasons"].values()) == 24
    assert summary["quarantine_reasons"]["event_time: not a timestamp"] == (batch.corruptions["kind"] == "bad_timestamp").sum()
    assert summary["quarantine_ratio"] == pytest.approx(0.02)
    # Without a curate state every run reads every raw file, and says so
    assert summary["read"] == {"mode": "full", "reason": "no --state_path given: every run reads every raw file",
                               "files_read": 1, "files_skipped": 0, "bytes_read": summary["read"]["bytes_read"],
                               "bytes_skipped": 0}
    # One raw batch (one ingest_date= folder): its counts are the run's
    assert summary["batches"] == [{"batch": "ingest_date=2026-01-11", "input_rows": 1200, "curated_rows": 1200 - 24 - 12,
                                   "quarantined_rows": 24, "duplicate_rows": 12, "corrected_rows": 0, "quarantine_ratio": 0.02,
                                   "quarantine_reasons": summary["quarantine_reasons"]}]


def test_curated_parquet_is_partitioned_by_event_date_with_typed_columns(curated_churn):
    root = Path(curated_churn["curated_path"])
    partitions = sorted(p.name for p in root.iterdir() if p.is_dir())
    assert partitions == [f"event_date=2026-01-{d:02d}" for d in range(1, 11)]
    curated = read_curated(root)
    assert len(curated) == 1200 - 24 - 12
    assert str(curated["event_time"].dtype) == "datetime64[us, UTC]"  # TIMESTAMP_MICROS, UTC
    assert curated["tenure_months"].dtype == "int64"
    assert curated["customer_id"].is_unique
    dates = curated["event_time"].dt.strftime("%Y-%m-%d")
    assert (dates == curated["event_date"].astype(str)).all()


def test_quarantine_is_written_per_run_with_reasons_and_source_file(curated_churn):
    location = Path(curated_churn["quarantine_path"]) / "run_id=run-1"
    quarantine = pd.read_parquet(location)
    assert len(quarantine) == 24
    assert quarantine[QUARANTINE_REASON_COLUMN].str.len().gt(0).all()
    assert quarantine["_source_file"].str.endswith("ingest_date=2026-01-11/part-00000.csv").all()
    corrupted_ids = set(curated_churn["batch"].frame.loc[curated_churn["batch"].corruptions["row"], "customer_id"])
    assert set(quarantine["customer_id"]) == corrupted_ids


# --------------------------------------------------------------------------------------
# Partition overwrite, idempotency, thresholds and failure modes
# --------------------------------------------------------------------------------------
def test_dynamic_partition_overwrite_replaces_only_touched_dates_and_reruns_are_idempotent(january, tmp_path):
    # GIVEN January's 200 records curated from raw/ (the job's first run, shared), and March's 150 in raw_b/
    march = generate(samples.CUSTOMER_CHURN, 150, seed=2, start="2026-03-01", days=2)
    write_raw(march, str(tmp_path / "raw_b"), samples.CUSTOMER_CHURN, "2026-03-03")

    assert glue_curate_job.main(job_argv(tmp_path, str(tmp_path / "raw_b" / "customer_churn"))) == 0
    curated = read_curated(tmp_path / "curated")
    assert len(curated) == 350  # March did not wipe January
    assert glue_curate_job.main(job_argv(tmp_path, str(tmp_path / "raw" / "customer_churn"))) == 0
    assert len(read_curated(tmp_path / "curated")) == 350  # re-running January replaced, not appended


def test_a_late_record_for_a_date_whose_raw_files_expired_adds_to_its_curated_rows_not_replaces_them(january, tmp_path):
    # GIVEN January curated (the job's first run, shared) from raw files that then expire (the raw bucket's lifecycle
    # rule deletes them)
    raw = tmp_path / "raw" / "customer_churn"
    before = read_curated(tmp_path / "curated")
    shutil.rmtree(raw / "ingest_date=2026-01-04")
    # WHEN one late record for a January date lands, and the job runs over what raw holds now
    late = generate(samples.CUSTOMER_CHURN, 1, seed=9, start="2026-01-02", days=1)
    write_raw(late, str(tmp_path / "raw"), samples.CUSTOMER_CHURN, "2026-04-20")
    assert glue_curate_job.main(job_argv(tmp_path, str(raw))) == 0
    # THEN January keeps every record it had, plus the late one (it lost all but that one)
    after = read_curated(tmp_path / "curated")
    assert len(after) == len(before) + 1
    assert set(before["customer_id"]) | set(late["customer_id"]) == set(after["customer_id"])
    summary = json.loads((tmp_path / "summary.json").read_text())
    touched = before[before["event_date"].astype(str) == str(after[after["customer_id"].isin(late["customer_id"])]["event_date"].iat[0])]
    assert summary["kept_from_curated"] == len(touched) > 0
    # AND running again keeps it that way (idempotent)
    assert glue_curate_job.main(job_argv(tmp_path, str(raw))) == 0
    assert len(read_curated(tmp_path / "curated")) == len(after)
    # AND a record of that date re-sent bad (quarantined) does not displace its curated row: a bad copy never does
    resent = january[january["customer_id"] == touched["customer_id"].iat[0]].copy()
    resent["tenure_months"] = "not a number"
    write_raw(resent, str(tmp_path / "raw"), samples.CUSTOMER_CHURN, "2026-04-21")
    # (its batch is all bad: only a maximum of 1 lets the run publish)
    assert glue_curate_job.main(job_argv(tmp_path, str(raw), max_quarantine_ratio="1")) == 0
    final = read_curated(tmp_path / "curated")
    assert touched["customer_id"].iat[0] in set(final["customer_id"]) and len(final) == len(after)
    assert json.loads((tmp_path / "summary.json").read_text())["kept_from_curated"] == len(touched)
    # AND a later record of the same customer (its next month's snapshot) adds to the curated data, its earlier
    # record kept: a record is its identifier and event time
    customer = touched["customer_id"].iat[0]
    next_month = late.copy()
    next_month["customer_id"] = customer
    write_raw(next_month, str(tmp_path / "raw"), samples.CUSTOMER_CHURN, "2026-04-22")
    assert glue_curate_job.main(job_argv(tmp_path, str(raw), max_quarantine_ratio="1")) == 0
    rows = read_curated(tmp_path / "curated")
    assert (rows["customer_id"] == customer).sum() == 2 and len(rows) == len(after) + 1


def test_a_correction_landed_later_replaces_the_record_whatever_its_values_sort_like(spark, tmp_path):
    # GIVEN a record landed on April 1, then re-sent on April 10 with its label and a charge corrected
    first = generate(samples.CUSTOMER_CHURN, 3, seed=4, start="2026-03-20", days=2)
    first["churned"], first["monthly_charges"] = 0, 99.5
    corrected = first.iloc[[0]].copy()
    corrected["churned"], corrected["monthly_charges"] = 1, 100.5  # "100.5" sorts before "99.5" as text
    write_raw(first, str(tmp_path / "raw"), samples.CUSTOMER_CHURN, "2026-04-01")
    write_raw(corrected, str(tmp_path / "raw"), samples.CUSTOMER_CHURN, "2026-04-10")
    # WHEN the job runs
    assert glue_curate_job.main(job_argv(tmp_path, str(tmp_path / "raw" / "customer_churn"))) == 0
    # THEN the later landing wins: the corrected values are curated, the first copy counted as a duplicate
    curated = read_curated(tmp_path / "curated").set_index("customer_id")
    record = first["customer_id"].iat[0]
    assert (curated.loc[record, "churned"], curated.loc[record, "monthly_charges"]) == (1, 100.5)
    assert len(curated) == 3 and json.loads((tmp_path / "summary.json").read_text())["duplicate_rows"] == 1


def test_a_late_record_for_dates_curated_under_an_older_declaration_keeps_their_rows_in_this_runs_types(
        spark, january, tmp_path, caplog):
    # GIVEN January curated (the job's first run, shared), one date's files then as an older declaration wrote them
    # (tenure_months a string, support_calls_90d not declared yet), and the raw files expired
    from pyspark.sql import functions as F

    caplog.set_level(logging.INFO, logger="pipeline_code")
    raw = tmp_path / "raw" / "customer_churn"
    before = read_curated(tmp_path / "curated").set_index("customer_id")
    older_date = tmp_path / "curated" / "event_date=2026-01-01"
    (spark.read.parquet(str(older_date)).withColumn("tenure_months", F.col("tenure_months").cast("string"))
     .drop("support_calls_90d").write.parquet(str(tmp_path / "older")))
    shutil.rmtree(older_date)
    shutil.move(str(tmp_path / "older"), str(older_date))
    shutil.rmtree(raw / "ingest_date=2026-01-04")
    # WHEN late records for that date and the next land, and the job runs over what raw holds now
    late = generate(samples.CUSTOMER_CHURN, 6, seed=9, start="2026-01-01", days=2)
    assert set(late["event_time"].astype(str).str[:10]) == {"2026-01-01", "2026-01-02"}
    write_raw(late, str(tmp_path / "raw"), samples.CUSTOMER_CHURN, "2026-04-20")
    assert glue_curate_job.main(job_argv(tmp_path, str(raw))) == 0
    # THEN both dates keep every record they had, in this run's types (the dates' schemas did not merge: each was
    # read apart), the column the older files lacked null
    after = read_curated(tmp_path / "curated").set_index("customer_id")
    kept = before[before["event_date"].astype(str).isin(["2026-01-01", "2026-01-02"])]
    assert set(after.index) == set(before.index) | set(late["customer_id"])
    assert after["tenure_months"].dtype == "int64"
    assert (after.loc[kept.index, "tenure_months"] == kept["tenure_months"]).all()
    older_rows = kept[kept["event_date"].astype(str) == "2026-01-01"].index
    assert after.loc[older_rows, "support_calls_90d"].isna().all() and len(older_rows) > 0
    assert (after.loc[kept.index.difference(older_rows), "support_calls_90d"]
            == kept.loc[kept.index.difference(older_rows), "support_calls_90d"]).all()
    assert json.loads((tmp_path / "summary.json").read_text())["kept_from_curated"] == len(kept)
    assert any("reading the 2 dates one by one" in r.getMessage() and "CANNOT_MERGE_SCHEMAS" in r.getMessage()
               for r in caplog.records)


# --------------------------------------------------------------------------------------
# Reading back the curated dates a run touches
# --------------------------------------------------------------------------------------
def test_touched_dates_curated_already_are_read_together_and_the_others_skipped(spark, tmp_path, caplog):
    # GIVEN two curated dates, the earlier written before column w was declared, and an untouched date whose files
    # type v differently (reading it would make the dates' schemas unmergeable)
    caplog.set_level(logging.INFO, logger="pipeline_code")
    root = tmp_path / "curated"
    spark.createDataFrame([(1, 5)], "id long, v int").write.parquet(str(root / "event_date=2026-01-01"))
    spark.createDataFrame([(2, 6, 1.5)], "id long, v int, w double").write.parquet(str(root / "event_date=2026-01-02"))
    spark.createDataFrame([(3, "x")], "id long, v string").write.parquet(str(root / "event_date=2026-01-05"))
    schema = spark.createDataFrame([], "id long, v int, w double, event_date date").schema
    # WHEN a run touching them and a date not curated yet reads them back
    rows = glue_curate_job._read_curated_dates(spark, str(root), [date(2026, 1, 3), date(2026, 1, 2), date(2026, 1, 1)],
                                               schema)
    # THEN it gets the touched dates' rows in the run's schema, in one read (no date read apart)
    assert sorted(tuple(row) for row in rows.collect()) == [(1, 5, None, date(2026, 1, 1)), (2, 6, 1.5, date(2026, 1, 2))]
    assert rows.schema.simpleString() == schema.simpleString()
    assert not any("one by one" in r.getMessage() for r in caplog.records)
    # AND nothing when none of the touched dates is curated yet, or nothing is
    assert glue_curate_job._read_curated_dates(spark, str(root), [date(2026, 1, 3)], schema) is None
    assert glue_curate_job._read_curated_dates(spark, str(tmp_path / "none"), [date(2026, 1, 1)], schema) is None


def test_touched_dates_whose_files_type_a_column_differently_are_read_apart_and_cast(spark, tmp_path, caplog):
    # GIVEN a date curated when v was an integer and w not declared, and a date curated since (v a string, w added)
    caplog.set_level(logging.INFO, logger="pipeline_code")
    root = tmp_path / "curated"
    spark.createDataFrame([(1, 5)], "id long, v int").write.parquet(str(root / "event_date=2026-01-01"))
    spark.createDataFrame([(2, "x", 1.5)], "id long, v string, w double").write.parquet(str(root / "event_date=2026-01-02"))
    schema = spark.createDataFrame([], "id long, v string, w double, event_date date").schema
    # WHEN a run touching both (and a date not curated yet) reads them back
    rows = glue_curate_job._read_curated_dates(spark, str(root), [date(2026, 1, 1), date(2026, 1, 2), date(2026, 1, 9)],
                                               schema)
    # THEN Spark's merge of the two schemas failed, each date was read with its own files' schema, and cast
    assert sorted(tuple(row) for row in rows.collect()) == [(1, "5", None, date(2026, 1, 1)), (2, "x", 1.5, date(2026, 1, 2))]
    assert rows.schema.simpleString() == schema.simpleString()
    assert any("CANNOT_MERGE_SCHEMAS" in r.getMessage() and "reading the 2 dates one by one" in r.getMessage()
               for r in caplog.records)


def test_quarantine_ratio_above_threshold_fails_after_writing_the_quarantine(spark, tmp_path, capsys):
    batch = generate_batch(samples.CUSTOMER_CHURN, 200, seed=3, bad_record_rate=0.1)
    write_raw(batch.frame, str(tmp_path / "raw"), samples.CUSTOMER_CHURN, "2026-04-01")
    argv = job_argv(tmp_path, str(tmp_path / "raw" / "customer_churn"), max_quarantine_ratio="0.05", run_id="bad")

    assert glue_curate_job.main(argv) == 1
    error = capsys.readouterr().err
    assert ("ERROR: quarantine ratio exceeds max_quarantine_ratio 0.05 in raw batch ingest_date=2026-04-01 (20/200 "
            "quarantined: 0.1000); curated data NOT written; fix or remove that batch's raw files under ") in error
    assert len(pd.read_parquet(tmp_path / "quarantine" / "run_id=bad")) == 20  # nothing lost
    assert not (tmp_path / "curated").exists()
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["quarantined_rows"] == 20


def test_an_all_bad_new_batch_fails_the_run_naming_it_even_under_the_whole_runs_ratio(january, tmp_path, capsys):
    # GIVEN January's 200 good records curated (the job's first run, shared; ingest_date=2026-01-04), then a new
    # exporter's first batch, every row bad (8 rows, ingest_date=2026-01-05), and 2 bad rows in a file dropped beside
    # the folders: 10 bad of 210 is under max_quarantine_ratio 0.05 for the run as a whole
    raw = tmp_path / "raw" / "customer_churn"
    before = read_curated(tmp_path / "curated")
    new = generate_batch(samples.CUSTOMER_CHURN, 10, seed=12, start="2026-01-02", days=2).frame  # as raw text
    new["tenure_months"] = "twelve"
    write_raw(new.iloc[:8], str(tmp_path / "raw"), samples.CUSTOMER_CHURN, "2026-01-05")
    new.iloc[8:].to_csv(raw / "legacy-export.csv", index=False)
    # WHEN the job runs over raw
    assert glue_curate_job.main(job_argv(tmp_path, str(raw), run_id="new", max_quarantine_ratio="0.05")) == 1
    # THEN it fails naming each bad batch, its counts and ratio, what to do, and the whole run's ratio
    quarantine = tmp_path / "quarantine" / "run_id=new"
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("ERROR: ")]
    assert errors == [
        "ERROR: quarantine ratio exceeds max_quarantine_ratio 0.05 in 2 raw batches: files outside any ingest_date= "
        "folder (2/2 quarantined: 1.0000), ingest_date=2026-01-05 (8/8 quarantined: 1.0000); curated data NOT "
        f"written; fix or remove those batches' raw files under {raw} and run the job again, or re-send the bad "
        "records corrected in a later batch (that mends a row whose bad value is not its record identifier or event "
        "time: such a row can only be fixed in its file) - the quarantine keeps a copy of the bad rows, each with its "
        f"reason and source file: {quarantine}; the whole run's ratio: 0.0476 "
        "(10/210); their top reasons: tenure_months: not an integer x10"]
    # AND the bad rows are kept, nothing of the run published, and the summary has every batch's counts
    assert len(pd.read_parquet(quarantine)) == 10
    assert read_curated(tmp_path / "curated").equals(before)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["quarantine_ratio"] == pytest.approx(10 / 210, abs=1e-6)
    assert [(b["batch"], b["input_rows"], b["quarantined_rows"], b["quarantine_ratio"]) for b in summary["batches"]] == [
        (None, 2, 2, 1.0), ("ingest_date=2026-01-04", 200, 0, 0.0), ("ingest_date=2026-01-05", 8, 8, 1.0)]


def test_a_bad_batch_whose_records_are_re_sent_corrected_no_longer_blocks_the_runs(january, tmp_path, capsys):
    # GIVEN January curated, then a day's batch of 100 records whose exporter broke 10 (10 % > max 5 %): the run fails
    churn, raw = samples.CUSTOMER_CHURN, tmp_path / "raw" / "customer_churn"
    day = generate_batch(churn, 100, seed=22, start="2026-01-04", days=1, bad_record_rate=0.0).frame
    broken = day.astype(object)
    broken.loc[broken.index[:10], "tenure_months"] = "twelve"
    write_raw(broken, str(tmp_path / "raw"), churn, "2026-01-05")
    assert glue_curate_job.main(job_argv(tmp_path, str(raw), run_id="broken")) == 1
    # WHEN the exporter, fixed, re-sends the 10 records in the next day's batch (a correction: same records, valid)
    write_raw(day.iloc[:10], str(tmp_path / "raw"), churn, "2026-01-06")
    capsys.readouterr()
    # THEN the next run succeeds: the old batch's bad rows are counted as corrected, not outstanding
    assert glue_curate_job.main(job_argv(tmp_path, str(raw), run_id="mended")) == 0, capsys.readouterr().err
    summary = json.loads((tmp_path / "summary.json").read_text())
    batches = {b["batch"]: b for b in summary["batches"]}
    assert [(b["input_rows"], b["quarantined_rows"], b["corrected_rows"]) for b in batches.values()] == [
        (200, 0, 0), (100, 10, 10), (10, 0, 0)]
    # AND the curated data holds each re-sent record once, with its corrected value
    curated = read_curated(tmp_path / "curated")
    resent = curated[curated["customer_id"].isin(day["customer_id"].iloc[:10])]
    assert len(resent) == 10 and (resent["tenure_months"].astype(str) != "twelve").all()


def test_a_re_sent_record_still_bad_corrects_nothing(january, tmp_path):
    """Only a valid later landing mends a bad row: the same record re-sent as bad leaves both copies outstanding."""
    churn, raw = samples.CUSTOMER_CHURN, tmp_path / "raw" / "customer_churn"
    day = generate_batch(churn, 20, seed=23, start="2026-01-04", days=1, bad_record_rate=0.0).frame.astype(object)
    day.loc[day.index[:2], "tenure_months"] = "twelve"
    write_raw(day, str(tmp_path / "raw"), churn, "2026-01-05")
    write_raw(day.iloc[:2], str(tmp_path / "raw"), churn, "2026-01-06")
    assert glue_curate_job.main(job_argv(tmp_path, str(raw), run_id="still-bad")) == 1
    batches = {b["batch"]: b for b in json.loads((tmp_path / "summary.json").read_text())["batches"]}
    assert [(b["quarantined_rows"], b["corrected_rows"]) for b in batches.values()] == [(0, 0), (2, 0), (2, 0)]


def test_raw_files_the_reader_would_skip_fail_the_run_naming_them_before_anything_is_written(january, tmp_path, capsys):
    # GIVEN January curated, then a day's batch landed by an exporter that compresses, and one that writes Parquet
    raw = tmp_path / "raw" / "customer_churn"
    day = raw / "ingest_date=2026-01-05"
    day.mkdir()
    generate(samples.CUSTOMER_CHURN, 20, seed=31, start="2026-01-04", days=1, as_text=True).to_csv(
        day / "export.csv.gz", index=False, compression="gzip")
    generate(samples.CUSTOMER_CHURN, 20, seed=32, start="2026-01-04", days=1).to_parquet(day / "export.parquet")
    before = read_curated(tmp_path / "curated")
    # WHEN the job runs
    assert glue_curate_job.main(job_argv(tmp_path, str(raw), run_id="skipped")) == 1
    # THEN it fails naming each file it would have skipped, and publishes nothing
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("ERROR: ")]
    assert errors == [
        f"ERROR: raw_path {str(raw)!r} holds 2 file(s) the job does not read: file:{day}/export.csv.gz, "
        f"file:{day}/export.parquet; only uncompressed *.csv files (lower-case extension) are read, so their records "
        "would be left out without a word - convert them to CSV (an exporter's compression or format setting) or move "
        "them out of raw_path, and run again"]
    assert read_curated(tmp_path / "curated").equals(before)


def test_standard_csv_quoting_is_read_as_exporters_write_it(spark, tmp_path):
    """GIVEN an export as RFC 4180 writes it (pandas, Excel): a doubled quote inside a quoted field, a quoted comma, a
    quoted line break, CRLF line endings, and one row with a field too many WHEN curated THEN each value is what the
    export meant, the record with a line break is one record, and only the short-of-fields row is quarantined."""
    header = "customer_id,event_time,tenure_months,monthly_charges,total_charges,contract_type,payment_method," \
             "support_calls_90d,region,gender,churned"
    rest = "2026-01-01T00:00:00Z,12,50.0,600.0,month-to-month,,1,north,,0"
    text = "\r\n".join([header, f'"CUS ""A""",{rest}', f'"CUS, B",{rest}', f'"CUS\nC",{rest}', f"CUS-D,{rest},extra", ""])
    raw = tmp_path / "raw" / "customer_churn" / "ingest_date=2026-01-02"
    raw.mkdir(parents=True)
    (raw / "export.csv").write_bytes(text.encode())
    assert glue_curate_job.main(job_argv(tmp_path, str(raw.parent), max_quarantine_ratio="1")) == 0
    curated = read_curated(tmp_path / "curated")
    assert set(curated["customer_id"]) == {'CUS "A"', "CUS, B", "CUS\nC"} and len(curated) == 3
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (summary["input_rows"], summary["quarantined_rows"]) == (4, 1)
    assert list(summary["quarantine_reasons"]) == ["_corrupt_record: malformed CSV row (wrong number of fields)"]


def test_an_unclosed_quote_joins_the_lines_after_it_into_one_quarantined_row_that_says_so(spark, tmp_path):
    """GIVEN ten records, the fourth opening a quote it never closes WHEN curated THEN the lines up to the end of the
    file are one malformed row (the reader takes them as one quoted field), quarantined with a reason that says how
    many lines it spans and why: the records in it are not counted apart."""
    header = "customer_id,event_time,tenure_months,monthly_charges,total_charges,contract_type,payment_method," \
             "support_calls_90d,region,gender,churned"
    rest = "2026-01-01T00:00:00Z,12,50.0,600.0,month-to-month,,1,north,,0"
    lines = [header, *(f"CUS-{i},{rest}" for i in range(10))]
    lines[4] = f'"CUS-3,{rest}'
    raw = tmp_path / "raw" / "customer_churn" / "ingest_date=2026-01-02"
    raw.mkdir(parents=True)
    (raw / "export.csv").write_text("\n".join(lines) + "\n")
    assert glue_curate_job.main(job_argv(tmp_path, str(raw.parent), max_quarantine_ratio="1")) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (summary["input_rows"], summary["curated_rows"], summary["quarantined_rows"]) == (4, 3, 1)
    (reason,) = pd.read_parquet(tmp_path / "quarantine")["_quarantine_reason"]
    assert reason.endswith(" (it spans 7 lines: a quote opened and never closed joins the lines after it, up to the next "
                           "quote, into this one row; those records are in it, not counted apart)")


def test_text_in_another_encoding_is_quarantined_not_curated_mangled(spark, tmp_path):
    """GIVEN an export written in Windows-1252 (an identifier with an "é") WHEN curated THEN its row is quarantined
    saying the file is not UTF-8, never curated with U+FFFD in place of the letter; a UTF-8 row beside it is curated."""
    header = "customer_id,event_time,tenure_months,monthly_charges,total_charges,contract_type,payment_method," \
             "support_calls_90d,region,gender,churned"
    rest = "2026-01-01T00:00:00Z,12,50.0,600.0,month-to-month,,1,north,,0"
    raw = tmp_path / "raw" / "customer_churn" / "ingest_date=2026-01-02"
    raw.mkdir(parents=True)
    (raw / "latin.csv").write_bytes(f"{header}\nCUS-René,{rest}\n".encode("cp1252"))
    (raw / "utf8.csv").write_bytes(f"{header}\nCUS-Zoë,{rest}\n".encode("utf-8"))
    assert glue_curate_job.main(job_argv(tmp_path, str(raw.parent), max_quarantine_ratio="1")) == 0
    assert read_curated(tmp_path / "curated")["customer_id"].tolist() == ["CUS-Zoë"]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["quarantine_reasons"] == {"customer_id: not UTF-8 text (export the file as UTF-8)": 1}


def test_a_file_with_a_column_fewer_fails_the_run_naming_it_not_with_a_traceback(spark, tmp_path, capsys):
    """GIVEN a day's export with every declared column and a smaller one from an export version that dropped a nullable
    column WHEN the job runs THEN it fails with one line naming the file (Spark's header-length error, which escaped
    as a Java traceback), and publishes nothing."""
    full = generate(samples.CUSTOMER_CHURN, 40, seed=41, start="2026-01-01", days=1, as_text=True)
    raw = tmp_path / "raw" / "customer_churn" / "ingest_date=2026-01-02"
    raw.mkdir(parents=True)
    full.to_csv(raw / "b-full.csv", index=False)
    full.iloc[:2].drop(columns=["gender"]).to_csv(raw / "a-short.csv", index=False)
    assert glue_curate_job.main(job_argv(tmp_path, str(raw.parent))) == 1
    (error,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("ERROR: ")]
    assert error.startswith("ERROR: a raw CSV file's header differs from the first file's (schema change?): ")
    assert "a-short.csv" in error or "b-full.csv" in error
    assert not (tmp_path / "curated").exists()


def test_what_spark_hides_is_not_taken_for_a_skipped_file(spark, tmp_path):
    """Spark's own markers and temporary files, and S3 console folder markers, are no data; a CSV in upper case is."""
    for name in ("ingest_date=2026-01-01/a.csv", "_SUCCESS", ".staging/part.json", "_temporary/0/part.json",
                 "ingest_date=2026-01-01/.a.csv.crc", "exports_$folder$", "ingest_date=2026-01-02/B.CSV", "notes"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("customer_id\n")
    assert glue_curate_job.unread_files(spark, str(tmp_path)) == [
        f"file:{tmp_path}/ingest_date=2026-01-02/B.CSV", f"file:{tmp_path}/notes"]
    assert glue_curate_job.unread_files(spark, str(tmp_path / "absent")) == []


def test_a_backlog_of_bad_batches_names_the_latest_five_and_counts_the_earlier_ones():
    """GIVEN seven all-bad daily batches (a week of a broken exporter) WHEN the failure is told THEN the notice names the
    five latest and says how many earlier ones there are; their reasons all count."""
    over = [BatchCounts(f"ingest_date=2026-01-0{day}", 4, 0, 4, 0, {"tenure_months: not an integer": 4}) for day in range(1, 8)]
    run = SimpleNamespace(quarantine_ratio=28 / 228, quarantined_rows=28, input_rows=228)
    message = glue_curate_job._over_max_error(run, over, 0.05, "s3://lake/raw/churn", "s3://lake/quarantine/run_id=r")
    assert message.startswith(
        "quarantine ratio exceeds max_quarantine_ratio 0.05 in 7 raw batches: " + ", ".join(
            f"ingest_date=2026-01-0{day} (4/4 quarantined: 1.0000)" for day in range(3, 8))
        + " and 2 earlier (each batch's counts are in the run summary); curated data NOT written; fix or remove those "
        "batches' raw files under s3://lake/raw/churn and run the job again")
    assert message.endswith("the whole run's ratio: 0.1228 (28/228); their top reasons: tenure_months: not an integer x28")


def test_a_failing_batch_partly_corrected_since_is_judged_on_what_is_still_outstanding():
    """10 of 100 rows bad, 4 of them re-sent valid later: 6 % outstanding is over 5 %, and the notice says so."""
    partly = BatchCounts("ingest_date=2026-01-05", 100, 90, 10, 0, {"tenure_months: not an integer": 10}, corrected_rows=4)
    assert partly.outstanding_ratio == pytest.approx(0.06) and partly.quarantine_ratio == pytest.approx(0.10)
    run = SimpleNamespace(quarantine_ratio=10 / 300, quarantined_rows=10, input_rows=300)
    message = glue_curate_job._over_max_error(run, [partly], 0.05, "s3://lake/raw/churn", "s3://lake/quarantine/run_id=r")
    assert message.startswith("quarantine ratio exceeds max_quarantine_ratio 0.05 in raw batch ingest_date=2026-01-05 "
                              "(10/100 quarantined, 4 corrected since: 0.0600); curated data NOT written")


def test_a_run_whose_every_batch_is_under_the_maximum_succeeds_listing_each_batchs_counts_in_three_spark_jobs(
        spark, tmp_path):
    # GIVEN a first run's raw data: two ingest_date= batches and a file under no such folder, each with bad rows at
    # most max_quarantine_ratio of its own (1 of 20 is 0.05: not above it), and a record re-sent in the later batch
    churn = samples.CUSTOMER_CHURN
    first = generate_batch(churn, 40, seed=13, start="2026-02-01", days=2, bad_record_rate=0.025).frame
    later = generate_batch(churn, 30, seed=14, start="2026-02-02", days=1, bad_record_rate=0.0).frame
    later = pd.concat([later, first.iloc[[0]]])  # a valid record of the first batch, re-sent: this copy wins
    loose = generate_batch(churn, 20, seed=15, start="2026-02-02", days=1, bad_record_rate=0.05).frame
    raw = tmp_path / "raw" / "customer_churn"
    write_raw(first, str(tmp_path / "raw"), churn, "2026-02-03")
    write_raw(later, str(tmp_path / "raw"), churn, "2026-02-04")
    loose.to_csv(raw / "loose.csv", index=False)
    # WHEN the job runs (its Spark jobs counted: each is a scheduling round in Glue, issue #16)
    with spark_jobs(spark, "per-batch-first-run") as jobs:
        assert glue_curate_job.main(job_argv(tmp_path, str(raw), max_quarantine_ratio="0.05")) == 0
    # THEN it succeeds, its summary giving each batch's counts (the unnamed batch first), which add up to the run's
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "succeeded"
    assert summary["batches"] == [
        {"batch": None, "input_rows": 20, "curated_rows": 19, "quarantined_rows": 1, "duplicate_rows": 0,
         "corrected_rows": 0, "quarantine_ratio": 0.05, "quarantine_reasons": summary["batches"][0]["quarantine_reasons"]},
        {"batch": "ingest_date=2026-02-03", "input_rows": 40, "curated_rows": 38, "quarantined_rows": 1,
         "duplicate_rows": 1, "corrected_rows": 0, "quarantine_ratio": 0.025, "quarantine_reasons": summary["batches"][1]["quarantine_reasons"]},
        {"batch": "ingest_date=2026-02-04", "input_rows": 31, "curated_rows": 31, "quarantined_rows": 0,
         "duplicate_rows": 0, "corrected_rows": 0, "quarantine_ratio": 0.0, "quarantine_reasons": {}},
    ]
    assert [sum(b["quarantine_reasons"].values()) for b in summary["batches"]] == [1, 1, 0]
    for key in ("input_rows", "curated_rows", "quarantined_rows", "duplicate_rows"):
        assert sum(b[key] for b in summary["batches"]) == summary[key]
    assert summary["quarantine_ratio"] == pytest.approx(2 / 91, abs=1e-6)
    # AND judging each batch took no Spark job of its own: counts, quarantine, curated write (the header is read in
    # the driver: first_lines)
    assert len(jobs) == 3


@pytest.mark.parametrize("content", [
    b"\xef\xbb\xbfa,b\r\n1,2\r\n",  # a byte order mark, CRLF
    b"a,b\r1,2\r3,4",  # CR only, no final line break
    b'"a\nx",b\n1,2\n',  # a header cell wrapped over two lines
    b"",  # empty
    b"\xef\xbb\xbf",  # a byte order mark only
    b"a\n\xef\xbb\xbfb\n",  # a byte order mark not at the start is kept
    b"\n\n\na\n",  # blank lines first
    b"a\xe9,b\xff\xfe,\xed\xa0\x80c,\xf0\x9f\x98\x80\n1",  # bytes that are not UTF-8 (Windows-1252, a surrogate)
    b"".join(b"line %d\n" % i for i in range(100)),  # more lines than asked for
], ids=["bom-crlf", "cr", "wrapped", "empty", "bom-only", "bom-later", "blank-lines", "not-utf8", "many"])
def test_a_raw_files_first_lines_are_read_in_the_driver_as_sparks_text_reader_gives_them(spark, tmp_path, content):
    # The header of a full read is read without a Spark job (issue #16): the same lines Spark's text reader gives
    path = tmp_path / "part-00000.csv"
    path.write_bytes(content)
    for limit in (1, 3, glue_curate_job.HEADER_LINES):
        expected = [row[0] for row in spark.read.text(str(path)).limit(limit).collect()]
        assert glue_curate_job.first_lines(spark, str(path), limit) == expected


def test_a_raw_files_batch_is_its_innermost_ingest_date_folder_and_none_outside_one(spark):
    paths = [
        "s3://raw-bucket/customer_churn/ingest_date=2026-01-04/part-00000.csv",
        "file:///lake/raw/customer_churn/ingest_date=2026-01-04/hour=03/part-00001.csv",  # a folder below it
        "s3://raw-bucket/customer_churn/ingest_date=2026-01-01/ingest_date=2026-01-05/x.csv",  # the innermost
        "s3://raw-bucket/customer_churn/export.csv",  # no such folder
        "s3://raw-bucket/customer_churn/ingest_date=/x.csv",  # an empty value names no batch
        "s3://raw-bucket/customer_churn/not_ingest_date=2026-01-04/x.csv",
        "s3://raw-bucket/customer_churn/ingest_date=2026-01-06.csv",  # a file, not a folder
    ]
    frame = spark.createDataFrame([(p,) for p in paths], f"{glue_curate_job.SOURCE_FILE_COLUMN} string")
    batches = [row[0] for row in frame.select(glue_curate_job.ingest_batch()).collect()]
    assert batches == ["ingest_date=2026-01-04", "ingest_date=2026-01-04", "ingest_date=2026-01-05",
                       None, None, None, None]


def test_dates_where_timestamps_are_declared_fail_with_the_forms_a_timestamp_takes(spark, tmp_path, capsys):
    # GIVEN an export whose event times are dates alone
    frame = generate(samples.CUSTOMER_CHURN, 20, seed=4)
    frame["event_time"] = "2026-03-15"
    write_raw(frame, str(tmp_path / "raw"), samples.CUSTOMER_CHURN, "2026-04-01")
    # WHEN the job curates it THEN it fails, saying what a timestamp must look like
    assert glue_curate_job.main(job_argv(tmp_path, str(tmp_path / "raw" / "customer_churn"), run_id="d")) == 1
    assert capsys.readouterr().err.rstrip().endswith(
        "top reasons: event_time: not a timestamp x20 (a timestamp is yyyy-MM-ddTHH:mm:ss[.fraction][Z|+HH:MM] or "
        "yyyy-MM-dd HH:mm:ss (UTC without an offset); a date alone or another layout (03/15/2025 14:22) is not one: "
        "export full ISO timestamps, or declare the column a string)")


def test_dates_in_another_layout_fail_with_the_form_a_date_takes(spark, tmp_path, capsys):
    # GIVEN an export whose date column is written day/month/year
    frame = generate(samples.LICENCES, 20, seed=4, as_text=True)
    frame["licence_issued"] = "12/04/2019"
    write_raw(frame, str(tmp_path / "raw"), samples.LICENCES, "2026-04-01")
    # WHEN the job curates it THEN it fails, saying what a date must look like
    argv = job_argv(tmp_path, str(tmp_path / "raw" / "licences"), run_id="d",
                    dataset=samples.declaration_file(tmp_path, samples.LICENCES))
    assert glue_curate_job.main(argv) == 1
    assert capsys.readouterr().err.rstrip().endswith(
        "top reasons: licence_issued: not a date x20 (a date is yyyy-MM-dd (2019-04-12), a real day; another layout "
        "(12/04/2019, 2019-4-12) or a date with a time is not one: export dates as yyyy-MM-dd, declare a column of "
        "dates with times a timestamp, or declare the column a string)")


def test_local_times_exported_without_their_offset_fail_saying_what_a_future_dated_time_is(spark, tmp_path, capsys):
    # GIVEN an export of local times written without their offset, three hours ahead of UTC (read as UTC: ahead of the
    # run's start)
    frame = generate(samples.CUSTOMER_CHURN, 20, seed=4)
    ahead = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=3)
    frame["event_time"] = ahead.strftime("%Y-%m-%d %H:%M:%S")
    write_raw(frame, str(tmp_path / "raw"), samples.CUSTOMER_CHURN, ahead.date().isoformat())
    # WHEN the job curates it THEN it fails, saying what such a time is, what to export, and that a re-send does not
    # mend the batch (the event time is part of the record's identity)
    assert glue_curate_job.main(job_argv(tmp_path, str(tmp_path / "raw" / "customer_churn"), run_id="f")) == 1
    assert capsys.readouterr().err.rstrip().endswith(
        "top reasons: event_time: more than 300 s after the run started (future-dated) x20 (an event time ahead of the "
        "run: a typo'd year, or a local time exported without its offset and read as UTC - export the offset, "
        "e.g. 2026-03-15T14:22:00+02:00; a re-send with the right time is curated, but the future-dated row counts "
        "toward its batch until its raw file is fixed or removed: docs/environment.md, Future-dated records)")


def test_malformed_csv_rows_are_quarantined_not_padded_or_truncated(spark, tmp_path):
    frame = generate(samples.CUSTOMER_CHURN, 20, seed=4, days=1)  # one event date: one curated partition to write
    path = write_raw(frame, str(tmp_path / "raw"), samples.CUSTOMER_CHURN, "2026-04-01")
    lines = Path(path).read_text().splitlines()
    lines[3] += ",EXTRA"  # one field too many
    lines[5] = ",".join(lines[5].split(",")[:4])  # fields missing
    Path(path).write_text("\n".join(lines) + "\n")

    assert glue_curate_job.main(job_argv(tmp_path, str(tmp_path / "raw" / "customer_churn"), run_id="m", max_quarantine_ratio="0.2")) == 0
    quarantine = pd.read_parquet(tmp_path / "quarantine" / "run_id=m")
    assert len(quarantine) == 2
    assert quarantine[QUARANTINE_REASON_COLUMN].str.contains("malformed CSV row").all()
    assert json.loads((tmp_path / "summary.json").read_text())["curated_rows"] == 18


def test_a_summary_prefix_keeps_one_summary_per_run(spark, tmp_path):
    """GIVEN the summary path the app passes (a prefix ending in /) WHEN two runs curate
    THEN each run's summary is its own object, never one object named by the prefix."""
    # One event date: the second run re-reads the curated dates it rewrites, which the summaries do not depend on;
    # one date keeps that read small.
    frame = generate(samples.CUSTOMER_CHURN, 20, seed=4, days=1)
    write_raw(frame, str(tmp_path / "raw"), samples.CUSTOMER_CHURN, "2026-04-01")
    prefix = str(tmp_path / "etl-runs") + "/"
    for run in ("r1", "r2"):
        argv = job_argv(tmp_path, str(tmp_path / "raw" / "customer_churn"), run_id=run, summary_path=prefix)
        assert glue_curate_job.main(argv) == 0
    written = sorted(p.relative_to(tmp_path / "etl-runs").as_posix() for p in (tmp_path / "etl-runs").rglob("*.json"))
    assert written == ["run_id=r1/summary.json", "run_id=r2/summary.json"]
    assert json.loads((tmp_path / "etl-runs" / "run_id=r2" / "summary.json").read_text())["run_id"] == "r2"


def test_a_schema_change_in_the_header_fails_with_the_column_named(spark, tmp_path, capsys):
    frame = generate(samples.CUSTOMER_CHURN, 10, seed=5).rename(columns={"region": "sales_region"})
    directory = tmp_path / "raw" / "customer_churn" / "ingest_date=2026-04-01"
    directory.mkdir(parents=True)
    frame.to_csv(directory / "part-00000.csv", index=False)

    assert glue_curate_job.main(job_argv(tmp_path, str(tmp_path / "raw" / "customer_churn"))) == 1
    error = capsys.readouterr().err
    # The renamed column is named twice: as the declared column missing, and as a cell read as no column.
    assert "lacks declared column(s) 'region': no header cell gives them" in error
    assert "the cells read as no column: ['sales_region']" in error


def test_a_later_file_with_a_different_header_fails_the_run(spark, tmp_path, capsys):
    raw = tmp_path / "raw"
    write_raw(generate(samples.CUSTOMER_CHURN, 10, seed=6), str(raw), samples.CUSTOMER_CHURN, "2026-04-01")
    reordered = generate(samples.CUSTOMER_CHURN, 10, seed=7)
    columns = list(reordered.columns)
    columns[2], columns[3] = columns[3], columns[2]
    later = raw / "customer_churn" / "ingest_date=2026-04-02"
    later.mkdir(parents=True)
    reordered[columns].to_csv(later / "part-00000.csv", index=False)

    assert glue_curate_job.main(job_argv(tmp_path, str(raw / "customer_churn"))) == 1
    assert "header differs from the first file's" in capsys.readouterr().err


# --------------------------------------------------------------------------------------
# A run stopped while publishing (mid-commit): the next run recovers every row, nothing by hand
# --------------------------------------------------------------------------------------
class Lakes:
    """One raw folder curated by two lakes with a curate state each: ``stopped`` (its runs may be stopped while
    publishing) and ``uninterrupted`` (the same runs, never stopped): the reference."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.raw = tmp_path / "raw" / "customer_churn"
        for lake in ("stopped", "uninterrupted"):
            self.root(lake).mkdir(exist_ok=True)

    def root(self, lake: str) -> Path:
        return self.tmp / lake

    def argv(self, lake: str, run_id: str) -> list:
        root = self.root(lake)
        return job_argv(root, str(self.raw), run_id=run_id, state_path=str(root / "curate-state.json"))

    def run(self, lake: str, run_id: str) -> dict:
        assert glue_curate_job.main(self.argv(lake, run_id)) == 0
        return self.summary(lake)

    def run_both(self, run_id: str) -> dict:
        self.run("uninterrupted", run_id)
        return self.run("stopped", run_id)

    def stop_mid_commit(self, monkeypatch, run_id: str) -> None:
        """The run of ``stopped`` is stopped where Spark's commit has deleted every date folder it replaces and moved
        no new file in yet."""
        def stopped(publishing, curated_path):
            for (day,) in publishing.select("event_date").distinct().collect():
                shutil.rmtree(Path(curated_path) / f"event_date={day}", ignore_errors=True)
            raise RuntimeError("stopped while publishing")

        with monkeypatch.context() as patch:
            patch.setattr(glue_curate_job, "_write_curated", stopped)
            with pytest.raises(RuntimeError, match="stopped while publishing"):
                glue_curate_job.main(self.argv("stopped", run_id))

    def state(self, lake: str = "stopped") -> dict:
        return json.loads((self.root(lake) / "curate-state.json").read_text())

    def summary(self, lake: str = "stopped") -> dict:
        return json.loads((self.root(lake) / "summary.json").read_text())

    def copies(self) -> list:
        """The recovery copies under the stopped lake's recovery root (beside its state by default)."""
        root = self.root("stopped") / "curate-state.json.recovery"
        return sorted(p.name for p in root.iterdir()) if root.exists() else []

    def curated(self, lake: str = "stopped") -> pd.DataFrame:
        frame = read_curated(self.root(lake) / "curated")
        frame["event_date"] = frame["event_date"].astype(str)
        key = samples.CUSTOMER_CHURN.record_identifier
        return frame.sort_values([key, "event_time"]).reset_index(drop=True)[sorted(frame.columns)]

    def expire(self, day: str) -> None:
        """The raw bucket's lifecycle rule deletes the files landed on ``day``."""
        shutil.rmtree(self.raw / f"ingest_date={day}")


@pytest.fixture(scope="module")
def curated_lakes(spark, tmp_path_factory) -> Path:
    """GIVEN 60 records over 2026-01-01..03 landed on 2026-01-04 and curated by both lakes' first run (r1), and that
    raw then expired: those rows are now only in the curated data. Run once for the module; each test continues on
    a copy (``lakes``)."""
    root = tmp_path_factory.mktemp("lakes")
    write_raw(generate(samples.CUSTOMER_CHURN, 60, seed=41, start="2026-01-01", days=3), str(root / "raw"),
              samples.CUSTOMER_CHURN, "2026-01-04")
    first = Lakes(root)
    first.run_both("r1")
    first.expire("2026-01-04")
    return root


def copy_lakes(source: Path, target: Path) -> Lakes:
    """The two lakes under ``source`` copied under ``target``: a state and a summary name their lake's paths (a state
    whose paths changed makes a full read), so they name the copy's."""
    shutil.copytree(source, target, dirs_exist_ok=True)
    for path in target.rglob("*.json"):
        text = path.read_text()
        if str(source) in text:
            path.write_text(text.replace(str(source), str(target)))
            # A file Hadoop wrote (a recovery copy's manifest) has a checksum beside it, which the edit made stale:
            # without one Hadoop reads the file unchecked, as the job reads the manifest it wrote
            path.with_name(f".{path.name}.crc").unlink(missing_ok=True)
    return Lakes(target)


@pytest.fixture
def lakes(curated_lakes, tmp_path) -> Lakes:
    """The two lakes of ``curated_lakes`` copied under ``tmp_path``."""
    return copy_lakes(curated_lakes, tmp_path)


def land_late(lakes: Lakes, event_day: str, ingest_day: str, seed: int) -> pd.DataFrame:
    late = generate(samples.CUSTOMER_CHURN, 1, seed=seed, start=event_day, days=1)
    write_raw(late, str(lakes.tmp / "raw"), samples.CUSTOMER_CHURN, ingest_day)
    return late


@pytest.fixture(scope="module")
def late_on_the_lakes(curated_lakes, tmp_path_factory) -> tuple:
    """GIVEN ``curated_lakes``, then a late record for 2026-01-02 landed on 2026-04-20 (seed 42) and curated by the
    uninterrupted lake's run r2, the reference of the stopped lake's runs (which did not run yet). The lakes are
    separate (a root, a state and outputs each; they share only raw), so when the reference ran makes no difference.
    Run once for the module, as most recovery tests start so; each test continues on a copy (``late_lakes``)."""
    root = tmp_path_factory.mktemp("late-lakes")
    lakes = copy_lakes(curated_lakes, root)
    late = land_late(lakes, "2026-01-02", "2026-04-20", seed=42)
    lakes.run("uninterrupted", "r2")
    return root, late


@pytest.fixture
def late_lakes(late_on_the_lakes, tmp_path) -> tuple:
    """The lakes of ``late_on_the_lakes`` copied under ``tmp_path``, and the late record."""
    root, late = late_on_the_lakes
    return copy_lakes(root, tmp_path), late.copy()


@pytest.fixture(scope="module")
def stopped_on_the_late_lakes(late_on_the_lakes, tmp_path_factory) -> tuple:
    """GIVEN ``late_on_the_lakes``, then the stopped lake's run r2 stopped mid-commit (:meth:`Lakes.stop_mid_commit`:
    the late record's date emptied, its recovery copy and marker written), and the stopped lake's curated rows just
    before that stop. Run once for the module, as most recovery tests start so; each test continues on a copy
    (``stopped_lakes``)."""
    root, late = late_on_the_lakes
    target = tmp_path_factory.mktemp("stopped-lakes")
    lakes = copy_lakes(root, target)
    before = lakes.curated()
    lakes.stop_mid_commit(pytest.MonkeyPatch, "r2")
    return target, late, before


@pytest.fixture
def stopped_lakes(stopped_on_the_late_lakes, tmp_path) -> tuple:
    """The lakes of ``stopped_on_the_late_lakes`` copied under ``tmp_path``, the late record, and the stopped lake's
    curated rows before its run r2 was stopped."""
    root, late, before = stopped_on_the_late_lakes
    return copy_lakes(root, tmp_path), late.copy(), before.copy()


def test_a_run_stopped_mid_commit_loses_no_curated_row_the_next_run_takes_them_back_from_its_copy(stopped_lakes):
    # GIVEN a late record for 2026-01-02, whose other rows exist only curated (their raw expired); the uninterrupted
    # lake curated it (r2)
    # WHEN the stopped lake's run is stopped mid-commit: the date's folder deleted, the new one not moved in
    lakes, _, before = stopped_lakes
    assert not (lakes.root("stopped") / "curated" / "event_date=2026-01-02").exists()
    # THEN its marker names the copy it wrote first: every row it was publishing (the late one and the date's 20)
    in_flight = lakes.state()["in_flight"]
    copy = str(lakes.root("stopped") / "curate-state.json.recovery" / "run_id=r2")
    on_the_date = int((before["event_date"] == "2026-01-02").sum())
    assert in_flight["recoveries"] == [{"run_id": "r2", "path": copy, "rows": on_the_date + 1,
                                        "event_dates": ["2026-01-02"]}]
    assert lakes.copies() == ["run_id=r2"]
    # WHEN the next run runs
    summary = lakes.run("stopped", "r3")
    # THEN it did a full read, took the rows it does not curate anew back from the copy, and says so
    assert summary["read"]["mode"] == "full"
    assert summary["read"]["reason"].startswith("the previous run stopped while publishing (run r2, event date 2026-01-02)")
    assert summary["recovered_from_interrupted_run"] == [{"run_id": "r2", "location": copy, "rows": on_the_date}]
    assert summary["kept_from_curated"] == on_the_date and summary["recovery_warning"] is None
    # AND the curated rows are the uninterrupted run's, the rows whose raw had expired included
    pd.testing.assert_frame_equal(lakes.curated(), lakes.curated("uninterrupted"))
    assert len(lakes.curated()) == 61
    # AND once its state is published (no marker) the copy is gone
    assert "in_flight" not in lakes.state() and lakes.copies() == []


def test_a_second_stop_keeps_both_copies_until_a_run_publishes_even_when_raw_they_read_expires(stopped_lakes, monkeypatch):
    # GIVEN a late record for 2026-01-02 (the uninterrupted lake curated it: r2) whose run is stopped mid-commit
    lakes, _, _ = stopped_lakes
    # WHEN a late record for 2026-01-03 lands and the recovering run is stopped mid-commit too
    land_late(lakes, "2026-01-03", "2026-04-21", seed=43)
    lakes.run("uninterrupted", "r3")
    lakes.stop_mid_commit(monkeypatch, "r3")
    # THEN its marker names both copies, oldest first, and both are kept
    recoveries = lakes.state()["in_flight"]["recoveries"]
    assert [(r["run_id"], r["event_dates"]) for r in recoveries] == [
        ("r2", ["2026-01-02"]), ("r3", ["2026-01-02", "2026-01-03"])]
    assert lakes.copies() == ["run_id=r2", "run_id=r3"]
    # WHEN the first late record's raw file expires too (its row now only in the copies), a record for 2026-01-01
    # lands, and the next run is not stopped
    lakes.expire("2026-04-20")
    land_late(lakes, "2026-01-01", "2026-04-22", seed=44)
    lakes.run("uninterrupted", "r4")
    summary = lakes.run("stopped", "r4")
    # THEN the curated rows are the uninterrupted runs', the late record whose raw expired included
    pd.testing.assert_frame_equal(lakes.curated(), lakes.curated("uninterrupted"))
    assert len(lakes.curated()) == 63
    assert [(r["run_id"], r["rows"] > 0) for r in summary["recovered_from_interrupted_run"]] == [("r2", False), ("r3", True)]
    assert summary["recovery_warning"] is None
    # AND both copies are gone once the state is published
    assert "in_flight" not in lakes.state() and lakes.copies() == []


def test_a_run_stopped_while_writing_its_copy_changed_nothing_and_the_next_run_removes_the_partial_copy(
        late_lakes, monkeypatch):
    # GIVEN a late record (the uninterrupted lake curated it: r2), and a run stopped while writing its recovery copy
    # (before its marker)
    lakes, _ = late_lakes
    state, curated = (lakes.root("stopped") / "curate-state.json").read_text(), lakes.curated()

    def stopped(publishing, root, run_id, *args, **kwargs):
        folder = Path(root) / f"run_id={run_id}"
        folder.mkdir(parents=True)
        (folder / "part-00000.parquet").write_bytes(b"PAR1 half a file")
        raise RuntimeError("stopped while writing the copy")

    with monkeypatch.context() as patch:
        patch.setattr(glue_curate_job, "_write_recovery", stopped)
        with pytest.raises(RuntimeError):
            glue_curate_job.main(lakes.argv("stopped", "r2"))
    # THEN neither the state nor the curated data changed: the next run is an ordinary incremental one
    assert (lakes.root("stopped") / "curate-state.json").read_text() == state
    pd.testing.assert_frame_equal(lakes.curated(), curated)
    summary = lakes.run("stopped", "r3")
    assert summary["read"]["mode"] == "incremental" and summary["recovered_from_interrupted_run"] == []
    # AND once it published, the partial copy is gone
    assert lakes.copies() == []
    pd.testing.assert_frame_equal(lakes.curated(), lakes.curated("uninterrupted"))


def _old_marker(lakes: Lakes) -> str:
    path = lakes.root("stopped") / "curate-state.json"
    state = json.loads(path.read_text())
    del state["in_flight"]["recoveries"]
    path.write_text(json.dumps(state))
    shutil.rmtree(lakes.root("stopped") / "curate-state.json.recovery" / "run_id=r2")  # that job wrote no copy
    return "the marker of run r2 names no recovery copy (written by a job version before them)"


def _copy_gone(lakes: Lakes) -> str:
    copy = lakes.root("stopped") / "curate-state.json.recovery" / "run_id=r2"
    shutil.rmtree(copy)
    return f"the recovery copy of run r2 at {copy} is gone"


def _copy_corrupt(lakes: Lakes) -> str:
    copy = lakes.root("stopped") / "curate-state.json.recovery" / "run_id=r2"
    (copy / "part-99999.parquet").write_bytes(b"not parquet at all")
    return f"the recovery copy of run r2 at {copy} is unreadable ("


def _copy_short(lakes: Lakes) -> str:
    path = lakes.root("stopped") / "curate-state.json"
    state = json.loads(path.read_text())
    rows = state["in_flight"]["recoveries"][0]["rows"]
    state["in_flight"]["recoveries"][0]["rows"] = rows + 5  # as if files were lost after it was written
    path.write_text(json.dumps(state))
    copy = lakes.root("stopped") / "curate-state.json.recovery" / "run_id=r2"
    return f"the recovery copy of run r2 at {copy} holds {rows} rows, not the {rows + 5} its marker recorded (partly written or altered)"


@pytest.mark.parametrize("lose_the_copy", [_old_marker, _copy_gone, _copy_corrupt, _copy_short])
def test_a_marker_without_a_usable_copy_is_a_full_read_that_says_which_dates_to_restore_by_hand(
        stopped_lakes, lose_the_copy):
    # GIVEN a run stopped mid-commit (a late record for 2026-01-02 landed, its date emptied) whose copy cannot be
    # used: a marker of a job before copies, the copy deleted, a corrupt file in it, fewer rows than the marker recorded
    lakes, late, before = stopped_lakes
    problem = lose_the_copy(lakes)
    # WHEN the next run runs THEN it does not fail: a full read rebuilds what raw holds
    summary = lakes.run("stopped", "r3")
    assert summary["status"] == "succeeded" and summary["read"]["mode"] == "full"
    assert summary["recovered_from_interrupted_run"] == []
    # AND the summary says, in one line, what may be missing and how to get it back
    assert summary["recovery_warning"].startswith(problem)
    assert summary["recovery_warning"].endswith(
        ": this full read rebuilt event date 2026-01-02 from raw and the copies it could read only, so rows whose raw "
        "files expired may be missing there - restore them from the curated bucket's old object versions (docs/environment.md: "
        "Incremental runs)")
    # AND exactly those are: the emptied date holds only the late record, the other dates kept every row
    after = lakes.curated()
    assert set(after[after["event_date"] == "2026-01-02"]["customer_id"]) == set(late["customer_id"])
    assert after[after["event_date"] != "2026-01-02"].equals(
        before[before["event_date"] != "2026-01-02"].reset_index(drop=True))
    # AND the state is published and no copy is left
    assert "in_flight" not in lakes.state() and lakes.copies() == []


def _lose_state(lakes: Lakes, how: str) -> str:
    """The stopped lake's state deleted, or of a layout the job does not read (an upgrade while a marker is
    pending); the ``read.reason`` the next run gives."""
    path = lakes.root("stopped") / "curate-state.json"
    if how == "deleted":
        path.unlink()
        return f"no curate state at {path} (first run, or the state was deleted)"
    state = json.loads(path.read_text())
    state["state_version"] -= 1
    path.write_text(json.dumps(state))
    return f"the curate state at {path} is unreadable (not a version-{glue_curate_job.STATE_VERSION} curate state)"


@pytest.mark.parametrize("how", ["deleted", "other_version"])
def test_a_stopped_runs_copy_is_taken_back_when_the_state_that_named_it_is_lost(stopped_lakes, how):
    # GIVEN a late record for 2026-01-02 (the uninterrupted lake curated it: r2) whose run is stopped mid-commit (the
    # date emptied; the copy complete, with its manifest), then the state that names the copy is lost
    lakes, _, before = stopped_lakes
    on_the_date = int((before["event_date"] == "2026-01-02").sum())
    copy = lakes.root("stopped") / "curate-state.json.recovery" / "run_id=r2"
    manifest = json.loads((copy / glue_curate_job.RECOVERY_MANIFEST).read_text())
    assert (manifest["run_id"], manifest["rows"], manifest["event_dates"]) == ("r2", on_the_date + 1, ["2026-01-02"])
    assert (copy / "_SUCCESS").exists()  # Spark's committer marks the write complete too (not relied on)
    reason = _lose_state(lakes, how)
    # WHEN the next run runs
    summary = lakes.run("stopped", "r3")
    # THEN its full read took the copy back: no row is lost, the rows whose raw expired included
    assert summary["read"]["mode"] == "full" and summary["read"]["reason"] == reason
    assert summary["recovered_from_interrupted_run"] == [{"run_id": "r2", "location": str(copy), "rows": on_the_date}]
    pd.testing.assert_frame_equal(lakes.curated(), lakes.curated("uninterrupted"))
    assert len(lakes.curated()) == 61
    # AND the summary names the copy it took back without a state, and the rule it took it back by
    assert summary["recovery_warning"] == (
        f"took back 1 recovery copy no curate state named: run r2 (event date 2026-01-02) at {copy} - the state that "
        "named them is missing, unreadable or was replaced, so their rows only added the records the curated data "
        "lacked (a record they were changing keeps its curated row)")
    # AND once the state is published the copy is gone, and the state lists it as published
    assert lakes.copies() == []
    assert lakes.state()["published_copies"][0] == {"path": str(copy), "written_at": manifest["written_at"]}


def test_a_copy_stopped_before_its_manifest_is_never_read_and_is_kept_named_when_no_state_vouches_for_it(
        late_lakes, monkeypatch):
    # GIVEN a late record (the uninterrupted lake curated it: r2), a run stopped after Spark wrote its copy but before
    # the manifest that proves it complete, then the state deleted
    lakes, _ = late_lakes

    def stopped(spark, recovery):
        raise RuntimeError("stopped before the manifest")

    with monkeypatch.context() as patch:
        patch.setattr(glue_curate_job, "_write_manifest", stopped)
        with pytest.raises(RuntimeError):
            glue_curate_job.main(lakes.argv("stopped", "r2"))
    copy = lakes.root("stopped") / "curate-state.json.recovery" / "run_id=r2"
    (copy / "part-99999.parquet").write_bytes(b"PAR1 half a file")  # read, it would fail the read
    _lose_state(lakes, "deleted")
    # WHEN the next run runs
    summary = lakes.run("stopped", "r3")
    # THEN it did not read the copy (the stopped run changed nothing: the curated rows are the uninterrupted ones)
    assert summary["recovered_from_interrupted_run"] == []
    pd.testing.assert_frame_equal(lakes.curated(), lakes.curated("uninterrupted"))
    # AND kept it, named, as nothing says it is not needed
    assert lakes.copies() == ["run_id=r2"]
    assert summary["recovery_warning"] == (
        f"kept 1 recovery copy not read back: {copy} (no {glue_curate_job.RECOVERY_MANIFEST}: stopped while being "
        "written, or written by a job version before manifests; its event dates are not recorded) - check and delete "
        "by hand (docs/environment.md: Incremental runs)")
    # AND a run with a usable state beside it deletes it (its marker would name it if it were needed)
    land_late(lakes, "2026-01-03", "2026-04-21", seed=43)
    assert lakes.run("stopped", "r4")["recovery_warning"] is None and lakes.copies() == []


def test_a_copy_whose_delete_failed_is_stale_to_the_next_run_which_deletes_it_unread(lakes, monkeypatch):
    # GIVEN a run that published but could not delete its copy
    land_late(lakes, "2026-01-02", "2026-04-20", seed=42)
    with monkeypatch.context() as patch:
        patch.setattr(glue_curate_job, "delete_recoveries", lambda spark, root, paths: f"recovery copies under {root} "
                      "not deleted (denied): the next run deletes them")
        summary = lakes.run("stopped", "r2")
    assert summary["recovery_warning"].endswith("not deleted (denied): the next run deletes them")
    assert lakes.copies() == ["run_id=r2"]
    # WHEN the next run runs THEN it does not take the copy back (the state lists it as published) and deletes it
    land_late(lakes, "2026-01-03", "2026-04-21", seed=43)
    summary = lakes.run("stopped", "r3")
    assert summary["recovered_from_interrupted_run"] == [] and summary["recovery_warning"] is None
    assert lakes.copies() == []


def test_an_earlier_copy_never_replaces_a_value_a_later_stopped_run_published(stopped_lakes, monkeypatch):
    # GIVEN a late record for 2026-01-02 (the uninterrupted lake curated it: r2) whose run (r2) is stopped mid-commit:
    # its copy holds the record's value
    lakes, late, _ = stopped_lakes
    # AND a correction of it lands; the next run (r3) publishes the corrected value to the curated folders, then
    # is stopped before its state (the marker names r2's copy and its own), and its copy is lost
    corrected = late.copy()
    corrected["monthly_charges"] = late["monthly_charges"] + 10
    write_raw(corrected, str(lakes.tmp / "raw"), samples.CUSTOMER_CHURN, "2026-04-21")
    lakes.run("uninterrupted", "r3")

    def stopped(*args, **kwargs):
        raise RuntimeError("stopped before its state")

    with monkeypatch.context() as patch:
        patch.setattr(glue_curate_job, "_publish", stopped)
        with pytest.raises(RuntimeError):
            glue_curate_job.main(lakes.argv("stopped", "r3"))
    assert [r["run_id"] for r in lakes.state()["in_flight"]["recoveries"]] == ["r2", "r3"]
    shutil.rmtree(lakes.root("stopped") / "curate-state.json.recovery" / "run_id=r3")
    # AND both landings of the record expire (only the curated folders hold the corrected value), a record lands
    lakes.expire("2026-04-20")
    lakes.expire("2026-04-21")
    land_late(lakes, "2026-01-01", "2026-04-22", seed=44)
    lakes.run("uninterrupted", "r4")
    # WHEN the next run runs
    summary = lakes.run("stopped", "r4")
    # THEN r2's older value did not replace the corrected one: the curated rows are the uninterrupted runs'
    pd.testing.assert_frame_equal(lakes.curated(), lakes.curated("uninterrupted"))
    record = lakes.curated().set_index("customer_id").loc[late["customer_id"].iat[0]]
    assert record["monthly_charges"] == pytest.approx(corrected["monthly_charges"].iat[0])
    # AND the summary says r3's copy is gone and what that may cost
    copy = lakes.root("stopped") / "curate-state.json.recovery" / "run_id=r3"
    assert summary["recovery_warning"] == (
        f"the recovery copy of run r3 at {copy} is gone: this full read rebuilt event date 2026-01-02 from raw and "
        "the copies it could read only, so rows whose raw files expired may be missing there or hold an earlier "
        "copy's value - restore them from the curated bucket's old object versions (docs/environment.md: Incremental runs)")
    assert lakes.copies() == []


def test_a_raw_path_without_csv_files_fails_clearly(spark, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert glue_curate_job.main(job_argv(tmp_path, str(tmp_path / "empty"))) == 1
    assert "no *.csv file under raw_path" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"max_quarantine_ratio": "2"}, "argument --max_quarantine_ratio: must be in [0, 1], got '2'"),
        ({"dataset": "nope.json"}, "argument --dataset: invalid dataset declaration: 'nope.json' is neither a JSON "
                                   "dataset declaration nor a readable file (No such file or directory)"),
    ],
)
def test_bad_arguments_are_rejected_before_spark_starts(tmp_path, capsys, extra, message):
    with pytest.raises(SystemExit) as excinfo:
        glue_curate_job.main(job_argv(tmp_path, str(tmp_path), **extra))
    assert excinfo.value.code == 2
    assert message in capsys.readouterr().err


def test_missing_required_argument_names_it(capsys):
    with pytest.raises(SystemExit):
        glue_curate_job.main(["--dataset", "customer_churn"])
    assert "--raw_path, --curated_path, --quarantine_path" in capsys.readouterr().err
