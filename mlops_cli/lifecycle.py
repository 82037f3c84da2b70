"""Stand an environment up again after a failed first deploy, and tear a dev environment down.

    python -m mlops_cli.lifecycle --env staging stacks [--delete-failed-creates]
    python -m mlops_cli.lifecycle --env dev teardown [--execute]

``stacks`` describes every stack of the environment (``<project>-<env>-storage``, ``-data-pipeline``, ``-training``,
``-serving``, ``-operations``) and says, per stack, whether ``cdk deploy`` can proceed from its state. The one it
cannot get past on its own is a stack whose first create failed (``ROLLBACK_COMPLETE`` / ``ROLLBACK_FAILED``) with
termination protection on (the config's default, always outside dev): the CDK CLI turns protection on before it runs the create,
and on the next deploy tries to delete the failed stack, which CloudFormation refuses while protection is on. With
``--delete-failed-creates`` it turns protection off and deletes exactly those stacks (by stack id, then waits until
they are gone), and nothing else; every other state is only reported, with what to do: an update whose rollback failed
(``UPDATE_ROLLBACK_FAILED``) takes ``continue-update-rollback`` with the CDK's cfn-exec role, a failed delete
(``DELETE_FAILED``) another delete (with that role too), an operation in progress a wait. The role is the one of the
CDK bootstrap the app deploys through: its qualifier is read where the CDK CLI reads it (the
``@aws-cdk/core:bootstrapQualifier`` context of cdk.json, cdk.context.json or ~/.cdk.json; the CDK's default
``hnb659fds`` when none sets it), and a value that is no qualifier is refused.

A stack that does not exist (deleted: a ``cdk destroy`` of the wrong stage, a delete-stack once protection was off),
or whose first create failed, is checked for what an earlier stack of that name retained (:mod:`mlops_cli.retained`:
fixed-name buckets and their policies, Glue database, feature and model package groups, log groups, the KMS
keys (a key pending deletion named with when it goes and how to cancel that), and the role the feature groups write
their offline store as): when any is left, the stack BLOCKS - ``cdk
deploy`` would fail "already exists" on each name and create new keys - and the adoption commands are printed, after
what adoption cannot repair (a feature group's role that no longer exists: how to create it again). ``adopt --stack <component>`` writes the ``cdk import`` resource mapping of one
such stack (a dry step: no AWS write) and prints the import and the deploy that follows it. The retained resources
are read from the synthesized app (``--assembly``, default ``cdk.out``): without it, whether anything is left is not
known, and a stack that does not exist blocks too.

``teardown`` empties a **dev** environment so that ``cdk destroy '<env>/*'`` can delete it: it refuses any environment
whose config ``tier`` is not ``dev``, and any bucket not tagged ``project``, ``environment`` and ``tier`` as that dev
environment of the config's project. From the Storage stack's resources it finds the environment's buckets and model
package groups, and from the registry the model cards the pipeline created (``<group>-v<N>-<package creation time>``,
or ``<group>-v<N>`` from before card names carried it: ``contract.model_card_name_regex``; outside CloudFormation).
It also finds, from the Training stack's pipelines, their executions that have not ended: SageMaker deletes no
pipeline with a running execution (DeletePipeline; CloudFormation's handler only calls it), so ``cdk destroy`` would
stop on the Training stack, and such a run writes to the buckets and registers versions after they were emptied.
By default it only lists what it would do (a dry run); ``--execute`` does it, in this order:

0. keeps every function of the Operations stack from running (reserved concurrency 0): the retrain trigger (its
   hourly sweep, the drift alarms) would start a pipeline run after step 1, and the deploy handler writes an
   approval-ledger record into the artifacts bucket on every model package state change; their events are throttled
   until ``cdk destroy`` deletes them (``aws lambda delete-function-concurrency`` undoes it for an environment kept).
   The drift monitors' schedules start their processing jobs themselves and are not stopped; it also deactivates
   every Glue trigger of the DataPipeline stack (the nightly start would run the crawlers and jobs again;
   ``aws glue start-trigger`` undoes it);
1. looks again once step 0 has quieted the environment (a run started since the first look is found too), then
   stops every such execution still ``Executing``, every running crawler of the DataPipeline stack (Glue deletes no
   running crawler: ``cdk destroy`` would stop on that stack) and every run of its jobs that has not ended, and waits
   (up to 30 minutes) until each has ended, then looks at the environment again, so that what the runs wrote and
   registered goes too, and stops what that look finds started meanwhile in turn, until a look finds nothing running
   (at most :data:`STOP_ROUNDS` rounds); one that has not ended by then, or runs still starting after the last round,
   stop the teardown, nothing emptied or deleted (exit 1: run it again once it has ended);
2. deletes the Glue table SageMaker made for each feature group's offline store in its account-wide
   ``sagemaker_featurestore`` database (``DataCatalogConfig`` of ``DescribeFeatureGroup``): it is not the stack's and
   SageMaker's DeleteFeatureGroup leaves it, so every teardown and rebuild would leave another table there, on data
   that is gone;
3. stops every bucket's server access logging (the deletes below would otherwise be logged into the access-logs
   bucket after it was emptied);
4. removes from each bucket policy the statements that deny deleting objects (the write-once prefixes: whatever they
   are, every ``Deny`` covering ``s3:DeleteObject`` or ``s3:DeleteObjectVersion`` that is not a TLS guard), or the
   policy when nothing else is left;
5. deletes every object version and delete marker of every bucket (the buckets are versioned), log-target buckets
   last;
6. deletes every version (model package) of every group (SageMaker deletes no group that still has versions), then
   the groups' model cards.

It then prints the ``cdk destroy`` command and does not run it: the CDK CLI needs the synthesized app and its own
credentials handling, and asks its own confirmation; the last irreversible step stays the operator's. Re-running the
teardown is safe (it lists what is left). Needs credentials of the environment's account that may do all of the above
(an administrator of the dev account).

Both commands act on ``--env`` as the config names it (:mod:`mlops_cli.target`), refuse credentials of another account,
and paginate every listing. Exit 0: nothing blocks a deploy (``stacks``) / dry run or everything deleted (``teardown``);
1: a stack blocks ``cdk deploy`` / something could not be deleted (each said on stderr); 2: an error or a refusal,
one line on stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import fnmatch
import json
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from mlops_cli import retained
from mlops_cli import target as deploy_target
from pipeline_code.core import approval as approval_rule
from pipeline_code.core.contract import (
    cfn_exec_role_arn,
    deploy_handler_name,
    NOTIFICATION_TOPIC_OUTPUTS,
    TEAM_TOPIC_OUTPUT_SUFFIX,
    environment_prefix,
    environment_stack_names,
    STACK_COMPONENTS,
    model_card_name_patterns,
    model_card_name_regex,
    package_group_name,
    PIPELINE_EXECUTION_ENDED,
)

PROG = "python -m mlops_cli.lifecycle"
# A first create that failed: CloudFormation takes no update of such a stack, only its deletion, and `cdk deploy`
# deletes it before creating it again (the CDK CLI's `isCreationFailure`).
FAILED_CREATE = ("ROLLBACK_COMPLETE", "ROLLBACK_FAILED")
# States `cdk deploy` updates from.
DEPLOYABLE = ("CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE",
              "IMPORT_ROLLBACK_COMPLETE", "REVIEW_IN_PROGRESS")
DELETE_ACTIONS = ("s3:DeleteObject", "s3:DeleteObjectVersion")
# Condition keys of the transport guards (TLS only, TLS 1.2 or later): a teardown's requests meet them, so such a
# statement denies none of its deletes and stays.
TRANSPORT_KEYS = ("aws:securetransport", "s3:tlsversion")
# How long `--delete-failed-creates` waits for each deletion: polls every 10 s, up to 30 minutes.
DELETE_WAIT = {"Delay": 10, "MaxAttempts": 180}
# Glue JobRunState values after which a run changes nothing more (GetJobRun).
GLUE_RUN_ENDED = ("SUCCEEDED", "FAILED", "TIMEOUT", "ERROR", "STOPPED", "EXPIRED")
# How long the teardown waits for the pipeline executions, Glue crawlers and job runs it stopped to end (a stopped
# step's job stops first): polls every 15 s, up to 30 minutes.
STOP_WAIT = {"Delay": 15, "MaxAttempts": 120}
# How many rounds of stopping what runs, and looking again, the teardown takes before it gives up: a look after a round
# may find a run started meanwhile (an invocation already under way when the functions were throttled, a trigger that
# fired before it was deactivated), which is stopped in turn; runs that keep starting stop the teardown.
STOP_ROUNDS = 3


class CliError(Exception):
    """A problem the operator can fix, or a refusal; one line, exit code 2."""


# ---------------------------------------------------------------------------------------------------------- stacks


@dataclass(frozen=True)
class StackState:
    """One stack of the environment as CloudFormation describes it (``status`` "" when it does not exist)."""

    name: str
    stack_id: str = ""
    status: str = ""
    protected: bool = False
    reason: str = ""

    @property
    def exists(self) -> bool:
        return bool(self.status)

    @property
    def deletable_failed_create(self) -> bool:
        """A failed first create that termination protection keeps `cdk deploy` from deleting."""
        return self.status in FAILED_CREATE and self.protected

    @property
    def blocks_deploy(self) -> bool:
        if not self.exists or self.status in DEPLOYABLE or self.status.endswith("_IN_PROGRESS"):
            return False
        return not (self.status in FAILED_CREATE and not self.protected)


def describe_stacks(cloudformation: Any, names: Sequence[str]) -> List[StackState]:
    """Each stack of ``names`` as it is now (one DescribeStacks by name each: it answers one stack, no pages)."""
    from botocore.exceptions import ClientError

    states = []
    for name in names:
        try:
            (stack,) = cloudformation.describe_stacks(StackName=name)["Stacks"]
        except ClientError as error:
            if deploy_target.error_code(error) == "ValidationError" and "does not exist" in str(error):
                states.append(StackState(name))
                continue
            raise
        states.append(StackState(name, stack["StackId"], stack["StackStatus"], bool(stack.get("EnableTerminationProtection")),
                                 stack.get("StackStatusReason", "")))
    return states


# What an earlier stack of a name left (retained.Leftovers), or why that was not checked (a line).
Left = Union[retained.Leftovers, str]


def leftovers_block(state: StackState, left: Optional[Left]) -> bool:
    """Whether what an earlier stack of ``state``'s name left (or not knowing it) keeps `cdk deploy` from creating it."""
    return left is not None and (isinstance(left, str) or left.blocks)


def advice(state: StackState, *, account: str, region: str, qualifier: str, left: Optional[Left] = None) -> str:
    """What the state means for `cdk deploy` and what to do about it (``qualifier``: the CDK bootstrap's, whose
    cfn-exec role a rollback or a delete by hand runs as; ``left``: what an earlier stack of its name retained, for a
    stack that does not exist or whose first create failed)."""
    where = f"--region {region}"
    if isinstance(left, str):
        return (f"BLOCKS cdk deploy: {'not deployed' if not state.exists else state.status}, and whether an earlier "
                f"stack of this name left retained resources was not checked: {left}")
    if left is not None and left.blocks:
        first = "" if not state.exists else (
            "delete this failed create first (--delete-failed-creates), then " if state.protected else
            f"delete this failed create first (aws cloudformation delete-stack --stack-name {state.name} {where}), then ")
        return (f"BLOCKS cdk deploy: retained resources of {state.name} exist: adopt them before deploying ({first}see "
                f"below): {'; '.join(left.describe())}")
    if not state.exists:
        return "not deployed" + ("; nothing an earlier stack of this name retained is left" if left is not None else "")
    if state.status in DEPLOYABLE:
        return "ok"
    if state.status.endswith("_IN_PROGRESS"):
        return "an operation is running: wait until it ends, then look again"
    if state.status in FAILED_CREATE:
        if not state.protected:
            return "its first create failed; cdk deploy deletes it and creates it again"
        return (f"BLOCKS cdk deploy: its first create failed and termination protection stops cdk deploy deleting it; "
                f"--delete-failed-creates turns protection off and deletes it ({state.reason or 'see its events'})")
    if state.status == "UPDATE_ROLLBACK_FAILED":
        return ("BLOCKS cdk deploy: an update's rollback failed; see what failed (aws cloudformation describe-stack-events "
                f"--stack-name {state.name} --max-items 40 {where}), fix it, then: aws cloudformation continue-update-rollback "
                f"--stack-name {state.name} --role-arn {cfn_exec_role_arn(account, region, qualifier)} {where} (add "
                "--resources-to-skip with the logical ids of resources that cannot be rolled back)")
    if state.status == "DELETE_FAILED":
        return ("BLOCKS cdk deploy: a deletion failed; see which resource (aws cloudformation describe-stack-events "
                f"--stack-name {state.name} --max-items 40 {where}), then delete it again: aws cloudformation delete-stack "
                f"--stack-name {state.name} --role-arn {cfn_exec_role_arn(account, region, qualifier)} {where} (add --retain-resources "
                "with the logical ids of resources to keep)")
    if state.status in ("CREATE_FAILED", "UPDATE_FAILED"):
        return ("BLOCKS cdk deploy: a deployment with --no-rollback stopped; deploy again, or roll it back (npx cdk "
                "rollback)")
    return f"BLOCKS cdk deploy: state {state.status}"


def render_stacks(states: Sequence[StackState], *, environment: str, account: str, region: str, qualifier: str,
                  left: Optional[Dict[str, Left]] = None, cdk_context: str = "", prefix: str = "",
                  config_option: str = "") -> str:
    left = left or {}
    blocking = [s for s in states if s.blocks_deploy or leftovers_block(s, left.get(s.name))]
    lines = [f"Stacks of environment '{environment}' (account {account}, {region}): "
             + (f"{len(blocking)} block cdk deploy" if blocking else "none blocks cdk deploy")]
    width = max(len(s.name) for s in states)
    for s in states:
        status = f"{s.status} ({'protected' if s.protected else 'unprotected'})" if s.exists else "-"
        lines.append(f"  {s.name.ljust(width)}  {status:40}  "
                     f"{advice(s, account=account, region=region, qualifier=qualifier, left=left.get(s.name))}")
    adopt = [s.name for s in states if isinstance(left.get(s.name), retained.Leftovers) and left[s.name].blocks]
    if adopt:
        components = {name: component for component, name in environment_stack_names(prefix).items()}
        lines.append("Adopt what they left before any deploy, one stack at a time in this order (Storage first: the "
                     "other stacks read its outputs); a new stack would fail on every fixed name and make new KMS keys, "
                     "to which the other stacks' references would then point:")
        for name in adopt:
            # What adoption cannot repair comes first: a role re-created by hand is then found, and imported, by adopt.
            lines += [f"  first: {problem}" for problem in left[name].problems]
            if not left[name].exist:  # only something in the way (deleted first): nothing to import
                continue
            lines += [f"  {command}" for command in adoption_commands(left[name], environment=environment, region=region,
                                                                     component=components[name], cdk_context=cdk_context,
                                                                     config_option=config_option)]
        lines.append(f"  then: npx cdk deploy{cdk_context} '{environment}/*'")
    return "\n".join(lines)


def reconcile_after_deploy(states: Sequence[StackState], left: Dict[str, Left], *, assembly: Path, environment: str,
                           account: str, region: str, prefix: str) -> List[str]:
    """What to run once `cdk deploy` has created the Serving and Operations stacks again while the registry was kept
    (the Storage stack is there, or left its model package groups): the Serving stack comes back with every version
    parameter empty, and its CREATE_COMPLETE comes before the Operations stack's rule that would reconcile it (Operations
    is created after Serving), so each group is reconciled by hand. None when only one of the two is created again (a
    Serving stack created beside an existing Operations stack is reconciled by its rule) or for a new environment."""
    names = environment_stack_names(prefix)
    created = {s.name for s in states if not s.exists or s.status in FAILED_CREATE}
    if names["serving"] not in created or names["operations"] not in created:
        return []
    storage = left.get(names["storage"])
    if names["storage"] in created and not (isinstance(storage, retained.Leftovers) and any(
            storage.stack.template["Resources"][lid]["Type"] == "AWS::SageMaker::ModelPackageGroup" for lid in storage.found)):
        return []
    try:
        template = next(s.template for s in retained.synthesized_stacks(assembly, environment, account, region).values()
                        if s.name == names["storage"])
        groups = sorted(retained.fixed_name(template, r) for r in template["Resources"].values()
                        if r["Type"] == "AWS::SageMaker::ModelPackageGroup")
    except (retained.AssemblyProblem, StopIteration):
        groups = [f"{prefix}-<model>"]
    return ["Then reconcile each model's group: the Serving stack is created again with no version set, before the "
            "Operations stack whose rule reconciles a new Serving stack, so no approved version serves until then (the "
            "reconcile sets the group's latest approved version and creates its endpoint):"] + [
        f"  aws lambda invoke --function-name {deploy_handler_name(prefix)} --cli-binary-format raw-in-base64-out "
        f"--payload '{json.dumps({'action': 'reconcile', 'group': group})}' --region {region} {group}.reconcile.json"
        for group in groups]


def resubscribe_after_deploy(states: Sequence[StackState], left: Dict[str, Left], *, assembly: Path, environment: str,
                             account: str, region: str, prefix: str) -> List[str]:
    """What to run once `cdk deploy` has created the Operations stack again in an environment that existed (its Storage
    stack is there, or something an earlier stack kept was found): its topics come back under new ARNs with no
    subscription (the app subscribes nobody), so people are subscribed again - to the notices, the watchdog and each
    owner team's topic the synthesized stack outputs. None for a new environment or an Operations stack that is there."""
    names = environment_stack_names(prefix)
    created = {s.name for s in states if not s.exists or s.status in FAILED_CREATE}
    existed = names["storage"] not in created or any(isinstance(v, retained.Leftovers) and v.exist for v in left.values())
    if names["operations"] not in created or not existed:
        return []
    outputs = list(NOTIFICATION_TOPIC_OUTPUTS)
    try:
        template = next(s.template for s in retained.synthesized_stacks(assembly, environment, account, region).values()
                        if s.name == names["operations"])
        outputs += sorted(o for o in template.get("Outputs", {}) if o.endswith(TEAM_TOPIC_OUTPUT_SUFFIX))
    except (retained.AssemblyProblem, StopIteration):
        pass
    arn = ("$(aws cloudformation describe-stacks --region {region} --stack-name {stack} --query "
           "\"Stacks[0].Outputs[?OutputKey=='{output}'].OutputValue\" --output text)")
    return ["Then subscribe people again: the Operations stack's topics are created again (the notices' and the "
            "watchdog's under new ARNs) with no subscription (the app subscribes nobody), so no alarm, failed rollout or "
            "dead letter reaches anyone until then; for each address that was subscribed (an email subscription waits "
            "for its confirmation):"] + [
        f"  aws sns subscribe --region {region} --protocol email --notification-endpoint <address> --topic-arn "
        + arn.format(region=region, stack=names["operations"], output=output) for output in outputs]


def mapping_file(stack_name: str) -> str:
    """Where ``adopt`` writes a stack's resource mapping by default (the current directory)."""
    return f"{stack_name}.resource-mapping.json"


def adoption_commands(left: retained.Leftovers, *, environment: str, region: str, component: str, cdk_context: str,
                      mapping: str = "", config_option: str = "") -> List[str]:
    """The commands that adopt ``left``: write the mapping, import it, then deploy the stack (which creates what was
    deleted and adopts by name what the import could not hold)."""
    mapping = mapping or mapping_file(left.stack.name)
    return [f"{PROG} --env {environment}{config_option} --region {region} adopt --stack {component}  (writes {mapping})",
            f"npx cdk import{cdk_context} --resource-mapping {mapping} '{left.stack.selector}'",
            f"npx cdk deploy{cdk_context} --exclusively --import-existing-resources '{left.stack.selector}'"]


def check_leftovers(session: Any, states: Sequence[StackState], *, assembly: Path, environment: str, account: str,
                    region: str) -> Dict[str, Left]:
    """For each stack of ``states`` that does not exist or whose first create failed, what an earlier stack of its
    name retained that is still there (or why that could not be checked)."""
    open_names = [s.name for s in states if not s.exists or s.status in FAILED_CREATE]
    if not open_names:
        return {}
    try:
        synthesized = retained.synthesized_stacks(assembly, environment, account, region)
    except retained.AssemblyProblem as problem:
        return {name: str(problem) for name in open_names}
    finder = retained.Finder(session)
    found: Dict[str, Left] = {}
    for name in open_names:
        if name not in synthesized:
            found[name] = (f"the synthesized app at {assembly} has no stack {name}: synthesize it again "
                           "(bash scripts/synth.sh)")
        else:
            found[name] = finder.leftovers(synthesized[name])
    return found


def delete_failed_creates(cloudformation: Any, states: Sequence[StackState], *, out: Any) -> List[str]:
    """Turn termination protection off and delete each failed first create it keeps from `cdk deploy` (last created
    first), waiting for each deletion; every other stack is left alone. Returns what could not be deleted."""
    from botocore.exceptions import WaiterError

    problems = []
    for state in reversed([s for s in states if s.deletable_failed_create]):
        # A rollback that failed left resources it could not delete; the stack's deletion keeps those whose policy is
        # RetainExceptOnCreate (deleted only by the rollback of the create that made them), so with fixed names they
        # would make the next create fail "already exists": named, to be deleted by hand first.
        left = _resources_left(cloudformation, state.stack_id) if state.status == "ROLLBACK_FAILED" else []
        # By stack id: the failed stack itself, never one created under its name meanwhile.
        cloudformation.update_termination_protection(StackName=state.stack_id, EnableTerminationProtection=False)
        cloudformation.delete_stack(StackName=state.stack_id, ClientRequestToken=f"mlops-lifecycle-{uuid.uuid4()}")
        print(f"{state.name}: termination protection off, deleting ({state.status})", file=out)
        try:
            cloudformation.get_waiter("stack_delete_complete").wait(StackName=state.stack_id, WaiterConfig=DELETE_WAIT)
        except WaiterError as error:
            status = (error.last_response or {}).get("Stacks", [{}])[0].get("StackStatus", "unknown")
            problems.append(f"{state.name}: the deletion ended {status}: see aws cloudformation describe-stack-events "
                            f"--stack-name {state.stack_id}")
            continue
        print(f"{state.name}: deleted", file=out)
        if left:
            problems.append(f"{state.name}: its failed rollback left {len(left)} resources, which its deletion may have "
                            f"kept (RetainExceptOnCreate), and a fixed name among them makes the next create fail: "
                            f"{'; '.join(left)}; delete those still there by hand, then cdk deploy")
    return problems


def _resources_left(cloudformation: Any, stack_id: str) -> List[str]:
    """The resources of ``stack_id`` not deleted (type and physical id, all pages)."""
    return [f"{r['ResourceType']} {r['PhysicalResourceId']}" for r in _live_resources(cloudformation, stack_id)]


def _live_resources(cloudformation: Any, stack: str) -> Iterator[Dict[str, Any]]:
    """The resource summaries of ``stack`` that still have a physical resource (all pages)."""
    for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack):
        for resource in page.get("StackResourceSummaries", []):
            if resource.get("PhysicalResourceId") and resource.get("ResourceStatus") != "DELETE_COMPLETE":
                yield resource


# -------------------------------------------------------------------------------------------------------- teardown


@dataclass
class BucketPlan:
    name: str
    versions: int = 0
    delete_markers: int = 0
    size: int = 0
    logs_to: str = ""  # the bucket its server access logs go to ("" when off)
    denying: List[str] = field(default_factory=list)  # Sids of policy statements that deny deleting objects
    policy_left: Optional[Dict[str, Any]] = None  # the policy without them (None: delete the policy)
    exists: bool = True
    tags: Dict[str, str] = field(default_factory=dict)  # the bucket's tags (the app tags each with its environment)


@dataclass
class TeardownPlan:
    storage_stack: str
    storage_found: bool
    buckets: List[BucketPlan]
    packages: Dict[str, List[str]]  # group -> version ARNs
    cards: List[str]
    # pipeline -> its executions that have not ended (ListPipelineExecutions summaries): SageMaker deletes no pipeline
    # with one, so cdk destroy would stop on the Training stack, and they write and register after the emptying.
    executions: Dict[str, List[Dict[str, Any]]] = field(default_factory=dict)
    # feature group -> (database, table) of its offline store's Glue table: SageMaker made it in its account-wide
    # database (no DataCatalogConfig given), and neither DeleteFeatureGroup nor cdk destroy deletes it.
    tables: Dict[str, Tuple[str, str]] = field(default_factory=dict)
    # The Operations stack's functions: the retrain trigger starts pipeline runs (its hourly sweep, drift alarms), the
    # deploy handler writes an approval-ledger record into the artifacts bucket on every model package state change.
    functions: List[str] = field(default_factory=list)
    # The DataPipeline stack's Glue triggers (the nightly start runs the crawlers and jobs again), its crawlers that are
    # running (Glue deletes no running crawler: cdk destroy would stop on that stack) and its job runs that have not
    # ended (job -> run ids; they write to the buckets being emptied).
    triggers: List[str] = field(default_factory=list)
    crawlers: List[str] = field(default_factory=list)
    job_runs: Dict[str, List[str]] = field(default_factory=dict)


def statements_denying_deletes(policy: Dict[str, Any]) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
    """(kept, removed): the statements of ``policy`` that deny deleting an object or a version of it to a caller using
    TLS 1.2 or later, and the rest."""
    statements = policy.get("Statement", [])
    statements = [statements] if isinstance(statements, dict) else list(statements)
    kept, removed = [], []
    for statement in statements:
        (removed if _denies_deletes(statement) else kept).append(statement)
    return kept, removed


def _denies_deletes(statement: Dict[str, Any]) -> bool:
    if statement.get("Effect") != "Deny":
        return False
    if "NotAction" in statement:
        excluded = _list(statement["NotAction"])
        covers = any(not _matches(excluded, action) for action in DELETE_ACTIONS)
    else:
        covers = any(_matches(_list(statement.get("Action", [])), action) for action in DELETE_ACTIONS)
    if not covers:
        return False
    keys = {key.lower() for condition in (statement.get("Condition") or {}).values() for key in condition}
    return not (keys and keys <= set(TRANSPORT_KEYS))


def _list(value: Any) -> List[str]:
    return [value] if isinstance(value, str) else list(value)


def _matches(patterns: Sequence[str], action: str) -> bool:
    return any(fnmatch.fnmatchcase(action.lower(), p.lower()) for p in patterns)


def _storage_resources(cloudformation: Any, stack: str) -> Tuple[bool, List[str], List[str], List[str]]:
    """(found, bucket names, model package group names, feature group names) of the Storage stack ``stack`` (all
    pages)."""
    found, resources = _resources_of(cloudformation, stack, ("AWS::S3::Bucket", "AWS::SageMaker::ModelPackageGroup",
                                                             "AWS::SageMaker::FeatureGroup"))
    # A model package group's physical id is its ARN, a feature group's its name (either taken as the last part).
    groups = [g.rsplit("/", 1)[-1] for g in resources["AWS::SageMaker::ModelPackageGroup"]]
    features = [g.rsplit("/", 1)[-1] for g in resources["AWS::SageMaker::FeatureGroup"]]
    return found, resources["AWS::S3::Bucket"], groups, features


def _offline_tables(sagemaker: Any, feature_groups: Sequence[str]) -> Dict[str, Tuple[str, str]]:
    """feature group -> (database, table) of the Glue table SageMaker made for its offline store (groups without one,
    or already gone, left out)."""
    from botocore.exceptions import ClientError

    tables = {}
    for group in feature_groups:
        try:
            described = sagemaker.describe_feature_group(FeatureGroupName=group)
        except ClientError as error:
            if deploy_target.error_code(error) == "ResourceNotFound":
                continue
            raise
        catalog = (described.get("OfflineStoreConfig") or {}).get("DataCatalogConfig") or {}
        if catalog.get("Database") and catalog.get("TableName"):
            tables[group] = (catalog["Database"], catalog["TableName"])
    return tables


def _resources_of(cloudformation: Any, stack: str, kinds: Sequence[str]) -> Tuple[bool, Dict[str, List[str]]]:
    """(found, resource type -> physical ids) of the resources of ``kinds`` in ``stack`` (all pages)."""
    from botocore.exceptions import ClientError

    resources: Dict[str, List[str]] = {kind: [] for kind in kinds}
    try:
        for resource in _live_resources(cloudformation, stack):
            if resource["ResourceType"] in resources:
                resources[resource["ResourceType"]].append(resource["PhysicalResourceId"])
    except ClientError as error:
        if deploy_target.error_code(error) == "ValidationError" and "does not exist" in str(error):
            return False, {kind: [] for kind in kinds}
        raise
    return True, resources


def _unended_executions(cloudformation: Any, sagemaker: Any, prefix: str) -> Dict[str, List[Dict[str, Any]]]:
    """Per pipeline of the environment's Training stack, its executions that have not ended (all pages; the pipelines
    with none left out)."""
    training = environment_stack_names(prefix)["training"]
    _, resources = _resources_of(cloudformation, training, ("AWS::SageMaker::Pipeline",))
    running: Dict[str, List[Dict[str, Any]]] = {}
    for physical in resources["AWS::SageMaker::Pipeline"]:
        pipeline = physical.rsplit("/", 1)[-1]  # its name, or its ARN
        for page in sagemaker.get_paginator("list_pipeline_executions").paginate(PipelineName=pipeline):
            running.setdefault(pipeline, []).extend(
                e for e in page.get("PipelineExecutionSummaries", [])
                if e.get("PipelineExecutionStatus") not in PIPELINE_EXECUTION_ENDED)
    return {pipeline: executions for pipeline, executions in running.items() if executions}


def _functions(cloudformation: Any, prefix: str) -> List[str]:
    """The Lambda functions of the environment's Operations stack, by name (all pages; none when it does not exist)."""
    operations = environment_stack_names(prefix)["operations"]
    _, resources = _resources_of(cloudformation, operations, ("AWS::Lambda::Function",))
    return resources["AWS::Lambda::Function"]


def _glue_work(cloudformation: Any, glue: Any, prefix: str) -> Tuple[List[str], List[str], Dict[str, List[str]]]:
    """(triggers, running crawlers, job -> run ids not ended) of the environment's DataPipeline stack (all pages)."""
    from botocore.exceptions import ClientError

    kinds = ("AWS::Glue::Trigger", "AWS::Glue::Crawler", "AWS::Glue::Job")
    _, resources = _resources_of(cloudformation, environment_stack_names(prefix)["data-pipeline"], kinds)
    crawlers = []
    for crawler in resources["AWS::Glue::Crawler"]:
        try:
            state = glue.get_crawler(Name=crawler)["Crawler"].get("State")
        except ClientError as error:
            if deploy_target.error_code(error) == "EntityNotFoundException":
                continue
            raise
        if state in ("RUNNING", "STOPPING"):
            crawlers.append(crawler)
    runs: Dict[str, List[str]] = {}
    for job in resources["AWS::Glue::Job"]:
        for page in glue.get_paginator("get_job_runs").paginate(JobName=job):
            ids = [r["Id"] for r in page.get("JobRuns", []) if r.get("JobRunState") not in GLUE_RUN_ENDED]
            if ids:
                runs.setdefault(job, []).extend(ids)
    return resources["AWS::Glue::Trigger"], crawlers, runs


def deactivate_triggers(plan: TeardownPlan, *, glue: Any, out: Any) -> None:
    """Deactivate every trigger of the plan, so that no workflow run starts again before cdk destroy deletes them. An
    ON_DEMAND trigger (``glue.etl_schedule: null``) starts nothing by itself and has no active state: passed over."""
    stopped = on_demand = 0
    for trigger in plan.triggers:
        if glue.get_trigger(Name=trigger)["Trigger"].get("Type") == "ON_DEMAND":
            on_demand += 1
            continue
        glue.stop_trigger(Name=trigger)
        stopped += 1
    if plan.triggers:
        also = f" ({on_demand} on demand: it starts nothing by itself)" if on_demand else ""
        print(f"Glue triggers: {stopped} deactivated{also}", file=out)


def stop_glue_work(plan: TeardownPlan, *, glue: Any, region: str, out: Any) -> List[str]:
    """Stop the plan's running crawlers and job runs and wait until each has ended; returns one line per one that has
    not within :data:`STOP_WAIT` (an empty list when all have)."""
    from botocore.exceptions import ClientError

    for crawler in plan.crawlers:
        try:
            glue.stop_crawler(Name=crawler)
        except ClientError as error:  # it ended meanwhile, or is already stopping
            if deploy_target.error_code(error) not in ("CrawlerNotRunningException", "CrawlerStoppingException"):
                raise
    for job, ids in plan.job_runs.items():
        glue.batch_stop_job_run(JobName=job, JobRunIds=ids)
    problems = []
    for crawler in plan.crawlers:
        state = _poll(lambda: glue.get_crawler(Name=crawler)["Crawler"].get("State"), lambda st: st == "READY")
        if state == "READY":
            print(f"Glue crawler {crawler}: stopped (READY)", file=out)
        else:
            problems.append(f"Glue crawler {crawler} is still {state} after the wait: nothing was emptied or deleted; "
                            "run the teardown again once it is READY (aws glue get-crawler --name "
                            f"{crawler} --region {region})")
    for job, ids in plan.job_runs.items():
        ended = []
        for run in ids:
            state = _poll(lambda: glue.get_job_run(JobName=job, RunId=run)["JobRun"].get("JobRunState"),
                          lambda st: st in GLUE_RUN_ENDED)
            if state in GLUE_RUN_ENDED:
                ended.append(f"{run}: {state}")
            else:
                problems.append(f"Glue job run {run} of {job} is still {state} after the wait: nothing was emptied or "
                                "deleted; run the teardown again once it has ended (aws glue get-job-run --job-name "
                                f"{job} --run-id {run} --region {region})")
        if ended:
            runs = f"{len(ended)} run{'s' if len(ended) > 1 else ''}"
            print(f"Glue job {job}: {runs} stopped ({'; '.join(ended)})", file=out)
    return problems


def _poll(read: Any, done: Any) -> Any:
    """``read()`` until ``done`` holds for its answer or :data:`STOP_WAIT` is over; its last answer."""
    answer = None
    for attempt in range(STOP_WAIT["MaxAttempts"]):
        if attempt:
            time.sleep(STOP_WAIT["Delay"])
        answer = read()
        if done(answer):
            break
    return answer


def throttle_functions(plan: TeardownPlan, *, lambda_client: Any, out: Any) -> None:
    """Keep every function of the plan from running (reserved concurrency 0): events and schedules that would invoke
    them are throttled (Lambda retries them for up to the function's maximum event age) until cdk destroy deletes the
    functions."""
    for function in plan.functions:
        lambda_client.put_function_concurrency(FunctionName=function, ReservedConcurrentExecutions=0)
    if plan.functions:
        print(f"functions: {len(plan.functions)} stopped from running (reserved concurrency 0)", file=out)


def _running(plan: TeardownPlan) -> str:
    """What of ``plan`` has not ended, in one line: ``pipeline <name> (<run ids>), Glue crawler <name>, ...``."""
    parts = [f"pipeline {p} ({', '.join(_run_id(e['PipelineExecutionArn']) for e in executions)})"
             for p, executions in plan.executions.items()]
    parts += [f"Glue crawler {crawler}" for crawler in plan.crawlers]
    parts += [f"Glue job {job} ({', '.join(ids)})" for job, ids in plan.job_runs.items()]
    return ", ".join(parts)


def _run_id(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def _since(execution: Dict[str, Any]) -> str:
    start = execution.get("StartTime")
    if isinstance(start, datetime.datetime):
        start = start.astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"{execution['PipelineExecutionStatus']} since {start}" if start else execution["PipelineExecutionStatus"]


def stop_executions(plan: TeardownPlan, *, sagemaker: Any, region: str, out: Any) -> List[str]:
    """Stop the plan's executions that are ``Executing`` (a ``Stopping`` one is already on its way) and wait until every
    one of them has ended; returns one line per execution that has not ended within :data:`STOP_WAIT` (an empty list
    when all have)."""
    from botocore.exceptions import ClientError

    for executions in plan.executions.values():
        for execution in executions:
            if execution["PipelineExecutionStatus"] == "Executing":
                try:
                    sagemaker.stop_pipeline_execution(PipelineExecutionArn=execution["PipelineExecutionArn"],
                                                      ClientRequestToken=f"mlops-lifecycle-{uuid.uuid4()}")
                except ClientError as error:  # it ended (or began stopping) since the look: the wait reads which
                    if deploy_target.error_code(error) != "ConflictException":
                        raise
    problems: List[str] = []
    for pipeline, executions in plan.executions.items():
        ended = []
        for execution in executions:
            arn = execution["PipelineExecutionArn"]
            status = _wait_until_ended(sagemaker, arn)
            if status in PIPELINE_EXECUTION_ENDED:
                ended.append(f"{_run_id(arn)}: {status}")
            else:
                problems.append(f"pipeline execution {arn} is still {status} after the wait: nothing was emptied or "
                                "deleted (it would write to the buckets and register versions again); run the teardown "
                                "again once it has ended (aws sagemaker describe-pipeline-execution "
                                f"--pipeline-execution-arn {arn} --region {region})")
        if ended:
            print(f"pipeline {pipeline}: {len(ended)} execution{'s' if len(ended) > 1 else ''} stopped and ended "
                  f"({'; '.join(ended)})", file=out)
    return problems


def _wait_until_ended(sagemaker: Any, arn: str) -> str:
    """The execution's status once it has ended, or its last status when :data:`STOP_WAIT` is over."""
    status = ""
    for attempt in range(STOP_WAIT["MaxAttempts"]):
        if attempt:
            time.sleep(STOP_WAIT["Delay"])
        status = sagemaker.describe_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionStatus"]
        if status in PIPELINE_EXECUTION_ENDED:
            break
    return status


def _bucket_plan(s3: Any, bucket: str) -> BucketPlan:
    from botocore.exceptions import ClientError

    plan = BucketPlan(bucket)
    try:
        plan.logs_to = s3.get_bucket_logging(Bucket=bucket).get("LoggingEnabled", {}).get("TargetBucket", "")
    except ClientError as error:
        if deploy_target.error_code(error) == "NoSuchBucket":
            plan.exists = False
            return plan
        raise
    try:
        plan.tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=bucket).get("TagSet", [])}
    except ClientError as error:
        if deploy_target.error_code(error) != "NoSuchTagSet":
            raise
    try:
        policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    except ClientError as error:
        if deploy_target.error_code(error) != "NoSuchBucketPolicy":
            raise
        policy = None
    if policy is not None:
        kept, removed = statements_denying_deletes(policy)
        plan.denying = [s.get("Sid", "(no Sid)") for s in removed]
        plan.policy_left = {**policy, "Statement": kept} if kept else None
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        plan.versions += len(page.get("Versions", []))
        plan.size += sum(v.get("Size", 0) for v in page.get("Versions", []))
        plan.delete_markers += len(page.get("DeleteMarkers", []))
    return plan


def _cards(sagemaker: Any, groups: Sequence[str]) -> List[str]:
    """The model cards of every version of ``groups`` the pipeline may have created (all pages), by name."""
    found = []
    for group in groups:
        exact = model_card_name_regex(group)
        for pattern in model_card_name_patterns(group):
            for page in sagemaker.get_paginator("list_model_cards").paginate(NameContains=pattern.rstrip("*")):
                found += [c["ModelCardName"] for c in page.get("ModelCardSummaries", []) if exact.fullmatch(c["ModelCardName"])]
    return sorted(set(found))


def plan_teardown(*, cloudformation: Any, s3: Any, sagemaker: Any, glue: Any, prefix: str, models: Sequence[str],
                  project: str, environment: str) -> TeardownPlan:
    """What tearing the environment of ``prefix`` down deletes; ``models`` (the config's) name groups whose cards are
    looked for even when the Storage stack is gone.

    Refused (CliError) when a bucket of the Storage stack is not tagged as a dev bucket of ``environment`` of
    ``project`` (the app tags every resource with its ``project``, ``environment`` and ``tier``): the config said dev,
    but what would be emptied says otherwise - or is another project's, which in an account projects share the
    account check does not catch."""
    storage = environment_stack_names(prefix)["storage"]
    found, buckets, groups, feature_groups = _storage_resources(cloudformation, storage)
    plans = [_bucket_plan(s3, b) for b in buckets]
    for plan in plans:
        tagged = (plan.tags.get("project"), plan.tags.get("environment"), plan.tags.get("tier"))
        if plan.exists and tagged != (project, environment, "dev"):
            raise CliError(f"bucket {plan.name} of stack {storage} is tagged project={tagged[0]}, environment={tagged[1]}, "
                           f"tier={tagged[2]}, not project={project}, environment={environment}, tier=dev: teardown "
                           "empties only the buckets of a dev environment of the config's project; check --env and the "
                           "config (MLOPS_LOOP_CONFIG, --config; an environment whose resources carry no such tags is "
                           "taken down by hand)")
    targets = {p.logs_to for p in plans}
    # A bucket others log to is emptied last: until their logging stops, their requests land in it.
    plans.sort(key=lambda p: p.name in targets)
    executions = _unended_executions(cloudformation, sagemaker, prefix)
    packages = {g: [s["ModelPackageArn"] for s in approval_rule.summaries(sagemaker, g)] for g in groups}
    card_groups = sorted(set(groups) | {package_group_name(prefix, m) for m in models})
    triggers, crawlers, job_runs = _glue_work(cloudformation, glue, prefix)
    functions = _functions(cloudformation, prefix)
    return TeardownPlan(storage, found, plans, packages, _cards(sagemaker, card_groups), executions,
                        _offline_tables(sagemaker, feature_groups), functions, triggers, crawlers, job_runs)


def render_plan(plan: TeardownPlan, *, environment: str, account: str, region: str, execute: bool) -> str:
    lines = [f"Teardown of environment '{environment}' (account {account}, {region}): "
             + ("deleting" if execute else "DRY RUN, nothing is changed; --execute deletes") + ":"]
    if plan.functions:
        lines.append(f"  functions {', '.join(plan.functions)}: stop them from running (reserved concurrency 0), "
                     "first: a retraining they start, or an approval-ledger record they write on a model package "
                     "state change, would land after the emptying and fail cdk destroy (if you keep the environment: "
                     "aws lambda delete-function-concurrency --function-name <function>)")
    if plan.triggers:
        lines.append(f"  Glue triggers {', '.join(plan.triggers)}: deactivate them, first: the nightly start would "
                     "run the crawlers and jobs again, writing after the emptying (if you keep the environment: aws glue "
                     "start-trigger --name <trigger>)")
    for crawler in plan.crawlers:
        lines.append(f"  Glue crawler {crawler}: stop it and wait until it has (a running crawler cannot be "
                     "deleted: cdk destroy would stop on the DataPipeline stack)")
    for job, ids in plan.job_runs.items():
        lines.append(f"  Glue job {job}: stop its runs that have not ended and wait until they have ({', '.join(ids)})")
    for pipeline, executions in plan.executions.items():
        lines.append(f"  pipeline {pipeline}: stop its executions that have not ended and wait until they have ("
                     + "; ".join(f"{_run_id(e['PipelineExecutionArn'])}: {_since(e)}" for e in executions) + ")")
    for group, (database, table) in plan.tables.items():
        lines.append(f"  feature group {group}: delete its offline store's Glue table {database}.{table} (SageMaker "
                     "made it; deleting the group leaves it)")
    if not plan.storage_found:
        lines.append(f"  stack {plan.storage_stack} does not exist: no buckets or model package groups to empty")
    for b in plan.buckets:
        if not b.exists:
            lines.append(f"  bucket {b.name}: already deleted")
            continue
        steps = []
        if b.logs_to:
            steps.append(f"stop its server access logging (to {b.logs_to})")
        if b.denying:
            steps.append(f"remove the policy statements that deny deleting objects ({', '.join(b.denying)})"
                         + ("" if b.policy_left else "; no other statement is left: delete the policy"))
        steps.append(f"delete {b.versions} object versions ({_size(b.size)}) and {b.delete_markers} delete markers")
        lines.append(f"  bucket {b.name}: " + "; ".join(steps))
    for group, arns in plan.packages.items():
        lines.append(f"  model package group {group}: delete its {len(arns)} versions"
                     + (f" ({', '.join('v' + a.rsplit('/', 1)[-1] for a in arns)})" if arns else ""))
    lines.append(f"  model cards: delete {len(plan.cards)}" + (f" ({', '.join(plan.cards)})" if plan.cards else ""))
    return "\n".join(lines)


def execute_teardown(plan: TeardownPlan, *, s3: Any, sagemaker: Any, glue: Any, out: Any) -> List[str]:
    """Do what ``plan`` lists, in its order (the offline stores' Glue tables first); returns what could not be deleted
    (an empty list when all was)."""
    from botocore.exceptions import ClientError

    problems: List[str] = []
    deleted_tables = 0
    for group, (database, table) in plan.tables.items():
        try:
            glue.delete_table(DatabaseName=database, Name=table)
            deleted_tables += 1
        except ClientError as error:
            if deploy_target.error_code(error) != "EntityNotFoundException":
                problems.append(f"Glue table {database}.{table} of feature group {group}: "
                                f"{deploy_target.describe_error(error)}")
    if plan.tables:
        print(f"Glue tables: {deleted_tables} deleted", file=out)
    live = [b for b in plan.buckets if b.exists]
    for b in live:
        if b.logs_to:
            s3.put_bucket_logging(Bucket=b.name, BucketLoggingStatus={})
    for b in live:
        if b.denying and b.policy_left:
            s3.put_bucket_policy(Bucket=b.name, Policy=json.dumps(b.policy_left))
        elif b.denying:
            s3.delete_bucket_policy(Bucket=b.name)
    for b in live:
        deleted = 0
        # Each page (at most 1000 versions and markers) is one DeleteObjects request (at most 1000 keys).
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=b.name):
            objects = [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
            if not objects:
                continue
            errors = s3.delete_objects(Bucket=b.name, Delete={"Objects": objects, "Quiet": True}).get("Errors", [])
            deleted += len(objects) - len(errors)
            problems += [f"s3://{b.name}/{e.get('Key')} (version {e.get('VersionId')}): {e.get('Code')}: {e.get('Message')}"
                         for e in errors]
        print(f"bucket {b.name}: {deleted} object versions and delete markers deleted", file=out)
    for group, arns in plan.packages.items():
        for arn in arns:
            try:
                sagemaker.delete_model_package(ModelPackageName=arn)
            except ClientError as error:
                problems.append(f"model package {arn}: {deploy_target.describe_error(error)}")
        print(f"model package group {group}: {len(arns)} versions deleted", file=out)
    for card in plan.cards:
        try:
            sagemaker.delete_model_card(ModelCardName=card)
        except ClientError as error:
            problems.append(f"model card {card}: {deploy_target.describe_error(error)}")
    print(f"model cards: {len(plan.cards)} deleted", file=out)
    return problems


def _size(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return ""  # not reached


def destroy_command(environment: str, config: str, default_config: str) -> str:
    """The `cdk destroy` command for the environment (naming the config when it is not the default)."""
    return f"npx cdk destroy{cdk_context(config, default_config)} '{environment}/*'"


def cdk_context(config: str, default_config: str) -> str:
    """The CDK CLI's option naming the config (" -c mlops-loop:config=<file>"), "" for the default one."""
    return f" -c mlops-loop:config={config}" if config != default_config else ""


# ------------------------------------------------------------------------------------------------------------ adopt


def adopt(session: Any, *, component: str, prefix: str, assembly: Path, environment: str, account: str, region: str,
          mapping: str, config_option: str, context: str, out: Any) -> int:
    """Write the `cdk import` resource mapping of the ``component`` stack, which must not exist, from what an earlier
    stack of its name retained, and print the commands that adopt it; no AWS write. 0: written, nothing left over; 1:
    something must be adopted by hand (said on stderr)."""
    name = environment_stack_names(prefix)[component]
    (state,) = describe_stacks(session.client("cloudformation"), [name])
    if state.exists:
        raise CliError(f"stack {name} exists ({state.status}): adopt is for a stack that was deleted; "
                       + (f"delete this failed create first ({PROG} --env {environment} stacks --delete-failed-creates, "
                          "or aws cloudformation delete-stack), then adopt" if state.status in FAILED_CREATE else
                          "its resources are its own, nothing to adopt"))
    try:
        synthesized = retained.synthesized_stacks(assembly, environment, account, region)
    except retained.AssemblyProblem as problem:
        raise CliError(str(problem)) from None
    if name not in synthesized:
        raise CliError(f"the synthesized app at {assembly} has no stack {name}: synthesize it again (bash scripts/synth.sh)")
    left = retained.Finder(session).leftovers(synthesized[name])
    if not left.exist:
        if left.problems:  # nothing to import, but something in the way of the create (a table an earlier version kept)
            for problem in left.problems:
                print(f"{name}: nothing it retains is left over, but first: {problem}", file=out)
            return 1
        print(f"{name}: nothing it retains is left over; cdk deploy creates it", file=out)
        return 0
    adoption = retained.plan(left)
    Path(mapping).write_text(json.dumps(adoption.mapping, indent=2, sort_keys=True) + "\n")
    print(f"{name} ({synthesized[name].selector}): {len(adoption.mapping)} retained resources to import, written to "
          f"{mapping}:", file=out)
    for lid, identifier in sorted(adoption.mapping.items()):
        print(f"  {lid}: {', '.join(f'{k}={v}' for k, v in identifier.items())}", file=out)
    if adoption.by_name:
        print(f"adopted by name by the deploy after the import (--import-existing-resources): "
              f"{', '.join(left.labels[lid] for lid in adoption.by_name)}", file=out)
    commands = adoption_commands(left, environment=environment, region=region, component=component, cdk_context=context,
                                 mapping=mapping, config_option=config_option)[1:]
    print("Then, with credentials that may deploy the environment:\n" + "\n".join(f"  {c}" for c in commands), file=out)
    for problem in adoption.by_hand:
        print(f"lifecycle: not adopted: {problem}", file=sys.stderr)
    return 1 if adoption.by_hand else 0


# ------------------------------------------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", required=True, help="environment name (dev, staging, prod)")
    deploy_target.add_arguments(parser)
    commands = parser.add_subparsers(dest="command", required=True)
    stacks = commands.add_parser("stacks", help="say whether cdk deploy can proceed from each stack's state")
    stacks.add_argument("--delete-failed-creates", action="store_true",
                        help="turn termination protection off and delete the stacks whose first create failed")
    stacks.add_argument("--assembly", type=Path, default=None,
                        help="the synthesized app whose templates say what each stack retains (default: cdk.out)")
    adopt_cmd = commands.add_parser("adopt", help="write the cdk import resource mapping of a deleted stack's retained "
                                    "resources (no AWS write)")
    adopt_cmd.add_argument("--stack", required=True, choices=STACK_COMPONENTS, help="the stack (its component)")
    adopt_cmd.add_argument("--mapping", default=None,
                           help="the file to write (default: <stack name>.resource-mapping.json here)")
    adopt_cmd.add_argument("--assembly", type=Path, default=None,
                           help="the synthesized app whose templates say what the stack retains (default: cdk.out)")
    teardown = commands.add_parser("teardown", help="empty a dev environment for cdk destroy (dry run by default)")
    teardown.add_argument("--execute", action="store_true", help="delete what the dry run lists")
    return parser


def _tier_of(args: argparse.Namespace) -> Tuple[str, List[str]]:
    """The environment's tier and models in the config (the teardown always reads it: the tier decides). Refused: a
    ``--region`` / ``--project`` / ``--account`` other than the environment's own - the tier read would be another
    environment's than the one emptied."""
    from mlops_loop.config import ConfigError, load_config

    try:
        app = load_config(args.config)
    except ConfigError as error:
        raise CliError(f"--config {args.config}: {error.problems[0]}; teardown reads the environment's tier there, fix "
                       "it or pass --config <file>") from None
    environment = deploy_target.environment_of(app, args.env, args.config)
    own = {"region": environment.region, "project": app.project, "account": environment.account}
    for option, value in own.items():
        given = getattr(args, option, None)
        if given is not None and given != value:
            raise CliError(f"--{option} {given}: environment '{args.env}' of {args.config} has {option} {value}; teardown "
                           f"acts only on an environment as its config names it (its tier is read there): drop --{option}")
    return environment.tier, list(environment.models)


def _bootstrap_qualifier() -> str:
    """The CDK bootstrap qualifier the app deploys through, read as the CDK CLI reads it (``bootstrap_qualifier``);
    a value that is no qualifier is the operator's to fix."""
    from mlops_loop.config.location import bootstrap_qualifier

    try:
        return bootstrap_qualifier()
    except ValueError as error:
        raise CliError(str(error)) from None


def main(argv: Optional[Sequence[str]] = None, *, session: Any = None, out: Any = None) -> int:
    """CLI entry point; returns the exit code. ``session`` (default: a boto3 session in the environment's region)
    makes the clients."""
    out = out or sys.stdout
    parser = build_parser()
    args = parser.parse_args(argv)
    from botocore.exceptions import BotoCoreError, ClientError

    where = None
    try:
        models: List[str] = []
        # Read before any AWS call: the repairs the listing gives name that bootstrap's cfn-exec role.
        qualifier = _bootstrap_qualifier() if args.command == "stacks" else ""
        if args.command == "teardown":
            # Refused before any AWS call: the tier is the config's word on whether the data may go.
            tier, models = _tier_of(args)
            if tier != "dev":
                raise CliError(f"environment '{args.env}' of {args.config}: field 'tier' is '{tier}'; teardown deletes its "
                               "data and model versions, so it runs only where tier is 'dev' (a staging or prod "
                               "environment is taken down by hand, see docs/deploying.md \"Recovering an environment\")")
        where = deploy_target.resolve(args)
        if args.command == "teardown":
            # Read for its tier even with --region, --project and --account given (equal to its own, or refused).
            where = dataclasses.replace(where, config=str(args.config))
        deploy_target.announce(where)
        if session is None:
            import boto3

            session = boto3.session.Session(region_name=where.region)
        deploy_target.check_account(session.client("sts"), where)
        cloudformation = session.client("cloudformation")
        prefix = environment_prefix(where.project, args.env)
        context = cdk_context(args.config, parser.get_default("config"))
        config_option = f" --config {args.config}" if context else ""
        if args.command == "adopt":
            return adopt(session, component=args.stack, prefix=prefix, assembly=args.assembly or retained.DEFAULT_ASSEMBLY,
                         environment=args.env, account=where.account, region=where.region,
                         mapping=args.mapping or mapping_file(environment_stack_names(prefix)[args.stack]),
                         config_option=config_option, context=context, out=out)
        if args.command == "stacks":
            states = describe_stacks(cloudformation, list(environment_stack_names(prefix).values()))
            assembly = args.assembly or retained.DEFAULT_ASSEMBLY
            left = check_leftovers(session, states, assembly=assembly, environment=args.env, account=where.account,
                                   region=where.region)
            print(render_stacks(states, environment=args.env, account=where.account, region=where.region,
                                qualifier=qualifier, left=left, cdk_context=context, prefix=prefix,
                                config_option=config_option), file=out)
            for after_deploy in (reconcile_after_deploy, resubscribe_after_deploy):
                for line in after_deploy(states, left, assembly=assembly, environment=args.env, account=where.account,
                                         region=where.region, prefix=prefix):
                    print(line, file=out)
            problems: List[str] = []
            if args.delete_failed_creates:
                if not any(s.deletable_failed_create for s in states):
                    print("nothing to delete: no stack is a failed first create under termination protection", file=out)
                problems = delete_failed_creates(cloudformation, states, out=out)
                for problem in problems:
                    print(f"lifecycle: {problem}", file=sys.stderr)
                states = describe_stacks(cloudformation, list(environment_stack_names(prefix).values()))
                left = check_leftovers(session, states, assembly=assembly, environment=args.env, account=where.account,
                                       region=where.region)
            blocking = [s for s in states if s.blocks_deploy or leftovers_block(s, left.get(s.name))]
            if not blocking and not (args.delete_failed_creates and problems):
                print(f"cdk deploy '{args.env}/*' can proceed", file=out)
            return 1 if blocking or (args.delete_failed_creates and problems) else 0
        s3, sagemaker, glue = session.client("s3"), session.client("sagemaker"), session.client("glue")
        plan = plan_teardown(cloudformation=cloudformation, s3=s3, sagemaker=sagemaker, glue=glue, prefix=prefix,
                             models=models, project=where.project, environment=args.env)
        print(render_plan(plan, environment=args.env, account=where.account, region=where.region, execute=args.execute),
              file=out)
        destroy = destroy_command(args.env, args.config, parser.get_default("config"))
        # A dev environment may still be termination-protected (the config's default is on): cdk destroy is then refused.
        protected = [s.name for s in describe_stacks(cloudformation, list(environment_stack_names(prefix).values()))
                     if s.exists and s.protected]
        if protected:
            destroy = (" && ".join(f"aws cloudformation update-termination-protection --no-enable-termination-protection "
                                   f"--stack-name {name} --region {where.region}" for name in protected)
                       + f" && {destroy}  (termination protection is on; set termination_protection: false for "
                       f"'{args.env}' in the config so the next deploy keeps it off)")
        if not args.execute:
            print(f"Then: {destroy}", file=out)
            return 0
        # First: nothing of the environment may start a retraining or write to a bucket from here on.
        throttle_functions(plan, lambda_client=session.client("lambda"), out=out)
        deactivate_triggers(plan, glue=glue, out=out)
        # Looked at again once quiet: a run started since the first look (the nightly trigger, a retraining the retrain
        # trigger started before it was throttled) is stopped with the rest, never emptied under.
        executions = _unended_executions(cloudformation, sagemaker, prefix)
        _, crawlers, job_runs = _glue_work(cloudformation, glue, prefix)
        plan = dataclasses.replace(plan, executions=executions, crawlers=crawlers, job_runs=job_runs)
        rounds = 0
        while plan.executions or plan.crawlers or plan.job_runs:
            # Then, or they write to the emptied buckets, register versions into the emptied groups, and keep cdk
            # destroy from deleting their pipelines (DeletePipeline refuses a pipeline with a running execution) and
            # crawlers (DeleteCrawler refuses a running crawler). Until a look finds nothing running: a run started
            # while the last ones were stopped is stopped in turn, never emptied under.
            if rounds == STOP_ROUNDS:
                print(f"lifecycle: still running after {STOP_ROUNDS} rounds of stopping what the environment runs: "
                      f"{_running(plan)}; something the teardown does not stop keeps starting runs (a pipeline started "
                      "by hand, a Glue job or crawler started by hand): nothing was emptied or deleted; stop that, then "
                      "run the teardown again", file=sys.stderr)
                return 1
            rounds += 1
            stopping = (stop_glue_work(plan, glue=glue, region=where.region, out=out)
                        + stop_executions(plan, sagemaker=sagemaker, region=where.region, out=out))
            for problem in stopping:
                print(f"lifecycle: {problem}", file=sys.stderr)
            if stopping:
                return 1
            # Looked at again: what the stopped runs wrote and registered before they ended goes too.
            plan = plan_teardown(cloudformation=cloudformation, s3=s3, sagemaker=sagemaker, glue=glue, prefix=prefix,
                                 models=models, project=where.project, environment=args.env)
            print(render_plan(plan, environment=args.env, account=where.account, region=where.region, execute=True),
                  file=out)
        problems = execute_teardown(plan, s3=s3, sagemaker=sagemaker, glue=glue, out=out)
        for problem in problems:
            print(f"lifecycle: could not delete {problem}", file=sys.stderr)
        if problems:
            print(f"{len(problems)} could not be deleted (above); fix the cause and run the teardown again", file=out)
            return 1
        print(f"Now: {destroy}\n(If the Storage stack then stops in DELETE_FAILED on a bucket - a job or a late server "
              "access log wrote after it was emptied - or the Training stack on a pipeline - a retraining started "
              "since - run this teardown again, then the destroy again.)", file=out)
        return 0
    except (CliError, deploy_target.TargetError, BotoCoreError, ClientError) as error:
        return _fail(deploy_target.failure_line(error, where))


def _fail(message: str) -> int:
    print(f"lifecycle: error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
