"""The pipeline of a network served on ml.inf2: a Compile step in the pinned Neuron inference image between training
and evaluation, whose archive is what Evaluate judges and seals, and the package registered with that image."""

from __future__ import annotations

import pytest

from mlops_loop.training import PipelineSpec, build_pipeline_definition, names as d, step_graph
from pipeline_code.core.compiled import DEFAULT_BATCH, NEURON_COMPILER

from tests.support import pipeline_specs as specs

NEURON_INFERENCE_IMAGE = (f"763104351884.dkr.ecr.{specs.REGION}.amazonaws.com/pytorch-inference-neuronx:"
                          "2.9.0-neuronx-py312-sdk2.31.1-ubuntu24.04")


def _compiled(**overrides) -> PipelineSpec:
    return specs.base_spec(framework="pytorch", hyperparameters=d.DEFAULT_TORCH_HYPERPARAMETERS,
                           compile_for_inferentia2=True, **overrides)


@pytest.fixture(scope="module")
def compiled():
    """GIVEN a network its environment serves on ml.inf2 (trained on Trainium) WHEN its pipeline is generated."""
    return dict(step_graph(build_pipeline_definition(_compiled(training_instance_type="ml.trn1.2xlarge"))))


def test_the_compile_step_runs_torch_neuronx_in_the_pinned_inference_image_on_the_trained_model(compiled):
    step = compiled[d.STEP_COMPILE]
    job = step["Arguments"]
    app = job["AppSpecification"]
    assert app["ImageUri"] == NEURON_INFERENCE_IMAGE
    arguments = app["ContainerArguments"]
    assert arguments[0] == d.MODULE_COMPILE_NEURON
    assert arguments[arguments.index("--compiler") + 1] == NEURON_COMPILER
    assert arguments[arguments.index("--batch") + 1] == str(DEFAULT_BATCH)
    model_input = next(i for i in job["ProcessingInputs"] if i["InputName"] == "model")
    assert model_input["S3Input"]["S3Uri"] == {"Get": f"Steps.{d.STEP_TRAIN}.ModelArtifacts.S3ModelArtifacts"}
    # A CPU processing instance (there are no ml.inf2 processing instances), isolated, its volume and output keyed.
    resources = job["ProcessingResources"]["ClusterConfig"]
    assert resources["InstanceType"] == {"Get": f"Parameters.{d.PARAM_PROCESSING_INSTANCE_TYPE}"}
    assert resources["VolumeKmsKeyId"] == specs.KMS_KEY_ARN
    assert job["NetworkConfig"]["EnableNetworkIsolation"] is True
    assert job["ProcessingOutputConfig"]["KmsKeyId"] == specs.KMS_KEY_ARN
    # Working data (expires with the model's work/ prefix): Evaluate seals what passes elsewhere.
    (output,) = job["ProcessingOutputConfig"]["Outputs"]
    assert output["S3Output"]["S3Uri"]["Std:Join"]["Values"] == [
        "s3:/", specs.ARTIFACTS_BUCKET, "pipelines", "churn", "work", {"Get": "Execution.PipelineExecutionId"}, "compile"]


def test_evaluate_judges_and_seals_the_compiled_archive_and_the_package_names_the_neuron_image(compiled):
    evaluate = compiled[d.STEP_EVALUATE]["Arguments"]
    model_input = next(i for i in evaluate["ProcessingInputs"] if i["InputName"] == "model")
    assert model_input["S3Input"]["S3Uri"] == {"Get": f"Steps.{d.STEP_COMPILE}.ProcessingOutputConfig.Outputs['compiled'].S3Output.S3Uri"}
    # Evaluate and every other processing job stay in the XGBoost image (the numpy network needs no torch).
    assert "sagemaker-xgboost" in evaluate["AppSpecification"]["ImageUri"]
    container = compiled[d.STEP_REGISTER]["Arguments"]["InferenceSpecification"]["Containers"][0]
    assert container["Image"] == NEURON_INFERENCE_IMAGE
    assert "compiled for inf2 with torch-neuronx" in compiled[d.STEP_REGISTER]["Arguments"]["ModelPackageDescription"]
    # The baseline describes the training data: it reads the training job's model, compiled or not.
    baseline = compiled[d.STEP_BASELINE]["Arguments"]
    assert next(i for i in baseline["ProcessingInputs"] if i["InputName"] == "model")["S3Input"]["S3Uri"] == {
        "Get": f"Steps.{d.STEP_TRAIN}.ModelArtifacts.S3ModelArtifacts"}


def test_a_network_served_on_a_cpu_has_no_compile_step_and_registers_the_xgboost_image():
    steps = dict(step_graph(build_pipeline_definition(specs.base_spec(framework="pytorch", hyperparameters=d.DEFAULT_TORCH_HYPERPARAMETERS))))
    assert d.STEP_COMPILE not in steps
    assert "sagemaker-xgboost" in steps[d.STEP_REGISTER]["Arguments"]["InferenceSpecification"]["Containers"][0]["Image"]


def test_only_a_network_can_be_compiled():
    with pytest.raises(ValueError) as error:
        specs.base_spec(compile_for_inferentia2=True)
    assert str(error.value) == ("invalid PipelineSpec: compile_for_inferentia2: only a 'pytorch' network is compiled for "
                                "Inferentia2, not 'xgboost'")
