"""The whole configuration (:class:`AppConfig`): the project, its datasets, models and environments, with the checks
across them (:mod:`.cross_checks`) when it is built without the loader."""

from __future__ import annotations

from typing import Collection

from pydantic import Field, ValidationInfo, model_validator

from pipeline_code.catalog import Dataset
from pipeline_code.core.contract import DEFAULT_PROJECT, ENVIRONMENT_TAG, NAME_PATTERN, PROJECT_TAG
from pipeline_code.core.thresholds import THRESHOLDS

from ._strict import StrictModel
from .budget import budget_problems
from .cross_checks import (accelerator_problems, accelerator_warnings, account_wide_name_problems, capture_problems,
                           capture_where, captures_nothing_it_monitors, environment_name_problems,
                           environment_pair_warnings, inferentia2_problems, label_delay_problems, members_by_endpoint,
                           model_name_problems, multi_model_problems, offer_problems, owner_contact_problems,
                           team_approver_problems, training_problems)
from .environment import EnvironmentConfig
from .model import ModelConfig
from .serving import ServingConfig


# Validation-context key: the loader has already run AppConfig's cross-checks (see AppConfig._references).
CROSS_CHECKED = "cross_checked"


class AppConfig(StrictModel):
    """The whole app: a project name, the models and the environments that deploy them."""

    project: str = Field(default=DEFAULT_PROJECT, pattern=NAME_PATTERN)
    datasets: dict[str, Dataset]
    models: dict[str, ModelConfig]
    environments: dict[str, EnvironmentConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _references(self, info: ValidationInfo) -> "AppConfig":
        """Checks across models and environments. The loader runs them itself, before building this model,
        so that each problem is one line among all the config's problems; it says so in the context
        (``CROSS_CHECKED``) and they are not run twice. An AppConfig built any other way is checked here."""
        if info.context and info.context.get(CROSS_CHECKED):
            return self
        for env in self.environments.values():
            unknown = [m for m in env.models if m not in self.models]
            if unknown:
                raise ValueError(
                    f"environment {env.name!r}: models: references unknown model(s) {unknown}; "
                    f"allowed: {', '.join(sorted(self.models))}"
                )
        problems = (model_name_problems(self.models) + environment_name_problems(self.project, self.models, self.environments)
                    + account_wide_name_problems(self.project, self.models, self.environments)
                    + accelerator_problems(self.models, self.environments) + multi_model_problems(self.models, self.environments)
                    + training_problems(self.models, self.environments) + inferentia2_problems(self.models, self.environments)
                    + offer_problems(self.models, self.environments) + capture_problems(self.models, self.environments)
                    + label_delay_problems(self.models, self.environments) + budget_problems(self.environments)
                    + team_approver_problems(self.models, self.environments) + owner_contact_problems(self.models))
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def models_of(self, env: EnvironmentConfig) -> tuple[ModelConfig, ...]:
        return tuple(self.models[m] for m in env.models)

    def tags_of(self, env: EnvironmentConfig) -> tuple[tuple[str, str], ...]:
        """The cost-allocation tags of everything ``env`` runs, as (key, value) pairs: ``project``, ``environment``
        and ``tier``. The stage puts them on every resource of its templates, and every SageMaker job that is
        created at run time (pipeline steps, scheduled monitor and batch transform jobs) carries them in its
        request: CloudFormation's tags never reach those jobs. The first two say whose a resource is
        (``contract.OWNER_TAGS``): the roles that reach resources by generated names are held to them."""
        return ((PROJECT_TAG, self.project), (ENVIRONMENT_TAG, env.name), ("tier", env.tier))

    def warnings(self) -> list[str]:
        """What synth accepts but a deployment should not go out with, one line each: an account id that is a
        placeholder (one digit repeated, or 123456789012), a prod environment sharing its account with a dev or
        staging environment (a mistake in one could then reach prod's data and roles; two prod environments, in two
        regions say, may share one), a prod environment whose models anyone in the account may approve (no
        ``approvers`` nor their team's), and an environment named like production whose tier is not prod (it would
        get none of prod's guards)."""
        lines = environment_pair_warnings(self.project, self.environments) + accelerator_warnings(self.models,
                                                                                                 self.environments)
        for env in self.environments.values():
            if len(set(env.account)) == 1 or env.account == "123456789012":
                lines.append(f"environment {env.name!r}: field 'account': {env.account!r} looks like a placeholder; put "
                             "the AWS account id of this environment there before `cdk deploy`")
        for env in self.environments.values():
            shared = [other.name for other in self.environments.values()
                      if other is not env and other.account == env.account and other.tier != "prod"]
            if env.tier == "prod" and shared:
                lines.append(f"environment {env.name!r}: field 'account': {env.account!r} is also the account of "
                             f"{', '.join(repr(s) for s in shared)}; give prod an account of its own")
            if env.tier == "prod":
                lines.extend(_gates_looser_than(env, self.models_of(env)))
                lines.extend(_approved_by_anyone(env, self.models_of(env)))
            if env.tier != "prod" and env.name.lower().startswith(("prod", "prd")):
                lines.append(f"environment {env.name!r}: field 'tier': {env.tier!r}, so prod's guards are not enforced "
                             "(human approval, retained and termination-protected stacks are required for tier prod only); "
                             "set tier: prod if it serves production")
            for model in self.models_of(env):
                if captures_nothing_it_monitors(self.serving_of(env, model)):
                    lines.append(f"{capture_where(env, model)}: 0 captures no request, so the model's drift monitor will "
                                 "report every window quiet and never see drift; capture a sample (e.g. 10) to monitor it")
        return lines

    def serving_of(self, env: EnvironmentConfig, model: ModelConfig) -> ServingConfig:
        """The model's serving settings in ``env`` (its own block plus the environment's overrides)."""
        return env.serving.get(model.name, model.serving)

    def multi_model_members(self, env: EnvironmentConfig) -> dict[str, tuple[ModelConfig, ...]]:
        """Each multi-model endpoint ``env`` builds, with its member models (in ``env.models`` order)."""
        return members_by_endpoint(self.models, env)


def _approved_by_anyone(env: EnvironmentConfig, models: Collection[ModelConfig]) -> list[str]:
    """A prod environment whose approver role anyone may assume (``approvers: []``) for models no team's approvers
    decide: any principal of the account its own policies allow (with MFA) may approve those versions, a version it
    trained itself too (the audit reports that afterwards). Not refused: the ARNs are the account's, which a sample
    config cannot know."""
    open_to_all = [m.name for m in models
                   if not env.approvers and not (m.owner is not None and m.owner.team in env.team_approvers)]
    if not open_to_all:
        return []
    return [f"environment {env.name!r}: field 'approvers': empty, so any principal of the account its own policies "
            f"allow may assume the approver role and approve versions of {', '.join(repr(m) for m in open_to_all)} "
            "(one it trained itself too); name who may approve (IAM role or user ARNs) or give the models' teams "
            "team_approvers before `cdk deploy` (docs/configuration.md, Every setting)"]


def _gates_looser_than(env: EnvironmentConfig, models: Collection[ModelConfig]) -> list[str]:
    """A model's own gate key looser than ``env``'s configured threshold (set in the environment or its ``defaults``):
    the model's wins (``gate_in``), so a stricter policy written for the environment would not hold for that model
    without a word."""
    lines = []
    explicit = env.gate.model_fields_set
    for model in models:
        for t in THRESHOLDS:
            if t.field in (model.gate or {}) and t.field in explicit and t.looser(float(model.gate[t.field]),
                                                                                     float(getattr(env.gate, t.field))):
                lines.append(f"environment {env.name!r}: field 'gate.{t.field}': {getattr(env.gate, t.field):g} does not "
                             f"hold for model {model.name!r}, whose own gate.{t.field} {float(model.gate[t.field]):g} is "
                             "looser and wins; align the model's value if the environment's is the policy")
    return lines
