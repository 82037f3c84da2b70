"""The model specification and the gate thresholds, as the job scripts receive them.

A model is configuration (``config/mlops-loop.yaml``); the pipeline hands each job the
model's entry as one JSON argument::

    --model-spec '{"name": "churn", "dataset": {"name": "customer_churn", "columns": {...}, ...},
                   "target": "churned", "features": ["tenure_months", ...],
                   "sensitive_attribute": "gender", "slices": ["contract_type", "region"]}'

``dataset`` is the dataset's whole declaration (:meth:`catalog.Dataset.to_declaration`), so a job
needs nothing but its spec. :func:`parse_model_spec` parses it with :func:`catalog.parse_dataset`,
checks the model against it and fails with one line per problem. Accepted forms: the JSON object; a JSON string holding
it (what a script-mode hyperparameter must be, since the training toolkit JSON-decodes
hyperparameter values and would flatten a dict to ``k=v,k=v``); a Python ``repr`` of the
dict (parsed with :func:`ast.literal_eval`, never ``eval``). SageMaker caps a
container argument at 256 characters, so the value may also be the *path* of a JSON file
holding the spec (or of a directory holding exactly one ``*.json``), e.g.
``/opt/ml/processing/input/model_spec/churn.json``.

Gate thresholds come from one CLI argument per row of :data:`~pipeline_code.core.thresholds.THRESHOLDS`
(``--min-auc`` ...) and the evidence minimums, see :func:`add_gate_arguments`.
"""

from __future__ import annotations

import argparse
import ast
import glob
import json
import os
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple

from pipeline_code import catalog
from pipeline_code.core import problem
from pipeline_code.core.contract import model_spec_document
from pipeline_code.core.decision import DecisionError, DecisionPolicy, parse_class_weight, parse_decision
from pipeline_code.argtypes import non_negative_int as _non_negative_int, number as _float, positive_int as _positive_int
from pipeline_code.core.thresholds import DEFAULT_GATE, EVIDENCE, THRESHOLDS, GateThresholds, SpecError, Threshold, evidence_flag  # noqa: F401 - the jobs' names for them

# Keys a model entry of the YAML may carry that the jobs do not use (ignored, not errors).
_IGNORED_SPEC_KEYS = ("description", "serving")
_REQUIRED_SPEC_KEYS = ("name", "dataset", "target", "features", "sensitive_attribute")
_OPTIONAL_SPEC_KEYS = ("slices", "decision", "class_weight", "problem_type", "primary_metric", "min_quality",
                       "leakage_acknowledged", "loss", "tweedie_variance_power")


@dataclass(frozen=True)
class ModelSpec:
    """One model: which dataset, which label, which features, how fairness/slices are reported.

    ``features`` are the model inputs in order; ``sensitive_attribute`` is a categorical
    feature used only for fairness reporting (never an input); ``slices`` are categorical
    features the metrics are broken down by.
    """

    name: str
    catalog_dataset: catalog.Dataset
    target: str
    features: Tuple[str, ...]
    sensitive_attribute: str
    slices: Tuple[str, ...] = ()
    decision: DecisionPolicy = DecisionPolicy()
    class_weight: str = "none"
    problem_type: str = problem.BINARY
    primary_metric: str = "auc"
    min_quality: Optional[float] = None
    # Why a suspected target leak (near-perfect score, one dominant feature) is genuine: the gate then accepts it.
    leakage_acknowledged: Optional[str] = None
    # A regression model's loss (core.problem.LOSSES) and, for tweedie, its variance power (None: the default 1.5).
    loss: str = problem.SQUARED_ERROR
    tweedie_variance_power: Optional[float] = None

    @property
    def deviance(self) -> Optional[Tuple[str, float]]:
        """The (report name, Tweedie power) of the mean deviance Evaluate adds for the model's loss: poisson 1, tweedie
        its power, gamma 2; None for squared error (and classifiers)."""
        name = problem.deviance_metric(self.problem_type, self.loss)
        if name is None:
            return None
        return name, {problem.POISSON: 1.0, problem.GAMMA: 2.0}.get(self.loss, self.tweedie_power)

    @property
    def tweedie_power(self) -> float:
        return problem.DEFAULT_TWEEDIE_POWER if self.tweedie_variance_power is None else float(self.tweedie_variance_power)

    @property
    def classes(self) -> Tuple[str, ...]:
        """The target's classes in label-code order (``()`` for regression), see :func:`catalog.target_classes`."""
        return catalog.target_classes(self.catalog_dataset.column(self.target), self.problem_type)

    @property
    def quality_floor(self) -> Optional[float]:
        """The primary metric's floor besides ``min_auc`` (:func:`core.problem.quality_floor`)."""
        return problem.quality_floor(self.problem_type, self.primary_metric, self.min_quality)

    @property
    def dataset(self) -> str:
        """The dataset's name (the lake and feature-snapshot prefixes are named after it)."""
        return self.catalog_dataset.name

    @property
    def record_identifier(self) -> str:
        return self.catalog_dataset.record_identifier

    @property
    def event_time(self) -> str:
        return self.catalog_dataset.event_time

    def feature_type(self, name: str) -> str:
        """Feature Store type (Integral / Fractional / String) of a dataset feature."""
        return self.catalog_dataset.feature(name).feature_type

    def is_categorical(self, name: str) -> bool:
        return self.feature_type(name) == catalog.FS_STRING

    @property
    def frame_features(self) -> Tuple[str, ...]:
        """Every feature column a prepared frame carries: model inputs, sensitive attribute, slices."""
        out: List[str] = list(self.features)
        for name in (self.sensitive_attribute, *self.slices):
            if name not in out:
                out.append(name)
        return tuple(out)

    def to_dict(self) -> Dict[str, Any]:
        return model_spec_document(
            name=self.name, dataset=self.catalog_dataset.to_declaration(), target=self.target, features=self.features,
            sensitive_attribute=self.sensitive_attribute, slices=self.slices, decision=self.decision.to_dict(),
            class_weight=self.class_weight, problem_type=self.problem_type, primary_metric=self.primary_metric,
            min_quality=self.min_quality, leakage_acknowledged=self.leakage_acknowledged, loss=self.loss,
            tweedie_variance_power=self.tweedie_variance_power,
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def parse_model_spec(value: Any) -> ModelSpec:
    """A validated :class:`ModelSpec` from a JSON string, a Python-literal string or a mapping.

    Raises:
        SpecError: unparseable text, missing/unknown keys, or anything that disagrees
            with the catalog (unknown dataset, target not a label, unknown feature,
            sensitive attribute used as an input, non-categorical slice ...).
    """
    data = _load(value)
    problems: List[str] = []
    missing = [k for k in _REQUIRED_SPEC_KEYS if k not in data]
    if missing:
        problems.append(f"missing keys {missing}")
    known = set(_REQUIRED_SPEC_KEYS) | set(_OPTIONAL_SPEC_KEYS) | set(_IGNORED_SPEC_KEYS)
    unknown = sorted(k for k in data if k not in known)
    if unknown:
        problems.append(f"unknown keys {unknown} (allowed: {sorted(known)})")
    if problems:
        raise SpecError("invalid --model-spec: " + "; ".join(problems))

    name = data["name"]
    if not isinstance(name, str) or not name.strip():
        problems.append(f"'name' must be a non-empty string, got {name!r}")
    if not isinstance(data["dataset"], Mapping):
        raise SpecError(f"invalid --model-spec: 'dataset' must be the dataset's declaration (a JSON object, as "
                        f"ModelConfig.job_spec writes it), got {data['dataset']!r}")
    try:
        dataset = catalog.load_dataset(data["dataset"])
    except catalog.DeclarationError as exc:
        raise SpecError(f"invalid --model-spec: 'dataset' must be the dataset's declaration: {'; '.join(exc.problems)}") from None
    features = _string_list(data["features"], "features", problems)
    slices = _string_list(data.get("slices", []), "slices", problems)
    target = data["target"]
    sensitive = data["sensitive_attribute"]

    problem_type = data.get("problem_type", problem.BINARY)
    primary_metric = data.get("primary_metric")
    min_quality = data.get("min_quality")
    loss = data.get("loss", problem.SQUARED_ERROR)
    power = data.get("tweedie_variance_power")
    wrong_metric = problem.primary_metric_problem(problem_type, primary_metric, loss)
    if wrong_metric:
        problems.append(f"primary_metric: {wrong_metric}" if problem_type in problem.PROBLEM_TYPES else wrong_metric)
    if min_quality is not None and (isinstance(min_quality, bool) or not isinstance(min_quality, (int, float))
                                    or min_quality != min_quality):
        problems.append(f"min_quality must be a number, got {min_quality!r}")
    if target not in dataset.labels:
        problems.append(f"target {target!r} is not a label of dataset {dataset.name!r} (labels: {list(dataset.labels)})")
    elif problem_type in problem.PROBLEM_TYPES and catalog.target_problem(dataset.column(target), problem_type):
        problems.append(f"target {target!r}: {catalog.target_problem(dataset.column(target), problem_type)}")
    else:
        wrong_loss = problem.loss_problem(problem_type, loss, power, target, dataset.column(target).minimum)
        if wrong_loss:
            problems.append(wrong_loss)
    known_features = list(dataset.feature_names)
    unknown_features = [f for f in features if f not in known_features]
    if unknown_features:
        problems.append(f"features {unknown_features} are not features of dataset {dataset.name!r} (known: {known_features})")
    duplicates = sorted({f for f in features if features.count(f) > 1})
    if duplicates:
        problems.append(f"features listed more than once: {duplicates}")
    if not features:
        problems.append("'features' must list at least one feature")
    if not isinstance(sensitive, str) or sensitive not in known_features:
        problems.append(f"sensitive_attribute {sensitive!r} is not a feature of dataset {dataset.name!r}")
    else:
        if dataset.feature(sensitive).feature_type != catalog.FS_STRING:
            problems.append(f"sensitive_attribute {sensitive!r} must be a categorical (String) feature")
        if sensitive in features:
            problems.append(f"sensitive_attribute {sensitive!r} must not be a model input (remove it from 'features')")
    for s in slices:
        if s not in known_features:
            problems.append(f"slice {s!r} is not a feature of dataset {dataset.name!r}")
        elif dataset.feature(s).feature_type != catalog.FS_STRING:
            problems.append(f"slice {s!r} must be a categorical (String) feature")
    ambiguous = None if unknown_features else dataset.raw_request_problem(
        features, [name for name in (sensitive, *slices) if isinstance(name, str)])
    if ambiguous:
        problems.append(f"features: {ambiguous}")
    decision, class_weight = DecisionPolicy(), "none"
    try:
        decision = parse_decision(data.get("decision"))
        class_weight = parse_class_weight(data.get("class_weight"))
    except DecisionError as exc:
        problems.extend(exc.problems)
    acknowledged = data.get("leakage_acknowledged")
    if acknowledged is not None and (not isinstance(acknowledged, str) or not acknowledged.strip()):
        problems.append(f"leakage_acknowledged must be the reason (a non-empty string), got {acknowledged!r}")
    if problem_type != problem.BINARY and (decision != DecisionPolicy() or class_weight != "none"):
        problems.append(f"decision and class_weight apply to {problem.BINARY} models only (this one is {problem_type})")
    if problems:
        raise SpecError(f"invalid --model-spec for model {name!r}: " + "; ".join(problems))
    return ModelSpec(
        name=name,
        catalog_dataset=dataset,
        target=target,
        features=tuple(features),
        sensitive_attribute=sensitive,
        slices=tuple(slices),
        decision=decision,
        class_weight=class_weight,
        problem_type=problem_type,
        primary_metric=primary_metric or problem.default_primary_metric(problem_type),
        min_quality=None if min_quality is None else float(min_quality),
        leakage_acknowledged=acknowledged,
        loss=loss,
        tweedie_variance_power=None if power is None else float(power),
    )


def _load(value: Any) -> Mapping[str, Any]:
    if isinstance(value, ModelSpec):
        return value.to_dict()
    if isinstance(value, Mapping):
        return value
    if not isinstance(value, str):
        raise SpecError(f"invalid --model-spec: expected a JSON object, got {type(value).__name__}")
    text = value.strip()
    if text and text[0] not in "{\"'":
        text = _read_spec_file(text)
    try:
        data = json.loads(text)
    except ValueError:
        try:
            data = ast.literal_eval(text)  # the training toolkit's str(dict); literals only
        except (ValueError, SyntaxError):
            raise SpecError(f"invalid --model-spec: not a JSON object: {text[:200]!r}") from None
    if isinstance(data, str):  # doubly encoded JSON (a JSON string holding the object)
        return _load(data)
    if not isinstance(data, Mapping):
        raise SpecError(f"invalid --model-spec: expected a JSON object, got {type(data).__name__}")
    return data


def _read_spec_file(path: str) -> str:
    """The text of a spec file (a directory must hold exactly one ``*.json``)."""
    if os.path.isdir(path):
        candidates = sorted(glob.glob(os.path.join(path, "*.json")))
        if len(candidates) != 1:
            raise SpecError(f"invalid --model-spec: directory {path!r} must hold exactly one *.json, found {len(candidates)}")
        path = candidates[0]
    if not os.path.isfile(path):
        raise SpecError(f"invalid --model-spec: neither a JSON object nor an existing file: {path[:200]!r}")
    with open(path, encoding="utf-8") as handle:
        return handle.read().strip()


def _string_list(value: Any, key: str, problems: List[str]) -> List[str]:
    if isinstance(value, str):  # a comma-separated string is a common hand-written form
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        problems.append(f"{key!r} must be a list of strings, got {value!r}")
        return []
    return list(value)


def model_spec_arg(value: str) -> ModelSpec:
    """argparse ``type=`` converter: a SpecError becomes an argparse usage error."""
    try:
        return parse_model_spec(value)
    except SpecError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_model_spec_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model-spec",
        "--model_spec",
        dest="model_spec",
        required=True,
        type=model_spec_arg,
        help="the model's configuration as a JSON object (name, dataset, target, features, "
        "sensitive_attribute, slices)",
    )


def add_gate_arguments(parser: argparse.ArgumentParser, defaults: Optional[GateThresholds] = None) -> None:
    """``--min-auc --challenger-margin --max-slice-regression --max-demographic-parity-difference
    --min-disparate-impact --max-calibration-error`` (one per :data:`THRESHOLDS` row) and the evidence minimums ``--min-slice-rows --min-group-rows --min-slice-positives
    --min-predicted-positives`` (underscore spellings accepted too)."""
    d = defaults or DEFAULT_GATE
    group = parser.add_argument_group("gate thresholds")
    for threshold in THRESHOLDS:
        default = getattr(d, threshold.field)
        group.add_argument(threshold.flag, f"--{threshold.field}", dest=threshold.field, type=_float, default=default,
                           help=f"{threshold.help} (default {default})")
    for name, _, _ in EVIDENCE:
        add_evidence_argument(group, name, getattr(d, name))


def add_evidence_argument(parser: Any, name: str, default: int) -> None:
    """The flag of one evidence minimum of :data:`EVIDENCE` (``--min-group-rows`` and ``--min_group_rows``), typed by
    its lowest value."""
    low, help_text = next((low, text) for field, low, text in EVIDENCE if field == name)
    parser.add_argument(evidence_flag(name), f"--{name}", dest=name, type=_positive_int if low else _non_negative_int,
                        default=default, help=f"{help_text} (default {default})")


def thresholds_from_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> GateThresholds:
    """GateThresholds from parsed args; a range error becomes a usage error (exit 2)."""
    try:
        return GateThresholds.from_args(args)
    except SpecError as exc:
        parser.error(str(exc))
        raise  # pragma: no cover - parser.error exits

