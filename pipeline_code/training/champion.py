"""Find and fetch the current champion: the version of a model package group that serves.

Used by the evaluation job when no champion directory was mounted. The champion is picked by the deploy
handler's rule (:func:`pipeline_code.core.approval.serving_package`): the ``Approved`` + ``Completed`` version approved
last, so after a rollback (an earlier version re-approved) it is the re-approved version, not the newest one, passing
over a version whose (digest-verified) evaluation report says its promotion gate failed - the handler refuses to
deploy such a version and the one before it keeps serving, so a challenger is never judged against a model that never
served (``passed_over`` says which and why) - and over a version whose reports are not where the evaluation step writes
its model's reports in the artifacts bucket (``place``, :class:`pipeline_code.core.approval.ReportPlace`): the deploy
handler may read only those, so it refuses such a version although this job's role could read its reports. Needs
``sagemaker:ListModelPackages`` (every page of the group's Approved versions), ``sagemaker:DescribeModelPackage``
(each of them: their approval times) and ``s3:GetObject`` (+ ``kms:Decrypt``) on the artifacts bucket (the artefact, and the evaluation and bias reports). A champion whose
package records its archive digest (a sealed one, :mod:`seal`) is refused when the downloaded bytes differ.
A group without a version that may serve has no champion (the first model); any AWS error propagates (the step
fails rather than silently evaluating without a champion).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from pipeline_code.core import approval, integrity
from pipeline_code.core.contract import ARCHIVE_SHA256_PROPERTY
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
    approved_at: Optional[str] = None
    rule: str = approval.RULE
    # The versions approved after it that the rule passed over ("v<n>: <why>": their gate failed).
    passed_over: List[str] = field(default_factory=list)

    def to_dict(self) -> Dict[str, Any]:
        return dict(self.__dict__)


def serving_package(group: str, *, client: Any, s3_client: Any, place: approval.ReportPlace,
                    passed_over: Optional[List[str]] = None) -> Optional[Dict[str, Any]]:
    """``DescribeModelPackage`` of the version of ``group`` that serves (:func:`approval.serving_package`), or None."""
    found = approval.serving_package(client, group, s3_client, passed_over, place=place)
    return None if found is None else dict(found)


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
    group: str, destination: str, *, place: approval.ReportPlace, sagemaker_client: Any = None, s3_client: Any = None,
    region: Optional[str] = None,
) -> Optional[Champion]:
    """Download the champion's artifact into ``destination``; None when no version of the group may serve.

    ``place``: where the group's model's evaluation reports must be (:func:`report_place`)."""
    if sagemaker_client is None or s3_client is None:
        import boto3  # lazily: local runs and tests pass their own clients

        session = boto3.session.Session(region_name=region)
        sagemaker_client = sagemaker_client or session.client("sagemaker")
        s3_client = s3_client or session.client("s3")
    passed_over: List[str] = []
    description = serving_package(group, client=sagemaker_client, s3_client=s3_client, place=place, passed_over=passed_over)
    if description is None:
        return None
    url = model_data_url(description)
    bucket, key = split_s3_uri(url)
    os.makedirs(destination, exist_ok=True)
    name = os.path.basename(key) or "model.tar.gz"
    local_path = os.path.join(destination, name)
    s3_client.download_file(bucket, key, local_path)
    recorded = (description.get("CustomerMetadataProperties") or {}).get(ARCHIVE_SHA256_PROPERTY)
    if recorded:
        actual = integrity.sha256_file(local_path)
        if actual != recorded:
            raise ChampionError(
                f"champion {description['ModelPackageArn']}: {url} has sha256 {actual}, but the package recorded "
                f"{recorded} at registration ({ARCHIVE_SHA256_PROPERTY}); its artefact was changed"
            )
    return Champion(
        model_package_arn=str(description["ModelPackageArn"]),
        version=description.get("ModelPackageVersion"),
        model_data_url=url,
        local_path=local_path,
        creation_time=_text(description.get("CreationTime")),
        approved_at=_text(approval.standing_of(description).approved_at),
        passed_over=passed_over,
    )


def report_place(model: str, seal_location: Optional[str]) -> approval.ReportPlace:
    """Where the deploy handler may read ``model``'s evaluation reports, from the evaluation job's own arguments: its
    model spec's name and the artifacts bucket of ``seal_location`` (``--seal-uri``, which the pipeline sets to
    ``s3://<artifacts bucket>/pipelines/<model>/registered/``). Without an s3:// seal location (a run that seals
    nothing) the bucket is not known: the key alone is checked."""
    bucket = seal_location[len("s3://"):].partition("/")[0] if (seal_location or "").startswith("s3://") else ""
    return approval.ReportPlace(model=model, bucket=bucket or None)


def _text(when: Any) -> Optional[str]:
    return when.isoformat() if hasattr(when, "isoformat") else (str(when) if when else None)
