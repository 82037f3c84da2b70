"""Model Registry: one versioned group per model, and separation of duties around approval."""

from __future__ import annotations

import pytest

from tests.support.paths import live_project
from tests.support.templates import policy_statements


# Physical names start with the configured project (a user renames it first).
PROJECT = live_project()


def _policy(synthesized, env: str, prefix: str) -> dict[str, dict]:
    policies = synthesized.resources(env, "Storage", "AWS::IAM::ManagedPolicy")
    return policy_statements(policies, [k for k in policies if k.startswith(prefix)])


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_one_model_package_group_per_model(synthesized, env):
    groups = synthesized.resources(env, "Storage", "AWS::SageMaker::ModelPackageGroup")
    names = {g["Properties"]["ModelPackageGroupName"] for g in groups.values()}
    models = synthesized.config.environments[env].models
    assert names == {f"{PROJECT}-{env}-{m}" for m in models}
    # Kept on update and delete; a failed first create cleans up after itself (stacks.lifetimes.removal_policy).
    expected_policy = "Delete" if env == "dev" else "RetainExceptOnCreate"
    assert {g["DeletionPolicy"] for g in groups.values()} == {expected_policy}


def test_approver_can_change_approval_status_of_this_environments_versions_only(synthesized):
    statements = _policy(synthesized, "prod", "RegistryApproverAccess")
    change = statements["ChangeApprovalStatus"]
    assert change["Effect"] == "Allow" and change["Action"] == "sagemaker:UpdateModelPackage"
    env = synthesized.config.environments["prod"]
    expected = [f"arn:aws:sagemaker:{env.region}:{env.account}:model-package/{PROJECT}-prod-{m}/*" for m in env.models]
    assert sorted(change["Resource"]) == sorted(expected)


def test_approver_cannot_train_register_or_edit_pipelines(synthesized):
    statements = _policy(synthesized, "prod", "RegistryApproverAccess")
    deny = statements["ApproverCannotTrainOrRegister"]
    assert deny["Effect"] == "Deny" and deny["Resource"] == "*"
    assert {
        "sagemaker:StartPipelineExecution",
        "sagemaker:UpdatePipeline",
        "sagemaker:CreatePipeline",
        "sagemaker:CreateModelPackage",
        "sagemaker:CreateTrainingJob",
    } <= set(deny["Action"])
    allowed = {a for s in statements.values() if s["Effect"] == "Allow" for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert not any(a.startswith(("sagemaker:Start", "sagemaker:Create", "sagemaker:UpdatePipeline", "s3:")) for a in allowed)


def test_approver_role_requires_mfa_from_this_account(synthesized):
    roles = synthesized.resources("prod", "Storage", "AWS::IAM::Role")
    (approver,) = [r for k, r in roles.items() if k.startswith("RegistryApproverRole")]
    props = approver["Properties"]
    assert props["RoleName"] == f"{PROJECT}-prod-model-approver"
    (statement,) = props["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Condition"] == {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
    assert ":iam::333333333333:root" in str(statement["Principal"])
