"""The Operations stack: guarded retraining trigger (drift alarms, schedules) and notifications for people."""

from __future__ import annotations

import json
import re
import zipfile

import pytest

from pipeline_code.core.images import HANDLER_PYTHON
from mlops_loop.app_builder import REPO_ROOT
from mlops_loop.constructs.loop_alarms import report_window_hours
from mlops_loop.constructs.scheduled_job import job_name_stem
from mlops_loop.naming import score_by_id_function_name
from pipeline_code.handlers.retrain_trigger import settings_of
from pipeline_code.core.contract import feature_group_name
from pipeline_code.core.contract import RETRAIN_ALARMS, environment_prefix, monitor_metric
from pipeline_code.core.problem import quality_alarm_key
from tests.support.paths import live_project
from tests.support.templates import policy_statements

ENVS = ("dev", "staging", "prod")


# Physical names start with the configured project (a user renames it first).
PROJECT = live_project()


def _one(synthesized, env, cfn_type, prefix="RetrainTrigger"):
    (resource,) = [r for k, r in synthesized.resources(env, "Operations", cfn_type).items() if k.startswith(prefix)]
    return resource["Properties"]


def _pipelines(synthesized, env):
    return sorted(f"{PROJECT}-{env}-{m}-training" for m in synthesized.config.environments[env].models)


@pytest.mark.parametrize("env", ENVS)
def test_trigger_function_is_serialised_and_knows_only_this_environments_pipelines(synthesized, env):
    function = _one(synthesized, env, "AWS::Lambda::Function")
    assert function["FunctionName"] == f"{PROJECT}-{env}-retrain-trigger"
    assert function["Runtime"] == "python{}.{}".format(*HANDLER_PYTHON)
    assert function["Handler"] == "pipeline_code.handlers.retrain_trigger.handler"
    # One invocation at a time: two alarms arriving together cannot both pass the guard.
    assert function["ReservedConcurrentExecutions"] == 1
    assert "DeadLetterConfig" in function
    variables = function["Environment"]["Variables"]
    assert sorted(settings_of(variables)["allowed"]) == _pipelines(synthesized, env)
    monitoring = synthesized.config.environments[env].monitoring
    assert variables["COOLDOWN_HOURS"] == str(monitoring.retraining_cooldown_hours)
    assert variables["MAX_STARTS_PER_DAY"] == str(monitoring.retraining_max_starts_per_day)
    # The circuit breaker: how many failures, and what it needs to page with the resume command.
    settings = settings_of(variables)
    assert settings["failures_before_pause"] == monitoring.retraining_failures_before_pause
    assert settings["environment"] == env and settings["topic_arn"]
    invoke = _one(synthesized, env, "AWS::Lambda::EventInvokeConfig")
    assert invoke["MaximumRetryAttempts"] == 2


def test_each_models_retrain_alarms_start_its_pipeline_with_reason_drift(synthesized):
    rules = synthesized.resources("prod", "Operations", "AWS::Events::Rule")
    drift = {k: r["Properties"] for k, r in rules.items() if "DriftAlarms" in k}
    covered = set()
    for props in drift.values():
        pattern = props["EventPattern"]
        assert pattern["source"] == ["aws.cloudwatch"]
        assert pattern["detail"]["state"] == {"value": ["ALARM"]}
        prefix = pattern["detail"]["alarmName"][0]["prefix"]
        model = prefix.removeprefix(f"{PROJECT}-prod-").removesuffix("-retrain-")
        covered.add(model)
        (target,) = props["Targets"]
        transformer = target["InputTransformer"]
        assert transformer["InputPathsMap"] == {"detail-alarmName": "$.detail.alarmName", "id": "$.id"}
        payload = transformer["InputTemplate"]
        assert f'"pipeline":"{PROJECT}-prod-{model}-training"' in payload and '"reason":"drift"' in payload
        assert target["RetryPolicy"]["MaximumRetryAttempts"] == 2 and "DeadLetterConfig" in target
    assert covered == set(synthesized.config.environments["prod"].models)  # one rule per model, no other


@pytest.mark.parametrize("env", ENVS)
def test_scheduled_retraining_follows_the_environment_config(synthesized, env):
    """One retraining schedule per model when the environment sets ``training.retraining_schedule``, none otherwise."""
    config = synthesized.config.environments[env]
    schedules = {k: v for k, v in synthesized.resources(env, "Operations", "AWS::Scheduler::Schedule").items() if "Retraining" in k}
    if config.training.retraining_schedule is None:
        assert schedules == {}
        return
    pipelines = []
    for schedule in schedules.values():
        props = schedule["Properties"]
        assert props["ScheduleExpression"] == config.training.retraining_schedule
        payload = json.loads(props["Target"]["Input"])
        assert payload["reason"] == "schedule"
        assert "DeadLetterConfig" in props["Target"]
        pipelines.append(payload["pipeline"])
    assert sorted(pipelines) == sorted(_pipelines(synthesized, env))


def test_failed_or_gate_rejected_executions_notify_people(synthesized):
    rules = synthesized.resources("staging", "Operations", "AWS::Events::Rule")
    (failures,) = [r["Properties"] for k, r in rules.items() if k.startswith("PipelineFailures")]
    detail = failures["EventPattern"]["detail"]
    assert detail["currentPipelineExecutionStatus"] == ["Failed"]
    assert sorted(detail["pipelineArn"]) == [
        f"arn:aws:sagemaker:eu-west-1:222222222222:pipeline/{name}" for name in _pipelines(synthesized, "staging")
    ]
    # One readable notice, not the raw event: which pipeline and execution, its status, how a gate rejection shows,
    # and the commands that show the failed step and its reason (the event carries no reason).
    (target,) = failures["Targets"]
    assert target["InputTransformer"]["InputPathsMap"] == {
        "detail-pipelineArn": "$.detail.pipelineArn", "detail-pipelineExecutionArn": "$.detail.pipelineExecutionArn",
        "detail-currentPipelineExecutionStatus": "$.detail.currentPipelineExecutionStatus"}
    region = synthesized.config.environments["staging"].region
    assert json.loads(target["InputTransformer"]["InputTemplate"]) == (
        f"{PROJECT}-staging training pipeline <detail-pipelineArn>: execution <detail-pipelineExecutionArn> ended "
        "<detail-currentPipelineExecutionStatus>. If the step that failed is GateFailed, the gate rejected the candidate "
        "(the serving version stays); any other failed step is an error to fix. Steps, and the failed one's "
        "FailureReason: aws sagemaker list-pipeline-execution-steps --pipeline-execution-arn <detail-pipelineExecutionArn> "
        f"--region {region}. The execution: aws sagemaker describe-pipeline-execution --pipeline-execution-arn "
        f"<detail-pipelineExecutionArn> --region {region}. Any other failed step does not hold the retrain trigger's "
        "cooldown: while the model's retrain alarm stays in ALARM, the hourly sweep starts the pipeline again, up to "
        f"{synthesized.config.environments['staging'].monitoring.retraining_max_starts_per_day} times in 24 hours; after "
        f"{synthesized.config.environments['staging'].monitoring.retraining_failures_before_pause} such failures in a "
        "row of runs it started, the trigger pauses the model's retraining itself and says so once. To stop it sooner: "
        "python -m mlops_cli.retraining --env "
        "staging --model MODEL pause --reason INC-ID (MODEL: the pipeline name's model; resume once fixed; "
        "docs/monitoring.md, Pausing retraining)")
    topic = _one(synthesized, "staging", "AWS::SNS::Topic", prefix="Notifications")
    assert "KmsMasterKeyId" in topic
    (policy,) = [p for k, p in synthesized.resources("staging", "Operations", "AWS::SNS::TopicPolicy").items()
                 if k.startswith("NotificationsPolicy")]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    )


@pytest.mark.parametrize("env", ENVS)
def test_the_hourly_sweep_knows_every_retrain_alarm_and_may_describe_only_those(synthesized, env):
    """GIVEN the Operations stack's retrain alarms (``<prefix>-<model>-retrain-*``)
    THEN the trigger derives from its environment exactly those alarms, each with its model's pipeline, its role may
    describe exactly those alarms, and an hourly schedule sends it ``reason=sweep`` (with a dead-letter queue)."""
    alarms = {p["AlarmName"] for p in (a["Properties"] for a in synthesized.resources(env, "Operations",
                                                                                        "AWS::CloudWatch::Alarm").values())}
    models = synthesized.config.environments[env].models
    retrain = {name: f"{PROJECT}-{env}-{m}-training" for m in models for name in alarms
               if name.startswith(f"{PROJECT}-{env}-{m}-retrain-")}
    assert len(retrain) == len(RETRAIN_ALARMS) * len(models)
    function = _one(synthesized, env, "AWS::Lambda::Function")
    assert settings_of(function["Environment"]["Variables"])["alarm_pipelines"] == retrain
    policies = synthesized.resources(env, "Operations", "AWS::IAM::ManagedPolicy")
    describe = policy_statements(policies, [k for k in policies if k.startswith("RetrainTriggerAccess")])["SweepRetrainAlarms"]
    environment = synthesized.config.environments[env]
    assert describe["Action"] == "cloudwatch:DescribeAlarms"
    assert sorted(describe["Resource"]) == sorted(
        f"arn:aws:cloudwatch:{environment.region}:{environment.account}:alarm:{n}" for n in retrain)
    (sweep,) = [v["Properties"] for k, v in synthesized.resources(env, "Operations", "AWS::Scheduler::Schedule").items()
                if "Sweep" in k]
    assert sweep["ScheduleExpression"] == "rate(1 hour)" and json.loads(sweep["Target"]["Input"]) == {"reason": "sweep"}
    assert "DeadLetterConfig" in sweep["Target"]


def test_trigger_role_can_only_list_and_start_its_pipelines(synthesized):
    policies = synthesized.resources("prod", "Operations", "AWS::IAM::ManagedPolicy")
    statements = policy_statements(policies, [k for k in policies if k.startswith("RetrainTriggerAccess")])
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
    if asset.is_dir():
        files = {p.relative_to(asset).as_posix(): p.read_bytes() for p in asset.rglob("*.py")}
    else:
        archive = zipfile.ZipFile(str(asset) + ".zip")
        files = {name: archive.read(name) for name in archive.namelist() if name.endswith(".py")}
    # Byte for byte the handlers (with their packages, e.g. handlers/deploy/) and the core the tests import, and
    # nothing else of pipeline_code.
    handlers = (REPO_ROOT / "pipeline_code" / "handlers").rglob("*.py")
    core = (REPO_ROOT / "pipeline_code" / "core").glob("*.py")
    expected = {"pipeline_code/__init__.py"} | {p.relative_to(REPO_ROOT).as_posix() for p in (*handlers, *core)}
    assert set(files) == expected
    assert all(files[name] == (REPO_ROOT / name).read_bytes() for name in expected)


def _alarms(synthesized, env):
    return {a["Properties"]["AlarmName"]: a["Properties"] for a in synthesized.resources(env, "Operations", "AWS::CloudWatch::Alarm").values()}


def _watched(alarm: dict) -> dict:
    """The monitor metric (``MetricName``, ``Namespace``, ``Dimensions``) a retrain alarm reads through ``FILL(m, 0)``
    (tests/infra/constructs/test_loop_alarms.py)."""
    (stat,) = [query for query in alarm["Metrics"] if "MetricStat" in query]
    return stat["MetricStat"]["Metric"]


def test_drift_and_quality_alarms_carry_the_retrain_prefix_and_the_configured_thresholds(synthesized):
    monitoring = synthesized.config.environments["prod"].monitoring
    alarms = _alarms(synthesized, "prod")
    for model in synthesized.config.environments["prod"].models:
        prefix = f"{PROJECT}-prod-{model}-retrain-"
        # The drift alarms watch the monitor's drift scores (PSI over its calibrated threshold): drift at 1.
        assert alarms[prefix + "data-drift"]["Threshold"] == 1
        assert _watched(alarms[prefix + "data-drift"])["MetricName"] == "DataDriftScore"
        assert alarms[prefix + "prediction-drift"]["Threshold"] == 1
        assert _watched(alarms[prefix + "prediction-drift"])["MetricName"] == "PredictionDriftScore"
        assert alarms[prefix + "slow-drift"]["Threshold"] == 1
        assert _watched(alarms[prefix + "slow-drift"])["MetricName"] == "CumulativeDriftScore"
        model_config = synthesized.config.models[model]
        quality_key = quality_alarm_key(model_config.problem_type, model_config.primary_metric)
        assert alarms[prefix + "quality"]["Threshold"] == (monitoring.max_auc_drop if quality_key == "auc_drop"
                                                           else monitoring.max_quality_drop)
        assert _watched(alarms[prefix + "quality"])["MetricName"] == monitor_metric(quality_key)
        assert sorted(n[len(prefix):] for n in alarms if n.startswith(prefix)) == sorted(RETRAIN_ALARMS)
        for name in RETRAIN_ALARMS:
            alarm = alarms[prefix + name]
            assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
            assert {d["Name"]: d["Value"] for d in _watched(alarm)["Dimensions"]} == {"Environment": "prod", "Model": model}
            assert alarm["AlarmActions"], "people are told too"
        # Monitor errors page people but never retrain: the name must not match the retrain rule.
        unhealthy = alarms[f"{PROJECT}-prod-{model}-monitor-unhealthy"]
        assert not f"{PROJECT}-prod-{model}-monitor-unhealthy".startswith(prefix)
        assert unhealthy["MetricName"] == "MonitorHealthy" and unhealthy["ComparisonOperator"] == "LessThanThreshold"


@pytest.mark.parametrize("env", ENVS)
def test_each_models_no_report_alarm_is_timed_from_the_environments_monitor_schedule(synthesized, env):
    config = synthesized.config.environments[env]
    alarms = _alarms(synthesized, env)
    for model in config.models:
        silent = alarms[f"{PROJECT}-{env}-{model}-monitor-no-report"]
        assert silent["EvaluationPeriods"] == report_window_hours(config.monitoring.schedule)
        assert f"(it runs {config.monitoring.schedule} UTC)" in silent["AlarmDescription"]
        assert silent["AlarmActions"], "people are told"


@pytest.mark.parametrize("env", ENVS)
def test_each_monitor_page_names_the_environments_inference_bucket(synthesized, env):
    """The monitor's pages send on-call to its reports: in the bucket the Storage stack made, by name, within
    CloudWatch's 1,024 characters (before: ``s3://<inference bucket>/...``, to look up at 3 a.m.)."""
    (bucket,) = [b["Properties"]["BucketName"] for k, b in synthesized.resources(env, "Storage", "AWS::S3::Bucket").items()
                 if k.startswith("DataLakeInferenceBucket")]
    alarms = _alarms(synthesized, env)
    for model in synthesized.config.environments[env].models:
        for name in ("monitor-unhealthy", "monitor-data-quality", "monitor-no-report"):
            description = alarms[f"{PROJECT}-{env}-{model}-{name}"]["AlarmDescription"]
            assert f"s3://{bucket}/monitor/{model}/" in description, (model, name)
            assert len(description) <= 1024, (model, name)


def _referenced(value) -> set[str]:
    """The logical ids a template value reads an ``Arn`` of."""
    if isinstance(value, dict):
        if list(value) == ["Fn::GetAtt"] and value["Fn::GetAtt"][1] == "Arn":
            return {value["Fn::GetAtt"][0]}
        return set().union(*map(_referenced, value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*map(_referenced, value)) if value else set()
    return set()


@pytest.mark.parametrize("env", ENVS)
def test_the_dashboard_shows_the_state_of_every_alarm_the_stack_makes(synthesized, env):
    """On-call sees every alarm that can page them: each metric and composite alarm of the Operations stack is in one
    of the dashboard's alarm-status widgets (the loop's, the endpoints', the deploy handler's, score by id's)."""
    alarms = {**synthesized.resources(env, "Operations", "AWS::CloudWatch::Alarm"),
              **synthesized.resources(env, "Operations", "AWS::CloudWatch::CompositeAlarm")}
    (dashboard,) = synthesized.resources(env, "Operations", "AWS::CloudWatch::Dashboard").values()
    assert _referenced(dashboard["Properties"]["DashboardBody"]) == set(alarms)
    # The body is JSON around the alarms' ARNs (and the region): read it with each of those as a placeholder.
    body = json.loads("".join(p if isinstance(p, str) else "token" for p in dashboard["Properties"]["DashboardBody"]["Fn::Join"][1]))
    titles = [w["properties"]["title"] for w in body["widgets"] if w["type"] == "alarm"]
    config, environment = synthesized.config, synthesized.config.environments[env]
    assert titles[0] == "Loop alarms" and "Deploy alarms" in titles, titles
    servings = [config.serving_of(environment, m) for m in config.models_of(environment)]
    assert ("Endpoint alarms" in titles) == any(s.mode != "batch" for s in servings), titles
    assert ("Score-by-id alarms" in titles) == any(s.by_id.enabled for s in servings), titles


def test_the_trigger_and_its_dead_letters_are_watched(synthesized):
    alarms = _alarms(synthesized, "dev")
    assert alarms[f"{PROJECT}-dev-trigger-errors"]["MetricName"] == "Errors"
    assert alarms[f"{PROJECT}-dev-dead-letters"]["MetricName"] == "NumberOfMessagesSent"


@pytest.mark.parametrize("env", ENVS)
def test_a_handler_error_lambda_retries_pages_nobody_and_an_exhausted_event_pages_once(synthesized, env):
    """GIVEN each environment WHEN synthesized THEN the retrain trigger's and the deploy handler's ``Errors`` alarms have
    no action (a transient UpdateStack error the retry gets past must not page at 3 a.m.; the handler test
    ``test_an_update_throttled_once_then_accepted_on_lambdas_retry_...`` shows that attempt raising), and their
    dead-letter alarms page: an event that fails all three attempts pages once, not twice."""
    alarms = _alarms(synthesized, env)
    for errors, dead in (("trigger-errors", "dead-letters"), ("deploy-errors", "deploy-dead-letters")):
        errors, dead = alarms[f"{PROJECT}-{env}-{errors}"], alarms[f"{PROJECT}-{env}-{dead}"]
        assert errors["MetricName"] == "Errors" and dead["MetricName"] == "NumberOfMessagesSent"
        assert not errors.get("AlarmActions") and not errors.get("OKActions"), errors["AlarmName"]
        assert [a["Ref"] for a in dead["AlarmActions"]] == [a["Ref"] for a in dead["AlarmActions"] if a["Ref"].startswith("Notifications")]
        assert len(dead["AlarmActions"]) == 1
        assert errors["AlarmDescription"].endswith(f"reaches the dead-letter queue, whose alarm {dead['AlarmName']} pages.")


@pytest.mark.parametrize("env", ENVS)
def test_the_notification_dead_letter_page_names_every_kind_of_notice_its_queue_holds_and_the_runbook_each(synthesized, env):
    """GIVEN each environment WHEN a notice cannot be published to its topic THEN the page names every kind of notice
    whose rule dead-letters into the notification queue (by the rule name its message's RULE_ARN gives) and the
    runbook row says what to do with each (before: 'failed training, ETL, rollout or scheduled job' - no approval
    request, crawler, key change or endpoint loss, whose people were not told either)."""
    from mlops_loop.constructs.rule_notifications import NOTICE_KINDS
    from tests.support import docs

    resources = synthesized.template(env, "Operations")["Resources"]
    (queue,) = [k for k, r in resources.items() if k.startswith("NotificationDeadLetters") and r["Type"] == "AWS::SQS::Queue"]
    rules = [k for k, r in synthesized.resources(env, "Operations", "AWS::Events::Rule").items()
             if any(t.get("DeadLetterConfig", {}).get("Arn") == {"Fn::GetAtt": [queue, "Arn"]} for t in r["Properties"]["Targets"])]
    kinds = set()
    for rule in rules:
        (kind,) = [k for k in NOTICE_KINDS if k in rule] or [None]
        assert kind is not None, f"rule {rule} dead-letters into the notification queue but is not in NOTICE_KINDS"
        kinds.add(kind)
    assert {"ApprovalRequests", "PipelineFailures", "KeyChanges", "EndpointLosses"} <= kinds, kinds
    description = _alarms(synthesized, env)[f"{PROJECT}-{env}-notification-dead-letters"]["AlarmDescription"]
    for kind in NOTICE_KINDS:  # every kind, those of rules another config adds (batch, native monitors) too
        assert kind in description, (kind, description)
    assert description.endswith("(docs/monitoring.md, Dead-letter queues)") and len(description) <= 1024, description
    (row,) = [line for line in docs.section("**Dead-letter queues.**").text.splitlines()
              if "`-notification-dead-letters`" in line]
    for kind in NOTICE_KINDS:
        assert f"`{kind}`" in row, kind


@pytest.mark.parametrize("env", ENVS)
def test_the_deploy_dead_letter_page_says_which_events_its_queue_holds_and_the_runbook_replays_each(synthesized, env):
    """GIVEN each environment WHEN an event reaches the deploy handler's dead-letter queue THEN the page does not say "that
    approval is not deployed yet" of every message: every rule that invokes the handler dead-letters into that queue -
    approvals, settled-stack reconciles, executions' ends (``record-execution``: a run record not written) and, where
    endpoints exist, the hourly ``log-retention`` sweep - so the page names each kind, and the runbook row says what to
    do with each (before: one replay, a reconcile, for all of them)."""
    from tests.support import docs

    resources = synthesized.template(env, "Operations")["Resources"]
    (queue,) = [k for k, r in resources.items() if k.startswith("DeployOnApprovalDeadLetters") and r["Type"] == "AWS::SQS::Queue"]
    (function,) = [k for k, r in resources.items() if r["Type"] == "AWS::Lambda::Function"
                   and r["Properties"].get("Handler") == "pipeline_code.handlers.deploy_on_approval.handler"]
    inputs = []
    for rule in synthesized.resources(env, "Operations", "AWS::Events::Rule").values():
        for target in rule["Properties"]["Targets"]:
            if target["Arn"] == {"Fn::GetAtt": [function, "Arn"]}:
                assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": [queue, "Arn"]}
                inputs.append(target.get("Input") or json.dumps((target.get("InputTransformer") or {}).get("InputTemplate")))
    actions = {a for a in ("record-execution", "log-retention", "reconcile") if any(f'\\"action\\":\\"{a}' in i or f'"action":"{a}' in i
                                                                                  or f'"action": "{a}' in i for i in inputs)}
    assert {"record-execution", "reconcile"} <= actions, inputs
    description = _alarms(synthesized, env)[f"{PROJECT}-{env}-deploy-dead-letters"]["AlarmDescription"]
    assert "that approval is not deployed yet" not in description
    for action in actions:
        assert action in description, (action, description)
    assert description.endswith("(docs/monitoring.md, Dead-letter queues)") and len(description) <= 1024
    (row,) = [line for line in docs.section("**Dead-letter queues.**").text.splitlines() if "`-deploy-dead-letters`" in line]
    for action in ("record-execution", "log-retention", "reconcile"):
        assert f'"{action}"' in row, action


@pytest.mark.parametrize("env", ENVS)
def test_every_dead_letter_queue_pages_on_each_arrival_and_shows_its_backlog_on_the_dashboard(synthesized, env):
    """GIVEN each environment WHEN synthesized THEN every dead-letter queue of the Operations stack (the trigger's, the
    deploy handler's, the notification rules', the monitor schedules') has an alarm on messages *arriving* (one kept
    message must not silence the next), and the dashboard graphs what waits in each."""
    queues = synthesized.resources(env, "Operations", "AWS::SQS::Queue")
    alarms = {name: a for name, a in _alarms(synthesized, env).items() if name.endswith("dead-letters")}
    for name in ("dead-letters", "deploy-dead-letters", "notification-dead-letters", "monitor-dead-letters"):
        assert f"{PROJECT}-{env}-{name}" in alarms, name
    watched = set()
    for name, alarm in alarms.items():
        assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"], alarm["Period"]) == (
            "AWS/SQS", "NumberOfMessagesSent", "Sum", 300), name
        assert alarm["Threshold"] == 1 and alarm["AlarmActions"], name
        (dimension,) = alarm["Dimensions"]
        watched.add(json.dumps(dimension["Value"], sort_keys=True))
    # Each of the stack's queues is watched (its name is a GetAtt of the queue).
    assert {json.dumps({"Fn::GetAtt": [q, "QueueName"]}, sort_keys=True) for q in queues} <= watched
    (dashboard,) = synthesized.resources(env, "Operations", "AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    assert "Dead letters waiting" in body and body.count("ApproximateNumberOfMessagesVisible") >= len(queues)


@pytest.mark.parametrize("env", ENVS)
def test_notification_rules_dead_letter_into_their_own_queue_not_a_handlers(synthesized, env):
    """GIVEN each environment THEN every rule that notifies the topic sends what it cannot deliver to the notification
    queue, and no handler's queue receives a notice (its alarm means "an event was not processed")."""
    rules = synthesized.resources(env, "Operations", "AWS::Events::Rule")
    (notices,) = [k for k in synthesized.resources(env, "Operations", "AWS::SQS::Queue") if k.startswith("NotificationDeadLetters")]
    to_topic = [t for r in rules.values() for t in r["Properties"]["Targets"] if t["Arn"].get("Ref", "").startswith("Notifications")]
    assert len(to_topic) >= 4  # pipeline, ETL, rollout and monitor-job failures at least
    for target in to_topic:
        assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [notices, "Arn"]}}
    others = [t for r in rules.values() for t in r["Properties"]["Targets"] if t not in to_topic and "DeadLetterConfig" in t]
    assert all(t["DeadLetterConfig"] != {"Arn": {"Fn::GetAtt": [notices, "Arn"]}} for t in others)


@pytest.mark.parametrize("env", ENVS)
def test_a_notice_that_could_not_be_delivered_pages_through_the_watchdog_too(synthesized, env):
    """GIVEN each environment WHEN synthesized THEN ``-notification-dead-letters`` notifies the watchdog topic as well as
    the environment's topic: the watchdog has a key of its own (the watchdog key, not the ops key), so a deleted
    topic, an edited topic policy or a disabled ops key, which stop the notice, do not stop this alarm; every other
    alarm notifies the environment's topic only, and the watchdog's ARN is an output to subscribe people to."""
    template = synthesized.template(env, "Operations")
    topics = synthesized.resources(env, "Operations", "AWS::SNS::Topic")
    (main,) = [k for k in topics if k.startswith("Notifications")]
    (watchdog,) = [k for k in topics if k.startswith("NotificationWatchdog")]
    assert len(topics) == 2
    keys = {name: json.dumps(topics[name]["Properties"]["KmsMasterKeyId"]) for name in (main, watchdog)}
    assert "OpsKey" in keys[main] and "WatchdogKey" in keys[watchdog]  # the Storage stack's keys, each its own
    alarms = _alarms(synthesized, env)
    undelivered = alarms[f"{PROJECT}-{env}-notification-dead-letters"]
    assert undelivered["AlarmActions"] == [{"Ref": main}, {"Ref": watchdog}]
    assert not undelivered.get("OKActions") and not undelivered.get("InsufficientDataActions")
    others = [name for name, a in alarms.items() if {"Ref": watchdog} in a.get("AlarmActions", []) + a.get("OKActions", [])]
    assert others == [undelivered["AlarmName"]]
    # AND each model's no-report alarm stays on the topic alone: it watches the drift monitor, not the notification path
    no_report = [a for name, a in alarms.items() if name.endswith("-monitor-no-report")]
    assert no_report and all(a["AlarmActions"] == [{"Ref": main}] for a in no_report)
    for stack in ("Storage", "DataPipeline", "Training", "Serving"):
        assert watchdog not in json.dumps(synthesized.template(env, stack))
    assert template["Outputs"]["WatchdogTopicArn"]["Value"] == {"Ref": watchdog}


@pytest.mark.parametrize("env", ENVS)
def test_a_drift_monitor_run_that_fails_or_never_starts_tells_people(synthesized, env):
    """GIVEN each environment's models WHEN synthesized THEN a monitor job of any of them (and only of this environment:
    the stem holds the environment) that fails or is stopped is told to people in one message, and every monitor
    schedule puts a run it cannot start into the monitor dead-letter queue."""
    models = synthesized.config.environments[env].models
    rules = synthesized.resources(env, "Operations", "AWS::Events::Rule")
    (rule,) = [r["Properties"] for k, r in rules.items() if k.startswith("MonitorJobFailures")]
    assert rule["EventPattern"]["detail-type"] == ["SageMaker Processing Job State Change"]
    assert sorted(p["prefix"] for p in rule["EventPattern"]["detail"]["ProcessingJobName"]) == sorted(
        f"{job_name_stem('processing', f'{PROJECT}-{env}', m)}-" for m in models)
    assert rule["EventPattern"]["detail"]["ProcessingJobStatus"] == ["Failed", "Stopped"]
    (target,) = rule["Targets"]
    assert "<detail-FailureReason>" in target["InputTransformer"]["InputTemplate"]
    (queue,) = [k for k in synthesized.resources(env, "Operations", "AWS::SQS::Queue") if k.startswith("MonitorScheduleDeadLetters")]
    schedules = [s["Properties"] for s in synthesized.resources(env, "Operations", "AWS::Scheduler::Schedule").values()
                 if ":createProcessingJob" in json.dumps(s["Properties"]["Target"]["Arn"])]
    assert len(schedules) == len(models)
    for schedule in schedules:
        assert schedule["Target"]["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [queue, "Arn"]}}


def test_a_batch_run_that_fails_or_never_starts_tells_people_whatever_the_users_line_up(modes):
    """GIVEN the frozen ``modes`` config, which serves one model in batch, WHEN synthesized THEN the Serving stack has the
    batch dead-letter queue (fixed name, ops key) that the batch schedule uses, the Operations stack alarms on its
    arrivals by that name, and a failed or stopped transform job of the model is told to people."""
    environment = modes.config.environments[modes.env]
    batch = [m.name for m in modes.config.models_of(environment) if modes.config.serving_of(environment, m).mode == "batch"]
    assert batch
    prefix = f"{modes.config.project}-{modes.env}"
    serving = modes.serving["Resources"]
    (queue_id,) = [k for k, r in serving.items() if r["Type"] == "AWS::SQS::Queue"]
    assert serving[queue_id]["Properties"]["QueueName"] == f"{prefix}-batch-dead-letters"
    assert "KmsMasterKeyId" in serving[queue_id]["Properties"]
    # Its fixed name is kept like every kept resource: not left behind by a first create that rolls back
    kept = modes.config.environments[modes.env].removal_policy != "destroy"
    assert serving[queue_id]["DeletionPolicy"] == ("RetainExceptOnCreate" if kept else "Delete")
    schedules = [r["Properties"] for r in serving.values() if r["Type"] == "AWS::Scheduler::Schedule"
                 and ":createTransformJob" in json.dumps(r["Properties"]["Target"]["Arn"])]
    assert len(schedules) == len(batch)
    for schedule in schedules:
        assert schedule["Target"]["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [queue_id, "Arn"]}}
    operations = modes.operations["Resources"]
    (alarm,) = [r["Properties"] for r in operations.values() if r["Type"] == "AWS::CloudWatch::Alarm"
                and r["Properties"]["AlarmName"] == f"{prefix}-batch-dead-letters"]
    assert alarm["MetricName"] == "NumberOfMessagesSent"
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": f"{prefix}-batch-dead-letters"}]
    (rule,) = [r["Properties"] for k, r in operations.items() if k.startswith("TransformJobFailures")]
    assert sorted(p["prefix"] for p in rule["EventPattern"]["detail"]["TransformJobName"]) == sorted(
        f"{job_name_stem('transform', prefix, m)}-" for m in batch)
    assert rule["EventPattern"]["detail"]["TransformJobStatus"] == ["Failed", "Stopped"]


def test_a_native_model_monitor_job_that_fails_tells_people_whatever_the_users_line_up(modes):
    """GIVEN the frozen ``modes`` config, which opts a model into native Model Monitor, WHEN synthesized THEN each such
    model's native monitor role in the Serving stack has a fixed name, its job definitions run as it, and the Operations
    stack has one rule per such model matching failed or stopped processing jobs run as that role, told on the topic."""
    environment = modes.config.environments[modes.env]
    native = [m.name for m in modes.config.models_of(environment)
              if modes.config.serving_of(environment, m).native_model_monitor]
    assert native
    serving, operations = modes.serving["Resources"], modes.operations["Resources"]
    roles = {k: r["Properties"]["RoleName"] for k, r in serving.items()
             if r["Type"] == "AWS::IAM::Role" and r["Properties"].get("RoleName", "").endswith("-native-monitor")}
    assert sorted(roles.values()) == sorted(f"{modes.config.project}-{modes.env}-{m}-native-monitor" for m in native)
    definition_roles = {r["Properties"]["RoleArn"]["Fn::GetAtt"][0] for r in serving.values()
                        if r["Type"].startswith("AWS::SageMaker::") and r["Type"].endswith("JobDefinition")}
    assert definition_roles == set(roles)
    rules = [r["Properties"] for k, r in operations.items()
             if r["Type"] == "AWS::Events::Rule" and "NativeMonitorFailures" in k]
    account = modes.config.environments[modes.env].account
    assert sorted(r["EventPattern"]["detail"]["RoleArn"] for r in rules) == sorted(
        [f"arn:aws:iam::{account}:role/{name}"] for name in roles.values())
    (topic,) = [k for k, r in operations.items() if r["Type"] == "AWS::SNS::Topic" and k.startswith("Notifications")]
    for rule in rules:
        assert rule["EventPattern"]["detail-type"] == ["SageMaker Processing Job State Change"]
        assert rule["EventPattern"]["detail"]["ProcessingJobStatus"] == ["Failed", "Stopped"]
        assert [t["Arn"] for t in rule["Targets"]] == [{"Ref": topic}]


def _by_id_functions(synthesized, env):
    """The Operations stack's function names, and the names of the functions a function URL fronts."""
    functions = synthesized.resources(env, "Operations", "AWS::Lambda::Function")
    names = {logical_id: f["Properties"]["FunctionName"] for logical_id, f in functions.items()}
    urls = synthesized.resources(env, "Operations", "AWS::Lambda::Url").values()
    fronted = [names[u["Properties"]["TargetFunctionArn"]["Fn::GetAtt"][0]] for u in urls]
    return set(names.values()), fronted, [u["Properties"]["AuthType"] for u in urls]


def test_each_model_scoring_by_id_gets_its_own_iam_authenticated_front_and_no_other_model_does(synthesized):
    """GIVEN the user's config WHEN each environment's Operations stack is synthesized THEN exactly the models whose
    serving there enables ``by_id`` have a ``<prefix>-<model>-by-id`` function, each behind one IAM-authenticated URL."""
    for env in synthesized.config.environments:
        _assert_by_id_fronts(synthesized, env)


def _assert_by_id_fronts(synthesized, env):
    config = synthesized.config
    environment = config.environments[env]
    prefix = environment_prefix(config.project, env)
    enabled = {m.name for m in config.models_of(environment) if config.serving_of(environment, m).by_id.enabled}
    names, fronted, auth_types = _by_id_functions(synthesized, env)
    for model in config.models_of(environment):
        name = score_by_id_function_name(prefix, model.name)
        assert name == f"{prefix}-{model.name}-by-id"
        if model.name in enabled:
            assert name in names, (env, model.name)
            assert fronted.count(name) == 1, (env, model.name)
        else:
            assert name not in names and name not in fronted, (env, model.name)
    assert sorted(fronted) == sorted(score_by_id_function_name(prefix, m) for m in enabled), env
    assert set(auth_types) <= {"AWS_IAM"}, env
    assert not [p for p in synthesized.resources(env, "Operations", "AWS::Lambda::Permission").values()
                if p["Properties"].get("Principal") == "*"]


def test_each_by_id_front_is_throttled_and_configured_as_its_models_serving_says(synthesized):
    config = synthesized.config
    for env, environment in config.environments.items():
        _assert_by_id_settings(synthesized, env, environment)


def _assert_by_id_settings(synthesized, env, environment):
    config = synthesized.config
    prefix = environment_prefix(config.project, env)
    resources = synthesized.resources(env, "Operations", "AWS::Lambda::Function")
    functions = {f["Properties"]["FunctionName"]: f["Properties"] for f in resources.values()}
    ids = {f["Properties"]["FunctionName"]: logical_id for logical_id, f in resources.items()}
    alarms = [a["Properties"] for a in synthesized.resources(env, "Operations", "AWS::CloudWatch::Alarm").values()]
    for model in config.models_of(environment):
        serving = config.serving_of(environment, model)
        settings = serving.by_id
        if not settings.enabled:
            continue
        name = score_by_id_function_name(prefix, model.name)
        function = functions[name]
        # Its alarms: the function's errors, throttles and p99 duration (the endpoint's p99 limit plus 500 ms
        # for the lookup), and the front's own 5xx count for the model; each tells people.
        own = {a["MetricName"]: a for a in alarms
               if a.get("Dimensions") == [{"Name": "FunctionName", "Value": {"Ref": ids[name]}}]}
        assert sorted(own) == ["Duration", "Errors", "Throttles"], (env, model.name)
        assert own["Duration"]["Threshold"] == serving.alarms.max_latency_p99_ms + 500, (env, model.name)
        # A rate over the front's own metric (its Sum over its SampleCount), tests/infra/constructs/test_score_by_id.py.
        (served_errors,) = [a for a in alarms if any(
            q.get("MetricStat", {}).get("Metric", {}).get("MetricName") == "ByIdServerErrors"
            and q["MetricStat"]["Metric"]["Dimensions"] == [{"Name": "Environment", "Value": env},
                                                            {"Name": "Model", "Value": model.name}]
            and q["MetricStat"]["Stat"] == "Sum" for q in a.get("Metrics", []))]
        assert served_errors["Threshold"] == serving.alarms.max_error_rate_percent, (env, model.name)
        assert all(a["AlarmActions"] for a in (*own.values(), served_errors)), (env, model.name)
        assert function["ReservedConcurrentExecutions"] == settings.max_concurrency, (env, model.name)
        variables = function["Environment"]["Variables"]
        assert (variables["ENVIRONMENT_NAME"], variables["MODEL_NAME"]) == (env, model.name)
        assert variables["FEATURE_GROUP"] == feature_group_name(prefix, model.dataset)
        assert {k: variables[k] for k in model.lookup_spec(settings).encode()} == model.lookup_spec(settings).encode()


class _ModesView:
    """The ``modes`` environment's Operations template behind the interface the by-id assertions use."""

    def __init__(self, modes) -> None:
        self.config, self._operations = modes.config, modes.operations

    def resources(self, env, stack, cfn_type):
        assert stack == "Operations"
        return {k: r for k, r in self._operations["Resources"].items() if r["Type"] == cfn_type}


def test_a_model_scored_by_id_gets_its_front_whatever_the_users_line_up(modes):
    """GIVEN the frozen ``modes`` test config, which scores one real-time model by id, WHEN synthesized THEN its
    front is there and configured (the user-config tests above hold vacuously for a config without by-id models)."""
    view, environment = _ModesView(modes), modes.config.environments[modes.env]
    assert [m.name for m in modes.config.models_of(environment) if modes.config.serving_of(environment, m).by_id.enabled]
    _assert_by_id_fronts(view, modes.env)
    _assert_by_id_settings(view, modes.env, environment)


def test_a_failed_or_timed_out_etl_job_of_any_dataset_tells_people(synthesized):
    # GIVEN every environment of the user's config
    for env in synthesized.config.environments:
        jobs = sorted(j["Properties"]["Name"] for j in synthesized.resources(env, "DataPipeline", "AWS::Glue::Job").values())
        rules = synthesized.resources(env, "Operations", "AWS::Events::Rule")
        (rule,) = [r["Properties"] for k, r in rules.items() if k.startswith("EtlFailures")]
        # THEN the rule watches exactly the environment's Glue jobs, for the states that stop fresh data
        pattern = rule["EventPattern"]
        assert (pattern["source"], pattern["detail-type"]) == (["aws.glue"], ["Glue Job State Change"]), env
        assert sorted(pattern["detail"]["jobName"]) == jobs and jobs, env
        assert pattern["detail"]["state"] == ["FAILED", "TIMEOUT"]
        # AND it notifies the environment's topic: which job and run, how it ended and Glue's message, what that stops,
        # and the command that shows the run
        (target,) = rule["Targets"]
        assert target["Arn"]["Ref"].startswith("Notifications"), env
        assert target["InputTransformer"]["InputPathsMap"] == {
            "detail-jobName": "$.detail.jobName", "detail-jobRunId": "$.detail.jobRunId", "detail-state": "$.detail.state",
            "detail-message": "$.detail.message"}, env
        assert json.loads(target["InputTransformer"]["InputTemplate"]) == (
            f"{PROJECT}-{env} ETL job <detail-jobName> run <detail-jobRunId> ended <detail-state>: <detail-message>. Until "
            "it runs again no fresh data of its dataset reaches training or the online store. The run (ErrorMessage, "
            "LogGroupName: its error log stream is the run id): aws glue get-job-run --job-name <detail-jobName> --run-id "
            f"<detail-jobRunId> --region {synthesized.config.environments[env].region}"), env


def test_a_failed_crawl_of_any_datasets_raw_files_tells_people(synthesized):
    """GIVEN every environment of the user's config WHEN a dataset's raw crawler fails (its role denied on the raw
    prefix or the key, a file it cannot classify, Glue's own error) THEN people are told: the nightly workflow starts
    the curate job only on a SUCCEEDED crawl, so no job runs, no job fails and the ETL rule never fires - before, the
    data simply stopped being fresh, silently. The notice names the crawler, Glue's error and the command that shows
    the crawl (its error, log group and stream)."""
    for env in synthesized.config.environments:
        crawlers = sorted(c["Properties"]["Name"] for c in
                          synthesized.resources(env, "DataPipeline", "AWS::Glue::Crawler").values())
        rules = synthesized.resources(env, "Operations", "AWS::Events::Rule")
        (rule,) = [r["Properties"] for k, r in rules.items() if k.startswith("CrawlerFailures")]
        pattern = rule["EventPattern"]
        assert (pattern["source"], pattern["detail-type"]) == (["aws.glue"], ["Glue Crawler State Change"]), env
        assert sorted(pattern["detail"]["crawlerName"]) == crawlers and crawlers, env
        assert pattern["detail"]["state"] == ["Failed"], env
        (target,) = rule["Targets"]
        assert target["Arn"]["Ref"].startswith("Notifications") and "DeadLetterConfig" in target, env
        assert target["InputTransformer"]["InputPathsMap"] == {
            "detail-crawlerName": "$.detail.crawlerName", "detail-errorMessage": "$.detail.errorMessage"}, env
        assert json.loads(target["InputTransformer"]["InputTemplate"]) == (
            f"{PROJECT}-{env} crawler <detail-crawlerName> failed: <detail-errorMessage>. Its dataset's curate and "
            "feature jobs start only after a successful crawl: no fresh data of that dataset reaches training or the "
            "online store until it runs again (the next nightly run, or its Glue workflow started by hand). The crawl "
            "(LastCrawl: ErrorMessage, LogGroup, LogStream): aws glue get-crawler --name <detail-crawlerName> --region "
            f"{synthesized.config.environments[env].region}"), env


def test_a_version_awaiting_approval_tells_the_approvers_what_to_review_and_how_to_decide(synthesized):
    # GIVEN every environment of the user's config
    for env in synthesized.config.environments:
        groups = sorted(g["Properties"]["ModelPackageGroupName"]
                        for g in synthesized.resources(env, "Storage", "AWS::SageMaker::ModelPackageGroup").values())
        rules = synthesized.resources(env, "Operations", "AWS::Events::Rule")
        (rule,) = [r["Properties"] for k, r in rules.items() if k.startswith("ApprovalRequests")]
        # THEN the rule watches exactly the environment's registry groups for complete versions left pending
        pattern = rule["EventPattern"]
        assert (pattern["source"], pattern["detail-type"]) == (["aws.sagemaker"], ["SageMaker Model Package State Change"])
        assert sorted(pattern["detail"]["ModelPackageGroupName"]) == groups and groups, env
        assert (pattern["detail"]["ModelApprovalStatus"], pattern["detail"]["ModelPackageStatus"]) == (
            ["PendingManualApproval"], ["Completed"])
        # AND it tells the environment's topic which version waits, how to review it and how to decide
        (target,) = rule["Targets"]
        assert target["Arn"]["Ref"].startswith("Notifications") and "DeadLetterConfig" in target, env
        transformer = target["InputTransformer"]
        assert transformer["InputPathsMap"] == {"detail-ModelPackageGroupName": "$.detail.ModelPackageGroupName",
                                                "detail-ModelPackageVersion": "$.detail.ModelPackageVersion",
                                                "detail-ModelPackageArn": "$.detail.ModelPackageArn"}
        text = json.loads(transformer["InputTemplate"])
        assert text.startswith("<detail-ModelPackageGroupName> version <detail-ModelPackageVersion> awaits a person's "
                               "approval.")
        assert f"python -m mlops_cli.audit --env {env} --model MODEL --version <detail-ModelPackageVersion>" in text
        assert ("aws sagemaker update-model-package --model-package-arn <detail-ModelPackageArn> "
                "--model-approval-status Approved (or Rejected) --approval-description 'why' "
                f"--region {synthesized.config.environments[env].region}.") in text


_AWS_COMMAND = re.compile(r"\baws [a-z0-9-]+ [a-z0-9-]+")


def test_every_aws_command_a_notice_or_alarm_gives_names_the_environments_region(synthesized):
    """On-call's default region may be another environment's: every ``aws <service> <operation>`` in a notice (a rule's
    input template) or an alarm description of the Operations stack carries ``--region <the environment's region>``."""
    checked = 0
    for env in synthesized.config.environments:
        region = synthesized.config.environments[env].region
        texts = [a["AlarmDescription"] for a in _alarms(synthesized, env).values() if isinstance(a.get("AlarmDescription"), str)]
        for rule in synthesized.resources(env, "Operations", "AWS::Events::Rule").values():
            texts += [t["InputTransformer"]["InputTemplate"] for t in rule["Properties"]["Targets"] if "InputTransformer" in t]
        for text in texts:
            starts = [m.start() for m in _AWS_COMMAND.finditer(text)]
            for start, end in zip(starts, [*starts[1:], len(text)]):
                command = text[start:end]
                assert f"--region {region}" in command, (env, command)
                checked += 1
    assert checked


# A project command a notice or an alarm gives: its module and its arguments, up to the text that follows it.
_CLI_COMMAND = re.compile(r"python -m (mlops_cli(?:\.\w+)+) (.+?)(?= \(| ?;|\. |\.$|, N:|$)")
# How a person fills in the placeholders each says it has (MODEL, N, WHY in its quotes, INC-ID, an event's version).
_FILLED = (("--model MODEL", "--model {model}"), ("--to-version N", "--to-version 3"), ('"WHY"', '"INC-42: v4 answers 5xx"'),
           ("INC-ID", "INC-42"), ("<detail-ModelPackageVersion>", "3"))


def test_every_project_command_a_notice_or_alarm_gives_parses_with_the_clis_own_parser(synthesized):
    """GIVEN every alarm description and notice template of each environment's Operations stack WHEN on-call fills in a
    ``python -m mlops_cli...`` command's placeholders with one of the environment's models THEN that module's own
    parser takes it, for that environment (a renamed flag, a subcommand moved or a module split must fail here, not
    at 3 a.m.)."""
    import importlib
    import shlex

    checked = set()
    for env in synthesized.config.environments:
        model = synthesized.config.environments[env].models[0]
        texts = [a["AlarmDescription"] for a in _alarms(synthesized, env).values() if isinstance(a.get("AlarmDescription"), str)]
        for rule in synthesized.resources(env, "Operations", "AWS::Events::Rule").values():
            # A notice is a JSON string (a handler's input, a JSON object, holds no command).
            texts += [json.loads(t["InputTransformer"]["InputTemplate"]) for t in rule["Properties"]["Targets"]
                      if isinstance((t.get("InputTransformer") or {}).get("InputTemplate"), str)
                      and t["InputTransformer"]["InputTemplate"].startswith('"')]
        for text in texts:
            for match in _CLI_COMMAND.finditer(text):
                module, arguments = match.group(1), match.group(2)
                for placeholder, value in _FILLED:
                    arguments = arguments.replace(placeholder, value.format(model=model))
                cli = importlib.import_module(f"{module}.cli" if module == "mlops_cli.audit" else module)
                args = cli.build_parser().parse_args(shlex.split(arguments))
                assert args.env == env, (module, arguments)
                checked.add(module)
    # The retraining pause and status, the rollback's versions and rollback, the audit of a version awaiting approval.
    assert {"mlops_cli.retraining", "mlops_cli.rollback", "mlops_cli.audit"} <= checked, checked


def test_every_notice_template_names_only_variables_eventbridge_defines(synthesized):
    """EventBridge refuses a target whose InputTemplate has a <placeholder> that is neither a key of its InputPathsMap
    nor one of its own (aws.events.*): CloudFormation would fail to create the rule."""
    checked = 0
    for (env, stack), synthesized_stack in synthesized.stacks.items():
        for logical_id, resource in synthesized_stack.template["Resources"].items():
            if resource["Type"] != "AWS::Events::Rule":
                continue
            for target in resource["Properties"].get("Targets", []):
                transformer = target.get("InputTransformer")
                if not transformer:
                    continue
                template = transformer["InputTemplate"]
                if not isinstance(template, str):  # a Fn::Join: its literal parts
                    template = "".join(p for p in template["Fn::Join"][1] if isinstance(p, str))
                named = set(re.findall(r"<([^<>]*)>", template))
                undefined = {n for n in named if n not in transformer.get("InputPathsMap", {})
                             and not n.startswith("aws.events.")}
                assert not undefined, (env, stack, logical_id, undefined)
                checked += 1
    assert checked  # the approval requests at least


@pytest.mark.parametrize("env", ENVS)
def test_a_deletion_scheduled_a_disable_or_a_new_policy_on_any_key_of_the_environment_tells_people(synthesized, env):
    """GIVEN each environment WHEN synthesized THEN one rule matches CloudTrail's successful ScheduleKeyDeletion,
    DisableKey and PutKeyPolicy calls on each of the Storage stack's keys (data, ops, watchdog), by key ID and ARN, and
    notifies the environment's topic (undeliverable notices to the notification dead-letter queue)."""
    rules = {k: r["Properties"] for k, r in synthesized.resources(env, "Operations", "AWS::Events::Rule").items()
             if k.startswith("KeyChanges")}
    (rule,) = rules.values()
    detail = rule["EventPattern"]["detail"]
    assert rule["EventPattern"]["source"] == ["aws.kms"]
    assert detail["eventName"] == ["ScheduleKeyDeletion", "DisableKey", "PutKeyPolicy"]
    keys = synthesized.resources(env, "Storage", "AWS::KMS::Key")
    named = [ref["Fn::GetStackOutput"]["OutputName"] for ref in detail["requestParameters"]["keyId"]]
    storage = synthesized.stacks[(env, "Storage")].stack_name
    assert {ref["Fn::GetStackOutput"]["StackName"] for ref in detail["requestParameters"]["keyId"]} == {storage}
    for key in keys:  # every key, by its id (Ref) and its ARN
        assert sum(key in output for output in named) == 2, (key, named)
    assert len(named) == 2 * len(keys) == 6
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Ref": next(k for k in synthesized.resources(env, "Operations", "AWS::SNS::Topic")
                                         if k.startswith("Notifications"))}
    assert "NotificationDeadLetters" in target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]


@pytest.mark.parametrize("env", ENVS)
def test_an_endpoint_of_the_environment_being_deleted_failed_or_out_of_service_tells_people(synthesized, env):
    """GIVEN each environment WHEN synthesized THEN one rule matches SageMaker's state changes of exactly the
    environment's endpoints (every model's that has one, whatever the line-up) to a lost state, notifies the topic and
    names the deploy handler that reconciles them; the handler may describe each of those endpoints."""
    served = synthesized.template(env, "Serving")
    endpoints = sorted({r["Properties"]["EndpointName"] for r in served["Resources"].values()
                        if r["Type"] == "AWS::SageMaker::Endpoint"})
    rules = [r["Properties"] for k, r in synthesized.resources(env, "Operations", "AWS::Events::Rule").items()
             if k.startswith("EndpointLosses")]
    if not endpoints:  # a line-up served in batch only
        assert rules == []
        return
    (rule,) = rules
    assert rule["EventPattern"]["detail-type"] == ["SageMaker Endpoint State Change"]
    assert rule["EventPattern"]["detail"]["EndpointName"] == endpoints
    assert "DELETING" in rule["EventPattern"]["detail"]["EndpointStatus"]
    (target,) = rule["Targets"]
    assert f"--function-name {PROJECT}-{env}-deploy-on-approval " in target["InputTransformer"]["InputTemplate"]
    check = policy_statements(synthesized.resources(env, "Operations", "AWS::IAM::ManagedPolicy"),
                              [k for k in synthesized.resources(env, "Operations", "AWS::IAM::ManagedPolicy")
                               if k.startswith("DeployOnApprovalAccessPolicy")])["CheckEndpoints"]
    region, account = synthesized.config.environments[env].region, synthesized.config.environments[env].account
    assert check["Resource"] == [f"arn:aws:sagemaker:{region}:{account}:endpoint/{e.lower()}" for e in endpoints]


def test_the_rollback_command_checks_reports_in_the_bucket_the_deploy_handler_is_given(synthesized):
    """GIVEN every environment of the config WHEN synthesized THEN the artifacts bucket the deploy handler reads
    evaluation reports in (APPROVAL_LEDGER) is the one the rollback command checks a version's reports against
    (mlops_cli.rollback.artifacts_bucket): one name, so rollback refuses exactly what the handler refuses."""
    from mlops_cli.rollback import artifacts_bucket

    checked = 0
    for env, environment in synthesized.config.environments.items():
        (variables,) = [v for r in synthesized.resources(env, "Operations", "AWS::Lambda::Function").values()
                        if "APPROVAL_LEDGER" in (v := r["Properties"].get("Environment", {}).get("Variables", {}))]
        bucket = json.loads(variables["APPROVAL_LEDGER"])["bucket"]
        assert bucket == artifacts_bucket(synthesized.config.project, env, environment.account, environment.region), env
        checked += 1
    assert checked
