"""What a deploy does to work already running: a role, or statements of a role, taken away from jobs, pipelines,
schedules and functions that ran as it in the base template (RUNNING WORK), a pipeline whose role stops granting an
object its base definition reads (a job code asset's new key: executions under way read the old one at each later step;
RUNNING WORK too), and statements moving between the policies of one role (AccessPolicy splits a role's statements
over several managed policies by size).

Why a reviewer must hear of it: a run started before the deploy keeps the session of the role it started with, and
IAM evaluates that session's permissions on every request ("Permissions assigned to temporary security credentials
are evaluated each time they are used to make an AWS request. Once you remove all permissions from the credentials,
AWS requests that use them fail": IAM User Guide, "Disabling permissions for temporary security credentials",
https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_temp_control-access_disable-perms.html; "Deleting a
role ... that is associated with a running instance will break any applications running on the instance": IAM User
Guide, "Delete roles or instance profiles"). CloudFormation updates a changed policy during the update and deletes a
removed role or policy in the cleanup phase after every update; a run in progress is cut off from then on, partway.
Resources are updated "in parallel to the extent possible" (CloudFormation User Guide, DependsOn attribute), so two
policies of one role, one losing a statement and the other gaining it, may leave the role with neither for a moment.

Only statements with a Sid are followed (every AccessPolicy statement has one); a statement whose actions are
narrowed under the same Sid is an [IAM] modification, not a removal. Users and schedules are read from the base
template (schedules from every stack of the environment: the retraining schedules live in another stack than the
pipelines they start); a role used only from another stack (through an export) is not followed.
"""

from __future__ import annotations

import json
import re
from typing import Iterable, Optional

from .model import CATEGORY_IAM, CATEGORY_RUNNING_WORK, KEPT_DELETION_POLICIES, MISSING, Callout, StackDiff, refers_to

_POLICY_TYPES = ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy")
# Property names (any depth) that hold the role something runs as; a schedule's Target.Input holds the role of the
# job it creates (RoleArn inside the request).
_ROLE_PROPERTY = re.compile(r"Role(Arn|ARN)?$")
# How many users and schedules one call-out names before "and N more".
_NAMED = 8


def _runs_as(value: object, role_id: str) -> bool:
    """Whether a resource's properties give ``role_id`` as the role it (or the job it starts) runs as."""
    if isinstance(value, dict):
        for key, item in value.items():
            if (_ROLE_PROPERTY.search(key) or key == "Input") and refers_to(item, role_id):
                return True
            if _runs_as(item, role_id):
                return True
    elif isinstance(value, list):
        return any(_runs_as(v, role_id) for v in value)
    return False


def _is_iam(resource_type: str) -> bool:
    return resource_type.startswith(("AWS::IAM::", "AWS::KMS::")) or resource_type.endswith("Policy") \
        or resource_type == "AWS::Lambda::Permission"


def _users(resources: dict[str, dict], role_id: str) -> list[tuple[str, dict]]:
    """The resources of one template that run as role ``role_id`` (or start jobs that do), in template order."""
    return [(lid, r) for lid, r in resources.items()
            if not _is_iam(str(r.get("Type", ""))) and _runs_as(r.get("Properties") or {}, role_id)]


def _props(resource: dict) -> dict:
    return resource.get("Properties") or {}


def _text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _glue_schedules(resources: dict[str, dict], target_id: str, seen: Optional[set] = None) -> list[str]:
    """The scheduled Glue triggers that start ``target_id`` (a job or crawler), directly or through conditional
    triggers after another job or crawler: ``<trigger name> <cron>``."""
    seen = seen if seen is not None else set()
    if target_id in seen:
        return []
    seen.add(target_id)
    out = []
    crawler_schedule = (_props(resources.get(target_id, {})).get("Schedule") or {})
    if isinstance(crawler_schedule, dict) and isinstance(crawler_schedule.get("ScheduleExpression"), str):
        out.append(f"crawler schedule {crawler_schedule['ScheduleExpression']}")
    for lid, r in resources.items():
        props = _props(r)
        if r.get("Type") != "AWS::Glue::Trigger" or not refers_to(props.get("Actions"), target_id):
            continue
        if props.get("Type") == "SCHEDULED":
            out.append(f"trigger {props.get('Name', lid)} {props.get('Schedule')}")
        elif props.get("Type") == "CONDITIONAL":
            for condition in (props.get("Predicate") or {}).get("Conditions") or []:
                for key in ("JobName", "CrawlerName"):
                    ref = (condition.get(key) or {}).get("Ref") if isinstance(condition.get(key), dict) else None
                    if isinstance(ref, str):
                        out += _glue_schedules(resources, ref, seen)
    return list(dict.fromkeys(out))


def _expression(resource: dict) -> Optional[str]:
    props = _props(resource)
    expression = props.get("ScheduleExpression")
    if expression is None:
        expression = ((props.get("MonitoringScheduleConfig") or {}).get("ScheduleConfig") or {}).get("ScheduleExpression")
    return expression if isinstance(expression, str) else None


def _schedule_label(lid: str, resource: dict) -> str:
    props = _props(resource)
    name = props.get("Name") or props.get("MonitoringScheduleName")
    return f"{'schedule' if resource.get('Type') != 'AWS::Events::Rule' else 'rule'} {name if isinstance(name, str) else lid}"


def _schedules_of(lid: str, resource: dict, *, stack: dict[str, dict], environment: Iterable[dict[str, dict]]) -> list[str]:
    """When ``resource`` (logical id ``lid`` in ``stack``, the base template) runs: ``<what starts it> <expression>``."""
    kind, props = resource.get("Type"), _props(resource)
    if kind in ("AWS::Glue::Job", "AWS::Glue::Crawler"):
        return _glue_schedules(stack, lid)
    own = _expression(resource)
    if own is not None:
        return [own]
    out = []
    if kind == "AWS::SageMaker::Pipeline" and isinstance(props.get("PipelineName"), str):
        # Started by name (the retraining schedules' input names the pipeline), from any stack of the environment.
        for resources in environment:
            for sid, s in resources.items():
                if s.get("Type") in ("AWS::Scheduler::Schedule", "AWS::Events::Rule") and _expression(s) and \
                        f'"{props["PipelineName"]}"' in "".join(_strings(_props(s).get("Target") or _props(s).get("Targets"))):
                    out.append(f"{_schedule_label(sid, s)} {_expression(s)}")
    elif kind == "AWS::Lambda::Function":
        for sid, s in stack.items():
            if s.get("Type") in ("AWS::Scheduler::Schedule", "AWS::Events::Rule") and _expression(s) and \
                    refers_to(_props(s).get("Target") or _props(s).get("Targets"), lid):
                out.append(f"{_schedule_label(sid, s)} {_expression(s)}")
    elif kind and kind.startswith("AWS::SageMaker::") and kind.endswith("JobDefinition"):
        name = props.get("JobDefinitionName")
        for sid, s in stack.items():
            if s.get("Type") == "AWS::SageMaker::MonitoringSchedule" and _expression(s) and (
                    refers_to(_props(s), lid) or (isinstance(name, str) and name in _strings(_props(s)))):
                out.append(f"{_schedule_label(sid, s)} {_expression(s)}")
    return list(dict.fromkeys(out))


def _strings(value: object) -> list[str]:
    """The string leaves of ``value`` in order: the text of an Fn::Join (a request with a role ARN token in it)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _request_prefix(resource: dict, key: str) -> str:
    """The fixed start of the job name a schedule's request gives (``mon-0693726327-``), else ""."""
    match = re.search(rf'"{key}"\s*:\s*"([^"<]*)', "".join(_strings(_props(resource).get("Target", {}).get("Input", ""))))
    return match.group(1) if match else ""


def _describe(lid: str, resource: dict, region: str) -> tuple[str, Optional[str]]:
    """(what it is, the command that shows whether a run of it is in progress, if there is one)."""
    kind, props = resource.get("Type"), _props(resource)
    if kind == "AWS::Glue::Job":
        name = props.get("Name", lid)
        timeout = f", up to {props['Timeout']} min a run" if isinstance(props.get("Timeout"), int) else ""
        return (f"Glue job {name}{timeout}", f"aws glue get-job-runs --job-name {name} --region {region} "
                                    "--query \"JobRuns[?JobRunState=='RUNNING' || JobRunState=='STARTING'].Id\"")
    if kind == "AWS::Glue::Crawler":
        name = props.get("Name", lid)
        return f"Glue crawler {name}", f"aws glue get-crawler --name {name} --region {region} --query Crawler.State"
    if kind == "AWS::SageMaker::Pipeline":
        name = props.get("PipelineName", lid)
        return (f"pipeline {name}", f"aws sagemaker list-pipeline-executions --pipeline-name {name} --region {region} "
                                    "--query \"PipelineExecutionSummaries[?PipelineExecutionStatus=='Executing']"
                                    ".PipelineExecutionArn\"")
    if kind == "AWS::Lambda::Function":
        name = props.get("FunctionName", lid)
        timeout = props.get("Timeout", 3)
        return f"Lambda function {name if isinstance(name, str) else lid} (an invocation runs up to {timeout} s)", None
    if kind == "AWS::Scheduler::Schedule":
        action = _text(_props(resource).get("Target", {}).get("Arn", "")).rsplit(":", 1)[-1]
        label = _schedule_label(lid, resource)
        for create, listing, key in (("createProcessingJob", "list-processing-jobs", "ProcessingJobName"),
                                     ("createTransformJob", "list-transform-jobs", "TransformJobName"),
                                     ("createTrainingJob", "list-training-jobs", "TrainingJobName")):
            if action == create:
                prefix = _request_prefix(resource, key)
                contains = f" --name-contains {prefix}" if prefix else ""
                return (f"the {action} jobs of {label}",
                        f"aws sagemaker {listing} --status-equals InProgress{contains} --region {region}")
        return f"{label} ({action or 'its target'})", None
    return f"{kind} {lid}", None


def _work(role_id: str, *, stack: dict[str, dict], environment: list[dict[str, dict]], region: str) -> tuple[str, list[str]]:
    """What ran as ``role_id`` in the base template, with when it runs; and the commands that show a run in progress."""
    named, commands = [], []
    for lid, resource in _users(stack, role_id):
        what, command = _describe(lid, resource, region)
        schedules = _schedules_of(lid, resource, stack=stack, environment=environment)
        named.append(what + (f" (runs on {', '.join(schedules)})" if schedules else ""))
        if command:
            commands.append(command)
    text = "; ".join(named[:_NAMED]) + (f"; and {len(named) - _NAMED} more" if len(named) > _NAMED else "")
    return text, _one_loop_for_glue_jobs(list(dict.fromkeys(commands)), region)


def _one_loop_for_glue_jobs(commands: list[str], region: str) -> list[str]:
    """The get-job-runs commands of several Glue jobs as one loop over their names (a role often runs a dataset's
    curate and feature jobs, or all of them)."""
    jobs = [m.group(1) for c in commands for m in [re.match(r"aws glue get-job-runs --job-name (\S+) ", c)] if m]
    if len(jobs) < 2:
        return commands
    loop = (f"for job in {' '.join(jobs)}; do aws glue get-job-runs --job-name \"$job\" --region {region} "
            "--query \"JobRuns[?JobRunState=='RUNNING' || JobRunState=='STARTING'].[JobName,Id]\" --output text; done")
    others = [c for c in commands if not c.startswith("aws glue get-job-runs ")]
    return [loop, *others]


def _advice(commands: list[str]) -> str:
    check = (" Check first that nothing of theirs is running: " + "; ".join(f"`{c}`" for c in commands[:_NAMED])
             + (f"; and {len(commands) - _NAMED} more" if len(commands) > _NAMED else "")) if commands else ""
    return ("Deploy outside those windows (docs/reviewing-deploying-auditing.md, \"Upgrading a running deployment\")." + check)


def _statements(document: object) -> dict[str, dict]:
    """Sid -> statement of a policy document (statements without a Sid are not followed)."""
    if not isinstance(document, dict):
        return {}
    statements = document.get("Statement")
    statements = [statements] if isinstance(statements, dict) else statements or []
    return {s["Sid"]: s for s in statements if isinstance(s, dict) and isinstance(s.get("Sid"), str)}


def _role_ids(roles: object) -> list[str]:
    return [r["Ref"] for r in roles or [] if isinstance(r, dict) and isinstance(r.get("Ref"), str)] \
        if isinstance(roles, list) else []


def grants(resources: dict[str, dict]) -> dict[str, dict[str, dict[str, dict]]]:
    """Role logical id -> Sid -> policy logical id -> statement: what each role of a template is granted, through
    its managed and inline policies (``AWS::IAM::Policy``) and the policies inside the role (``<role>.<PolicyName>``)."""
    out: dict[str, dict[str, dict[str, dict]]] = {}
    for lid, resource in resources.items():
        props = _props(resource)
        if resource.get("Type") in _POLICY_TYPES:
            for role in _role_ids(props.get("Roles")):
                for sid, statement in _statements(props.get("PolicyDocument")).items():
                    out.setdefault(role, {}).setdefault(sid, {})[lid] = statement
        elif resource.get("Type") == "AWS::IAM::Role":
            for policy in props.get("Policies") or []:
                if isinstance(policy, dict):
                    for sid, statement in _statements(policy.get("PolicyDocument")).items():
                        out.setdefault(lid, {}).setdefault(sid, {})[f"{lid}.{policy.get('PolicyName')}"] = statement
    return out


def _removed_role(old: dict[str, dict], new: dict[str, dict], role_id: str) -> bool:
    """Whether the deploy deletes role ``role_id`` of the base: gone from the head (and not kept by its
    DeletionPolicy), or replaced (a create-only property changed: the old one is deleted in the cleanup phase)."""
    if role_id not in new:
        return old[role_id].get("DeletionPolicy", "Delete") not in KEPT_DELETION_POLICIES
    return False


def running_work_callouts(stack: StackDiff, *, old: dict[str, dict], new: dict[str, dict],
                          environment: list[dict[str, dict]], region: str) -> list[Callout]:
    """RUNNING WORK and moved-statement call-outs of one stack both sides have; ``old``/``new`` its base and head
    resources, ``environment`` the base resources of every stack of its environment, ``region`` where it deploys.

    Marks each moved statement's property changes (``PropertyChange.moved``), so the [IAM] call-outs and the details
    show a move rather than a removal and an addition."""
    out: list[Callout] = []
    replaced_roles = {rc.logical_id for rc in stack.resources
                      if rc.resource_type == "AWS::IAM::Role" and rc.kind == "replaced" and not rc.renamed_from}
    changes = {rc.logical_id: rc for rc in stack.resources}
    before, after = grants(old), grants(new)
    for role_id, resource in old.items():
        if resource.get("Type") != "AWS::IAM::Role":
            continue
        deleted = _removed_role(old, new, role_id) or role_id in replaced_roles
        work, commands = _work(role_id, stack=old, environment=environment, region=region)
        if deleted:
            if work:
                policies = sorted({p for by_policy in before.get(role_id, {}).values() for p in by_policy
                                   if "." not in p and p not in new})
                with_policies = f" with its policies {', '.join(policies)}" if policies else ""
                what = "replaced: the old role is deleted" if role_id in replaced_roles else "removed: deleted"
                out.append(Callout(
                    stack.stage, CATEGORY_RUNNING_WORK, stack.short_name, role_id, "AWS::IAM::Role",
                    f"{what}{with_policies} in the cleanup phase of the deploy. It was the role of: {work}. A run "
                    "started before the deploy keeps this role's session, and IAM evaluates a session's permissions "
                    "on every request: from then on its requests are denied and the run fails partway (a Glue job "
                    "can be cut in the middle of its commit). " + _advice(commands)))
            continue
        lost: dict[str, list[str]] = {}  # policy -> Sids it no longer grants this role, and the role has nowhere else
        moves: dict[tuple[str, str], list[str]] = {}
        for sid, by_policy in before.get(role_id, {}).items():
            now = after.get(role_id, {}).get(sid, {})
            gone = [p for p in by_policy if p not in now]
            arrived = [p for p in now if p not in by_policy]
            for policy in gone:
                if not now:
                    lost.setdefault(policy, []).append(sid)
                elif arrived:
                    moves.setdefault((policy, arrived[0]), []).append(sid)
        for (source, target), sids in moves.items():
            _mark_move(changes, source, target, sids)
            removed_source = source not in new
            gap = ("no gap: the old policy is deleted only in the cleanup phase, after the new one is in place"
                   if removed_source else
                   "CloudFormation updates the two policies in parallel (nothing orders them), so for a moment the role "
                   "may have neither: a request made as it in that gap (seconds) is denied, e.g. a job it starts then "
                   "fails. Deploy when nothing runs as it, or re-run what failed")
            out.append(Callout(
                stack.stage, CATEGORY_IAM, stack.short_name, target,
                str((new.get(target) or {}).get("Type", "AWS::IAM::ManagedPolicy")),
                f"statement{'s' if len(sids) > 1 else ''} {', '.join(sids)} moved from {source} to {target}, both of role "
                f"{role_id} (not removed and added: the role keeps them); {gap}"))
        out += _inputs_lost(stack, role_id, old=old, before=before.get(role_id, {}), after=after.get(role_id, {}),
                            environment=environment, region=region)
        if not lost or not work:
            continue
        for policy, sids in lost.items():
            if "." in policy:
                how, when = f"removed from its inline policy {policy.split('.', 1)[1]}", "when the role is updated"
            elif policy not in new:
                how, when = f"removed with policy {policy}", "in the cleanup phase of the deploy, when it is deleted"
            elif role_id not in _role_ids(_props(new[policy]).get("Roles")):
                how, when = f"with policy {policy}, detached from it", "when the policy is updated, during the deploy"
            else:
                how, when = f"removed from policy {policy}", "when the policy is updated, during the deploy"
            out.append(Callout(
                stack.stage, CATEGORY_RUNNING_WORK, stack.short_name, policy if "." not in policy else role_id,
                str((old.get(policy) or resource).get("Type")),
                f"statement{'s' if len(sids) > 1 else ''} {', '.join(sids)} of role {role_id} taken away ({how}) {when}. "
                f"The role stays in use: {work}. A run started before the deploy runs on as this role, and IAM "
                "evaluates its permissions on every request: from then on what those statements allowed is denied "
                "to it, partway through. " + _advice(commands)))
    return out


def _objects(statement: dict) -> list[str]:
    """The S3 objects (``bucket/key``, no wildcard) a statement names in its Resource; a token's own name (a ``Ref``
    of the account) stands in its place, the same on both sides of the diff."""
    resources = statement.get("Resource")
    out = []
    for resource in resources if isinstance(resources, list) else [resources]:
        text = "".join(_strings(resource))
        _, sep, rest = text.partition(":s3:::")
        if sep and "/" in rest and "*" not in rest:
            out.append(rest)
    return out


def _inputs_lost(stack: StackDiff, role_id: str, *, old: dict[str, dict], before: dict[str, dict[str, dict]],
                 after: dict[str, dict[str, dict]], environment: list[dict[str, dict]], region: str) -> list[Callout]:
    """RUNNING WORK of each pipeline of the base that runs as ``role_id`` while the role stops granting an S3 object its
    base definition reads (``before``/``after``: Sid -> policy -> statement of the role). A job reads its inputs when
    it starts, but a pipeline execution starts its steps one after the other on the definition it started with: a job
    code asset whose key changed (the role's grant moving to the new key under the same Sid) leaves an execution
    started before the deploy unable to download the old one at each step it starts after it."""
    granted_after = {o for by_policy in after.values() for st in by_policy.values() for o in _objects(st)}
    out: list[Callout] = []
    for lid, resource in _users(old, role_id):
        if resource.get("Type") != "AWS::SageMaker::Pipeline":
            continue
        definition = "".join(_strings(_props(resource).get("PipelineDefinition")))
        lost = {}  # object -> the Sid that granted it
        for sid, by_policy in before.items():
            for statement in by_policy.values():
                for obj in _objects(statement):
                    key = obj.split("/", 1)[1]
                    if obj not in granted_after and len(key) >= 16 and key in definition:
                        lost.setdefault(obj, sid)
        if not lost:
            continue
        what, command = _describe(lid, resource, region)
        schedules = _schedules_of(lid, resource, stack=old, environment=environment)
        when = f" (runs on {', '.join(schedules)})" if schedules else ""
        named = ", ".join(f"statement {sid}: {obj.split('/', 1)[0]}/{obj.split('/', 1)[1][:12]}…"
                          for obj, sid in list(lost.items())[:_NAMED])
        more = f"; and {len(lost) - _NAMED} more" if len(lost) > _NAMED else ""
        out.append(Callout(
            stack.stage, CATEGORY_RUNNING_WORK, stack.short_name, lid, "AWS::SageMaker::Pipeline",
            f"{what}{when}: an execution started before the deploy runs on the definition it started with, and each "
            f"step it starts after the deploy reads that definition's inputs as role {role_id}, which no longer grants "
            f"{len(lost)} of them ({named}{more}): that step fails to download it (AccessDenied), and the execution "
            "with it; steps already running finish. " + _advice([command] if command else [])))
    return out


def _mark_move(changes: dict, source: str, target: str, sids: list[str]) -> None:
    """Say "moved" on the statement changes of both policies (removed from ``source``, added to ``target``)."""
    for policy, other, direction in ((source, target, "to"), (target, source, "from")):
        rc = changes.get(policy)
        for change in rc.changes if rc else []:
            sid = change.path[-1].removeprefix("[Sid=").removesuffix("]") if change.path else ""
            if sid in sids and change.path[-2:-1] == ("Statement",) and MISSING in (change.old, change.new):
                change.moved = f"moved {direction} {other} (same role)"
