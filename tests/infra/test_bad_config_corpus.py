"""A corpus of bad configurations (issue #13): one mistake each, and exactly the line(s) it must produce.

Every case deep-copies the frozen sample config (``tests/support/configs/sample.yaml``), makes one mistake and
expects exactly these problems from ``parse_config``: each line names where (environment, model, dataset or
``defaults``), the field, and the allowed values or the fix. The YAML-text cases edit the sample's text and go
through ``load_config``, the loader that reads YAML (duplicate keys, unquoted account ids, syntax errors).

A mutation is ``at(path, value)``, ``drop(path)`` or a function of the raw mapping; paths are dotted.
"""

from __future__ import annotations

import copy
from typing import Any, Callable

import pytest
import yaml

from mlops_loop.config import ConfigError, load_config, parse_config

from tests.support.configs import SAMPLE_CONFIG

SAMPLE_TEXT = SAMPLE_CONFIG.read_text()
SAMPLE = yaml.safe_load(SAMPLE_TEXT)

# Allowed values several messages list in full.
INSTANCE_TYPES = (
    "ml.c5.2xlarge, ml.c5.xlarge, ml.c6i.xlarge, ml.g5.2xlarge, ml.g5.xlarge, ml.inf2.8xlarge, "
    "ml.inf2.xlarge, ml.m5.2xlarge, ml.m5.4xlarge, ml.m5.large, ml.m5.xlarge, ml.m5d.xlarge, "
    "ml.m6i.2xlarge, ml.m6i.large, ml.m6i.xlarge, ml.r5.2xlarge, ml.r5.xlarge, ml.t3.large, "
    "ml.t3.medium, ml.trn1.2xlarge, ml.trn1.32xlarge"
)
TABLE_FIX = " (the types mlops_loop/config/instance_types.py describes; add a missing one there)"
REGIONS = (
    "us-east-1, us-east-2, us-west-1, us-west-2, ca-central-1, eu-west-1, eu-west-2, eu-west-3, "
    "eu-central-1, eu-north-1, eu-south-1, ap-south-1, ap-northeast-1, ap-northeast-2, "
    "ap-southeast-1, ap-southeast-2, sa-east-1"
)
LOG_RETENTION_DAYS = (
    "1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653"
)
CHURN_COLUMNS = (
    "customer_id, event_time, tenure_months, monthly_charges, total_charges, contract_type, "
    "payment_method, support_calls_90d, region, gender, churned"
)
# What the drift monitor judges of churn (its features, sensitive attribute and slices) and the PSI bound's message.
CHURN_JUDGED = ("tenure_months, monthly_charges, total_charges, avg_charge_per_month, log_support_calls_90d, "
                "contract_type, payment_method, region, gender")
NOT_A_PSI_THRESHOLD = ("is not a PSI threshold; give a number > 0 and <= 10 (the smallest PSI of this feature worth a "
                       "retrain; monitoring.psi_threshold, 0.1 by default, is every other feature's), or list the feature "
                       "under drift_exempt_features to report its drift without judging it")


def _parent(raw: dict, path: str) -> tuple[dict, str]:
    *blocks, key = path.split(".")
    for block in blocks:
        raw = raw.setdefault(block, {})
    return raw, key


def at(path: str, value: Any) -> Callable[[dict], None]:
    """Set ``path`` (dotted; missing blocks are created) to ``value``."""
    def mutate(raw: dict) -> None:
        parent, key = _parent(raw, path)
        parent[key] = value
    return mutate


def drop(path: str) -> Callable[[dict], None]:
    """Delete the key at ``path``."""
    def mutate(raw: dict) -> None:
        parent, key = _parent(raw, path)
        del parent[key]
    return mutate


def rename(path: str, new_key: str) -> Callable[[dict], None]:
    """Move the block at ``path`` to ``new_key`` in the same mapping."""
    def mutate(raw: dict) -> None:
        parent, key = _parent(raw, path)
        parent[new_key] = parent.pop(key)
    return mutate


def update(path: str, **values: Any) -> Callable[[dict], None]:
    """Set these keys of the mapping at ``path``."""
    def mutate(raw: dict) -> None:
        parent, key = _parent(raw, path)
        parent[key].update(values)
    return mutate


def serve(mode: str, **settings: Any) -> Callable[[dict], None]:
    """Serve model 'churn' in ``mode`` with these settings of that mode."""
    return at("models.churn.serving", {"mode": mode, mode: settings})


def regression_on_a_string_label(raw: dict) -> None:
    """Model 'churn' as a regression on its label, declared as a string column."""
    raw["datasets"]["customer_churn"]["columns"]["churned"] = {"type": "string", "allowed": ["yes", "no"]}
    raw["models"]["churn"]["problem_type"] = "regression"


def case(case_id: str, mutation: Callable[[dict], Any], *expected: str):
    return pytest.param(mutation, list(expected), id=case_id)


def ycase(case_id: str, old: str, new: str, *expected: str):
    """Replace ``old`` (found exactly once in the sample's text) by ``new``."""
    return pytest.param(old, new, list(expected), id=case_id)


CASES = [
    # --- project and top-level keys ---
    case("project-reserved-xn", at("project", "xn--loop"),
         "field 'project': 'xn--loop' starts with 'xn--', which S3 reserves for bucket names (every "
         "bucket name starts with the project); choose another project name"),
    case("project-reserved-sthree", at("project", "sthree-loop"),
         "field 'project': 'sthree-loop' starts with 'sthree-', which S3 reserves for bucket names "
         "(every bucket name starts with the project); choose another project name"),
    case("project-reserved-aws", at("project", "aws-ml"),
         "field 'project': 'aws-ml' starts with 'aws', which SSM Parameter Store refuses at the start of a parameter "
         "name (the multi-model endpoints' target-model parameters and the retraining pause are named /<project>-<env>/...); choose "
         "another project name"),
    case("project-reserved-ssm", at("project", "ssmloop"),
         "field 'project': 'ssmloop' starts with 'ssm', which SSM Parameter Store refuses at the start of a parameter "
         "name (the multi-model endpoints' target-model parameters and the retraining pause are named /<project>-<env>/...); choose "
         "another project name"),
    case("project-too-long", at("project", "a-very-long-project-name"),
         "field 'project': 'a-very-long-project-name' must be 2-20 characters of lowercase letters, "
         "digits and '-', starting with a letter (it starts every bucket and resource name); choose "
         "another project name"),
    case("project-trailing-space", at("project", "mlops-loop "),
         "field 'project': 'mlops-loop ' must be 2-20 characters of lowercase letters, digits and "
         "'-', starting with a letter (it starts every bucket and resource name); choose another "
         "project name"),
    case("project-upper-case", at("project", "MLOps"),
         "field 'project': 'MLOps' must be 2-20 characters of lowercase letters, digits and '-', "
         "starting with a letter (it starts every bucket and resource name); choose another project "
         "name"),
    case("project-underscore", at("project", "mlops_loop"),
         "field 'project': 'mlops_loop' must be 2-20 characters of lowercase letters, digits and "
         "'-', starting with a letter (it starts every bucket and resource name); choose another "
         "project name"),
    case("project-not-a-string", at("project", 42),
         "app: field 'project': Input should be a valid string (got 42)"),
    case("project-leading-digit", at("project", "1loop"),
         "field 'project': '1loop' must be 2-20 characters of lowercase letters, digits and '-', "
         "starting with a letter (it starts every bucket and resource name); choose another project "
         "name"),
    case("top-level-typo", rename("defaults", "default"),
         "unknown top-level key 'default'; allowed: datasets, defaults, environments, models, project"),
    case("datasets-missing", drop("datasets"),
         "top-level key 'datasets' must be a non-empty mapping of name -> settings",
         "model 'churn': field 'dataset': unknown dataset 'customer_churn'; allowed: (none) — "
         "declare it under 'datasets'",
         "model 'credit-risk': field 'dataset': unknown dataset 'credit_risk'; allowed: (none) — "
         "declare it under 'datasets'"),
    case("models-empty", at("models", {}),
         "top-level key 'models' must be a non-empty mapping of name -> settings",
         "environment 'dev': field 'models': unknown model(s) ['churn', 'credit-risk']; allowed: "
         "(none)",
         "environment 'staging': field 'models': unknown model(s) ['churn', 'credit-risk']; allowed: "
         "(none)",
         "environment 'prod': field 'models': unknown model(s) ['churn', 'credit-risk']; allowed: "
         "(none)"),
    case("environments-missing", drop("environments"),
         "top-level key 'environments' must be a non-empty mapping of name -> settings"),
    # --- defaults vs environment overrides ---
    case("defaults-log-retention", at("defaults.log_retention_days", 45),
         f"defaults: field 'log_retention_days': Input should be {LOG_RETENTION_DAYS} (got 45)"),
    case("defaults-glue-worker-type", at("defaults.glue.worker_type", "G.3X"),
         "defaults: field 'glue.worker_type': Input should be 'G.1X', 'G.2X', 'G.4X' or 'G.8X' (got "
         "'G.3X')"),
    case("defaults-training-instance-type", at("defaults.training.instance_type", "ml.m5.huge"),
         "defaults: field 'training.instance_type': unknown instance type 'ml.m5.huge'; allowed: "
         f"{INSTANCE_TYPES}{TABLE_FIX}"),
    case("defaults-gate-min-auc", at("defaults.gate.min_auc", 0.3),
         "defaults: field 'gate.min_auc': Input should be greater than or equal to 0.5 (got 0.3)"),
    case("defaults-monitoring-schedule", at("defaults.monitoring.schedule", "cron(0 3 * * *)"),
         "defaults: field 'monitoring.schedule': 'cron(0 3 * * *)' is not a cron expression; use "
         "cron(Minutes Hours Day-of-month Month Day-of-week Year), e.g. 'cron(0 2 * * ? *)'"),
    case("defaults-unknown-block", at("defaults.glu", {"worker_type": "G.1X"}),
         "defaults: field 'glu': unknown field; check the spelling against the documented fields "
         "(docs/configuration.md: Configuration)"),
    case("defaults-destroy", at("defaults.removal_policy", "destroy"),
         "defaults: field 'removal_policy': 'destroy' is only allowed when tier is 'dev'; allowed "
         "here: 'retain'"),
    case("env-log-retention", at("environments.dev.log_retention_days", 45),
         f"environment 'dev': field 'log_retention_days': Input should be {LOG_RETENTION_DAYS} (got "
         "45)"),
    # --- environments: tier, account, name, governance ---
    case("tier-unknown", at("environments.staging.tier", "production"),
         "environment 'staging': field 'tier': Input should be 'dev', 'staging' or 'prod' (got "
         "'production')"),
    case("tier-missing", drop("environments.staging.tier"),
         "environment 'staging': field 'tier': required field is missing"),
    case("account-unquoted-number", at("environments.dev.account", 111111111111),
         'environment \'dev\': field \'account\': must be a quoted string, e.g. account: "123456789012"; '
         "YAML read the unquoted value as the number 111111111111"),
    case("account-too-short", at("environments.dev.account", "12345"),
         "environment 'dev': field 'account': must be a 12-digit AWS account id"),
    case("account-too-long", at("environments.dev.account", "1111111111111"),
         "environment 'dev': field 'account': must be a 12-digit AWS account id"),
    case("account-letters", at("environments.dev.account", "11111111111a"),
         "environment 'dev': field 'account': must be a 12-digit AWS account id"),
    case("account-missing", drop("environments.dev.account"),
         "environment 'dev': field 'account': required field is missing"),
    case("env-name-upper-case", rename("environments.dev", "Dev"),
         "environment 'Dev': field 'name': must be 2-20 characters of lowercase letters, digits and "
         "'-', starting with a letter"),
    case("env-name-underscore", rename("environments.dev", "dev_1"),
         "environment 'dev_1': field 'name': must be 2-20 characters of lowercase letters, digits "
         "and '-', starting with a letter"),
    case("env-name-one-char", rename("environments.dev", "d"),
         "environment 'd': field 'name': must be 2-20 characters of lowercase letters, digits and "
         "'-', starting with a letter"),
    case("env-models-empty", at("environments.dev.models", []),
         "environment 'dev': field 'models': must list at least one model; add one"),
    case("env-models-unknown", at("environments.dev.models", ["churn", "fraud"]),
         "environment 'dev': field 'models': unknown model(s) ['fraud']; allowed: churn, credit-risk"),
    case("env-models-twice", at("environments.dev.models", ["churn", "churn", "credit-risk"]),
         "environment 'dev': field 'models': lists a model twice"),
    case("env-name-makes-bucket-too-long", rename("environments.staging", "staging-eu-central-x"),
         "environment 'staging-eu-central-x': bucket name "
         "'mlops-loop-staging-eu-central-x-access-logs-222222222222-eu-west-1' is 66 characters; S3 "
         "allows at most 63; shorten the project name ('mlops-loop', 10 characters) or the "
         "environment name ('staging-eu-central-x')"),
    case("env-unknown-field", at("environments.dev.tear", "dev"),
         "environment 'dev': field 'tear': unknown field; check the spelling against the documented "
         "fields (docs/configuration.md: Configuration)"),
    case("termination-protection-string", at("environments.staging.termination_protection", "yes"),
         "environment 'staging': field 'termination_protection': must be a boolean (true/false), not "
         "the string 'yes'"),
    case("termination-protection-off-in-prod", at("environments.prod.termination_protection", False),
         "environment 'prod': field 'termination_protection': must be true when tier is 'prod'"),
    case("auto-approve-in-prod", at("environments.prod.training.auto_approve", True),
         "environment 'prod': field 'training.auto_approve': must be false when tier is 'prod' "
         "(approval is a human gate)"),
    # --- region ---
    case("region-unknown", at("environments.dev.region", "eu-west-9"),
         f"environment 'dev': field 'region': unsupported region 'eu-west-9'; allowed: {REGIONS}"),
    case("region-upper-case", at("environments.dev.region", "EU-WEST-1"),
         f"environment 'dev': field 'region': unsupported region 'EU-WEST-1'; allowed: {REGIONS}"),
    case("region-missing", drop("environments.dev.region"),
         "environment 'dev': field 'region': required field is missing"),
    # --- removal policy ---
    case("removal-policy-unknown", at("environments.dev.removal_policy", "delete"),
         "environment 'dev': field 'removal_policy': Input should be 'destroy' or 'retain' (got "
         "'delete')"),
    case("removal-policy-destroy-outside-dev", at("environments.staging.removal_policy", "destroy"),
         "environment 'staging': field 'removal_policy': 'destroy' is only allowed when tier is "
         "'dev'; allowed here: 'retain'"),
    # --- log retention (CloudWatch's values only) ---
    case("log-retention-zero", at("environments.prod.log_retention_days", 0),
         f"environment 'prod': field 'log_retention_days': Input should be {LOG_RETENTION_DAYS} (got "
         "0)"),
    case("log-retention-not-a-cloudwatch-value", at("environments.prod.log_retention_days", 3650),
         f"environment 'prod': field 'log_retention_days': Input should be {LOG_RETENTION_DAYS} (got "
         "3650)"),
    case("log-retention-string", at("environments.prod.log_retention_days", "365"),
         "environment 'prod': field 'log_retention_days': must be a number, not the string '365'; "
         "write it without quotes"),
    # --- data lake ---
    case("raw-expiration-zero", at("environments.dev.data_lake.raw_expiration_days", 0),
         "environment 'dev': field 'data_lake.raw_expiration_days': Input should be greater than or "
         "equal to 1 (got 0)"),
    case("curated-ia-before-30-days", at("environments.prod.data_lake.curated_infrequent_access_days", 29),
         "environment 'prod': field 'data_lake.curated_infrequent_access_days': Input should be "
         "greater than or equal to 30 (got 29)"),
    case("inference-expiration-short", at("environments.prod.data_lake.inference_expiration_days", 7),
         "environment 'prod': field 'data_lake.inference_expiration_days': Input should be greater "
         "than or equal to 30 (got 7)"),
    case("noncurrent-expiration-zero", at("environments.prod.data_lake.noncurrent_version_expiration_days", 0),
         "environment 'prod': field 'data_lake.noncurrent_version_expiration_days': Input should be greater than "
         "or equal to 1 (got 0)"),
    case("noncurrent-expiration-never-as-a-word", at("environments.prod.data_lake.noncurrent_version_expiration_days",
                                                     "never"),
         "environment 'prod': field 'data_lake.noncurrent_version_expiration_days': must be a number, not the string "
         "'never'"),
    case("rewritten-noncurrent-longer-than-noncurrent",
         update("environments.dev.data_lake", rewritten_noncurrent_days=10),
         "environment 'dev': field 'data_lake.rewritten_noncurrent_days': 10 is longer than "
         "noncurrent_version_expiration_days (7), which already expires every old version sooner; allowed: at most "
         "7, or null for the same"),
    case("rewritten-noncurrent-zero", at("environments.prod.data_lake.rewritten_noncurrent_days", 0),
         "environment 'prod': field 'data_lake.rewritten_noncurrent_days': Input should be greater than or equal "
         "to 1 (got 0)"),
    case("pipeline-work-expiration-short", at("environments.prod.data_lake.pipeline_work_expiration_days", 7),
         "environment 'prod': field 'data_lake.pipeline_work_expiration_days': Input should be greater than or "
         "equal to 30 (got 7)"),
    case("inference-records-expiration-short", at("environments.prod.data_lake.inference_records_expiration_days", 14),
         "environment 'prod': field 'data_lake.inference_records_expiration_days': Input should be greater than "
         "or equal to 30 (got 14)"),
    # --- glue ---
    case("glue-worker-type-unknown", at("environments.prod.glue.worker_type", "Standard"),
         "environment 'prod': field 'glue.worker_type': Input should be 'G.1X', 'G.2X', 'G.4X' or "
         "'G.8X' (got 'Standard')"),
    case("glue-workers-below-two", at("environments.prod.glue.number_of_workers", 1),
         "environment 'prod': field 'glue.number_of_workers': Input should be greater than or equal "
         "to 2 (got 1)"),
    case("glue-workers-above-limit", at("environments.prod.glue.number_of_workers", 300),
         "environment 'prod': field 'glue.number_of_workers': Input should be less than or equal to "
         "299 (got 300)"),
    case("glue-workers-string", at("environments.prod.glue.number_of_workers", "10"),
         "environment 'prod': field 'glue.number_of_workers': must be a number, not the string '10'; "
         "write it without quotes"),
    case("glue-workers-boolean", at("environments.prod.glue.number_of_workers", True),
         "environment 'prod': field 'glue.number_of_workers': must be a number, not the boolean true"),
    case("glue-workers-fraction", at("environments.prod.glue.number_of_workers", 2.5),
         "environment 'prod': field 'glue.number_of_workers': Input should be a valid integer, got a "
         "number with a fractional part (got 2.5)"),
    case("glue-timeout-zero", at("environments.prod.glue.timeout_minutes", 0),
         "environment 'prod': field 'glue.timeout_minutes': Input should be greater than or equal to "
         "1 (got 0)"),
    case("glue-schedule-rate", at("environments.prod.glue.etl_schedule", "rate(1 day)"),
         "environment 'prod': field 'glue.etl_schedule': 'rate(1 day)' is not a cron expression; use "
         "cron(Minutes Hours Day-of-month Month Day-of-week Year), e.g. 'cron(0 2 * * ? *)'"),
    case("glue-schedule-minute-60", at("environments.prod.glue.etl_schedule", "cron(60 2 * * ? *)"),
         "environment 'prod': field 'glue.etl_schedule': 'cron(60 2 * * ? *)': minutes '60' is out "
         "of range: 60 is not within 0-59"),
    case("glue-quarantine-ratio-above-one", at("environments.prod.glue.max_quarantine_ratio", 1.5),
         "environment 'prod': field 'glue.max_quarantine_ratio': Input should be less than or equal "
         "to 1 (got 1.5)"),
    case("glue-unknown-field", at("environments.prod.glue.workers", 10),
         "environment 'prod': field 'glue.workers': unknown field; check the spelling against the "
         "documented fields (docs/configuration.md: Configuration)"),
    # --- feature store ---
    case("feature-store-ttl-zero", at("environments.dev.feature_store.online_ttl_days", 0),
         "environment 'dev': field 'feature_store.online_ttl_days': Input should be greater than or "
         "equal to 1 (got 0)"),
    case("feature-store-ttl-too-long", at("environments.dev.feature_store.online_ttl_days", 3651),
         "environment 'dev': field 'feature_store.online_ttl_days': Input should be less than or "
         "equal to 3650 (got 3651)"),
    case("feature-store-ttl-string", at("environments.dev.feature_store.online_ttl_days", "7"),
         "environment 'dev': field 'feature_store.online_ttl_days': must be a number, not the string "
         "'7'; write it without quotes"),
    case("feature-store-online-string", at("environments.dev.feature_store.online_store", "true"),
         "environment 'dev': field 'feature_store.online_store': must be a boolean (true/false), not "
         "the string 'true'; write it without quotes"),
    # --- training ---
    case("training-instance-unknown", at("environments.prod.training.instance_type", "ml.p3.2xlarge"),
         "environment 'prod': field 'training.instance_type': unknown instance type 'ml.p3.2xlarge'; "
         f"allowed: {INSTANCE_TYPES}{TABLE_FIX}"),
    case("training-instance-without-ml-prefix", at("environments.prod.training.instance_type", "m5.2xlarge"),
         "environment 'prod': field 'training.instance_type': unknown instance type 'm5.2xlarge'; "
         f"allowed: {INSTANCE_TYPES}{TABLE_FIX}"),
    case("training-on-trainium", at("environments.prod.training.instance_type", "ml.trn1.2xlarge"),
         "environment 'prod': model 'churn': field 'training.instance_type': ml.trn1.2xlarge is a "
         "Trainium instance, which training with framework 'xgboost' cannot use (Trainium runs only "
         "Neuron SDK training code; the XGBoost image has no Neuron support); allowed accelerators "
         "for training: none, gpu — pick e.g. ml.m5.xlarge or ml.g5.xlarge",
         "environment 'prod': model 'credit-risk': field 'training.instance_type': ml.trn1.2xlarge "
         "is a Trainium instance, which training with framework 'xgboost' cannot use (Trainium runs "
         "only Neuron SDK training code; the XGBoost image has no Neuron support); allowed "
         "accelerators for training: none, gpu — pick e.g. ml.m5.xlarge or ml.g5.xlarge"),
    case("training-on-inferentia", at("environments.prod.training.instance_type", "ml.inf2.xlarge"),
         "environment 'prod': model 'churn': field 'training.instance_type': ml.inf2.xlarge is an "
         "Inferentia2 instance, which training with framework 'xgboost' cannot use (Inferentia2 runs "
         "only Neuron-compiled models from a Neuron image; the XGBoost image has no Neuron support); "
         "allowed accelerators for training: none, gpu — pick e.g. ml.m5.xlarge or ml.g5.xlarge",
         "environment 'prod': model 'credit-risk': field 'training.instance_type': ml.inf2.xlarge is "
         "an Inferentia2 instance, which training with framework 'xgboost' cannot use (Inferentia2 "
         "runs only Neuron-compiled models from a Neuron image; the XGBoost image has no Neuron "
         "support); allowed accelerators for training: none, gpu — pick e.g. ml.m5.xlarge or "
         "ml.g5.xlarge"),
    case("training-on-m5d-not-a-training-type", at("environments.prod.training.instance_type", "ml.m5d.xlarge"),
         "environment 'prod': field 'training.instance_type': ml.m5d.xlarge cannot run SageMaker "
         "training jobs; allowed: ml.c5.2xlarge, ml.c5.xlarge, ml.c6i.xlarge, ml.m5.2xlarge, "
         "ml.m5.4xlarge, ml.m5.large, ml.m5.xlarge, ml.m6i.2xlarge, ml.m6i.large, ml.m6i.xlarge, "
         "ml.r5.2xlarge, ml.r5.xlarge, ml.t3.large, ml.t3.medium (CPU, any framework); "
         "ml.g5.2xlarge, ml.g5.xlarge (GPU, any framework); ml.trn1.2xlarge, ml.trn1.32xlarge "
         "(Trainium, framework 'pytorch' only)"),
    case("processing-on-trainium", at("environments.prod.training.processing_instance_type", "ml.trn1.2xlarge"),
         "environment 'prod': field 'training.processing_instance_type': ml.trn1.2xlarge cannot run "
         "SageMaker processing jobs; allowed: ml.c5.2xlarge, ml.c5.xlarge, ml.c6i.xlarge, "
         "ml.m5.2xlarge, ml.m5.4xlarge, ml.m5.large, ml.m5.xlarge, "
         "ml.m6i.2xlarge, ml.m6i.large, ml.m6i.xlarge, ml.r5.2xlarge, ml.r5.xlarge, ml.t3.large, "
         "ml.t3.medium"),
    case("processing-on-local-nvme", at("environments.prod.training.processing_instance_type", "ml.g5.xlarge"),
         "environment 'prod': field 'training.processing_instance_type': ml.g5.xlarge has local NVMe storage, "
         "and SageMaker rejects the volume KMS key every processing job sets; allowed: ml.c5.2xlarge, "
         "ml.c5.xlarge, ml.c6i.xlarge, ml.m5.2xlarge, ml.m5.4xlarge, ml.m5.large, ml.m5.xlarge, "
         "ml.m6i.2xlarge, ml.m6i.large, ml.m6i.xlarge, ml.r5.2xlarge, ml.r5.xlarge, ml.t3.large, "
         "ml.t3.medium"),
    case("processing-instance-unknown", at("environments.prod.training.processing_instance_type", "ml.m5.huge"),
         "environment 'prod': field 'training.processing_instance_type': unknown instance type "
         f"'ml.m5.huge'; allowed: {INSTANCE_TYPES}{TABLE_FIX}"),
    case("training-count-zero", at("environments.prod.training.instance_count", 0),
         "environment 'prod': field 'training.instance_count': Input should be greater than or equal "
         "to 1 (got 0)"),
    case("training-runtime-too-short", at("environments.prod.training.max_runtime_minutes", 4),
         "environment 'prod': field 'training.max_runtime_minutes': Input should be greater than or "
         "equal to 5 (got 4)"),
    case("spot-string", at("environments.prod.training.use_spot", "true"),
         "environment 'prod': field 'training.use_spot': must be a boolean (true/false), not the "
         "string 'true'; write it without quotes"),
    case("spot-number", at("environments.prod.training.use_spot", 1),
         "environment 'prod': field 'training.use_spot': must be true or false, not the number 1"),
    # --- retraining schedule (EventBridge cron: 6 fields) ---
    case("cron-minute-99", at("environments.prod.training.retraining_schedule", "cron(99 4 ? * SUN *)"),
         "environment 'prod': field 'training.retraining_schedule': 'cron(99 4 ? * SUN *)': minutes "
         "'99' is out of range: 99 is not within 0-59"),
    case("cron-hour-25", at("environments.prod.training.retraining_schedule", "cron(0 25 ? * SUN *)"),
         "environment 'prod': field 'training.retraining_schedule': 'cron(0 25 ? * SUN *)': hours "
         "'25' is out of range: 25 is not within 0-23"),
    case("cron-weekday-funday", at("environments.prod.training.retraining_schedule", "cron(0 4 ? * FUNDAY *)"),
         "environment 'prod': field 'training.retraining_schedule': 'cron(0 4 ? * FUNDAY *)': "
         "day-of-week 'FUNDAY' is not valid: 'FUNDAY' is not a value; allowed: 1-7 or SUN-SAT, '*', "
         "ranges, '?', 'nL' and 'n#k'"),
    case("cron-both-day-fields", at("environments.prod.training.retraining_schedule", "cron(0 4 1 * SUN *)"),
         "environment 'prod': field 'training.retraining_schedule': 'cron(0 4 1 * SUN *)': exactly "
         "one of day-of-month and day-of-week must be '?'"),
    case("cron-neither-day-field-is-?", at("environments.prod.training.retraining_schedule", "cron(0 4 ? * ? *)"),
         "environment 'prod': field 'training.retraining_schedule': 'cron(0 4 ? * ? *)': exactly one "
         "of day-of-month and day-of-week must be '?'"),
    case("cron-five-fields", at("environments.prod.training.retraining_schedule", "cron(0 4 ? * SUN)"),
         "environment 'prod': field 'training.retraining_schedule': 'cron(0 4 ? * SUN)' is not a "
         "cron expression; use cron(Minutes Hours Day-of-month Month Day-of-week Year), e.g. 'cron(0 "
         "2 * * ? *)'"),
    case("cron-month-13", at("environments.prod.training.retraining_schedule", "cron(0 4 1 13 ? *)"),
         "environment 'prod': field 'training.retraining_schedule': 'cron(0 4 1 13 ? *)': month '13' "
         "is out of range: 13 is not within 1-12 or JAN-DEC"),
    case("cron-year-1969", at("environments.prod.training.retraining_schedule", "cron(0 4 1 * ? 1969)"),
         "environment 'prod': field 'training.retraining_schedule': 'cron(0 4 1 * ? 1969)': year "
         "'1969' is out of range: 1969 is not within 1970-2199"),
    case("cron-step-zero", at("environments.prod.training.retraining_schedule", "cron(*/0 4 ? * SUN *)"),
         "environment 'prod': field 'training.retraining_schedule': 'cron(*/0 4 ? * SUN *)': minutes "
         "'*/0' has step '0'; a step is a positive whole number"),
    case("cron-range-backwards", at("environments.prod.training.retraining_schedule", "cron(0 4 ? * FRI-MON *)"),
         "environment 'prod': field 'training.retraining_schedule': 'cron(0 4 ? * FRI-MON *)': "
         "day-of-week 'FRI-MON' has range 'FRI-MON' that ends before it starts"),
    case("cron-question-mark-in-hours", at("environments.prod.training.retraining_schedule", "cron(0 ? ? * SUN *)"),
         "environment 'prod': field 'training.retraining_schedule': 'cron(0 ? ? * SUN *)': hours '?' "
         "cannot be '?' (only day-of-month or day-of-week can)"),
    case("cron-sixth-occurrence", at("environments.prod.training.retraining_schedule", "cron(0 4 ? * SUN#6 *)"),
         "environment 'prod': field 'training.retraining_schedule': 'cron(0 4 ? * SUN#6 *)': "
         "day-of-week 'SUN#6' uses 'SUN#6'; '#' takes a weekday and an occurrence 1-5, e.g. '2#1'"),
    case("cron-lw-in-day-of-week", at("environments.prod.training.retraining_schedule", "cron(0 4 ? * LW *)"),
         "environment 'prod': field 'training.retraining_schedule': 'cron(0 4 ? * LW *)': "
         "day-of-week 'LW' is not valid: 'LW' is not a value; allowed: 1-7 or SUN-SAT, '*', ranges, "
         "'?', 'nL' and 'n#k'"),
    case("cron-nl-in-day-of-month", at("environments.prod.training.retraining_schedule", "cron(0 4 5L * ? *)"),
         "environment 'prod': field 'training.retraining_schedule': 'cron(0 4 5L * ? *)': "
         "day-of-month '5L' is not valid: '5L' is not a value; allowed: 1-31, '*', ranges, steps, '?', "
         "'L', 'LW' and 'nW'"),
    case("cron-step-in-day-of-week", at("environments.prod.training.retraining_schedule", "cron(0 4 ? * 1/2 *)"),
         "environment 'prod': field 'training.retraining_schedule': 'cron(0 4 ? * 1/2 *)': "
         "day-of-week '1/2' has the step '1/2'; day-of-week takes no steps, list the days instead, e.g. "
         "'MON,WED,FRI'"),
    case("cron-hash-in-a-list", at("environments.prod.training.retraining_schedule", "cron(0 4 ? * 3#1,6#3 *)"),
         "environment 'prod': field 'training.retraining_schedule': 'cron(0 4 ? * 3#1,6#3 *)': "
         "day-of-week '3#1,6#3' uses '#' in a list; with '#' the day-of-week field is one "
         "expression, e.g. '2#1'"),
    case("cron-zero-weekday", at("environments.prod.training.retraining_schedule", "cron(0 4 ? * 0 *)"),
         "environment 'prod': field 'training.retraining_schedule': 'cron(0 4 ? * 0 *)': day-of-week "
         "'0' is out of range: 0 is not within 1-7 or SUN-SAT"),
    case("rate-plural-for-one", at("environments.prod.training.retraining_schedule", "rate(1 days)"),
         "environment 'prod': field 'training.retraining_schedule': 'rate(1 days)': with the value 1 the unit "
         "must be 'day' (singular for 1, plural otherwise): 'rate(1 day)'"),
    case("rate-singular-for-many", at("environments.prod.training.retraining_schedule", "rate(7 day)"),
         "environment 'prod': field 'training.retraining_schedule': 'rate(7 day)': with the value 7 the unit "
         "must be 'days' (singular for 1, plural otherwise): 'rate(7 days)'"),
    case("rate-week-unit", at("environments.prod.training.retraining_schedule", "rate(1 week)"),
         "environment 'prod': field 'training.retraining_schedule': 'rate(1 week)': the unit 'week' is not one "
         "of minute(s), hour(s), day(s); use rate(value unit) with a whole value and minute(s), hour(s) or "
         "day(s), e.g. 'rate(6 hours)'"),
    case("monitoring-every-six-hours", at("environments.prod.monitoring.schedule", "rate(6 hours)"),
         "environment 'prod': field 'monitoring.schedule': 'rate(6 hours)' does not run once a day; the drift "
         "monitor judges the last 24 hours per run and its thresholds and alarms count one run a day; use a daily "
         "cron such as 'cron(0 3 * * ? *)' or 'rate(1 day)'"),
    case("rate-zero", at("environments.prod.monitoring.schedule", "rate(0 hours)"),
         "environment 'prod': field 'monitoring.schedule': 'rate(0 hours)': the value '0' must be a whole "
         "number of at least 1; use rate(value unit) with a whole value and minute(s), hour(s) or day(s), "
         "e.g. 'rate(6 hours)'"),
    case("rate-fraction", at("environments.prod.training.retraining_schedule", "rate(1.5 hours)"),
         "environment 'prod': field 'training.retraining_schedule': 'rate(1.5 hours)': the value '1.5' must "
         "be a whole number of at least 1; use rate(value unit) with a whole value and minute(s), hour(s) or "
         "day(s), e.g. 'rate(6 hours)'"),
    case("rate-no-unit", at("environments.prod.training.retraining_schedule", "rate(5)"),
         "environment 'prod': field 'training.retraining_schedule': 'rate(5)' is not a rate expression; use "
         "rate(value unit) with a whole value and minute(s), hour(s) or day(s), e.g. 'rate(6 hours)'"),
    case("schedule-plain-words", at("environments.prod.training.retraining_schedule", "weekly"),
         "environment 'prod': field 'training.retraining_schedule': 'weekly' is not a cron "
         "expression; use cron(Minutes Hours Day-of-month Month Day-of-week Year), e.g. 'cron(0 2 * "
         "* ? *)'"),
    # --- gate ---
    case("gate-min-auc-below-chance", at("defaults.gate.min_auc", 0.4),
         "defaults: field 'gate.min_auc': Input should be greater than or equal to 0.5 (got 0.4)"),
    case("gate-min-auc-above-one", at("defaults.gate.min_auc", 1.5),
         "defaults: field 'gate.min_auc': Input should be less than or equal to 1 (got 1.5)"),
    case("gate-min-auc-boolean", at("defaults.gate.min_auc", True),
         "defaults: field 'gate.min_auc': must be a number, not the boolean true"),
    case("gate-min-auc-string", at("defaults.gate.min_auc", "0.7"),
         "defaults: field 'gate.min_auc': must be a number, not the string '0.7'; write it without "
         "quotes"),
    case("gate-min-auc-null", at("defaults.gate.min_auc", None),
         "defaults: field 'gate.min_auc': Input should be a valid number (got None)"),
    case("gate-margin-negative", at("defaults.gate.challenger_margin", -0.01),
         "defaults: field 'gate.challenger_margin': Input should be greater than or equal to 0 (got "
         "-0.01)"),
    case("gate-margin-too-large", at("defaults.gate.challenger_margin", 0.6),
         "defaults: field 'gate.challenger_margin': Input should be less than or equal to 0.5 (got "
         "0.6)"),
    case("gate-calibration-above-one", at("defaults.gate.max_calibration_error", 1.5),
         "defaults: field 'gate.max_calibration_error': Input should be less than or equal to 1 (got 1.5)"),
    case("gate-calibration-zero", at("environments.prod.gate", {"max_calibration_error": 0}),
         "environment 'prod': field 'gate.max_calibration_error': Input should be greater than 0 (got 0)"),
    case("gate-slice-regression-above-one", at("defaults.gate.max_slice_regression", 2),
         "defaults: field 'gate.max_slice_regression': Input should be less than or equal to 1 (got "
         "2)"),
    case("gate-parity-negative", at("defaults.gate.max_demographic_parity_difference", -0.1),
         "defaults: field 'gate.max_demographic_parity_difference': Input should be greater than or "
         "equal to 0 (got -0.1)"),
    case("gate-disparate-impact-above-one", at("defaults.gate.min_disparate_impact", 1.2),
         "defaults: field 'gate.min_disparate_impact': Input should be less than or equal to 1 (got "
         "1.2)"),
    case("gate-slice-positives-zero", at("environments.prod.gate", {"min_slice_positives": 0}),
         "environment 'prod': field 'gate.min_slice_positives': Input should be greater than or "
         "equal to 1 (got 0)"),
    case("gate-slice-positives-fraction", at("environments.prod.gate", {"min_slice_positives": 10.5}),
         "environment 'prod': field 'gate.min_slice_positives': Input should be a valid integer, got "
         "a number with a fractional part (got 10.5)"),
    case("gate-predicted-positives-negative", at("environments.prod.gate", {"min_predicted_positives": -1}),
         "environment 'prod': field 'gate.min_predicted_positives': Input should be greater than or "
         "equal to 0 (got -1)"),
    case("gate-unknown-key", at("defaults.gate.min_acu", 0.7),
         "defaults: field 'gate.min_acu': unknown field; check the spelling against the documented "
         "fields (docs/configuration.md: Configuration)"),
    # --- monitoring ---
    case("psi-zero", at("defaults.monitoring.psi_threshold", 0),
         "defaults: field 'monitoring.psi_threshold': Input should be greater than 0 (got 0)"),
    case("psi-too-large", at("defaults.monitoring.psi_threshold", 11),
         "defaults: field 'monitoring.psi_threshold': Input should be less than or equal to 10 (got "
         "11)"),
    case("psi-boolean", at("defaults.monitoring.psi_threshold", True),
         "defaults: field 'monitoring.psi_threshold': must be a number, not the boolean true"),
    case("psi-string", at("defaults.monitoring.psi_threshold", "0.2"),
         "defaults: field 'monitoring.psi_threshold': must be a number, not the string '0.2'; write "
         "it without quotes"),
    case("auc-drop-too-large", at("environments.prod.monitoring", {"max_auc_drop": 0.6}),
         "environment 'prod': field 'monitoring.max_auc_drop': Input should be less than or equal to "
         "0.5 (got 0.6)"),
    case("quality-drop-above-one", at("environments.prod.monitoring", {"max_quality_drop": 1.5}),
         "environment 'prod': field 'monitoring.max_quality_drop': Input should be less than or "
         "equal to 1 (got 1.5)"),
    case("ks-p-value-one", at("environments.prod.monitoring", {"ks_p_value": 1.0}),
         "environment 'prod': field 'monitoring.ks_p_value': Input should be less than 1 (got 1.0)"),
    case("cooldown-negative", at("defaults.monitoring.retraining_cooldown_hours", -1),
         "defaults: field 'monitoring.retraining_cooldown_hours': -1 turns the cooldown off: every hourly sweep would "
         "start a retrain while a drift alarm stays in ALARM; use at least 1 (hours), e.g. 24 (the default: the drift "
         "monitor judges once a day)"),
    case("cooldown-zero", at("environments.prod.monitoring", {"retraining_cooldown_hours": 0}),
         "environment 'prod': field 'monitoring.retraining_cooldown_hours': 0 turns the cooldown off: every hourly "
         "sweep would start a retrain while a drift alarm stays in ALARM; use at least 1 (hours), e.g. 24 (the "
         "default: the drift monitor judges once a day)"),
    case("max-starts-zero", at("environments.prod.monitoring", {"retraining_max_starts_per_day": 0}),
         "environment 'prod': field 'monitoring.retraining_max_starts_per_day': Input should be greater than or "
         "equal to 1 (got 0)"),
    case("max-starts-hourly", at("environments.prod.monitoring", {"retraining_max_starts_per_day": 24}),
         "environment 'prod': field 'monitoring.retraining_max_starts_per_day': Input should be less than or "
         "equal to 6 (got 24)"),
    case("breaker-zero", at("environments.prod.monitoring", {"retraining_failures_before_pause": 0}),
         "environment 'prod': field 'monitoring.retraining_failures_before_pause': Input should be greater than or "
         "equal to 1 (got 0)"),
    case("cooldown-above-30-days", at("defaults.monitoring.retraining_cooldown_hours", 721),
         "defaults: field 'monitoring.retraining_cooldown_hours': Input should be less than or equal "
         "to 720 (got 721)"),
    case("monitoring-schedule-hour-24", at("environments.prod.monitoring", {"schedule": "cron(0 24 * * ? *)"}),
         "environment 'prod': field 'monitoring.schedule': 'cron(0 24 * * ? *)': hours '24' is out "
         "of range: 24 is not within 0-23"),
    # --- datasets ---
    case("feature-unknown-column", at("datasets.customer_churn.features.tenure_months", "tenure_month"),
         "dataset 'customer_churn': field 'features.tenure_months.expr': reads unknown column "
         f"'tenure_month'; allowed: {CHURN_COLUMNS}"),
    case("feature-unknown-operator", at("datasets.customer_churn.features.tenure_months", "sqrt(tenure_months)"),
         "dataset 'customer_churn': field 'features.tenure_months.expr': unknown operator 'sqrt'; "
         "allowed: col, ratio, log1p, clip, coalesce, bucket, product, days_since"),
    case("feature-type-mismatch", at("datasets.customer_churn.features.tenure_months", "log1p(contract_type)"),
         "dataset 'customer_churn': field 'features.tenure_months.expr': log1p needs numbers but "
         "contract_type is text"),
    case("feature-clip-bounds-backwards",
         at("datasets.credit_risk.features.num_open_accounts", "clip(num_open_accounts, 50, 0)"),
         "dataset 'credit_risk': field 'features.num_open_accounts.expr': clip needs lo <= hi, got "
         "[50.0, 0.0]"),
    case("feature-bucket-labels-count",
         at("datasets.credit_risk.features.age_group", 'bucket(applicant_age, [25, 40, 60], ["young", "old"])'),
         "dataset 'credit_risk': field 'features.age_group.expr': bucket: need exactly one more "
         "label than edges"),
    case("feature-is-the-label", at("datasets.customer_churn.features.churned", "churned"),
         "dataset 'customer_churn': field 'features.churned': has the name of a label (target "
         "leakage); rename the feature"),
    case("feature-name-upper-case", at("datasets.customer_churn.features.Region", "region"),
         "dataset 'customer_churn': field 'features.Region': names must be lower-case letters, "
         "digits and '_' (at most 64), starting with a letter, and not one of the Feature Store's "
         "reserved names is_deleted, write_time, api_invocation_time; write 'region'"),
    case("allowed-not-normal-form",
         at("datasets.customer_churn.columns.region.allowed", ["North", "south", "east", "west"]),
         "dataset 'customer_churn': field 'columns.region.allowed': ['North'] are not in normal "
         "form; values are trimmed and lower-cased before they are checked, so write ['north']"),
    case("column-type-unknown", at("datasets.customer_churn.columns.tenure_months.type", "int"),
         "dataset 'customer_churn': field 'columns.tenure_months.type': 'int' is not a column type; "
         "allowed: string, integer, double, timestamp, boolean, date"),
    case("column-min-above-max", at("datasets.customer_churn.columns.tenure_months.min", 700),
         "dataset 'customer_churn': field 'columns.tenure_months.min': 700.0 is above max 600.0"),
    case("label-unknown-column", at("datasets.customer_churn.labels", ["churn"]),
         "dataset 'customer_churn': field 'labels': 'churn' is not a declared column; allowed: "
         f"{CHURN_COLUMNS}"),
    case("record-identifier-unknown", at("datasets.customer_churn.record_identifier", "customer"),
         "dataset 'customer_churn': field 'record_identifier': 'customer' must name a declared "
         f"column; allowed: {CHURN_COLUMNS}"),
    case("event-time-not-timestamp", at("datasets.customer_churn.event_time", "tenure_months"),
         "dataset 'customer_churn': field 'event_time': column 'tenure_months' must have type "
         "timestamp"),
    # --- models ---
    case("model-dataset-unknown", at("models.churn.dataset", "customers"),
         "model 'churn': field 'dataset': unknown dataset 'customers'; allowed: credit_risk, "
         "customer_churn — declare it under 'datasets'"),
    case("model-target-not-a-label", at("models.churn.target", "tenure_months"),
         "model 'churn': field 'target': 'tenure_months' is not a label of dataset 'customer_churn'; "
         "allowed: churned"),
    case("model-regression-on-string-target", regression_on_a_string_label,
         "model 'churn': field 'target': column 'churned' is string; a regression target is an "
         "integer or double column"),
    case("model-multiclass-with-two-classes", at("models.churn.problem_type", "multiclass_classification"),
         "model 'churn': field 'target': column 'churned' has 2 classes; a multiclass target has at "
         "least 3 (two classes: declare problem_type: binary_classification with a boolean or 0/1 "
         "target)"),
    case("model-problem-type-unknown", at("models.churn.problem_type", "classification"),
         "model 'churn': field 'problem_type': Input should be 'binary_classification', "
         "'multiclass_classification' or 'regression' (got 'classification')"),
    case("model-primary-metric-of-regression", at("models.churn.primary_metric", "rmse"),
         "model 'churn': field 'primary_metric': 'rmse' is not a metric of a binary_classification "
         "model; allowed: auc, pr_auc, log_loss, f1"),
    case("model-decision-on-regression",
         update("models.churn", problem_type="regression", decision={"policy": "fixed", "threshold": 0.4}),
         "model 'churn': field 'decision': applies to binary_classification models only (this one is "
         "regression); remove it"),
    case("model-class-weight-on-regression",
         update("models.churn", problem_type="regression", class_weight="balanced"),
         "model 'churn': field 'class_weight': applies to binary_classification models only (this "
         "one is regression); remove it"),
    case("model-decision-policy-unknown", at("models.churn.decision", {"policy": "optimal"}),
         "model 'churn': field 'decision.policy': 'optimal' is not a policy; allowed: fixed, "
         "max_f_beta, target_recall, target_precision, min_expected_cost"),
    case("model-decision-threshold-above-one", at("models.churn.decision", {"policy": "fixed", "threshold": 1.5}),
         "model 'churn': field 'decision.threshold': must be in (0, 1), got 1.5"),
    case("model-gate-min-auc-below-chance", at("models.churn.gate", {"min_auc": 0.3}),
         "model 'churn': field 'gate.min_auc': Input should be greater than or equal to 0.5 (got 0.3)"),
    case("model-gate-unknown-key", at("models.churn.gate", {"min_acu": 0.8}),
         "model 'churn': field 'gate.min_acu': unknown field; check the spelling against the "
         "documented fields (docs/configuration.md: Configuration)"),
    case("model-feature-unknown", at("models.churn.features", ["tenure_months", "tenure"]),
         "model 'churn': field 'features': ['tenure'] are not defined for dataset 'customer_churn'; "
         "allowed: tenure_months, monthly_charges, total_charges, avg_charge_per_month, "
         "log_support_calls_90d, contract_type, payment_method, region, gender"),
    case("model-feature-twice", at("models.churn.features", ["tenure_months", "tenure_months"]),
         "model 'churn': field 'features': lists a feature twice"),
    case("model-features-empty", at("models.churn.features", []),
         "model 'churn': field 'features': must list at least one feature; add one"),
    case("model-sensitive-not-categorical", at("models.churn.sensitive_attribute", "tenure_months"),
         "model 'churn': field 'sensitive_attribute': 'tenure_months' must be a categorical (String) "
         "feature"),
    case("model-sensitive-is-a-feature", at("models.churn.sensitive_attribute", "region"),
         "model 'churn': field 'sensitive_attribute': 'region' must not be a model input; remove it "
         "from features (it is used for fairness slices only)"),
    case("model-slice-not-categorical", at("models.churn.slices", ["tenure_months"]),
         "model 'churn': field 'slices': ['tenure_months'] must be categorical features of dataset "
         "'customer_churn'; allowed: contract_type, payment_method, region, gender"),
    case("model-name-upper-case", rename("models.churn", "Churn"),
         "model 'Churn': field 'name': must be 2-20 characters of lowercase letters, digits and '-', "
         "starting with a letter",
         "environment 'dev': field 'models': unknown model(s) ['churn']; allowed: Churn, credit-risk",
         "environment 'staging': field 'models': unknown model(s) ['churn']; allowed: Churn, "
         "credit-risk",
         "environment 'prod': field 'models': unknown model(s) ['churn']; allowed: Churn, credit-risk"),
    case("model-class-weight-unknown", at("models.churn.class_weight", "auto"),
         "model 'churn': field 'class_weight': Input should be 'none' or 'balanced' (got 'auto')"),
    case("model-framework-unknown", at("models.churn.framework", "tensorflow"),
         "model 'churn': field 'framework': Input should be 'xgboost' or 'pytorch' (got 'tensorflow')"),
    case("model-label-delay-negative", at("models.churn.label_delay_days", -1),
         "model 'churn': field 'label_delay_days': Input should be greater than or equal to 0 (got -1)"),
    case("model-label-delay-past-records-retention",
         lambda raw: (at("models.churn.label_delay_days", 60)(raw),
                      at("environments.prod.data_lake.inference_records_expiration_days", 60)(raw)),
         "environment 'prod': field 'data_lake.inference_records_expiration_days': 60 expires the drift monitor's "
         "prediction records before the labels of model 'churn' arrive (label_delay_days 60 + the 7-day label window + "
         "a day: 68 days); keep them at least 68 days (or null: never), or lower models.churn.label_delay_days"),
    case("drift-window-too-long", at("defaults.monitoring.drift_window_days", 15),
         "defaults: field 'monitoring.drift_window_days': 15 is not a drift window the daily monitor can judge: give 1 "
         "to 14 (days of capture each run compares with the training baseline; 7 for a weekly rhythm, 1 for the last 24 "
         "hours)"),
    case("model-drift-window-zero", at("models.churn.drift_window_days", 0),
         "model 'churn': field 'drift_window_days': 0 is not a drift window the daily monitor can judge: give 1 to 14 "
         "(days of capture each run compares with the training baseline; 7 for a weekly rhythm, 1 for the last 24 "
         "hours)"),
    # models.<name>.monitoring (a seasonal model's drift judgement): names checked against what the monitor judges.
    case("monitoring-threshold-feature-misspelt", at("models.churn.monitoring", {"feature_thresholds": {"tenure_month": 0.3}}),
         "model 'churn': field 'monitoring.feature_thresholds': 'tenure_month' is not a feature of this model; did you "
         "mean 'tenure_months'? the drift monitor judges its features, sensitive attribute and slices: "
         f"{CHURN_JUDGED}"),
    case("monitoring-exempt-feature-unknown", at("models.churn.monitoring", {"drift_exempt_features": ["week_of_year"]}),
         "model 'churn': field 'monitoring.drift_exempt_features': 'week_of_year' is not a feature of this model; the "
         f"drift monitor judges its features, sensitive attribute and slices: {CHURN_JUDGED}"),
    case("monitoring-threshold-zero", at("models.churn.monitoring", {"feature_thresholds": {"tenure_months": 0}}),
         f"model 'churn': field 'monitoring.feature_thresholds.tenure_months': 0 {NOT_A_PSI_THRESHOLD}"),
    case("monitoring-threshold-too-large", at("models.churn.monitoring", {"feature_thresholds": {"tenure_months": 12}}),
         f"model 'churn': field 'monitoring.feature_thresholds.tenure_months': 12 {NOT_A_PSI_THRESHOLD}"),
    case("monitoring-threshold-boolean", at("models.churn.monitoring", {"feature_thresholds": {"tenure_months": True}}),
         "model 'churn': field 'monitoring.feature_thresholds.tenure_months': must be a number, not the boolean true"),
    case("monitoring-threshold-quoted", at("models.churn.monitoring", {"feature_thresholds": {"tenure_months": "0.3"}}),
         "model 'churn': field 'monitoring.feature_thresholds.tenure_months': must be a number, not the string '0.3'; "
         "write it without quotes"),
    case("monitoring-exempt-and-threshold",
         at("models.churn.monitoring", {"feature_thresholds": {"region": 0.3}, "drift_exempt_features": ["region"]}),
         "model 'churn': field 'monitoring.feature_thresholds': 'region' is exempt from drift (drift_exempt_features), "
         "so no threshold applies to it; remove one of the two"),
    case("monitoring-exempt-twice", at("models.churn.monitoring", {"drift_exempt_features": ["region", "region"]}),
         "model 'churn': field 'monitoring.drift_exempt_features': lists 'region' more than once"),
    case("monitoring-exempt-everything",
         at("models.churn.monitoring", {"drift_exempt_features": CHURN_JUDGED.split(", ")}),
         "model 'churn': field 'monitoring.drift_exempt_features': exempts every feature, so data drift could never "
         "start a retrain; exempt only the features that drift by construction (a calendar feature)"),
    case("monitoring-prediction-drift-off", at("models.churn.monitoring", {"prediction_drift": "off"}),
         "model 'churn': field 'monitoring.prediction_drift': Input should be 'alarm' or 'report_only' (got 'off')"),
    case("model-monitor-window-zero", at("models.churn.monitor_max_window_gib", 0),
         "model 'churn': field 'monitor_max_window_gib': Input should be greater than 0 (got 0)"),
    case("model-monitor-window-past-the-volume-limit", at("models.churn.monitor_max_window_gib", 4000),
         "model 'churn': field 'monitor_max_window_gib': 4000 GiB would need a 21485 GB volume for the drift monitor's "
         "job (5 downloads at the cap + 10 GB), over SageMaker's 16384 GB processing volume limit; set at most 3049"),
    case("model-min-daily-requests-negative", at("models.churn.min_daily_requests", -1),
         "model 'churn': field 'min_daily_requests': Input should be greater than or equal to 0 (got "
         "-1)"),
    case("model-min-quality-nan", at("models.churn.min_quality", float("nan")),
         "model 'churn': field 'min_quality': Input should be a finite number (got nan)"),
    case("model-unknown-field", at("models.churn.targte", "churned"),
         "model 'churn': field 'targte': unknown field; check the spelling against the documented "
         "fields (docs/configuration.md: Configuration)"),
    case("model-target-missing", drop("models.churn.target"),
         "model 'churn': field 'target': required field is missing"),
    # --- serving ---
    case("serving-mode-unknown", at("models.churn.serving.mode", "streaming"),
         "model 'churn': field 'serving.mode': Input should be 'realtime', 'serverless', 'async', "
         "'batch' or 'multi_model' (got 'streaming')"),
    case("serverless-memory-not-a-1024-step", at("models.credit-risk.serving.serverless.memory_mb", 1500),
         "model 'credit-risk': field 'serving.serverless.memory_mb': Input should be 1024, 2048, "
         "3072, 4096, 5120 or 6144 (got 1500)"),
    case("serverless-memory-below-1024", at("models.credit-risk.serving.serverless.memory_mb", 512),
         "model 'credit-risk': field 'serving.serverless.memory_mb': Input should be 1024, 2048, "
         "3072, 4096, 5120 or 6144 (got 512)"),
    case("serverless-memory-above-6144", at("models.credit-risk.serving.serverless.memory_mb", 7168),
         "model 'credit-risk': field 'serving.serverless.memory_mb': Input should be 1024, 2048, "
         "3072, 4096, 5120 or 6144 (got 7168)"),
    case("serverless-memory-string", at("models.credit-risk.serving.serverless.memory_mb", "2048"),
         "model 'credit-risk': field 'serving.serverless.memory_mb': must be a number, not the "
         "string '2048'; write it without quotes"),
    case("serverless-concurrency-zero", at("models.credit-risk.serving.serverless.max_concurrency", 0),
         "model 'credit-risk': field 'serving.serverless.max_concurrency': Input should be greater "
         "than or equal to 1 (got 0)"),
    case("serverless-concurrency-above-200", at("models.credit-risk.serving.serverless.max_concurrency", 201),
         "model 'credit-risk': field 'serving.serverless.max_concurrency': Input should be less than "
         "or equal to 200 (got 201)"),
    case("serverless-provisioned-above-max",
         at("environments.prod.serving.credit-risk.serverless.provisioned_concurrency", 20),
         "environment 'prod': field 'serving.credit-risk.serverless.provisioned_concurrency': 20 "
         "exceeds max_concurrency 10; allowed: 1-10"),
    case("serverless-canary", at("models.credit-risk.serving.serverless.rollout", {"strategy": "canary"}),
         "model 'credit-risk': field 'serving.serverless.rollout.strategy': 'canary' shifts traffic "
         "in instance steps, which a serverless endpoint does not have; allowed: 'all_at_once'"),
    case("realtime-instance-unknown", at("models.churn.serving.realtime.instance_type", "ml.m5.small"),
         "model 'churn': field 'serving.realtime.instance_type': unknown instance type "
         f"'ml.m5.small'; allowed: {INSTANCE_TYPES}{TABLE_FIX}"),
    case("realtime-on-inferentia", at("models.churn.serving.realtime.instance_type", "ml.inf2.xlarge"),
         "model 'churn': field 'serving.realtime.instance_type': ml.inf2.xlarge is an Inferentia2 "
         "instance, which serving with framework 'xgboost' cannot use (Inferentia2 runs only "
         "Neuron-compiled models from a Neuron image; the XGBoost image has no Neuron support); "
         "allowed accelerators for serving: none — pick e.g. ml.m5.large or ml.c5.xlarge"),
    case("realtime-on-t3-not-an-endpoint-type", at("models.churn.serving.realtime.instance_type", "ml.t3.medium"),
         "model 'churn': field 'serving.realtime.instance_type': ml.t3.medium cannot run SageMaker "
         "endpoints; allowed: ml.c5.2xlarge, ml.c5.xlarge, ml.c6i.xlarge, ml.m5.2xlarge, "
         "ml.m5.4xlarge, ml.m5.large, ml.m5.xlarge, ml.m5d.xlarge, ml.m6i.2xlarge, ml.m6i.large, "
         "ml.m6i.xlarge, ml.r5.2xlarge, ml.r5.xlarge (CPU, any framework); ml.inf2.8xlarge, "
         "ml.inf2.xlarge (Inferentia2, framework 'pytorch' only)"),
    case("env-realtime-on-inferentia", at("environments.prod.serving.churn.realtime.instance_type", "ml.inf2.xlarge"),
         "environment 'prod': field 'serving.churn.realtime.instance_type': ml.inf2.xlarge is an "
         "Inferentia2 instance, which serving with framework 'xgboost' cannot use (Inferentia2 runs "
         "only Neuron-compiled models from a Neuron image; the XGBoost image has no Neuron support); "
         "allowed accelerators for serving: none — pick e.g. ml.m5.large or ml.c5.xlarge"),
    case("autoscaling-min-above-max",
         at("environments.prod.serving.churn.realtime.autoscaling", {"min_instances": 6, "max_instances": 2}),
         "environment 'prod': field 'serving.churn.realtime.autoscaling.max_instances': 2 is below "
         "min_instances 6; allowed: min_instances <= max_instances"),
    case("autoscaling-min-zero", at("models.churn.serving.realtime.autoscaling.min_instances", 0),
         "model 'churn': field 'serving.realtime.autoscaling.min_instances': Input should be greater "
         "than or equal to 1 (got 0)"),
    case("instance-count-outside-autoscaling", at("environments.prod.serving.churn.realtime.instance_count", 8),
         "environment 'prod': field 'serving.churn.realtime.instance_count': 8 is outside "
         "autoscaling 2-6; allowed: autoscaling.min_instances <= instance_count <= "
         "autoscaling.max_instances"),
    case("canary-percent-zero", at("models.churn.serving.realtime.rollout.canary_percent", 0),
         "model 'churn': field 'serving.realtime.rollout.canary_percent': Input should be greater "
         "than or equal to 1 (got 0)"),
    case("canary-percent-above-50", at("models.churn.serving.realtime.rollout.canary_percent", 60),
         "model 'churn': field 'serving.realtime.rollout.canary_percent': Input should be less than "
         "or equal to 50 (got 60)"),
    case("canary-percent-string", at("models.churn.serving.realtime.rollout.canary_percent", "10"),
         "model 'churn': field 'serving.realtime.rollout.canary_percent': must be a number, not the "
         "string '10'; write it without quotes"),
    case("rollout-strategy-unknown", at("models.churn.serving.realtime.rollout.strategy", "blue_green"),
         "model 'churn': field 'serving.realtime.rollout.strategy': Input should be 'all_at_once', "
         "'canary' or 'linear' (got 'blue_green')"),
    case("rollout-wait-too-long", at("models.churn.serving.realtime.rollout.wait_minutes", 61),
         "model 'churn': field 'serving.realtime.rollout.wait_minutes': Input should be less than or "
         "equal to 60 (got 61)"),
    case("async-max-instances-zero", serve("async", max_instances=0),
         "model 'churn': field 'serving.async.max_instances': Input should be greater than or equal "
         "to 1 (got 0)"),
    case("async-backlog-zero", serve("async", target_backlog_per_instance=0),
         "model 'churn': field 'serving.async.target_backlog_per_instance': Input should be greater "
         "than 0 (got 0)"),
    case("async-invocations-above-1000", serve("async", max_concurrent_invocations_per_instance=1001),
         "model 'churn': field 'serving.async.max_concurrent_invocations_per_instance': Input should "
         "be less than or equal to 1000 (got 1001)"),
    case("async-on-t3-not-an-endpoint-type", serve("async", instance_type="ml.t3.large"),
         "model 'churn': field 'serving.async.instance_type': ml.t3.large cannot run SageMaker "
         "endpoints; allowed: ml.c5.2xlarge, ml.c5.xlarge, ml.c6i.xlarge, ml.m5.2xlarge, "
         "ml.m5.4xlarge, ml.m5.large, ml.m5.xlarge, ml.m5d.xlarge, ml.m6i.2xlarge, ml.m6i.large, "
         "ml.m6i.xlarge, ml.r5.2xlarge, ml.r5.xlarge (CPU, any framework); ml.inf2.8xlarge, "
         "ml.inf2.xlarge (Inferentia2, framework 'pytorch' only)"),
    case("async-on-trainium", serve("async", instance_type="ml.trn1.2xlarge"),
         "model 'churn': field 'serving.async.instance_type': ml.trn1.2xlarge is a Trainium "
         "instance, which serving with framework 'xgboost' cannot use (Trainium runs only Neuron SDK "
         "training code; the XGBoost image has no Neuron support); allowed accelerators for serving: "
         "none — pick e.g. ml.m5.large or ml.c5.xlarge"),
    case("batch-schedule-bad", serve("batch", schedule="cron(0 1 * * * *)"),
         "model 'churn': field 'serving.batch.schedule': 'cron(0 1 * * * *)': exactly one of "
         "day-of-month and day-of-week must be '?'"),
    case("batch-schedule-every-minute", serve("batch", schedule="rate(1 minute)"),
         "model 'churn': field 'serving.batch.schedule': 'rate(1 minute)' runs more than once an hour; each batch "
         "transform run scores every file under input/ and a run starts even while the previous one runs; use one "
         "minute of the hour, e.g. 'cron(0 1 * * ? *)', or a rate of at least an hour, e.g. 'rate(6 hours)'"),
    case("batch-schedule-cron-every-15-minutes", serve("batch", schedule="cron(0/15 1 * * ? *)"),
         "model 'churn': field 'serving.batch.schedule': 'cron(0/15 1 * * ? *)' runs more than once an hour (minutes "
         "'0/15'); each batch transform run scores every file under input/ and a run starts even while the previous "
         "one runs; use one minute of the hour, e.g. 'cron(0 1 * * ? *)', or a rate of at least an hour, e.g. "
         "'rate(6 hours)'"),
    case("batch-on-r5-not-a-transform-type", serve("batch", instance_type="ml.r5.xlarge"),
         "model 'churn': field 'serving.batch.instance_type': ml.r5.xlarge cannot run SageMaker "
         "batch transform; allowed: ml.c5.2xlarge, ml.c5.xlarge, ml.c6i.xlarge, ml.m5.2xlarge, "
         "ml.m5.4xlarge, ml.m5.large, ml.m5.xlarge, ml.m6i.2xlarge, ml.m6i.large, ml.m6i.xlarge (CPU, "
         "any framework); ml.inf2.8xlarge, ml.inf2.xlarge (Inferentia2, framework 'pytorch' only)"),
    case("batch-content-type", serve("batch", content_type="application/json"),
         "model 'churn': field 'serving.batch.content_type': Input should be 'application/jsonlines' "
         "or 'text/csv' (got 'application/json')"),
    case("batch-payload-above-100", serve("batch", max_payload_mb=101),
         "model 'churn': field 'serving.batch.max_payload_mb': Input should be less than or equal to "
         "100 (got 101)"),
    case("batch-timeout-is-no-setting", serve("batch", timeout_minutes=240),
         "model 'churn': field 'serving.batch.timeout_minutes': unknown field; check the spelling against "
         "the documented fields (docs/configuration.md: Configuration)"),
    case("batch-payload-times-concurrency", serve("batch", max_payload_mb=10, max_concurrent_transforms=20),
         "model 'churn': field 'serving.batch.max_concurrent_transforms': 20 x max_payload_mb 10 is "
         "200 MB; SageMaker allows at most 100 MB per instance; allowed: 0-10 at max_payload_mb 10 "
         "(0 lets SageMaker choose)"),
    case("batch-instance-count-zero", serve("batch", instance_count=0),
         "model 'churn': field 'serving.batch.instance_count': Input should be greater than or equal "
         "to 1 (got 0)"),
    case("data-capture-above-100", at("models.churn.serving.data_capture_percent", 101),
         "model 'churn': field 'serving.data_capture_percent': Input should be less than or equal to "
         "100 (got 101)"),
    # A model that normally answers in minutes (async: up to an hour) whose latency alarm was raised, but not its
    # rollout's: every new version would roll back whenever it served during its rollout's bake. (Its inference time
    # declared: without it, the alarm above the container's 60 s is refused first, tests/infra/test_inference_timeout.py.)
    case("async-rollout-latency-left-below-its-alarm",
         at("models.churn.serving", {"mode": "async", "inference_timeout_seconds": 300,
                                     "alarms": {"max_latency_p99_ms": 180000}}),
         "model 'churn': field 'serving.async.rollout.max_latency_p99_ms': 1000 ms (the default) is below "
         "alarms.max_latency_p99_ms 180000 ms, so a new version as slow as the endpoint is allowed to be rolls back "
         "whenever it serves during its rollout; set it to at least 180000 (at most 300000: inference_timeout_seconds "
         "300 s)"),
    case("rollout-latency-above-an-hour", at("models.churn.serving.realtime.rollout.max_latency_p99_ms", 3_600_001),
         "model 'churn': field 'serving.realtime.rollout.max_latency_p99_ms': Input should be less than or equal "
         "to 3600000 (got 3600001)"),
    case("low-traffic-alarm-on-async", at("models.churn.serving", {"mode": "async", "alarms": {"min_invocations_per_hour": 10}}),
         "model 'churn': field 'serving.alarms.min_invocations_per_hour': async endpoints publish no Invocations "
         "metric, so a low-traffic alarm could never fire; remove it here (alarms.max_async_backlog watches an "
         "async endpoint's queue)"),
    case("overhead-latency-alarm-on-async",
         at("models.churn.serving", {"mode": "async", "alarms": {"max_overhead_latency_p99_ms": 200}}),
         "model 'churn': field 'serving.alarms.max_overhead_latency_p99_ms': async endpoints publish no "
         "OverheadLatency metric, so the alarm could never fire; remove it here (alarms.max_async_backlog watches an "
         "async endpoint's queue)"),
    case("native-monitor-on-serverless", at("models.credit-risk.serving.native_model_monitor", True),
         "model 'credit-risk': field 'serving.native_model_monitor': needs SageMaker data capture, "
         "i.e. mode 'realtime' or 'async' with data_capture_percent > 0 (got mode 'serverless', "
         "100%); allowed: false here"),
    case("multi-model-endpoint-undeclared", at("models.churn.serving.mode", "multi_model"),
         "environment 'staging': field 'serving.churn.multi_model.endpoint': 'shared' is not a "
         "multi-model endpoint of this environment; allowed: (none) — declare it under "
         "'multi_model_endpoints' in the environment or in 'defaults'",
         "environment 'prod': field 'serving.churn.multi_model.endpoint': 'shared' is not a "
         "multi-model endpoint of this environment; allowed: (none) — declare it under "
         "'multi_model_endpoints' in the environment or in 'defaults'"),
    case("env-serving-for-undeployed-model", at("environments.dev.serving.fraud", {"mode": "serverless"}),
         "environment 'dev': field 'serving.fraud': overrides a model this environment does not "
         "deploy; allowed: churn, credit-risk"),
    case("alarm-error-rate-zero", at("models.churn.serving.alarms", {"max_error_rate_percent": 0}),
         "model 'churn': field 'serving.alarms.max_error_rate_percent': Input should be greater than "
         "0 (got 0)"),
    case("serving-unknown-field", at("models.churn.serving.realtime.instances", 2),
         "model 'churn': field 'serving.realtime.instances': unknown field; check the spelling "
         "against the documented fields (docs/configuration.md: Configuration)"),
]

YAML_CASES = [
    ycase("account-unquoted", 'account: "111111111111"', "account: 111111111111",
         'environment \'dev\': field \'account\': must be a quoted string, e.g. account: "123456789012"; '
         "YAML read the unquoted value as the number 111111111111"),
    ycase("account-leading-zero-octal", 'account: "222222222222"', "account: 012345670123",
         "environment 'staging': field 'account': must be a quoted string, e.g. account: "
         '"123456789012"; YAML read the unquoted value as the number 1402433619'),
    ycase("duplicate-model", "  credit-risk:\n    description: Probability", "  churn:\n    description: Probability",
         "field 'models.churn': duplicate key at line 115 (first at line 101); YAML keeps only the "
         "last one, so merge the two or rename one"),
    ycase("duplicate-environment", "  staging:\n    tier: staging", "  dev:\n    tier: staging",
         "field 'environments.dev': duplicate key at line 148 (first at line 128); YAML keeps only "
         "the last one, so merge the two or rename one"),
    ycase("duplicate-feature", "      region: region\n", "      region: region\n      tenure_months: tenure_months\n",
         "field 'datasets.customer_churn.features.tenure_months': duplicate key at line 71 (first at "
         "line 59); YAML keeps only the last one, so merge the two or rename one"),
    ycase("duplicate-default-key",
         "    number_of_workers: 2\n", "    number_of_workers: 2\n    number_of_workers: 4\n",
         "field 'defaults.glue.number_of_workers': duplicate key at line 15 (first at line 14); YAML "
         "keeps only the last one, so merge the two or rename one"),
    ycase("log-retention-quoted", "log_retention_days: 365", 'log_retention_days: "365"',
         "environment 'prod': field 'log_retention_days': must be a number, not the string '365'; "
         "write it without quotes"),
    ycase("tab-indentation", "  staging:\n    tier: staging", "  staging:\n\ttier: staging",
         "not valid YAML at line 149, column 1: found character '\\t' that cannot start any token; "
         "fix the syntax there"),
]


@pytest.mark.parametrize("mutation, expected", CASES)
def test_one_mistake_fails_with_exactly_these_lines(mutation, expected):
    raw = copy.deepcopy(SAMPLE)
    mutation(raw)
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    assert caught.value.problems == expected


@pytest.mark.parametrize("old, new, expected", YAML_CASES)
def test_one_mistake_in_the_yaml_text_fails_with_exactly_these_lines(tmp_path, old, new, expected):
    assert SAMPLE_TEXT.count(old) == 1, f"the edit must match the sample once: {old!r}"
    path = tmp_path / "config.yaml"
    path.write_text(SAMPLE_TEXT.replace(old, new))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems == expected
