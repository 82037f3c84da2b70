"""What every Glue job and crawler of an environment shares: encryption, roles, logs and code."""

from __future__ import annotations

from typing import Optional

from aws_cdk import ArnFormat, RemovalPolicy, Stack
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from ..config.schema import NetworkConfig
from .access_policy import AccessPolicy
from .arns import format_arn
from .cdk_reads import environment_of, read_once, stack_of
from .job_code import JobCode
from .network import allow_glue_network_interfaces

GLUE_TEMP_PREFIX = "glue-temp"


class GlueRuntime(Construct):
    """A Glue security configuration, the job and crawler roles, encrypted log groups and job code.

    Defaults: S3 output SSE-KMS, CloudWatch logs SSE-KMS and job bookmarks CSE-KMS, all with
    ``key``; job logs go to ``<log_group_prefix>/output`` and ``/error`` (Glue 5's
    ``--custom-logGroup-prefix``), kept ``log_retention`` and encrypted with the same key; crawler logs go
    where Glue puts them under a security configuration, ``/aws-glue/crawlers-role/<role>-<configuration>``.
    Roles start with no data access: callers grant exactly the buckets and feature groups a job uses.
    Without ``network`` (default) jobs and crawlers run on Glue's own network; given one, a NETWORK connection
    ``<prefix>-vpc`` in its first subnet and zone with its security groups (``self.connection``) carries every job
    and crawler into the VPC, and both roles may read it and manage Glue's network interfaces.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name_prefix: str,
        key: kms.IKey,
        artifacts_bucket: s3.IBucket,
        database_name: str,
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
        network: Optional[NetworkConfig] = None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = stack_of(self, scope)
        self.key = key
        self.security_configuration = glue.CfnSecurityConfiguration(
            self,
            "SecurityConfiguration",
            name=f"{name_prefix}-glue",
            encryption_configuration=glue.CfnSecurityConfiguration.EncryptionConfigurationProperty(
                s3_encryptions=[
                    glue.CfnSecurityConfiguration.S3EncryptionProperty(
                        s3_encryption_mode="SSE-KMS", kms_key_arn=read_once(key, "key_arn")
                    )
                ],
                cloud_watch_encryption=glue.CfnSecurityConfiguration.CloudWatchEncryptionProperty(
                    cloud_watch_encryption_mode="SSE-KMS", kms_key_arn=read_once(key, "key_arn")
                ),
                job_bookmarks_encryption=glue.CfnSecurityConfiguration.JobBookmarksEncryptionProperty(
                    job_bookmarks_encryption_mode="CSE-KMS", kms_key_arn=read_once(key, "key_arn")
                ),
            ),
        )
        self.log_group_prefix = f"/aws-glue/{name_prefix}"
        self.log_groups = [
            logs.LogGroup(
                self,
                f"{suffix.capitalize()}Logs",
                log_group_name=f"{self.log_group_prefix}/{suffix}",
                encryption_key=key,
                retention=log_retention,
                removal_policy=removal_policy,
            )
            for suffix in ("output", "error")
        ]
        self.temp_dir = artifacts_bucket.s3_url_for_object(GLUE_TEMP_PREFIX)
        self.code = JobCode(self, "Code")

        # No confused-deputy condition on either role: the AWS Glue Developer Guide documents no aws:SourceArn or
        # aws:SourceAccount for the roles Glue assumes (its "Create an IAM role for AWS Glue" step trusts
        # glue.amazonaws.com alone), and a condition Glue does not satisfy would stop every job and crawler.
        self.job_role = iam.Role(
            self,
            "JobRole",
            assumed_by=iam.ServicePrincipal("glue.amazonaws.com"),
            description=f"{name_prefix}: Glue ETL and feature jobs",
        )
        self.crawler_role = iam.Role(
            self,
            "CrawlerRole",
            assumed_by=iam.ServicePrincipal("glue.amazonaws.com"),
            description=f"{name_prefix}: Glue crawlers over the raw zone",
        )
        self.job_access = AccessPolicy(
            self, "JobAccess", role=self.job_role, description=f"{name_prefix}: Glue jobs"
        )
        self.crawler_access = AccessPolicy(
            self, "CrawlerAccess", role=self.crawler_role, description=f"{name_prefix}: Glue crawlers"
        )
        for access in (self.job_access, self.crawler_access):
            access.allow_key("DataKey", key)
        # Jobs write under our prefix (--custom-logGroup-prefix). A crawler with a security configuration
        # that encrypts CloudWatch logs writes to /aws-glue/crawlers-role/<role name>-<configuration name>
        # (Glue's naming; e.g. aws-samples/aws-serverless-data-lake-framework grants exactly that group),
        # not to /aws-glue/crawlers. The role name is generated, so the group is matched by this
        # environment's configuration name, which only this crawler uses.
        self._allow_logging(self.job_access, stack, f"{self.log_group_prefix}/*",
                            "Glue creates one log stream per job run and executor in the job's log groups; the names "
                            "are only known at run time.")
        self._allow_logging(self.crawler_access, stack, f"/aws-glue/crawlers-role/*-{self.security_configuration.name}:*",
                            "Glue names the crawler's encrypted log group after its generated role name and the security "
                            "configuration (fixed per environment), with one stream per crawl.")
        # Glue and Spark clear their temporary files there once a run is done with them.
        self.job_access.allow_prefix("GlueTemp", artifacts_bucket, f"{GLUE_TEMP_PREFIX}/", write=True, delete=True)
        # Glue publishes job metrics (--enable-metrics) to its own namespace only.
        self.job_access.allow_metrics("GlueJobMetrics", "Glue", limited_to="Glue")
        self.crawler_access.allow(
            "CrawlerCatalog",
            [
                "glue:GetDatabase",
                "glue:GetTable",
                "glue:GetTables",
                "glue:CreateTable",
                "glue:UpdateTable",
                "glue:GetPartition",
                "glue:GetPartitions",
                "glue:BatchGetPartition",
                "glue:CreatePartition",
                "glue:BatchCreatePartition",
                "glue:UpdatePartition",
                "glue:BatchUpdatePartition",
            ],
            [
                format_arn(stack, service="glue", resource="catalog"),
                format_arn(stack, service="glue", resource="database", resource_name=database_name),
                format_arn(stack, service="glue", resource="table", resource_name=f"{database_name}/*"),
            ],
            wildcard_reason="The crawler creates one table per raw dataset it finds; access is limited to "
            "the tables of this environment's database.",
        )
        self.code.grant_read(self.job_access)
        self.connection: Optional[glue.CfnConnection] = None
        if network is not None:
            self.connection = self._network_connection(stack, name_prefix, network)

    def _network_connection(self, stack: Stack, name_prefix: str, network: NetworkConfig) -> glue.CfnConnection:
        """A NETWORK connection into the VPC (Glue runs a job's or crawler's workers in one subnet of one zone), which
        both roles may read, and the EC2 permissions Glue uses with it."""
        name = f"{name_prefix}-vpc"
        connection = glue.CfnConnection(
            self,
            "NetworkConnection",
            catalog_id=environment_of(stack).account,
            connection_input=glue.CfnConnection.ConnectionInputProperty(
                name=name,
                description=f"{name_prefix}: Glue jobs and crawlers run in the environment's VPC",
                connection_type="NETWORK",
                physical_connection_requirements=glue.CfnConnection.PhysicalConnectionRequirementsProperty(
                    subnet_id=network.glue_subnet_id,
                    availability_zone=network.availability_zone,
                    security_group_id_list=list(network.security_group_ids),
                ),
            ),
        )
        # cfn-lint W3010 ("avoid hardcoding availability zones"): a NETWORK connection must name the zone of its subnet,
        # which the user configures (network.availability_zone) and which synth cannot look up; the only exception
        # in the templates, and on this one resource.
        connection.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3010"]}})
        for access in (self.job_access, self.crawler_access):
            allow_glue_network_interfaces(access, network)
            access.allow(
                "ReadConnection",
                ["glue:GetConnection"],
                [format_arn(stack, service="glue", resource="catalog"),
                 format_arn(stack, service="glue", resource="connection", resource_name=name)],
            )
        return connection

    @staticmethod
    def _allow_logging(access: AccessPolicy, stack: Stack, log_groups: str, reason: str) -> None:
        # AssociateKmsKey is required by the security configuration's CloudWatch encryption.
        access.allow(
            "GlueLogs",
            ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:AssociateKmsKey"],
            [format_arn(stack, service="logs", resource="log-group", resource_name=log_groups, arn_format=ArnFormat.COLON_RESOURCE_NAME)],
            wildcard_reason=reason,
        )
