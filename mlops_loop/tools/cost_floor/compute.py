"""Compute: what each endpoint variant keeps running (scalable targets included) and batch models."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from mlops_loop.config.instance_types import INSTANCE_TYPES
from pipeline_code.core.contract import TEAM_TAG

from .model import Line
from .prices import PRICES
from .template import (INSTANCE_DIMENSION, PROVISIONED_CONCURRENCY_DIMENSION, RESOURCE_ID, Template, as_count, as_number,
                       format_rate, loop_metadata)


@dataclass(frozen=True)
class _Target:
    min_capacity: int
    logical_id: str
    # The step policy and the alarm that set the variant to at most its minimum when it serves no request (the idle
    # scale-in of mlops_loop/constructs/endpoint_fleet.py): their logical ids, or () when there is none.
    idle_scale_in: tuple[str, ...] = ()


def scalable_targets(templates: list[Template], warnings: list[str]) -> dict[tuple[str, str, str], _Target]:
    """Every SageMaker variant scalable target of an environment, by (endpoint, variant, dimension)."""
    targets: dict[tuple[str, str, str], _Target] = {}
    for tpl in templates:
        for logical_id, resource in tpl.resources.items():
            if resource.get("Type") != "AWS::ApplicationAutoScaling::ScalableTarget":
                continue
            props = resource.get("Properties", {})
            dimension = tpl.value(props.get("ScalableDimension"))
            if dimension not in (INSTANCE_DIMENSION, PROVISIONED_CONCURRENCY_DIMENSION):
                continue
            resource_id = tpl.value(props.get("ResourceId"))
            match = RESOURCE_ID.match(resource_id) if isinstance(resource_id, str) else None
            minimum = as_count(tpl.value(props.get("MinCapacity")))
            if match is None or minimum is None:
                warnings.append(
                    f"{tpl.name}/{logical_id}: scalable target ignored (ResourceId {props.get('ResourceId')!r} or "
                    f"MinCapacity {props.get('MinCapacity')!r} is not a literal); its endpoint is reported at its "
                    "initial capacity"
                )
                continue
            targets[(match["endpoint"], match["variant"], dimension)] = _Target(
                minimum, logical_id, _idle_scale_in(tpl, logical_id, minimum, endpoint=match["endpoint"]))
    return targets


# The idle scale-in alarm's expression (mlops_loop/constructs/endpoint_fleet.py, IDLE_EXPRESSION): per period, the
# variant's requests where its instances reported, 0 without any, no point without instance data. The namespaces are
# SageMaker's (instance metrics, invocation metrics), read here from templates without importing the constructs.
_IDLE_EXPRESSION = re.compile(r"^IF\((?P<instances>\w+), *(?P<requests>\w+), *0\)$")
_INSTANCE_NAMESPACE = "/aws/sagemaker/Endpoints"
_INVOCATION_NAMESPACE = "AWS/SageMaker"


def _idle_scale_in(tpl: Template, target_id: str, minimum: int, *, endpoint: str) -> tuple[str, ...]:
    """(policy, alarm): a step policy of the target ``target_id`` that sets an exact capacity of at most ``minimum``
    in every step, run by an alarm of the same template that fires when the endpoint serves no request; () when there
    is none. Such an alarm runs the policy on entering ALARM (``AlarmActions``) and either

    * breaches on a period of ``endpoint``'s running instances without a request: its expression is
      ``IF(<instance metric>, <Invocations>, 0)`` (an instance metric of SageMaker's ``/aws/sagemaker/Endpoints``,
      ``Invocations`` of ``AWS/SageMaker``, both of ``endpoint``) and a 0 breaches (the app's alarm), or
    * fires without data: missing data breaching, or the policy in its ``InsufficientDataActions`` (the Application
      Auto Scaling User Guide's remedy).

    Target tracking never scales in on no data, and an idle real-time endpoint publishes no ``Invocations``: only such a
    pair brings it down to its minimum."""
    for policy_id, policy in tpl.resources.items():
        props = policy.get("Properties", {})
        if (policy.get("Type") != "AWS::ApplicationAutoScaling::ScalingPolicy" or props.get("PolicyType") != "StepScaling"
                or props.get("ScalingTargetId") != {"Ref": target_id}):
            continue
        config = props.get("StepScalingPolicyConfiguration") or {}
        capacities = [as_count(tpl.value(step.get("ScalingAdjustment"))) for step in config.get("StepAdjustments") or []]
        if (tpl.value(config.get("AdjustmentType")) != "ExactCapacity" or not capacities
                or any(c is None or c > minimum for c in capacities)):
            continue
        ref = {"Ref": policy_id}
        for alarm_id, alarm in tpl.resources.items():
            a = alarm.get("Properties", {})
            if alarm.get("Type") != "AWS::CloudWatch::Alarm" or a.get("ActionsEnabled") is False:
                continue
            on_alarm = ref in (a.get("AlarmActions") or [])
            if (on_alarm and (a.get("TreatMissingData") == "breaching" or _breaches_on_idle_minutes(tpl, a, endpoint))) \
                    or ref in (a.get("InsufficientDataActions") or []):
                return policy_id, alarm_id
    return ()


def _breaches_on_idle_minutes(tpl: Template, alarm: dict, endpoint: str) -> bool:
    """Whether the alarm ``alarm`` (its properties) reads ``IF(<instance metric>, <Invocations>, 0)`` of ``endpoint`` and
    a 0 breaches it: it is in ALARM after its periods of running instances without a request."""
    queries = [q for q in alarm.get("Metrics") or [] if isinstance(q, dict)]
    shown = [q for q in queries if q.get("ReturnData", True)]
    found = _IDLE_EXPRESSION.match(str(shown[0].get("Expression", ""))) if len(shown) == 1 else None
    if found is None:
        return False
    metrics = {q.get("Id"): (q.get("MetricStat") or {}).get("Metric") or {} for q in queries if "MetricStat" in q}

    def reads(query_id: str, namespace: str, name: Optional[str] = None) -> bool:
        metric = metrics.get(query_id) or {}
        dimensions = {d.get("Name"): tpl.value(d.get("Value")) for d in metric.get("Dimensions") or [] if isinstance(d, dict)}
        return (metric.get("Namespace") == namespace and name in (None, metric.get("MetricName"))
                and dimensions.get("EndpointName") == endpoint)

    threshold = as_number(tpl.value(alarm.get("Threshold")))
    zero_breaches = threshold is not None and (
        (alarm.get("ComparisonOperator") == "LessThanOrEqualToThreshold" and threshold >= 0)
        or (alarm.get("ComparisonOperator") == "LessThanThreshold" and threshold > 0))
    return (zero_breaches and reads(found["instances"], _INSTANCE_NAMESPACE)
            and reads(found["requests"], _INVOCATION_NAMESPACE, "Invocations"))


def _variant_floor(
    tpl: Template, variant: dict, *, endpoint: str, targets: dict, hours: float, is_async: bool = False
) -> tuple[str, Optional[float], tuple[str, ...]]:
    """(basis, monthly USD or None when unknown, scalable targets used) of one production variant.

    An instance variant with a scalable target idles at its ``MinCapacity`` only when it is async (AWS documents
    scaling an async endpoint down to zero on its backlog, async-inference-autoscale) or has an idle scale-in
    (:func:`_idle_scale_in`). Otherwise target tracking on invocations, which has no data without traffic, leaves it at
    ``InitialInstanceCount`` (at least ``MinCapacity``), or wherever a burst left it, up to ``MaxCapacity`` (the line's
    ceiling, :mod:`.ceiling`)."""
    name = str(tpl.value(variant.get("VariantName")))
    serverless = variant.get("ServerlessConfig")
    if isinstance(serverless, dict):
        memory_mb = as_count(tpl.value(serverless.get("MemorySizeInMB")))
        provisioned = as_count(tpl.value(serverless.get("ProvisionedConcurrency"))) or 0
        source, used = "ProvisionedConcurrency", ()
        target = targets.get((endpoint, name, PROVISIONED_CONCURRENCY_DIMENSION))
        if target is not None:
            provisioned, source, used = target.min_capacity, "autoscaling MinCapacity", (target.logical_id,)
        memory = f"{memory_mb} MB" if memory_mb is not None else "memory not a literal"
        if provisioned <= 0:
            return f"serverless, {memory}, no provisioned concurrency: pay per request", 0.0, used
        price = PRICES["serverless_provisioned_concurrency"]
        if memory_mb is None:
            return f"unknown price: serverless provisioned concurrency {provisioned} with {memory}", None, used
        monthly = provisioned * memory_mb / 1024 * price.usd * 3600 * hours
        basis = (
            f"serverless, {provisioned} provisioned concurrency ({source}) x {memory_mb / 1024:g} GB "
            f"x {hours:g} h x ${price.usd * 3600:.5f}/GB-h{price.caveat}"
        )
        return basis, monthly, used

    count = as_count(tpl.value(variant.get("InitialInstanceCount")))
    source, used = "InitialInstanceCount", ()
    scaling = variant.get("ManagedInstanceScaling")
    if isinstance(scaling, dict) and tpl.value(scaling.get("Status")) == "ENABLED":
        minimum = as_count(tpl.value(scaling.get("MinInstanceCount")))
        if minimum is not None:
            count, source = minimum, "managed instance scaling MinInstanceCount"
    target = targets.get((endpoint, name, INSTANCE_DIMENSION))
    if target is not None:
        used = (target.logical_id, *target.idle_scale_in)
        if target.idle_scale_in:
            count, source = target.min_capacity, "autoscaling MinCapacity: scaled in when idle"
        elif is_async:
            count, source = target.min_capacity, "autoscaling MinCapacity"
        elif count is not None and count > target.min_capacity:
            source = f"{source}: no scale-in without traffic"
        elif count is not None:
            count, source = target.min_capacity, "autoscaling MinCapacity"
    instance_type = tpl.value(variant.get("InstanceType"))
    known = INSTANCE_TYPES.get(instance_type) if isinstance(instance_type, str) else None
    if count is None:
        return f"unknown: the instance count of {instance_type} is not a literal", None, used
    if count == 0:
        return f"0 x {instance_type} ({source}): scales to zero", 0.0, used
    if known is None:
        return (
            f"unknown price: {count} x {instance_type} ({source}); add the type to "
            f"mlops_loop/config/instance_types.py",
            None,
            used,
        )
    basis = f"{count} x {instance_type} ({source}) x {hours:g} h x {format_rate(known.usd_per_hour)}/h"
    return basis, count * known.usd_per_hour * hours, used


def _team(props: dict) -> Optional[str]:
    """The ``mlops-loop:team`` tag of an endpoint's properties (``contract.TEAM_TAG``), None without."""
    for tag in props.get("Tags") or []:
        if isinstance(tag, dict) and tag.get("Key") == TEAM_TAG and isinstance(tag.get("Value"), str):
            return tag["Value"]
    return None


def endpoint_lines(tpl: Template, *, targets: dict, hours: float) -> list[Line]:
    """One line per production (and shadow) variant of every endpoint in the template."""
    lines = []
    for logical_id, resource in tpl.resources.items():
        if resource.get("Type") != "AWS::SageMaker::Endpoint":
            continue
        props = resource.get("Properties", {})
        endpoint = tpl.endpoint_key(logical_id)
        config_id = tpl.config_logical_id(props.get("EndpointConfigName"))
        config = tpl.resources.get(config_id) if config_id else None
        meta = loop_metadata(resource) or loop_metadata(config)
        label = str(meta.get("model") or endpoint)
        once = tpl.once_deployed(resource)
        team = _team(props)
        if config is None:
            lines.append(
                Line(
                    category="compute",
                    label=label,
                    mode=str(meta.get("mode", "?")),
                    basis=f"unknown: endpoint config {props.get('EndpointConfigName')!r} is not in this template",
                    monthly_usd=None,
                    stack=tpl.name,
                    resources=(logical_id,),
                    once_deployed=once,
                    team=team,
                )
            )
            continue
        config_props = config.get("Properties", {})
        variants = [(v, "") for v in config_props.get("ProductionVariants") or []]
        variants += [(v, " (shadow)") for v in config_props.get("ShadowProductionVariants") or []]
        for variant, shadow in variants:
            if "ServerlessConfig" in variant:
                derived = "serverless"
            elif "AsyncInferenceConfig" in config_props:
                derived = "async"
            else:
                derived = "realtime"
            basis, monthly, used = _variant_floor(tpl, variant, endpoint=endpoint, targets=targets, hours=hours,
                                                  is_async=derived == "async")
            lines.append(
                Line(
                    category="compute",
                    label=label,
                    mode=str(meta.get("mode") or derived),
                    basis=f"{basis}{shadow}",
                    monthly_usd=monthly,
                    stack=tpl.name,
                    resources=(logical_id, config_id, *used),
                    variant=f"{tpl.value(variant.get('VariantName'))}{shadow}",
                    once_deployed=once,
                    team=team,
                )
            )
    return lines


def batch_lines(templates: list[Template]) -> list[Line]:
    """Models served by batch transform: tagged on whatever resource schedules their job."""
    found: dict[str, list[tuple[Template, str]]] = {}
    for tpl in templates:
        for logical_id, resource in tpl.resources.items():
            meta = loop_metadata(resource)
            if meta.get("mode") == "batch" and resource.get("Type") != "AWS::SageMaker::Endpoint":
                found.setdefault(str(meta.get("model") or logical_id), []).append((tpl, logical_id))
    return [
        Line(
            category="compute",
            label=model,
            mode="batch",
            basis="batch transform: instances run only while a scheduled job runs",
            monthly_usd=0.0,
            stack=where[0][0].name,
            resources=tuple(logical_id for _, logical_id in where),
        )
        for model, where in sorted(found.items())
    ]
