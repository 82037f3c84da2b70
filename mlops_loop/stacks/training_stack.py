"""The training stack: one SageMaker Pipeline per model, registering into the Storage stack's registry."""

from __future__ import annotations

from typing import Any, Sequence

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from pipeline_code.core.contract import pascal, pipeline_name

from ..config import EnvironmentConfig, ModelConfig
from ..constructs.job_code import JobCode
from ..constructs.training_pipeline import TrainingPipeline
from .storage_stack import StorageStack


class TrainingStack(Stack):
    """Training pipelines of one environment (stateless: the data and the registry live in Storage)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        training_env: EnvironmentConfig,
        training_name_prefix: str,
        training_models: Sequence[ModelConfig],
        training_storage: StorageStack,
        training_code_version: str,
        **stack_kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **stack_kwargs)
        self.add_stack_dependency(training_storage)
        lake = training_storage.lake
        code = JobCode(self, "Code")
        buckets = {kind: lake.reference(self, kind) for kind in ("features", "curated", "artifacts")}
        self.pipelines: dict[str, TrainingPipeline] = {}
        for model in training_models:
            pipeline = TrainingPipeline(
                self,
                pascal(model.name),
                pipeline_name=pipeline_name(training_name_prefix, model.name),
                pipeline_model=model,
                pipeline_training=training_env.training,
                pipeline_gate=model.gate_in(training_env.gate),
                pipeline_registry=training_storage.registry,
                pipeline_key=lake.key,
                pipeline_features_bucket=buckets["features"],
                pipeline_curated_bucket=buckets["curated"],
                pipeline_artifacts_bucket=buckets["artifacts"],
                pipeline_code=code,
                pipeline_code_version=training_code_version,
            )
            self.pipelines[model.name] = pipeline
            CfnOutput(self, f"{pipeline.node.id}PipelineName", value=pipeline.pipeline.pipeline_name)
