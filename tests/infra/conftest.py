"""Session fixtures: the app is synthesized ONCE per test session and shared by every infra test.

``synthesized`` is the user's config (``config/mlops-loop.yaml``); ``modes`` and ``pooled`` are
scenarios derived from the frozen sample (``tests.support.configs``): ``modes`` has one environment
serving every mode and rollout variant (async, batch, linear, all-at-once, fixed size, local NVMe),
``pooled`` one whose models share multi-model endpoints.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from aws_cdk import App, Validations

from mlops_loop.app_builder import REPO_ROOT, build_app, cdk_json_context
from mlops_loop.config import AppConfig, load_config, parse_config
from mlops_loop.tools.cloud_assembly import SynthesizedStack, stacks
from tests.support.configs import SAMPLE_CONFIG

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


def _acknowledgements(app: App) -> list[dict]:
    """Every cdk-nag acknowledgement recorded in the construct tree: path, rule and reason."""
    return [
        {"path": c.node.path, "rule": rule.removeprefix("Annotation::"), "reason": reason}
        for c in app.node.find_all()
        for entry in c.node.metadata
        if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY
        for rule, reason in entry.data.items()
    ]


def _synthesize_environment(tmp_path_factory: pytest.TempPathFactory, config: AppConfig, env: str) -> tuple[App, Path, dict]:
    """Synthesize only ``env`` of ``config`` (nag packs on; raises on an unacknowledged finding).

    Returns the app, the assembly directory and its stacks by construct id.
    """
    outdir = tmp_path_factory.mktemp(f"{env}.cdk.out")
    app = App(outdir=str(outdir), context=cdk_json_context())
    build_app(app, config, environments=[env])
    app.synth()
    by_id = {s.construct_id: s for s in stacks(outdir)}
    assert {s.stage for s in by_id.values()} == {env}
    return app, outdir, by_id


@pytest.fixture(scope="session")
def config() -> AppConfig:
    return load_config(CONFIG_PATH)


def _synthesize_all(config: AppConfig, tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    outdir = tmp_path_factory.mktemp("cdk.out")
    app = App(outdir=str(outdir), context=cdk_json_context())
    build_app(app, config)
    app.synth()  # raises if any cdk-nag finding is unacknowledged
    by_key = {(stack.stage, stack.construct_id): stack for stack in stacks(outdir)}
    return Synthesized(config=config, outdir=outdir, stacks=by_key, acknowledgements=_acknowledgements(app))


@pytest.fixture(scope="session")
def synthesized(config: AppConfig, tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """GIVEN the user's config WHEN the whole app (every environment, nag packs on) is synthesized."""
    return _synthesize_all(config, tmp_path_factory)


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
    return _synthesize_all(sample_config, tmp_path_factory)


@dataclass
class Modes:
    config: AppConfig
    env: str
    serving: dict
    operations: dict
    storage: dict
    acknowledgements: list[dict]
    outdir: Path


MODES_ENV = "modes"
MODES_ACCOUNT = "444444444444"
MODES_MODELS = ("churn", "credit-risk", "linear-churn", "fixed-churn", "nvme-churn")


def _modes_raw() -> dict:
    raw = yaml.safe_load(SAMPLE_CONFIG.read_text())
    churn = raw["models"]["churn"]

    def realtime_variant(realtime: dict) -> dict:
        model = copy.deepcopy(churn)
        model["serving"] = {"mode": "realtime", "realtime": realtime}
        return model

    raw["models"]["linear-churn"] = realtime_variant(
        {"instance_type": "ml.m5.large", "rollout": {"strategy": "linear", "linear_step_percent": 25, "wait_minutes": 5}}
    )
    # This one also opts into native Model Monitor (accounts that still have it).
    raw["models"]["linear-churn"]["serving"]["native_model_monitor"] = True
    raw["models"]["fixed-churn"] = realtime_variant(
        {
            "instance_type": "ml.c5.xlarge",
            "autoscaling": None,
            "instance_count": 3,
            "rollout": {"strategy": "all_at_once", "wait_minutes": 15, "termination_wait_minutes": 10},
        }
    )
    raw["models"]["nvme-churn"] = realtime_variant({"instance_type": "ml.m5d.xlarge"})
    raw["environments"][MODES_ENV] = {
        "tier": "staging",
        "account": MODES_ACCOUNT,
        "region": "eu-west-1",
        "models": list(MODES_MODELS),
        "serving": {
            "churn": {
                "mode": "async",
                "async": {"max_instances": 3, "max_concurrent_invocations_per_instance": 8, "target_backlog_per_instance": 3},
            },
            "credit-risk": {
                "mode": "batch",
                "batch": {"schedule": "cron(30 2 * * ? *)", "content_type": "text/csv", "instance_count": 2},
            },
        },
    }
    return raw


# Session scope: the Serving-stack and request-shape tests share one synth of it.
@pytest.fixture(scope="session")
def modes(tmp_path_factory: pytest.TempPathFactory) -> Modes:
    """GIVEN a config whose ``modes`` environment serves async, batch and three real-time variants
    WHEN only that environment is synthesized (nag packs on)."""
    config = parse_config(_modes_raw(), source="modes config")
    app, outdir, by_id = _synthesize_environment(tmp_path_factory, config, MODES_ENV)
    acknowledgements = _acknowledgements(app)
    return Modes(
        config=config,
        env=MODES_ENV,
        serving=by_id["Serving"].template,
        operations=by_id["Operations"].template,
        storage=by_id["Storage"].template,
        acknowledgements=acknowledgements,
        outdir=outdir,
    )


POOLED_ENV = "pooled"
POOLED_ACCOUNT = "555555555555"
POOLED_MODELS = ("churn", "credit-risk", "small-churn", "solo-churn")


def _pooled_raw() -> dict:
    raw = yaml.safe_load(SAMPLE_CONFIG.read_text())
    churn = raw["models"]["churn"]
    small = copy.deepcopy(churn)
    small["serving"] = {"mode": "multi_model", "data_capture_percent": 20}
    solo = copy.deepcopy(churn)
    solo["serving"] = {"mode": "multi_model", "multi_model": {"endpoint": "solo"}, "data_capture_percent": 0}
    raw["models"].update({"small-churn": small, "solo-churn": solo})
    raw["environments"][POOLED_ENV] = {
        "tier": "staging",
        "account": POOLED_ACCOUNT,
        "region": "eu-west-1",
        "models": list(POOLED_MODELS),
        "serving": {"credit-risk": {"mode": "multi_model"}},
        "multi_model_endpoints": {
            "shared": {"instance_type": "ml.c5.xlarge", "autoscaling": {"min_instances": 2, "max_instances": 5}},
            "solo": {"instance_type": "ml.m5d.xlarge", "autoscaling": None, "instance_count": 1, "model_cache": False},
            "unused": {},
        },
    }
    return raw


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
    config = parse_config(_pooled_raw(), source="pooled config")
    _, outdir, by_id = _synthesize_environment(tmp_path_factory, config, POOLED_ENV)
    return Pooled(config=config, serving=by_id["Serving"].template, operations=by_id["Operations"].template,
                  storage=by_id["Storage"].template, outdir=outdir)
