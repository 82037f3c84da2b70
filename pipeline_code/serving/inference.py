"""Inference hooks of the mlops-loop models for the stock SageMaker XGBoost image (script mode;
:mod:`pipeline_code.core.images` names its version).

The container imports the module named by ``SAGEMAKER_PROGRAM`` (``serve_entry.py`` on a single-model
container, whose ``transform_fn`` runs them; ``mme_entry.py`` on a multi-model one, which delegates to them) and,
per request, they run as::

    model = model_fn(model_dir)                      # once per worker; model_dir = /opt/ml/model
    data = input_fn(request_body, content_type)      # bytes (or str) + the Content-Type header
    prediction = predict_fn(data, model)
    body, content_type = output_fn(prediction, accept)

The full contract with examples is ``docs/invocation-contract.md``; in short:

**Model artefact** (what ``train.py`` writes, SageMaker tars it to ``model.tar.gz``):
``model.json`` (an XGBoost booster, or a PyTorch model's network in :mod:`pipeline_code.training.network`'s
format, scored with numpy) and ``feature_metadata.json`` (feature order, per-feature
kind, fixed categorical levels, normalisation, threshold, training summary).

**Requests.** ``application/json``: ``{"instances": [record, ...]}``, a list of records, or
one record. ``application/jsonlines``: one record per line. ``text/csv``: one record per line,
the model's features in ``feature_order`` (no header, empty field = missing). A JSON record is
either

* *precomputed features* - an object holding **every** model feature (e.g. read from the
  online Feature Store; numbers may be numeric strings, as ``GetRecord`` returns them), or a
  list of values in ``feature_order``; or
* *raw source fields* - an object with the curated columns the catalog's feature expressions
  read. The features are computed by :func:`pipeline_code.features.compute.compute_features`,
  the same interpreter that built the training features. Non-nullable source columns are
  required; nullable ones may be omitted or null.

An object holding every model feature is always taken as precomputed (also when it carries
raw fields too); a sensitive attribute or slice it does not give is computed from the raw columns
it holds, when it holds them all (:func:`.records.feature_rows`). Other keys are ignored;
``inference_id`` is echoed in the prediction.

**Encoding** is :func:`pipeline_code.training.model_io.predict` with the stored metadata -
the function evaluation uses - so categories are trimmed/lower-cased as in training and
unseen categories score as missing values.

**On ml.inf2** (``MLOPS_LOOP_SERVE_COMPILED=torch-neuronx``, set by the serving stack) a network's dense layers
run in the artefact's Neuron-compiled module, requests padded to its static batch
(:class:`pipeline_code.training.neuron.CompiledNetwork`); everything else - parsing, encoding, the answer - is
this code, so the contract is the same. An artefact that was not compiled by that compiler does not load.

**Responses** depend on the model's problem type (``problem_type`` in ``feature_metadata.json``,
:mod:`pipeline_code.core.problem`; absent = binary). Per record, in request order:

* binary classification: ``{"score": p, "label": 0|1}``; ``score`` = P(target = 1), ``label`` =
  ``score >= threshold`` with the threshold stored in the artefact (0.5 when absent); CSV: the score;
* multiclass classification: ``{"label": "<class>", "score": p, "probabilities": {"<class>": p, ...}}``;
  ``label`` = the most probable class (the first one on a tie), ``score`` = its probability,
  ``probabilities`` one per class in the artefact's ``classes`` order; CSV: the class name;
* regression: ``{"value": v}``, the predicted value; CSV: the value.

``application/json`` (default): ``{"predictions": [record answer, ...], "model": {"name", "version",
"artefact_sha256", "trained_at"}}``; ``application/jsonlines``: one record answer per line, same order
and count as the input records; ``text/csv``: one line per record. A record's ``inference_id`` is echoed
in its JSON answer. A non-finite model output (NaN, infinity) is never answered: the request is refused
(:class:`ModelOutputError`, 500: the model is broken, not the request) naming the records.

Parsing and feature computation live in :mod:`.records` (no xgboost there).

**Errors** are :class:`InvocationError` subclasses carrying ``status_code`` (400 bad record,
406 unsupported Accept, 415 unsupported Content-Type; 500 for an unloadable model or a non-finite
model output). They inherit from the container's ``BaseInferenceToolkitError`` (see
:func:`.errors.toolkit_error_bases`), which ``sagemaker_inference``'s transformer (multi-model endpoints, the
Neuron image) answers with that HTTP status and the message. The XGBoost image's single-model toolkit
(sagemaker-containers) answers any exception of a hook with a 500 instead, so a single-model container calls
:func:`.serve_entry.transform_fn`, which answers these errors itself; any other exception is a 500 everywhere.
"""

from __future__ import annotations

import csv
import functools
import io
import itertools
import json
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from pipeline_code import catalog
from pipeline_code.core import integrity, problem
from pipeline_code.core.compiled import SERVE_COMPILED_ENV
from pipeline_code.core.contract import (ANSWERED_BY, ANSWERED_BY_DIGEST, ANSWERED_BY_VERSION, BATCH_RECORD_ERRORS_ENV,
                                         MODEL_VERSION_ENV, record_error)
from pipeline_code.core.frameworks import PYTORCH
from pipeline_code.core.media_types import CONTENT_TYPES, CSV, JSON, JSONLINES, base_type, canonical  # noqa: F401 - re-exported
from pipeline_code.core.record_kinds import SOURCE_FEATURES, SOURCE_RAW  # noqa: F401 - re-exported
from pipeline_code.serving import self_capture
# Re-exported: the contract's names in one place.
from pipeline_code.serving.errors import (  # noqa: F401
    SERVER_ERROR_MESSAGE,
    BadRequestError,
    InvocationError,
    ModelLoadError,
    ModelOutputError,
    NotAcceptableError,
    UnsupportedContentTypeError,
    answer_toolkit_errors_without_traceback,
)
from pipeline_code.serving.records import (  # noqa: F401
    INFERENCE_ID,
    INFERENCE_TIME,
    META_KEYS,
    FeatureContract,
    FeatureRows,
    RecordRefusal,
    _MAX_PROBLEMS,
    complete_records,
    feature_rows,
)
from pipeline_code.serving.request_body import (  # noqa: F401
    ACCEPT_TYPES,
    BLANK_LINE,
    BLANK_RECORD,
    ParsedRequest,
    record_place,
    blank_line_message,
    parse_request,
)
from pipeline_code.training.data_io import InputError
from pipeline_code.training.neuron import load_compiled
from pipeline_code.training.model_io import (
    CATEGORICAL,
    DEFAULT_THRESHOLD,
    METADATA_FILE,
    MODEL_ARCHIVE,
    MODEL_FILE,
    TrainedModel,
    load_model,
    predict as model_output,  # this module's own predict() turns the output into a Prediction
)


# --------------------------------------------------------------------------------------
# The loaded model
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ServingModel:
    """A trained model plus what serving needs to read requests for it (:attr:`contract`)."""

    trained: TrainedModel
    contract: FeatureContract
    info: Dict[str, Any]

    @property
    def metadata(self) -> Dict[str, Any]:
        return self.trained.metadata

    @property
    def dataset(self) -> catalog.Dataset:
        return self.contract.dataset

    @property
    def feature_order(self) -> List[str]:
        return list(self.contract.feature_order)

    @property
    def threshold(self) -> float:
        value = self.metadata.get("threshold")
        return float(DEFAULT_THRESHOLD if value is None else value)

    @property
    def problem_type(self) -> str:
        """``binary_classification`` (also for artefacts from before problem types), ``multiclass_classification``
        or ``regression`` (:mod:`pipeline_code.core.problem`)."""
        return self.trained.problem_type

    @property
    def classes(self) -> List[str]:
        """A classifier's classes in label-code order (``["0", "1"]`` for binary); ``[]`` for regression."""
        return self.trained.classes

    @property
    def extra_features(self) -> List[str]:
        return list(self.contract.extra_features)

    @property
    def required_raw_fields(self) -> List[str]:
        return self.contract.required_raw_fields

    @property
    def optional_raw_fields(self) -> List[str]:
        return self.contract.optional_raw_fields

    @functools.cached_property
    def frame_holds_features(self) -> bool:
        """Whether every feature the model encodes is in :attr:`feature_order` (always, for artefacts of train.py): then
        scoring a request's frame gives what scoring its ``feature_order`` columns gives, without copying them."""
        return {f["name"] for f in self.metadata["features"]} <= set(self.contract.feature_order)

    def source_columns(self, features: List[str]) -> List[str]:
        return self.contract.source_columns(features)

    def is_categorical(self, name: str) -> bool:
        """As encoded in training (the stored ``kind``), which is what scoring applies."""
        return any(e["name"] == name and e.get("kind") == CATEGORICAL for e in self.metadata["features"])


def load_serving_model(model_dir: str) -> ServingModel:
    """The model in ``model_dir`` (the extracted ``model.tar.gz``, or a directory holding it).

    When the container's environment names the registered model digest (``MLOPS_LOOP_MODEL_SHA256``,
    set by the serving stack from the approved version), the files are checked against it first.

    Raises:
        ModelLoadError: no artefact, bytes other than the registered ones, or features that disagree
            with :mod:`pipeline_code.catalog` (a raw request would then be computed with other
            expressions than in training).
    """
    expected = os.environ.get(integrity.MODEL_SHA256_ENV, "").strip()
    if expected:
        verify_digest(model_dir, expected)
    try:
        trained = load_model(model_dir)
    except InputError as exc:
        raise ModelLoadError(f"cannot load the model from {model_dir!r}: {exc}") from None
    compiled_by = os.environ.get(SERVE_COMPILED_ENV, "").strip()
    if compiled_by:
        trained = _compiled(trained, model_dir, compiled_by)
    metadata = trained.metadata
    try:
        # The artefact carries the declaration it was trained with: serving computes raw requests
        # with exactly those expressions, whatever the configuration says today.
        dataset = catalog.load_dataset(metadata.get("dataset"))
    except catalog.DeclarationError as exc:
        raise ModelLoadError(f"model {metadata.get('model')!r}: its dataset declaration is unusable: "
                             f"{'; '.join(exc.problems)}") from None
    problems = []
    for entry in metadata["features"]:
        name = entry["name"]
        if name not in dataset.feature_names:
            problems.append(f"feature {name!r} is not in catalog dataset {dataset.name!r}")
        elif entry.get("feature_type") and dataset.feature(name).feature_type != entry["feature_type"]:
            problems.append(
                f"feature {name!r} was trained as {entry['feature_type']} but the catalog says {dataset.feature(name).feature_type}"
            )
    if problems:
        raise ModelLoadError(f"model {metadata.get('model')!r} disagrees with the catalog: " + "; ".join(problems))
    wrong = output_problem(trained)
    if wrong:
        raise ModelLoadError(f"model {metadata.get('model')!r}: {wrong}")
    training = metadata.get("training") or {}
    info = {
        "name": metadata.get("model"),
        ANSWERED_BY_VERSION: os.environ.get(MODEL_VERSION_ENV) or None,
        ANSWERED_BY_DIGEST: artefact_digest(model_dir),
        "trained_at": training.get("trained_at"),
    }
    contract = serving_contract(metadata, dataset, trained.feature_names)
    return ServingModel(trained=trained, contract=contract, info=info)


def serving_contract(metadata: Dict[str, Any], dataset: catalog.Dataset,
                     feature_names: Sequence[str] = ()) -> FeatureContract:
    """What a model's requests carry, from its ``feature_metadata.json`` and the dataset declaration it carries: the
    contract serving validates with, and the one its JSON Schemas are generated from
    (:mod:`pipeline_code.serving.json_schema`)."""
    feature_order = list(metadata.get("feature_order") or feature_names)
    extras = [metadata.get("sensitive_attribute") or "", *(metadata.get("slices") or [])]
    return FeatureContract.create(dataset, feature_order, extras)


def _compiled(trained: TrainedModel, model_dir: str, compiler: str) -> TrainedModel:
    """The model with its dense layers in the compiled module (``SERVE_COMPILED_ENV`` names the compiler, set on
    ml.inf2 endpoints): an artefact without one, or built by another compiler, does not load - such an endpoint
    must never fall back to the CPU model quietly."""
    if trained.framework != PYTORCH:
        raise ModelLoadError(f"{SERVE_COMPILED_ENV}={compiler}: the model in {model_dir!r} is a {trained.framework} "
                             f"model; only framework: {PYTORCH} networks are compiled")
    try:
        return TrainedModel(estimator=load_compiled(model_dir, trained.estimator, compiler), metadata=trained.metadata)
    except InputError as exc:
        raise ModelLoadError(f"{SERVE_COMPILED_ENV}={compiler}: {exc}") from None


def output_problem(trained: TrainedModel) -> Optional[str]:
    """Why the artefact cannot answer as its problem type says (None when it can): an unknown
    ``problem_type``, or a multiclass model whose ``classes`` are not distinct names, one per output
    column of the model."""
    metadata = trained.metadata
    kind = metadata.get("problem_type", problem.BINARY)
    if kind not in problem.PROBLEM_TYPES:
        return f"{METADATA_FILE} has problem_type {kind!r}, not one of {', '.join(problem.PROBLEM_TYPES)}"
    columns = trained.outputs or 0  # 0, unknown: the output's shape is checked per request anyway
    if kind != problem.MULTICLASS:
        return None if columns <= 1 else f"the model gives {columns} outputs per record, but it is {kind}"
    classes = metadata.get("classes")
    if (not isinstance(classes, list) or len(classes) < 2 or not all(isinstance(c, str) and c for c in classes)
            or len(set(classes)) != len(classes)):
        return f"{METADATA_FILE} of a {kind} model needs 'classes', a list of at least 2 distinct names, got {classes!r}"
    if columns and columns != len(classes):
        return f"the model gives {columns} probabilities per record but {METADATA_FILE} names {len(classes)} classes"
    return None


def artefact_digest(model_dir: str) -> Optional[str]:
    """sha256 over ``model.json`` then ``feature_metadata.json`` (:func:`integrity.model_digest`, what the
    registry records as the model digest); for a model given only as ``model.tar.gz``, that archive's sha256."""
    found = integrity.model_digest(model_dir) if os.path.isdir(model_dir) else None
    if found is not None:
        return found
    archive = model_dir if os.path.isfile(model_dir) else os.path.join(model_dir, MODEL_ARCHIVE)
    return integrity.sha256_file(archive) if os.path.isfile(archive) else None


def verify_digest(model_dir: str, expected: str) -> None:
    """Refuse a model whose ``model.json`` + ``feature_metadata.json`` are not the bytes registered (``expected``).

    Raises:
        ModelLoadError: the digest differs, or ``model_dir`` holds no such files to check.
    """
    actual = integrity.model_digest(model_dir)
    if actual != expected:
        found = f"has sha256 {actual}" if actual else f"holds no {MODEL_FILE} + {METADATA_FILE} to check"
        raise ModelLoadError(
            f"the model in {model_dir!r} {found}, but its registration recorded {expected} ({integrity.MODEL_SHA256_ENV}): "
            "refusing to serve a model whose bytes changed after the gate passed it"
        )


# --------------------------------------------------------------------------------------
# Predictions and responses
# --------------------------------------------------------------------------------------
@dataclass
class Prediction:
    """What :func:`predict_fn` hands to :func:`output_fn`.

    ``scores`` holds one number per record: P(target = 1) for a binary model, the predicted class's
    probability for a multiclass one, the predicted value for a regression one. ``labels``: 0/1
    (binary), the index of the predicted class in ``classes`` (multiclass); empty for regression.
    ``probabilities`` (multiclass only): shape (n, K), columns in ``classes`` order.
    """

    scores: np.ndarray
    labels: np.ndarray
    inference_ids: List[Optional[str]]
    sources: List[str]
    model: Dict[str, Any]
    request: Optional[ParsedRequest] = None
    problem_type: str = problem.BINARY
    classes: List[str] = field(default_factory=list)
    probabilities: Optional[np.ndarray] = None
    # Batch transform only (record_errors): the request's records refused one by one, by position in the request, as
    # their output lines (core.contract.record_error); the arrays above hold the other records, in order.
    refused: Dict[int, Dict[str, Any]] = field(default_factory=dict)
    # Batch transform only (record_errors): how many of the request's records are blank lines (request_body.BLANK_RECORD),
    # each answered in its place by its error line, rendered from a template (_BLANK_LINE_TEMPLATES).
    blank_lines: int = 0

    def answer(self, i: int) -> Dict[str, Any]:
        """Record ``i``'s answer (``docs/invocation-contract.md``, Responses), ``inference_id`` echoed."""
        if self.problem_type == problem.MULTICLASS:
            if self.probabilities is None:
                raise ValueError("a multiclass Prediction needs its probabilities")
            row = self.probabilities[i]
            item: Dict[str, Any] = {"label": self.classes[int(self.labels[i])], "score": float(self.scores[i]),
                                    "probabilities": {name: float(p) for name, p in zip(self.classes, row)}}
        elif self.problem_type == problem.REGRESSION:
            item = {"value": float(self.scores[i])}
        else:
            item = {"score": float(self.scores[i]), "label": int(self.labels[i])}
        if self.inference_ids[i] is not None:
            item[INFERENCE_ID] = self.inference_ids[i]
        return item

    def records(self) -> List[Dict[str, Any]]:
        """Every record's answer in request order: a refused record's error object in its place (batch transform)."""
        return list(self._in_order([self.answer(i) for i in range(len(self.scores))], self.refused,
                                   lambda i, position: record_error(blank_line_message(i, position),
                                                                    status=BadRequestError.status)))

    def json_lines(self) -> Iterator[str]:
        """:meth:`records`, each as one line of JSON (a blank line's error line from its template)."""
        answers = [json.dumps(self.answer(i), separators=(",", ":")) for i in range(len(self.scores))]
        errors = {i: json.dumps(line, separators=(",", ":")) for i, line in self.refused.items()}
        return self._in_order(answers, errors, _BLANK_LINE_TEMPLATES[JSONLINES])

    def csv_lines(self) -> Iterator[str]:
        """One CSV line per record: the score (binary), the class name (multiclass), the value (regression); a
        refused record's error object (batch transform) as one CSV field holding its JSON."""
        if self.problem_type != problem.MULTICLASS:
            answers = [repr(float(s)) for s in self.scores]
        else:
            answers = [_csv_field(self.classes[int(k)]) for k in self.labels]
        errors = {i: _csv_field(json.dumps(line, separators=(",", ":"))) for i, line in self.refused.items()}
        return self._in_order(answers, errors, _BLANK_LINE_TEMPLATES[CSV])

    def _in_order(self, answers: List[Any], refused: Dict[int, Any], blank: Callable[[int, str], Any]) -> Iterator[Any]:
        """``answers`` (the scored records') with each refused record's in its place, and ``blank(i, position)`` in
        each blank line's (:attr:`blank_lines`), one by one."""
        if not refused and not self.blank_lines:
            return iter(answers)
        scored = iter(answers)
        total = len(answers) + len(refused) + self.blank_lines
        if not self.blank_lines:
            return (refused[i] if i in refused else next(scored) for i in range(total))
        assert self.request is not None, "a Prediction with blank lines holds its request"
        records, positions = self.request.records, self.request.positions
        return (blank(i, positions[i]) if records[i] is BLANK_RECORD else refused[i] if i in refused else next(scored)
                for i in range(total))


class _BlankLineTemplate:
    """A blank line's error line in one output type (:data:`pipeline_code.serving.request_body.BLANK_RECORD`): rendered once,
    only its place (``record i (line n)``, which holds no character JSON or CSV would escape) filled in per line."""

    _PLACE = "BLANKLINEPLACE"

    def __init__(self, render: Callable[[str], str]) -> None:
        line = render(f"{self._PLACE}: {BLANK_LINE}")
        self.head, self.tail = line.split(self._PLACE)

    def __call__(self, index: int, position: str) -> str:
        return f"{self.head}record {index} ({position}){self.tail}" if position else (
            f"{self.head}record {index}{self.tail}")


def _blank_line_json(message: str) -> str:
    return json.dumps(record_error(message, status=BadRequestError.status), separators=(",", ":"))




def _csv_field(text: str) -> str:
    """``text`` as one CSV field (quoted only when it holds a comma, a quote or a line break)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow([text])
    return buffer.getvalue()


_BLANK_LINE_TEMPLATES = {
    JSONLINES: _BlankLineTemplate(_blank_line_json),
    CSV: _BlankLineTemplate(lambda message: _csv_field(_blank_line_json(message))),
}


def predict(model: ServingModel, request: ParsedRequest, *, record_errors: bool = False) -> Prediction:
    """Score the request's records (:func:`feature_rows`, then the stored encoding and the model).

    ``record_errors`` (batch transform, :func:`batch_record_errors`; default False): a record the contract refuses is
    answered, in its place, by an error object naming its fields in the words the 400 would have used
    (:func:`pipeline_code.core.contract.record_error`), and the others are scored as they would be alone.

    Raises:
        BadRequestError: a record is malformed (see :func:`feature_rows`; not with ``record_errors``).
        ModelOutputError: the model's output for some record is not finite (never answered as a number).
    """
    rows = feature_rows(model.contract, request.records, request.positions, refuse_records=record_errors)
    refused = {i: _error_line(refusal, rows.inference_ids[i]) for i, refusal in rows.refused.items()}
    kept = rows.kept if refused or rows.blank_lines else list(range(len(request.records)))
    positions = [request.positions[i] if i < len(request.positions) else "" for i in kept]
    output = _model_output(model, rows.frame)
    _check_finite(output, positions, kept)
    kind = model.problem_type
    common = dict(inference_ids=[rows.inference_ids[i] for i in kept], sources=[rows.sources[i] for i in kept],
                  model=dict(model.info), request=request, problem_type=kind, refused=refused,
                  blank_lines=rows.blank_lines)
    if kind == problem.MULTICLASS:
        classes = model.classes
        if output.ndim != 2 or output.shape[1] != len(classes):
            raise ModelOutputError(f"the model's output has shape {output.shape}, not one probability per "
                                   f"class of {classes} for each of the {len(output)} records")
        labels = np.argmax(output, axis=1)
        scores = output[np.arange(len(output)), labels]
        return Prediction(scores=scores, labels=labels, classes=list(classes), probabilities=output, **common)
    if kind == problem.REGRESSION:
        return Prediction(scores=output, labels=np.zeros(0, dtype=np.int64), **common)
    labels = (output >= model.threshold).astype(np.int64)  # metrics.py: positive when p >= threshold
    return Prediction(scores=output, labels=labels, **common)


def _error_line(refusal: RecordRefusal, inference_id: Optional[str]) -> Dict[str, Any]:
    """A refused record's output line (batch transform): :func:`pipeline_code.core.contract.record_error`."""
    return record_error(refusal.message, refusal.fields, status=BadRequestError.status, inference_id=inference_id)


def _model_output(model: ServingModel, frame: Any) -> np.ndarray:
    """The model's output for the frame's rows; for none (every record of a batch refused), an empty one of its shape."""
    if len(frame):
        # The encoding reads the model's features by name; a copy of the frame's feature columns is made only where
        # the subset is not just a copy (feature_order leaving out a feature of the metadata: refused as before).
        return model_output(model.trained, frame if model.frame_holds_features else frame[model.feature_order])
    if model.problem_type == problem.MULTICLASS:
        return np.zeros((0, len(model.classes)))
    return np.zeros(0)


def batch_record_errors() -> bool:
    """Whether this container answers a refused record with an error line and scores the rest: set ("1") by the
    serving stack on a batch model's Model (:data:`pipeline_code.core.contract.BATCH_RECORD_ERRORS_ENV`), never on an
    endpoint's, whose requests are answered whole or refused whole."""
    return os.environ.get(BATCH_RECORD_ERRORS_ENV, "").strip() == "1"


def _check_finite(output: np.ndarray, positions: List[str], records: Optional[List[int]] = None) -> None:
    """Refuse the request when the model's output for a record is NaN or infinite (up to 10 records named; output
    row ``i`` is the request's record ``records[i]``, default ``i``)."""
    bad = ~np.isfinite(output)
    if bad.ndim > 1:
        bad = bad.any(axis=tuple(range(1, bad.ndim)))
    if not bad.any():
        return
    rows = np.flatnonzero(bad).tolist()
    problems = []
    for i in rows[:_MAX_PROBLEMS]:
        value = output[i]
        if np.ndim(value) == 0:
            shown = repr(float(value))
        else:  # one probability per class: at most the first 10
            shown = "[" + ", ".join(repr(float(v)) for v in value[:10]) + (", ...]" if len(value) > 10 else "]")
        number = records[i] if records is not None and i < len(records) else i
        problems.append(f"{record_place(number, positions[i] if i < len(positions) else '')}: the model's output {shown} "
                        "is not a finite number")
    more = f" (+{len(rows) - _MAX_PROBLEMS} more records)" if len(rows) > _MAX_PROBLEMS else ""
    raise ModelOutputError("; ".join(problems) + more + "; nothing is answered for this request")


def choose_accept(accept: Optional[str]) -> str:
    """The response type for an Accept header: the first supported entry; ``*/*`` or none -> JSON.

    Raises:
        NotAcceptableError: no entry is supported.
    """
    if accept is None or not accept.strip():
        return JSON
    for entry in accept.split(","):
        kind = canonical(entry)
        if kind is not None:
            return kind
        if base_type(entry) in ("*/*", "application/*"):
            return JSON
    raise NotAcceptableError(f"unsupported Accept {accept!r}: ask for one of {', '.join(ACCEPT_TYPES)}")


def render(prediction: Prediction, accept: Optional[str]) -> Tuple[bytes, str]:
    kind = choose_accept(accept)
    if kind == JSON:
        # json.dumps({"predictions": prediction.records(), ANSWERED_BY: prediction.model}, separators=(",", ":")),
        # built of the lines a batch transform's blank lines are answered by (no dict each).
        body = (f'{{"predictions":[{",".join(prediction.json_lines())}],{json.dumps(ANSWERED_BY)}:'
                f'{json.dumps(prediction.model, separators=(",", ":"))}}}')
    else:
        # No trailing newline: batch transform (AssembleWith=Line) adds the separator itself.
        return _joined(prediction.json_lines() if kind == JSONLINES else prediction.csv_lines()), kind
    return body.encode("utf-8"), kind


def _joined(lines: Iterator[str], chunk: int = 10_000) -> bytes:
    """``"\n".join(lines).encode("utf-8")``, encoded ``chunk`` lines at a time: the output is held once, as bytes, not
    also as a list of lines and a text (a mini-batch of a million blank lines answers ~200 MB)."""
    out = io.BytesIO()
    first = True
    while True:
        part = list(itertools.islice(lines, chunk))
        if not part:
            return out.getvalue()
        if not first:
            out.write(b"\n")
        out.write("\n".join(part).encode("utf-8"))
        first = False


# --------------------------------------------------------------------------------------
# The SageMaker hooks
# --------------------------------------------------------------------------------------
def model_fn(model_dir: str) -> ServingModel:
    """Load ``model.json`` + ``feature_metadata.json`` from ``model_dir`` (SageMaker: /opt/ml/model).

    In a container whose ``sagemaker_inference`` Transformer calls it (multi-model endpoints, the Neuron image), that
    Transformer is first made to answer failures without a stack trace
    (:func:`.errors.answer_toolkit_errors_without_traceback`), also the failure to load."""
    answer_toolkit_errors_without_traceback()
    return load_serving_model(model_dir)


def input_fn(request_body: Union[bytes, bytearray, str], request_content_type: Optional[str]) -> ParsedRequest:
    """Parse the body by its Content-Type; record-level checks need the model and happen in predict_fn."""
    parsed = parse_request(request_body, request_content_type, per_record=batch_record_errors())
    if isinstance(request_body, (bytes, bytearray)):
        parsed.raw = bytes(request_body).decode("utf-8", errors="replace")
    elif isinstance(request_body, str):
        parsed.raw = request_body
    return parsed


def predict_fn(input_data: ParsedRequest, model: ServingModel) -> Prediction:
    """Compute features (raw records) or take them (precomputed), encode as in training, score; in a batch transform
    (:func:`batch_record_errors`) a refused record is answered by an error line and the others are scored."""
    return predict(model, input_data, record_errors=batch_record_errors())


def output_fn(prediction: Prediction, accept: Optional[str]) -> Tuple[bytes, str]:
    """``(body, content type)``; the container sends the tuple's type as the response Content-Type.

    When the container's environment turns self-capture on (serverless endpoints, see
    :mod:`pipeline_code.serving.self_capture`), the request and this response are captured first,
    with the settings of this model (its metadata's ``model``; multi-model endpoints share one
    environment) - except the deploy handler's smoke test, which is not traffic.
    """
    body, kind = render(prediction, accept)
    request = prediction.request
    if request is not None and not self_capture.is_smoke_test(request.records):
        self_capture.capture(request_body=request.raw, request_type=request.content_type, response_body=body,
                             response_type=kind, model=prediction.model.get("name"), answered_by=prediction.model)
    return body, kind


def invoke(model: ServingModel, body: Union[bytes, str], *, content_type: str, accept: Optional[str] = None) -> Tuple[bytes, str]:
    """The container's chain in one call: ``output_fn(predict_fn(input_fn(body, content_type), model), accept)``.

    ``accept`` defaults to JSON, as the container does without an Accept header.
    """
    return output_fn(predict_fn(input_fn(body, content_type), model), accept)
