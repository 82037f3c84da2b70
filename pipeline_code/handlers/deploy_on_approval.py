"""Deploy the most recently approved model version by updating the serving stack's parameter.

Invoked by an EventBridge rule on ``SageMaker Model Package State Change`` events (source
``aws.sagemaker``) for the environment's model package groups, or by hand with::

    {"action": "reconcile", "group": "mlops-loop-prod-churn"}

The event only says *which group* changed. The handler ignores the event's version and recomputes
the version that should serve from the registry by the one rule of :mod:`pipeline_code.core.approval` (which
also picks the evaluation job's champion): among the group's versions that are ``Approved`` and ``Completed``,
the one approved last (latest ``LastModifiedTime``: only the approver role may update packages, and IAM lets
it make no update that does not set an approval status, so that time is the version's latest approval
decision, never a later edit). That makes it order-independent and
idempotent: duplicates and late deliveries converge on the same answer, rejecting the serving
version rolls back to the previously approved one, and rollback is re-approving an earlier version
(``python -m mlops_cli.rollback``).

The deployment itself stays in infrastructure-as-code: the serving stack
(``SERVING_STACK_NAME``) takes one ``<PascalModel>ModelPackageArn`` parameter per model and the
handler calls ``UpdateStack`` with the previous template, that parameter set to the desired
version and every other parameter unchanged. CloudFormation performs the blue/green rollout and
rolls the stack (and so the parameter) back on failure.

A rollout that failed is not retried on its own: once CloudFormation has rolled back the update that set a
version for an approval (:func:`failed_rollout`, read from the stack's events by the update's client request
token), that version is *held* - every later event (another version's registration, another model's deploy, a
routine stack update) leaves the previous version serving - until someone decides again: re-approving it retries
the rollout, rejecting it (or approving another version) moves on.

It never removes a serving endpoint and never deploys a broken or changed version: a version that is
not ``Completed`` or has no inference container is refused with a notice to people
(``NOTIFY_TOPIC_ARN``; a notice about a model of a team, its team's topic in ``TEAM_TOPICS`` instead:
:class:`Topics`), as is the case where no approved version is left, and so is a version whose
artefact does not verify (:func:`verify_artifact`): the package must record the digests of its sealed
artefact and the object in S3 must hold exactly those bytes, and its inference container (image and
environment) must be the one the pipeline registered. The update also sets the model digest
parameter the serving container checks at load (:mod:`pipeline_code.core.integrity`). A stack update already
in progress is a wait, not an error (:func:`wait`): a one-time EventBridge Scheduler schedule invokes
the function again every five minutes with ``{"action": "reconcile", "group": ..., "waiting_since": ...}``
for up to ``MAX_WAIT_SECONDS`` (the longest configured rollout plus a margin) - no dead-letter queue,
nobody paged; only a wait longer than that is told to people. Without ``RETRY_SCHEDULE_GROUP`` it raises
:class:`StackBusyError` for Lambda's asynchronous retries instead. A malformed event is logged and dropped (returned, not raised), so a
bad payload cannot cause a retry storm (nor reach the dead-letter queue). An ``UpdateStack`` that CloudFormation refuses
(a template, role or capability error: it would fail the same way on every retry) is told to people once and returned
(``failed-to-start``), not raised; one refused because another operation started on the stack meanwhile ("is in
UPDATE_IN_PROGRESS state") waits like a busy stack; one that may pass later (throttling, a 5xx: :func:`transient`) is
raised without a notice, so Lambda's two retries try again and, if they fail too, the dead-letter queue's alarm tells people - once
either way. Every decision is logged as one JSON line and returned.

**Approval ledger** (``APPROVAL_LEDGER``: the artifacts bucket, and the groups' prefix before the model): every state change, and every
reconcile that decided about a version, is also appended as one write-once JSON record
(:func:`record_decision`; ``If-None-Match: *``, below ``approval-ledger/<model>/<version>/<package creation time>/``,
which the bucket policy keeps write-once and undeletable): the package (ARN and creation time: a group created again
reuses the ARNs), its status, ``ApprovalDescription`` and the principal of its ``LastModifiedBy``/``CreatedBy`` at that
moment, and the decision with the stack parameters it set. A later decision
overwrites the package's description and CloudTrail forgets after 90 days; the ledger does not. Its failure never
stops or repeats a deployment: it is logged with the record and told to people, the record in the notice.

**Run records** (also below ``APPROVAL_LEDGER``'s bucket): the pipeline execution that registered a version - its
definition (``DescribePipelineDefinitionForExecution``), parameters and steps - is what the audit shows as the record of
the gate thresholds and hyperparameters it ran with, and SageMaker deletes every execution of a pipeline with the
pipeline (removing or renaming a model, deleting the training stack). So every version the handler sees approved (the
event's version of an ``Approved`` state change, and the version that should serve) gets a copy once its execution has
ended (:func:`record_run`): one write-once JSON document per model package with a digest of its content
(``run-records/<model>/<version>/<package creation time>/run-record.json``; ``If-None-Match: *``, which the bucket
policy requires there). A copy already there is left as it is (a retry, a duplicate event, a re-approval: idempotent).
A version approved while its execution still runs (approved at registration: the pipeline's model card step runs after
it) is ``pending`` (logged) and recorded when the execution ends: a rule on the end of the models' pipeline executions
invokes the handler with ``{"action": "record-execution", "execution": <execution ARN>, ...}``
(:func:`record_execution`), which finds the version that execution registered and records it if it is approved. Like
the ledger it never stops or repeats a deployment: a failure is logged and, for a registry event or an execution's
end, told to people with how to retry; ``{"action": "record-run", "group": ..., "version": N}`` records one version by
hand (a version never approved, before its pipeline is removed).

**Multi-model endpoint (MME) members** (``MULTI_MODEL``): models sharing one MME have no blue/green
rollout per model - the stack update only switches the ``TargetModel`` clients use (an SSM parameter
the serving stack derives from the same ``<PascalModel>ModelPackageArn``). So before ``UpdateStack``
the handler stages the version's ``model.tar.gz`` under its own key ``<prefix><model>/v<N>.tar.gz``
(SSE-KMS; never overwritten, since the MME caches models by that name; a rollback re-uses the key
staged earlier) and, when the endpoint is ``InService``, smoke-tests the new key on the live
endpoint, which no client uses yet: one request with every feature missing must return one prediction
of the contract's shape (a binary score in [0, 1]; a multiclass label among its finite probabilities
summing to 1; a finite regression value). That test is the safety gate: a failed staging or smoke
test refuses the version (people are told, the stack is untouched). A missing endpoint (the update
creates it) or a ``Failed`` one is updated without a smoke test; any other endpoint status raises
:class:`StackBusyError`. See :mod:`multi_model` (a sibling module packaged with this one).

Runs on the stock Lambda Python runtime: standard library and boto3 only, no other project module
than its siblings in ``pipeline_code/handlers``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import os
import re
import secrets
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from pipeline_code.core import approval as approval_rule
from pipeline_code.core import integrity
from pipeline_code.core.contract import (
    ARCHIVE_SHA256_PROPERTY,
    CONTAINER_SHA256_PROPERTY,
    MODEL_SHA256_PROPERTY,
    PIPELINE_EXECUTION_ENDED,
    RECORD_EXECUTION_ACTION,
    endpoint_output_names,
    model_sha256_parameter_name,
    package_created,
    pipeline_group,
    version_of_arn,
)
from pipeline_code.core.retries import transient_response
from pipeline_code.handlers import multi_model as mme
from pipeline_code.handlers.team_topics import Topics, team_topics_setting

LOG = logging.getLogger(__name__)
LOG.setLevel(logging.INFO)

EVENT_SOURCE = "aws.sagemaker"
EVENT_DETAIL_TYPE = "SageMaker Model Package State Change"
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"]
# ModelPackageStatus values that will never become deployable (Pending / InProgress may still complete,
# and their completion emits another state-change event).
BROKEN_STATUSES = ("Failed", "Deleting")
_TOKEN_UNSAFE = re.compile(r"[^A-Za-z0-9-]")
_NO_UPDATES = "No updates are to be performed"
# Stack events read, at most, looking for the last rollout of an approval (newest first; 100 per page).
MAX_EVENT_PAGES = 20
# How long a busy stack is left alone before the group is reconciled again (see wait()).
RETRY_INTERVAL = dt.timedelta(minutes=5)
# Fields of one MULTI_MODEL entry (group -> this).
MULTI_MODEL_FIELDS = ("model", "endpoint", "bucket", "prefix", "kms_key_id")
# The fields every member usually shares (one artefacts bucket and data key per environment): given once in
# MULTI_MODEL_SHARED rather than per member, so many members fit in Lambda's 4 KB of environment.
MULTI_MODEL_SHARED_FIELDS = ("bucket", "kms_key_id")
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
# An MME loads a model on its first request (download + unpack): allow for that, retry once more.
RUNTIME_CONFIG = Config(connect_timeout=10, read_timeout=70, retries={"mode": "standard", "max_attempts": 2})


def transient(error: ClientError) -> bool:
    """Whether ``error`` may pass on a later attempt (``core.retries``); anything else (a refused template, role or
    capability, access denied) fails the same way on every retry."""
    return transient_response(error.response)


# UpdateStack's refusal when another operation started between DescribeStacks and it (cdk deploy, a rollback):
# "Stack:arn:... is in UPDATE_IN_PROGRESS state and can not be updated." (a ValidationError, HTTP 400).
_BUSY = re.compile(r"is in (\w+_IN_PROGRESS) state")


class StackBusyError(RuntimeError):
    """The serving stack (or a multi-model endpoint) is mid-operation: the handler waits (:func:`wait`), or,
    without a retry schedule group, lets Lambda retry the event (then the dead-letter queue).

    ``decision`` is what would have been returned, for the log line and the waiting decision.
    """

    def __init__(self, message: str, decision: Optional[Dict[str, Any]] = None) -> None:
        super().__init__(message)
        self.decision = decision or {}


class ConfigurationError(ValueError):
    """The function's environment variables are missing or invalid (a deployment mistake, not an event)."""


class _Malformed(ValueError):
    pass


@dataclasses.dataclass(frozen=True)
class Version:
    """One model package version as the deploy logic sees it.

    ``containers``, ``last_modified``, ``model_data_url`` (the first container's artefact), the
    digests recorded at registration (``archive_sha256``, ``model_sha256``, ``container_sha256``;
    :mod:`pipeline_code.core.integrity`) and the digest of the container the package holds now
    (``container_now``, with its ``image``; only for a package of one container) are known only for
    described versions (``None`` otherwise).
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

    @property
    def approved_at(self) -> dt.datetime:
        """When the current approval status was set: ``LastModifiedTime``, or creation if never modified."""
        return approval_rule.approval_time(self.last_modified, self.created)

    @property
    def standing(self) -> approval_rule.Standing:
        """What the serving rule (:mod:`pipeline_code.core.approval`) reads of this version."""
        return approval_rule.Standing(self.version, self.approval, self.status, self.approved_at)


# --- the registry ---------------------------------------------------------------------------------------


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
    match = mme.S3_URI.match(version.model_data_url or "")
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
    bucket, key = mme.S3_URI.match(version.model_data_url or "").groups()
    try:
        actual = integrity.stored_sha256(s3, bucket, key)
    except ClientError as error:
        return [f"its artefact {version.model_data_url} cannot be read to verify it: {error}"]
    if actual != version.archive_sha256:
        return [f"its artefact {version.model_data_url} has sha256 {actual}, but {version.archive_sha256} was recorded at "
                "registration: the bytes changed after the gate passed them"]
    return []


# --- the stack ------------------------------------------------------------------------------------------


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
    reason = (f"endpoint {endpoint} serving {_label(stack_parameters(stack).get(parameter, ''))} "
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
    stamp = int(_aware(version.approved_at).timestamp() * 1000)
    stack_stamp = f"-s{int(_aware(stack_updated).timestamp() * 1000)}" if stack_updated is not None else ""
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
    since = _aware(version.approved_at)
    stack_failed: Optional[Mapping[str, Any]] = None
    first_failure: Optional[Mapping[str, Any]] = None
    kwargs: Dict[str, Any] = {"StackName": stack}

    def outcome() -> Optional[Dict[str, Any]]:
        if stack_failed is None:
            return None
        event = first_failure or stack_failed
        when = event.get("Timestamp")
        return {"at": _aware(when).isoformat() if isinstance(when, dt.datetime) else None,
                "status": event.get("ResourceStatus") or "", "reason": event.get("ResourceStatusReason") or "",
                "resource": event.get("LogicalResourceId")}

    for _ in range(MAX_EVENT_PAGES):
        page = cloudformation.describe_stack_events(**kwargs)
        for event in page.get("StackEvents", []):
            when = event.get("Timestamp")
            if isinstance(when, dt.datetime) and _aware(when) < since:
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


def _approved(versions: Iterable[Version]) -> List[Version]:
    """The versions that may serve, the one approved last first (:func:`select_desired`'s order)."""
    return approval_rule.serving_order(versions, lambda v: v.standing)


# --- the handler ----------------------------------------------------------------------------------------


def handler(
    event: Any,
    context: Any = None,
    *,
    sagemaker: Any = None,
    cloudformation: Any = None,
    sns: Any = None,
    s3: Any = None,
    runtime: Any = None,
    scheduler: Any = None,
) -> Dict[str, Any]:
    """Lambda entry point; the clients are injectable for tests (default: boto3 clients of the function's region).

    A busy stack makes it :func:`wait` when ``RETRY_SCHEDULE_GROUP`` is set (``scheduler`` is then used).

    ``runtime`` (sagemaker-runtime) is used, and by default created, only for groups in ``MULTI_MODEL``.
    """
    settings = _settings()
    retry = settings.pop("retry")
    ledger = settings.pop("ledger")
    sns = sns or (boto3.client("sns") if settings["topic"] else None)
    sagemaker = sagemaker or boto3.client("sagemaker")
    s3 = s3 or boto3.client("s3")
    function_arn = getattr(context, "invoked_function_arn", None)

    if isinstance(event, Mapping) and event.get("action") == RECORD_RUN_ACTION:
        decision = record_run_by_hand(ledger, event, sagemaker=sagemaker, s3=s3, recorded_by=function_arn)
        LOG.info(json.dumps(decision, default=str))
        return decision
    if isinstance(event, Mapping) and event.get("action") == RECORD_EXECUTION_ACTION:
        decision = record_execution(ledger, event, sagemaker=sagemaker, s3=s3, recorded_by=function_arn,
                                    notifier=lambda group: _Notifier(sns, settings["topic"], group))
        LOG.info(json.dumps(decision, default=str))
        return decision

    def recorded(decision: Dict[str, Any]) -> Dict[str, Any]:
        """The decision with where the approval ledger recorded it (never raises: see record_decision)."""
        notify = _Notifier(sns, settings["topic"], decision.get("group", ""))
        entry = record_decision(ledger, event, decision, sagemaker=sagemaker, s3=s3, notify=notify, recorded_by=function_arn)
        return {**decision, "ledger": entry} if entry is not None else decision

    try:
        decision = reconcile(
            event,
            sagemaker=sagemaker,
            cloudformation=cloudformation or boto3.client("cloudformation"),
            sns=sns,
            s3=s3,
            runtime=runtime,
            **settings,
        )
    except StackBusyError as busy:
        if retry is None:
            LOG.info(json.dumps(recorded(busy.decision), default=str))
            raise
        decision = wait(busy, retry, function_arn=function_arn,
                        scheduler=scheduler or boto3.client("scheduler"),
                        notify=_Notifier(sns, settings["topic"], busy.decision.get("group", "")))
    except ClientError as error:
        # A failure Lambda retries (throttling, a 5xx): the attempt is a decision not taken yet, recorded as such.
        group, seen = _parse_quietly(event)
        recorded({"group": group, "event": seen, "deployed": False, "outcome": "error", "reason": str(error)})
        raise
    decision = recorded(decision)
    runs = record_runs(ledger, event, decision, sagemaker=sagemaker, s3=s3, recorded_by=function_arn,
                       notify=_Notifier(sns, settings["topic"], decision.get("group") or ""))
    if runs:
        decision = {**decision, "run_records": runs}
    LOG.info(json.dumps(decision, default=str))
    return decision


@dataclasses.dataclass(frozen=True)
class Retry:
    """How the handler waits for a busy stack: a one-time EventBridge Scheduler schedule in ``group`` (run as
    ``role_arn``) invokes it again every ``interval`` until the stack is free, for at most ``max_wait``. A retry
    Scheduler cannot deliver goes to the SQS queue ``dead_letter_arn`` (default: none, it is then dropped)."""

    group: str
    role_arn: str
    max_wait: dt.timedelta
    interval: dt.timedelta = RETRY_INTERVAL
    dead_letter_arn: Optional[str] = None


def wait(busy: StackBusyError, retry: Retry, *, function_arn: Optional[str], scheduler: Any, notify: "_Notifier",
         now: Optional[dt.datetime] = None) -> Dict[str, Any]:
    """A busy stack (or multi-model endpoint) is a wait, not an error: schedule this function to reconcile the
    group again after ``retry.interval`` and return the ``waiting`` decision - no Lambda retry, no dead-letter
    queue, nobody paged. Waiting starts at the first busy answer (the retried event carries ``waiting_since``);
    once it has lasted ``retry.max_wait`` (the longest configured rollout plus a margin) people are told and
    the handler stops waiting (``gave-up``): the next approval, the stack settling or a manual reconcile
    picks the version up. Raises ``busy`` when no schedule could be created, so Lambda's own retries remain.
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    decision = dict(busy.decision)
    group = decision.get("group", "")
    began = (decision.get("event") or {}).get("waiting_since")
    since = dt.datetime.fromisoformat(began) if began else now
    waited = now - since
    desired = (decision.get("desired") or {}).get("version")
    if waited >= retry.max_wait:
        minutes = int(waited.total_seconds() // 60)
        notify(
            f"v{desired} still waiting after {minutes} min",
            f"v{desired} of {group} is approved but not deployed: it has waited {minutes} minutes, longer than the longest "
            f"configured rollout plus margin, and the last answer was: {busy}. No further retry is scheduled; once the "
            f'stack settles, invoke this function with {{"action": "reconcile", "group": "{group}"}}.',
        )
        return {**decision, "outcome": "gave-up", "waiting_since": since.isoformat()}
    if not function_arn:
        raise busy
    attempt = int(waited / retry.interval) + 1
    at = now + retry.interval
    name = f"deploy-retry-{hashlib.sha256(group.encode()).hexdigest()[:12]}-{int(since.timestamp())}-{attempt}"
    try:
        scheduler.create_schedule(
            Name=name,
            GroupName=retry.group,
            ScheduleExpression=f"at({at:%Y-%m-%dT%H:%M:%S})",
            ScheduleExpressionTimezone="UTC",
            FlexibleTimeWindow={"Mode": "OFF"},
            Target={
                "Arn": function_arn,
                "RoleArn": retry.role_arn,
                "Input": json.dumps({"action": "reconcile", "group": group, "waiting_since": since.isoformat()}),
                "RetryPolicy": {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 3600},
                # Without one, a retry Scheduler could not deliver (e.g. the invoke was refused) vanishes unseen.
                **({"DeadLetterConfig": {"Arn": retry.dead_letter_arn}} if retry.dead_letter_arn else {}),
            },
            ActionAfterCompletion="DELETE",
            Description=f"Reconcile {group} after a busy serving stack (attempt {attempt})",
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ConflictException":
            raise busy from error
        # Another delivery of the same wait already scheduled this attempt.
    return {**decision, "outcome": "waiting", "waiting_since": since.isoformat(), "retry_at": at.isoformat(), "schedule": name}


def reconcile(
    event: Any,
    *,
    sagemaker: Any,
    cloudformation: Any,
    sns: Any,
    s3: Any,
    stack: str,
    parameters: Mapping[str, str],
    role_arn: str,
    topic: "Optional[str] | Topics",
    multi_model: Optional[Mapping[str, Mapping[str, str]]] = None,
    runtime: Any = None,
) -> Dict[str, Any]:
    """Bring the serving stack's parameter for the event's group to the desired version.

    Returns ``{"deployed": bool, "outcome": str, "reason": str, ...}``; calls ``UpdateStack`` at most
    once; raises :class:`StackBusyError` when the stack is mid-operation and would have to change, and the
    ``ClientError`` of an ``UpdateStack`` that may pass on a retry (:func:`transient`); an ``UpdateStack`` refused
    for good is notified once and returned as ``failed-to-start``. Before any change the version's artefact is verified against the digests recorded at registration
    (:func:`verify_artifact`, with ``s3``); a version that fails is refused and people are told. The
    update sets the package parameter and, for a model with its own container, its digest parameter.
    For a group in ``multi_model`` (default: none) the version is staged and smoke-tested first
    (:func:`_gate_multi_model`); ``runtime`` defaults to a boto3 client created only then.
    A ``reconcile`` action first checks that the endpoint serving the parameter's version exists
    (:func:`missing_endpoint`): when it does not, people are told how to re-create it and ``endpoint-missing`` is
    returned with that ``fix``; nothing is changed.
    """
    try:
        group, seen = _parse(event)
    except _Malformed as problem:
        return {"deployed": False, "outcome": "malformed", "reason": f"malformed event: {problem}", "event": _preview(event)}
    if group not in parameters:
        return {
            "deployed": False,
            "outcome": "ignored",
            "reason": f"group {group!r} is not deployed by this function (MODEL_PARAMETERS)",
            "group": group,
        }
    parameter = parameters[group]
    base: Dict[str, Any] = {"group": group, "stack": stack, "parameter": parameter, "event": seen}
    notify = _Notifier(sns, topic, group)

    versions = list_versions(sagemaker, group)
    desired = select_desired(versions)
    base["refused"] = _refuse_event_version(versions, seen, group, notify, desired=desired)
    described = describe_stack(cloudformation, stack)

    if described is None:
        reason = f"serving stack {stack} does not exist"
        if desired is not None:
            notify(
                f"cannot deploy v{desired.version}: stack missing",
                f"{reason}; v{desired.version} of {group} is approved but cannot be deployed. Deploy the serving stack, then "
                f'invoke this function with {{"action": "reconcile", "group": "{group}"}}.',
            )
        return {**base, "deployed": False, "outcome": "stack-missing", "reason": reason, "desired": _brief(desired)}

    current = stack_parameters(described)
    if parameter not in current:
        reason = f"serving stack {stack} has no parameter {parameter}"
        notify("cannot deploy: stack parameter missing", f"{reason}; the serving stack and MODEL_PARAMETERS disagree, nothing was changed.")
        return {**base, "deployed": False, "outcome": "misconfigured", "reason": reason, "desired": _brief(desired)}
    serving_arn = current[parameter]
    base["serving"] = serving_arn or None

    # A reconcile (by hand, a wait's retry, a settled stack) first checks that the endpoint the parameter's version
    # serves on exists: CloudFormation does not notice an endpoint deleted by hand, and the parameter already names the
    # version, so nothing below would change anything - nor could an update, which would fail on the missing endpoint.
    # Not while the stack is mid-operation (it may be creating or deleting the endpoint itself).
    if "action" in seen and serving_arn and not described.get("StackStatus", "").endswith("_IN_PROGRESS"):
        lost = missing_endpoint(sagemaker, described, parameter)
        if lost is not None:
            notify(f"endpoint {lost['endpoint']} missing", f"{lost['reason']}. {' '.join(lost['fix'])}")
            return {**base, "deployed": False, "outcome": "endpoint-missing", "reason": lost["reason"], "fix": lost["fix"],
                    "desired": _brief(desired)}

    if desired is None:
        reason = "no Approved and Completed version in the group"
        if serving_arn:
            notify(
                "nothing left to serve",
                f"{reason}; the endpoint keeps serving {_label(serving_arn)} ({serving_arn}). Approve a version to deploy it.",
            )
        return {**base, "deployed": False, "outcome": "nothing-to-serve", "reason": reason}
    base["desired"] = _brief(desired)

    refusal = problems(desired, group)
    if refusal:
        reason = f"v{desired.version} refused: " + "; ".join(refusal)
        notify(f"v{desired.version} refused", f"{reason}. The endpoint keeps serving {_label(serving_arn)}.")
        return {**base, "deployed": False, "outcome": "refused", "reason": reason}

    # Models with their own container also get the model digest the container checks at load.
    digest_parameter = model_sha256_parameter_name(parameter)
    digest_parameter = digest_parameter if digest_parameter in current else None
    if serving_arn == desired.arn and (digest_parameter is None or current[digest_parameter] in ("", desired.model_sha256)):
        return {**base, "deployed": False, "outcome": "unchanged", "reason": f"v{desired.version} already set on the stack"}
    status = described.get("StackStatus", "")
    if status.endswith("_IN_PROGRESS"):
        reason = f"stack {stack} is {status}; v{desired.version} of {group} will be deployed on retry"
        raise StackBusyError(reason, {**base, "deployed": False, "outcome": "retry", "reason": reason})

    failed = failed_rollout(cloudformation, stack, desired)
    if failed is not None:
        held = desired
        reason = (
            f"v{held.version}'s rollout for this approval failed ({failed['resource']}: {failed['status']}"
            f"{' - ' + failed['reason'] if failed['reason'] else ''}; {failed['at']}) and CloudFormation rolled it back: "
            f"it is not retried until someone decides again (re-approve v{held.version} to retry it - `python -m "
            f"mlops_cli.rollback --env <env> --model <model> rollback --to-version {held.version}`, or PendingManualApproval "
            "then Approved - or reject it or approve another version to move on)"
        )
        # The serving version rejected meanwhile: the one approved last before the held one serves instead.
        approved = _approved(versions)  # approved[0] is the held one (select_desired)
        serving_approved = any(v.arn == serving_arn for v in approved)
        fallback = None if serving_approved else next(
            (v for v in approved[1:] if not problems(v, group) and failed_rollout(cloudformation, stack, v) is None), None)
        if fallback is None:
            reason += (f"; {_label(serving_arn)} keeps serving" if serving_approved else
                       f"; {_label(serving_arn)} keeps serving although it is no longer approved: no other approved "
                       "version can serve")
            if "action" not in seen:  # a registry event of this group, not a settled-stack or retry reconcile: tell people
                notify(f"v{held.version} held after its failed rollout", reason + ".")
            return {**base, "deployed": False, "outcome": "held", "reason": reason, "failed_rollout": failed}
        base["held"] = {"version": held.version, "reason": reason}
        desired = fallback
        base["desired"] = _brief(desired)

    untrusted = verify_artifact(s3, desired)
    if untrusted:
        reason = f"v{desired.version} refused: " + "; ".join(untrusted)
        notify(f"v{desired.version} refused: artefact not verified", f"{reason}. The endpoint keeps serving {_label(serving_arn)}.")
        return {**base, "deployed": False, "outcome": "refused", "reason": reason}
    base["verified"] = {"sha256": desired.archive_sha256, "model_sha256": desired.model_sha256}
    updates = {parameter: desired.arn}
    if digest_parameter is not None:
        updates[digest_parameter] = desired.model_sha256

    member = (multi_model or {}).get(group)
    if member is not None:
        refused = _gate_multi_model(
            member, desired, base, notify, serving_arn=serving_arn, sagemaker=sagemaker, s3=s3, runtime=runtime
        )
        if refused is not None:
            return refused

    token = client_token(desired, described.get("LastUpdatedTime") or described.get("CreationTime"))
    try:
        cloudformation.update_stack(
            StackName=stack,
            UsePreviousTemplate=True,
            Parameters=[
                {"ParameterKey": key, "ParameterValue": updates[key]} if key in updates else {"ParameterKey": key, "UsePreviousValue": True}
                for key in current
            ],
            RoleARN=role_arn,
            Capabilities=CAPABILITIES,
            ClientRequestToken=token,
        )
    except ClientError as error:
        if _NO_UPDATES in str(error):
            return {**base, "deployed": False, "outcome": "unchanged", "reason": "CloudFormation: no updates are to be performed"}
        busy = _BUSY.search(str(error))
        if busy:
            # Another update started after DescribeStacks: wait for it as for a stack found busy (the same retry).
            reason = f"stack {stack} is {busy.group(1)}; v{desired.version} of {group} will be deployed on retry"
            raise StackBusyError(reason, {**base, "deployed": False, "outcome": "retry", "reason": reason}) from error
        if transient(error):
            # Lambda's retries (1 and 2 minutes later) may get past it; a notice per attempt would tell people up to
            # three times. If every attempt fails the event reaches the dead-letter queue, whose alarm tells them once.
            raise
        # The same request fails the same way on every retry: tell people once and end the invocation without an
        # error, so Lambda does not retry it (nor notify again). Every settled stack update reconciles each group
        # again and fails the same way: only a registry event (or a wait's retry) tells people, as for a held version.
        reason = f"UpdateStack on {stack} failed: {error}"
        if "action" not in seen or "waiting_since" in seen:
            notify(
                f"deploying v{desired.version} failed to start",
                f"{reason}. {_label(serving_arn)} keeps serving; it is tried again on the next approval event or after "
                f'the next successful update of the stack. Fix the cause, then invoke this function with {{"action": '
                f'"reconcile", "group": "{group}"}} (or approve again).'
                + (f" The version approved last is held: {base['held']['reason']}." if "held" in base else ""),
            )
        return {**base, "deployed": False, "outcome": "failed-to-start", "reason": reason}
    if member is not None:
        rollout = (
            f"Clients of the multi-model endpoint {member['endpoint']} switch to TargetModel {base['target_model']} "
            f"when the update completes (smoke test: {base['smoke_test']})."
        )
    else:
        rollout = "CloudFormation runs the blue/green rollout and rolls back on alarm."
    notify(
        f"deploying v{desired.version} (was {_label(serving_arn)})",
        f"Updating {stack}: {parameter} {_label(serving_arn)} -> v{desired.version} ({desired.arn}). {rollout}"
        + (f" The version approved last is held: {base['held']['reason']}." if "held" in base else ""),
    )
    return {
        **base,
        "deployed": True,
        "outcome": "deploying",
        "reason": f"{_label(serving_arn)} -> v{desired.version}",
        "set": updates,
        "token": token,
    }


def _gate_multi_model(
    member: Mapping[str, str],
    desired: Version,
    base: Dict[str, Any],
    notify: "_Notifier",
    *,
    serving_arn: str,
    sagemaker: Any,
    s3: Any,
    runtime: Any,
) -> Optional[Dict[str, Any]]:
    """Stage ``desired`` for the MME and smoke-test it; None when the update may go ahead.

    Adds ``endpoint``, ``target_model``, ``staged`` (``"copied"`` / ``"re-used"``) and ``smoke_test``
    to ``base`` (so to the decision). Returns the "refused" decision when staging or the smoke test
    fails (people are told); raises :class:`StackBusyError` while the endpoint is mid-operation.
    """
    endpoint = member["endpoint"]
    base["endpoint"] = endpoint
    base["target_model"] = mme.target_model(member["model"], desired.version)
    serving = _label(serving_arn)
    try:
        staged = mme.stage_artifact(
            s3,
            model=member["model"],
            version=desired.version,
            source=desired.model_data_url,
            bucket=member["bucket"],
            prefix=member["prefix"],
            kms_key_id=member["kms_key_id"],
            package_arn=desired.arn,
            expected_sha256=desired.archive_sha256,
        )
    except mme.StagingError as error:
        reason = f"v{desired.version} refused: {error}"
        notify(f"v{desired.version} refused: staging failed", f"{reason}. The endpoint keeps serving {serving}.")
        return {**base, "deployed": False, "outcome": "refused", "reason": reason}
    base["staged"] = "copied" if staged.copied else "re-used"

    status = mme.endpoint_status(sagemaker, endpoint)
    if status not in (None, "InService", "Failed"):
        reason = f"endpoint {endpoint} is {status}; v{desired.version} of {desired.group} will be deployed on retry"
        raise StackBusyError(reason, {**base, "deployed": False, "outcome": "retry", "reason": reason})
    try:
        # Read even when no smoke test follows: an archive without feature metadata cannot serve.
        body = mme.smoke_request(s3, staged.bucket, staged.key, model=member["model"])
    except mme.StagingError as error:
        reason = f"v{desired.version} refused: {error}"
        notify(f"v{desired.version} refused: bad artefact", f"{reason}. The endpoint keeps serving {serving}.")
        return {**base, "deployed": False, "outcome": "refused", "reason": reason}

    if status is None:
        base["smoke_test"] = f"skipped: endpoint {endpoint} does not exist yet"
        return None
    if status == "Failed":
        base["smoke_test"] = f"skipped: endpoint {endpoint} is Failed (nothing serves; the update may repair it)"
        return None
    runtime = runtime if runtime is not None else boto3.client("sagemaker-runtime", config=RUNTIME_CONFIG)
    try:
        answer = mme.smoke_test(runtime, endpoint, staged.target_model, body)
    except mme.SmokeTestError as error:
        base["smoke_test"] = f"failed: {error}"
        headline = f"v{desired.version} failed its smoke test on {endpoint}; keeps serving {serving}"
        notify(headline, f"{headline}. {error}. The stack was not updated; staged copy: {staged.uri}.")
        return {**base, "deployed": False, "outcome": "refused", "reason": f"v{desired.version} refused: {error}"}
    base["smoke_test"] = f"passed ({answer.summary()})"
    return None


# --- the approval ledger --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Ledger:
    """Where decisions are recorded: the artifacts ``bucket``, below each group's model's ledger prefix
    (:func:`pipeline_code.core.integrity.ledger_key`)."""

    bucket: str
    models: Mapping[str, str]  # group -> model


# A reconcile (a wait's retry, a settled stack, by hand) is recorded only when it decided about a version; a state
# change is recorded whatever the outcome (unchanged, waiting and error included): it is a decision someone took.
LEDGER_RECONCILE_OUTCOMES = ("deploying", "refused", "held", "failed-to-start", "gave-up")
# What of the handler's decision a record keeps.
_DECISION_FIELDS = ("outcome", "deployed", "reason", "stack", "parameter", "serving", "desired", "held", "refused",
                    "verified", "set", "token", "failed_rollout", "waiting_since", "retry_at", "endpoint", "target_model",
                    "smoke_test")
# What of the event's detail a record keeps, as SageMaker sent it (the package may have changed since).
_DETAIL_FIELDS = ("ModelPackageArn", "ModelApprovalStatus", "ModelPackageStatus", "ApprovalDescription", "LastModifiedTime",
                  "LastModifiedBy", "CreatedBy")
# Attempts at a free key: a taken one (412, or 409 for a concurrent writer of it) is retried under a new nonce.
LEDGER_ATTEMPTS = 3


def record_decision(ledger: Optional[Ledger], event: Any, decision: Mapping[str, Any], *, sagemaker: Any, s3: Any,
                    notify: "_Notifier", recorded_by: Optional[str] = None,
                    now: Optional[dt.datetime] = None) -> Optional[Dict[str, Any]]:
    """Append ``decision`` (taken on ``event``) to the approval ledger: one JSON record written with
    ``If-None-Match: *`` to a key of its own (:func:`pipeline_code.core.integrity.ledger_key`), never over another.

    The record names its package (``package_arn`` and ``package_created``, its ``CreationTime`` as
    ``contract.package_created``, filed below :func:`pipeline_code.core.integrity.ledger_package_prefix`; when the
    package cannot be described, no time and the version's prefix) and holds the event's version as the package is
    now (``DescribeModelPackage``: status, approval,
    ``ApprovalDescription``, ``LastModifiedTime``, ``LastModifiedBy`` / ``CreatedBy`` and the principal they name),
    what the event's detail said of it, and what the handler decided (outcome, reason, the stack and the parameters it
    set). A state change is recorded under the event's version whatever the outcome; a reconcile only when it decided
    (:data:`LEDGER_RECONCILE_OUTCOMES`), under the version it decided about. A state change without a version in its
    detail is recorded under the desired version. Returns ``{"key": ...}``, ``{"error": ...}``, or None when there is
    nothing to record (no ledger, a group or event not of this function, a reconcile that changed nothing).

    Never raises: a ledger that cannot be written must not stop (or, raised, repeat) a deployment. It is logged as an
    error with the whole record, and people are told (``notify``) with the record in the notice, so nothing is lost
    unseen.
    """
    group = decision.get("group")
    if ledger is None or not isinstance(group, str) or group not in ledger.models:
        return None
    seen = decision.get("event") or {}
    trigger = integrity.LEDGER_RECONCILE if "action" in seen else integrity.LEDGER_STATE_CHANGE
    if trigger == integrity.LEDGER_RECONCILE and decision.get("outcome") not in LEDGER_RECONCILE_OUTCOMES:
        return None
    detail = (event.get("detail") if isinstance(event, Mapping) else None) or {}
    desired = decision.get("desired") or {}
    version = seen.get("version") if trigger == integrity.LEDGER_STATE_CHANGE else None
    arn = detail.get("ModelPackageArn") if version is not None else None
    if version is None:
        version, arn = desired.get("version"), desired.get("arn")
    if not isinstance(version, int):
        LOG.warning(json.dumps({"ledger": "not recorded: the decision names no version", "decision": decision}, default=str))
        return None
    record: Dict[str, Any] = {
        "schema": integrity.LEDGER_SCHEMA,
        "recorded_at": None,
        "recorded_by": recorded_by,
        "group": group,
        "model": ledger.models[group],
        "version": version,
        "package_arn": arn,
        "trigger": trigger,
        "event": {**{k: v for k, v in seen.items() if k != "version"}, "version": version,
                  "time": event.get("time") if isinstance(event, Mapping) else None,
                  "detail": {k: detail[k] for k in _DETAIL_FIELDS if k in detail}},
        "package_created": None,
        "package": _package_record(sagemaker, arn),
        "decision": {k: decision[k] for k in _DECISION_FIELDS if k in decision},
    }
    # Which package of that ARN: a group deleted and created again restarts at version 1, so the record names the
    # package's creation time and is filed below it (integrity.ledger_package_prefix); the audit keeps a version's
    # records apart from those of the package that had its number before.
    try:
        record["package_created"] = package_created(record["package"]["CreationTime"])
    except (KeyError, ValueError):
        pass
    now = now or dt.datetime.now(dt.timezone.utc)
    record["recorded_at"] = _aware(now).astimezone(dt.timezone.utc).isoformat()
    body = json.dumps(record, default=_json_value, sort_keys=True).encode("utf-8")
    word = seen.get("approval") if trigger == integrity.LEDGER_STATE_CHANGE and isinstance(seen.get("approval"), str) else trigger
    error: Optional[Exception] = None
    for _ in range(LEDGER_ATTEMPTS):
        key = integrity.ledger_key(ledger.models[group], version, now, word or trigger, secrets.token_hex(4),
                                   record["package_created"])
        try:
            s3.put_object(Bucket=ledger.bucket, Key=key, Body=body, IfNoneMatch="*", ContentType="application/json")
            return {"key": f"s3://{ledger.bucket}/{key}"}
        except (ClientError, BotoCoreError) as caught:
            error = caught
            code = caught.response.get("Error", {}).get("Code", "") if isinstance(caught, ClientError) else ""
            if str(code) not in ("PreconditionFailed", "412", "ConditionalRequestConflict", "409"):
                break
    reason = f"approval ledger: the record of v{version}'s {trigger} could not be written to s3://{ledger.bucket}: {error}"
    LOG.error(json.dumps({"ledger_failed": reason, "record": json.loads(body)}))
    notify(f"v{version}: approval ledger not written",
           f"{reason}. The decision itself went ahead ({decision.get('outcome')}); this notice holds the record that was "
           f"not kept, for the audit trail:\n\n{body.decode('utf-8')}")
    return {"error": str(error)}


def _package_record(sagemaker: Any, arn: Optional[str]) -> Dict[str, Any]:
    """The package's approval fields now, and the principal its ``LastModifiedBy`` (else ``CreatedBy``) names."""
    if not arn:
        return {"error": "the event names no model package ARN"}
    try:
        d = sagemaker.describe_model_package(ModelPackageName=arn)
    except (ClientError, BotoCoreError) as error:
        return {"error": f"DescribeModelPackage: {error}"}
    fields = {name: d.get(name) for name in ("ModelApprovalStatus", "ModelPackageStatus", "ApprovalDescription",
                                              "LastModifiedTime", "LastModifiedBy", "CreatedBy", "CreationTime")}
    # LastModifiedBy is who made the change at hand; a version never updated was decided at registration (CreatedBy).
    return {**{k: v for k, v in fields.items() if v is not None},
            "principal": _principal(d.get("LastModifiedBy")) or _principal(d.get("CreatedBy"))}


def _principal(user: Any) -> Optional[str]:
    """Who a SageMaker ``UserContext`` names: its IAM identity's ARN, else the Studio user profile, else the principal id."""
    if not isinstance(user, Mapping):
        return None
    identity = user.get("IamIdentity") or {}
    return identity.get("Arn") or user.get("UserProfileArn") or user.get("UserProfileName") or identity.get("PrincipalId") or None


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return _aware(value).astimezone(dt.timezone.utc).isoformat()
    return str(value)


# --- the run record -------------------------------------------------------------------------------------


RECORD_RUN_ACTION = "record-run"
# Pipeline execution statuses after which nothing of the run changes (DescribePipelineExecution): recorded then only.
FINISHED_EXECUTION_STATUSES = PIPELINE_EXECUTION_ENDED
# What a package's MetadataProperties.GeneratedBy holds when a pipeline registered it (set at registration; no API
# changes it). Matched whole (fullmatch) and without white space in its names: a `$` would accept a trailing
# newline, and so would `[^/]+`, which would reach SageMaker (whose pattern's `.*` refuses it) instead of being
# told malformed.
EXECUTION_ARN = re.compile(r"arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:[0-9]{12}:pipeline/[^/\s]+/execution/[^/\s]+")
# What of DescribePipelineExecution a run record keeps.
_EXECUTION_FIELDS = ("PipelineArn", "PipelineExecutionDisplayName", "PipelineExecutionStatus",
                     "PipelineExecutionDescription", "FailureReason", "CreationTime", "LastModifiedTime", "CreatedBy",
                     "PipelineVersionId")


def record_runs(ledger: Optional[Ledger], event: Any, decision: Mapping[str, Any], *, sagemaker: Any, s3: Any,
                notify: "_Notifier", recorded_by: Optional[str] = None,
                now: Optional[dt.datetime] = None) -> Optional[List[Dict[str, Any]]]:
    """Keep the run record (:func:`record_run`) of every version ``decision`` shows approved: the event's version of an
    ``Approved`` state change, and the version that should serve (``desired``). Returns one result per version, or
    None when there is none to record (no ledger, a group not of this function, nothing approved).

    A failure is told to people (``notify``) only for a registry event: a reconcile (a settled stack, a wait's retry)
    tries the serving version again each time, and would repeat the notice; it is logged. A version whose execution
    still runs (``pending``: approved at registration) is logged, not told: its execution's end records it
    (:func:`record_execution`).
    """
    group = decision.get("group")
    if ledger is None or not isinstance(group, str) or group not in ledger.models:
        return None
    seen = decision.get("event") or {}
    detail = (event.get("detail") if isinstance(event, Mapping) else None) or {}
    targets: Dict[int, str] = {}
    if "action" not in seen and seen.get("approval") == approval_rule.APPROVED and isinstance(seen.get("version"), int) \
            and isinstance(detail.get("ModelPackageArn"), str):
        targets[seen["version"]] = detail["ModelPackageArn"]
    desired = decision.get("desired") or {}
    if isinstance(desired.get("version"), int) and isinstance(desired.get("arn"), str):
        targets.setdefault(desired["version"], desired["arn"])
    results = []
    for version, arn in sorted(targets.items()):
        result = record_run(ledger, group, version, arn, sagemaker=sagemaker, s3=s3, recorded_by=recorded_by, now=now)
        if result["outcome"] in ("failed", "lost"):
            LOG.error(json.dumps({"run_record_failed": result}))
            if "action" not in seen:
                notify(f"v{version}: run record not written", _run_record_notice(group, result, decision.get("outcome")))
        elif result["outcome"] == "pending":
            LOG.info(json.dumps({"run_record_pending": result}))
        results.append(result)
    return results or None


def _run_record_notice(group: str, result: Mapping[str, Any], outcome: Any = None) -> str:
    """The notice of a run record not written; ``outcome``: the deployment decision that went ahead (None: there was
    none, the execution's end asked for the record)."""
    version = result["version"]
    went_ahead = f" The decision itself went ahead ({outcome})." if outcome is not None else ""
    why = (f"{result['reason']}.{went_ahead} The run record keeps v{version}'s pipeline "
           "run (the definition it ran, its parameters and steps) for the audit once its pipeline is deleted: removing "
           "or renaming the model, or deleting the training stack, deletes the pipeline with every execution.")
    if result["outcome"] == "lost":
        return why + " This one cannot be recorded any more: the audit will say so for this version."
    return why + (f" It is tried again on the next approval event of v{version} and, while v{version} is the version that "
                  f'should serve, on every reconcile; to try now, invoke this function with {{"action": '
                  f'"{RECORD_RUN_ACTION}", "group": "{group}", "version": {version}}}.')


def record_run(ledger: Ledger, group: str, version: int, arn: str, *, sagemaker: Any, s3: Any,
               recorded_by: Optional[str] = None, now: Optional[dt.datetime] = None) -> Dict[str, Any]:
    """Write the run record of ``version`` (model package ``arn`` of ``group``): the pipeline execution its
    ``MetadataProperties.GeneratedBy`` names - ``DescribePipelineExecution``, ``DescribePipelineDefinitionForExecution``,
    ``ListPipelineParametersForExecution`` and ``ListPipelineExecutionSteps`` (every page) - as one JSON document with
    ``If-None-Match: *`` at :func:`pipeline_code.core.integrity.run_record_key`, its ``digest`` the sha256 of the rest
    (:func:`pipeline_code.core.integrity.run_record_digest`).

    Returns ``{"version", "outcome", "reason", ...}``; ``outcome``: ``recorded`` (``key``, ``digest``),
    ``already-recorded`` (a record of this package is there: the write is refused, the first one stays), ``pending``
    (the execution has not ended: recorded at its end, :func:`record_execution`), ``no-execution`` (the package names none: registered
    outside a pipeline), ``lost`` (the execution no longer exists) or ``failed`` (any other error: retry). Never raises.
    The reads come first, so a record already kept costs them again: they run only on the few events that name an
    approved version.
    """
    model = ledger.models[group]
    out: Dict[str, Any] = {"version": version, "package_arn": arn}
    step = "DescribeModelPackage"
    try:
        package = sagemaker.describe_model_package(ModelPackageName=arn)
        created = package_created(package["CreationTime"])
        execution_arn = (package.get("MetadataProperties") or {}).get("GeneratedBy") or ""
        if not EXECUTION_ARN.fullmatch(execution_arn):
            return {**out, "outcome": "no-execution",
                    "reason": f"v{version} names no pipeline execution (MetadataProperties.GeneratedBy is "
                              f"{execution_arn or 'absent'}): it was registered outside the pipeline, so it has no run to record"}
        out["execution_arn"] = execution_arn
        key = integrity.run_record_key(model, version, created)
        step = "DescribePipelineExecution"
        execution = sagemaker.describe_pipeline_execution(PipelineExecutionArn=execution_arn)
        status = execution.get("PipelineExecutionStatus")
        if status not in FINISHED_EXECUTION_STATUSES:
            return {**out, "outcome": "pending",
                    "reason": f"its pipeline execution is {status}: the run record is written once it has ended (at "
                              "the execution's end event)"}
        step = "DescribePipelineDefinitionForExecution"
        definition = sagemaker.describe_pipeline_definition_for_execution(PipelineExecutionArn=execution_arn)
        step = "ListPipelineParametersForExecution"
        parameters = _all_pages(lambda **page: sagemaker.list_pipeline_parameters_for_execution(**page),
                                "PipelineParameters", PipelineExecutionArn=execution_arn)
        step = "ListPipelineExecutionSteps"
        steps = _all_pages(lambda **page: sagemaker.list_pipeline_execution_steps(**page), "PipelineExecutionSteps",
                           PipelineExecutionArn=execution_arn, SortOrder="Ascending")
    except (ClientError, BotoCoreError) as error:
        code = error.response.get("Error", {}).get("Code", "") if isinstance(error, ClientError) else ""
        if code == "ResourceNotFound" and step != "DescribeModelPackage":
            return {**out, "outcome": "lost",
                    "reason": f"v{version}'s run record cannot be written: its pipeline execution {out['execution_arn']} "
                              f"no longer exists ({step}: {error}); its pipeline was deleted before the version was recorded"}
        return {**out, "outcome": "failed", "reason": f"v{version}'s run record could not be read ({step}): {error}"}
    except (KeyError, ValueError) as error:
        return {**out, "outcome": "failed", "reason": f"v{version}'s run record could not be keyed: DescribeModelPackage "
                                                      f"gave no usable CreationTime ({error!r})"}
    body_text = definition.get("PipelineDefinition") or ""
    record: Dict[str, Any] = {
        "schema": integrity.RUN_RECORD_SCHEMA,
        "recorded_at": _aware(now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc).isoformat(),
        "recorded_by": recorded_by,
        "group": group,
        "model": model,
        "version": version,
        "package_arn": arn,
        "package_created": created,
        "execution_arn": execution_arn,
        "execution": {k: execution[k] for k in _EXECUTION_FIELDS if execution.get(k) is not None},
        "definition": {"created": definition.get("CreationTime"),
                       "sha256": hashlib.sha256(body_text.encode("utf-8")).hexdigest(), "body": body_text},
        "parameters": parameters,
        "steps": steps,
    }
    # Times become ISO text before the digest, so the digest is of exactly what is stored and read back.
    record = json.loads(json.dumps(record, default=_json_value))
    record["digest"] = integrity.run_record_digest(record)
    uri = f"s3://{ledger.bucket}/{key}"
    try:
        s3.put_object(Bucket=ledger.bucket, Key=key, Body=json.dumps(record, sort_keys=True).encode("utf-8"),
                      IfNoneMatch="*", ContentType="application/json")
    except (ClientError, BotoCoreError) as error:
        code = error.response.get("Error", {}).get("Code", "") if isinstance(error, ClientError) else ""
        # 412: a record of this package is there already (the key names the package); 409: another write of it is
        # under way. Either way the first one stays: the record is written once.
        if str(code) in ("PreconditionFailed", "412", "ConditionalRequestConflict", "409"):
            return {**out, "outcome": "already-recorded", "reason": f"v{version}'s run record is already kept", "key": uri}
        return {**out, "outcome": "failed", "reason": f"v{version}'s run record could not be written to {uri}: {error}"}
    return {**out, "outcome": "recorded", "reason": f"v{version}'s run record written", "key": uri, "digest": record["digest"]}


def record_run_by_hand(ledger: Optional[Ledger], event: Mapping[str, Any], *, sagemaker: Any, s3: Any,
                       recorded_by: Optional[str] = None) -> Dict[str, Any]:
    """``{"action": "record-run", "group": ..., "version": N}``: :func:`record_run` of that version, whatever its
    approval (a version never approved has no record until asked for). A malformed request is returned, not raised."""
    group, version = event.get("group"), event.get("version")
    base = {"action": RECORD_RUN_ACTION, "group": group}
    if ledger is None:
        return {**base, "outcome": "malformed", "reason": "APPROVAL_LEDGER is not set: there is no bucket to record runs in"}
    if not isinstance(group, str) or group not in ledger.models:
        return {**base, "outcome": "malformed",
                "reason": f"field 'group' must name a model package group of this function ({', '.join(sorted(ledger.models))}), "
                          f"got {group!r}"}
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        return {**base, "outcome": "malformed", "reason": f"field 'version' must be a version number, got {version!r}"}
    try:
        arn = next((s["ModelPackageArn"] for s in approval_rule.summaries(sagemaker, group)
                    if s.get("ModelPackageVersion") == version), None)
    except (ClientError, BotoCoreError) as error:
        return {**base, "version": version, "outcome": "failed", "reason": f"ListModelPackages of {group}: {error}"}
    if arn is None:
        return {**base, "version": version, "outcome": "malformed", "reason": f"{group} has no version {version}"}
    return {**base, **record_run(ledger, group, version, arn, sagemaker=sagemaker, s3=s3, recorded_by=recorded_by)}


def record_execution(ledger: Optional[Ledger], event: Mapping[str, Any], *, sagemaker: Any, s3: Any,
                     notifier: Callable[[str], "_Notifier"], recorded_by: Optional[str] = None,
                     now: Optional[dt.datetime] = None) -> Dict[str, Any]:
    """``{"action": "record-execution", "execution": <pipeline execution ARN>, "status": ..., "source_event_id": ...}``
    (the rule on the end of the models' pipeline executions sends it): keep the run record (:func:`record_run`) of the
    version that execution registered, if that version is ``Approved`` - the one case no registry event covers: a version
    approved at registration, while its execution still ran (``pending`` then), and named by no event after it.

    The execution's pipeline (``<prefix>-<model>-training``) names the group, compared without case (SageMaker may
    write ARNs in lower case); the version is the one whose ``MetadataProperties.GeneratedBy`` is the execution, found
    among the group's packages created after the execution started (``ListModelPackages`` with ``CreationTimeAfter``,
    then ``DescribeModelPackage`` of each, newest first). Returns the decision; ``outcome``: :func:`record_run`'s, or
    ``no-version`` (the execution registered none: the gate refused its candidate, or it failed before registering),
    ``not-approved`` (its version waits for a person or was rejected: its approval event records it), ``ignored`` (not
    a pipeline of this function's models), ``malformed``, or ``failed``/``lost`` when the execution or the group cannot
    be read. Never raises. A ``failed``, ``lost`` or ``pending`` outcome is logged and told to people (``notifier`` of
    the group) with how to retry: no later event may name that version.
    """
    execution_arn = event.get("execution")
    base: Dict[str, Any] = {"action": RECORD_EXECUTION_ACTION, "execution": execution_arn,
                            **{k: event[k] for k in ("status", "source_event_id") if k in event}}
    if ledger is None:
        return {**base, "outcome": "malformed", "reason": "APPROVAL_LEDGER is not set: there is no bucket to record runs in"}
    if not isinstance(execution_arn, str) or not EXECUTION_ARN.fullmatch(execution_arn):
        return {**base, "outcome": "malformed",
                "reason": f"field 'execution' must be a pipeline execution ARN, got {execution_arn!r}"}
    pipeline = execution_arn.split(":", 5)[5].split("/")[1]
    trained = (pipeline_group(pipeline) or "").lower()
    group = next((g for g in sorted(ledger.models) if g.lower() == trained), None)
    if group is None:
        return {**base, "outcome": "ignored",
                "reason": f"pipeline {pipeline} does not train a model of this function ({', '.join(sorted(ledger.models))})"}
    base["group"] = group
    step = "DescribePipelineExecution"
    try:
        started = sagemaker.describe_pipeline_execution(PipelineExecutionArn=execution_arn)["CreationTime"]
        # The execution registers its version while it runs: no package created before it started can be its.
        step = "ListModelPackages"
        candidates = _all_pages(lambda **page: sagemaker.list_model_packages(**page), "ModelPackageSummaryList",
                                ModelPackageGroupName=group, ModelPackageType="Versioned", CreationTimeAfter=started,
                                SortBy="CreationTime", SortOrder="Descending")
        step = "DescribeModelPackage"
        registered = None
        for summary in candidates:
            package = sagemaker.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
            if ((package.get("MetadataProperties") or {}).get("GeneratedBy") or "").lower() == execution_arn.lower():
                registered = package
                break
    except (ClientError, BotoCoreError) as error:
        code = error.response.get("Error", {}).get("Code", "") if isinstance(error, ClientError) else ""
        lost = code == "ResourceNotFound" and step == "DescribePipelineExecution"
        result = {**base, "version": None, "outcome": "lost" if lost else "failed",
                  "reason": f"the version execution {execution_arn} registered in {group} could not be found ({step}): {error}"}
        return _told(result, notifier(group))
    except KeyError as error:
        return _told({**base, "version": None, "outcome": "failed",
                      "reason": f"DescribePipelineExecution of {execution_arn} gave no {error}"}, notifier(group))
    if registered is None:
        return {**base, "outcome": "no-version",
                "reason": f"execution {execution_arn} registered no version in {group} (its gate refused the candidate, or "
                          "it ended before registering one): there is no run to record"}
    version = int(registered.get("ModelPackageVersion") or 0)
    approval = registered.get("ModelApprovalStatus")
    if approval != approval_rule.APPROVED:
        return {**base, "version": version, "package_arn": registered["ModelPackageArn"], "outcome": "not-approved",
                "reason": f"v{version} is {approval}: its run record is written when it is approved (its approval event)"}
    result = {**base, **record_run(ledger, group, version, registered["ModelPackageArn"], sagemaker=sagemaker, s3=s3,
                                   recorded_by=recorded_by, now=now)}
    if result["outcome"] == "pending":
        # The execution's own end: nothing later would record it without someone asking.
        result["reason"] += f", although execution {execution_arn} was reported {event.get('status')}"
    return _told(result, notifier(group)) if result["outcome"] in ("failed", "lost", "pending") else result


def _told(result: Dict[str, Any], notify: "_Notifier") -> Dict[str, Any]:
    """``result`` (a run record not written at an execution's end) logged as an error and told to people."""
    LOG.error(json.dumps({"run_record_failed": result}, default=str))
    version = result.get("version")
    if isinstance(version, int):
        notify(f"v{version}: run record not written", _run_record_notice(result["group"], result))
    else:
        notify("run record not written",
               f"{result['reason']}. If that execution registered an approved version, its run record (the definition it "
               "ran, its parameters and steps, which the audit needs once the pipeline is deleted) is not kept: find the "
               f'version (python -m mlops_cli.rollback --env <env> --model <model> versions) and invoke this function with {{"action": '
               f'"{RECORD_RUN_ACTION}", "group": "{result["group"]}", "version": N}}.')
    return result


def _all_pages(operation: Any, result_key: str, **kwargs: Any) -> List[Any]:
    """Every item of ``result_key`` over the pages of a ``NextToken`` listing."""
    items: List[Any] = []
    while True:
        page = operation(**kwargs)
        items.extend(page.get(result_key) or [])
        if not page.get("NextToken"):
            return items
        kwargs["NextToken"] = page["NextToken"]


# --- helpers --------------------------------------------------------------------------------------------


class _Notifier:
    """Publishes short notices to people (``topic``: one ARN, or :class:`Topics`, resolved for ``group``); a failed
    publish is logged, never fatal to the deployment."""

    def __init__(self, sns: Any, topic: "Optional[str] | Topics", group: str) -> None:
        self.sns, self.group = sns, group
        self.topic = topic.of(group) if isinstance(topic, Topics) else topic

    def __call__(self, subject: str, message: str) -> None:
        if not self.topic or self.sns is None:
            return
        full_subject = f"{self.group}: {subject}"
        # SNS subjects: ASCII, no line breaks, at most 100 characters.
        full_subject = full_subject.encode("ascii", "replace").decode().replace("\n", " ")[:100]
        try:
            self.sns.publish(TopicArn=self.topic, Subject=full_subject, Message=f"{full_subject}\n\n{message}")
        except ClientError as error:
            LOG.warning(json.dumps({"notify_failed": str(error), "subject": full_subject}))


def _refuse_event_version(
    versions: List[Version], seen: Mapping[str, Any], group: str, notify: _Notifier, *, desired: Optional[Version]
) -> List[int]:
    """Notify when the event's own version was approved but can never deploy (failed, deleting, no container).

    The desired version is left to the main path (which refuses it with its own notice); a version
    still Pending / InProgress is not refused: its completion emits another event.
    """
    number = seen.get("version")
    version = next((v for v in versions if v.version == number), None)
    if version is None or version == desired or version.approval != "Approved":
        return []
    if version.status not in BROKEN_STATUSES + ("Completed",):
        return []
    found = problems(version, group)
    if not found:
        return []
    notify(f"v{version.version} refused", f"v{version.version} is approved but will not be deployed: {'; '.join(found)}.")
    return [version.version]


def _parse(event: Any) -> "tuple[str, Dict[str, Any]]":
    if not isinstance(event, Mapping):
        raise _Malformed(f"expected a JSON object, got {type(event).__name__}")
    if "action" in event:
        if event.get("action") != "reconcile":
            raise _Malformed(f"action {event.get('action')!r} is not 'reconcile'")
        group = event.get("group")
        if not isinstance(group, str) or not group:
            raise _Malformed("field 'group' must name a model package group")
        seen: Dict[str, Any] = {"action": "reconcile"}
        if "waiting_since" in event:
            # Kept as text: the decision is the function's (JSON) return value.
            seen["waiting_since"] = _timestamp(event["waiting_since"], "waiting_since").isoformat()
        return group, seen
    if event.get("source") != EVENT_SOURCE or event.get("detail-type") != EVENT_DETAIL_TYPE:
        raise _Malformed(
            f"expected source {EVENT_SOURCE!r} and detail-type {EVENT_DETAIL_TYPE!r} "
            f"(or {{'action': 'reconcile', 'group': ...}}), got {event.get('source')!r} / {event.get('detail-type')!r}"
        )
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        raise _Malformed("field 'detail' must be an object")
    group = detail.get("ModelPackageGroupName")
    if not isinstance(group, str) or not group:
        raise _Malformed("field 'detail.ModelPackageGroupName' is missing or empty")
    version = detail.get("ModelPackageVersion")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        raise _Malformed(f"field 'detail.ModelPackageVersion' must be an integer, got {version!r}")
    return group, {
        "id": event.get("id"),
        "version": version,
        "approval": detail.get("ModelApprovalStatus"),
        "status": detail.get("ModelPackageStatus"),
    }


def _parse_quietly(event: Any) -> "tuple[Optional[str], Dict[str, Any]]":
    """:func:`_parse`, or ``(None, {})`` for a malformed event."""
    try:
        return _parse(event)
    except _Malformed:
        return None, {}


def _settings() -> Dict[str, Any]:
    stack = os.environ.get("SERVING_STACK_NAME", "").strip()
    if not stack:
        raise ConfigurationError("environment variable SERVING_STACK_NAME is empty: set it to the serving stack's name")
    raw = os.environ.get("MODEL_PARAMETERS", "")
    try:
        parameters = json.loads(raw)
    except json.JSONDecodeError:
        parameters = None
    if not isinstance(parameters, dict) or not parameters or not all(
        isinstance(k, str) and k and isinstance(v, str) and v for k, v in parameters.items()
    ):
        raise ConfigurationError(
            f"environment variable MODEL_PARAMETERS must be a JSON object mapping group name -> stack parameter name, got {raw[:200]!r}"
        )
    role_arn = os.environ.get("DEPLOYER_ROLE_ARN", "").strip()
    if not role_arn.startswith("arn:"):
        raise ConfigurationError("environment variable DEPLOYER_ROLE_ARN must be the CloudFormation service role's ARN")
    topic_arn = os.environ.get("NOTIFY_TOPIC_ARN", "").strip() or None
    topic = Topics(topic_arn, _team_topics_setting(os.environ.get("TEAM_TOPICS", ""), parameters, topic_arn))
    multi = _multi_model_setting(os.environ.get("MULTI_MODEL", ""), parameters, os.environ.get("MULTI_MODEL_SHARED", ""))
    return {"stack": stack, "parameters": parameters, "role_arn": role_arn, "topic": topic, "multi_model": multi,
            "retry": _retry_setting(), "ledger": _ledger_setting(os.environ.get("APPROVAL_LEDGER", ""), parameters)}


def _team_topics_setting(raw: str, parameters: Mapping[str, str], topic_arn: Optional[str]) -> Dict[str, str]:
    """``TEAM_TOPICS`` as group -> topic ARN, beside ``NOTIFY_TOPIC_ARN``
    (:func:`~pipeline_code.handlers.team_topics.team_topics_setting`)."""
    return team_topics_setting(raw, parameters, error=ConfigurationError, topic_arn=topic_arn,
                               topic_variable="NOTIFY_TOPIC_ARN",
                               unknown="which MODEL_PARAMETERS does not: give each team's topic the groups of its models "
                                       "this function deploys")


def _ledger_setting(raw: str, parameters: Mapping[str, str]) -> Optional[Ledger]:
    """``APPROVAL_LEDGER``: ``{"bucket": <artifacts bucket>, "group_prefix": <prefix>}``, every group of
    ``MODEL_PARAMETERS`` being ``<prefix><model>`` (``package_group_name``); empty or unset = no ledger (nothing is
    recorded; the app always sets it)."""
    if not raw.strip():
        return None
    name = "environment variable APPROVAL_LEDGER"
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ConfigurationError(f"{name} is not JSON ({error}): expected {{\"bucket\": ..., \"group_prefix\": ...}}") from None
    if not isinstance(value, dict) or set(value) != {"bucket", "group_prefix"}:
        raise ConfigurationError(f"{name} must be a JSON object with exactly the fields bucket and group_prefix, got {raw[:200]!r}")
    if not isinstance(value["bucket"], str) or not _BUCKET_NAME.match(value["bucket"]):
        raise ConfigurationError(f"{name}.bucket must be an S3 bucket name, got {value['bucket']!r}")
    prefix = value["group_prefix"]
    if not isinstance(prefix, str):
        raise ConfigurationError(f"{name}.group_prefix must be a string, got {prefix!r}")
    models = {group: group[len(prefix):] for group in parameters if group.startswith(prefix)}
    wrong = sorted(g for g in parameters if not _MODEL_NAME.match(models.get(g, "")))
    if wrong:
        raise ConfigurationError(f"{name}.group_prefix {prefix!r} does not name group {wrong[0]!r} of MODEL_PARAMETERS as "
                                 "<group_prefix><model>: its decisions would go unrecorded")
    return Ledger(bucket=value["bucket"], models=models)


def _retry_setting() -> Optional[Retry]:
    """``RETRY_SCHEDULE_GROUP``, ``RETRY_ROLE_ARN`` and ``MAX_WAIT_SECONDS``: all three, or none (then a busy
    stack raises :class:`StackBusyError` for Lambda's retries); ``RETRY_DEAD_LETTER_ARN`` (optional, default
    none) is the queue of retries Scheduler could not deliver."""
    names = ("RETRY_SCHEDULE_GROUP", "RETRY_ROLE_ARN", "MAX_WAIT_SECONDS")
    values = {name: os.environ.get(name, "").strip() for name in names}
    if not any(values.values()):
        return None
    missing = [name for name in names if not values[name]]
    if missing:
        raise ConfigurationError(f"environment variables {', '.join(names)} go together; {', '.join(missing)} is empty")
    if not values["RETRY_ROLE_ARN"].startswith("arn:"):
        raise ConfigurationError("environment variable RETRY_ROLE_ARN must be the ARN of the role EventBridge Scheduler assumes")
    if not values["MAX_WAIT_SECONDS"].isdigit() or int(values["MAX_WAIT_SECONDS"]) < 1:
        raise ConfigurationError(f"environment variable MAX_WAIT_SECONDS must be a positive number of seconds, got {values['MAX_WAIT_SECONDS']!r}")
    dead_letters = os.environ.get("RETRY_DEAD_LETTER_ARN", "").strip() or None
    if dead_letters is not None and not dead_letters.startswith("arn:"):
        raise ConfigurationError("environment variable RETRY_DEAD_LETTER_ARN must be the ARN of an SQS queue, or unset")
    return Retry(group=values["RETRY_SCHEDULE_GROUP"], role_arn=values["RETRY_ROLE_ARN"],
                 max_wait=dt.timedelta(seconds=int(values["MAX_WAIT_SECONDS"])), dead_letter_arn=dead_letters)


def _timestamp(value: Any, field: str) -> dt.datetime:
    if not isinstance(value, str):
        raise _Malformed(f"field {field!r} must be an ISO 8601 time, got {value!r}")
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise _Malformed(f"field {field!r} must be an ISO 8601 time, got {value!r}") from None
    return _aware(parsed)


def _multi_model_setting(raw: str, parameters: Mapping[str, str], shared_raw: str = "") -> Dict[str, Dict[str, str]]:
    """``MULTI_MODEL``: ``{group: {"model", "endpoint", "bucket", "prefix", "kms_key_id"}}``; empty or unset = ``{}``.
    ``shared_raw`` (``MULTI_MODEL_SHARED``; empty or unset: none) gives ``bucket`` and ``kms_key_id`` once for every
    member that leaves them out.

    Every group must also be in ``MODEL_PARAMETERS``; every field is a non-empty string, ``prefix``
    ends with ``/``; unknown fields are errors (a misspelt field would otherwise go unnoticed).
    """
    if not raw.strip():
        return {}
    shared: Dict[str, Any] = {}
    if shared_raw.strip():
        try:
            shared = json.loads(shared_raw)
        except json.JSONDecodeError:
            shared = None  # type: ignore[assignment]
        if not isinstance(shared, dict) or sorted(set(shared) - set(MULTI_MODEL_SHARED_FIELDS)):
            raise ConfigurationError("environment variable MULTI_MODEL_SHARED must be a JSON object with fields among "
                                     f"{', '.join(MULTI_MODEL_SHARED_FIELDS)}, got {shared_raw[:200]!r}")
    name = "environment variable MULTI_MODEL"
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ConfigurationError(f"{name} is not JSON ({error}): expected {{group: {{{', '.join(MULTI_MODEL_FIELDS)}}}}}") from None
    if not isinstance(value, dict):
        raise ConfigurationError(f"{name} must be a JSON object mapping group name -> MME settings, got {type(value).__name__}")
    for group, member in list(value.items()):
        if group not in parameters:
            raise ConfigurationError(f"{name}: group {group!r} is not in MODEL_PARAMETERS")
        if not isinstance(member, dict):
            raise ConfigurationError(f"{name}[{group!r}] must be an object with fields {', '.join(MULTI_MODEL_FIELDS)}")
        member = value[group] = {**shared, **member}
        unknown = sorted(set(member) - set(MULTI_MODEL_FIELDS))
        if unknown:
            raise ConfigurationError(f"{name}[{group!r}]: unknown field {unknown[0]!r} (fields: {', '.join(MULTI_MODEL_FIELDS)})")
        for field in MULTI_MODEL_FIELDS:
            if not isinstance(member.get(field), str) or not member[field].strip():
                raise ConfigurationError(f"{name}[{group!r}].{field} must be a non-empty string")
        if not member["prefix"].endswith("/") or member["prefix"].startswith("/"):
            raise ConfigurationError(
                f"{name}[{group!r}].prefix must be a key prefix ending in '/' (e.g. 'mme/<endpoint>/'), got {member['prefix']!r}"
            )
        if not _MODEL_NAME.match(member["model"]):
            raise ConfigurationError(
                f"{name}[{group!r}].model must be a model name (letters, digits, '.', '_', '-'), got {member['model']!r}"
            )
        if not _BUCKET_NAME.match(member["bucket"]):
            raise ConfigurationError(f"{name}[{group!r}].bucket must be an S3 bucket name, got {member['bucket']!r}")
    return value


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


def _brief(version: Optional[Version]) -> Optional[Dict[str, Any]]:
    return None if version is None else {"version": version.version, "arn": version.arn}


def _label(arn: str) -> str:
    if not arn:
        return "no endpoint"
    number = version_of_arn(arn)
    return f"v{number}" if number is not None else arn


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def _preview(event: Any) -> str:
    return json.dumps(event, default=str)[:500]
