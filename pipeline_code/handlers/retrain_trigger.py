"""Start a model's training pipeline on a drift alarm or a schedule, with a guard against retraining storms.

Invoked by an EventBridge rule (CloudWatch alarm -> ALARM, input transformed to the payload
below) or by EventBridge Scheduler (scheduled retraining)::

    {"pipeline": "mlops-loop-dev-churn-training", "reason": "drift",
     "alarm": "mlops-loop-dev-churn-data-drift", "source_event_id": "<EventBridge event id>"}

It starts the pipeline with ``TriggerReason`` set, unless

* the pipeline is not one this function is allowed to start (``ALLOWED_PIPELINES``),
* an execution of it is already running (``Executing`` or ``Stopping``),
* the latest execution that could have answered the drift started less than ``COOLDOWN_HOURS`` ago: one
  that succeeded, or failed because the gate rejected its challenger (the model was judged). A run that
  failed on anything else, or that someone stopped, trained nothing, so it does not hold the next one; or
* ``MAX_STARTS_PER_COOLDOWN`` executions started within the cooldown whatever became of them (the storm
  guard: a pipeline that keeps failing is not restarted every hour).

**The sweep** (``{"reason": "sweep"}``, from an hourly schedule): CloudWatch sends an event only when an
alarm *enters* ALARM, so a drift alarm that arrived during the cooldown would never be answered while it
stays in ALARM. The sweep asks which of this environment's retrain alarms are still in ALARM
(``ALARM_PIPELINES``: alarm name -> pipeline, the exact names its role may describe) and hands each
model's oldest one to the same guard, which starts the pipeline once the cooldown is over and no
execution runs.

Every decision is logged as one JSON line and returned. A malformed event is logged and
dropped (returned, not raised), so a bad payload cannot cause a retry storm; the same event
delivered twice maps to the same ``ClientRequestToken``, and the cooldown stops the second
start anyway (EventBridge and SageMaker may both deliver duplicates).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import re
from typing import Any, Callable, Dict, Mapping, Optional

import boto3

from pipeline_code.core.contract import GATE_FAIL_STEP

LOG = logging.getLogger(__name__)
LOG.setLevel(logging.INFO)

RUNNING = ("Executing", "Stopping")
MAX_STARTS_PER_COOLDOWN = 3
REASONS = ("drift", "quality", "schedule", "manual")
SWEEP = "sweep"
MAX_ALARM_NAMES = 100  # DescribeAlarms takes at most 100 names per call
# SageMaker model package metadata (where TriggerReason ends up) allows only these characters.
_UNSAFE = re.compile(r"[^A-Za-z0-9 _.:/=+\-@]")


def handler(event: Any, context: Any = None, *, client: Any = None, cloudwatch: Any = None,
            now: Optional[Callable[[], dt.datetime]] = None) -> Dict[str, Any]:
    """Lambda entry point; ``client`` (SageMaker), ``cloudwatch`` and ``now`` are injectable for tests."""
    settings = _settings()
    guard = {"client": client or boto3.client("sagemaker"), "allowed_pipelines": settings["allowed"],
             "cooldown": dt.timedelta(hours=settings["cooldown_hours"]),
             "now": (now or (lambda: dt.datetime.now(dt.timezone.utc)))()}
    if isinstance(event, Mapping) and event.get("reason") == SWEEP:
        decision = sweep(cloudwatch=cloudwatch or boto3.client("cloudwatch"), alarm_pipelines=settings["alarm_pipelines"],
                         **guard)
    else:
        decision = decide_and_start(event, **guard)
    LOG.info(json.dumps(decision, default=str))
    return decision


def sweep(*, cloudwatch: Any, alarm_pipelines: Mapping[str, str], **guard: Any) -> Dict[str, Any]:
    """Hand every model whose retrain alarm is still in ALARM to the guard (see the module docstring);
    ``alarm_pipelines`` maps each retrain alarm's name to its model's pipeline."""
    still: Dict[str, Dict[str, Any]] = {}
    names = sorted(alarm_pipelines)
    for start in range(0, len(names), MAX_ALARM_NAMES):
        pages = cloudwatch.get_paginator("describe_alarms").paginate(
            AlarmNames=names[start:start + MAX_ALARM_NAMES], StateValue="ALARM", AlarmTypes=["MetricAlarm"])
        for page in pages:
            for alarm in page.get("MetricAlarms", []):
                if alarm.get("StateValue") != "ALARM":  # the filter above, checked again (moto ignores it with names)
                    continue
                pipeline = alarm_pipelines.get(alarm["AlarmName"])
                oldest = still.get(pipeline) if pipeline else None
                if pipeline and (oldest is None or
                                 _aware(alarm["StateUpdatedTimestamp"]) < _aware(oldest["StateUpdatedTimestamp"])):
                    still[pipeline] = alarm
    decisions = []
    for pipeline, alarm in sorted(still.items()):
        # One token per alarm episode: a retry of this sweep, or the next hour's, cannot start it twice.
        episode = f"sweep|{alarm['AlarmName']}|{_aware(alarm['StateUpdatedTimestamp']).isoformat()}|{guard['now']:%Y-%m-%dT%H}"
        event = {"pipeline": pipeline, "reason": "drift", "alarm": alarm["AlarmName"], "source_event_id": episode}
        decisions.append(decide_and_start(event, **guard))
    return {"started": any(d["started"] for d in decisions), "reason": "sweep",
            "alarms_in_alarm": {p: a["AlarmName"] for p, a in still.items()}, "decisions": decisions}


def decide_and_start(
    event: Any,
    *,
    client: Any,
    allowed_pipelines: frozenset,
    cooldown: dt.timedelta,
    now: dt.datetime,
) -> Dict[str, Any]:
    """The guard: returns ``{"started": bool, "reason": str, ...}``; starts at most one execution."""
    problem = _malformed(event)
    if problem:
        return {"started": False, "reason": f"malformed event: {problem}", "event": _preview(event)}
    pipeline, trigger = event["pipeline"], event["reason"]
    if pipeline not in allowed_pipelines:
        return {"started": False, "reason": f"pipeline {pipeline!r} is not one this trigger may start", "pipeline": pipeline}

    latest = client.list_pipeline_executions(
        PipelineName=pipeline, SortBy="CreationTime", SortOrder="Descending", MaxResults=10
    ).get("PipelineExecutionSummaries", [])
    running = [e for e in latest if e.get("PipelineExecutionStatus") in RUNNING]
    if running:
        return {
            "started": False,
            "reason": "an execution is already running",
            "pipeline": pipeline,
            "running": running[0]["PipelineExecutionArn"],
        }
    recent = [e for e in latest if now - _aware(e["StartTime"]) < cooldown]
    if len(recent) >= MAX_STARTS_PER_COOLDOWN:
        return {"started": False, "pipeline": pipeline,
                "reason": f"storm guard: {len(recent)} executions started within {cooldown}; the pipeline needs a person"}
    counted = next((e for e in recent if _answered(client, pipeline, e)), None)
    if counted is not None:
        started_at = _aware(counted["StartTime"])
        return {
            "started": False,
            "reason": f"cooldown: last execution started {started_at.isoformat()}, less than {cooldown} ago",
            "pipeline": pipeline,
        }

    reason_value = trigger_reason(trigger, event.get("alarm"))
    response = client.start_pipeline_execution(
        PipelineName=pipeline,
        PipelineExecutionDisplayName=f"{trigger}-{now:%Y%m%dT%H%M%S}",
        PipelineExecutionDescription=f"started by the retrain trigger ({reason_value})",
        PipelineParameters=[{"Name": "TriggerReason", "Value": reason_value}],
        ClientRequestToken=client_token(event, now),
    )
    return {
        "started": True,
        "reason": reason_value,
        "pipeline": pipeline,
        "execution": response["PipelineExecutionArn"],
    }


def _answered(client: Any, pipeline: str, execution: Mapping[str, Any]) -> bool:
    """Whether ``execution`` could have answered the drift: it succeeded, or the gate rejected its challenger."""
    status = execution.get("PipelineExecutionStatus")
    if status == "Succeeded":
        return True
    if status != "Failed":
        return False  # Stopped by a person: it trained nothing
    steps = client.list_pipeline_execution_steps(PipelineExecutionArn=execution["PipelineExecutionArn"], MaxResults=50)
    return any(step.get("StepName") == GATE_FAIL_STEP for step in steps.get("PipelineExecutionSteps", []))


def trigger_reason(trigger: str, alarm: Optional[str]) -> str:
    """``drift:<alarm name>``-style value, restricted to the characters model metadata accepts."""
    value = trigger if not alarm else f"{trigger}:{alarm}"
    return _UNSAFE.sub("-", value)[:256]


def client_token(event: Mapping[str, Any], now: dt.datetime) -> str:
    """Idempotency token: the source event id when there is one, else pipeline + reason + the hour."""
    basis = event.get("source_event_id") or f"{event['pipeline']}|{event['reason']}|{now:%Y-%m-%dT%H}"
    return hashlib.sha256(str(basis).encode()).hexdigest()[:64]


def _malformed(event: Any) -> Optional[str]:
    if not isinstance(event, Mapping):
        return f"expected a JSON object, got {type(event).__name__}"
    missing = [k for k in ("pipeline", "reason") if not isinstance(event.get(k), str) or not event.get(k)]
    if missing:
        return f"missing or empty field(s) {missing}"
    if event["reason"] not in REASONS:
        return f"reason {event['reason']!r} is not one of {list(REASONS)}"
    return None


def _settings() -> Dict[str, Any]:
    allowed = frozenset(filter(None, (p.strip() for p in os.environ.get("ALLOWED_PIPELINES", "").split(","))))
    return {"allowed": allowed, "cooldown_hours": float(os.environ.get("COOLDOWN_HOURS", "24")),
            "alarm_pipelines": json.loads(os.environ.get("ALARM_PIPELINES", "{}"))}


def _aware(value: Any) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def _preview(event: Any) -> str:
    return json.dumps(event, default=str)[:500]
