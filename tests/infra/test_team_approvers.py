"""A team approves its own models only: ``environments.<env>.team_approvers`` (docs/configuration.md, Models of
several teams).

A team with approvers of its own gets an approver role ``<prefix>-<team>-team-approver`` that may decide the versions
of its models and of no other model; the environment's approver role then decides every other model's versions and
none of that team's. Proven with ``iam_eval`` over the ``teams`` fixture (the user's config, its first environment's
first two models owned by team-a, with approvers, and team-b, without), whatever models the config holds."""

from __future__ import annotations

from pipeline_code.core.contract import (approver_role_name, environment_prefix, package_group_name,
                                         team_approver_role_name)

from tests.support.deploy_permissions import assembly_model
from tests.support.iam_eval import authorize

DECIDE = {"sagemaker:ModelApprovalStatus": "Approved"}


def _version_arn(teams, model: str) -> str:
    env = teams.config.environments[teams.env]
    group = package_group_name(environment_prefix(teams.config.project, teams.env), model)
    return f"arn:aws:sagemaker:{env.region}:{env.account}:model-package/{group}/3"


def _may_decide(role, arn: str) -> bool:
    return authorize(role, "sagemaker:UpdateModelPackage", {"model-package": arn}, DECIDE).allowed


def test_a_team_with_approvers_decides_its_own_models_and_the_environments_approver_the_others(teams):
    """GIVEN team-a with approvers of its own and team-b without WHEN each approver role decides a version of each model
    THEN team-a's role decides team-a's models only; the environment's role every other model's, none of team-a's."""
    prefix = environment_prefix(teams.config.project, teams.env)
    iam = assembly_model(teams.outdir, teams.config, teams.env)
    team_role = iam.role(team_approver_role_name(prefix, "team-a"))
    env_role = iam.role(approver_role_name(prefix))
    models = teams.config.environments[teams.env].models
    for model in models:
        owner = teams.config.models[model].owner
        own = owner is not None and owner.team == "team-a"
        arn = _version_arn(teams, model)
        assert _may_decide(team_role, arn) is own, (model, "team-a approver")
        assert _may_decide(env_role, arn) is (not own), (model, "environment approver")


def test_the_team_approver_role_is_assumed_by_the_teams_approvers_only(teams):
    """GIVEN team-a's approvers WHEN its approver role's trust policy is read THEN it names them (aws:PrincipalArn), not
    every principal of the account."""
    prefix = environment_prefix(teams.config.project, teams.env)
    stack = teams.by_id["Storage"].template
    (role,) = [r for r in stack["Resources"].values() if r["Type"] == "AWS::IAM::Role"
               and r["Properties"].get("RoleName") == team_approver_role_name(prefix, "team-a")]
    (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    expected = teams.config.environments[teams.env].team_approvers["team-a"]
    assert statement["Condition"]["ArnLike"]["aws:PrincipalArn"] in (list(expected), expected[0])
