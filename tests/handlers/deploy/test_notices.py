"""What a deploy handler notice asks people to run, at 3 a.m. with the notice alone (pipeline_code/handlers/deploy/notices.py).

A notice that says "invoke this function with {...}" names no function and no region: the person paged has to find out
which of the environment's functions "this" is (the subject names the model group, not the function). In Lambda the
handler knows both (``AWS_LAMBDA_FUNCTION_NAME``, ``AWS_REGION``), so each such notice gives the whole AWS CLI command,
as the EndpointLosses rule's notice does; its payload is one the handler itself takes.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shlex
import types

import boto3
import pytest
from botocore.stub import Stubber

from pipeline_code.handlers import deploy_on_approval as dod
from pipeline_code.handlers.deploy import events as dod_events
from pipeline_code.handlers.deploy import notices as dod_notices
from pipeline_code.handlers.deploy import run_records as dod_runs
from tests.support.deploy_handler import (
    DEPLOYER,
    GROUP,
    REGION,
    STACK,
    deploy_and_fail,
    execution_ended,
    register,
    run,
    set_approval,
    state_change,
)

FUNCTION_NAME = "mlops-loop-prod-deploy-on-approval"
COMMAND = re.compile(r"aws lambda invoke [^()]*? --region [a-z0-9-]+")
# A project command in a notice: in backquotes or in parentheses.
ROLLBACK = re.compile(r"python -m mlops_cli\.rollback ([^`()]+)")


@pytest.fixture()
def in_lambda(monkeypatch):
    """The variables the Lambda runtime sets for every function."""
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", FUNCTION_NAME)
    monkeypatch.setenv("AWS_REGION", REGION)


def messages(aws) -> list[str]:
    """The bodies published to the topic since the last call (their subjects: ``aws.notices()``)."""
    return [body for _, body in aws.published()]


def _command(message: str) -> list[str]:
    (found,) = COMMAND.findall(message)
    return shlex.split(found)


def _payload(argv: list[str]) -> dict:
    return json.loads(argv[argv.index("--payload") + 1])


def test_in_lambda_the_reconcile_to_run_is_the_whole_cli_command_naming_this_function_and_its_region(in_lambda):
    said = dod_notices.invoke_command({"action": "reconcile", "group": GROUP})

    assert said == (f"invoke this function: aws lambda invoke --function-name {FUNCTION_NAME} --cli-binary-format "
                    f"raw-in-base64-out --payload '{{\"action\": \"reconcile\", \"group\": \"{GROUP}\"}}' out.json "
                    f"--region {REGION}")


def test_outside_lambda_the_notice_names_the_payload_only():
    assert dod_notices.invoke_command({"action": "reconcile", "group": GROUP}) == (
        f'invoke this function with {{"action": "reconcile", "group": "{GROUP}"}}')


def test_a_missing_stack_notice_gives_the_reconcile_command_the_handler_takes(aws, in_lambda, monkeypatch):
    """GIVEN an approved v1 and no serving stack WHEN the handler runs in Lambda THEN its notice gives the command to run
    once the stack is deployed: ``aws lambda invoke`` of this function in its region, with a payload the handler parses
    as a reconcile of the group (before: 'invoke this function with {...}', no function, no region)."""
    monkeypatch.setenv("SERVING_STACK_NAME", "mlops-loop-prod-serving-not-deployed")
    v1 = register(aws)
    set_approval(aws, v1, "Approved")

    run(aws, state_change(v1))

    (message,) = messages(aws)
    argv = _command(message)
    assert argv[:3] == ["aws", "lambda", "invoke"]
    assert argv[argv.index("--function-name") + 1] == FUNCTION_NAME and argv[argv.index("--region") + 1] == REGION
    assert argv[argv.index("--cli-binary-format") + 1] == "raw-in-base64-out"
    assert dod_events.parse(_payload(argv))[0] == GROUP and _payload(argv)["action"] == "reconcile"


def test_a_wait_given_up_notice_gives_the_reconcile_command(aws, in_lambda):
    busy = dod.StackBusyError("stack is UPDATE_IN_PROGRESS", {"group": GROUP, "desired": {"version": 1},
                                                              "event": {"waiting_since": "2026-01-01T00:00:00+00:00"}})
    retry = types.SimpleNamespace(max_wait=dt.timedelta(minutes=20), interval=dt.timedelta(minutes=5))
    now = dt.datetime(2026, 1, 1, 0, 21, tzinfo=dt.timezone.utc)

    dod.wait(busy, retry, function_arn=None, scheduler=None, notify=dod_notices.Notifier(aws.sns, aws.topic, GROUP), now=now)

    (message,) = messages(aws)
    assert _payload(_command(message)) == {"action": "reconcile", "group": GROUP}


def test_a_failed_to_start_notice_gives_the_reconcile_command(aws, in_lambda):
    v1 = register(aws)
    set_approval(aws, v1, "Approved")
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    stub = Stubber(cloudformation)
    stub.add_response("describe_stacks", {"Stacks": [{
        "StackName": STACK, "CreationTime": dt.datetime(2026, 11, 26, 8, 0, tzinfo=dt.timezone.utc),
        "StackStatus": "UPDATE_COMPLETE", "Parameters": [{"ParameterKey": "ChurnModelPackageArn", "ParameterValue": ""}],
    }]}, {"StackName": STACK})
    stub.add_response("describe_stack_events", {"StackEvents": []}, {"StackName": STACK})
    stub.add_client_error("update_stack", "ValidationError", f"Role {DEPLOYER} is invalid or cannot be assumed", 400)
    with stub:
        decision = dod.handler(state_change(v1), sagemaker=aws.sagemaker, cloudformation=stub.client, sns=aws.sns, s3=aws.s3)

    assert decision["outcome"] == "failed-to-start"
    (message,) = messages(aws)
    assert _payload(_command(message)) == {"action": "reconcile", "group": GROUP}


def test_a_run_record_notice_gives_the_record_run_command(in_lambda):
    result = {"version": 1, "outcome": "failed", "reason": "v1's run record could not be read (DescribePipelineExecution)"}

    notice = dod_runs._run_record_notice(GROUP, result, "deploying")

    assert _payload(_command(notice)) == {"action": dod_runs.RECORD_RUN_ACTION, "group": GROUP, "version": 1}


def test_a_version_approved_without_a_reason_is_told_the_approval_command_in_the_versions_region():
    """The notice of a version approved with an empty ApprovalDescription gives the command that records a reason: in
    the region of the version's package, as every AWS command a notice gives (on-call's default may be another)."""
    arn = f"arn:aws:sagemaker:{REGION}:123456789012:model-package/{GROUP}/4"
    version = types.SimpleNamespace(version=4, arn=arn, approval_description=" ", created=dt.datetime(2026, 1, 1),
                                    approved_at=dt.datetime(2026, 1, 2))

    said = dod._no_reason(version)

    assert said.endswith(f'aws sagemaker update-model-package --model-package-arn {arn} --model-approval-status Approved '
                         f'--approval-description "<why>" --region {REGION}')


def _rollback_args(message: str):
    """The notice's ``python -m mlops_cli.rollback`` command, its reason filled in as on-call would, parsed by the
    CLI's own parser."""
    from mlops_cli import rollback

    (arguments,) = ROLLBACK.findall(message)
    arguments = arguments.replace('"<why>"', '"INC-42: v2 failed its rollout"')
    assert "<" not in arguments, arguments
    return rollback.build_parser().parse_args(shlex.split(arguments))


def test_a_held_version_notice_gives_the_rollback_command_of_its_environment_and_model(ledger, monkeypatch):
    """GIVEN the handler told its environment's name (ENVIRONMENT, set by the DeployOnApproval construct) and the
    groups' prefix (APPROVAL_LEDGER) WHEN a version whose rollout was rolled back is held THEN the notice's re-approve
    command names the environment and the model: it runs as printed, the reason aside (before: --env <env> --model
    <model>, to look up at 3 a.m.)."""
    monkeypatch.setenv("ENVIRONMENT", "prod")
    aws = ledger
    v1, v2 = register(aws), register(aws)
    deploy_and_fail(aws, v1, v2)
    messages(aws)

    decision = run(aws, state_change(register(aws), approval="PendingManualApproval"))

    assert decision["outcome"] == "held"
    (message,) = messages(aws)
    args = _rollback_args(message)
    assert (args.env, args.model, args.command, args.to_version) == ("prod", "churn", "rollback", 2)


def test_a_run_record_notice_without_a_version_gives_the_versions_command_of_its_environment_and_model(runs, ledger,
                                                                                                      monkeypatch):
    """GIVEN an execution gone before its end is handled WHEN people are told how to find its version THEN the
    ``versions`` command names the environment and the model (before: --env <env> --model <model>)."""
    monkeypatch.setenv("ENVIRONMENT", "prod")
    aws = ledger
    runs.fail["DescribePipelineExecution"] = "ResourceNotFound"

    assert run(aws, execution_ended())["outcome"] == "lost"

    (message,) = messages(aws)
    args = _rollback_args(message)
    assert (args.env, args.model, args.command) == ("prod", "churn", "versions")


def test_without_the_environments_name_the_notice_keeps_the_placeholder(runs, ledger, monkeypatch):
    """An older function without ENVIRONMENT: the command says what to fill in rather than guess an environment."""
    monkeypatch.delenv("ENVIRONMENT", raising=False)
    aws = ledger
    runs.fail["DescribePipelineExecution"] = "ResourceNotFound"

    run(aws, execution_ended())

    (message,) = messages(aws)
    assert "(python -m mlops_cli.rollback --env <env> --model churn versions)" in message
