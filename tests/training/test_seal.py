"""Sealing the model that passed the gate: the evaluate step writes the archive it judged once, to a
content-addressed key, and records the digests the registry, the deploy handler and serving check."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from pipeline_code.core import integrity
from pipeline_code.training import evaluate, seal
from pipeline_code.training.data_io import InputError
from tests.support.training import UNREAD_SHAP_ROWS

BUCKET = "mlops-loop-dev-artifacts"
LOCATION = f"s3://{BUCKET}/pipelines/churn/registered/"


def _archive(model_dir: str, destination: Path) -> Path:
    """The model directory tarred as SageMaker stores a training job's output."""
    destination.mkdir(parents=True, exist_ok=True)
    with tarfile.open(destination / "model.tar.gz", "w:gz") as tar:
        for path in sorted(Path(model_dir).iterdir()):
            tar.add(path, arcname=path.name)
    return destination


@pytest.fixture()
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name="eu-west-1")
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        yield client


def test_the_digests_of_an_archive_name_its_bytes_and_its_model_files(strong_model, tmp_path):
    mounted = _archive(strong_model, tmp_path / "input")
    found = seal.digests(str(mounted))
    archive = mounted / "model.tar.gz"
    assert found.sha256 == hashlib.sha256(archive.read_bytes()).hexdigest() and found.bytes == archive.stat().st_size
    model = Path(strong_model)
    assert found.model_sha256 == hashlib.sha256((model / "model.json").read_bytes() + (model / "feature_metadata.json").read_bytes()).hexdigest()
    # A model directory (the local run) has the model digest only; nothing there can be sealed.
    plain = seal.digests(strong_model)
    assert (plain.model_sha256, plain.sha256) == (found.model_sha256, None)
    # The content digest is the model's, whether it comes as a directory or inside its archive.
    assert plain.model_content_sha256 == found.model_content_sha256 == integrity.model_content_digest(strong_model)
    with pytest.raises(seal.SealError, match="only a model.tar.gz can be sealed"):
        seal.seal(plain, LOCATION)


def test_a_sealed_archive_is_written_once_with_its_checksum_and_a_second_seal_reuses_it(strong_model, tmp_path, s3):
    found = seal.digests(str(_archive(strong_model, tmp_path / "input")))

    first = seal.seal(found, LOCATION, s3_client=s3)
    again = seal.seal(found, LOCATION, s3_client=s3)

    key = f"pipelines/churn/registered/{found.sha256}/model.tar.gz"
    assert first.uri == again.uri == f"s3://{BUCKET}/{key}"
    assert (first.created, again.created) == (True, False)
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == Path(found.archive).read_bytes()
    assert [v["Key"] for v in s3.list_object_versions(Bucket=BUCKET).get("Versions", [])] == [key]
    assert first.to_dict() == {"uri": first.uri, "sha256": found.sha256, "model_sha256": found.model_sha256,
                               "bytes": found.bytes, "created": True, "model_content_sha256": found.model_content_sha256}


def test_a_sealed_key_holding_other_bytes_fails_the_step(strong_model, tmp_path, s3):
    found = seal.digests(str(_archive(strong_model, tmp_path / "input")))
    s3.put_object(Bucket=BUCKET, Key=f"pipelines/churn/registered/{found.sha256}/model.tar.gz", Body=b"something else")

    with pytest.raises(seal.SealError) as raised:
        seal.seal(found, LOCATION, s3_client=s3)

    other = hashlib.sha256(b"something else").hexdigest()
    assert str(raised.value) == (
        f"s3://{BUCKET}/pipelines/churn/registered/{found.sha256}/model.tar.gz already exists and holds sha256 {other}, "
        f"not {found.sha256}; a sealed key never changes"
    )


def test_an_archive_above_one_request_and_a_location_without_slash_are_refused(strong_model, tmp_path):
    found = seal.digests(str(_archive(strong_model, tmp_path / "input")))
    too_big = seal.Digests(model_sha256=found.model_sha256, sha256=found.sha256, archive=found.archive,
                           bytes=integrity.MAX_SEALED_BYTES + 1)
    with pytest.raises(seal.SealError, match=r"is 5368709121 bytes; a sealed archive is written in one request of at most 5368709120"):
        seal.seal(too_big, LOCATION)
    with pytest.raises(seal.SealError, match="seal location must end with '/'"):
        seal.seal(found, LOCATION.rstrip("/"))


def test_an_s3_error_other_than_an_existing_key_fails_the_step_naming_the_key(strong_model, tmp_path):
    found = seal.digests(str(_archive(strong_model, tmp_path / "input")))
    with mock_aws():
        client = boto3.client("s3", region_name="eu-west-1")  # no bucket
        with pytest.raises(seal.SealError, match=rf"sealing s3://{BUCKET}/pipelines/churn/registered/{found.sha256}/model.tar.gz failed: .*NoSuchBucket"):
            seal.seal(found, LOCATION, s3_client=client)


def test_a_local_seal_is_an_exclusive_copy_checked_on_reuse(strong_model, tmp_path):
    found = seal.digests(str(_archive(strong_model, tmp_path / "input")))
    location = f"{tmp_path / 'registered'}/"
    first, again = seal.seal(found, location), seal.seal(found, location)
    assert (first.created, again.created) == (True, False)
    Path(first.uri).write_bytes(b"changed")
    with pytest.raises(seal.SealError, match="it was changed after sealing"):
        seal.seal(found, location)


def test_digests_of_nothing_or_an_archive_without_the_model_files_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="no model at"):
        seal.digests(str(tmp_path))
    with tarfile.open(tmp_path / "model.tar.gz", "w:gz") as tar:
        (tmp_path / "readme.txt").write_text("no model")
        tar.add(tmp_path / "readme.txt", arcname="readme.txt")
    with pytest.raises(InputError, match=r"no model.json \+ feature_metadata.json inside the archive"):
        seal.digests(str(tmp_path))


def _evaluate(spec, gate, model_dir, test_dir, out, *extra):
    return evaluate.main(["--model-spec", spec.to_json(), "--model-dir", model_dir, "--test-dir", test_dir,
                          "--champion-dir", "", "--output-dir", str(out), "--shap-sample-rows", str(UNREAD_SHAP_ROWS), *gate.to_args(),
                          *extra])  # fmt: skip


def test_evaluate_seals_a_passed_challenger_and_reports_where(churn_spec, dev_gate, strong_model, prepared, tmp_path):
    """GIVEN the archive SageMaker mounts WHEN the challenger passes the gate with --seal-uri THEN the report's
    artifact block (what the register step reads) names the sealed copy and both digests."""
    mounted = _archive(strong_model, tmp_path / "input")
    location = f"{tmp_path / 'registered'}/"

    assert _evaluate(churn_spec, dev_gate, str(mounted), prepared["test"], tmp_path / "out", "--seal-uri", location) == 0

    report = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    artifact = report[integrity.ARTIFACT_KEY]
    expected = seal.digests(str(mounted))
    assert report["gate"]["passed"] is True
    assert artifact["sha256"] == expected.sha256 and artifact["model_sha256"] == expected.model_sha256
    assert artifact["model_content_sha256"] == expected.model_content_sha256  # the register step records it too
    assert artifact["uri"] == f"{tmp_path / 'registered'}/{expected.sha256}/model.tar.gz"
    assert Path(artifact["uri"]).read_bytes() == (mounted / "model.tar.gz").read_bytes()


def test_evaluate_seals_nothing_when_the_gate_fails(churn_spec, dev_gate, weak_model, strong_model, prepared, tmp_path):
    champion = _archive(strong_model, tmp_path / "champion")
    mounted = _archive(weak_model, tmp_path / "input")
    location = tmp_path / "registered"

    code = evaluate.main(["--model-spec", churn_spec.to_json(), "--model-dir", str(mounted), "--test-dir", prepared["test"],
                          "--champion-dir", str(champion), "--output-dir", str(tmp_path / "out"), *dev_gate.to_args(),
                          "--seal-uri", f"{location}/", "--shap-sample-rows", str(UNREAD_SHAP_ROWS)])  # fmt: skip

    report = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    assert code == 0 and report["gate"]["passed"] is False
    assert set(report[integrity.ARTIFACT_KEY]) == {"sha256", "model_sha256", "model_content_sha256"} and not location.exists()
