"""The stateless data path: crawlers, Spark ETL and feature jobs, and their schedule."""

from __future__ import annotations

from typing import Any, Sequence

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from pipeline_code.catalog import Dataset

from pipeline_code.core.contract import pascal

from ..config import EnvironmentConfig
from ..constructs.dataset_workflow import DatasetWorkflow
from ..constructs.glue_runtime import GlueRuntime
from .lifetimes import RETENTION, removal_policy
from .storage_stack import StorageStack


class DataPipelineStack(Stack):
    """One Glue workflow per dataset (crawl → curate → features) on the environment's schedule.

    Holds no data: it can be destroyed and redeployed freely; everything it writes lives in the
    :class:`StorageStack` it is given.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        environment: EnvironmentConfig,
        name_prefix: str,
        datasets: Sequence[Dataset],
        storage: StorageStack,
        **stack_kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, termination_protection=environment.termination_protection, **stack_kwargs)
        lake = storage.lake
        glue_config = environment.glue
        buckets = {kind: lake.reference(self, kind) for kind in ("raw", "curated", "features", "artifacts")}
        self.add_stack_dependency(storage)
        self.runtime = GlueRuntime(
            self,
            "GlueRuntime",
            name_prefix=name_prefix,
            key=lake.key,
            artifacts_bucket=buckets["artifacts"],
            database_name=storage.database_name,
            log_retention=RETENTION[environment.log_retention_days],
            removal_policy=removal_policy(environment),
            network=environment.network,
        )
        self.workflows: dict[str, DatasetWorkflow] = {}
        for dataset in datasets:
            workflow = DatasetWorkflow(
                self,
                pascal(dataset.name),
                name_prefix=name_prefix,
                dataset=dataset,
                runtime=self.runtime,
                database_name=storage.database_name,
                raw_bucket=buckets["raw"],
                curated_bucket=buckets["curated"],
                features_bucket=buckets["features"],
                artifacts_bucket=buckets["artifacts"],
                feature_group=storage.feature_store.feature_groups[dataset.name],
                schedule=glue_config.etl_schedule,
                worker_type=glue_config.worker_type,
                number_of_workers=glue_config.number_of_workers,
                timeout_minutes=glue_config.timeout_minutes,
                max_quarantine_ratio=glue_config.max_quarantine_ratio,
            )
            self.workflows[dataset.name] = workflow
            CfnOutput(self, f"{workflow.node.id}WorkflowName", value=workflow.workflow.ref)
            CfnOutput(self, f"{workflow.node.id}RawPath", value=workflow.paths["raw"])
