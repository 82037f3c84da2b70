"""Does a CloudFormation service role hold every permission its stack's resource handlers will ask for?

:func:`touched_by_parameters` finds the resources a parameter-only update (the approval handler's
``UsePreviousTemplate`` update) creates, updates or deletes: every resource whose condition or
properties depend, directly or through other resources, on a stack parameter. :func:`missing_permissions`
walks each one's handler permissions (:mod:`cfn_handlers`) and asks the IAM evaluator whether the role
may make each call on *every* resource the call involves (:func:`iam_eval.authorize`), with the ARNs
that resource will have once deployed. Each problem is one line naming the stack, resource, handler,
action and the resource that is not allowed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional

from mlops_loop.config import AppConfig
from mlops_loop.tools.cloud_assembly import stacks

from tests.support import cfn_handlers, iam_actions
from tests.support.iam_eval import RANDOM_SUFFIX, IamEvalError, IamModel, Role, StackTemplate, authorize

HANDLERS = ("create", "read", "update", "delete")

# The IAM resource type each CloudFormation type is, and the property holding its name (None: generated).
OWN_TYPE: dict[str, tuple[str, str, Optional[str]]] = {
    "AWS::SageMaker::Model": ("sagemaker", "model", "ModelName"),
    "AWS::SageMaker::EndpointConfig": ("sagemaker", "endpoint-config", "EndpointConfigName"),
    "AWS::SageMaker::Endpoint": ("sagemaker", "endpoint", "EndpointName"),
    "AWS::SageMaker::MonitoringSchedule": ("sagemaker", "monitoring-schedule", "MonitoringScheduleName"),
    "AWS::SageMaker::DataQualityJobDefinition": ("sagemaker", "data-quality-job-definition", "JobDefinitionName"),
    "AWS::SageMaker::ModelQualityJobDefinition": ("sagemaker", "model-quality-job-definition", "JobDefinitionName"),
    "AWS::SageMaker::ModelBiasJobDefinition": ("sagemaker", "model-bias-job-definition", "JobDefinitionName"),
    "AWS::SageMaker::ModelExplainabilityJobDefinition": ("sagemaker", "model-explainability-job-definition",
                                                         "JobDefinitionName"),
    "AWS::CloudWatch::Alarm": ("cloudwatch", "alarm", "AlarmName"),
    "AWS::ApplicationAutoScaling::ScalableTarget": ("application-autoscaling", "ScalableTarget", None),
    "AWS::ApplicationAutoScaling::ScalingPolicy": ("application-autoscaling", "ScalableTarget", None),
    "AWS::SSM::Parameter": ("ssm", "parameter", "Name"),
    "AWS::Scheduler::Schedule": ("scheduler", "schedule", "Name"),
}

# The service a role is passed to, by the type of the resource that passes it.
PASSED_TO = {"AWS::Scheduler::Schedule": "scheduler.amazonaws.com"}
AUTOSCALING_SERVICE_ROLE = "sagemaker.application-autoscaling.amazonaws.com"
SERVICE_NAMESPACE = "application-autoscaling:service-namespace"


def assembly_model(outdir: Path, config: AppConfig, env: str) -> IamModel:
    """The IAM model of environment ``env`` of a synthesized assembly (every stack, labelled by construct id)."""
    cfg = config.environments[env]
    return IamModel(
        [StackTemplate(s.construct_id, s.stack_name, s.template) for s in stacks(outdir) if s.stage == env],
        account=cfg.account, region=cfg.region,
    )


@dataclass(frozen=True)
class Touched:
    """A resource of ``stack`` that a parameter-only update may create, update or delete."""

    stack: str
    logical_id: str
    type: str
    properties: Mapping[str, Any]


def _references(value: Any) -> Iterator[str]:
    """Logical ids and parameter names that ``value`` refers to (Ref, GetAtt, Sub, If conditions excluded)."""
    if isinstance(value, dict):
        for key, arg in value.items():
            if key == "Ref" and isinstance(arg, str):
                yield arg
            elif key == "Fn::GetAtt":
                yield (arg[0] if isinstance(arg, list) else arg.split(".", 1)[0])
            else:
                yield from _references(arg)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item)


def _condition_parameters(template: Mapping[str, Any], condition: str, seen: frozenset[str] = frozenset()) -> set[str]:
    expression = (template.get("Conditions") or {}).get(condition)
    found = {r for r in _references(expression) if r in (template.get("Parameters") or {})}
    for nested in _nested_conditions(expression):
        if nested not in seen:
            found |= _condition_parameters(template, nested, seen | {condition})
    return found


def _nested_conditions(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, arg in value.items():
            if key == "Condition" and isinstance(arg, str):
                yield arg
            else:
                yield from _nested_conditions(arg)
    elif isinstance(value, list):
        for item in value:
            yield from _nested_conditions(item)


def touched_by_parameters(stack: str, template: Mapping[str, Any]) -> list[Touched]:
    """Resources whose existence or properties follow a stack parameter, directly or through other resources."""
    resources = template.get("Resources") or {}
    parameters = set(template.get("Parameters") or {}) - {"BootstrapVersion"}
    touched: set[str] = set()
    changed = True
    while changed:
        changed = False
        for logical_id, resource in resources.items():
            if logical_id in touched:
                continue
            depends = set(_references(resource.get("Properties") or {}))
            condition = resource.get("Condition")
            if condition:
                depends |= _condition_parameters(template, condition) or {"<condition>"}
            if depends & (parameters | touched) or "<condition>" in depends:
                touched.add(logical_id)
                changed = True
    return [Touched(stack, lid, resources[lid]["Type"], resources[lid].get("Properties") or {}) for lid in sorted(touched)]


class Deployment:
    """The ARNs a touched resource will have, and the requests each of its handler calls makes."""

    def __init__(self, model: IamModel, resource: Touched):
        self.model, self.resource = model, resource
        self.template = model.stacks[resource.stack].template
        self.region, self.account, self.partition = model.region, model.account, model.partition

    def arn(self, service: str, resource: str, *, region: Optional[str] = None, account: Optional[str] = None) -> str:
        region = self.region if region is None else region
        account = self.account if account is None else account
        return f"arn:{self.partition}:{service}:{region}:{account}:{resource}"

    def name_of(self, logical_id: str) -> str:
        """The physical name of ``logical_id``: its name property, else CloudFormation's generated name."""
        resource = self.template["Resources"][logical_id]
        _, _, name_property = OWN_TYPE.get(resource["Type"], (None, None, None))
        props = resource.get("Properties") or {}
        if name_property and name_property in props:
            return self._string(props[name_property])
        return f"{logical_id}-{RANDOM_SUFFIX}"

    def _string(self, value: Any) -> str:
        if isinstance(value, dict) and len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref" and arg in self.template["Resources"]:
                return self.name_of(arg)
            if key == "Fn::GetAtt":
                return self.name_of(arg[0] if isinstance(arg, list) else arg.split(".", 1)[0])
        resolved = self.model.resolve(self.resource.stack, value)
        if not isinstance(resolved, str):
            raise IamEvalError(f"{self.resource.stack}/{self.resource.logical_id}: cannot name {value!r}")
        return resolved

    def arns(self, service: str, iam_type: str, of: Optional[Touched] = None) -> list[str]:
        """The ARNs of IAM type ``service``/``iam_type`` that a handler call on ``of`` (default: this resource) involves."""
        r = of or self.resource
        props = r.properties
        own = OWN_TYPE.get(r.type)
        if own and own[:2] == (service, iam_type):
            return [self._own_arn(r)]
        key = (r.type, service, iam_type)
        if key == ("AWS::SageMaker::Endpoint", "sagemaker", "endpoint-config"):
            return [self.arn("sagemaker", f"endpoint-config/{self._string(props['EndpointConfigName']).lower()}")]
        if service == "iam" and iam_type == "role":
            return self._roles(props)
        if key[0].startswith("AWS::ApplicationAutoScaling::") and (service, iam_type) == ("cloudwatch", "alarm"):
            return [self.arn("cloudwatch", f"alarm:TargetTracking-{self._scalable_resource_id(r)}-AlarmHigh-{RANDOM_SUFFIX}")]
        if key == ("AWS::SageMaker::Endpoint", "cloudwatch", "alarm"):
            alarms = props["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]
            return [self.arn("cloudwatch", f"alarm:{self._string(a['AlarmName'])}") for a in alarms]
        if key == ("AWS::SageMaker::Endpoint", "kms", "key"):
            config = self.template["Resources"][self._referenced(props["EndpointConfigName"])]
            return [self._string(config["Properties"]["KmsKeyId"])] if "KmsKeyId" in config.get("Properties", {}) else []
        raise IamEvalError(f"{r.stack}/{r.logical_id} ({r.type}): no rule names the {service} {iam_type} it involves; "
                           "add one to deploy_permissions.Deployment.arns")

    def _referenced(self, value: Any) -> str:
        (key, arg), = value.items()
        return arg if key == "Ref" else (arg[0] if isinstance(arg, list) else arg.split(".", 1)[0])

    def _scalable_target(self, r: Touched) -> Mapping[str, Any]:
        """The properties of the scalable target ``r`` is (a ScalableTarget) or scales (a ScalingPolicy)."""
        if r.type == "AWS::ApplicationAutoScaling::ScalingPolicy":
            return self.template["Resources"][self._referenced(r.properties["ScalingTargetId"])]["Properties"]
        return r.properties

    def _scalable_resource_id(self, r: Touched) -> str:
        return self._string(self._scalable_target(r)["ResourceId"])

    def _own_arn(self, r: Touched) -> str:
        service, iam_type, _ = OWN_TYPE[r.type]
        if r.type.startswith("AWS::ApplicationAutoScaling::"):
            return self.arn(service, f"scalable-target/{RANDOM_SUFFIX}")
        name = self.name_of(r.logical_id)
        if service == "sagemaker":
            # SageMaker ARNs carry names in lower case.
            return self.arn(service, f"{iam_type}/{name.lower()}")
        if service == "cloudwatch":
            return self.arn(service, f"alarm:{name}")
        if service == "ssm":
            return self.arn(service, f"parameter/{name.lstrip('/')}")
        if service == "scheduler":
            group = self._string(r.properties.get("GroupName", "default"))
            return self.arn(service, f"schedule/{group}/{name}")
        raise IamEvalError(f"{r.stack}/{r.logical_id}: no ARN rule for {r.type}")

    def _roles(self, props: Mapping[str, Any]) -> list[str]:
        found = []

        def walk(value: Any) -> None:
            if isinstance(value, dict):
                for key, arg in value.items():
                    if key.lower().endswith("rolearn"):
                        found.append(self.model.resolve(self.resource.stack, arg))
                    else:
                        walk(arg)
            elif isinstance(value, list):
                for item in value:
                    walk(item)

        walk(props)
        if self.resource.type.startswith("AWS::ApplicationAutoScaling::") and not found:
            found.append(f"arn:{self.partition}:iam::{self.account}:role/aws-service-role/{AUTOSCALING_SERVICE_ROLE}/"
                         "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint")
        return found

    def context(self, action: str) -> dict[str, Any]:
        """The condition keys the call carries (the service a role is passed to, the service-linked role's service,
        the instance types and serverless sizes of what a SageMaker create call creates: :func:`sagemaker_sizing`;
        the tags of a SageMaker resource: :meth:`tag_context`)."""
        return {**self._context(action), **self.tag_context(action)}

    def tag_context(self, action: str) -> dict[str, Any]:
        """The tag keys a SageMaker call on this resource carries, from the template's ``Tags`` of it: a create call
        and AddTags carry them as the request's (``aws:RequestTag/<key>``, ``aws:TagKeys``: tag on create), every
        other call (and AddTags on an update) as the resource's (``aws:ResourceTag/<key>``). Which keys an action
        carries at all is the Service Authorization Reference's (:func:`iam_actions.condition_key_supported`)."""
        if not action.lower().startswith("sagemaker:"):
            return {}
        tags = self.model.resolve(self.resource.stack, (self.resource.properties or {}).get("Tags") or [])
        if not tags:
            return {}
        if not all(isinstance(t, dict) and isinstance(t.get("Key"), str) and isinstance(t.get("Value"), str) for t in tags):
            raise IamEvalError(f"{self.resource.stack}/{self.resource.logical_id}: Tags {tags!r} are not literal Key/Value pairs")
        act = iam_actions.action(action)
        out: dict[str, Any] = {}
        creates = action.split(":", 1)[1].startswith("Create") or action.lower() == "sagemaker:addtags"
        for tag in tags:
            for key in ([f"aws:RequestTag/{tag['Key']}"] if creates else []) + [f"aws:ResourceTag/{tag['Key']}"]:
                if iam_actions.condition_key_supported(act, key):
                    out[key] = tag["Value"]
        if creates and iam_actions.condition_key_supported(act, "aws:TagKeys"):
            out["aws:TagKeys"] = tuple(t["Key"] for t in tags)
        return out

    def _context(self, action: str) -> dict[str, Any]:
        if action.lower() in SIZED_ACTIONS:
            return sagemaker_sizing(self.model.resolve(self.resource.stack, dict(self.resource.properties)), self.resource.type)
        if action.lower() == "iam:passrole":
            return {"iam:PassedToService": PASSED_TO.get(self.resource.type, "sagemaker.amazonaws.com")}
        if action.lower() == "iam:createservicelinkedrole":
            return {"iam:AWSServiceName": AUTOSCALING_SERVICE_ROLE}
        if action.lower().startswith("application-autoscaling:") and iam_actions.condition_key_supported(
                iam_actions.action(action), SERVICE_NAMESPACE):
            # The namespace of the scalable target the call names (a policy names its target).
            return {SERVICE_NAMESPACE: self._string(self._scalable_target(self.resource)["ServiceNamespace"])}
        if action.lower() == "kms:creategrant":
            # The grant is created by SageMaker for the endpoint's volume key, on the caller's behalf
            # (cfn_handlers.SERVICE_SIDE_CALLS), so KMS sets kms:GrantIsForAWSResource to true.
            return {"kms:GrantIsForAWSResource": "true"}
        return {}

    def requests(self, action: str) -> list[dict[str, str]]:
        """One request per combination of involved resources: ``{iam type: arn}`` for every required type.

        An action with no required resource type is asked about this resource's own ARN when the action
        can name it (tagging calls), else about ``*``.
        """
        act = iam_actions.action(action)
        if not act.required:
            own = OWN_TYPE.get(self.resource.type)
            optional = {rt.name for rt, _ in act.resource_types}
            if own and own[0] == act.service and own[1] in optional:
                return [{own[1]: self._own_arn(self.resource)}]
            return [{"*": "*"}]
        requests: list[dict[str, str]] = [{}]
        for rt in act.required:
            arns = self.arns(rt.service, rt.name)
            if not arns:
                return []
            requests = [{**r, rt.name: arn} for r in requests for arn in arns]
        return requests


# The create calls whose request context carries what the resource runs on (Service Authorization Reference).
SIZED_ACTIONS = frozenset(a.lower() for a in (
    "sagemaker:CreateEndpointConfig", "sagemaker:CreateDataQualityJobDefinition", "sagemaker:CreateModelQualityJobDefinition",
    "sagemaker:CreateModelBiasJobDefinition", "sagemaker:CreateModelExplainabilityJobDefinition",
    "sagemaker:CreateMonitoringSchedule", "sagemaker:UpdateMonitoringSchedule"))
INSTANCE_TYPES = "sagemaker:InstanceTypes"


def sagemaker_sizing(properties: Mapping[str, Any], cfn_type: str) -> dict[str, Any]:
    """The sizing condition keys of the create request a resource's ``properties`` make: ``sagemaker:InstanceTypes``
    (every instance type, a list; left out when there is none, as for a serverless-only endpoint config),
    ``sagemaker:ServerlessMaxConcurrency`` and ``sagemaker:ServerlessMemorySize`` of a serverless variant."""
    context: dict[str, Any] = {}
    if cfn_type == "AWS::SageMaker::EndpointConfig":
        variants = list(properties.get("ProductionVariants", [])) + list(properties.get("ShadowProductionVariants", []))
        types = [v["InstanceType"] for v in variants if "InstanceType" in v]
        serverless = [v["ServerlessConfig"] for v in variants if "ServerlessConfig" in v]
        if len(serverless) > 1:
            raise IamEvalError("an endpoint config with several serverless variants: which one sizes the request is not modelled")
        if serverless:
            context["sagemaker:ServerlessMaxConcurrency"] = serverless[0]["MaxConcurrency"]
            context["sagemaker:ServerlessMemorySize"] = serverless[0]["MemorySizeInMB"]
    elif cfn_type.endswith("JobDefinition"):
        types = [properties["JobResources"]["ClusterConfig"]["InstanceType"]]
    elif cfn_type == "AWS::SageMaker::MonitoringSchedule":
        inline = properties["MonitoringScheduleConfig"].get("MonitoringJobDefinition")
        types = [inline["MonitoringResources"]["ClusterConfig"]["InstanceType"]] if inline else []
    else:
        raise IamEvalError(f"{cfn_type}: no rule says what its create request runs on; add one to sagemaker_sizing")
    if types:
        context[INSTANCE_TYPES] = types
    return context


def with_instance_type(context: Mapping[str, Any], instance_type: str) -> dict[str, Any]:
    """``context`` with every instance type it names replaced by ``instance_type`` (the same request, resized)."""
    return {**context, INSTANCE_TYPES: [instance_type] * len(context[INSTANCE_TYPES])} if INSTANCE_TYPES in context else dict(context)


def missing_permissions(model: IamModel, role: Role, stack: str) -> tuple[list[str], list[str]]:
    """(problems, checked): one line per call the role may not make on a touched resource of ``stack``.

    A type without handler permissions, a call on a resource the evaluator cannot name, or a listed
    permission that is neither allowed nor justified in ``cfn_handlers.NOT_NEEDED`` is a problem.
    """
    problems, checked = [], []
    for resource in touched_by_parameters(stack, model.stacks[stack].template):
        where = f"{stack}/{resource.logical_id} ({resource.type})"
        handlers = cfn_handlers.HANDLER_PERMISSIONS.get(resource.type)
        if handlers is None:
            problems.append(f"{where}: no handler permissions recorded; add the type to cfn_handlers.HANDLER_PERMISSIONS "
                            "from its resource schema")
            continue
        deployment = Deployment(model, resource)
        calls = [(handler, action) for handler in HANDLERS for action in handlers.get(handler, ())]
        calls += [("service", call.action) for call in cfn_handlers.SERVICE_SIDE_CALLS.get(resource.type, ())]
        for handler, action in calls:
            exemption = cfn_handlers.NOT_NEEDED.get((resource.type, action))
            if exemption is not None:
                if exemption.holds(resource.properties):
                    continue
                problems.append(f"{where} {handler}: {action} is recorded as not needed ({exemption.reason}), but the "
                                "resource sets the property that needs it")
            for request in deployment.requests(action):
                decision = authorize(role, action, request, deployment.context(action))
                checked.append(f"{where} {handler} {action} {json.dumps(request, sort_keys=True)}")
                if not decision.allowed:
                    problems.append(f"{where} {handler}: {role} may not call {action} on {decision.resource or request} "
                                    f"({decision.outcome})")
    return problems, checked
