"""The media types serving reads and answers, and how a Content-Type header names one of them.

Serving accepts and answers JSON, JSON Lines and CSV; callers spell JSON Lines several ways, and every
spelling serving accepts must read the same in the monitor's capture decoder, or that traffic is served
but counted malformed. One definition for serving (``pipeline_code.serving.request_body``), the capture decoder
(``pipeline_code.monitoring.capture``) and the model packages' declared types (``mlops_loop``). Standard
library only.
"""

from __future__ import annotations

from typing import Optional

JSON = "application/json"
JSONLINES = "application/jsonlines"
CSV = "text/csv"
# The Content-Type of the answer to a request serving refuses on an endpoint (400, 406, 415: the message as text;
# pipeline_code/serving/serve_entry.py): what the drift monitor recognises a captured refusal by.
REFUSAL = "text/plain"
# What serving accepts and answers, in the order a model package declares them (docs/invocation-contract.md).
CONTENT_TYPES = (JSON, JSONLINES, CSV)
# Spellings other tools use for JSON Lines; read as JSON Lines and answered with the canonical type.
JSONLINES_ALIASES = frozenset({JSONLINES, "application/x-jsonlines", "application/jsonl", "application/x-ndjson"})


def base_type(value: Optional[str]) -> str:
    """``"Application/JSON; charset=utf-8"`` -> ``"application/json"``."""
    return (value or "").split(";", 1)[0].strip().lower()


def canonical(value: Optional[str]) -> Optional[str]:
    """The one of :data:`CONTENT_TYPES` a Content-Type header names (any case, parameters and JSON Lines
    spelling), else ``None``."""
    kind = base_type(value)
    if kind in JSONLINES_ALIASES:
        return JSONLINES
    return kind if kind in CONTENT_TYPES else None
