"""The Operations stack: guarded retraining trigger (drift alarms, schedules) and notifications for people."""

from __future__ import annotations

import json
import re
import zipfile

import pytest

ENVS = ("dev", "staging", "prod")


def _one(synthesized, env, cfn_type, prefix="RetrainTrigger"):
    (resource,) = [r for k, r in synthesized.resources(env, "Operations", cfn_type).items() if k.startswith(prefix)]
    return resource["Properties"]


def _pipelines(synthesized, env):
    return sorted(f"mlops-loop-{env}-{m}-training" for m in synthesized.config.environments[env].models)


@pytest.mark.parametrize("env", ENVS)
def test_trigger_function_is_serialised_and_knows_only_this_environments_pipelines(synthesized, env):
    function = _one(synthesized, env, "AWS::Lambda::Function")
    assert function["FunctionName"] == f"mlops-loop-{env}-retrain-trigger"
    assert function["Runtime"] == "python3.14"
    assert function["Handler"] == "retrain_trigger.handler"
    # One invocation at a time: two alarms arriving together cannot both pass the guard.
    assert function["ReservedConcurrentExecutions"] == 1
    assert "DeadLetterConfig" in function
    variables = function["Environment"]["Variables"]
    assert variables["ALLOWED_PIPELINES"] == ",".join(_pipelines(synthesized, env))
    assert variables["COOLDOWN_HOURS"] == str(synthesized.config.environments[env].monitoring.retraining_cooldown_hours)
    invoke = _one(synthesized, env, "AWS::Lambda::EventInvokeConfig")
    assert invoke["MaximumRetryAttempts"] == 2


def test_each_models_retrain_alarms_start_its_pipeline_with_reason_drift(synthesized):
    rules = synthesized.resources("prod", "Operations", "AWS::Events::Rule")
    drift = {k: r["Properties"] for k, r in rules.items() if "DriftAlarms" in k}
    assert len(drift) == 2
    for props in drift.values():
        pattern = props["EventPattern"]
        assert pattern["source"] == ["aws.cloudwatch"]
        assert pattern["detail"]["state"] == {"value": ["ALARM"]}
        prefix = pattern["detail"]["alarmName"][0]["prefix"]
        model = prefix.removeprefix("mlops-loop-prod-").removesuffix("-retrain-")
        (target,) = props["Targets"]
        transformer = target["InputTransformer"]
        assert transformer["InputPathsMap"] == {"detail-alarmName": "$.detail.alarmName", "id": "$.id"}
        payload = transformer["InputTemplate"]
        assert f'"pipeline":"mlops-loop-prod-{model}-training"' in payload and '"reason":"drift"' in payload
        assert target["RetryPolicy"]["MaximumRetryAttempts"] == 2 and "DeadLetterConfig" in target


def test_scheduled_retraining_follows_the_environment_config(synthesized):
    assert synthesized.config.environments["dev"].training.retraining_schedule is None
    def retraining(env):
        return {k: v for k, v in synthesized.resources(env, "Operations", "AWS::Scheduler::Schedule").items() if "Retraining" in k}

    assert retraining("dev") == {}
    schedules = retraining("prod")
    assert len(schedules) == 2
    for schedule in schedules.values():
        props = schedule["Properties"]
        assert props["ScheduleExpression"] == synthesized.config.environments["prod"].training.retraining_schedule
        payload = json.loads(props["Target"]["Input"])
        assert payload["reason"] == "schedule" and payload["pipeline"] in _pipelines(synthesized, "prod")
        assert "DeadLetterConfig" in props["Target"]


def test_failed_or_gate_rejected_executions_notify_people(synthesized):
    rules = synthesized.resources("staging", "Operations", "AWS::Events::Rule")
    (failures,) = [r["Properties"] for k, r in rules.items() if k.startswith("PipelineFailures")]
    detail = failures["EventPattern"]["detail"]
    assert detail["currentPipelineExecutionStatus"] == ["Failed"]
    assert sorted(detail["pipelineArn"]) == [
        f"arn:aws:sagemaker:eu-west-1:222222222222:pipeline/{name}" for name in _pipelines(synthesized, "staging")
    ]
    topic = _one(synthesized, "staging", "AWS::SNS::Topic", prefix="Notifications")
    assert "KmsMasterKeyId" in topic
    (policy,) = synthesized.resources("staging", "Operations", "AWS::SNS::TopicPolicy").values()
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    )


def test_trigger_role_can_only_list_and_start_its_pipelines(synthesized):
    policies = synthesized.resources("prod", "Operations", "AWS::IAM::ManagedPolicy")
    (trigger,) = [p for k, p in policies.items() if k.startswith("RetrainTriggerAccess")]
    statements = {s["Sid"]: s for s in trigger["Properties"]["PolicyDocument"]["Statement"]}
    guarded = statements["GuardedStart"]
    assert guarded["Action"] == ["sagemaker:ListPipelineExecutions", "sagemaker:StartPipelineExecution"]
    assert sorted(guarded["Resource"]) == [
        f"arn:aws:sagemaker:eu-west-1:333333333333:pipeline/{name}" for name in _pipelines(synthesized, "prod")
    ]
    actions = json.dumps([s["Action"] for s in statements.values()])
    assert "UpdateModelPackage" not in actions and "CreateModelPackage" not in actions


def test_the_deployed_handler_is_the_tested_one(synthesized):
    function = _one(synthesized, "prod", "AWS::Lambda::Function")
    key = function["Code"]["S3Key"]
    asset = synthesized.outdir / f"asset.{key.removesuffix('.zip')}"
    files = {p.name for p in asset.iterdir()} if asset.is_dir() else set(zipfile.ZipFile(str(asset) + ".zip").namelist())
    assert "retrain_trigger.py" in files and "deploy_on_approval.py" in files and "__init__.py" not in files


def _alarms(synthesized, env):
    return {a["Properties"]["AlarmName"]: a["Properties"] for a in synthesized.resources(env, "Operations", "AWS::CloudWatch::Alarm").values()}


def test_drift_and_quality_alarms_carry_the_retrain_prefix_and_the_configured_thresholds(synthesized):
    monitoring = synthesized.config.environments["prod"].monitoring
    alarms = _alarms(synthesized, "prod")
    for model in ("churn", "credit-risk"):
        prefix = f"mlops-loop-prod-{model}-retrain-"
        assert alarms[prefix + "data-drift"]["Threshold"] == monitoring.psi_threshold
        assert alarms[prefix + "data-drift"]["MetricName"] == "DataDriftMaxPsi"
        assert alarms[prefix + "prediction-drift"]["MetricName"] == "PredictionPsi"
        assert alarms[prefix + "quality"]["Threshold"] == monitoring.max_auc_drop
        assert alarms[prefix + "quality"]["MetricName"] == "AucDrop"
        for name in ("data-drift", "prediction-drift", "quality"):
            alarm = alarms[prefix + name]
            assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
            assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == {"Environment": "prod", "Model": model}
            assert alarm["AlarmActions"], "people are told too"
        # Monitor errors page people but never retrain: the name must not match the retrain rule.
        unhealthy = alarms[f"mlops-loop-prod-{model}-monitor-unhealthy"]
        assert not f"mlops-loop-prod-{model}-monitor-unhealthy".startswith(prefix)
        assert unhealthy["MetricName"] == "MonitorHealthy" and unhealthy["ComparisonOperator"] == "LessThanThreshold"


def test_alarms_watch_metrics_the_monitor_actually_publishes(synthesized):
    """The alarm/dashboard side and the job side agree on namespace, names and dimensions."""
    from pipeline_code.monitoring.report import HEADLINE_METRICS, NAMESPACE

    published = {name for _, name, _ in HEADLINE_METRICS}
    template = json.dumps(synthesized.template("prod", "Operations"))
    alarms = _alarms(synthesized, "prod")
    monitor_alarms = [a for a in alarms.values() if a.get("Namespace") == NAMESPACE]
    assert len(monitor_alarms) == 8  # 2 models x (3 retrain + 1 unhealthy)
    assert {a["MetricName"] for a in monitor_alarms} <= published
    dashboard = next(iter(synthesized.resources("prod", "Operations", "AWS::CloudWatch::Dashboard").values()))
    body = "".join(p for p in dashboard["Properties"]["DashboardBody"]["Fn::Join"][1] if isinstance(p, str))
    used = set(re.findall(r'"mlops-loop/monitoring","([A-Za-z]+)"', body))
    assert used and used <= published, used - published
    assert "mlops-loop/monitoring" in template


def test_the_trigger_and_its_dead_letters_are_watched(synthesized):
    alarms = _alarms(synthesized, "dev")
    assert alarms["mlops-loop-dev-trigger-errors"]["MetricName"] == "Errors"
    assert alarms["mlops-loop-dev-dead-letters"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
