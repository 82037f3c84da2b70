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
environment) must be the one the pipeline registered; so is a version whose evaluation report (verified against
the digests recorded at registration) says the promotion gate failed (:func:`gate_problems`: registered outside the
pipeline's condition step; no approval overrides it). These checks come after the one that finds the version already
set on the stack, so a version that serves is never taken down by them. When the serving version is no longer approved (rejected) and the
version that should replace it is refused by them, the next approved version that passes them serves instead (decision
``passed_over``), as after a held rollout, rather than the rejected one staying. The update also sets the model digest
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
moment, and the decision with the stack parameters it set; a refusal or a held version that every later reconcile meets
again is recorded once per approval decision and reason (``ledger.LEDGER_ONCE_OUTCOMES``). A later decision
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

This module is the entry point (:func:`handler`) and the decision (:func:`reconcile`, :func:`wait`); its parts are
the package beside it, :mod:`pipeline_code.handlers.deploy`: the events (``events``), the registry's versions and
their checks (``registry``), the serving stack (``stack``), notices (``notices``), the approval ledger (``ledger``), run
records (``run_records``), the endpoint log groups' retention (``log_retention``) and the function's settings
(``settings``).

Runs on the stock Lambda Python runtime: standard library and boto3 only, no other project module
than the handlers' (``pipeline_code/handlers``, with ``deploy/``) and the shared core.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import re
from typing import Any, Dict, List, Mapping, Optional

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from pipeline_code.core.approval import ReportPlace, says_gate_failed
from pipeline_code.core.contract import RECORD_EXECUTION_ACTION, model_sha256_parameter_name, region_of_arn
from pipeline_code.core.retries import transient_response
from pipeline_code.handlers import multi_model as mme
from pipeline_code.handlers.deploy.events import Malformed, parse, parse_quietly, preview
from pipeline_code.handlers.deploy.ledger import record_decision
from pipeline_code.handlers.deploy.log_retention import (LOG_RETENTION_ACTION, endpoint_retention, logs_client, near_timeout,
                                                          publish_sweep, sweep_stack_client)
from pipeline_code.handlers.deploy.notices import Notifier, invoke_command, rollback_command
from pipeline_code.handlers.deploy.registry import (Version, brief, gate_problems, label, list_versions, problems,
                                                    select_desired, serving_order, verify_artifact)
from pipeline_code.handlers.deploy.run_records import RECORD_RUN_ACTION, record_execution, record_run_by_hand, record_runs
from pipeline_code.handlers.deploy.ledger import Ledger
from pipeline_code.handlers.deploy.settings import Retry, from_environment, report_place
from pipeline_code.handlers.deploy.stack import client_token, describe_stack, failed_rollout, missing_endpoint, stack_parameters
from pipeline_code.handlers.team_topics import Topics

LOG = logging.getLogger(__name__)
LOG.setLevel(logging.INFO)
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"]
# ModelPackageStatus values that will never become deployable (Pending / InProgress may still complete,
# and their completion emits another state-change event).
BROKEN_STATUSES = ("Failed", "Deleting")
_NO_UPDATES = "No updates are to be performed"
# An MME loads a model on its first request (download + unpack): allow for that, retry once more.
RUNTIME_CONFIG = Config(connect_timeout=10, read_timeout=70, retries={"mode": "standard", "total_max_attempts": 2})


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
    logs: Any = None,
) -> Dict[str, Any]:
    """Lambda entry point; the clients are injectable for tests (default: boto3 clients of the function's region).

    With ``LOG_RETENTION_DAYS``, a reconcile then sets its group's endpoint log group to that retention, and the hourly
    ``{"action": "log-retention"}`` sweep every endpoint's (:mod:`.deploy.log_retention`; ``logs``: CloudWatch Logs):
    after the decision, and never changing it.

    A busy stack makes it :func:`wait` when ``RETRY_SCHEDULE_GROUP`` is set (``scheduler`` is then used).

    ``runtime`` (sagemaker-runtime) is used, and by default created, only for groups in ``MULTI_MODEL``.
    """
    settings = from_environment()
    retry = settings.pop("retry")
    ledger = settings.pop("ledger")
    retention_days = settings.pop("log_retention_days")
    sns = sns or (boto3.client("sns") if settings["topic"] else None)
    sagemaker = sagemaker or boto3.client("sagemaker")
    s3 = s3 or boto3.client("s3")
    function_arn = getattr(context, "invoked_function_arn", None)

    if isinstance(event, Mapping) and event.get("action") == RECORD_RUN_ACTION:
        decision = record_run_by_hand(ledger, event, sagemaker=sagemaker, s3=s3, recorded_by=function_arn)
        LOG.info(json.dumps(decision, default=str))
        return decision
    if isinstance(event, Mapping) and event.get("action") == LOG_RETENTION_ACTION:
        summary = None if retention_days is None else endpoint_retention(
            cloudformation or sweep_stack_client(), logs or logs_client(), stack=settings["stack"],
            parameters=list(settings["parameters"].values()), days=retention_days, out_of_time=near_timeout(context))
        if summary is not None:
            publish_sweep(summary, context)  # what the endpoint-log-retention alarm reads
        decision = {"action": LOG_RETENTION_ACTION, "log_retention": summary}
        LOG.info(json.dumps(decision, default=str))
        return decision
    if isinstance(event, Mapping) and event.get("action") == RECORD_EXECUTION_ACTION:
        decision = record_execution(ledger, event, sagemaker=sagemaker, s3=s3, recorded_by=function_arn,
                                    notifier=lambda group: Notifier(sns, settings["topic"], group))
        LOG.info(json.dumps(decision, default=str))
        return decision

    def recorded(decision: Dict[str, Any]) -> Dict[str, Any]:
        """The decision with where the approval ledger recorded it (never raises: see record_decision)."""
        notify = Notifier(sns, settings["topic"], decision.get("group", ""))
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
            ledger=ledger,
            **settings,
        )
    except StackBusyError as busy:
        if retry is None:
            LOG.info(json.dumps(recorded(busy.decision), default=str))
            raise
        decision = wait(busy, retry, function_arn=function_arn,
                        scheduler=scheduler or boto3.client("scheduler"),
                        notify=Notifier(sns, settings["topic"], busy.decision.get("group", "")))
    except ClientError as error:
        # A failure Lambda retries (throttling, a 5xx): the attempt is a decision not taken yet, recorded as such.
        group, seen = parse_quietly(event)
        recorded({"group": group, "event": seen, "deployed": False, "outcome": "error", "reason": str(error)})
        raise
    decision = recorded(decision)
    runs = record_runs(ledger, event, decision, sagemaker=sagemaker, s3=s3, recorded_by=function_arn,
                       notify=Notifier(sns, settings["topic"], decision.get("group") or ""))
    if runs:
        decision = {**decision, "run_records": runs}
    if retention_days is not None and decision.get("parameter") and isinstance(event, Mapping) and event.get("action") == "reconcile":
        # After the decision (a stack that settled has its endpoints, and their groups usually exist by then), read
        # with the sweep's bounded client: a CloudFormation silent now would time the function out, and Lambda would
        # run again a decision already taken.
        decision = {**decision, "log_retention": endpoint_retention(
            cloudformation or sweep_stack_client(), logs or logs_client(), stack=settings["stack"],
            parameters=[decision["parameter"]], days=retention_days, out_of_time=near_timeout(context))}
    LOG.info(json.dumps(decision, default=str))
    return decision


def wait(busy: StackBusyError, retry: Retry, *, function_arn: Optional[str], scheduler: Any, notify: "Notifier",
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
            f"stack settles, {invoke_command({'action': 'reconcile', 'group': group})}.",
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
    ledger: Optional[Ledger] = None,
) -> Dict[str, Any]:
    """Bring the serving stack's parameter for the event's group to the desired version.

    Returns ``{"deployed": bool, "outcome": str, "reason": str, ...}``; calls ``UpdateStack`` at most
    once; raises :class:`StackBusyError` when the stack is mid-operation and would have to change, and the
    ``ClientError`` of an ``UpdateStack`` that may pass on a retry (:func:`transient`); an ``UpdateStack`` refused
    for good is notified once and returned as ``failed-to-start``. Before any change the version's artefact is verified against the digests recorded at registration
    (:func:`verify_artifact`, with ``s3``) and its evaluation report read where the function may read it (``ledger``:
    ``APPROVAL_LEDGER``, which names the artifacts bucket and each group's model; :func:`report_place`); a version that
    fails is refused and people are told. The
    update sets the package parameter and, for a model with its own container, its digest parameter.
    For a group in ``multi_model`` (default: none) the version is staged and smoke-tested first
    (:func:`_gate_multi_model`); ``runtime`` defaults to a boto3 client created only then.
    A ``reconcile`` action first checks that the endpoint serving the parameter's version exists
    (:func:`missing_endpoint`): when it does not, people are told how to re-create it and ``endpoint-missing`` is
    returned with that ``fix``; nothing is changed.
    """
    try:
        group, seen = parse(event)
    except Malformed as problem:
        return {"deployed": False, "outcome": "malformed", "reason": f"malformed event: {problem}", "event": preview(event)}
    if group not in parameters:
        return {
            "deployed": False,
            "outcome": "ignored",
            "reason": f"group {group!r} is not deployed by this function (MODEL_PARAMETERS)",
            "group": group,
        }
    parameter = parameters[group]
    base: Dict[str, Any] = {"group": group, "stack": stack, "parameter": parameter, "event": seen}
    notify = Notifier(sns, topic, group)

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
                f"{invoke_command({'action': 'reconcile', 'group': group})}.",
            )
        return {**base, "deployed": False, "outcome": "stack-missing", "reason": reason, "desired": brief(desired)}

    current = stack_parameters(described)
    if parameter not in current:
        reason = f"serving stack {stack} has no parameter {parameter}"
        notify("cannot deploy: stack parameter missing", f"{reason}; the serving stack and MODEL_PARAMETERS disagree, nothing was changed.")
        return {**base, "deployed": False, "outcome": "misconfigured", "reason": reason, "desired": brief(desired)}
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
                    "desired": brief(desired)}

    # A refusal is told by the registry event that met it, or by a wait's retry (its event waited before the checks),
    # not again by every settled-stack reconcile: each rollout of any model reconciles every group.
    tell_refusal = "action" not in seen or "waiting_since" in seen
    if desired is None:
        reason = "no Approved and Completed version in the group"
        if serving_arn and tell_refusal:
            notify(
                "nothing left to serve",
                f"{reason}; the endpoint keeps serving {label(serving_arn)} ({serving_arn}). Approve a version to deploy it.",
            )
        return {**base, "deployed": False, "outcome": "nothing-to-serve", "reason": reason}
    base["desired"] = brief(desired)

    refusal = problems(desired, group)
    if refusal:
        reason = f"v{desired.version} refused: " + "; ".join(refusal)
        if tell_refusal:
            notify(f"v{desired.version} refused", f"{reason}. The endpoint keeps serving {label(serving_arn)}.")
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
            f"it is not retried until someone decides again (re-approve v{held.version} to retry it - `"
            + rollback_command(_model_of(group, ledger, multi_model),
                               f'rollback --to-version {held.version} --reason "<why>"')
            + "`, or PendingManualApproval "
            "then Approved - or reject it or approve another version to move on)"
        )
        # The serving version rejected meanwhile: the one approved last before the held one serves instead.
        approved = serving_order(versions)  # approved[0] is the held one (select_desired)
        serving_approved = any(v.arn == serving_arn for v in approved)
        fallback = None if serving_approved else next(
            (v for v in approved[1:] if not problems(v, group) and failed_rollout(cloudformation, stack, v) is None), None)
        if fallback is None:
            reason += (f"; {label(serving_arn)} keeps serving" if serving_approved else
                       f"; {label(serving_arn)} keeps serving although it is no longer approved: no other approved "
                       "version can serve")
            if "action" not in seen:  # a registry event of this group, not a settled-stack or retry reconcile: tell people
                notify(f"v{held.version} held after its failed rollout", reason + ".")
            return {**base, "deployed": False, "outcome": "held", "reason": reason, "failed_rollout": failed}
        base["held"] = {"version": held.version, "reason": reason}
        desired = fallback
        base["desired"] = brief(desired)

    place = report_place(ledger, group)
    untrusted = _untrusted(s3, desired, place)
    if untrusted is not None:
        # The serving version rejected meanwhile: the one approved before the refused one that can serve, serves instead
        # (as after a held rollout), not the rejected one left serving.
        approved = serving_order(versions)
        fallback, passed_over = None, [{"version": desired.version, "reason": untrusted[1], "headline": untrusted[0]}]
        if serving_arn and not any(v.arn == serving_arn for v in approved):
            position = next(i for i, v in enumerate(approved) if v.arn == desired.arn)
            for candidate in approved[position + 1:]:
                if problems(candidate, group) or failed_rollout(cloudformation, stack, candidate) is not None:
                    continue
                refused_too = _untrusted(s3, candidate, place)
                if refused_too is None:
                    fallback = candidate
                    break
                passed_over.append({"version": candidate.version, "reason": refused_too[1], "headline": refused_too[0]})
        if fallback is None:
            headline, reason = untrusted
            rejected = "" if not serving_arn or any(v.arn == serving_arn for v in approved) else (
                " although it is no longer approved: no other approved version can serve")
            if tell_refusal:
                notify(headline, f"{reason}. The endpoint keeps serving {label(serving_arn)}{rejected}.")
            return {**base, "deployed": False, "outcome": "refused", "reason": reason}
        for refused in passed_over:
            notify(refused["headline"], f"{refused['reason']}. {label(serving_arn)}, which serves, is no longer approved: "
                   f"v{fallback.version}, approved before v{refused['version']}, is deployed instead.")
        base["passed_over"] = [{"version": p["version"], "reason": p["reason"]} for p in passed_over]
        desired = fallback
        base["desired"] = brief(desired)
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
                f"{reason}. {label(serving_arn)} keeps serving; it is tried again on the next approval event or after "
                f"the next successful update of the stack. Fix the cause, then approve again or "
                f"{invoke_command({'action': 'reconcile', 'group': group})}."
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
        f"deploying v{desired.version} (was {label(serving_arn)})",
        f"Updating {stack}: {parameter} {label(serving_arn)} -> v{desired.version} ({desired.arn}). {rollout}"
        + (f" The version approved last is held: {base['held']['reason']}." if "held" in base else ""),
    )
    no_reason = _no_reason(desired)
    if no_reason is not None:
        base["no_reason"] = no_reason
        notify(f"v{desired.version} approved without a reason", no_reason)
    return {
        **base,
        "deployed": True,
        "outcome": "deploying",
        "reason": f"{label(serving_arn)} -> v{desired.version}",
        "set": updates,
        "token": token,
    }


def _untrusted(s3: Any, version: Version, place: ReportPlace) -> "Optional[tuple[str, str]]":
    """(notice headline, reason) when ``version`` is refused on reading its artefact (:func:`verify_artifact`) or its
    evaluation report (:func:`gate_problems`, which refuses a report outside ``place``: the headline says whether the
    gate failed or could not be checked); None when it may serve."""
    untrusted = verify_artifact(s3, version)
    if untrusted:
        return f"v{version.version} refused: artefact not verified", f"v{version.version} refused: " + "; ".join(untrusted)
    failed_gate = gate_problems(s3, version, place)
    if failed_gate:
        gate = "failed" if says_gate_failed(failed_gate) else "not checked"
        return f"v{version.version} refused: promotion gate {gate}", f"v{version.version} refused: " + "; ".join(failed_gate)
    return None


def _model_of(group: str, ledger: Optional[Ledger], multi_model: Optional[Mapping[str, Mapping[str, str]]]) -> Optional[str]:
    """The config's name of ``group``'s model (the ``--model`` of the project's CLI): from ``APPROVAL_LEDGER``'s
    group_prefix, else the group's ``MULTI_MODEL`` entry; None when neither says."""
    if ledger is not None and group in ledger.models:
        return ledger.models[group]
    return ((multi_model or {}).get(group) or {}).get("model")


def _no_reason(version: Version) -> Optional[str]:
    """What to tell people when ``version`` was approved by a decision that records no reason (an empty
    ``ApprovalDescription``); None when it records one, or when no decision followed its registration (registered
    ``Approved`` by the pipeline under ``training.auto_approve``, which writes no description).

    Told, not refused: a missing reason is a record to complete (the audit counts it a gap), not an unsafe model, and a
    refusal would also block the fallback to such a version (approved before this check, or by a bare CLI call) when
    the serving one is rejected, leaving the rejected one serving."""
    if version.approval_description.strip() or version.approved_at <= version.created:
        return None
    return (f"v{version.version} was approved with an empty ApprovalDescription: it deploys, but a decision without its "
            "reason is an audit gap (--fail-on-gaps stops a release of it). Record why by approving it again with one (it "
            f"stays the version that serves): aws sagemaker update-model-package --model-package-arn {version.arn} "
            f'--model-approval-status Approved --approval-description "<why>" --region {_region_of(version.arn)}')


def _gate_multi_model(
    member: Mapping[str, str],
    desired: Version,
    base: Dict[str, Any],
    notify: "Notifier",
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
    serving = label(serving_arn)
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


def _refuse_event_version(
    versions: List[Version], seen: Mapping[str, Any], group: str, notify: Notifier, *, desired: Optional[Version]
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


def _region_of(arn: str) -> str:
    """The region of ``arn`` for the ``--region`` of a command a notice gives; the function's own when it has none."""
    return region_of_arn(arn) or os.environ.get("AWS_REGION", "<region>")
