"""The walk-throughs of the documentation (docs/add-your-own-model.md's "Add your own model", docs/monitoring.md's
"Pausing retraining"), read from the page itself so the tests run what users read."""

from __future__ import annotations

import re
import shlex
from typing import Any

import yaml

from tests.support import docs
from tests.support.configs import SAMPLE_CONFIG


def block(name: str) -> str:
    """The fenced block that follows ``<!-- walkthrough:<name> -->`` in the documentation page that has it."""
    page = docs.containing(f"<!-- walkthrough:{name} -->")
    match = re.search(rf"<!-- walkthrough:{name} -->\n```[a-z]*\n(.*?)```", page.text, re.S)
    if match is None:
        raise AssertionError(f"{page.name} has no fenced block after <!-- walkthrough:{name} -->")
    return match.group(1)


def config_with_walkthrough() -> dict[str, Any]:
    """The frozen sample config with steps 1 and 2 applied as a user would: the dataset and the model
    added, and each environment the model block lists given its new ``models``."""
    raw = yaml.safe_load(SAMPLE_CONFIG.read_text())
    added = {**yaml.safe_load(block("dataset")), **yaml.safe_load(block("model"))}
    raw["datasets"].update(added["datasets"])
    raw["models"].update(added["models"])
    for env, body in added["environments"].items():
        raw["environments"][env].update(body)
    return raw


def run_arguments() -> list[str]:
    """The arguments step 3 passes to ``scripts/local-run.sh`` (which hands them to the local run)."""
    tokens = shlex.split(block("run").strip())
    assert tokens[:2] == ["bash", "scripts/local-run.sh"], tokens
    return tokens[2:]
