"""Start a model's training pipeline on a drift alarm or a schedule, with a guard against retraining storms.

Invoked by an EventBridge rule (CloudWatch alarm -> ALARM, input transformed to the payload
below) or by EventBridge Scheduler (scheduled retraining)::

    {"pipeline": "mlops-loop-dev-churn-training", "reason": "drift",
     "alarm": "mlops-loop-dev-churn-data-drift", "source_event_id": "<EventBridge event id>"}

It starts the pipeline with ``TriggerReason`` set, unless

* the pipeline is not one this function is allowed to start (a pipeline of ``MODEL_PIPELINES``),
* on-call paused retraining (see *The pause* below),
* an execution of it is already running (``Executing`` or ``Stopping``),
* ``MAX_STARTS_PER_DAY`` executions (default 3) started in the last 24 hours, whatever became of them (the storm
  guard: a pipeline that keeps failing is not restarted every hour). Its window is its own, 24 hours whatever the
  cooldown, so a short cooldown cannot widen it: an alarm that stays in ALARM starts at most that many executions in
  any 24 hours; or
* the latest execution that could have answered the drift started less than ``COOLDOWN_HOURS`` ago: one
  that succeeded, or failed because the gate rejected its challenger (the model was judged). A run that
  failed on anything else, or that someone stopped, trained nothing, so it does not hold the next one.

**The sweep** (``{"reason": "sweep"}``, from an hourly schedule): CloudWatch sends an event only when an
alarm *enters* ALARM, so a drift alarm that arrived during the cooldown would never be answered while it
stays in ALARM. The sweep asks which of this environment's retrain alarms are still in ALARM
(``<prefix>-<model>-retrain-<alarm>`` of each model, the exact names its role may describe) and hands each
model's oldest one to the same guard, which starts the pipeline once the cooldown is over and no
execution runs.

**The pause**: on-call's switch, flipped without a deploy (``python -m mlops_cli.retraining``). Retraining is paused
while the environment's SSM parameter exists (``/<prefix>/retraining/paused``: every model) or the model's
does (``/<prefix>/retraining/paused-models/<model>``); their
value says who paused, when and why (``pipeline_code.core.contract.retraining_pause_parameter``). CloudFormation
does not manage them, so no deploy reverts a pause. Every start path - a drift alarm, the sweep, a schedule - goes
through the guard, which reads them (one GetParameters call) before any SageMaker call and returns
``{"started": false, "reason": "paused"}`` naming the pause. No drift is lost: a retrain alarm still in ALARM when
retraining resumes is answered by the next sweep. A scheduled retraining that fell in the pause is skipped, not
replayed. A person starting the pipeline directly
(``start-pipeline-execution``) is not stopped: the pause governs only this function.

**The circuit breaker**: a run that failed on anything but the gate does not hold the cooldown, so while a drift alarm
stays in ALARM the sweep would start a broken pipeline up to ``MAX_STARTS_PER_DAY`` times every day, each failure
paging. After ``FAILURES_BEFORE_PAUSE`` (default 2) consecutive failed executions that the trigger started on its own (a
drift alarm, the sweep or a schedule; not rejected by the gate, not stopped by a person, not started by a person) the
trigger pauses the model with the on-call pause itself - it creates the model's parameter, ``by`` the
``RETRAINING_BREAKER`` - and pages once on ``TOPIC_ARN`` (a model of a team: its team's topic in ``TEAM_TOPICS`` instead,
read as the deploy handler reads it: :mod:`pipeline_code.handlers.team_topics`), naming the last failure and the resume command. The count is
read from the pipeline's own executions, not kept: a duplicate event or a concurrent invocation counts the same runs,
and the pause is created with ``Overwrite=False``, so only the invocation that created it pages. The pause records
whether its page went out (``announced``: "no" until it did): if the page fails and the pause cannot be taken back, the
next invocation that finds the pause unannounced pages it (:meth:`Breaker.announce`), once; the hourly sweep reads every
model's pause for that (:meth:`Breaker.unannounced`), so a model whose retrain alarm went back to OK is paged too. A success (whoever
started it) ends the count, and lifts the breaker's pause; a resume (``mlops_cli.retraining ... resume``, which records
when in ``retraining_reset_parameter``) starts a new count. A scheduled retraining is held by the pause like any other
start: a pipeline that fails twice fails on schedule too.

When SSM cannot say whether retraining is paused (access denied, throttled past the SDK's retries, an outage),
nothing starts and the invocation fails (:class:`PauseUnknown`): see :meth:`PauseSwitch.__call__` for why.

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
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from pipeline_code.core.commands import cli_command
from pipeline_code.core.contract import (DEFAULT_MAX_RETRAINING_STARTS_PER_DAY, DEFAULT_RETRAINING_COOLDOWN_HOURS,
                                         DEFAULT_RETRAINING_FAILURES_BEFORE_PAUSE, GATE_FAIL_STEP, RETRAINING_BREAKER,
                                         RETRAINING_PAUSE_ANNOUNCED,
                                         package_group_name, pause_record, pause_value, region_of_arn, retrain_trigger_names)
from pipeline_code.handlers.team_topics import Topics, team_topics_setting

LOG = logging.getLogger(__name__)
LOG.setLevel(logging.INFO)

RUNNING = ("Executing", "Stopping")
# The storm guard: at most this many starts in any STORM_WINDOW unless MAX_STARTS_PER_DAY says otherwise.
MAX_STARTS_PER_DAY = DEFAULT_MAX_RETRAINING_STARTS_PER_DAY
STORM_WINDOW = dt.timedelta(hours=24)
PAGE_SIZE = 100  # ListPipelineExecutions returns at most 100 summaries per call
REASONS = ("drift", "quality", "schedule", "manual")
SWEEP = "sweep"
MAX_ALARM_NAMES = 100  # DescribeAlarms takes at most 100 names per call
PAUSED = "paused"
BREAKER = "circuit breaker"
# The executions the trigger itself started on its own (their display name is "<reason>-<time>"): only their failures
# count towards the circuit breaker; a "manual" invocation is a person's, as is a start outside the trigger.
AUTOMATIC = ("drift", "quality", "schedule")
# SageMaker model package metadata (where TriggerReason ends up) allows only these characters.
_UNSAFE = re.compile(r"[^A-Za-z0-9 _.:/=+\-@]")


class PauseUnknown(RuntimeError):
    """SSM could not say whether retraining is paused; nothing was started."""


@dataclass(frozen=True)
class PauseSwitch:
    """The on-call pause of one environment: ``environment`` is its parameter's name, ``models`` maps each
    pipeline to its model's parameter's name (see the module docstring)."""

    ssm: Any
    environment: str
    models: Mapping[str, str]

    def __call__(self, pipeline: str) -> Optional[Dict[str, str]]:
        """The pause that holds ``pipeline`` (``{"parameter", "reason", "by", "at"}``; the environment's before the
        model's), or None when neither parameter exists.

        Raises PauseUnknown when SSM does not answer. Failing closed, on purpose: the pause exists for incidents
        (bad data reaching training, a broken pipeline, runaway cost), and a switch on-call has flipped must hold
        even when the read fails - while starting nothing costs only a delay: a drift alarm stays in ALARM and the
        hourly sweep answers it once SSM answers again. Raising, not returning, makes it loud: the invocation
        fails and Lambda retries it twice (a read that succeeds on a retry decides then, and pages nobody: the
        trigger-errors alarm is on the dashboard only); one that fails every attempt is dead-lettered and the
        dead-letters alarm pages once, where a quiet refusal could hold retraining for good without anyone noticing
        (a role that lost its permission).
        """
        names = self.names(pipeline)
        try:
            # GetParameters, not GetParameter: a name that does not exist comes back in InvalidParameters, not as an error.
            response = self.ssm.get_parameters(Names=names)
        except (BotoCoreError, ClientError) as error:
            raise PauseUnknown(f"cannot read the retraining pause {names}: {error}; {pipeline} was not started (the "
                               "invocation is retried, then dead-lettered; a retrain alarm still in ALARM is answered by "
                               "the sweep once SSM answers)") from error
        found = {p["Name"]: p.get("Value", "") for p in response.get("Parameters", [])}
        held = next((name for name in names if name in found), None)
        return None if held is None else {"parameter": held, **pause_record(found[held])}

    def names(self, pipeline: str) -> List[str]:
        """The parameters that pause ``pipeline``: the environment's, then its model's."""
        return [self.environment, *([self.models[pipeline]] if pipeline in self.models else [])]


def handler(event: Any, context: Any = None, *, client: Any = None, cloudwatch: Any = None, ssm: Any = None,
            sns: Any = None, now: Optional[Callable[[], dt.datetime]] = None) -> Dict[str, Any]:
    """Lambda entry point; ``client`` (SageMaker), ``cloudwatch``, ``ssm``, ``sns`` and ``now`` are injectable for tests."""
    try:
        settings = settings_of(os.environ)
        ssm_client = ssm or boto3.client("ssm")
        guard = {"client": client or boto3.client("sagemaker"), "allowed_pipelines": settings["allowed"],
                 "cooldown": dt.timedelta(hours=settings["cooldown_hours"]),
                 "max_starts_per_day": settings["max_starts_per_day"],
                 "now": (now or (lambda: dt.datetime.now(dt.timezone.utc)))(),
                 "paused": PauseSwitch(ssm_client, settings["pause_parameter"], settings["model_pause_parameters"]),
                 "breaker": Breaker(ssm_client, sns, settings["topic_arn"],
                                    settings["failures_before_pause"], settings["environment"], settings["models"],
                                    settings["model_pause_parameters"], settings["model_reset_parameters"],
                                    settings["reset_parameter"], config=settings["config"])}
        if isinstance(event, Mapping) and event.get("reason") == SWEEP:
            decision = sweep(cloudwatch=cloudwatch or boto3.client("cloudwatch"), alarm_pipelines=settings["alarm_pipelines"],
                             **guard)
        else:
            decision = decide_and_start(event, **guard)
    except PauseUnknown as error:
        LOG.error(json.dumps({"started": False, "reason": "pause unknown", "detail": str(error), "event": _preview(event)}))
        raise
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
    decisions, unknown = [], []
    for pipeline, alarm in sorted(still.items()):
        # One token per alarm episode: a retry of this sweep, or the next hour's, cannot start it twice.
        episode = f"sweep|{alarm['AlarmName']}|{_aware(alarm['StateUpdatedTimestamp']).isoformat()}|{guard['now']:%Y-%m-%dT%H}"
        event = {"pipeline": pipeline, "reason": "drift", "alarm": alarm["AlarmName"], "source_event_id": episode}
        try:
            decisions.append(decide_and_start(event, **guard))
        except (PauseUnknown, BotoCoreError, ClientError) as error:
            # One model's pause or page that SSM or SNS would not answer, or its executions SageMaker would not list
            # (throttled past the SDK's retries), holds that model only: the others are decided, then the sweep fails
            # (retried, then dead-lettered) naming it. A retry starts none twice: a started one is running by then.
            unknown.append((pipeline, error))
            decisions.append({"started": False, "pipeline": pipeline,
                              "reason": "pause unknown" if isinstance(error, PauseUnknown) else "not decided",
                              "detail": str(error)})
    breaker = guard.get("breaker")
    if breaker is not None:
        # A breaker's pause left unannounced is paged by the guard of the next invocation for its model; one whose
        # retrain alarm went back to OK (and no schedule) reaches no guard, so the sweep looks for them all.
        # Not one whose guard failed above, nor one its guard paged already in this sweep (should SSM not have recorded
        # that page, it still reads unannounced: the next invocation pages again, not this one).
        undecided = {p for p, _ in unknown} | {d["pipeline"] for d in decisions if d.get("paged")}
        try:
            unannounced = [(p, pause) for p, pause in breaker.unannounced() if p not in undecided]
        except BreakerUnknown as error:
            unknown.append(("the circuit breaker's pauses", error))
            unannounced = []
        for pipeline, pause in unannounced:
            try:
                decisions.append({"started": False, "pipeline": pipeline, "reason": PAUSED, "pause": dict(pause),
                                  "paged": breaker.announce(pipeline, pause)})
            except (PauseUnknown, BotoCoreError, ClientError) as error:
                unknown.append((pipeline, error))
    decision = {"started": any(d["started"] for d in decisions), "reason": "sweep",
                "alarms_in_alarm": {p: a["AlarmName"] for p, a in still.items()}, "decisions": decisions}
    if unknown:
        LOG.info(json.dumps(decision, default=str))
        first = unknown[0][1]
        if isinstance(first, PauseUnknown):
            raise first
        raise SweepIncomplete(f"the hourly sweep could not decide {', '.join(p for p, _ in unknown)}: {first}; the other "
                              "models were decided, and the invocation fails so that Lambda retries it") from first
    return decision


def decide_and_start(
    event: Any,
    *,
    client: Any,
    allowed_pipelines: frozenset,
    cooldown: dt.timedelta,
    now: dt.datetime,
    paused: Callable[[str], Optional[Mapping[str, str]]],
    max_starts_per_day: int = MAX_STARTS_PER_DAY,
    breaker: Optional["Breaker"] = None,
) -> Dict[str, Any]:
    """The guard: returns ``{"started": bool, "reason": str, ...}``; starts at most one execution, and none when
    ``max_starts_per_day`` executions of the pipeline started in the last 24 hours (default 3, whatever the cooldown).

    ``paused`` (a :class:`PauseSwitch`) answers whether on-call paused the pipeline's retraining; it raises when it
    cannot tell, and then nothing starts."""
    problem = _malformed(event)
    if problem:
        return {"started": False, "reason": f"malformed event: {problem}", "event": _preview(event)}
    pipeline, trigger = event["pipeline"], event["reason"]
    if pipeline not in allowed_pipelines:
        return {"started": False, "reason": f"pipeline {pipeline!r} is not one this trigger may start", "pipeline": pipeline}
    pause = paused(pipeline)
    latest: Optional[List[Mapping[str, Any]]] = None
    if pause is not None and breaker is not None and breaker.tripped(pipeline, pause):
        # The breaker's own pause lifts itself once a run (one a person started) succeeded after it tripped.
        latest = _history(client, pipeline, since=now - max(cooldown, STORM_WINDOW))
        if breaker.lift_after_success(pipeline, pause, latest):
            pause = paused(pipeline)  # the environment's pause still holds
    if pause is not None:
        # A drift alarm refused here is not lost: while it stays in ALARM, the first sweep after the resume answers it.
        decision = {"started": False, "reason": PAUSED, "pipeline": pipeline,
                    "trigger": trigger_reason(trigger, event.get("alarm")), "pause": dict(pause)}
        if breaker is not None and breaker.tripped(pipeline, pause) and pause.get(RETRAINING_PAUSE_ANNOUNCED) == "no":
            # The invocation that tripped the breaker could neither page nor take its pause back: this one pages.
            return {**decision, "paged": breaker.announce(pipeline, pause)}
        return decision

    if latest is None:
        latest = _history(client, pipeline, since=now - max(cooldown, STORM_WINDOW))
    running = [e for e in latest if e.get("PipelineExecutionStatus") in RUNNING]
    if running:
        return {
            "started": False,
            "reason": "an execution is already running",
            "pipeline": pipeline,
            "running": running[0]["PipelineExecutionArn"],
        }
    steps: Dict[str, List[Mapping[str, Any]]] = {}  # each failed run's steps, read once
    if breaker is not None:
        failures = breaker.failures(client, pipeline, latest, steps)
        if failures:
            return breaker.trip(pipeline, failures, now=now, trigger=trigger_reason(trigger, event.get("alarm")))
    today = [e for e in latest if now - _aware(e["StartTime"]) < STORM_WINDOW]
    if len(today) >= max_starts_per_day:
        # Newest first: once the max_starts_per_day-th newest start leaves the window, one start is allowed again.
        next_start = _aware(today[max_starts_per_day - 1]["StartTime"]) + STORM_WINDOW
        return {"started": False, "pipeline": pipeline,
                "reason": f"storm guard: {len(today)} executions started in the last 24 hours, at most "
                          f"{max_starts_per_day} a day whatever became of them; none starts before "
                          f"{next_start.isoformat()} (if they failed, the pipeline needs a person)"}
    recent = [e for e in latest if now - _aware(e["StartTime"]) < cooldown]
    counted = next((e for e in recent if _answered(client, pipeline, e, steps)), None)
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


def _history(client: Any, pipeline: str, *, since: dt.datetime) -> List[Mapping[str, Any]]:
    """The executions of ``pipeline`` the guard judges, newest first: every one started after ``since``, following
    ``NextToken`` as far as that reaches, and at least the newest page whatever its age.

    Not ``CreatedAfter``: an execution still running may have started before ``since`` (a training job may run for
    days), and the guard must see it."""
    executions: List[Mapping[str, Any]] = []
    token: Optional[str] = None
    while True:
        page = client.list_pipeline_executions(PipelineName=pipeline, SortBy="CreationTime", SortOrder="Descending",
                                               MaxResults=PAGE_SIZE, **({"NextToken": token} if token else {}))
        summaries = page.get("PipelineExecutionSummaries", [])
        executions += summaries
        token = page.get("NextToken")
        # Newest first: a page that reaches back past ``since`` is the last one that matters.
        if not token or not summaries or any(_aware(e["StartTime"]) <= since for e in summaries):
            break
    return sorted(executions, key=lambda e: _aware(e["StartTime"]), reverse=True)


def _answered(client: Any, pipeline: str, execution: Mapping[str, Any],
              cache: Optional[Dict[str, List[Mapping[str, Any]]]] = None) -> bool:
    """Whether ``execution`` could have answered the drift: it succeeded, or the gate rejected its challenger."""
    status = execution.get("PipelineExecutionStatus")
    if status == "Succeeded":
        return True
    if status != "Failed":
        return False  # Stopped by a person: it trained nothing
    return _gate_rejected(_steps(client, execution, {} if cache is None else cache))


def _steps(client: Any, execution: Mapping[str, Any], cache: Dict[str, List[Mapping[str, Any]]]) -> List[Mapping[str, Any]]:
    arn = execution["PipelineExecutionArn"]
    if arn not in cache:
        cache[arn] = client.list_pipeline_execution_steps(PipelineExecutionArn=arn, MaxResults=50).get(
            "PipelineExecutionSteps", [])
    return cache[arn]


def _gate_rejected(steps: List[Mapping[str, Any]]) -> bool:
    return any(step.get("StepName") == GATE_FAIL_STEP for step in steps)


class SweepIncomplete(RuntimeError):
    """The hourly sweep decided every model it could, but SageMaker (or SSM, SNS) would not answer for one or more: the
    invocation fails so that Lambda retries it."""


class BreakerUnknown(PauseUnknown):
    """The circuit breaker could not record or announce its pause; nothing was started."""


@dataclass(frozen=True)
class Breaker:
    """The circuit breaker of one environment (see *The circuit breaker* in the module docstring): after ``threshold``
    consecutive failed executions the trigger started, it creates the model's pause parameter (``models``: pipeline ->
    its name, the on-call pause ``mlops_cli.retraining`` writes) and pages once on ``topic_arn`` (one ARN, or
    :class:`~pipeline_code.handlers.team_topics.Topics` by pipeline: a team's model's page reaches its team's topic)."""

    ssm: Any
    sns: Any  # None: a client made when it pages (Lambda's region)
    topic_arn: "str | Topics"
    threshold: int
    environment: str  # the environment's name, for the resume command
    models: Mapping[str, str]  # pipeline -> model name
    pauses: Mapping[str, str]  # pipeline -> its model's pause parameter
    resets: Mapping[str, str]  # pipeline -> its model's last resume (contract.retraining_reset_parameter)
    environment_reset: str = ""  # the environment's last resume (contract.retraining_reset_parameter)
    config: Optional[str] = None  # the resume command's --config (CLI_CONFIG; None: the default config, named by none)

    def resume_command(self, model: str) -> str:
        """The on-call command that lifts ``model``'s pause, as a page gives it."""
        return cli_command("retraining", "resume", environment=self.environment, model=model, config=self.config)

    def tripped(self, pipeline: str, pause: Mapping[str, str]) -> bool:
        """Whether ``pause`` is this breaker's pause of ``pipeline``'s model (not a person's)."""
        return pause.get("parameter") == self.pauses.get(pipeline) and pause.get("by") == RETRAINING_BREAKER

    def lift_after_success(self, pipeline: str, pause: Mapping[str, str], latest: List[Mapping[str, Any]]) -> bool:
        """Delete the breaker's pause when an execution that started after it succeeded; whether it did."""
        since = _stamp_of(pause.get("at", ""))
        if since is None or not any(e.get("PipelineExecutionStatus") == "Succeeded" and _aware(e["StartTime"]) >= since
                                    for e in latest):
            return False
        try:
            self.ssm.delete_parameter(Name=self.pauses[pipeline])
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ParameterNotFound":
                raise BreakerUnknown(f"cannot lift the circuit breaker's pause {self.pauses[pipeline]}: {error}") from error
        LOG.info(json.dumps({"breaker": "lifted", "pipeline": pipeline, "reason": "an execution succeeded after it tripped"}))
        return True

    def failures(self, client: Any, pipeline: str, latest: List[Mapping[str, Any]],
                 cache: Dict[str, List[Mapping[str, Any]]]) -> List[Dict[str, Any]]:
        """The ``threshold`` newest consecutive failures of executions the trigger started (newest first), when there
        are that many since the last success, gate rejection or resume; else []."""
        streak: List[Dict[str, Any]] = []
        for execution in latest:
            status = execution.get("PipelineExecutionStatus")
            if status == "Succeeded":
                break  # a success (whoever started it) resets the count
            if status != "Failed":
                continue  # stopped by a person: neither counts nor resets
            steps = _steps(client, execution, cache)
            if _gate_rejected(steps):
                break  # the model was judged, whoever started the run: the pipeline works
            if not _automatic(execution):
                continue  # a person's own run that failed: neither counts nor resets
            failed = next((s for s in steps if s.get("StepStatus") == "Failed"), {})
            streak.append({"execution": execution["PipelineExecutionArn"], "started": _aware(execution["StartTime"]),
                           "step": failed.get("StepName", "unknown"),
                           "failure": str(failed.get("FailureReason") or execution.get("PipelineExecutionFailureReason") or "not given")[:500]})
            if len(streak) == self.threshold:
                break
        if len(streak) < self.threshold:
            return []
        resumed = self._resumed(pipeline)
        # A person's resume starts a new count: the failures that tripped the breaker do not trip it again at once.
        return [] if resumed is not None and streak[-1]["started"] <= resumed else streak

    def trip(self, pipeline: str, failures: List[Dict[str, Any]], *, now: dt.datetime, trigger: str) -> Dict[str, Any]:
        """Create the model's pause (only if none exists: a duplicate event or a concurrent invocation finds it and
        pages nobody) and page once; starts nothing."""
        model, parameter, last = self.models[pipeline], self.pauses[pipeline], failures[0]
        resume = self.resume_command(model)
        why = (f"circuit breaker: the last {len(failures)} executions the retrain trigger started failed (not the gate); "
               f"the last, {last['execution']}, at step {last['step']}: {last['failure']}")
        decision = {"started": False, "reason": BREAKER, "pipeline": pipeline, "trigger": trigger,
                    "failures": [f["execution"] for f in failures], "pause": parameter}
        try:
            # Unannounced until the page went out: should this invocation end before it (SNS and SSM both failing,
            # a timeout), the next one that finds the pause pages it (``announce``).
            self.ssm.put_parameter(Name=parameter, Value=pause_value(reason=why[:480], by=RETRAINING_BREAKER, at=_stamp(now),
                                                                     announced=False),
                                   Type="String", Overwrite=False,
                                   Description=f"Pauses automatic retraining of {model} (the retrain trigger's circuit "
                                               f"breaker); {resume}")
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ParameterAlreadyExists":
                return {**decision, "paged": False, "detail": "already paused (another invocation tripped it, or a person)"}
            raise BreakerUnknown(f"cannot write the circuit breaker's pause {parameter}: {error}; {pipeline} was not "
                                 "started") from error
        message = (f"Retraining of model '{model}' ({pipeline}) is PAUSED by the retrain trigger's circuit breaker: the "
                   f"last {len(failures)} executions it started failed on something other than the gate "
                   f"({', '.join(f['execution'] for f in failures)}). The last failed at step {last['step']}: "
                   f"{last['failure']}. No drift alarm, hourly sweep or retraining schedule starts it until the cause is "
                   f"fixed and a person runs: {resume} (or an execution started by hand succeeds). A retrain alarm "
                   "still in ALARM is then answered by the next hourly sweep. Steps of the last execution: aws sagemaker "
                   f"list-pipeline-execution-steps --pipeline-execution-arn {last['execution']} --region "
                   f"{_region_of(last['execution'])} (docs/monitoring.md, Pausing retraining)")
        try:
            self._publish(pipeline, f"Retraining of {model} paused: {len(failures)} failed runs", message)
        except (BotoCoreError, ClientError) as error:
            # Unannounced, the pause would hold unseen: take it back, so that the retry trips and pages again.
            try:
                self.ssm.delete_parameter(Name=parameter)
            except (BotoCoreError, ClientError) as kept:
                # The pause stays, recorded unannounced: the retry (or the next sweep, alarm or schedule) that finds it
                # pages it (``announce``).
                raise BreakerUnknown(f"cannot page the circuit breaker's pause of {model}: {error}; nor take the pause "
                                     f"back ({parameter}: {kept}): retraining of {model} stays paused, unannounced, "
                                     f"until a person runs: {resume}; the next invocation that finds the pause pages "
                                     "it") from error
            raise BreakerUnknown(f"cannot page the circuit breaker's pause of {model}: {error}; the pause was taken back "
                                 "and the invocation fails (it is retried)") from error
        self._mark_announced(pipeline, reason=why[:480], at=_stamp(now))
        return {**decision, "paged": True}

    def announce(self, pipeline: str, pause: Mapping[str, str]) -> bool:
        """Page the breaker's ``pause`` of ``pipeline`` that its invocation left unannounced, then record it announced,
        so that later invocations page nobody; starts nothing. Raises BreakerUnknown when the page cannot be sent (the
        invocation fails and is retried; the pause stays, still unannounced)."""
        model = self.models[pipeline]
        resume = self.resume_command(model)
        message = (f"Retraining of model '{model}' ({pipeline}) has been PAUSED by the retrain trigger's circuit breaker "
                   f"since {pause.get('at')}; this page is late: the invocation that paused it could not send it. "
                   f"Why: {pause.get('reason')}. No drift alarm, hourly sweep or retraining schedule starts it until the "
                   f"cause is fixed and a person runs: {resume} (or an execution started by hand succeeds). A retrain "
                   "alarm still in ALARM is then answered by the next hourly sweep (docs/monitoring.md, Pausing retraining)")
        try:
            self._publish(pipeline, f"Retraining of {model} paused by the circuit breaker (late notice)", message)
        except (BotoCoreError, ClientError) as error:
            raise BreakerUnknown(f"cannot page the circuit breaker's pause of {model}, which stands unannounced since "
                                 f"{pause.get('at')}: {error}; the invocation fails (it is retried, and every later "
                                 f"invocation that finds the pause pages it); to lift the pause: {resume}") from error
        self._mark_announced(pipeline, reason=pause.get("reason", ""), at=pause.get("at", ""))
        return True

    def unannounced(self) -> List[tuple]:
        """``(pipeline, pause)`` of every model whose breaker's pause stands unannounced (read in GetParameters calls of
        at most 10 names, SSM's limit). Raises BreakerUnknown when SSM does not answer."""
        by_name = {name: pipeline for pipeline, name in self.pauses.items()}
        names, found = sorted(by_name), []
        for start in range(0, len(names), 10):
            try:
                found += self.ssm.get_parameters(Names=names[start:start + 10]).get("Parameters", [])
            except (BotoCoreError, ClientError) as error:
                raise BreakerUnknown(f"cannot read the circuit breaker's pauses {names[start:start + 10]}: {error}") from error
        out = []
        for parameter in found:
            pause = {"parameter": parameter["Name"], **pause_record(parameter.get("Value", ""))}
            pipeline = by_name.get(parameter["Name"])
            if pipeline and self.tripped(pipeline, pause) and pause.get(RETRAINING_PAUSE_ANNOUNCED) == "no":
                out.append((pipeline, pause))
        return sorted(out, key=lambda item: item[0])

    def _publish(self, pipeline: str, subject: str, message: str) -> None:
        topic = self.topic_arn.of(pipeline) if isinstance(self.topic_arn, Topics) else self.topic_arn
        (self.sns or boto3.client("sns")).publish(TopicArn=topic, Subject=subject, Message=message)

    def _mark_announced(self, pipeline: str, *, reason: str, at: str) -> None:
        """Record in the pause that its page went out. If SSM refuses, the page is sent but not recorded: the next
        invocation that finds the pause pages again (a second page rather than none). Only onto the pause that was
        paged, read again just before: SSM has no conditional overwrite, and a person who resumed (the pause deleted) or
        paused the model themselves while the page went out must not find the breaker's pause written back over that
        (the window left is the read-to-write gap, milliseconds, not the page's)."""
        name = self.pauses[pipeline]
        try:
            current = self.ssm.get_parameters(Names=[name]).get("Parameters", [])
        except (BotoCoreError, ClientError) as error:
            LOG.warning(json.dumps({"breaker": "paged, not recorded", "pipeline": pipeline, "detail": str(error),
                                    "effect": "the next invocation that finds the pause pages it again"}))
            return
        record = pause_record(current[0].get("Value", "")) if current else None
        if (record is None or record.get("by") != RETRAINING_BREAKER or record.get("at") != at
                or record.get(RETRAINING_PAUSE_ANNOUNCED) != "no"):
            LOG.info(json.dumps({"breaker": "paged; the pause changed meanwhile, left as it is", "pipeline": pipeline,
                                 "pause": record}))
            return
        try:
            self.ssm.put_parameter(Name=self.pauses[pipeline], Type="String", Overwrite=True,
                                   Value=pause_value(reason=reason, by=RETRAINING_BREAKER, at=at, announced=True))
        except (BotoCoreError, ClientError) as error:
            LOG.warning(json.dumps({"breaker": "paged, not recorded", "pipeline": pipeline, "detail": str(error),
                                    "effect": "the next invocation that finds the pause pages it again"}))

    def _resumed(self, pipeline: str) -> Optional[dt.datetime]:
        """When a person last resumed ``pipeline``'s model or the whole environment, whichever is later."""
        names = [name for name in (self.environment_reset, self.resets.get(pipeline)) if name]
        if not names:
            return None
        try:
            found = self.ssm.get_parameters(Names=names).get("Parameters", [])
        except (BotoCoreError, ClientError) as error:
            raise BreakerUnknown(f"cannot read when retraining of {pipeline} was last resumed ({names}): {error}; it was "
                                 "not started") from error
        stamps = [_stamp_of(pause_record(p.get("Value", ""))["at"]) for p in found]
        return max((s for s in stamps if s is not None), default=None)


def _automatic(execution: Mapping[str, Any]) -> bool:
    """Whether the trigger started ``execution`` on its own (a drift alarm, the sweep or a schedule)."""
    name = str(execution.get("PipelineExecutionDisplayName") or "")
    return any(name.startswith(f"{reason}-") for reason in AUTOMATIC)


def _stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _stamp_of(value: str) -> Optional[dt.datetime]:
    try:
        return _aware(value)
    except ValueError:
        return None


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


def settings_of(environ: Mapping[str, str]) -> Dict[str, Any]:
    """The function's settings from its environment: ``NAME_PREFIX`` (the environment's resource prefix),
    ``MODEL_PIPELINES`` (JSON: model -> its training pipeline), ``COOLDOWN_HOURS`` (default 24, the config's),
    ``MAX_STARTS_PER_DAY`` (the storm guard, default 3), ``FAILURES_BEFORE_PAUSE`` (the circuit breaker, default 2),
    ``TOPIC_ARN`` (where the breaker pages; ``TEAM_TOPICS``, the deploy handler's format: a team's topic name -> its models'
    package groups ``<NAME_PREFIX>-<model>``, where it pages about those models instead), ``ENVIRONMENT`` (the environment's name, for the resume command) and
    ``CLI_CONFIG`` (the resume command's --config, set for an app of another config than the default; unset: none).

    The pipelines it may start, each model's retrain alarms and pause parameters follow from the prefix and the models
    by the contract's names, so the configuration grows by one short entry per model (Lambda allows 4 KB of
    environment in all)."""
    prefix = environ.get("NAME_PREFIX", "")
    if not prefix:
        # A function that cannot find the pause starts nothing (failing closed, as when SSM does not answer).
        raise PauseUnknown("NAME_PREFIX is not set: the function cannot find the retraining pause and started nothing; "
                           "deploy the Operations stack again (cdk deploy) to restore the environment it sets")
    models: Dict[str, str] = json.loads(environ.get("MODEL_PIPELINES") or "{}")
    names = retrain_trigger_names(prefix, models)
    max_starts = int(environ.get("MAX_STARTS_PER_DAY", str(MAX_STARTS_PER_DAY)))
    if max_starts < 1:
        # The config refuses it (monitoring.retraining_max_starts_per_day, 1-6); a hand-edited environment could not.
        raise ValueError(f"MAX_STARTS_PER_DAY={max_starts}: the storm guard needs at least 1 start a day; set "
                         "monitoring.retraining_max_starts_per_day in the config and deploy the Operations stack again")
    failures = int(environ.get("FAILURES_BEFORE_PAUSE", str(DEFAULT_RETRAINING_FAILURES_BEFORE_PAUSE)))
    if failures < 1:
        raise ValueError(f"FAILURES_BEFORE_PAUSE={failures}: the circuit breaker needs at least 1 failure; set "
                         "monitoring.retraining_failures_before_pause in the config and deploy the Operations stack again")
    cooldown_hours = float(environ.get("COOLDOWN_HOURS", str(DEFAULT_RETRAINING_COOLDOWN_HOURS)))
    groups = {package_group_name(prefix, model): pipeline for model, pipeline in models.items()}
    team_topics = team_topics_setting(environ.get("TEAM_TOPICS", ""), groups, topic_arn=environ.get("TOPIC_ARN", ""),
                                      topic_variable="TOPIC_ARN",
                                      unknown="which is no model's of MODEL_PIPELINES (NAME_PREFIX-<model>): give each "
                                              "team's topic the groups of its models this function retrains")
    topics = Topics(environ.get("TOPIC_ARN", ""), {groups[group]: arn for group, arn in team_topics.items()})
    return {"allowed": frozenset(models.values()), "cooldown_hours": cooldown_hours,
            "max_starts_per_day": max_starts, "failures_before_pause": failures,
            "topic_arn": topics, "environment": environ.get("ENVIRONMENT", "ENV"),
            "config": environ.get("CLI_CONFIG") or None,
            "models": {pipeline: model for model, pipeline in models.items()},
            "model_reset_parameters": names.model_reset_parameters, "reset_parameter": names.reset_parameter,
            "alarm_pipelines": names.alarm_pipelines, "pause_parameter": names.pause_parameter,
            "model_pause_parameters": names.model_pause_parameters}


def _aware(value: Any) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def _preview(event: Any) -> str:
    return json.dumps(event, default=str)[:500]


def _region_of(arn: str) -> str:
    """The region of ``arn`` for the ``--region`` of a command a page gives; the function's own when it has none."""
    return region_of_arn(arn) or os.environ.get("AWS_REGION", "<region>")
