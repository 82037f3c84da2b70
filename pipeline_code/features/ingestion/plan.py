"""Incremental ingestion: which curated partitions changed since the last ingestion (a digest per partition of its
records as they would be put), the ingestion state that records them and the plan of what to put."""

from __future__ import annotations

import datetime as dt
import hashlib
import inspect
import json
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

import numpy as np
import pandas as pd

from pipeline_code import catalog
from pipeline_code.core.contract import CURATED_PARTITION_COLUMN
from pipeline_code import job_runtime
# _rows keeps its name and place: its source, with to_record's, is the ingestion state's code key (ingestion_keys).
from pipeline_code.features.ingestion.writer import FeatureStoreWriter, _rows, format_value
from pipeline_code.job_runtime import LOG

# 2: partitions are recorded by the digest of their records (1 recorded their files: a version-1 state is
# unreadable, so the first run after the upgrade puts every record once).
STATE_VERSION = 2
# Carried next to each feature row from reading to putting: the curated partition the row came from.
PARTITION_COLUMN = "__curated_partition"
# The directory name Spark and pyarrow give a null partition value.
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
# SipHash keys (16 bytes each) of a partition's digest; changing one changes every digest (one full re-put).
DIGEST_HASH_KEYS = ("0123456789123456", "mlops-loop-state")


def partition_labels(values: Optional[pd.Series], rows: int) -> np.ndarray:
    """Each row's partition: ``event_date=<date>`` from the curated data's partition column (text as
    the curate job names the directory), ``""`` for all rows when the data has no such column."""
    if values is None:
        return np.full(rows, "", dtype=object)
    return np.array([f"{CURATED_PARTITION_COLUMN}={HIVE_NULL if v is None or v != v else v}" for v in values],
                    dtype=object)


def with_declared_types(features: pd.DataFrame, dataset: catalog.Dataset) -> pd.DataFrame:
    """``features`` with each feature column in its declared type's dtype (Integral: nullable Int64, Fractional:
    float64), whatever dtype an engine handed over: Spark gives pandas a long column with nulls as float64, whose
    values would be put as ``3.0``, which Feature Store does not take for an Integral feature."""
    typed = features.copy()
    for name, fs_type in dataset.feature_store_definitions():
        if name in typed.columns and fs_type in (catalog.INTEGRAL, catalog.FRACTIONAL):
            typed[name] = typed[name].astype("Int64" if fs_type == catalog.INTEGRAL else "float64")
    return typed


def put_ready(features: pd.DataFrame, dataset: catalog.Dataset) -> pd.DataFrame:
    """The feature columns as the ``ValueAsString`` each value is put with (None: null, not put), by their
    declared types (:func:`with_declared_types`)."""
    typed = with_declared_types(features, dataset)
    return pd.DataFrame({name: typed[name].astype(object).map(format_value) for name, _ in dataset.feature_store_definitions()},
                        index=features.index)


def digest_parts(features: pd.DataFrame, partitions: np.ndarray, dataset: catalog.Dataset) -> Dict[str, Tuple[int, int, int]]:
    """``{partition: (records, sum of hash 1, sum of hash 2)}`` of some of its rows: the records as they are
    put (:func:`put_ready`), each hashed twice (64-bit SipHash, two keys), the hashes summed modulo 2**64.

    Sums do not depend on row order or on how rows are split into batches, so the parts of one
    partition from several batches or executors combine by adding (:func:`combine_digests`).
    """
    if not len(features):
        return {}
    # "" for a null and "=" + text otherwise: a null never hashes like a text, not even "None".
    encoded = put_ready(features, dataset).apply(lambda c: c.map(lambda v: "" if v is None else "=" + v))
    codes, names = pd.factorize(pd.Series(partitions, dtype=object), use_na_sentinel=False)
    counts = np.bincount(codes, minlength=len(names))
    sums = []
    for key in DIGEST_HASH_KEYS:
        hashes = pd.util.hash_pandas_object(encoded, index=False, hash_key=key).to_numpy(dtype=np.uint64)
        total = np.zeros(len(names), dtype=np.uint64)
        np.add.at(total, codes, hashes)  # uint64 addition wraps: modulo 2**64
        sums.append(total)
    return {str(name): (int(counts[i]), int(sums[0][i]), int(sums[1][i])) for i, name in enumerate(names)}


def combine_digests(parts: Iterable[Mapping[str, Tuple[int, int, int]]]) -> Dict[str, str]:
    """``{partition: digest}`` from the :func:`digest_parts` of every batch: ``<records>-<32 hex digits>``."""
    totals: Dict[str, List[int]] = {}
    for part in parts:
        for name, (count, first, second) in part.items():
            total = totals.setdefault(name, [0, 0, 0])
            total[0] += count
            total[1] = (total[1] + first) % 2**64
            total[2] = (total[2] + second) % 2**64
    return {name: f"{c}-{a:016x}{b:016x}" for name, (c, a, b) in sorted(totals.items())}


def ingestion_keys(dataset: catalog.Dataset, feature_group_name: str, group_created: str) -> Dict[str, str]:
    """What the records put depend on besides the curated data: a change of any one re-puts every record.

    ``declaration``: the dataset declaration (columns, keys, feature names and expressions: the digest sees values,
    not names); ``code``: the source of what turns a row into a ``Record`` (the values themselves, however the
    feature computation or their formatting changes, are in the digest); ``feature_group``: the group's name and
    creation time (a group deleted and created again is empty).
    """
    declaration = json.dumps(dataset.to_declaration(), sort_keys=True)
    sources = [inspect.getsource(item) for item in (FeatureStoreWriter.to_record, _rows)]
    return {
        "declaration": _sha256(declaration),
        "code": _sha256("\n".join(sources)),
        "feature_group": f"{feature_group_name}@{group_created}",
    }


def feature_group_created(sagemaker_client: Any, feature_group_name: str) -> str:
    """The feature group's creation time (``DescribeFeatureGroup``), as text."""
    return describe_group(sagemaker_client, feature_group_name)[0]


def describe_group(sagemaker_client: Any, feature_group_name: str) -> Tuple[str, bool]:
    """``(creation time as text, whether the group has an online store)`` by one ``DescribeFeatureGroup``."""
    described = sagemaker_client.describe_feature_group(FeatureGroupName=feature_group_name)
    created = described["CreationTime"]
    online = bool((described.get("OnlineStoreConfig") or {}).get("EnableOnlineStore"))
    return (created.isoformat() if hasattr(created, "isoformat") else str(created)), online


_KEY_CHANGES = {
    "declaration": "the dataset declaration changed",
    "code": "the record-put code changed",
    "feature_group": "the feature group is another one (renamed, or deleted and created again)",
}


@dataclass(frozen=True)
class IngestionPlan:
    """Which partitions' records a run puts, and why all of them when it puts all."""

    keys: Dict[str, str]
    digests: Dict[str, str]  # partition -> digest of its records, as this run read and computed them
    to_put: frozenset
    full_reason: Optional[str]  # None: incremental

    def next_state(self, failed_partitions: Iterable[Optional[str]], run_id: str) -> Dict[str, Any]:
        """The state after this run: every partition read but those with a record not put (put again next run).

        A partition is recorded with the digest of the records this run read: if curate changed it
        after the read, the next run computes another digest and puts it (never the reverse).
        """
        failed = set(failed_partitions)
        return {
            "state_version": STATE_VERSION,
            "keys": dict(self.keys),
            "partitions": {p: d for p, d in self.digests.items() if p not in failed},
            "run_id": run_id,
            "written_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        }


def plan_ingestion(
    digests: Dict[str, str], keys: Dict[str, str], state_path: str, *, full: bool = False, s3_client: Any = None
) -> IngestionPlan:
    """Compare the partitions' digests with the state at ``state_path``; every partition when a full put is due."""
    state, problem = read_state(state_path, s3_client=s3_client)
    reason = None
    if full:
        reason = "--full true was given"
    elif state is None:
        reason = problem
    else:
        changed = [name for name in _KEY_CHANGES if state["keys"].get(name) != keys[name]]
        if changed:
            reason = "; ".join(_KEY_CHANGES[name] for name in changed)
    if reason is not None:
        LOG.warning("putting every record into the feature group: %s", reason)
        return IngestionPlan(keys, dict(digests), frozenset(digests), reason)
    recorded = state["partitions"]
    to_put = frozenset(p for p, digest in digests.items() if recorded.get(p) != digest)
    return IngestionPlan(keys, dict(digests), to_put, None)


def read_state(state_path: str, *, s3_client: Any = None) -> Tuple[Optional[Dict[str, Any]], Optional[str]]:
    """The ingestion state (:func:`job_runtime.read_state`): ``(state, None)``, or ``(None, why there is none
    usable)``."""
    return job_runtime.read_state(
        state_path, what="ingestion state", version=STATE_VERSION, s3_client=s3_client,
        valid=lambda state: isinstance(state.get("keys"), dict) and isinstance(state.get("partitions"), dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in state["partitions"].items()))


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
