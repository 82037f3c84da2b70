"""When and how the version was deployed (the serving stack's events) and what image bytes its endpoint runs."""

from __future__ import annotations

import datetime as dt
from typing import Any, Dict, List, Mapping, Optional, Sequence

from .aws import Clients, Gaps, Names, as_datetime, attempt, describe_error, is_credentials_error, iso_time, list_pages


_SUCCESS = ("CREATE_COMPLETE", "UPDATE_COMPLETE")


_STACK_TERMINAL = (
    "CREATE_COMPLETE", "UPDATE_COMPLETE", "CREATE_FAILED", "UPDATE_FAILED", "ROLLBACK_COMPLETE",
    "ROLLBACK_FAILED", "UPDATE_ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_FAILED", "DELETE_COMPLETE", "IMPORT_COMPLETE",
)  # fmt: skip


def _operations(events: Sequence[Mapping[str, Any]], stack: str) -> List[List[Mapping[str, Any]]]:
    """Stack events (any order) grouped into stack operations, oldest first."""
    ordered = sorted(events, key=lambda e: as_datetime(e.get("Timestamp")) or dt.datetime.min.replace(tzinfo=dt.timezone.utc))
    operations: List[List[Mapping[str, Any]]] = []
    current: List[Mapping[str, Any]] = []
    for event in ordered:
        current.append(event)
        is_stack = event.get("ResourceType") == "AWS::CloudFormation::Stack" and event.get("LogicalResourceId") == stack
        if is_stack and event.get("ResourceStatus") in _STACK_TERMINAL:
            operations.append(current)
            current = []
    if current:
        operations.append(current)
    return operations


def _serving_images(clients: Clients, names: Names) -> Dict[str, Any]:
    """What image bytes the endpoint runs: each variant's ``DeployedImages`` (the image it was given, by tag, and the
    digest SageMaker resolved it to when the endpoint was created or updated, with the time). A tag may be republished
    by AWS with patches, so the digest is what tells whether two endpoints (staging's and prod's, or before and after a
    rollback) run the same bytes. Not a gap when unreadable: a batch or multi-model version has no endpoint of its
    model's name, and the version's container is verified against the registry above."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        endpoint = clients.sagemaker.describe_endpoint(EndpointName=names.endpoint)
    except (BotoCoreError, ClientError) as exc:
        if is_credentials_error(exc):
            raise
        return {"images": [], "why": f"not read: endpoint {names.endpoint}: {describe_error(exc)}"}
    images = [
        {"variant": variant.get("VariantName"), "specified": image.get("SpecifiedImage"),
         "resolved": image.get("ResolvedImage"), "resolved_at": iso_time(image.get("ResolutionTime"))}
        for variant in endpoint.get("ProductionVariants") or [] for image in variant.get("DeployedImages") or []
    ]
    why = None if images else f"not reported: endpoint {names.endpoint} names no resolved image (DeployedImages)"
    return {"images": images, "why": why}


def gather_deployment(clients: Clients, names: Names, arn: str, serving_arn: Optional[str], gaps: Gaps) -> Dict[str, Any]:
    out: Dict[str, Any] = {
        "stack": names.serving_stack,
        "parameter": names.parameter,
        "endpoint": names.endpoint,
        "serving_now": None if serving_arn is None else serving_arn.lower() == arn.lower(),
        "serving_arn": serving_arn,
        "deployed_at": None,
        "operation_finished": None,
        "method": None,
        "rolled_back_attempts": [],
    }
    events = attempt(
        gaps,
        f"deployment history (DescribeStackEvents of {names.serving_stack})",
        lambda: list_pages(clients.cloudformation.describe_stack_events, "StackEvents", StackName=names.serving_stack),
    )
    if events is None:
        return out
    for operation in reversed(_operations(events, names.serving_stack)):
        if not any(arn.lower() in str(e.get("ResourceProperties") or "").lower() for e in operation):
            continue
        final = operation[-1]
        status = final.get("ResourceStatus")
        if status not in _SUCCESS:
            out["rolled_back_attempts"].append({"time": iso_time(final.get("Timestamp")), "status": status})
            continue
        if out["deployed_at"] is not None:
            continue  # an earlier deployment of the same version (redeployed since): the newest counts
        endpoint = [
            e for e in operation
            if e.get("ResourceType") == "AWS::SageMaker::Endpoint" and e.get("ResourceStatus") in _SUCCESS
        ]  # fmt: skip
        out["operation_finished"] = iso_time(final.get("Timestamp"))
        if endpoint:
            out["deployed_at"] = iso_time(endpoint[-1].get("Timestamp"))
            out["method"] = (
                f"stack {names.serving_stack}: the newest successful operation whose resource properties name this "
                f"package; endpoint {endpoint[-1].get('PhysicalResourceId') or names.endpoint} "
                f"{endpoint[-1].get('ResourceStatus')} at that time"
            )
        else:
            out["deployed_at"] = out["operation_finished"]
            out["method"] = (
                f"stack {names.serving_stack}: the newest successful operation whose resource properties name this "
                "package (no endpoint event in it: the stack completion time is given)"
            )
    out["rolled_back_attempts"].reverse()
    if out["serving_now"]:
        out["serving_images"] = _serving_images(clients, names)
    if out["deployed_at"] is None:
        if out["serving_now"]:
            stack = attempt(gaps, "serving stack", lambda: clients.cloudformation.describe_stacks(StackName=names.serving_stack))
            if stack:
                s = stack["Stacks"][0]
                out["deployed_at_latest"] = iso_time(s.get("LastUpdatedTime") or s.get("CreationTime"))
            gaps.add(
                "deployment time: no stack event names this package (events expired or not recorded); "
                "it serves now and was deployed no later than the stack's last update"
            )
        else:
            gaps.add(f"deployment: no successful operation of {names.serving_stack} deployed this version")
    return out
