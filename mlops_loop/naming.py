"""Bucket naming shared by the config and the data lake (names that cross the infra/job boundary live in
``pipeline_code.core.contract``)."""

from __future__ import annotations

import re


LAKE_BUCKETS = ("raw", "curated", "features", "artifacts", "inference", "access-logs")
BUCKET_NAME_MAX = 63
# Bucket-name prefixes S3 reserves (S3 User Guide, "General purpose bucket naming rules").
RESERVED_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def lake_bucket_name(prefix: str, kind: str, account: str, region: str) -> str:
    """``<prefix>-<kind>-<account>-<region>``: readable, stable and globally unique in practice.

    Fixed names let every stack and job address the lake without cross-stack lookups, and make IAM
    policies (and their review) concrete. The config refuses names S3 would (see
    :func:`bucket_name_problem`); this raises too, as a last guard.
    """
    name = f"{prefix}-{kind}-{account}-{region}"
    problem = bucket_name_problem(name)
    if problem:
        raise ValueError(f"bucket name {name!r} {problem}")
    return name


def bucket_name_problem(name: str) -> str:
    """Why S3 would refuse bucket name ``name`` ("" when it would not)."""
    if len(name) > BUCKET_NAME_MAX:
        return f"is {len(name)} characters; S3 allows at most {BUCKET_NAME_MAX}"
    reserved = next((p for p in RESERVED_BUCKET_PREFIXES if name.startswith(p)), None)
    if reserved:
        return f"starts with {reserved!r}, which S3 reserves"
    if not _BUCKET_NAME.match(name):
        return "is invalid (3-63 lowercase letters, digits, '-' or '.')"
    return ""
