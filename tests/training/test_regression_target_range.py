"""A regression model answers within its target's declared range: a count (``units_sold``, ``min: 0``) is never
predicted negative, by evaluation, the baselines or serving (they all score through ``model_io.predict``)."""

from __future__ import annotations

from typing import Dict

import numpy as np
import pandas as pd
import pytest

from pipeline_code.training import model_io
from tests.support import store_sales
from tests.support.training import prepare_splits, train_model


@pytest.fixture(scope="module")
def demand(tmp_path_factory) -> Dict[str, str]:
    """The store-sales demand model trained on prepared splits of generated weekly sales (two years, 10,400 rows)."""
    spec = store_sales.make_spec()
    root = tmp_path_factory.mktemp("demand")
    prepared = prepare_splits(root, spec, store_sales.generate())
    return {**prepared, "model": train_model(spec, prepared, root / "model")}


def _scored(demand: Dict[str, str], split: str) -> "tuple[pd.DataFrame, np.ndarray]":
    spec = store_sales.make_spec()
    frame = model_io.read_split(demand[split], spec, what=split)
    return frame, model_io.predict(model_io.load_model(demand["model"]), frame)


def test_a_count_target_is_never_predicted_negative(demand):
    for split in ("train", "validation", "test"):
        _, predicted = _scored(demand, split)
        assert predicted.min() >= 0, f"{split}: {int((predicted < 0).sum())} negative predictions, least {predicted.min():.3f}"


def test_serving_answers_a_count_within_its_range(demand):
    """The endpoint's answers for the rows the model predicts lowest (a price rise, no promotion, a quiet week)."""
    import json

    from pipeline_code.serving import inference

    frame, predicted = _scored(demand, "train")
    lowest = frame.iloc[np.argsort(predicted)[:20]][store_sales.FEATURES]
    records = [{k: (None if pd.isna(v) else (v.item() if hasattr(v, "item") else v)) for k, v in row.items()}
               for row in lowest.to_dict("records")]
    served = inference.model_fn(demand["model"])
    body, _ = inference.output_fn(inference.predict_fn(inference.input_fn(json.dumps(records), "application/json"), served),
                                  "application/json")
    answers = [line["value"] for line in json.loads(body)["predictions"]]
    assert len(answers) == 20 and min(answers) >= 0, answers


@pytest.mark.parametrize("problem_type, output, expected", [
    ("regression", [-0.6, 0.0, 3.2, 900.0, float("nan")], [0.0, 0.0, 3.2, 720.0, float("nan")]),
    ("binary_classification", [-0.6, 0.5, 900.0], [-0.6, 0.5, 900.0]),
])
def test_within_target_range_moves_only_a_regression_value_to_its_declared_bounds(problem_type, output, expected):
    metadata = {"problem_type": problem_type, "target": "hours",
                "dataset": {"columns": [{"name": "distance", "type": "double", "min": 1, "max": 5},
                                        {"name": "hours", "type": "double", "min": 0, "max": 720}]}}
    np.testing.assert_array_equal(model_io.within_target_range(metadata, np.array(output)), np.array(expected))


def test_a_target_without_declared_bounds_is_left_as_predicted():
    metadata = {"problem_type": "regression", "target": "change",
                "dataset": {"columns": [{"name": "change", "type": "double"}]}}
    np.testing.assert_array_equal(model_io.within_target_range(metadata, np.array([-3.0, 4.0])), [-3.0, 4.0])
