"""The Model Registry: versioned model package groups and the separation of duties around approval."""

from __future__ import annotations

from typing import Mapping, Sequence

from aws_cdk import ArnFormat, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from pipeline_code.core.contract import (
    REGISTERED_PROPERTIES,
    approver_role_name,
    team_approver_role_name,
    model_card_name_patterns,
    package_group_name,
    pascal,
    retrain_alarm_prefix,
    serving_stack_name,
)

from .access_policy import AccessPolicy
from .arns import format_arn
from .cdk_reads import environment_of, read_once, stack_of
from .retraining_trigger import retrain_trigger_function_name

# Everything that changes what is trained, how, or with which code: an approver may do none of it.
PIPELINE_CHANGING_ACTIONS = (
    "sagemaker:CreatePipeline",
    "sagemaker:UpdatePipeline",
    "sagemaker:DeletePipeline",
    "sagemaker:StartPipelineExecution",
    "sagemaker:RetryPipelineExecution",
    "sagemaker:CreateTrainingJob",
    "sagemaker:CreateProcessingJob",
    "sagemaker:CreateModelPackage",
)


_MFA = {"Bool": {"aws:MultiFactorAuthPresent": "true"}}


def _approver_principal(account: str, approvers: Sequence[str]) -> iam.IPrincipal:
    """Who may assume the approver role. Named approvers are matched by ``aws:PrincipalArn`` (a pattern survives IAM
    Identity Center re-creating a permission set's role under a new suffix): IAM users with MFA; roles without the
    MFA key, which federated and Identity Center sessions do not carry (their identity provider asks for MFA). With
    none named: any principal of ``account`` with MFA."""
    if not approvers:
        return iam.AccountPrincipal(account).with_conditions(_MFA)
    statements = []
    for (owner, kind), arns in sorted(_by_account_and_kind(approvers).items()):
        statements.append(iam.AccountPrincipal(owner).with_conditions(
            {"ArnLike": {"aws:PrincipalArn": arns}, **(_MFA if kind == "user" else {})}))
    return iam.CompositePrincipal(*statements)


def _by_account_and_kind(arns: Sequence[str]) -> dict[tuple[str, str], list[str]]:
    """``arn:aws:iam::<account>:<role|user>/<name>`` grouped by account and kind, in the given order."""
    out: dict[tuple[str, str], list[str]] = {}
    for arn in arns:
        account, resource = arn.split(":")[4], arn.split(":", 5)[5]
        out.setdefault((account, resource.split("/", 1)[0]), []).append(arn)
    return out


class ModelRegistry(Construct):
    """One model package group per model (``<prefix>-<model>``) and an approver role.

    Approval status is the promotion gate: only the approver role may change it
    (``sagemaker:UpdateModelPackage``), and it can do nothing else to the loop: it cannot create
    packages, start or edit pipelines, or run jobs (explicit denies, so a broader policy attached
    later cannot add them). The training pipeline's role gets the mirror image (it may register,
    never approve) from :meth:`allow_register`. The approver role can be assumed, with MFA, by the
    named approvers, or by principals of this account when none are named; groups are retained outside dev like every stateful resource. Every
    update it makes must set an approval status (an edit that is no decision would move the version's
    LastModifiedTime, which the deploy handler reads as its approval time); it may neither set a customer
    metadata property the pipeline registered (``contract.REGISTERED_PROPERTIES``: lineage and digests) nor
    remove any. A changed inference specification (no IAM condition key describes it) is refused by the deploy
    handler, which compares the package's container with the registered container digest.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name_prefix: str,
        models: Mapping[str, str],
        removal_policy: RemovalPolicy,
        card_key: kms.IKey,
        approvers: Sequence[str] = (),
        team_approvers: Mapping[str, tuple[Sequence[str], Sequence[str]]] = {},
    ) -> None:
        """``models`` maps each model name to its description; ``card_key`` encrypts the versions' model cards
        (the pipeline's data key), which the approver reads and updates when reviewing them; ``approvers`` (IAM role
        or user ARNs, ``*`` allowed in the name) are who may assume the approver role (default: any principal of this
        account whose own policies allow it, with MFA); ``team_approvers`` (team -> (its models, its approvers)) gives
        each such team an approver role ``<prefix>-<team>-team-approver`` for its models alone, and takes them from
        the environment's approver role (default: none)."""
        super().__init__(scope, construct_id)
        stack_of(self, scope)  # asked once, in the constructor (cdk_reads)
        self.groups: dict[str, sagemaker.CfnModelPackageGroup] = {}
        self.group_names: dict[str, str] = {}
        for model, description in models.items():
            name = package_group_name(name_prefix, model)
            group = sagemaker.CfnModelPackageGroup(
                self,
                pascal(model),
                model_package_group_name=name,
                model_package_group_description=(description or f"Versions of {model}")[:1024],
            )
            group.apply_removal_policy(removal_policy)
            self.groups[model] = group
            self.group_names[model] = name

        # A team with approvers of its own (team_approvers) decides its models' versions through its own role; the
        # environment's role decides the others'.
        team_approvers = dict(team_approvers)
        owned = {model for team in team_approvers for model in team_approvers[team][0]}
        self.approver_role = self._approver_role(
            "", approver_role_name(name_prefix),
            "Approves or rejects model package versions; cannot train, register or edit pipelines",
            [m for m in self.groups if m not in owned], approvers, name_prefix, card_key)
        self.team_approver_roles: dict[str, iam.Role] = {}
        for team, (team_models, arns) in sorted(team_approvers.items()):
            self.team_approver_roles[team] = self._approver_role(
                f"{pascal(team)}Team", team_approver_role_name(name_prefix, team),
                f"Approves or rejects the versions of team {team}'s models; cannot train, register or edit pipelines",
                [m for m in self.groups if m in team_models], arns, name_prefix, card_key)

    def _approver_role(self, id_prefix: str, role_name: str, description: str, models: Sequence[str],
                       approvers: Sequence[str], name_prefix: str, card_key: kms.IKey) -> iam.Role:
        """An approver role named ``role_name`` that may decide the versions of ``models`` (and read every group of the
        environment), assumed by ``approvers`` (see the class); construct ids start with ``id_prefix`` ("" for the
        environment's, so its ids stay as they were)."""
        stack = stack_of(self)
        environment = environment_of(stack)
        role = iam.Role(
            self,
            f"{id_prefix}ApproverRole",
            role_name=role_name,
            description=description,
            assumed_by=_approver_principal(environment.account, approvers),
        )
        access = AccessPolicy(
            self, f"{id_prefix}ApproverAccess", role=role, description="Model approval only"
        )
        if models:  # the environment's role has none when every model's team approves its own
            access.allow(
                "ChangeApprovalStatus",
                ["sagemaker:UpdateModelPackage"],
                [self.package_arns(m) for m in models],
                wildcard_reason="Versions are created by the pipeline at run time; approval is limited to the "
                "versions of this environment's model package groups.",
            )
        access.allow(
            "ReadRegistry",
            ["sagemaker:DescribeModelPackage", "sagemaker:ListModelPackages", "sagemaker:DescribeModelPackageGroup"],
            [self.package_arns(m) for m in self.groups] + [self.group_arn(m) for m in self.groups],
            wildcard_reason="Reading any version of this environment's groups is needed to compare them before approval.",
        )
        access.allow(
            "ListGroups",
            ["sagemaker:ListModelPackageGroups"],
            ["*"],
            wildcard_reason="ListModelPackageGroups supports no resource-level permissions.",
        )
        # Reviewers move a version's model card (the pipeline writes it as Draft) to PendingReview or Approved.
        if models:
            access.allow(
                "ReviewModelCards",
                ["sagemaker:DescribeModelCard", "sagemaker:UpdateModelCard", "sagemaker:ListModelCardVersions"],
                [arn for m in models for arn in self.card_arns(m)],
                wildcard_reason="One model card per registered version, named <group>-v<version>-<package creation time> "
                "at run time.",
            )
        # Through SageMaker only (the cards' API): the same key encrypts the lake, which the approver may not read.
        access.allow("ReviewModelCardsKey", ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"],
                     [read_once(card_key, "key_arn")],
                     conditions={"StringEquals": {"kms:ViaService": f"sagemaker.{environment.region}.amazonaws.com"}})
        # The rollback command shows which version serves (the serving stack's parameter).
        access.allow(
            "ReadServingStack",
            ["cloudformation:DescribeStacks"],
            [format_arn(stack, service="cloudformation", resource="stack", resource_name=f"{serving_stack_name(name_prefix)}/*")],
            wildcard_reason="A stack ARN ends in an id CloudFormation assigns at creation; the name pins the serving stack.",
        )
        access.deny("ApproverCannotTrainOrRegister", PIPELINE_CHANGING_ACTIONS, ["*"])
        # Every update of a version is an approval decision (issue #13): the deploy handler serves the
        # version approved last by LastModifiedTime, so an edit that is not a decision (a description, a
        # metadata property) must not move that time.
        access.deny("ApproverUpdatesOnlyDecide", ["sagemaker:UpdateModelPackage"], ["*"],
                    conditions={"Null": {"sagemaker:ModelApprovalStatus": "true"}})
        # And a decision leaves the version's record as the pipeline registered it: the audit reads its lineage
        # there, the deploy handler its digests. The approval itself needs ModelApprovalStatus and
        # ApprovalDescription only (the rollback CLI writes nothing else). No property may be removed
        # (CustomerMetadataPropertiesToRemove is multivalued: ForAnyValue, false when the request removes nothing);
        # no registered one may be set. IAM has a condition key per property set, none listing them all, so each
        # registered property is denied by name (one statement each: keys in one condition are ANDed). In a policy
        # of their own, named for what it guards, so a reviewer reads the record's protection in one place.
        record = AccessPolicy(self, f"{id_prefix}ApproverRecordGuard", role=role,
                              description="What a model approval may not change: the version's registered record")
        record.deny("ApproverCannotRemoveProperties", ["sagemaker:UpdateModelPackage"], ["*"],
                    conditions={"ForAnyValue:StringLike": {"sagemaker:CustomerMetadataPropertiesToRemove": "*"}})
        for name in REGISTERED_PROPERTIES:
            record.deny(f"ApproverCannotSet{pascal(name)}", ["sagemaker:UpdateModelPackage"], ["*"],
                        conditions={"Null": {f"sagemaker:CustomerMetadataProperties/{name}": "false"}})
        # The indirect routes to a training run (issue #13): invoking the retrain trigger function, or
        # forcing one of the alarms that invoke it (``<prefix>-<model>-retrain-*``) into ALARM.
        # Named, not referenced: the function and alarms live in the Operations stack, built after this one.
        trigger = retrain_trigger_function_name(name_prefix)
        access.deny(
            "ApproverCannotStartRetraining",
            ["lambda:InvokeFunction", "lambda:InvokeAsync"],
            # The function itself and any version or alias of it.
            [format_arn(stack, service="lambda", resource="function", arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        resource_name=name) for name in (trigger, f"{trigger}:*")],
        )
        access.deny(
            "ApproverCannotFireRetrainAlarms",
            ["cloudwatch:SetAlarmState"],
            [format_arn(stack, service="cloudwatch", resource="alarm", arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        resource_name=f"{retrain_alarm_prefix(name_prefix, m)}*") for m in self.groups],
        )
        return role

    def card_arns(self, model: str) -> list[str]:
        """The model cards of ``model``'s versions (the ModelCard step names them ``<group>-v<version>-<package creation
        time>``, hashed when that would exceed 63 characters: ``model_card_name``; and ``<group>-v<version>`` as cards
        were named before)."""
        return [format_arn(self, service="sagemaker", resource="model-card", resource_name=pattern)
                for pattern in model_card_name_patterns(self.group_names[model].lower())]

    def group_arn(self, model: str) -> str:
        return format_arn(
            self,
            service="sagemaker", resource="model-package-group", resource_name=self.group_names[model].lower()
        )

    def package_arns(self, model: str) -> str:
        """ARN pattern of every version in the model's group (``model-package/<group>/*``)."""
        return format_arn(
            self,
            service="sagemaker", resource="model-package", resource_name=f"{self.group_names[model].lower()}/*"
        )

    def allow_register(self, access: AccessPolicy, model: str, *, auto_approve: bool) -> None:
        """Let ``access`` (the training pipeline's role) register versions of ``model`` — never approve them.

        Registration is allowed as ``PendingManualApproval`` only, unless the environment opts into
        ``auto_approve`` (never prod, enforced by config validation); approval status changes are
        denied outright, so the trainer cannot promote its own model.
        """
        sid = pascal(model)
        access.allow(
            f"Register{sid}",
            ["sagemaker:CreateModelPackage", "sagemaker:DescribeModelPackage", "sagemaker:ListModelPackages"],
            [self.package_arns(model), self.group_arn(model)],
            wildcard_reason="The pipeline creates a new version per run; it may only create and read versions "
            "of its own model's group.",
        )
        access.allow(
            f"ModelCards{sid}",
            ["sagemaker:CreateModelCard", "sagemaker:UpdateModelCard", "sagemaker:DescribeModelCard"],
            self.card_arns(model),
            wildcard_reason="One model card per registered version, named <group>-v<version>-<package creation time> "
            "at run time.",
        )
        if not auto_approve:
            access.deny(f"RegisterOnlyAsPending{sid}", ["sagemaker:CreateModelPackage"], ["*"],
                        conditions={"StringNotEqualsIfExists": {"sagemaker:ModelApprovalStatus": "PendingManualApproval"}})
        # AccessPolicy keeps an identical statement once, so one per model is harmless.
        access.deny("TrainerCannotApprove", ["sagemaker:UpdateModelPackage"], ["*"])
