"""The always-on monthly cost floor of every environment, read from the synthesized templates.

Usage::

    python -m mlops_loop.tools.cost_floor [cdk.out] [--format text|markdown|json]
                                         [--base-assembly DIR] [--hours-per-month 730]

The floor is what an environment costs per month with zero traffic. Its headline is compute: the
serving instances that stay up whatever the traffic (an endpoint variant's autoscaling
``MinCapacity`` when a scalable target exists, else its ``InitialInstanceCount``), times the hourly
price, times the hours of a month. Async endpoints that scale to 0, serverless endpoints without
provisioned concurrency and batch transform (instances run only while a scheduled job runs) cost
$0. Small always-on items (KMS keys, CloudWatch alarms and dashboards, Feature Store online stores,
NAT gateways, interface VPC endpoints, secrets) are reported in a separate "fixed" column.

A resource with a CloudFormation ``Condition`` that is false with the parameter defaults (a serving
endpoint exists only once a model version is approved) is counted in the floor and marked "once
deployed"; the "before approval" column leaves it out.

``--base-assembly DIR`` adds the change per environment against another assembly (e.g. the main
branch's), the "floor +$X/month" line of a pull-request comment.

The assembly must have been synthesized from the working tree as it is now (its source stamp, see
``mlops_loop.tools.source_stamp``, matches ``--repo``, by default this checkout); a stale, foreign or
unstamped one is refused with one line, or read with a warning under ``--allow-stale``. The base
assembly is another ref's by design and is not checked.

Prices are USD on-demand list prices for us-east-1: instances from
``mlops_loop.config.instance_types``, everything else from ``PRICES`` below. They are estimates for
review, never used at deploy time; other regions differ. Exit status 0 whenever the report is
printed (the floor is reported, not judged); 2 when a directory is not a cloud assembly, the
assembly is stale, or an argument is invalid.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

from mlops_loop.config.instance_types import INSTANCE_TYPES

from . import source_stamp
from .cloud_assembly import SynthesizedStack, stacks

DEFAULT_HOURS_PER_MONTH = 730.0  # 365 * 24 / 12, the month AWS's own price examples use
JSON_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Price:
    usd: float
    unit: str
    source: str


# Every price that is not an instance-hour. USD, us-east-1 list prices, read 2026-11-26.
PRICES: dict[str, Price] = {
    # Provisioned concurrency of a serverless endpoint is billed per second for memory x concurrency
    # while provisioned, traffic or not. Source: https://aws.amazon.com/sagemaker/pricing/
    # ("Serverless Inference with Provisioned Concurrency", US East (N. Virginia), 1024 MB:
    # $0.0000048 per second). The stored copy searched on 2026-11-26 did not carry the rate table;
    # the rate is consistent with a third-party worked example (2 GB, 40 h/week ~ $1.44/week) but
    # not verified against the live page: check it there before quoting a number externally.
    "serverless_provisioned_concurrency": Price(
        0.0000048, "GB-second", "https://aws.amazon.com/sagemaker/pricing/ (us-east-1, unverified 2026-11-26)"
    ),
    # Customer managed key, per key-month (automatic rotation adds $1/month for each of the first
    # two rotations; the floor counts the first year). https://aws.amazon.com/kms/pricing/, 2026-11-26.
    "kms_key": Price(1.00, "key-month", "https://aws.amazon.com/kms/pricing/ (2026-11-26)"),
    # CloudWatch alarms are billed per alarm metric; the always-free 10 alarm metrics per account
    # are NOT deducted (conservative: they are shared with anything else in the account).
    # https://aws.amazon.com/cloudwatch/pricing/, 2026-11-26.
    "alarm_metric_standard": Price(
        0.10, "alarm-metric-month", "https://aws.amazon.com/cloudwatch/pricing/ (2026-11-26)"
    ),
    "alarm_metric_high_resolution": Price(
        0.30, "alarm-metric-month", "https://aws.amazon.com/cloudwatch/pricing/ (2026-11-26)"
    ),
    "composite_alarm": Price(0.50, "alarm-month", "https://aws.amazon.com/cloudwatch/pricing/ (2026-11-26)"),
    # Dashboards: $3 each per month beyond the 3 free per account (up to 50 metrics each); every
    # environment of this app is its own account. https://aws.amazon.com/cloudwatch/pricing/, 2026-11-26.
    "dashboard": Price(3.00, "dashboard-month", "https://aws.amazon.com/cloudwatch/pricing/ (2026-11-26)"),
    # https://aws.amazon.com/vpc/pricing/ and https://aws.amazon.com/privatelink/pricing/, 2026-11-26.
    "nat_gateway": Price(0.045, "gateway-hour", "https://aws.amazon.com/vpc/pricing/ (2026-11-26)"),
    "interface_endpoint": Price(0.01, "endpoint-AZ-hour", "https://aws.amazon.com/privatelink/pricing/ (2026-11-26)"),
    # https://aws.amazon.com/secrets-manager/pricing/, 2026-11-26.
    "secret": Price(0.40, "secret-month", "https://aws.amazon.com/secrets-manager/pricing/ (2026-11-26)"),
}
FREE_DASHBOARDS_PER_ACCOUNT = 3
INSTANCE_PRICE_SOURCE = "mlops_loop/config/instance_types.py (us-east-1 on-demand list prices)"

METADATA_KEY = "mlops-loop"
INSTANCE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
PROVISIONED_CONCURRENCY_DIMENSION = "sagemaker:variant:DesiredProvisionedConcurrency"
_RESOURCE_ID = re.compile(r"^endpoint/(?P<endpoint>[^/]+)/variant/(?P<variant>[^/]+)$")


class NotACloudAssembly(ValueError):
    """The directory given is not a synthesized cloud assembly (or holds no stacks)."""


# --------------------------------------------------------------------------------------
# Report model
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Line:
    """One line of an environment's floor: a model's endpoint variant, a batch model, or a fixed item."""

    category: str  # "compute" or "fixed"
    label: str  # the model (compute) or the item (fixed)
    mode: str  # realtime | serverless | async | batch | <metadata mode> | fixed
    basis: str  # how the number was obtained, for a reviewer
    monthly_usd: Optional[float]  # None: price unknown (basis says why)
    stack: str
    resources: tuple[str, ...]
    variant: str = ""
    # The CloudFormation condition the resource exists under, when that condition is false (or not
    # decidable) with the parameter defaults: it costs this much once a version is deployed.
    once_deployed: Optional[str] = None

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.category, self.label, self.mode, self.variant)


@dataclass
class EnvironmentFloor:
    environment: str
    region: Optional[str]
    lines: list[Line] = field(default_factory=list)
    compute_usd: float = 0.0
    compute_before_approval_usd: float = 0.0
    fixed_usd: float = 0.0
    fixed_before_approval_usd: float = 0.0
    warnings: list[str] = field(default_factory=list)

    @property
    def total_usd(self) -> float:
        return self.compute_usd + self.fixed_usd

    @property
    def unknown_prices(self) -> int:
        return sum(1 for line in self.lines if line.monthly_usd is None)


# --------------------------------------------------------------------------------------
# Reading templates: literal values with parameter defaults, conditions, metadata
# --------------------------------------------------------------------------------------
class _Template:
    def __init__(self, stack: SynthesizedStack) -> None:
        self.stack = stack
        template = stack.template
        self.resources: dict[str, dict] = template.get("Resources", {}) or {}
        self.parameters: dict[str, dict] = template.get("Parameters", {}) or {}
        self.conditions: dict[str, Any] = template.get("Conditions", {}) or {}
        self._condition_cache: dict[str, Optional[bool]] = {}

    @property
    def name(self) -> str:
        return self.stack.stack_name

    def value(self, expr: Any) -> Any:
        """The literal value of ``expr`` with every parameter at its default; None when it depends on
        anything only known at deploy time (another resource's attribute, an import, ...)."""
        if isinstance(expr, (str, int, float, bool)):
            return expr
        if not (isinstance(expr, dict) and len(expr) == 1):
            return None
        ((fn, arg),) = expr.items()
        if fn == "Ref":
            return self.parameters.get(arg, {}).get("Default") if isinstance(arg, str) else None
        if fn == "Fn::Join" and isinstance(arg, list) and len(arg) == 2 and isinstance(arg[1], list):
            parts = [self.value(part) for part in arg[1]]
            return None if any(p is None for p in parts) else str(arg[0]).join(str(p) for p in parts)
        if fn == "Fn::GetAtt":
            dotted = ".".join(map(str, arg)) if isinstance(arg, list) else str(arg)
            logical_id, _, attribute = dotted.partition(".")
            resource = self.resources.get(logical_id, {})
            if attribute == "EndpointName" and resource.get("Type") == "AWS::SageMaker::Endpoint":
                return self.endpoint_key(logical_id)
            return None
        if fn == "Fn::If" and isinstance(arg, list) and len(arg) == 3:
            holds = self.condition(arg[0])
            return None if holds is None else self.value(arg[1] if holds else arg[2])
        return None

    def endpoint_key(self, logical_id: str) -> str:
        """The endpoint's name when the template fixes it, else a stand-in unique to this stack."""
        name = self.value(self.resources[logical_id].get("Properties", {}).get("EndpointName"))
        # No "/" in the stand-in: it has to fit the endpoint part of a ResourceId (endpoint/<name>/variant/<v>).
        return name if isinstance(name, str) and name else f"<{self.name}:{logical_id}>"

    def condition(self, name: str) -> Optional[bool]:
        """Whether the named condition holds with the parameter defaults (None: not decidable)."""
        if name not in self._condition_cache:
            self._condition_cache[name] = None  # a cycle is not decidable
            self._condition_cache[name] = self._truth(self.conditions.get(name))
        return self._condition_cache[name]

    def _truth(self, expr: Any) -> Optional[bool]:
        if isinstance(expr, bool):
            return expr
        if not (isinstance(expr, dict) and len(expr) == 1):
            return None
        ((fn, arg),) = expr.items()
        if fn == "Condition":
            return self.condition(arg)
        if fn == "Fn::Equals" and isinstance(arg, list) and len(arg) == 2:
            left, right = self.value(arg[0]), self.value(arg[1])
            return None if left is None or right is None else str(left) == str(right)
        if fn == "Fn::Not" and isinstance(arg, list) and len(arg) == 1:
            inner = self._truth(arg[0])
            return None if inner is None else not inner
        if fn in ("Fn::And", "Fn::Or") and isinstance(arg, list):
            values = [self._truth(item) for item in arg]
            decisive = fn == "Fn::Or"  # True decides an Or, False decides an And
            if decisive in values:
                return decisive
            return None if None in values else not decisive
        return None

    def once_deployed(self, resource: dict) -> Optional[str]:
        """The resource's condition when it does not hold with the defaults, else None (exists now)."""
        name = resource.get("Condition")
        if not name or self.condition(name) is True:
            return None
        return str(name)

    def config_logical_id(self, expr: Any) -> Optional[str]:
        """The endpoint config an endpoint's ``EndpointConfigName`` points at, within this template."""
        if isinstance(expr, dict) and len(expr) == 1:
            ((fn, arg),) = expr.items()
            target = None
            if fn == "Ref":
                target = arg
            elif fn == "Fn::GetAtt":
                target = arg[0] if isinstance(arg, list) else str(arg).partition(".")[0]
            if isinstance(target, str) and target in self.resources:
                return target
        name = self.value(expr)
        for logical_id, resource in self.resources.items():
            if (
                resource.get("Type") == "AWS::SageMaker::EndpointConfig"
                and name is not None
                and self.value(resource.get("Properties", {}).get("EndpointConfigName")) == name
            ):
                return logical_id
        return None


def _loop_metadata(resource: Optional[dict]) -> dict:
    meta = ((resource or {}).get("Metadata") or {}).get(METADATA_KEY)
    return meta if isinstance(meta, dict) else {}


def _number(value: Any) -> Optional[float]:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _count(value: Any) -> Optional[int]:
    number = _number(value)
    return None if number is None else int(number)


def _rate(value: float) -> str:
    """A unit price: cents when that is exact ($0.10), else every significant digit ($0.045)."""
    return f"${value:,.2f}" if round(value, 2) == value else f"${value:g}"


# --------------------------------------------------------------------------------------
# Compute: endpoints, their variants and scalable targets; batch models
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Target:
    min_capacity: int
    logical_id: str


def _scalable_targets(templates: list[_Template], warnings: list[str]) -> dict[tuple[str, str, str], _Target]:
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
            match = _RESOURCE_ID.match(resource_id) if isinstance(resource_id, str) else None
            minimum = _count(tpl.value(props.get("MinCapacity")))
            if match is None or minimum is None:
                warnings.append(
                    f"{tpl.name}/{logical_id}: scalable target ignored (ResourceId {props.get('ResourceId')!r} or "
                    f"MinCapacity {props.get('MinCapacity')!r} is not a literal); its endpoint is reported at its "
                    "initial capacity"
                )
                continue
            targets[(match["endpoint"], match["variant"], dimension)] = _Target(minimum, logical_id)
    return targets


def _variant_floor(
    tpl: _Template, variant: dict, *, endpoint: str, targets: dict, hours: float
) -> tuple[str, Optional[float], tuple[str, ...]]:
    """(basis, monthly USD or None when unknown, scalable targets used) of one production variant."""
    name = str(tpl.value(variant.get("VariantName")))
    serverless = variant.get("ServerlessConfig")
    if isinstance(serverless, dict):
        memory_mb = _count(tpl.value(serverless.get("MemorySizeInMB")))
        provisioned = _count(tpl.value(serverless.get("ProvisionedConcurrency"))) or 0
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
            f"x {hours:g} h x ${price.usd * 3600:.5f}/GB-h"
        )
        return basis, monthly, used

    count = _count(tpl.value(variant.get("InitialInstanceCount")))
    source, used = "InitialInstanceCount", ()
    scaling = variant.get("ManagedInstanceScaling")
    if isinstance(scaling, dict) and tpl.value(scaling.get("Status")) == "ENABLED":
        minimum = _count(tpl.value(scaling.get("MinInstanceCount")))
        if minimum is not None:
            count, source = minimum, "managed instance scaling MinInstanceCount"
    target = targets.get((endpoint, name, INSTANCE_DIMENSION))
    if target is not None:
        count, source, used = target.min_capacity, "autoscaling MinCapacity", (target.logical_id,)
    instance_type = tpl.value(variant.get("InstanceType"))
    if count is None:
        return f"unknown: the instance count of {instance_type} is not a literal", None, used
    if count == 0:
        return f"0 x {instance_type} ({source}): scales to zero", 0.0, used
    known = INSTANCE_TYPES.get(instance_type) if isinstance(instance_type, str) else None
    if known is None:
        return (
            f"unknown price: {count} x {instance_type} ({source}); add the type to "
            "mlops_loop/config/instance_types.py",
            None,
            used,
        )
    basis = f"{count} x {instance_type} ({source}) x {hours:g} h x {_rate(known.usd_per_hour)}/h"
    return basis, count * known.usd_per_hour * hours, used


def _endpoint_lines(tpl: _Template, *, targets: dict, hours: float) -> list[Line]:
    """One line per production (and shadow) variant of every endpoint in the template."""
    lines = []
    for logical_id, resource in tpl.resources.items():
        if resource.get("Type") != "AWS::SageMaker::Endpoint":
            continue
        props = resource.get("Properties", {})
        endpoint = tpl.endpoint_key(logical_id)
        config_id = tpl.config_logical_id(props.get("EndpointConfigName"))
        config = tpl.resources.get(config_id) if config_id else None
        meta = _loop_metadata(resource) or _loop_metadata(config)
        label = str(meta.get("model") or endpoint)
        once = tpl.once_deployed(resource)
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
            basis, monthly, used = _variant_floor(tpl, variant, endpoint=endpoint, targets=targets, hours=hours)
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
                )
            )
    return lines


def _batch_lines(templates: list[_Template]) -> list[Line]:
    """Models served by batch transform: tagged on whatever resource schedules their job."""
    found: dict[str, list[tuple[_Template, str]]] = {}
    for tpl in templates:
        for logical_id, resource in tpl.resources.items():
            meta = _loop_metadata(resource)
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


# --------------------------------------------------------------------------------------
# Fixed items
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Unit:
    kind: str
    stack: str
    logical_id: str
    quantity: float
    price_key: Optional[str]  # None: $0 floor (pay per use)
    once_deployed: Optional[str]  # see Line.once_deployed
    unknown: bool = False


_FIXED_LABELS = {
    "kms": "KMS keys",
    "alarm": "CloudWatch alarms",
    "composite": "CloudWatch composite alarms",
    "dashboard": "CloudWatch dashboards",
    "online_store": "Feature Store online stores",
    "nat": "NAT gateways",
    "vpce": "Interface VPC endpoints",
    "secret": "Secrets Manager secrets",
}


def _alarm_metrics(tpl: _Template, props: dict) -> tuple[int, bool]:
    """(alarm metrics billed, high resolution) of one metric alarm."""
    metrics = props.get("Metrics")
    periods = [_number(tpl.value(props.get("Period")))]
    count = 1
    if isinstance(metrics, list) and metrics:
        stats = [m.get("MetricStat") for m in metrics if isinstance(m, dict) and isinstance(m.get("MetricStat"), dict)]
        periods += [_number(tpl.value(stat.get("Period"))) for stat in stats]
        count = max(len(stats), 1)
        # An anomaly-detection alarm is billed as three metrics: the metric and the band's two bounds.
        if any("ANOMALY_DETECTION_BAND" in str(m.get("Expression", "")) for m in metrics if isinstance(m, dict)):
            count *= 3
    return count, any(p is not None and p < 60 for p in periods)


def _fixed_units(tpl: _Template) -> list[_Unit]:
    units = []
    for logical_id, resource in tpl.resources.items():
        kind_type = resource.get("Type")
        props = resource.get("Properties", {}) or {}
        once = tpl.once_deployed(resource)

        def unit(kind: str, quantity: float, price_key: Optional[str], unknown: bool = False) -> None:
            units.append(_Unit(kind, tpl.name, logical_id, quantity, price_key, once, unknown))

        if kind_type in ("AWS::KMS::Key", "AWS::KMS::ReplicaKey"):
            unit("kms", 1, "kms_key")
        elif kind_type == "AWS::CloudWatch::Alarm":
            count, high_resolution = _alarm_metrics(tpl, props)
            unit("alarm", count, "alarm_metric_high_resolution" if high_resolution else "alarm_metric_standard")
        elif kind_type == "AWS::CloudWatch::CompositeAlarm":
            unit("composite", 1, "composite_alarm")
        elif kind_type == "AWS::CloudWatch::Dashboard":
            unit("dashboard", 1, "dashboard")
        elif kind_type == "AWS::SageMaker::FeatureGroup":
            online = props.get("OnlineStoreConfig")
            if isinstance(online, dict) and tpl.value(online.get("EnableOnlineStore")) not in (False, "false"):
                mode = str(tpl.value((props.get("ThroughputConfig") or {}).get("ThroughputMode")) or "OnDemand")
                unit("online_store", 1, None, unknown=mode.lower() == "provisioned")
        elif kind_type == "AWS::EC2::NatGateway":
            unit("nat", 1, "nat_gateway")
        elif kind_type == "AWS::EC2::VPCEndpoint" and tpl.value(props.get("VpcEndpointType")) == "Interface":
            subnets = props.get("SubnetIds")
            unit("vpce", len(subnets) if isinstance(subnets, list) and subnets else 1, "interface_endpoint")
        elif kind_type == "AWS::SecretsManager::Secret":
            unit("secret", 1, "secret")
    return units


def _fixed_cost(units: list[_Unit], hours: float) -> tuple[Optional[float], str]:
    """(monthly USD or None when unknown, basis) of units of one kind."""
    kind = units[0].kind
    if kind == "online_store":
        provisioned = sum(1 for u in units if u.unknown)
        if provisioned:
            return None, f"unknown price: {provisioned} of {len(units)} with provisioned throughput (billed per hour)"
        return 0.0, f"{len(units)} on demand: pay per read/write request and GB stored, $0 with no traffic"
    if kind == "dashboard":
        price = PRICES["dashboard"]
        billed = max(0, len(units) - FREE_DASHBOARDS_PER_ACCOUNT)
        free = FREE_DASHBOARDS_PER_ACCOUNT
        basis = f"{len(units)}, first {free} per account free, {_rate(price.usd)}/month each after"
        return billed * price.usd, basis
    total, parts = 0.0, []
    for key in sorted({u.price_key for u in units if u.price_key}):
        price = PRICES[key]
        amount = sum(u.quantity for u in units if u.price_key == key)
        hourly = price.unit.endswith("hour")
        total += amount * price.usd * (hours if hourly else 1)
        parts.append(f"{amount:g} x {_rate(price.usd)}/{price.unit}" + (f" x {hours:g} h" if hourly else ""))
    prefix = f"{len(units)} alarms: " if kind == "alarm" else ""
    return total, prefix + " + ".join(parts)


def _fixed_lines(units: list[_Unit], hours: float) -> tuple[list[Line], float]:
    """Fixed lines (one per kind, over every unit) and the fixed total before approval."""
    lines, before = [], 0.0
    for kind, label in _FIXED_LABELS.items():
        of_kind = [u for u in units if u.kind == kind]
        if not of_kind:
            continue
        monthly, basis = _fixed_cost(of_kind, hours)
        later = [u for u in of_kind if u.once_deployed]
        if later and len(later) < len(of_kind):
            basis += f" ({len(later)} only once deployed)"
        now = [u for u in of_kind if not u.once_deployed]
        if now:
            before += _fixed_cost(now, hours)[0] or 0.0
        stacks_used = sorted({u.stack for u in of_kind})
        lines.append(
            Line(
                category="fixed",
                label=label,
                mode="fixed",
                basis=basis,
                monthly_usd=monthly,
                stack=", ".join(stacks_used),
                resources=tuple(u.logical_id for u in of_kind),
                once_deployed=", ".join(sorted({str(u.once_deployed) for u in later})) if not now else None,
            )
        )
    return lines, before


# --------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------
def _load_stacks(outdir: Path) -> list[SynthesizedStack]:
    if not (outdir / "manifest.json").is_file():
        raise NotACloudAssembly(
            f"{outdir} is not a cloud assembly (no manifest.json); synthesize first: "
            f"python app.py (writes cdk.out) or CDK_OUTDIR={outdir} python app.py"
        )
    try:
        found = list(stacks(outdir))
        for stack in found:
            stack.template  # noqa: B018 - read every template now, so a broken one fails here with its path
    except (OSError, KeyError, TypeError, json.JSONDecodeError) as error:
        raise NotACloudAssembly(
            f"{outdir} is not a readable cloud assembly ({type(error).__name__}: {error}); synthesize it again"
        ) from error
    if not found:
        raise NotACloudAssembly(f"{outdir} holds no stage with CloudFormation stacks; synthesize the app into it")
    return found


def _regions(found: list[SynthesizedStack]) -> dict[str, str]:
    """Stage -> region, from the stage manifests' ``environment`` (aws://account/region)."""
    regions: dict[str, str] = {}
    for stack in found:
        try:
            manifest = json.loads((stack.template_path.parent / "manifest.json").read_text())
            environment = manifest["artifacts"][stack.artifact_id].get("environment", "")
        except (OSError, KeyError, json.JSONDecodeError):
            continue
        region = environment.rsplit("/", 1)[-1] if environment.startswith("aws://") else ""
        if region and not region.startswith("unknown"):
            regions.setdefault(stack.stage, region)
    return regions


def floor_report(outdir: str | Path, *, hours_per_month: float = DEFAULT_HOURS_PER_MONTH) -> list[EnvironmentFloor]:
    """The always-on floor of every environment (stage) of the assembly at ``outdir``, in manifest
    order. By default a month is 730 hours. Raises NotACloudAssembly when ``outdir`` is not one."""
    found = _load_stacks(Path(outdir))
    regions = _regions(found)
    by_stage: dict[str, list[_Template]] = {}
    for stack in found:
        by_stage.setdefault(stack.stage, []).append(_Template(stack))
    report = []
    for stage, templates in by_stage.items():
        env = EnvironmentFloor(environment=stage, region=regions.get(stage))
        targets = _scalable_targets(templates, env.warnings)
        compute = [line for tpl in templates for line in _endpoint_lines(tpl, targets=targets, hours=hours_per_month)]
        compute += _batch_lines(templates)
        compute.sort(key=lambda line: (line.label, line.mode, line.variant))
        fixed, env.fixed_before_approval_usd = _fixed_lines(
            [u for tpl in templates for u in _fixed_units(tpl)], hours_per_month
        )
        env.lines = compute + fixed
        env.compute_usd = sum((line.monthly_usd or 0.0 for line in compute), 0.0)
        env.compute_before_approval_usd = sum(
            (line.monthly_usd or 0.0 for line in compute if not line.once_deployed), 0.0
        )
        env.fixed_usd = sum((line.monthly_usd or 0.0 for line in fixed), 0.0)
        report.append(env)
    return report


def compare(head: list[EnvironmentFloor], base: list[EnvironmentFloor]) -> list[dict]:
    """Per environment (head's order, then environments only in base): the change of each total and
    of every line whose monthly cost changed. A line whose price is unknown on either side has a
    delta of None."""
    heads, bases = {e.environment: e for e in head}, {e.environment: e for e in base}
    out = []
    for name in [*heads, *(n for n in bases if n not in heads)]:
        h, b = heads.get(name), bases.get(name)
        h_lines = _by_key(h.lines if h else [])
        b_lines = _by_key(b.lines if b else [])
        changed = []
        for key in [*h_lines, *(k for k in b_lines if k not in h_lines)]:
            # A line that appears or disappears is a change even at $0 (a model moved to serverless).
            if key in h_lines and key in b_lines and h_lines[key] == b_lines[key]:
                continue
            new, old = h_lines.get(key, (0.0, False)), b_lines.get(key, (0.0, False))
            unknown = new[1] or old[1]
            changed.append(
                {
                    "category": key[0],
                    "label": key[1],
                    "mode": key[2],
                    "variant": key[3],
                    "status": "added" if key not in b_lines else "removed" if key not in h_lines else "changed",
                    "base_usd": None if old[1] else old[0],
                    "head_usd": None if new[1] else new[0],
                    "delta_usd": None if unknown else round(new[0] - old[0], 2),
                }
            )

        def total(env: Optional[EnvironmentFloor], attr: str) -> float:
            return getattr(env, attr) if env else 0.0

        delta = {
            attr: round(total(h, attr) - total(b, attr), 2)
            for attr in ("compute_usd", "compute_before_approval_usd", "fixed_usd", "total_usd")
        }
        if b is None or h is None:
            status = "new" if b is None else "removed"
        else:
            status = "changed" if changed or any(delta.values()) else "unchanged"
        out.append(
            {"environment": name, "status": status, **{f"delta_{k}": v for k, v in delta.items()}, "lines": changed}
        )
    return out


def _by_key(lines: Iterable[Line]) -> dict[tuple, tuple[float, bool]]:
    """Line key -> (known monthly USD summed, any price unknown)."""
    out: dict[tuple, tuple[float, bool]] = {}
    for line in lines:
        usd, unknown = out.get(line.key, (0.0, False))
        out[line.key] = (round(usd + (line.monthly_usd or 0.0), 2), unknown or line.monthly_usd is None)
    return out


# --------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------
def _money(value: Optional[float]) -> str:
    return "unknown" if value is None else f"{value:,.2f}"


def _signed(value: Optional[float]) -> str:
    if value is None:
        return "unknown"
    return f"{'+' if value >= 0 else '-'}${abs(value):,.2f}"


def _notes(report: list[EnvironmentFloor], hours: float) -> list[str]:
    notes = [
        f"zero traffic, {hours:g} h/month; USD on-demand list prices for us-east-1: instances from "
        "mlops_loop/config/instance_types.py, the rest from PRICES in mlops_loop/tools/cost_floor.py; "
        "estimates for review, not a bill",
    ]
    other = sorted({e.region for e in report if e.region and e.region != "us-east-1"})
    if other:
        notes.append(f"environments in {', '.join(other)}: that region's list prices differ from us-east-1's")
    if any(line.once_deployed for e in report for line in e.lines):
        notes.append(
            "[once deployed]: exists only once a model version is approved and deployed (its CloudFormation "
            "condition is false with the parameter defaults); counted in the floor, not in 'before approval'"
        )
    for env in report:
        if not any(line.category == "compute" for line in env.lines):
            notes.append(f"{env.environment}: no endpoint or batch-served model in the templates (no serving stack?)")
        notes += [f"warning: {env.environment}: {w}" for w in env.warnings]
        if env.unknown_prices:
            notes.append(f"{env.environment}: {env.unknown_prices} line(s) with unknown price, not in the totals")
    return notes


def _line_cells(line: Line) -> list[str]:
    label = line.label + (f" / {line.variant}" if line.variant else "")
    compute = _money(line.monthly_usd) if line.category == "compute" else ""
    fixed = _money(line.monthly_usd) if line.category == "fixed" else ""
    basis = line.basis + (" [once deployed]" if line.once_deployed else "")
    return [label, line.mode, compute, fixed, basis]


def render_text(
    report: list[EnvironmentFloor], *, assembly: str, hours: float, delta: Optional[list[dict]] = None
) -> str:
    """Plain-text report: the change against the base (when given), the summary, then each environment's lines."""
    out = [f"mlops-loop always-on cost floor ({assembly})", ""]
    if delta is not None:
        out += _delta_text(delta) + [""]
    out.append(
        f"{'environment':<12} {'region':<14} {'compute $/mo':>12} {'before approval':>15} "
        f"{'fixed $/mo':>10} {'total $/mo':>10}"
    )
    for env in report:
        out.append(
            f"{env.environment:<12} {env.region or '?':<14} {_money(env.compute_usd):>12} "
            f"{_money(env.compute_before_approval_usd):>15} {_money(env.fixed_usd):>10} {_money(env.total_usd):>10}"
        )
    for env in report:
        out += ["", f"{env.environment} ({env.region or 'region unknown'})"]
        out.append(f"  {'model / item':<32} {'mode':<10} {'compute $/mo':>12} {'fixed $/mo':>10}  basis")
        for line in env.lines:
            label, mode, compute, fixed, basis = _line_cells(line)
            out.append(f"  {label:<32} {mode:<10} {compute:>12} {fixed:>10}  {basis}")
    out += [""] + [f"note: {n}" for n in _notes(report, hours)]
    return "\n".join(out) + "\n"


def _delta_text(delta: list[dict]) -> list[str]:
    out = ["change against the base assembly:"]
    for env in delta:
        out.append(
            f"  {env['environment']}: floor {_signed(env['delta_total_usd'])}/month (compute "
            f"{_signed(env['delta_compute_usd'])}, fixed {_signed(env['delta_fixed_usd'])}) [{env['status']}]"
        )
        for line in env["lines"]:
            what = line["label"] + (f" / {line['variant']}" if line["variant"] else "")
            out.append(
                f"    {line['status']:<8} {what} ({line['mode']}): {_money(line['base_usd'])} -> "
                f"{_money(line['head_usd'])} ({_signed(line['delta_usd'])})"
            )
    return out


def render_markdown(
    report: list[EnvironmentFloor], *, assembly: str, hours: float, delta: Optional[list[dict]] = None
) -> str:
    """Markdown for a pull-request comment: the change per environment first, then the summary table."""
    out = ["### Always-on cost floor", ""]
    if delta is not None:
        for env in delta:
            out.append(
                f"- **{env['environment']}**: floor {_signed(env['delta_total_usd'])}/month "
                f"(compute {_signed(env['delta_compute_usd'])}, fixed {_signed(env['delta_fixed_usd'])})"
            )
            for line in env["lines"]:
                what = line["label"] + (f" / {line['variant']}" if line["variant"] else "")
                out.append(
                    f"  - {line['status']} `{what}` ({line['mode']}): {_money(line['base_usd'])} → "
                    f"{_money(line['head_usd'])} ({_signed(line['delta_usd'])})"
                )
        out.append("")
    out += [
        "| environment | region | compute $/month | before approval | fixed $/month | total $/month |",
        "|---|---|--:|--:|--:|--:|",
    ]
    for env in report:
        out.append(
            f"| {env.environment} | {env.region or '?'} | {_money(env.compute_usd)} | "
            f"{_money(env.compute_before_approval_usd)} | {_money(env.fixed_usd)} | {_money(env.total_usd)} |"
        )
    for env in report:
        out += ["", f"<details><summary>{env.environment}: lines</summary>", ""]
        out += ["| model / item | mode | compute $/month | fixed $/month | basis |", "|---|---|--:|--:|---|"]
        out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in _line_cells(line)) + " |" for line in env.lines]
        out += ["", "</details>"]
    out += [""] + [f"- {n}" for n in _notes(report, hours)]
    return "\n".join(out) + "\n"


def to_json(
    report: list[EnvironmentFloor], *, assembly: str, hours: float, delta: Optional[list[dict]] = None
) -> dict:
    """The report as plain JSON data (schema_version 1): amounts are USD per month, null when unknown."""
    return {
        "schema_version": JSON_SCHEMA_VERSION,
        "assembly": assembly,
        "hours_per_month": hours,
        "prices": {
            "instances": INSTANCE_PRICE_SOURCE,
            **{key: asdict(price) for key, price in PRICES.items()},
            "free_dashboards_per_account": FREE_DASHBOARDS_PER_ACCOUNT,
        },
        "environments": [
            {
                "environment": env.environment,
                "region": env.region,
                "compute_usd": round(env.compute_usd, 2),
                "compute_before_approval_usd": round(env.compute_before_approval_usd, 2),
                "fixed_usd": round(env.fixed_usd, 2),
                "fixed_before_approval_usd": round(env.fixed_before_approval_usd, 2),
                "total_usd": round(env.total_usd, 2),
                "unknown_prices": env.unknown_prices,
                "warnings": list(env.warnings),
                "lines": [
                    {
                        **asdict(line),
                        "resources": list(line.resources),
                        "monthly_usd": None if line.monthly_usd is None else round(line.monthly_usd, 2),
                    }
                    for line in env.lines
                ],
            }
            for env in report
        ],
        "notes": _notes(report, hours),
        "delta": delta,
    }


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------
def _hours(text: str) -> float:
    value = _number(text)
    if value is None or not 0 < value <= 744:
        raise argparse.ArgumentTypeError(f"{text!r}: give the hours in a month, a number in (0, 744], e.g. 730")
    return value


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mlops_loop.tools.cost_floor",
        description="Print each environment's always-on monthly cost floor from a synthesized cloud assembly.",
    )
    parser.add_argument(
        "assembly", nargs="?", default="cdk.out", help="the cloud assembly directory (default: cdk.out)"
    )
    parser.add_argument(
        "--format", choices=("text", "markdown", "json"), default="text", help="output format (default: text)"
    )
    parser.add_argument(
        "--base-assembly",
        metavar="DIR",
        help="also print the change per environment against this assembly (default: none)",
    )
    parser.add_argument(
        "--hours-per-month",
        type=_hours,
        default=DEFAULT_HOURS_PER_MONTH,
        help=f"hours an always-on instance runs in a month (default: {DEFAULT_HOURS_PER_MONTH:g})",
    )
    parser.add_argument(
        "--repo",
        type=Path,
        default=source_stamp.REPO_ROOT,
        help="the source tree the assembly must have been synthesized from (default: the checkout holding this tool)",
    )
    parser.add_argument(
        "--allow-stale",
        action="store_true",
        help="read an assembly not synthesized from that tree as it is now, with a warning (default: refuse it)",
    )
    args = parser.parse_args(argv)
    try:
        report = floor_report(args.assembly, hours_per_month=args.hours_per_month)
        delta = None
        if args.base_assembly:
            delta = compare(report, floor_report(args.base_assembly, hours_per_month=args.hours_per_month))
        warning = source_stamp.require_fresh(args.assembly, repo=args.repo, allow_stale=args.allow_stale)
    except (NotACloudAssembly, source_stamp.StaleAssembly) as error:
        print(f"cost_floor: {error}", file=sys.stderr)
        return 2
    if warning:
        print(f"cost_floor: {warning}", file=sys.stderr)
    kwargs = {"assembly": str(args.assembly), "hours": args.hours_per_month, "delta": delta}
    if args.format == "json":
        print(json.dumps(to_json(report, **kwargs), indent=2))
    elif args.format == "markdown":
        print(render_markdown(report, **kwargs), end="")
    else:
        print(render_text(report, **kwargs), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
