"""One CDK Stage per environment: the unit a user deploys (`cdk deploy '<env>/*'`)."""

from __future__ import annotations

from typing import Any

from aws_cdk import Environment, Stage, Tags
from constructs import Construct

from pipeline_code.core.contract import environment_prefix, serving_stack_name, stack_name

from .config import AppConfig, EnvironmentConfig
from .stacks.data_pipeline_stack import DataPipelineStack
from .stacks.operations_stack import OperationsStack
from .stacks.serving_stack import ServingStack
from .stacks.storage_stack import StorageStack
from .stacks.training_stack import TrainingStack


class MlopsStage(Stage):
    """All stacks of one environment, deployed to the account and region its config names.

    Stacks: ``Storage`` (stateful), ``DataPipeline``, ``Training``, ``Serving`` and ``Operations``. ``stage_code_version`` (the
    git commit at synth) is recorded as lineage on every registered model version. Physical names start with
    ``<project>-<environment>`` so several environments can share an account.
    """

    def __init__(
        self,
        scope: Construct,
        *,
        stage_app_config: AppConfig,
        stage_env: EnvironmentConfig,
        stage_code_version: str,
        **kwargs: Any,
    ):
        super().__init__(
            scope,
            stage_env.name,
            env=Environment(account=stage_env.account, region=stage_env.region),
            **kwargs,
        )
        prefix = environment_prefix(stage_app_config.project, stage_env.name)
        models = stage_app_config.models_of(stage_env)
        # A dataset is provisioned once per environment however many models use it.
        datasets = [stage_app_config.datasets[name] for name in dict.fromkeys(m.dataset for m in models)]

        self.storage = StorageStack(
            self,
            "Storage",
            stack_name=stack_name(prefix, "storage"),
            description=f"{prefix}: stateful layer (KMS keys, S3 lake, Glue database, Feature Store, Model Registry)",
            storage_env=stage_env,
            storage_name_prefix=prefix,
            storage_datasets=datasets,
            storage_models={m.name: m.description for m in models},
        )
        self.data_pipeline = DataPipelineStack(
            self,
            "DataPipeline",
            stack_name=stack_name(prefix, "data-pipeline"),
            description=f"{prefix}: Glue crawlers, Spark ETL and feature ingestion",
            pipeline_env=stage_env,
            pipeline_name_prefix=prefix,
            pipeline_datasets=datasets,
            pipeline_storage=self.storage,
        )
        self.training = TrainingStack(
            self,
            "Training",
            stack_name=stack_name(prefix, "training"),
            description=f"{prefix}: SageMaker training pipelines (prepare, train, evaluate, gate, register)",
            training_env=stage_env,
            training_name_prefix=prefix,
            training_models=models,
            training_storage=self.storage,
            training_code_version=stage_code_version,
        )
        self.serving = ServingStack(
            self,
            "Serving",
            stack_name=serving_stack_name(prefix),
            description=f"{prefix}: model endpoints and batch scoring, deployed by approving a model version",
            serving_env=stage_env,
            serving_name_prefix=prefix,
            serving_models=[(m, stage_app_config.serving_of(stage_env, m)) for m in models],
            serving_storage=self.storage,
        )
        self.operations = OperationsStack(
            self,
            "Operations",
            stack_name=stack_name(prefix, "operations"),
            description=f"{prefix}: notifications and the guarded retraining trigger",
            ops_env=stage_env,
            ops_name_prefix=prefix,
            ops_training=self.training,
            ops_storage=self.storage,
            ops_serving=self.serving,
        )
        Tags.of(self).add("project", stage_app_config.project)
        Tags.of(self).add("environment", stage_env.name)
        Tags.of(self).add("tier", stage_env.tier)
