"""DataLake, built in a bare stack: one key, six fixed-name buckets, their retention, and the names S3 would refuse."""

from __future__ import annotations

import re
from typing import Any, Optional

import pytest
from aws_cdk import Environment, RemovalPolicy, Stack
from aws_cdk.assertions import Template

from mlops_loop.app_builder import new_app
from mlops_loop.constructs.data_lake import GLUE_TEMP_EXPIRATION_DAYS, DataLake
from pipeline_code.core.contract import INFERENCE_RECORDS, INFERENCE_TRAFFIC, inference_prefix
from pipeline_code.core.integrity import RUN_REPORT_SEGMENTS, frozen_test_prefix, model_prefix, sealed_prefix, work_prefix
from tests.support.built_stack import acknowledged
from tests.support.cdk_outdirs import bare_outdir

ACCOUNT, REGION = "123456789012", "eu-west-1"
ENV = Environment(account=ACCOUNT, region=REGION)
PREFIX = "shop-dev"
KINDS = ("raw", "curated", "features", "artifacts", "inference", "access-logs")
# The five data buckets (attribute -> kind); access logs are the sixth, holding only request logs.
DATA_BUCKETS = {"raw_bucket": "raw", "curated_bucket": "curated", "features_bucket": "features",
                "artifacts_bucket": "artifacts", "inference_bucket": "inference"}
# Any model names: the lake makes a rule per model it is given, whatever the line-up.
MODELS = ("alpha", "beta-two")
BASELINE_UPLOADS = {"AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}}


def _name(kind: str, prefix: str = PREFIX) -> str:
    return f"{prefix}-{kind}-{ACCOUNT}-{REGION}"


def _lake(stack: Optional[Stack] = None, **overrides: Any) -> tuple[Stack, DataLake]:
    """GIVEN a bare stack WHEN a DataLake is added with the given retention (dev-like defaults) THEN the stack and the lake."""
    stack = stack or Stack(new_app(bare_outdir()), "Bare", env=ENV)
    props: dict[str, Any] = dict(
        name_prefix=PREFIX,
        removal_policy=RemovalPolicy.DESTROY,
        raw_expiration_days=30,
        curated_infrequent_access_days=60,
        noncurrent_version_expiration_days=7,
        access_log_expiration_days=14,
        inference_expiration_days=400,
        rewritten_noncurrent_days=2,
        pipeline_work_expiration_days=400,
        models=MODELS,
    )
    props.update(overrides)
    return stack, DataLake(stack, "Lake", **props)


def _buckets(stack: Stack) -> dict[str, dict]:
    """The stack's buckets by BucketName."""
    return {b["Properties"]["BucketName"]: b for b in Template.from_stack(stack).find_resources("AWS::S3::Bucket").values()}


def _rule(bucket: dict) -> dict:
    (rule,) = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    return rule


def _rules(bucket: dict) -> dict[str, dict]:
    """A bucket's lifecycle rules by Id (without the Id and the Enabled status every rule has)."""
    rules = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    assert {r["Status"] for r in rules} == {"Enabled"}
    return {r["Id"]: {k: v for k, v in r.items() if k not in ("Id", "Status")} for r in rules}


def _lake_rules(stack: Stack) -> dict[str, dict[str, dict]]:
    buckets = _buckets(stack)
    return {kind: _rules(buckets[_name(kind)]) for kind in DATA_BUCKETS.values()}


def _key_id(stack: Stack, lake: DataLake) -> str:
    return stack.get_logical_id(lake.key.node.default_child)


@pytest.fixture(scope="module")
def built() -> tuple[Stack, DataLake, dict[str, dict]]:
    stack, lake = _lake()
    return stack, lake, _buckets(stack)


# ------------------------------------------------------------------ names
def test_six_buckets_get_fixed_names_from_prefix_kind_account_and_region(built):
    _, lake, buckets = built
    assert lake.bucket_names == {kind: _name(kind) for kind in KINDS}
    assert set(buckets) == {_name(kind) for kind in KINDS}


def test_each_bucket_attribute_is_the_bucket_of_its_kind(built):
    stack, lake, _ = built
    template = Template.from_stack(stack).to_json()["Resources"]
    for attribute, kind in {**DATA_BUCKETS, "access_logs_bucket": "access-logs"}.items():
        logical_id = stack.get_logical_id(getattr(lake, attribute).node.default_child)
        assert template[logical_id]["Properties"]["BucketName"] == _name(kind), attribute


# ------------------------------------------------------------------ the key
def test_the_key_rotates_has_the_data_alias_and_lets_only_this_accounts_log_groups_use_it(built):
    stack, lake, _ = built
    template = Template.from_stack(stack)
    (key,) = template.find_resources("AWS::KMS::Key").values()
    props = key["Properties"]
    assert props["EnableKeyRotation"] is True and props["PendingWindowInDays"] == 30
    assert props["Description"] == "shop-dev: encrypts the data lake, Feature Store, Glue jobs and job logs"
    (alias,) = template.find_resources("AWS::KMS::Alias").values()
    assert alias["Properties"]["AliasName"] == "alias/shop-dev/data"
    named = {s["Sid"]: s for s in props["KeyPolicy"]["Statement"] if "Sid" in s}
    # No publisher services: only CloudWatch Logs (Glue's encrypted job logs) besides the account itself, and
    # service_key's Deny of a deletion window shorter than 30 days.
    assert list(named) == ["DenyDeletionWithinThirtyDays", "AllowCloudWatchLogsOfThisAccount"]
    logs = named["AllowCloudWatchLogsOfThisAccount"]
    assert logs["Principal"] == {"Service": f"logs.{REGION}.amazonaws.com"}
    assert logs["Condition"] == {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:{REGION}:{ACCOUNT}:*"}}


def test_the_five_data_buckets_are_encrypted_with_the_lake_key_and_log_to_the_access_log_bucket(built):
    stack, lake, buckets = built
    key_arn = {"Fn::GetAtt": [_key_id(stack, lake), "Arn"]}
    logs_ref = {"Ref": stack.get_logical_id(lake.access_logs_bucket.node.default_child)}
    for kind in DATA_BUCKETS.values():
        props = buckets[_name(kind)]["Properties"]
        (encryption,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert encryption == {"BucketKeyEnabled": True,
                              "ServerSideEncryptionByDefault": {"KMSMasterKeyID": key_arn, "SSEAlgorithm": "aws:kms"}}, kind
        assert props["LoggingConfiguration"] == {"DestinationBucketName": logs_ref, "LogFilePrefix": f"{kind}/"}, kind
    assert lake.key is lake.raw_bucket.encryption_key


def test_the_access_log_bucket_is_sse_s3_not_logged_itself_and_expires_its_logs(built):
    """S3 log delivery accepts only SSE-S3 on its target; logging the target to itself would loop."""
    _, _, buckets = built
    props = buckets[_name("access-logs")]["Properties"]
    (encryption,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption == {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    assert "LoggingConfiguration" not in props
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True,
    }
    assert _rule(buckets[_name("access-logs")]) == {
        "Id": "expire-logs", "Status": "Enabled", "ExpirationInDays": 14,
        "NoncurrentVersionExpiration": {"NoncurrentDays": 1}, "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
    }


def test_the_access_log_bucket_acknowledges_exactly_its_logging_and_encryption_findings(built):
    stack, lake, _ = built
    rules_by_path = {
        c.node.path: sorted(acknowledged(c)) for c in stack.node.find_all()
    }
    assert {path: rules for path, rules in rules_by_path.items() if rules} == {
        "Bare/Lake": ["NIST.800.53.R5-S3BucketReplicationEnabled"],
        "Bare/Lake/AccessLogs": ["AwsSolutions-S1", "NIST.800.53.R5-S3BucketLoggingEnabled",
                                 "NIST.800.53.R5-S3DefaultEncryptionKMS"],
    }


# ------------------------------------------------------------------ retention
def test_every_data_bucket_expires_old_versions_and_cleans_up_delete_markers(built):
    """A deletion in a versioned bucket leaves a delete marker; once the version behind it expires, the marker is
    removed (a rule of its own: S3 refuses ExpiredObjectDeleteMarker beside expiration days)."""
    stack, _, _ = built
    rules = _lake_rules(stack)
    for kind, by_id in rules.items():
        assert by_id["expired-delete-markers"] == {"ExpiredObjectDeleteMarker": True}, kind
        assert list(by_id)[:2] == ["baseline", "expired-delete-markers"], kind
        assert by_id["baseline"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}, kind
    noncurrent = {kind: by_id["baseline"].get("NoncurrentVersionExpiration") for kind, by_id in rules.items()}
    # Curated data is rewritten each night under new names: its old versions go after the short window. The artifacts
    # and inference buckets hold evidence whose every version is kept: their old versions expire prefix by prefix.
    assert noncurrent == {"raw": {"NoncurrentDays": 7}, "curated": {"NoncurrentDays": 2}, "features": {"NoncurrentDays": 7},
                          "artifacts": None, "inference": None}


def test_raw_expires_and_curated_moves_to_infrequent_access_whole_bucket(built):
    stack, _, _ = built
    rules = _lake_rules(stack)
    assert rules["raw"] == {"baseline": {**BASELINE_UPLOADS, "ExpirationInDays": 30,
                                         "NoncurrentVersionExpiration": {"NoncurrentDays": 7}},
                            "expired-delete-markers": {"ExpiredObjectDeleteMarker": True}}
    assert rules["curated"] == {"baseline": {**BASELINE_UPLOADS, "NoncurrentVersionExpiration": {"NoncurrentDays": 2},
                                             "Transitions": [{"StorageClass": "STANDARD_IA", "TransitionInDays": 60}]},
                                "expired-delete-markers": {"ExpiredObjectDeleteMarker": True},
                                "expire-quarantine": {"Prefix": "_quarantine/", "ExpirationInDays": 30,
                                                      "NoncurrentVersionExpiration": {"NoncurrentDays": 2}}}
    # Nothing else expires a current object bucket-wide.
    assert [k for k, by_id in rules.items() if "ExpirationInDays" in by_id["baseline"]] == ["raw"]


def test_quarantined_rows_and_failed_puts_expire_with_the_raw_data_they_copy(built):
    """A quarantined row is its whole raw row and source file, a failed put a record's id and features; nothing reads
    either back, so neither outlives raw: the same days, old versions as their bucket keeps others."""
    stack, _, _ = built
    rules = _lake_rules(stack)
    assert rules["curated"]["expire-quarantine"] == {
        "Prefix": "_quarantine/", "ExpirationInDays": 30, "NoncurrentVersionExpiration": {"NoncurrentDays": 2}}
    assert rules["features"]["expire-ingest-failures"] == {
        "Prefix": "_ingest-failures/", "ExpirationInDays": 30, "NoncurrentVersionExpiration": {"NoncurrentDays": 7}}
    assert list(rules["features"]) == ["baseline", "expired-delete-markers", "rewritten-snapshots", "expire-ingest-failures"]


def test_quarantine_and_failed_puts_are_kept_while_raw_is():
    """``raw_expiration_days=None`` keeps raw, and with it its copies (their old versions still go after the window)."""
    stack, _ = _lake(raw_expiration_days=None)
    rules = _lake_rules(stack)
    assert "expire-quarantine" not in rules["curated"] and "expire-ingest-failures" not in rules["features"]


def test_feature_snapshots_keep_old_versions_only_the_rewritten_window(built):
    """The feature job replaces snapshots/ whole each run; the offline store and the ingestion state keep the
    bucket's window (S3 honours the shorter of two overlapping expirations)."""
    stack, _, _ = built
    assert _lake_rules(stack)["features"]["rewritten-snapshots"] == {
        "Prefix": "snapshots/", "NoncurrentVersionExpiration": {"NoncurrentDays": 2}}


def test_each_models_pipeline_working_data_and_glue_temp_files_expire(built):
    stack, _, _ = built
    artifacts = _lake_rules(stack)["artifacts"]
    assert list(artifacts) == ["baseline", "expired-delete-markers", "expire-work-alpha", "expire-work-beta-two",
                               "expire-glue-temp", "old-versions-etl-runs", "old-versions-mme"]
    assert artifacts["old-versions-etl-runs"] == {"Prefix": "etl-runs/", "NoncurrentVersionExpiration": {"NoncurrentDays": 7}}
    assert artifacts["old-versions-mme"] == {"Prefix": "mme/", "NoncurrentVersionExpiration": {"NoncurrentDays": 7}}
    for model in MODELS:
        assert artifacts[f"expire-work-{model}"] == {
            "Prefix": f"pipelines/{model}/work/", "ExpirationInDays": 400,
            "NoncurrentVersionExpiration": {"NoncurrentDays": 7}}
    assert artifacts["expire-glue-temp"] == {"Prefix": "glue-temp/", "ExpirationInDays": GLUE_TEMP_EXPIRATION_DAYS,
                                             "NoncurrentVersionExpiration": {"NoncurrentDays": 1}}


def test_no_artifacts_rule_reaches_sealed_models_the_frozen_test_set_or_what_a_version_points_at(built):
    """Sealed archives, the frozen test set and a run's reports (pipelines/<model>/<execution id>/) are kept, and so is
    every old version of them: every rule that expires objects or old versions has a prefix, a model's work/ prefix or
    another top-level one, and nothing else in the model's prefix starts with it."""
    stack, _, _ = built
    artifacts = _lake_rules(stack)["artifacts"].values()
    removing = [r for r in artifacts if "ExpirationInDays" in r or "NoncurrentVersionExpiration" in r]
    assert all("Prefix" in r for r in removing)
    prefixes = [r["Prefix"] for r in removing]
    for model in MODELS:
        kept = (sealed_prefix(model), frozen_test_prefix(model),
                *(f"{model_prefix(model)}a1b2c3d4e5f6/{segment}/" for segment in RUN_REPORT_SEGMENTS))
        for key in kept:
            assert not any(key.startswith(prefix) for prefix in prefixes), key
        assert work_prefix(model) in prefixes


def test_only_inference_traffic_expires_and_labels_and_monitor_reports_are_kept_by_default(built):
    """``inference_expiration_days`` is for what serving saw and said, not the ground truth and the monitor's findings."""
    stack, _, _ = built
    inference = _lake_rules(stack)["inference"]
    assert "ExpirationInDays" not in inference["baseline"]
    expiring = {r["Prefix"]: r["ExpirationInDays"] for r in inference.values() if "ExpirationInDays" in r}
    # (and the analytics workgroup's query results: copies of personal data, 30 days)
    assert expiring == {"capture/": 400, "async/": 400, "batch/": 400, "athena-results/": 30}
    for rule_id in ("expire-capture", "expire-async", "expire-batch"):
        assert inference[rule_id]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 7}
    # Labels and native reports keep their current objects, their old versions the general window; the drift
    # monitor's reports and tables keep every version (no rule reaches monitor/, predictions/, monitor-results/).
    aging = {r["Prefix"]: r for r in inference.values() if "NoncurrentVersionExpiration" in r}
    assert set(aging) == {"capture/", "async/", "batch/", "labels/", "monitor-native/", "athena-results/"}
    for prefix in ("labels/", "monitor-native/"):
        assert aging[prefix] == {"Prefix": prefix, "NoncurrentVersionExpiration": {"NoncurrentDays": 7}}
    # Every model's prefix of each kind lies under its kind's rule.
    assert all(inference_prefix("alpha", what).startswith(f"{what}/") for what in INFERENCE_TRAFFIC + INFERENCE_RECORDS)


def test_labels_and_monitor_reports_expire_with_their_own_days():
    stack, _ = _lake(inference_records_expiration_days=1825, inference_expiration_days=None)
    inference = _lake_rules(stack)["inference"]
    expiring = {r["Prefix"]: r["ExpirationInDays"] for r in inference.values() if "ExpirationInDays" in r}
    assert expiring == {"labels/": 1825, "monitor/": 1825, "predictions/": 1825, "monitor-results/": 1825,
                        "monitor-native/": 1825, "athena-results/": 30}
    # the drift monitor's outputs lose their old versions only with the records' own expiry
    for prefix in ("monitor/", "predictions/", "monitor-results/"):
        (rule,) = [r for r in inference.values() if r.get("Prefix") == prefix]
        assert "NoncurrentVersionExpiration" in rule and "Transitions" not in rule, rule


def test_without_expiry_or_transition_days_nothing_expires_or_transitions():
    stack, _ = _lake(raw_expiration_days=None, inference_expiration_days=None, curated_infrequent_access_days=None,
                     pipeline_work_expiration_days=None)
    for kind, by_id in _lake_rules(stack).items():
        expiring = [rule_id for rule_id, r in by_id.items() if "ExpirationInDays" in r]
        assert expiring == {"artifacts": ["expire-glue-temp"], "inference": ["expire-athena-results"]}.get(kind, []), kind
        assert "Transitions" not in by_id["baseline"], kind


def test_without_a_noncurrent_expiry_old_versions_are_kept_except_rewritten_data():
    """``noncurrent_version_expiration_days=None`` (a regulator's choice): no rule removes an old version, not even
    one an expiry made, except rewritten curated data and snapshots (their own window) and Glue's temporary files."""
    stack, _ = _lake(noncurrent_version_expiration_days=None, rewritten_noncurrent_days=3)
    rules = _lake_rules(stack)
    keeping = {kind: [rule_id for rule_id, r in by_id.items() if "NoncurrentVersionExpiration" in r]
               for kind, by_id in rules.items()}
    assert keeping == {"raw": [], "curated": ["baseline", "expire-quarantine"], "features": ["rewritten-snapshots"],
                       "artifacts": ["expire-glue-temp"], "inference": ["expire-athena-results"]}
    assert rules["features"]["expire-ingest-failures"] == {"Prefix": "_ingest-failures/", "ExpirationInDays": 30}
    assert rules["curated"]["baseline"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 3}
    assert rules["artifacts"]["expire-work-alpha"] == {"Prefix": "pipelines/alpha/work/", "ExpirationInDays": 400}


def test_without_a_rewritten_window_rewritten_data_keeps_old_versions_like_the_rest():
    stack, _ = _lake(rewritten_noncurrent_days=None)
    rules = _lake_rules(stack)
    assert rules["curated"]["baseline"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 7}
    assert "rewritten-snapshots" not in rules["features"]


def test_a_rewritten_window_longer_than_the_noncurrent_expiry_is_refused():
    """The bucket-wide, shorter expiry would win on snapshots/: the longer window could never be had."""
    with pytest.raises(ValueError, match=re.escape(
            "DataLake: rewritten_noncurrent_days (10) exceeds noncurrent_version_expiration_days (7), which expires "
            "every old version sooner: give at most that, or None") + "$"):
        _lake(rewritten_noncurrent_days=10)


def test_defaults_keep_every_prefix_and_add_no_model_rule():
    """Left out, the optional retentions keep data (no expiry) and no model means no work/ rule."""
    stack = Stack(new_app(bare_outdir()), "Bare", env=ENV)
    DataLake(stack, "Lake", name_prefix=PREFIX, removal_policy=RemovalPolicy.RETAIN, raw_expiration_days=30,
             curated_infrequent_access_days=None, noncurrent_version_expiration_days=7, access_log_expiration_days=14)
    rules = _lake_rules(stack)
    assert list(rules["inference"]) == ["baseline", "expired-delete-markers", "old-versions-capture", "old-versions-async",
                                        "old-versions-batch", "old-versions-labels", "old-versions-monitor-native",
                                        "expire-athena-results"]
    assert list(rules["artifacts"]) == ["baseline", "expired-delete-markers", "expire-glue-temp", "old-versions-etl-runs",
                                        "old-versions-mme"]
    # raw_expiration_days is required: the copies of raw rows expire with it.
    assert list(rules["features"]) == ["baseline", "expired-delete-markers", "expire-ingest-failures"]
    assert list(rules["curated"]) == ["baseline", "expired-delete-markers", "expire-quarantine"]
    assert rules["curated"]["baseline"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 7}


@pytest.mark.parametrize(("policy", "expected"), [(RemovalPolicy.RETAIN, "Retain"), (RemovalPolicy.DESTROY, "Delete")])
def test_the_removal_policy_applies_to_the_key_and_every_bucket(policy: RemovalPolicy, expected: str):
    stack, _ = _lake(removal_policy=policy)
    template = Template.from_stack(stack)
    stateful = {**template.find_resources("AWS::S3::Bucket"), **template.find_resources("AWS::KMS::Key")}
    assert len(stateful) == 7
    assert {(r["DeletionPolicy"], r["UpdateReplacePolicy"]) for r in stateful.values()} == {(expected, expected)}


@pytest.mark.parametrize(("policy", "expected"), [(RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE, ("RetainExceptOnCreate", "Retain")),
                                                  (RemovalPolicy.DESTROY, None)])
def test_every_bucket_policy_is_kept_with_its_bucket(policy: RemovalPolicy, expected):
    """GIVEN a lake its stack keeps (staging, prod) THEN the six bucket policies - the guards and the access-log bucket's
    delivery grant - are kept as the buckets are; GIVEN one destroyed with its stack (dev) THEN they keep
    CloudFormation's default (deleted with the stack)."""
    stack, _ = _lake(removal_policy=policy)
    policies = Template.from_stack(stack).find_resources("AWS::S3::BucketPolicy")
    assert len(policies) == 6
    kept = {(r.get("DeletionPolicy"), r.get("UpdateReplacePolicy")) for r in policies.values()}
    assert kept == ({expected} if expected else {(None, None)})


# ------------------------------------------------------------------ sealed models
def test_only_the_artifacts_bucket_makes_sealed_models_write_once(built):
    stack, lake, _ = built
    policies = Template.from_stack(stack).find_resources("AWS::S3::BucketPolicy")
    write_once = {}
    for policy in policies.values():
        bucket_id = policy["Properties"]["Bucket"]["Ref"]
        sids = [s.get("Sid", "") for s in policy["Properties"]["PolicyDocument"]["Statement"]]
        write_once[bucket_id] = [s for s in sids if s.startswith("WriteOnce")]
    artifacts_id = stack.get_logical_id(lake.artifacts_bucket.node.default_child)
    assert write_once.pop(artifacts_id) == ["WriteOnceOnlyIfNoneMatch", "WriteOnceNoIfMatch", "WriteOnceNoDelete"]
    assert write_once and not any(write_once.values())
    (artifacts_policy,) = [p for p in policies.values() if p["Properties"]["Bucket"] == {"Ref": artifacts_id}]
    resources = [sorted(r["Fn::Join"][1][-1] for r in s["Resource"])
                 for s in artifacts_policy["Properties"]["PolicyDocument"]["Statement"] if s.get("Sid", "").startswith("WriteOnce")]
    # Sealed models, approval-ledger records and run records, in each of the three statements.
    assert resources == [["/approval-ledger/*", "/pipelines/*/registered/*", "/run-records/*"]] * 3


def _statement(stack: Stack, bucket: Any, sid: str) -> Optional[dict]:
    """The bucket policy statement ``sid`` of ``bucket`` (a lake bucket), its resources as key patterns."""
    policies = Template.from_stack(stack).find_resources("AWS::S3::BucketPolicy").values()
    bucket_id = stack.get_logical_id(bucket.node.default_child)
    (policy,) = [p for p in policies if p["Properties"]["Bucket"] == {"Ref": bucket_id}]
    found = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s.get("Sid") == sid]
    if not found:
        return None
    (statement,) = found
    resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
    return {**statement, "Resource": [r["Fn::Join"][1][-1] for r in resources]}


def test_the_evidence_sagemaker_writes_keeps_every_version_in_the_artifacts_and_inference_buckets(built):
    """GIVEN the lake WHEN its bucket policies are read THEN no principal may delete a version of a run's reports, of
    a frozen test set (artifacts) or of a drift-monitor run's reports and prediction records (inference); the other
    buckets have no such statement."""
    stack, lake, _ = built
    assert _statement(stack, lake.artifacts_bucket, "KeepEveryVersion") == {
        "Sid": "KeepEveryVersion", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "s3:DeleteObjectVersion",
        "Resource": ["/pipelines/*/*/baseline/*", "/pipelines/*/*/evaluate/*", "/pipelines/*/*/model-card/*",
                     "/pipelines/*/frozen-test/*"]}
    assert _statement(stack, lake.inference_bucket, "KeepEveryVersion") == {
        "Sid": "KeepEveryVersion", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "s3:DeleteObjectVersion",
        "Resource": ["/monitor-results/*", "/monitor/*", "/predictions/*"]}
    for bucket in (lake.raw_bucket, lake.curated_bucket, lake.features_bucket):
        assert _statement(stack, bucket, "KeepEveryVersion") is None


# ------------------------------------------------------------------ references from other stacks
def test_a_reference_from_another_stack_names_the_bucket_and_carries_the_lake_key():
    """GIVEN the lake in one stack WHEN another stack references a bucket THEN it is addressed by its fixed name
    (concrete ARNs, no cross-stack export) and encrypts with the lake key."""
    app = new_app(bare_outdir())
    storage, lake = _lake(Stack(app, "Storage", env=ENV))
    other = Stack(app, "Jobs", env=ENV)
    for kind in KINDS:
        reference = lake.reference(other, kind)
        assert other.resolve(reference.bucket_name) == _name(kind)
        assert other.resolve(reference.bucket_arn) == f"arn:aws:s3:::{_name(kind)}"
        assert reference.encryption_key is lake.key
    assert other.node.try_find_child("AccessLogsBucket") is not None
    assert other.node.try_find_child("RawBucket") is not None
    assert Template.from_stack(other).to_json().get("Resources") in (None, {}), "a reference creates no resource"


# ------------------------------------------------------------------ names S3 would refuse
def test_a_prefix_that_makes_the_longest_bucket_name_too_long_is_refused():
    """29 characters of prefix fit every bucket but the access-log bucket, whose name is the longest."""
    prefix = "a" * 29
    name = _name("access-logs", prefix)
    with pytest.raises(ValueError, match=rf"^bucket name '{name}' is 64 characters; S3 allows at most 63$"):
        _lake(name_prefix=prefix)


def test_a_prefix_s3_reserves_is_refused():
    with pytest.raises(ValueError, match=rf"^bucket name '{_name('raw', 'xn--shop')}' starts with 'xn--', which S3 reserves$"):
        _lake(name_prefix="xn--shop")


def test_a_prefix_with_uppercase_letters_is_refused():
    with pytest.raises(ValueError, match=re.escape(f"bucket name '{_name('raw', 'Shop-dev')}' is invalid "
                                                   "(3-63 lowercase letters, digits, '-' or '.')") + "$"):
        _lake(name_prefix="Shop-dev")


def test_a_stack_without_a_concrete_account_and_region_is_refused():
    """Bucket names embed the account and region, so an environment-agnostic stack cannot hold a lake."""
    pattern = (r"^bucket name 'shop-dev-raw-\$\{Token\[AWS\.AccountId\.\d+\]\}-\$\{Token\[AWS\.Region\.\d+\]\}' is invalid "
               + re.escape("(3-63 lowercase letters, digits, '-' or '.')") + "$")
    with pytest.raises(ValueError, match=pattern):
        _lake(Stack(new_app(bare_outdir()), "Agnostic"))
