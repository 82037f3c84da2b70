"""Session fixtures: each pipeline variant is generated ONCE per test session."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from mlops_loop.training import build_pipeline_definition, step_graph  # noqa: E402

from . import specs  # noqa: E402


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


def walk(node: Any, path: str = "$") -> Iterator[tuple[str, Any]]:
    """Every (json path, scalar) of a JSON document."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk(value, f"{path}[{i}]")
    else:
        yield path, node


def nodes(node: Any) -> Iterator[Any]:
    """Every dict and list of a JSON document (depth first)."""
    if isinstance(node, (dict, list)):
        yield node
        for value in node.values() if isinstance(node, dict) else node:
            yield from nodes(value)


def references(node: Any) -> List[str]:
    """Every {"Get": ...} expression under ``node``."""
    return [n["Get"] for n in nodes(node) if isinstance(n, dict) and isinstance(n.get("Get"), str)]


def referenced_steps(step: Dict[str, Any]) -> set[str]:
    """Steps a step reads properties or property files of (its data dependencies)."""
    found = {ref.split(".")[1] for ref in references(step.get("Arguments", {})) if ref.startswith("Steps.")}
    return found | set(step.get("DependsOn", []))
