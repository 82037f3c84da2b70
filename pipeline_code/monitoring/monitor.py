"""The model monitor: a SageMaker Processing job (or a local run) over one traffic window.

    python -m pipeline_code.monitoring.monitor --model-spec SPEC \\
        --baseline-dir /opt/ml/processing/input/baseline --model-dir /opt/ml/processing/input/model \\
        --capture-dir /opt/ml/processing/input/capture [--labels-dir DIR] \\
        --output-dir /opt/ml/processing/output/monitor --environment dev \\
        --psi-threshold 0.1 --false-alarm-rate 0.01 --ks-p-value 0.01 [--feature-thresholds '{"monthly_charges": 0.3}'] \\
        [--drift-exempt-features '["week_of_year"]'] [--prediction-drift report_only] \\
        [--publish-metrics --region eu-west-1]

A seasonal model (``models.<name>.monitoring``, docs/monitoring.md "Seasonal models"): ``--drift-exempt-features`` are
reported (their PSI, marked exempt) but never drift, and neither they nor ``--prediction-drift report_only``'s
predictions move a retrain alarm or the slow-drift sums.

Scheduled (nothing mounted but the code): ``--from-s3 --serving-stack <project>-<env>-serving
--capture-s3-uri s3://<inference bucket>/capture/<model>/ [--batch-s3-uri s3://.../batch/<model>/]
[--labels-s3-uri s3://.../labels/<model>/] [--window-hours 24] [--label-window-hours 168]``
first fills the (empty) baseline, model, capture and labels directories from S3 - the serving
version's registered baselines and model, the traffic of the last ``--window-hours`` - then runs
the same code path (see :mod:`pipeline_code.monitoring.remote`). A failed S3/API call is a report
error (unhealthy); when no version serves yet the report says so and stays healthy (``NotServing``).
With ``--endpoint-name [--capture-percent P]`` it also asks AWS what the endpoint really serves and how many
requests it answered (:mod:`pipeline_code.monitoring.serving_truth`): an InService endpoint serving another
version than the stack names (``serving_mismatch``) or capture far short of the requests (``capture_missing``)
is unhealthy.

Late labels: with ``--label-delay-days N`` the run records its window's scored requests (``predictions.parquet`` in
``--output-dir``, naming the version judged) and joins the labels that match no request of its window (``--labels-dir``
and ``--late-labels-dir``) to the records of ``--records-dir`` (with ``--from-s3``: its earlier runs' and the labels, over
the last N days + the label window + a day), so a label that comes weeks after its request is judged against the
prediction that request got: only the records of the version judged, and only the request days whose labels are all due
(the day ended N days ago), each once - by the first run after that whose report stands; the earlier reports of
``--history-dir`` say which days they judged (:mod:`.late_labels`).

Training/serving skew: with ``--feature-snapshots-dir`` (with ``--from-s3``: ``--feature-snapshots-s3-uri``), the
by-id records of the window are compared with the feature snapshots as of their request time (:mod:`.skew`);
``FeatureSkewRate`` is the largest feature's mismatch rate.

Slow drift: ``--history-dir`` (with ``--from-s3``: ``--history-s3-uri``, the job's own report prefix) holds the
earlier runs' ``report.json``; the newest carries the cumulative detector's state (:mod:`.cumulative`), and all
of them the trend the HTML report draws (:mod:`.history`).

Memory does not grow with the window: capture is decoded a block at a time and each chunk goes through one
:class:`.window_pass.WindowPass` - rescored where the capture has no prediction, counted for data drift,
prediction drift and data quality (every record), joined with its labels (every labelled record is kept for
model quality), and sampled: bias, attributions and the exact KS test read a seeded uniform sample of at most
``--sample-rows`` records (default 200,000; a smaller window is read whole, ``sections.row_sample`` says which).

Every problem type (``core.problem``) is monitored: the capture decoder reads the type's responses, and
prediction drift, model quality and bias are the type's (see :mod:`.drift` and :mod:`.quality`); the
report of a multiclass or regression model adds ``problem_type``, ``primary_metric`` and ``quality_drop``
(the primary metric's worsening, published as ``QualityDrop``) to its summary, that of a binary model judged on
another metric than AUC (PR-AUC, F1, log loss) ``primary_metric`` and ``quality_drop``. A regression model has no
AUC: ``model_auc`` / ``auc_drop`` stay empty and are not published.

Tables (Athena, Glue: docs/monitoring.md): with ``--tables-dir DIR --run-id ID`` the run writes its prediction records
to ``DIR/predictions/date=<yyyy-mm-dd>/run=<ID>/predictions.parquet`` (instead of ``--output-dir``) and its results in
long format (:mod:`.results_table`) to ``DIR/monitor-results/date=<yyyy-mm-dd>/run=<ID>/monitor_results.parquet``, the
day being the UTC day the run ran; the scheduled job uploads ``DIR/predictions`` and ``DIR/monitor-results`` to the
inference bucket's ``predictions/<model>/`` and ``monitor-results/<model>/``, away from the reports. Without it both
files go to ``--output-dir`` beside the report.

Writes ``report.json`` and ``report.html``. Exit status: 0 whenever a report was written -
capture lines none of which decode, fewer requests than ``--min-requests`` (the model's
``min_daily_requests``), a missing baseline, malformed capture lines, a schema change or a failing
section make the report *unhealthy* (``MonitorHealthy=0``, ``MonitoringErrors>0``) instead
of stopping monitoring; 2 for invalid arguments only. A window without any traffic is *quiet*
(status ``quiet``, healthy, nothing to compare) unless the model expects traffic: an intermittent
model's quiet day pages nobody.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import traceback
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from pipeline_code.core.contract import (BASELINE_FILES, DEFAULT_MAX_MALFORMED_RATE, DEFAULT_MAX_REFUSED_RATE,
                                         EVALUATION_FILE)
from pipeline_code.core.contract import MONITOR_RESULTS, PREDICTION_RECORDS, monitor_table_dir
from pipeline_code.core.contract import DEFAULT_MONITOR_WINDOW_GIB, MONITOR_WINDOW_HOURS, MONITOR_WINDOW_SETTING, monitor_window_bytes, monitor_window_fix
from pipeline_code.core.online_features import DEFAULT_MAX_SKEW_RATE
from pipeline_code.core.problem import BINARY, MULTICLASS, REGRESSION, TWEEDIE, quality_alarm_key
from pipeline_code.monitoring import capture as capture_mod
from pipeline_code.monitoring import cumulative, drift, quality, skew, report as report_mod
from pipeline_code.monitoring import history as history_mod
from pipeline_code.monitoring import late_label_guard, late_labels
from pipeline_code.monitoring.window_pass import COUNTS, DEFAULT_SAMPLE_ROWS, LABELS, RESCORING, SAMPLE, WindowPass
from pipeline_code.training.spec import ModelSpec, add_model_spec_argument
from pipeline_code.argtypes import non_negative_int as _non_negative_int, positive_float as _positive_float, positive_int as _positive_int, unit_interval as _unit

PROG = "python -m pipeline_code.monitoring.monitor"


def _baseline_problem(document: Any, model: str) -> Optional[str]:
    """Why a baseline document cannot be compared with (None when it can): not a JSON object, empty, no per-feature
    entries (statistics and constraints), or written for another model."""
    if not isinstance(document, dict) or not document:
        return "is empty or not a JSON object"
    if "features" in document and not document["features"]:
        return "has no features"
    if document.get("model") not in (None, model):
        return f"was written for model {document.get('model')!r}, not {model!r}"
    return None


def _load_json(path: str) -> Optional[Dict[str, Any]]:
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _find_evaluation(baseline_dir: str, explicit: Optional[str]) -> Optional[Dict[str, Any]]:
    """evaluation.json: the explicit path, else in the baseline dir or its parent (registry layout)."""
    candidates = [explicit] if explicit else [os.path.join(baseline_dir, EVALUATION_FILE),
                                              os.path.join(os.path.dirname(os.path.abspath(baseline_dir)), EVALUATION_FILE)]
    for path in candidates:
        if path and os.path.isdir(path):
            path = os.path.join(path, EVALUATION_FILE)
        doc = _load_json(path) if path else None
        if doc:
            return doc
    return None


def read_baseline_sample(path: str, columns: Sequence[str], max_rows: int = 200_000) -> Any:
    """Up to ``max_rows`` seeded rows of the baseline's raw values (parquet or CSV files under ``path``)."""
    import glob

    import pandas as pd

    files = sorted(f for f in glob.glob(os.path.join(path, "**", "*"), recursive=True) if f.endswith((".parquet", ".csv")))
    if not files:
        raise FileNotFoundError(f"no parquet/CSV files under {path!r}")
    parts = [pd.read_parquet(f) if f.endswith(".parquet") else pd.read_csv(f) for f in files]
    frame = pd.concat(parts, ignore_index=True)
    frame = frame[[c for c in columns if c in frame.columns]]
    return frame.sample(n=max_rows, random_state=0) if len(frame) > max_rows else frame


def run_monitor(spec: ModelSpec, args: argparse.Namespace, *, cloudwatch_client: Any = None,
                preflight: Any = None) -> Dict[str, Any]:
    """Build the report (never raises for bad inputs); write it; optionally publish metrics.

    ``preflight``: what ``--from-s3`` fetched (a :class:`remote.Preflight`; default none): its errors
    count as monitoring errors and its section is reported as ``sections.remote``.
    """
    errors: List[Dict[str, str]] = []
    sections: Dict[str, Any] = {}
    checks: List[Dict[str, Any]] = []

    def error(kind: str, message: str, *, section: Optional[str] = None) -> None:
        """A monitoring error; ``section``: the one section it is confined to (the window's other numbers stand),
        else the whole window cannot be trusted."""
        errors.append({"kind": kind, "message": message, **({"section": section} if section else {})})
        checks.append(drift.check(kind, "monitor", None, None, drift.ERROR, detail=message))

    def window_trusted() -> bool:
        return not any("section" not in e for e in errors)

    if preflight is not None:
        sections["remote"] = preflight.section
        checks.extend(preflight.checks)
        for item in preflight.errors:
            error(item["kind"], item["message"], section=item.get("section"))

    def guarded(name: str, func: Any, *, confined: bool = True) -> Any:
        """``func()`` as section ``name``; its failure is reported, and distrusts only that section unless the
        others rest on it (``confined`` false)."""
        try:
            result = func()
        except Exception as exc:  # noqa: BLE001 - a failing section is reported, monitoring continues
            error("section_failed", f"{name}: {type(exc).__name__}: {exc}", section=name if confined else None)
            sections[name] = {"status": drift.ERROR, "error": f"{type(exc).__name__}: {exc}",
                              "traceback": traceback.format_exc(limit=5)}
            return None
        sections[name] = result
        checks.extend(result.get("checks", []))
        return result

    # Baselines ---------------------------------------------------------------------------
    baseline: Dict[str, Optional[Dict[str, Any]]] = {}
    # A file --from-s3 left out (not downloaded, or not the registered bytes) was reported with its cause above; a
    # second "not found" would send whoever reads the report looking for the wrong cause.
    fetched = (preflight.section.get("baseline") if preflight is not None else None) or None
    explained = {file for file in BASELINE_FILES if fetched is not None and file not in fetched.get("files", {})}
    for file in BASELINE_FILES:
        name = os.path.splitext(file)[0]
        if file in explained:
            baseline[name] = None
            continue
        try:
            baseline[name] = _load_json(os.path.join(args.baseline_dir, file))
        except (OSError, ValueError) as exc:
            baseline[name] = None
            error("baseline_unreadable", f"{name}.json: {exc}")
            continue
        if baseline[name] is None:
            error("baseline_missing", f"{name}.json not found in {args.baseline_dir!r}")
            continue
        problem = _baseline_problem(baseline[name], spec.name)
        if problem:
            # Comparing traffic with an empty or another model's baseline would pass silently: it is unhealthy.
            baseline[name] = None
            error("baseline_invalid", f"{name}.json in {args.baseline_dir!r} {problem}; re-run the model's baseline step")
    evaluation = _find_evaluation(args.baseline_dir, args.evaluation)

    # Capture: decoded once, each chunk meeting the model, the labels and the baselines as it comes (.window_pass)
    categorical = [f for f in spec.frame_features if spec.is_categorical(f)]
    extra = [f for f in spec.frame_features if f not in spec.features]
    problem_type = spec.problem_type
    classes = [str(c) for c in spec.classes] if problem_type == MULTICLASS else []
    model, model_problem = _load_model(args.model_dir, problem_type)
    labels, labels_problem = None, None
    # A count or amount model's labels its deviance is undefined on are left out (counted as unusable_labels).
    deviance_power = spec.deviance[1] if spec.deviance else None
    if args.labels_dir:
        try:
            labels = quality.read_labels(args.labels_dir, problem_type, classes, deviance_power)
        except Exception as exc:  # noqa: BLE001 - the model-quality section reports it
            labels_problem = exc
    window_pass = WindowPass(
        problem_type=problem_type, probability_columns=[capture_mod.probability_column(c) for c in classes],
        statistics=baseline.get("statistics"), constraints=baseline.get("constraints"), model=model, labels=labels,
        inputs=spec.features, extra_columns=extra, sample_rows=args.sample_rows,
        # The version judged: records another version answered (a rollout in the window) are rescored by it.
        serving_digest=_serving_digest(args.model_dir) if model is not None else None)
    # With late labels: this window's scored requests recorded for the later runs their labels arrive in (.late_labels).
    # The version they are the predictions of, named in the file: a later run judges only its own version's records.
    records_version = late_labels.RecordsVersion(
        model_package_arn=preflight.serving.arn if preflight is not None and preflight.serving is not None else None,
        model_package_version=preflight.serving.version if preflight is not None and preflight.serving is not None else None,
        model_sha256=window_pass.serving_digest, classes=tuple(classes))
    recorder = (late_labels.RecordWriter(table_path(args, PREDICTION_RECORDS, late_labels.RECORDS_FILE), records_version)
                if args.label_delay_days is not None else None)
    declared, declared_not_used = _serving_dataset(model, spec)
    if declared_not_used:
        checks.append(drift.check("serving_declaration", "monitor", None, None, drift.WARN, detail=declared_not_used))
    window = capture_mod.read_capture(
        args.capture_dir, spec.features, categorical=categorical, extra_columns=extra, dataset=declared,
        problem_type=problem_type, classes=classes, consume=window_pass if recorder is None else late_labels.chain(window_pass, recorder),
    )
    summary_capture = window.summary()
    sections["capture"] = summary_capture
    recorded = recorder.close() if recorder is not None else None
    if recorded is not None and late_labels.writer_check(recorded):
        checks.append(late_labels.writer_check(recorded))
    quiet = window.records == 0 and window.lines == 0 and args.min_requests == 0
    if window.records == 0 and window.lines:
        error("empty_window", f"no decodable records under {args.capture_dir!r} ({window.lines} lines read)")
    elif window.records < args.min_requests:
        error("traffic_below_expected", f"{window.records} requests in the window, fewer than the {args.min_requests} "
              "the model expects (min_daily_requests); is the endpoint reachable?")
    # Two limits: lines that do not decode (a broken capture) and requests serving refused (a caller's out-of-contract
    # requests, answered as designed); each error names the limit it crossed.
    broken = window.malformed
    if broken and broken / window.lines > args.max_malformed_rate:
        reasons = ", ".join(f"{k}={v}" for k, v in window.malformed_reasons.items())
        error("malformed_records", f"{broken} of {window.lines} capture lines ({_percent(broken / window.lines)}) "
              f"malformed ({reasons}), over the limit of {_percent(args.max_malformed_rate)} "
              "(monitoring.max_malformed_rate)")
    if window.refused and window.refused / window.lines > args.max_refused_rate:
        # Per field: what the callers (or the source of a batch's inputs) must fix.
        fields = ", ".join(f"{k}={v}" for k, v in window.refused_fields.most_common())
        error("refused_records", f"{window.refused} of {window.lines} capture lines "
              f"({_percent(window.refused / window.lines)}) are requests serving refused, over the limit of "
              f"{_percent(args.max_refused_rate)} (monitoring.max_refused_rate); per field: {fields}")
    if window.schema_changed:
        error("schema_change", f"unknown keys {dict(window.unknown_keys)}, missing keys {dict(window.missing_keys)}, "
              f"CSV width mismatches {window.csv_width_mismatch}")
    if preflight is not None:  # --endpoint-name: the requests the endpoint answered against the lines captured
        from pipeline_code.monitoring import serving_truth

        lost, said = serving_truth.capture_findings(
            preflight.section.get("endpoint"), captured=window.lines, percent=args.capture_percent,
            truncated=bool((preflight.section.get("capture") or {}).get("truncated")))
        checks.extend(said)
        for item in lost:
            error(item["kind"], item["message"], section=item.get("section"))
    if model_problem:
        error(*model_problem)
    if window_pass.rescored is not None or RESCORING in window_pass.failures:
        # The predictions the other sections judge: rescoring that stopped part-way leaves them judging some chunks.
        guarded("rescoring", window_pass.rescoring_section, confined=False)
    sample = window_pass.sample_frame()
    if window.records:
        sections["row_sample"] = window_pass.sample_section(window.records)

    baseline_sample = None
    if args.baseline_sample_dir:
        def load_sample() -> Dict[str, Any]:
            nonlocal baseline_sample
            baseline_sample = read_baseline_sample(args.baseline_sample_dir, spec.features)
            return {"rows": int(len(baseline_sample)), "dir": args.baseline_sample_dir, "checks": []}
        guarded("baseline_sample", load_sample)

    threshold = model.threshold if model is not None else float(((baseline.get("statistics") or {}).get("prediction") or {}).get("threshold", 0.5))
    absent = window_pass.absent() if window.records else []
    feature_thresholds = args.feature_thresholds or {}
    exempt = list(args.drift_exempt_features or [])
    predictions_report_only = args.prediction_drift == "report_only"

    def after(step: str, section: Any) -> Any:
        """A section built on a step of the window pass: the error that step stopped on, if any, else its result."""
        def run() -> Any:
            window_pass.failure(step)
            return section()
        return run

    # The earlier reports: the cumulative detector's state, and the due days earlier runs judged (late labels).
    history = history_mod.read_history(args.history_dir, spec.name, report_mod.REPORT_FORMAT)

    if window.records:
        if baseline.get("statistics"):
            guarded("data_drift", after(COUNTS, lambda: drift.data_drift(
                window_pass.stats, baseline["statistics"], psi_threshold=args.psi_threshold, ks_p_value=args.ks_p_value,
                feature_thresholds=feature_thresholds, baseline_sample=baseline_sample, window_sample=sample,
                min_rows=args.min_rows, false_alarm_rate=args.false_alarm_rate, exempt=exempt)))
            guarded("prediction_drift", after(COUNTS, lambda: drift.prediction_drift(
                window_pass.stats.predictions(), baseline["statistics"], psi_threshold=args.psi_threshold, min_rows=args.min_rows,
                false_alarm_rate=args.false_alarm_rate, report_only=predictions_report_only,
                **({} if problem_type == BINARY else {"problem_type": problem_type, "classes": classes}))))
        if baseline.get("constraints"):
            guarded("data_quality", after(COUNTS, lambda: drift.data_quality(
                window_pass.stats, baseline["constraints"], type_violations=window.type_violations,
                max_missing_increase=args.max_missing_increase, max_range_violation_rate=args.max_range_violation_rate,
                max_unseen_rate=args.max_unseen_rate, absent_columns=absent, false_alarm_rate=args.false_alarm_rate)))
        if args.labels_dir:
            def labels_section() -> Dict[str, Any]:
                if labels_problem is not None:
                    raise labels_problem
                window_pass.failure(LABELS)
                base_metrics = ((evaluation or {}).get("challenger") or {}).get("metrics")
                base_metrics, deviance_apart = _deviance_baseline(base_metrics, (evaluation or {}).get("challenger"), spec)
                typed = {"primary_metric": spec.primary_metric, "max_quality_drop": args.max_quality_drop} | (
                    {} if problem_type == BINARY else {"problem_type": problem_type, "classes": classes,
                                                       "deviance": spec.deviance})
                records, rows_per_day = window_pass.labelled_records(), window_pass.rows_per_day
                earlier = None
                skipped = None  # why this run judges no due day (the look-back's labels are not all here)
                judged_before, history_unknown = {}, None
                if args.label_delay_days is not None:  # labels of requests earlier runs recorded join them too
                    skipped = _older_labels_lost(args, sections)
                    judged_before, history_unknown = _judged_before(history, errors, records_version, summary_capture,
                                                                    history_dir=args.history_dir)
                    if skipped is None:  # a pass the memory left cannot hold is skipped: an OOM kill loses the whole report
                        skipped = late_label_guard.memory_problem(late_labels.records_files(args.records_dir))
                    if skipped is None:
                        older = (late_labels.LookbackLabels(args.late_labels_dir, problem_type, classes,
                                                            deviance_power=deviance_power)
                                 if args.late_labels_dir else None)
                        try:
                            earlier = late_labels.join_earlier(
                                args.records_dir, labels, older_labels=older, matched_today=late_labels.matched_ids(records),
                                version=records_version, label_delay_days=args.label_delay_days,
                                label_window_hours=args.label_window_hours, judged_before=judged_before,
                                today_start=_today_start(summary_capture["start"], now=summary_capture.get("end"),
                                                         window_hours=args.window_hours),
                                records_left_out=((sections.get("remote") or {}).get("prediction_records") or {}).get("skipped_objects", 0),
                                records_not_read=((sections.get("remote") or {}).get("prediction_records") or {}).get("not_read", ()),
                                window_hours=args.window_hours,
                                labels_source=getattr(args, "labels_s3_uri", None) or args.labels_dir)
                        except late_labels.UnreadableLabels as exc:  # reported below, today's window is still judged
                            skipped = str(exc)
                        else:
                            records, rows_per_day = earlier.combined(records, rows_per_day)
                section = quality.model_quality(records, base_metrics, threshold=threshold,
                                                min_label_coverage=args.min_label_coverage,
                                                min_labeled_rows=args.min_labeled_rows, max_auc_drop=args.max_auc_drop,
                                                rows_per_day=rows_per_day, false_alarm_rate=args.false_alarm_rate, **typed)
                if earlier is not None:
                    earlier.annotate(section)
                    if history_unknown is not None:
                        section["checks"].append(late_labels.history_check(history_unknown))
                if skipped is not None:
                    # Judging the due days on the labels that are left would judge the skewed subset the look-back
                    # exists to avoid (churn-like labels: positives early, negatives at the delay): not this run.
                    section.setdefault("checks", []).append(drift.check(
                        late_label_guard.NOT_JUDGED, "model_quality", None, None, drift.WARN,
                        detail=f"no due day is judged this run: {skipped}; today's window is"))
                    # Several runs in a row: model-quality retraining has gone quiet, which pages (MonitorHealthy=0).
                    persistent = late_label_guard.persistent_error(history.reports, skipped)
                    if persistent is not None:
                        error(persistent["kind"], persistent["message"], section=persistent["section"])
                if deviance_apart is not None:
                    section.setdefault("checks", []).append(drift.check(
                        "deviance_not_compared", "model_quality", None, None, drift.WARN, detail=deviance_apart))
                if recorded is not None:
                    section["prediction_records_written"] = recorded
                # A label feed that stopped: no label in the label window (nor, with late labels, in the look-back
                # before it: a feed that writes a month's labels at once) after a run that read some pages.
                section["labels_read"] = int(len(labels))
                older = None
                if args.label_delay_days is not None and args.late_labels_dir:
                    older = len(quality.label_files(args.late_labels_dir)) if os.path.isdir(args.late_labels_dir) else 0
                    section["older_label_files"] = older
                unknown = args.label_delay_days is not None and _older_labels_lost(args, sections) is not None
                last_read = (None if len(labels) or older or unknown
                             else late_label_guard.labels_last_read(history.reports))
                if last_read is not None:
                    section["labels_last_read"] = last_read
                    stopped = late_label_guard.stopped_error(
                        getattr(args, "labels_s3_uri", None) or args.labels_dir, args.label_window_hours, last_read,
                        lookback=older is not None)
                    error(stopped["kind"], stopped["message"], section=stopped["section"])
                unusable = labels.attrs.get("unusable_labels") if labels is not None else None
                if unusable:  # some label rows are no label of this model: said, not silently left out
                    section["unusable_labels"] = unusable
                    section.setdefault("checks", []).append(drift.check(
                        "unusable_labels", "model_quality", float(unusable["rows"]), 0.0, drift.WARN, op=">",
                        detail=f"{unusable['rows']} label rows left out: not labels this model takes (e.g. "
                               f"{', '.join(repr(v) for v in unusable['examples'])})"))
                return section
            guarded("model_quality", labels_section)
        base_fairness = ((evaluation or {}).get("challenger") or {}).get("fairness")

        # The sample carries the labels when they were joined (none arrived: NaN), else no label column at all.
        guarded("bias", after(SAMPLE, lambda: quality.bias_drift(
            sample if args.labels_dir else sample.assign(label=float("nan")), spec.sensitive_attribute, base_fairness,
            threshold=threshold, min_group_rows=args.min_group_rows, max_dpd=args.max_dpd,
            max_group_rate_change=args.max_group_rate_change, min_di=args.min_di,
            **({} if problem_type == BINARY else {"problem_type": problem_type, "classes": classes}))))
        if model is not None and baseline.get("attributions"):
            guarded("attribution", after(SAMPLE, lambda: quality.attribution_drift(
                model, sample, baseline["attributions"], max_rows=args.shap_sample_rows, min_ndcg=args.min_attribution_ndcg,
                min_rows=args.min_rows)))

        if args.feature_snapshots_dir:
            guarded("feature_skew", lambda: skew.skew_section(
                spec, args.capture_dir, args.feature_snapshots_dir, max_rate=args.max_skew_rate,
                sample_rows=args.skew_sample_rows, min_compared=args.min_skew_records))

    # Slow drift: the cumulative detector, its state read from the earlier reports -------
    for finding in features_without_values(sections.get("data_quality"), spec.catalog_dataset, spec.features,
                                           window.records, min_rows=args.min_rows, missing_keys=window.missing_keys):
        error("feature_without_values", finding)
    trusted = window_trusted()  # an untrusted window's scores do not move the sums (its state carries forward)
    for problem in history.problems:
        # Only the slow-drift detector reads the earlier reports: today's window is judged without them.
        error("history_invalid", f"{problem}; the cumulative detector cannot trust its state: remove or repair the file",
              section="cumulative_drift")
    dd = sections.get("data_drift") or {}
    pdrift = sections.get("prediction_drift") or {}
    # Earlier reports unread or unreadable: the detector's state is unknown, so it is left out rather than restarted.
    history_lost = any(e.get("section") == "cumulative_drift" for e in errors)
    if baseline.get("statistics") and window.records and not history_lost:
        # Drift reported but never judged (exempt features, report-only predictions) has no sum: one kept from before
        # the exemption would carry its slow-drift alarm forward.
        scores = {name: entry.get("drift_score") if trusted else None for name, entry in (dd.get("features") or {}).items()
                  if name not in exempt}
        if not predictions_report_only:
            scores[cumulative.PREDICTION] = pdrift.get("drift_score") if trusted else None
        guarded("cumulative_drift", lambda: _cumulative_section(history, scores, baseline["statistics"],
                                                                window_days=_window_days(args.window_hours)))
    cum = sections.get("cumulative_drift") or {}

    # Summary ---------------------------------------------------------------------------
    dq = sections.get("data_quality") or {}
    mq = sections.get("model_quality") or {}
    bias = sections.get("bias") or {}
    attr = sections.get("attribution") or {}
    fskew = sections.get("feature_skew") or {}
    healthy = not errors
    failed = [c for c in checks if c["status"] == drift.FAIL]
    summary = {
        "records": window.records,
        "malformed_records": window.malformed,
        "refused_records": window.refused,
        "data_drift_max_psi": dd.get("max_psi"),
        "data_drift_score": dd.get("drift_score"),
        # None (not published) when no feature was judged (a window below min_rows): 0 would read as "stable".
        "drifted_feature_count": len(dd.get("drifted_features", [])) if _judged(dd) else None,
        "drifted_features": ", ".join(dd.get("drifted_features", [])) if dd else None,
        "prediction_psi": pdrift.get("psi"),
        "prediction_drift_score": pdrift.get("drift_score"),
        "cumulative_drift_score": cum.get("score"),
        "cumulative_drifted": ", ".join(cum.get("drifted", [])) if cum else None,
        "missing_rate_max": dq.get("max_missing_rate"),
        "data_quality_violations": len([c for c in dq.get("checks", []) if c["status"] == drift.FAIL]) if dq else None,
        "label_coverage": mq.get("label_coverage"),
        "model_auc": (mq.get("metrics") or {}).get("auc"),
        "auc_drop": mq.get("auc_drop"),
        # Only when a drop is over its limit but within what a window without any change shows on so few labels (no
        # retrain): the drop and that noise, for the verdict; not published.
        **{k: mq.get(k) for key in ("auc_drop", "quality_drop") if f"{key}_within_noise" in mq
           for k in (f"{key}_within_noise", f"{key}_noise")},
        "demographic_parity_difference": bias.get("demographic_parity_difference"),
        "attribution_ndcg": attr.get("ndcg"),
        "attribution_rank_correlation": attr.get("spearman"),
        "failed_checks": len(failed),
        "monitoring_errors": len(errors),
        "monitor_healthy": 1 if healthy else 0,
    }
    if not trusted:
        summary["metrics_withheld"] = "drift and quality metrics are not published: the window is unhealthy (see errors)"
    thresholds = {k: getattr(args, k) for k in (
        "psi_threshold", "false_alarm_rate", "ks_p_value", "max_missing_increase", "max_range_violation_rate", "max_unseen_rate",
        "max_auc_drop", "min_label_coverage", "min_labeled_rows", "max_dpd", "max_group_rate_change",
        "min_attribution_ndcg", "max_malformed_rate", "max_refused_rate", "min_rows")}
    if args.feature_snapshots_dir:  # a model scored by id: its skew is judged
        summary["feature_skew_rate"] = fskew.get("max_mismatch_rate")
        thresholds["max_skew_rate"] = args.max_skew_rate
    if problem_type != BINARY:
        summary.update({"problem_type": problem_type, "primary_metric": spec.primary_metric,
                        "quality_drop": mq.get("quality_drop")})
        thresholds["max_quality_drop"] = args.max_quality_drop
    elif quality_alarm_key(problem_type, spec.primary_metric) == "quality_drop":
        # A binary model judged on PR-AUC, F1 or log loss: its quality alarm watches that metric's drop.
        summary.update({"primary_metric": spec.primary_metric, "quality_drop": mq.get("quality_drop")})
        thresholds["max_quality_drop"] = args.max_quality_drop
    if problem_type == REGRESSION:  # its gap across the sensitive groups (a classifier's is the parity difference)
        summary["bias_gap"] = bias.get("bias_gap")
        thresholds["min_di"] = args.min_di
    report: Dict[str, Any] = {
        "format": report_mod.REPORT_FORMAT,
        "model": spec.name,
        "dataset": spec.dataset,
        "environment": args.environment,
        "generated_at": dt.datetime.now(dt.timezone.utc).isoformat(),
        "status": "unhealthy" if not healthy else ("alert" if failed else ("quiet" if quiet else "ok")),
        "healthy": healthy,
        # Whether the window's numbers stand (published, the retrain alarms see them): errors confined to one
        # section (a failing section, unreadable earlier reports) leave the rest of the window trusted.
        "trusted": trusted,
        "window": {k: summary_capture[k] for k in ("start", "end", "records", "lines", "files")},
        "thresholds": thresholds | {"feature_thresholds": feature_thresholds, "drift_exempt_features": exempt,
                                    "prediction_drift": args.prediction_drift},
        "baseline": {"dir": args.baseline_dir, "found": {k: v is not None for k, v in baseline.items()},
                     "evaluation_found": evaluation is not None},
        "summary": summary,
        "errors": errors,
        "checks": checks,
        "sections": sections,
    }
    report["trend"] = history.trend(summary)
    report = report_mod.clean(report)
    os.makedirs(args.output_dir, exist_ok=True)
    write_results(report, args, records_version.model_package_version)
    if args.publish_metrics:
        try:
            report["metrics_published"] = report_mod.publish_metrics(report, args.environment, spec.name, region=args.region,
                                                                     namespace=args.metric_namespace,
                                                                     client=cloudwatch_client)
        except Exception as exc:  # noqa: BLE001 - the report still gets written
            report["errors"].append({"kind": "publish_failed", "message": f"{type(exc).__name__}: {exc}"})
    report_mod.write_json(report, os.path.join(args.output_dir, "report.json"))
    with open(os.path.join(args.output_dir, "report.html"), "w", encoding="utf-8") as handle:
        handle.write(report_mod.render_html(report))
    return report


def table_path(args: argparse.Namespace, what: str, name: str) -> str:
    """Where this run writes ``name``, a file of its table ``what`` (:data:`PREDICTION_RECORDS` or
    :data:`MONITOR_RESULTS`): below ``--tables-dir`` in the tables' layout (``<what>/date=<day>/run=<id>/``, the day
    fixed once per run: the UTC day it ran), or, without it, ``--output-dir`` beside the report."""
    if not getattr(args, "tables_dir", None):
        return os.path.join(args.output_dir, name)
    if not getattr(args, "run_day", None):
        args.run_day = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
    return os.path.join(args.tables_dir, what, monitor_table_dir(args.run_day, args.run_id), name)


def write_results(report: Dict[str, Any], args: argparse.Namespace, model_package_version: Optional[int]) -> None:
    """``report``'s numbers as :mod:`.results_table` rows (``monitor_results.parquet``, :func:`table_path`); a failure
    is a warning of the report (the report itself is still written), never raised."""
    from pipeline_code.monitoring import results_table

    try:
        results_table.write(report, table_path(args, MONITOR_RESULTS, results_table.RESULTS_FILE),
                            run=getattr(args, "run_id", None) or "local", model_package_version=model_package_version)
    except Exception as exc:  # noqa: BLE001 - the report is the record; the table is a copy of its numbers
        report.setdefault("checks", []).append(drift.check(
            "results_table_failed", "monitor", None, None, drift.WARN,
            detail=f"monitor_results.parquet not written: {type(exc).__name__}: {str(exc)[:300]}"))


def features_without_values(quality_section: Optional[Mapping[str, Any]], dataset: Any, features: Sequence[str],
                            records: int, *, min_rows: int, missing_keys: Optional[Mapping[str, int]] = None) -> List[str]:
    """One message per model feature of ``features`` that no record of a window of ``records`` (at least ``min_rows``)
    gave a value, where the baseline had values often enough that a window of that size holds none by chance less
    often than ``monitoring.false_alarm_rate`` shared among the features (the data-quality section's missing rates and
    its ``alpha_per_feature``, the share its own checks are held to); none without that section.

    Why an error, not a finding: a raw field the callers renamed is an unknown key serving ignores (the contract) and
    the declared one is then scored as missing in every request, so the window shows no schema change, and the
    feature's PSI is skipped (no values) rather than drifted; its scores, and any retrain on them, are not the model's.
    ``missing_keys`` (the window's records lacking each feature key): a feature whose key requests that send the
    features themselves lacked is named as that key, not as raw fields those callers never send."""
    found: List[str] = []
    # A section that failed has no features (nor share): nothing to say.
    if not quality_section or "alpha_per_feature" not in quality_section or records < max(1, min_rows):
        return found
    entries = quality_section.get("features") or {}
    alpha = quality_section["alpha_per_feature"]
    for name in features:
        entry = entries.get(name) or {}
        rate, baseline_rate = entry.get("missing_rate"), entry.get("baseline_missing_rate")
        if rate is None or baseline_rate is None or rate < 1.0 or baseline_rate >= 1.0:
            continue
        if float(baseline_rate) ** records > alpha:
            continue  # a feature that is nearly always missing may miss a whole small window by chance
        fields = list(dataset.feature(name).expr.source_columns())
        lacking = (missing_keys or {}).get(name)
        if lacking:
            cause = (f"{lacking} request(s) that send the features themselves lack its key {name!r} (renamed "
                     "or dropped by the callers: the schema_change error names the keys they sent instead)")
        else:
            cause = (f"Its raw field(s) {fields} are no longer sent as declared (serving ignores a field it does not know, "
                     "such as a renamed one, and scores the declared one as missing) or the callers' feature computation "
                     "broke")
        found.append(
            f"feature {name!r} has a value in none of the window's {records} requests, while "
            f"{1.0 - float(baseline_rate):.1%} of the baseline's rows had one: every request was scored as if it were "
            f"missing. {cause[0].upper()}{cause[1:]}: fix the callers (docs/invocation-contract.md); this window's "
            "drift and quality are not published, so no retrain starts on it")
    return found


def _judged(data_drift: Dict[str, Any]) -> bool:
    """Whether the data-drift section judged any feature (a window below ``min_rows`` skips them all)."""
    return any(e.get("drift_score") is not None for e in (data_drift.get("features") or {}).values())


def _window_days(window_hours: float) -> int:
    """How many daily runs' windows a window of ``window_hours`` spans (runs are a day apart; 1 for a day or less)."""
    return max(1, int(round(window_hours / MONITOR_WINDOW_HOURS)))


def _cumulative_section(history: history_mod.History, scores: Dict[str, Any], statistics: Dict[str, Any], *,
                        window_days: int = 1) -> Dict[str, Any]:
    section = cumulative.update(cumulative.previous_section(history.reports), scores, cumulative.fingerprint(statistics),
                                window_days=window_days)
    section["history"] = {"reports": len(history.reports), "other_models_skipped": history.other_models}
    check = drift.check("cumulative_drift", "data_drift", section["score"], 1.0, drift.FAIL if section["drifted"] else drift.PASS,
                        op=">=", detail=(f"CUSUM of drift scores over {len(history.reports)} earlier reports; drifted: "
                                         f"{', '.join(section['drifted']) or 'none'}" + (f"; {section['reset']}" if "reset" in section else "")))
    return {**section, "checks": [check]}


def _serving_digest(model_dir: str) -> Optional[str]:
    """The digest serving reports for the model judged (``model.json`` + ``feature_metadata.json``, read from the
    directory or from inside its ``model.tar.gz``: :func:`seal.digests`); None when it has neither."""
    from pipeline_code.training import seal
    from pipeline_code.training.data_io import InputError

    try:
        return seal.digests(model_dir).model_sha256
    except InputError:
        return None


def _serving_dataset(model: Any, spec: ModelSpec) -> Tuple[Any, Optional[str]]:
    """The declaration raw-field requests are computed with, and why it is not the serving version's (None when it
    is, or when there is no model): the serving version's own (its artefact carries the one it was trained with, and
    serving computes with it), so while a version trained before a feature's expression changed still serves, its
    requests are read as it read them, not by the new expression against its baselines.
    The config's (``spec``) when there is no model, or the model's declaration cannot be used: it carries none (an
    artefact from before models carried it), it is unreadable, it is another model's, or it lacks one of the spec's
    frame features (another feature list: the capture check reports the schema change)."""
    from pipeline_code import catalog

    if model is None:
        return spec.catalog_dataset, None
    fallback = "raw-field requests are computed with the config's declaration"
    if model.metadata.get("model") != spec.name:
        return spec.catalog_dataset, (f"the serving version's artefact is of another model "
                                      f"({model.metadata.get('model')!r}, not {spec.name!r}): {fallback}")
    declaration = model.metadata.get("dataset")
    if not isinstance(declaration, Mapping):
        return spec.catalog_dataset, f"the serving version's artefact records no dataset declaration: {fallback}"
    try:
        theirs = catalog.load_dataset(declaration)  # as serving reads it (serving.inference)
    # An unreadable declaration: serving refuses such a model too (the model checks report it); one this catalog
    # refuses since (a name reserved later) still serves on the code its artefact carries. Monitoring goes on.
    except Exception as exc:  # noqa: BLE001
        problems = "; ".join(getattr(exc, "problems", None) or [f"{type(exc).__name__}: {exc}"])
        return spec.catalog_dataset, f"the serving version's dataset declaration is unusable ({problems}): {fallback}"
    lacking = [name for name in spec.frame_features if name not in theirs.feature_names]
    if lacking:
        return spec.catalog_dataset, (f"the serving version's dataset declaration lacks features {lacking} the model's config "
                                      f"reads: {fallback}")
    return theirs, None


def _load_model(model_dir: Optional[str], problem_type: str) -> Tuple[Any, Optional[Tuple[str, str]]]:
    """The model under ``model_dir`` (None: no dir, or the ``(kind, message)`` error why it cannot serve this window)."""
    if not model_dir:
        return None, None
    try:
        from pipeline_code.training.model_io import load_model

        model = load_model(model_dir)
    except Exception as exc:  # noqa: BLE001
        return None, ("model_unavailable", f"{model_dir!r}: {exc}")
    if model.problem_type != problem_type:
        return None, ("model_mismatch", f"the model at {model_dir!r} is a {model.problem_type} model, the spec says {problem_type}")
    return model, None


def _json_object(value: str) -> Dict[str, float]:
    try:
        data = json.loads(value) if value.strip() else {}
        if not isinstance(data, dict):
            raise ValueError("not an object")
        return {str(k): float(v) for k, v in data.items()}
    except (ValueError, TypeError) as exc:
        raise argparse.ArgumentTypeError(f"must be a JSON object of feature -> PSI threshold: {exc}") from None


def _name_list(value: str) -> List[str]:
    try:
        data = json.loads(value) if value.strip() else []
        if not isinstance(data, list) or not all(isinstance(v, str) for v in data):
            raise ValueError("not a list of names")
        return data
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"must be a JSON list of feature names, e.g. '[\"week_of_year\"]': {exc}") from None


def _percent(share: float) -> str:
    """``0.0131`` -> ``1.3 %``, ``0.05`` -> ``5 %``: a share as the monitor's errors print it."""
    return f"{round(share * 100, 1):g} %"


def _unit_percent(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 0.0 <= number <= 100.0:
        raise argparse.ArgumentTypeError(f"must be a percentage from 0 to 100, got {value!r}")
    return number


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_spec_argument(p)

    def arg(flag: str, **kw: Any) -> None:
        p.add_argument(f"--{flag}", f"--{flag.replace('-', '_')}", dest=flag.replace("-", "_"), **kw)

    arg("baseline-dir", default="/opt/ml/processing/input/baseline")
    arg("model-dir", default="/opt/ml/processing/input/model")
    arg("capture-dir", default="/opt/ml/processing/input/capture")
    arg("labels-dir", default=None, help="ground-truth labels (inference_id,label,label_time)")
    arg("evaluation", default=None, help="baseline evaluation.json (default: in the baseline dir or its parent)")
    arg("baseline-sample-dir", default=None,
        help="training rows (parquet/CSV, e.g. the train split) for the exact two-sample KS; default: binned KS on the "
        "baseline histogram")
    arg("output-dir", default="/opt/ml/processing/output/monitor")
    arg("history-dir", default=None, help="earlier runs' report.json files (any depth): the cumulative detector's state "
        "and the report's trend (default: none - the detector starts from 0)")
    arg("environment", default="dev")
    arg("cli-config", default=None, help="the --config of the workstation commands the report gives (the config the "
        "app was synthesized from; default: none, the tools' default config)")
    arg("psi-threshold", type=_positive_float, default=0.1,
        help="the smallest PSI that counts as drift (the material threshold; see pipeline_code.monitoring.calibration)")
    arg("false-alarm-rate", type=_unit, default=drift.DEFAULT_FALSE_ALARM_RATE,
        help="chance that a window with no drift raises a drift alarm, shared among its drift tests (default 0.01)")
    arg("feature-thresholds", type=_json_object, default={}, help="JSON object: per-feature material PSI overrides")
    arg("drift-exempt-features", type=_name_list, default=[],
        help="JSON list: features whose drift is reported (PSI, marked exempt) but never judged - no drift, no alarm, "
        "no slow-drift sum (a calendar feature of a seasonal model: models.<name>.monitoring.drift_exempt_features)")
    arg("prediction-drift", choices=("alarm", "report_only"), default="alarm",
        help="report_only: the predictions' PSI is reported, never judged (no PredictionDriftScore, no slow-drift sum; a "
        "seasonal model's predictions follow the season: models.<name>.monitoring.prediction_drift) (default alarm)")
    arg("ks-p-value", type=_unit, default=0.01)
    arg("max-missing-increase", type=_unit, default=0.05)
    arg("max-range-violation-rate", type=_unit, default=0.01)
    arg("max-unseen-rate", type=_unit, default=0.01)
    arg("max-auc-drop", type=_unit, default=0.05)
    arg("max-quality-drop", type=_positive_float, default=0.10,
        help="multiclass and regression models: the largest tolerated worsening of the primary metric vs the baseline "
        "evaluation - absolute for AUC, accuracy, F1 and R², relative for log loss, RMSE and MAE (0.1 = 10 %% higher)")
    arg("min-label-coverage", type=_unit, default=0.5)
    arg("min-labeled-rows", type=_positive_int, default=200)
    arg("max-dpd", type=_unit, default=0.10,
        help="the largest gap across the sensitive groups: of positive rates (multiclass: of the worst class's), of "
        "relative bias for regression (the bias gap); a baseline evaluation's larger gap allows it + half "
        "--max-group-rate-change (default %(default)s)")
    arg("max-group-rate-change", type=_unit, default=0.10)
    arg("min-di", type=_unit, default=None,
        help="regression models: the gate's minimum error parity ratio (its min_disparate_impact), below which the "
        "window fails as the gate would, or below the baseline's ratio - half --max-group-rate-change for a version the "
        "gate accepted near it (default: judged against the baseline alone)")
    arg("min-group-rows", type=_positive_int, default=100)
    arg("min-attribution-ndcg", type=_unit, default=0.90)
    arg("shap-sample-rows", type=_positive_int, default=2000)
    arg("max-malformed-rate", type=_unit, default=DEFAULT_MAX_MALFORMED_RATE,
        help="the largest share of capture lines that may be malformed before the window is distrusted; below it they "
        "are skipped and counted (MalformedRecords); requests serving refused have their own limit, --max-refused-rate "
        "(default %(default)s)")
    arg("max-refused-rate", type=_unit, default=DEFAULT_MAX_REFUSED_RATE,
        help="the largest share of capture lines that may be requests serving refused (4xx: out of the invocation "
        "contract) before the window is distrusted; below it they are counted, per field, and not judged "
        "(default %(default)s)")
    arg("min-rows", type=_positive_int, default=100)
    arg("feature-snapshots-dir", default=None,
        help="feature snapshots (what training reads) for the skew check of by-id traffic (default: no skew check)")
    arg("max-skew-rate", type=_unit, default=DEFAULT_MAX_SKEW_RATE,
        help=f"the largest share of by-id records whose served feature may differ from the snapshot (default {DEFAULT_MAX_SKEW_RATE})")
    arg("min-skew-records", type=_positive_int, default=skew.MIN_COMPARED,
        help=f"fewer compared store records than this are reported, not judged (default {skew.MIN_COMPARED})")
    arg("sample-rows", type=_positive_int, default=DEFAULT_SAMPLE_ROWS,
        help="records kept for what needs records, not counts - bias, attributions, the exact KS test: a window of "
        f"this many or fewer is kept whole, a larger one sampled (seeded, uniform; default {DEFAULT_SAMPLE_ROWS})")
    arg("skew-sample-rows", type=_positive_int, default=skew.DEFAULT_SAMPLE_ROWS,
        help="by-id records the skew check compares at most (a seeded sample)")
    arg("min-requests", type=_non_negative_int, default=0,
        help="requests the model expects in the window; fewer is unhealthy (default 0: a quiet window is quiet)")
    arg("publish-metrics", action="store_true")
    arg("metric-namespace", default=None,
        help="the CloudWatch namespace --publish-metrics writes to: the model's own in the environment, "
        "<project>/<environment>/<model>/monitoring (default: the default project's, mlops-loop/<environment>/<model>/monitoring)")
    arg("region", default=None, help="AWS region of CloudWatch and, with --from-s3, of S3/SageMaker/CloudFormation "
        "(default: the job's region)")
    # --from-s3: the scheduled job finds its inputs itself (pipeline_code.monitoring.remote).
    arg("from-s3", action="store_true", help="fill the baseline/model/capture/labels dirs from S3 first (they must be empty)")
    arg("serving-stack", default=None, help="with --from-s3: the serving stack, <project>-<env>-serving")
    arg("model", default=None, help="with --from-s3: model name of the stack parameter <PascalModel>ModelPackageArn "
        "(default: the model spec's name)")
    arg("capture-s3-uri", default=None, help="with --from-s3: s3://<inference bucket>/capture/<model>/")
    arg("batch-s3-uri", default=None, help="with --from-s3: s3://<inference bucket>/batch/<model>/ (batch transform "
        "outputs of the window with their inputs; default: none)")
    arg("history-s3-uri", default=None, help="with --from-s3: s3://<inference bucket>/monitor/<model>/, the earlier "
        "reports (the newest 30 are read into --history-dir, default 'history' next to --capture-dir)")
    arg("labels-s3-uri", default=None, help="with --from-s3: s3://<inference bucket>/labels/<model>/ (default: no labels; "
        "--labels-dir then defaults to 'labels' next to --capture-dir)")
    arg("endpoint-name", default=None, help="with --from-s3: the endpoint that serves the model; each run asks SageMaker "
        "which version it really serves (another than the stack names, InService: unhealthy, serving_mismatch) and "
        "CloudWatch how many requests it answered (far fewer captured than --capture-percent of them: unhealthy, "
        "capture_missing) (default: neither check; batch and multi-model endpoints have none)")
    arg("capture-percent", type=_unit_percent, default=100.0,
        help="with --endpoint-name: the share of requests the endpoint captures, in percent (default 100)")
    arg("window-hours", type=_positive_float, default=24.0, help="traffic window: objects modified in the last N hours")
    arg("label-window-hours", type=_positive_float, default=168.0, help="labels modified in the last N hours")
    arg("label-delay-days", type=_non_negative_int, default=None,
        help="how long after its request a label may come (the model's label_delay_days): the run records its window's "
        "requests (predictions.parquet in --output-dir, or below --tables-dir) and joins the labels today's window "
        "lacks to the records of --records-dir (with --from-s3: the earlier runs' under --records-s3-uri and "
        "--history-s3-uri, of the last label_delay_days + "
        "--label-window-hours + --window-hours) (default: none - labels join today's window only)")
    arg("tables-dir", default=None, help="write the prediction records and monitor_results.parquet in the Glue "
        "tables' layout below this directory (predictions/ and monitor-results/, each date=<yyyy-mm-dd>/run=<--run-id>/) "
        "instead of --output-dir (the scheduled job: uploaded to predictions/<model>/ and monitor-results/<model>/)")
    arg("run-id", default=None, help="with --tables-dir: this run's id, its run=<id> folder (the scheduled job: the "
        "schedule's execution id)")
    arg("records-s3-uri", default=None, help="with --from-s3 and --label-delay-days: s3://<inference bucket>/"
        "predictions/<model>/, the earlier runs' prediction records in the tables' layout (read with those under "
        "--history-s3-uri, where runs before it wrote them)")
    arg("records-dir", default=None, help="earlier runs' predictions.parquet files, any depth (with --from-s3 and "
        "--label-delay-days: 'records' next to --capture-dir)")
    arg("late-labels-dir", default=None, help="with --label-delay-days: the labels older than --label-window-hours, for "
        "the earlier runs' records only (with --from-s3 and --labels-s3-uri: those of the look-back, 'late-labels' next "
        "to --capture-dir) (default: none - --labels-dir's only)")
    arg("feature-snapshots-s3-uri", default=None, help="with --from-s3: s3://<features bucket>/snapshots/<dataset>/, "
        "the snapshots of the last --label-window-hours (--feature-snapshots-dir then defaults to 'snapshots' next to "
        "--capture-dir)")
    arg("max-window-bytes", type=_positive_int, default=monitor_window_bytes(DEFAULT_MONITOR_WINDOW_GIB),
        help=f"the cap of each download (the scheduled job's: the model's {MONITOR_WINDOW_SETTING} in bytes; default "
        f"{DEFAULT_MONITOR_WINDOW_GIB} GiB); the newest objects are kept (records: the due first) and the report notes the cut")
    return p


def main(argv: Optional[Sequence[str]] = None, *, cloudwatch_client: Any = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.tables_dir and not args.run_id:
        parser.error("--tables-dir needs --run-id (the run's folder, run=<id>: the scheduled job gives the schedule's "
                     "execution id)")
    if args.run_id and ("/" in args.run_id or args.run_id in (".", "..")):
        parser.error(f"--run-id {args.run_id!r} must be one folder name (no '/')")
    preflight = None
    if args.from_s3:
        from pipeline_code.monitoring import remote

        problem = remote.check_arguments(args)
        if problem:
            parser.error(problem)
        preflight = remote.prepare_inputs(args)
        if preflight.not_serving:
            remote.write_not_serving_report(args.model_spec, args, preflight, cloudwatch_client=cloudwatch_client)
            print(f"monitor {args.model_spec.name} ({args.environment}): status=not_serving "
                  f"({preflight.section['serving']['detail']})")
            return 0
    report = run_monitor(args.model_spec, args, cloudwatch_client=cloudwatch_client, preflight=preflight)
    s = report["summary"]
    print(f"monitor {report['model']} ({report['environment']}): status={report['status']} records={s['records']} "
          f"max_psi={s['data_drift_max_psi']} drifted={s['drifted_features']} prediction_psi={s['prediction_psi']} "
          f"auc={s['model_auc']} errors={[e['kind'] for e in report['errors']]}")
    return 0


def _deviance_baseline(base_metrics: Optional[Mapping[str, Any]], challenger: Optional[Mapping[str, Any]],
                       spec: ModelSpec) -> Tuple[Optional[Mapping[str, Any]], Optional[str]]:
    """``(baseline metrics, why the deviance is not compared)``: a tweedie model's deviance depends on its power, and the
    monitor's spec is the config's, which may have changed it before a version trained on it serves; the serving
    version's evaluation (``model_info.tweedie_variance_power``) measured another quantity then, so its deviance is left
    out of the baseline (the quality check on it is skipped) and the warning says why."""
    name = spec.deviance[0] if spec.deviance else None
    if name is None or spec.loss != TWEEDIE or not base_metrics or base_metrics.get(name) is None:
        return base_metrics, None
    served = ((challenger or {}).get("model_info") or {}).get("tweedie_variance_power")
    power = spec.deviance[1]
    if isinstance(served, (int, float)) and float(served) == power:
        return base_metrics, None
    was = "an unrecorded tweedie_variance_power" if served is None else f"tweedie_variance_power {served:g}"
    return ({key: value for key, value in base_metrics.items() if key != name},
            f"the serving version's {name} was measured at {was} and the model's is now {power:g}: the window's is not "
            f"compared with it (another quantity) until a version trained at {power:g} serves")


def _older_labels_lost(args: argparse.Namespace, sections: Dict[str, Any]) -> Optional[str]:
    """Why the look-back's labels before the label window are not all here (``--from-s3``: their download failed or
    was cut at ``--max-window-bytes``), else None."""
    if not (getattr(args, "from_s3", False) and getattr(args, "labels_s3_uri", None)):
        return None
    downloaded = (sections.get("remote") or {}).get("late_labels")
    if downloaded is None:
        return "the look-back's labels were not downloaded (see the labels_download_failed error)"
    if downloaded.get("truncated"):
        return (f"the look-back's labels were cut at --max-window-bytes ({downloaded.get('skipped_objects')} files "
                f"left out); {monitor_window_fix(getattr(args, 'model', None))}")
    return None


def _judged_before(history: history_mod.History, errors: Sequence[Mapping[str, Any]], version: late_labels.RecordsVersion,
                   window: Mapping[str, Any], *, history_dir: Optional[str]) -> Tuple[Dict[str, str], Optional[str]]:
    """``(judged, unknown)``: the due days earlier runs judged for ``version`` (:func:`late_labels.judged_days`), or,
    when the earlier reports cannot all be read, none and why (``unknown``): the run then judges every due day rather
    than silently skip one whose judging it cannot see."""
    if not history_dir:
        return {}, "no --history-dir (the earlier runs' reports) was given"
    failed = [e for e in errors if e.get("kind") == "history_download_failed"]
    if failed:
        return {}, f"the earlier runs' reports were not downloaded ({failed[0]['message']})"
    if history.problems:
        return {}, (f"{len(history.problems)} of the earlier runs' reports could not be read (e.g. {history.problems[0]})")
    return late_labels.judged_days(history.reports, version, window=window), None


def _today_start(start: Optional[str], *, now: Optional[str], window_hours: float) -> Optional[dt.datetime]:
    """Where today's window begins for the earlier records: its earliest request, but never before the window's own
    start (``--window-hours`` before its latest request): a request carrying an old ``inference_time`` (a backfill)
    would otherwise hide every earlier record from the join."""
    if not start:
        return None
    earliest = dt.datetime.fromisoformat(start)
    if not now:
        return earliest
    return max(earliest, dt.datetime.fromisoformat(now) - dt.timedelta(hours=window_hours))


if __name__ == "__main__":
    sys.exit(main())
