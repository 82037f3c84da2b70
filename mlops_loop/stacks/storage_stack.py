"""The stateful stack: everything that holds data and must outlive a redeploy."""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

from aws_cdk import ArnFormat, CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_athena as athena
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from constructs import Construct

from pipeline_code.catalog import Dataset
from pipeline_code.core.contract import DRIFT_MONITOR_REPORTS, MONITOR_TABLE_PARTITIONS, MONITOR_TABLES, MONITOR_TABLES_FIRST_DAY
from pipeline_code.core.contract import inference_prefix, pascal

from ..config import EnvironmentConfig
from ..constructs.access_policy import AccessPolicy
from ..constructs.arns import format_arn, s3_url
from ..constructs.cdk_reads import read_once
from ..constructs.cost_budget import BUDGETS
from ..constructs.data_lake import ATHENA_RESULTS_PREFIX, DataLake
from ..constructs.feature_store import FeatureStore
from ..constructs.model_registry import ModelRegistry
from ..constructs.service_key import service_key
from ..naming import analyst_role_name
from .lifetimes import removal_policy


class StorageStack(Stack):
    """KMS key, S3 data lake, Glue database, Feature Store and Model Registry of one environment.

    Stateful resources take the environment's removal policy (kept outside dev: ``lifetimes.removal_policy``)
    and the stack is termination-protected whenever the environment says so (always in prod). Logical IDs of the
    resources here are pinned by tests: renaming one would replace (and, with DESTROY, delete) data.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        environment: EnvironmentConfig,
        name_prefix: str,
        datasets: Sequence[Dataset],
        models: Mapping[str, str],
        owners: Optional[Mapping[str, str]] = None,
        **stack_kwargs: Any,
    ) -> None:
        """``owners``: each owned model's team (``models.<model>.owner.team``; default: none), for the approver roles
        of the teams with approvers of their own (``environment.team_approvers``)."""
        super().__init__(scope, construct_id, termination_protection=environment.termination_protection, **stack_kwargs)
        removal = removal_policy(environment)
        lake_config = environment.data_lake
        self.lake = DataLake(
            self,
            "DataLake",
            name_prefix=name_prefix,
            removal_policy=removal,
            raw_expiration_days=lake_config.raw_expiration_days,
            curated_infrequent_access_days=lake_config.curated_infrequent_access_days,
            noncurrent_version_expiration_days=lake_config.noncurrent_version_expiration_days,
            access_log_expiration_days=lake_config.access_log_expiration_days,
            inference_expiration_days=lake_config.inference_expiration_days,
            inference_records_expiration_days=lake_config.inference_records_expiration_days,
            rewritten_noncurrent_days=lake_config.rewritten_noncurrent_days,
            pipeline_work_expiration_days=lake_config.pipeline_work_expiration_days,
            models=list(models),
        )
        self.database_name = name_prefix.replace("-", "_")
        database = glue.CfnDatabase(
            self,
            "Database",
            catalog_id=self.account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=self.database_name,
                description=f"{name_prefix}: raw (crawled) and curated tables",
                location_uri=s3_url(read_once(self.lake.curated_bucket, "bucket_name")),
            ),
        )
        database.apply_removal_policy(removal)
        # Where analysts query predictions, labels and the monitor's results (Athena, QuickSight): its settings override
        # the client's, so every result lands in the inference bucket's athena-results/ (expiring: DataLake), encrypted
        # with the data key and owned by this account; a query cannot write results elsewhere or unencrypted.
        self.analytics_workgroup = athena.CfnWorkGroup(
            self,
            "AnalyticsWorkGroup",
            name=f"{name_prefix}-analytics",
            description=f"{name_prefix}: analysts' queries; results encrypted with the data key, kept 30 days",
            state="ENABLED",
            # Configuration, not data (its results are S3 objects with their own expiry): deleted with the stack, its
            # saved queries and history too, so nothing retained blocks a redeploy under the same name.
            recursive_delete_option=True,
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                engine_version=athena.CfnWorkGroup.EngineVersionProperty(selected_engine_version="Athena engine version 3"),
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=f"s3://{self.lake.bucket_names['inference']}/{ATHENA_RESULTS_PREFIX}/",
                    expected_bucket_owner=self.account,
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_KMS", kms_key=read_once(self.lake.key, "key_arn")),
                ),
            ),
        )
        self.monitor_tables = self._monitor_tables(name_prefix, list(models))
        self.feature_store = FeatureStore(
            self,
            "FeatureStore",
            name_prefix=name_prefix,
            datasets=datasets,
            offline_bucket=self.lake.reference(self, "features"),
            key=self.lake.key,
            online=environment.feature_store.online_store,
            online_ttl_days=environment.feature_store.online_ttl_days,
            removal_policy=removal,
        )
        self.registry = ModelRegistry(
            self,
            "Registry",
            name_prefix=name_prefix,
            models=models,
            removal_policy=removal,
            card_key=self.lake.key,
            approvers=environment.approvers,
            team_approvers={team: ([m for m, t in (owners or {}).items() if t == team], arns)
                            for team, arns in environment.team_approvers.items()},
        )
        # Notifications, the retrain trigger's logs and dead letters: encrypted, and usable by the
        # services that deliver into them (EventBridge rules and CloudWatch alarms).
        # With a budget (config 'budget'), AWS Budgets publishes its notices to the topic too (constructs.cost_budget).
        budget_publisher = (BUDGETS,) if environment.budget is not None else ()
        self.ops_key = service_key(
            self,
            "OpsKey",
            alias=f"alias/{name_prefix}/ops",
            description=f"{name_prefix}: notifications, trigger logs and dead letters",
            publishers=("events.amazonaws.com", "cloudwatch.amazonaws.com", *budget_publisher),
            # CloudWatch names the alarm as the source when it publishes to an encrypted topic, so the key
            # serves this environment's alarms only (``<prefix>-...``: every alarm with an SNS action; SNS
            # Developer Guide, sns-key-management "compatibility with AWS services": aws:SourceAccount and
            # aws:SourceArn in the key policy). EventBridge gets neither: the same guide says adding
            # aws:SourceAccount and aws:SourceArn to a KMS key policy "is not supported for EventBridge-to-encrypted
            # topics", and deliveries under such a condition fail (awslabs/landing-zone-accelerator-on-aws#407,
            # awslabs/aws-deployment-framework#769) - the pipeline-failure and failed-rollout notifications would
            # never arrive. Its rules are pinned by ARN in the topic and dead-letter queue policies instead
            # (rule_notifications.notify_topic), so no other account's rule can publish through this key.
            publisher_sources={"cloudwatch.amazonaws.com": format_arn(
                self,
                service="cloudwatch", resource="alarm", resource_name=f"{name_prefix}-*",
                arn_format=ArnFormat.COLON_RESOURCE_NAME)},
            # Budgets gets no source condition either: no AWS guide says it sends aws:SourceAccount or aws:SourceArn
            # to KMS when it publishes to an encrypted topic, and one it does not send would drop every budget notice
            # with no error anywhere. The topic's policy binds it to this account's budgets (CostBudget).
            unbound_publishers=("events.amazonaws.com", *budget_publisher),
            removal_policy=removal,
        )
        # The notification watchdog's topic (Operations stack): the alarm that says a notice could not be delivered
        # must not need the ops key the notice may have failed on. The environment's alarms alone may use it, as they
        # may the ops key; no rule publishes to that topic and no log group is encrypted with it.
        self.watchdog_key = service_key(
            self,
            "WatchdogKey",
            alias=f"alias/{name_prefix}/watchdog",
            description=f"{name_prefix}: the notification watchdog topic (alarms that say people were not told)",
            publishers=("cloudwatch.amazonaws.com",),
            publisher_sources={"cloudwatch.amazonaws.com": format_arn(
                self,
                service="cloudwatch", resource="alarm", resource_name=f"{name_prefix}-*",
                arn_format=ArnFormat.COLON_RESOURCE_NAME)},
            log_groups=False,
            removal_policy=removal,
        )
        self.analyst_role = self._analyst_role(name_prefix, list(models))
        # The offline store must exist before SageMaker validates its S3 location.
        self.feature_store.node.add_dependency(self.lake.features_bucket)

        CfnOutput(self, "DataKeyArn", value=read_once(self.lake.key, "key_arn"))
        for label, bucket in (
            ("Raw", self.lake.raw_bucket),
            ("Curated", self.lake.curated_bucket),
            ("Features", self.lake.features_bucket),
            ("Artifacts", self.lake.artifacts_bucket),
            ("Inference", self.lake.inference_bucket),
        ):
            CfnOutput(self, f"{label}BucketName", value=read_once(bucket, "bucket_name"))
        CfnOutput(self, "GlueDatabaseName", value=self.database_name)
        CfnOutput(self, "AnalyticsWorkGroupName", value=self.analytics_workgroup.name)
        CfnOutput(self, "AnalystRoleArn", value=read_once(self.analyst_role, "role_arn"))
        for name, group in self.feature_store.feature_groups.items():
            CfnOutput(self, f"FeatureGroup{group.node.id}", value=group.feature_group_name)
        for model, group in self.registry.groups.items():
            CfnOutput(self, f"ModelPackageGroup{group.node.id}", value=group.model_package_group_name)
        CfnOutput(self, "ApproverRoleArn", value=read_once(self.registry.approver_role, "role_arn"))
        for team, role in self.registry.team_approver_roles.items():
            CfnOutput(self, f"{pascal(team)}TeamApproverRoleArn", value=read_once(role, "role_arn"),
                      description=f"Approves the versions of team {team}'s models (team_approvers), and no other's")

    def _monitor_tables(self, name_prefix: str, models: Sequence[str]) -> dict:
        """The drift monitor's tables in the environment's database (``MONITOR_TABLES``: ``predictions`` over
        ``predictions/``, ``monitor_results`` over ``monitor-results/`` of the inference bucket), Parquet, partitioned
        by model and date with partition projection (the model an enum of ``models``, the date a day range from
        ``MONITOR_TABLES_FIRST_DAY`` to today), so no crawler or MSCK REPAIR is needed: a new run's folder is read as
        soon as it is written. None without a model (an enum needs a value)."""
        if not models:
            return {}
        bucket = self.lake.bucket_names["inference"]
        tables = {}
        for prefix, (table, columns) in MONITOR_TABLES.items():
            location = f"s3://{bucket}/{prefix}/"
            cfn = glue.CfnTable(
                self,
                f"{''.join(p.title() for p in table.split('_'))}Table",
                catalog_id=self.account,
                database_name=self.database_name,
                table_input=glue.CfnTable.TableInputProperty(
                    name=table,
                    description=f"{name_prefix}: the drift monitor's {prefix} (docs/monitoring.md, Querying the monitor's "
                    "records with Athena)",
                    table_type="EXTERNAL_TABLE",
                    parameters={
                        "classification": "parquet",
                        "EXTERNAL": "TRUE",
                        "projection.enabled": "true",
                        "projection.model.type": "enum",
                        "projection.model.values": ",".join(models),
                        "projection.date.type": "date",
                        "projection.date.format": "yyyy-MM-dd",
                        "projection.date.range": f"{MONITOR_TABLES_FIRST_DAY},NOW",
                        "projection.date.interval": "1",
                        "projection.date.interval.unit": "DAYS",
                        "storage.location.template": location + "${model}/date=${date}/",
                    },
                    partition_keys=[glue.CfnTable.ColumnProperty(name=n, type=t) for n, t in MONITOR_TABLE_PARTITIONS],
                    storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                        location=location,
                        input_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                        output_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                        serde_info=glue.CfnTable.SerdeInfoProperty(
                            serialization_library="org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"),
                        # model is the partition (the results files hold it too: the partition's value is read)
                        columns=[glue.CfnTable.ColumnProperty(name=n, type=t) for n, t in columns
                                 if n not in dict(MONITOR_TABLE_PARTITIONS)],
                    ),
                ),
            )
            # Definitions, not data: the records stay in the bucket whatever becomes of the table, and the deploy makes
            # it again exactly (partition projection: no partitions to lose). So it goes with its stack, in every
            # environment: a kept one would make the re-created Storage stack fail "already exists" on its fixed name
            # (docs/deploying.md, Recovering an environment).
            cfn.apply_removal_policy(RemovalPolicy.DESTROY)
            cfn.add_dependency(self.node.find_child("Database"))
            tables[prefix] = cfn
        return tables

    def _analyst_role(self, name_prefix: str, models: Sequence[str]) -> iam.Role:
        """``<prefix>-analyst``: queries the predictions, labels and monitor results in the analytics workgroup, and
        may define tables of its own (``analytics_*``) in the environment's database; reads no traffic (the capture
        holds every feature callers sent), no other bucket, and changes nothing of the loop."""
        role = iam.Role(
            self,
            "AnalystRole",
            role_name=analyst_role_name(name_prefix),
            description="Queries predictions, labels and monitor results with Athena; changes nothing of the loop",
            # Who may assume it is the account's choice (the callers' own policies, e.g. an Identity Center permission set).
            assumed_by=iam.AccountPrincipal(self.account),
        )
        access = AccessPolicy(self, "AnalystAccess", role=role, description=f"{name_prefix} analyst: Athena queries")
        access.allow(
            "RunQueries",
            ["athena:StartQueryExecution", "athena:GetQueryExecution", "athena:GetQueryResults",
             "athena:StopQueryExecution", "athena:GetWorkGroup", "athena:BatchGetQueryExecution",
             "athena:ListQueryExecutions"],
            [format_arn(self, service="athena", resource="workgroup", resource_name=self.analytics_workgroup.name)],
        )
        catalog = format_arn(self, service="glue", resource="catalog")
        database = format_arn(self, service="glue", resource="database", resource_name=self.database_name)
        access.allow(
            "ReadCatalog",
            ["glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:GetPartition", "glue:GetPartitions",
             "glue:BatchGetPartition"],
            [catalog, database, format_arn(self, service="glue", resource="table", resource_name=f"{self.database_name}/*")],
            wildcard_reason="Any table of this environment's database (the crawler's and the analysts' own), read only.",
        )
        access.allow(
            "DefineAnalyticsTables",
            ["glue:CreateTable", "glue:UpdateTable", "glue:DeleteTable"],
            [catalog, database,
             format_arn(self, service="glue", resource="table", resource_name=f"{self.database_name}/analytics_*")],
            wildcard_reason="Only tables named analytics_*: the analysts' own definitions, never the crawler's tables.",
        )
        inference = self.lake.reference(self, "inference")
        for model in models:
            access.allow_prefix(f"ReadMonitor{pascal(model)}", inference, inference_prefix(model, DRIFT_MONITOR_REPORTS))
            # The monitor's tables (predictions, monitor_results): Athena lists and reads their folders.
            for prefix in MONITOR_TABLES:
                access.allow_prefix(f"Read{''.join(p.title() for p in prefix.split('-'))}{pascal(model)}", inference,
                                    inference_prefix(model, prefix))
            access.allow_prefix(f"ReadLabels{pascal(model)}", inference, inference_prefix(model, "labels"))
        access.allow_prefix("QueryResults", inference, f"{ATHENA_RESULTS_PREFIX}/", write=True, delete=False)
        access.allow("ResultsBucket", ["s3:GetBucketLocation"], [access.s3_arn(self.lake.bucket_names["inference"])])
        access.allow_key("DataKey", self.lake.key)
        return role

