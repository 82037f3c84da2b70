"""The first approval must not fail on permissions (issue #17): CloudFormation's handlers, as the deployer role.

The approval handler updates the serving stack (``UsePreviousTemplate``, one parameter) passing the
serving deployer role, so every create, read, update and delete CloudFormation performs on the
resources that follow the parameter is authorized against that role -- and, for actions such as
``sagemaker:CreateEndpoint``, against every resource the call involves. These tests walk the handler
permissions of each such resource (``cfn_handlers``) through the IAM evaluator for every environment.
"""

from __future__ import annotations

import copy

import pytest

from mlops_loop.config import load_config

from tests.support.paths import CONFIG_PATH
from tests.support.deploy_permissions import assembly_model, missing_permissions, touched_by_parameters
from tests.support.iam_eval import IamModel, Role, StackTemplate

ENVS = tuple(load_config(CONFIG_PATH).environments)
STACKS = ("Storage", "DataPipeline", "Training", "Serving", "Operations")


def _model(synthesized, env: str, serving_template: dict | None = None) -> IamModel:
    cfg = synthesized.config.environments[env]
    templates = {label: synthesized.template(env, label) for label in STACKS}
    if serving_template is not None:
        templates["Serving"] = serving_template
    return IamModel(
        [StackTemplate(label, synthesized.stacks[(env, label)].stack_name, templates[label]) for label in STACKS],
        account=cfg.account, region=cfg.region,
    )


def _env_with_endpoints(synthesized) -> str:
    """An environment of the config that serves some model from an endpoint (skip when none does)."""
    for env in reversed(ENVS):
        if synthesized.resources(env, "Serving", "AWS::SageMaker::Endpoint"):
            return env
    pytest.skip("no environment serves a model from an endpoint (batch only); the modes variant covers that path")


def _deployer(model: IamModel) -> Role:
    """The serving stack's CloudFormation service role (the one role CloudFormation may assume there)."""
    template = model.stacks["Serving"].template
    (logical_id,) = [
        lid for lid, r in template["Resources"].items()
        if r["Type"] == "AWS::IAM::Role"
        and r["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "cloudformation.amazonaws.com"}
    ]
    return model.role(f"Serving/{logical_id}")


@pytest.mark.parametrize("env", ENVS)
def test_the_deployer_may_make_every_call_cloudformation_makes_on_an_approval(synthesized, env):
    """GIVEN the serving stack of ``env`` and its deployer role
    WHEN every resource that follows a model-version parameter is created, read, updated and deleted
    THEN the role is allowed each handler permission on every resource the call involves (e.g. CreateEndpoint
    on the endpoint AND its endpoint-config), or the permission is recorded as not needed with its reason."""
    model = _model(synthesized, env)
    problems, checked = missing_permissions(model, _deployer(model), "Serving")
    assert problems == [], "\n".join(problems)
    touched = {r.type for r in touched_by_parameters("Serving", model.stacks["Serving"].template)}
    assert "AWS::SageMaker::Model" in touched and checked
    if "AWS::SageMaker::Endpoint" in touched:  # every mode but batch
        assert any("sagemaker:UpdateEndpoint" in line and "endpoint-config" in line for line in checked)


@pytest.mark.parametrize("fixture", ["modes", "pooled"])
def test_every_serving_mode_can_be_deployed_by_the_deployer(request, fixture):
    """GIVEN the environments that serve every mode (async, batch with its schedule, native
    monitors, linear/all-at-once/NVMe endpoints) and multi-model endpoints (TargetModel parameters)
    WHEN their resources that follow a version parameter are walked
    THEN the deployer may make every call CloudFormation makes for them."""
    built = request.getfixturevalue(fixture)
    env = next(iter(e for e in built.config.environments if e in (fixture, "modes")))
    model = assembly_model(built.outdir, built.config, env)
    problems, checked = missing_permissions(model, _deployer(model), "Serving")
    assert problems == [], "\n".join(problems)
    touched = {r.type for r in touched_by_parameters("Serving", model.stacks["Serving"].template)}
    # These variants serve every mode, whatever the sample config does: the endpoint path is always proven here.
    endpoint = {"AWS::SageMaker::Model", "AWS::SageMaker::EndpointConfig", "AWS::SageMaker::Endpoint"}
    expected = endpoint | ({"AWS::Scheduler::Schedule", "AWS::SageMaker::MonitoringSchedule"} if fixture == "modes"
                           else {"AWS::SSM::Parameter"})
    assert expected <= touched
    assert len(checked) > 100


def test_without_the_endpoint_config_grant_the_first_approval_is_denied(synthesized):
    """GIVEN prod's serving template with the deployer's endpoint-config statement removed (main before issue #17)
    WHEN the handler permissions are walked
    THEN CreateEndpoint and UpdateEndpoint are reported, naming the stack, resource, action and endpoint-config."""
    env = _env_with_endpoints(synthesized)
    template = copy.deepcopy(synthesized.template(env, "Serving"))
    removed = 0
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::IAM::ManagedPolicy":
            statements = resource["Properties"]["PolicyDocument"]["Statement"]
            kept = [s for s in statements if s.get("Sid") != "UseEndpointConfigs"]
            removed += len(statements) - len(kept)
            resource["Properties"]["PolicyDocument"]["Statement"] = kept
    assert removed == 1
    model = _model(synthesized, env, template)
    problems, _ = missing_permissions(model, _deployer(model), "Serving")
    endpoints = [lid for lid, r in template["Resources"].items() if r["Type"] == "AWS::SageMaker::Endpoint"]
    assert endpoints
    region, account = model.region, model.account
    for lid in endpoints:
        config = template["Resources"][lid]["Properties"]["EndpointConfigName"]["Fn::GetAtt"][0]
        arn = f"arn:aws:sagemaker:{region}:{account}:endpoint-config/{config.lower()}-${{random}}"
        for handler, action in (("create", "sagemaker:CreateEndpoint"), ("update", "sagemaker:UpdateEndpoint")):
            line = (f"Serving/{lid} (AWS::SageMaker::Endpoint) {handler}: {_deployer(model)} may not call {action} "
                    f"on {arn} (ImplicitDeny)")
            assert line in problems
    assert all("sagemaker:CreateEndpoint" in p or "sagemaker:UpdateEndpoint" in p for p in problems)


def test_a_handler_permission_missing_from_the_policy_is_reported(synthesized):
    """GIVEN prod's serving template without cloudwatch:ListTagsForResource for the alarms (main before issue #17)
    WHEN walked THEN the read handler of every alarm that follows the parameter is reported."""
    env = _env_with_endpoints(synthesized)
    template = copy.deepcopy(synthesized.template(env, "Serving"))
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::IAM::ManagedPolicy":
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                statement["Action"] = [a for a in actions if a != "cloudwatch:ListTagsForResource"] or ["cloudwatch:DescribeAlarms"]
    model = _model(synthesized, env, template)
    problems, _ = missing_permissions(model, _deployer(model), "Serving")
    alarms = [lid for lid, r in template["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm" and "Condition" in r]
    assert alarms and len(problems) == len(alarms)
    assert all(" read: " in p and "cloudwatch:ListTagsForResource" in p for p in problems)


def test_a_resource_type_without_recorded_handler_permissions_is_a_problem(synthesized):
    """GIVEN a conditional resource of a type nobody recorded handler permissions for
    WHEN walked THEN the line says to add it to cfn_handlers.HANDLER_PERMISSIONS (a new type cannot slip through)."""
    env = _env_with_endpoints(synthesized)
    template = copy.deepcopy(synthesized.template(env, "Serving"))
    condition = next(iter(template["Conditions"]))
    template["Resources"]["NewQueue"] = {"Type": "AWS::SQS::Queue", "Properties": {}, "Condition": condition}
    model = _model(synthesized, env, template)
    problems, _ = missing_permissions(model, _deployer(model), "Serving")
    assert problems == ["Serving/NewQueue (AWS::SQS::Queue): no handler permissions recorded; add the type to "
                        "cfn_handlers.HANDLER_PERMISSIONS from its resource schema"]


def test_a_not_needed_permission_becomes_needed_when_its_property_appears(synthesized):
    """GIVEN a scalable target that (hypothetically) sets ScheduledActions WHEN walked THEN the exemption for
    PutScheduledAction no longer holds and is reported, so a justification cannot go stale silently."""
    env = _env_with_endpoints(synthesized)
    template = copy.deepcopy(synthesized.template(env, "Serving"))
    targets = [r for r in template["Resources"].values() if r["Type"] == "AWS::ApplicationAutoScaling::ScalableTarget"]
    if not targets:
        pytest.skip("this configuration has no autoscaled endpoint in its last environment")
    targets[0]["Properties"]["ScheduledActions"] = [{"ScheduledActionName": "x", "Schedule": "rate(1 hour)"}]
    model = _model(synthesized, env, template)
    problems, _ = missing_permissions(model, _deployer(model), "Serving")
    assert any("application-autoscaling:PutScheduledAction is recorded as not needed" in p for p in problems)


def test_only_resources_that_follow_a_parameter_are_touched():
    """GIVEN a parameter, a condition on it, a conditional resource, a resource referring to it and an unrelated
    one WHEN the touched set is computed THEN the first two are in it and the unrelated one is not."""
    template = {
        "Parameters": {"Version": {"Type": "String"}},
        "Conditions": {"Deployed": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Version"}, ""]}]},
                       "Both": {"Fn::And": [{"Condition": "Deployed"}, {"Fn::Equals": ["a", "a"]}]}},
        "Resources": {
            "Model": {"Type": "AWS::SageMaker::Model", "Condition": "Both", "Properties": {}},
            "Alarm": {"Type": "AWS::CloudWatch::Alarm", "Properties": {"AlarmDescription": {"Ref": "Model"}}},
            "Direct": {"Type": "AWS::SSM::Parameter", "Properties": {"Value": {"Ref": "Version"}}},
            "Role": {"Type": "AWS::IAM::Role", "Properties": {"Description": "static"}},
        },
    }
    assert [r.logical_id for r in touched_by_parameters("S", template)] == ["Alarm", "Direct", "Model"]
