"""The promotion gate's thresholds: one type, one table of names and bounds, for jobs and infrastructure.

The configuration (``gate:`` of an environment) is validated against policy bounds and converted to
:class:`GateThresholds`; the pipeline definition makes one pipeline parameter per :data:`THRESHOLDS`
row; the evaluate job takes one flag per row; :func:`pipeline_code.training.gate.decide` checks them.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Mapping, Optional


class SpecError(ValueError):
    """The model specification or a threshold is invalid (the message lists every problem)."""


DEFAULT_MIN_SLICE_ROWS = 50
DEFAULT_MIN_GROUP_ROWS = 100
DEFAULT_MIN_SLICE_POSITIVES = 10
DEFAULT_MIN_PREDICTED_POSITIVES = 10
# The group of the sensitive attribute that holds its nulls: reported, never compared (it is not a group of people).
MISSING_GROUP = "(missing)"
# The evidence minimums: (field, lowest value, what it means). Counts, not thresholds on a metric.
EVIDENCE = (
    ("min_slice_rows", 1, "slices with fewer test rows are reported, not gated"),
    ("min_group_rows", 1, "sensitive-attribute groups with fewer test rows are reported, not used for the fairness metrics"),
    ("min_slice_positives", 1, "slices with fewer positives (or negatives) in the test set are reported, not gated"),
    ("min_predicted_positives", 0, "fewer predicted positives across the sensitive groups fail the fairness gate as "
                                   "insufficient evidence (0: never)"),
)


@dataclass(frozen=True)
class Threshold:
    """One gate threshold: its field, the range the gate code can work with, and what it means.

    The field name is also its YAML key, its job flag (``--min-auc``) and, in PascalCase, its
    pipeline parameter (``MinAuc``). The configuration may bound a threshold tighter (a policy
    bound, such as an AUC of at least 0.5); these are the bounds outside which the gate is meaningless.
    """

    field: str
    low: float
    high: float
    help: str
    # Which way the gate gets stricter: a higher minimum, a lower maximum.
    higher_is_stricter: bool

    @property
    def flag(self) -> str:
        return "--" + self.field.replace("_", "-")

    def looser(self, value: float, than: float) -> bool:
        """Whether ``value`` lets more challengers through than ``than``."""
        return value < than if self.higher_is_stricter else value > than


# Every threshold the gate checks, in the order they are passed and shown. The pipeline parameter, the evaluate flag,
# the gate policy and its loosening check follow this table; a new row also needs its GateThresholds field, its
# GateConfig field (same order, policy bounds), its check in gate.decide and the docs: docs/development.md,
# "Adding a gate check" lists every place and the test that names each one you miss.
THRESHOLDS = (
    Threshold("min_auc", 0.0, 1.0, "minimum challenger AUC on the frozen test set", True),
    # In the primary metric's units: RMSE and MAE margins are the target's, as large as its scale.
    Threshold("challenger_margin", -1.0, math.inf, "challenger's primary metric must beat the champion's by this much", True),
    Threshold("max_slice_regression", 0.0, math.inf, "largest allowed drop of the primary metric on any gated slice", False),
    Threshold("max_demographic_parity_difference", 0.0, 1.0,
              "largest allowed positive-rate gap across sensitive groups (regression: of relative bias)", False),
    Threshold("min_disparate_impact", 0.0, 1.0, "smallest allowed min/max positive-rate ratio (regression: of relative error)",
              True),
    # Classifiers only; 1 (NO_CALIBRATION_LIMIT, the default) is no limit: an ECE is at most 1, and no check is made.
    Threshold("max_calibration_error", 0.0, 1.0, "largest allowed expected calibration error of the challenger's "
              "probabilities (classifiers; 1: no limit)", False),
    # A share of a class's test rows whatever the primary metric: its own switch, so that loosening the slices (in the
    # primary metric's units) does not loosen it.
    Threshold("max_class_recall_drop", 0.0, 1.0, "largest allowed drop of a class's recall against the champion's, "
              "beyond the noise of its test rows (multiclass)", False),
)
# max_calibration_error at this value is no limit: the gate makes no calibration check.
NO_CALIBRATION_LIMIT = 1.0
# max_class_recall_drop's default: gate.max_slice_regression's, the tolerance class_recall took before it had its own
# (a version judged before it existed was judged on it unless the slices' was changed).
DEFAULT_MAX_CLASS_RECALL_DROP = 0.02


def parse_policy(text: str) -> Dict[str, float]:
    """The gate policy of :meth:`GateThresholds.policy_arg`: a JSON object of :data:`THRESHOLDS` fields to finite
    numbers; ValueError naming what it expected otherwise."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    known = {t.field for t in THRESHOLDS}
    if not isinstance(value, dict) or not value or any(k not in known for k in value) or any(
            isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) for v in value.values()):
        raise ValueError(f"expected a JSON object of numbers keyed by {', '.join(sorted(known))}, got {text!r}")
    return {k: float(v) for k, v in value.items()}


def loosened(thresholds: "GateThresholds", policy: Mapping[str, float]) -> List[str]:
    """What in ``thresholds`` is looser than the environment's configured gate ``policy`` (field -> value), one
    sentence each (empty: nothing). A run's pipeline parameters may tighten the gate, never loosen it."""
    out = []
    for t in THRESHOLDS:
        if t.field in policy and t.looser(float(getattr(thresholds, t.field)), float(policy[t.field])):
            out.append(f"{t.field} {getattr(thresholds, t.field):g} is looser than the environment's configured "
                       f"{float(policy[t.field]):g}")
    return out



@dataclass(frozen=True)
class GateThresholds:
    """The promotion gate's thresholds (``gate:`` block of an environment in the YAML).

    ``min_slice_rows``: slices with fewer test rows are reported but not gated - their
    AUC is too noisy to block a model on. ``min_group_rows``: the same for the groups of
    the sensitive attribute in the fairness metrics (a positive *rate* of a small group is
    noisier than an AUC, hence the larger default). ``min_slice_positives``: a slice also needs
    that many positives and negatives (a rare event's slice AUC rests on its few positives).
    ``min_predicted_positives``: a model that flags fewer test rows than this across the sensitive
    groups fails the fairness gate as *insufficient evidence*: with (almost) nothing flagged, equal
    positive rates are not fairness, and the parity metrics would read as perfect.
    """

    min_auc: float
    challenger_margin: float
    max_slice_regression: float
    max_demographic_parity_difference: float
    min_disparate_impact: float
    max_calibration_error: float = NO_CALIBRATION_LIMIT
    max_class_recall_drop: float = DEFAULT_MAX_CLASS_RECALL_DROP
    min_slice_rows: int = DEFAULT_MIN_SLICE_ROWS
    min_group_rows: int = DEFAULT_MIN_GROUP_ROWS
    min_slice_positives: int = DEFAULT_MIN_SLICE_POSITIVES
    min_predicted_positives: int = DEFAULT_MIN_PREDICTED_POSITIVES

    def __post_init__(self) -> None:
        problems = []
        for threshold in THRESHOLDS:
            name, lo, hi = threshold.field, threshold.low, threshold.high
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
                problems.append(f"{name} must be a finite number, got {value!r}")
            elif not lo <= float(value) <= hi:
                problems.append(f"{name} must be in [{lo}, {hi}], got {value!r}")
        for name, low, _ in EVIDENCE:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                problems.append(f"{name} must be an integer >= {low}, got {value!r}")
        if problems:
            raise SpecError("invalid gate thresholds: " + "; ".join(problems))

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> "GateThresholds":
        """From the YAML ``gate:`` block (extra keys ignored, missing keys are an error)."""
        names = [t.field for t in THRESHOLDS]
        missing = [n for n in names if n not in data]
        if missing:
            raise SpecError(f"gate thresholds: missing {missing}")
        kwargs: Dict[str, Any] = {n: float(data[n]) for n in names}
        for name, _, _ in EVIDENCE:
            if name in data:
                kwargs[name] = int(data[name])
        return cls(**kwargs)

    @classmethod
    def from_args(cls, args: Any) -> "GateThresholds":
        """From parsed job arguments (one attribute per field)."""
        values = {t.field: getattr(args, t.field) for t in THRESHOLDS}
        return cls(**values, **{name: getattr(args, name) for name, _, _ in EVIDENCE})

    def evidence_args(self) -> List[str]:
        """The evidence minimums as job flags (``--min-slice-rows 50 ...``)."""
        return [part for name, _, _ in EVIDENCE for part in (evidence_flag(name), str(int(getattr(self, name))))]

    def policy_arg(self) -> str:
        """The thresholds as evaluate's ``--gate-policy`` JSON (the environment's configured gate; :func:`parse_policy`)."""
        return json.dumps({t.field: float(getattr(self, t.field)) for t in THRESHOLDS}, sort_keys=True, separators=(",", ":"))

    def to_args(self) -> List[str]:
        """The CLI form (inverse of :meth:`from_args`)."""
        return [part for t in THRESHOLDS for part in (t.flag, repr(float(getattr(self, t.field))))] + self.evidence_args()


def evidence_flag(name: str) -> str:
    """``min_slice_rows`` -> ``--min-slice-rows``."""
    return "--" + name.replace("_", "-")


# Defaults = the ``defaults.gate`` block of config/mlops-loop.yaml; the pipeline passes
# the environment's values explicitly (as pipeline parameters).
DEFAULT_GATE = GateThresholds(
    min_auc=0.70,
    challenger_margin=0.005,
    max_slice_regression=0.02,
    max_demographic_parity_difference=0.10,
    min_disparate_impact=0.80,
)


def eligible_group(label: str, rows: int, min_group_rows: int) -> bool:
    """Whether a sensitive-attribute group counts for the disparity numbers: not ``(missing)``, enough rows."""
    return bool(label != MISSING_GROUP and rows >= min_group_rows)


def fairness_shortfall(sizes: Mapping[str, int], min_group_rows: int) -> Optional[str]:
    """Why a test set cannot show fairness: fewer than two groups of the sensitive attribute have ``min_group_rows``
    rows (``sizes``: rows per group; :data:`MISSING_GROUP` never counts). None when two or more do.

    The gate rejects a challenger on such a set as insufficient evidence, and prepare refuses to freeze one."""
    groups = {str(group): int(rows) for group, rows in sizes.items() if group != MISSING_GROUP}
    eligible = sum(eligible_group(group, rows, min_group_rows) for group, rows in groups.items())
    if eligible >= 2:
        return None
    ordered = sorted(groups.items(), key=lambda item: (-item[1], item[0]))
    shown = ", ".join(f"{group}: {rows}" for group, rows in ordered[:6])
    if len(ordered) > 6:
        shown += f" and {len(ordered) - 6} more"
    return (f"{eligible} {'group has' if eligible == 1 else 'groups have'} >= {min_group_rows} rows "
            f"({shown or 'no values'}), and a comparison takes two")
