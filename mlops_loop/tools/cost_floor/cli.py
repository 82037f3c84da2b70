"""The always-on monthly cost floor of every environment, read from the synthesized templates.

Usage::

    python -m mlops_loop.tools.cost_floor [cdk.out] [--format text|markdown|json]
                                         [--base-assembly DIR] [--hours-per-month 730]

The floor is what an environment costs per month with zero traffic. Its headline is compute: the
serving instances that stay up whatever the traffic (an endpoint variant's autoscaling
``MinCapacity`` when a scalable target exists, else its ``InitialInstanceCount``), times the hourly
price, times the hours of a month. Async endpoints that scale to 0, serverless endpoints without
provisioned concurrency and batch transform (instances run only while a scheduled job runs) cost
$0. Small always-on items (KMS keys, CloudWatch alarms and dashboards, Feature Store online stores, score-by-id function URLs,
NAT gateways, interface VPC endpoints, secrets) are reported in a separate "fixed" column.

A resource with a CloudFormation ``Condition`` that is false with the parameter defaults (a serving
endpoint exists only once a model version is approved) is counted in the floor and marked "once
deployed"; the "before approval" column leaves it out.

``--base-assembly DIR`` adds the change per environment against another assembly (e.g. the main
branch's), the "floor +$X/month" line of a pull-request comment. A base stack the assembly no longer
deploys (same target and stack name) is left running by ``cdk deploy``: it is not subtracted, but listed as
"removed from the app, still running until deleted by hand: $X/month" (an environment moved to another
region, account or project name, renamed, or removed).

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
import sys
from pathlib import Path
from typing import Optional

from .. import source_stamp
from .model import NotACloudAssembly
from .render import render_markdown, render_text, to_json
from .report import DEFAULT_HOURS_PER_MONTH, compare, floor_report
from .template import as_number


def _hours(text: str) -> float:
    value = as_number(text)
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
