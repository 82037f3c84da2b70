"""How the construct tests read a bare stack after the construct under test was added."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import CfnResource, Stack, Validations
from aws_cdk.assertions import Template
from constructs import IConstruct
from tests.support.templates import policy_statements


class BuiltStack:
    """``stack`` synthesized once (``template``), with lookups by resource type, construct and access policy."""

    def __init__(self, stack: Stack):
        self.stack = stack
        self.template = Template.from_stack(stack)

    def of_type(self, cfn_type: str) -> dict[str, dict]:
        return self.template.find_resources(cfn_type)

    def one(self, cfn_type: str) -> dict:
        (resource,) = self.of_type(cfn_type).values()
        return resource

    def id_of(self, construct: Any) -> str:
        """The logical id of ``construct`` (of its default child, for an L2 construct)."""
        return self.stack.get_logical_id(construct.node.default_child or construct)

    def arn_of(self, construct_id: str) -> dict:
        """``Fn::GetAtt <id>.Arn`` of the stack's top-level construct ``construct_id``."""
        return {"Fn::GetAtt": [self.id_of(self.stack.node.find_child(construct_id)), "Arn"]}

    def statements_of(self, access: Any) -> dict[str, dict]:
        """The statements of an ``AccessPolicy`` (every part of it), by Sid."""
        return policy_statements(self.of_type("AWS::IAM::ManagedPolicy"), [self.id_of(p) for p in access.managed_policies])

    def resources_of(self, construct: IConstruct) -> dict[str, dict]:
        """The template's resources that ``construct`` and its children made (not the test's stand-ins)."""
        ids = {self.stack.get_logical_id(c) for c in construct.node.find_all() if isinstance(c, CfnResource)}
        return {k: v for k, v in self.template.to_json()["Resources"].items() if k in ids}


def acknowledged(construct: IConstruct) -> dict[str, str]:
    """The cdk-nag findings acknowledged on ``construct`` itself (``nag.acknowledge``): rule -> reason."""
    return {rule.removeprefix("Annotation::"): reason for entry in construct.node.metadata
            if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY for rule, reason in entry.data.items()}


def scheduled_request(schedule: dict) -> dict:
    """The API request an ``AWS::Scheduler::Schedule`` resource sends, parsed; a ``Ref`` or ``Fn::GetAtt`` in it
    reads ``${Id}`` / ``${Id.Attr}``, a cross-stack ``Fn::GetStackOutput`` (a whole app's synth) ``${Stack.Output}``,
    a part of a parameter (``Fn::Select`` of an ``Fn::Split``) ``${Parameter|split:<separator>|<index>}``."""
    joined = schedule["Properties"]["Target"]["Input"]["Fn::Join"]
    return json.loads("".join(_render(part) for part in joined[1]))


def evaluate(expression: Any, parameters: dict[str, str]) -> Any:
    """The value of a template expression given its parameters' values: literals, ``Ref`` to a parameter,
    ``Fn::Split``, ``Fn::Select`` and ``Fn::Join`` (anything else fails the test)."""
    if isinstance(expression, (str, int)):
        return expression
    if isinstance(expression, list):
        return [evaluate(e, parameters) for e in expression]
    ((function, argument),) = expression.items()
    if function == "Ref":
        return parameters[argument]
    if function == "Fn::Split":
        return evaluate(argument[1], parameters).split(argument[0])
    if function == "Fn::Select":
        return evaluate(argument[1], parameters)[int(argument[0])]
    if function == "Fn::Join":
        return argument[0].join(evaluate(argument[1], parameters))
    raise AssertionError(f"unexpected intrinsic {function}")


def _render(part: Any) -> str:
    if isinstance(part, str):
        return part
    if "Ref" in part:
        return "${%s}" % part["Ref"]
    if "Fn::GetAtt" in part:
        return "${%s.%s}" % tuple(part["Fn::GetAtt"])
    if "Fn::GetStackOutput" in part:
        return "${%(StackName)s.%(OutputName)s}" % part["Fn::GetStackOutput"]
    if "Fn::Select" in part and "Fn::Split" in part["Fn::Select"][1] and "Ref" in part["Fn::Select"][1]["Fn::Split"][1]:
        # A part of a parameter, e.g. the version of a package ARN: ``${Parameter|split:/|2}``.
        index, (separator, ref) = part["Fn::Select"][0], part["Fn::Select"][1]["Fn::Split"]
        return "${%s|split:%s|%s}" % (ref["Ref"], separator, index)
    raise AssertionError(f"unexpected token in the request: {part}")
