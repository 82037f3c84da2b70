"""The monitor's results of a run as a table (``monitor_results.parquet``): what an analyst queries with Athena.

``report.json`` is pretty-printed (one document over many lines, which Athena's JSON SerDe cannot read) and keyed by
feature name, so its shape changes whenever a feature is added. This file holds the same numbers in long format, one
row per (section, feature, metric), in :data:`SCHEMA` whatever the model or its features:

* ``section = "summary"``: each summary value (``data_drift_max_psi``, ``model_auc``, ``monitor_healthy`` ...), the
  run's status in ``status``;
* each check of the report (``section`` its category, ``metric`` the check's name, ``feature`` the feature it judges
  if any, ``status`` ok/warn/fail/skipped);
* each per-feature number of the sections that have features (``data_drift``, ``data_quality`` ...: ``psi``,
  ``missing_rate`` ...), the feature's status in ``status``.

A value that is not a number (a text, a list) is left out; a boolean is 1.0/0.0. The scheduled job writes it under
``monitor-results/<model>/date=<yyyy-mm-dd>/run=<execution id>/`` (the Glue table ``monitor_results``).
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
import os
from typing import Any, Dict, Iterator, List, Mapping, Optional

from pipeline_code.core.contract import MONITOR_RESULTS_COLUMNS

RESULTS_FILE = "monitor_results.parquet"
SUMMARY_SECTION = "summary"
# (name, Glue/Athena type) of every column, in order: the Glue table declares the same (its model is the partition).
COLUMNS = MONITOR_RESULTS_COLUMNS


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        return number if math.isfinite(number) else None
    return None


def _window_end(report: Mapping[str, Any]) -> Optional[dt.datetime]:
    """The end of the window the run judged (its latest request), else when the report was written; UTC."""
    for value in ((report.get("window") or {}).get("end"), report.get("generated_at")):
        if isinstance(value, str) and value:
            try:
                when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
            return when.astimezone(dt.timezone.utc) if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)
    return None


def _feature_rows(report: Mapping[str, Any]) -> Iterator[Dict[str, Any]]:
    for section, body in sorted((report.get("sections") or {}).items()):
        features = body.get("features") if isinstance(body, Mapping) else None
        if not isinstance(features, Mapping):
            continue
        for feature, entry in sorted(features.items()):
            if not isinstance(entry, Mapping):
                continue
            status = entry.get("status") if isinstance(entry.get("status"), str) else None
            for metric, value in sorted(entry.items()):
                number = _number(value)
                if number is not None:
                    yield {"section": section, "feature": str(feature), "metric": metric, "value": number, "status": status}


def rows(report: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """The long-format rows of ``report`` (a monitor report), without the run's own columns."""
    out: List[Dict[str, Any]] = []
    for metric, value in (report.get("summary") or {}).items():
        number = _number(value)
        if number is not None or value is None:
            out.append({"section": SUMMARY_SECTION, "feature": None, "metric": metric, "value": number,
                        "status": report.get("status")})
    for check in report.get("checks") or []:
        if isinstance(check, Mapping) and check.get("check"):
            out.append({"section": check.get("category"), "feature": check.get("feature"), "metric": check["check"],
                        "value": _number(check.get("value")), "status": check.get("status")})
    out.extend(_feature_rows(report))
    return out


def write(report: Mapping[str, Any], path: str, *, run: str, model_package_version: Optional[int]) -> int:
    """Write ``report``'s rows to ``path`` (parquet, :data:`COLUMNS`, typed alike in every file); returns the rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {"string": pa.string(), "timestamp": pa.timestamp("ms", tz="UTC"), "bigint": pa.int64(),
             "double": pa.float64()}
    body = rows(report)
    end = _window_end(report)
    fixed = {"run": run, "window_end": end, "model": report.get("model"), "model_package_version": model_package_version}
    table = pa.table({name: pa.array([fixed[name] if name in fixed else row[name] for row in body], type=types[kind])
                      for name, kind in COLUMNS})
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    pq.write_table(table, path)
    return len(body)
