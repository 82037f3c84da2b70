"""A wide dataset (an insurer's export: hundreds of columns) through serving's record checks: the work a request takes
grows with its fields, not with fields x features. The work is counted as lines of the app's own code executed, not
timed: the count is the same on a busy CI machine as on an idle one."""

from __future__ import annotations

import sys
from pathlib import Path

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


_APP_CODE = str(Path(__import__("pipeline_code").__file__).parent)


def _lines_run(columns: int, rows: int) -> int:
    dataset = _wide(columns)
    names = [f.name for f in dataset.features if f.name != "region"]
    contract = FeatureContract.create(dataset, names, extras=("region",))
    rng = np.random.default_rng(5)
    records = [{**{name: float(v) for name, v in zip(names, rng.normal(size=len(names)))}, "has_garage": True,
                "region": "north"} for _ in range(rows)]
    lines = 0

    def count(frame, event, arg):  # a line of the app's code; libraries (pandas, numpy) are not traced
        nonlocal lines
        lines += event == "line"
        return count

    def enter(frame, event, arg):
        return count if frame.f_code.co_filename.startswith(_APP_CODE) else None

    previous = sys.gettrace()  # a coverage tool's or a debugger's, put back after
    sys.settrace(enter)
    try:
        rows_out = feature_rows(contract, records)
    finally:
        sys.settrace(previous)
    assert rows_out.frame.shape == (rows, len(names) + 1)
    return lines


def test_checking_a_wide_request_takes_work_in_proportion_to_its_fields_not_fields_times_features():
    # GIVEN 40 records of 20 features and 40 records of 400 (twenty times the fields each)
    narrow = _lines_run(20, 40)
    wide = _lines_run(400, 40)
    # THEN the wide request takes about twenty times the work, not growing with the square (each
    # field's rule, looked up by name, scanned every column and feature: 500 records of 250 features took 10 s, and 60 s
    # is SageMaker's limit for an answer)
    assert wide / narrow < 30, (narrow, wide)
