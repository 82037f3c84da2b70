"""Pinned logical IDs of stateful resources.

CloudFormation replaces a resource whose logical ID changes: for a bucket, key or feature group
that means new, empty storage (and, in dev, deletion of the old). A refactor that moves or renames
one of these constructs must fail here first, so the change is made deliberately (e.g. with
`overrideLogicalId`) rather than discovered at deploy time.
"""

from __future__ import annotations

import pytest

PINNED_STORAGE = {
    "DataLakeKey6ACD72F9": "AWS::KMS::Key",
    "OpsKey802FB888": "AWS::KMS::Key",
    "WatchdogKeyAFB4133F": "AWS::KMS::Key",
    "DataLakeAccessLogs1DA51325": "AWS::S3::Bucket",
    "DataLakeRawBucketA2BA7F91": "AWS::S3::Bucket",
    "DataLakeCuratedBucketD19A992F": "AWS::S3::Bucket",
    "DataLakeFeaturesBucketC467F976": "AWS::S3::Bucket",
    "DataLakeArtifactsBucket0924EC88": "AWS::S3::Bucket",
    "DataLakeInferenceBucketC5C6F7C1": "AWS::S3::Bucket",
    "Database": "AWS::Glue::Database",
    "FeatureStoreCustomerChurn943D579D": "AWS::SageMaker::FeatureGroup",
    "FeatureStoreCreditRiskBEFB07D9": "AWS::SageMaker::FeatureGroup",
    "RegistryChurn2A7EB8AB": "AWS::SageMaker::ModelPackageGroup",
    "RegistryCreditRiskF518CBEF": "AWS::SageMaker::ModelPackageGroup",
}

STATEFUL_TYPES = {
    "AWS::KMS::Key",
    "AWS::S3::Bucket",
    "AWS::Glue::Database",
    "AWS::SageMaker::FeatureGroup",
    "AWS::SageMaker::ModelPackageGroup",
}


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_stateful_logical_ids_are_pinned(sample, env):
    """Pinned for the frozen sample: renaming a construct on the path to a stateful resource replaces it."""
    resources = sample.template(env, "Storage")["Resources"]
    stateful = {k: v["Type"] for k, v in resources.items() if v["Type"] in STATEFUL_TYPES}
    assert stateful == PINNED_STORAGE


def test_no_stateful_resource_lives_outside_the_storage_stack(synthesized):
    for (env, stack), synthesized_stack in synthesized.stacks.items():
        if stack == "Storage":
            continue
        types = {r["Type"] for r in synthesized_stack.template["Resources"].values()}
        assert not types & STATEFUL_TYPES, (env, stack)
