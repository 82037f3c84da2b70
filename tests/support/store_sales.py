"""Weekly demand per store-product, declared and generated here with known truth (not from the sample config).

A count target, right-skewed with many zeros: ``units_sold`` of a store-product in a week, negative binomial around
``exp(store + product + 0.5 sin(2 pi week / 52) + 0.7 promo - 1.5 log(price / list price) + 0.25 years)``, with the
previous week's units and the last four weeks' mean as lagged features, and ``holiday`` weeks in which every store
sells nothing. The store-product id recurs every week (a record identifier at many event times).
"""

from __future__ import annotations

from typing import Any, Dict, Sequence

import numpy as np
import pandas as pd

from pipeline_code import catalog
from pipeline_code.training.spec import ModelSpec, parse_model_spec

START = pd.Timestamp("2025-01-06", tz="UTC")
REGIONS = ["north", "south", "east", "west"]
FORMATS = ["small", "medium", "large"]
DECLARATION: Dict[str, Any] = {
    "name": "store_sales",
    "description": "Weekly units sold per store-product; label: units sold that week.",
    "record_identifier": "sp_id",
    "event_time": "event_time",
    "labels": ["units_sold"],
    "columns": {
        "sp_id": {"type": "string", "nullable": False},
        "event_time": {"type": "timestamp", "nullable": False},
        "region": {"type": "string", "nullable": False, "allowed": REGIONS},
        "store_format": {"type": "string", "nullable": False, "allowed": FORMATS},
        "price": {"type": "double", "nullable": False, "min": 0, "max": 1000},
        "promo": {"type": "boolean", "nullable": False},
        "week_of_year": {"type": "integer", "nullable": False, "min": 1, "max": 53},
        "lag_units_1w": {"type": "integer", "min": 0},
        "lag_units_4w_avg": {"type": "double", "min": 0},
        "units_sold": {"type": "integer", "min": 0, "description": "Label: units sold in the week"},
    },
    "features": {
        "log_price": "log1p(price)",
        "promo": "promo",
        "region": "region",
        "week_of_year": "week_of_year",
        "lag_units_1w": "lag_units_1w",
        "lag_units_4w_avg": "lag_units_4w_avg",
        "store_format": "store_format",
    },
}
FEATURES = ["log_price", "promo", "region", "week_of_year", "lag_units_1w", "lag_units_4w_avg"]


def dataset() -> catalog.Dataset:
    return catalog.load_dataset(DECLARATION)


def make_spec(**overrides: Any) -> ModelSpec:
    """The regression model ``demand`` on :data:`DECLARATION` (any spec key overridable)."""
    return parse_model_spec({"name": "demand", "dataset": DECLARATION, "target": "units_sold", "features": FEATURES,
                             "sensitive_attribute": "store_format", "slices": ["region"], "problem_type": "regression",
                             "primary_metric": "rmse", **overrides})


def generate(stores: int = 10, products: int = 10, weeks: int = 104, seed: int = 3,
             holidays: Sequence[str] = ("2025-12-22",), growth: float = 0.25) -> pd.DataFrame:
    """Curated records (the ETL's types) of ``stores`` x ``products`` store-products over ``weeks`` weeks from
    :data:`START`; every sale of a week in ``holidays`` is 0; demand grows by ``growth`` (log units) a year (0: the
    same world every year, only its season moves)."""
    rng = np.random.default_rng(seed)
    store_region = rng.choice(REGIONS, stores)
    store_format = rng.integers(0, len(FORMATS), stores)
    store_effect = rng.normal(0, 0.5, stores) + np.array([-0.4, 0.0, 0.5])[store_format]
    product_effect = rng.normal(0.3, 1.2, products)  # some products sell about nothing a week, some dozens
    list_price = rng.uniform(1, 40, products).round(2)
    times = pd.DatetimeIndex([START + pd.Timedelta(weeks=w) for w in range(weeks)])
    week_of_year = times.isocalendar().week.to_numpy().astype(int)
    closed = times.isin(pd.DatetimeIndex(pd.to_datetime(list(holidays), utc=True)))
    frames = []
    for s in range(stores):
        for p in range(products):
            promo = rng.random(weeks) < 0.15
            price = list_price[p] * np.where(promo, 0.75, 1.0) * rng.uniform(0.95, 1.05, weeks)
            mean = np.exp(store_effect[s] + product_effect[p] + 0.5 * np.sin(2 * np.pi * week_of_year / 52) + 0.7 * promo
                          - 1.5 * np.log(price / list_price[p]) + growth * np.arange(weeks) / 52)
            units = np.where(closed, 0, rng.negative_binomial(2.0, 2.0 / (2.0 + mean)))
            history = pd.Series(units, dtype="float64")
            frames.append(pd.DataFrame({
                "sp_id": f"s{s:02d}-p{p:02d}", "event_time": times, "region": store_region[s],
                "store_format": FORMATS[store_format[s]], "price": price.round(2), "promo": promo,
                "week_of_year": week_of_year, "lag_units_1w": history.shift(1).astype("Int64"),
                "lag_units_4w_avg": history.shift(1).rolling(4).mean().round(3), "units_sold": units.astype("int64"),
            }))
    return pd.concat(frames, ignore_index=True)
