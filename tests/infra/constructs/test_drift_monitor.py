"""DriftMonitor, built in a bare stack: a scheduled Processing job judging one model on its own traffic and labels.

The models are declared here (a small dataset with a binary and a numeric label), not read from
config/mlops-loop.yaml, so the tests do not depend on the sample model line-up.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest
from aws_cdk import Environment, LegacyStackSynthesizer, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs

from mlops_loop.app_builder import new_app
from pipeline_code.core.contract import DEFAULT_LABEL_DELAY_DAYS, DEFAULT_MONITOR_WINDOW_GIB, GIB
from mlops_loop.config import ModelConfig, parse_config
from mlops_loop.config.gate import GateConfig
from mlops_loop.config.monitoring import MonitoringConfig
from mlops_loop.constructs.drift_monitor import DriftMonitor
from mlops_loop.constructs.job_code import REPO_ROOT, JobCode, library_digest
from pipeline_code.monitoring import monitor
from pipeline_code.sagemaker_entry import ENTRY_CHECK
from mlops_loop.constructs.scheduled_job import EXECUTION_ID, job_name_stem
from tests.support.built_stack import scheduled_request
from tests.support.cdk_outdirs import bare_outdir
from tests.support.templates import of_type, template_of
from tests.support.construct_configs import (ORDERS, assert_sagemaker_eni_statements, network_config,
                                             vpc_config_of_network, vpc_statements_of)

PREFIX = "shop-dev"
INFERENCE, ARTIFACTS = "shop-dev-inference", "shop-dev-artifacts"
ASSETS = "cdk-hnb659fds-assets-123456789012-eu-west-1"
RAW_CONFIG = {
    "project": "shop",
    # The shared test dataset with a second label, for the regression model.
    "datasets": {"orders": {**ORDERS, "labels": [*ORDERS["labels"], "basket_value"],
                            "columns": {**ORDERS["columns"], "basket_value": {"type": "double", "min": 0}}}},
    "models": {
        # Binary, no traffic expected: a quiet day is quiet.
        "returns": {"dataset": "orders", "target": "returned", "features": ["items"], "sensitive_attribute": "channel"},
        # Binary, judged on PR-AUC: its report judges that metric's drop too.
        "rare-returns": {"dataset": "orders", "target": "returned", "features": ["items"], "sensitive_attribute": "channel",
                         "primary_metric": "pr_auc"},
        # Regression, 500 requests a day expected, its label up to 90 days after the request, downloads of up to 8 GiB.
        "basket": {"dataset": "orders", "target": "basket_value", "features": ["items"], "sensitive_attribute": "channel",
                   "problem_type": "regression", "min_daily_requests": 500, "label_delay_days": 90,
                   "monitor_max_window_gib": 8},
    },
    "environments": {"dev": {"tier": "dev", "account": "123456789012", "region": "eu-west-1", "models": ["returns", "rare-returns", "basket"]}},
}
MODELS: dict[str, ModelConfig] = parse_config(RAW_CONFIG, source="drift monitor test config").models
SETTINGS = MonitoringConfig(schedule="cron(0 5 * * ? *)", psi_threshold=0.3, false_alarm_rate=0.02, max_auc_drop=0.04,
                            max_quality_drop=0.15, ks_p_value=0.005, max_malformed_rate=0.05, max_refused_rate=0.2)


def _monitor(model: str | ModelConfig = "returns", *, mode: str = "realtime", stack: Stack | None = None,
             gate: GateConfig = GateConfig(), settings: MonitoringConfig = SETTINGS, **props: Any) -> tuple[Stack, DriftMonitor]:
    """GIVEN a bare stack with a key, the two buckets and the job code WHEN a drift monitor of ``model`` is added
    (``props``: more of its props, e.g. the feature_snapshots / max_skew_rate of a model scored by id, or tags)."""
    stack = stack or Stack(new_app(bare_outdir()), "Bare", env=Environment(account="123456789012", region="eu-west-1"))
    monitor = DriftMonitor(
        stack, "Monitor", name_prefix=PREFIX, environment="dev", model=MODELS[model] if isinstance(model, str) else model,
        gate=gate, mode=mode, settings=settings,
        instance_type="ml.m5.large", serving_stack_name="shop-dev-serving", package_group_name="Shop-Dev-Returns",
        inference_bucket=s3.Bucket.from_bucket_name(stack, "Inference", INFERENCE),
        artifacts_bucket=s3.Bucket.from_bucket_name(stack, "Artifacts", ARTIFACTS),
        key=kms.Key(stack, "Key"), code=JobCode(stack, "Code"),
        dead_letter_queue=sqs.Queue(stack, "ScheduleDeadLetters", encryption=sqs.QueueEncryption.KMS,
                                    encryption_master_key=kms.Key(stack, "OpsKey")), **props,
    )
    return stack, monitor


@pytest.fixture(scope="module")
def returns_monitor() -> tuple[Stack, DriftMonitor]:
    """The drift monitor of ``returns`` as :func:`_monitor` adds it by default, built once for the tests that read it."""
    return _monitor()


def _schedule(stack: Stack) -> tuple[dict, dict]:
    """The schedule resource and the CreateProcessingJob request it sends, parsed."""
    (schedule,) = of_type(template_of(stack), "AWS::Scheduler::Schedule").values()
    return schedule, scheduled_request(schedule)


def _arguments(request: dict) -> dict[str, Any]:
    """The container arguments as ``--flag -> value`` (``True`` for a flag without a value)."""
    args = request["AppSpecification"]["ContainerArguments"][1:]
    parsed, i = {}, 0
    while i < len(args):
        if i + 1 < len(args) and not args[i + 1].startswith("--"):
            parsed[args[i]], i = args[i + 1], i + 2
        else:
            parsed[args[i]], i = True, i + 1
    return parsed


def _statements(stack: Stack) -> dict[str, dict]:
    """Every statement of the monitor role's access policy, by Sid (across its parts: a large policy is split)."""
    policies = [p for k, p in of_type(template_of(stack), "AWS::IAM::ManagedPolicy").items() if k.startswith("MonitorAccess")]
    return {s["Sid"]: s for policy in policies for s in policy["Properties"]["PolicyDocument"]["Statement"]}


def test_each_run_starts_a_processing_job_named_after_the_models_stem_and_the_execution_id(returns_monitor):
    stack, monitor = returns_monitor
    schedule, request = _schedule(stack)
    stem = job_name_stem("processing", PREFIX, "returns")
    assert monitor.job_name_prefix == stem
    assert request["ProcessingJobName"] == f"{stem}-{EXECUTION_ID}"
    assert schedule["Properties"]["ScheduleExpression"] == "cron(0 5 * * ? *)"
    assert schedule["Properties"]["Target"]["Arn"] == "arn:aws:scheduler:::aws-sdk:sagemaker:createProcessingJob"
    assert request["RoleArn"] == "${%s.Arn}" % stack.get_logical_id(monitor.role.node.default_child)
    assert request["Tags"] == [{"Key": "mlops-loop:model", "Value": "returns"}, {"Key": "mlops-loop:job", "Value": "monitor"}]


def test_given_the_environments_tags_each_runs_job_carries_them_before_its_model_and_job_tags():
    stack = Stack(new_app(bare_outdir()), "Bare", env=Environment(account="123456789012", region="eu-west-1"))
    tags = (("project", "shop"), ("environment", "dev"), ("tier", "dev"))
    _monitor(stack=stack, tags=tags)
    _, request = _schedule(stack)
    assert request["Tags"] == [*({"Key": k, "Value": v} for k, v in tags),
                               {"Key": "mlops-loop:model", "Value": "returns"}, {"Key": "mlops-loop:job", "Value": "monitor"}]


def test_the_job_judges_the_models_captured_traffic_and_labels_and_keeps_reports_per_run(returns_monitor):
    stack, _ = returns_monitor
    _, request = _schedule(stack)
    args = _arguments(request)
    assert request["AppSpecification"]["ContainerArguments"][0] == "pipeline_code.monitoring.monitor"
    assert args["--model"] == "returns" and args["--serving-stack"] == "shop-dev-serving" and args["--from-s3"] is True
    assert args["--capture-s3-uri"] == f"s3://{INFERENCE}/capture/returns/" and "--batch-s3-uri" not in args
    assert args["--labels-s3-uri"] == f"s3://{INFERENCE}/labels/returns/"
    assert args["--history-s3-uri"] == f"s3://{INFERENCE}/monitor/returns/"
    assert (args["--window-hours"], args["--label-window-hours"]) == ("24", "168")
    assert args["--publish-metrics"] is True and args["--region"] == "eu-west-1" and args["--environment"] == "dev"
    output, *tables = request["ProcessingOutputConfig"]["Outputs"]
    assert output["S3Output"]["S3Uri"] == f"s3://{INFERENCE}/monitor/returns/{EXECUTION_ID}/"
    assert output["S3Output"]["LocalPath"] == args["--output-dir"] == "/opt/ml/processing/output/monitor"
    # its tables, each to its own prefix (date=<day>/run=<execution id>/ below it, written by the job)
    assert [(t["OutputName"], t["S3Output"]["S3Uri"], t["S3Output"]["LocalPath"]) for t in tables] == [
        (what, f"s3://{INFERENCE}/{what}/returns/", f"{args['--tables-dir']}/{what}")
        for what in ("predictions", "monitor-results")]
    assert args["--run-id"] == EXECUTION_ID and args["--records-s3-uri"] == f"s3://{INFERENCE}/predictions/returns/"


def test_a_batch_model_is_judged_on_its_batch_inputs_and_outputs():
    stack, _ = _monitor(mode="batch")
    _, request = _schedule(stack)
    args = _arguments(request)
    assert args["--batch-s3-uri"] == f"s3://{INFERENCE}/batch/returns/" and "--capture-s3-uri" not in args
    assert _statements(stack)["ReadTraffic"]["Resource"] == f"arn:aws:s3:::{INFERENCE}/batch/returns/*"


def test_the_thresholds_are_the_environments_monitoring_settings(returns_monitor):
    stack, _ = returns_monitor
    args = _arguments(_schedule(stack)[1])
    assert {k: args[k] for k in ("--psi-threshold", "--false-alarm-rate", "--ks-p-value", "--max-auc-drop",
                                 "--max-malformed-rate", "--max-refused-rate")} == {
        "--psi-threshold": "0.3", "--false-alarm-rate": "0.02", "--ks-p-value": "0.005", "--max-auc-drop": "0.04",
        "--max-malformed-rate": "0.05", "--max-refused-rate": "0.2"}


def test_the_sensitive_groups_are_judged_as_the_models_gate_judges_them():
    """GIVEN the gate the model is judged by (its own keys over the environment's) WHEN its monitor is built THEN each run
    compares groups of the gate's size against the gate's largest gap, not the monitor's own defaults."""
    gate = GateConfig(max_demographic_parity_difference=0.2, min_group_rows=250, min_disparate_impact=0.7)
    args = _arguments(_schedule(_monitor("basket", gate=gate)[0])[1])
    assert (args["--max-dpd"], args["--min-group-rows"], args["--min-di"]) == ("0.2", "250", "0.7")
    # A classifier's disparate impact is reported, not judged: its monitor is not given the minimum
    assert "--min-di" not in _arguments(_schedule(_monitor("returns", gate=gate)[0])[1])


def test_a_binary_model_without_expected_traffic_gets_no_quality_drop_or_minimum_requests(returns_monitor):
    args = _arguments(_schedule(returns_monitor[0])[1])
    assert "--max-quality-drop" not in args and "--min-requests" not in args


def test_a_binary_model_judged_on_another_metric_than_auc_is_judged_on_its_quality_drop():
    # The monitor fails it on the primary metric's drop at the limit its retrain alarm fires at (QualityDrop)
    args = _arguments(_schedule(_monitor("rare-returns")[0])[1])
    assert args["--max-quality-drop"] == "0.15"


def test_a_regression_model_is_judged_on_its_quality_drop_and_a_quiet_day_is_unhealthy():
    args = _arguments(_schedule(_monitor("basket")[0])[1])
    assert args["--max-quality-drop"] == "0.15"
    assert args["--min-requests"] == "500"


def test_a_drift_window_of_several_days_makes_each_daily_run_judge_that_many_days_and_expect_their_requests():
    """GIVEN an environment whose drift window is 7 days, and a model that sets 3 over it WHEN their monitors are built
    THEN each run reads that many days of traffic (still daily: the schedule is unchanged) and expects the model's
    daily requests on each of them."""
    weekly = SETTINGS.model_copy(update={"drift_window_days": 7})
    schedule, request = _schedule(_monitor("basket", settings=weekly)[0])
    args = _arguments(request)
    assert (args["--window-hours"], args["--min-requests"]) == ("168", "3500")
    assert args["--label-window-hours"] == "168"
    assert schedule["Properties"]["ScheduleExpression"] == SETTINGS.schedule
    own = MODELS["basket"].model_copy(update={"drift_window_days": 3})
    args = _arguments(_schedule(_monitor(own, settings=weekly)[0])[1])
    assert (args["--window-hours"], args["--min-requests"]) == ("72", "1500")


def test_a_drift_window_longer_than_the_label_window_reads_the_labels_of_every_day_it_judges():
    """GIVEN a 14-day drift window WHEN its monitor is built THEN each run reads the labels of those 14 days: with the
    7-day label window the window's older days would be judged on their last week's labels alone (of a model whose
    labels come late, the late ones: a biased slice) and counted as unlabelled."""
    args = _arguments(_schedule(_monitor("basket", settings=SETTINGS.model_copy(update={"drift_window_days": 14}))[0])[1])
    assert (args["--window-hours"], args["--label-window-hours"]) == ("336", "336")


def test_each_run_looks_back_as_far_as_the_models_labels_come_late(returns_monitor):
    """GIVEN a model whose label comes up to 90 days after its request, and one that declares none WHEN their monitors
    are built THEN each run is told the delay (the default's for the other): it records its window's predictions under
    its own output prefix, which its role already reads and writes (no other grant)."""
    assert _arguments(_schedule(_monitor("basket")[0])[1])["--label-delay-days"] == "90"
    stack, _ = returns_monitor
    assert _arguments(_schedule(stack)[1])["--label-delay-days"] == str(DEFAULT_LABEL_DELAY_DAYS)
    assert _statements(stack)["Reports"]["Resource"] == f"arn:aws:s3:::{INFERENCE}/monitor/returns/*"


def test_each_download_is_capped_as_the_model_says_and_the_volume_holds_all_of_them_at_the_cap(returns_monitor):
    """GIVEN a model whose monitor may download 8 GiB a window, and one that sets no cap WHEN their monitors are built
    THEN each run is given its cap in bytes (the default's 2 GiB for the other), and the job's volume holds the five
    downloads at the cap plus 10 GB of working space (8 GiB: 5 x 8.59 GB -> 43 + 10 = 53 GB), never below the 30 GB
    the default cap gets."""
    _, request = _schedule(_monitor("basket")[0])
    assert _arguments(request)["--max-window-bytes"] == str(8 * GIB)
    assert request["ProcessingResources"]["ClusterConfig"]["VolumeSizeInGB"] == 53
    _, request = _schedule(returns_monitor[0])
    assert _arguments(request)["--max-window-bytes"] == str(DEFAULT_MONITOR_WINDOW_GIB * GIB)
    assert request["ProcessingResources"]["ClusterConfig"]["VolumeSizeInGB"] == 30


def test_the_job_runs_the_entry_script_with_the_job_code_and_the_model_spec_as_inputs(returns_monitor):
    stack, _ = returns_monitor
    _, request = _schedule(stack)
    inputs = {i["InputName"]: i["S3Input"] for i in request["ProcessingInputs"]}
    assert list(inputs) == ["entry", "lib", "model_spec"]
    assert all(i["LocalPath"] == f"/opt/ml/processing/input/{name}" for name, i in inputs.items())
    assert all(i["S3Uri"].startswith(f"s3://{ASSETS}/") for i in inputs.values())
    entry, spec = inputs["entry"]["S3Uri"].rsplit("/", 1)[1], inputs["model_spec"]["S3Uri"].rsplit("/", 1)[1]
    assert re.fullmatch(r"[0-9a-f]{64}\.py", entry) and re.fullmatch(r"[0-9a-f]{64}\.json", spec)
    # A single-file asset keeps its object name when SageMaker downloads it.
    # ... run only if its bytes are the entry script synth hashed (the check inline, in the schedule's request).
    entry_sha256 = hashlib.sha256((REPO_ROOT / "pipeline_code" / "sagemaker_entry.py").read_bytes()).hexdigest()
    assert request["AppSpecification"]["ContainerEntrypoint"] == [
        "python3", "-c", ENTRY_CHECK, f"/opt/ml/processing/input/entry/{entry}", entry_sha256]
    assert _arguments(request)["--model-spec"] == f"/opt/ml/processing/input/model_spec/{spec}"
    # ... which runs nothing of the zip unless its files have the digest synth computed of the job code.
    assert request["Environment"] == {"MLOPS_LOOP_CODE_SHA256": library_digest()}
    # The stock XGBoost image of the stack's region (the job code comes as inputs, not in an image of its own).
    assert re.fullmatch(r"\d{12}\.dkr\.ecr\.eu-west-1\.amazonaws\.com/sagemaker-xgboost:[\w.-]+", request["AppSpecification"]["ImageUri"])


def test_outputs_and_volume_use_the_key_and_a_run_is_bounded_and_not_isolated(returns_monitor):
    stack, _ = returns_monitor
    _, request = _schedule(stack)
    key = "${%s.Arn}" % stack.get_logical_id(stack.node.find_child("Key").node.default_child)
    assert request["ProcessingOutputConfig"]["KmsKeyId"] == key
    assert request["ProcessingResources"]["ClusterConfig"] == {
        "InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30, "VolumeKmsKeyId": key}
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 7200}
    # It calls CloudFormation, SageMaker, S3 and CloudWatch.
    assert request["NetworkConfig"] == {"EnableInterContainerTrafficEncryption": True, "EnableNetworkIsolation": False}


def test_only_sagemaker_running_a_job_of_this_account_and_region_may_assume_the_role(returns_monitor):
    """GIVEN a drift monitor WHEN its role's trust is read THEN SageMaker may assume it only with an aws:SourceArn
    of this account and Region (a processing job's, the source SageMaker documents for processing jobs)."""
    stack, monitor = returns_monitor
    role = of_type(template_of(stack), "AWS::IAM::Role")[stack.get_logical_id(monitor.role.node.default_child)]
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [{"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"},
         "Condition": {"ArnLike": {"aws:SourceArn": "arn:aws:sagemaker:eu-west-1:123456789012:*"}}}]


def test_the_role_reads_only_its_models_data_and_writes_only_its_reports(returns_monitor):
    stack, _ = returns_monitor
    statements = _statements(stack)
    assert statements["ReadTraffic"]["Resource"] == f"arn:aws:s3:::{INFERENCE}/capture/returns/*"
    assert statements["ReadLabels"]["Resource"] == f"arn:aws:s3:::{INFERENCE}/labels/returns/*"
    assert statements["ReadVersions"]["Resource"] == f"arn:aws:s3:::{ARTIFACTS}/pipelines/returns/*"
    assert statements["Reports"]["Resource"] == f"arn:aws:s3:::{INFERENCE}/monitor/returns/*"
    writers = {sid: s["Resource"] for sid, s in statements.items() if "s3:PutObject" in s["Action"]}
    assert writers == {"Reports": f"arn:aws:s3:::{INFERENCE}/monitor/returns/*",
                       "TablePredictions": f"arn:aws:s3:::{INFERENCE}/predictions/returns/*",
                       "TableMonitorResults": f"arn:aws:s3:::{INFERENCE}/monitor-results/returns/*"}
    assert not any("s3:DeleteObject" in s["Action"] for s in statements.values() if s["Resource"] in writers.values())
    assert re.fullmatch(rf"arn:aws:s3:::{ASSETS}/[0-9a-f]{{64}}\.json", statements["ReadModelSpec"]["Resource"])


def test_the_role_finds_the_serving_version_in_its_own_group_and_publishes_only_monitor_metrics(returns_monitor):
    stack, _ = returns_monitor
    statements = _statements(stack)
    assert statements["FindServingVersion"]["Resource"] == "arn:aws:cloudformation:eu-west-1:123456789012:stack/shop-dev-serving/*"
    assert statements["FindServingVersion"]["Action"] == "cloudformation:DescribeStacks"
    # Package ARNs are lower case whatever the group's spelling.
    assert statements["ReadVersion"]["Resource"] == "arn:aws:sagemaker:eu-west-1:123456789012:model-package/shop-dev-returns/*"
    # Its own model's namespace in its own environment, exactly: no other model's or environment's series.
    assert statements["PublishMetrics"]["Condition"] == {"StringEquals": {"cloudwatch:namespace": "mlops-loop/dev/returns/monitoring"}}
    # SageMaker logs and publishes the job's instance metrics as the role: the processing jobs' group and namespace only.
    assert statements["Logs"]["Resource"] == ["arn:aws:logs:eu-west-1:123456789012:log-group:/aws/sagemaker/ProcessingJobs",
                                              "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/sagemaker/ProcessingJobs:*"]
    assert statements["JobMetrics"]["Condition"] == {"StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/ProcessingJobs"}}


def test_a_models_monitor_publishes_into_its_own_namespace_and_may_publish_only_there():
    # GIVEN the monitors of two models of project "acme" (other models, environments and projects may share the account)
    other = next(name for name in MODELS if name != "returns")
    for model in ("returns", other):
        stack, monitor = _monitor(model, project="acme")
        _, request = _schedule(stack)
        # THEN each job publishes into its own model's namespace in its environment, and its role may publish nowhere
        # else (IAM has no condition on dimensions: the namespace is what keeps it off another model's series)
        assert monitor.metric_namespace == f"acme/dev/{model}/monitoring"
        assert _arguments(request)["--metric-namespace"] == monitor.metric_namespace
        assert _statements(stack)["PublishMetrics"]["Condition"] == {
            "StringEquals": {"cloudwatch:namespace": monitor.metric_namespace}}


def test_the_schedule_is_created_after_the_job_roles_policy(returns_monitor):
    stack, monitor = returns_monitor
    schedule, _ = _schedule(stack)
    access = stack.get_logical_id(monitor.node.find_child("Access").managed_policy)
    assert access in schedule["DependsOn"]


def test_a_run_the_schedule_cannot_start_goes_to_the_dead_letter_queue_it_is_given(returns_monitor):
    """GIVEN a monitor WHEN its CreateProcessingJob is refused (quota, permission) after the retries THEN the run is put
    into the queue, not dropped: no job means no report, so nothing else would tell anyone."""
    stack, _ = returns_monitor
    schedule, _ = _schedule(stack)
    queue = stack.get_logical_id(stack.node.find_child("ScheduleDeadLetters").node.default_child)
    assert schedule["Properties"]["Target"]["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [queue, "Arn"]}}


def test_asset_object_keys_unknown_at_synth_are_refused():
    """GIVEN a synthesizer whose asset keys are stack parameters THEN the job cannot name its script's file: refused."""
    stack = Stack(new_app(bare_outdir()), "Legacy", env=Environment(account="123456789012", region="eu-west-1"),
                  synthesizer=LegacyStackSynthesizer())
    with pytest.raises(ValueError, match=r"^asset object key '(\$\{Token\[[A-Z.0-9]+\]\})+' is not known at synth; "
                                         r"the job needs its file name$"):
        _monitor(stack=stack)


FEATURES = "shop-dev-features-123456789012-eu-west-1"


def _features(stack: Stack) -> s3.IBucket:
    return s3.Bucket.from_bucket_name(stack, "Features", FEATURES)


def test_a_model_scored_by_id_is_also_checked_for_skew_against_its_datasets_snapshots():
    # GIVEN a bare stack WHEN the monitor of a model scored by id is given the features bucket and a skew limit
    stack = Stack(new_app(bare_outdir()), "Bare", env=Environment(account="123456789012", region="eu-west-1"))
    _monitor(stack=stack, feature_snapshots=_features(stack), max_skew_rate=0.02)
    _, request = _schedule(stack)
    arguments, statements = _arguments(request), _statements(stack)
    # THEN each run downloads the dataset's snapshots and judges the skew against the limit
    assert arguments["--feature-snapshots-s3-uri"] == f"s3://{FEATURES}/snapshots/orders/"
    assert arguments["--max-skew-rate"] == "0.02"
    # AND its role may read (and list) exactly those snapshots, and write nothing there
    assert statements["ReadFeatureSnapshots"]["Resource"] == f"arn:aws:s3:::{FEATURES}/snapshots/orders/*"
    assert statements["ReadFeatureSnapshotsList"]["Condition"] == {"StringLike": {"s3:prefix": ["snapshots/orders/*"]}}
    assert "s3:PutObject" not in statements["ReadFeatureSnapshots"]["Action"]


def test_a_model_not_scored_by_id_gets_no_skew_check(returns_monitor):
    stack, _ = returns_monitor
    _, request = _schedule(stack)
    assert not {"--feature-snapshots-s3-uri", "--max-skew-rate"} & set(_arguments(request))
    assert "ReadFeatureSnapshots" not in _statements(stack)


def test_snapshots_without_a_skew_limit_are_refused():
    stack = Stack(new_app(bare_outdir()), "Bare", env=Environment(account="123456789012", region="eu-west-1"))
    with pytest.raises(ValueError) as refused:
        _monitor(stack=stack, feature_snapshots=_features(stack))
    assert str(refused.value) == "DriftMonitor: feature_snapshots and max_skew_rate go together (the skew check needs both)"


def test_with_a_network_each_run_is_a_job_in_the_vpc_and_the_role_may_manage_its_interfaces():
    """GIVEN the environment's network WHEN the monitor is added THEN the CreateProcessingJob request runs in exactly
    those subnets and security groups (isolation and encryption as before) and the job's role holds SageMaker's
    documented interface permissions."""
    stack, _ = _monitor(network=network_config())
    _, request = _schedule(stack)
    assert request["NetworkConfig"] == {"EnableInterContainerTrafficEncryption": True, "EnableNetworkIsolation": False,
                                        "VpcConfig": vpc_config_of_network()}
    assert_sagemaker_eni_statements(_statements(stack), "123456789012", "eu-west-1")


def test_without_a_network_the_job_has_no_vpc_and_the_role_no_interface_permissions(returns_monitor):
    stack, _ = returns_monitor
    _, request = _schedule(stack)
    assert "VpcConfig" not in request["NetworkConfig"]
    assert not vpc_statements_of(_statements(stack))


def test_given_its_endpoint_each_run_checks_what_it_serves_and_that_its_requests_were_captured():
    # GIVEN a real-time model capturing 20 % of its requests WHEN its monitor is given its endpoint
    stack, _ = _monitor(endpoint_name="shop-dev-Returns", capture_percent=20)
    _, request = _schedule(stack)
    arguments, statements = _arguments(request), _statements(stack)
    # THEN each run names the endpoint and the capture share to the job
    assert arguments["--endpoint-name"] == "shop-dev-Returns" and arguments["--capture-percent"] == "20"
    # AND its role may describe that endpoint (ARN in lower case) and the configs and models it names, read-only
    assert statements["DescribeServingEndpoint"]["Resource"] == "arn:aws:sagemaker:eu-west-1:123456789012:endpoint/shop-dev-returns"
    assert statements["DescribeServingEndpoint"]["Action"] == "sagemaker:DescribeEndpoint"
    assert statements["DescribeServingModels"]["Action"] == ["sagemaker:DescribeEndpointConfig", "sagemaker:DescribeModel"]
    assert statements["DescribeServingModels"]["Resource"] == [
        "arn:aws:sagemaker:eu-west-1:123456789012:endpoint-config/*", "arn:aws:sagemaker:eu-west-1:123456789012:model/*"]
    # AND read request counts (no resource-level permissions exist for it), and write no metric but its own
    assert statements["ReadEndpointRequests"] == {"Sid": "ReadEndpointRequests", "Effect": "Allow",
                                                  "Action": "cloudwatch:GetMetricStatistics", "Resource": "*"}


def test_without_an_endpoint_the_job_checks_none_and_its_role_may_not(returns_monitor):
    stack, _ = returns_monitor
    _, request = _schedule(stack)
    assert not {"--endpoint-name", "--capture-percent"} & set(_arguments(request))
    assert not {"DescribeServingEndpoint", "DescribeServingModels", "ReadEndpointRequests"} & set(_statements(stack))


@pytest.mark.parametrize("mode", ["batch", "multi_model"])
def test_an_endpoint_check_is_refused_for_a_model_without_an_endpoint_of_its_own(mode):
    with pytest.raises(ValueError) as refused:
        _monitor(mode=mode, endpoint_name="shop-dev-returns", capture_percent=100)
    assert str(refused.value) == (f"DriftMonitor: model 'returns' is served in mode '{mode}', which has no endpoint of its "
                                  f"own to check (batch: none; multi_model: the version is chosen per request); give "
                                  "endpoint_name=None")


def test_a_seasonal_models_monitoring_settings_reach_its_scheduled_runs_and_no_other_models():
    """GIVEN a model whose config exempts a feature from drift, gives another its own PSI threshold and reports its
    prediction drift only (models.<name>.monitoring: a seasonal model), and one that sets none WHEN their monitors are
    built THEN the scheduled job is told exactly that, in the form the monitor parses; the other's arguments carry none
    of it (its template is unchanged)."""
    raw = {**RAW_CONFIG, "models": {**RAW_CONFIG["models"], "basket": {
        **RAW_CONFIG["models"]["basket"],
        "monitoring": {"feature_thresholds": {"channel": 0.4}, "drift_exempt_features": ["items"],
                       "prediction_drift": "report_only"}}}}
    seasonal = parse_config(raw, source="drift monitor test config").models["basket"]
    args = _arguments(_schedule(_monitor(seasonal)[0])[1])
    options = {action.dest: action for action in monitor.build_parser()._actions}  # as the job's parser reads them
    assert options["feature_thresholds"].type(args["--feature-thresholds"]) == {"channel": 0.4}
    assert options["drift_exempt_features"].type(args["--drift-exempt-features"]) == ["items"]
    assert args["--prediction-drift"] == "report_only" and "report_only" in options["prediction_drift"].choices
    plain = _arguments(_schedule(_monitor("basket")[0])[1])
    assert not {"--feature-thresholds", "--drift-exempt-features", "--prediction-drift"} & set(plain)
