"""Replay a window of generated traffic through a registered local model, as data capture.

    python -m mlops_cli.local.replay --registry WORKDIR/registry --model churn \\
        --rows 5000 --seed 101 --drift 0.5 [--concept-drift 0.8] --capture-dir OUT/capture \\
        --labels-dir OUT/labels [--label-coverage 0.7] [--content-type application/json|text/csv]

Writes SageMaker data-capture JSON Lines (``<capture-dir>/<model>/AllTraffic/YYYY/MM/DD/HH/capture.jsonl``)
scored by the champion (or ``--version``), and the ground truth as ``labels.parquet`` for
the first ``--label-coverage`` share of the window (later labels have not arrived yet).

Responses are captured as serving answers them, per problem type: binary ``text/csv`` scores;
multiclass ``application/json`` ``{"predictions": [{"label": c, "score": p, "probabilities": {...}}]}``
(or, ``response_type="text/csv"``, the class name); regression ``text/csv`` values (or JSON
``{"predictions": [{"value": y}]}``). Labels are the target as the source holds it: 0/1, the class
name, the value.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Dict, Optional, Sequence

import numpy as np
import pandas as pd

from pipeline_code.core.contract import VARIANT
from pipeline_code.core.problem import BINARY, MULTICLASS
from pipeline_code.training.spec import ModelSpec


def traffic(spec: ModelSpec, rows: int, *, seed: int, drift: float = 0.0, concept_drift: float = 0.0,
            start: str = "2026-05-01", days: int = 7) -> pd.DataFrame:
    """Generated requests: the spec's frame features + target + inference_id + inference_time."""
    from pipeline_code.features.compute import compute_features
    from pipeline_code.sample_data.generate import generate

    dataset = spec.catalog_dataset
    raw = generate(dataset, rows, seed=seed, drift=drift, concept_drift=concept_drift, start=start, days=days)
    features = compute_features(raw, dataset)
    out = features[list(spec.frame_features)].copy()
    if spec.problem_type == MULTICLASS:  # the class names (integer classes as text), as labels arrive
        out[spec.target] = [None if _value(v) is None else _class_name(v) for v in raw[spec.target].to_numpy(dtype=object)]
    else:
        out[spec.target] = raw[spec.target].to_numpy(dtype=np.float64)
    out["inference_id"] = [f"{seed}-{i:08d}" for i in range(rows)]
    out["inference_time"] = features[dataset.event_time].to_numpy()
    return out.sort_values("inference_time", kind="mergesort").reset_index(drop=True)


def traffic_from_records(spec: ModelSpec, features_dir: str, curated_dir: str, rows: Optional[int] = None) -> pd.DataFrame:
    """Requests made of your own records, as :func:`traffic` makes them of generated ones: the features the feature
    job computed (``features_dir``), each with its record's label from the curated records (``curated_dir``, read and
    checked as prepare reads them; none when the record has none yet), in event-time order, the oldest ``rows`` of
    them (default: all)."""
    from pipeline_code.features.compute import format_event_time
    from pipeline_code.training.prepare import load_labels

    dataset = spec.catalog_dataset
    rid, et = dataset.record_identifier, dataset.event_time
    features = pd.read_parquet(features_dir, columns=[rid, et, *spec.frame_features])
    features[rid] = features[rid].astype(str)
    labels = load_labels(spec, curated_dir)[0].to_pandas()
    labels[et] = format_event_time(labels[et])  # as the feature job writes it (milliseconds at most), to join on
    twice = labels[labels.duplicated([rid, et], keep=False)]
    if len(twice):
        raise ValueError(f"{curated_dir}: record {twice[rid].iat[0]!r} at {twice[et].iat[0]} has {len(twice)} labels; "
                         "give each record one")
    frame = features.merge(labels, on=[rid, et], how="left", validate="many_to_one")
    order = pd.to_datetime(frame[et], utc=True, format="ISO8601").to_numpy()
    frame = frame.iloc[np.lexsort((frame[rid].to_numpy(), order))].reset_index(drop=True)
    if rows is not None:
        frame = frame.iloc[:rows]
    out = frame[list(spec.frame_features)].copy()
    encoded = frame[spec.target].to_numpy(dtype=np.float64)
    if spec.problem_type == MULTICLASS:  # the class names, as labels arrive
        out[spec.target] = [None if np.isnan(v) else _class_name(spec.classes[int(v)]) for v in encoded]
    else:
        out[spec.target] = encoded
    # Unique per request even when a record arrives twice (two snapshots), as SageMaker's inference ids are.
    out["inference_id"] = [f"{i:08d}-{record}" for i, record in enumerate(frame[rid])]
    out["inference_time"] = frame[et].to_numpy()
    return out


def _value(v: Any) -> Any:
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
        return None
    return v.item() if hasattr(v, "item") else v


def _class_name(value: Any) -> str:
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def response(spec: ModelSpec, output: Any, response_type: Optional[str] = None) -> tuple:
    """(content type, body) of serving's answer to one record whose model output is ``output``."""
    if spec.problem_type == MULTICLASS:
        classes = [str(c) for c in spec.classes]
        probabilities = np.asarray(output, dtype=np.float64)
        label = classes[int(np.argmax(probabilities))]
        if response_type == "text/csv":
            return "text/csv", label
        body = {"label": label, "score": float(probabilities.max()),
                "probabilities": {c: round(float(p), 6) for c, p in zip(classes, probabilities)}}
        return "application/json", json.dumps({"predictions": [body]})
    if spec.problem_type != BINARY and response_type == "application/json":
        return "application/json", json.dumps({"predictions": [{"value": float(output)}]})
    if spec.problem_type != BINARY:
        return "text/csv", repr(float(output))
    return "text/csv", f"{output:.6f}"


def capture_lines(spec: ModelSpec, frame: pd.DataFrame, scores: np.ndarray, *, content_type: str = "application/json",
                  response_type: Optional[str] = None) -> list:
    """One data-capture JSON line per row; ``scores``: the model's output (``model_io.predict``) per row.

    Each line is ``json.dumps`` of the event (captureData's input and output blocks, eventMetadata, eventVersion),
    its request ``json.dumps`` of the row's features (``application/json``) or their CSV line (``text/csv``)."""
    as_json = content_type == "application/json"
    cols = list(spec.frame_features) if as_json else list(spec.features)
    # The lines are written as json.dumps writes them, but built a column at a time: each value encoded once by its
    # type (json.dumps of a whole event per row cost about 80 us, most of a replay).
    records = frame[cols].astype(object).to_numpy()
    if as_json:
        # A name listed twice is one key, where it first stands, with its last value (as dict(zip(cols, values))).
        last = {name: j for j, name in enumerate(cols)}
        keys = [_dumps(name) + ": " for name in last]
        columns = [[_json_value(_value(v)) for v in records[:, j]] for j in last.values()]
        data = ["{" + ", ".join(map(str.__add__, keys, row)) + "}" for row in zip(*columns)]
    else:
        columns = [["" if v is None else str(v) for v in map(_value, records[:, j])] for j in range(len(cols))]
        data = [",".join(row) for row in zip(*columns)]
    head = '{"captureData": {"endpointInput": {"observedContentType": ' + _dumps(content_type) + ', "mode": "INPUT", "data": '
    middle = ', "encoding": ' + _dumps("JSON" if as_json else "CSV") + '}, "endpointOutput": '
    lines = []
    for i, (request, inference_id, inference_time) in enumerate(zip(data, _cells(frame["inference_id"]),
                                                                   _cells(frame["inference_time"]))):
        out_type, out_data = response(spec, scores[i], response_type)
        lines.append(head + _dumps(request) + middle + _output_json(out_type, out_data)
                     + '}, "eventMetadata": {"eventId": ' + _dumps(_event_id(i + 1)) + ', "inferenceId": '
                     + _dumps(str(inference_id)) + ', "inferenceTime": ' + _dumps(str(inference_time))
                     + '}, "eventVersion": "0"}')
    return lines


_dumps = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined] - a str as json.dumps writes it


def _json_value(value: Any) -> str:
    """``json.dumps(value)`` of a row's value (after :func:`_value`), without its per-call set-up for the usual types."""
    kind = type(value)
    if kind is str:
        return _dumps(value)
    if kind is float and value - value == 0.0:  # finite (json.dumps writes repr; NaN and infinities its own words)
        return float.__repr__(value)
    if kind is int:
        return int.__repr__(value)
    return json.dumps(value)


def _cells(column: pd.Series) -> list:
    """The column's values as ``Series.iat`` gives them (objects as they are; numpy scalars for other dtypes)."""
    if column.dtype == object:
        return list(column.to_numpy())
    return [column.iat[i] for i in range(len(column))]


def _event_id(number: int) -> str:
    """``str(uuid.UUID(int=number))``."""
    digits = f"{number:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def _output_json(content_type: str, data: str) -> str:
    """``json.dumps`` of the output block: serving's answer ``data`` of ``content_type``."""
    return ('{"observedContentType": ' + _dumps(content_type) + ', "mode": "OUTPUT", "data": ' + _dumps(data)
            + ', "encoding": ' + ('"CSV"' if content_type == "text/csv" else '"JSON"') + "}")


def write_capture(spec: ModelSpec, frame: pd.DataFrame, scores: np.ndarray, capture_dir: str, *,
                  content_type: str = "application/json", response_type: Optional[str] = None) -> str:
    path = os.path.join(capture_dir, spec.name, VARIANT, "capture.jsonl")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(capture_lines(spec, frame, scores, content_type=content_type, response_type=response_type)) + "\n")
    return path


def write_labels(spec: ModelSpec, frame: pd.DataFrame, labels_dir: str, *, coverage: float = 1.0) -> int:
    """Ground truth of the oldest ``coverage`` share of the window (labels arrive late)."""
    n = int(round(len(frame) * coverage))
    part = frame.sort_values("inference_time", kind="mergesort").iloc[:n]
    labels = pd.DataFrame({
        "inference_id": part["inference_id"].astype(str).to_numpy(),
        "label": part[spec.target].to_numpy(dtype=object if spec.problem_type == MULTICLASS else np.float64),
        "label_time": (pd.to_datetime(part["inference_time"], utc=True) + pd.Timedelta(days=30)).astype(str).to_numpy(),
    })
    os.makedirs(labels_dir, exist_ok=True)
    labels.to_parquet(os.path.join(labels_dir, "labels.parquet"), index=False)
    return n


def replay(model_dir: str, spec: ModelSpec, frame: pd.DataFrame, *, capture_dir: str, labels_dir: Optional[str],
           label_coverage: float = 1.0, content_type: str = "application/json") -> Dict[str, Any]:
    """Score the requests ``frame`` (:func:`traffic` or :func:`traffic_from_records`) with the model in
    ``model_dir`` and write them as data capture, and their labels."""
    from pipeline_code.training.model_io import load_model, predict

    scores = predict(load_model(model_dir), frame)
    path = write_capture(spec, frame, scores, capture_dir, content_type=content_type)
    # A record of yours without a label is one whose ground truth has not arrived.
    labelled = write_labels(spec, frame.dropna(subset=[spec.target]), labels_dir, coverage=label_coverage) if labels_dir else 0
    return {"capture_file": path, "rows": len(frame), "labelled": labelled}


def main(argv: Optional[Sequence[str]] = None) -> int:
    from mlops_cli.local.registry import LocalRegistry
    from mlops_cli.local.run_loop import DEFAULT_CONFIG, load_config
    from pipeline_code.training.spec import parse_model_spec

    p = argparse.ArgumentParser(prog="python -m mlops_cli.local.replay", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--registry", required=True)
    p.add_argument("--model", required=True, help="model name in config/mlops-loop.yaml (= registry group)")
    p.add_argument("--version", type=int, default=None, help="default: the latest approved version")
    p.add_argument("--config", default=str(DEFAULT_CONFIG))
    p.add_argument("--environment", default="dev")
    p.add_argument("--rows", type=int, default=5000)
    p.add_argument("--seed", type=int, default=101)
    p.add_argument("--drift", type=float, default=0.0)
    p.add_argument("--concept-drift", type=float, default=0.0)
    p.add_argument("--capture-dir", required=True)
    p.add_argument("--labels-dir", default=None)
    p.add_argument("--label-coverage", type=float, default=1.0)
    p.add_argument("--content-type", choices=("application/json", "text/csv"), default="application/json")
    args = p.parse_args(argv)
    config = load_config(args.config, args.environment)
    spec = parse_model_spec(config["models"][args.model])
    registry = LocalRegistry(args.registry)
    version = registry.get(args.model, args.version) if args.version else registry.latest_approved(args.model)
    if version is None:
        p.error(f"no approved version of {args.model!r} in {args.registry!r}")
    frame = traffic(spec, args.rows, seed=args.seed, drift=args.drift, concept_drift=args.concept_drift)
    result = replay(version.model_dir, spec, frame, capture_dir=args.capture_dir, labels_dir=args.labels_dir,
                    label_coverage=args.label_coverage, content_type=args.content_type)
    result.update(drift=args.drift, concept_drift=args.concept_drift)
    result["baseline_dir"] = os.path.join(version.path, "baseline")
    result["model_dir"] = version.model_dir
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
