"""The drift monitor's prediction records (``predictions.parquet``) as an analyst reads them: with Athena, Glue or
QuickSight, which see a parquet file's columns and never its key-value metadata.

"Which version made this decision?" must be answerable from the columns alone: each row names the model package
(ARN and version) and the artefact whose prediction its ``score`` holds, and the artefact the capture says answered
the caller (another one during a rollout, whose answer the monitor rescored with the version it judges).
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow.parquet as pq

from pipeline_code.monitoring import late_labels
from pipeline_code.monitoring.capture import ANSWERED, INFERENCE_ID, INFERENCE_TIME, SCORE
from tests.support.late_label_runs import now as _now, scheduled_run, traffic
from tests.support.remote_world import register

VERSION = late_labels.RecordsVersion("arn:aws:sagemaker:eu-west-1:123456789012:model-package/churn/7", 7, "d7")


def _columns_only(path) -> pd.DataFrame:
    """What a SQL engine sees: the columns, without the file's key-value metadata."""
    table = pq.read_table(path)
    return table.replace_schema_metadata(None).to_pandas()


def test_a_scheduled_runs_records_name_the_version_that_made_each_prediction_in_columns(aws, spec, reference, tmp_path):
    """GIVEN an approved version serving and a day of captured traffic
    WHEN the scheduled monitor run records its window's predictions
    THEN every row carries the package ARN, its version number and the artefact digest as columns (not only in the
    parquet metadata, which Athena cannot read), so `WHERE model_package_version = 7` finds that version's decisions."""
    arn = register(aws, reference, "run-1")
    aws.serving_stack(churn_arn=arn)
    traffic(aws, spec, reference["model"], name="today", day=_now(), rows=300, seed=11)

    report = scheduled_run(aws, spec, tmp_path / "run-1")

    written = report["sections"]["model_quality"]["prediction_records_written"]
    frame = _columns_only(tmp_path / "run-1" / "out" / late_labels.RECORDS_FILE)
    assert written["rows"] == len(frame) == 300
    made_by = late_labels.records_version(str(tmp_path / "run-1" / "out" / late_labels.RECORDS_FILE))
    assert made_by is not None and made_by.model_package_arn == arn
    assert set(frame[late_labels.MODEL_PACKAGE_ARN]) == {arn}
    assert set(frame[late_labels.MODEL_PACKAGE_VERSION]) == {made_by.model_package_version}
    assert set(frame[late_labels.MODEL_SHA256]) == {made_by.model_sha256} and made_by.model_sha256


def test_a_record_another_version_answered_names_that_version_apart_from_the_one_whose_score_it_holds(tmp_path):
    """GIVEN a window holding a rollout: some requests answered by artefact d6, the rest by d7 (judged)
    WHEN the records are written
    THEN each row says which artefact answered the caller (``answered_by_sha256``) beside the judged version's
    columns, so an analyst can tell the rescored rows from the answers callers got; a capture that names no answering
    model leaves it null."""
    path = tmp_path / late_labels.RECORDS_FILE
    writer = late_labels.RecordWriter(str(path), VERSION)
    writer(pd.DataFrame({INFERENCE_ID: ["a", "b", "c"], INFERENCE_TIME: ["2026-03-02T10:00:00Z"] * 3,
                         SCORE: [0.1, 0.2, 0.3], ANSWERED: ["d6", "d7", None]}))
    assert "error" not in writer.close()

    frame = _columns_only(path)
    assert list(frame[late_labels.ANSWERED_BY_SHA256].where(frame[late_labels.ANSWERED_BY_SHA256].notna(), None)) \
        == ["d6", "d7", None]
    assert list(frame[late_labels.MODEL_PACKAGE_VERSION]) == [7, 7, 7]
    assert list(frame[late_labels.MODEL_SHA256]) == ["d7"] * 3


def test_records_keep_one_schema_whether_or_not_the_version_is_known(tmp_path):
    """GIVEN a local run (no package) and a scheduled one (a package)
    WHEN both write records
    THEN their columns and types are the same (a table over both reads each), the unknown values null."""
    schemas = []
    for name, version in (("local", late_labels.RecordsVersion()), ("scheduled", VERSION)):
        path = tmp_path / name / late_labels.RECORDS_FILE
        writer = late_labels.RecordWriter(str(path), version)
        writer(pd.DataFrame({INFERENCE_ID: ["a"], INFERENCE_TIME: [dt.datetime(2026, 3, 2, tzinfo=dt.timezone.utc)],
                             SCORE: [0.5]}))
        assert "error" not in writer.close()
        schemas.append(pq.read_schema(path).remove_metadata())
    assert schemas[0].equals(schemas[1]), (schemas[0], schemas[1])
    local = _columns_only(tmp_path / "local" / late_labels.RECORDS_FILE)
    assert local[[late_labels.MODEL_PACKAGE_ARN, late_labels.MODEL_PACKAGE_VERSION, late_labels.MODEL_SHA256,
                  late_labels.ANSWERED_BY_SHA256]].isna().all().all()


def test_a_first_chunk_without_request_ids_does_not_lose_the_windows_records(tmp_path):
    """GIVEN a window whose first chunk holds only requests sent without an inference id (none is kept: no label can
    name them) and a later chunk with ids
    WHEN the records are written
    THEN the file holds the later chunk's rows, typed as every other records file (inference_id a string), instead of
    the writer fixing a column's type from the empty first chunk and dropping the whole window on the next."""
    path = tmp_path / late_labels.RECORDS_FILE
    writer = late_labels.RecordWriter(str(path), VERSION)
    writer(pd.DataFrame({INFERENCE_ID: [None, ""], INFERENCE_TIME: ["2026-03-02T09:00:00Z"] * 2, SCORE: [0.4, 0.6]}))
    writer(pd.DataFrame({INFERENCE_ID: ["a", "b"], INFERENCE_TIME: ["2026-03-02T10:00:00Z"] * 2, SCORE: [0.1, 0.2]}))
    written = writer.close()

    assert "error" not in written, written
    assert written["rows"] == 2
    frame = _columns_only(path)
    assert list(frame[INFERENCE_ID]) == ["a", "b"]
    reference = tmp_path / "reference.parquet"
    other = late_labels.RecordWriter(str(reference), VERSION)
    other(pd.DataFrame({INFERENCE_ID: ["c"], INFERENCE_TIME: ["2026-03-02T11:00:00Z"], SCORE: [0.3]}))
    assert "error" not in other.close()
    assert pq.read_schema(path).remove_metadata().equals(pq.read_schema(reference).remove_metadata())
