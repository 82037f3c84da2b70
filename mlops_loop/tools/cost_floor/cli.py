"""The always-on monthly cost floor of every environment, read from the synthesized templates.

Usage::

    python -m mlops_loop.tools.cost_floor [cdk.out] [--format text|markdown|json]
                                         [--base-assembly DIR] [--hours-per-month 730]
                                         [--minutes-per-run 10] [--crawler-dpus 1]

The floor is what an environment costs per month with zero traffic. Its headline is compute: the
serving instances that stay up whatever the traffic (an endpoint variant's autoscaling
``MinCapacity`` when something scales it in without traffic - an idle scale-in, or an async backlog -
else its ``InitialInstanceCount``, at least ``MinCapacity``: target tracking never scales in without
data), times the hourly price, times the hours of a month; a variant that autoscales also shows its
ceiling at ``MaxCapacity``. Async endpoints that scale to 0, serverless endpoints without
provisioned concurrency and batch transform (instances run only while a scheduled job runs) cost
$0. Small always-on items (KMS keys, CloudWatch alarms and dashboards, Feature Store online stores, score-by-id function URLs,
NAT gateways, interface VPC endpoints, secrets) are reported in a separate "fixed" column; so are the interface VPC
endpoints an environment that runs in a VPC needs and the app does not create (docs/vpc.md, "Running inside your VPC"):
mlops_loop/config/vpc_endpoints.py's list x the distinct subnets of the templates' VpcConfigs (a stand-in for
Availability Zones, which templates do not name) x the hourly price, whenever any template carries a VpcConfig.

What the schedules run whatever the traffic is a third column, "scheduled", an estimate kept out of "total" and
added in "with schedules": Glue jobs and crawlers on scheduled triggers (and what their workflows start after them),
the drift monitor's processing jobs and the CloudWatch custom metrics they publish (one metric-hour per metric per
run; so are the deploy handler's hourly log-retention sweep's), batch transform jobs and training pipelines that schedules start. Runs per month
come from each schedule expression; each run costs its billing minimum where AWS has one (Glue jobs 1 minute,
crawlers 10 minutes at ``--crawler-dpus`` DPUs, default 1: AWS chooses a crawl's capacity), else runs
``--minutes-per-run`` minutes (default 10; SageMaker bills jobs per second with no minimum). See
:mod:`.scheduled`.

A resource with a CloudFormation ``Condition`` that is false with the parameter defaults (a serving
endpoint exists only once a model version is approved) is counted in the floor and marked "once
deployed"; the "before approval" column leaves it out.

The notes name each environment with no AWS Budgets cost budget in its templates (nobody is told when its month goes
wrong) and each budget whose lowest ACTUAL notice the floor with schedules already passes (it would fire every month).

``--base-assembly DIR`` adds the change per environment against another assembly (e.g. the main
branch's), the "floor +$X/month" line of a pull-request comment. A base stack the assembly no longer
deploys (same target and stack name) is left running by ``cdk deploy``: it is not subtracted, but listed as
"removed from the app, still running until deleted by hand: $X/month" (an environment moved to another
region, account or project name, renamed, or removed).

The assembly must have been synthesized from the working tree as it is now (its source stamp, see
``mlops_loop.tools.source_stamp``, matches ``--repo``, by default this checkout), with the config selected
now (``MLOPS_LOOP_CONFIG``, the context, else the default); a stale, foreign, other config's or unstamped one
is refused with one line, or read with a warning under ``--allow-stale``. The base
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
import sys
from pathlib import Path
from typing import Optional

from .. import source_stamp
from .model import NotACloudAssembly
from .render import render_markdown, render_text, to_json
from .report import DEFAULT_HOURS_PER_MONTH, compare, floor_report
from .scheduled import DEFAULT_ASSUMPTIONS, Assumptions
from .template import as_number


def _hours(text: str) -> float:
    value = as_number(text)
    if value is None or not 0 < value <= 744:
        raise argparse.ArgumentTypeError(f"{text!r}: give the hours in a month, a number in (0, 744], e.g. 730")
    return value


def _minutes(text: str) -> float:
    value = as_number(text)
    if value is None or not 0 < value <= 1440:
        raise argparse.ArgumentTypeError(f"{text!r}: give the minutes a scheduled job runs, a number in (0, 1440], e.g. 10")
    return value


def _dpus(text: str) -> float:
    value = as_number(text)
    if value is None or not 0 < value <= 100:
        raise argparse.ArgumentTypeError(f"{text!r}: give the DPUs a crawl uses, a number in (0, 100], e.g. 1")
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
        "--minutes-per-run",
        type=_minutes,
        default=DEFAULT_ASSUMPTIONS.minutes_per_run,
        help="minutes a scheduled SageMaker job or pipeline step runs, for the scheduled estimate "
        f"(default: {DEFAULT_ASSUMPTIONS.minutes_per_run:g})",
    )
    parser.add_argument(
        "--crawler-dpus",
        type=_dpus,
        default=DEFAULT_ASSUMPTIONS.crawler_dpus,
        help=f"DPUs a Glue crawl uses, for the scheduled estimate (default: {DEFAULT_ASSUMPTIONS.crawler_dpus:g})",
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
    assumptions = Assumptions(minutes_per_run=args.minutes_per_run, crawler_dpus=args.crawler_dpus)
    try:
        report = floor_report(args.assembly, hours_per_month=args.hours_per_month, assumptions=assumptions)
        delta = None
        if args.base_assembly:
            base = floor_report(args.base_assembly, hours_per_month=args.hours_per_month, assumptions=assumptions)
            delta = compare(report, base)
        warning = source_stamp.require_fresh(args.assembly, repo=args.repo, allow_stale=args.allow_stale, current_config=True)
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
