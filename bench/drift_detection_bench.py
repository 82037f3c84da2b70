"""Detection rate per scenario and false-alarm rate on stable windows (churn model, generated data).

Windows of 3000 rows, 5 seeds per scenario, 20 stable seeds. A data-drift scenario is
detected when a feature PSI or the prediction PSI exceeds 0.2 (status fail); concept drift
when the AUC drop on fully-labelled windows exceeds 0.05; the degraded slice when the
demographic-parity or group positive-rate check fails. A false alarm = any failed check on
a stable window. ``stat_test_warn_rate``: share of windows with a KS / chi-square p < 0.01
(informational warn level, not an alarm).

    .venv/bin/python bench/drift_detection_bench.py  -> bench/results/drift_detection.json
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
from tests.monitoring.helpers import build_reference, churn_spec, run, write_window  # noqa: E402

SEEDS = 5
STABLE = 20


def degrade(frame):
    frame = frame.copy()
    female = frame["gender"] == "female"
    frame.loc[female, "contract_type"] = "month-to-month"
    frame.loc[female, "log_support_calls_90d"] = np.log1p(6.0)
    return frame


def main() -> int:
    started = time.perf_counter()
    spec = churn_spec()
    root = Path(tempfile.mkdtemp(prefix="drift-bench-"))
    ref = build_reference(root / "ref", spec)
    scenarios = {f"data_drift_{m}": {"drift": m} for m in (0.1, 0.2, 0.4, 0.8)}
    scenarios["concept_drift_1.0"] = {"concept_drift": 1.0, "label_coverage": 1.0}
    scenarios["concept_drift_0.5"] = {"concept_drift": 0.5, "label_coverage": 1.0}
    scenarios["degraded_slice_gender_female"] = {"mutate": degrade}
    results = {}
    k = 0
    for name, kw in scenarios.items():
        hits, test_hits, details = 0, 0, []
        for s in range(SEEDS):
            k += 1
            rep = run(spec, ref, write_window(root / f"w{k}", spec, ref["model"], rows=3000, seed=1000 + k, **kw), str(root / f"o{k}"))
            fails = sorted({c["check"] for c in rep["checks"] if c["status"] == "fail"})
            if name.startswith("concept"):
                hit = "auc_drop" in fails
            elif name.startswith("degraded"):
                hit = bool({"demographic_parity_difference", "group_positive_rate_change"} & set(fails))
            else:
                hit = rep["summary"]["drifted_feature_count"] > 0 or "prediction_psi" in fails
            hits += hit
            test_hits += any(c["status"] == "warn" and c["check"] in ("ks_p_value", "chi_square_p_value") for c in rep["checks"])
            details.append({"seed": 1000 + k, "failed_checks": fails, "max_psi": rep["summary"]["data_drift_max_psi"],
                            "auc_drop": rep["summary"]["auc_drop"]})
        results[name] = {"windows": SEEDS, "detection_rate": hits / SEEDS, "stat_test_warn_rate": test_hits / SEEDS,
                         "runs": details}
        print(name, results[name]["detection_rate"], "test-warn", test_hits / SEEDS)
    alarms, warns, stable = 0, 0, []
    for s in range(STABLE):
        k += 1
        rep = run(spec, ref, write_window(root / f"w{k}", spec, ref["model"], rows=3000, seed=5000 + s, label_coverage=1.0), str(root / f"o{k}"))
        fails = sorted({c["check"] for c in rep["checks"] if c["status"] == "fail"})
        alarms += bool(fails)
        warns += any(c["status"] == "warn" and c["check"] in ("ks_p_value", "chi_square_p_value") for c in rep["checks"])
        stable.append({"seed": 5000 + s, "failed_checks": fails, "max_psi": rep["summary"]["data_drift_max_psi"]})
    out = {"model": "churn", "window_rows": 3000, "psi_threshold": 0.2, "scenarios": results,
           "stable": {"windows": STABLE, "false_alarm_rate": alarms / STABLE,
                      "stat_test_warn_rate": warns / STABLE, "runs": stable},
           "wall_s": round(time.perf_counter() - started, 1)}
    print("false alarm rate", out["stable"]["false_alarm_rate"], "test-warn", out["stable"]["stat_test_warn_rate"], "wall", out["wall_s"])
    os.makedirs(Path(__file__).parent / "results", exist_ok=True)
    (Path(__file__).parent / "results" / "drift_detection.json").write_text(json.dumps(out, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
