"""The deploy handler's events: what it is invoked with, read into ``(group, what the event said)``.

A registry event (``SageMaker Model Package State Change`` from ``aws.sagemaker``) or a reconcile action
(``{"action": "reconcile", "group": ..., "waiting_since": ...}``, by hand or from a wait's retry schedule). A malformed
event raises :class:`Malformed`, which the handler returns (logged, dropped), never raises.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Dict, Mapping, Optional


EVENT_SOURCE = "aws.sagemaker"
EVENT_DETAIL_TYPE = "SageMaker Model Package State Change"


class Malformed(ValueError):
    pass


def parse(event: Any) -> "tuple[str, Dict[str, Any]]":
    if not isinstance(event, Mapping):
        raise Malformed(f"expected a JSON object, got {type(event).__name__}")
    if "action" in event:
        if event.get("action") != "reconcile":
            raise Malformed(f"action {event.get('action')!r} is not 'reconcile'")
        group = event.get("group")
        if not isinstance(group, str) or not group:
            raise Malformed("field 'group' must name a model package group")
        seen: Dict[str, Any] = {"action": "reconcile"}
        if "waiting_since" in event:
            # Kept as text: the decision is the function's (JSON) return value.
            seen["waiting_since"] = _timestamp(event["waiting_since"], "waiting_since").isoformat()
        return group, seen
    if event.get("source") != EVENT_SOURCE or event.get("detail-type") != EVENT_DETAIL_TYPE:
        raise Malformed(
            f"expected source {EVENT_SOURCE!r} and detail-type {EVENT_DETAIL_TYPE!r} "
            f"(or {{'action': 'reconcile', 'group': ...}}), got {event.get('source')!r} / {event.get('detail-type')!r}"
        )
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        raise Malformed("field 'detail' must be an object")
    group = detail.get("ModelPackageGroupName")
    if not isinstance(group, str) or not group:
        raise Malformed("field 'detail.ModelPackageGroupName' is missing or empty")
    version = detail.get("ModelPackageVersion")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        raise Malformed(f"field 'detail.ModelPackageVersion' must be an integer, got {version!r}")
    return group, {
        "id": event.get("id"),
        "version": version,
        "approval": detail.get("ModelApprovalStatus"),
        "status": detail.get("ModelPackageStatus"),
    }


def parse_quietly(event: Any) -> "tuple[Optional[str], Dict[str, Any]]":
    """:func:`parse`, or ``(None, {})`` for a malformed event."""
    try:
        return parse(event)
    except Malformed:
        return None, {}


def _timestamp(value: Any, field: str) -> dt.datetime:
    if not isinstance(value, str):
        raise Malformed(f"field {field!r} must be an ISO 8601 time, got {value!r}")
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise Malformed(f"field {field!r} must be an ISO 8601 time, got {value!r}") from None
    return aware(parsed)


def aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def preview(event: Any) -> str:
    return json.dumps(event, default=str)[:500]
