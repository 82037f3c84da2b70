"""The native Model Monitor opt-in, wired into a real environment's serving stack."""

from __future__ import annotations

import json

import pytest
import yaml
from aws_cdk import App

from mlops_loop.app_builder import REPO_ROOT, build_app, cdk_json_context
from mlops_loop.config import parse_config
from mlops_loop.tools.cloud_assembly import stacks
from mlops_loop.tools.lint import lint_templates

pytestmark = pytest.mark.synth


@pytest.fixture(scope="module")
def staging(tmp_path_factory):
    """GIVEN staging's churn endpoint opting into native Model Monitor WHEN staging is synthesized (nag on)."""
    raw = yaml.safe_load((REPO_ROOT / "config" / "mlops-loop.yaml").read_text())
    raw["environments"]["staging"]["serving"] = {"churn": {"native_model_monitor": True}}
    outdir = tmp_path_factory.mktemp("native")
    app = App(outdir=str(outdir), context=cdk_json_context())
    build_app(app, parse_config(raw), environments=["staging"])
    app.synth()
    return {s.artifact_id.removeprefix("staging")[:-8]: s for s in stacks(outdir)}


def test_four_native_monitors_exist_only_once_a_version_serves(staging):
    resources = staging["Serving"].template["Resources"]
    kinds = [r["Type"] for r in resources.values() if "JobDefinition" in r["Type"] or r["Type"].endswith("MonitoringSchedule")]
    assert sorted(kinds) == sorted(
        ["AWS::SageMaker::DataQualityJobDefinition", "AWS::SageMaker::ModelQualityJobDefinition",
         "AWS::SageMaker::ModelBiasJobDefinition", "AWS::SageMaker::ModelExplainabilityJobDefinition"]
        + ["AWS::SageMaker::MonitoringSchedule"] * 4
    )
    for resource in resources.values():
        if resource["Type"].startswith("AWS::SageMaker::") and resource["Type"] != "AWS::SageMaker::Model":
            if "JobDefinition" in resource["Type"] or "MonitoringSchedule" in resource["Type"]:
                assert resource["Condition"] == "ChurnDeployed"
                assert "ChurnEndpoint57AD3240" in resource.get("DependsOn", [])
    # credit-risk (serverless, no opt-in) gets none.
    assert "CreditRiskNativeMonitor" not in json.dumps(list(resources))


def test_the_deployer_may_create_exactly_these_monitors_and_pass_only_their_role(staging):
    resources = staging["Serving"].template["Resources"]
    (policy,) = [r for k, r in resources.items() if k.startswith("DeployerAccess")]
    sids = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    assert "sagemaker:CreateMonitoringSchedule" in sids["NativeMonitorSchedulesChurn"]["Action"]
    schedules = {r["Properties"]["MonitoringScheduleName"] for r in resources.values() if r["Type"] == "AWS::SageMaker::MonitoringSchedule"}
    assert {arn.rsplit("/", 1)[1] for arn in sids["NativeMonitorSchedulesChurn"]["Resource"]} == {s.lower() for s in schedules}
    passed = sids["PassNativeMonitorRoleChurn"]
    assert passed["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    assert passed["Resource"]["Fn::GetAtt"][0].startswith("ChurnNativeMonitorRole")


def test_the_stage_with_native_monitors_lints_clean(staging):
    result = lint_templates([s.template_path for s in staging.values()])
    assert (result.errors, result.warnings) == (0, 0), "\n".join(result.lines)
