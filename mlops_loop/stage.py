"""One CDK Stage per environment: the unit a user deploys (`cdk deploy '<env>/*'`)."""

from __future__ import annotations

from typing import Any, Optional

from aws_cdk import Environment, Stage, Tags
from constructs import Construct

from pipeline_code.core.contract import MODEL_TAG, TEAM_TAG, environment_prefix, environment_stack_names

from .config import AppConfig, EnvironmentConfig
from .config.serving import compiled_for_inferentia2
from .stacks.data_pipeline_stack import DataPipelineStack
from .stacks.operations_stack import OperationsStack
from .stacks.serving_stack import ServingStack
from .stacks.storage_stack import StorageStack
from .stacks.training_stack import TrainingStack


class MlopsStage(Stage):
    """All stacks of one environment, deployed to the account and region its config names.

    Stacks: ``Storage`` (stateful), ``DataPipeline``, ``Training``, ``Serving`` and ``Operations``. ``code_version`` (the
    git commit at synth) is recorded as lineage on every registered model version. Physical names start with
    ``<project>-<environment>`` so several environments can share an account. ``cli_config`` (default None: the default
    config) is the ``--config`` the workstation commands its alarms, notices and monitor reports print name.
    """

    def __init__(
        self,
        scope: Construct,
        *,
        app_config: AppConfig,
        environment: EnvironmentConfig,
        code_version: str,
        cli_config: Optional[str] = None,
        **kwargs: Any,
    ):
        super().__init__(
            scope,
            environment.name,
            env=Environment(account=environment.account, region=environment.region),
            **kwargs,
        )
        prefix = environment_prefix(app_config.project, environment.name)
        # The names the workstation tools find the stacks by (mlops_cli.lifecycle).
        stack_names = environment_stack_names(prefix)
        models = app_config.models_of(environment)
        # One tag set: on every resource (below) and in the request of every job created at run time.
        tags = app_config.tags_of(environment)
        # A dataset is provisioned once per environment however many models use it.
        datasets = [app_config.datasets[name] for name in dict.fromkeys(m.dataset for m in models)]

        self.storage = StorageStack(
            self,
            "Storage",
            stack_name=stack_names["storage"],
            description=f"{prefix}: stateful layer (KMS keys, S3 lake, Glue database, Feature Store, Model Registry)",
            environment=environment,
            name_prefix=prefix,
            datasets=datasets,
            models={m.name: m.description for m in models},
            owners={m.name: m.owner.team for m in models if m.owner is not None},
        )
        self.data_pipeline = DataPipelineStack(
            self,
            "DataPipeline",
            stack_name=stack_names["data-pipeline"],
            description=f"{prefix}: Glue crawlers, Spark ETL and feature ingestion",
            environment=environment,
            name_prefix=prefix,
            datasets=datasets,
            storage=self.storage,
        )
        self.training = TrainingStack(
            self,
            "Training",
            stack_name=stack_names["training"],
            description=f"{prefix}: SageMaker training pipelines (prepare, train, evaluate, gate, register)",
            environment=environment,
            name_prefix=prefix,
            models=models,
            storage=self.storage,
            code_version=code_version,
            job_tags=tags,
            compiled_models=[m.name for m in models if compiled_for_inferentia2(app_config.serving_of(environment, m))],
        )
        self.serving = ServingStack(
            self,
            "Serving",
            stack_name=stack_names["serving"],
            description=f"{prefix}: model endpoints and batch scoring, deployed by approving a model version",
            environment=environment,
            name_prefix=prefix,
            models=[(m, app_config.serving_of(environment, m)) for m in models],
            storage=self.storage,
            job_tags=tags,
        )
        self.operations = OperationsStack(
            self,
            "Operations",
            stack_name=stack_names["operations"],
            description=f"{prefix}: notifications and the guarded retraining trigger",
            environment=environment,
            name_prefix=prefix,
            project=app_config.project,
            training=self.training,
            storage=self.storage,
            serving=self.serving,
            job_tags=tags,
            cli_config=cli_config,
        )
        for key, value in tags:
            Tags.of(self).add(key, value)
        # An owned model's (models.<model>.owner) own resources name it and its team: its endpoint's hours, its
        # pipeline, package group and monitor split by model and team in Cost Explorer. Not the dataset's feature
        # group, shared by its models and whose Tags are create-only (a new tag would replace it). Unowned models keep
        # the environment's tags alone, so a config without owners keeps its templates.
        for model in models:
            if model.owner is None:
                continue
            owned = [self.training.pipelines[model.name], self.storage.registry.groups[model.name],
                     self.serving.models.get(model.name), self.operations.monitors.get(model.name),
                     self.operations.score_by_id.get(model.name)]
            for construct in owned:
                if construct is not None:
                    Tags.of(construct).add(MODEL_TAG, model.name)
                    Tags.of(construct).add(TEAM_TAG, model.owner.team)
