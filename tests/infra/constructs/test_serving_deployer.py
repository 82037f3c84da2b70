"""ServingDeployer, built in a bare stack: what each served thing adds to the role, and the refusals.

Served things are stand-ins carrying only the attributes the deployer reads (name, role, endpoint or
schedule), so each scenario shows exactly the statements one kind of serving adds.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Template

from mlops_loop.app_builder import new_app
from mlops_loop.config.serving import ServingConfig
from mlops_loop.constructs.serving_deployer import ServingDeployer
from tests.support import iam_actions
from tests.support.cdk_outdirs import bare_outdir
from tests.support.templates import policy_statements

ENV = Environment(account="123456789012", region="eu-west-1")
COMMON = ["ModelsAndConfigs", "CreateModelsAndTags", "AutoscalingSageMaker", "AutoscalingDescribe", "AutoscalingTags", "ScalingPolicyMetrics", "AutoscalingServiceRole", "DescribeDataKey", "EncryptionGrants",
          "ResolveStorageOutputs"]


def _deployer(owner: dict[str, str] | None = None) -> tuple[Stack, Stack, ServingDeployer]:
    """GIVEN a bare serving stack and a storage stack (which holds the data key) WHEN a deployer (of ``owner``'s
    resources, default none) is added to the serving stack."""
    app = new_app(bare_outdir())
    storage = Stack(app, "Storage", env=ENV)
    stack = Stack(app, "Serving", env=ENV)
    return stack, storage, ServingDeployer(stack, "Deployer", role_name="shop-dev-serving-deployer",
                                           description="shop-dev serving deployments", owner=owner)


def _served(stack: Stack, name: str, *, endpoint: bool, serving: ServingConfig = ServingConfig()) -> SimpleNamespace:
    """A served model: from an endpoint (``serving``: its config, default a real-time ml.m5.large), or batch."""
    role = iam.Role(stack, f"{name}Role", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    if endpoint:
        return SimpleNamespace(model_name=name, role=role, endpoint_name=f"shop-dev-{name}", serving=serving,
                               alarm_names=[f"shop-dev-{name}-rollout-errors", f"shop-dev-{name}-rollout-latency"])
    scheduler = iam.Role(stack, f"{name}Scheduler", assumed_by=iam.ServicePrincipal("scheduler.amazonaws.com"))
    return SimpleNamespace(model_name=name, role=role, endpoint_name=None, scheduler_role=scheduler, schedule_name=f"shop-dev-{name}-batch",
                           serving=ServingConfig(mode="batch"))


def _statements(stack: Stack) -> dict[str, dict]:
    policies = Template.from_stack(stack).find_resources("AWS::IAM::ManagedPolicy")
    return policy_statements(policies, policies)


def test_when_nothing_is_served_then_the_role_holds_only_the_common_permissions():
    stack, storage, deployer = _deployer()
    deployer.allow_common(key=kms.Key(storage, "Key"), storage=storage)
    (role,) = Template.from_stack(stack).find_resources("AWS::IAM::Role").values()
    assert role["Properties"]["RoleName"] == "shop-dev-serving-deployer"
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "cloudformation.amazonaws.com"}
    assert list(_statements(stack)) == COMMON
    assert _statements(stack)["ResolveStorageOutputs"]["Resource"] == "arn:aws:cloudformation:eu-west-1:123456789012:stack/Storage/*"
    # Grants on the data key only when an AWS service (SageMaker) creates them for the role (issue #13).
    assert _statements(stack)["EncryptionGrants"]["Action"] == "kms:CreateGrant"
    assert _statements(stack)["EncryptionGrants"]["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}
    assert _statements(stack)["DescribeDataKey"]["Action"] == "kms:DescribeKey"


def test_autoscaling_writes_are_confined_to_sagemaker_targets_and_only_actions_that_carry_the_key_are_conditioned():
    """GIVEN the common permissions WHEN the autoscaling statements are read THEN the writes that carry
    application-autoscaling:service-namespace (Service Authorization Reference) are conditioned on sagemaker, the
    tagging calls are confined to this account's and Region's scalable targets, and no statement conditions an
    action on a key it never carries (which would deny it)."""
    stack, storage, deployer = _deployer()
    deployer.allow_common(key=kms.Key(storage, "Key"), storage=storage)
    statements = _statements(stack)
    writes = statements["AutoscalingSageMaker"]
    assert writes["Action"] == ["application-autoscaling:DeleteScalingPolicy", "application-autoscaling:DeregisterScalableTarget",
                                "application-autoscaling:PutScalingPolicy", "application-autoscaling:RegisterScalableTarget"]
    assert writes["Condition"] == {"StringEquals": {"application-autoscaling:service-namespace": "sagemaker"}}
    assert "Condition" not in statements["AutoscalingDescribe"] and statements["AutoscalingDescribe"]["Resource"] == "*"
    assert statements["AutoscalingTags"]["Resource"] == "arn:aws:application-autoscaling:eu-west-1:123456789012:scalable-target/*"
    for sid in ("AutoscalingSageMaker", "AutoscalingDescribe", "AutoscalingTags"):
        for action in statements[sid]["Action"]:
            for key in (statements[sid].get("Condition") or {}).get("StringEquals", {}):
                assert iam_actions.condition_key_supported(iam_actions.action(action), key), (action, key)


def test_when_an_endpoint_model_is_served_then_its_endpoint_is_pinned_and_endpoint_configs_are_usable():
    stack, storage, deployer = _deployer()
    deployer.allow_served_model(_served(stack, "churn", endpoint=True), "arn:aws:sagemaker:eu-west-1:123456789012:model-package/shop-dev-churn/*")
    deployer.allow_common(key=kms.Key(storage, "Key"), storage=storage)
    statements = _statements(stack)
    assert list(statements) == ["ReadPackageChurn", "PassServingRoleChurn", "EndpointChurn", "AlarmsChurn", *COMMON[:2],
                                "CreateEndpointConfigs", *COMMON[2:], "UseEndpointConfigs"]
    assert statements["EndpointChurn"]["Resource"] == "arn:aws:sagemaker:eu-west-1:123456789012:endpoint/shop-dev-churn"
    assert statements["UseEndpointConfigs"]["Action"] == ["sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint"]
    # The served thing's own alarms by name, not every alarm named after the endpoint (issue #13).
    assert statements["AlarmsChurn"]["Resource"] == [
        "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:TargetTracking-endpoint/shop-dev-churn/variant/*",
        "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:shop-dev-churn-rollout-errors",
        "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:shop-dev-churn-rollout-latency",
    ]
    assert statements["PassServingRoleChurn"]["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}


PACKAGE = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/shop-dev-{}/*"


def _config_statements(*served: tuple[str, ServingConfig]) -> dict[str, dict]:
    """The deployer's statements once ``served`` (name, serving config) are served from endpoints."""
    stack, storage, deployer = _deployer()
    for name, serving in served:
        deployer.allow_served_model(_served(stack, name, endpoint=True, serving=serving), PACKAGE.format(name))
    deployer.allow_common(key=kms.Key(storage, "Key"), storage=storage)
    return _statements(stack)


def test_endpoint_configs_may_name_only_the_served_instance_types_and_must_name_one():
    """GIVEN a real-time model on ml.c5.xlarge and an async one on ml.m5.large WHEN the deployer is built THEN
    CreateEndpointConfig is allowed only for configs whose every instance type is one of the two, and only for configs
    that name one (ForAllValues is true without the key: Null false); no other statement grants it."""
    statements = _config_statements(("churn", ServingConfig(realtime={"instance_type": "ml.c5.xlarge"})),
                                    ("risk", ServingConfig(mode="async")))
    configs = statements["CreateEndpointConfigs"]
    assert configs["Action"] == "sagemaker:CreateEndpointConfig"
    assert configs["Resource"] == "arn:aws:sagemaker:eu-west-1:123456789012:endpoint-config/*"
    assert configs["Condition"] == {"ForAllValues:StringEquals": {"sagemaker:InstanceTypes": ["ml.c5.xlarge", "ml.m5.large"]},
                                    "Null": {"sagemaker:InstanceTypes": "false"}}
    granting = [sid for sid, st in statements.items() if "sagemaker:CreateEndpointConfig" in st["Action"]]
    assert granting == ["CreateEndpointConfigs"]


def test_with_a_serverless_model_configs_without_an_instance_type_pass_within_its_concurrency_and_memory():
    """GIVEN a real-time model and a serverless one (no instance type: 3 GB, 20 concurrent) WHEN the deployer is built
    THEN configs need not name an instance type (a serverless config names none), and two guardrail denies refuse a
    serverless config above the configured concurrency or memory."""
    statements = _config_statements(("churn", ServingConfig()),
                                    ("risk", ServingConfig(mode="serverless", serverless={"memory_mb": 3072, "max_concurrency": 20})))
    assert statements["CreateEndpointConfigs"]["Condition"] == {
        "ForAllValues:StringEquals": {"sagemaker:InstanceTypes": ["ml.m5.large"]}}
    assert statements["ServerlessConcurrencyCeiling"]["Effect"] == "Deny"
    assert statements["ServerlessConcurrencyCeiling"]["Condition"] == {"NumericGreaterThan": {"sagemaker:ServerlessMaxConcurrency": "20"}}
    assert statements["ServerlessMemoryCeiling"]["Condition"] == {"NumericGreaterThan": {"sagemaker:ServerlessMemorySize": "3072"}}
    for sid in ("ServerlessConcurrencyCeiling", "ServerlessMemoryCeiling"):
        (key,) = statements[sid]["Condition"]["NumericGreaterThan"]
        assert iam_actions.condition_key_supported(iam_actions.action("sagemaker:CreateEndpointConfig"), key)


def test_with_only_serverless_models_no_config_may_name_an_instance_type():
    """GIVEN only a serverless model WHEN the deployer is built THEN a config may be created, but a deny refuses any
    that names an instance type (ForAnyValue: false without the key), besides the serverless ceilings."""
    statements = _config_statements(("risk", ServingConfig(mode="serverless")))
    assert "Condition" not in statements["CreateEndpointConfigs"]
    assert statements["NoInstanceEndpointConfigs"]["Effect"] == "Deny"
    assert statements["NoInstanceEndpointConfigs"]["Condition"] == {"ForAnyValue:StringLike": {"sagemaker:InstanceTypes": "*"}}
    assert {"ServerlessConcurrencyCeiling", "ServerlessMemoryCeiling"} <= set(statements)


def test_when_a_batch_model_is_served_then_only_its_schedule_is_manageable():
    stack, storage, deployer = _deployer()
    deployer.allow_served_model(_served(stack, "risk", endpoint=False), "arn:aws:sagemaker:eu-west-1:123456789012:model-package/shop-dev-risk/*")
    deployer.allow_common(key=kms.Key(storage, "Key"), storage=storage)
    statements = _statements(stack)
    assert list(statements) == ["ReadPackageRisk", "PassServingRoleRisk", "PassSchedulerRoleRisk", "ScheduleRisk", *COMMON]
    assert statements["ScheduleRisk"]["Resource"] == "arn:aws:scheduler:eu-west-1:123456789012:schedule/default/shop-dev-risk-batch"
    # Nothing is served from an endpoint: no endpoint config may be created at all.
    assert not [sid for sid, st in statements.items() if "sagemaker:CreateEndpointConfig" in st["Action"]]


def test_a_served_thing_added_after_the_common_permissions_is_refused():
    stack, storage, deployer = _deployer()
    deployer.allow_common(key=kms.Key(storage, "Key"), storage=storage)
    with pytest.raises(ValueError, match=r"^Serving/Deployer: allow_common\(\) was already called; add every served thing before it$"):
        deployer.allow_served_model(_served(stack, "late", endpoint=True), "arn:aws:sagemaker:eu-west-1:123456789012:model-package/x/*")


def test_the_role_keeps_the_logical_id_of_a_role_built_directly_in_the_stack():
    """The role has a fixed name: a new logical id would replace it, and the create would collide with the old."""
    stack, storage, deployer = _deployer()
    direct = Stack(App(outdir=bare_outdir()), "Direct", env=ENV)
    iam.Role(direct, "Deployer", assumed_by=iam.ServicePrincipal("cloudformation.amazonaws.com"))
    (expected,) = Template.from_stack(direct).find_resources("AWS::IAM::Role")
    assert stack.get_logical_id(deployer.role.node.default_child) == expected


OWNER = {"project": "shop", "environment": "dev"}


def test_with_an_owner_the_generated_name_models_and_configs_are_its_own_only():
    """GIVEN a deployer of the shop/dev environment's resources WHEN an endpoint model is served THEN the statements on
    models and endpoint configs (named by CloudFormation, so reached by '*') hold the resources to shop/dev's tags when
    they carry them, and the creates and tagging calls to shop/dev's tags when they set them; the keys are ones those
    actions carry (Service Authorization Reference)."""
    stack, storage, deployer = _deployer(OWNER)
    deployer.allow_served_model(_served(stack, "churn", endpoint=True), PACKAGE.format("churn"))
    deployer.allow_common(key=kms.Key(storage, "Key"), storage=storage)
    statements = _statements(stack)
    resources = {"aws:ResourceTag/project": "shop", "aws:ResourceTag/environment": "dev"}
    requests = {"aws:RequestTag/project": "shop", "aws:RequestTag/environment": "dev"}
    assert statements["ModelsAndConfigs"]["Condition"] == {"StringEqualsIfExists": resources}
    assert sorted(statements["CreateModelsAndTags"]["Action"]) == ["sagemaker:AddTags", "sagemaker:CreateModel"]
    assert statements["CreateModelsAndTags"]["Condition"] == {"StringEqualsIfExists": {**resources, **requests}}
    assert statements["CreateEndpointConfigs"]["Condition"]["StringEqualsIfExists"] == {**resources, **requests}
    assert statements["CreateEndpointConfigs"]["Condition"]["ForAllValues:StringEquals"] == {"sagemaker:InstanceTypes": ["ml.m5.large"]}
    for sid in ("ModelsAndConfigs", "CreateModelsAndTags", "CreateEndpointConfigs"):
        actions = statements[sid]["Action"]
        for action in [actions] if isinstance(actions, str) else actions:
            for key in statements[sid]["Condition"]["StringEqualsIfExists"]:
                assert iam_actions.condition_key_supported(iam_actions.action(action), key), (sid, action, key)


def test_with_an_owner_another_environments_model_is_refused_and_its_own_allowed():
    """GIVEN a deployer of shop/dev WHEN deleting, tagging or creating models is decided THEN a model tagged as shop/prod's
    or as another project's is refused, as is creating one tagged as prod's; its own, tagged or not yet tagged (tags
    reach authorization with a delay), is allowed; a tag update that names only 'tier' is allowed."""
    from tests.support.iam_eval import IamModel, StackTemplate, authorize

    stack, storage, deployer = _deployer(OWNER)
    deployer.allow_common(key=kms.Key(storage, "Key"), storage=storage)
    iam = IamModel([StackTemplate("Serving", "Serving", Template.from_stack(stack).to_json())],
                   account="123456789012", region="eu-west-1")
    role = iam.role("shop-dev-serving-deployer")
    model = {"model": "arn:aws:sagemaker:eu-west-1:123456789012:model/churnmodel-abc"}

    def tagged(project: str, environment: str, kind: str = "ResourceTag") -> dict[str, str]:
        return {f"aws:{kind}/project": project, f"aws:{kind}/environment": environment}

    for action in ("sagemaker:DeleteModel", "sagemaker:DescribeModel", "sagemaker:DeleteTags", "sagemaker:AddTags"):
        assert not authorize(role, action, model, tagged("shop", "prod")).allowed, action
        assert not authorize(role, action, model, tagged("other", "dev")).allowed, action
        assert authorize(role, action, model, tagged("shop", "dev")).allowed, action
        assert authorize(role, action, model, {}).allowed, action
    assert not authorize(role, "sagemaker:CreateModel", model, tagged("shop", "prod", "RequestTag")).allowed
    assert authorize(role, "sagemaker:CreateModel", model, tagged("shop", "dev", "RequestTag")).allowed
    assert not authorize(role, "sagemaker:AddTags", model, {**tagged("shop", "dev"), **tagged("shop", "prod", "RequestTag")}).allowed
    assert authorize(role, "sagemaker:AddTags", model, {**tagged("shop", "dev"), "aws:RequestTag/tier": "prod"}).allowed


def test_without_an_owner_the_generated_name_statements_carry_no_tag_condition():
    """GIVEN a deployer built without an owner (the default) WHEN the common permissions are added THEN the model and
    config statements carry no condition (what the names reach)."""
    stack, storage, deployer = _deployer()
    deployer.allow_common(key=kms.Key(storage, "Key"), storage=storage)
    statements = _statements(stack)
    assert "Condition" not in statements["ModelsAndConfigs"] and "Condition" not in statements["CreateModelsAndTags"]


def _decide(served: list[tuple[str, ServingConfig]]):
    """A function deciding CreateEndpointConfig with a request context as the deployer of ``served`` (IAM evaluator)."""
    from tests.support.iam_eval import IamModel, StackTemplate, authorize

    stack = Stack(new_app(bare_outdir()), "Serving", env=ENV)
    deployer = ServingDeployer(stack, "Deployer", role_name="shop-dev-serving-deployer", description="shop-dev serving")
    for name, serving in served:
        deployer.allow_served_model(_served(stack, name, endpoint=True, serving=serving), PACKAGE.format(name))
    deployer.allow_common(key=kms.Key(stack, "Key"), storage=stack)
    iam = IamModel([StackTemplate("Serving", "Serving", Template.from_stack(stack).to_json())],
                   account="123456789012", region="eu-west-1")
    role = iam.role("shop-dev-serving-deployer")
    arn = "arn:aws:sagemaker:eu-west-1:123456789012:endpoint-config/churnconfig-abc"
    return lambda context: authorize(role, "sagemaker:CreateEndpointConfig", {"endpoint-config": arn}, context).allowed


SERVERLESS = ServingConfig(mode="serverless", serverless={"memory_mb": 3072, "max_concurrency": 20})


def test_the_evaluator_allows_configs_on_the_served_types_and_serverless_within_its_size_only():
    """GIVEN a deployer of a real-time model on ml.m5.large and a serverless one (3 GB, 20 concurrent) WHEN endpoint
    config requests are decided THEN the real-time config and the serverless config (no instance type) are allowed;
    one on ml.p5.48xlarge, or mixing it in, and a serverless one above 20 concurrent or 3 GB are refused."""
    decide = _decide([("churn", ServingConfig()), ("risk", SERVERLESS)])
    serverless = {"sagemaker:ServerlessMaxConcurrency": 20, "sagemaker:ServerlessMemorySize": 3072}
    assert decide({"sagemaker:InstanceTypes": ["ml.m5.large"]})
    assert decide(serverless)
    assert not decide({"sagemaker:InstanceTypes": ["ml.p5.48xlarge"]})
    assert not decide({"sagemaker:InstanceTypes": ["ml.m5.large", "ml.p5.48xlarge"]})
    assert not decide({**serverless, "sagemaker:ServerlessMaxConcurrency": 21})
    assert not decide({**serverless, "sagemaker:ServerlessMemorySize": 4096})


@pytest.mark.parametrize(
    ("served", "context", "expected"),
    [
        # Nothing serverless: a config must name an instance type (ForAllValues alone is true without the key).
        ([("churn", ServingConfig())], {}, False),
        # Only serverless: a config naming any instance type is refused, a serverless one within its size allowed.
        ([("risk", SERVERLESS)], {"sagemaker:InstanceTypes": ["ml.m5.large"]}, False),
        ([("risk", SERVERLESS)], {"sagemaker:ServerlessMaxConcurrency": 10, "sagemaker:ServerlessMemorySize": 2048}, True),
    ],
)
def test_the_evaluator_decides_configs_without_instance_types_by_what_is_served(served, context, expected):
    """GIVEN a deployer of ``served`` WHEN a config request with ``context`` is decided THEN allowed iff expected."""
    assert _decide(served)(context) is expected
