"""Audit report: which data, code, metrics, fairness checks and approver produced a model version.

Run it for one model package version, or for what serves in an environment now::

    python -m pipeline_code.ops.audit --env prod --model churn --serving --output audit.md --html audit.html
    python -m pipeline_code.ops.audit --env prod --model churn --version 7

Names follow the app: the model package group ``<project>-<env>-<model>``, the training pipeline
``<project>-<env>-<model>-training``, the serving stack ``<project>-<env>-serving`` whose parameter
``<PascalModel>ModelPackageArn`` holds the deployed version, the endpoint ``<project>-<env>-<model>``.

What is gathered, and from where:

* the package (status, approval, created/modified, created by, model data, ModelMetrics URIs,
  CustomerMetadataProperties: code commit, trigger reason, data locations, execution id):
  ``DescribeModelPackageGroup``, ``ListModelPackages``, ``DescribeModelPackage``;
* the pipeline execution that registered it (``MetadataProperties.GeneratedBy``, else the
  execution id in the metadata via ``ListPipelineExecutions``), its parameters and steps
  (``DescribePipelineExecution``, ``ListPipelineParametersForExecution``,
  ``ListPipelineExecutionSteps``; the Register step must name this package);
* the evaluation report (``evaluation.json`` next to the ModelQuality statistics in S3, else
  ``bias.json``): metrics against the champion, the gate decision, fairness;
* the approval history: CloudTrail ``LookupEvents`` for ``UpdateModelPackage`` calls on this ARN
  (who, when, requested status, description, denied attempts included);
* SageMaker lineage: the package's artifact (``ListArtifacts`` by source URI) and its
  associations (``ListAssociations`` both ways);
* deployment: the serving stack's events (``DescribeStackEvents``). A model package is deployed
  through an ``AWS::SageMaker::Model`` resource whose properties name the package ARN; models are
  create-only, so the newest successful stack operation whose events carry this ARN in their
  ``ResourceProperties`` is the one that deployed it, and the endpoint's ``UPDATE_COMPLETE`` /
  ``CREATE_COMPLETE`` event in that operation is the deployment time (blue/green traffic shift
  done). Without such events the report says so and gives the last stack update as an upper bound.

A piece that cannot be found (no approval yet, no lineage, CloudTrail silent, metrics object
missing, access denied) is reported under "Gaps"; it never stops the report. Unknown model or
version, nothing serving, or no credentials: one line on stderr, exit status 2.
"""

from __future__ import annotations

import argparse
import datetime as dt
import html
import json
import re
import sys
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from pipeline_code.core.contract import (
    EVALUATION_FILE,
    PACKAGE_ARN,
    endpoint_name,
    environment_prefix,
    package_group_name,
    package_parameter_name,
    pipeline_name,
    serving_stack_name,
)

PROG = "python -m pipeline_code.ops.audit"
DEFAULT_PROJECT = "mlops-loop"
CLOUDTRAIL_HISTORY_DAYS = 90

_EXECUTION_ARN = re.compile(r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:pipeline/[^/]+/execution/[^/]+$")
_NAME = re.compile(r"^[a-z0-9](-?[a-z0-9])*$")
_SUCCESS = ("CREATE_COMPLETE", "UPDATE_COMPLETE")
_STACK_TERMINAL = (
    "CREATE_COMPLETE", "UPDATE_COMPLETE", "CREATE_FAILED", "UPDATE_FAILED", "ROLLBACK_COMPLETE",
    "ROLLBACK_FAILED", "UPDATE_ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_FAILED", "DELETE_COMPLETE", "IMPORT_COMPLETE",
)  # fmt: skip


class AuditError(Exception):
    """Bad input or an unusable environment (unknown model/version, nothing serving, no credentials)."""


# --------------------------------------------------------------------------------------
# Names and clients
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Names:
    project: str
    env: str
    model: str

    @property
    def prefix(self) -> str:
        return environment_prefix(self.project, self.env)

    @property
    def group(self) -> str:
        return package_group_name(self.prefix, self.model)

    @property
    def pipeline(self) -> str:
        return pipeline_name(self.prefix, self.model)

    @property
    def serving_stack(self) -> str:
        return serving_stack_name(self.prefix)

    @property
    def endpoint(self) -> str:
        return endpoint_name(self.prefix, self.model)

    @property
    def parameter(self) -> str:
        return package_parameter_name(self.model)


@dataclass
class Clients:
    """The boto3 clients the audit uses (injectable for tests)."""

    sagemaker: Any
    s3: Any
    cloudformation: Any
    cloudtrail: Any
    sts: Any

    @classmethod
    def create(cls, region: Optional[str] = None) -> "Clients":
        """Clients of one boto3 session; ``region=None`` uses the environment's default region."""
        import boto3

        session = boto3.Session(region_name=region)
        if not session.region_name:
            raise AuditError("no AWS region: pass --region or set AWS_REGION / AWS_DEFAULT_REGION")
        return cls(*(session.client(s) for s in ("sagemaker", "s3", "cloudformation", "cloudtrail", "sts")))


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------
def _error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", type(exc).__name__))


def _describe_error(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    message = response.get("Error", {}).get("Message") or str(exc)
    return f"{_error_code(exc)}: {message}"


def _is_credentials_error(exc: BaseException) -> bool:
    from botocore.exceptions import NoCredentialsError, PartialCredentialsError

    return isinstance(exc, (NoCredentialsError, PartialCredentialsError))


def _aws_errors() -> Tuple[type, ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return (ClientError, BotoCoreError)


def _ts(value: Any) -> Optional[str]:
    """ISO-8601 UTC text of a botocore timestamp (datetime) or ISO string; None stays None."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if isinstance(value, (int, float)):
        value = dt.datetime.fromtimestamp(value, tz=dt.timezone.utc)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _as_datetime(value: Any) -> Optional[dt.datetime]:
    text = _ts(value)
    if text is None:
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _pages(call: Callable[..., Dict[str, Any]], key: str, token_key: str = "NextToken", **kwargs: Any) -> List[Any]:
    """Every item under ``key`` across NextToken pages (capped so a bad token cannot loop forever)."""
    items: List[Any] = []
    for _ in range(200):
        page = call(**kwargs)
        items.extend(page.get(key) or [])
        token = page.get(token_key)
        if not token:
            break
        kwargs[token_key] = token
    return items


def _s3_parts(uri: str) -> Tuple[str, str]:
    match = re.match(r"^s3://([^/]+)/(.+)$", uri or "")
    if not match:
        raise ValueError(f"not an s3:// object URI: {uri!r}")
    return match.group(1), match.group(2)


class _Gaps(list):
    def add(self, message: str) -> None:
        if message not in self:
            self.append(message)


def _attempt(gaps: _Gaps, what: str, call: Callable[[], Any]) -> Any:
    """``call()``, or None with a gap naming ``what`` and the error (credentials errors propagate)."""
    try:
        return call()
    except _aws_errors() as exc:
        if _is_credentials_error(exc):
            raise
        gaps.add(f"{what}: {_describe_error(exc)}")
        return None


# --------------------------------------------------------------------------------------
# Gathering
# --------------------------------------------------------------------------------------
def check_credentials(clients: Clients) -> Dict[str, str]:
    """The caller identity; raises AuditError when there are no usable credentials."""
    try:
        identity = clients.sts.get_caller_identity()
    except _aws_errors() as exc:
        if _is_credentials_error(exc) or _error_code(exc) in ("InvalidClientTokenId", "ExpiredToken", "SignatureDoesNotMatch"):
            raise AuditError(
                f"no usable AWS credentials ({_describe_error(exc)}): configure a profile or role for the environment's account"
            ) from None
        raise
    return {"account": identity.get("Account", ""), "arn": identity.get("Arn", "")}


def find_package(clients: Clients, names: Names, version: int) -> str:
    """The ARN of ``version`` of the model's group; AuditError when the group or version is unknown."""
    sm = clients.sagemaker
    try:
        sm.describe_model_package_group(ModelPackageGroupName=names.group)
    except _aws_errors() as exc:
        if _is_credentials_error(exc):
            raise AuditError("no usable AWS credentials: configure a profile or role for the environment's account") from None
        if _error_code(exc) in ("ValidationException", "ResourceNotFound", "ValidationError"):
            raise AuditError(
                f"unknown model {names.model!r} in environment {names.env!r}: model package group {names.group!r} "
                "does not exist (check --model, --env, --project and --region)"
            ) from None
        raise
    packages = _pages(sm.list_model_packages, "ModelPackageSummaryList", ModelPackageGroupName=names.group)
    for package in packages:
        if package.get("ModelPackageVersion") == version:
            return package["ModelPackageArn"]
    known = sorted(p.get("ModelPackageVersion") for p in packages if p.get("ModelPackageVersion") is not None)
    listing = f"versions {known[0]}..{known[-1]}" if known else "no versions"
    raise AuditError(f"unknown --version {version} of {names.group!r}: the group has {listing}")


def serving_package(clients: Clients, names: Names, gaps: _Gaps) -> Tuple[str, str]:
    """(package ARN, how it was found) of what serves now; AuditError when nothing can be found."""
    from botocore.exceptions import ClientError

    try:
        stacks = clients.cloudformation.describe_stacks(StackName=names.serving_stack)["Stacks"]
        parameters = {p["ParameterKey"]: p.get("ParameterValue") for p in stacks[0].get("Parameters") or []}
        value = parameters.get(names.parameter)
        if value and PACKAGE_ARN.match(value):
            return value, f"parameter {names.parameter} of stack {names.serving_stack}"
        gaps.add(
            f"stack {names.serving_stack} has no model package ARN in parameter {names.parameter}; resolved through the endpoint"
        )
    except ClientError as exc:
        gaps.add(f"serving stack {names.serving_stack}: {_describe_error(exc)}; resolved through the endpoint")
    try:
        endpoint = clients.sagemaker.describe_endpoint(EndpointName=names.endpoint)
        config = clients.sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
        for variant in config.get("ProductionVariants") or []:
            model = clients.sagemaker.describe_model(ModelName=variant["ModelName"])
            containers = [model.get("PrimaryContainer") or {}, *(model.get("Containers") or [])]
            for container in containers:
                arn = container.get("ModelPackageName") or ""
                if PACKAGE_ARN.match(arn):
                    return arn, f"model {variant['ModelName']} of endpoint {names.endpoint} (stack parameter unavailable)"
    except ClientError as exc:
        raise AuditError(
            f"nothing serves model {names.model!r} in {names.env!r}: no {names.parameter} in stack {names.serving_stack} "
            f"and endpoint {names.endpoint!r} cannot be read ({_describe_error(exc)})"
        ) from None
    raise AuditError(f"endpoint {names.endpoint!r} serves no versioned model package: use --version")


def _execution(clients: Clients, package: Mapping[str, Any], gaps: _Gaps) -> Optional[Dict[str, Any]]:
    sm = clients.sagemaker
    metadata = package.get("CustomerMetadataProperties") or {}
    arn = (package.get("MetadataProperties") or {}).get("GeneratedBy") or ""
    how = "MetadataProperties.GeneratedBy"
    if not _EXECUTION_ARN.match(arn):
        arn, how = "", "customer metadata pipeline_execution_id"
        pipeline, execution_id = metadata.get("pipeline_name"), metadata.get("pipeline_execution_id")
        if not (pipeline and execution_id):
            gaps.add("pipeline execution: the package records neither GeneratedBy nor pipeline_name + pipeline_execution_id")
            return None
        summaries = _attempt(
            gaps,
            f"pipeline executions of {pipeline}",
            lambda: _pages(sm.list_pipeline_executions, "PipelineExecutionSummaries", PipelineName=pipeline),
        )
        for summary in summaries or []:
            if summary["PipelineExecutionArn"].endswith(f"/execution/{execution_id}"):
                arn = summary["PipelineExecutionArn"]
        if not arn:
            if summaries is not None:
                gaps.add(f"pipeline execution {execution_id} of {pipeline} is no longer listed (deleted or expired)")
            return None
    described = _attempt(gaps, f"pipeline execution {arn}", lambda: sm.describe_pipeline_execution(PipelineExecutionArn=arn))
    if described is None:
        return None
    parameters = _attempt(
        gaps,
        "pipeline execution parameters",
        lambda: _pages(sm.list_pipeline_parameters_for_execution, "PipelineParameters", PipelineExecutionArn=arn),
    )
    steps = _attempt(
        gaps,
        "pipeline execution steps",
        lambda: _pages(
            sm.list_pipeline_execution_steps, "PipelineExecutionSteps", PipelineExecutionArn=arn, SortOrder="Ascending"
        ),
    )
    out = {
        "arn": arn,
        "found_by": how,
        "status": described.get("PipelineExecutionStatus"),
        "display_name": described.get("PipelineExecutionDisplayName"),
        "started": _ts(described.get("CreationTime")),
        "last_modified": _ts(described.get("LastModifiedTime")),
        "parameters": {p["Name"]: p.get("Value") for p in parameters or []},
        "steps": [],
        "registered_this_package": None,
    }
    for step in steps or []:
        meta = step.get("Metadata") or {}
        job = next((v.get("Arn") for v in meta.values() if isinstance(v, Mapping) and v.get("Arn")), None)
        out["steps"].append(
            {
                "name": step.get("StepName"),
                "status": step.get("StepStatus"),
                "started": _ts(step.get("StartTime")),
                "ended": _ts(step.get("EndTime")),
                "resource": job,
                "cached_from": (step.get("CacheHitResult") or {}).get("SourcePipelineExecutionArn"),
            }
        )
        registered = (meta.get("RegisterModel") or {}).get("Arn")
        if registered:
            out["registered_this_package"] = registered.lower() == package["ModelPackageArn"].lower()
    if steps is not None and out["registered_this_package"] is None:
        gaps.add(f"pipeline execution {arn} has no Register step naming a model package: the link to this version is unconfirmed")
    elif out["registered_this_package"] is False:
        gaps.add(f"pipeline execution {arn} registered a different model package than this one: the lineage link is inconsistent")
    return out


def _read_json(clients: Clients, uri: str) -> Dict[str, Any]:
    bucket, key = _s3_parts(uri)
    body = clients.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return json.loads(body)


def _evaluation(clients: Clients, package: Mapping[str, Any], gaps: _Gaps) -> Dict[str, Any]:
    metrics = package.get("ModelMetrics") or {}
    quality = ((metrics.get("ModelQuality") or {}).get("Statistics") or {}).get("S3Uri")
    bias = ((metrics.get("Bias") or {}).get("Report") or {}).get("S3Uri")
    out: Dict[str, Any] = {"uris": {}, "report": None, "bias": None}
    for name, section, kind in (
        ("model_quality", "ModelQuality", "Statistics"),
        ("data_statistics", "ModelDataQuality", "Statistics"),
        ("data_constraints", "ModelDataQuality", "Constraints"),
        ("bias", "Bias", "Report"),
        ("explainability", "Explainability", "Report"),
    ):
        uri = ((metrics.get(section) or {}).get(kind) or {}).get("S3Uri")
        if uri:
            out["uris"][name] = uri
    if not quality and not bias:
        gaps.add("evaluation: the package carries no ModelMetrics (no evaluation or bias report to read)")
        return out
    if quality:
        uri = quality.rsplit("/", 1)[0] + "/" + EVALUATION_FILE
        out["uris"]["evaluation"] = uri
        out["report"] = _attempt(gaps, f"evaluation report {uri}", lambda: _read_json(clients, uri))
    if bias and out["report"] is None:
        out["bias"] = _attempt(gaps, f"bias report {bias}", lambda: _read_json(clients, bias))
    return out


def _approvals(clients: Clients, package: Mapping[str, Any], gaps: _Gaps, now: dt.datetime) -> List[Dict[str, Any]]:
    arn = package["ModelPackageArn"]
    created = _as_datetime(package.get("CreationTime")) or now - dt.timedelta(days=CLOUDTRAIL_HISTORY_DAYS)
    start = max(created - dt.timedelta(minutes=5), now - dt.timedelta(days=CLOUDTRAIL_HISTORY_DAYS))
    if created < now - dt.timedelta(days=CLOUDTRAIL_HISTORY_DAYS):
        gaps.add(
            f"approval history: the version is older than CloudTrail's {CLOUDTRAIL_HISTORY_DAYS}-day event history; "
            "earlier approvals are only in the trail's S3 logs or CloudTrail Lake"
        )
    events = _attempt(
        gaps,
        "approval history (CloudTrail LookupEvents)",
        lambda: _pages(
            clients.cloudtrail.lookup_events,
            "Events",
            LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "UpdateModelPackage"}],
            StartTime=start,
            EndTime=now,
        ),
    )
    history = []
    for event in events or []:
        try:
            record = json.loads(event.get("CloudTrailEvent") or "{}")
        except ValueError:
            continue
        request = record.get("requestParameters") or {}
        if str(request.get("modelPackageArn", "")).lower() != arn.lower():
            continue
        identity = record.get("userIdentity") or {}
        session = identity.get("sessionContext") or {}
        history.append(
            {
                "time": _ts(record.get("eventTime") or event.get("EventTime")),
                "identity": identity.get("arn") or event.get("Username") or "unknown",
                "role": (session.get("sessionIssuer") or {}).get("arn"),
                "mfa": (session.get("attributes") or {}).get("mfaAuthenticated"),
                "source_ip": record.get("sourceIPAddress"),
                "requested_status": request.get("modelApprovalStatus"),
                "description": request.get("approvalDescription"),
                "error": " ".join(x for x in (record.get("errorCode"), record.get("errorMessage")) if x) or None,
                "event_id": record.get("eventID") or event.get("EventId"),
            }
        )
    history.sort(key=lambda h: h["time"] or "")
    if events is not None and not history:
        gaps.add("approval history: CloudTrail has no UpdateModelPackage call for this version")
    return history


def _lineage(clients: Clients, package: Mapping[str, Any], gaps: _Gaps) -> Dict[str, Any]:
    sm = clients.sagemaker
    arn = package["ModelPackageArn"]
    artifacts = _attempt(gaps, "lineage (ListArtifacts)", lambda: _pages(sm.list_artifacts, "ArtifactSummaries", SourceUri=arn))
    out: Dict[str, Any] = {"artifact": None, "upstream": [], "downstream": []}
    if artifacts is None:
        return out
    if not artifacts:
        gaps.add("lineage: SageMaker has no lineage artifact for this model package (link absent)")
        return out
    artifact = artifacts[0]["ArtifactArn"]
    out["artifact"] = artifact
    for direction, key in (("upstream", "DestinationArn"), ("downstream", "SourceArn")):
        found = _attempt(
            gaps,
            f"lineage {direction} associations",
            lambda: _pages(sm.list_associations, "AssociationSummaries", **{key: artifact}),
        )
        for a in found or []:
            other = "Source" if direction == "upstream" else "Destination"
            out[direction].append(
                {
                    "name": a.get(f"{other}Name") or a.get(f"{other}Arn"),
                    "type": a.get(f"{other}Type"),
                    "arn": a.get(f"{other}Arn"),
                    "association": a.get("AssociationType"),
                    "created": _ts(a.get("CreationTime")),
                }
            )
        if found is not None and not found:
            gaps.add(f"lineage: no {direction} association of artifact {artifact}")
    return out


def _operations(events: Sequence[Mapping[str, Any]], stack: str) -> List[List[Mapping[str, Any]]]:
    """Stack events (any order) grouped into stack operations, oldest first."""
    ordered = sorted(events, key=lambda e: _as_datetime(e.get("Timestamp")) or dt.datetime.min.replace(tzinfo=dt.timezone.utc))
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


def _deployment(clients: Clients, names: Names, arn: str, serving_arn: Optional[str], gaps: _Gaps) -> Dict[str, Any]:
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
    events = _attempt(
        gaps,
        f"deployment history (DescribeStackEvents of {names.serving_stack})",
        lambda: _pages(clients.cloudformation.describe_stack_events, "StackEvents", StackName=names.serving_stack),
    )
    if events is None:
        return out
    for operation in reversed(_operations(events, names.serving_stack)):
        if not any(arn.lower() in str(e.get("ResourceProperties") or "").lower() for e in operation):
            continue
        final = operation[-1]
        status = final.get("ResourceStatus")
        if status not in _SUCCESS:
            out["rolled_back_attempts"].append({"time": _ts(final.get("Timestamp")), "status": status})
            continue
        if out["deployed_at"] is not None:
            continue  # an earlier deployment of the same version (redeployed since): the newest counts
        endpoint = [
            e for e in operation
            if e.get("ResourceType") == "AWS::SageMaker::Endpoint" and e.get("ResourceStatus") in _SUCCESS
        ]  # fmt: skip
        out["operation_finished"] = _ts(final.get("Timestamp"))
        if endpoint:
            out["deployed_at"] = _ts(endpoint[-1].get("Timestamp"))
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
    if out["deployed_at"] is None:
        if out["serving_now"]:
            stack = _attempt(gaps, "serving stack", lambda: clients.cloudformation.describe_stacks(StackName=names.serving_stack))
            if stack:
                s = stack["Stacks"][0]
                out["deployed_at_latest"] = _ts(s.get("LastUpdatedTime") or s.get("CreationTime"))
            gaps.add(
                "deployment time: no stack event names this package (events expired or not recorded); "
                "it serves now and was deployed no later than the stack's last update"
            )
        else:
            gaps.add(f"deployment: no successful operation of {names.serving_stack} deployed this version")
    return out


def gather(
    *,
    clients: Clients,
    project: str,
    env: str,
    model: str,
    version: Optional[int] = None,
    serving: bool = False,
    now: Optional[dt.datetime] = None,
) -> Dict[str, Any]:
    """Everything the report shows, as a dict with a ``gaps`` list.

    Exactly one of ``version`` / ``serving``. ``now`` (default: the current UTC time) bounds
    the CloudTrail look-up. Raises AuditError for an unknown model or version, nothing serving,
    or missing credentials.
    """
    if (version is None) == (not serving):
        raise AuditError("give exactly one of --version N or --serving")
    names = Names(project, env, model)
    now = now or dt.datetime.now(dt.timezone.utc)
    gaps = _Gaps()
    caller = check_credentials(clients)
    serving_arn: Optional[str] = None
    resolved_by = f"--version {version}"
    if serving:
        serving_arn, resolved_by = serving_package(clients, names, gaps)
        match = PACKAGE_ARN.match(serving_arn)
        if match.group(1).lower() != names.group.lower():
            raise AuditError(f"the serving stack names a package of group {match.group(1)!r}, not {names.group!r}")
        arn = serving_arn
        version = int(match.group(2))
    else:
        arn = find_package(clients, names, int(version))
        serving_arn = _serving_arn_quietly(clients, names)
        if serving_arn is None:
            gaps.add(f"what serves now: stack {names.serving_stack} has no readable {names.parameter} parameter")
    try:
        package = clients.sagemaker.describe_model_package(ModelPackageName=arn)
    except _aws_errors() as exc:
        if _is_credentials_error(exc):
            raise AuditError("no usable AWS credentials") from None
        raise AuditError(f"model package {arn} cannot be read: {_describe_error(exc)}") from None

    metadata = dict(package.get("CustomerMetadataProperties") or {})
    containers = (package.get("InferenceSpecification") or {}).get("Containers") or []
    status = package.get("ModelApprovalStatus")
    if status != "Approved":
        gaps.add(f"approval: version {version} is not approved (status {status})")
    for key, label in (
        ("code_version", "code commit"),
        ("input_features", "input features location"),
        ("input_labels", "input labels location"),
    ):
        if not metadata.get(key):
            gaps.add(f"{label}: not recorded in the package's CustomerMetadataProperties ({key})")

    audit = {
        "generated_at": _ts(now),
        "caller": caller,
        "region": getattr(getattr(clients.sagemaker, "meta", None), "region_name", None),
        "names": {"project": project, "env": env, "model": model, "group": names.group, "pipeline": names.pipeline},
        "resolved_by": resolved_by,
        "package": {
            "arn": arn,
            "version": version,
            "status": package.get("ModelPackageStatus"),
            "approval_status": status,
            "approval_description": package.get("ApprovalDescription"),
            "description": package.get("ModelPackageDescription"),
            "created": _ts(package.get("CreationTime")),
            "modified": _ts(package.get("LastModifiedTime")),
            "created_by": _user(package.get("CreatedBy")),
            "modified_by": _user(package.get("LastModifiedBy")),
            "generated_by": (package.get("MetadataProperties") or {}).get("GeneratedBy"),
        },
        "code": {
            "commit": metadata.get("code_version") or (package.get("MetadataProperties") or {}).get("CommitId"),
            "images": [c.get("Image") for c in containers if c.get("Image")],
        },
        "data": {
            "model_data": [c.get("ModelDataUrl") for c in containers if c.get("ModelDataUrl")],
            "input_features": metadata.get("input_features"),
            "input_labels": metadata.get("input_labels"),
            "frozen_test": metadata.get("frozen_test"),
        },
        "trigger_reason": metadata.get("trigger_reason"),
        "metadata": metadata,
    }
    audit["execution"] = _execution(clients, package, gaps)
    audit["evaluation"] = _evaluation(clients, package, gaps)
    audit["approvals"] = _approvals(clients, package, gaps, now)
    if status == "Approved" and not any(h["requested_status"] == "Approved" and not h["error"] for h in audit["approvals"]):
        gaps.add(
            "approval: the version is Approved but no successful approving UpdateModelPackage call was found; it may have "
            "been registered as Approved (dev auto_approve) or approved more than 90 days ago"
        )
    audit["lineage"] = _lineage(clients, package, gaps)
    audit["deployment"] = _deployment(clients, names, arn, serving_arn, gaps)
    audit["gaps"] = list(gaps)
    return audit


def _serving_arn_quietly(clients: Clients, names: Names) -> Optional[str]:
    try:
        stacks = clients.cloudformation.describe_stacks(StackName=names.serving_stack)["Stacks"]
    except _aws_errors() as exc:
        if _is_credentials_error(exc):
            raise
        return None
    for p in stacks[0].get("Parameters") or []:
        if p["ParameterKey"] == names.parameter and PACKAGE_ARN.match(p.get("ParameterValue") or ""):
            return p["ParameterValue"]
    return None


def _user(context: Any) -> Optional[str]:
    if not isinstance(context, Mapping):
        return None
    parts = [context.get("UserProfileName"), context.get("UserProfileArn")]
    iam = context.get("IamIdentity") or {}
    parts.append(iam.get("Arn") or iam.get("PrincipalId"))
    return " / ".join(str(p) for p in parts if p) or None


# --------------------------------------------------------------------------------------
# Markdown / HTML
# --------------------------------------------------------------------------------------
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")


def md_text(value: Any) -> str:
    """An untrusted value as inert Markdown text: one line, every Markdown/HTML character escaped."""
    if value is None or value == "":
        return "—"
    text = re.sub(r"\s+", " ", str(value)).strip()
    return _MD_SPECIAL.sub(r"\\\1", text)


def _num(value: Any, digits: int = 4) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "—" if value is None else md_text(value)
    return f"{value:.{digits}f}"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> List[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return lines + [""]


def render_markdown(audit: Mapping[str, Any]) -> str:
    """The report as Markdown; every value from AWS or S3 is escaped with :func:`md_text`."""
    p, n = audit["package"], audit["names"]
    d = audit["deployment"]
    out = [f"# Audit report: {md_text(n['group'])} version {p['version']}", ""]
    out.append(
        f"Generated {md_text(audit['generated_at'])} in {md_text(audit.get('region'))} "
        f"(account {md_text(audit['caller'].get('account'))}, by {md_text(audit['caller'].get('arn'))}); "
        f"version chosen by {md_text(audit['resolved_by'])}."
    )
    out.append("")
    approved = [h for h in audit["approvals"] if h["requested_status"] == "Approved" and not h["error"]]
    if p["approval_status"] == "Approved":
        who = (
            f"approved by {md_text(approved[-1]['identity'])} at {md_text(approved[-1]['time'])}"
            if approved
            else "approved (approver not found in CloudTrail)"
        )
    else:
        who = f"**not approved** (status {md_text(p['approval_status'])})"
    serving = {True: "yes", False: "no", None: "unknown"}[d["serving_now"]]
    out += ["## Summary", ""]
    out += _table(
        ["Item", "Value"],
        [
            ["Model package", md_text(p["arn"])],
            ["Approval", who],
            ["Serving now", f"{serving} (endpoint {md_text(d['endpoint'])})"],
            [
                "Deployed at",
                md_text(
                    d.get("deployed_at") or (f"no later than {d['deployed_at_latest']}" if d.get("deployed_at_latest") else None)
                ),
            ],
            ["Code commit", md_text(audit["code"]["commit"])],
            ["Pipeline execution", md_text((audit["execution"] or {}).get("arn"))],
            ["Trigger reason", md_text(audit["trigger_reason"])],
            ["Gate", _gate_word(audit["evaluation"].get("report"))],
            ["Gaps", str(len(audit["gaps"]))],
        ],
    )
    out += ["## Model package", ""]
    out += _table(
        ["Field", "Value"],
        [
            ["Status", md_text(p["status"])],
            ["Approval status", md_text(p["approval_status"])],
            ["Approval description", md_text(p["approval_description"])],
            ["Description", md_text(p["description"])],
            ["Created", md_text(p["created"])],
            ["Last modified", md_text(p["modified"])],
            ["Created by", md_text(p["created_by"])],
            ["Last modified by", md_text(p["modified_by"])],
            ["Generated by", md_text(p["generated_by"])],
        ],
    )
    data = audit["data"]
    out += ["## Data and code", ""]
    rows = [["Model artifact", md_text(u)] for u in data["model_data"]]
    rows += [
        ["Input features", md_text(data["input_features"])],
        ["Input labels", md_text(data["input_labels"])],
        ["Frozen test set", md_text(data["frozen_test"])],
        ["Code commit", md_text(audit["code"]["commit"])],
    ]
    rows += [["Inference image", md_text(i)] for i in audit["code"]["images"]]
    report = audit["evaluation"].get("report") or {}
    test_set = report.get("test_set") or {}
    if test_set:
        rows.append(["Test set sha256 / rows", f"{md_text(test_set.get('sha256'))} / {md_text(test_set.get('rows'))}"])
    for key in sorted(k for k in audit["metadata"] if k not in ("code_version", "input_features", "input_labels", "frozen_test")):
        rows.append([f"Metadata {md_text(key)}", md_text(audit["metadata"][key])])
    out += _table(["Item", "Value"], rows)

    ex = audit["execution"]
    out += ["## Pipeline execution", ""]
    if ex is None:
        out += ["Not found (see Gaps).", ""]
    else:
        confirmed = {True: "yes", False: "**no**", None: "unknown"}[ex["registered_this_package"]]
        out += _table(
            ["Field", "Value"],
            [
                ["Execution", md_text(ex["arn"])],
                ["Found by", md_text(ex["found_by"])],
                ["Status", md_text(ex["status"])],
                ["Started / last modified", f"{md_text(ex['started'])} / {md_text(ex['last_modified'])}"],
                ["Register step created this version", confirmed],
            ],
        )
        if ex["parameters"]:
            out += ["Parameters:", ""] + _table(
                ["Name", "Value"], [[md_text(k), md_text(v)] for k, v in sorted(ex["parameters"].items())]
            )
        if ex["steps"]:
            out += ["Steps:", ""] + _table(
                ["Step", "Status", "Started", "Ended", "Job / resource", "Cached from"],
                [
                    [
                        md_text(s["name"]),
                        md_text(s["status"]),
                        md_text(s["started"]),
                        md_text(s["ended"]),
                        md_text(s["resource"]),
                        md_text(s["cached_from"]),
                    ]
                    for s in ex["steps"]
                ],
            )
    out += _evaluation_markdown(audit["evaluation"])
    out += ["## Approval history", ""]
    out.append(
        f"Current approval status: {md_text(p['approval_status'])}"
        + ("" if p["approval_status"] == "Approved" else " — **not approved**")
        + "."
    )
    out.append("")
    if audit["approvals"]:
        out += _table(
            ["Time (UTC)", "Identity", "Role", "MFA", "Requested status", "Description", "Result"],
            [
                [
                    md_text(h["time"]),
                    md_text(h["identity"]),
                    md_text(h["role"]),
                    md_text(h["mfa"]),
                    md_text(h["requested_status"]),
                    md_text(h["description"]),
                    md_text(h["error"] or "succeeded"),
                ]
                for h in audit["approvals"]
            ],
        )
    else:
        out += ["No UpdateModelPackage call on this version was found in CloudTrail.", ""]
    out += ["## Deployment", ""]
    rows = [
        ["Serving stack / parameter", f"{md_text(d['stack'])} / {md_text(d['parameter'])}"],
        ["Serving now", serving],
        ["Version serving now", md_text(d["serving_arn"])],
        ["Deployed at (endpoint updated)", md_text(d["deployed_at"])],
        ["Stack operation finished", md_text(d["operation_finished"])],
        ["Method", md_text(d["method"] or "see Gaps")],
    ]
    if d.get("deployed_at_latest"):
        rows.append(["Deployed no later than", md_text(d["deployed_at_latest"])])
    rows += [["Rolled-back attempt", f"{md_text(a['time'])} ({md_text(a['status'])})"] for a in d["rolled_back_attempts"]]
    out += _table(["Item", "Value"], rows)
    lin = audit["lineage"]
    out += ["## Lineage", ""]
    if lin["artifact"]:
        out += [f"Artifact: {md_text(lin['artifact'])}", ""]
        links = [
            [direction, md_text(a["name"]), md_text(a["type"]), md_text(a["association"]), md_text(a["arn"])]
            for direction in ("upstream", "downstream")
            for a in lin[direction]
        ]
        if links:
            out += _table(["Direction", "Entity", "Type", "Association", "ARN"], links)
    else:
        out += ["No lineage artifact (see Gaps).", ""]
    out += ["## Gaps", ""]
    out += [f"- {md_text(g)}" for g in audit["gaps"]] or ["None: every piece was found."]
    out.append("")
    return "\n".join(out)


def _gate_word(report: Optional[Mapping[str, Any]]) -> str:
    gate = (report or {}).get("gate")
    if not gate:
        return "unknown"
    return "passed" if gate.get("passed") else "**failed**"


def _evaluation_markdown(evaluation: Mapping[str, Any]) -> List[str]:
    out = ["## Evaluation against the champion", ""]
    report = evaluation.get("report")
    if evaluation.get("uris"):
        out += _table(["Report", "S3 URI"], [[md_text(k), md_text(v)] for k, v in sorted(evaluation["uris"].items())])
    if report:
        challenger = (report.get("challenger") or {}).get("metrics") or {}
        champion_block = report.get("champion")
        champion = (champion_block or {}).get("metrics") or {}
        rows = []
        for name in ("auc", "log_loss", "brier", "accuracy", "precision", "recall", "f1", "positive_rate"):
            a, b = challenger.get(name), champion.get(name)
            delta = a - b if isinstance(a, (int, float)) and isinstance(b, (int, float)) else None
            rows.append([name, _num(a), _num(b) if champion_block else "no champion", _num(delta)])
        out += _table(["Metric", "Challenger (this version)", "Champion", "Delta"], rows)
        source = (champion_block or {}).get("source") or {}
        if champion_block:
            out += [f"Champion: {md_text(source.get('model_package_arn') or source.get('location') or source)}", ""]
        gate = report.get("gate") or {}
        out += [f"Gate: {_gate_word(report)}.", ""]
        out += [f"- {md_text(r)}" for r in gate.get("reasons") or []] + [""]
        checks = gate.get("checks") or []
        if checks:
            out += _table(
                ["Check", "Passed", "Value", "Threshold"],
                [
                    [
                        md_text(c.get("name") + (f" {c['slice']}" if c.get("slice") else "")),
                        "yes" if c.get("passed") else "**no**",
                        _num(c.get("value")),
                        _num(c.get("threshold")),
                    ]
                    for c in checks
                ],
            )
        fairness = (report.get("challenger") or {}).get("fairness")
        champion_fairness = (champion_block or {}).get("fairness")
        thresholds = gate.get("thresholds") or {}
    else:
        bias = evaluation.get("bias") or {}
        fairness, champion_fairness, thresholds = bias.get("challenger"), bias.get("champion"), bias.get("gate") or {}
        out += ["Metrics not available (see Gaps).", ""]
    out += ["## Fairness", ""]
    if not fairness:
        return out + ["Not available (see Gaps).", ""]
    out += [
        f"Sensitive attribute: {md_text(fairness.get('attribute'))} (not a model input); decision threshold {_num(fairness.get('threshold'), 2)}.",
        "",
    ]
    limits = {
        "demographic_parity_difference": ("<=", thresholds.get("max_demographic_parity_difference")),
        "disparate_impact": (">=", thresholds.get("min_disparate_impact")),
        "equal_opportunity_difference": ("", None),
    }
    rows = []
    for name, (op, limit) in limits.items():
        value = fairness.get(name)
        if limit is None or value is None:
            verdict = "not gated" if limit is None else "cannot be assessed"
        else:
            ok = value <= limit if op == "<=" else value >= limit
            verdict = "pass" if ok else "**FAIL**"
        rows.append(
            [
                name,
                _num(value),
                _num((champion_fairness or {}).get(name)) if champion_fairness else "no champion",
                f"{op} {_num(limit)}" if limit is not None else "—",
                verdict,
            ]
        )
    out += _table(["Metric", "This version", "Champion", "Threshold", "Result"], rows)
    groups = fairness.get("groups") or {}
    if groups:
        out += _table(
            ["Group", "Rows", "Base rate", "Positive rate", "TPR", "Used"],
            [
                [
                    md_text(g),
                    md_text(v.get("rows")),
                    _num(v.get("base_rate")),
                    _num(v.get("positive_rate")),
                    _num(v.get("true_positive_rate")),
                    "yes" if v.get("eligible") else "no (too few rows)",
                ]
                for g, v in sorted(groups.items())
            ],
        )
    if fairness.get("note"):
        out += [md_text(fairness["note"]), ""]
    return out


def render_html(markdown_text: str, *, title: str) -> str:
    """A standalone HTML page of the Markdown report; raw HTML in the Markdown is never passed through."""
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown_text)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem}"
        "table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.25rem .5rem;"
        "text-align:left;vertical-align:top;word-break:break-all}</style></head><body>\n"
        f"{body}</body></html>\n"
    )


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------
def _name(value: str) -> str:
    if not _NAME.match(value or ""):
        raise argparse.ArgumentTypeError(f"{value!r} is not a name (lower-case letters, digits, single hyphens)")
    return value


def _version(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a model package version (an integer >= 1)")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", required=True, type=_name, help="environment name (dev, staging, prod)")
    parser.add_argument("--model", required=True, type=_name, help="model name as in the config (churn, credit-risk)")
    parser.add_argument("--project", default=DEFAULT_PROJECT, type=_name, help=f"project name (default {DEFAULT_PROJECT})")
    parser.add_argument("--region", default=None, help="AWS region (default: the environment's AWS_REGION / profile)")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--version", type=_version, help="model package version to audit")
    which.add_argument("--serving", action="store_true", help="audit the version that serves in --env now")
    parser.add_argument("--output", default=None, help="Markdown file to write (default: print to stdout)")
    parser.add_argument("--html", default=None, help="also write the report as a standalone HTML file")
    return parser


def main(argv: Optional[Sequence[str]] = None, *, clients: Optional[Clients] = None, now: Optional[dt.datetime] = None) -> int:
    """Exit 0 with the report written; 2 on unknown model/version, nothing serving or no credentials; 1 on other AWS errors."""
    args = build_parser().parse_args(argv)
    try:
        clients = clients or Clients.create(args.region)
        audit = gather(
            clients=clients, project=args.project, env=args.env, model=args.model,
            version=args.version, serving=args.serving, now=now,
        )  # fmt: skip
    except AuditError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except _aws_errors() as exc:
        if _is_credentials_error(exc):
            print(
                f"{PROG}: error: no usable AWS credentials: configure a profile or role for the environment's account",
                file=sys.stderr,
            )
            return 2
        print(f"{PROG}: error: AWS call failed: {_describe_error(exc)}", file=sys.stderr)
        return 1
    text = render_markdown(audit)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        sys.stdout.write(text)
    if args.html:
        title = f"Audit report: {audit['names']['group']} version {audit['package']['version']}"
        with open(args.html, "w", encoding="utf-8") as handle:
            handle.write(render_html(text, title=title))
    if args.output or args.html:
        print(
            f"audit of {audit['package']['arn']}: {len(audit['gaps'])} gap(s); wrote {', '.join(x for x in (args.output, args.html) if x)}",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
