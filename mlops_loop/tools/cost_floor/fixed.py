"""Fixed items: the small always-on resources (keys, alarms, dashboards, online stores, ...)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Optional

from mlops_loop.config.vpc_endpoints import INTERFACE_ENDPOINT_SERVICES

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
    also: tuple[str, ...] = ()  # further resources the unit stands for
    metrics: Optional[int] = None  # a dashboard's metrics (None: its body could not be read)


_FIXED_LABELS = {
    "kms": "KMS keys",
    "alarm": "CloudWatch alarms",
    "scaling_alarm": "CloudWatch target-tracking alarms",
    "composite": "CloudWatch composite alarms",
    "dashboard": "CloudWatch dashboards",
    "online_store": "Feature Store online stores",
    "function_url": "Lambda function URLs (score by id)",
    "nat": "NAT gateways",
    "vpce": "Interface VPC endpoints",
    "vpce_required": "Interface VPC endpoints (required, not created by this app)",
    "secret": "Secrets Manager secrets",
}
# A SageMaker request's subnets inside a JSON string (a schedule's Input, a pipeline definition).
_SUBNETS_IN_TEXT = re.compile(r'"(?:Subnets|SubnetIds)"\s*:\s*\[([^\]]*)\]')


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


# Application Auto Scaling creates two CloudWatch alarms for each target-tracking policy, one to scale out and one to
# scale in (``put-scaling-policy``'s answer names both: TargetTracking-...-AlarmHigh-... and -AlarmLow-...), billed as
# any alarm but absent from the template. A policy on a high-resolution predefined metric gets high-resolution alarms.
TARGET_TRACKING_ALARMS = 2
# The free tier's dashboards are "3 dashboards for up to 50 metrics" each (https://aws.amazon.com/cloudwatch/pricing/).
FREE_DASHBOARD_METRICS = 50


def _dashboard_metrics(tpl: Template, props: dict) -> Optional[int]:
    """The metrics a dashboard graphs: every row of every widget's ``metrics`` that names a metric (a row holding only
    a math expression is not one); None when the body cannot be read."""
    text = tpl.text(props.get("DashboardBody"))
    try:
        body = json.loads(text) if text is not None else None
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    count = 0
    for widget in body.get("widgets") or []:
        rows = ((widget or {}).get("properties") or {}).get("metrics") if isinstance(widget, dict) else None
        for row in rows if isinstance(rows, list) else []:
            if isinstance(row, list) and any(isinstance(item, str) for item in row):
                count += 1
    return count


# Not a fixed item: an AWS Budgets budget (AWS::Budgets::Budget, the environment's `budget`). A budget without actions
# costs nothing: AWS's Price List for AWSBudgets (offer effective 2020-10-01, read through the public copy
# labofsahil/aws-pricing-dataset, 2026-12-06) prices "Budget Notifications" budget-days at $0.00 whatever their number;
# only action-enabled budgets (62 budget-days a month free, then $0.10 a budget-day) and delivered Budgets reports
# ($0.01 each) are billed, and the app makes neither. The "first two free, $0.02 a day each after" of older AWS docs
# is the pricing before that offer.


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
            units.append(_Unit("dashboard", tpl.name, logical_id, 1, "dashboard", once,
                               metrics=_dashboard_metrics(tpl, props)))
        elif kind_type == "AWS::ApplicationAutoScaling::ScalingPolicy" and \
                tpl.value(props.get("PolicyType")) == "TargetTrackingScaling":
            tracking = props.get("TargetTrackingScalingPolicyConfiguration") or {}
            metric = str(tpl.value((tracking.get("PredefinedMetricSpecification") or {}).get("PredefinedMetricType")))
            unit("scaling_alarm", TARGET_TRACKING_ALARMS,
                 "alarm_metric_high_resolution" if metric.endswith("HighResolution") else "alarm_metric_standard")
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


def _subnets_of(tpl: Template, node: Any, found: set[str]) -> bool:
    """Add to ``found`` the subnets of every VpcConfig (or Glue connection) in ``node``; whether any was there."""
    seen = False
    if isinstance(node, dict):
        if len(node) == 1 and "Fn::Join" in node:
            text = tpl.text(node)
            return _subnets_of(tpl, text, found) if text is not None else False
        for key in ("VpcConfig", "PhysicalConnectionRequirements"):
            config = node.get(key)
            if isinstance(config, dict):
                subnets = config.get("Subnets") or config.get("SubnetIds") or config.get("SubnetId")
                if subnets is not None:
                    seen = True
                    for subnet in subnets if isinstance(subnets, list) else [subnets]:
                        value = tpl.value(subnet)
                        found.add(value if isinstance(value, str) else json.dumps(subnet, sort_keys=True))
        for value in node.values():
            seen = _subnets_of(tpl, value, found) or seen
    elif isinstance(node, list):
        for value in node:
            seen = _subnets_of(tpl, value, found) or seen
    elif isinstance(node, str) and "VpcConfig" in node:
        for listed in _SUBNETS_IN_TEXT.findall(node):
            seen = True
            found.update(re.findall(r'"([^"]+)"', listed))
    return seen


def required_endpoint_units(templates: list[Template]) -> list[_Unit]:
    """The interface VPC endpoints an environment that runs in a VPC needs and the app does not create: one unit
    (quantity: the distinct subnets, a stand-in for Availability Zones) when any template carries a VpcConfig, else
    none. The endpoint list is mlops_loop/config/vpc_endpoints.py (docs/vpc.md, "Running inside your VPC")."""
    subnets: set[str] = set()
    where: list[tuple[str, str]] = []
    for tpl in templates:
        for logical_id, resource in tpl.resources.items():
            if _subnets_of(tpl, resource.get("Properties") or {}, subnets):
                where.append((tpl.name, logical_id))
    if not where:
        return []
    stacks = ", ".join(sorted({stack for stack, _ in where}))
    ids = [logical_id for _, logical_id in where]
    return [_Unit("vpce_required", stacks, ids[0], max(len(subnets), 1), "interface_endpoint", None, also=tuple(ids[1:]))]


def _fixed_cost(units: list[_Unit], hours: float) -> tuple[Optional[float], str]:
    """(monthly USD or None when unknown, basis) of units of one kind."""
    kind = units[0].kind
    if kind == "vpce_required":
        price, subnets, endpoints = PRICES["interface_endpoint"], units[0].quantity, len(INTERFACE_ENDPOINT_SERVICES)
        basis = (f"{endpoints} endpoints (docs/vpc.md, Running inside your VPC) x {subnets:g} subnet(s) (a stand-in for "
                 f"Availability Zones, which the templates do not name) x {format_rate(price.usd)}/{price.unit} x "
                 f"{hours:g} h; the VPC's, possibly shared with other workloads")
        return endpoints * subnets * price.usd * hours, basis
    if kind == "online_store":
        provisioned = sum(1 for u in units if u.unknown)
        if provisioned:
            return None, f"unknown price: {provisioned} of {len(units)} with provisioned throughput (billed per hour)"
        return 0.0, (f"{len(units)} on demand: storage billed per GB-month whatever the traffic, not estimated (it needs "
                     "the data size); reads and writes per request: the feature job's nightly writes are scheduled "
                     "work, not traffic, and are not estimated either")
    if kind == "function_url":
        # Lambda bills requests and duration only; reserved concurrency (the front's throttle) is free.
        return 0.0, f"{len(units)}: pay per request and duration, $0 with no traffic"
    if kind == "dashboard":
        # Beyond the free tier's metrics a dashboard is counted as billed: the floor errs high, and says so.
        price, free = PRICES["dashboard"], FREE_DASHBOARDS_PER_ACCOUNT
        large = [u for u in units if u.metrics is None or u.metrics > FREE_DASHBOARD_METRICS]
        small = len(units) - len(large)
        billed = len(large) + max(0, small - free)
        basis = (f"{len(units)}, first {free} per account free (up to {FREE_DASHBOARD_METRICS} metrics each), "
                 f"{format_rate(price.usd)}/month each after")
        if large:
            counts = ", ".join("unreadable" if u.metrics is None else f"{u.metrics} metrics" for u in large)
            basis += (f"; {len(large)} over {FREE_DASHBOARD_METRICS} metrics ({counts}): may be billed, counted at "
                      f"{format_rate(price.usd)}/month")
        return billed * price.usd, basis
    total, parts = 0.0, []
    for key in sorted({u.price_key for u in units if u.price_key}):
        price = PRICES[key]
        amount = sum(u.quantity for u in units if u.price_key == key)
        hourly = price.unit.endswith("hour")
        total += amount * price.usd * (hours if hourly else 1)
        parts.append(f"{amount:g} x {format_rate(price.usd)}/{price.unit}" + (f" x {hours:g} h" if hourly else ""))
    prefix = f"{len(units)} alarms: " if kind == "alarm" else ""
    if kind == "scaling_alarm":
        prefix = (f"{len(units)} target-tracking polic{'y' if len(units) == 1 else 'ies'} x {TARGET_TRACKING_ALARMS} "
                  "alarms Application Auto Scaling creates (scale out, scale in), not in the template: ")
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
                resources=tuple(r for u in of_kind for r in (u.logical_id, *u.also)),
                once_deployed=", ".join(sorted({str(u.once_deployed) for u in later})) if not now else None,
            )
        )
    return lines, before
