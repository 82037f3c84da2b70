"""Fixtures: a real model trained on generated data, its baselines and a window writer."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from tests.support.monitoring import build_reference, churn_spec  # noqa: E402


@pytest.fixture(scope="session")
def spec():
    return churn_spec()


@pytest.fixture(scope="session")
def reference(tmp_path_factory, spec):
    return build_reference(tmp_path_factory.mktemp("reference"), spec)
