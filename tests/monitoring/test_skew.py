"""Training/serving skew of the models scored by id (:mod:`pipeline_code.monitoring.skew`) and its place in the
monitor report (GIVEN / WHEN / THEN).

The unit tests use a small dataset declared here (``skew_accounts``), so they depend on no sample model; by-id
capture lines are written by hand with the serving code's own :func:`capture_record`, in the shape the front
sends the endpoint (``{"instances": [...]}`` with ``entity_id``, ``feature_source``, ``feature_event_time``), and
the feature snapshots as parquet in the training reader's layout. The monitor tests run the monitor CLI on the
suite's trained churn reference (``spec`` / ``reference`` fixtures), as the other monitor tests do.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import uuid
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional

import pandas as pd
import pytest

from mlops_cli.local import replay
from pipeline_code.core.online_features import (
    ENTITY_ID,
    FEATURE_EVENT_TIME,
    FEATURE_SOURCE,
    SOURCE_COMPUTED,
    SOURCE_MISSING,
    SOURCE_STORE,
)
from pipeline_code.monitoring import report as report_mod
from pipeline_code.monitoring import skew
from pipeline_code.serving.self_capture import capture_record
from pipeline_code.training.spec import parse_model_spec
from tests.support.monitoring import monitor_args, run, write_window

UTC = dt.timezone.utc


def pseudonym(entity_id: str) -> str:
    """How the report names an entity: the first 12 hex digits of the SHA-256 of its id (computed here on its own)."""
    return hashlib.sha256(entity_id.encode("utf-8")).hexdigest()[:12]


DATASET: Dict[str, Any] = {
    "name": "skew_accounts",
    "description": "Accounts scored by id; label: churned.",
    "record_identifier": "account_id",
    "event_time": "event_time",
    "labels": ["churned"],
    "columns": {
        "account_id": {"type": "string", "nullable": False},
        "event_time": {"type": "timestamp", "nullable": False},
        "tenure_months": {"type": "integer", "nullable": False, "min": 0, "max": 600},
        "monthly_charges": {"type": "double", "nullable": False, "min": 0, "max": 10000},
        "support_calls_90d": {"type": "integer", "min": 0, "max": 1000},
        "plan": {"type": "string", "allowed": ["basic", "pro"]},
        "gender": {"type": "string", "allowed": ["female", "male", "other"]},
        "churned": {"type": "integer", "min": 0, "max": 1},
    },
    "features": {
        "tenure_months": "tenure_months",
        "monthly_charges": "monthly_charges",
        "log_support_calls_90d": "log1p(support_calls_90d)",
        "plan": "plan",
        "gender": "gender",
    },
}
FEATURES = ["tenure_months", "monthly_charges", "log_support_calls_90d", "plan"]
SPEC = parse_model_spec({"name": "skewed", "dataset": DATASET, "target": "churned", "features": FEATURES,
                         "sensitive_attribute": "gender"})
COLUMNS = [ENTITY_ID, "inference_time", FEATURE_SOURCE, FEATURE_EVENT_TIME, *FEATURES]
# One snapshot's values; a served record uses the same unless a test changes them.
VALUES: Dict[str, Any] = {"tenure_months": 12, "monthly_charges": 50.0, "log_support_calls_90d": math.log1p(3),
                          "plan": "pro"}
MAY_1, MAY_5, MAY_10, MAY_20 = "2026-05-01T00:00:00Z", "2026-05-05T12:00:00Z", "2026-05-10T00:00:00Z", "2026-05-20T08:30:00Z"
SKIP_REASON = "no by-id records scored from the online store (computed and missing ones are not compared)"


# ---------------------------------------------------------------- helpers
def _when(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def by_id(entity: Any, source: str = SOURCE_STORE, event_time: Optional[str] = MAY_1, **features: Any) -> Dict[str, Any]:
    """One record as the front sends it to the endpoint (the features as used + provenance + inference id)."""
    values = {name: None for name in FEATURES} if source == SOURCE_MISSING else dict(VALUES)
    values.update(features)
    return {**values, FEATURE_SOURCE: source, FEATURE_EVENT_TIME: event_time, ENTITY_ID: entity,
            "inference_id": f"inf-{entity}"}


def capture_line(records: Any, when: str, *, content_type: str = "application/json", body: Optional[str] = None) -> str:
    """One SageMaker data-capture line of a request holding ``records`` (``{"instances": records}``)."""
    request = body if body is not None else json.dumps({"instances": records})
    count = len(records) if isinstance(records, list) else 1
    response = json.dumps({"predictions": [{"score": 0.25, "label": 0}] * count})
    return json.dumps(capture_record(request_body=request, request_type=content_type, response_body=response,
                                     response_type="application/json", event_id=str(uuid.uuid4()), when=_when(when)))


def write_capture(directory: Path, lines: Iterable[str], name: str = "by-id.jsonl") -> str:
    folder = directory / "skewed" / "AllTraffic" / "2026" / "05" / "20" / "08"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / name, "a", encoding="utf-8") as handle:
        for line in lines:
            handle.write(line + "\n")
    return str(directory)


def snapshot(entity: str, event_time: str, **features: Any) -> Dict[str, Any]:
    return {"account_id": entity, "event_time": event_time, **VALUES, "gender": "female", **features}


def write_snapshots(directory: Path, rows: List[Dict[str, Any]]) -> str:
    """Feature snapshots as the feature job writes them: record id, event time, the frame features."""
    directory.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows)
    frame["event_time"] = pd.to_datetime(frame["event_time"], utc=True)
    frame["tenure_months"] = frame["tenure_months"].astype("Int64")
    for name in ("monthly_charges", "log_support_calls_90d"):
        frame[name] = frame[name].astype("float64")
    frame.to_parquet(directory / "part-0.parquet", index=False)
    return str(directory)


def served(rows: List[Dict[str, Any]]) -> pd.DataFrame:
    """A served-records frame (what :func:`skew.served_records` returns) from ``(when, record)`` dicts."""
    out = []
    for row in rows:
        record = row["record"]
        out.append({ENTITY_ID: str(record[ENTITY_ID]), "inference_time": row["when"], FEATURE_SOURCE: record[FEATURE_SOURCE],
                    FEATURE_EVENT_TIME: record[FEATURE_EVENT_TIME], **{name: record[name] for name in FEATURES}})
    return pd.DataFrame(out, columns=COLUMNS)


def at(when: str, record: Dict[str, Any]) -> Dict[str, Any]:
    return {"when": when, "record": record}


def skew_of(rows: List[Dict[str, Any]], snapshots: str, **kw: Any) -> Dict[str, Any]:
    """The skew section of ``rows``; judged from one compared record on (these tests are about the comparison)."""
    kw.setdefault("max_rate", 0.01)
    kw.setdefault("min_compared", 1)
    return skew.feature_skew(SPEC, served(rows), snapshots, **kw)


# ---------------------------------------------------------------- served_records
def test_served_records_takes_the_by_id_records_only_and_skips_what_does_not_decode(tmp_path):
    # GIVEN one capture file mixing by-id requests, plain requests and lines no reader can decode
    plain = {name: VALUES[name] for name in FEATURES}
    lines = [
        capture_line([by_id("a-1"), by_id("a-2", monthly_charges=61.5)], MAY_20),
        capture_line([plain, {**plain, "tenure_months": 3}], MAY_20),  # a plain request: no entity_id
        capture_line([plain, by_id("a-3", plan="basic")], "2026-05-20T09:00:00Z"),  # one by-id record among plain ones
        "{not json",
        "null",
        "42",
        json.dumps({"captureData": {"endpointInput": {"observedContentType": "application/json"}}}),  # no data, no time
        capture_line([], MAY_20, body="{this is not json"),  # a JSON content type whose body does not parse
        capture_line([], MAY_20, content_type="text/csv", body="12,50.0,1.38,pro"),  # a CSV request
        capture_line([], MAY_20, body=json.dumps([by_id("a-9")])),  # a bare list, not the front's {"instances": [...]}
        capture_line([], MAY_20, body=json.dumps({"instances": "a-9"})),
        capture_line(["a-9", 7, None], MAY_20),  # instances that are not objects
    ]
    capture_dir = write_capture(tmp_path / "capture", lines)
    # WHEN the by-id records are read
    frame = skew.served_records(capture_dir, SPEC)
    # THEN exactly the three by-id records, with the request time and provenance, in the documented columns
    assert list(frame.columns) == COLUMNS
    assert frame[ENTITY_ID].tolist() == ["a-1", "a-2", "a-3"]
    assert frame["inference_time"].tolist() == ["2026-05-20T08:30:00Z", "2026-05-20T08:30:00Z", "2026-05-20T09:00:00Z"]
    assert frame[FEATURE_SOURCE].tolist() == [SOURCE_STORE] * 3 and frame[FEATURE_EVENT_TIME].tolist() == [MAY_1] * 3
    assert frame["monthly_charges"].tolist() == [50.0, 61.5, 50.0] and frame["plan"].tolist() == ["pro", "pro", "basic"]


def test_served_records_of_a_computed_record_are_the_catalog_computed_features(tmp_path):
    # GIVEN a record scored from raw fields (policy "compute"): curated columns, no log_support_calls_90d feature
    raw = {"tenure_months": 7, "monthly_charges": 80.25, "support_calls_90d": 4, "plan": "basic", ENTITY_ID: 1234,
           FEATURE_SOURCE: SOURCE_COMPUTED, FEATURE_EVENT_TIME: None, "inference_id": "1234"}
    missing = by_id("a-2", SOURCE_MISSING, None)
    capture_dir = write_capture(tmp_path / "capture", [capture_line([raw, missing], MAY_20)])
    frame = skew.served_records(capture_dir, SPEC)
    # THEN its features are the catalog's computation (log1p), the id is text, the missing one is all nulls
    computed = frame.iloc[0].to_dict()
    assert computed[ENTITY_ID] == "1234" and computed[FEATURE_SOURCE] == SOURCE_COMPUTED
    assert computed["tenure_months"] == 7 and computed["monthly_charges"] == 80.25 and computed["plan"] == "basic"
    assert computed["log_support_calls_90d"] == pytest.approx(math.log1p(4), rel=1e-12)
    assert computed[FEATURE_EVENT_TIME] is None
    assert frame.iloc[1][FEATURE_SOURCE] == SOURCE_MISSING and frame.iloc[1][FEATURES].isna().all()


def test_served_records_of_no_capture_is_an_empty_frame_with_the_columns(tmp_path):
    for directory in (tmp_path / "absent", tmp_path):
        frame = skew.served_records(str(directory), SPEC)
        assert frame.empty and list(frame.columns) == COLUMNS and frame.attrs["by_id_requests"] == 0


def test_served_records_can_keep_a_seeded_sample_of_the_requests(tmp_path):
    # GIVEN 30 by-id requests of two records each, between plain requests
    plain = {name: VALUES[name] for name in FEATURES}
    lines = []
    for k in range(30):
        lines.append(capture_line([by_id(f"a-{k:02d}"), by_id(f"b-{k:02d}")], MAY_20))
        lines.append(capture_line([plain], MAY_20))
    capture_dir = write_capture(tmp_path / "capture", lines)
    whole = skew.served_records(capture_dir, SPEC)
    assert len(whole) == 60 and whole.attrs["by_id_requests"] == 30

    def sample(seed: int) -> list:
        frame = skew.served_records(capture_dir, SPEC, sample_requests=7, seed=seed)
        # THEN 7 whole requests (both records of each), of the 30 the scan saw
        assert len(frame) == 14 and frame.attrs["by_id_requests"] == 30
        ids = frame[ENTITY_ID].tolist()
        assert sorted(i[2:] for i in ids if i.startswith("a-")) == sorted(i[2:] for i in ids if i.startswith("b-"))
        return sorted(ids)

    first = sample(0)
    assert sample(0) == first and any(sample(s) != first for s in (1, 2, 3))
    assert len(skew.served_records(capture_dir, SPEC, sample_requests=30)) == 60
    # feature_skew reports the requests the scan saw and the records it read
    snapshots = write_snapshots(tmp_path / "s", [snapshot(f"{p}-{k:02d}", MAY_1) for p in "ab" for k in range(30)])
    section = skew.feature_skew(SPEC, skew.served_records(capture_dir, SPEC, sample_requests=7), snapshots, max_rate=0.01,
                                min_compared=1)
    assert (section["requests"], section["records"], section["sampled"], section["compared"]) == (30, 14, 14, 14)
    assert section["status"] == "pass"


# ---------------------------------------------------------------- feature_skew
def test_nothing_comparable_is_skipped_with_the_reason(tmp_path):
    # GIVEN no by-id records at all, then only records scored with every feature missing
    nothing = skew.feature_skew(SPEC, skew.served_records(str(tmp_path / "none"), SPEC), str(tmp_path / "no-snapshots"),
                                max_rate=0.01)
    missing_only = skew_of([at(MAY_5, by_id(f"a-{i}", SOURCE_MISSING, None)) for i in range(3)], str(tmp_path / "no-snapshots"))
    # THEN the section is skipped (the snapshots are not even read), nothing compared
    assert nothing == {"requests": 0, "records": 0, "sources": {}, "sampled": 0, "max_rate": 0.01, "tolerance": skew.DEFAULT_TOLERANCE,
                       "features": {}, "checks": [], "status": "skipped", "compared": 0, "max_mismatch_rate": None,
                       "reason": SKIP_REASON}
    assert (missing_only["status"], missing_only["compared"], missing_only["reason"]) == ("skipped", 0, SKIP_REASON)
    assert missing_only["requests"] == missing_only["records"] == 3 and missing_only["sources"] == {"missing": 3} and missing_only["sampled"] == 0


def test_served_values_equal_to_the_snapshot_pass_with_rate_zero(tmp_path):
    snapshots = write_snapshots(tmp_path / "s", [snapshot(f"a-{i}", MAY_1) for i in range(4)])
    rows = [at(MAY_5, by_id(f"a-{i}")) for i in range(3)] + [at(MAY_5, by_id("a-3", SOURCE_COMPUTED, None))]
    section = skew_of(rows, snapshots)
    # the computed record is counted, not compared (its caller's fields are newer than any snapshot)
    assert (section["status"], section["compared"], section["no_snapshot"], section["stale_lookups"]) == ("pass", 3, 0, 0)
    assert section["max_mismatch_rate"] == 0.0 and section["sampled"] == 3 and section["requests"] == section["records"] == 4
    assert section["sources"] == {SOURCE_STORE: 3, SOURCE_COMPUTED: 1}
    assert section["features"] == {name: {"mismatches": 0, "rate": 0.0, "largest": []} for name in FEATURES}
    assert [(c["feature"], c["status"], c["value"]) for c in section["checks"]] == [(name, "pass", 0.0) for name in FEATURES]


def test_numbers_compare_within_the_relative_tolerance(tmp_path):
    snapshots = write_snapshots(tmp_path / "s", [snapshot(f"a-{i}", MAY_1, monthly_charges=200.0) for i in range(4)])
    rows = [at(MAY_5, by_id("a-0", monthly_charges=201.9)),   # |diff| 1.9 <= 0.01 * 200
            at(MAY_5, by_id("a-1", monthly_charges=198.1)),   # the other side, still within
            at(MAY_5, by_id("a-2", monthly_charges=202.1)),   # 2.1 > 2: beyond
            at(MAY_5, by_id("a-3", monthly_charges=200.0))]
    section = skew_of(rows, snapshots, tolerance=0.01, max_rate=0.5)
    entry = section["features"]["monthly_charges"]
    assert entry["mismatches"] == 1 and entry["rate"] == 0.25
    # The id by its pseudonym and no value: the report is kept for ever; the request time finds it in the capture.
    assert entry["largest"] == [{"entity_pseudonym": pseudonym("a-2"), "inference_time": MAY_5, "source": SOURCE_STORE,
                                 "difference": pytest.approx(2.1)}]
    # the default tolerance (1e-6, relative) tells 4e-5 on 50 from 1e-4
    snapshots = write_snapshots(tmp_path / "d", [snapshot("a-0", MAY_1), snapshot("a-1", MAY_1)])
    section = skew_of([at(MAY_5, by_id("a-0", monthly_charges=50.00004)), at(MAY_5, by_id("a-1", monthly_charges=50.0001))],
                      snapshots)
    assert section["tolerance"] == 1e-6
    assert [e["entity_pseudonym"] for e in section["features"]["monthly_charges"]["largest"]] == [pseudonym("a-1")]


def test_categories_compare_after_trimming_and_lower_casing(tmp_path):
    snapshots = write_snapshots(tmp_path / "s", [snapshot(f"a-{i}", MAY_1, plan="pro") for i in range(3)])
    rows = [at(MAY_5, by_id("a-0", plan=" PRO ")), at(MAY_5, by_id("a-1", plan="Pro")), at(MAY_5, by_id("a-2", plan="basic"))]
    section = skew_of(rows, snapshots, max_rate=0.5)
    entry = section["features"]["plan"]
    assert entry["mismatches"] == 1 and entry["rate"] == pytest.approx(1 / 3)
    assert entry["largest"] == [{"entity_pseudonym": pseudonym("a-2"), "inference_time": MAY_5, "source": SOURCE_STORE,
                                 "difference": None}]
    # the sensitive attribute is in the snapshot but is no model input: it is not compared
    assert list(section["features"]) == FEATURES


def test_a_null_on_one_side_is_a_mismatch_on_both_it_is_not(tmp_path):
    snapshots = write_snapshots(tmp_path / "s", [
        snapshot("a-0", MAY_1, tenure_months=None, plan=None),  # null offline, null served: equal
        snapshot("a-1", MAY_1),                                 # a value offline, null served
        snapshot("a-2", MAY_1, tenure_months=None, plan=None),  # null offline, a value served
    ])
    rows = [at(MAY_5, by_id("a-0", tenure_months=None, plan=None)), at(MAY_5, by_id("a-1", tenure_months=None, plan=None)),
            at(MAY_5, by_id("a-2"))]
    section = skew_of(rows, snapshots, max_rate=1.0)
    for name in ("tenure_months", "plan"):
        entry = section["features"][name]
        assert entry["mismatches"] == 2, name
        assert sorted(e["entity_pseudonym"] for e in entry["largest"]) == sorted([pseudonym("a-1"), pseudonym("a-2")])
    assert section["features"]["monthly_charges"]["mismatches"] == 0


def test_a_request_before_any_snapshot_of_its_entity_is_counted_not_compared(tmp_path):
    snapshots = write_snapshots(tmp_path / "s", [snapshot("a-0", MAY_10), snapshot("a-1", MAY_1)])
    # a-0's request precedes its only snapshot (and differs from it: it must not count as a mismatch)
    rows = [at(MAY_5, by_id("a-0", tenure_months=99)), at(MAY_5, by_id("a-1")), at(MAY_5, by_id("a-unknown"))]
    section = skew_of(rows, snapshots)
    assert (section["compared"], section["no_snapshot"], section["sampled"]) == (1, 2, 3)
    assert section["status"] == "pass" and section["features"]["tenure_months"]["mismatches"] == 0


def test_the_join_picks_the_latest_snapshot_at_or_before_the_request(tmp_path):
    # GIVEN two snapshots of one entity (tenure 12 on May 1, 13 on May 10)
    snapshots = write_snapshots(tmp_path / "s", [snapshot("a-0", MAY_1, tenure_months=12),
                                                 snapshot("a-0", MAY_10, tenure_months=13)])
    rows = [at(MAY_5, by_id("a-0", tenure_months=12)),          # between them: May 1's
            at(MAY_10, by_id("a-0", event_time=MAY_10, tenure_months=13)),  # exactly at the second: May 10's
            at(MAY_20, by_id("a-0", event_time=MAY_10, tenure_months=13)),  # after both: May 10's
            at(MAY_5, by_id("a-0", tenure_months=13))]          # between them with the later value: a mismatch
    section = skew_of(rows, snapshots, max_rate=0.5)
    entry = section["features"]["tenure_months"]
    assert section["compared"] == 4 and entry["mismatches"] == 1
    [example] = entry["largest"]
    assert (example["inference_time"], example["difference"]) == (MAY_5, 1.0)
    assert section["stale_lookups"] == 0


def test_a_store_record_older_than_the_joined_snapshot_is_a_stale_lookup(tmp_path):
    snapshots = write_snapshots(tmp_path / "s", [snapshot("a-0", MAY_1, tenure_months=12),
                                                 snapshot("a-0", MAY_10, tenure_months=13),
                                                 snapshot("a-1", MAY_10)])
    rows = [
        at(MAY_20, by_id("a-0", event_time=MAY_1, tenure_months=12)),   # the store still held May 1's record: stale
        at(MAY_20, by_id("a-0", event_time=MAY_10, tenure_months=13)),  # the store had caught up
        at(MAY_20, by_id("a-1", SOURCE_COMPUTED, None)),     # computed: no stored event time, never stale
    ]
    section = skew_of(rows, snapshots, max_rate=0.5)
    assert section["stale_lookups"] == 1 and section["compared"] == 2
    # the stale record (served 12, May 10's snapshot 13) is the one mismatch
    assert [(e["entity_pseudonym"], e["inference_time"], e["difference"])
            for e in section["features"]["tenure_months"]["largest"]] == [(pseudonym("a-0"), MAY_20, 1.0)]


# The feature job writes whole seconds as "...:00Z" and sub-second rows as "...:00.250Z"; both must parse.
def test_stale_lookups_count_stored_event_times_of_every_iso_precision(tmp_path):
    snapshots = write_snapshots(tmp_path / "s", [snapshot("a-0", MAY_10), snapshot("a-1", MAY_10)])
    rows = [at(MAY_20, by_id("a-0", event_time="2026-05-01T00:00:00Z")),
            at(MAY_20, by_id("a-1", event_time="2026-05-01T00:00:00.250Z"))]  # both older than May 10's snapshot
    section = skew_of(rows, snapshots)
    assert section["compared"] == 2
    assert section["stale_lookups"] == 2


def test_sample_rows_caps_the_compared_rows_with_a_seeded_sample(tmp_path):
    # GIVEN 20 by-id records from the store (each differing from its snapshot by a distinct amount) and 5 missing ones
    snapshots = write_snapshots(tmp_path / "s", [snapshot(f"a-{i:02d}", MAY_1) for i in range(20)])
    rows = [at(MAY_5, by_id(f"a-{i:02d}", monthly_charges=50.0 + i + 1)) for i in range(20)]
    rows += [at(MAY_5, by_id(f"m-{i}", SOURCE_MISSING, None)) for i in range(5)]

    def compared_ids(seed: int) -> set:
        section = skew_of(rows, snapshots, max_rate=1.0, sample_rows=5, seed=seed)
        assert (section["requests"], section["records"], section["sampled"], section["compared"]) == (25, 25, 5, 5)
        assert section["sources"] == {SOURCE_STORE: 20, SOURCE_MISSING: 5}
        entry = section["features"]["monthly_charges"]
        assert entry["mismatches"] == 5 and entry["rate"] == 1.0
        return {e["entity_pseudonym"] for e in entry["largest"]}

    first = compared_ids(seed=0)
    # THEN 5 of the store records are compared, the same 5 for the same seed, another 5 for another seed
    assert len(first) == 5 and first <= {pseudonym(f"a-{i:02d}") for i in range(20)}
    assert compared_ids(seed=0) == first
    assert any(compared_ids(seed=s) != first for s in (1, 2, 3))
    # a cap at or above the comparable records compares them all
    whole = skew_of(rows, snapshots, max_rate=1.0, sample_rows=20)
    assert (whole["sampled"], whole["compared"], whole["features"]["monthly_charges"]["mismatches"]) == (20, 20, 20)


def test_largest_holds_at_most_five_examples_numbers_sorted_by_difference(tmp_path):
    snapshots = write_snapshots(tmp_path / "s", [snapshot(f"a-{i}", MAY_1) for i in range(8)])
    differences = [3.0, 8.0, 1.0, 6.0, 2.0, 7.0, 4.0, 5.0]
    rows = [at(MAY_5, by_id(f"a-{i}", monthly_charges=50.0 + d, plan="basic")) for i, d in enumerate(differences)]
    section = skew_of(rows, snapshots, max_rate=1.0)
    numeric = section["features"]["monthly_charges"]
    assert numeric["mismatches"] == 8
    assert [e["difference"] for e in numeric["largest"]] == [8.0, 7.0, 6.0, 5.0, 4.0]
    assert [e["entity_pseudonym"] for e in numeric["largest"]] == [pseudonym(f"a-{i}") for i in (1, 5, 3, 7, 6)]
    assert all(set(e) == {"entity_pseudonym", "inference_time", "source", "difference"} for e in numeric["largest"])
    categorical = section["features"]["plan"]
    assert categorical["mismatches"] == 8 and len(categorical["largest"]) == 5
    assert all(set(e) == {"entity_pseudonym", "inference_time", "source", "difference"} and e["difference"] is None
               for e in categorical["largest"])
    # Neither an id nor a served or stored value reaches the section (the report keeps every version for ever).
    kept = json.dumps(section)
    assert not any(f'"a-{i}"' in kept for i in range(8)) and "basic" not in kept and "58.0" not in kept


def test_a_check_per_feature_fails_above_max_rate_and_passes_at_it(tmp_path):
    snapshots = write_snapshots(tmp_path / "s", [snapshot(f"a-{i}", MAY_1) for i in range(4)])
    rows = [at(MAY_5, by_id("a-0", tenure_months=24))] + [at(MAY_5, by_id(f"a-{i}")) for i in range(1, 4)]
    at_limit = skew_of(rows, snapshots, max_rate=0.25)
    over = skew_of(rows, snapshots, max_rate=0.2)
    assert at_limit["status"] == "pass" and at_limit["max_mismatch_rate"] == 0.25
    assert [c["status"] for c in at_limit["checks"]] == ["pass"] * 4
    assert over["status"] == "fail" and over["max_mismatch_rate"] == 0.25
    assert [(c["feature"], c["status"]) for c in over["checks"]] == [
        ("tenure_months", "fail"), ("monthly_charges", "pass"), ("log_support_calls_90d", "pass"), ("plan", "pass")]
    assert over["checks"][0] == {"check": "feature_skew", "category": "skew", "value": 0.25, "threshold": 0.2, "op": ">",
                                 "status": "fail", "feature": "tenure_months",
                                 "detail": "1 of 4 served values differ from the snapshot"}


def test_skew_section_reads_the_capture_and_compares(tmp_path):
    snapshots = write_snapshots(tmp_path / "s", [snapshot("a-0", MAY_1), snapshot("a-1", MAY_1)])
    capture_dir = write_capture(tmp_path / "capture", [capture_line([by_id("a-0"), by_id("a-1", plan="basic")], MAY_20)])
    section = skew.skew_section(SPEC, capture_dir, snapshots, max_rate=0.1, min_compared=2)
    assert (section["status"], section["compared"], section["max_mismatch_rate"]) == ("fail", 2, 0.5)
    assert section["features"]["plan"]["largest"][0]["entity_pseudonym"] == pseudonym("a-1")


# ---------------------------------------------------------------- the monitor
class FakeCloudWatch:
    def __init__(self) -> None:
        self.data: List[Dict[str, Any]] = []

    def put_metric_data(self, *, Namespace: str, MetricData: List[Dict[str, Any]]) -> None:  # noqa: N803 - the API's names
        self.data.extend(MetricData)

    @property
    def names(self) -> Dict[str, float]:
        return {m["MetricName"]: m["Value"] for m in self.data if len(m["Dimensions"]) == 2}


def _plain(value: Any) -> Any:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.item() if hasattr(value, "item") else value


BY_ID_ROWS, SKEWED_ROWS = 40, 2


@pytest.fixture(scope="module")
def skew_window(tmp_path_factory, spec, reference):
    """Churn traffic (plain requests) plus 40 by-id requests, 2 of them with a tenure the snapshot does not hold,
    and the feature snapshots of those 40 customers a day before."""
    root = tmp_path_factory.mktemp("skew-window")
    window = write_window(root, spec, reference["model"], rows=400, seed=230)
    frame = replay.traffic(spec, BY_ID_ROWS, seed=231, start="2026-05-01", days=2)
    rid, et = spec.record_identifier, spec.event_time
    ids = [f"c-{i:03d}" for i in range(BY_ID_ROWS)]
    records = [{name: _plain(v) for name, v in row.items()} for row in frame[list(spec.frame_features)].to_dict("records")]
    snapshots = pd.DataFrame([{rid: i, et: "2026-05-01T00:00:00Z", **r} for i, r in zip(ids, records)])
    snapshots[et] = pd.to_datetime(snapshots[et], utc=True)
    (root / "snapshots").mkdir()
    snapshots.to_parquet(root / "snapshots" / "part-0.parquet", index=False)
    lines = []
    for k, (entity, record) in enumerate(zip(ids, records)):
        used = dict(record)
        if k < SKEWED_ROWS:
            used["tenure_months"] = (used["tenure_months"] or 0) + 30
        line = {**used, ENTITY_ID: entity, FEATURE_SOURCE: SOURCE_STORE, FEATURE_EVENT_TIME: "2026-05-01T00:00:00Z",
                "inference_id": f"by-id-{k}"}
        event = capture_record(request_body=json.dumps({"instances": [line]}), request_type="application/json",
                               response_body=json.dumps({"predictions": [{"score": 0.3, "label": 0}]}),
                               response_type="application/json", event_id=str(uuid.uuid4()),
                               when=dt.datetime(2026, 5, 2, 12, k, tzinfo=UTC))
        lines.append(json.dumps(event))
    folder = Path(window["capture"]) / "churn" / "AllTraffic" / "2026" / "05" / "02" / "12"
    folder.mkdir(parents=True)
    (folder / "by-id.jsonl").write_text("\n".join(lines) + "\n")
    return {**window, "snapshots": str(root / "snapshots"), "root": root}


def test_the_monitor_reports_and_publishes_the_skew_of_by_id_traffic(tmp_path, spec, reference, skew_window):
    cloudwatch = FakeCloudWatch()
    from pipeline_code.monitoring import monitor

    args = monitor_args(spec, reference, skew_window["capture"], str(tmp_path / "out"),
                        extra=["--feature-snapshots-dir", skew_window["snapshots"], "--max-skew-rate", "0.02",
                               "--min-skew-records", "40", "--publish-metrics", "--region", "eu-west-1"])
    assert monitor.main(args, cloudwatch_client=cloudwatch) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["healthy"], report["errors"]
    section = report["sections"]["feature_skew"]
    rate = SKEWED_ROWS / BY_ID_ROWS
    assert (section["status"], section["compared"], section["requests"], section["no_snapshot"]) == ("fail", 40, 40, 0)
    assert section["features"]["tenure_months"]["mismatches"] == SKEWED_ROWS
    assert {name for name, entry in section["features"].items() if entry["mismatches"]} == {"tenure_months"}
    assert report["summary"]["feature_skew_rate"] == pytest.approx(rate)
    assert report["thresholds"]["max_skew_rate"] == 0.02
    assert report["status"] == "alert"  # a finding, not a monitor failure
    failing = [c for c in report["checks"] if c["check"] == "feature_skew" and c["status"] == "fail"]
    assert [c["feature"] for c in failing] == ["tenure_months"]
    assert cloudwatch.names["FeatureSkewRate"] == pytest.approx(rate)
    assert [m["Unit"] for m in cloudwatch.data if m["MetricName"] == "FeatureSkewRate"] == ["None"]


def test_without_a_snapshots_dir_there_is_no_skew_in_the_report(tmp_path, spec, reference, skew_window):
    report = run(spec, reference, skew_window, str(tmp_path / "out"))
    assert report["healthy"], report["errors"]
    assert "feature_skew" not in report["sections"]
    assert "feature_skew_rate" not in report["summary"] and "max_skew_rate" not in report["thresholds"]
    assert not any(c["check"] == "feature_skew" for c in report["checks"])
    assert "FeatureSkewRate" not in {m["MetricName"] for m in report_mod.metric_data(report, "dev", "churn")}


@pytest.mark.parametrize("content, reason", [
    (None, "no parquet file under"),
    (b"PAR1 this is not a parquet file", "cannot read parquet under"),
])
def test_unreadable_snapshots_make_the_report_unhealthy_not_a_crash(tmp_path, spec, reference, skew_window, content, reason):
    # GIVEN a snapshots dir without any parquet (a stray text file), or with a corrupt parquet file
    snapshots = tmp_path / "snapshots"
    snapshots.mkdir()
    if content is None:
        (snapshots / "README.txt").write_text("the feature job wrote nothing yet\n")
    else:
        (snapshots / "part-0.parquet").write_bytes(content)
    # WHEN the monitor runs (run() asserts exit status 0)
    report = run(spec, reference, skew_window, str(tmp_path / "out"), extra=["--feature-snapshots-dir", str(snapshots)])
    # THEN the report is written, unhealthy, naming the failed section; the other sections still ran
    assert report["status"] == "unhealthy" and not report["healthy"] and report["summary"]["monitor_healthy"] == 0
    [error] = [e for e in report["errors"] if e["kind"] == "section_failed"]
    assert error["message"].startswith("feature_skew: InputError: ") and reason in error["message"]
    assert str(snapshots) in error["message"]
    assert report["sections"]["feature_skew"]["status"] == "error"
    assert report["summary"]["feature_skew_rate"] is None and report["thresholds"]["max_skew_rate"] == 0.01
    assert "data_drift" in report["sections"] and (tmp_path / "out" / "report.html").exists()


def test_each_features_skew_rate_is_published_with_its_feature_dimension():
    # GIVEN a healthy report whose skew check compared two features
    report = {"healthy": True, "summary": {"feature_skew_rate": 0.25},
              "sections": {"feature_skew": {"features": {"tenure": {"rate": 0.25}, "plan": {"rate": 0.0}}}}}
    # WHEN its metrics are built THEN the headline and one FeatureSkew per feature are published
    data = report_mod.metric_data(report, "dev", "churn")
    dims = [{"Name": "Environment", "Value": "dev"}, {"Name": "Model", "Value": "churn"}]
    assert {"MetricName": "FeatureSkewRate", "Dimensions": dims, "Value": 0.25, "Unit": "None"} in data
    per_feature = [d for d in data if d["MetricName"] == "FeatureSkew"]
    assert per_feature == [
        {"MetricName": "FeatureSkew", "Dimensions": dims + [{"Name": "Feature", "Value": "tenure"}], "Value": 0.25, "Unit": "None"},
        {"MetricName": "FeatureSkew", "Dimensions": dims + [{"Name": "Feature", "Value": "plan"}], "Value": 0.0, "Unit": "None"},
    ]
    # AND an unhealthy report publishes none of them
    assert not [d for d in report_mod.metric_data({**report, "healthy": False}, "dev", "churn")
                if d["MetricName"] in ("FeatureSkewRate", "FeatureSkew")]


def test_a_base64_encoded_by_id_request_is_read_like_a_plain_one(tmp_path):
    import base64

    record = json.loads(capture_line([by_id("a-1")], MAY_20))
    request = record["captureData"]["endpointInput"]
    request["data"] = base64.b64encode(request["data"].encode()).decode()
    request["encoding"] = "BASE64"
    frame = skew.served_records(write_capture(tmp_path / "capture", [json.dumps(record)]), SPEC)
    assert frame[ENTITY_ID].tolist() == ["a-1"] and frame["monthly_charges"].tolist() == [VALUES["monthly_charges"]]
    assert frame.attrs["by_id_requests"] == 1


def test_records_scored_from_the_callers_fresher_fields_are_not_skew(tmp_path):
    # GIVEN snapshots of May 1, and by-id records the store had no fresh entry for: scored from the caller's fields,
    # which moved on since (a month older customer)
    snapshots = write_snapshots(tmp_path / "s", [snapshot(f"a-{i}", MAY_1, tenure_months=12) for i in range(4)])
    rows = [at(MAY_20, by_id(f"a-{i}", SOURCE_COMPUTED, None, tenure_months=13)) for i in range(4)]
    section = skew_of(rows, snapshots)
    # THEN nothing is compared and nothing fails: the data moving on is not training/serving skew
    assert (section["status"], section["compared"], section["sources"]) == ("skipped", 0, {SOURCE_COMPUTED: 4})
    assert section["reason"] == SKIP_REASON


def test_a_handful_of_compared_records_is_reported_not_judged(tmp_path):
    # GIVEN three store records, one of which differs (a 33 % rate that would page people)
    snapshots = write_snapshots(tmp_path / "s", [snapshot(f"a-{i}", MAY_1) for i in range(3)])
    rows = [at(MAY_5, by_id("a-0", tenure_months=99)), at(MAY_5, by_id("a-1")), at(MAY_5, by_id("a-2"))]
    section = skew.feature_skew(SPEC, served(rows), snapshots, max_rate=0.01)
    # THEN with the default minimum the section is skipped, no rate published
    assert (section["status"], section["compared"], section["max_mismatch_rate"]) == ("skipped", 3, None)
    assert section["reason"] == f"3 store records compared, fewer than {skew.MIN_COMPARED}: reported, not judged"
