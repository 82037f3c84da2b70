"""A small offline IAM evaluator for the synthesized CloudFormation templates (identity policies only).

What it answers: "may role R call ``action`` on ``resource`` with this request context?", following
the IAM evaluation rules for identity-based policies in one account:

1. every statement that applies to the role is collected: customer-managed policies listing it in
   ``Roles`` (``AWS::IAM::ManagedPolicy``), policies attached through the role's ``ManagedPolicyArns``
   when they are defined in the loaded templates, inline ``Policies`` and ``AWS::IAM::Policy`` /
   ``AWS::IAM::RolePolicy`` resources;
2. a statement matches when its ``Action``/``NotAction``, ``Resource``/``NotResource`` and every
   ``Condition`` match the request;
3. an explicit ``Deny`` wins; otherwise any ``Allow`` allows; otherwise the request is implicitly denied.

Actions authorized against several resources (``sagemaker:CreateEndpoint`` against the endpoint *and*
its endpoint-config) are decided by :func:`authorize`: the request names one ARN per required resource
type (from AWS's authorization data, :mod:`iam_actions`) and is allowed only when every one is allowed.
:func:`allowed` and :func:`evaluate` take one resource and refuse such actions, so no proof can pass by
asking about half a request.

Out of scope (the tests that use this module check that none of it is present, or say why it does not
matter): SCPs, permission boundaries, session policies, resource-based policies, and policy variables.

Intrinsics are resolved to strings so that patterns can be matched:

- ``Ref AWS::Partition`` / ``AWS::AccountId`` / ``AWS::Region`` / ``AWS::URLSuffix`` / ``AWS::StackName``
  -> the values given to :class:`IamModel`;
- ``Ref``/``Fn::GetAtt`` of an IAM role -> the role's name/ARN. Roles without a ``RoleName`` get the
  name CloudFormation generates, ``<stack name>-<logical id>-<random>``, with ``${Random}`` standing for
  the random suffix, so a pattern such as ``role/*`` or ``role/<stack name>-*`` matches them as it
  would in AWS;
- ``Ref`` of any other resource or parameter -> ``${<stack>/<LogicalId>}``; ``Fn::GetAtt`` ->
  ``${<stack>/<LogicalId>.<Attr>}``. The stack label is part of the placeholder because logical ids
  repeat across stacks (the Training and Serving stacks both have a ``ChurnRole...``);
- ``Fn::GetStackOutput`` -> the output's value when that stack is loaded, else
  ``${Output:<stack name>/<output name>}``;
- ``Fn::Join`` is evaluated. Any other intrinsic raises :class:`IamEvalError`.

Why not moto's ``moto.iam.access_control``: it treats a failed condition on an Allow as a deny,
compares actions case-sensitively, does not escape regex characters in patterns, has no ``?`` and no
``...IfExists``/negated-operator semantics. Anything this module does not model (an unknown
condition operator, a single-valued operator on a multivalued key, a managed policy it cannot see) raises
instead of guessing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

from tests.support import iam_actions

ALLOW = "Allow"
EXPLICIT_DENY = "ExplicitDeny"
IMPLICIT_DENY = "ImplicitDeny"
RANDOM_SUFFIX = "${Random}"

ContextValue = Union[str, bool, int, float, Sequence[str]]


class IamEvalError(ValueError):
    """The policy or template uses something this evaluator does not model; it refuses to guess."""


# --------------------------------------------------------------------------------------
# Pattern matching
# --------------------------------------------------------------------------------------
@lru_cache(maxsize=4096)
def _glob(pattern: str, *, ignore_case: bool) -> re.Pattern[str]:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(regex, (re.IGNORECASE | re.DOTALL) if ignore_case else re.DOTALL)


def glob_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """True when ``value`` matches ``pattern`` (``*`` any run of characters, ``?`` exactly one)."""
    return _glob(pattern, ignore_case=ignore_case).fullmatch(value) is not None


@lru_cache(maxsize=4096)
def _arn_glob(pattern: str) -> re.Pattern[str]:
    # IAM matches wildcards within an ARN's colon-separated segments, but a '*' that ends a segment
    # may expand across later colons; a '*' or '?' inside a segment never spans a colon.
    parts = []
    for i, c in enumerate(pattern):
        if c == "*":
            ends_segment = i + 1 == len(pattern) or pattern[i + 1] == ":"
            parts.append(".*" if ends_segment else "[^:]*")
        elif c == "?":
            parts.append("[^:]")
        else:
            parts.append(re.escape(c))
    return re.compile("".join(parts), re.DOTALL)


def arn_match(pattern: str, value: str) -> bool:
    """Match a Resource (or ArnLike) pattern against an ARN the way IAM does; ``*`` alone matches anything."""
    if pattern == "*":
        return True
    return _arn_glob(pattern).fullmatch(value) is not None


def action_match(pattern: str, action: str) -> bool:
    """IAM action names are case-insensitive; wildcards as in :func:`glob_match`."""
    return glob_match(pattern, action, ignore_case=True)


# --------------------------------------------------------------------------------------
# Conditions
# --------------------------------------------------------------------------------------
def _string_equals(policy: str, actual: str) -> bool:
    return policy == actual


def _string_like(policy: str, actual: str) -> bool:
    return glob_match(policy, actual)


def _arn_equals(policy: str, actual: str) -> bool:
    # ArnEquals and ArnLike behave alike: both accept wildcards in each ARN segment.
    return arn_match(policy, actual)


def _bool(policy: str, actual: str) -> bool:
    return policy.lower() == actual.lower()


def _numeric(compare):
    def match(policy: str, actual: str) -> bool:
        try:
            return compare(float(actual), float(policy))
        except ValueError as exc:
            raise IamEvalError(f"numeric condition: {actual!r} or {policy!r} is not a number") from exc

    return match


# operator -> (value matcher, negated). A negated operator is true when the key's value matches none
# of the policy values (logical AND), a positive one when it matches any (logical OR).
_OPERATORS = {
    "StringEquals": (_string_equals, False),
    "StringNotEquals": (_string_equals, True),
    "StringEqualsIgnoreCase": (lambda p, a: p.lower() == a.lower(), False),
    "StringNotEqualsIgnoreCase": (lambda p, a: p.lower() == a.lower(), True),
    "StringLike": (_string_like, False),
    "StringNotLike": (_string_like, True),
    "ArnEquals": (_arn_equals, False),
    "ArnNotEquals": (_arn_equals, True),
    "ArnLike": (_arn_equals, False),
    "ArnNotLike": (_arn_equals, True),
    "Bool": (_bool, False),
    "NumericEquals": (_numeric(lambda a, p: a == p), False),
    "NumericNotEquals": (_numeric(lambda a, p: a == p), True),
    "NumericLessThan": (_numeric(lambda a, p: a < p), False),
    "NumericLessThanEquals": (_numeric(lambda a, p: a <= p), False),
    "NumericGreaterThan": (_numeric(lambda a, p: a > p), False),
    "NumericGreaterThanEquals": (_numeric(lambda a, p: a >= p), False),
}


def _as_string(value: Any, *, what: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return value
    raise IamEvalError(f"{what}: expected a string, boolean or number, got {value!r}")


SET_QUALIFIERS = ("ForAnyValue", "ForAllValues")

# A request's condition values: one string, or a tuple of strings for a multivalued key
# (aws:TagKeys, sagemaker:CustomerMetadataPropertiesToRemove).
RequestValue = Union[str, tuple[str, ...]]


@dataclass(frozen=True)
class Condition:
    """One ``operator: {key: values}`` entry of a statement's Condition block.

    ``ForAnyValue:`` / ``ForAllValues:`` operators compare a multivalued key's values with the policy's (IAM User
    Guide, "Set operators for multivalued context keys"): ForAnyValue is true when at least one request value
    satisfies the operator (false when the key is absent or empty), ForAllValues when every one does (true when the
    key is absent or empty). A single value given for such a key is a set of one. A single-valued operator on a
    multivalued key raises: IAM's answer there depends on the key, so it is not guessed.
    """

    operator: str
    key: str
    values: tuple[str, ...]

    def __post_init__(self) -> None:
        if self._base() not in _OPERATORS and self.operator != "Null":
            raise IamEvalError(
                f"condition operator {self.operator!r} (key {self.key!r}) is not modelled; supported: "
                f"{', '.join(sorted(_OPERATORS))}, Null, and their ...IfExists and ForAnyValue:/ForAllValues: forms"
            )

    def _qualifier(self) -> str:
        qualifier, sep, _ = self.operator.partition(":")
        if not sep:
            return ""
        if qualifier not in SET_QUALIFIERS:
            raise IamEvalError(f"condition operator {self.operator!r} (key {self.key!r}): set qualifier {qualifier!r} is not modelled "
                              f"(IAM has {' and '.join(SET_QUALIFIERS)})")
        return qualifier

    def _base(self) -> str:
        return self.operator.partition(":")[2 if self._qualifier() else 0].removesuffix("IfExists")

    def holds(self, context: Mapping[str, RequestValue]) -> bool:
        """Whether the condition is true for ``context`` (keys already lower-cased, values strings or tuples)."""
        actual = context.get(self.key.lower())
        qualifier = self._qualifier()
        if self.operator == "Null":
            # Null: "true" means the key must be absent (or an empty set), "false" that it must be present.
            absent = actual is None or actual == ()
            return any(absent == (v.lower() == "true") for v in self.values)
        matcher, negated = _OPERATORS[self._base()]

        def one(value: str) -> bool:
            hit = any(matcher(v, value) for v in self.values)
            return not hit if negated else hit

        if qualifier:
            request = () if actual is None else (actual if isinstance(actual, tuple) else (actual,))
            if not request and self.operator.endswith("IfExists"):
                return True
            if qualifier == "ForAnyValue":
                return any(one(v) for v in request)
            return all(one(v) for v in request)
        if isinstance(actual, tuple):
            raise IamEvalError(
                f"condition {self.operator} on {self.key!r}: the request carries several values; a multivalued key "
                "needs ForAnyValue:/ForAllValues:"
            )
        if actual is None:
            # Absent key: ...IfExists is true; a negated operator is true; a positive one is false.
            return self.operator.endswith("IfExists") or negated
        return one(actual)


# --------------------------------------------------------------------------------------
# Statements and decisions
# --------------------------------------------------------------------------------------
def _strings(value: Any, *, what: str) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if not isinstance(item, str):
            raise IamEvalError(f"{what}: {item!r} is not a string (resolve intrinsics before building statements)")
        out.append(item)
    if not out:
        raise IamEvalError(f"{what}: is empty")
    return tuple(out)


@dataclass(frozen=True)
class Statement:
    """One identity-policy statement with every value already a plain string."""

    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    not_action: bool = False
    not_resource: bool = False
    conditions: tuple[Condition, ...] = ()
    sid: str = ""
    source: str = ""  # where the statement came from ("Training/ChurnAccessPolicy..."), for messages

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, source: str = "") -> "Statement":
        """Build from a policy statement; raises :class:`IamEvalError` on anything not modelled."""
        where = f"{source or 'statement'} {data.get('Sid', '')}".strip()
        known = {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition"}
        extra = set(data) - known
        if extra:
            raise IamEvalError(f"{where}: unsupported statement element(s) {sorted(extra)} (identity policies only)")
        effect = data.get("Effect")
        if effect not in (ALLOW, "Deny"):
            raise IamEvalError(f"{where}: Effect must be 'Allow' or 'Deny', got {effect!r}")
        if ("Action" in data) == ("NotAction" in data):
            raise IamEvalError(f"{where}: needs exactly one of Action / NotAction")
        if ("Resource" in data) == ("NotResource" in data):
            raise IamEvalError(f"{where}: needs exactly one of Resource / NotResource")
        not_action = "NotAction" in data
        not_resource = "NotResource" in data
        actions = _strings(data["NotAction" if not_action else "Action"], what=f"{where} Action")
        for action in actions:
            if action != "*" and ":" not in action:
                raise IamEvalError(f"{where}: action {action!r} is not 'service:Name'")
        resources = _strings(data["NotResource" if not_resource else "Resource"], what=f"{where} Resource")
        conditions = []
        for operator, by_key in (data.get("Condition") or {}).items():
            if not isinstance(by_key, Mapping):
                raise IamEvalError(f"{where}: Condition {operator!r} must map keys to values")
            for key, values in by_key.items():
                items = values if isinstance(values, list) else [values]
                conditions.append(
                    Condition(operator, key, tuple(_as_string(v, what=f"{where} Condition {operator} {key}") for v in items))
                )
        return cls(effect, actions, resources, not_action, not_resource, tuple(conditions), data.get("Sid", ""), source)

    def matches(self, action: str, resource: str, context: Mapping[str, str]) -> bool:
        """Whether this statement applies to the request (regardless of its effect)."""
        action_hit = any(action_match(p, action) for p in self.actions)
        if action_hit == self.not_action:
            return False
        resource_hit = any(arn_match(p, resource) for p in self.resources)
        if resource_hit == self.not_resource:
            return False
        return all(c.holds(context) for c in self.conditions)


@dataclass(frozen=True)
class Decision:
    """The outcome of :func:`evaluate` / :func:`authorize` and the statements that decided it."""

    outcome: str  # ALLOW, EXPLICIT_DENY or IMPLICIT_DENY
    statements: tuple[Statement, ...] = ()
    resource: str = ""  # for a denied multi-resource request: the resource that was not allowed

    @property
    def allowed(self) -> bool:
        return self.outcome == ALLOW

    def __str__(self) -> str:
        who = ", ".join(f"{s.source}:{s.sid}" for s in self.statements)
        return f"{self.outcome}" + (f" on {self.resource}" if self.resource else "") + (f" by {who}" if who else "")


def _normalise_context(context: Optional[Mapping[str, ContextValue]]) -> dict[str, RequestValue]:
    out: dict[str, RequestValue] = {}
    for key, value in (context or {}).items():
        # Condition keys are case-insensitive, their values are not. A list is a multivalued key's values.
        if isinstance(value, (list, tuple, set, frozenset)):
            out[key.lower()] = tuple(_as_string(v, what=f"context key {key!r}") for v in value)
        else:
            out[key.lower()] = _as_string(value, what=f"context key {key!r}")
    return out


def evaluate(
    statements: Iterable[Statement], action: str, resource: str, context: Optional[Mapping[str, ContextValue]] = None
) -> Decision:
    """Decide a request: an explicit Deny wins, then any Allow, else an implicit deny.

    ``context`` maps condition keys (case-insensitive) to values; a key that is left out is absent
    from the request, which is not the same as an empty value.
    """
    _check_single_resource(action)
    return _evaluate_one(statements, action, resource, context)


def _check_concrete(action: str) -> None:
    if not isinstance(action, str) or action.count(":") != 1 or "*" in action or "?" in action:
        raise IamEvalError(f"action: {action!r} must be one concrete 'service:Name' (no wildcards)")


def _check_single_resource(action: str) -> None:
    _check_concrete(action)
    required = _required_types(action)
    if len(required) > 1:
        raise IamEvalError(
            f"action: {action} is authorized against {' and '.join(required)}; decide it with authorize() "
            "naming one ARN for each"
        )


def _required_types(action: str) -> tuple[str, ...]:
    try:
        return tuple(rt.name for rt in iam_actions.action(action).required)
    except iam_actions.UnknownAction as exc:
        raise IamEvalError(f"action: {exc}") from exc


def authorize(
    role: Union["Role", Iterable[Statement]],
    action: str,
    resources: Mapping[str, str],
    context: Optional[Mapping[str, ContextValue]] = None,
) -> Decision:
    """Decide a request that names one ARN per resource type, as AWS does for multi-resource actions.

    ``resources`` maps each of the action's required resource types (``{"endpoint": arn,
    "endpoint-config": arn}``) to the ARN the request involves; a missing or unknown type raises. The
    request is allowed only when every resource is allowed; an explicit Deny on any of them wins.
    """
    statements = tuple(role.statements if isinstance(role, Role) else role)
    _check_concrete(action)
    required = _required_types(action)
    missing = [t for t in required if t not in resources]
    if missing or not resources:
        raise IamEvalError(
            f"action: {action} is authorized against {', '.join(required) or 'no resource type (*)'}; the request "
            f"names {', '.join(resources) or 'nothing'}"
        )
    known = {rt.name for rt, _ in iam_actions.action(action).resource_types}
    unknown = sorted(set(resources) - known - {"*"})
    if unknown:
        raise IamEvalError(f"action: {action} has no resource type {', '.join(unknown)}; it has {', '.join(sorted(known)) or 'none'}")
    decisions = [(arn, _evaluate_one(statements, action, arn, context)) for arn in resources.values()]
    for arn, decision in decisions:
        if decision.outcome == EXPLICIT_DENY:
            return Decision(EXPLICIT_DENY, decision.statements, arn)
    for arn, decision in decisions:
        if not decision.allowed:
            return Decision(IMPLICIT_DENY, (), arn)
    return Decision(ALLOW, tuple(s for _, d in decisions for s in d.statements))


def _evaluate_one(
    statements: Iterable[Statement], action: str, resource: str, context: Optional[Mapping[str, ContextValue]]
) -> Decision:
    ctx = _normalise_context(context)
    hits = [s for s in statements if s.matches(action, resource, ctx)]
    denies = tuple(s for s in hits if s.effect == "Deny")
    if denies:
        return Decision(EXPLICIT_DENY, denies)
    allows = tuple(s for s in hits if s.effect == ALLOW)
    return Decision(ALLOW, allows) if allows else Decision(IMPLICIT_DENY)


# --------------------------------------------------------------------------------------
# Roles from templates
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StackTemplate:
    """A synthesized template, its short label (e.g. ``Training``) and its deployed stack name."""

    label: str
    name: str
    template: Mapping[str, Any]


@dataclass(frozen=True)
class Role:
    """An ``AWS::IAM::Role`` and every identity-policy statement that applies to it."""

    stack: str
    logical_id: str
    name: str  # RoleName, or the generated-name stand-in (see the module docstring)
    arn: str
    named: bool  # True when the template sets RoleName
    statements: tuple[Statement, ...] = field(default=(), repr=False)

    @property
    def key(self) -> str:
        return f"{self.stack}/{self.logical_id}"

    def __str__(self) -> str:
        return self.name if self.named else self.key


def allowed(
    role: Union[Role, Iterable[Statement]], action: str, resource: str, context: Optional[Mapping[str, ContextValue]] = None
) -> bool:
    """True when ``role`` (or a plain list of statements) may call ``action`` on ``resource``."""
    statements = role.statements if isinstance(role, Role) else role
    return evaluate(statements, action, resource, context).allowed


def service_statements(document: Mapping[str, Any], service: str, *, source: str = "") -> tuple[Statement, ...]:
    """The statements of a resource-based policy (resolved, e.g. by :meth:`IamModel.resolve`) that apply to
    requests of the service principal ``service`` (``events.amazonaws.com``), as identity-style statements.

    A statement applies when its ``Principal`` names the service (``{"Service": ...}``) or everyone
    (``"*"``, ``{"AWS": "*"}``); the ``Principal`` element is then dropped so :func:`evaluate` decides its
    action, resource and conditions. ``NotPrincipal`` raises (not modelled). For a same-account service
    principal the resource policy alone decides, so this is the whole decision for such a request.
    """
    raw = document.get("Statement", [])
    out = []
    for data in raw if isinstance(raw, list) else [raw]:
        if "NotPrincipal" in data:
            raise IamEvalError(f"{source} {data.get('Sid', '')}: NotPrincipal is not modelled")
        principal = data.get("Principal")
        if principal is None:
            raise IamEvalError(f"{source} {data.get('Sid', '')}: a resource-policy statement needs a Principal")
        if principal == "*":
            names: tuple[str, ...] = ("*",)
        elif isinstance(principal, Mapping):
            names = tuple(
                f"{kind}:{name}" for kind, value in principal.items() for name in (value if isinstance(value, list) else [value])
            )
        else:
            raise IamEvalError(f"{source} {data.get('Sid', '')}: unexpected Principal {principal!r}")
        if "*" in names or "AWS:*" in names or f"Service:{service}" in names:
            out.append(Statement.from_json({k: v for k, v in data.items() if k != "Principal"}, source=source))
    return tuple(out)


_PSEUDO = ("AWS::Partition", "AWS::AccountId", "AWS::Region", "AWS::URLSuffix", "AWS::StackName")


class IamModel:
    """Every role of a set of stacks (one environment) with the statements that apply to it.

    ``account``, ``region`` and ``partition`` (default ``aws``) are the values pseudo parameters
    resolve to; every stack in ``stacks`` is taken to be deployed there.
    """

    def __init__(self, stacks: Sequence[StackTemplate], *, account: str, region: str, partition: str = "aws"):
        labels = [s.label for s in stacks]
        if len(set(labels)) != len(labels):
            raise IamEvalError(f"stacks: labels must be unique, got {labels}")
        self.account, self.region, self.partition = account, region, partition
        self.stacks = {s.label: s for s in stacks}
        self._by_name = {s.name: s for s in stacks}
        self._role_names: dict[tuple[str, str], tuple[str, bool]] = {}
        for stack in stacks:
            for logical_id, resource in self._resources(stack).items():
                if resource.get("Type") == "AWS::IAM::Role":
                    props = resource.get("Properties") or {}
                    if "PermissionsBoundary" in props:
                        raise IamEvalError(f"{stack.label}/{logical_id}: permission boundaries are not modelled")
                    if "RoleName" in props:
                        name = self.resolve(stack.label, props["RoleName"])
                        self._role_names[(stack.label, logical_id)] = (name, True)
                    else:
                        self._role_names[(stack.label, logical_id)] = (f"{stack.name}-{logical_id}-{RANDOM_SUFFIX}", False)
        self.roles: dict[str, Role] = self._collect()

    # -- intrinsics -------------------------------------------------------------------
    @staticmethod
    def _resources(stack: StackTemplate) -> Mapping[str, Any]:
        return stack.template.get("Resources") or {}

    def _role_arn(self, stack: str, logical_id: str) -> str:
        name, _ = self._role_names[(stack, logical_id)]
        props = self._resources(self.stacks[stack])[logical_id].get("Properties") or {}
        path = self.resolve(stack, props.get("Path", "/"))
        return f"arn:{self.partition}:iam::{self.account}:role{path}{name}"

    def resolve(self, stack: str, value: Any) -> Any:
        """``value`` from template ``stack`` with every intrinsic replaced by a string (see module docstring)."""
        if stack not in self.stacks:
            raise IamEvalError(f"stack: unknown label {stack!r}; loaded: {', '.join(self.stacks)}")
        if isinstance(value, list):
            return [self.resolve(stack, v) for v in value]
        if isinstance(value, str):
            if "${" in value:
                raise IamEvalError(f"{stack}: {value!r} holds a policy variable or Fn::Sub syntax; not modelled")
            return value
        if not isinstance(value, dict):
            return value
        intrinsic = [k for k in value if k == "Ref" or k.startswith("Fn::")]
        if not intrinsic:
            return {k: self.resolve(stack, v) for k, v in value.items()}
        if len(value) != 1:
            raise IamEvalError(f"{stack}: malformed intrinsic {value!r}")
        (name, arg), = value.items()
        if name == "Ref":
            return self._ref(stack, arg)
        if name == "Fn::GetAtt":
            logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
            if (stack, logical_id) in self._role_names and attribute == "Arn":
                return self._role_arn(stack, logical_id)
            self._require_resource(stack, logical_id)
            return f"${{{stack}/{logical_id}.{attribute}}}"
        if name == "Fn::Join":
            separator, parts = arg
            resolved = self.resolve(stack, parts)
            if not all(isinstance(p, str) for p in resolved):
                raise IamEvalError(f"{stack}: Fn::Join over non-strings {resolved!r}")
            return separator.join(resolved)
        if name == "Fn::GetStackOutput":
            return self._stack_output(arg)
        raise IamEvalError(f"{stack}: intrinsic {name} is not modelled (in {value!r})")

    def _ref(self, stack: str, target: str) -> str:
        pseudo = {
            "AWS::Partition": self.partition,
            "AWS::AccountId": self.account,
            "AWS::Region": self.region,
            "AWS::URLSuffix": "amazonaws.com.cn" if self.partition == "aws-cn" else "amazonaws.com",
            "AWS::StackName": self.stacks[stack].name,
        }
        if target in pseudo:
            return pseudo[target]
        if target.startswith("AWS::"):
            raise IamEvalError(f"{stack}: pseudo parameter {target} is not modelled; known: {', '.join(_PSEUDO)}")
        if (stack, target) in self._role_names:
            return self._role_names[(stack, target)][0]
        if target not in (self.stacks[stack].template.get("Parameters") or {}):
            self._require_resource(stack, target)
        return f"${{{stack}/{target}}}"

    def _require_resource(self, stack: str, logical_id: str) -> None:
        if logical_id not in self._resources(self.stacks[stack]):
            raise IamEvalError(f"{stack}: reference to unknown logical id {logical_id!r}")

    def _stack_output(self, arg: Mapping[str, Any]) -> str:
        stack_name, output = arg["StackName"], arg["OutputName"]
        if arg.get("Region", self.region) != self.region:
            return f"${{Output:{arg['Region']}/{stack_name}/{output}}}"
        source = self._by_name.get(stack_name)
        outputs = (source.template.get("Outputs") or {}) if source else {}
        if output in outputs:
            return self.resolve(source.label, outputs[output]["Value"])
        return f"${{Output:{stack_name}/{output}}}"

    # -- statements -------------------------------------------------------------------
    def _statements(self, stack: str, document: Mapping[str, Any], source: str) -> list[Statement]:
        resolved = self.resolve(stack, document)
        raw = resolved.get("Statement", [])
        return [Statement.from_json(s, source=source) for s in (raw if isinstance(raw, list) else [raw])]

    def _collect(self) -> dict[str, Role]:
        by_name = {name: key for key, (name, _) in self._role_names.items()}
        attached: dict[tuple[str, str], list[Statement]] = {key: [] for key in self._role_names}
        managed: dict[str, list[Statement]] = {}  # resolved Ref of a managed policy -> its statements

        def attach(stack: str, logical_id: str, names: Any, statements: list[Statement]) -> None:
            for name in self.resolve(stack, names if isinstance(names, list) else [names]):
                if name not in by_name:
                    raise IamEvalError(f"{stack}/{logical_id}: attaches to role {name!r}, which no loaded template defines")
                attached[by_name[name]].extend(statements)

        for label, stack in self.stacks.items():
            for logical_id, resource in self._resources(stack).items():
                kind, props = resource.get("Type"), resource.get("Properties") or {}
                source = f"{label}/{logical_id}"
                if kind == "AWS::IAM::ManagedPolicy":
                    statements = self._statements(label, props["PolicyDocument"], source)
                    managed[self._ref(label, logical_id)] = statements
                    attach(label, logical_id, props.get("Roles", []), statements)
                elif kind == "AWS::IAM::Policy":
                    attach(label, logical_id, props.get("Roles", []), self._statements(label, props["PolicyDocument"], source))
                elif kind == "AWS::IAM::RolePolicy":
                    attach(label, logical_id, props["RoleName"], self._statements(label, props["PolicyDocument"], source))
                elif kind == "AWS::IAM::Role":
                    for policy in props.get("Policies", []):
                        name = self.resolve(label, policy.get("PolicyName", ""))
                        attached[(label, logical_id)].extend(
                            self._statements(label, policy["PolicyDocument"], f"{source}[{name}]")
                        )
        roles = {}
        for (label, logical_id), (name, named) in self._role_names.items():
            props = self._resources(self.stacks[label])[logical_id].get("Properties") or {}
            statements = list(attached[(label, logical_id)])
            for arn in self.resolve(label, props.get("ManagedPolicyArns", [])):
                if arn not in managed:
                    raise IamEvalError(
                        f"{label}/{logical_id}: managed policy {arn!r} is not defined in the loaded templates, so its "
                        "statements cannot be evaluated"
                    )
                statements.extend(managed[arn])
            role = Role(label, logical_id, name, self._role_arn(label, logical_id), named, tuple(statements))
            roles[role.key] = role
        return roles

    # -- lookups ----------------------------------------------------------------------
    def role(self, ref: str) -> Role:
        """A role by RoleName, ``<stack>/<LogicalId>``, ARN, or a logical id that only one stack uses.

        Raises naming the known roles when nothing matches, or the candidates when a bare logical id is
        used by several stacks (qualify it with the stack label then).
        """
        for role in self.roles.values():
            if ref in (role.key, role.arn) or (role.named and ref == role.name):
                return role
        by_id = [r for r in self.roles.values() if r.logical_id == ref]
        if len(by_id) == 1:
            return by_id[0]
        if by_id:
            raise IamEvalError(f"role: logical id {ref!r} is ambiguous; use one of {', '.join(sorted(r.key for r in by_id))}")
        raise IamEvalError(f"role: no role {ref!r}; known: {', '.join(sorted(str(r) for r in self.roles.values()))}")

    def resources(self, cfn_type: str) -> list[tuple[str, str, Mapping[str, Any]]]:
        """``(stack label, logical id, properties)`` of every resource of ``cfn_type`` in the loaded stacks."""
        return [
            (label, logical_id, r.get("Properties") or {})
            for label, stack in self.stacks.items()
            for logical_id, r in self._resources(stack).items()
            if r.get("Type") == cfn_type
        ]
