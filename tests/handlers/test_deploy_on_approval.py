"""Deploy on approval, against moto: a real registry (SageMaker), a real serving stack (CloudFormation)
and a real topic (SNS, read back through an SQS subscription).

Where moto cannot reach a state by its API, the test sets it in moto's backend and says so:
a package whose ModelPackageStatus is Failed (moto always completes packages), a stack that is
UPDATE_IN_PROGRESS (moto finishes updates at once). moto's UpdateModelPackage is made to keep a
package's CustomerMetadataProperties, as SageMaker does (:func:`keep_package_metadata`). The "No updates are to be performed" answer
is stubbed (botocore Stubber), because the handler never sends an update moto would refuse.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import re
import types

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto.cloudformation.models import Event, cloudformation_backends
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sagemaker.models import sagemaker_backends

from pipeline_code.core import approval, integrity
from pipeline_code.core.integrity import hex_to_base64
from pipeline_code.handlers import deploy_on_approval as dod
from pipeline_code.handlers.deploy import events as dod_events
from pipeline_code.handlers.deploy import registry as dod_registry
from pipeline_code.handlers.deploy import settings as dod_settings
from pipeline_code.handlers.deploy import stack as dod_stack
from tests.support.deploy_handler import (
    CREDIT_RISK_SERVING,
    ARTIFACTS,
    DEPLOYER,
    GROUP,
    OTHER_GROUP,
    REGION,
    SPEC,
    STACK,
    TEMPLATE,
    approve_and_deploy,
    decide,
    deploy_and_fail,
    digests,
    evaluation_reports,
    register,
    roll_back_last_update,
    run,
    set_approval,
    source_url,
    state_change,
)
from tests.support.multi_model import (
    CHURN_FEATURES,
    FakeRuntime,
    answer,
    create_mme_endpoint,
    model_archive,
    model_error,
    replace_inference_specification,
)


def test_approval_updates_the_stack_with_the_new_version_and_keeps_the_other_parameters(aws):
    """GIVEN a stack with no churn endpoint WHEN v1 is approved THEN the stack's churn parameter is v1's ARN,
    every other parameter keeps its value, and the update ran as the deployer role with a valid token."""
    v1 = register(aws)
    set_approval(aws, v1, "Approved")

    decision = run(aws, state_change(v1))

    assert decision["deployed"] is True and decision["outcome"] == "deploying"
    assert aws.parameters() == {
        "ChurnModelPackageArn": v1,
        "ChurnModelSha256": digests(aws, v1)["model_sha256"],
        "CreditRiskModelPackageArn": CREDIT_RISK_SERVING,
        "ChurnInstanceType": "ml.c5.xlarge",
    }
    assert decision["verified"] == {"sha256": digests(aws, v1)["model_data_sha256"], "model_sha256": digests(aws, v1)["model_sha256"]}
    (update,) = aws.updates
    assert update["UsePreviousTemplate"] is True
    assert update["RoleARN"] == DEPLOYER
    assert update["Capabilities"] == ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"]
    assert {p["ParameterKey"] for p in update["Parameters"] if p.get("UsePreviousValue")} == {
        "CreditRiskModelPackageArn",
        "ChurnInstanceType",
    }
    assert re.fullmatch(r"[a-zA-Z0-9][-a-zA-Z0-9]{0,127}", update["ClientRequestToken"])
    assert aws.cloudformation.describe_stacks(StackName=STACK)["Stacks"][0]["RoleARN"] == DEPLOYER
    assert aws.notices() == [f"{GROUP}: deploying v1 (was no endpoint)"]


def test_a_duplicate_event_makes_no_second_update(aws):
    v1 = register(aws)
    set_approval(aws, v1, "Approved")
    event = state_change(v1)

    first, again = run(aws, event), run(aws, dict(event))

    assert first["deployed"] is True
    assert again["deployed"] is False and again["outcome"] == "unchanged"
    assert len(aws.updates) == 1
    assert aws.notices() == [f"{GROUP}: deploying v1 (was no endpoint)"]


def test_a_later_approval_replaces_the_serving_version_and_a_late_event_does_not_undo_it(aws):
    """Order independence: v1's event delivered after v2's approval still leaves v2 serving."""
    v1, v2 = register(aws), register(aws)
    approve_and_deploy(aws, v1)
    set_approval(aws, v2, "Approved")

    assert run(aws, state_change(v2))["reason"] == "v1 -> v2"
    late = run(aws, state_change(v1))

    assert late["outcome"] == "unchanged"
    assert aws.parameters()["ChurnModelPackageArn"] == v2
    assert len(aws.updates) == 2


def test_an_event_for_another_group_is_ignored_with_a_log_line(aws, caplog):
    caplog.set_level(logging.INFO, logger=dod.__name__)
    event = state_change(f"arn:aws:sagemaker:{REGION}:{DEFAULT_ACCOUNT_ID}:model-package/someone-elses-model/4", group="someone-elses-model")

    decision = run(aws, event)

    assert decision["outcome"] == "ignored" and "someone-elses-model" in decision["reason"]
    (line,) = [json.loads(r.getMessage()) for r in caplog.records if r.name == dod.__name__]
    assert line == decision
    assert aws.updates == [] and aws.notices() == []


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        ("not json", "expected a JSON object, got str"),
        ([1, 2], "expected a JSON object, got list"),
        ({}, "expected source 'aws.sagemaker'"),
        ({"source": "aws.sagemaker", "detail-type": "SageMaker Endpoint State Change", "detail": {}}, "expected source"),
        ({"source": "aws.sagemaker", "detail-type": "SageMaker Model Package State Change", "detail": "x"}, "'detail' must be an object"),
        ({"source": "aws.sagemaker", "detail-type": "SageMaker Model Package State Change", "detail": {}}, "detail.ModelPackageGroupName"),
        (
            {
                "source": "aws.sagemaker",
                "detail-type": "SageMaker Model Package State Change",
                "detail": {"ModelPackageGroupName": GROUP, "ModelPackageVersion": "2"},
            },
            "must be an integer",
        ),
        ({"action": "deploy", "group": GROUP}, "action 'deploy' is not 'reconcile'"),
        ({"action": "reconcile"}, "field 'group'"),
    ],
)
def test_malformed_events_are_logged_and_dropped_not_raised(aws, caplog, event, problem):
    caplog.set_level(logging.INFO, logger=dod.__name__)
    decision = run(aws, event)
    assert decision["deployed"] is False and decision["outcome"] == "malformed"
    assert problem in decision["reason"]
    assert [json.loads(r.getMessage())["outcome"] for r in caplog.records if r.name == dod.__name__] == ["malformed"]
    assert aws.updates == []


def test_a_stack_update_in_progress_raises_a_retryable_error_and_changes_nothing(aws, caplog):
    """The stack is put into UPDATE_IN_PROGRESS in moto's backend (moto completes updates at once)."""
    caplog.set_level(logging.INFO, logger=dod.__name__)
    v1 = register(aws)
    set_approval(aws, v1, "Approved")
    cloudformation_backends[DEFAULT_ACCOUNT_ID][REGION].get_stack(STACK).status = "UPDATE_IN_PROGRESS"

    with pytest.raises(dod.StackBusyError, match="UPDATE_IN_PROGRESS"):
        run(aws, state_change(v1))

    assert aws.updates == [] and aws.parameters()["ChurnModelPackageArn"] == ""
    (line,) = [json.loads(r.getMessage()) for r in caplog.records if r.name == dod.__name__]
    assert line["outcome"] == "retry" and line["desired"]["version"] == 1


FUNCTION = f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT_ID}:function:mlops-loop-prod-deploy-on-approval"
RETRY_GROUP = "mlops-loop-prod-deploy-retries"
DEAD_LETTERS = f"arn:aws:sqs:{REGION}:{DEFAULT_ACCOUNT_ID}:mlops-loop-prod-deploy-dead-letters"


@pytest.fixture()
def waiting(aws, monkeypatch):
    """The function as deployed: retries of a busy stack through EventBridge Scheduler (20 minutes at most here)."""
    monkeypatch.setenv("RETRY_SCHEDULE_GROUP", RETRY_GROUP)
    monkeypatch.setenv("RETRY_ROLE_ARN", f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/mlops-loop-prod-deploy-retry")
    monkeypatch.setenv("MAX_WAIT_SECONDS", "1200")
    monkeypatch.setenv("RETRY_DEAD_LETTER_ARN", DEAD_LETTERS)
    aws.scheduler = aws.client("scheduler")
    aws.scheduler.create_schedule_group(Name=RETRY_GROUP)
    return aws


def _run_as_lambda(aws, event):
    context = types.SimpleNamespace(invoked_function_arn=FUNCTION)
    return dod.handler(event, context, sagemaker=aws.sagemaker, cloudformation=aws.cloudformation, sns=aws.sns, s3=aws.s3,
                       scheduler=aws.scheduler)


def _busy(status="UPDATE_IN_PROGRESS"):
    cloudformation_backends[DEFAULT_ACCOUNT_ID][REGION].get_stack(STACK).status = status


def _approved_while_busy(aws) -> str:
    """v1 approved while the serving stack rolls something out; its ARN."""
    v1 = register(aws)
    set_approval(aws, v1, "Approved")
    _busy()
    return v1


def _retry_event(minutes_ago: int) -> dict:
    """The event a retry schedule delivers for a wait that began ``minutes_ago``."""
    since = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=minutes_ago)).isoformat()
    return {"action": "reconcile", "group": GROUP, "waiting_since": since}


def test_a_busy_stack_is_a_wait_with_a_scheduled_reconcile_not_an_error(waiting):
    """GIVEN an approval while the serving stack rolls out WHEN the handler runs THEN nothing is raised (no Lambda
    retry, no dead-letter queue, no notice): a one-time schedule invokes it again in five minutes with the
    group and when the wait began, and deletes itself after; what Scheduler cannot deliver goes to the dead-letter queue."""
    aws = waiting
    v1 = _approved_while_busy(aws)

    decision = _run_as_lambda(aws, state_change(v1))

    assert decision["outcome"] == "waiting" and decision["deployed"] is False and aws.updates == []
    (listed,) = aws.scheduler.list_schedules(GroupName=RETRY_GROUP)["Schedules"]
    schedule = aws.scheduler.get_schedule(Name=listed["Name"], GroupName=RETRY_GROUP)
    since = dt.datetime.fromisoformat(decision["waiting_since"])
    assert schedule["ScheduleExpression"] == f"at({since + dod_settings.RETRY_INTERVAL:%Y-%m-%dT%H:%M:%S})"
    assert schedule["ActionAfterCompletion"] == "DELETE" and schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert schedule["Target"]["Arn"] == FUNCTION and schedule["Target"]["DeadLetterConfig"] == {"Arn": DEAD_LETTERS}
    assert json.loads(schedule["Target"]["Input"]) == {"action": "reconcile", "group": GROUP, "waiting_since": decision["waiting_since"]}
    assert aws.notices() == []


def test_the_scheduled_reconcile_deploys_once_the_stack_is_free_with_a_fresh_token(waiting):
    aws = waiting
    v1 = _approved_while_busy(aws)
    first = _run_as_lambda(aws, state_change(v1))
    (listed,) = aws.scheduler.list_schedules(GroupName=RETRY_GROUP)["Schedules"]
    retried = json.loads(aws.scheduler.get_schedule(Name=listed["Name"], GroupName=RETRY_GROUP)["Target"]["Input"])
    _busy("UPDATE_COMPLETE")

    decision = _run_as_lambda(aws, retried)

    assert first["outcome"] == "waiting" and decision["outcome"] == "deploying"
    assert aws.parameters()["ChurnModelPackageArn"] == v1
    assert aws.notices() == [f"{GROUP}: deploying v1 (was no endpoint)"]


def test_a_still_busy_retry_schedules_the_next_attempt_and_a_duplicate_is_one_schedule(waiting):
    aws = waiting
    _approved_while_busy(aws)
    retried = _retry_event(7)

    decisions = [_run_as_lambda(aws, retried), _run_as_lambda(aws, dict(retried))]

    assert [d["outcome"] for d in decisions] == ["waiting", "waiting"]
    (listed,) = aws.scheduler.list_schedules(GroupName=RETRY_GROUP)["Schedules"]
    assert listed["Name"].endswith("-2")  # the second attempt of this wait
    assert decisions[0]["waiting_since"] == retried["waiting_since"]
    json.dumps(decisions[0])  # Lambda returns it as JSON: no datetime may hide in it


def test_a_wait_longer_than_the_longest_rollout_tells_people_and_stops(waiting):
    aws = waiting
    _approved_while_busy(aws)

    decision = _run_as_lambda(aws, _retry_event(21))

    assert decision["outcome"] == "gave-up" and aws.updates == []
    assert aws.scheduler.list_schedules(GroupName=RETRY_GROUP)["Schedules"] == []
    assert aws.notices() == [f"{GROUP}: v1 still waiting after 21 min"]


def test_when_no_schedule_can_be_made_the_busy_error_is_raised_for_lambdas_retries(waiting):
    """CreateSchedule refused (stubbed: e.g. a missing permission) -> the old path, Lambda's retries."""
    aws = waiting
    v1 = _approved_while_busy(aws)

    with Stubber(aws.scheduler) as stub:
        stub.add_client_error("create_schedule", "AccessDeniedException", "not authorized")
        with pytest.raises(dod.StackBusyError, match="UPDATE_IN_PROGRESS"):
            _run_as_lambda(aws, state_change(v1))


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"RETRY_SCHEDULE_GROUP": "g"}, "RETRY_ROLE_ARN, MAX_WAIT_SECONDS is empty"),
        ({"RETRY_SCHEDULE_GROUP": "g", "RETRY_ROLE_ARN": "role", "MAX_WAIT_SECONDS": "60"}, "RETRY_ROLE_ARN must be the ARN"),
        ({"RETRY_SCHEDULE_GROUP": "g", "RETRY_ROLE_ARN": "arn:aws:iam::1:role/r", "MAX_WAIT_SECONDS": "1h"}, "MAX_WAIT_SECONDS must be a positive"),
        ({"RETRY_SCHEDULE_GROUP": "g", "RETRY_ROLE_ARN": "arn:aws:iam::1:role/r", "MAX_WAIT_SECONDS": "60",
          "RETRY_DEAD_LETTER_ARN": "dead-letters"}, "RETRY_DEAD_LETTER_ARN must be the ARN of an SQS queue"),
    ],
)
def test_a_partial_retry_setting_fails_loudly_naming_the_variable(aws, monkeypatch, settings, named):
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(dod_settings.ConfigurationError, match=named):
        run(aws, {"action": "reconcile", "group": GROUP})


def test_a_malformed_waiting_since_is_dropped_as_malformed(aws):
    decision = run(aws, {"action": "reconcile", "group": GROUP, "waiting_since": "yesterday"})
    assert decision["outcome"] == "malformed" and "waiting_since" in decision["reason"]


def test_a_duplicate_during_the_rollout_it_started_is_not_retried(aws):
    """The parameter already names the desired version while the stack rolls it out: nothing to do."""
    v1 = register(aws)
    approve_and_deploy(aws, v1)
    cloudformation_backends[DEFAULT_ACCOUNT_ID][REGION].get_stack(STACK).status = "UPDATE_IN_PROGRESS"

    assert run(aws, state_change(v1))["outcome"] == "unchanged"
    assert len(aws.updates) == 1


def test_rejecting_the_serving_version_redeploys_the_previously_approved_one(aws):
    v1, v2 = register(aws), register(aws)
    approve_and_deploy(aws, v1)
    approve_and_deploy(aws, v2)
    aws.notices()
    set_approval(aws, v2, "Rejected")

    decision = run(aws, state_change(v2, approval="Rejected"))

    assert decision["deployed"] is True and decision["reason"] == "v2 -> v1"
    assert aws.parameters()["ChurnModelPackageArn"] == v1
    assert aws.notices() == [f"{GROUP}: deploying v1 (was v2)"]


def test_with_no_approved_version_left_nothing_is_removed_and_people_are_told(aws):
    v1 = register(aws)
    approve_and_deploy(aws, v1)
    aws.notices()
    set_approval(aws, v1, "Rejected")

    decision = run(aws, state_change(v1, approval="Rejected"))

    assert decision["deployed"] is False and decision["outcome"] == "nothing-to-serve"
    assert aws.parameters()["ChurnModelPackageArn"] == v1
    assert len(aws.updates) == 1
    assert aws.notices() == [f"{GROUP}: nothing left to serve"]


def test_nothing_left_to_serve_found_again_by_a_settled_stack_reconcile_tells_nobody_again(aws):
    """GIVEN v1, the only approved version, rejected while serving (people told: nothing left to serve) WHEN the serving
    stack settles after another model's rollout and its rule reconciles this group THEN v1 keeps serving and nobody is
    told again (every rollout of any model would repeat it)."""
    v1 = register(aws)
    approve_and_deploy(aws, v1)
    set_approval(aws, v1, "Rejected")
    assert run(aws, state_change(v1, approval="Rejected"))["outcome"] == "nothing-to-serve"
    assert aws.notices()[-1] == f"{GROUP}: nothing left to serve"

    settled = run(aws, {"action": "reconcile", "group": GROUP})

    assert settled["outcome"] == "nothing-to-serve" and aws.notices() == []
    assert aws.parameters()["ChurnModelPackageArn"] == v1


def _sealed_location(aws, arn) -> tuple[str, str]:
    bucket, _, key = source_url(aws, arn).removeprefix("s3://").partition("/")
    return bucket, key


def test_an_artefact_changed_after_registration_is_refused_and_the_serving_version_kept(aws):
    """GIVEN v1 serving and v2 approved WHEN v2's sealed object no longer holds the registered bytes (S3's
    policy forbids it; moto does not model bucket policies) THEN v2 is refused naming both digests, people
    are told and the stack keeps v1."""
    v1 = register(aws)
    approve_and_deploy(aws, v1)
    aws.notices()
    v2 = register(aws)
    bucket, key = _sealed_location(aws, v2)
    aws.s3.put_object(Bucket=bucket, Key=key, Body=model_archive(before=[("./backdoor.py", b"import os")]), ChecksumAlgorithm="SHA256")
    set_approval(aws, v2, "Approved")

    decision = run(aws, state_change(v2))

    recorded = digests(aws, v2)["model_data_sha256"]
    actual = hashlib.sha256(model_archive(before=[("./backdoor.py", b"import os")])).hexdigest()
    assert decision["outcome"] == "refused" and decision["deployed"] is False
    assert decision["reason"] == (
        f"v2 refused: its artefact s3://{bucket}/{key} has sha256 {actual}, but {recorded} was recorded at registration: "
        "the bytes changed after the gate passed them"
    )
    assert aws.parameters()["ChurnModelPackageArn"] == v1 and len(aws.updates) == 1
    assert aws.notices() == [f"{GROUP}: v2 refused: artefact not verified"]


FAILED_GATE = ["disparate impact 0.2900 < minimum 0.8000 across age_group", "auc 0.6100 < minimum 0.7000"]


def test_an_approved_version_whose_gate_failed_is_refused_naming_its_reasons(aws):
    """GIVEN v1 (gate passed) serving and v2, registered by hand outside the pipeline's condition step, whose verified
    evaluation report says the gate failed WHEN v2 is approved THEN it is refused naming the gate's reasons and what to
    do (retrain; no approval overrides it), people are told and the stack keeps v1."""
    v1 = register(aws, metrics=evaluation_reports(aws))
    approve_and_deploy(aws, v1)
    aws.notices()
    v2 = register(aws, metrics=evaluation_reports(aws, reasons=FAILED_GATE, execution="run0002"))
    set_approval(aws, v2, "Approved")

    decision = run(aws, state_change(v2))

    assert decision["outcome"] == "refused" and decision["deployed"] is False
    assert decision["reason"] == (
        f"v2 refused: its evaluation report s3://{ARTIFACTS}/pipelines/churn/run0002/evaluate/evaluation/evaluation.json "
        "says the promotion gate failed (disparate impact 0.2900 < minimum 0.8000 across age_group; auc 0.6100 < minimum "
        "0.7000): the pipeline registers only a version that passed, so this one was registered outside it; fix the cause "
        "and retrain it (a new pipeline execution registers the version that passes); no approval deploys a version whose "
        "gate failed")
    assert aws.parameters()["ChurnModelPackageArn"] == v1 and len(aws.updates) == 1
    assert aws.notices() == [f"{GROUP}: v2 refused: promotion gate failed"]


def test_rejecting_the_serving_version_falls_back_past_an_approved_version_that_is_refused(aws):
    """GIVEN v1 (gate passed) approved, v2 approved but refused (its gate failed) and v3 approved and serving WHEN v3 is
    rejected THEN the one approved before it that can serve, v1, is deployed - not the rejected v3 left serving because
    v2, the one approved last, is refused - and people are told of both: v2's refusal and v1's deployment."""
    v1 = register(aws, metrics=evaluation_reports(aws))
    approve_and_deploy(aws, v1)
    v2 = register(aws, metrics=evaluation_reports(aws, reasons=FAILED_GATE, execution="run0002"))
    set_approval(aws, v2, "Approved")
    assert run(aws, state_change(v2))["outcome"] == "refused"
    v3 = register(aws, metrics=evaluation_reports(aws, execution="run0003"))
    approve_and_deploy(aws, v3)
    aws.notices()
    set_approval(aws, v3, "Rejected")

    decision = run(aws, state_change(v3, approval="Rejected"))

    assert decision["deployed"] is True and decision["reason"] == "v3 -> v1"
    assert aws.parameters()["ChurnModelPackageArn"] == v1
    assert decision["passed_over"] == [{"version": 2, "reason": (
        f"v2 refused: its evaluation report s3://{ARTIFACTS}/pipelines/churn/run0002/evaluate/evaluation/evaluation.json "
        "says the promotion gate failed (disparate impact 0.2900 < minimum 0.8000 across age_group; auc 0.6100 < minimum "
        "0.7000): the pipeline registers only a version that passed, so this one was registered outside it; fix the cause "
        "and retrain it (a new pipeline execution registers the version that passes); no approval deploys a version whose "
        "gate failed")}]
    assert aws.notices() == [f"{GROUP}: v2 refused: promotion gate failed", f"{GROUP}: deploying v1 (was v3)"]


def test_a_refused_version_does_not_replace_a_serving_version_that_is_still_approved(aws):
    """GIVEN v1 approved and v2 serving WHEN v3, approved last, is refused THEN v2 keeps serving (the fallback past a
    refused version is only for a serving version no longer approved) and no older version is deployed."""
    v1 = register(aws, metrics=evaluation_reports(aws))
    approve_and_deploy(aws, v1)
    v2 = register(aws, metrics=evaluation_reports(aws, execution="run0002"))
    approve_and_deploy(aws, v2)
    aws.notices()
    v3 = register(aws, metrics=evaluation_reports(aws, reasons=FAILED_GATE, execution="run0003"))
    set_approval(aws, v3, "Approved")

    decision = run(aws, state_change(v3))

    assert decision["outcome"] == "refused" and "passed_over" not in decision
    assert aws.parameters()["ChurnModelPackageArn"] == v2 and len(aws.updates) == 2
    assert aws.notices() == [f"{GROUP}: v3 refused: promotion gate failed"]


def test_a_refused_version_found_again_by_a_settled_stack_reconcile_tells_nobody_again(aws):
    """GIVEN v1 serving and v2 approved and refused (its gate failed; people were told at its approval) WHEN the serving
    stack settles after another model's rollout and its rule reconciles this group THEN v2 is refused again and nobody
    is told again (every rollout of any model would repeat the notice); a wait's retry, whose approval event waited
    before the checks and told nobody, does tell them."""
    v1 = register(aws, metrics=evaluation_reports(aws))
    approve_and_deploy(aws, v1)
    v2 = register(aws, metrics=evaluation_reports(aws, reasons=FAILED_GATE, execution="run0002"))
    set_approval(aws, v2, "Approved")
    assert run(aws, state_change(v2))["outcome"] == "refused"
    aws.notices()

    settled = run(aws, {"action": "reconcile", "group": GROUP})

    assert settled["outcome"] == "refused" and settled["reason"].startswith("v2 refused: its evaluation report")
    assert aws.notices() == [] and aws.parameters()["ChurnModelPackageArn"] == v1
    retried = run(aws, {"action": "reconcile", "group": GROUP, "waiting_since": "2026-01-01T00:00:00+00:00"})
    assert retried["outcome"] == "refused" and aws.notices() == [f"{GROUP}: v2 refused: promotion gate failed"]


def test_an_evaluation_report_rewritten_after_registration_is_refused(aws):
    """GIVEN v1 whose failed evaluation report was rewritten to say the gate passed WHEN approved THEN it is refused
    naming both digests: the report the handler reads is the one registered, or none."""
    v1 = register(aws, metrics=evaluation_reports(aws, reasons=FAILED_GATE))
    key = "pipelines/churn/run0001/evaluate/evaluation/evaluation.json"
    recorded = json.loads(aws.s3.get_object(Bucket=ARTIFACTS, Key=key.replace("evaluation.json", "bias.json"))["Body"].read())
    rewritten = json.dumps({"metrics": {"auc": 0.81}, "gate": {"passed": True, "reasons": []}}).encode()
    aws.s3.put_object(Bucket=ARTIFACTS, Key=key, Body=rewritten)
    set_approval(aws, v1, "Approved")
    aws.notices()

    decision = run(aws, state_change(v1))

    assert decision["outcome"] == "refused" and not aws.updates
    assert aws.notices() == [f"{GROUP}: v1 refused: promotion gate not checked"]
    assert decision["reason"] == (
        f"v1 refused: its evaluation.json s3://{ARTIFACTS}/{key} has sha256 {hashlib.sha256(rewritten).hexdigest()}, but "
        f"{recorded['evaluation_digest'].removeprefix('sha256:')} was recorded at registration: the report was rewritten "
        "after registration, so its promotion gate cannot be checked")


def test_a_version_whose_reports_are_not_where_the_evaluation_step_writes_them_is_refused(ledger):
    """GIVEN v1 serving and v2, registered by hand, whose ModelMetrics name reports under the model's prefix but not in
    an evaluation step's folder (the handler's role may read only pipelines/<model>/*/evaluate/evaluation/* of the
    artifacts bucket: S3 would deny it) WHEN v2, whose report says its gate passed, is approved THEN it is refused naming
    where reports must be and the fix, people are told and v1 keeps serving - the champion lookup passes over it too
    (tests/training/test_champion.py)."""
    aws = ledger
    v1 = register(aws, metrics=evaluation_reports(aws))
    approve_and_deploy(aws, v1)
    aws.notices()
    v2 = register(aws, metrics=evaluation_reports(aws, prefix="pipelines/churn/elsewhere"))
    set_approval(aws, v2, "Approved")

    decision = run(aws, state_change(v2))

    assert decision["outcome"] == "refused" and decision["deployed"] is False
    assert decision["reason"] == (
        f"v2 refused: its bias.json s3://{ARTIFACTS}/pipelines/churn/elsewhere/bias.json is not where the evaluation step "
        f"writes churn's reports (s3://{ARTIFACTS}/pipelines/churn/*/evaluate/evaluation/*), the only ones the deploy "
        "handler may read, so its promotion gate cannot be checked; re-register it from a pipeline run, or register it "
        "with its reports (ModelMetrics) there")
    assert aws.parameters()["ChurnModelPackageArn"] == v1 and len(aws.updates) == 1
    assert aws.notices() == [f"{GROUP}: v2 refused: promotion gate not checked"]  # its report says it passed


def test_a_serving_version_whose_gate_failed_is_not_taken_down(aws, monkeypatch):
    """GIVEN v1, whose gate failed, serving (deployed before the handler checked gates) WHEN the stack is reconciled
    and another model's event arrives THEN v1 keeps serving, untouched and unnoticed: the gate check refuses a version
    before it serves, never takes one down."""
    v1 = register(aws, metrics=evaluation_reports(aws, reasons=FAILED_GATE))
    with monkeypatch.context() as before_the_check:
        before_the_check.setattr(dod, "gate_problems", lambda s3, version, place: [])
        approve_and_deploy(aws, v1)
    aws.notices()

    decision = run(aws, {"action": "reconcile", "group": GROUP})

    assert decision["outcome"] == "unchanged" and len(aws.updates) == 1
    assert aws.parameters()["ChurnModelPackageArn"] == v1 and aws.notices() == []


def test_a_version_without_reports_or_with_a_passed_gate_is_not_held_by_the_gate_and_an_unreadable_report_is_refused():
    """What the gate check reads: nothing for a version whose reports record no digest (registered before them);
    a report S3 refuses to read refuses the version with S3's words (so a missing grant is seen, not skipped)."""
    s3 = boto3.client("s3", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    version = dod_registry.Version(group=GROUP, version=3, arn="arn", approval="Approved", status="Completed",
                                   created=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))
    place = approval.ReportPlace(model="churn", bucket="b")
    assert dod_registry.gate_problems(s3, version, place) == []  # no digest recorded: nothing is read (the stub has no answer)
    bias = json.dumps({"evaluation_digest": "sha256:" + "0" * 64}).encode()
    folder = "s3://b/pipelines/churn/run1/evaluate/evaluation"
    sealed = dataclasses.replace(version, bias_uri=f"{folder}/bias.json", evaluation_uri=f"{folder}/evaluation.json",
                                 bias_sha256=hashlib.sha256(bias).hexdigest())
    with Stubber(s3) as stub:
        stub.add_client_error("get_object", "AccessDenied", "Access Denied", 403,
                              expected_params={"Bucket": "b", "Key": "pipelines/churn/run1/evaluate/evaluation/bias.json"})
        assert dod_registry.gate_problems(s3, sealed, place) == [
            f"its bias.json {folder}/bias.json cannot be read to check its promotion gate: An error occurred (AccessDenied) "
            "when calling the GetObject operation: Access Denied"]
        stub.assert_no_pending_responses()


def test_an_approval_without_a_reason_deploys_and_people_are_told_how_to_record_it(aws):
    """GIVEN v1 approved by a person with an empty ApprovalDescription (a bare CLI call) WHEN the handler deploys it
    THEN it deploys (a missing reason is a record to complete, not an unsafe model: refusing it would also block the
    fallback to such a version when the serving one is rejected) and people are told how to record why; a version
    approved with its reason, and one registered Approved (dev's auto_approve, no decision after registration), are
    told nothing of it."""
    v1 = register(aws)
    decide(aws, v1, "Approved", why="  ")

    decision = run(aws, state_change(v1))

    assert decision["outcome"] == "deploying"
    assert decision["no_reason"] == (
        f"v1 was approved with an empty ApprovalDescription: it deploys, but a decision without its reason is an audit "
        f"gap (--fail-on-gaps stops a release of it). Record why by approving it again with one (it stays the version "
        f"that serves): aws sagemaker update-model-package --model-package-arn {v1} --model-approval-status Approved "
        f'--approval-description "<why>" --region {REGION}')
    assert aws.notices() == [f"{GROUP}: deploying v1 (was no endpoint)", f"{GROUP}: v1 approved without a reason"]

    v2 = register(aws)
    decide(aws, v2, "Approved", why="beats v1 on AUC, fairness checked")
    assert "no_reason" not in run(aws, state_change(v2))
    registered_approved = aws.sagemaker.create_model_package(ModelPackageGroupName=GROUP, ModelApprovalStatus="Approved", **{
        k: v for k, v in aws.sagemaker.describe_model_package(ModelPackageName=register(aws)).items()
        if k in ("InferenceSpecification", "CustomerMetadataProperties")})["ModelPackageArn"]
    decision = run(aws, state_change(registered_approved))
    assert decision["outcome"] == "deploying" and "no_reason" not in decision
    assert [n for n in aws.notices() if "without a reason" in n] == []


def test_a_version_registered_before_sealing_is_refused_with_the_fix(aws):
    v1 = register(aws, sealed=False)
    set_approval(aws, v1, "Approved")

    decision = run(aws, state_change(v1))

    assert decision["outcome"] == "refused" and not aws.updates
    assert decision["reason"] == "v1 refused: " + "; ".join(
        f"it records no {name} (registered before artefacts were sealed); re-run its pipeline to register a sealed version"
        for name in ("model_data_sha256", "model_sha256"))


def test_what_the_registration_records_is_judged_without_reading_the_artefact():
    """The first half of the verification (:func:`seal_problems`, which the rollback CLI runs as the approver role,
    who cannot read the artefacts) needs no S3: the same reasons as the handler's, from the package alone."""
    at = dt.datetime(2026, 11, 20, tzinfo=dt.timezone.utc)
    digest = "a" * 64
    sealed = dod_registry.Version(group=GROUP, version=1, arn=f"arn:aws:sagemaker:eu-west-1:{DEFAULT_ACCOUNT_ID}:model-package/{GROUP}/1",
                                  approval="Approved", status="Completed", created=at, containers=1, archive_sha256=digest,
                         model_sha256="b" * 64, model_data_url=f"s3://artefacts/pipelines/churn/registered/{digest}/model.tar.gz",
                         container_sha256="c" * 64, container_now="c" * 64, image="registry/serving:1")
    assert dod_registry.seal_problems(sealed) == []
    unsealed = dataclasses.replace(sealed, archive_sha256=None, model_sha256=None, container_sha256=None)
    assert dod_registry.seal_problems(unsealed) == dod_registry.verify_artifact(None, unsealed) == [
        f"it records no {name} (registered before artefacts were sealed); re-run its pipeline to register a sealed version"
        for name in ("model_data_sha256", "model_sha256")]
    # Sealed before container digests were recorded: its container is unverified, but it may serve (a rollback target).
    assert dod_registry.seal_problems(dataclasses.replace(sealed, container_sha256=None, container_now="d" * 64)) == []
    assert dod_registry.seal_problems(dataclasses.replace(sealed, container_sha256="C" * 64)) == [
        f"its container_sha256 {'C' * 64!r} is not a sha256 (64 lower-case hex digits)"]
    swapped = dataclasses.replace(sealed, container_now="d" * 64, image="elsewhere/other:latest")
    assert dod_registry.seal_problems(swapped) == dod_registry.verify_artifact(None, swapped) == [
        f"its inference container (image elsewhere/other:latest) is not the one registered: its image and environment hash "
        f"to {'d' * 64}, {'c' * 64} was recorded at registration (container_sha256); its inference specification was "
        "changed after registration"]
    two = dataclasses.replace(sealed, containers=2, container_now=None, image=None)
    assert dod_registry.seal_problems(two) == [
        "it has 2 inference containers, the pipeline registers one: its inference specification was changed after registration"]
    elsewhere = dataclasses.replace(sealed, model_data_url="s3://artefacts/pipelines/churn/train/output/model.tar.gz")
    assert dod_registry.seal_problems(elsewhere) == dod_registry.verify_artifact(None, elsewhere) == [
        "its ModelDataUrl s3://artefacts/pipelines/churn/train/output/model.tar.gz is not the sealed key of its "
        f"model_data_sha256 (.../registered/{digest}/model.tar.gz)"]


def test_a_model_data_url_other_than_the_sealed_key_of_its_digest_is_refused(aws):
    """GIVEN a package whose digests are recorded but whose ModelDataUrl points elsewhere (e.g. the training
    output, which the training role may still change) WHEN approved THEN it is refused."""
    v1 = register(aws)
    bucket, key = _sealed_location(aws, v1)
    elsewhere = f"s3://{bucket}/pipelines/churn/run-1/train/output/model.tar.gz"
    spec = {**SPEC, "Containers": [{**SPEC["Containers"][0], "ModelDataUrl": elsewhere}]}
    v2 = aws.sagemaker.create_model_package(
        ModelPackageGroupName=GROUP, ModelApprovalStatus="PendingManualApproval", InferenceSpecification=spec,
        CustomerMetadataProperties=digests(aws, v1),
    )["ModelPackageArn"]
    set_approval(aws, v2, "Approved")

    decision = run(aws, state_change(v2))

    assert decision["outcome"] == "refused" and not aws.updates
    assert decision["reason"].startswith(f"v2 refused: its ModelDataUrl {elsewhere} is not the sealed key of its model_data_sha256")


@pytest.mark.parametrize(
    "change",
    [
        {"Image": "999999999999.dkr.ecr.eu-west-1.amazonaws.com/not-the-gated-code:latest"},
        {"Environment": {"SAGEMAKER_SUBMIT_DIRECTORY": "s3://elsewhere/code.tar.gz"}},
    ],
    ids=["image", "environment"],
)
def test_an_inference_container_changed_after_registration_is_refused_and_the_serving_version_kept(aws, change):
    """GIVEN v1 serving and v2 sealed WHEN v2's inference specification is replaced (UpdateModelPackage, which IAM
    cannot deny by content) with another image or environment, artefact and digests untouched, and v2 approved
    THEN v2 is refused naming the image and both container digests; the stack keeps v1."""
    v1 = register(aws)
    approve_and_deploy(aws, v1)
    aws.notices()
    v2 = register(aws)
    container = {**aws.sagemaker.describe_model_package(ModelPackageName=v2)["InferenceSpecification"]["Containers"][0], **change}
    replace_inference_specification(v2, {**SPEC, "Containers": [container]}, account=DEFAULT_ACCOUNT_ID, region=REGION)
    set_approval(aws, v2, "Approved")

    decision = run(aws, state_change(v2))

    recorded = digests(aws, v2)["container_sha256"]
    now = integrity.container_digest(container["Image"], container.get("Environment"))
    assert decision["outcome"] == "refused" and decision["deployed"] is False
    assert decision["reason"] == (
        f"v2 refused: its inference container (image {container['Image']}) is not the one registered: its image and "
        f"environment hash to {now}, {recorded} was recorded at registration (container_sha256); its inference "
        "specification was changed after registration"
    )
    assert aws.parameters()["ChurnModelPackageArn"] == v1 and len(aws.updates) == 1


def test_without_a_stored_checksum_the_artefact_is_read_and_verified(aws):
    """GIVEN a sealed object S3 keeps no sha256 checksum for WHEN its version is approved THEN the handler
    hashes the bytes instead and deploys, setting the model digest parameter."""
    v1 = register(aws, upload=False)
    bucket, key = _sealed_location(aws, v1)
    aws.s3.put_object(Bucket=bucket, Key=key, Body=model_archive(before=[("./version-1", b"")]))
    assert "ChecksumSHA256" not in aws.s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    set_approval(aws, v1, "Approved")

    decision = run(aws, state_change(v1))

    assert decision["outcome"] == "deploying"
    assert aws.parameters()["ChurnModelSha256"] == digests(aws, v1)["model_sha256"]


def test_a_digest_parameter_already_right_makes_no_update_and_a_stale_one_is_corrected(aws):
    v1 = register(aws)
    approve_and_deploy(aws, v1)
    assert run(aws, state_change(v1))["outcome"] == "unchanged"
    # Someone sets the digest by hand.
    aws.cloudformation.update_stack(
        StackName=STACK, UsePreviousTemplate=True,
        Parameters=[{"ParameterKey": k, "ParameterValue": "0" * 64} if k == "ChurnModelSha256" else {"ParameterKey": k, "UsePreviousValue": True}
                    for k in aws.parameters()],
    )

    decision = run(aws, state_change(v1))

    assert decision["outcome"] == "deploying" and len(aws.updates) == 3
    assert aws.parameters()["ChurnModelSha256"] == digests(aws, v1)["model_sha256"]


def test_a_registration_before_any_approval_is_quiet(aws):
    """Pending versions of a model with no endpoint yet: nothing to deploy and nothing to tell people."""
    v1 = register(aws)
    decision = run(aws, state_change(v1, approval="PendingManualApproval"))
    assert decision["outcome"] == "nothing-to-serve"
    assert aws.updates == [] and aws.notices() == []


def test_an_approved_version_without_a_container_never_replaces_the_serving_one(aws):
    v1, broken = register(aws), register(aws, spec=None)
    approve_and_deploy(aws, v1)
    aws.notices()
    set_approval(aws, broken, "Approved")

    decision = run(aws, state_change(broken))

    assert decision["deployed"] is False and decision["outcome"] == "refused"
    assert "no inference container" in decision["reason"]
    assert aws.parameters()["ChurnModelPackageArn"] == v1
    assert len(aws.updates) == 1
    assert aws.notices() == [f"{GROUP}: v2 refused"]


def test_an_approved_failed_package_is_not_deployed_and_people_are_told(aws):
    """ModelPackageStatus is set to Failed in moto's backend (moto completes every package)."""
    v1, failed = register(aws), register(aws)
    approve_and_deploy(aws, v1)
    aws.notices()
    sagemaker_backends[DEFAULT_ACCOUNT_ID][REGION].model_packages[failed].model_package_status = "Failed"
    set_approval(aws, failed, "Approved")

    decision = run(aws, state_change(failed, status="Failed"))

    assert decision["deployed"] is False and decision["refused"] == [2]
    assert aws.parameters()["ChurnModelPackageArn"] == v1
    assert len(aws.updates) == 1
    assert aws.notices() == [f"{GROUP}: v2 refused"]


def test_a_missing_stack_is_logged_and_notified_not_raised(aws, monkeypatch):
    monkeypatch.setenv("SERVING_STACK_NAME", "mlops-loop-prod-serving-not-deployed")
    v1 = register(aws)
    set_approval(aws, v1, "Approved")

    decision = run(aws, state_change(v1))

    assert decision["outcome"] == "stack-missing" and "does not exist" in decision["reason"]
    assert aws.updates == []
    assert aws.notices() == [f"{GROUP}: cannot deploy v1: stack missing"]


def test_a_stack_without_the_models_parameter_is_reported_not_updated(aws, monkeypatch):
    monkeypatch.setenv("MODEL_PARAMETERS", json.dumps({GROUP: "ChurnModelArn"}))
    v1 = register(aws)
    set_approval(aws, v1, "Approved")

    decision = run(aws, state_change(v1))

    assert decision["outcome"] == "misconfigured" and "ChurnModelArn" in decision["reason"]
    assert aws.updates == []


def test_manual_reconcile_deploys_the_desired_version(aws):
    v1 = register(aws)
    set_approval(aws, v1, "Approved")
    decision = run(aws, {"action": "reconcile", "group": GROUP})
    assert decision["deployed"] is True
    assert aws.parameters()["ChurnModelPackageArn"] == v1


def test_no_updates_to_be_performed_is_a_no_op(aws):
    """CloudFormation's own idempotency answer (stubbed: moto is never asked for an update it would refuse)."""
    v1 = register(aws)
    set_approval(aws, v1, "Approved")
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    with Stubber(cloudformation) as stub:
        stub.add_response(
            "describe_stacks",
            {
                "Stacks": [
                    {
                        "StackName": STACK,
                        # botocore parses timestamps into datetimes; a Stubber response is handed back as given
                        "CreationTime": dt.datetime(2026, 11, 26, 8, 0, tzinfo=dt.timezone.utc),
                        "StackStatus": "UPDATE_COMPLETE",
                        "Parameters": [{"ParameterKey": "ChurnModelPackageArn", "ParameterValue": ""}],
                    }
                ]
            },
            {"StackName": STACK},
        )
        stub.add_response("describe_stack_events", {"StackEvents": []}, {"StackName": STACK})
        stub.add_client_error("update_stack", "ValidationError", "No updates are to be performed.", 400)
        decision = dod.handler(state_change(v1), sagemaker=aws.sagemaker, cloudformation=cloudformation, sns=aws.sns)
        stub.assert_no_pending_responses()
    assert decision["outcome"] == "unchanged" and decision["deployed"] is False


def _refused_update(aws, code: str, message: str, status: int, attempts: int = 1) -> Stubber:
    """A CloudFormation client (botocore Stubber: moto accepts any update) on which each of ``attempts`` invocations
    finds the stack idle with no version set, no earlier rollout, and has its UpdateStack answered ``code``."""
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    stub = Stubber(cloudformation)
    for _ in range(attempts):
        stub.add_response("describe_stacks", {"Stacks": [{
            "StackName": STACK, "CreationTime": dt.datetime(2026, 11, 26, 8, 0, tzinfo=dt.timezone.utc),
            "StackStatus": "UPDATE_COMPLETE", "Parameters": [{"ParameterKey": "ChurnModelPackageArn", "ParameterValue": ""}],
        }]}, {"StackName": STACK})
        stub.add_response("describe_stack_events", {"StackEvents": []}, {"StackName": STACK})
        stub.add_client_error("update_stack", code, message, status)
    return stub


def test_an_update_cloudformation_refuses_is_told_once_and_not_raised_for_lambda_to_retry(aws):
    """GIVEN an approved v1 WHEN CloudFormation refuses its UpdateStack for good (the deployer role cannot be assumed)
    THEN people get one "failed to start" notice naming the error and the reconcile to run, and the invocation ends
    without an error: Lambda does not retry it, so no second and third notice follow (before, it notified and
    re-raised: one notice per attempt, three in all)."""
    v1 = register(aws)
    set_approval(aws, v1, "Approved")
    stub = _refused_update(aws, "ValidationError", f"Role {DEPLOYER} is invalid or cannot be assumed", 400)
    with stub:
        decision = dod.handler(state_change(v1), sagemaker=aws.sagemaker, cloudformation=stub.client, sns=aws.sns, s3=aws.s3)
        stub.assert_no_pending_responses()
    assert (decision["outcome"], decision["deployed"]) == ("failed-to-start", False)
    assert "cannot be assumed" in decision["reason"]
    assert aws.notices() == [f"{GROUP}: deploying v1 failed to start"]


def test_a_refused_update_found_again_by_a_settled_stack_reconcile_tells_nobody_again(aws):
    """GIVEN an approved v1 whose UpdateStack CloudFormation refuses for good WHEN the stack settles after another
    update and its rule reconciles the group (``{"action": "reconcile"}``) THEN the outcome is the same, and nobody is
    told again: the approval event already told them."""
    v1 = register(aws)
    set_approval(aws, v1, "Approved")
    stub = _refused_update(aws, "ValidationError", f"Role {DEPLOYER} is invalid or cannot be assumed", 400)
    with stub:
        decision = dod.handler({"action": "reconcile", "group": GROUP}, sagemaker=aws.sagemaker,
                               cloudformation=stub.client, sns=aws.sns, s3=aws.s3)
        stub.assert_no_pending_responses()
    assert decision["outcome"] == "failed-to-start" and aws.notices() == []


def test_an_update_refused_because_another_one_just_started_waits_for_it_like_a_busy_stack(aws):
    """GIVEN an approved v1 and a stack found idle WHEN another update (cdk deploy, a rollback) starts before this
    UpdateStack, which CloudFormation refuses with "is in UPDATE_IN_PROGRESS state" (a ValidationError) THEN the handler
    treats it as a busy stack - it raises StackBusyError, which waits or lets Lambda retry - and tells nobody that the
    deploy "failed to start" (before, the approval was dropped with that notice)."""
    v1 = register(aws)
    set_approval(aws, v1, "Approved")
    stub = _refused_update(aws, "ValidationError",
                           f"Stack:arn:aws:cloudformation:{REGION}:111111111111:stack/{STACK}/x is in UPDATE_IN_PROGRESS "
                           "state and can not be updated.", 400)
    with stub:
        with pytest.raises(dod.StackBusyError, match="UPDATE_IN_PROGRESS; v1 of .* will be deployed on retry"):
            dod.handler(state_change(v1), sagemaker=aws.sagemaker, cloudformation=stub.client, sns=aws.sns, s3=aws.s3)
        stub.assert_no_pending_responses()
    assert aws.notices() == []


def test_an_update_that_may_pass_later_is_raised_without_a_notice_on_every_attempt(aws):
    """GIVEN an approved v1 WHEN UpdateStack is throttled on the invocation and on both of Lambda's retries THEN each
    attempt raises (so Lambda retries, then the event reaches the dead-letter queue, whose alarm tells people once) and
    none publishes a notice."""
    v1 = register(aws)
    set_approval(aws, v1, "Approved")
    stub = _refused_update(aws, "Throttling", "Rate exceeded", 400, attempts=3)
    with stub:
        for _ in range(3):  # the invocation and Lambda's two asynchronous retries of the same event
            with pytest.raises(ClientError, match="Throttling"):
                dod.handler(state_change(v1), sagemaker=aws.sagemaker, cloudformation=stub.client, sns=aws.sns, s3=aws.s3)
        stub.assert_no_pending_responses()
    assert aws.notices() == []


def test_an_update_throttled_once_then_accepted_on_lambdas_retry_deploys_and_tells_people_only_of_the_deployment(aws):
    """GIVEN an approved v1 WHEN UpdateStack is throttled on the invocation and accepted on Lambda's first retry THEN the
    first attempt raises without a notice (Lambda's ``Errors`` counts it: the ``-deploy-errors`` alarm has no action,
    tests/infra/test_operations_stack.py), the retry deploys v1, and the only notice is the deployment's: nobody is paged
    for an error the retry got past."""
    v1 = register(aws)
    set_approval(aws, v1, "Approved")
    stub = _refused_update(aws, "Throttling", "Rate exceeded", 400, attempts=1)
    with stub:
        with pytest.raises(ClientError, match="Throttling"):
            dod.handler(state_change(v1), sagemaker=aws.sagemaker, cloudformation=stub.client, sns=aws.sns, s3=aws.s3)
        stub.assert_no_pending_responses()
    assert aws.notices() == []
    # Lambda's retry of the same event, a minute later: moto's CloudFormation accepts the update.
    decision = dod.handler(state_change(v1), sagemaker=aws.sagemaker, cloudformation=aws.cloudformation, sns=aws.sns, s3=aws.s3)
    assert (decision["outcome"], decision["deployed"]) == ("deploying", True)
    assert aws.parameters()["ChurnModelPackageArn"] == v1
    assert aws.notices() == [f"{GROUP}: deploying v1 (was no endpoint)"]


@pytest.mark.parametrize(("code", "status", "expected"), [
    ("Throttling", 400, True), ("ThrottlingException", 400, True), ("ServiceUnavailable", 503, True),
    ("InternalFailure", 500, True), ("SomethingNew", 502, True), ("TooManyRequestsException", 429, True),
    ("ValidationError", 400, False), ("InsufficientCapabilitiesException", 400, False), ("AccessDenied", 403, False),
    ("TokenAlreadyExistsException", 400, False),
])
def test_only_throttling_timeouts_and_server_errors_count_as_transient(code, status, expected):
    error = ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "UpdateStack")
    assert dod.transient(error) is expected


def test_the_idempotency_token_is_stable_per_approval_and_new_per_re_approval(aws):
    v1 = register(aws)
    set_approval(aws, v1, "Approved")
    (first,) = dod_registry.list_versions(aws.sagemaker, GROUP)
    assert dod_stack.client_token(first) == dod_stack.client_token(dod_registry.list_versions(aws.sagemaker, GROUP)[0])
    set_approval(aws, v1, "PendingManualApproval")
    set_approval(aws, v1, "Approved")
    (again,) = dod_registry.list_versions(aws.sagemaker, GROUP)
    assert dod_stack.client_token(again) != dod_stack.client_token(first)
    long_group = "g" * 63
    token = dod_stack.client_token(dod_registry.Version(group=long_group * 2, version=12345, arn="a", approval="Approved", status="Completed", created=first.created))
    assert re.fullmatch(r"[a-zA-Z0-9][-a-zA-Z0-9]{0,127}", token)


def test_the_attempt_after_a_failed_rollout_gets_a_new_token_a_duplicate_delivery_does_not(aws):
    """GIVEN one approval WHEN it is delivered twice before the stack changes THEN both attempts carry one token (one
    update); WHEN the rollout then failed and CloudFormation rolled the stack back (its last update time moved)
    THEN the next attempt carries a new token - with the old one CloudFormation would take it for a replay of the
    failed request and do nothing, leaving the approved version undeployed."""
    v1 = register(aws)
    set_approval(aws, v1, "Approved")
    (version,) = dod_registry.list_versions(aws.sagemaker, GROUP)
    before = dt.datetime(2026, 12, 2, 9, 0, tzinfo=dt.timezone.utc)
    assert dod_stack.client_token(version, before) == dod_stack.client_token(version, before)
    rolled_back = before + dt.timedelta(minutes=17)
    assert dod_stack.client_token(version, rolled_back) != dod_stack.client_token(version, before)
    assert re.fullmatch(r"[a-zA-Z0-9][-a-zA-Z0-9]{0,127}", dod_stack.client_token(version, rolled_back))


@pytest.mark.parametrize(
    ("name", "value", "fix"),
    [
        ("SERVING_STACK_NAME", "", "SERVING_STACK_NAME"),
        ("MODEL_PARAMETERS", "churn", "MODEL_PARAMETERS must be a JSON object"),
        ("MODEL_PARAMETERS", '{"mlops-loop-prod-churn": 3}', "MODEL_PARAMETERS must be a JSON object"),
        ("DEPLOYER_ROLE_ARN", "deployer", "DEPLOYER_ROLE_ARN"),
    ],
)
def test_a_misconfigured_function_fails_loudly_naming_the_variable(aws, monkeypatch, name, value, fix):
    monkeypatch.setenv(name, value)
    with pytest.raises(dod_settings.ConfigurationError, match=fix):
        run(aws, {"action": "reconcile", "group": GROUP})


# --- models of several teams (TEAM_TOPICS: docs/configuration.md, Models of several teams) -----------------------


@pytest.fixture()
def team_topic(aws, monkeypatch):
    """GIVEN churn owned by a team with a topic of its own (TEAM_TOPICS), read back through a queue of its own; credit-risk
    owned by no team (the environment's topic)."""
    topic = aws.sns.create_topic(Name="mlops-loop-prod-fraud-team")["TopicArn"]
    queue = aws.sqs.create_queue(QueueName="fraud-people")["QueueUrl"]
    queue_arn = aws.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws.sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    # Named as the Operations stack names it (<prefix>-<team>-notifications); the handler builds its ARN from
    # NOTIFY_TOPIC_ARN's partition, region and account.
    monkeypatch.setenv("TEAM_TOPICS", json.dumps({topic.rsplit(":", 1)[1]: [GROUP]}))
    return queue


def _team_notices(aws, queue) -> list[str]:
    shared, aws.queue = aws.queue, queue
    try:
        return aws.notices()
    finally:
        aws.queue = shared


def test_a_notice_about_a_teams_model_reaches_its_team_topic_only(aws, team_topic):
    """GIVEN churn owned by a team WHEN its only approved version is rejected (nothing left to serve) and then a
    version is refused THEN each notice reaches the team's topic and the environment's topic hears nothing."""
    v1 = register(aws)
    approve_and_deploy(aws, v1)
    set_approval(aws, v1, "Rejected")

    run(aws, state_change(v1, approval="Rejected"))

    assert _team_notices(aws, team_topic) == [f"{GROUP}: deploying v1 (was no endpoint)", f"{GROUP}: nothing left to serve"]
    assert aws.notices() == []


def test_a_notice_about_an_unowned_model_reaches_the_environments_topic_only(aws, team_topic):
    """GIVEN churn owned by a team, credit-risk by none WHEN credit-risk is reconciled with no approved version left
    THEN its notice reaches the environment's topic; the team's hears nothing."""
    # A wait's retry (a settled-stack reconcile tells nobody again what the registry event told)
    decision = run(aws, {"action": "reconcile", "group": OTHER_GROUP, "waiting_since": "2026-01-01T00:00:00+00:00"})

    assert decision["outcome"] == "nothing-to-serve"
    assert aws.notices() == [f"{OTHER_GROUP}: nothing left to serve"]
    assert _team_notices(aws, team_topic) == []


_REDEPLOY = "deploy the Operations stack again (cdk deploy) to restore the variable"


@pytest.mark.parametrize(
    "value, notify, fix",
    [
        ("fraud", None, "environment variable TEAM_TOPICS must be a JSON object mapping a team's topic name -> its "
                        "models' group names, got 'fraud'"),
        ('{"t": "mlops-loop-prod-churn"}', None, "environment variable TEAM_TOPICS must be a JSON object mapping a "
         "team's topic name -> its models' group names, got '{\"t\": \"mlops-loop-prod-churn\"}'"),
        ('{"t": ["mlops-loop-prod-other"]}', None,
         "environment variable TEAM_TOPICS names group 'mlops-loop-prod-other', which MODEL_PARAMETERS does not: give "
         "each team's topic the groups of its models this function deploys"),
        # The format before topics had fixed names: an ARN is no name.
        ('{"arn:aws:sns:eu-west-1:123456789012:t": ["mlops-loop-prod-churn"]}', None,
         "environment variable TEAM_TOPICS names topic 'arn:aws:sns:eu-west-1:123456789012:t', which is no SNS topic "
         "name (1-256 letters, digits, '-' and '_'; the team's topic name <prefix>-<team>-notifications, not its ARN): "
         f"{_REDEPLOY} it sets"),
        ('{"t": ["mlops-loop-prod-churn"]}', "",
         "environment variable TEAM_TOPICS names team topics, whose ARNs are built from environment variable "
         "NOTIFY_TOPIC_ARN (the environment's topic: its partition, region and account), which is no SNS topic ARN "
         f"(got ''): {_REDEPLOY}s it sets"),
    ],
)
def test_a_malformed_team_topics_setting_fails_loudly_naming_the_variable(aws, monkeypatch, value, notify, fix):
    monkeypatch.setenv("TEAM_TOPICS", value)
    if notify is not None:
        monkeypatch.setenv("NOTIFY_TOPIC_ARN", notify)
    with pytest.raises(dod_settings.ConfigurationError) as raised:
        run(aws, {"action": "reconcile", "group": GROUP})
    assert str(raised.value) == fix


# --- multi-model endpoint members (MULTI_MODEL) ----------------------------------------------------------
# churn is an MME member, credit-risk is not. The artefacts bucket, the inference bucket, the KMS key
# and the endpoint are moto's; InvokeEndpoint is a FakeRuntime (see test_multi_model).

INFERENCE = "mlops-loop-prod-inference"
MME_ENDPOINT = "mlops-loop-prod-mme"
MME_PREFIX = f"mme/{MME_ENDPOINT}/"


class NoCalls:
    """A client that must not be used: any attribute access fails the test."""

    def __getattr__(self, name):
        raise AssertionError(f"unexpected client use: {name}")


class Mme:
    def __init__(self, aws, monkeypatch) -> None:
        self.aws = aws
        self.s3 = aws.s3
        self.s3.create_bucket(Bucket=INFERENCE, CreateBucketConfiguration={"LocationConstraint": REGION})
        self.key_id = aws.client("kms").create_key()["KeyMetadata"]["KeyId"]
        self.setting = {"model": "churn", "endpoint": MME_ENDPOINT, "bucket": INFERENCE, "prefix": MME_PREFIX, "kms_key_id": self.key_id}
        monkeypatch.setenv("MULTI_MODEL", json.dumps({GROUP: self.setting}))
        create_mme_endpoint(aws.sagemaker, name=MME_ENDPOINT)
        self.runtime = FakeRuntime()
        self.copies: list[dict] = []
        for operation in ("CopyObject", "CreateMultipartUpload"):
            self.s3.meta.events.register(f"provide-client-params.s3.{operation}", lambda params, **_: self.copies.append(dict(params)))

    def register(self, *, archive: bytes | None = None, upload: bool = True) -> str:
        """A sealed churn version whose model.tar.gz (``archive``, default a valid one) is in the artifacts bucket."""
        return register(self.aws, archive=archive, upload=upload)

    def run(self, event, **clients):
        return dod.handler(
            event,
            sagemaker=self.aws.sagemaker,
            cloudformation=self.aws.cloudformation,
            sns=self.aws.sns,
            s3=clients.get("s3", self.s3),
            runtime=clients.get("runtime", self.runtime),
        )

    def approve(self, arn, approval="Approved"):
        set_approval(self.aws, arn, approval)
        return self.run(state_change(arn, approval=approval))

    def staged(self) -> list[str]:
        return [o["Key"] for o in self.s3.list_objects_v2(Bucket=INFERENCE).get("Contents", [])]

    def set_endpoint_status(self, status: str) -> None:
        sagemaker_backends[DEFAULT_ACCOUNT_ID][REGION].endpoints[MME_ENDPOINT].endpoint_status = status


@pytest.fixture()
def mme(aws, monkeypatch):
    return Mme(aws, monkeypatch)


def test_approving_an_mme_member_stages_smoke_tests_and_then_updates_the_stack(aws, mme):
    v1 = mme.register(archive=model_archive())

    decision = mme.approve(v1)

    key = f"{MME_PREFIX}churn/v1.tar.gz"
    assert mme.staged() == [key]
    head = mme.s3.head_object(Bucket=INFERENCE, Key=key, ChecksumMode="ENABLED")
    assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"].endswith(mme.key_id)
    assert mme.s3.get_object(Bucket=INFERENCE, Key=key)["Body"].read() == model_archive()
    assert head["ChecksumSHA256"] == hex_to_base64(digests(aws, v1)["model_data_sha256"])
    (call,) = mme.runtime.calls
    assert (call["EndpointName"], call["TargetModel"]) == (MME_ENDPOINT, "churn/v1.tar.gz")
    assert call["ContentType"] == call["Accept"] == "application/json"
    (record,) = json.loads(call["Body"])["instances"]
    assert record == {**{f: None for f in CHURN_FEATURES}, "inference_id": "mlops-loop-smoke-test"}
    (update,) = aws.updates
    assert [p for p in update["Parameters"] if p["ParameterKey"] == "ChurnModelPackageArn"] == [
        {"ParameterKey": "ChurnModelPackageArn", "ParameterValue": v1}
    ]
    assert aws.parameters()["ChurnModelPackageArn"] == v1
    assert decision["deployed"] is True and decision["outcome"] == "deploying"
    assert decision["target_model"] == "churn/v1.tar.gz" and decision["endpoint"] == MME_ENDPOINT
    assert decision["staged"] == "copied" and decision["smoke_test"] == "passed (score 0.31)"
    assert aws.notices() == [f"{GROUP}: deploying v1 (was no endpoint)"]


def test_a_duplicate_event_for_an_mme_member_copies_and_updates_nothing(aws, mme):
    v1 = mme.register()
    assert mme.approve(v1)["deployed"] is True

    again = mme.run(state_change(v1))

    assert again["outcome"] == "unchanged"
    assert len(mme.copies) == 1 and len(mme.runtime.calls) == 1 and len(aws.updates) == 1


def test_an_mme_rollback_reuses_the_staged_key_smoke_tests_it_and_updates(aws, mme):
    v1, v2 = mme.register(), mme.register()
    mme.approve(v1)
    mme.approve(v2)
    assert len(mme.copies) == 2
    aws.notices()

    decision = mme.approve(v2, "Rejected")

    assert decision["deployed"] is True and decision["reason"] == "v2 -> v1"
    assert decision["staged"] == "re-used" and decision["target_model"] == "churn/v1.tar.gz"
    assert len(mme.copies) == 2
    assert [c["TargetModel"] for c in mme.runtime.calls] == ["churn/v1.tar.gz", "churn/v2.tar.gz", "churn/v1.tar.gz"]
    assert aws.parameters()["ChurnModelPackageArn"] == v1
    assert sorted(mme.staged()) == [f"{MME_PREFIX}churn/v1.tar.gz", f"{MME_PREFIX}churn/v2.tar.gz"]
    assert aws.notices() == [f"{GROUP}: deploying v1 (was v2)"]


def test_a_staged_copy_holding_other_bytes_is_refused(aws, mme):
    """GIVEN v1 staged for the MME WHEN its staged copy is changed and v1 is deployed again (a rollback re-uses
    the key) THEN the re-used copy fails its check against the registered digest and v1 is refused."""
    v1, v2 = mme.register(), mme.register()
    mme.approve(v1)
    mme.approve(v2)
    aws.notices()
    mme.s3.put_object(Bucket=INFERENCE, Key=f"{MME_PREFIX}churn/v1.tar.gz", Body=b"other bytes",
                      Metadata={"source-model-data-url": source_url(aws, v1)})

    decision = mme.approve(v2, "Rejected")

    assert decision["outcome"] == "refused" and aws.parameters()["ChurnModelPackageArn"] == v2
    assert decision["reason"].startswith("v1 refused: the staged copy of v1 of churn")
    assert f"has sha256 {hashlib.sha256(b'other bytes').hexdigest()}, but the package recorded" in decision["reason"]
    assert aws.notices() == [f"{GROUP}: v1 refused: staging failed"]


def test_a_missing_source_artefact_is_refused_and_notified_without_an_update(aws, mme):
    v1 = mme.register()
    mme.approve(v1)
    aws.notices()
    v2 = mme.register(upload=False)

    decision = mme.approve(v2)

    assert decision["deployed"] is False and decision["outcome"] == "refused"
    source = source_url(aws, v2)
    assert decision["reason"].startswith(f"v2 refused: its artefact {source} cannot be read to verify it") and "404" in decision["reason"]
    assert aws.parameters()["ChurnModelPackageArn"] == v1 and len(aws.updates) == 1
    assert mme.staged() == [f"{MME_PREFIX}churn/v1.tar.gz"] and len(mme.runtime.calls) == 1
    assert aws.notices() == [f"{GROUP}: v2 refused: artefact not verified"]


@pytest.mark.parametrize(
    "failure",
    [
        {"error": model_error("ModelLoadError: model 'churn' disagrees with the catalog")},
        {"body": b"<html>502 Bad Gateway</html>"},
        {"body": answer(float("nan"))},
        {"body": answer(1.2)},
        {"body": answer(count=2)},
    ],
    ids=["model-error", "not-json", "nan", "above-one", "two-predictions"],
)
def test_a_failed_smoke_test_refuses_the_version_and_keeps_the_serving_one(aws, mme, failure):
    v1 = mme.register()
    mme.approve(v1)
    aws.notices()
    v2 = mme.register()
    mme.runtime = FakeRuntime(**failure)

    decision = mme.approve(v2)

    assert decision["deployed"] is False and decision["outcome"] == "refused"
    assert decision["target_model"] == "churn/v2.tar.gz"
    assert decision["smoke_test"].startswith(f"failed: smoke test of churn/v2.tar.gz on {MME_ENDPOINT} failed: ")
    assert len(mme.runtime.calls) == 1
    assert aws.parameters()["ChurnModelPackageArn"] == v1 and len(aws.updates) == 1
    assert aws.notices() == [f"{GROUP}: v2 failed its smoke test on {MME_ENDPOINT}; keeps serving v1"]


def _one_prediction(prediction: dict) -> bytes:
    return json.dumps({"predictions": [prediction], "model": {"name": "churn", "version": None}}).encode()


@pytest.mark.parametrize(
    ("prediction", "passed"),
    [
        ({"label": "premium", "score": 0.52, "probabilities": {"basic": 0.08, "standard": 0.4, "premium": 0.52},
          "inference_id": "mlops-loop-smoke-test"}, "passed (label 'premium', score 0.52)"),
        ({"value": 41.7, "inference_id": "mlops-loop-smoke-test"}, "passed (value 41.7)"),
    ],
    ids=["multiclass", "regression"],
)
def test_an_mme_member_answering_as_a_multiclass_or_regression_model_passes_its_smoke_test(aws, mme, prediction, passed):
    """GIVEN a version whose model answers the smoke request with a multiclass / regression prediction
    WHEN approved THEN the smoke test passes, says what it got, and the stack is updated."""
    mme.runtime = FakeRuntime(_one_prediction(prediction))
    v1 = mme.register()

    decision = mme.approve(v1)

    assert decision["deployed"] is True and decision["outcome"] == "deploying"
    assert decision["smoke_test"] == passed
    assert aws.parameters()["ChurnModelPackageArn"] == v1 and len(aws.updates) == 1


@pytest.mark.parametrize(
    ("prediction", "problem"),
    [
        ({"label": "gold", "score": 0.52, "probabilities": {"basic": 0.08, "standard": 0.4, "premium": 0.52}},
         "'label' must be one of the classes of 'probabilities' ['basic', 'standard', 'premium'], got 'gold'"),
        ({"label": "premium", "score": 0.52, "probabilities": {"basic": 0.5, "standard": 0.4, "premium": 0.52}},
         "'probabilities' must sum to 1, got 1.42"),
        ({"value": float("nan")}, "'value' must be a finite number, got nan"),
    ],
    ids=["multiclass-label-not-a-class", "multiclass-sum-not-1", "regression-nan"],
)
def test_a_malformed_multiclass_or_regression_smoke_answer_refuses_the_version(aws, mme, prediction, problem):
    v1 = mme.register()
    mme.approve(v1)
    aws.notices()
    v2 = mme.register()
    body = _one_prediction(prediction)
    mme.runtime = FakeRuntime(body)

    decision = mme.approve(v2)

    assert decision["deployed"] is False and decision["outcome"] == "refused"
    assert decision["smoke_test"] == (f"failed: smoke test of churn/v2.tar.gz on {MME_ENDPOINT} failed: {problem}: "
                                      f"{body.decode()[:300]!r}")
    assert aws.parameters()["ChurnModelPackageArn"] == v1 and len(aws.updates) == 1
    assert aws.notices() == [f"{GROUP}: v2 failed its smoke test on {MME_ENDPOINT}; keeps serving v1"]


def test_without_the_endpoint_the_update_goes_ahead_without_a_smoke_test(aws, mme):
    """The first deployment on an MME: the stack update creates the endpoint."""
    aws.sagemaker.delete_endpoint(EndpointName=MME_ENDPOINT)
    v1 = mme.register()

    decision = mme.approve(v1)

    assert decision["deployed"] is True and aws.parameters()["ChurnModelPackageArn"] == v1
    assert decision["smoke_test"] == f"skipped: endpoint {MME_ENDPOINT} does not exist yet"
    assert mme.staged() == [f"{MME_PREFIX}churn/v1.tar.gz"] and mme.runtime.calls == []


def test_a_failed_endpoint_is_updated_without_a_smoke_test_and_the_decision_says_so(aws, mme):
    """EndpointStatus set in moto's backend (moto's endpoints are always InService)."""
    mme.set_endpoint_status("Failed")
    v1 = mme.register()

    decision = mme.approve(v1)

    assert decision["deployed"] is True and mme.runtime.calls == []
    assert decision["smoke_test"].startswith(f"skipped: endpoint {MME_ENDPOINT} is Failed")


@pytest.mark.parametrize("status", ["Creating", "Updating", "SystemUpdating", "RollingBack"])
def test_an_endpoint_mid_operation_raises_a_retryable_error_and_updates_nothing(aws, mme, caplog, status):
    """EndpointStatus set in moto's backend."""
    caplog.set_level(logging.INFO, logger=dod.__name__)
    mme.set_endpoint_status(status)
    v1 = mme.register()
    set_approval(aws, v1, "Approved")

    with pytest.raises(dod.StackBusyError, match=f"endpoint {MME_ENDPOINT} is {status}"):
        mme.run(state_change(v1))

    assert aws.updates == [] and mme.runtime.calls == []
    (line,) = [json.loads(r.getMessage()) for r in caplog.records if r.name == dod.__name__]
    assert line["outcome"] == "retry" and line["target_model"] == "churn/v1.tar.gz"


def test_an_artefact_without_feature_metadata_is_refused(aws, mme):
    v1 = mme.register(archive=model_archive(metadata_name=None))

    decision = mme.approve(v1)

    assert decision["outcome"] == "refused" and "feature_metadata.json not found" in decision["reason"]
    assert aws.updates == [] and mme.runtime.calls == []
    assert aws.notices() == [f"{GROUP}: v1 refused: bad artefact"]


def test_a_non_member_group_in_the_same_function_behaves_as_before(aws, mme):
    """credit-risk is not in MULTI_MODEL: nothing staged (S3 is only read, to verify the artefact), no
    sagemaker-runtime use, the same decision and notice."""
    arn = register(aws, group=OTHER_GROUP)
    set_approval(aws, arn, "Approved")
    staged_before = mme.staged()

    decision = mme.run(state_change(arn, group=OTHER_GROUP), runtime=NoCalls())

    assert decision["deployed"] is True and decision["reason"] == "v3 -> v1"
    assert not {"target_model", "endpoint", "staged", "smoke_test"} & set(decision)
    assert mme.staged() == staged_before and not mme.copies
    assert aws.parameters()["CreditRiskModelPackageArn"] == arn
    assert aws.notices() == [f"{OTHER_GROUP}: deploying v1 (was v3)"]


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("churn", "MULTI_MODEL is not JSON"),
        ("[]", "MULTI_MODEL must be a JSON object"),
        ('{"mlops-loop-prod-other": {}}', "group 'mlops-loop-prod-other' is not in MODEL_PARAMETERS"),
        ('{"mlops-loop-prod-churn": "mme"}', r"MULTI_MODEL\['mlops-loop-prod-churn'\] must be an object"),
        ("without:kms_key_id", r"\['mlops-loop-prod-churn'\].kms_key_id must be a non-empty string"),
        ("endpoint:", r"\['mlops-loop-prod-churn'\].endpoint must be a non-empty string"),
        ("prefix:mme/mlops-loop-prod-mme", r"\.prefix must be a key prefix ending in '/'"),
        ("model:churn/v1", r"\.model must be a model name"),
        ("bucket:s3://mlops-loop-prod-inference", r"\.bucket must be an S3 bucket name"),
        ("kms_key:k", "unknown field 'kms_key'"),
    ],
)
def test_a_bad_multi_model_setting_fails_loudly_naming_the_field(aws, mme, monkeypatch, value, named):
    if value.startswith("without:"):
        member = {k: v for k, v in mme.setting.items() if k != value.split(":", 1)[1]}
        value = json.dumps({GROUP: member})
    elif ":" in value and not value.startswith(("{", "[")):
        field, replacement = value.split(":", 1)
        value = json.dumps({GROUP: {**mme.setting, field: replacement}})
    monkeypatch.setenv("MULTI_MODEL", value)
    with pytest.raises(dod_settings.ConfigurationError, match=named):
        mme.run({"action": "reconcile", "group": OTHER_GROUP})


def test_members_take_the_bucket_and_key_they_leave_out_from_the_shared_setting(aws, mme, monkeypatch):
    """GIVEN MULTI_MODEL naming each member's model, endpoint and prefix only, and MULTI_MODEL_SHARED the bucket and key
    (as the app writes them, to fit many members in Lambda's 4 KB) WHEN a member's version is approved THEN it is
    staged with the shared bucket and key, as with every field given per member."""
    member = {k: v for k, v in mme.setting.items() if k not in ("bucket", "kms_key_id")}
    monkeypatch.setenv("MULTI_MODEL", json.dumps({GROUP: member}))
    monkeypatch.setenv("MULTI_MODEL_SHARED", json.dumps({"bucket": INFERENCE, "kms_key_id": mme.key_id}))
    assert dod_settings.from_environment()["multi_model"] == {GROUP: mme.setting}
    v1 = mme.register()
    assert mme.approve(v1)["deployed"] is True and mme.staged()


@pytest.mark.parametrize("shared", ["[]", '{"prefix": "mme/"}', "not json"])
def test_a_bad_shared_multi_model_setting_fails_loudly_naming_it(aws, mme, monkeypatch, shared):
    monkeypatch.setenv("MULTI_MODEL_SHARED", shared)
    with pytest.raises(dod_settings.ConfigurationError) as error:
        mme.run({"action": "reconcile", "group": OTHER_GROUP})
    assert str(error.value) == ("environment variable MULTI_MODEL_SHARED must be a JSON object with fields among bucket, "
                                f"kms_key_id, got {shared!r}")


def test_an_empty_multi_model_setting_means_no_member(aws, mme, monkeypatch):
    monkeypatch.setenv("MULTI_MODEL", "")
    v1 = mme.register()
    decision = mme.approve(v1)
    assert decision["deployed"] is True and "target_model" not in decision
    assert mme.staged() == [] and mme.runtime.calls == []


@pytest.mark.parametrize("later", ["registration of another version", "another model's deploy settled", "a retry"])
def test_a_version_whose_rollout_was_rolled_back_is_held_until_someone_decides_again(aws, later):
    # GIVEN v1 serves, v2 was approved and deployed, and its blue/green rollout was rolled back (v1 serves again)
    v1, v2 = register(aws), register(aws)
    deploy_and_fail(aws, v1, v2)
    n = len(aws.updates)
    # WHEN an unrelated event reconciles churn
    if later == "registration of another version":
        event = state_change(register(aws), approval="PendingManualApproval")
    else:
        cloudformation_backends[DEFAULT_ACCOUNT_ID][REGION].get_stack(STACK).status = "UPDATE_COMPLETE"
        event = {"action": "reconcile", "group": GROUP}
    decision = run(aws, event)
    # THEN v2 is not rolled out again: v1 keeps serving, and the decision says why and what to do
    assert decision["outcome"] == "held" and decision["deployed"] is False and len(aws.updates) == n
    assert aws.parameters()["ChurnModelPackageArn"] == v1
    assert decision["reason"].startswith(
        "v2's rollout for this approval failed (ChurnEndpoint: UPDATE_FAILED - Rollback alarm ChurnRollback5xx in ALARM; ")
    assert decision["reason"].endswith(
        "and CloudFormation rolled it back: it is not retried until someone decides again (re-approve v2 to retry it - "
        "`python -m mlops_cli.rollback --env <env> --model <model> rollback --to-version 2 --reason \"<why>\"`, or PendingManualApproval "
        "then Approved - or reject it or approve another version to move on); v1 keeps serving")
    assert decision["failed_rollout"]["status"] == "UPDATE_FAILED"
    # AND people hear of it once for a registry event of the group, not on every settled-stack reconcile
    assert aws.notices() == (["mlops-loop-prod-churn: v2 held after its failed rollout"]
                             if later == "registration of another version" else [])


def test_re_approving_a_held_version_retries_its_rollout_and_rejecting_it_moves_on(aws):
    v1, v2 = register(aws), register(aws)
    deploy_and_fail(aws, v1, v2)
    # WHEN someone re-approves v2 (a new decision: a new approval time)
    set_approval(aws, v2, "PendingManualApproval")
    set_approval(aws, v2, "Approved")
    decision = run(aws, state_change(v2))
    # THEN its rollout is tried again
    assert decision["outcome"] == "deploying" and aws.parameters()["ChurnModelPackageArn"] == v2
    # AND GIVEN that one fails too, rejecting v2 leaves v1 as the version to serve: nothing to do
    roll_back_last_update(aws, to_arn=v1, to_sha=aws.parameters()["ChurnModelSha256"])
    set_approval(aws, v2, "Rejected")
    assert run(aws, state_change(v2, approval="Rejected"))["outcome"] == "unchanged"


def test_a_rolled_back_update_of_another_approval_or_model_does_not_hold_the_version(aws):
    # GIVEN v2's rollout failed, then v3 is approved: v3 has had no rollout, so it is deployed
    v1, v2, v3 = register(aws), register(aws), register(aws)
    deploy_and_fail(aws, v1, v2)
    set_approval(aws, v3, "Approved")
    decision = run(aws, state_change(v3))
    assert decision["outcome"] == "deploying" and aws.parameters()["ChurnModelPackageArn"] == v3


def test_rejecting_the_serving_version_while_the_one_approved_before_it_is_held_serves_the_last_good_one(aws):
    # GIVEN v1 served, v2's rollout failed (held), then v3 was approved and serves
    v1, v2, v3 = register(aws), register(aws), register(aws)
    deploy_and_fail(aws, v1, v2)
    cloudformation_backends[DEFAULT_ACCOUNT_ID][REGION].get_stack(STACK).status = "UPDATE_COMPLETE"
    approve_and_deploy(aws, v3)
    aws.notices()
    # WHEN v3 is rejected
    set_approval(aws, v3, "Rejected")
    decision = run(aws, state_change(v3, approval="Rejected"))
    # THEN neither the rejected v3 stays nor the held v2 is retried: v1, approved before both, serves again
    assert decision["outcome"] == "deploying" and aws.parameters()["ChurnModelPackageArn"] == v1
    assert decision["held"]["version"] == 2 and decision["desired"]["version"] == 1
    (notice,) = aws.notices()
    assert notice == "mlops-loop-prod-churn: deploying v1 (was v3)"


def test_a_resource_that_fails_to_delete_after_a_successful_update_does_not_hold_the_version(aws):
    # GIVEN v2's update succeeded, but cleaning up an old resource afterwards failed (DELETE_FAILED)
    v1, v2, v3 = register(aws), register(aws), register(aws)
    approve_and_deploy(aws, v1)
    aws.update_started = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(milliseconds=1)
    approve_and_deploy(aws, v2)
    token = aws.updates[-1]["ClientRequestToken"]
    stack = cloudformation_backends[DEFAULT_ACCOUNT_ID][REGION].get_stack(STACK)
    for event in stack.events:
        if event.client_request_token is None and event.timestamp >= aws.update_started:
            event.client_request_token = token
    cleanup = Event(stack.stack_id, STACK, "OldConfig", "OldConfig", "AWS::SageMaker::EndpointConfig", "DELETE_FAILED",
                    "in use", None)
    cleanup.client_request_token = token
    stack.events.append(cleanup)
    # WHEN v3 is approved, fails nothing, and is rejected again: v2 is the version to serve once more
    approve_and_deploy(aws, v3)
    set_approval(aws, v3, "Rejected")
    decision = run(aws, state_change(v3, approval="Rejected"))
    # THEN v2 is deployed: its update did not fail
    assert decision["outcome"] == "deploying" and aws.parameters()["ChurnModelPackageArn"] == v2
    assert dod_stack.failed_rollout(aws.cloudformation, STACK, dod_registry.list_versions(aws.sagemaker, GROUP)[1]) is None


def test_events_that_cannot_be_read_back_to_the_approval_hold_the_version(aws, monkeypatch):
    # GIVEN more stack events since the approval than the handler reads (simulated: one page allowed, a next one exists)
    v1 = register(aws)
    set_approval(aws, v1, "Approved")
    (version,) = dod_registry.list_versions(aws.sagemaker, GROUP)
    monkeypatch.setattr(dod_stack, "MAX_EVENT_PAGES", 1)
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    later = dod_events.aware(version.approved_at) + dt.timedelta(seconds=5)
    with Stubber(cloudformation) as stub:
        stub.add_response("describe_stack_events", {"StackEvents": [{
            "StackId": "id", "StackName": STACK, "EventId": "e", "Timestamp": later}], "NextToken": "more"}, {"StackName": STACK})
        failure = dod_stack.failed_rollout(cloudformation, STACK, version)
    # THEN a failed attempt cannot be ruled out: the version counts as failed, and the reason says why
    assert failure["status"] == "unknown" and "cannot be ruled out" in failure["reason"]


# --- a reconcile finds the serving endpoint deleted by hand ---------------------------------------------------------

ENDPOINT = "mlops-loop-prod-churn"
ENDPOINT_CONFIG = "ChurnDefaultEndpointConfig-1a2b3c"
STACK_ID = f"arn:aws:cloudformation:{REGION}:{DEFAULT_ACCOUNT_ID}:stack/{STACK}/0a1b2c3d"


def _described(outputs: dict, parameter_value: str = f"arn:aws:sagemaker:{REGION}:{DEFAULT_ACCOUNT_ID}:model-package/{GROUP}/4") -> dict:
    """A DescribeStacks answer for the serving stack with these outputs and the churn parameter naming v4."""
    return {"StackName": STACK, "StackId": STACK_ID, "StackStatus": "UPDATE_COMPLETE",
            "Parameters": [{"ParameterKey": "ChurnModelPackageArn", "ParameterValue": parameter_value}],
            "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()]}


def _stubbed_sagemaker(status: str | None) -> tuple:
    """A SageMaker client whose one DescribeEndpoint of the churn endpoint answers ``status``, or SageMaker's error
    for an endpoint that does not exist (ValidationException, "Could not find endpoint")."""
    client = boto3.client("sagemaker", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    stubber = Stubber(client)
    if status is None:
        stubber.add_client_error("describe_endpoint", service_error_code="ValidationException", http_status_code=400,
                                 service_message=f'Could not find endpoint "arn:aws:sagemaker:{REGION}:{DEFAULT_ACCOUNT_ID}:'
                                                 f'endpoint/{ENDPOINT}".', expected_params={"EndpointName": ENDPOINT})
    else:
        stubber.add_response("describe_endpoint", {
            "EndpointName": ENDPOINT, "EndpointArn": f"arn:aws:sagemaker:{REGION}:{DEFAULT_ACCOUNT_ID}:endpoint/{ENDPOINT}",
            "EndpointStatus": status, "CreationTime": dt.datetime(2026, 11, 1),
            "LastModifiedTime": dt.datetime(2026, 11, 1)}, {"EndpointName": ENDPOINT})
    stubber.activate()
    return client, stubber


OUTPUTS = {"ChurnEndpointName": ENDPOINT, "ChurnEndpointConfigName": ENDPOINT_CONFIG}


def test_a_missing_endpoint_is_found_with_the_command_that_re_creates_it_under_cloudformation():
    """GIVEN the serving stack naming v4 for churn, and its endpoint deleted (DescribeEndpoint: could not find)
    WHEN missing_endpoint checks it THEN it says so and gives create-endpoint with the same name and the configuration
    the stack made (its output), in the stack's region, and the scaling caveat."""
    sagemaker, stubber = _stubbed_sagemaker(None)
    lost = dod_stack.missing_endpoint(sagemaker, _described(OUTPUTS), "ChurnModelPackageArn")
    stubber.assert_no_pending_responses()
    assert lost["endpoint"] == ENDPOINT and lost["status"] is None
    assert lost["reason"] == (f"endpoint {ENDPOINT} serving v4 does not exist, although the serving stack {STACK} still "
                              "names that version: its callers get errors")
    assert (f"aws sagemaker create-endpoint --endpoint-name {ENDPOINT} --endpoint-config-name {ENDPOINT_CONFIG} "
            f"--region {REGION}") in lost["fix"][0]
    assert "scalable target" in lost["fix"][1]


def test_an_endpoint_being_deleted_is_waited_for_first_and_one_that_serves_or_a_batch_model_is_no_concern():
    """GIVEN the endpoint Deleting THEN the fix waits for it to be gone first; GIVEN it InService (or Updating) THEN
    None; GIVEN a model with no endpoint output (batch) THEN None without a call; GIVEN no configuration output (a stack
    deployed before it) THEN the command reads it from the stack."""
    sagemaker, _ = _stubbed_sagemaker("Deleting")
    lost = dod_stack.missing_endpoint(sagemaker, _described(OUTPUTS), "ChurnModelPackageArn")
    assert lost["reason"].startswith(f"endpoint {ENDPOINT} serving v4 is being deleted")
    assert lost["fix"][0] == (f"Wait until aws sagemaker describe-endpoint --endpoint-name {ENDPOINT} --region {REGION} "
                              "says it does not exist.")
    for status in ("InService", "Updating", "Failed"):
        sagemaker, stubber = _stubbed_sagemaker(status)
        assert dod_stack.missing_endpoint(sagemaker, _described(OUTPUTS), "ChurnModelPackageArn") is None
        stubber.assert_no_pending_responses()
    sagemaker, stubber = _stubbed_sagemaker("InService")
    assert dod_stack.missing_endpoint(sagemaker, _described({}), "ChurnModelPackageArn") is None
    with pytest.raises(AssertionError):  # never asked: its answer still waits
        stubber.assert_no_pending_responses()
    sagemaker, _ = _stubbed_sagemaker(None)
    lost = dod_stack.missing_endpoint(sagemaker, _described({"ChurnEndpointName": ENDPOINT}), "ChurnModelPackageArn")
    assert (f"--endpoint-config-name $(aws cloudformation describe-stacks --stack-name {STACK} --query "
            "\"Stacks[0].Outputs[?OutputKey=='ChurnEndpointConfigName'].OutputValue\" --output text "
            f"--region {REGION})") in lost["fix"][0]


def _with_endpoint_outputs(aws) -> None:
    """The serving stack as the app makes it: outputs naming the churn endpoint and its configuration."""
    aws.cloudformation.update_stack(
        StackName=STACK, TemplateBody=json.dumps({**TEMPLATE, "Outputs": {k: {"Value": v} for k, v in OUTPUTS.items()}}),
        Parameters=[{"ParameterKey": key, "UsePreviousValue": True} for key in TEMPLATE["Parameters"]])


def test_a_reconcile_tells_people_when_the_serving_endpoint_is_gone_and_changes_nothing(aws):
    """GIVEN v1 deployed (the stack names it) and its endpoint deleted by hand WHEN a reconcile runs THEN people are told
    once, with the fix, the outcome is endpoint-missing and no update is made; a registry event is not checked (it
    decides as before). WHEN the endpoint is back THEN the reconcile is unchanged and tells nobody."""
    v1 = register(aws)
    approve_and_deploy(aws, v1)
    _with_endpoint_outputs(aws)
    aws.notices()
    updates = len(aws.updates)

    decision = run(aws, {"action": "reconcile", "group": GROUP})
    assert decision["outcome"] == "endpoint-missing" and decision["deployed"] is False
    assert any(f"create-endpoint --endpoint-name {ENDPOINT} --endpoint-config-name {ENDPOINT_CONFIG}" in step
               for step in decision["fix"])
    assert aws.notices() == [f"{GROUP}: endpoint {ENDPOINT} missing"]
    assert len(aws.updates) == updates and aws.parameters()["ChurnModelPackageArn"] == v1
    assert run(aws, state_change(v1))["outcome"] == "unchanged"  # a registry event: the reconcile path only

    create_mme_endpoint(aws.sagemaker, name=ENDPOINT)  # re-created (moto: InService at once)
    aws.notices()
    decision = run(aws, {"action": "reconcile", "group": GROUP})
    assert decision["outcome"] == "unchanged" and aws.notices() == []
