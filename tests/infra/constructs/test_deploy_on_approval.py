"""DeployOnApproval, built in a bare stack: approvals become serving-stack updates, busy stacks are retried, failed rollouts are told."""

from __future__ import annotations

import json
import re
from typing import Any, Mapping, Sequence

import pytest
from aws_cdk import Duration, Environment, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Template

from mlops_loop.app_builder import new_app
from mlops_loop.constructs.deploy_on_approval import DeployOnApproval, MultiModelDeployment
from mlops_loop.constructs.handler_function import team_topics_variable
from pipeline_code.core.contract import pascal, team_topic_name
from tests.support.cdk_outdirs import bare_outdir
from tests.support.templates import policy_statements

ACCOUNT_REGION = "eu-west-1:123456789012"
SERVING = "shop-dev-serving"
ARTIFACTS = "shop-dev-artifacts"
STACK_PREFIX = f"arn:aws:cloudformation:{ACCOUNT_REGION}:stack/{SERVING}/"


def _models(count: int) -> dict[str, str]:
    """``count`` served models and their serving-stack parameters."""
    return {f"m{i}": f"M{i}ModelPackageArn" for i in range(count)}


def _groups(count: int) -> list[str]:
    """The package groups of :func:`_models`'s models (``<name prefix>-<model>``, as the registry names them), sorted."""
    return sorted(f"shop-dev-m{i}" for i in range(count))


def _deploy(models: dict[str, str], multi_model: Sequence[tuple[str, str]] = (),
            name_prefix: str = "shop-dev", endpoint_names: Sequence[str] = (),
            team_models: Sequence[str] = (), teams: Mapping[str, str] = {},
            log_retention_days: int | None = None) -> tuple[DeployOnApproval, Template, dict[str, str]]:
    """GIVEN a bare stack with a topic, two keys, an artifacts bucket and the deployer role WHEN the handler is added for
    ``models`` (model -> serving-stack parameter) and the multi-model deployments ``(model, endpoint)`` THEN it, its
    template and logical ids; ``team_models`` share one team's topic (logical id ``team_topic``, named
    ``shop-dev-team-notifications``); ``teams`` (model -> team) gives each team a topic of its own, named as the
    Operations stack names it (``team_topic_name``)."""
    stack = Stack(new_app(bare_outdir()), "Bare", env=Environment(account="123456789012", region="eu-west-1"))
    artifacts = s3.Bucket.from_bucket_name(stack, "Artifacts", ARTIFACTS)
    topic, ops_key, data_key = sns.Topic(stack, "Topic"), kms.Key(stack, "OpsKey"), kms.Key(stack, "DataKey")
    notices = sqs.Queue(stack, "NotificationDeadLetters")
    team_topic = sns.Topic(stack, "TeamTopic", master_key=ops_key, topic_name="shop-dev-team-notifications")
    own = {team: sns.Topic(stack, f"Team{pascal(team)}", master_key=ops_key, topic_name=team_topic_name(name_prefix, team))
           for team in sorted(set(teams.values()))}
    deploy = DeployOnApproval(
        stack, "Deploy", name_prefix=name_prefix, environment="dev", serving_stack_name=SERVING, model_parameters=models,
        deployer_role=iam.Role.from_role_name(stack, "Deployer", "shop-dev-serving-deployer"), topic=topic,
        notification_dead_letters=notices, key=ops_key,
        log_retention=logs.RetentionDays.TWO_WEEKS, removal_policy=RemovalPolicy.DESTROY, artifacts_bucket=artifacts,
        data_key=data_key, max_wait=Duration.minutes(95),
        multi_model=[MultiModelDeployment(model=m, endpoint_name=e, artifacts_bucket=artifacts, prefix=f"mme/{e.lower()}/")
                     for m, e in multi_model],
        endpoint_names=endpoint_names,
        team_topics={**{model: team_topic for model in team_models}, **{m: own[t] for m, t in teams.items()}},
        log_retention_days=log_retention_days,
    )
    ids = {name: stack.get_logical_id(c.node.default_child) for name, c in (
        ("function", deploy.function), ("queue", deploy.dead_letter_queue), ("topic", topic), ("data_key", data_key),
        ("notices", notices),
        ("retry_role", deploy.retry_role), ("failed", deploy.failed_rollouts), ("approvals", deploy.approvals),
        ("ops_key", ops_key), ("team_topic", team_topic))}
    return deploy, Template.from_stack(stack), ids


def _function(template: Template) -> dict:
    (function,) = template.find_resources("AWS::Lambda::Function").values()
    return function["Properties"]


def _statements(template: Template, prefix: str = "DeployAccess") -> dict[str, dict]:
    policies = template.find_resources("AWS::IAM::ManagedPolicy")
    return policy_statements(policies, [k for k in policies if k.startswith(prefix)])


def _rule(template: Template, logical_id: str) -> dict:
    return template.find_resources("AWS::Events::Rule")[logical_id]["Properties"]


def _render(part: Any) -> str:
    """A piece of a Fn::Join as text: a GetAtt as ``${Id.Attr}``, strings as they are."""
    if isinstance(part, str):
        return part
    if "Fn::GetAtt" in part:
        return "${%s.%s}" % tuple(part["Fn::GetAtt"])
    raise AssertionError(f"unexpected token: {part}")


def test_the_handler_knows_the_serving_stack_its_parameters_the_deployer_the_topic_and_how_long_to_wait():
    _, template, ids = _deploy(_models(2))
    function = _function(template)
    assert function["FunctionName"] == "shop-dev-deploy-on-approval"
    assert function["Handler"] == "pipeline_code.handlers.deploy_on_approval.handler"
    assert function["Environment"]["Variables"] == {
        "SERVING_STACK_NAME": SERVING,
        # The --env of the rollback commands the handler's notices give.
        "ENVIRONMENT": "dev",
        "MODEL_PARAMETERS": json.dumps({"shop-dev-m0": "M0ModelPackageArn", "shop-dev-m1": "M1ModelPackageArn"}, sort_keys=True),
        "DEPLOYER_ROLE_ARN": "arn:aws:iam::123456789012:role/shop-dev-serving-deployer",
        "NOTIFY_TOPIC_ARN": {"Ref": ids["topic"]},
        "RETRY_SCHEDULE_GROUP": "shop-dev-deploy-retries",
        "RETRY_ROLE_ARN": {"Fn::GetAtt": [ids["retry_role"], "Arn"]},
        "RETRY_DEAD_LETTER_ARN": {"Fn::GetAtt": [ids["queue"], "Arn"]},
        "MAX_WAIT_SECONDS": str(95 * 60),
        "APPROVAL_LEDGER": json.dumps({"bucket": ARTIFACTS, "group_prefix": "shop-dev-"}, sort_keys=True),
    }
    # Without multi-model members the update itself is asynchronous: a short timeout.
    assert function["Timeout"] == 30


def test_approvals_and_rejections_of_the_environments_groups_reach_the_handler_with_retries_and_dead_letters():
    _, template, ids = _deploy({"m1": "M1ModelPackageArn", "m0": "M0ModelPackageArn"})
    rule = _rule(template, ids["approvals"])
    assert rule["EventPattern"] == {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Model Package State Change"],
        "detail": {"ModelPackageGroupName": ["shop-dev-m0", "shop-dev-m1"]},
    }
    assert rule["Targets"] == [{
        "Arn": {"Fn::GetAtt": [ids["function"], "Arn"]},
        "DeadLetterConfig": {"Arn": {"Fn::GetAtt": [ids["queue"], "Arn"]}},
        "Id": "Target0",
        "RetryPolicy": {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 2},
    }]


def test_a_settled_serving_stack_reconciles_each_group_once_more_five_groups_per_rule():
    """A rule takes at most five targets: seven groups need two rules, one target per group, each naming its group."""
    deploy, template, ids = _deploy(_models(7))
    assert len(deploy.settled) == 2
    reconciled = []
    for rule in deploy.settled:
        props = _rule(template, Stack.of(rule).get_logical_id(rule.node.default_child))
        assert props["EventPattern"] == {
            "source": ["aws.cloudformation"],
            "detail-type": ["CloudFormation Stack Status Change"],
            "detail": {"stack-id": [{"prefix": STACK_PREFIX}],
                       "status-details": {"status": ["CREATE_COMPLETE", "UPDATE_COMPLETE"]}},
        }
        assert all(t["Arn"] == {"Fn::GetAtt": [ids["function"], "Arn"]} for t in props["Targets"])
        assert all(t["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [ids["queue"], "Arn"]}} for t in props["Targets"])
        reconciled.append([json.loads(t["Input"]) for t in props["Targets"]])
    assert [len(r) for r in reconciled] == [5, 2]
    assert [i for r in reconciled for i in r] == [{"action": "reconcile", "group": g} for g in _groups(7)]
    few, _, _ = _deploy(_models(5))
    assert len(few.settled) == 1


def test_a_re_created_serving_stack_reconciles_each_group_so_the_approved_versions_serve_again():
    """GIVEN the Serving stack deleted by mistake (its endpoints go with it) and created again by `cdk deploy`, every
    model-version parameter at its default (empty: not deployed) WHEN its create completes THEN each group is
    reconciled, which sets the group's approved version on the stack (the handler's reconcile from an empty parameter):
    the champions serve again without anyone approving them again. A failed create or a rollback reconciles nothing
    (that would retry a failing version in a loop)."""
    deploy, template, _ = _deploy(_models(2))
    for rule in deploy.settled:
        statuses = _rule(template, Stack.of(rule).get_logical_id(rule.node.default_child))["EventPattern"]["detail"][
            "status-details"]["status"]
        assert "CREATE_COMPLETE" in statuses
        assert not [s for s in statuses if "ROLLBACK" in s or "FAILED" in s]


def test_the_end_of_each_execution_of_its_models_pipelines_asks_the_handler_to_record_the_version_it_registered():
    """GIVEN two models (a name prefix with capitals) WHEN the handler is built THEN one rule matches the terminal
    "SageMaker Model Building Pipeline Execution Status Change" events of exactly those models' training pipelines (ARNs
    in lower case, as SageMaker writes them) and invokes the handler, with retries and its dead-letter queue, with
    {"action": "record-execution"} and the execution, its status and the event id - each placeholder a key of the
    transformer's InputPathsMap (EventBridge refuses any other)."""
    deploy, template, ids = _deploy({"m1": "M1ModelPackageArn", "m0": "M0ModelPackageArn"}, name_prefix="Shop-Dev")
    rule = _rule(template, Stack.of(deploy).get_logical_id(deploy.executions_ended.node.default_child))
    assert rule["EventPattern"] == {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Model Building Pipeline Execution Status Change"],
        "detail": {"currentPipelineExecutionStatus": ["Succeeded", "Failed", "Stopped", "CompletedWithFailures"],
                   "pipelineArn": [f"arn:aws:sagemaker:eu-west-1:123456789012:pipeline/shop-dev-{m}-training"
                                   for m in ("m0", "m1")]},
    }
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [ids["function"], "Arn"]}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [ids["queue"], "Arn"]}}
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 2}
    transformer = target["InputTransformer"]
    assert transformer["InputPathsMap"] == {"detail-pipelineExecutionArn": "$.detail.pipelineExecutionArn",
                                            "detail-currentPipelineExecutionStatus": "$.detail.currentPipelineExecutionStatus",
                                            "id": "$.id"}
    assert transformer["InputTemplate"] == (
        '{"action":"record-execution","execution":<detail-pipelineExecutionArn>,'
        '"status":<detail-currentPipelineExecutionStatus>,"source_event_id":<id>}')
    assert set(re.findall(r"<([^<>]*)>", transformer["InputTemplate"])) == set(transformer["InputPathsMap"])


def test_a_failed_or_rolled_back_serving_update_tells_people_through_the_topic():
    _, template, ids = _deploy(_models(1))
    rule = _rule(template, ids["failed"])
    assert rule["EventPattern"]["detail"] == {
        "stack-id": [{"prefix": STACK_PREFIX}],
        "status-details": {"status": ["UPDATE_ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_FAILED", "UPDATE_FAILED"]},
    }
    (target,) = rule["Targets"]
    # A notice EventBridge cannot deliver goes to the environment's notification queue, not the handler's.
    assert target["Arn"] == {"Ref": ids["topic"]} and target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [ids["notices"], "Arn"]}}
    (topic_policy,) = template.find_resources("AWS::SNS::TopicPolicy").values()
    (statement,) = topic_policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Sid"] == "PublishFailedRollouts"
    assert statement["Condition"]["ArnEquals"] == {"aws:SourceArn": {"Fn::GetAtt": [ids["failed"], "Arn"]}}


def test_a_failed_rollout_notice_says_what_ended_how_that_the_version_is_held_and_how_to_look_and_decide():
    """GIVEN two served models WHEN the serving stack's update fails or rolls back THEN people read the stack's status and
    CloudFormation's reason (the event's ``status-details``), that a version the handler set is held until someone
    re-approves or rejects it (with the rollback CLI's real commands), and the CloudFormation commands that show what
    failed, in the stack's region - not the raw event."""
    _, template, ids = _deploy(_models(2))
    (target,) = _rule(template, ids["failed"])["Targets"]
    assert target["InputTransformer"]["InputPathsMap"] == {
        "detail-status-details-status": "$.detail.status-details.status",
        "detail-status-details-status-reason": "$.detail.status-details.status-reason",
    }
    assert json.loads(target["InputTransformer"]["InputTemplate"]) == (
        f"Serving stack {SERVING}: an update ended <detail-status-details-status>: <detail-status-details-status-reason>. "
        "After a rollback the previous versions keep serving. If the deploy handler started this update (an approval), "
        "the version it set is now held: no later event rolls it out again until someone decides - re-approve it to "
        "retry (python -m mlops_cli.rollback --env dev --model MODEL rollback --to-version N --reason \"WHY\", N: the held version, WHY: a line saying why, in the "
        "quotes), or "
        "reject it or approve another version to move on. Which version serves and which is held: python -m "
        "mlops_cli.rollback --env dev --model MODEL versions (MODEL: m0, m1). What failed: aws cloudformation "
        f"describe-stack-events --stack-name {SERVING} --max-items 40 --region eu-west-1. After UPDATE_ROLLBACK_FAILED "
        f"the stack takes no update until: aws cloudformation continue-update-rollback --stack-name {SERVING} --role-arn "
        "arn:aws:iam::123456789012:role/cdk-hnb659fds-cfn-exec-role-123456789012-eu-west-1 --region eu-west-1 (add "
        "--resources-to-skip with the logical ids of resources that cannot be rolled back). Name that role: without "
        "--role-arn CloudFormation runs as the role of the last update, the deployer, which may not undo everything")


def test_the_rollback_commands_a_failed_rollout_notice_gives_run_as_a_person_fills_them_in():
    """GIVEN the failed-rollout notice WHEN a person fills in its placeholders (MODEL, N, and WHY with a sentence, as
    --reason asks) and pastes each rollback command into a shell THEN the rollback CLI's parser takes it: a reason of
    several words is one argument, not extra ones the parser refuses mid-incident."""
    import shlex

    from mlops_cli import rollback as rb

    _, template, ids = _deploy(_models(2))
    (target,) = _rule(template, ids["failed"])["Targets"]
    text = json.loads(target["InputTransformer"]["InputTemplate"])
    commands = re.findall(r"python -m mlops_cli\.rollback (.+?)(?:, N:| \(MODEL:)", text)
    assert len(commands) == 2, text
    for command in commands:
        filled = command.replace("MODEL", "m0").replace("--to-version N", "--to-version 3").replace(
            "WHY", "INC-42: v4 answers 5xx")
        args = rb.build_parser().parse_args(shlex.split(filled))
        assert args.model == "m0" and getattr(args, "reason", "INC-42: v4 answers 5xx") == "INC-42: v4 answers 5xx"


def test_the_role_a_notice_names_for_a_rollback_by_hand_is_the_one_cdk_deploys_the_stacks_as():
    """GIVEN the stack synthesizer the app's stacks use (the CDK's default) WHEN it names the role CloudFormation deploys
    them as THEN that is the contract's cfn-exec role, the one the notice and the README tell people to pass."""
    from aws_cdk import DefaultStackSynthesizer

    from pipeline_code.core.contract import DEFAULT_CDK_QUALIFIER, cfn_exec_role_arn

    assert DefaultStackSynthesizer.DEFAULT_QUALIFIER == DEFAULT_CDK_QUALIFIER
    assert (DefaultStackSynthesizer.DEFAULT_CLOUDFORMATION_ROLE_ARN
            .replace("${AWS::Partition}", "aws").replace("${Qualifier}", DEFAULT_CDK_QUALIFIER)
            .replace("${AWS::AccountId}", "123456789012").replace("${AWS::Region}", "eu-west-1")
            ) == cfn_exec_role_arn("123456789012", "eu-west-1", DEFAULT_CDK_QUALIFIER)


def _notice_role(template: Template, failed_rule: str) -> str:
    (target,) = _rule(template, failed_rule)["Targets"]
    notice = json.loads(target["InputTransformer"]["InputTemplate"])
    return notice.split("continue-update-rollback --stack-name ")[1].split(" --role-arn ")[1].split(" ")[0]


def test_under_a_custom_bootstrap_qualifier_the_notice_names_the_role_cdk_deploys_the_serving_stack_as():
    """GIVEN an app whose context sets a central team's bootstrap qualifier (cdk.json) and a serving stack with its own
    DefaultStackSynthesizer, as the app's WHEN the handler is added in another stack THEN the failed-rollout notice names
    the cfn-exec role of that bootstrap: the very role the assembly tells `cdk deploy` to deploy the serving stack as."""
    from aws_cdk import DefaultStackSynthesizer

    from mlops_loop.constructs.cdk_reads import bootstrap_qualifier

    app = new_app(bare_outdir())
    app.node.set_context("@aws-cdk/core:bootstrapQualifier", "corp12345")
    env = Environment(account="123456789012", region="us-east-1")
    serving = Stack(app, "Serving", env=env, synthesizer=DefaultStackSynthesizer(generate_bootstrap_version_rule=False))
    stack = Stack(app, "Operations", env=env)
    artifacts = s3.Bucket.from_bucket_name(stack, "Artifacts", ARTIFACTS)
    deploy = DeployOnApproval(
        stack, "Deploy", name_prefix="shop-prod", environment="prod", serving_stack_name="shop-prod-serving",
        model_parameters=_models(1), deployer_role=iam.Role.from_role_name(stack, "Deployer", "shop-prod-serving-deployer"),
        topic=sns.Topic(stack, "Topic"), notification_dead_letters=sqs.Queue(stack, "NotificationDeadLetters"),
        key=kms.Key(stack, "OpsKey"), log_retention=logs.RetentionDays.TWO_WEEKS, removal_policy=RemovalPolicy.RETAIN,
        artifacts_bucket=artifacts, data_key=kms.Key(stack, "DataKey"), max_wait=Duration.minutes(95),
        bootstrap_qualifier=bootstrap_qualifier(serving),
    )
    role = _notice_role(Template.from_stack(stack), stack.get_logical_id(deploy.failed_rollouts.node.default_child))
    assert role == "arn:aws:iam::123456789012:role/cdk-corp12345-cfn-exec-role-123456789012-us-east-1"
    manifest = app.synth().get_stack_artifact(serving.artifact_id).manifest
    assert manifest.properties.cloud_formation_execution_role_arn.replace("${AWS::Partition}", "aws") == role


def test_by_default_the_notice_names_the_role_of_the_bootstrap_its_own_stack_deploys_through():
    """GIVEN the qualifier in the app's context WHEN no qualifier is given to the construct THEN its own stack's rules."""
    app = new_app(bare_outdir())
    app.node.set_context("@aws-cdk/core:bootstrapQualifier", "team-a")
    stack = Stack(app, "Bare", env=Environment(account="123456789012", region="eu-west-1"))
    artifacts = s3.Bucket.from_bucket_name(stack, "Artifacts", ARTIFACTS)
    deploy = DeployOnApproval(
        stack, "Deploy", name_prefix="shop-dev", environment="dev", serving_stack_name=SERVING, model_parameters=_models(1),
        deployer_role=iam.Role.from_role_name(stack, "Deployer", "shop-dev-serving-deployer"), topic=sns.Topic(stack, "Topic"),
        notification_dead_letters=sqs.Queue(stack, "NotificationDeadLetters"), key=kms.Key(stack, "OpsKey"),
        log_retention=logs.RetentionDays.TWO_WEEKS, removal_policy=RemovalPolicy.DESTROY, artifacts_bucket=artifacts,
        data_key=kms.Key(stack, "DataKey"), max_wait=Duration.minutes(95),
    )
    assert _notice_role(Template.from_stack(stack), stack.get_logical_id(deploy.failed_rollouts.node.default_child)) == (
        "arn:aws:iam::123456789012:role/cdk-team-a-cfn-exec-role-123456789012-eu-west-1")


def test_a_context_qualifier_that_no_bootstrap_can_have_is_refused_when_the_notice_is_built():
    from mlops_loop.constructs.cdk_reads import bootstrap_qualifier

    app = new_app(bare_outdir())
    app.node.set_context("@aws-cdk/core:bootstrapQualifier", "Corp_12345")
    stack = Stack(app, "Bare", env=Environment(account="123456789012", region="eu-west-1"))
    with pytest.raises(ValueError) as raised:
        bootstrap_qualifier(stack)
    assert str(raised.value) == (
        "context '@aws-cdk/core:bootstrapQualifier': 'Corp_12345' is not a CDK bootstrap qualifier: give 1-10 lowercase "
        "letters, digits or '-' (the bootstrap template takes at most 10 characters, and the qualifier names the bootstrap "
        "bucket, which takes no capitals or '_'), the one the account was bootstrapped with (cdk bootstrap --qualifier)")


def test_the_handler_reads_only_its_groups_and_updates_only_the_serving_stack_as_the_deployer():
    # A project may spell its name in mixed case: package ARNs are lower case whatever the group's spelling.
    _, template, ids = _deploy(_models(2), name_prefix="Shop-Dev")
    statements = _statements(template)
    assert statements["ReadRegistry"]["Resource"] == [
        f"arn:aws:sagemaker:{ACCOUNT_REGION}:model-package-group/shop-dev-m0",
        f"arn:aws:sagemaker:{ACCOUNT_REGION}:model-package-group/shop-dev-m1",
        f"arn:aws:sagemaker:{ACCOUNT_REGION}:model-package/shop-dev-m0/*",
        f"arn:aws:sagemaker:{ACCOUNT_REGION}:model-package/shop-dev-m1/*",
    ]
    assert statements["ReadServingStack"] == {
        "Sid": "ReadServingStack", "Effect": "Allow", "Action": ["cloudformation:DescribeStackEvents", "cloudformation:DescribeStacks"],
        "Resource": f"{STACK_PREFIX}*"}
    # UpdateStack only naming the deployer: without RoleARN CloudFormation would run the update as the role the stack was
    # last deployed with (the CDK's cfn-exec role), which needs no iam:PassRole (trialQ finding 1).
    assert statements["UpdateServingStack"] == {
        "Sid": "UpdateServingStack", "Effect": "Allow", "Action": "cloudformation:UpdateStack", "Resource": f"{STACK_PREFIX}*",
        "Condition": {"ArnEquals": {"cloudformation:RoleArn": "arn:aws:iam::123456789012:role/shop-dev-serving-deployer"}}}
    assert statements["PassDeployerRole"]["Resource"] == "arn:aws:iam::123456789012:role/shop-dev-serving-deployer"
    assert statements["PassDeployerRole"]["Condition"] == {"StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}}
    assert statements["Notify"]["Resource"] == {"Ref": ids["topic"]}


def test_a_busy_stack_is_retried_by_one_time_schedules_in_its_own_group_run_by_a_role_that_may_only_invoke_the_handler():
    """GIVEN the handler WHEN its retry role is read THEN Scheduler may assume it for schedules of the retry group
    (Scheduler names the schedule GROUP as aws:SourceArn, not the schedule) of this account, and it may only invoke
    the handler and hand undeliverable retries to the handler's dead-letter queue."""
    deploy, template, ids = _deploy(_models(1))
    (group,) = template.find_resources("AWS::Scheduler::ScheduleGroup").values()
    assert group["Properties"]["Name"] == deploy.retry_group.name == "shop-dev-deploy-retries"
    schedules = f"arn:aws:scheduler:{ACCOUNT_REGION}:schedule/shop-dev-deploy-retries/*"
    (trust,) = template.find_resources("AWS::IAM::Role")[ids["retry_role"]]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"},
                                  "ArnEquals": {"aws:SourceArn": f"arn:aws:scheduler:{ACCOUNT_REGION}:schedule-group/shop-dev-deploy-retries"}}
    assert list(_statements(template, "DeployRetryAccess").values()) == [{
        "Sid": "InvokeDeployHandler", "Effect": "Allow", "Action": "lambda:InvokeFunction",
        "Resource": f"arn:aws:lambda:{ACCOUNT_REGION}:function:shop-dev-deploy-on-approval",
    }, {
        "Sid": "DeadLetters", "Effect": "Allow", "Action": "sqs:SendMessage", "Resource": {"Fn::GetAtt": [ids["queue"], "Arn"]},
    }, {
        "Sid": "DeadLetterKey", "Effect": "Allow",
        "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"],
        "Resource": {"Fn::GetAtt": [ids["ops_key"], "Arn"]},
    }]
    statements = _statements(template)
    assert statements["ScheduleRetries"]["Action"] == "scheduler:CreateSchedule" and statements["ScheduleRetries"]["Resource"] == schedules
    assert statements["PassRetryRole"]["Resource"] == {"Fn::GetAtt": [ids["retry_role"], "Arn"]}
    assert statements["PassRetryRole"]["Condition"] == {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}


def test_the_handler_verifies_sealed_artefacts_and_writes_only_approval_ledger_and_run_records():
    """GIVEN two models WHEN the handler is built THEN it reads sealed artefacts and its models' evaluation reports, and its writes are PutObject below
    each of its models' approval-ledger and run-records prefixes (no read, no delete there; the data key encrypts the
    records)."""
    _, template, ids = _deploy(_models(2))
    statements = _statements(template)
    assert statements["VerifyArtifacts"]["Action"] == "s3:GetObject"
    assert statements["VerifyArtifacts"]["Resource"] == f"arn:aws:s3:::{ARTIFACTS}/pipelines/*/registered/*"
    assert statements["VerifyArtifactsList"]["Condition"] == {"StringLike": {"s3:prefix": ["pipelines/*/registered/*"]}}
    # ... and the reports that say whether its gate passed (of its own models only)
    assert statements["ReadEvaluationReports"] == {"Sid": "ReadEvaluationReports", "Effect": "Allow", "Action": "s3:GetObject",
                                                   "Resource": [f"arn:aws:s3:::{ARTIFACTS}/pipelines/m0/*/evaluate/evaluation/*",
                                                                f"arn:aws:s3:::{ARTIFACTS}/pipelines/m1/*/evaluate/evaluation/*"]}
    assert statements["DataKey"]["Action"] == ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"]
    assert statements["DataKey"]["Resource"] == {"Fn::GetAtt": [ids["data_key"], "Arn"]}
    writers = {sid: s for sid, s in statements.items() if any(a.startswith("s3:") and a != "s3:GetObject" and a != "s3:ListBucket"
                                                              for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"]))}
    assert writers == {"ApprovalLedger": {"Sid": "ApprovalLedger", "Effect": "Allow", "Action": "s3:PutObject", "Resource": [
        f"arn:aws:s3:::{ARTIFACTS}/approval-ledger/m0/*", f"arn:aws:s3:::{ARTIFACTS}/approval-ledger/m1/*"]},
        "RunRecords": {"Sid": "RunRecords", "Effect": "Allow", "Action": "s3:PutObject", "Resource": [
            f"arn:aws:s3:::{ARTIFACTS}/run-records/m0/*", f"arn:aws:s3:::{ARTIFACTS}/run-records/m1/*"]}}
    assert not {"SmokeTest", "StageM0"} & set(statements)


def test_the_handler_reads_only_the_executions_of_its_own_models_pipelines():
    """GIVEN two models WHEN the handler is built THEN its one SageMaker pipeline statement grants the four reads a run
    record takes (execution, the definition it ran, its parameters, its steps) on the executions of those models'
    pipelines only, and nothing that starts, stops or changes a pipeline."""
    _, template, _ = _deploy(_models(2))
    statements = _statements(template)
    runs = statements["ReadPipelineRuns"]
    assert runs["Action"] == ["sagemaker:DescribePipelineDefinitionForExecution", "sagemaker:DescribePipelineExecution",
                              "sagemaker:ListPipelineExecutionSteps", "sagemaker:ListPipelineParametersForExecution"]
    resources = [json.dumps(r) for r in runs["Resource"]]
    assert len(resources) == 2
    for model, resource in zip(_models(2), resources):
        assert f":pipeline/shop-dev-{model}-training/execution/*" in resource
    pipeline_actions = {a for s in statements.values()
                        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"]) if "Pipeline" in a}
    assert pipeline_actions == set(runs["Action"])


def test_the_handler_is_told_where_the_ledger_is_and_the_groups_prefix_before_the_model():
    """The handler derives a group's model by taking the prefix off, for every group, in any spelling of the project."""
    for prefix in ("shop-dev", "Shop-Dev"):
        _, template, _ = _deploy(_models(2), name_prefix=prefix)
        variables = _function(template)["Environment"]["Variables"]
        ledger = json.loads(variables["APPROVAL_LEDGER"])
        assert ledger == {"bucket": ARTIFACTS, "group_prefix": f"{prefix}-"}
        groups = json.loads(variables["MODEL_PARAMETERS"])
        assert {group.removeprefix(ledger["group_prefix"]) for group in groups} == set(_models(2))


def test_many_members_of_multi_model_endpoints_fit_in_lambdas_environment():
    """GIVEN 20 models, 12 of them on multi-model endpoints (a bank's small models pooled) WHEN the handler is built
    THEN it is (its environment within Lambda's 4 KB, as synth counts it: references at their longest), each member
    named once, the shared bucket and key given once."""
    members = [(f"m{i}", "shop-dev-mme-shared" if i % 2 else "shop-dev-mme-small") for i in range(12)]
    deploy, template, _ = _deploy(_models(20), members)
    variables = _function(template)["Environment"]["Variables"]
    assert set(json.loads(variables["MULTI_MODEL"])) == {f"shop-dev-m{i}" for i in range(12)}
    assert "${" in "".join(_render(p) for p in variables["MULTI_MODEL_SHARED"]["Fn::Join"][1])  # the key, given once


def test_a_multi_model_member_without_a_serving_parameter_is_refused_naming_it():
    """A member the serving stack has no parameter for could never be switched: a wiring mistake, refused at synth."""
    with pytest.raises(ValueError, match=r"^DeployOnApproval: multi-model member 'm2' has no serving-stack parameter in "
                                         r"model_parameters: its approvals would never reach its endpoint$"):
        _deploy(_models(2), [("m0", "shop-dev-mme-shared"), ("m2", "shop-dev-mme-shared")])


def test_multi_model_members_are_staged_and_smoke_tested_by_the_handler_before_the_switch():
    members = [("m0", "shop-dev-mme-shared"), ("m1", "shop-dev-mme-shared"), ("m2", "Shop-Dev-mme-Small")]
    _, template, ids = _deploy(_models(3), members)
    function = _function(template)
    # Staging copies an archive and the smoke request may wait for a cold model load.
    assert function["Timeout"] == 300
    variables = function["Environment"]["Variables"]
    key = "${%s.Arn}" % ids["data_key"]
    # The bucket and key every member shares are given once (MULTI_MODEL_SHARED); the handler fills them in.
    assert json.loads(variables["MULTI_MODEL"]) == {
        f"shop-dev-{model}": {"model": model, "endpoint": endpoint, "prefix": f"mme/{endpoint.lower()}/"}
        for model, endpoint in members
    }
    shared = variables["MULTI_MODEL_SHARED"]["Fn::Join"][1]
    assert json.loads("".join(_render(p) for p in shared)) == {"bucket": ARTIFACTS, "kms_key_id": key}
    statements = _statements(template)
    assert statements["DataKey"]["Action"] == ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"]
    assert statements["ReadArtifactsM2"]["Resource"] == f"arn:aws:s3:::{ARTIFACTS}/pipelines/m2/registered/*"
    # Put, never delete: a staged version may be what a rollback returns to.
    assert statements["StageM2"]["Action"] == ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"]
    assert statements["StageM2"]["Resource"] == f"arn:aws:s3:::{ARTIFACTS}/mme/shop-dev-mme-small/m2/*"
    assert statements["StageM2List"]["Condition"] == {"StringLike": {"s3:prefix": ["mme/shop-dev-mme-small/m2/*"]}}
    writers = sorted(sid for sid, s in statements.items() if "s3:PutObject" in s["Action"])
    assert writers == ["ApprovalLedger", "RunRecords", "StageM0", "StageM1", "StageM2"]
    assert statements["SmokeTest"]["Action"] == ["sagemaker:DescribeEndpoint", "sagemaker:InvokeEndpoint"]
    assert statements["SmokeTest"]["Resource"] == [f"arn:aws:sagemaker:{ACCOUNT_REGION}:endpoint/shop-dev-mme-shared",
                                                   f"arn:aws:sagemaker:{ACCOUNT_REGION}:endpoint/shop-dev-mme-small"]


def test_a_reconcile_may_describe_exactly_the_endpoints_serving_its_models_and_none_when_there_are_none():
    """GIVEN the endpoints serving the models (a name with capitals, as a project may spell it) WHEN the handler is added
    THEN it may DescribeEndpoint those (their ARNs are lower case), nothing else; GIVEN none (batch only) THEN no statement."""
    _, template, _ = _deploy(_models(2), endpoint_names=["Shop-Dev-m1", "shop-dev-m0", "shop-dev-m0"])
    assert _statements(template)["CheckEndpoints"] == {
        "Sid": "CheckEndpoints", "Effect": "Allow", "Action": "sagemaker:DescribeEndpoint",
        "Resource": [f"arn:aws:sagemaker:{ACCOUNT_REGION}:endpoint/shop-dev-m0",
                     f"arn:aws:sagemaker:{ACCOUNT_REGION}:endpoint/shop-dev-m1"]}
    _, template, _ = _deploy(_models(2))
    assert "CheckEndpoints" not in _statements(template)


def test_the_handler_may_set_the_retention_of_exactly_its_endpoints_log_groups_and_is_told_the_environments():
    """GIVEN the endpoints serving the models (one a multi-model endpoint, <prefix>-mme-<group>) and the environment's
    log_retention_days WHEN the handler is added THEN LOG_RETENTION_DAYS is that, it may DescribeLogGroups (no
    resource-level permission: acknowledged) and PutRetentionPolicy on exactly those endpoints' groups: not on another
    environment's whose name only starts with this one's prefix (shop-dev-eu beside shop-dev), nor another endpoint's."""
    from tests.support.iam_eval import Statement, authorize

    _, template, _ = _deploy(_models(2), endpoint_names=["shop-dev-m0", "shop-dev-mme-pool"], log_retention_days=14)
    assert _function(template)["Environment"]["Variables"]["LOG_RETENTION_DAYS"] == "14"
    statements = _statements(template)
    assert statements["ReadLogGroups"]["Action"] == "logs:DescribeLogGroups" and statements["ReadLogGroups"]["Resource"] == "*"
    group = f"arn:aws:logs:{ACCOUNT_REGION}:log-group:/aws/sagemaker/Endpoints"
    assert statements["EndpointLogRetention"]["Resource"] == [
        f"{group}/shop-dev-m0", f"{group}/shop-dev-m0:*", f"{group}/shop-dev-mme-pool", f"{group}/shop-dev-mme-pool:*"]
    granted = [Statement.from_json(statements[sid]) for sid in ("ReadLogGroups", "EndpointLogRetention")]
    for endpoint in ("shop-dev-m0", "shop-dev-mme-pool"):
        assert authorize(granted, "logs:PutRetentionPolicy", {"log-group": f"{group}/{endpoint}"}).allowed
    for other in ("shop-dev-eu-m0", "shop-dev-m0x", "shop-dev-m1", "shop-dev-mme-pool-eu", "shop-dev"):
        assert not authorize(granted, "logs:PutRetentionPolicy", {"log-group": f"{group}/{other}"}).allowed, other


def test_the_hourly_sweep_sets_the_endpoint_log_groups_and_without_endpoints_nothing_is_granted():
    """GIVEN endpoints and log_retention_days WHEN the handler is added THEN an hourly rule invokes it with the
    log-retention action (with retries and its dead-letter queue); GIVEN no endpoint (batch only) THEN no variable, no
    grant and no sweep."""
    deploy, template, ids = _deploy(_models(2), endpoint_names=["shop-dev-m0"], log_retention_days=365)
    props = _rule(template, Stack.of(deploy).get_logical_id(deploy.log_retention_sweep.node.default_child))
    assert props["ScheduleExpression"] == "rate(1 hour)"
    (target,) = props["Targets"]
    assert json.loads(target["Input"]) == {"action": "log-retention"}
    assert target["Arn"] == {"Fn::GetAtt": [ids["function"], "Arn"]}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [ids["queue"], "Arn"]}}
    _, template, _ = _deploy(_models(2), log_retention_days=365)
    assert "LOG_RETENTION_DAYS" not in _function(template)["Environment"]["Variables"]
    assert not {"ReadLogGroups", "EndpointLogRetention"} & set(_statements(template))
    assert not [r for r in template.find_resources("AWS::Events::Rule").values() if "ScheduleExpression" in r["Properties"]]


def _log_retention_alarm(template: Template) -> dict:
    (props,) = [a["Properties"] for a in template.find_resources("AWS::CloudWatch::Alarm").values()
                if a["Properties"].get("AlarmName") == "shop-dev-endpoint-log-retention"]
    return props


def test_endpoint_log_groups_the_sweep_cannot_set_sweep_after_sweep_tell_people_with_what_to_do():
    """GIVEN the hourly sweep WHEN the handler is added THEN an alarm reads the count of groups each sweep could not set
    (the handler's embedded metric, of this function) and notifies the topic, saying what it means and where the
    runbook is; GIVEN no sweep (no endpoint) THEN no alarm. A failed group was one warning log line, seen by nobody."""
    _, template, ids = _deploy(_models(2), endpoint_names=["shop-dev-m0"], log_retention_days=365)
    props = _log_retention_alarm(template)
    assert (props["Namespace"], props["MetricName"], props["Dimensions"]) == (
        "mlops-loop/deploy-handler", "EndpointLogGroupsNotSet", [{"Name": "FunctionName", "Value": "shop-dev-deploy-on-approval"}])
    assert (props["Statistic"], props["Period"], props["Threshold"], props["ComparisonOperator"]) == (
        "Maximum", 3600, 1, "GreaterThanOrEqualToThreshold")
    assert props["AlarmActions"] == [{"Ref": ids["topic"]}]
    description = props["AlarmDescription"]
    for said in ("365 days", "3 hourly sweeps in a row", "/aws/lambda/shop-dev-deploy-on-approval", "log_retention_failed",
                 "log_retention_deferred", '{"action": "log-retention"}\' --region eu-west-1 out.json',
                 "(docs/deploying.md, Endpoint log retention alarm: what to do)"):
        assert said in description, said
    assert len(description) <= 1024
    _, template, _ = _deploy(_models(2), log_retention_days=365)
    assert template.find_resources("AWS::CloudWatch::Alarm") == {}


@pytest.mark.parametrize("extra", [0, 2, 5])
def test_replayed_the_log_retention_alarm_ignores_a_passing_throttle_and_pages_once_on_a_failure_that_stays(extra):
    """Replayed with tests/support/alarm_eval.py over the sweep's hourly points (at :17): a group not set in one or two
    sweeps (a throttle during a rollout) pages nobody; not set in three sweeps in a row pages once, however long it
    lasts, and the first sweep that sets it returns the alarm to OK."""
    from tests.support.alarm_eval import DAY, HOUR, MINUTE, MetricAlarm, Series, replay

    _, template, _ = _deploy(_models(2), endpoint_names=["shop-dev-m0"], log_retention_days=365)
    alarm = MetricAlarm.from_properties(_log_retention_alarm(template))
    sweeps = lambda failing: Series((h * HOUR + 17 * MINUTE, 1.0 if h in failing else 0.0) for h in range(48))  # noqa: E731
    for passing in ({5}, {5, 6}, {5, 6, 8, 9, 20}):
        assert replay(alarm, sweeps(passing), 0, 2 * DAY, extra=extra, initial="OK").pages() == [], passing
    run = replay(alarm, sweeps(set(range(10, 30))), 0, 2 * DAY, extra=extra, initial="OK")
    (page,) = run.pages()
    assert 12 * HOUR + 17 * MINUTE <= page <= 13 * HOUR + 17 * MINUTE
    assert run.state_at(31 * HOUR) == "OK"


def test_a_teams_models_notices_go_to_its_topic_which_the_handler_may_publish_to():
    """GIVEN m1 of a team with a topic of its own WHEN the handler is built THEN TEAM_TOPICS names that topic (by its
    fixed name, a plain string) with m1's group (m0, unowned, stays on NOTIFY_TOPIC_ARN) and the role may publish to
    both topics."""
    _, template, ids = _deploy(_models(2), team_models=["m1"])
    variables = _function(template)["Environment"]["Variables"]
    assert json.loads(variables["TEAM_TOPICS"]) == {"shop-dev-team-notifications": ["shop-dev-m1"]}
    assert sorted(r["Ref"] for r in _statements(template)["Notify"]["Resource"]) == sorted([ids["topic"], ids["team_topic"]])


@pytest.mark.parametrize("models, members, team_count", [
    (12, [(f"m{i}", "shop-dev-mme-shared" if i % 2 else "shop-dev-mme-small") for i in range(12)], 4),
    (12, [], 12),
])
def test_many_teams_fit_in_lambdas_environment_beside_multi_model_members(models, members, team_count):
    """GIVEN ``models`` models (those of ``members`` pooled on 2 multi-model endpoints) spread over ``team_count`` teams,
    each with a topic of its own WHEN the handler is built THEN synth passes the 4 KB environment check (a team's topic
    is named in TEAM_TOPICS by its fixed name, counted at its real length, not as a 256-byte ARN reference) and each
    team's topic names exactly its models' groups."""
    teams = {f"m{i}": f"team-{i % team_count}" for i in range(models)}
    _, template, _ = _deploy(_models(models), members, teams=teams)
    variables = _function(template)["Environment"]["Variables"]
    expected: dict[str, list[str]] = {}
    for model, team in sorted(teams.items()):
        expected.setdefault(team_topic_name("shop-dev", team), []).append(f"shop-dev-{model}")
    assert {name: sorted(groups) for name, groups in json.loads(variables["TEAM_TOPICS"]).items()} == \
        {name: sorted(groups) for name, groups in expected.items()}
    assert len(expected) == team_count


def test_without_owned_models_the_handler_has_no_team_topics():
    _, template, _ = _deploy(_models(2))
    assert "TEAM_TOPICS" not in _function(template)["Environment"]["Variables"]


def test_a_team_topic_for_a_model_the_handler_does_not_deploy_is_refused_naming_it():
    with pytest.raises(ValueError, match=r"^DeployOnApproval: team_topics names model 'm7', which model_parameters does not$"):
        _deploy(_models(2), team_models=["m7"])


def test_a_team_topic_without_a_fixed_name_is_refused_naming_the_model():
    """TEAM_TOPICS names a team's topic by its fixed name (the handler builds the ARN): a topic whose name CloudFormation
    would generate could not be named there, so it is a wiring mistake, refused at synth."""
    stack = Stack(new_app(bare_outdir()), "Bare", env=Environment(account="123456789012", region="eu-west-1"))
    topic = sns.Topic(stack, "Unnamed")
    with pytest.raises(ValueError) as raised:
        team_topics_variable("DeployOnApproval", "model_parameters", {"m0": topic}, {"m0": "shop-dev-m0"})
    assert str(raised.value) == ("DeployOnApproval: the team topic of model 'm0' has no fixed name: give it topic_name "
                                 "(contract.team_topic_name), which TEAM_TOPICS names it by")
