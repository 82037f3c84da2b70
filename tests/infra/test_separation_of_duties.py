"""Separation of duties, proven over the synthesized IAM policies of every environment (issue #6, item 5).

Every claim is decided by ``iam_eval`` from the policies that actually apply to each role: training
cannot approve, the approver cannot train or edit pipelines, the deploy handler can only drive the
serving stack through the deployer role, and the serving stack only accepts versions of its own groups.
Roles are found through the resources that use them (pipeline, function, model), not by logical id.
"""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from mlops_loop.config import load_config
from mlops_loop.tools.cloud_assembly import stacks as assembly_stacks
from pipeline_code.core.contract import (REGISTERED_PROPERTIES, RETRAIN_ALARMS, legacy_model_card_name, model_card_name,
                                         pascal)
from pipeline_code.core.integrity import (ledger_key, ledger_model_prefix, model_prefix, sealed_key, sealed_prefix,
                                          work_prefix)

from tests.support.deploy_permissions import assembly_model
from tests.support.paths import CONFIG_PATH
from tests.support.iam_eval import (
    EXPLICIT_DENY,
    IamModel,
    Role,
    StackTemplate,
    Statement,
    allowed,
    authorize,
    evaluate,
    service_statements,
)

CONFIG = load_config(CONFIG_PATH)
ENVS = tuple(CONFIG.environments)
ENV_MODELS = [(env, model) for env, cfg in CONFIG.environments.items() for model in cfg.models]
# (env, model, another model of the same environment)
ENV_MODEL_PAIRS = [
    (env, model, other) for env, cfg in CONFIG.environments.items() for model in cfg.models for other in cfg.models if other != model
]
STACKS = ("Storage", "DataPipeline", "Training", "Serving", "Operations")
SERVICES = ("sagemaker.amazonaws.com", "cloudformation.amazonaws.com", "scheduler.amazonaws.com",
            "lambda.amazonaws.com", "glue.amazonaws.com")
STATUSES = ("Approved", "Rejected", "PendingManualApproval")
FOREIGN_ACCOUNT = "999999999999"
# Whatever a future policy might add, an explicit Deny must still win over it.
ALLOW_EVERYTHING = Statement.from_json({"Sid": "HypotheticalAdmin", "Effect": "Allow", "Action": "*", "Resource": "*"})


class Env:
    """One environment's IAM model plus the names and ARNs the tests ask about."""

    def __init__(self, synthesized, env: str):
        self.name = env
        self.cfg = CONFIG.environments[env]
        self.prefix = f"{CONFIG.project}-{env}"
        self.account, self.region = self.cfg.account, self.cfg.region
        self.stack_names = {label: synthesized.stacks[(env, label)].stack_name for label in STACKS}
        self.iam = IamModel(
            [StackTemplate(label, self.stack_names[label], synthesized.template(env, label)) for label in STACKS],
            account=self.account,
            region=self.region,
        )
        self.templates = {label: synthesized.template(env, label) for label in STACKS}

    def arn(self, service: str, resource: str, *, account: str | None = None) -> str:
        return f"arn:aws:{service}:{self.region}:{account or self.account}:{resource}"

    def group(self, model: str) -> str:
        return f"{self.prefix}-{model}"

    def group_arn(self, model: str, **kw) -> str:
        return self.arn("sagemaker", f"model-package-group/{self.group(model)}", **kw)

    def version_arn(self, model: str, version: int = 7, **kw) -> str:
        return self.arn("sagemaker", f"model-package/{self.group(model)}/{version}", **kw)

    def registry_arns(self) -> list[str]:
        """Group and version ARNs of every model of this environment."""
        return [arn for m in self.cfg.models for arn in (self.group_arn(m), self.version_arn(m), self.version_arn(m, 1))]

    def endpoint_config_arn(self, **kw) -> str:
        """An endpoint-config as CloudFormation names it (logical id plus a random suffix, lower case in the ARN)."""
        return self.arn("sagemaker", "endpoint-config/churnconfig9de79c4e-k3j5bq0xwz1a", **kw)

    def pipeline_arn(self, model: str) -> str:
        return self.arn("sagemaker", f"pipeline/{self.prefix}-{model}-training")

    def stack_arn(self, label: str, *, account: str | None = None) -> str:
        return self.arn("cloudformation", f"stack/{self.stack_names[label]}/0f1e2d3c-aaaa-bbbb-cccc-1234567890ab", account=account)

    def _role_of(self, cfn_type: str, name_prop: str, name: str, role_prop: str) -> Role:
        found = [
            self.iam.role(self.iam.resolve(label, props[role_prop]))
            for label, _, props in self.iam.resources(cfn_type)
            if props.get(name_prop) == name
        ]
        assert len(found) == 1, f"expected one {cfn_type} named {name} in {self.name}, found {len(found)}"
        return found[0]

    def training_role(self, model: str) -> Role:
        return self._role_of("AWS::SageMaker::Pipeline", "PipelineName", f"{self.prefix}-{model}-training", "RoleArn")

    def function_role(self, suffix: str) -> Role:
        return self._role_of("AWS::Lambda::Function", "FunctionName", f"{self.prefix}-{suffix}", "Role")

    @property
    def approver(self) -> Role:
        return self.iam.role(f"{self.prefix}-model-approver")

    @property
    def deployer(self) -> Role:
        return self.iam.role(f"{self.prefix}-serving-deployer")

    def serving_model_roles(self) -> set[str]:
        return {
            self.iam.resolve(label, props["ExecutionRoleArn"])
            for label, _, props in self.iam.resources("AWS::SageMaker::Model")
        }

    def batch_scheduler_roles(self) -> set[str]:
        return {
            self.iam.resolve(label, props["Target"]["RoleArn"])
            for label, _, props in self.iam.resources("AWS::Scheduler::Schedule")
            if label == "Serving"
        }

    def bucket_object_arns(self) -> list[str]:
        names = [self.iam.resolve(label, props["BucketName"]) for label, _, props in self.iam.resources("AWS::S3::Bucket")]
        assert names, "the environment defines no bucket: the S3 checks would prove nothing"
        return [f"arn:aws:s3:::{name}/{key}" for name in names for key in ("pipelines/x/model.tar.gz", "any/key")]


@pytest.fixture(scope="module")
def envs(synthesized) -> dict[str, Env]:
    return {env: Env(synthesized, env) for env in ENVS}


def _why(role: Role, action: str, resource: str, context=None) -> str:
    return f"{role} {action} {resource} {context or {}}: {evaluate(role.statements, action, resource, context)}"


def test_every_stack_and_role_of_each_environment_is_loaded(synthesized, envs):
    """GIVEN the synthesized app WHEN each environment's IAM model is built THEN it covers every stack of the
    environment and every AWS::IAM::Role in them (so "no other role" below really means none)."""
    for env, model in envs.items():
        assert {label for (e, label) in synthesized.stacks if e == env} == set(STACKS)
        expected = {f"{label}/{lid}" for label in STACKS for lid, r in model.templates[label]["Resources"].items()
                    if r["Type"] == "AWS::IAM::Role"}
        assert set(model.iam.roles) == expected and len(expected) >= 8


@pytest.mark.parametrize("env", ENVS)
def test_no_resource_policy_grants_a_principal_of_this_account(envs, env):
    """GIVEN every resource-based policy in the environment (buckets, queues, topics, keys, registry groups)
    WHEN their Allow statements are read THEN they name only AWS services or the account root (which defers
    to IAM), so the identity policies evaluated here decide what each role can do."""
    model = envs[env]
    root = f"arn:aws:iam::{model.account}:root"
    checked = 0
    for label, template in model.templates.items():
        for lid, resource in template["Resources"].items():
            props = resource.get("Properties", {})
            assert "ModelPackageGroupPolicy" not in props, f"{label}/{lid} has a registry resource policy"
            if resource["Type"] == "AWS::Lambda::Permission":
                assert props["Principal"].endswith(".amazonaws.com"), f"{label}/{lid}: {props['Principal']}"
            for key in ("PolicyDocument", "KeyPolicy"):
                if resource["Type"].startswith("AWS::IAM::") or key not in props:
                    continue
                for statement in props[key]["Statement"]:
                    checked += 1
                    if statement["Effect"] != "Allow":
                        continue
                    principal = statement["Principal"]
                    aws = principal.get("AWS", []) if isinstance(principal, dict) else [principal]
                    aws = aws if isinstance(aws, list) else [aws]
                    assert all(p == root for p in aws), f"{label}/{lid} {statement.get('Sid')}: grants {aws}"
    assert checked > 0


# -- training pipeline roles ----------------------------------------------------------------
@pytest.mark.parametrize(("env", "model"), ENV_MODELS)
def test_training_role_cannot_change_approval_status(envs, env, model):
    """GIVEN the role the training pipeline of ``model`` runs as
    WHEN it calls sagemaker:UpdateModelPackage on any version of any group (this environment's groups, with
    or without an approval status in the request)
    THEN the request is explicitly denied, and stays denied even next to an Allow of everything."""
    e = envs[env]
    role = e.training_role(model)
    for arn in e.registry_arns() + [e.version_arn(model, account=FOREIGN_ACCOUNT)]:
        for context in ({}, *({"sagemaker:ModelApprovalStatus": s} for s in STATUSES)):
            decision = evaluate(role.statements, "sagemaker:UpdateModelPackage", arn, context)
            assert decision.outcome == EXPLICIT_DENY, _why(role, "sagemaker:UpdateModelPackage", arn, context)
            assert not allowed(role.statements + (ALLOW_EVERYTHING,), "sagemaker:UpdateModelPackage", arn, context)


@pytest.mark.parametrize("status", ["Approved", "Rejected", None])
@pytest.mark.parametrize(("env", "model"), ENV_MODELS)
def test_training_role_registers_only_pending_versions_unless_the_environment_auto_approves(envs, env, model, status):
    """GIVEN the training role of ``model``
    WHEN it calls sagemaker:CreateModelPackage in its own group with ModelApprovalStatus ``status`` (None: the
    request omits it)
    THEN it is denied in environments without training.auto_approve (always staging and prod, even next to
    an Allow of everything), and allowed only where auto_approve is on (dev)."""
    e = envs[env]
    auto_approve = e.cfg.training.auto_approve
    if e.cfg.tier in ("staging", "prod"):
        assert not auto_approve, f"{env}: a {e.cfg.tier} environment must not auto-approve"
    role = e.training_role(model)
    context = {} if status is None else {"sagemaker:ModelApprovalStatus": status}
    for arn in (e.group_arn(model), e.version_arn(model)):
        assert allowed(role, "sagemaker:CreateModelPackage", arn, context) is auto_approve, _why(
            role, "sagemaker:CreateModelPackage", arn, context)
        if not auto_approve:
            assert not allowed(role.statements + (ALLOW_EVERYTHING,), "sagemaker:CreateModelPackage", arn, context)


@pytest.mark.parametrize(("env", "model"), ENV_MODELS)
def test_training_role_can_register_pending_versions_in_its_own_group(envs, env, model):
    """GIVEN the training role of ``model``
    WHEN it registers a version with ModelApprovalStatus=PendingManualApproval in its own group
    THEN it is allowed (the pipeline can still do its job in every environment)."""
    e = envs[env]
    role = e.training_role(model)
    context = {"sagemaker:ModelApprovalStatus": "PendingManualApproval"}
    for arn in (e.group_arn(model), e.version_arn(model)):
        assert allowed(role, "sagemaker:CreateModelPackage", arn, context), _why(role, "sagemaker:CreateModelPackage", arn, context)


@pytest.mark.parametrize(("env", "model", "other"), ENV_MODEL_PAIRS)
def test_training_role_cannot_register_into_another_models_group(envs, env, model, other):
    """GIVEN the training role of ``model``
    WHEN it registers (even as PendingManualApproval) into ``other``'s group, or into a same-named group of
    another account
    THEN it is denied."""
    e = envs[env]
    role = e.training_role(model)
    context = {"sagemaker:ModelApprovalStatus": "PendingManualApproval"}
    targets = [e.group_arn(other), e.version_arn(other),
               e.group_arn(model, account=FOREIGN_ACCOUNT), e.version_arn(model, account=FOREIGN_ACCOUNT)]
    for arn in targets:
        assert not allowed(role, "sagemaker:CreateModelPackage", arn, context), _why(role, "sagemaker:CreateModelPackage", arn, context)


@pytest.mark.parametrize(("env", "model", "other"), ENV_MODEL_PAIRS)
def test_training_role_writes_its_own_models_cards_and_no_other_models(envs, env, model, other):
    """GIVEN the training role of ``model`` (its job code runs as it) and the cards the pipeline names for versions of
    ``model`` and of ``other`` (``<group>-v<version>-<package creation time>``, and ``<group>-v<version>`` as before)
    WHEN it creates or updates each THEN its own are allowed and ``other``'s denied. The grant is ``<group>-v*``: the
    config refuses a model named ``<model>-v...`` beside ``model`` (trialM finding 2), the one name it would cover."""
    e = envs[env]
    role = e.training_role(model)
    created = dt.datetime(2026, 3, 1, 9, 59, 7, tzinfo=dt.timezone.utc)
    cards = {m: [e.arn("sagemaker", f"model-card/{name}") for name in (
        model_card_name(e.group(m), 12, created), legacy_model_card_name(e.group(m), 3))] for m in (model, other)}
    for action in ("sagemaker:CreateModelCard", "sagemaker:UpdateModelCard"):
        for arn in cards[model]:
            assert allowed(role, action, arn), _why(role, action, arn)
        for arn in cards[other]:
            assert not allowed(role, action, arn), _why(role, action, arn)


# -- approver -------------------------------------------------------------------------------
@pytest.mark.parametrize("status", ["Approved", "Rejected"])
@pytest.mark.parametrize(("env", "model"), ENV_MODELS)
def test_approver_can_approve_or_reject_its_environments_versions(envs, env, model, status):
    """GIVEN the approver role of the environment
    WHEN it sets ``status`` on a version of ``model`` through sagemaker:UpdateModelPackage
    THEN it is allowed for this environment's group, and not for another account's same-named group nor for
    another environment's group name."""
    e = envs[env]
    context = {"sagemaker:ModelApprovalStatus": status}
    assert allowed(e.approver, "sagemaker:UpdateModelPackage", e.version_arn(model), context)
    elsewhere = [e.version_arn(model, account=FOREIGN_ACCOUNT)]
    elsewhere += [e.version_arn(model).replace(f"/{e.prefix}-", f"/{CONFIG.project}-{other}-") for other in ENVS if other != env]
    for arn in elsewhere:
        assert not allowed(e.approver, "sagemaker:UpdateModelPackage", arn, context), _why(e.approver, "sagemaker:UpdateModelPackage", arn)


APPROVED = {"sagemaker:ModelApprovalStatus": "Approved"}
REMOVES = "sagemaker:CustomerMetadataPropertiesToRemove"


def _sets(name: str) -> str:
    return f"sagemaker:CustomerMetadataProperties/{name}"


def _refused(e, arn, context) -> None:
    """Explicitly denied, and still denied next to an Allow of everything."""
    assert evaluate(e.approver.statements, "sagemaker:UpdateModelPackage", arn, context).outcome == EXPLICIT_DENY, context
    assert not allowed(e.approver.statements + (ALLOW_EVERYTHING,), "sagemaker:UpdateModelPackage", arn, context), context


@pytest.mark.parametrize(("env", "model"), ENV_MODELS)
def test_every_approver_update_is_a_decision(envs, env, model):
    """GIVEN the approver role WHEN it updates a version without an approval status (an edit that would move
    LastModifiedTime, which the deploy handler reads as the approval time) THEN it is explicitly denied; a decision
    with its own description is allowed."""
    e = envs[env]
    arn = e.version_arn(model)
    _refused(e, arn, {})
    assert allowed(e.approver, "sagemaker:UpdateModelPackage", arn, APPROVED)


@pytest.mark.parametrize("name", REGISTERED_PROPERTIES)
@pytest.mark.parametrize(("env", "model"), ENV_MODELS)
def test_the_approver_can_neither_set_nor_remove_a_registered_property(envs, env, model, name):
    """GIVEN the approver role and a customer metadata property the pipeline registers (lineage or digest)
    WHEN an approval also sets it, removes it, or removes it among others
    THEN each request is explicitly denied, and stays denied next to an Allow of everything; the approval
    alone is allowed."""
    e = envs[env]
    arn = e.version_arn(model)
    for status in ("Approved", "Rejected", "PendingManualApproval"):
        decision = {"sagemaker:ModelApprovalStatus": status}
        _refused(e, arn, {**decision, _sets(name): "forged"})
        _refused(e, arn, {**decision, REMOVES: [name]})
        _refused(e, arn, {**decision, REMOVES: ["unrelated", name]})
        assert allowed(e.approver, "sagemaker:UpdateModelPackage", arn, decision)


@pytest.mark.parametrize(("env", "model"), ENV_MODELS)
def test_the_approver_removes_no_property_at_all_and_may_add_an_unregistered_one(envs, env, model):
    """GIVEN the approver role WHEN an approval removes a property the pipeline never registered THEN it is denied
    (removal is refused whatever the key). Setting an unregistered property with an approval stays allowed: IAM has
    no condition key listing the keys a request sets, and nothing the loop reads is in such a key."""
    e = envs[env]
    arn = e.version_arn(model)
    _refused(e, arn, {**APPROVED, REMOVES: ["reviewed_by"]})
    assert allowed(e.approver, "sagemaker:UpdateModelPackage", arn, {**APPROVED, _sets("reviewed_by"): "me", REMOVES: []})


APPROVER_DENIED_EXPLICITLY = ("sagemaker:StartPipelineExecution", "sagemaker:UpdatePipeline", "sagemaker:CreatePipeline",
                              "sagemaker:CreateTrainingJob", "sagemaker:CreateProcessingJob", "sagemaker:CreateModelPackage")


@pytest.mark.parametrize("action", APPROVER_DENIED_EXPLICITLY)
@pytest.mark.parametrize("env", ENVS)
def test_approver_cannot_train_register_or_edit_pipelines(envs, env, action):
    """GIVEN the approver role
    WHEN it calls ``action`` on this environment's pipelines, jobs, groups or versions (any resource)
    THEN the request is explicitly denied, and stays denied next to an Allow of everything."""
    e = envs[env]
    resources = [e.pipeline_arn(m) for m in e.cfg.models] + e.registry_arns() + [
        e.arn("sagemaker", "training-job/pipelines-abc"), e.arn("sagemaker", "processing-job/pipelines-abc"), "*"]
    for resource in resources:
        for context in ({}, {"sagemaker:ModelApprovalStatus": "PendingManualApproval"}):
            assert evaluate(e.approver.statements, action, resource, context).outcome == EXPLICIT_DENY, _why(
                e.approver, action, resource, context)
            assert not allowed(e.approver.statements + (ALLOW_EVERYTHING,), action, resource, context)


@pytest.mark.parametrize("env", ENVS)
def test_approver_cannot_deploy_pass_roles_or_write_objects(envs, env):
    """GIVEN the approver role
    WHEN it calls cloudformation:UpdateStack on the serving stack, iam:PassRole on any role of the environment
    to any service, or s3:PutObject on any bucket of the environment
    THEN every request is denied."""
    e = envs[env]
    approver = e.approver
    assert not allowed(approver, "cloudformation:UpdateStack", e.stack_arn("Serving"))
    for role in e.iam.roles.values():
        for service in SERVICES:
            context = {"iam:PassedToService": service}
            assert not allowed(approver, "iam:PassRole", role.arn, context), _why(approver, "iam:PassRole", role.arn, context)
    for obj in e.bucket_object_arns():
        assert not allowed(approver, "s3:PutObject", obj), _why(approver, "s3:PutObject", obj)


@pytest.mark.parametrize("env", ENVS)
def test_no_role_but_the_approver_can_change_approval_status(envs, env):
    """GIVEN every role of every stack of the environment except the approver (the rollout parity check's too: it
    only tells people the approver's command)
    WHEN each calls sagemaker:UpdateModelPackage on any version of any of the environment's groups, setting any status
    or naming none
    THEN every request is denied; and the approver is allowed (so the check is not vacuous)."""
    e = envs[env]
    others = [r for r in e.iam.roles.values() if r.key != e.approver.key]
    assert len(others) == len(e.iam.roles) - 1
    statuses = ({}, *({"sagemaker:ModelApprovalStatus": s} for s in ("Approved", "Rejected", "PendingManualApproval")))
    for role in others:
        for arn in e.registry_arns():
            for context in statuses:
                assert not allowed(role, "sagemaker:UpdateModelPackage", arn, context), _why(
                    role, "sagemaker:UpdateModelPackage", arn, context)
    for status in ("Approved", "Rejected"):
        decision = {"sagemaker:ModelApprovalStatus": status}
        assert all(allowed(e.approver, "sagemaker:UpdateModelPackage", e.version_arn(m), decision) for m in e.cfg.models)


# -- deploy handler -------------------------------------------------------------------------
@pytest.mark.parametrize("env", ENVS)
def test_deploy_handler_can_update_only_the_serving_stack(envs, env):
    """GIVEN the deploy-on-approval function's role
    WHEN it calls cloudformation:UpdateStack
    THEN it is allowed on <prefix>-serving of its account and region only: not on the storage, data-pipeline,
    training or operations stacks, a look-alike stack name, or another account's serving stack."""
    e = envs[env]
    handler = e.function_role("deploy-on-approval")
    as_deployer = {"cloudformation:RoleArn": e.deployer.arn}
    assert e.stack_names["Serving"] == f"{e.prefix}-serving"
    assert allowed(handler, "cloudformation:UpdateStack", e.stack_arn("Serving"), as_deployer)
    denied = [e.stack_arn(label) for label in STACKS if label != "Serving"] + [
        e.stack_arn("Serving", account=FOREIGN_ACCOUNT),
        e.arn("cloudformation", f"stack/{e.prefix}-serving-copy/0f1e2d3c-aaaa-bbbb-cccc-1234567890ab"),
        e.arn("cloudformation", f"stack/{e.prefix}-servin/0f1e2d3c-aaaa-bbbb-cccc-1234567890ab"),
    ]
    for arn in denied:
        assert not allowed(handler, "cloudformation:UpdateStack", arn, as_deployer), \
            _why(handler, "cloudformation:UpdateStack", arn, as_deployer)


def _handler_update_context(e: Env) -> dict[str, str]:
    """The condition context of the handler's one UpdateStack request (``deploy_on_approval.deploy``): RoleARN is its
    DEPLOYER_ROLE_ARN variable, as set in the template (tests/handlers/test_deploy_on_approval.py holds the handler
    to sending exactly that), and UsePreviousTemplate, so no TemplateURL or StackPolicyURL; nor ResourceTypes."""
    (function,) = [props for _, _, props in e.iam.resources("AWS::Lambda::Function")
                   if props.get("FunctionName") == f"{e.prefix}-deploy-on-approval"]
    return {"cloudformation:RoleArn": e.iam.resolve("Operations", function["Environment"]["Variables"]["DEPLOYER_ROLE_ARN"])}


# The stack operations CloudFormation runs as a service role: the one named in the request (RoleARN), else the role
# last associated with the stack, which needs no iam:PassRole (UpdateStack/CreateChangeSet API Reference, RoleARN).
# ExecuteChangeSet runs a change set as the role it was created with. DescribeStacks/DescribeStackEvents run nothing.
STACK_OPERATIONS = ("cloudformation:CreateStack", "cloudformation:CreateChangeSet", "cloudformation:ExecuteChangeSet",
                    "cloudformation:DeleteStack", "cloudformation:RollbackStack", "cloudformation:ContinueUpdateRollback",
                    "cloudformation:CancelUpdateStack", "cloudformation:SetStackPolicy")


@pytest.mark.parametrize("env", ENVS)
def test_deploy_handler_updates_the_serving_stack_only_as_the_deployer(envs, env):
    """GIVEN the deploy-on-approval function's role and the serving stack
    WHEN it calls cloudformation:UpdateStack as the handler does (RoleARN = the deployer), without RoleARN (the stack
    would run as the role it was last deployed with: the CDK bootstrap's cfn-exec role, AdministratorAccess by
    default), with a new template URL and no RoleARN, or naming the cfn-exec role or any other role of the environment
    THEN only the handler's own request is allowed; and no other operation that runs the stack as a role is allowed,
    with or without a RoleARN (trialQ finding 1)."""
    e = envs[env]
    handler = e.function_role("deploy-on-approval")
    stack = e.stack_arn("Serving")
    real = _handler_update_context(e)
    assert real == {"cloudformation:RoleArn": f"arn:aws:iam::{e.account}:role/{e.prefix}-serving-deployer"}
    assert allowed(handler, "cloudformation:UpdateStack", stack, real), _why(handler, "cloudformation:UpdateStack", stack, real)
    cfn_exec = f"arn:aws:iam::{e.account}:role/cdk-hnb659fds-cfn-exec-role-{e.account}-{e.region}"
    refused = [{}, {"cloudformation:TemplateUrl": "https://bucket.s3.amazonaws.com/other.json"},
               {"cloudformation:RoleArn": cfn_exec}, {**real, "cloudformation:RoleArn": real["cloudformation:RoleArn"] + "-copy"}]
    refused += [{"cloudformation:RoleArn": role.arn} for role in e.iam.roles.values() if role.arn != e.deployer.arn]
    for context in refused:
        assert not allowed(handler, "cloudformation:UpdateStack", stack, context), \
            _why(handler, "cloudformation:UpdateStack", stack, context)
    for action in STACK_OPERATIONS:
        for context in ({}, real):
            assert not allowed(handler, action, stack, context), _why(handler, action, stack, context)


@pytest.mark.parametrize("env", ENVS)
def test_deploy_handler_can_pass_only_the_deployer_role_to_cloudformation(envs, env):
    """GIVEN the deploy-on-approval function's role
    WHEN it calls iam:PassRole for each role of the environment, to each service (and with no service named)
    THEN only passing <prefix>-serving-deployer to cloudformation.amazonaws.com, and its own retry role to
    scheduler.amazonaws.com (the schedules that retry a busy stack), is allowed."""
    e = envs[env]
    handler = e.function_role("deploy-on-approval")
    assert e.deployer.arn == f"arn:aws:iam::{e.account}:role/{e.prefix}-serving-deployer"
    (retry,) = [r for r in e.iam.roles.values() if r.stack == "Operations" and r.logical_id.startswith("DeployOnApprovalRetryRole")]
    passable = {(e.deployer.key, "cloudformation.amazonaws.com"), (retry.key, "scheduler.amazonaws.com")}
    for role in e.iam.roles.values():
        assert not allowed(handler, "iam:PassRole", role.arn), _why(handler, "iam:PassRole", role.arn)
        for service in SERVICES:
            context = {"iam:PassedToService": service}
            expected = (role.key, service) in passable
            assert allowed(handler, "iam:PassRole", role.arn, context) is expected, _why(handler, "iam:PassRole", role.arn, context)


@pytest.mark.parametrize("env", ENVS)
def test_deploy_handler_cannot_approve_build_models_or_train(envs, env):
    """GIVEN the deploy-on-approval function's role
    WHEN it calls sagemaker:UpdateModelPackage or CreateModelPackage (so it can neither approve nor register an
    already approved version), CreateModel, CreateEndpoint, CreateEndpointConfig or StartPipelineExecution on
    this environment's resources
    THEN every request is denied (it can only ask CloudFormation, as the deployer, to update the stack)."""
    e = envs[env]
    handler = e.function_role("deploy-on-approval")
    requests = [(a, arn) for arn in e.registry_arns() for a in ("sagemaker:UpdateModelPackage", "sagemaker:CreateModelPackage")]
    requests += [("sagemaker:StartPipelineExecution", e.pipeline_arn(m)) for m in e.cfg.models]
    requests += [(a, e.arn("sagemaker", f"{kind}/{e.prefix}-{m}"))
                 for m in e.cfg.models
                 for a, kind in (("sagemaker:CreateModel", "model"), ("sagemaker:CreateEndpointConfig", "endpoint-config"))]
    for action, arn in requests:
        for context in ({}, {"sagemaker:ModelApprovalStatus": "Approved"}):
            assert not allowed(handler, action, arn, context), _why(handler, action, arn, context)
    for m in e.cfg.models:
        request = {"endpoint": e.arn("sagemaker", f"endpoint/{e.prefix}-{m}"), "endpoint-config": e.endpoint_config_arn()}
        for action in ("sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint"):
            assert not authorize(handler, action, request).allowed, f"{handler} {action} {request}"


# -- deployer (CloudFormation service role of the serving stack) ---------------------------
@pytest.mark.parametrize("env", ENVS)
def test_deployer_cannot_touch_the_registry_pipelines_or_objects(envs, env):
    """GIVEN the serving deployer role
    WHEN it calls registry writes (Create/UpdateModelPackage), pipeline actions, or S3 object reads/writes
    THEN every request is denied."""
    e = envs[env]
    deployer = e.deployer
    requests = [(a, arn) for arn in e.registry_arns()
                for a in ("sagemaker:UpdateModelPackage", "sagemaker:CreateModelPackage", "sagemaker:DeleteModelPackage")]
    requests += [(a, e.pipeline_arn(m)) for m in e.cfg.models
                 for a in ("sagemaker:StartPipelineExecution", "sagemaker:UpdatePipeline", "sagemaker:CreatePipeline",
                           "sagemaker:DeletePipeline")]
    requests += [(a, obj) for obj in e.bucket_object_arns() for a in ("s3:PutObject", "s3:GetObject", "s3:DeleteObject")]
    for action, arn in requests:
        for context in ({}, {"sagemaker:ModelApprovalStatus": "Approved"}):
            assert not allowed(deployer, action, arn, context), _why(deployer, action, arn, context)


@pytest.mark.parametrize("env", ENVS)
def test_deployer_passes_only_serving_model_roles_to_sagemaker_and_batch_roles_to_scheduler(envs, env):
    """GIVEN the serving deployer role, the roles of the environment's SageMaker models and batch schedules
    WHEN it calls iam:PassRole for each role of the environment to each service
    THEN it may pass exactly the serving model roles to sagemaker.amazonaws.com and the batch scheduler roles
    to scheduler.amazonaws.com — not the training roles (same construct ids), not itself, nothing else."""
    e = envs[env]
    model_roles, scheduler_roles = e.serving_model_roles(), e.batch_scheduler_roles()
    assert len(model_roles) == len(e.cfg.models)
    for role in e.iam.roles.values():
        for service in SERVICES:
            context = {"iam:PassedToService": service}
            expected = (role.arn in model_roles and service == "sagemaker.amazonaws.com") or (
                role.arn in scheduler_roles and service == "scheduler.amazonaws.com")
            assert allowed(e.deployer, "iam:PassRole", role.arn, context) is expected, _why(e.deployer, "iam:PassRole", role.arn, context)


@pytest.mark.parametrize("env", ENVS)
def test_deployer_changes_only_this_environments_endpoints(envs, env):
    """GIVEN the serving deployer role
    WHEN it calls endpoint-changing actions on an endpoint that is not one of this environment's
    THEN every request is denied."""
    e = envs[env]
    foreign = e.arn("sagemaker", "endpoint/another-teams-endpoint")
    for action in ("sagemaker:DeleteEndpoint", "sagemaker:UpdateEndpointWeightsAndCapacities"):
        assert not allowed(e.deployer, action, foreign), _why(e.deployer, action, foreign)
    for action in ("sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint"):
        # Denied on the endpoint even with an endpoint-config the deployer may use.
        decision = authorize(e.deployer, action, {"endpoint": foreign, "endpoint-config": e.endpoint_config_arn()})
        assert (decision.outcome, decision.resource) == ("ImplicitDeny", foreign), f"{action}: {decision}"


@pytest.mark.parametrize("env", ENVS)
def test_deployer_creates_and_updates_its_endpoints_with_the_configs_cloudformation_names(envs, env):
    """GIVEN the serving deployer role and each endpoint of the environment
    WHEN CreateEndpoint/UpdateEndpoint names the endpoint and an endpoint-config with a name CloudFormation
    generated (SageMaker authorizes both resources: issue #17)
    THEN it is allowed -- and denied with an endpoint-config of another account or region."""
    e = envs[env]
    endpoints = [props["EndpointName"] for _, _, props in e.iam.resources("AWS::SageMaker::Endpoint")]
    if not endpoints:
        pytest.skip(f"{env} serves no model from an endpoint (batch only); test_deploy_permissions proves the "
                    "endpoint path on the modes environment")
    for name in endpoints:
        endpoint = e.arn("sagemaker", f"endpoint/{name}")
        for action in ("sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint"):
            decision = authorize(e.deployer, action, {"endpoint": endpoint, "endpoint-config": e.endpoint_config_arn()})
            assert decision.allowed, f"{action} {endpoint}: {decision}"
            foreign = e.endpoint_config_arn(account=FOREIGN_ACCOUNT)
            assert not authorize(e.deployer, action, {"endpoint": endpoint, "endpoint-config": foreign}).allowed


@pytest.mark.parametrize("env", ENVS)
def test_deployer_cannot_change_schedules_it_does_not_own(envs, env):
    """GIVEN the serving deployer role
    WHEN it deletes or updates a schedule that is not one of this environment's batch schedules
    THEN the request is denied."""
    e = envs[env]
    foreign = e.arn("scheduler", "schedule/default/another-teams-nightly-job")
    for action in ("scheduler:DeleteSchedule", "scheduler:UpdateSchedule"):
        assert not allowed(e.deployer, action, foreign), _why(e.deployer, action, foreign)


# -- serving stack parameters ---------------------------------------------------------------
def _handler_parameters(e: Env) -> dict[str, str]:
    """Group name -> the Serving parameter the deploy handler sets for that group (its MODEL_PARAMETERS)."""
    (function,) = [props for _, _, props in e.iam.resources("AWS::Lambda::Function")
                   if props.get("FunctionName") == f"{e.prefix}-deploy-on-approval"]
    return json.loads(function["Environment"]["Variables"]["MODEL_PARAMETERS"])


def _package_patterns(e: Env) -> dict[str, re.Pattern[str]]:
    """Group name -> compiled AllowedPattern of the Serving parameter the deploy handler sets for that group."""
    parameters = e.templates["Serving"]["Parameters"]
    # CloudFormation tests AllowedPattern against the whole value (Java String.matches): fullmatch below.
    return {group: re.compile(parameters[name]["AllowedPattern"]) for group, name in _handler_parameters(e).items()}


@pytest.mark.parametrize("env", ENVS)
def test_deploy_handler_sets_one_parameter_per_group_of_the_environment(envs, env):
    """GIVEN the deploy handler's group -> parameter mapping WHEN compared with the environment's models and
    the Serving stack's parameters THEN every group of the environment (and no other) maps to its own Serving
    parameter, and each of those parameters has an AllowedPattern."""
    e = envs[env]
    mapping = _handler_parameters(e)
    assert set(mapping) == {e.group(m) for m in e.cfg.models}
    assert len(set(mapping.values())) == len(mapping)
    parameters = e.templates["Serving"]["Parameters"]
    assert [name for name in mapping.values() if "AllowedPattern" not in parameters.get(name, {})] == []


@pytest.mark.parametrize(("env", "model"), ENV_MODELS)
def test_serving_parameter_admits_only_versions_of_its_group_in_this_account_and_region(envs, env, model):
    """GIVEN the Serving parameter the handler sets for ``model``'s group, its AllowedPattern compiled with re
    WHEN version ARNs are tested against it
    THEN it admits "" (not deployed) and versions of that group in this account and region, and rejects
    other groups, other accounts and regions, the group ARN itself and malformed or padded versions."""
    e = envs[env]
    pattern = _package_patterns(e)[e.group(model)]
    other_region = "us-east-1" if e.region != "us-east-1" else "eu-west-1"
    good = ["", e.version_arn(model, 1), e.version_arn(model, 1234)]
    bad = [
        e.version_arn(model, account=FOREIGN_ACCOUNT),
        e.version_arn(model).replace(f":{e.region}:", f":{other_region}:"),
        e.group_arn(model),
        e.arn("sagemaker", f"model-package/{e.group(model)}"),
        e.arn("sagemaker", f"model-package/{e.group(model)}/"),
        e.arn("sagemaker", f"model-package/{e.group(model)}/latest"),
        e.arn("sagemaker", f"model-package/{e.group(model)}/3/extra"),
        e.arn("sagemaker", f"model-package/{e.group(model)}-shadow/3"),
        e.arn("sagemaker", f"model-package/x{e.group(model)}/3"),
        e.arn("sagemaker", f"model-package/{e.group(model).upper()}/3"),
        e.arn("sagemaker", "model-package/unversioned-package"),
        e.version_arn(model) + "\n",
        " " + e.version_arn(model),
        e.version_arn(model) + "\n" + e.version_arn(model, account=FOREIGN_ACCOUNT),
    ]
    bad += [e.version_arn(other) for other in e.cfg.models if other != model]
    bad += [e.version_arn(model).replace(f"{e.prefix}-", f"{CONFIG.project}-{other}-")
            for other in ENVS if other != env]
    assert [v for v in good if not pattern.fullmatch(v)] == []
    assert [v for v in bad if pattern.fullmatch(v)] == []


# -- retrain trigger ------------------------------------------------------------------------
@pytest.mark.parametrize("env", ENVS)
def test_retrain_trigger_starts_only_this_environments_training_pipelines(envs, env):
    """GIVEN the retrain trigger function's role
    WHEN it calls sagemaker:StartPipelineExecution
    THEN it may start each training pipeline of the environment, and no other pipeline (another environment's
    name, another account, another pipeline)."""
    e = envs[env]
    trigger = e.function_role("retrain-trigger")
    for m in e.cfg.models:
        assert allowed(trigger, "sagemaker:StartPipelineExecution", e.pipeline_arn(m)), _why(
            trigger, "sagemaker:StartPipelineExecution", e.pipeline_arn(m))
    denied = [e.arn("sagemaker", f"pipeline/{CONFIG.project}-{other}-{m}-training")
              for other in ENVS if other != env for m in e.cfg.models]
    denied += [e.arn("sagemaker", f"pipeline/{e.prefix}-{m}-training", account=FOREIGN_ACCOUNT) for m in e.cfg.models]
    denied += [e.arn("sagemaker", f"pipeline/{e.prefix}-something-else")]
    for arn in denied:
        assert not allowed(trigger, "sagemaker:StartPipelineExecution", arn), _why(trigger, "sagemaker:StartPipelineExecution", arn)


REGISTRY_ACTIONS = ("sagemaker:CreateModelPackage", "sagemaker:UpdateModelPackage", "sagemaker:DeleteModelPackage",
                    "sagemaker:DescribeModelPackage", "sagemaker:ListModelPackages", "sagemaker:CreateModelPackageGroup",
                    "sagemaker:DeleteModelPackageGroup", "sagemaker:PutModelPackageGroupPolicy")


@pytest.mark.parametrize("env", ENVS)
def test_retrain_trigger_can_do_nothing_in_the_registry_or_to_pipeline_definitions(envs, env):
    """GIVEN the retrain trigger function's role
    WHEN it calls any registry action on the environment's groups and versions, or edits a pipeline or passes a role
    THEN every request is denied."""
    e = envs[env]
    trigger = e.function_role("retrain-trigger")
    requests = [(a, arn) for a in REGISTRY_ACTIONS for arn in e.registry_arns()]
    requests += [(a, e.pipeline_arn(m)) for m in e.cfg.models
                 for a in ("sagemaker:UpdatePipeline", "sagemaker:CreatePipeline", "sagemaker:DeletePipeline")]
    requests += [("iam:PassRole", r.arn) for r in e.iam.roles.values()]
    for action, arn in requests:
        assert not allowed(trigger, action, arn, {"iam:PassedToService": "sagemaker.amazonaws.com"}), _why(trigger, action, arn)


# -- IAM conditions (issue #13, item 8) ---------------------------------------------------------
def _storage_key_arn(e: Env, logical_prefix: str) -> str:
    (lid,) = [lid for label, lid, _ in e.iam.resources("AWS::KMS::Key") if label == "Storage" and lid.startswith(logical_prefix)]
    return e.iam.resolve("Storage", {"Fn::GetAtt": [lid, "Arn"]})


def _alarm_names(e: Env, label: str) -> list[str]:
    return [e.iam.resolve(lab, props["AlarmName"]) for lab, _, props in e.iam.resources("AWS::CloudWatch::Alarm") if lab == label]


def _alarm_arn(e: Env, name: str, **kw) -> str:
    return e.arn("cloudwatch", f"alarm:{name}", **kw)


ALARM_CHANGES = ("cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms", "cloudwatch:TagResource", "cloudwatch:UntagResource")


@pytest.mark.parametrize("env", ENVS)
def test_deployer_creates_grants_on_the_data_key_only_for_an_aws_service(envs, env):
    """GIVEN the serving deployer role and the data key
    WHEN it calls kms:CreateGrant on the key with kms:GrantIsForAWSResource true (SageMaker creating the
    endpoint's volume grant on its behalf), false (the role granting the key itself), or absent
    THEN only the first is allowed (before issue #13 all three were); DescribeKey stays allowed."""
    e = envs[env]
    key = _storage_key_arn(e, "DataLakeKey")
    deployer = e.deployer
    assert allowed(deployer, "kms:CreateGrant", key, {"kms:GrantIsForAWSResource": True}), _why(
        deployer, "kms:CreateGrant", key, {"kms:GrantIsForAWSResource": True})
    for context in ({"kms:GrantIsForAWSResource": False}, {}):
        assert not allowed(deployer, "kms:CreateGrant", key, context), _why(deployer, "kms:CreateGrant", key, context)
    assert allowed(deployer, "kms:DescribeKey", key)
    # No other role of the environment may create grants on its own either.
    for role in e.iam.roles.values():
        assert not allowed(role, "kms:CreateGrant", key, {"kms:GrantIsForAWSResource": False}), _why(
            role, "kms:CreateGrant", key, {"kms:GrantIsForAWSResource": False})


@pytest.mark.parametrize("env", ENVS)
def test_deployer_changes_only_the_serving_stacks_alarms(envs, env):
    """GIVEN every alarm of the Operations stack (retrain alarms ``<prefix>-<model>-retrain-*``, monitor-unhealthy,
    endpoint and handler alarms, several named ``<endpoint>-...``) and every alarm of the Serving stack
    WHEN the deployer calls PutMetricAlarm, DeleteAlarms, TagResource or UntagResource on them
    THEN each Operations alarm is denied (the ``<endpoint>-*`` grant allowed them before issue #13) and each
    Serving alarm (rollout errors/latency/client errors/parity, scale-from-zero, idle scale-in) is allowed."""
    e = envs[env]
    deployer = e.deployer
    operations, serving = _alarm_names(e, "Operations"), _alarm_names(e, "Serving")
    retrain = [n for m in e.cfg.models for n in operations if n.startswith(f"{e.prefix}-{m}-retrain-")]
    assert retrain and any(n.endswith("-monitor-unhealthy") for n in operations)
    endpoints = [e.iam.resolve(label, p["EndpointName"]) for label, _, p in e.iam.resources("AWS::SageMaker::Endpoint")]
    # Some Operations alarm shares an endpoint's name as prefix: the old pattern really covered them.
    assert any(n.startswith(f"{ep}-") for ep in endpoints for n in operations) or not endpoints
    for name in operations:
        for action in ALARM_CHANGES:
            assert not allowed(deployer, action, _alarm_arn(e, name)), _why(deployer, action, _alarm_arn(e, name))
    for name in serving:
        for action in ALARM_CHANGES + ("cloudwatch:DescribeAlarms",):
            assert allowed(deployer, action, _alarm_arn(e, name)), _why(deployer, action, _alarm_arn(e, name))
    # Three rollback alarms per endpoint (5xx, latency, 4xx), a fourth (parity) for a compiled model's, an async
    # endpoint's scale-out alarm and an autoscaled real-time endpoint's idle scale-in alarm.
    assert len(serving) == 3 * len(endpoints) + sum(
        n.endswith(("-backlog-without-capacity", "-rollout-parity", "-idle-scale-in")) for n in serving)


@pytest.mark.parametrize("env", ENVS)
def test_serving_roles_write_but_cannot_delete_captured_traffic(envs, env):
    """GIVEN every execution role of a SageMaker model in the environment and the inference bucket
    WHEN it calls s3:DeleteObject on ``capture/<model>/...`` of any model
    THEN every request is denied (each role could delete its own model's capture before issue #13); and a role
    that writes capture may still s3:PutObject there (so the check is not vacuous)."""
    e = envs[env]
    (bucket,) = [e.iam.resolve(label, p["BucketName"]) for label, _, p in e.iam.resources("AWS::S3::Bucket")
                 if "inference" in e.iam.resolve(label, p["BucketName"])]
    captures = {m: f"arn:aws:s3:::{bucket}/capture/{m}/2026/12/02/10/part-0001.jsonl" for m in e.cfg.models}
    roles = [e.iam.role(arn) for arn in e.serving_model_roles()]
    assert roles
    writers = 0
    for role in roles:
        for obj in captures.values():
            assert not allowed(role, "s3:DeleteObject", obj), _why(role, "s3:DeleteObject", obj)
        writers += any(allowed(role, "s3:PutObject", obj) for obj in captures.values())
    assert writers >= 1


# Every serving mode: each is proven by one of the frozen scenarios below (sample: real-time and serverless; modes: async
# and batch; pooled: multi-model), whatever models the user's config serves.
SERVING_MODES = {"realtime", "serverless", "async", "batch", "multi_model"}


def _serving_roles(iam: IamModel, config, env: str) -> list[tuple[str, Role, str | None]]:
    """``(mode, role, model whose sealed artefacts it serves or None)`` of every execution role of a SageMaker model in
    ``env``: each single model's own role, and each multi-model endpoint's (which serves staged copies instead)."""
    def one(prefix: str) -> Role:
        (role,) = [r for r in iam.roles.values() if r.stack == "Serving" and re.fullmatch(rf"{prefix}[0-9A-F]{{8}}", r.logical_id)]
        return role

    environment = config.environments[env]
    found = []
    for model in config.models_of(environment):
        serving = config.serving_of(environment, model)
        if serving.mode == "multi_model":
            found.append(("multi_model", one(f"{pascal(serving.multi_model.endpoint)}MultiModelRole"), None))
        else:
            found.append((serving.mode, one(f"{pascal(model.name)}Role"), model.name))
    return found


def test_no_serving_role_can_read_training_data_the_frozen_test_set_or_another_models_pipeline(request):
    """GIVEN every serving role of every environment of the user's config, the frozen sample and the modes and pooled
    scenarios (real-time, serverless, async, batch transform, multi-model)
    WHEN it asks for objects under ``pipelines/<model>/`` of every model of its environment, its own included
    THEN it may read only its own model's sealed artefacts (a multi-model role none: it serves staged copies), and
    never the prepared training and validation splits (``work/``), the frozen test set, the reports or the unsealed
    training output of any model, nor list them (trialQ finding 3: before, each read all of ``pipelines/<model>/``)."""
    seen: set[str] = set()
    for fixture in ("synthesized", "sample", "modes", "pooled"):
        built = request.getfixturevalue(fixture)
        for env in sorted({s.stage for s in assembly_stacks(built.outdir)}):
            iam = assembly_model(built.outdir, built.config, env)
            (bucket,) = [name for label, _, p in iam.resources("AWS::S3::Bucket")
                         if "-artifacts-" in (name := iam.resolve(label, p["BucketName"]))]
            models = built.config.environments[env].models
            roles = _serving_roles(iam, built.config, env)
            executing = {iam.role(iam.resolve(label, p["ExecutionRoleArn"])).key
                         for label, _, p in iam.resources("AWS::SageMaker::Model")}
            assert {role.key for _, role, _ in roles} == executing, f"{fixture}/{env}: a serving role the test does not know"
            for mode, role, own in roles:
                seen.add(mode)
                for model in models:
                    keys = [f"{work_prefix(model)}exec-1/prepare/train/part-0.parquet",
                            f"{work_prefix(model)}exec-1/prepare/validation/part-0.parquet",
                            f"{model_prefix(model)}frozen-test/test.parquet",
                            f"{model_prefix(model)}exec-1/evaluation/evaluation.json",
                            f"{model_prefix(model)}exec-1/model/model.tar.gz"]
                    sealed = sealed_key(sealed_prefix(model), "ab" * 32)
                    if model == own:
                        assert allowed(role, "s3:GetObject", f"arn:aws:s3:::{bucket}/{sealed}"), f"{fixture}/{env} {mode} {role}"
                    else:
                        keys.append(sealed)
                    for key in keys:
                        obj = f"arn:aws:s3:::{bucket}/{key}"
                        for action in ("s3:GetObject", "s3:GetObjectVersion"):
                            assert not allowed(role, action, obj), f"{fixture}/{env} {mode}: {_why(role, action, obj)}"
                        listing = {"s3:prefix": key}
                        assert not allowed(role, "s3:ListBucket", f"arn:aws:s3:::{bucket}", listing), \
                            f"{fixture}/{env} {mode}: {_why(role, 's3:ListBucket', bucket, listing)}"
    assert seen >= SERVING_MODES, f"modes not proven: {sorted(SERVING_MODES - seen)}"


def _topic_policy(e: Env) -> tuple[str, dict]:
    """The notification topic's ARN and policy (not the watchdog's: no rule publishes there)."""
    (found,) = [(label, p) for label, lid, p in e.iam.resources("AWS::SNS::TopicPolicy")
                if label == "Operations" and lid.startswith("NotificationsPolicy")]
    label, props = found
    return e.iam.resolve(label, props["Topics"][0]), e.iam.resolve(label, props["PolicyDocument"])


@pytest.mark.parametrize("env", ENVS)
def test_only_this_environments_rules_may_publish_to_the_notification_topic(envs, env):
    """GIVEN the notification topic's policy, as it applies to events.amazonaws.com
    WHEN EventBridge publishes for each rule that targets the topic (this account, over TLS)
    THEN it is allowed; for another rule, another account, or with no source at all it is denied (the
    unconditioned grant of targets.SnsTopic allowed all of these before issue #13)."""
    e = envs[env]
    topic, document = _topic_policy(e)
    statements = service_statements(document, "events.amazonaws.com", source="Operations/NotificationsPolicy")
    rules = [e.iam.resolve(label, {"Fn::GetAtt": [lid, "Arn"]}) for label, lid, p in e.iam.resources("AWS::Events::Rule")
             if label == "Operations" and any(e.iam.resolve(label, t["Arn"]) == topic for t in p.get("Targets", []))]
    # Pipeline, rollout, ETL, raw-crawler and drift-monitor job failures, versions awaiting approval, changes to the
    # environment's keys, endpoints lost when a model has one, batch transform failures when a model is served in batch, and a native
    # Model Monitor's job failures per model that opts into it.
    batch = any(CONFIG.serving_of(e.cfg, m).mode == "batch" for m in CONFIG.models_of(e.cfg))
    endpoint = any(CONFIG.serving_of(e.cfg, m).mode != "batch" for m in CONFIG.models_of(e.cfg))
    native = sum(CONFIG.serving_of(e.cfg, m).native_model_monitor for m in CONFIG.models_of(e.cfg))
    assert len(rules) == 7 + endpoint + batch + native, rules
    tls = {"aws:SecureTransport": True}
    for rule in rules:
        good = {**tls, "aws:SourceAccount": e.account, "aws:SourceArn": rule}
        assert evaluate(statements, "sns:Publish", topic, good).allowed, (rule, evaluate(statements, "sns:Publish", topic, good))
        assert not evaluate(statements, "sns:Publish", topic, {**good, "aws:SourceAccount": FOREIGN_ACCOUNT}).allowed
    other_rule = e.arn("events", "rule/somebody-elses-rule")
    for context in ({**tls, "aws:SourceAccount": e.account, "aws:SourceArn": other_rule},
                    {**tls, "aws:SourceAccount": FOREIGN_ACCOUNT, "aws:SourceArn": e.arn("events", "rule/x", account=FOREIGN_ACCOUNT)},
                    tls):
        assert not evaluate(statements, "sns:Publish", topic, context).allowed, context


@pytest.mark.parametrize("env", ENVS)
def test_only_this_accounts_budgets_may_publish_to_the_notification_topic(envs, env):
    """GIVEN the notification topic's policy, as it applies to budgets.amazonaws.com, and the ops key's
    WHEN AWS Budgets publishes a notice of a budget of this account (over TLS), of another account's, or with no source
    THEN with a budget configured only the first is allowed, and Budgets may use the ops key for it; without one
    Budgets may do neither."""
    e = envs[env]
    topic, document = _topic_policy(e)
    statements = service_statements(document, "budgets.amazonaws.com", source="Operations/NotificationsPolicy")
    (lid, props), = [(lid, p) for label, lid, p in e.iam.resources("AWS::KMS::Key") if label == "Storage" and lid.startswith("OpsKey")]
    key = e.iam.resolve("Storage", {"Fn::GetAtt": [lid, "Arn"]})
    key_statements = service_statements(e.iam.resolve("Storage", props["KeyPolicy"]), "budgets.amazonaws.com", source=f"Storage/{lid}")
    tls = {"aws:SecureTransport": True}
    budget = f"arn:aws:budgets::{e.account}:budget/{e.prefix}-monthly-cost-0123abcd"
    good = {**tls, "aws:SourceAccount": e.account, "aws:SourceArn": budget}
    configured = e.cfg.budget is not None
    assert evaluate(statements, "sns:Publish", topic, good).allowed is configured
    assert evaluate(key_statements, "kms:GenerateDataKey", key).allowed is configured
    foreign = {**tls, "aws:SourceAccount": FOREIGN_ACCOUNT, "aws:SourceArn": f"arn:aws:budgets::{FOREIGN_ACCOUNT}:budget/x"}
    for context in (foreign, {**good, "aws:SourceAccount": FOREIGN_ACCOUNT}, tls):
        assert not evaluate(statements, "sns:Publish", topic, context).allowed, context


@pytest.mark.parametrize("env", ENVS)
def test_every_alarm_that_notifies_a_topic_may_publish_to_it_and_no_other_environments_alarm_may(envs, env):
    """GIVEN every alarm of the environment with an SNS action, and that topic's policy as it applies to
    cloudwatch.amazonaws.com
    WHEN CloudWatch publishes for the alarm (this account, over TLS)
    THEN it is allowed: a topic with a policy of its own has lost SNS's default one, and before this an alarm's
    notification was refused ("not authorized to perform: SNS:Publish"); an alarm of another environment of the
    account, of a sibling prefix or of another account is refused."""
    e = envs[env]
    topics = {e.iam.resolve(label, p["Topics"][0]): (label, e.iam.resolve(label, p["PolicyDocument"]))
              for label, _, p in e.iam.resources("AWS::SNS::TopicPolicy")}
    tls = {"aws:SecureTransport": True}
    notifying = []
    for label, _, props in e.iam.resources("AWS::CloudWatch::Alarm"):
        for action in props.get("AlarmActions", []) + props.get("OKActions", []):
            resources = e.templates[label]["Resources"]
            if not (isinstance(action, dict) and resources.get(action.get("Ref"), {}).get("Type") == "AWS::SNS::Topic"):
                continue  # not an SNS action (the app's alarms have no others today)
            topic = e.iam.resolve(label, action)
            name = e.iam.resolve(label, props["AlarmName"])
            notifying.append(name)
            assert topic in topics, (name, topic)  # every topic an alarm notifies has its policy in the app
            statements = service_statements(topics[topic][1], "cloudwatch.amazonaws.com", source=f"{topics[topic][0]}/topic")
            context = {**tls, "aws:SourceAccount": e.account, "aws:SourceArn": _alarm_arn(e, name)}
            assert evaluate(statements, "sns:Publish", topic, context).allowed, (name, context)
            for other in [name.replace(e.prefix, f"{CONFIG.project}-{o}", 1) for o in ENVS if o != env] + [f"{e.prefix}x-a"]:
                assert not evaluate(statements, "sns:Publish", topic, {**context, "aws:SourceArn": _alarm_arn(e, other)}).allowed
            foreign = {**tls, "aws:SourceAccount": FOREIGN_ACCOUNT,
                       "aws:SourceArn": _alarm_arn(e, name, account=FOREIGN_ACCOUNT)}
            assert not evaluate(statements, "sns:Publish", topic, foreign).allowed
    assert notifying


@pytest.mark.parametrize("key_prefix", ["OpsKey", "WatchdogKey"])
@pytest.mark.parametrize("env", ENVS)
def test_the_keys_of_the_alarm_topics_serve_only_this_environments_alarms(envs, env, key_prefix):
    """GIVEN the ops key's policy, and the notification watchdog's key's, as it applies to cloudwatch.amazonaws.com
    WHEN CloudWatch asks for a data key to publish an alarm of this environment, of another environment of the
    same account, or of another account
    THEN only the first is allowed (before issue #13 any alarm of the account was)."""
    e = envs[env]
    (lid, props), = [(lid, p) for label, lid, p in e.iam.resources("AWS::KMS::Key") if label == "Storage" and lid.startswith(key_prefix)]
    key = e.iam.resolve("Storage", {"Fn::GetAtt": [lid, "Arn"]})
    statements = service_statements(e.iam.resolve("Storage", props["KeyPolicy"]), "cloudwatch.amazonaws.com", source=f"Storage/{lid}")
    own = _alarm_names(e, "Operations")
    assert own
    for name in own:
        context = {"aws:SourceAccount": e.account, "aws:SourceArn": _alarm_arn(e, name)}
        assert evaluate(statements, "kms:GenerateDataKey", key, context).allowed, (name, context)
    others = [n.replace(e.prefix, f"{CONFIG.project}-{other}", 1) for other in ENVS if other != env for n in own[:1]]
    others.append(f"{e.prefix}x-something")  # a sibling prefix
    for name in others:
        context = {"aws:SourceAccount": e.account, "aws:SourceArn": _alarm_arn(e, name)}
        assert not evaluate(statements, "kms:GenerateDataKey", key, context).allowed, (name, context)
    foreign = {"aws:SourceAccount": FOREIGN_ACCOUNT, "aws:SourceArn": _alarm_arn(e, own[0], account=FOREIGN_ACCOUNT)}
    assert not evaluate(statements, "kms:GenerateDataKey", key, foreign).allowed


@pytest.mark.parametrize("env", ENVS)
def test_every_service_principal_in_a_resource_policy_is_bound_to_its_source(envs, env):
    """GIVEN every Allow to an AWS service principal in a resource policy of the environment (topic, queue,
    bucket and key policies)
    WHEN its conditions are read
    THEN each names the source: aws:SourceArn or aws:SourceAccount (CloudWatch Logs: its log-group encryption
    context), so no other account's resource can make the service act on ours. The one exception is EventBridge
    on the ops key, which must not carry one (AWS does not send them to KMS for EventBridge-to-encrypted-topic
    deliveries, which would then fail); its rules are bound in the topic and queue policies, checked here too. So is
    AWS Budgets when the environment has a budget (no guide says Budgets sends them to KMS; one it does not send would
    drop every budget notice): the topic policy binds it to this account's budgets
    (test_only_this_accounts_budgets_may_publish_to_the_notification_topic)."""
    e = envs[env]
    bound = {"aws:sourcearn", "aws:sourceaccount", "kms:encryptioncontext:aws:logs:arn"}
    checked = 0
    for label, template in e.templates.items():
        for lid, resource in template["Resources"].items():
            props = resource.get("Properties", {})
            if resource["Type"].startswith("AWS::IAM::"):
                continue
            for key in ("PolicyDocument", "KeyPolicy"):
                for statement in (props.get(key) or {}).get("Statement", []):
                    principal = statement.get("Principal")
                    if statement["Effect"] != "Allow" or not (isinstance(principal, dict) and "Service" in principal):
                        continue
                    checked += 1
                    if key == "KeyPolicy" and statement.get("Sid") == "AllowPublishersUnbound":
                        unbound = {"events.amazonaws.com", *(("budgets.amazonaws.com",) if e.cfg.budget else ())}
                        services = principal["Service"] if isinstance(principal["Service"], list) else [principal["Service"]]
                        assert set(services) == unbound, f"{label}/{lid}: only EventBridge (and Budgets with a budget) is unbound"
                        continue
                    keys = {k.lower() for by_key in (statement.get("Condition") or {}).values() for k in by_key}
                    assert keys & bound, f"{label}/{lid} {statement.get('Sid')}: {principal} without a source condition"
    assert checked > 0


@pytest.mark.parametrize("env", ENVS)
def test_approver_cannot_start_retraining_indirectly(envs, env):
    """GIVEN the approver role, the retrain trigger function and the retrain alarms of the Operations stack
    WHEN it calls lambda:InvokeFunction / InvokeAsync on the function (or a version of it), or
    cloudwatch:SetAlarmState on any retrain alarm
    THEN every request is explicitly denied, and stays denied next to an Allow of everything; setting the state of
    an alarm that starts nothing (monitor-unhealthy) is not explicitly denied (the deny is narrow)."""
    e = envs[env]
    approver = e.approver
    function = e.arn("lambda", f"function:{e.prefix}-retrain-trigger")
    e.function_role("retrain-trigger")  # the function of that name exists in the environment
    for arn in (function, f"{function}:$LATEST", f"{function}:1"):
        for action in ("lambda:InvokeFunction", "lambda:InvokeAsync"):
            assert evaluate(approver.statements, action, arn).outcome == EXPLICIT_DENY, _why(approver, action, arn)
            assert not allowed(approver.statements + (ALLOW_EVERYTHING,), action, arn)
    operations = _alarm_names(e, "Operations")
    retrain = [n for m in e.cfg.models for n in operations if n.startswith(f"{e.prefix}-{m}-retrain-")]
    assert len(retrain) == len(RETRAIN_ALARMS) * len(e.cfg.models), retrain
    for name in retrain:
        arn = _alarm_arn(e, name)
        assert evaluate(approver.statements, "cloudwatch:SetAlarmState", arn).outcome == EXPLICIT_DENY, _why(
            approver, "cloudwatch:SetAlarmState", arn)
        assert not allowed(approver.statements + (ALLOW_EVERYTHING,), "cloudwatch:SetAlarmState", arn)
    unhealthy = _alarm_arn(e, next(n for n in operations if n.endswith("-monitor-unhealthy")))
    assert allowed(approver.statements + (ALLOW_EVERYTHING,), "cloudwatch:SetAlarmState", unhealthy)
    # Approving is still allowed.
    assert all(allowed(approver, "sagemaker:UpdateModelPackage", e.version_arn(m), {"sagemaker:ModelApprovalStatus": "Approved"})
               for m in e.cfg.models)


def _artifacts_policy(e: Env) -> tuple[str, tuple[Statement, ...]]:
    """The artifacts bucket's name and its policy's statements that bind every principal (``{"AWS": "*"}``), with the
    bucket's ARN in place of the evaluator's stand-in for its GetAtt (the name is fixed)."""
    return _lake_policy(e, "artifacts")


def _lake_policy(e: Env, kind: str) -> tuple[str, tuple[Statement, ...]]:
    """:func:`_artifacts_policy` of the lake bucket ``kind`` (``artifacts``, ``inference``, ...)."""
    (found,) = [(lid, props) for label, lid, props in e.iam.resources("AWS::S3::Bucket")
                if label == "Storage" and f"-{kind}-" in e.iam.resolve(label, props["BucketName"])]
    logical_id, props = found
    name = e.iam.resolve("Storage", props["BucketName"])
    (policy,) = [p for label, _, p in e.iam.resources("AWS::S3::BucketPolicy")
                 if label == "Storage" and p["Bucket"] == {"Ref": logical_id}]
    document = json.loads(json.dumps(e.iam.resolve("Storage", policy["PolicyDocument"]))
                          .replace(f"${{Storage/{logical_id}.Arn}}", f"arn:aws:s3:::{name}"))
    return name, service_statements(document, "s3.amazonaws.com", source="Storage/ArtifactsPolicy")


@pytest.mark.parametrize("env", ENVS)
def test_the_approval_ledger_is_write_once_for_everyone_and_written_only_by_the_deploy_handler(envs, env):
    """GIVEN the artifacts bucket's policy and every role of the environment
    WHEN a record below approval-ledger/<model>/ is written, overwritten or deleted
    THEN the deploy handler may create it with If-None-Match and nothing else there (no read, no delete); a put without
    If-None-Match, with If-Match, and any delete is denied by the bucket policy to every principal, an administrator
    included; and no other role (the training roles, which write pipelines/<model>/, the approver) may create one."""
    e = envs[env]
    bucket, policy = _artifacts_policy(e)
    tls = {"aws:SecureTransport": "true", "s3:TlsVersion": "1.3"}
    handler = e.function_role("deploy-on-approval")
    for model in e.cfg.models:
        record = f"arn:aws:s3:::{bucket}/{ledger_key(model, 7, dt.datetime(2027, 1, 1), 'Approved', 'ab12cd34', '20261201T000000Z')}"
        create = {**tls, "s3:if-none-match": "*"}
        assert evaluate(handler.statements + policy, "s3:PutObject", record, create).allowed
        for statements in (handler.statements + policy, (ALLOW_EVERYTHING, *policy)):
            for action, context in (("s3:PutObject", tls), ("s3:PutObject", {**tls, "s3:if-match": '"etag"'}),
                                    ("s3:PutObject", {**create, "s3:if-match": '"etag"'}),
                                    ("s3:DeleteObject", tls), ("s3:DeleteObjectVersion", tls)):
                decision = evaluate(statements, action, record, context)
                assert decision.outcome == EXPLICIT_DENY, f"{action} {record} {context}: {decision}"
        assert not allowed(handler, "s3:GetObject", record) and not allowed(handler, "s3:DeleteObject", record)
        writers = [str(role) for role in e.iam.roles.values() if allowed(role, "s3:PutObject", record, create)]
        assert writers == [str(handler)], f"{record}: {writers}"
        # Not vacuous: a training role does write its model's pipeline prefix.
        training = e.training_role(model)
        assert allowed(training, "s3:PutObject", f"arn:aws:s3:::{bucket}/pipelines/{model}/x")
        assert ledger_model_prefix(model) in record


@pytest.mark.parametrize("env", ENVS)
def test_no_role_can_delete_the_evidence_its_jobs_write_and_no_principal_can_delete_a_version_of_it(envs, env):
    """GIVEN every role of the environment and the artifacts and inference buckets' policies
    WHEN a run's reports (evaluate, baseline, model card under pipelines/<model>/<execution id>/), the frozen test set
    or a drift-monitor run's report and prediction records (monitor/<model>/<execution id>/) are deleted
    THEN no role's policy allows s3:DeleteObject there (the pipeline and monitor roles held it before), and
    s3:DeleteObjectVersion is denied by the bucket policy to every principal, an administrator included: an overwrite
    or a delete marker leaves the written bytes as an old version, which no lifecycle rule expires (test_data_lake).
    And each producing role still writes what its runs write (so the check is not vacuous), and the pipeline role
    still deletes in its working data (the spot checkpoints SageMaker syncs)."""
    e = envs[env]
    artifacts, artifacts_policy = _lake_policy(e, "artifacts")
    inference, inference_policy = _lake_policy(e, "inference")
    tls = {"aws:SecureTransport": "true", "s3:TlsVersion": "1.3"}
    roles = list(e.iam.roles.values())
    for model in e.cfg.models:
        run = f"arn:aws:s3:::{artifacts}/pipelines/{model}/b2c3d4e5f6a1"
        pipeline_evidence = [f"{run}/evaluate/evaluation/evaluation.json", f"{run}/baseline/statistics.json",
                             f"{run}/model-card/model_card.json",
                             f"arn:aws:s3:::{artifacts}/pipelines/{model}/frozen-test/test.parquet"]
        monitor_evidence = [f"arn:aws:s3:::{inference}/monitor/{model}/7f9a-42/report.json",
                            f"arn:aws:s3:::{inference}/monitor/{model}/7f9a-42/predictions.parquet"]
        for obj, policy in [(o, artifacts_policy) for o in pipeline_evidence] + [(o, inference_policy) for o in monitor_evidence]:
            deleters = [str(r) for r in roles if allowed(r, "s3:DeleteObject", obj)]
            assert deleters == [], f"{obj}: {deleters}"
            decision = evaluate((ALLOW_EVERYTHING, *policy), "s3:DeleteObjectVersion", obj, tls)
            assert decision.outcome == EXPLICIT_DENY, f"{obj}: {decision}"
        training = e.training_role(model)
        assert all(allowed(training, "s3:PutObject", obj) for obj in pipeline_evidence)
        assert allowed(training, "s3:DeleteObject", f"arn:aws:s3:::{artifacts}/pipelines/{model}/work/checkpoints/x/y/c.json")
        writers = [r for r in roles if all(allowed(r, "s3:PutObject", obj) for obj in monitor_evidence)]
        assert writers, f"no role writes {model}'s monitor reports"
