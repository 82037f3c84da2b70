"""The serving stack as the deploy handler reads it: its description and parameters, the endpoint it names, the
idempotency token of an update, and whether an approval's rollout failed and was rolled back (its stack events)."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from typing import Any, Dict, Mapping, Optional

from botocore.exceptions import ClientError

from pipeline_code.core.contract import endpoint_output_names
from pipeline_code.handlers import multi_model as mme
from pipeline_code.handlers.deploy.events import aware
from pipeline_code.handlers.deploy.registry import Version, label


_TOKEN_UNSAFE = re.compile(r"[^A-Za-z0-9-]")
# Stack events read, at most, looking for the last rollout of an approval (newest first; 100 per page).
MAX_EVENT_PAGES = 20


def describe_stack(cloudformation: Any, stack_name: str) -> Optional[Mapping[str, Any]]:
    """The stack's description, or None when it does not exist."""
    try:
        return cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    except ClientError as error:
        if error.response["Error"].get("Code") == "ValidationError" and "does not exist" in str(error):
            return None
        raise


def stack_parameters(stack: Mapping[str, Any]) -> Dict[str, str]:
    """``{ParameterKey: ParameterValue}`` of a described stack."""
    return {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}


def missing_endpoint(sagemaker: Any, stack: Mapping[str, Any], parameter: str) -> Optional[Dict[str, Any]]:
    """``{"endpoint", "status", "reason", "fix"}`` when the endpoint that serves ``parameter``'s model (the described
    serving stack's ``<Model>EndpointName`` output) does not exist or is being deleted, else None (also for a model with
    no endpoint: batch). ``fix`` is what brings it back with CloudFormation still owning it: ``create-endpoint`` with the
    same name (so the same ARN, the resource's physical id: the stack goes on updating it) and the endpoint
    configuration the stack made for the serving version (its ``<Model>EndpointConfigName`` output)."""
    endpoint_key, config_key = endpoint_output_names(parameter)
    outputs = {o.get("OutputKey"): o.get("OutputValue") or "" for o in stack.get("Outputs", [])}
    endpoint = outputs.get(endpoint_key)
    if not endpoint:
        return None
    status = mme.endpoint_status(sagemaker, endpoint)
    if status not in (None, "Deleting"):
        return None
    name = stack.get("StackName", "")
    arn_parts = str(stack.get("StackId", "")).split(":")
    region = arn_parts[3] if len(arn_parts) > 3 and arn_parts[3] else os.environ.get("AWS_REGION", "<region>")
    config = outputs.get(config_key) or (
        f"$(aws cloudformation describe-stacks --stack-name {name} --query \"Stacks[0].Outputs[?OutputKey=='{config_key}']"
        f".OutputValue\" --output text --region {region})")
    fix = [
        *([f"Wait until aws sagemaker describe-endpoint --endpoint-name {endpoint} --region {region} says it does not exist."]
          if status == "Deleting" else []),
        f"Re-create it as the serving stack {name} made it: aws sagemaker create-endpoint --endpoint-name {endpoint} "
        f"--endpoint-config-name {config} --region {region}. The same name is the same ARN, so CloudFormation goes on "
        "updating it (the next approval rolls out blue/green as before).",
        "If it scaled (auto scaling, scale to zero), its scalable target went with it: register it again as docs/deploying.md, "
        "Recovering an environment, says.",
        "Then reconcile again: it says nothing when the endpoint is back.",
    ]
    reason = (f"endpoint {endpoint} serving {label(stack_parameters(stack).get(parameter, ''))} "
              + ("is being deleted" if status == "Deleting" else "does not exist")
              + f", although the serving stack {name} still names that version: its callers get errors")
    return {"endpoint": endpoint, "status": status, "reason": reason, "fix": fix}


def client_token(version: Version, stack_updated: Optional[dt.datetime] = None) -> str:
    """Idempotency token of one deployment attempt: group, version, approval time and the stack's last update
    (``[a-zA-Z0-9-]``, <= 128 chars).

    Duplicate or late deliveries of one approval, before the stack changed, share a token (one update). The
    approval time makes re-approving an earlier version (a rollback to a version that served before) a new
    request; the stack's last update time makes the attempt after a failed, rolled-back rollout a new request
    too - CloudFormation would otherwise take it for a replay of the failed one and do nothing.
    """
    stamp = int(aware(version.approved_at).timestamp() * 1000)
    stack_stamp = f"-s{int(aware(stack_updated).timestamp() * 1000)}" if stack_updated is not None else ""
    token = _TOKEN_UNSAFE.sub("-", f"deploy-{version.group}-v{version.version}-{stamp}{stack_stamp}")
    if len(token) > 128:
        token = "deploy-" + hashlib.sha256(token.encode()).hexdigest()
    return token


def failed_rollout(cloudformation: Any, stack: str, version: Version) -> Optional[Dict[str, Any]]:
    """The failure of this approval's rollout of ``version``, if CloudFormation rolled it back: ``{"at", "status",
    "reason", "resource"}`` of the operation's first failed resource event (None when no update for this approval was
    made, or it succeeded).

    Every event of one stack operation carries the operation's client request token, and the handler's tokens name
    the group, the version and the approval time (:func:`client_token`), so the stack's events since the approval
    tell exactly whether an update for this approval ran and whether it failed, whatever other updates (other
    models, ``cdk deploy``) came after it. The stack's own status decides (a rollback, or UPDATE_FAILED): a resource
    failing to delete during the cleanup of an update that succeeded is no failed rollout. Events are newest first;
    reading stops at the approval time, or after :data:`MAX_EVENT_PAGES` pages - then the attempt cannot be ruled
    out, and the version counts as failed (held for a new decision rather than rolled out again unseen).
    """
    prefix = client_token(version)
    since = aware(version.approved_at)
    stack_failed: Optional[Mapping[str, Any]] = None
    first_failure: Optional[Mapping[str, Any]] = None
    kwargs: Dict[str, Any] = {"StackName": stack}

    def outcome() -> Optional[Dict[str, Any]]:
        if stack_failed is None:
            return None
        event = first_failure or stack_failed
        when = event.get("Timestamp")
        return {"at": aware(when).isoformat() if isinstance(when, dt.datetime) else None,
                "status": event.get("ResourceStatus") or "", "reason": event.get("ResourceStatusReason") or "",
                "resource": event.get("LogicalResourceId")}

    for _ in range(MAX_EVENT_PAGES):
        page = cloudformation.describe_stack_events(**kwargs)
        for event in page.get("StackEvents", []):
            when = event.get("Timestamp")
            if isinstance(when, dt.datetime) and aware(when) < since:
                return outcome()
            token = event.get("ClientRequestToken") or ""
            if token != prefix and not token.startswith(prefix + "-s"):
                continue
            status = event.get("ResourceStatus") or ""
            if event.get("ResourceType") == "AWS::CloudFormation::Stack" and event.get("LogicalResourceId") == stack:
                if "ROLLBACK" in status or status == "UPDATE_FAILED":
                    stack_failed = event
            elif status.endswith("_FAILED"):
                first_failure = event  # newest first: the last one seen is the operation's first
        if not page.get("NextToken"):
            return outcome()
        kwargs["NextToken"] = page["NextToken"]
    return outcome() or {"at": None, "status": "unknown", "resource": stack,
                         "reason": f"the stack's events since the approval run past {MAX_EVENT_PAGES} pages, so an attempt "
                                   "that failed cannot be ruled out"}
