"""The data path of one dataset: crawl raw → curate (Spark ETL) → compute and ingest features."""

from __future__ import annotations

from typing import Optional

from aws_cdk import aws_glue as glue
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from pipeline_code.catalog import Dataset

# The quarantine, curate-recovery (a copy of every row a curate run is about to publish until its state is written:
# in the curated bucket, whose old versions go after rewritten_noncurrent_days) and ingest-failure prefixes are
# shared with the erasure search: defined in the contract.
from pipeline_code.core.contract import CURATE_RECOVERY_PREFIX, INGEST_FAILURES_PREFIX, QUARANTINE_PREFIX, pascal

from ..naming import ETL_JOBS, etl_crawler_name, etl_job_name, etl_workflow_name, feature_group_arn, feature_snapshots_prefix
from .arns import s3_url
from .cdk_reads import read_once, stack_of
from .glue_runtime import GlueJobRole, GlueRuntime

CURATE_SCRIPT = "etl/glue_curate_job.py"
FEATURES_SCRIPT = "features/ingest.py"
ETL_RUNS_PREFIX = "etl-runs"
# The curate job's record of the raw files it has curated, next to its run summaries (the job role already reads
# and writes that prefix, and lists it: the listing is how the job tells a missing state).
CURATE_STATE_FILE = "curate-state.json"
INGEST_STATE_PREFIX = "_ingest-state"
INGEST_STATE_FILE = "state.json"


class DatasetWorkflow(Construct):
    """A Glue workflow for one dataset, started by ``schedule`` (None: only when started, aws glue start-workflow-run).

    Steps, each started only when the previous one succeeded:

    1. a crawler catalogs ``s3://<raw>/<dataset>/`` as table ``raw_<dataset>`` in ``database_name``, after its first
       crawl only the folders added since the last one (``CRAWL_NEW_FOLDERS_ONLY``);
    2. the Spark ETL job types and validates the raw records into ``s3://<curated>/<dataset>/``
       (parquet, partitioned by event date), routing bad records to
       ``s3://<curated>/_quarantine/<dataset>/`` with a reason, and fails the run when more than
       ``max_quarantine_ratio`` of the records are bad (nothing is dropped silently); it reads only the raw files
       that landed or changed since its last successful run, which it records in
       ``s3://<artifacts>/etl-runs/<dataset>/curate-state.json`` (see ``pipeline_code/etl/glue_curate_job.py``); each
       run first copies the rows it is about to publish to ``s3://<curated>/_curate-recovery/<dataset>/``, from where
       the next run takes them back when it was stopped mid-commit, and deletes the copies once its state is written;
    3. the feature job computes the catalog's features from the curated data, writes a snapshot of every record
       to ``s3://<features>/snapshots/<dataset>/`` and puts into the FeatureGroup the records of the curated
       event dates whose records changed since its last ingestion, which it records (a digest per date) in
       ``s3://<features>/_ingest-state/<dataset>/state.json`` (see ``pipeline_code/features/ingestion/plan.py``).

    Each job runs as a role of its own (``curate_role``, ``feature_role``; :meth:`GlueRuntime.job_role`) that may
    touch only this dataset's prefixes, and only what that job reads and writes: the curate job reads raw and writes
    the curated data, its quarantine and run summaries, with no Feature Store access; the feature job reads the
    curated data (no raw, no write there) and writes the snapshots, its failures and state, and this dataset's
    FeatureGroup only. The crawler runs as the runtime's crawler role, which reads raw.

    Defaults: Glue 5.0 (Spark 3.5, Python 3.11), one concurrent run, one retry per job; the crawler and both jobs use
    the runtime's VPC connection when it has one (``GlueRuntime.connection``).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name_prefix: str,
        dataset: Dataset,
        runtime: GlueRuntime,
        database_name: str,
        raw_bucket: s3.IBucket,
        curated_bucket: s3.IBucket,
        features_bucket: s3.IBucket,
        artifacts_bucket: s3.IBucket,
        feature_group: sagemaker.CfnFeatureGroup,
        schedule: Optional[str],
        worker_type: str,
        number_of_workers: int,
        timeout_minutes: int,
        max_quarantine_ratio: float,
    ) -> None:
        super().__init__(scope, construct_id)
        self._runtime = runtime
        ds = dataset.name
        curate_name, features_name = (etl_job_name(name_prefix, ds, job) for job in ETL_JOBS)
        name = etl_workflow_name(name_prefix, ds)
        feature_group_name = feature_group.feature_group_name

        self.paths = {
            "raw": s3_url(read_once(raw_bucket, "bucket_name"), f"{ds}/"),
            "curated": s3_url(read_once(curated_bucket, "bucket_name"), f"{ds}/"),
            "quarantine": s3_url(read_once(curated_bucket, "bucket_name"), f"{QUARANTINE_PREFIX}/{ds}/"),
            "summary": s3_url(read_once(artifacts_bucket, "bucket_name"), f"{ETL_RUNS_PREFIX}/{ds}/"),
            "curate_state": s3_url(read_once(artifacts_bucket, "bucket_name"), f"{ETL_RUNS_PREFIX}/{ds}/{CURATE_STATE_FILE}"),
            "curate_recovery": s3_url(read_once(curated_bucket, "bucket_name"), f"{CURATE_RECOVERY_PREFIX}/{ds}/"),
            "features": s3_url(read_once(features_bucket, "bucket_name"), feature_snapshots_prefix(ds)),
            "failures": s3_url(read_once(features_bucket, "bucket_name"), f"{INGEST_FAILURES_PREFIX}/{ds}/"),
            "ingest_state": s3_url(read_once(features_bucket, "bucket_name"), f"{INGEST_STATE_PREFIX}/{ds}/{INGEST_STATE_FILE}"),
        }

        # -- data access, scoped to this dataset's prefixes and to what each step does -------------
        sid = pascal(ds)
        runtime.crawler_access.allow_prefix(f"ReadRaw{sid}", raw_bucket, f"{ds}/")
        # Spark's overwrites (the curated dates a run rewrites, the quarantine of a run, the whole snapshot) delete
        # the files they replace and the commit protocol's temporary files; pyarrow's S3 file system (the ingest
        # failures) removes the directory markers it made.
        self.curate_role = runtime.job_role(self, "Curate", job_name=curate_name, script=CURATE_SCRIPT, dataset=dataset)
        curate = self.curate_role.access
        curate.allow_prefix(f"ReadRaw{sid}", raw_bucket, f"{ds}/")
        # Read as well: a run keeps the curated rows of the dates it replaces that it did not read again.
        curate.allow_prefix(f"Curated{sid}", curated_bucket, f"{ds}/", write=True, delete=True)
        curate.allow_prefix(f"Quarantine{sid}", curated_bucket, f"{QUARANTINE_PREFIX}/{ds}/", write=True, delete=True)
        # The recovery copies: written (Spark's commit protocol deletes its temporary files), listed and read back by
        # the run after a stop, deleted once a run has published its state.
        curate.allow_prefix(f"CurateRecovery{sid}", curated_bucket, f"{CURATE_RECOVERY_PREFIX}/{ds}/", write=True,
                            delete=True)
        # One summary per run, put by the job (job_runtime.write_text): nothing there is ever deleted by a run.
        curate.allow_prefix(f"EtlRuns{sid}", artifacts_bucket, f"{ETL_RUNS_PREFIX}/{ds}/", write=True, delete=False)

        self.feature_role = runtime.job_role(self, "Features", job_name=features_name, script=FEATURES_SCRIPT,
                                             dataset=dataset)
        features = self.feature_role.access
        features.allow_prefix(f"ReadCurated{sid}", curated_bucket, f"{ds}/")
        features.allow_prefix(f"Features{sid}", features_bucket, feature_snapshots_prefix(ds), write=True, delete=True)
        features.allow_prefix(
            f"IngestFailures{sid}", features_bucket, f"{INGEST_FAILURES_PREFIX}/{ds}/", write=True, delete=True
        )
        # The feature job's record of the curated partitions it has put, by digest (read, then replaced, each run);
        # the prefix's listing is how it tells a missing state (S3 answers its GetObject 403 without list rights).
        features.allow_prefix(f"IngestState{sid}", features_bucket, f"{INGEST_STATE_PREFIX}/{ds}/", write=True, delete=True)
        stack = stack_of(self, scope)
        features.allow(
            f"PutRecords{sid}",
            ["sagemaker:PutRecord"],
            [feature_group_arn(stack, feature_group_name)],
        )
        # Its creation time is part of the ingestion state's key: a group created again is empty.
        features.allow(
            f"DescribeFeatureGroup{sid}",
            ["sagemaker:DescribeFeatureGroup"],
            [feature_group_arn(stack, feature_group_name)],
        )
        if (feature_group.online_store_config or {}).get("EnableOnlineStore"):
            # A correction re-sent with the same record id and event time does not replace the online record
            # (PutRecord needs a greater event time): the job reads the online copies of the ids it put and
            # hard-deletes, then puts again, those with the same event time but other values
            # (FeatureStoreWriter.correct_online in pipeline_code/features/ingestion/writer.py).
            features.allow(
                f"CorrectOnlineRecords{sid}",
                ["sagemaker:BatchGetRecord", "sagemaker:DeleteRecord"],
                [feature_group_arn(stack, feature_group_name)],
            )

        # -- the three steps ---------------------------------------------------------------------
        self.crawler = glue.CfnCrawler(
            self,
            "RawCrawler",
            name=etl_crawler_name(name_prefix, ds),
            description=f"Catalogs raw {ds} files as table raw_{ds}",
            role=read_once(runtime.crawler_role, "role_arn"),
            database_name=database_name,
            table_prefix="raw_",
            targets=glue.CfnCrawler.TargetsProperty(
                s3_targets=[glue.CfnCrawler.S3TargetProperty(
                    path=self.paths["raw"],
                    # The runtime's VPC connection, if any: the crawler then reads S3 from inside the VPC.
                    connection_name=runtime.connection.ref if runtime.connection is not None else None,
                )]
            ),
            crawler_security_configuration=runtime.security_configuration.ref,
            # Each crawl lists only the folders added since the last one: with the default (CRAWL_EVERYTHING) every
            # nightly crawl re-reads all of raw, kept for raw_expiration_days, so its DPU time grows with the raw
            # objects while nothing reads the raw_ table (the curate job reads the raw files themselves; the crawl
            # only gates it). Glue requires both schema-change behaviours to be LOG with this policy (Glue Developer
            # Guide, "Scheduling incremental crawls": a schema change is logged, never applied to the table; a deleted
            # object is logged, so history is never lost from the catalog). The ETL, not the crawler, rejects
            # unexpected columns.
            recrawl_policy=glue.CfnCrawler.RecrawlPolicyProperty(recrawl_behavior="CRAWL_NEW_FOLDERS_ONLY"),
            schema_change_policy=glue.CfnCrawler.SchemaChangePolicyProperty(
                update_behavior="LOG", delete_behavior="LOG"
            ),
        )
        self.curate_job = self._job(
            "CurateJob",
            self.curate_role,
            name=curate_name,
            description=f"Types, validates and quarantines raw {ds} records into the curated zone",
            script=CURATE_SCRIPT,
            arguments={
                "--dataset": read_once(runtime.code.dataset(dataset), "s3_object_url"),
                "--raw_path": self.paths["raw"],
                "--curated_path": self.paths["curated"],
                "--quarantine_path": self.paths["quarantine"],
                "--summary_path": self.paths["summary"],
                # Each run reads only the raw files that landed or changed since the last successful one.
                "--state_path": self.paths["curate_state"],
                # A stopped run's copy of what it was publishing, so that the next run loses no curated row.
                "--recovery_path": self.paths["curate_recovery"],
                "--max_quarantine_ratio": str(max_quarantine_ratio),
            },
            worker_type=worker_type,
            number_of_workers=number_of_workers,
            timeout_minutes=timeout_minutes,
        )
        self.feature_job = self._job(
            "FeatureJob",
            self.feature_role,
            name=features_name,
            description=f"Computes the catalog features of {ds} and ingests them into {feature_group_name}",
            script=FEATURES_SCRIPT,
            arguments={
                "--dataset": read_once(runtime.code.dataset(dataset), "s3_object_url"),
                "--curated_path": self.paths["curated"],
                "--features_path": self.paths["features"],
                "--feature_group_name": feature_group_name,
                "--failures_path": self.paths["failures"],
                "--state_path": self.paths["ingest_state"],
            },
            worker_type=worker_type,
            number_of_workers=number_of_workers,
            timeout_minutes=timeout_minutes,
        )

        # -- orchestration ------------------------------------------------------------------------
        self.workflow = glue.CfnWorkflow(
            self,
            "Workflow",
            name=name,
            description=f"crawl raw -> curate -> features for {ds}",
            max_concurrent_runs=1,
        )
        # No schedule (glue.etl_schedule: null): an ON_DEMAND first trigger, fired by aws glue start-workflow-run
        # (CloudFormation takes no StartOnCreation for one). A trigger's type is create-only, and CloudFormation
        # replaces a named resource only under a new name: switching the schedule off or on names it anew, so the
        # replacement is created before the old one goes (a deploy does not fail "already exists").
        start = glue.CfnTrigger(
            self,
            "StartTrigger",
            name=f"{name}-start" if schedule is not None else f"{name}-start-on-demand",
            workflow_name=self.workflow.ref,
            type="SCHEDULED" if schedule is not None else "ON_DEMAND",
            schedule=schedule,
            start_on_creation=True if schedule is not None else None,
            actions=[glue.CfnTrigger.ActionProperty(crawler_name=self.crawler.ref)],
        )
        after_crawl = self._run_after(
            "AfterCrawlTrigger",
            f"{name}-after-crawl",
            glue.CfnTrigger.ConditionProperty(
                crawler_name=self.crawler.ref, crawl_state="SUCCEEDED", logical_operator="EQUALS"
            ),
            self.curate_job,
        )
        after_curate = self._run_after(
            "AfterCurateTrigger",
            f"{name}-after-curate",
            glue.CfnTrigger.ConditionProperty(job_name=self.curate_job.ref, state="SUCCEEDED", logical_operator="EQUALS"),
            self.feature_job,
        )
        self.triggers = (start, after_crawl, after_curate)

    def _run_after(
        self, construct_id: str, name: str, condition: glue.CfnTrigger.ConditionProperty, job: glue.CfnJob
    ) -> glue.CfnTrigger:
        """A trigger of this workflow that starts ``job`` once ``condition`` holds."""
        return glue.CfnTrigger(
            self,
            construct_id,
            name=name,
            workflow_name=self.workflow.ref,
            type="CONDITIONAL",
            start_on_creation=True,
            predicate=glue.CfnTrigger.PredicateProperty(conditions=[condition]),
            actions=[glue.CfnTrigger.ActionProperty(job_name=job.ref)],
        )

    def _job(
        self,
        construct_id: str,
        role: GlueJobRole,
        *,
        name: str,
        description: str,
        script: str,
        arguments: dict[str, str],
        worker_type: str,
        number_of_workers: int,
        timeout_minutes: int,
    ) -> glue.CfnJob:
        runtime = self._runtime
        script_asset = runtime.code.script(script)
        job = glue.CfnJob(
            self,
            construct_id,
            name=name,
            description=description,
            role=read_once(role.role, "role_arn"),
            command=glue.CfnJob.JobCommandProperty(
                name="glueetl", python_version="3", script_location=read_once(script_asset, "s3_object_url")
            ),
            glue_version="5.0",
            worker_type=worker_type,
            number_of_workers=number_of_workers,
            timeout=timeout_minutes,
            max_retries=1,
            execution_property=glue.CfnJob.ExecutionPropertyProperty(max_concurrent_runs=1),
            security_configuration=runtime.security_configuration.ref,
            # The runtime's VPC connection, if any: the job's workers then run in the VPC.
            connections=(glue.CfnJob.ConnectionsListProperty(connections=[runtime.connection.ref])
                         if runtime.connection is not None else None),
            default_arguments={
                **arguments,
                "--extra-py-files": read_once(runtime.code.library, "s3_object_url"),
                "--TempDir": role.temp_dir,
                "--enable-metrics": "true",
                "--enable-observability-metrics": "true",
                "--custom-logGroup-prefix": runtime.log_group_prefix,
                # The jobs overwrite the partitions they touch, so reruns are idempotent without
                # bookmarks (which only apply to DynamicFrame sources anyway).
                "--job-bookmark-option": "job-bookmark-disable",
            },
        )
        # The role's policy must be in place before the first scheduled run.
        job.node.add_dependency(role.access)
        return job
