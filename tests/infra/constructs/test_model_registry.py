"""ModelRegistry, built in a bare stack: a group per model, an approver that can only approve, and a
trainer that can register but never approve."""

from __future__ import annotations

import fnmatch

from aws_cdk import Environment, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Template

from mlops_loop.app_builder import new_app
from mlops_loop.constructs.access_policy import AccessPolicy
from mlops_loop.constructs.model_registry import PIPELINE_CHANGING_ACTIONS, ModelRegistry
from mlops_loop.config.cross_checks import model_name_problems
from pipeline_code.core.contract import (REGISTERED_PROPERTIES, SPLIT_SHA256_PROPERTIES, legacy_model_card_name, model_card_name,
                                         pascal)
from pipeline_code.training.model_card import card_name
from tests.support.cdk_outdirs import bare_outdir
from tests.support.iam_eval import EXPLICIT_DENY, Statement, evaluate

PACKAGE_ARN_OF = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/"
PACKAGES = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/shop-dev-{}/*"


def _registry(*, auto_approve: bool = False, approvers: tuple[str, ...] = ()) -> tuple[Template, dict[str, dict]]:
    """GIVEN a bare stack WHEN a registry of two models is added and a trainer role may register ``fraud``."""
    stack = Stack(new_app(bare_outdir()), "Bare", env=Environment(account="123456789012", region="eu-west-1"))
    registry = ModelRegistry(stack, "Registry", name_prefix="shop-dev",
                             models={"fraud": "Flags fraudulent orders", "churn": ""},
                             removal_policy=RemovalPolicy.RETAIN, card_key=kms.Key(stack, "CardKey"), approvers=approvers)
    trainer = iam.Role(stack, "Trainer", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    access = AccessPolicy(stack, "TrainerAccess", role=trainer, description="trainer")
    registry.allow_register(access, "fraud", auto_approve=auto_approve)
    template = Template.from_stack(stack)
    policies = {}
    for logical_id, policy in template.find_resources("AWS::IAM::ManagedPolicy").items():
        owner = "approver" if logical_id.startswith("RegistryApprover") else "trainer"
        policies.setdefault(owner, {}).update({s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]})
    return template, policies


def test_one_retained_group_per_model_named_after_the_prefix():
    template, _ = _registry()
    groups = {g["Properties"]["ModelPackageGroupName"]: g for g in template.find_resources("AWS::SageMaker::ModelPackageGroup").values()}
    assert set(groups) == {"shop-dev-fraud", "shop-dev-churn"}
    assert groups["shop-dev-fraud"]["Properties"]["ModelPackageGroupDescription"] == "Flags fraudulent orders"
    assert groups["shop-dev-churn"]["Properties"]["ModelPackageGroupDescription"] == "Versions of churn"
    assert all(g["DeletionPolicy"] == "Retain" for g in groups.values())


def test_the_approver_needs_mfa_may_approve_this_registrys_versions_and_nothing_that_changes_the_loop():
    template, policies = _registry()
    (role,) = [r for r in template.find_resources("AWS::IAM::Role").values() if r["Properties"].get("RoleName") == "shop-dev-model-approver"]
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Condition"] == {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
    approver = policies["approver"]
    assert sorted(approver["ChangeApprovalStatus"]["Resource"]) == [PACKAGES.format("churn"), PACKAGES.format("fraud")]
    deny = approver["ApproverCannotTrainOrRegister"]
    assert deny["Effect"] == "Deny" and set(deny["Action"]) == set(PIPELINE_CHANGING_ACTIONS)


def test_the_approver_decides_but_neither_sets_a_registered_property_nor_removes_any():
    """GIVEN the registry's approver policy (its statements about UpdateModelPackage, evaluated)
    WHEN an approval of a version also sets a property the pipeline registers, or removes any property
    THEN it is explicitly denied; the approval with a description alone is allowed."""
    _, policies = _registry()
    statements = [Statement.from_json(st) for st in policies["approver"].values()
                  if "sagemaker:UpdateModelPackage" in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"])]
    version = PACKAGE_ARN_OF + "shop-dev-fraud/3"
    approve = {"sagemaker:ModelApprovalStatus": "Approved"}
    assert evaluate(statements, "sagemaker:UpdateModelPackage", version, approve).allowed
    for name in REGISTERED_PROPERTIES:
        for change in ({f"sagemaker:CustomerMetadataProperties/{name}": "x"},
                       {"sagemaker:CustomerMetadataPropertiesToRemove": [name]}):
            assert evaluate(statements, "sagemaker:UpdateModelPackage", version, {**approve, **change}).outcome == EXPLICIT_DENY


def test_the_digests_of_the_data_a_version_was_trained_and_judged_on_are_guarded_like_its_lineage():
    """GIVEN the approver policy WHEN an approval also sets or removes the digest of the train or validation split
    (train_data_sha256, validation_data_sha256) or of the test set, or a split's location THEN each is explicitly
    denied: with them an approver could make changed training data pass the audit as the data registered."""
    _, policies = _registry()
    statements = [Statement.from_json(st) for st in policies["approver"].values()
                  if "sagemaker:UpdateModelPackage" in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"])]
    version = PACKAGE_ARN_OF + "shop-dev-churn/4"
    approve = {"sagemaker:ModelApprovalStatus": "Approved"}
    guarded = ("train_data_sha256", "validation_data_sha256", "test_set_sha256", "train_data", "validation_data")
    assert set(SPLIT_SHA256_PROPERTIES.values()) <= set(guarded) <= set(REGISTERED_PROPERTIES)
    for name in guarded:
        assert f"ApproverCannotSet{pascal(name)}" in policies["approver"]
        for change in ({f"sagemaker:CustomerMetadataProperties/{name}": "0" * 64},
                       {"sagemaker:CustomerMetadataPropertiesToRemove": [name]}):
            assert evaluate(statements, "sagemaker:UpdateModelPackage", version, {**approve, **change}).outcome == EXPLICIT_DENY


def test_the_trainer_registers_only_pending_versions_of_its_model_and_can_never_approve():
    _, policies = _registry()
    trainer = policies["trainer"]
    assert PACKAGES.format("fraud") in trainer["RegisterFraud"]["Resource"]
    assert trainer["RegisterOnlyAsPendingFraud"]["Condition"] == {
        "StringNotEqualsIfExists": {"sagemaker:ModelApprovalStatus": "PendingManualApproval"}
    }
    assert trainer["TrainerCannotApprove"] == {"Sid": "TrainerCannotApprove", "Effect": "Deny", "Action": "sagemaker:UpdateModelPackage", "Resource": "*"}


def test_with_auto_approve_the_trainer_may_register_approved_versions_but_still_never_change_approval():
    _, policies = _registry(auto_approve=True)
    assert "RegisterOnlyAsPendingFraud" not in policies["trainer"]
    assert policies["trainer"]["TrainerCannotApprove"]["Effect"] == "Deny"


def test_the_approver_reviews_the_model_cards_of_this_registrys_versions_only():
    _, policies = _registry()
    review = policies["approver"]["ReviewModelCards"]
    assert review["Effect"] == "Allow" and "sagemaker:UpdateModelCard" in review["Action"]
    assert sorted(review["Resource"]) == [f"arn:aws:sagemaker:eu-west-1:123456789012:model-card/shop-dev-{m}-v*"
                                          for m in ("churn", "fraud")]
    # AND the cards are encrypted with the pipeline's data key: the approver may use it
    key = policies["approver"]["ReviewModelCardsKey"]
    assert key["Action"] == ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"]
    # through SageMaker only: the same key encrypts the lake, which the approver may not read
    assert key["Condition"] == {"StringEquals": {"kms:ViaService": "sagemaker.eu-west-1.amazonaws.com"}}
    assert key["Resource"]["Fn::GetAtt"][0].startswith("CardKey")


def test_named_approvers_alone_may_assume_the_approver_role_users_with_mfa_roles_as_their_provider_signed_them_in():
    # GIVEN an Identity Center permission set's role (by pattern: it is re-created under a new suffix) and a user of
    # another account
    sso = "arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_ModelApprover_*"
    officer = "arn:aws:iam::444455556666:user/risk-officer"
    template, _ = _registry(approvers=(sso, officer))
    (role,) = [r for r in template.find_resources("AWS::IAM::Role").values() if r["Properties"].get("RoleName") == "shop-dev-model-approver"]
    # THEN the trust policy matches each by its principal ARN in its own account - the user with MFA, the role without
    # the MFA key (Identity Center sessions do not carry it) - and trusts no one else of the account
    statements = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    principals = [(s["Principal"]["AWS"], s["Condition"]) for s in statements]
    assert principals == [
        ("arn:aws:iam::123456789012:root", {"ArnLike": {"aws:PrincipalArn": [sso]}}),
        ("arn:aws:iam::444455556666:root",
         {"ArnLike": {"aws:PrincipalArn": [officer]}, "Bool": {"aws:MultiFactorAuthPresent": "true"}}),
    ]


def test_the_card_grants_cover_the_names_the_pipeline_gives_cards_of_a_group_too_long_for_plain_names():
    # GIVEN a prefix that makes the group name 62 characters (the longest the config's names allow)
    prefix = "p" * 20 + "-" + "e" * 20
    stack = Stack(new_app(bare_outdir()), "Bare", env=Environment(account="123456789012", region="eu-west-1"))
    registry = ModelRegistry(stack, "Registry", name_prefix=prefix, models={"m" * 20: ""},
                             removal_policy=RemovalPolicy.RETAIN, card_key=kms.Key(stack, "CardKey"))
    trainer = iam.Role(stack, "Trainer", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    registry.allow_register(AccessPolicy(stack, "TrainerAccess", role=trainer, description="trainer"), "m" * 20,
                            auto_approve=False)
    statements = {s["Sid"]: s for p in Template.from_stack(stack).find_resources("AWS::IAM::ManagedPolicy").values()
                  for s in p["Properties"]["PolicyDocument"]["Statement"]}
    group = f"{prefix}-{'m' * 20}"
    # WHEN the pipeline's ModelCard step names the cards of versions 1 and 1234
    created = "2026-03-01T09:59:07Z"
    for version in (1, 1234):
        arn = f"arn:aws:sagemaker:eu-west-1:123456789012:model-card/{card_name(f'{PACKAGE_ARN_OF}{group}/{version}', created)}"
        # THEN the trainer may write them and the approver review them
        for sid in ("ModelCardsMmmmmmmmmmmmmmmmmmmm", "ReviewModelCards"):
            resources = statements[sid]["Resource"]
            assert any(fnmatch.fnmatchcase(arn, r) for r in ([resources] if isinstance(resources, str) else resources)), sid


def _card_grants(models: tuple[str, ...]) -> dict[str, list[str]]:
    """Each model's model-card grant (the trainer's ModelCards<model> resources) in a registry of ``models``."""
    stack = Stack(new_app(bare_outdir()), "Bare", env=Environment(account="123456789012", region="eu-west-1"))
    registry = ModelRegistry(stack, "Registry", name_prefix="shop-dev", models={m: "" for m in models},
                             removal_policy=RemovalPolicy.RETAIN, card_key=kms.Key(stack, "CardKey"))
    return {m: [stack.resolve(arn) for arn in registry.card_arns(m)] for m in models}


def _covers(grants: list[str], model: str) -> bool:
    """Whether ``grants`` cover a card the pipeline names for a version of ``model`` (shop-dev), now or as before."""
    arn = "arn:aws:sagemaker:eu-west-1:123456789012:model-card/"
    names = [model_card_name(f"shop-dev-{model}", v, "2026-03-01T09:59:07Z") for v in (1, 12)]
    names += [legacy_model_card_name(f"shop-dev-{model}", 3)]
    return any(fnmatch.fnmatchcase(f"{arn}{name}", grant) for name in names for grant in grants)


def test_no_models_card_grant_covers_another_models_cards_for_names_the_config_accepts():
    """GIVEN models whose names start alike in every way the config accepts (churn, churnv2, churn2, churn-x,
    churn-risk) WHEN each model's card grant is matched against the others' card names THEN it covers its own and no
    other's. The pair the config refuses, churn and churn-vip, is the one IAM cannot keep apart: churn's grant
    shop-dev-churn-v* covers churn-vip's cards (trialM finding 2; config.cross_checks.model_name_problems)."""
    accepted = ("churn", "churnv2", "churn2", "churn-x", "churn-risk")
    assert model_name_problems(accepted) == []
    grants = _card_grants(accepted)
    for model in accepted:
        assert _covers(grants[model], model), model
        for other in accepted:
            assert other == model or not _covers(grants[model], other), (model, other)
    # AND the refused pair is refused because the grants overlap
    refused = ("churn", "churn-vip")
    assert len(model_name_problems(refused)) == 1
    assert _covers(_card_grants(refused)["churn"], "churn-vip")
