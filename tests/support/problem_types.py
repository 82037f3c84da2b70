"""A dataset declared for the problem-type tests, and the models of each type on it.

Declared here, not read from config/mlops-loop.yaml, so no test depends on the sample model line-up:
``segment`` is a 3-class target, ``basket_value`` a numeric one, ``age_band`` the sensitive attribute.
"""

from __future__ import annotations

import copy
from typing import Any, Dict

from pipeline_code import catalog
from pipeline_code.core.problem import MULTICLASS
from pipeline_code.training.spec import ModelSpec, parse_model_spec

DATASET: Dict[str, Any] = {
    "name": "shop_orders",
    "description": "Orders of a web shop; labels: the customer's segment and the basket value.",
    "record_identifier": "order_id",
    "event_time": "event_time",
    "labels": ["segment", "basket_value"],
    "columns": {
        "order_id": {"type": "string", "nullable": False},
        "event_time": {"type": "timestamp", "nullable": False},
        "visits_30d": {"type": "integer", "min": 0, "max": 500},
        "session_minutes": {"type": "double", "min": 0, "max": 1000},
        "discount_rate": {"type": "double", "min": 0, "max": 1},
        "channel": {"type": "string", "allowed": ["web", "app", "store"]},
        "age_band": {"type": "string", "allowed": ["young", "middle", "senior"]},
        "segment": {"type": "string", "allowed": ["bronze", "silver", "gold"]},
        "basket_value": {"type": "double", "min": 0, "max": 10000},
    },
    "features": {
        "visits_30d": "visits_30d",
        "log_session_minutes": "log1p(session_minutes)",
        "discount_rate": "discount_rate",
        "channel": "channel",
        "age_band": "age_band",
    },
}
FEATURES = ["visits_30d", "log_session_minutes", "discount_rate", "channel"]
# One model of each type on DATASET, as a config declares them (served serverless in dev by with_problem_types).
MODELS: Dict[str, Dict[str, Any]] = {
    "order-segment": {"problem_type": "multiclass_classification", "target": "segment", "primary_metric": "macro_f1",
                      "gate": {"min_disparate_impact": 0.6}},
    "basket-value": {"problem_type": "regression", "target": "basket_value"},
}


def with_problem_types(raw: Dict[str, Any]) -> Dict[str, Any]:
    """``raw`` (a config mapping, changed in place and returned) with DATASET declared as ``shop_orders`` and the
    MODELS on it added to the end of its ``dev`` environment's models."""
    raw["datasets"]["shop_orders"] = {k: v for k, v in copy.deepcopy(DATASET).items() if k != "name"}
    for name, extra in MODELS.items():
        raw["models"][name] = {"description": f"{name}: one model of its problem type.", "dataset": "shop_orders",
                               "features": FEATURES, "sensitive_attribute": "age_band", "slices": ["channel"],
                               "serving": {"mode": "serverless"}, **copy.deepcopy(extra)}
    raw["environments"]["dev"]["models"] = [*raw["environments"]["dev"]["models"], *MODELS]
    return raw


def dataset() -> catalog.Dataset:
    return catalog.load_dataset(DATASET)


def make_spec(problem_type: str, **overrides: Any) -> ModelSpec:
    """The multiclass model ``order-segment`` or the regression model ``basket-value`` (any spec key overridable)."""
    multiclass = problem_type == MULTICLASS
    return parse_model_spec({
        "name": "order-segment" if multiclass else "basket-value",
        "dataset": DATASET,
        "target": "segment" if multiclass else "basket_value",
        "features": FEATURES,
        "sensitive_attribute": "age_band",
        "slices": ["channel"],
        "problem_type": problem_type,
        **overrides,
    })
