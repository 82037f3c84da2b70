"""The training job of a network (framework pytorch): its image per instance type (stock PyTorch on CPU, the pinned
Neuron image on Trainium), its module and metrics, the volume key left out on local NVMe, every other job unchanged."""

from __future__ import annotations

import json

import pytest

from mlops_loop.training import build_pipeline_definition, names as d, step_graph
from mlops_loop.training.sdk_offline import training_image_uri

from tests.support import pipeline_specs as specs

NEURON_IMAGE = f"763104351884.dkr.ecr.{specs.REGION}.amazonaws.com/pytorch-training-neuronx:2.9.0-neuronx-py312-sdk2.30.0-ubuntu24.04"
CPU_IMAGE = f"763104351884.dkr.ecr.{specs.REGION}.amazonaws.com/pytorch-training:2.9.0-cpu-py312"


def _network(**overrides):
    return specs.base_spec(framework="pytorch", hyperparameters=d.DEFAULT_TORCH_HYPERPARAMETERS, **overrides)


@pytest.fixture(scope="module")
def on_cpu():
    """GIVEN a network trained on ml.m5.xlarge WHEN its pipeline is generated."""
    return dict(step_graph(build_pipeline_definition(_network())))


@pytest.fixture(scope="module")
def on_trainium():
    """GIVEN a network trained on ml.trn1.2xlarge WHEN its pipeline is generated."""
    return dict(step_graph(build_pipeline_definition(_network(training_instance_type="ml.trn1.2xlarge"))))


@pytest.fixture(scope="module")
def trees():
    return dict(step_graph(build_pipeline_definition(specs.base_spec())))


def test_on_a_cpu_the_network_trains_in_the_stock_pytorch_image_with_its_module_and_metrics(on_cpu):
    job = on_cpu[d.STEP_TRAIN]["Arguments"]
    algorithm = job["AlgorithmSpecification"]
    assert algorithm["TrainingImage"] == CPU_IMAGE
    assert algorithm["ContainerArguments"][0] == d.MODULE_TRAIN_TORCH
    arguments = algorithm["ContainerArguments"]
    assert [arguments[arguments.index(f"--{name}") + 1] for name, _ in d.DEFAULT_TORCH_HYPERPARAMETERS] == [
        value for _, value in d.DEFAULT_TORCH_HYPERPARAMETERS]
    assert [m["Name"] for m in algorithm["MetricDefinitions"]] == ["validation-loss", "final-validation-auc"]
    assert job["ResourceConfig"]["VolumeKmsKeyId"] == specs.KMS_KEY_ARN and job["ResourceConfig"]["VolumeSizeInGB"] == 30
    assert on_cpu[d.STEP_TRAIN]["Description"].startswith("PyTorch 2.9.0 network training (stock image")


def test_on_trainium_the_network_trains_in_the_pinned_neuron_image_without_a_volume_key(on_trainium):
    job = on_trainium[d.STEP_TRAIN]["Arguments"]
    assert job["AlgorithmSpecification"]["TrainingImage"] == NEURON_IMAGE
    # ml.trn1 has local NVMe: SageMaker rejects a volume key there (API reference, ResourceConfig.VolumeKmsKeyId).
    assert "VolumeKmsKeyId" not in job["ResourceConfig"] and job["ResourceConfig"]["VolumeSizeInGB"] == 30
    assert job["OutputDataConfig"]["KmsKeyId"] == specs.KMS_KEY_ARN  # the model it writes stays encrypted with the key
    assert job["ResourceConfig"]["InstanceType"] == {"Get": f"Parameters.{d.PARAM_TRAINING_INSTANCE_TYPE}"}
    assert "Neuron training image, XLA device" in on_trainium[d.STEP_TRAIN]["Description"]


def test_every_other_job_of_a_network_runs_in_the_xgboost_image_that_scores_it_with_numpy(on_cpu, trees):
    for step in (d.STEP_PREPARE, d.STEP_EVALUATE, d.STEP_BASELINE):
        assert (on_cpu[step]["Arguments"]["AppSpecification"]["ImageUri"]
                == trees[step]["Arguments"]["AppSpecification"]["ImageUri"]), step
    register = json.dumps(on_cpu[d.STEP_REGISTER])
    assert trees[d.STEP_TRAIN]["Arguments"]["AlgorithmSpecification"]["TrainingImage"] in register
    assert f"PyTorch 2.9.0 network served with numpy in the XGBoost {d.XGBOOST_VERSION} image" in register


def test_the_xgboost_training_job_is_unchanged_by_the_framework_option(trees):
    algorithm = trees[d.STEP_TRAIN]["Arguments"]["AlgorithmSpecification"]
    assert algorithm["ContainerArguments"][0] == d.MODULE_TRAIN
    assert [m["Name"] for m in algorithm["MetricDefinitions"]] == ["validation-auc", "final-validation-auc"]


def test_a_gpu_instance_with_local_nvme_trains_trees_without_a_volume_key():
    """ml.g5 (the GPU type the config suggests for XGBoost) was refused before; SageMaker wants no volume key there."""
    steps = dict(step_graph(build_pipeline_definition(specs.base_spec(training_instance_type="ml.g5.xlarge"))))
    resources = steps[d.STEP_TRAIN]["Arguments"]["ResourceConfig"]
    assert "VolumeKmsKeyId" not in resources and resources["VolumeSizeInGB"] == 30


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"framework": "tensorflow"}, "invalid PipelineSpec: framework: must be 'xgboost' or 'pytorch', got 'tensorflow'"),
        ({"framework": "pytorch", "enable_tuning": True},
         "invalid PipelineSpec: enable_tuning: the tuning job searches XGBoost's hyperparameters; a network is not tuned"),
        ({"framework": "pytorch", "training_instance_count": 2},
         "invalid PipelineSpec: training_instance_count: a network trains on one instance, not 2"),
    ],
)
def test_what_a_network_cannot_do_is_refused_naming_the_field(overrides, message):
    with pytest.raises(ValueError) as refused:
        specs.base_spec(**overrides)
    assert str(refused.value) == message


def test_the_training_image_of_every_framework_comes_from_one_function():
    assert training_image_uri("pytorch", specs.REGION, "ml.trn1.2xlarge") == NEURON_IMAGE
    assert training_image_uri("pytorch", specs.REGION, "ml.m5.xlarge") == CPU_IMAGE
    assert training_image_uri("pytorch", specs.REGION, "ml.g5.xlarge").endswith("/pytorch-training:2.9.0-gpu-py312")
    assert training_image_uri("xgboost", specs.REGION, "ml.m5.xlarge").endswith(f"/sagemaker-xgboost:{d.XGBOOST_VERSION}")
    # eu-south-1's Deep Learning Containers live in another account (the SDK's registry map).
    assert training_image_uri("pytorch", "eu-south-1", "ml.m5.xlarge").startswith("692866216735.dkr.ecr.eu-south-1.")


def test_an_execution_cannot_switch_a_network_to_an_instance_type_its_image_was_not_chosen_for():
    parameters = {p["Name"]: p for p in json.loads(build_pipeline_definition(_network(training_instance_type="ml.trn1.2xlarge")))["Parameters"]}
    assert parameters[d.PARAM_TRAINING_INSTANCE_TYPE]["EnumValues"] == ["ml.trn1.2xlarge"]
    tree_parameters = {p["Name"]: p for p in json.loads(build_pipeline_definition(specs.base_spec()))["Parameters"]}
    assert "EnumValues" not in tree_parameters[d.PARAM_TRAINING_INSTANCE_TYPE]  # trees on EBS types may switch


def test_a_tuning_job_on_a_local_nvme_type_sets_no_volume_key_either():
    steps = dict(step_graph(build_pipeline_definition(specs.base_spec(training_instance_type="ml.g5.xlarge", enable_tuning=True))))
    resources = steps[d.STEP_TUNE]["Arguments"]["TrainingJobDefinition"]["ResourceConfig"]
    assert "VolumeKmsKeyId" not in resources
    on_ebs = dict(step_graph(build_pipeline_definition(specs.base_spec(enable_tuning=True))))
    assert on_ebs[d.STEP_TUNE]["Arguments"]["TrainingJobDefinition"]["ResourceConfig"]["VolumeKmsKeyId"] == specs.KMS_KEY_ARN
