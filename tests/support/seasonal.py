"""A seasonal demand model with no real change: weekly store sales (tests/support/store_sales.py) with a yearly season
and no growth, a model trained on two years of it (with ``week_of_year`` among its features), its baselines, and the
monitor's windows of single weeks of the third year. Each week holds one week of the 52-week cycle, so its
``week_of_year`` and its forecasts sit in one part of the two years' distribution though nothing changed.

Shared by tests/monitoring/test_seasonal_drift.py and bench/seasonal_drift_bench.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Dict, Optional

import numpy as np
import pandas as pd

from mlops_cli.local import replay
from pipeline_code.features.compute import compute_features
from pipeline_code.training import metrics_regression
from pipeline_code.training.model_io import predict
from pipeline_code.training.spec import ModelSpec
from tests.support import store_sales
from tests.support.monitoring import fit_with_baseline

TRAINING_WEEKS, WEEKS = 104, 156  # two years of history, then a year of traffic


def _promotions(frame: pd.DataFrame) -> pd.DataFrame:
    """Half the rows on promotion (the history's 15 %): a real change of an input."""
    on = np.random.default_rng(int(frame["week"].iat[0])).random(len(frame)) < 0.5
    return frame.assign(promo=pd.array(on.astype("int64"), dtype="Int64"))


def _prices(frame: pd.DataFrame) -> pd.DataFrame:
    """Every price 10 % up: a real change of an input."""
    return frame.assign(log_price=np.log1p(np.expm1(frame["log_price"]) * 1.10))


REAL_CHANGES: Dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {"promotions on half the rows": _promotions,
                                                                     "prices up 10 %": _prices}


def world(seed: int = 11, stores: int = 15, products: int = 15) -> pd.DataFrame:
    """Three years of weekly sales with a yearly season and no growth, as feature rows (the labels beside them) with
    the week's index (``week``, 0 = :data:`store_sales.START`)."""
    spec = store_sales.make_spec()
    curated = store_sales.generate(stores=stores, products=products, weeks=WEEKS, seed=seed, holidays=(), growth=0.0)
    features = compute_features(curated, spec.catalog_dataset)
    features["units_sold"] = curated["units_sold"].to_numpy()
    features["week"] = (curated["event_time"] - store_sales.START).dt.days.to_numpy() // 7
    return features[features["lag_units_4w_avg"].notna()].reset_index(drop=True)


def reference(root: Path, sales: pd.DataFrame, spec: Optional[ModelSpec] = None, seed: int = 0) -> Dict[str, Any]:
    """A model trained on the first two years (a seeded 80 %; the other 20 %, the validation split, is what the
    prediction baseline scores) and its baselines: ``{"model", "model_dir", "baseline_dir", "spec"}``."""
    spec = spec or store_sales.make_spec()
    history = sales[sales["week"] < TRAINING_WEEKS]
    held_out = np.random.default_rng(seed).random(len(history)) < 0.2
    train, validation = history[~held_out], history[held_out]
    model, docs, model_dir, baseline_dir = fit_with_baseline(root, spec, train, validation,
                                                             objective="reg:squarederror", max_depth=5,
                                                             shap_sample_rows=300)
    # The evaluation the labelled windows are judged against (the quality drop, the bias shift): the validation split's.
    headline = metrics_regression.headline(validation[spec.target].to_numpy(float), predict(model, validation))
    (baseline_dir / "evaluation.json").write_text(json.dumps({"challenger": {"metrics": headline}}, default=float))
    return {"model": model, "model_dir": str(model_dir), "baseline_dir": str(baseline_dir), "spec": spec,
            "statistics": docs["statistics"]}


def week(sales: pd.DataFrame, index: int, mutate: Optional[Callable[[pd.DataFrame], pd.DataFrame]] = None) -> pd.DataFrame:
    """The requests of week ``index`` (each store-product's, on that week's Monday), optionally changed by ``mutate``."""
    frame = sales[sales["week"] == index].copy()
    if mutate is not None:
        frame = mutate(frame)
    frame["inference_id"] = [f"w{index}-{i}" for i in range(len(frame))]
    frame["inference_time"] = (store_sales.START + pd.Timedelta(weeks=int(index))).strftime("%Y-%m-%dT10:00:00Z")
    return frame.reset_index(drop=True)


def write_week(root: Path, ref: Dict[str, Any], frame: pd.DataFrame, labels: bool = True) -> Dict[str, Optional[str]]:
    """``frame`` scored by the reference model as data capture (and its labels) under ``root``."""
    spec = ref["spec"]
    capture_dir, labels_dir = root / "capture", root / "labels"
    replay.write_capture(spec, frame, predict(ref["model"], frame), str(capture_dir))
    if labels:
        replay.write_labels(spec, frame, str(labels_dir))
    return {"capture": str(capture_dir), "labels": str(labels_dir) if labels else None}
