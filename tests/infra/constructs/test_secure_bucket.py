"""SecureBucket, built in a bare stack: the storage baseline every lake bucket gets."""

from __future__ import annotations

import pytest
from aws_cdk import Duration, Environment, RemovalPolicy, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template

from mlops_loop.app_builder import new_app
from mlops_loop.constructs.secure_bucket import SecureBucket
from tests.support.cdk_outdirs import bare_outdir
from tests.support import iam_eval


def _bucket(**overrides) -> dict:
    """GIVEN a bare stack with a key and a log bucket WHEN a SecureBucket is added THEN its bucket's properties."""
    stack = Stack(new_app(bare_outdir()), "Bare", env=Environment(account="123456789012", region="eu-west-1"))
    logs = s3.Bucket.from_bucket_name(stack, "Logs", "access-logs-bucket")
    props = dict(
        encryption_key=kms.Key(stack, "Key"),
        access_logs_bucket=logs,
        bucket_name="shop-dev-raw-123456789012-eu-west-1",
        name_hint="raw",
        removal_policy=RemovalPolicy.RETAIN,
        noncurrent_version_expiration=Duration.days(30),
    )
    SecureBucket(stack, "Raw", **{**props, **overrides})
    template = Template.from_stack(stack)
    (bucket,) = template.find_resources("AWS::S3::Bucket").values()
    (policy,) = template.find_resources("AWS::S3::BucketPolicy").values()
    return {"bucket": bucket, "policy": policy}


def test_the_baseline_kms_versioning_private_logged_and_tls_only():
    made = _bucket()
    props = made["bucket"]["Properties"]
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms" and rule["BucketKeyEnabled"] is True
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True,
    }
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert props["LoggingConfiguration"] == {"DestinationBucketName": "access-logs-bucket", "LogFilePrefix": "raw/"}
    assert made["bucket"]["DeletionPolicy"] == "Retain"
    denies = [s for s in made["policy"]["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    conditions = [s["Condition"] for s in denies]
    assert {"Bool": {"aws:SecureTransport": "false"}} in conditions
    assert {"NumericLessThan": {"s3:TlsVersion": 1.2}} in conditions


DELETE_MARKERS = {"Id": "expired-delete-markers", "Status": "Enabled", "ExpiredObjectDeleteMarker": True}


def test_the_baseline_lifecycle_and_what_a_caller_adds():
    extra = s3.LifecycleRule(id="expire-scratch", prefix="scratch/", expiration=Duration.days(5))
    props = _bucket(expiration=Duration.days(90), infrequent_access_after=Duration.days(30),
                    extra_lifecycle_rules=[extra])["bucket"]["Properties"]
    rule, markers, scratch = props["LifecycleConfiguration"]["Rules"]
    assert rule["Id"] == "baseline" and rule["Status"] == "Enabled"
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
    assert rule["ExpirationInDays"] == 90
    assert rule["Transitions"] == [{"StorageClass": "STANDARD_IA", "TransitionInDays": 30}]
    # S3 refuses ExpiredObjectDeleteMarker beside expiration days in one rule: the marker clean-up is a rule of its own.
    assert markers == DELETE_MARKERS
    assert scratch == {"Id": "expire-scratch", "Status": "Enabled", "Prefix": "scratch/", "ExpirationInDays": 5}


def test_without_expiry_objects_are_kept_and_nothing_transitions():
    rule, markers = _bucket()["bucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert "ExpirationInDays" not in rule and "Transitions" not in rule
    assert markers == DELETE_MARKERS


def test_without_a_noncurrent_expiry_old_versions_are_kept():
    """``noncurrent_version_expiration=None``: every old version stays (a regulator's choice); markers that hide
    nothing are still removed (with every version kept, none ever hides nothing)."""
    rule, markers = _bucket(noncurrent_version_expiration=None)["bucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert rule == {"Id": "baseline", "Status": "Enabled", "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}}
    assert markers == DELETE_MARKERS


def _bucket_policy_decision(policy: dict, action: str, key: str, context: dict) -> str:
    """The bucket policy's say on a request by any principal: "Deny" when an explicit deny applies, else "none".

    The statements are evaluated with the offline IAM evaluator (principals dropped: each write-once
    statement names every principal, checked by the caller)."""
    arn = f"arn:aws:s3:::shop-dev-artifacts-123456789012-eu-west-1/{key}"
    for raw in policy["Properties"]["PolicyDocument"]["Statement"]:
        if raw["Effect"] != "Deny" or not str(raw.get("Sid", "")).startswith("WriteOnce"):
            continue
        statement = iam_eval.Statement.from_json(
            {k: v for k, v in raw.items() if k != "Principal"} | {"Resource": _resolved(raw["Resource"])}
        )
        if statement.matches(action, arn, {k.lower(): v for k, v in context.items()}):
            return "Deny"
    return "none"


def _resolved(resource):
    """The bucket ARN a Fn::Join over the bucket's GetAtt stands for (the test bucket's fixed name)."""
    parts = resource["Fn::Join"][1]
    return "".join("arn:aws:s3:::shop-dev-artifacts-123456789012-eu-west-1" if isinstance(p, dict) else p for p in parts)


def test_write_once_keys_take_only_a_create_if_absent_and_no_delete():
    """GIVEN a bucket with write-once keys WHEN requests reach its policy THEN below those keys only a
    PutObject with If-None-Match passes the policy (no plain or If-Match overwrite, no delete of an object
    or a version), for every principal, while writes elsewhere are untouched."""
    made = _bucket(bucket_name="shop-dev-artifacts-123456789012-eu-west-1", write_once_keys=("pipelines/*/registered/*",))
    statements = [s for s in made["policy"]["Properties"]["PolicyDocument"]["Statement"] if str(s.get("Sid", "")).startswith("WriteOnce")]
    assert len(statements) == 3 and all(s["Principal"] == {"AWS": "*"} for s in statements)
    sealed = "pipelines/churn/registered/" + "ab" * 32 + "/model.tar.gz"
    decide = lambda action, key, context=None: _bucket_policy_decision(made["policy"], action, key, context or {})  # noqa: E731
    assert decide("s3:PutObject", sealed, {"s3:if-none-match": "*"}) == "none"
    assert decide("s3:PutObject", sealed) == "Deny"
    assert decide("s3:PutObject", sealed, {"s3:if-none-match": "*", "s3:if-match": '"etag"'}) == "Deny"
    assert decide("s3:PutObject", sealed, {"s3:if-match": '"etag"'}) == "Deny"
    assert decide("s3:DeleteObject", sealed) == "Deny"
    assert decide("s3:DeleteObjectVersion", sealed) == "Deny"
    assert decide("s3:GetObject", sealed) == "none"
    # Training output, reports and the frozen test set stay ordinary keys.
    for key in ("pipelines/churn/abc123/train/job/output/model.tar.gz", "pipelines/churn/frozen-test/part.parquet"):
        assert decide("s3:PutObject", key) == "none" and decide("s3:DeleteObject", key) == "none"


def test_without_write_once_keys_the_policy_has_no_write_once_statement():
    made = _bucket()
    assert not [s for s in made["policy"]["Properties"]["PolicyDocument"]["Statement"] if str(s.get("Sid", "")).startswith("WriteOnce")]


def test_kept_keys_keep_every_version_for_every_principal_and_leave_writes_alone():
    """GIVEN a bucket with kept keys WHEN requests reach its policy THEN no principal may delete a version below them
    (an overwrite or a delete leaves the earlier bytes as an old version), while puts, deletes (a delete marker) and
    requests to other keys are left to the callers' own policies."""
    made = _bucket(bucket_name="shop-dev-artifacts-123456789012-eu-west-1", kept_keys=("pipelines/*/frozen-test/*",))
    (kept,) = [s for s in made["policy"]["Properties"]["PolicyDocument"]["Statement"] if s.get("Sid") == "KeepEveryVersion"]
    assert {k: v for k, v in kept.items() if k != "Resource"} == {
        "Sid": "KeepEveryVersion", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "s3:DeleteObjectVersion"}
    statement = iam_eval.Statement.from_json({k: v for k, v in kept.items() if k != "Principal"} | {"Resource": _resolved(kept["Resource"])})
    arn = "arn:aws:s3:::shop-dev-artifacts-123456789012-eu-west-1/"
    assert statement.matches("s3:DeleteObjectVersion", arn + "pipelines/churn/frozen-test/test.parquet", {})
    for action, key in (("s3:PutObject", "pipelines/churn/frozen-test/test.parquet"),
                        ("s3:DeleteObject", "pipelines/churn/frozen-test/test.parquet"),
                        ("s3:DeleteObjectVersion", "pipelines/churn/work/x/prepare/train/train.parquet")):
        assert not statement.matches(action, arn + key, {}), (action, key)


def test_without_kept_keys_the_policy_has_no_keep_statement():
    assert not [s for s in _bucket()["policy"]["Properties"]["PolicyDocument"]["Statement"] if s.get("Sid") == "KeepEveryVersion"]


@pytest.mark.parametrize("removal, deletion, replacement", [
    (RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE, "RetainExceptOnCreate", "Retain"),  # staging, prod
    (RemovalPolicy.RETAIN, "Retain", "Retain"),
])
def test_a_kept_bucket_keeps_its_policy_with_it(removal, deletion, replacement):
    """GIVEN a bucket its stack keeps (``removal``) WHEN the stack is deleted or the policy replaced THEN the policy (its
    TLS, write-once and keep-every-version guards) stays with the bucket: CloudFormation's default would delete it and
    leave the kept bucket unguarded."""
    made = _bucket(removal_policy=removal, write_once_keys=["sealed/*"], kept_keys=["models/*"])
    assert made["bucket"]["DeletionPolicy"] == deletion and made["bucket"]["UpdateReplacePolicy"] == replacement
    assert made["policy"]["DeletionPolicy"] == deletion
    assert made["policy"]["UpdateReplacePolicy"] == replacement


def test_a_destroyed_bucket_leaves_its_policy_to_cloudformations_default():
    """GIVEN a bucket deleted with its stack (dev) THEN its policy carries no deletion or replacement policy: deleted
    with the stack, as before."""
    made = _bucket(removal_policy=RemovalPolicy.DESTROY)
    assert made["bucket"]["DeletionPolicy"] == "Delete"
    assert "DeletionPolicy" not in made["policy"] and "UpdateReplacePolicy" not in made["policy"]
