"""SageMaker Feature Store: one FeatureGroup per dataset, generated from pipeline_code.catalog."""

from __future__ import annotations

from typing import Optional, Sequence

from aws_cdk import RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from pipeline_code.catalog import Dataset

from pipeline_code.core.contract import OFFLINE_STORE_PREFIX, pascal

from ..naming import checked_feature_group_name
from .access_policy import AccessPolicy
from .arns import format_arn, s3_url
from .cdk_reads import read_once, service_principal, stack_of


class FeatureStore(Construct):
    """Online + offline FeatureGroups for ``datasets``, all encrypted with one key.

    Defaults: every feature of a dataset's catalog entry becomes a FeatureDefinition (same name,
    same type), keyed by the dataset's record identifier and event time; the online store is on
    with records expiring after ``online_ttl_days`` (never when None); the offline
    store writes Iceberg tables under ``s3://<offline bucket>/offline-store/`` (SageMaker creates the
    Glue tables) as ``offline_store_role``; throughput is on-demand.

    The groups take ``removal_policy``, and so does the offline-store role when it keeps them (a retaining policy): a
    deletion of the stack leaves the role the groups write as in place with them (its permissions, a managed policy,
    go, and come back with the deploy that adopts them). With ``DESTROY`` (dev) the role keeps CloudFormation's
    default, deleted with its stack.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name_prefix: str,
        datasets: Sequence[Dataset],
        offline_bucket: s3.IBucket,
        key: kms.IKey,
        online: bool,
        online_ttl_days: Optional[int],
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = stack_of(self, scope)
        self.offline_store_role = iam.Role(
            self,
            "OfflineStoreRole",
            # No confused-deputy condition: neither the SageMaker confused-deputy page
            # (service_trust.SAGEMAKER_CONFUSED_DEPUTY_DOC) nor the Feature Store offline-store pages document
            # what Feature Store sends when it assumes this role; a guessed condition would stop offline
            # ingestion while the online store kept working, unnoticed.
            assumed_by=service_principal("sagemaker.amazonaws.com"),
            description="Lets SageMaker Feature Store write offline-store files and create their Glue tables",
        )
        # Kept with the groups: a group's RoleArn is create-only and names this role, whose name is generated. Deleted
        # with a stack whose retained groups stay, it would leave them writing their offline store as a role that no
        # longer exists (nothing reports it), and the deploy that adopts them makes a role of another name.
        if removal_policy != RemovalPolicy.DESTROY:
            self.offline_store_role.apply_removal_policy(removal_policy)
        access = AccessPolicy(
            self,
            "OfflineStoreAccess",
            role=self.offline_store_role,
            description="Feature Store offline store: its S3 prefix, the data key, its Glue tables",
        )
        # As before: Feature Store writes and maintains its offline store's Iceberg table files as this role.
        access.allow_prefix("OfflineStoreObjects", offline_bucket, f"{OFFLINE_STORE_PREFIX}/", write=True, delete=True)
        access.allow("OfflineStoreBucketChecks", ["s3:GetBucketAcl", "s3:GetBucketLocation"],
                     [offline_bucket.bucket_arn])
        access.allow_key("OfflineStoreKey", key)
        # SageMaker registers each offline store as a table in its own Glue database.
        access.allow(
            "OfflineStoreGlueTables",
            ["glue:GetDatabase", "glue:CreateDatabase", "glue:GetTable", "glue:CreateTable", "glue:UpdateTable"],
            [
                format_arn(stack, service="glue", resource="catalog"),
                format_arn(stack, service="glue", resource="database", resource_name="sagemaker_featurestore"),
                format_arn(stack, service="glue", resource="table", resource_name="sagemaker_featurestore/*"),
            ],
            wildcard_reason="SageMaker names each offline-store table itself (group name plus a creation "
            "timestamp), so access is scoped to the tables of its sagemaker_featurestore database.",
        )
        self.access = access

        self.feature_groups: dict[str, sagemaker.CfnFeatureGroup] = {}
        for dataset in datasets:
            online_store: dict = {"EnableOnlineStore": online}
            if online:
                online_store["SecurityConfig"] = {"KmsKeyId": read_once(key, "key_arn")}
                if online_ttl_days:
                    online_store["TtlDuration"] = {"Unit": "Days", "Value": online_ttl_days}
            group = sagemaker.CfnFeatureGroup(
                self,
                pascal(dataset.name),
                feature_group_name=checked_feature_group_name(name_prefix, dataset.name),
                description=dataset.description[:128],
                record_identifier_feature_name=dataset.record_identifier,
                event_time_feature_name=dataset.event_time,
                feature_definitions=[
                    sagemaker.CfnFeatureGroup.FeatureDefinitionProperty(feature_name=name, feature_type=ftype)
                    for name, ftype in dataset.feature_store_definitions()
                ],
                # These two props are typed Any in the Python bindings and emitted verbatim:
                # they must be PascalCase CloudFormation dicts (aws/aws-cdk#25774).
                online_store_config=online_store,
                offline_store_config={
                    "S3StorageConfig": {
                        "S3Uri": s3_url(read_once(offline_bucket, "bucket_name"), OFFLINE_STORE_PREFIX),
                        "KmsKeyId": read_once(key, "key_arn"),
                    },
                    "TableFormat": "Iceberg",
                    "DisableGlueTableCreation": False,
                },
                role_arn=read_once(self.offline_store_role, "role_arn"),
                throughput_config=sagemaker.CfnFeatureGroup.ThroughputConfigProperty(throughput_mode="OnDemand"),
            )
            group.apply_removal_policy(removal_policy)
            # The role's policy must exist before SageMaker validates the offline store.
            group.node.add_dependency(access)
            self.feature_groups[dataset.name] = group
