"""Insurance claims per policy-month, declared and generated here with known truth (not from the sample config).

Three labels of the same policies, each drawn with a fixed seed from a log-linear mean
``mu = exp(-1.6 + 0.35 (vehicle_age / 10) + 0.6 urban + 0.8 (power - 1) + region effect)``:

* ``claim_count``: Poisson(mu) - a count, mostly 0, declared ``min: 0``;
* ``claim_amount``: compound Poisson-gamma (Tweedie, power between 1 and 2) - 0 for most policies, a skewed total
  of ``claim_count`` gamma-distributed claims otherwise, declared ``min: 0``;
* ``repair_cost``: gamma around ``100 mu`` - positive amounts, declared ``min: 0.01``;
* ``loss_ratio``: a label whose column declares no ``min``, and ``has_claim`` a boolean one (for the configuration's
  refusals).

:func:`prepared` writes features and labels and runs the Prepare job on them, as the pipeline would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import numpy as np
import pandas as pd

from pipeline_code import catalog
from pipeline_code.training.spec import ModelSpec, parse_model_spec
from tests.support.training import prepare_splits

START = pd.Timestamp("2025-01-01", tz="UTC")
REGIONS = ["north", "south", "east", "west"]
AGE_BANDS = ["young", "middle", "senior"]
DECLARATION: Dict[str, Any] = {
    "name": "motor_claims",
    "description": "Motor policies per month; labels: claims, their total amount, a repair cost, the loss ratio.",
    "record_identifier": "policy_id",
    "event_time": "event_time",
    "labels": ["claim_count", "claim_amount", "repair_cost", "loss_ratio", "has_claim"],
    "columns": {
        "policy_id": {"type": "string", "nullable": False},
        "event_time": {"type": "timestamp", "nullable": False},
        "region": {"type": "string", "nullable": False, "allowed": REGIONS},
        "age_band": {"type": "string", "nullable": False, "allowed": AGE_BANDS},
        "vehicle_age": {"type": "integer", "nullable": False, "min": 0, "max": 40},
        "urban": {"type": "boolean", "nullable": False},
        "power": {"type": "double", "nullable": False, "min": 0, "max": 5},
        "claim_count": {"type": "integer", "min": 0, "description": "Label: claims in the month"},
        "claim_amount": {"type": "double", "min": 0, "description": "Label: their total amount"},
        "repair_cost": {"type": "double", "min": 0.01, "description": "Label: the cost of a repair"},
        "loss_ratio": {"type": "double", "description": "Label: claims over premium (declares no min)"},
        "has_claim": {"type": "boolean", "description": "Label: any claim in the month"},
    },
    "features": {
        "region": "region",
        "age_band": "age_band",
        "vehicle_age": "vehicle_age",
        "urban": "urban",
        "power": "power",
    },
}
FEATURES = ["region", "vehicle_age", "urban", "power"]
REGION_EFFECT = {"north": -0.3, "south": 0.0, "east": 0.2, "west": 0.5}
# The gamma shape of one claim's amount (mean 1000) and of a repair cost (mean 100 mu).
CLAIM_SHAPE, REPAIR_SHAPE = 2.0, 4.0


def make_spec(target: str = "claim_count", **overrides: Any) -> ModelSpec:
    """The regression model ``claims`` of ``target`` on :data:`DECLARATION` (any spec key overridable)."""
    return parse_model_spec({"name": "claims", "dataset": DECLARATION, "target": target, "features": FEATURES,
                             "sensitive_attribute": "age_band", "slices": ["region"], "problem_type": "regression",
                             **overrides})


def dataset() -> catalog.Dataset:
    return catalog.load_dataset(DECLARATION)


def true_mean(frame: pd.DataFrame) -> np.ndarray:
    """The expected claim count of each record (the generator's mu)."""
    return np.exp(-1.6 + 0.35 * frame["vehicle_age"].to_numpy() / 10 + 0.6 * frame["urban"].to_numpy()
                  + 0.8 * (frame["power"].to_numpy() - 1) + frame["region"].map(REGION_EFFECT).to_numpy())


def generate(rows: int = 6000, seed: int = 11) -> pd.DataFrame:
    """Curated records (the ETL's types) of ``rows`` policies over a year from :data:`START`, seeded by ``seed``."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "policy_id": [f"p{i:06d}" for i in range(rows)],
        "event_time": START + pd.to_timedelta(np.sort(rng.integers(0, 365 * 24, rows)), unit="h"),
        "region": rng.choice(REGIONS, rows),
        "age_band": rng.choice(AGE_BANDS, rows),
        "vehicle_age": rng.integers(0, 21, rows).astype("int64"),
        "urban": rng.random(rows) < 0.4,
        "power": rng.uniform(0.5, 2.5, rows).round(3),
    })
    mu = true_mean(frame)
    counts = rng.poisson(mu)
    amounts = np.array([rng.gamma(CLAIM_SHAPE, 1000.0 / CLAIM_SHAPE, n).sum() if n else 0.0 for n in counts])
    frame["claim_count"] = counts.astype("int64")
    frame["claim_amount"] = amounts.round(2)
    frame["repair_cost"] = np.maximum(rng.gamma(REPAIR_SHAPE, 100.0 * mu / REPAIR_SHAPE), 0.01).round(2)
    frame["loss_ratio"] = (amounts / 800.0).round(4)
    frame["has_claim"] = counts > 0
    return frame


def prepared(root: Path, spec: ModelSpec, rows: int = 6000, seed: int = 11) -> Dict[str, str]:
    """The Prepare job's train / validation / test splits of :func:`generate`'s records for ``spec``, under ``root``."""
    return prepare_splits(root, spec, generate(rows, seed))
