"""The pandas engine of the feature job (default locally): one process, pyarrow I/O (local paths or ``s3://``)."""

from __future__ import annotations

import json
from typing import Any, Dict, Optional, Sequence

import numpy as np
import pandas as pd

from pipeline_code import catalog
from pipeline_code.core.contract import CURATED_PARTITION_COLUMN
from pipeline_code.features.compute import compute_features
from pipeline_code.features.ingestion.plan import (
    PARTITION_COLUMN,
    combine_digests,
    digest_parts,
    partition_labels,
    plan_ingestion,
)
from pipeline_code.features.ingestion.run import finish, needed_columns, online_options, put_by_partition, run_keys
from pipeline_code.features.ingestion.writer import (
    DEFAULT_MAX_WORKERS,
    FeatureStoreWriter,
    PutFailure,
    WriteReport,
    make_featurestore_client,
)
from pipeline_code.job_runtime import LOG, default_run_id, join_path

FAILURES_FILE = "failures.jsonl"


def read_curated(curated_path: str, dataset: catalog.Dataset, *, with_partition: bool = False) -> pd.DataFrame:
    """The columns the features need from curated parquet (local path or ``s3://``).

    Integer columns are read as nullable ``Int64`` (not float) and timestamps as
    UTC datetimes. Files starting with ``_`` or ``.`` (Spark's ``_SUCCESS``, CRCs) are skipped.
    With ``with_partition``, a :data:`PARTITION_COLUMN` names each row's partition (:func:`partition_labels`).

    Raises:
        FileNotFoundError: no parquet file under ``curated_path``.
    """
    import pyarrow as pa
    import pyarrow.dataset as ds

    try:
        data = ds.dataset(curated_path, format="parquet", partitioning="hive")
    except (FileNotFoundError, OSError) as exc:
        raise FileNotFoundError(f"cannot read curated parquet at {curated_path!r}: {exc}") from None
    if not data.files:
        raise FileNotFoundError(f"no parquet file under curated_path {curated_path!r}")
    wanted = [c for c in needed_columns(dataset) if c in data.schema.names]
    partitioned = with_partition and CURATED_PARTITION_COLUMN in data.schema.names
    table = data.to_table(columns=wanted + ([CURATED_PARTITION_COLUMN] if partitioned else []))
    values = None
    if partitioned:
        # As text, whatever type the hive partitioning inferred (a date32 reads 2026-01-05, as Spark's cast does).
        values = table.column(CURATED_PARTITION_COLUMN).cast(pa.string()).to_pandas()
        table = table.drop_columns([CURATED_PARTITION_COLUMN])
    frame = table.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype(), pa.int32(): pd.Int64Dtype()}.get)
    if with_partition:
        frame[PARTITION_COLUMN] = partition_labels(values, len(frame))
    return frame


def feature_arrow_schema(dataset: catalog.Dataset) -> Any:
    """pyarrow schema of the feature frame (fixed, so all-null columns keep their type)."""
    import pyarrow as pa

    types = {catalog.INTEGRAL: pa.int64(), catalog.FRACTIONAL: pa.float64(), catalog.FS_STRING: pa.string()}
    return pa.schema([pa.field(name, types[fs_type]) for name, fs_type in dataset.feature_store_definitions()])


def write_features_parquet(features: pd.DataFrame, features_path: str, dataset: catalog.Dataset) -> str:
    """Replace the contents of ``features_path`` with one parquet file; return its path."""
    import pyarrow as pa
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

    filesystem, root = pafs.FileSystem.from_uri(_as_uri(features_path))
    filesystem.create_dir(root, recursive=True)
    filesystem.delete_dir_contents(root, missing_dir_ok=True)  # the output is a full snapshot
    table = pa.Table.from_pandas(features, schema=feature_arrow_schema(dataset), preserve_index=False)
    path = f"{root.rstrip('/')}/part-00000.parquet"
    pq.write_table(table, path, filesystem=filesystem)
    return path


def write_failures_jsonl(failures: Sequence[PutFailure], failures_path: str, run_id: str) -> Optional[str]:
    """Write failed records as JSON lines under ``failures_path/run_id=<id>/``; return the location."""
    if not failures:
        return None
    import pyarrow.fs as pafs

    location = join_path(failures_path, f"run_id={run_id}")
    filesystem, root = pafs.FileSystem.from_uri(_as_uri(location))
    filesystem.create_dir(root, recursive=True)
    payload = "".join(json.dumps(f.to_json_dict(), sort_keys=True) + "\n" for f in failures)
    with filesystem.open_output_stream(f"{root.rstrip('/')}/{FAILURES_FILE}") as stream:
        stream.write(payload.encode("utf-8"))
    return location


def run_pandas(args: Dict[str, Any], *, client: Any = None, sagemaker_client: Any = None) -> Dict[str, Any]:
    """The whole job in one process; ``client`` / ``sagemaker_client`` override the Feature Store runtime
    and SageMaker clients (tests)."""
    args = dict(args)  # run_keys adds what it learns of the group
    dataset = args["dataset"]
    run_id = args.get("run_id") or default_run_id(args)
    keys = run_keys(args, dataset, sagemaker_client)
    curated = read_curated(args["curated_path"], dataset, with_partition=keys is not None)
    partitions = curated.pop(PARTITION_COLUMN).to_numpy() if keys is not None else None
    features = compute_features(curated, dataset)
    write_features_parquet(features, args["features_path"], dataset)
    LOG.info("wrote %d feature rows to %s", len(features), args["features_path"])

    report = WriteReport()
    failed_partitions: set = set()
    plan = None
    if keys is not None:
        digests = combine_digests([digest_parts(features, partitions, dataset)])
        plan = plan_ingestion(digests, keys, args["state_path"], full=bool(args.get("full")))
        client = client or make_featurestore_client(args.get("region"), args.get("max_workers", DEFAULT_MAX_WORKERS))
        selected = np.array([p in plan.to_put for p in partitions], dtype=bool)
        chosen = features[selected].assign(**{PARTITION_COLUMN: partitions[selected]})
        report, failed_partitions = put_by_partition(_writer(client, args, dataset), chosen, dataset)
    failures_location = write_failures_jsonl(report.failures, args.get("failures_path") or "", run_id)
    return finish(args, dataset, run_id, "pandas", len(features), report.succeeded, report.failed, failures_location,
                   plan, failed_partitions, report.online_corrections)


def _writer(client: Any, args: Dict[str, Any], dataset: catalog.Dataset) -> FeatureStoreWriter:
    return FeatureStoreWriter(
        client,
        args["feature_group_name"],
        record_identifier=dataset.record_identifier,
        event_time=dataset.event_time,
        max_workers=args.get("max_workers", DEFAULT_MAX_WORKERS),
        **online_options(args, dataset),
    )


def _as_uri(path: str) -> str:
    """pyarrow wants a URI or an absolute path."""
    if "://" in path:
        return path
    import os

    return os.path.abspath(path)
