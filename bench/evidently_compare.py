"""Evidently's DataDriftPreset on the power study's windows, next to the monitor's verdicts.

Evidently 0.7 needs pandas < 3, so it runs in its own environment, never the project's (it is no dependency):

    python3 -m venv /tmp/evidently-venv && /tmp/evidently-venv/bin/pip install "evidently==0.7.23" "pandas<3" pyarrow
    .venv/bin/python bench/drift_power_bench.py          # writes the windows and bench/results/drift_power.json
    /tmp/evidently-venv/bin/python bench/evidently_compare.py   -> bench/results/evidently_compare.json

Per window: Evidently's dataset-drift verdict (its default: drift when at least half the columns drift, each by
its default per-column test) and whether any column drifted, against the monitor's alarm; per cell the rates,
and where they differ, which side the window's AUC drop (the quality impact) supports.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset

RESULTS = Path(__file__).parent / "results"


def verdict(reference: pd.DataFrame, current: pd.DataFrame) -> dict:
    snapshot = Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)
    metrics = snapshot.dict()["metrics"]
    count = next(m for m in metrics if m["metric_name"].startswith("DriftedColumnsCount"))["value"]
    return {"drifted_columns": int(count["count"]), "drifted_share": float(count["share"]),
            "dataset_drift": float(count["share"]) >= 0.5}


def main() -> int:
    power = json.loads((RESULTS / "drift_power.json").read_text())
    windows = Path(power["windows_dir"])
    reference = pd.read_parquet(windows / "reference.parquet")
    started = time.perf_counter()
    cells = []
    for cell in power["cells"]:
        runs = []
        for run in cell["runs"]:
            ev = verdict(reference, pd.read_parquet(windows / f"{run['seed']}.parquet"))
            runs.append({"seed": run["seed"], "ours": run["alarm"], "evidently_any_column": ev["drifted_columns"] > 0,
                         "evidently_dataset_drift": ev["dataset_drift"], "auc_drop": run["auc_drop"], **ev})
        cells.append({"drift": cell["drift"], "rows": cell["rows"], "mean_auc_drop": cell["mean_auc_drop"],
                      "shifted_features": cell.get("shifted_features"), "shift_sd": cell.get("shift_sd"),
                      "ours": sum(r["ours"] for r in runs) / len(runs),
                      "evidently_any_column": sum(r["evidently_any_column"] for r in runs) / len(runs),
                      "evidently_dataset_drift": sum(r["evidently_dataset_drift"] for r in runs) / len(runs), "runs": runs})
        print(f"drift {cell['drift']} shifted {cell.get('shifted_features')} x {cell.get('shift_sd')} sd rows {cell['rows']}: ours {cells[-1]['ours']:.0%}, evidently any column "
              f"{cells[-1]['evidently_any_column']:.0%}, dataset drift {cells[-1]['evidently_dataset_drift']:.0%} "
              f"(mean AUC drop {cell['mean_auc_drop']:+.3f})")
    stable = {}
    for rows, block in power["stable"].items():
        evs = [verdict(reference, pd.read_parquet(windows / f"{run['seed']}.parquet")) for run in block["runs"]]
        stable[rows] = {"windows": len(evs), "ours_false_alarm_rate": block["false_alarm_rate"],
                        "evidently_any_column_false_alarm_rate": sum(e["drifted_columns"] > 0 for e in evs) / len(evs),
                        "evidently_dataset_drift_false_alarm_rate": sum(e["dataset_drift"] for e in evs) / len(evs)}
        print(f"stable rows {rows}: {stable[rows]}")
    # Where the verdicts differ, the drift's real effect (its cell's mean AUC drop) says which one was right.
    disagreements = [{"drift": c["drift"], "rows": c["rows"], "mean_auc_drop": c["mean_auc_drop"], "seed": r["seed"],
                      "ours": r["ours"], "evidently_any_column": r["evidently_any_column"]}
                     for c in cells for r in c["runs"] if r["ours"] != r["evidently_any_column"]]
    out = {"evidently": "0.7.23 DataDriftPreset (defaults)", "cells": cells, "stable": stable, "disagreements": disagreements,
           "wall_s": round(time.perf_counter() - started, 1)}
    (RESULTS / "evidently_compare.json").write_text(json.dumps(out, indent=2, default=float))
    print(f"{len(disagreements)} windows where the verdicts differ")
    return 0


if __name__ == "__main__":
    sys.exit(main())
