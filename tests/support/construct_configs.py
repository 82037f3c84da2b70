"""Inputs for construct tests, declared here so they never read the user's config/mlops-loop.yaml: a one-model
configuration (model ``returns`` on dataset ``orders``, project ``shop``, environment ``dev``) and the ``WEB_ORDERS``
dataset declaration (two numeric features, one of them computed, and a categorical one)."""

from __future__ import annotations

from typing import Any, Optional

ORDERS = {
    "record_identifier": "order_id",
    "event_time": "event_time",
    "labels": ["returned"],
    "columns": {
        "order_id": {"type": "string", "nullable": False},
        "event_time": {"type": "timestamp", "nullable": False},
        "items": {"type": "integer", "min": 0, "max": 500},
        "channel": {"type": "string", "allowed": ["web", "app"]},
        "returned": {"type": "integer", "min": 0, "max": 1},
    },
    "features": {"items": "items", "channel": "channel"},
}


WEB_ORDERS = {
    "description": "Web shop orders; label: chargeback within 60 days.",
    "record_identifier": "order_id",
    "event_time": "ordered_at",
    "labels": ["charged_back"],
    "columns": {
        "order_id": {"type": "string", "nullable": False},
        "ordered_at": {"type": "timestamp", "nullable": False},
        "amount": {"type": "double", "min": 0},
        "items": {"type": "integer", "min": 0},
        "channel": {"type": "string", "allowed": ["web", "app"]},
        "charged_back": {"type": "integer", "min": 0, "max": 1},
    },
    "features": {"amount": "amount", "log_items": "log1p(items)", "channel": "channel"},
}


def returns_config(serving: Optional[dict] = None, *, model_serving: Optional[dict] = None, **environment: Any) -> dict:
    """The raw config; ``serving`` is the dev environment's override of the model's serving block,
    ``model_serving`` the model's own block, ``environment`` further keys of the dev environment."""
    dev: dict[str, Any] = {"tier": "dev", "account": "123456789012", "region": "eu-west-1", "models": ["returns"], **environment}
    if serving is not None:
        dev["serving"] = {"returns": serving}
    model: dict[str, Any] = {"dataset": "orders", "target": "returned", "features": ["items"], "sensitive_attribute": "channel"}
    if model_serving is not None:
        model["serving"] = model_serving
    return {"project": "shop", "datasets": {"orders": ORDERS}, "models": {"returns": model}, "environments": {"dev": dev}}
