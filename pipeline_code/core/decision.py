"""How a binary model turns a score into a decision: the threshold policy and the class weighting.

One definition for the configuration (``decision:`` and ``class_weight`` of a model), the model spec the
jobs receive and the training job that applies it. The default policy is ``fixed`` at 0.5, as a
probability model's natural cut; a rare event needs another one, because at 2 % positives almost no
score reaches 0.5 and the model flags nothing:

* ``fixed``: ``threshold`` (default 0.5);
* ``max_f_beta``: the threshold maximising F-beta on the validation set (``beta`` > 1 favours recall);
* ``target_recall`` / ``target_precision``: the highest threshold reaching recall ``target`` / the lowest
  reaching precision ``target`` on the validation set;
* ``min_expected_cost``: the threshold minimising ``false_positive_cost * FP + false_negative_cost * FN``.

The threshold is chosen by the training job on validation data (never the frozen test set, which
judges it) and stored in the model artefact, so evaluation, fairness, serving and monitoring all
decide with the same number. ``class_weight: balanced`` weights positives by negatives/positives in
training (XGBoost ``scale_pos_weight``); it sharpens ranking at the top for rare events but makes the
scores no longer calibrated probabilities, so it is off by default.

Standard library only: the configuration, the pipeline definition and every job import it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Mapping, Optional

POLICIES = ("fixed", "max_f_beta", "target_recall", "target_precision", "min_expected_cost")
CLASS_WEIGHTS = ("none", "balanced")
# Which optional field each policy reads; any other given field is a mistake, not silently ignored.
_FIELDS = {
    "fixed": ("threshold",),
    "max_f_beta": ("beta",),
    "target_recall": ("target",),
    "target_precision": ("target",),
    "min_expected_cost": ("false_positive_cost", "false_negative_cost"),
}
_OPTIONAL = ("threshold", "beta", "target", "false_positive_cost", "false_negative_cost")


class DecisionError(ValueError):
    """A decision policy that cannot be applied; ``problems`` holds one ``field: message`` line per mistake."""

    def __init__(self, problems: List[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class DecisionPolicy:
    """A validated threshold policy (see the module docstring); unused fields stay None."""

    policy: str = "fixed"
    threshold: Optional[float] = None
    beta: Optional[float] = None
    target: Optional[float] = None
    false_positive_cost: Optional[float] = None
    false_negative_cost: Optional[float] = None

    @property
    def fixed_threshold(self) -> float:
        return 0.5 if self.threshold is None else self.threshold

    def to_dict(self) -> Dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def describe(self) -> str:
        """One line for reports and the model card, e.g. ``max_f_beta (beta 2.0)``."""
        if self.policy == "fixed":
            return f"fixed threshold {self.fixed_threshold:g}"
        if self.policy == "max_f_beta":
            return f"maximum F-beta on validation data (beta {self.beta if self.beta is not None else 1.0:g})"
        if self.policy in ("target_recall", "target_precision"):
            return f"{self.policy.split('_')[1]} of at least {self.target:g} on validation data"
        return (f"minimum expected cost on validation data (false positive {self.false_positive_cost:g}, "
                f"false negative {self.false_negative_cost:g})")


def parse_decision(data: Optional[Mapping[str, Any]]) -> DecisionPolicy:
    """A :class:`DecisionPolicy` from its mapping (the config's ``decision:`` block); None is the default.

    Raises:
        DecisionError: an unknown policy or field, a field the policy does not read, a missing target,
            or a value out of range, one line each.
    """
    if data is None:
        return DecisionPolicy()
    if not isinstance(data, Mapping):
        raise DecisionError([f"decision: must be a mapping with 'policy', got {data!r}"])
    problems: List[str] = []
    policy = data.get("policy", "fixed")
    if policy not in POLICIES:
        raise DecisionError([f"decision.policy: {policy!r} is not a policy; allowed: {', '.join(POLICIES)}"])
    for key in data:
        if key != "policy" and key not in _OPTIONAL:
            problems.append(f"decision.{key}: unknown field; allowed: policy, {', '.join(_OPTIONAL)}")
        elif key != "policy" and key not in _FIELDS[policy]:
            problems.append(f"decision.{key}: not read by policy {policy!r} (it reads: {', '.join(_FIELDS[policy])})")
    values: Dict[str, Optional[float]] = {}
    for key in _OPTIONAL:
        value = data.get(key)
        if value is None or key not in _FIELDS[policy]:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(float(value)):
            problems.append(f"decision.{key}: must be a number, got {value!r}")
            continue
        low, high, shown = {"threshold": (0.0, 1.0, "in (0, 1)"), "target": (0.0, 1.0, "in (0, 1]"),
                            "beta": (0.0, 100.0, "in (0, 100]")}.get(key, (0.0, math.inf, "> 0"))
        number = float(value)
        inside = low < number <= high if key != "threshold" else low < number < high
        if not inside:
            problems.append(f"decision.{key}: must be {shown}, got {value!r}")
        values[key] = number
    if policy in ("target_recall", "target_precision") and "target" not in data:
        problems.append(f"decision.target: required by policy {policy!r}, e.g. target: 0.8")
    if problems:
        raise DecisionError(problems)
    if policy == "min_expected_cost":
        values.setdefault("false_positive_cost", 1.0)
        values.setdefault("false_negative_cost", 1.0)
    if policy == "max_f_beta":
        values.setdefault("beta", 1.0)
    return DecisionPolicy(policy=policy, **values)


def parse_class_weight(value: Any) -> str:
    """``none`` (default) or ``balanced``; DecisionError otherwise."""
    if value is None:
        return "none"
    if value not in CLASS_WEIGHTS:
        raise DecisionError([f"class_weight: {value!r} is not a class weighting; allowed: {', '.join(CLASS_WEIGHTS)}"])
    return str(value)
