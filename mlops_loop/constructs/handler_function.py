"""The one way this app builds an event-handler Lambda function from ``pipeline_code/handlers``."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Mapping, Optional

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Token
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from ..nag import acknowledge
from ..packaging import handler_code_root
from ..config.network import NetworkConfig
from .access_policy import AccessPolicy
from .arns import format_arn
from .cdk_reads import days, hours, read_once, service_principal, stack_of
from .network import allow_lambda_network_interfaces
from pipeline_code.core.images import HANDLER_PYTHON
from pipeline_code.core.online_features import FEATURES_ENV, REQUIRED_FEATURES_ENV, RULES_ENV, SPEC_FILE_ENV

# Lambda refuses a function whose environment variables take more than 4 KB in all (Lambda quotas).
# Every handler function's runtime: the CDK's own constant for HANDLER_PYTHON (an AttributeError at import, not a
# deploy-time surprise, if the CDK has none).
HANDLER_RUNTIME: lambda_.Runtime = getattr(lambda_.Runtime, "PYTHON_{}_{}".format(*HANDLER_PYTHON))

MAX_ENVIRONMENT_BYTES = 4096
# What an unresolved value (an ARN or URL of another resource) is counted as: ARNs of the resources handlers are
# told about (queues, topics, roles) are far shorter.
_TOKEN_BYTES = 256


# An unresolved reference inside a string, as CDK encodes it until synthesis.
_TOKEN = re.compile(r"\$\{Token\[[^\]]*\]\}")


def environment_size(environment: Mapping[str, str]) -> int:
    """The bytes ``environment`` takes as Lambda stores it (JSON), each reference to another resource inside a value
    (a whole value or part of one, e.g. a bucket name in a JSON value) counted as 256 bytes."""
    stored = {k: _TOKEN.sub("x" * _TOKEN_BYTES, v) for k, v in environment.items()}
    return len(json.dumps(stored, separators=(",", ":"), ensure_ascii=False).encode())


# Variables holding a model's feature list or its rules: one per feature, however short the names.
_FEATURE_LISTS = (FEATURES_ENV, REQUIRED_FEATURES_ENV, RULES_ENV)


def _too_large(function_name: str, environment: Mapping[str, str], size: int) -> str:
    """Why ``environment`` (``size`` bytes) is refused: its largest variable and its bytes (its ``"name":"value"``
    as stored), and the advice that fits it: a feature list grows with the features, not with the names."""
    sizes = {k: environment_size({k: v}) - 2 for k, v in environment.items()}
    largest = max(sizes, key=sizes.get)
    if largest in _FEATURE_LISTS:
        advice = ("a list that long ships as a file of the function's own code (handler_function's code_files, the "
                  "file's name in the environment), as the score-by-id front ships a wide model's features, required "
                  f"features and rules by itself ({SPEC_FILE_ENV})")
    else:
        advice = ("split the environment's models over more environments, or shorten the project, environment and "
                  "model names")
    return (f"function {function_name}: its environment variables take {size} bytes, over Lambda's 4 KB "
            f"({MAX_ENVIRONMENT_BYTES} bytes): the deploy would fail. The largest is {largest}, {sizes[largest]} "
            f"bytes: {advice}")


def team_topics_variable(owner: str, given: str, team_topics: Optional[Mapping[str, sns.ITopic]], group_of: Mapping[str, str]) -> dict[str, list[str]]:
    """A handler's ``TEAM_TOPICS`` (``pipeline_code.handlers.team_topics``, which reads it): each team topic once, by its
    fixed NAME (``contract.team_topic_name``: a plain string, counted at its real length of Lambda's 4 KB, where an ARN
    reference counts 256 bytes), with the package groups (``group_of``: model -> group) of the models ``team_topics``
    (model -> its team's topic: the Operations stack's ``topic_of``) gives it; the handler builds the ARN from its own
    topic's. Empty without owners: the function's environment (and template) is then as before. ``owner`` (the
    construct) and ``given`` (its argument of the models) name the error for a model ``group_of`` does not know, or a
    topic without a fixed name."""
    unknown = sorted(set(team_topics or {}) - set(group_of))
    if unknown:
        raise ValueError(f"{owner}: team_topics names model {unknown[0]!r}, which {given} does not")
    by_topic: dict[str, list[str]] = {}
    for model, team_topic in sorted((team_topics or {}).items()):
        by_topic.setdefault(_fixed_topic_name(owner, model, team_topic), []).append(group_of[model])
    return by_topic


def team_topic_arns(team_topics: Optional[Mapping[str, sns.ITopic]]) -> list[str]:
    """Each team topic of ``team_topics`` (model -> topic) once, as the ARN its publish grant names (in the models'
    order, as ``team_topics_variable`` lists them)."""
    return list(dict.fromkeys(read_once(topic, "topic_arn") for _, topic in sorted((team_topics or {}).items())))


def _fixed_topic_name(owner: str, model: str, topic: sns.ITopic) -> str:
    """The name ``topic`` was given (``topic_name``), which the handler turns into its ARN; refused if it has none."""
    name = getattr(topic.node.default_child, "topic_name", None)
    if not isinstance(name, str) or Token.is_unresolved(name):
        raise ValueError(f"{owner}: the team topic of model {model!r} has no fixed name: give it topic_name "
                         "(contract.team_topic_name), which TEAM_TOPICS names it by")
    return name


def dead_letter_queue(scope: Construct, *, key: kms.IKey, removal_policy: RemovalPolicy, owner: str,
                      construct_id: str = "DeadLetters", queue_name: Optional[str] = None) -> sqs.Queue:
    """``construct_id`` (default ``DeadLetters``): a KMS-encrypted, TLS-only queue keeping failed events of ``owner``
    for 14 days; ``queue_name`` fixes its name (default: generated)."""
    queue = sqs.Queue(
        scope,
        construct_id,
        queue_name=queue_name,
        encryption=sqs.QueueEncryption.KMS,
        encryption_master_key=key,
        enforce_ssl=True,
        retention_period=days(14),
        removal_policy=removal_policy,
    )
    acknowledge(queue, f"This queue is itself the dead-letter queue of the {owner}; a DLQ of a DLQ adds nothing.", "AwsSolutions-SQS3")
    return queue


@dataclass(frozen=True)
class HandlerFunction:
    function: lambda_.Function
    role: iam.Role
    access: AccessPolicy


def handler_function(
    scope: Construct,
    *,
    function_name: str,
    description: str,
    role_description: str,
    access_description: str,
    handler: str,
    environment: Mapping[str, str],
    key: kms.IKey,
    dead_letter_queue: Optional[sqs.IQueue],
    log_retention: logs.RetentionDays,
    removal_policy: RemovalPolicy,
    timeout: Duration = Duration.seconds(30),
    vpc_reason: str,
    reserved_concurrency: int = 1,
    network: Optional[NetworkConfig] = None,
    code_files: Optional[Mapping[str, str]] = None,
) -> HandlerFunction:
    """A Python 3.14 (``HANDLER_RUNTIME``) ARM function running ``handler`` (``<module>.<function>`` of ``pipeline_code.handlers``), built in ``scope``
    as ``Logs``, ``Role``, ``Access`` and ``Function``.

    Defaults every handler shares: reserved concurrency 1 (handlers guard shared state, so they must
    not race each other), two async retries within an hour, then the encrypted ``dead_letter_queue``
    (None for a function only ever called synchronously, whose caller gets the error);
    a KMS-encrypted log group with a fixed name and retention; a managed policy holding exactly the
    statements the caller adds to ``access`` (plus its own log stream and the dead-letter queue); no VPC (``network``
    None): the function runs on Lambda's own network, which ``vpc_reason`` explains to cdk-nag. Given ``network``, it
    runs in those subnets with those security groups and its role may manage the function's network interfaces.
    An ``environment`` over Lambda's 4 KB is refused here, naming the function, not at deploy. ``code_files``
    (name -> text): data files shipped at the root of this function's code, beside the shared handler code (none by
    default: the code asset every handler shares).
    """
    size = environment_size(environment)
    if size > MAX_ENVIRONMENT_BYTES:
        raise ValueError(_too_large(function_name, environment, size))
    stack = stack_of(scope)
    log_group = logs.LogGroup(
        scope,
        "Logs",
        log_group_name=f"/aws/lambda/{function_name}",
        encryption_key=key,
        retention=log_retention,
        removal_policy=removal_policy,
    )
    role = iam.Role(scope, "Role", assumed_by=service_principal("lambda.amazonaws.com"), description=role_description)
    access = AccessPolicy(scope, "Access", role=role, description=access_description)
    access.allow(
        "WriteLogs",
        ["logs:CreateLogStream", "logs:PutLogEvents"],
        [
            format_arn(
                stack,
                service="logs",
                resource="log-group",
                resource_name=f"/aws/lambda/{function_name}:*",
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            )
        ],
        wildcard_reason="Lambda creates one log stream per execution environment in this function's log group.",
    )
    if dead_letter_queue is not None:
        access.allow("DeadLetters", ["sqs:SendMessage"], [read_once(dead_letter_queue, "queue_arn")])
        access.allow_key("DeadLetterKey", key)
    function = lambda_.Function(
        scope,
        "Function",
        function_name=function_name,
        description=description,
        runtime=HANDLER_RUNTIME,
        architecture=lambda_.Architecture.ARM_64,
        handler=f"pipeline_code.handlers.{handler}",
        code=lambda_.Code.from_asset(str(handler_code_root(tuple(sorted((code_files or {}).items()))))),
        role=role,
        timeout=timeout,
        memory_size=256,
        reserved_concurrent_executions=reserved_concurrency,
        environment=dict(environment),
        # Asynchronous invocations only (events): a function only ever called synchronously has none to retry.
        **({"retry_attempts": 2, "max_event_age": hours(1)} if dead_letter_queue is not None else {}),
        log_group=log_group,
    )
    # Set on the L1 resource: the L2 prop would also add an inline grant to the role, which
    # already holds exactly this permission in its managed policy.
    cfn_function = function.node.default_child
    if dead_letter_queue is not None:
        cfn_function.dead_letter_config = lambda_.CfnFunction.DeadLetterConfigProperty(target_arn=read_once(dead_letter_queue, "queue_arn"))
    # The managed policy must exist before the function can act; the role dependency the L2 adds
    # is already implied by the function's Role reference (cfn-lint W3005), so it is replaced.
    cfn_function.add_override("DependsOn", access.logical_ids())
    if network is None:
        acknowledge(function, f"{vpc_reason} The environment sets no network (config 'network'), so it runs on "
                    "Lambda's own network; it reaches no private resource.", "NIST.800.53.R5-LambdaInsideVPC")
    else:
        # On the L1: the L2's vpc prop wants an IVpc, creates a security group and attaches the AWS managed policy
        # AWSLambdaVPCAccessExecutionRole; the managed policy here holds the same EC2 actions, scoped.
        allow_lambda_network_interfaces(access, network)
        cfn_function.vpc_config = lambda_.CfnFunction.VpcConfigProperty(
            subnet_ids=list(network.subnet_ids), security_group_ids=list(network.security_group_ids))
    return HandlerFunction(function=function, role=role, access=access)
