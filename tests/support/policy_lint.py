"""Lint IAM policy documents against AWS's authorization data: what AWS would ignore, this reports.

A policy that names an action that does not exist, a resource that none of its actions can be
authorized against, an action none of its resources can be, or a condition key the action never
carries is accepted by IAM and by CloudFormation -- and silently grants (or, in a Deny, forbids)
nothing. :func:`lint_template` finds every policy document of a template (identity policies,
resource policies, trust policies) and returns one line per finding naming the stack, resource,
statement, action and the resource or key.

Values are resolved with :class:`iam_eval.IamModel` (same intrinsics, same generated-name stand-ins);
a reference to another resource's ARN becomes that resource type's ARN shape (:data:`ARN_SHAPES`).
A resource whose shape is unknown is returned as *unchecked* rather than guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

from tests.support import iam_actions
from tests.support.iam_eval import IamModel

# (CloudFormation type, attribute or "Ref") -> the shape of the value, for resource checks.
ARN_SHAPES: dict[tuple[str, str], str] = {
    ("AWS::KMS::Key", "Arn"): "arn:aws:kms:{region}:{account}:key/00000000-0000-0000-0000-000000000000",
    ("AWS::S3::Bucket", "Arn"): "arn:aws:s3:::{name}",
    ("AWS::SNS::Topic", "Ref"): "arn:aws:sns:{region}:{account}:{name}",
    ("AWS::SNS::Topic", "TopicArn"): "arn:aws:sns:{region}:{account}:{name}",
    ("AWS::SQS::Queue", "Arn"): "arn:aws:sqs:{region}:{account}:{name}",
    ("AWS::Lambda::Function", "Arn"): "arn:aws:lambda:{region}:{account}:function:{name}",
    ("AWS::Logs::LogGroup", "Arn"): "arn:aws:logs:{region}:{account}:log-group:{name}:*",
    ("AWS::Events::Rule", "Arn"): "arn:aws:events:{region}:{account}:rule/{name}",
    ("AWS::Scheduler::Schedule", "Arn"): "arn:aws:scheduler:{region}:{account}:schedule/default/{name}",
    ("AWS::SageMaker::ModelPackageGroup", "ModelPackageGroupArn"):
        "arn:aws:sagemaker:{region}:{account}:model-package-group/{name}",
    ("AWS::SageMaker::FeatureGroup", "FeatureGroupArn"): "arn:aws:sagemaker:{region}:{account}:feature-group/{name}",
    ("AWS::SageMaker::Pipeline", "Ref"): "{name}",
    ("AWS::Glue::Database", "Ref"): "{name}",
}
_PLACEHOLDER = re.compile(r"\$\{([^}/]+)/([^}.]+)(?:\.([^}]+))?\}")
_POLICY_TYPES = {
    "AWS::IAM::ManagedPolicy": ("PolicyDocument",),
    "AWS::IAM::Policy": ("PolicyDocument",),
    "AWS::IAM::RolePolicy": ("PolicyDocument",),
    "AWS::S3::BucketPolicy": ("PolicyDocument",),
    "AWS::SNS::TopicPolicy": ("PolicyDocument",),
    "AWS::SQS::QueuePolicy": ("PolicyDocument",),
    "AWS::KMS::Key": ("KeyPolicy",),
    "AWS::IAM::Role": ("AssumeRolePolicyDocument",),
}


@dataclass
class LintResult:
    findings: list[str] = field(default_factory=list)
    checked: int = 0  # (action, resource) or (action, key) pairs decided
    unchecked: list[str] = field(default_factory=list)  # resources whose shape is unknown


def documents(stack: str, template: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """``(where, policy document)`` for every policy document in ``template`` (raw, intrinsics unresolved)."""
    for logical_id, resource in (template.get("Resources") or {}).items():
        props = resource.get("Properties") or {}
        for key in _POLICY_TYPES.get(resource.get("Type"), ()):
            if key in props:
                yield f"{stack}/{logical_id}", props[key]
        if resource.get("Type") == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                yield f"{stack}/{logical_id}[{policy.get('PolicyName')}]", policy["PolicyDocument"]


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _shape(model: IamModel, value: str) -> str | None:
    """``value`` with every placeholder replaced by the shape of the resource it stands for; None if unknown."""
    def replace(match: re.Match[str]) -> str:
        label, logical_id, attribute = match.group(1), match.group(2), match.group(3) or "Ref"
        resource = (model.stacks[label].template.get("Resources") or {}).get(logical_id) if label in model.stacks else None
        shape = ARN_SHAPES.get((resource["Type"], attribute)) if resource else None
        if shape is None:
            raise LookupError
        return shape.format(region=model.region, account=model.account, name=logical_id.lower())

    try:
        return _PLACEHOLDER.sub(replace, value).replace("${Random}", "random")
    except LookupError:
        return None


def lint_statement(model: IamModel, label: str, where: str, statement: Mapping[str, Any], result: LintResult) -> None:
    """Add the findings of one statement of template ``label`` to ``result``.

    A concrete action must be authorizable against one of the statement's resources and carry each of
    its condition keys; a wildcard pattern (``s3:*``) must have at least one action that does.
    """
    resolved = model.resolve(label, statement)
    sid = f"{where} {resolved.get('Sid', '')}".rstrip()
    if "NotAction" in resolved:
        return  # NotAction names what is excluded; an unknown name there widens nothing
    groups = []  # (pattern, the actions it stands for)
    for pattern in _listed(resolved.get("Action", [])):
        if pattern == "*":
            continue
        try:
            groups.append((pattern, iam_actions.expand(pattern)))
        except iam_actions.UnknownAction as exc:
            result.findings.append(f"{sid}: {exc}")
    if not groups:
        return
    if "Resource" in resolved:
        _lint_resources(model, sid, groups, _listed(resolved["Resource"]), result)
    for operator, by_key in (resolved.get("Condition") or {}).items():
        for key in by_key:
            for pattern, actions in groups:
                result.checked += 1
                if not any(iam_actions.condition_key_supported(act, key) for act in actions):
                    result.findings.append(f"{sid}: condition key {key} ({operator}) is never present for {pattern}")


def _lint_resources(model: IamModel, sid: str, groups: list[tuple[str, list[iam_actions.Action]]],
                    resources: list[Any], result: LintResult) -> None:
    shapes = []
    for resource in resources:
        shape = _shape(model, resource) if isinstance(resource, str) else None
        if shape is None:
            result.unchecked.append(f"{sid}: {resource}")
        else:
            shapes.append((resource, shape))
    if not shapes:
        return
    used = set()
    for pattern, actions in groups:
        matched = {r for r, shape in shapes for act in actions if _authorizes(act, shape)}
        result.checked += len(shapes) * len(actions)
        used.update(matched)
        if not matched and len(shapes) == len(resources):
            types = sorted({rt.name for act in actions for rt, _ in act.resource_types}) or ["* only (no resource type)"]
            result.findings.append(f"{sid}: {pattern} is authorized against {', '.join(types)}; none of "
                                   f"{', '.join(r for r, _ in shapes)} is one")
    for resource, _ in shapes:
        if resource not in used:
            result.findings.append(f"{sid}: resource {resource} is none of the resource types of "
                                   f"{', '.join(p for p, _ in groups)}")


def _authorizes(act: iam_actions.Action, shape: str) -> bool:
    if shape == "*":
        return True
    if act.takes_no_resource:
        return False
    return iam_actions.resource_type_of(act, shape) is not None


def lint_template(model: IamModel, label: str) -> LintResult:
    """Lint every policy document of the loaded template ``label``."""
    result = LintResult()
    for where, document in documents(label, model.stacks[label].template):
        for statement in _listed(document.get("Statement", [])):
            lint_statement(model, label, where, statement, result)
    return result
