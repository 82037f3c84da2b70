"""Incremental curate runs: each run reads only the raw files that landed or changed since the last successful run
(the curate state, ``--state_path``), and its curated data is the one a full read gives.

The decision (which files a run reads, when it reads them all, the state it reads) is plain Python and tested
without Spark; one Spark scenario lands batches over several runs and compares the incremental lake with one curated
by full reads of the same raw data.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import re
import shutil
from pathlib import Path

import boto3
import pandas as pd
import pytest
from moto import mock_aws

from pipeline_code import catalog
from pipeline_code.etl import curate as curate_module
from pipeline_code.etl import glue_curate_job
from pipeline_code.etl.glue_curate_job import RawFile, files_to_read, plan_read, read_state, state_keys
from pipeline_code.sample_data.generate import generate, write_raw
from tests.support import datasets as samples
from tests.support.credentials import moto_credentials

CHURN = samples.CUSTOMER_CHURN
RAW = "s3://raw-bucket/customer_churn/"


def raw_file(key: str, size: int = 100, modified: int = 1) -> RawFile:
    return RawFile(path=RAW + key, uri=RAW + key, key=key, size=size, modified=modified)


def recorded(*files: RawFile) -> dict:
    return {f.key: f.recorded_as for f in files}


HEADER = [column.name for column in CHURN.columns]


# --------------------------------------------------------------------------------------
# Which files an incremental run reads (no Spark)
# --------------------------------------------------------------------------------------
DAY1_A, DAY1_B = raw_file("ingest_date=2026-02-01/part-00000.csv"), raw_file("ingest_date=2026-02-01/part-00001.csv")
DAY2 = raw_file("ingest_date=2026-02-02/part-00000.csv")
DAY3 = raw_file("ingest_date=2026-02-03/part-00000.csv")


def test_a_new_days_folder_is_read_alone_and_nothing_when_nothing_landed():
    # GIVEN days 1 and 2 curated WHEN day 3 lands THEN the run reads day 3's file only
    assert files_to_read([DAY1_A, DAY1_B, DAY2, DAY3], recorded(DAY1_A, DAY1_B, DAY2)) == [DAY3]
    # AND a run with every file recorded as it is reads none
    assert files_to_read([DAY1_A, DAY1_B, DAY2, DAY3], recorded(DAY1_A, DAY1_B, DAY2, DAY3)) == []


def test_a_file_added_to_a_folder_read_before_is_read_with_its_whole_batch_and_every_later_file():
    # GIVEN days 1-3 curated WHEN a file lands later in day 2's folder THEN the run reads day 2 (its batch, judged
    # whole) and day 3 (a later copy of one of its records must still win), not day 1
    late = raw_file("ingest_date=2026-02-02/part-late.csv")
    assert files_to_read([DAY1_A, DAY1_B, DAY2, late, DAY3], recorded(DAY1_A, DAY1_B, DAY2, DAY3)) == [DAY2, late, DAY3]


@pytest.mark.parametrize("change", [{"size": 120}, {"modified": 2}], ids=["size", "modification time"])
def test_a_file_rewritten_in_place_is_read_again_from_its_batch_on(change):
    rewritten = raw_file(DAY1_B.key, **{"size": DAY1_B.size, "modified": DAY1_B.modified, **change})
    assert files_to_read([DAY1_A, rewritten, DAY2, DAY3], recorded(DAY1_A, DAY1_B, DAY2, DAY3)) == [
        DAY1_A, rewritten, DAY2, DAY3]


def test_files_outside_any_ingest_date_folder_are_one_batch_read_whole():
    # GIVEN an export dropped beside the folders (it sorts after them) and one before them, one batch together
    before, after = raw_file("a-export.csv"), raw_file("z-export.csv")
    files = [before, DAY1_A, DAY2, after]
    # WHEN only the later one changes THEN the run reads from the earlier one on: the batch is judged whole
    assert files_to_read(files, {**recorded(*files), after.key: [1, 1]}) == files


def test_a_file_gone_from_raw_is_not_read_and_leaves_the_state():
    # GIVEN day 1 expired WHEN the state after the run is written THEN it records the files still in raw only
    files, keys = [DAY2, DAY3], state_keys(CHURN, RAW, "s3://curated-bucket/customer_churn/")
    plan = plan_read(files, keys, {"keys": keys, "header": HEADER, "files": recorded(DAY1_A, DAY2)}, None)
    assert plan.read == (DAY3,) and plan.mode == "incremental"
    assert plan.next_state("r2", HEADER)["files"] == recorded(DAY2, DAY3)
    assert plan.counts() == {"mode": "incremental", "reason": None, "files_read": 1, "files_skipped": 1,
                             "bytes_read": 100, "bytes_skipped": 100}


@pytest.mark.parametrize(
    "state_keys_then, full_read, reason",
    [
        ({"declaration": "old"}, False, "the dataset declaration changed: the rows curated so far are read again"),
        ({"code": "old"}, False, "curation changed (CURATE_SEMANTICS_VERSION or a rule it applies): the rows curated so "
                                 "far are read again"),
        ({"curated_path": "s3://elsewhere/x"}, False, "curated_path changed: the rows curated so far are read again"),
        ({}, True, "--full_read true was given"),
    ],
)
def test_a_full_read_is_due_when_what_the_rows_depend_on_changed_or_when_asked(state_keys_then, full_read, reason):
    keys = state_keys(CHURN, RAW, "s3://curated-bucket/customer_churn/")
    state = {"keys": {**keys, **state_keys_then}, "header": HEADER, "files": recorded(DAY1_A, DAY2, DAY3)}
    plan = plan_read([DAY1_A, DAY2, DAY3], keys, state, None, full_read=full_read)
    assert (plan.mode, plan.full_reason, plan.read) == ("full", reason, (DAY1_A, DAY2, DAY3))
    # AND a full read checks its files against the largest one's header, not the state's
    assert plan.header is None


def test_a_run_that_skips_files_checks_its_own_against_the_header_the_state_accepted():
    # GIVEN days 1 and 2 curated with the state's header WHEN day 3 lands THEN the run reads it against that header
    # (a re-ordered export fails the run it lands in, as every full read of both would), and records it again
    keys = state_keys(CHURN, RAW, "s3://curated-bucket/customer_churn/")
    state = {"keys": keys, "header": HEADER, "files": recorded(DAY1_A, DAY2)}
    plan = plan_read([DAY1_A, DAY2, DAY3], keys, state, None)
    assert (plan.read, plan.header) == ((DAY3,), tuple(HEADER))
    assert plan.next_state("r3", HEADER)["header"] == HEADER
    # AND a run that reads every file again (here: day 1 rewritten) takes the largest file's header, as a full read
    rewritten = raw_file(DAY1_A.key, modified=2)
    assert plan_read([rewritten, DAY2, DAY3], keys, state, None).header is None


def test_a_state_marked_in_flight_makes_the_next_run_a_full_read_that_says_why():
    # GIVEN the state a run wrote just before replacing its dates (it then stopped: a date may be left emptied)
    keys = state_keys(CHURN, RAW, "s3://curated-bucket/customer_churn/")
    state = {"keys": keys, "header": HEADER, "files": recorded(DAY1_A, DAY2)}
    stopped = glue_curate_job.in_flight_state(state, "r3", HEADER, [dt.date(2026, 1, 29), dt.date(2026, 1, 28)], 1)
    assert {**stopped, "in_flight": None} == {**state, "in_flight": None}  # the files recorded stay as they were
    # WHEN the next run plans THEN it reads every file, and says why
    plan = plan_read([DAY1_A, DAY2, DAY3], keys, stopped, None)
    assert (plan.mode, plan.read) == ("full", (DAY1_A, DAY2, DAY3))
    assert plan.full_reason == ("the previous run stopped while publishing (run r3, 2 event date(s), 2026-01-28 to "
                                "2026-01-29): a full read rebuilds its dates")
    # AND the state it writes once published has no marker
    assert "in_flight" not in plan.next_state("r4", HEADER)


def test_the_recovery_folders_no_marker_names_are_taken_back_deleted_or_kept_by_what_the_state_says():
    # GIVEN the run_id= folders under the recovery root: one the marker names, complete copies (with a manifest)
    # the published state lists or not, and a folder without a manifest
    root = "s3://curated-bucket/_curate-recovery/customer_churn"

    def copy(run_id, written_at):
        return glue_curate_job.Recovery(run_id=run_id, path=f"{root}/run_id={run_id}", rows=3,
                                        event_dates=("2026-01-02",), written_at=written_at)

    named, published, later, earlier = (copy("r1", "t1"), copy("r2", "t2"), copy("r5", "t5"), copy("r4", "t4"))
    partial = f"{root}/run_id=r6"
    found = [(named.path, named), (published.path, published), (later.path, later), (earlier.path, earlier),
             (partial, None)]
    state = {"published_copies": [{"path": published.path, "written_at": "t2"},
                                  {"path": later.path, "written_at": "an earlier copy at that path"}]}
    # WHEN a run beside a usable state sorts them
    folders = glue_curate_job.sort_recovery_folders(found, [named], state)
    # THEN the marker's copy is left to the marker; the complete copies the state does not list as published are
    # taken back, oldest first; the published one and the one without a manifest are deleted
    assert folders.left == (earlier, later)
    assert folders.stale == (published.path, partial) and folders.unproven == ()
    assert folders.found == tuple(path for path, _ in found)
    # WHEN there is no usable state THEN every complete copy is taken back and the folder without a manifest is kept,
    # named, not deleted: nothing says it is not needed
    folders = glue_curate_job.sort_recovery_folders(found, [], None)
    assert folders.left == (named, published, earlier, later) and folders.stale == ()
    assert folders.unproven == (f"{partial} (no _recovery.json: stopped while being written, or written by a job "
                                "version before manifests; its event dates are not recorded)",)
    # AND the state a run publishes lists the copies it deletes next, so one whose delete did not happen is stale
    plan = plan_read([DAY1_A], state_keys(CHURN, RAW, "s3://c/customer_churn/"), None, None)
    assert plan.next_state("r7", HEADER, [(later.path, "t5")])["published_copies"] == [
        {"path": later.path, "written_at": "t5"}]


def test_the_declaration_key_follows_the_declaration_and_the_code_key_does_not():
    # GIVEN the dataset declared again with another bound (rows curated earlier were validated against the old one)
    declaration = copy.deepcopy(CHURN.to_declaration())
    declaration["columns"][2]["max"] = 1234.0
    changed = catalog.parse_dataset(CHURN.name, {k: v for k, v in declaration.items() if k != "name"})
    # THEN the declaration key differs, and nothing else
    before, after = state_keys(CHURN, RAW, "c"), state_keys(changed, RAW, "c")
    assert [name for name in before if before[name] != after[name]] == ["declaration"]


def changed(value):
    """Another value of a rule's type."""
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, (tuple, list)):
        return (*value, "x")
    raise AssertionError(f"no other value for {value!r}: teach this test its type")


def curate_source() -> str:
    return Path(curate_module.__file__).read_text(encoding="utf-8")


def test_the_code_key_covers_every_catalog_rule_curate_applies():
    # GIVEN the catalog constants curate.py names (its patterns, boolean words, type names)
    named = set(re.findall(r"\bcatalog\.([A-Z][A-Z0-9_]*)\b", curate_source()))
    # THEN each is one the code key digests (a rule added to curate.py must be added to CURATE_RULES)
    assert named and named <= set(glue_curate_job.CURATE_RULES)
    # AND curate.py's own copies of the patterns are the catalog's (so the catalog's value is the one applied)
    assert (curate_module._INTEGER_RE, curate_module._DOUBLE_RE, curate_module._TIMESTAMP_RE) == (
        catalog.INTEGER_PATTERN, catalog.DOUBLE_PATTERN, catalog.TIMESTAMP_PATTERN)


@pytest.mark.parametrize("name", [*glue_curate_job.CURATE_RULES, "READER_OPTIONS", "CHECK_OPTIONS", "_BATCH_FOLDER",
                                  "CURATE_SEMANTICS_VERSION", "_TIMESTAMP_FORMAT", "EARLIEST_TIMESTAMP",
                                  "LATEST_TIMESTAMP", "MAX_EVENT_TIME_AHEAD_SECONDS"])
def test_the_code_key_changes_with_each_value_curation_depends_on(name, monkeypatch):
    before = state_keys(CHURN, RAW, "c")["code"]
    # WHEN one value changes (a rule in catalog.py or core/value_rules.py, a reader option, the batch folder pattern,
    # the hand-kept version)
    if name in glue_curate_job.CURATE_RULES:
        monkeypatch.setattr(catalog, name, changed(getattr(catalog, name)))
    elif name == "CURATE_SEMANTICS_VERSION":
        monkeypatch.setattr(glue_curate_job, name, glue_curate_job.CURATE_SEMANTICS_VERSION + 1)
    elif name == "_TIMESTAMP_FORMAT":
        monkeypatch.setattr(curate_module, name, changed(curate_module._TIMESTAMP_FORMAT))
    elif name in ("EARLIEST_TIMESTAMP", "LATEST_TIMESTAMP"):  # the range curate quarantines timestamps outside of
        monkeypatch.setattr(curate_module, name, getattr(curate_module, name) + dt.timedelta(days=1))
    elif name == "_BATCH_FOLDER":
        monkeypatch.setattr(glue_curate_job, name, changed(glue_curate_job._BATCH_FOLDER))
    elif name in ("EARLIEST_TIMESTAMP", "LATEST_TIMESTAMP"):  # the range the jobs hold, as curate.py applies it
        monkeypatch.setattr(curate_module, name, getattr(curate_module, name) + dt.timedelta(days=1))
    elif name == "MAX_EVENT_TIME_AHEAD_SECONDS":  # how far ahead an event time is future-dated
        monkeypatch.setattr(curate_module, name, curate_module.MAX_EVENT_TIME_AHEAD_SECONDS + 60)
    else:
        options = getattr(glue_curate_job, name)
        monkeypatch.setattr(glue_curate_job, name, ((options[0][0], changed(str(options[0][1]))), *options[1:]))
    # THEN the code key changes: the next run is a full read
    assert state_keys(CHURN, RAW, "c")["code"] != before


def test_a_missing_or_unreadable_state_is_none_with_one_line_saying_why(tmp_path):
    path = tmp_path / "curate-state.json"
    assert read_state(str(path)) == (None, f"no curate state at {path} (first run, or the state was deleted)")
    path.write_text("{not json")
    assert read_state(str(path)) == (None, f"the curate state at {path} is unreadable (not a version-2 curate state)")
    # a state of the previous layout (no accepted header) is unreadable too: the next run is a full read
    path.write_text(json.dumps({"state_version": 1, "keys": {}, "files": {}}))
    assert read_state(str(path)) == (None, f"the curate state at {path} is unreadable (not a version-2 curate state)")
    path.write_bytes(b"\xff\xfe")
    assert read_state(str(path)) == (None, f"the curate state at {path} is unreadable (not UTF-8 text)")
    state = {"state_version": 2, "keys": {}, "header": ["a"], "files": {"a.csv": [1, 2]}}
    path.write_text(json.dumps(state))
    assert read_state(str(path)) == (state, None)


def test_on_s3_a_missing_state_is_found_missing_by_listing_its_key_and_a_written_one_is_read(monkeypatch):
    moto_credentials(monkeypatch)
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="artifacts")
        uri = "s3://artifacts/etl-runs/customer_churn/curate-state.json"
        # a longer key that the state's key prefixes is not the state
        s3.put_object(Bucket="artifacts", Key="etl-runs/customer_churn/curate-state.json.old", Body=b"{}")
        assert read_state(uri, s3_client=s3) == (None, f"no curate state at {uri} (first run, or the state was deleted)")
        state = {"state_version": 2, "keys": {"k": "v"}, "header": ["a"], "files": {}}
        s3.put_object(Bucket="artifacts", Key="etl-runs/customer_churn/curate-state.json", Body=json.dumps(state).encode())
        assert read_state(uri, s3_client=s3) == (state, None)


# --------------------------------------------------------------------------------------
# Equivalence with a full read, on Spark
# --------------------------------------------------------------------------------------
def curated(root: Path) -> pd.DataFrame:
    frame = pd.read_parquet(root)
    frame["event_date"] = frame["event_date"].astype(str)
    return frame.sort_values(["customer_id", "event_time"]).reset_index(drop=True)[sorted(frame.columns)]


def argv(root: Path, raw: Path, run_id: str, **extra: str) -> list:
    args = {
        "dataset": samples.declaration_file(root, CHURN),
        "raw_path": str(raw),
        "curated_path": str(root / "curated"),
        "quarantine_path": str(root / "quarantine"),
        "summary_path": str(root / "summary.json"),
        "run_id": run_id,
        **extra,
    }
    return [token for name, value in args.items() for token in (f"--{name}", value)]


@pytest.mark.spark
def test_incremental_runs_curate_what_full_reads_of_the_same_raw_data_curate(spark, tmp_path, capsys, monkeypatch):
    inc, full = tmp_path / "incremental", tmp_path / "full"
    raw = tmp_path / "lake"
    raw_dataset = raw / CHURN.name
    state = inc / "curate-state.json"
    inc.mkdir()
    full.mkdir()
    state_writes = []  # per write of the state: whether it was marked in flight
    write_json = glue_curate_job.write_json
    monkeypatch.setattr(glue_curate_job, "write_json", lambda path, data: (
        state_writes.append("in_flight" in data) if path == str(state) else None, write_json(path, data)))

    def run_incremental(run_id: str, **extra: str) -> tuple:
        code = glue_curate_job.main(argv(inc, raw_dataset, run_id, state_path=str(state), **extra))
        return code, json.loads((inc / "summary.json").read_text())

    def run_full(run_id: str) -> None:
        assert glue_curate_job.main(argv(full, raw_dataset, run_id)) == 0

    def land(frame: pd.DataFrame, day: str, name: str = "part-00000.csv") -> None:
        folder = raw_dataset / f"ingest_date={day}"
        folder.mkdir(parents=True, exist_ok=True)
        write_raw(frame, str(tmp_path / "staging" / name), CHURN, day)
        shutil.move(str(tmp_path / "staging" / name / CHURN.name / f"ingest_date={day}" / "part-00000.csv"),
                    str(folder / name))

    # GIVEN day 1's batch (24 records, 4 event dates), curated by the first run: no state yet, so a full read
    day1 = generate(CHURN, 24, seed=31, start="2026-01-28", days=4)
    land(day1, "2026-02-01")
    code, summary = run_incremental("r1")
    assert code == 0 and summary["read"]["mode"] == "full"
    assert summary["read"]["reason"] == f"no curate state at {state} (first run, or the state was deleted)"
    assert state.exists()

    # WHEN day 2 lands: a correction of a day-1 record, a day-1 record re-sent unchanged (a duplicate across days), a
    # late record for Jan 28, and a bad row (1 of 4 is over the 0.05 maximum): the run fails, its state unchanged
    corrected = day1.iloc[[0]].copy()
    corrected["monthly_charges"] = 11.5
    late = generate(CHURN, 1, seed=32, start="2026-01-28", days=1)
    bad = generate(CHURN, 1, seed=33, start="2026-01-30", days=1, as_text=True)
    bad["tenure_months"] = "twelve"
    land(pd.concat([corrected, day1.iloc[[1]], late]), "2026-02-02")
    land(bad, "2026-02-02", "part-00001.csv")
    state_after_r1 = state.read_text()
    state_writes.clear()
    code, summary = run_incremental("r2")
    assert code == 1 and summary["status"] == "failed" and summary["read"]["files_read"] == 2
    assert state.read_text() == state_after_r1 and state_writes == []  # published nothing: no marker either
    # AND day 3 re-sends the bad record corrected: the next run reads days 2 and 3 (day 2 was never published), and
    # day 2's bad row counts as corrected
    fixed = bad.copy()
    fixed["tenure_months"] = "12"
    land(fixed, "2026-02-03")
    code, summary = run_incremental("r3")
    assert state_writes == [True, False]  # the marker before the curated write, then the state without it
    assert code == 0 and summary["read"] == {**summary["read"], "mode": "incremental", "files_read": 3,
                                             "files_skipped": 1}
    assert [(b["batch"], b["corrected_rows"]) for b in summary["batches"]] == [
        ("ingest_date=2026-02-02", 1), ("ingest_date=2026-02-03", 0)]
    # AND day 3's file is rewritten in place (the fixed record changed again) and day 4 lands: the run reads day 3 on
    refixed = fixed.copy()
    refixed["tenure_months"] = "13"
    land(refixed, "2026-02-03")
    day4 = generate(CHURN, 5, seed=35, start="2026-01-31", days=2)
    land(day4, "2026-02-04")
    # WHEN that run is stopped mid-commit: Spark has deleted a touched date's folder (Jan 31, with day 1's rows)
    # and not yet moved the new one in
    def stopped(publishing, curated_path):
        shutil.rmtree(Path(curated_path) / "event_date=2026-01-31")
        raise RuntimeError("stopped while publishing")

    with monkeypatch.context() as patch:
        patch.setattr(glue_curate_job, "_write_curated", stopped)
        with pytest.raises(RuntimeError):
            run_incremental("r4")
    # THEN the retry finds the marker and reads every file, which rebuilds the date
    code, summary = run_incremental("r4-retry")
    assert code == 0 and summary["read"] == {**summary["read"], "mode": "full", "files_read": 5, "files_skipped": 0}
    assert summary["read"]["reason"].startswith("the previous run stopped while publishing (run r4, ")
    run_full("f4")  # the full-read lake curates the same raw data, before day 1 expires
    # AND day 1's raw file expires; a file lands later in day 2's processed folder (the corrected record changed once
    # more, and an older copy of a day-4 record, which must not win over it); day 5 lands a late record for Jan 28,
    # whose other rows now exist only curated. The run reads day 2 on: every copy that could win
    shutil.rmtree(raw_dataset / "ingest_date=2026-02-01")
    again, older = corrected.copy(), day4.iloc[[0]].copy()
    again["monthly_charges"], older["monthly_charges"] = 12.5, 0.5
    land(pd.concat([again, older]), "2026-02-02", "part-late copy.csv")  # (a space in a name: read as itself)
    land(generate(CHURN, 1, seed=36, start="2026-01-28", days=1), "2026-02-05")
    code, summary = run_incremental("r5")
    assert code == 0 and (summary["read"]["files_read"], summary["read"]["files_skipped"]) == (6, 0)
    assert summary["kept_from_curated"] > 0
    run_full("f5")

    # THEN the incremental lake's curated data is the full reads'
    expected = curated(full / "curated")
    pd.testing.assert_frame_equal(curated(inc / "curated"), expected)
    values = expected.set_index("customer_id")
    assert values.loc[corrected["customer_id"].iat[0], "monthly_charges"] == 12.5  # the latest landing won
    assert values.loc[fixed["customer_id"].iat[0], "tenure_months"] == 13  # the rewritten file's value
    assert values.loc[older["customer_id"].iat[0], "monthly_charges"] == day4["monthly_charges"].iat[0]  # day 4's
    assert len(expected) == 24 + 1 + 1 + 5 + 1
    # AND running again reads nothing and changes nothing (idempotent)
    code, summary = run_incremental("r6")
    assert code == 0 and summary["read"]["files_read"] == 0 and summary["input_rows"] == 0
    pd.testing.assert_frame_equal(curated(inc / "curated"), expected)
    # AND --full_read true reads every file, with the same result
    code, summary = run_incremental("r7", full_read="true")
    assert code == 0 and summary["read"] == {**summary["read"], "mode": "full", "reason": "--full_read true was given",
                                             "files_read": 6, "files_skipped": 0}
    pd.testing.assert_frame_equal(curated(inc / "curated"), expected)
    assert os.path.exists(state)
    # AND day 6's export has the same columns in another order: the incremental run that reads it alone fails,
    # naming it, with the message every full read of the same raw data now gives (curated data and state unchanged)
    land(generate(CHURN, 2, seed=37, start="2026-02-05", days=1), "2026-02-06")
    reordered = raw_dataset / "ingest_date=2026-02-06" / "part-00000.csv"
    text = pd.read_csv(reordered, dtype=str, keep_default_na=False)
    text[list(reversed(text.columns))].to_csv(reordered, index=False)
    state_before = state.read_text()
    capsys.readouterr()
    assert run_incremental("r8")[0] == 1
    incremental_error = capsys.readouterr().err
    assert glue_curate_job.main(argv(full, raw_dataset, "f8")) == 1
    full_error = capsys.readouterr().err
    assert incremental_error.startswith("ERROR: a raw CSV file's header differs from the first file's (schema change?)")
    assert "ingest_date=2026-02-06/part-00000.csv" in incremental_error
    assert incremental_error.replace(str(inc), "") == full_error.replace(str(full), "")
    assert state.read_text() == state_before
    pd.testing.assert_frame_equal(curated(inc / "curated"), expected)


@pytest.mark.spark
def test_the_curate_job_writes_the_old_timestamps_and_dates_the_range_holds(spark, tmp_path):
    """GIVEN raw records with a timestamp column before 1900 (1677-09-22, the range's floor; 1899-12-31) and date
    columns before the Gregorian switch (0001-01-01, 1500-01-01), all values the rules accept
    WHEN the curate job runs THEN it curates them, as written (Spark 3's default refuses to write such times to Parquet,
    SparkUpgradeException WRITE_ANCIENT_DATETIME, failing the whole run), and pyarrow reads back the same values."""
    from pipeline_code.core.contract import EARLIEST_TIMESTAMP
    from tests.support.datasets import LICENCES

    raw = tmp_path / "lake" / LICENCES.name
    records = generate(LICENCES, 2, seed=41, as_text=True)
    records["quoted_at"] = [f"{EARLIEST_TIMESTAMP:%Y-%m-%dT%H:%M:%SZ}", "1899-12-31T23:59:59Z"]
    records["licence_issued"] = ["0001-01-01", "1500-01-01"]
    write_raw(records, str(tmp_path / "lake"), LICENCES, "2026-02-01")
    args = {"dataset": samples.declaration_file(tmp_path, LICENCES), "raw_path": str(raw),
            "curated_path": str(tmp_path / "curated"), "quarantine_path": str(tmp_path / "quarantine"),
            "summary_path": str(tmp_path / "summary.json"), "run_id": "r1"}
    assert glue_curate_job.main([token for name, value in args.items() for token in (f"--{name}", value)]) == 0
    curated = pd.read_parquet(tmp_path / "curated").sort_values("quoted_at")
    assert [t.isoformat() for t in curated["quoted_at"].dt.tz_localize(None).astype("datetime64[s]").tolist()] == [
        "1677-09-22T00:00:00", "1899-12-31T23:59:59"]
    assert sorted(str(d) for d in curated["licence_issued"]) == ["0001-01-01", "1500-01-01"]
