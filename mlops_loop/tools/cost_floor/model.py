"""The floor report's data model: one line per priced item, one floor per environment."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional


class NotACloudAssembly(ValueError):
    """The directory given is not a synthesized cloud assembly (or holds no stacks)."""


@dataclass(frozen=True)
class Line:
    """One line of an environment's floor: a model's endpoint variant, a batch model, a fixed item, or what a kind of
    scheduled job costs a month (an estimate)."""

    category: str  # "compute", "fixed" or "scheduled"
    label: str  # the model (compute) or the item (fixed)
    mode: str  # realtime | serverless | async | batch | <metadata mode> | fixed | scheduled
    basis: str  # how the number was obtained, for a reviewer
    monthly_usd: Optional[float]  # None: price unknown (basis says why)
    stack: str
    resources: tuple[str, ...]
    variant: str = ""
    # The CloudFormation condition the resource exists under, when that condition is false (or not
    # decidable) with the parameter defaults: it costs this much once a version is deployed.
    once_deployed: Optional[str] = None
    # A compute line's monthly cost at the maximum its config allows (cost_floor.ceiling; None: unknown, or not a
    # compute line) and how it was obtained.
    ceiling_usd: Optional[float] = None
    ceiling_basis: str = ""
    # The team whose model the line is (the endpoint's mlops-loop:team tag: models.<model>.owner), None without.
    team: Optional[str] = None

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.category, self.label, self.mode, self.variant)


@dataclass(frozen=True)
class Budget:
    """An AWS Budgets COST budget of the environment's templates, as its notes judge it against the floor."""

    stack: str
    logical_id: str
    # The monthly limit (USD); None when it is not a literal or the budget's period is not a month.
    monthly_usd: Optional[float]
    # Its ACTUAL notices: (how the config wrote it, e.g. "60 %" or "2.00 $", the threshold in USD), lowest first.
    actual_notices: tuple[tuple[str, float], ...] = ()


@dataclass
class EnvironmentFloor:
    environment: str
    region: Optional[str]
    lines: list[Line] = field(default_factory=list)
    compute_usd: float = 0.0
    compute_before_approval_usd: float = 0.0
    fixed_usd: float = 0.0
    fixed_before_approval_usd: float = 0.0
    # What the environment's schedules run a month (Glue, SageMaker jobs and pipelines): an estimate, kept out of
    # total_usd (the always-on floor) and added in total_with_schedules_usd.
    scheduled_usd: float = 0.0
    # Every endpoint at its maximum (cost_floor.ceiling), unknown ceilings left out.
    compute_ceiling_usd: float = 0.0
    warnings: list[str] = field(default_factory=list)
    # The AWS Budgets cost budgets of its templates (none: nobody is told when a month goes wrong).
    budgets: list[Budget] = field(default_factory=list)
    # The templates this floor was read from (cost_floor.template.Template) and the month it assumed: comparing
    # two assemblies prices the base stacks the head no longer deploys (left running) apart from the others.
    templates: list[Any] = field(default_factory=list, repr=False, compare=False)
    hours_per_month: Optional[float] = field(default=None, repr=False, compare=False)
    assumptions: Any = field(default=None, repr=False, compare=False)  # cost_floor.scheduled.Assumptions

    @property
    def total_usd(self) -> float:
        """The always-on floor: compute + fixed (schedules not included)."""
        return self.compute_usd + self.fixed_usd

    @property
    def ceiling_usd(self) -> float:
        """The always-on items at their maximum: the compute ceiling + fixed (schedules not included)."""
        return self.compute_ceiling_usd + self.fixed_usd

    @property
    def unknown_ceilings(self) -> int:
        return sum(1 for line in self.lines if line.category == "compute" and line.ceiling_usd is None)

    @property
    def total_with_schedules_usd(self) -> float:
        """The floor plus the scheduled estimate."""
        return self.total_usd + self.scheduled_usd

    @property
    def unknown_prices(self) -> int:
        return sum(1 for line in self.lines if line.monthly_usd is None)
