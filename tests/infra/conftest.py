"""Session fixtures: the app is synthesized ONCE per test session and shared by every infra test."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from aws_cdk import App, Validations

from mlops_loop.app_builder import REPO_ROOT, build_app, cdk_json_context
from mlops_loop.config import AppConfig, load_config
from mlops_loop.tools.cloud_assembly import SynthesizedStack, stacks

CONFIG_PATH = REPO_ROOT / "config" / "mlops-loop.yaml"


@dataclass
class Synthesized:
    config: AppConfig
    outdir: Path
    stacks: dict[tuple[str, str], SynthesizedStack]  # (environment, stack construct id) -> stack
    acknowledgements: list[dict]  # every cdk-nag acknowledgement recorded in the construct tree

    def template(self, env: str, stack: str) -> dict:
        return self.stacks[(env, stack)].template

    def resources(self, env: str, stack: str, cfn_type: str) -> dict[str, dict]:
        return {k: v for k, v in self.template(env, stack)["Resources"].items() if v["Type"] == cfn_type}


@pytest.fixture(scope="session")
def config() -> AppConfig:
    return load_config(CONFIG_PATH)


@pytest.fixture(scope="session")
def synthesized(config: AppConfig, tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """GIVEN the sample config WHEN the whole app (every environment, nag packs on) is synthesized."""
    outdir = tmp_path_factory.mktemp("cdk.out")
    app = App(outdir=str(outdir), context=cdk_json_context())
    build_app(app, config)
    app.synth()  # raises if any cdk-nag finding is unacknowledged
    by_key = {}
    for stack in stacks(outdir):
        construct_id = stack.artifact_id.removeprefix(stack.stage)
        by_key[(stack.stage, re.sub(r"[0-9A-F]{8}$", "", construct_id))] = stack
    acknowledgements = [
        {"path": c.node.path, "rule": rule.removeprefix("Annotation::"), "reason": reason}
        for c in app.node.find_all()
        for entry in c.node.metadata
        if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY
        for rule, reason in entry.data.items()
    ]
    return Synthesized(config=config, outdir=outdir, stacks=by_key, acknowledgements=acknowledgements)
