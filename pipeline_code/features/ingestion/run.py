"""What both engines of the feature job share: the columns a dataset's features read, the run's ingestion keys and
the writer's online options, and the end of a run (ingestion state, summary, failure)."""

from __future__ import annotations

import json
from typing import Any, Dict, Iterable, List, Optional, Tuple

import pandas as pd

from pipeline_code import catalog
from pipeline_code.features.ingestion.plan import (
    PARTITION_COLUMN,
    IngestionPlan,
    describe_group,
    ingestion_keys,
    with_declared_types,
)
from pipeline_code.features.ingestion.writer import FeatureStoreWriteFailed, FeatureStoreWriter, WriteReport
from pipeline_code.job_runtime import LOG, write_json


def online_options(args: Dict[str, Any], dataset: catalog.Dataset) -> Dict[str, Any]:
    """The writer's online-store correction options: on when the group has an online store."""
    return {"correct_online": bool(args.get("online_store")), "feature_types": dict(dataset.feature_store_definitions())}


def needed_columns(dataset: catalog.Dataset) -> List[str]:
    names = [dataset.record_identifier, dataset.event_time]
    for feature in dataset.features:
        names.extend(c for c in feature.expr.source_columns() if c not in names)
    return names


def run_keys(args: Dict[str, Any], dataset: catalog.Dataset, sagemaker_client: Any) -> Optional[Dict[str, str]]:
    """The run's :func:`ingestion_keys` (None without a feature group), asked before reading: a missing group
    fails the run before any work. Whether the group has an online store goes into ``args["online_store"]``
    (the puts then correct it: :meth:`FeatureStoreWriter.correct_online`)."""
    group = args.get("feature_group_name")
    if not group:
        return None
    sagemaker_client = sagemaker_client or _sagemaker_client(args.get("region"))
    created, args["online_store"] = describe_group(sagemaker_client, group)
    return ingestion_keys(dataset, group, created)


def _sagemaker_client(region: Optional[str]) -> Any:
    import boto3

    return boto3.client("sagemaker", region_name=region)


def finish(
    args: Dict[str, Any],
    dataset: catalog.Dataset,
    run_id: str,
    engine: str,
    feature_rows: int,
    succeeded: int,
    failed: int,
    failures_location: Optional[str],
    plan: Optional[IngestionPlan] = None,
    failed_partitions: Iterable[Optional[str]] = (),
    online_corrections: int = 0,
) -> Dict[str, Any]:
    """Write the ingestion state, build, log and write the run summary; raise if any record failed."""
    summary = {
        "dataset": dataset.name,
        "run_id": run_id,
        "engine": engine,
        "status": "failed" if failed else "succeeded",
        "feature_rows": feature_rows,
        "features_path": args["features_path"],
        "feature_group_name": args.get("feature_group_name"),
        "put_succeeded": succeeded,
        "put_failed": failed,
        "failures_location": failures_location,
        "ingestion": None,
    }
    if plan is not None:
        failed_read = set(failed_partitions)
        # Written after every put of the run returned: partitions with a failed record stay unrecorded.
        write_json(args["state_path"], plan.next_state(failed_read, run_id))
        summary["ingestion"] = {
            "mode": "full" if plan.full_reason else "incremental",
            "full_reason": plan.full_reason,
            "state_path": args["state_path"],
            "partitions_considered": len(plan.digests),
            "partitions_skipped": len(plan.digests) - len(plan.to_put),
            "partitions_put": len(plan.to_put - failed_read),
            "partitions_failed": len(failed_read),
            "records_put": succeeded,
            # Records put with the event time the online store already held for their id but other values (a
            # correction): their online copy was replaced (FeatureStoreWriter.correct_online).
            "online_corrections": online_corrections,
        }
    LOG.info("run summary: %s", json.dumps(summary, sort_keys=True))
    if args.get("summary_path"):
        write_json(args["summary_path"], summary)
    if failed:
        raise FeatureStoreWriteFailed(
            f"{failed} of {succeeded + failed} records could not be put into feature group "
            f"{args['feature_group_name']!r}; they are in {failures_location}"
            + (f"; their partitions ({len(failed_read)}) are put again next run" if plan is not None else "")
        )
    return summary


def put_by_partition(writer: FeatureStoreWriter, frame: pd.DataFrame, dataset: catalog.Dataset) -> Tuple[WriteReport, set]:
    """Put the rows of ``frame`` (with :data:`PARTITION_COLUMN`), each value as its declared type says; return the
    report and the partitions holding a record that could not be put."""
    partitions = frame[PARTITION_COLUMN].to_numpy()
    report = writer.put_frame(with_declared_types(frame.drop(columns=[PARTITION_COLUMN]), dataset))
    failed: set = set()
    if report.failures:
        # A (record identifier, event time) lies in one partition: its event time decides the event date.
        keys = {(f.record_identifier, f.event_time) for f in report.failures}
        columns = list(frame.columns)
        rid, event_time = writer.record_identifier or columns[0], writer.event_time or columns[1]
        pairs = zip(frame[rid].astype(str), frame[event_time].astype(str))
        failed = {partition for partition, pair in zip(partitions, pairs) if pair in keys}
    return report, failed


