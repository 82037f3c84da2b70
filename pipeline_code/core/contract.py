"""Every name, path and file name that two sides of the loop must agree on, defined once.

The CDK app names a resource; a job, a Lambda handler or a workstation tool later finds it by the
same name. Each such fact lives here and nowhere else (``tests/test_contract.py`` fails when one is
defined a second time), so renaming one is a one-line change that every side picks up.

``prefix`` below is an environment's resource prefix, :func:`environment_prefix`
(``<project>-<env>``; the local run uses ``local``).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import re
from typing import Any, Dict, Mapping, NamedTuple, Optional, Sequence

from pipeline_code.core.problem import BINARY, SQUARED_ERROR, default_primary_metric
from pipeline_code.core.thresholds import THRESHOLDS


# The project name when the config gives none; every resource name starts with the project.
DEFAULT_PROJECT = "mlops-loop"
# Project, environment and model names: they become parts of AWS resource names.
NAME_PATTERN = r"^[a-z][a-z0-9-]{1,19}$"
NAME_RULE = "2-20 characters of lowercase letters, digits and '-', starting with a letter"
# The tags that say whose a resource is: every resource of an environment's templates and every SageMaker job it starts
# at run time carries them (with its project's and environment's names), and the roles that may stop, tag or delete
# resources whose names AWS or CloudFormation generate are held to them (aws:ResourceTag / aws:RequestTag), so that
# another project or environment in the same account is out of their reach.
PROJECT_TAG = "project"
ENVIRONMENT_TAG = "environment"
OWNER_TAGS = (PROJECT_TAG, ENVIRONMENT_TAG)
# The tag that names the model a resource or job is for (its value: the model's name in the config), so Cost Explorer
# can split an environment's spend by model once the tag is activated for cost allocation.
MODEL_TAG = "mlops-loop:model"
# The tags of a model's team (models.<model>.owner): its name, on the team's topic and on the jobs of its models, and
# how to reach it, on the team's topic.
TEAM_TAG = "mlops-loop:team"
TEAM_CONTACT_TAG = "mlops-loop:contact"


# How far a record's event time may be ahead of "now" (the curate run's start, a by-id lookup) and still be taken: the
# clock skew AWS's own request signing tolerates (5 minutes). A record dated further ahead (a typo'd year, a local time
# written without its offset and read as UTC) is refused by both: the online store keeps it over every put with an
# earlier event time (PutRecord writes a record whose event time is not greater to the offline store only), it passes
# any maximum age and expires only its TTL after its own event time, so its values would be served unchanged.
MAX_EVENT_TIME_AHEAD_SECONDS = 300

# The instants a timestamp value (an event time, a timestamp column) may name: from EARLIEST_TIMESTAMP to before
# LATEST_TIMESTAMP, whole UTC days inside the times the jobs hold in pandas' datetime64[ns] (1677-09-21T00:12:43Z to
# 2262-04-11T23:47:16Z). A value outside (a typo'd year 1500 or 2300) would crash the feature job, which reads every
# curated row, so the curate job (and the local run, which curates with it) quarantines it (RULE_TIMESTAMP_RANGE) and
# serving refuses it naming the field (400). pandas' own floor, not a "plausible" one such as 1900: a timestamp column
# may hold a birth time or a historical record from before 1900, and a dataset's plausibility is its own (an event
# time after the run's start is refused apart, MAX_EVENT_TIME_AHEAD_SECONDS).
EARLIEST_TIMESTAMP = _dt.datetime(1677, 9, 22, tzinfo=_dt.timezone.utc)
LATEST_TIMESTAMP = _dt.datetime(2262, 4, 11, tzinfo=_dt.timezone.utc)
TIMESTAMP_RANGE = (f"from {EARLIEST_TIMESTAMP:%Y-%m-%dT%H:%M:%SZ} to before {LATEST_TIMESTAMP:%Y-%m-%dT%H:%M:%SZ}")
# The curate job's quarantine rule (and reason-count key, after "<column>: ").
RULE_TIMESTAMP_RANGE = f"outside the times the jobs hold ({TIMESTAMP_RANGE})"


def timestamp_in_range(instant: _dt.datetime) -> bool:
    """Whether the aware ``instant`` is one a timestamp value may name (:data:`EARLIEST_TIMESTAMP` to before
    :data:`LATEST_TIMESTAMP`)."""
    return EARLIEST_TIMESTAMP <= instant < LATEST_TIMESTAMP


def pascal(name: str) -> str:
    """``customer_churn`` / ``credit-risk`` -> ``CustomerChurn`` / ``CreditRisk`` (construct ids, policy Sids, parameter names)."""
    return "".join(part.capitalize() for part in re.split(r"[-_]", name))


def environment_prefix(project: str, env: str) -> str:
    """``<project>-<env>``: the prefix of every name an environment's resources carry."""
    return f"{project}-{env}"


def stack_name(prefix: str, component: str) -> str:
    """``<prefix>-<component>``: the CloudFormation stack of one component (``storage``, ``training``, ...)."""
    return f"{prefix}-{component}"


def serving_stack_name(prefix: str) -> str:
    """The CloudFormation stack that serves the environment's models; approving a version updates it."""
    return stack_name(prefix, "serving")


def team_approver_role_name(prefix: str, team: str) -> str:
    """``<prefix>-<team>-team-approver``: the IAM role that approves or rejects the versions of one team's models
    (``environments.<env>.team_approvers``), and no other model's."""
    return f"{prefix}-{team}-team-approver"


def team_topic_name(prefix: str, team: str) -> str:
    """``<prefix>-<team>-notifications``: the SNS topic of one team's notices (``models.<model>.owner.team``; docs/
    configuration.md, Models of several teams). A fixed name, so the handlers are told it as a plain string and build its
    ARN from the environment topic's (``pipeline_code.handlers.team_topics``). Project, environment and team names
    follow ``NAME_PATTERN`` (2-20 of ``[a-z0-9-]``), so it is at most 76 characters of letters, digits and ``-``: always
    a valid topic name (1-256 of letters, digits, ``-`` and ``_``)."""
    return f"{prefix}-{team}-notifications"


def approver_role_name(prefix: str) -> str:
    """``<prefix>-model-approver``: the IAM role that approves or rejects the environment's model package versions (the
    only role that may; the rollback command runs as it and the audit holds every approval to it)."""
    return f"{prefix}-model-approver"


# The components of an environment, one stack each, in the order `cdk deploy` creates them (Storage first, every other
# stack reads it; `cdk destroy` deletes them in the reverse order).
STACK_COMPONENTS = ("storage", "data-pipeline", "training", "serving", "operations")


def environment_stack_names(prefix: str) -> Dict[str, str]:
    """``{component: stack name}`` of every stack of the environment, in the order `cdk deploy` creates them."""
    return {component: stack_name(prefix, component) for component in STACK_COMPONENTS}


# The AWS partitions an ARN may name, each with the form of its region names (botocore's partitions.json, regionRegex).
# Only the commercial partition is deployed to today: the config's region allow-list holds commercial regions only and
# cdk.json's @aws-cdk/core:enablePartitionLiterals writes "arn:aws:" into the templates (docs/deploying.md "Partitions").
PARTITIONS = (
    ("aws-cn", r"^cn-\w+-\d+$"),
    ("aws-us-gov", r"^us-gov-\w+-\d+$"),
    ("aws", r"^(us|eu|ap|sa|ca|me|af|il|mx)-\w+-\d+$"),
)


def aws_partition(region: str) -> str:
    """The partition of ``region`` (``aws``, ``aws-cn`` or ``aws-us-gov``), for an ARN built outside CloudFormation.

    A region of any other partition (ISO, European Sovereign Cloud) or not a region name at all is refused
    (``ValueError``): its ARNs would be wrong whatever this answered."""
    for name, pattern in PARTITIONS:
        if re.match(pattern, region):
            return name
    raise ValueError(f"region {region!r}: not a region of the aws, aws-cn or aws-us-gov partition")


# The CDK bootstrap qualifier names the bootstrap stack's bucket and roles (``cdk-<qualifier>-...``). The app's stack
# synthesizers take it from this context key (aws-cdk-lib's BOOTSTRAP_QUALIFIER_CONTEXT), else use the CDK's default;
# a central team's `cdk bootstrap --qualifier` sets it in cdk.json.
BOOTSTRAP_QUALIFIER_CONTEXT = "@aws-cdk/core:bootstrapQualifier"
DEFAULT_CDK_QUALIFIER = "hnb659fds"
# What a qualifier the app can deploy through looks like: the bootstrap template allows [A-Za-z0-9_-]{1,10} (its Qualifier
# parameter: the longest role name must stay within IAM's 64 characters), and the default synthesizer names the
# bootstrap's bucket cdk-<qualifier>-assets-<account>-<region>, which S3 allows no capitals or '_' in.
CDK_QUALIFIER_PATTERN = r"^[a-z0-9-]{1,10}$"


def cdk_qualifier_problem(value: Any) -> Optional[str]:
    """Why ``value`` (the context's ``@aws-cdk/core:bootstrapQualifier``) is no qualifier the app can deploy through, in
    one line naming the fix; None when it is one."""
    if isinstance(value, str) and re.match(CDK_QUALIFIER_PATTERN, value):
        return None
    return (f"context '{BOOTSTRAP_QUALIFIER_CONTEXT}': {value!r} is not a CDK bootstrap qualifier: give 1-10 lowercase "
            "letters, digits or '-' (the bootstrap template takes at most 10 characters, and the qualifier names the "
            "bootstrap bucket, which takes no capitals or '_'), the one the account was bootstrapped with (cdk bootstrap "
            "--qualifier)")


# The roles `cdk bootstrap` creates, by the part of their name after the qualifier: the CDK CLI assumes the deploy role
# (CloudFormation calls), the publishing roles (assets) and the lookup role (reads: `cdk diff`, context lookups);
# CloudFormation deploys the stacks as the cfn-exec role.
CDK_BOOTSTRAP_ROLES = ("deploy-role", "file-publishing-role", "image-publishing-role", "lookup-role", "cfn-exec-role")


def cdk_bootstrap_role_arn(account: str, region: str, qualifier: str, role: str) -> str:
    """The ARN of bootstrap role ``role`` (one of :data:`CDK_BOOTSTRAP_ROLES`) that `cdk bootstrap --qualifier
    <qualifier>` creates in ``account`` and ``region``: ``cdk-<qualifier>-<role>-<account>-<region>``."""
    if role not in CDK_BOOTSTRAP_ROLES:
        raise ValueError(f"{role!r} is not a CDK bootstrap role; one of {', '.join(CDK_BOOTSTRAP_ROLES)}")
    return f"arn:{aws_partition(region)}:iam::{account}:role/cdk-{qualifier}-{role}-{account}-{region}"


def cfn_exec_role_arn(account: str, region: str, qualifier: str) -> str:
    """The role `cdk bootstrap --qualifier <qualifier>` creates for CloudFormation to deploy the app's stacks as
    (``cdk-<qualifier>-cfn-exec-role-<account>-<region>``): the one to name (``--role-arn``) for an operation by hand on
    a stack whose last operation ran as a narrower role (the serving stack after an approval runs as its deployer)."""
    return cdk_bootstrap_role_arn(account, region, qualifier, "cfn-exec-role")


# The curated data's partition column: the curate job writes <curated>/<dataset>/event_date=<day>/, and the feature
# job knows a partition by it.
CURATED_PARTITION_COLUMN = "event_date"
# What the ETL trims from text: Spark's trim() removes spaces only (a tab or a no-break space stays, as in training).
# Blank text after it is a missing value: to the ETL, to serving (pipeline_code.catalog.trimmed_text) and to the by-id
# front judging a stored record (pipeline_code.core.online_features).
TRIMMED = " "
# The raw data's partition column: a batch of raw files lands under <raw>/<dataset>/ingest_date=<day>/ (the sample-data
# generator and the local run land theirs there); the curate job knows a landing's order and its batch by it.
RAW_PARTITION_COLUMN = "ingest_date"


def package_group_name(prefix: str, model: str) -> str:
    """The model package group (registry) of ``model``: ``<prefix>-<model>``."""
    return f"{prefix}-{model}"


PIPELINE_SUFFIX = "-training"


def pipeline_name(prefix: str, model: str) -> str:
    """The SageMaker pipeline that retrains ``model``: ``<prefix>-<model>-training``."""
    return f"{prefix}-{model}{PIPELINE_SUFFIX}"


# PipelineExecutionStatus values after which nothing of an execution changes (DescribePipelineExecution; its
# EventBridge "SageMaker Model Building Pipeline Execution Status Change" carries them as currentPipelineExecutionStatus):
# the deploy handler copies an approved version's run only then, and the rule that invokes it on a run's end matches them.
PIPELINE_EXECUTION_ENDED = ("Succeeded", "Failed", "Stopped", "CompletedWithFailures")
# The deploy handler's action that rule sends: record the run of the version that execution registered, if approved.
RECORD_EXECUTION_ACTION = "record-execution"
# The deploy handler's action its hourly sweep sends: set the environment's endpoint log groups to its retention.
LOG_RETENTION_ACTION = "log-retention"
# What each sweep publishes (an embedded-metric log line of the deploy function, so no role may PutMetricData there and
# no IAM condition applies): the count of endpoint log groups it could not set (a failed call, or deferred for time),
# 0 when it set or found every one. One series per function (dimension FunctionName, <prefix>-deploy-on-approval:
# unique in its account and region, so it names the project and environment); alarmed by the Operations stack.
DEPLOY_HANDLER_NAMESPACE = "mlops-loop/deploy-handler"
DEPLOY_HANDLER_DIMENSION = "FunctionName"
LOG_RETENTION_NOT_SET_METRIC = "EndpointLogGroupsNotSet"


def pipeline_group(pipeline: str) -> Optional[str]:
    """The model package group a pipeline named by :func:`pipeline_name` registers into (``<prefix>-<model>``); None
    for another name."""
    return pipeline.removesuffix(PIPELINE_SUFFIX) if pipeline.endswith(PIPELINE_SUFFIX) and len(pipeline) > len(PIPELINE_SUFFIX) else None


def endpoint_name(prefix: str, model: str) -> str:
    """``<prefix>-<model>``: the stable endpoint name clients call; it never changes across versions."""
    return f"{prefix}-{model}"


def feature_group_name(prefix: str, dataset: str) -> str:
    """``<prefix>-<dataset>`` with underscores turned to dashes (Feature Store allows no underscores): the
    feature group the feature job fills and scoring by id reads. The config refuses a dataset whose group
    name Feature Store would refuse (``mlops_loop.naming.feature_group_name_problem``)."""
    return f"{prefix}-{dataset}".replace("_", "-")


def multi_model_endpoint_name(prefix: str, endpoint: str) -> str:
    """``<prefix>-mme-<endpoint>``: the stable name clients call with a ``TargetModel``."""
    return f"{prefix}-mme-{endpoint}"


PACKAGE_PARAMETER_SUFFIX = "ModelPackageArn"


def package_parameter_name(model: str) -> str:
    """The serving-stack parameter holding the version that serves ``model`` (``credit-risk`` -> ``CreditRiskModelPackageArn``)."""
    return f"{pascal(model)}{PACKAGE_PARAMETER_SUFFIX}"


# The serving-stack parameter holding the approved version's model digest (pipeline_code.core.integrity),
# which the serving container checks at load; single-model endpoints and batch models have one.
MODEL_SHA256_PARAMETER_SUFFIX = "ModelSha256"


def model_sha256_parameter_name(package_parameter: str) -> str:
    """The digest parameter beside a package parameter (``ChurnModelPackageArn`` -> ``ChurnModelSha256``)."""
    return package_parameter.removesuffix(PACKAGE_PARAMETER_SUFFIX) + MODEL_SHA256_PARAMETER_SUFFIX


def endpoint_output_names(package_parameter: str) -> "tuple[str, str]":
    """The serving-stack outputs beside a package parameter: the name of the endpoint serving that model and the name of
    the endpoint configuration CloudFormation made for its version (``ChurnModelPackageArn`` -> ``ChurnEndpointName``,
    ``ChurnEndpointConfigName``); a batch model has neither, and the configuration's only while a version is set."""
    stem = package_parameter.removesuffix(PACKAGE_PARAMETER_SUFFIX)
    return f"{stem}EndpointName", f"{stem}EndpointConfigName"


# The Operations stack's outputs naming the topics people subscribe to: every notice, and the watchdog that says a notice
# could not be delivered (docs/monitoring.md). Each owner team's topic is ``<Team>`` + TEAM_TOPIC_OUTPUT_SUFFIX.
NOTIFICATION_TOPIC_OUTPUTS = ("NotificationTopicArn", "WatchdogTopicArn")
TEAM_TOPIC_OUTPUT_SUFFIX = "TeamNotificationTopicArn"


def deploy_handler_name(prefix: str) -> str:
    """``<prefix>-deploy-on-approval``: the function that sets approved versions on the serving stack (and reconciles a
    model's group when invoked with ``{"action": "reconcile", "group": ...}``)."""
    return f"{prefix}-deploy-on-approval"


def target_model_parameter_name(prefix: str, model: str) -> str:
    """SSM parameter holding the ``TargetModel`` that currently serves ``model`` (e.g. ``churn/v7.tar.gz``)."""
    return f"/{prefix}/serving/{model}/target-model"


RETRAIN_INFIX = "retrain"
# The retrain trigger's storm guard: at most this many starts of a model's pipeline in any 24 hours, whatever the
# cooldown (the default of monitoring.retraining_max_starts_per_day, which the function reads as MAX_STARTS_PER_DAY).
DEFAULT_MAX_RETRAINING_STARTS_PER_DAY = 3
# At most one retrain per this many hours after a run that answered the drift (the default of
# monitoring.retraining_cooldown_hours, which the function reads as COOLDOWN_HOURS).
DEFAULT_RETRAINING_COOLDOWN_HOURS = 24
# The retrain trigger's circuit breaker: after this many consecutive failed executions it started (not rejected by the
# gate, not stopped by a person) it pauses the model's retraining and pages once (the default of
# monitoring.retraining_failures_before_pause, which the function reads as FAILURES_BEFORE_PAUSE). Two: one retry for a
# passing cause (capacity, throttling), and a second failure alike is a broken pipeline that needs a person - the storm
# guard's 3 a day would otherwise page three times a day with nothing stopping it.
DEFAULT_RETRAINING_FAILURES_BEFORE_PAUSE = 2
# Who paused, in the pause the circuit breaker writes (RETRAINING_PAUSE_FIELDS): the trigger tells its own pause apart
# by it, and lifts it alone when a run succeeds.
RETRAINING_BREAKER = "retrain-trigger circuit breaker"


def retrain_alarm_prefix(prefix: str, model: str) -> str:
    """Alarms named ``<prefix>-<model>-retrain-...`` start the model's retraining when they fire."""
    return f"{prefix}-{model}-{RETRAIN_INFIX}-"


# The on-call switch that pauses automatic retraining (mlops_cli.retraining writes it, the retrain trigger reads it on
# every start). SSM parameters that CloudFormation does not manage, so that no deploy creates, reverts or deletes
# them; a parameter's presence is the pause, its value who paused, when and why (RETRAINING_PAUSE_FIELDS, JSON).
RETRAINING_PAUSE_FIELDS = ("reason", "by", "at")
# The circuit breaker's pause alone also says whether its page went out: "no" from its creation until the page did,
# then "yes" (a pause without it - a person's, or one written before this field - is taken as announced). A later
# invocation of the trigger that finds the breaker's pause unannounced pages it.
RETRAINING_PAUSE_ANNOUNCED = "announced"
# How much of a pause's value (written by people) is read back.
_PAUSE_FIELD_CHARS = 512


def pause_value(*, announced: Optional[bool] = None, **fields: str) -> str:
    """A pause parameter's value as the CLI writes it: JSON of ``reason``, ``by`` and ``at`` (read back by
    :func:`pause_record`); the circuit breaker's also ``announced`` (:data:`RETRAINING_PAUSE_ANNOUNCED`)."""
    value = {field: fields[field] for field in RETRAINING_PAUSE_FIELDS}
    if announced is not None:
        value[RETRAINING_PAUSE_ANNOUNCED] = "yes" if announced else "no"
    return json.dumps(value, sort_keys=True)


def pause_record(value: str) -> Dict[str, str]:
    """A pause parameter's value as ``{"reason", "by", "at"}``. Whatever the value, the parameter pauses: one written
    by hand that is not the CLI's JSON is its own ``reason``."""
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = None
    if not isinstance(parsed, Mapping):
        parsed = {"reason": value}
    record = {field: str(parsed.get(field) or "unknown")[:_PAUSE_FIELD_CHARS] for field in RETRAINING_PAUSE_FIELDS}
    if parsed.get(RETRAINING_PAUSE_ANNOUNCED) == "no":  # only the breaker's pause whose page has not gone out
        record[RETRAINING_PAUSE_ANNOUNCED] = "no"
    return record


def retraining_pause_parameter(prefix: str, model: Optional[str] = None) -> str:
    """The parameter whose presence pauses retraining: by default the environment's (every model),
    ``/<prefix>/retraining/paused``; with ``model`` that model's alone, ``/<prefix>/retraining/paused-models/<model>``.

    A model's parameter never lies below the environment's (``paused-models``, not ``paused/<model>``): the two are
    independent switches, and resuming one leaves the other as it is.
    """
    return f"{retraining_path(prefix)}/paused" if model is None else f"{retraining_paused_models_path(prefix)}/{model}"


class RetrainTriggerNames(NamedTuple):
    """What the retrain trigger of an environment works on, derived from its prefix and its models' pipelines."""

    alarm_pipelines: Dict[str, str]  # every retrain alarm's name -> its model's pipeline (what the sweep asks about)
    pause_parameter: str  # the environment's pause
    model_pause_parameters: Dict[str, str]  # pipeline -> its model's pause
    model_reset_parameters: Dict[str, str]  # pipeline -> its model's last resume (the circuit breaker counts after it)
    reset_parameter: str  # the environment's last resume (the circuit breaker counts after it too)


def retrain_trigger_names(prefix: str, model_pipelines: Dict[str, str]) -> RetrainTriggerNames:
    """The names the retrain trigger of ``prefix`` reads and its role may read, ``model_pipelines`` mapping each
    model to its training pipeline: the construct grants them, the function derives them from the same two facts."""
    return RetrainTriggerNames(
        {f"{retrain_alarm_prefix(prefix, model)}{name}": pipeline
         for model, pipeline in model_pipelines.items() for name in RETRAIN_ALARMS},
        retraining_pause_parameter(prefix),
        {pipeline: retraining_pause_parameter(prefix, model) for model, pipeline in model_pipelines.items()},
        {pipeline: retraining_reset_parameter(prefix, model) for model, pipeline in model_pipelines.items()},
        retraining_reset_parameter(prefix),
    )


def retraining_reset_parameter(prefix: str, model: Optional[str] = None) -> str:
    """``/<prefix>/retraining/resumed-models/<model>``: when a person last resumed the model's retraining; without
    ``model``, ``/<prefix>/retraining/resumed``: when a person last resumed the whole environment's
    (``mlops_cli.retraining ... resume`` writes them, :func:`pause_value`). The retrain trigger's circuit breaker counts
    only the failures started after the later of the two, so failures from before a resume do not trip it the moment
    retraining resumes. Their presence pauses nothing."""
    return f"{retraining_path(prefix)}/resumed" if model is None else f"{retraining_path(prefix)}/resumed-models/{model}"


def retraining_paused_models_path(prefix: str) -> str:
    """``/<prefix>/retraining/paused-models``: the hierarchy holding every model's pause parameter."""
    return f"{retraining_path(prefix)}/paused-models"


def retraining_path(prefix: str) -> str:
    """``/<prefix>/retraining``: the hierarchy holding every retraining pause of the environment (the IAM grant of the
    people who pause is ``parameter/<prefix>/retraining/*``)."""
    return f"/{prefix}/retraining"


def inference_prefix(model: str, what: str) -> str:
    """Key prefix in the inference bucket for one model's ``capture``, ``async``, ``batch``, ``labels``, ``monitor`` or
    ``monitor-native`` data (:data:`INFERENCE_TRAFFIC`, :data:`INFERENCE_RECORDS`)."""
    return f"{what}/{model}/"


# Under a model's batch/ and async/ prefixes (inference_prefix): what callers put in and what SageMaker writes out. A
# batch run writes output/v<version>/<run>/X.out for each input/X (batch_version_dir): the drift monitor pairs them and
# judges each version by its own outputs. An async endpoint writes results to output/ and failures to failures/.
TRAFFIC_INPUT = "input/"
BATCH_OUTPUT_SUFFIX = ".out"  # SageMaker names a transform's output of input X "X.out"
TRAFFIC_OUTPUT = "output/"
ASYNC_FAILURES = "failures/"
_BATCH_VERSION_DIR = re.compile(r"v([1-9][0-9]*)")


def batch_version_dir(version: Any) -> str:
    """``v<version>``: the directory under a batch model's ``output/`` holding the runs of that registry version."""
    return f"v{version}"


def version_of_batch_dir(name: str) -> Optional[int]:
    """The registry version a ``batch_version_dir`` names; None for anything else (a run of the layout before outputs
    named their version)."""
    match = _BATCH_VERSION_DIR.fullmatch(name)
    return int(match.group(1)) if match else None


# Where a dataset's records land in the data lake, by bucket (``<prefix>-<kind>-<account>-<region>``,
# :func:`lake_bucket`): the infrastructure writes its paths and lifecycle rules from these, and the erasure search
# (mlops_cli.erasure) lists the same prefixes, so a new place is one edit here (a model's pipeline prefixes in the
# artifacts bucket: pipeline_code.core.integrity).
QUARANTINE_PREFIX = "_quarantine"  # curated bucket: _quarantine/<dataset>/run_id=*/
CURATE_RECOVERY_PREFIX = "_curate-recovery"  # curated bucket: _curate-recovery/<dataset>/run_id=*/
INGEST_FAILURES_PREFIX = "_ingest-failures"  # features bucket: _ingest-failures/<dataset>/run_id=*/
FEATURE_SNAPSHOTS_ROOT = "snapshots"  # features bucket: snapshots/<dataset>/
OFFLINE_STORE_PREFIX = "offline-store"  # features bucket: the feature groups' Iceberg tables


def lake_bucket(prefix: str, kind: str, account: str, region: str) -> str:
    """``<prefix>-<kind>-<account>-<region>``: the name of the environment's ``kind`` bucket (raw, curated,
    features, artifacts, inference, access-logs); unchecked (mlops_loop.naming.lake_bucket_name checks it)."""
    return f"{prefix}-{kind}-{account}-{region}"


def hidden_from_spark(parts: Sequence[str]) -> bool:
    """Whether a file whose path below a listed folder has ``parts`` is one Spark's file listing leaves out (the curate
    job reads raw data so): a part starting with ``.``, or with ``_`` and no ``=`` (``_SUCCESS``, an ``_archive/``
    folder; a partition folder such as ``_x=1`` is read), or an S3 folder marker ``..._$folder$``. The local run lands
    a user's files by the same rule, so it reads what the job in AWS would read."""
    return any(part.startswith(".") or (part.startswith("_") and "=" not in part) or part.endswith("_$folder$")
               for part in parts)


# The inference bucket's top-level prefixes (``what`` of :func:`inference_prefix`), by how long they are kept:
# traffic is what serving saw and said (data capture, async requests and results, batch inputs and outputs), kept
# for the drift monitor's windows; records are what the loop learnt from it (ground-truth labels, the drift
# monitor's and the native Model Monitor's reports), the evidence of how each model did.
NATIVE_MONITOR_REPORTS = "monitor-native"
# The drift monitor's: each run writes its reports and prediction records below monitor/<model>/<execution id>/ and
# reads its state back from the earlier runs' reports, so no object there is ever rewritten.
DRIFT_MONITOR_REPORTS = "monitor"
# The drift monitor's tables (Athena, Glue: docs/monitoring.md): each run's prediction records and its results in long
# format, each under a prefix of its own (a table reads every file below its location, so no report may sit there),
# partitioned as <what>/<model>/date=<yyyy-mm-dd>/run=<execution id>/ (monitor_table_dir). Kept like monitor/.
PREDICTION_RECORDS = "predictions"
MONITOR_RESULTS = "monitor-results"
DRIFT_MONITOR_OUTPUTS = (DRIFT_MONITOR_REPORTS, PREDICTION_RECORDS, MONITOR_RESULTS)
INFERENCE_TRAFFIC = ("capture", "async", "batch")
INFERENCE_RECORDS = ("labels", *DRIFT_MONITOR_OUTPUTS, NATIVE_MONITOR_REPORTS)


# The Glue tables over them (Storage stack) and their columns as the monitor writes them, (name, Athena type) in the
# files' order; each table's partitions are model (an enum of the environment's models) and date (yyyy-MM-dd), both
# projected (no crawler, no MSCK REPAIR). A multiclass model's records also hold a proba:<class> column per class, which
# the shared table does not declare (the files are read by column name, so extra columns are ignored).
MONITOR_TABLE_PARTITIONS = (("model", "string"), ("date", "string"))
PREDICTION_TABLE_COLUMNS = (("inference_id", "string"), ("inference_time", "timestamp"), ("score", "double"),
                            ("model_package_arn", "string"), ("model_package_version", "bigint"),
                            ("model_sha256", "string"), ("answered_by_sha256", "string"))
MONITOR_RESULTS_COLUMNS = (("run", "string"), ("window_end", "timestamp"), ("model", "string"),
                           ("model_package_version", "bigint"), ("section", "string"), ("feature", "string"),
                           ("metric", "string"), ("value", "double"), ("status", "string"))
# prefix -> (Glue table name, its columns)
MONITOR_TABLES = {PREDICTION_RECORDS: ("predictions", PREDICTION_TABLE_COLUMNS),
                  MONITOR_RESULTS: ("monitor_results", MONITOR_RESULTS_COLUMNS)}
# The first day the tables' date partitions project (none of their runs is older: the layout came with this version).
MONITOR_TABLES_FIRST_DAY = "2026-01-01"


def monitor_table_dir(day: str, run: str) -> str:
    """A drift-monitor run's folder below its model's :data:`PREDICTION_RECORDS` or :data:`MONITOR_RESULTS` prefix:
    ``date=<day>/run=<run>/`` (``day`` is ``yyyy-mm-dd``, the UTC day the run ran), the layout the Glue tables' date
    partitions project."""
    return f"date={day}/run={run}/"


# The artifacts bucket's top-level prefix of every multi-model endpoint's staged copies (staging_prefix).
MME_STAGING_ROOT = "mme"


def staging_prefix(endpoint_name: str) -> str:
    """Key prefix (artifacts bucket) a multi-model endpoint loads models from; a version lives at ``<model>/v<N>.tar.gz`` below it.

    The artifacts bucket, not the inference bucket: inference data expires, a serving model must not.
    """
    return f"{MME_STAGING_ROOT}/{endpoint_name}/"


# The serving container's self-capture settings (serverless and multi-model endpoints, where
# SageMaker captures nothing); see pipeline_code.serving.self_capture.
# An s3:// URI of one object: (bucket, key). The deploy handler, the parity check, the champion rule and the audit
# read object addresses with it.
S3_OBJECT_URI = re.compile(r"^s3://([^/]+)/(.+)$")
CAPTURE_URI_ENV = "MLOPS_CAPTURE_S3_URI"
CAPTURE_PERCENT_ENV = "MLOPS_CAPTURE_PERCENT"
CAPTURE_KMS_KEY_ENV = "MLOPS_CAPTURE_KMS_KEY_ID"
CAPTURE_ENDPOINT_ENV = "MLOPS_ENDPOINT_NAME"
# The capture bucket's region: the container's S3 client is made for it, not left to the default chain (no AWS
# documentation promises AWS_REGION in a hosting container; without a region boto3 would use S3's global endpoint,
# which a VPC without NAT cannot reach).
CAPTURE_REGION_ENV = "MLOPS_CAPTURE_REGION"
# A capture object the serving code could not write, as a CloudWatch metric (embedded metric format in the container's
# log line, dimension EndpointName): the container does not know its project, and endpoint names carry it already.
CAPTURE_NAMESPACE = "mlops-loop/capture"
CAPTURE_FAILURE_METRIC = "CaptureWriteFailures"
# In a multi-model endpoint's capture URI, replaced by the name of the model that answered.
MODEL_PLACEHOLDER = "{model}"

# Batch transform: set ("1") on a batch model's SageMaker Model, so the serving code answers a record the contract
# refuses with an error line of its own (record_error) and scores the others of its mini-batch; endpoints (not set)
# answer a request whole or refuse it whole. SageMaker sets nothing that tells a container it runs in a transform job.
BATCH_RECORD_ERRORS_ENV = "MLOPS_LOOP_BATCH_RECORD_ERRORS"
# A refused record's output line: {"error": {"status": 400, "fields": [...], "message": "..."}} (+ the record's
# inference_id, echoed as a prediction echoes it). "fields" names the record's fields at fault (empty when the record
# as a whole is: not JSON, not an object, a CSV line of the wrong width); "message" is the 400's words for the record.
RECORD_ERROR = "error"
RECORD_ERROR_STATUS = "status"
RECORD_ERROR_FIELDS = "fields"
RECORD_ERROR_MESSAGE = "message"
RECORD_ERROR_INFERENCE_ID = "inference_id"


def inference_id_problem(identifier: Any) -> Optional[str]:
    """Why a record's ``inference_id`` is refused (None: absent, text or a whole number, echoed as text), in the words
    after ``field 'inference_id': ``: serving's rule (:func:`pipeline_code.serving.records.feature_rows`) and the by-id
    front's (:func:`pipeline_code.core.online_features.parse_request`), one definition. Echoed as ``str()``, any other
    JSON value would be Python's repr (``{'a': 1}``, ``True``), an id the caller never sent."""
    if identifier is None or (isinstance(identifier, (str, int)) and not isinstance(identifier, bool)):
        return None
    shown = json.dumps(identifier)
    shown = shown if len(shown) <= 40 else f"{shown[:40]}... ({len(shown)} characters)"
    if isinstance(identifier, float):  # 1000.0, 1e3: the number parsed, not as written
        return (f"got the number {shown}, written with a decimal point or an exponent, which would not be echoed as "
                "sent; send the id as text or as a whole number without a point or exponent")
    return f"expected text or a whole number, got {type(identifier).__name__} {shown}"


# The longest message SageMaker hands a caller of an endpoint's refusal: ModelError's OriginalMessage (the container's
# body) is at most 2048 characters in SageMaker Runtime's API model (botocore's sagemaker-runtime service-2.json).
MAX_ERROR_MESSAGE = 2048

# How serving's 400 names each problem, for a caller reading it (docs/invocation-contract.md, Errors): "record <i>",
# its line in JSON Lines / CSV, then the field at fault when one is ("field '<name>'", "missing required field
# '<name>'", "missing feature '<name>'"), the same field a batch error line names first in its ``fields``. Problems
# are joined by "; ". Groups: 1 the record's 0-based index, 2 its line (or None), 3 the field (or None).
REFUSED_RECORD = r"(?:^|; )record (\d+)(?: \(line (\d+)\))?: "
REFUSED_FIELD = REFUSED_RECORD + r"(?:(?:missing required field|missing feature|field) '([^']+)')?"
# How the 400 counts the problems it does not list, after the last one it lists (``MORE_PROBLEMS.format(n)``), and
# the pattern that finds that count at its end (group 1: n).
MORE_PROBLEMS = " (+{} more problems)"
MORE_PROBLEMS_PATTERN = r" \(\+(\d+) more problems\)$"


def record_error(message: str, fields: Sequence[str] = (), *, status: int = 400,
                 inference_id: Optional[str] = None) -> Dict[str, Any]:
    """The output line of a record batch transform refused (:data:`RECORD_ERROR`), as a JSON object."""
    line: Dict[str, Any] = {RECORD_ERROR: {RECORD_ERROR_STATUS: status, RECORD_ERROR_FIELDS: list(fields),
                                           RECORD_ERROR_MESSAGE: message}}
    if inference_id is not None:
        line[RECORD_ERROR_INFERENCE_ID] = inference_id
    return line


def record_error_of(value: Any) -> Optional[Dict[str, Any]]:
    """The error object of a batch output line's JSON value (:func:`record_error`), None when it is not one (a
    prediction never has the key ``error``)."""
    if not isinstance(value, dict) or not isinstance(value.get(RECORD_ERROR), dict):
        return None
    if set(value) - {RECORD_ERROR, RECORD_ERROR_INFERENCE_ID}:
        return None
    error = value[RECORD_ERROR]
    return error if isinstance(error.get(RECORD_ERROR_MESSAGE), str) else None


# The inference id of the deploy handler's smoke request (one record, every feature null): not
# traffic, so serving does not capture it for the drift monitor.
SMOKE_TEST_INFERENCE_ID = "mlops-loop-smoke-test"


def is_smoke_record(record: Any) -> bool:
    """Whether ``record`` is the deploy handler's smoke record: an object whose ``inference_id`` is
    :data:`SMOKE_TEST_INFERENCE_ID` and every other field null. Serving scores it although every feature is
    missing (it tests the model answers, not the data) and does not capture it."""
    return isinstance(record, dict) and record.get("inference_id") == SMOKE_TEST_INFERENCE_ID and all(
        value is None for key, value in record.items() if key != "inference_id")

# How the drift monitor's kept evidence (monitor/: every version kept) names a record it points at - a skew example,
# a label that matched no request - without its id: the first 12 hex digits of the SHA-256 of the id's text. Unkeyed
# on purpose, so whoever holds an id finds its examples (`printf %s "$ID" | sha256sum | cut -c1-12`); so is anyone
# holding a list of ids: pseudonymisation, not anonymisation.
PSEUDONYM_HEX_DIGITS = 12


def record_pseudonym(record_id: Any) -> str:
    """The stable, unkeyed pseudonym of ``record_id``: the first :data:`PSEUDONYM_HEX_DIGITS` hex digits of the
    SHA-256 of its text (``str``, UTF-8), e.g. ``record_pseudonym("CUS-1")`` equals
    ``hashlib.sha256(b"CUS-1").hexdigest()[:12]``."""
    return hashlib.sha256(str(record_id).encode("utf-8")).hexdigest()[:PSEUDONYM_HEX_DIGITS]


# Set on the model container: the registry version reported in every JSON response.
MODEL_VERSION_ENV = "MLOPS_LOOP_MODEL_VERSION"

# Which model answered a request: the ``model`` object of every JSON response (``{"name", "version",
# "artefact_sha256", "trained_at"}``) and, in a self-captured record, the same object in ``eventMetadata``
# whatever the response's type. The drift monitor judges only the serving version's answers: a record another
# version answered (a window that holds a rollout) is rescored by the serving version.
ANSWERED_BY = "model"
ANSWERED_BY_DIGEST = "artefact_sha256"
ANSWERED_BY_VERSION = "version"

# The production variant of every endpoint (one variant; blue/green happens inside it).
VARIANT = "AllTraffic"

# The customer metadata properties (CustomerMetadataProperties) the training pipeline records on a version it
# registers. The digests of its sealed artefact and its inference container (pipeline_code.core.integrity says
# what each covers; values: 64 lower-case hex digits) ...
ARCHIVE_SHA256_PROPERTY = "model_data_sha256"
MODEL_SHA256_PROPERTY = "model_sha256"
CONTAINER_SHA256_PROPERTY = "container_sha256"
# ... the model's content digest (integrity.model_content_digest: the model digest without the training time), which
# two versions trained on the same data, code, configuration and seed share ...
MODEL_CONTENT_SHA256_PROPERTY = "model_content_sha256"
# The sha256 of the test set's data file the gate judged on (its manifest's ``sha256``, which evaluate checked the
# bytes against; the register step reads it from the evaluation report) ...
TEST_SET_SHA256_PROPERTY = "test_set_sha256"
# ... and where the execution's Prepare wrote the splits it trained and validated on (per execution, never reused;
# a cached Prepare names the execution that ran it). Prepare's test split is the frozen test set (``frozen_test``).
SPLIT_PROPERTIES = {"train": "train_data", "validation": "validation_data"}
# ... and each split's digest as Prepare wrote it (pipeline_code.core.integrity.files_digest of the files under its
# location; the register step reads it from Prepare's summary, PREPARE_SUMMARY_FILE) ...
SPLIT_SHA256_PROPERTIES = {"train": "train_data_sha256", "validation": "validation_data_sha256"}
# ... and where its code, data and run came from. What pins the build without git: the job code's CDK asset hash
# (the library zip every job imports, its S3 key in the CDK assets bucket ``<hash>.zip``) and the sha256 of the model
# spec the jobs read (``model-spec.json``: the model's config entry with its dataset's declaration).
CODE_VERSION_PROPERTY = "code_version"
# The code version's ending when synth read anything the commit does not hold (mlops_loop.app_builder.source_version).
DIRTY_VERSION_SUFFIX = "-dirty"
# The code version when git cannot tell the commit (no checkout, no git, a checkout git refuses to read).
UNKNOWN_VERSION = "unknown"
# A code version that names a commit: git's object name (40 hex digits; 64 in a SHA-256 repository), maybe -dirty.
COMMIT_VERSION = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})(?:" + re.escape(DIRTY_VERSION_SUFFIX) + r")?$")
JOB_CODE_HASH_PROPERTY = "job_code_asset_hash"
# attributions.json's ContentDigest (``sha256:<hex>``) as the baseline step wrote it in its digests.json: ModelMetrics
# has no slot for it, so it is registered here, and the drift monitor uses the file only when its bytes have it.
ATTRIBUTIONS_SHA256_PROPERTY = "attributions_sha256"
# The digest of the job-code zip's files (integrity.files_digest) that every job of the run verified the zip it ran
# against before running any of it (pipeline_code/sagemaker_entry.py refuses another): the code that ran, by content.
JOB_CODE_SHA256_PROPERTY = "job_code_sha256"
MODEL_SPEC_SHA256_PROPERTY = "model_spec_sha256"
TRIGGER_REASON_PROPERTY = "trigger_reason"
INPUT_FEATURES_PROPERTY = "input_features"
INPUT_LABELS_PROPERTY = "input_labels"
FROZEN_TEST_PROPERTY = "frozen_test"
PIPELINE_NAME_PROPERTY = "pipeline_name"
PIPELINE_EXECUTION_ID_PROPERTY = "pipeline_execution_id"
# Every property the register step sets (its test checks the step against this): the version's recorded lineage.
# Nobody changes one after registration: the approver role is denied setting each one by name (IAM has no condition
# key listing the keys a request sets) and removing any property.
REGISTERED_PROPERTIES = (
    CODE_VERSION_PROPERTY, JOB_CODE_HASH_PROPERTY, JOB_CODE_SHA256_PROPERTY, MODEL_SPEC_SHA256_PROPERTY,
    TRIGGER_REASON_PROPERTY, INPUT_FEATURES_PROPERTY, INPUT_LABELS_PROPERTY, FROZEN_TEST_PROPERTY,
    PIPELINE_NAME_PROPERTY, PIPELINE_EXECUTION_ID_PROPERTY,
    ARCHIVE_SHA256_PROPERTY, MODEL_SHA256_PROPERTY, CONTAINER_SHA256_PROPERTY, MODEL_CONTENT_SHA256_PROPERTY,
    TEST_SET_SHA256_PROPERTY, *SPLIT_PROPERTIES.values(), *SPLIT_SHA256_PROPERTIES.values(),
    ATTRIBUTIONS_SHA256_PROPERTY,
)  # fmt: skip

# A versioned model package: group (1-63 letters, digits, '-') and version.
PACKAGE_ARN = re.compile(r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package/([A-Za-z0-9-]{1,63})/(\d+)$")


# SageMaker names (model cards, endpoints, ...) are at most 63 characters.
MAX_NAME = 63
# A model package's identity. Its ARN names the group and the version only, and a group deleted and created again (a
# dev teardown and redeploy, or a model removed and later added back) restarts at version 1 under the same ARNs; what
# tells the two apart is when the package was created (DescribeModelPackage CreationTime). Names and records that must
# belong to one package carry that time as package_created(): UTC to the second, ``YYYYMMDDTHHMMSSZ`` (letters and
# digits only, so it fits a SageMaker name). Re-creating a group, deploying and registering a version again takes
# minutes, so no two packages of one ARN share a second.
PACKAGE_CREATED_FORMAT = "%Y%m%dT%H%M%SZ"
PACKAGE_CREATED_PATTERN = r"\d{8}T\d{6}Z"


def package_created(created: Any) -> str:
    """A model package's ``CreationTime`` (a datetime, naive taken as UTC; an ISO-8601 text; or this form already) as
    ``YYYYMMDDTHHMMSSZ``, UTC to the second (:data:`PACKAGE_CREATED_FORMAT`). ValueError for anything else."""
    if isinstance(created, str):
        text = created.strip()
        if re.fullmatch(PACKAGE_CREATED_PATTERN, text):
            return text
        try:
            created = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"package creation time {created!r} is not an ISO-8601 time") from None
    if not isinstance(created, _dt.datetime):
        raise ValueError(f"package creation time {created!r} is not a time")
    aware = created if created.tzinfo else created.replace(tzinfo=_dt.timezone.utc)
    return aware.astimezone(_dt.timezone.utc).strftime(PACKAGE_CREATED_FORMAT)


# Model cards are named after the package they describe: <group>-v<version>-<package_created>. A name that would
# overflow keeps this much of its group, then 8 hex digits of the group's SHA-256: the kept stem depends on the group
# alone (room for a 6-digit version and the creation time), so one ARN pattern covers every version.
_CARD_SUFFIX = len("-v123456-") + len("20260101T000000Z")
_CARD_STEM = MAX_NAME - len("-12345678") - _CARD_SUFFIX
# Cards the pipeline created before their names carried the package's creation time: <group>-v<version>, hashed past
# 63 characters with a longer stem. Nothing creates one any more; the teardown and the reviewers still find them.
_LEGACY_CARD_STEM = MAX_NAME - len("-12345678-v") - 6


def _card_stem(group: str, keep: int = _CARD_STEM) -> str:
    return f"{group[:keep].rstrip('-')}-{hashlib.sha256(group.encode()).hexdigest()[:8]}-v"


def model_card_name(group: str, version: int, created: Any) -> str:
    """The model card of one registered version, named after the package it describes: ``<group>-v<version>-<created>``,
    ``created`` the package's ``CreationTime`` (:func:`package_created`), so a version of a group deleted and created
    again never reuses the card of the version that had its number before. Over 63 characters: the group's first
    29 characters, 8 hex digits of its SHA-256, then ``-v<version>-<created>``."""
    suffix = f"{version}-{package_created(created)}"
    name = f"{group}-v{suffix}"
    return name if len(name) <= MAX_NAME else f"{_card_stem(group)}{suffix}"


def legacy_model_card_name(group: str, version: int) -> str:
    """The name the pipeline gave a version's card before names carried the package's creation time:
    ``<group>-v<version>``, past 63 characters the group's first 46, 8 hex digits of its SHA-256, then ``-v<version>``."""
    name = f"{group}-v{version}"
    return name if len(name) <= MAX_NAME else f"{_card_stem(group, _LEGACY_CARD_STEM)}{version}"


def model_card_name_patterns(group: str) -> tuple[str, ...]:
    """Name patterns (IAM ``*``) that cover :func:`model_card_name` for every version of ``group``, and the cards named
    before their names carried the package's creation time (``<group>-v<version>``): the plain form while a version
    still fits, the hashed forms once one can overflow."""
    longest = f"{group}-v999999-{'0' * 8}T{'0' * 6}Z"
    patterns = []
    if len(f"{group}-v1") <= MAX_NAME:
        patterns.append(f"{group}-v*")
    if len(longest) > MAX_NAME:
        patterns.append(f"{_card_stem(group)}*")
    if len(f"{group}-v999999") > MAX_NAME:
        patterns.append(f"{_card_stem(group, _LEGACY_CARD_STEM)}*")
    return tuple(dict.fromkeys(patterns))


def model_card_name_regex(group: str) -> "re.Pattern[str]":
    """What every card name of ``group`` fully matches (:func:`model_card_name`, and the older ``<group>-v<version>``
    form), and no card name of another group: the groups' patterns with the version (and creation time) for ``*``."""
    forms = [re.escape(p[:-1]) + rf"\d+(-{PACKAGE_CREATED_PATTERN})?" for p in model_card_name_patterns(group)]
    return re.compile("|".join(f"(?:{form})" for form in forms))


def region_of_arn(arn: str) -> Optional[str]:
    """The region field of a full ARN (``arn:<partition>:<service>:<region>:<account>:<resource>``), else None (a
    global resource's empty field too): what the ``--region`` of an AWS command a message gives names, since a shell's
    default region may be another environment's."""
    parts = str(arn or "").split(":")
    return parts[3] if len(parts) >= 6 and parts[3] else None


def version_of_arn(arn: str) -> Optional[int]:
    """The version number at the end of a versioned model package ARN (``.../group/7`` -> 7), else None."""
    match = re.search(r"/(\d+)$", arn or "")
    return int(match.group(1)) if match else None


# The evaluation report the pipeline's evaluate step writes; it travels with the model package
# (ModelMetrics), and the model card, the audit and the monitor's quality baseline read it.
def model_spec_document(*, name: str, dataset: Dict[str, Any], target: str, features: Sequence[str],
                        sensitive_attribute: str, slices: Sequence[str], decision: Dict[str, Any], class_weight: str,
                        problem_type: str = BINARY, primary_metric: Optional[str] = None,
                        min_quality: Optional[float] = None, leakage_acknowledged: Optional[str] = None,
                        loss: str = SQUARED_ERROR, tweedie_variance_power: Optional[float] = None) -> Dict[str, Any]:
    """The model spec every job reads (``--model-spec``): the one shape the config writes and the jobs write back.

    ``dataset`` is the dataset's whole declaration (``catalog.Dataset.to_declaration``), ``decision`` the
    threshold policy (``core.decision.DecisionPolicy.to_dict``). ``problem_type``, ``primary_metric`` and
    ``min_quality`` (``core.problem``) appear only when they differ from the defaults (binary, its default
    metric, no floor), so a binary model's spec reads as it always has; so does ``leakage_acknowledged`` (why a
    suspected target leak is genuine, which the gate then accepts) only when given, and a regression model's ``loss``
    (``core.problem.LOSSES``) and ``tweedie_variance_power`` only when not squared error / when set.
    """
    document = {
        "name": name,
        "dataset": dataset,
        "target": target,
        "features": list(features),
        "sensitive_attribute": sensitive_attribute,
        "slices": list(slices),
        "decision": decision,
        "class_weight": class_weight,
    }
    if problem_type != BINARY:
        document["problem_type"] = problem_type
    if primary_metric is not None and primary_metric != default_primary_metric(problem_type):
        document["primary_metric"] = primary_metric
    if min_quality is not None:
        document["min_quality"] = min_quality
    if leakage_acknowledged is not None:
        document["leakage_acknowledged"] = leakage_acknowledged
    if loss != SQUARED_ERROR:
        document["loss"] = loss
    if tweedie_variance_power is not None:
        document["tweedie_variance_power"] = tweedie_variance_power
    return document


# A frozen test set: its data file and the manifest that holds the data file's sha256 (training.prepare writes both).
TEST_FILE = "test.parquet"
MANIFEST_FILE = "manifest.json"
# Prepare's summary (rows, time ranges and digests of its splits, warnings): <output>/PREPARE_SUMMARY_DIR/PREPARE_SUMMARY_FILE,
# the output the pipeline's register step reads the splits' digests from (a property file).
PREPARE_SUMMARY_DIR = "summary"
PREPARE_SUMMARY_FILE = "prepare.json"
# When Prepare replaces a frozen test set by one from the latest rows (the config's training.test_set_refreeze, the
# pipeline's Prepare argument, the local run's): once the set has gone stale (REFREEZE_WHEN_STALE, the default: rows
# after its window are at least a test fraction of the data), or never (REFREEZE_NEVER: it is kept until deleted).
REFREEZE_WHEN_STALE = "when_stale"
REFREEZE_NEVER = "never"
TEST_SET_REFREEZE_POLICIES = (REFREEZE_WHEN_STALE, REFREEZE_NEVER)

EVALUATION_FILE = "evaluation.json"
# Its JSON path to the gate decision, which the pipeline's condition step reads.
GATE_PASSED_PATH = "gate.passed"
# Its block on registration (pipeline_code.core.approval.status_to_register) and the JSON path to the status the
# pipeline's register step registers a passing version with.
REGISTRATION_KEY = "registration"
APPROVAL_STATUS_PATH = f"{REGISTRATION_KEY}.approval_status"
# The evaluate step's other documents, registered as the package's ModelMetrics.
MODEL_QUALITY_FILE = "model_quality.json"
BIAS_FILE = "bias.json"
EXPLAINABILITY_FILE = "explainability.json"
# Every document the evaluate step writes, each digested (core.integrity.DIGESTS_FILE) once all are written.
EVALUATION_FILES = (EVALUATION_FILE, MODEL_QUALITY_FILE, BIAS_FILE, EXPLAINABILITY_FILE)
# The event time of the feature values a row was trained on (prepare's point-in-time join) or scored with
# (scoring by id: the online-store record's event time).
FEATURE_EVENT_TIME = "feature_event_time"
# Where a run's records came from, as a frozen test set's manifest and the local run's lineage record it: the sample
# generator's records ("generated"), or the user's files (their location and content hash).
DATA_GENERATED = "generated"
DATA_FILES = "files"

# The baseline step's documents: the monitor compares traffic with them.
STATISTICS_FILE = "statistics.json"
CONSTRAINTS_FILE = "constraints.json"
ATTRIBUTIONS_FILE = "attributions.json"
BASELINE_FILES = (STATISTICS_FILE, CONSTRAINTS_FILE, ATTRIBUTIONS_FILE)

# The share of a window's capture lines that may be malformed (skipped and counted as MalformedRecords) before the
# monitor distrusts the window: a truncated write or a client's bad record must not blind it, a broken capture must.
# The config's monitoring.max_malformed_rate defaults to it; the monitor job's --max-malformed-rate too.
DEFAULT_MAX_MALFORMED_RATE = 0.01
# The share of a window's capture lines that may be requests serving refused (4xx: out of the invocation contract)
# before the monitor distrusts the window. Their own limit, not the malformed lines': a refusal is a caller's request
# answered as designed, not a broken capture, and one client sending a few bad requests must not blind the monitor;
# a window where a large share was refused is no longer the traffic the model answers. The config's
# monitoring.max_refused_rate defaults to it; the monitor job's --max-refused-rate too.
DEFAULT_MAX_REFUSED_RATE = 0.05

# CloudWatch's bound on a namespace (PutMetricData, PutMetricAlarm: 1-255 characters, not starting with ':'). The
# longest namespace the names allow (NAME_PATTERN: 20 characters each) is 73; tests/core/test_contract.py proves it.
MAX_METRIC_NAMESPACE = 255


# The drift monitor's CloudWatch metrics: published by the monitor job, alarmed on by the Operations stack.
def monitor_namespace(project: str, environment: str, model: str) -> str:
    """``<project>/<environment>/<model>/monitoring``: the drift monitor's CloudWatch namespace of one model in one
    environment. Each model's monitor role may publish in its own namespace only (``cloudwatch:namespace``, exact):
    IAM has no condition on dimensions, so a namespace shared by the models of a project (or by its dev and prod
    environments in one account) would let one model's monitor job publish another's drift or health, silencing or
    firing its retrain alarms. Two projects never share a series either."""
    return f"{project}/{environment}/{model}/monitoring"


MONITOR_DIMENSIONS = ("Environment", "Model")


def parity_namespace(endpoint_name: str) -> str:
    """``<endpoint>/rollout``: the CloudWatch namespace of one endpoint's rollout parity verdicts
    (``pipeline_code.handlers.parity_check``). An endpoint name is unique in its account and region and names its
    environment and model (:func:`endpoint_name`), so the parity function of one environment, which may publish only
    in its own endpoints' namespaces (``cloudwatch:namespace``, exact: IAM has no condition on the EndpointName
    dimension), cannot pass or fail another environment's rollout (dev and prod may share an account)."""
    return f"{endpoint_name}/rollout"


def serving_namespace(project: str) -> str:
    """The score-by-id fronts' CloudWatch namespace of ``project`` (dimensions Environment and Model). Per project, not
    per model: the fronts write it as embedded-metric log lines in their own log groups, no role may PutMetricData
    there, and no IAM condition applies to embedded metrics, so a narrower namespace would confine nothing."""
    return f"{project}/serving"


SERVING_NAMESPACE = serving_namespace(DEFAULT_PROJECT)


class MonitorMetric(NamedTuple):
    """One headline metric of a monitor report: the report summary key, the metric name, its unit, and whether it
    describes the monitor's own health (published always) rather than the model (withheld from an unhealthy report)."""

    key: str
    name: str
    unit: str
    health: bool = False


MONITOR_METRICS = tuple(
    MonitorMetric(*m)
    for m in (
        ("data_drift_max_psi", "DataDriftMaxPsi", "None"),
        # The largest PSI / calibrated threshold of a feature (prediction): at DRIFT_SCORE_ALARM, drifted.
        ("data_drift_score", "DataDriftScore", "None"),
        ("drifted_feature_count", "DriftedFeatureCount", "Count"),
        ("prediction_psi", "PredictionPsi", "None"),
        ("prediction_drift_score", "PredictionDriftScore", "None"),
        # The largest CUSUM of drift scores over runs / its decision level (slow drift): at DRIFT_SCORE_ALARM, drifted.
        ("cumulative_drift_score", "CumulativeDriftScore", "None"),
        ("missing_rate_max", "MissingRateMax", "None"),
        ("data_quality_violations", "DataQualityViolations", "Count"),
        ("model_auc", "ModelAuc", "None"),
        ("auc_drop", "AucDrop", "None"),
        # Models judged on another metric than AUC (regression, and classifiers whose primary metric is not auc; a
        # multiclass model's report has it always): the primary metric's worsening vs the baseline evaluation.
        ("quality_drop", "QualityDrop", "None"),
        ("label_coverage", "LabelCoverage", "None"),
        ("demographic_parity_difference", "DemographicParityDifference", "None"),
        # Regression models only: the most over- minus the most under-estimated group's mean error share.
        ("bias_gap", "BiasGap", "None"),
        ("attribution_ndcg", "AttributionNdcg", "None"),
        ("attribution_rank_correlation", "AttributionRankCorrelation", "None"),
        # Models scored by id: the largest share of served records whose feature differs from the training snapshot.
        ("feature_skew_rate", "FeatureSkewRate", "None"),
        ("records", "CapturedRecords", "Count", True),
        # Capture lines that do not decode (a broken capture); requests serving refused are RefusedRecords, not these.
        ("malformed_records", "MalformedRecords", "Count", True),
        ("refused_records", "RefusedRecords", "Count", True),
        ("monitoring_errors", "MonitoringErrors", "Count", True),
        ("monitor_healthy", "MonitorHealthy", "None", True),
    )
)
# The training pipeline's step that ends an execution whose challenger the gate rejected: the retrain trigger
# tells such a run (the model was judged) from one that failed for any other reason (it could not fix anything).
GATE_FAIL_STEP = "GateFailed"
# One float pipeline parameter per gate threshold, named after it (``min_auc`` -> ``MinAuc``): the pipeline declares
# them, the evaluate step gets their values, the audit holds an evaluation report's thresholds to an execution's.
GATE_PARAMETERS = {t.field: pascal(t.field) for t in THRESHOLDS}

# A drift score (PSI over its calibrated threshold) at or above this is drift: the monitor fails the check and the
# retrain alarm fires.
DRIFT_SCORE_ALARM = 1.0
# Each model's retrain alarms (``<prefix>-<model>-retrain-<name>``): the drift ones with the report summary key whose
# metric they watch (firing at DRIFT_SCORE_ALARM), then the quality one (core.problem.quality_alarm_key: per type and primary metric).
RETRAIN_DRIFT_ALARMS = (("data-drift", "data_drift_score"), ("prediction-drift", "prediction_drift_score"),
                        ("slow-drift", "cumulative_drift_score"))
QUALITY_RETRAIN_ALARM = "quality"
# Each model's data-quality alarm (``<prefix>-<model>-monitor-data-quality``, people only) and the report summary key whose
# metric it watches: the count of the window's failed data-quality checks.
DATA_QUALITY_ALARM = "monitor-data-quality"
DATA_QUALITY_ALARM_KEY = "data_quality_violations"
RETRAIN_ALARMS = (*(name for name, _ in RETRAIN_DRIFT_ALARMS), QUALITY_RETRAIN_ALARM)
# The per-feature PSI metric (dimension ``Feature`` added to MONITOR_DIMENSIONS).
FEATURE_PSI_METRIC = "FeaturePsi"
# Models scored by id: each feature's share of served values that differ from the training snapshot (dimension Feature).
FEATURE_SKEW_METRIC = "FeatureSkew"


def monitor_metric(key: str) -> str:
    """The CloudWatch metric name of report summary key ``key`` (``auc_drop`` -> ``AucDrop``)."""
    for metric in MONITOR_METRICS:
        if metric.key == key:
            return metric.name
    raise KeyError(f"no monitor metric for report key {key!r}")


# Late labels (pipeline_code/monitoring/late_labels.py): the drift monitor's window of traffic and of labels (hours),
# and how long after its request a model's label may come by default (models.<name>.label_delay_days).
MONITOR_WINDOW_HOURS = 24
# How many days of traffic each daily drift run judges (monitoring.drift_window_days): 1 (default) is the last day; 7
# puts every weekday in each window, as the training baseline has them, so a weekly rhythm is not drift. At most 14:
# two weekly cycles, far inside the capture's expiry (data_lake.inference_expiration_days, at least 30).
DEFAULT_DRIFT_WINDOW_DAYS = 1
MAX_DRIFT_WINDOW_DAYS = 14
MONITOR_LABEL_WINDOW_HOURS = 168
DEFAULT_LABEL_DELAY_DAYS = 30
# The drift monitor job's StoppingCondition (constructs/drift_monitor.py): it uploads its output - the report and the
# prediction records - when it ends (EndOfJob), so a records file is written at most this long after its run started.
MONITOR_MAX_RUNTIME_SECONDS = 2 * 3600


def monitor_label_window_hours(window_days: int) -> float:
    """The label window of a drift monitor judging ``window_days`` days of traffic (``--label-window-hours``): the
    week (:data:`MONITOR_LABEL_WINDOW_HOURS`), or its whole traffic window when that is longer, so every day it judges
    is joined to all its labels (with a week, a 14-day window's older days would get only their last week's)."""
    return float(max(MONITOR_LABEL_WINDOW_HOURS, MONITOR_WINDOW_HOURS * window_days))


def records_lookback_hours(label_delay_days: int, *, label_window_hours: float = MONITOR_LABEL_WINDOW_HOURS,
                           window_hours: float = MONITOR_WINDOW_HOURS) -> float:
    """How far back a monitor run reads the prediction records its earlier runs wrote: a label that arrived in the
    label window names a request at most ``label_delay_days`` older, recorded by a run after it; one window more is the
    margin for a run that started late. The records must be kept at least this long
    (data_lake.inference_records_expiration_days)."""
    return label_delay_days * 24 + label_window_hours + window_hours


# The drift monitor's download cap (its --max-window-bytes): each of its downloads of a run - the traffic window
# (capture or batch), the label window's labels, a by-id model's feature snapshots, the earlier runs' prediction records
# and the look-back's older labels - keeps at most this many bytes, the newest (or the due) first. Set per model in GiB
# (models.<name>.monitor_max_window_gib, MONITOR_WINDOW_SETTING); default 2 GiB.
MONITOR_WINDOW_SETTING = "monitor_max_window_gib"
DEFAULT_MONITOR_WINDOW_GIB = 2
GIB = 1024**3
MONITOR_WINDOW_DOWNLOADS = 5
# Besides the downloads, the job's volume holds the serving version's extracted model and baselines, the 30 earlier
# reports and this run's outputs (the report and the window's prediction records: ~56 bytes a request).
MONITOR_WORKING_GB = 10
# The volume the job had before the cap could be set: a smaller cap never shrinks it.
MONITOR_MIN_VOLUME_GB = 30
# SageMaker's limit on a processing job's ML storage volume (ProcessingClusterConfig.VolumeSizeInGB: 1-16384; the
# processing types the config allows have no local instance storage, which would cap it lower).
MAX_PROCESSING_VOLUME_GB = 16384


def monitor_window_fix(model: Optional[str] = None) -> str:
    """The remedy a report names when a download was cut at the cap."""
    return f"raise models.{model or '<model>'}.{MONITOR_WINDOW_SETTING} (the job's --max-window-bytes)"


def monitor_window_bytes(gib: float) -> int:
    """The cap of ``gib`` GiB in bytes (what --max-window-bytes takes)."""
    return max(1, int(gib * GIB))


def monitor_volume_gb(max_window_bytes: int) -> int:
    """The drift monitor job's volume (GB, decimal, rounded up) for a download cap of ``max_window_bytes``: every one of
    its :data:`MONITOR_WINDOW_DOWNLOADS` downloads full, plus :data:`MONITOR_WORKING_GB`, and never below
    :data:`MONITOR_MIN_VOLUME_GB` (the default 2 GiB cap: 30 GB)."""
    downloads = -(-MONITOR_WINDOW_DOWNLOADS * int(max_window_bytes) // 10**9)
    return max(MONITOR_MIN_VOLUME_GB, downloads + MONITOR_WORKING_GB)
