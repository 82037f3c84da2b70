"""A wide dataset (an insurer's export: hundreds of columns) through serving's record checks: the time a request takes
grows with its fields, not with fields x features."""

from __future__ import annotations

import time

import numpy as np

from pipeline_code import catalog
from pipeline_code.serving.records import FeatureContract, feature_rows


def _wide(columns: int) -> catalog.Dataset:
    declared = {"policy_id": {"type": "string", "nullable": False}, "event_time": {"type": "timestamp", "nullable": False},
                "claim": {"type": "integer", "min": 0, "max": 1}, "has_garage": {"type": "boolean"},
                "region": {"type": "string", "allowed": ["north", "south"]}}
    declared.update({f"num_feat_{i:03d}": {"type": "double", "min": -100, "max": 100} for i in range(columns)})
    features = {name: name for name in declared if name not in ("policy_id", "event_time", "claim")}
    features["log_num_feat_000"] = "log1p(num_feat_000)"
    return catalog.parse_dataset("motor_claims", {"record_identifier": "policy_id", "event_time": "event_time",
                                                  "labels": ["claim"], "columns": declared, "features": features})


def _seconds(columns: int, rows: int) -> float:
    dataset = _wide(columns)
    names = [f.name for f in dataset.features if f.name != "region"]
    contract = FeatureContract.create(dataset, names, extras=("region",))
    rng = np.random.default_rng(5)
    records = [{**{name: float(v) for name, v in zip(names, rng.normal(size=len(names)))}, "has_garage": True,
                "region": "north"} for _ in range(rows)]
    started = time.perf_counter()
    rows_out = feature_rows(contract, records)
    elapsed = time.perf_counter() - started
    assert rows_out.frame.shape == (rows, len(names) + 1)
    return elapsed


def test_checking_a_wide_request_takes_time_in_proportion_to_its_fields_not_fields_times_features():
    # GIVEN 40 records of 20 features and 40 records of 400 (twenty times the fields each)
    narrow = min(_seconds(20, 40) for _ in range(3))
    wide = min(_seconds(400, 40) for _ in range(3))
    # THEN the wide request takes about twenty times as long (22 here), not 43 times and growing with the square (each
    # field's rule, looked up by name, scanned every column and feature: 500 records of 250 features took 10 s, and 60 s
    # is SageMaker's limit for an answer)
    assert wide / narrow < 30, (narrow, wide)
