"""The model registry as the deploy handler reads it: a group's versions, the one that should serve, and the checks a
version must pass before it serves (its package, its sealed registration, the bytes of its artefact)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, Dict, Iterable, List, Mapping, Optional

from botocore.exceptions import ClientError

from pipeline_code.core import approval as approval_rule
from pipeline_code.core import integrity
from pipeline_code.core.contract import (ARCHIVE_SHA256_PROPERTY, CONTAINER_SHA256_PROPERTY,
                                        MODEL_SHA256_PROPERTY, S3_OBJECT_URI, version_of_arn)
from pipeline_code.handlers import multi_model as mme


@dataclasses.dataclass(frozen=True)
class Version:
    """One model package version as the deploy logic sees it.

    ``containers``, ``last_modified``, ``model_data_url`` (the first container's artefact), the
    digests recorded at registration (``archive_sha256``, ``model_sha256``, ``container_sha256``;
    :mod:`pipeline_code.core.integrity`) and the digest of the container the package holds now
    (``container_now``, with its ``image``; only for a package of one container) are known only for
    described versions (``None`` otherwise), as are its evaluation report (``evaluation_uri``, beside its ModelMetrics
    ModelQuality statistics) and bias report (``bias_uri``, with the ``bias_sha256`` its ContentDigest records).
    """

    group: str
    version: int
    arn: str
    approval: str
    status: str
    created: dt.datetime
    last_modified: Optional[dt.datetime] = None
    approval_description: str = ""
    containers: Optional[int] = None
    model_data_url: Optional[str] = None
    archive_sha256: Optional[str] = None
    model_sha256: Optional[str] = None
    container_sha256: Optional[str] = None
    container_now: Optional[str] = None
    image: Optional[str] = None
    evaluation_uri: Optional[str] = None
    bias_uri: Optional[str] = None
    bias_sha256: Optional[str] = None

    @property
    def approved_at(self) -> dt.datetime:
        """When the current approval status was set: ``LastModifiedTime``, or creation if never modified."""
        return approval_rule.approval_time(self.last_modified, self.created)

    @property
    def standing(self) -> approval_rule.Standing:
        """What the serving rule (:mod:`pipeline_code.core.approval`) reads of this version."""
        return approval_rule.Standing(self.version, self.approval, self.status, self.approved_at)


def list_versions(sagemaker: Any, group: str, *, describe_all: bool = False) -> List[Version]:
    """Every version of ``group``, oldest first.

    By default only ``Approved`` versions are described (the selection needs their
    ``LastModifiedTime`` and containers); ``describe_all=True`` describes every version (the rollback
    CLI shows approval descriptions and modification times for all of them).
    """
    versions = []
    for summary in approval_rule.summaries(sagemaker, group):
        if describe_all or summary.get("ModelApprovalStatus") == approval_rule.APPROVED:
            versions.append(_from_description(sagemaker.describe_model_package(ModelPackageName=summary["ModelPackageArn"])))
        else:
            versions.append(_from_summary(summary, group))
    return sorted(versions, key=lambda v: v.version)


def select_desired(versions: Iterable[Version]) -> Optional[Version]:
    """The version that should serve: the most recently approved ``Approved`` + ``Completed`` one, or None
    (:data:`pipeline_code.core.approval.RULE`, the evaluation job's champion too).

    Ties on the approval time (millisecond resolution) go to the higher version number.
    """
    return approval_rule.select(versions, lambda v: v.standing)


def problems(version: Version, group: str, *, require_approved: bool = True) -> List[str]:
    """Why ``version`` must not serve ``group`` (empty when it may); ``require_approved=False`` skips the approval check."""
    found = []
    if version.group != group or version_of_arn(version.arn) != version.version:
        found.append(f"ARN {version.arn} is not a version of group {group}")
    if require_approved and version.approval != approval_rule.APPROVED:
        found.append(f"approval status is {version.approval}, not Approved")
    if version.status != approval_rule.COMPLETED:
        found.append(f"package status is {version.status}, not Completed")
    if version.containers is None:
        found.append("its inference specification was not read")
    elif version.containers < 1:
        found.append("it has no inference container (InferenceSpecification.Containers is empty)")
    return found


def seal_problems(version: Version) -> List[str]:
    """Why ``version``'s registration cannot vouch for its artefact, from the package alone (empty when it can).

    The package must record its digests (a sealed registration), its ``ModelDataUrl`` must be the sealed key
    of its archive digest (``.../registered/<sha256>/model.tar.gz``), and its one inference container (image and
    environment) must be the one registered (``container_sha256``): UpdateModelPackage can replace the inference
    specification, and no IAM condition key describes it, so the approver role is not denied that. The first half of
    :func:`verify_artifact`, which reads nothing: the rollback CLI refuses such a version before re-approving
    it, as its caller (the approver role) cannot read the artefacts bucket.
    """
    found = []
    for name, value in ((ARCHIVE_SHA256_PROPERTY, version.archive_sha256),
                        (MODEL_SHA256_PROPERTY, version.model_sha256)):
        if value is None:
            found.append(f"it records no {name} (registered before artefacts were sealed); re-run its pipeline to register a sealed version")
        elif not integrity.SHA256_HEX.match(value):
            found.append(f"its {name} {value!r} is not a sha256 (64 lower-case hex digits)")
    # A sealed version registered before container digests were recorded has none: its container is not verified
    # (the audit says so), but it still serves: refusing it would leave no version to roll back to after an upgrade.
    if version.container_sha256 is not None and not integrity.SHA256_HEX.match(version.container_sha256):
        found.append(f"its {CONTAINER_SHA256_PROPERTY} {version.container_sha256!r} is not a sha256 (64 lower-case hex digits)")
    if found:
        return found
    if version.containers is not None and version.containers > 1:
        return [f"it has {version.containers} inference containers, the pipeline registers one: its inference specification "
                "was changed after registration"]
    if version.container_sha256 is not None and version.container_now is not None and version.container_now != version.container_sha256:
        return [f"its inference container (image {version.image}) is not the one registered: its image and environment "
                f"hash to {version.container_now}, {version.container_sha256} was recorded at registration "
                f"({CONTAINER_SHA256_PROPERTY}); its inference specification was changed after registration"]
    match = S3_OBJECT_URI.match(version.model_data_url or "")
    if not match:
        return [f"its ModelDataUrl {version.model_data_url!r} is not an s3:// object URI"]
    if integrity.digest_of_sealed_key(match.group(2)) != version.archive_sha256:
        return [f"its ModelDataUrl {version.model_data_url} is not the sealed key of its {ARCHIVE_SHA256_PROPERTY} "
                f"(.../{integrity.SEALED_SEGMENT}/{version.archive_sha256}/{integrity.MODEL_ARCHIVE})"]
    return []


def verify_artifact(s3: Any, version: Version) -> List[str]:
    """Why ``version``'s artefact cannot be trusted (empty when it can).

    Its registration must vouch for it (:func:`seal_problems`), and the object's sha256 - S3's stored
    checksum, else the bytes read - must be the archive digest recorded there.
    """
    found = seal_problems(version)
    if found:
        return found
    bucket, key = S3_OBJECT_URI.match(version.model_data_url or "").groups()
    try:
        actual = integrity.stored_sha256(s3, bucket, key)
    except ClientError as error:
        return [f"its artefact {version.model_data_url} cannot be read to verify it: {error}"]
    if actual != version.archive_sha256:
        return [f"its artefact {version.model_data_url} has sha256 {actual}, but {version.archive_sha256} was recorded at "
                "registration: the bytes changed after the gate passed them"]
    return []


def gate_problems(s3: Any, version: Version, place: approval_rule.ReportPlace) -> List[str]:
    """Why ``version`` must not serve by its evaluation report (empty when it may):
    :func:`pipeline_code.core.approval.gate_problems`, one check for the handler and the rule's ``serving_package`` (the
    evaluation job's champion); a report outside ``place`` (where the handler's role may read reports:
    :func:`pipeline_code.handlers.deploy.settings.report_place`) refuses the version before it is read, and one S3
    refuses to read refuses it with S3's words."""
    return approval_rule.gate_problems(s3, evaluation_uri=version.evaluation_uri, bias_uri=version.bias_uri,
                                       bias_sha256=version.bias_sha256, place=place, read_errors=(ClientError,))


def serving_order(versions: Iterable[Version]) -> List[Version]:
    """The versions that may serve, the one approved last first (:func:`select_desired`'s order)."""
    return approval_rule.serving_order(versions, lambda v: v.standing)


def _from_description(d: Mapping[str, Any]) -> Version:
    containers = (d.get("InferenceSpecification") or {}).get("Containers") or []
    only = containers[0] if len(containers) == 1 and isinstance(containers[0], Mapping) else {}
    image = only.get("Image") if isinstance(only.get("Image"), str) else None
    return Version(
        group=d.get("ModelPackageGroupName", ""),
        version=int(d.get("ModelPackageVersion") or 0),
        arn=d["ModelPackageArn"],
        approval=d.get("ModelApprovalStatus", ""),
        status=d.get("ModelPackageStatus", ""),
        created=d["CreationTime"],
        last_modified=d.get("LastModifiedTime"),
        approval_description=d.get("ApprovalDescription", "") or "",
        containers=len(containers),
        model_data_url=mme.model_data_url(d),
        archive_sha256=_digest(d, ARCHIVE_SHA256_PROPERTY),
        model_sha256=_digest(d, MODEL_SHA256_PROPERTY),
        container_sha256=_digest(d, CONTAINER_SHA256_PROPERTY),
        container_now=integrity.container_digest(image or "", only.get("Environment")) if only else None,
        image=image,
        **approval_rule.report_locations(d),
    )


def _digest(description: Mapping[str, Any], name: str) -> Optional[str]:
    value = (description.get("CustomerMetadataProperties") or {}).get(name)
    return value if isinstance(value, str) and value else None


def _from_summary(s: Mapping[str, Any], group: str) -> Version:
    return Version(
        group=s.get("ModelPackageGroupName", group),
        version=int(s.get("ModelPackageVersion") or 0),
        arn=s["ModelPackageArn"],
        approval=s.get("ModelApprovalStatus", ""),
        status=s.get("ModelPackageStatus", ""),
        created=s["CreationTime"],
    )


def brief(version: Optional[Version]) -> Optional[Dict[str, Any]]:
    return None if version is None else {"version": version.version, "arn": version.arn}


def label(arn: str) -> str:
    if not arn:
        return "no endpoint"
    number = version_of_arn(arn)
    return f"v{number}" if number is not None else arn
