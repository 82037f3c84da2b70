"""The native SageMaker Model Monitor / Clarify opt-in of one served model (``serving.native_model_monitor``).

SageMaker Model Monitor and Clarify are closed to new customers, so mlops-loop's default monitor is its
own; accounts that still have them can add the four native monitors next to it with this construct.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Optional

from aws_cdk import ArnFormat, CfnCondition, CfnResource, Stack, Token
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from pipeline_code.core.contract import NATIVE_MONITOR_REPORTS, aws_partition, inference_prefix, pascal

from ..config.instance_types import INSTANCE_TYPES
from ..config.native_monitor import OFFSET_MAX_CHARS, fixed_threshold_problem, window_offsets
from ..config.schedules import monitoring_schedule
from ..config.model import ModelConfig
from ..config.network import NetworkConfig
from ..naming import RESOURCE_METADATA_KEY, bounded_name as _bounded_name, monitor_role_name
from ..training import sdk_helper
from ..training.sdk_cache import sdk_cache
from ..training.sdk_offline import clarify_analysis_configs, image_uri
from .access_policy import READ_OBJECT_ACTIONS, AccessPolicy
from .arns import format_arn, s3_arn
from .cdk_reads import environment_of, read_once, service_principal, stack_of
from .generated_asset import generated_asset
from .network import allow_sagemaker_network_interfaces
from .scheduled_job import notify_failed_jobs

# Where the serving code puts P(target = 1) in a JSON response (docs/invocation-contract.md):
# {"predictions": [{"score": p, "label": 0|1}], ...}. Model Monitor reads one record per request.
PROBABILITY_ATTRIBUTE = "predictions[0].score"
# Clarify reads the features of a captured JSON request {"instances": [record]} with a JMESPath
# multiselect over the record's keys (see _features_attribute).
REQUEST_RECORDS = "instances[0]"
# Kernel SHAP calls the endpoint num_samples times per explained record; 100 keeps a daily run cheap.
SHAP_SAMPLES = 100
REPORT_ROOT = NATIVE_MONITOR_REPORTS
INPUT_PATH = "/opt/ml/processing/input/endpoint"
OUTPUT_PATH = "/opt/ml/processing/output"
_NAME_LIMIT = 63
# Namespaces the Model Monitor and Clarify containers publish to (AWS docs spell the data-quality one
# three ways: /aws/sagemaker/Endpoints/data-metrics, .../Endpoint/data-metrics, .../data-metric).
METRIC_NAMESPACES = ("/aws/sagemaker/Endpoint*/data-metric*", "/aws/sagemaker/Endpoints/model-metrics",
                     "aws/sagemaker/Endpoints/bias-metrics", "aws/sagemaker/Endpoints/explainability-metrics")


@dataclass(frozen=True)
class _Kind:
    key: str  # report sub-prefix and name part
    monitoring_type: str
    short: str  # keeps generated names within 63 characters


DATA_QUALITY = _Kind("data-quality", "DataQuality", "dq")
MODEL_QUALITY = _Kind("model-quality", "ModelQuality", "mq")
MODEL_BIAS = _Kind("model-bias", "ModelBias", "bias")
MODEL_EXPLAINABILITY = _Kind("model-explainability", "ModelExplainability", "expl")
KINDS = (DATA_QUALITY, MODEL_QUALITY, MODEL_BIAS, MODEL_EXPLAINABILITY)


def monitor_images(region: str) -> tuple[str, str]:
    """The Model Monitor analyzer and Clarify processing image URIs in ``region`` (offline, the SDK's tables)."""
    return image_uri("model-monitor", region), image_uri("clarify", region)


def repository_arn(image_uri: str, region: str) -> str:
    """The ECR repository ARN of ``<account>.dkr.ecr.<region>.amazonaws.com/<repo>[:tag]``."""
    registry_account, _, rest = image_uri.partition(".dkr.ecr.")
    return f"arn:{aws_partition(region)}:ecr:{region}:{registry_account}:repository/{rest.split('/', 1)[1].split(':')[0]}"


def analysis_configs(model: ModelConfig, endpoint_name: str, region: str) -> tuple[dict, dict]:
    """The Clarify analysis configs (bias, explainability) of ``model``, built with the SDK's own classes
    (:func:`~..training.sdk_offline.clarify_analysis_configs`).

    Bias: label = the target (positive value 1), facet = the sensitive attribute, headers = the
    features, the sensitive attribute and the target (Clarify finds the facet by header, and the
    sensitive attribute is not a model input). Explainability: Kernel SHAP over the features, calling
    the endpoint itself with CSV records in feature order (the serving code's precomputed-feature
    form) and reading the score it answers; no shadow endpoint is created.

    Kept in the SDK cache (:mod:`..training.sdk_cache`), as the image URIs are: the answer depends only on the
    request, and building it imported the SDK into a synth that otherwise needs none once the cache is warm (about
    3 CPU-s); on a cold cache the SDK helper builds it when one runs.
    """
    request = {"region": region, "endpoint_name": endpoint_name, "features": list(model.features),
               "sensitive_attribute": model.sensitive_attribute, "target": model.target, "shap_samples": SHAP_SAMPLES}
    answer = sdk_cache().get_or_create("clarify-analysis-configs", request,
                                       lambda: sdk_helper.run(clarify_analysis_configs, request))
    bias, explainability = json.loads(answer)
    return bias, explainability


def _camel(value: Any) -> Any:
    """Snake-case struct dicts as the camelCase dicts jsii accepts for L1 struct props (maps kept as they are)."""
    if isinstance(value, list):
        return [_camel(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        head, *rest = key.split("_")
        out[head + "".join(part.title() for part in rest)] = item if key == "environment" else _camel(item)
    return out


def _features_attribute(columns: list[str]) -> str:
    return f"{REQUEST_RECORDS}.[{', '.join(columns)}]"


class NativeModelMonitor(Construct):
    """SageMaker Model Monitor's four monitors of one endpoint, each with its job definition and schedule.

    Every resource carries ``condition`` (the endpoint exists only once a version is approved).
    Job definitions are create-only in CloudFormation, so their names end in a hash of their
    properties: a changed definition gets a new name and is replaced, and its schedule is updated to
    it. The schedules have fixed names ``<prefix>-<model>-<dq|mq|bias|expl>`` (``self.schedule_names``), and so has
    the role all four run as, ``<prefix>-<model>-native-monitor`` (``self.role_name``; names over 63 characters end
    in a hash): :func:`notify_native_monitor_failures` finds their failed jobs by it.

    * Data quality: statistics of the captured requests and responses (``capture/<model>/``). No
      baseline is required or set: our baselines are in our own format, not Deequ's
      statistics/constraints, so the job reports statistics only; add a ``DataQualityBaselineConfig``
      (e.g. from a Model Monitor baselining job) to get constraint violations.
    * Model quality: ``BinaryClassification`` on ``predictions[0].score`` thresholded at the model's fixed
      decision threshold (``decision.threshold``, 0.5 by default; a policy that chooses the threshold at training
      is refused), joined with ground truth under ``labels/<model>/``. Model Monitor reads its own ground-truth records
      there (``yyyy/mm/dd/hh/*.jsonl``, ``{"groundTruthData": {"data": "1", "encoding": "CSV"},
      "eventMetadata": {"eventId": <InferenceId>}, "eventVersion": "0"}``), joined on the
      ``InferenceId`` the caller passed to InvokeEndpoint; our monitor's CSV labels are not read.
    * Bias: Clarify post-training bias drift of the target (positive value 1) by the sensitive
      attribute, on the same window and ground truth. Captured JSON requests must be
      ``{"instances": [record]}`` with one record holding the features and the sensitive attribute.
    * Explainability: Clarify Kernel SHAP attribution drift (100 samples, mean absolute SHAP, Clarify's
      own baseline); it invokes the live endpoint with CSV records in feature order, so it is the
      one job that keeps network access. No shadow endpoint is created.

    Reports go to ``monitor-native/<model>/<kind>/`` in the inference bucket, encrypted with
    ``key``; volumes too, except on instance types with local NVMe (hardware-encrypted, and
    SageMaker rejects a volume key there). Inter-container traffic is encrypted. One role
    (``self.role``) runs all four, with a least-privilege managed policy. The stack needs a concrete
    region: the Model Monitor and Clarify image URIs are looked up per region at synth.

    The two Clarify analysis configs are file assets (published by ``cdk deploy``) created under
    ``asset_scope``; default: this construct. A stack that must publish no assets (the Serving
    stack is updated with UsePreviousTemplate) passes a construct of another stack, e.g. Storage.

    Defaults: ``instance_count`` 1 instance per run; ``volume_size_gb`` a 20 GB volume;
    ``max_runtime_seconds`` None stops each run after the schedule period or one hour,
    whichever is shorter; ``label_delay_hours`` None is the model's ``label_delay_days`` x 24: model quality and
    bias judge the schedule period that ended that long ago (``StartTimeOffset`` = -(delay + period),
    ``EndTimeOffset`` = -delay), so the labels that arrive within the model's delay are counted;
    ``network`` None runs the jobs on AWS-managed networking (given, all four run in its subnets and security
    groups, and the role may manage their network interfaces).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name_prefix: str,
        model: ModelConfig,
        endpoint_name: str,
        condition: CfnCondition,
        inference_bucket: s3.IBucket,
        key: kms.IKey,
        schedule: str,
        instance_type: str,
        instance_count: int = 1,
        volume_size_gb: int = 20,
        max_runtime_seconds: Optional[int] = None,
        label_delay_hours: Optional[int] = None,
        asset_scope: Optional[Construct] = None,
        network: Optional[NetworkConfig] = None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = stack_of(self, scope)
        region = environment_of(stack).region
        if Token.is_unresolved(region):
            raise ValueError(f"{self.node.path}: the stack has no concrete region; give it env=Environment(region=...) "
                             "so the Model Monitor and Clarify images can be looked up")
        if Token.is_unresolved(endpoint_name) or not re.match(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$", endpoint_name):
            raise ValueError(f"endpoint_name: {endpoint_name!r} must be the endpoint's fixed name "
                             "(a plain string; it is written into the Clarify analysis config), e.g. 'mlops-loop-prod-churn'")
        try:
            self.schedule = monitoring_schedule(schedule)
        except ValueError as exc:
            raise ValueError(f"schedule: {exc}") from None
        instance = INSTANCE_TYPES.get(instance_type)
        if instance is None or instance.accelerator not in ("none", "gpu"):
            raise ValueError(f"instance_type: {instance_type!r} cannot run processing jobs; allowed: "
                             f"{', '.join(sorted(n for n, t in INSTANCE_TYPES.items() if t.accelerator in ('none', 'gpu')))}")
        max_runtime = max_runtime_seconds or min(self.schedule.period_seconds, 3600)
        if not 60 <= max_runtime <= self.schedule.period_seconds:
            raise ValueError(f"max_runtime_seconds: {max_runtime} must be 60-{self.schedule.period_seconds} "
                             f"(a run must end before {schedule} starts the next one)")
        if not 1 <= instance_count <= 20:
            raise ValueError(f"instance_count: {instance_count}; allowed: 1-20")
        if not 1 <= volume_size_gb <= 512:
            raise ValueError(f"volume_size_gb: {volume_size_gb}; allowed: 1-512")
        if label_delay_hours is None:
            label_delay_hours = model.label_delay_days * 24
        period_hours = self.schedule.period_seconds // 3600
        self.window = window_offsets(label_delay_hours, period_hours)
        if label_delay_hours < 0 or len(self.window[0]) > OFFSET_MAX_CHARS:
            raise ValueError(f"label_delay_hours: {label_delay_hours}; allowed: 0 up to the delay whose StartTimeOffset "
                             f"{self.window[0]!r} fits Model Monitor's {OFFSET_MAX_CHARS} characters")
        threshold_problem = fixed_threshold_problem(model)
        if threshold_problem:
            raise ValueError(f"model {model.name!r}: {threshold_problem}; use decision policy 'fixed' or leave this "
                             "model out of native monitoring")
        # The number the served label uses too (the artefact stores the fixed policy's threshold).
        self.probability_threshold = model.decision_policy.fixed_threshold

        self._condition = condition
        self._prefix = name_prefix
        self.instance_type = instance_type  # what every job definition runs on (the deployer limits them to it)
        self.model_name = model.name
        self.endpoint_name = endpoint_name
        bucket_name = read_once(inference_bucket, "bucket_name")
        analyzer_image, clarify_image = monitor_images(region)
        self.bias_analysis_config, self.explainability_analysis_config = analysis_configs(
            model, endpoint_name, region
        )
        asset_scope = asset_scope or self
        assets, here = environment_of(asset_scope), environment_of(stack)
        if (assets.region, assets.account) != (here.region, here.account):
            raise ValueError("asset_scope: must be in a stack of the same account and region as the monitor")
        # Clarify reads its analysis config from S3; assets are the only way to put a synth-time file
        # there without a custom resource.
        asset_prefix = "" if asset_scope is None else f"{pascal(model.name)}Native"
        self.bias_config_asset = self._config_asset(asset_scope, f"{asset_prefix}BiasAnalysisConfig",
                                                    self.bias_analysis_config)
        self.explainability_config_asset = self._config_asset(asset_scope, f"{asset_prefix}ExplainabilityAnalysisConfig",
                                                              self.explainability_analysis_config)
        self.report_uris = {k.key: f"s3://{bucket_name}/{REPORT_ROOT}/{model.name}/{k.key}/" for k in KINDS}

        # --- the role all four jobs run as.
        # A fixed name: the Operations stack's failure rule matches the jobs run as this role (the processing job
        # event carries RoleArn) without a cross-stack export.
        self.role_name = monitor_role_name(name_prefix, model.name)
        self.role = iam.Role(
            self,
            "Role",
            role_name=self.role_name,
            # No confused-deputy condition: the SageMaker Developer Guide documents the aws:SourceArn SageMaker
            # sends for endpoints, training, processing, transform and pipelines, not for the jobs a monitoring
            # schedule starts (service_trust.SAGEMAKER_CONFUSED_DEPUTY_DOC); a guessed one could stop every run.
            assumed_by=service_principal("sagemaker.amazonaws.com"),
            description=f"{name_prefix}: native Model Monitor jobs of {model.name}",
        )
        access = AccessPolicy(self, "Access", role=self.role,
                              description=f"{name_prefix} {model.name} native Model Monitor")
        self._allow(access, stack, inference_bucket, key, analyzer_image, clarify_image)
        if network is not None:
            allow_sagemaker_network_interfaces(access, network)

        # --- shared job settings.
        volume_key = None if instance.local_nvme else read_once(key, "key_arn")
        self._volume_key_reason = None if volume_key else (
            f"{instance_type} stores data on local NVMe, which is hardware-encrypted; SageMaker rejects "
            "a VolumeKmsKeyId for it. Outputs are still encrypted with the data key.")
        cluster = {"instance_count": instance_count, "instance_type": instance_type,
                   "volume_size_in_gb": volume_size_gb, "volume_kms_key_id": volume_key}
        # Ground truth arrives late: judge the period that ended label_delay_hours ago.
        window = {"start_time_offset": self.window[0], "end_time_offset": self.window[1]}
        endpoint_input = {"endpoint_name": endpoint_name, "local_path": INPUT_PATH,
                          "s3_data_distribution_type": "FullyReplicated", "s3_input_mode": "File"}
        ground_truth = {"s3_uri": f"s3://{bucket_name}/{inference_prefix(model.name, 'labels')}"}
        bias_columns = [*model.features, model.sensitive_attribute]

        def common(kind: _Kind, isolated: bool) -> dict[str, Any]:
            return {
                "role_arn": read_once(self.role, "role_arn"),
                "job_resources": {"cluster_config": cluster},
                "network_config": {"enable_inter_container_traffic_encryption": True, "enable_network_isolation": isolated,
                                   **({"vpc_config": {"security_group_ids": list(network.security_group_ids),
                                                      "subnets": list(network.subnet_ids)}} if network is not None else {})},
                "stopping_condition": {"max_runtime_in_seconds": max_runtime},
                "output": {
                    "monitoring_outputs": [{"s3_output": {"local_path": OUTPUT_PATH, "s3_uri": self.report_uris[kind.key],
                                                          "s3_upload_mode": "EndOfJob"}}],
                    "kms_key_id": read_once(key, "key_arn"),
                },
            }

        self.job_definitions: dict[str, CfnResource] = {}
        metrics_env = {"publish_cloudwatch_metrics": "Enabled"}
        props = common(DATA_QUALITY, True)
        self._define(DATA_QUALITY, sagemaker.CfnDataQualityJobDefinition, dict(
            data_quality_app_specification={"image_uri": analyzer_image, "environment": metrics_env},
            data_quality_job_input={"endpoint_input": endpoint_input},
            data_quality_job_output_config=props.pop("output"), **props))
        props = common(MODEL_QUALITY, True)
        self._define(MODEL_QUALITY, sagemaker.CfnModelQualityJobDefinition, dict(
            model_quality_app_specification={"image_uri": analyzer_image, "problem_type": "BinaryClassification",
                                             "environment": metrics_env},
            model_quality_job_input={
                "endpoint_input": {**endpoint_input, **window, "probability_attribute": PROBABILITY_ATTRIBUTE,
                                   "probability_threshold_attribute": self.probability_threshold},
                "ground_truth_s3_input": ground_truth},
            model_quality_job_output_config=props.pop("output"), **props))
        props = common(MODEL_BIAS, True)
        self._define(MODEL_BIAS, sagemaker.CfnModelBiasJobDefinition, dict(
            model_bias_app_specification={"image_uri": clarify_image, "config_uri": read_once(self.bias_config_asset, "s3_object_url")},
            model_bias_job_input={
                "endpoint_input": {**endpoint_input, **window, "features_attribute": _features_attribute(bias_columns),
                                   "probability_attribute": PROBABILITY_ATTRIBUTE,
                                   "probability_threshold_attribute": self.probability_threshold},
                "ground_truth_s3_input": ground_truth},
            model_bias_job_output_config=props.pop("output"), **props))
        # Kernel SHAP invokes the endpoint through the SageMaker runtime API: this job needs the network.
        props = common(MODEL_EXPLAINABILITY, False)
        self._define(MODEL_EXPLAINABILITY, sagemaker.CfnModelExplainabilityJobDefinition, dict(
            model_explainability_app_specification={"image_uri": clarify_image,
                                                    "config_uri": read_once(self.explainability_config_asset, "s3_object_url")},
            model_explainability_job_input={"endpoint_input": {
                **endpoint_input, "features_attribute": _features_attribute(list(model.features)),
                "probability_attribute": PROBABILITY_ATTRIBUTE}},
            model_explainability_job_output_config=props.pop("output"), **props))

        self.schedules: dict[str, sagemaker.CfnMonitoringSchedule] = {}
        self.schedule_names = {k.key: _bounded_name(f"{name_prefix}-{model.name}-{k.short}", k.key) for k in KINDS}
        for kind in KINDS:
            definition = self.job_definitions[kind.key]
            schedule = sagemaker.CfnMonitoringSchedule(
                self,
                f"{kind.monitoring_type}Schedule",
                monitoring_schedule_name=self.schedule_names[kind.key],
                endpoint_name=endpoint_name,
                monitoring_schedule_config=sagemaker.CfnMonitoringSchedule.MonitoringScheduleConfigProperty(
                    monitoring_job_definition_name=definition.job_definition_name,
                    monitoring_type=kind.monitoring_type,
                    schedule_config=sagemaker.CfnMonitoringSchedule.ScheduleConfigProperty(
                        schedule_expression=self.schedule.expression
                    ),
                ),
            )
            schedule.node.add_dependency(definition)
            self._conditional(schedule)
            self.schedules[kind.key] = schedule
        for resource in [*self.job_definitions.values(), *self.schedules.values()]:
            # The jobs start as soon as a schedule exists; the role's policy must be there first.
            resource.node.add_dependency(access)

    def wait_for(self, endpoint: CfnResource) -> None:
        """Create the job definitions and schedules only after ``endpoint`` (SageMaker checks it exists).

        Only the conditional resources get the ``DependsOn``: the role, its policy and the assets exist
        before any approval, and an unconditional resource may not depend on a conditional one.
        """
        for resource in [*self.job_definitions.values(), *self.schedules.values()]:
            resource.add_resource_dependency(endpoint)

    # ------------------------------------------------------------------ helpers
    def _conditional(self, resource: CfnResource) -> None:
        resource.cfn_options.condition = self._condition
        resource.add_metadata(RESOURCE_METADATA_KEY, {"model": self.model_name, "monitor": "native"})

    def _define(self, kind: _Kind, cls: type, props: dict[str, Any]) -> None:
        # Every property is create-only: the name carries a hash of them, so a change creates a
        # new definition (a fixed name would block CloudFormation's replacement).
        props = {name: value if name == "role_arn" else _camel(value) for name, value in props.items()}
        # The role's ARN resolves to a GetAtt of an unchanged logical id: its name stands for it, so a renamed
        # (replaced) role gives the definition a new name too.
        hashed = {**stack_of(self).resolve(props), "role_name": self.role_name}
        digest = hashlib.sha256(json.dumps(hashed, sort_keys=True, default=str).encode())
        base = f"{self._prefix}-{self.model_name}-{kind.short}"[:_NAME_LIMIT - 9].rstrip("-")
        definition = cls(self, f"{kind.monitoring_type}JobDefinition",
                         job_definition_name=f"{base}-{digest.hexdigest()[:8]}", **props)
        self._conditional(definition)
        if self._volume_key_reason:
            # checkov's CKV_AWS_368 wants a volume key on data-quality job definitions.
            definition.add_metadata("checkov", {"skip": [{"id": "CKV_AWS_368", "comment": self._volume_key_reason}]})
        self.job_definitions[kind.key] = definition

    @staticmethod
    def _config_asset(scope: Construct, construct_id: str, config: dict) -> s3_assets.Asset:
        return generated_asset(scope, construct_id, "analysis_config.json", json.dumps(config, indent=2, sort_keys=True))

    def _allow(self, access: AccessPolicy, stack: Stack, bucket: s3.IBucket, key: kms.IKey,
               analyzer_image: str, clarify_image: str) -> None:
        model, region = self.model_name, environment_of(stack).region
        access.allow_prefix("ReadCapture", bucket, inference_prefix(model, "capture"))
        access.allow_prefix("ReadLabels", bucket, inference_prefix(model, "labels"))
        # As before: SageMaker's own monitoring containers write here, and what they may remove is theirs to say.
        access.allow_prefix("WriteReports", bucket, f"{REPORT_ROOT}/{model}/", write=True, delete=True)
        access.allow("ReadAnalysisConfigs", list(READ_OBJECT_ACTIONS), [
            s3_arn(self, read_once(asset, "s3_bucket_name"), read_once(asset, "s3_object_key"))
            for asset in (self.bias_config_asset, self.explainability_config_asset)
        ])
        access.allow_key("DataKey", key)
        access.allow(
            "PullImageToken",
            ["ecr:GetAuthorizationToken"],
            ["*"],
            wildcard_reason="GetAuthorizationToken has no resource-level permissions; pulls are limited to the "
            "Model Monitor analyzer and Clarify repositories below.",
        )
        access.allow(
            "PullMonitorImages",
            ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
            [repository_arn(analyzer_image, region), repository_arn(clarify_image, region)],
        )
        access.allow(
            "Logs",
            ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            [format_arn(stack, service="logs", resource="log-group", resource_name="/aws/sagemaker/ProcessingJobs:*",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME)],
            wildcard_reason="SageMaker writes one log stream per monitoring job and instance in the "
            "/aws/sagemaker/ProcessingJobs log group; the stream names are generated per run.",
        )
        access.allow_metrics("Metrics", METRIC_NAMESPACES, limited_to="Model Monitor's and Clarify's endpoint metric namespaces")
        access.allow(
            "ExplainWithEndpoint",
            ["sagemaker:InvokeEndpoint", "sagemaker:DescribeEndpoint"],
            [format_arn(stack, service="sagemaker", resource="endpoint", resource_name=self.endpoint_name.lower())],
        )


def notify_native_monitor_failures(
    scope: Construct,
    construct_id: str,
    *,
    monitor: NativeModelMonitor,
    what: str,
    topic: sns.ITopic,
    dead_letter_queue: sqs.IQueue,
) -> events.Rule:
    """A rule ``construct_id`` in ``scope`` telling people, through ``topic``, when a job of ``monitor``'s schedules
    fails or is stopped (undelivered notices go to ``dead_letter_queue``).

    Each run of a monitoring schedule is a SageMaker processing job; SageMaker's "SageMaker Processing Job State
    Change" event carries the job's ``RoleArn``, and the four schedules of ``monitor``, and nothing else the app
    starts, run as its role (fixed name, so this rule may live in another stack). No documented field of that event
    names the schedule, so the message names the model, the endpoint and the four schedules, and gives the command that shows which
    schedule ran the job (``DescribeProcessingJob``'s ``MonitoringScheduleArn``), the one for its logs and the one
    listing the endpoint's failed monitoring executions. A run that fails before SageMaker creates its job sends no
    job event and is not told here.
    """
    endpoint, schedules = monitor.endpoint_name, ", ".join(monitor.schedule_names[k.key] for k in KINDS)
    role_arn = format_arn(scope, service="iam", region="", resource="role", resource_name=monitor.role_name)
    return notify_failed_jobs(
        scope, construct_id, kind="processing",
        description=f"Tell people when a native Model Monitor job of {monitor.model_name} fails or is stopped",
        match={"RoleArn": [role_arn]},
        message=lambda job: (
            f"{what} job {job.name} ended {job.status}: {job.reason}. Model {monitor.model_name}, endpoint {endpoint}, "
            f"schedules {schedules}. Schedule of this job: aws sagemaker describe-processing-job --processing-job-name "
            f"{job.name} --query MonitoringScheduleArn --region {job.region}. Logs: aws logs tail {job.log_group} "
            f"--log-stream-name-prefix {job.name}/ --since 2d --region {job.region}. Failed runs: aws sagemaker "
            f"list-monitoring-executions --endpoint-name {endpoint} --status-equals Failed --region {job.region}"),
        topic=topic, dead_letter_queue=dead_letter_queue)
