"""The template diff's GOVERNANCE call-outs: a change that weakens a control without touching IAM - the promotion
gate's thresholds loosened, versions registered without a human approval, a model's network isolation turned off.

Inputs are one-stack assemblies (``tests.support.assemblies``) holding a pipeline whose definition (embedded JSON,
as the Training stack writes it) or a model whose isolation is the only change."""

from __future__ import annotations

import json

from mlops_loop.tools.template_diff import CATEGORY_GOVERNANCE, compare_assemblies, render_markdown
from tests.support.assemblies import template, write_assembly


def _pipeline(min_auc: float, min_disparate_impact: float, approval: str = "PendingManualApproval") -> dict:
    definition = {"Version": "2020-12-01", "Parameters": [
        {"Name": "MinAuc", "Type": "Float", "DefaultValue": min_auc},
        {"Name": "MinDisparateImpact", "Type": "Float", "DefaultValue": min_disparate_impact},
        {"Name": "ModelApprovalStatus", "Type": "String", "DefaultValue": approval},
    ], "Steps": []}
    return {"Type": "AWS::SageMaker::Pipeline", "Properties": {
        "PipelineName": "mlops-loop-prod-churn-training", "RoleArn": "arn:aws:iam::333333333333:role/pipeline",
        "PipelineDefinition": {"PipelineDefinitionBody": json.dumps(definition)}}}


def _model(isolated: bool) -> dict:
    return {"Type": "AWS::SageMaker::Model", "Properties": {
        "ExecutionRoleArn": "arn:aws:iam::333333333333:role/serving", "EnableNetworkIsolation": isolated,
        "PrimaryContainer": {"Image": "image", "ModelDataUrl": "s3://bucket/model.tar.gz"}}}


def _diff(tmp_path, before: dict, after: dict, stack: str = "Training"):
    def assembly(name: str, resources: dict):
        return write_assembly(tmp_path / name, {"prod": {stack: template(resources)}})

    return compare_assemblies(assembly("base", before), assembly("head", after))


def _governance(diff) -> list[str]:
    return [c.message for c in diff.callouts_for("prod") if c.category == CATEGORY_GOVERNANCE]


def test_a_loosened_promotion_gate_is_called_out_and_a_tightened_one_is_not(tmp_path):
    # GIVEN prod's pipeline whose four-fifths bound drops from 0.8 to 0.5 while its AUC minimum rises
    diff = _diff(tmp_path, {"Pipeline": _pipeline(0.7, 0.8)}, {"Pipeline": _pipeline(0.75, 0.5)})
    # THEN the loosened threshold alone is a GOVERNANCE call-out, and the review comment marks it
    (message,) = _governance(diff)
    assert message.endswith(
        "promotion gate loosened: MinDisparateImpact 0.8 -> 0.5 (smallest allowed min/max positive-rate ratio "
        "(regression: of relative error)); more challengers pass")
    assert ":warning: **GOVERNANCE**" in render_markdown(diff, title="review")


def test_registering_versions_approved_is_called_out(tmp_path):
    diff = _diff(tmp_path, {"Pipeline": _pipeline(0.7, 0.8)}, {"Pipeline": _pipeline(0.7, 0.8, "Approved")})
    (message,) = _governance(diff)
    assert message.endswith("versions are now registered Approved "
                            "(PipelineDefinition.PipelineDefinitionBody<json>.Parameters[Name=ModelApprovalStatus]"
                            ".DefaultValue): no human approves them before they serve")


def test_network_isolation_turned_off_is_called_out_and_turned_on_is_not(tmp_path):
    (message,) = _governance(_diff(tmp_path / "off", {"Model": _model(True)}, {"Model": _model(False)}, "Serving"))
    assert message.endswith("EnableNetworkIsolation: network isolation turned off: its container may now reach the network")
    assert _governance(_diff(tmp_path / "on", {"Model": _model(False)}, {"Model": _model(True)}, "Serving")) == []
