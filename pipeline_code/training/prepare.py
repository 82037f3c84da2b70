"""Build the training set: point-in-time join of features and labels, time split, frozen test set.

Inputs
------
``--features-dir``  parquet of computed features, as written by ``features/ingest.py``
                    (record id, ISO-8601 ``event_time`` string, every feature), *or* a
                    Feature Store offline-store export (the same columns plus
                    ``write_time``, ``api_invocation_time``, ``is_deleted``; for each
                    (record id, event time) the latest write wins, and every row of a
                    record id up to its latest ``DeleteRecord`` marker is dropped, as the
                    SageMaker SDK's DatasetBuilder reads deletes; an export without
                    ``is_deleted`` is refused).
``--labels-dir``    curated parquet of the dataset (record id, event time, label; any
                    other *catalog* column of the dataset is allowed and ignored).
``--frozen-test-dir`` a frozen test set (``test.parquet`` + ``manifest.json``) from an
                    earlier run, or empty/missing.

Processing
----------
1. Every input is checked before anything is written: missing columns, unexpected
   columns, column types, null keys, label values, duplicate keys - each problem is an
   :class:`InputError` naming the column.
2. **Point-in-time join**: each label row gets the *latest* feature row of the same
   record id whose event time is ``<=`` the label's event time (``pandas.merge_asof``,
   backward). A feature row from after the label time is never used; a label without any
   earlier feature row is dropped (and counted).
3. **Frozen test set**: when ``--frozen-test-dir`` holds one, it is reused unchanged
   (byte-identical copy, hash verified) and its (record id, event time) keys are removed
   from train/validation. Otherwise the latest ``--test-fraction`` of rows (by event
   time) becomes the test set and is written with its manifest, to be frozen by the caller. Either must have
   two groups of the sensitive attribute with ``--min-group-rows`` rows, or the gate could never judge fairness
   on it (refused, naming the groups and the fix). A new one in which a model input is null in every row is
   refused (it would be frozen so). A frozen one is refused when it was made from another origin
   (``--data-origin``: generated records vs your files), or when none of its keys is in data that spans or
   precedes its time range (other data); data that starts after it only warns. Only the frozen keys are left
   out, not the set's period: when train or validation reach its first event time (the data grew past it, or holds
   other rows of its period) the summary warns that the challenger's evaluation is not out-of-time, and the
   evaluation report and the model card say so (the trainer records its data period in the model).
   **Re-freeze** (``--test-set-refreeze when_stale``, the default): once the rows with event times after the frozen
   set's window are at least ``--test-fraction`` of the rows, the set is stale and is replaced by a new one taken as a
   first freeze takes it (the latest rows), so train and validation end before it again; its manifest
   (``refrozen``, ``replaced_test_sets``) and the summary (``test_set_refreeze``) say so, why, and the replaced set's
   sha256, version and window. ``never`` keeps a frozen set until it is deleted.
4. **Time split** of the remaining rows: the earliest go to train, the latest to
   validation (fractions renormalised when the test set is frozen). Rows sharing an
   event time never straddle two splits.

Outputs under ``--output-dir`` (SageMaker default ``/opt/ml/processing/output``)::

    train/train.parquet  validation/validation.parquet  test/test.parquet  test/manifest.json
    summary/prepare.json

The summary gives each split's rows and time range; for train and validation also ``sha256``, the digest of the
split's files as written (:func:`pipeline_code.core.integrity.directory_digest`: every file of its directory, by
relative path), which the pipeline registers with the version (``contract.SPLIT_SHA256_PROPERTIES``) and the audit
recomputes from what the split's S3 location holds; the test set's is ``test_set.sha256``.

Each parquet has: record id, ``event_time`` (label time, UTC timestamp), ``feature_event_time``
(time of the feature row used), the model features, the sensitive attribute, the slice
columns (numbers as float64, categories as strings) and the target as the model learns it
(:func:`encode_labels`): int64 0/1 (binary), the int64 class code in declared class order (multiclass;
string labels are normalised like every category), or float64 (regression).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import boto3

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline_code import catalog
from pipeline_code.core import integrity, problem
from pipeline_code.core.contract import (
    DATA_FILES, DATA_GENERATED, FEATURE_EVENT_TIME, MANIFEST_FILE, PREPARE_SUMMARY_DIR, PREPARE_SUMMARY_FILE,
    REFREEZE_NEVER, REFREEZE_WHEN_STALE, SPLIT_PROPERTIES, TEST_FILE, TEST_SET_REFREEZE_POLICIES,
)  # fmt: skip
from pipeline_code.core.thresholds import DEFAULT_MIN_GROUP_ROWS, fairness_shortfall
from pipeline_code.training import data_io
from pipeline_code.training.data_io import InputError
from pipeline_code.training.spec import ModelSpec, add_evidence_argument, add_model_spec_argument

PROG = "python -m pipeline_code.training.prepare"
# Columns a Feature Store offline store adds (ignored; used to resolve re-writes and deletes),
# and the partition columns of a Glue-table offline store when an export carries them.
OFFLINE_STORE_COLUMNS = ("write_time", "api_invocation_time", "is_deleted")
OFFLINE_STORE_PARTITION_COLUMNS = ("year", "month", "day", "hour")

MANIFEST_FORMAT = "mlops-loop/frozen-test-set/v1"
# How a frozen test set is replaced, as the refusals say it.
REPLACE_FROZEN = "so that the next run freezes a new one from the data it has then (the champion is judged on the new rows too)"
SPLITS = ("train", "validation", "test")
_TIMESTAMP = pa.timestamp("us", tz="UTC")
# Row groups of 128k rows: readers decode one group at a time, so their transient buffers
# stay bounded instead of growing with the split.
ROW_GROUP_ROWS = 131_072


@dataclass(frozen=True)
class SplitFractions:
    train: float = 0.7
    validation: float = 0.15
    test: float = 0.15

    def __post_init__(self) -> None:
        for name in SPLITS:
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise ValueError(f"--{name}-fraction must be in (0, 1), got {value}")
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"split fractions must sum to 1, got {self.train} + {self.validation} + {self.test} = {total}")


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------
def prepare(
    spec: ModelSpec,
    features_dir: str,
    labels_dir: str,
    output_dir: str,
    *,
    frozen_test_dir: Optional[str] = None,
    fractions: SplitFractions = SplitFractions(),
    test_set_version: str = "1",
    now: Optional[dt.datetime] = None,
    min_group_rows: int = DEFAULT_MIN_GROUP_ROWS,
    frozen_test_location: Optional[str] = None,
    data_origin: Optional[Dict[str, Any]] = None,
    test_set_refreeze: str = REFREEZE_WHEN_STALE,
) -> Dict[str, Any]:
    """Run the whole preparation; return the summary (also written to ``summary/prepare.json``), whose train and
    validation splits carry the digest of the files written (``sha256``).

    ``test_set_refreeze`` (default ``when_stale``): a frozen test set that has gone stale - the rows with event times
    after its window are at least ``fractions.test`` of the rows prepared (:func:`_staleness`) - is replaced by a new
    one taken from the latest rows exactly as a first freeze takes it, so train and validation end before it; its
    manifest and the summary (``test_set_refreeze``) say it was re-frozen, why, and which set it replaced. ``never``
    reuses a frozen set whatever the data (the summary still says whether it is stale, and the not-out-of-time warning
    how to replace it). A stale set whose replacement could not be frozen (a split empty or of one class - regression:
    one value -, two fairness groups, a model input null in every row) is reused with a warning saying why.

    The test set (new or frozen) must have two groups of the sensitive attribute with ``min_group_rows`` rows
    (the gate's ``min_group_rows``), or the gate could never judge fairness on it. Messages name the frozen test
    set by ``frozen_test_location`` (where it is kept; ``frozen_test_dir`` by default).

    ``data_origin`` (default None: not recorded, as in the pipeline, whose data is the lake): where the records came
    from, ``{"kind": "generated"}`` or ``{"kind": "files", "source": ..., "sha256": ...}``; a new test set's manifest
    records it, and a frozen one recorded from the other kind is refused (:func:`_check_origin`). A frozen test set
    none of whose keys is in the data is refused too, unless the data starts after it (a warning) or is generated
    (whose batches have distinct ids by design): :func:`_check_frozen_keys_present`.

    Raises:
        InputError: any input problem, raised before any output is written.
    """
    if test_set_refreeze not in TEST_SET_REFREEZE_POLICIES:
        raise ValueError(f"test_set_refreeze must be one of {list(TEST_SET_REFREEZE_POLICIES)}, got {test_set_refreeze!r}")
    dataset = spec.catalog_dataset
    rid, et = dataset.record_identifier, dataset.event_time
    features, feature_stats = _load_features(spec, features_dir)
    labels, label_stats = load_labels(spec, labels_dir)
    where = frozen_test_location or frozen_test_dir
    frozen = (_load_frozen_test(spec, frozen_test_dir, where, data_origin)
              if not data_io.is_empty_dir(frozen_test_dir) else None)

    keys = _Keys.of(spec, features, labels)
    if not feature_stats["offline_store_export"]:  # an export's re-writes were resolved already
        _check_unique_keys(f"features ({features_dir})", keys.feature_codes, keys.feature_times, keys.dictionary, rid, et)
    _check_unique_keys(f"labels ({labels_dir})", keys.label_codes, keys.label_times, keys.dictionary, rid, et)
    joined, join_stats = point_in_time_join(spec, labels, features, keys=keys)
    del features, labels, keys

    warnings: List[str] = []
    refreeze: Optional[Dict[str, Any]] = None  # None: no frozen set was found (a first freeze)
    replaced: Optional[Dict[str, Any]] = None  # the manifest of the stale set a re-freeze replaces
    if frozen is not None:
        frozen_table, manifest, frozen_path = frozen
        all_rows = joined
        joined, excluded = _exclude_keys(joined, frozen_table, rid, et)
        key_warnings = []
        if not excluded and (data_origin or {}).get("kind") != DATA_GENERATED:
            key_warnings = _check_frozen_keys_present(spec, all_rows, frozen_table, where)  # refuses other data's set
        refreeze = _staleness(all_rows, frozen_table, et, fractions.test, test_set_refreeze)
        if refreeze["stale"] and test_set_refreeze == REFREEZE_WHEN_STALE:
            candidate = _first_freeze_splits(all_rows, et, fractions)
            unfit = _unfreezable(spec, candidate, all_rows, min_group_rows, fractions)
            if unfit is None:
                joined, excluded, splits, replaced = all_rows, 0, candidate, manifest
                refreeze.update(refrozen=True, reason=_refreeze_reason(refreeze, manifest, candidate["test"], et, fractions),
                                previous_test_set=_test_set_entry(manifest))
                frozen = None
            else:
                refreeze["reason"] = (f"the frozen test set is stale ({_stale_text(refreeze, fractions)}) but was not "
                                      f"re-frozen: {unfit}; it is reused, so a challenger is not judged out-of-time")
                warnings.append(refreeze["reason"])
        del all_rows
    if frozen is not None:
        warnings += key_warnings
        cut = _time_cut(joined.column(et), fractions.train / (fractions.train + fractions.validation))
        splits = {"train": joined.slice(0, cut), "validation": joined.slice(cut)}
        warnings += _not_out_of_time_warnings(splits, frozen_table, et, where, refreeze, fractions)
    else:
        if replaced is None:
            excluded = 0
            splits = _first_freeze_splits(joined, et, fractions)
        frozen_table, manifest, frozen_path = None, None, None
    for name, table in splits.items():
        _check_split(name, table, spec, joined)
    if frozen is None:
        _check_fairness_groups(spec, splits["test"], min_group_rows, f"the new test set ({splits['test'].num_rows} rows: the latest "
                               f"{fractions.test:.0%} by event time)", "; it would be frozen for every later run, so "
                               "nothing is written: provide more labelled data, or lower gate.min_group_rows")
    else:
        _check_fairness_groups(spec, frozen_table, min_group_rows, f"the frozen test set ({where}; version "
                               f"{manifest['version']}, {frozen_table.num_rows} rows)", ", so the gate would reject every "
                               f"challenger: lower gate.min_group_rows, or delete the frozen test set {REPLACE_FROZEN}")
    test_table = splits["test"] if frozen is None else frozen_table
    if frozen is None:
        _check_no_empty_feature(spec, test_table, f"the new test set ({test_table.num_rows} rows: the latest "
                                f"{fractions.test:.0%} by event time)")
    warnings += uninformative_feature_warnings(spec, splits["train"], "training")
    warnings += uninformative_feature_warnings(spec, test_table, "new test set" if frozen is None else "frozen test set")
    warnings += unseen_category_warnings(spec, splits["train"], test_table)

    # ---- everything is valid: write -------------------------------------------------
    created_at = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    test_dir = os.path.join(output_dir, "test")
    # The frozen set may be read from the test output itself (e.g. both mapped to one place).
    in_place = frozen is not None and os.path.realpath(os.path.dirname(frozen_path)) == os.path.realpath(test_dir)
    for name in SPLITS:
        if not (name == "test" and in_place):
            _clear_split_dir(os.path.join(output_dir, name))
    for name in ("train", "validation"):
        pq.write_table(splits[name], os.path.join(output_dir, name, f"{name}.parquet"), row_group_size=ROW_GROUP_ROWS)
    # Of everything in each registered split's directory once written: what its output uploads and training reads.
    digests = {name: integrity.directory_digest(os.path.join(output_dir, name)) for name in SPLIT_PROPERTIES}
    if frozen is not None:
        if not in_place:
            shutil.copyfile(frozen_path, os.path.join(test_dir, TEST_FILE))
            shutil.copyfile(os.path.join(os.path.dirname(frozen_path), MANIFEST_FILE), os.path.join(test_dir, MANIFEST_FILE))
        test_manifest = manifest
    else:
        test_manifest = write_frozen_test_set(
            spec, splits["test"], test_dir, created_at=created_at, data_origin=data_origin,
            version=test_set_version if replaced is None else _next_version(replaced["version"], test_set_version),
            refrozen=None if replaced is None else {"reason": refreeze["reason"], "rows": refreeze["rows"],
                                                    "rows_after_previous": refreeze["rows_after_test_set"],
                                                    "previous": refreeze["previous_test_set"]},
            replaced_test_sets=None if replaced is None else [
                refreeze["previous_test_set"], *(replaced.get("replaced_test_sets") or [])])

    summary = {
        "model": spec.name,
        "dataset": spec.dataset,
        "created_at": created_at.isoformat(),
        "inputs": {"features_dir": features_dir, "labels_dir": labels_dir, "frozen_test_dir": frozen_test_dir},
        **({"data_origin": data_origin} if data_origin else {}),
        "features": feature_stats,
        "labels": label_stats,
        "join": join_stats,
        "frozen_test_set_reused": frozen is not None,
        "frozen_test_set_refrozen": replaced is not None,
        # Whether a frozen set found had gone stale and was replaced (None: there was none, a first freeze).
        "test_set_refreeze": refreeze,
        "rows_excluded_as_test_keys": excluded,
        "splits": {
            name: {**_split_summary(splits[name] if name in splits else frozen_table, spec, et),
                   **({"sha256": digests[name]} if name in digests else {})}
            for name in SPLITS
        },
        "test_set": {k: test_manifest[k] for k in ("sha256", "rows", "version", "created_at", "time_range")},
        "fractions": {"train": fractions.train, "validation": fractions.validation, "test": fractions.test},
        "warnings": warnings,
    }
    data_io.write_json(os.path.join(output_dir, PREPARE_SUMMARY_DIR, PREPARE_SUMMARY_FILE), summary)
    return summary


@dataclass
class _Keys:
    """Integer record-id codes (one dictionary shared by features and labels) and UTC microseconds."""

    feature_codes: np.ndarray
    label_codes: np.ndarray
    dictionary: pa.Array
    feature_times: np.ndarray
    label_times: np.ndarray

    @classmethod
    def of(cls, spec: ModelSpec, features: pa.Table, labels: pa.Table) -> "_Keys":
        rid, et = spec.record_identifier, spec.event_time
        codes, dictionary = _id_codes(features.column(rid), labels.column(rid))
        n = features.num_rows
        return cls(codes[:n], codes[n:], dictionary, _micros(features.column(et)), _micros(labels.column(et)))


def point_in_time_join(
    spec: ModelSpec, labels: pa.Table, features: pa.Table, *, keys: Optional[_Keys] = None
) -> Tuple[pa.Table, Dict[str, Any]]:
    """For each label row, the latest feature row of its record id at or before its event time.

    ``labels``: record id (string), event time (timestamp us UTC), target (int64).
    ``features``: record id, event time (timestamp us UTC), the frame features.
    Returns the joined table sorted by (event time, record id) and join statistics.
    Only integer keys are sorted and merged; each input is gathered (``take``) once.
    """
    rid, et = spec.record_identifier, spec.event_time
    keys = keys or _Keys.of(spec, features, labels)
    left = pd.DataFrame(
        {"code": keys.label_codes, "t": keys.label_times, "label_row": np.arange(labels.num_rows, dtype=np.int64)}
    ).sort_values("t", kind="stable")
    right = pd.DataFrame(
        {"code": keys.feature_codes, "ft": keys.feature_times, "feature_row": np.arange(features.num_rows, dtype=np.int64)}
    ).sort_values("ft", kind="stable")
    merged = pd.merge_asof(
        left, right, left_on="t", right_on="ft", by="code", direction="backward", allow_exact_matches=True
    )
    del left, right
    matched = merged["feature_row"].notna().to_numpy()
    label_rows = merged["label_row"].to_numpy()[matched]
    feature_rows = merged["feature_row"].to_numpy()[matched].astype(np.int64)
    if len(feature_rows):  # the contract, asserted: never a feature from the future
        assert (merged["ft"].to_numpy()[matched] <= merged["t"].to_numpy()[matched]).all()
    del merged
    # Final order: (event time, record id as text) - independent of the input files' order.
    id_rank = np.empty(len(keys.dictionary), dtype=np.int64)
    id_rank[pc.array_sort_indices(keys.dictionary).to_numpy(zero_copy_only=False)] = np.arange(len(keys.dictionary))
    order = np.lexsort((id_rank[keys.label_codes[label_rows]], keys.label_times[label_rows]))
    label_rows, feature_rows = label_rows[order], feature_rows[order]

    label_part = labels.take(pa.array(label_rows))
    feature_part = features.select([et, *spec.frame_features]).take(pa.array(feature_rows))
    columns = {
        rid: label_part.column(rid).cast(pa.string()),
        et: label_part.column(et),
        FEATURE_EVENT_TIME: feature_part.column(et),
    }
    for name in spec.frame_features:
        columns[name] = _normalise_feature(feature_part.column(name), spec.is_categorical(name))
    columns[spec.target] = label_part.column(spec.target)
    joined = pa.table(columns)
    stats = {"label_rows": labels.num_rows, "matched": int(matched.sum()), "unmatched_labels_dropped": int((~matched).sum())}
    return joined, stats


def write_frozen_test_set(
    spec: ModelSpec, test: pa.Table, directory: str, *, version: str, created_at: dt.datetime,
    data_origin: Optional[Dict[str, Any]] = None, refrozen: Optional[Dict[str, Any]] = None,
    replaced_test_sets: Optional[List[Dict[str, Any]]] = None,
) -> Dict[str, Any]:
    """Write ``test.parquet`` + ``manifest.json`` into ``directory``; return the manifest (with ``data_origin`` when
    given: where its rows came from; with ``refrozen`` when it replaces a stale set: why, and that set's sha256, version
    and window; with ``replaced_test_sets``, every set it and its predecessors replaced, latest first)."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, TEST_FILE)
    pq.write_table(test, path, row_group_size=ROW_GROUP_ROWS)
    times = test.column(spec.event_time)
    manifest = {
        "format": MANIFEST_FORMAT,
        "version": str(version),
        "created_at": created_at.isoformat(),
        "model": spec.name,
        "dataset": spec.dataset,
        "target": spec.target,
        "record_identifier": spec.record_identifier,
        "event_time": spec.event_time,
        "file": TEST_FILE,
        "sha256": data_io.sha256_file(path),
        "rows": test.num_rows,
        **_label_counts(test.column(spec.target), spec),
        **({"problem_type": spec.problem_type, "classes": list(spec.classes)} if spec.problem_type != problem.BINARY else {}),
        "columns": test.column_names,
        "time_range": data_io.time_range(times),
        "feature_definitions": feature_definitions(spec),
        **({"data_origin": dict(data_origin)} if data_origin else {}),
        **({"refrozen": refrozen} if refrozen else {}),
        **({"replaced_test_sets": replaced_test_sets} if replaced_test_sets else {}),
    }
    data_io.write_json(os.path.join(directory, MANIFEST_FILE), manifest)
    return manifest


def feature_definitions(spec: ModelSpec) -> Dict[str, str]:
    """How each feature column of a prepared frame is computed (type and expression), as a frozen test set's manifest
    records it: rows computed by other definitions are not what the model now sees."""
    declared = declared_definitions(spec.catalog_dataset.to_declaration())
    return {name: declared[name] for name in spec.frame_features}


def declared_definitions(declaration: Mapping[str, Any]) -> Dict[str, str]:
    """How each feature of a dataset declaration (``Dataset.to_declaration()``, as a model's ``feature_metadata.json``
    carries it) is computed: its type and expression, the text a frozen test set's manifest records per column."""
    return {f["name"]: f"{f['type']} {f['expr']}" for f in declaration.get("features") or ()}


def read_test_set(directory: str, *, verify: bool = True) -> Tuple[pd.DataFrame, Dict[str, Any]]:
    """A frozen test set as pandas (categories as ``category`` dtype) and its manifest.

    Raises:
        InputError: manifest missing/invalid, or the parquet bytes do not match its sha256.
    """
    manifest, path = _verified_manifest(directory, what="test set", verify=verify)
    return pq.read_table(path).to_pandas(), manifest


# --------------------------------------------------------------------------------------
# Loading and validation
# --------------------------------------------------------------------------------------
def load_feature_snapshots(spec: ModelSpec, path: str) -> pa.Table:
    """The feature snapshots under ``path`` as the join reads them: record id, event time (timestamp us UTC)
    and the frame features, one row per (record id, event time) after resolving offline-store re-writes and
    deletes; the same reader and checks as training (the drift monitor's skew check uses it).

    Raises:
        InputError: no parquet under ``path``, or columns that are not the dataset's feature frame.
    """
    return _load_features(spec, path)[0]


# A record id is text to every later step (joins, captured inference ids, the online store's identifier); a dataset
# may declare it an integer, which is read as its decimal text (as the feature job writes it).
_IDENTIFIER = "a string or an integer (the record id)"


def _is_identifier(arrow_type: pa.DataType) -> bool:
    return data_io.is_string(arrow_type) or pa.types.is_integer(arrow_type)


# Prepare's peak memory per value of the features read (records x columns) above its start: about 19 bytes measured at
# 300 features (5.7 KB a record, 10,000 and 30,000 generated records: docs/training.md, Scale limits). The guard takes
# less, so that it refuses only what cannot fit, and a base for the libraries and the labels of a small run.
PEAK_BYTES_PER_VALUE = 16
PEAK_BASE_BYTES = 256 * 1024**2


def _available_memory() -> Optional[int]:
    """Bytes this process may still use (None: unknown), as the monitor's late-label guard reads them."""
    from pipeline_code.monitoring.late_label_guard import available_memory

    return available_memory()


def _memory_problem(what: str, rows: int, columns: int) -> Optional[str]:
    """Why reading ``rows`` records of ``columns`` columns would not fit the memory left, else None: a job killed for
    memory says nothing of why, and one refused here names the size and the fix before anything is read."""
    needed = PEAK_BASE_BYTES + PEAK_BYTES_PER_VALUE * rows * columns
    left = _available_memory()
    if left is None or needed <= left:
        return None
    gib = 1024**3
    return (f"{what}: {rows:,} records x {columns} columns need about {needed / gib:.1f} GiB at Prepare's peak "
            f"(~{PEAK_BYTES_PER_VALUE} bytes a value) and this machine has {left / gib:.1f} GiB left: it would be killed "
            "for memory; give the training pipeline a larger training.processing_instance_type (ml.m5.24xlarge: 384 GiB), "
            "or in a local run free memory on your machine, or train on fewer records (docs/training.md, Scale limits)")


def _load_features(spec: ModelSpec, path: str) -> Tuple[pa.Table, Dict[str, Any]]:
    dataset = spec.catalog_dataset
    rid, et = dataset.record_identifier, dataset.event_time
    what = f"features ({path})"
    categorical = [n for n in spec.frame_features if spec.is_categorical(n)]
    data = data_io.parquet_dataset(path, what=what, dictionary_columns=categorical)
    names = data.schema.names
    required = [rid, et, *spec.frame_features]
    allowed = set(required) | set(dataset.feature_names) | set(OFFLINE_STORE_COLUMNS) | set(OFFLINE_STORE_PARTITION_COLUMNS)
    _check_columns(what, names, required, allowed, hint="expected the feature frame of dataset " + repr(dataset.name))
    problems = []
    problems += _type_problem(data.schema, rid, _is_identifier, _IDENTIFIER)
    problems += _type_problem(data.schema, et, data_io.is_timestamp_or_string, "an ISO-8601 string or a timestamp")
    for name in spec.frame_features:
        if spec.is_categorical(name):
            problems += _type_problem(data.schema, name, data_io.is_string, "a string (categorical feature)")
        else:
            problems += _type_problem(
                data.schema, name, data_io.is_number, f"a number ({spec.feature_type(name)} feature)"
            )
    if "is_deleted" in names:
        problems += _type_problem(
            data.schema, "is_deleted", lambda t: pa.types.is_boolean(t) or data_io.is_string(t), "a boolean"
        )
    for name in ("write_time", "api_invocation_time"):
        if name in names:
            problems += _type_problem(data.schema, name, data_io.is_timestamp_or_string, "a timestamp")
    if problems:
        raise InputError(f"{what}: " + "; ".join(problems))

    offline = [c for c in OFFLINE_STORE_COLUMNS if c in names]
    if offline and "is_deleted" not in offline:
        # Without it a DeleteRecord marker (features null, the delete's later event time) is a row like any other, and
        # every earlier row of the erased id joins its labels: refused rather than trained on.
        raise InputError(f"{what}: an export of the offline store (it has {sorted(offline)}) without its column "
                         "'is_deleted': a DeleteRecord marker would read as a record and the rows of an erased record "
                         "id would be trained on; export every column of the offline store's table (SELECT *, or add "
                         "is_deleted)")
    problem = _memory_problem(what, data.count_rows(), len(required))
    if problem:
        raise InputError(problem)
    table = data_io.read_columns(data, required + offline, what=what)
    _check_no_nulls(what, table, (rid, et))
    table = table.set_column(table.schema.get_field_index(rid), rid, table.column(rid).cast(pa.string()))
    times = _micros(table.column(et), what=what, name=et)
    table = table.set_column(table.schema.get_field_index(et), et, pa.array(times, type=pa.int64()).cast(_TIMESTAMP))
    stats: Dict[str, Any] = {"rows_read": table.num_rows, "offline_store_export": bool(offline)}
    if offline:
        table, dropped_rewrites, dropped_deleted, deleted_records = _resolve_offline_store(table, rid, et, what)
        stats.update({"superseded_writes_dropped": dropped_rewrites, "deleted_rows_dropped": dropped_deleted,
                      "deleted_records": deleted_records})
    stats["rows"] = table.num_rows
    return table.select([rid, et, *spec.frame_features]), stats


def load_labels(spec: ModelSpec, path: str) -> Tuple[pa.Table, Dict[str, Any]]:
    """The labelled records of the curated data in ``path``: record id (text), event time (timestamp, UTC) and the
    target encoded (0/1, the class's index, the value), records without a label left out; and counts. A label the
    model's problem type cannot take is an :class:`InputError` naming it."""
    dataset = spec.catalog_dataset
    rid, et, target = dataset.record_identifier, dataset.event_time, spec.target
    what = f"labels ({path})"
    data = data_io.parquet_dataset(path, what=what)
    names = data.schema.names
    required = [rid, et, target]
    allowed = set(required) | {c.name for c in dataset.columns}
    _check_columns(what, names, required, allowed, hint=f"expected curated columns of dataset {dataset.name!r}")
    problems = []
    problems += _type_problem(data.schema, rid, _is_identifier, _IDENTIFIER)
    problems += _type_problem(data.schema, et, data_io.is_timestamp_or_string, "a timestamp or an ISO-8601 string")
    string_classes = spec.problem_type == problem.MULTICLASS and dataset.column(target).dtype == catalog.STRING
    if string_classes:
        problems += _type_problem(data.schema, target, data_io.is_string, "a string (the class)")
    else:
        problems += _type_problem(
            data.schema, target, lambda t: data_io.is_number(t) or pa.types.is_boolean(t), _LABEL_KIND[spec.problem_type]
        )
    if problems:
        raise InputError(f"{what}: " + "; ".join(problems))
    table = data_io.read_columns(data, required, what=what)
    _check_no_nulls(what, table, (rid, et))
    y = encode_labels(table.column(target), spec, what=what)
    known = ~np.isnan(y)
    times = _micros(table.column(et), what=what, name=et)
    table = pa.table(
        {
            rid: table.column(rid).cast(pa.string()),
            et: pa.array(times, type=pa.int64()).cast(_TIMESTAMP),
            target: pa.array(y, type=pa.float64()),
        }
    ).filter(pa.array(known))
    if spec.problem_type != problem.REGRESSION:
        table = table.set_column(2, target, table.column(target).cast(pa.int64()))
    return table, {"rows_read": int(len(y)), "null_labels_dropped": int((~known).sum()), "rows": table.num_rows}


_LABEL_KIND = {problem.BINARY: "a 0/1 number (the label)", problem.MULTICLASS: "an integer class (the label)",
               problem.REGRESSION: "a number (the target)"}


def encode_labels(column: Any, spec: ModelSpec, *, what: str) -> np.ndarray:
    """The label column as the model learns it (float64, NaN where the label is missing): 0/1 for a binary model,
    the class code (position in ``spec.classes``) for a multiclass one, the value for a regression one.

    Raises:
        InputError: a value the problem type cannot learn from (not 0/1, an undeclared class, not finite),
            naming ``what`` (the file), the column and the fix.
    """
    target = spec.target
    declared = spec.catalog_dataset.column(target)
    if spec.problem_type == problem.MULTICLASS and declared.dtype == catalog.STRING:
        values = pa.array(column.to_pylist() if hasattr(column, "to_pylist") else list(column), type=pa.string()).to_pylist()
        coder = catalog.ClassCoder(spec.classes)
        codes = [None if v is None else coder.code(v) for v in values]
        unknown = sorted({catalog.normalise_category(v) for v, c in zip(values, codes) if v is not None and c is None})
        if unknown:
            raise InputError(f"{what}: column {target!r} holds classes {unknown[:5]} that are not declared; allowed: "
                             f"{', '.join(spec.classes)} (add them to the column's allowed values, or fix the labels)")
        return np.array([np.nan if c is None else c for c in codes], dtype=np.float64)
    y = pa.array(column.to_pylist() if hasattr(column, "to_pylist") else list(column)).cast(pa.float64()).to_numpy(zero_copy_only=False)
    known = ~np.isnan(y)
    if spec.problem_type == problem.BINARY:
        bad = np.unique(y[known & (y != 0.0) & (y != 1.0)])
        if len(bad):
            raise InputError(f"{what}: column {target!r} must hold 0/1 labels, found {bad[:5].tolist()}")
        return y
    if not np.isfinite(y[known]).all():
        raise InputError(f"{what}: column {target!r} must hold finite numbers, found {np.unique(y[known & ~np.isfinite(y)])[:5].tolist()}")
    if spec.problem_type == problem.MULTICLASS:  # an integer target: classes min .. max
        low = int(declared.minimum)
        codes = y - low
        bad = np.unique(y[known & ((codes != np.round(codes)) | (codes < 0) | (codes >= len(spec.classes)))])
        if len(bad):
            raise InputError(f"{what}: column {target!r} holds {bad[:5].tolist()}, not classes; allowed: "
                             f"{', '.join(spec.classes)} (the column's min .. max)")
        return codes
    return y


def _load_frozen_test(spec: ModelSpec, directory: str, where: str, data_origin: Optional[Dict[str, Any]] = None
                      ) -> Tuple[pa.Table, Dict[str, Any], str]:
    what = f"frozen test set ({where})"
    replace = f"delete it {REPLACE_FROZEN}"
    manifest, path = _verified_manifest(directory, what=what, verify=True)
    _check_origin(manifest.get("data_origin"), data_origin, what, where)
    # The labels are stored encoded, so a set made for another problem type or class list would be misread
    # (a binary set's manifest names neither).
    found = {"problem_type": problem.BINARY, "classes": ["0", "1"], **manifest}
    expected = {"model": spec.name, "dataset": spec.dataset, "target": spec.target, "problem_type": spec.problem_type,
                "classes": list(spec.classes)}
    for key, wanted in expected.items():
        if found.get(key) != wanted:
            raise InputError(f"{what}: manifest {key!r} is {found.get(key)!r} but this run prepares {wanted!r}; this is "
                             f"another model's or an earlier declaration's test set: {replace}")
    table = pq.read_table(path)
    required = [spec.record_identifier, spec.event_time, *spec.frame_features, spec.target]
    missing = [c for c in required if c not in table.column_names]
    if missing:
        raise InputError(f"{what}: missing columns {missing} needed by model {spec.name!r} (the feature set changed "
                         f"since it was frozen); {replace}")
    # A set frozen before the manifest recorded them is taken as it is.
    recorded = manifest.get("feature_definitions") or {}
    changed = [name for name, now in feature_definitions(spec).items() if name in recorded and recorded[name] != now]
    if changed:
        raise InputError(f"{what}: its {changed} were computed by other definitions (type or expression) than the "
                         f"dataset declares now, so its rows are not what the model sees; {replace}")
    if table.num_rows != manifest.get("rows"):
        raise InputError(f"{what}: {table.num_rows} rows but the manifest says {manifest.get('rows')}")
    return table, manifest, path


def check_frozen_origin(frozen_test_dir: str, data_origin: Optional[Dict[str, Any]], where: str = "") -> None:
    """What Prepare refuses of the frozen test set in ``frozen_test_dir`` (``where``: where it says the set is, by
    default that directory) before the data it prepares matters: a manifest that does not verify, or a set frozen from
    the other kind of records than ``data_origin`` (:func:`_check_origin`), with Prepare's message. Nothing when no set
    is frozen there yet. A caller that curates the data first (the local run) asks before that work."""
    if data_io.is_empty_dir(frozen_test_dir):
        return
    what = f"frozen test set ({where or frozen_test_dir})"
    manifest, _path = _verified_manifest(frozen_test_dir, what=what, verify=True)
    _check_origin(manifest.get("data_origin"), data_origin, what, where or frozen_test_dir)


def _origin_text(origin: Dict[str, Any]) -> str:
    if origin.get("kind") == DATA_GENERATED:
        return "generated records"
    digest = str(origin.get("sha256") or "")[:12]
    return f"your files ({origin.get('source')}{', sha256 ' + digest if digest else ''})"


def _check_origin(recorded: Optional[Dict[str, Any]], current: Optional[Dict[str, Any]], what: str, where: str) -> None:
    """Refuse a frozen test set made from generated records for a run on the user's files, or the reverse: its rows
    are not this data's, so every evaluation on it would measure the wrong thing. Another file (or a grown one) of
    the same kind is the usual case - more data since - and is judged by its keys instead
    (:func:`_check_frozen_keys_present`). A set frozen before manifests recorded an origin, or a run that gives none
    (the pipeline), is not checked."""
    if not recorded or not current or recorded.get("kind") == current.get("kind"):
        return
    raise InputError(f"{what}: it was frozen from {_origin_text(recorded)}, but this run prepares {_origin_text(current)}; "
                     f"its rows are not this data's, so every evaluation on it would be wrong: delete {where} "
                     f"{REPLACE_FROZEN}")


def _time_span(table: pa.Table, et: str) -> Tuple[int, int]:
    times = _micros(table.column(et))
    return int(times.min()), int(times.max())


def _micros_iso(value: int) -> str:
    return pd.Timestamp(value, unit="us", tz="UTC").isoformat().replace("+00:00", "Z")


def _check_frozen_keys_present(spec: ModelSpec, data: pa.Table, frozen: pa.Table, where: str) -> List[str]:
    """None of the frozen test set's (record id, event time) keys is in ``data`` (the joined rows of this run): the
    data accumulates, so the frozen rows should be in it. When the data spans or precedes the set's time range, the
    set was frozen from other data: refused. When the data starts after it, its old rows may have been left out (a
    newer window): a warning, and the set is kept - champion and challenger are still judged on the same rows."""
    rid, et = spec.record_identifier, spec.event_time
    if not frozen.num_rows or not data.num_rows:
        return []
    data_from, data_to = _time_span(data, et)
    test_from, test_to = _time_span(frozen, et)
    span = (f"this run's {data.num_rows} labelled rows span {_micros_iso(data_from)} .. {_micros_iso(data_to)}, the test "
            f"set {_micros_iso(test_from)} .. {_micros_iso(test_to)}")
    if data_from > test_to:
        return [f"none of the frozen test set's {frozen.num_rows} ({rid!r}, {et!r}) keys is in this run's data, which "
                f"starts after it ({span}): champion and challenger are still judged on the same rows, but nothing shows "
                f"they are this data's; if the data was replaced, delete {where} {REPLACE_FROZEN}"]
    raise InputError(f"frozen test set ({where}): none of its {frozen.num_rows} ({rid!r}, {et!r}) keys is in this run's "
                     f"data although the times overlap or precede them ({span}), so it was frozen from other data and "
                     f"every evaluation on it would be wrong: delete {where} {REPLACE_FROZEN}")


def _verified_manifest(directory: str, *, what: str, verify: bool) -> Tuple[Dict[str, Any], str]:
    manifest_path = os.path.join(directory, MANIFEST_FILE)
    if not os.path.exists(manifest_path):
        raise InputError(f"{what}: no {MANIFEST_FILE} in {directory!r} (a frozen test set is {TEST_FILE} + {MANIFEST_FILE})")
    manifest = data_io.read_json(manifest_path, what=what)
    missing = [k for k in ("sha256", "rows", "created_at", "version", "time_range") if k not in manifest]
    if missing:
        raise InputError(f"{what}: manifest lacks {missing}")
    path = os.path.join(directory, manifest.get("file", TEST_FILE))
    if not os.path.exists(path):
        raise InputError(f"{what}: {path!r} listed in the manifest does not exist")
    if verify:
        actual = data_io.sha256_file(path)
        if actual != manifest["sha256"]:
            raise InputError(
                f"{what}: {os.path.basename(path)} has sha256 {actual} but the manifest says {manifest['sha256']} "
                "(the frozen test set was modified)"
            )
    return manifest, path


def _check_columns(what: str, names: Sequence[str], required: Sequence[str], allowed: set, hint: str) -> None:
    missing = [c for c in required if c not in names]
    unexpected = [c for c in names if c not in allowed]
    problems = []
    if missing:
        problems.append(f"missing columns {missing}")
    if unexpected:
        problems.append(f"unexpected columns {unexpected}")
    if problems:
        raise InputError(f"{what}: " + "; ".join(problems) + f" ({hint}; found {list(names)})")


def _type_problem(schema: pa.Schema, name: str, ok: Any, expected: str) -> List[str]:
    arrow_type = schema.field(name).type
    if ok(arrow_type):
        return []
    return [f"column {name!r} has type {arrow_type}, expected {expected}"]


def _check_no_nulls(what: str, table: pa.Table, names: Sequence[str]) -> None:
    for name in names:
        nulls = table.column(name).null_count
        if nulls:
            raise InputError(f"{what}: column {name!r} has {nulls} null values (a key column)")


def _id_codes(*columns: Any) -> Tuple[np.ndarray, pa.Array]:
    """One int64 code per row of all ``columns`` (record ids) and the shared dictionary."""
    chunks = []
    for column in columns:
        for chunk in column.chunks if isinstance(column, pa.ChunkedArray) else [column]:
            chunks.append(chunk.cast(pa.string()))
    combined = pa.concat_arrays(chunks) if chunks else pa.array([], type=pa.string())
    encoded = combined.dictionary_encode()
    return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64), encoded.dictionary


def _check_unique_keys(what: str, codes: np.ndarray, times: np.ndarray, dictionary: pa.Array, rid: str, et: str) -> None:
    order = np.lexsort((times, codes))
    c, t = codes[order], times[order]
    duplicate = (c[1:] == c[:-1]) & (t[1:] == t[:-1])
    if duplicate.any():
        first = int(np.flatnonzero(duplicate)[0]) + 1
        raise InputError(
            f"{what}: {int(duplicate.sum())} duplicate ({rid!r}, {et!r}) keys, e.g. "
            f"({dictionary[int(c[first])].as_py()!r}, {pd.Timestamp(int(t[first]), unit='us', tz='UTC').isoformat()})"
        )


def _resolve_offline_store(table: pa.Table, rid: str, et: str, what: str) -> Tuple[pa.Table, int, int, int]:
    """An offline-store export as the SageMaker SDK's ``DatasetBuilder`` reads it by default: the latest write per
    (record id, event time) wins, and a record id's rows up to its latest delete marker are gone.

    ``DeleteRecord`` appends a marker row (``is_deleted`` true, the event time the delete was called with, every other
    feature null), normally later than every event time of the record. So a marker removes every row of its id whose
    (event time, ``api_invocation_time``, ``write_time``) is not after the marker's: the rows before it and the marker
    itself. A row after it (a later event time, or the same event time written later) is a new life of the id and is
    kept - the DatasetBuilder's join on its ``deleted_`` table (the latest marker per id).

    Returns the table, the superseded writes dropped, the rows dropped by deletes (markers included) and the number
    of record ids with a marker.
    """
    order_cols: Dict[str, np.ndarray] = {
        "id": _id_codes(table.column(rid))[0],
        "t": _micros(table.column(et)),
    }
    for name in ("api_invocation_time", "write_time"):
        if name in table.column_names:
            col = table.column(name)
            order_cols[name] = np.nan_to_num(_micros(col, what=what, name=name, allow_nulls=True), nan=-1)
    frame = pd.DataFrame(order_cols)
    frame["row"] = np.arange(len(frame))
    if "is_deleted" in table.column_names:
        flag = table.column("is_deleted")
        if not pa.types.is_boolean(flag.type):
            flag = pc.equal(pc.utf8_lower(flag.cast(pa.string())), "true")
        frame["deleted"] = pc.fill_null(flag, False).to_numpy(zero_copy_only=False).astype(bool)
    else:
        frame["deleted"] = False
    order = list(order_cols)
    frame = frame.sort_values(order, kind="stable")
    # The latest marker of each id (the greatest event time, then the latest call and write), before de-duplication:
    # a marker later overwritten at its own event time still ends the id's rows before it.
    markers = frame[frame["deleted"]].drop_duplicates("id", keep="last").set_index("id")[order[1:]]
    latest = frame.drop_duplicates(["id", "t"], keep="last")
    superseded = len(frame) - len(latest)
    gone = np.zeros(len(latest), dtype=bool)
    if len(markers):
        marker = markers.reindex(latest["id"].to_numpy())
        has_marker = marker["t"].notna().to_numpy()
        after = np.zeros(len(latest), dtype=bool)
        equal_so_far = np.ones(len(latest), dtype=bool)
        for name in order[1:]:  # (event time, api_invocation_time, write_time) after the marker's, in that order
            mine, theirs = latest[name].to_numpy(dtype=np.float64), marker[name].to_numpy(dtype=np.float64)
            after |= equal_so_far & (mine > theirs)
            equal_so_far &= mine == theirs
        gone = has_marker & ~after
    gone |= latest["deleted"].to_numpy()  # a marker is never a row of features
    kept = latest["row"].to_numpy()[~gone]
    table = table.take(pa.array(np.sort(kept)))
    return table, superseded, int(gone.sum()), len(markers)


def _micros(column: Any, *, what: str = "input", name: str = "event_time", allow_nulls: bool = False) -> np.ndarray:
    """Microseconds since the epoch (UTC) of a timestamp or ISO-8601 string column.

    Naive timestamps and strings without an offset are UTC (the curated data's convention).
    With ``allow_nulls`` the result is float with NaN for nulls.
    """
    if not isinstance(column, pa.ChunkedArray):
        column = pa.chunked_array([column])
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if pa.types.is_timestamp(column.type):
        micros = column.cast(pa.timestamp("us", tz=column.type.tz), safe=False).cast(pa.int64())
    else:
        try:
            micros = pc.cast(column, _TIMESTAMP).cast(pa.int64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            micros = _parse_with_pandas(column.combine_chunks(), what, name)
    if allow_nulls:
        return micros.to_numpy(zero_copy_only=False).astype(np.float64)
    if micros.null_count:
        raise InputError(f"{what}: column {name!r} has {micros.null_count} null values")
    return micros.to_numpy(zero_copy_only=False).astype(np.int64)


def _parse_with_pandas(column: pa.Array, what: str, name: str) -> pa.Array:
    values = pd.Series(column.to_pandas(), dtype=object)
    try:
        try:
            parsed = pd.to_datetime(values, utc=True, format="ISO8601")
        except (TypeError, ValueError):  # pandas < 2 has no format="ISO8601"
            parsed = pd.to_datetime(values, utc=True)
    except (TypeError, ValueError) as exc:
        example = _first_unparseable(values)
        raise InputError(f"{what}: column {name!r} is not an ISO-8601 time (e.g. {example!r}): {exc}") from None
    nanos = parsed.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    mask = parsed.isna().to_numpy()
    return pa.array(nanos // 1000, type=pa.int64(), mask=mask)


def _first_unparseable(values: pd.Series) -> Any:
    for value in values:
        try:
            pd.Timestamp(value)
        except (TypeError, ValueError):
            return value
    return None


def _normalise_feature(column: pa.ChunkedArray, categorical: bool) -> pa.ChunkedArray:
    if categorical:
        return column.cast(pa.string())
    return column.cast(pa.float64())


# --------------------------------------------------------------------------------------
# Splitting
# --------------------------------------------------------------------------------------
def _time_cut(times: pa.ChunkedArray, fraction: float) -> int:
    """Row index splitting a time-sorted table at ``fraction`` without splitting equal times.

    Rows with the same event time as the boundary row go to the *later* split, so every
    time in the earlier part is strictly before every time in the later part.
    """
    values = _micros(times)
    n = len(values)
    position = int(np.floor(n * fraction))
    if position >= n:
        return n
    boundary = values[position]
    return int(np.searchsorted(values, boundary, side="left"))


def _exclude_keys(joined: pa.Table, test: pa.Table, rid: str, et: str) -> Tuple[pa.Table, int]:
    """``joined`` without the rows whose (record id, event time) is in the frozen test set."""
    codes, _ = _id_codes(joined.column(rid), test.column(rid))
    n = joined.num_rows
    ours = pd.MultiIndex.from_arrays([codes[:n], _micros(joined.column(et))])
    theirs = pd.MultiIndex.from_arrays([codes[n:], _micros(test.column(et))])
    is_test = ours.isin(theirs)
    return joined.filter(pa.array(~is_test)), int(is_test.sum())


def _first_freeze_splits(rows: pa.Table, et: str, fractions: SplitFractions) -> Dict[str, pa.Table]:
    """The time split of a first freeze: the latest ``fractions.test`` of ``rows`` (time-sorted) is the test set, the
    rest goes to train (earliest) and validation; rows of one event time never straddle two splits."""
    test_cut = _time_cut(rows.column(et), fractions.train + fractions.validation)
    rest, test = rows.slice(0, test_cut), rows.slice(test_cut)
    cut = _time_cut(rest.column(et), fractions.train / (fractions.train + fractions.validation))
    return {"train": rest.slice(0, cut), "validation": rest.slice(cut), "test": test}


def _staleness(rows: pa.Table, frozen: pa.Table, et: str, test_fraction: float, policy: str) -> Dict[str, Any]:
    """Whether the frozen test set has gone stale for ``rows`` (every labelled row of this run, its own included): the
    rows with event times after its window (``rows_after_test_set``) are at least the test fraction of them
    (``stale_at_rows``).

    Why that line: a first freeze takes the latest test fraction of the rows, so from there a new set lies wholly
    after the old window - after anything a champion judged out-of-time on the old set learnt from - and train and
    validation end before it. Short of it, a new set would re-take most of the old window and the yardstick would
    change every run for little gain, while a challenger's rows from after the window stay under one test fraction
    (the not-out-of-time warning says so). A champion trained by such a run has learnt from up to that fraction of
    rows after the old window, so the new set may start inside its training period; Prepare does not know the
    champion, and Evaluate compares the two on the test rows after both models' training data - with too few of
    those, on the whole set, which then favours the champion
    (:func:`pipeline_code.training.evaluate.out_of_time_comparison`)."""
    n = rows.num_rows
    after = int((_micros(rows.column(et)) > _time_span(frozen, et)[1]).sum()) if n and frozen.num_rows else 0
    needed = max(1, math.ceil(round(test_fraction * n, 9)))
    return {"policy": policy, "stale": after >= needed, "refrozen": False, "rows": n, "rows_after_test_set": after,
            "stale_at_rows": needed}


def _stale_text(refreeze: Dict[str, Any], fractions: SplitFractions) -> str:
    return (f"{refreeze['rows_after_test_set']} of this run's {refreeze['rows']} rows have event times after its window, "
            f"at least the test fraction ({fractions.test:.0%}: {refreeze['stale_at_rows']} rows)")


def _unfreezable(spec: ModelSpec, candidate: Dict[str, pa.Table], rows: pa.Table, min_group_rows: int,
                 fractions: SplitFractions) -> Optional[str]:
    """Why the latest rows cannot replace a stale frozen test set (None when they can): the checks a first freeze of
    ``rows`` into the ``candidate`` splits would fail - every split with rows and two classes (regression: two values),
    :func:`_check_split`; two fairness groups big enough; no model input null in every row. A stale set is still a
    valid yardstick, so its run goes on with it (and a warning) rather than fail on every run until the data changes:
    the latest rows of a rare event, or of labels not matured yet, can hold one class for a while."""
    test = candidate["test"]
    what = f"the latest {fractions.test:.0%} by event time ({test.num_rows} rows)"
    try:
        for name, table in candidate.items():
            _check_split(name, table, spec, rows)
    except InputError as exc:
        return f"the splits a re-freeze from {what} would make fail a first freeze's check ({exc})"
    try:
        _check_fairness_groups(spec, test, min_group_rows, what, "")
        _check_no_empty_feature(spec, test, what, "")
    except InputError as exc:
        return str(exc)
    return None


def _refreeze_reason(refreeze: Dict[str, Any], previous: Dict[str, Any], test: pa.Table, et: str,
                     fractions: SplitFractions) -> str:
    old, new = previous.get("time_range") or {}, _time_span(test, et)
    return (f"the frozen test set (version {previous.get('version')}, {previous.get('rows')} rows, {old.get('min')}–"
            f"{old.get('max')}, sha256 {str(previous.get('sha256'))[:12]}) had gone stale: {_stale_text(refreeze, fractions)}, "
            f"so train and validation would learn from the period after it; re-frozen from the latest "
            f"{fractions.test:.0%} by event time ({test.num_rows} rows, {_micros_iso(new[0])}–{_micros_iso(new[1])}), which "
            "train and validation precede, and the champion is judged on it too")


def _test_set_entry(manifest: Dict[str, Any]) -> Dict[str, Any]:
    """What a re-frozen set's manifest and the summary keep of the set it replaced (its bytes stay an old version)."""
    return {k: manifest.get(k) for k in ("sha256", "version", "created_at", "time_range", "rows")}


def _next_version(previous: Any, default: str) -> str:
    """A re-frozen set's version: the replaced set's plus one when that is an integer, else ``default``."""
    text = str(previous)
    return str(int(text) + 1) if text.isdigit() else default


def _not_out_of_time_warnings(splits: Dict[str, pa.Table], frozen: pa.Table, et: str, where: str,
                              refreeze: Optional[Dict[str, Any]] = None,
                              fractions: SplitFractions = SplitFractions()) -> List[str]:
    """A warning when train or validation reach the frozen test set's first event time: the data grew past the
    set's window (or holds other rows of its period), so the model learns from the period it is judged on, while a
    champion trained before the set was frozen did not. Only the set's own (record id, event time) keys are left out
    of training, not its period: leaving the period out would still train on the rows after it, so the evaluation
    would not be out-of-time either. Not an error: the evaluation report and the model card say so. With the
    ``when_stale`` policy (``refreeze``) the warning says when Prepare re-freezes the set itself; with ``never``,
    re-freezing is the owner's decision (it changes the rows the champion is judged on) and it says how."""
    if not frozen.num_rows or not any(table.num_rows for table in splits.values()):
        return []
    until = max(_time_span(table, et)[1] for table in splits.values() if table.num_rows)
    test_from, test_to = _time_span(frozen, et)
    if until < test_from:
        return []
    if refreeze is not None and refreeze["policy"] == REFREEZE_WHEN_STALE and not refreeze["stale"]:
        remedy = (f"Prepare re-freezes it from the latest rows once those after its window are at least the test "
                  f"fraction ({fractions.test:.0%}: {refreeze['stale_at_rows']} of this run's {refreeze['rows']} rows; now "
                  f"{refreeze['rows_after_test_set']}), or delete {where} {REPLACE_FROZEN}")
    else:
        remedy = f"to judge it on rows after its training data, delete {where} {REPLACE_FROZEN}"
    return [f"train and validation reach {_micros_iso(until)}, the frozen test set covers {_micros_iso(test_from)}–"
            f"{_micros_iso(test_to)}: the challenger learns from the period it is judged on, so its evaluation is not "
            f"out-of-time (the evaluation report and the model card say so); {remedy}"]


def _check_split(name: str, table: pa.Table, spec: ModelSpec, joined: pa.Table) -> None:
    """A split must have rows and (classifiers) two classes; an empty one is explained by the ``joined`` rows it was
    cut from: the time split keeps rows of one event time together, so it needs several distinct times."""
    target, et = spec.target, spec.event_time
    if table.num_rows == 0:
        times = pc.unique(joined.column(et).combine_chunks())
        if joined.num_rows == 0:
            why = "no labelled row is left after the join; provide labelled records whose features are computed"
        elif len(times) == 1:
            why = (f"all {joined.num_rows} rows share {et} {_iso(times[0])}; the time split needs several distinct event "
                   "times (train, validation and test are the earliest, middle and latest ones, and rows of one time are "
                   f"never split): give each record the time it was observed in {et!r}")
        else:
            why = (f"its {joined.num_rows} rows have only {len(times)} distinct {et} values, and rows of one time are never "
                   f"split; the time split needs more distinct event times: provide more labelled data, or give each "
                   f"record the time it was observed in {et!r}")
        raise InputError(f"the {name} split is empty: {why}")
    y = table.column(target)
    if spec.problem_type == problem.BINARY:
        positives = int(pc.sum(y).as_py() or 0)
        if positives == 0 or positives == table.num_rows:
            only = 1 if positives else 0
            raise InputError(
                f"the {name} split has a single class: every {target!r} value of its {table.num_rows} rows is {only}"
            )
        return
    distinct = pc.unique(y)
    if len(distinct) < 2:
        what = "value" if spec.problem_type == problem.REGRESSION else "class"
        only = distinct[0].as_py()
        shown = spec.classes[int(only)] if spec.problem_type == problem.MULTICLASS else only
        raise InputError(f"the {name} split has a single {what}: every {target!r} value of its {table.num_rows} rows is {shown}")


def _check_fairness_groups(spec: ModelSpec, test: pa.Table, min_group_rows: int, what: str, fix: str) -> None:
    """Refuse a test set with fewer than two groups of the sensitive attribute big enough to compare: the gate
    rejects every challenger on it as insufficient evidence of fairness."""
    values = test.column(spec.sensitive_attribute).to_pandas().dropna().astype(str)
    shortfall = fairness_shortfall(values.value_counts().to_dict(), min_group_rows)
    if shortfall is not None:
        raise InputError(f"{what} cannot show fairness across {spec.sensitive_attribute!r}: {shortfall}{fix}")


def _empty_features(spec: ModelSpec, table: pa.Table) -> List[str]:
    """The model inputs of ``table`` that are null in every row (a table with rows)."""
    return [name for name in spec.features if table.num_rows and table.column(name).null_count == table.num_rows]


_EMPTY_FEATURE_FIX = ("; it would be frozen for every later run, so nothing is written: fix the data (a column empty or "
                      "absent in the records, or an expression null for every row), or leave them out of the model's features")


def _check_no_empty_feature(spec: ModelSpec, test: pa.Table, what: str, fix: str = _EMPTY_FEATURE_FIX) -> None:
    """Refuse a new test set in which a model input is null in every row: it would be frozen for every later run, so
    every model would be judged without that feature even once the data is fixed (the pipeline freezes Prepare's
    test output as it is)."""
    empty = _empty_features(spec, test)
    if empty:
        raise InputError(f"{what}: feature(s) {empty} are null in every row{fix}")


def uninformative_feature_warnings(spec: ModelSpec, table: pa.Table, what: str) -> List[str]:
    """One warning per model input that is null in every row of ``table`` (the ``what`` rows), or holds one value in
    all of them: the model cannot learn from it there (training), or it cannot show in the evaluation (test). Not an
    error: a new test set with an empty input is refused by :func:`_check_no_empty_feature` instead."""
    warnings = []
    rows = table.num_rows
    empty = set(_empty_features(spec, table))
    for name in spec.features:
        if name in empty:
            warnings.append(f"feature {name!r} is null in all {rows} {what} rows: the model cannot learn from it or be "
                            "judged on it; fix the data (a column empty or absent in the records, or an expression null "
                            "for every row), or leave it out of the model's features")
            continue
        column = table.column(name)
        if rows and not column.null_count:
            values = pc.unique(column.combine_chunks())
            if len(values) == 1:
                warnings.append(f"feature {name!r} has the single value {values[0].as_py()!r} in all {rows} {what} rows: "
                                "it tells the records apart in no way there; check the data, or leave it out of the "
                                "model's features")
    return warnings


# A categorical feature most of whose test values training never saw cannot generalise (a date, an id as text).
UNSEEN_CATEGORY_WARNING = 0.5


def unseen_category_warnings(spec: ModelSpec, train: pa.Table, test: pa.Table) -> List[str]:
    """One warning per categorical feature more than half of whose test values (nulls aside) training never saw.

    Such a column changes with every record (a date or an identifier written as text): the model learns the
    training rows' values, which never come again, and may even rank it its top feature. Not an error: a young
    dataset can be short of history; the local run prints the warnings, the pipeline's prepare summary keeps them.
    """
    warnings = []
    for name in spec.frame_features:
        if not spec.is_categorical(name):
            continue
        seen = pc.unique(train.column(name).cast(pa.string()).combine_chunks().drop_null())
        present = test.column(name).cast(pa.string()).combine_chunks().drop_null()
        if not len(present):
            continue
        share = 1 - pc.sum(pc.is_in(present, value_set=seen)).as_py() / len(present)
        if share > UNSEEN_CATEGORY_WARNING:
            warnings.append(
                f"feature {name!r}: {share:.0%} of the test records have a value training never saw ({len(seen)} "
                f"distinct values in {train.num_rows} training rows); a category that changes with every record (a "
                "date, an identifier) cannot generalise: declare the column's allowed values, or leave it out")
    return warnings


def _label_counts(y: Any, spec: ModelSpec) -> Dict[str, Any]:
    """What a manifest or split summary says about the labels: positives (binary), rows per class (multiclass),
    or the target's mean and spread (regression)."""
    if spec.problem_type == problem.BINARY:
        return {"positives": int(pc.sum(y).as_py() or 0)}
    values = y.to_numpy(zero_copy_only=False) if hasattr(y, "to_numpy") else np.asarray(y)
    if spec.problem_type == problem.MULTICLASS:
        counts = np.bincount(np.asarray(values, dtype=np.int64), minlength=len(spec.classes))
        return {"class_counts": {c: int(counts[i]) for i, c in enumerate(spec.classes)}}
    values = np.asarray(values, dtype=np.float64)
    return {"target_mean": float(values.mean()) if len(values) else None,
            "target_std": float(values.std()) if len(values) else None}


def _split_summary(table: pa.Table, spec: ModelSpec, et: str) -> Dict[str, Any]:
    times = table.column(et)
    rows = table.num_rows
    counts = _label_counts(table.column(spec.target), spec)
    if "positives" in counts:
        counts["positive_rate"] = counts["positives"] / rows if rows else None
    return {"rows": rows, **counts, "time_range": data_io.time_range(times)}


def _iso(scalar: pa.Scalar) -> Optional[str]:
    return data_io.iso_time(scalar)


def _clear_split_dir(directory: str) -> None:
    """Create ``directory``; remove parquet/manifest files a previous run left there."""
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        if name.endswith(".parquet") or name == MANIFEST_FILE:
            os.remove(os.path.join(directory, name))


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_spec_argument(parser)
    parser.add_argument("--features-dir", "--features_dir", dest="features_dir", default="/opt/ml/processing/input/features")
    parser.add_argument("--labels-dir", "--labels_dir", dest="labels_dir", default="/opt/ml/processing/input/labels")
    parser.add_argument(
        "--frozen-test-dir",
        "--frozen_test_dir",
        dest="frozen_test_dir",
        default="/opt/ml/processing/input/frozen_test",
        help="frozen test set to reuse: a directory, or an s3:// prefix (downloaded first; SageMaker cannot "
        "mount an empty prefix, which is what it is before the first run); missing or empty = create one "
        "(default %(default)s)",
    )
    parser.add_argument("--output-dir", "--output_dir", dest="output_dir", default="/opt/ml/processing/output")
    parser.add_argument("--train-fraction", "--train_fraction", dest="train_fraction", type=float, default=0.7)
    parser.add_argument("--validation-fraction", "--validation_fraction", dest="validation_fraction", type=float, default=0.15)
    parser.add_argument("--test-fraction", "--test_fraction", dest="test_fraction", type=float, default=0.15)
    parser.add_argument(
        "--test-set-version", "--test_set_version", dest="test_set_version", default="1",
        help="version recorded in a newly created test set's manifest (default %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--test-set-refreeze", "--test_set_refreeze", dest="test_set_refreeze", choices=TEST_SET_REFREEZE_POLICIES,
        default=REFREEZE_WHEN_STALE,
        help=f"{REFREEZE_WHEN_STALE}: replace a frozen test set that has gone stale (the rows after its window are at "
        f"least the test fraction) by the latest rows, as a first freeze takes them; {REFREEZE_NEVER}: reuse it until "
        "deleted (default %(default)s)",
    )  # fmt: skip
    # The gate's: the test set needs two sensitive-attribute groups this big.
    add_evidence_argument(parser, "min_group_rows", DEFAULT_MIN_GROUP_ROWS)
    parser.add_argument(
        "--data-origin", "--data_origin", dest="data_origin", type=_data_origin, default=None,
        help='where the records came from, as JSON: {"kind": "generated"} or {"kind": "files", "source": ..., '
        '"sha256": ...}; recorded in a new test set\'s manifest, and a frozen one of the other kind is refused '
        "(default: not recorded - the pipeline's data is the lake)",
    )  # fmt: skip
    return parser


def _data_origin(text: str) -> Dict[str, Any]:
    """``--data-origin``: a JSON object whose ``kind`` is generated or files."""
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict) or value.get("kind") not in (DATA_GENERATED, DATA_FILES):
        raise argparse.ArgumentTypeError(f"--data-origin must be a JSON object whose kind is {DATA_GENERATED!r} or "
                                         f"{DATA_FILES!r}, got {text[:200]!r}")
    return value


@contextlib.contextmanager
def _local_frozen_test_dir(location: str, *, s3_client: Any = None) -> Iterator[str]:
    """``location`` itself, or for ``s3://bucket/prefix/`` a temporary copy of the objects under it.

    An empty prefix yields an empty directory, which means "create the frozen test set".
    """
    if not location.startswith("s3://"):
        yield location
        return
    bucket, _, prefix = location[len("s3://") :].partition("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    client = s3_client or boto3.client("s3")
    with tempfile.TemporaryDirectory(prefix="frozen-test-") as tmp:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                relative = obj["Key"][len(prefix) :]
                if not relative or relative.endswith("/"):
                    continue
                target = os.path.join(tmp, relative)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                client.download_file(bucket, obj["Key"], target)
        yield tmp


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        fractions = SplitFractions(args.train_fraction, args.validation_fraction, args.test_fraction)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        with _local_frozen_test_dir(args.frozen_test_dir) as frozen_test_dir:
            summary = prepare(
                args.model_spec,
                args.features_dir,
                args.labels_dir,
                args.output_dir,
                frozen_test_dir=frozen_test_dir,
                fractions=fractions,
                test_set_version=args.test_set_version,
                min_group_rows=args.min_group_rows,
                frozen_test_location=args.frozen_test_dir,
                data_origin=args.data_origin,
                test_set_refreeze=args.test_set_refreeze,
            )
    except InputError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    splits = summary["splits"]
    frozen = ("reused" if summary["frozen_test_set_reused"] else "re-frozen" if summary["frozen_test_set_refrozen"]
              else "created")
    print(
        f"prepared {args.model_spec.name}: train={splits['train']['rows']} validation={splits['validation']['rows']} "
        f"test={splits['test']['rows']} (frozen test set {frozen}, "
        f"sha256 {summary['test_set']['sha256'][:12]}); unmatched labels dropped: {summary['join']['unmatched_labels_dropped']}"
    )
    if summary["frozen_test_set_refrozen"]:
        print(f"re-froze the test set: {summary['test_set_refreeze']['reason']}")
    for warning in summary["warnings"]:
        print(f"WARNING: {warning}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
