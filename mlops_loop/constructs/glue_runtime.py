"""What every Glue job and crawler of an environment shares: encryption, logs, code, the crawler role, and what
each job's own role starts with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from aws_cdk import ArnFormat, RemovalPolicy, Stack
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from pipeline_code.catalog import Dataset

from ..config.network import NetworkConfig
from .access_policy import AccessPolicy
from .arns import format_arn, s3_url
from .cdk_reads import environment_of, read_once, service_principal, stack_of
from .job_code import JobCode
from .network import allow_glue_network_interfaces

GLUE_TEMP_PREFIX = "glue-temp"


@dataclass(frozen=True)
class GlueJobRole:
    """The role one Glue job runs as (:meth:`GlueRuntime.job_role`), its policy, and the job's ``--TempDir``."""

    role: iam.Role
    access: AccessPolicy
    temp_dir: str


class GlueRuntime(Construct):
    """A Glue security configuration, the crawler role, encrypted log groups, job code, and a role per job.

    Defaults: S3 output SSE-KMS, CloudWatch logs SSE-KMS and job bookmarks CSE-KMS, all with
    ``key``; job logs go to ``<log_group_prefix>/output`` and ``/error`` (Glue 5's
    ``--custom-logGroup-prefix``), kept ``log_retention`` and encrypted with the same key; crawler logs go
    where Glue puts them under a security configuration, ``/aws-glue/crawlers-role/<role>-<configuration>``.
    The crawler role reads nothing until callers grant raw prefixes; each job gets a role of its own
    (:meth:`job_role`) with no data access either: callers grant exactly the prefixes and feature group that job
    uses, so no job can write another job's data. Without ``network`` (default) jobs and crawlers run on Glue's
    own network; given one, a NETWORK connection ``<prefix>-vpc`` in its first subnet and zone with its security
    groups (``self.connection``) carries every job and crawler into the VPC, and every role may read it and manage
    Glue's network interfaces.
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
        self._stack, self._name_prefix, self._artifacts_bucket = stack, name_prefix, artifacts_bucket
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
        self.code = JobCode(self, "Code")

        self.crawler_role = self._glue_role(self, "CrawlerRole", f"{name_prefix}: Glue crawlers over the raw zone")
        self.crawler_access = AccessPolicy(
            self, "CrawlerAccess", role=self.crawler_role, description=f"{name_prefix}: Glue crawlers"
        )
        self.crawler_access.allow_key("DataKey", key)
        # A crawler with a security configuration that encrypts CloudWatch logs writes to
        # /aws-glue/crawlers-role/<role name>-<configuration name> (Glue's naming; e.g.
        # aws-samples/aws-serverless-data-lake-framework grants exactly that group), not to /aws-glue/crawlers.
        # The role name is generated, so the group is matched by this environment's configuration name, which
        # only this crawler uses.
        self._allow_logging(self.crawler_access, stack, f"/aws-glue/crawlers-role/*-{self.security_configuration.name}:*",
                            "Glue names the crawler's encrypted log group after its generated role name and the security "
                            "configuration (fixed per environment), with one stream per crawl.")
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
        self._network = network
        self.connection: Optional[glue.CfnConnection] = None
        if network is not None:
            self.connection = self._network_connection(stack, name_prefix, network)
            self._allow_network(self.crawler_access, network)

    def job_role(self, scope: Construct, construct_id: str, *, job_name: str, script: str, dataset: Dataset) -> GlueJobRole:
        """A role of its own for the Glue job ``job_name`` (``<construct_id>Role`` and its policy
        ``<construct_id>Access`` in ``scope``), which runs ``pipeline_code/<script>`` over ``dataset``.

        It starts with what every job needs and nothing of the lake: the key (statement ``DataKey``), its log streams
        (``GlueLogs``), its own temporary directory ``glue-temp/<job_name>/`` in the artifacts bucket (``GlueTemp``;
        the job's ``--TempDir`` is ``temp_dir``), Glue's metrics (``GlueJobMetrics``), the job library, its script and
        its dataset's declaration (``JobLibrary``, ``Code...``), and with a network the VPC connection and Glue's
        network interfaces. The caller grants the prefixes and feature group the job uses on ``access``.
        """
        role = self._glue_role(scope, f"{construct_id}Role", f"{self._name_prefix}: Glue job {job_name}")
        access = AccessPolicy(scope, f"{construct_id}Access", role=role, description=f"{self._name_prefix}: Glue job {job_name}")
        # The security configuration encrypts what the job writes to S3 and CloudWatch, and its bookmarks, with the key.
        access.allow_key("DataKey", self.key)
        # Jobs write under our prefix (--custom-logGroup-prefix), which all jobs of the environment share.
        self._allow_logging(access, self._stack, f"{self.log_group_prefix}/*",
                            "Glue creates one log stream per job run and executor in the job's log groups; the names "
                            "are only known at run time.")
        # One temporary directory per job, as every other prefix a job writes: no job can write into another's.
        temp_prefix = f"{GLUE_TEMP_PREFIX}/{job_name}/"
        # Glue and Spark clear their temporary files there once a run is done with them.
        access.allow_prefix("GlueTemp", self._artifacts_bucket, temp_prefix, write=True, delete=True)
        # Glue publishes job metrics (--enable-metrics) to its own namespace only.
        access.allow_metrics("GlueJobMetrics", "Glue", limited_to="Glue")
        self.code.grant_glue_job(access, script=script, dataset=dataset)
        if self._network is not None:
            self._allow_network(access, self._network)
        return GlueJobRole(role, access, s3_url(read_once(self._artifacts_bucket, "bucket_name"), temp_prefix))

    @staticmethod
    def _glue_role(scope: Construct, construct_id: str, description: str) -> iam.Role:
        # No confused-deputy condition: the AWS Glue Developer Guide documents no aws:SourceArn or aws:SourceAccount
        # for the roles Glue assumes (its "Create an IAM role for AWS Glue" step trusts glue.amazonaws.com alone),
        # and a condition Glue does not satisfy would stop every job and crawler.
        return iam.Role(scope, construct_id, assumed_by=service_principal("glue.amazonaws.com"), description=description)

    def _allow_network(self, access: AccessPolicy, network: NetworkConfig) -> None:
        """Read the VPC connection and manage the network interfaces Glue creates with it."""
        allow_glue_network_interfaces(access, network)
        access.allow(
            "ReadConnection",
            ["glue:GetConnection"],
            [format_arn(self._stack, service="glue", resource="catalog"),
             format_arn(self._stack, service="glue", resource="connection", resource_name=self._connection_name)],
        )

    def _network_connection(self, stack: Stack, name_prefix: str, network: NetworkConfig) -> glue.CfnConnection:
        """A NETWORK connection into the VPC (Glue runs a job's or crawler's workers in one subnet of one zone)."""
        name = self._connection_name = f"{name_prefix}-vpc"
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
