"""Run records: the pipeline execution that registered an approved version (its definition, parameters and steps),
kept as one write-once JSON document below ``run-records/`` before SageMaker deletes it with its pipeline (see
:mod:`pipeline_code.handlers.deploy_on_approval`)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
from typing import Any, Callable, Dict, List, Mapping, Optional

from botocore.exceptions import BotoCoreError, ClientError

from pipeline_code.core import approval as approval_rule
from pipeline_code.core import integrity
from pipeline_code.core.contract import PIPELINE_EXECUTION_ENDED, RECORD_EXECUTION_ACTION, package_created, pipeline_group
from pipeline_code.handlers.deploy.events import aware
from pipeline_code.handlers.deploy.ledger import Ledger, json_value
from pipeline_code.handlers.deploy.notices import Notifier, invoke_command, rollback_command

LOG = logging.getLogger(__name__)


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
                notify: "Notifier", recorded_by: Optional[str] = None,
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
                  f"should serve, on every reconcile; to try now, "
                  f"{invoke_command({'action': RECORD_RUN_ACTION, 'group': group, 'version': version})}.")


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
        "recorded_at": aware(now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc).isoformat(),
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
    record = json.loads(json.dumps(record, default=json_value))
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
                     notifier: Callable[[str], "Notifier"], recorded_by: Optional[str] = None,
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
        return _told(result, notifier(group), ledger.models.get(group))
    except KeyError as error:
        return _told({**base, "version": None, "outcome": "failed",
                      "reason": f"DescribePipelineExecution of {execution_arn} gave no {error}"}, notifier(group), ledger.models.get(group))
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
    return _told(result, notifier(group), ledger.models.get(group)) if result["outcome"] in ("failed", "lost", "pending") else result


def _told(result: Dict[str, Any], notify: "Notifier", model: Optional[str] = None) -> Dict[str, Any]:
    """``result`` (a run record not written at an execution's end) logged as an error and told to people; ``model``:
    the group's model (the ``--model`` of the command that finds the version), None when not known."""
    LOG.error(json.dumps({"run_record_failed": result}, default=str))
    version = result.get("version")
    if isinstance(version, int):
        notify(f"v{version}: run record not written", _run_record_notice(result["group"], result))
    else:
        notify("run record not written",
               f"{result['reason']}. If that execution registered an approved version, its run record (the definition it "
               "ran, its parameters and steps, which the audit needs once the pipeline is deleted) is not kept: find the "
               f"version ({rollback_command(model, 'versions')}) and "
               f"{invoke_command({'action': RECORD_RUN_ACTION, 'group': result['group'], 'version': 'N'})} "
               "(N: that version's number, without the quotes).")
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
