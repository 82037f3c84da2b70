"""The pipeline execution that produced a version (or, once it is gone, the run record the deploy handler kept at
approval), who started it, and SageMaker's lineage graph around the model package."""

from __future__ import annotations

import re
from typing import Any, Dict, Mapping, Optional, Sequence

from pipeline_code.core import integrity
from pipeline_code.core.contract import PIPELINE_EXECUTION_ID_PROPERTY, PIPELINE_NAME_PROPERTY, package_created

from .approvals import person_of
from .artefacts import sealed_location
from .aws import (
    Clients,
    Gaps,
    Names,
    as_datetime,
    attempt,
    aws_errors,
    describe_error,
    error_code,
    is_credentials_error,
    iso_time,
    list_pages,
    read_bytes,
)


_EXECUTION_ARN = re.compile(r"arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:[0-9]{12}:pipeline/[^/\s]+/execution/[^/\s]+")


def gather_execution(clients: Clients, package: Mapping[str, Any], gaps: Gaps) -> Optional[Dict[str, Any]]:
    sm = clients.sagemaker
    metadata = package.get("CustomerMetadataProperties") or {}
    arn = (package.get("MetadataProperties") or {}).get("GeneratedBy") or ""
    how = "MetadataProperties.GeneratedBy"
    pipeline, execution_id = metadata.get(PIPELINE_NAME_PROPERTY), metadata.get(PIPELINE_EXECUTION_ID_PROPERTY)
    if _EXECUTION_ARN.fullmatch(arn):
        # GeneratedBy is set at registration and no API changes it; the customer metadata can be edited.
        named_pipeline, named_execution = arn.split(":", 5)[5].split("/")[1::2]
        if (execution_id and execution_id != named_execution) or (pipeline and pipeline.lower() != named_pipeline.lower()):
            gaps.add(
                f"pipeline execution: the customer metadata names execution {execution_id or '(none)'} of pipeline "
                f"{pipeline or '(none)'}, but MetadataProperties.GeneratedBy, recorded at registration, names {arn}; the "
                "report follows GeneratedBy (the customer metadata was changed after registration)"
            )
    else:
        arn, how = "", "customer metadata pipeline_execution_id"
        if not (pipeline and execution_id):
            gaps.add("pipeline execution: the package records neither GeneratedBy nor pipeline_name + pipeline_execution_id")
            return None
        summaries = attempt(
            gaps,
            f"pipeline executions of {pipeline}",
            lambda: list_pages(sm.list_pipeline_executions, "PipelineExecutionSummaries", PipelineName=pipeline),
        )
        for summary in summaries or []:
            if summary["PipelineExecutionArn"].endswith(f"/execution/{execution_id}"):
                arn = summary["PipelineExecutionArn"]
        if not arn:
            if summaries is not None:
                gaps.add(f"pipeline execution {execution_id} of {pipeline} is no longer listed (deleted or expired)")
            return None
    described = attempt(gaps, f"pipeline execution {arn}", lambda: sm.describe_pipeline_execution(PipelineExecutionArn=arn))
    if described is None:
        return None
    parameters = attempt(
        gaps,
        "pipeline execution parameters",
        lambda: list_pages(sm.list_pipeline_parameters_for_execution, "PipelineParameters", PipelineExecutionArn=arn),
    )
    steps = attempt(
        gaps,
        "pipeline execution steps",
        lambda: list_pages(
            sm.list_pipeline_execution_steps, "PipelineExecutionSteps", PipelineExecutionArn=arn, SortOrder="Ascending"
        ),
    )
    out = {
        "arn": arn,
        "found_by": how,
        "status": described.get("PipelineExecutionStatus"),
        "display_name": described.get("PipelineExecutionDisplayName"),
        "started": iso_time(described.get("CreationTime")),
        "last_modified": iso_time(described.get("LastModifiedTime")),
        "parameters": {p["Name"]: p.get("Value") for p in parameters or []},
        "steps": [],
        "registered_this_package": None,
        **_started_by(described.get("CreatedBy")),
    }
    _add_steps(out, steps or [], package)
    if steps is not None and out["registered_this_package"] is None:
        gaps.add(f"pipeline execution {arn} has no Register step naming a model package: the link to this version is unconfirmed")
    elif out["registered_this_package"] is False:
        gaps.add(f"pipeline execution {arn} registered a different model package than this one: the lineage link is inconsistent")
    return out


def _add_steps(out: Dict[str, Any], steps: Sequence[Mapping[str, Any]], package: Mapping[str, Any]) -> None:
    """``out["steps"]`` from ``ListPipelineExecutionSteps`` items, and whether their Register step created ``package``."""
    for step in steps:
        meta = step.get("Metadata") or {}
        job = next((v.get("Arn") for v in meta.values() if isinstance(v, Mapping) and v.get("Arn")), None)
        out["steps"].append(
            {
                "name": step.get("StepName"),
                "status": step.get("StepStatus"),
                "started": iso_time(step.get("StartTime")),
                "ended": iso_time(step.get("EndTime")),
                "resource": job,
                "cached_from": (step.get("CacheHitResult") or {}).get("SourcePipelineExecutionArn"),
            }
        )
        registered = (meta.get("RegisterModel") or {}).get("Arn")
        if registered:
            out["registered_this_package"] = registered.lower() == package["ModelPackageArn"].lower()


RUN_RECORD_SOURCE = "run record from the evidence copy written at approval"


def gather_run_record(clients: Clients, names: Names, version: int, package: Mapping[str, Any], model_data: Sequence[str],
                      gaps: Gaps) -> Optional[Dict[str, Any]]:
    """The execution as the deploy handler's run record keeps it (``integrity.run_record_key`` in the artifacts bucket
    the version's sealed ModelDataUrl names, its digest checked by ``integrity.parse_run_record``), in
    :func:`gather_execution`'s shape plus the ``definition`` it ran; None, with a gap, when there is none to read."""
    sealed, created = sealed_location(model_data), as_datetime(package.get("CreationTime"))
    if sealed is None or created is None:
        return None  # registered before sealing (a gap of its own), so before run records
    uri = f"s3://{sealed[0]}/{integrity.run_record_key(names.model, version, package_created(created))}"
    try:
        body = read_bytes(clients, uri)
    except aws_errors() as exc:
        if is_credentials_error(exc):
            raise
        gaps.add(f"run record: no evidence copy at {uri} (the deploy handler keeps one when a version is approved): "
                 "what the execution ran is not on record" if error_code(exc) in ("NoSuchKey", "404") else
                 f"run record {uri}: {describe_error(exc)}")
        return None
    try:
        record = integrity.parse_run_record(body)
        if record["package_arn"] != package.get("ModelPackageArn") or record["version"] != version:
            raise ValueError(f"it records v{record['version']} ({record['package_arn']}), not this version's package")
    except ValueError as exc:
        gaps.add(f"run record {uri} does not parse as this version's run record: {exc}")
        return None
    execution = record["execution"] if isinstance(record["execution"], Mapping) else {}
    out: Dict[str, Any] = {
        "arn": record["execution_arn"],
        "found_by": f"{RUN_RECORD_SOURCE} ({uri}, recorded {iso_time(record['recorded_at'])}, digest verified)",
        "status": execution.get("PipelineExecutionStatus"),
        "display_name": execution.get("PipelineExecutionDisplayName"),
        "started": iso_time(execution.get("CreationTime")),
        "last_modified": iso_time(execution.get("LastModifiedTime")),
        "parameters": {p["Name"]: p.get("Value") for p in record["parameters"] or [] if isinstance(p, Mapping)},
        "steps": [],
        "registered_this_package": None,
        "definition": {"PipelineDefinition": (record["definition"] or {}).get("body")},
        **_started_by(execution.get("CreatedBy")),
    }
    _add_steps(out, record["steps"] or [], package)
    return out


def _started_by(created_by: Any) -> Dict[str, Optional[str]]:
    """Who started a pipeline execution (DescribePipelineExecution ``CreatedBy``): ``started_by`` (the IAM identity's
    ARN, else the Studio user profile) and ``started_by_person`` (its ``SourceIdentity``, else the role session's or IAM
    user's name, else the profile name - a Studio execution role's session is "SageMaker", no person; None for an
    execution EventBridge or a schedule started, which names no one)."""
    created_by = created_by if isinstance(created_by, Mapping) else {}
    iam = created_by.get("IamIdentity") if isinstance(created_by.get("IamIdentity"), Mapping) else {}
    arn, profile = iam.get("Arn"), created_by.get("UserProfileName")
    person = iam.get("SourceIdentity") or person_of(arn) or profile
    return {"started_by": arn or profile, "started_by_person": person}


def gather_lineage(clients: Clients, package: Mapping[str, Any], gaps: Gaps) -> Dict[str, Any]:
    sm = clients.sagemaker
    arn = package["ModelPackageArn"]
    artifacts = attempt(gaps, "lineage (ListArtifacts)", lambda: list_pages(sm.list_artifacts, "ArtifactSummaries", SourceUri=arn))
    out: Dict[str, Any] = {"artifact": None, "upstream": [], "downstream": []}
    if artifacts is None:
        return out
    if not artifacts:
        gaps.add("lineage: SageMaker has no lineage artifact for this model package (link absent)")
        return out
    artifact = artifacts[0]["ArtifactArn"]
    out["artifact"] = artifact
    for direction, key in (("upstream", "DestinationArn"), ("downstream", "SourceArn")):
        found = attempt(
            gaps,
            f"lineage {direction} associations",
            lambda: list_pages(sm.list_associations, "AssociationSummaries", **{key: artifact}),
        )
        for a in found or []:
            other = "Source" if direction == "upstream" else "Destination"
            out[direction].append(
                {
                    "name": a.get(f"{other}Name") or a.get(f"{other}Arn"),
                    "type": a.get(f"{other}Type"),
                    "arn": a.get(f"{other}Arn"),
                    "association": a.get("AssociationType"),
                    "created": iso_time(a.get("CreationTime")),
                }
            )
        if found is not None and not found:
            gaps.add(f"lineage: no {direction} association of artifact {artifact}")
    return out
