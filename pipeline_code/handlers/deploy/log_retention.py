"""The retention of the environment's endpoint log groups, which SageMaker creates on an endpoint's first log line
and which never expire until someone sets them (docs/deploying.md, Log groups SageMaker and Glue create).

No stack can own such a group (a template's ``AWS::Logs::LogGroup`` fails "already exists" once the endpoint has
logged), so the deploy handler sets it: after each reconcile (the serving stack settled, a retry, by hand) for the
endpoint of that reconcile's group, and on an hourly ``log-retention`` sweep for every endpoint the serving stack
names. The endpoints are read from the serving stack's ``<Model>EndpointName`` outputs (the environment's own, named
exactly), and each group is matched by its exact name: ``DescribeLogGroups`` answers every group whose name *starts*
with the one asked for (``<prefix>-churn`` also finds ``<prefix>-churn2`` and, for ``dev``, a ``dev-eu``
environment's), and those are never touched. A group set already is left alone; one not created yet (the endpoint has
not logged) is skipped, the next sweep sets it. Nothing here raises: a CloudWatch Logs or CloudFormation error is
logged and counted in the summary, so it never changes nor delays a rollout decision. Each sweep also publishes how
many groups it could not set (:func:`publish_sweep`: an embedded-metric log line), which the Operations stack's
``<prefix>-endpoint-log-retention`` alarm reads: a group that stays unset sweep after sweep pages, a passing throttle
does not (docs/deploying.md, Endpoint log retention alarm: what to do).
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from pipeline_code.core import emf
from pipeline_code.core.contract import (DEPLOY_HANDLER_DIMENSION, DEPLOY_HANDLER_NAMESPACE, LOG_RETENTION_ACTION,
                                         LOG_RETENTION_NOT_SET_METRIC, endpoint_output_names)

LOG = logging.getLogger(__name__)

__all__ = ["LOG_RETENTION_ACTION", "endpoint_log_group", "endpoint_retention", "publish_sweep", "served_endpoints",
           "set_retention"]
ENDPOINT_LOG_GROUP_PREFIX = "/aws/sagemaker/Endpoints/"


def endpoint_log_group(endpoint: str) -> str:
    """``/aws/sagemaker/Endpoints/<endpoint>``: where SageMaker writes the endpoint's container logs."""
    return f"{ENDPOINT_LOG_GROUP_PREFIX}{endpoint}"


def served_endpoints(stack: Optional[Dict[str, Any]], parameters: Iterable[str]) -> List[str]:
    """The endpoints the described serving ``stack`` names for the package ``parameters`` (their ``<Model>EndpointName``
    outputs; a batch model has none), each once, in order."""
    outputs = {o.get("OutputKey"): o.get("OutputValue") or "" for o in (stack or {}).get("Outputs", [])}
    found: List[str] = []
    for parameter in parameters:
        endpoint = outputs.get(endpoint_output_names(parameter)[0])
        if endpoint and endpoint not in found:
            found.append(endpoint)
    return found


def set_retention(logs: Any, endpoints: Sequence[str], days: int,
                  out_of_time: Optional[Callable[[], bool]] = None) -> Dict[str, Any]:
    """Set each endpoint's log group to ``days`` where its retention differs; never raises.

    Returns ``{"days", "set", "unchanged", "missing", "errors"}``: the groups set, those already at ``days``, those not
    created yet, and ``{"log_group", "error"}`` per group a call failed for (logged as a warning). When ``out_of_time()``
    says so before a group (the function's timeout is near), the groups left are not read but listed under
    ``deferred`` (the next sweep sets them): a timed-out invocation would be retried and reach the dead-letter queue.
    """
    summary: Dict[str, Any] = {"days": days, "set": [], "unchanged": [], "missing": [], "errors": []}
    for index, endpoint in enumerate(endpoints):
        name = endpoint_log_group(endpoint)
        if out_of_time is not None and out_of_time():
            summary["deferred"] = [endpoint_log_group(e) for e in endpoints[index:]]
            LOG.warning(json.dumps({"log_retention_deferred": summary["deferred"]}))
            break
        try:
            group = _exactly(logs, name)
            if group is None:
                summary["missing"].append(name)
            elif group.get("retentionInDays") == days:
                summary["unchanged"].append(name)
            else:
                logs.put_retention_policy(logGroupName=name, retentionInDays=days)
                summary["set"].append(name)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                summary["missing"].append(name)  # deleted between the two calls
                continue
            summary["errors"].append(_failed(name, error))
        except BotoCoreError as error:  # no connection, a timeout: the next reconcile or sweep tries again
            summary["errors"].append(_failed(name, error))
    return summary


def endpoint_retention(cloudformation: Any, logs: Any, *, stack: str, parameters: Iterable[str], days: int,
                       described: Optional[Dict[str, Any]] = None,
                       out_of_time: Optional[Callable[[], bool]] = None) -> Dict[str, Any]:
    """:func:`set_retention` for the endpoints the serving ``stack`` (``described``, else described now) names for
    ``parameters``; never raises (a failed DescribeStacks is one counted error)."""
    if described is None:
        try:
            described = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
        except (ClientError, BotoCoreError) as error:
            summary = set_retention(logs, (), days)
            summary["errors"].append(_failed(stack, error))
            return summary
    return set_retention(logs, served_endpoints(described, parameters), days, out_of_time)


def not_set(summary: Dict[str, Any]) -> List[str]:
    """The groups (or the serving stack, when it could not be read) a summary of :func:`set_retention` left unset: a
    failed call or deferred for time."""
    return [e["log_group"] for e in summary.get("errors", [])] + list(summary.get("deferred", []))


def metric_line(summary: Dict[str, Any], function_name: str, now_ms: Optional[int] = None) -> Dict[str, Any]:
    """One sweep's CloudWatch embedded-metric log line: ``EndpointLogGroupsNotSet`` (:func:`not_set`, 0 when every
    group is set, unchanged or not created yet) of the function ``function_name``, with the groups' names."""
    groups = not_set(summary)
    return emf.metric_line(DEPLOY_HANDLER_NAMESPACE, {DEPLOY_HANDLER_DIMENSION: function_name},
                           {LOG_RETENTION_NOT_SET_METRIC: len(groups)},
                           at_ms=int(time.time() * 1000) if now_ms is None else now_ms, log_retention_not_set=groups)


def publish_sweep(summary: Dict[str, Any], context: Any = None) -> None:
    """Print :func:`metric_line` for a sweep's ``summary`` (Lambda's log line becomes the metric: no API call, no
    permission), for the function the Lambda ``context`` (else ``AWS_LAMBDA_FUNCTION_NAME``) names; never raises. Only
    the hourly sweep publishes (not a reconcile's one group), so the alarm counts sweeps."""
    name = getattr(context, "function_name", None) or os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
    if not isinstance(name, str) or not name:
        LOG.warning(json.dumps({"log_retention_metric_skipped": "no function name (not running in Lambda)",
                                "log_retention_not_set": not_set(summary)}))
        return
    print(json.dumps(metric_line(summary, name)), flush=True)


# The CloudWatch Logs client the handler sets retention with: each call bounded (a default client waits 60 s to connect
# and 60 s for an answer, for each of up to 5 attempts, so one call of a slow or unreachable CloudWatch Logs outlasted
# the function's 30 s), one retry of a throttle or timeout (standard mode: at most 6 s of waiting before it).
LOGS_CONNECT_TIMEOUT_S, LOGS_READ_TIMEOUT_S, LOGS_ATTEMPTS = 1, 2, 2


def bounded_config(connect_s: float, read_s: float, attempts: int) -> Config:
    """A client config whose every call ends within :func:`longest_call_ms` of the same bounds: ``connect_s`` to connect
    and ``read_s`` to read per attempt, ``attempts`` attempts (standard retry mode)."""
    # total_max_attempts counts the first attempt; botocore reads max_attempts as the retries after it (2 was 3 attempts).
    return Config(connect_timeout=connect_s, read_timeout=read_s,
                  retries={"mode": "standard", "total_max_attempts": attempts})


# Standard mode waits longer than its backoff when a throttle's answer asks it to (x-amz-retry-after): up to 5 s more.
RETRY_AFTER_MAX_S = 5


def longest_call_ms(connect_s: float, read_s: float, attempts: int, *, answered: bool = True) -> float:
    """The longest one call of a :func:`bounded_config` client takes: every attempt's connect and read timeouts, and
    the wait before each retry (standard mode: a backoff of at most 1 s before the first, 2 s before the second, ...,
    20 s, plus up to :data:`RETRY_AFTER_MAX_S` when an answer asks for a longer wait; ``answered=False``: a service
    that never answers, so never asks)."""
    waits = sum(min(20, 2 ** retry) + (RETRY_AFTER_MAX_S if answered else 0) for retry in range(attempts - 1))
    return 1000 * (attempts * (connect_s + read_s) + waits)


LOGS_CONFIG = bounded_config(LOGS_CONNECT_TIMEOUT_S, LOGS_READ_TIMEOUT_S, LOGS_ATTEMPTS)
_MAX_CALL_MS = longest_call_ms(LOGS_CONNECT_TIMEOUT_S, LOGS_READ_TIMEOUT_S, LOGS_ATTEMPTS)
# Time a group's calls may take (one DescribeLogGroups page - a group's exact name rarely shares a page - and
# PutRetentionPolicy): the sweep starts a group only with that much of the function's time left.
TIME_PER_GROUP_MS = 2 * _MAX_CALL_MS


def logs_client() -> Any:
    """The CloudWatch Logs client of the function's region, with :data:`LOGS_CONFIG`."""
    return boto3.client("logs", config=LOGS_CONFIG)


def sweep_stack_client() -> Any:
    """The CloudFormation client the hourly sweep, and a reconcile after its decision, read the serving stack's
    endpoints with, bounded as :func:`logs_client` (the reconcile's update keeps a default client: it waits as long
    as an update needs)."""
    return boto3.client("cloudformation", config=LOGS_CONFIG)


def near_timeout(context: Any) -> Optional[Callable[[], bool]]:
    """Whether the Lambda ``context`` has less than :data:`TIME_PER_GROUP_MS` left (None without a context)."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return None if remaining is None else (lambda: remaining() < TIME_PER_GROUP_MS)


def _exactly(logs: Any, name: str) -> Optional[Dict[str, Any]]:
    """The log group called exactly ``name``, or None: the prefix search also answers longer names (another
    endpoint's, another environment's), which are passed over."""
    for page in logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=name):
        for group in page.get("logGroups", []):
            if group.get("logGroupName") == name:
                return group
    return None


def _failed(name: str, error: Exception) -> Dict[str, str]:
    LOG.warning(json.dumps({"log_retention_failed": str(error), "log_group": name}))
    return {"log_group": name, "error": str(error)}
