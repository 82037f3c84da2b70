"""A multiclass and a regression model for the serving tests, built here (not from the sample config).

One small dataset, ``customer_plans``, declared below, carries two labels: ``plan`` (which of three
plans a customer picks: multiclass) and ``monthly_spend`` (regression). The models ``plan`` and
``spend`` read the same features. Each is trained on generated records with the project's own
encoding (:func:`pipeline_code.training.train.build_feature_metadata` / ``encode``) and the XGBoost
parameters train.py uses for its problem type, then saved as train.py saves a model, so
``inference.model_fn`` loads it like any artefact. ``docs/invocation-contract.md`` shows requests to
these two models; ``tests/serving/test_contract_doc.py`` re-runs them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import pandas as pd
import xgboost as xgb

from pipeline_code import catalog
from pipeline_code.core import problem
from pipeline_code.features.compute import compute_features
from pipeline_code.training.spec import ModelSpec, parse_model_spec
from pipeline_code.training.train import Hyperparameters, TrainedModel, build_feature_metadata, encode, predict, save_model

PLANS = ["basic", "standard", "premium"]
DECLARATION: Dict[str, Any] = {
    "record_identifier": "customer_id",
    "event_time": "event_time",
    "labels": ["plan", "monthly_spend"],
    "columns": {
        "customer_id": {"type": "string", "nullable": False},
        "event_time": {"type": "timestamp", "nullable": False},
        "tenure_months": {"type": "integer", "nullable": False, "min": 0, "max": 600},
        "support_calls_90d": {"type": "integer", "min": 0, "max": 1000},
        "region": {"type": "string", "nullable": False, "allowed": ["north", "south", "east", "west"]},
        "gender": {"type": "string", "allowed": ["female", "male", "other"]},
        "plan": {"type": "string", "allowed": PLANS},
        "monthly_spend": {"type": "double", "min": 0, "max": 10000},
    },
    "features": {
        "tenure_months": "tenure_months",
        "log_support_calls_90d": "log1p(support_calls_90d)",
        "region": "region",
        "gender": "gender",
    },
}
DATASET = catalog.parse_dataset("customer_plans", DECLARATION)
FEATURES = ["tenure_months", "log_support_calls_90d", "region"]
MODELS = {"plan": ("plan", problem.MULTICLASS), "spend": ("monthly_spend", problem.REGRESSION)}
ROWS = 1200


@dataclass
class ProblemModel:
    """One trained model of :data:`DATASET` and rows to score it on."""

    name: str
    spec: ModelSpec
    model_dir: str
    raw: pd.DataFrame  # curated records (labels dropped), as a client would send raw fields
    features: pd.DataFrame  # the same records' features, as compute_features gives them
    outputs: np.ndarray  # train.predict on ``features``: (n, K) probabilities or (n,) values

    def raw_records(self, n: int) -> List[Dict[str, Any]]:
        return [{k: _json(v) for k, v in row.items()} for row in self.raw.iloc[:n].to_dict("records")]

    def feature_records(self, n: int) -> List[Dict[str, Any]]:
        return [{k: _json(v) for k, v in row.items()} for row in self.features[FEATURES].iloc[:n].to_dict("records")]


def _json(value: Any) -> Any:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat().replace("+00:00", "Z")
    return value.item() if hasattr(value, "item") else value


def spec(name: str) -> ModelSpec:
    target, problem_type = MODELS[name]
    return parse_model_spec({"name": name, "dataset": DATASET.to_declaration(), "target": target, "features": FEATURES,
                             "sensitive_attribute": "gender", "problem_type": problem_type})


def curated(rows: int, seed: int) -> pd.DataFrame:
    """Generated records of :data:`DATASET`: the plan follows tenure and support calls, the spend the plan."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(0, 120, rows)
    calls = rng.poisson(2.0, rows).astype("float64")
    calls[rng.random(rows) < 0.1] = np.nan
    region = rng.choice(["north", "south", "east", "west"], rows)
    pull = tenure / 40.0 - np.nan_to_num(calls, nan=2.0) / 3.0 + (region == "north") * 0.8 + rng.normal(0, 0.6, rows)
    plan_code = np.digitize(pull, [0.3, 1.6])
    spend = 20.0 + 25.0 * plan_code + 0.15 * tenure + rng.normal(0, 3.0, rows)
    start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    return pd.DataFrame({
        "customer_id": [f"CUS-{i:07d}" for i in range(rows)],
        "event_time": [start + dt.timedelta(hours=int(h)) for h in rng.integers(0, 24 * 90, rows)],
        "tenure_months": pd.array(tenure, dtype="Int64"),
        "support_calls_90d": pd.array([None if np.isnan(c) else int(c) for c in calls], dtype="Int64"),
        "region": region,
        "gender": rng.choice(["female", "male", "other"], rows),
        "plan": [PLANS[k] for k in plan_code],
        "monthly_spend": np.clip(spend, 0, None),
    })


def train(name: str, root: Path, *, rows: int = ROWS, seed: int = 5) -> ProblemModel:
    """Train ``name`` (``plan`` or ``spend``) on generated records and save it under ``root``."""
    model_spec = spec(name)
    records = curated(rows, seed)
    frame = compute_features(records, DATASET)
    if model_spec.problem_type == problem.MULTICLASS:
        label = records[model_spec.target].map({c: i for i, c in enumerate(model_spec.classes)}).to_numpy(dtype=np.float64)
    else:
        label = records[model_spec.target].to_numpy(dtype=np.float64)
    metadata = build_feature_metadata(model_spec, frame)
    metadata["training"] = {"trained_at": "2026-11-26T08:32:37.500000+00:00"}
    params = Hyperparameters(max_depth=3, eta=0.3).xgb_params(nthread=2, problem_type=model_spec.problem_type,
                                                              num_class=len(model_spec.classes))
    matrix = xgb.DMatrix(encode(frame, metadata), label=label, enable_categorical=True, missing=np.nan)
    model = TrainedModel(estimator=xgb.train(params, matrix, num_boost_round=20), metadata=metadata)
    model_dir = root / name
    save_model(model, str(model_dir))
    raw = records.drop(columns=list(DATASET.labels))
    return ProblemModel(name, model_spec, str(model_dir), raw, frame, predict(model, frame))
