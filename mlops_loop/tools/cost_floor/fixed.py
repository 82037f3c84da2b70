"""Fixed items: the small always-on resources (keys, alarms, dashboards, online stores, ...)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .model import Line
from .prices import FREE_DASHBOARDS_PER_ACCOUNT, PRICES
from .template import Template, as_number, format_rate


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
    "function_url": "Lambda function URLs (score by id)",
    "nat": "NAT gateways",
    "vpce": "Interface VPC endpoints",
    "secret": "Secrets Manager secrets",
}


def _alarm_metrics(tpl: Template, props: dict) -> tuple[int, bool]:
    """(alarm metrics billed, high resolution) of one metric alarm."""
    metrics = props.get("Metrics")
    periods = [as_number(tpl.value(props.get("Period")))]
    count = 1
    if isinstance(metrics, list) and metrics:
        stats = [m.get("MetricStat") for m in metrics if isinstance(m, dict) and isinstance(m.get("MetricStat"), dict)]
        periods += [as_number(tpl.value(stat.get("Period"))) for stat in stats]
        count = max(len(stats), 1)
        # An anomaly-detection alarm is billed as three metrics: the metric and the band's two bounds.
        if any("ANOMALY_DETECTION_BAND" in str(m.get("Expression", "")) for m in metrics if isinstance(m, dict)):
            count *= 3
    return count, any(p is not None and p < 60 for p in periods)


def fixed_units(tpl: Template) -> list[_Unit]:
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
        elif kind_type == "AWS::Lambda::Url":
            unit("function_url", 1, None)
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
    if kind == "function_url":
        # Lambda bills requests and duration only; reserved concurrency (the front's throttle) is free.
        return 0.0, f"{len(units)}: pay per request and duration, $0 with no traffic"
    if kind == "dashboard":
        price = PRICES["dashboard"]
        billed = max(0, len(units) - FREE_DASHBOARDS_PER_ACCOUNT)
        free = FREE_DASHBOARDS_PER_ACCOUNT
        basis = f"{len(units)}, first {free} per account free, {format_rate(price.usd)}/month each after"
        return billed * price.usd, basis
    total, parts = 0.0, []
    for key in sorted({u.price_key for u in units if u.price_key}):
        price = PRICES[key]
        amount = sum(u.quantity for u in units if u.price_key == key)
        hourly = price.unit.endswith("hour")
        total += amount * price.usd * (hours if hourly else 1)
        parts.append(f"{amount:g} x {format_rate(price.usd)}/{price.unit}" + (f" x {hours:g} h" if hourly else ""))
    prefix = f"{len(units)} alarms: " if kind == "alarm" else ""
    return total, prefix + " + ".join(parts)


def fixed_lines(units: list[_Unit], hours: float) -> tuple[list[Line], float]:
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
