"""ARNs exactly as ``Stack.format_arn`` writes them, formatted in this process.

A synth formats about 500 ARNs for its policies, and each ``Stack.format_arn`` (like each read of a
stack's partition, region or account, or a bucket's ``s3_url_for_object``) is a round trip to the CDK's Node process. The CDK's
``Arn.format`` only joins the parts with separators, so the same string - literal, or carrying the
same tokens for an environment-agnostic stack - is built here from the stack's partition, region and
account, read once per stack (:func:`~.cdk_reads.environment_of`; tests/infra/constructs/test_arns.py compares both
for every format); an ``s3://`` URL likewise from the bucket's name (:func:`s3_url`).
"""

from __future__ import annotations

from typing import Optional

from aws_cdk import ArnFormat
from constructs import IConstruct

from .cdk_reads import environment_of


def format_arn(
    scope: IConstruct,
    *,
    service: str,
    resource: str,
    resource_name: Optional[str] = None,
    arn_format: ArnFormat = ArnFormat.SLASH_RESOURCE_NAME,
    region: Optional[str] = None,
    account: Optional[str] = None,
) -> str:
    """``Stack.of(scope).format_arn(...)`` with these arguments: ``arn:<partition>:<service>:<region>:<account>:<resource>``
    then ``/<resource_name>`` (``:`` with ``ArnFormat.COLON_RESOURCE_NAME``; ``ArnFormat.SLASH_RESOURCE_SLASH_RESOURCE_NAME``
    also puts a ``/`` before the resource); ``region`` and ``account`` default to the stack's (``""`` leaves one out,
    as for S3 and IAM)."""
    partition, stack_region, stack_account = environment_of(scope)
    region = stack_region if region is None else region
    account = stack_account if account is None else account
    lead = "/" if arn_format == ArnFormat.SLASH_RESOURCE_SLASH_RESOURCE_NAME else ""
    arn = f"arn:{partition}:{service}:{region}:{account}:{lead}{resource}"
    if resource_name is not None:
        arn += (":" if arn_format == ArnFormat.COLON_RESOURCE_NAME else "/") + resource_name
    return arn


def s3_arn(scope: IConstruct, bucket_name: str, key_pattern: Optional[str] = None) -> str:
    """The ARN of a bucket (or of the objects matching ``key_pattern``) in the scope's partition."""
    resource = bucket_name if key_pattern is None else f"{bucket_name}/{key_pattern}"
    return format_arn(scope, service="s3", resource=resource, region="", account="")


def s3_url(bucket_name: str, key: Optional[str] = None) -> str:
    """``bucket.s3_url_for_object(key)`` of the bucket named ``bucket_name`` (its ``bucket_name``, e.g. read with
    :func:`~.cdk_reads.read_once`), made here: ``s3://<bucket>``, then ``/<key>`` when a key is given. The CDK joins
    the parts as this does, dropping a ``/`` where two would meet; a synth makes about 150 of these URLs, each a round
    trip to the CDK's Node process when asked of the bucket."""
    url = "s3://"
    for part in (bucket_name,) if key is None else (bucket_name, key):
        url = f"{url[:-1] if url.endswith('/') else url}/{part[1:] if part.startswith('/') else part}"
    return url


def any_sagemaker(scope: IConstruct, *resources: str) -> list[str]:
    """The ARNs of every SageMaker ``resources`` of the scope's account and region (``endpoint-config/*``,
    ``model/*``): for the resources CloudFormation names at deploy time, as each version's endpoint config and model."""
    return [format_arn(scope, service="sagemaker", resource=resource, resource_name="*") for resource in resources]
