"""Session fixtures: each config is synthesized ONCE per test run and shared by every infra test (and
every pytest-xdist worker: the first to ask synthesizes, the others read its assembly).

``synthesized`` is the user's config (``config/mlops-loop.yaml``); ``modes`` and ``pooled`` are
scenarios derived from the frozen sample (``tests.support.configs``): ``modes`` has one environment
serving every mode and rollout variant (async, batch, linear, all-at-once, fixed size, local NVMe),
``pooled`` one whose models share multi-model endpoints; ``other_project`` is the user's config under another
project name.
"""

from __future__ import annotations

import copy
import fcntl
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pytest
import yaml
from aws_cdk import App, Stack, Validations

from mlops_loop.app_builder import build_app, new_app
from mlops_loop.config import AppConfig, load_config, parse_config
from mlops_loop.tools.cloud_assembly import SynthesizedStack, stacks
from tests.support.configs import SAMPLE_CONFIG
from tests.support.paths import CONFIG_PATH
from tests.support.scenarios import MODES_ENV, POOLED_ENV, modes_raw, pooled_raw
from tests.support.pr_report import fake_report_env
from tests.support.printed_commands import OTHER_PROJECT_CONFIG


@dataclass
class Synthesized:
    config: AppConfig
    outdir: Path
    stacks: dict[tuple[str, str], SynthesizedStack]  # (environment, stack construct id) -> stack
    # every cdk-nag acknowledgement recorded in the construct tree (None: not read, see _synthesize_once)
    acknowledgements: Optional[list[dict]]

    def template(self, env: str, stack: str) -> dict:
        return self.stacks[(env, stack)].template

    def resources(self, env: str, stack: str, cfn_type: str) -> dict[str, dict]:
        return {k: v for k, v in self.template(env, stack)["Resources"].items() if v["Type"] == cfn_type}


def _acknowledgements(app: App, outdir: Path) -> list[dict]:
    """Every cdk-nag acknowledgement recorded in the construct tree of ``app``, synthesized into ``outdir``: path, rule
    and reason.

    Synth writes the metadata of every construct of a stack, the acknowledgements among them, into the stack's
    metadata file in the assembly (its own too, under the construct paths with a leading '/'): those are read there.
    Only the few constructs above the stacks (the app and its stages, which no stack's file holds) are asked through
    jsii; a walk of every construct took two jsii calls each, about 0.8 CPU-s per environment.
    """
    found = []
    above = [app]
    while above:
        construct = above.pop()
        if Stack.is_stack(construct):
            continue
        found += [{"path": construct.node.path, "rule": rule, "reason": reason}
                  for entry in construct.node.metadata if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY
                  for rule, reason in entry.data.items()]
        above += construct.node.children
    for path, entries in _stack_metadata(outdir):
        found += [{"path": path.removeprefix("/"), "rule": rule, "reason": reason}
                  for entry in entries if entry["type"] == Validations.ACKNOWLEDGED_RULES_METADATA_KEY
                  for rule, reason in entry["data"].items()]
    return [{**ack, "rule": ack["rule"].removeprefix("Annotation::")} for ack in found]


def _stack_metadata(outdir: Path):
    """(construct path, metadata entries) of every construct of every stack in the assembly at ``outdir`` (in each
    stack's additionalMetadataFile, or inline in its stage's manifest)."""
    manifest = json.loads((outdir / "manifest.json").read_text())
    for artifact in manifest["artifacts"].values():
        if artifact["type"] != "cdk:cloud-assembly":
            continue
        stage_dir = outdir / artifact["properties"]["directoryName"]
        for stack in json.loads((stage_dir / "manifest.json").read_text())["artifacts"].values():
            if stack["type"] != "aws:cloudformation:stack":
                continue
            if "additionalMetadataFile" in stack:
                yield from json.loads((stage_dir / stack["additionalMetadataFile"]).read_text()).items()
            yield from (stack.get("metadata") or {}).items()


def _run_directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory every worker of this test run sees: the run's base temp under pytest-xdist, else the session's."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def _synthesize_once(
    tmp_path_factory: pytest.TempPathFactory, name: str, config: AppConfig, environments: Optional[list[str]] = None,
    *, acknowledgements: bool = True, cli_config: Optional[str] = None,
) -> tuple[Path, Optional[list[dict]]]:
    """Synthesize ``config`` (``environments`` of it, all by default; nag packs on) once per test run.

    Whichever worker asks first synthesizes under an exclusive lock; the others wait for it and read
    the same assembly. Returns the assembly directory and the cdk-nag acknowledgements of the tree, read from the
    tree only when ``acknowledgements``: a walk of every construct through jsii (0.8 CPU-s for one environment), for
    the fixtures whose tests read them; else None, so a test that reads them where they were not read fails.
    A failed synth (e.g. an unacknowledged nag finding) leaves nothing behind, so every asker fails alike.
    ``cli_config`` is the config file the app is synthesized from as its printed commands name it (default: the
    default config, named by none).
    """
    root = _run_directory(tmp_path_factory)
    outdir, recorded = root / f"{name}.cdk.out", root / f"{name}.acknowledgements.json"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not recorded.exists():
            shutil.rmtree(outdir, ignore_errors=True)
            app = new_app(str(outdir))
            build_app(app, config, environments=environments, cli_config=cli_config)
            app.synth()  # raises if any cdk-nag finding is unacknowledged
            recorded.write_text(json.dumps(_acknowledgements(app, outdir) if acknowledgements else None))
    return outdir, json.loads(recorded.read_text())


@pytest.fixture(scope="session")
def synthesize_once(tmp_path_factory: pytest.TempPathFactory):
    """``synthesize_once(name, config, environments)``: the assembly directory of ``config`` (those environments, nag
    packs on; ``name`` one per distinct config), synthesized once per test run whichever worker asks first.

    For a test module's own config: under pytest-xdist a module's tests may run on two workers, and a module-scoped
    fixture that synthesizes would synthesize on each."""

    def synthesize(name: str, config: AppConfig, environments: Optional[list[str]] = None) -> Path:
        return _synthesize_once(tmp_path_factory, f"module-{name}", config, environments, acknowledgements=False)[0]

    return synthesize


def _synthesize_environment(tmp_path_factory: pytest.TempPathFactory, name: str, config: AppConfig, env: str, *,
                            acknowledgements: bool = True, cli_config: Optional[str] = None
                            ) -> tuple[Path, Optional[list[dict]], dict]:
    """Synthesize only ``env`` of ``config`` (see :func:`_synthesize_once`); also its stacks by construct id."""
    outdir, acknowledgements = _synthesize_once(tmp_path_factory, name, config, [env], acknowledgements=acknowledgements,
                                                cli_config=cli_config)
    by_id = {s.construct_id: s for s in stacks(outdir)}
    assert {s.stage for s in by_id.values()} == {env}
    return outdir, acknowledgements, by_id


@pytest.fixture(scope="session")
def config() -> AppConfig:
    return load_config(CONFIG_PATH)


def _synthesize_all(config: AppConfig, tmp_path_factory: pytest.TempPathFactory, name: str, *,
                    acknowledgements: bool = True) -> Synthesized:
    outdir, acknowledgements = _synthesize_once(tmp_path_factory, name, config, acknowledgements=acknowledgements)
    by_key = {(stack.stage, stack.construct_id): stack for stack in stacks(outdir)}
    return Synthesized(config=config, outdir=outdir, stacks=by_key, acknowledgements=acknowledgements)


@pytest.fixture(scope="module")
def _sample_raw() -> dict:
    """The frozen sample config, parsed once for the module (never handed out itself: see ``raw``)."""
    return yaml.safe_load(SAMPLE_CONFIG.read_text())


@pytest.fixture()
def raw(_sample_raw) -> dict:
    """The frozen sample config as a mutable mapping: each test makes one mistake in it (a deep copy of its own)."""
    return copy.deepcopy(_sample_raw)


@pytest.fixture(scope="session")
def synthesized(config: AppConfig, tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """GIVEN the user's config WHEN the whole app (every environment, nag packs on) is synthesized."""
    return _synthesize_all(config, tmp_path_factory, "user")


@pytest.fixture(scope="session")
def sample(request: pytest.FixtureRequest, config: AppConfig, tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """GIVEN the frozen sample config (``tests/support/configs/sample.yaml``) WHEN every environment is synthesized.

    For tests that pin what one known config produces (snapshots, logical ids), so a user's own
    models change none of them. When the user's config is the sample (a fresh clone, CI) the
    session synth is reused: same input, same assembly.
    """
    sample_config = load_config(SAMPLE_CONFIG)
    if sample_config == config:
        return request.getfixturevalue("synthesized")
    return _synthesize_all(sample_config, tmp_path_factory, "sample", acknowledgements=False)  # no test reads them


@dataclass
class Modes:
    config: AppConfig
    env: str
    serving: dict
    operations: dict
    storage: dict
    acknowledgements: list[dict]
    outdir: Path


# Session scope: the Serving-stack and request-shape tests share one synth of it.
@pytest.fixture(scope="session")
def modes(tmp_path_factory: pytest.TempPathFactory) -> Modes:
    """GIVEN a config whose ``modes`` environment serves async, batch and three real-time variants
    WHEN only that environment is synthesized (nag packs on)."""
    config = parse_config(modes_raw(), source="modes config")
    outdir, acknowledgements, by_id = _synthesize_environment(tmp_path_factory, "modes", config, MODES_ENV)
    return Modes(
        config=config,
        env=MODES_ENV,
        serving=by_id["Serving"].template,
        operations=by_id["Operations"].template,
        storage=by_id["Storage"].template,
        acknowledgements=acknowledgements,
        outdir=outdir,
    )


@dataclass
class Pooled:
    config: AppConfig
    serving: dict
    operations: dict
    storage: dict
    outdir: Path


# Session scope: the multi-model and deploy-permission tests share one synth of it.
@pytest.fixture(scope="session")
def pooled(tmp_path_factory: pytest.TempPathFactory) -> Pooled:
    """GIVEN a config whose ``pooled`` environment serves ``churn`` on its own real-time endpoint,
    ``credit-risk`` and ``small-churn`` on the multi-model endpoint ``shared`` (c5, autoscaling 2-5) and
    ``solo-churn`` alone on ``solo`` (m5d with local NVMe, fixed size, no model cache, no capture), and
    declares a third endpoint no model uses WHEN only that environment is synthesized (nag packs on)."""
    config = parse_config(pooled_raw(), source="pooled config")
    outdir, _, by_id = _synthesize_environment(tmp_path_factory, "pooled", config, POOLED_ENV, acknowledgements=False)
    return Pooled(config=config, serving=by_id["Serving"].template, operations=by_id["Operations"].template,
                  storage=by_id["Storage"].template, outdir=outdir)


@dataclass
class OtherProject:
    config: AppConfig
    env: str
    outdir: Path


@pytest.fixture(scope="session")
def other_project(config: AppConfig, tmp_path_factory: pytest.TempPathFactory) -> OtherProject:
    """GIVEN the user's config under another project name (a second team's project in the same accounts and regions),
    its own config file (``OTHER_PROJECT_CONFIG``, as MLOPS_LOOP_CONFIG would name it) WHEN only its first environment
    is synthesized (nag packs on)."""
    raw = yaml.safe_load(CONFIG_PATH.read_text())
    raw["project"] = "other-team" if config.project != "other-team" else "other-team-b"
    other = parse_config(raw, source="another project")
    env = next(iter(other.environments))
    outdir, _, _ = _synthesize_environment(tmp_path_factory, "other-project", other, env, acknowledgements=False,
                                           cli_config=OTHER_PROJECT_CONFIG)
    return OtherProject(config=other, env=env, outdir=outdir)


@dataclass
class Teams:
    config: AppConfig
    env: str
    outdir: Path
    by_id: dict


@pytest.fixture(scope="session")
def teams(config: AppConfig, tmp_path_factory: pytest.TempPathFactory) -> Teams:
    """GIVEN the user's config whose first environment's first two models belong to two teams (``owner.team``
    ``team-a`` and ``team-b``; any further model to none), team-a with approvers of its own (``team_approvers``)
    WHEN only that environment is synthesized (nag packs on)."""
    raw = yaml.safe_load(CONFIG_PATH.read_text())
    env = next(iter(config.environments))
    for model, team in zip(config.environments[env].models, ("team-a", "team-b")):
        raw["models"][model]["owner"] = {"team": team, "contact": f"{team}-oncall@example.com"}
    for model in config.environments[env].models[2:]:
        raw["models"][model].pop("owner", None)
    # team-a approves its own models (its approver role); team-b's are the environment's approver role's.
    raw["environments"][env]["team_approvers"] = {"team-a": [f"arn:aws:iam::{config.environments[env].account}:role/team-a-approvers"]}
    owned = parse_config(raw, source="teams config")
    outdir, _, by_id = _synthesize_environment(tmp_path_factory, "teams", owned, env, acknowledgements=False)
    return Teams(config=owned, env=env, outdir=outdir, by_id=by_id)


@pytest.fixture
def report_env(tmp_path: Path) -> dict[str, str]:
    """Environment for pr-report.sh with every sub-command replaced by a fake that records its args."""
    return fake_report_env(tmp_path)
