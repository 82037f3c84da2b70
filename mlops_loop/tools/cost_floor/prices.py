"""The prices of everything the floor counts that is not an instance-hour (USD, us-east-1 list prices);
instance prices are in mlops_loop/config/instance_types.py."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Price:
    usd: float
    unit: str
    source: str
    # True when the rate could not be read from AWS's own pricing page or price list here: every basis priced with it
    # says "rate unverified", and the report's notes name it.
    unverified: bool = False

    @property
    def caveat(self) -> str:
        """`` (rate unverified)`` for an unverified rate, else ``""``: appended to the basis that uses it."""
        return " (rate unverified)" if self.unverified else ""


# The region whose list prices these are (instances' too): an environment elsewhere is flagged in the report's notes.
PRICES_REGION = "us-east-1"


# Every price that is not an instance-hour. USD, us-east-1 list prices, read 2026-11-26.
PRICES: dict[str, Price] = {
    # Provisioned concurrency of a serverless endpoint is billed per second for memory x concurrency
    # while provisioned, traffic or not. Source: https://aws.amazon.com/sagemaker/pricing/
    # ("Serverless Inference with Provisioned Concurrency", US East (N. Virginia), 1024 MB:
    # $0.0000048 per second). The stored copy searched on 2026-11-26 did not carry the rate table;
    # the rate is consistent with a third-party worked example (2 GB, 40 h/week ~ $1.44/week) but
    # not verified against the live page: check it there before quoting a number externally.
    "serverless_provisioned_concurrency": Price(
        0.0000048, "GB-second", "https://aws.amazon.com/sagemaker/pricing/ (us-east-1, unverified 2026-11-26)",
        unverified=True,
    ),
    # On-demand serverless inference compute, billed per second of each request's duration for its memory: the
    # ceiling prices a serverless endpoint at MaxConcurrency requests running all month at this rate. Source:
    # https://aws.amazon.com/sagemaker/pricing/ ("Serverless Inference", US East (N. Virginia), 1024 MB: $0.0000200
    # per second). The stored copies searched on 2026-12-06 did not carry the rate table; the rate is a third-party
    # listing's ("Serverless inference: $0.0000200 per second per GB memory") and not verified against the live page.
    "serverless_inference": Price(
        0.00002, "GB-second", "https://aws.amazon.com/sagemaker/pricing/ (us-east-1, unverified 2026-12-06)",
        unverified=True,
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
    # CloudWatch custom metrics (a metric name with its dimensions is one metric): $0.30 per metric-month for the first
    # 10,000 (https://aws.amazon.com/cloudwatch/pricing/, "Metrics"; the AWS free tier's 10 are not deducted, as for
    # alarms). A metric-month is prorated by the hour and metered only in hours the metric receives data: read
    # 2026-12-07 in third-party copies (one with a measured bill: usage type CW:MetricMonitorUsage, "prorated by the
    # hour, only for hours in which the identity receives data"), not on AWS's page as stored here, so a series written
    # once a day is priced at 30.42 of 730 hours; if AWS billed whole months it would be 24 times that.
    "custom_metric": Price(0.30, "metric-month", "https://aws.amazon.com/cloudwatch/pricing/ (hourly proration unverified, "
                           "2026-12-07)", unverified=True),
    # https://aws.amazon.com/vpc/pricing/ and https://aws.amazon.com/privatelink/pricing/, 2026-11-26.
    "nat_gateway": Price(0.045, "gateway-hour", "https://aws.amazon.com/vpc/pricing/ (2026-11-26)"),
    "interface_endpoint": Price(0.01, "endpoint-AZ-hour", "https://aws.amazon.com/privatelink/pricing/ (2026-11-26)"),
    # https://aws.amazon.com/secrets-manager/pricing/, 2026-11-26.
    "secret": Price(0.40, "secret-month", "https://aws.amazon.com/secrets-manager/pricing/ (2026-11-26)"),
    # Glue Spark (glueetl) jobs: per DPU-hour, billed per second, with a 1-minute minimum per run on Glue 2.0 and later
    # (10 minutes on 0.9 and 1.0). Read 2026-12-04: the stored copies of https://aws.amazon.com/glue/pricing/ have
    # their rate tables unrendered; the page's worked example (a Spark job of 6 DPU for 15 minutes: 6 x 0.25 h x
    # $0.44 = $0.66, aws.amazon.com/tr/glue/pricing) gives the rate; the minimums are AWS's Glue 2.0 announcement as
    # quoted by ashks.com ("1-minute minimum billing duration (with 1-second increments)") and awsnegotiations.com
    # (May 2026: "$0.44 per DPU-hour, one-minute minimum, billed per second"). Unverified against the live page.
    "glue_dpu_hour": Price(0.44, "DPU-hour", "https://aws.amazon.com/glue/pricing/ (worked example, 2026-12-04)",
                           unverified=True),
    # Glue crawlers: the same rate, billed per second with a 10-minute minimum per crawler run; how many DPUs a crawl
    # uses is AWS's choice (ListCrawls reports each crawl's DPUHour). AWS Price List rows for AWSGlue (read through
    # a public copy, labofsahil/aws-pricing-dataset): "$0.44 per Data Processing Unit-Hour for AWS Glue crawler";
    # the minimum as quoted by awsnegotiations.com ("Crawlers: $0.44 per DPU-hour, ten-minute minimum per crawl").
    "glue_crawler_dpu_hour": Price(
        0.44, "DPU-hour", "https://aws.amazon.com/glue/pricing/ (AWS Price List rows, 2026-12-04)"
    ),
}
# Glue's billing minimum per run, in minutes (the sources are those of the DPU-hour prices above).
GLUE_JOB_MINIMUM_MINUTES = 1.0  # Spark jobs on Glue 2.0 and later
GLUE_LEGACY_JOB_MINIMUM_MINUTES = 10.0  # Spark jobs on Glue 0.9 and 1.0
GLUE_CRAWLER_MINIMUM_MINUTES = 10.0
# DPUs per worker of each Glue worker type (Glue Developer Guide, "AWS Glue worker types"). The memory-optimized R.*
# workers count M-DPUs, not priced here: such a job's price is unknown.
GLUE_WORKER_DPUS = {"G.025X": 0.25, "G.1X": 1, "G.2X": 2, "G.4X": 4, "G.8X": 8, "G.12X": 12, "G.16X": 16}
FREE_DASHBOARDS_PER_ACCOUNT = 3
INSTANCE_PRICE_SOURCE = "mlops_loop/config/instance_types.py (us-east-1 on-demand list prices)"
