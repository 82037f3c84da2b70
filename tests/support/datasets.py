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
