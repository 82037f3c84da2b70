"""Inputs for construct tests, declared here so they never read the user's config/mlops-loop.yaml: a one-model
configuration (model ``returns`` on dataset ``orders``, project ``shop``, environment ``dev``) and the ``WEB_ORDERS``
dataset declaration (two numeric features, one of them computed, and a categorical one)."""

from __future__ import annotations

import copy
from typing import Any, Optional

ORDERS = {
    "record_identifier": "order_id",
    "event_time": "event_time",
    "labels": ["returned"],
    "columns": {
        "order_id": {"type": "string", "nullable": False},
        "event_time": {"type": "timestamp", "nullable": False},
        "items": {"type": "integer", "min": 0, "max": 500},
        "channel": {"type": "string", "allowed": ["web", "app"]},
        "returned": {"type": "integer", "min": 0, "max": 1},
    },
    "features": {"items": "items", "channel": "channel"},
}


WEB_ORDERS = {
    "description": "Web shop orders; label: chargeback within 60 days.",
    "record_identifier": "order_id",
    "event_time": "ordered_at",
    "labels": ["charged_back"],
    "columns": {
        "order_id": {"type": "string", "nullable": False},
        "ordered_at": {"type": "timestamp", "nullable": False},
        "amount": {"type": "double", "min": 0},
        "items": {"type": "integer", "min": 0},
        "channel": {"type": "string", "allowed": ["web", "app"]},
        "charged_back": {"type": "integer", "min": 0, "max": 1},
    },
    "features": {"amount": "amount", "log_items": "log1p(items)", "channel": "channel"},
}


def returns_config(serving: Optional[dict] = None, *, model_serving: Optional[dict] = None, **environment: Any) -> dict:
    """The raw config; ``serving`` is the dev environment's override of the model's serving block,
    ``model_serving`` the model's own block, ``environment`` further keys of the dev environment."""
    dev: dict[str, Any] = {"tier": "dev", "account": "123456789012", "region": "eu-west-1", "models": ["returns"], **environment}
    if serving is not None:
        dev["serving"] = {"returns": serving}
    model: dict[str, Any] = {"dataset": "orders", "target": "returned", "features": ["items"], "sensitive_attribute": "channel"}
    if model_serving is not None:
        model["serving"] = model_serving
    return {"project": "shop", "datasets": {"orders": ORDERS}, "models": {"returns": model}, "environments": {"dev": dev}}


# An environment's VPC (config ``network``) for the construct tests: two subnets, one security group.
NETWORK = {"subnet_ids": ["subnet-0123456789abcdef0", "subnet-0fedcba9"], "security_group_ids": ["sg-0123456789abcdef0"],
           "availability_zone": "eu-west-1a"}


# The synth (``synthesize_once`` of tests/infra/conftest.py) of network_environment_config's dev environment.
NETWORK_ENVIRONMENT = "network-environment"


def network_environment_config() -> dict:
    """The raw config of a whole environment (``dev``) inside :data:`NETWORK`: model ``returns`` served real-time with
    scoring by id, ``returns-async`` and ``returns-batch``, and a budget that emails its notices to
    ``ops@example.com`` and ``finops@example.com`` besides its topic.

    One synth for tests/infra/test_network_environment.py and the budget test of tests/infra/test_budget_config.py,
    which reads only the Operations stack's budget (no other test reads it): one environment synthesized (and its
    Operations template linted: the second lint is a cache hit) once instead of twice."""
    raw = returns_config({"mode": "realtime", "by_id": {"enabled": True}}, network=NETWORK,
                         budget={"monthly_usd": 300, "actual_percent": [100], "emails": ["ops@example.com", "finops@example.com"]})
    model = raw["models"]["returns"]
    raw["models"]["returns-async"] = {**copy.deepcopy(model), "serving": {"mode": "async"}}
    raw["models"]["returns-batch"] = {**copy.deepcopy(model), "serving": {"mode": "batch"}}
    raw["environments"]["dev"]["models"] = ["returns", "returns-async", "returns-batch"]
    return raw


def network_config() -> Any:
    """:data:`NETWORK` as the constructs take it (``mlops_loop.config.NetworkConfig``)."""
    from mlops_loop.config import NetworkConfig

    return NetworkConfig.model_validate(NETWORK)


def vpc_statements_of(statements: dict[str, dict]) -> dict[str, dict]:
    """The network-interface statements (``mlops_loop.constructs.network``) among a policy's ``statements`` by Sid."""
    return {sid: statement for sid, statement in statements.items() if sid.startswith("Vpc")}


def network_arns(account: str, region: str) -> dict[str, list[str]]:
    """The subnet, security-group and interface ARNs of :data:`NETWORK` in ``account`` and ``region``."""
    prefix = f"arn:aws:ec2:{region}:{account}"
    return {"subnets": [f"{prefix}:subnet/{s}" for s in NETWORK["subnet_ids"]],
            "security_groups": [f"{prefix}:security-group/{g}" for g in NETWORK["security_group_ids"]],
            "interfaces": [f"{prefix}:network-interface/*"]}


def vpc_config_of_network() -> dict:
    """The VpcConfig a SageMaker request or resource gets for :data:`NETWORK`."""
    return {"SecurityGroupIds": NETWORK["security_group_ids"], "Subnets": NETWORK["subnet_ids"]}


SAGEMAKER_ENI_ACTIONS = {
    "ec2:CreateNetworkInterface", "ec2:CreateNetworkInterfacePermission", "ec2:DeleteNetworkInterface",
    "ec2:DeleteNetworkInterfacePermission", "ec2:DescribeNetworkInterfaces", "ec2:DescribeVpcs", "ec2:DescribeDhcpOptions",
    "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups"}


def assert_sagemaker_eni_statements(statements: dict[str, dict], account: str, region: str) -> None:
    """THEN the policy holds exactly SageMaker's documented VPC actions, creating interfaces only in :data:`NETWORK`."""
    vpc = vpc_statements_of(statements)
    actions = {a for s in vpc.values() for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert actions == SAGEMAKER_ENI_ACTIONS
    arns = network_arns(account, region)
    create = vpc["VpcCreateInterfaces"]
    assert sorted(_listify(create["Resource"])) == sorted(arns["subnets"] + arns["security_groups"] + arns["interfaces"])
    assert vpc["VpcInterfacePermissions"]["Condition"] == {"ArnEquals": {"ec2:Subnet": arns["subnets"]}}
    # Revoking takes a permission id, not an interface ARN (its resource is optional in the Service Authorization
    # Reference): on "*" in the region, or SageMaker's clean-up would be denied
    revoke = vpc["VpcRevokeInterfacePermissions"]
    assert (revoke["Action"], revoke["Resource"], revoke["Condition"]) == (
        "ec2:DeleteNetworkInterfacePermission", "*", {"StringEquals": {"ec2:Region": region}})


def _listify(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def fleet_config(count: int, serving: Optional[dict] = None, *, env: str = "dev") -> dict:
    """:func:`returns_config` with ``count`` copies of its model (``returns-00``, ``returns-01``, ...), each served as
    ``serving`` (default: serverless, the mode with the fewest resources), all of them in environment ``env``: a
    config as large as a bank's line-up, for the checks that grow with the number of models."""
    raw = returns_config()
    model = raw["models"].pop("returns")
    model["serving"] = serving or {"mode": "serverless"}
    names = [f"returns-{i:02d}" for i in range(count)]
    raw["models"] = {name: dict(model) for name in names}
    raw["environments"] = {env: {**raw["environments"]["dev"], "models": names}}
    return raw
