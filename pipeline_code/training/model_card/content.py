"""The content of a model version's SageMaker Model Card, built from its evaluation report (see the package docstring)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from pipeline_code.core import approval, problem
from pipeline_code.core.contract import (
    CODE_VERSION_PROPERTY,
    JOB_CODE_SHA256_PROPERTY,
    EVALUATION_FILE,
    MODEL_SPEC_SHA256_PROPERTY,
    PACKAGE_ARN,
    PIPELINE_EXECUTION_ID_PROPERTY,
    REGISTRATION_KEY,
    SPLIT_PROPERTIES,
    SPLIT_SHA256_PROPERTIES,
    TRIGGER_REASON_PROPERTY,
    model_card_name,
    package_created,
)
from pipeline_code.core.frameworks import ALGORITHMS, LIBRARIES, XGBOOST
from pipeline_code.core.integrity import ARTIFACT_KEY
from pipeline_code.core.reproducibility import RESUMED_FROM, resumed_note
from pipeline_code.training.gate import COMPARED_ADVISORY, COMPARED_OUT_OF_TIME, COMPARED_WHOLE_SET
from pipeline_code.training.metrics_regression import bias_measure_text, error_measure_text
from pipeline_code.training.spec import ModelSpec

CARD_JSON = "model_card.json"
CARD_MARKDOWN = "model_card.md"
# The custom detail naming when the card's model package was created (contract.package_created): with the package's ARN
# (model_package_details) it says which package a card describes, since a group created again reuses the ARNs.
PACKAGE_CREATED_DETAIL = "model_package_created"
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
    # Error parity (lowest / highest group relative MAE), gated by the environment's minimum disparate impact; the
    # relative bias gap (most over- minus most under-estimated group), by its maximum demographic parity difference
    # (metrics_regression).
    problem.REGRESSION: (
        ("error_parity_ratio", "error_parity", "min_disparate_impact", ">="),
        ("bias_gap", "bias_parity", "max_demographic_parity_difference", "<="),
        ("mae_difference", None, None, None),
    ),
}
# The fairness metric that is None when fairness cannot be assessed (fewer than two groups large enough).
_FAIRNESS_KEY = {problem.BINARY: "disparate_impact", problem.MULTICLASS: "disparate_impact",
                 problem.REGRESSION: "error_parity_ratio"}  # fmt: skip
# The card content's matrix limit (model card JSON schema: at most 20 rows of at most 20 numbers).
_MAX_MATRIX = 20
# Metric group names of the non-binary sections (render_markdown renders them as tables).
CLASS_METRICS = "metrics by class"
CLASS_CONFUSION = "confusion matrix by class"
ERRORS = "error distribution"
CLASS_PARITY = "parity by class across "
CLASS_SHARES = "predicted class share by "
GROUP_ERRORS = "error by "
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


def _clip(text: str, limit: int) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def as_number(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(float(value)) or math.isinf(float(value)):
        return None
    return float(value)


def figure(value: Any, digits: int = 4) -> str:
    """``0.29``, ``0.80``, ``0.999``: up to ``digits`` decimals, at least two (no rounding 0.999 to 1.00)."""
    number = as_number(value)
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
        number = as_number(value)
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


def card_name(model_package_arn: str, created: Any) -> str:
    """The card of the version ``model_package_arn`` names, created at ``created`` (its ``CreationTime``:
    :func:`~pipeline_code.core.contract.model_card_name`)."""
    return model_card_name(*parse_package_arn(model_package_arn), created)


def card_package(content: Mapping[str, Any]) -> Tuple[Optional[str], Optional[str]]:
    """(package ARN, creation time as :func:`~pipeline_code.core.contract.package_created`) of the package a card's
    content describes; None for what it does not say."""
    details = content.get("model_package_details") if isinstance(content, Mapping) else None
    extra = (content.get("additional_information") or {}).get("custom_details") if isinstance(content, Mapping) else None
    arn = details.get("model_package_arn") if isinstance(details, Mapping) else None
    created = extra.get(PACKAGE_CREATED_DETAIL) if isinstance(extra, Mapping) else None
    return (arn if isinstance(arn, str) else None), (created if isinstance(created, str) else None)


def _threshold_check(checks: Sequence[Mapping[str, Any]], name: str) -> Optional[Mapping[str, Any]]:
    return next((c for c in checks if c.get("name") == name), None)


def _kind(report: Mapping[str, Any]) -> str:
    """The report's problem type (reports of binary models may not name it)."""
    return str(report.get("problem_type") or problem.BINARY)


def _primary(report: Mapping[str, Any]) -> str:
    return str(report.get("primary_metric") or problem.default_primary_metric(_kind(report)))


def limitations(report: Mapping[str, Any]) -> List[str]:
    """Plain-language limitations: failed gate checks, an acknowledged suspected target leak, fairness not assessable,
    small slices and groups, an evaluation that is not out-of-time (a model's training data reaches the frozen test
    set's window: the note says so, and on which rows the champion was compared - the rows after both models' data,
    or the whole set and which model that favours)."""
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
            if check.get("name") == "suspected_leakage":  # passed only because the model's config acknowledges it
                out.append(str(check.get("message")))
            continue
        name, value, limit = check.get("name"), check.get("value"), check.get("threshold")
        if name == "min_auc":
            what = "macro one-vs-rest AUC" if kind == problem.MULTICLASS else "AUC"
            out.append(f"{what} {figure(value)} below the minimum {figure(limit)} (promotion gate failed)")
        elif name == "min_quality":
            side = "below" if problem.higher_is_better(metric) else "above"
            out.append(f"{label} {figure(value)} {side} the floor {figure(limit)} (promotion gate failed)")
        elif name == "challenger_margin":
            # Compared on the test rows after both models' training data when a model's reaches the set, or - too few of
            # those - on the whole set, which favours one of the two.
            rows = (f" on the {check['rows']} test rows after {check.get('after')}" if check.get("rows") is not None else
                    f" on the whole test set, which favours the {COMPARED_WHOLE_SET[check['basis']]}"
                    if check.get("basis") in COMPARED_WHOLE_SET else "")
            out.append(
                f"{label} {figure(value)} does not beat the champion's {figure(check.get('champion_value'))} by the required margin (needs {figure(limit)}){rows}"
            )
        elif name == "slice_regression":
            moved, bound = ("fell below", "floor") if problem.higher_is_better(metric) else ("rose above", "ceiling")
            out.append(
                f"slice {check.get('slice')}: {label} {figure(value)} {moved} the champion's {figure(check.get('champion_value'))} "
                f"by more than allowed ({bound} {figure(limit)})"
            )
        elif name == "calibration":
            out.append(f"expected calibration error {figure(value)} above the maximum {figure(limit)}: its scores are less "
                       "reliable as probabilities than the gate allows (promotion gate failed)")
        elif name == "demographic_parity":
            out.append(
                f"demographic parity difference across {attribute}{worst['demographic_parity']} {figure(value)} "
                f"above the maximum {figure(limit)}"
            )
        elif name == "disparate_impact":
            # A multiclass check names the class it failed on (the worst class within its noise, not the worst ratio).
            which = f" (class {check['class']})" if check.get("class") else worst["disparate_impact"]
            out.append(f"disparate impact across {attribute}{which} {figure(value)} below {figure(limit)}")
        elif name == "error_parity":
            out.append(f"error parity across {attribute} (lowest / highest group MAE) {figure(value)} below {figure(limit)}")
        elif name == "bias_parity":
            out.append(f"bias gap across {attribute} ({check.get('over_estimated')} over- vs {check.get('under_estimated')} "
                       f"under-estimated) {figure(value)} above the maximum {figure(limit)}")
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
    not_out_of_time = (report.get("out_of_time") or {}).get("note")
    if not_out_of_time:
        out.append(str(not_out_of_time))
    if report.get("champion_not_compared"):
        out.append(
            f"the champion was not compared ({report['champion_not_compared']}): judged as the first model of its group"
        )
    elif report.get("champion") is None:
        out.append("no champion comparison: this was the first model of its group")
    # A version that answers its callers in another shape: why it awaits a person even where registration auto-approves.
    held = approval.registration_note(report.get(REGISTRATION_KEY), shown=report.get("champion_not_compared"))
    if held:
        out.append(held)
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
        # A report from before frameworks were recorded is an XGBoost model's.
        "algorithm_type": ALGORITHMS.get(str(card.info.get("framework", XGBOOST)), str(card.info.get("framework"))),
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
            f"the mean absolute error is {figure(metrics.get('mae'))}: half the predictions are within "
            f"{figure(quantiles.get('p50'))} of the true value, 90% within {figure(quantiles.get('p90'))}; the mean of "
            f"'{spec.target}' there is {figure(metrics.get('mean_target'))}. "
        )
    return (
        f"Scores {inputs} and returns the "
        f"probability that '{spec.target}' is true; a score >= {figure(card.threshold)} is a positive prediction "
        f"({card.threshold_origin}). "
    )


def _test_set_sentence(card: _Evaluated) -> str:
    """How the test set relates in time to the data the model learnt from: out-of-time only when the training data
    (the period its artefact records, evaluate's ``out_of_time`` block) ends before the test set begins."""
    time_range = card.report["test_set"].get("time_range") or {}
    span = f"{time_range.get('min', '?')} to {time_range.get('max', '?')}"
    judged = card.report.get("out_of_time") or {}
    until = judged.get("challenger_data_until")
    if judged.get("challenger") is True:
        return f"Performance was measured on a frozen, out-of-time test set ({span}; the training data ends {until})"
    if judged.get("challenger") is False:
        return (f"Performance was measured on a frozen test set ({span}) that the training data reaches (to {until}): "
                "not an out-of-time evaluation, see the caveats")
    return (f"Performance was measured on a frozen, time-split test set ({span}); the training data period is not "
            "recorded, so whether it precedes the test set is unknown")


def _intended_uses(card: _Evaluated) -> Dict[str, Any]:
    spec = card.spec
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
            f"{_test_set_sentence(card)}; drift in the input features or "
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
    # The prepared splits the version learnt from (Prepare's outputs, as registered): with the hyperparameters, the
    # model spec and the code (custom details) what retraining it bit for bit needs (docs/training.md, Reproducibility).
    metadata = card.package.get("CustomerMetadataProperties") or {}
    datasets = [str(metadata[SPLIT_PROPERTIES[split]]) for split in ("train", "validation") if metadata.get(SPLIT_PROPERTIES[split])]
    if datasets:
        job["training_datasets"] = datasets
    if training_metrics:
        job["training_metrics"] = training_metrics
    if hyper:
        job["hyper_parameters"] = hyper[:100]
    resumed = resumed_note(info)
    training: Dict[str, Any] = {
        "training_observations": _clip(
            f"{_model_size(info)} on {len(card.spec.features)} features{_rows_text(info, card.spec.classes)}; trained at "
            f"{info.get('trained_at') or 'unknown'} {_data_period_text(info)}."
            + (f" Training {resumed}." if resumed else "") + _loss_text(info),
            _MAX["description"],
        )
    }
    if job:
        training["training_job_details"] = job
    return training


def _loss_text(info: Mapping[str, Any]) -> str:
    """What a regression model trained on a loss other than squared error minimised, as a sentence ("" otherwise)."""
    loss = info.get("loss")
    if not loss or loss == problem.SQUARED_ERROR or loss not in problem.LOSSES:
        return ""
    power = f" with variance power {info['tweedie_variance_power']:g}" if info.get("tweedie_variance_power") else ""
    return (f" Trained on loss {loss}{power} (XGBoost {problem.xgboost_objective(problem.REGRESSION, loss)}): its "
            f"predictions are means of the target, always above 0.")


def _rows_text(info: Mapping[str, Any], classes: Sequence[str] = ()) -> str:
    """How many rows the model learnt from (its artefact's ``train_rows`` / ``validation_rows``) and the training base
    rate (binary: ``train_positive_rate``) or each of ``classes``' share (multiclass: ``train_class_shares``), as a
    clause: the training data's size and class balance."""
    train, validation = info.get("train_rows"), info.get("validation_rows")
    if not isinstance(train, int) or not isinstance(validation, int):
        return " (how many rows it learnt from is not recorded)"
    rate, shares = as_number(info.get("train_positive_rate")), info.get("train_class_shares")
    balance = f" ({100 * rate:.2f} % positive)" if rate is not None else ""
    if isinstance(shares, list) and classes and len(shares) == len(classes):
        balance = " (classes: " + ", ".join(f"{name} {100 * (as_number(share) or 0.0):.2f} %"
                                            for name, share in zip(classes, shares)) + ")"
    return f", learnt from {train} training rows{balance} and {validation} validation rows"


def _data_period_text(info: Mapping[str, Any]) -> str:
    """The event-time span of the rows the model learnt from (its artefact's ``data_period``), as a sentence's end."""
    period = info.get("data_period") or {}
    train, validation = period.get("train") or {}, period.get("validation") or {}
    if not train or not validation:
        return "(its training data period is not recorded)"
    return (f"on records from {train.get('min')} to {train.get('max')} (validation records from {validation.get('min')} "
            f"to {validation.get('max')})")


def _model_size(info: Dict[str, Any]) -> str:
    """What was fitted, in the framework's terms (evaluate's model_info: rounds, or a network's parameters)."""
    if "parameters" in info:
        return f"a tabular network of {info['parameters']} parameters ({info.get('layers', '?')} layers)"
    return f"{info.get('rounds', '?')} boosting rounds"


def _evaluation_details(card: _Evaluated, test_set_uri: Optional[str]) -> Dict[str, Any]:
    gate, test_set, champion = card.gate, card.report["test_set"], card.champion
    groups = [*_performance_groups(card), *_fairness_groups(card), *_slice_groups(card), _gate_group(card)]
    evaluation: Dict[str, Any] = {
        "name": _clip(f"frozen test set {str(test_set.get('sha256', ''))[:12]}".strip(), _MAX["group"]),
        "evaluation_observation": _clip(
            f"Gate {'PASSED' if gate.get('passed') else 'FAILED'}: " + "; ".join(gate.get("reasons") or [])
            + _auc_uncertainty(card), _MAX["observation"]
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
    kept = [(label, value) for label, value in pairs if as_number(value) is not None]
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


def auc_interval(metrics: Mapping[str, Any], z: float = 1.959964) -> Optional[Tuple[float, float]]:
    """The 95 % confidence interval of a binary model's test AUC from its positives and rows (Hanley & McNeil 1982,
    "The meaning and use of the area under a ROC curve": its standard error from the AUC and the two class counts);
    None when the metrics do not hold them or a class is empty."""
    auc, positives, rows = as_number(metrics.get("auc")), as_number(metrics.get("positives")), as_number(metrics.get("rows"))
    if auc is None or positives is None or rows is None or not 0 < positives < rows:
        return None
    n1, n0 = positives, rows - positives
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    error = math.sqrt(max(0.0, auc * (1 - auc) + (n1 - 1) * (q1 - auc * auc) + (n0 - 1) * (q2 - auc * auc)) / (n1 * n0))
    return max(0.0, auc - z * error), min(1.0, auc + z * error)


def _auc_uncertainty(card: _Evaluated) -> str:
    """A binary card's sentence on how precisely its test set measures AUC (the challenger's and the champion's 95 %
    intervals; each AUC's own: the two are measured on the same rows, so overlapping intervals are no test of their
    difference). "" else."""
    if card.kind != problem.BINARY:
        return ""
    mine = auc_interval(card.metrics)
    if mine is None:
        return ""
    positives, rows = int(card.metrics["positives"]), int(card.metrics["rows"])
    text = (f". AUC {figure(card.metrics['auc'])}, 95 % confidence interval {mine[0]:.4f} to {mine[1]:.4f} ({positives} "
            f"positives, {rows - positives} negatives; Hanley & McNeil)")
    theirs = auc_interval((card.champion or {}).get("metrics") or {})
    if theirs is not None:
        text += (f"; the champion's {figure(card.champion['metrics']['auc'])}, {theirs[0]:.4f} to {theirs[1]:.4f} on the "
                 "same rows")
    return text + "."


def _performance_groups(card: _Evaluated) -> List[Optional[Dict[str, Any]]]:
    """Headline metrics of the challenger (and the champion and their difference), then per problem type:
    the confusion matrix and ROC curve (binary), metrics and confusion per class (multiclass), error quantiles (regression)."""
    metrics, champion, headline = card.metrics, card.champion, _HEADLINE[card.kind]
    if card.primary_metric not in headline:  # the metric the gate judged on is always shown
        headline = (*headline, card.primary_metric)
    interval = auc_interval(metrics) if card.kind == problem.BINARY else None
    notes = {"auc": f"95 % confidence interval {interval[0]:.4f} to {interval[1]:.4f} (Hanley & McNeil)"} if interval else {}
    groups: List[Optional[Dict[str, Any]]] = [
        _group("challenger (this version)", [_metric(m, metrics.get(m), notes.get(m)) for m in headline])]
    if champion:
        champion_metrics = champion.get("metrics") or {}
        source = champion.get("source") or {}
        groups.append(
            _group("champion", [_metric(m, champion_metrics.get(m), source.get("model_package_arn")) for m in headline])
        )
        comparison = card.report.get("comparison") or {}
        groups.append(_group(_comparison_group_name(card.report), [_metric(k, v) for k, v in sorted(comparison.items())]))
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


def _comparison_group_name(report: Mapping[str, Any]) -> str:
    """The challenger-minus-champion group's name, saying which rows its deltas are of when a model's training data
    reaches the test set (evaluate's ``out_of_time.comparison``): the rows after both models' data, or the whole set
    and the model it favours (the caveats say why); ``advisory`` in a report written before the gate compared on the
    whole set, which it then did not judge. At most 63 characters (a metric group's name)."""
    compared = (report.get("out_of_time") or {}).get("comparison") or {}
    basis = compared.get("basis")
    if basis == COMPARED_OUT_OF_TIME:
        return f"challenger minus champion, {compared.get('rows')} out-of-time rows"
    if basis in COMPARED_WHOLE_SET:
        return f"challenger minus champion, whole set (favours {COMPARED_WHOLE_SET[basis]})"
    if basis == COMPARED_ADVISORY:
        return "challenger minus champion (advisory, not gated)"
    return "challenger minus champion"


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
    groups: List[Optional[Dict[str, Any]]] = [_group(CLASS_METRICS, charts)]
    if matrix and fits:
        groups.append(
            {
                "name": CLASS_CONFUSION,
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
        ERRORS,
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
            note = f"threshold {op} {figure(limit)}: {'pass' if check.get('passed') else 'FAIL'}"
        elif limit is not None:
            note = f"threshold {op} {figure(limit)}: not assessable"
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
            note = f"lowest / highest group {error_measure_text(fairness)}; {note}"
        elif kind == problem.REGRESSION and metric == "bias_gap":
            note = (f"{fairness.get('most_over_estimated_group')} over- vs {fairness.get('most_under_estimated_group')} "
                    f"under-estimated, {bias_measure_text(fairness)}; {note}")
        entry = _metric(metric, fairness.get(metric), note)
        fairness_metrics.append(entry)
        if entry is not None and limit is not None:
            fairness_metrics.append(_metric(f"{metric} threshold", limit, f"the gate's {'maximum' if op == '<=' else 'minimum'}"))
    groups = [_group(f"fairness across {attribute}", fairness_metrics)]
    if kind == problem.MULTICLASS:
        return groups + _class_fairness_groups(card)
    if kind == problem.REGRESSION:
        return groups + [_error_fairness_group(card)]
    by_group = [(g, float(e["positive_rate"])) for g, e in sorted((fairness.get("groups") or {}).items())
                if as_number(e.get("positive_rate")) is not None]
    groups.append(_group(f"positive rate by {attribute}", [
        _bar_chart(f"positive prediction rate by {attribute}", by_group, "positive rate",
                   "groups used for the fairness metrics: " + (", ".join(fairness.get("eligible_groups") or []) or "none")),
    ]))
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
            _clip(CLASS_PARITY + attribute, _MAX["group"]),
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
    shares = [(g, s) for g, s in shares if all(as_number(s.get(c)) is not None for c in classes)]
    if shares and classes and len(shares) <= _MAX_MATRIX and len(classes) <= _MAX_MATRIX:
        groups.append(
            {
                "name": _clip(CLASS_SHARES + attribute, _MAX["group"]),
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
        _clip(GROUP_ERRORS + attribute, _MAX["group"]),
        [
            _bar_chart(f"MAE by {attribute}", [(g, e.get("mae")) for g, e in entries], "mean absolute error", note),
            _bar_chart(f"bias by {attribute}", [(g, e.get("bias")) for g, e in entries], "mean prediction - target",
                       "positive: over-predicts for the group"),
            _bar_chart(f"test rows by {attribute}", [(g, e.get("rows")) for g, e in entries], "test rows"),
        ],
    )  # fmt: skip


def _slice_groups(card: _Evaluated) -> List[Optional[Dict[str, Any]]]:
    """The primary metric (binary: AUC) per value of each slice column."""
    groups = []
    metric = "auc" if card.kind == problem.BINARY else card.primary_metric
    label = problem.label(metric)
    for column, block in sorted((card.challenger.get("slices") or {}).items()):
        values = [(v, e) for v, e in sorted((block.get("values") or {}).items()) if as_number(e.get(metric)) is not None]
        groups.append(_group(f"{label} by {column}", [
            _bar_chart(f"{label} by {column}", [(v, float(e[metric])) for v, e in values], label,
                       "test rows: " + ", ".join(f"{v}={e.get('rows')}" for v, e in values)),
        ]))
    return groups


def _gate_group(card: _Evaluated) -> Optional[Dict[str, Any]]:
    """The gate's verdict and every check it made (``min_auc``, ``min_quality``, ``challenger_margin``,
    ``slice_regression``, ``fairness_evidence``, ``demographic_parity``, ``disparate_impact``, ``bias_parity``,
    ``error_parity``, ``calibration``)."""
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
            f"each class, how evenly the groups are predicted it. Worst class: disparate impact {figure(di)} (class "
            f"{fairness.get('disparate_impact_class') or 'n/a'}; minimum {figure(thresholds.get('min_disparate_impact'))}), "
            f"demographic parity difference {figure(dpd)} (class {fairness.get('demographic_parity_class') or 'n/a'}; maximum "
            f"{figure(thresholds.get('max_demographic_parity_difference'))}), equal opportunity difference "
            f"{figure(fairness.get('equal_opportunity_difference'))}. Other protected characteristics are not measured."
        )
    if card.kind == problem.REGRESSION:
        return (
            f"Fairness is measured across '{card.attribute}' (not a model input) as error parity: the lowest over the "
            f"highest group {error_measure_text(fairness, long=True)} "
            f"{figure(fairness.get('error_parity_ratio'))} (minimum {figure(thresholds.get('min_disparate_impact'))}), "
            f"the gap between the most over- and most under-estimated group's {bias_measure_text(fairness)} "
            f"{figure(fairness.get('bias_gap'))} (maximum {figure(thresholds.get('max_demographic_parity_difference'))}; "
            f"over: {fairness.get('most_over_estimated_group') or 'n/a'}, under: "
            f"{fairness.get('most_under_estimated_group') or 'n/a'}), "
            f"MAE difference {figure(fairness.get('mae_difference'))} (highest error: "
            f"{fairness.get('highest_error_group') or 'n/a'}, lowest: {fairness.get('lowest_error_group') or 'n/a'}). "
            "Other protected characteristics are not measured."
        )
    return (
        f"Fairness is measured across '{card.attribute}' (not a model input): disparate impact {figure(di)} "
        f"(minimum {figure(thresholds.get('min_disparate_impact'))}), demographic parity difference {figure(dpd)} "
        f"(maximum {figure(thresholds.get('max_demographic_parity_difference'))}), equal opportunity difference "
        f"{figure(fairness.get('equal_opportunity_difference'))}. Other protected characteristics are not measured."
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
    # What two versions trained alike share (docs/training.md "Reproducibility"), and the checkpoint a resumed run started from.
    content_digest = (card.report.get(ARTIFACT_KEY) or {}).get("model_content_sha256")
    if content_digest:
        custom["model_content_sha256"] = str(content_digest)
    for key in RESUMED_FROM:
        if card.info.get(key) is not None:
            custom[key] = str(card.info[key])
    # The library version that trained it (what a rebuild installs); the image it serves in is in the package details.
    if card.info.get("framework_version"):
        framework = str(card.info.get("framework", XGBOOST))
        custom["framework_version"] = _clip(f"{LIBRARIES.get(framework, framework)} {card.info['framework_version']}",
                                            _MAX["custom"])
    libraries = card.info.get("libraries")
    if isinstance(libraries, Mapping) and libraries:
        custom["libraries"] = _clip(", ".join(f"{name} {version}" for name, version in libraries.items()), _MAX["custom"])
    if card.package.get("CreationTime"):
        custom[PACKAGE_CREATED_DETAIL] = package_created(card.package["CreationTime"])
    metadata = card.package.get("CustomerMetadataProperties") or {}
    # The job code by content: the digest every job of the run verified its code zip against before running it.
    # ... and what the version was built from by content: the model spec (features, hyperparameters, the dataset's
    # declaration) and each prepared split, so a rebuild can prove it used the same inputs once the package is gone.
    for key in (CODE_VERSION_PROPERTY, JOB_CODE_SHA256_PROPERTY, MODEL_SPEC_SHA256_PROPERTY, *SPLIT_SHA256_PROPERTIES.values(),
                TRIGGER_REASON_PROPERTY, PIPELINE_EXECUTION_ID_PROPERTY):
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
    # The inference container the version registered: its image by tag (AWS may republish a tag with patches; the
    # endpoint's DeployedImages name the digest it resolved) and the sealed archive.
    containers = [
        {"image": c["Image"], **({"model_data_url": c["ModelDataUrl"]} if c.get("ModelDataUrl") else {})}
        for c in (package.get("InferenceSpecification") or {}).get("Containers") or [] if c.get("Image")
    ]
    if containers:
        details["inference_specification"] = {"containers": containers}
    return details


