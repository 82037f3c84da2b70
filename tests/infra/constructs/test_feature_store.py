"""FeatureStore, built in a bare stack: one FeatureGroup per dataset, generated from the dataset's declaration,
an offline store confined to its prefix, and the group names Feature Store would refuse."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aws_cdk import Environment, RemovalPolicy, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template

from mlops_loop.app_builder import new_app
from mlops_loop.constructs.feature_store import FeatureStore
from pipeline_code.catalog import Dataset, parse_dataset
from tests.support.cdk_outdirs import bare_outdir
from tests.support.construct_configs import WEB_ORDERS

ACCOUNT, REGION = "123456789012", "eu-west-1"
OFFLINE_BUCKET = "shop-dev-features-bucket"


def _dataset(name: str, description: str = WEB_ORDERS["description"]) -> Dataset:
    """The construct tests' web-orders declaration (two numeric features, one categorical) under ``name``."""
    return parse_dataset(name, {**WEB_ORDERS, "description": description})


ORDERS = _dataset("web_orders")
RETURNS = _dataset("returns", description="R" * 200)


def _store(**overrides: Any) -> tuple[Stack, FeatureStore]:
    """GIVEN a bare stack with a key and an imported features bucket WHEN a FeatureStore is added."""
    stack = Stack(new_app(bare_outdir()), "Bare", env=Environment(account=ACCOUNT, region=REGION))
    props: dict[str, Any] = dict(
        name_prefix="shop-dev",
        datasets=[ORDERS, RETURNS],
        offline_bucket=s3.Bucket.from_bucket_name(stack, "Features", OFFLINE_BUCKET),
        key=kms.Key(stack, "Key"),
        online=True,
        online_ttl_days=7,
        removal_policy=RemovalPolicy.RETAIN,
    )
    props.update(overrides)
    return stack, FeatureStore(stack, "FeatureStore", **props)


def _groups(stack: Stack) -> dict[str, dict]:
    """The stack's feature groups by FeatureGroupName."""
    return {g["Properties"]["FeatureGroupName"]: g
            for g in Template.from_stack(stack).find_resources("AWS::SageMaker::FeatureGroup").values()}


def _key_arn(stack: Stack) -> dict:
    (key_id,) = Template.from_stack(stack).find_resources("AWS::KMS::Key")
    return {"Fn::GetAtt": [key_id, "Arn"]}


@pytest.fixture(scope="module")
def built() -> tuple[Stack, FeatureStore, dict[str, dict]]:
    stack, store = _store()
    return stack, store, _groups(stack)


# ------------------------------------------------------------------ the groups
def test_one_group_per_dataset_named_prefix_dataset_with_dashes(built):
    stack, store, groups = built
    assert set(groups) == {"shop-dev-web-orders", "shop-dev-returns"}
    assert list(store.feature_groups) == ["web_orders", "returns"]
    assert store.feature_groups["web_orders"].feature_group_name == "shop-dev-web-orders"
    # Logical ids follow the dataset name (stable: renaming one would replace the group and its data).
    assert stack.get_logical_id(store.feature_groups["web_orders"]).startswith("FeatureStoreWebOrders")


def test_a_group_defines_its_keys_as_strings_then_every_catalog_feature_with_its_type(built):
    _, _, groups = built
    props = groups["shop-dev-web-orders"]["Properties"]
    assert props["RecordIdentifierFeatureName"] == "order_id"
    assert props["EventTimeFeatureName"] == "ordered_at"
    assert props["FeatureDefinitions"] == [
        {"FeatureName": "order_id", "FeatureType": "String"},
        {"FeatureName": "ordered_at", "FeatureType": "String"},
        {"FeatureName": "amount", "FeatureType": "Fractional"},
        {"FeatureName": "log_items", "FeatureType": "Fractional"},
        {"FeatureName": "channel", "FeatureType": "String"},
    ]
    assert props["Description"] == "Web shop orders; label: chargeback within 60 days."
    assert props["ThroughputConfig"] == {"ThroughputMode": "OnDemand"}


def test_a_long_description_is_cut_to_the_128_characters_feature_store_accepts(built):
    _, _, groups = built
    assert groups["shop-dev-returns"]["Properties"]["Description"] == "R" * 128


def test_online_store_is_encrypted_with_the_key_and_expires_records_after_the_ttl(built):
    stack, _, groups = built
    for group in groups.values():
        assert group["Properties"]["OnlineStoreConfig"] == {
            "EnableOnlineStore": True,
            "SecurityConfig": {"KmsKeyId": _key_arn(stack)},
            "TtlDuration": {"Unit": "Days", "Value": 7},
        }


def test_without_a_ttl_online_records_never_expire():
    stack, _ = _store(online_ttl_days=None)
    for group in _groups(stack).values():
        assert group["Properties"]["OnlineStoreConfig"] == {"EnableOnlineStore": True, "SecurityConfig": {"KmsKeyId": _key_arn(stack)}}


def test_with_the_online_store_off_no_online_settings_are_emitted_even_with_a_ttl():
    stack, _ = _store(online=False, online_ttl_days=7)
    for group in _groups(stack).values():
        assert group["Properties"]["OnlineStoreConfig"] == {"EnableOnlineStore": False}


def test_offline_store_writes_encrypted_iceberg_under_its_prefix_with_the_stores_role(built):
    stack, store, groups = built
    role_arn = {"Fn::GetAtt": [stack.get_logical_id(store.offline_store_role.node.default_child), "Arn"]}
    for group in groups.values():
        props = group["Properties"]
        assert props["OfflineStoreConfig"] == {
            "S3StorageConfig": {"S3Uri": f"s3://{OFFLINE_BUCKET}/offline-store", "KmsKeyId": _key_arn(stack)},
            "TableFormat": "Iceberg",
            "DisableGlueTableCreation": False,
        }
        assert props["RoleArn"] == role_arn


def test_every_group_waits_for_the_role_policy_and_keeps_the_removal_policy(built):
    stack, store, groups = built
    policy_id = stack.get_logical_id(store.access.managed_policy)
    for group in groups.values():
        assert group["DependsOn"] == [policy_id]
        assert (group["DeletionPolicy"], group["UpdateReplacePolicy"]) == ("Retain", "Retain")


def test_with_destroy_the_groups_are_deleted_with_the_stack():
    stack, _ = _store(removal_policy=RemovalPolicy.DESTROY)
    assert {(g["DeletionPolicy"], g["UpdateReplacePolicy"]) for g in _groups(stack).values()} == {("Delete", "Delete")}


# ------------------------------------------------------------------ the offline store's role
def test_the_offline_store_role_is_for_sagemaker_and_reaches_only_its_prefix_key_and_glue_tables(built):
    stack, store, _ = built
    template = Template.from_stack(stack)
    (role,) = template.find_resources("AWS::IAM::Role").values()
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    (policy,) = template.find_resources("AWS::IAM::ManagedPolicy").values()
    assert policy["Properties"]["Roles"] == [{"Ref": stack.get_logical_id(store.offline_store_role.node.default_child)}]
    statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    assert list(statements) == ["OfflineStoreObjects", "OfflineStoreObjectsList", "OfflineStoreBucketChecks", "OfflineStoreKey",
                                "OfflineStoreGlueTables"]
    assert statements["OfflineStoreObjects"]["Resource"] == f"arn:aws:s3:::{OFFLINE_BUCKET}/offline-store/*"
    assert "s3:PutObject" in statements["OfflineStoreObjects"]["Action"]
    assert statements["OfflineStoreObjectsList"]["Condition"] == {"StringLike": {"s3:prefix": ["offline-store/*"]}}
    assert statements["OfflineStoreBucketChecks"]["Action"] == ["s3:GetBucketAcl", "s3:GetBucketLocation"]
    assert statements["OfflineStoreBucketChecks"]["Resource"] == f"arn:aws:s3:::{OFFLINE_BUCKET}"
    assert statements["OfflineStoreKey"]["Resource"] == _key_arn(stack)
    assert statements["OfflineStoreGlueTables"]["Resource"] == [
        f"arn:aws:glue:{REGION}:{ACCOUNT}:catalog",
        f"arn:aws:glue:{REGION}:{ACCOUNT}:database/sagemaker_featurestore",
        f"arn:aws:glue:{REGION}:{ACCOUNT}:table/sagemaker_featurestore/*",
    ]


@pytest.mark.parametrize("removal, kept", [
    # What staging and prod get (lifetimes.removal_policy: kept, except when the stack's own create rolls back).
    (RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE, ("RetainExceptOnCreate", "Retain")),
    (RemovalPolicy.RETAIN, ("Retain", "Retain")),
])
def test_a_retaining_removal_policy_keeps_the_offline_store_role_with_the_groups(removal, kept):
    """GIVEN groups kept when their stack is deleted or replaces them WHEN the store is built THEN the role their
    RoleArn (create-only) names is kept the same way: a deletion of the stack leaves the groups a role to write as,
    which the adoption imports; its name stays generated (a name set now would replace it, and so every group)."""
    stack, store = _store(removal_policy=removal)
    template = Template.from_stack(stack)
    (role,) = template.find_resources("AWS::IAM::Role").values()
    assert (role["DeletionPolicy"], role["UpdateReplacePolicy"]) == kept
    assert "RoleName" not in role["Properties"]
    assert {(g["DeletionPolicy"], g["UpdateReplacePolicy"]) for g in _groups(stack).values()} == {kept}
    # Its permissions are not kept: the deploy after the adoption creates the policy again and attaches it.
    (policy,) = template.find_resources("AWS::IAM::ManagedPolicy").values()
    assert "DeletionPolicy" not in policy


def test_with_destroy_the_offline_store_role_keeps_cloudformations_default():
    """GIVEN a dev store (DESTROY) THEN the role carries no DeletionPolicy: deleted with its stack, as before."""
    stack, _ = _store(removal_policy=RemovalPolicy.DESTROY)
    (role,) = Template.from_stack(stack).find_resources("AWS::IAM::Role").values()
    assert "DeletionPolicy" not in role and "UpdateReplacePolicy" not in role


# ------------------------------------------------------------------ names Feature Store would refuse
def test_a_group_name_over_64_characters_is_refused():
    dataset = _dataset("d" * 56)  # shop-dev- (9) + 56 = 65
    name = "shop-dev-" + "d" * 56
    with pytest.raises(ValueError, match=rf"^feature group name '{name}' \(project \+ environment \+ dataset\) is 65 characters; "
                                         r"Feature Store allows at most 64$"):
        _store(datasets=[dataset])


def test_a_group_name_with_characters_feature_store_refuses_is_refused():
    message = ("feature group name 'shop.dev-web-orders' (project + environment + dataset) is invalid: letters, digits and "
               "dashes only, starting and ending with a letter or digit")
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        _store(name_prefix="shop.dev", datasets=[ORDERS])
