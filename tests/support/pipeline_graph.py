"""Walking a pipeline definition in tests: every node with its path, the steps a step references."""

from __future__ import annotations

from typing import Any, Dict, Iterator, List


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
