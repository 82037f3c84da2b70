"""Feature ingestion job: curated parquet -> feature parquet (+ SageMaker Feature Store).

The job reads the curated data of one dataset, computes its features with the one
interpreter (:func:`pipeline_code.features.compute.compute_features`), writes the
feature frame as parquet (every record, replaced each run) and, when a feature group is named,
puts the records of the curated partitions that changed since the last ingestion into the Feature
Store with ``sagemaker-featurestore-runtime`` ``PutRecord``.

Incremental puts: the offline store appends every ``PutRecord`` (a record put again with the same
event time is one more row in the offline table), so putting unchanged records each night would
copy the whole history again and cost a PutRecord each. A *partition* is a value of the curated data's
``event_date`` partition column (the curate job rewrites every date the records it read touch - every
date still in raw, on a full read - under new file names: the files say nothing about what changed). The job computes the features
of every record anyway (for the parquet), and from them a digest per partition of its records as they
would be put (:func:`~pipeline_code.features.ingestion.plan.digest_parts`: order-independent, identical on both engines); it puts only the
records of partitions whose digest differs from the ingestion state (``--state_path``), and then writes
the state: every partition read except those with a record that could not be put (retried next run).
The records, not the curate summary's dates, decide: a curate run whose feature run failed or was
skipped, or a hand edit of a partition, is still seen; a rewrite of the same rows is not a change.
Every record is put when there is no state (first run, state deleted), when the state is unreadable
(a one-line notice says so), when ``--full true`` is given, or when the state was written for another
dataset declaration, record-put code (how a row becomes a ``Record``: the digest already covers every
value, so an edit of the feature computation re-puts only the records whose values it changed) or feature group (its name and creation time: a recreated group is empty). A partition removed from
the curated data is dropped from the state; its records stay in the Feature Store.

Two engines run the *same* pandas code:

* ``spark`` (default in Glue): ``mapInPandas`` runs ``compute_features`` on each Spark
  partition, a second digests each curated partition's records (:func:`~pipeline_code.features.ingestion.spark_engine.digests_spark`), and a
  third puts the changed partitions' records from the executors;
* ``pandas`` (default locally): one process, pyarrow I/O (local paths or ``s3://``).

Feature Store writes retry throttling and transient errors a bounded number of
times with exponential backoff. A record that still fails is written, with its
error, to ``failures_path/run_id=<id>/`` as JSON lines, and the run fails
(non-zero exit / raised error) after everything else is written - no record is
lost silently. The online store keeps the newest event time per record identifier, so re-putting
after a failure is safe there; the offline store gets one more copy of a record re-put (the
SageMaker SDK's DatasetBuilder leaves such duplicates out by default; an Athena query must too).

Corrections: ``PutRecord`` replaces an online record only with a *greater* event time, so a record re-sent
with the same id and event time but corrected values would reach the offline store and the snapshot, never
the online store. When the feature group has an online store (``DescribeFeatureGroup``), the writer reads
back the online copies of the ids it put and replaces those with the same event time but other values
(:meth:`~pipeline_code.features.ingestion.writer.FeatureStoreWriter.correct_online`: ``BatchGetRecord``, ``DeleteRecord`` HardDelete, ``PutRecord``
to the online store); the summary's ``ingestion.online_corrections`` counts them.

This module is the job's entry (the Glue job's script and ``python -m``): its arguments and ``main``. Its parts are
the package beside it, ``pipeline_code/features/ingestion/``, shipped in the job-code library zip (the Glue job's
``--extra-py-files``): ``writer`` (the Feature Store writer: retries, failures, online corrections), ``plan``
(digests, the ingestion state and what to put), ``pandas_engine`` and ``spark_engine``, and ``run`` (what both engines
share: the run's keys, the puts by partition, the state and summary at the end).

Arguments (identical names in Glue and locally):

``--dataset``             the dataset declaration: a JSON file, local or s3:// (required)
``--curated_path``        curated parquet root (required)
``--features_path``       output directory of the feature parquet, replaced each run (required)
``--feature_group_name``  Feature Store feature group; absent -> no Feature Store writes (optional)
``--failures_path``       root for failed records; required with ``--feature_group_name``
``--state_path``          file/object of the ingestion state (JSON); required with ``--feature_group_name``
``--full``                ``true`` puts every record whatever the state says (default false)
``--summary_path``        file/object for the JSON run summary (optional)
``--engine``              ``spark`` or ``pandas`` (default: spark in Glue, pandas locally)
``--max_workers``         concurrent PutRecord calls per process/partition (default 8)
``--region``              AWS region of the Feature Store (default: the environment's)
``--run_id``              run identifier (default: Glue JOB_RUN_ID, else ``local-<UTC time>``)
"""

from __future__ import annotations

import sys
from typing import Any, Dict, Optional, Sequence

from pipeline_code.argtypes import true_or_false
from pipeline_code.features.ingestion.pandas_engine import run_pandas
from pipeline_code.features.ingestion.spark_engine import run_spark
from pipeline_code.features.ingestion.writer import DEFAULT_MAX_WORKERS, FeatureStoreWriteFailed
from pipeline_code.job_runtime import (
    Arg,
    configure_logging,
    dataset_declaration,
    glue_available,
    parse_job_args,
    positive_int,
    start_spark,
)

PROG = "python -m pipeline_code.features.ingest"
ENGINES = ("spark", "pandas")


def _engine(value: str) -> str:
    if value not in ENGINES:
        raise ValueError(f"must be one of {list(ENGINES)}, got {value!r}")
    return value


ARGS = (
    Arg("dataset", "the dataset's declaration: a JSON file (local or s3://) or JSON text", convert=dataset_declaration),
    Arg("curated_path", "curated parquet root"),
    Arg("features_path", "output directory of the feature parquet (replaced each run)"),
    Arg("feature_group_name", "Feature Store feature group (absent: no Feature Store writes)", required=False),
    Arg("failures_path", "root for records that could not be put (required with a feature group)", required=False),
    Arg("state_path", "the ingestion state: JSON file/object (required with a feature group)", required=False),
    Arg("full", "true: put every record whatever the state says", required=False, default=False, convert=true_or_false),
    Arg("summary_path", "where to write the JSON run summary", required=False),
    Arg("engine", "spark or pandas (default: spark in Glue, pandas locally)", required=False, convert=_engine),
    Arg(
        "max_workers",
        "concurrent PutRecord calls per process/partition",
        required=False,
        default=DEFAULT_MAX_WORKERS,
        convert=positive_int,
    ),
    Arg("region", "AWS region of the Feature Store (default: the environment's)", required=False),
    Arg("run_id", "run identifier (default: Glue JOB_RUN_ID or a UTC timestamp)", required=False),
)


def _validate(args: Dict[str, Any], glue: bool) -> Dict[str, Any]:
    if args.get("feature_group_name") and not args.get("failures_path"):
        raise ValueError("--failures_path is required with --feature_group_name (failed records must go somewhere)")
    if args.get("feature_group_name") and not args.get("state_path"):
        raise ValueError("--state_path is required with --feature_group_name (it records which curated partitions "
                         "were put; delete it or pass --full true to put every record)")
    args = dict(args)
    args["engine"] = args.get("engine") or ("spark" if glue else "pandas")
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point for Glue and ``python -m``; returns the exit code.

    In Glue, failures propagate as exceptions (the job run fails with the message);
    locally they are printed to stderr and turned into exit code 1.
    """
    configure_logging()
    glue = glue_available()
    try:
        args = _validate(parse_job_args(ARGS, argv, prog=PROG, glue=glue), glue)
    except ValueError as exc:
        if glue:
            raise
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    runtime = None
    try:
        if args["engine"] == "spark":
            runtime = start_spark("feature_ingest", args, glue=glue)
            run_spark(runtime.spark, args)
            runtime.commit()
        else:
            run_pandas(args)
    except (FeatureStoreWriteFailed, FileNotFoundError, ValueError) as exc:
        if glue:
            raise
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    finally:
        if runtime is not None:
            runtime.stop()
    return 0


if __name__ == "__main__":
    exit_code = main()
    if exit_code:  # never call sys.exit(0) in Glue: a clean return is the success signal
        sys.exit(exit_code)
