"""The serving stack: each model's endpoint (or batch schedule), deployed by approving a version."""

from __future__ import annotations

from typing import Any, Sequence

from aws_cdk import CfnCondition, CfnOutput, CfnParameter, DefaultStackSynthesizer, Fn, Stack
from aws_cdk import aws_s3 as s3
from constructs import Construct

from pipeline_code.core.contract import (
    TRAFFIC_INPUT,
    TRAFFIC_OUTPUT,
    endpoint_output_names,
    inference_prefix,
    model_sha256_parameter_name,
    package_parameter_name,
    pascal,
    target_model_parameter_name,
)

from ..config import EnvironmentConfig, ModelConfig
from ..config.serving import ServingConfig
from ..constructs.access_policy import owner_of
from ..constructs.cdk_reads import environment_of, read_once
from ..constructs.handler_function import dead_letter_queue
from ..constructs.multi_model_endpoint import MultiModelEndpoint, MultiModelMember
from ..constructs.native_model_monitor import NativeModelMonitor
from ..constructs.served_model import ServedModel
from ..constructs.serving_deployer import ServingDeployer
from ..constructs.training_pipeline import xgboost_image_uri, xgboost_repository
from ..naming import batch_dead_letters_queue_name, serving_deployer_role_name
from .lifetimes import removal_policy
from .storage_stack import StorageStack

class ServingStack(Stack):
    """Serving of one environment, kept entirely in CloudFormation.

    Each model has a parameter ``<Model>ModelPackageArn`` (empty by default: the stack deploys with
    no endpoint) whose allowed pattern admits only versions of that model's package group in this
    account and region, so a wrong or foreign ARN is rejected before anything changes. The deploy
    handler (Operations stack) sets it on approval with ``UsePreviousTemplate``, passing the
    ``Deployer`` role: the stack never drifts from its template, and a failed rollout rolls the
    parameter back. ``cdk deploy`` keeps the parameter's current value (the CLI reuses previous
    parameter values), so infrastructure changes and model versions move independently.

    The stack has no assets and no bootstrap-version rule, so the handler's template-less update
    needs nothing from the CDK bootstrap resources.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        environment: EnvironmentConfig,
        name_prefix: str,
        models: Sequence[tuple[ModelConfig, ServingConfig]],
        storage: StorageStack,
        job_tags: Sequence[tuple[str, str]],
        **stack_kwargs: Any,
    ) -> None:
        """``job_tags``: the environment's tags, which the jobs of batch models' schedules carry; their project and
        environment tags also hold the deployer to this environment's models and endpoint configs."""
        super().__init__(
            scope,
            construct_id,
            synthesizer=DefaultStackSynthesizer(generate_bootstrap_version_rule=False),
            termination_protection=environment.termination_protection,
            **stack_kwargs,
        )
        self.add_stack_dependency(storage)
        self.name_prefix = name_prefix
        lake = storage.lake
        registry = storage.registry
        inference = lake.reference(self, "inference")
        artifacts = lake.reference(self, "artifacts")
        image_repository = xgboost_repository(self)

        # A fixed name lets the Operations stack refer to it without a cross-stack export.
        self.deployer = ServingDeployer(
            self, "Deployer", role_name=serving_deployer_role_name(name_prefix), description=f"{name_prefix} serving deployments",
            owner=owner_of(job_tags),
        )
        # Batch runs their schedules could not start (quota, permission, missing model): the Operations stack alarms
        # on its arrivals by name (``<prefix>-batch-dead-letters``). Only when a model is served in batch.
        self.schedule_dead_letters = None
        if any(serving.mode == "batch" for _, serving in models):
            self.schedule_dead_letters = dead_letter_queue(
                self, key=storage.ops_key, owner="batch transform schedules", construct_id="BatchScheduleDeadLetters",
                removal_policy=removal_policy(environment), queue_name=batch_dead_letters_queue_name(name_prefix))
        self.models: dict[str, ServedModel] = {}
        # Models that opt into native Model Monitor -> its construct (the Operations stack tells people of failed jobs).
        self.native_monitors: dict[str, NativeModelMonitor] = {}
        self.parameters: dict[str, CfnParameter] = {}
        self.digest_parameters: dict[str, CfnParameter] = {}
        # Every model this stack serves, whatever its mode (the Operations stack monitors each one).
        self.serving_configs: dict[str, tuple[ModelConfig, ServingConfig]] = {}
        members: dict[str, list[MultiModelMember]] = {}
        here = environment_of(self)
        for model, serving in models:
            group = registry.group_names[model.name].lower()
            parameter = CfnParameter(
                self,
                package_parameter_name(model.name),
                type="String",
                default="",
                description=f"Model package version serving {model.name} (set on approval; empty = not deployed)",
                allowed_pattern=rf"^$|^arn:aws[a-z-]*:sagemaker:{here.region}:{here.account}:model-package/{group}/[0-9]+$",
                constraint_description=f"empty, or the ARN of a version in model package group {group} of this account and region",
            )
            condition = CfnCondition(
                self, f"{pascal(model.name)}Deployed", expression=Fn.condition_not(Fn.condition_equals(parameter.value_as_string, ""))
            )
            self.parameters[model.name] = parameter
            self.serving_configs[model.name] = (model, serving)
            if serving.mode != "multi_model":
                # An MME loads every member under one environment: its staged copy is checked by the deployer instead.
                self.digest_parameters[model.name] = CfnParameter(
                    self,
                    model_sha256_parameter_name(package_parameter_name(model.name)),
                    type="String",
                    default="",
                    description=f"Model digest of the version serving {model.name}, checked by the container at load (set on approval)",
                    allowed_pattern=r"^$|^[0-9a-f]{64}$",
                    constraint_description="empty, or the 64 lower-case hex digits of the model package's model_sha256",
                )
            if serving.mode == "multi_model":
                members.setdefault(serving.multi_model.endpoint, []).append(
                    MultiModelMember(model=model, serving=serving, package_arn=parameter.value_as_string, condition=condition)
                )
                continue
            served = ServedModel(
                self,
                pascal(model.name),
                name_prefix=name_prefix,
                model=model,
                serving=serving,
                package_arn=parameter.value_as_string,
                model_sha256=self.digest_parameters[model.name].value_as_string,
                condition=condition,
                key=lake.key,
                inference_bucket=inference,
                artifacts_bucket=artifacts,
                image_repository=image_repository,
                notification_key=storage.ops_key,
                network=environment.network,
                schedule_dead_letters=self.schedule_dead_letters,
                job_tags=job_tags,
            )
            self.models[model.name] = served
            self.deployer.allow_served_model(served, registry.package_arns(model.name))
            if serving.native_model_monitor:
                self._native_monitor(model, served, condition, environment, storage, inference)
            CfnOutput(self, f"{pascal(model.name)}Mode", value=serving.mode)
            if served.endpoint_name:
                endpoint_output, config_output = endpoint_output_names(package_parameter_name(model.name))
                CfnOutput(self, endpoint_output, value=served.endpoint_name)
                # What a hand-deleted endpoint is re-created with (the deploy handler's reconcile reads it).
                CfnOutput(self, config_output, value=served.model_endpoint.endpoint_config.attr_endpoint_config_name,
                          condition=condition)
            self._caller_outputs(pascal(model.name), served, inference)
        self.multi_model_endpoints: dict[str, MultiModelEndpoint] = {}
        for endpoint, group in members.items():
            mme = MultiModelEndpoint(
                self,
                f"{pascal(endpoint)}MultiModel",
                name_prefix=name_prefix,
                endpoint=endpoint,
                config=environment.multi_model_endpoints[endpoint],
                members=group,
                key=lake.key,
                artifacts_bucket=artifacts,
                inference_bucket=inference,
                image_uri=xgboost_image_uri(environment.region),
                image_repository=image_repository,
                # The bootstrap tarball is an asset: kept in Storage so this stack stays asset-free.
                asset_scope=storage,
                network=environment.network,
            )
            self.multi_model_endpoints[endpoint] = mme
            self.deployer.allow_multi_model(mme, name_prefix=name_prefix)
            for member in group:
                name = member.model.name
                CfnOutput(self, f"{pascal(name)}Mode", value="multi_model")
                endpoint_output, config_output = endpoint_output_names(package_parameter_name(name))
                CfnOutput(self, endpoint_output, value=mme.endpoint_name)
                CfnOutput(self, config_output, value=mme.endpoint_config.attr_endpoint_config_name, condition=mme.condition)
                CfnOutput(self, f"{pascal(name)}TargetModelParameter", value=target_model_parameter_name(name_prefix, name))
                CfnOutput(self, f"{pascal(name)}CaptureUri",
                          value=f"s3://{read_once(inference, 'bucket_name')}/{inference_prefix(name, 'capture')}")
        self.deployer.allow_common(key=lake.key, storage=storage)
        CfnOutput(self, "DeployerRoleArn", value=read_once(self.deployer.role, "role_arn"))

    def _caller_outputs(self, name: str, served: ServedModel, inference: s3.IBucket) -> None:
        """Where a model's callers and its monitor's readers look: the capture (none for batch, whose transform writes
        none), an async model's input prefix (the only one its role reads) and its topics (CloudFormation names them),
        a batch model's input and output prefixes. Known before the first approval, like the topics."""
        bucket = f"s3://{read_once(inference, 'bucket_name')}/"
        if served.mode == "batch":
            CfnOutput(self, f"{name}BatchInputUri", value=f"{bucket}{inference_prefix(served.model_name, 'batch')}{TRAFFIC_INPUT}")
            CfnOutput(self, f"{name}BatchOutputUri", value=f"{bucket}{inference_prefix(served.model_name, 'batch')}{TRAFFIC_OUTPUT}")
            return
        CfnOutput(self, f"{name}CaptureUri", value=served.capture_uri)
        if served.mode == "async":
            CfnOutput(self, f"{name}AsyncInputUri", value=f"{bucket}{inference_prefix(served.model_name, 'async')}{TRAFFIC_INPUT}")
            topics = served.model_endpoint.topics
            CfnOutput(self, f"{name}AsyncSuccessTopicArn", value=read_once(topics["success"], "topic_arn"))
            CfnOutput(self, f"{name}AsyncErrorTopicArn", value=read_once(topics["error"], "topic_arn"))

    def _native_monitor(self, model: ModelConfig, served: ServedModel, condition: CfnCondition,
                        env: EnvironmentConfig, storage: StorageStack, inference: Any) -> None:
        """The opt-in native Model Monitor schedules, created with the endpoint on the first approval."""
        if served.endpoint_name is None:  # the config refuses native monitoring without an endpoint
            raise ValueError(f"model {model.name!r}: native Model Monitor needs an endpoint; {served.mode} has none")
        native = NativeModelMonitor(
            self,
            f"{pascal(model.name)}NativeMonitor",
            name_prefix=self.name_prefix,
            model=model,
            endpoint_name=served.endpoint_name,
            condition=condition,
            inference_bucket=inference,
            key=storage.lake.key,
            schedule=env.monitoring.schedule,
            instance_type=env.training.processing_instance_type,
            # Its two Clarify config files are assets: kept in Storage so this stack stays asset-free.
            asset_scope=storage,
            network=env.network,
        )
        # SageMaker checks the endpoint exists; schedules name their definitions, not Ref them.
        native.wait_for(served.endpoint)
        self.deployer.allow_native_monitor(model.name, native)
        self.native_monitors[model.name] = native
