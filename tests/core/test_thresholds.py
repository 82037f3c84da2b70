"""The gate thresholds: one table drives the config, the pipeline parameters and the job flags."""

from __future__ import annotations

import json

import pytest

from mlops_loop.config import load_config
from mlops_loop.config.gate import GateConfig
from mlops_loop.training.names import GATE_PARAMETERS, PARAMETER_NAMES
from pipeline_code.core.thresholds import (DEFAULT_GATE, EVIDENCE, MISSING_GROUP, THRESHOLDS, GateThresholds, SpecError,
                                           fairness_shortfall)
from pipeline_code.training import evaluate
from tests.support.configs import SAMPLE_CONFIG


def _bounds(field: str) -> tuple[float, float]:
    metadata = GateConfig.model_fields[field].metadata
    low = next(getattr(m, "ge", None) if getattr(m, "ge", None) is not None else m.gt
               for m in metadata if getattr(m, "ge", None) is not None or getattr(m, "gt", None) is not None)
    high = next(m.le for m in metadata if hasattr(m, "le"))
    return low, high


def test_the_config_holds_every_threshold_in_table_order_with_policy_bounds_inside_the_gate_bounds():
    # The thresholds in table order, then every evidence minimum, each at least the gate code's lowest value.
    assert list(GateConfig.model_fields) == [t.field for t in THRESHOLDS] + [name for name, _, _ in EVIDENCE]
    for t in THRESHOLDS:
        low, high = _bounds(t.field)
        assert t.low <= low <= high <= t.high, t.field
    for name, lowest, _ in EVIDENCE:
        assert _bounds(name)[0] >= lowest, name


def test_the_config_defaults_and_conversion_are_the_gate_defaults():
    assert GateConfig().thresholds() == DEFAULT_GATE
    assert GateConfig(min_auc=0.8).thresholds().min_auc == 0.8


def test_one_pipeline_parameter_and_one_evaluate_flag_per_threshold():
    assert GATE_PARAMETERS == {
        "min_auc": "MinAuc", "challenger_margin": "ChallengerMargin", "max_slice_regression": "MaxSliceRegression",
        "max_demographic_parity_difference": "MaxDemographicParityDifference", "min_disparate_impact": "MinDisparateImpact",
        "max_calibration_error": "MaxCalibrationError", "max_class_recall_drop": "MaxClassRecallDrop",
    }
    assert set(GATE_PARAMETERS.values()) <= set(PARAMETER_NAMES)
    custom = GateThresholds(**{**DEFAULT_GATE.to_dict(), "min_auc": 0.81, "min_disparate_impact": 0.9})
    model = next(iter(load_config(SAMPLE_CONFIG).models.values()))
    parsed = evaluate.build_parser().parse_args(["--model-spec", json.dumps(model.job_spec()), *custom.to_args()])
    assert GateThresholds.from_args(parsed) == custom


def test_a_threshold_outside_the_gate_bounds_is_refused_naming_it():
    with pytest.raises(SpecError, match=r"^invalid gate thresholds: min_auc must be in \[0.0, 1.0\], got 1.5$"):
        GateThresholds(**{**DEFAULT_GATE.to_dict(), "min_auc": 1.5})
    # A margin or slice regression of RMSE or MAE is in the target's units: no upper bound here, but finite
    assert GateThresholds(**{**DEFAULT_GATE.to_dict(), "challenger_margin": 1000.0}).challenger_margin == 1000.0
    with pytest.raises(SpecError, match=r"^invalid gate thresholds: challenger_margin must be a finite number, got inf$"):
        GateThresholds(**{**DEFAULT_GATE.to_dict(), "challenger_margin": float("inf")})


def test_a_fairness_shortfall_names_the_groups_largest_first_and_never_counts_the_missing_group():
    """GIVEN rows per group of a sensitive attribute WHEN fewer than two reach min_group_rows THEN the shortfall says
    how many do and lists the groups, largest first (six at most); the nulls' group neither counts nor shows."""
    assert fairness_shortfall({"a": 120, "b": 100, "c": 3}, 100) is None
    assert fairness_shortfall({"b": 99, "a": 102, "c": 99, MISSING_GROUP: 500}, 100) == (
        "1 group has >= 100 rows (a: 102, b: 99, c: 99), and a comparison takes two")
    many = {f"g{i}": i for i in range(1, 9)}
    assert fairness_shortfall(many, 50) == (
        "0 groups have >= 50 rows (g8: 8, g7: 7, g6: 6, g5: 5, g4: 4, g3: 3 and 2 more), and a comparison takes two")
    assert fairness_shortfall({}, 1) == "0 groups have >= 1 rows (no values), and a comparison takes two"


def test_the_row_minimums_are_config_keys_and_reach_the_gate():
    gate = GateConfig(min_slice_rows=20, min_group_rows=40).thresholds()
    assert (gate.min_slice_rows, gate.min_group_rows) == (20, 40)
    assert gate.evidence_args()[:4] == ["--min-slice-rows", "20", "--min-group-rows", "40"]


def test_every_primary_metric_has_a_range():
    """The floor and margin checks read each primary metric's range: a metric added without one would fail there."""
    from pipeline_code.core.problem import METRIC_RANGE, PRIMARY_METRICS

    assert {m for metrics in PRIMARY_METRICS.values() for m in metrics} <= set(METRIC_RANGE)
