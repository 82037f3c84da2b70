"""The template diff names a change of what a deployed model answers (docs/add-your-own-model.md, Changing a deployed
model): its target, problem type, classes or features. In the templates such a change is only the training
pipeline's model-spec asset ("asset changed"); the call-out reads each side's spec from its assembly."""

from __future__ import annotations

import copy
import hashlib
import json

from mlops_loop.tools.template_diff import CATEGORY_CONTRACT, compare_assemblies
from tests.support.assemblies import template, write_assembly

TICKETS = {
    "name": "tickets", "record_identifier": "ticket_id", "event_time": "event_time", "labels": ["queue", "escalated"],
    "columns": {
        "ticket_id": {"type": "string", "nullable": False}, "event_time": {"type": "timestamp", "nullable": False},
        "channel": {"type": "string", "nullable": False, "allowed": ["email", "chat", "phone"]},
        "length": {"type": "integer", "min": 0},
        "attachments": {"type": "integer", "min": 0},
        "priority": {"type": "string", "nullable": False, "allowed": ["low", "high"]},
        "language": {"type": "string", "allowed": ["en", "fr"]},
        "queue": {"type": "string", "allowed": ["first-line", "specialist", "escalation"]},
        "escalated": {"type": "integer", "min": 0, "max": 1},
    },
    "features": {"channel": "channel", "log_length": "log1p(length)", "capped_length": "clip(length, 0, 5000)",
                 "language": "language", "attachments": "attachments", "priority": "priority"},
}
SPEC = {"name": "routing", "dataset": TICKETS, "target": "queue", "problem_type": "multiclass_classification",
        "features": ["channel", "log_length"], "sensitive_attribute": "language"}
ADVICE = (
    " Prepare refuses the frozen test set made for the old declaration: delete it after this deploy, before the next "
    "run (aws s3 rm --recursive s3://<artifacts bucket>/pipelines/routing/frozen-test/). The serving champion is not "
    "compared and the version is registered PendingManualApproval; until it serves, the drift monitor reads the "
    "serving version's traffic with the new declaration. Approve it once its callers can read it, or serve the change "
    "under a new model name (docs/add-your-own-model.md, Changing a deployed model)")


def _pipeline(spec: dict, root) -> dict:
    """A training pipeline whose steps read ``spec`` as the app's do: a model-spec asset (``asset.<sha256>.json`` in the
    assembly) named in the definition."""
    body = json.dumps(spec, sort_keys=True)
    digest = hashlib.sha256(body.encode()).hexdigest()
    (root / f"asset.{digest}.json").write_text(body)
    definition = {"Steps": [{"Name": "Prepare", "Arguments": {"AppSpecification": {"ContainerArguments": [
        "--model-spec", f"/opt/ml/processing/input/model_spec/{digest}.json"]}}}]}
    return {"Type": "AWS::SageMaker::Pipeline", "Properties": {
        "PipelineName": "mlops-loop-dev-routing", "RoleArn": "arn:aws:iam::111111111111:role/pipeline",
        "PipelineDefinition": {"PipelineDefinitionBody": json.dumps(definition)}}}


def _contract_callouts(tmp_path, before: dict, after: dict) -> list[str]:
    def assembly(name: str, spec: dict):
        root = tmp_path / name
        root.mkdir()
        return write_assembly(root, {"dev": {"Training": template({"RoutingPipeline": _pipeline(spec, root)})}})

    diff = compare_assemblies(assembly("base", before), assembly("head", after))
    return [c.message for c in diff.callouts_for("dev") if c.category == CATEGORY_CONTRACT and c.logical_id == "RoutingPipeline"]


def test_a_class_added_to_a_deployed_models_target_is_called_out_with_what_to_do(tmp_path):
    after = copy.deepcopy(SPEC)
    after["dataset"]["columns"]["queue"]["allowed"].append("billing")
    assert _contract_callouts(tmp_path, SPEC, after) == [
        "modified (asset changed): model routing: classes first-line, specialist, "
        "escalation -> first-line, specialist, escalation, billing: its next version answers with other classes."
        + ADVICE]


def test_another_target_and_another_problem_type_are_called_out(tmp_path):
    after = {**SPEC, "target": "escalated", "problem_type": "binary_classification"}
    assert _contract_callouts(tmp_path, SPEC, after) == [
        "modified (asset changed): model routing: target queue -> escalated; problem type "
        "multiclass_classification -> binary_classification: its next version predicts another target, in another "
        "shape." + ADVICE + ". The label files the drift monitor joins (s3://<inference bucket>/labels/routing/: "
        "inference_id, label, label_time) do not name the target: for requests the new version answers, send labels of "
        "escalated, or its quality is judged against queue"]


def test_a_changed_feature_list_is_called_out_with_the_callers_it_moves(tmp_path):
    after = {**SPEC, "features": ["channel", "capped_length"]}
    assert _contract_callouts(tmp_path, SPEC, after) == [
        "modified (asset changed): model routing: features: drops log_length; adds "
        "capped_length. Prepare refuses the frozen test set while it lacks an added feature: delete it after this "
        "deploy, before the next run (aws s3 rm --recursive s3://<artifacts bucket>/pipelines/routing/frozen-test/). "
        "The next version is registered PendingManualApproval: once approved, CSV and list requests are read in the "
        "new feature order, and a precomputed record of the old list is refused (400). Move those callers to raw "
        "records, or to records holding the features of both lists, before approving it"]


def test_a_spec_change_that_keeps_the_contract_has_no_contract_callout(tmp_path):
    after = {**SPEC, "description": "Routes tickets", "primary_metric": "macro_f1"}
    assert _contract_callouts(tmp_path, SPEC, after) == []


def test_a_feature_read_from_a_new_raw_field_names_the_raw_callers_it_scores_without_it(tmp_path):
    after = {**SPEC, "features": ["channel", "log_length", "attachments", "priority"]}
    assert _contract_callouts(tmp_path, SPEC, after) == [
        "modified (asset changed): model routing: features: adds attachments, priority. Prepare refuses the frozen "
        "test set while it lacks an added feature: delete it after this deploy, before the next run (aws s3 rm "
        "--recursive s3://<artifacts bucket>/pipelines/routing/frozen-test/). The next version is registered "
        "PendingManualApproval: once approved, CSV and list requests are read in the new feature order, and a "
        "precomputed record of the old list is refused (400). Raw records without attachments are scored with the "
        "features it feeds missing (200: serving cannot tell a field not sent from one left out), and raw records "
        "without priority are refused (400). Move those callers to raw records with the new fields, or to records "
        "holding the features of both lists, before approving it"]


def test_a_model_that_only_stops_using_a_feature_is_not_said_to_refuse_old_list_records(tmp_path):
    # A precomputed record of the old list holds every feature of the new one: serving reads it and scores it (200).
    # Only positional callers move; nothing else to delete or to move.
    before = {**SPEC, "features": ["channel", "log_length", "capped_length"]}
    after = {**SPEC, "features": ["channel", "capped_length"]}
    assert _contract_callouts(tmp_path, before, after) == [
        "modified (asset changed): model routing: features: drops log_length. The next version is registered "
        "PendingManualApproval: once approved, CSV and list requests are read in the new feature order; a precomputed "
        "record of the old list is still scored (it holds every feature of the new list). Move CSV and list callers "
        "to the new order, or to JSON records, before approving it"]


def test_an_old_list_of_column_features_is_read_as_raw_fields_by_the_new_version(tmp_path):
    # Every old feature is a column as it is: the old list's record is a raw record to the new version, which computes
    # the added feature from the fields it holds (here none: the added feature reads 'length').
    before = {**SPEC, "features": ["channel", "attachments"]}
    after = {**SPEC, "features": ["channel", "attachments", "log_length"]}
    assert _contract_callouts(tmp_path, before, after) == [
        "modified (asset changed): model routing: features: adds log_length. Prepare refuses the frozen test set while "
        "it lacks an added feature: delete it after this deploy, before the next run (aws s3 rm --recursive "
        "s3://<artifacts bucket>/pipelines/routing/frozen-test/). The next version is registered "
        "PendingManualApproval: once approved, CSV and list requests are read in the new feature order, and a "
        "precomputed record of the old list is read as raw fields (its features are columns as they are). Raw records "
        "without length are scored with the features it feeds missing (200: serving cannot tell a field not sent from "
        "one left out). Move those callers to raw records with the new fields, or to records holding the features of "
        "both lists, before approving it"]


def test_a_feature_the_frozen_test_set_already_holds_as_a_slice_is_not_said_to_need_a_new_set(tmp_path):
    # Prepare's frozen test set holds the model's frame features (inputs, sensitive attribute, slices): a slice that
    # becomes an input is in it already, so the set is reused and nothing is to be deleted.
    before = {**SPEC, "slices": ["priority"]}
    after = {**SPEC, "features": ["channel", "log_length", "priority"], "slices": ["priority"]}
    assert _contract_callouts(tmp_path, before, after) == [
        "modified (asset changed): model routing: features: adds priority. The next version is registered "
        "PendingManualApproval: once approved, CSV and list requests are read in the new feature order, and a "
        "precomputed record of the old list is refused (400). Raw records without priority are refused (400). Move "
        "those callers to raw records with the new fields, or to records holding the features of both lists, before "
        "approving it"]


def test_a_feature_its_raw_callers_old_fields_still_compute_is_not_said_to_be_scored_missing(tmp_path):
    # coalesce(attachments, length): a raw record of the old fields (length) computes it without the new column.
    after = copy.deepcopy({**SPEC, "features": ["channel", "log_length", "size"]})
    after["dataset"]["features"]["size"] = "coalesce(attachments, length)"
    before = copy.deepcopy(SPEC)
    before["dataset"]["features"]["size"] = "coalesce(attachments, length)"
    assert _contract_callouts(tmp_path, before, after) == [
        "modified (asset changed): model routing: features: adds size. Prepare refuses the frozen test set while it "
        "lacks an added feature: delete it after this deploy, before the next run (aws s3 rm --recursive "
        "s3://<artifacts bucket>/pipelines/routing/frozen-test/). The next version is registered "
        "PendingManualApproval: once approved, CSV and list requests are read in the new feature order, and a "
        "precomputed record of the old list is refused (400). Move those callers to raw records with the new fields, "
        "or to records holding the features of both lists, before approving it"]
