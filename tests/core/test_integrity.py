"""The integrity facts: sealed keys, digests, and S3's form of a sha256 checksum."""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import re

import boto3
import pytest
from moto import mock_aws

from pipeline_code.core import integrity

DIGEST = hashlib.sha256(b"archive").hexdigest()


def test_a_sealed_key_names_its_digest_and_only_such_a_key_gives_one_back():
    key = integrity.sealed_key(integrity.sealed_prefix("credit-risk"), DIGEST)
    assert key == f"pipelines/credit-risk/registered/{DIGEST}/model.tar.gz"
    assert integrity.digest_of_sealed_key(key) == DIGEST
    for other in (f"pipelines/credit-risk/run-1/train/{DIGEST}/model.tar.gz", f"pipelines/x/registered/{DIGEST.upper()}/model.tar.gz",
                  f"pipelines/x/registered/{DIGEST}/other.tar.gz", "model.tar.gz"):
        assert integrity.digest_of_sealed_key(other) is None, other
    with pytest.raises(ValueError, match="archive digest must be 64 lower-case hex digits"):
        integrity.sealed_key("p/", DIGEST[:-1])


def test_the_bucket_pattern_covers_every_models_sealed_prefix():
    assert integrity.SEALED_KEY_PATTERN == "pipelines/*/registered/*"
    assert integrity.sealed_prefix("churn").startswith(integrity.model_prefix("churn"))


def test_s3_checksums_convert_both_ways_and_composite_ones_are_not_digests():
    encoded = integrity.hex_to_base64(DIGEST)
    assert encoded == base64.b64encode(hashlib.sha256(b"archive").digest()).decode()
    assert integrity.base64_to_hex(encoded) == DIGEST
    assert integrity.base64_to_hex(f"{encoded}-3") is None  # a multipart object's checksum of checksums
    assert integrity.base64_to_hex("not base64!") is None and integrity.base64_to_hex("") is None
    assert integrity.base64_to_hex(base64.b64encode(b"short").decode()) is None


def test_the_model_digest_is_model_json_then_feature_metadata(tmp_path):
    (tmp_path / "model.json").write_bytes(b"booster")
    assert integrity.model_digest(str(tmp_path)) is None
    (tmp_path / "feature_metadata.json").write_bytes(b"meta")
    assert integrity.model_digest(str(tmp_path)) == hashlib.sha256(b"boostermeta").hexdigest()


def test_the_content_digest_leaves_out_when_and_how_a_run_went_and_nothing_else(tmp_path):
    """GIVEN a model whose metadata records its training time and the checkpoint it resumed from
    WHEN those change, a key is written in another order or with other spacing, or anything else changes
    THEN only the last changes the content digest, while the model digest changes with the training time."""
    (tmp_path / "model.json").write_bytes(b"booster")
    assert integrity.model_content_digest(str(tmp_path)) is None
    metadata = {"format": 1, "training": {"rounds_kept": 3, "trained_at": "2026-01-01T00:00:00+00:00",
                                          "resumed_from_round": None}}
    (tmp_path / "feature_metadata.json").write_text(json.dumps(metadata, indent=2))
    first, first_model = integrity.model_content_digest(str(tmp_path)), integrity.model_digest(str(tmp_path))
    canonical = json.dumps({"format": 1, "training": {"rounds_kept": 3}}, sort_keys=True, separators=(",", ":"))
    assert first == hashlib.sha256(b"7:booster" + canonical.encode()).hexdigest()

    again = {"training": {"resumed_from_epoch": 4, "trained_at": "2026-02-02T00:00:00+00:00", "rounds_kept": 3}, "format": 1}
    (tmp_path / "feature_metadata.json").write_text(json.dumps(again))
    assert integrity.model_content_digest(str(tmp_path)) == first
    assert integrity.model_digest(str(tmp_path)) != first_model

    (tmp_path / "feature_metadata.json").write_text(json.dumps({**again, "training": {"rounds_kept": 4}}))
    assert integrity.model_content_digest(str(tmp_path)) != first
    (tmp_path / "feature_metadata.json").write_text(json.dumps(metadata))
    (tmp_path / "model.json").write_bytes(b"booster2")
    assert integrity.model_content_digest(str(tmp_path)) != first


def test_a_stream_above_its_limit_is_refused(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x" * 10)
    with open(path, "rb") as handle:
        with pytest.raises(ValueError, match="larger than 9 bytes"):
            integrity.sha256_stream(handle, limit=9)
    assert integrity.sha256_file(str(path)) == hashlib.sha256(b"x" * 10).hexdigest()


def test_the_stored_sha256_is_the_checksum_s3_kept_else_the_bytes_read():
    with mock_aws():
        s3 = boto3.client("s3", region_name="eu-west-1")
        s3.create_bucket(Bucket="bucket-1", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        s3.put_object(Bucket="bucket-1", Key="with", Body=b"archive", ChecksumAlgorithm="SHA256")
        s3.put_object(Bucket="bucket-1", Key="without", Body=b"archive")
        reads = []
        s3.meta.events.register("before-call.s3.GetObject", lambda **_: reads.append(1))

        assert integrity.stored_sha256(s3, "bucket-1", "with") == DIGEST and not reads
        assert integrity.stored_sha256(s3, "bucket-1", "without") == DIGEST and reads == [1]



def test_a_content_digest_is_sha256_colon_hex_in_the_form_sagemaker_takes():
    """MetricsSource.ContentDigest's pattern is [Ss][Hh][Aa]256:[0-9a-fA-F]{64} (botocore's SageMaker model)."""
    import botocore.session

    shape = botocore.session.get_session().get_service_model("sagemaker").shape_for("MetricsSource")
    pattern = shape.members["ContentDigest"].metadata["pattern"]
    digest = integrity.content_digest("ab" * 32)
    assert re.fullmatch(pattern, digest)
    assert integrity.hex_of_content_digest(digest) == "ab" * 32
    assert integrity.hex_of_content_digest("SHA256:" + "AB" * 32) == "ab" * 32
    for other in (None, "", "ab" * 32, "md5:" + "ab" * 32, "sha256:" + "ab" * 31, 7):
        assert integrity.hex_of_content_digest(other) is None


def test_the_digests_file_names_each_document_by_its_stem(tmp_path):
    (tmp_path / "bias.json").write_bytes(b"{}")
    (tmp_path / "model_quality.json").write_bytes(b"[]")
    written = integrity.write_digests(str(tmp_path), ["bias.json", "model_quality.json"])
    assert written == {"bias": "sha256:" + hashlib.sha256(b"{}").hexdigest(),
                       "model_quality": "sha256:" + hashlib.sha256(b"[]").hexdigest()}
    assert json.loads((tmp_path / integrity.DIGESTS_FILE).read_text()) == written


def test_container_digest_covers_the_image_and_every_environment_value_in_any_order():
    """GIVEN one container definition WHEN its image or an environment value differs THEN the digest differs;
    the order of the environment and an absent environment ({}) do not change it."""
    from pipeline_code.core.integrity import container_digest

    base = container_digest("1.dkr.ecr.eu-west-1.amazonaws.com/xgb:1.7-1", {"A": "1", "B": "2"})
    assert base == container_digest("1.dkr.ecr.eu-west-1.amazonaws.com/xgb:1.7-1", {"B": "2", "A": "1"})
    assert base != container_digest("2.dkr.ecr.eu-west-1.amazonaws.com/xgb:1.7-1", {"A": "1", "B": "2"})
    assert base != container_digest("1.dkr.ecr.eu-west-1.amazonaws.com/xgb:1.7-1", {"A": "1", "B": "3"})
    assert container_digest("img", None) == container_digest("img", {}) != container_digest("img", {"": ""})
    assert len(base) == 64 and all(c in "0123456789abcdef" for c in base)


# --- the approval ledger's key layout and record format ---------------------------------------------------------


def test_a_ledger_key_files_a_record_under_its_model_and_version_in_utc_time_order():
    import datetime as dt

    from pipeline_code.core import integrity as i

    at = dt.datetime(2027, 1, 1, 1, 2, 3, 456789, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    key = i.ledger_key("credit-risk", 7, at, "PendingManualApproval", "AB12cd34")
    assert key == "approval-ledger/credit-risk/7/20270101T000203.456789Z-pending-manual-approval-ab12cd34.json"
    assert key.startswith(i.ledger_prefix("credit-risk", 7)) and i.ledger_prefix("credit-risk", 7).startswith(i.ledger_model_prefix("credit-risk"))
    assert fnmatch.fnmatch(key, i.LEDGER_KEY_PATTERN)
    assert i.ledger_key_time(key) == "2027-01-01T00:02:03.456789Z"
    assert i.ledger_key_time("approval-ledger/m/7/notes.txt") is None
    later = i.ledger_key("credit-risk", 7, at + dt.timedelta(microseconds=1), "Approved", "00")
    assert sorted([later, key]) == [key, later]


def test_a_packages_records_go_below_its_creation_time_so_a_re_created_version_never_shares_their_keys():
    """GIVEN v1 of a group's earlier life (created 2025) and v1 of the group created again (2026) WHEN each is recorded
    at the same instant with the same nonce THEN the keys differ (each below its package's prefix, inside the version's,
    which the audit lists and the write-once pattern covers); a package of unknown creation files as before."""
    import datetime as dt

    from pipeline_code.core import integrity as i

    at = dt.datetime(2027, 1, 1, tzinfo=dt.timezone.utc)
    old = i.ledger_key("churn", 1, at, "Approved", "ab12", "20250301T095900Z")
    new = i.ledger_key("churn", 1, at, "Approved", "ab12", "20260301T095907Z")
    assert old == "approval-ledger/churn/1/20250301T095900Z/20270101T000000.000000Z-approved-ab12.json"
    assert new == "approval-ledger/churn/1/20260301T095907Z/20270101T000000.000000Z-approved-ab12.json"
    assert i.ledger_package_prefix("churn", 1, "20260301T095907Z") == "approval-ledger/churn/1/20260301T095907Z/"
    assert all(k.startswith(i.ledger_prefix("churn", 1)) and fnmatch.fnmatch(k, i.LEDGER_KEY_PATTERN) for k in (old, new))
    assert i.ledger_key_time(new) == "2027-01-01T00:00:00.000000Z"
    assert i.ledger_key("churn", 1, at, "Approved", "ab12") == "approval-ledger/churn/1/20270101T000000.000000Z-approved-ab12.json"


@pytest.mark.parametrize(("record", "package"), [
    # written now: the package named outright
    ({"package_arn": "arn:p/1", "package_created": "20260301T095907Z", "package": {"CreationTime": "2020-01-01T00:00:00Z"}},
     ("arn:p/1", "20260301T095907Z")),
    # written before package_created existed: the package as the handler described it then
    ({"package_arn": "arn:p/1", "package": {"CreationTime": "2026-03-01T09:59:07.250000+00:00"}}, ("arn:p/1", "20260301T095907Z")),
    ({"event": {"detail": {"ModelPackageArn": "arn:p/1"}}, "package": {"CreationTime": "2026-03-01T09:59:07Z"}},
     ("arn:p/1", "20260301T095907Z")),
    # the package could not be described: which one it was cannot be told
    ({"package_arn": "arn:p/1", "package": {"error": "DescribeModelPackage: throttled"}}, ("arn:p/1", None)),
    ({"package_arn": None, "package": {"CreationTime": "not a time"}}, (None, None)),
])
def test_a_ledger_record_names_its_package_by_arn_and_creation_time(record, package):
    from pipeline_code.core import integrity as i

    assert i.ledger_record_package(record) == package


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"\xff", "not UTF-8 JSON"),
        (b"{", "not UTF-8 JSON"),
        (b"[]", "not a JSON object but list"),
        (b'{"schema": "other/1"}', "schema 'other/1', not 'mlops-loop/approval-ledger/1'"),
        (b'{"schema": "mlops-loop/approval-ledger/1", "recorded_at": "x"}', "field(s) group, model, version, trigger, package, decision missing"),
    ],
)
def test_a_ledger_record_that_is_not_one_says_why(body, problem):
    from pipeline_code.core import integrity as i

    with pytest.raises(ValueError, match=re.escape(problem)):
        i.parse_ledger_record(body)


def test_the_files_digest_is_of_names_and_bytes_and_not_of_their_order(tmp_path):
    """GIVEN a split's files (one nested) WHEN digested THEN it is the sha256 of {relative path: sha256} as canonical
    JSON: the same whatever order the files are given or were written in; another byte, another name, a file added
    or removed each give another digest; a digest that is not a sha256 is refused."""
    a, b = hashlib.sha256(b"rows a").hexdigest(), hashlib.sha256(b"rows b").hexdigest()
    expected = hashlib.sha256(json.dumps({"part/b.parquet": b, "train.parquet": a}, sort_keys=True,
                                         separators=(",", ":")).encode()).hexdigest()
    assert integrity.files_digest({"train.parquet": a, "part/b.parquet": b}) == expected
    assert integrity.files_digest({"part/b.parquet": b, "train.parquet": a}) == expected
    assert integrity.files_digest({"train.parquet": b, "part/b.parquet": a}) != expected
    assert integrity.files_digest({"other.parquet": a, "part/b.parquet": b}) != expected
    assert integrity.files_digest({"train.parquet": a}) != expected
    with pytest.raises(ValueError, match="train.parquet: digest must be 64 lower-case hex digits"):
        integrity.files_digest({"train.parquet": a.upper()})

    # written in another order, the directory gives the same digest
    for order in ((("train.parquet", b"rows a"), ("part/b.parquet", b"rows b")),
                  (("part/b.parquet", b"rows b"), ("train.parquet", b"rows a"))):
        directory = tmp_path / str(len(list(tmp_path.iterdir())))
        for name, body in order:
            (directory / name).parent.mkdir(parents=True, exist_ok=True)
            (directory / name).write_bytes(body)
        assert integrity.directory_digest(str(directory)) == expected


def test_the_content_digest_leaves_out_the_library_versions_a_run_recorded(tmp_path):
    """GIVEN a model's metadata with and without the training summary's ``libraries`` (recorded since versions were
    trained without it) THEN the content digest is the same: a rebuild of an older version under this code, or in
    another patch of the image, is compared on what it trained, not on where."""
    (tmp_path / "model.json").write_bytes(b"booster")
    before = {"format": 1, "training": {"rounds_kept": 3}}
    (tmp_path / "feature_metadata.json").write_text(json.dumps(before))
    first = integrity.model_content_digest(str(tmp_path))
    after = {"format": 1, "training": {"rounds_kept": 3, "libraries": {"python": "3.11.7", "numpy": "2.4.6"}}}
    (tmp_path / "feature_metadata.json").write_text(json.dumps(after))
    assert integrity.model_content_digest(str(tmp_path)) == first
