"""The monitor's earlier reports: the state of the cumulative detector, the trend the report draws and the late-label
due days the earlier runs judged (:func:`.late_labels.judged_days`: each is judged once; the newest 30 reports cover the
week's label window for runs up to every 5 hours or so).

The scheduled job writes each run's ``report.json`` under ``monitor/<model>/<run>/``; the next run reads the
newest :data:`MAX_REPORTS` of them (``--history-dir``, filled from S3 by ``--history-s3-uri``). A file there
that is not a monitor report - empty, not JSON, another format, no time - is a problem the report names
(the window is unhealthy: the state it should have carried is unknown), never a crash; the other reports
are still used. Another model's reports (a local workdir shared by several models) are skipped and counted.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping

from pipeline_code.monitoring.report import trusted_window

MAX_REPORTS = 30
REPORT_FILE = "report.json"
# The summary values the report's trend chart draws, oldest run first.
TREND_KEYS = ("data_drift_score", "prediction_drift_score", "cumulative_drift_score", "data_drift_max_psi",
              "prediction_psi", "model_auc", "quality_drop", "records")


@dataclass
class History:
    """Earlier reports of one model, oldest first, and what was wrong with the files that are not."""

    reports: List[Dict[str, Any]] = field(default_factory=list)
    problems: List[str] = field(default_factory=list)
    other_models: int = 0

    def trend(self, current: Mapping[str, Any]) -> Dict[str, List[Any]]:
        """Per :data:`TREND_KEYS` key, its value in each earlier run whose window was trusted (its numbers stand, even
        if one section failed; a report from before ``trusted``: a healthy one) and this one (``current``: the summary)."""
        runs = [r for r in self.reports if trusted_window(r) and isinstance(r.get("summary"), Mapping)]
        out: Dict[str, List[Any]] = {"generated_at": [r.get("generated_at") for r in runs] + ["this run"]}
        for key in TREND_KEYS:
            out[key] = [r["summary"].get(key) for r in runs] + [current.get(key)]
        return out


def read_history(history_dir: str, model: str, report_format: str) -> History:
    """Every ``report.json`` under ``history_dir`` (a missing directory is no history), the newest
    :data:`MAX_REPORTS` kept."""
    history = History()
    if not history_dir or not os.path.isdir(history_dir):
        return history
    found = []
    for directory, _dirs, names in os.walk(history_dir):
        if REPORT_FILE in names:
            found.append(os.path.join(directory, REPORT_FILE))
    for path in sorted(found):
        rel = os.path.relpath(path, history_dir)
        try:
            with open(path, encoding="utf-8") as handle:
                report = json.load(handle)
        except (OSError, ValueError) as exc:
            history.problems.append(f"{rel}: not a readable JSON report ({type(exc).__name__}: {str(exc)[:120]})")
            continue
        if not isinstance(report, dict) or report.get("format") != report_format:
            history.problems.append(f"{rel}: not a monitor report (format {report.get('format') if isinstance(report, dict) else None!r}, "
                                    f"expected {report_format!r})")
        elif report.get("model") != model:
            history.other_models += 1
        elif not isinstance(report.get("generated_at"), str):
            history.problems.append(f"{rel}: no generated_at time")
        else:
            history.reports.append(report)
    history.reports.sort(key=lambda r: r["generated_at"])
    history.reports = history.reports[-MAX_REPORTS:]
    return history
