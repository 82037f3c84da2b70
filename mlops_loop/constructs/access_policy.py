"""Least-privilege IAM: one customer-managed policy per role, built from explicit statements."""

from __future__ import annotations

import copy
import json
import re
from typing import Any, Mapping, Optional, Sequence

import jsii
from aws_cdk import Acknowledgment, ArnFormat, IStableAnyProducer, IStableListProducer, Lazy
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from pipeline_code.core.contract import OWNER_TAGS

from ..nag import acknowledgments, record
from .arns import format_arn, s3_arn
from .cdk_reads import once_per, read_once, stack_of
from .endpoint_metrics import HOST_NAMESPACE

READ_OBJECT_ACTIONS = ("s3:GetObject", "s3:GetObjectVersion")
WRITE_OBJECT_ACTIONS = ("s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload")
# What an unresolved CDK token leaves in a Python string: "${Token[...]}" (a string), "#{Token[...]}" (a
# list) or a number token's "-1.88...e+289"; the CDK's own test for a string that may hold one.
TOKEN_MARKS = ("Token[", "e+289")
# What IAM takes as a Sid in an identity-based policy, and as an action (the CDK's ManagedPolicy and
# PolicyStatement check the same; here they are checked when a statement is added, naming it).
SID_PATTERN = re.compile(r"[0-9A-Za-z]+")
ACTION_PATTERN = re.compile(r"\*|[a-zA-Z0-9-]+:[a-zA-Z0-9*]+")
# The condition key SageMaker fills with every instance type a create request names (Service Authorization
# Reference: sagemaker:InstanceTypes, ArrayOfString, "the list of all instance types associated with the resource in
# the request"), and the actions of this app's roles that carry it there. A condition on a key an action never
# carries would deny that action for good, so allow_instance_types refuses any other action.
INSTANCE_TYPES_KEY = "sagemaker:InstanceTypes"
INSTANCE_TYPE_ACTIONS = frozenset({
    "sagemaker:CreateTrainingJob", "sagemaker:CreateHyperParameterTuningJob", "sagemaker:CreateProcessingJob",
    "sagemaker:CreateTransformJob", "sagemaker:CreateEndpointConfig", "sagemaker:CreateDataQualityJobDefinition",
    "sagemaker:CreateModelQualityJobDefinition", "sagemaker:CreateModelBiasJobDefinition",
    "sagemaker:CreateModelExplainabilityJobDefinition", "sagemaker:CreateMonitoringSchedule",
    "sagemaker:UpdateMonitoringSchedule",
})
INSTANCE_TYPE_PATTERN = re.compile(r"ml\.[a-z0-9-]+\.[a-z0-9]+")
# IAM refuses a managed policy document over 6,144 characters, whitespace not counted (IAM quotas; fixed, unlike the
# number of policies a role may have). A policy whose statements would pass it continues in another managed policy
# attached to the same role; the budget leaves room for the document's envelope and for the estimate's error.
POLICY_SIZE_LIMIT = 6144
POLICY_SIZE_BUDGET = POLICY_SIZE_LIMIT - 200
# IAM attaches at most 10 managed policies to a role by default (IAM quotas, "Managed policies attached to an IAM role";
# an account may have it raised to 20, which a stack cannot ask for): an 11th part would fail the deploy at AttachRolePolicy.
MANAGED_POLICIES_PER_ROLE = 10
# The longest value each pseudo parameter takes (aws-iso-b, ap-southeast-5, 12 digits, amazonaws.com.cn); a reference
# to another resource or attribute counts as a long ARN. What synth cannot know is counted at its longest.
PSEUDO_LENGTHS = {"AWS::Partition": 10, "AWS::Region": 14, "AWS::AccountId": 12, "AWS::URLSuffix": 16}
UNKNOWN_LENGTH = 256
_UNKNOWN_LIST_LENGTH = 4 * (UNKNOWN_LENGTH + 3)  # a list whose items are unknown yet: counted as four long ARNs
# How an unresolved token stands in a string: a pseudo parameter's names itself ("${Token[AWS.Region.12]}").
_PSEUDO_TOKEN = re.compile(r"\$\{Token\[AWS\.(\w+)\.\d+\]\}")
_LIST_TOKEN = re.compile(r"#\{Token\[[^\]]*\]\}")
_TOKEN = re.compile(r"\$\{Token\[[^\]]*\]\}|-?1\.8\d*e\+289")


# SageMaker's own log groups and instance-metric namespaces (SageMaker Developer Guide: "Log groups and streams that
# Amazon SageMaker AI sends to Amazon CloudWatch Logs"; "SageMaker AI jobs and endpoint metrics"). A job's log group
# and its namespace have the same name; an endpoint logs to a group of its own and publishes in the shared namespace.
TRAINING_JOBS = "/aws/sagemaker/TrainingJobs"
PROCESSING_JOBS = "/aws/sagemaker/ProcessingJobs"
TRANSFORM_JOBS = "/aws/sagemaker/TransformJobs"
ENDPOINT_INSTANCE_NAMESPACE = HOST_NAMESPACE


def endpoint_log_group(endpoint_name: str) -> str:
    """``/aws/sagemaker/Endpoints/<endpoint_name>``: the log group of one endpoint's containers."""
    return f"{ENDPOINT_INSTANCE_NAMESPACE}/{endpoint_name}"


def sagemaker_log_groups(*names: str) -> list[str]:
    """The log-group ARN resource names of the log groups ``names``, for :meth:`AccessPolicy.allow_container_runtime`:
    each group itself (``CreateLogGroup``: the execution-role policies of the SageMaker Developer Guide list it, for an
    account where the group does not exist yet) and its streams (``<group>:*``: ``CreateLogStream``, ``PutLogEvents``,
    ``DescribeLogStreams``), and no other group."""
    return [resource for name in names for resource in (name, f"{name}:*")]


def owner_of(tags: Sequence[tuple[str, str]]) -> dict[str, str]:
    """The owner tags (``contract.OWNER_TAGS``: project and environment) among an environment's ``tags``, by key.

    Raises:
        ValueError: ``tags`` lack one of them (a statement held to an owner needs both).
    """
    found = {key: value for key, value in tags if key in OWNER_TAGS}
    missing = [key for key in OWNER_TAGS if key not in found]
    if missing:
        raise ValueError(f"tags {list(tags)} lack the owner tag(s) {missing}: a statement held to its owner needs "
                         f"{', '.join(OWNER_TAGS)}")
    return found


def owned_by(owner: Mapping[str, str], *, tagging: bool = False) -> dict[str, Any]:
    """The condition that keeps a statement off resources another project or environment owns: each owner tag of the
    resource (``aws:ResourceTag/<key>``), and with ``tagging`` each one the request sets (``aws:RequestTag/<key>``: the
    create and tag calls carry it), must be ``owner``'s value when present (``StringEqualsIfExists``).

    When present, not required: SageMaker applies a new resource's tags to authorization with a delay (the SageMaker
    Python SDK waits for "tag propagation" after a create, aws/sagemaker-python-sdk#3662) while SageMaker Pipelines and
    CloudFormation describe and tag what they just created as the same role; the experiment and lineage entities
    SageMaker creates carry none of our tags; and a tagging call need not name every tag (SageMaker Pipelines adds its
    own ``sagemaker:pipeline-*`` tags to the jobs it starts, CloudFormation updates changed tags). A condition that
    required the tags could deny the role its own work, so a resource or request without them is allowed, and one
    that names another project or environment is not. What carries neither tag (nothing this app creates) stays
    reachable."""
    condition = {f"aws:ResourceTag/{key}": value for key, value in owner.items()}
    if tagging:
        condition.update({f"aws:RequestTag/{key}": value for key, value in owner.items()})
    return {"StringEqualsIfExists": condition}


class AccessPolicy(Construct):
    """A customer-managed policy attached to ``role`` that grants only what callers add.

    Why not ``bucket.grant_*``: grants add action wildcards (``s3:GetObject*``, ``kms:ReEncrypt*``)
    to an inline policy. Here actions are explicit, the policy is managed (NIST IAMNoInlinePolicy),
    and every resource wildcard that remains (an object prefix, a log stream) must be given a
    reason when it is added, which is recorded as a cdk-nag acknowledgement of exactly that finding.
    Guardrails that must hold whatever else allows are added with :meth:`deny`. ``managed_policy`` is
    the resource (an ``AWS::IAM::ManagedPolicy``, for logical ids and dependencies).
    """

    def __init__(self, scope: Construct, construct_id: str, *, role: iam.IRole, description: str):
        super().__init__(scope, construct_id)
        # Looked up once: each lookup is a round trip to the CDK's Node process, and a synth adds a
        # thousand statements to a few hundred policies (its scope has usually asked already).
        self._stack = stack_of(self, scope)
        # Sid -> statement, in the order added (one statement per Sid; the policy's document).
        self._statements: dict[str, dict[str, Any]] = {}
        # Sid -> the statement as added, where it was split over several (see _keep): what a second add compares with.
        self._added: dict[str, dict[str, Any]] = {}
        self._written = False  # once the CDK has the document (see _Document)
        # The wildcard findings acknowledged so far, recorded with the document: one round trip per policy, not
        # one per statement (a few hundred per synth).
        self._acknowledged: list[Acknowledgment] = []
        self._role, self._description = role, description
        # Sid -> the part (index into managed_policies) holding it, and each part's estimated size.
        self._part_of: dict[str, int] = {}
        self._sizes: list[int] = []
        # The resource sits where ``iam.ManagedPolicy`` puts it (Policy/Resource), so its logical id is the
        # one it always had. The document is handed to the CDK once, when the template is made: built up
        # statement by statement it cost two round trips to Node per statement, a quarter of a synth's.
        self.managed_policies: list[iam.CfnManagedPolicy] = []
        self.managed_policy = self._add_part()

    def _add_part(self) -> iam.CfnManagedPolicy:
        """Another managed policy of the role's (``Policy``, then ``Policy2``, ...), for statements past the size budget."""
        index = len(self.managed_policies)
        if index >= MANAGED_POLICIES_PER_ROLE:
            raise ValueError(f"{self.node.path}: its statements need more than {MANAGED_POLICIES_PER_ROLE} managed policies of "
                             f"{POLICY_SIZE_LIMIT} characters, and IAM attaches at most {MANAGED_POLICIES_PER_ROLE} to a role by "
                             "default: the deploy would fail. What a role is granted grows with the environment's models: "
                             "serve fewer in the environment (environments.<env>.models) and the others from a second "
                             "project config")
        part = iam.CfnManagedPolicy(
            Construct(self, "Policy" if index == 0 else f"Policy{index + 1}"),
            "Resource",
            description=self._description if index == 0 else f"{self._description} (part {index + 1})",
            path="/",
            roles=[read_once(self._role, "role_name")],
            policy_document=Lazy.any(_Document(self, index)),
        )
        self.managed_policies.append(part)
        self._sizes.append(0)
        return part

    def s3_arn(self, bucket_name: str, key_pattern: Optional[str] = None) -> str:
        """:func:`~.arns.s3_arn` in this policy's stack."""
        return s3_arn(self._stack, bucket_name, key_pattern)

    def allow(
        self,
        sid: str,
        actions: Sequence[str],
        resources: Sequence[str],
        *,
        conditions: Optional[Mapping[str, Any]] = None,
        wildcard_reason: Optional[str] = None,
    ) -> None:
        """Allow ``actions`` on ``resources``; wildcards need ``wildcard_reason`` (acknowledged per finding)."""
        statement = self._statement("Allow", sid, actions, resources, conditions)
        wildcard_findings = [f"AwsSolutions-IAM5[Action::{a}]" for a in actions if "*" in a]
        # Only strings that carry CDK tokens need resolving, those this stack has not resolved yet all in one call
        # (keyed by position): a resource's value does not change while the app is built, and a few (a key's ARN, a
        # bucket's name) are named by hundreds of statements.
        known: dict[str, Any] = once_per(self._stack, (AccessPolicy, "resolved"), dict)  # token resource -> its value here
        tokens = {f"r{i}": r for i, r in enumerate(resources) if r not in known and any(mark in r for mark in TOKEN_MARKS)}
        if tokens:
            for position, resolved in self._stack.resolve(tokens).items():
                known[tokens[position]] = resolved
        for resource in resources:
            resolved = known.get(resource, resource)
            if isinstance(resolved, str) and "*" in resolved:
                wildcard_findings.append(f"AwsSolutions-IAM5[Resource::{resolved}]")
            elif not isinstance(resolved, str) and "*" in str(resolved):
                raise ValueError(f"{sid}: wildcard resources must be concrete strings, got {resolved}")
        if wildcard_findings:
            if not wildcard_reason:
                raise ValueError(f"{sid}: statement has wildcards {wildcard_findings}; give a wildcard_reason")
            self._acknowledged += acknowledgments(self, wildcard_reason, *wildcard_findings)
        self._keep(statement)

    def deny(
        self, sid: str, actions: Sequence[str], resources: Sequence[str], *, conditions: Optional[Mapping[str, Any]] = None
    ) -> None:
        """Deny ``actions`` on ``resources``, whatever else allows them (a guardrail: wildcards need no reason)."""
        self._keep(self._statement("Deny", sid, actions, resources, conditions))

    def _statement(
        self, effect: str, sid: str, actions: Sequence[str], resources: Sequence[str], conditions: Optional[Mapping[str, Any]]
    ) -> dict[str, Any]:
        """The statement as IAM JSON, refused here (naming it) if IAM or the CDK would refuse it later."""
        if self._written:
            raise ValueError(f"{sid}: {self.node.path} was already written to a template; add statements before synth")
        if not SID_PATTERN.fullmatch(sid):
            raise ValueError(f"{sid!r}: a statement id must be letters and digits only (IAM's rule for identity policies)")
        if not actions or not resources:
            raise ValueError(f"{sid}: a statement needs at least one action and one resource")
        malformed = [a for a in actions if not (ACTION_PATTERN.fullmatch(a) or any(mark in a for mark in TOKEN_MARKS))]
        if malformed:
            raise ValueError(f"{sid}: action {malformed[0]!r} is not 'service:Action' (an action name may hold wildcards)")
        not_text = [r for r in resources if not isinstance(r, str)]
        if not_text:
            raise ValueError(f"{sid}: resources are ARN strings, got {not_text[0]!r}")
        statement: dict[str, Any] = {"Sid": sid, "Effect": effect, "Action": list(actions), "Resource": list(resources)}
        if conditions:
            # A copy: a caller's later change to its mapping must not reach the template.
            statement["Condition"] = copy.deepcopy(dict(conditions))
        if self._added.get(sid, statement) != statement:
            raise ValueError(f"{sid}: {self.node.path} already has another statement with this Sid; "
                             "IAM needs a Sid to name one statement of a policy")
        return statement

    def _keep(self, statement: dict[str, Any]) -> None:
        """Add ``statement`` (checked by :meth:`_statement`); the same statement twice renders once. A statement that
        would take the current part past :data:`POLICY_SIZE_BUDGET` starts the next part."""
        sid = statement["Sid"]
        if sid in self._added:
            return
        self._added[sid] = statement
        size = self._size_of(statement)
        if size > POLICY_SIZE_BUDGET:
            for part in self._split(statement):
                self._keep_part(part)
            return
        self._keep_part(statement, size)

    def _split(self, statement: dict[str, Any]) -> list[dict[str, Any]]:
        """``statement``'s resources over as few statements as each fit :data:`POLICY_SIZE_BUDGET` (Sids ``<sid>``,
        ``<sid>Part2``, ...): the resources a statement lists grow with the environment's models (one alarm, pipeline or
        parameter each), and one managed policy cannot hold a statement over IAM's size limit.

        Raises:
            ValueError: one resource alone makes the statement too large (nothing to split).
        """
        sid = statement["Sid"]
        parts: list[dict[str, Any]] = []
        for resource in statement["Resource"]:
            candidate = {**statement, "Sid": sid if not parts else f"{sid}Part{len(parts) + 1}", "Resource": [resource]}
            if parts and self._size_of({**parts[-1], "Resource": [*parts[-1]["Resource"], resource]}) <= POLICY_SIZE_BUDGET:
                parts[-1]["Resource"].append(resource)
            elif self._size_of(candidate) <= POLICY_SIZE_BUDGET:
                parts.append(candidate)
            else:
                raise ValueError(f"{sid}: {self.node.path}: the statement with its resource {resource!r} alone is about "
                                 f"{self._size_of(candidate)} characters, more than a managed policy may hold "
                                 f"({POLICY_SIZE_LIMIT}); shorten its actions or conditions")
        return parts

    def _keep_part(self, statement: dict[str, Any], size: Optional[int] = None) -> None:
        """Put ``statement`` (within :data:`POLICY_SIZE_BUDGET`) in the current part, or in a new one if it would not fit."""
        sid = statement["Sid"]
        if sid in self._statements:
            # A part <sid>PartN of a statement split over several and a statement added with that Sid: one would
            # silently replace the other's grants.
            raise ValueError(f"{sid}: {self.node.path} already has another statement with this Sid (a statement split "
                             "over several is <sid>, <sid>Part2, ...); IAM needs a Sid to name one statement of a policy: "
                             "rename one of them")
        if size is None:
            size = self._size_of(statement)
        if self._sizes[-1] and self._sizes[-1] + size + 1 > POLICY_SIZE_BUDGET:
            self._add_part()
        self._statements[sid] = statement
        self._part_of[sid] = len(self._sizes) - 1
        self._sizes[-1] += size + 1

    def _size_of(self, statement: dict[str, Any]) -> int:
        """The statement's length as IAM counts it (no whitespace), each value synth cannot know at its longest.

        Tokens are measured as they stand, never resolved here: a lazy value (the code assets a policy lists) is
        resolved once, and resolving it before every asset is added would freeze it short."""
        text = "".join(json.dumps(statement, separators=(",", ":")).split())
        if not any(mark in text for mark in TOKEN_MARKS):
            return len(text)
        text = _PSEUDO_TOKEN.sub(lambda m: "x" * PSEUDO_LENGTHS.get(f"AWS::{m.group(1)}", UNKNOWN_LENGTH), text)
        text = _LIST_TOKEN.sub("x" * _UNKNOWN_LIST_LENGTH, text)
        return len(_TOKEN.sub("x" * UNKNOWN_LENGTH, text))

    def logical_ids(self) -> list[str]:
        """A token for the logical ids of every part of the policy, as many as synth ends with (for ``DependsOn``)."""
        return Lazy.list(_PartIds(self))

    def statements_of(self, part: int) -> list[dict[str, Any]]:
        """The statements of managed policy ``part`` (0: ``managed_policy``), in the order added."""
        return [st for sid, st in self._statements.items() if self._part_of[sid] == part]

    def allow_instance_types(
        self,
        sid: str,
        actions: Sequence[str],
        resources: Sequence[str],
        instance_types: Sequence[str],
        *,
        every_request_names_one: bool = True,
        conditions: Optional[Mapping[str, Any]] = None,
        wildcard_reason: Optional[str] = None,
    ) -> None:
        """Allow ``actions`` (each a create call that carries ``sagemaker:InstanceTypes``) on ``resources`` only for
        requests whose every instance type is one of ``instance_types`` (``ForAllValues:StringEquals``), and that meet
        ``conditions`` (default none: no other; operators other than the two this adds, such as :func:`owned_by`'s).

        ``ForAllValues`` is also true when a request names no instance type at all (IAM User Guide), so by default
        the statement requires the key too (``Null: false``): every training, processing, tuning and transform job
        runs on an instance type. ``every_request_names_one=False`` drops that requirement, for calls the app makes
        without one: an endpoint config with only serverless variants, a monitoring schedule that names its job
        definition instead of holding one.
        """
        unknown = [a for a in actions if a not in INSTANCE_TYPE_ACTIONS]
        if unknown:
            raise ValueError(f"{sid}: {unknown[0]} does not carry {INSTANCE_TYPES_KEY} (Service Authorization "
                             f"Reference); a condition on it would deny the call for good. Allowed: "
                             f"{', '.join(sorted(INSTANCE_TYPE_ACTIONS))}")
        if not instance_types:
            raise ValueError(f"{sid}: no instance types given; a create call limited to none is no grant at all")
        malformed = [t for t in instance_types if not isinstance(t, str) or not INSTANCE_TYPE_PATTERN.fullmatch(t)]
        if malformed:
            raise ValueError(f"{sid}: {malformed[0]!r} is not one instance type such as 'ml.m5.xlarge' (no wildcards, "
                             "no tokens: the types come from the config)")
        sizing: dict[str, Any] = {"ForAllValues:StringEquals": {INSTANCE_TYPES_KEY: sorted(set(instance_types))}}
        if every_request_names_one:
            sizing["Null"] = {INSTANCE_TYPES_KEY: "false"}
        clash = sorted(set(sizing) & set(conditions or {}))
        if clash:
            raise ValueError(f"{sid}: conditions {clash} would replace the instance-type limit")
        self.allow(sid, actions, resources, conditions={**sizing, **(conditions or {})}, wildcard_reason=wildcard_reason)

    def allow_prefix(self, sid: str, bucket: s3.IBucket, prefix: str, *, write: bool = False,
                     delete: Optional[bool] = None) -> None:
        """Read (and with ``write``, put) the objects of ``bucket`` under ``prefix`` and list them.

        A writer says whether it deletes: ``delete=True`` adds ``s3:DeleteObject`` (a job that replaces or clears
        what it wrote: Spark's overwrites, temporary files), ``delete=False`` leaves it out (a writer of records
        others rely on, such as captured traffic or a run's reports, which it must not be able to erase). There is no
        default: on a versioned bucket a delete is one lifecycle window away from losing the object for good, so it
        is granted only where a runtime deletes.

        Raises:
            ValueError: ``write`` without ``delete``, or ``delete`` without ``write``.
        """
        if not prefix.endswith("/"):
            raise ValueError(f"{sid}: prefix {prefix!r} must end with '/' so it cannot match a sibling prefix")
        if write and delete is None:
            raise ValueError(f"{sid}: say whether the writer deletes (delete=True only where a runtime deletes objects "
                             "under the prefix, delete=False otherwise)")
        if delete is not None and not write:
            raise ValueError(f"{sid}: delete= only goes with write=True")
        writes = tuple(a for a in WRITE_OBJECT_ACTIONS if delete or a != "s3:DeleteObject")
        actions = READ_OBJECT_ACTIONS + (writes if write else ())
        bucket_name = read_once(bucket, "bucket_name")  # a round trip, and policies name a few buckets hundreds of times
        self.allow(
            sid,
            actions,
            [self.s3_arn(bucket_name, f"{prefix}*")],
            wildcard_reason=f"Object access is confined to the {prefix} prefix this job owns; object keys "
            "are created at run time (partitions, part files), so they cannot be listed in advance.",
        )
        self.allow(
            f"{sid}List",
            ["s3:ListBucket"],
            [self.s3_arn(bucket_name)],
            conditions={"StringLike": {"s3:prefix": [f"{prefix}*"]}},
        )

    def allow_pass_role(self, sid: str, role_arn: str, service: str) -> None:
        """Pass the role ``role_arn`` to ``service`` (e.g. ``sagemaker.amazonaws.com``) and to no other."""
        self.allow(sid, ["iam:PassRole"], [role_arn], conditions={"StringEquals": {"iam:PassedToService": service}})

    def allow_key(self, sid: str, key: kms.IKey, *, encrypt: bool = True) -> None:
        """Use ``key`` to decrypt (and, with ``encrypt``, to encrypt and create data keys)."""
        actions = ["kms:Decrypt", "kms:DescribeKey"]
        if encrypt:
            actions += ["kms:Encrypt", "kms:GenerateDataKey"]
        self.allow(sid, actions, [read_once(key, "key_arn")])

    def allow_volume_grants(self, sid: str, key: kms.IKey) -> None:
        """Let SageMaker create grants on ``key`` for the storage volumes of the jobs or endpoints this role creates
        (``VolumeKmsKeyId``), and nothing else: ``kms:GrantIsForAWSResource`` "allows principals to call CreateGrant,
        ListGrants, or RevokeGrant only when an AWS service that is integrated with AWS KMS sends the request on the
        principal's behalf" (KMS Developer Guide, conditions-kms), so the role cannot grant the key to anyone itself.
        SageMaker creates such a grant as the caller of CreateEndpoint/UpdateEndpoint, and AWS's own policies for
        roles that create training, tuning and transform jobs with a volume key hold the same statement (MLSpace)."""
        self.allow(sid, ["kms:CreateGrant"], [read_once(key, "key_arn")], conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}})

    def allow_serving_runtime(self, *, repository: ecr.IRepository, endpoint_name: Optional[str]) -> None:
        """What a model container needs from SageMaker's side: :meth:`allow_container_runtime` and ``Metrics``.

        On the endpoint ``endpoint_name``: its own log group ``/aws/sagemaker/Endpoints/<endpoint_name>`` only, and
        PutMetricData in ``/aws/sagemaker/Endpoints`` only (SageMaker publishes the endpoint's instance metrics,
        CPUUtilization, MemoryUtilization..., as the execution role). With ``endpoint_name`` None (a batch model's
        transform jobs): ``/aws/sagemaker/TransformJobs``, as log group and as namespace. CloudWatch has no condition
        key on dimensions, so a serving role may still publish any endpoint's points in ``/aws/sagemaker/Endpoints``
        (docs/monitoring.md: *Whose metrics a role may publish*)."""
        if endpoint_name is None:
            log_groups, namespace = [TRANSFORM_JOBS], TRANSFORM_JOBS
        else:
            log_groups, namespace = [endpoint_log_group(endpoint_name)], ENDPOINT_INSTANCE_NAMESPACE
        self.allow_container_runtime(repository=repository, log_groups=sagemaker_log_groups(*log_groups))
        self.allow_metrics("Metrics", namespace, limited_to=f"SageMaker's {namespace} instance metrics")

    def allow_metrics(self, sid: str, namespaces: str | Sequence[str], *, limited_to: str) -> None:
        """Publish CloudWatch metrics in ``namespaces`` only (a pattern with ``*`` matches as StringLike).

        PutMetricData has no resource-level permissions, so the statement's resource is ``*`` and the
        namespace condition is what confines it; ``limited_to`` says to what, for the acknowledgement."""
        patterns = [namespaces] if isinstance(namespaces, str) else list(namespaces)
        operator = "StringLike" if any("*" in n for n in patterns) else "StringEquals"
        self.allow(
            sid,
            ["cloudwatch:PutMetricData"],
            ["*"],
            conditions={operator: {"cloudwatch:namespace": namespaces if isinstance(namespaces, str) else patterns}},
            wildcard_reason=f"PutMetricData has no resource-level permissions; the namespace condition limits it to {limited_to}.",
        )

    def allow_container_runtime(self, *, repository: ecr.IRepository, log_groups: str | Sequence[str]) -> None:
        """What a SageMaker job or endpoint role needs to run a stock image: an ECR token, pulls from
        ``repository`` only, and log streams in the log groups ``log_groups`` names (log-group ARN resource names,
        e.g. ``/aws/sagemaker/ProcessingJobs:*``, or :func:`sagemaker_log_groups`) — statements ``PullImageToken``,
        ``PullImage``, ``Logs``."""
        stack = self._stack
        self.allow(
            "PullImageToken",
            ["ecr:GetAuthorizationToken"],
            ["*"],
            wildcard_reason="GetAuthorizationToken has no resource-level permissions; pulls are limited to the "
            "one repository of the PullImage statement.",
        )
        self.allow(
            "PullImage",
            ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
            [read_once(repository, "repository_arn")],
        )
        self.allow(
            "Logs",
            ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            [format_arn(stack, service="logs", resource="log-group", resource_name=name,
                        arn_format=ArnFormat.COLON_RESOURCE_NAME)
             for name in ([log_groups] if isinstance(log_groups, str) else log_groups)],
            wildcard_reason="SageMaker writes one log stream per job, endpoint and instance under its own log groups.",
        )


@jsii.implements(IStableAnyProducer)
class _Document:
    """The policy document of an :class:`AccessPolicy`, made by the CDK from its statements in one call.

    ``Lazy.any`` asks on the first resolution (the template's, or an earlier ``stack.resolve``) and keeps the
    answer; from then on the policy refuses new statements, so a statement can never miss the template. The
    wildcard findings its statements acknowledged are recorded then too, in time for the packs, which check the
    finished templates. The CDK's document renders as it would have built statement by statement: actions and
    resources sorted (``@aws-cdk/aws-iam:minimizePolicies``), and statements with a Sid never merged."""

    def __init__(self, access: AccessPolicy, part: int):
        self._access, self._part = access, part

    def produce(self) -> iam.PolicyDocument:
        access = self._access
        if not access._statements:
            raise ValueError(f"{access.node.path}: the policy has no statements; an empty managed policy cannot be deployed")
        if not access._written:
            access._written = True
            record(access, access._acknowledged)
        return iam.PolicyDocument.from_json({"Statement": access.statements_of(self._part)})


@jsii.implements(IStableListProducer)
class _PartIds:
    """The logical ids of an :class:`AccessPolicy`'s managed policies, asked for when the template is made."""

    def __init__(self, access: AccessPolicy):
        self._access = access

    def produce(self) -> list[str]:
        stack = self._access._stack
        return [stack.get_logical_id(part) for part in self._access.managed_policies]

