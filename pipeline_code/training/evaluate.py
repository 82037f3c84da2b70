"""Evaluate the challenger (and the champion) on the frozen test set and apply the gate.

Both models are scored on the *identical* rows: the frozen test set whose bytes are
checked against its manifest's sha256. The champion is, in order: the model in
``--champion-dir`` (a directory with ``model.json`` or ``model.tar.gz``; with ``--champion-model-sha256``, its
model digest must be that one, or the run stops); else, when ``--model-package-group`` is given, the version of
that group that serves - the deploy handler's rule, :mod:`pipeline_code.core.approval`: the Approved version
approved last, so a rolled-back-to version after a rollback, passing over a version whose evaluation report says its
promotion gate failed (the handler refuses it) - downloaded from its ``ModelDataUrl``; else there is
none (the first model). The report's ``champion.source`` says where it came from: its ``version`` and, for a
registry's version, the ``rule`` that picked it (``approved-last``) and the versions it ``passed_over`` (and why). A champion of another
problem type (or, multiclass, other classes), of another target, with a feature computed by another definition
(type or expression) than the dataset declares now, or with a feature the frozen test set no longer holds is not
compared: the challenger is judged as the first model, the report says why (``champion_not_compared``) and the
version is registered PendingManualApproval. Nor is a champion whose deviance, the primary metric of a model
trained on a count or amount loss, is undefined on the frozen test set (one trained on squared error that predicts 0
for some rows): it has no finite value a margin could be measured from, so the challenger is judged as the first
model and the report says why. A challenger judged without its champion is registered PendingManualApproval whatever
the environment asks: only the floors judged it, so a person decides whether it replaces the serving version.

The report's ``out_of_time`` block says whether each model's evaluation is out-of-time: its training data (the
``data_period`` its trainer recorded in the artefact, in its ``model_info``) ends before the frozen test set's first
event time. When either's does not - the challenger's data grew past a set frozen earlier, or a re-frozen set starts
inside the period a champion learnt from - the block's ``note`` says so (for the champion: on how many test rows it is
scored in-sample), and the gate's reasons and the model card's limitations carry it (:func:`out_of_time`). The
challenger is then compared with the champion (the gate's margin and slice checks) only on the test rows after both
models' training data, when they hold what a gated slice needs; else on the whole set, as without it, and the block
says which model that favours - the champion when its data reaches the set: the error is then on the side of keeping
it (the block's ``comparison``: :func:`out_of_time_comparison`). The challenger's own metrics (quality, slices,
fairness) are always those of the whole set.

The report's ``registration`` block says how a passing challenger is registered (``approval_status``, which the
register step reads): with ``--approval-status`` (the environment's request, default ``PendingManualApproval``), or
``PendingManualApproval`` when the challenger would answer the champion's callers in another shape - another problem
type or other classes, or its features in another order (CSV and list requests are positional in
``feature_order``) - and then ``contract_change`` says how (:func:`contract_change`,
:func:`pipeline_code.core.approval.status_to_register`), or when the serving champion was not compared (then
``champion_not_compared`` says why). A Pending request is never registered ``Approved``.

Metrics follow the model's problem type (``core.problem``): :mod:`metrics` (binary),
:mod:`metrics_multiclass`, :mod:`metrics_regression`. A non-binary report also carries
``problem_type``, ``classes`` and ``primary_metric``, and any report the model's ``quality_floor``.

Outputs in ``--output-dir`` (default ``/opt/ml/processing/output/evaluation``):

``evaluation.json``   ``{"model", "test_set", "challenger", "champion", "comparison", "attributions",
                      "gate": {"passed", "reasons", "checks", "thresholds"},
                      "binary_classification_metrics"}`` - the pipeline's ConditionStep
                      reads ``gate.passed`` (JsonGet); the last block is the SageMaker
                      Model Registry ModelQuality format (``multiclass_classification_metrics``
                      or ``regression_metrics`` for the other problem types).
                      ``comparison`` (with a champion): each compared metric's challenger-minus-champion
                      ``<metric>_delta`` and, when the gate compares on the whole set, ``<metric>_delta_se``
                      (:func:`paired_delta_se`) for its note on a margin decision within the noise.
``model_quality.json`` only that block (for ModelMetrics).
``bias.json``          fairness across the sensitive attribute (challenger and champion).
``explainability.json`` TreeSHAP attributions of the challenger.
``digests.json``       ``sha256:<hex>`` of each of the four above (``core.integrity.write_digests``): the register
                      step records them in the model package (ModelMetrics ContentDigest), and ``bias.json`` also
                      carries ``evaluation.json``'s (``evaluation_digest``), which ModelMetrics does not name.

The report's ``artifact`` block holds the challenger's digests (``sha256`` of ``model.tar.gz``, null for a
model directory; ``model_sha256`` of ``model.json`` + ``feature_metadata.json``; ``model_content_sha256``, the same
without the training time, :func:`pipeline_code.core.integrity.model_content_digest`: two runs on the same data, code,
configuration and seed share it). With ``--seal-uri``, a
challenger that passes the gate is sealed there first (:mod:`seal`: written once to a content-addressed
key) and the block gains ``uri``, ``bytes`` and ``created``: the register step reads them.

A challenger compiled for Inferentia2 (its archive holds ``compiled.json``) is sealed with ``parity.json`` added
(:mod:`parity`: a fixed request of test records and the CPU model's answers); the report's ``parity`` block
holds the same answers, which the rollout's parity check holds the endpoint to.

Exit status: 0 whenever a decision was made (also when the gate fails - the pipeline
decides what to do); 1 on bad input (unreadable/modified test set, wrong model artifact,
a metric the gate needs cannot be computed); 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import tempfile
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from pipeline_code.core.contract import (
    BIAS_FILE, EVALUATION_FILE, EVALUATION_FILES, EXPLAINABILITY_FILE, MODEL_QUALITY_FILE, MODEL_SHA256_PROPERTY,
    REGISTRATION_KEY,
)
from pipeline_code.core import approval, frameworks, integrity, problem
from pipeline_code.core.integrity import ARTIFACT_KEY
from pipeline_code.core.reproducibility import RESUMED_FROM, TRAINED, resumed_note
from pipeline_code.training import data_io, explain, metrics, metrics_multiclass, metrics_regression, parity, seal
from pipeline_code.training.data_io import InputError
from pipeline_code.training.gate import (
    COMPARED_OUT_OF_TIME, COMPARED_WHOLE_SET, COMPARED_WHOLE_SET_FAVOURS_CHALLENGER, COMPARED_WHOLE_SET_FAVOURS_CHAMPION,
    GateInputError, comparison_classes, comparison_metric, comparison_shortfall, decide,
)
from pipeline_code.training.prepare import declared_definitions, read_test_set
from pipeline_code.core.thresholds import parse_policy
from pipeline_code.training.spec import GateThresholds, ModelSpec, add_gate_arguments, add_model_spec_argument, thresholds_from_args
from pipeline_code.training.model_io import TrainedModel, load_model, predict
from pipeline_code.argtypes import positive_int as _positive_int

PROG = "python -m pipeline_code.training.evaluate"


def score(model: TrainedModel, test: pd.DataFrame, spec: ModelSpec, *, min_rows: int, min_group_rows: int,
          min_positives: int = 1) -> Dict[str, Any]:
    """Metrics, slices and fairness of one model on the test frame (+ its raw outputs), per problem type."""
    y = test[spec.target].to_numpy(dtype=np.float64)
    p = predict(model, test)
    slices = {s: test[s] for s in spec.slices}
    groups = test[spec.sensitive_attribute]
    training = model.metadata.get("training") or {}
    if spec.problem_type == problem.MULTICLASS:
        classes = spec.classes
        block = {
            "metrics": metrics_multiclass.headline(y, p, classes),
            "slices": metrics_multiclass.slice_metrics(slices, y, p, classes, min_rows=min_rows, min_positives=min_positives,
                                                       primary_metric=spec.primary_metric),
            "fairness": metrics_multiclass.fairness(groups, y, p, classes, attribute=spec.sensitive_attribute,
                                                    min_group_rows=min_group_rows),
        }
    elif spec.problem_type == problem.REGRESSION:
        block = {
            "metrics": metrics_regression.headline(y, p, spec.deviance),
            "slices": metrics_regression.slice_metrics(slices, y, p, min_rows=min_rows, primary_metric=spec.primary_metric,
                                                       deviance=spec.deviance),
            "fairness": metrics_regression.fairness(groups, y, p, attribute=spec.sensitive_attribute,
                                                    min_group_rows=min_group_rows),
        }
    else:
        threshold = model.threshold
        block = {
            "metrics": metrics.headline(y, p, threshold),
            "slices": metrics.slice_metrics(slices, y, p, min_rows=min_rows, min_positives=min_positives, threshold=threshold),
            "fairness": metrics.fairness(groups, y, p, attribute=spec.sensitive_attribute, min_group_rows=min_group_rows,
                                         threshold=threshold),
        }
    block["model_info"] = {
        "framework": model.framework,
        # The library version that trained it, as its trainer recorded it (None: an artefact from before that).
        "framework_version": model.metadata.get(frameworks.VERSION_KEYS.get(model.framework, "")),
        "features": model.feature_names,
        **model.size(),
        "trained_at": training.get("trained_at"),
        # The event-time span of its train and validation rows (trainers.data_period; None before it was recorded).
        "data_period": training.get("data_period"),
        "validation_auc": training.get("validation_auc"),
        # How many rows it learnt from and their base rate (binary) or class shares (multiclass): the training data's
        # size and class balance, which
        # the model card states (absent: an artefact from before they were recorded).
        **{key: training[key] for key in ("train_rows", "validation_rows", "train_positive_rate", "train_class_shares")
           if key in training},
        "hyperparameters": training.get("hyperparameters"),
        # Python's and the libraries' versions where it trained (None: an artefact from before they were recorded).
        "libraries": training.get("libraries"),
        "class_weight": training.get("class_weight"),
        # How the threshold was chosen (policy, validation precision/recall), from the artefact.
        "decision": model.metadata.get("decision"),
        # The spot checkpoint a run resumed from (None: it ran uninterrupted) and the rounds or epochs it ended with:
        # an XGBoost run resumed is not bit-for-bit the model an uninterrupted one trains (docs/training.md "Reproducibility").
        # Absent: a trainer's artefact from before this was recorded.
        **{key: training[key] for key in (*RESUMED_FROM, *TRAINED.values()) if key in training},
    }
    if spec.problem_type != problem.BINARY:
        block["model_info"]["problem_type"] = model.problem_type
        block["model_info"]["validation"] = {k: training.get(k) for k in training.get("final_metrics", [])}
    if spec.problem_type == problem.REGRESSION:
        # What it was trained to minimise (an artefact from before losses: squared error), and tweedie's power.
        block["model_info"]["loss"] = training.get("loss", problem.SQUARED_ERROR)
        if "tweedie_variance_power" in training:
            block["model_info"]["tweedie_variance_power"] = training["tweedie_variance_power"]
    block["_scores"] = p
    return block


def _undefined_deviance(champion: TrainedModel, test: pd.DataFrame, spec: ModelSpec) -> Optional[str]:
    """Why the champion cannot be compared on the model's primary metric when that is its loss's deviance and the
    champion's is undefined on the frozen test set (None otherwise): a champion trained on squared error that predicts
    0 or less for some rows (a count's declared min: 0) is infinitely far off there, so there is no finite margin to
    beat; the challenger is judged as the first model of its loss."""
    if spec.deviance is None or spec.primary_metric != spec.deviance[0]:
        return None
    y = test[spec.target].to_numpy(dtype=np.float64)
    if metrics_regression.mean_tweedie_deviance(y, predict(champion, test), spec.deviance[1]) is not None:
        return None
    return (f"the champion's {problem.label(spec.primary_metric)} is undefined on the frozen test set: it predicts a "
            f"mean of 0 or less for some rows (a model trained on another loss); the challenger is judged on "
            f"{spec.primary_metric}, whose champion starts with it")


def _data_until(info: Optional[Mapping[str, Any]]) -> Optional[str]:
    """The last event time a model learnt from (train or validation), from its recorded data period; None when
    its artefact does not record one."""
    period = (info or {}).get("data_period") or {}
    ends = [span.get("max") for span in period.values() if isinstance(span, Mapping) and span.get("max")]
    return max(ends, key=data_io.parse_time) if ends else None


def out_of_time(challenger: Mapping[str, Any], champion: Optional[Mapping[str, Any]],
                test_range: Mapping[str, Any], times: Optional[pd.Series] = None,
                comparison: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """Whether each model's evaluation on the frozen test set is out-of-time: its training data (train and
    validation, the ``data_period`` of its ``model_info``) ends before the test set's first event time. ``challenger``
    / ``champion``: True, False, or None when the artefact records no period (the champion's key only with a champion).

    A test set frozen once and data that keeps growing: a later challenger's splits run into or past the frozen window
    (Prepare leaves out only the set's own keys), so it learns from the period it is judged on. A re-frozen set starts
    at the latest test fraction of the rows, which a champion trained while the old set was not yet stale may reach:
    it is then scored in-sample on part of the set. Neither is a refusal, but the block's ``note`` - added to the
    gate's notes and to the model card's limitations - says so: for the champion, on how many of the test rows
    (``times``, the test rows' event times; default None: not counted). ``comparison`` (default None), what
    :func:`out_of_time_comparison` decided - the champion compared on the rows after both models' training data, or
    on the whole set and which model that favours - is kept as the block's ``comparison`` (the gate reads it) and its
    ``reason`` ends the note.
    """
    start, end = test_range.get("min"), test_range.get("max")

    def judged(info: Optional[Mapping[str, Any]]) -> Tuple[Optional[bool], Optional[str]]:
        until = _data_until(info)
        if until is None or not start:
            return None, until
        return data_io.parse_time(until) < data_io.parse_time(start), until

    mine, until = judged(challenger)
    block: Dict[str, Any] = {"test_set": {"min": start, "max": end}, "challenger": mine, "challenger_data_until": until}
    notes = []
    if mine is False:
        notes.append(f"evaluation is not out-of-time for this challenger: its training data reaches {until}, the frozen "
                     f"test set covers {start}–{end}")
    if champion is not None:
        theirs, champion_until = judged(champion)
        block.update(champion=theirs, champion_data_until=champion_until)
        if theirs is False:
            rows = (f"{_rows_until(times, champion_until)} of {len(times)} test rows" if times is not None else
                    "the test rows of its period")
            notes.append(f"the champion's training data reaches {champion_until}: it is scored in-sample on {rows}")
    if comparison is not None:
        block["comparison"] = dict(comparison)
        notes.append(str(comparison["reason"]))
    if notes:
        block["note"] = "; ".join(notes)
    return block


def _rows_until(times: pd.Series, until: str) -> int:
    """How many of the event ``times`` are at or before ``until`` (a model's last training event time)."""
    return int((times <= pd.Timestamp(data_io.parse_time(until))).sum())


def comparison_cut(challenger: Mapping[str, Any], champion: Optional[Mapping[str, Any]],
                   test_range: Mapping[str, Any]) -> Optional[str]:
    """The last event time either model learnt from (their ``model_info``), when it reaches the frozen test set (its
    first event time or later): the challenger is then compared with the champion on the test rows after it
    (:func:`out_of_time_comparison`). None without a champion, when both models' training data ends before the set,
    or when neither records its period (nothing to cut at: the whole set, as the ``out_of_time`` flags say)."""
    start = test_range.get("min")
    ends = [u for u in (_data_until(challenger), _data_until(champion)) if u] if champion is not None else []
    if not start or not ends:
        return None
    last = max(ends, key=data_io.parse_time)
    return last if data_io.parse_time(last) >= data_io.parse_time(start) else None


def out_of_time_comparison(spec: ModelSpec, thresholds: GateThresholds, test: pd.DataFrame, times: pd.Series,
                           after: str, challenger: TrainedModel, champion: TrainedModel,
                           who: Mapping[str, Optional[str]], sizes: Mapping[str, int]) -> Dict[str, Any]:
    """The champion comparison when a model's training data reaches the frozen test set (``after``:
    :func:`comparison_cut`): both models scored on the test rows after it - no row either learnt from, or could have -
    so a challenger does not lose to a champion judged in-sample (nor win against one by learning the window). The
    gate compares them there (margin and slices, basis :data:`~pipeline_code.training.gate.COMPARED_OUT_OF_TIME`)
    when those rows hold what a gated slice needs (:func:`pipeline_code.training.gate.comparison_shortfall`: the same
    minimums, the evidence the gate already takes to compare two models on part of the set). With fewer - right after
    a re-freeze, or with frequent runs - the gate compares them on the whole set, as without this block, and the basis
    names the model that favours (:func:`whole_set_basis`): the champion where its training data reaches the set
    (scored partly in-sample: an error on the side of keeping it, never of promoting a worse challenger), else the
    challenger. The challenger's own metrics stay those of the whole set. ``who``: each model's recorded data end
    (None: not recorded), for the reason. Multiclass: the block's ``compared`` (:func:`compared_classes`) names the
    classes seen ``min_slice_positives`` times there; a long tail's rows need two such classes, and a model judged on
    macro F1 or macro AUC is compared on that metric over them (``compared_<metric>`` in both models' metrics)."""
    later = (times > pd.Timestamp(data_io.parse_time(after))).to_numpy()
    rows, total = int(later.sum()), len(test)
    kind, metric = spec.problem_type, spec.primary_metric
    unknown = [role for role, until in who.items() if until is None]
    where = ("which neither model's training data reaches" if not unknown else
             f"which the {[r for r in who if r not in unknown][0]}'s training data does not reach (the "
             f"{unknown[0]}'s period is not recorded)")
    block: Dict[str, Any] = {"after": after, "rows": rows, "test_rows": total}
    # Too few rows are too few before any score (none at all cannot be scored); the other minimums need the scores.
    shortfall = (comparison_shortfall(kind, metric, {"rows": rows}, thresholds)
                 if rows < thresholds.min_slice_rows else None)
    scored: Dict[str, Dict[str, Any]] = {}
    if shortfall is None:
        subset = test.loc[later].reset_index(drop=True)
        outputs = {}
        for role, model in (("challenger", challenger), ("champion", champion)):
            scores = score(model, subset, spec, **sizes)
            scored[role], outputs[role] = {"metrics": scores["metrics"], "slices": scores["slices"]}, scores["_scores"]
        # The same rows and labels: rows and classes are the challenger's; only the champion's metric can differ.
        headline = scored["challenger"]["metrics"]
        key = comparison_metric(kind, metric, headline, thresholds)
        if kind == problem.MULTICLASS:
            compared = compared_classes(metric, key, headline, thresholds)
            if key != metric and len(compared["classes"]) >= 2:
                y = subset[spec.target].to_numpy(dtype=np.float64)
                for role in scored:
                    scored[role]["metrics"][key] = metrics_multiclass.compared_metric(
                        y, outputs[role], spec.classes, metric, compared["classes"])
            block["compared"] = compared
        shortfall = comparison_shortfall(kind, metric, headline, thresholds)
        if shortfall is None and scored["champion"]["metrics"].get(key) is None:
            shortfall = f"rows on which the champion's {problem.label(metric)} can be computed"
    if shortfall is None:
        block.update(basis=COMPARED_OUT_OF_TIME, **scored, reason=(
            f"the challenger is compared with the champion (margin, slices) on the {rows} of {total} test rows after "
            f"{after}, {where}; its own checks (quality, fairness) are on all {total}"
            + (f"; {block['compared']['why']}" if "compared" in block else "")))
    else:
        block.pop("compared", None)
        basis, why = whole_set_basis(times, who)
        block.update(basis=basis, reason=(
            f"the champion comparison is on the whole test set, where {why}: it favours the "
            f"{COMPARED_WHOLE_SET[basis]}; a comparison on rows after both models' training data ({rows} after {after}) "
            f"needs {shortfall}"))
    return block


def compared_classes(metric: str, key: str, metrics: Mapping[str, Any], t: GateThresholds) -> Dict[str, Any]:
    """The out-of-time comparison's ``compared`` block of a multiclass model (``metrics``: the challenger's headline on
    the rows after the cut; ``key``: what the gate reads, :func:`pipeline_code.training.gate.comparison_metric`): the
    classes seen ``min_slice_positives`` times or more there, those left out with their counts, and why."""
    enough, left_out = comparison_classes(metrics, t)
    label, minimum = problem.label(metric), t.min_slice_positives
    if not left_out:
        why = f"{label} over all {len(enough)} classes, each seen >= {minimum} times there"
    elif key != metric:
        why = (f"{label} over the {len(enough)} classes seen >= {minimum} times there (gate.min_slice_positives); "
               f"left out: {len(left_out)} seen fewer times ({', '.join(f'{c}: {n}' for c, n in left_out.items())}), "
               f"whose {label} a row or two would swing while weighing as much as any other class's in the mean")
    else:
        why = (f"{label} over all {int(metrics.get('rows') or 0)} rows, a mean over rows in which a class seen fewer "
               f"than {minimum} times ({len(left_out)} of them) weighs by its few rows: none left out; "
               f"{len(enough)} classes are seen >= {minimum} times there (gate.min_slice_positives; at least 2 needed)")
    return {"metric": key, "classes": enough, "left_out": left_out, "why": why}


def whole_set_basis(times: pd.Series, who: Mapping[str, Optional[str]]) -> Tuple[str, str]:
    """Which model a champion comparison on the whole frozen set favours, as its basis, and why (the words after
    "where"): the champion when its training data (``who``: each model's recorded data end) reaches the set - it is
    scored in-sample on those of the test rows (``times``) up to its data's end; else the challenger, whose training
    data then reaches the set (it learnt from the set's period and the same entities' other records, though not from
    the set's own rows, which Prepare leaves out)."""
    champion_until = who.get("champion")
    in_sample = _rows_until(times, champion_until) if champion_until else 0
    if in_sample:
        return (COMPARED_WHOLE_SET_FAVOURS_CHAMPION,
                f"the champion's training data reaches ({in_sample} of {len(times)} rows in-sample)")
    unrecorded = "; the champion's period is not recorded" if champion_until is None else ""
    return (COMPARED_WHOLE_SET_FAVOURS_CHALLENGER,
            f"the challenger's training data reaches (it learnt from the set's period, not from its rows{unrecorded})")


def model_quality(spec: ModelSpec, y: np.ndarray, p: np.ndarray, model: TrainedModel) -> Dict[str, Any]:
    """The Model Registry ModelQuality statistics of the challenger, under its problem type's key."""
    if spec.problem_type == problem.MULTICLASS:
        block = metrics_multiclass.model_quality(y, p, spec.classes)
    elif spec.problem_type == problem.REGRESSION:
        block = metrics_regression.model_quality(y, p)
    else:
        block = metrics.model_quality(y, p, model.threshold)
    return {problem.MODEL_QUALITY_KEY[spec.problem_type]: block}


def evaluate(
    spec: ModelSpec,
    model_dir: str,
    test_dir: str,
    output_dir: str,
    thresholds: GateThresholds,
    *,
    champion_dir: Optional[str] = None,
    champion_version: Optional[int] = None,
    champion_model_sha256: Optional[str] = None,
    model_package_group: Optional[str] = None,
    region: Optional[str] = None,
    shap_sample_rows: int = explain.DEFAULT_MAX_ROWS,
    seal_location: Optional[str] = None,
    gate_policy: Optional[Mapping[str, float]] = None,
    approval_status: str = approval.PENDING,
    sagemaker_client: Any = None,
    s3_client: Any = None,
    log: Any = print,
) -> Dict[str, Any]:
    """Score, gate, seal a passed challenger when ``seal_location`` is given, write the reports; return the
    evaluation report.

    ``champion_version`` / ``champion_model_sha256`` (default: none) describe a ``champion_dir`` that holds a
    registry's version (the local run's): its number, recorded in the report, and the model digest recorded at its
    registration, which the directory's model must still have.

    ``approval_status`` is the status the environment asks a passing challenger to be registered with (default
    ``PendingManualApproval``); the report's ``registration`` block holds the one it is registered with: the same, or
    ``PendingManualApproval`` when the callers' contract changes (:func:`contract_change`).

    Raises:
        InputError / GateInputError: bad input (see the module docstring); SealError: a passed model
            could not be sealed; ValueError: ``approval_status`` is not a status a version is registered with.
    """
    approval.status_to_register(approval_status, None)  # a wrong request is refused before any work
    test, manifest = read_test_set(test_dir)
    if manifest.get("model") not in (None, spec.name):
        raise InputError(f"test set in {test_dir!r} belongs to model {manifest.get('model')!r}, not {spec.name!r}")
    needed = [*spec.frame_features, spec.target]
    missing = [c for c in needed if c not in test.columns]
    if missing:
        raise InputError(f"test set in {test_dir!r} lacks columns {missing}")

    challenger = load_model(model_dir)
    _check_model(challenger, spec, "challenger", model_dir)
    artefact = seal.digests(model_dir)
    # A model compiled for Inferentia2 is sealed with its parity sample (the CPU model's answers to a fixed request).
    # The directory goes when this function returns or raises (TemporaryDirectory's finalizer).
    parity_scratch = tempfile.TemporaryDirectory(prefix="mlops-loop-parity-")
    attached = parity.attach_parity(model_dir, test, spec, parity_scratch.name, log=log)
    if attached is not None:
        artefact = seal.digests(attached[0])
    champion, champion_source, scratch = _champion(champion_dir, model_package_group, region, sagemaker_client, s3_client,
                                                   version=champion_version, model_sha256=champion_model_sha256,
                                                   model=spec.name, seal_location=seal_location)
    incomparable = _comparable(champion, spec) if champion is not None else None
    if champion is not None and not incomparable:
        # A feature the challenger no longer uses leaves the test set once it is frozen again (re-frozen when stale,
        # or deleted as a changed feature set asks): the champion cannot be scored on it.
        lacking = [f for f in champion.feature_names if f not in test.columns]
        if lacking:
            incomparable = (f"the champion takes features {lacking} that the frozen test set lacks (frozen for the "
                            "challenger's features)")
    if champion is not None and not incomparable:
        incomparable = _undefined_deviance(champion, test, spec)
    # Against the version that serves (the champion), before an incomparable one is set aside: its callers' contract.
    changed = contract_change(champion, spec) if champion is not None else None
    # A challenger the gate cannot compare with the serving champion was judged by the floors alone: a person decides
    # whether it replaces the champion, even where the environment auto-approves (said once when it is the change).
    set_aside = incomparable if incomparable and incomparable != changed else None
    registration = {"requested": approval_status,
                    "approval_status": approval.status_to_register(approval_status, changed, set_aside),
                    **({"contract_change": changed} if changed else {}),
                    **({"champion_not_compared": set_aside} if set_aside else {})}
    if incomparable:
        # A changed problem type, class list or target, a feature computed otherwise or one the test set no longer
        # holds starts a new line of champions: the challenger is judged as the first (and registered pending, above).
        log(f"champion not compared: {incomparable}; judging the challenger as the first model")
        champion, champion_source = None, None
    try:
        sizes = {"min_rows": thresholds.min_slice_rows, "min_group_rows": thresholds.min_group_rows,
                 "min_positives": thresholds.min_slice_positives}
        challenger_block = score(challenger, test, spec, **sizes)
        champion_block = score(champion, test, spec, **sizes) if champion is not None else None
        time_range = manifest.get("time_range") or {}
        times = pd.to_datetime(test[spec.event_time], utc=True) if spec.event_time in test.columns else None
        # A model whose training data reaches the set is compared only on the rows after it (or not at all).
        after = (comparison_cut(challenger_block["model_info"], champion_block["model_info"], time_range)
                 if champion_block is not None and times is not None else None)
        compared = None
        if after is not None:
            who = {"challenger": _data_until(challenger_block["model_info"]),
                   "champion": _data_until(champion_block["model_info"])}
            compared = out_of_time_comparison(spec, thresholds, test, times, after, challenger, champion, who, sizes)
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    p = challenger_block.pop("_scores")
    y = test[spec.target].to_numpy(dtype=np.float64)
    champion_scores = None
    if champion_block is not None:
        champion_scores = champion_block.pop("_scores")
        champion_block["source"] = champion_source
    challenger_block["source"] = {"kind": "directory", "location": model_dir}
    attributions = explain.attributions(challenger, test, max_rows=shap_sample_rows)

    report: Dict[str, Any] = {
        "model": spec.name,
        "dataset": spec.dataset,
        "evaluated_at": dt.datetime.now(dt.timezone.utc).isoformat(),
        "test_set": {
            "sha256": manifest["sha256"],
            "rows": int(manifest["rows"]),
            "version": manifest.get("version"),
            "created_at": manifest.get("created_at"),
            "time_range": manifest.get("time_range"),
        },
        "challenger": challenger_block,
        "champion": champion_block,
        # The deltas of what the gate compared: the rows after both models' training data when it compared there.
        "comparison": (_comparison(compared["challenger"], compared["champion"], spec.problem_type, spec.primary_metric)
                       if compared and compared["basis"] == COMPARED_OUT_OF_TIME else
                       _comparison(challenger_block, champion_block, spec.problem_type, spec.primary_metric)),
        "out_of_time": out_of_time(challenger_block["model_info"], (champion_block or {}).get("model_info"),
                                   time_range, times, compared),
        "attributions": attributions,
        **model_quality(spec, y, p, challenger),
    }
    if report["comparison"] is not None and not (compared and compared["basis"] == COMPARED_OUT_OF_TIME):
        # On the whole set the gate compares these scores: how much of the margin the test set's sampling explains.
        report["comparison"][f"{spec.primary_metric}_delta_se"] = paired_delta_se(
            spec, y, p, challenger.threshold, champion_scores, champion.threshold)
    if spec.problem_type != problem.BINARY:
        report.update({"problem_type": spec.problem_type, "classes": list(spec.classes)})
    if spec.primary_metric != problem.default_primary_metric(spec.problem_type) or spec.problem_type != problem.BINARY:
        report["primary_metric"] = spec.primary_metric
    if spec.quality_floor is not None:
        report["quality_floor"] = spec.quality_floor
    if spec.leakage_acknowledged:  # the gate accepts a suspected leak the model's config says is genuine
        report["leakage_acknowledged"] = spec.leakage_acknowledged
    if incomparable:
        report["champion_not_compared"] = incomparable
    report[REGISTRATION_KEY] = registration
    if attached is not None:
        report["parity"] = attached[1]
    report = data_io.json_safe(report)
    decision = decide(report, thresholds, gate_policy)
    report["gate"] = {**decision.to_dict(), "thresholds": thresholds.to_dict(),
                      **({"policy": dict(gate_policy)} if gate_policy is not None else {})}
    report[ARTIFACT_KEY] = {"sha256": artefact.sha256, "model_sha256": artefact.model_sha256,
                            "model_content_sha256": artefact.model_content_sha256}
    if decision.passed and seal_location:
        sealed = seal.seal(artefact, seal_location, s3_client=s3_client, region=region)
        report[ARTIFACT_KEY] = sealed.to_dict()
        log(f"sealed {sealed.uri} ({'written' if sealed.created else 'already sealed, same bytes'})")

    os.makedirs(output_dir, exist_ok=True)
    evaluation_path = os.path.join(output_dir, EVALUATION_FILE)
    data_io.write_json(evaluation_path, report)
    quality_key = problem.MODEL_QUALITY_KEY[spec.problem_type]
    data_io.write_json(os.path.join(output_dir, MODEL_QUALITY_FILE), {quality_key: report[quality_key]})
    data_io.write_json(
        os.path.join(output_dir, BIAS_FILE),
        {
            "model": spec.name,
            "sensitive_attribute": spec.sensitive_attribute,
            "test_set": report["test_set"],
            "challenger": report["challenger"]["fairness"],
            "champion": report["champion"]["fairness"] if report["champion"] else None,
            "gate": {
                "max_demographic_parity_difference": thresholds.max_demographic_parity_difference,
                "min_disparate_impact": thresholds.min_disparate_impact,
            },
            # The report's bytes, sealed with this document's ContentDigest (ModelMetrics does not name the report).
            integrity.EVALUATION_DIGEST_KEY: integrity.content_digest(integrity.sha256_file(evaluation_path)),
        },
    )
    data_io.write_json(
        os.path.join(output_dir, EXPLAINABILITY_FILE),
        {"model": spec.name, "test_set": report["test_set"], "attributions": attributions},
    )
    integrity.write_digests(output_dir, EVALUATION_FILES)
    for line in summary_lines(report):
        log(line)
    return report


# The binary summary line keeps PR-AUC (the rare-event metric) in view; the other types show their headline.
_SHOWN = {**problem.HEADLINE_METRICS, problem.BINARY: ("auc", "pr_auc", "log_loss", "brier", "f1", "positive_rate")}
# Deltas against the champion (binary: the keys the report always had, and PR-AUC), and the champion's summary line.
# Each also shows the model's primary metric (_with_primary), the one the gate compared.
_COMPARED = {**problem.HEADLINE_METRICS, problem.BINARY: ("auc", "pr_auc", "log_loss", "brier", "accuracy", "f1")}
# Calibration (ece) is the gate's own line when limited; the champion's keeps its four headline scores.
_CHAMPION_SHOWN = {kind: tuple(n for n in names if n != "ece")[:4] for kind, names in problem.HEADLINE_METRICS.items()}
_CHAMPION_SHOWN[problem.BINARY] = ("auc", "pr_auc", "log_loss", "brier", "f1")


def _with_primary(names: Sequence[str], metric: str) -> Tuple[str, ...]:
    """``names``, and the primary metric after them when they lack it."""
    return tuple(names) if metric in names else (*names, metric)


def summary_lines(report: Dict[str, Any]) -> list:
    """A short human-readable summary of an evaluation report."""
    kind = report.get("problem_type", problem.BINARY)
    metric = report.get("primary_metric") or problem.default_primary_metric(kind)
    ch = report["challenger"]["metrics"]

    def shown(block: Dict[str, Any], names: Sequence[str]) -> str:
        return " ".join(f"{name}={_fmt(block.get(name))}" for name in names)

    lines = [
        f"model {report['model']}: test set {report['test_set']['sha256'][:12]} ({report['test_set']['rows']} rows)",
        f"  challenger: {shown(ch, _with_primary(_SHOWN[kind], metric))}",
    ]
    if kind == problem.BINARY:
        lines.append(f"  decision:   {shown(ch, ('threshold', 'precision', 'recall', 'prevalence'))}")
    resumed = resumed_note(report["challenger"].get("model_info") or {})
    if resumed:
        lines.append(f"  training:   {resumed}")
    if report["champion"] is not None:
        champion = shown(report["champion"]["metrics"], _with_primary(_CHAMPION_SHOWN[kind], metric))
        lines.append(f"  champion:   {champion}")
    elif report.get("champion_not_compared"):
        lines.append(f"  champion:   not compared: {report['champion_not_compared']}; judged as the first model")
    else:
        lines.append("  champion:   none (first model)")
    compared = (report.get("out_of_time") or {}).get("comparison")
    if compared:  # a model's training data reaches the set: what the gate compared the two on
        rows = f"{compared['rows']} of {compared['test_rows']} test rows after {compared['after']}"
        if compared["basis"] == COMPARED_OUT_OF_TIME:
            lines.append(f"  compared:   on the {rows}: challenger {metric}={_fmt(compared['challenger']['metrics'].get(metric))} "
                         f"champion {metric}={_fmt(compared['champion']['metrics'].get(metric))}")
        else:  # the whole set (too few rows after both models' data), or "advisory" in a report written before it
            favoured = COMPARED_WHOLE_SET.get(compared["basis"])
            on = (f"on the whole test set, which favours the {favoured}" if favoured else "advisory, not gated")
            lines.append(f"  compared:   {on} (the {rows}: too few)")
    fair = report["challenger"]["fairness"]
    keys = (("error_parity_ratio", "bias_gap", "mae_difference") if kind == problem.REGRESSION
            else ("demographic_parity_difference", "disparate_impact", "equal_opportunity_difference"))
    lines.append(f"  fairness ({fair['attribute']}): {shown(fair, keys)}")
    lines.append(f"  top features: {', '.join(top_features(report['attributions'])) or 'none (no feature moves the score)'}")
    gate = report["gate"]
    lines.append(f"  gate: {'PASSED' if gate['passed'] else 'FAILED'}")
    lines.extend(f"    - {reason}" for reason in gate["reasons"])
    registration = report.get(REGISTRATION_KEY) or {}
    if gate["passed"] and registration:
        # The status it is registered with, and why a person approves it when the callers' contract changes.
        note = approval.registration_note(registration, shown=report.get("champion_not_compared"))
        lines.append(f"  registration: {note or registration['approval_status']}")
    # SageMaker metric-definition friendly line.
    lines.append(f"evaluation-{metric.replace('_', '-')}={_fmt(ch.get(metric))}; gate-passed={1 if gate['passed'] else 0};")
    return lines


def top_features(attributions: Mapping[str, Any], count: int = 5) -> List[str]:
    """The ``count`` highest-ranked features that move the score at all: a feature with no attribution (null in every
    row, one value throughout, never split on) ranks last but is no top feature."""
    shares = attributions.get("features") or {}
    return [name for name in attributions["ranking"]
            if name not in shares or float(shares[name].get("mean_abs_shap") or 0.0) > 0.0][:count]


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.4f}"


def paired_delta_se(spec: ModelSpec, y: np.ndarray, mine: Any, my_threshold: float, theirs: Any, their_threshold: float,
                    *, draws: int = 200, cap: int = 20_000) -> Optional[float]:
    """The standard error of the challenger-minus-champion primary metric on the frozen test set: both models scored on
    the same ``draws`` bootstrap resamples of its rows (paired, seeded by the row count, so a report is reproducible).
    A resample holds at most ``cap`` rows and its spread is scaled by ``sqrt(cap / rows)``: a set of 200,000 rows costs
    what one of 20,000 does (each resample scores every metric twice; on the whole set that took a minute or more).
    None when the metric is undefined on half the resamples or more (a rare class absent from most of them)."""
    metric = spec.primary_metric

    def value(scores: Any, threshold: float, rows: np.ndarray) -> Optional[float]:
        # The metric alone (each module's metric_alone: the headline's value without the others).
        if spec.problem_type == problem.MULTICLASS:
            return metrics_multiclass.metric_alone(y[rows], np.asarray(scores)[rows], spec.classes, metric)
        if spec.problem_type == problem.REGRESSION:
            return metrics_regression.metric_alone(y[rows], np.asarray(scores)[rows], metric, spec.deviance)
        if len(np.unique(y[rows])) < 2:
            return None
        return metrics.metric_alone(y[rows], np.asarray(scores)[rows], metric, threshold)

    rng = np.random.default_rng(len(y))
    size = min(len(y), cap)
    deltas = []
    for _ in range(draws):
        rows = rng.integers(0, len(y), size)
        a, b = value(mine, my_threshold, rows), value(theirs, their_threshold, rows)
        if a is not None and b is not None and np.isfinite(float(a)) and np.isfinite(float(b)):
            deltas.append(float(a) - float(b))
    if len(deltas) < max(2, draws // 2):
        return None
    return float(np.std(deltas, ddof=1)) * float(np.sqrt(size / len(y)))


def _comparison(challenger: Dict[str, Any], champion: Optional[Dict[str, Any]], kind: str,
                metric: str) -> Optional[Dict[str, Any]]:
    """``<metric>_delta`` (challenger minus champion) of the compared metrics and the primary ``metric``; None
    without a champion."""
    if champion is None:
        return None
    out = {}
    for name in _with_primary(_COMPARED[kind], metric):
        a, b = challenger["metrics"].get(name), champion["metrics"].get(name)
        out[f"{name}_delta"] = None if a is None or b is None else float(a) - float(b)
    return out


def _comparable(champion: TrainedModel, spec: ModelSpec) -> Optional[str]:
    """Why the champion cannot be compared with a challenger of ``spec`` (None when it can): it predicts another
    problem type, other classes (binary: another positive class, as its metadata's ``classes`` records) or another
    target, so none of its metrics is on the challenger's scale; or one of
    its features is computed by another definition (type or expression) than the dataset declares now, so the test
    set's column of that name holds values it never learnt from (serving computes them its own way)."""
    if champion.problem_type != spec.problem_type:
        return f"the champion is a {champion.problem_type} model, the challenger a {spec.problem_type} one"
    if champion.problem_type == problem.MULTICLASS and champion.classes != list(spec.classes):
        return f"the champion predicts classes {champion.classes}, the challenger {list(spec.classes)}"
    # A binary model scores its last class (label code 1). The config has no positive-class setting (the target is
    # 0/1 or a boolean, 1/true positive), but a champion recorded with another class order scores the other class:
    # judged against these labels its AUC would read as 1 - AUC and any challenger would win.
    if champion.problem_type == problem.BINARY and champion.classes != list(spec.classes):
        return (f"the champion scores class {champion.classes[-1]!r} as positive (classes {champion.classes}), the "
                f"challenger {spec.classes[-1]!r} (classes {list(spec.classes)})")
    theirs = champion.metadata.get("target")
    if theirs is not None and theirs != spec.target:
        return f"the champion predicts target {theirs!r}, the challenger {spec.target!r}"
    # An artefact written before models carried their declaration (2026-12-02; its "dataset" is the dataset's name)
    # has nothing to compare: taken as it is.
    recorded = champion.metadata.get("dataset")
    trained_with = declared_definitions(recorded) if isinstance(recorded, Mapping) else {}
    now = declared_definitions(spec.catalog_dataset.to_declaration())
    changed = [f for f in champion.feature_names if f in trained_with and f in now and trained_with[f] != now[f]]
    if changed:
        return (f"the champion's features {changed} were computed by other definitions (type or expression) than the "
                "dataset declares now: " + "; ".join(f"{f}: {trained_with[f]!r}, now {now[f]!r}" for f in changed))
    return None


def contract_change(champion: TrainedModel, spec: ModelSpec) -> Optional[str]:
    """How a challenger of ``spec`` would answer the callers of ``champion`` (the version that serves) differently,
    or None when it would not: whatever :func:`_comparable` says (another problem type or other classes, another
    response shape; another target; a feature computed by another expression), or other features or another feature
    order - CSV and list requests are positional in ``feature_order``, so a caller's unchanged request would be read as
    other features' values."""
    shape = _comparable(champion, spec)
    if shape:
        return shape
    if list(champion.feature_names) != list(spec.features):
        return (f"the champion takes features {list(champion.feature_names)}, the challenger {list(spec.features)}, "
                "in that order: a CSV or list request, positional in feature_order, would be read differently")
    return None


def _check_model(model: TrainedModel, spec: ModelSpec, role: str, location: str) -> None:
    meta = model.metadata
    if meta.get("model") != spec.name or meta.get("target") != spec.target:
        raise InputError(
            f"{role} at {location!r} was trained for model {meta.get('model')!r} / target {meta.get('target')!r}, "
            f"not {spec.name!r} / {spec.target!r}"
        )
    if list(model.feature_names) != list(spec.features):
        raise InputError(f"{role} at {location!r} uses features {model.feature_names}, the model spec says {list(spec.features)}")


def _champion(
    champion_dir: Optional[str], group: Optional[str], region: Optional[str], sagemaker_client: Any, s3_client: Any,
    *, version: Optional[int] = None, model_sha256: Optional[str] = None, model: str = "",
    seal_location: Optional[str] = None,
) -> tuple:
    """(model or None, source description, scratch dir to delete or None). A registry's champion passes over a version
    whose reports are not where the deploy handler may read ``model``'s (in ``seal_location``'s bucket:
    :func:`pipeline_code.training.champion.report_place`).

    Raises:
        InputError: the directory's model digest is not ``model_sha256`` (its bytes changed since registration).
    """
    if not data_io.is_empty_dir(champion_dir):
        source: Dict[str, Any] = {"kind": "directory", "location": champion_dir}
        if version is not None:
            # A registry's version: the local registry picks it by the same rule as the Model Registry.
            source.update(version=version, rule=approval.RULE)
        if model_sha256:
            actual = seal.digests(champion_dir).model_sha256
            label = f"champion v{version}" if version is not None else "champion"
            if actual != model_sha256:
                raise InputError(
                    f"{label} at {champion_dir}: its model has sha256 {actual}, but {model_sha256} was recorded at "
                    f"registration ({MODEL_SHA256_PROPERTY}); its model was changed, so it cannot be the champion"
                )
            source["model_sha256"] = actual
        return load_model(champion_dir), source, None
    if group:
        from pipeline_code.training.champion import fetch_champion, report_place

        scratch = tempfile.mkdtemp(prefix="mlops-loop-champion-")
        found = fetch_champion(group, scratch, place=report_place(model, seal_location), sagemaker_client=sagemaker_client,
                               s3_client=s3_client, region=region)
        if found is None:
            return None, None, scratch
        return load_model(found.local_path), {"kind": "model_package", **found.to_dict()}, scratch
    return None, None, None


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_spec_argument(parser)
    parser.add_argument("--model-dir", "--model_dir", dest="model_dir", default="/opt/ml/processing/input/model")
    parser.add_argument("--test-dir", "--test_dir", dest="test_dir", default="/opt/ml/processing/input/test")
    parser.add_argument(
        "--champion-dir", "--champion_dir", dest="champion_dir", default="/opt/ml/processing/input/champion",
        help="champion model (model.json or model.tar.gz); missing/empty = look up --model-package-group, else none",
    )  # fmt: skip
    parser.add_argument(
        "--champion-version", "--champion_version", dest="champion_version", type=_positive_int, default=None,
        help="the registry version --champion-dir holds, recorded in the report (default: none)",
    )  # fmt: skip
    parser.add_argument(
        "--champion-model-sha256", "--champion_model_sha256", dest="champion_model_sha256", type=_sha256, default="",
        help="model digest recorded when --champion-dir's version was registered: a champion with other bytes is "
        "refused (default: not checked)",
    )  # fmt: skip
    parser.add_argument(
        "--model-package-group", "--model_package_group", dest="model_package_group", default="",
        help="SageMaker model package group whose serving version (the Approved one approved last) is the champion",
    )  # fmt: skip
    parser.add_argument("--region", default=None, help="AWS region for the champion lookup (default: the environment's)")
    parser.add_argument("--output-dir", "--output_dir", dest="output_dir", default="/opt/ml/processing/output/evaluation")
    parser.add_argument(
        "--seal-uri", "--seal_uri", dest="seal_uri", default="",
        help="where a challenger that passes the gate is sealed (s3://bucket/prefix/ or a directory); empty = not sealed",
    )  # fmt: skip
    parser.add_argument(
        "--shap-sample-rows", "--shap_sample_rows", dest="shap_sample_rows", type=_positive_int, default=explain.DEFAULT_MAX_ROWS
    )
    add_gate_arguments(parser)
    parser.add_argument(
        "--approval-status", "--approval_status", dest="approval_status", choices=approval.REGISTRATION_STATUSES,
        default=approval.PENDING,
        help="the status the environment asks a passing challenger to be registered with; the report's "
        f"{REGISTRATION_KEY}.approval_status is {approval.PENDING} instead when the callers' contract changes "
        f"({REGISTRATION_KEY}.contract_change) or the serving champion was not compared "
        f"({REGISTRATION_KEY}.champion_not_compared) (default: {approval.PENDING})",
    )  # fmt: skip
    parser.add_argument(
        "--gate-policy", "--gate_policy", dest="gate_policy", type=_gate_policy, default=None,
        help="the environment's configured thresholds as a JSON object (threshold -> value): the gate fails a run whose "
        "thresholds are looser (default: not checked)",
    )  # fmt: skip
    return parser


def _sha256(text: str) -> str:
    """``--champion-model-sha256``: empty, or 64 lower-case hex digits."""
    if text and not integrity.SHA256_HEX.match(text):
        raise argparse.ArgumentTypeError(f"expected a sha256 (64 lower-case hex digits), got {text!r}")
    return text


def _gate_policy(text: str) -> Dict[str, float]:
    """``--gate-policy``: :func:`pipeline_code.core.thresholds.parse_policy`, its error a usage error."""
    try:
        return parse_policy(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    thresholds = thresholds_from_args(parser, args)
    try:
        evaluate(
            args.model_spec,
            args.model_dir,
            args.test_dir,
            args.output_dir,
            thresholds,
            champion_dir=args.champion_dir,
            champion_version=args.champion_version,
            champion_model_sha256=args.champion_model_sha256 or None,
            model_package_group=args.model_package_group or None,
            region=args.region,
            shap_sample_rows=args.shap_sample_rows,
            seal_location=args.seal_uri or None,
            gate_policy=args.gate_policy,
            approval_status=args.approval_status,
            log=lambda line: print(line, flush=True),
        )
    except (InputError, GateInputError) as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
