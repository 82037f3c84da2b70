"""The role CloudFormation assumes to deploy an approved model version, with exactly what that takes."""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from pipeline_code.core.contract import pascal, target_model_parameter_name

from ..config.serving import ServerlessServing
from .access_policy import INSTANCE_TYPES_KEY, AccessPolicy, owned_by
from .arns import any_sagemaker, format_arn
from .cdk_reads import read_once, service_principal, stack_of
from .multi_model_endpoint import MultiModelEndpoint
from .native_model_monitor import NativeModelMonitor
from .served_model import ServedModel


class ServingDeployer(Construct):
    """The CloudFormation role of approval-driven updates of one environment's serving stack.

    The role (fixed name ``role_name``, so the deploy handler can pass it without a cross-stack
    export) starts with no permissions. Each ``allow_*`` call adds what CloudFormation's resource
    handlers need for one served thing, pinned to that thing's names; :meth:`allow_common` adds what
    every deployment needs and must come last. Its logical id is the one the role had when the stack
    built it itself (the role is the construct's ``Default`` child), so extracting it replaced nothing.
    """

    def __init__(self, scope: Construct, construct_id: str, *, role_name: str, description: str,
                 owner: Optional[Mapping[str, str]] = None) -> None:
        """``owner`` (default None: any the names reach): the environment's project and environment tags
        (:func:`~.access_policy.owner_of`), which the stack puts on every model and endpoint config; then the models
        and endpoint configs the role creates, tags, describes and deletes (their names are CloudFormation's, so only
        ``*`` names them) may not be another project's or environment's (:func:`~.access_policy.owned_by`)."""
        super().__init__(scope, construct_id)
        self.role_name = role_name
        self._owner = dict(owner) if owner else None
        self.role = iam.Role(
            self,
            "Default",
            role_name=role_name,
            assumed_by=service_principal("cloudformation.amazonaws.com"),
            description="CloudFormation role for approval-driven updates of the serving stack (model versions only)",
        )
        self.access = AccessPolicy(self, "Access", role=self.role, description=description)
        self._endpoints = False
        self._finished = False
        # What the endpoint configs of this stack run on: the instance types of the instance-based variants (real-time,
        # async, multi-model) and the serverless variants' concurrency and memory (allow_common limits configs to them).
        self._endpoint_instance_types: set[str] = set()
        self._serverless: list[ServerlessServing] = []

    def allow_served_model(self, served: ServedModel, package_arns: str) -> None:
        """Deploy ``served`` from any version in ``package_arns``: its endpoint and alarms, or its batch schedule. Its
        endpoint config may run on the instance type its serving config names (none for serverless: its concurrency and
        memory bound it instead)."""
        self._check_open()
        sid = pascal(served.model_name)
        self.access.allow(f"ReadPackage{sid}", ["sagemaker:DescribeModelPackage"], [package_arns],
                          wildcard_reason="Any version of this model's group may be approved; the parameter pattern "
                          "restricts the stack to that group.")
        self._allow_pass_serving_role(sid, served.role)
        if served.endpoint_name:
            self._endpoint_instance_types.update(served.serving.instance_types)
            if served.serving.mode == "serverless":
                self._serverless.append(served.serving.serverless)
            self._allow_endpoint(sid, served.endpoint_name, served.alarm_names)
            return
        self.access.allow_pass_role(f"PassSchedulerRole{sid}", read_once(served.scheduler_role, "role_arn"), "scheduler.amazonaws.com")
        self.access.allow(
            f"Schedule{sid}",
            ["scheduler:CreateSchedule", "scheduler:UpdateSchedule", "scheduler:DeleteSchedule", "scheduler:GetSchedule"],
            [format_arn(self, service="scheduler", resource="schedule", resource_name=f"default/{served.schedule_name}")],
        )

    def allow_multi_model(self, mme: MultiModelEndpoint, *, name_prefix: str) -> None:
        """The shared endpoint (created with the first approved member) and each member's TargetModel parameter."""
        self._check_open()
        stack = stack_of(self)
        sid = pascal(mme.endpoint_name.removeprefix(f"{name_prefix}-"))
        self._endpoint_instance_types.add(mme.config.instance_type)
        self._allow_pass_serving_role(sid, mme.role)
        self._allow_endpoint(sid, mme.endpoint_name, mme.alarm_names)
        self.access.allow(
            f"TargetModels{sid}",
            ["ssm:PutParameter", "ssm:DeleteParameter", "ssm:GetParameters", "ssm:AddTagsToResource",
             "ssm:RemoveTagsFromResource", "ssm:ListTagsForResource"],
            [format_arn(stack, service="ssm", resource="parameter",
                        resource_name=target_model_parameter_name(name_prefix, m).lstrip("/"))
             for m in mme.member_names],
        )

    def allow_native_monitor(self, model_name: str, native: NativeModelMonitor) -> None:
        """The opt-in native Model Monitor schedules of ``model_name``, created with its endpoint."""
        self._check_open()
        stack = stack_of(self)
        sid = pascal(model_name)
        kinds = ("data-quality", "model-quality", "model-bias", "model-explainability")
        definitions = [format_arn(stack, service="sagemaker", resource=f"{kind}-job-definition",
                                  resource_name=native.job_definitions[kind].job_definition_name.rsplit("-", 1)[0] + "-*")
                       for kind in kinds]
        reason = "Job definition names end in a hash of their create-only properties; the model prefix pins them."
        names = ("DataQuality", "ModelQuality", "ModelBias", "ModelExplainability")
        # The definitions run on the monitor's configured instance type only.
        self.access.allow_instance_types(f"CreateNativeMonitorDefinitions{sid}",
                                         [f"sagemaker:Create{kind}JobDefinition" for kind in names], definitions,
                                         [native.instance_type], wildcard_reason=reason)
        self.access.allow(
            f"NativeMonitorDefinitions{sid}",
            [f"sagemaker:{verb}{kind}JobDefinition" for kind in names for verb in ("Describe", "Delete")]
            + ["sagemaker:AddTags", "sagemaker:DeleteTags", "sagemaker:ListTags"],
            definitions,
            wildcard_reason=reason,
        )
        schedules = [format_arn(stack, service="sagemaker", resource="monitoring-schedule",
                                resource_name=sched.monitoring_schedule_name.lower()) for sched in native.schedules.values()]
        # A schedule names its job definition (then it carries no instance type of its own); one that held a
        # definition inline would be limited to the monitor's type too.
        self.access.allow_instance_types(f"CreateNativeMonitorSchedules{sid}",
                                         ["sagemaker:CreateMonitoringSchedule", "sagemaker:UpdateMonitoringSchedule"],
                                         schedules, [native.instance_type], every_request_names_one=False)
        self.access.allow(
            f"NativeMonitorSchedules{sid}",
            [f"sagemaker:{verb}MonitoringSchedule" for verb in ("Describe", "Delete", "Stop")]
            + ["sagemaker:AddTags", "sagemaker:DeleteTags", "sagemaker:ListTags"],
            schedules,
        )
        self.access.allow_pass_role(f"PassNativeMonitorRole{sid}", read_once(native.role, "role_arn"), "sagemaker.amazonaws.com")

    def allow_common(self, *, key: kms.IKey, storage: Stack) -> None:
        """What every deployment needs: models and endpoint configs (whose names CloudFormation
        generates; configs on the served things' instance types only, see :meth:`_allow_creating_endpoint_configs`),
        autoscaling, grants on the data ``key``, and the ``storage`` stack's outputs the
        template reads; plus, when any endpoint was allowed, using the endpoint configs. Call it last."""
        self._check_open()
        self._finished = True
        stack = stack_of(self)
        reason = ("CloudFormation generates the model and endpoint-config names for every version (they are "
                  "create-only, so each version gets new ones); the names cannot be listed in advance.")
        # The handlers of AWS::SageMaker::Model and EndpointConfig create with the template's tags (tag on create:
        # AddTags on the new resource too), then describe and, on replacement or stack deletion, delete.
        self.access.allow(
            "ModelsAndConfigs",
            ["sagemaker:DeleteModel", "sagemaker:DescribeModel", "sagemaker:DeleteEndpointConfig",
             "sagemaker:DescribeEndpointConfig", "sagemaker:DeleteTags", "sagemaker:ListTags"],
            any_sagemaker(stack, "model", "endpoint-config"),
            conditions=self._owned(),
            wildcard_reason=reason,
        )
        self.access.allow(
            "CreateModelsAndTags",
            ["sagemaker:CreateModel", "sagemaker:AddTags"],
            any_sagemaker(stack, "model", "endpoint-config"),
            conditions=self._owned(tagging=True),
            wildcard_reason=reason,
        )
        self._allow_creating_endpoint_configs(reason)
        # Autoscaling: the calls the resource schemas of ScalableTarget and ScalingPolicy list for their handlers
        # (DescribeScheduledActions on every create, update and read of a target; tag reads and removals for its
        # tags), in three statements because the Service Authorization Reference gives them different keys:
        # only these four carry application-autoscaling:service-namespace (a condition on a key an action
        # never carries would deny it), so only they are confined to SageMaker's targets.
        self.access.allow(
            "AutoscalingSageMaker",
            ["application-autoscaling:RegisterScalableTarget", "application-autoscaling:DeregisterScalableTarget",
             "application-autoscaling:PutScalingPolicy", "application-autoscaling:DeleteScalingPolicy"],
            ["*"],
            conditions={"StringEquals": {"application-autoscaling:service-namespace": "sagemaker"}},
            wildcard_reason="A scalable target's ARN ends in an id Application Auto Scaling generates at registration; "
            "the service-namespace condition confines these calls to SageMaker's targets.",
        )
        self.access.allow(
            "AutoscalingDescribe",
            ["application-autoscaling:DescribeScalableTargets", "application-autoscaling:DescribeScalingPolicies",
             "application-autoscaling:DescribeScheduledActions"],
            ["*"],
            wildcard_reason="The Describe calls support no resource-level permissions and no condition key "
            "(Service Authorization Reference); they only read.",
        )
        self.access.allow(
            "AutoscalingTags",
            ["application-autoscaling:TagResource", "application-autoscaling:UntagResource",
             "application-autoscaling:ListTagsForResource"],
            [format_arn(stack, service="application-autoscaling", resource="scalable-target", resource_name="*")],
            wildcard_reason="A scalable target's ARN ends in an id Application Auto Scaling generates at registration; "
            "the tagging calls carry no service-namespace key, so they are limited to this account's and Region's targets.",
        )
        self.access.allow(
            "ScalingPolicyMetrics",
            # The ScalingPolicy handler reads metric data when it creates or updates a policy (resource schema).
            ["cloudwatch:GetMetricData"],
            ["*"],
            wildcard_reason="GetMetricData is authorized against no resource (Service Authorization Reference); it "
            "only reads metrics.",
        )
        self.access.allow(
            "AutoscalingServiceRole",
            ["iam:CreateServiceLinkedRole"],
            [format_arn(stack, service="iam", region="", resource="role", resource_name=
                        "aws-service-role/sagemaker.application-autoscaling.amazonaws.com/*")],
            conditions={"StringLike": {"iam:AWSServiceName": "sagemaker.application-autoscaling.amazonaws.com"}},
            wildcard_reason="The service-linked role's name suffix is chosen by IAM.",
        )
        self.access.allow("DescribeDataKey", ["kms:DescribeKey"], [read_once(key, "key_arn")])
        # SageMaker creates a grant for an endpoint's volume key as the caller of CreateEndpoint/UpdateEndpoint.
        self.access.allow_volume_grants("EncryptionGrants", key)
        # The template refers to the data key through Fn::GetStackOutput (a weak cross-stack
        # reference), which CloudFormation resolves with this role on every update.
        self.access.allow(
            "ResolveStorageOutputs",
            ["cloudformation:DescribeStacks"],
            [format_arn(stack, service="cloudformation", resource="stack", resource_name=f"{storage.stack_name}/*")],
            wildcard_reason="A stack ARN ends in an id CloudFormation assigns at creation; the name pins the Storage stack.",
        )
        if self._endpoints:
            self._allow_endpoint_configs()

    def _allow_creating_endpoint_configs(self, reason: str) -> None:
        """CreateEndpointConfig on the instance types the served things name, and no other (``CreateEndpointConfigs``).

        ``sagemaker:InstanceTypes`` lists a config's instance types; a serverless variant has none, and ForAllValues
        is true for a request without the key (IAM User Guide), which is what lets serverless configs through. So
        the key is required (``Null: false``) only when nothing here is serverless, and when something is, its
        ``sagemaker:ServerlessMaxConcurrency`` and ``sagemaker:ServerlessMemorySize`` (Service Authorization
        Reference: CreateEndpointConfig carries both) may not exceed the largest configured: two guardrail denies,
        which a config without serverless variants (no such key) never matches. With only serverless models there is
        no type to list, and a deny refuses any config that names one (``ForAnyValue``, false without the key). With
        nothing served from an endpoint (batch only), no endpoint config may be created at all."""
        configs = any_sagemaker(self, "endpoint-config")
        action = ["sagemaker:CreateEndpointConfig"]
        types, serverless = sorted(self._endpoint_instance_types), self._serverless
        tagged = self._owned(tagging=True)
        if types:
            self.access.allow_instance_types("CreateEndpointConfigs", action, configs, types,
                                             every_request_names_one=not serverless, conditions=tagged,
                                             wildcard_reason=reason)
        elif serverless:
            self.access.allow("CreateEndpointConfigs", action, configs, conditions=tagged, wildcard_reason=reason)
            self.access.deny("NoInstanceEndpointConfigs", action, ["*"],
                             conditions={"ForAnyValue:StringLike": {INSTANCE_TYPES_KEY: "*"}})
        if serverless:
            self.access.deny("ServerlessConcurrencyCeiling", action, ["*"], conditions={"NumericGreaterThan": {
                "sagemaker:ServerlessMaxConcurrency": str(max(s.max_concurrency for s in serverless))}})
            self.access.deny("ServerlessMemoryCeiling", action, ["*"], conditions={"NumericGreaterThan": {
                "sagemaker:ServerlessMemorySize": str(max(s.memory_mb for s in serverless))}})

    def _owned(self, *, tagging: bool = False) -> Optional[dict]:
        """The owner condition of the statements on generated-name models and configs (none without an owner)."""
        return owned_by(self._owner, tagging=tagging) if self._owner else None

    def _check_open(self) -> None:
        if self._finished:
            raise ValueError(f"{self.node.path}: allow_common() was already called; add every served thing before it")

    def _allow_pass_serving_role(self, sid: str, role: iam.IRole) -> None:
        self.access.allow_pass_role(f"PassServingRole{sid}", read_once(role, "role_arn"), "sagemaker.amazonaws.com")

    def _allow_endpoint(self, sid: str, endpoint_name: str, alarm_names: Sequence[str]) -> None:
        """Create, update and delete the endpoint ``endpoint_name`` and the alarms ``alarm_names`` the serving stack
        creates for it (by exact name: the Operations stack's alarms share the endpoint's name as prefix,
        ``<prefix>-<model>-retrain-...`` start retraining, and the deployer must not edit or delete them)."""
        self._endpoints = True
        stack = stack_of(self)
        self.access.allow(
            f"Endpoint{sid}",
            ["sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint", "sagemaker:DeleteEndpoint", "sagemaker:DescribeEndpoint",
             "sagemaker:UpdateEndpointWeightsAndCapacities", "sagemaker:AddTags", "sagemaker:DeleteTags",
             "sagemaker:ListTags"],
            [format_arn(stack, service="sagemaker", resource="endpoint", resource_name=endpoint_name.lower())],
        )
        self.access.allow(
            f"Alarms{sid}",
            # ListTagsForResource: the read handler of AWS::CloudWatch::Alarm (its resource schema).
            ["cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms", "cloudwatch:DescribeAlarms",
             "cloudwatch:TagResource", "cloudwatch:UntagResource", "cloudwatch:ListTagsForResource"],
            [
                format_arn(stack, service="cloudwatch", resource="alarm", resource_name=name,
                           arn_format=ArnFormat.COLON_RESOURCE_NAME)
                for name in (*alarm_names,
                             # Target tracking creates (and deletes) its own alarms, checked
                             # against the caller's CloudWatch permissions.
                             f"TargetTracking-endpoint/{endpoint_name}/variant/*")
            ],
            wildcard_reason="The serving stack's own alarms of the endpoint (rollback, scale-from-zero, idle scale-in) "
            "are listed by "
            "name; target tracking names its alarms after the endpoint's scalable target with a generated suffix.",
        )

    def _allow_endpoint_configs(self) -> None:
        """Let endpoints be created and updated with this stack's endpoint configs.

        SageMaker authorizes CreateEndpoint and UpdateEndpoint against the endpoint *and* the
        endpoint-config the request names (Service Authorization Reference: both resource types are
        required), so the endpoint grant alone is denied at the first approval.
        """
        self.access.allow(
            "UseEndpointConfigs",
            ["sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint"],
            any_sagemaker(self, "endpoint-config"),
            wildcard_reason="CloudFormation generates a new endpoint-config name for every version (every property "
            "is create-only) and documents no pattern for it; the endpoint each call changes is pinned by name "
            "in the Endpoint statements.",
        )
