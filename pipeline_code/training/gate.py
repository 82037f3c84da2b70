"""The promotion gate as code: may this challenger be registered as a candidate champion?

:func:`decide` reads an evaluation report (the ``evaluation.json`` written by
:mod:`pipeline_code.training.evaluate`) and the environment's thresholds:

1. ``min_auc``: challenger AUC >= ``min_auc`` (always, with or without a champion);
2. ``challenger_margin`` (only with a champion): challenger AUC >= champion AUC + margin;
3. ``slice_regression`` (only with a champion): for every slice value with at least
   ``min_slice_rows`` test rows, ``min_slice_positives`` positives and as many negatives for both
   models, challenger slice AUC >= champion slice AUC - ``max_slice_regression``; other slices are
   reported, not gated (noted);
4. ``fairness_evidence``: the challenger flags at least ``min_predicted_positives`` test rows in the
   compared groups of the sensitive attribute. With (almost) nothing flagged every group's positive
   rate is 0 and the parity metrics read as perfect; that is insufficient evidence, never a pass;
5. ``demographic_parity``: challenger demographic parity difference <= maximum;
6. ``disparate_impact``: challenger disparate impact >= minimum.

A required metric that is missing, null or NaN raises :class:`GateInputError` naming it:
an incomplete report is never a pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional

from pipeline_code.training.spec import GateThresholds


class GateInputError(ValueError):
    """The report lacks a metric the gate needs (the message names its key path)."""


@dataclass
class GateDecision:
    passed: bool
    reasons: List[str]
    checks: List[Dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> Dict[str, Any]:
        return {"passed": self.passed, "reasons": list(self.reasons), "checks": list(self.checks)}


def _lookup(report: Mapping[str, Any], path: str, *, allow_null: bool = False) -> Any:
    node: Any = report
    for key in path.split("."):
        if not isinstance(node, Mapping) or key not in node:
            raise GateInputError(f"evaluation report lacks required metric {path!r} (no key {key!r})")
        node = node[key]
    if node is None and allow_null:
        return None
    if node is None:
        raise GateInputError(f"evaluation report metric {path!r} is null (not computable on this test set)")
    return node


def _number(report: Mapping[str, Any], path: str) -> float:
    value = _lookup(report, path)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise GateInputError(f"evaluation report metric {path!r} must be a number, got {value!r}")
    if math.isnan(float(value)):
        raise GateInputError(f"evaluation report metric {path!r} is NaN")
    return float(value)


def _check(name: str, passed: bool, value: float, threshold: float, message: str, **extra: Any) -> Dict[str, Any]:
    entry = {"name": name, "passed": bool(passed), "value": value, "threshold": threshold, "message": message}
    entry.update(extra)
    return entry


def decide(report: Mapping[str, Any], thresholds: GateThresholds) -> GateDecision:
    """Apply the gate to ``report``; see the module docstring for the rules.

    Raises:
        GateInputError: a required metric is missing/null/NaN (never a silent pass).
    """
    t = thresholds
    checks: List[Dict[str, Any]] = []
    notes: List[str] = []

    auc = _number(report, "challenger.metrics.auc")
    champion = _lookup(report, "champion", allow_null=True)
    checks.append(
        _check("min_auc", auc >= t.min_auc, auc, t.min_auc, f"challenger AUC {auc:.4f} {'>=' if auc >= t.min_auc else '<'} minimum {t.min_auc:.4f}")
    )
    if champion is not None:
        champion_auc = _number(report, "champion.metrics.auc")
        required = champion_auc + t.challenger_margin
        ok = auc >= required
        checks.append(
            _check(
                "challenger_margin",
                ok,
                auc,
                required,
                f"challenger AUC {auc:.4f} {'>=' if ok else '<'} champion AUC {champion_auc:.4f} + margin "
                f"{t.challenger_margin:.4f} = {required:.4f}",
                champion_value=champion_auc,
            )
        )
        checks.extend(_slice_checks(report, t, notes))
    dpd = _number(report, "challenger.fairness.demographic_parity_difference")
    di = _number(report, "challenger.fairness.disparate_impact")
    attribute = report.get("challenger", {}).get("fairness", {}).get("attribute", "sensitive attribute")
    checks.append(_evidence_check(report, attribute, t))
    checks.append(
        _check(
            "demographic_parity",
            dpd <= t.max_demographic_parity_difference,
            dpd,
            t.max_demographic_parity_difference,
            f"demographic parity difference across {attribute} {dpd:.4f} "
            f"{'<=' if dpd <= t.max_demographic_parity_difference else '>'} maximum {t.max_demographic_parity_difference:.4f}",
        )
    )
    checks.append(
        _check(
            "disparate_impact",
            di >= t.min_disparate_impact,
            di,
            t.min_disparate_impact,
            f"disparate impact across {attribute} {di:.4f} {'>=' if di >= t.min_disparate_impact else '<'} "
            f"minimum {t.min_disparate_impact:.4f}",
        )
    )

    failed = [c for c in checks if not c["passed"]]
    if failed:
        reasons = [c["message"] for c in failed]
    else:
        context = "no champion (first model)" if champion is None else "beats the champion"
        reasons = [f"passed all {len(checks)} checks; {context}"]
    return GateDecision(passed=not failed, reasons=reasons + notes, checks=checks)


def _evidence_check(report: Mapping[str, Any], attribute: str, t: GateThresholds) -> Dict[str, Any]:
    fairness = _lookup(report, "challenger.fairness")
    groups = _lookup(report, "challenger.fairness.groups")
    eligible = _lookup(report, "challenger.fairness.eligible_groups")
    flagged = sum(int(groups[g]["predicted_positives"]) for g in eligible)
    threshold = float(fairness.get("threshold", 0.5))
    ok = flagged >= t.min_predicted_positives
    if ok:
        message = (f"fairness across {attribute} judged on {flagged} predicted positives at threshold {threshold:.4f} "
                   f"(>= {t.min_predicted_positives})")
    else:
        message = (f"fairness across {attribute} cannot be judged: the challenger flags {flagged} test rows in the "
                   f"compared groups at threshold {threshold:.4f}, fewer than {t.min_predicted_positives} (insufficient "
                   "evidence, not a pass); give the model a decision policy (e.g. decision: {policy: max_f_beta}) or "
                   "lower gate.min_predicted_positives")
    return _check("fairness_evidence", ok, float(flagged), float(t.min_predicted_positives), message)


def _slice_checks(report: Mapping[str, Any], t: GateThresholds, notes: List[str]) -> List[Dict[str, Any]]:
    challenger_slices = _lookup(report, "challenger.slices")
    champion_slices = _lookup(report, "champion.slices")
    checks = []
    skipped = 0
    for column in sorted(challenger_slices):
        entry = challenger_slices[column]
        if not isinstance(entry, Mapping) or not isinstance(entry.get("values"), Mapping):
            raise GateInputError(f"evaluation report lacks required metric 'challenger.slices.{column}.values'")
        values = entry["values"]
        champion_values: Optional[Mapping[str, Any]] = (champion_slices.get(column) or {}).get("values")
        if champion_values is None:
            notes.append(f"slice column {column!r} has no champion metrics; not gated")
            continue
        for value in sorted(values):
            ours, theirs = values[value], champion_values.get(value)
            if theirs is None:
                notes.append(f"slice {column}={value} has no champion metrics; not gated")
                continue
            rows = min(int(ours.get("rows", 0)), int(theirs.get("rows", 0)))
            # A slice AUC rests on its rarer class: count positives and negatives, not just rows.
            rarer = min(_rarer_class(ours), _rarer_class(theirs))
            if rows < t.min_slice_rows or rarer < t.min_slice_positives or ours.get("auc") is None or theirs.get("auc") is None:
                skipped += 1
                continue
            drop = float(theirs["auc"]) - float(ours["auc"])
            ok = drop <= t.max_slice_regression
            checks.append(
                _check(
                    "slice_regression",
                    ok,
                    float(ours["auc"]),
                    float(theirs["auc"]) - t.max_slice_regression,
                    f"slice {column}={value} ({rows} rows): challenger AUC {float(ours['auc']):.4f} vs champion "
                    f"{float(theirs['auc']):.4f} (drop {drop:.4f} {'<=' if ok else '>'} allowed {t.max_slice_regression:.4f})",
                    slice=f"{column}={value}",
                    rows=rows,
                    champion_value=float(theirs["auc"]),
                )
            )
    if skipped:
        notes.append(f"{skipped} slice value(s) with < {t.min_slice_rows} rows or < {t.min_slice_positives} positives or "
                     "negatives were reported, not gated")
    return checks


def _rarer_class(entry: Mapping[str, Any]) -> int:
    """Positives or negatives of a slice, whichever are fewer (a report without counts: the rows)."""
    rows = int(entry.get("rows", 0))
    positives = entry.get("positives")
    return rows if positives is None else min(int(positives), rows - int(positives))
