"""A SageMaker Model Card for a registered model version, filled from its evaluation report.

:func:`build_model_card` turns the ``evaluation.json`` written by
:mod:`pipeline_code.training.evaluate` (plus the model's configuration) into the content of a
SageMaker Model Card (the model card JSON schema, snake_case sections)::

    model_overview          what the model is, its artifact, its problem type
    intended_uses           purpose (the model's description in the config), intended use, risk rating
    training_details        rounds, hyperparameters, validation metrics
    evaluation_details      metrics vs the champion, gate checks, fairness per metric with its
                            threshold, slices, and per problem type (``core.problem``):
                            binary: confusion matrix at the threshold, ROC curve, positive rate per group;
                            multiclass: metrics and confusion matrix per class, parity per class,
                            predicted class shares per group;
                            regression: error quantiles, MAE and bias per group (error parity)
    additional_information  limitations (failed gate checks, small slices and groups),
                            ethical considerations (fairness), custom details
    model_package_details   the registered version (when its ARN is given)

The problem type is the report's ``problem_type`` (binary when absent); it must be the spec's.
:func:`render_markdown` renders the same content for people. Only the sections and field names
of the documented schema are used; every string respects the schema's length limits (and a
matrix its 20 x 20 limit: a multiclass model with more classes has no confusion matrix in the card).

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

from pipeline_code.core import problem
from pipeline_code.core.contract import EVALUATION_FILE, PACKAGE_ARN
from pipeline_code.core.markdown import md_text
from pipeline_code.training.spec import ModelSpec, SpecError, parse_model_spec

PROG = "python -m pipeline_code.training.model_card"
CARD_JSON = "model_card.json"
CARD_MARKDOWN = "model_card.md"
DEFAULT_OUTPUT_DIR = "/opt/ml/processing/output/model_card"
CARD_STATUS = "Draft"
# Headline metrics per problem type: the binary card also shows the prevalence (the test set's base rate).
_HEADLINE = {**problem.HEADLINE_METRICS, problem.BINARY: (*problem.HEADLINE_METRICS[problem.BINARY], "prevalence")}
_CLASSIFIER_FAIRNESS = (
    # (metric, gate check name, threshold key in gate.thresholds, comparison)
    ("demographic_parity_difference", "demographic_parity", "max_demographic_parity_difference", "<="),
    ("disparate_impact", "disparate_impact", "min_disparate_impact", ">="),
    ("equal_opportunity_difference", None, None, None),
)
_FAIRNESS = {
    problem.BINARY: _CLASSIFIER_FAIRNESS,
    problem.MULTICLASS: _CLASSIFIER_FAIRNESS,
    # Error parity: lowest / highest group MAE, gated by the environment's minimum disparate impact.
    problem.REGRESSION: (
        ("error_parity_ratio", "error_parity", "min_disparate_impact", ">="),
        ("mae_difference", None, None, None),
    ),
}
# The fairness metric that is None when fairness cannot be assessed (fewer than two groups large enough).
_FAIRNESS_KEY = {problem.BINARY: "disparate_impact", problem.MULTICLASS: "disparate_impact",
                 problem.REGRESSION: "error_parity_ratio"}  # fmt: skip
# The card content's matrix limit (model card JSON schema: at most 20 rows of at most 20 numbers).
_MAX_MATRIX = 20
# Metric group names of the non-binary sections (render_markdown renders them as tables).
_CLASS_METRICS = "metrics by class"
_CLASS_CONFUSION = "confusion matrix by class"
_ERRORS = "error distribution"
_CLASS_PARITY = "parity by class across "
_CLASS_SHARES = "predicted class share by "
_GROUP_ERRORS = "error by "
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


def _kind(report: Mapping[str, Any]) -> str:
    """The report's problem type (reports of binary models may not name it)."""
    return str(report.get("problem_type") or problem.BINARY)


def _primary(report: Mapping[str, Any]) -> str:
    return str(report.get("primary_metric") or problem.default_primary_metric(_kind(report)))


def limitations(report: Mapping[str, Any]) -> List[str]:
    """Plain-language limitations: failed gate checks, fairness not assessable, small slices and groups."""
    out: List[str] = []
    kind, metric = _kind(report), _primary(report)
    label = problem.label(metric)
    gate = report.get("gate") or {}
    challenger = report.get("challenger") or {}
    fairness = challenger.get("fairness") or {}
    attribute = fairness.get("attribute", "the sensitive attribute")
    # A multiclass model's parity metrics are its worst class's: name the class.
    worst = {"demographic_parity": "", "disparate_impact": ""}
    if kind == problem.MULTICLASS:
        worst = {name: f" (class {fairness.get(name + '_class')})" if fairness.get(name + "_class") else ""
                 for name in ("demographic_parity", "disparate_impact")}  # fmt: skip
    for check in gate.get("checks") or []:
        if check.get("passed"):
            continue
        name, value, limit = check.get("name"), check.get("value"), check.get("threshold")
        if name == "min_auc":
            what = "macro one-vs-rest AUC" if kind == problem.MULTICLASS else "AUC"
            out.append(f"{what} {_f(value)} below the minimum {_f(limit)} (promotion gate failed)")
        elif name == "min_quality":
            side = "below" if problem.higher_is_better(metric) else "above"
            out.append(f"{label} {_f(value)} {side} the floor {_f(limit)} (promotion gate failed)")
        elif name == "challenger_margin":
            out.append(
                f"{label} {_f(value)} does not beat the champion's {_f(check.get('champion_value'))} by the required margin (needs {_f(limit)})"
            )
        elif name == "slice_regression":
            moved, bound = ("fell below", "floor") if problem.higher_is_better(metric) else ("rose above", "ceiling")
            out.append(
                f"slice {check.get('slice')}: {label} {_f(value)} {moved} the champion's {_f(check.get('champion_value'))} "
                f"by more than allowed ({bound} {_f(limit)})"
            )
        elif name == "demographic_parity":
            out.append(
                f"demographic parity difference across {attribute}{worst['demographic_parity']} {_f(value)} "
                f"above the maximum {_f(limit)}"
            )
        elif name == "disparate_impact":
            out.append(f"disparate impact across {attribute}{worst['disparate_impact']} {_f(value)} below {_f(limit)}")
        elif name == "error_parity":
            out.append(f"error parity across {attribute} (lowest / highest group MAE) {_f(value)} below {_f(limit)}")
        else:
            out.append(str(check.get("message") or name))
    if fairness and fairness.get(_FAIRNESS_KEY.get(kind, "disparate_impact")) is None:
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
                why = _ungated_because(kind, label, metric, block, entry)
                out.append(f"slice {column}={value} has {why}: its metrics are reported, not gated")
    if report.get("champion_not_compared"):
        out.append(
            f"the champion was not compared ({report['champion_not_compared']}): judged as the first model of its group"
        )
    elif report.get("champion") is None:
        out.append("no champion comparison: this was the first model of its group")
    return out


def _ungated_because(kind: str, label: str, metric: str, block: Mapping[str, Any], entry: Mapping[str, Any]) -> str:
    """Why a slice value is reported but not gated (too few rows, a class too rare, no primary metric)."""
    rows, min_rows = entry.get("rows"), block.get("min_rows")
    if kind == problem.BINARY:
        return "a single class" if entry.get("auc") is None else f"{rows} test rows (< {min_rows})"
    if isinstance(rows, int) and isinstance(min_rows, int) and rows < min_rows:
        return f"{rows} test rows (< {min_rows})"
    counts = entry.get("class_counts") or {}
    if kind == problem.MULTICLASS and counts and block.get("min_positives") is not None:
        rarest = min(counts, key=lambda c: counts[c])
        if counts[rarest] < block["min_positives"]:
            return f"class {rarest} only {counts[rarest]} times (< {block['min_positives']})"
    return f"no {label}" if entry.get(metric) is None else f"{rows} test rows"


def _risk(report: Mapping[str, Any], notes: Sequence[str]) -> Tuple[str, str]:
    gate = report.get("gate") or {}
    failed = [c for c in gate.get("checks") or [] if not c.get("passed")]
    fairness = (report.get("challenger") or {}).get("fairness") or {}
    if failed:
        return "High", _clip("failed promotion-gate checks: " + "; ".join(str(c.get("message")) for c in failed), _MAX["long"])
    if fairness.get(_FAIRNESS_KEY.get(_kind(report), "disparate_impact")) is None:
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
    def kind(self) -> str:
        """The problem type (``core.problem``)."""
        return _kind(self.report)

    @property
    def primary_metric(self) -> str:
        return _primary(self.report)

    @property
    def classes(self) -> List[str]:
        """A multiclass model's classes in label-code order (empty for the other types)."""
        return [str(c) for c in (self.report.get("classes") or self.spec.classes or ())]

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
    kind = _kind(report)
    if kind not in problem.PROBLEM_TYPES:
        raise ModelCardError(
            f"evaluation report has problem_type {kind!r}, not one of {', '.join(problem.PROBLEM_TYPES)}"
        )
    if kind != model_spec.problem_type:
        raise ModelCardError(
            f"evaluation report is of a {kind} model, the --model-spec declares a {model_spec.problem_type} model: "
            "pass the spec the model was evaluated with"
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
        "problem_type": problem.DISPLAY_NAME[card.kind],
    }
    if model_data:
        overview["model_artifact"] = model_data[:15]
    return overview


def _what_it_predicts(card: _Evaluated) -> str:
    """The intended-use sentence: what the model returns for a record, per problem type."""
    spec = card.spec
    inputs = f"{spec.dataset} records from the features {', '.join(spec.features)}"
    if card.kind == problem.MULTICLASS:
        classes = card.classes
        return (
            f"Classifies {inputs}: which class of '{spec.target}' among the {len(classes)} classes "
            f"{', '.join(classes)} a record belongs to. The model returns a probability for each class; "
            "the prediction is the most probable class (there is no decision threshold). "
        )
    if card.kind == problem.REGRESSION:
        metrics = card.metrics
        quantiles = metrics.get("abs_error_quantiles") or {}
        return (
            f"Scores {inputs} and returns the predicted value of '{spec.target}' (a number). On the frozen test set "
            f"the mean absolute error is {_f(metrics.get('mae'))}: half the predictions are within "
            f"{_f(quantiles.get('p50'))} of the true value, 90% within {_f(quantiles.get('p90'))}; the mean of "
            f"'{spec.target}' there is {_f(metrics.get('mean_target'))}. "
        )
    return (
        f"Scores {inputs} and returns the "
        f"probability that '{spec.target}' is true; a score >= {_f(card.threshold)} is a positive prediction "
        f"({card.threshold_origin}). "
    )


def _intended_uses(card: _Evaluated) -> Dict[str, Any]:
    spec, time_range = card.spec, card.report["test_set"].get("time_range") or {}
    risk, risk_reason = _risk(card.report, card.notes)
    shifting = {problem.BINARY: "the base rate", problem.MULTICLASS: "the class mix",
                problem.REGRESSION: "the distribution"}[card.kind]  # fmt: skip
    return {
        "purpose_of_model": _clip(card.purpose, _MAX["long"]),
        "intended_uses": _clip(
            _what_it_predicts(card) + f"'{card.attribute}' is never a model input: it is used only to measure fairness.",
            _MAX["long"],
        ),
        "factors_affecting_model_efficiency": _clip(
            "Performance was measured on a frozen, time-split test set "
            f"({time_range.get('min', '?')} to {time_range.get('max', '?')}); drift in the input features or "
            f"in {shifting} of '{spec.target}' degrades it. Slices are reported by "
            f"{', '.join(spec.slices) or 'no column'}.",
            _MAX["long"],
        ),
        "risk_rating": risk,
        "explanations_for_risk_rating": risk_reason,
    }


def _training_details(card: _Evaluated) -> Dict[str, Any]:
    info = card.info
    if card.kind == problem.BINARY:
        candidates = [_metric("validation_auc", info.get("validation_auc"), "AUC on the validation split, kept model")]
    else:
        candidates = [
            _metric("validation_auc", info.get("validation_auc"), "macro one-vs-rest AUC on the validation split, kept model")
        ]
        candidates += [
            _metric(str(k), v, "on the validation split, kept model")
            for k, v in sorted((info.get("validation") or {}).items())
            if k != "validation_auc"
        ]
    training_metrics = [m for m in candidates if m][:50]
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


def _bar_chart(name: str, pairs: Sequence[Tuple[Any, Any]], y_axis: str, notes: Optional[str] = None) -> Optional[Dict[str, Any]]:
    """A bar chart of the (label, value) pairs with a finite value, or None when there is none."""
    kept = [(label, value) for label, value in pairs if _number(value) is not None]
    if not kept:
        return None
    chart: Dict[str, Any] = {
        "name": _clip(name, _MAX["name"]),
        "type": "bar_chart",
        "value": [value if isinstance(value, int) and not isinstance(value, bool) else float(value) for _, value in kept],
        "x_axis_name": [_clip(label, _MAX["value"]) for label, _ in kept],
        "y_axis_name": _clip(y_axis, _MAX["value"]),
    }
    if notes:
        chart["notes"] = _clip(notes, _MAX["notes"])
    return chart


def _performance_groups(card: _Evaluated) -> List[Optional[Dict[str, Any]]]:
    """Headline metrics of the challenger (and the champion and their difference), then per problem type:
    the confusion matrix and ROC curve (binary), metrics and confusion per class (multiclass), error quantiles (regression)."""
    metrics, champion, headline = card.metrics, card.champion, _HEADLINE[card.kind]
    groups: List[Optional[Dict[str, Any]]] = [_group("challenger (this version)", [_metric(m, metrics.get(m)) for m in headline])]
    if champion:
        champion_metrics = champion.get("metrics") or {}
        source = champion.get("source") or {}
        groups.append(
            _group("champion", [_metric(m, champion_metrics.get(m), source.get("model_package_arn")) for m in headline])
        )
        comparison = card.report.get("comparison") or {}
        groups.append(_group("challenger minus champion", [_metric(k, v) for k, v in sorted(comparison.items())]))
    if card.kind == problem.MULTICLASS:
        return groups + _class_groups(card)
    if card.kind == problem.REGRESSION:
        return groups + [_error_group(card)]
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


def _class_groups(card: _Evaluated) -> List[Optional[Dict[str, Any]]]:
    """A multiclass model's test rows, precision, recall, F1 and shares per class, and its confusion matrix
    (rows: actual class, columns: predicted class) when it fits the card's 20 x 20 matrix limit."""
    metrics, classes = card.metrics, card.classes
    per_class = metrics.get("per_class") or {}
    entries = [(c, per_class.get(c) or {}) for c in classes]
    confusion = metrics.get("confusion") or {}
    matrix, matrix_classes = confusion.get("matrix") or [], [str(c) for c in confusion.get("classes") or classes]
    fits = 0 < len(matrix_classes) <= _MAX_MATRIX and len(matrix) == len(matrix_classes)
    left_out = None
    if matrix and not fits:
        left_out = (f"the confusion matrix of the {len(matrix_classes)} classes exceeds the card's {_MAX_MATRIX} x {_MAX_MATRIX} "
                    f"limit: see {EVALUATION_FILE}")  # fmt: skip
    charts = [
        _bar_chart("test rows by class", [(c, e.get("rows")) for c, e in entries], "test rows", left_out),
        _bar_chart("precision by class", [(c, e.get("precision")) for c, e in entries], "precision"),
        _bar_chart("recall by class", [(c, e.get("recall")) for c, e in entries], "recall"),
        _bar_chart("F1 by class", [(c, e.get("f1")) for c, e in entries], "F1"),
        _bar_chart("predicted share by class", [(c, e.get("predicted_share")) for c, e in entries], "predicted share"),
        _bar_chart("actual share by class", [(c, e.get("actual_share")) for c, e in entries], "actual share"),
    ]
    groups: List[Optional[Dict[str, Any]]] = [_group(_CLASS_METRICS, charts)]
    if matrix and fits:
        groups.append(
            {
                "name": _CLASS_CONFUSION,
                "metric_data": [
                    {
                        "name": "confusion matrix (rows: actual class, columns: predicted class)",
                        "type": "matrix",
                        "value": [[int(n) for n in row] for row in matrix],
                        "x_axis_name": [_clip(f"predicted {c}", _MAX["value"]) for c in matrix_classes],
                        "y_axis_name": [_clip(f"actual {c}", _MAX["value"]) for c in matrix_classes],
                        "notes": "the most probable class is the prediction",
                    }
                ],
            }
        )
    return groups


def _error_group(card: _Evaluated) -> Optional[Dict[str, Any]]:
    """A regression model's absolute error quantiles, and the target and prediction means they compare to."""
    metrics = card.metrics
    quantiles = metrics.get("abs_error_quantiles") or {}
    target = card.spec.target
    return _group(
        _ERRORS,
        [
            *(
                _metric(f"abs_error_{q}", quantiles.get(q), f"{q[1:]}th percentile of |prediction - {target}| on the test set")
                for q in ("p50", "p90", "p99")
            ),
            _metric("mean_target", metrics.get("mean_target"), f"mean of '{target}' on the test set"),
            _metric("mean_prediction", metrics.get("mean_prediction"), "mean prediction on the test set"),
            _metric("target_std", metrics.get("target_std"), f"standard deviation of '{target}' on the test set"),
        ],
    )


def _fairness_groups(card: _Evaluated) -> List[Optional[Dict[str, Any]]]:
    """The fairness metrics with the gate's limits, then per problem type: the positive rate of each group of the
    sensitive attribute (binary); parity per class and predicted class shares per group (multiclass); MAE and
    bias per group (regression: error parity)."""
    fairness, attribute, thresholds, kind = card.fairness, card.attribute, card.thresholds, card.kind
    checks = card.gate.get("checks") or []
    fairness_metrics = []
    for metric, check_name, limit_key, op in _FAIRNESS[kind]:
        check = _threshold_check(checks, check_name) if check_name else None
        limit = thresholds.get(limit_key) if limit_key else None
        if check is not None:
            note = f"threshold {op} {_f(limit)}: {'pass' if check.get('passed') else 'FAIL'}"
        elif limit is not None:
            note = f"threshold {op} {_f(limit)}: not assessable"
        else:
            note = "reported, not gated"
        if kind == problem.MULTICLASS:
            worst = fairness.get({"demographic_parity_difference": "demographic_parity_class",
                                  "disparate_impact": "disparate_impact_class"}.get(metric, ""))  # fmt: skip
            if worst:
                note = f"worst class {worst}; {note}"
            elif metric == "equal_opportunity_difference":
                note = f"largest over the classes; {note}"
        elif kind == problem.REGRESSION and metric == "error_parity_ratio":
            note = f"lowest / highest group MAE; {note}"
        entry = _metric(metric, fairness.get(metric), note)
        fairness_metrics.append(entry)
        if entry is not None and limit is not None:
            fairness_metrics.append(_metric(f"{metric} threshold", limit, f"the gate's {'maximum' if op == '<=' else 'minimum'}"))
    groups = [_group(f"fairness across {attribute}", fairness_metrics)]
    if kind == problem.MULTICLASS:
        return groups + _class_fairness_groups(card)
    if kind == problem.REGRESSION:
        return groups + [_error_fairness_group(card)]
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


def _eligible_note(fairness: Mapping[str, Any]) -> str:
    return "groups used for the fairness metrics: " + (", ".join(fairness.get("eligible_groups") or []) or "none")


def _class_fairness_groups(card: _Evaluated) -> List[Optional[Dict[str, Any]]]:
    """Parity per class (gap and ratio of the rate each class is predicted across the compared groups, and the gap
    of its recall), and the predicted class shares of every group (a matrix when it fits the card's limit)."""
    fairness, attribute, classes = card.fairness, card.attribute, card.classes
    per_class = fairness.get("per_class") or {}
    entries = [(c, per_class[c]) for c in classes if c in per_class]
    groups: List[Optional[Dict[str, Any]]] = [
        _group(
            _clip(_CLASS_PARITY + attribute, _MAX["group"]),
            [
                _bar_chart("demographic parity difference by class",
                           [(c, e.get("demographic_parity_difference")) for c, e in entries], "demographic parity difference",
                           "largest minus smallest share of the compared groups predicted this class"),
                _bar_chart("disparate impact by class", [(c, e.get("disparate_impact")) for c, e in entries], "disparate impact",
                           "smallest over largest share of the compared groups predicted this class"),
                _bar_chart("equal opportunity difference by class",
                           [(c, e.get("equal_opportunity_difference")) for c, e in entries], "equal opportunity difference",
                           "largest minus smallest recall of this class over the compared groups"),
            ],
        )
    ]  # fmt: skip
    shares = [(g, e.get("predicted_shares") or {}) for g, e in sorted((fairness.get("groups") or {}).items())]
    shares = [(g, s) for g, s in shares if all(_number(s.get(c)) is not None for c in classes)]
    if shares and classes and len(shares) <= _MAX_MATRIX and len(classes) <= _MAX_MATRIX:
        groups.append(
            {
                "name": _clip(_CLASS_SHARES + attribute, _MAX["group"]),
                "metric_data": [
                    {
                        "name": f"share of each {attribute} group predicted each class",
                        "type": "matrix",
                        "value": [[float(s[c]) for c in classes] for _, s in shares],
                        "x_axis_name": [_clip(c, _MAX["value"]) for c in classes],
                        "y_axis_name": [_clip(g, _MAX["value"]) for g, _ in shares],
                        "notes": _clip(_eligible_note(fairness), _MAX["notes"]),
                    }
                ],
            }
        )
    return groups


def _error_fairness_group(card: _Evaluated) -> Optional[Dict[str, Any]]:
    """A regression model's mean absolute error and bias (mean prediction - target) per group of the sensitive attribute."""
    fairness, attribute = card.fairness, card.attribute
    entries = sorted((fairness.get("groups") or {}).items())
    note = _eligible_note(fairness)
    return _group(
        _clip(_GROUP_ERRORS + attribute, _MAX["group"]),
        [
            _bar_chart(f"MAE by {attribute}", [(g, e.get("mae")) for g, e in entries], "mean absolute error", note),
            _bar_chart(f"bias by {attribute}", [(g, e.get("bias")) for g, e in entries], "mean prediction - target",
                       "positive: over-predicts for the group"),
            _bar_chart(f"test rows by {attribute}", [(g, e.get("rows")) for g, e in entries], "test rows"),
        ],
    )  # fmt: skip


def _slice_groups(card: _Evaluated) -> List[Dict[str, Any]]:
    """The primary metric (binary: AUC) per value of each slice column."""
    groups = []
    metric = "auc" if card.kind == problem.BINARY else card.primary_metric
    label = problem.label(metric)
    for column, block in sorted((card.challenger.get("slices") or {}).items()):
        values = [(v, e) for v, e in sorted((block.get("values") or {}).items()) if _number(e.get(metric)) is not None]
        if values:
            groups.append(
                {
                    "name": _clip(f"{label} by {column}", _MAX["group"]),
                    "metric_data": [
                        {
                            "name": f"{label} by {column}",
                            "type": "bar_chart",
                            "value": [float(e[metric]) for _, e in values],
                            "x_axis_name": [_clip(v, _MAX["value"]) for v, _ in values],
                            "y_axis_name": label,
                            "notes": _clip("test rows: " + ", ".join(f"{v}={e.get('rows')}" for v, e in values), _MAX["notes"]),
                        }
                    ],
                }
            )
    return groups


def _gate_group(card: _Evaluated) -> Optional[Dict[str, Any]]:
    """The gate's verdict and every check it made (``min_auc``, ``min_quality``, ``challenger_margin``,
    ``slice_regression``, ``fairness_evidence``, ``demographic_parity``, ``disparate_impact``, ``error_parity``)."""
    gate = card.gate
    gate_metrics = [_metric("gate passed", bool(gate.get("passed")), "; ".join(gate.get("reasons") or []))]
    for check in gate.get("checks") or []:
        label = check.get("name", "check") + (f" {check['slice']}" if check.get("slice") else "")
        gate_metrics.append(_metric(label, bool(check.get("passed")), check.get("message")))
    return _group("promotion gate", gate_metrics)


def _ethics(card: _Evaluated) -> str:
    """What fairness was measured, per problem type, with the gate's limits."""
    fairness, thresholds = card.fairness, card.thresholds
    di, dpd = fairness.get("disparate_impact"), fairness.get("demographic_parity_difference")
    if card.kind == problem.MULTICLASS:
        return (
            f"Fairness is measured across '{card.attribute}' (not a model input), per class of '{card.spec.target}': for "
            f"each class, how evenly the groups are predicted it. Worst class: disparate impact {_f(di)} (class "
            f"{fairness.get('disparate_impact_class') or 'n/a'}; minimum {_f(thresholds.get('min_disparate_impact'))}), "
            f"demographic parity difference {_f(dpd)} (class {fairness.get('demographic_parity_class') or 'n/a'}; maximum "
            f"{_f(thresholds.get('max_demographic_parity_difference'))}), equal opportunity difference "
            f"{_f(fairness.get('equal_opportunity_difference'))}. Other protected characteristics are not measured."
        )
    if card.kind == problem.REGRESSION:
        return (
            f"Fairness is measured across '{card.attribute}' (not a model input) as error parity: the lowest over the "
            f"highest group mean absolute error {_f(fairness.get('error_parity_ratio'))} (minimum "
            f"{_f(thresholds.get('min_disparate_impact'))}), MAE difference {_f(fairness.get('mae_difference'))} "
            f"(highest error: {fairness.get('highest_error_group') or 'n/a'}, lowest: "
            f"{fairness.get('lowest_error_group') or 'n/a'}). Other protected characteristics are not measured."
        )
    return (
        f"Fairness is measured across '{card.attribute}' (not a model input): disparate impact {_f(di)} "
        f"(minimum {_f(thresholds.get('min_disparate_impact'))}), demographic parity difference {_f(dpd)} "
        f"(maximum {_f(thresholds.get('max_demographic_parity_difference'))}), equal opportunity difference "
        f"{_f(fairness.get('equal_opportunity_difference'))}. Other protected characteristics are not measured."
    )


def _additional_information(card: _Evaluated) -> Dict[str, Any]:
    """Ethical considerations (the fairness measured), caveats (the limitations found) and custom details."""
    notes = card.notes
    caveats = "\n".join(f"- {n}" for n in notes) or "No known limitations beyond those of the test set."
    if len(caveats) > _MAX["long"]:
        kept: List[str] = []
        for n in notes:
            if len("\n".join(kept + [f"- {n}"])) > _MAX["long"] - 80:
                break
            kept.append(f"- {n}")
        caveats = "\n".join(kept + [f"- ... {len(notes) - len(kept)} more in {CARD_MARKDOWN}"])
    custom = {
        "gate_passed": str(bool(card.gate.get("passed"))).lower(),
        "test_set_sha256": str(card.report["test_set"].get("sha256", "")),
        "sensitive_attribute": str(card.attribute),
        "limitations_count": str(len(notes)),
    }
    if card.kind != problem.BINARY:
        custom["problem_type"] = card.kind
        custom["primary_metric"] = card.primary_metric
        if card.classes:
            custom["classes"] = _clip(", ".join(card.classes), _MAX["custom"])
    metadata = card.package.get("CustomerMetadataProperties") or {}
    for key in ("code_version", "trigger_reason", "pipeline_execution_id"):
        if metadata.get(key):
            custom[key] = _clip(metadata[key], _MAX["custom"])
    return {
        "ethical_considerations": _clip(_ethics(card), _MAX["long"]),
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
        out += _per_type_markdown(groups, (_CLASS_METRICS, _CLASS_CONFUSION, _ERRORS))
        for name, group in groups.items():
            if name.startswith("fairness across"):
                out += [f"### {md_text(name[0].upper() + name[1:])}", "", "| Metric | Value | Threshold / result |", "|---|---|---|"]
                out += [
                    f"| {md_text(m['name'])} | {m['value']:.4f} | {md_text(m.get('notes'))} |"
                    for m in group["metric_data"]
                    if not m["name"].endswith(" threshold")
                ]
                out.append("")
        out += _per_type_markdown(groups, (_CLASS_PARITY, _CLASS_SHARES, _GROUP_ERRORS))
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


def _cell(value: Any) -> str:
    """A table cell of a chart or matrix value: counts as integers, the rest with 4 decimals."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return f"{value:.4f}" if _number(value) is not None else "—"


def _per_type_markdown(groups: Mapping[str, Mapping[str, Any]], names: Sequence[str]) -> List[str]:
    """Tables of the multiclass and regression sections (groups named, or prefixed, by ``names``), in that order:
    bar charts sharing their x axis side by side, a matrix as a grid, simple metrics as metric | value | notes."""
    out: List[str] = []
    for prefix in names:
        for name, group in groups.items():
            if not name.startswith(prefix):
                continue
            out += [f"### {md_text(name[0].upper() + name[1:])}", ""]
            data = group.get("metric_data") or []
            charts = [m for m in data if m.get("type") == "bar_chart"]
            if charts:
                labels: List[str] = []
                for chart in charts:
                    labels += [x for x in chart.get("x_axis_name") or [] if x not in labels]
                columns = [dict(zip(chart.get("x_axis_name") or [], chart["value"])) for chart in charts]
                first = "Class" if "by class" in charts[0]["name"] else "Group"
                heads = [c.get("y_axis_name") or c["name"] for c in charts]
                out += ["| " + " | ".join([first, *(md_text(h) for h in heads)]) + " |", "|" + "---|" * (len(charts) + 1)]
                out += ["| " + " | ".join([md_text(x), *(_cell(col.get(x)) for col in columns)]) + " |" for x in labels]
                out.append("")
                notes = [f"- {md_text(c['name'])}: {md_text(c['notes'])}" for c in charts if c.get("notes")]
                out += notes + [""] if notes else []
            for matrix in (m for m in data if m.get("type") == "matrix"):
                heads = [md_text(x) for x in matrix.get("x_axis_name") or []]
                out += [md_text(matrix["name"]), "", "| | " + " | ".join(heads) + " |", "|" + "---|" * (len(heads) + 1)]
                out += [
                    f"| {md_text(row_name)} | " + " | ".join(_cell(v) for v in row) + " |"
                    for row_name, row in zip(matrix.get("y_axis_name") or [], matrix["value"])
                ]
                out += ["", md_text(matrix["notes"]), ""] if matrix.get("notes") else [""]
            simple = [m for m in data if m.get("type") in ("number", "boolean", "string")]
            if simple:
                out += ["| Metric | Value | Notes |", "|---|---|---|"]
                out += [f"| {md_text(m['name'])} | {_cell(m['value'])} | {md_text(m.get('notes'))} |" for m in simple]
                out.append("")
    return out


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
