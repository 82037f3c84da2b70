"""The monitoring report (report.json, report.html) and its CloudWatch metrics.

Metrics: the model's own namespace ``<project>/<environment>/<model>/monitoring``, dimensions ``Environment`` and
``Model`` (plus ``Feature`` for the per-feature ``FeaturePsi``). ``MonitorHealthy`` is 1 only when
the monitor itself could do its job (no empty window, missing, empty or mismatched baseline,
malformed lines over the allowed rate, schema change or failed section); drift findings do not make
the monitor unhealthy. An unhealthy report publishes its health metrics only: its drift and quality
numbers rest on data the monitor could not trust, so the retrain alarms see no data (not breaching)
while the health alarm pages people.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
import os
from typing import Any, Dict, List, Mapping, Optional

from pipeline_code.core.contract import (
    DRIFT_SCORE_ALARM,
    FEATURE_PSI_METRIC,
    FEATURE_SKEW_METRIC,
    MONITOR_DIMENSIONS,
    DEFAULT_PROJECT,
    MONITOR_METRICS,
    QUALITY_RETRAIN_ALARM,
    RETRAIN_DRIFT_ALARMS,
    monitor_namespace,
)
from pipeline_code.core.problem import BINARY, default_primary_metric, higher_is_better, label, quality_alarm_key
from pipeline_code.monitoring import figures

REPORT_FORMAT = "mlops-loop/monitor-report/v1"


def metric_data(report: Mapping[str, Any], environment: str, model: str) -> List[Dict[str, Any]]:
    """The CloudWatch MetricData of a report (values that are None are not published; an unhealthy report's
    drift and quality metrics are withheld, see the module docstring)."""
    dims = [{"Name": name, "Value": value} for name, value in zip(MONITOR_DIMENSIONS, (environment, model))]
    summary = report["summary"]
    trusted = trusted_window(report)
    out = []
    for metric in MONITOR_METRICS:
        value = summary.get(metric.key)
        if value is None or (isinstance(value, float) and not math.isfinite(value)) or not (trusted or metric.health):
            continue
        out.append({"MetricName": metric.name, "Dimensions": dims, "Value": float(value), "Unit": metric.unit})
    if not trusted:
        return out
    for feature, entry in (report.get("sections", {}).get("data_drift", {}).get("features") or {}).items():
        if entry.get("psi") is not None:
            out.append({"MetricName": FEATURE_PSI_METRIC, "Dimensions": dims + [{"Name": "Feature", "Value": feature}],
                        "Value": float(entry["psi"]), "Unit": "None"})
    for feature, entry in (report.get("sections", {}).get("feature_skew", {}).get("features") or {}).items():
        out.append({"MetricName": FEATURE_SKEW_METRIC, "Dimensions": dims + [{"Name": "Feature", "Value": feature}],
                    "Value": float(entry["rate"]), "Unit": "None"})
    return out


def trusted_window(report: Mapping[str, Any]) -> bool:
    """Whether the report's drift and quality numbers stand: its window had no error beyond one section's (a report
    from before ``trusted`` was written: whether it was healthy)."""
    return bool(report.get("trusted", report.get("healthy", True)))


def publish_metrics(report: Mapping[str, Any], environment: str, model: str, *, region: Optional[str] = None,
                    client: Any = None, timestamp: Optional[dt.datetime] = None, namespace: Optional[str] = None) -> int:
    """put_metric_data in batches of 20 into ``namespace`` (default: the default project's namespace of ``model`` in
    ``environment``, ``core.contract.monitor_namespace``); returns the number of metrics put."""
    if client is None:
        import boto3

        client = boto3.client("cloudwatch", region_name=region)
    data = metric_data(report, environment, model)
    when = timestamp or dt.datetime.now(dt.timezone.utc)
    for item in data:
        item["Timestamp"] = when
    for i in range(0, len(data), 20):
        client.put_metric_data(Namespace=namespace or monitor_namespace(DEFAULT_PROJECT, environment, model),
                               MetricData=data[i : i + 20])
    return len(data)


def write_json(report: Mapping[str, Any], path: str) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2, sort_keys=False, default=_default, allow_nan=False)
    os.replace(tmp, path)


def _default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def clean(value: Any) -> Any:
    """JSON-safe copy: numpy scalars to Python, NaN/inf to None."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


MAX_DISTRIBUTIONS = 6


def retrain_alarms(report: Mapping[str, Any]) -> List[str]:
    """Which retrain alarms this report's metrics put into ALARM, as CloudWatch will (``data-drift``,
    ``prediction-drift``, ``slow-drift``, ``quality``); a report whose window is not trusted publishes none of them."""
    if not trusted_window(report):
        return []
    summary = report.get("summary") or {}
    fired = [alarm for alarm, key in RETRAIN_DRIFT_ALARMS
             if summary.get(key) is not None and summary[key] >= DRIFT_SCORE_ALARM]
    # The quality alarm watches one check, the one core.problem.quality_alarm_key names for the model's type and
    # primary metric; the others (label coverage, a multiclass AUC drop next to its primary metric) inform only.
    quality = (report.get("sections") or {}).get("model_quality") or {}
    watched = quality_alarm_key(quality.get("problem_type") or BINARY, quality.get("primary_metric"))
    if any(c.get("check") == watched and c.get("status") == "fail" for c in quality.get("checks") or []):
        fired.append(QUALITY_RETRAIN_ALARM)
    return fired


def quality_change(report: Mapping[str, Any]) -> Optional[str]:
    """The change of the metric the model's quality alarm watches, in words (``AUC 0.812, down 0.031 from the
    evaluation's (alarm at 0.05)``, ``RMSE up 9.2 % (alarm at 10 %)``); None until labels let it be measured."""
    s, thresholds = report.get("summary") or {}, report.get("thresholds") or {}
    kind = s.get("problem_type") or BINARY
    metric = s.get("primary_metric") or default_primary_metric(kind)
    key = quality_alarm_key(kind, metric)
    if s.get(key) is None and s.get(f"{key}_within_noise") is not None:
        # Over the limit, but a window without any change drops that much on so few labels (quality.model_quality).
        drop, name, noise = s[f"{key}_within_noise"], "AUC" if key == "auc_drop" else label(metric), s.get(f"{key}_noise")
        how = ("too few labels to measure any drop" if noise is None
               else f"a window without any change is this much worse with probability monitoring.false_alarm_rate "
                    f"up to {noise:.3g}")
        return f"{name} worse by {drop:.3g} than the evaluation's, within the noise of this window's labels ({how}): no retrain"
    if key == "auc_drop":
        drop = s.get("auc_drop")
        if drop is None:
            return None
        return (f"AUC {_fmt(s.get('model_auc'))}, {'down' if drop >= 0 else 'up'} {abs(drop):.3f} from the evaluation's "
                f"(alarm at a drop of {_fmt(thresholds.get('max_auc_drop'))})")
    drop = s.get("quality_drop")
    if drop is None:
        return None
    # A drop is a worsening: down for AUC or R², up for an error metric, which is judged relative to the evaluation's
    # value (monitoring.quality.quality_drop).
    direction = ("down" if drop >= 0 else "up") if higher_is_better(metric) else ("up" if drop >= 0 else "down")
    if not higher_is_better(metric):
        limit = thresholds.get("max_quality_drop")
        return (f"{label(metric)} {direction} {abs(drop):.1%} from the evaluation's (alarm at "
                f"{'n/a' if limit is None else format(limit, '.0%')} worse)")
    return (f"{label(metric)} {direction} {abs(drop):.3f} from the evaluation's (alarm at "
            f"{_fmt(thresholds.get('max_quality_drop'))})")


def verdict(report: Mapping[str, Any]) -> List[str]:
    """The report's plain-language reading, one sentence each: what drifted, how much it matters, what the loop does."""
    s = report.get("summary") or {}
    sections = report.get("sections") or {}
    if report.get("status") == "not_serving":
        return ["No model version serves yet: nothing to monitor until the first approval."]
    kinds = ", ".join(sorted({e["kind"] for e in report.get("errors") or []}))
    if not trusted_window(report):
        return [f"The monitor could not trust this window ({kinds}; see Monitoring errors).",
                "Its drift and quality numbers are not published, so no retrain starts; the monitor-unhealthy alarm calls people."]
    if report.get("status") == "quiet":
        return ["No traffic in this window: nothing to compare, nothing to do."]
    out = []
    if not report.get("healthy", True):
        failed = ", ".join(sorted({e["section"] for e in report.get("errors") or [] if e.get("section")}))
        out.append(f"Part of this report failed ({failed}: {kinds}; see Monitoring errors) and the monitor-unhealthy alarm "
                   "calls people; the rest of the window was judged as usual.")
    data_drift = sections.get("data_drift") or {}
    features = data_drift.get("features") or {}
    drifted = sorted(((e["drift_score"], name, e) for name, e in features.items() if e.get("drifted")), key=lambda t: -t[0])
    if drifted:
        out.append("Drifted: " + "; ".join(f"{name} (PSI {e['psi']:.3f}, {score:.1f}x its threshold)" for score, name, e in drifted) + ".")
    else:
        scored = [(e["drift_score"], name) for name, e in features.items() if e.get("drift_score") is not None]
        largest = max(scored, default=None)
        if data_drift.get("status") == "error":
            out.append("Data drift could not be computed (see Monitoring errors): no feature is called stable.")
        elif features and largest is None:
            min_rows = (report.get("thresholds") or {}).get("min_rows")
            out.append(f"Drift was not judged: no feature had the {min_rows} values in the window a PSI needs (min_rows; "
                       f"{s.get('records')} records); a window like this is reported, never called stable.")
        elif data_drift:
            out.append("No feature drifted" + (f" (closest: {largest[1]} at {largest[0]:.0%} of its threshold)." if largest else "."))
    exempt = [(name, e) for name, e in features.items() if e.get("exempt") and e.get("psi") is not None]
    if exempt:
        out.append("Exempt from drift, reported only (monitoring.drift_exempt_features): "
                   + "; ".join(f"{name} (PSI {e['psi']:.3f})" for name, e in exempt) + ".")
    other = (sections.get("rescoring") or {}).get("other_versions") or {}
    if other:
        models = ((sections.get("capture") or {}).get("answered_by") or {}).get("models") or {}
        names = ", ".join(f"version {models[d]['version']}" if (models.get(d) or {}).get("version") else f"artefact {d[:12]}"
                          for d in other)
        out.append(f"{sum(other.values())} records were answered by another model version ({names}; the window holds a "
                   "rollout): they are judged by the serving version's own predictions, rescored.")
    prediction = sections.get("prediction_drift") or {}
    if prediction.get("exempt") and prediction.get("psi") is not None:
        out.append(f"Predictions: PSI {prediction['psi']:.3f}, reported only (monitoring.prediction_drift: report_only); "
                   "labelled model quality judges them.")
    if prediction.get("drift_score") is not None:
        out.append(f"Predictions {'drifted' if prediction.get('status') == 'fail' else 'are stable'} "
                   f"(PSI {prediction['psi']:.3f}, {prediction['drift_score']:.0%} of its threshold).")
    slow = sections.get("cumulative_drift") or {}
    if slow.get("drifted"):
        out.append(f"Slow drift: {', '.join(slow['drifted'])} stayed near the threshold run after run (CUSUM at its alarm level).")
    quality = sections.get("model_quality") or {}
    watched = quality_change(report)
    if watched:
        out.append(f"Model quality on labelled traffic: {watched} (label coverage {_fmt(s.get('label_coverage'))}).")
    elif quality:
        out.append("Model quality: not enough labelled traffic yet to judge it.")
    shifted = [c for c in quality.get("checks") or [] if c.get("check") == "bias_shift" and c.get("status") == "fail"]
    if shifted:  # regression: the quality drop above can read as an improvement (quality._bias_shift)
        out.append(f"Predictions are systematically off: {shifted[0].get('detail')}. RMSE and MAE compare a window whose "
                   "targets moved with the evaluation in the target's units, so they do not judge it.")
    fired = retrain_alarms(report)
    if fired:
        out.append(f"What the loop does: the {', '.join(fired)} retrain alarm{'s' if len(fired) > 1 else ''} "
                   "fire; the retrain trigger starts the training pipeline unless a retrain ran within the cooldown.")
    else:
        out.append("What the loop does: nothing - no retrain alarm fires.")
    return out


def render_html(report: Mapping[str, Any]) -> str:
    """A self-contained HTML page (inline CSS and SVG, no scripts, no external assets): the verdict first, then the
    figures (drift scores, the drifted features' distributions, the predictions', the trend), then every check."""
    s = report["summary"]
    esc = html.escape
    rows = []
    order = {"error": 0, "fail": 1, "warn": 2, "pass": 3, "skipped": 4}
    for c in sorted(report["checks"], key=lambda c: (order.get(c["status"], 9), c["category"], c.get("feature") or "")):
        rows.append(
            f"<tr><td>{esc(c['category'])}</td><td>{esc(c['check'])}</td><td>{esc(c.get('feature') or '')}</td>"
            f"<td>{_fmt(c.get('value'))}</td><td>{esc(c.get('op', ''))} {_fmt(c.get('threshold'))}</td>"
            f"<td class='{esc(c['status'])}'>{esc(c['status'].upper())}</td><td>{esc(c.get('detail', ''))}</td></tr>"
        )
    errors = "".join(f"<li><b>{esc(e['kind'])}</b>: {esc(e['message'])}</li>" for e in report["errors"]) or "<li>none</li>"
    headline = "".join(f"<tr><th>{esc(k)}</th><td>{_fmt(v)}</td></tr>" for k, v in s.items())
    capture = report["sections"].get("capture", {})
    samples = [*capture.get("malformed", {}).get("samples", []), *capture.get("refused", {}).get("samples", [])]
    sample_rows = "".join(
        f"<tr><td>{esc(str(x['file']))}:{x['line']}</td><td>{esc(x['reason'])}</td><td><code>{esc(x['excerpt'])}</code></td></tr>" for x in samples
    )
    status = report["status"]
    reading = "".join(f"<li>{esc(sentence)}</li>" for sentence in verdict(report))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Monitor report - {esc(report['model'])} ({esc(report['environment'])})</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:70em}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left;font-size:13px}}th{{background:#f3f3f3}}
.badge{{border:2px solid #222;padding:3px 10px;border-radius:4px;font-weight:bold}}
.fail,.error{{font-weight:bold;text-decoration:underline}}.warn{{font-style:italic}}
figure{{margin:1em 0}}figure svg{{max-width:100%;height:auto}}.verdict li{{margin:0.3em 0;font-size:15px}}</style></head><body>
<h1>Model monitor: {esc(report['model'])} <small>({esc(report['environment'])})</small></h1>
<p>Status: <span class="badge">{esc(status.upper())}</span> &nbsp; healthy: <b>{report['healthy']}</b> &nbsp;
generated {esc(report['generated_at'])}; window {esc(str(report['window'].get('start')))} .. {esc(str(report['window'].get('end')))},
{report['window'].get('records', 0)} records.</p>
<h2>Verdict</h2><ul class="verdict">{reading}</ul>
{_figures(report)}
<h2>Headline</h2><table>{headline}</table>
<h2>Monitoring errors</h2><ul>{errors}</ul>
<h2>Checks</h2><table><tr><th>category</th><th>check</th><th>feature</th><th>value</th><th>threshold</th><th>status</th><th>detail</th></tr>
{''.join(rows)}</table>
<h2>Malformed capture lines (sample)</h2><table><tr><th>where</th><th>reason</th><th>excerpt</th></tr>{sample_rows}</table>
</body></html>
"""


def _figures(report: Mapping[str, Any]) -> str:
    """The figures section: ranked drift scores, the most drifted features' distributions (at most
    MAX_DISTRIBUTIONS), the predictions' distribution and the trend across runs."""
    sections = report.get("sections") or {}
    features = (sections.get("data_drift") or {}).get("features") or {}
    parts = []
    ranked = figures.drift_scores(features)
    if ranked:
        parts.append(f"<figure>{ranked}</figure>")
    drifted = sorted((name for name, e in features.items() if e.get("drifted")), key=lambda n: -features[n]["drift_score"])
    for name in drifted[:MAX_DISTRIBUTIONS]:
        entry = features[name]
        parts.append(f"<figure>{figures.distribution(name, entry['bins'], psi=entry.get('psi'), threshold=entry.get('psi_threshold'))}</figure>")
    prediction = sections.get("prediction_drift") or {}
    if prediction.get("bins"):
        parts.append("<figure>" + figures.distribution("predictions", prediction["bins"], psi=prediction.get("psi"),
                                                        threshold=prediction.get("psi_threshold")) + "</figure>")
    trend = report.get("trend") or {}
    if trend:
        series = {key: trend.get(key) or [] for key in ("data_drift_score", "prediction_drift_score", "cumulative_drift_score")}
        chart = figures.trend(series, trend.get("generated_at") or [], title="Drift scores across the last runs (drift at 1)")
        if chart:
            parts.append(f"<figure>{chart}</figure>")
    return "<h2>What moved</h2>" + "".join(parts) if parts else ""
