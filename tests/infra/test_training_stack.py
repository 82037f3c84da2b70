"""The Training stack: one SageMaker Pipeline per model, wired to the registry with separation of duties."""

from __future__ import annotations

import json

import pytest

from tests.support.templates import described_policies, flatten, policy_statements
from tests.support.paths import live_project

ENVS = ("dev", "staging", "prod")


# Physical names start with the configured project (a user renames it first).
PROJECT = live_project()


def pipelines(synthesized, env: str) -> dict[str, dict]:
    out = {}
    for resource in synthesized.resources(env, "Training", "AWS::SageMaker::Pipeline").values():
        props = resource["Properties"]
        body = json.loads(flatten(props["PipelineDefinition"]["PipelineDefinitionBody"]))
        out[props["PipelineName"]] = {"props": props, "definition": body}
    return out


def steps(definition: dict) -> dict[str, dict]:
    found = {}

    def walk(step_list):
        for step in step_list:
            found[step["Name"]] = step
            if step["Type"] == "Condition":
                walk(step["Arguments"].get("IfSteps", []))
                walk(step["Arguments"].get("ElseSteps", []))

    walk(definition["Steps"])
    return found


@pytest.mark.parametrize("env", ENVS)
def test_one_training_pipeline_per_model(synthesized, env):
    names = set(pipelines(synthesized, env))
    assert names == {f"{PROJECT}-{env}-{m}-training" for m in synthesized.config.environments[env].models}


def test_pipeline_steps_form_the_governed_chain(synthesized):
    definition = pipelines(synthesized, "prod")[f"{PROJECT}-prod-churn-training"]["definition"]
    found = steps(definition)
    assert {"Prepare", "Train", "Evaluate", "CheckGate", "Baseline", "Register", "GateFailed"} <= set(found)
    gate = found["CheckGate"]
    assert gate["Type"] == "Condition"
    (condition,) = gate["Arguments"]["Conditions"]
    assert condition["Type"] == "Equals"
    assert condition["LeftValue"]["Std:JsonGet"]["Path"] == "gate.passed"
    assert {s["Name"] for s in gate["Arguments"]["ElseSteps"]} == {"GateFailed"}


def test_gate_thresholds_and_approval_default_come_from_each_environment(synthesized):
    for env in ENVS:
        gate = synthesized.config.environments[env].gate
        auto = synthesized.config.environments[env].training.auto_approve
        definition = pipelines(synthesized, env)[f"{PROJECT}-{env}-churn-training"]["definition"]
        params = {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}
        assert params["MinAuc"] == gate.min_auc
        assert params["ChallengerMargin"] == gate.challenger_margin
        assert params["MaxDemographicParityDifference"] == gate.max_demographic_parity_difference
        assert params["ModelApprovalStatus"] == ("Approved" if auto else "PendingManualApproval")
        assert params["TriggerReason"] == "manual"
    assert synthesized.config.environments["prod"].training.auto_approve is False


def test_training_runs_on_spot_with_checkpoints_in_every_environment_that_asks(synthesized):
    for env in ENVS:
        training = synthesized.config.environments[env].training
        definition = pipelines(synthesized, env)[f"{PROJECT}-{env}-credit-risk-training"]["definition"]
        train = steps(definition)["Train"]["Arguments"]
        assert train.get("EnableManagedSpotTraining", False) == training.use_spot
        if training.use_spot:
            assert train["CheckpointConfig"]["LocalPath"] == "/opt/ml/checkpoints"
            assert '"pipelines", "credit-risk", "work", "checkpoints"' in json.dumps(train["CheckpointConfig"]["S3Uri"])
            assert train["StoppingCondition"]["MaxWaitTimeInSeconds"] >= train["StoppingCondition"]["MaxRuntimeInSeconds"]


def test_definition_is_well_under_the_create_pipeline_limit(synthesized):
    for env in ENVS:
        for pipeline in pipelines(synthesized, env).values():
            assert len(json.dumps(pipeline["definition"])) < 100_000


def _statements(synthesized, env: str, model: str) -> dict[str, dict]:
    policies = synthesized.resources(env, "Training", "AWS::IAM::ManagedPolicy")
    parts = described_policies(policies, f"{PROJECT}-{env}-{model}-training pipeline")
    if not parts:
        raise KeyError(model)
    return policy_statements(policies, parts)


def _allowed_actions(statements: dict) -> set[str]:
    return {
        a
        for s in statements.values()
        if s["Effect"] == "Allow"
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }


@pytest.mark.parametrize("env", ENVS)
def test_the_trainer_can_register_but_never_approve(synthesized, env):
    statements = _statements(synthesized, env, "churn")
    assert "sagemaker:CreateModelPackage" in _allowed_actions(statements)
    assert "sagemaker:UpdateModelPackage" not in _allowed_actions(statements)
    deny = statements["TrainerCannotApprove"]
    assert deny["Effect"] == "Deny" and deny["Action"] == "sagemaker:UpdateModelPackage" and deny["Resource"] == "*"
    register = statements["RegisterChurn"]
    account = synthesized.config.environments[env].account
    assert set(register["Resource"]) == {
        f"arn:aws:sagemaker:eu-west-1:{account}:model-package/{PROJECT}-{env}-churn/*",
        f"arn:aws:sagemaker:eu-west-1:{account}:model-package-group/{PROJECT}-{env}-churn",
    }


def test_outside_auto_approve_environments_versions_can_only_be_registered_pending(synthesized):
    prod = _statements(synthesized, "prod", "churn")
    assert prod["RegisterOnlyAsPendingChurn"] == {
        "Sid": "RegisterOnlyAsPendingChurn",
        "Effect": "Deny",
        "Action": "sagemaker:CreateModelPackage",
        "Resource": "*",
        "Condition": {"StringNotEqualsIfExists": {"sagemaker:ModelApprovalStatus": "PendingManualApproval"}},
    }
    assert "RegisterOnlyAsPendingChurn" not in _statements(synthesized, "dev", "churn")  # dev auto-approves


def test_pipeline_role_reads_only_its_datasets_and_owns_only_its_artifacts_prefix(synthesized):
    statements = _statements(synthesized, "prod", "credit-risk")
    assert statements["ReadFeatures"]["Resource"].endswith("-features-333333333333-eu-west-1/snapshots/credit_risk/*")
    assert statements["ReadLabels"]["Resource"].endswith("-curated-333333333333-eu-west-1/credit_risk/*")
    assert statements["Artifacts"]["Resource"].endswith("-artifacts-333333333333-eu-west-1/pipelines/credit-risk/*")
    assert "s3:PutObject" not in statements["ReadFeatures"]["Action"]
    assert statements["PassOwnRole"]["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    assert "glue:" not in json.dumps(statements) and "sagemaker:PutRecord" not in json.dumps(statements)


def test_model_spec_travels_as_an_asset_with_the_models_config(synthesized):
    config = synthesized.config.models["churn"]
    # Single-file assets are staged as asset.<hash>.<ext> in the cloud assembly.
    specs = [json.loads(p.read_text()) for p in synthesized.outdir.glob("asset.*.json")]
    churn = [s for s in specs if s["name"] == "churn"]
    assert churn and churn[0] == {
        "name": "churn",
        "dataset": config.catalog_dataset.to_declaration(),  # the whole declaration: the jobs need nothing else
        "target": config.target,
        "features": list(config.features),
        "sensitive_attribute": config.sensitive_attribute,
        "slices": list(config.slices),
        "decision": {"policy": "fixed"},  # the default: a fixed threshold of 0.5
        "class_weight": "none",
        "description": config.description,
    }


def test_hyperparameter_tuning_is_switched_per_environment(config, tmp_path):
    """GIVEN dev configured with training.hyperparameter_tuning WHEN its stage is synthesized
    THEN its pipelines tune (Automatic Model Tuning) instead of a single training job."""
    
    from mlops_loop.app_builder import build_app, new_app

    dev = config.environments["dev"]
    tuned = config.model_copy(
        update={
            "environments": {
                # Networks are not tuned (the config refuses it; test_framework_config.py): the trees only.
                "dev": dev.model_copy(update={
                    "models": tuple(m for m in dev.models if config.models[m].framework == "xgboost"),
                    "training": dev.training.model_copy(update={"hyperparameter_tuning": True}),
                })
            }
        }
    )
    app = new_app(str(tmp_path))
    stages = build_app(app, tuned, environments=["dev"])
    body = stages["dev"].training.pipelines["churn"].definition
    names = {s["Name"] for s in json.loads(body)["Steps"]}
    assert "Tune" in names and "Train" not in names
    assert dev.training.hyperparameter_tuning is False  # the sample config trains once (see the tests above)


def test_build_app_asks_for_every_pipelines_definition_before_synth(config, tmp_path, monkeypatch):
    """GIVEN the SDK helper generating definitions while the stages are built (app.py on a cold cache), so no
    construct checks its own WHEN an environment is built THEN ``build_app`` has every pipeline's definition
    checked against the region's offers before it returns (a refusal then fails there, not inside synth)."""
    from mlops_loop.app_builder import build_app, new_app
    from mlops_loop.constructs import training_pipeline

    checked = []
    monkeypatch.setattr(training_pipeline, "_check_offered", lambda name, definition, region: checked.append(name))
    monkeypatch.setattr(training_pipeline.sdk_helper, "running", lambda: True)
    name = next(iter(config.environments))

    stages = build_app(new_app(str(tmp_path)), config, environments=[name])

    pipelines = stages[name].training.pipelines.values()
    assert len(pipelines) == len(config.environments[name].models) >= 1
    assert sorted(checked) == sorted(p.pipeline.pipeline_name for p in pipelines)
