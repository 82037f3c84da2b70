"""Power study of the drift decision: how often it alarms, by drift size and window size, next to what the drift
does to the model - and how often it alarms when nothing drifted.

The churn sample model is trained on generated data (tests/support/monitoring.py); each window is a fresh
draw of the generator with covariate drift ``drift`` (its knob moves several raw columns at once; the labels
follow the drifted inputs, so the window's AUC is the quality the model really has there), scored by the
model and decided by the monitor's own code (``drift.data_drift`` + ``drift.prediction_drift``, calibrated
thresholds at the default ``psi_threshold`` 0.1 and ``false_alarm_rate`` 0.01). Next to each verdict: the
window's AUC drop against the model's AUC on undrifted data, and the verdict of the fixed rule the
calibration replaced (any PSI > 0.2).

Grid: drift 0.05, 0.1, 0.2, 0.4, 0.8 x window rows 300, 1000, 3000, 10000; then 1, 2 or 4 numeric inputs
shifted by 0.1, 0.25 or 0.5 training sd (labels unchanged: an upstream change, not a new world) x 1,000 and
10,000 rows; 5 windows per cell. Stable: 120 undrifted windows of 300 and 3000 rows. Every window's features are also written as parquet under
``$TMPDIR/drift-power-windows/`` for ``bench/evidently_compare.py``, which runs Evidently on the same windows.

    .venv/bin/python bench/drift_power_bench.py  -> bench/results/drift_power.json
    .venv/bin/python bench/drift_power_bench.py --model fraud  -> bench/results/drift_power_fraud.json

``--model`` runs the same study on another model of ``config/mlops-loop.yaml``, trained by the loop's own
prepare and train jobs and baselined by its baseline code: the rare-event ``fraud`` (about 2 % positives; its
windows also report PR-AUC, since with few positives a window's AUC is mostly noise), the multiclass
``ticket-routing`` and the regression ``delivery-eta``. A window's quality is the model's primary metric (AUC,
macro-F1, R²); its "drop" is the metric's worsening against undrifted data as the monitor measures it
(absolute for AUC, F1 and R², relative for losses and errors); the result keys keep their binary names
(``auc``, ``auc_drop``, ``reference_auc``) and ``primary_metric`` says what they hold. Churn is the frozen
test sample's.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from mlops_cli.local import replay  # noqa: E402
from pipeline_code.core.problem import MULTICLASS, REGRESSION  # noqa: E402
from pipeline_code.monitoring import drift as drift_mod  # noqa: E402
from pipeline_code.training import metrics  # noqa: E402
from pipeline_code.training.model_io import predict  # noqa: E402
from tests.support.monitoring import build_reference, churn_spec  # noqa: E402

DRIFTS = (0.05, 0.1, 0.2, 0.4, 0.8)
ROWS = (300, 1000, 3000, 10000)
PER_CELL = 5
STABLE = 120
# Quality tolerances the alarm rate is reported against: the monitor's default max_auc_drop, and a stricter one.
TOLERANCES = (0.05, 0.02)


WINDOWS = Path(tempfile.gettempdir()) / "drift-power-windows"


# Shifted-feature grid: k numeric inputs moved by s of their training standard deviation (an upstream change the
# labels do not follow: the truth is the undrifted one), on windows of 1,000 and 10,000 rows.
SHIFTED = (1, 2, 4)
SHIFTS = (0.1, 0.25, 0.5)
SHIFT_ROWS = (1000, 10000)


def quality(spec, model, frame) -> tuple:
    """(scores for prediction drift, prediction-drift keywords, the primary metric's value, extras) of one window."""
    p = predict(model, frame)
    if spec.problem_type == MULTICLASS:
        from pipeline_code.training import metrics_multiclass

        classes = list(spec.classes)
        P = np.asarray(p, dtype=np.float64).reshape(len(frame), len(classes))
        index = {c: i for i, c in enumerate(classes)}
        y = np.array([index[str(v)] for v in frame[spec.target]], dtype=np.int64)
        head = metrics_multiclass.headline(y, P, classes)
        probabilities = pd.DataFrame(P, columns=[f"proba:{c}" for c in classes])
        return (P.argmax(axis=1).astype(np.float64), {"problem_type": MULTICLASS, "classes": classes,
                                                      "probabilities": probabilities}, head[spec.primary_metric], {})
    y = frame[spec.target].to_numpy(dtype=np.float64)
    if spec.problem_type == REGRESSION:
        from pipeline_code.training import metrics_regression

        values = np.asarray(p, dtype=np.float64)
        return values, {"problem_type": REGRESSION}, metrics_regression.headline(y, values)[spec.primary_metric], {}
    head = metrics.headline(y, p, model.threshold)
    return p, {}, head["auc"], {"pr_auc": head.get("pr_auc"), "positives": int(y.sum())}


def drop(spec, reference: float, value: float) -> float:
    """How much worse ``value`` is than ``reference``, as the monitor measures it (``quality.quality_drop``:
    absolute where higher is better - AUC, F1, R² - relative for losses and errors)."""
    from pipeline_code.monitoring.quality import quality_drop

    return quality_drop(spec.primary_metric, value, reference)


def window(spec, ref, rows, seed, drift, shift=None):
    frame = replay.traffic(spec, rows, seed=seed, drift=drift)
    if shift is not None:
        columns, size = shift
        statistics = ref["docs"]["statistics"]["features"]
        for name in columns:
            frame[name] = frame[name].astype(np.float64) + size * statistics[name]["std"]
    frame[list(spec.features)].to_parquet(WINDOWS / f"{seed}.parquet")  # for bench/evidently_compare.py
    scores, typed, value, extras = quality(spec, ref["model"], frame)
    statistics = ref["docs"]["statistics"]
    data = drift_mod.data_drift(frame, statistics)
    prediction = drift_mod.prediction_drift(scores, statistics, **typed)
    fixed = any(e.get("psi", 0) > 0.2 for e in data["features"].values()) or (prediction.get("psi") or 0) > 0.2
    return {"alarm": bool(data["drifted_features"]) or prediction["status"] == drift_mod.FAIL, "fixed_rule_alarm": bool(fixed),
            "drifted": data["drifted_features"], "max_score": data["drift_score"], "prediction_score": prediction.get("drift_score"),
            "auc": value, **extras}


def _cell_name(cell) -> str:
    if "shifted_features" in cell:
        return f"{cell['shifted_features']} features +{cell['shift_sd']} sd x {cell['rows']} rows"
    return f"drift {cell['drift']} x {cell['rows']} rows"


def _spec(model: str):
    if model == "churn":
        return churn_spec()
    from mlops_cli.local.run_loop import DEFAULT_CONFIG, load_config
    from pipeline_code.training.spec import parse_model_spec

    return parse_model_spec(load_config(str(DEFAULT_CONFIG), "dev")["models"][model])


def trained_reference(spec, root: Path) -> dict:
    """The model trained and baselined by the loop's own jobs on 8,000 generated rows (any problem type)."""
    from pipeline_code.training import baseline, prepare
    from pipeline_code.training.model_io import load_model
    from tests.support.training import train_model, write_inputs

    inputs = write_inputs(root / "inputs", spec.catalog_dataset, 8000, seed=1, signal_features=spec.features)
    out = root / "prepared"
    assert prepare.main(["--model-spec", spec.to_json(), "--features-dir", inputs["features"], "--labels-dir",
                         inputs["labels"], "--frozen-test-dir", str(root / "no-frozen-test"), "--output-dir", str(out)]) == 0
    model_dir = train_model(spec, {s: str(out / s) for s in ("train", "validation", "test")}, root / "model")
    model = load_model(model_dir)
    train, validation = pd.read_parquet(out / "train"), pd.read_parquet(out / "validation")
    return {"model": model, "docs": baseline.compute_baseline(spec, model, train, validation, shap_sample_rows=500),
            "train": train}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="churn")
    args = parser.parse_args()
    started = time.perf_counter()
    spec = _spec(args.model)
    root = Path(tempfile.mkdtemp(prefix="power-"))
    ref = build_reference(root, spec) if args.model == "churn" else trained_reference(spec, root)
    WINDOWS.mkdir(exist_ok=True)
    ref["train"][list(spec.features)].to_parquet(WINDOWS / "reference.parquet")
    reference_auc = float(np.mean([window(spec, ref, 20000, 9000 + s, 0.0)["auc"] for s in range(3)]))
    cells, seed = [], 10_000
    for drift in DRIFTS:
        for rows in ROWS:
            runs = []
            for _ in range(PER_CELL):
                seed += 1
                result = window(spec, ref, rows, seed, drift)
                result["auc_drop"] = drop(spec, reference_auc, result["auc"])
                result["seed"] = seed
                runs.append(result)
            cells.append({"drift": drift, "rows": rows, "alarm_rate": np.mean([r["alarm"] for r in runs]),
                          "fixed_rule_alarm_rate": np.mean([r["fixed_rule_alarm"] for r in runs]),
                          "mean_auc_drop": float(np.mean([r["auc_drop"] for r in runs])), "runs": runs})
            print(f"drift {drift} rows {rows}: alarm {cells[-1]['alarm_rate']:.0%} fixed {cells[-1]['fixed_rule_alarm_rate']:.0%} "
                  f"auc drop {cells[-1]['mean_auc_drop']:+.3f}")
    numeric = [f for f in spec.features if not spec.is_categorical(f)]
    for k in SHIFTED:
        for size in SHIFTS:
            for rows in SHIFT_ROWS:
                runs = []
                for _ in range(PER_CELL):
                    seed += 1
                    result = window(spec, ref, rows, seed, 0.0, shift=(numeric[:k], size))
                    result["auc_drop"] = drop(spec, reference_auc, result["auc"])
                    result["seed"] = seed
                    runs.append(result)
                cells.append({"drift": 0.0, "shifted_features": k, "shift_sd": size, "rows": rows,
                              "alarm_rate": np.mean([r["alarm"] for r in runs]),
                              "fixed_rule_alarm_rate": np.mean([r["fixed_rule_alarm"] for r in runs]),
                              "mean_auc_drop": float(np.mean([r["auc_drop"] for r in runs])), "runs": runs})
                print(f"{k} features shifted {size} sd, rows {rows}: alarm {cells[-1]['alarm_rate']:.0%} "
                      f"fixed {cells[-1]['fixed_rule_alarm_rate']:.0%} auc drop {cells[-1]['mean_auc_drop']:+.3f}")
    stable = {}
    for rows in (300, 3000):
        alarms = fixed = 0
        runs = []
        for _ in range(STABLE):
            seed += 1
            result = window(spec, ref, rows, seed, 0.0)
            result["seed"] = seed
            runs.append(result)
            alarms += result["alarm"]
            fixed += result["fixed_rule_alarm"]
        stable[str(rows)] = {"windows": STABLE, "false_alarm_rate": alarms / STABLE, "fixed_rule_false_alarm_rate": fixed / STABLE,
                             "runs": runs}
        print(f"stable rows {rows}: false alarms {alarms}/{STABLE} (fixed rule {fixed}/{STABLE})")
    beyond = {}
    for tolerance in TOLERANCES:
        harmful = [r for c in cells for r in c["runs"] if r["auc_drop"] >= tolerance]
        beyond[str(tolerance)] = {
            "windows": len(harmful),
            "alarm_rate": float(np.mean([r["alarm"] for r in harmful])) if harmful else None,
            "fixed_rule_alarm_rate": float(np.mean([r["fixed_rule_alarm"] for r in harmful])) if harmful else None,
        }
        print(f"AUC drop >= {tolerance}: {len(harmful)} windows, alarmed {beyond[str(tolerance)]['alarm_rate']}, "
              f"fixed rule {beyond[str(tolerance)]['fixed_rule_alarm_rate']}")
    # Per cell, the drift's real effect: its windows' mean AUC drop (one small window's AUC is mostly sampling noise).
    for tolerance in TOLERANCES:
        harmful_cells = [c for c in cells if c["mean_auc_drop"] >= tolerance]
        beyond[str(tolerance)]["cells"] = [_cell_name(c) for c in harmful_cells]
        beyond[str(tolerance)]["cell_alarm_rate"] = (float(np.mean([r["alarm"] for c in harmful_cells for r in c["runs"]]))
                                                     if harmful_cells else None)
    out = {
        "model": args.model, "problem_type": spec.problem_type, "primary_metric": spec.primary_metric,
        "reference_auc": reference_auc, "psi_threshold": 0.1, "windows_dir": str(WINDOWS),
        "false_alarm_rate_budget": drift_mod.DEFAULT_FALSE_ALARM_RATE, "beyond_tolerance": beyond,
        "cells": cells, "stable": stable, "wall_s": round(time.perf_counter() - started, 1),
    }
    os.makedirs(Path(__file__).parent / "results", exist_ok=True)
    name = "drift_power.json" if args.model == "churn" else f"drift_power_{args.model}.json"
    (Path(__file__).parent / "results" / name).write_text(json.dumps(out, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
