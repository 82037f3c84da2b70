"""Session fixtures: each pipeline variant is generated ONCE per test session."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from mlops_loop.training import build_pipeline_definition, step_graph  # noqa: E402

from tests.support import pipeline_specs as specs  # noqa: E402


@dataclass
class Built:
    """A generated definition: the exact text, the parsed JSON and its steps by name."""

    text: str
    seconds: float

    @property
    def doc(self) -> Dict[str, Any]:
        return json.loads(self.text)

    @property
    def steps(self) -> Dict[str, Any]:
        return dict(step_graph(self.text))

    @property
    def parameters(self) -> Dict[str, Dict[str, Any]]:
        return {p["Name"]: p for p in self.doc["Parameters"]}


def _build(spec: Any) -> Built:
    started = time.perf_counter()
    text = build_pipeline_definition(spec)
    return Built(text=text, seconds=time.perf_counter() - started)


@pytest.fixture(scope="session")
def spec():
    return specs.base_spec()


@pytest.fixture(scope="session")
def built(spec) -> Built:
    """GIVEN the dev churn spec (spot, manual approval) WHEN the definition is generated."""
    return _build(spec)


@pytest.fixture(scope="session")
def built_tuning(spec) -> Built:
    """The same spec with Automatic Model Tuning enabled."""
    return _build(specs.replace(spec, enable_tuning=True))


