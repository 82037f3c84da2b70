"""An export's own header names (``Tenure (months)``, ``CUST_ID``) and extra columns: one mapping, both readers.

A column declared with ``source:`` is read from the header cell that gives that text (trimmed, any case); a cell no
column reads is ignored and listed. The Glue curate job (Spark, every raw file) and the local run's reader of the
user's files apply the same rule (``Dataset.read_header``), so they read the same rows from the same file.
"""

from __future__ import annotations

import copy
import csv
import json
from pathlib import Path

import pandas as pd
import pytest

from mlops_cli.local import user_data
from mlops_cli.local.user_data import UserDataError, read_file
from pipeline_code import catalog
from pipeline_code.etl import glue_curate_job
from pipeline_code.sample_data.generate import generate, write_raw

from tests.support import datasets as samples

# The sample churn declaration, with the headers a CRM export gives some of its columns.
SOURCES = {"customer_id": "CUST_ID", "event_time": "Snapshot Time (UTC)", "tenure_months": "Tenure (months)",
           "monthly_charges": "Monthly-Charges", "contract_type": "contract.type"}
EXPORTED = copy.deepcopy(samples.DECLARATIONS["customer_churn"])
for _name, _header in SOURCES.items():
    EXPORTED["columns"][_name] = {**EXPORTED["columns"][_name], "source": _header}
CHURN_EXPORT = catalog.parse_dataset("customer_churn", EXPORTED)
# What the export holds besides the declared columns: a pandas index (an empty header cell), free text, an email.
EXTRAS = ["", "CRM Notes", "Contact e-mail"]


def export(rows: int = 30, seed: int = 3) -> pd.DataFrame:
    """Records as the CRM exports them: its header names, its own column order, three columns no model uses."""
    text = generate(samples.CUSTOMER_CHURN, rows, seed=seed, start="2026-01-01", days=2, as_text=True)
    text = text.rename(columns=SOURCES)
    text.insert(0, "", range(rows))
    text["CRM Notes"] = "called, no answer"
    text["Contact e-mail"] = "someone@example.com"
    return text[[*EXTRAS[:1], *reversed(list(text.columns[1:-2])), *EXTRAS[1:]]]


# --------------------------------------------------------------------------------------
# The mapping (pure Python: what both readers call)
# --------------------------------------------------------------------------------------
def test_a_header_is_read_by_each_columns_source_or_name_trimmed_in_any_case_the_rest_ignored():
    header = [None, " cust_id ", "REGION", "Tenure (months)", "Notes", "tenure_months"]
    read = CHURN_EXPORT.read_header(header)
    assert read.names == (None, "customer_id", "region", "tenure_months", None, None)
    assert read.ignored == ("", "Notes", "tenure_months")  # a column with a source is not read by its name
    assert read.missing == tuple(c.name for c in CHURN_EXPORT.columns
                                 if c.name not in ("customer_id", "region", "tenure_months"))


@pytest.mark.parametrize("header, message", [
    (["CUST_ID", "Tenure (months)", "tenure (months) "],
     "its header gives 'Tenure (months)' 2 times (columns 2, 3): each column of the export needs a header of its own "
     "(the header is how each raw file's columns are checked); rename or remove the copies in the export"),
    # An ignored column too: the curate job checks every file's header cell by cell.
    (["CUST_ID", "", "Notes", None],
     "its header gives '' 2 times (columns 2, 4): each column of the export needs a header of its own (the header is "
     "how each raw file's columns are checked); rename or remove the copies in the export"),
])
def test_a_header_text_given_twice_is_refused_naming_it_and_where(header, message):
    with pytest.raises(ValueError) as caught:
        CHURN_EXPORT.read_header(header)
    assert str(caught.value) == message


def test_the_source_travels_with_the_declaration_to_every_job():
    assert catalog.load_dataset(json.dumps(CHURN_EXPORT.to_declaration())) == CHURN_EXPORT
    assert CHURN_EXPORT.column("tenure_months").header == "Tenure (months)"
    assert CHURN_EXPORT.column("region").header == "region"
    # Serving and the Feature Store keep the declared names: the source is how raw files are read, nothing else.
    assert [name for name, _ in CHURN_EXPORT.feature_store_definitions()] == [
        name for name, _ in samples.CUSTOMER_CHURN.feature_store_definitions()]
    assert CHURN_EXPORT.column_names == samples.CUSTOMER_CHURN.column_names


def test_serving_reads_requests_by_the_declared_names_not_the_export_headers():
    from pipeline_code.serving import records
    from pipeline_code.serving.errors import BadRequestError
    from pipeline_code.serving.records import FeatureContract

    contract = FeatureContract.create(CHURN_EXPORT, [f.name for f in CHURN_EXPORT.features if f.name != "gender"])
    record = {k: v for k, v in generate(samples.CUSTOMER_CHURN, 1, seed=2, as_text=True).iloc[0].items()
              if v is not None}
    assert len(records.feature_rows(contract, [record]).frame) == 1
    record["Tenure (months)"] = record.pop("tenure_months")
    with pytest.raises(BadRequestError, match=r"^record 0: missing required field 'tenure_months' "):
        records.feature_rows(contract, [record])


# --------------------------------------------------------------------------------------
# Both readers, on one file
# --------------------------------------------------------------------------------------
def job_argv(root: Path, raw_path: Path, dataset: catalog.Dataset = CHURN_EXPORT) -> list:
    return ["--dataset", samples.declaration_file(root, dataset), "--raw_path", str(raw_path),
            "--curated_path", str(root / "curated"), "--quarantine_path", str(root / "quarantine"),
            "--summary_path", str(root / "summary.json")]


def land(frame: pd.DataFrame, root: Path, name: str = "export.csv", line_end: str = "\n") -> Path:
    """``frame`` as an export file; ``line_end`` ends its records ("\r\n": Excel's and Windows exporters'; a line
    break inside a quoted cell stays as the frame holds it)."""
    raw = root / "raw" / "customer_churn" / "ingest_date=2026-01-03"
    raw.mkdir(parents=True, exist_ok=True)
    frame.to_csv(raw / name, index=False, lineterminator=line_end)
    return raw / name


@pytest.mark.spark
def test_the_curate_job_and_the_local_reader_read_the_same_records_from_an_export_with_its_own_headers(
        spark, tmp_path, caplog):
    # GIVEN an export with the CRM's header names, in its own order, with three columns no model uses
    path = land(export(), tmp_path)
    # WHEN the curate job curates it as it is, and the local reader reads it
    with caplog.at_level("INFO", logger=glue_curate_job.LOG.name):
        assert glue_curate_job.main(job_argv(tmp_path, path.parent.parent)) == 0
    local, notes = read_file(str(path), CHURN_EXPORT)
    # THEN the job curates every record under the declared names, the extra columns left out and listed once
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "succeeded" and summary["curated_rows"] == 30 and summary["quarantined_rows"] == 0
    assert summary["ignored_columns"] == EXTRAS
    notices = [r.getMessage() for r in caplog.records if "not declared" in r.getMessage()]
    assert notices == [f"raw header cell(s) {EXTRAS} are not declared columns of dataset 'customer_churn' (nor a "
                       "column's source): ignored"]
    curated = pd.read_parquet(tmp_path / "curated").drop(columns="event_date")
    assert list(curated.columns) == list(CHURN_EXPORT.column_names)
    # AND the local reader reads the same text, under the same names, and says which cells it ignored
    assert list(local.columns) == list(CHURN_EXPORT.column_names)
    assert notes == [f"{path}: column(s) {EXTRAS} not declared for 'customer_churn', ignored"]
    by_id = curated.set_index("customer_id").sort_index()
    text = local.set_index("customer_id").sort_index()
    assert list(by_id.index) == list(text.index)
    assert list(by_id["tenure_months"]) == [int(v) for v in text["tenure_months"]]
    assert list(by_id["monthly_charges"]) == [float(v) for v in text["monthly_charges"]]
    assert list(by_id["contract_type"]) == list(text["contract_type"].str.strip().str.lower())


@pytest.mark.spark
def test_both_readers_refuse_a_header_given_twice_with_the_same_words(spark, tmp_path, capsys):
    frame = export(5).rename(columns={"CRM Notes": "tenure (months)"})
    path = land(frame, tmp_path)
    expected = ("its header gives 'Tenure (months)' 2 times (columns 10, 13): each column of the export needs a "
                "header of its own (the header is how each raw file's columns are checked); rename or remove the "
                "copies in the export")
    assert glue_curate_job.main(job_argv(tmp_path, path.parent.parent)) == 1
    (error,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("ERROR: ")]
    assert error == f"ERROR: raw data of dataset 'customer_churn': {expected}"
    with pytest.raises(UserDataError) as caught:
        read_file(str(path), CHURN_EXPORT)
    assert str(caught.value) == f"{path}: {expected}"
    assert not (tmp_path / "curated").exists()


@pytest.mark.spark
def test_a_declared_column_no_header_cell_gives_fails_the_job_naming_its_header_and_the_cells_ignored(
        spark, tmp_path, capsys):
    frame = export(5).rename(columns={"Tenure (months)": "Tenure"})
    path = land(frame, tmp_path)
    assert glue_curate_job.main(job_argv(tmp_path, path.parent.parent)) == 1
    (error,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("ERROR: ")]
    assert error == (
        "ERROR: raw data of dataset 'customer_churn' lacks declared column(s) 'tenure_months' (header "
        "'Tenure (months)'): no header cell gives them (cells are compared trimmed, in any case); the cells read as no "
        f"column: {['', 'Tenure', 'CRM Notes', 'Contact e-mail']}; rename the export's header, or declare the header "
        "it has as the column's source (datasets.customer_churn.columns.<column>.source)")


@pytest.mark.spark
def test_raw_files_that_are_all_empty_fail_the_job_saying_a_header_row_is_needed(spark, tmp_path, capsys):
    raw = tmp_path / "raw" / "customer_churn" / "ingest_date=2026-01-03"
    raw.mkdir(parents=True)
    (raw / "a.csv").write_text("")
    (raw / "b.csv").write_text("")
    assert glue_curate_job.main(job_argv(tmp_path, raw.parent)) == 1
    (error,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("ERROR: ")]
    assert error == "ERROR: no *.csv file with a header row among the 2 read"


# --------------------------------------------------------------------------------------
# What the local run lands in its raw lake is read by the curate job as an export in AWS is
# --------------------------------------------------------------------------------------
def _header_of(path: Path) -> list:
    return next(csv.reader(path.open(encoding="utf-8", newline="")))


@pytest.mark.spark
def test_generated_and_landed_raw_files_carry_the_headers_the_declaration_reads(spark, tmp_path):
    """The local run writes its raw lake (generated records, or the user's files landed) for the curate job to read:
    with a source declared, the job reads the column from that header, so the lake's files must give it."""
    expected = [c.header for c in CHURN_EXPORT.columns]
    # GIVEN generated records written to a raw lake, and the user's export landed into another
    generated = Path(write_raw(generate(CHURN_EXPORT, 20, seed=5), str(tmp_path / "gen"), CHURN_EXPORT, "2026-01-03"))
    path = land(export(), tmp_path / "export")
    landed = user_data.land(CHURN_EXPORT, str(path), str(tmp_path / "landed"), "2026-01-03")
    # THEN both give each column its header text, in declared order
    assert _header_of(generated) == expected
    assert _header_of(Path(landed.files[0])) == expected
    # AND the curate job curates each as it is
    for root in (tmp_path / "gen", tmp_path / "landed"):
        assert glue_curate_job.main(job_argv(root, root / "customer_churn")) == 0
        assert json.loads((root / "summary.json").read_text())["quarantined_rows"] == 0


# --------------------------------------------------------------------------------------
# Several files: each is read by its own header here, but the curate job compares every file's with the largest one's
# --------------------------------------------------------------------------------------
@pytest.mark.spark
def test_files_whose_headers_differ_in_order_are_landed_with_a_note_that_the_curate_job_in_aws_refuses_them(
        spark, tmp_path, capsys):
    # GIVEN two exports of the same columns, the smaller one in another order (each one readable alone)
    frame = export()
    largest = land(frame, tmp_path, "a.csv")
    reordered = land(frame[list(reversed(frame.columns))].iloc[:10], tmp_path, "b.csv")
    # WHEN the local run lands them
    landed = user_data.land(CHURN_EXPORT, str(largest.parent), str(tmp_path / "landed"), "2026-01-03")
    # THEN it curates every record, and says the smaller file, as it is, fails the curate job in AWS
    assert landed.rows == 40
    written = list(frame.columns)
    assert [n for n in landed.notes if "the header of the largest one" in n] == [
        f"{reordered}: landed here; as it is, the curate job in AWS would refuse it: it reads every raw file of a "
        f"dataset against the header of the largest one ({largest}: {written}), the same cells in the same order "
        f"(in any case), and this file's is {list(reversed(written))}; export the files with one header"]
    # AND it does: the job on these files as they are fails naming that file
    assert glue_curate_job.main(job_argv(tmp_path, largest.parent.parent)) == 1
    (error,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("ERROR: ")]
    assert error.startswith("ERROR: a raw CSV file's header differs from the first file's") and str(reordered) in error


@pytest.mark.spark
def test_files_whose_headers_differ_only_in_case_are_landed_without_a_note_as_the_curate_job_reads_them(
        spark, tmp_path):
    frame = export()
    largest = land(frame, tmp_path, "a.csv")
    land(frame.iloc[:10].rename(columns=str.upper), tmp_path, "b.csv")
    landed = user_data.land(CHURN_EXPORT, str(largest.parent), str(tmp_path / "landed"), "2026-01-03")
    assert landed.rows == 40 and not [n for n in landed.notes if "the header of the largest one" in n]
    assert glue_curate_job.main(job_argv(tmp_path, largest.parent.parent)) == 0


@pytest.mark.spark
def test_a_header_cell_with_a_line_break_in_a_crlf_file_is_refused_in_aws_by_name_and_noted_locally(
        spark, tmp_path, capsys):
    """GIVEN an export whose header has an LF line break inside a quoted cell and whose records end in CRLF (a Windows
    spreadsheet's export) WHEN landed locally THEN it is read, with a note that the curate job in AWS would refuse it
    and why; WHEN curated in AWS as it is THEN the job fails naming the file, the cause and the fix, not 'header
    differs from the first file's (schema change?)': Spark's multi-line reader takes the first line break of a file,
    the cell's LF, for its line separator and reads every CRLF record with a trailing carriage return."""
    frame = export().rename(columns={"CRM Notes": "CRM\nNotes"})
    path = land(frame, tmp_path, line_end="\r\n")
    problem = ("its header holds a line break inside a quoted cell written as '\\n', and its records end in '\\r\\n': "
               "Spark's multi-line CSV reader takes the first line break of a file for its line separator, so the curate "
               "job would read every record with a stray '\\r'; export it with '\\n' line endings, or without the line "
               "break in the header cell")
    landed = user_data.land(CHURN_EXPORT, str(path), str(tmp_path / "landed"), "2026-01-03")
    assert landed.rows == 30
    assert [n for n in landed.notes if "line break" in n] == [
        f"{path}: landed here; as it is, the curate job in AWS would refuse it: {problem}"]
    assert glue_curate_job.main(job_argv(tmp_path, path.parent.parent)) == 1
    (error,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("ERROR: ")]
    assert error.startswith("ERROR: raw CSV file ") and error.endswith(f"{path}: {problem}")


@pytest.mark.spark
def test_a_header_cell_with_a_line_break_is_read_by_the_curate_job_as_the_local_reader_reads_it(spark, tmp_path):
    """GIVEN one export whose header has a line break inside a quoted cell (a spreadsheet's wrapped header text; a
    column no model uses here) WHEN curated THEN the job reads the header as one CSV record, as the local reader does:
    every record curated, the cell ignored, not 'header differs from the first file's'."""
    frame = export().rename(columns={"CRM Notes": "CRM\nNotes"})
    path = land(frame, tmp_path)
    assert glue_curate_job.main(job_argv(tmp_path, path.parent.parent)) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["curated_rows"] == 30 and summary["quarantined_rows"] == 0
    local, notes = read_file(str(path), CHURN_EXPORT)
    assert len(local) == 30
    assert summary["ignored_columns"] == ["", "CRM\nNotes", "Contact e-mail"]
    assert notes == [f"{path}: column(s) {summary['ignored_columns']} not declared for 'customer_churn', ignored"]
