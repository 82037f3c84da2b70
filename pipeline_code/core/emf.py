"""CloudWatch embedded metric format: one JSON log line that CloudWatch Logs turns into metric data points.

A Lambda function's (or a container's) stdout line carrying the ``_aws`` directive publishes its metrics with no API
call and no permission (CloudWatch User Guide, "Specification: Embedded metric format"). Standard library only.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping


def metric_line(namespace: str, dimensions: Mapping[str, str], values: Mapping[str, float], *, at_ms: int,
                unit: str = "Count", **fields: Any) -> Dict[str, Any]:
    """The line (as a dict, to ``json.dumps``) that publishes each of ``values`` (metric name -> value, in ``unit``,
    default a count) in ``namespace`` with one dimension set, ``dimensions`` (name -> value), at ``at_ms`` (epoch
    milliseconds); ``fields``: more members for whoever reads the log, not metrics."""
    return {
        "_aws": {"Timestamp": at_ms, "CloudWatchMetrics": [{
            "Namespace": namespace, "Dimensions": [list(dimensions)],
            "Metrics": [{"Name": name, "Unit": unit} for name in values],
        }]},
        **dimensions, **values, **fields,
    }
