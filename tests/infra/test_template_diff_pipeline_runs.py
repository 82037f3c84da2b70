"""The template diff on a removed or renamed SageMaker pipeline: deleting a pipeline deletes all its executions (the
run records of every version it registered), so it is DATA AT RISK with what to do first - unlike the registry group,
which CloudFormation keeps.

Inputs are one-stack assemblies (``tests.support.assemblies``)."""

from __future__ import annotations

from mlops_loop.tools.template_diff import CATEGORY_DATA_AT_RISK, compare_assemblies
from tests.support.assemblies import template, write_assembly

NAME = "mlops-loop-prod-churn-training"
RUNS = (" Deleting pipeline mlops-loop-prod-churn-training deletes all its executions (SageMaker DeletePipeline): the "
        "run record of every version it registered - the definition each run ran, its parameters (gate thresholds, "
        "hyperparameters) and steps - which the audit reads; the registry group keeps the versions, not their runs. "
        "First, before this deploy: every version of it that must stay auditable needs its run record in the artifacts "
        "bucket's evidence (run-records/<model>/<version>/, write-once: the deploy handler keeps one when a version is "
        "approved and its run has ended); for any other, invoke the deploy handler with {\"action\": \"record-run\", "
        "\"group\": \"mlops-loop-prod-churn\", \"version\": N} while the model is still deployed (docs/reviewing-deploying-auditing.md, \"Changing "
        "what is deployed\").")


def _pipeline(name: str = NAME, **policies: str) -> dict:
    return {"Type": "AWS::SageMaker::Pipeline", **policies,
            "Properties": {"PipelineName": name, "RoleArn": "arn:aws:iam::111111111111:role/r",
                           "PipelineDefinition": {"PipelineDefinitionBody": "{}"}},
            "Metadata": {"aws:cdk:path": f"prod/Training/{name}/Pipeline"}}


def _at_risk(tmp_path, base: dict, head: dict) -> list[str]:
    """GIVEN a Training stack with ``base``'s resources, then ``head``'s WHEN compared THEN its DATA AT RISK messages."""
    keep = {"Keep": {"Type": "AWS::SNS::Topic"}}
    old = write_assembly(tmp_path / "base", {"prod": {"Training": template({**keep, **base})}})
    new = write_assembly(tmp_path / "head", {"prod": {"Training": template({**keep, **head})}})
    return [c.message for c in compare_assemblies(old, new).callouts_for("prod") if c.category == CATEGORY_DATA_AT_RISK]


def test_a_removed_pipeline_says_its_runs_go_with_it_and_what_to_do_first(tmp_path):
    """WHEN a model's pipeline leaves the template (the model dropped from the config) THEN one DATA AT RISK call-out
    says CloudFormation deletes it, that its executions (the versions' run records) go with it, and how to keep them."""
    assert _at_risk(tmp_path, {"ChurnPipeline": _pipeline()}, {}) == [
        "removed. DeletionPolicy is Delete, not Retain: CloudFormation DELETES ChurnPipeline and its data." + RUNS]


def test_a_renamed_model_replaces_its_pipeline_and_says_the_same(tmp_path):
    """WHEN the pipeline's logical id and name change (the model renamed) THEN the old one is deleted: the same
    call-out, naming the old pipeline and its group."""
    (message,) = _at_risk(tmp_path, {"ChurnPipeline": _pipeline()},
                          {"AttritionPipeline": _pipeline("mlops-loop-prod-attrition-training")})
    assert message.startswith("renamed from ChurnPipeline (delete + create). DeletionPolicy is Delete, not Retain: "
                              "CloudFormation DELETES ChurnPipeline and its data. Deleting pipeline "
                              "mlops-loop-prod-churn-training deletes all its executions")
    assert '"group": "mlops-loop-prod-churn"' in message


def test_a_retained_pipeline_keeps_its_runs_and_an_updated_one_is_no_data_at_risk(tmp_path):
    """A pipeline CloudFormation keeps (DeletionPolicy Retain) keeps its executions: only the generic orphan call-out;
    a definition update (same pipeline) deletes nothing."""
    (kept,) = _at_risk(tmp_path / "kept", {"ChurnPipeline": _pipeline(DeletionPolicy="Retain")}, {})
    assert kept.startswith("removed. DeletionPolicy is Retain: the old resource and its data are kept but orphaned.")
    assert "Deleting pipeline" not in kept
    changed = _pipeline()
    changed["Properties"]["PipelineDefinition"] = {"PipelineDefinitionBody": '{"Version": "2020-12-01"}'}
    assert _at_risk(tmp_path / "updated", {"ChurnPipeline": _pipeline()}, {"ChurnPipeline": changed}) == []
