"""The teardown of a dev environment: its plan (buckets, model versions and cards, runs to stop, functions to keep
from running, Glue triggers and tables), its rendering, and its execution in the order the CLI's docstring gives."""

from __future__ import annotations

import datetime
import fnmatch
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from mlops_cli import target as deploy_target
from mlops_cli.environment import CliError
from mlops_cli.environment.stacks import live_resources
from pipeline_code.core import approval as approval_rule
from pipeline_code.core.contract import (
    environment_stack_names,
    model_card_name_patterns,
    model_card_name_regex,
    package_group_name,
    PIPELINE_EXECUTION_ENDED,
)


DELETE_ACTIONS = ("s3:DeleteObject", "s3:DeleteObjectVersion")
# Condition keys of the transport guards (TLS only, TLS 1.2 or later): a teardown's requests meet them, so such a
# statement denies none of its deletes and stays.
TRANSPORT_KEYS = ("aws:securetransport", "s3:tlsversion")


# Glue JobRunState values after which a run changes nothing more (GetJobRun).
GLUE_RUN_ENDED = ("SUCCEEDED", "FAILED", "TIMEOUT", "ERROR", "STOPPED", "EXPIRED")
# How long the teardown waits for the pipeline executions, Glue crawlers and job runs it stopped to end (a stopped
# step's job stops first): polls every 15 s, up to 30 minutes.
STOP_WAIT = {"Delay": 15, "MaxAttempts": 120}
# How many rounds of stopping what runs, and looking again, the teardown takes before it gives up: a look after a round
# may find a run started meanwhile (an invocation already under way when the functions were throttled, a trigger that
# fired before it was deactivated), which is stopped in turn; runs that keep starting stop the teardown.
STOP_ROUNDS = 3


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
        for resource in live_resources(cloudformation, stack):
            if resource["ResourceType"] in resources:
                resources[resource["ResourceType"]].append(resource["PhysicalResourceId"])
    except ClientError as error:
        if deploy_target.error_code(error) == "ValidationError" and "does not exist" in str(error):
            return False, {kind: [] for kind in kinds}
        raise
    return True, resources


def unended_executions(cloudformation: Any, sagemaker: Any, prefix: str) -> Dict[str, List[Dict[str, Any]]]:
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


def glue_work(cloudformation: Any, glue: Any, prefix: str) -> Tuple[List[str], List[str], Dict[str, List[str]]]:
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


def describe_running(plan: TeardownPlan) -> str:
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
    executions = unended_executions(cloudformation, sagemaker, prefix)
    packages = {g: [s["ModelPackageArn"] for s in approval_rule.summaries(sagemaker, g)] for g in groups}
    card_groups = sorted(set(groups) | {package_group_name(prefix, m) for m in models})
    triggers, crawlers, job_runs = glue_work(cloudformation, glue, prefix)
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
