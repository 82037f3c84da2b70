"""The deploy handler's settings, read from its environment variables (set by the ``DeployOnApproval`` construct);
a missing or invalid one raises :class:`ConfigurationError` naming the variable and the fix."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import re
from typing import Any, Dict, Mapping, Optional

from pipeline_code.core.approval import ReportPlace
from pipeline_code.handlers.deploy.ledger import Ledger
from pipeline_code.handlers.team_topics import Topics, team_topics_setting


# How long a busy stack is left alone before the group is reconciled again (see wait()).
RETRY_INTERVAL = dt.timedelta(minutes=5)
# Fields of one MULTI_MODEL entry (group -> this).
MULTI_MODEL_FIELDS = ("model", "endpoint", "bucket", "prefix", "kms_key_id")
# The fields every member usually shares (one artefacts bucket and data key per environment): given once in
# MULTI_MODEL_SHARED rather than per member, so many members fit in Lambda's 4 KB of environment.
MULTI_MODEL_SHARED_FIELDS = ("bucket", "kms_key_id")
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class ConfigurationError(ValueError):
    """The function's environment variables are missing or invalid (a deployment mistake, not an event)."""


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


def from_environment() -> Dict[str, Any]:
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
    multi = multi_model_setting(os.environ.get("MULTI_MODEL", ""), parameters, os.environ.get("MULTI_MODEL_SHARED", ""))
    return {"stack": stack, "parameters": parameters, "role_arn": role_arn, "topic": topic, "multi_model": multi,
            "retry": retry_setting(), "ledger": ledger_setting(os.environ.get("APPROVAL_LEDGER", ""), parameters),
            "log_retention_days": log_retention_setting(os.environ.get("LOG_RETENTION_DAYS", ""))}


def log_retention_setting(raw: str) -> Optional[int]:
    """``LOG_RETENTION_DAYS``: the retention the environment's endpoint log groups are set to (the environment's
    ``log_retention_days``, which the config checks against what CloudWatch Logs accepts); empty or unset = they are
    left as they are (the app always sets it)."""
    if not raw.strip():
        return None
    if not raw.strip().isdigit() or int(raw) < 1:
        raise ConfigurationError(f"environment variable LOG_RETENTION_DAYS must be a number of days (the environment's "
                                 f"log_retention_days), or unset, got {raw[:50]!r}")
    return int(raw)


def _team_topics_setting(raw: str, parameters: Mapping[str, str], topic_arn: Optional[str]) -> Dict[str, str]:
    """``TEAM_TOPICS`` as group -> topic ARN, beside ``NOTIFY_TOPIC_ARN``
    (:func:`~pipeline_code.handlers.team_topics.team_topics_setting`)."""
    return team_topics_setting(raw, parameters, error=ConfigurationError, topic_arn=topic_arn,
                               topic_variable="NOTIFY_TOPIC_ARN",
                               unknown="which MODEL_PARAMETERS does not: give each team's topic the groups of its models "
                                       "this function deploys")


def ledger_setting(raw: str, parameters: Mapping[str, str]) -> Optional[Ledger]:
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


def report_place(ledger: Optional[Ledger], group: str) -> ReportPlace:
    """Where the handler's role may read ``group``'s evaluation reports (``ReadEvaluationReports``:
    pipelines/<model>/*/evaluate/evaluation/* of the artifacts bucket), from ``APPROVAL_LEDGER`` (the artifacts bucket,
    and the model of each group). Without it (the app always sets it) neither is known: any model's evaluation folder of
    any bucket is accepted - the key alone is checked - and a report S3 denies is refused when it is read."""
    if ledger is None:
        return ReportPlace(model=None, bucket=None)
    return ReportPlace(model=ledger.models.get(group), bucket=ledger.bucket)


def retry_setting() -> Optional[Retry]:
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


def multi_model_setting(raw: str, parameters: Mapping[str, str], shared_raw: str = "") -> Dict[str, Dict[str, str]]:
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
