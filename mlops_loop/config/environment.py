"""One environment (``environments.<name>``): where it deploys, and its sections (data pipeline, training, gate,
monitoring, serving, network, budget)."""

from __future__ import annotations

import re
from typing import Literal, Optional

from pydantic import Field, field_validator, model_validator

from ._common import check_name
from ._strict import StrictModel
from .budget import BudgetConfig
from .data_pipeline import DataLakeConfig, FeatureStoreConfig, GlueConfig
from .gate import GateConfig
from .instance_types import SUPPORTED_REGIONS
from .monitoring import MonitoringConfig
from .network import NetworkConfig
from .serving import MultiModelEndpointConfig, ServingConfig, check_endpoint_name
from .training import TrainingConfig


# An IAM role (any path) or user that may assume the approver role.
APPROVER_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:(role|user)/[\w+=,.@/*-]{1,512}$")


def _check_approvers(value: tuple[str, ...]) -> tuple[str, ...]:
    """IAM role or user ARNs (``*`` allowed in the name), each once."""
    for arn in value:
        if not APPROVER_ARN.match(arn):
            raise ValueError(f"{arn!r} is not the ARN of an IAM role or user (arn:aws:iam::<12-digit account>:role/<name> "
                             "or :user/<name>, * allowed in the name); an SSO user approves through its permission "
                             "set's role, e.g. role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_<permission set>_*")
    if len(set(value)) != len(value):
        raise ValueError("lists an approver twice")
    return value


class EnvironmentConfig(StrictModel):
    """One deployment target (a CDK Stage)."""

    name: str
    tier: Literal["dev", "staging", "prod"]
    account: str = Field(pattern=r"^\d{12}$")
    region: str
    removal_policy: Literal["destroy", "retain"] = "retain"
    termination_protection: bool = True
    # Who may assume the model-approver role (IAM role or user ARNs, with MFA); empty: any principal of the account
    # whose own policies allow it, which leaves separation of duties to the account's IAM.
    approvers: tuple[str, ...] = ()
    # By team (models.<model>.owner.team): who may assume that team's approver role, which decides the versions of the
    # team's models and no other's; the environment's approver role then decides none of them. Default: none (the
    # environment's approver role decides every model's versions).
    team_approvers: dict[str, tuple[str, ...]] = {}
    # Every retention CloudWatch Logs accepts (PutRetentionPolicy), in days.
    log_retention_days: Literal[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
                                3288, 3653] = 90
    models: tuple[str, ...] = Field(min_length=1)
    data_lake: DataLakeConfig = DataLakeConfig()
    glue: GlueConfig = GlueConfig()
    feature_store: FeatureStoreConfig = FeatureStoreConfig()
    training: TrainingConfig = TrainingConfig()
    gate: GateConfig = GateConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    # Per model: the model's serving block with this environment's overrides merged in (the loader
    # does the merge, so every value here is complete and validated).
    serving: dict[str, ServingConfig] = {}
    # Shared multi-model endpoints, by name; only those some model of this environment names are built.
    multi_model_endpoints: dict[str, MultiModelEndpointConfig] = {}
    # Your VPC, for every job, endpoint and function; None (default, or null to drop one set in defaults): AWS-managed.
    network: Optional[NetworkConfig] = None
    # A monthly cost budget whose notices go to the environment's topic; None (default, or null to drop one set in
    # defaults): no budget (mlops_loop/config/budget.py says why none is derived).
    budget: Optional[BudgetConfig] = None

    _name = field_validator("name")(check_name)

    @field_validator("approvers")
    @classmethod
    def _approvers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _check_approvers(value)

    @field_validator("team_approvers")
    @classmethod
    def _team_approvers(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        for arns in value.values():
            if not arns:
                raise ValueError("names a team without approvers; list at least one, or leave the team out")
            _check_approvers(arns)
        return value

    @field_validator("multi_model_endpoints")
    @classmethod
    def _endpoint_names(cls, value: dict[str, MultiModelEndpointConfig]) -> dict[str, MultiModelEndpointConfig]:
        for name in value:
            check_endpoint_name(name)
        return value

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        if value not in SUPPORTED_REGIONS:
            raise ValueError(f"unsupported region {value!r}; allowed: {', '.join(SUPPORTED_REGIONS)}")
        return value

    @model_validator(mode="after")
    def _governance(self) -> "EnvironmentConfig":
        # Stateful data may only be thrown away with the stack in a dev environment, and prod
        # stacks can never be deleted by accident.
        if self.removal_policy == "destroy" and self.tier != "dev":
            raise ValueError("removal_policy: 'destroy' is only allowed when tier is 'dev'; allowed here: 'retain'")
        if self.tier == "prod" and not self.termination_protection:
            raise ValueError("termination_protection: must be true when tier is 'prod'")
        if self.tier == "prod" and self.training.auto_approve:
            raise ValueError("training.auto_approve: must be false when tier is 'prod' (approval is a human gate)")
        if len(set(self.models)) != len(self.models):
            raise ValueError("models: lists a model twice")
        if self.network is not None and not self.network.availability_zone.startswith(self.region):
            raise ValueError(f"network.availability_zone: {self.network.availability_zone!r} is not a zone of the "
                             f"environment's region {self.region}; give the zone of subnet_ids[0]")
        return self
