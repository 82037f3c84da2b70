"""Training/serving skew of the models scored by id: the features the model was sent against the training source.

A by-id request reaches the endpoint as records that carry the entity id and where the features came from
(:mod:`pipeline_code.core.online_features`); the endpoint's capture keeps them. For a seeded sample of the
window's such records, each feature as used is compared with the feature snapshots (what training reads) of
the same entity as of the request time, joined exactly as training joins labels to features
(:func:`pipeline_code.training.prepare.point_in_time_join`: the latest snapshot at or before that time).
Only records whose features came from the online store are compared: a record scored from the caller's raw fields
(``computed``: the store had none, or only an expired one) carries data newer than any snapshot, so a difference
there is the data moving on, not skew - comparing them made the skew alarm fire on ordinary traffic. Computed and
missing records are counted (``sources``), not compared; that the serving computation equals the feature job's is
proved offline (the serving tests compute both on the same records).

A feature's mismatch rate is the share of compared records whose value differs (numbers beyond a relative
``tolerance``, categories after trimming and lower-casing, a value on one side only); the section fails when
one rate passes ``max_rate`` and lists each feature's largest differences: each example by the pseudonym of its
entity id (:func:`pipeline_code.core.contract.record_pseudonym`), its request time, feature source and (numbers) the
size of the difference - never the id or the values themselves, since the report is evidence kept for ever; the
capture holds the request as served, to look the example up in. ``stale_lookups`` counts records
whose stored event time is older than the snapshot the join found: the online store lagged the feature job.
"""

from __future__ import annotations

import json
import math
import random
from typing import Any, Dict, Iterator, List, Optional

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline_code.core.contract import record_pseudonym
from pipeline_code.core.online_features import (
    ENTITY_ID,
    FEATURE_EVENT_TIME,
    FEATURE_SOURCE,
    SOURCE_COMPUTED,
    SOURCE_MISSING,
    SOURCE_STORE,
)
from pipeline_code.monitoring import drift
from pipeline_code.monitoring.capture import data_capture_files, decode_payload, request_times
from pipeline_code.serving.records import FeatureContract, complete_records
from pipeline_code.training.spec import ModelSpec

INFERENCE_TIME = "inference_time"
DEFAULT_SAMPLE_ROWS = 10_000
DEFAULT_TOLERANCE = 1e-6
# Fewer compared records than this are reported, not judged (a rate of a handful of records is noise).
MIN_COMPARED = 100
LARGEST = 5
# The key naming a skew example's record: its entity id's pseudonym, never the id.
ENTITY_PSEUDONYM = "entity_pseudonym"


def _by_id_lines(capture_dir: str) -> Iterator[str]:
    """The capture lines that may hold by-id records (a cheap text test before any JSON is parsed)."""
    for path in data_capture_files(capture_dir):
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                # BASE64-encoded requests hide their keys until decoded: they are parsed to find out.
                if ENTITY_ID in line or '"BASE64"' in line:
                    yield line


def served_records(capture_dir: str, spec: ModelSpec, *, sample_requests: Optional[int] = None, seed: int = 0) -> pd.DataFrame:
    """The by-id records of the capture under ``capture_dir``: entity id, request time, source, stored event
    time and the model's features as used (computed ones through the catalog).

    ``sample_requests`` keeps a seeded uniform sample of that many requests (reservoir sampling over the
    lines, parsed only once chosen), so time beyond one text scan and memory do not grow with the window;
    ``frame.attrs["by_id_requests"]`` is how many requests the sample was drawn from (the by-id ones, and any
    BASE64-encoded request, whose keys show only once decoded). Lines that do not decode are skipped
    here: the capture section counts them.
    """
    rng = random.Random(seed)
    chosen: List[str] = []
    seen = 0
    for line in _by_id_lines(capture_dir):
        seen += 1
        if sample_requests is None or len(chosen) < sample_requests:
            chosen.append(line)
        else:
            slot = rng.randrange(seen)
            if slot < sample_requests:
                chosen[slot] = line
    contract = FeatureContract.create(spec.catalog_dataset, spec.features)
    rows: List[Dict[str, Any]] = []
    for line in chosen:
        try:
            event = json.loads(line)
            kind, payload = decode_payload(event["captureData"]["endpointInput"])
            when = event["eventMetadata"]["inferenceTime"]
        except (ValueError, KeyError, TypeError):  # the capture section counts what does not decode
            continue
        if kind != "json":
            continue
        records = payload.get("instances") if isinstance(payload, dict) else None
        if not isinstance(records, list):
            continue
        by_id = [r for r in records if isinstance(r, dict) and ENTITY_ID in r]
        if not by_id:
            continue
        for original, record in zip(by_id, complete_records(by_id, contract)):
            row = {name: record.get(name) for name in spec.features}
            row.update({ENTITY_ID: str(original[ENTITY_ID]), INFERENCE_TIME: when,
                        FEATURE_SOURCE: original.get(FEATURE_SOURCE), FEATURE_EVENT_TIME: original.get(FEATURE_EVENT_TIME)})
            rows.append(row)
    frame = pd.DataFrame(rows, columns=[ENTITY_ID, INFERENCE_TIME, FEATURE_SOURCE, FEATURE_EVENT_TIME, *spec.features])
    frame.attrs["by_id_requests"] = seen
    return frame


def _same_number(served: Any, offline: Any, tolerance: float) -> bool:
    a = _number(served)
    b = _number(offline)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= tolerance * max(1.0, abs(b))


def _number(value: Any) -> float:
    try:
        return float(value) if value is not None else math.nan
    except (TypeError, ValueError):
        return math.nan


def _text(value: Any) -> Optional[str]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value).strip().lower()


def feature_skew(
    spec: ModelSpec,
    served: pd.DataFrame,
    snapshots_dir: str,
    *,
    max_rate: float,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
    tolerance: float = DEFAULT_TOLERANCE,
    seed: int = 0,
    min_compared: int = MIN_COMPARED,
) -> Dict[str, Any]:
    """The skew section of the monitor report (see the module docstring); fewer than ``min_compared`` compared
    records (default :data:`MIN_COMPARED`) are reported, not judged."""
    from pipeline_code.training import prepare

    sources = {str(k): int(v) for k, v in served[FEATURE_SOURCE].value_counts().items()} if len(served) else {}
    comparable = served[served[FEATURE_SOURCE] == SOURCE_STORE]
    sampled = comparable.sample(n=sample_rows, random_state=seed) if len(comparable) > sample_rows else comparable
    section: Dict[str, Any] = {"requests": int(served.attrs.get("by_id_requests", len(served))), "records": int(len(served)),
                               "sources": sources, "sampled": int(len(sampled)),
                               "max_rate": max_rate, "tolerance": tolerance, "features": {}, "checks": []}
    if sampled.empty:
        section.update({"status": drift.SKIPPED, "compared": 0, "max_mismatch_rate": None,
                        "reason": f"no by-id records scored from the online store ({SOURCE_COMPUTED} and {SOURCE_MISSING} "
                                  "ones are not compared)"})
        return section
    rid, et = spec.record_identifier, spec.event_time
    snapshots = prepare.load_feature_snapshots(spec, snapshots_dir)
    times = request_times(sampled[INFERENCE_TIME])
    keep = times.notna().to_numpy()
    sampled, times = sampled[keep].reset_index(drop=True), times[keep].reset_index(drop=True)
    section["unreadable_request_times"] = int((~keep).sum())  # not joinable: counted, not compared
    requests = pa.table({
        rid: pa.array(sampled[ENTITY_ID].astype(str).tolist(), pa.string()),
        et: pa.array(times.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[us]"), pa.timestamp("us", tz="UTC")),
        # The join carries the "label" through: here the served row it belongs to.
        spec.target: pa.array(np.arange(len(sampled), dtype=np.int64)),
    })
    joined, stats = prepare.point_in_time_join(spec, requests, snapshots)
    offline = joined.to_pandas()
    rows = offline[spec.target].to_numpy()
    served_rows = sampled.iloc[rows].reset_index(drop=True)
    section["compared"] = int(len(offline))
    section["no_snapshot"] = int(stats["unmatched_labels_dropped"])
    stored_times = request_times(served_rows[FEATURE_EVENT_TIME])
    snapshot_times = request_times(offline[FEATURE_EVENT_TIME])
    section["stale_lookups"] = int(((served_rows[FEATURE_SOURCE] == SOURCE_STORE) & (stored_times < snapshot_times)).sum())
    if section["compared"] < min_compared:
        # One differing value of three would read as a 33 % mismatch rate and page people: too few to judge.
        section.update({"status": drift.SKIPPED, "max_mismatch_rate": None,
                        "reason": f"{section['compared']} store records compared, fewer than {min_compared}: reported, not judged"})
        return section
    worst = 0.0
    for name in spec.features:
        categorical = spec.is_categorical(name)
        served_values, offline_values = served_rows[name].tolist(), offline[name].tolist()
        if categorical:
            differs = [_text(a) != _text(b) for a, b in zip(served_values, offline_values)]
        else:
            differs = [not _same_number(a, b, tolerance) for a, b in zip(served_values, offline_values)]
        mismatches = int(sum(differs))
        rate = mismatches / len(differs) if differs else 0.0
        worst = max(worst, rate)
        # No id and no value: the report is kept for ever (monitor/ keeps every version). The pseudonym and the
        # request time find the request in the capture, which expires with the traffic.
        examples = [
            {ENTITY_PSEUDONYM: record_pseudonym(served_rows[ENTITY_ID].iat[i]),
             "inference_time": served_rows[INFERENCE_TIME].iat[i], "source": served_rows[FEATURE_SOURCE].iat[i],
             "difference": None if categorical else abs(_number(served_values[i]) - _number(offline_values[i]))}
            for i, bad in enumerate(differs) if bad
        ]
        if not categorical:
            examples.sort(key=lambda e: -(e["difference"] if e["difference"] is not None and not math.isnan(e["difference"]) else math.inf))
        section["features"][name] = {"mismatches": mismatches, "rate": rate, "largest": examples[:LARGEST]}
        status = drift.FAIL if rate > max_rate else drift.PASS
        section["checks"].append(drift.check("feature_skew", "skew", rate, max_rate, status, feature=name,
                                             detail=f"{mismatches} of {len(differs)} served values differ from the snapshot"))
    section["max_mismatch_rate"] = worst
    section["status"] = drift.FAIL if worst > max_rate else drift.PASS
    return section


def skew_section(spec: ModelSpec, capture_dir: str, snapshots_dir: str, *, max_rate: float,
                 sample_rows: int = DEFAULT_SAMPLE_ROWS, seed: int = 0, min_compared: int = MIN_COMPARED) -> Dict[str, Any]:
    """:func:`feature_skew` of a sample of ``sample_rows`` by-id requests under ``capture_dir``."""
    served = served_records(capture_dir, spec, sample_requests=sample_rows, seed=seed)
    return feature_skew(spec, served, snapshots_dir, max_rate=max_rate, sample_rows=sample_rows, seed=seed,
                        min_compared=min_compared)

