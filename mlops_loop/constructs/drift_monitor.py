"""Our own drift monitor, scheduled per model as a SageMaker Processing job (no Model Monitor needed)."""

from __future__ import annotations

from typing import Optional, Sequence

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from pipeline_code.core.contract import (
    DEFAULT_PROJECT,
    DRIFT_MONITOR_REPORTS,
    MODEL_TAG,
    TEAM_TAG,
    MONITOR_MAX_RUNTIME_SECONDS,
    MONITOR_RESULTS,
    PREDICTION_RECORDS,
    inference_prefix,
    monitor_label_window_hours,
    monitor_namespace,
    monitor_volume_gb,
)
from pipeline_code.core.integrity import model_prefix
from pipeline_code.core.problem import BINARY, REGRESSION, quality_alarm_key
from pipeline_code.sagemaker_entry import CODE_DIGEST_ENV, container_entrypoint

from ..config.gate import GateConfig
from ..config.model import ModelConfig
from ..config.monitoring import MonitoringConfig
from ..config.network import NetworkConfig
from ..naming import feature_snapshots_prefix
from .access_policy import PROCESSING_JOBS, AccessPolicy, sagemaker_log_groups
from .arns import any_sagemaker, format_arn, s3_url
from .cdk_reads import environment_of, read_once, stack_of
from .job_code import JobCode
from .network import allow_sagemaker_network_interfaces, vpc_config
from .scheduled_job import EXECUTION_ID, job_name_stem, scheduled_sagemaker_job
from .service_trust import sagemaker_principal
from .training_pipeline import ENTRY_SCRIPT, xgboost_image_uri, xgboost_repository

PROC_INPUT = "/opt/ml/processing/input"
REPORT_DIR = "/opt/ml/processing/output/monitor"
# The run's tables (predictions/ and monitor-results/ below it, each date=<day>/run=<execution id>/: monitor.table_path),
# each uploaded to its own prefix so that a Glue table's location holds only its files.
TABLES_DIR = "/opt/ml/processing/output/tables"
TABLE_OUTPUTS = (PREDICTION_RECORDS, MONITOR_RESULTS)
MAX_RUNTIME_SECONDS = MONITOR_MAX_RUNTIME_SECONDS


class DriftMonitor(Construct):
    """Runs ``pipeline_code.monitoring.monitor --from-s3`` for one model on ``settings.schedule``.

    EventBridge Scheduler starts a Processing job directly (universal target ``createProcessingJob``;
    the job name carries the schedule's execution id, so every run is unique). The job, in the stock
    XGBoost image with the job code as inputs, finds the version that serves from the serving
    stack's parameter, downloads that version's baselines and model, the last 24 hours of captured
    traffic (``capture/<model>/``; batch models: ``batch/<model>/`` inputs with their outputs; the last
    ``drift_window_days`` days when the model or ``settings`` sets more: each daily run then judges that many days,
    its drift, quality and expected requests alike), the
    ground-truth labels written in the last week (``labels/<model>/``) and the prediction records its earlier runs
    wrote over the model's ``label_delay_days`` (late labels are judged against them), each download capped at the
    model's ``monitor_max_window_gib`` (default 2 GiB; the job's volume holds all five at the cap plus 10 GB of working
    space, at least 30 GB: :func:`~pipeline_code.core.contract.monitor_volume_gb`), and publishes the drift, quality, bias and
    health metrics the loop's alarms watch, in the model's own namespace
    (``<project>/<environment>/<model>/monitoring``, the only one its role may publish in). Its JSON and HTML
    reports land under ``monitor/<model>/<execution id>/``, its prediction records and results (Parquet, the Glue tables
    ``predictions`` and ``monitor_results``) under ``predictions/<model>/`` and ``monitor-results/<model>/``, each
    ``date=<yyyy-mm-dd>/run=<execution id>/``. Before the first approval it reports
    "not serving" and stays healthy; any download or API failure makes the run *unhealthy* (an
    alarm for people), never a silent stop.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name_prefix: str,
        environment: str,
        model: ModelConfig,
        gate: GateConfig,
        mode: str,
        settings: MonitoringConfig,
        instance_type: str,
        serving_stack_name: str,
        package_group_name: str,
        inference_bucket: s3.IBucket,
        artifacts_bucket: s3.IBucket,
        key: kms.IKey,
        code: JobCode,
        dead_letter_queue: sqs.IQueue,
        feature_snapshots: Optional[s3.IBucket] = None,
        max_skew_rate: Optional[float] = None,
        project: str = DEFAULT_PROJECT,
        network: Optional[NetworkConfig] = None,
        tags: Sequence[tuple[str, str]] = (),
        endpoint_name: Optional[str] = None,
        capture_percent: int = 0,
        cli_config: Optional[str] = None,
    ) -> None:
        """``gate``: the gate ``model`` is judged by in this environment (``ModelConfig.gate_in``): the monitor compares
        its sensitive groups as that gate does (groups of ``min_group_rows``, a gap of at most
        ``max_demographic_parity_difference``, a regression model's error parity of at least ``min_disparate_impact``),
        so a model the gate passed is not judged on other bounds in production;
        ``feature_snapshots`` (the features bucket) with ``max_skew_rate``: the model is scored by id, and each
        run also compares the by-id records with its dataset's feature snapshots (training/serving skew);
        ``project`` (default: the default project): the job publishes its metrics in
        :func:`~pipeline_code.core.contract.monitor_namespace` of ``project``, ``environment`` and the model, and its role
        may publish there only;
        ``network`` (default None: AWS-managed networking): each run's job runs in these subnets and security groups;
        ``tags`` (default none): the environment's cost-allocation tags, which each run's job carries besides its
        model and job tags;
        ``dead_letter_queue``: where the schedule puts a run it could not start (no job, so no report: people hear of
        it from that queue's alarm; a job that started and failed, from ``scheduled_job.notify_job_failures``);
        ``endpoint_name`` (default None: neither check) with ``capture_percent`` (the model's ``data_capture_percent``):
        the endpoint that serves the model (real-time, serverless, async): each run asks SageMaker which version it
        really serves and CloudWatch how many requests it answered, against the stack's version and the capture
        (``pipeline_code.monitoring.serving_truth``). A batch model has no endpoint, and a multi-model endpoint chooses
        the version per request: both are refused; ``cli_config`` (default None: the default config, named by none):
        the ``--config`` of the rollback commands a run's report gives (``--cli-config``)."""
        super().__init__(scope, construct_id)
        if (feature_snapshots is None) != (max_skew_rate is None):
            raise ValueError("DriftMonitor: feature_snapshots and max_skew_rate go together (the skew check needs both)")
        if endpoint_name is not None and mode in ("batch", "multi_model"):
            raise ValueError(f"DriftMonitor: model {model.name!r} is served in mode {mode!r}, which has no endpoint of its own "
                             "to check (batch: none; multi_model: the version is chosen per request); give endpoint_name=None")
        stack = stack_of(self, scope)
        model_name = model.name
        bucket = read_once(inference_bucket, "bucket_name")
        entry = code.script(ENTRY_SCRIPT)

        self.role = iam.Role(
            self,
            "Role",
            # Only ever a processing job (started by the schedule): a documented source.
            assumed_by=sagemaker_principal(self, uses=("processing-job",)),
            description=f"{name_prefix}: drift monitor of {model_name}",
        )
        access = AccessPolicy(self, "Access", role=self.role, description=f"{name_prefix} {model_name} monitor")
        code.grant_read(access, listing=True)
        spec = code.grant_model_spec(access, model)
        traffic = "batch" if mode == "batch" else "capture"
        # Days of traffic each run judges (monitoring.drift_window_days; the model's own over the environment's).
        window_days = model.drift_window_days_in(settings)
        access.allow_prefix("ReadTraffic", inference_bucket, inference_prefix(model_name, traffic))
        access.allow_prefix("ReadLabels", inference_bucket, inference_prefix(model_name, "labels"))
        # Each run's reports and prediction records go to a prefix of their own (monitor/<model>/<execution id>/,
        # uploaded by SageMaker at the end of the job); the state is read back from them, never rewritten. So the
        # job may add, not delete: they are the record of how the model did, which the bucket keeps (DataLake).
        access.allow_prefix("Reports", inference_bucket, inference_prefix(model_name, DRIFT_MONITOR_REPORTS), write=True,
                            delete=False)
        # Its tables (predictions/<model>/, monitor-results/<model>/: date=<day>/run=<execution id>/), alike: the
        # earlier runs' records are read back from predictions/ (late labels), never rewritten.
        for what in TABLE_OUTPUTS:
            access.allow_prefix(f"Table{''.join(p.title() for p in what.split('-'))}", inference_bucket,
                                inference_prefix(model_name, what), write=True, delete=False)
        # Baselines, evaluation report and model.tar.gz of whichever version serves.
        access.allow_prefix("ReadVersions", artifacts_bucket, model_prefix(model_name))
        access.allow_key("DataKey", key)
        access.allow(
            "FindServingVersion",
            ["cloudformation:DescribeStacks"],
            [format_arn(stack, service="cloudformation", resource="stack", resource_name=f"{serving_stack_name}/*")],
            wildcard_reason="A stack ARN ends in an id CloudFormation assigns at creation; the name pins the serving stack.",
        )
        access.allow(
            "ReadVersion",
            ["sagemaker:DescribeModelPackage"],
            [format_arn(stack, service="sagemaker", resource="model-package", resource_name=f"{package_group_name.lower()}/*")],
            wildcard_reason="Whichever version of this model's group serves; only that group.",
        )
        # This model's namespace in this environment, exactly: IAM has no condition on dimensions, so only the namespace
        # keeps the job off another model's (or environment's) series, whose retrain and health alarms it would move.
        self.metric_namespace = monitor_namespace(project, environment, model_name)
        access.allow_metrics("PublishMetrics", self.metric_namespace,
                             limited_to="the monitor's own metrics (its model and environment)")
        if endpoint_name is not None:
            _allow_endpoint_checks(access, stack, endpoint_name)
        # SageMaker writes the job's logs and publishes its instance metrics as this role: the processing jobs' log
        # group (itself too: CreateLogGroup, where no processing job ran in the account yet) and namespace only.
        access.allow_metrics("JobMetrics", PROCESSING_JOBS, limited_to="SageMaker's processing job metrics")
        access.allow_container_runtime(repository=xgboost_repository(self), log_groups=sagemaker_log_groups(PROCESSING_JOBS))
        if network is not None:
            allow_sagemaker_network_interfaces(access, network)

        # Unique per run and at most 63 characters: a stable stem (IAM scoping) + the execution id.
        stem = job_name_stem("processing", name_prefix, model_name)
        self.job_name_prefix = stem
        s3_prefix = f"s3://{bucket}/"
        traffic_flag = "--batch-s3-uri" if mode == "batch" else "--capture-s3-uri"
        arguments = [
            "pipeline_code.monitoring.monitor",
            # Single-file assets keep their content-hashed object name when downloaded.
            "--model-spec", f"{PROC_INPUT}/model_spec/{_basename(read_once(spec, 's3_object_key'))}",
            "--from-s3",
            "--serving-stack", serving_stack_name,
            "--model", model_name,
            traffic_flag, f"{s3_prefix}{inference_prefix(model_name, traffic)}",
            "--labels-s3-uri", f"{s3_prefix}{inference_prefix(model_name, 'labels')}",
            # The earlier runs' reports (this job's own output prefix): the slow-drift state and the report's trend.
            "--history-s3-uri", f"{s3_prefix}{inference_prefix(model_name, 'monitor')}",
            "--window-hours", str(24 * window_days),
            "--label-window-hours", f"{monitor_label_window_hours(window_days):g}",
            "--environment", environment,
            # Set only for an app of another config than the default, whose templates it then changes alone.
            *(["--cli-config", cli_config] if cli_config else []),
            "--psi-threshold", str(settings.psi_threshold),
            "--false-alarm-rate", str(settings.false_alarm_rate),
            "--ks-p-value", str(settings.ks_p_value),
            "--max-auc-drop", str(settings.max_auc_drop),
            "--max-malformed-rate", str(settings.max_malformed_rate),
            "--max-refused-rate", str(settings.max_refused_rate),
            "--max-dpd", str(gate.max_demographic_parity_difference),
            "--min-group-rows", str(gate.min_group_rows),
            "--publish-metrics",
            "--metric-namespace", self.metric_namespace,
            "--region", environment_of(stack).region,
            "--output-dir", REPORT_DIR,
            # The run's prediction records and results in the Glue tables' layout (date=<day>/run=<execution id>/).
            "--tables-dir", TABLES_DIR,
            "--run-id", EXECUTION_ID,
        ]  # fmt: skip
        if model.problem_type != BINARY or quality_alarm_key(model.problem_type, model.primary_metric) == "quality_drop":
            # The drop of the primary metric the report judges (a binary model judged on AUC: its AUC drop alone).
            arguments += ["--max-quality-drop", str(settings.max_quality_drop)]
        # What the model's config sets of its drift judgement (models.<name>.monitoring; none by default): per-feature
        # material PSI, features reported but never judged, predictions reported only (a seasonal model).
        arguments += model.monitoring.monitor_arguments()
        if model.problem_type == REGRESSION:
            # Its error parity is held to the gate's minimum too (a classifier's disparate impact is reported only).
            arguments += ["--min-di", str(gate.min_disparate_impact)]
        if feature_snapshots is not None:
            snapshots = feature_snapshots_prefix(model.dataset)
            access.allow_prefix("ReadFeatureSnapshots", feature_snapshots, snapshots)
            arguments += ["--feature-snapshots-s3-uri", s3_url(read_once(feature_snapshots, "bucket_name"), snapshots),
                          "--max-skew-rate", str(max_skew_rate)]
        if endpoint_name is not None:
            # What the endpoint really serves, and its requests against the capture (serving_truth).
            arguments += ["--endpoint-name", endpoint_name, "--capture-percent", str(capture_percent)]
        if model.min_daily_requests:
            # Traffic is expected: a window with less of it is unhealthy (default: a quiet window is quiet).
            # min_daily_requests is per day: a window of several days expects that many each day.
            arguments += ["--min-requests", str(model.min_daily_requests * window_days)]
        # Labels come up to this long after their request: each run records its window's predictions (predictions/,
        # beside its report under monitor/ before the tables) and joins the labels of the label window to the records
        # of that many days back.
        arguments += ["--label-delay-days", str(model.label_delay_days),
                      # ... read back from the tables' prefix (and monitor/, where runs before it wrote them).
                      "--records-s3-uri", f"{s3_prefix}{inference_prefix(model_name, PREDICTION_RECORDS)}"]
        # The cap of each download (models.<name>.monitor_max_window_gib): the volume below holds all of them at it.
        arguments += ["--max-window-bytes", str(model.monitor_max_window_bytes)]

        def code_input(name: str, uri: str) -> dict:
            return {
                "InputName": name,
                "S3Input": {
                    "S3Uri": uri,
                    "LocalPath": f"{PROC_INPUT}/{name}",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                    "S3DataDistributionType": "FullyReplicated",
                },
            }

        request = {
            "ProcessingJobName": f"{stem}-{EXECUTION_ID}",
            "RoleArn": read_once(self.role, "role_arn"),
            "AppSpecification": {
                "ImageUri": xgboost_image_uri(environment_of(stack).region),
                # The entry script runs only if its bytes are the ones synth hashed (the check inline, here).
                "ContainerEntrypoint": container_entrypoint(f"{PROC_INPUT}/entry/{_basename(read_once(entry, 's3_object_key'))}",
                                                            code.script_sha256(ENTRY_SCRIPT)),
                "ContainerArguments": arguments,
            },
            # The entry script runs nothing of the "lib" zip unless its files have the digest synth computed.
            "Environment": {CODE_DIGEST_ENV: code.library_sha256},
            "ProcessingInputs": [
                code_input("entry", read_once(entry, "s3_object_url")),
                code_input("lib", read_once(code.library, "s3_object_url")),
                code_input("model_spec", read_once(spec, "s3_object_url")),
            ],
            "ProcessingOutputConfig": {
                "KmsKeyId": read_once(key, "key_arn"),
                "Outputs": [
                    {
                        "OutputName": "monitor",
                        "S3Output": {
                            "S3Uri": f"{s3_prefix}{inference_prefix(model_name, 'monitor')}{EXECUTION_ID}/",
                            "LocalPath": REPORT_DIR,
                            "S3UploadMode": "EndOfJob",
                        },
                    },
                    *({
                        "OutputName": what,
                        "S3Output": {
                            "S3Uri": f"{s3_prefix}{inference_prefix(model_name, what)}",
                            "LocalPath": f"{TABLES_DIR}/{what}",
                            "S3UploadMode": "EndOfJob",
                        },
                    } for what in TABLE_OUTPUTS),
                ],
            },
            "ProcessingResources": {
                "ClusterConfig": {
                    "InstanceCount": 1,
                    "InstanceType": instance_type,
                    "VolumeSizeInGB": monitor_volume_gb(model.monitor_max_window_bytes),
                    "VolumeKmsKeyId": read_once(key, "key_arn"),
                }
            },
            "StoppingCondition": {"MaxRuntimeInSeconds": MAX_RUNTIME_SECONDS},
            # The job calls CloudFormation, SageMaker, S3 and CloudWatch: no network isolation.
            "NetworkConfig": {"EnableInterContainerTrafficEncryption": True, "EnableNetworkIsolation": False,
                              **({"VpcConfig": vpc_config(network)} if network is not None else {})},
            "Tags": [{"Key": MODEL_TAG, "Value": model_name}, {"Key": "mlops-loop:job", "Value": "monitor"},
                     *([{"Key": TEAM_TAG, "Value": model.owner.team}] if model.owner else [])],
        }
        self.schedule = scheduled_sagemaker_job(
            self,
            kind="processing",
            stem=stem,
            request=request,
            expression=settings.schedule,
            job_role=self.role,
            key=key,
            dead_letter_queue=dead_letter_queue,
            description=f"Drift monitor of {model_name}",
            role_description=f"{name_prefix}: scheduled drift monitor of {model_name}",
            tags=tags,
        ).schedule
        self.schedule.node.add_dependency(access)


def _allow_endpoint_checks(access: AccessPolicy, stack: Stack, endpoint_name: str) -> None:
    """Describe ``endpoint_name`` down to its models' packages, and read its request count."""
    access.allow(
        "DescribeServingEndpoint",
        ["sagemaker:DescribeEndpoint"],
        # SageMaker ARNs carry resource names in lower case.
        [format_arn(stack, service="sagemaker", resource="endpoint", resource_name=endpoint_name.lower())],
    )
    access.allow(
        "DescribeServingModels",
        ["sagemaker:DescribeEndpointConfig", "sagemaker:DescribeModel"],
        any_sagemaker(stack, "endpoint-config", "model"),
        wildcard_reason="CloudFormation names each version's endpoint config and model at deploy time (and a hand-made "
        "one has any name); the job only reads the ones its endpoint names, to find the model package that serves.",
    )
    access.allow(
        "ReadEndpointRequests",
        ["cloudwatch:GetMetricStatistics"],
        ["*"],
        wildcard_reason="GetMetricStatistics has no resource-level permissions and no namespace condition key; read "
        "only: the job reads its endpoint's AWS/SageMaker request count to tell lost capture from a quiet day.",
    )


def _basename(object_key: str) -> str:
    """The file name a single-file asset gets when SageMaker downloads its object."""
    if "${Token" in object_key:
        raise ValueError(f"asset object key {object_key!r} is not known at synth; the job needs its file name")
    return object_key.rsplit("/", 1)[-1]
