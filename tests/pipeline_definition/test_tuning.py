"""The tuning variant: a TuningStep replaces the TrainingStep; evaluation uses the best job."""

from __future__ import annotations

import json

import re

import pytest
from pipeline_code.core import problem
from mlops_loop.training import build_pipeline_definition, names as d, step_graph

from tests.support import pipeline_specs as specs
from tests.support.pipeline_graph import referenced_steps


def test_tuning_step_replaces_the_training_step(built_tuning):
    top = [(s["Name"], s["Type"]) for s in built_tuning.doc["Steps"]]
    assert top == [
        ("Prepare", "Processing"),
        ("Tune", "Tuning"),
        ("Evaluate", "Processing"),
        ("CheckGate", "Condition"),
    ]
    assert d.STEP_TRAIN not in built_tuning.steps
    assert built_tuning.steps[d.STEP_TUNE]["CacheConfig"] == {"Enabled": True, "ExpireAfter": "PT1H"}


def test_tuning_objective_and_ranges(built_tuning, spec):
    config = built_tuning.steps[d.STEP_TUNE]["Arguments"]["HyperParameterTuningJobConfig"]
    # The primary metric each trial prints after every round and, last, for the kept model (SageMaker keeps a trial's
    # last value): the one AUC definition the metric definitions read, which early stopping can compare round by round.
    assert config["HyperParameterTuningJobObjective"] == {"Type": "Maximize", "MetricName": "validation-auc"}
    metric_names = [m["Name"] for m in built_tuning.steps[d.STEP_TUNE]["Arguments"]["TrainingJobDefinition"][
        "AlgorithmSpecification"]["MetricDefinitions"]]
    assert metric_names.count("validation-auc") == 1 and "final-validation-auc" in metric_names
    assert config["ResourceLimits"] == {
        "MaxParallelTrainingJobs": d.TUNING_MAX_PARALLEL_JOBS,
        "MaxNumberOfTrainingJobs": d.TUNING_MAX_JOBS,
    }
    ranges = config["ParameterRanges"]
    names = {r["Name"] for kind in ranges.values() for r in kind}
    assert names == {"eta", "max_depth", "min_child_weight"}
    assert [r["Name"] for r in ranges["IntegerParameterRanges"]] == ["max_depth"]


def test_tuning_training_jobs(built_tuning, spec):
    job = built_tuning.steps[d.STEP_TUNE]["Arguments"]["TrainingJobDefinition"]
    algorithm = job["AlgorithmSpecification"]
    assert algorithm["MetricDefinitions"] == [{"Name": n, "Regex": r} for n, r in d.problem_metrics("binary_classification", spec.primary_metric)[0]]
    assert "ContainerEntrypoint" not in algorithm  # not expressible in a tuning job
    static = job["StaticHyperParameters"]
    # Script mode from the mounted "entry" channel: no tarball, no upload.
    entry_file = specs.ENTRY_URI.rsplit("/", 1)[1]
    assert static["sagemaker_program"] == entry_file
    assert static["sagemaker_submit_directory"] == "/opt/ml/input/data/entry"
    assert not {"eta", "max_depth", "min_child_weight"} & set(static)
    # The toolkit JSON-decodes hyperparameter values: the spec's path, as a JSON string, in the model_spec channel.
    spec_file = specs.MODEL_SPEC_URI.rsplit("/", 1)[1]
    assert json.loads(static["model_spec"]) == f"/opt/ml/input/data/model_spec/{spec_file}"
    assert len(static["model_spec"]) <= d.MAX_HYPERPARAMETER_VALUE
    channels = {c["ChannelName"]: c for c in job["InputDataConfig"]}
    assert channels["model_spec"]["DataSource"]["S3DataSource"]["S3Uri"] == specs.MODEL_SPEC_URI
    assert job["Environment"] == {"MLOPS_LOOP_MODULE": "pipeline_code.training.train", "MLOPS_LOOP_CODE_SHA256": spec.code_sha256}
    # Encryption the SDK's tuner drops is put back.
    assert job["ResourceConfig"]["VolumeKmsKeyId"] == spec.kms_key_arn
    assert job["OutputDataConfig"]["KmsKeyId"] == spec.kms_key_arn
    assert job["EnableInterContainerTrafficEncryption"] is True
    assert job["EnableManagedSpotTraining"] is True
    assert job["StoppingCondition"]["MaxWaitTimeInSeconds"] >= job["StoppingCondition"]["MaxRuntimeInSeconds"]
    assert "CheckpointConfig" not in job  # parallel jobs must not share a checkpoint prefix
    channels = {c["ChannelName"] for c in job["InputDataConfig"]}
    assert channels == {"train", "validation", "entry", "lib", "model_spec"}


def test_evaluation_and_registration_use_the_best_training_job(built_tuning):
    best_model = {
        "Std:Join": {
            "On": "/",
            "Values": [
                {"Get": "Steps.Tune.TrainingJobDefinition.OutputDataConfig.S3OutputPath"},
                {"Get": "Steps.Tune.BestTrainingJob.TrainingJobName"},
                "output",
                "model.tar.gz",
            ],
        }
    }
    evaluate = {i["InputName"]: i for i in built_tuning.steps[d.STEP_EVALUATE]["Arguments"]["ProcessingInputs"]}
    assert evaluate["model"]["S3Input"]["S3Uri"] == best_model
    (container,) = built_tuning.steps[d.STEP_REGISTER]["Arguments"]["InferenceSpecification"]["Containers"]
    # Registered: the best model as sealed by Evaluate.
    assert container["ModelDataUrl"]["Std:JsonGet"]["Path"] == "artifact.uri"
    assert referenced_steps(built_tuning.steps[d.STEP_EVALUATE]) == {"Tune", "Prepare"}


def test_tuning_definition_size(built_tuning):
    print(f"\npipeline definition with tuning: {len(built_tuning.text)} characters")
    assert len(built_tuning.text) < 100_000


SHAPED = dict(tuning_ranges=(("eta", "continuous", 0.05, 0.2, "Logarithmic"), ("max_depth", "integer", 3, 6, "Auto"),
                             ("min_child_weight", "continuous", 1.0, 10.0, "Auto")),
              tuning_max_jobs=50, tuning_max_parallel_jobs=5, tuning_strategy="Random")


def test_the_configured_ranges_budget_and_strategy_reach_the_tuning_job(spec):
    """GIVEN a model's narrowed ranges and an environment's budget and strategy WHEN the definition is generated THEN
    its HyperParameterTuningJobConfig searches exactly those, with no early stopping by the tuning job."""
    shaped = build_pipeline_definition(specs.replace(spec, enable_tuning=True, **SHAPED))
    tune = dict(step_graph(shaped))[d.STEP_TUNE]["Arguments"]
    config = tune["HyperParameterTuningJobConfig"]
    assert config["Strategy"] == "Random"
    assert config["ResourceLimits"] == {"MaxParallelTrainingJobs": 5, "MaxNumberOfTrainingJobs": 50}
    assert config["TrainingJobEarlyStoppingType"] == "Off"
    assert "StrategyConfig" not in config
    assert config["ParameterRanges"] == {
        "IntegerParameterRanges": [{"Name": "max_depth", "MinValue": "3", "MaxValue": "6", "ScalingType": "Auto"}],
        "ContinuousParameterRanges": [
            {"Name": "eta", "MinValue": "0.05", "MaxValue": "0.2", "ScalingType": "Logarithmic"},
            {"Name": "min_child_weight", "MinValue": "1.0", "MaxValue": "10.0", "ScalingType": "Auto"}],
    }
    assert not {"eta", "max_depth", "min_child_weight"} & set(tune["TrainingJobDefinition"]["StaticHyperParameters"])


@pytest.mark.parametrize("changes, message", [
    (dict(tuning_strategy="Hyperband"), "tuning_strategy: must be one of ['Bayesian', 'Random'], got 'Hyperband'"),
    (dict(tuning_max_jobs=0), "tuning_max_jobs: must be an integer within [1, 750], got 0"),
    (dict(tuning_early_stopping="yes"), "tuning_early_stopping: must be a bool, got 'yes'"),
    (dict(tuning_max_parallel_jobs=101), "tuning_max_parallel_jobs: must be an integer within [1, 100], got 101"),
])
def test_a_spec_with_a_search_sagemaker_refuses_is_refused(spec, changes, message):
    with pytest.raises(ValueError) as caught:
        specs.replace(spec, enable_tuning=True, **changes)
    assert message in str(caught.value)


@pytest.mark.parametrize("strategy", ["Bayesian", "Random"])
def test_early_stopping_reaches_the_tuning_job_on_an_objective_printed_every_round(spec, strategy):
    """GIVEN an environment's early_stopping: true WHEN the definition is generated THEN the tuning job stops trials
    (Auto) on the objective the trainer prints after every round: a metric definition the tuning job reads."""
    built = build_pipeline_definition(specs.replace(spec, enable_tuning=True, tuning_strategy=strategy,
                                                    tuning_early_stopping=True))
    tune = dict(step_graph(built))[d.STEP_TUNE]["Arguments"]
    config = tune["HyperParameterTuningJobConfig"]
    assert (config["Strategy"], config["TrainingJobEarlyStoppingType"]) == (strategy, "Auto")
    objective = config["HyperParameterTuningJobObjective"]["MetricName"]
    definitions = {m["Name"]: m["Regex"] for m in tune["TrainingJobDefinition"]["AlgorithmSpecification"]["MetricDefinitions"]}
    assert objective == problem.round_objective(spec.problem_type, spec.primary_metric)
    assert re.search(definitions[objective], f"[3/300] validation-logloss=0.5; {objective}=0.812345;").group(1) == "0.812345"
