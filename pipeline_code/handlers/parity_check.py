"""Hold a new version on an Inferentia2 endpoint to its CPU model's scores while the rollout bakes.

Invoked by an EventBridge rule on SageMaker's "SageMaker Endpoint Deployment State Change" events of the
endpoints in ``PARITY_ENDPOINTS`` whose pending deployment is ``Baking`` (SageMaker Developer Guide,
"Events that Amazon SageMaker AI sends to Amazon EventBridge": the event carries
``PendingDeploymentSummary.EndpointConfigName`` and each variant's ``VariantStatus``). For such an event it

1. checks with DescribeEndpoint that the endpoint is still updating to that config (a late or repeated event of a
   finished or rolled-back deployment is ignored), then finds the version being rolled out: the pending endpoint
   config's model, that model's model package;
2. reads ``parity.json`` from the package's sealed ``model.tar.gz`` (streamed, bounded): the request of
   test records and the CPU model's answers the evaluation job recorded (:mod:`pipeline_code.core.compiled`);
3. sends that request to the endpoint until the *new* version answers (JSON answers name ``model.version``;
   during a canary bake most calls still reach the old fleet, so it tries up to enough times that a new fleet
   taking ``share`` of the traffic is missed with probability below 1e-4, at most ``MAX_ATTEMPTS``);
4. compares the answers with :func:`~pipeline_code.core.compiled.parity_mismatches` (the artefact's tolerance);
5. publishes ``mlops-loop/rollout ParityMismatch`` for the endpoint: 0 when the answers agree, 1 when they
   differ **or the check could not be made** (no new-version answer, an unreadable artefact or tolerance, API
   errors, its own time budget spent, any error of this code): a check that cannot run must not let a rollout
   through. Endpoint calls have bounded waits and no hidden retries, and the loop stops 20 s before the
   function's timeout, so the verdict is published. The endpoint's rollback alarm ``<endpoint>-rollout-parity``
   fires on a 1 in any of the last 5 minutes, and SageMaker returns the endpoint to the old fleet; the
   CloudFormation update then fails and rolls the stack's package parameter back.

What this cannot catch: a function that does not run at all during the bake (throttled past it, or an outage).
Its errors and dead-lettered events alarm to the notification topic (``<prefix>-rollout-parity-errors`` /
``-dead-letters``), so people learn that a rollout went out unchecked.

A mismatch or an unverified check is also published to ``TOPIC_ARN`` with the reasons (people learn what
differed, not only that the deployment rolled back). Every decision is logged as one JSON line and returned;
an event for another endpoint or another state is ignored (no metric).

**The first version** (``check: first-version``). An endpoint's creation - the serving stack creates it on the first
approval - runs no blue/green deployment, so no deployment event comes and no bake could roll anything back. The
same function also takes SageMaker's "SageMaker Endpoint State Change" events of these endpoints that say
``IN_SERVICE`` and checks the version the endpoint was created with, whole traffic on it (3 attempts):

1. DescribeEndpoint: it must be ``InService`` (an update started since has its own bake), and the endpoint config it
   serves must be no younger than the endpoint (a config made later came with a blue/green rollout, whose bake was
   checked: that event is ignored, as after autoscaling or a finished rollout);
2. that config's model package must still be ``Approved``, under an approval no later than the endpoint's creation:
   a version rejected since (by this check on an earlier delivery of the event, or by a person) or approved again
   after the endpoint was created (a person accepting it after a failed check) is left to that decision;
3. the request and comparison are the rollout's. A mismatch or an unverified check is published to ``TOPIC_ARN``
   and the version is **held**: rejected in the registry (``UpdateModelPackage``, status ``Rejected`` with the reason
   as its ``ApprovalDescription``; the role may set no other status and no registered property). There is nothing to
   roll back to on the endpoint: the deploy handler reacts to the rejection as to any - a version approved earlier
   that may serve is rolled out (blue/green, its bake checked), else the endpoint keeps serving this one and people
   are told nothing is left to serve. The approver decides: approve it again to accept it (this check then leaves
   it alone), or approve another version. No rollback metric is published (no rollout bakes; a 1 would still be in
   the alarm's window when the next rollout starts).

Runs on the stock Lambda Python runtime: standard library and boto3 only.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from pipeline_code.core import approval as approval_rule
from pipeline_code.core.compiled import (
    DEPLOYMENT_EVENT,
    ENDPOINT_EVENT,
    PARITY_FILE,
    PARITY_FORMAT,
    PARITY_METRIC,
    PARITY_NAMESPACE,
    parity_mismatches,
)
from pipeline_code.handlers.s3_archive import S3_URI, ArchiveReadError, read_archive_member

LOG = logging.getLogger(__name__)
LOG.setLevel(logging.INFO)

BAKING = "Baking"
IN_SERVICE = "InService"
# The decision's "check" for an endpoint's first version (a rollout's decisions carry none).
FIRST_VERSION = "first-version"
# An approval description holds at most 1024 characters (UpdateModelPackage).
MAX_DESCRIPTION = 1024
JSON_TYPE = "application/json"
MAX_PARITY_BYTES = 16 * 1024 * 1024
# A new fleet serving `share` of the traffic is missed by every call with probability (1 - share)^attempts.
MISS_PROBABILITY = 1e-4
MAX_ATTEMPTS = 2000
# The check's own time budget (the function's timeout is a little longer), and how long before the function would time
# out it stops calling the endpoint so that the verdict is still published.
MAX_CHECK_SECONDS = 150.0
DEADLINE_MARGIN_SECONDS = 20.0
# A parity sample whose tolerance is not a number in (0, 0.1] cannot hold anything to anything (NaN passes everything).
MAX_TOLERANCE = 0.1
# One attempt per call, bounded waits: a hanging new fleet must not use the function's time up (the loop retries).
RUNTIME_CONFIG = Config(connect_timeout=5, read_timeout=20, retries={"max_attempts": 1, "mode": "standard"})


class ParityUnverified(RuntimeError):
    """The check could not be made (the rollout is then treated as failing it)."""


def handler(event: Any, context: Any = None, *, sagemaker: Any = None, runtime: Any = None, s3: Any = None,
            cloudwatch: Any = None, sns: Any = None, clock: Callable[[], float] = time.monotonic) -> Dict[str, Any]:
    """Lambda entry point; the clients and the clock are injectable for tests. The check stops calling the endpoint
    ``DEADLINE_MARGIN_SECONDS`` before the function would time out, so a verdict is always published."""
    endpoints = json.loads(os.environ.get("PARITY_ENDPOINTS", "{}"))
    remaining = context.get_remaining_time_in_millis() / 1000 if context is not None else MAX_CHECK_SECONDS
    deadline = clock() + max(0.0, min(remaining - DEADLINE_MARGIN_SECONDS, MAX_CHECK_SECONDS))
    decision = check(event, endpoints, sagemaker=sagemaker or boto3.client("sagemaker"),
                     runtime=runtime or boto3.client("sagemaker-runtime", config=RUNTIME_CONFIG), s3=s3 or boto3.client("s3"),
                     deadline=deadline, clock=clock)
    first = decision.get("check") == FIRST_VERSION
    if decision["outcome"] != "ignored" and not first:
        (cloudwatch or boto3.client("cloudwatch")).put_metric_data(
            Namespace=PARITY_NAMESPACE,
            MetricData=[{"MetricName": PARITY_METRIC, "Dimensions": [{"Name": "EndpointName", "Value": decision["endpoint"]}],
                         "Value": 0.0 if decision["outcome"] == "passed" else 1.0, "Unit": "Count"}],
        )
    if decision["outcome"] in ("mismatch", "unverified") and os.environ.get("TOPIC_ARN"):
        (sns or boto3.client("sns")).publish(TopicArn=os.environ["TOPIC_ARN"], Subject=_subject(decision),
                                             Message=json.dumps(decision, indent=2, default=str))
    LOG.info(json.dumps(decision, default=str))
    return decision


def check(event: Any, endpoints: Mapping[str, Mapping[str, Any]], *, sagemaker: Any, runtime: Any, s3: Any,
          deadline: float = math.inf, clock: Callable[[], float] = time.monotonic) -> Dict[str, Any]:
    """The decision for one event: ``outcome`` ``ignored`` / ``passed`` / ``mismatch`` / ``unverified``, with why.

    Once the event names a covered endpoint whose deployment is baking, every failure - an API error, an
    unreadable artefact, a malformed answer, the deadline, a bug here - is ``unverified``, which fails the rollout.
    """
    if isinstance(event, Mapping) and event.get("detail-type") == ENDPOINT_EVENT:
        return check_first_version(event, endpoints, sagemaker=sagemaker, runtime=runtime, s3=s3, deadline=deadline,
                                   clock=clock)
    if not isinstance(event, Mapping) or event.get("detail-type") != DEPLOYMENT_EVENT:
        return {"outcome": "ignored", "reason": f"not a {DEPLOYMENT_EVENT!r} or {ENDPOINT_EVENT!r} event"}
    detail = event.get("detail")
    endpoint = detail.get("EndpointName") if isinstance(detail, Mapping) else None
    if not isinstance(endpoint, str) or endpoint not in endpoints:
        return {"outcome": "ignored", "reason": f"not an endpoint this check covers: {endpoint!r}"}
    pending = detail.get("PendingDeploymentSummary") if isinstance(detail.get("PendingDeploymentSummary"), Mapping) else {}
    config = pending.get("EndpointConfigName")
    if not config or not _baking(pending):
        return {"outcome": "ignored", "endpoint": endpoint, "reason": "no pending deployment is baking"}
    decision: Dict[str, Any] = {"endpoint": endpoint, "endpoint_config": config}
    try:
        if not _still_deploying(sagemaker, endpoint, config):
            # A late or repeated event of a deployment that finished or rolled back: judging it now would page people
            # about the old version answering, and could trip the alarm during the next rollout.
            return {**decision, "outcome": "ignored", "reason": f"{endpoint} is no longer deploying {config}"}
        package, version = _pending_package(sagemaker, config)
        decision.update(model_package=package, version=version)
        share = float(endpoints[endpoint].get("share", 1.0))
        return _compare(decision, sagemaker=sagemaker, runtime=runtime, s3=s3, package=package, attempts=attempts_for(share),
                        deadline=deadline, clock=clock)
    except ParityUnverified as error:
        return {**decision, "outcome": "unverified", "reason": str(error)}
    except Exception as error:  # noqa: BLE001 - whatever went wrong, the rollout must not pass unchecked
        return {**decision, "outcome": "unverified", "reason": f"the check failed: {type(error).__name__}: {error}"[:1000]}


def check_first_version(event: Mapping[str, Any], endpoints: Mapping[str, Mapping[str, Any]], *, sagemaker: Any, runtime: Any,
                        s3: Any, deadline: float = math.inf, clock: Callable[[], float] = time.monotonic) -> Dict[str, Any]:
    """The decision for an endpoint state change: the version the endpoint was created with, held to its CPU model's
    answers once the endpoint is in service (``check: first-version``); a mismatch or an unverified check also rejects
    it in the registry (``held``). Anything but a first version still approved as it was when the endpoint was created
    is ``ignored`` (see the module's docstring)."""
    detail = event.get("detail")
    endpoint = detail.get("EndpointName") if isinstance(detail, Mapping) else None
    if not isinstance(endpoint, str) or endpoint not in endpoints:
        return {"outcome": "ignored", "reason": f"not an endpoint this check covers: {endpoint!r}"}
    status = detail.get("EndpointStatus")
    # The event spells it IN_SERVICE (the Developer Guide's example), the API InService: either is in service.
    if not isinstance(status, str) or status.replace("_", "").lower() != IN_SERVICE.lower():
        return {"outcome": "ignored", "endpoint": endpoint, "reason": f"the endpoint is {status!r}, not in service"}
    decision: Dict[str, Any] = {"check": FIRST_VERSION, "endpoint": endpoint}
    # Set once the version is known to be the first one, approved as when the endpoint was created: only then may a
    # failed check reject it (a failure before that cannot tell whether a person has decided since).
    holdable: Optional[str] = None
    try:
        try:
            described = sagemaker.describe_endpoint(EndpointName=endpoint)
        except (ClientError, BotoCoreError) as error:
            raise ParityUnverified(f"cannot describe endpoint {endpoint}: {error}") from error
        config = described.get("EndpointConfigName")
        decision["endpoint_config"] = config
        if described.get("EndpointStatus") != IN_SERVICE or not config:
            return {**decision, "outcome": "ignored",
                    "reason": f"{endpoint} is {described.get('EndpointStatus')} now: an update has its own bake"}
        created = described["CreationTime"]
        variants, config_created = _endpoint_config(sagemaker, config)
        if config_created > created:
            # A config younger than the endpoint came with a blue/green rollout, and that rollout's bake was checked.
            return {**decision, "outcome": "ignored",
                    "reason": f"{endpoint} serves {config}, made after the endpoint: its rollout's bake was checked"}
        package, version = _package_of(sagemaker, config, variants)
        decision.update(model_package=package, version=version)
        description = _describe_package(sagemaker, package)
        standing = description.get("ModelApprovalStatus")
        approved_at = approval_rule.approval_time(description.get("LastModifiedTime"), description["CreationTime"])
        if standing != approval_rule.APPROVED:
            return {**decision, "outcome": "ignored", "reason": f"v{version} is {standing}: that decision stands"}
        if approved_at > created:
            return {**decision, "outcome": "ignored",
                    "reason": f"v{version} was approved again after {endpoint} was created: that decision stands"}
        holdable = package
        verdict = _compare(decision, sagemaker=sagemaker, runtime=runtime, s3=s3, package=package, attempts=attempts_for(1.0),
                           deadline=deadline, clock=clock, description=description)
    except ParityUnverified as error:
        verdict = {**decision, "outcome": "unverified", "reason": str(error)}
    except Exception as error:  # noqa: BLE001 - whatever went wrong, the version must not pass unchecked
        verdict = {**decision, "outcome": "unverified", "reason": f"the check failed: {type(error).__name__}: {error}"[:1000]}
    if verdict["outcome"] in ("mismatch", "unverified"):
        verdict["held"] = _hold(sagemaker, holdable, verdict)
        verdict["decide"] = _what_to_decide(verdict)
    return verdict


def _what_to_decide(verdict: Mapping[str, Any]) -> str:
    """What the approver may do now, for the notice."""
    version, endpoint = verdict.get("version", "?"), verdict["endpoint"]
    accept = (f"approve it again to accept it (as the approver role: aws sagemaker update-model-package --model-package-arn "
              f"{verdict.get('model_package', '<arn>')} --model-approval-status Approved --approval-description '<why>')")
    if verdict.get("held") == "rejected in the registry":
        return (f"v{version} keeps serving on {endpoint} (there is no earlier version on it to roll back to) and is rejected: "
                "if a version approved before it may serve, the deploy handler rolls that one out now (its bake is checked); "
                f"else {accept}, or approve another version to replace it.")
    return (f"v{version} keeps serving on {endpoint} and was not rejected: look at the reason, then reject it or approve "
            "another version to replace it, or leave it approved to accept it.")


def _hold(sagemaker: Any, package: Optional[str], verdict: Mapping[str, Any]) -> str:
    """Reject ``package`` in the registry with the verdict as its approval description; what happened, in words."""
    if not package:
        return ("not rejected: the check failed before it could tell which version serves and that it is still approved "
                "as when the endpoint was created; see the reason")
    what = "does not match its CPU model" if verdict["outcome"] == "mismatch" else "could not be checked"
    description = (f"rejected by the parity check of {verdict['endpoint']}'s first version: it {what} "
                   f"({verdict.get('reason', '')}); approve it again to accept it")[:MAX_DESCRIPTION]
    try:
        sagemaker.update_model_package(ModelPackageArn=package, ModelApprovalStatus=approval_rule.REJECTED,
                                       ApprovalDescription=description)
    except (ClientError, BotoCoreError) as error:
        return f"not rejected: UpdateModelPackage failed ({str(error)[:300]}); reject it by hand or approve it to accept it"
    return "rejected in the registry"


def _compare(decision: Dict[str, Any], *, sagemaker: Any, runtime: Any, s3: Any, package: str, attempts: int,
             deadline: float, clock: Callable[[], float], description: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """``decision`` judged: the package's parity request sent until its version answers, the answers compared
    (``passed`` / ``mismatch``); raises :class:`ParityUnverified` (or anything) when the check cannot be made."""
    parity = _parity(sagemaker, s3, package, description)
    answers, calls = _new_version_answers(runtime, decision["endpoint"], parity["request"], decision["version"], attempts,
                                          deadline=deadline, clock=clock)
    decision["calls"] = calls
    problems = parity_mismatches(parity["expected"], answers, float(parity["tolerance"]))
    decision.update(records=len(answers), tolerance=parity["tolerance"])
    if problems:
        return {**decision, "outcome": "mismatch", "reason": "; ".join(problems)}
    return {**decision, "outcome": "passed"}


def _still_deploying(sagemaker: Any, endpoint: str, config: str) -> bool:
    """Whether ``endpoint`` is still updating to ``config`` (DescribeEndpoint's PendingDeploymentSummary)."""
    try:
        described = sagemaker.describe_endpoint(EndpointName=endpoint)
    except (ClientError, BotoCoreError) as error:
        raise ParityUnverified(f"cannot describe endpoint {endpoint}: {error}") from error
    pending = described.get("PendingDeploymentSummary") or {}
    return described.get("EndpointStatus") == "Updating" and pending.get("EndpointConfigName") == config


def attempts_for(share: float) -> int:
    """Calls needed so that a fleet taking ``share`` of the traffic answers at least one with probability 1 - 1e-4."""
    if share >= 1.0:
        return 3  # every call reaches the new fleet; retries cover a transient error
    share = max(share, 1e-3)
    return min(MAX_ATTEMPTS, math.ceil(math.log(MISS_PROBABILITY) / math.log(1.0 - share)))


def _baking(pending: Mapping[str, Any]) -> bool:
    for variant in pending.get("ProductionVariants") or []:
        for status in (variant.get("VariantStatus") or []) if isinstance(variant, Mapping) else []:
            if isinstance(status, Mapping) and status.get("Status") == BAKING:
                return True
    return False


def _pending_package(sagemaker: Any, config: str) -> Tuple[str, str]:
    """The model package ARN and version the pending endpoint config serves."""
    variants, _ = _endpoint_config(sagemaker, config)
    return _package_of(sagemaker, config, variants)


def _endpoint_config(sagemaker: Any, config: str) -> Tuple[List[Any], Any]:
    """The config's production variants and its creation time."""
    try:
        described = sagemaker.describe_endpoint_config(EndpointConfigName=config)
        return described["ProductionVariants"], described["CreationTime"]
    except (ClientError, BotoCoreError, KeyError) as error:
        raise ParityUnverified(f"cannot find the model of endpoint config {config}: {error}") from error


def _package_of(sagemaker: Any, config: str, variants: List[Any]) -> Tuple[str, str]:
    """The model package ARN and version of the config's (first) variant's model."""
    try:
        model = sagemaker.describe_model(ModelName=variants[0]["ModelName"])
    except (ClientError, BotoCoreError, KeyError, IndexError, TypeError) as error:
        raise ParityUnverified(f"cannot find the model of endpoint config {config}: {error}") from error
    containers = model.get("Containers") or ([model["PrimaryContainer"]] if model.get("PrimaryContainer") else [])
    package = containers[0].get("ModelPackageName") if containers else None
    if not package:
        raise ParityUnverified(f"model {model.get('ModelName')} of endpoint config {config} names no model package")
    return package, package.rsplit("/", 1)[-1]


def _describe_package(sagemaker: Any, package: str) -> Mapping[str, Any]:
    try:
        return sagemaker.describe_model_package(ModelPackageName=package)
    except (ClientError, BotoCoreError) as error:
        raise ParityUnverified(f"cannot read the model data of {package}: {error}") from error


def _parity(sagemaker: Any, s3: Any, package: str, description: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """The package's parity sample (``description``: its DescribeModelPackage answer, read when not given)."""
    description = description if description is not None else _describe_package(sagemaker, package)
    try:
        url = description["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    except (KeyError, IndexError, TypeError) as error:
        raise ParityUnverified(f"cannot read the model data of {package}: {error}") from error
    match = S3_URI.match(url)
    if not match:
        raise ParityUnverified(f"{package}: model data {url!r} is not an s3:// object")
    try:
        raw = read_archive_member(s3, match.group(1), match.group(2), PARITY_FILE, max_member_bytes=MAX_PARITY_BYTES,
                                  what="a parity sample")
        parity = json.loads(raw.decode("utf-8"))
    except ArchiveReadError as error:
        raise ParityUnverified(f"{package}: {error}") from error
    except (UnicodeDecodeError, ValueError) as error:
        raise ParityUnverified(f"{package}: {PARITY_FILE} is not JSON: {error}") from error
    if not isinstance(parity, dict) or parity.get("format") != PARITY_FORMAT or not isinstance(parity.get("expected"), list) \
            or not isinstance(parity.get("request"), dict):
        raise ParityUnverified(f"{package}: {PARITY_FILE} is not a {PARITY_FORMAT} sample (request, expected, tolerance)")
    tolerance = parity.get("tolerance")
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not 0 < tolerance <= MAX_TOLERANCE:
        raise ParityUnverified(f"{package}: {PARITY_FILE} tolerance must be a number in (0, {MAX_TOLERANCE}], got {tolerance!r}")
    return parity


def _new_version_answers(runtime: Any, endpoint: str, request: Mapping[str, Any], version: str, attempts: int, *,
                         deadline: float = math.inf, clock: Callable[[], float] = time.monotonic) -> Tuple[List[Any], int]:
    """The predictions of the first answer that comes from ``version``, and how many calls it took."""
    body = json.dumps(request, separators=(",", ":")).encode("utf-8")
    seen: Dict[str, int] = {}
    last_error: Optional[str] = None
    for call in range(1, attempts + 1):
        if clock() > deadline:
            raise ParityUnverified(f"out of time after {call - 1} calls to {endpoint}: version {version} had not answered "
                                   f"(answers: {_versions(seen)})")
        try:
            response = runtime.invoke_endpoint(EndpointName=endpoint, ContentType=JSON_TYPE, Accept=JSON_TYPE, Body=body)
            answer = json.loads(response["Body"].read().decode("utf-8"))
        except (ClientError, BotoCoreError, UnicodeDecodeError, ValueError) as error:
            last_error = str(error)[:300]
            continue
        model = answer.get("model") if isinstance(answer, dict) else None
        answered = str(model.get("version")) if isinstance(model, dict) else "?"
        if answered == version:
            predictions = answer.get("predictions")
            if not isinstance(predictions, list):
                raise ParityUnverified(f"version {version} answered without a list of predictions: {str(answer)[:300]}")
            return predictions, call
        seen[answered] = seen.get(answered, 0) + 1
    raise ParityUnverified(f"version {version} answered none of {attempts} calls to {endpoint} (answers: {_versions(seen)}"
                           + (f"; last error: {last_error}" if last_error else "") + ")")


def _versions(seen: Mapping[str, int]) -> str:
    return ", ".join(f"v{v} x{n}" for v, n in sorted(seen.items())) or "none"


def _subject(decision: Mapping[str, Any]) -> str:
    what = "does not match its CPU model" if decision["outcome"] == "mismatch" else "could not be checked"
    if decision.get("check") == FIRST_VERSION:
        # Nothing to roll back to: the notice says the version serves and is held for the approver.
        held = "rejected" if decision.get("held") == "rejected in the registry" else "NOT rejected"
        return f"{decision['endpoint']}: first version v{decision.get('version', '?')} {what}; serving, {held}"[:100]
    return f"{decision['endpoint']}: v{decision.get('version', '?')} {what}; the rollout rolls back"[:100]
