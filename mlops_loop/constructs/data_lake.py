"""The encrypted S3 data lake: one KMS key and the buckets every other part of the loop uses."""

from __future__ import annotations

from typing import Optional

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_s3 as s3
from constructs import Construct

from pipeline_code.core.integrity import SEALED_KEY_PATTERN

from ..nag import acknowledge
from ..naming import LAKE_BUCKETS, lake_bucket_name
from .secure_bucket import SecureBucket
from .service_key import service_key

class DataLake(Construct):
    """A customer-managed KMS key and six buckets: raw, curated, features, artifacts, inference, access logs.

    * ``raw``: data as landed; expires after ``raw_expiration_days`` (default: never when None).
    * ``curated``: typed, validated tables written by the Glue ETL (plus its ``_quarantine/`` prefix);
      moves to Infrequent Access after ``curated_infrequent_access_days``.
    * ``features``: the Feature Store offline store (Iceberg) and computed feature snapshots.
    * ``artifacts``: job code, Glue temp files, model artifacts, reports; sealed models
      (``pipelines/<model>/registered/``) are write-once and undeletable.
    * ``inference``: what serving sees and says: data capture, async requests/results, batch inputs
      and outputs, ground-truth labels and monitor reports; captured traffic expires after
      ``inference_expiration_days`` (default: never when None).
    * ``access_logs``: S3 server access logs of the four buckets above.

    Buckets have fixed names (:func:`lake_bucket_name`), listed in ``bucket_names``. The key rotates yearly, and its policy lets CloudWatch Logs use it for log groups of this
    account and region only (Glue security configurations encrypt job logs with it).
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
        noncurrent_version_expiration_days: int,
        access_log_expiration_days: int,
        inference_expiration_days: Optional[int] = None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.bucket_names = {
            kind: lake_bucket_name(name_prefix, kind, stack.account, stack.region) for kind in LAKE_BUCKETS
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
                    expiration=Duration.days(access_log_expiration_days),
                    noncurrent_version_expiration=Duration.days(1),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
            removal_policy=removal_policy,
        )
        acknowledge(
            self.access_logs_bucket,
            "This bucket is the server-access-log target; logging it to itself would loop, and S3 "
            "log delivery supports only SSE-S3 on the target bucket.",
            "AwsSolutions-S1",
            "NIST.800.53.R5-S3BucketLoggingEnabled",
            "NIST.800.53.R5-S3DefaultEncryptionKMS",
        )

        def lake_bucket(construct_id: str, hint: str, **options) -> s3.IBucket:
            return SecureBucket(
                self,
                construct_id,
                encryption_key=self.key,
                access_logs_bucket=self.access_logs_bucket,
                bucket_name=self.bucket_names[hint],
                name_hint=hint,
                removal_policy=removal_policy,
                noncurrent_version_expiration=Duration.days(noncurrent_version_expiration_days),
                **options,
            ).bucket

        self.raw_bucket = lake_bucket(
            "Raw",
            "raw",
            expiration=Duration.days(raw_expiration_days) if raw_expiration_days else None,
        )
        self.curated_bucket = lake_bucket(
            "Curated",
            "curated",
            infrequent_access_after=(
                Duration.days(curated_infrequent_access_days) if curated_infrequent_access_days else None
            ),
        )
        self.features_bucket = lake_bucket("Features", "features")
        # A sealed model (pipeline_code.training.seal) never changes once written.
        self.artifacts_bucket = lake_bucket("Artifacts", "artifacts", write_once_keys=(SEALED_KEY_PATTERN,))
        self.inference_bucket = lake_bucket(
            "Inference",
            "inference",
            expiration=Duration.days(inference_expiration_days) if inference_expiration_days else None,
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
