"""What grows with an environment's models, against the quotas AWS enforces only at deploy: a bank-sized line-up
synthesizes where AWS would take it, and a template CloudFormation would refuse is refused at synth, naming its stack
and what to do (``mlops_loop.tools.stack_quotas``)."""

from __future__ import annotations

import json

import pytest

from mlops_loop.app_builder import build_app, new_app
from mlops_loop.config.loader import parse_config
from mlops_loop.tools.cloud_assembly import stacks
from pipeline_code.core.contract import environment_prefix
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
