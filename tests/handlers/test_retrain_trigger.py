"""The retrain trigger and its storm guard, against moto (and a stub for a running execution)."""

from __future__ import annotations

import datetime as dt
import io
import json

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws

from pipeline_code.core.contract import GATE_FAIL_STEP, monitor_namespace, pause_value, retraining_pause_parameter
from pipeline_code.handlers import retrain_trigger as rt

PIPELINE = "mlops-loop-dev-churn-training"
NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.timezone.utc)
# The on-call pause of the environment mlops-loop-dev and of its model churn (contract names).
ENVIRONMENT_PAUSE = retraining_pause_parameter("mlops-loop-dev")
CHURN_PAUSE = retraining_pause_parameter("mlops-loop-dev", "churn")
ALARM_EVENT = {
    "pipeline": PIPELINE,
    "reason": "drift",
    "alarm": "mlops-loop-dev-churn-data-drift",
    "source_event_id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
}


@pytest.fixture()
def clients(shared_clients):
    """A moto account for one test and the module's clients of it (tests/support/moto_clients.py): ``clients("ssm")``.
    A client made per test cost a new boto3 session and its service model read again (a third of this module's CPU)."""
    with mock_aws(), shared_clients.fresh() as made:
        yield made


@pytest.fixture()
def sagemaker(clients):
    client = clients("sagemaker")
    role = clients("iam").create_role(RoleName="p", AssumeRolePolicyDocument="{}")
    definition = {
        "Version": "2020-12-01",
        "Parameters": [{"Name": "TriggerReason", "Type": "String", "DefaultValue": "manual"}],
        "Steps": [],
    }
    client.create_pipeline(PipelineName=PIPELINE, PipelineDefinition=json.dumps(definition), RoleArn=role["Role"]["Arn"])
    return client


def not_paused(pipeline):
    return None


def run(event, client, now=NOW, cooldown_hours=24, paused=not_paused):
    return rt.decide_and_start(
        event, client=client, allowed_pipelines=frozenset({PIPELINE}), cooldown=dt.timedelta(hours=cooldown_hours), now=now,
        paused=paused,
    )


def executions(client):
    return client.list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"]


def test_alarm_starts_one_execution_with_the_trigger_reason(sagemaker):
    """GIVEN no previous run WHEN a drift alarm arrives THEN exactly one execution starts, with TriggerReason."""
    decision = run(ALARM_EVENT, sagemaker)
    assert decision["started"] is True
    assert decision["reason"] == "drift:mlops-loop-dev-churn-data-drift"
    (execution,) = executions(sagemaker)
    params = sagemaker.list_pipeline_parameters_for_execution(PipelineExecutionArn=execution["PipelineExecutionArn"])
    assert params["PipelineParameters"] == [{"Name": "TriggerReason", "Value": "drift:mlops-loop-dev-churn-data-drift"}]


def test_alarm_again_within_the_cooldown_starts_nothing(sagemaker):
    assert run(ALARM_EVENT, sagemaker)["started"] is True
    again = run({**ALARM_EVENT, "source_event_id": "another-event"}, sagemaker)
    assert again["started"] is False and again["reason"].startswith("cooldown")
    assert len(executions(sagemaker)) == 1


def test_after_the_cooldown_a_new_alarm_starts_again(sagemaker):
    assert run(ALARM_EVENT, sagemaker)["started"] is True
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=25)
    assert run(ALARM_EVENT, sagemaker, now=later)["started"] is True
    assert len(executions(sagemaker)) == 2


def test_alarm_during_a_running_execution_starts_nothing():
    """GIVEN an execution still Executing (stubbed: moto completes executions at once) WHEN an alarm arrives
    THEN no second execution is started."""
    client = boto3.client("sagemaker", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        stub.add_response(
            "list_pipeline_executions",
            {
                "PipelineExecutionSummaries": [
                    {
                        "PipelineExecutionArn": f"arn:aws:sagemaker:eu-west-1:111111111111:pipeline/{PIPELINE}/execution/abc",
                        "StartTime": NOW - dt.timedelta(days=3),
                        "PipelineExecutionStatus": "Executing",
                    }
                ]
            },
            {"PipelineName": PIPELINE, "SortBy": "CreationTime", "SortOrder": "Descending", "MaxResults": 100},
        )
        decision = run(ALARM_EVENT, client)
        stub.assert_no_pending_responses()  # and no start_pipeline_execution was attempted
    assert decision == {
        "started": False,
        "reason": "an execution is already running",
        "pipeline": PIPELINE,
        "running": f"arn:aws:sagemaker:eu-west-1:111111111111:pipeline/{PIPELINE}/execution/abc",
    }


def test_scheduled_retraining_uses_its_own_reason(sagemaker):
    decision = run({"pipeline": PIPELINE, "reason": "schedule"}, sagemaker)
    assert decision["started"] is True and decision["reason"] == "schedule"


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        ("not json", "expected a JSON object"),
        ({"reason": "drift"}, "missing or empty field(s) ['pipeline']"),
        ({"pipeline": PIPELINE, "reason": "because"}, "reason 'because' is not one of"),
    ],
)
def test_malformed_events_are_dropped_not_raised(sagemaker, event, problem):
    decision = run(event, sagemaker)
    assert decision["started"] is False and problem in decision["reason"]
    assert executions(sagemaker) == []


def test_a_pipeline_outside_the_allow_list_is_never_started(sagemaker):
    decision = run({**ALARM_EVENT, "pipeline": "someone-elses-pipeline"}, sagemaker)
    assert decision["started"] is False and "not one this trigger may start" in decision["reason"]


def test_trigger_reason_keeps_only_metadata_safe_characters():
    assert rt.trigger_reason("drift", "alarm#1 (psi>0.2)") == "drift:alarm-1 -psi-0.2-"


def test_duplicate_deliveries_of_one_event_share_an_idempotency_token():
    assert rt.client_token(ALARM_EVENT, NOW) == rt.client_token(dict(ALARM_EVENT), NOW + dt.timedelta(minutes=5))
    assert rt.client_token({**ALARM_EVENT, "source_event_id": "other"}, NOW) != rt.client_token(ALARM_EVENT, NOW)


def test_handler_reads_its_settings_from_the_environment(sagemaker, monkeypatch, clients):
    monkeypatch.setenv("NAME_PREFIX", "mlops-loop-dev")
    monkeypatch.setenv("MODEL_PIPELINES", json.dumps({"churn": PIPELINE, "other": "mlops-loop-dev-other-training"}))
    monkeypatch.setenv("COOLDOWN_HOURS", "2")
    assert rt.handler(ALARM_EVENT, client=sagemaker, ssm=clients("ssm"),
                      now=lambda: NOW)["started"] is True


# ---------------------------------------------------------------- the sweep: alarms still in ALARM after the cooldown
ALARMS = {"mlops-loop-dev-churn-retrain-data-drift": PIPELINE, "mlops-loop-dev-churn-retrain-quality": PIPELINE,
          "mlops-loop-dev-other-retrain-data-drift": "mlops-loop-dev-other-training"}


def alarms_in(cloudwatch, states):
    for name, state in states.items():
        cloudwatch.put_metric_alarm(AlarmName=name, MetricName="DataDriftScore", Namespace=monitor_namespace(
                                        "mlops-loop", "dev", name.removeprefix("mlops-loop-dev-").split("-retrain-")[0]),
                                    Statistic="Maximum", Period=86400, EvaluationPeriods=1, Threshold=1,
                                    ComparisonOperator="GreaterThanOrEqualToThreshold")
        cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason="test")


def sweep(sagemaker, cloudwatch, now, paused=not_paused):
    return rt.sweep(cloudwatch=cloudwatch, alarm_pipelines=ALARMS, client=sagemaker,
                    allowed_pipelines=frozenset({PIPELINE}), cooldown=dt.timedelta(hours=24), now=now, paused=paused)


def test_an_alarm_that_stays_in_alarm_through_the_cooldown_starts_a_retrain_after_it(sagemaker, clients):
    cloudwatch = clients("cloudwatch")
    # GIVEN a drift alarm answered by a retrain, then in ALARM again during the cooldown (its event was refused)
    assert run(ALARM_EVENT, sagemaker)["started"] is True
    alarms_in(cloudwatch, {"mlops-loop-dev-churn-retrain-data-drift": "ALARM", "mlops-loop-dev-churn-retrain-quality": "OK"})
    # WHEN the hourly sweep runs inside the cooldown THEN nothing starts; after it, exactly one retrain starts
    started = dt.datetime.now(dt.timezone.utc)  # moto stamps executions with the wall clock
    assert sweep(sagemaker, cloudwatch, started + dt.timedelta(hours=1))["started"] is False
    later = sweep(sagemaker, cloudwatch, started + dt.timedelta(hours=25))
    assert later["started"] is True and later["alarms_in_alarm"] == {PIPELINE: "mlops-loop-dev-churn-retrain-data-drift"}
    assert later["decisions"][0]["reason"] == "drift:mlops-loop-dev-churn-retrain-data-drift"
    # AND the next hour's sweep is held by the new run's cooldown (it started "now" for moto): no storm
    assert sweep(sagemaker, cloudwatch, dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1))["started"] is False
    assert len(executions(sagemaker)) == 2


def test_the_sweep_starts_nothing_when_no_retrain_alarm_is_in_alarm_and_skips_pipelines_it_may_not_start(sagemaker, clients):
    cloudwatch = clients("cloudwatch")
    alarms_in(cloudwatch, {"mlops-loop-dev-churn-retrain-data-drift": "OK", "mlops-loop-dev-other-retrain-data-drift": "ALARM",
                           "someone-elses-alarm": "ALARM"})
    result = sweep(sagemaker, cloudwatch, NOW)
    assert result["started"] is False and executions(sagemaker) == []
    # the other model's pipeline is not on this trigger's allow-list: refused by the same guard
    (decision,) = result["decisions"]
    assert decision["reason"] == "pipeline 'mlops-loop-dev-other-training' is not one this trigger may start"


def two_models_in_alarm(sagemaker, clients):
    """The other model's pipeline beside churn's, and both models' drift alarms in ALARM; returns CloudWatch."""
    role = clients("iam").get_role(RoleName="p")["Role"]["Arn"]
    sagemaker.create_pipeline(PipelineName=OTHER, PipelineDefinition=json.dumps(
        {"Version": "2020-12-01", "Steps": [],
         "Parameters": [{"Name": "TriggerReason", "Type": "String", "DefaultValue": "manual"}]}), RoleArn=role)
    cloudwatch = clients("cloudwatch")
    alarms_in(cloudwatch, {"mlops-loop-dev-churn-retrain-data-drift": "ALARM", "mlops-loop-dev-other-retrain-data-drift": "ALARM"})
    return cloudwatch


def test_a_model_whose_pause_cannot_be_read_does_not_hold_the_other_models_retraining_in_the_sweep(sagemaker, clients):
    """GIVEN two models' retrain alarms in ALARM and SSM failing for the first model's pause only WHEN the hourly sweep
    runs THEN the second model's retrain starts, and the sweep still fails naming the first (Lambda retries it; the
    started one's token keeps the retry from starting it twice): one model's trouble never blocks the others."""
    cloudwatch = two_models_in_alarm(sagemaker, clients)

    def paused(pipeline):
        if pipeline == PIPELINE:
            raise rt.PauseUnknown(f"cannot read the retraining pause of {pipeline}: ThrottlingException")
        return None

    with pytest.raises(rt.PauseUnknown, match=f"cannot read the retraining pause of {PIPELINE}"):
        rt.sweep(cloudwatch=cloudwatch, alarm_pipelines=ALARMS, client=sagemaker, allowed_pipelines=frozenset({PIPELINE, OTHER}),
                 cooldown=dt.timedelta(hours=24), now=NOW, paused=paused)
    started = sagemaker.list_pipeline_executions(PipelineName=OTHER)["PipelineExecutionSummaries"]
    assert len(started) == 1 and executions(sagemaker) == []


def test_a_model_sagemaker_will_not_answer_for_does_not_hold_the_other_models_retraining_in_the_sweep(sagemaker, clients):
    """GIVEN two models' retrain alarms in ALARM and SageMaker throttling the first model's execution list only WHEN
    the hourly sweep runs THEN the second model's retrain starts, and the sweep still fails naming the first (Lambda
    retries it; the started one is running then, so the retry does not start it again)."""
    cloudwatch = two_models_in_alarm(sagemaker, clients)

    class Throttled:
        def __getattr__(self, name):
            return getattr(sagemaker, name)

        def list_pipeline_executions(self, **kwargs):
            if kwargs["PipelineName"] == PIPELINE:
                raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}},
                                  "ListPipelineExecutions")
            return sagemaker.list_pipeline_executions(**kwargs)

    with pytest.raises(rt.SweepIncomplete) as raised:
        rt.sweep(cloudwatch=cloudwatch, alarm_pipelines=ALARMS, client=Throttled(),
                 allowed_pipelines=frozenset({PIPELINE, OTHER}), cooldown=dt.timedelta(hours=24), now=NOW,
                 paused=lambda pipeline: None)
    assert str(raised.value) == (
        f"the hourly sweep could not decide {PIPELINE}: An error occurred (ThrottlingException) when calling the "
        "ListPipelineExecutions operation: Rate exceeded; the other models were decided, and the invocation fails so "
        "that Lambda retries it")
    started = sagemaker.list_pipeline_executions(PipelineName=OTHER)["PipelineExecutionSummaries"]
    assert len(started) == 1 and executions(sagemaker) == []


def test_the_handler_routes_a_sweep_event_with_its_settings(sagemaker, monkeypatch, clients):
    cloudwatch = clients("cloudwatch")
    alarms_in(cloudwatch, {"mlops-loop-dev-churn-retrain-quality": "ALARM"})
    monkeypatch.setenv("NAME_PREFIX", "mlops-loop-dev")
    monkeypatch.setenv("MODEL_PIPELINES", json.dumps({"churn": PIPELINE}))
    result = rt.handler({"reason": "sweep"}, client=sagemaker, cloudwatch=cloudwatch,
                        ssm=clients("ssm"), now=lambda: NOW)
    assert result["started"] is True and result["reason"] == "sweep"


# ---------------------------------------------------------------- which earlier runs hold the cooldown
def stubbed(history, steps=None):
    """A SageMaker client stubbed with ``history`` (newest first: (status, hours before NOW)) and, for each failed
    run, the names of its executed steps; StartPipelineExecution answered when the guard lets it through."""
    client = boto3.client("sagemaker", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(client)
    summaries = [{"PipelineExecutionArn": f"arn:aws:sagemaker:eu-west-1:111111111111:pipeline/{PIPELINE}/execution/e{i}",
                  "StartTime": NOW - dt.timedelta(hours=hours), "PipelineExecutionStatus": status}
                 for i, (status, hours) in enumerate(history)]
    stub.add_response("list_pipeline_executions", {"PipelineExecutionSummaries": summaries})
    for i, (status, hours) in enumerate(history):
        if status == "Failed" and hours < 24:
            names = (steps or {}).get(i, ["Prepare", "Train"])
            stub.add_response("list_pipeline_execution_steps", {"PipelineExecutionSteps": [
                {"StepName": n, "StepStatus": "Failed" if n == names[-1] else "Succeeded"} for n in names]},
                {"PipelineExecutionArn": summaries[i]["PipelineExecutionArn"], "MaxResults": 50})
    return client, stub


@pytest.mark.parametrize("history, steps, started, reason", [
    # a run that failed on infrastructure (training crashed) trained nothing: the drift is answered now
    ([("Failed", 2)], None, True, "drift:"),
    # a person stopped the last run: it does not hold the cooldown either
    ([("Stopped", 2), ("Succeeded", 30)], None, True, "drift:"),
    # the gate rejected the last challenger: the model was judged, the cooldown holds
    ([("Failed", 2)], {0: ["Prepare", "Train", "Evaluate", "CheckGate", "GateFailed"]}, False, "cooldown"),
    # an infrastructure failure after a successful run inside the cooldown: the success holds it
    ([("Failed", 1), ("Succeeded", 5)], None, False, "cooldown"),
    # three starts in the last 24 hours, whatever became of them: the storm guard stops the fourth
    ([("Stopped", 1), ("Stopped", 2), ("Stopped", 3)], None, False, "storm guard"),
    # three starts a day ago or more: outside the storm guard's window, the drift is answered
    ([("Stopped", 24), ("Stopped", 25), ("Stopped", 26)], None, True, "drift:"),
])
def test_only_runs_that_could_have_answered_the_drift_hold_the_cooldown(history, steps, started, reason):
    client, stub = stubbed(history, steps)
    if started:
        stub.add_response("start_pipeline_execution", {"PipelineExecutionArn": "arn:new"})
    with stub:
        decision = run(ALARM_EVENT, client)
        stub.assert_no_pending_responses()
    assert decision["started"] is started and decision["reason"].startswith(reason)


# ---------------------------------------------------------------- the on-call pause (SSM parameters no deploy manages)
OTHER = "mlops-loop-dev-other-training"
PAUSE = {"reason": "INC-42: bad labels in the lake", "by": "arn:aws:sts::111111111111:assumed-role/oncall/ana",
         "at": "2026-11-26T09:30:00Z"}


@pytest.fixture()
def ssm(sagemaker, clients):  # inside the same moto context as the pipeline
    return clients("ssm")


def switch(ssm):
    return rt.PauseSwitch(ssm, ENVIRONMENT_PAUSE, {PIPELINE: CHURN_PAUSE,
                                                   OTHER: retraining_pause_parameter("mlops-loop-dev", "other")})


def pause(ssm, name, value=None):
    ssm.put_parameter(Name=name, Type="String", Value=value if value is not None else json.dumps(PAUSE))


@pytest.mark.parametrize("event", [ALARM_EVENT, {"pipeline": PIPELINE, "reason": "schedule"}], ids=["drift", "schedule"])
@pytest.mark.parametrize("scope", ["environment", "model"])
def test_a_paused_environment_or_model_starts_nothing_on_a_drift_alarm_or_the_schedule(sagemaker, ssm, event, scope):
    # GIVEN on-call paused the whole environment, or the model alone
    parameter = ENVIRONMENT_PAUSE if scope == "environment" else CHURN_PAUSE
    pause(ssm, parameter)
    # WHEN a drift alarm or the retraining schedule asks for a retrain
    decision = run(event, sagemaker, paused=switch(ssm))
    # THEN nothing starts, and the decision names the pause: which parameter, who, when, why
    assert decision == {"started": False, "reason": "paused", "pipeline": PIPELINE,
                        "trigger": rt.trigger_reason(event["reason"], event.get("alarm")),
                        "pause": {"parameter": parameter, **PAUSE}}
    assert executions(sagemaker) == []


def test_not_paused_the_guard_starts_as_before(sagemaker, ssm):
    assert switch(ssm)(PIPELINE) is None
    assert run(ALARM_EVENT, sagemaker, paused=switch(ssm))["started"] is True


def test_a_models_pause_holds_that_model_alone_and_the_environments_comes_first(ssm):
    pause(ssm, CHURN_PAUSE)
    assert switch(ssm)(PIPELINE)["parameter"] == CHURN_PAUSE
    assert switch(ssm)(OTHER) is None
    pause(ssm, ENVIRONMENT_PAUSE, json.dumps({**PAUSE, "reason": "freeze for the audit"}))
    assert switch(ssm)(OTHER) == {"parameter": ENVIRONMENT_PAUSE, **PAUSE, "reason": "freeze for the audit"}
    assert switch(ssm)(PIPELINE)["parameter"] == ENVIRONMENT_PAUSE


def test_a_pause_written_by_hand_pauses_whatever_its_value(ssm):
    """GIVEN a parameter created in the console with a plain-text value WHEN read THEN it pauses, the text its reason."""
    pause(ssm, ENVIRONMENT_PAUSE, "stop! ask Ana")
    assert switch(ssm)(PIPELINE) == {"parameter": ENVIRONMENT_PAUSE, "reason": "stop! ask Ana", "by": "unknown", "at": "unknown"}


def test_a_drift_alarm_refused_during_the_pause_is_answered_by_the_first_sweep_after_the_resume(sagemaker, ssm, clients):
    cloudwatch = clients("cloudwatch")
    # GIVEN the model paused and its drift alarm in ALARM (its event refused: paused)
    pause(ssm, CHURN_PAUSE)
    assert run(ALARM_EVENT, sagemaker, paused=switch(ssm))["reason"] == "paused"
    alarms_in(cloudwatch, {"mlops-loop-dev-churn-retrain-data-drift": "ALARM"})
    # WHEN the hourly sweep runs during the pause THEN it starts nothing either
    held = sweep(sagemaker, cloudwatch, NOW, paused=switch(ssm))
    assert held["started"] is False and [d["reason"] for d in held["decisions"]] == ["paused"]
    # WHEN on-call resumes (the parameter is deleted) THEN the next sweep starts the retrain the alarm asked for
    ssm.delete_parameter(Name=CHURN_PAUSE)
    resumed = sweep(sagemaker, cloudwatch, NOW + dt.timedelta(hours=1), paused=switch(ssm))
    assert resumed["started"] is True
    assert resumed["decisions"][0]["reason"] == "drift:mlops-loop-dev-churn-retrain-data-drift"
    assert len(executions(sagemaker)) == 1


def test_the_handler_reads_the_pause_named_by_its_environment_on_every_path(sagemaker, ssm, monkeypatch, caplog, clients):
    cloudwatch = clients("cloudwatch")
    alarms_in(cloudwatch, {"mlops-loop-dev-churn-retrain-quality": "ALARM"})
    monkeypatch.setenv("NAME_PREFIX", "mlops-loop-dev")
    monkeypatch.setenv("MODEL_PIPELINES", json.dumps({"churn": PIPELINE}))
    pause(ssm, CHURN_PAUSE)
    caplog.set_level("INFO", logger=rt.LOG.name)
    for event in (ALARM_EVENT, {"pipeline": PIPELINE, "reason": "schedule"}, {"reason": "sweep"}):
        result = rt.handler(event, client=sagemaker, cloudwatch=cloudwatch, ssm=ssm, now=lambda: NOW)
        decision = result["decisions"][0] if event.get("reason") == "sweep" else result
        assert decision["reason"] == "paused" and decision["pause"]["parameter"] == CHURN_PAUSE
    assert executions(sagemaker) == []
    # each decision is one JSON log line naming the pause
    logged = [json.loads(r.getMessage()) for r in caplog.records]
    assert [line.get("reason") for line in logged] == ["paused", "paused", "sweep"]
    assert logged[0]["pause"]["reason"] == PAUSE["reason"]


@pytest.mark.parametrize("code", ["AccessDeniedException", "ThrottlingException", "InternalServerError"])
def test_when_ssm_cannot_say_whether_retraining_is_paused_nothing_starts_and_the_invocation_fails(monkeypatch, caplog, code):
    """Failing closed and loud: no start (the SageMaker stub expects no call), an error log line, and a raised error
    (Lambda retries it, then dead-letters it; the dead-letters alarm tells people once, trigger-errors only shows it)."""
    monkeypatch.setenv("NAME_PREFIX", "mlops-loop-dev")
    monkeypatch.setenv("MODEL_PIPELINES", json.dumps({"churn": PIPELINE}))
    keys = {"region_name": "eu-west-1", "aws_access_key_id": "x", "aws_secret_access_key": "x"}
    ssm_client, sagemaker_client = boto3.client("ssm", **keys), boto3.client("sagemaker", **keys)
    with Stubber(ssm_client) as ssm_stub, Stubber(sagemaker_client) as sagemaker_stub:
        ssm_stub.add_client_error("get_parameters", service_error_code=code, service_message="no",
                                  expected_params={"Names": [ENVIRONMENT_PAUSE, CHURN_PAUSE]})
        with pytest.raises(rt.PauseUnknown, match=rf"cannot read the retraining pause .*{code}.*{PIPELINE} was not started"):
            rt.handler(ALARM_EVENT, client=sagemaker_client, ssm=ssm_client, now=lambda: NOW)
        ssm_stub.assert_no_pending_responses()
        sagemaker_stub.assert_no_pending_responses()
    (line,) = [json.loads(r.getMessage()) for r in caplog.records if r.levelname == "ERROR"]
    assert line["started"] is False and line["reason"] == "pause unknown"


def test_a_function_not_told_where_the_pause_is_starts_nothing(sagemaker, monkeypatch):
    monkeypatch.setenv("MODEL_PIPELINES", json.dumps({"churn": PIPELINE}))
    monkeypatch.delenv("NAME_PREFIX", raising=False)
    with pytest.raises(rt.PauseUnknown, match="NAME_PREFIX is not set"):
        rt.handler(ALARM_EVENT, client=sagemaker, now=lambda: NOW)
    assert executions(sagemaker) == []


# ---------------------------------------------------------------- the storm guard: its own 24-hour window
def test_the_storm_guard_counts_the_last_24_hours_whatever_the_cooldown():
    """GIVEN three failed runs (each trained nothing, so none holds the cooldown) in the last 24 hours, all older than
    a 1-hour cooldown WHEN a drift alarm arrives THEN the storm guard refuses it and says when a start may come."""
    client = boto3.client("sagemaker", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        stub.add_response("list_pipeline_executions", {"PipelineExecutionSummaries": [
            summary(2, "Failed"), summary(9, "Failed"), summary(20, "Failed"), summary(30, "Succeeded")]}, listing())
        decision = run(ALARM_EVENT, client, cooldown_hours=1)
        stub.assert_no_pending_responses()  # and nothing started
    assert decision == {"started": False, "pipeline": PIPELINE, "reason": (
        "storm guard: 3 executions started in the last 24 hours, at most 3 a day whatever became of them; none starts "
        f"before {(NOW + dt.timedelta(hours=4)).isoformat()} (if they failed, the pipeline needs a person)")}


def test_the_storm_guard_allows_as_many_starts_a_day_as_configured():
    client, stub = stubbed([("Stopped", 2)])
    with stub:
        decision = rt.decide_and_start(ALARM_EVENT, client=client, allowed_pipelines=frozenset({PIPELINE}),
                                       cooldown=dt.timedelta(hours=24), now=NOW, paused=not_paused, max_starts_per_day=1)
        stub.assert_no_pending_responses()
    assert decision["started"] is False and decision["reason"].startswith("storm guard: 1 executions started in the "
                                                                          "last 24 hours, at most 1 a day")


def summary(hours_ago, status="Stopped", name=None):
    return {"PipelineExecutionArn": f"arn:aws:sagemaker:eu-west-1:111111111111:pipeline/{PIPELINE}/execution/"
                                    f"{name or f'h{hours_ago}'}",
            "StartTime": NOW - dt.timedelta(hours=hours_ago), "PipelineExecutionStatus": status}


def listing(token=None):
    return {"PipelineName": PIPELINE, "SortBy": "CreationTime", "SortOrder": "Descending", "MaxResults": 100,
            **({"NextToken": token} if token else {})}


def test_the_guard_follows_next_token_until_it_has_read_past_its_window():
    """GIVEN SageMaker answers the listing in pages (fewer than asked, with a NextToken), the third start of the day on
    the second page WHEN an alarm arrives THEN the guard reads that page too and the storm guard holds."""
    client = boto3.client("sagemaker", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        stub.add_response("list_pipeline_executions", {"PipelineExecutionSummaries": [summary(1), summary(3)],
                                                       "NextToken": "page-2"}, listing())
        stub.add_response("list_pipeline_executions", {"PipelineExecutionSummaries": [summary(5), summary(40)],
                                                       "NextToken": "page-3"}, listing("page-2"))
        decision = run(ALARM_EVENT, client)
        stub.assert_no_pending_responses()  # and no third page: the second reached back past the 24 hours
    assert decision["started"] is False and decision["reason"].startswith("storm guard: 3 executions")


def test_the_guard_sees_a_run_on_a_later_page_that_answered_the_drift_within_a_long_cooldown():
    """A 7-day cooldown: a success 5 days ago on the second page still holds it."""
    client = boto3.client("sagemaker", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        stub.add_response("list_pipeline_executions", {"PipelineExecutionSummaries": [summary(30), summary(50)],
                                                       "NextToken": "page-2"}, listing())
        stub.add_response("list_pipeline_executions", {"PipelineExecutionSummaries": [summary(120, "Succeeded")]},
                          listing("page-2"))
        decision = run(ALARM_EVENT, client, cooldown_hours=24 * 7)
        stub.assert_no_pending_responses()
    assert decision["started"] is False and decision["reason"].startswith("cooldown")


def test_a_run_still_executing_from_before_the_window_is_seen():
    """No CreatedAfter: a training that runs for days still holds the next start off, though it began 3 days ago."""
    client = boto3.client("sagemaker", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        stub.add_response("list_pipeline_executions", {"PipelineExecutionSummaries": [summary(72, "Executing")]}, listing())
        decision = run(ALARM_EVENT, client)
        stub.assert_no_pending_responses()
    assert decision["started"] is False and decision["reason"] == "an execution is already running"


@pytest.mark.parametrize("cooldown_hours, outcome, max_starts", [
    (1, "Succeeded", 3),   # a 1-hour cooldown: each run answered the drift, the alarm stays in ALARM anyway
    (0, "Succeeded", 3),   # no cooldown at all (the config refuses it; the function's guard holds regardless)
    (24, "Stopped", 3),    # each run trained nothing (stopped, as a spot or capacity failure), so none holds the cooldown
    (1, "Stopped", 1),
])
def test_an_alarm_in_alarm_for_48_hourly_sweeps_starts_at_most_the_days_allowance_in_any_24_hours(
        sagemaker, monkeypatch, cooldown_hours, outcome, max_starts, clients):
    """GIVEN a retrain alarm that stays in ALARM for two days WHEN the hourly sweep runs 48 times (moto's clock set to
    each sweep's hour; every run over before the next sweep, with ``outcome``) THEN at most ``max_starts`` executions
    start in any 24 hours, and exactly that many each day: the guard holds, it does not stop for good."""
    import moto.sagemaker.models as moto_sagemaker

    cloudwatch = clients("cloudwatch")
    alarms_in(cloudwatch, {"mlops-loop-dev-churn-retrain-data-drift": "ALARM"})
    backend = moto_sagemaker.sagemaker_backends["123456789012"]["eu-west-1"]
    starts = []
    for hour in range(48):
        now = NOW + dt.timedelta(hours=hour)
        monkeypatch.setattr(moto_sagemaker, "utcnow", lambda now=now: now.replace(tzinfo=None))
        for execution in backend.pipelines[PIPELINE].pipeline_executions.values():
            execution.pipeline_execution_status = outcome  # the last hour's run is over
        result = rt.sweep(cloudwatch=cloudwatch, alarm_pipelines=ALARMS, client=sagemaker,
                          allowed_pipelines=frozenset({PIPELINE}), cooldown=dt.timedelta(hours=cooldown_hours), now=now,
                          paused=not_paused, max_starts_per_day=max_starts)
        if result["started"]:
            starts.append(now)
    assert len(executions(sagemaker)) == len(starts)
    in_any_day = max(sum(1 for s in starts if first <= s < first + dt.timedelta(hours=24)) for first in starts)
    assert in_any_day == max_starts
    assert len(starts) == 2 * max_starts


def test_the_handler_reads_the_days_allowance_from_its_environment():
    assert rt.settings_of({"NAME_PREFIX": "p"})["max_starts_per_day"] == rt.MAX_STARTS_PER_DAY == 3
    assert rt.settings_of({"NAME_PREFIX": "p", "MAX_STARTS_PER_DAY": "1"})["max_starts_per_day"] == 1


def test_without_its_settings_the_handler_holds_the_configs_defaults():
    """A function whose environment lost COOLDOWN_HOURS / MAX_STARTS_PER_DAY (a hand edit) behaves as the config's
    defaults say, not as a second copy of them."""
    from mlops_loop.config.monitoring import MonitoringConfig
    defaults = MonitoringConfig.model_fields
    settings = rt.settings_of({"NAME_PREFIX": "p"})
    assert settings["cooldown_hours"] == defaults["retraining_cooldown_hours"].default
    assert settings["max_starts_per_day"] == defaults["retraining_max_starts_per_day"].default


@pytest.mark.parametrize("value", ["0", "-2"])
def test_an_allowance_below_one_start_a_day_is_refused_naming_the_setting_and_the_fix(value):
    with pytest.raises(ValueError) as error:
        rt.settings_of({"NAME_PREFIX": "p", "MAX_STARTS_PER_DAY": value})
    assert str(error.value) == (f"MAX_STARTS_PER_DAY={value}: the storm guard needs at least 1 start a day; set "
                                "monitoring.retraining_max_starts_per_day in the config and deploy the Operations stack again")


# ---------------------------------------------------------------- the circuit breaker: a pipeline that keeps failing
class Runs:
    """A SageMaker client holding a pipeline's executions (newest first) and each one's steps; it records the starts
    and, like SageMaker, lists a started execution as running."""

    def __init__(self, *executions):
        self.executions, self.steps, self.started = [], {}, []
        for execution in executions:
            self.add(*execution)

    def add(self, status, hours_ago, display="drift-20261126T000000", failed_step="Train", failure="AlgorithmError: boom"):
        arn = f"arn:aws:sagemaker:eu-west-1:111111111111:pipeline/{PIPELINE}/execution/r{len(self.executions)}"
        self.executions.insert(0, {"PipelineExecutionArn": arn, "StartTime": NOW - dt.timedelta(hours=hours_ago),
                                   "PipelineExecutionStatus": status, "PipelineExecutionDisplayName": display})
        self.executions.sort(key=lambda e: e["StartTime"], reverse=True)
        self.steps[arn] = [{"StepName": "Prepare", "StepStatus": "Succeeded"},
                           {"StepName": failed_step, "StepStatus": "Failed", "FailureReason": failure}]
        return arn

    def list_pipeline_executions(self, **_):
        return {"PipelineExecutionSummaries": list(self.executions)}

    def list_pipeline_execution_steps(self, PipelineExecutionArn, MaxResults):
        return {"PipelineExecutionSteps": self.steps[PipelineExecutionArn]}

    def start_pipeline_execution(self, **request):
        display = request["PipelineExecutionDisplayName"]  # "<reason>-<the trigger's now>"
        at = dt.datetime.strptime(display.rsplit("-", 1)[1], "%Y%m%dT%H%M%S").replace(tzinfo=dt.timezone.utc)
        arn = self.add("Executing", (NOW - at) / dt.timedelta(hours=1), display)
        self.started.append(arn)
        return {"PipelineExecutionArn": arn}

    def fail(self, arn):
        """The run ``arn`` failed in training."""
        next(e for e in self.executions if e["PipelineExecutionArn"] == arn)["PipelineExecutionStatus"] = "Failed"


@pytest.fixture()
def pages(ssm, clients):
    """The operations topic (moto), with a queue that receives its messages: what people were paged."""
    sns, sqs = clients("sns"), clients("sqs")
    topic = sns.create_topic(Name="notifications")["TopicArn"]
    queue = sqs.create_queue(QueueName="people")["QueueUrl"]
    sns.subscribe(TopicArn=topic, Protocol="sqs",
                  Endpoint=sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])

    def received():
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"])["Message"] for m in messages]
    return sns, topic, received


def breaker_env(monkeypatch, topic, failures=None):
    monkeypatch.setenv("NAME_PREFIX", "mlops-loop-dev")
    monkeypatch.setenv("ENVIRONMENT", "dev")
    monkeypatch.setenv("MODEL_PIPELINES", json.dumps({"churn": PIPELINE}))
    monkeypatch.setenv("TOPIC_ARN", topic)
    if failures is not None:
        monkeypatch.setenv("FAILURES_BEFORE_PAUSE", str(failures))


def trigger(event, runs, ssm, sns, now=NOW):
    return rt.handler(event, client=runs, ssm=ssm, sns=sns, now=lambda: now)


def sweep_event(i):
    """The drift alarm still in ALARM, as the sweep of hour ``i`` hands it to the guard."""
    return {**ALARM_EVENT, "source_event_id": f"sweep-{i}"}


def test_after_n_failed_runs_the_trigger_pauses_the_model_and_pages_once(ssm, pages, monkeypatch):
    """GIVEN the trigger started two runs that failed in training WHEN the sweep comes again THEN it starts nothing,
    creates the model's pause (the on-call pause) and pages once, naming the model, the last failure and the resume."""
    sns, topic, received = pages
    breaker_env(monkeypatch, topic)
    runs = Runs(("Failed", 30), ("Failed", 6))
    last = runs.executions[0]["PipelineExecutionArn"]
    decision = trigger(sweep_event(1), runs, ssm, sns)
    assert decision["started"] is False and decision["reason"] == "circuit breaker" and decision["paged"] is True
    assert runs.started == []
    held = rt.PauseSwitch(ssm, ENVIRONMENT_PAUSE, {PIPELINE: CHURN_PAUSE})(PIPELINE)
    assert held["parameter"] == CHURN_PAUSE and held["by"] == "retrain-trigger circuit breaker"
    assert last in held["reason"] and "AlgorithmError: boom" in held["reason"]
    (page,) = received()
    assert "model 'churn'" in page and last in page and "AlgorithmError: boom" in page
    assert "python -m mlops_cli.retraining --env dev --model churn resume" in page
    # The AWS command it gives names the execution's region: on-call's default region may be another environment's.
    assert f"aws sagemaker list-pipeline-execution-steps --pipeline-execution-arn {last} --region eu-west-1" in page
    # every later sweep, a schedule or a duplicate of the event: paused, no page, no start
    for event in (sweep_event(1), sweep_event(2), {"pipeline": PIPELINE, "reason": "schedule"}):
        assert trigger(event, runs, ssm, sns)["reason"] == "paused"
    assert received() == [] and runs.started == []


def test_one_failed_run_below_the_threshold_is_started_again(ssm, pages, monkeypatch):
    sns, topic, received = pages
    breaker_env(monkeypatch, topic, failures=3)
    runs = Runs(("Failed", 30), ("Failed", 6))
    assert trigger(sweep_event(1), runs, ssm, sns)["started"] is True
    assert received() == []


def test_a_concurrent_invocation_that_finds_the_breakers_pause_made_pages_nobody(ssm, pages, monkeypatch):
    """Two invocations judged the same failures at once: the pause is created once (Overwrite=False); the one that
    finds it made starts nothing and pages nobody."""
    sns, topic, received = pages
    breaker_env(monkeypatch, topic)
    runs = Runs(("Failed", 30), ("Failed", 6))
    switch_ = rt.PauseSwitch(ssm, ENVIRONMENT_PAUSE, {PIPELINE: CHURN_PAUSE})
    first = trigger(sweep_event(1), runs, ssm, sns)
    # the second passed the pause check before the first wrote it
    second = rt.decide_and_start(sweep_event(1), client=runs, allowed_pipelines=frozenset({PIPELINE}),
                                 cooldown=dt.timedelta(hours=24), now=NOW, paused=lambda p: None,
                                 breaker=rt.Breaker(ssm, sns, topic, 2, "dev", {PIPELINE: "churn"},
                                                    {PIPELINE: CHURN_PAUSE}, {}))
    assert first["paged"] is True and second["paged"] is False and second["started"] is False
    assert len(received()) == 1 and runs.started == [] and switch_(PIPELINE) is not None


@pytest.mark.parametrize("history", [
    # the gate rejected the last run: the pipeline works, the model was judged
    [("Failed", 6, "drift-a"), ("GateFailed", 20, "drift-b"), ("Failed", 30, "drift-c")],
    # a person stopped a run in between: neither a failure of the loop nor a success - still one failure
    [("Failed", 30, "drift-a"), ("Stopped", 6, "drift-b")],
    # a person's own run that failed is not the loop's
    [("Failed", 30, "drift-a"), ("Failed", 6, "nightly-by-hand")],
    # a success ends the count, whoever started it
    [("Failed", 6, "drift-a"), ("Succeeded", 20, "by-hand"), ("Failed", 30, "drift-b")],
], ids=["gate", "stopped", "person", "success"])
def test_runs_that_are_not_failures_of_the_loop_do_not_count(ssm, pages, monkeypatch, history):
    sns, topic, received = pages
    breaker_env(monkeypatch, topic)
    runs = Runs()
    for status, hours, display in history:
        if status == "GateFailed":
            runs.add("Failed", hours, display, failed_step=GATE_FAIL_STEP, failure="challenger rejected")
        else:
            runs.add(status, hours, display)
    decision = trigger(sweep_event(1), runs, ssm, sns, now=NOW + dt.timedelta(hours=30))
    assert decision["reason"] != "circuit breaker" and received() == []
    assert rt.PauseSwitch(ssm, ENVIRONMENT_PAUSE, {PIPELINE: CHURN_PAUSE})(PIPELINE) is None


def test_a_resume_starts_again_and_a_new_count(ssm, pages, monkeypatch):
    """GIVEN the breaker tripped WHEN a person resumes (the CLI) THEN the next sweep starts the pipeline, and only
    N new failures after the resume trip it again."""
    from mlops_cli import retraining as cli

    sns, topic, received = pages
    breaker_env(monkeypatch, topic)
    runs = Runs(("Failed", 30), ("Failed", 6))
    assert trigger(sweep_event(1), runs, ssm, sns)["reason"] == "circuit breaker"
    scope = cli.Scope("dev", "mlops-loop-dev", "churn")
    cli.resume(ssm, scope, caller="arn:aws:sts::111111111111:assumed-role/oncall/ana", now=NOW + dt.timedelta(hours=1),
               out=io.StringIO())
    later = NOW + dt.timedelta(hours=2)
    assert trigger(sweep_event(2), runs, ssm, sns, now=later)["started"] is True
    # that run fails too: one failure since the resume, below the threshold - started again
    runs.fail(runs.started[-1])
    assert trigger(sweep_event(3), runs, ssm, sns, now=later + dt.timedelta(hours=3))["started"] is True
    runs.fail(runs.started[-1])  # the second since the resume: the breaker trips again, and pages again
    assert trigger(sweep_event(4), runs, ssm, sns, now=later + dt.timedelta(hours=6))["reason"] == "circuit breaker"
    assert len(received()) == 2 and len(runs.started) == 2


def test_a_run_that_succeeds_after_the_breaker_tripped_lifts_its_pause(ssm, pages, monkeypatch):
    """A person fixed the cause and started a run by hand that succeeded: the breaker's pause is lifted, and the
    drift is answered as before (cooldown permitting). A person's own pause is never lifted by a success."""
    sns, topic, received = pages
    breaker_env(monkeypatch, topic)
    runs = Runs(("Failed", 30), ("Failed", 6))
    assert trigger(sweep_event(1), runs, ssm, sns)["reason"] == "circuit breaker"
    runs.add("Succeeded", -1, "fixed-by-hand")
    decision = trigger(sweep_event(2), runs, ssm, sns, now=NOW + dt.timedelta(hours=2))
    assert decision["reason"].startswith("cooldown")  # the success answered the drift; no pause any more
    assert rt.PauseSwitch(ssm, ENVIRONMENT_PAUSE, {PIPELINE: CHURN_PAUSE})(PIPELINE) is None
    pause(ssm, CHURN_PAUSE)  # a person's
    assert trigger(sweep_event(3), runs, ssm, sns, now=NOW + dt.timedelta(hours=3))["reason"] == "paused"


def test_when_the_page_cannot_be_sent_the_pause_is_taken_back_and_the_invocation_fails(ssm, monkeypatch, clients):
    """Unannounced, the pause would hold unseen: the retry (Lambda's) trips and pages again."""
    breaker_env(monkeypatch, "arn:aws:sns:eu-west-1:123456789012:no-such-topic")
    runs = Runs(("Failed", 30), ("Failed", 6))
    with pytest.raises(rt.BreakerUnknown, match="cannot page the circuit breaker's pause of churn"):
        trigger(sweep_event(1), runs, ssm, clients("sns"))
    assert rt.PauseSwitch(ssm, ENVIRONMENT_PAUSE, {PIPELINE: CHURN_PAUSE})(PIPELINE) is None and runs.started == []


def test_when_neither_the_page_can_be_sent_nor_the_pause_taken_back_the_failure_says_the_pause_stands_unannounced(monkeypatch):
    """SNS and SSM both failing at the trip: the pause stays, recorded unannounced; the invocation's error says so, how
    to lift it, and that the next invocation that finds it pages it."""
    breaker_env(monkeypatch, "arn:aws:sns:eu-west-1:111111111111:notifications")
    ssm = boto3.client("ssm", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    sns = boto3.client("sns", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    runs = Runs(("Failed", 30), ("Failed", 6))
    with Stubber(ssm) as ssm_stub, Stubber(sns) as sns_stub:
        ssm_stub.add_response("get_parameters", {"Parameters": [], "InvalidParameters": [ENVIRONMENT_PAUSE, CHURN_PAUSE]})
        ssm_stub.add_response("get_parameters", {"Parameters": []})
        ssm_stub.add_response("put_parameter", {"Version": 1})
        sns_stub.add_client_error("publish", "KMSDisabled", "key disabled")
        ssm_stub.add_client_error("delete_parameter", "ThrottlingException", "Rate exceeded")
        with pytest.raises(rt.BreakerUnknown) as raised:
            trigger(sweep_event(1), runs, ssm, sns)
    assert str(raised.value) == (
        "cannot page the circuit breaker's pause of churn: An error occurred (KMSDisabled) when calling the Publish "
        f"operation: key disabled; nor take the pause back ({CHURN_PAUSE}: An error occurred (ThrottlingException) "
        "when calling the DeleteParameter operation: Rate exceeded): retraining of churn stays paused, unannounced, "
        "until a person runs: python -m mlops_cli.retraining --env dev --model churn resume; the next invocation that "
        "finds the pause pages it")
    assert runs.started == []


class _KeepsEveryPause:
    """The moto SSM client, except that no parameter can be deleted (throttled past the SDK's retries)."""

    def __init__(self, ssm):
        self._ssm = ssm

    def __getattr__(self, name):
        return getattr(self._ssm, name)

    def delete_parameter(self, **_):
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "DeleteParameter")


def test_a_breakers_pause_left_unannounced_is_paged_once_by_the_next_invocation(ssm, pages, monkeypatch):
    """GIVEN the page failed at the trip and the pause could not be taken back (it stands, unannounced) WHEN Lambda's
    retry, and then the hourly sweeps, find the pause THEN the first that can page pages once - naming the model, the
    failure that tripped it and the resume - and none after it; nothing starts."""
    sns, topic, received = pages
    breaker_env(monkeypatch, "arn:aws:sns:eu-west-1:123456789012:no-such-topic")  # SNS refuses every page
    runs = Runs(("Failed", 30), ("Failed", 6))
    last = runs.executions[0]["PipelineExecutionArn"]
    kept = _KeepsEveryPause(ssm)
    with pytest.raises(rt.BreakerUnknown, match="stays paused, unannounced"):
        trigger(sweep_event(1), runs, kept, sns)
    with pytest.raises(rt.BreakerUnknown, match="cannot page the circuit breaker's pause of churn"):
        trigger(sweep_event(1), runs, kept, sns)  # the retry cannot page either: it fails again, the pause stays
    assert received() == []
    monkeypatch.setenv("TOPIC_ARN", topic)
    decision = trigger(sweep_event(2), runs, kept, sns, now=NOW + dt.timedelta(hours=1))
    assert decision["started"] is False and decision["reason"] == "paused" and decision["paged"] is True
    (page,) = received()
    assert "model 'churn'" in page and last in page and "AlgorithmError: boom" in page
    assert "python -m mlops_cli.retraining --env dev --model churn resume" in page
    for i, event in enumerate((sweep_event(3), {"pipeline": PIPELINE, "reason": "schedule"}), start=2):
        assert trigger(event, runs, kept, sns, now=NOW + dt.timedelta(hours=i))["reason"] == "paused"
    assert received() == [] and runs.started == []
    held = rt.PauseSwitch(ssm, ENVIRONMENT_PAUSE, {PIPELINE: CHURN_PAUSE})(PIPELINE)
    assert held["by"] == "retrain-trigger circuit breaker" and last in held["reason"]  # the same pause, still


def test_the_hourly_sweep_pages_a_breakers_pause_left_unannounced_though_no_retrain_alarm_is_in_alarm(
        ssm, pages, monkeypatch, clients):
    """GIVEN the breaker's pause left unannounced (the page and the take-back both failed) and the model's retrain
    alarm back to OK (no alarm event and no sweep hands the model to the guard) WHEN the hourly sweep runs THEN it pages
    the pause once; the next sweep pages nobody."""
    sns, topic, received = pages
    breaker_env(monkeypatch, "arn:aws:sns:eu-west-1:123456789012:no-such-topic")
    runs = Runs(("Failed", 30), ("Failed", 6))
    kept = _KeepsEveryPause(ssm)
    with pytest.raises(rt.BreakerUnknown, match="stays paused, unannounced"):
        trigger(sweep_event(1), runs, kept, sns)
    monkeypatch.setenv("TOPIC_ARN", topic)
    cloudwatch = clients("cloudwatch")
    alarms_in(cloudwatch, {"mlops-loop-dev-churn-retrain-data-drift": "OK"})
    for hour in (1, 2):
        result = rt.handler({"reason": "sweep"}, client=runs, cloudwatch=cloudwatch, ssm=kept, sns=sns,
                            now=lambda: NOW + dt.timedelta(hours=hour))
        assert result["started"] is False and result["alarms_in_alarm"] == {}
    (page,) = received()
    assert "model 'churn'" in page and "python -m mlops_cli.retraining --env dev --model churn resume" in page
    assert runs.started == []


def test_one_sweep_pages_an_unannounced_pause_once_though_its_record_fails_and_its_alarm_is_in_alarm(
        ssm, pages, monkeypatch, clients):
    """GIVEN the breaker's pause left unannounced, the model's retrain alarm in ALARM (the sweep hands it to the guard,
    which pages it) and SSM refusing to record the page WHEN one hourly sweep runs THEN it pages once: its own look for
    unannounced pauses skips a model it paged already (a second page comes from the next invocation, not the same one)."""
    sns, topic, received = pages
    breaker_env(monkeypatch, "arn:aws:sns:eu-west-1:123456789012:no-such-topic")
    runs = Runs(("Failed", 30), ("Failed", 6))

    class KeepsAndWillNotRecord(_KeepsEveryPause):
        def put_parameter(self, **request):
            if request.get("Overwrite"):
                raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "PutParameter")
            return self._ssm.put_parameter(**request)

    kept = KeepsAndWillNotRecord(ssm)
    with pytest.raises(rt.BreakerUnknown, match="stays paused, unannounced"):
        trigger(sweep_event(1), runs, kept, sns)
    monkeypatch.setenv("TOPIC_ARN", topic)
    cloudwatch = clients("cloudwatch")
    alarms_in(cloudwatch, {"mlops-loop-dev-churn-retrain-data-drift": "ALARM"})
    result = rt.handler({"reason": "sweep"}, client=runs, cloudwatch=cloudwatch, ssm=kept, sns=sns,
                        now=lambda: NOW + dt.timedelta(hours=1))
    assert result["started"] is False
    assert len(received()) == 1
    assert runs.started == []


def test_a_late_page_never_brings_back_a_pause_a_person_lifted_or_replaced_as_it_went_out(ssm, pages, monkeypatch):
    """GIVEN the breaker's pause left unannounced WHEN the next invocation's late page goes out while a person resumes
    the model (the pause deleted) or pauses it themselves (their pause replacing the breaker's) THEN recording the page
    does not write the breaker's pause back: the resume stands (no pause), and the person's pause stands as they wrote
    it."""
    sns, topic, received = pages
    monkeypatch.setenv("TOPIC_ARN", topic)
    breaker_env(monkeypatch, topic)
    runs = Runs(("Failed", 30), ("Failed", 6))
    unannounced = pause_value(reason="circuit breaker: the last 2 executions failed", by=rt.RETRAINING_BREAKER,
                              at="2026-11-26T12:00:00Z", announced=False)
    theirs = pause_value(reason="investigating", by="alice", at="2026-11-26T12:30:00Z")

    def late_page_while(person):
        ssm.put_parameter(Name=CHURN_PAUSE, Value=unannounced, Type="String", Overwrite=True)

        class MeanwhileAPerson:
            def publish(self, **request):
                person()
                return sns.publish(**request)

        return trigger(sweep_event(2), runs, ssm, MeanwhileAPerson(), now=NOW + dt.timedelta(hours=1))

    assert late_page_while(lambda: ssm.delete_parameter(Name=CHURN_PAUSE))["paged"] is True
    assert ssm.get_parameters(Names=[CHURN_PAUSE])["Parameters"] == []
    assert late_page_while(lambda: ssm.put_parameter(Name=CHURN_PAUSE, Value=theirs, Type="String",
                                                     Overwrite=True))["paged"] is True
    assert ssm.get_parameter(Name=CHURN_PAUSE)["Parameter"]["Value"] == theirs
    assert len(received()) == 2 and runs.started == []


def test_a_page_that_went_out_but_could_not_be_recorded_is_sent_again_rather_than_never(ssm, pages, monkeypatch):
    """GIVEN SSM takes the breaker's new pause but refuses to overwrite it (the record that the page went out) WHEN the
    breaker trips THEN it pages and decides as usual (nothing starts, the invocation succeeds); the next invocation finds
    the pause still unannounced and pages again: a second page rather than none."""
    sns, topic, received = pages
    breaker_env(monkeypatch, topic)
    runs = Runs(("Failed", 30), ("Failed", 6))

    class NoOverwrite(_KeepsEveryPause):
        def put_parameter(self, **request):
            if request.get("Overwrite"):
                raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "PutParameter")
            return self._ssm.put_parameter(**request)

    flaky = NoOverwrite(ssm)
    decision = trigger(sweep_event(1), runs, flaky, sns)
    assert decision["reason"] == "circuit breaker" and decision["paged"] is True and len(received()) == 1
    assert trigger(sweep_event(2), runs, ssm, sns, now=NOW + dt.timedelta(hours=1))["paged"] is True
    assert len(received()) == 1
    assert "paged" not in trigger(sweep_event(3), runs, ssm, sns, now=NOW + dt.timedelta(hours=2))
    assert received() == [] and runs.started == []


@pytest.mark.parametrize("value", ["0", "-1"])
def test_a_breaker_below_one_failure_is_refused_naming_the_setting_and_the_fix(value):
    with pytest.raises(ValueError) as raised:
        rt.settings_of({"NAME_PREFIX": "mlops-loop-dev", "FAILURES_BEFORE_PAUSE": value})
    assert str(raised.value) == (f"FAILURES_BEFORE_PAUSE={value}: the circuit breaker needs at least 1 failure; set "
                                 "monitoring.retraining_failures_before_pause in the config and deploy the Operations "
                                 "stack again")


def test_when_the_breakers_pause_cannot_be_written_nothing_starts_and_the_invocation_fails(monkeypatch):
    """A role that lost ssm:PutParameter: failing closed and loud, as when the pause cannot be read."""
    breaker_env(monkeypatch, "arn:aws:sns:eu-west-1:111111111111:notifications")
    ssm = boto3.client("ssm", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    runs = Runs(("Failed", 30), ("Failed", 6))
    with Stubber(ssm) as stub:
        stub.add_response("get_parameters", {"Parameters": [], "InvalidParameters": [ENVIRONMENT_PAUSE, CHURN_PAUSE]})
        stub.add_response("get_parameters", {"Parameters": []})
        stub.add_client_error("put_parameter", "AccessDeniedException")
        with pytest.raises(rt.BreakerUnknown, match="cannot write the circuit breaker's pause"):
            trigger(sweep_event(1), runs, ssm, sns=None)
        stub.assert_no_pending_responses()
    assert runs.started == []


def test_a_run_a_person_started_that_the_gate_rejected_ends_the_count(ssm, pages, monkeypatch):
    """GIVEN a failed run of the loop, then a run a person started by hand that reached the gate (the pipeline works),
    then another failed run of the loop WHEN the sweep comes THEN the breaker does not trip: a gate rejection ends the
    count whoever started the run (docs/monitoring.md, Pausing retraining), as a success does."""
    sns, topic, received = pages
    breaker_env(monkeypatch, topic)
    runs = Runs()
    runs.add("Failed", 30, "drift-a")
    runs.add("Failed", 20, "checked-by-hand", failed_step=GATE_FAIL_STEP, failure="challenger rejected")
    runs.add("Failed", 6, "drift-b")
    decision = trigger(sweep_event(1), runs, ssm, sns, now=NOW + dt.timedelta(hours=30))
    assert decision["reason"] != "circuit breaker" and received() == []
    assert rt.PauseSwitch(ssm, ENVIRONMENT_PAUSE, {PIPELINE: CHURN_PAUSE})(PIPELINE) is None


def test_the_page_gives_the_executions_own_failure_reason_when_no_step_has_one(ssm, pages, monkeypatch):
    """A run that failed before any step did (a role it cannot assume, a parameter refused) has no failed step: the
    page and the pause name the reason ListPipelineExecutions returns (PipelineExecutionFailureReason), not 'not
    given'."""
    sns, topic, received = pages
    breaker_env(monkeypatch, topic)
    runs = Runs(("Failed", 30), ("Failed", 6))
    for execution in runs.executions:
        runs.steps[execution["PipelineExecutionArn"]] = []
        execution["PipelineExecutionFailureReason"] = "ValidationException: role cannot be assumed"
    assert trigger(sweep_event(1), runs, ssm, sns)["reason"] == "circuit breaker"
    (page,) = received()
    assert "ValidationException: role cannot be assumed" in page


def test_resuming_the_environment_starts_a_new_count_too(ssm, pages, monkeypatch):
    """GIVEN two failed runs of the loop, and on-call paused the whole environment before the breaker tripped (to fix
    the pipeline) WHEN they resume the environment (the CLI) THEN the next sweep starts the pipeline: the failures
    before the resume do not pause the model and page at once."""
    from mlops_cli import retraining as cli

    sns, topic, received = pages
    breaker_env(monkeypatch, topic)
    runs = Runs(("Failed", 30), ("Failed", 6))
    scope = cli.Scope("dev", "mlops-loop-dev", None)
    oncall = "arn:aws:sts::111111111111:assumed-role/oncall/ana"
    cli.pause(ssm, scope, reason="INC-7: fixing the pipeline", caller=oncall, now=NOW - dt.timedelta(hours=5),
              out=io.StringIO())
    assert trigger(sweep_event(1), runs, ssm, sns)["reason"] == "paused"
    cli.resume(ssm, scope, caller=oncall, now=NOW + dt.timedelta(hours=1), out=io.StringIO())
    assert trigger(sweep_event(2), runs, ssm, sns, now=NOW + dt.timedelta(hours=2))["started"] is True
    assert received() == []


# ---------------------------------------------------------------- models of several teams (TEAM_TOPICS: the deploy handler's)
ENV_TOPIC = "arn:aws:sns:eu-west-1:123456789012:env"
# docs/configuration.md, Models of several teams: a page about a team's model reaches its team's topic only.
def _topic_with_queue(sns, sqs, name):
    topic = sns.create_topic(Name=name)["TopicArn"]
    queue = sqs.create_queue(QueueName=f"{name}-people")["QueueUrl"]
    sns.subscribe(TopicArn=topic, Protocol="sqs",
                  Endpoint=sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])

    def received():
        return [json.loads(m["Body"])["Message"]
                for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])]
    return topic, received


@pytest.mark.parametrize("owned", ["churn", "other"], ids=["team-model", "unowned-model"])
def test_the_breakers_page_about_a_teams_model_reaches_its_team_topic_only(ssm, pages, monkeypatch, owned, clients):
    """GIVEN churn and other, the team's topic naming ``owned``'s package group (TEAM_TOPICS, as the deploy handler's)
    WHEN churn's breaker trips THEN its page reaches the team's topic alone when churn is the team's, the environment's
    topic alone when churn has no owner."""
    sns, shared, shared_received = pages
    team_topic, team_received = _topic_with_queue(sns, clients("sqs"), "fraud-team")
    breaker_env(monkeypatch, shared)
    monkeypatch.setenv("MODEL_PIPELINES", json.dumps({"churn": PIPELINE, "other": OTHER}))
    # By name, as the Operations stack writes it: the trigger builds its ARN from TOPIC_ARN's.
    monkeypatch.setenv("TEAM_TOPICS", json.dumps({team_topic.rsplit(":", 1)[1]: [f"mlops-loop-dev-{owned}"]}))
    decision = trigger(sweep_event(1), Runs(("Failed", 30), ("Failed", 6)), ssm, sns)
    assert decision["reason"] == "circuit breaker" and decision["paged"] is True
    team, environment = team_received(), shared_received()
    expected = team if owned == "churn" else environment
    assert len(expected) == 1 and "model 'churn'" in expected[0]
    assert (environment if owned == "churn" else team) == []


@pytest.mark.parametrize(
    "value, topic, fix",
    [
        ("fraud", ENV_TOPIC, "environment variable TEAM_TOPICS must be a JSON object mapping a team's topic name -> "
                             "its models' group names, got 'fraud'"),
        ('{"t": ["mlops-loop-dev-nope"]}', ENV_TOPIC,
         "environment variable TEAM_TOPICS names group 'mlops-loop-dev-nope', which is no model's of MODEL_PIPELINES "
         "(NAME_PREFIX-<model>): give each team's topic the groups of its models this function retrains"),
        ('{"arn:aws:sns:eu-west-1:123456789012:t": ["mlops-loop-dev-churn"]}', ENV_TOPIC,
         "environment variable TEAM_TOPICS names topic 'arn:aws:sns:eu-west-1:123456789012:t', which is no SNS topic "
         "name (1-256 letters, digits, '-' and '_'; the team's topic name <prefix>-<team>-notifications, not its ARN): "
         "deploy the Operations stack again (cdk deploy) to restore the variable it sets"),
        ('{"t": ["mlops-loop-dev-churn"]}', "",
         "environment variable TEAM_TOPICS names team topics, whose ARNs are built from environment variable TOPIC_ARN "
         "(the environment's topic: its partition, region and account), which is no SNS topic ARN (got ''): deploy "
         "the Operations stack again (cdk deploy) to restore the variables it sets"),
    ],
)
def test_a_malformed_team_topics_setting_of_the_trigger_is_refused_naming_the_variable(value, topic, fix):
    with pytest.raises(ValueError) as raised:
        rt.settings_of({"NAME_PREFIX": "mlops-loop-dev", "MODEL_PIPELINES": json.dumps({"churn": PIPELINE}),
                        "TEAM_TOPICS": value, "TOPIC_ARN": topic})
    assert str(raised.value) == fix


def test_a_team_topic_is_built_beside_the_environments_topic():
    """GIVEN TEAM_TOPICS naming a team's topic WHEN read THEN its ARN is the environment topic's with the last part
    replaced (same partition, region and account: aws-cn here)."""
    topics = rt.settings_of({"NAME_PREFIX": "mlops-loop-dev", "MODEL_PIPELINES": json.dumps({"churn": PIPELINE}),
                             "TOPIC_ARN": "arn:aws-cn:sns:cn-north-1:123456789012:env",
                             "TEAM_TOPICS": json.dumps({"mlops-loop-dev-fraud-notifications": ["mlops-loop-dev-churn"]})}
                            )["topic_arn"]
    assert topics.of(PIPELINE) == "arn:aws-cn:sns:cn-north-1:123456789012:mlops-loop-dev-fraud-notifications"
