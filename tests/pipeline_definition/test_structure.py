"""Structure of the generated pipeline: steps, data flow, parameters, jobs, registration."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import sys

import pytest

from pipeline_code.core.contract import APPROVAL_STATUS_PATH, REGISTERED_PROPERTIES
from pipeline_code.core.integrity import SEALED_KEY_PATTERN, container_digest
from mlops_loop.training import names as d
from pipeline_code.sagemaker_entry import ENTRY_CHECK

from tests.support import pipeline_specs as specs
from tests.support.pipeline_graph import nodes, references, referenced_steps, walk

JOB_STEPS = (d.STEP_PREPARE, d.STEP_TRAIN, d.STEP_EVALUATE, d.STEP_BASELINE)
PROCESSING_STEPS = (d.STEP_PREPARE, d.STEP_EVALUATE, d.STEP_BASELINE)


def _outputs(step):
    return {o["OutputName"]: o for o in step["Arguments"]["ProcessingOutputConfig"]["Outputs"]}


def _inputs(step):
    return {i["InputName"]: i for i in step["Arguments"]["ProcessingInputs"]}


def _channels(step):
    return {c["ChannelName"]: c for c in step["Arguments"]["InputDataConfig"]}


def _prop(step_name, output, kind="ProcessingOutputConfig"):
    return {"Get": f"Steps.{step_name}.{kind}.Outputs['{output}'].S3Output.S3Uri"}


# --------------------------------------------------------------------------------------
# The step graph
# --------------------------------------------------------------------------------------
def test_top_level_steps_and_types(built):
    top = [(s["Name"], s["Type"]) for s in built.doc["Steps"]]
    assert top == [
        ("Prepare", "Processing"),
        ("Train", "Training"),
        ("Evaluate", "Processing"),
        ("CheckGate", "Condition"),
    ]


def test_condition_branches(built):
    gate = built.steps[d.STEP_GATE]["Arguments"]
    if_steps = [(s["Name"], s["Type"]) for s in gate["IfSteps"]]
    assert if_steps == [("Baseline", "Processing"), ("Register", "RegisterModel"), ("ModelCard", "Processing")]
    assert [(s["Name"], s["Type"]) for s in gate["ElseSteps"]] == [("GateFailed", "Fail")]


def test_data_dependencies_form_the_expected_graph(built):
    """prepare -> train -> evaluate -> condition -> [baseline -> register -> model card] | fail, by data flow."""
    steps = built.steps
    deps = {name: referenced_steps(step) for name, step in steps.items() if name != d.STEP_GATE}
    deps[d.STEP_GATE] = {r.split(".")[1] for r in references(steps[d.STEP_GATE]["Arguments"]["Conditions"])}
    assert deps == {
        "Prepare": set(),
        "Train": {"Prepare"},
        "Evaluate": {"Train", "Prepare"},
        "CheckGate": {"Evaluate"},
        "Baseline": {"Train", "Prepare"},
        # The sealed artefact the gate judged, not the training output.
        # Prepare: the package records where its splits are (its train and validation outputs) and their digests.
        "Register": {"Evaluate", "Baseline", "Prepare"},
        "ModelCard": {"Evaluate", "Register"},
        "GateFailed": {"Evaluate"},
    }


def test_gate_reads_gate_passed_from_the_registered_property_file(built):
    evaluate = built.steps[d.STEP_EVALUATE]
    assert evaluate["PropertyFiles"] == [
        {"PropertyFileName": "EvaluationReport", "OutputName": "evaluation", "FilePath": "evaluation.json"},
        {"PropertyFileName": "EvaluationDigests", "OutputName": "evaluation", "FilePath": "digests.json"},
    ]
    assert "evaluation" in _outputs(evaluate)
    (condition,) = built.steps[d.STEP_GATE]["Arguments"]["Conditions"]
    assert condition == {
        "Type": "Equals",
        "LeftValue": {
            "Std:JsonGet": {
                "PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"},
                "Path": "gate.passed",
            }
        },
        "RightValue": True,
    }


def test_fail_step_points_at_the_evaluation_report(built):
    message = built.steps[d.STEP_FAIL]["Arguments"]["ErrorMessage"]["Std:Join"]
    assert message["Values"][1] == _prop("Evaluate", "evaluation")
    assert message["Values"][2] == "/evaluation.json"
    assert "gate.reasons" in message["Values"][0]


# --------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------
def test_parameters_and_defaults(built, spec):
    params = built.parameters
    assert list(params) == list(d.PARAMETER_NAMES)
    defaults = {name: (p["Type"], p["DefaultValue"]) for name, p in params.items()}
    assert defaults == {
        "InputFeatures": ("String", spec.feature_data_s3_uri),
        "InputLabels": ("String", spec.labels_s3_uri),
        "ProcessingInstanceType": ("String", "ml.m5.xlarge"),
        "TrainingInstanceType": ("String", "ml.m5.xlarge"),
        "TrainingInstanceCount": ("Integer", 1),
        "MinAuc": ("Float", 0.7),
        "ChallengerMargin": ("Float", 0.005),
        "MaxSliceRegression": ("Float", 0.02),
        "MaxDemographicParityDifference": ("Float", 0.1),
        "MinDisparateImpact": ("Float", 0.8),
        "MaxCalibrationError": ("Float", 1.0),
        "MaxClassRecallDrop": ("Float", 0.02),
        "ModelApprovalStatus": ("String", "PendingManualApproval"),
        "TriggerReason": ("String", "manual"),
    }


def test_manual_approval_cannot_be_overridden_to_self_approve(built):
    assert built.parameters["ModelApprovalStatus"]["EnumValues"] == ["PendingManualApproval"]


def test_every_parameter_is_used(built):
    used = {ref.split(".", 1)[1] for ref in references(built.doc["Steps"]) if ref.startswith("Parameters.")}
    assert used == set(d.PARAMETER_NAMES)


def test_gate_thresholds_reach_evaluate_as_strings(built):
    args = built.steps[d.STEP_EVALUATE]["Arguments"]["AppSpecification"]["ContainerArguments"]
    for flag, param in (
        ("--min-auc", "MinAuc"),
        ("--challenger-margin", "ChallengerMargin"),
        ("--max-slice-regression", "MaxSliceRegression"),
        ("--max-demographic-parity-difference", "MaxDemographicParityDifference"),
        ("--min-disparate-impact", "MinDisparateImpact"),
    ):
        value = args[args.index(flag) + 1]
        assert value == {"Std:Join": {"On": "", "Values": [{"Get": f"Parameters.{param}"}]}}, flag


def test_instance_parameters_drive_the_jobs(built):
    for name in PROCESSING_STEPS:
        cluster = built.steps[name]["Arguments"]["ProcessingResources"]["ClusterConfig"]
        assert cluster["InstanceType"] == {"Get": "Parameters.ProcessingInstanceType"}
    resources = built.steps[d.STEP_TRAIN]["Arguments"]["ResourceConfig"]
    assert resources["InstanceType"] == {"Get": "Parameters.TrainingInstanceType"}
    assert resources["InstanceCount"] == {"Get": "Parameters.TrainingInstanceCount"}


# --------------------------------------------------------------------------------------
# Code delivery: stock image, entry script + library zip as inputs, no SDK packaging
# --------------------------------------------------------------------------------------
def test_every_job_runs_the_stock_xgboost_image(built):
    images = {
        built.steps[n]["Arguments"]["AppSpecification"]["ImageUri"] for n in PROCESSING_STEPS
    } | {built.steps[d.STEP_TRAIN]["Arguments"]["AlgorithmSpecification"]["TrainingImage"]}
    container = built.steps[d.STEP_REGISTER]["Arguments"]["InferenceSpecification"]["Containers"][0]
    assert images == {container["Image"]} == {f"141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:{d.XGBOOST_VERSION}"}


@pytest.mark.parametrize(
    "step, module, flags",
    [
        (
            "Prepare",
            "pipeline_code.training.prepare",
            {
                "--features-dir": "/opt/ml/processing/input/features",
                "--labels-dir": "/opt/ml/processing/input/labels",
                "--frozen-test-dir": specs.base_spec().frozen_test_s3_uri,
                # A stale frozen test set is replaced by the latest rows (training.test_set_refreeze's default).
                "--test-set-refreeze": "when_stale",
                "--output-dir": "/opt/ml/processing/output",
                # The gate's: a test set it could never judge fairness on is not frozen.
                "--min-group-rows": str(specs.base_spec().gate.min_group_rows),
            },
        ),
        (
            "Evaluate",
            "pipeline_code.training.evaluate",
            {
                "--model-dir": "/opt/ml/processing/input/model",
                "--test-dir": "/opt/ml/processing/input/test",
                "--model-package-group": "mlops-loop-dev-churn",
                "--region": "eu-west-1",
                "--output-dir": "/opt/ml/processing/output/evaluation",
                # The configured gate, which the run's parameters may not loosen.
                "--gate-policy": specs.base_spec().gate.policy_arg(),
            },
        ),
        (
            "Baseline",
            "pipeline_code.training.baseline",
            {
                "--model-dir": "/opt/ml/processing/input/model",
                "--train-dir": "/opt/ml/processing/input/train",
                "--validation-dir": "/opt/ml/processing/input/validation",
                "--output-dir": "/opt/ml/processing/output/baseline",
            },
        ),
    ],
)
def test_processing_code_delivery(built, step, module, flags):
    args = built.steps[step]["Arguments"]
    app = args["AppSpecification"]
    entry_file = specs.ENTRY_URI.rsplit("/", 1)[1]
    # The entry script runs only if its bytes are the ones synth hashed (the check is inline, not in the bucket).
    assert app["ContainerEntrypoint"] == ["python3", "-c", ENTRY_CHECK, f"/opt/ml/processing/input/entry/{entry_file}",
                                          specs.ENTRY_SHA256]
    arguments = app["ContainerArguments"]
    assert arguments[0] == module
    model_spec_file = specs.MODEL_SPEC_URI.rsplit("/", 1)[1]
    assert arguments[arguments.index("--model-spec") + 1] == f"/opt/ml/processing/input/model_spec/{model_spec_file}"
    for flag, value in flags.items():
        assert arguments[arguments.index(flag) + 1] == value, flag
    inputs = _inputs(built.steps[step])
    code = {k: (v["S3Input"]["S3Uri"], v["S3Input"]["LocalPath"]) for k, v in inputs.items()}
    assert {k: v for k, v in code.items() if k in ("entry", "lib", "model_spec")} == {
        "entry": (specs.ENTRY_URI, "/opt/ml/processing/input/entry"),
        "lib": (specs.LIBRARY_URI, "/opt/ml/processing/input/lib"),
        "model_spec": (specs.MODEL_SPEC_URI, "/opt/ml/processing/input/model_spec"),
    }
    # The entry script finds the zip in the "lib" input and checks it against the synthesized code's digest.
    assert args["Environment"] == {"MLOPS_LOOP_CODE_SHA256": specs.LIBRARY_SHA256}


def test_training_code_delivery(built):
    args = built.steps[d.STEP_TRAIN]["Arguments"]
    algorithm = args["AlgorithmSpecification"]
    entry_file = specs.ENTRY_URI.rsplit("/", 1)[1]
    model_spec_file = specs.MODEL_SPEC_URI.rsplit("/", 1)[1]
    assert algorithm["ContainerEntrypoint"] == ["python3", "-c", ENTRY_CHECK, f"/opt/ml/input/data/entry/{entry_file}",
                                                specs.ENTRY_SHA256]
    assert algorithm["ContainerArguments"] == [
        "pipeline_code.training.train",
        "--model-spec", f"/opt/ml/input/data/model_spec/{model_spec_file}",
        "--train-dir", "/opt/ml/input/data/train",
        "--validation-dir", "/opt/ml/input/data/validation",
        "--model-dir", "/opt/ml/model",
        "--checkpoint-dir", "/opt/ml/checkpoints",
        "--num_round", "300", "--eta", "0.1", "--max_depth", "5", "--min_child_weight", "1",
        "--subsample", "0.8", "--early_stopping_rounds", "20",
    ]  # fmt: skip
    channels = _channels(built.steps[d.STEP_TRAIN])
    assert {k: c["DataSource"]["S3DataSource"]["S3Uri"] for k, c in channels.items()} == {
        "train": _prop("Prepare", "train"),
        "validation": _prop("Prepare", "validation"),
        "entry": specs.ENTRY_URI,
        "lib": specs.LIBRARY_URI,
        "model_spec": specs.MODEL_SPEC_URI,
    }
    assert args["Environment"] == {"MLOPS_LOOP_CODE_SHA256": specs.LIBRARY_SHA256}
    # Also recorded on the job (lineage, step cache key).
    assert args["HyperParameters"] == dict(d.DEFAULT_HYPERPARAMETERS)


def _jobs_running_the_entry(doc):
    """Every job of a definition that is given the job-code zip: (its inputs' names, its request), processing,
    training and the tuning job's training-job definition alike."""
    for node in nodes(doc):
        if isinstance(node, dict):
            inputs = node.get("ProcessingInputs") or node.get("InputDataConfig") or []
            names = [i.get("InputName", i.get("ChannelName")) for i in inputs if isinstance(i, dict)]
            if "lib" in names:
                yield names, node


@pytest.mark.parametrize("tuning", [False, True], ids=["train", "tune"])
def test_every_job_given_the_code_zip_is_told_the_digest_to_verify_it_against(built, built_tuning, spec, tuning):
    """GIVEN a definition WHEN a job mounts the job-code zip THEN its environment names the digest of the zip's files
    that synth computed (the entry script refuses another zip), whatever else it sets."""
    jobs = list(_jobs_running_the_entry((built_tuning if tuning else built).doc))
    assert len(jobs) >= 4
    for path, job in jobs:
        assert job.get("Environment", {}).get("MLOPS_LOOP_CODE_SHA256") == spec.code_sha256, path


def test_no_sdk_managed_code_packaging(built):
    """No sourcedir.tar.gz, no sm_drivers/code channel, no sagemaker_* script-mode hyperparameters."""
    text = built.text
    for marker in ("sourcedir", "sm_drivers", "tar.gz\"", "sagemaker_submit_directory", "sagemaker_program", "/code"):
        assert marker not in text, marker
    assert set(_channels(built.steps[d.STEP_TRAIN])) == {"train", "validation", "entry", "lib", "model_spec"}


def test_container_arguments_respect_the_api_limit(built):
    for step in built.steps.values():
        for node in nodes(step):
            if isinstance(node, dict) and "ContainerArguments" in node:
                for arg in node["ContainerArguments"]:
                    assert not isinstance(arg, str) or len(arg) <= d.MAX_CONTAINER_ARGUMENT


# --------------------------------------------------------------------------------------
# Data flow between steps (property references)
# --------------------------------------------------------------------------------------
def test_prepare_inputs_and_outputs(built, spec):
    prepare = built.steps[d.STEP_PREPARE]
    inputs = _inputs(prepare)
    assert inputs["features"]["S3Input"]["S3Uri"] == {"Get": "Parameters.InputFeatures"}
    assert inputs["labels"]["S3Input"]["S3Uri"] == {"Get": "Parameters.InputLabels"}
    # The frozen test set is read by the job through the S3 API, not mounted: SageMaker fails a
    # job whose input prefix is empty, which it is until the first run freezes a test set.
    assert "frozen_test" not in inputs
    assert prepare["Arguments"]["AppSpecification"]["ContainerArguments"][
        prepare["Arguments"]["AppSpecification"]["ContainerArguments"].index("--frozen-test-dir") + 1
    ] == spec.frozen_test_s3_uri
    assert prepare["Arguments"]["NetworkConfig"]["EnableNetworkIsolation"] is False
    outputs = _outputs(prepare)
    assert list(outputs) == ["train", "validation", "test", "summary"]
    for name in ("train", "validation", "summary"):
        assert outputs[name]["S3Output"]["LocalPath"] == f"/opt/ml/processing/output/{name}"
        join = outputs[name]["S3Output"]["S3Uri"]["Std:Join"]
        # Working data: under the model's work/ prefix, which the artifacts bucket expires.
        assert join["Values"] == ["s3:/", specs.ARTIFACTS_BUCKET, "pipelines", "churn", "work",
                                  {"Get": "Execution.PipelineExecutionId"}, "prepare", name]  # fmt: skip
    # The test split is the frozen test set: written back to the prefix it is read from.
    assert outputs["test"]["S3Output"] == {
        "S3Uri": spec.frozen_test_s3_uri,
        "LocalPath": "/opt/ml/processing/output/test",
        "S3UploadMode": "EndOfJob",
    }


def test_prepare_is_told_the_configured_refreeze_rule():
    """GIVEN test_set_refreeze never (the config's training.test_set_refreeze) THEN Prepare's argument says so; the
    default re-freezes a stale set (above)."""
    from mlops_loop.training import build_pipeline_definition, step_graph

    prepare = step_graph(build_pipeline_definition(specs.base_spec(test_set_refreeze="never")))[d.STEP_PREPARE]
    arguments = prepare["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--test-set-refreeze") + 1] == "never"


def test_evaluate_reads_the_trained_model_and_the_test_set(built):
    inputs = _inputs(built.steps[d.STEP_EVALUATE])
    assert inputs["model"]["S3Input"]["S3Uri"] == {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}
    assert inputs["test"]["S3Input"]["S3Uri"] == _prop("Prepare", "test")


def test_baseline_reads_the_trained_model_the_training_set_and_the_validation_set(built):
    # The features' baselines are of the training rows; the predictions' of the validation rows (out of sample).
    inputs = _inputs(built.steps[d.STEP_BASELINE])
    assert inputs["model"]["S3Input"]["S3Uri"] == {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}
    assert inputs["train"]["S3Input"]["S3Uri"] == _prop("Prepare", "train")
    assert inputs["validation"]["S3Input"]["S3Uri"] == _prop("Prepare", "validation")
    assert inputs["validation"]["S3Input"]["LocalPath"] == "/opt/ml/processing/input/validation"


# --------------------------------------------------------------------------------------
# Training job: spot, checkpoints, metrics, encryption
# --------------------------------------------------------------------------------------
def test_managed_spot_with_checkpoints(built, spec):
    args = built.steps[d.STEP_TRAIN]["Arguments"]
    assert args["EnableManagedSpotTraining"] is True
    stopping = args["StoppingCondition"]
    assert stopping["MaxRuntimeInSeconds"] == spec.max_runtime_seconds
    assert stopping["MaxWaitTimeInSeconds"] >= stopping["MaxRuntimeInSeconds"]
    checkpoint = args["CheckpointConfig"]
    assert checkpoint["LocalPath"] == "/opt/ml/checkpoints"
    values = checkpoint["S3Uri"]["Std:Join"]["Values"]
    # Keyed by the Prepare job that produced the data (cache-stable) and a config digest.
    assert values[:6] == ["s3:/", specs.ARTIFACTS_BUCKET, "pipelines", "churn", "work", "checkpoints"]
    assert values[6] == {"Get": "Steps.Prepare.ProcessingJobName"}
    assert isinstance(values[7], str) and len(values[7]) == 16


def test_on_demand_training_has_no_spot_settings():
    from mlops_loop.training import build_pipeline_definition, step_graph

    train = step_graph(build_pipeline_definition(specs.base_spec(use_spot=False)))[d.STEP_TRAIN]["Arguments"]
    assert "EnableManagedSpotTraining" not in train or train["EnableManagedSpotTraining"] is False
    assert "CheckpointConfig" not in train
    assert "MaxWaitTimeInSeconds" not in train["StoppingCondition"]


def test_training_metric_definitions(built):
    import re

    metrics = built.steps[d.STEP_TRAIN]["Arguments"]["AlgorithmSpecification"]["MetricDefinitions"]
    regex = {m["Name"]: re.compile(m["Regex"]) for m in metrics}
    assert set(regex) == {"validation-auc", "final-validation-auc"}
    # The lines pipeline_code.training.train prints (and XGBoost's own log form).
    assert regex["validation-auc"].search("[7] validation-auc=0.831200; validation-logloss=0.41;").group(1) == "0.831200"
    assert regex["validation-auc"].search("[42]\ttrain-auc:0.91\tvalidation-auc:0.87").group(1) == "0.87"
    assert regex["validation-auc"].search("final_validation_auc=0.85;") is None
    assert regex["final-validation-auc"].search("final_validation_auc=0.851000;").group(1) == "0.851000"


def test_training_output_is_under_the_artifacts_bucket(built, spec):
    output = built.steps[d.STEP_TRAIN]["Arguments"]["OutputDataConfig"]
    assert output["KmsKeyId"] == spec.kms_key_arn
    assert output["S3OutputPath"]["Std:Join"]["Values"] == [
        "s3:/", specs.ARTIFACTS_BUCKET, "pipelines", "churn", "work", {"Get": "Execution.PipelineExecutionId"}, "train"
    ]  # fmt: skip


def test_kms_on_every_job_volume_and_output(built, spec):
    for name in PROCESSING_STEPS:
        args = built.steps[name]["Arguments"]
        assert args["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == spec.kms_key_arn, name
        assert args["ProcessingOutputConfig"]["KmsKeyId"] == spec.kms_key_arn, name
    train = built.steps[d.STEP_TRAIN]["Arguments"]
    assert train["ResourceConfig"]["VolumeKmsKeyId"] == spec.kms_key_arn
    assert train["OutputDataConfig"]["KmsKeyId"] == spec.kms_key_arn


def test_network_isolation_and_traffic_encryption(built):
    network = {n: built.steps[n]["Arguments"]["NetworkConfig"] for n in PROCESSING_STEPS}
    assert all(c["EnableInterContainerTrafficEncryption"] for c in network.values())
    assert network["Baseline"]["EnableNetworkIsolation"] is True
    # Prepare reads the frozen test set and Evaluate looks the champion up in the Model
    # Registry, both through AWS APIs: they need the network.
    assert network["Prepare"]["EnableNetworkIsolation"] is False
    assert network["Evaluate"]["EnableNetworkIsolation"] is False
    train = built.steps[d.STEP_TRAIN]["Arguments"]
    assert train["EnableNetworkIsolation"] is True
    assert train["EnableInterContainerTrafficEncryption"] is True


def test_jobs_are_tagged(built):
    expected = [{"Key": "project", "Value": "mlops-loop"}, {"Key": "model", "Value": "churn"}]
    for name in JOB_STEPS:
        assert built.steps[name]["Arguments"]["Tags"] == expected, name


# --------------------------------------------------------------------------------------
# Caching, retries, experiment tracking
# --------------------------------------------------------------------------------------
def test_caching_of_the_deterministic_job_steps(built):
    for name in (d.STEP_PREPARE, d.STEP_TRAIN, d.STEP_BASELINE):
        assert built.steps[name]["CacheConfig"] == {"Enabled": True, "ExpireAfter": "PT1H"}, name
    assert "CacheConfig" not in built.steps[d.STEP_REGISTER]


def test_evaluation_is_not_cached_by_default(built):
    """Its verdict depends on the registry's current champion, which no cache key captures."""
    assert "CacheConfig" not in built.steps[d.STEP_EVALUATE]


def test_retry_policies(built):
    for name in JOB_STEPS:
        policies = built.steps[name]["RetryPolicies"]
        kinds = {e for p in policies for e in p["ExceptionType"]}
        assert {"Step.SERVICE_FAULT", "Step.THROTTLING", "SageMaker.CAPACITY_ERROR"} <= kinds, name
        assert all(p["MaxAttempts"] <= 5 for p in policies)
    register_kinds = {e for p in built.steps[d.STEP_REGISTER]["RetryPolicies"] for e in p["ExceptionType"]}
    assert register_kinds == {"Step.SERVICE_FAULT", "Step.THROTTLING"}


def test_experiment_tracking(built):
    assert built.doc["PipelineExperimentConfig"] == {
        "ExperimentName": {"Get": "Execution.PipelineName"},
        "TrialName": {"Get": "Execution.PipelineExecutionId"},
    }


# --------------------------------------------------------------------------------------
# Registration
# --------------------------------------------------------------------------------------
def _join_of(source):
    return source["S3Uri"]["Std:Join"]["Values"]


def test_register_into_the_group_with_the_status_the_evaluation_answers_to_the_approval_parameter(built):
    """GIVEN the generated definition THEN the evaluate step gets the execution's ModelApprovalStatus as its
    ``--approval-status``, and the register step registers with the status the evaluation report answers
    (``registration.approval_status``: PendingManualApproval when the callers' contract changes), not the parameter."""
    args = built.steps[d.STEP_REGISTER]["Arguments"]
    assert args["ModelPackageGroupName"] == "mlops-loop-dev-churn"
    assert args["ModelApprovalStatus"] == _sealed(APPROVAL_STATUS_PATH) == _sealed("registration.approval_status")
    arguments = built.steps[d.STEP_EVALUATE]["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--approval-status") + 1] == {"Get": "Parameters.ModelApprovalStatus"}
    (container,) = args["InferenceSpecification"]["Containers"]
    assert container["ModelDataUrl"] == _sealed("artifact.uri")
    # Exactly the configured inference environment (none here): no empty SAGEMAKER_PROGRAM.
    assert "Environment" not in container


def _sealed(path):
    return {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"}, "Path": path}}


def test_evaluate_seals_into_the_models_write_once_prefix(built, spec):
    """The evaluate step seals a passed challenger under s3://<artifacts>/pipelines/<model>/registered/, the
    prefix the artifacts bucket's policy keeps write-once (SEALED_KEY_PATTERN)."""
    arguments = built.steps[d.STEP_EVALUATE]["Arguments"]["AppSpecification"]["ContainerArguments"]
    location = arguments[arguments.index("--seal-uri") + 1]
    assert location == f"s3://{spec.artifacts_bucket}/pipelines/{spec.model_name}/registered/"
    assert fnmatch.fnmatch(location.split("/", 3)[3] + "x", SEALED_KEY_PATTERN)


def test_model_metrics_point_at_the_evaluation_and_baseline_outputs(built):
    metrics = built.steps[d.STEP_REGISTER]["Arguments"]["ModelMetrics"]
    evaluation, baseline = _prop("Evaluate", "evaluation"), _prop("Baseline", "baseline")
    assert _join_of(metrics["ModelQuality"]["Statistics"]) == [evaluation, "model_quality.json"]
    assert _join_of(metrics["Bias"]["Report"]) == [evaluation, "bias.json"]
    assert _join_of(metrics["Explainability"]["Report"]) == [evaluation, "explainability.json"]
    assert _join_of(metrics["ModelDataQuality"]["Statistics"]) == [baseline, "statistics.json"]
    assert _join_of(metrics["ModelDataQuality"]["Constraints"]) == [baseline, "constraints.json"]
    drift = built.steps[d.STEP_REGISTER]["Arguments"]["DriftCheckBaselines"]["ModelDataQuality"]
    assert _join_of(drift["Statistics"]) == [baseline, "statistics.json"]
    assert _join_of(drift["Constraints"]) == [baseline, "constraints.json"]
    sources = [n for n in nodes(metrics) if isinstance(n, dict) and "S3Uri" in n]
    assert len(sources) == 5 and all(n["ContentType"] == "application/json" for n in sources)


def _digest(step, path):
    files = {"Evaluate": "EvaluationDigests", "Baseline": "BaselineDigests"}
    return {"Std:JsonGet": {"PropertyFile": {"Get": f"Steps.{step}.PropertyFiles.{files[step]}"}, "Path": path}}


def test_every_model_metrics_document_carries_the_digest_its_job_wrote(built):
    """GIVEN the generated definition THEN each ModelMetrics (and drift-baseline) document's ContentDigest is read
    from the digests.json its step wrote beside it - a value SageMaker keeps with the package, which no update
    changes - and both steps declare that file as a property file of the output the document is in."""
    args = built.steps[d.STEP_REGISTER]["Arguments"]
    metrics, drift = args["ModelMetrics"], args["DriftCheckBaselines"]["ModelDataQuality"]
    assert metrics["ModelQuality"]["Statistics"]["ContentDigest"] == _digest("Evaluate", "model_quality")
    assert metrics["Bias"]["Report"]["ContentDigest"] == _digest("Evaluate", "bias")
    assert metrics["Explainability"]["Report"]["ContentDigest"] == _digest("Evaluate", "explainability")
    for source in (metrics["ModelDataQuality"], drift):
        assert source["Statistics"]["ContentDigest"] == _digest("Baseline", "statistics")
        assert source["Constraints"]["ContentDigest"] == _digest("Baseline", "constraints")
    sources = [n for n in nodes(args) if isinstance(n, dict) and "S3Uri" in n and "ContentType" in n]
    assert len(sources) == 7 and all("ContentDigest" in n for n in sources)
    assert built.steps[d.STEP_BASELINE]["PropertyFiles"] == [
        {"PropertyFileName": "BaselineDigests", "OutputName": "baseline", "FilePath": "digests.json"}
    ]


def _prepared(path):
    return {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Prepare.PropertyFiles.PrepareSummary"}, "Path": path}}


def test_each_split_is_registered_with_the_digest_prepare_wrote_in_its_summary(built):
    """GIVEN the generated definition THEN Prepare declares its summary (summary/prepare.json, written with the
    splits' digests) as a property file of its own summary output, and the register step records each split's
    digest from it (JsonGet) beside the split's location."""
    assert built.steps[d.STEP_PREPARE]["PropertyFiles"] == [
        {"PropertyFileName": "PrepareSummary", "OutputName": "summary", "FilePath": "prepare.json"}
    ]
    assert _outputs(built.steps[d.STEP_PREPARE])["summary"]["S3Output"]["LocalPath"] == "/opt/ml/processing/output/summary"
    metadata = built.steps[d.STEP_REGISTER]["Arguments"]["CustomerMetadataProperties"]
    for split in ("train", "validation"):
        assert metadata[f"{split}_data"] == _prop("Prepare", split)
        assert metadata[f"{split}_data_sha256"] == _prepared(f"splits.{split}.sha256")


def test_lineage_metadata(built, spec):
    args = built.steps[d.STEP_REGISTER]["Arguments"]
    (container,) = args["InferenceSpecification"]["Containers"]
    assert args["CustomerMetadataProperties"] == {
        "code_version": spec.code_version,
        "job_code_asset_hash": spec.code_asset_hash,
        "job_code_sha256": spec.code_sha256,
        "model_spec_sha256": hashlib.sha256(spec.model_spec_json.encode()).hexdigest(),
        "trigger_reason": {"Get": "Parameters.TriggerReason"},
        "input_features": {"Get": "Parameters.InputFeatures"},
        "input_labels": {"Get": "Parameters.InputLabels"},
        "frozen_test": spec.frozen_test_s3_uri,
        "pipeline_name": spec.pipeline_name,
        "pipeline_execution_id": {"Get": "Execution.PipelineExecutionId"},
        "model_data_sha256": _sealed("artifact.sha256"),
        "model_sha256": _sealed("artifact.model_sha256"),
        "model_content_sha256": _sealed("artifact.model_content_sha256"),
        "test_set_sha256": _sealed("test_set.sha256"),
        # attributions.json's ContentDigest as the baseline job wrote it (ModelMetrics has no slot for it).
        "attributions_sha256": {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Baseline.PropertyFiles.BaselineDigests"},
                                                "Path": "attributions"}},
        "train_data": _prop("Prepare", "train"),
        "validation_data": _prop("Prepare", "validation"),
        "train_data_sha256": _prepared("splits.train.sha256"),
        "validation_data_sha256": _prepared("splits.validation.sha256"),
        "container_sha256": container_digest(container["Image"], container.get("Environment")),
    }
    # SageMaker takes at most 50 customer metadata properties (CreateModelPackage, CustomerMetadataMap).
    assert len(args["CustomerMetadataProperties"]) <= 50
    # The keys the approver role is denied setting and removing are exactly the ones registered.
    assert sorted(args["CustomerMetadataProperties"]) == sorted(REGISTERED_PROPERTIES)
    assert args["MetadataProperties"] == {
        "CommitId": spec.code_version,
        "GeneratedBy": {"Get": "Execution.PipelineExecutionArn"},
        "ProjectId": spec.pipeline_name,
    }


def test_inference_environment_is_passed_through():
    from mlops_loop.training import build_pipeline_definition, step_graph

    env = (("SAGEMAKER_PROGRAM", "inference.py"), ("SAGEMAKER_SUBMIT_DIRECTORY", "/opt/ml/model/code"))
    spec = specs.base_spec(inference_environment=env, default_approval_status="Approved")
    built = json.loads(build_pipeline_definition(spec))
    register = step_graph(json.dumps(built))[d.STEP_REGISTER]["Arguments"]
    (container,) = register["InferenceSpecification"]["Containers"]
    assert container["Environment"] == dict(env)
    # The recorded container digest covers the environment the container was registered with.
    assert register["CustomerMetadataProperties"]["container_sha256"] == container_digest(container["Image"], dict(env))
    assert container_digest(container["Image"], dict(env)) != container_digest(container["Image"], {})
    approval = next(p for p in built["Parameters"] if p["Name"] == "ModelApprovalStatus")
    assert approval["DefaultValue"] == "Approved"
    assert approval["EnumValues"] == ["PendingManualApproval", "Approved"]


# --------------------------------------------------------------------------------------
# Whole-document properties
# --------------------------------------------------------------------------------------
def test_no_local_file_paths(built):
    """Every absolute path is a container path; nothing of the build machine leaks in."""
    machine_paths = {os.getcwd(), sys.prefix, os.path.expanduser("~"), "/tmp", "/work", "file://"} - {"/"}  # HOME=/
    for path, value in walk(built.doc):
        if not isinstance(value, str):
            continue
        for machine in machine_paths:
            assert machine not in value, (path, value)
        if value.startswith("/") and value.count("/") > 1:  # not a Join separator or "/file" suffix
            assert value.startswith("/opt/ml/"), (path, value)


def _artifact_joins(doc):
    """Every ``s3://<artifacts>/pipelines/<model>/...`` location the definition builds, as its Join's values."""
    return [node["Std:Join"]["Values"] for node in nodes(doc) if isinstance(node, dict) and "Std:Join" in node
            and node["Std:Join"]["Values"][:1] == ["s3:/"]]


def test_working_data_is_under_the_expiring_work_prefix_and_what_a_version_points_at_is_not(built, built_tuning):
    """The artifacts bucket expires ``pipelines/<model>/work/`` (DataLake): the prepared sets, training and tuning
    outputs and checkpoints go there (and Prepare's summary: the package records the digests it holds); the evaluation and baseline reports and the model card a registered version
    points at stay under ``pipelines/<model>/<execution id>/`` (and the frozen test set and sealed archives elsewhere)."""
    execution = {"Get": "Execution.PipelineExecutionId"}
    work, kept = set(), set()
    for doc in (built.doc, built_tuning.doc):
        for values in _artifact_joins(doc):
            assert values[2:4] == ["pipelines", "churn"], values
            if values[4] == "work":
                work.add("/".join(v for v in values[5:7] if isinstance(v, str)) if values[5] != execution
                         else "/".join(v for v in values[6:] if isinstance(v, str)))
            else:
                assert values[4] == execution, values
                kept.add("/".join(values[5:]))
    assert work == {"checkpoints", "prepare/train", "prepare/validation", "prepare/summary", "train", "tune"}
    assert kept == {"evaluate/evaluation", "baseline", "model-card"}


def test_every_s3_location_is_a_reference_or_under_the_given_buckets(built):
    for path, value in walk(built.doc):
        if isinstance(value, str) and "s3://" in value:
            bucket = value.split("s3://", 1)[1].split("/", 1)[0]
            assert bucket in specs.BUCKETS, (path, value)
    for node in nodes(built.doc):
        if isinstance(node, dict) and "Std:Join" in node:
            values = node["Std:Join"]["Values"]
            if values and values[0] == "s3:/":
                assert values[1] == specs.ARTIFACTS_BUCKET, values
                assert values[2:4] == ["pipelines", "churn"], values
    # No default-bucket fallback (sagemaker-<region>-<account>) anywhere.
    assert "sagemaker-eu-west-1" not in built.text


def test_definition_size(built):
    size = len(built.text)
    print(f"\npipeline definition: {size} characters (limit {d.MAX_DEFINITION_CHARS})")
    assert size < 100_000


def test_no_mutable_job_names_or_timestamps(built):
    """Job names are assigned per execution by SageMaker; none may be baked in."""
    for key in ("ProcessingJobName", "TrainingJobName", "HyperParameterTuningJobName", "ModelPackageName"):
        assert f'"{key}"' not in built.text
