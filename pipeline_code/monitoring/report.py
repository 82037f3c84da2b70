"""The monitoring report (report.json, report.html) and its CloudWatch metrics.

Metrics: namespace ``mlops-loop/monitoring``, dimensions ``Environment`` and ``Model``
(plus ``Feature`` for the per-feature ``FeaturePsi``). ``MonitorHealthy`` is 1 only when
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

from pipeline_code.core.contract import FEATURE_PSI_METRIC, MONITOR_DIMENSIONS, MONITOR_METRICS, MONITOR_NAMESPACE

REPORT_FORMAT = "mlops-loop/monitor-report/v1"


def metric_data(report: Mapping[str, Any], environment: str, model: str) -> List[Dict[str, Any]]:
    """The CloudWatch MetricData of a report (values that are None are not published; an unhealthy report's
    drift and quality metrics are withheld, see the module docstring)."""
    dims = [{"Name": name, "Value": value} for name, value in zip(MONITOR_DIMENSIONS, (environment, model))]
    summary = report["summary"]
    healthy = bool(report.get("healthy", True))
    out = []
    for metric in MONITOR_METRICS:
        value = summary.get(metric.key)
        if value is None or (isinstance(value, float) and not math.isfinite(value)) or not (healthy or metric.health):
            continue
        out.append({"MetricName": metric.name, "Dimensions": dims, "Value": float(value), "Unit": metric.unit})
    if not healthy:
        return out
    for feature, entry in (report.get("sections", {}).get("data_drift", {}).get("features") or {}).items():
        if entry.get("psi") is not None:
            out.append({"MetricName": FEATURE_PSI_METRIC, "Dimensions": dims + [{"Name": "Feature", "Value": feature}],
                        "Value": float(entry["psi"]), "Unit": "None"})
    return out


def publish_metrics(report: Mapping[str, Any], environment: str, model: str, *, region: Optional[str] = None,
                    client: Any = None, timestamp: Optional[dt.datetime] = None) -> int:
    """put_metric_data in batches of 20; returns the number of metrics put."""
    if client is None:
        import boto3

        client = boto3.client("cloudwatch", region_name=region)
    data = metric_data(report, environment, model)
    when = timestamp or dt.datetime.now(dt.timezone.utc)
    for item in data:
        item["Timestamp"] = when
    for i in range(0, len(data), 20):
        client.put_metric_data(Namespace=MONITOR_NAMESPACE, MetricData=data[i : i + 20])
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


_STATUS_COLOURS = {"pass": "#1b7f3b", "warn": "#b26a00", "fail": "#b00020", "skipped": "#666", "error": "#b00020"}


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def render_html(report: Mapping[str, Any]) -> str:
    """A self-contained HTML page (inline CSS, no scripts, no external assets)."""
    s = report["summary"]
    esc = html.escape
    rows = []
    order = {"error": 0, "fail": 1, "warn": 2, "pass": 3, "skipped": 4}
    for c in sorted(report["checks"], key=lambda c: (order.get(c["status"], 9), c["category"], c.get("feature") or "")):
        colour = _STATUS_COLOURS.get(c["status"], "#000")
        rows.append(
            f"<tr><td>{esc(c['category'])}</td><td>{esc(c['check'])}</td><td>{esc(c.get('feature') or '')}</td>"
            f"<td>{_fmt(c.get('value'))}</td><td>{esc(c.get('op', ''))} {_fmt(c.get('threshold'))}</td>"
            f"<td style='color:{colour};font-weight:bold'>{esc(c['status'].upper())}</td><td>{esc(c.get('detail', ''))}</td></tr>"
        )
    errors = "".join(f"<li><b>{esc(e['kind'])}</b>: {esc(e['message'])}</li>" for e in report["errors"]) or "<li>none</li>"
    headline = "".join(f"<tr><th>{esc(k)}</th><td>{_fmt(v)}</td></tr>" for k, v in s.items())
    samples = report["sections"].get("capture", {}).get("malformed", {}).get("samples", [])
    sample_rows = "".join(
        f"<tr><td>{esc(str(x['file']))}:{x['line']}</td><td>{esc(x['reason'])}</td><td><code>{esc(x['excerpt'])}</code></td></tr>" for x in samples
    )
    status = report["status"]
    colour = {"ok": "#1b7f3b", "quiet": "#555555", "alert": "#b26a00", "unhealthy": "#b00020"}.get(status, "#000")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Monitor report - {esc(report['model'])} ({esc(report['environment'])})</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left;font-size:13px}}th{{background:#f3f3f3}}
.badge{{color:#fff;background:{colour};padding:4px 10px;border-radius:4px}}</style></head><body>
<h1>Model monitor: {esc(report['model'])} <small>({esc(report['environment'])})</small></h1>
<p>Status: <span class="badge">{esc(status.upper())}</span> &nbsp; healthy: <b>{report['healthy']}</b> &nbsp;
generated {esc(report['generated_at'])}; window {esc(str(report['window'].get('start')))} .. {esc(str(report['window'].get('end')))},
{report['window'].get('records', 0)} records.</p>
<h2>Headline</h2><table>{headline}</table>
<h2>Monitoring errors</h2><ul>{errors}</ul>
<h2>Checks</h2><table><tr><th>category</th><th>check</th><th>feature</th><th>value</th><th>threshold</th><th>status</th><th>detail</th></tr>
{''.join(rows)}</table>
<h2>Malformed capture lines (sample)</h2><table><tr><th>where</th><th>reason</th><th>excerpt</th></tr>{sample_rows}</table>
</body></html>
"""
