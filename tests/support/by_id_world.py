"""Score by id over the local twin of the online store, for a test dataset of site visits: the one project, model,
feature group and ids the by-id agreement tests (tests/serving/test_by_id_*.py) share, each with its own dataset."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import yaml

from mlops_cli.local.online_store import LocalOnlineStore, local_environ, score_by_id
from pipeline_code import catalog
from pipeline_code.serving import records
from tests.support.serving_checks import ServingChecks

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
EVENT = "2025-12-31T00:00:00Z"
GROUP = "shop-dev-visits"
MODEL = "returning"
IDS = [f"v{i}" for i in range(100)]


def config(visits: Mapping[str, Any], policy: str, features: List[str], *, project: str = "shop",
           model: str = MODEL) -> Dict[str, Any]:
    """A one-model, one-environment (dev) config of ``visits`` whose model is served serverless with score by id on
    and the ``missing`` ``policy``."""
    body = {"dataset": "visits", "target": "returned", "features": features, "sensitive_attribute": "segment",
            "serving": {"mode": "serverless", "by_id": {"enabled": True, "missing": policy}}}
    return {
        "project": project,
        "datasets": {"visits": dict(visits)},
        "models": {model: body},
        "environments": {"dev": {"tier": "dev", "account": "123456789012", "region": "eu-west-1", "models": [model]}},
    }


def config_path(directory: Path, visits: Mapping[str, Any], policy: str, features: List[str], **changes: Any) -> str:
    """:func:`config` written as ``mlops-loop-<policy>.yaml`` in ``directory``."""
    path = directory / f"mlops-loop-{policy}.yaml"
    path.write_text(yaml.safe_dump(config(visits, policy, features, **changes)))
    return str(path)


def filled_store(directory: Path, visits: Mapping[str, Any], rows: Sequence[Mapping[str, Any]],
                 features: List[str]) -> Tuple[LocalOnlineStore, ServingChecks]:
    """The twin's store holding ``rows`` (as the feature job puts them) and the endpoint's own checks of a model of
    ``features``."""
    store = LocalOnlineStore(str(directory / "online-store.sqlite"))
    assert store.put_records(GROUP, rows, record_identifier="visit_id", event_time="event_time",
                             ttl_days=None) == len(rows)
    dataset = catalog.parse_dataset("visits", dict(visits))
    return store, ServingChecks(records.FeatureContract.create(dataset, features), MODEL)


def scored(world: Tuple[LocalOnlineStore, ServingChecks, Path], config_file: str, request: Dict[str, Any],
           environ: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    """The front's answer to ``request`` at :data:`NOW`, configured by ``config_file`` (or ``environ``)."""
    store, endpoint, _ = world
    environ = environ or local_environ(config_file, "dev", MODEL)
    return score_by_id(request, environ=environ, store=store, endpoint=endpoint, now=NOW)
