"""One S3 bucket that meets the project's storage baseline."""

from __future__ import annotations

from typing import Optional, Sequence

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct


class SecureBucket(Construct):
    """A KMS-encrypted, TLS-only, versioned, private S3 bucket with access logging and lifecycle rules.

    Defaults: SSE-KMS with ``bucket_encryption_key`` and an S3 bucket key (fewer KMS calls),
    every public-access block on, ACLs disabled (bucket owner enforced), requests without TLS 1.2
    denied by bucket policy, server access logs written to ``bucket_access_logs_bucket`` under
    ``<bucket_name_hint>/``, non-current object versions expired after
    ``bucket_noncurrent_version_expiration`` and incomplete multipart uploads aborted after 7 days.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket_encryption_key: kms.IKey,
        bucket_access_logs_bucket: s3.IBucket,
        bucket_name: str,
        bucket_name_hint: str,
        bucket_removal_policy: RemovalPolicy,
        bucket_noncurrent_version_expiration: Duration,
        bucket_expiration: Optional[Duration] = None,
        bucket_infrequent_access_after: Optional[Duration] = None,
        bucket_extra_lifecycle_rules: Sequence[s3.LifecycleRule] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        transitions = []
        if bucket_infrequent_access_after is not None:
            transitions.append(
                s3.Transition(
                    storage_class=s3.StorageClass.INFREQUENT_ACCESS,
                    transition_after=bucket_infrequent_access_after,
                )
            )
        rules = [
            s3.LifecycleRule(
                id="baseline",
                abort_incomplete_multipart_upload_after=Duration.days(7),
                noncurrent_version_expiration=bucket_noncurrent_version_expiration,
                expiration=bucket_expiration,
                transitions=transitions or None,
            ),
            *bucket_extra_lifecycle_rules,
        ]
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            bucket_name=bucket_name,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=bucket_encryption_key,
            bucket_key_enabled=True,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            versioned=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=bucket_access_logs_bucket,
            server_access_logs_prefix=f"{bucket_name_hint}/",
            lifecycle_rules=rules,
            removal_policy=bucket_removal_policy,
        )
