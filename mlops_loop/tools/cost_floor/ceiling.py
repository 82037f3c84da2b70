"""The ceiling: what each endpoint variant costs a month at the maximum its config allows.

IAM has no condition key for instance counts or serverless concurrency (docs/serving.md, "Instance types, capped by IAM"), so
these template values are the only cap on what an endpoint can cost; the ceiling prices them:

* instance-based variants (real-time, async, multi-model, shadow): the Application Auto Scaling target's
  ``MaxCapacity`` on ``DesiredInstanceCount`` (else managed instance scaling's ``MaxInstanceCount``, else the fixed
  ``InitialInstanceCount``) x the hourly price x the hours of a month;
* serverless variants: the theoretical maximum, ``MaxConcurrency`` requests of ``MemorySizeInMB`` running all month at
  the on-demand per GB-second rate, plus the provisioned concurrency (its target's ``MaxCapacity`` on
  ``DesiredProvisionedConcurrency``, else ``ProvisionedConcurrency``) at its own rate, as the floor prices it. An upper
  bound: requests served by provisioned concurrency are billed below the on-demand rate;
* batch-served models: none (their instances run only while a scheduled job runs: the scheduled column).

The ceiling is attached to the compute lines :mod:`.compute` makes (a line's resources are its endpoint, its endpoint
config, then the scalable targets its floor used), read from the same templates.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

from mlops_loop.config.instance_types import INSTANCE_TYPES

from .model import Line
from .prices import PRICES
from .template import INSTANCE_DIMENSION, PROVISIONED_CONCURRENCY_DIMENSION, RESOURCE_ID, Template, as_count, format_rate

SHADOW_SUFFIX = " (shadow)"


def maximum_capacities(templates: list[Template]) -> dict[tuple[str, str, str], int]:
    """``MaxCapacity`` of every SageMaker variant scalable target whose ResourceId and MaxCapacity are literals, by
    (endpoint, variant, dimension). One that is not is left out: its variant's ceiling then says so."""
    found: dict[tuple[str, str, str], int] = {}
    for tpl in templates:
        for resource in tpl.resources.values():
            if resource.get("Type") != "AWS::ApplicationAutoScaling::ScalableTarget":
                continue
            props = resource.get("Properties", {})
            dimension = tpl.value(props.get("ScalableDimension"))
            resource_id = tpl.value(props.get("ResourceId"))
            match = RESOURCE_ID.match(resource_id) if isinstance(resource_id, str) else None
            maximum = as_count(tpl.value(props.get("MaxCapacity")))
            if match is not None and maximum is not None and dimension in (INSTANCE_DIMENSION,
                                                                           PROVISIONED_CONCURRENCY_DIMENSION):
                found[(match["endpoint"], match["variant"], dimension)] = maximum
    return found


def _instances(tpl: Template, variant: dict, maximum: Optional[int], hours: float) -> tuple[Optional[float], str]:
    count, source = maximum, "autoscaling MaxCapacity"
    scaling = variant.get("ManagedInstanceScaling")
    if count is None and isinstance(scaling, dict) and tpl.value(scaling.get("Status")) == "ENABLED":
        count, source = as_count(tpl.value(scaling.get("MaxInstanceCount"))), "managed instance scaling MaxInstanceCount"
    if count is None:
        count, source = as_count(tpl.value(variant.get("InitialInstanceCount"))), "InitialInstanceCount, no autoscaling"
    instance_type = tpl.value(variant.get("InstanceType"))
    if count is None:
        return None, f"unknown: the most instances of {instance_type} is not a literal"
    known = INSTANCE_TYPES.get(instance_type) if isinstance(instance_type, str) else None
    if known is None:
        return None, f"unknown price: {count} x {instance_type} ({source})"
    return (count * known.usd_per_hour * hours,
            f"{count} x {instance_type} ({source}) x {hours:g} h x {format_rate(known.usd_per_hour)}/h")


def _serverless(tpl: Template, config: dict, provisioned_max: Optional[int], hours: float) -> tuple[Optional[float], str]:
    memory_mb = as_count(tpl.value(config.get("MemorySizeInMB")))
    concurrency = as_count(tpl.value(config.get("MaxConcurrency")))
    if memory_mb is None or concurrency is None:
        return None, "unknown: MaxConcurrency or MemorySizeInMB is not a literal"
    gb, seconds = memory_mb / 1024, hours * 3600
    on_demand, warm = PRICES["serverless_inference"], PRICES["serverless_provisioned_concurrency"]
    usd = concurrency * gb * on_demand.usd * seconds
    basis = (f"theoretical maximum: {concurrency} concurrent requests (MaxConcurrency) x {gb:g} GB running all "
             f"{hours:g} h x ${on_demand.usd * 3600:.4f}/GB-h{on_demand.caveat}")
    provisioned, source = provisioned_max, "autoscaling MaxCapacity"
    if provisioned is None:
        provisioned, source = as_count(tpl.value(config.get("ProvisionedConcurrency"))) or 0, "ProvisionedConcurrency"
    if provisioned > 0:
        usd += provisioned * gb * warm.usd * seconds
        basis += (f" + {provisioned} provisioned concurrency ({source}) x {gb:g} GB x {hours:g} h x "
                  f"${warm.usd * 3600:.5f}/GB-h{warm.caveat}")
    return usd, basis


def _variant(config: dict, name: str, shadow: bool) -> Optional[dict]:
    props = config.get("Properties", {}) or {}
    for variant in props.get("ShadowProductionVariants" if shadow else "ProductionVariants") or []:
        if isinstance(variant, dict) and str(variant.get("VariantName")) == name:
            return variant
    return None


def _line_ceiling(line: Line, templates: dict[str, Template], maxima: dict, hours: float) -> tuple[Optional[float], str]:
    if line.mode == "batch":
        return 0.0, "batch transform: instances run only while a scheduled job runs (scheduled column)"
    tpl = templates.get(line.stack)
    config = tpl.resources.get(line.resources[1]) if tpl is not None and len(line.resources) > 1 else None
    if tpl is None or config is None or config.get("Type") != "AWS::SageMaker::EndpointConfig":
        return None, "unknown: the endpoint config is not in this template"
    shadow = line.variant.endswith(SHADOW_SUFFIX)
    name = line.variant.removesuffix(SHADOW_SUFFIX)
    variant = _variant(config, name, shadow)
    if variant is None:
        return None, f"unknown: variant {name} is not in {line.resources[1]}"
    endpoint = tpl.endpoint_key(line.resources[0])
    serverless = variant.get("ServerlessConfig")
    if isinstance(serverless, dict):
        return _serverless(tpl, serverless, maxima.get((endpoint, name, PROVISIONED_CONCURRENCY_DIMENSION)), hours)
    return _instances(tpl, variant, maxima.get((endpoint, name, INSTANCE_DIMENSION)), hours)


def with_ceilings(lines: list[Line], templates: list[Template], hours: float) -> list[Line]:
    """``lines`` with every compute line's ``ceiling_usd`` (None: unknown, its ``ceiling_basis`` says why) and
    ``ceiling_basis`` set; other lines as they are."""
    by_name, maxima = {tpl.name: tpl for tpl in templates}, maximum_capacities(templates)
    out = []
    for line in lines:
        if line.category == "compute":
            usd, basis = _line_ceiling(line, by_name, maxima, hours)
            line = dataclasses.replace(line, ceiling_usd=usd, ceiling_basis=basis)
        out.append(line)
    return out
