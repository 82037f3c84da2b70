"""The encrypted S3 data lake: one KMS key and the buckets every other part of the loop uses."""

from __future__ import annotations

from typing import Optional, Sequence

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct

from pipeline_code.core.contract import DRIFT_MONITOR_OUTPUTS, INFERENCE_RECORDS, INFERENCE_TRAFFIC, MME_STAGING_ROOT
from pipeline_code.core.integrity import (
    FROZEN_TEST_KEY_PATTERN,
    LEDGER_KEY_PATTERN,
    RUN_RECORD_KEY_PATTERN,
    RUN_REPORT_KEY_PATTERNS,
    SEALED_KEY_PATTERN,
    work_prefix,
)

from ..nag import acknowledge
from ..naming import FEATURE_SNAPSHOTS_ROOT, LAKE_BUCKETS, lake_bucket_name
from .cdk_reads import days, environment_of, stack_of
from .dataset_workflow import ETL_RUNS_PREFIX, INGEST_FAILURES_PREFIX, QUARANTINE_PREFIX
from .glue_runtime import GLUE_TEMP_PREFIX
from .secure_bucket import SecureBucket, keep_policy
from .service_key import service_key

# Glue's temporary files (glue-temp/ in the artifacts bucket) are only read during the run that wrote them; a job
# runs at most 48 hours (glue.timeout_minutes), so a week leaves a failed run's files to look at.
GLUE_TEMP_EXPIRATION_DAYS = 7
# Athena query results of the analytics workgroup (athena-results/ in the inference bucket): rows of predictions,
# labels and traffic, so personal data; a month to download or re-read them, then gone (old versions a day later), so a
# result does not outlive what an erasure removed from the data it was queried from by more than that.
ATHENA_RESULTS_PREFIX = "athena-results"
ATHENA_RESULTS_EXPIRATION_DAYS = 30

class DataLake(Construct):
    """A customer-managed KMS key and six buckets: raw, curated, features, artifacts, inference, access logs.

    Every data bucket is versioned: an object's old versions are kept ``noncurrent_version_expiration_days`` (for
    ever when None), delete markers that hide no version any more are removed, and per bucket:

    * ``raw``: data as landed; expires after ``raw_expiration_days`` (never when None).
    * ``curated``: typed, validated tables written by the Glue ETL (plus its ``_quarantine/`` prefix, which expires
      after ``raw_expiration_days`` like the raw rows it copies; never when None); moves to
      Infrequent Access after ``curated_infrequent_access_days`` (never when None). Each nightly run rewrites every
      date the records it read touch (every date still in raw, on a full read) under new file names, so the whole
      bucket keeps old versions only ``rewritten_noncurrent_days`` (when None, like every bucket). The transition
      applies to current versions: a date is rewritten whenever a run reads a record of it, so it moves to IA that
      many days after its last late record.
    * ``features``: the Feature Store offline store (Iceberg) and computed feature snapshots; the snapshots
      (``snapshots/``, replaced whole by each run) keep old versions ``rewritten_noncurrent_days``; the records the
      feature job could not put (``_ingest-failures/``) expire after ``raw_expiration_days`` (never when None).
    * ``artifacts``: job code, Glue temp files, model artifacts, reports; sealed models
      (``pipelines/<model>/registered/``) and the approval ledger (``approval-ledger/``, the deploy handler's records of
      approval decisions) and the run records (``run-records/``, its copies of the pipeline execution that registered each
      approved version) are write-once and undeletable. The evidence SageMaker's uploads write - each run's reports
      (``pipelines/<model>/<execution id>/evaluate|baseline|model-card/``) and the frozen test sets
      (``pipelines/<model>/frozen-test/``) - keeps every version: no principal may delete one, and old versions
      expire only under the prefixes listed here (each model's ``work/``, ``etl-runs/``, ``mme/``, ``glue-temp/``),
      never below ``pipelines/`` otherwise. Each of ``models``' pipeline working data
      (``pipelines/<model>/work/``: prepared sets, training outputs, checkpoints) expires after
      ``pipeline_work_expiration_days`` (never when None); Glue's temporary files (``glue-temp/``) after
      :data:`GLUE_TEMP_EXPIRATION_DAYS`, their old versions a day later.
    * ``inference``: what serving sees and says and what the loop learns from it. Traffic (data capture, async
      requests/results, batch inputs and outputs: :data:`INFERENCE_TRAFFIC`) expires after
      ``inference_expiration_days``; records (ground-truth labels, monitor reports: :data:`INFERENCE_RECORDS`)
      after ``inference_records_expiration_days`` (each never when None). The drift monitor's reports and tables (:data:`DRIFT_MONITOR_OUTPUTS`) keep every
      version like the artifacts bucket's evidence (old versions expire only with the records' own expiry). The
      analytics workgroup's query results (:data:`ATHENA_RESULTS_PREFIX`) expire after
      :data:`ATHENA_RESULTS_EXPIRATION_DAYS`, their old versions a day later.
    * ``access_logs``: S3 server access logs of the five buckets above.

    Buckets have fixed names (:func:`lake_bucket_name`), listed in ``bucket_names``. The key rotates yearly, and its
    policy lets CloudWatch Logs use it for log groups of this account and region only (Glue security
    configurations encrypt job logs with it).

    Raises:
        ValueError: ``rewritten_noncurrent_days`` exceeds ``noncurrent_version_expiration_days``: the shorter,
            bucket-wide expiry would win (S3 honours the shorter of two overlapping expirations), so the longer
            window could never be had.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name_prefix: str,
        removal_policy: RemovalPolicy,
        raw_expiration_days: Optional[int],
        curated_infrequent_access_days: Optional[int],
        noncurrent_version_expiration_days: Optional[int],
        access_log_expiration_days: int,
        inference_expiration_days: Optional[int] = None,
        inference_records_expiration_days: Optional[int] = None,
        rewritten_noncurrent_days: Optional[int] = None,
        pipeline_work_expiration_days: Optional[int] = None,
        models: Sequence[str] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        if (rewritten_noncurrent_days is not None and noncurrent_version_expiration_days is not None
                and rewritten_noncurrent_days > noncurrent_version_expiration_days):
            raise ValueError(f"DataLake: rewritten_noncurrent_days ({rewritten_noncurrent_days}) exceeds "
                             f"noncurrent_version_expiration_days ({noncurrent_version_expiration_days}), which expires "
                             "every old version sooner: give at most that, or None")
        environment = environment_of(stack_of(self, scope))
        self.bucket_names = {
            kind: lake_bucket_name(name_prefix, kind, environment.account, environment.region) for kind in LAKE_BUCKETS
        }
        self.key = service_key(
            self,
            "Key",
            alias=f"alias/{name_prefix}/data",
            description=f"{name_prefix}: encrypts the data lake, Feature Store, Glue jobs and job logs",
            publishers=(),
            removal_policy=removal_policy,
        )

        # Server access log delivery only supports SSE-S3 on the target bucket, so this one
        # bucket is encrypted with S3-managed keys; it holds no data, only request logs.
        self.access_logs_bucket = s3.Bucket(
            self,
            "AccessLogs",
            bucket_name=self.bucket_names["access-logs"],
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            versioned=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-logs",
                    expiration=days(access_log_expiration_days),
                    noncurrent_version_expiration=days(1),
                    abort_incomplete_multipart_upload_after=days(1),
                )
            ],
            removal_policy=removal_policy,
        )
        # Its policy grants S3's log delivery: kept with the bucket, or server access logging stops with the stack.
        keep_policy(self.access_logs_bucket, removal_policy)
        acknowledge(
            self.access_logs_bucket,
            "This bucket is the server-access-log target; logging it to itself would loop, and S3 "
            "log delivery supports only SSE-S3 on the target bucket.",
            "AwsSolutions-S1",
            "NIST.800.53.R5-S3BucketLoggingEnabled",
            "NIST.800.53.R5-S3DefaultEncryptionKMS",
        )

        def days_or_none(value: Optional[int]) -> Optional[Duration]:
            return None if value is None else days(value)

        def secure_bucket(construct_id: str, hint: str, noncurrent_days: Optional[int] = noncurrent_version_expiration_days,
                        **options) -> s3.IBucket:
            return SecureBucket(
                self,
                construct_id,
                encryption_key=self.key,
                access_logs_bucket=self.access_logs_bucket,
                bucket_name=self.bucket_names[hint],
                name_hint=hint,
                removal_policy=removal_policy,
                noncurrent_version_expiration=days_or_none(noncurrent_days),
                **options,
            ).bucket

        def expire(rule_id: str, prefix: str, after_days: Optional[int], noncurrent_days: Optional[int] = None) -> list:
            """A rule expiring ``prefix`` (a literal key prefix: S3 lifecycle filters take no wildcards); none for None."""
            if after_days is None:
                return []
            return [s3.LifecycleRule(id=rule_id, prefix=prefix, expiration=days(after_days),
                                     noncurrent_version_expiration=days_or_none(noncurrent_days))]

        # Rewritten data: each nightly run replaces it under new file names, so every night's replaced files
        # become old versions; kept as long as other buckets' they would multiply the bytes stored by
        # 1 + noncurrent days (each file name has one version, so NewerNoncurrentVersions cannot bound them).
        rewritten_days = noncurrent_version_expiration_days if rewritten_noncurrent_days is None else rewritten_noncurrent_days

        self.raw_bucket = secure_bucket("Raw", "raw", expiration=days_or_none(raw_expiration_days))
        # Copies of raw rows: a quarantined row is the whole raw row (and its source file's name), a failed put the
        # record's features and id. Nothing reads them back (a run judges corrections on the raw rows it reads), so
        # they need not outlive the raw data they copy: they expire as raw does, old versions as their bucket's do.
        self.curated_bucket = secure_bucket(
            "Curated",
            "curated",
            # The whole bucket: the dataset prefixes are rewritten, and _quarantine/ is written once per run id.
            noncurrent_days=rewritten_days,
            infrequent_access_after=days_or_none(curated_infrequent_access_days),
            extra_lifecycle_rules=expire("expire-quarantine", f"{QUARANTINE_PREFIX}/", raw_expiration_days, rewritten_days),
        )
        self.features_bucket = secure_bucket(
            "Features",
            "features",
            extra_lifecycle_rules=[
                # Overlapping the bucket-wide rule: S3 honours the shorter expiry for snapshots/.
                *([] if rewritten_noncurrent_days is None else [
                    s3.LifecycleRule(id="rewritten-snapshots", prefix=f"{FEATURE_SNAPSHOTS_ROOT}/",
                                     noncurrent_version_expiration=days(rewritten_noncurrent_days))
                ]),
                *expire("expire-ingest-failures", f"{INGEST_FAILURES_PREFIX}/", raw_expiration_days,
                        noncurrent_version_expiration_days),
            ],
        )
        def old_versions(rule_id: str, prefix: str) -> list:
            """A rule expiring the old versions under ``prefix`` after the general window; none when they are kept."""
            if noncurrent_version_expiration_days is None:
                return []
            return [s3.LifecycleRule(id=rule_id, prefix=prefix,
                                     noncurrent_version_expiration=days(noncurrent_version_expiration_days))]

        def expire_or_age(rule_id: str, old_rule_id: str, prefix: str, after_days: Optional[int]) -> list:
            """``prefix``'s expiry rule, which expires its old versions too; else a rule for its old versions only."""
            return expire(rule_id, prefix, after_days, noncurrent_version_expiration_days) or old_versions(old_rule_id, prefix)

        # Evidence that SageMaker's own output uploads write cannot be made write-once (they send no If-None-Match,
        # and Prepare writes the frozen test set back every run): a rerun, a job or a person can still overwrite it,
        # or delete it (a delete marker). Every version there is kept instead: no principal may delete a version
        # (kept_keys), and no rule expires old versions there. A lifecycle filter only includes (a literal prefix)
        # and the reports sit below execution ids, so these two buckets expire old versions prefix by prefix, never
        # bucket-wide. Sealed models and ledger records are created once and never replaced: no old versions.
        self.artifacts_bucket = secure_bucket(
            "Artifacts",
            "artifacts",
            noncurrent_days=None,
            # A sealed model (pipeline_code.training.seal) never changes once written, nor does an approval-ledger record
            # (the deploy handler's record of an approval decision).
            # Nor does a version's run record (the deploy handler's copy of the pipeline execution that registered it).
            write_once_keys=(SEALED_KEY_PATTERN, LEDGER_KEY_PATTERN, RUN_RECORD_KEY_PATTERN),
            kept_keys=(*RUN_REPORT_KEY_PATTERNS, FROZEN_TEST_KEY_PATTERN),
            extra_lifecycle_rules=[
                # One rule per model: a pipeline's prefix holds its model's name, and a filter is a literal prefix.
                *(rule for model in models
                  for rule in expire_or_age(f"expire-work-{model}", f"old-versions-work-{model}", work_prefix(model),
                                            pipeline_work_expiration_days)),
                # Glue's scratch space during a run (a job runs at most 48 hours): no value after it, old versions included.
                *expire("expire-glue-temp", f"{GLUE_TEMP_PREFIX}/", GLUE_TEMP_EXPIRATION_DAYS, 1),
                *old_versions("old-versions-etl-runs", f"{ETL_RUNS_PREFIX}/"),
                *old_versions("old-versions-mme", f"{MME_STAGING_ROOT}/"),
            ],
        )
        self.inference_bucket = secure_bucket(
            "Inference",
            "inference",
            noncurrent_days=None,
            # The drift monitor's reports and its tables (prediction records, results): evidence, every version kept.
            kept_keys=tuple(f"{what}/*" for what in DRIFT_MONITOR_OUTPUTS),
            extra_lifecycle_rules=[
                *(rule for what in INFERENCE_TRAFFIC
                  for rule in expire_or_age(f"expire-{what}", f"old-versions-{what}", f"{what}/", inference_expiration_days)),
                # The drift monitor's reports: old versions go only with the records' own expiry, when one is set.
                *(rule for what in INFERENCE_RECORDS
                  for rule in (expire(f"expire-{what}", f"{what}/", inference_records_expiration_days,
                                      noncurrent_version_expiration_days) if what in DRIFT_MONITOR_OUTPUTS
                               else expire_or_age(f"expire-{what}", f"old-versions-{what}", f"{what}/",
                                                  inference_records_expiration_days))),
                *expire(f"expire-{ATHENA_RESULTS_PREFIX}", f"{ATHENA_RESULTS_PREFIX}/", ATHENA_RESULTS_EXPIRATION_DAYS, 1),
            ],
        )

        acknowledge(
            self,
            "Cross-region replication is a disaster-recovery choice per organisation (a second region, "
            "its own key); versioning, retention and the kept removal policy protect the data in-region.",
            "NIST.800.53.R5-S3BucketReplicationEnabled",
        )

    def reference(self, scope: Construct, kind: str) -> s3.IBucket:
        """An ``IBucket`` for the ``kind`` bucket, addressed by its fixed name, usable in any stack.

        Policies built from it hold concrete ARNs (reviewable, and acknowledgeable per finding)
        instead of cross-stack tokens.
        """
        return s3.Bucket.from_bucket_attributes(
            scope, f"{kind.title().replace('-', '')}Bucket", bucket_name=self.bucket_names[kind], encryption_key=self.key
        )
