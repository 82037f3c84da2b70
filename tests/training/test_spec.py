"""The --model-spec contract and the gate thresholds: validated against the catalog, clear errors."""

from __future__ import annotations

import json

import pytest

from pipeline_code.training.spec import DEFAULT_GATE, GateThresholds, SpecError, parse_model_spec
from tests.support.datasets import CUSTOMER_CHURN


def test_given_every_configured_model_when_parsed_then_it_matches_the_yaml(config):
    for name, entry in config["models"].items():
        spec = parse_model_spec(json.dumps(entry))
        assert spec.name == name
        assert spec.features == tuple(entry["features"])
        assert spec.sensitive_attribute not in spec.features
        assert spec.frame_features[: len(spec.features)] == spec.features
        assert spec.sensitive_attribute in spec.frame_features


def test_given_the_training_toolkits_python_repr_of_the_spec_then_it_is_accepted(churn_spec):
    """SageMaker's toolkit may decode a JSON hyperparameter and hand back str(dict)."""
    assert parse_model_spec(str(churn_spec.to_dict())) == churn_spec
    assert parse_model_spec(json.dumps(churn_spec.to_json())) == churn_spec  # doubly encoded


@pytest.mark.parametrize(
    "change, fragment",
    [
        ({"dataset": "fraud"}, "'dataset' must be the dataset's declaration (a JSON object, as ModelConfig.job_spec "
                               "writes it), got 'fraud'"),
        ({"dataset": {"name": "fraud"}}, "'dataset' must be the dataset's declaration: columns: must map"),
        ({"dataset": {**CUSTOMER_CHURN.to_declaration(), "columns": [
            {**c, "max": 5.0} if c["name"] == "churned" else c for c in CUSTOMER_CHURN.to_declaration()["columns"]]}},
         "target 'churned': column 'churned' is integer in [0, 5]; a binary target is a boolean column"),
        ({"target": "tenure_months"}, "target 'tenure_months' is not a label"),
        ({"features": ["tenure_months", "nope"]}, "features ['nope'] are not features"),
        ({"features": ["tenure_months", "gender"]}, "sensitive_attribute 'gender' must not be a model input"),
        ({"slices": ["monthly_charges"]}, "slice 'monthly_charges' must be a categorical"),
        ({"sensitive_attribute": "tenure_months"}, "must be a categorical (String) feature"),
        ({"surprise": 1}, "unknown keys ['surprise']"),
        ({"features": []}, "at least one feature"),
    ],
)
def test_given_a_spec_that_disagrees_with_the_catalog_then_the_error_names_the_problem(churn_spec, change, fragment):
    data = {**churn_spec.to_dict(), **change}
    with pytest.raises(SpecError) as excinfo:
        parse_model_spec(data)
    assert fragment in str(excinfo.value)


def test_given_text_that_is_not_an_object_then_the_error_says_so():
    with pytest.raises(SpecError, match="not a JSON object"):
        parse_model_spec("{name: churn")
    with pytest.raises(SpecError, match="missing keys"):
        parse_model_spec("{}")


def test_given_the_yaml_gate_block_then_thresholds_parse_and_round_trip_through_the_cli(dev_gate):
    from pipeline_code.training import evaluate

    assert dev_gate == DEFAULT_GATE  # dev inherits the defaults block
    args = evaluate.build_parser().parse_args(["--model-spec", _SPEC, *dev_gate.to_args()])
    assert GateThresholds.from_args(args) == dev_gate


def test_given_out_of_range_thresholds_then_every_problem_is_listed():
    with pytest.raises(SpecError) as excinfo:
        GateThresholds(min_auc=1.5, challenger_margin=0.0, max_slice_regression=-0.1,
                       max_demographic_parity_difference=0.1, min_disparate_impact=0.8)  # fmt: skip
    assert "min_auc" in str(excinfo.value) and "max_slice_regression" in str(excinfo.value)


_SPEC = json.dumps(
    {
        "name": "churn",
        "dataset": CUSTOMER_CHURN.to_declaration(),
        "target": "churned",
        "features": ["tenure_months"],
        "sensitive_attribute": "gender",
        "slices": [],
    }
)


def test_given_a_path_to_the_spec_file_then_it_is_read(churn_spec, tmp_path):
    """SageMaker caps container arguments at 256 characters: long specs arrive as a file."""
    path = tmp_path / "model_spec" / "churn.json"
    path.parent.mkdir()
    path.write_text(churn_spec.to_json())
    assert len(churn_spec.to_json()) > 256
    assert parse_model_spec(str(path)) == churn_spec
    assert parse_model_spec(str(path.parent)) == churn_spec  # the input directory itself
    with pytest.raises(SpecError, match="neither a JSON object nor an existing file"):
        parse_model_spec(str(tmp_path / "missing.json"))
