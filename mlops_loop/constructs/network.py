"""The environment's VPC (config ``network``) as the constructs use it: the request shape of a VpcConfig, and the
network-interface permissions each service documents for the roles whose compute runs in it.

Each ``allow_*`` function adds to an :class:`~.access_policy.AccessPolicy` exactly the EC2 actions of the service's
own documentation or managed policy, scoped as far as EC2 allows: creating an interface only in the configured
subnets with the configured security groups, and every interface action only in this account and region. The
``Describe*`` actions have no resource-level permissions, so they stay on ``*`` with a reason.
"""

from __future__ import annotations

from typing import Optional

from aws_cdk import aws_sagemaker as sagemaker

from ..config.network import NetworkConfig
from .access_policy import AccessPolicy
from .arns import format_arn
from .cdk_reads import environment_of

# "If you specify a private VPC for your processing job / training job / hyperparameter tuning job / model, add the
# following permissions" (SageMaker Developer Guide, "How to use SageMaker AI execution roles", per API).
SAGEMAKER_DESCRIBE = ("ec2:DescribeNetworkInterfaces", "ec2:DescribeVpcs", "ec2:DescribeDhcpOptions", "ec2:DescribeSubnets",
                      "ec2:DescribeSecurityGroups")
SAGEMAKER_INTERFACE = ("ec2:DeleteNetworkInterface",)
# The EC2 actions of the AWS managed policy AWSLambdaVPCAccessExecutionRole (v3); its logs actions every handler has.
LAMBDA_DESCRIBE = ("ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets")
LAMBDA_INTERFACE = ("ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses")
# The EC2 actions of the AWS managed policy AWSGlueServiceRole (v5), and its tagging of what Glue creates.
GLUE_DESCRIBE = ("ec2:DescribeVpcEndpoints", "ec2:DescribeRouteTables", "ec2:DescribeNetworkInterfaces",
                 "ec2:DescribeSecurityGroups", "ec2:DescribeSubnets", "ec2:DescribeVpcAttribute")
GLUE_TAG_KEY = "aws-glue-service-resource"


def vpc_config(network: Optional[NetworkConfig]) -> Optional[dict]:
    """The ``VpcConfig`` of a SageMaker request or resource (PascalCase), or None without a network."""
    if network is None:
        return None
    return {"SecurityGroupIds": list(network.security_group_ids), "Subnets": list(network.subnet_ids)}


def model_vpc_config(network: Optional[NetworkConfig]) -> Optional[sagemaker.CfnModel.VpcConfigProperty]:
    """An ``AWS::SageMaker::Model``'s ``VpcConfig`` (its endpoint's and its transform jobs' containers), or None."""
    if network is None:
        return None
    return sagemaker.CfnModel.VpcConfigProperty(security_group_ids=list(network.security_group_ids),
                                                subnets=list(network.subnet_ids))


def allow_sagemaker_network_interfaces(access: AccessPolicy, network: NetworkConfig) -> None:
    """What a SageMaker execution role needs for jobs or models with a VpcConfig: statements ``VpcDescribe``,
    ``VpcCreateInterfaces``, ``VpcInterfacePermissions`` (only on interfaces in the configured subnets) and
    ``VpcInterfaces``."""
    _allow_describe(access, SAGEMAKER_DESCRIBE, "SageMaker")
    _allow_create(access, network)
    access.allow(
        "VpcInterfacePermissions",
        ["ec2:CreateNetworkInterfacePermission"],
        [_interfaces(access)],
        # The interface's subnet, as CodeBuild's documentation scopes the same permission for its VPC builds.
        conditions={"ArnEquals": {"ec2:Subnet": _subnet_arns(access, network)}},
        wildcard_reason="SageMaker attaches the interfaces it creates for each job or endpoint instance; their ids are "
        "only known at run time, and the condition keeps this to interfaces in the configured subnets.",
    )
    _allow_interfaces(access, SAGEMAKER_INTERFACE, "SageMaker")
    access.allow(
        "VpcRevokeInterfacePermissions",
        ["ec2:DeleteNetworkInterfacePermission"],
        ["*"],
        conditions={"StringEquals": {"ec2:Region": environment_of(access).region}},
        # The Service Authorization Reference lists the network-interface resource as optional for this action (the
        # call names a permission id, not the interface), and SageMaker's own policies grant it on "*": scoped to an
        # ARN, SageMaker's clean-up would be denied and interfaces would pile up in the subnets.
        wildcard_reason="SageMaker removes the permissions it gave itself on the interfaces of its jobs and endpoints; "
        "the call names a permission id, not an interface ARN, so it is allowed in this region only.",
    )


def allow_lambda_network_interfaces(access: AccessPolicy, network: NetworkConfig) -> None:
    """What a Lambda function's role needs to run in the VPC (AWSLambdaVPCAccessExecutionRole's EC2 actions):
    statements ``VpcDescribe``, ``VpcCreateInterfaces`` and ``VpcInterfaces``."""
    _allow_describe(access, LAMBDA_DESCRIBE, "Lambda")
    _allow_create(access, network)
    _allow_interfaces(access, LAMBDA_INTERFACE, "Lambda")


def allow_glue_network_interfaces(access: AccessPolicy, network: NetworkConfig) -> None:
    """What a Glue job or crawler role needs to run through a NETWORK connection (AWSGlueServiceRole's EC2 actions):
    statements ``VpcDescribe``, ``VpcCreateInterfaces``, ``VpcInterfaces`` and ``VpcTagInterfaces`` (only Glue's
    own tag key)."""
    _allow_describe(access, GLUE_DESCRIBE, "Glue")
    _allow_create(access, network)
    _allow_interfaces(access, ("ec2:DeleteNetworkInterface",), "Glue")
    access.allow(
        "VpcTagInterfaces",
        ["ec2:CreateTags", "ec2:DeleteTags"],
        [format_arn(access, service="ec2", resource=kind, resource_name="*")
         for kind in ("network-interface", "security-group", "instance")],
        conditions={"ForAllValues:StringEquals": {"aws:TagKeys": [GLUE_TAG_KEY]}},
        wildcard_reason=f"Glue tags the interfaces it creates with its own key {GLUE_TAG_KEY} (the only key the "
        "condition admits); their ids are only known at run time.",
    )


def _allow_describe(access: AccessPolicy, actions: tuple[str, ...], service: str) -> None:
    access.allow(
        "VpcDescribe",
        list(actions),
        ["*"],
        wildcard_reason=f"EC2's Describe actions have no resource-level permissions; {service} reads the configured "
        "subnets, security groups and its own network interfaces with them.",
    )


def _allow_create(access: AccessPolicy, network: NetworkConfig) -> None:
    access.allow(
        "VpcCreateInterfaces",
        ["ec2:CreateNetworkInterface"],
        [*_subnet_arns(access, network),
         *(format_arn(access, service="ec2", resource="security-group", resource_name=group)
           for group in network.security_group_ids),
         _interfaces(access)],
        wildcard_reason="A new network interface has no id before it is created; the subnet and security-group "
        "resources confine it to the configured ones.",
    )


def _allow_interfaces(access: AccessPolicy, actions: tuple[str, ...], service: str) -> None:
    access.allow(
        "VpcInterfaces",
        list(actions),
        [_interfaces(access)],
        wildcard_reason=f"{service} creates and removes one network interface per instance at run time; their ids are "
        "not known in advance (only this account and region).",
    )


def _interfaces(access: AccessPolicy) -> str:
    return format_arn(access, service="ec2", resource="network-interface", resource_name="*")


def _subnet_arns(access: AccessPolicy, network: NetworkConfig) -> list[str]:
    return [format_arn(access, service="ec2", resource="subnet", resource_name=subnet) for subnet in network.subnet_ids]
