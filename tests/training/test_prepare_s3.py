"""Prepare reads the frozen test set from S3 itself (as in SageMaker), against moto."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from pipeline_code.training import prepare

BUCKET = "mlops-loop-dev-artifacts-111111111111-eu-west-1"
PREFIX = "pipelines/churn/frozen-test/"


@pytest.fixture()
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name="eu-west-1")
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        yield client


def _run(churn_spec, churn_inputs, out: Path) -> int:
    return prepare.main(
        [
            "--model-spec", churn_spec.to_json(),
            "--features-dir", churn_inputs["features"],
            "--labels-dir", churn_inputs["labels"],
            "--frozen-test-dir", f"s3://{BUCKET}/{PREFIX}",
            "--output-dir", str(out),
        ]
    )  # fmt: skip


def test_given_an_empty_frozen_test_prefix_then_a_new_test_set_is_created(s3, churn_spec, churn_inputs, tmp_path):
    """GIVEN the first run (nothing under the prefix) WHEN prepare runs THEN it creates a test set."""
    assert _run(churn_spec, churn_inputs, tmp_path / "first") == 0
    assert (tmp_path / "first" / "test" / "manifest.json").exists()


def test_given_a_frozen_test_set_in_s3_then_it_is_reused_byte_identically(s3, churn_spec, churn_inputs, prepared, tmp_path):
    """GIVEN a frozen test set uploaded under the prefix (as SageMaker does after the first run)
    WHEN prepare runs with the s3:// location THEN the test output is that set, byte for byte."""
    frozen = Path(prepared["test"])
    for name in ("test.parquet", "manifest.json"):
        s3.upload_file(str(frozen / name), BUCKET, PREFIX + name)
    s3.put_object(Bucket=BUCKET, Key="pipelines/churn/frozen-test-other/ignored.txt", Body=b"sibling prefix")
    assert _run(churn_spec, churn_inputs, tmp_path / "second") == 0
    for name in ("test.parquet", "manifest.json"):
        assert (tmp_path / "second" / "test" / name).read_bytes() == (frozen / name).read_bytes()


def test_a_local_directory_is_used_as_is(tmp_path):
    with prepare._local_frozen_test_dir(str(tmp_path)) as local:
        assert local == str(tmp_path)
