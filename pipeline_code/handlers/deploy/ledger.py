"""The approval ledger: every decision of the deploy handler about a version, appended as one write-once JSON record
below ``approval-ledger/`` in the artifacts bucket (see :mod:`pipeline_code.handlers.deploy_on_approval`)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import secrets
import time
from typing import Any, Dict, Mapping, Optional

from botocore.exceptions import BotoCoreError, ClientError

from pipeline_code.core import approval as approval_rule
from pipeline_code.core import integrity
from pipeline_code.core.contract import package_created
from pipeline_code.handlers.deploy.events import aware
from pipeline_code.handlers.deploy.notices import Notifier

LOG = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Ledger:
    """Where decisions are recorded: the artifacts ``bucket``, below each group's model's ledger prefix
    (:func:`pipeline_code.core.integrity.ledger_key`)."""

    bucket: str
    models: Mapping[str, str]  # group -> model


# A reconcile (a wait's retry, a settled stack, by hand) is recorded only when it decided about a version; a state
# change is recorded whatever the outcome (unchanged, waiting and error included): it is a decision someone took.
LEDGER_RECONCILE_OUTCOMES = ("deploying", "refused", "held", "failed-to-start", "gave-up")
# Outcomes a reconcile meets again unchanged while nothing is decided (a refused or held version approved last: every
# rollout of any model, and the hourly reconcile, reconciles every group): recorded once per approval decision and reason
# (:func:`_once_key`), the record saying when it was first met (``decision.first_<outcome>_at``), not once per reconcile.
LEDGER_ONCE_OUTCOMES = ("refused", "held")
# What of the handler's decision a record keeps.
_DECISION_FIELDS = ("outcome", "deployed", "reason", "stack", "parameter", "serving", "desired", "held", "passed_over", "refused",
                    "verified", "set", "token", "failed_rollout", "waiting_since", "retry_at", "endpoint", "target_model",
                    "smoke_test")
# What of the event's detail a record keeps, as SageMaker sent it (the package may have changed since).
_DETAIL_FIELDS = ("ModelPackageArn", "ModelApprovalStatus", "ModelPackageStatus", "ApprovalDescription", "LastModifiedTime",
                  "LastModifiedBy", "CreatedBy")
# Attempts at a free key: a taken one (412, or 409 for a concurrent writer of it) is retried under a new nonce. A
# reconcile's once-only record (:func:`_once_key`) keeps its key: a 412 there means an earlier reconcile recorded it,
# while a 409 ConditionalRequestConflict means a conflicting operation was under way and nothing was written (S3: retry
# the write), so it is written again, up to LEDGER_ATTEMPTS, this far apart.
LEDGER_ATTEMPTS = 3
LEDGER_CONFLICT_WAIT_SECONDS = 0.2


def record_decision(ledger: Optional[Ledger], event: Any, decision: Mapping[str, Any], *, sagemaker: Any, s3: Any,
                    notify: "Notifier", recorded_by: Optional[str] = None,
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
    record["recorded_at"] = aware(now).astimezone(dt.timezone.utc).isoformat()
    once = _once_key(ledger.models[group], version, record) if trigger == integrity.LEDGER_RECONCILE else None
    if once is not None:
        record["decision"][f"first_{record['decision']['outcome']}_at"] = record["recorded_at"]
    body = json.dumps(record, default=json_value, sort_keys=True).encode("utf-8")
    word = seen.get("approval") if trigger == integrity.LEDGER_STATE_CHANGE and isinstance(seen.get("approval"), str) else trigger
    error: Optional[Exception] = None
    for _ in range(LEDGER_ATTEMPTS):
        key = once or integrity.ledger_key(ledger.models[group], version, now, word or trigger, secrets.token_hex(4),
                                           record["package_created"])
        try:
            s3.put_object(Bucket=ledger.bucket, Key=key, Body=body, IfNoneMatch="*", ContentType="application/json")
            return {"key": f"s3://{ledger.bucket}/{key}"}
        except (ClientError, BotoCoreError) as caught:
            error = caught
            code = caught.response.get("Error", {}).get("Code", "") if isinstance(caught, ClientError) else ""
            if str(code) not in ("PreconditionFailed", "412", "ConditionalRequestConflict", "409"):
                break
            if once is not None and str(code) in ("PreconditionFailed", "412"):
                # Recorded by an earlier reconcile: that record stands for this one.
                return {"key": f"s3://{ledger.bucket}/{key}", "recorded_before": True}
            if once is not None:
                time.sleep(LEDGER_CONFLICT_WAIT_SECONDS)  # 409: not written; the same key again
    reason = f"approval ledger: the record of v{version}'s {trigger} could not be written to s3://{ledger.bucket}: {error}"
    LOG.error(json.dumps({"ledger_failed": reason, "record": json.loads(body)}))
    notify(f"v{version}: approval ledger not written",
           f"{reason}. The decision itself went ahead ({decision.get('outcome')}); this notice holds the record that was "
           f"not kept, for the audit trail:\n\n{body.decode('utf-8')}")
    return {"error": str(error)}


def _once_key(model: str, version: int, record: Mapping[str, Any]) -> Optional[str]:
    """The one key of a reconcile's :data:`LEDGER_ONCE_OUTCOMES` record: the same for every reconcile that meets the same
    outcome with the same reason about the same approval decision of the same package, so the write-once put of a later
    one is refused (412) and nothing is copied. The key's time is that decision's (the package's ``LastModifiedTime``,
    else its ``CreationTime``: approved at registration) and its last word a digest of the outcome and reason: a new
    decision (approved again: a new time) or a new reason is a record of its own. None (a record of its own, as any other) for another outcome or a package not described."""
    decision = record["decision"]
    # When the package's current approval was decided: LastModifiedTime, or its CreationTime when no call updated it
    # (approved at registration: DescribeModelPackage then has no LastModifiedTime), as the registry reads it.
    modified, created = record["package"].get("LastModifiedTime"), record["package"].get("CreationTime")
    decided = approval_rule.approval_time(modified, created) if isinstance(created, dt.datetime) else modified
    if decision.get("outcome") not in LEDGER_ONCE_OUTCOMES or not isinstance(decided, dt.datetime) or not record["package_created"]:
        return None
    identity = json.dumps([record["package_arn"], record["package_created"], json_value(decided), decision["outcome"],
                           decision.get("reason")], sort_keys=True)
    digest = hashlib.sha256(identity.encode("utf-8")).hexdigest()[:16]
    return integrity.ledger_key(model, version, decided, f"{integrity.LEDGER_RECONCILE}-{decision['outcome']}", digest,
                                record["package_created"])


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


def json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return aware(value).astimezone(dt.timezone.utc).isoformat()
    return str(value)
