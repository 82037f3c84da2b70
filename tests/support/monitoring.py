"""Shared by the monitoring tests and bench/: train a small real model + write its baselines."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import xgboost as xgb

from mlops_cli.local.run_loop import load_config
from tests.support.configs import SAMPLE_CONFIG
from pipeline_code.monitoring import monitor
from mlops_cli.local import replay
from pipeline_code.training import baseline, metrics
from pipeline_code.training.spec import ModelSpec, parse_model_spec
from pipeline_code.training.train import TrainedModel, build_feature_metadata, encode, predict, save_model


def churn_spec() -> ModelSpec:
    config = load_config(str(SAMPLE_CONFIG), "dev")
    return parse_model_spec(config["models"]["churn"])


def fit_with_baseline(root: Path, spec: ModelSpec, train: Any, held_out: Any, *, objective: str, max_depth: int,
                      shap_sample_rows: int) -> Tuple[TrainedModel, Dict[str, Any], Path, Path]:
    """A small real model of ``spec`` (80 seeded trees of ``objective``) trained on ``train`` and saved in
    ``root/model``, and its baselines written to ``root/baseline``: the predictions' of the ``held_out`` rows, as the
    baseline job's are of the validation split. Returns the model, the baseline documents and the two folders."""
    meta = build_feature_metadata(spec, train)
    dtrain = xgb.DMatrix(encode(train, meta), label=train[spec.target].to_numpy(float), enable_categorical=True,
                         missing=np.nan)
    params = {"objective": objective, "max_depth": max_depth, "eta": 0.1, "tree_method": "hist", "nthread": 2,
              "seed": 0, "max_cat_to_onehot": 8}
    model = TrainedModel(estimator=xgb.train(params, dtrain, num_boost_round=80), metadata=meta)
    model_dir, baseline_dir = root / "model", root / "baseline"
    save_model(model, str(model_dir))
    docs = baseline.compute_baseline(spec, model, train, held_out, shap_sample_rows=shap_sample_rows)
    baseline_dir.mkdir(parents=True)
    for name, doc in docs.items():
        (baseline_dir / f"{name}.json").write_text(json.dumps(doc))
    return model, docs, model_dir, baseline_dir


def build_reference(root: Path, spec: ModelSpec, rows: int = 8000, seed: int = 1) -> Dict[str, Any]:
    """Model dir + baseline dir (statistics/constraints/attributions + evaluation.json)."""
    data = replay.traffic(spec, rows, seed=seed, start="2026-01-01", days=90)
    train, test = data.iloc[: rows * 3 // 4], data.iloc[rows * 3 // 4 :]
    model, docs, model_dir, baseline_dir = fit_with_baseline(root, spec, train, test, objective="binary:logistic",
                                                             max_depth=4, shap_sample_rows=1000)
    p = predict(model, test)
    y = test[spec.target].to_numpy(dtype=np.float64)
    evaluation = {"challenger": {"metrics": metrics.headline(y, p, model.threshold),
                                 "fairness": metrics.fairness(test[spec.sensitive_attribute], y, p, attribute=spec.sensitive_attribute,
                                                              min_group_rows=100, threshold=model.threshold)}}
    (baseline_dir / "evaluation.json").write_text(json.dumps(evaluation, default=float))
    return {"model": model, "model_dir": str(model_dir), "baseline_dir": str(baseline_dir), "docs": docs,
            "evaluation": evaluation, "train": train}


def write_window(root: Path, spec: ModelSpec, model: TrainedModel, *, rows: int = 3000, seed: int = 100, drift: float = 0.0,
                 concept_drift: float = 0.0, label_coverage: Optional[float] = None, content_type: str = "application/json",
                 mutate: Any = None) -> Dict[str, str]:
    frame = replay.traffic(spec, rows, seed=seed, drift=drift, concept_drift=concept_drift)
    if mutate is not None:
        frame = mutate(frame)
    scores = predict(model, frame)
    capture_dir, labels_dir = root / "capture", root / "labels"
    replay.write_capture(spec, frame, scores, str(capture_dir), content_type=content_type)
    if label_coverage is not None:
        replay.write_labels(spec, frame, str(labels_dir), coverage=label_coverage)
    return {"capture": str(capture_dir), "labels": str(labels_dir) if label_coverage is not None else None, "root": str(root)}


def monitor_args(spec: ModelSpec, reference: Dict[str, Any], capture: str, output: str, *, labels: Optional[str] = None,
                 baseline_dir: Optional[str] = None, extra: List[str] = ()) -> List[str]:
    args = ["--model-spec", spec.to_json(), "--baseline-dir", baseline_dir or reference["baseline_dir"],
            "--model-dir", reference["model_dir"], "--capture-dir", capture, "--output-dir", output,
            "--environment", "dev", "--psi-threshold", "0.2", "--ks-p-value", "0.01", "--shap-sample-rows", "500", *extra]
    if labels:
        args += ["--labels-dir", labels]
    return args


def run(spec: ModelSpec, reference: Dict[str, Any], window: Dict[str, str], output: str, **kw: Any) -> Dict[str, Any]:
    code = monitor.main(monitor_args(spec, reference, window["capture"], output, labels=window.get("labels"), **kw))
    assert code == 0
    with open(os.path.join(output, "report.json"), encoding="utf-8") as handle:
        return json.load(handle)


def check(report: Dict[str, Any], name: str, feature: Optional[str] = None) -> Dict[str, Any]:
    hits = [c for c in report["checks"] if c["check"] == name and (feature is None or c.get("feature") == feature)]
    assert hits, f"no check {name} {feature}"
    return hits[0]
