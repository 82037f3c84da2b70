"""Find and fetch the current champion: the latest *Approved* package of a model package group.

Used by the evaluation job when no champion directory was mounted. Needs
``sagemaker:ListModelPackages``, ``sagemaker:DescribeModelPackage`` and ``s3:GetObject``
(+ ``kms:Decrypt``) on the artifacts bucket. A champion whose package records its archive digest
(a sealed one, :mod:`seal`) is refused when the downloaded bytes differ. A group without an approved package has no
champion (the first model); any AWS error propagates (the step fails rather than silently
evaluating without a champion).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Dict, Optional

from pipeline_code.core import integrity
from pipeline_code.job_runtime import split_s3_uri


class ChampionError(RuntimeError):
    """The approved package exists but its model artifact cannot be located."""


@dataclass(frozen=True)
class Champion:
    model_package_arn: str
    version: Optional[int]
    model_data_url: str
    local_path: str
    creation_time: Optional[str]

    def to_dict(self) -> Dict[str, Any]:
        return dict(self.__dict__)


def latest_approved_package(group: str, *, client: Any) -> Optional[Dict[str, Any]]:
    """``DescribeModelPackage`` of the newest Approved package in ``group``, or None."""
    response = client.list_model_packages(
        ModelPackageGroupName=group,
        ModelApprovalStatus="Approved",
        SortBy="CreationTime",
        SortOrder="Descending",
        MaxResults=1,
    )
    summaries = response.get("ModelPackageSummaryList") or []
    if not summaries:
        return None
    return client.describe_model_package(ModelPackageName=summaries[0]["ModelPackageArn"])


def model_data_url(description: Dict[str, Any]) -> str:
    """The S3 URI of the package's model artifact (``ModelDataUrl`` or ``ModelDataSource``)."""
    containers = (description.get("InferenceSpecification") or {}).get("Containers") or []
    for container in containers:
        if container.get("ModelDataUrl"):
            return str(container["ModelDataUrl"])
        source = (container.get("ModelDataSource") or {}).get("S3DataSource") or {}
        if source.get("S3Uri"):
            return str(source["S3Uri"])
    raise ChampionError(f"model package {description.get('ModelPackageArn')!r} has no ModelDataUrl in its containers")


def fetch_champion(
    group: str, destination: str, *, sagemaker_client: Any = None, s3_client: Any = None, region: Optional[str] = None
) -> Optional[Champion]:
    """Download the champion's artifact into ``destination``; None when the group has no approved package."""
    if sagemaker_client is None or s3_client is None:
        import boto3  # lazily: local runs and tests pass their own clients

        session = boto3.session.Session(region_name=region)
        sagemaker_client = sagemaker_client or session.client("sagemaker")
        s3_client = s3_client or session.client("s3")
    description = latest_approved_package(group, client=sagemaker_client)
    if description is None:
        return None
    url = model_data_url(description)
    bucket, key = split_s3_uri(url)
    os.makedirs(destination, exist_ok=True)
    name = os.path.basename(key) or "model.tar.gz"
    local_path = os.path.join(destination, name)
    s3_client.download_file(bucket, key, local_path)
    recorded = (description.get("CustomerMetadataProperties") or {}).get(integrity.ARCHIVE_SHA256_PROPERTY)
    if recorded:
        actual = integrity.sha256_file(local_path)
        if actual != recorded:
            raise ChampionError(
                f"champion {description['ModelPackageArn']}: {url} has sha256 {actual}, but the package recorded "
                f"{recorded} at registration ({integrity.ARCHIVE_SHA256_PROPERTY}); its artefact was changed"
            )
    created = description.get("CreationTime")
    return Champion(
        model_package_arn=str(description["ModelPackageArn"]),
        version=description.get("ModelPackageVersion"),
        model_data_url=url,
        local_path=local_path,
        creation_time=created.isoformat() if hasattr(created, "isoformat") else (str(created) if created else None),
    )
