"""Rendering a floor report as text, Markdown (a pull-request comment) or JSON."""

from __future__ import annotations

from dataclasses import asdict
from typing import Optional

from .model import EnvironmentFloor, Line
from .prices import FREE_DASHBOARDS_PER_ACCOUNT, INSTANCE_PRICE_SOURCE, PRICES, PRICES_REGION
from .scheduled import DEFAULT_ASSUMPTIONS, Assumptions
from .template import format_rate


# 2: the "scheduled" lines and totals (scheduled_usd, total_with_schedules_usd, scheduled_assumptions).
# 3: the ceiling (environments' compute_ceiling_usd, ceiling_usd, unknown_ceilings; lines' ceiling_usd and
#    ceiling_basis; delta_ceiling_usd and the lines' base/head/delta_ceiling_usd), prices' "unverified".
JSON_SCHEMA_VERSION = 3
def _money(value: Optional[float]) -> str:
    return "unknown" if value is None else f"{value:,.2f}"


def _signed(value: Optional[float]) -> str:
    if value is None:
        return "unknown"
    return f"{'+' if value >= 0 else '-'}${abs(value):,.2f}"


def _notes(report: list[EnvironmentFloor], hours: float) -> list[str]:
    notes = [
        f"zero traffic, {hours:g} h/month; USD on-demand list prices for {PRICES_REGION}: instances from "
        "mlops_loop/config/instance_types.py, the rest from PRICES in mlops_loop/tools/cost_floor/prices.py; "
        "estimates for review, not a bill",
    ]
    unverified = [f"{format_rate(p.usd)}/{p.unit} ({key}, {p.source})" for key, p in PRICES.items() if p.unverified]
    if unverified and any("(rate unverified)" in line.basis for e in report for line in e.lines):
        notes.append("(rate unverified): read from a third-party copy or worked example, not from AWS's live pricing "
                     "page; check it there before quoting a number: " + "; ".join(unverified))
    if any(line.category == "scheduled" for e in report for line in e.lines):
        assumed = _assumptions(report)
        notes.append(
            "scheduled: an estimate, not in 'total' (see 'with schedules'): runs per month from each schedule "
            "expression x a minimum per run: Glue jobs' billing minimum, crawlers' 10-minute minimum at "
            f"{assumed.crawler_dpus:g} DPU (assumed; AWS chooses, --crawler-dpus), SageMaker jobs and pipeline steps "
            f"{assumed.minutes_per_run:g} min each (assumed; SageMaker bills no minimum, --minutes-per-run); real runs "
            "are usually longer"
        )
    for env in report:
        if env.region and env.region != PRICES_REGION:
            notes.append(f"{env.environment} runs in {env.region} but is priced at {PRICES_REGION}'s list prices: "
                         f"{env.region}'s differ; read them on each service's pricing page")
    if any(line.once_deployed for e in report for line in e.lines):
        notes.append(
            "[once deployed]: exists only once a model version is approved and deployed (its CloudFormation "
            "condition is false with the parameter defaults); counted in the floor, not in 'before approval'"
        )
    if any(line.category == "compute" for e in report for line in e.lines):
        notes.append(
            "ceiling: the always-on items at the most their config allows, the only cap (IAM has no condition key for "
            "instance counts or concurrency): instances at their autoscaling MaxCapacity (else the fixed count) x "
            f"{hours:g} h; serverless at the theoretical maximum, MaxConcurrency requests running all month, plus "
            "its provisioned concurrency; + fixed. Schedules not included"
        )
    for env in report:
        if not any(line.category == "compute" for line in env.lines):
            notes.append(f"{env.environment}: no endpoint or batch-served model in the templates (no serving stack?)")
        notes += [f"warning: {env.environment}: {w}" for w in env.warnings]
        if env.unknown_prices:
            notes.append(f"{env.environment}: {env.unknown_prices} line(s) with unknown price, not in the totals")
        if env.unknown_ceilings:
            notes.append(f"{env.environment}: {env.unknown_ceilings} line(s) with unknown ceiling, not in the ceiling")
        notes += _budget_notes(env)
    return notes


def _budget_notes(env: EnvironmentFloor) -> list[str]:
    """Who is told when the environment's month goes wrong: nobody without a budget; and a budget whose lowest ACTUAL
    notice the floor with schedules already passes (Budgets notifies on GREATER_THAN) would fire every month, so
    people learn to ignore it."""
    name, floor = env.environment, env.total_with_schedules_usd
    if not env.budgets:
        return [f"{name}: no AWS Budgets cost budget in its templates: nobody is told when its month's spending passes "
                f"any amount (floor with schedules {_money(floor)} $/mo, ceiling {_money(env.ceiling_usd)} $/mo, before "
                f"traffic); set environments.{name}.budget (docs/serving.md, Budgets and cost anomalies)"]
    notes = []
    for budget in env.budgets:
        reached = [(label, usd) for label, usd in budget.actual_notices if floor > usd]
        if not reached:
            continue
        label, usd = reached[0]
        percentage = label.endswith("%")
        what = (f"{label} actual notice ({_money(usd)} $ of {_money(budget.monthly_usd)} $/mo)" if percentage else
                f"{label} actual notice (of {_money(budget.monthly_usd)} $/mo)")
        fix = (f"raise environments.{name}.budget.monthly_usd or that percentage" if percentage else
               "raise that threshold")
        notes.append(f"{name}: its budget's {what} is reached by the floor with schedules alone ({_money(floor)} $/mo at "
                     f"{PRICES_REGION} list prices, before traffic): it would fire every month; {fix}")
    return notes


def _assumptions(report: list[EnvironmentFloor]) -> Assumptions:
    return next((e.assumptions for e in report if e.assumptions is not None), DEFAULT_ASSUMPTIONS)


def _line_cells(line: Line) -> list[str]:
    label = line.label + (f" / {line.variant}" if line.variant else "")
    compute, fixed, scheduled = (_money(line.monthly_usd) if line.category == c else "" for c in
                                 ("compute", "fixed", "scheduled"))
    ceiling = _money(line.ceiling_usd) if line.category == "compute" else ""
    basis = line.basis + (" [once deployed]" if line.once_deployed else "")
    if line.category == "compute":
        basis += f"; ceiling: {line.ceiling_basis}"
    return [label, line.mode, compute, ceiling, fixed, scheduled, basis]


def _team_subtotals(env: EnvironmentFloor) -> list[str]:
    """One line per team (``Line.team``: models.<model>.owner) with its compute floor and ceiling and its models; none
    when no line has a team. The fixed items and schedules are the environment's, shared: in no team's."""
    teams: dict[str, list[Line]] = {}
    for line in env.lines:
        if line.category == "compute" and line.team:
            teams.setdefault(line.team, []).append(line)
    out = []
    for team, lines in sorted(teams.items()):
        floor = sum(line.monthly_usd or 0.0 for line in lines)
        ceiling = sum(line.ceiling_usd or 0.0 for line in lines)
        unknown = " (some prices unknown)" if any(line.monthly_usd is None for line in lines) else ""
        models = ", ".join(sorted({line.label for line in lines}))
        out.append(f"  team {team}: {_money(floor)} $/mo compute ({models}){unknown}, ceiling {_money(ceiling)} $/mo")
    return out


def render_text(
    report: list[EnvironmentFloor], *, assembly: str, hours: float, delta: Optional[list[dict]] = None
) -> str:
    """Plain-text report: the change against the base (when given), the summary, then each environment's lines."""
    out = [f"mlops-loop always-on cost floor ({assembly})", ""]
    if delta is not None:
        out += _delta_text(delta) + [""]
    out.append(
        f"{'environment':<12} {'region':<14} {'compute $/mo':>12} {'before approval':>15} "
        f"{'fixed $/mo':>10} {'total $/mo':>10} {'ceiling** $/mo':>14} {'scheduled* $/mo':>15} {'with schedules':>14}"
    )
    for env in report:
        out.append(
            f"{env.environment:<12} {env.region or '?':<14} {_money(env.compute_usd):>12} "
            f"{_money(env.compute_before_approval_usd):>15} {_money(env.fixed_usd):>10} {_money(env.total_usd):>10} "
            f"{_money(env.ceiling_usd):>14} {_money(env.scheduled_usd):>15} {_money(env.total_with_schedules_usd):>14}"
        )
    out.append("* an estimate: see the notes")
    out.append("** every endpoint at the most its config allows, + fixed: see the notes")
    for env in report:
        out += ["", f"{env.environment} ({_region(env)})"]
        out.append(f"  {'model / item':<34} {'mode':<10} {'compute $/mo':>12} {'ceiling $/mo':>12} {'fixed $/mo':>10} "
                   f"{'scheduled*':>10}  basis")
        for line in env.lines:
            label, mode, compute, ceiling, fixed, scheduled, basis = _line_cells(line)
            out.append(f"  {label:<34} {mode:<10} {compute:>12} {ceiling:>12} {fixed:>10} {scheduled:>10}  {basis}")
        out += _team_subtotals(env)
    out += [""] + [f"note: {n}" for n in _notes(report, hours)]
    return "\n".join(out) + "\n"


def _region(env: EnvironmentFloor) -> str:
    """The environment's region, saying when it is not the one the prices are for."""
    if not env.region:
        return "region unknown"
    return env.region if env.region == PRICES_REGION else f"{env.region}, priced at {PRICES_REGION} list prices"


def _line_name(line: dict) -> str:
    """``<model> / <variant>`` (or the item) of a delta line."""
    return line["label"] + (f" / {line['variant']}" if line["variant"] else "")


def _env_change(env: dict) -> str:
    """``floor +$x/month (compute +$y, fixed +$z); ceiling +$c/month`` of one environment's delta, then
    ``; scheduled +$s/month (estimate)`` when what its schedules run changed."""
    change = (f"floor {_signed(env['delta_total_usd'])}/month (compute {_signed(env['delta_compute_usd'])}, "
              f"fixed {_signed(env['delta_fixed_usd'])}); ceiling {_signed(env.get('delta_ceiling_usd', 0.0))}/month")
    if env.get("delta_scheduled_usd"):
        change += f"; scheduled {_signed(env['delta_scheduled_usd'])}/month (estimate)"
    return change


def _left_running(env: dict) -> Optional[str]:
    """What an environment's delta leaves out of the change because it keeps running: the base stacks the head no
    longer deploys (``cdk deploy`` never deletes them), with their floor and where they are; None when there are none."""
    if "left_running_usd" not in env:
        return None
    where: dict[str, list[str]] = {}
    for stack in env["left_running_stacks"]:
        where.setdefault(stack["environment"], []).append(stack["stack"])
    stacks = "; ".join(", ".join(names) + (f" in {target}" if target else "") for target, names in where.items())
    scheduled = env.get("left_running_scheduled_usd") or 0.0
    also = f" + scheduled ${scheduled:,.2f}/month (estimate)" if scheduled else ""
    return (f"removed from the app, still running until deleted by hand: ${env['left_running_usd']:,.2f}/month{also} "
            f"({stacks})")


def _line_change(line: dict, arrow: str) -> str:
    """``(<mode>): $base <arrow> $head (+$delta)`` of one delta line, then ``; ceiling $base <arrow> $head (+$delta)``
    for a compute line."""
    change = f"({line['mode']}): {_money(line['base_usd'])} {arrow} {_money(line['head_usd'])} ({_signed(line['delta_usd'])})"
    if "delta_ceiling_usd" in line:
        change += (f"; ceiling {_money(line['base_ceiling_usd'])} {arrow} {_money(line['head_ceiling_usd'])} "
                   f"({_signed(line['delta_ceiling_usd'])})")
    return change


def _delta_text(delta: list[dict]) -> list[str]:
    out = ["change against the base assembly:"]
    for env in delta:
        out.append(f"  {env['environment']}: {_env_change(env)} [{env['status']}]")
        left = _left_running(env)
        if left:
            out.append(f"    {left}")
        out += [f"    {line['status']:<8} {_line_name(line)} {_line_change(line, '->')}" for line in env["lines"]]
    return out


def render_markdown(
    report: list[EnvironmentFloor], *, assembly: str, hours: float, delta: Optional[list[dict]] = None
) -> str:
    """Markdown for a pull-request comment: the change per environment first, then the summary table."""
    out = ["### Always-on cost floor", ""]
    if delta is not None:
        for env in delta:
            out.append(f"- **{env['environment']}**: {_env_change(env)}")
            left = _left_running(env)
            if left:
                out.append(f"  - :warning: {left}")
            out += [f"  - {line['status']} `{_line_name(line)}` {_line_change(line, '→')}" for line in env["lines"]]
        out.append("")
    out += [
        "| environment | region | compute $/month | before approval | fixed $/month | total $/month "
        "| ceiling $/month | scheduled $/month (estimate) | with schedules |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for env in report:
        out.append(
            f"| {env.environment} | {env.region or '?'} | {_money(env.compute_usd)} | "
            f"{_money(env.compute_before_approval_usd)} | {_money(env.fixed_usd)} | {_money(env.total_usd)} | "
            f"{_money(env.ceiling_usd)} | {_money(env.scheduled_usd)} | {_money(env.total_with_schedules_usd)} |"
        )
    for env in report:
        out += ["", f"<details><summary>{env.environment} ({_region(env)}): lines</summary>", ""]
        out += ["| model / item | mode | compute $/month | ceiling $/month | fixed $/month | scheduled $/month | basis |",
                "|---|---|--:|--:|--:|--:|---|"]
        out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in _line_cells(line)) + " |" for line in env.lines]
        out += ["", "</details>"]
    out += [""] + [f"- {n}" for n in _notes(report, hours)]
    return "\n".join(out) + "\n"


def to_json(
    report: list[EnvironmentFloor], *, assembly: str, hours: float, delta: Optional[list[dict]] = None
) -> dict:
    """The report as plain JSON data (schema_version 3): amounts are USD per month, null when unknown; ``total_usd``
    is the always-on floor (compute + fixed), ``total_with_schedules_usd`` adds the scheduled estimate."""
    assumed = _assumptions(report)
    return {
        "schema_version": JSON_SCHEMA_VERSION,
        "assembly": assembly,
        "hours_per_month": hours,
        "prices": {
            "instances": INSTANCE_PRICE_SOURCE,
            **{key: asdict(price) for key, price in PRICES.items()},
            "free_dashboards_per_account": FREE_DASHBOARDS_PER_ACCOUNT,
        },
        "scheduled_assumptions": {"minutes_per_run": assumed.minutes_per_run, "crawler_dpus": assumed.crawler_dpus},
        "environments": [
            {
                "environment": env.environment,
                "region": env.region,
                "compute_usd": round(env.compute_usd, 2),
                "compute_before_approval_usd": round(env.compute_before_approval_usd, 2),
                "fixed_usd": round(env.fixed_usd, 2),
                "fixed_before_approval_usd": round(env.fixed_before_approval_usd, 2),
                "total_usd": round(env.total_usd, 2),
                "scheduled_usd": round(env.scheduled_usd, 2),
                "total_with_schedules_usd": round(env.total_with_schedules_usd, 2),
                "compute_ceiling_usd": round(env.compute_ceiling_usd, 2),
                "ceiling_usd": round(env.ceiling_usd, 2),
                "unknown_prices": env.unknown_prices,
                "unknown_ceilings": env.unknown_ceilings,
                "warnings": list(env.warnings),
                "lines": [
                    {
                        **asdict(line),
                        "resources": list(line.resources),
                        "monthly_usd": None if line.monthly_usd is None else round(line.monthly_usd, 2),
                        "ceiling_usd": None if line.ceiling_usd is None else round(line.ceiling_usd, 2),
                    }
                    for line in env.lines
                ],
            }
            for env in report
        ],
        "notes": _notes(report, hours),
        "delta": delta,
    }
