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
5. publishes ``ParityMismatch`` for the endpoint, in its own namespace ``<endpoint>/rollout``
   (``contract.parity_namespace``): 0 when the answers agree, 1 when they differ **or the check could not be made**
   (no new-version answer, an unreadable artefact or tolerance, API errors, its own time budget spent, any error of
   this code): a check that cannot run must not let a rollout through. Endpoint calls have bounded waits and no
   hidden retries, and the loop stops 20 s before the function's timeout, so the verdict is published. The
   endpoint's rollback alarm ``<endpoint>-rollout-parity`` fires on a 1 in any of the last 5 minutes, and SageMaker
   returns the endpoint to the old fleet; the CloudFormation update then fails and rolls the stack's package
   parameter back.

What this cannot catch: a function that does not run at all during the bake (throttled past it, or an outage).
Its errors and dead-lettered events alarm to the notification topic (``<prefix>-rollout-parity-errors`` /
``-dead-letters``), so people learn that a rollout went out unchecked.

A mismatch or an unverified check is also published to ``TOPIC_ARN`` with the reasons (people learn what
differed, not only that the deployment rolled back). Every decision is logged as one JSON line and returned;
an event for another endpoint or another state is ignored (no metric).

**The first version** (``check: first-version``). An endpoint's creation - the serving stack creates it on the first
approval - runs no blue/green deployment, so no deployment event comes and no bake could roll anything back. The
same function also takes SageMaker's "SageMaker Endpoint State Change" events of these endpoints that say
``IN_SERVICE`` and checks the version the endpoint serves under the config it was created with, whole traffic on it
(3 attempts, pausing ``FIRST_VERSION_PAUSES`` seconds after each failed one, within the function's time):

1. DescribeEndpoint: it must be ``InService`` (an update started since has its own bake), and the endpoint config it
   serves must be no younger than the endpoint (a config made later came with a blue/green rollout, whose bake was
   checked: that event is ignored);
2. that config's model package must still be ``Approved``, under an approval no later than the endpoint's creation:
   a version rejected since, or approved again after the endpoint was created (a person accepting it after a failed
   check), is left to that decision;
3. the request and comparison are the rollout's. A mismatch or an unverified check is published to ``TOPIC_ARN``;
   **the check changes nothing**: only the approver changes approval. The notice says what failed and, for a known
   version, the approver's command that rejects it (``decide``); the deploy handler then rolls back to the version
   approved before it, if any (its bake checked), else the endpoint keeps serving it and people are told nothing is
   left to serve. No rollback metric is published (no rollout bakes; a 1 would still be in the alarm's window when
   the next rollout starts).

An autoscaling update (``UpdateEndpointWeightsAndCapacities``: ``Updating`` then ``InService``) keeps the endpoint
config, so each one re-runs this check on a first version nobody decided about since: it only reads and invokes, a
pass is quiet, and a mismatch pages again (the version still serves unaccepted) - no signal in the event or in
DescribeEndpoint tells a scale event from the end of the creation without state of its own (``LastModifiedTime``
moves with both, and how long a creation takes has no bound to compare it with), and skipping on a guess could leave
a first version unchecked.

Runs on the stock Lambda Python runtime: standard library and boto3 only.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shlex
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

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
    parity_mismatches,
)
from pipeline_code.core.contract import parity_namespace
from pipeline_code.core.contract import S3_OBJECT_URI
from pipeline_code.handlers.s3_archive import ArchiveReadError, read_archive_member

LOG = logging.getLogger(__name__)
LOG.setLevel(logging.INFO)

BAKING = "Baking"
IN_SERVICE = "InService"
# The decision's "check" for an endpoint's first version (a rollout's decisions carry none).
FIRST_VERSION = "first-version"
# An approval description holds at most 1024 characters (UpdateModelPackage): the one the notice proposes fits.
MAX_DESCRIPTION = 1024
# Pauses (seconds) before the 2nd and 3rd call of a first version's check: an IN_SERVICE event may come with a scale-out
# still loading the fleet, and three calls in a row all meet it. 3 calls of at most 25 s (RUNTIME_CONFIG) and these
# pauses fit MAX_CHECK_SECONDS; a pause never runs past the check's deadline.
FIRST_VERSION_PAUSES = (5.0, 20.0)
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
RUNTIME_CONFIG = Config(connect_timeout=5, read_timeout=20, retries={"total_max_attempts": 1, "mode": "standard"})


class ParityUnverified(RuntimeError):
    """The check could not be made (the rollout is then treated as failing it)."""


def handler(event: Any, context: Any = None, *, sagemaker: Any = None, runtime: Any = None, s3: Any = None,
            cloudwatch: Any = None, sns: Any = None, clock: Callable[[], float] = time.monotonic,
            sleep: Callable[[float], None] = time.sleep) -> Dict[str, Any]:
    """Lambda entry point; the clients, the clock and the pause are injectable for tests. The check stops calling the
    endpoint ``DEADLINE_MARGIN_SECONDS`` before the function would time out, so a verdict is always published."""
    endpoints = json.loads(os.environ.get("PARITY_ENDPOINTS", "{}"))
    remaining = context.get_remaining_time_in_millis() / 1000 if context is not None else MAX_CHECK_SECONDS
    deadline = clock() + max(0.0, min(remaining - DEADLINE_MARGIN_SECONDS, MAX_CHECK_SECONDS))
    decision = check(event, endpoints, sagemaker=sagemaker or boto3.client("sagemaker"),
                     runtime=runtime or boto3.client("sagemaker-runtime", config=RUNTIME_CONFIG), s3=s3 or boto3.client("s3"),
                     deadline=deadline, clock=clock, sleep=sleep)
    first = decision.get("check") == FIRST_VERSION
    if decision["outcome"] != "ignored" and not first:
        (cloudwatch or boto3.client("cloudwatch")).put_metric_data(
            Namespace=parity_namespace(decision["endpoint"]),
            MetricData=[{"MetricName": PARITY_METRIC, "Dimensions": [{"Name": "EndpointName", "Value": decision["endpoint"]}],
                         "Value": 0.0 if decision["outcome"] == "passed" else 1.0, "Unit": "Count"}],
        )
    if decision["outcome"] in ("mismatch", "unverified") and os.environ.get("TOPIC_ARN"):
        (sns or boto3.client("sns")).publish(TopicArn=os.environ["TOPIC_ARN"], Subject=_subject(decision),
                                             Message=json.dumps(decision, indent=2, default=str))
    LOG.info(json.dumps(decision, default=str))
    return decision


def check(event: Any, endpoints: Mapping[str, Mapping[str, Any]], *, sagemaker: Any, runtime: Any, s3: Any,
          deadline: float = math.inf, clock: Callable[[], float] = time.monotonic,
          sleep: Callable[[float], None] = time.sleep) -> Dict[str, Any]:
    """The decision for one event: ``outcome`` ``ignored`` / ``passed`` / ``mismatch`` / ``unverified``, with why.

    Once the event names a covered endpoint whose deployment is baking, every failure - an API error, an
    unreadable artefact, a malformed answer, the deadline, a bug here - is ``unverified``, which fails the rollout.
    """
    if isinstance(event, Mapping) and event.get("detail-type") == ENDPOINT_EVENT:
        return check_first_version(event, endpoints, sagemaker=sagemaker, runtime=runtime, s3=s3, deadline=deadline,
                                   clock=clock, sleep=sleep)
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
                        s3: Any, deadline: float = math.inf, clock: Callable[[], float] = time.monotonic,
                        sleep: Callable[[float], None] = time.sleep) -> Dict[str, Any]:
    """The decision for an endpoint state change: the version the endpoint was created with, held to its CPU model's
    answers once the endpoint is in service (``check: first-version``); a mismatch or an unverified check says what
    the approver may do (``decide``) and changes nothing. Anything but a first version still approved as it was when
    the endpoint was created is ``ignored`` (see the module's docstring)."""
    detail = event.get("detail")
    endpoint = detail.get("EndpointName") if isinstance(detail, Mapping) else None
    if not isinstance(endpoint, str) or endpoint not in endpoints:
        return {"outcome": "ignored", "reason": f"not an endpoint this check covers: {endpoint!r}"}
    status = detail.get("EndpointStatus")
    # The event spells it IN_SERVICE (the Developer Guide's example), the API InService: either is in service.
    if not isinstance(status, str) or status.replace("_", "").lower() != IN_SERVICE.lower():
        return {"outcome": "ignored", "endpoint": endpoint, "reason": f"the endpoint is {status!r}, not in service"}
    decision: Dict[str, Any] = {"check": FIRST_VERSION, "endpoint": endpoint}
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
        verdict = _compare(decision, sagemaker=sagemaker, runtime=runtime, s3=s3, package=package, attempts=attempts_for(1.0),
                           deadline=deadline, clock=clock, description=description, pauses=FIRST_VERSION_PAUSES, sleep=sleep)
    except ParityUnverified as error:
        verdict = {**decision, "outcome": "unverified", "reason": str(error)}
    except Exception as error:  # noqa: BLE001 - whatever went wrong, people must hear that the version went unchecked
        verdict = {**decision, "outcome": "unverified", "reason": f"the check failed: {type(error).__name__}: {error}"[:1000]}
    if verdict["outcome"] in ("mismatch", "unverified"):
        verdict["decide"] = what_to_decide(verdict)
    return verdict


def what_to_decide(verdict: Mapping[str, Any]) -> str:
    """What the approver may do about a first version that failed its check (or could not be checked), for the notice:
    the version keeps serving, and the check changed nothing."""
    endpoint, package = verdict["endpoint"], verdict.get("model_package")
    if not package:
        return (f"{endpoint} keeps serving and nothing was changed: the check failed before it knew which version "
                "serves; see the reason. It runs again at the endpoint's next in-service event.")
    version = verdict.get("version", "?")
    region = package.split(":")[3] if package.count(":") >= 5 else "<region>"
    what = "does not match its CPU model" if verdict["outcome"] == "mismatch" else "could not be checked"
    reason = (f"parity check of {endpoint}'s first version: it {what} ({verdict.get('reason', '')})")[:MAX_DESCRIPTION]
    reject = (f"aws sagemaker update-model-package --model-package-arn {package} --model-approval-status Rejected "
              f"--approval-description {shlex.quote(reason)} --region {region}")
    accept = (f"aws sagemaker update-model-package --model-package-arn {package} --model-approval-status Approved "
              f"--approval-description 'parity reviewed: <why>' --region {region}")
    return (f"v{version} keeps serving on {endpoint} (nothing earlier on it to roll back to) and the check changed "
            f"nothing: only the approver decides. To stop it serving, as the approver role: {reject} - the deploy "
            "handler then rolls back to the version approved before it, if any (its bake checked), else the endpoint "
            "keeps serving it and people are told nothing is left to serve. To accept it, as the approver role: "
            f"{accept} (this check then leaves it alone). Until one of these, every in-service event of {endpoint} "
            "(an autoscaling update) checks it again.")


def _compare(decision: Dict[str, Any], *, sagemaker: Any, runtime: Any, s3: Any, package: str, attempts: int,
             deadline: float, clock: Callable[[], float], description: Optional[Mapping[str, Any]] = None,
             pauses: Sequence[float] = (), sleep: Callable[[float], None] = time.sleep) -> Dict[str, Any]:
    """``decision`` judged: the package's parity request sent until its version answers, the answers compared
    (``passed`` / ``mismatch``); raises :class:`ParityUnverified` (or anything) when the check cannot be made."""
    parity = _parity(sagemaker, s3, package, description)
    answers, calls = _new_version_answers(runtime, decision["endpoint"], parity["request"], decision["version"], attempts,
                                          deadline=deadline, clock=clock, pauses=pauses, sleep=sleep)
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
    match = S3_OBJECT_URI.match(url)
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
                         deadline: float = math.inf, clock: Callable[[], float] = time.monotonic,
                         pauses: Sequence[float] = (), sleep: Callable[[float], None] = time.sleep) -> Tuple[List[Any], int]:
    """The predictions of the first answer that comes from ``version``, and how many calls it took. Before call
    ``n + 2`` it pauses ``pauses[n]`` seconds (none past the list's end); a pause that would reach ``deadline`` ends
    the check (out of time) instead."""
    body = json.dumps(request, separators=(",", ":")).encode("utf-8")
    seen: Dict[str, int] = {}
    last_error: Optional[str] = None
    for call in range(1, attempts + 1):
        pause = pauses[call - 2] if 2 <= call <= len(pauses) + 1 else 0.0
        if pause and clock() + pause < deadline:
            sleep(pause)
        elif pause or clock() > deadline:  # a pause that would reach the deadline leaves no time for the call either
            raise ParityUnverified(f"out of time after {call - 1} calls to {endpoint}: version {version} had not answered "
                                   f"(answers: {_versions(seen)}" + (f"; last error: {last_error}" if last_error else "") + ")")
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
        # Nothing to roll back to and nothing changed: the notice says the version serves until the approver decides.
        return f"{decision['endpoint']}: first version v{decision.get('version', '?')} {what}; still serving"[:100]
    return f"{decision['endpoint']}: v{decision.get('version', '?')} {what}; the rollout rolls back"[:100]
