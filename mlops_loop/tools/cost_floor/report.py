"""The floor of every environment of an assembly, and the change against another assembly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Optional

from ..cloud_assembly import SynthesizedStack, stacks
from .ceiling import with_ceilings
from .compute import batch_lines, endpoint_lines, scalable_targets
from .fixed import fixed_lines, fixed_units, required_endpoint_units
from .model import Budget, EnvironmentFloor, Line, NotACloudAssembly
from .scheduled import DEFAULT_ASSUMPTIONS, Assumptions, scheduled_lines, scheduled_units
from .template import Template, as_number


DEFAULT_HOURS_PER_MONTH = 730.0  # 365 * 24 / 12, the month AWS's own price examples use
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


def floor_report(
    outdir: str | Path,
    *,
    hours_per_month: float = DEFAULT_HOURS_PER_MONTH,
    assumptions: Assumptions = DEFAULT_ASSUMPTIONS,
) -> list[EnvironmentFloor]:
    """The always-on floor of every environment (stage) of the assembly at ``outdir``, in manifest
    order, with what its schedules run (an estimate under ``assumptions``, by default 10 minutes per SageMaker job
    or pipeline step and 1 DPU per crawl). By default a month is 730 hours. Raises NotACloudAssembly when ``outdir``
    is not one."""
    found = _load_stacks(Path(outdir))
    regions = _regions(found)
    by_stage: dict[str, list[Template]] = {}
    for stack in found:
        by_stage.setdefault(stack.stage, []).append(Template(stack))
    return [_environment_floor(stage, regions.get(stage), templates, hours_per_month, assumptions)
            for stage, templates in by_stage.items()]


def _environment_floor(stage: str, region: Optional[str], templates: list[Template], hours_per_month: float,
                       assumptions: Assumptions = DEFAULT_ASSUMPTIONS) -> EnvironmentFloor:
    """The floor of ``templates``: one environment's stacks (or some of them)."""
    env = EnvironmentFloor(environment=stage, region=region, templates=list(templates), hours_per_month=hours_per_month,
                           assumptions=assumptions)
    targets = scalable_targets(templates, env.warnings)
    compute = [line for tpl in templates for line in endpoint_lines(tpl, targets=targets, hours=hours_per_month)]
    compute += batch_lines(templates)
    compute.sort(key=lambda line: (line.label, line.mode, line.variant))
    compute = with_ceilings(compute, templates, hours_per_month)
    fixed, env.fixed_before_approval_usd = fixed_lines(
        [u for tpl in templates for u in fixed_units(tpl)] + required_endpoint_units(templates), hours_per_month
    )
    scheduled = scheduled_lines(scheduled_units(templates, hours_per_month, assumptions))
    env.lines = compute + fixed + scheduled
    env.compute_usd = sum((line.monthly_usd or 0.0 for line in compute), 0.0)
    env.compute_before_approval_usd = sum(
        (line.monthly_usd or 0.0 for line in compute if not line.once_deployed), 0.0
    )
    env.fixed_usd = sum((line.monthly_usd or 0.0 for line in fixed), 0.0)
    env.scheduled_usd = sum((line.monthly_usd or 0.0 for line in scheduled), 0.0)
    env.compute_ceiling_usd = sum((line.ceiling_usd or 0.0 for line in compute), 0.0)
    env.budgets = [b for tpl in templates for b in budgets_of(tpl)]
    return env


def budgets_of(tpl: Template) -> list[Budget]:
    """The AWS Budgets COST budgets of ``tpl`` with their monthly limit and ACTUAL notices (a FORECASTED notice reads
    AWS's forecast, not the month so far, so the floor alone does not decide it)."""
    found = []
    for logical_id, resource in tpl.resources.items():
        props = resource.get("Properties") or {}
        data = props.get("Budget") or {}
        if resource.get("Type") != "AWS::Budgets::Budget" or tpl.value(data.get("BudgetType")) != "COST":
            continue
        amount = as_number(tpl.value((data.get("BudgetLimit") or {}).get("Amount")))
        monthly = amount if tpl.value(data.get("TimeUnit")) == "MONTHLY" else None
        notices = []
        for entry in props.get("NotificationsWithSubscribers") or []:
            notice = (entry or {}).get("Notification") or {} if isinstance(entry, dict) else {}
            threshold = as_number(tpl.value(notice.get("Threshold")))
            if tpl.value(notice.get("NotificationType")) != "ACTUAL" or threshold is None:
                continue
            if str(tpl.value(notice.get("ThresholdType")) or "PERCENTAGE") == "ABSOLUTE_VALUE":
                notices.append((f"{threshold:,.2f} $", threshold))
            elif monthly is not None:
                notices.append((f"{threshold:g} %", monthly * threshold / 100))
        found.append(Budget(tpl.name, logical_id, monthly, tuple(sorted(notices, key=lambda n: n[1]))))
    return found


def _split_left_running(
    base: EnvironmentFloor, deployed: set[tuple[str, str]]
) -> tuple[EnvironmentFloor, Optional[EnvironmentFloor]]:
    """(the floor of ``base``'s stacks the head still deploys, that of the ones it does not, or None when none).

    ``cdk deploy`` updates a stack of the same target and name and never deletes one the app no longer has:
    a stack whose environment moved (region, account, project) or was renamed or removed keeps running, and
    costing, until deleted by hand.
    """
    left = [t for t in base.templates if t.deploys_as not in deployed]
    if not left:
        return base, None
    hours = base.hours_per_month or DEFAULT_HOURS_PER_MONTH
    assumptions = base.assumptions or DEFAULT_ASSUMPTIONS
    kept = [t for t in base.templates if t.deploys_as in deployed]
    return (_environment_floor(base.environment, base.region, kept, hours, assumptions),
            _environment_floor(base.environment, base.region, left, hours, assumptions))


def compare(head: list[EnvironmentFloor], base: list[EnvironmentFloor]) -> list[dict]:
    """Per environment (head's order, then environments only in base): the change of each total (the ceiling's too)
    and of every line whose monthly cost or ceiling changed. A line whose price is unknown on either side has a
    delta of None; so has a compute line's ceiling.

    The change is against the base stacks the head still deploys. A base stack it does not (its environment
    moved to another region or account, the project or the environment was renamed, or the environment was
    removed) keeps running: its floor is not subtracted but reported as ``left_running_usd`` (its schedules'
    estimate as ``left_running_scheduled_usd``, its stacks in ``left_running_stacks``), so a moved environment shows the new stacks' floor as a rise, not $0. Status:
    ``new``, ``removed`` (from the app), ``moved`` (every base stack left running, the head deploys new ones),
    ``changed`` or ``unchanged``."""
    heads, bases = {e.environment: e for e in head}, {e.environment: e for e in base}
    deployed = {t.deploys_as for e in head for t in e.templates}
    out = []
    for name in [*heads, *(n for n in bases if n not in heads)]:
        h, b = heads.get(name), bases.get(name)
        left: Optional[EnvironmentFloor] = None
        if b is not None:
            b, left = _split_left_running(b, deployed)
        h_lines = _by_key(h.lines if h else [])
        b_lines = _by_key(b.lines if b else [])
        changed = []
        for key in [*h_lines, *(k for k in b_lines if k not in h_lines)]:
            # A line that appears or disappears is a change even at $0 (a model moved to serverless).
            if key in h_lines and key in b_lines and h_lines[key] == b_lines[key]:
                continue
            new, old = h_lines.get(key, _ABSENT), b_lines.get(key, _ABSENT)
            unknown = new[1] or old[1]
            entry = {
                "category": key[0],
                "label": key[1],
                "mode": key[2],
                "variant": key[3],
                "status": "added" if key not in b_lines else "removed" if key not in h_lines else "changed",
                "base_usd": None if old[1] else old[0],
                "head_usd": None if new[1] else new[0],
                "delta_usd": None if unknown else round(new[0] - old[0], 2),
            }
            if key[0] == "compute":
                # A raised MaxCapacity or MaxConcurrency changes no floor: the ceiling is where it shows.
                entry["base_ceiling_usd"] = None if old[3] else old[2]
                entry["head_ceiling_usd"] = None if new[3] else new[2]
                entry["delta_ceiling_usd"] = None if old[3] or new[3] else round(new[2] - old[2], 2)
            changed.append(entry)

        def total(env: Optional[EnvironmentFloor], attr: str) -> float:
            return getattr(env, attr) if env else 0.0

        delta = {
            attr: round(total(h, attr) - total(b, attr), 2)
            for attr in ("compute_usd", "compute_before_approval_usd", "fixed_usd", "total_usd", "scheduled_usd",
                         "total_with_schedules_usd", "ceiling_usd")
        }
        if b is None or h is None:
            status = "new" if b is None else "removed"
        elif left is not None and not b.templates:
            status = "moved"
        else:
            status = "changed" if changed or any(delta.values()) or left is not None else "unchanged"
        entry = {"environment": name, "status": status, **{f"delta_{k}": v for k, v in delta.items()}, "lines": changed}
        if left is not None:
            entry["left_running_usd"] = round(left.total_usd, 2)
            entry["left_running_scheduled_usd"] = round(left.scheduled_usd, 2)
            entry["left_running_stacks"] = [{"stack": t.name, "environment": t.stack.environment} for t in left.templates]
        out.append(entry)
    return out


# A line one side does not have: $0, known, ceiling $0, known.
_ABSENT = (0.0, False, 0.0, False)


def _by_key(lines: Iterable[Line]) -> dict[tuple, tuple[float, bool, float, bool]]:
    """Line key -> (known monthly USD summed, any price unknown, known ceiling USD summed, any compute line's ceiling
    unknown)."""
    out: dict[tuple, tuple[float, bool, float, bool]] = {}
    for line in lines:
        usd, unknown, ceiling, ceiling_unknown = out.get(line.key, _ABSENT)
        out[line.key] = (round(usd + (line.monthly_usd or 0.0), 2), unknown or line.monthly_usd is None,
                         round(ceiling + (line.ceiling_usd or 0.0), 2),
                         ceiling_unknown or (line.category == "compute" and line.ceiling_usd is None))
    return out
