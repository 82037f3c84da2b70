"""The user's files into the local run's raw lake: every format read as the ETL expects, every bad file named."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from mlops_cli.local import user_data
from pipeline_code import catalog
from mlops_cli.local.user_data import UserDataError, land, parse_data_args, read_file
from pipeline_code.sample_data.generate import generate

from tests.support.datasets import CUSTOMER_CHURN


@pytest.fixture
def typed():
    """Ten typed churn records, as a Parquet or JSON export would hold them."""
    return generate(CUSTOMER_CHURN, 10, seed=4)


def test_every_format_lands_as_the_same_raw_text(typed, tmp_path):
    # GIVEN the same records as CSV text, JSON Lines and Parquet
    text = generate(CUSTOMER_CHURN, 10, seed=4, as_text=True)
    text.to_csv(tmp_path / "a.csv", index=False)
    typed.to_json(tmp_path / "b.jsonl", orient="records", lines=True, date_format="iso")
    typed.to_parquet(tmp_path / "c.parquet", index=False)
    # WHEN each is read for the ETL
    frames = {name: read_file(str(tmp_path / name), CUSTOMER_CHURN)[0] for name in ("a.csv", "b.jsonl", "c.parquet")}
    # THEN each is text in declaration order, and the typed formats render numbers and nulls as the CSV does
    for frame in frames.values():
        assert list(frame.columns) == [c.name for c in CUSTOMER_CHURN.columns]
    csv, jsonl, parquet = frames["a.csv"], frames["b.jsonl"], frames["c.parquet"]
    for column in ("tenure_months", "support_calls_90d", "contract_type", "gender", "churned"):
        assert list(jsonl[column]) == list(csv[column].where(csv[column].notna(), None)), column
        assert list(parquet[column]) == list(csv[column].where(csv[column].notna(), None)), column
    assert pd.to_datetime(parquet["event_time"]).equals(pd.to_datetime(csv["event_time"]))


def test_a_date_column_lands_as_the_yyyy_mm_dd_text_the_etl_reads_from_every_format(tmp_path):
    from tests.support.datasets import LICENCES

    # GIVEN policies with date columns as CSV text, JSON Lines, Parquet dates and Parquet datetimes (pandas' dates)
    typed = generate(LICENCES, 12, seed=2)
    text = generate(LICENCES, 12, seed=2, as_text=True)
    text.to_csv(tmp_path / "a.csv", index=False)
    text.to_json(tmp_path / "b.jsonl", orient="records", lines=True)
    typed.to_parquet(tmp_path / "c.parquet", index=False)
    as_datetimes = typed.assign(licence_issued=pd.to_datetime(typed["licence_issued"]))
    as_datetimes.to_parquet(tmp_path / "d.parquet", index=False)
    # WHEN each is read for the ETL
    frames = {name: read_file(str(tmp_path / name), LICENCES)[0]
              for name in ("a.csv", "b.jsonl", "c.parquet", "d.parquet")}
    # THEN each date is the text the CSV holds, yyyy-MM-dd, null where missing
    written = list(text["licence_issued"])
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d", day) for day in written)
    for name, frame in frames.items():
        assert list(frame["licence_issued"]) == written, name
        assert list(frame["previous_claim"]) == list(text["previous_claim"].where(text["previous_claim"].notna(), None)), name
    # AND a datetime with a time of day stays a timestamp, which the ETL quarantines as not a date (never cut to a day)
    noon = as_datetimes.assign(licence_issued=as_datetimes["licence_issued"] + pd.Timedelta(hours=12))
    noon.to_parquet(tmp_path / "e.parquet", index=False)
    landed = read_file(str(tmp_path / "e.parquet"), LICENCES)[0]["licence_issued"]
    assert catalog.parse_date(landed.iloc[0]) is None and landed.iloc[0].startswith(written[0] + "T12:00:00")


def test_a_json_boolean_is_written_as_the_word_the_etl_reads():
    assert user_data._value_text(True) == "true" and user_data._value_text(3.0) == "3"
    assert user_data._value_text(float("nan")) is None and user_data._value_text(2.5) == "2.5"


def test_missing_required_columns_name_the_file_the_columns_and_the_fix(typed, tmp_path):
    path = tmp_path / "export.csv"
    typed.drop(columns=["churned", "region"]).to_csv(path, index=False)
    with pytest.raises(UserDataError) as caught:
        read_file(str(path), CUSTOMER_CHURN)
    assert str(caught.value).startswith(
        f"{path}: missing column(s) ['region', 'churned'] that dataset 'customer_churn' requires (record identifier, "
        "event time, labels and non-nullable columns); the file has ["
    )
    assert str(caught.value).endswith(
        "— rename the file's columns or change the declaration under datasets.customer_churn.columns (a column's "
        "source: is the header text the files give it); labels that arrive in files of their own go with --labels "
        "customer_churn=<label files>")


def _refusal_of_renamed(typed, tmp_path, renamed: dict) -> tuple:
    """(the file, why reading it is refused) for the records with columns ``renamed``."""
    path = tmp_path / "export.csv"
    typed.rename(columns=renamed).to_csv(path, index=False)
    with pytest.raises(UserDataError) as caught:
        read_file(str(path), CUSTOMER_CHURN)
    return path, str(caught.value)


def test_a_declared_column_missing_beside_one_of_nearly_its_name_is_a_typo_not_nulls(typed, tmp_path):
    path, refusal = _refusal_of_renamed(typed, tmp_path, {"gender": "genders"})
    assert refusal == (f"{path}: declared column(s) ['gender'] are absent; the file's 'genders' looks like 'gender'; "
                       "rename them in the file or the declaration under datasets.customer_churn.columns, or, if it "
                       "is another column, drop it from the file")


def test_a_required_column_one_typo_away_is_named_with_the_missing_one(typed, tmp_path):
    _, refusal = _refusal_of_renamed(typed, tmp_path, {"customer_id": "customer_ids"})
    assert refusal.endswith("under datasets.customer_churn.columns (a column's source: is the header text the files "
                            "give it); the file's 'customer_ids' looks like 'customer_id'")


def test_columns_that_differ_only_in_their_digits_are_different_columns_not_typos(tmp_path):
    # GIVEN a dataset declaring q2_sales (nullable) and a file with q1_sales instead
    declaration = CUSTOMER_CHURN.to_declaration()
    declaration["columns"].append({"name": "q2_sales", "type": "double", "nullable": True})
    dataset = catalog.load_dataset(declaration)
    path = tmp_path / "export.csv"
    generate(CUSTOMER_CHURN, 5, seed=4).assign(q1_sales=1.0).to_csv(path, index=False)
    # WHEN it is read THEN q2_sales is read as nulls and q1_sales ignored, both said
    frame, notes = read_file(str(path), dataset)
    assert frame["q2_sales"].isna().all()
    assert notes == [f"{path}: nullable column(s) ['q2_sales'] absent, read as nulls",
                     f"{path}: column(s) ['q1_sales'] not declared for 'customer_churn', ignored",
                     f"{path}: landed here with ['q2_sales'] added empty; as it is, the curate job in AWS would refuse "
                     "it: a raw file's header must give every declared column (its name, or its source)"]


def test_absent_nullable_and_undeclared_columns_are_reported_not_silent(typed, tmp_path):
    path = tmp_path / "export.csv"
    typed.drop(columns=["gender"]).assign(Source="crm").to_csv(path, index=False)
    frame, notes = read_file(str(path), CUSTOMER_CHURN)
    assert frame["gender"].isna().all() and "Source" not in frame and "source" not in frame
    assert notes == [f"{path}: nullable column(s) ['gender'] absent, read as nulls",
                     f"{path}: column(s) ['Source'] not declared for 'customer_churn', ignored",
                     f"{path}: landed here with ['gender'] added empty; as it is, the curate job in AWS would refuse "
                     "it: a raw file's header must give every declared column (its name, or its source)"]


def test_a_csv_whose_header_only_differs_in_case_or_spacing_is_read_as_the_curate_job_in_aws_reads_it(typed, tmp_path):
    """The local run reads `` ID, EVENT_TIME`` as the declared columns, as the Glue job does (one rule:
    ``Dataset.read_header``, tests/jobs/test_raw_headers.py): no note says otherwise."""
    exact, shouted = tmp_path / "exact.csv", tmp_path / "shouted.csv"
    typed.to_csv(exact, index=False)
    typed.rename(columns=lambda c: f" {c.upper()}").to_csv(shouted, index=False)
    frame, notes = read_file(str(shouted), CUSTOMER_CHURN)
    assert frame.equals(read_file(str(exact), CUSTOMER_CHURN)[0]) and read_file(str(exact), CUSTOMER_CHURN)[1] == []
    assert notes == []


@pytest.mark.parametrize("content, message", [
    ("", "the file is empty; it needs a header row and at least one record"),
    ("customer_id,event_time,churned\n", "the file has no records; remove it or add records"),
])
def test_an_empty_file_is_named(tmp_path, content, message):
    path = tmp_path / "empty.csv"
    path.write_text(content)
    with pytest.raises(UserDataError, match=f"^{path}: {message}$"):
        read_file(str(path), CUSTOMER_CHURN)


@pytest.mark.parametrize("sep, name", [(";", ";"), ("\t", "tab"), ("|", "|")])
def test_a_csv_separated_by_another_character_is_named_with_the_export_to_make(typed, tmp_path, sep, name):
    # GIVEN a spreadsheet export separated by ';' (where ',' is the decimal mark), a tab or '|'
    path = tmp_path / "export.csv"
    typed.to_csv(path, sep=sep, index=False)
    header = sep.join(typed.columns)
    # WHEN read THEN the error says what the file looks like, not that every declared column is missing
    with pytest.raises(UserDataError) as excinfo:
        read_file(str(path), CUSTOMER_CHURN)
    assert str(excinfo.value) == (f"{path}: the file looks {name}-separated (its header reads as the one column "
                                  f"{header!r}); export it comma-separated (or as Parquet or JSON Lines)")


def test_land_records_one_content_hash_of_the_files_read(typed, tmp_path):
    # GIVEN the same records in two places, and a copy with one value changed
    for where in ("a", "b", "c"):
        (tmp_path / where).mkdir()
    typed.to_csv(tmp_path / "a" / "records.csv", index=False)
    typed.to_csv(tmp_path / "b" / "other-name.csv", index=False)
    typed.assign(tenure_months=typed["tenure_months"] + 1).to_csv(tmp_path / "c" / "records.csv", index=False)
    # WHEN landed THEN the hash follows the bytes, not the path
    a, b, c = (land(CUSTOMER_CHURN, str(tmp_path / w), str(tmp_path / "raw" / w), "2026-04-01") for w in "abc")
    assert a.sha256 == b.sha256 == user_data.source_sha256([str(tmp_path / "a" / "records.csv")])
    assert len(a.sha256) == 64 and c.sha256 != a.sha256


def test_no_matching_file_lists_the_formats(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(UserDataError, match=r"no data file found; give a file, a directory or a glob of \.csv, \.jsonl, "
                                            r"\.ndjson, \.parquet files"):
        land(CUSTOMER_CHURN, str(tmp_path), str(tmp_path / "raw"), "2026-04-01")


def test_land_writes_one_raw_part_per_file_in_the_lake_layout(typed, tmp_path):
    source = tmp_path / "in"
    (source / "2026").mkdir(parents=True)
    typed.iloc[:4].to_parquet(source / "2026" / "a.parquet", index=False)
    typed.iloc[4:].to_json(source / "b.jsonl", orient="records", lines=True, date_format="iso")
    landed = land(CUSTOMER_CHURN, str(source), str(tmp_path / "raw"), "2026-04-01")
    part = tmp_path / "raw" / "customer_churn" / "ingest_date=2026-04-01"
    assert landed.files == [str(part / "part-00000.csv"), str(part / "part-00001.csv")]
    assert landed.rows == 10 and landed.notes == []


@pytest.mark.parametrize("values, message", [
    (["customer_churn"], "--data 'customer_churn': write --data <dataset>=<file, directory or glob>"),
    (["a=x", "a=y"], "--data: dataset 'a' is given twice"),
])
def test_data_arguments_are_checked(values, message):
    with pytest.raises(UserDataError, match=f"^{message}$"):
        parse_data_args(values)
    assert parse_data_args(["customer_churn = data/*.csv"]) == {"customer_churn": "data/*.csv"}


def test_labels_from_their_own_files_join_the_records_by_identifier(typed, tmp_path):
    # GIVEN records without their label and a label file covering all but one of them (plus a stranger)
    records, labels = tmp_path / "records", tmp_path / "labels"
    records.mkdir(), labels.mkdir()
    typed.drop(columns=["churned"]).to_parquet(records / "r.parquet", index=False)
    outcomes = typed[["customer_id", "churned"]].iloc[1:].assign(source="crm")
    outcomes = pd.concat([outcomes, pd.DataFrame({"customer_id": ["STRANGER"], "churned": [1], "source": ["crm"]})])
    outcomes.to_csv(labels / "outcomes.csv", index=False)
    # WHEN landed
    landed = land(CUSTOMER_CHURN, str(records), str(tmp_path / "raw"), "2026-04-01", labels=str(labels))
    # THEN one part with every record, the label joined by identifier, and every adjustment said
    (part,) = landed.files
    written = pd.read_csv(part, dtype=str).set_index("customer_id")
    expected = typed.set_index("customer_id")["churned"].astype(int).astype(str)
    assert written["churned"].iloc[1:].tolist() == expected.iloc[1:].tolist() and pd.isna(written["churned"].iloc[0])
    assert landed.notes == [f"{labels / 'outcomes.csv'}: column(s) ['source'] ignored (a label file gives "
                            "['customer_id', 'churned'])",
                            f"1 of 10 records have no label in --labels {labels} (kept; prepare leaves them out of training)",
                            f"1 label rows of --labels {labels} match no record (ignored)"]


def test_a_label_file_matching_no_record_names_both_sides(typed, tmp_path):
    typed.drop(columns=["churned"]).to_csv(tmp_path / "records.csv", index=False)
    pd.DataFrame({"customer_id": ["X-1", "X-2"], "churned": [0, 1]}).to_csv(tmp_path / "labels.csv", index=False)
    with pytest.raises(UserDataError) as caught:
        land(CUSTOMER_CHURN, str(tmp_path / "records.csv"), str(tmp_path / "raw"), "2026-04-01",
             labels=str(tmp_path / "labels.csv"))
    assert str(caught.value) == (
        f"--labels {tmp_path / 'labels.csv'}: none of its 2 record identifiers (e.g. 'X-1') matches a record of "
        f"'customer_churn' (e.g. {typed['customer_id'].iloc[0]!r}); check that both files use the same 'customer_id' values")


def _monthly(typed: pd.DataFrame) -> pd.DataFrame:
    """The ten records, the first two made one customer's records of two months (one identifier, two event times)."""
    records = typed.drop(columns=["churned"]).copy()
    records.loc[1, "customer_id"] = records.loc[0, "customer_id"]
    records.loc[1, "event_time"] = records.loc[0, "event_time"] + pd.Timedelta(days=31)
    return records


def test_a_recurring_record_is_labelled_by_its_event_time_read_as_a_time(typed, tmp_path):
    # GIVEN one customer's records of two months and label files giving each month's outcome, the times written
    # with another offset than the records'
    records = _monthly(typed)
    records.to_parquet(tmp_path / "records.parquet", index=False)
    first, second = (records.loc[i, "event_time"].tz_convert("Europe/Paris").isoformat() for i in (0, 1))
    customer = records.loc[0, "customer_id"]
    pd.DataFrame({"customer_id": [customer, customer], "event_time": [first, second], "churned": [0, 1]}).to_csv(
        tmp_path / "labels.csv", index=False)
    # WHEN landed
    landed = land(CUSTOMER_CHURN, str(tmp_path / "records.parquet"), str(tmp_path / "raw"), "2026-04-01",
                  labels=str(tmp_path / "labels.csv"))
    # THEN each month's record has its own outcome, and the others none
    (part,) = landed.files
    written = pd.read_csv(part, dtype=str)
    assert written.loc[written["customer_id"] == customer, "churned"].tolist() == ["0", "1"]
    assert written["churned"].iloc[2:].isna().all()
    assert f"8 of 10 records have no label in --labels {tmp_path / 'labels.csv'} (kept; prepare leaves them out of training)" in landed.notes


def test_labels_without_the_event_time_are_refused_for_a_record_that_recurs(typed, tmp_path):
    """One outcome joined by identifier alone would label every month's record of the customer with it."""
    records = _monthly(typed)
    records.to_parquet(tmp_path / "records.parquet", index=False)
    pd.DataFrame({"customer_id": records["customer_id"].unique(), "churned": 1}).to_csv(tmp_path / "labels.csv", index=False)
    with pytest.raises(UserDataError) as caught:
        land(CUSTOMER_CHURN, str(tmp_path / "records.parquet"), str(tmp_path / "raw"), "2026-04-01",
             labels=str(tmp_path / "labels.csv"))
    assert str(caught.value) == (
        f"--labels {tmp_path / 'labels.csv'}: record {records.loc[0, 'customer_id']!r} appears at 2 different 'event_time' "
        "values in your records, and the label files have no 'event_time' column: each of its records would get the "
        "same label; add 'event_time' to the label files so each labels the record of its time")


def test_timed_labels_that_match_no_record_at_its_time_are_refused_showing_both_times(typed, tmp_path):
    """Labels giving each record's time as local wall-clock time without an offset (read as UTC, as the ETL reads the
    records) match none of the records: an error naming one record's times on both sides, not a run with no labels."""
    records = typed.drop(columns=["churned"])
    records.to_parquet(tmp_path / "records.parquet", index=False)
    local = records["event_time"].dt.tz_convert("Europe/Paris").dt.strftime("%Y-%m-%dT%H:%M:%S")
    pd.DataFrame({"customer_id": records["customer_id"], "event_time": local, "churned": 1}).to_csv(
        tmp_path / "labels.csv", index=False)
    with pytest.raises(UserDataError) as caught:
        land(CUSTOMER_CHURN, str(tmp_path / "records.parquet"), str(tmp_path / "raw"), "2026-04-01",
             labels=str(tmp_path / "labels.csv"))
    first = records.iloc[0]
    assert str(caught.value) == (
        f"--labels {tmp_path / 'labels.csv'}: none of its 10 labels matches a record by identifier and event_time (e.g. "
        f"record {first['customer_id']!r}: labelled at {local.iloc[0]}, recorded at "
        f"{first['event_time'].strftime('%Y-%m-%dT%H:%M:%S.%fZ')}); "
        "write the label files' event_time as the records' (the same instant; a time without an offset is UTC)")


def test_a_record_re_sent_with_its_time_written_another_way_is_one_record_for_labels_without_times(typed, tmp_path):
    """The same instant written with ``+00:00`` and with ``Z`` is one record (the ETL keeps one): labels by identifier
    alone are not refused for it."""
    records = typed.drop(columns=["churned"]).copy()
    again = records.iloc[[0]].copy()
    records["event_time"] = records["event_time"].map(lambda t: t.isoformat())
    again["event_time"] = again["event_time"].map(lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ"))
    pd.concat([records, again]).to_csv(tmp_path / "records.csv", index=False)
    pd.DataFrame({"customer_id": records["customer_id"], "churned": 0}).to_csv(tmp_path / "labels.csv", index=False)
    landed = land(CUSTOMER_CHURN, str(tmp_path / "records.csv"), str(tmp_path / "raw"), "2026-04-01",
                  labels=str(tmp_path / "labels.csv"))
    (part,) = landed.files
    assert pd.read_csv(part, dtype=str)["churned"].tolist() == ["0"] * 11


def test_label_files_give_the_event_time_all_or_none(tmp_path):
    pd.DataFrame({"customer_id": ["a"], "event_time": ["2026-01-01T00:00:00Z"], "churned": [0]}).to_csv(
        tmp_path / "a.csv", index=False)
    pd.DataFrame({"customer_id": ["b"], "churned": [1]}).to_csv(tmp_path / "b.csv", index=False)
    with pytest.raises(UserDataError) as caught:
        user_data.read_labels(str(tmp_path), CUSTOMER_CHURN)
    assert str(caught.value) == (f"{tmp_path / 'b.csv'}: has no 'event_time' column while {tmp_path / 'a.csv'} has one; "
                                 "give the event time in every label file or in none")


@pytest.mark.parametrize("labels, message", [
    (pd.DataFrame({"customer_id": ["a", "a"], "event_time": ["2026-01-01T00:00:00Z", "2026-01-01T01:00:00+01:00"],
                   "churned": [0, 1]}),
     "record 'a' at 2026-01-01T00:00:00Z is labelled 2 times; give each record one label row"),
    (pd.DataFrame({"customer_id": ["a"], "event_time": ["last week"], "churned": [0]}),
     "record 'a' has event_time 'last week', which is not a timestamp the ETL reads; write it as the records do (e.g. "
     "2026-01-31T09:00:00Z; without an offset it is UTC)"),
    # a day-first or month-first layout is not guessed: the ETL would not read it either
    (pd.DataFrame({"customer_id": ["a"], "event_time": ["01/02/2026 10:00"], "churned": [0]}),
     "record 'a' has event_time '01/02/2026 10:00', which is not a timestamp the ETL reads; write it as the records do "
     "(e.g. 2026-01-31T09:00:00Z; without an offset it is UTC)"),
    # a timestamp outside the times the jobs hold (core.contract.TIMESTAMP_RANGE): the ETL quarantines its record
    (pd.DataFrame({"customer_id": ["a"], "event_time": ["1500-01-01T00:00:00Z"], "churned": [0]}),
     "record 'a' has event_time '1500-01-01T00:00:00Z', which is outside the times the jobs hold (from "
     "1677-09-22T00:00:00Z to before 2262-04-11T00:00:00Z): the ETL quarantines a record of that time; correct the "
     "time in the records and their labels"),
    (pd.DataFrame({"customer_id": ["a"], "event_time": ["1677-09-21T12:00:00Z"], "churned": [0]}),
     "record 'a' has event_time '1677-09-21T12:00:00Z', which is outside the times the jobs hold (from "
     "1677-09-22T00:00:00Z to before 2262-04-11T00:00:00Z): the ETL quarantines a record of that time; correct the "
     "time in the records and their labels"),
    (pd.DataFrame({"customer_id": ["a", "a"], "churned": [0, 1]}), "record 'a' is labelled 2 times; give each record one label row"),
    (pd.DataFrame({"customer_id": ["a"], "outcome": [1]}), "a label file needs the record identifier and the label "
                                                            "column(s) ['customer_id', 'churned']; missing ['churned']"),
])
def test_label_file_mistakes_are_named(typed, tmp_path, labels, message):
    labels.to_csv(tmp_path / "labels.csv", index=False)
    with pytest.raises(UserDataError, match=re.escape(f"{tmp_path / 'labels.csv'}: {message}")):
        user_data.read_labels(str(tmp_path / "labels.csv"), CUSTOMER_CHURN)


def test_labels_given_twice_are_refused(typed, tmp_path):
    typed.to_csv(tmp_path / "records.csv", index=False)
    with pytest.raises(UserDataError, match=r"has label column\(s\) \['churned'\] although --labels gives the labels"):
        read_file(str(tmp_path / "records.csv"), CUSTOMER_CHURN, labels_apart=True)


def test_a_compressed_export_beside_readable_files_is_refused_naming_it_not_left_out(typed, tmp_path):
    """GIVEN a directory where last month's export is a CSV and this month's arrived gzipped (an exporter's setting
    changed) WHEN landed THEN the gzipped file is named, with the fix, instead of its records being left out while the
    CSV lands (the curate job in AWS refuses such a raw file too)."""
    text = generate(CUSTOMER_CHURN, 10, seed=4, as_text=True)
    text.to_csv(tmp_path / "2026-01.csv", index=False)
    text.to_csv(tmp_path / "2026-02.csv.gz", index=False, compression="gzip")
    (tmp_path / "notes.txt").write_text("not data")
    (tmp_path / "_SUCCESS").write_text("")
    with pytest.raises(UserDataError) as refused:
        land(CUSTOMER_CHURN, str(tmp_path), str(tmp_path / "raw"), "2026-04-01")
    assert str(refused.value) == (
        f"--data {str(tmp_path)!r}: 1 file(s) look like data but are not read: {tmp_path / '2026-02.csv.gz'}; only "
        "uncompressed .csv, .jsonl, .ndjson, .parquet files are read, so their records would be left out without a word - "
        "decompress or convert them (an exporter's compression or format setting), or move them out, and run again")
    assert not (tmp_path / "raw").exists()


def test_files_in_a_folder_spark_treats_as_hidden_are_neither_landed_nor_refused(typed, tmp_path):
    """GIVEN this month's export beside an _archive/ folder of older exports (one gzipped) and a .cache/ folder WHEN
    landed THEN only this month's records land, as the curate job in AWS would read the same folder (Spark leaves out
    a path part starting with _ or .): the local run's result is not built on records the job never reads."""
    text = generate(CUSTOMER_CHURN, 10, seed=4, as_text=True)
    text.to_csv(tmp_path / "2026-01.csv", index=False)
    (tmp_path / "_archive").mkdir()
    generate(CUSTOMER_CHURN, 7, seed=5, as_text=True).to_csv(tmp_path / "_archive" / "2025-12.csv", index=False)
    text.to_csv(tmp_path / "_archive" / "2025-11.csv.gz", index=False, compression="gzip")
    (tmp_path / ".cache").mkdir()
    text.to_csv(tmp_path / ".cache" / "copy.csv", index=False)
    landed = land(CUSTOMER_CHURN, str(tmp_path), str(tmp_path / "raw"), "2026-04-01")
    assert landed.rows == 10


def test_a_compressed_label_file_is_refused_naming_the_labels_argument(typed, tmp_path):
    """GIVEN records and, under --labels, this month's outcomes gzipped WHEN landed THEN the refusal names --labels (the
    argument to fix), not --data, and no raw folder is left behind."""
    records, labels = tmp_path / "records", tmp_path / "labels"
    records.mkdir(), labels.mkdir()
    typed.drop(columns=["churned"]).to_parquet(records / "r.parquet", index=False)
    typed[["customer_id", "churned"]].to_csv(labels / "outcomes.csv.gz", index=False, compression="gzip")
    with pytest.raises(UserDataError) as refused:
        land(CUSTOMER_CHURN, str(records), str(tmp_path / "raw"), "2026-04-01", labels=str(labels))
    assert str(refused.value) == (
        f"--labels {str(labels)!r}: 1 file(s) look like data but are not read: {labels / 'outcomes.csv.gz'}; only "
        "uncompressed .csv, .jsonl, .ndjson, .parquet files are read, so their records would be left out without a word - "
        "decompress or convert them (an exporter's compression or format setting), or move them out, and run again")
    assert not (tmp_path / "raw").exists()
