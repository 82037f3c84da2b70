"""The generated job invocations parse with the job modules' own argument parsers.

The definition and ``pipeline_code`` are written separately; this is where they meet. For
every job the container arguments of the definition (pipeline parameters replaced by
their defaults) are fed to the module's ``build_parser()``, and the tuning variant's
hyperparameters go through an emulation of the SageMaker training toolkit (JSON-decoded
values, ``--name value`` flags) into the training parser.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List

import pytest

pytest.importorskip("xgboost")
pytest.importorskip("pandas")

from pipeline_code.training import baseline, evaluate, model_card, prepare, train  # noqa: E402

from mlops_loop.training import build_pipeline_definition, step_graph  # noqa: E402
from mlops_loop.training import names as d  # noqa: E402

from tests.support import pipeline_specs as specs  # noqa: E402

MODULES = {
    "pipeline_code.training.prepare": prepare,
    "pipeline_code.training.train": train,
    "pipeline_code.training.evaluate": evaluate,
    "pipeline_code.training.baseline": baseline,
    "pipeline_code.training.model_card": model_card,
}
# What Register hands the ModelCard step at run time.
REGISTERED_ARN = "arn:aws:sagemaker:eu-west-1:111111111111:model-package/mlops-loop-dev-churn/3"


def _resolve(value: Any, parameters: Dict[str, Any]) -> str:
    """A container argument as the pipeline hands it over at run time (defaults for parameters)."""
    if isinstance(value, str):
        return value
    if "Get" in value and value["Get"].startswith("Parameters."):
        return str(parameters[value["Get"].split(".", 1)[1]])
    if value == {"Get": f"Steps.{d.STEP_REGISTER}.ModelPackageArn"}:
        return REGISTERED_ARN
    if "Std:Join" in value:
        join = value["Std:Join"]
        return join["On"].join(_resolve(v, parameters) for v in join["Values"])
    raise AssertionError(f"unexpected argument expression {value!r}")


def _invocations(text: str) -> Dict[str, List[str]]:
    doc = json.loads(text)
    parameters = {p["Name"]: p["DefaultValue"] for p in doc["Parameters"]}
    found = {}
    for name, step in step_graph(text).items():
        args = step.get("Arguments", {})
        spec = args.get("AppSpecification") or args.get("AlgorithmSpecification") or {}
        if "ContainerArguments" in spec:
            found[name] = [_resolve(v, parameters) for v in spec["ContainerArguments"]]
    return found


@pytest.fixture(scope="module")
def inline(tmp_path_factory):
    """Each job's command line with the model spec file SageMaker delivers put where the job reads it."""
    spec_file = tmp_path_factory.mktemp("model_spec") / specs.MODEL_SPEC_URI.rsplit("/", 1)[1]
    spec_file.write_text(json.dumps(specs.CHURN_SPEC))
    invocations = _invocations(build_pipeline_definition(specs.base_spec()))
    for arguments in invocations.values():
        if "--model-spec" in arguments:
            arguments[arguments.index("--model-spec") + 1] = str(spec_file)
    return invocations


def test_every_job_has_an_invocation(inline):
    assert set(inline) == {d.STEP_PREPARE, d.STEP_TRAIN, d.STEP_EVALUATE, d.STEP_BASELINE, d.STEP_MODEL_CARD}


@pytest.mark.parametrize("step", [d.STEP_PREPARE, d.STEP_TRAIN, d.STEP_EVALUATE, d.STEP_BASELINE])
def test_arguments_parse_with_the_module_parser(inline, step):
    module, *arguments = inline[step]
    namespace = MODULES[module].build_parser().parse_args(arguments)
    assert namespace.model_spec.name == "churn"
    assert namespace.model_spec.features == tuple(specs.CHURN_SPEC["features"])


def test_the_model_card_step_gets_the_registered_version_and_creates_the_card(inline):
    module, *arguments = inline[d.STEP_MODEL_CARD]
    assert module == "pipeline_code.training.model_card"
    namespace = model_card.build_parser().parse_args(arguments)
    assert namespace.model_package_arn == REGISTERED_ARN
    assert namespace.create is True
    assert namespace.evaluation_dir == "/opt/ml/processing/input/evaluation"
    assert namespace.test_set_uri.startswith("s3://") and namespace.kms_key_id


def test_parsed_values(inline):
    parsed = {step: MODULES[args[0]].build_parser().parse_args(args[1:]) for step, args in inline.items()}
    p, t, e, b = (parsed[s] for s in (d.STEP_PREPARE, d.STEP_TRAIN, d.STEP_EVALUATE, d.STEP_BASELINE))
    assert (p.features_dir, p.labels_dir, p.output_dir) == (
        "/opt/ml/processing/input/features",
        "/opt/ml/processing/input/labels",
        "/opt/ml/processing/output",
    )
    # Read through the S3 API by the job (an empty prefix cannot be mounted before the first run).
    assert p.frozen_test_dir.startswith("s3://") and p.frozen_test_dir.endswith("/frozen-test/")
    assert (t.train_dir, t.validation_dir, t.model_dir, t.checkpoint_dir) == (
        "/opt/ml/input/data/train",
        "/opt/ml/input/data/validation",
        "/opt/ml/model",
        "/opt/ml/checkpoints",
    )
    assert (t.num_round, t.eta, t.max_depth, t.min_child_weight, t.subsample, t.early_stopping_rounds) == (
        300, 0.1, 5, 1.0, 0.8, 20
    )  # fmt: skip
    assert (e.model_dir, e.test_dir, e.output_dir) == (
        "/opt/ml/processing/input/model",
        "/opt/ml/processing/input/test",
        "/opt/ml/processing/output/evaluation",
    )
    assert (e.model_package_group, e.region) == ("mlops-loop-dev-churn", "eu-west-1")
    thresholds = evaluate.thresholds_from_args(evaluate.build_parser(), e)
    assert (thresholds.min_auc, thresholds.challenger_margin, thresholds.max_slice_regression) == (0.7, 0.005, 0.02)
    assert (thresholds.max_demographic_parity_difference, thresholds.min_disparate_impact) == (0.1, 0.8)
    assert (b.model_dir, b.train_dir, b.validation_dir, b.output_dir) == (
        "/opt/ml/processing/input/model",
        "/opt/ml/processing/input/train",
        "/opt/ml/processing/input/validation",
        "/opt/ml/processing/output/baseline",
    )


def test_a_model_spec_file_path_parses(built, tmp_path):
    spec_file = tmp_path / specs.MODEL_SPEC_URI.rsplit("/", 1)[1]
    spec_file.write_text(json.dumps(specs.CHURN_SPEC))
    for step, (module, *arguments) in _invocations(built.text).items():
        container_path = arguments[arguments.index("--model-spec") + 1]
        assert container_path.endswith(spec_file.name), step
        arguments[arguments.index("--model-spec") + 1] = str(spec_file)
        parsed = MODULES[module].build_parser().parse_args(arguments).model_spec
        # The model card job reads the spec itself (file or JSON); the others parse it into a ModelSpec.
        assert (parsed if isinstance(parsed, str) else parsed.name) in (str(spec_file), "churn")


def _toolkit_cmd_args(hyperparameters: Dict[str, str]) -> List[str]:
    """What the SageMaker training toolkit passes a script-mode entry point.

    Values are JSON-decoded when they parse as JSON; ``sagemaker_*`` keys are framework
    parameters, not arguments; the rest become ``--name value`` in sorted order.
    """
    args: List[str] = []
    for name in sorted(hyperparameters):
        if name.startswith("sagemaker_"):
            continue
        try:
            value = json.loads(hyperparameters[name])
        except ValueError:
            value = hyperparameters[name]
        assert not isinstance(value, dict), f"{name}: a dict would reach the script as k=v,k=v"
        args += [f"--{name}", value if isinstance(value, str) else json.dumps(value)]
    return args


def test_tuning_jobs_hand_the_training_module_parseable_flags(built_tuning, monkeypatch, tmp_path):
    job = built_tuning.steps[d.STEP_TUNE]["Arguments"]["TrainingJobDefinition"]
    assert job["Environment"]["MLOPS_LOOP_MODULE"] == "pipeline_code.training.train"
    # One candidate the tuner could pick, with the model_spec channel's file where the hyperparameter says.
    spec_file = tmp_path / "model-spec.json"
    spec_file.write_text(json.dumps(specs.CHURN_SPEC))
    assert json.loads(job["StaticHyperParameters"]["model_spec"]).startswith("/opt/ml/input/data/model_spec/")
    hyperparameters = {**job["StaticHyperParameters"], "model_spec": json.dumps(str(spec_file)),
                       "eta": "0.05", "max_depth": "7", "min_child_weight": "2.5"}
    monkeypatch.setenv("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train")
    monkeypatch.setenv("SM_CHANNEL_VALIDATION", "/opt/ml/input/data/validation")
    monkeypatch.setenv("SM_MODEL_DIR", "/opt/ml/model")
    namespace = train.build_parser().parse_args(_toolkit_cmd_args(hyperparameters))
    assert namespace.model_spec.name == "churn"
    assert (namespace.eta, namespace.max_depth, namespace.min_child_weight) == (0.05, 7, 2.5)
    assert (namespace.train_dir, namespace.validation_dir) == ("/opt/ml/input/data/train", "/opt/ml/input/data/validation")
