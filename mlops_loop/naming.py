"""Bucket naming shared by the config and the data lake (names that cross the infra/job boundary live in
``pipeline_code.core.contract``)."""

from __future__ import annotations

import hashlib
import json
import re
from typing import TYPE_CHECKING, Sequence

from pipeline_code.core import contract

if TYPE_CHECKING:  # the config loader imports this module: no CDK import on its path
    from aws_cdk import Stack


# The CloudFormation metadata key under which constructs describe what a resource serves (the
# cost floor reads it to label its lines).
RESOURCE_METADATA_KEY = "mlops-loop"

LAKE_BUCKETS = ("raw", "curated", "features", "artifacts", "inference", "access-logs")
BUCKET_NAME_MAX = 63
# Bucket-name prefixes S3 reserves (S3 User Guide, "General purpose bucket naming rules").
RESERVED_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
# "A parameter name can't be prefixed with "aws" or "ssm" (case-insensitive)" (SSM PutParameter, Name); the
# environment's parameters are named /<project>-<env>/...
RESERVED_PARAMETER_PREFIXES = ("aws", "ssm")
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


# SageMaker's names (monitoring schedules and job definitions) and IAM role names the app bounds to this many characters.
_NAME_LIMIT = 63


def bounded_name(base: str, salt: str) -> str:
    """``base`` if it fits in 63 characters, otherwise its start plus a hash (names stay unique)."""
    if len(base) <= _NAME_LIMIT:
        return base
    digest = hashlib.sha256(f"{base}|{salt}".encode()).hexdigest()[:8]
    return f"{base[:_NAME_LIMIT - 9].rstrip('-')}-{digest}"


# Names unique in the account whatever the region (IAM, CloudWatch dashboards, AWS Budgets): the config refuses two
# environments of one account that would both create one (``cross_checks.account_wide_names`` lists an environment's).


def monitor_role_name(name_prefix: str, model: str) -> str:
    """``<prefix>-<model>-native-monitor``, the fixed name of the role a model's four monitoring jobs run as."""
    return bounded_name(f"{name_prefix}-{model}-native-monitor", "role")


def serving_deployer_role_name(name_prefix: str) -> str:
    """``<prefix>-serving-deployer``: the role CloudFormation deploys the Serving stack as (fixed, so the Operations
    stack's deploy handler passes it without a cross-stack export)."""
    return f"{name_prefix}-serving-deployer"


def analyst_role_name(name_prefix: str) -> str:
    """``<prefix>-analyst``: the role analysts query predictions, labels and monitor results as (fixed, so a
    QuickSight or SSO set-up can name it before the first deploy)."""
    return f"{name_prefix}-analyst"


def loop_dashboard_name(name_prefix: str) -> str:
    """``<prefix>-loop``: the environment's CloudWatch dashboard (dashboards are global, not regional)."""
    return f"{name_prefix}-loop"


def email_order(emails: Sequence[str]) -> list:
    """A budget's email subscribers in the order its template lists them and its name's digest reads them: sorted
    ignoring case (the same addresses in another order are the same budget), each written as given (an address whose
    case changes is another subscriber to AWS Budgets, so another template, so another name)."""
    return sorted(emails, key=lambda e: (e.lower(), e))


def budget_name(name_prefix: str, actual_percent: Sequence[float], forecast_percent: Sequence[float],
                emails: Sequence[str] = ()) -> str:
    """``<prefix>-monthly-cost-<8 hex digits of the notices>``. CloudFormation replaces a budget whose notices or their
    subscribers change (they and its name are create-only; an address's case counts) by creating the new one first; under the same name that
    create fails, so the name follows them. Without emails the digest is the one from before emails existed, so such a
    budget keeps its name."""
    described: list = [sorted(map(float, actual_percent)), sorted(map(float, forecast_percent))]
    if emails:
        # As the template lists them (email_order), case kept: an address whose case changes is a changed subscriber.
        described.append(email_order(emails))
    if any(list(map(float, p)) != sorted(map(float, p)) for p in (actual_percent, forecast_percent)):
        # A version before the notices were written sorted wrote them in the config's order under the sorted ones'
        # name: a budget deployed from a list out of order gets a template of sorted notices now, so a name of its own
        # (created anew, the old one deleted) rather than a replacement under its name, which the deploy would fail.
        described.append("listed out of order")
    notices = json.dumps(described)
    return f"{name_prefix}-monthly-cost-{hashlib.sha256(notices.encode()).hexdigest()[:8]}"


# Feature Store: 1-64 letters, digits and single dashes (no underscores).
_FEATURE_GROUP_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,63}$")


def checked_feature_group_name(prefix: str, dataset: str) -> str:
    """:func:`pipeline_code.core.contract.feature_group_name`, refused when Feature Store would refuse it.

    The config loader refuses a dataset whose name would break the rule (:func:`feature_group_name_problem`),
    naming the field; this raises as a last guard.
    """
    name = contract.feature_group_name(prefix, dataset)
    problem = feature_group_name_problem(name)
    if problem:
        raise ValueError(f"feature group name {name!r} (project + environment + dataset) {problem}")
    return name


def feature_group_arn(stack: "Stack", name: str) -> str:
    """The ARN of feature group ``name`` in ``stack``'s account and region (SageMaker writes its ARNs in lower case)."""
    # Imported here: the config loader imports this module, and its path stays free of the CDK.
    from .constructs.arns import format_arn

    return format_arn(stack, service="sagemaker", resource="feature-group", resource_name=name.lower())


def feature_group_name_problem(name: str) -> str:
    """Why Feature Store would refuse ``name`` ("" when it would not): 1-64 letters, digits and dashes,
    starting and ending with a letter or digit."""
    # Length first: the pattern bounds the letters and digits, not the dashes between them.
    if len(name) > 64:
        return f"is {len(name)} characters; Feature Store allows at most 64"
    if not _FEATURE_GROUP_NAME.match(name):
        return "is invalid: letters, digits and dashes only, starting and ending with a letter or digit"
    return ""


# The features bucket's prefix of every dataset's feature snapshots, replaced whole by each feature job run.
FEATURE_SNAPSHOTS_ROOT = contract.FEATURE_SNAPSHOTS_ROOT


def feature_snapshots_prefix(dataset: str) -> str:
    """``snapshots/<dataset>/`` in the features bucket: where the feature job writes each run's feature frame,
    which training reads and the drift monitor's skew check compares served features with."""
    return f"{FEATURE_SNAPSHOTS_ROOT}/{dataset}/"


# A dataset's ETL jobs, in the order its workflow runs them (DatasetWorkflow): curate, then features.
ETL_JOBS = ("curate", "features")


def etl_workflow_name(prefix: str, dataset: str) -> str:
    """``<prefix>-<dataset>`` (underscores as dashes): the dataset's Glue workflow, and its crawler's and jobs' stem."""
    return f"{prefix}-{dataset.replace('_', '-')}"


def etl_crawler_name(prefix: str, dataset: str) -> str:
    """The crawler over a dataset's raw files, the first step of its Glue workflow: ``<prefix>-<dataset>-raw``."""
    return f"{etl_workflow_name(prefix, dataset)}-raw"


def etl_job_name(prefix: str, dataset: str, job: str) -> str:
    """The Glue job ``job`` (of :data:`ETL_JOBS`) of a dataset: ``<prefix>-<dataset>-<job>``."""
    return f"{etl_workflow_name(prefix, dataset)}-{job}"


def score_by_id_function_name(prefix: str, model: str) -> str:
    """``<prefix>-<model>-by-id``: the function that scores a model by entity id."""
    return f"{prefix}-{model}-by-id"


def batch_schedule_name(prefix: str, model: str) -> str:
    """``<prefix>-<model>-batch``: the schedule that starts a batch-served model's transform jobs."""
    return f"{prefix}-{model}-batch"


def batch_dead_letters_queue_name(prefix: str) -> str:
    """``<prefix>-batch-dead-letters``: the Serving stack's queue of batch runs their schedules could not start; fixed
    so the Operations stack alarms on it without a cross-stack export."""
    return f"{prefix}-batch-dead-letters"


def lake_bucket_name(prefix: str, kind: str, account: str, region: str) -> str:
    """``<prefix>-<kind>-<account>-<region>``: readable, stable and globally unique in practice.

    Fixed names let every stack and job address the lake without cross-stack lookups, and make IAM
    policies (and their review) concrete. The config refuses names S3 would (see
    :func:`bucket_name_problem`); this raises too, as a last guard.
    """
    name = contract.lake_bucket(prefix, kind, account, region)
    problem = bucket_name_problem(name)
    if problem:
        raise ValueError(f"bucket name {name!r} {problem}")
    return name


def bucket_name_problem(name: str) -> str:
    """Why S3 would refuse bucket name ``name`` ("" when it would not)."""
    if len(name) > BUCKET_NAME_MAX:
        return f"is {len(name)} characters; S3 allows at most {BUCKET_NAME_MAX}"
    reserved = next((p for p in RESERVED_BUCKET_PREFIXES if name.startswith(p)), None)
    if reserved:
        return f"starts with {reserved!r}, which S3 reserves"
    if not _BUCKET_NAME.match(name):
        return "is invalid (3-63 lowercase letters, digits, '-' or '.')"
    return ""
