"""Offline validation of the AWS API requests that the synthesized templates carry verbatim.

CloudFormation hands two kinds of payload to AWS without looking inside them, and AWS validates
them only when they run:

- EventBridge Scheduler universal targets: an ``AWS::Scheduler::Schedule`` whose ``Target.Arn`` is
  ``arn:<partition>:scheduler:::aws-sdk:<service>:<apiAction>`` sends ``Target.Input``, a JSON
  string, as the request of that API. The action is camelCase (``createProcessingJob``), the
  members are the API's own, PascalCase (``ProcessingJobName``);
- SageMaker Pipelines: in an ``AWS::SageMaker::Pipeline`` definition, each step's ``Arguments`` is
  the request of the SageMaker API that runs the step (:data:`PIPELINE_STEPS`).

:func:`requests_in` finds every such request in a template and :func:`validate` checks it with
botocore's own ``ParamValidator`` against the operation's input shape from the installed botocore
data (no network). botocore checks required and unknown members, types and minimum lengths and
values; it does not check maximum lengths, patterns or enum values, and neither does this module.

Values known only at deploy or run time are first replaced by a value of the type the shape
expects at their position:

- a CloudFormation intrinsic (or an unresolved ``${Token[...]}``) inside a JSON string becomes
  readable text (``<GetAtt:Role.Arn>``), so the member stays a string, as it will be in AWS; outside
  a JSON string it stands for its resolved text written unquoted, which is only JSON for numbers and
  booleans, so at any other member it is reported;
- a pipeline parameter ``{"Get": "Parameters.X"}`` becomes its default, of its declared type: a
  String parameter at an integer member is reported, as SageMaker would reject it at run time;
- an execution variable ``{"Get": "Execution.X"}`` and ``{"Std:Join": ...}`` are strings;
- a step property ``{"Get": "Steps.X..."}`` and the other ``Std:`` functions take the member's type
  (their own type is that of the referenced response member, which this module does not look up);
  they resolve to a single value, so one in place of a structure, list or map is reported.

Anything this module does not model (a pipeline step type, a definition in S3, an intrinsic where
JSON text is expected) raises :class:`RequestShapeError` instead of guessing.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, Iterator, Mapping

import botocore.session
from botocore.exceptions import UnknownServiceError
from botocore.model import OperationModel, OperationNotFoundError, Shape
from botocore.validate import ParamValidator

SCHEDULER_TARGET = "scheduler target"
PIPELINE_STEP = "pipeline step"

# Step type -> (SageMaker operation, the member SageMaker Pipelines fills in). Pipelines names
# every job, model or package a step creates (``<step name>-<random>``); the SageMaker SDK drops the
# name from the step's arguments unless a custom job prefix is configured (``trim_request_dict``),
# so a step without it is complete. A name written in the step is validated as written.
PIPELINE_STEPS = {
    "Processing": ("CreateProcessingJob", "ProcessingJobName"),
    "QualityCheck": ("CreateProcessingJob", "ProcessingJobName"),
    "ClarifyCheck": ("CreateProcessingJob", "ProcessingJobName"),
    "Training": ("CreateTrainingJob", "TrainingJobName"),
    "Tuning": ("CreateHyperParameterTuningJob", "HyperParameterTuningJobName"),
    "Transform": ("CreateTransformJob", "TransformJobName"),
    "AutoML": ("CreateAutoMLJob", "AutoMLJobName"),
    "Model": ("CreateModel", "ModelName"),
    "RegisterModel": ("CreateModelPackage", "ModelPackageName"),
}
# Steps whose Arguments are not the request of an AWS API: a condition (its branches are walked),
# a failure message, a Lambda payload, the message a callback step sends to SQS.
NO_REQUEST_STEPS = {"Condition", "Fail", "Lambda", "Callback"}

_UNIVERSAL_TARGET = re.compile(r":scheduler:::aws-sdk:(?P<service>[a-z0-9.-]+):(?P<action>[a-zA-Z0-9]+)$")
_CDK_TOKEN = re.compile(r"(\$\{Token\[[^\]]*\]\})")  # one group: re.split keeps the tokens
_SUB_REFERENCE = re.compile(r"\$\{(!?)([^}]*)\}")
_NUMBERS = {"integer", "long", "float", "double"}


class RequestShapeError(ValueError):
    """The template carries something this module does not model; it refuses to guess."""


@dataclass(frozen=True)
class ApiRequest:
    """One AWS API request found in a template, with its deploy- and run-time values still in place."""

    source: str  # "<stack label>/<logical id>"
    kind: str  # SCHEDULER_TARGET or PIPELINE_STEP
    service: str  # botocore's service name
    operation: str  # PascalCase, as in botocore
    params: Mapping[str, Any]
    step: str = ""  # the pipeline step's name
    filled: tuple[str, ...] = ()  # members the service fills in when the request leaves them out
    parameters: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # pipeline parameters by name

    @property
    def label(self) -> str:
        """``<source>: <kind>[ <step>] <service>:<Operation>``, the prefix of every problem reported."""
        where = f"{self.kind} {self.step}" if self.step else self.kind
        return f"{self.source}: {where} {self.service}:{self.operation}"


def requests_in(stack_label: str, template: Mapping[str, Any]) -> list[ApiRequest]:
    """Every AWS API request ``template`` carries: Scheduler universal-target inputs, then pipeline steps."""
    return scheduler_requests(stack_label, template) + pipeline_requests(stack_label, template)


def scheduler_requests(stack_label: str, template: Mapping[str, Any]) -> list[ApiRequest]:
    """The input of every schedule whose target is an AWS API (a universal target), in template order."""
    out = []
    for logical_id, resource in _resources(template, "AWS::Scheduler::Schedule"):
        target = resource["Properties"]["Target"]
        match = _UNIVERSAL_TARGET.search(_text(target["Arn"]))
        if match is None:
            continue  # a templated target (Lambda, SQS, ...): its input is an event, not a request
        action = match["action"]
        out.append(
            ApiRequest(
                source=f"{stack_label}/{logical_id}",
                kind=SCHEDULER_TARGET,
                service=match["service"],
                operation=action[0].upper() + action[1:],
                params=json.loads(_text(target["Input"])) if "Input" in target else {},
            )
        )
    return out


def pipeline_requests(stack_label: str, template: Mapping[str, Any]) -> list[ApiRequest]:
    """The arguments of every API-backed step of every SageMaker pipeline, in definition order."""
    out = []
    for logical_id, resource in _resources(template, "AWS::SageMaker::Pipeline"):
        source = f"{stack_label}/{logical_id}"
        definition = resource["Properties"]["PipelineDefinition"]
        if "PipelineDefinitionBody" not in definition:
            raise RequestShapeError(f"{source}: the definition is not in the template ({sorted(definition)})")
        out.extend(definition_requests(source, pipeline_definition(resource["Properties"])))
    return out


def pipeline_definition(properties: Mapping[str, Any]) -> dict:
    """The pipeline definition of an ``AWS::SageMaker::Pipeline``'s properties, intrinsics rendered as text."""
    return json.loads(_text(properties["PipelineDefinition"]["PipelineDefinitionBody"]))


def definition_requests(source: str, definition: Mapping[str, Any]) -> list[ApiRequest]:
    """The arguments of every API-backed step of a parsed pipeline definition, condition branches included."""
    parameters = {p["Name"]: p for p in definition.get("Parameters", [])}
    return [
        ApiRequest(
            source=source,
            kind=PIPELINE_STEP,
            service="sagemaker",
            operation=PIPELINE_STEPS[step["Type"]][0],
            params=step["Arguments"],
            step=step["Name"],
            filled=(PIPELINE_STEPS[step["Type"]][1],),
            parameters=parameters,
        )
        for step in _steps(source, definition["Steps"])
        if step["Type"] in PIPELINE_STEPS
    ]


def validate(request: ApiRequest) -> list[str]:
    """Every problem of ``request``, one line each, ``<label>: <problem>``; empty when it is valid.

    The problems are botocore's (``Missing required parameter in input: "RoleArn"``) after the
    ones the substitution of deploy- and run-time values found.
    """
    try:
        shape = _operation(request.service, request.operation).input_shape
    except (UnknownServiceError, OperationNotFoundError):
        return [f"{request.label}: no such operation in botocore's service models"]
    substituter = _Substituter(request.parameters)
    params = substituter.value(request.params, shape, "")
    # Only a required member is filled in: botocore would report it missing, and an optional one
    # (a RegisterModel step's ModelPackageName) would change the request (a versioned package has no name).
    for member in set(request.filled) & set(shape.required_members) if isinstance(params, dict) else ():
        params.setdefault(member, _sample(shape.members[member], f"<filled by {request.service}>"))
    report = ParamValidator().validate(params, shape)
    lines = substituter.problems + (report.generate_report().split("\n") if report.has_errors() else [])
    return [f"{request.label}: {line}" for line in lines]


def problems(requests: list[ApiRequest]) -> list[str]:
    """The problems of all ``requests`` (see :func:`validate`), in order."""
    return [line for request in requests for line in validate(request)]


def _resources(template: Mapping[str, Any], cfn_type: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    return ((k, v) for k, v in template.get("Resources", {}).items() if v["Type"] == cfn_type)


def _steps(source: str, steps: list[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    for step in steps:
        kind = step["Type"]
        if kind not in PIPELINE_STEPS and kind not in NO_REQUEST_STEPS:
            raise RequestShapeError(
                f"{source}: pipeline step {step['Name']} has type {kind!r}, unknown here; add it to "
                "PIPELINE_STEPS (with its operation and the member Pipelines fills in) or NO_REQUEST_STEPS"
            )
        yield step
        if kind == "Condition":
            yield from _steps(source, step["Arguments"].get("IfSteps", []) + step["Arguments"].get("ElseSteps", []))


@lru_cache(maxsize=None)
def _operation(service: str, operation: str) -> OperationModel:
    return _session().get_service_model(service).operation_model(operation)


@lru_cache(maxsize=1)
def _session() -> botocore.session.Session:
    return botocore.session.get_session()


class _JsonText:
    """JSON text assembled from literal pieces and CloudFormation intrinsics, tracking whether the
    next piece lands inside a JSON string (an intrinsic there is text; elsewhere it is a JSON value)."""

    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.in_string = False
        self.escaped = False

    def literal(self, text: str) -> None:
        for i, piece in enumerate(_CDK_TOKEN.split(text)):
            if i % 2:
                self.intrinsic({"Token": piece})
            else:
                self._scan(piece)
                self.pieces.append(piece)

    def intrinsic(self, value: Mapping[str, Any]) -> None:
        # Inside a string: readable text, escaped for JSON. Outside: the intrinsic itself, which
        # parses as a one-key object that _Substituter recognises.
        self.pieces.append(json.dumps(_readable(value))[1:-1] if self.in_string else json.dumps(value))

    def _scan(self, text: str) -> None:
        for c in text:
            if self.escaped:
                self.escaped = False
            elif c == "\\" and self.in_string:
                self.escaped = True
            elif c == '"':
                self.in_string = not self.in_string


def _text(value: Any) -> str:
    """The text of a template value: a literal string, or ``Fn::Join``/``Fn::Sub`` of literals and intrinsics."""
    out = _JsonText()
    _emit(out, value)
    return "".join(out.pieces)


def _emit(out: _JsonText, value: Any) -> None:
    if isinstance(value, str):
        out.literal(value)
    elif _is_intrinsic(value) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        for i, part in enumerate(parts):
            if i:
                out.literal(separator)
            _emit(out, part)
    elif _is_intrinsic(value) and "Fn::Sub" in value:
        _emit_sub(out, value["Fn::Sub"])
    elif _is_intrinsic(value):
        out.intrinsic(value)
    else:
        raise RequestShapeError(f"expected text (a string, Fn::Join or Fn::Sub), got {json.dumps(value)[:200]}")


def _emit_sub(out: _JsonText, arg: Any) -> None:
    text, variables = (arg, {}) if isinstance(arg, str) else arg
    position = 0
    for match in _SUB_REFERENCE.finditer(text):
        out.literal(text[position : match.start()])
        bang, name = match.groups()
        if bang:
            out.literal("${" + name + "}")  # ${!Literal} is the literal ${Literal}
        elif name in variables:
            _emit(out, variables[name])
        elif "." in name:
            out.intrinsic({"Fn::GetAtt": name.split(".", 1)})
        else:
            out.intrinsic({"Ref": name})
        position = match.end()
    out.literal(text[position:])


def _is_intrinsic(value: Any) -> bool:
    if not isinstance(value, dict) or len(value) != 1:
        return False
    (key,) = value
    return key == "Ref" or key == "Token" or key.startswith("Fn::")


def _readable(value: Mapping[str, Any]) -> str:
    """``<Ref:X>``, ``<GetAtt:X.Attr>``, ``<Output:Name>``, ``<Token:...>`` or ``<Fn::Name>``."""
    (fn, arg), = value.items()
    if fn == "Ref":
        return f"<Ref:{arg}>"
    if fn == "Fn::GetAtt":
        return f"<GetAtt:{'.'.join(arg) if isinstance(arg, list) else arg}>"
    if fn == "Fn::GetStackOutput":
        return f"<Output:{arg['OutputName']}>"
    if fn == "Fn::ImportValue":
        return f"<Import:{arg if isinstance(arg, str) else _text(arg)}>"
    if fn == "Token":
        return f"<Token:{arg[len('${Token['):-2]}>"
    return f"<{fn}>"


def _is_placeholder(value: Any) -> bool:
    """A pipeline reference (``Get``), a pipeline function (``Std:...``) or an unquoted intrinsic."""
    if not isinstance(value, dict) or len(value) != 1:
        return False
    (key,) = value
    return key == "Get" or key.startswith("Std:") or _is_intrinsic(value)


class _Substituter:
    """Walks a request and its botocore shape together, replacing placeholders (see the module doc)."""

    def __init__(self, parameters: Mapping[str, Mapping[str, Any]]) -> None:
        self.parameters = parameters
        self.problems: list[str] = []

    def value(self, value: Any, shape: Shape, path: str) -> Any:
        if shape.type_name == "structure" and shape.is_document_type:
            return value  # any JSON, placeholders included
        if _is_placeholder(value):
            return self._placeholder(value, shape, path)
        if shape.type_name == "structure" and isinstance(value, dict):
            members = shape.members
            return {k: self.value(v, members[k], _member(path, k)) if k in members else v for k, v in value.items()}
        if shape.type_name == "list" and isinstance(value, list):
            return [self.value(v, shape.member, f"{path}[{i}]") for i, v in enumerate(value)]
        if shape.type_name == "map" and isinstance(value, dict):
            return {k: self.value(v, shape.value, _member(path, k)) for k, v in value.items()}
        return value  # a literal (or a type botocore will report)

    def _placeholder(self, value: Mapping[str, Any], shape: Shape, path: str) -> Any:
        (key, arg), = value.items()
        if shape.type_name in ("structure", "list", "map"):
            self.problems.append(
                f"Placeholder where a {shape.type_name} is expected at {path or 'input'}: {json.dumps(value)}"
            )
            return _sample(shape, self.text(value, path))  # so botocore does not report it a second time
        if _is_intrinsic(value):
            return self._unquoted_intrinsic(value, shape, path)
        if key == "Std:Join" or (key == "Get" and arg.startswith("Execution.")):
            return self.text(value, path)  # always a string, whatever the member's type
        if key == "Get" and arg.startswith("Parameters."):
            return self._parameter(arg.removeprefix("Parameters."), path)
        return _sample(shape, self.text(value, path))  # a step property or a function: the member's own type

    def _unquoted_intrinsic(self, value: Mapping[str, Any], shape: Shape, path: str) -> Any:
        if shape.type_name not in _NUMBERS | {"boolean"}:
            self.problems.append(
                f"Unquoted CloudFormation value where a {shape.type_name} is expected at {path or 'input'} "
                f"(it resolves to text that is not JSON): {json.dumps(value)}"
            )
        return _sample(shape, _readable(value))

    def _parameter(self, name: str, path: str) -> Any:
        declared = self.parameters.get(name)
        if declared is None:
            self.problems.append(f"Undeclared pipeline parameter at {path or 'input'}: \"{name}\"")
            return f"<Parameters.{name}>"
        default = declared.get("DefaultValue")
        kind = declared.get("Type", "String")
        if kind == "Integer":
            return 1 if default is None else int(default)
        if kind == "Float":
            return 1.0 if default is None else float(default)
        if kind == "Boolean":
            return True if default is None else bool(default)
        return f"<Parameters.{name}>" if default is None else str(default)

    def text(self, value: Any, path: str) -> str:
        """The text a value becomes when it is joined (``Std:Join``) or stands for a string member."""
        if isinstance(value, str):
            return value
        if _is_placeholder(value):
            (key, arg), = value.items()
            if key == "Std:Join":
                return arg["On"].join(self.text(v, path) for v in arg["Values"])
            if key == "Get" and arg.startswith("Parameters."):
                return str(self._parameter(arg.removeprefix("Parameters."), path))
            if key == "Get":
                return f"<{arg}>"  # <Execution.PipelineExecutionId>, <Steps.Train.ModelArtifacts...>
            return _readable(value) if _is_intrinsic(value) else f"<{key}>"
        return json.dumps(value)


def _member(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _sample(shape: Shape, text: str) -> Any:
    """A value of ``shape``'s type that meets its minimum: ``text`` (padded) for a string, only the
    required members of a structure (the first member of a union), ``minimum`` items of a list."""
    minimum = shape.metadata.get("min")
    kind = shape.type_name
    if kind == "structure":
        names = list(shape.members)[:1] if shape.is_tagged_union else shape.required_members
        return {name: _sample(shape.members[name], text) for name in names}
    if kind == "list":
        return [_sample(shape.member, text) for _ in range(minimum or 0)]
    if kind == "map":
        return {}
    if kind == "string":
        return shape.enum[0] if shape.enum else text.ljust(minimum or 0, "x")
    if kind in ("integer", "long"):
        return 1 if minimum is None else max(int(minimum), 1)
    if kind in ("float", "double"):
        return 1.0 if minimum is None else float(minimum)
    if kind == "boolean":
        return True
    if kind == "timestamp":
        return datetime(2025, 1, 1, tzinfo=timezone.utc)
    if kind == "blob":
        return text.encode()
    raise RequestShapeError(f"no sample for a {kind} shape")
