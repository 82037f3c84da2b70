"""The prices of everything the floor counts that is not an instance-hour (USD, us-east-1 list prices);
instance prices are in mlops_loop/config/instance_types.py."""

from __future__ import annotations

from dataclasses import dataclass


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
