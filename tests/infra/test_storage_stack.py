"""The stateful Storage stack: key, lake buckets, Glue database, Feature Store, per environment."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Match, Template

from mlops_loop.constructs.data_lake import ATHENA_RESULTS_EXPIRATION_DAYS, ATHENA_RESULTS_PREFIX
from pipeline_code.core.contract import INFERENCE_TRAFFIC
from pipeline_code.core.integrity import LEDGER_KEY_PATTERN, RUN_RECORD_KEY_PATTERN, SEALED_KEY_PATTERN, work_prefix
from tests.support import docs
from tests.support.paths import live_project


ENVS = ("dev", "staging", "prod")


# Physical names start with the configured project (a user renames it first).
PROJECT = live_project()


def storage(synthesized, env: str) -> Template:
    return Template.from_json(synthesized.template(env, "Storage"))


@pytest.mark.parametrize("env", ENVS)
def test_data_key_rotates_and_lets_only_this_accounts_logs_use_it(synthesized, env):
    template = storage(synthesized, env)
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    account = synthesized.config.environments[env].account
    template.has_resource_properties(
        "AWS::KMS::Key",
        {
            "KeyPolicy": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Principal": {"Service": "logs.eu-west-1.amazonaws.com"},
                                "Condition": {
                                    "ArnLike": {"kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:eu-west-1:{account}:*"}
                                },
                            }
                        )
                    ]
                )
            }
        },
    )


@pytest.mark.parametrize("env", ENVS)
def test_every_lake_bucket_is_kms_encrypted_versioned_private_and_logged(synthesized, env):
    buckets = synthesized.resources(env, "Storage", "AWS::S3::Bucket")
    assert len(buckets) == 6
    account = synthesized.config.environments[env].account
    names = {b["Properties"]["BucketName"] for b in buckets.values()}
    assert names == {f"{PROJECT}-{env}-{kind}-{account}-eu-west-1" for kind in ("raw", "curated", "features", "artifacts", "inference", "access-logs")}
    for logical_id, bucket in buckets.items():
        props = bucket["Properties"]
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}, logical_id
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
        if "access-logs" in props["BucketName"]:
            # S3 server access log delivery only supports SSE-S3 on the target bucket.
            assert sse == {"SSEAlgorithm": "AES256"}
            assert "LoggingConfiguration" not in props
        else:
            assert sse["SSEAlgorithm"] == "aws:kms" and "KMSMasterKeyID" in sse
            assert props["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": _logical_id_of(buckets, "access-logs")}


@pytest.mark.parametrize("env", ENVS)
def test_bucket_policies_deny_requests_without_tls(synthesized, env):
    policies = synthesized.resources(env, "Storage", "AWS::S3::BucketPolicy")
    assert len(policies) == 6
    for policy in policies.values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
        )
        assert any(s["Effect"] == "Deny" and "s3:TlsVersion" in str(s.get("Condition")) for s in statements)


@pytest.mark.parametrize("env", ENVS)
def test_only_the_artifacts_bucket_keeps_sealed_models_write_once(synthesized, env):
    """GIVEN each environment WHEN synthesized THEN the artifacts bucket's policy makes every sealed model key, approval-ledger record and run record
    write-once (create only with If-None-Match, no If-Match, no delete) for every principal, and no other
    bucket carries such statements (SecureBucket's tests prove what they allow and deny)."""
    buckets = synthesized.resources(env, "Storage", "AWS::S3::Bucket")
    artifacts = _logical_id_of(buckets, "artifacts")
    for policy in synthesized.resources(env, "Storage", "AWS::S3::BucketPolicy").values():
        statements = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if str(s.get("Sid", "")).startswith("WriteOnce")]
        if policy["Properties"]["Bucket"] != {"Ref": artifacts}:
            assert statements == []
            continue
        assert sorted(s["Sid"] for s in statements) == ["WriteOnceNoDelete", "WriteOnceNoIfMatch", "WriteOnceOnlyIfNoneMatch"]
        for statement in statements:
            assert statement["Effect"] == "Deny" and statement["Principal"] == {"AWS": "*"}
            assert sorted(r["Fn::Join"][1][-1] for r in statement["Resource"]) == sorted([f"/{SEALED_KEY_PATTERN}", f"/{LEDGER_KEY_PATTERN}", f"/{RUN_RECORD_KEY_PATTERN}"])


def test_lifecycle_rules_follow_each_environments_config(synthesized):
    for env in ENVS:
        lake = synthesized.config.environments[env].data_lake
        raw = _bucket(synthesized, env, "raw")["LifecycleConfiguration"]["Rules"][0]
        assert raw["ExpirationInDays"] == lake.raw_expiration_days
        assert raw["NoncurrentVersionExpiration"] == {"NoncurrentDays": lake.noncurrent_version_expiration_days}
        assert raw["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
        curated = _bucket(synthesized, env, "curated")["LifecycleConfiguration"]["Rules"][0]
        assert curated["Transitions"] == [
            {"StorageClass": "STANDARD_IA", "TransitionInDays": lake.curated_infrequent_access_days}
        ]
        assert "ExpirationInDays" not in curated  # curated data is never expired automatically
        # Rewritten each night under new file names: old versions kept only the short window.
        assert curated["NoncurrentVersionExpiration"] == {"NoncurrentDays": lake.rewritten_noncurrent_days}
        # Copies of raw rows (quarantined rows, failed puts) go with the raw data.
        for kind, prefix in (("curated", "_quarantine/"), ("features", "_ingest-failures/")):
            copies = [r.get("ExpirationInDays") for r in _bucket(synthesized, env, kind)["LifecycleConfiguration"]["Rules"]
                      if r.get("Prefix") == prefix]
            assert copies == ([] if lake.raw_expiration_days is None else [lake.raw_expiration_days]), (env, kind)
        artifacts = {r["Id"]: r for r in _bucket(synthesized, env, "artifacts")["LifecycleConfiguration"]["Rules"]}
        for model in synthesized.config.models_of(synthesized.config.environments[env]):
            work = artifacts[f"expire-work-{model.name}"]
            assert (work["Prefix"], work["ExpirationInDays"]) == (work_prefix(model.name), lake.pipeline_work_expiration_days)
        inference = _bucket(synthesized, env, "inference")["LifecycleConfiguration"]["Rules"]
        # Traffic, and the analytics workgroup's query results (a fixed month).
        assert {r["Prefix"] for r in inference if "ExpirationInDays" in r} == {
            f"{what}/" for what in (*INFERENCE_TRAFFIC, ATHENA_RESULTS_PREFIX)}


def test_prod_and_staging_retain_data_and_are_termination_protected(synthesized):
    for env in ("staging", "prod"):
        stack = synthesized.stacks[(env, "Storage")]
        assert stack.termination_protection
        for logical_id, resource in stack.template["Resources"].items():
            if resource["Type"] in (
                "AWS::KMS::Key",
                "AWS::S3::Bucket",
                "AWS::SageMaker::FeatureGroup",
                "AWS::SageMaker::ModelPackageGroup",
                "AWS::Glue::Database",
                # The guards of the kept buckets: deleted with the stack, they would leave the buckets unguarded.
                "AWS::S3::BucketPolicy",
            ):
                # Kept on update and delete; not after a failed create of the stack, whose retry would collide
                assert resource["DeletionPolicy"] == "RetainExceptOnCreate", (env, logical_id)
                assert resource["UpdateReplacePolicy"] == "Retain", (env, logical_id)


def test_every_stack_of_an_environment_takes_its_termination_protection(synthesized):
    # GIVEN each environment's termination_protection (true unless set otherwise; always true in prod)
    for (env, name), stack in synthesized.stacks.items():
        expected = synthesized.config.environments[env].termination_protection
        # THEN each of its stacks carries it - the serving stack with the live endpoints as much as Storage
        assert stack.termination_protection is expected, (env, name)


def test_dev_may_be_destroyed(synthesized):
    stack = synthesized.stacks[("dev", "Storage")]
    assert not stack.termination_protection
    buckets = synthesized.resources("dev", "Storage", "AWS::S3::Bucket")
    assert {b["DeletionPolicy"] for b in buckets.values()} == {"Delete"}


@pytest.mark.parametrize("env", ENVS)
def test_one_feature_group_per_dataset_online_and_offline_encrypted(synthesized, env):
    groups = synthesized.resources(env, "Storage", "AWS::SageMaker::FeatureGroup")
    by_name = {g["Properties"]["FeatureGroupName"]: g["Properties"] for g in groups.values()}
    config = synthesized.config
    datasets = {config.models[m].dataset for m in config.environments[env].models}
    assert set(by_name) == {f"{PROJECT}-{env}-{d.replace('_', '-')}" for d in datasets}
    ttl_days = synthesized.config.environments[env].feature_store.online_ttl_days
    for props in by_name.values():
        online = props["OnlineStoreConfig"]
        assert online["EnableOnlineStore"] is True
        assert online["TtlDuration"] == {"Unit": "Days", "Value": ttl_days}
        assert "Fn::GetAtt" in online["SecurityConfig"]["KmsKeyId"]
        offline = props["OfflineStoreConfig"]
        assert offline["TableFormat"] == "Iceberg"
        assert offline["S3StorageConfig"]["S3Uri"].startswith(f"s3://{PROJECT}-{env}-features-")
        assert offline["S3StorageConfig"]["S3Uri"].endswith("/offline-store")
        assert "Fn::GetAtt" in offline["S3StorageConfig"]["KmsKeyId"]
        assert props["ThroughputConfig"] == {"ThroughputMode": "OnDemand"}


def test_feature_group_definitions_are_generated_from_the_catalog(synthesized):
    groups = synthesized.resources("prod", "Storage", "AWS::SageMaker::FeatureGroup")
    for group in groups.values():
        props = group["Properties"]
        dataset = synthesized.config.datasets[props["FeatureGroupName"].removeprefix(f"{PROJECT}-prod-").replace("-", "_")]
        assert props["RecordIdentifierFeatureName"] == dataset.record_identifier
        assert props["EventTimeFeatureName"] == dataset.event_time
        assert [(d["FeatureName"], d["FeatureType"]) for d in props["FeatureDefinitions"]] == list(
            dataset.feature_store_definitions()
        )


def test_offline_store_role_is_limited_to_its_prefix_and_key(synthesized):
    policies = synthesized.resources("prod", "Storage", "AWS::IAM::ManagedPolicy")
    (policy,) = [p for k, p in policies.items() if k.startswith("FeatureStoreOfflineStoreAccess")]
    statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    objects = statements["OfflineStoreObjects"]
    assert objects["Resource"].endswith("-features-333333333333-eu-west-1/offline-store/*")
    assert all("*" not in action for s in statements.values() for action in _list(s["Action"]))
    assert set(_list(statements["OfflineStoreKey"]["Action"])) == {
        "kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"
    }


def test_glue_database_is_named_after_the_environment(synthesized):
    (db,) = synthesized.resources("staging", "Storage", "AWS::Glue::Database").values()
    assert db["Properties"]["DatabaseInput"]["Name"] == f"{PROJECT.replace('-', '_')}_staging"


def _list(value):
    return value if isinstance(value, list) else [value]


def _bucket(synthesized, env: str, kind: str) -> dict:
    for bucket in synthesized.resources(env, "Storage", "AWS::S3::Bucket").values():
        if f"-{kind}-" in bucket["Properties"]["BucketName"]:
            return bucket["Properties"]
    raise KeyError(kind)


def _logical_id_of(buckets: dict, kind: str) -> str:
    return next(k for k, b in buckets.items() if f"-{kind}-" in b["Properties"]["BucketName"])


@pytest.mark.parametrize("env", ENVS)
def test_the_watchdog_key_serves_this_environments_alarms_alone(synthesized, env):
    """GIVEN each environment WHEN synthesized THEN the Storage stack has a second key beside the ops key, for the
    notification watchdog's topic: CloudWatch may use it for this account's alarms of the environment's prefix only
    (as the ops key), and nothing else may (no EventBridge: no rule publishes there; no CloudWatch Logs: no log group
    is encrypted with it); it rotates and takes the environment's removal policy like every key here."""
    keys = synthesized.resources(env, "Storage", "AWS::KMS::Key")
    (key_id,) = [k for k in keys if k.startswith("WatchdogKey")]
    ops_id = next(k for k in keys if k.startswith("OpsKey"))
    statements = {s.get("Sid"): s for s in keys[key_id]["Properties"]["KeyPolicy"]["Statement"]}
    account = synthesized.config.environments[env].account
    prefix = f"{synthesized.config.project}-{env}"
    # None: CDK's statement for the account's own IAM; the Deny of a short deletion window is every key's (service_key).
    assert set(statements) == {None, "DenyDeletionWithinThirtyDays", "AllowPublisherCloudwatch"}
    assert statements["AllowPublisherCloudwatch"]["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert statements["AllowPublisherCloudwatch"]["Condition"] == {
        "StringEquals": {"aws:SourceAccount": account},
        "ArnLike": {"aws:SourceArn": f"arn:aws:cloudwatch:{synthesized.config.environments[env].region}:{account}:alarm:{prefix}-*"}}
    assert keys[key_id]["Properties"]["EnableKeyRotation"] is True
    assert keys[key_id]["DeletionPolicy"] == keys[ops_id]["DeletionPolicy"]
    (alias,) = [a["Properties"] for a in synthesized.resources(env, "Storage", "AWS::KMS::Alias").values()
                if a["Properties"]["TargetKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}]
    assert alias["AliasName"] == f"alias/{prefix}/watchdog"


def test_the_readme_personal_data_table_names_every_data_prefix_the_lifecycle_and_the_keep_policy_treat(synthesized):
    """docs/personal-data.md "Personal data": every prefix a lifecycle rule of the raw, curated, features or inference bucket names
    (outside a model's pipeline prefix), and every prefix whose versions KeepEveryVersion keeps, has its row; and no
    bucket enables Object Lock, which the section says."""
    section = docs.section("## Personal data: where it is kept and how to erase it").text
    assert "S3 Object Lock (no bucket enables it" in section
    for env in ENVS:
        for kind in ("raw", "curated", "features", "inference"):
            bucket = _bucket(synthesized, env, kind)
            assert "ObjectLockEnabled" not in bucket and "ObjectLockConfiguration" not in bucket, (env, kind)
            for rule in bucket["LifecycleConfiguration"]["Rules"]:
                if "Prefix" in rule:
                    assert f"{rule['Prefix']}" in section, (env, kind, rule["Id"])
        for policy in synthesized.resources(env, "Storage", "AWS::S3::BucketPolicy").values():
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                if statement.get("Sid") == "KeepEveryVersion":
                    resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
                    kept = [r["Fn::Join"][1][-1] for r in resources]
                    # the last named folder of each pattern (".../frozen-test/*" -> "frozen-test/")
                    assert all(k.rstrip("*/").split("/")[-1] + "/" in section for k in kept), kept


@pytest.mark.parametrize("env", ENVS)
def test_analysts_query_in_a_workgroup_that_enforces_kms_encrypted_results_which_expire(synthesized, env):
    """GIVEN each environment WHEN synthesized THEN the Storage stack has one Athena workgroup ``<prefix>-analytics``
    (engine 3) whose settings override the client's (an analyst cannot send results elsewhere, or unencrypted): results
    go to ``athena-results/`` of the inference bucket, encrypted SSE-KMS with the environment's data key and owned by
    its account; those results (rows of predictions, labels, capture) expire after ATHENA_RESULTS_EXPIRATION_DAYS,
    their old versions a day later, so query results do not outlive the data an erasure removed."""

    (group,) = synthesized.resources(env, "Storage", "AWS::Athena::WorkGroup").values()
    props = group["Properties"]
    assert props["Name"] == f"{PROJECT}-{env}-analytics"
    config = props["WorkGroupConfiguration"]
    assert config["EnforceWorkGroupConfiguration"] is True
    assert config["EngineVersion"] == {"SelectedEngineVersion": "Athena engine version 3"}
    result = config["ResultConfiguration"]
    account = synthesized.config.environments[env].account
    inference = _bucket(synthesized, env, "inference")["BucketName"]
    assert result["OutputLocation"] == f"s3://{inference}/{ATHENA_RESULTS_PREFIX}/"
    keys = synthesized.resources(env, "Storage", "AWS::KMS::Key")
    (data_key,) = [k for k in keys if k.startswith("DataLakeKey")]
    assert result["EncryptionConfiguration"] == {"EncryptionOption": "SSE_KMS", "KmsKey": {"Fn::GetAtt": [data_key, "Arn"]}}
    assert result["ExpectedBucketOwner"] == account
    rules = {r["Id"]: r for r in _bucket(synthesized, env, "inference")["LifecycleConfiguration"]["Rules"]}
    rule = rules["expire-athena-results"]
    assert rule["Prefix"] == f"{ATHENA_RESULTS_PREFIX}/" and rule["Status"] == "Enabled"
    assert rule["ExpirationInDays"] == ATHENA_RESULTS_EXPIRATION_DAYS
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 1}


def test_the_analytics_workgroup_is_deleted_with_its_stack_so_no_retained_name_blocks_a_redeploy(synthesized):
    """GIVEN prod (which retains its data) WHEN synthesized THEN the workgroup, configuration and no data, is deleted
    with the stack, its saved queries and history with it (a retained workgroup would hold its fixed name)."""
    (group,) = synthesized.resources("prod", "Storage", "AWS::Athena::WorkGroup").values()
    assert group.get("DeletionPolicy", "Delete") == "Delete" and group["Properties"]["RecursiveDeleteOption"] is True
