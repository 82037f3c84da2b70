"""The training stack: one SageMaker Pipeline per model, registering into the Storage stack's registry."""

from __future__ import annotations

from typing import Any, Collection, Sequence

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
        environment: EnvironmentConfig,
        name_prefix: str,
        models: Sequence[ModelConfig],
        storage: StorageStack,
        code_version: str,
        job_tags: Sequence[tuple[str, str]],
        compiled_models: Collection[str] = (),
        **stack_kwargs: Any,
    ) -> None:
        """``job_tags``: the environment's tags, which every job of every pipeline carries; ``compiled_models``
        (default none): the models this environment serves on ml.inf2, whose pipelines compile them."""
        super().__init__(scope, construct_id, termination_protection=environment.termination_protection, **stack_kwargs)
        self.add_stack_dependency(storage)
        lake = storage.lake
        code = JobCode(self, "Code")
        buckets = {kind: lake.reference(self, kind) for kind in ("features", "curated", "artifacts")}
        self.pipelines: dict[str, TrainingPipeline] = {}
        for model in models:
            pipeline = TrainingPipeline(
                self,
                pascal(model.name),
                pipeline_name=pipeline_name(name_prefix, model.name),
                model=model,
                training=environment.training,
                gate=model.gate_in(environment.gate),
                registry=storage.registry,
                key=lake.key,
                features_bucket=buckets["features"],
                curated_bucket=buckets["curated"],
                artifacts_bucket=buckets["artifacts"],
                code=code,
                code_version=code_version,
                compile_for_inferentia2=model.name in compiled_models,
                network=environment.network,
                tags=job_tags,
            )
            self.pipelines[model.name] = pipeline
            CfnOutput(self, f"{pipeline.node.id}PipelineName", value=pipeline.pipeline.pipeline_name)
