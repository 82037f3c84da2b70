"""The serving stack: each model's endpoint (or batch schedule), deployed by approving a version."""

from __future__ import annotations

from typing import Any, Sequence

from aws_cdk import ArnFormat, CfnCondition, CfnOutput, CfnParameter, DefaultStackSynthesizer, Fn, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from pipeline_code.core.contract import inference_prefix, package_parameter_name, pascal, target_model_parameter_name

from ..config import EnvironmentConfig, ModelConfig
from ..config.serving import ServingConfig
from ..constructs.access_policy import AccessPolicy
from ..constructs.multi_model_endpoint import MultiModelEndpoint, MultiModelMember
from ..constructs.native_model_monitor import NativeModelMonitor
from ..constructs.served_model import ServedModel
from ..constructs.training_pipeline import xgboost_image_uri, xgboost_repository_arn
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
        serving_env: EnvironmentConfig,
        serving_name_prefix: str,
        serving_models: Sequence[tuple[ModelConfig, ServingConfig]],
        serving_storage: StorageStack,
        **stack_kwargs: Any,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            synthesizer=DefaultStackSynthesizer(generate_bootstrap_version_rule=False),
            **stack_kwargs,
        )
        self.add_stack_dependency(serving_storage)
        self.name_prefix = serving_name_prefix
        lake = serving_storage.lake
        registry = serving_storage.registry
        inference = lake.reference(self, "inference")
        artifacts = lake.reference(self, "artifacts")
        image_repository = xgboost_repository_arn(serving_env.region)

        # A fixed name lets the Operations stack refer to it without a cross-stack export.
        self.deployer_role_name = f"{serving_name_prefix}-serving-deployer"
        self.deployer_role = iam.Role(
            self,
            "Deployer",
            role_name=self.deployer_role_name,
            assumed_by=iam.ServicePrincipal("cloudformation.amazonaws.com"),
            description="CloudFormation role for approval-driven updates of the serving stack (model versions only)",
        )
        deployer = AccessPolicy(self, "DeployerAccess", access_role=self.deployer_role, access_description=f"{serving_name_prefix} serving deployments")
        self.models: dict[str, ServedModel] = {}
        self.parameters: dict[str, CfnParameter] = {}
        # Every model this stack serves, whatever its mode (the Operations stack monitors each one).
        self.serving_configs: dict[str, tuple[ModelConfig, ServingConfig]] = {}
        members: dict[str, list[MultiModelMember]] = {}
        for model, serving in serving_models:
            group = registry.group_names[model.name].lower()
            parameter = CfnParameter(
                self,
                package_parameter_name(model.name),
                type="String",
                default="",
                description=f"Model package version serving {model.name} (set on approval; empty = not deployed)",
                allowed_pattern=rf"^$|^arn:aws[a-z-]*:sagemaker:{self.region}:{self.account}:model-package/{group}/[0-9]+$",
                constraint_description=f"empty, or the ARN of a version in model package group {group} of this account and region",
            )
            condition = CfnCondition(
                self, f"{pascal(model.name)}Deployed", expression=Fn.condition_not(Fn.condition_equals(parameter.value_as_string, ""))
            )
            self.parameters[model.name] = parameter
            self.serving_configs[model.name] = (model, serving)
            if serving.mode == "multi_model":
                members.setdefault(serving.multi_model.endpoint, []).append(
                    MultiModelMember(model=model, serving=serving, package_arn=parameter.value_as_string, condition=condition)
                )
                continue
            served = ServedModel(
                self,
                pascal(model.name),
                served_name_prefix=serving_name_prefix,
                served_model=model,
                served_serving=serving,
                served_package_arn=parameter.value_as_string,
                served_condition=condition,
                served_key=lake.key,
                served_inference_bucket=inference,
                served_artifacts_bucket=artifacts,
                served_image_repository_arn=image_repository,
                served_notification_key=serving_storage.ops_key,
            )
            self.models[model.name] = served
            self._allow_deploy(deployer, served, registry.package_arns(model.name))
            if serving.native_model_monitor:
                self._native_monitor(deployer, model, served, condition, serving_env, serving_storage, inference)
            CfnOutput(self, f"{pascal(model.name)}Mode", value=serving.mode)
            if served.endpoint_name:
                CfnOutput(self, f"{pascal(model.name)}EndpointName", value=served.endpoint_name)
            CfnOutput(self, f"{pascal(model.name)}CaptureUri", value=served.capture_uri)
        self.multi_model_endpoints: dict[str, MultiModelEndpoint] = {}
        for endpoint, group in members.items():
            mme = MultiModelEndpoint(
                self,
                f"{pascal(endpoint)}MultiModel",
                mme_name_prefix=serving_name_prefix,
                mme_endpoint=endpoint,
                mme_config=serving_env.multi_model_endpoints[endpoint],
                mme_members=group,
                mme_key=lake.key,
                mme_artifacts_bucket=artifacts,
                mme_inference_bucket=inference,
                mme_image_uri=xgboost_image_uri(serving_env.region),
                mme_image_repository_arn=image_repository,
                # The bootstrap tarball is an asset: kept in Storage so this stack stays asset-free.
                mme_asset_scope=serving_storage,
            )
            self.multi_model_endpoints[endpoint] = mme
            self._allow_multi_model_deploy(deployer, mme)
            for member in group:
                name = member.model.name
                CfnOutput(self, f"{pascal(name)}Mode", value="multi_model")
                CfnOutput(self, f"{pascal(name)}EndpointName", value=mme.endpoint_name)
                CfnOutput(self, f"{pascal(name)}TargetModelParameter", value=target_model_parameter_name(serving_name_prefix, name))
                CfnOutput(self, f"{pascal(name)}CaptureUri", value=f"s3://{inference.bucket_name}/{inference_prefix(name, 'capture')}")
        self._allow_deploy_common(deployer, lake.key, serving_storage.stack_name)
        if any(m.endpoint_name for m in self.models.values()) or self.multi_model_endpoints:
            self._allow_endpoint_configs(deployer)
        CfnOutput(self, "DeployerRoleArn", value=self.deployer_role.role_arn)

    def _allow_deploy(self, deployer: AccessPolicy, served: ServedModel, package_arns: str) -> None:
        sid = pascal(served.model_name)
        deployer.allow(f"ReadPackage{sid}", ["sagemaker:DescribeModelPackage"], [package_arns],
                       wildcard_reason="Any version of this model's group may be approved; the parameter pattern "
                       "restricts the stack to that group.")
        self._allow_pass_serving_role(deployer, sid, served.role)
        if served.endpoint_name:
            self._allow_endpoint(deployer, sid, served.endpoint_name)
        else:
            deployer.allow(
                f"PassSchedulerRole{sid}",
                ["iam:PassRole"],
                [served.scheduler_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}},
            )
            deployer.allow(
                f"Schedule{sid}",
                ["scheduler:CreateSchedule", "scheduler:UpdateSchedule", "scheduler:DeleteSchedule", "scheduler:GetSchedule"],
                [self.format_arn(service="scheduler", resource="schedule", resource_name=f"default/{served.schedule_name}")],
            )

    @staticmethod
    def _allow_pass_serving_role(deployer: AccessPolicy, sid: str, role: iam.IRole) -> None:
        deployer.allow(
            f"PassServingRole{sid}",
            ["iam:PassRole"],
            [role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        )

    def _allow_endpoint(self, deployer: AccessPolicy, sid: str, endpoint_name: str) -> None:
        """Create, update and delete the endpoint ``endpoint_name`` and its alarms."""
        deployer.allow(
            f"Endpoint{sid}",
            ["sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint", "sagemaker:DeleteEndpoint", "sagemaker:DescribeEndpoint",
             "sagemaker:UpdateEndpointWeightsAndCapacities", "sagemaker:AddTags", "sagemaker:DeleteTags",
             "sagemaker:ListTags"],
            [self.format_arn(service="sagemaker", resource="endpoint", resource_name=endpoint_name.lower())],
        )
        deployer.allow(
            f"Alarms{sid}",
            # ListTagsForResource: the read handler of AWS::CloudWatch::Alarm (its resource schema).
            ["cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms", "cloudwatch:DescribeAlarms",
             "cloudwatch:TagResource", "cloudwatch:UntagResource", "cloudwatch:ListTagsForResource"],
            [
                self.format_arn(service="cloudwatch", resource="alarm", resource_name=name,
                                arn_format=ArnFormat.COLON_RESOURCE_NAME)
                for name in (f"{endpoint_name}-*",
                             # Target tracking creates (and deletes) its own alarms, checked
                             # against the caller's CloudWatch permissions.
                             f"TargetTracking-endpoint/{endpoint_name}/variant/*")
            ],
            wildcard_reason="Every alarm of the endpoint (rollback, scale-from-zero) is named after it; target "
            "tracking names its alarms after the endpoint's scalable target with a generated suffix.",
        )

    def _allow_endpoint_configs(self, deployer: AccessPolicy) -> None:
        """Let endpoints be created and updated with this stack's endpoint configs.

        SageMaker authorizes CreateEndpoint and UpdateEndpoint against the endpoint *and* the
        endpoint-config the request names (Service Authorization Reference: both resource types are
        required), so the endpoint grant alone is denied at the first approval.
        """
        deployer.allow(
            "UseEndpointConfigs",
            ["sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint"],
            [self.format_arn(service="sagemaker", resource="endpoint-config", resource_name="*")],
            wildcard_reason="CloudFormation generates a new endpoint-config name for every version (every property "
            "is create-only) and documents no pattern for it; the endpoint each call changes is pinned by name "
            "in the Endpoint statements.",
        )

    def _allow_multi_model_deploy(self, deployer: AccessPolicy, mme: MultiModelEndpoint) -> None:
        """The shared endpoint (created with the first approved member) and each member's TargetModel parameter."""
        sid = pascal(mme.endpoint_name.removeprefix(f"{self.name_prefix}-"))
        self._allow_pass_serving_role(deployer, sid, mme.role)
        self._allow_endpoint(deployer, sid, mme.endpoint_name)
        deployer.allow(
            f"TargetModels{sid}",
            ["ssm:PutParameter", "ssm:DeleteParameter", "ssm:GetParameters", "ssm:AddTagsToResource",
             "ssm:RemoveTagsFromResource", "ssm:ListTagsForResource"],
            [self.format_arn(service="ssm", resource="parameter",
                             resource_name=target_model_parameter_name(self.name_prefix, m).lstrip("/"))
             for m in mme.member_names],
        )

    def _native_monitor(self, deployer: AccessPolicy, model: ModelConfig, served: ServedModel, condition: CfnCondition,
                        env: EnvironmentConfig, storage: StorageStack, inference: Any) -> None:
        """The opt-in native Model Monitor schedules, created with the endpoint on the first approval."""
        assert served.endpoint_name is not None
        native = NativeModelMonitor(
            self,
            f"{pascal(model.name)}NativeMonitor",
            native_name_prefix=self.name_prefix,
            native_model=model,
            native_endpoint_name=served.endpoint_name,
            native_condition=condition,
            native_inference_bucket=inference,
            native_key=storage.lake.key,
            native_schedule=env.monitoring.schedule,
            native_instance_type=env.training.processing_instance_type,
            # Its two Clarify config files are assets: kept in Storage so this stack stays asset-free.
            native_asset_scope=storage,
        )
        # SageMaker checks the endpoint exists; schedules name their definitions, not Ref them.
        native.wait_for(served.endpoint)
        sid = pascal(model.name)
        kinds = ("data-quality", "model-quality", "model-bias", "model-explainability")
        deployer.allow(
            f"NativeMonitorDefinitions{sid}",
            [f"sagemaker:{verb}{kind}JobDefinition" for kind in ("DataQuality", "ModelQuality", "ModelBias", "ModelExplainability")
             for verb in ("Create", "Describe", "Delete")] + ["sagemaker:AddTags", "sagemaker:DeleteTags", "sagemaker:ListTags"],
            [self.format_arn(service="sagemaker", resource=f"{kind}-job-definition",
                             resource_name=native.job_definitions[kind].job_definition_name.rsplit("-", 1)[0] + "-*")
             for kind in kinds],
            wildcard_reason="Job definition names end in a hash of their create-only properties; the model prefix pins them.",
        )
        deployer.allow(
            f"NativeMonitorSchedules{sid}",
            [f"sagemaker:{verb}MonitoringSchedule" for verb in ("Create", "Describe", "Update", "Delete", "Stop")]
            + ["sagemaker:AddTags", "sagemaker:DeleteTags", "sagemaker:ListTags"],
            [self.format_arn(service="sagemaker", resource="monitoring-schedule", resource_name=sched.monitoring_schedule_name.lower())
             for sched in native.schedules.values()],
        )
        deployer.allow(
            f"PassNativeMonitorRole{sid}",
            ["iam:PassRole"],
            [native.role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        )

    def _allow_deploy_common(self, deployer: AccessPolicy, key: Any, storage_stack_name: str) -> None:
        reason = ("CloudFormation generates the model and endpoint-config names for every version (they are "
                  "create-only, so each version gets new ones); the names cannot be listed in advance.")
        deployer.allow(
            "ModelsAndConfigs",
            ["sagemaker:CreateModel", "sagemaker:DeleteModel", "sagemaker:DescribeModel",
             "sagemaker:CreateEndpointConfig", "sagemaker:DeleteEndpointConfig", "sagemaker:DescribeEndpointConfig",
             "sagemaker:AddTags", "sagemaker:DeleteTags", "sagemaker:ListTags"],
            [self.format_arn(service="sagemaker", resource="model", resource_name="*"),
             self.format_arn(service="sagemaker", resource="endpoint-config", resource_name="*")],
            wildcard_reason=reason,
        )
        deployer.allow(
            "Autoscaling",
            # As the resource schemas of ScalableTarget and ScalingPolicy list them for their handlers
            # (DescribeScheduledActions on every create, update and read of a target; tag reads and
            # removals for its tags).
            ["application-autoscaling:RegisterScalableTarget", "application-autoscaling:DeregisterScalableTarget",
             "application-autoscaling:DescribeScalableTargets", "application-autoscaling:PutScalingPolicy",
             "application-autoscaling:DeleteScalingPolicy", "application-autoscaling:DescribeScalingPolicies",
             "application-autoscaling:DescribeScheduledActions", "application-autoscaling:TagResource",
             "application-autoscaling:UntagResource", "application-autoscaling:ListTagsForResource"],
            ["*"],
            wildcard_reason="Application Auto Scaling identifies targets by generated ids; its Describe and Put "
            "calls take no resource ARNs.",
        )
        deployer.allow(
            "ScalingPolicyMetrics",
            # The ScalingPolicy handler reads metric data when it creates or updates a policy (resource schema).
            ["cloudwatch:GetMetricData"],
            ["*"],
            wildcard_reason="GetMetricData is authorized against no resource (Service Authorization Reference); it "
            "only reads metrics.",
        )
        deployer.allow(
            "AutoscalingServiceRole",
            ["iam:CreateServiceLinkedRole"],
            [self.format_arn(service="iam", region="", resource="role", resource_name=
                             "aws-service-role/sagemaker.application-autoscaling.amazonaws.com/*")],
            conditions={"StringLike": {"iam:AWSServiceName": "sagemaker.application-autoscaling.amazonaws.com"}},
            wildcard_reason="The service-linked role's name suffix is chosen by IAM.",
        )
        deployer.allow("EncryptionGrants", ["kms:CreateGrant", "kms:DescribeKey"], [key.key_arn])
        # The template refers to the data key through Fn::GetStackOutput (a weak cross-stack
        # reference), which CloudFormation resolves with this role on every update.
        deployer.allow(
            "ResolveStorageOutputs",
            ["cloudformation:DescribeStacks"],
            [self.format_arn(service="cloudformation", resource="stack", resource_name=f"{storage_stack_name}/*")],
            wildcard_reason="A stack ARN ends in an id CloudFormation assigns at creation; the name pins the Storage stack.",
        )
