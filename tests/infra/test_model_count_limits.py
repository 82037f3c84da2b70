"""What grows with an environment's models, against the quotas AWS enforces only at deploy: a bank-sized line-up
synthesizes where AWS would take it, and a template CloudFormation would refuse is refused at synth, naming its stack
and what to do (``mlops_loop.tools.stack_quotas``)."""

from __future__ import annotations

import json

import pytest

from mlops_loop.app_builder import build_app, new_app
from mlops_loop.config.loader import parse_config
from mlops_loop.tools import stack_quotas
from mlops_loop.tools.cloud_assembly import stacks
from pipeline_code.core.contract import environment_prefix
from tests.support.assemblies import template, write_assembly
from tests.support.construct_configs import fleet_config

FLEET = 20


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """GIVEN an environment serving 20 models WHEN it is synthesized."""
    config = parse_config(fleet_config(FLEET), source="fleet config")
    outdir = tmp_path_factory.mktemp("fleet") / "cdk.out"
    app = new_app(str(outdir))
    build_app(app, config)
    app.synth()
    return config, {s.construct_id: s.template for s in stacks(outdir)}


@pytest.mark.slow
@pytest.mark.synth
def test_deploy_on_approval_of_twenty_models_names_each_serving_parameter_within_lambdas_environment_limit(fleet):
    """THEN the deploy-on-approval function (whose MODEL_PARAMETERS grows by a model's group and parameter name, ~60
    bytes each) is built, naming each model's Serving-stack parameter as a plain name, not refused as if each name
    were an unknown ARN."""
    config, templates = fleet
    (function,) = [r["Properties"] for r in templates["Operations"]["Resources"].values()
                   if r["Type"] == "AWS::Lambda::Function" and r["Properties"].get("FunctionName", "").endswith("deploy-on-approval")]
    parameters = json.loads(function["Environment"]["Variables"]["MODEL_PARAMETERS"])
    env = config.environments["dev"]
    prefix = environment_prefix(config.project, "dev")
    assert sorted(parameters) == sorted(f"{prefix}-{m}" for m in env.models)
    assert set(parameters.values()) <= set(templates["Serving"]["Parameters"])
    assert len(set(parameters.values())) == FLEET


def _models(stage: str) -> int:
    return {"dev": 20}[stage]


def test_a_template_over_cloudformations_size_limit_is_refused_naming_the_stack_and_the_fix(tmp_path):
    big = template({"Topic": {"Type": "AWS::SNS::Topic", "Properties": {"DisplayName": "x" * stack_quotas.MAX_TEMPLATE_BYTES}}})
    outdir = write_assembly(tmp_path / "out", {"dev": {"Operations": big, "Serving": template({})}})
    assert stack_quotas.quota_problems(outdir, _models) == [
        f"stack dev/Operations: its template is {(outdir / 'assembly-dev' / 'devOperations0A1B2C3D.template.json').stat().st_size:,} "
        "bytes, over CloudFormation's 1,000,000-byte limit for a template: the deploy would fail. Its size grows with the "
        "environment's models: serve fewer in environment dev (environments.dev.models lists 20) and move the others to a "
        "second project config (docs/configuration.md \"A second project (another config)\")"]


@pytest.mark.parametrize(("section", "what", "limit"), [("Outputs", "outputs", 200), ("Parameters", "parameters", 200),
                                                        ("Mappings", "mappings", 200), ("Resources", "resources", 500)])
def test_a_template_with_more_of_a_section_than_cloudformation_takes_is_refused(tmp_path, section, what, limit):
    body = template({})
    body[section] = {f"Item{i}": {"Type": "String"} for i in range(limit + 1)}
    outdir = write_assembly(tmp_path / "out", {"dev": {"Serving": body}})
    assert stack_quotas.quota_problems(outdir, _models) == [
        f"stack dev/Serving: its template has {limit + 1} {what}, over CloudFormation's {limit} per template: the deploy "
        "would fail. Its size grows with the environment's models: serve fewer in environment dev (environments.dev.models "
        "lists 20) and move the others to a second project config (docs/configuration.md \"A second project (another config)\")"]


def test_templates_within_every_quota_raise_nothing(tmp_path):
    body = template({f"Topic{i}": {"Type": "AWS::SNS::Topic"} for i in range(500)})
    outdir = write_assembly(tmp_path / "out", {"dev": {"Serving": body}})
    assert stack_quotas.quota_problems(outdir, _models) == []


def test_the_cdks_refusal_of_a_stack_over_500_resources_is_said_with_the_fix():
    error = RuntimeError("TooManyResourcesInStack: Number of resources in stack 'dev/Operations': 814 is greater than "
                         "allowed maximum of 500: AWS::SNS::Topic (2), AWS::CloudWatch::Alarm (441)")
    assert stack_quotas.too_many_resources(error, _models) == (
        "stack dev/Operations: its template has 814 resources, over CloudFormation's 500 per template: the deploy would "
        "fail. Its size grows with the environment's models: serve fewer in environment dev (environments.dev.models "
        "lists 20) and move the others to a second project config (docs/configuration.md \"A second project (another config)\")")
    assert stack_quotas.too_many_resources(RuntimeError("something else"), _models) is None
