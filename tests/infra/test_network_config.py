"""The optional ``network`` block: every job, endpoint and function of an environment inside the user's VPC.

Each misconfiguration fails with one message naming the environment (or ``defaults``), the field and the fix.
Built on the one-model construct config (``tests.support.construct_configs``), not on the sample line-up.
"""

from __future__ import annotations

import pytest

from mlops_loop.config import ConfigError, NetworkConfig, parse_config
from tests.support.construct_configs import NETWORK, returns_config

SUBNETS = NETWORK["subnet_ids"]
GROUPS = NETWORK["security_group_ids"]


def problems_of(raw: dict) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    return caught.value.problems


def test_no_network_by_default():
    # GIVEN an environment without a network block WHEN loaded THEN it runs on AWS-managed networking
    assert parse_config(returns_config()).environments["dev"].network is None


def test_a_network_block_is_typed_and_kept_in_order():
    network = parse_config(returns_config(network=NETWORK)).environments["dev"].network
    assert network == NetworkConfig(subnet_ids=tuple(SUBNETS), security_group_ids=tuple(GROUPS), availability_zone="eu-west-1a")
    assert network.glue_subnet_id == SUBNETS[0]


def test_defaults_give_every_environment_the_network_and_one_can_drop_it():
    # GIVEN a network in defaults and a second environment that sets network: null
    raw = returns_config()
    raw["defaults"] = {"network": NETWORK}
    raw["environments"]["lab"] = {**raw["environments"]["dev"], "network": None}
    config = parse_config(raw)
    # THEN dev inherits it and lab runs without one
    assert config.environments["dev"].network.subnet_ids == tuple(SUBNETS)
    assert config.environments["lab"].network is None


@pytest.mark.parametrize(("change", "expected"), [
    ({"subnet_ids": []}, "field 'network.subnet_ids': must list at least one subnet_id; add one"),
    ({"subnet_ids": ["subnet-XYZ"]},
     "field 'network.subnet_ids': 'subnet-XYZ' is not a subnet id (subnet- and 8 or 17 lowercase hex digits)"),
    # EC2 ids have 8 or 17 hex digits (cfn-lint's AWS::EC2::Subnet.Id pattern): 9 is neither.
    ({"subnet_ids": ["subnet-0fedcba98"]},
     "field 'network.subnet_ids': 'subnet-0fedcba98' is not a subnet id (subnet- and 8 or 17 lowercase hex digits)"),
    ({"subnet_ids": [SUBNETS[0], SUBNETS[0]]}, "field 'network.subnet_ids': lists 'subnet-0123456789abcdef0' more than once"),
    ({"subnet_ids": [f"subnet-{i:08x}" for i in range(17)]},
     "field 'network.subnet_ids': lists 17 ids; SageMaker's and Lambda's VpcConfig take at most 16: list at most 16"),
    ({"security_group_ids": []}, "field 'network.security_group_ids': must list at least one security_group_id; add one"),
    ({"security_group_ids": ["sg-1"]},
     "field 'network.security_group_ids': 'sg-1' is not a security group id (sg- and 8 or 17 lowercase hex digits)"),
    ({"security_group_ids": [f"sg-{i:08x}" for i in range(6)]},
     "field 'network.security_group_ids': lists 6 ids; SageMaker's and Lambda's VpcConfig take at most 5: list at most 5"),
    ({"availability_zone": "eu-west-1"},
     "field 'network.availability_zone': 'eu-west-1' is not an Availability Zone name such as 'eu-west-1a' (the zone of "
     "subnet_ids[0])"),
    ({"availability_zone": "us-east-1a"},
     "field 'network.availability_zone': 'us-east-1a' is not a zone of the environment's region eu-west-1; give the zone "
     "of subnet_ids[0]"),
    ({"vpc_id": "vpc-0123456789abcdef0"},
     "field 'network.vpc_id': unknown field; check the spelling against the documented fields (docs/configuration.md: Configuration)"),
])
def test_a_bad_network_names_the_environment_and_the_field(change, expected):
    assert problems_of(returns_config(network={**NETWORK, **change})) == [f"environment 'dev': {expected}"]


def test_a_missing_zone_is_named():
    network = {k: v for k, v in NETWORK.items() if k != "availability_zone"}
    assert problems_of(returns_config(network=network)) == [
        "environment 'dev': field 'network.availability_zone': required field is missing"]


def test_a_mistake_in_a_default_network_is_reported_once_as_defaults():
    raw = returns_config()
    raw["defaults"] = {"network": {**NETWORK, "subnet_ids": ["subnet-1"]}}
    assert problems_of(raw) == [
        "defaults: field 'network.subnet_ids': 'subnet-1' is not a subnet id (subnet- and 8 or 17 lowercase hex digits)"]


SERVERLESS_IN_VPC = ("serverless endpoints cannot run inside a VPC (SageMaker Serverless Inference does not support a model "
                     "VpcConfig) and this environment sets 'network'; serve 'returns' with mode 'realtime' or 'async' here "
                     "(environment field 'serving.returns.mode'), or remove 'network'")


def test_a_model_served_serverless_in_a_vpc_environment_is_refused_naming_its_own_field():
    raw = returns_config(model_serving={"mode": "serverless"}, network=NETWORK)
    assert problems_of(raw) == [f"environment 'dev': model 'returns': field 'serving.mode': {SERVERLESS_IN_VPC}"]


def test_an_environment_that_makes_a_model_serverless_in_its_vpc_is_refused_naming_its_override():
    raw = returns_config({"mode": "serverless"}, network=NETWORK)
    assert problems_of(raw) == [f"environment 'dev': field 'serving.returns.mode': {SERVERLESS_IN_VPC}"]


def test_the_fix_the_message_names_is_accepted():
    # WHEN the VPC environment overrides the serverless model to real-time THEN it loads
    raw = returns_config({"mode": "realtime"}, model_serving={"mode": "serverless"}, network=NETWORK)
    assert parse_config(raw).environments["dev"].serving["returns"].mode == "realtime"
