"""A SageMaker Model Card for a registered model version, filled from its evaluation report.

:func:`build_model_card` turns the ``evaluation.json`` written by
:mod:`pipeline_code.training.evaluate` (plus the model's configuration) into the content of a
SageMaker Model Card (the model card JSON schema, snake_case sections)::

    model_overview          what the model is, its artifact
    intended_uses           purpose (the model's description in the config), intended use, risk rating
    training_details        rounds, hyperparameters, validation AUC
    evaluation_details      metrics vs the champion, confusion matrix, ROC curve, gate checks,
                            fairness per metric with its threshold, positive rate per group, slices
    additional_information  limitations (failed gate checks, small slices and groups),
                            ethical considerations (fairness), custom details
    model_package_details   the registered version (when its ARN is given)

:func:`render_markdown` renders the same content for people. Only the sections and field names
of the documented schema are used; every string respects the schema's length limits.

As a job (the step after Register)::

    python -m pipeline_code.training.model_card --evaluation-dir DIR --model-spec FILE \\
        --model-package-arn ARN [--output-dir DIR] [--create] [--description TEXT] [--region R]

writes ``model_card.json`` (the content) and ``model_card.md`` to ``--output-dir``. With
``--create`` it also creates the SageMaker model card ``<group>-v<version>`` (status Draft,
linked to the package): a card that exists already is updated when its content differs
(back to Draft: changed content needs a new review) and left alone when it is identical.
Exit status: 0 done; 1 AWS error or an archived card; 2 bad arguments or input.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from pipeline_code.core.contract import EVALUATION_FILE, PACKAGE_ARN
from pipeline_code.core.markdown import md_text
from pipeline_code.training.spec import ModelSpec, SpecError, parse_model_spec

PROG = "python -m pipeline_code.training.model_card"
CARD_JSON = "model_card.json"
CARD_MARKDOWN = "model_card.md"
DEFAULT_OUTPUT_DIR = "/opt/ml/processing/output/model_card"
CARD_STATUS = "Draft"
_HEADLINE = ("auc", "log_loss", "brier", "accuracy", "precision", "recall", "f1", "positive_rate", "prevalence")
_FAIRNESS = (
    # (metric, gate check name, threshold key in gate.thresholds, comparison)
    ("demographic_parity_difference", "demographic_parity", "max_demographic_parity_difference", "<="),
    ("disparate_impact", "disparate_impact", "min_disparate_impact", ">="),
    ("equal_opportunity_difference", None, None, None),
)
# Schema limits (model card JSON schema): text fields and metric names/groups.
_MAX = {
    "description": 1024,
    "long": 2048,
    "observation": 2096,
    "notes": 1024,
    "name": 255,
    "group": 63,
    "value": 63,
    "custom": 1024,
}


class ModelCardError(ValueError):
    """Bad input for a model card (the message names the field and the fix)."""


# --------------------------------------------------------------------------------------
# Content
# --------------------------------------------------------------------------------------
def _clip(text: str, limit: int) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(float(value)) or math.isinf(float(value)):
        return None
    return float(value)


def _f(value: Any, digits: int = 4) -> str:
    """``0.29``, ``0.80``, ``0.999``: up to ``digits`` decimals, at least two (no rounding 0.999 to 1.00)."""
    number = _number(value)
    if number is None:
        return "n/a"
    text = f"{number:.{digits}f}"
    whole, _, decimals = text.partition(".")
    decimals = decimals.rstrip("0")
    return f"{whole}.{decimals.ljust(2, '0')}"


def _metric(name: str, value: Any, notes: Optional[str] = None) -> Optional[Dict[str, Any]]:
    """A simple metric, or None when the value is not a finite number/boolean (the schema needs one)."""
    entry: Dict[str, Any] = {"name": _clip(name, _MAX["name"])}
    if isinstance(value, bool):
        entry.update(type="boolean", value=value)
    else:
        number = _number(value)
        if number is None:
            return None
        entry.update(type="number", value=number)
    if notes:
        entry["notes"] = _clip(notes, _MAX["notes"])
    return entry


def _group(name: str, metrics: Sequence[Optional[Dict[str, Any]]]) -> Optional[Dict[str, Any]]:
    data = [m for m in metrics if m is not None]
    return {"name": _clip(name, _MAX["group"]), "metric_data": data} if data else None


def parse_package_arn(arn: str) -> Tuple[str, int]:
    """(group name, version) of a versioned model package ARN."""
    match = PACKAGE_ARN.match(arn or "")
    if not match:
        raise ModelCardError(
            f"--model-package-arn {arn!r} is not a versioned model package ARN "
            "(arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>)"
        )
    return match.group(1), int(match.group(2))


def card_name(model_package_arn: str) -> str:
    """``<group>-v<version>``; a name over the 63-character limit keeps a hash of the group instead of its tail."""
    group, version = parse_package_arn(model_package_arn)
    name = f"{group}-v{version}"
    if len(name) <= 63:
        return name
    suffix = f"-{hashlib.sha256(group.encode()).hexdigest()[:8]}-v{version}"
    return group[: 63 - len(suffix)].rstrip("-") + suffix


def _threshold_check(checks: Sequence[Mapping[str, Any]], name: str) -> Optional[Mapping[str, Any]]:
    return next((c for c in checks if c.get("name") == name), None)


def limitations(report: Mapping[str, Any]) -> List[str]:
    """Plain-language limitations: failed gate checks, fairness not assessable, small slices and groups."""
    out: List[str] = []
    gate = report.get("gate") or {}
    challenger = report.get("challenger") or {}
    fairness = challenger.get("fairness") or {}
    attribute = fairness.get("attribute", "the sensitive attribute")
    for check in gate.get("checks") or []:
        if check.get("passed"):
            continue
        name, value, limit = check.get("name"), check.get("value"), check.get("threshold")
        if name == "min_auc":
            out.append(f"AUC {_f(value)} below the minimum {_f(limit)} (promotion gate failed)")
        elif name == "challenger_margin":
            out.append(
                f"AUC {_f(value)} does not beat the champion's {_f(check.get('champion_value'))} by the required margin (needs {_f(limit)})"
            )
        elif name == "slice_regression":
            out.append(
                f"slice {check.get('slice')}: AUC {_f(value)} fell below the champion's {_f(check.get('champion_value'))} by more than allowed (floor {_f(limit)})"
            )
        elif name == "demographic_parity":
            out.append(f"demographic parity difference across {attribute} {_f(value)} above the maximum {_f(limit)}")
        elif name == "disparate_impact":
            out.append(f"disparate impact across {attribute} {_f(value)} below {_f(limit)}")
        else:
            out.append(str(check.get("message") or name))
    if fairness and fairness.get("disparate_impact") is None:
        out.append(
            f"fairness across {attribute} cannot be assessed: {fairness.get('note') or 'fewer than two groups large enough'}"
        )
    for group, entry in sorted((fairness.get("groups") or {}).items()):
        if not entry.get("eligible"):
            out.append(
                f"{attribute} group {group!r} has {entry.get('rows')} test rows (< {fairness.get('min_group_rows')}): "
                "left out of the fairness metrics, its behaviour is unmeasured"
            )
    for column, block in sorted((challenger.get("slices") or {}).items()):
        for value, entry in sorted((block.get("values") or {}).items()):
            if not entry.get("gated"):
                why = (
                    "a single class" if entry.get("auc") is None else f"{entry.get('rows')} test rows (< {block.get('min_rows')})"
                )
                out.append(f"slice {column}={value} has {why}: its metrics are reported, not gated")
    if report.get("champion") is None:
        out.append("no champion comparison: this was the first model of its group")
    return out


def _risk(report: Mapping[str, Any], notes: Sequence[str]) -> Tuple[str, str]:
    gate = report.get("gate") or {}
    failed = [c for c in gate.get("checks") or [] if not c.get("passed")]
    fairness = (report.get("challenger") or {}).get("fairness") or {}
    if failed:
        return "High", _clip("failed promotion-gate checks: " + "; ".join(str(c.get("message")) for c in failed), _MAX["long"])
    if fairness.get("disparate_impact") is None:
        return "Medium", "fairness across the sensitive attribute could not be assessed on the test set"
    if notes:
        return "Medium", _clip(f"passed the promotion gate with {len(notes)} limitation(s); see caveats", _MAX["long"])
    return "Low", "passed every promotion-gate check, fairness within limits, no untested slices"


@dataclass(frozen=True)
class _Evaluated:
    """What every section of a card reads from one evaluation report (validated by :func:`build_model_card`)."""

    report: Mapping[str, Any]
    spec: ModelSpec
    purpose: str
    notes: List[str]
    package: Dict[str, Any]

    @property
    def challenger(self) -> Mapping[str, Any]:
        return self.report["challenger"]

    @property
    def champion(self) -> Optional[Mapping[str, Any]]:
        return self.report.get("champion")

    @property
    def gate(self) -> Mapping[str, Any]:
        return self.report["gate"]

    @property
    def info(self) -> Mapping[str, Any]:
        return self.challenger.get("model_info") or {}

    @property
    def metrics(self) -> Mapping[str, Any]:
        return self.challenger.get("metrics") or {}

    @property
    def fairness(self) -> Mapping[str, Any]:
        return self.challenger.get("fairness") or {}

    @property
    def attribute(self) -> str:
        return self.fairness.get("attribute") or self.spec.sensitive_attribute

    @property
    def threshold(self) -> Any:
        return self.metrics.get("threshold", 0.5)

    @property
    def threshold_origin(self) -> str:
        """How the threshold was chosen, e.g. ``maximum F-beta on validation data (beta 2)``."""
        decision = (self.challenger.get("model_info") or {}).get("decision") or {}
        return decision.get("description") or "fixed threshold"

    @property
    def thresholds(self) -> Mapping[str, Any]:
        return self.gate.get("thresholds") or {}


def build_model_card(
    *,
    evaluation_report: Mapping[str, Any],
    model_spec: ModelSpec,
    description: Optional[str] = None,
    model_package_arn: Optional[str] = None,
    model_package: Optional[Mapping[str, Any]] = None,
    test_set_uri: Optional[str] = None,
) -> Dict[str, Any]:
    """The SageMaker Model Card content of one evaluated (and optionally registered) model version.

    ``description``: the model's description from the config (default: a sentence built from
    the spec). ``model_package`` is a ``DescribeModelPackage`` response; without it the
    package section holds only what the ARN says. ``test_set_uri`` names the frozen test set.
    One builder per card section below.

    Raises:
        ModelCardError: the report is not an evaluation report of this model.
    """
    report = evaluation_report
    for key in ("challenger", "gate", "test_set"):
        if not isinstance(report.get(key), Mapping):
            raise ModelCardError(
                f"evaluation report lacks {key!r}: pass the {EVALUATION_FILE} written by pipeline_code.training.evaluate"
            )
    if report.get("model") not in (None, model_spec.name):
        raise ModelCardError(
            f"evaluation report is for model {report.get('model')!r}, the --model-spec is for {model_spec.name!r}"
        )
    card = _Evaluated(
        report=report,
        spec=model_spec,
        purpose=description or f"Predict '{model_spec.target}' for {model_spec.dataset} records.",
        notes=limitations(report),
        package=dict(model_package or {}),
    )
    content: Dict[str, Any] = {
        "model_overview": _overview(card),
        "intended_uses": _intended_uses(card),
        "training_details": _training_details(card),
        "evaluation_details": [_evaluation_details(card, test_set_uri)],
        "additional_information": _additional_information(card),
    }
    if model_package_arn:
        content["model_package_details"] = _package_details(model_package_arn, card.package)
    return content


def _overview(card: _Evaluated) -> Dict[str, Any]:
    model_data = [
        c.get("ModelDataUrl")
        for c in (card.package.get("InferenceSpecification") or {}).get("Containers") or []
        if c.get("ModelDataUrl")
    ]
    overview: Dict[str, Any] = {
        "model_description": _clip(card.purpose, _MAX["description"]),
        "model_creator": f"mlops-loop training pipeline ({card.spec.name})",
        "algorithm_type": "XGBoost (gradient-boosted decision trees)",
        "problem_type": "Binary Classification",
    }
    if model_data:
        overview["model_artifact"] = model_data[:15]
    return overview


def _intended_uses(card: _Evaluated) -> Dict[str, Any]:
    spec, time_range = card.spec, card.report["test_set"].get("time_range") or {}
    risk, risk_reason = _risk(card.report, card.notes)
    return {
        "purpose_of_model": _clip(card.purpose, _MAX["long"]),
        "intended_uses": _clip(
            f"Scores {spec.dataset} records from the features {', '.join(spec.features)} and returns the "
            f"probability that '{spec.target}' is true; a score >= {_f(card.threshold)} is a positive prediction "
            f"({card.threshold_origin}). "
            f"'{card.attribute}' is never a model input: it is used only to measure fairness.",
            _MAX["long"],
        ),
        "factors_affecting_model_efficiency": _clip(
            "Performance was measured on a frozen, time-split test set "
            f"({time_range.get('min', '?')} to {time_range.get('max', '?')}); drift in the input features or "
            f"in the base rate of '{spec.target}' degrades it. Slices are reported by "
            f"{', '.join(spec.slices) or 'no column'}.",
            _MAX["long"],
        ),
        "risk_rating": risk,
        "explanations_for_risk_rating": risk_reason,
    }


def _training_details(card: _Evaluated) -> Dict[str, Any]:
    info = card.info
    training_metrics = [
        m for m in (_metric("validation_auc", info.get("validation_auc"), "AUC on the validation split, kept model"),) if m
    ]
    hyper = [{"name": str(k)[:255], "value": str(v)[:255]} for k, v in sorted((info.get("hyperparameters") or {}).items())]
    job: Dict[str, Any] = {}
    if training_metrics:
        job["training_metrics"] = training_metrics
    if hyper:
        job["hyper_parameters"] = hyper[:100]
    training: Dict[str, Any] = {
        "training_observations": _clip(
            f"{info.get('rounds', '?')} boosting rounds on {len(card.spec.features)} features; trained at {info.get('trained_at') or 'unknown'}.",
            _MAX["description"],
        )
    }
    if job:
        training["training_job_details"] = job
    return training


def _evaluation_details(card: _Evaluated, test_set_uri: Optional[str]) -> Dict[str, Any]:
    gate, test_set, champion = card.gate, card.report["test_set"], card.champion
    groups = [*_performance_groups(card), *_fairness_groups(card), *_slice_groups(card), _gate_group(card)]
    evaluation: Dict[str, Any] = {
        "name": _clip(f"frozen test set {str(test_set.get('sha256', ''))[:12]}".strip(), _MAX["group"]),
        "evaluation_observation": _clip(
            f"Gate {'PASSED' if gate.get('passed') else 'FAILED'}: " + "; ".join(gate.get("reasons") or []), _MAX["observation"]
        ),
        "metadata": {
            k: _clip(str(v), _MAX["custom"])
            for k, v in (
                ("test_set_sha256", test_set.get("sha256")),
                ("test_set_rows", test_set.get("rows")),
                ("evaluated_at", card.report.get("evaluated_at")),
                ("gate_passed", str(bool(gate.get("passed"))).lower()),
                (
                    "champion",
                    ((champion or {}).get("source") or {}).get("model_package_arn") or ("present" if champion else "none"),
                ),
            )
            if v is not None
        },
        "metric_groups": [g for g in groups if g is not None],
    }
    if test_set_uri:
        evaluation["datasets"] = [_clip(test_set_uri, 1024)]
    return evaluation


def _performance_groups(card: _Evaluated) -> List[Optional[Dict[str, Any]]]:
    """Headline metrics of the challenger (and the champion and their difference), the confusion matrix, the ROC curve."""
    metrics, champion = card.metrics, card.champion
    groups: List[Optional[Dict[str, Any]]] = [_group("challenger (this version)", [_metric(m, metrics.get(m)) for m in _HEADLINE])]
    if champion:
        champion_metrics = champion.get("metrics") or {}
        source = champion.get("source") or {}
        groups.append(
            _group("champion", [_metric(m, champion_metrics.get(m), source.get("model_package_arn")) for m in _HEADLINE])
        )
        comparison = card.report.get("comparison") or {}
        groups.append(_group("challenger minus champion", [_metric(k, v) for k, v in sorted(comparison.items())]))
    confusion = metrics.get("confusion") or {}
    if all(k in confusion for k in ("tn", "fp", "fn", "tp")):
        groups.append(
            {
                "name": "confusion matrix",
                "metric_data": [
                    {
                        "name": f"confusion matrix at threshold {card.threshold}",
                        "type": "matrix",
                        "value": [[confusion["tn"], confusion["fp"]], [confusion["fn"], confusion["tp"]]],
                        "x_axis_name": ["predicted negative", "predicted positive"],
                        "y_axis_name": ["actual negative", "actual positive"],
                    }
                ],
            }
        )
    curve = (card.report.get("binary_classification_metrics") or {}).get("receiver_operating_characteristic_curve") or {}
    points = [
        [float(x), float(y)] for x, y in zip(curve.get("false_positive_rates") or [], curve.get("true_positive_rates") or [])
    ]
    if points:
        groups.append(
            {
                "name": "ROC curve",
                "metric_data": [{"name": "ROC curve", "type": "linear_graph", "value": points,
                                 "x_axis_name": "false positive rate", "y_axis_name": "true positive rate"}],
            }
        )  # fmt: skip
    return groups


def _fairness_groups(card: _Evaluated) -> List[Optional[Dict[str, Any]]]:
    """The fairness metrics with the gate's limits, and the positive rate of each group of the sensitive attribute."""
    fairness, attribute, thresholds = card.fairness, card.attribute, card.thresholds
    checks = card.gate.get("checks") or []
    fairness_metrics = []
    for metric, check_name, limit_key, op in _FAIRNESS:
        check = _threshold_check(checks, check_name) if check_name else None
        limit = thresholds.get(limit_key) if limit_key else None
        if check is not None:
            note = f"threshold {op} {_f(limit)}: {'pass' if check.get('passed') else 'FAIL'}"
        elif limit is not None:
            note = f"threshold {op} {_f(limit)}: not assessable"
        else:
            note = "reported, not gated"
        entry = _metric(metric, fairness.get(metric), note)
        fairness_metrics.append(entry)
        if entry is not None and limit is not None:
            fairness_metrics.append(_metric(f"{metric} threshold", limit, f"the gate's {'maximum' if op == '<=' else 'minimum'}"))
    groups = [_group(f"fairness across {attribute}", fairness_metrics)]
    by_group = [(g, e) for g, e in sorted((fairness.get("groups") or {}).items()) if _number(e.get("positive_rate")) is not None]
    if by_group:
        groups.append(
            {
                "name": _clip(f"positive rate by {attribute}", _MAX["group"]),
                "metric_data": [
                    {
                        "name": f"positive prediction rate by {attribute}",
                        "type": "bar_chart",
                        "value": [float(e["positive_rate"]) for _, e in by_group],
                        "x_axis_name": [_clip(g, _MAX["value"]) for g, _ in by_group],
                        "y_axis_name": "positive rate",
                        "notes": _clip(
                            "groups used for the fairness metrics: "
                            + (", ".join(fairness.get("eligible_groups") or []) or "none"),
                            _MAX["notes"],
                        ),
                    }
                ],
            }
        )
    return groups


def _slice_groups(card: _Evaluated) -> List[Dict[str, Any]]:
    """AUC per value of each slice column."""
    groups = []
    for column, block in sorted((card.challenger.get("slices") or {}).items()):
        values = [(v, e) for v, e in sorted((block.get("values") or {}).items()) if _number(e.get("auc")) is not None]
        if values:
            groups.append(
                {
                    "name": _clip(f"AUC by {column}", _MAX["group"]),
                    "metric_data": [
                        {
                            "name": f"AUC by {column}",
                            "type": "bar_chart",
                            "value": [float(e["auc"]) for _, e in values],
                            "x_axis_name": [_clip(v, _MAX["value"]) for v, _ in values],
                            "y_axis_name": "AUC",
                            "notes": _clip("test rows: " + ", ".join(f"{v}={e.get('rows')}" for v, e in values), _MAX["notes"]),
                        }
                    ],
                }
            )
    return groups


def _gate_group(card: _Evaluated) -> Optional[Dict[str, Any]]:
    """The gate's verdict and every check it made."""
    gate = card.gate
    gate_metrics = [_metric("gate passed", bool(gate.get("passed")), "; ".join(gate.get("reasons") or []))]
    for check in gate.get("checks") or []:
        label = check.get("name", "check") + (f" {check['slice']}" if check.get("slice") else "")
        gate_metrics.append(_metric(label, bool(check.get("passed")), check.get("message")))
    return _group("promotion gate", gate_metrics)


def _additional_information(card: _Evaluated) -> Dict[str, Any]:
    """Ethical considerations (the fairness measured), caveats (the limitations found) and custom details."""
    notes, fairness, thresholds = card.notes, card.fairness, card.thresholds
    caveats = "\n".join(f"- {n}" for n in notes) or "No known limitations beyond those of the test set."
    if len(caveats) > _MAX["long"]:
        kept: List[str] = []
        for n in notes:
            if len("\n".join(kept + [f"- {n}"])) > _MAX["long"] - 80:
                break
            kept.append(f"- {n}")
        caveats = "\n".join(kept + [f"- ... {len(notes) - len(kept)} more in {CARD_MARKDOWN}"])
    di, dpd = fairness.get("disparate_impact"), fairness.get("demographic_parity_difference")
    ethics = (
        f"Fairness is measured across '{card.attribute}' (not a model input): disparate impact {_f(di)} "
        f"(minimum {_f(thresholds.get('min_disparate_impact'))}), demographic parity difference {_f(dpd)} "
        f"(maximum {_f(thresholds.get('max_demographic_parity_difference'))}), equal opportunity difference "
        f"{_f(fairness.get('equal_opportunity_difference'))}. Other protected characteristics are not measured."
    )
    custom = {
        "gate_passed": str(bool(card.gate.get("passed"))).lower(),
        "test_set_sha256": str(card.report["test_set"].get("sha256", "")),
        "sensitive_attribute": str(card.attribute),
        "limitations_count": str(len(notes)),
    }
    metadata = card.package.get("CustomerMetadataProperties") or {}
    for key in ("code_version", "trigger_reason", "pipeline_execution_id"):
        if metadata.get(key):
            custom[key] = _clip(metadata[key], _MAX["custom"])
    return {
        "ethical_considerations": _clip(ethics, _MAX["long"]),
        "caveats_and_recommendations": caveats,
        "custom_details": custom,
    }


def _package_details(model_package_arn: str, package: Mapping[str, Any]) -> Dict[str, Any]:
    """The registered version: its ARN, group and version, and what DescribeModelPackage said about it."""
    group, version = parse_package_arn(model_package_arn)
    details: Dict[str, Any] = {
        "model_package_arn": model_package_arn,
        "model_package_group_name": group,
        "model_package_name": group,
        "model_package_version": version,
    }
    for key, field in (
        ("ModelPackageStatus", "model_package_status"),
        ("ModelApprovalStatus", "model_approval_status"),
        ("ApprovalDescription", "approval_description"),
        ("ModelPackageDescription", "model_package_description"),
        ("Domain", "domain"),
        ("Task", "task"),
    ):
        if package.get(key):
            details[field] = _clip(package[key], _MAX["custom"])
    return details


# --------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------
def render_markdown(card: Mapping[str, Any], *, title: Optional[str] = None) -> str:
    """The model card content as Markdown (every section of :func:`build_model_card`)."""
    overview, intended = card.get("model_overview") or {}, card.get("intended_uses") or {}
    info = card.get("additional_information") or {}
    package = card.get("model_package_details") or {}
    heading = title or (
        f"{package['model_package_group_name']} v{package['model_package_version']}"
        if package
        else overview.get("model_creator", "model")
    )
    out = [f"# Model card: {md_text(heading)}", ""]
    out += [
        "## Overview",
        "",
        f"- Description: {md_text(overview.get('model_description'))}",
        f"- Problem: {md_text(overview.get('problem_type'))}, algorithm {md_text(overview.get('algorithm_type'))}",
    ]
    out += [f"- Artifact: {md_text(a)}" for a in overview.get("model_artifact") or []]
    if package:
        out += [
            f"- Model package: {md_text(package.get('model_package_arn'))} (approval {md_text(package.get('model_approval_status'))})"
        ]
    out += ["", "## Intended use", "", md_text(intended.get("purpose_of_model")), "", md_text(intended.get("intended_uses")), ""]
    out += [f"**Risk rating: {md_text(intended.get('risk_rating'))}** — {md_text(intended.get('explanations_for_risk_rating'))}", ""]
    out += [md_text(intended.get("factors_affecting_model_efficiency")), ""]
    training = card.get("training_details") or {}
    out += ["## Training", "", md_text(training.get("training_observations")), ""]
    job = training.get("training_job_details") or {}
    for m in job.get("training_metrics") or []:
        out.append(f"- {md_text(m['name'])}: {m['value']:.4f}")
    if job.get("hyper_parameters"):
        out.append("- hyperparameters: " + ", ".join(f"{md_text(h['name'])}={md_text(h.get('value'))}" for h in job["hyper_parameters"]))
    out.append("")
    for evaluation in card.get("evaluation_details") or []:
        out += [f"## Evaluation: {md_text(evaluation.get('name'))}", "", md_text(evaluation.get("evaluation_observation")), ""]
        groups = {g["name"]: g for g in evaluation.get("metric_groups") or []}
        mine = {m["name"]: m["value"] for m in (groups.get("challenger (this version)") or {}).get("metric_data", [])}
        theirs = {m["name"]: m["value"] for m in (groups.get("champion") or {}).get("metric_data", [])}
        if mine:
            out += ["| Metric | This version | Champion |", "|---|---|---|"]
            out += [
                f"| {md_text(k)} | {v:.4f} | {theirs[k]:.4f} |" if k in theirs else f"| {md_text(k)} | {v:.4f} | — |"
                for k, v in mine.items()
            ]
            out.append("")
        for name, group in groups.items():
            if name.startswith("fairness across"):
                out += [f"### {md_text(name[0].upper() + name[1:])}", "", "| Metric | Value | Threshold / result |", "|---|---|---|"]
                out += [
                    f"| {md_text(m['name'])} | {m['value']:.4f} | {md_text(m.get('notes'))} |"
                    for m in group["metric_data"]
                    if not m["name"].endswith(" threshold")
                ]
                out.append("")
        gate = groups.get("promotion gate")
        if gate:
            out += ["### Promotion gate", "", "| Check | Passed | Detail |", "|---|---|---|"]
            out += [
                f"| {md_text(m['name'])} | {'yes' if m['value'] else '**no**'} | {md_text(m.get('notes'))} |" for m in gate["metric_data"]
            ]
            out.append("")
    out += ["## Limitations", ""]
    out += [
        line if line.startswith("- ") else f"- {line}"
        for line in (
            md_text(x[2:]) if x.startswith("- ") else md_text(x) for x in str(info.get("caveats_and_recommendations") or "").splitlines()
        )
        if line
    ]
    out += ["", "## Ethical considerations", "", md_text(info.get("ethical_considerations")), ""]
    return "\n".join(out)


# --------------------------------------------------------------------------------------
# SageMaker
# --------------------------------------------------------------------------------------
def create_or_update(client: Any, *, name: str, content: Mapping[str, Any], kms_key_id: Optional[str] = None) -> Tuple[str, str]:
    """Create the model card ``name`` (status Draft); if it exists, update it when its content differs.

    Returns (``created`` | ``updated`` | ``unchanged``, card ARN). Raises ModelCardError for
    an archived card (SageMaker refuses changes to it).
    """
    from botocore.exceptions import ClientError

    text = json.dumps(content, sort_keys=True)
    kwargs: Dict[str, Any] = {"ModelCardName": name, "Content": text, "ModelCardStatus": CARD_STATUS}
    if kms_key_id:
        kwargs["SecurityConfig"] = {"KmsKeyId": kms_key_id}
    try:
        return "created", client.create_model_card(**kwargs)["ModelCardArn"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ConflictException":
            raise
    existing = client.describe_model_card(ModelCardName=name)
    arn = existing.get("ModelCardArn", "")
    try:
        same = json.loads(existing.get("Content") or "null") == json.loads(text)
    except ValueError:
        same = False
    if same:
        return "unchanged", arn
    if existing.get("ModelCardStatus") == "Archived":
        raise ModelCardError(f"model card {name!r} is Archived and cannot be updated: unarchive it or delete it first")
    client.update_model_card(ModelCardName=name, Content=text, ModelCardStatus=CARD_STATUS)
    return "updated", arn


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------
def _read_spec(value: str) -> Tuple[ModelSpec, Optional[str]]:
    """The parsed spec and the ``description`` of the raw config entry, if it has one."""
    spec = parse_model_spec(value)
    description = None
    text = value
    if os.path.isfile(value):
        with open(value, encoding="utf-8") as handle:
            text = handle.read()
    try:
        raw = json.loads(text)
        if isinstance(raw, Mapping) and isinstance(raw.get("description"), str):
            description = raw["description"].strip() or None
    except ValueError:
        pass
    return spec, description


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--evaluation-dir", "--evaluation_dir", dest="evaluation_dir", required=True, help=f"directory holding {EVALUATION_FILE}"
    )
    parser.add_argument(
        "--model-spec",
        "--model_spec",
        dest="model_spec",
        required=True,
        help="the model's config entry: JSON text or a JSON file",
    )
    parser.add_argument(
        "--model-package-arn",
        "--model_package_arn",
        dest="model_package_arn",
        default=None,
        help="the registered version (required with --create)",
    )
    parser.add_argument(
        "--output-dir",
        "--output_dir",
        dest="output_dir",
        default=DEFAULT_OUTPUT_DIR,
        help=f"where the card files go (default {DEFAULT_OUTPUT_DIR})",
    )
    parser.add_argument(
        "--description", default=None, help="intended use text (default: the spec's 'description', else one built from the spec)"
    )
    parser.add_argument(
        "--test-set-uri",
        "--test_set_uri",
        dest="test_set_uri",
        default=None,
        help="S3 URI of the frozen test set, recorded as the evaluation dataset",
    )
    parser.add_argument("--create", action="store_true", help="create (or update) the SageMaker model card <group>-v<version>")
    parser.add_argument(
        "--kms-key-id",
        "--kms_key_id",
        dest="kms_key_id",
        default=None,
        help="KMS key for the card's content (with --create; default: AWS owned key)",
    )
    parser.add_argument("--region", default=None, help="AWS region (default: the environment's)")
    return parser


def main(argv: Optional[Sequence[str]] = None, *, sagemaker_client: Any = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.create and not args.model_package_arn:
        parser.error("--create needs --model-package-arn (the card is named after and linked to the version)")
    try:
        spec, spec_description = _read_spec(args.model_spec)
        path = os.path.join(args.evaluation_dir, EVALUATION_FILE)
        if not os.path.isfile(path):
            raise ModelCardError(
                f"--evaluation-dir {args.evaluation_dir!r} holds no {EVALUATION_FILE}: pass the Evaluate step's output"
            )
        with open(path, encoding="utf-8") as handle:
            report = json.load(handle)
        if args.model_package_arn:
            parse_package_arn(args.model_package_arn)
    except (SpecError, ModelCardError, ValueError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2

    from botocore.exceptions import BotoCoreError, ClientError

    package = None
    client = sagemaker_client
    if args.create:
        if client is None:
            import boto3

            client = boto3.client("sagemaker", region_name=args.region)
        try:
            package = client.describe_model_package(ModelPackageName=args.model_package_arn)
        except (ClientError, BotoCoreError) as exc:
            print(f"{PROG}: error: cannot read {args.model_package_arn}: {exc}", file=sys.stderr)
            return 1
    try:
        content = build_model_card(
            evaluation_report=report,
            model_spec=spec,
            description=args.description or spec_description,
            model_package_arn=args.model_package_arn,
            model_package=package,
            test_set_uri=args.test_set_uri or ((package or {}).get("CustomerMetadataProperties") or {}).get("frozen_test"),
        )
    except ModelCardError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    os.makedirs(args.output_dir, exist_ok=True)
    with open(os.path.join(args.output_dir, CARD_JSON), "w", encoding="utf-8") as handle:
        json.dump(content, handle, indent=2, sort_keys=True)
    with open(os.path.join(args.output_dir, CARD_MARKDOWN), "w", encoding="utf-8") as handle:
        handle.write(render_markdown(content))
    print(f"wrote {CARD_JSON} and {CARD_MARKDOWN} to {args.output_dir}; risk rating {content['intended_uses']['risk_rating']}")
    if args.create:
        name = card_name(args.model_package_arn)
        try:
            outcome, arn = create_or_update(client, name=name, content=content, kms_key_id=args.kms_key_id)
        except ModelCardError as exc:
            print(f"{PROG}: error: {exc}", file=sys.stderr)
            return 1
        except (ClientError, BotoCoreError) as exc:
            print(f"{PROG}: error: model card {name!r}: {exc}", file=sys.stderr)
            return 1
        print(f"model card {name}: {outcome} ({arn})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
