"""The multi-model endpoint helpers of the deploy handler: staging (moto S3), the smoke request read
from a real model.tar.gz, the smoke test's checks of the answer (a fake sagemaker-runtime client:
moto's InvokeEndpoint returns canned bodies, not the container's), and the endpoint status (moto).

The smoke request is also fed to the serving code's own parser (``pipeline_code.serving.records``)
to show that serving takes it as one precomputed record with every feature missing.
"""

from __future__ import annotations

import io
import json
import math
import os
import tarfile
from typing import Any, Dict, List, Optional

import boto3
import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sagemaker.models import sagemaker_backends

from pipeline_code.handlers import multi_model as mme
from tests.support.moto_clients import SharedClients
from tests.support.multi_model import (
    CHURN_FEATURES,
    ENDPOINT,
    INFERENCE,
    FakeRuntime,
    answer,
    create_mme_endpoint,
    model_archive,
    model_error,
)
from pipeline_code.core.contract import SMOKE_TEST_INFERENCE_ID

REGION = "eu-west-1"
ARTIFACTS = "mlops-loop-prod-artifacts"
PREFIX = f"mme/{ENDPOINT}/"


# --- fixtures -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared_clients() -> SharedClients:
    """The module's clients (tests/support/moto_clients.py): made once, not twice per test."""
    return SharedClients(REGION)


class Buckets:
    def __init__(self, clients: SharedClients) -> None:
        self.s3 = clients("s3")
        for bucket in (ARTIFACTS, INFERENCE):
            self.s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        self.key_id = clients("kms").create_key()["KeyMetadata"]["KeyId"]
        self.calls: List[str] = []
        self.s3.meta.events.register("before-call.s3.*", lambda model, **_: self.calls.append(model.name))

    def put_artifact(self, key: str, data: bytes) -> str:
        self.s3.put_object(Bucket=ARTIFACTS, Key=key, Body=data)
        return f"s3://{ARTIFACTS}/{key}"

    def stage(self, source: Optional[str], version: int = 3, **overrides: Any) -> mme.Staged:
        kwargs = dict(model="churn", version=version, source=source, bucket=INFERENCE, prefix=PREFIX, kms_key_id=self.key_id)
        kwargs.update(overrides)
        return mme.stage_artifact(self.s3, **kwargs)


@pytest.fixture()
def buckets(shared_clients):
    with mock_aws(), shared_clients.fresh() as clients:
        yield Buckets(clients)


class CountingBody:
    """A streaming body that counts the bytes handed out and whether it was closed."""

    def __init__(self, data: bytes) -> None:
        self.stream, self.read_bytes, self.closed = io.BytesIO(data), 0, False

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.read_bytes += len(data)
        return data

    def close(self) -> None:
        self.closed = True


class BodyS3:
    """An S3 client whose GetObject returns one :class:`CountingBody`."""

    def __init__(self, data: bytes) -> None:
        self.body = CountingBody(data)

    def get_object(self, **_: Any) -> Dict[str, Any]:
        return {"Body": self.body}


# --- target_model / model_data_url ----------------------------------------------------------------------


def test_the_target_model_is_relative_to_the_endpoint_prefix_and_one_per_version():
    assert mme.target_model("credit-risk", 12) == "credit-risk/v12.tar.gz"
    assert mme.target_model("churn", 1) != mme.target_model("churn", 2)


def test_the_artefact_is_the_first_containers_model_data_url():
    spec = {"InferenceSpecification": {"Containers": [{"Image": "i", "ModelDataUrl": "s3://a/m.tar.gz"}, {"ModelDataUrl": "s3://a/x"}]}}
    assert mme.model_data_url(spec) == "s3://a/m.tar.gz"
    assert mme.model_data_url({"InferenceSpecification": {"Containers": []}}) is None
    assert mme.model_data_url({"InferenceSpecification": {"Containers": [{"Image": "i"}]}}) is None
    assert mme.model_data_url({}) is None


# --- stage_artifact -------------------------------------------------------------------------------------


def test_staging_copies_the_artefact_to_its_key_with_sse_kms_and_records_its_source(buckets):
    source = buckets.put_artifact("churn/pipelines-abc/output/model.tar.gz", model_archive())

    staged = buckets.stage(source, package_arn="arn:aws:sagemaker:eu-west-1:1:model-package/g/3")

    assert (staged.key, staged.target_model, staged.copied) == (f"{PREFIX}churn/v3.tar.gz", "churn/v3.tar.gz", True)
    assert staged.uri == f"s3://{INFERENCE}/{PREFIX}churn/v3.tar.gz"
    head = buckets.s3.head_object(Bucket=INFERENCE, Key=staged.key)
    assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"].endswith(buckets.key_id)
    assert head["Metadata"] == {mme.SOURCE_METADATA: source, mme.PACKAGE_METADATA: "arn:aws:sagemaker:eu-west-1:1:model-package/g/3"}
    assert buckets.s3.get_object(Bucket=INFERENCE, Key=staged.key)["Body"].read() == model_archive()


def test_staging_an_already_staged_version_reuses_the_key_without_copying(buckets):
    source = buckets.put_artifact("churn/3/model.tar.gz", model_archive())
    buckets.stage(source)
    buckets.calls.clear()

    again = buckets.stage(source)

    assert again.copied is False and again.key == f"{PREFIX}churn/v3.tar.gz"
    # Existence by listing the exact key (allowed by the prefix-conditioned ListBucket), then its metadata.
    assert buckets.calls == ["ListObjectsV2", "HeadObject"]


def test_a_key_holding_another_artefact_is_refused_not_overwritten(buckets):
    first = buckets.put_artifact("churn/old/model.tar.gz", model_archive())
    other = buckets.put_artifact("churn/new/model.tar.gz", model_archive(features=["tenure_months"]))
    buckets.stage(first)

    with pytest.raises(mme.StagingError, match="already holds another artefact") as raised:
        buckets.stage(other)

    assert "v3 of churn" in str(raised.value) and other in str(raised.value)
    assert buckets.s3.get_object(Bucket=INFERENCE, Key=f"{PREFIX}churn/v3.tar.gz")["Body"].read() == model_archive()


def test_a_large_artefact_is_copied_in_parts_with_sse_kms(buckets):
    """Above the managed copy's 8 MiB threshold it becomes a multipart copy (CopyObject stops at 5 GB)."""
    data = os.urandom(9 * 1024 * 1024)
    source = buckets.put_artifact("churn/big/model.tar.gz", data)

    staged = buckets.stage(source)

    assert "UploadPartCopy" in buckets.calls and "CopyObject" not in buckets.calls
    head = buckets.s3.head_object(Bucket=INFERENCE, Key=staged.key)
    assert head["ServerSideEncryption"] == "aws:kms" and head["ContentLength"] == len(data)


@pytest.mark.parametrize(
    ("source", "cause"),
    [
        (None, "no inference container with a ModelDataUrl"),
        ("https://example.com/model.tar.gz", "not an s3:// URI"),
        ("s3://mlops-loop-prod-artifacts", "not an s3:// URI"),
        (f"s3://{ARTIFACTS}/churn/missing/model.tar.gz", "copy failed: 404"),
        ("s3://no-such-bucket-anywhere/model.tar.gz", "copy failed"),
    ],
)
def test_staging_failures_name_the_version_the_source_and_the_cause(buckets, source, cause):
    with pytest.raises(mme.StagingError, match=cause) as raised:
        buckets.stage(source, version=7)
    message = str(raised.value)
    assert "v7 of churn" in message and (source or "no ModelDataUrl") in message
    assert "Contents" not in buckets.s3.list_objects_v2(Bucket=INFERENCE)


def test_an_access_denied_on_the_target_is_a_staging_error(buckets):
    class Denied:
        def list_objects_v2(self, **_: Any) -> None:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Forbidden"}}, "ListObjectsV2")

    with pytest.raises(mme.StagingError, match="HeadObject on the target failed: AccessDenied"):
        mme.stage_artifact(Denied(), model="churn", version=2, source="s3://a/m.tar.gz", bucket=INFERENCE, prefix=PREFIX, kms_key_id="k")


# --- smoke_request --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["feature_metadata.json", "./feature_metadata.json"])
def test_the_smoke_request_holds_every_feature_as_null_and_the_smoke_inference_id(buckets, name):
    buckets.s3.put_object(Bucket=INFERENCE, Key="k.tar.gz", Body=model_archive(metadata_name=name))

    request = json.loads(mme.smoke_request(buckets.s3, INFERENCE, "k.tar.gz", model="churn"))

    assert request == {"instances": [{**{f: None for f in CHURN_FEATURES}, "inference_id": "mlops-loop-smoke-test"}]}


def test_serving_reads_the_smoke_request_as_one_precomputed_record_with_every_feature_missing(buckets):
    """The serving code's own parser: the record is 'features' (not raw), all missing, its id echoed."""
    from mlops_cli.local.run_loop import load_config
    from tests.support.configs import SAMPLE_CONFIG
    from pipeline_code.serving import records, request_body
    from pipeline_code.training.spec import parse_model_spec

    spec = parse_model_spec(load_config(str(SAMPLE_CONFIG), "dev")["models"]["churn"])
    buckets.s3.put_object(Bucket=INFERENCE, Key="k.tar.gz", Body=model_archive(features=spec.features))
    body = mme.smoke_request(buckets.s3, INFERENCE, "k.tar.gz")

    parsed = request_body.parse_request(body, "application/json")
    rows = records.feature_rows(records.FeatureContract.create(spec.catalog_dataset, spec.features), parsed.records)

    assert rows.sources == [records.SOURCE_FEATURES]
    assert rows.inference_ids == [SMOKE_TEST_INFERENCE_ID]
    assert list(rows.frame.columns[: len(spec.features)]) == list(spec.features)
    assert rows.frame.iloc[0].isna().all()
    assert len(body) < 400  # tiny: one record of nulls


def test_reading_stops_at_the_metadata_and_closes_the_stream():
    """The booster after the metadata is never downloaded."""
    padding = os.urandom(2 * 1024 * 1024)  # incompressible
    metadata = ("./feature_metadata.json", json.dumps({"model": "churn", "feature_order": ["a"]}).encode())
    data = model_archive(metadata_name=None, before=[metadata])
    data = _with_trailing_member(data, padding)
    s3 = BodyS3(data)

    mme.smoke_request(s3, INFERENCE, "k.tar.gz")

    assert s3.body.closed and s3.body.read_bytes < 1024 * 1024 < len(data)


def test_metadata_beyond_the_cap_is_not_searched_for():
    data = model_archive(before=[("./code/blob.bin", os.urandom(3 * 1024 * 1024))])
    s3 = BodyS3(data)

    with pytest.raises(mme.StagingError, match=r"feature_metadata.json not found in the first 1 MiB"):
        mme.smoke_request(s3, INFERENCE, "k.tar.gz", max_bytes=1024 * 1024)

    assert s3.body.read_bytes <= 1024 * 1024 and s3.body.closed


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (model_archive(metadata_name=None), "feature_metadata.json not found in s3://"),
        (model_archive(metadata_name="./code/feature_metadata.json"), "feature_metadata.json not found in s3://"),
        (model_archive(metadata={"model": "churn"}), "has no feature_order"),
        (model_archive(metadata={"model": "churn", "feature_order": []}), "has no feature_order"),
        (model_archive(metadata={"model": "churn", "feature_order": ["a", 3]}), "has no feature_order"),
        (model_archive(model="credit-risk"), "describes model 'credit-risk', not 'churn'"),
        (b"PK\x03\x04 a zip, not a tarball", "as a gzipped tar archive: ReadError: not a gzip file"),
    ],
)
def test_an_archive_without_usable_metadata_is_a_staging_error(buckets, data, problem):
    buckets.s3.put_object(Bucket=INFERENCE, Key="k.tar.gz", Body=data)
    with pytest.raises(mme.StagingError, match=problem):
        mme.smoke_request(buckets.s3, INFERENCE, "k.tar.gz", model="churn")


def test_metadata_that_is_not_json_is_a_staging_error(buckets):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("feature_metadata.json")
        info.size = 5
        archive.addfile(info, io.BytesIO(b"{nope"))
    buckets.s3.put_object(Bucket=INFERENCE, Key="k.tar.gz", Body=buffer.getvalue())
    with pytest.raises(mme.StagingError, match="is not JSON"):
        mme.smoke_request(buckets.s3, INFERENCE, "k.tar.gz")


def test_a_missing_staged_object_is_a_staging_error(buckets):
    with pytest.raises(mme.StagingError, match=f"cannot read s3://{INFERENCE}/absent.tar.gz: NoSuchKey"):
        mme.smoke_request(buckets.s3, INFERENCE, "absent.tar.gz")


# --- smoke_test -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("score", [0, 0.31, 1, 1.0])
def test_a_single_finite_score_in_the_unit_interval_passes(score):
    runtime = FakeRuntime(answer(score))

    answer_ = mme.smoke_test(runtime, ENDPOINT, "churn/v3.tar.gz", b'{"instances": []}')

    assert answer_ == mme.SmokeAnswer("binary_classification", score=float(score))
    assert answer_.summary() == f"score {float(score):.6g}"

    assert runtime.calls == [
        {
            "EndpointName": ENDPOINT,
            "TargetModel": "churn/v3.tar.gz",
            "ContentType": "application/json",
            "Accept": "application/json",
            "Body": b'{"instances": []}',
        }
    ]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (answer(math.nan), "'score' must be a finite number in \\[0, 1\\], got nan"),
        (answer(math.inf), "got inf"),
        (answer(1.5), "got 1.5"),
        (answer(-0.01), "got -0.01"),
        (answer("0.5"), "got '0.5'"),
        (answer(True), "got True"),
        (answer(None), "got None"),
        (answer(count=2), "exactly 1 entry, got 2"),
        (answer(count=0), "exactly 1 entry, got 0"),
        (b'{"model": {"name": "churn"}}', "exactly 1 entry, got no"),
        (b'{"predictions": ["0.3"]}', "got None"),
        (b"[0.3]", "exactly 1 entry, got no"),
        (b"0.31\n", "exactly 1 entry, got no"),
        (b"<html>" + b"x" * 1000 + b"</html>", "the answer is not JSON: '<html>x"),
    ],
)
def test_an_answer_outside_the_contract_fails_naming_endpoint_and_target(body, problem):
    with pytest.raises(mme.SmokeTestError, match=problem) as raised:
        mme.smoke_test(FakeRuntime(body), ENDPOINT, "churn/v3.tar.gz", b"{}")
    message = str(raised.value)
    assert message.startswith(f"smoke test of churn/v3.tar.gz on {ENDPOINT} failed: ")
    assert "x" * 301 not in message  # the body preview is cut at 300 characters


def _typed_answer(prediction: Dict[str, Any]) -> bytes:
    """The serving container's JSON answer holding one prediction of a multiclass or regression model."""
    return json.dumps({"predictions": [prediction], "model": {"name": "plan", "version": None}}).encode()


PLAN = {"label": "premium", "score": 0.52, "probabilities": {"basic": 0.08, "standard": 0.4, "premium": 0.52},
        "inference_id": SMOKE_TEST_INFERENCE_ID}


@pytest.mark.parametrize(
    ("prediction", "expected", "summary"),
    [
        (PLAN, mme.SmokeAnswer("multiclass_classification", score=0.52, label="premium"), "label 'premium', score 0.52"),
        ({**PLAN, "label": "basic", "score": 0.08}, mme.SmokeAnswer("multiclass_classification", score=0.08, label="basic"),
         "label 'basic', score 0.08"),
        ({"label": "3", "score": 1, "probabilities": {"3": 1, "4": 0, "5": 0}},
         mme.SmokeAnswer("multiclass_classification", score=1.0, label="3"), "label '3', score 1"),
        ({"value": 41.7, "inference_id": SMOKE_TEST_INFERENCE_ID}, mme.SmokeAnswer("regression", value=41.7), "value 41.7"),
        ({"value": -3}, mme.SmokeAnswer("regression", value=-3.0), "value -3"),
        ({"value": 0.0}, mme.SmokeAnswer("regression", value=0.0), "value 0"),
    ],
    ids=["multiclass", "multiclass-label-not-the-first", "multiclass-integer-classes", "regression", "regression-negative",
         "regression-zero"],
)
def test_a_multiclass_or_regression_answer_of_the_contracts_shape_passes(prediction, expected, summary):
    """GIVEN the one prediction of a multiclass / regression model WHEN smoke-tested THEN it passes and is summarised."""
    runtime = FakeRuntime(_typed_answer(prediction))

    answer_ = mme.smoke_test(runtime, ENDPOINT, "plan/v3.tar.gz", b"{}")

    assert answer_ == expected and answer_.summary() == summary
    assert len(runtime.calls) == 1


@pytest.mark.parametrize(
    ("prediction", "problem"),
    [
        ({**PLAN, "probabilities": {}}, "'probabilities' must be an object of class name -> probability, got {}"),
        ({**PLAN, "probabilities": [0.08, 0.4, 0.52]},
         "'probabilities' must be an object of class name -> probability, got [0.08, 0.4, 0.52]"),
        ({**PLAN, "probabilities": {"basic": 0.08, "standard": math.nan, "premium": 0.52}},
         "'probabilities' must be finite numbers in [0, 1], got nan for class 'standard'"),
        ({**PLAN, "probabilities": {"basic": -0.1, "standard": 0.58, "premium": 0.52}},
         "'probabilities' must be finite numbers in [0, 1], got -0.1 for class 'basic'"),
        ({**PLAN, "probabilities": {"basic": "0.08", "standard": 0.4, "premium": 0.52}},
         "'probabilities' must be finite numbers in [0, 1], got '0.08' for class 'basic'"),
        ({**PLAN, "probabilities": {"basic": True, "standard": 0.4, "premium": 0.52}},
         "'probabilities' must be finite numbers in [0, 1], got True for class 'basic'"),
        ({**PLAN, "probabilities": {"basic": 0.5, "standard": 0.4, "premium": 0.52}}, "'probabilities' must sum to 1, got 1.42"),
        ({**PLAN, "label": "gold"},
         "'label' must be one of the classes of 'probabilities' ['basic', 'standard', 'premium'], got 'gold'"),
        ({**PLAN, "label": None},
         "'label' must be one of the classes of 'probabilities' ['basic', 'standard', 'premium'], got None"),
        ({**PLAN, "score": 0.4}, "'score' must be the probability of 'label' 'premium' (0.52), got 0.4"),
        ({**PLAN, "score": math.inf}, "'score' must be the probability of 'label' 'premium' (0.52), got inf"),
        ({"value": math.nan}, "'value' must be a finite number, got nan"),
        ({"value": -math.inf}, "'value' must be a finite number, got -inf"),
        ({"value": "41.7"}, "'value' must be a finite number, got '41.7'"),
        ({"value": None}, "'value' must be a finite number, got None"),
        ({"value": False}, "'value' must be a finite number, got False"),
        ({"label": "premium"}, "'score' must be a finite number in [0, 1], got None"),
        ({"value": 41.7, "score": 2.0}, "'score' must be a finite number in [0, 1], got 2.0"),
    ],
    ids=["no-probabilities", "probabilities-a-list", "probability-nan", "probability-negative", "probability-text",
         "probability-boolean", "probabilities-sum-1.42", "label-not-a-class", "label-missing", "score-not-the-labels",
         "score-infinite", "value-nan", "value-minus-inf", "value-text", "value-null", "value-boolean",
         "label-without-probabilities", "value-with-a-bad-score"],
)
def test_a_multiclass_or_regression_answer_outside_the_contract_fails_naming_endpoint_and_target(prediction, problem):
    """GIVEN a malformed multiclass / regression prediction WHEN smoke-tested THEN it fails with the exact cause and the body."""
    body = _typed_answer(prediction)

    with pytest.raises(mme.SmokeTestError) as raised:
        mme.smoke_test(FakeRuntime(body), ENDPOINT, "plan/v3.tar.gz", b"{}")

    preview = body.decode()[:300]
    assert str(raised.value) == f"smoke test of plan/v3.tar.gz on {ENDPOINT} failed: {problem}: {preview!r}"


def test_a_model_error_fails_with_the_containers_message_cut_to_300_characters():
    runtime = FakeRuntime(error=model_error("ModelLoadError: cannot load the model " + "y" * 1000))

    with pytest.raises(mme.SmokeTestError, match="ModelError") as raised:
        mme.smoke_test(runtime, ENDPOINT, "churn/v3.tar.gz", b"{}")

    message = str(raised.value)
    assert f"on {ENDPOINT}" in message and "model answered 500: ModelLoadError: cannot load" in message
    assert "y" * 300 not in message and len(runtime.calls) == 1


def test_a_timeout_fails_the_smoke_test():
    runtime = FakeRuntime(error=ReadTimeoutError(endpoint_url="https://runtime.sagemaker.eu-west-1.amazonaws.com"))
    with pytest.raises(mme.SmokeTestError, match="ReadTimeoutError"):
        mme.smoke_test(runtime, ENDPOINT, "churn/v3.tar.gz", b"{}")


# --- endpoint_status ------------------------------------------------------------------------------------


def test_endpoint_status_is_none_for_a_missing_endpoint_and_the_status_otherwise():
    with mock_aws():
        sagemaker = boto3.client("sagemaker", region_name=REGION)
        assert mme.endpoint_status(sagemaker, ENDPOINT) is None
        create_mme_endpoint(sagemaker)
        assert mme.endpoint_status(sagemaker, ENDPOINT) == "InService"
        sagemaker_backends[DEFAULT_ACCOUNT_ID][REGION].endpoints[ENDPOINT].endpoint_status = "Updating"
        assert mme.endpoint_status(sagemaker, ENDPOINT) == "Updating"


def test_endpoint_status_raises_other_errors():
    class Denied:
        def describe_endpoint(self, **_: Any) -> None:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}, "DescribeEndpoint")

    with pytest.raises(ClientError, match="not allowed"):
        mme.endpoint_status(Denied(), ENDPOINT)


def _with_trailing_member(data: bytes, payload: bytes) -> bytes:
    """``data`` (a tar.gz) re-written with one more member at the end."""
    members = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for member in archive:
            members.append((member, archive.extractfile(member).read()))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for member, content in members:
            archive.addfile(member, io.BytesIO(content))
        info = tarfile.TarInfo("./model.json.big")
        info.size = len(payload)
        archive.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()
