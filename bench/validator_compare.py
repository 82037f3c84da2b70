"""Which template validator catches more real defects: CDK's built-in one or cfn-lint?

Synthesizes the ``dev`` environment once (built-in validation off), then runs two validators on
each of its five real templates and on a corpus of single-defect mutations of them (one realistic
mistake each: unknown or mistyped property, missing required property, bad enum, Ref / GetAtt to
nothing, DependsOn cycle, bad Fn::Sub variable, name over its length or pattern, broken IAM or KMS
policy, out-of-range number, bad cron, unknown resource type, duplicate export, missing condition...):

* ``builtin``: aws-cdk-lib's ``CloudFormationValidatePlugin`` (what ``App.synth()`` runs unless
  ``builtin_cloud_formation_validation=False`` / ``CDK_VALIDATION=false``), called directly through
  its ``validate()`` with a one-template context, with the stack's account and region as synth does;
* ``cfn-lint``: the cfn-lint in the venv with the repo's ``.cfnlintrc``, region = the stack's region.

A mutation is caught when a validator reports an Error or Warning (neither reports Informational
here) that it did not report on the unmutated template; it is blocked when that stops the project
(cfn-lint: any Error or Warning fails the tests; built-in: errors fail synth, given cdk.json's
``@aws-cdk/core:validateAgainstDefaultRules``, warnings are only printed). Findings on the unmutated templates are
false positives: the app deploys as synthesized. Times are wall times over the unmutated templates,
engine / rule loading apart. Nothing is asserted. Usage (after scripts/bootstrap.sh)::

    python bench/validator_compare.py   -> bench/results/validator_compare.json (+ a table)
"""

from __future__ import annotations

import copy
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as `python bench/validator_compare.py`: the app lives at the root
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

import jsii  # noqa: E402
from aws_cdk import App, CloudFormationValidatePlugin, IPolicyValidationContext, PolicyValidationStack  # noqa: E402
from cfnlint.config import ConfigMixIn  # noqa: E402
from cfnlint.decode.decode import decode_str  # noqa: E402
from cfnlint.runner import Runner  # noqa: E402
from cfnlint.version import __version__ as cfnlint_version  # noqa: E402

from mlops_loop.app_builder import build_app, new_app  # noqa: E402
from mlops_loop.config import load_config  # noqa: E402
from mlops_loop.tools.cloud_assembly import stacks  # noqa: E402

# The first configured environment (the user's config may name them differently).
ENVIRONMENT = next(iter(load_config(str(ROOT / "config" / "mlops-loop.yaml")).environments))
LONG = "x" * 300


@dataclass(frozen=True)
class R:
    """A resource path step: the first logical id (template order) of ``type`` starting with ``prefix``."""

    type: str
    prefix: str = ""

    def resolve(self, template: dict) -> str:
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] == self.type and logical_id.startswith(self.prefix):
                return logical_id
        raise KeyError(f"no {self.type} {self.prefix}* in the template")


def _walk(template: dict, path: tuple) -> tuple[Any, Any]:
    node: Any = template
    keys = [step.resolve(template) if isinstance(step, R) else step for step in path]
    for key in keys[:-1]:
        node = node[key]
    return node, keys[-1]


def put(*path: Any, value: Any) -> Callable[[dict], None]:
    """Set the value at ``path``; a callable ``value`` is called with the template (to name a logical id)."""

    def apply(template: dict) -> None:
        node, key = _walk(template, path)
        node[key] = value(template) if callable(value) else value

    return apply


def drop(*path: Any) -> Callable[[dict], None]:
    def apply(template: dict) -> None:
        node, key = _walk(template, path)
        del node[key]

    return apply


def rename(*path: Any, to: str) -> Callable[[dict], None]:
    def apply(template: dict) -> None:
        node, key = _walk(template, path)
        node[to] = node.pop(key)

    return apply


def duplicate_exports(template: dict) -> None:
    for output in ("RawBucketName", "CuratedBucketName"):
        template["Outputs"][output]["Export"] = {"Name": "mlops-loop-dev-data-bucket"}


def depends_on_cycle(template: dict) -> None:
    # the feature group already waits for this policy; the policy now waits for the feature group
    group = R("AWS::SageMaker::FeatureGroup", "FeatureStoreCustomerChurn").resolve(template)
    policy = R("AWS::IAM::ManagedPolicy", "FeatureStoreOfflineStore").resolve(template)
    template["Resources"][policy]["DependsOn"] = [group]


def instance_variant(instance_type: str) -> Callable[[dict], None]:
    def apply(template: dict) -> None:
        variant = template["Resources"][R("AWS::SageMaker::EndpointConfig", "Churn").resolve(template)]["Properties"]["ProductionVariants"][0]
        del variant["ServerlessConfig"]
        variant.update({"InitialInstanceCount": 1, "InstanceType": instance_type, "InitialVariantWeight": 1})

    return apply


@dataclass(frozen=True)
class Mutation:
    name: str
    stack: str
    description: str
    apply: Callable[[dict], None]


BUCKET = R("AWS::S3::Bucket", "DataLakeRawBucket")
BUCKET_POLICY = R("AWS::S3::BucketPolicy", "DataLakeRawBucketPolicy")
KEY = R("AWS::KMS::Key", "DataLakeKey")
FEATURE_GROUP = R("AWS::SageMaker::FeatureGroup", "FeatureStoreCustomerChurn")
APPROVER = R("AWS::IAM::Role", "RegistryApprover")
FUNCTION = R("AWS::Lambda::Function", "RetrainTriggerFunction")
TRIGGER_POLICY = R("AWS::IAM::ManagedPolicy", "RetrainTriggerAccessPolicy")
ALARM = R("AWS::CloudWatch::Alarm", "Alarmstriggererrors")
SCHEDULE = R("AWS::Scheduler::Schedule", "ChurnMonitorSchedule")
RULE = R("AWS::Events::Rule", "RetrainTriggerChurnDriftAlarms")
QUEUE = R("AWS::SQS::Queue", "RetrainTriggerDeadLetters")
LOGS = R("AWS::Logs::LogGroup", "RetrainTriggerLogs")
MODEL = R("AWS::SageMaker::Model", "Churn")
ENDPOINT_CONFIG = R("AWS::SageMaker::EndpointConfig", "Churn")
ENDPOINT = R("AWS::SageMaker::Endpoint", "Churn")
PIPELINE = R("AWS::SageMaker::Pipeline", "Churn")
GLUE_JOB = R("AWS::Glue::Job", "CustomerChurnCurateJob")
GLUE_TRIGGER = R("AWS::Glue::Trigger", "CustomerChurnStartTrigger")
P = "Properties"

MUTATIONS = [
    Mutation("s3_unknown_property", "Storage", "bucket property typo BucketEncrpytion (bucket silently unencrypted by the data key)",
             rename("Resources", BUCKET, P, "BucketEncryption", to="BucketEncrpytion")),
    Mutation("s3_name_uppercase", "Storage", "bucket name with uppercase letters",
             put("Resources", BUCKET, P, "BucketName", value="mlops-loop-dev-Raw-111111111111-eu-west-1")),
    Mutation("s3_name_too_long", "Storage", "bucket name of 70 characters (max 63)",
             put("Resources", BUCKET, P, "BucketName", value="mlops-loop-dev-raw-111111111111-eu-west-1-" + "a" * 28)),
    Mutation("s3_versioning_enum", "Storage", "VersioningConfiguration Status 'Enable' (Enabled | Suspended)",
             put("Resources", BUCKET, P, "VersioningConfiguration", "Status", value="Enable")),
    Mutation("s3_lifecycle_days_string", "Storage", "lifecycle ExpirationInDays '30d' (integer expected)",
             put("Resources", BUCKET, P, "LifecycleConfiguration", "Rules", 0, "ExpirationInDays", value="30d")),
    Mutation("s3_encryption_as_object", "Storage", "ServerSideEncryptionConfiguration an object, not a list",
             put("Resources", BUCKET, P, "BucketEncryption", "ServerSideEncryptionConfiguration",
                 value={"ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}})),
    Mutation("bucket_policy_action_no_prefix", "Storage", "bucket policy Action 'GetObject' without the s3: prefix",
             put("Resources", BUCKET_POLICY, P, "PolicyDocument", "Statement", 0, "Action", value="GetObject")),
    Mutation("bucket_policy_bad_effect", "Storage", "bucket policy Effect 'deny' (case matters)",
             put("Resources", BUCKET_POLICY, P, "PolicyDocument", "Statement", 0, "Effect", value="deny")),
    Mutation("kms_policy_bad_effect", "Storage", "KMS key policy Effect 'Allowed'",
             put("Resources", KEY, P, "KeyPolicy", "Statement", 0, "Effect", value="Allowed")),
    Mutation("kms_policy_no_principal", "Storage", "KMS key policy statement without Principal",
             drop("Resources", KEY, P, "KeyPolicy", "Statement", 0, "Principal")),
    Mutation("kms_policy_bad_version", "Storage", "KMS key policy Version '2012-10-18'",
             put("Resources", KEY, P, "KeyPolicy", "Version", value="2012-10-18")),
    Mutation("kms_pending_window_range", "Storage", "KMS PendingWindowInDays 45 (7..30)",
             put("Resources", KEY, P, "PendingWindowInDays", value=45)),
    Mutation("kms_alias_no_prefix", "Storage", "KMS AliasName without 'alias/'",
             put("Resources", R("AWS::KMS::Alias", "DataLakeKeyAlias"), P, "AliasName", value="mlops-loop-dev-data")),
    Mutation("iam_trust_malformed_arn", "Storage", "trust policy principal ARN missing a colon (arn:aws:iam:111111111111:root)",
             put("Resources", APPROVER, P, "AssumeRolePolicyDocument", "Statement", 0, "Principal", "AWS", value="arn:aws:iam:111111111111:root")),
    Mutation("iam_role_name_too_long", "Storage", "RoleName of 70 characters (max 64)",
             put("Resources", APPROVER, P, "RoleName", value="mlops-loop-dev-model-approver-" + "r" * 40)),
    Mutation("featuregroup_type_enum", "Storage", "FeatureType 'Float' (Integral | Fractional | String)",
             put("Resources", FEATURE_GROUP, P, "FeatureDefinitions", 3, "FeatureType", value="Float")),
    Mutation("featuregroup_missing_required", "Storage", "FeatureGroup without RecordIdentifierFeatureName",
             drop("Resources", FEATURE_GROUP, P, "RecordIdentifierFeatureName")),
    Mutation("depends_on_cycle", "Storage", "DependsOn cycle policy -> feature group -> policy", depends_on_cycle),
    Mutation("depends_on_missing", "Storage", "DependsOn a resource that does not exist",
             put("Resources", FEATURE_GROUP, "DependsOn", value=["DataLakeFeaturesBucketPolicyOld"])),
    Mutation("unknown_resource_type", "Storage", "resource type AWS::S3::Buckets",
             put("Resources", BUCKET, "Type", value="AWS::S3::Buckets")),
    Mutation("output_ref_missing", "Storage", "output Value Ref to a resource that does not exist",
             put("Outputs", "RawBucketName", "Value", value={"Ref": "DataLakeRawBucketRemoved"})),
    Mutation("getatt_bad_attribute", "Storage", "GetAtt of a KMS key attribute that does not exist (KeyArn)",
             put("Outputs", "DataKeyArn", "Value", value=lambda t: {"Fn::GetAtt": [KEY.resolve(t), "KeyArn"]})),
    Mutation("duplicate_export_names", "Storage", "two outputs export the same name", duplicate_exports),
    Mutation("output_without_value", "Storage", "output with a Description but no Value",
             put("Outputs", "RawBucketName", value={"Description": "raw bucket"})),
    Mutation("lambda_runtime_invalid", "Operations", "Lambda Runtime 'python314' (missing dot)",
             put("Resources", FUNCTION, P, "Runtime", value="python314")),
    Mutation("lambda_runtime_deprecated", "Operations", "Lambda Runtime python3.8 (deprecated: no longer deployable)",
             put("Resources", FUNCTION, P, "Runtime", value="python3.8")),
    # not 20480: the Lambda schema now allows up to 32768 MB, so a high value is no defect any more
    Mutation("lambda_memory_under_min", "Operations", "Lambda MemorySize 64 (min 128)",
             put("Resources", FUNCTION, P, "MemorySize", value=64)),
    Mutation("lambda_memory_string", "Operations", "Lambda MemorySize '256MB' (integer expected)",
             put("Resources", FUNCTION, P, "MemorySize", value="256MB")),
    Mutation("lambda_timeout_over_max", "Operations", "Lambda Timeout 1200 s (max 900)",
             put("Resources", FUNCTION, P, "Timeout", value=1200)),
    Mutation("lambda_missing_code", "Operations", "Lambda without Code (required)",
             drop("Resources", FUNCTION, P, "Code")),
    Mutation("lambda_architecture_enum", "Operations", "Lambda Architectures ['aarch64'] (x86_64 | arm64)",
             put("Resources", FUNCTION, P, "Architectures", value=["aarch64"])),
    Mutation("lambda_name_pattern", "Operations", "Lambda FunctionName with spaces",
             put("Resources", FUNCTION, P, "FunctionName", value="mlops loop dev retrain trigger")),
    Mutation("lambda_name_too_long", "Operations", "Lambda FunctionName of 80 characters (max 64)",
             put("Resources", FUNCTION, P, "FunctionName", value="mlops-loop-dev-retrain-trigger-" + "f" * 49)),
    Mutation("lambda_tags_as_map", "Operations", "Lambda Tags a map (list of Key/Value expected)",
             put("Resources", FUNCTION, P, "Tags", value={"environment": "dev"})),
    Mutation("lambda_env_unknown_key", "Operations", "Lambda Environment 'Vars' instead of 'Variables'",
             rename("Resources", FUNCTION, P, "Environment", "Variables", to="Vars")),
    Mutation("sub_unknown_variable", "Operations", "Fn::Sub with a variable that is no parameter, resource or pseudo parameter",
             put("Resources", FUNCTION, P, "Environment", "Variables", "COOLDOWN_HOURS", value={"Fn::Sub": "${CooldownHours}"})),
    Mutation("ref_missing_resource", "Operations", "alarm action Ref to a topic that does not exist",
             put("Resources", ALARM, P, "AlarmActions", value=[{"Ref": "NotificationsTopic"}])),
    Mutation("getatt_missing_resource", "Operations", "DeadLetterConfig GetAtt of a queue that does not exist",
             put("Resources", FUNCTION, P, "DeadLetterConfig", "TargetArn", value={"Fn::GetAtt": ["RetrainTriggerDLQ", "Arn"]})),
    Mutation("iam_bad_effect", "Operations", "managed policy Effect 'allow' (case matters)",
             put("Resources", TRIGGER_POLICY, P, "PolicyDocument", "Statement", 3, "Effect", value="allow")),
    Mutation("iam_action_no_prefix", "Operations", "managed policy Action 'StartPipelineExecution' without the sagemaker: prefix",
             put("Resources", TRIGGER_POLICY, P, "PolicyDocument", "Statement", 3, "Action", value="StartPipelineExecution")),
    Mutation("iam_malformed_resource_arn", "Operations", "managed policy Resource 'arn:aws:sagemaker:eu-west-1:pipeline/...' (no account field)",
             put("Resources", TRIGGER_POLICY, P, "PolicyDocument", "Statement", 3, "Resource",
                 value="arn:aws:sagemaker:eu-west-1:pipeline/mlops-loop-dev-churn-training")),
    Mutation("iam_policy_missing_statement", "Operations", "managed policy document 'Statements' instead of 'Statement'",
             rename("Resources", TRIGGER_POLICY, P, "PolicyDocument", "Statement", to="Statements")),
    Mutation("scheduler_cron_minute_99", "Operations", "Scheduler ScheduleExpression cron(99 3 * * ? *)",
             put("Resources", SCHEDULE, P, "ScheduleExpression", value="cron(99 3 * * ? *)")),
    Mutation("scheduler_cron_five_fields", "Operations", "Scheduler cron with 5 (Unix) fields: cron(0 3 * * *)",
             put("Resources", SCHEDULE, P, "ScheduleExpression", value="cron(0 3 * * *)")),
    Mutation("scheduler_window_mode_enum", "Operations", "Scheduler FlexibleTimeWindow Mode 'DISABLED' (OFF | FLEXIBLE)",
             put("Resources", SCHEDULE, P, "FlexibleTimeWindow", "Mode", value="DISABLED")),
    Mutation("alarm_operator_enum", "Operations", "alarm ComparisonOperator 'GreaterThan'",
             put("Resources", ALARM, P, "ComparisonOperator", value="GreaterThan")),
    Mutation("alarm_statistic_enum", "Operations", "alarm Statistic 'Total'",
             put("Resources", ALARM, P, "Statistic", value="Total")),
    Mutation("alarm_period_string", "Operations", "alarm Period '5 minutes' (integer expected)",
             put("Resources", ALARM, P, "Period", value="5 minutes")),
    # required by PutMetricAlarm and the CloudFormation docs, though the registry schema does not say so
    Mutation("alarm_missing_evaluation_periods", "Operations", "alarm without EvaluationPeriods (required)",
             drop("Resources", ALARM, P, "EvaluationPeriods")),
    Mutation("alarm_name_too_long", "Operations", "AlarmName of 300 characters (max 255)",
             put("Resources", ALARM, P, "AlarmName", value=LONG)),
    Mutation("events_rule_state_enum", "Operations", "event rule State 'ON' (ENABLED | DISABLED | ...)",
             put("Resources", RULE, P, "State", value="ON")),
    Mutation("sqs_retention_over_max", "Operations", "SQS MessageRetentionPeriod 28 days (max 14)",
             put("Resources", QUEUE, P, "MessageRetentionPeriod", value=2419200)),
    Mutation("logs_retention_enum", "Operations", "log group RetentionInDays 10 (not an allowed value)",
             put("Resources", LOGS, P, "RetentionInDays", value=10)),
    Mutation("condition_missing", "Serving", "resource Condition naming a condition that does not exist",
             put("Resources", MODEL, "Condition", value="ChurnIsDeployed")),
    Mutation("condition_fn_missing", "Serving", "Conditions entry using {Condition: ...} of a missing condition",
             put("Conditions", "CreditRiskDeployed", value={"Fn::And": [{"Condition": "ChurnDeployed"}, {"Condition": "CreditRiskApproved"}]})),
    Mutation("ref_missing_parameter", "Serving", "ModelPackageName Ref to a parameter that does not exist",
             put("Resources", MODEL, P, "Containers", 0, "ModelPackageName", value={"Ref": "ChurnModelPackage"})),
    Mutation("sagemaker_instance_type_typo", "Serving", "endpoint variant InstanceType 'ml.m5.xlarg'", instance_variant("ml.m5.xlarg")),
    Mutation("sagemaker_instance_type_no_prefix", "Serving", "endpoint variant InstanceType 'm5.xlarge' (no ml. prefix)", instance_variant("m5.xlarge")),
    Mutation("sagemaker_serverless_memory", "Serving", "ServerlessConfig MemorySizeInMB 2000 (1024..6144 in steps of 1024)",
             put("Resources", ENDPOINT_CONFIG, P, "ProductionVariants", 0, "ServerlessConfig", "MemorySizeInMB", value=2000)),
    Mutation("sagemaker_serverless_concurrency", "Serving", "ServerlessConfig MaxConcurrency 500 (max 200)",
             put("Resources", ENDPOINT_CONFIG, P, "ProductionVariants", 0, "ServerlessConfig", "MaxConcurrency", value=500)),
    Mutation("sagemaker_routing_enum", "Serving", "blue/green TrafficRoutingConfiguration Type 'ALL_AT_ONE'",
             put("Resources", ENDPOINT, P, "DeploymentConfig", "BlueGreenUpdatePolicy", "TrafficRoutingConfiguration", "Type", value="ALL_AT_ONE")),
    Mutation("sagemaker_getatt_bad_attribute", "Serving", "GetAtt of EndpointConfig attribute 'Name' (EndpointConfigName)",
             put("Resources", ENDPOINT, P, "EndpointConfigName", value=lambda t: {"Fn::GetAtt": [ENDPOINT_CONFIG.resolve(t), "Name"]})),
    Mutation("sagemaker_endpoint_name_pattern", "Serving", "EndpointName with underscores (pattern [a-zA-Z0-9](-*[a-zA-Z0-9])*)",
             put("Resources", ENDPOINT, P, "EndpointName", value="mlops_loop_dev_churn")),
    # the schema's pattern is unanchored at the end, so only the API would refuse this
    Mutation("pipeline_name_pattern", "Training", "SageMaker PipelineName with underscores",
             put("Resources", PIPELINE, P, "PipelineName", value="mlops_loop_dev_churn_training")),
    Mutation("pipeline_missing_role", "Training", "SageMaker Pipeline without RoleArn (required)",
             drop("Resources", PIPELINE, P, "RoleArn")),
    Mutation("glue_worker_type_enum", "DataPipeline", "Glue job WorkerType 'G.3X'",
             put("Resources", GLUE_JOB, P, "WorkerType", value="G.3X")),
    Mutation("glue_max_retries_string", "DataPipeline", "Glue job MaxRetries 'once' (integer expected)",
             put("Resources", GLUE_JOB, P, "MaxRetries", value="once")),
    Mutation("glue_trigger_type_enum", "DataPipeline", "Glue trigger Type 'SCHEDULE' (SCHEDULED | CONDITIONAL | ON_DEMAND | EVENT)",
             put("Resources", GLUE_TRIGGER, P, "Type", value="SCHEDULE")),
    Mutation("glue_trigger_cron_hour_25", "DataPipeline", "Glue trigger Schedule cron(0 25 * * ? *)",
             put("Resources", GLUE_TRIGGER, P, "Schedule", value="cron(0 25 * * ? *)")),
]


@jsii.implements(IPolicyValidationContext)
class _OneTemplate:
    """What ``App.synth()`` hands the plugin, for one template: its path, the stack's account and region."""

    def __init__(self, app: App, path: Path, account: str, region: str):
        self._app, self._path, self._account, self._region = app, str(path), account, region

    @property
    def template_paths(self) -> list[str]:
        return [self._path]

    @property
    def stack_templates(self) -> list[PolicyValidationStack]:
        return [PolicyValidationStack(stack_construct_path=self._path, template_path=self._path, account_id=self._account, region=self._region)]

    @property
    def account_id(self) -> str:
        return self._account

    @property
    def region(self) -> str:
        return self._region

    @property
    def app_construct(self) -> App:
        return self._app


class Builtin:
    """The built-in validator with its default rules (including the bundled Rego rules), as synth runs it."""

    def __init__(self, app: App, account: str, region: str):
        self.app, self.account, self.region = app, account, region
        self.plugin = CloudFormationValidatePlugin()

    def findings(self, path: Path) -> list[dict]:
        report = self.plugin.validate(_OneTemplate(self.app, path, self.account, self.region))
        return [
            {"rule": v.rule_name, "level": v.severity, "message": v.description}
            for v in report.violations
            if v.severity in ("error", "fatal", "warning")
        ]


class CfnLint:
    """cfn-lint as ``mlops_loop.tools.lint`` runs it (config .cfnlintrc), pinned to the stack's region."""

    def __init__(self, region: str):
        self.runner = Runner(ConfigMixIn(cli_args=["--config-file", str(ROOT / ".cfnlintrc"), "--regions", region]))

    def findings(self, path: Path) -> list[dict]:
        template, matches = decode_str(path.read_text())
        if template is not None and not matches:
            matches = list(self.runner.validate_template(template))
        return [
            {"rule": m.rule.id, "level": {"E": "error", "W": "warning"}.get(m.rule.id[0], "informational"), "message": m.message}
            for m in matches
            if m.rule.id[0] in "EW"
        ]


def _new(findings: list[dict], baseline: list[dict]) -> list[dict]:
    seen = {(f["rule"], f["message"]) for f in baseline}
    return [f for f in findings if (f["rule"], f["message"]) not in seen]


def _blocks(tool: str, findings: list[dict]) -> bool:
    """Whether the finding stops the project: any cfn-lint Error or Warning fails the tests (see
    tests/infra/test_compliance.py); the built-in one fails synth on errors only, warnings are printed."""
    return bool(findings) if tool == "cfnlint" else any(f["level"] != "warning" for f in findings)


def _ids(findings: list[dict]) -> str:
    ids = sorted({f["rule"] + ("" if f["level"] != "warning" else "(w)") for f in findings})
    return ",".join(ids) if ids else "-"


def compare(work: Path) -> dict:
    """Synthesize, validate the real templates and every mutation with both validators; the result."""
    app = new_app(str(work / "cdk.out"))
    build_app(app, load_config(str(ROOT / "config" / "mlops-loop.yaml")), environments=[ENVIRONMENT])
    app.synth()
    synthesized = {s.construct_id: s for s in stacks(work / "cdk.out")}
    manifest = json.loads(next(iter(synthesized.values())).template_path.with_name("manifest.json").read_text())
    environment = next(a["environment"] for a in manifest["artifacts"].values() if "environment" in a)
    account, region = environment.removeprefix("aws://").split("/")

    timings: dict[str, float] = {}
    t = time.perf_counter()
    builtin = Builtin(app, account, region)
    timings["builtin_engine_init"] = time.perf_counter() - t
    t = time.perf_counter()
    lint = CfnLint(region)
    timings["cfnlint_rules_init"] = time.perf_counter() - t

    # first pass cold (lazy schema loading included, as in one synth or one cfn-lint run), then warm
    baseline: dict[str, dict[str, list[dict]]] = {}
    for tool, validator in (("builtin", builtin), ("cfnlint", lint)):
        passes = []
        for _ in range(3):
            t = time.perf_counter()
            baseline[tool] = {cid: validator.findings(s.template_path) for cid, s in synthesized.items()}
            passes.append(time.perf_counter() - t)
        timings[f"{tool}_unmutated_cold"], timings[f"{tool}_unmutated_warm"] = passes[0], min(passes[1:])

    rows = []
    for mutation in MUTATIONS:
        template = copy.deepcopy(synthesized[mutation.stack].template)
        mutation.apply(template)
        path = work / f"{mutation.name}.template.json"
        path.write_text(json.dumps(template, indent=1))
        row: dict[str, Any] = {"name": mutation.name, "stack": mutation.stack, "description": mutation.description}
        for tool, validator in (("cfnlint", lint), ("builtin", builtin)):
            try:
                row[tool] = _new(validator.findings(path), baseline[tool][mutation.stack])
            except Exception as exc:  # a validator that crashes on a broken template still flags it
                row[tool] = [{"rule": "CRASH", "level": "error", "message": f"{type(exc).__name__}: {exc}"[:300]}]
        rows.append(row)

    tools = ("cfnlint", "builtin")
    caught = {tool: [r["name"] for r in rows if r[tool]] for tool in tools}
    return {
        "environment": ENVIRONMENT,
        "region": region,
        "versions": {"aws-cdk-lib": version("aws-cdk-lib"), "cfn-lint": cfnlint_version, "builtin_engine": builtin.plugin.version},
        "mutations": len(rows),
        "caught": {tool: len(caught[tool]) for tool in tools},
        "blocking": {tool: sum(_blocks(tool, r[tool]) for r in rows) for tool in tools},
        "missed": {tool: [r["name"] for r in rows if not r[tool]] for tool in tools},
        "only_cfnlint": [n for n in caught["cfnlint"] if n not in caught["builtin"]],
        "only_builtin": [n for n in caught["builtin"] if n not in caught["cfnlint"]],
        "missed_by_both": [r["name"] for r in rows if not r["cfnlint"] and not r["builtin"]],
        "templates": len(synthesized),
        "false_positives": {tool: {cid: f for cid, f in baseline[tool].items() if f} for tool in tools},
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
        "rows": rows,
    }


def main() -> int:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="validator-compare-") as work:
        result = compare(Path(work))
    result["wall_s"] = round(time.perf_counter() - started, 1)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "validator_compare.json").write_text(json.dumps(result, indent=2))

    rows, labels = result["rows"], {"cfnlint": "cfn-lint", "builtin": "built-in"}
    width = max(len(r["name"]) for r in rows)
    print(f"{'mutation':<{width}}  {'cfn-lint':<20}  built-in        ((w) = warning)")
    for r in rows:
        print(f"{r['name']:<{width}}  {_ids(r['cfnlint']):<20}  {_ids(r['builtin'])}")
    print()
    for tool, label in labels.items():
        print(f"{label:<8} caught {result['caught'][tool]}/{len(rows)}, {result['blocking'][tool]} blocking;"
              f" missed: {', '.join(result['missed'][tool]) or '-'}")
    print(f"only cfn-lint: {', '.join(result['only_cfnlint']) or '-'}")
    print(f"only built-in: {', '.join(result['only_builtin']) or '-'}")
    print(f"missed by both: {', '.join(result['missed_by_both']) or '-'}")
    for tool, label in labels.items():
        fps = result["false_positives"][tool]
        print(f"false positives of {label} on the {result['templates']} unmutated {ENVIRONMENT} templates: {sum(map(len, fps.values()))}"
              + "".join(f"\n  {cid}: {f['rule']} {f['message'][:120]}" for cid, per in fps.items() for f in per))
    tm = result["timings_s"]
    for tool, label, init in (("cfnlint", "cfn-lint", "rule loading"), ("builtin", "built-in", "engine init")):
        print(f"{label} over the unmutated templates: {tm[tool + '_unmutated_cold']:.2f} s cold, {tm[tool + '_unmutated_warm']:.2f} s warm,"
              f" + {tm[('cfnlint_rules_init' if tool == 'cfnlint' else 'builtin_engine_init')]:.2f} s {init}")
    print(f"total {result['wall_s']} s -> {(out / 'validator_compare.json').relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
