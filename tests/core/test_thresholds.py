"""The gate thresholds: one table drives the config, the pipeline parameters and the job flags."""

from __future__ import annotations

import json

import pytest

from mlops_loop.config import load_config
from mlops_loop.config.schema import GateConfig
from mlops_loop.training.names import GATE_PARAMETERS, PARAMETER_NAMES
from pipeline_code.core.thresholds import DEFAULT_GATE, THRESHOLDS, GateThresholds, SpecError
from pipeline_code.training import evaluate
from tests.support.configs import SAMPLE_CONFIG


def _bounds(field: str) -> tuple[float, float]:
    metadata = GateConfig.model_fields[field].metadata
    low = next(m.ge for m in metadata if hasattr(m, "ge"))
    high = next(m.le for m in metadata if hasattr(m, "le"))
    return low, high


def test_the_config_holds_every_threshold_in_table_order_with_policy_bounds_inside_the_gate_bounds():
    # The thresholds in table order, then the evidence minimums a user may set (the row counts stay defaults).
    assert list(GateConfig.model_fields) == [t.field for t in THRESHOLDS] + ["min_slice_positives", "min_predicted_positives"]
    for t in THRESHOLDS:
        low, high = _bounds(t.field)
        assert t.low <= low <= high <= t.high, t.field


def test_the_config_defaults_and_conversion_are_the_gate_defaults():
    assert GateConfig().thresholds() == DEFAULT_GATE
    assert GateConfig(min_auc=0.8).thresholds().min_auc == 0.8


def test_one_pipeline_parameter_and_one_evaluate_flag_per_threshold():
    assert GATE_PARAMETERS == {
        "min_auc": "MinAuc", "challenger_margin": "ChallengerMargin", "max_slice_regression": "MaxSliceRegression",
        "max_demographic_parity_difference": "MaxDemographicParityDifference", "min_disparate_impact": "MinDisparateImpact",
    }
    assert set(GATE_PARAMETERS.values()) <= set(PARAMETER_NAMES)
    custom = GateThresholds(**{**DEFAULT_GATE.to_dict(), "min_auc": 0.81, "min_disparate_impact": 0.9})
    model = next(iter(load_config(SAMPLE_CONFIG).models.values()))
    parsed = evaluate.build_parser().parse_args(["--model-spec", json.dumps(model.job_spec()), *custom.to_args()])
    assert GateThresholds.from_args(parsed) == custom


def test_a_threshold_outside_the_gate_bounds_is_refused_naming_it():
    with pytest.raises(SpecError, match=r"^invalid gate thresholds: challenger_margin must be in \[-1.0, 1.0\], got 2.0$"):
        GateThresholds(**{**DEFAULT_GATE.to_dict(), "challenger_margin": 2.0})
