"""handler_function, built in a bare stack: one event handler with its role, logs and dead letters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_cdk import Duration, Environment, RemovalPolicy, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk.assertions import Template

from pipeline_code.core.images import HANDLER_PYTHON
from mlops_loop.app_builder import DISABLE_ASSET_STAGING, new_app
from mlops_loop.constructs.handler_function import MAX_ENVIRONMENT_BYTES, dead_letter_queue, environment_size, handler_function
from mlops_loop.packaging import handler_code_root
from tests.support.built_stack import acknowledged
from tests.support.cdk_outdirs import bare_outdir
from tests.support.construct_configs import NETWORK, network_arns, network_config, vpc_statements_of


# What every function built here shares; each test names its own handler, environment and queue.
COMMON = dict(
    description="test handler",
    role_description="test role",
    access_description="test access",
    log_retention=logs.RetentionDays.TWO_WEEKS,
    removal_policy=RemovalPolicy.DESTROY,
    vpc_reason="It calls only AWS APIs; no VPC resources to reach, test reason long enough.",
)


def _built(**extra) -> tuple[Stack, dict]:
    """GIVEN a bare stack with a key WHEN a handler function and its dead-letter queue are added (``extra``: more
    props, e.g. the environment's network)."""
    stack = Stack(new_app(bare_outdir()), "Bare", env=Environment(account="123456789012", region="eu-west-1"))
    key = kms.Key(stack, "Key")
    queue = dead_letter_queue(stack, key=key, removal_policy=RemovalPolicy.DESTROY, owner="test handler")
    built = handler_function(
        stack,
        function_name="shop-dev-retrain-trigger",
        handler="retrain_trigger.handler",
        key=key,
        dead_letter_queue=queue,
        timeout=Duration.seconds(60),
        **{"environment": {"NAME_PREFIX": "shop-dev"}, **COMMON, **extra},
    )
    return stack, {"built": built, "template": Template.from_stack(stack)}


def test_the_function_runs_one_at_a_time_from_the_handler_code_root_and_retries_into_dead_letters():
    _, made = _built()
    template = made["template"]
    (function,) = template.find_resources("AWS::Lambda::Function").values()
    props = function["Properties"]
    assert props["Handler"] == "pipeline_code.handlers.retrain_trigger.handler"
    assert props["Runtime"] == "python{}.{}".format(*HANDLER_PYTHON) and props["Architectures"] == ["arm64"] and props["Timeout"] == 60
    assert props["ReservedConcurrentExecutions"] == 1
    assert props["Environment"]["Variables"] == {"NAME_PREFIX": "shop-dev"}
    assert "TargetArn" in props["DeadLetterConfig"]
    (invoke,) = template.find_resources("AWS::Lambda::EventInvokeConfig").values()
    assert invoke["Properties"]["MaximumRetryAttempts"] == 2 and invoke["Properties"]["MaximumEventAgeInSeconds"] == 3600
    assert function["DependsOn"] == [next(iter(template.find_resources("AWS::IAM::ManagedPolicy")))]


def test_its_logs_are_encrypted_kept_as_configured_and_only_its_own_stream_is_writable():
    _, made = _built()
    template = made["template"]
    (group,) = template.find_resources("AWS::Logs::LogGroup").values()
    assert group["Properties"]["LogGroupName"] == "/aws/lambda/shop-dev-retrain-trigger"
    assert group["Properties"]["RetentionInDays"] == 14 and "KmsKeyId" in group["Properties"]
    (policy,) = template.find_resources("AWS::IAM::ManagedPolicy").values()
    statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    assert statements["WriteLogs"]["Resource"] == "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/shop-dev-retrain-trigger:*"
    assert statements["DeadLetters"]["Action"] == "sqs:SendMessage"
    assert not template.find_resources("AWS::IAM::Policy"), "no inline policies"


def test_the_dead_letter_queue_is_encrypted_tls_only_and_keeps_two_weeks():
    _, made = _built()
    (queue,) = made["template"].find_resources("AWS::SQS::Queue").values()
    assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600 and "KmsMasterKeyId" in queue["Properties"]
    (queue_policy,) = made["template"].find_resources("AWS::SQS::QueuePolicy").values()
    (deny,) = queue_policy["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def _synchronous(**overrides) -> tuple[Stack, Template]:
    """GIVEN a bare stack with a key WHEN a handler function without a dead-letter queue is added (one only ever
    called synchronously)."""
    stack = Stack(new_app(bare_outdir()), "Bare", env=Environment(account="123456789012", region="eu-west-1"))
    key = kms.Key(stack, "Key")
    handler_function(
        stack,
        function_name="shop-dev-returns-by-id",
        handler="score_by_id.handler",
        environment={"MODEL_NAME": "returns"},
        key=key,
        dead_letter_queue=None,
        **COMMON,
        **overrides,
    )
    return stack, Template.from_stack(stack)


def test_without_a_dead_letter_queue_there_is_no_dead_letter_config_and_no_queue_statement():
    _, template = _synchronous()
    (function,) = template.find_resources("AWS::Lambda::Function").values()
    assert "DeadLetterConfig" not in function["Properties"]
    assert template.find_resources("AWS::SQS::Queue") == {}
    (policy,) = template.find_resources("AWS::IAM::ManagedPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    # Only its own log stream: neither the queue nor the key a queue would need.
    assert [s["Sid"] for s in statements] == ["WriteLogs"]
    actions = [a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])]
    assert not [a for a in actions if a.startswith(("sqs:", "kms:"))]
    assert not template.find_resources("AWS::IAM::Policy"), "no inline policies"
    # Called synchronously only: no asynchronous retries to configure.
    assert template.find_resources("AWS::Lambda::EventInvokeConfig") == {}


def test_the_reserved_concurrency_it_is_given_is_honoured_and_one_is_the_default():
    _, default = _synchronous()
    (function,) = default.find_resources("AWS::Lambda::Function").values()
    assert function["Properties"]["ReservedConcurrentExecutions"] == 1
    _, template = _synchronous(reserved_concurrency=40)
    (function,) = template.find_resources("AWS::Lambda::Function").values()
    assert function["Properties"]["ReservedConcurrentExecutions"] == 40


def test_an_app_that_stages_no_assets_runs_the_function_from_the_handler_code_root_itself(tmp_path):
    # GIVEN an app with asset staging off (`cdk synth --no-staging`, for the SAM CLI)
    app = new_app(outdir=str(tmp_path))
    app.node.set_context(DISABLE_ASSET_STAGING, True)
    stack = Stack(app, "Bare", env=Environment(account="123456789012", region="eu-west-1"))

    # WHEN a handler function is added
    handler_function(stack, function_name="shop-dev-retrain-trigger", handler="retrain_trigger.handler", environment={},
                     key=kms.Key(stack, "Key"), dead_letter_queue=None, timeout=Duration.seconds(60), **COMMON)
    manifest = json.loads(next(Path(app.synth().directory).glob("*.assets.json")).read_text())

    # THEN its code is read from the handler code root (kept past the process by new_app in such an app)
    (code,) = (entry for entry in manifest["files"].values() if entry["source"]["packaging"] == "zip")  # not the template
    assert code["source"]["path"] == str(handler_code_root())


# ------------------------------------------------------------------ the environment's VPC
LAMBDA_VPC_ACTIONS = {"ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets",
                      "ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"}


def _statements(template: Template) -> dict[str, dict]:
    (policy,) = template.find_resources("AWS::IAM::ManagedPolicy").values()
    return {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}


def test_with_a_network_the_function_runs_in_the_vpc_with_the_interface_permissions_and_no_vpc_acknowledgement():
    """GIVEN the environment's network WHEN a handler is built THEN it runs in exactly those subnets and security groups
    (no security group of its own), its managed policy holds AWSLambdaVPCAccessExecutionRole's EC2 actions (creating
    interfaces only there, no AWS managed policy attached), and LambdaInsideVPC needs no acknowledgement."""
    _, made = _built(network=network_config())
    template = made["template"]
    (function,) = template.find_resources("AWS::Lambda::Function").values()
    assert function["Properties"]["VpcConfig"] == {"SubnetIds": NETWORK["subnet_ids"],
                                                   "SecurityGroupIds": NETWORK["security_group_ids"]}
    assert not template.find_resources("AWS::EC2::SecurityGroup")
    (role,) = template.find_resources("AWS::IAM::Role").values()
    assert "ManagedPolicyArns" not in role["Properties"]
    vpc = vpc_statements_of(_statements(template))
    assert {a for s in vpc.values() for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])} == LAMBDA_VPC_ACTIONS
    arns = network_arns("123456789012", "eu-west-1")
    assert sorted(vpc["VpcCreateInterfaces"]["Resource"]) == sorted(arns["subnets"] + arns["security_groups"] + arns["interfaces"])
    assert "NIST.800.53.R5-LambdaInsideVPC" not in acknowledged(made["built"].function)


def test_without_a_network_the_function_has_no_vpc_and_acknowledges_why():
    _, made = _built()
    (function,) = made["template"].find_resources("AWS::Lambda::Function").values()
    assert "VpcConfig" not in function["Properties"]
    assert not vpc_statements_of(_statements(made["template"]))
    assert acknowledged(made["built"].function)["NIST.800.53.R5-LambdaInsideVPC"] == (
        f"{COMMON['vpc_reason']} The environment sets no network (config 'network'), so it runs on Lambda's own "
        "network; it reaches no private resource.")


def test_an_environment_over_lambdas_4_kb_is_refused_at_synth_naming_the_function_and_its_largest_variable():
    # GIVEN variables of 4,097 bytes as Lambda stores them (JSON) WHEN the function is built THEN synth refuses it
    big = {"MODEL_PIPELINES": "x" * (MAX_ENVIRONMENT_BYTES - len('{"MODEL_PIPELINES":""}') + 1)}
    assert environment_size(big) == MAX_ENVIRONMENT_BYTES + 1
    with pytest.raises(ValueError) as refused:
        _built(environment=big)
    assert str(refused.value) == (
        "function shop-dev-retrain-trigger: its environment variables take 4097 bytes, over Lambda's 4 KB (4096 "
        "bytes): the deploy would fail. The largest is MODEL_PIPELINES, 4095 bytes: split the environment's models "
        "over more environments, or shorten the project, environment and model names")
    # AND one byte less is built
    _built(environment={"MODEL_PIPELINES": big["MODEL_PIPELINES"][:-1]})


def test_an_environment_over_4_kb_by_a_feature_list_is_refused_with_advice_that_fits_a_list_not_the_names():
    # GIVEN a function told a wide model's 250 features in its environment (most of its 4 KB and more)
    features = ",".join(f"claims_history_feature_{i:03d}:Fractional" for i in range(250))
    environment = {"MODEL_NAME": "claims", "FEATURES": features}
    # WHEN built THEN synth refuses it naming that list and its size, and how such a list ships instead: shortening
    # the project, environment and model names cannot bring 250 feature names under 4 KB
    with pytest.raises(ValueError) as refused:
        _built(environment=environment)
    assert str(refused.value) == (
        f"function shop-dev-retrain-trigger: its environment variables take {environment_size(environment)} bytes, "
        f"over Lambda's 4 KB (4096 bytes): the deploy would fail. The largest is FEATURES, {len(features) + 13} "
        "bytes: a list that long ships as a file of the function's own code (handler_function's code_files, the "
        "file's name in the environment), as the score-by-id front ships a wide model's features, required features "
        "and rules by itself (FEATURE_SPEC_FILE)")


def test_an_unresolved_value_counts_as_an_arn_would_at_most():
    stack = Stack(new_app(bare_outdir()), "Bare", env=Environment(account="123456789012", region="eu-west-1"))
    arn = kms.Key(stack, "Key").key_arn
    assert environment_size({"KEY": arn}) == len('{"KEY":""}') + 256
    # AND each reference inside a longer value counts, not the value as one
    assert environment_size({"JSON": f'["{arn}","{arn}"]'}) == len('{"JSON":"[\\"\\",\\"\\"]"}') + 2 * 256
    assert environment_size({"A": "1", "B": "é"}) == len('{"A":"1","B":""}') + 2  # UTF-8 bytes
