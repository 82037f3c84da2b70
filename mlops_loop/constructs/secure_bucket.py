"""One S3 bucket that meets the project's storage baseline."""

from __future__ import annotations

from typing import Optional, Sequence

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from .cdk_reads import days


class SecureBucket(Construct):
    """A KMS-encrypted, TLS-only, versioned, private S3 bucket with access logging and lifecycle rules.

    Defaults: SSE-KMS with ``encryption_key`` and an S3 bucket key (fewer KMS calls),
    every public-access block on, ACLs disabled (bucket owner enforced), requests without TLS 1.2
    denied by bucket policy, server access logs written to ``access_logs_bucket`` under
    ``<name_hint>/``, non-current object versions expired after ``noncurrent_version_expiration`` (kept when
    None), delete markers removed once no version is left behind them, and incomplete multipart uploads
    aborted after 7 days. ``extra_lifecycle_rules`` (default: none) add rules for prefixes of the bucket.

    Keys matching a pattern in ``write_once_keys`` (default: none) are write-once for every
    principal, by bucket policy: an object there may only be created with ``If-None-Match: *`` (a
    conditional write that fails when the key exists), never overwritten (no unconditional or
    ``If-Match`` write, and so no CopyObject or multipart upload) and never deleted, not even a
    version. Changing one takes an edit of the bucket policy, which is itself audited.

    Keys matching a pattern in ``kept_keys`` (default: none) keep every version ever written: no principal may
    delete a version there (``s3:DeleteObjectVersion``), so an overwrite or a delete leaves the earlier bytes as an old
    version. For writers that cannot make a conditional write (SageMaker's own output uploads). Lifecycle expiry is
    not an API request and no bucket policy stops it: the caller keeps ``noncurrent_version_expiration`` (and any
    rule of its own) away from those keys.

    The bucket policy (the TLS guard and the two above) is kept when the bucket is: with a retaining
    ``removal_policy`` a deletion or replacement of the stack leaves both bucket and policy in place (``keep_policy``),
    so deleting the stack never leaves a retained bucket unguarded. A policy is no lock against its own editors: whoever
    may ``s3:PutBucketPolicy`` / ``s3:DeleteBucketPolicy`` on the bucket can lift these guards.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        encryption_key: kms.IKey,
        access_logs_bucket: s3.IBucket,
        bucket_name: str,
        name_hint: str,
        removal_policy: RemovalPolicy,
        noncurrent_version_expiration: Optional[Duration],
        expiration: Optional[Duration] = None,
        infrequent_access_after: Optional[Duration] = None,
        extra_lifecycle_rules: Sequence[s3.LifecycleRule] = (),
        write_once_keys: Sequence[str] = (),
        kept_keys: Sequence[str] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        transitions = []
        if infrequent_access_after is not None:
            transitions.append(
                s3.Transition(
                    storage_class=s3.StorageClass.INFREQUENT_ACCESS,
                    transition_after=infrequent_access_after,
                )
            )
        rules = [
            s3.LifecycleRule(
                id="baseline",
                abort_incomplete_multipart_upload_after=days(7),
                noncurrent_version_expiration=noncurrent_version_expiration,
                expiration=expiration,
                transitions=transitions or None,
            ),
            # Every deletion leaves a delete marker, and a rewrite under new names (the nightly curate and feature
            # runs) one per replaced file; once its noncurrent version expires the marker hides nothing but stays,
            # and S3 lists it, for ever. S3 takes ExpiredObjectDeleteMarker only in a rule without expiration days,
            # hence a rule of its own.
            s3.LifecycleRule(id="expired-delete-markers", expired_object_delete_marker=True),
            *extra_lifecycle_rules,
        ]
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            bucket_name=bucket_name,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=encryption_key,
            bucket_key_enabled=True,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            versioned=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=access_logs_bucket,
            server_access_logs_prefix=f"{name_hint}/",
            lifecycle_rules=rules,
            removal_policy=removal_policy,
        )
        if write_once_keys:
            self._write_once(list(write_once_keys))
        if kept_keys:
            self.bucket.add_to_resource_policy(
                iam.PolicyStatement(sid="KeepEveryVersion", effect=iam.Effect.DENY, principals=[iam.AnyPrincipal()],
                                    actions=["s3:DeleteObjectVersion"],
                                    resources=[self.bucket.arn_for_objects(p) for p in kept_keys])
            )
        keep_policy(self.bucket, removal_policy)

    def _write_once(self, patterns: list[str]) -> None:
        objects = [self.bucket.arn_for_objects(p) for p in patterns]
        denied = (
            # Every write must be a create-if-absent ...
            ("WriteOnceOnlyIfNoneMatch", ["s3:PutObject"], {"Null": {"s3:if-none-match": "true"}}),
            # ... and never a replace-if-unchanged.
            ("WriteOnceNoIfMatch", ["s3:PutObject"], {"Null": {"s3:if-match": "false"}}),
            ("WriteOnceNoDelete", ["s3:DeleteObject", "s3:DeleteObjectVersion"], None),
        )
        for sid, actions, conditions in denied:
            self.bucket.add_to_resource_policy(
                iam.PolicyStatement(sid=sid, effect=iam.Effect.DENY, principals=[iam.AnyPrincipal()], actions=actions,
                                    resources=objects, conditions=conditions)
            )


def keep_policy(bucket: s3.Bucket, removal_policy: RemovalPolicy) -> None:
    """Give ``bucket``'s policy the bucket's own fate when that keeps the bucket: a deletion or replacement of the stack
    leaves it in place too (the DeletionPolicy and UpdateReplacePolicy ``removal_policy`` gives the bucket). With
    ``DESTROY`` (dev) the policy keeps CloudFormation's default, deleted with its stack.

    Why: the policy holds the guards (TLS only, write-once keys, versions kept, the access-log delivery grant). Deleted
    with a stack whose retained bucket stays, it would leave the ledger and the evidence deletable by anyone the account
    lets delete objects, and stop server access logging.
    """
    if removal_policy == RemovalPolicy.DESTROY or bucket.policy is None:
        return
    bucket.policy.apply_removal_policy(removal_policy)
