"""A seasonal model's drift alarms with no real change, and what a per-model prediction threshold would buy.

Generated weekly store sales with a yearly season and no growth (tests/support/seasonal.py: 15 stores x 15 products,
225 requests a week); a regression model trained on two years with ``week_of_year`` among its features, baselined by the
baseline job's code; each of the third year's 52 weeks is one monitor window, judged by the monitor's own code
(``drift.data_drift`` + ``drift.prediction_drift``, defaults: ``psi_threshold`` 0.1, ``false_alarm_rate`` 0.01). Then
the same weeks with a real change in one input (promotions on half the rows instead of 15 %; prices up 10 %).

It answers (docs/monitoring.md, Seasonal models): how far each feature and the predictions drift in ordinary weeks;
what material PSI the predictions would need to be quiet in every ordinary week, and in how many weeks a real change
still moves them past it, against how often the changed feature's own drift test fires.

    .venv/bin/python bench/seasonal_drift_bench.py  -> bench/results/seasonal_drift.json
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline_code.monitoring import drift  # noqa: E402
from pipeline_code.training.model_io import predict  # noqa: E402
from tests.support import seasonal  # noqa: E402

CHANGES = {"none": None, **seasonal.REAL_CHANGES}


def main() -> None:
    sales = seasonal.world()
    ref = seasonal.reference(Path(tempfile.mkdtemp()), sales)
    statistics = ref["statistics"]
    out: dict = {"weeks": seasonal.WEEKS - seasonal.TRAINING_WEEKS, "rows_per_week": int((sales["week"] == seasonal.TRAINING_WEEKS).sum())}
    for name, change in CHANGES.items():
        psi, prediction, fired = {}, [], {}
        for week in range(seasonal.TRAINING_WEEKS, seasonal.WEEKS):
            frame = seasonal.week(sales, week, change)
            features = drift.data_drift(frame, statistics)["features"]
            for feature, entry in features.items():
                psi.setdefault(feature, []).append(entry["psi"])
                fired[feature] = fired.get(feature, 0) + int(entry["drifted"])
            decided = drift.prediction_drift(predict(ref["model"], frame), statistics, problem_type="regression")
            prediction.append(decided["psi"])
            fired["prediction"] = fired.get("prediction", 0) + int(decided["status"] == drift.FAIL)
        out[name] = {"feature_psi_max": {k: max(v) for k, v in psi.items()},
                     "feature_psi_min": {k: min(v) for k, v in psi.items()},
                     "prediction_psi": {"min": min(prediction), "median": float(np.median(prediction)), "max": max(prediction)},
                     "windows_alarmed": fired, "prediction_psi_by_week": prediction}
    quiet = out["none"]["prediction_psi"]["max"]
    out["prediction_threshold_to_quiet_every_ordinary_week"] = quiet
    for name in seasonal.REAL_CHANGES:
        out[name]["weeks_past_that_prediction_threshold"] = sum(p > quiet for p in out[name]["prediction_psi_by_week"])
    path = Path(__file__).parent / "results" / "seasonal_drift.json"
    path.write_text(json.dumps(out, indent=2, default=float))
    print(json.dumps({k: v for k, v in out.items() if k not in CHANGES}, indent=2))
    for name in CHANGES:
        print(name, json.dumps({k: v for k, v in out[name].items() if k != "prediction_psi_by_week"}, default=float))


if __name__ == "__main__":
    main()
