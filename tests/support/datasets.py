"""The sample datasets as the tests use them: parsed from the frozen sample config, never from the user's.

Declarations live in configuration (``datasets:``); the job tests exercise the job code on these two,
so they are read from ``tests/support/configs/sample.yaml`` with the one parser every job uses
(:func:`pipeline_code.catalog.parse_dataset`). A user who edits ``config/mlops-loop.yaml`` changes none
of them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Optional

import yaml

from pipeline_code import catalog

from .configs import SAMPLE_CONFIG

DECLARATIONS: Dict[str, Any] = yaml.safe_load(SAMPLE_CONFIG.read_text())["datasets"]
DATASETS: Dict[str, catalog.Dataset] = {name: catalog.parse_dataset(name, body) for name, body in DECLARATIONS.items()}
CUSTOMER_CHURN = DATASETS["customer_churn"]
CREDIT_RISK = DATASETS["credit_risk"]


def get_dataset(name: str) -> catalog.Dataset:
    """A sample dataset by name (a KeyError names the known ones)."""
    try:
        return DATASETS[name]
    except KeyError:
        raise KeyError(f"unknown sample dataset {name!r}; known: {sorted(DATASETS)}") from None


def declaration_file(directory: Path, dataset: catalog.Dataset, name: Optional[str] = None) -> str:
    """Write ``dataset``'s declaration as the jobs read it (``--dataset <file>``); return the path."""
    path = Path(directory) / (name or f"{dataset.name}.json")
    path.write_text(json.dumps(dataset.to_declaration()))
    return str(path)


# A motor insurer's policies with a date column (the insurer trial's ``licence_issued``) and a timestamp one, each
# read by days_since: the dates-as-inputs tests (compute, ETL, serving, monitor) share it. Not a sample: no config
# holds it, so a user's models never change it.
LICENCES_DECLARATION: Dict[str, Any] = {
    "description": "Motor policies; label: a claim within the year.",
    "record_identifier": "policy_id",
    "event_time": "event_time",
    "labels": ["claimed"],
    "columns": {
        "policy_id": {"type": "string", "nullable": False},
        "event_time": {"type": "timestamp", "nullable": False},
        "licence_issued": {"type": "date", "nullable": False},
        "previous_claim": {"type": "date"},
        "quoted_at": {"type": "timestamp"},
        "vehicle_value": {"type": "double", "nullable": False, "min": 0},
        "region": {"type": "string", "nullable": False, "allowed": ["north", "south", "east", "west"]},
        "claimed": {"type": "integer", "min": 0, "max": 1},
    },
    "features": {
        "licence_age_days": "days_since(licence_issued)",
        "days_since_claim": "days_since(previous_claim)",
        "quote_age_days": "clip(days_since(quoted_at), 0, 30)",
        "vehicle_value": "vehicle_value",
        "log_value": "log1p(vehicle_value)",
        "region": "region",
        "licence_band": "bucket(days_since(licence_issued), [730, 3650], ['new', 'settled', 'veteran'])",
    },
}
LICENCES = catalog.parse_dataset("licences", LICENCES_DECLARATION)
