"""The retrain trigger and its storm guard, against moto (and a stub for a running execution)."""

from __future__ import annotations

import datetime as dt
import json

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from pipeline_code.handlers import retrain_trigger as rt

PIPELINE = "mlops-loop-dev-churn-training"
NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.timezone.utc)
ALARM_EVENT = {
    "pipeline": PIPELINE,
    "reason": "drift",
    "alarm": "mlops-loop-dev-churn-data-drift",
    "source_event_id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
}


@pytest.fixture()
def sagemaker():
    with mock_aws():
        client = boto3.client("sagemaker", region_name="eu-west-1")
        role = boto3.client("iam", region_name="eu-west-1").create_role(RoleName="p", AssumeRolePolicyDocument="{}")
        definition = {
            "Version": "2020-12-01",
            "Parameters": [{"Name": "TriggerReason", "Type": "String", "DefaultValue": "manual"}],
            "Steps": [],
        }
        client.create_pipeline(PipelineName=PIPELINE, PipelineDefinition=json.dumps(definition), RoleArn=role["Role"]["Arn"])
        yield client


def run(event, client, now=NOW, cooldown_hours=24):
    return rt.decide_and_start(
        event, client=client, allowed_pipelines=frozenset({PIPELINE}), cooldown=dt.timedelta(hours=cooldown_hours), now=now
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
            {"PipelineName": PIPELINE, "SortBy": "CreationTime", "SortOrder": "Descending", "MaxResults": 10},
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


def test_handler_reads_its_settings_from_the_environment(sagemaker, monkeypatch):
    monkeypatch.setenv("ALLOWED_PIPELINES", f"{PIPELINE}, other")
    monkeypatch.setenv("COOLDOWN_HOURS", "2")
    assert rt.handler(ALARM_EVENT, client=sagemaker, now=lambda: NOW)["started"] is True
