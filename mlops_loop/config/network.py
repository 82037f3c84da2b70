"""An environment's ``network``: the VPC subnets and security groups its jobs and functions run in."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from ._strict import StrictModel


# What EC2 and SageMaker's VpcConfig take: at most 16 subnets and 5 security groups, ids of 8 or 17 hex digits
# (EC2's id formats, as the CloudFormation schemas' AWS::EC2::Subnet.Id and SecurityGroup.Id patterns say).
SUBNET_ID = re.compile(r"^subnet-([0-9a-f]{8}|[0-9a-f]{17})$")


SECURITY_GROUP_ID = re.compile(r"^sg-([0-9a-f]{8}|[0-9a-f]{17})$")


AVAILABILITY_ZONE = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d[a-z]$")


MAX_SUBNETS, MAX_SECURITY_GROUPS = 16, 5


class NetworkConfig(StrictModel):
    """Run every job, endpoint and function of the environment inside your own VPC (default: none, AWS-managed
    networking). The subnets and security groups must exist already (the app creates neither) and the subnets need
    VPC endpoints for the AWS APIs the jobs call (docs/vpc.md: Running inside your VPC); ``availability_zone`` is the zone
    of the first subnet, where the Glue jobs and crawlers run (a Glue network connection names one subnet and its
    zone, which synth cannot look up)."""

    subnet_ids: tuple[str, ...] = Field(min_length=1)
    security_group_ids: tuple[str, ...] = Field(min_length=1)
    availability_zone: str

    @field_validator("subnet_ids")
    @classmethod
    def _subnets(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _check_ids(value, SUBNET_ID, "a subnet id (subnet- and 8 or 17 lowercase hex digits)", MAX_SUBNETS)

    @field_validator("security_group_ids")
    @classmethod
    def _security_groups(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _check_ids(value, SECURITY_GROUP_ID, "a security group id (sg- and 8 or 17 lowercase hex digits)",
                          MAX_SECURITY_GROUPS)

    @field_validator("availability_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        if not AVAILABILITY_ZONE.match(value):
            raise ValueError(f"{value!r} is not an Availability Zone name such as 'eu-west-1a' (the zone of subnet_ids[0])")
        return value

    @property
    def glue_subnet_id(self) -> str:
        """The subnet the Glue jobs and crawlers run in (a Glue network connection takes one)."""
        return self.subnet_ids[0]


def _check_ids(value: tuple[str, ...], pattern: "re.Pattern[str]", what: str, limit: int) -> tuple[str, ...]:
    if len(value) > limit:
        raise ValueError(f"lists {len(value)} ids; SageMaker's and Lambda's VpcConfig take at most {limit}: list at most {limit}")
    for item in value:
        if not pattern.match(item):
            raise ValueError(f"{item!r} is not {what}")
    twice = sorted({item for item in value if value.count(item) > 1})
    if twice:
        raise ValueError(f"lists {', '.join(map(repr, twice))} more than once")
    return value
