"""Reading synthesized templates in tests: a bare stack's template once, resources by type, joined strings, a role's
statements."""

from __future__ import annotations

import json
import re
from typing import Any, Iterable, Mapping

from mlops_loop.constructs.access_policy import PSEUDO_LENGTHS, UNKNOWN_LENGTH


# A stack and its template, by the stack's id (the stack kept alive so the id is not reused).
_SYNTHESIZED: dict[int, tuple[Any, dict]] = {}


def template_of(stack: Any) -> dict:
    """``stack``'s template, synthesized at the first call for it: a test reading several of its resources (through
    several helpers) pays one synth. Only for stacks the tests do not change after the first read."""
    if id(stack) not in _SYNTHESIZED:
        from aws_cdk.assertions import Template

        _SYNTHESIZED[id(stack)] = (stack, Template.from_stack(stack).to_json())
    return _SYNTHESIZED[id(stack)][1]


def of_type(template: dict, cfn_type: str) -> dict[str, dict]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == cfn_type}


def _joined(value, leaf) -> str:
    """A CloudFormation string, ``Fn::Join`` resolved, every other intrinsic replaced by ``leaf(intrinsic)``."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and set(value) == {"Fn::Join"}:
        separator, parts = value["Fn::Join"]
        return separator.join(_joined(p, leaf) for p in parts)
    return leaf(value)


def _marker(value) -> str:
    (fn, arg), = value.items()
    if fn == "Ref":
        return f"<Ref:{arg}>"
    if fn == "Fn::GetAtt":
        return f"<GetAtt:{arg[0]}.{arg[1]}>"
    if fn == "Fn::GetStackOutput":
        return f"<Output:{arg['OutputName']}>"
    if fn == "Fn::Select" and isinstance(arg[1], dict) and set(arg[1]) == {"Fn::Split"}:
        # A part of a string, e.g. the version of a package ARN parameter: <Select:2:Split:/:Ref:Parameter>.
        separator, whole = arg[1]["Fn::Split"]
        return f"<Select:{arg[0]}:Split:{separator}:{_marker(whole)[1:-1]}>"
    raise AssertionError(f"unexpected intrinsic {value!r}")


def flatten(value) -> str:
    """A string built with Fn::Join, with every other intrinsic replaced by a readable placeholder."""
    return _joined(value, _marker)


def role_statements(template: dict, role_logical_id: str) -> list[dict]:
    """Every statement of the managed policies attached to the role (the app uses no inline policies)."""
    out = []
    for policy in of_type(template, "AWS::IAM::ManagedPolicy").values():
        if {"Ref": role_logical_id} in policy["Properties"].get("Roles", []):
            out.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    assert out, f"no managed policy attached to {role_logical_id}"
    assert not of_type(template, "AWS::IAM::Policy"), "inline policies are not expected"
    return out


def listify(value) -> list:
    return value if isinstance(value, list) else [value]


def statement_actions(statement: dict) -> list[str]:
    return listify(statement["Action"])


def writable_prefixes(statements: list[dict], bucket: str) -> list[str]:
    """``s3://bucket/prefix`` for every object pattern the statements let the role write."""
    out = []
    for s in statements:
        if "s3:PutObject" in statement_actions(s):
            for resource in listify(s["Resource"]):
                arn = flatten(resource)
                if arn.startswith(f"arn:aws:s3:::{bucket}/"):
                    out.append("s3://" + arn.removeprefix("arn:aws:s3:::").removesuffix("*"))
    return out


def join_string(value) -> str:
    """A CloudFormation string (possibly Fn::Join of strings and intrinsics), intrinsics replaced by TOKEN."""
    return _joined(value, lambda _: "TOKEN")


def policy_statements(resources: Mapping[str, dict], logical_ids: Iterable[str]) -> dict[str, dict]:
    """The statements, by Sid, of the managed policies ``logical_ids`` (an ``AccessPolicy``'s parts, which together
    are its document: a policy past IAM's size limit continues in another)."""
    return {s["Sid"]: s for logical_id in logical_ids for s in resources[logical_id]["Properties"]["PolicyDocument"]["Statement"]}


def described_policies(resources: Mapping[str, dict], description: str) -> list[str]:
    """The logical ids of the managed policies that are ``description`` or its continuation parts ("... (part 2)")."""
    part = re.compile(re.escape(description) + r"( \(part \d+\))?")
    return [k for k, r in resources.items()
            if r["Type"] == "AWS::IAM::ManagedPolicy" and part.fullmatch(r["Properties"].get("Description", ""))]


def estimated_policy_length(node: Any) -> int:
    """The length of a synthesized policy document as IAM counts it (no whitespace), each intrinsic counted as the
    longest value it takes (``access_policy``'s lengths: what AccessPolicy budgets for, measured on the template)."""
    if isinstance(node, dict):
        if len(node) == 1:
            (key, value), = node.items()
            if key == "Ref":
                return PSEUDO_LENGTHS.get(value, UNKNOWN_LENGTH) + 2
            if key == "Fn::Join" and isinstance(value, list) and len(value) == 2 and isinstance(value[1], list):
                separator, parts = value
                # Each part's length without the quotes it would have on its own; the joined string has one pair.
                return 2 + len(separator) * max(len(parts) - 1, 0) + sum(estimated_policy_length(p) - 2 for p in parts)
            if key.startswith("Fn::"):
                return UNKNOWN_LENGTH + 2
        return 2 + sum(len(json.dumps(k)) + 1 + estimated_policy_length(v) for k, v in node.items()) + max(len(node) - 1, 0)
    if isinstance(node, list):
        return 2 + sum(estimated_policy_length(v) for v in node) + max(len(node) - 1, 0)
    return len("".join(json.dumps(node).split()))
